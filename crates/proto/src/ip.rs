//! The few facts the core needs from an inner IP packet: version, addresses and the
//! length the header claims (to trim padding after decryption).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Destination address of an IPv4 or IPv6 packet, if the header is long enough.
pub fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 => {
            let b: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Source address of an IPv4 or IPv6 packet, if the header is long enough.
pub fn source(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let b: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 => {
            let b: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// The packet's real length according to its header, if consistent with `available`
/// bytes (the rest is WireGuard padding). None for anything that is not a sane IP packet.
pub fn claimed_len(packet: &[u8]) -> Option<usize> {
    let len = match packet.first()? >> 4 {
        4 => {
            let total = u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]) as usize;
            if total < 20 {
                return None;
            }
            total
        }
        6 => 40 + u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]) as usize,
        _ => return None,
    };
    (len <= packet.len()).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v4_and_v6_headers() {
        let mut v4 = vec![0u8; 24];
        v4[0] = 0x45;
        v4[2..4].copy_from_slice(&24u16.to_be_bytes());
        v4[12..16].copy_from_slice(&[10, 0, 0, 1]);
        v4[16..20].copy_from_slice(&[10, 0, 0, 2]);
        assert_eq!(source(&v4), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(destination(&v4), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(claimed_len(&v4), Some(24));
        v4.truncate(23);
        assert_eq!(claimed_len(&v4), None);

        let mut v6 = vec![0u8; 48];
        v6[0] = 0x60;
        v6[4..6].copy_from_slice(&8u16.to_be_bytes());
        v6[23] = 1;
        v6[39] = 2;
        assert_eq!(source(&v6), Some("::1".parse().unwrap()));
        assert_eq!(destination(&v6), Some("::2".parse().unwrap()));
        assert_eq!(claimed_len(&v6), Some(48));
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(destination(&[]), None);
        assert_eq!(source(&[0x45]), None);
        assert_eq!(claimed_len(&[0x10, 0, 0, 0]), None);
    }
}
