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
use crate::uapi::prefix::fmt_endpoint;
use crate::uapi::{AllowedIpChange, InterfaceStatus, IpPrefix, PeerChange, SetRequest};

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
#[path = "wg_tests.rs"]
mod tests;
