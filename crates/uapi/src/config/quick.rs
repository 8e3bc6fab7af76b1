//! The wg-quick configuration file: the wg(8) format plus interface settings that wg-quick
//! itself carries out (addresses, DNS, MTU, routing table, hooks, SaveConfig).
//!
//! Line handling follows wg-quick: text from `#` on is a comment, keys are case-insensitive,
//! values are trimmed, and the lines it does not consume are handed to the wg(8) parser
//! unchanged (that text is what `wg-quick strip` prints). Note that a `#` inside a hook
//! command starts a comment, as in wg-quick.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::endpoint::{self, Resolver};
use super::wg::{clean_line, numbered, WgConfig};
use super::{ConfigError, ConfigErrorKind, Place};
use crate::IpPrefix;

/// The routing table wg-quick adds routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Table {
    /// The default: the main table, or a policy-routed table for a default route.
    Auto,
    /// Add no routes.
    Off,
    Id(u32),
    /// A name from `/etc/iproute2/rt_tables`.
    Name(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuickConfig {
    /// Interface addresses, with their prefix length (host bits kept: `10.0.0.1/24`).
    pub addresses: Vec<IpPrefix>,
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub mtu: Option<u32>,
    pub table: Option<Table>,
    pub pre_up: Vec<String>,
    pub post_up: Vec<String>,
    pub pre_down: Vec<String>,
    pub post_down: Vec<String>,
    pub save_config: bool,
    /// The wg(8) part, parsed.
    pub wg: WgConfig,
    /// The wg(8) part as text: the unconsumed lines, trimmed, each ending in `\n`.
    pub wg_text: String,
}

/// The smallest MTU Linux accepts on an IPv4 interface.
const MIN_MTU: u32 = 68;

impl QuickConfig {
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        Self::parse_with(text, file, &endpoint::resolve)
    }

    pub fn parse_with(text: &str, file: &str, resolve: Resolver) -> Result<Self, ConfigError> {
        let mut config = QuickConfig::default();
        let mut wg_lines = Vec::new();
        let mut in_interface = false;
        for (line, raw) in numbered(text) {
            let place = Place { file, line };
            let trimmed = raw.trim_matches([' ', '\t']);
            let code = trimmed.split('#').next().unwrap_or("");
            let (key, value) = match code.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (code.trim(), ""),
            };
            let header = clean_line(key);
            if header.starts_with('[') {
                in_interface = header.eq_ignore_ascii_case("[Interface]");
            } else if in_interface && config.interface_line(key, value, place)? {
                continue;
            }
            wg_lines.push((line, trimmed));
        }
        if text.ends_with('\n') {
            // The split leaves an empty last element for the final newline; it is not a line.
            if wg_lines.last().is_some_and(|(_, l)| l.is_empty()) {
                wg_lines.pop();
            }
        }
        for (_, l) in &wg_lines {
            config.wg_text.push_str(l);
            config.wg_text.push('\n');
        }
        config.wg = WgConfig::parse_lines(wg_lines, file, resolve)?;
        Ok(config)
    }

    /// Handles a wg-quick key; `false` if the key is not one (it goes to wg then).
    fn interface_line(
        &mut self,
        key: &str,
        value: &str,
        place: Place,
    ) -> Result<bool, ConfigError> {
        let words = || value.split([',', ' ', '\t']).filter(|w| !w.is_empty());
        match key.to_ascii_lowercase().as_str() {
            "address" => {
                for w in words() {
                    let addr = IpPrefix::parse_or_host(w)
                        .map_err(|_| place.error(ConfigErrorKind::Address(w.to_string())))?;
                    self.addresses.push(addr);
                }
            }
            "dns" => {
                for w in words() {
                    // wg-quick's rule: digits and dots, or anything with a colon, is a server.
                    if w.bytes().all(|b| b.is_ascii_digit() || b == b'.') || w.contains(':') {
                        let ip = crate::prefix::parse_ip(w).map_err(|_| {
                            place.error(crate::config::ValueError::Ip(w.to_string()))
                        })?;
                        self.dns.push(ip);
                    } else {
                        self.dns_search.push(w.to_string());
                    }
                }
            }
            "mtu" => {
                let mtu = digits(value)
                    .filter(|m| (MIN_MTU..=65535).contains(m))
                    .ok_or_else(|| place.error(ConfigErrorKind::Mtu(value.to_string())))?;
                self.mtu = Some(mtu);
            }
            "table" => self.table = Some(parse_table(value).map_err(|k| place.error(k))?),
            "preup" => self.pre_up.push(value.to_string()),
            "postup" => self.post_up.push(value.to_string()),
            "predown" => self.pre_down.push(value.to_string()),
            "postdown" => self.post_down.push(value.to_string()),
            "saveconfig" => {
                self.save_config = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(place.error(ConfigErrorKind::Bool(value.to_string()))),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// What `wg-quick strip` prints (wg-quick echoes the text, adding one more newline).
    pub fn strip(&self) -> String {
        format!("{}\n", self.wg_text)
    }
}

fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_table(value: &str) -> Result<Table, ConfigErrorKind> {
    match value {
        "auto" => Ok(Table::Auto),
        "off" => Ok(Table::Off),
        v => {
            if let Some(id) = digits(v) {
                return Ok(Table::Id(id));
            }
            let name_ok = v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if v.is_empty() || !name_ok || v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigErrorKind::Table(v.to_string()));
            }
            Ok(Table::Name(v.to_string()))
        }
    }
}

/// Where wg-quick looks for a config: a bare interface name (`[a-zA-Z0-9_=+.-]{1,15}`) means
/// `/etc/wireguard/NAME.conf`; otherwise a path whose file name is `NAME.conf`. Returns the
/// path and the interface name, or wg-quick's complaint.
pub fn config_path(arg: &str) -> Result<(PathBuf, String), String> {
    if is_interface_name(arg) {
        return Ok((
            Path::new("/etc/wireguard").join(format!("{arg}.conf")),
            arg.to_string(),
        ));
    }
    // Split on the last '/' by hand: `Path::file_name` would skip a trailing slash and
    // accept "wg0.conf/", which wg-quick's `(^|/)name\.conf$` rejects.
    let path = PathBuf::from(arg);
    let name = arg
        .rsplit('/')
        .next()
        .and_then(|n| n.strip_suffix(".conf"))
        .filter(|n| is_interface_name(n))
        .map(str::to_string)
        .ok_or_else(|| {
            "The config file must be a valid interface name, followed by .conf".to_string()
        })?;
    Ok((path, name))
}

pub fn is_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_=+.-".contains(&b))
}

#[cfg(test)]
mod tests {
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
}
