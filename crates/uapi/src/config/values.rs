//! Parsers for the values that config files and `wg set` arguments share, with wg's rules and
//! error texts (secrets are never echoed back).

use ferrotun_proto::keys::{PresharedKey, PrivateKey, PublicKey};

use crate::prefix::{parse_ip, IpPrefix};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("Key is not the correct length or format")]
    SecretKey,
    #[error("Key is not the correct length or format: `{0}'")]
    PublicKey(String),
    #[error("Unable to parse empty port")]
    EmptyPort,
    #[error("Port is not a number 0-65535: `{0}'")]
    Port(String),
    #[error("Fwmark is neither 0/off nor 0-0xffffffff: `{0}'")]
    Fwmark(String),
    #[error("Persistent keepalive interval is neither 0/off nor 1-65535: `{0}'")]
    Keepalive(String),
    #[error("Unable to parse IP address: `{0}'")]
    Ip(String),
    #[error("AllowedIP is not in the correct format: `{0}'")]
    AllowedIp(String),
    #[error("Unable to parse empty endpoint")]
    EmptyEndpoint,
    #[error("Unable to find matching brace of endpoint: `{0}'")]
    EndpointBrace(String),
    #[error("Unable to find port of endpoint: `{0}'")]
    EndpointPort(String),
    #[error("{reason}: `{value}'")]
    Resolve { reason: String, value: String },
}

/// Digits only, then a range check: wg's `strtoul` after a first-digit test.
fn digits<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

pub fn port(text: &str) -> Result<u16, ValueError> {
    if text.is_empty() {
        return Err(ValueError::EmptyPort);
    }
    digits(text).ok_or_else(|| ValueError::Port(text.to_string()))
}

/// `off` (any case) or 0 clears; `0x…` is hex, anything else decimal.
pub fn fwmark(text: &str) -> Result<u32, ValueError> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    let bad = || ValueError::Fwmark(text.to_string());
    match text.strip_prefix("0x") {
        Some(hex) if !hex.is_empty() => {
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            u32::from_str_radix(hex, 16).map_err(|_| bad())
        }
        _ => digits(text).ok_or_else(bad),
    }
}

/// `off` (any case) or 0 disables; otherwise seconds up to 65535.
pub fn keepalive(text: &str) -> Result<u16, ValueError> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    digits(text).ok_or_else(|| ValueError::Keepalive(text.to_string()))
}

pub fn public_key(text: &str) -> Result<PublicKey, ValueError> {
    PublicKey::from_base64(text).map_err(|_| ValueError::PublicKey(text.to_string()))
}

/// The all-zero key means "remove the key", as wg sends it.
pub fn private_key(text: &str) -> Result<Option<PrivateKey>, ValueError> {
    // Decode unclamped first: clamping would turn the all-zero "remove" key into a real one.
    let raw = PresharedKey::from_base64(text).map_err(|_| ValueError::SecretKey)?;
    Ok((!raw.is_zero()).then(|| PrivateKey::from_bytes(*raw.as_bytes())))
}

pub fn preshared_key(text: &str) -> Result<Option<PresharedKey>, ValueError> {
    let key = PresharedKey::from_base64(text).map_err(|_| ValueError::SecretKey)?;
    Ok((!key.is_zero()).then_some(key))
}

/// One AllowedIPs entry, `addr[/cidr]`; host bits are kept (the daemon masks them; the
/// caller may warn).
pub fn allowed_ip(entry: &str) -> Result<IpPrefix, ValueError> {
    let (addr, cidr) = match entry.split_once('/') {
        Some((a, c)) => (a, Some(c)),
        None => (entry, None),
    };
    let addr = parse_ip(addr).map_err(|_| ValueError::Ip(addr.to_string()))?;
    let bad = || ValueError::AllowedIp(entry.to_string());
    match cidr {
        None => Ok(IpPrefix::host(addr)),
        Some(c) => IpPrefix::new(addr, digits(c).ok_or_else(bad)?).map_err(|_| bad()),
    }
}

/// A comma-separated AllowedIPs list; an empty list is allowed (it clears).
pub fn allowed_ips(list: &str) -> Result<Vec<IpPrefix>, ValueError> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    list.split(',').map(allowed_ip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fwmarks() {
        assert_eq!(fwmark("off"), Ok(0));
        assert_eq!(fwmark("OFF"), Ok(0));
        assert_eq!(fwmark("0x2a"), Ok(42));
        assert_eq!(fwmark("0xFFFFFFFF"), Ok(u32::MAX));
        assert_eq!(fwmark("042"), Ok(42));
        assert!(fwmark("0x").is_err());
        assert!(fwmark("0x1g").is_err());
        assert!(fwmark("4294967296").is_err());
        assert!(fwmark("-1").is_err());
        assert_eq!(
            fwmark("x").unwrap_err().to_string(),
            "Fwmark is neither 0/off nor 0-0xffffffff: `x'"
        );
    }

    #[test]
    fn keepalives_and_ports() {
        assert_eq!(keepalive("Off"), Ok(0));
        assert_eq!(keepalive("25"), Ok(25));
        assert!(keepalive("65536").is_err());
        assert!(keepalive("25s").is_err());
        assert_eq!(port("51820"), Ok(51820));
        assert_eq!(port(""), Err(ValueError::EmptyPort));
        assert!(port("65536").is_err());
    }

    #[test]
    fn allowed_ip_lists() {
        let v = allowed_ips("10.0.0.1/8,fd00::1").unwrap();
        assert_eq!(v[0].to_string(), "10.0.0.1/8");
        assert_eq!(v[1].to_string(), "fd00::1/128");
        assert!(allowed_ips("").unwrap().is_empty());
        assert_eq!(
            allowed_ips("10.0.0.0/8,").unwrap_err(),
            ValueError::Ip(String::new())
        );
        assert_eq!(
            allowed_ips("10.0.0.0/33").unwrap_err(),
            ValueError::AllowedIp("10.0.0.0/33".into())
        );
        assert_eq!(
            allowed_ips("10.0.0.0/a").unwrap_err(),
            ValueError::AllowedIp("10.0.0.0/a".into())
        );
    }

    #[test]
    fn keys() {
        let zero = "A".repeat(43) + "=";
        assert_eq!(private_key(&zero), Ok(None));
        assert_eq!(preshared_key(&zero), Ok(None));
        assert!(private_key("short").is_err());
        assert!(!private_key("short")
            .unwrap_err()
            .to_string()
            .contains("short"));
        assert!(public_key("short")
            .unwrap_err()
            .to_string()
            .contains("short"));
    }
}
