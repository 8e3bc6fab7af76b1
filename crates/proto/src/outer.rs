//! Recognising the tunnel's own encrypted datagrams when they come back in through the
//! TUN in a routing loop: a peer's endpoint reachable only through that peer's own allowed
//! IPs. Sealing them again would send each one round forever, a little larger every time,
//! and once fragmented, as two.
//!
//! What marks a datagram as ours: UDP, from our listen port, carrying a WireGuard message
//! whose length matches its type. The caller adds that the source address is one of this
//! host's, so WireGuard that another machine sends from the same port number through the
//! tunnel still passes; so does WireGuard inside WireGuard on another port. And one of our
//! own datagrams is a loop only when it is addressed to the endpoint of the very peer it
//! routes to: addressed to one peer's endpoint and routed to another is onion routing (a
//! peer reached through another one), which works as it does in the kernel.

use crate::interface::Interface;
use crate::wire::{
    COOKIE_REPLY_LEN, INITIATION_LEN, MIN_TRANSPORT_LEN, RESPONSE_LEN, TYPE_COOKIE_REPLY,
    TYPE_INITIATION, TYPE_RESPONSE, TYPE_TRANSPORT,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const PROTO_UDP: u8 = 17;
const UDP_HEADER: usize = 8;

/// Addresses of a WireGuard datagram read from the TUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireguardDatagram {
    pub src: IpAddr,
    pub dst: SocketAddr,
}

/// The addresses of `packet` if it is a UDP datagram from `port` carrying a WireGuard
/// message (a first fragment of one counts: its UDP header gives the length).
pub fn wireguard_from_port(packet: &[u8], port: u16) -> Option<WireguardDatagram> {
    let (src, dst, udp) = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let fragment_offset = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x1fff;
            if *packet.get(9)? != PROTO_UDP || fragment_offset != 0 || ihl < 20 {
                return None;
            }
            let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(src)),
                IpAddr::V4(Ipv4Addr::from(dst)),
                packet.get(ihl..)?,
            )
        }
        6 => {
            let mut next = *packet.get(6)?;
            let mut at = 40;
            // Our sockets add no extension header; the kernel adds a fragment header when
            // it has to split a datagram.
            if next == 44 {
                let offset = u16::from_be_bytes([*packet.get(at + 2)?, *packet.get(at + 3)?]) >> 3;
                if offset != 0 {
                    return None;
                }
                next = packet[at];
                at += 8;
            }
            if next != PROTO_UDP {
                return None;
            }
            let src: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            (
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
                packet.get(at..)?,
            )
        }
        _ => return None,
    };
    let src_port = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    if src_port != port {
        return None;
    }
    let dst_port = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let udp_len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    let message = udp.get(UDP_HEADER..)?;
    is_wireguard(message, udp_len.checked_sub(UDP_HEADER)?).then_some(WireguardDatagram {
        src,
        dst: SocketAddr::new(dst, dst_port),
    })
}

/// Which datagram a fragment belongs to: the fields the kernel reassembles by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
}

/// One piece of an IP datagram split to fit a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    pub key: FragmentKey,
    /// The piece at offset 0, with the UDP header if there is one.
    pub first: bool,
    /// A first piece of a UDP datagram carrying a WireGuard message, from any port.
    pub wireguard: bool,
}

/// What `packet` is a piece of, if it is a fragment. A whole packet, which nearly every
/// packet on the data path is, costs a read of two bytes.
#[inline]
pub fn fragment(packet: &[u8]) -> Option<Fragment> {
    let (key, offset, proto, rest) = match packet.first()? >> 4 {
        4 => {
            let flags_offset = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]);
            // More fragments, or an offset: a fragment.
            if flags_offset & 0x3fff == 0 {
                return None;
            }
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let key = FragmentKey {
                src: IpAddr::V4(Ipv4Addr::from(
                    <[u8; 4]>::try_from(packet.get(12..16)?).ok()?,
                )),
                dst: IpAddr::V4(Ipv4Addr::from(
                    <[u8; 4]>::try_from(packet.get(16..20)?).ok()?,
                )),
                id: u32::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?])),
            };
            (
                key,
                flags_offset & 0x1fff,
                *packet.get(9)?,
                packet.get(ihl.max(20)..)?,
            )
        }
        6 => {
            // A host's own datagrams carry the fragment header right after the fixed one.
            if *packet.get(6)? != 44 {
                return None;
            }
            let header = packet.get(40..48)?;
            let key = FragmentKey {
                src: IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(packet.get(8..24)?).ok()?,
                )),
                dst: IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(packet.get(24..40)?).ok()?,
                )),
                id: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
            };
            let offset = u16::from_be_bytes([header[2], header[3]]) >> 3;
            (key, offset, header[0], packet.get(48..)?)
        }
        _ => return None,
    };
    let first = offset == 0;
    let wireguard = first
        && proto == PROTO_UDP
        && rest.get(4..6).is_some_and(|len| {
            let udp_len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            udp_len
                .checked_sub(UDP_HEADER)
                .is_some_and(|l| is_wireguard(rest.get(UDP_HEADER..).unwrap_or_default(), l))
        });
    Some(Fragment {
        key,
        first,
        wireguard,
    })
}

/// Whether our own datagram `d`, back from the TUN as `packet`, routes to the peer whose
/// endpoint it is addressed to: sealing it again would send it to the same place again.
pub fn loops_to_its_own_peer(iface: &Interface, packet: &[u8], d: &WireguardDatagram) -> bool {
    let Some(peer) = iface.route(packet) else {
        return false;
    };
    let endpoint = peer.lock().endpoint();
    endpoint.is_some_and(|e| e.ip() == d.dst.ip() && e.port() == d.dst.port())
}

/// Whether `head` (the first bytes of a message of `len` bytes) starts like a WireGuard
/// message of exactly that length: a type, three zero bytes, and the type's size.
fn is_wireguard(head: &[u8], len: usize) -> bool {
    let Some(&[kind, 0, 0, 0]) = head.get(..4) else {
        return false;
    };
    match u32::from(kind) {
        TYPE_INITIATION => len == INITIATION_LEN,
        TYPE_RESPONSE => len == RESPONSE_LEN,
        TYPE_COOKIE_REPLY => len == COOKIE_REPLY_LEN,
        TYPE_TRANSPORT => len >= MIN_TRANSPORT_LEN,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PublicKey;

    /// An IPv4 UDP datagram from `src:sport` carrying `payload`.
    fn udp4(src: [u8; 4], sport: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
        p[8] = 64;
        p[9] = PROTO_UDP;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&[10, 9, 0, 2]);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&7u16.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// An IPv6 UDP datagram from `[fd00::1]:sport`, optionally behind a fragment header.
    fn udp6(sport: u16, payload: &[u8], fragment: Option<u16>) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = PROTO_UDP;
        p[8] = 0xfd;
        p[23] = 1;
        p[24] = 0xfd;
        p[39] = 2;
        if let Some(offset) = fragment {
            p[6] = 44;
            let mut frag = [0u8; 8];
            frag[0] = PROTO_UDP;
            frag[2..4].copy_from_slice(&((offset << 3) | 1).to_be_bytes());
            p.extend_from_slice(&frag);
        }
        let mut udp = [0u8; 8];
        udp[0..2].copy_from_slice(&sport.to_be_bytes());
        udp[2..4].copy_from_slice(&7u16.to_be_bytes());
        udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&udp);
        p.extend_from_slice(payload);
        let payload_len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&payload_len.to_be_bytes());
        p
    }

    fn message(kind: u8, len: usize) -> Vec<u8> {
        let mut m = vec![0xabu8; len];
        m[..4].copy_from_slice(&[kind, 0, 0, 0]);
        m
    }

    #[test]
    fn our_messages_are_recognised() {
        for (kind, len) in [(1, 148), (2, 92), (3, 64), (4, 32), (4, 1452)] {
            let p = udp4([10, 9, 0, 1], 51820, &message(kind, len));
            assert_eq!(
                wireguard_from_port(&p, 51820),
                Some(WireguardDatagram {
                    src: "10.9.0.1".parse().unwrap(),
                    dst: "10.9.0.2:7".parse().unwrap()
                }),
                "type {kind} len {len}"
            );
            let p = udp6(51820, &message(kind, len), None);
            assert_eq!(
                wireguard_from_port(&p, 51820),
                Some(WireguardDatagram {
                    src: "fd00::1".parse().unwrap(),
                    dst: "[fd00::2]:7".parse().unwrap()
                })
            );
        }
    }

    #[test]
    fn wireguard_on_another_port_passes() {
        // WireGuard inside WireGuard: another tunnel's datagrams ride this one.
        let p = udp4([10, 9, 0, 1], 51821, &message(4, 128));
        assert_eq!(wireguard_from_port(&p, 51820), None);
        let p = udp6(5, &message(1, 148), None);
        assert_eq!(wireguard_from_port(&p, 51820), None);
    }

    #[test]
    fn other_udp_from_our_port_passes() {
        // DNS-sized, wrong type, wrong length for its type, non-zero reserved bytes.
        for payload in [
            vec![0x12u8; 40],
            message(5, 64),
            message(1, 147),
            message(2, 148),
            message(3, 92),
            message(4, 31),
            vec![
                4, 1, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                9, 9, 9, 9,
            ],
        ] {
            let p = udp4([10, 9, 0, 1], 51820, &payload);
            assert_eq!(wireguard_from_port(&p, 51820), None, "{payload:?}");
        }
        let mut tcp = udp4([10, 9, 0, 1], 51820, &message(4, 64));
        tcp[9] = 6;
        assert_eq!(wireguard_from_port(&tcp, 51820), None);
    }

    #[test]
    fn a_loop_routes_to_the_peer_it_is_addressed_to_and_onion_routing_does_not() {
        let iface = Interface::new(Box::new(rand_core::OsRng));
        let c = iface.add_peer(PublicKey::from_bytes([3; 32])).unwrap();
        let b = iface.add_peer(PublicKey::from_bytes([2; 32])).unwrap();
        iface.add_allowed_ip(&c, "10.9.0.0".parse().unwrap(), 24);
        iface.add_allowed_ip(&b, "10.8.0.0".parse().unwrap(), 24);
        b.lock().set_endpoint("192.0.2.1:51820".parse().unwrap());
        let ours = udp4([10, 9, 0, 1], 51820, &message(4, 64));
        let d = wireguard_from_port(&ours, 51820).unwrap();
        assert_eq!(d.dst, "10.9.0.2:7".parse().unwrap());

        // c's endpoint is inside c's own allowed IPs: the datagram goes round.
        c.lock().set_endpoint("10.9.0.2:7".parse().unwrap());
        assert!(loops_to_its_own_peer(&iface, &ours, &d));
        // Another port of that address is not c's endpoint.
        c.lock().set_endpoint("10.9.0.2:8".parse().unwrap());
        assert!(!loops_to_its_own_peer(&iface, &ours, &d));

        // Onion routing: c's endpoint is reached through b, and that is no loop.
        let mut onion = udp4([10, 9, 0, 1], 51820, &message(4, 64));
        onion[16..20].copy_from_slice(&[10, 8, 0, 2]);
        let d = wireguard_from_port(&onion, 51820).unwrap();
        c.lock().set_endpoint(d.dst);
        assert!(!loops_to_its_own_peer(&iface, &onion, &d));

        // No peer for the destination: nothing to loop to.
        let mut nowhere = ours.clone();
        nowhere[16..20].copy_from_slice(&[10, 7, 0, 2]);
        let d = wireguard_from_port(&nowhere, 51820).unwrap();
        assert!(!loops_to_its_own_peer(&iface, &nowhere, &d));
    }

    #[test]
    fn fragments() {
        // The first fragment of a big datagram carries the UDP header and the full length.
        let mut big = message(4, 1600);
        big.truncate(1400);
        let mut p = udp4([10, 9, 0, 1], 51820, &big);
        p[24..26].copy_from_slice(&(8u16 + 1600).to_be_bytes());
        p[6] = 0x20; // more fragments
        assert!(wireguard_from_port(&p, 51820).is_some());
        // A later fragment has no UDP header: whatever its bytes, it is not recognised.
        p[6..8].copy_from_slice(&(0x2000u16 | 175).to_be_bytes());
        assert_eq!(wireguard_from_port(&p, 51820), None);

        let p = udp6(51820, &message(4, 96), Some(0));
        assert!(wireguard_from_port(&p, 51820).is_some());
        let p = udp6(51820, &message(4, 96), Some(181));
        assert_eq!(wireguard_from_port(&p, 51820), None);
    }

    #[test]
    fn short_or_odd_packets_are_none() {
        let p = udp4([10, 9, 0, 1], 51820, &message(4, 64));
        for cut in 0..28 {
            assert_eq!(wireguard_from_port(&p[..cut], 51820), None, "cut at {cut}");
        }
        assert_eq!(wireguard_from_port(&[0x10, 0, 0], 51820), None);
        let p = udp6(51820, &message(4, 64), None);
        for cut in 0..52 {
            assert_eq!(wireguard_from_port(&p[..cut], 51820), None, "cut at {cut}");
        }
    }

    #[test]
    fn fragments_are_told_apart_from_whole_packets() {
        let whole = udp4([10, 9, 0, 1], 5, &message(4, 128));
        assert_eq!(fragment(&whole), None);
        assert_eq!(fragment(&udp6(5, &message(4, 128), None)), None);

        // The first piece of a WireGuard datagram (more fragments, offset 0), id 0x1234.
        let mut first = udp4([10, 9, 0, 1], 5, &message(4, 1400));
        first.truncate(600);
        first[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        first[6] = 0x20;
        let f = fragment(&first).unwrap();
        assert!(f.first && f.wireguard);
        assert_eq!(f.key.id, 0x1234);
        assert_eq!(f.key.src, "10.9.0.1".parse::<IpAddr>().unwrap());
        // A later piece: offset 75 (600 bytes), no UDP header to look at.
        let mut rest = first.clone();
        rest[6..8].copy_from_slice(&75u16.to_be_bytes());
        let r = fragment(&rest).unwrap();
        assert!(!r.first && !r.wireguard);
        assert_eq!(r.key, f.key);
        // The first piece of a datagram that is not WireGuard.
        let mut other = udp4([10, 9, 0, 1], 5, &[0x17; 1400]);
        other.truncate(600);
        other[6] = 0x20;
        assert!(!fragment(&other).unwrap().wireguard);

        let first6 = udp6(5, &message(1, 148), Some(0));
        let f6 = fragment(&first6).unwrap();
        assert!(f6.first && f6.wireguard);
        let rest6 = udp6(5, &message(1, 148), Some(9));
        assert!(!fragment(&rest6).unwrap().first);
    }
}
