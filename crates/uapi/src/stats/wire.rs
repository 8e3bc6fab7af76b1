//! `stats=1` on the configuration socket: ferrotun's own request, next to `get=1` and
//! `set=1`. wg never sends it, so what wg sees is unchanged; wireguard-go closes the
//! connection on it, which is how a client tells a daemon without counters.
//!
//! The reply has the shape of a `get=1` reply: `key=value` lines, a peer's lines after its
//! `public_key=` line, then `errno=0` and a blank line.
//!
//! ```text
//! interface=wg0
//! listen_port=51820
//! counter=received_dropped.decrypt_failed=3
//! public_key=<64 hex digits>
//! endpoint=192.0.2.1:51820
//! allowed_ip=10.0.0.2/32
//! rx_bytes=1234
//! tx_bytes=5678
//! last_handshake_time_sec=1700000000
//! counter=received_packets=12
//! errno=0
//! ```

use super::model::{PeerStats, Stats};
use crate::client::{Client, ClientError};
use ferrotun_proto::counters::Counter;
use ferrotun_proto::keys::PublicKey;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The request line (followed by a blank line).
pub const REQUEST: &str = "stats=1\n\n";

pub fn format_reply(stats: &Stats) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "interface={}", stats.interface);
    let _ = writeln!(out, "listen_port={}", stats.listen_port);
    for (k, v) in &stats.counters {
        let _ = writeln!(out, "counter={k}={v}");
    }
    for p in &stats.peers {
        let hex = PublicKey::from_base64(&p.public_key)
            .map(|k| k.to_hex())
            .unwrap_or_default();
        let _ = writeln!(out, "public_key={hex}");
        if let Some(e) = &p.endpoint {
            let _ = writeln!(out, "endpoint={e}");
        }
        for ip in &p.allowed_ips {
            let _ = writeln!(out, "allowed_ip={ip}");
        }
        let _ = writeln!(out, "rx_bytes={}", p.rx_bytes);
        let _ = writeln!(out, "tx_bytes={}", p.tx_bytes);
        if let Some(t) = p.last_handshake {
            let _ = writeln!(out, "last_handshake_time_sec={t}");
        }
        // Only what moved: most of a large interface's peers count nothing most of the
        // time, and the reader fills in the zeros (see `parse_reply`).
        for (k, v) in p.counters.iter().filter(|(_, v)| **v > 0) {
            let _ = writeln!(out, "counter={k}={v}");
        }
    }
    out.push_str("errno=0\n\n");
    out
}

/// Why a reply could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("line {0}: expected key=value")]
    NoEquals(usize),
    #[error("line {0}: {1} is not a number")]
    NotANumber(usize, String),
    #[error("line {0}: {1} is not a public key")]
    BadKey(usize, String),
    #[error("line {0}: {1} before any public_key")]
    PeerFieldFirst(usize, String),
    #[error("the daemon answered errno={0}")]
    Errno(i32),
    #[error("the reply ended without errno=")]
    NoErrno,
}

pub fn parse_reply(text: &str) -> Result<Stats, ParseError> {
    let mut stats = Stats {
        interface: String::new(),
        listen_port: 0,
        counters: BTreeMap::new(),
        peers: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            break;
        }
        let (key, value) = line.split_once('=').ok_or(ParseError::NoEquals(n))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| ParseError::NotANumber(n, v.to_string()))
        };
        let peer = stats.peers.last_mut();
        match (key, peer) {
            ("errno", _) => {
                let errno = value
                    .parse::<i32>()
                    .map_err(|_| ParseError::NotANumber(n, value.to_string()))?;
                return if errno == 0 {
                    Ok(stats)
                } else {
                    Err(ParseError::Errno(errno))
                };
            }
            ("interface", None) => stats.interface = value.to_string(),
            ("listen_port", None) => {
                stats.listen_port = u16::try_from(number(value)?)
                    .map_err(|_| ParseError::NotANumber(n, value.to_string()))?
            }
            ("public_key", _) => {
                let key = PublicKey::from_hex(value)
                    .map_err(|_| ParseError::BadKey(n, value.to_string()))?;
                stats.peers.push(PeerStats {
                    public_key: key.to_base64(),
                    endpoint: None,
                    allowed_ips: Vec::new(),
                    rx_bytes: 0,
                    tx_bytes: 0,
                    last_handshake: None,
                    counters: zero_peer_counters(),
                });
            }
            ("counter", peer) => {
                let (name, v) = value.split_once('=').ok_or(ParseError::NoEquals(n))?;
                let v = number(v)?;
                match peer {
                    Some(p) => p.counters.insert(name.to_string(), v),
                    None => stats.counters.insert(name.to_string(), v),
                };
            }
            ("endpoint", Some(p)) => p.endpoint = Some(value.to_string()),
            ("allowed_ip", Some(p)) => p.allowed_ips.push(value.to_string()),
            ("rx_bytes", Some(p)) => p.rx_bytes = number(value)?,
            ("tx_bytes", Some(p)) => p.tx_bytes = number(value)?,
            ("last_handshake_time_sec", Some(p)) => p.last_handshake = Some(number(value)?),
            (
                "endpoint" | "allowed_ip" | "rx_bytes" | "tx_bytes" | "last_handshake_time_sec",
                None,
            ) => return Err(ParseError::PeerFieldFirst(n, key.to_string())),
            // Keys a newer daemon adds are skipped, so an older client keeps working.
            _ => {}
        }
    }
    Err(ParseError::NoErrno)
}

/// Every peer counter this build knows, at zero: a reply carries a peer's non-zero ones.
fn zero_peer_counters() -> BTreeMap<String, u64> {
    Counter::ALL
        .iter()
        .filter(|c| c.is_peer())
        .map(|c| (c.key().to_string(), 0))
        .collect()
}

/// Why `ferrotun stats` could not get the counters.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The daemon closed the connection on `stats=1`: wireguard-go and other
    /// implementations do; only ferrotun keeps these counters.
    #[error(
        "the daemon serving {0} does not report counters (is it wireguard-go or another \
         implementation? only ferrotun keeps them)"
    )]
    NotFerrotun(String),
    #[error("unreadable counters from the daemon serving {0}: {1}")]
    Parse(String, ParseError),
}

/// Asks the daemon serving `iface` for its counters.
pub fn fetch(client: &Client, iface: &str) -> Result<Stats, FetchError> {
    match client.request(iface, REQUEST) {
        Ok(reply) => parse_reply(&reply).map_err(|e| FetchError::Parse(iface.to_string(), e)),
        Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(FetchError::NotFerrotun(iface.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stats {
        let key = PublicKey::from_hex(&"11".repeat(32)).expect("key");
        Stats {
            interface: "wg0".into(),
            listen_port: 51820,
            counters: [("received_dropped.decrypt_failed".to_string(), 3)]
                .into_iter()
                .collect(),
            peers: vec![PeerStats {
                public_key: key.to_base64(),
                endpoint: Some("[2001:db8::1]:51820".into()),
                allowed_ips: vec!["10.0.0.2/32".into(), "fd00::2/128".into()],
                rx_bytes: 10,
                tx_bytes: 20,
                last_handshake: Some(1_700_000_000),
                counters: {
                    let mut c = zero_peer_counters();
                    c.insert("received_packets".to_string(), 12);
                    c
                },
            }],
        }
    }

    #[test]
    fn round_trips() {
        let s = sample();
        assert_eq!(parse_reply(&format_reply(&s)), Ok(s));
    }

    #[test]
    fn a_peers_zero_counters_are_not_sent_but_read_back() {
        let s = sample();
        let text = format_reply(&s);
        assert!(text.contains("counter=received_packets=12\n"));
        assert!(!text.contains("counter=received_keepalives="));
        let back = parse_reply(&text).expect("parse");
        assert_eq!(back.peers[0].counter("received_keepalives"), 0);
        assert!(back.peers[0].counters.contains_key("received_keepalives"));
    }

    #[test]
    fn bad_replies_are_errors() {
        assert_eq!(parse_reply("interface=wg0\n\n"), Err(ParseError::NoErrno));
        assert_eq!(parse_reply("errno=22\n\n"), Err(ParseError::Errno(22)));
        assert_eq!(
            parse_reply("counter=x=y\nerrno=0\n\n"),
            Err(ParseError::NotANumber(1, "y".into()))
        );
        assert_eq!(
            parse_reply("rx_bytes=1\nerrno=0\n\n"),
            Err(ParseError::PeerFieldFirst(1, "rx_bytes".into()))
        );
        assert_eq!(
            parse_reply("public_key=zz\nerrno=0\n\n"),
            Err(ParseError::BadKey(1, "zz".into()))
        );
        assert_eq!(parse_reply("garbage\n"), Err(ParseError::NoEquals(1)));
        // Unknown keys from a newer daemon are skipped.
        assert!(parse_reply("future=1\nerrno=0\n\n").is_ok());
    }
}
