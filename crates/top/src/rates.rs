//! Per-second rates from two successive readings of the same interface.
//!
//! Counters only grow while a daemon runs; one that went down means the daemon restarted
//! (or the peer was removed and added again) between the readings, and its rate is shown as
//! zero rather than as a huge number.

use ferrotun_uapi::stats::{PeerStats, Stats};
use std::time::Duration;

/// Rates per second over the interval between two readings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    pub rx_bytes: f64,
    pub tx_bytes: f64,
    pub rx_packets: f64,
    pub tx_packets: f64,
    pub drops: f64,
}

/// How much a counter grew per second; 0 when it did not grow or no time passed.
pub fn per_second(before: u64, after: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    // Converting to f64 only for display.
    after.saturating_sub(before) as f64 / secs
}

/// A peer's rates; a peer absent from `before` (just added) counts from zero.
pub fn peer_rates(before: Option<&PeerStats>, after: &PeerStats, elapsed: Duration) -> Rates {
    let get = |p: Option<&PeerStats>, f: &dyn Fn(&PeerStats) -> u64| p.map_or(0, f);
    Rates {
        rx_bytes: per_second(get(before, &|p| p.rx_bytes), after.rx_bytes, elapsed),
        tx_bytes: per_second(get(before, &|p| p.tx_bytes), after.tx_bytes, elapsed),
        rx_packets: per_second(
            get(before, &|p| p.counter("received_packets")),
            after.counter("received_packets"),
            elapsed,
        ),
        tx_packets: per_second(
            get(before, &|p| p.counter("sent_packets")),
            after.counter("sent_packets"),
            elapsed,
        ),
        drops: per_second(get(before, &PeerStats::dropped), after.dropped(), elapsed),
    }
}

/// The interface's rates: bytes summed over its peers (the device counts no bytes of its
/// own), packets and drops from the device totals.
pub fn interface_rates(before: &Stats, after: &Stats, elapsed: Duration) -> Rates {
    let bytes = |s: &Stats| {
        s.peers.iter().fold((0u64, 0u64), |(rx, tx), p| {
            (rx.saturating_add(p.rx_bytes), tx.saturating_add(p.tx_bytes))
        })
    };
    let (rx0, tx0) = bytes(before);
    let (rx1, tx1) = bytes(after);
    Rates {
        rx_bytes: per_second(rx0, rx1, elapsed),
        tx_bytes: per_second(tx0, tx1, elapsed),
        rx_packets: per_second(
            before.counter("received_packets"),
            after.counter("received_packets"),
            elapsed,
        ),
        tx_packets: per_second(
            before.counter("sent_packets"),
            after.counter("sent_packets"),
            elapsed,
        ),
        drops: per_second(before.dropped(), after.dropped(), elapsed),
    }
}

/// The peer in `stats` with this public key.
pub fn find_peer<'a>(stats: &'a Stats, public_key: &str) -> Option<&'a PeerStats> {
    stats
        .peers
        .binary_search_by(|p| p.public_key.as_str().cmp(public_key))
        .ok()
        .and_then(|i| stats.peers.get(i))
        // Sorted by the daemon; a linear search covers a daemon that did not sort.
        .or_else(|| stats.peers.iter().find(|p| p.public_key == public_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn peer(key: &str, rx: u64, tx: u64, packets: u64, drops: u64) -> PeerStats {
        PeerStats {
            public_key: key.into(),
            endpoint: None,
            allowed_ips: vec![],
            rx_bytes: rx,
            tx_bytes: tx,
            last_handshake: None,
            counters: BTreeMap::from([
                ("received_packets".to_string(), packets),
                ("sent_packets".to_string(), packets * 2),
                ("received_dropped.decrypt_failed".to_string(), drops),
                ("received_keepalives".to_string(), 1000),
            ]),
        }
    }

    #[test]
    fn rates_per_second() {
        let two = Duration::from_secs(2);
        assert_eq!(per_second(10, 30, two), 10.0);
        // A counter that went down (a restarted daemon) is no negative or huge rate.
        assert_eq!(per_second(30, 10, two), 0.0);
        assert_eq!(per_second(0, 10, Duration::ZERO), 0.0);
        let r = peer_rates(
            Some(&peer("a", 100, 200, 10, 1)),
            &peer("a", 300, 600, 20, 5),
            two,
        );
        assert_eq!(
            r,
            Rates {
                rx_bytes: 100.0,
                tx_bytes: 200.0,
                rx_packets: 5.0,
                tx_packets: 10.0,
                drops: 2.0
            }
        );
        // A new peer counts from zero.
        assert_eq!(
            peer_rates(None, &peer("a", 40, 0, 0, 0), two).rx_bytes,
            20.0
        );
    }

    #[test]
    fn interface_rates_sum_peers() {
        let stats = |peers: Vec<PeerStats>, packets: u64| Stats {
            interface: "wg0".into(),
            listen_port: 1,
            counters: BTreeMap::from([
                ("received_packets".to_string(), packets),
                ("received_dropped.unknown_index".to_string(), packets / 2),
            ]),
            peers,
        };
        let before = stats(vec![peer("a", 0, 0, 0, 0), peer("b", 10, 10, 0, 0)], 0);
        let after = stats(vec![peer("a", 100, 0, 0, 0), peer("b", 110, 30, 0, 0)], 40);
        let r = interface_rates(&before, &after, Duration::from_secs(1));
        assert_eq!(
            (r.rx_bytes, r.tx_bytes, r.rx_packets, r.drops),
            (200.0, 20.0, 40.0, 20.0)
        );
        assert_eq!(find_peer(&after, "b").map(|p| p.rx_bytes), Some(110));
        assert!(find_peer(&after, "c").is_none());
    }
}
