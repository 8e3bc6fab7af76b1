use super::*;
use crate::config::values::ValueError;

const PK1: &str = "jMGj6XfckCqD+cuJV1XkrPPw66oBfUPndCyBTTmhZAo=";
const PK2: &str = "xK6bcV6k0tE/35F7cEjO+BagAu3aUaO6wtwaTmb5il8=";
const SK: &str = "WAmgVYXkbT2bCtdcDwolI88/iVi/aV3/PHcUBTQSYmo=";

/// A resolver that knows one name and never touches the network.
fn fake(text: &str) -> Result<SocketAddr, ValueError> {
    let (host, port) = endpoint::split(text)?;
    let port = values::port(port)?;
    match host {
        "peer.example" => Ok(SocketAddr::new([192, 0, 2, 7].into(), port)),
        h => h
            .parse()
            .map(|ip| SocketAddr::new(ip, port))
            .map_err(|_| ValueError::Resolve {
                reason: "Name or service not known".into(),
                value: text.into(),
            }),
    }
}

fn parse(text: &str) -> Result<WgConfig, ConfigError> {
    WgConfig::parse_with(text, "t.conf", &fake)
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn full_file() {
    let text = format!(
        "# comment\n[interface]\nListenPort = 51820 # trailing\nFWMARK = 0x2a\nPrivateKey = {SK}\n\n\
         [Peer]\npublickey = {PK1}\nPresharedKey = {PK2}\nAllowedIPs = 10.0.0.1/32, fd00::/64\n\
         AllowedIPs = 10.1.0.0/16\nEndpoint = peer.example:51821\nPersistentKeepalive = off\n\
         [Peer]\nPublicKey = {PK2}\nEndpoint = [fd00::1]:5\nAllowedIPs =\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.listen_port, Some(51820));
    assert_eq!(c.fwmark, Some(42));
    assert!(matches!(c.private_key, Some(Some(_))));
    assert_eq!(c.peers.len(), 2);
    let p = &c.peers[0];
    assert_eq!(p.public_key.to_base64(), PK1);
    assert_eq!(p.allowed_ips.len(), 3);
    assert_eq!(p.endpoint, Some("192.0.2.7:51821".parse().unwrap()));
    assert_eq!(p.persistent_keepalive, Some(0));
    assert_eq!(c.peers[1].endpoint, Some("[fd00::1]:5".parse().unwrap()));
    assert!(c.peers[1].allowed_ips.is_empty());
    assert!(c.warnings.is_empty());
}

#[test]
fn round_trip_through_showconf_text() {
    let text = format!(
        "[Interface]\nListenPort = 51820\nFwMark = 0x2a\nPrivateKey = {SK}\n\n[Peer]\nPublicKey = {PK1}\n\
         PresharedKey = {PK2}\nAllowedIPs = 10.0.0.1/32, fd00::/64\nEndpoint = [fd00::1]:5\n\
         PersistentKeepalive = 25\n\n[Peer]\nPublicKey = {PK2}\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.to_text(), text);
    assert_eq!(parse(&c.to_text()).unwrap(), c);
}

#[test]
fn set_requests() {
    let c = parse(&format!(
        "[Peer]\nPublicKey = {PK1}\nAllowedIPs = 10.1.2.3/8\n"
    ))
    .unwrap();
    assert_eq!(
        c.warnings,
        vec!["t.conf:3: Warning: AllowedIP has nonzero host part: 10.1.2.3/8".to_string()]
    );
    let set = c.to_set_request(true);
    assert_eq!(set.private_key, Some(None));
    assert_eq!(
        (set.listen_port, set.fwmark, set.replace_peers),
        (Some(0), Some(0), true)
    );
    assert!(set.peers[0].replace_allowed_ips);
    assert_eq!(
        set.peers[0].allowed_ips[0].prefix().to_string(),
        "10.0.0.0/8"
    );
    let add = c.to_set_request(false);
    assert_eq!(
        (
            add.private_key,
            add.listen_port,
            add.fwmark,
            add.replace_peers
        ),
        (None, None, None, false)
    );
    assert!(add.peers[0].replace_allowed_ips);
}

#[test]
fn each_error_names_file_and_line() {
    let cases = [
        (
            "ListenPort = 1\n".to_string(),
            "t.conf:1: `ListenPort' is outside of any [Interface] or [Peer] section",
        ),
        (
            "[Interface]\nBogus = 1\n".to_string(),
            "t.conf:2: Unknown key `Bogus' in [Interface] section",
        ),
        (
            format!("[Peer]\nPublicKey = {PK1}\nListenPort = 1\n"),
            "t.conf:3: Unknown key `ListenPort' in [Peer] section",
        ),
        (
            "[Interface]\n[Foo]\n".to_string(),
            "t.conf:2: Unknown section `[Foo]'",
        ),
        (
            "[Interface]\njunk\n".to_string(),
            "t.conf:2: Line is not of the form `Key = Value': `junk'",
        ),
        (
            "[Interface]\nListenPort =\n".to_string(),
            "t.conf:2: `ListenPort' has no value",
        ),
        (
            "[Interface]\nListenPort = 70000\n".to_string(),
            "t.conf:2: Port is not a number 0-65535: `70000'",
        ),
        (
            "[Interface]\nFwMark = x\n".to_string(),
            "t.conf:2: Fwmark is neither 0/off nor 0-0xffffffff: `x'",
        ),
        (
            "[Interface]\nPrivateKey = abc\n".to_string(),
            "t.conf:2: Key is not the correct length or format",
        ),
        (
            "[Peer]\nPublicKey = abc\n".to_string(),
            "t.conf:2: Key is not the correct length or format: `abc'",
        ),
        (
            format!("[Peer]\nPublicKey = {PK1}\nAllowedIPs = 10.0.0.0/33\n"),
            "t.conf:3: AllowedIP is not in the correct format: `10.0.0.0/33'",
        ),
        (
            format!("[Peer]\nPublicKey = {PK1}\nAllowedIPs = 10.0.0\n"),
            "t.conf:3: Unable to parse IP address: `10.0.0'",
        ),
        (
            format!("[Peer]\nPublicKey = {PK1}\nEndpoint = nowhere.invalid:1\n"),
            "t.conf:3: Name or service not known: `nowhere.invalid:1'",
        ),
        (
            format!("[Peer]\nPublicKey = {PK1}\nEndpoint = 1.2.3.4\n"),
            "t.conf:3: Unable to find port of endpoint: `1.2.3.4'",
        ),
        (
            format!("[Peer]\nPublicKey = {PK1}\nEndpoint = [::1:5\n"),
            "t.conf:3: Unable to find matching brace of endpoint: `[::1:5'",
        ),
        (
            format!("[Peer]\nPublicKey = {PK1}\nPersistentKeepalive = 1m\n"),
            "t.conf:3: Persistent keepalive interval is neither 0/off nor 1-65535: `1m'",
        ),
        (
            "[Interface]\n\n[Peer]\nAllowedIPs = 10.0.0.0/8\n".to_string(),
            "t.conf:3: Peer section has no PublicKey",
        ),
        (
            format!("[Peer]\nPublicKey = {PK1}\n[Peer]\n# again\nPublicKey = {PK1}\n"),
            &format!("t.conf:5: Duplicate peer with public key `{PK1}'"),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(&text), want, "for {text:?}");
    }
}

#[test]
fn whitespace_and_case_like_wg() {
    let c = parse(&format!(
        "  [ PEER ]  \n\tPublic Key={PK1}\r\nallowedips = 10.0.0.1 / 32 ,fd00::1\n"
    ))
    .unwrap();
    assert_eq!(c.peers[0].allowed_ips.len(), 2);
    // A zero private key is kept as an explicit removal.
    let zero = "A".repeat(43) + "=";
    assert_eq!(
        parse(&format!("[Interface]\nPrivateKey={zero}\n"))
            .unwrap()
            .private_key,
        Some(None)
    );
}
