//! The counters of one interface and of each of its peers, keyed by the core's stable
//! counter keys (`family` or `family.label`, see `ferrotun_proto::counters`).

use ferrotun_proto::counters::{Counter, Counts};
use serde::Serialize;
use std::collections::BTreeMap;

/// One interface's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub interface: String,
    pub listen_port: u16,
    /// Device totals: every counter, peers' included (removed peers' too).
    pub counters: BTreeMap<String, u64>,
    /// Sorted by public key.
    pub peers: Vec<PeerStats>,
}

/// One peer's counters; the transfer and handshake fields are the ones `wg show` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerStats {
    /// Base64, as `wg` prints it.
    pub public_key: String,
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<String>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Seconds since the Unix epoch of the latest handshake, if there was one.
    pub last_handshake: Option<u64>,
    /// The peer's own counters (only those kept per peer).
    pub counters: BTreeMap<String, u64>,
}

impl Stats {
    /// A device counter by key; 0 when absent (an older daemon that does not count it).
    pub fn counter(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    /// The sum of the device's drop counters.
    pub fn dropped(&self) -> u64 {
        sum_drops(&self.counters)
    }
}

/// Whether the counter `key` counts dropped packets (unknown keys do not).
pub fn is_drop_key(key: &str) -> bool {
    Counter::from_key(key).is_some_and(Counter::is_drop)
}

/// The drop counters of `counters`, all reasons together.
fn sum_drops(counters: &BTreeMap<String, u64>) -> u64 {
    counters
        .iter()
        .filter(|(k, _)| is_drop_key(k))
        .map(|(_, v)| v)
        .sum()
}

impl PeerStats {
    /// The peer's drops, all reasons together.
    pub fn dropped(&self) -> u64 {
        sum_drops(&self.counters)
    }

    pub fn counter(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }
}

/// Every counter of `counts` by key; `peer_only` keeps just those kept per peer.
pub fn keyed(counts: &Counts, peer_only: bool) -> BTreeMap<String, u64> {
    counts
        .iter()
        .filter(|(c, _)| !peer_only || c.is_peer())
        .map(|(c, v)| (c.key().to_string(), v))
        .collect()
}
