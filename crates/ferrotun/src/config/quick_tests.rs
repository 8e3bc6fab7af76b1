use super::*;
use crate::config::values::ValueError;
use std::net::SocketAddr;

const PK1: &str = "jMGj6XfckCqD+cuJV1XkrPPw66oBfUPndCyBTTmhZAo=";
const SK: &str = "WAmgVYXkbT2bCtdcDwolI88/iVi/aV3/PHcUBTQSYmo=";

fn no_dns(text: &str) -> Result<SocketAddr, ValueError> {
    text.parse().map_err(|_| ValueError::Resolve {
        reason: "no DNS in tests".into(),
        value: text.into(),
    })
}

fn parse(text: &str) -> Result<QuickConfig, ConfigError> {
    QuickConfig::parse_with(text, "wg0.conf", &no_dns)
}

fn sample() -> String {
    format!(
        "[Interface]\n\
         Address = 10.0.0.1/24, fd00::1/64\n\
         address = 10.0.1.1\n\
         DNS = 1.1.1.1, fd00::53, example.com\n\
         MTU = 1380\n\
         Table = off\n\
         PrivateKey = {SK}\n\
         ListenPort = 51820\n\
         PreUp = echo pre\n\
         PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE\n\
         PostUp = echo second # a comment\n\
         PreDown = echo predown\n\
         PostDown = echo down\n\
         SaveConfig = true\n\
         \n\
         [Peer]\n\
         PublicKey = {PK1}\n\
         AllowedIPs = 10.0.0.2/32\n\
         Endpoint = 127.0.0.1:51821\n"
    )
}

#[test]
fn full_file() {
    let c = parse(&sample()).unwrap();
    let addrs: Vec<String> = c.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.1/24", "fd00::1/64", "10.0.1.1/32"]);
    assert_eq!(
        c.dns,
        vec![
            "1.1.1.1".parse::<IpAddr>().unwrap(),
            "fd00::53".parse().unwrap()
        ]
    );
    assert_eq!(c.dns_search, vec!["example.com".to_string()]);
    assert_eq!(c.mtu, Some(1380));
    assert_eq!(c.table, Some(Table::Off));
    assert_eq!(c.pre_up, vec!["echo pre".to_string()]);
    assert_eq!(c.post_up.len(), 2);
    assert!(c.post_up[0].starts_with("iptables -A FORWARD -i %i -j ACCEPT; iptables"));
    assert_eq!(c.post_up[1], "echo second");
    assert_eq!((c.pre_down.len(), c.post_down.len()), (1, 1));
    assert!(c.save_config);
    assert_eq!(c.wg.listen_port, Some(51820));
    assert_eq!(c.wg.peers.len(), 1);
}

#[test]
fn strip_keeps_only_wg_lines() {
    let c = parse(&sample()).unwrap();
    assert_eq!(
        c.strip(),
        format!("[Interface]\nPrivateKey = {SK}\nListenPort = 51820\n\n[Peer]\nPublicKey = {PK1}\nAllowedIPs = 10.0.0.2/32\nEndpoint = 127.0.0.1:51821\n\n")
    );
    // The stripped text is itself a valid wg config with the same meaning.
    let again = crate::config::WgConfig::parse_with(&c.wg_text, "x", &no_dns).unwrap();
    assert_eq!(again, c.wg);
}

#[test]
fn quick_keys_only_in_interface() {
    let err = parse(&format!(
        "[Peer]\nPublicKey = {PK1}\nAddress = 10.0.0.1/24\n"
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "wg0.conf:3: Unknown key `Address' in [Peer] section"
    );
}

#[test]
fn errors_name_file_and_line() {
    let cases = [
        (
            "[Interface]\nAddress = 10.0.0.300/24\n",
            "wg0.conf:2: Address is not an IP address with an optional prefix: `10.0.0.300/24'",
        ),
        (
            "[Interface]\nAddress = 10.0.0.1/33\n",
            "wg0.conf:2: Address is not an IP address with an optional prefix: `10.0.0.1/33'",
        ),
        (
            "[Interface]\nDNS = 1.1.1\n",
            "wg0.conf:2: Unable to parse IP address: `1.1.1'",
        ),
        (
            "[Interface]\nMTU = big\n",
            "wg0.conf:2: MTU is not a number 68-65535: `big'",
        ),
        (
            "[Interface]\nMTU = 10\n",
            "wg0.conf:2: MTU is not a number 68-65535: `10'",
        ),
        (
            "[Interface]\nTable = a/b\n",
            "wg0.conf:2: Table is neither auto, off, a number nor a table name: `a/b'",
        ),
        (
            "[Interface]\nSaveConfig = yes\n",
            "wg0.conf:2: `yes' is neither true nor false",
        ),
        (
            "[Interface]\nListenPort = x\n",
            "wg0.conf:2: Port is not a number 0-65535: `x'",
        ),
        (
            "[Interface]\nFoo = 1\n",
            "wg0.conf:2: Unknown key `Foo' in [Interface] section",
        ),
        (
            "MTU = 1400\n",
            "wg0.conf:1: `MTU' is outside of any [Interface] or [Peer] section",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text).unwrap_err().to_string(), want, "for {text:?}");
    }
}

#[test]
fn tables() {
    let t = |v: &str| parse(&format!("[Interface]\nTable = {v}\n")).unwrap().table;
    assert_eq!(t("auto"), Some(Table::Auto));
    assert_eq!(t("1234"), Some(Table::Id(1234)));
    assert_eq!(t("main"), Some(Table::Name("main".into())));
}

#[test]
fn config_paths() {
    assert_eq!(
        config_path("wg0").unwrap(),
        (PathBuf::from("/etc/wireguard/wg0.conf"), "wg0".to_string())
    );
    assert_eq!(config_path("/tmp/x/home.conf").unwrap().1, "home");
    assert!(config_path("/tmp/x/home.txt").is_err());
    assert!(config_path("/tmp/x/averyveryverylongname.conf").is_err());
    // wg-quick matches `(^|/)name\.conf$` on the text itself, so a trailing slash fails.
    assert!(config_path("/tmp/x/r.conf/").is_err());
    assert!(config_path("r.conf/").is_err());
}
