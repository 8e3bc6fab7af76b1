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
