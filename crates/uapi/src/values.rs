//! Strict parsers for single UAPI values, shared by the set-request and get-reply parsers.

use std::net::SocketAddr;

use ferrotun_proto::keys::{parse_hex_key, PresharedKey, PrivateKey, PublicKey, KEY_LEN};

/// A decimal number made of digits only: wireguard-go's `ParseUint` and wg's `NUM()` both
/// refuse signs and spaces, which Rust's `parse` would partly accept (`+5`).
pub fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A 64-hex-digit key, upper or lower case.
pub fn hex_key(text: &str) -> Option<[u8; KEY_LEN]> {
    parse_hex_key(text).ok()
}

pub fn public_key(text: &str) -> Option<PublicKey> {
    hex_key(text).map(PublicKey::from_bytes)
}

/// The all-zero key means "no key"; anything else is stored clamped.
pub fn maybe_private_key(text: &str) -> Option<Option<PrivateKey>> {
    let raw = hex_key(text)?;
    Some((raw != [0; KEY_LEN]).then(|| PrivateKey::from_bytes(raw)))
}

/// The all-zero key means "no preshared key".
pub fn maybe_preshared_key(text: &str) -> Option<Option<PresharedKey>> {
    let psk = PresharedKey::from_bytes(hex_key(text)?);
    Some((!psk.is_zero()).then_some(psk))
}

/// A numeric endpoint, `a.b.c.d:port` or `[v6]:port`; names are resolved by the sender.
/// An IPv6 zone may be an index or, as wireguard-go prints it, an interface name.
pub fn endpoint(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse() {
        return Some(addr);
    }
    let (host, port) = text.strip_prefix('[')?.split_once("]:")?;
    let (ip, zone) = host.split_once('%')?;
    let scope = super::prefix::scope_index(zone)?;
    let ip: std::net::Ipv6Addr = ip.parse().ok()?;
    Some(SocketAddr::V6(std::net::SocketAddrV6::new(
        ip,
        decimal(port)?,
        0,
        scope,
    )))
}

/// Boolean keys take only the literal `true`, as in wireguard-go.
pub fn is_true(text: &str) -> bool {
    text == "true"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_digits_only() {
        assert_eq!(decimal::<u16>("51820"), Some(51820));
        assert_eq!(decimal::<u16>("051820"), Some(51820));
        assert_eq!(decimal::<u16>("0065535"), Some(65535));
        assert_eq!(decimal::<u16>("65536"), None);
        assert_eq!(decimal::<u16>("+1"), None);
        assert_eq!(decimal::<u16>(""), None);
        assert_eq!(decimal::<u32>(" 1"), None);
    }

    #[test]
    fn zero_keys_mean_none() {
        let zero = "0".repeat(64);
        assert_eq!(maybe_private_key(&zero), Some(None));
        assert_eq!(maybe_preshared_key(&zero), Some(None));
        assert!(matches!(maybe_private_key(&"1".repeat(64)), Some(Some(_))));
        assert_eq!(maybe_private_key("12"), None);
    }

    #[test]
    fn endpoints() {
        assert!(endpoint("1.2.3.4:5").is_some());
        assert!(endpoint("[::1]:5").is_some());
        assert!(endpoint("::1:5").is_none());
        assert!(endpoint("host:5").is_none());
        assert!(endpoint("1.2.3.4").is_none());
        assert_eq!(
            endpoint("[fe80::1%lo]:5"),
            Some("[fe80::1%1]:5".parse().unwrap())
        );
        assert!(endpoint("[fe80::1%nosuchif0]:5").is_none());
    }
}
