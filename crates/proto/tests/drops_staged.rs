//! Packets staged for a handshake that never completes: when the peer's handshake is given
//! up, exactly the staged packets count as dropped. A keepalive that was waiting in the
//! same queue (a persistent keepalive due before any session) is not a packet and does
//! not count.

use ferrotun_proto::counters::Counter;
use ferrotun_proto::interface::{Env, Interface};
use ferrotun_proto::keys::PrivateKey;
use ferrotun_proto::time::{Instant, WallTime};
use ferrotun_testkit::packet::ipv4;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::{IpAddr, Ipv4Addr};

const N: u64 = 5;

fn env_at(now: Instant) -> Env {
    let secs = now.saturating_duration_since(Instant::ZERO).as_secs();
    Env {
        now,
        wall: WallTime::new(1_700_000_000 + secs, 0),
    }
}

#[test]
fn given_up_counts_the_staged_packets_not_a_waiting_keepalive() {
    let mut rng = StdRng::seed_from_u64(1);
    let us = Interface::new(Box::new(StdRng::seed_from_u64(2)));
    us.set_private_key(Some(PrivateKey::generate(&mut rng)));
    let peer = us
        .add_peer(PrivateKey::generate(&mut rng).public_key())
        .unwrap();
    us.set_endpoint(&peer, "192.0.2.2:51820".parse().unwrap());
    us.add_allowed_ip(&peer, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 32);
    let start = env_at(Instant::ZERO);
    // A persistent keepalive is due at once; with no session it waits in the queue.
    us.set_persistent_keepalive(&peer, 25, start);
    for i in 0..N as usize {
        let packet = ipv4([10, 0, 0, 1], [10, 0, 0, 2], 253, &vec![7; 20 + i]);
        us.encapsulate(&packet, start);
    }
    let counts = |c| us.snapshot(&peer).stats.counts.get(c);
    assert_eq!(counts(Counter::StagedNoSession), N);
    // Nobody answers: jump from timer to timer until the handshake is given up.
    for _ in 0..10_000 {
        if counts(Counter::HandshakeGiveUp) > 0 {
            break;
        }
        let next = us.next_deadline().expect("a timer is pending");
        us.tick(env_at(next));
    }
    assert_eq!(counts(Counter::HandshakeGiveUp), 1);
    assert_eq!(counts(Counter::DropStagedGiveUp), N);
    assert_eq!(us.counts().get(Counter::DropStagedGiveUp), N);
    assert_eq!(counts(Counter::DropStagedOverflow), 0);
}
