//! The wg(8) configuration file, as `setconf`, `addconf` and `syncconf` read it and `showconf`
//! writes it.
//!
//! Line rules follow wg: everything from `#` on is a comment, every whitespace character is
//! dropped (so `Endpoint = a b:1` means `ab:1`), section names and keys are case-insensitive.
//! Unlike wg, a repeated peer is an error and every error names its file and line.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use ferrotun_proto::keys::{PresharedKey, PrivateKey, PublicKey};

use super::endpoint::{self, Resolver};
use super::values;
use super::{ConfigError, ConfigErrorKind, Place};
use crate::prefix::fmt_endpoint;
use crate::{AllowedIpChange, InterfaceStatus, IpPrefix, PeerChange, SetRequest};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WgConfig {
    /// `Some(None)` = an explicit all-zero key, which removes the device's key.
    pub private_key: Option<Option<PrivateKey>>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    pub peers: Vec<PeerConfig>,
    /// Non-fatal findings (`file:line: …`), e.g. an AllowedIP with host bits set.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub public_key: PublicKey,
    /// `Some(None)` = an explicit all-zero key, which removes the preshared key.
    pub preshared_key: Option<Option<PresharedKey>>,
    pub endpoint: Option<SocketAddr>,
    pub persistent_keepalive: Option<u16>,
    /// As written (host bits kept), in file order.
    pub allowed_ips: Vec<IpPrefix>,
}

/// A `[Peer]` being read: its public key may come on any of its lines.
struct PeerDraft {
    header_line: usize,
    key_line: usize,
    public_key: Option<PublicKey>,
    preshared_key: Option<Option<PresharedKey>>,
    endpoint: Option<SocketAddr>,
    persistent_keepalive: Option<u16>,
    allowed_ips: Vec<IpPrefix>,
}

enum Section {
    None,
    Interface,
    Peer(Box<PeerDraft>),
}

/// Drops the comment and every whitespace character (C's `isspace` set, as wg does).
pub(crate) fn clean_line(line: &str) -> String {
    let code = line.split('#').next().unwrap_or("");
    code.chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'))
        .collect()
}

/// Numbers lines from 1, the way every `file:line` refers to them.
pub(crate) fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n').enumerate().map(|(i, l)| (i + 1, l))
}

impl WgConfig {
    /// Parses a config file's text, resolving endpoint names with the system resolver.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        Self::parse_with(text, file, &endpoint::resolve)
    }

    pub fn parse_with(text: &str, file: &str, resolve: Resolver) -> Result<Self, ConfigError> {
        Self::parse_lines(numbered(text), file, resolve)
    }

    /// Parses numbered lines (wg-quick hands over only the lines it does not consume).
    pub(crate) fn parse_lines<'a>(
        lines: impl IntoIterator<Item = (usize, &'a str)>,
        file: &str,
        resolve: Resolver,
    ) -> Result<Self, ConfigError> {
        let mut config = WgConfig::default();
        let mut seen: HashMap<PublicKey, usize> = HashMap::new();
        let mut section = Section::None;
        for (line, raw) in lines {
            let place = Place { file, line };
            let text = clean_line(raw);
            if text.is_empty() {
                continue;
            }
            if text.starts_with('[') {
                let next = if text.eq_ignore_ascii_case("[Interface]") {
                    Section::Interface
                } else if text.eq_ignore_ascii_case("[Peer]") {
                    Section::Peer(Box::new(PeerDraft::new(line)))
                } else {
                    return Err(place.error(ConfigErrorKind::UnknownSection(text)));
                };
                config.finish_section(std::mem::replace(&mut section, next), file, &mut seen)?;
                continue;
            }
            let (key, value) = text
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| place.error(ConfigErrorKind::Malformed(text.clone())))?;
            if value.is_empty() && !key.eq_ignore_ascii_case("AllowedIPs") {
                return Err(place.error(ConfigErrorKind::EmptyValue(key.to_string())));
            }
            match &mut section {
                Section::None => {
                    return Err(place.error(ConfigErrorKind::OutsideSection(key.to_string())))
                }
                Section::Interface => config.interface_line(key, value, place)?,
                Section::Peer(peer) => {
                    let warnings = peer.line(key, value, place, resolve)?;
                    config.warnings.extend(warnings);
                }
            }
        }
        config.finish_section(section, file, &mut seen)?;
        Ok(config)
    }

    fn interface_line(&mut self, key: &str, value: &str, place: Place) -> Result<(), ConfigError> {
        let value_err = |e: values::ValueError| place.error(e);
        match key.to_ascii_lowercase().as_str() {
            "listenport" => self.listen_port = Some(values::port(value).map_err(value_err)?),
            "fwmark" => self.fwmark = Some(values::fwmark(value).map_err(value_err)?),
            "privatekey" => self.private_key = Some(values::private_key(value).map_err(value_err)?),
            _ => {
                return Err(place.error(ConfigErrorKind::UnknownKey {
                    key: key.to_string(),
                    section: "Interface",
                }))
            }
        }
        Ok(())
    }

    fn finish_section(
        &mut self,
        section: Section,
        file: &str,
        seen: &mut HashMap<PublicKey, usize>,
    ) -> Result<(), ConfigError> {
        let Section::Peer(draft) = section else {
            return Ok(());
        };
        let Some(public_key) = draft.public_key else {
            let place = Place {
                file,
                line: draft.header_line,
            };
            return Err(place.error(ConfigErrorKind::MissingPublicKey));
        };
        if seen.insert(public_key, draft.key_line).is_some() {
            let place = Place {
                file,
                line: draft.key_line,
            };
            return Err(place.error(ConfigErrorKind::DuplicatePeer(public_key.to_base64())));
        }
        self.peers.push(PeerConfig {
            public_key,
            preshared_key: draft.preshared_key,
            endpoint: draft.endpoint,
            persistent_keepalive: draft.persistent_keepalive,
            allowed_ips: draft.allowed_ips,
        });
        Ok(())
    }

    /// The request `setconf` (`replace = true`: unset fields are cleared, all peers replaced)
    /// or `addconf` (`replace = false`) sends. Every listed peer's allowed IPs are replaced by
    /// the file's, in both modes, as wg does.
    pub fn to_set_request(&self, replace: bool) -> SetRequest {
        let peers = self
            .peers
            .iter()
            .map(|p| PeerChange {
                preshared_key: p.preshared_key.clone(),
                endpoint: p.endpoint,
                persistent_keepalive: p.persistent_keepalive,
                replace_allowed_ips: true,
                allowed_ips: p
                    .allowed_ips
                    .iter()
                    .map(|ip| AllowedIpChange::Add(ip.masked()))
                    .collect(),
                ..PeerChange::new(p.public_key)
            })
            .collect();
        if replace {
            SetRequest {
                private_key: Some(self.private_key.clone().unwrap_or(None)),
                listen_port: Some(self.listen_port.unwrap_or(0)),
                fwmark: Some(self.fwmark.unwrap_or(0)),
                replace_peers: true,
                peers,
            }
        } else {
            SetRequest {
                private_key: self.private_key.clone(),
                listen_port: self.listen_port,
                fwmark: self.fwmark,
                replace_peers: false,
                peers,
            }
        }
    }

    /// The configuration a running device has, as `showconf` reports it.
    pub fn from_status(status: &InterfaceStatus) -> Self {
        WgConfig {
            private_key: status.private_key.clone().map(Some),
            listen_port: (status.listen_port != 0).then_some(status.listen_port),
            fwmark: (status.fwmark != 0).then_some(status.fwmark),
            peers: status
                .peers
                .iter()
                .map(|p| PeerConfig {
                    public_key: p.public_key,
                    preshared_key: p.preshared_key.clone().map(Some),
                    endpoint: p.endpoint,
                    persistent_keepalive: (p.persistent_keepalive != 0)
                        .then_some(p.persistent_keepalive),
                    allowed_ips: p.allowed_ips.clone(),
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    /// The file text in `wg showconf`'s layout.
    pub fn to_text(&self) -> String {
        let mut out = String::from("[Interface]\n");
        // Writing to a String cannot fail.
        if let Some(port) = self.listen_port {
            let _ = writeln!(out, "ListenPort = {port}");
        }
        if let Some(mark) = self.fwmark {
            let _ = writeln!(out, "FwMark = 0x{mark:x}");
        }
        if let Some(key) = &self.private_key {
            let text = key.as_ref().map_or_else(zero_key_base64, |k| k.to_base64());
            let _ = writeln!(out, "PrivateKey = {text}");
        }
        out.push('\n');
        for (i, peer) in self.peers.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "[Peer]\nPublicKey = {}", peer.public_key);
            if let Some(psk) = &peer.preshared_key {
                let text = psk.as_ref().map_or_else(zero_key_base64, |k| k.to_base64());
                let _ = writeln!(out, "PresharedKey = {text}");
            }
            if !peer.allowed_ips.is_empty() {
                let list: Vec<String> = peer.allowed_ips.iter().map(|p| p.to_string()).collect();
                let _ = writeln!(out, "AllowedIPs = {}", list.join(", "));
            }
            if let Some(ep) = &peer.endpoint {
                let _ = writeln!(out, "Endpoint = {}", fmt_endpoint(ep));
            }
            if let Some(ka) = peer.persistent_keepalive {
                let _ = writeln!(out, "PersistentKeepalive = {ka}");
            }
        }
        out
    }
}

fn zero_key_base64() -> String {
    PresharedKey::ZERO.to_base64()
}

impl PeerDraft {
    fn new(header_line: usize) -> Self {
        PeerDraft {
            header_line,
            key_line: header_line,
            public_key: None,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            allowed_ips: Vec::new(),
        }
    }

    /// Applies one `[Peer]` line; returns any warnings it raises.
    fn line(
        &mut self,
        key: &str,
        value: &str,
        place: Place,
        resolve: Resolver,
    ) -> Result<Vec<String>, ConfigError> {
        let value_err = |e: values::ValueError| place.error(e);
        let mut warnings = Vec::new();
        match key.to_ascii_lowercase().as_str() {
            "publickey" => {
                self.public_key = Some(values::public_key(value).map_err(value_err)?);
                self.key_line = place.line;
            }
            "presharedkey" => {
                self.preshared_key = Some(values::preshared_key(value).map_err(value_err)?)
            }
            "endpoint" => self.endpoint = Some(resolve(value).map_err(value_err)?),
            "persistentkeepalive" => {
                self.persistent_keepalive = Some(values::keepalive(value).map_err(value_err)?)
            }
            "allowedips" => {
                for ip in values::allowed_ips(value).map_err(value_err)? {
                    if ip.has_host_bits() {
                        warnings.push(
                            place.warning(&format!(
                                "Warning: AllowedIP has nonzero host part: {ip}"
                            )),
                        );
                    }
                    self.allowed_ips.push(ip);
                }
            }
            _ => {
                return Err(place.error(ConfigErrorKind::UnknownKey {
                    key: key.to_string(),
                    section: "Peer",
                }))
            }
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
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
}
