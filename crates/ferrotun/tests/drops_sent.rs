//! One test per reason a packet from the tunnel is dropped or held back (`sent_dropped.*`,
//! `sent_staged.*`) and per UDP send error that routing or a firewall can provoke
//! (`udp_send_errors.*`): each sends N packets into the daemon's TUN and checks that
//! exactly that counter moved by N and no other drop counter moved.
//!
//! Needs root and `nft`. Not here: `sent_dropped.unsplittable` (the kernel hands the TUN
//! only super-packets it can split), and the errnos no route or rule yields for a UDP
//! send (ENOBUFS, EMSGSIZE: the socket lets the kernel fragment; EADDRNOTAVAIL: resent
//! from the kernel's choice of source; ECONNREFUSED; EAFNOSUPPORT).

mod drops_common;

use drops_common::*;
use ferrotun_testkit::require_tool;

const N: u64 = 7;

fn udp_to(addr: &str) -> String {
    format!("{addr}:9")
}

#[test]
fn no_peer() {
    let lab = Lab::start("snp", &[]);
    lab.key_and_port();
    let before = lab.stats();
    lab.send_into_tun(&udp_to(NO_PEER), N as usize, 100);
    let after = assert_drops(&lab, &before, &[("sent_dropped.no_peer", N)]);
    // Each is answered with ICMP unreachable, within the rate limit.
    assert!(moved(&before, &after, "icmp_unreachable_sent") >= 1);
}

#[test]
fn staged_for_a_peer_without_endpoint() {
    let lab = Lab::start("sne", &[]);
    lab.key_and_port();
    let tester = Tester::new(&lab, 1, TESTER_PORT);
    lab.add_peer(&tester, false);
    let before = lab.stats();
    lab.send_into_tun(&udp_to(TESTER_INNER_STR), N as usize, 100);
    wait_moved(&lab, &before, "sent_staged.no_endpoint", N);
    let after = assert_drops(&lab, &before, &[]);
    assert_eq!(moved(&before, &after, "sent_staged.no_endpoint"), N);
    assert_eq!(moved(&before, &after, "sent_staged.no_session"), 0);
    assert_eq!(after.peers[0].counter("sent_staged.no_endpoint"), N);
}

/// A peer that never answers: its staged queue overflows, its handshake is retried and
/// given up, and what was staged is dropped then. Timers compressed 20 times (a retry
/// every 250 ms, the give-up after about 5 s).
#[test]
fn staged_overflow_then_given_up() {
    let lab = Lab::start("sso", &["FERROTUN_TEST_TIMING=20,1000000,2000000"]);
    lab.key_and_port();
    // A socket that takes the initiations and never answers.
    let tester = Tester::new(&lab, 1, TESTER_PORT);
    lab.add_peer(&tester, true);
    let limit = ferrotun_proto::constants::MAX_STAGED_PACKETS as u64;
    let before = lab.stats();
    let to = udp_to(TESTER_INNER_STR);
    let total = limit + N;
    ferrotun_testkit::inside::join(ferrotun_testkit::inside::spawn_in(
        &lab.ns,
        "burst",
        move || {
            let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
            for i in 0..total as usize {
                sock.send_to(&vec![0x5a; 100 + i], &to).expect("send");
            }
        },
    ));
    wait_moved(&lab, &before, "sent_staged.no_session", total);
    let staged = assert_drops(&lab, &before, &[("sent_dropped.staged_overflow", N)]);
    assert_eq!(moved(&before, &staged, "handshake_give_ups"), 0);

    let given_up = wait_moved(&lab, &before, "handshake_give_ups", 1);
    let after = assert_drops(
        &lab,
        &before,
        &[
            ("sent_dropped.staged_overflow", N),
            ("sent_dropped.staged_given_up", limit),
        ],
    );
    assert_eq!(moved(&before, &after, "handshake_give_ups"), 1);
    assert_eq!(moved(&before, &after, "sent_staged.no_session"), total);
    let retries = moved(&before, &given_up, "handshake_retries");
    assert!(retries > 0, "no retry before the give-up");
    assert_eq!(
        moved(&before, &after, "handshake_initiations_sent"),
        retries + 1,
        "every initiation but the first is a retry"
    );
    while tester.recv().is_some() {}
}

/// A tester with a session; then `break_path` makes the daemon's sends to it fail, and
/// N packets into the TUN must each count once under `key`.
fn udp_send_error(tag: &str, break_path: impl FnOnce(&Lab), key: &str) {
    let lab = Lab::start(tag, &[]);
    lab.key_and_port();
    let mut tester = Tester::new(&lab, 1, TESTER_PORT);
    lab.add_peer(&tester, false);
    tester.handshake(&lab);
    // A first packet through proves the path and the session.
    let before = lab.stats();
    lab.send_into_tun(&udp_to(TESTER_INNER_STR), 1, 100);
    wait_moved(&lab, &before, "sent_packets", 1);
    break_path(&lab);
    let before = lab.stats();
    lab.send_into_tun(&udp_to(TESTER_INNER_STR), N as usize, 100);
    let after = assert_drops(&lab, &before, &[(key, N)]);
    // The core sealed them all; the kernel refused each.
    assert_eq!(moved(&before, &after, "sent_packets"), N);
}

#[test]
fn udp_send_error_eperm_from_the_firewall() {
    require_tool("nft");
    udp_send_error(
        "uep",
        |lab| {
            let script = format!(
                "table inet drops {{ chain out {{ type filter hook output priority 0; \
                 policy accept; ip daddr {TESTER_OUTER} udp dport {TESTER_PORT} drop; }}; }}"
            );
            lab.ns.exec("nft", &[&script]);
        },
        "udp_send_errors.EPERM",
    );
}

#[test]
fn udp_send_error_ehostunreach_from_an_unreachable_route() {
    udp_send_error(
        "ueh",
        |lab| {
            lab.ns
                .ip(&["route", "add", "unreachable", &format!("{TESTER_OUTER}/32")]);
        },
        "udp_send_errors.EHOSTUNREACH",
    );
}

#[test]
fn udp_send_error_enetunreach_without_a_route() {
    udp_send_error(
        "uen",
        |lab| {
            // The veth's own subnet route is the only way there.
            lab.ns.ip(&["route", "del", OUTER_SUBNET]);
        },
        "udp_send_errors.ENETUNREACH",
    );
}

#[test]
fn udp_send_error_einval_from_a_blackhole_route() {
    udp_send_error(
        "uei",
        |lab| {
            lab.ns
                .ip(&["route", "add", "blackhole", &format!("{TESTER_OUTER}/32")]);
        },
        "udp_send_errors.EINVAL",
    );
}

#[test]
fn udp_send_error_other_from_a_prohibit_route() {
    // EACCES has no counter of its own.
    udp_send_error(
        "ueo",
        |lab| {
            lab.ns
                .ip(&["route", "add", "prohibit", &format!("{TESTER_OUTER}/32")]);
        },
        "udp_send_errors.other",
    );
}

/// A peer whose endpoint is its own inner address: the daemon's initiation to it comes
/// back in through the TUN and is dropped there, once per initiation sent.
#[test]
fn routing_loop() {
    let lab = Lab::start("srl", &[]);
    lab.key_and_port();
    let tester = Tester::new(&lab, 1, TESTER_PORT);
    lab.set(&format!(
        "public_key={}\nallowed_ip={TESTER_INNER_STR}/32\nendpoint={TESTER_INNER_STR}:{TESTER_PORT}\n",
        hex(&tester.public)
    ));
    let before = lab.stats();
    lab.send_into_tun(&udp_to(TESTER_INNER_STR), 1, 100);
    // The first initiation; the next would come only after REKEY_TIMEOUT (5 s).
    wait_moved(&lab, &before, "handshake_initiations_sent", 1);
    let after = assert_drops(&lab, &before, &[("sent_dropped.routing_loop", 1)]);
    assert_eq!(moved(&before, &after, "handshake_initiations_sent"), 1);
}
