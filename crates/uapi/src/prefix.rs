//! IP prefixes (`addr/cidr`) as AllowedIPs and wg-quick's Address carry them, and address
//! formatting that matches what glibc's `inet_ntop` prints, so `show` output is byte-identical
//! to wg(8)'s.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub cidr: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("not an IPv4 or IPv6 address")]
    Addr,
    #[error("prefix length is not a number in range")]
    Cidr,
    #[error("missing `/cidr`")]
    MissingCidr,
}

impl IpPrefix {
    /// Builds a prefix, rejecting a length beyond the family's width.
    pub fn new(addr: IpAddr, cidr: u8) -> Result<Self, PrefixError> {
        if cidr > max_cidr(&addr) {
            return Err(PrefixError::Cidr);
        }
        Ok(IpPrefix { addr, cidr })
    }

    /// A single-host prefix (/32 or /128), what a bare address in AllowedIPs means.
    pub fn host(addr: IpAddr) -> Self {
        IpPrefix {
            cidr: max_cidr(&addr),
            addr,
        }
    }

    /// Parses `addr/cidr`; the length is required (the UAPI form).
    pub fn parse(text: &str) -> Result<Self, PrefixError> {
        let (addr, cidr) = text.split_once('/').ok_or(PrefixError::MissingCidr)?;
        let addr = parse_ip(addr)?;
        IpPrefix::new(addr, parse_cidr(cidr)?)
    }

    /// Parses `addr[/cidr]`, a bare address meaning a single host (the config-file form).
    pub fn parse_or_host(text: &str) -> Result<Self, PrefixError> {
        match text.split_once('/') {
            Some(_) => IpPrefix::parse(text),
            None => parse_ip(text).map(IpPrefix::host),
        }
    }

    /// The prefix with its host bits cleared, as the routing table stores it. (Saturating:
    /// the fields are public, so an out-of-range length must not panic here.)
    pub fn masked(self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(u32::from(self.cidr)))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(bits & mask))
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(self.cidr)))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        };
        IpPrefix {
            addr,
            cidr: self.cidr,
        }
    }

    pub fn has_host_bits(&self) -> bool {
        self.masked() != *self
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", fmt_ip(&self.addr), self.cidr)
    }
}

pub fn max_cidr(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Parses an address the way wg's `inet_pton` use does: a colon selects IPv6.
pub fn parse_ip(text: &str) -> Result<IpAddr, PrefixError> {
    if text.contains(':') {
        text.parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| PrefixError::Addr)
    } else {
        text.parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| PrefixError::Addr)
    }
}

/// Only plain decimal digits: Rust's integer parser would also take a leading `+`.
fn parse_cidr(text: &str) -> Result<u8, PrefixError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PrefixError::Cidr);
    }
    text.parse().map_err(|_| PrefixError::Cidr)
}

/// Formats an address as glibc's `inet_ntop` does. Rust agrees except for IPv4-compatible IPv6
/// addresses (`::a.b.c.d`), which glibc prints dotted and Rust in hex.
pub fn fmt_ip(addr: &IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let w = a.segments();
            if w[..6].iter().all(|&x| x == 0) && w[6] != 0 {
                let [.., o12, o13, o14, o15] = a.octets();
                format!("::{o12}.{o13}.{o14}.{o15}")
            } else {
                a.to_string()
            }
        }
    }
}

/// Formats an endpoint as wg does: `host:port`, IPv6 in brackets. A scope prints as glibc's
/// `getnameinfo` prints it: the interface name for link-local addresses, else the number.
pub fn fmt_endpoint(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => {
            let host = fmt_ip(&IpAddr::V6(*a.ip()));
            let scope = a.scope_id();
            if scope == 0 {
                return format!("[{host}]:{}", a.port());
            }
            let [first, second, ..] = a.ip().octets();
            let link_local = (first == 0xfe && second & 0xc0 == 0x80)
                || (first == 0xff && second & 0x0f == 0x02);
            let zone = link_local
                .then(|| scope_name(scope))
                .flatten()
                .unwrap_or_else(|| scope.to_string());
            format!("[{host}%{zone}]:{}", a.port())
        }
    }
}

const SYS_NET: &str = "/sys/class/net";

/// An IPv6 zone as an interface index: a number, or an interface name looked up in sysfs
/// (which needs no `unsafe` FFI call).
pub fn scope_index(zone: &str) -> Option<u32> {
    if let Ok(n) = zone.parse() {
        return Some(n);
    }
    if zone.is_empty() || zone.contains('/') || zone.starts_with('.') {
        return None;
    }
    let text = std::fs::read_to_string(format!("{SYS_NET}/{zone}/ifindex")).ok()?;
    text.trim().parse().ok()
}

/// The interface name for an index, if there is such an interface.
fn scope_name(index: u32) -> Option<String> {
    std::fs::read_dir(SYS_NET)
        .ok()?
        .flatten()
        .find_map(|entry| {
            let text = std::fs::read_to_string(entry.path().join("ifindex")).ok()?;
            (text.trim().parse::<u32>().ok()? == index)
                .then(|| entry.file_name().to_string_lossy().into_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_mask() {
        let p = IpPrefix::parse("10.1.2.3/8").unwrap();
        assert!(p.has_host_bits());
        assert_eq!(p.masked().to_string(), "10.0.0.0/8");
        assert_eq!(
            IpPrefix::parse("fd00::1/0").unwrap().masked().to_string(),
            "::/0"
        );
        assert_eq!(
            IpPrefix::parse("1.2.3.4/0").unwrap().masked().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(
            IpPrefix::parse("1.2.3.4/32").unwrap().masked().to_string(),
            "1.2.3.4/32"
        );
        assert_eq!(
            IpPrefix::parse_or_host("fd00::2").unwrap().to_string(),
            "fd00::2/128"
        );
    }

    #[test]
    fn parse_rejects() {
        assert_eq!(IpPrefix::parse("1.2.3.4/33"), Err(PrefixError::Cidr));
        assert_eq!(IpPrefix::parse("1.2.3.4/+3"), Err(PrefixError::Cidr));
        assert_eq!(IpPrefix::parse("1.2.3.4/"), Err(PrefixError::Cidr));
        assert_eq!(IpPrefix::parse("::/129"), Err(PrefixError::Cidr));
        assert_eq!(IpPrefix::parse("1.2.3/24"), Err(PrefixError::Addr));
        assert_eq!(IpPrefix::parse("1.2.3.4"), Err(PrefixError::MissingCidr));
        assert_eq!(
            IpPrefix::parse("1.2.3.4/99999999999999"),
            Err(PrefixError::Cidr)
        );
    }

    #[test]
    fn glibc_style_ipv6() {
        let f = |s: &str| fmt_ip(&s.parse().unwrap());
        assert_eq!(f("::2:3"), "::0.2.0.3");
        assert_eq!(f("::1"), "::1");
        assert_eq!(f("::"), "::");
        assert_eq!(f("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(f("fd00:0:0:1::1"), "fd00:0:0:1::1");
        assert_eq!(fmt_endpoint(&"[::1]:5".parse().unwrap()), "[::1]:5");
        // Loopback is interface 1 on Linux; link-local scopes print as names, others as numbers.
        assert_eq!(scope_index("lo"), Some(1));
        assert_eq!(
            fmt_endpoint(&"[fe80::1%1]:5".parse().unwrap()),
            "[fe80::1%lo]:5"
        );
        assert_eq!(
            fmt_endpoint(&"[fd00::1%1]:5".parse().unwrap()),
            "[fd00::1%1]:5"
        );
    }
}
