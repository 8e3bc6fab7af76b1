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
use crate::uapi::IpPrefix;

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
                        let ip = crate::uapi::prefix::parse_ip(w).map_err(|_| {
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
#[path = "quick_tests.rs"]
mod tests;
