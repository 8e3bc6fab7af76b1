//! One screen of `ferrotun top`, as lines of text: made from two readings and the time
//! between them, with nothing of the terminal in it, so it is tested as text.
//!
//! ```text
//! ferrotun top  wg0  port 51820  2 peers   rx 1.21 MiB/s 850 pkt/s   tx 80.12 KiB/s 420 pkt/s   ...
//! interface drops: received, unknown index 4 (+0/s)
//!
//! PEER       ENDPOINT             RX/s           RX pkt/s  TX/s           TX pkt/s  HANDSHAKE    DROPS
//! AbCdEfGh…  192.168.241.2:51821  1.21 MiB/s     850       80.12 KiB/s    420       12s ago      none
//! ```

use std::time::Duration;

use super::names::{counter_name, counter_short, is_drop, printable, short_age, short_key};
use super::rates::{find_peer, interface_rates, peer_rates, per_second, Rates};
use ferrotun_uapi::stats::{PeerStats, Stats};
use ferrotun_wg::pretty::{self, strip_ansi};

/// What a frame is made from. `before` is `None` for the first frame, drawn before a second
/// reading exists: rates are shown as `-` then.
pub struct Sample<'a> {
    pub before: Option<&'a Stats>,
    pub after: &'a Stats,
    pub elapsed: Duration,
    /// Unix seconds, for handshake ages.
    pub now: u64,
}

/// The frame's lines, each at most `width` characters, at most `height` lines.
pub fn frame(sample: &Sample<'_>, width: usize, height: usize) -> Vec<String> {
    let after = sample.after;
    let rates = sample
        .before
        .map(|b| interface_rates(b, after, sample.elapsed));
    let handshakes = after.counter("handshakes_completed.initiator")
        + after.counter("handshakes_completed.responder");
    let mut lines = vec![
        format!(
            "ferrotun top  {}  port {}  {} {}   rx {} {} pkt/s   tx {} {} pkt/s   handshakes {}   drops {} {}   (q quits)",
            printable(&after.interface),
            after.listen_port,
            after.peers.len(),
            if after.peers.len() == 1 { "peer" } else { "peers" },
            byte_rate(rates.map(|r| r.rx_bytes)),
            packet_rate(rates.map(|r| r.rx_packets)),
            byte_rate(rates.map(|r| r.tx_bytes)),
            packet_rate(rates.map(|r| r.tx_packets)),
            handshakes,
            after.dropped(),
            drop_rate(rates.map(|r| r.drops)),
        ),
        device_drops(sample),
        String::new(),
    ];
    let endpoint_width = after
        .peers
        .iter()
        .map(|p| p.endpoint.as_deref().map_or(1, |e| e.chars().count()))
        .max()
        .unwrap_or(0)
        .clamp(8, 47);
    lines.push(row(
        &[
            "PEER",
            "ENDPOINT",
            "RX/s",
            "RX pkt/s",
            "TX/s",
            "TX pkt/s",
            "HANDSHAKE",
            "DROPS",
        ],
        endpoint_width,
    ));
    let room = height.saturating_sub(lines.len());
    let shown = if after.peers.len() > room {
        room.saturating_sub(1)
    } else {
        after.peers.len()
    };
    for peer in after.peers.iter().take(shown) {
        lines.push(peer_line(sample, peer, endpoint_width));
    }
    if shown < after.peers.len() {
        lines.push(format!(
            "… {} more peers (a taller terminal shows them)",
            after.peers.len() - shown
        ));
    }
    lines.truncate(height);
    lines
        .into_iter()
        .map(|l| l.chars().take(width).collect())
        .collect()
}

/// Columns: the key, the endpoint (its width varies), then fixed widths; at least two
/// spaces between any two, so a script reading the screen can split on them.
fn row(cells: &[&str; 8], endpoint_width: usize) -> String {
    let [key, endpoint, rx, rxp, tx, txp, age, drops] = cells;
    format!(
        "{key:<9}  {endpoint:<endpoint_width$}  {rx:<13}  {rxp:<8}  {tx:<13}  {txp:<8}  {age:<11}  {drops}"
    )
}

fn peer_line(sample: &Sample<'_>, peer: &PeerStats, endpoint_width: usize) -> String {
    let before = sample.before.map(|b| find_peer(b, &peer.public_key));
    let rates: Option<Rates> = before.map(|b| peer_rates(b, peer, sample.elapsed));
    let endpoint = peer.endpoint.as_deref().map_or("-".to_string(), printable);
    // A peer's drops: each reason that happened, its total, and how fast it grows now.
    let drops: Vec<String> = peer
        .counters
        .iter()
        .filter(|(k, v)| **v != 0 && is_drop(k))
        .map(|(k, v)| {
            let was = before.flatten().map_or(0, |b| b.counter(k));
            let rate = per_second(was, *v, sample.elapsed);
            if sample.before.is_some() && rate > 0.0 {
                format!("{} {v} (+{rate:.0}/s)", counter_short(k))
            } else {
                format!("{} {v}", counter_short(k))
            }
        })
        .collect();
    let drops = if drops.is_empty() {
        "none".to_string()
    } else {
        drops.join(", ")
    };
    row(
        &[
            &short_key(&peer.public_key),
            &endpoint,
            &byte_rate(rates.map(|r| r.rx_bytes)),
            &packet_rate(rates.map(|r| r.rx_packets)),
            &byte_rate(rates.map(|r| r.tx_bytes)),
            &packet_rate(rates.map(|r| r.tx_packets)),
            &short_age(peer.last_handshake, sample.now),
            &drops,
        ],
        endpoint_width,
    )
}

/// The device's own drops (those of no peer too): every reason that happened.
fn device_drops(sample: &Sample<'_>) -> String {
    let after = sample.after;
    let drops: Vec<String> = after
        .counters
        .iter()
        .filter(|(k, v)| **v != 0 && is_drop(k))
        .map(|(k, v)| match sample.before {
            Some(b) => format!(
                "{} {v} (+{:.0}/s)",
                counter_name(k),
                per_second(b.counter(k), *v, sample.elapsed)
            ),
            None => format!("{} {v}", counter_name(k)),
        })
        .collect();
    if drops.is_empty() {
        "interface drops: none".to_string()
    } else {
        format!("interface drops: {}", drops.join("; "))
    }
}

/// `1.21 MiB/s`; `-` before there are two readings.
fn byte_rate(rate: Option<f64>) -> String {
    match rate {
        // Whole bytes are all a rate needs; the cast saturates.
        Some(r) => format!("{}/s", strip_ansi(&pretty::bytes(r.round() as u64))),
        None => "-".to_string(),
    }
}

fn packet_rate(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{r:.0}"),
        None => "-".to_string(),
    }
}

fn drop_rate(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("(+{r:.0}/s)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn stats(rx: u64, packets: u64, drops: u64) -> Stats {
        let peer = |key: &str, endpoint: Option<&str>, rx: u64| PeerStats {
            public_key: key.into(),
            endpoint: endpoint.map(String::from),
            allowed_ips: vec!["10.0.0.2/32".into()],
            rx_bytes: rx,
            tx_bytes: 2 * rx,
            last_handshake: Some(100),
            counters: BTreeMap::from([
                ("received_packets".to_string(), packets),
                ("sent_packets".to_string(), packets),
                ("received_dropped.replayed_counter".to_string(), drops),
            ]),
        };
        Stats {
            interface: "wg0".into(),
            listen_port: 51820,
            counters: BTreeMap::from([
                ("received_packets".to_string(), packets),
                ("sent_packets".to_string(), packets),
                ("handshakes_completed.initiator".to_string(), 1),
                ("received_dropped.replayed_counter".to_string(), drops),
            ]),
            peers: vec![
                peer("AbCdEfGhIjKl=", Some("192.168.241.2:51821"), rx),
                peer("ZzZzZzZzZzZz=", None, 0),
            ],
        }
    }

    #[test]
    fn a_frame_with_rates() {
        let before = stats(0, 0, 0);
        let after = stats(2 * 1024 * 1024, 200, 6);
        let sample = Sample {
            before: Some(&before),
            after: &after,
            elapsed: Duration::from_secs(2),
            now: 112,
        };
        let lines = frame(&sample, 200, 40);
        assert_eq!(
            lines,
            vec![
                "ferrotun top  wg0  port 51820  2 peers   rx 1.00 MiB/s 100 pkt/s   tx 2.00 MiB/s 100 pkt/s   handshakes 1   drops 6 (+3/s)   (q quits)",
                "interface drops: received, replayed counter 6 (+3/s)",
                "",
                "PEER       ENDPOINT             RX/s           RX pkt/s  TX/s           TX pkt/s  HANDSHAKE    DROPS",
                "AbCdEfGh…  192.168.241.2:51821  1.00 MiB/s     100       2.00 MiB/s     100       12s ago      replayed_counter 6 (+3/s)",
                "ZzZzZzZz…  -                    0 B/s          100       0 B/s          100       12s ago      replayed_counter 6 (+3/s)",
            ]
        );
    }

    #[test]
    fn the_first_frame_has_no_rates_and_fits_the_screen() {
        let after = stats(10, 1, 0);
        let sample = Sample {
            before: None,
            after: &after,
            elapsed: Duration::ZERO,
            now: 100,
        };
        let lines = frame(&sample, 30, 5);
        assert_eq!(lines.len(), 5);
        assert!(lines.iter().all(|l| l.chars().count() <= 30));
        assert_eq!(lines[1], "interface drops: none");
        assert!(lines[4].starts_with("… 2 more peers"), "{lines:?}");
        let wide = frame(&sample, 200, 40);
        assert!(wide[4].contains("-              -         -"), "{wide:?}");
        assert!(wide[4].ends_with("0s ago       none"), "{wide:?}");
    }
}
