//! A 30-second outage in the middle of traffic, with the protocol's real timers: once the
//! network is back the tunnel carries traffic again within REKEY_TIMEOUT (plus its jitter
//! and a margin), a new handshake completes (`wg show latest-handshakes` advances), and
//! nothing sent after the recovery is lost.
//!
//! Two outages: the initiator's veth taken down (the daemon's sends fail locally), and every
//! outer datagram silently dropped in the network (a relay turned black hole, as netem
//! `loss 100%` would). A numbered UDP stream at 20 datagrams/s runs through the whole test
//! and timestamps every arrival, so the recovery time is measured, not guessed.
//! Needs root, `wg` and `ping`.

mod common;

use common::sock;

use common::impair::{Impairment, Relay};
use common::tunnel::{Impl, Side, Tunnel};
use common::udp_probe::{self, Probe, ProbeReport};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const OUTAGE: Duration = Duration::from_secs(30);
/// Traffic before the outage starts.
const BEFORE: Duration = Duration::from_secs(2);
/// Traffic after the network is back.
const AFTER: Duration = Duration::from_secs(14);
/// REKEY_TIMEOUT (5 s) plus the up to 1/3 s jitter on every retry, plus 1.5 s for a
/// loaded machine: the longest a retrying initiator may take to notice the network is back.
const RECOVERY_BOUND: Duration = Duration::from_millis(6_833);
const INTERVAL: Duration = Duration::from_millis(50);
const PROBE_PORT: u16 = 7002;
const RELAY_PORT: u16 = 40000;

/// Unix time of the latest handshake `me` had with `peer` (0: never).
fn latest_handshake(me: &Side, peer: &Side) -> u64 {
    let text = me.show("latest-handshakes");
    text.lines()
        .find(|l| l.starts_with(&peer.keys.public))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no handshake line for the peer in {text:?}"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs the probe from A to B across an outage made by `cut` and ended by `restore`.
fn outage(name: &str, t: &Tunnel, cut: impl FnOnce(), restore: impl FnOnce()) {
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(20));
    let before = latest_handshake(&t.a, &t.b);
    let total = BEFORE + OUTAGE + AFTER;
    let probe = Probe {
        count: (total.as_millis() / INTERVAL.as_millis()) as u64,
        interval: INTERVAL,
        size: 100,
        drain: Duration::from_millis(500),
    };
    let (report, down_at, up_at, handshake_after) = std::thread::scope(|s| {
        let stream = s.spawn(|| {
            udp_probe::run(
                &t.a.ns,
                sock(t.a.addrs.inner4, 0),
                &t.b.ns,
                sock(t.b.addrs.inner4, PROBE_PORT),
                probe,
            )
        });
        std::thread::sleep(BEFORE);
        let down_at = Instant::now();
        cut();
        std::thread::sleep(OUTAGE);
        restore();
        let up_at = Instant::now();
        let up_unix = unix_now();
        // A new handshake, completed after the network came back.
        let mut handshake_after = None;
        while up_at.elapsed() < AFTER {
            let latest = latest_handshake(&t.a, &t.b);
            if latest > before && latest + 1 >= up_unix {
                handshake_after = Some(up_at.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let report = stream.join().expect("probe thread");
        (report, down_at, up_at, handshake_after)
    });
    let ctx = |what: &str| {
        format!(
            "{name}: {what}\nprobe: sent {}, received {}, duplicates {}\n{}",
            report.sent,
            report.received,
            report.duplicates,
            t.logs()
        )
    };
    let start = report.start.expect("probe start");
    let arrived_at = |i: usize| report.arrival[i].map(|d| start + d);
    let sent_at = |i: usize| start + INTERVAL * i as u32;
    let n = report.arrival.len();

    // The outage was real: nothing sent well inside it arrived.
    let inside = (0..n).filter(|&i| {
        sent_at(i) > down_at + Duration::from_millis(500) && sent_at(i) + INTERVAL < up_at
    });
    let leaked = inside.filter(|&i| report.arrival[i].is_some()).count();
    assert_eq!(leaked, 0, "{}", ctx("datagrams crossed during the outage"));

    // Traffic resumed, and soon.
    let first_after = (0..n)
        .filter_map(arrived_at)
        .filter(|&a| a > up_at)
        .min()
        .unwrap_or_else(|| panic!("{}", ctx("nothing arrived after the outage")));
    let recovery = first_after - up_at;
    assert!(
        recovery <= RECOVERY_BOUND,
        "{}",
        ctx(&format!(
            "first datagram {recovery:?} after the network came back"
        ))
    );
    // Once recovered, nothing is lost.
    let settled = first_after + Duration::from_millis(200);
    let lost_after: Vec<usize> = (0..n)
        .filter(|&i| sent_at(i) > settled && report.arrival[i].is_none())
        .collect();
    // Beyond what the test's own receiving socket dropped (its thread starved of CPU).
    assert!(
        lost_after.len() as u64 <= report.socket_drops,
        "{}",
        ctx(&format!("lost after recovery: {lost_after:?}"))
    );
    assert_eq!(report.duplicates, 0, "{}", ctx("duplicates"));
    let handshake_after = handshake_after.unwrap_or_else(|| {
        panic!(
            "{}",
            ctx(&format!(
                "no new handshake within {AFTER:?} of the network coming back"
            ))
        )
    });
    assert!(
        handshake_after <= RECOVERY_BOUND,
        "{}",
        ctx(&format!(
            "new handshake only {handshake_after:?} after recovery"
        ))
    );
    t.ping(&t.b, t.a.addrs.inner4, Duration::from_secs(5));
    let retries =
        t.a.daemon
            .log_text()
            .matches("sending handshake initiation")
            .count();
    eprintln!(
        "{name}: {:?} outage; traffic back {recovery:?} after the network, new handshake \
         seen {handshake_after:?} after (polled every 100 ms); probe {} sent, {} received, \
         {} lost (all inside the outage); initiator sent {retries} initiations in all",
        up_at - down_at,
        report.sent,
        report.received,
        report.lost()
    );
    check_quiet(&report);
}

/// Sanity on the instrument: the stream ran the whole time.
fn check_quiet(report: &ProbeReport) {
    assert_eq!(report.send_errors, 0, "the inner sender saw errors");
    assert_eq!(report.foreign, 0);
}

#[test]
fn thirty_second_link_down() {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    let veth = t.a.veth.clone();
    outage(
        "link down",
        &t,
        || {
            t.a.ns.ip(&["link", "set", "dev", &veth, "down"]);
        },
        || {
            t.a.ns.ip(&["link", "set", "dev", &veth, "up"]);
        },
    );
}

#[test]
fn thirty_second_black_hole() {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    let listen = sock(t.b.addrs.outer, RELAY_PORT);
    let target = sock(t.b.addrs.outer, t.b.addrs.port);
    let relay = Relay::start(&t.b.ns, listen, target, Impairment::default(), 1);
    t.a.set_peer_endpoint(&t.b.keys.public, listen);
    outage(
        "black hole",
        &t,
        || relay.set(Impairment::blackhole()),
        || relay.set(Impairment::default()),
    );
    let stats = relay.stats();
    assert!(stats.to_target.dropped > 0, "{stats:?}");
}
