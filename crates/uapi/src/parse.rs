//! Text → typed forms: the body of a `set=1` request (server side) and a `get=1` reply
//! (client side).
//!
//! A set request is validated in full before the caller applies anything: ferrotun applies a
//! request all or nothing, where wireguard-go keeps the lines before a bad one.

use super::model::{AllowedIpChange, InterfaceStatus, PeerChange, PeerStatus, SetRequest};
use super::prefix::IpPrefix;
use super::values;

/// Linux errno values replied (negated) on the socket.
pub const EINVAL: i32 = 22;
pub const EPROTO: i32 = 71;

/// The longest key name echoed in an error; every real key is shorter.
const MAX_ECHO: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("line {line}: no `=` in line")]
    MissingEquals { line: usize },
    #[error("line {line}: unknown {scope} key `{key}`")]
    UnknownKey {
        line: usize,
        scope: &'static str,
        key: String,
    },
    /// The value is not echoed: it may be a secret key with a typo.
    #[error("line {line}: invalid value for `{key}`")]
    InvalidValue { line: usize, key: &'static str },
}

impl SetError {
    /// The positive errno to reply (as `errno=-N`), the values wireguard-go uses.
    pub fn errno(&self) -> i32 {
        match self {
            SetError::MissingEquals { .. } => EPROTO,
            SetError::UnknownKey { .. } | SetError::InvalidValue { .. } => EINVAL,
        }
    }
}

/// What an error may say about an unknown key. Only something shaped like a key name is
/// repeated: a mistyped line can be a bare secret (a base64 key ends in `=`, so all of it
/// lands before the first `=`), and secrets must never reach a log.
fn echo(key: &str) -> String {
    let looks_like_a_name = key.len() <= MAX_ECHO
        && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        && !key.is_empty();
    if looks_like_a_name {
        key.to_string()
    } else {
        format!("({} characters, not shown)", key.chars().count())
    }
}

/// Splits a message into numbered `key=value` lines, ending at the first empty line.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .take_while(|(_, l)| !l.is_empty())
}

/// Parses the body of a `set=1` request: the lines after `set=1`, up to and optionally
/// including the blank line that ends it. Nothing after the blank line is read.
pub fn parse_set(body: &str) -> Result<SetRequest, SetError> {
    let mut req = SetRequest::default();
    for (line, text) in lines(body) {
        let (key, value) = text
            .split_once('=')
            .ok_or(SetError::MissingEquals { line })?;
        let bad = |key: &'static str| SetError::InvalidValue { line, key };
        if key == "public_key" {
            let pk = values::public_key(value).ok_or(bad("public_key"))?;
            req.peers.push(PeerChange::new(pk));
            continue;
        }
        match req.peers.last_mut() {
            None => device_line(&mut req, key, value, line)?,
            Some(peer) => peer_line(peer, key, value, line)?,
        }
    }
    Ok(req)
}

fn device_line(req: &mut SetRequest, key: &str, value: &str, line: usize) -> Result<(), SetError> {
    let bad = |key: &'static str| SetError::InvalidValue { line, key };
    match key {
        "private_key" => {
            req.private_key = Some(values::maybe_private_key(value).ok_or(bad("private_key"))?);
        }
        "listen_port" => req.listen_port = Some(values::decimal(value).ok_or(bad("listen_port"))?),
        "fwmark" => req.fwmark = Some(values::decimal(value).ok_or(bad("fwmark"))?),
        "replace_peers" if values::is_true(value) => req.replace_peers = true,
        "replace_peers" => return Err(bad("replace_peers")),
        _ => {
            return Err(SetError::UnknownKey {
                line,
                scope: "device",
                key: echo(key),
            })
        }
    }
    Ok(())
}

fn peer_line(peer: &mut PeerChange, key: &str, value: &str, line: usize) -> Result<(), SetError> {
    let bad = |key: &'static str| SetError::InvalidValue { line, key };
    let boolean = |key: &'static str| {
        if values::is_true(value) {
            Ok(())
        } else {
            Err(bad(key))
        }
    };
    match key {
        "update_only" => {
            boolean("update_only")?;
            peer.update_only = true;
        }
        "remove" => {
            boolean("remove")?;
            // Later lines for a removed peer are still validated but have no effect, and what
            // came before is moot once the peer is gone.
            *peer = PeerChange::removal(peer.public_key);
        }
        "replace_allowed_ips" => {
            boolean("replace_allowed_ips")?;
            // Applied in order on the wire, so it also discards earlier allowed_ip lines.
            peer.allowed_ips.clear();
            peer.replace_allowed_ips = true;
        }
        "preshared_key" => {
            peer.preshared_key =
                Some(values::maybe_preshared_key(value).ok_or(bad("preshared_key"))?);
        }
        "endpoint" => peer.endpoint = Some(values::endpoint(value).ok_or(bad("endpoint"))?),
        "persistent_keepalive_interval" => {
            peer.persistent_keepalive =
                Some(values::decimal(value).ok_or(bad("persistent_keepalive_interval"))?);
        }
        "allowed_ip" => {
            let change = match value.strip_prefix('-') {
                Some(rest) => {
                    AllowedIpChange::Remove(masked_prefix(rest).ok_or(bad("allowed_ip"))?)
                }
                None => AllowedIpChange::Add(masked_prefix(value).ok_or(bad("allowed_ip"))?),
            };
            peer.allowed_ips.push(change);
        }
        "protocol_version" if value == "1" => {}
        "protocol_version" => return Err(bad("protocol_version")),
        _ => {
            return Err(SetError::UnknownKey {
                line,
                scope: "peer",
                key: echo(key),
            })
        }
    }
    if peer.remove {
        // Keep a removal a pure removal whatever lines follow it.
        *peer = PeerChange::removal(peer.public_key);
    }
    Ok(())
}

fn masked_prefix(text: &str) -> Option<IpPrefix> {
    IpPrefix::parse(text).ok().map(IpPrefix::masked)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("line {line}: no `=` in line")]
    MissingEquals { line: usize },
    #[error("line {line}: invalid value for `{key}`")]
    InvalidValue { line: usize, key: &'static str },
    #[error("line {line}: `{key}` before any `public_key`")]
    PeerKeyWithoutPeer { line: usize, key: &'static str },
    #[error("reply has no `errno=` line")]
    MissingErrno,
    /// The daemon refused; the value is a positive errno whatever sign it was sent with.
    #[error("daemon replied errno {0}")]
    Errno(i32),
}

impl ReplyError {
    /// The errno wg would report for this failure: the daemon's own, else EPROTO.
    pub fn errno(&self) -> i32 {
        match self {
            ReplyError::Errno(e) => *e,
            _ => EPROTO,
        }
    }
}

/// Parses the `errno=N` line ending a reply. Accepts `-N` (go) and `N` alike.
fn errno_value(value: &str) -> Option<i32> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, value),
    };
    let n: i32 = values::decimal(digits)?;
    Some(if negative { -n } else { n })
}

/// Parses a reply to `set=1`: only its `errno` matters.
pub fn parse_set_reply(text: &str) -> Result<(), ReplyError> {
    let mut errno = None;
    for (line, text) in lines(text) {
        let (key, value) = text
            .split_once('=')
            .ok_or(ReplyError::MissingEquals { line })?;
        if key == "errno" {
            errno =
                Some(errno_value(value).ok_or(ReplyError::InvalidValue { line, key: "errno" })?);
        }
    }
    match errno {
        None => Err(ReplyError::MissingErrno),
        Some(0) => Ok(()),
        Some(e) => Err(ReplyError::Errno(e.saturating_abs())),
    }
}

/// Parses a reply to `get=1`. Lines may come in any order as long as peer lines follow their
/// `public_key`; unknown keys are skipped (newer daemons may add some), known ones must be
/// well-formed.
pub fn parse_get_reply(text: &str) -> Result<InterfaceStatus, ReplyError> {
    let mut status = InterfaceStatus::default();
    let mut errno = None;
    for (line, text) in lines(text) {
        let (key, value) = text
            .split_once('=')
            .ok_or(ReplyError::MissingEquals { line })?;
        let bad = |key: &'static str| ReplyError::InvalidValue { line, key };
        match key {
            "errno" => errno = Some(errno_value(value).ok_or(bad("errno"))?),
            "private_key" => {
                status.private_key = values::maybe_private_key(value).ok_or(bad("private_key"))?
            }
            "listen_port" => {
                status.listen_port = values::decimal(value).ok_or(bad("listen_port"))?
            }
            "fwmark" => status.fwmark = values::decimal(value).ok_or(bad("fwmark"))?,
            "public_key" => {
                let pk = values::public_key(value).ok_or(bad("public_key"))?;
                status.peers.push(PeerStatus::new(pk));
            }
            _ => {
                let Some(peer) = status.peers.last_mut() else {
                    return match peer_key_name(key) {
                        Some(key) => Err(ReplyError::PeerKeyWithoutPeer { line, key }),
                        None => continue,
                    };
                };
                peer_status_line(peer, key, value, line)?;
            }
        }
    }
    match errno {
        None => Err(ReplyError::MissingErrno),
        Some(0) => Ok(status),
        Some(e) => Err(ReplyError::Errno(e.saturating_abs())),
    }
}

const PEER_KEYS: [&str; 10] = [
    "preshared_key",
    "protocol_version",
    "endpoint",
    "last_handshake_time_sec",
    "last_handshake_time_nsec",
    "tx_bytes",
    "rx_bytes",
    "persistent_keepalive_interval",
    "allowed_ip",
    "public_key",
];

fn peer_key_name(key: &str) -> Option<&'static str> {
    PEER_KEYS.iter().copied().find(|k| *k == key)
}

fn peer_status_line(
    peer: &mut PeerStatus,
    key: &str,
    value: &str,
    line: usize,
) -> Result<(), ReplyError> {
    let bad = |key: &'static str| ReplyError::InvalidValue { line, key };
    match key {
        "preshared_key" => {
            peer.preshared_key = values::maybe_preshared_key(value).ok_or(bad("preshared_key"))?
        }
        "protocol_version" => {
            peer.protocol_version = values::decimal(value).ok_or(bad("protocol_version"))?
        }
        "endpoint" => peer.endpoint = Some(values::endpoint(value).ok_or(bad("endpoint"))?),
        "last_handshake_time_sec" => {
            let sec = values::decimal(value).ok_or(bad("last_handshake_time_sec"))?;
            let nsec = peer.last_handshake.map_or(0, |(_, n)| n);
            peer.last_handshake = handshake(sec, nsec);
        }
        "last_handshake_time_nsec" => {
            let nsec = values::decimal(value).ok_or(bad("last_handshake_time_nsec"))?;
            let sec = peer.last_handshake.map_or(0, |(s, _)| s);
            peer.last_handshake = handshake(sec, nsec);
        }
        "tx_bytes" => peer.tx_bytes = values::decimal(value).ok_or(bad("tx_bytes"))?,
        "rx_bytes" => peer.rx_bytes = values::decimal(value).ok_or(bad("rx_bytes"))?,
        "persistent_keepalive_interval" => {
            peer.persistent_keepalive =
                values::decimal(value).ok_or(bad("persistent_keepalive_interval"))?
        }
        "allowed_ip" => peer
            .allowed_ips
            .push(IpPrefix::parse(value).map_err(|_| bad("allowed_ip"))?),
        _ => {}
    }
    Ok(())
}

fn handshake(sec: u64, nsec: u32) -> Option<(u64, u32)> {
    (sec != 0 || nsec != 0).then_some((sec, nsec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotun_proto::keys::{PresharedKey, PrivateKey, PublicKey};

    fn hex(b: u8) -> String {
        PublicKey::from_bytes([b; 32]).to_hex()
    }

    #[test]
    fn full_request() {
        let body = format!(
        "private_key={}\nlisten_port=51820\nfwmark=42\nreplace_peers=true\n\
         public_key={}\npreshared_key={}\nendpoint=[::1]:5\npersistent_keepalive_interval=25\n\
         replace_allowed_ips=true\nallowed_ip=10.1.2.3/8\nallowed_ip=-fd00::/64\nprotocol_version=1\n\
         public_key={}\nremove=true\n\n",
        hex(1),
        hex(2),
        hex(3),
        hex(4)
    );
        let req = parse_set(&body).unwrap();
        assert_eq!(req.private_key, Some(Some(PrivateKey::from_bytes([1; 32]))));
        assert_eq!(req.listen_port, Some(51820));
        assert_eq!(req.fwmark, Some(42));
        assert!(req.replace_peers);
        assert_eq!(req.peers.len(), 2);
        let p = &req.peers[0];
        assert_eq!(p.public_key, PublicKey::from_bytes([2; 32]));
        assert_eq!(
            p.preshared_key,
            Some(Some(PresharedKey::from_bytes([3; 32])))
        );
        assert_eq!(p.endpoint, Some("[::1]:5".parse().unwrap()));
        assert_eq!(p.persistent_keepalive, Some(25));
        assert!(p.replace_allowed_ips);
        assert_eq!(
            p.allowed_ips,
            vec![
                AllowedIpChange::Add(IpPrefix::parse("10.0.0.0/8").unwrap()),
                AllowedIpChange::Remove(IpPrefix::parse("fd00::/64").unwrap()),
            ]
        );
        assert_eq!(
            req.peers[1],
            PeerChange::removal(PublicKey::from_bytes([4; 32]))
        );
    }

    #[test]
    fn zero_keys_remove() {
        let zero = "0".repeat(64);
        let req = parse_set(&format!(
            "private_key={zero}\npublic_key={}\npreshared_key={zero}\n",
            hex(1)
        ))
        .unwrap();
        assert_eq!(req.private_key, Some(None));
        assert_eq!(req.peers[0].preshared_key, Some(None));
    }

    #[test]
    fn errors_carry_errno_and_line() {
        let cases: Vec<(String, i32, usize)> = vec![
            ("noequals\n".into(), EPROTO, 1),
            ("listen_port=1\nbogus=1\n".into(), EINVAL, 2),
            ("listen_port=65536\n".into(), EINVAL, 1),
            ("listen_port=-1\n".into(), EINVAL, 1),
            ("fwmark=4294967296\n".into(), EINVAL, 1),
            ("replace_peers=false\n".into(), EINVAL, 1),
            ("replace_peers=TRUE\n".into(), EINVAL, 1),
            ("private_key=abc\n".into(), EINVAL, 1),
            ("endpoint=1.2.3.4:5\n".into(), EINVAL, 1), // peer key before any peer
            ("public_key=zz\n".into(), EINVAL, 1),
            (
                format!("public_key={}\nprotocol_version=2\n", hex(1)),
                EINVAL,
                2,
            ),
            (format!("public_key={}\nremove=1\n", hex(1)), EINVAL, 2),
            (
                format!("public_key={}\nupdate_only=yes\n", hex(1)),
                EINVAL,
                2,
            ),
            (
                format!("public_key={}\nendpoint=example.com:5\n", hex(1)),
                EINVAL,
                2,
            ),
            (
                format!("public_key={}\nallowed_ip=1.2.3.4\n", hex(1)),
                EINVAL,
                2,
            ),
            (
                format!("public_key={}\nallowed_ip=1.2.3.4/33\n", hex(1)),
                EINVAL,
                2,
            ),
            (
                format!("public_key={}\npersistent_keepalive_interval=off\n", hex(1)),
                EINVAL,
                2,
            ),
            (format!("public_key={}\nlisten_port=1\n", hex(1)), EINVAL, 2),
            (format!("public_key={}\nx\n", hex(1)), EPROTO, 2),
        ];
        for (body, errno, line) in cases {
            let err = parse_set(&body).unwrap_err();
            assert_eq!(err.errno(), errno, "{body:?} -> {err}");
            assert!(
                err.to_string().starts_with(&format!("line {line}:")),
                "{body:?} -> {err}"
            );
        }
    }

    #[test]
    fn a_bad_line_late_in_the_request_fails_the_whole_request() {
        let body = format!(
            "listen_port=1\npublic_key={}\nallowed_ip=10.0.0.0/8\nbogus=1\n",
            hex(1)
        );
        assert!(parse_set(&body).is_err());
    }

    #[test]
    fn secrets_are_not_echoed_in_errors() {
        let secret = "f".repeat(63) + "g";
        let err = parse_set(&format!("private_key={secret}\n")).unwrap_err();
        assert!(!err.to_string().contains("fff"));
    }

    #[test]
    fn ordering_within_a_peer() {
        // replace_allowed_ips after allowed_ip lines discards them, as applying in order would.
        let body = format!(
            "public_key={}\nallowed_ip=1.0.0.0/8\nreplace_allowed_ips=true\nallowed_ip=2.0.0.0/8\n",
            hex(1)
        );
        let p = &parse_set(&body).unwrap().peers[0];
        assert_eq!(
            p.allowed_ips,
            vec![AllowedIpChange::Add(IpPrefix::parse("2.0.0.0/8").unwrap())]
        );
        // Lines after remove are validated but change nothing.
        let body = format!("public_key={}\nremove=true\nendpoint=1.2.3.4:5\n", hex(1));
        assert_eq!(
            parse_set(&body).unwrap().peers[0],
            PeerChange::removal(PublicKey::from_bytes([1; 32]))
        );
        let body = format!("public_key={}\nremove=true\nendpoint=bad\n", hex(1));
        assert!(parse_set(&body).is_err());
    }

    #[test]
    fn stops_at_blank_line_and_accepts_upper_hex() {
        let body = format!("public_key={}\n\ngarbage\n", hex(0xab).to_uppercase());
        assert_eq!(parse_set(&body).unwrap().peers.len(), 1);
        assert_eq!(parse_set("").unwrap(), SetRequest::default());
    }

    #[test]
    fn get_reply() {
        let text = format!(
        "private_key={}\nlisten_port=51901\nfwmark=7\npublic_key={}\npreshared_key={}\nprotocol_version=1\n\
         endpoint=127.0.0.1:51902\nlast_handshake_time_sec=5\nlast_handshake_time_nsec=6\ntx_bytes=148\n\
         rx_bytes=92\npersistent_keepalive_interval=25\nallowed_ip=10.99.0.2/32\nallowed_ip=fd00::2/128\n\
         future_key=whatever\npublic_key={}\nerrno=0\n\n",
        hex(1),
        hex(2),
        "0".repeat(64),
        hex(3)
    );
        let s = parse_get_reply(&text).unwrap();
        assert_eq!(s.private_key, Some(PrivateKey::from_bytes([1; 32])));
        assert_eq!((s.listen_port, s.fwmark), (51901, 7));
        assert_eq!(s.peers.len(), 2);
        let p = &s.peers[0];
        assert_eq!(p.preshared_key, None);
        assert_eq!(p.endpoint, Some("127.0.0.1:51902".parse().unwrap()));
        assert_eq!(p.last_handshake, Some((5, 6)));
        assert_eq!(
            (p.tx_bytes, p.rx_bytes, p.persistent_keepalive),
            (148, 92, 25)
        );
        assert_eq!(p.allowed_ips.len(), 2);
        assert_eq!(s.peers[1], PeerStatus::new(PublicKey::from_bytes([3; 32])));
    }

    #[test]
    fn get_reply_errors() {
        assert_eq!(
            parse_get_reply("listen_port=1\n\n"),
            Err(ReplyError::MissingErrno)
        );
        assert_eq!(parse_get_reply("errno=-22\n\n"), Err(ReplyError::Errno(22)));
        assert_eq!(parse_get_reply("errno=5\n\n"), Err(ReplyError::Errno(5)));
        assert!(matches!(
            parse_get_reply("listen_port=x\nerrno=0\n\n"),
            Err(ReplyError::InvalidValue { line: 1, .. })
        ));
        assert!(matches!(
            parse_get_reply("tx_bytes=1\nerrno=0\n\n"),
            Err(ReplyError::PeerKeyWithoutPeer { .. })
        ));
        assert!(matches!(
            parse_get_reply("oops\nerrno=0\n\n"),
            Err(ReplyError::MissingEquals { line: 1 })
        ));
        let text = format!("public_key={}\nallowed_ip=1.2.3.4/40\nerrno=0\n\n", hex(1));
        assert!(parse_get_reply(&text).is_err());
        // Device keys may come after peers.
        let text = format!("public_key={}\nlisten_port=3\nerrno=0\n\n", hex(1));
        assert_eq!(parse_get_reply(&text).unwrap().listen_port, 3);
    }

    #[test]
    fn set_reply() {
        assert_eq!(parse_set_reply("errno=0\n\n"), Ok(()));
        assert_eq!(parse_set_reply("errno=-98\n\n"), Err(ReplyError::Errno(98)));
        assert_eq!(parse_set_reply("\n"), Err(ReplyError::MissingErrno));
        assert!(parse_set_reply("errno=x\n\n").is_err());
    }
}
