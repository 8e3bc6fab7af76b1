//! The drop reasons that need the handshake path in a state a test cannot hold a real
//! daemon in for long, on the core's virtual clock: cookies demanded under load, the
//! per-source rate limit, and an initiation flood (two less than 20 ms apart). Each sends
//! N and checks that exactly that counter moved by N and no other drop counter moved.
//! Also: a device's totals are the sum of its peers' counts, removed peers included.

use ferrotun_proto::counters::{Counter, Counts};
use ferrotun_proto::interface::{Env, Interface, PeerRef};
use ferrotun_proto::keys::PrivateKey;
use ferrotun_proto::time::{Instant, WallTime};
use ferrotun_testkit::forge::{
    initiation_index_and_mac1, initiation_with_cookie, open_cookie_reply,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

const N: u64 = 7;
const WALL0: u64 = 1_700_000_000;

fn us_addr() -> SocketAddr {
    "192.0.2.1:51820".parse().unwrap()
}
fn them_addr() -> SocketAddr {
    "192.0.2.2:51820".parse().unwrap()
}

/// Virtual time `ms` after the start, on both clocks.
fn env(ms: u64) -> Env {
    Env {
        now: Instant::ZERO + Duration::from_millis(ms),
        wall: WallTime::new(WALL0 + ms / 1000, ((ms % 1000) * 1_000_000) as u32),
    }
}

struct Setup {
    us: Interface,
    /// `them` as a peer of `us`.
    them_on_us: PeerRef,
    them: Interface,
    /// `us` as a peer of `them`.
    us_on_them: PeerRef,
    us_public: [u8; 32],
}

fn setup(seed: u64) -> Setup {
    let mut rng = StdRng::seed_from_u64(seed);
    let ours = PrivateKey::generate(&mut rng);
    let theirs = PrivateKey::generate(&mut rng);
    let us = Interface::new(Box::new(StdRng::seed_from_u64(seed + 1)));
    us.set_private_key(Some(ours.clone()));
    let them_on_us = us.add_peer(theirs.public_key()).unwrap();
    let them = Interface::new(Box::new(StdRng::seed_from_u64(seed + 2)));
    them.set_private_key(Some(theirs));
    let us_on_them = them.add_peer(ours.public_key()).unwrap();
    them.set_endpoint(&us_on_them, us_addr());
    Setup {
        us,
        them_on_us,
        them,
        us_on_them,
        us_public: *ours.public_key().as_bytes(),
    }
}

impl Setup {
    /// A fresh initiation from `them`, made at `ms` on their clock.
    fn initiation(&self, ms: u64) -> Vec<u8> {
        let out = self.them.initiate(&self.us_on_them, env(ms));
        assert_eq!(out.len(), 1, "them made no initiation at {ms} ms");
        out[0].data.clone()
    }
}

/// How much each drop counter moved; only those that moved.
fn drop_delta(before: &Counts, after: &Counts) -> BTreeMap<String, u64> {
    Counter::ALL
        .iter()
        .filter(|c| c.is_drop())
        .map(|c| (c.key().to_string(), after.get(*c) - before.get(*c)))
        .filter(|(_, d)| *d > 0)
        .collect()
}

fn assert_drops(before: &Counts, after: &Counts, expected: &[(Counter, u64)]) {
    let want: BTreeMap<String, u64> = expected
        .iter()
        .map(|(c, n)| (c.key().to_string(), *n))
        .collect();
    assert_eq!(drop_delta(before, after), want);
}

#[test]
fn cookie_required_under_load() {
    let s = setup(1);
    let init = s.initiation(0);
    let before = s.us.counts();
    for _ in 0..N {
        let out = s.us.handle_handshake(&init, them_addr(), true, env(0));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data.first(), Some(&3), "a cookie reply");
    }
    let after = s.us.counts();
    assert_drops(&before, &after, &[(Counter::DropCookieRequired, N)]);
    assert_eq!(
        after.get(Counter::CookieReplySent) - before.get(Counter::CookieReplySent),
        N
    );
    assert_eq!(after.get(Counter::RxInitiation), 0);
}

/// The cookie `us` gave `them` in `reply` to `init`.
fn cookie_of(s: &Setup, init: &[u8], reply: &[u8]) -> [u8; 16] {
    let (_, mac1) = initiation_index_and_mac1(init);
    open_cookie_reply(&s.us_public, reply, &mac1).unwrap()
}

#[test]
fn rate_limited_under_load() {
    let s = setup(2);
    let init = s.initiation(0);
    let reply = s.us.handle_handshake(&init, them_addr(), true, env(0));
    let cookie = cookie_of(&s, &init, &reply[0].data);
    let mut rng = StdRng::seed_from_u64(9);
    // The source's burst first: these pass the limit (and fail later, at decryption).
    let mut burst = 0;
    loop {
        let before = s.us.counts();
        let d = initiation_with_cookie(&s.us_public, &cookie, &mut rng);
        s.us.handle_handshake(&d, them_addr(), true, env(0));
        if s.us.counts().get(Counter::DropRateLimited) > before.get(Counter::DropRateLimited) {
            break;
        }
        burst += 1;
        assert!(burst < 100, "the rate limit never engaged");
    }
    let before = s.us.counts();
    for _ in 0..N {
        let d = initiation_with_cookie(&s.us_public, &cookie, &mut rng);
        assert!(s
            .us
            .handle_handshake(&d, them_addr(), true, env(0))
            .is_empty());
    }
    assert_drops(&before, &s.us.counts(), &[(Counter::DropRateLimited, N)]);
}

#[test]
fn initiation_flood() {
    let s = setup(3);
    let first = s.initiation(0);
    assert_eq!(
        s.us.handle_handshake(&first, them_addr(), false, env(0))
            .len(),
        1,
        "the first initiation is answered"
    );
    let before = s.us.counts();
    for k in 1..=N {
        // Each newer than the last (made 6 s later on their clock, past REKEY_TIMEOUT),
        // and arriving k ms after the accepted one: under the 20 ms minimum.
        let init = s.initiation(k * 6_000);
        assert!(s
            .us
            .handle_handshake(&init, them_addr(), false, env(k))
            .is_empty());
    }
    let after = s.us.counts();
    assert_drops(&before, &after, &[(Counter::DropInitiationFlood, N)]);
    assert_eq!(
        s.us.snapshot(&s.them_on_us)
            .stats
            .counts
            .get(Counter::DropInitiationFlood),
        N
    );
}

#[test]
fn device_totals_are_the_peers_sums_and_keep_removed_peers() {
    let s = setup(4);
    // A second peer of `us`.
    let other = Interface::new(Box::new(StdRng::seed_from_u64(40)));
    let other_key = PrivateKey::generate(&mut StdRng::seed_from_u64(41));
    other.set_private_key(Some(other_key.clone()));
    let us_on_other = other
        .add_peer(ferrotun_proto::keys::PublicKey::from_bytes(s.us_public))
        .unwrap();
    other.set_endpoint(&us_on_other, us_addr());
    let other_on_us = s.us.add_peer(other_key.public_key()).unwrap();
    // Each peer gets counted: an accepted initiation, a replay and floods.
    let first = s.initiation(0);
    s.us.handle_handshake(&first, them_addr(), false, env(0));
    s.us.handle_handshake(&first, them_addr(), false, env(100));
    let flood = s.initiation(6_000);
    s.us.handle_handshake(&flood, them_addr(), false, env(5));
    let init = other.initiate(&us_on_other, env(0))[0].data.clone();
    s.us.handle_handshake(&init, them_addr(), false, env(200));

    let peer_sum = |peers: &[Counts]| {
        let mut sum = Counts::default();
        for p in peers {
            for (c, v) in p.iter() {
                sum.set(c, sum.get(c) + v);
            }
        }
        sum
    };
    let snap = |p: &PeerRef| Counts::from(&s.us.snapshot(p).stats.counts);
    let check = |total: &Counts, peers: &Counts| {
        for c in Counter::ALL.iter().filter(|c| c.is_peer()) {
            assert_eq!(total.get(*c), peers.get(*c), "{}", c.key());
        }
    };
    let them_counts = snap(&s.them_on_us);
    let other_counts = snap(&other_on_us);
    assert_eq!(them_counts.get(Counter::DropReplayedTimestamp), 1);
    assert_eq!(them_counts.get(Counter::DropInitiationFlood), 1);
    assert_eq!(other_counts.get(Counter::RxInitiation), 1);
    let before = s.us.counts();
    check(
        &before,
        &peer_sum(&[them_counts.clone(), other_counts.clone()]),
    );

    // A removed peer's counts stay in the device's totals.
    assert!(s.us.remove_peer(&other_key.public_key()));
    let after = s.us.counts();
    assert_eq!(after, before, "removing a peer changed the totals");
    check(&after, &peer_sum(&[snap(&s.them_on_us), other_counts]));
}
