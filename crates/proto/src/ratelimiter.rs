//! Per-source token bucket for handshake messages while under load (docs/PROTOCOL.md §4).
//!
//! A source may send [`PACKETS_BURSTABLE`] handshake messages at once and
//! [`PACKETS_PER_SECOND`] per second after that. Sources are grouped as the kernel groups
//! them: an IPv4 address is one source, an IPv6 /64 is one source, since anyone holding
//! one IPv6 address usually holds the whole /64 and could otherwise rotate through it.
//! A global limiter would let one flooder lock every honest peer out (one of the boringtun
//! bugs gotatun lists), so the buckets are per source.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;

use crate::time::Instant;

pub const PACKETS_PER_SECOND: u64 = 20;
pub const PACKETS_BURSTABLE: u64 = 5;
/// How many sources are tracked at most. Past this, new sources are refused rather than
/// letting a flood from many addresses grow memory without bound.
pub const MAX_ENTRIES: usize = 65_536;
/// A source silent this long is forgotten. Forgetting is lossless: a bucket left alone
/// for `PACKETS_BURSTABLE / PACKETS_PER_SECOND` (250 ms) is full again anyway.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often idle sources are swept, as part of an [`RateLimiter::allow`] call.
pub const GC_INTERVAL: Duration = Duration::from_secs(1);

/// Tokens are nanoseconds of credit; a packet costs this many.
const PACKET_COST: u64 = 1_000_000_000 / PACKETS_PER_SECOND;
const TOKEN_MAX: u64 = PACKET_COST * PACKETS_BURSTABLE;

/// A rate limiter shared by the threads that handle handshakes.
pub struct RateLimiter {
    max_entries: usize,
    state: Mutex<State>,
}

struct State {
    // std's SipHash with per-process random keys: the keys are attacker-chosen source
    // addresses, so collision flooding has to be out of reach.
    buckets: HashMap<Source, Bucket>,
    last_gc: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl Source {
    fn of(ip: IpAddr) -> Self {
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; keyed by /64 they
        // would all share one bucket.
        match ip.to_canonical() {
            IpAddr::V4(a) => Source::V4(a.octets()),
            IpAddr::V6(a) => {
                let o = a.octets();
                Source::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
        }
    }
}

struct Bucket {
    tokens: u64,
    last: Instant,
}

impl RateLimiter {
    pub fn new() -> Self {
        RateLimiter::with_max_entries(MAX_ENTRIES)
    }

    /// A limiter tracking at most `max_entries` sources.
    pub fn with_max_entries(max_entries: usize) -> Self {
        RateLimiter {
            max_entries,
            state: Mutex::new(State {
                buckets: HashMap::new(),
                last_gc: Instant::ZERO,
            }),
        }
    }

    /// Whether a handshake message from `ip` may be processed at `now`; counts it if so.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let source = Source::of(ip);
        let mut state = self.state.lock();
        if now.saturating_duration_since(state.last_gc) >= GC_INTERVAL {
            state.collect(now);
        }
        if let Some(bucket) = state.buckets.get_mut(&source) {
            let earned = duration_nanos(now.saturating_duration_since(bucket.last));
            bucket.last = now;
            bucket.tokens = bucket.tokens.saturating_add(earned).min(TOKEN_MAX);
            if bucket.tokens < PACKET_COST {
                return false;
            }
            bucket.tokens -= PACKET_COST;
            return true;
        }
        if state.buckets.len() >= self.max_entries {
            return false;
        }
        let bucket = Bucket {
            tokens: TOKEN_MAX - PACKET_COST,
            last: now,
        };
        state.buckets.insert(source, bucket);
        true
    }

    /// Forgets sources idle for longer than [`IDLE_TIMEOUT`]. [`allow`](Self::allow) does
    /// this on its own every [`GC_INTERVAL`]; tests call it to collect at a chosen time.
    #[cfg(test)]
    pub fn gc(&self, now: Instant) {
        self.state.lock().collect(now);
    }

    /// Number of sources currently tracked.
    pub fn len(&self) -> usize {
        self.state.lock().buckets.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    fn collect(&mut self, now: Instant) {
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last) <= IDLE_TIMEOUT);
        self.last_gc = now;
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new()
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("sources", &self.len())
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn at_ms(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    fn burst(limiter: &RateLimiter, source: IpAddr, now: Instant, tries: usize) -> usize {
        (0..tries).filter(|_| limiter.allow(source, now)).count()
    }

    #[test]
    fn burst_of_five_then_twenty_per_second() {
        let rl = RateLimiter::new();
        let src = ip("192.0.2.1");
        assert_eq!(burst(&rl, src, at_ms(0), 10), 5);
        // One attempt every millisecond for a second earns exactly one packet per 50 ms.
        let allowed: Vec<u64> = (1..=1000).filter(|&ms| rl.allow(src, at_ms(ms))).collect();
        assert_eq!(allowed.len(), 20);
        assert_eq!(allowed.first(), Some(&50));
        assert!(allowed.windows(2).all(|w| w[1] - w[0] == 50));
    }

    #[test]
    fn credit_is_capped_at_the_burst() {
        let rl = RateLimiter::new();
        let src = ip("192.0.2.1");
        assert_eq!(burst(&rl, src, at_ms(0), 5), 5);
        // 900 ms of silence (short of being forgotten) buys 5 packets, not 18.
        assert_eq!(burst(&rl, src, at_ms(900), 20), 5);
        assert_eq!(rl.len(), 1);
    }

    #[test]
    fn ipv4_sources_are_independent() {
        let rl = RateLimiter::new();
        assert_eq!(burst(&rl, ip("192.0.2.1"), at_ms(0), 10), 5);
        assert_eq!(burst(&rl, ip("192.0.2.2"), at_ms(0), 10), 5);
        assert_eq!(burst(&rl, ip("198.51.100.1"), at_ms(0), 10), 5);
        assert_eq!(rl.len(), 3);
    }

    #[test]
    fn ipv6_is_limited_per_slash_64() {
        let rl = RateLimiter::new();
        assert_eq!(burst(&rl, ip("2001:db8::1"), at_ms(0), 3), 3);
        assert_eq!(
            burst(&rl, ip("2001:db8::ffff:ffff:ffff:ffff"), at_ms(0), 10),
            2
        );
        assert_eq!(burst(&rl, ip("2001:db8:0:1::1"), at_ms(0), 10), 5);
        assert_eq!(rl.len(), 2);
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let rl = RateLimiter::new();
        assert_eq!(burst(&rl, ip("::ffff:192.0.2.1"), at_ms(0), 3), 3);
        assert_eq!(burst(&rl, ip("192.0.2.1"), at_ms(0), 10), 2);
        assert_eq!(burst(&rl, ip("::ffff:192.0.2.2"), at_ms(0), 10), 5);
    }

    #[test]
    fn idle_sources_are_collected() {
        let rl = RateLimiter::new();
        for n in 0..1000u32 {
            assert!(rl.allow(IpAddr::V4(Ipv4Addr::from(n)), at_ms(0)));
        }
        assert_eq!(rl.len(), 1000);
        rl.gc(at_ms(1000));
        assert_eq!(rl.len(), 1000, "a source is kept for a full second");
        rl.gc(at_ms(1001));
        assert!(rl.is_empty());

        // Without an explicit gc, traffic from anyone sweeps the table once a second.
        for n in 0..1000u32 {
            rl.allow(IpAddr::V4(Ipv4Addr::from(n)), at_ms(5000));
        }
        assert!(rl.allow(ip("203.0.113.9"), at_ms(6500)));
        assert_eq!(rl.len(), 1);
    }

    #[test]
    fn the_table_never_exceeds_its_bound() {
        let rl = RateLimiter::new();
        for n in 0..MAX_ENTRIES as u128 {
            let addr = Ipv6Addr::from((0x2001_0db8_u128 << 96) | (n << 64));
            assert!(rl.allow(IpAddr::V6(addr), at_ms(0)));
        }
        assert_eq!(rl.len(), MAX_ENTRIES);
        assert!(!rl.allow(ip("192.0.2.1"), at_ms(0)), "new source refused");
        assert!(
            rl.allow(ip("2001:db8::"), at_ms(0)),
            "known source still served"
        );
        assert_eq!(rl.len(), MAX_ENTRIES);
        // Once the flood goes quiet, room comes back.
        assert!(rl.allow(ip("192.0.2.1"), at_ms(1500)));
        assert_eq!(rl.len(), 1);
    }

    #[test]
    fn a_small_bound_is_respected_too() {
        let rl = RateLimiter::with_max_entries(3);
        for last in 1..=3u8 {
            assert!(rl.allow(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), at_ms(0)));
        }
        assert!(!rl.allow(ip("10.0.0.4"), at_ms(500)));
        assert_eq!(rl.len(), 3);
    }

    #[test]
    fn time_going_backwards_earns_nothing() {
        let rl = RateLimiter::new();
        let src = ip("192.0.2.1");
        assert_eq!(burst(&rl, src, at_ms(10_000), 5), 5);
        assert_eq!(burst(&rl, src, at_ms(1), 5), 0);
    }

    #[test]
    fn shared_between_threads() {
        let rl = Arc::new(RateLimiter::new());
        let src = ip("192.0.2.1");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let rl = Arc::clone(&rl);
                std::thread::spawn(move || burst(&rl, src, at_ms(0), 100))
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 5);
    }
}
