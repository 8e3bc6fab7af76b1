use super::*;
use crate::uapi::IpPrefix;
use ferrotun_proto::keys::{PresharedKey, PrivateKey};

fn env(hide: bool, color: bool) -> Env {
    let mut e = Env {
        now: Some(1_000_066),
        ..Env::default()
    };
    if !hide {
        e.vars.insert("WG_HIDE_KEYS".into(), "never".into());
    }
    e.vars.insert(
        "WG_COLOR_MODE".into(),
        if color { "always" } else { "never" }.into(),
    );
    e
}

fn device() -> InterfaceStatus {
    let mut a = PeerStatus::new(PublicKey::from_bytes([2; 32]));
    a.preshared_key = Some(PresharedKey::from_bytes([3; 32]));
    a.endpoint = Some("127.0.0.1:51902".parse().unwrap());
    a.allowed_ips = vec![
        IpPrefix::parse("10.99.0.2/32").unwrap(),
        IpPrefix::parse("fd00::2/128").unwrap(),
    ];
    a.last_handshake = Some((1_000_000, 5));
    a.rx_bytes = 92;
    a.tx_bytes = 328;
    a.persistent_keepalive = 25;
    let b = PeerStatus::new(PublicKey::from_bytes([4; 32]));
    InterfaceStatus {
        private_key: Some(PrivateKey::from_bytes([1; 32])),
        listen_port: 51901,
        fwmark: 42,
        // The never-handshaked peer first, to check the sort.
        peers: vec![b, a],
    }
}

#[test]
fn pretty_plain() {
    let d = device();
    let pk = d.public_key().unwrap();
    let p2 = PublicKey::from_bytes([2; 32]);
    let p4 = PublicKey::from_bytes([4; 32]);
    let want = format!(
        "interface: wga\n  public key: {pk}\n  private key: (hidden)\n  listening port: 51901\n  fwmark: 0x2a\n\n\
         peer: {p2}\n  preshared key: (hidden)\n  endpoint: 127.0.0.1:51902\n  allowed ips: 10.99.0.2/32, fd00::2/128\n\
         \x20 latest handshake: 1 minute, 6 seconds ago\n  transfer: 92 B received, 328 B sent\n\
         \x20 persistent keepalive: every 25 seconds\n\npeer: {p4}\n  allowed ips: (none)\n"
    );
    assert_eq!(pretty_text(&d, "wga", &env(true, false)), want);
    let shown = pretty_text(&d, "wga", &env(false, false));
    assert!(shown.contains(&format!(
        "private key: {}\n",
        PrivateKey::from_bytes([1; 32]).to_base64()
    )));
}

#[test]
fn pretty_colour_sequences() {
    let d = InterfaceStatus {
        peers: vec![device().peers[1].clone()],
        ..Default::default()
    };
    let text = pretty_text(&d, "wga", &env(true, true));
    let p2 = PublicKey::from_bytes([2; 32]);
    assert!(text.starts_with("\x1b[0m\x1b[32m\x1b[1minterface\x1b[0m: \x1b[32mwga\x1b[0m\n\n"));
    assert!(text.contains(&format!(
        "\x1b[33m\x1b[1mpeer\x1b[0m: \x1b[33m{p2}\x1b[0m\n"
    )));
    assert!(text.contains(
        "  \x1b[1mallowed ips\x1b[0m: 10.99.0.2\x1b[36m/\x1b[0m32, fd00::2\x1b[36m/\x1b[0m128\n"
    ));
    assert!(text.contains("every 25 \x1b[36mseconds\x1b[0m\n"));
}

#[test]
fn dump_and_fields() {
    let d = device();
    let pk = d.public_key().unwrap();
    let sk = d.private_key.as_ref().unwrap().to_base64();
    let p2 = PublicKey::from_bytes([2; 32]);
    let p4 = PublicKey::from_bytes([4; 32]);
    let psk = PresharedKey::from_bytes([3; 32]).to_base64();
    assert_eq!(
        field_text(&d, "wga", "dump", false).unwrap(),
        format!(
            "{sk}\t{pk}\t51901\t0x2a\n{p4}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n\
             {p2}\t{psk}\t127.0.0.1:51902\t10.99.0.2/32,fd00::2/128\t1000000\t92\t328\t25\n"
        )
    );
    assert_eq!(
        field_text(&d, "wga", "fwmark", true).unwrap(),
        "wga\t0x2a\n"
    );
    assert_eq!(
        field_text(&d, "wga", "listen-port", false).unwrap(),
        "51901\n"
    );
    assert_eq!(
        field_text(&d, "wga", "allowed-ips", false).unwrap(),
        format!("{p4}\t(none)\n{p2}\t10.99.0.2/32 fd00::2/128\n")
    );
    assert_eq!(
        field_text(&d, "wga", "endpoints", true).unwrap(),
        format!("wga\t{p4}\t(none)\nwga\t{p2}\t127.0.0.1:51902\n")
    );
    assert_eq!(
        field_text(&d, "wga", "persistent-keepalive", false).unwrap(),
        format!("{p4}\toff\n{p2}\t25\n")
    );
    assert_eq!(
        field_text(&d, "wga", "transfer", false).unwrap(),
        format!("{p4}\t0\t0\n{p2}\t92\t328\n")
    );
    assert_eq!(
        field_text(&d, "wga", "latest-handshakes", false).unwrap(),
        format!("{p4}\t0\n{p2}\t1000000\n")
    );
    assert_eq!(
        field_text(&d, "wga", "peers", false).unwrap(),
        format!("{p4}\n{p2}\n")
    );
    assert_eq!(
        field_text(&d, "wga", "preshared-keys", false).unwrap(),
        format!("{p4}\t(none)\n{p2}\t{psk}\n")
    );
    assert_eq!(
        field_text(&d, "wga", "private-key", false).unwrap(),
        format!("{sk}\n")
    );
    assert_eq!(
        field_text(&d, "wga", "public-key", false).unwrap(),
        format!("{pk}\n")
    );
    assert_eq!(field_text(&d, "wga", "bogus", false), None);
    let empty = InterfaceStatus::default();
    assert_eq!(
        field_text(&empty, "x", "dump", false).unwrap(),
        "(none)\t(none)\t0\toff\n"
    );
    assert_eq!(
        pretty_text(&empty, "x", &env(true, false)),
        "interface: x\n"
    );
}
