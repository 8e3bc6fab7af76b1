//! `ferrotun stats` for people: one block per interface, then one per peer, laid out as
//! `wg show` lays out its own (same headings, same byte and time formats), with what wg
//! cannot show: packets each way, handshakes, and drops by reason (only those that
//! happened).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::names::{counter_name, is_drop, printable};
use ferrotun_uapi::stats::{PeerStats, Stats};
use ferrotun_wg::pretty::{self, BOLD, GREEN, RESET, YELLOW};

/// Counters the interface block shows on lines of their own; every other non-zero counter
/// is listed under `events` (or `drops`).
const SHOWN: &[&str] = &[
    "received_packets",
    "sent_packets",
    "received_keepalives",
    "sent_keepalives",
    "handshakes_completed.initiator",
    "handshakes_completed.responder",
    "handshake_initiations_sent",
    "handshake_responses_sent",
];

/// The readable text of one interface, with ANSI colours (the caller strips them when
/// colours are off, as wg does). `now` is the Unix time handshake ages are measured from.
pub fn interface_text(stats: &Stats, now: u64) -> String {
    let mut out = String::new();
    let c = |k: &str| stats.counter(k);
    let (rx, tx) = stats.peers.iter().fold((0u64, 0u64), |(rx, tx), p| {
        (rx.saturating_add(p.rx_bytes), tx.saturating_add(p.tx_bytes))
    });
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{BOLD}{GREEN}interface{RESET}: {GREEN}{}{RESET}",
        printable(&stats.interface)
    );
    let _ = writeln!(out, "  {BOLD}listen port{RESET}: {}", stats.listen_port);
    let _ = writeln!(out, "  {BOLD}peers{RESET}: {}", stats.peers.len());
    let _ = writeln!(out, "  {BOLD}transfer{RESET}: {}", transfer(rx, tx));
    let _ = writeln!(
        out,
        "  {BOLD}packets{RESET}: {} received, {} sent",
        c("received_packets"),
        c("sent_packets")
    );
    let _ = writeln!(
        out,
        "  {BOLD}keepalives{RESET}: {} received, {} sent",
        c("received_keepalives"),
        c("sent_keepalives")
    );
    let _ = writeln!(out, "  {BOLD}handshakes{RESET}: {}", handshakes(&|k| c(k)));
    drops(&mut out, &stats.counters);
    let events: Vec<(&String, &u64)> = stats
        .counters
        .iter()
        .filter(|(k, v)| **v != 0 && !is_drop(k) && !SHOWN.contains(&k.as_str()))
        .collect();
    if !events.is_empty() {
        let _ = writeln!(out, "  {BOLD}events{RESET}:");
        for (k, v) in events {
            let _ = writeln!(out, "    {}: {v}", counter_name(k));
        }
    }
    for peer in &stats.peers {
        out.push('\n');
        peer_text(&mut out, peer, now);
    }
    out
}

fn peer_text(out: &mut String, peer: &PeerStats, now: u64) {
    let c = |k: &str| peer.counter(k);
    let _ = writeln!(
        out,
        "{BOLD}{YELLOW}peer{RESET}: {YELLOW}{}{RESET}",
        printable(&peer.public_key)
    );
    if let Some(endpoint) = &peer.endpoint {
        let _ = writeln!(out, "  {BOLD}endpoint{RESET}: {}", printable(endpoint));
    }
    let allowed = if peer.allowed_ips.is_empty() {
        "(none)".to_string()
    } else {
        printable(&peer.allowed_ips.join(", "))
    };
    let _ = writeln!(out, "  {BOLD}allowed ips{RESET}: {allowed}");
    if let Some(then) = peer.last_handshake {
        let _ = writeln!(
            out,
            "  {BOLD}latest handshake{RESET}: {}",
            pretty::ago(then, now)
        );
    }
    let _ = writeln!(
        out,
        "  {BOLD}transfer{RESET}: {}",
        transfer(peer.rx_bytes, peer.tx_bytes)
    );
    let _ = writeln!(
        out,
        "  {BOLD}packets{RESET}: {} received, {} sent",
        c("received_packets"),
        c("sent_packets")
    );
    let _ = writeln!(out, "  {BOLD}handshakes{RESET}: {}", handshakes(&|k| c(k)));
    drops(out, &peer.counters);
}

/// `1.23 MiB received, 4.56 MiB sent`, as wg prints a peer's transfer.
fn transfer(rx: u64, tx: u64) -> String {
    format!("{} received, {} sent", pretty::bytes(rx), pretty::bytes(tx))
}

/// `3 completed (2 as initiator, 1 as responder), 4 initiations and 1 response sent`.
fn handshakes(c: &dyn Fn(&str) -> u64) -> String {
    let initiator = c("handshakes_completed.initiator");
    let responder = c("handshakes_completed.responder");
    let initiations = c("handshake_initiations_sent");
    let responses = c("handshake_responses_sent");
    format!(
        "{} completed ({initiator} as initiator, {responder} as responder), \
         {initiations} {} and {responses} {} sent",
        initiator.saturating_add(responder),
        plural(initiations, "initiation", "initiations"),
        plural(responses, "response", "responses"),
    )
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// The non-zero drop counters, one a line, or a line saying there were none.
fn drops(out: &mut String, counters: &BTreeMap<String, u64>) {
    let dropped: Vec<(&String, &u64)> = counters
        .iter()
        .filter(|(k, v)| **v != 0 && is_drop(k))
        .collect();
    if dropped.is_empty() {
        let _ = writeln!(out, "  no drops");
        return;
    }
    let _ = writeln!(out, "  {BOLD}drops{RESET}:");
    for (k, v) in dropped {
        let _ = writeln!(out, "    {}: {v}", counter_name(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotun_wg::pretty::strip_ansi;

    fn sample() -> Stats {
        let counters = |pairs: &[(&str, u64)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<BTreeMap<_, _>>()
        };
        Stats {
            interface: "wg0".into(),
            listen_port: 51820,
            counters: counters(&[
                ("received_packets", 12),
                ("sent_packets", 30),
                ("received_keepalives", 0),
                ("sent_keepalives", 2),
                ("handshakes_completed.initiator", 1),
                ("handshake_initiations_sent", 1),
                ("received_dropped.unknown_index", 4),
                ("received_dropped.decrypt_failed", 0),
                ("cookie_replies_sent", 2),
                ("rekeys", 0),
            ]),
            peers: vec![
                PeerStats {
                    public_key: "AAAA=".into(),
                    endpoint: Some("192.0.2.1:51820".into()),
                    allowed_ips: vec!["10.0.0.2/32".into(), "fd00::2/128".into()],
                    rx_bytes: 1_289_748,
                    tx_bytes: 4_781_506,
                    last_handshake: Some(1000),
                    counters: counters(&[
                        ("received_packets", 12),
                        ("sent_packets", 30),
                        ("handshakes_completed.initiator", 1),
                        ("handshake_initiations_sent", 1),
                        ("received_dropped.decrypt_failed", 0),
                    ]),
                },
                PeerStats {
                    public_key: "BBBB=".into(),
                    endpoint: None,
                    allowed_ips: vec![],
                    rx_bytes: 0,
                    tx_bytes: 92,
                    last_handshake: None,
                    counters: counters(&[("received_dropped.replayed_counter", 3)]),
                },
            ],
        }
    }

    #[test]
    fn readable_text() {
        let text = strip_ansi(&interface_text(&sample(), 1063));
        let expected = "\
interface: wg0
  listen port: 51820
  peers: 2
  transfer: 1.23 MiB received, 4.56 MiB sent
  packets: 12 received, 30 sent
  keepalives: 0 received, 2 sent
  handshakes: 1 completed (1 as initiator, 0 as responder), 1 initiation and 0 responses sent
  drops:
    received, unknown index: 4
  events:
    cookie replies sent: 2

peer: AAAA=
  endpoint: 192.0.2.1:51820
  allowed ips: 10.0.0.2/32, fd00::2/128
  latest handshake: 1 minute, 3 seconds ago
  transfer: 1.23 MiB received, 4.56 MiB sent
  packets: 12 received, 30 sent
  handshakes: 1 completed (1 as initiator, 0 as responder), 1 initiation and 0 responses sent
  no drops

peer: BBBB=
  allowed ips: (none)
  transfer: 0 B received, 92 B sent
  packets: 0 received, 0 sent
  handshakes: 0 completed (0 as initiator, 0 as responder), 0 initiations and 0 responses sent
  drops:
    received, replayed counter: 3
";
        assert_eq!(text, expected);
    }

    #[test]
    fn device_data_cannot_reach_the_terminal() {
        let mut s = sample();
        s.interface = "wg\x1b[2J0".into();
        s.peers[0].endpoint = Some("\x1b]0;title\x07".into());
        let text = interface_text(&s, 0);
        assert!(!strip_ansi(&text).contains('\x1b'), "{text:?}");
        assert!(text.contains("wg?[2J0"));
    }
}
