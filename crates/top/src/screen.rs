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
//!
//! In a narrower terminal the header ([`super::header`]) and the table
//! ([`super::columns`]) give up what matters least first.

use std::time::Duration;

use super::columns::{Cells, Columns};
use super::header::{self, byte_rate, Totals};
use super::names::{
    compact_age, compact_rate, counter_name, counter_short, cut, is_drop, printable, short_age,
};
use super::rates::{find_peer, interface_rates, peer_rates, per_second, Rates};
use ferrotun_uapi::stats::{PeerStats, Stats};

/// What a frame is made from. `before` is `None` for the first frame, drawn before a second
/// reading exists: rates are shown as `-` then.
pub struct Sample<'a> {
    pub before: Option<&'a Stats>,
    pub after: &'a Stats,
    pub elapsed: Duration,
    /// Unix seconds, for handshake ages.
    pub now: u64,
}

/// The frame's lines, each at most `width` characters, at most `height` lines. What does
/// not fit the width gives way by priority ([`header`], [`Columns::choose`]); a line still
/// too long is cut, ending in `…`.
pub fn frame(sample: &Sample<'_>, width: usize, height: usize) -> Vec<String> {
    let after = sample.after;
    let interface = printable(&after.interface);
    let totals = Totals {
        interface: &interface,
        port: after.listen_port,
        peers: after.peers.len(),
        rates: sample
            .before
            .map(|b| interface_rates(b, after, sample.elapsed)),
        handshakes: after.counter("handshakes_completed.initiator")
            + after.counter("handshakes_completed.responder"),
        drops: after.dropped(),
    };
    let endpoint_width = after
        .peers
        .iter()
        .map(|p| p.endpoint.as_deref().map_or(1, |e| e.chars().count()))
        .max()
        .unwrap_or(0)
        .clamp(8, 47);
    let columns = Columns::choose(width, endpoint_width);
    let mut lines = vec![
        header::line(&totals, width),
        device_drops(sample, width),
        String::new(),
        columns.heading(),
    ];
    let room = height.saturating_sub(lines.len());
    let shown = if after.peers.len() > room {
        room.saturating_sub(1)
    } else {
        after.peers.len()
    };
    for peer in after.peers.iter().take(shown) {
        lines.push(peer_line(sample, peer, &columns));
    }
    if shown < after.peers.len() {
        lines.push(format!(
            "… {} more peers (a taller terminal shows them)",
            after.peers.len() - shown
        ));
    }
    lines.truncate(height);
    lines.into_iter().map(|l| fit(&l, width)).collect()
}

/// `line` cut to `width` characters, its last one `…` when something was cut.
fn fit(line: &str, width: usize) -> String {
    match width {
        _ if line.chars().count() <= width => line.to_string(),
        0 => String::new(),
        _ => cut(line, width - 1),
    }
}

fn peer_line(sample: &Sample<'_>, peer: &PeerStats, columns: &Columns) -> String {
    let before = sample.before.map(|b| find_peer(b, &peer.public_key));
    let rates: Option<Rates> = before.map(|b| peer_rates(b, peer, sample.elapsed));
    let endpoint = peer.endpoint.as_deref().map_or("-".to_string(), printable);
    // A peer's drops: each reason that happened, its total, and how fast it grows now.
    let reasons: Vec<(String, u64, f64)> = peer
        .counters
        .iter()
        .filter(|(k, v)| **v != 0 && is_drop(k))
        .map(|(k, v)| {
            let was = before.flatten().map_or(0, |b| b.counter(k));
            (counter_short(k), *v, per_second(was, *v, sample.elapsed))
        })
        .collect();
    let measured = sample.before.is_some();
    let drops = if reasons.is_empty() {
        "none".to_string()
    } else if columns.compact {
        // The figures first, so a narrow column cut short still shows them.
        let total: u64 = reasons.iter().map(|(_, v, _)| v).sum();
        let rate: f64 = reasons.iter().map(|(_, _, r)| r).sum();
        let names: Vec<&str> = reasons.iter().map(|(k, _, _)| k.as_str()).collect();
        if measured && rate > 0.0 {
            format!("{total} +{rate:.0}/s {}", names.join(","))
        } else {
            format!("{total} {}", names.join(","))
        }
    } else {
        let parts: Vec<String> = reasons
            .iter()
            .map(|(k, v, rate)| {
                if measured && *rate > 0.0 {
                    format!("{k} {v} (+{rate:.0}/s)")
                } else {
                    format!("{k} {v}")
                }
            })
            .collect();
        parts.join(", ")
    };
    let bytes = |rate: Option<f64>| match (rate, columns.compact) {
        (Some(r), true) => compact_rate(r),
        (Some(r), false) => byte_rate(r),
        (None, _) => "-".to_string(),
    };
    let packets = |rate: Option<f64>| rate.map_or("-".to_string(), |r| format!("{r:.0}"));
    let age = if columns.compact {
        compact_age(peer.last_handshake, sample.now)
    } else {
        short_age(peer.last_handshake, sample.now)
    };
    columns.row(&Cells {
        key: &cut(&printable(&peer.public_key), columns.key),
        endpoint: &endpoint,
        rx: &bytes(rates.map(|r| r.rx_bytes)),
        rx_packets: &packets(rates.map(|r| r.rx_packets)),
        tx: &bytes(rates.map(|r| r.tx_bytes)),
        tx_packets: &packets(rates.map(|r| r.tx_packets)),
        handshake: &age,
        drops: &drops,
    })
}

/// The device's own drops (those of no peer too): every reason that happened, by its full
/// name, or by its short one when the full names do not fit.
fn device_drops(sample: &Sample<'_>, width: usize) -> String {
    let after = sample.after;
    let line = |name: fn(&str) -> String, label: &str| {
        let drops: Vec<String> = after
            .counters
            .iter()
            .filter(|(k, v)| **v != 0 && is_drop(k))
            .map(|(k, v)| match sample.before {
                Some(b) => format!(
                    "{} {v} (+{:.0}/s)",
                    name(k),
                    per_second(b.counter(k), *v, sample.elapsed)
                ),
                None => format!("{} {v}", name(k)),
            })
            .collect();
        if drops.is_empty() {
            format!("{label}: none")
        } else {
            format!("{label}: {}", drops.join("; "))
        }
    };
    let full = line(counter_name, "interface drops");
    if full.chars().count() <= width {
        full
    } else {
        line(counter_short, "drops")
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

    /// A frame two seconds after a first reading: 2 MiB received, 6 drops.
    fn frame_with_rates(width: usize, height: usize) -> Vec<String> {
        let before = stats(0, 0, 0);
        let after = stats(2 * 1024 * 1024, 200, 6);
        let sample = Sample {
            before: Some(&before),
            after: &after,
            elapsed: Duration::from_secs(2),
            now: 112,
        };
        frame(&sample, width, height)
    }

    #[test]
    fn a_frame_with_rates() {
        let lines = frame_with_rates(200, 40);
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
        assert!(frame(&sample, 0, 5).iter().all(String::is_empty));
        let lines = frame(&sample, 30, 5);
        assert_eq!(lines.len(), 5);
        assert!(lines.iter().all(|l| l.chars().count() <= 30));
        assert_eq!(lines[1], "interface drops: none");
        assert!(lines[4].starts_with("… 2 more peers"), "{lines:?}");
        let wide = frame(&sample, 200, 40);
        assert!(wide[4].contains("-              -         -"), "{wide:?}");
        assert!(wide[4].ends_with("0s ago       none"), "{wide:?}");
    }

    #[test]
    fn an_eighty_by_twenty_four_frame_keeps_what_matters() {
        let lines = frame_with_rates(80, 24);
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{lines:?}");
        assert_eq!(
            lines,
            vec![
                "wg0  rx 1.00MiB/s 100p/s  tx 2.00MiB/s 100p/s  hs 1  drops 6 +3/s  q quits",
                "interface drops: received, replayed counter 6 (+3/s)",
                "",
                "PEER       ENDPOINT             RX/s       TX/s       HANDSHAKE  DROPS",
                // Cut at the terminal's edge, the figures first.
                "AbCdEfGh…  192.168.241.2:51821  1.00MiB/s  2.00MiB/s  12s        6 +3/s replaye…",
                "ZzZzZzZz…  -                    0B/s       0B/s       12s        6 +3/s replaye…",
            ]
        );
    }
}
