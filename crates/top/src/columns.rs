//! The peer table's columns at a given width: all of them in their long forms when there is
//! room, fewer and shorter ones when there is not, so that HANDSHAKE and DROPS always stay.
//!
//! ```text
//! 200 columns:
//! PEER       ENDPOINT             RX/s           RX pkt/s  TX/s           TX pkt/s  HANDSHAKE    DROPS
//! AbCdEfGh…  192.168.241.2:51821  1.00 MiB/s     100       2.00 MiB/s     100       12s ago      replayed_counter 6 (+3/s)
//! 80 columns:
//! PEER       ENDPOINT             RX/s       TX/s       HANDSHAKE  DROPS
//! AbCdEfGh…  192.168.241.2:51821  1.00MiB/s  2.00MiB/s  12s        6 +3/s replayed_counter
//! ```
//!
//! Columns stay at least two spaces apart, so a script reading the screen can split on them.

use super::names::cut;

/// How wide DROPS must at least be before a column gives way: room for a count, its rate
/// and the start of a reason.
pub const DROPS_MIN: usize = 14;
/// The width an endpoint column is cut to before it goes: an IPv4 address and port.
const ENDPOINT_CUT: usize = 21;
const GAP: &str = "  ";

/// Which columns a frame shows and in which forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// `1.21MiB/s`, `12s`, `6 +3/s replayed_counter`, `RXp/s`: the short forms.
    pub compact: bool,
    /// The RX and TX packet-rate columns.
    pub packets: bool,
    /// How many characters of a key (then `…`).
    pub key: usize,
    /// The endpoint column's width; `None` when it was dropped.
    pub endpoint: Option<usize>,
}

/// A row's texts, each in the form `Columns::compact` asks for.
pub struct Cells<'a> {
    pub key: &'a str,
    pub endpoint: &'a str,
    pub rx: &'a str,
    pub rx_packets: &'a str,
    pub tx: &'a str,
    pub tx_packets: &'a str,
    pub handshake: &'a str,
    pub drops: &'a str,
}

impl Columns {
    /// The widest layout whose columns before DROPS leave DROPS at least [`DROPS_MIN`]
    /// characters of `width`; the narrowest when none does. `endpoint` is the width the
    /// longest endpoint needs.
    pub fn choose(width: usize, endpoint: usize) -> Columns {
        let mut layout = Columns {
            compact: false,
            packets: true,
            key: 8,
            endpoint: Some(endpoint),
        };
        // Each step gives up one thing, least useful first: long forms (the figures stay),
        // packet rates (the byte rates say how busy a peer is), key characters (four still
        // tell the peers of one screen apart), the end of a long endpoint, the endpoint.
        let steps: [fn(&mut Columns); 5] = [
            |c| c.compact = true,
            |c| c.packets = false,
            |c| c.key = 4,
            |c| c.endpoint = c.endpoint.map(|w| w.min(ENDPOINT_CUT)),
            |c| c.endpoint = None,
        ];
        for step in steps {
            if layout.before_drops() + DROPS_MIN <= width {
                break;
            }
            step(&mut layout);
        }
        layout
    }

    /// Characters from the line's start to the DROPS column.
    fn before_drops(&self) -> usize {
        self.widths().iter().flatten().map(|w| w + GAP.len()).sum()
    }

    /// The widths of the columns before DROPS, in order; `None` for one not shown.
    fn widths(&self) -> [Option<usize>; 7] {
        let (bytes, packets, age) = if self.compact {
            // `1024KiB/s`; six digits of packets; `HANDSHAKE` is the widest age cell.
            (9, 6, 9)
        } else {
            // `1023.99 KiB/s`; `RX pkt/s`; `clock went back` is cut, the rest fit.
            (13, 8, 11)
        };
        let packets = self.packets.then_some(packets);
        [
            // The key and its `…`; never narrower than `PEER`.
            Some((self.key + 1).max(4)),
            self.endpoint,
            Some(bytes),
            packets,
            Some(bytes),
            packets,
            Some(age),
        ]
    }

    /// The heading line.
    pub fn heading(&self) -> String {
        let (rxp, txp) = if self.compact {
            ("RXp/s", "TXp/s")
        } else {
            ("RX pkt/s", "TX pkt/s")
        };
        self.row(&Cells {
            key: "PEER",
            endpoint: "ENDPOINT",
            rx: "RX/s",
            rx_packets: rxp,
            tx: "TX/s",
            tx_packets: txp,
            handshake: "HANDSHAKE",
            drops: "DROPS",
        })
    }

    /// One line of the table: the shown columns padded to their widths, then DROPS.
    pub fn row(&self, cells: &Cells<'_>) -> String {
        let texts = [
            cells.key,
            cells.endpoint,
            cells.rx,
            cells.rx_packets,
            cells.tx,
            cells.tx_packets,
            cells.handshake,
        ];
        let mut line = String::new();
        for (text, width) in texts.iter().zip(self.widths()) {
            let Some(width) = width else { continue };
            // A cell never runs into the next column: cut, marked with `…`.
            let text = if text.chars().count() > width {
                cut(text, width.saturating_sub(1))
            } else {
                text.to_string()
            };
            line.push_str(&format!("{text:<width$}{GAP}"));
        }
        line.push_str(cells.drops);
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells<'a>(drops: &'a str) -> Cells<'a> {
        Cells {
            key: "AbCdEfGh…",
            endpoint: "192.168.241.2:51821",
            rx: "1.00MiB/s",
            rx_packets: "100",
            tx: "2.00MiB/s",
            tx_packets: "100",
            handshake: "12s",
            drops,
        }
    }

    #[test]
    fn wide_terminals_get_every_column_in_full() {
        let c = Columns::choose(200, 19);
        assert_eq!(
            c,
            Columns {
                compact: false,
                packets: true,
                key: 8,
                endpoint: Some(19)
            }
        );
        assert_eq!(
            c.heading(),
            "PEER       ENDPOINT             RX/s           RX pkt/s  TX/s           TX pkt/s  HANDSHAKE    DROPS"
        );
    }

    #[test]
    fn eighty_columns_keep_handshake_and_drops() {
        let c = Columns::choose(80, 19);
        assert_eq!(
            c,
            Columns {
                compact: true,
                packets: false,
                key: 8,
                endpoint: Some(19)
            }
        );
        let heading = c.heading();
        assert_eq!(
            heading,
            "PEER       ENDPOINT             RX/s       TX/s       HANDSHAKE  DROPS"
        );
        assert!(80 - heading.find("DROPS").unwrap() >= DROPS_MIN);
        let row = c.row(&cells("6 +3/s replayed_counter"));
        assert_eq!(
            row,
            "AbCdEfGh…  192.168.241.2:51821  1.00MiB/s  2.00MiB/s  12s        6 +3/s replayed_counter"
        );
        // IPv6 endpoints: the key, then the endpoint give way; never HANDSHAKE or DROPS.
        let v6 = Columns::choose(80, 47);
        assert_eq!((v6.key, v6.endpoint), (4, Some(21)), "{v6:?}");
        assert!(v6.heading().contains("HANDSHAKE  DROPS"));
        let narrow = Columns::choose(60, 47);
        assert_eq!(narrow.endpoint, None);
        assert!(narrow.heading().chars().count() + DROPS_MIN - "DROPS".len() <= 60);
    }

    #[test]
    fn a_cell_too_long_for_its_column_is_cut() {
        let c = Columns::choose(80, 47);
        let mut long = cells("none");
        long.endpoint = "[fd00:1234:5678:9abc:def0:1234:5678:9abc]:51820";
        let row = c.row(&long);
        assert!(row.contains("[fd00:1234:5678:9abc…  "), "{row}");
        assert!(row.ends_with("none"), "{row}");
    }

    #[test]
    fn every_width_keeps_the_drops_column_where_the_layout_promises() {
        for width in 40..=220 {
            for endpoint in [8, 19, 47] {
                let c = Columns::choose(width, endpoint);
                let heading = c.heading();
                let at = heading.find("DROPS").unwrap();
                let last = c.endpoint.is_none();
                assert!(last || at + DROPS_MIN <= width, "{width} {endpoint}: {c:?}");
                assert!(heading.contains("HANDSHAKE"));
            }
        }
    }
}
