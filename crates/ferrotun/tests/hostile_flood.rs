//! Handshake flood against a daemon with an established tunnel.
//!
//! Three namespaces: A and B run ferrotun with a tunnel between them; C, the attacker, is
//! joined to B by a second veth and floods B's port from 508 source addresses with
//! initiations that carry a correct mac1 for B's public key (random everything else) and
//! with garbage of every message shape. The test measures the same iperf3 transfer A->B
//! before and during the flood and checks:
//! - the cookie mechanism engages: type-3 replies reach C and decrypt with B's cookie key;
//! - the transfer keeps at least 70 % of its unflooded throughput;
//! - B's resident memory stays under 64 MiB and stops growing after the first seconds;
//! - once the flood stops, a handshake with a new peer D (a daemon in C) succeeds within
//!   REKEY_TIMEOUT plus a margin, and A<->B still works.
//!
//! Needs root, `wg`, `iperf3` and `ping`.

mod common;

use common::flood::Flood;
use common::iperf::tcp_throughput;
use common::sampler::{max_rss, Sampler};
use common::tunnel::{Impl, Keypair, Tunnel};
use common::{unique_name, Daemon, Netns};
use ferrotun_proto::keys::PublicKey;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FLOOD_PER_SECOND: u64 = 40_000;
const IPERF_SECS: u32 = 5;
/// Before the flooded measurement starts: the daemon has gone under load by then.
const WARM_UP: Duration = Duration::from_millis(1500);
const RSS_LIMIT_KIB: u64 = 64 * 1024;
/// How much RSS may still grow from the first seconds of the flood to its end.
const RSS_GROWTH_KIB: u64 = 4 * 1024;
/// REKEY_TIMEOUT (5 s): a first initiation answered with a cookie (B may still be under
/// load for a moment) is retried with mac2 after it; plus jitter and a margin.
const NEW_PEER_BOUND: Duration = Duration::from_secs(7);

const C_OUTER: &str = "192.168.242.1";
const B_OUTER2: &str = "192.168.242.2";
const D_INNER: &str = "10.241.0.4";
const D_PORT: &str = "51822";

/// 10.77.0.1 - 10.77.1.254: two /24s of attacker addresses.
fn attacker_sources() -> Vec<IpAddr> {
    (0..=1u8)
        .flat_map(|net| (1..=254u8).map(move |host| IpAddr::V4(Ipv4Addr::new(10, 77, net, host))))
        .collect()
}

fn add_addresses(ns: &Netns, dev: &str, addrs: &[IpAddr]) {
    let mut child = Command::new("ip")
        .args(["-n", &ns.name, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ip -batch");
    let mut script = String::new();
    for a in addrs {
        script.push_str(&format!("addr add {a}/32 dev {dev}\n"));
    }
    child
        .stdin
        .take()
        .expect("ip stdin")
        .write_all(script.as_bytes())
        .expect("write ip batch");
    let out = child.wait_with_output().expect("ip -batch");
    assert!(
        out.status.success(),
        "ip -batch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Peer D: a ferrotun daemon in the attacker's namespace that B knows, idle until the
/// flood is over.
fn new_peer(c: &Netns, t: &Tunnel) -> Daemon {
    let ifname = unique_name("ftd");
    let daemon = Impl::Ferrotun.start(c, &ifname);
    let keys = Keypair::generate();
    let endpoint = format!("{B_OUTER2}:{}", t.b.addrs.port);
    let b_allowed = format!("{}/32", t.b.addrs.inner4);
    c.exec(
        "timeout",
        &[
            "20",
            "wg",
            "set",
            &ifname,
            "listen-port",
            D_PORT,
            "private-key",
            keys.path(),
            "peer",
            &t.b.keys.public,
            "allowed-ips",
            &b_allowed,
            "endpoint",
            &endpoint,
        ],
    );
    let inner = format!("{D_INNER}/24");
    c.ip(&["addr", "add", &inner, "dev", &ifname]);
    c.ip(&["link", "set", &ifname, "mtu", "1420", "up"]);
    let b_if = t.b.ifname().to_string();
    let d_allowed = format!("{D_INNER}/32");
    t.b.wg(&[
        "set",
        &b_if,
        "peer",
        &keys.public,
        "allowed-ips",
        &d_allowed,
    ]);
    daemon
}

#[test]
fn handshake_flood_does_not_starve_the_tunnel() {
    let started = Instant::now();
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(20));
    let c = Netns::new("hfc");
    let (veth_c, _) = c.connect(&t.b.ns, &format!("{C_OUTER}/24"), &format!("{B_OUTER2}/24"));
    let sources = attacker_sources();
    add_addresses(&c, &veth_c, &sources);
    t.b.ns.ip(&["route", "add", "10.77.0.0/16", "via", C_OUTER]);
    let d = new_peer(&c, &t);

    let baseline = tcp_throughput(&t.a.ns, &t.b.ns, t.b.addrs.inner4, 5201, IPERF_SECS)
        .unwrap_or_else(|e| panic!("unflooded iperf3: {e}\n{}", t.logs()));

    let b_pid = t.b.daemon.pid();
    let log_before = t.b.daemon.log_text().len();
    let responder = PublicKey::from_base64(&t.b.keys.public).expect("B's public key");
    let target: SocketAddr = format!("{B_OUTER2}:{}", t.b.addrs.port)
        .parse()
        .expect("target");
    let sampler = Sampler::start(b_pid, Duration::from_millis(250));
    let flood = Flood::start(
        &c,
        sources.clone(),
        target,
        *responder.as_bytes(),
        FLOOD_PER_SECOND,
    );
    std::thread::sleep(WARM_UP);
    let cookies_at_warm_up = flood.cookies.load(std::sync::atomic::Ordering::Relaxed);
    let flooded = tcp_throughput(&t.a.ns, &t.b.ns, t.b.addrs.inner4, 5202, IPERF_SECS);
    let report = flood.stop();
    let stopped = Instant::now();
    let samples = sampler.stop();
    let flooded = flooded.unwrap_or_else(|e| panic!("flooded iperf3: {e}\n{}", t.logs()));

    // A new peer right after the flood.
    let d_ok = c.ping_until(t.b.addrs.inner4, NEW_PEER_BOUND);
    let d_took = stopped.elapsed();
    let log_growth = t.b.daemon.log_text().len().saturating_sub(log_before);

    let flood_len = samples.last().map(|s| s.at).unwrap_or_default();
    let early = max_rss(&samples, Duration::ZERO, Duration::from_secs(2)).unwrap_or(0);
    let late = max_rss(
        &samples,
        flood_len.saturating_sub(Duration::from_secs(2)),
        flood_len * 2,
    )
    .unwrap_or(0);
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let summary = format!(
        "flood: {:.0} datagrams/s from {} addresses for {:?} ({} valid-mac1 initiations, {} \
         garbage, {} send errors); cookie replies verified {} ({} by the end of warm-up), \
         bad {}, other replies {}; throughput {:.0} Mbit/s unflooded, {:.0} Mbit/s flooded \
         ({:.0} %); B RSS {} KiB in the first 2 s, {} KiB in the last 2 s, peak {} KiB \
         ({} samples); B log grew {} bytes; new peer D answered {:?} after the flood stopped; \
         whole test {:?}",
        report.rate(),
        sources.len(),
        report.elapsed,
        report.valid_sent,
        report.garbage_sent,
        report.send_errors,
        report.cookies_verified,
        cookies_at_warm_up,
        report.cookies_bad,
        report.other_replies,
        baseline / 1e6,
        flooded / 1e6,
        flooded / baseline * 100.0,
        early,
        late,
        peak,
        samples.len(),
        log_growth,
        d_took,
        started.elapsed()
    );
    eprintln!("{summary}");
    let ctx = || format!("{summary}\n{}", t.logs());

    assert!(
        report.rate() >= 10_000.0,
        "the attacker only managed {:.0} datagrams/s: not a flood\n{}",
        report.rate(),
        ctx()
    );
    assert!(
        report.cookies_verified > 0,
        "no cookie reply reached the attacker: the daemon never went under load\n{}",
        ctx()
    );
    assert_eq!(report.cookies_bad, 0, "malformed cookie replies\n{}", ctx());
    assert_eq!(
        report.other_replies,
        0,
        "the daemon answered the flood with something other than cookies\n{}",
        ctx()
    );
    assert!(
        flooded >= 0.7 * baseline,
        "the flood cut the tunnel's throughput below 70 %\n{}",
        ctx()
    );
    assert!(peak < RSS_LIMIT_KIB, "RSS above 64 MiB\n{}", ctx());
    assert!(
        late <= early + RSS_GROWTH_KIB,
        "RSS still growing at the end of the flood\n{}",
        ctx()
    );
    assert!(
        d_ok && d_took <= NEW_PEER_BOUND + Duration::from_secs(1),
        "new peer D could not handshake after the flood\n{}\n--- D log ---\n{}",
        ctx(),
        d.log_text()
    );
    t.ping(&t.a, t.b.addrs.inner6, Duration::from_secs(5));
}
