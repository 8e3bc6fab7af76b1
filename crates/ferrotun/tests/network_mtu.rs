//! The interface MTU changed while the daemon runs (`ip link set mtu`, as wg-quick does):
//! pings of every size up to the new MTU are answered, padding never makes an outer
//! datagram longer than the MTU allows, and TCP runs at jumbo MTUs. The veth between the
//! namespaces takes 65535 bytes, so no outer packet is ever fragmented; but for one test,
//! where it is narrower than a full tunnel packet and the kernel must fragment them.
//! Needs root, `wg`, `wireguard-go`, `nft`, `ping`, `nc` and `sha256sum`.

mod common;

use common::transfer::tcp_transfer;
use common::tunnel::{Impl, Side, Tunnel};
use std::time::Duration;

const FIRST_PING: Duration = Duration::from_secs(20);
const MB: u64 = 1 << 20;
/// WireGuard's header and tag, and the outer IPv4 and UDP headers.
const OVERHEAD: usize = 32 + 20 + 8;

/// A tunnel whose veth carries the largest packets a link can.
fn jumbo_tunnel(initiator: Impl, responder: Impl) -> Tunnel {
    let t = Tunnel::new(initiator, responder);
    for side in [&t.a, &t.b] {
        side.ns.ip(&["link", "set", &side.veth, "mtu", "65535"]);
    }
    t.ping(&t.a, t.b.addrs.inner4, FIRST_PING);
    t.ping(&t.b, t.a.addrs.inner4, FIRST_PING);
    t
}

fn set_mtu(t: &Tunnel, mtu: usize) {
    for side in [&t.a, &t.b] {
        let ifname = side.ifname().to_string();
        side.ns
            .ip(&["link", "set", &ifname, "mtu", &mtu.to_string()]);
    }
}

/// Counts, in `side`'s namespace, tunnel datagrams arriving from its peer and those
/// longer than an MTU of `mtu` allows after padding.
fn count_outer_lengths(side: &Side, mtu: usize) {
    let port = side.addrs.port.to_string();
    let limit = (mtu + OVERHEAD).to_string();
    let script = format!(
        "table inet mtucheck\ndelete table inet mtucheck\ntable inet mtucheck {{\n\
         chain input {{\ntype filter hook input priority -300;\n\
         udp dport {port} counter\nudp dport {port} ip length > {limit} counter\n}}\n}}\n"
    );
    let mut child = side
        .ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("nft stdin")
        .write_all(script.as_bytes())
        .expect("write nft script");
    assert!(child.wait().expect("nft").success(), "nft refused {script}");
}

/// (all tunnel datagrams, those too long) counted since `count_outer_lengths`.
fn outer_counts(side: &Side) -> (u64, u64) {
    let text = side
        .ns
        .exec_stdout("nft", &["list", "chain", "inet", "mtucheck", "input"]);
    let counts: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split("packets ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(counts.len(), 2, "unexpected nft listing: {text}");
    (counts[0], counts[1])
}

/// One ping of `size` payload bytes, never fragmented, a few tries.
fn ping_answered(from: &Side, addr: &str, size: usize) -> bool {
    let size = size.to_string();
    (0..3).any(|_| {
        from.ns
            .try_exec(
                "ping",
                &["-c", "1", "-W", "2", "-M", "do", "-s", &size, addr],
            )
            .status
            .success()
    })
}

/// Payload sizes whose packets end at every 16-byte residue up to the MTU, and a spread
/// of smaller ones; `header` is the IP + ICMP header length.
fn ping_sizes(mtu: usize, header: usize) -> Vec<usize> {
    let top = mtu - header;
    let mut sizes: Vec<usize> = (0..16).map(|k| top - k).collect();
    for s in [
        0, 1, 15, 16, 17, 100, 555, 1000, 1200, 1371, 1372, 4000, 4001, 4008, 8000,
    ] {
        if s < top - 16 {
            sizes.push(s);
        }
    }
    sizes
}

fn mtu_changes(initiator: Impl, responder: Impl) {
    let t = jumbo_tunnel(initiator, responder);
    let mut failures = Vec::new();
    for mtu in [9000, 1280, 65000, 1300, 1420] {
        set_mtu(&t, mtu);
        for side in [&t.a, &t.b] {
            count_outer_lengths(side, mtu);
        }
        for (from, to) in [(&t.a, &t.b), (&t.b, &t.a)] {
            for (addr, header) in [(to.addrs.inner4, 28), (to.addrs.inner6, 48)] {
                for size in ping_sizes(mtu, header) {
                    if !ping_answered(from, addr, size) {
                        failures.push(format!("MTU {mtu}: ping -s {size} {addr}"));
                    }
                }
            }
        }
        // Padding is checked on what ferrotun sent; the other side's is its own business.
        for (receiver, sender) in [(&t.b, &t.a), (&t.a, &t.b)] {
            if sender.imp != Impl::Ferrotun {
                continue;
            }
            let (all, too_long) = outer_counts(receiver);
            assert!(all > 0, "MTU {mtu}: no tunnel datagrams counted");
            if too_long > 0 {
                failures.push(format!(
                    "MTU {mtu}: {too_long} of {all} datagrams from {:?} padded past the MTU",
                    sender.imp
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{initiator:?} -> {responder:?}:\n{}\n{}",
        failures.join("\n"),
        t.logs()
    );
}

fn jumbo_tcp(initiator: Impl, responder: Impl) {
    let t = jumbo_tunnel(initiator, responder);
    for mtu in [9000, 65000] {
        set_mtu(&t, mtu);
        let bytes = 64 * MB;
        let port = 5000 + (mtu % 1000) as u16;
        for (from, to) in [(&t.a, &t.b), (&t.b, &t.a)] {
            let done = tcp_transfer(
                &from.ns,
                &to.ns,
                to.addrs.inner4,
                port,
                bytes,
                Duration::from_secs(90),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "MTU {mtu}, {:?} -> {:?}: {e}\n{}",
                    from.imp,
                    to.imp,
                    t.logs()
                )
            });
            assert_eq!(
                done.sent_sha256, done.received_sha256,
                "MTU {mtu}: data corrupted"
            );
            eprintln!(
                "MTU {mtu}, {:?} -> {:?}: 64 MB in {:?} ({:.0} Mbit/s)",
                from.imp,
                to.imp,
                done.elapsed,
                done.mbit_per_s()
            );
        }
    }
}

#[test]
fn mtu_changes_ferrotun_to_ferrotun() {
    mtu_changes(Impl::Ferrotun, Impl::Ferrotun);
}

#[test]
fn mtu_changes_ferrotun_to_wireguard_go() {
    mtu_changes(Impl::Ferrotun, Impl::WireguardGo);
}

#[test]
fn jumbo_tcp_ferrotun_to_ferrotun() {
    jumbo_tcp(Impl::Ferrotun, Impl::Ferrotun);
}

#[test]
fn jumbo_tcp_ferrotun_to_wireguard_go() {
    jumbo_tcp(Impl::Ferrotun, Impl::WireguardGo);
}

/// A link narrower than a full tunnel packet (1280 bytes under a 1420-byte tunnel): the
/// kernel fragments the outer datagrams on the way out, and everything still arrives.
/// The routing-loop guard must not take that for a loop (see the device's loop_guard.rs).
#[test]
fn a_link_narrower_than_a_tunnel_packet_fragments_them() {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    for side in [&t.a, &t.b] {
        side.ns.ip(&["link", "set", &side.veth, "mtu", "1280"]);
    }
    t.ping(&t.a, t.b.addrs.inner4, FIRST_PING);
    let mut failures = Vec::new();
    for (from, to) in [(&t.a, &t.b), (&t.b, &t.a)] {
        for (addr, header) in [(to.addrs.inner4, 28), (to.addrs.inner6, 48)] {
            for size in [1200, 1420 - header - 1, 1420 - header] {
                if !ping_answered(from, addr, size) {
                    failures.push(format!("ping -s {size} {addr}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "unanswered: {failures:?}\n{}",
        t.logs()
    );
    let done = tcp_transfer(
        &t.a.ns,
        &t.b.ns,
        t.b.addrs.inner4,
        5099,
        4 * MB,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("transfer over the narrow link: {e}\n{}", t.logs()));
    assert_eq!(done.sent_sha256, done.received_sha256, "data corrupted");
}

/// A measurement, not a check (run with `--ignored --nocapture`, and once more with
/// `FERROTUN_NO_OFFLOAD=1`): ping round trips from the receiving side while a TCP upload
/// saturates the tunnel.
#[test]
#[ignore]
fn ping_rtt_during_upload() {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner4, FIRST_PING);
    t.ping(&t.b, t.a.addrs.inner4, FIRST_PING);
    std::thread::scope(|s| {
        let upload = s.spawn(|| {
            tcp_transfer(
                &t.a.ns,
                &t.b.ns,
                t.b.addrs.inner4,
                5100,
                1024 * MB,
                Duration::from_secs(60),
            )
        });
        std::thread::sleep(Duration::from_secs(1));
        let out = t.b.ns.exec_stdout(
            "ping",
            &["-c", "40", "-i", "0.1", "-W", "2", t.a.addrs.inner4],
        );
        let summary = out.lines().rev().take(2).collect::<Vec<_>>().join(" | ");
        let offload = std::env::var("FERROTUN_NO_OFFLOAD").as_deref() != Ok("1");
        eprintln!("offload {offload}: ping during upload: {summary}");
        match upload.join().expect("upload thread") {
            Ok(done) => eprintln!("upload: {:.0} Mbit/s", done.mbit_per_s()),
            Err(e) => eprintln!("upload: {e}"),
        }
    });
}
