//! Bad networks: two ferrotun daemons talk through a relay that loses 5 %, reorders 25 %,
//! duplicates 5 %, or delays 50 ms with 10 ms jitter (each its own test, both directions
//! at once). In each, a 20 MB TCP transfer must arrive intact, and a numbered UDP stream
//! through the tunnel must arrive exactly once per datagram: reordered datagrams (within
//! the replay window) are accepted, duplicated ones are refused, so the receiver never sees
//! a datagram twice and never more datagrams than were sent. The receiving daemon's
//! `wg show transfer` byte count must not exceed the bytes of the distinct datagrams the
//! relay delivered: a duplicate counted (or delivered) would push it over.
//!
//! The impairment is done by a userspace relay (common/impair.rs) rather than `tc netem`,
//! which the test kernel does not have; the relay also counts exactly what it did.
//! Needs root, `wg`, `nc` and `sha256sum`.

mod common;

use common::sock;

use common::impair::{Impairment, Relay, RelayStats};
use common::transfer::tcp_transfer;
use common::tunnel::{Impl, Tunnel};
use common::udp_probe::{self, Probe};
use common::Netns;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const MB: u64 = 1 << 20;
const TRANSFER: u64 = 20 * MB;
const RELAY_PORT: u16 = 40000;
const PROBE_PORT: u16 = 7001;

/// A tunnel whose every outer datagram, both ways, passes the relay (in B's namespace).
struct Impaired {
    relay: Relay,
    t: Tunnel,
}

fn impaired(imp: Impairment, seed: u64) -> Impaired {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    let listen: SocketAddr = format!("{}:{RELAY_PORT}", t.b.addrs.outer)
        .parse()
        .expect("relay address");
    let target: SocketAddr = format!("{}:{}", t.b.addrs.outer, t.b.addrs.port)
        .parse()
        .expect("target address");
    let relay = Relay::start(&t.b.ns, listen, target, imp, seed);
    t.a.set_peer_endpoint(&t.b.keys.public, listen);
    Impaired { relay, t }
}

/// What a case expects of the numbered UDP stream, besides "never twice, never more".
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Datagrams may be lost, but only as many as the relay dropped.
    Losses,
    /// Every datagram arrives (nothing is lost on purpose).
    All,
    /// Every datagram arrives and some arrive out of order.
    AllReordered,
}

fn case(name: &str, imp: Impairment, expect: Expect, seed: u64) {
    let started = Instant::now();
    let Impaired { relay, t } = impaired(imp, seed);
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(20));
    let up = started.elapsed();

    // 1. Bulk TCP: every byte, in order, once.
    let transfer = tcp_transfer(
        &t.a.ns,
        &t.b.ns,
        t.b.addrs.inner4,
        5002,
        TRANSFER,
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}\nrelay: {:?}\n{}", relay.stats(), t.logs()));
    assert_eq!(
        transfer.sent_sha256, transfer.received_sha256,
        "{name}: TCP data corrupted"
    );
    let after_tcp = relay.stats();

    // 2. Numbered UDP, 2000 datagrams at 2000/s: counted one by one at the receiver.
    let probe = Probe {
        count: 2000,
        interval: Duration::from_micros(500),
        size: 200,
        drain: imp.delay + imp.jitter + Duration::from_millis(500),
    };
    let report = udp_probe::run(
        &t.a.ns,
        sock(t.a.addrs.inner4, 0),
        &t.b.ns,
        sock(t.b.addrs.inner4, PROBE_PORT),
        probe,
    );
    let window = relay.stats().minus(&after_tcp);
    let ctx = || {
        format!(
            "{name}: probe {:?}\nrelay during probe: {window:?}\n{}",
            ProbeSummary(&report),
            t.logs()
        )
    };
    assert_eq!(report.send_errors, 0, "{}", ctx());
    assert_eq!(report.foreign, 0, "{}", ctx());
    assert_eq!(
        report.duplicates,
        0,
        "a datagram reached the receiver twice\n{}",
        ctx()
    );
    assert!(report.received <= report.sent, "{}", ctx());
    match expect {
        Expect::Losses => {
            assert!(
                report.lost() <= window.to_target.dropped + report.socket_drops,
                "more datagrams lost than the relay dropped\n{}",
                ctx()
            );
            assert!(
                report.received * 100 >= report.sent * 85,
                "too much lost\n{}",
                ctx()
            );
        }
        Expect::All | Expect::AllReordered => {
            // A full receiving socket (the test's receiver starved of CPU on a shared
            // machine) loses datagrams after the tunnel delivered them.
            assert_eq!(
                report.received + report.socket_drops,
                report.sent,
                "datagrams lost on a link that loses none\n{}",
                ctx()
            );
        }
    }
    if expect == Expect::AllReordered {
        assert!(
            window.to_target.overtaken > 0 && report.late > 0,
            "nothing arrived out of order: the case tests nothing\n{}",
            ctx()
        );
    }

    // 3. The receiving daemons' byte counters: authenticated, not replayed, each once.
    std::thread::sleep(Duration::from_millis(300) + imp.delay + imp.jitter);
    let total = relay.stats();
    let (b_rx, _) = t.b.transfer_with(&t.a.keys.public);
    let (a_rx, _) = t.a.transfer_with(&t.b.keys.public);
    check_counted(name, "B from A", b_rx, &total, true);
    check_counted(name, "A from B", a_rx, &total, false);
    match imp {
        i if i.loss > 0.0 => assert!(total.to_target.dropped > 0 && total.to_client.dropped > 0),
        i if i.duplicate > 0.0 => assert!(
            total.to_target.duplicated > 0 && total.to_client.duplicated > 0,
            "{name}: the relay duplicated nothing: {total:?}"
        ),
        _ => assert!(
            total.to_target.overtaken > 0 && total.to_client.overtaken > 0,
            "{name}: the relay reordered nothing: {total:?}"
        ),
    }
    eprintln!(
        "{name}: up in {up:?}; 20 MB TCP in {:?} ({:.0} Mbit/s); UDP {}/{} arrived, {} late, \
         0 twice; relay A->B {:?}; relay B->A {:?}; B counted {b_rx} of {} bytes, A counted \
         {a_rx} of {}; total {:?}",
        transfer.elapsed,
        transfer.mbit_per_s(),
        report.received,
        report.sent,
        report.late,
        total.to_target,
        total.to_client,
        total.to_target.forwarded_bytes,
        total.to_client.forwarded_bytes,
        started.elapsed()
    );
}

/// `counted` (a daemon's rx bytes) against the bytes of the distinct datagrams the relay
/// delivered in that direction. Above means a copy was counted; a little below is allowed
/// for datagrams the daemon rightly refused (a retransmitted initiation it had answered).
fn check_counted(name: &str, what: &str, counted: u64, stats: &RelayStats, to_target: bool) {
    let dir = if to_target {
        &stats.to_target
    } else {
        &stats.to_client
    };
    let delivered = dir.forwarded_bytes;
    let copies = dir.duplicated;
    assert!(
        counted <= delivered,
        "{name}: {what}: the daemon counted {counted} bytes but only {delivered} bytes of \
         distinct datagrams were delivered (plus {copies} copies): duplicates were accepted"
    );
    assert!(
        delivered - counted <= delivered / 1000 + 4 * 148,
        "{name}: {what}: the daemon counted {counted} of {delivered} delivered bytes"
    );
}

struct ProbeSummary<'a>(&'a udp_probe::ProbeReport);

impl std::fmt::Debug for ProbeSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0;
        write!(
            f,
            "sent {} (errors {}), received {}, dropped at the receiving socket {}, duplicates \
             {}, late {}, foreign {}, first missing {:?}",
            r.sent,
            r.send_errors,
            r.received,
            r.socket_drops,
            r.duplicates,
            r.late,
            r.foreign,
            r.missing
        )
    }
}

#[test]
fn five_percent_loss() {
    case("loss 5%", Impairment::loss(0.05), Expect::Losses, 0x10_55);
}

#[test]
fn twenty_five_percent_reordering() {
    case(
        "reorder 25% (delay 10ms)",
        Impairment::reorder(0.25, Duration::from_millis(10)),
        Expect::AllReordered,
        0x2e_0d,
    );
}

#[test]
fn five_percent_duplication() {
    case(
        "duplicate 5%",
        Impairment::duplicate(0.05),
        Expect::All,
        0xd0_b1,
    );
}

#[test]
fn fifty_ms_delay_with_jitter() {
    case(
        "delay 50ms jitter 10ms",
        Impairment::delay(Duration::from_millis(50), Duration::from_millis(10)),
        Expect::AllReordered,
        0xde_1a,
    );
}

/// The instruments themselves: without WireGuard in between, the relay's copies and
/// reordering do reach the probe's receiver and are counted, so the zeros above mean
/// something.
#[test]
fn without_wireguard_the_probe_sees_copies_and_reordering() {
    let a = Netns::new("hia");
    let b = Netns::new("hib");
    a.connect(&b, "192.168.243.1/24", "192.168.243.2/24");
    let relay = Relay::start(
        &b,
        sock("192.168.243.2", RELAY_PORT),
        sock("192.168.243.2", PROBE_PORT),
        Impairment {
            duplicate: 0.05,
            ..Impairment::reorder(0.25, Duration::from_millis(10))
        },
        7,
    );
    let probe = Probe {
        count: 2000,
        interval: Duration::from_micros(500),
        size: 200,
        drain: Duration::from_millis(300),
    };
    let report = udp_probe::run_via(
        &a,
        sock("192.168.243.1", 0),
        &b,
        sock("192.168.243.2", PROBE_PORT),
        relay.addr,
        probe,
    );
    let stats = relay.stats();
    assert_eq!(report.received, report.sent, "{stats:?}");
    assert_eq!(report.duplicates, stats.to_target.duplicated, "{stats:?}");
    assert!(report.duplicates > 0 && report.late > 0, "{stats:?}");
}
