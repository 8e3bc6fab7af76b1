//! One test per reason a received datagram is dropped (`received_dropped.*`), and TUN write
//! errors: each sends a known number N of crafted datagrams to a real daemon and checks
//! that exactly that counter moved by N and no other drop counter moved. The handshake
//! queue filling up is the exception: how much of a flood it takes depends on the
//! machine, so that test checks that every datagram is counted exactly once.
//!
//! Needs root. Not here: `truncated` (the receive buffers hold 65,600 bytes, more than a
//! UDP datagram can carry), and `cookie_required` and `rate_limited` with exact counts
//! (they need the handshake thread under load for a known time; see
//! crates/proto/tests/drops_under_load.rs).

mod drops_common;

use drops_common::*;
use ferrotun_testkit::forge::{initiation_with_mac1, response_with_mac1};
use std::time::Duration;

const N: u64 = 7;

/// A daemon with its key and port and no peer, and a tester socket.
fn lab_with_key(tag: &str) -> (Lab, Tester) {
    let lab = Lab::start(tag, &[]);
    lab.key_and_port();
    let tester = Tester::new(&lab, 1, TESTER_PORT);
    (lab, tester)
}

/// A daemon whose peer is the tester, with a confirmed session.
fn lab_with_session(tag: &str, env: &[&str]) -> (Lab, Tester) {
    let lab = Lab::start(tag, env);
    lab.key_and_port();
    let mut tester = Tester::new(&lab, 1, TESTER_PORT);
    lab.add_peer(&tester, false);
    tester.handshake(&lab);
    // The session is confirmed once the keepalive has counted for the peer.
    let peer_has_received = || {
        lab.stats()
            .peers
            .first()
            .is_some_and(|p| p.counter("received_keepalives") >= 1)
    };
    assert!(
        ferrotun_testkit::process::eventually(Duration::from_secs(10), peer_has_received),
        "the session was not confirmed\n{}",
        lab.log()
    );
    (lab, tester)
}

#[test]
fn bad_size_or_type() {
    let (lab, tester) = lab_with_key("dbs");
    let before = lab.stats();
    let sized = |ty: u8, len: usize| {
        let mut d = vec![0u8; len];
        d[0] = ty;
        d
    };
    let mut reserved_set = sized(1, 148);
    reserved_set[2] = 1;
    let shapes = [
        sized(1, 149), // an initiation one byte too long
        sized(1, 147), // and one too short
        sized(2, 93),  // a response one byte too long
        sized(3, 63),  // a cookie reply one byte short
        sized(4, 31),  // a transport message shorter than header and tag
        sized(5, 64),  // no such type
        sized(0, 148), // type 0
        reserved_set,  // an initiation with a reserved byte set
        vec![],        // empty
    ];
    for d in &shapes {
        tester.send(d);
    }
    assert_drops(
        &lab,
        &before,
        &[("received_dropped.bad_size_or_type", shapes.len() as u64)],
    );
}

#[test]
fn invalid_mac1() {
    let (lab, tester) = lab_with_key("dim");
    let before = lab.stats();
    let mut r = rng(1);
    for i in 0..N {
        // A forged initiation or response: well sized, mac1 not made with our key.
        let d = if i % 2 == 0 {
            initiation_with_mac1(&[9; 32], &mut r)
        } else {
            response_with_mac1(&[9; 32], random_index(&mut r), &mut r)
        };
        tester.send(&d);
    }
    assert_drops(&lab, &before, &[("received_dropped.invalid_mac1", N)]);
}

#[test]
fn handshake_decrypt_failed() {
    let (lab, tester) = lab_with_key("dhd");
    let before = lab.stats();
    let mut r = rng(2);
    for _ in 0..N {
        tester.send(&initiation_with_mac1(&lab.public, &mut r));
    }
    assert_drops(
        &lab,
        &before,
        &[("received_dropped.handshake_decrypt_failed", N)],
    );
}

#[test]
fn unknown_static_key() {
    let (lab, mut tester) = lab_with_key("dus");
    let before = lab.stats();
    // Authentic initiations from a key the daemon has no peer for.
    for _ in 0..N {
        let init = tester.initiation();
        tester.send(&init);
    }
    assert_drops(&lab, &before, &[("received_dropped.unknown_static_key", N)]);
}

#[test]
fn unexpected_handshake_response_or_cookie_reply() {
    let (lab, tester) = lab_with_key("duh");
    let before = lab.stats();
    let mut r = rng(3);
    for i in 0..N {
        let index = random_index(&mut r);
        let d = if i % 2 == 0 {
            // A response (with a valid mac1) to no initiation of ours.
            response_with_mac1(&lab.public, index, &mut r)
        } else {
            // A cookie reply to no message of ours.
            let mut d = transport_to(index, 48, &mut r);
            d[0] = 3;
            d
        };
        tester.send(&d);
    }
    assert_drops(
        &lab,
        &before,
        &[("received_dropped.unexpected_handshake", N)],
    );
}

#[test]
fn no_private_key() {
    let lab = Lab::start("dnk", &[]);
    lab.set(&format!("listen_port={DAEMON_PORT}\n"));
    let tester = Tester::new(&lab, 1, TESTER_PORT);
    let before = lab.stats();
    let mut r = rng(4);
    for _ in 0..N {
        tester.send(&initiation_with_mac1(&lab.public, &mut r));
    }
    assert_drops(&lab, &before, &[("received_dropped.no_private_key", N)]);
}

#[test]
fn unknown_index() {
    let (lab, tester) = lab_with_key("dui");
    let before = lab.stats();
    let mut r = rng(5);
    for _ in 0..N {
        let index = random_index(&mut r);
        tester.send(&transport_to(index, 64, &mut r));
    }
    assert_drops(&lab, &before, &[("received_dropped.unknown_index", N)]);
}

#[test]
fn decrypt_failed() {
    let (lab, mut tester) = lab_with_session("ddf", &[]);
    let before = lab.stats();
    for i in 0..N {
        let mut d = tester.seal(&inner_packet(TESTER_INNER, 40 + i as usize));
        let last = d.len() - 1;
        d[last] ^= 1;
        tester.send(&d);
    }
    let after = assert_drops(&lab, &before, &[("received_dropped.decrypt_failed", N)]);
    assert_eq!(moved(&before, &after, "received_packets"), 0);
    let peer = &after.peers[0];
    assert_eq!(
        peer.counter("received_dropped.decrypt_failed"),
        N,
        "{peer:?}"
    );
}

#[test]
fn replayed_counter() {
    let (lab, mut tester) = lab_with_session("drc", &[]);
    let before = lab.stats();
    let d = tester.seal(&inner_packet(TESTER_INNER, 40));
    for _ in 0..=N {
        tester.send(&d);
    }
    let after = assert_drops(&lab, &before, &[("received_dropped.replayed_counter", N)]);
    assert_eq!(
        moved(&before, &after, "received_packets"),
        1,
        "the first one counts"
    );
    assert_eq!(
        after.peers[0].counter("received_dropped.replayed_counter"),
        N
    );
}

#[test]
fn source_not_allowed() {
    let (lab, mut tester) = lab_with_session("dsn", &[]);
    let before = lab.stats();
    for _ in 0..N {
        let d = tester.seal(&inner_packet([10, 99, 0, 5], 40));
        tester.send(&d);
    }
    let after = assert_drops(&lab, &before, &[("received_dropped.source_not_allowed", N)]);
    // Authentic datagrams: they count as received for the peer all the same.
    assert_eq!(moved(&before, &after, "received_packets"), N);
}

#[test]
fn malformed_inner() {
    let (lab, mut tester) = lab_with_session("dmi", &[]);
    let before = lab.stats();
    for i in 0..N {
        let d = if i % 2 == 0 {
            // Not IP at all.
            tester.seal(&[0x00; 40])
        } else {
            // IPv4 whose header claims more bytes than it carries.
            let mut p = inner_packet(TESTER_INNER, 40);
            p[2..4].copy_from_slice(&1000u16.to_be_bytes());
            tester.seal(&p)
        };
        tester.send(&d);
    }
    let after = assert_drops(&lab, &before, &[("received_dropped.malformed_inner", N)]);
    assert_eq!(moved(&before, &after, "received_packets"), N);
}

#[test]
fn stale_session() {
    // Timers compressed 60 times: a session is rejected after 3 s and erased after 9 s.
    let (lab, mut tester) = lab_with_session("dss", &["FERROTUN_TEST_TIMING=60,1000000,2000000"]);
    std::thread::sleep(Duration::from_millis(3500));
    let before = lab.stats();
    for _ in 0..N {
        let d = tester.seal(&inner_packet(TESTER_INNER, 40));
        tester.send(&d);
    }
    assert_drops(&lab, &before, &[("received_dropped.stale_session", N)]);
}

#[test]
fn tun_write_error_eio_while_the_interface_is_down() {
    let (lab, mut tester) = lab_with_session("dte", &[]);
    // A TUN whose interface is down refuses writes with EIO.
    lab.ns.ip(&["link", "set", lab.ifname(), "down"]);
    let before = lab.stats();
    for seq in 0..N {
        let d = tester.seal(&echo_request(seq as u16));
        tester.send(&d);
        // Each its own batch: nothing to merge.
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = assert_drops(&lab, &before, &[("tun_write_errors.EIO", N)]);
    assert_eq!(moved(&before, &after, "received_packets"), N);
}

/// The kernel's count of UDP datagrams it dropped in `lab`'s namespace for a full socket
/// buffer: those never reached the daemon, so it cannot count them.
fn kernel_rcvbuf_errors(lab: &Lab) -> u64 {
    let snmp = lab.ns.exec_stdout("cat", &["/proc/net/snmp"]);
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let (names, values) = (udp[0], udp[1]);
    let at = names
        .split_whitespace()
        .position(|n| n == "RcvbufErrors")
        .expect("RcvbufErrors in /proc/net/snmp");
    values
        .split_whitespace()
        .nth(at)
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

/// The handshake queue only fills when handshake messages come faster than the handshake
/// thread can even answer them with cookie replies, so how many of a flood it takes is not
/// known in advance. What is: every initiation of the flood that reached the daemon is
/// counted exactly once, as queue full, cookie required (once the queue is deep) or
/// decryption failed (before that), and nothing else moves.
#[test]
fn handshake_queue_full_under_a_flood() {
    const FLOOD: usize = 20_000;
    let (lab, _tester) = lab_with_key("dqf");
    let before = lab.stats();
    let kernel_before = kernel_rcvbuf_errors(&lab);
    let daemon: std::net::SocketAddr = format!("{DAEMON_OUTER}:{DAEMON_PORT}").parse().unwrap();
    let mut sent = 0u64;
    for round in 0..10u64 {
        let senders: Vec<_> = (0..2u64)
            .map(|t| {
                let public = lab.public;
                ferrotun_testkit::inside::spawn_in(&lab.tns, "flood", move || {
                    let mut r = rng(100 + round * 2 + t);
                    let pool: Vec<Vec<u8>> = (0..256)
                        .map(|_| initiation_with_mac1(&public, &mut r))
                        .collect();
                    let sock = std::net::UdpSocket::bind((TESTER_OUTER, 0)).expect("bind");
                    let mut n = 0u64;
                    for i in 0..FLOOD / 2 {
                        if sock.send_to(&pool[i % pool.len()], daemon).is_ok() {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        sent += senders
            .into_iter()
            .map(ferrotun_testkit::inside::join)
            .sum::<u64>();
        let full = wait_moved(&lab, &before, "received_dropped.handshake_queue_full", 0);
        if moved(&before, &full, "received_dropped.handshake_queue_full") > 0 {
            break;
        }
    }
    // Wait until the daemon has counted everything that reached it.
    let handled = [
        "received_dropped.handshake_queue_full",
        "received_dropped.cookie_required",
        "received_dropped.handshake_decrypt_failed",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let after = loop {
        let lost = kernel_rcvbuf_errors(&lab) - kernel_before;
        let now = lab.stats();
        let counted: u64 = handled.iter().map(|k| moved(&before, &now, k)).sum();
        if counted + lost >= sent {
            break now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{counted} of {sent} counted ({lost} lost in the kernel): {:?}\n{}",
            drop_delta(&before, &now),
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(400));
    let lost = kernel_rcvbuf_errors(&lab) - kernel_before;
    let delta = drop_delta(&before, &lab.stats());
    let counted: u64 = delta.values().sum();
    eprintln!("sent {sent}: {delta:?}, {lost} lost in the kernel");
    assert_eq!(
        counted + lost,
        sent,
        "every datagram counted once: {delta:?}, {lost} lost in the kernel"
    );
    assert!(
        delta.keys().all(|k| handled.contains(&k.as_str())),
        "{delta:?}"
    );
    assert!(
        moved(&before, &after, "received_dropped.handshake_queue_full") > 0,
        "the queue never filled: {delta:?}"
    );
}
