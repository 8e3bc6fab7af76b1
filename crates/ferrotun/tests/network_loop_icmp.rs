//! Two scenarios of the kernel's WireGuard selftest (tools/testing/selftests/wireguard/
//! netns.sh) re-created for a userspace daemon:
//! - a routing loop (a peer's endpoint reachable only through the tunnel itself) sends
//!   under 70,000 bytes in about a second, is logged once, and other peers keep working;
//! - so does a loop through two nested interfaces (each one's endpoint routed through the
//!   other);
//! - while a tunnel nested in another, the outer endpoints over a link, still carries
//!   full-size packets when its MTU leaves no room for the outer headers (IPv4 fragments);
//! - a packet for an address no peer carries gets ICMP/ICMPv6 destination unreachable
//!   (type 3 code 1, type 1 code 3), so the sender fails at once; the errors are
//!   rate-limited.
//!
//! Needs root, `wg` and `ping`.

mod common;

use common::icmp_listener::{IcmpListener, Received};
use common::inside::{join, spawn_in};
use common::tunnel::{Impl, Keypair, Tunnel, WG_TIMEOUT};
use common::unique_name;
use ferrotun_device::unreachable::{BURST, RATE_PER_SECOND};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The kernel's bound for the loop, bytes sent in about a second (netns.sh).
const LOOP_BOUND: u64 = 70_000;
/// In `a`'s tunnel subnets, routed into its interface, allowed to no peer.
const NO_PEER4: &str = "10.241.0.77";
const NO_PEER6: &str = "fd00:241::77";
/// The looping peer's inner address and subnet on `a`.
const LOOP_PEER: &str = "10.242.0.2";

fn tun_tx_bytes(t: &Tunnel) -> u64 {
    let path = format!("/sys/class/net/{}/statistics/tx_bytes", t.a.ifname());
    t.a.ns
        .exec_stdout("cat", &[&path])
        .trim()
        .parse()
        .expect("tx_bytes is a number")
}

/// netns.sh, "Test that onion routing works, even when it loops", with the routing-loop
/// bound: `a` reaches a second peer `c` through its tunnel to `b` (c's endpoint is b's
/// tunnel address: onion routing, which must keep working); then `c` goes away and `a` is
/// told that `c`'s endpoint is `c`'s own tunnel address, so everything `a` sends to `c` is
/// routed back into `a`'s interface, to `c` again.
#[test]
fn routing_loop_is_bounded_logged_once_and_other_peers_still_work() {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(20));

    // Peer c: a second daemon in b's namespace, reached through the a-b tunnel.
    let c_if = unique_name("ftc");
    let c = Impl::Ferrotun.start(&t.b.ns, &c_if);
    let c_keys = Keypair::generate();
    let wg = |ns: &common::Netns, args: &[&str]| {
        let mut full = vec![WG_TIMEOUT, "wg"];
        full.extend_from_slice(args);
        ns.exec("timeout", &full)
    };
    wg(
        &t.b.ns,
        &[
            "set",
            &c_if,
            "listen-port",
            "51822",
            "private-key",
            c_keys.path(),
            "peer",
            &t.a.keys.public,
            "allowed-ips",
            "10.242.0.1/32",
        ],
    );
    t.b.ns.ip(&["addr", "add", "10.242.0.2/24", "dev", &c_if]);
    t.b.ns.ip(&["link", "set", &c_if, "mtu", "1420", "up"]);
    let a_if = t.a.ifname().to_string();
    t.a.ns.ip(&["addr", "add", "10.242.0.1/24", "dev", &a_if]);
    let c_endpoint = format!("{}:51822", t.b.addrs.inner4);
    wg(
        &t.a.ns,
        &[
            "set",
            &a_if,
            "peer",
            &c_keys.public,
            "allowed-ips",
            "10.242.0.2/32",
            "endpoint",
            &c_endpoint,
        ],
    );
    t.ping(&t.a, LOOP_PEER, Duration::from_secs(20));

    // c disappears; a keeps its session and now sends to c inside c's own allowed IPs.
    drop(c);
    let looped_endpoint = format!("{LOOP_PEER}:7");
    wg(
        &t.a.ns,
        &[
            "set",
            &a_if,
            "peer",
            &c_keys.public,
            "endpoint",
            &looped_endpoint,
        ],
    );

    let (_, sent_before) = t.a.transfer_with(&c_keys.public);
    let tun_before = tun_tx_bytes(&t);
    let ping =
        t.a.ns
            .try_exec("ping", &["-W", "1", "-c", "10", "-f", LOOP_PEER]);
    assert!(
        !ping.status.success(),
        "nothing can answer through the loop"
    );
    std::thread::sleep(Duration::from_secs(1));
    let (_, sent_after) = t.a.transfer_with(&c_keys.public);
    let tun_after = tun_tx_bytes(&t);
    let sent = sent_after - sent_before;
    let routed_in = tun_after - tun_before;
    eprintln!("loop: daemon sent {sent} bytes to the peer, the kernel routed {routed_in} bytes into the TUN");
    assert!(
        sent < LOOP_BOUND,
        "the daemon sent {sent} bytes through the loop in about a second\n{}",
        t.logs()
    );
    assert!(
        routed_in < LOOP_BOUND,
        "{routed_in} bytes went round through the TUN in about a second\n{}",
        t.logs()
    );

    let log = t.a.daemon.log_text();
    let reports = log.lines().filter(|l| l.contains("routing loop")).count();
    assert_eq!(
        reports, 1,
        "the loop is logged once, not per packet:\n{log}"
    );

    // The other peer is still served.
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(10));
    t.ping(&t.a, t.b.addrs.inner6, Duration::from_secs(10));
}

/// `wg ARGS` in `ns`, bounded in time.
fn wg_in(ns: &common::Netns, args: &[&str]) -> std::process::Output {
    let mut full = vec![WG_TIMEOUT, "wg"];
    full.extend_from_slice(args);
    ns.exec("timeout", &full)
}

/// A second ferrotun tunnel between the namespaces of `t`, 10.243.0.1 in `a` to 10.243.0.2
/// in `b`: `a`'s end reaches `b`'s at `b_endpoint` (port 51834), so through the first
/// tunnel when that is one of its addresses.
struct Inner {
    a_if: String,
    b_if: String,
    a: common::Daemon,
    b: common::Daemon,
}

impl Inner {
    fn start(t: &Tunnel, b_endpoint: &str, mtu: &str) -> Inner {
        let a_if = unique_name("ftin");
        let b_if = unique_name("ftin");
        let a = Impl::Ferrotun.start(&t.a.ns, &a_if);
        let b = Impl::Ferrotun.start(&t.b.ns, &b_if);
        let (a_keys, b_keys) = (Keypair::generate(), Keypair::generate());
        wg_in(
            &t.a.ns,
            &[
                "set",
                &a_if,
                "listen-port",
                "51833",
                "private-key",
                a_keys.path(),
                "peer",
                &b_keys.public,
                "allowed-ips",
                "10.243.0.2/32",
                "endpoint",
                b_endpoint,
            ],
        );
        wg_in(
            &t.b.ns,
            &[
                "set",
                &b_if,
                "listen-port",
                "51834",
                "private-key",
                b_keys.path(),
                "peer",
                &a_keys.public,
                "allowed-ips",
                "10.243.0.1/32",
            ],
        );
        for (ns, ifname, addr) in [
            (&t.a.ns, &a_if, "10.243.0.1/24"),
            (&t.b.ns, &b_if, "10.243.0.2/24"),
        ] {
            ns.ip(&["addr", "add", addr, "dev", ifname]);
            ns.ip(&["link", "set", ifname, "mtu", mtu, "up"]);
        }
        t.ping(&t.a, "10.243.0.2", Duration::from_secs(20));
        Inner { a_if, b_if, a, b }
    }
}

/// netns.sh, "Test that we can route wg through wg" and the routing loop after it: a second
/// tunnel (inner, MTU 1340, IPv4 10.243.0.0/24) runs through the first one (its endpoints
/// are the first tunnel's IPv6 addresses); then `a`'s outer peer is given an endpoint inside
/// the inner tunnel, so in `a`'s namespace each interface's datagrams are routed into the
/// other, a little larger on every pass, and the peers in `b` are removed.
#[test]
fn nested_routing_loop_through_two_interfaces_is_bounded() {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner6, Duration::from_secs(20));
    let inner = Inner::start(&t, &format!("[{}]:51834", t.b.addrs.inner6), "1340");
    let (a1_if, b1_if, a1, b1) = (&inner.a_if, &inner.b_if, &inner.a, inner.b);

    // The loop: a's outer peer now sits behind the inner tunnel, whose own endpoint is
    // reached through the outer one. Nothing in b may answer any more.
    let a_if = t.a.ifname().to_string();
    wg_in(
        &t.a.ns,
        &[
            "set",
            &a_if,
            "peer",
            &t.b.keys.public,
            "endpoint",
            "10.243.0.2:7",
        ],
    );
    let b_if = t.b.ifname().to_string();
    t.b.ns.ip(&["link", "del", b1_if]);
    t.b.ns.ip(&["link", "del", &b_if]);
    drop(b1);

    let inner_sent = || {
        let text = String::from_utf8_lossy(&wg_in(&t.a.ns, &["show", a1_if, "transfer"]).stdout)
            .into_owned();
        text.split_whitespace()
            .nth(2)
            .and_then(|tx| tx.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("bad transfer line {text:?}"))
    };
    let (inner_before, outer_before) = (inner_sent(), t.a.transfer_with(&t.b.keys.public).1);
    let ping =
        t.a.ns
            .try_exec("ping", &["-W", "1", "-c", "10", "-f", "10.243.0.2"]);
    assert!(
        !ping.status.success(),
        "nothing can answer through the loop"
    );
    std::thread::sleep(Duration::from_secs(1));
    let inner = inner_sent() - inner_before;
    let outer = t.a.transfer_with(&t.b.keys.public).1 - outer_before;
    eprintln!("nested loop: the inner interface sent {inner} bytes, the outer {outer}");
    let logs = || format!("{}\n--- inner ---\n{}", t.logs(), a1.log_text());
    // netns.sh measures the inner interface (its wg1); the outer one sends the same
    // datagrams again with its headers on, and is held to having stopped too.
    assert!(
        inner < LOOP_BOUND,
        "the inner interface sent {inner} bytes through the loop in about a second\n{}",
        logs()
    );
    // And it has ended: another second adds nothing.
    let (inner_now, outer_now) = (inner_sent(), t.a.transfer_with(&t.b.keys.public).1);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        (inner_sent(), t.a.transfer_with(&t.b.keys.public).1),
        (inner_now, outer_now),
        "the loop still runs\n{}",
        logs()
    );
}

/// A tunnel nested in another on the same host whose MTU leaves no room for the outer
/// headers (1420 in 1420, wg-quick's default for both when the inner MTU is set by hand):
/// over IPv4 the kernel fragments the inner tunnel's full-size datagrams into the outer
/// one, which must carry the fragments (the kernel's WireGuard does). The outer
/// interfaces' own endpoints are reached over the veth, so no loop is possible and the
/// nested-loop guard stays out of the way (loop_guard.rs).
#[test]
fn nested_tunnel_with_an_inner_mtu_too_large_for_the_outer_still_carries_full_packets() {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    t.ping(&t.a, t.b.addrs.inner4, Duration::from_secs(20));
    let inner = Inner::start(&t, &format!("{}:51834", t.b.addrs.inner4), "1420");
    let logs = || format!("{}\n--- inner ---\n{}", t.logs(), inner.a.log_text());
    let mut failures = Vec::new();
    // 1392 fills the inner MTU: its WireGuard datagram (1480 bytes) does not fit the outer.
    for size in [1200, 1360, 1392] {
        let size_s = size.to_string();
        let answered = (0..3).any(|_| {
            t.a.ns
                .try_exec(
                    "ping",
                    &[
                        "-c",
                        "1",
                        "-W",
                        "2",
                        "-M",
                        "dont",
                        "-s",
                        &size_s,
                        "10.243.0.2",
                    ],
                )
                .status
                .success()
        });
        if !answered {
            failures.push(size);
        }
    }
    assert!(
        failures.is_empty(),
        "pings of {failures:?} bytes through the nested tunnel unanswered\n{}",
        logs()
    );
    let done = common::transfer::tcp_transfer(
        &t.a.ns,
        &t.b.ns,
        "10.243.0.2",
        5098,
        2 << 20,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("transfer through the nested tunnel: {e}\n{}", logs()));
    assert_eq!(done.sent_sha256, done.received_sha256, "data corrupted");
}

/// `ping -c1` to an address no peer carries ends at once with the unreachable error.
#[test]
fn ping_to_an_address_without_a_peer_fails_fast() {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);
    for (addr, expected) in [
        (NO_PEER4, "Destination Host Unreachable"),
        (NO_PEER6, "Address unreachable"),
    ] {
        let started = Instant::now();
        let out = t.a.ns.try_exec("ping", &["-c", "1", "-W", "2", addr]);
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "ping {addr} succeeded: {text}");
        assert!(
            text.contains(expected),
            "ping {addr} did not report {expected:?}:\n{text}\n{}",
            t.logs()
        );
        assert!(
            took < Duration::from_millis(1500),
            "ping {addr} took {took:?}"
        );
    }
}

/// The Internet checksum over `data` after `initial`, folded; 0 for a correct message.
fn checksum(data: &[u8], initial: u64) -> u16 {
    let mut sum = initial;
    for pair in data.chunks(2) {
        sum += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn v6_pseudo_sum(src: &IpAddr, dst: &IpAddr, len: usize) -> u64 {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("not IPv6");
    };
    let mut sum = 0u64;
    for pair in s.octets().chunks(2).chain(d.octets().chunks(2)) {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    sum + len as u64 + 58
}

/// Connects with TCP to `dst` (port 9) and returns how long the connect took to fail
/// with EHOSTUNREACH (host unreachable aborts a connection that is being opened); then
/// sends a UDP datagram there and returns its local address and the ICMP error for it.
fn probe(v6: bool, dst: &str) -> (Duration, IpAddr, u16, Received) {
    let listener = IcmpListener::open(v6, Duration::from_millis(200)).expect("raw ICMP socket");
    let target: SocketAddr = if v6 {
        format!("[{dst}]:9")
    } else {
        format!("{dst}:9")
    }
    .parse()
    .unwrap();
    let started = Instant::now();
    let err = TcpStream::connect_timeout(&target, Duration::from_secs(3))
        .expect_err("nothing can accept");
    let took = started.elapsed();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EHOSTUNREACH),
        "connect reports host unreachable: {err}"
    );
    let sock = UdpSocket::bind(if v6 { "[::]:0" } else { "0.0.0.0:0" }).expect("bind");
    sock.connect(target).expect("connect");
    let local = sock.local_addr().unwrap();
    sock.send(b"ferrotun-probe").expect("send");
    let (kind, proto_at) = if v6 { (1, 8 + 6) } else { (3, 8 + 9) };
    let deadline = Instant::now() + Duration::from_secs(1);
    let error = listener
        .collect_until(deadline)
        .into_iter()
        .find(|r| r.message.first() == Some(&kind) && r.message.get(proto_at) == Some(&17))
        .expect("the ICMP error for the UDP datagram");
    (took, local.ip(), local.port(), error)
}

#[test]
fn unreachable_errors_have_the_kernels_type_code_and_quote_and_are_rate_limited() {
    let t = Tunnel::new(Impl::Ferrotun, Impl::Ferrotun);

    // IPv4: type 3 code 1, from the unreachable address (see the device's unreachable.rs
    // for why), quoting our datagram whole.
    let (took, local, port, e) = join(spawn_in(&t.a.ns, "probe4", || probe(false, NO_PEER4)));
    assert!(
        took < Duration::from_secs(1),
        "connect failed after {took:?}"
    );
    let m = &e.message;
    assert_eq!(
        (m[0], m[1]),
        (3, 1),
        "destination unreachable, host unreachable"
    );
    assert_eq!(checksum(m, 0), 0, "ICMP checksum");
    assert_eq!(e.from, NO_PEER4.parse::<IpAddr>().unwrap());
    let quoted = &m[8..];
    assert_eq!(quoted[0], 0x45);
    assert_eq!(quoted[9], 17, "quotes the UDP packet");
    assert_eq!(&quoted[12..16], &local_octets4(local));
    assert_eq!(&quoted[16..20], &[10, 241, 0, 77]);
    assert_eq!(u16::from_be_bytes([quoted[20], quoted[21]]), port);
    assert_eq!(u16::from_be_bytes([quoted[22], quoted[23]]), 9);
    assert_eq!(
        &quoted[28..],
        b"ferrotun-probe",
        "the whole datagram is quoted"
    );

    // IPv6: type 1 code 3, from the interface's own address.
    let (took, local, port, e) = join(spawn_in(&t.a.ns, "probe6", || probe(true, NO_PEER6)));
    assert!(
        took < Duration::from_secs(1),
        "connect failed after {took:?}"
    );
    let m = &e.message;
    assert_eq!(
        (m[0], m[1]),
        (1, 3),
        "destination unreachable, address unreachable"
    );
    assert_eq!(e.from, t.a.addrs.inner6.parse::<IpAddr>().unwrap());
    assert_eq!(
        checksum(m, v6_pseudo_sum(&e.from, &local, m.len())),
        0,
        "ICMPv6 checksum"
    );
    let quoted = &m[8..];
    assert_eq!(quoted[0] >> 4, 6);
    assert_eq!(quoted[6], 17);
    assert_eq!(
        &quoted[24..40],
        &NO_PEER6.parse::<std::net::Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(u16::from_be_bytes([quoted[40], quoted[41]]), port);
    assert_eq!(&quoted[48..], b"ferrotun-probe");

    // A flood gets at most the burst plus the rate's worth of errors.
    std::thread::sleep(Duration::from_secs(1)); // the bucket refills
    let window = Duration::from_secs(1);
    let (sent, errors) = join(spawn_in(&t.a.ns, "flood", move || {
        let listener = IcmpListener::open(false, Duration::from_millis(100)).unwrap();
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        let started = Instant::now();
        let mut sent = 0;
        for _ in 0..3000 {
            if sock.send_to(b"flood", (NO_PEER4, 9)).is_ok() {
                sent += 1;
            }
            if started.elapsed() > window / 2 {
                break;
            }
        }
        let errors = listener
            .collect_until(started + window)
            .into_iter()
            .filter(|r| {
                r.message.first() == Some(&3) && r.message.get(24..28) == Some(&[10, 241, 0, 77])
            })
            .count() as u64;
        (sent, errors)
    }));
    let most = u64::from(BURST) + u64::from(RATE_PER_SECOND) * window.as_secs() + 5;
    eprintln!("flood: {sent} datagrams, {errors} errors (at most {most})");
    assert!(
        sent > most * 4,
        "the flood is large enough to show the limit: {sent}"
    );
    assert!(
        errors >= u64::from(BURST) / 2,
        "the burst is answered: {errors}\n{}",
        t.logs()
    );
    assert!(
        errors <= most,
        "{errors} errors for a flood of {sent}: not rate-limited"
    );
}

fn local_octets4(ip: IpAddr) -> [u8; 4] {
    match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("expected IPv4"),
    }
}
