//! The scrape's body: the series in the Prometheus text format (0.0.4), written by the
//! prometheus crate's `TextEncoder` from a fresh registry filled from one [`Stats`].
//!
//! - `wireguard_sent_bytes_total`, `wireguard_received_bytes_total` (counters) and
//!   `wireguard_latest_handshake_seconds` (gauge, Unix time, 0 when there was none), labels
//!   `interface`, `public_key`, `allowed_ips` (comma-joined, `(none)` when empty, as `wg
//!   show dump` prints them): the names, labels and values prometheus_wireguard_exporter
//!   exports, so its dashboards work unchanged.
//! - `ferrotun_<family>_total{interface[,<label>]}`: every device counter, every label value
//!   (zeros too, so series exist from the start); `ferrotun_peer_<family>_total{interface,
//!   public_key[,<label>]}` for the counters kept per peer.
//! - `ferrotun_peer_last_handshake_age_seconds`: absent for a peer that never completed a
//!   handshake (an age of "never" has no number; NaN would break sums and alerts, and the
//!   exporter-compatible timestamp already says 0).
//! - `ferrotun_peers` and `ferrotun_build_info{version}`.

use ferrotun_proto::counters::{Counter, Family};
use ferrotun_uapi::stats::{PeerStats, Stats};
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// The content type of the body (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const PEER_LABELS: [&str; 3] = ["interface", "public_key", "allowed_ips"];

/// Renders `stats` as seen at `now` (seconds since the Unix epoch).
pub fn render(stats: &Stats, now: u64) -> prometheus::Result<Vec<u8>> {
    let registry = Registry::new();
    exporter_series(&registry, stats)?;
    device_counters(&registry, stats)?;
    peer_counters(&registry, stats)?;
    peer_gauges(&registry, stats, now)?;
    let mut body = Vec::with_capacity(16 * 1024);
    TextEncoder::new().encode(&registry.gather(), &mut body)?;
    Ok(body)
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let vec = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

/// `wg show dump`'s allowed-ips field.
fn allowed_ips(peer: &PeerStats) -> String {
    if peer.allowed_ips.is_empty() {
        "(none)".to_string()
    } else {
        peer.allowed_ips.join(",")
    }
}

/// Gauges hold i64; a counter past that (never in practice) is shown at the maximum.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn exporter_series(registry: &Registry, stats: &Stats) -> prometheus::Result<()> {
    let sent = counter_vec(
        registry,
        "wireguard_sent_bytes_total",
        "Bytes sent to the peer.",
        &PEER_LABELS,
    )?;
    let received = counter_vec(
        registry,
        "wireguard_received_bytes_total",
        "Bytes received from the peer.",
        &PEER_LABELS,
    )?;
    let handshake = gauge_vec(
        registry,
        "wireguard_latest_handshake_seconds",
        "Unix time of the latest handshake with the peer, 0 if there was none.",
        &PEER_LABELS,
    )?;
    for peer in &stats.peers {
        let ips = allowed_ips(peer);
        let labels = [
            stats.interface.as_str(),
            peer.public_key.as_str(),
            ips.as_str(),
        ];
        sent.with_label_values(&labels).inc_by(peer.tx_bytes);
        received.with_label_values(&labels).inc_by(peer.rx_bytes);
        handshake
            .with_label_values(&labels)
            .set(int(peer.last_handshake.unwrap_or(0)));
    }
    Ok(())
}

/// The counter vector for `family`, with `first` labels before the family's own.
fn family_vec(
    registry: &Registry,
    prefix: &str,
    family: Family,
    first: &[&'static str],
) -> prometheus::Result<IntCounterVec> {
    let mut labels = first.to_vec();
    labels.extend(family.label_name());
    let name = format!("{prefix}{}_total", family.name());
    counter_vec(registry, &name, family.help(), &labels)
}

fn device_counters(registry: &Registry, stats: &Stats) -> prometheus::Result<()> {
    for &family in Family::ALL {
        let vec = family_vec(registry, "ferrotun_", family, &["interface"])?;
        for &counter in Counter::ALL.iter().filter(|c| c.family() == family) {
            let mut labels = vec![stats.interface.as_str()];
            labels.extend(counter.label());
            vec.with_label_values(&labels)
                .inc_by(stats.counter(counter.key()));
        }
    }
    Ok(())
}

fn peer_counters(registry: &Registry, stats: &Stats) -> prometheus::Result<()> {
    let peer_families = Family::ALL
        .iter()
        .copied()
        .filter(|&f| Counter::ALL.iter().any(|c| c.is_peer() && c.family() == f));
    for family in peer_families {
        let vec = family_vec(
            registry,
            "ferrotun_peer_",
            family,
            &["interface", "public_key"],
        )?;
        for peer in &stats.peers {
            for &counter in Counter::ALL
                .iter()
                .filter(|c| c.is_peer() && c.family() == family)
            {
                // Only what happened, as a client library's counter vector shows it: a
                // series per peer and reason from the start would be 25 series a peer,
                // hundreds of thousands for a large interface, for a scrape of zeros.
                let value = peer.counter(counter.key());
                if value == 0 {
                    continue;
                }
                let mut labels = vec![stats.interface.as_str(), peer.public_key.as_str()];
                labels.extend(counter.label());
                vec.with_label_values(&labels).inc_by(value);
            }
        }
    }
    Ok(())
}

fn peer_gauges(registry: &Registry, stats: &Stats, now: u64) -> prometheus::Result<()> {
    let age = gauge_vec(
        registry,
        "ferrotun_peer_last_handshake_age_seconds",
        "Seconds since the latest handshake with the peer; absent if there was none.",
        &["interface", "public_key"],
    )?;
    for peer in &stats.peers {
        if let Some(at) = peer.last_handshake {
            age.with_label_values(&[stats.interface.as_str(), peer.public_key.as_str()])
                .set(int(now.saturating_sub(at)));
        }
    }
    let peers = gauge_vec(
        registry,
        "ferrotun_peers",
        "Peers configured on the interface.",
        &["interface"],
    )?;
    peers
        .with_label_values(&[stats.interface.as_str()])
        .set(int(stats.peers.len() as u64));
    let info = gauge_vec(
        registry,
        "ferrotun_build_info",
        "Always 1; the version label names the running ferrotun.",
        &["version"],
    )?;
    info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sample() -> Stats {
        let peer = |key: &str, ips: &[&str], handshake| PeerStats {
            public_key: key.to_string(),
            endpoint: None,
            allowed_ips: ips.iter().map(|s| s.to_string()).collect(),
            rx_bytes: 1234,
            tx_bytes: 5678,
            last_handshake: handshake,
            counters: [("received_dropped.replayed_counter".to_string(), 7)]
                .into_iter()
                .collect(),
        };
        Stats {
            interface: "wg0".into(),
            listen_port: 51820,
            counters: [("received_dropped.invalid_mac1".to_string(), 3)]
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            peers: vec![
                peer(
                    "AAAA+/=",
                    &["10.0.0.2/32", "fd00::2/128"],
                    Some(1_700_000_000),
                ),
                peer("BBBB", &[], None),
            ],
        }
    }

    fn text() -> String {
        let body = render(&sample(), 1_700_000_010).expect("render");
        String::from_utf8(body).expect("utf-8")
    }

    #[test]
    fn exporter_compatible_series() {
        let t = text();
        let labels =
            r#"allowed_ips="10.0.0.2/32,fd00::2/128",interface="wg0",public_key="AAAA+/=""#;
        for line in [
            "# TYPE wireguard_sent_bytes_total counter".to_string(),
            "# TYPE wireguard_latest_handshake_seconds gauge".to_string(),
            format!("wireguard_sent_bytes_total{{{labels}}} 5678"),
            format!("wireguard_received_bytes_total{{{labels}}} 1234"),
            format!("wireguard_latest_handshake_seconds{{{labels}}} 1700000000"),
            r#"wireguard_latest_handshake_seconds{allowed_ips="(none)",interface="wg0",public_key="BBBB"} 0"#.to_string(),
        ] {
            assert!(t.lines().any(|l| l == line), "no line {line:?} in\n{t}");
        }
    }

    #[test]
    fn every_counter_and_label_value_is_there() {
        let t = text();
        for counter in Counter::ALL {
            let family = counter.family();
            let name = format!("ferrotun_{}_total", family.name());
            // The encoder writes labels sorted by name.
            let mut labels = vec![("interface", "wg0")];
            if let (Some(n), Some(v)) = (family.label_name(), counter.label()) {
                labels.push((n, v));
            }
            labels.sort();
            let labels: Vec<String> = labels.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
            let want = format!("{name}{{{}}} ", labels.join(","));
            assert!(t.contains(&want), "no {want:?}");
        }
        assert!(t.contains(
            "ferrotun_received_dropped_total{interface=\"wg0\",reason=\"invalid_mac1\"} 3\n"
        ));
        assert!(t.contains(
            "ferrotun_peer_received_dropped_total{interface=\"wg0\",public_key=\"BBBB\",reason=\"replayed_counter\"} 7\n"
        ));
        // Device-only families have no per-peer series, and a peer's zero counters none.
        assert!(!t.contains("ferrotun_peer_udp_send_errors_total"));
        assert!(!t.contains("public_key=\"BBBB\",reason=\"decrypt_failed\""));
        assert!(!t.contains("ferrotun_peer_received_packets_total{"));
    }

    #[test]
    fn handshake_age_only_after_a_handshake() {
        let t = text();
        assert!(t.contains(
            "ferrotun_peer_last_handshake_age_seconds{interface=\"wg0\",public_key=\"AAAA+/=\"} 10\n"
        ));
        assert!(!t.contains(
            "ferrotun_peer_last_handshake_age_seconds{interface=\"wg0\",public_key=\"BBBB\"}"
        ));
        assert!(t.contains("ferrotun_peers{interface=\"wg0\"} 2\n"));
        assert!(t.contains("ferrotun_build_info{version="));
    }

    /// The Grafana dashboard charts only series this encoder writes (it cannot drift).
    #[test]
    fn dashboard_names_only_series_that_exist() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../../contrib/grafana/ferrotun.json"))
                .expect("contrib/grafana/ferrotun.json is JSON");
        let t = text();
        let mut names = Vec::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                for prefix in ["wireguard_", "ferrotun_"] {
                    for (at, _) in expr.match_indices(prefix) {
                        let name: String = expr[at..]
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        names.push(name);
                    }
                }
            }
        }
        assert!(names.len() >= 10, "{names:?}");
        for name in names {
            assert!(
                t.contains(&format!("# TYPE {name} ")),
                "the dashboard charts {name}, which is not exported"
            );
        }
    }
}
