use super::*;
use crate::uapi::model::{PeerChange, PeerStatus};
use crate::uapi::parse::{parse_get_reply, parse_set};
use crate::uapi::IpPrefix;
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
