//! The first line of `ferrotun top`: the interface's totals, in the longest form that fits
//! the terminal's width.
//!
//! ```text
//! 200 columns: ferrotun top  wg0  port 51820  2 peers   rx 1.21 MiB/s 850 pkt/s   tx 123.90 KiB/s 425 pkt/s   handshakes 1   drops 6 (+3/s)   (q quits)
//!  80 columns: wg0  rx 1.21MiB/s 850p/s  tx 124KiB/s 425p/s  hs 1  drops 6 +3/s  q quits
//! ```
//!
//! What goes first when room is short is what the rest of the screen already says or what
//! never changes (the title, the port, the number of peers); the tx rate, the handshakes,
//! the drops and the key that quits stay to the last.

use super::names::compact_rate;
use super::rates::Rates;
use ferrotun_wg::pretty::{self, strip_ansi};

/// The interface's totals, as the header shows them.
pub struct Totals<'a> {
    /// Already made printable.
    pub interface: &'a str,
    pub port: u16,
    pub peers: usize,
    /// `None` before there are two readings.
    pub rates: Option<Rates>,
    pub handshakes: u64,
    pub drops: u64,
}

/// How short each part of the header is; `Form::default()` is the longest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Form {
    /// Two spaces between the groups instead of three.
    tight: bool,
    /// `(q quits)`, `q quits`, `q`.
    keys: u8,
    /// `hs 1` for `handshakes 1`.
    short_handshakes: bool,
    /// `1.21MiB/s 850p/s` for `1.21 MiB/s 850 pkt/s`.
    compact_rates: bool,
    /// `port 51820`, `:51820`, nothing.
    port: u8,
    no_title: bool,
    /// `(+3/s)`, `+3/s`, nothing.
    drop_rate: u8,
    no_peers: bool,
    no_packets: bool,
}

/// Each step makes the header shorter by one thing, least useful first. The last form
/// keeps the interface, both byte rates, the handshakes, the drops and `q`, and fits 80
/// columns even with a 15-character name, rates in GiB/s and a ten-digit drop count.
const STEPS: [fn(&mut Form); 12] = [
    |f| f.tight = true,
    |f| f.keys = 1,
    |f| f.short_handshakes = true,
    |f| f.compact_rates = true,
    |f| f.port = 1,
    |f| f.no_title = true,
    |f| f.drop_rate = 1,
    |f| f.port = 2,
    |f| f.no_peers = true,
    |f| f.no_packets = true,
    |f| f.drop_rate = 2,
    |f| f.keys = 2,
];

/// The header in the longest form at most `width` characters wide (the shortest form when
/// none is; the caller cuts it).
pub fn line(totals: &Totals<'_>, width: usize) -> String {
    let mut form = Form::default();
    let mut text = render(totals, &form);
    for step in STEPS {
        if text.chars().count() <= width {
            break;
        }
        step(&mut form);
        text = render(totals, &form);
    }
    text
}

fn render(t: &Totals<'_>, form: &Form) -> String {
    let mut identity = Vec::new();
    if !form.no_title {
        identity.push("ferrotun top".to_string());
    }
    identity.push(t.interface.to_string());
    match form.port {
        0 => identity.push(format!("port {}", t.port)),
        1 => identity.push(format!(":{}", t.port)),
        _ => {}
    }
    if !form.no_peers {
        let noun = if t.peers == 1 { "peer" } else { "peers" };
        identity.push(format!("{} {noun}", t.peers));
    }
    let rates = t.rates;
    let direction = |name: &str, bytes: Option<f64>, packets: Option<f64>| {
        let bytes = match (bytes, form.compact_rates) {
            (Some(b), true) => compact_rate(b),
            (Some(b), false) => byte_rate(b),
            (None, _) => "-".to_string(),
        };
        let packets = packets.map_or("-".to_string(), |p| format!("{p:.0}"));
        match (form.no_packets, form.compact_rates) {
            (true, _) => format!("{name} {bytes}"),
            (false, true) => format!("{name} {bytes} {packets}p/s"),
            (false, false) => format!("{name} {bytes} {packets} pkt/s"),
        }
    };
    let handshakes = if form.short_handshakes {
        format!("hs {}", t.handshakes)
    } else {
        format!("handshakes {}", t.handshakes)
    };
    let drops = match (rates.map(|r| r.drops), form.drop_rate) {
        (Some(r), 0) => format!("drops {} (+{r:.0}/s)", t.drops),
        (Some(r), 1) => format!("drops {} +{r:.0}/s", t.drops),
        _ => format!("drops {}", t.drops),
    };
    let keys = ["(q quits)", "q quits", "q"][usize::from(form.keys.min(2))];
    let groups = [
        identity.join("  "),
        direction("rx", rates.map(|r| r.rx_bytes), rates.map(|r| r.rx_packets)),
        direction("tx", rates.map(|r| r.tx_bytes), rates.map(|r| r.tx_packets)),
        handshakes,
        drops,
        keys.to_string(),
    ];
    groups.join(if form.tight { "  " } else { "   " })
}

/// `1.21 MiB/s`, as wg writes bytes.
pub fn byte_rate(rate: f64) -> String {
    // Whole bytes are all a rate needs; the cast saturates.
    format!("{}/s", strip_ansi(&pretty::bytes(rate.round() as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(interface: &str, rates: Option<Rates>, handshakes: u64, drops: u64) -> Totals<'_> {
        Totals {
            interface,
            port: 51820,
            peers: 2,
            rates,
            handshakes,
            drops,
        }
    }

    fn rates(bytes: f64, packets: f64, drops: f64) -> Option<Rates> {
        Some(Rates {
            rx_bytes: bytes,
            tx_bytes: bytes / 10.0,
            rx_packets: packets,
            tx_packets: packets / 2.0,
            drops,
        })
    }

    #[test]
    fn wide_terminals_get_the_whole_header() {
        let t = totals("wg0", rates(1_268_777.0, 850.0, 3.0), 1, 6);
        let full = "ferrotun top  wg0  port 51820  2 peers   rx 1.21 MiB/s 850 pkt/s   \
                    tx 123.90 KiB/s 425 pkt/s   handshakes 1   drops 6 (+3/s)   (q quits)";
        assert_eq!(line(&t, 200), full);
        assert_eq!(line(&t, full.len()), full);
    }

    #[test]
    fn eighty_columns_keep_rates_handshakes_drops_and_the_key() {
        let t = totals("wg0", rates(1_268_777.0, 850.0, 3.0), 1, 6);
        let l = line(&t, 80);
        assert_eq!(
            l,
            "wg0  rx 1.21MiB/s 850p/s  tx 124KiB/s 425p/s  hs 1  drops 6 +3/s  q quits"
        );
        for part in [
            "wg0",
            "rx 1.21MiB/s",
            "tx 124KiB/s",
            "hs 1",
            "drops 6",
            "q quits",
        ] {
            assert!(l.contains(part), "{part} missing: {l}");
        }
    }

    #[test]
    fn the_last_form_fits_eighty_columns_with_long_names_and_large_numbers() {
        let t = totals(
            "abcdefghijklmno",
            rates(1023.9 * 1024.0 * 1024.0, 999_999.0, 99_999.0),
            99_999,
            999_999_999,
        );
        let l = line(&t, 80);
        assert!(l.chars().count() <= 80, "{} > 80: {l}", l.chars().count());
        for part in [
            "abcdefghijklmno",
            "rx 1024MiB/s",
            "tx 102MiB/s",
            "hs 99999",
            "drops 999999999",
        ] {
            assert!(l.contains(part), "{part} missing: {l}");
        }
        assert!(l.ends_with("  q quits"), "{l}");
        let worst = totals(
            "abcdefghijklmno",
            rates(1023.0 * 1024.0 * 1024.0 * 1024.0, 9_999_999.0, 9_999_999.0),
            99_999,
            9_999_999_999,
        );
        let l = line(&worst, 80);
        assert_eq!(
            l,
            "abcdefghijklmno  rx 1023GiB/s  tx 102GiB/s  hs 99999  drops 9999999999  q quits"
        );
    }

    #[test]
    fn each_step_shortens_and_the_first_frame_has_dashes() {
        let t = totals("wg0", None, 0, 0);
        let mut last = usize::MAX;
        for width in (20..=140).rev() {
            let n = line(&t, width).chars().count();
            assert!(n <= last, "wider at {width}");
            last = n;
        }
        assert!(line(&t, 200).contains("rx - - pkt/s   tx - - pkt/s"));
        assert!(line(&t, 45).contains("rx -  tx -"), "{}", line(&t, 45));
    }
}
