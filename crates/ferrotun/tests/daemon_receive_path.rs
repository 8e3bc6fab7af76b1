//! The receive and handshake side of a daemon, end to end between two ferrotun daemons:
//! - an authentic packet whose inner source the peer may not use is dropped, but only
//!   after it counted for the peer: the endpoint follows it, as in the kernel and
//!   wireguard-go;
//! - a burst of packets to a peer without a session (hundreds of "send the staged
//!   packets" requests for the handshake thread) is not mistaken for a handshake flood:
//!   the handshake completes on its first response, with no cookie reply and no retry.
//!
//! Needs root, `wg`, `nft` and `ping`.

mod common;

use common::inside::{join, spawn_in};
use common::process::eventually;
use common::require_tool;
use common::tunnel::{Impl, Tunnel};
use common::Netns;
use std::net::UdpSocket;
use std::time::Duration;

/// An inner address on side `a` that `b` does not allow for `a`.
const STRAY_INNER: &str = "10.241.0.77";
const NEW_OUTER: &str = "192.168.241.11";

#[test]
fn the_endpoint_follows_an_authentic_packet_whose_inner_source_is_dropped() {
    require_tool("wg");
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(20));
    let old_endpoint = format!("{}:{}", t.a.addrs.outer, t.a.addrs.port);
    assert!(t.b.show("endpoints").contains(&old_endpoint));

    // `a` moves to a new outer address and sends only packets from an inner address `b`
    // must drop (a keepalive or handshake would carry the new endpoint on its own; none
    // is due for several seconds).
    let veth = t.a.veth.clone();
    let sysctl = format!("net.ipv4.conf.{veth}.promote_secondaries=1");
    t.a.ns.exec("sysctl", &["-q", "-w", &sysctl]);
    t.a.ns
        .ip(&["addr", "add", &format!("{NEW_OUTER}/24"), "dev", &veth]);
    let old = format!("{}/24", t.a.addrs.outer);
    t.a.ns.ip(&["addr", "del", &old, "dev", &veth]);
    let stray = format!("{STRAY_INNER}/32");
    t.a.ns.ip(&["addr", "add", &stray, "dev", t.a.ifname()]);
    let to = format!("{}:9", t.b.addrs.inner4);
    let sender = spawn_in(&t.a.ns, "stray-sender", move || {
        let sock = UdpSocket::bind(format!("{STRAY_INNER}:0")).expect("bind the stray address");
        for _ in 0..3 {
            sock.send_to(b"from an address b does not allow", &to)
                .expect("send through the tunnel");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    join(sender);

    let new_endpoint = format!("{NEW_OUTER}:{}", t.a.addrs.port);
    let followed = eventually(Duration::from_secs(3), || {
        t.b.show("endpoints").contains(&new_endpoint)
    });
    assert!(
        followed,
        "b still reports {:?}, not {new_endpoint}\n{}",
        t.b.show("endpoints"),
        t.logs()
    );
}

/// Counts, in `ns`, the UDP datagrams leaving with a given UDP length (payload + 8).
fn count_outgoing(ns: &Netns, counters: &[(&str, u16)]) {
    let mut script = String::from(
        "table inet probe {\n\
         chain out { type filter hook output priority 0; policy accept;\n",
    );
    for (name, udp_len) in counters {
        script.push_str(&format!("udp length {udp_len} counter name {name}\n"));
    }
    script.push_str("}\n");
    for (name, _) in counters {
        script.push_str(&format!("counter {name} {{ }}\n"));
    }
    script.push_str("}\n");
    let path = std::env::temp_dir().join(format!("{}-probe.nft", ns.name));
    std::fs::write(&path, script).expect("write the nft script");
    ns.exec("nft", &["-f", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(&path);
}

fn counter(ns: &Netns, name: &str) -> u64 {
    let text = ns.exec_stdout("nft", &["list", "counter", "inet", "probe", name]);
    let packets = text
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .unwrap_or_else(|| panic!("no packet count in {text:?}"));
    packets
        .parse()
        .unwrap_or_else(|_| panic!("bad packet count in {text:?}"))
}

#[test]
fn a_burst_to_a_peer_without_a_session_completes_its_first_handshake() {
    require_tool("wg");
    require_tool("nft");
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    // 148-byte initiations and 64-byte cookie replies leaving `a`.
    count_outgoing(&t.a.ns, &[("initiations", 156), ("cookies", 72)]);

    let to = format!("{}:9", t.b.addrs.inner4);
    let burst = spawn_in(&t.a.ns, "burst", move || {
        let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
        let mut sent = 0;
        for _ in 0..500 {
            // The TUN's queue may overflow; the burst only needs to be large.
            if sock.send_to(&[0u8; 100], &to).is_ok() {
                sent += 1;
            }
        }
        sent
    });
    let sent = join(burst);
    assert!(sent > 200, "only {sent} packets of the burst were sent");

    let handshaked = eventually(Duration::from_secs(12), || {
        let text = t.a.show("latest-handshakes");
        text.split_whitespace()
            .nth(1)
            .is_some_and(|secs| secs != "0")
    });
    assert!(handshaked, "no handshake within 12 s\n{}", t.logs());
    assert_eq!(
        counter(&t.a.ns, "cookies"),
        0,
        "a answered its own peer's response with a cookie reply\n{}",
        t.logs()
    );
    assert_eq!(
        counter(&t.a.ns, "initiations"),
        1,
        "the handshake needed a retry\n{}",
        t.logs()
    );
}
