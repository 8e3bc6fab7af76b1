//! Typed forms → text: a `get=1` reply in wireguard-go's line order, a `set=1` request as
//! wg(8) writes it, and the `errno=` line that ends every reply.

use std::fmt::Write as _;

use super::model::{AllowedIpChange, InterfaceStatus, SetRequest};
use super::prefix::fmt_endpoint;

const ZERO_KEY_HEX: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `key=value` lines of a get reply, without the final `errno=0` and blank line (so a
/// server can append the status it ends up with).
pub fn format_status(status: &InterfaceStatus) -> String {
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    if let Some(key) = &status.private_key {
        let _ = writeln!(out, "private_key={}", key.to_hex());
    }
    if status.listen_port != 0 {
        let _ = writeln!(out, "listen_port={}", status.listen_port);
    }
    if status.fwmark != 0 {
        let _ = writeln!(out, "fwmark={}", status.fwmark);
    }
    for peer in &status.peers {
        let _ = writeln!(out, "public_key={}", peer.public_key.to_hex());
        let psk = peer.preshared_key.as_ref().map(|k| k.to_hex());
        let _ = writeln!(
            out,
            "preshared_key={}",
            psk.as_deref().unwrap_or(ZERO_KEY_HEX)
        );
        let _ = writeln!(out, "protocol_version={}", peer.protocol_version);
        if let Some(ep) = &peer.endpoint {
            let _ = writeln!(out, "endpoint={}", fmt_endpoint(ep));
        }
        let (sec, nsec) = peer.last_handshake.unwrap_or((0, 0));
        let _ = writeln!(out, "last_handshake_time_sec={sec}");
        let _ = writeln!(out, "last_handshake_time_nsec={nsec}");
        let _ = writeln!(out, "tx_bytes={}", peer.tx_bytes);
        let _ = writeln!(out, "rx_bytes={}", peer.rx_bytes);
        let _ = writeln!(
            out,
            "persistent_keepalive_interval={}",
            peer.persistent_keepalive
        );
        for ip in &peer.allowed_ips {
            let _ = writeln!(out, "allowed_ip={ip}");
        }
    }
    out
}

/// A complete successful get reply.
pub fn format_get_reply(status: &InterfaceStatus) -> String {
    let mut out = format_status(status);
    out.push_str(&format_errno(0));
    out
}

/// The line (and blank line) ending a reply. `errno` is positive (22 = EINVAL) and is sent
/// negated, as wireguard-go does and wg(8) expects.
pub fn format_errno(errno: i32) -> String {
    format!("errno={}\n\n", -errno.saturating_abs())
}

/// A complete `set=1` request, in the line order wg(8) emits.
pub fn format_set_request(req: &SetRequest) -> String {
    let mut out = String::from("set=1\n");
    if let Some(key) = &req.private_key {
        let hex = key.as_ref().map(|k| k.to_hex());
        let _ = writeln!(
            out,
            "private_key={}",
            hex.as_deref().unwrap_or(ZERO_KEY_HEX)
        );
    }
    if let Some(port) = req.listen_port {
        let _ = writeln!(out, "listen_port={port}");
    }
    if let Some(mark) = req.fwmark {
        let _ = writeln!(out, "fwmark={mark}");
    }
    if req.replace_peers {
        out.push_str("replace_peers=true\n");
    }
    for peer in &req.peers {
        let _ = writeln!(out, "public_key={}", peer.public_key.to_hex());
        if peer.remove {
            out.push_str("remove=true\n");
            continue;
        }
        if peer.update_only {
            out.push_str("update_only=true\n");
        }
        if let Some(psk) = &peer.preshared_key {
            let hex = psk.as_ref().map(|k| k.to_hex());
            let _ = writeln!(
                out,
                "preshared_key={}",
                hex.as_deref().unwrap_or(ZERO_KEY_HEX)
            );
        }
        if let Some(ep) = &peer.endpoint {
            let _ = writeln!(out, "endpoint={}", fmt_endpoint(ep));
        }
        if let Some(ka) = peer.persistent_keepalive {
            let _ = writeln!(out, "persistent_keepalive_interval={ka}");
        }
        if peer.replace_allowed_ips {
            out.push_str("replace_allowed_ips=true\n");
        }
        for change in &peer.allowed_ips {
            match change {
                AllowedIpChange::Add(p) => writeln!(out, "allowed_ip={p}"),
                AllowedIpChange::Remove(p) => writeln!(out, "allowed_ip=-{p}"),
            }
            .ok();
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PeerChange, PeerStatus};
    use crate::parse::{parse_get_reply, parse_set};
    use crate::IpPrefix;
    use ferrotun_proto::keys::{PresharedKey, PrivateKey, PublicKey};

    fn status() -> InterfaceStatus {
        let mut peer = PeerStatus::new(PublicKey::from_bytes([2; 32]));
        peer.preshared_key = Some(PresharedKey::from_bytes([3; 32]));
        peer.endpoint = Some("[fd00::1]:51902".parse().unwrap());
        peer.last_handshake = Some((1700000000, 12));
        peer.tx_bytes = 148;
        peer.rx_bytes = 92;
        peer.persistent_keepalive = 25;
        peer.allowed_ips = vec![
            IpPrefix::parse("10.99.0.2/32").unwrap(),
            IpPrefix::parse("fd00::2/128").unwrap(),
        ];
        InterfaceStatus {
            private_key: Some(PrivateKey::from_bytes([1; 32])),
            listen_port: 51901,
            fwmark: 42,
            peers: vec![peer, PeerStatus::new(PublicKey::from_bytes([4; 32]))],
        }
    }

    #[test]
    fn get_reply_in_go_order() {
        let s = status();
        let text = format_get_reply(&s);
        let keys: Vec<&str> = text
            .lines()
            .map(|l| l.split('=').next().unwrap_or(""))
            .collect();
        assert_eq!(
            keys,
            [
                "private_key",
                "listen_port",
                "fwmark",
                "public_key",
                "preshared_key",
                "protocol_version",
                "endpoint",
                "last_handshake_time_sec",
                "last_handshake_time_nsec",
                "tx_bytes",
                "rx_bytes",
                "persistent_keepalive_interval",
                "allowed_ip",
                "allowed_ip",
                "public_key",
                "preshared_key",
                "protocol_version",
                "last_handshake_time_sec",
                "last_handshake_time_nsec",
                "tx_bytes",
                "rx_bytes",
                "persistent_keepalive_interval",
                "errno",
                "",
            ]
        );
        assert!(text.ends_with("errno=0\n\n"));
        assert!(text.contains(&format!("preshared_key={}\n", "0".repeat(64))));
        assert!(text.contains("endpoint=[fd00::1]:51902\n"));
        assert_eq!(parse_get_reply(&text).unwrap(), s);
    }

    #[test]
    fn empty_device_omits_zero_fields() {
        assert_eq!(format_get_reply(&InterfaceStatus::default()), "errno=0\n\n");
    }

    #[test]
    fn errno_lines_are_negative() {
        assert_eq!(format_errno(0), "errno=0\n\n");
        assert_eq!(format_errno(22), "errno=-22\n\n");
        assert_eq!(format_errno(-71), "errno=-71\n\n");
    }

    #[test]
    fn set_request_round_trip() {
        let mut p = PeerChange::new(PublicKey::from_bytes([2; 32]));
        p.preshared_key = Some(None);
        p.endpoint = Some("1.2.3.4:5".parse().unwrap());
        p.persistent_keepalive = Some(0);
        p.replace_allowed_ips = true;
        p.update_only = true;
        p.allowed_ips = vec![
            AllowedIpChange::Add(IpPrefix::parse("10.0.0.0/8").unwrap()),
            AllowedIpChange::Remove(IpPrefix::parse("::/0").unwrap()),
        ];
        let req = SetRequest {
            private_key: Some(None),
            listen_port: Some(0),
            fwmark: Some(7),
            replace_peers: true,
            peers: vec![p, PeerChange::removal(PublicKey::from_bytes([9; 32]))],
        };
        let text = format_set_request(&req);
        assert!(text.starts_with(&format!(
            "set=1\nprivate_key={}\nlisten_port=0\nfwmark=7\nreplace_peers=true\n",
            "0".repeat(64)
        )));
        assert!(text.ends_with("remove=true\n\n"));
        let body = text.strip_prefix("set=1\n").unwrap();
        assert_eq!(parse_set(body).unwrap(), req);
    }

    #[test]
    fn set_request_like_wg() {
        let mut p = PeerChange::new(PublicKey::from_bytes([2; 32]));
        p.allowed_ips = vec![AllowedIpChange::Add(
            IpPrefix::parse("10.0.0.1/32").unwrap(),
        )];
        let req = SetRequest {
            listen_port: Some(51820),
            peers: vec![p],
            ..Default::default()
        };
        assert_eq!(
            format_set_request(&req),
            format!(
                "set=1\nlisten_port=51820\npublic_key={}\nallowed_ip=10.0.0.1/32\n\n",
                PublicKey::from_bytes([2; 32]).to_hex()
            )
        );
    }
}
