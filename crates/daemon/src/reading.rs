//! What the daemon answers to `stats=1` and a scrape: the device's counters now, as the
//! control plane's [`Stats`] model.

use ferrotun_device::Device;
use ferrotun_proto::counters::Counts;
use ferrotun_uapi::stats::model::keyed;
use ferrotun_uapi::stats::{PeerStats, Stats};

/// Reads the device's counters now, in one pass over the peers (each peer's lock taken
/// briefly, one at a time), so the totals agree with the peers listed.
pub fn read_stats(device: &Device) -> Stats {
    let (snapshots, totals) = device.snapshots_and_counts();
    let mut peers: Vec<PeerStats> = snapshots
        .into_iter()
        .map(|snap| PeerStats {
            public_key: snap.public_key.to_base64(),
            endpoint: snap.endpoint.map(|e| e.to_string()),
            allowed_ips: snap
                .allowed_ips
                .iter()
                .map(|(addr, cidr)| format!("{addr}/{cidr}"))
                .collect(),
            rx_bytes: snap.stats.rx_bytes,
            tx_bytes: snap.stats.tx_bytes,
            last_handshake: snap.stats.last_handshake.map(|w| w.secs),
            counters: keyed(&Counts::from(&snap.stats.counts), true),
        })
        .collect();
    peers.sort_by(|a, b| a.public_key.cmp(&b.public_key));
    Stats {
        interface: device.name().to_string(),
        listen_port: device.listen_port(),
        counters: keyed(&totals, false),
        peers,
    }
}
