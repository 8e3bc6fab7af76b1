//! ICMP and ICMPv6 "destination unreachable" errors for packets no peer will carry, the
//! answer the kernel's WireGuard gives so that a sender fails at once instead of waiting
//! for a timeout: IPv4 type 3 code 1 (host unreachable), IPv6 type 1 code 3 (address
//! unreachable).
//!
//! The rules of RFC 1122 3.2.2 and RFC 4443 2.4 decide when an error may be sent at all:
//! never about an ICMP error, a fragment other than the first, a packet sent to a multicast
//! or broadcast address, or one whose source does not name a single host. The error quotes
//! as much of the packet as keeps it within 576 bytes (IPv4, RFC 1812 4.3.2.3) or 1280
//! bytes (IPv6, RFC 4443 2.4(c)).

use crate::time::Instant;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest IPv4 error, header and quote included.
pub const V4_ERROR_MAX: usize = 576;
/// Longest IPv6 error: the minimum IPv6 MTU.
pub const V6_ERROR_MAX: usize = 1280;
/// Room enough for either error.
pub const ERROR_MAX: usize = V6_ERROR_MAX;

const V4_HEADER: usize = 20;
const V6_HEADER: usize = 40;
const ICMP_HEADER: usize = 8;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;
/// IP precedence "internetwork control", which the kernel gives its ICMP errors.
const TOS_INTERNET_CONTROL: u8 = 0xc0;
const HOP_LIMIT: u8 = 64;

/// Why no error is sent for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a complete IPv4 or IPv6 header (or its ICMP type cannot be read).
    Malformed,
    /// A fragment other than the first: the first one already earned the error.
    NotFirstFragment,
    /// An ICMP error itself (or an ICMP type not known to be informational): answering
    /// errors with errors is how storms start.
    IcmpError,
    /// Sent to a multicast or broadcast address: every receiver would answer.
    GroupDestination,
    /// The source is not one host (unspecified, multicast, broadcast, loopback, reserved):
    /// there is no one to tell.
    BadSource,
    /// The error's source is of another family than the packet.
    FamilyMismatch,
    /// The output buffer cannot hold the error (give it [`ERROR_MAX`] bytes).
    NoRoom,
}

/// Writes into `out` the destination-unreachable error for `packet` (an IP packet that
/// no peer carries), from `src`, and returns its length; `out` needs up to [`ERROR_MAX`]
/// bytes. `src` is chosen by the caller (see the device's `unreachable.rs`).
pub fn unreachable(packet: &[u8], src: IpAddr, out: &mut [u8]) -> Result<usize, Refusal> {
    match (packet.first().map(|b| b >> 4), src) {
        (Some(4), IpAddr::V4(src)) => unreachable_v4(packet, src, out),
        (Some(6), IpAddr::V6(src)) => unreachable_v6(packet, src, out),
        (Some(4 | 6), _) => Err(Refusal::FamilyMismatch),
        _ => Err(Refusal::Malformed),
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// ICMP types that are queries or answers (RFC 792, 950): the only ones an error may
/// quote. Anything else, unknown types included, is treated as an error, as the kernel
/// does.
fn is_icmp_v4_informational(kind: u8) -> bool {
    matches!(kind, 0 | 8 | 13..=18)
}

/// The `N` bytes of an address at `at`; a packet too short for them is malformed.
fn octets<const N: usize>(packet: &[u8], at: usize) -> Result<[u8; N], Refusal> {
    packet
        .get(at..at + N)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or(Refusal::Malformed)
}

fn unreachable_v4(packet: &[u8], src: Ipv4Addr, out: &mut [u8]) -> Result<usize, Refusal> {
    let ihl = usize::from(packet.first().ok_or(Refusal::Malformed)? & 0x0f) * 4;
    let total = usize::from(be16(packet, 2).ok_or(Refusal::Malformed)?);
    if ihl < V4_HEADER || packet.len() < ihl || total < ihl {
        return Err(Refusal::Malformed);
    }
    // Bytes past the claimed length are not part of the packet.
    let original = &packet[..total.min(packet.len())];
    if be16(original, 6).ok_or(Refusal::Malformed)? & 0x1fff != 0 {
        return Err(Refusal::NotFirstFragment);
    }
    let orig_src = Ipv4Addr::from(octets::<4>(original, 12)?);
    let orig_dst = Ipv4Addr::from(octets::<4>(original, 16)?);
    if orig_dst.is_multicast() || orig_dst.is_broadcast() || orig_dst.is_unspecified() {
        return Err(Refusal::GroupDestination);
    }
    let reserved = orig_src.octets()[0] >= 240; // class E, broadcast included
    if orig_src.is_unspecified() || orig_src.is_multicast() || orig_src.is_loopback() || reserved {
        return Err(Refusal::BadSource);
    }
    if original[9] == PROTO_ICMP {
        let kind = *original.get(ihl).ok_or(Refusal::Malformed)?;
        if !is_icmp_v4_informational(kind) {
            return Err(Refusal::IcmpError);
        }
    }
    let quote = original.len().min(V4_ERROR_MAX - V4_HEADER - ICMP_HEADER);
    let len = V4_HEADER + ICMP_HEADER + quote;
    let out = out.get_mut(..len).ok_or(Refusal::NoRoom)?;
    out.fill(0);
    out[0] = 0x45;
    out[1] = TOS_INTERNET_CONTROL;
    out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    out[8] = HOP_LIMIT;
    out[9] = PROTO_ICMP;
    out[12..16].copy_from_slice(&src.octets());
    out[16..20].copy_from_slice(&orig_src.octets());
    let header_sum = checksum(&out[..V4_HEADER], 0);
    out[10..12].copy_from_slice(&header_sum.to_be_bytes());
    let icmp = &mut out[V4_HEADER..];
    icmp[0] = 3; // destination unreachable
    icmp[1] = 1; // host unreachable
    icmp[ICMP_HEADER..].copy_from_slice(&original[..quote]);
    let sum = checksum(icmp, 0);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(len)
}

/// Walks the IPv6 extension headers to the upper layer; refuses non-first fragments and
/// ICMPv6 errors.
fn check_v6_payload(original: &[u8]) -> Result<(), Refusal> {
    let mut next = original[6];
    let mut at = V6_HEADER;
    loop {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-byte units past the first 8.
            0 | 43 | 60 => {
                next = *original.get(at).ok_or(Refusal::Malformed)?;
                at += (usize::from(*original.get(at + 1).ok_or(Refusal::Malformed)?) + 1) * 8;
            }
            // Authentication header: length in 4-byte units past the first 8.
            51 => {
                next = *original.get(at).ok_or(Refusal::Malformed)?;
                at += (usize::from(*original.get(at + 1).ok_or(Refusal::Malformed)?) + 2) * 4;
            }
            44 => {
                let offset = be16(original, at + 2).ok_or(Refusal::Malformed)? >> 3;
                if offset != 0 {
                    return Err(Refusal::NotFirstFragment);
                }
                next = original[at];
                at += 8;
            }
            PROTO_ICMPV6 => {
                // Types below 128 are errors (RFC 4443 2.1).
                let kind = *original.get(at).ok_or(Refusal::Malformed)?;
                return if kind < 128 {
                    Err(Refusal::IcmpError)
                } else {
                    Ok(())
                };
            }
            _ => return Ok(()),
        }
    }
}

fn unreachable_v6(packet: &[u8], src: Ipv6Addr, out: &mut [u8]) -> Result<usize, Refusal> {
    if packet.len() < V6_HEADER {
        return Err(Refusal::Malformed);
    }
    let payload = usize::from(be16(packet, 4).ok_or(Refusal::Malformed)?);
    let original = &packet[..(V6_HEADER + payload).min(packet.len())];
    let orig_src = Ipv6Addr::from(octets::<16>(original, 8)?);
    let orig_dst = Ipv6Addr::from(octets::<16>(original, 24)?);
    if orig_dst.is_multicast() || orig_dst.is_unspecified() {
        return Err(Refusal::GroupDestination);
    }
    if orig_src.is_unspecified() || orig_src.is_multicast() || orig_src.is_loopback() {
        return Err(Refusal::BadSource);
    }
    check_v6_payload(original)?;
    let quote = original.len().min(V6_ERROR_MAX - V6_HEADER - ICMP_HEADER);
    let icmp_len = ICMP_HEADER + quote;
    let len = V6_HEADER + icmp_len;
    let out = out.get_mut(..len).ok_or(Refusal::NoRoom)?;
    out.fill(0);
    out[0] = 0x60;
    out[4..6].copy_from_slice(&(icmp_len as u16).to_be_bytes());
    out[6] = PROTO_ICMPV6;
    out[7] = HOP_LIMIT;
    out[8..24].copy_from_slice(&src.octets());
    out[24..40].copy_from_slice(&orig_src.octets());
    let pseudo = pseudo_header_sum(&src, &orig_src, icmp_len as u32, PROTO_ICMPV6);
    let icmp = &mut out[V6_HEADER..];
    icmp[0] = 1; // destination unreachable
    icmp[1] = 3; // address unreachable
    icmp[ICMP_HEADER..].copy_from_slice(&original[..quote]);
    let sum = checksum(icmp, pseudo);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(len)
}

/// The one's-complement sum of the IPv6 pseudo-header (RFC 8200 8.1), not yet folded.
pub fn pseudo_header_sum(src: &Ipv6Addr, dst: &Ipv6Addr, len: u32, next: u8) -> u32 {
    let mut sum = 0u32;
    for chunk in src.octets().chunks(2).chain(dst.octets().chunks(2)) {
        sum += u32::from(u16::from_be_bytes([chunk[0], chunk[1]]));
    }
    sum + (len >> 16) + (len & 0xffff) + u32::from(next)
}

/// The Internet checksum (RFC 1071) of `data`, starting from a partial sum `initial`.
/// Summing a message that carries its correct checksum gives 0.
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = u64::from(initial);
    let mut pairs = data.chunks_exact(2);
    for pair in &mut pairs {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A token bucket bounding how many errors leave per second, like the kernel's ICMP rate
/// limit: up to `burst` at once, then `per_second` on average.
#[derive(Debug)]
pub struct TokenBucket {
    /// Nanoseconds of credit banked, at most `burst` tokens' worth.
    credit: u64,
    cost: u64,
    cap: u64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket. `per_second` and `burst` are at least 1.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let cost = 1_000_000_000 / u64::from(per_second.max(1));
        let cap = cost * u64::from(burst.max(1));
        TokenBucket {
            credit: cap,
            cost,
            cap,
            last: None,
        }
    }

    /// Takes a token if there is one at `now`.
    pub fn allow(&mut self, now: Instant) -> bool {
        let last = self.last.map_or(now, |l| l.max(now));
        if let Some(before) = self.last {
            let gained = now.as_nanos().saturating_sub(before.as_nanos());
            self.credit = self.credit.saturating_add(gained).min(self.cap);
        }
        // Callers on several threads may hand in slightly older instants: time never
        // runs back for the bucket.
        self.last = Some(last);
        if self.credit >= self.cost {
            self.credit -= self.cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SRC4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);

    /// An IPv4 packet from 10.1.0.5 to 10.1.0.99 with `proto` and `payload`.
    fn v4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&[10, 1, 0, 5]);
        p[16..20].copy_from_slice(&[10, 1, 0, 99]);
        let sum = checksum(&p, 0);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// An IPv6 packet from fd00::5 to fd00::99: `next` is the next-header value, `rest` the
    /// bytes that follow the fixed header.
    fn v6(next: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(rest.len() as u16).to_be_bytes());
        p[6] = next;
        p[7] = 64;
        p[8] = 0xfd;
        p[23] = 5;
        p[24] = 0xfd;
        p[39] = 0x99;
        p.extend_from_slice(rest);
        p
    }

    fn echo(kind: u8, len: usize) -> Vec<u8> {
        let mut m: Vec<u8> = (0..len).map(|i| i as u8).collect();
        m[0] = kind;
        m[1] = 0;
        m
    }

    fn build(packet: &[u8], src: IpAddr) -> Result<Vec<u8>, Refusal> {
        let mut out = [0u8; ERROR_MAX];
        let len = unreachable(packet, src, &mut out)?;
        Ok(out[..len].to_vec())
    }

    #[test]
    fn checksum_matches_a_known_header() {
        // The classic example header (RFC 1071 style): its checksum field is b861.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header, 0), 0xb861);
        // Odd lengths pad with a zero byte.
        assert_eq!(checksum(&[0x01], 0), !0x0100);
    }

    #[test]
    fn v4_error_is_well_formed() {
        let original = v4(17, &[0x30, 0x39, 0x00, 0x07, 0x00, 0x0c, 0, 0, 1, 2, 3, 4]);
        let e = build(&original, IpAddr::V4(SRC4)).unwrap();
        assert_eq!(e.len(), 20 + 8 + original.len());
        assert_eq!(e[0], 0x45);
        assert_eq!(u16::from_be_bytes([e[2], e[3]]) as usize, e.len());
        assert_eq!(e[9], 1, "protocol ICMP");
        assert_eq!(e[8], 64, "TTL");
        assert_eq!(checksum(&e[..20], 0), 0, "IPv4 header checksum");
        assert_eq!(&e[12..16], &SRC4.octets());
        assert_eq!(&e[16..20], &[10, 1, 0, 5], "to the original sender");
        assert_eq!(
            (e[20], e[21]),
            (3, 1),
            "destination unreachable, host unreachable"
        );
        assert_eq!(checksum(&e[20..], 0), 0, "ICMP checksum");
        assert_eq!(&e[24..28], &[0, 0, 0, 0], "unused");
        assert_eq!(&e[28..], &original[..], "the whole original is quoted");
    }

    #[test]
    fn v4_quote_stops_at_576_bytes_and_at_the_claimed_length() {
        let original = v4(6, &[7u8; 1400]);
        let e = build(&original, IpAddr::V4(SRC4)).unwrap();
        assert_eq!(e.len(), V4_ERROR_MAX);
        assert_eq!(&e[28..], &original[..V4_ERROR_MAX - 28]);
        assert_eq!(checksum(&e[20..], 0), 0);
        assert_eq!(checksum(&e[..20], 0), 0);

        let mut padded = v4(17, &[1u8; 12]);
        let real = padded.len();
        padded.extend_from_slice(&[0xee; 9]);
        let e = build(&padded, IpAddr::V4(SRC4)).unwrap();
        assert_eq!(
            &e[28..],
            &padded[..real],
            "bytes past the total length are not quoted"
        );
    }

    #[test]
    fn v4_answers_queries_but_never_errors() {
        for kind in [0u8, 8, 13, 15, 17] {
            assert!(
                build(&v4(1, &echo(kind, 16)), IpAddr::V4(SRC4)).is_ok(),
                "type {kind}"
            );
        }
        for kind in [3u8, 4, 5, 11, 12, 42, 255] {
            assert_eq!(
                build(&v4(1, &echo(kind, 16)), IpAddr::V4(SRC4)),
                Err(Refusal::IcmpError),
                "type {kind}"
            );
        }
        // An ICMP packet too short to show its type is not answered either.
        assert_eq!(
            build(&v4(1, &[]), IpAddr::V4(SRC4)),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn v4_refusals() {
        let base = v4(17, &[0u8; 16]);
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut p = base.clone();
            f(&mut p);
            build(&p, IpAddr::V4(SRC4))
        };
        assert_eq!(
            with(&|p| p[6..8].copy_from_slice(&185u16.to_be_bytes())),
            Err(Refusal::NotFirstFragment)
        );
        // A first fragment (more-fragments set, offset 0) is answered.
        assert!(with(&|p| p[6] = 0x20).is_ok());
        for dst in [
            [224, 0, 0, 1],
            [239, 1, 2, 3],
            [255, 255, 255, 255],
            [0, 0, 0, 0],
        ] {
            assert_eq!(
                with(&|p| p[16..20].copy_from_slice(&dst)),
                Err(Refusal::GroupDestination),
                "{dst:?}"
            );
        }
        for src in [
            [0, 0, 0, 0],
            [224, 0, 0, 5],
            [255, 255, 255, 255],
            [127, 0, 0, 1],
            [240, 0, 0, 1],
        ] {
            assert_eq!(
                with(&|p| p[12..16].copy_from_slice(&src)),
                Err(Refusal::BadSource),
                "{src:?}"
            );
        }
        assert_eq!(
            with(&|p| p[0] = 0x44),
            Err(Refusal::Malformed),
            "IHL below 5"
        );
        assert_eq!(
            with(&|p| p[2..4].copy_from_slice(&10u16.to_be_bytes())),
            Err(Refusal::Malformed),
            "total length below the header"
        );
        assert_eq!(
            build(&base[..19], IpAddr::V4(SRC4)),
            Err(Refusal::Malformed)
        );
        assert_eq!(build(&base, IpAddr::V6(SRC6)), Err(Refusal::FamilyMismatch));
        assert_eq!(build(&[], IpAddr::V4(SRC4)), Err(Refusal::Malformed));
        assert_eq!(
            build(&[0x50; 40], IpAddr::V4(SRC4)),
            Err(Refusal::Malformed)
        );
        // Too small an output buffer is refused, not a panic.
        let mut small = [0u8; 30];
        assert_eq!(
            unreachable(&base, IpAddr::V4(SRC4), &mut small),
            Err(Refusal::NoRoom)
        );
    }

    /// Verifies an ICMPv6 checksum over the pseudo-header.
    fn v6_checksum_ok(e: &[u8]) -> bool {
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&e[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&e[24..40]).unwrap());
        let pseudo = pseudo_header_sum(&src, &dst, (e.len() - 40) as u32, 58);
        checksum(&e[40..], pseudo) == 0
    }

    #[test]
    fn v6_error_is_well_formed() {
        let original = v6(58, &echo(128, 64));
        let e = build(&original, IpAddr::V6(SRC6)).unwrap();
        assert_eq!(e.len(), 40 + 8 + original.len());
        assert_eq!(e[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([e[4], e[5]]) as usize, e.len() - 40);
        assert_eq!(e[6], 58, "next header ICMPv6");
        assert_eq!(&e[8..24], &SRC6.octets());
        assert_eq!(&e[24..40], &original[8..24], "to the original sender");
        assert_eq!(
            (e[40], e[41]),
            (1, 3),
            "destination unreachable, address unreachable"
        );
        assert!(v6_checksum_ok(&e));
        assert_eq!(&e[48..], &original[..]);
        // A wrong source in the pseudo-header would not verify: the checksum covers it.
        let mut moved = e.clone();
        moved[23] ^= 1;
        assert!(!v6_checksum_ok(&moved));
    }

    #[test]
    fn v6_quote_stops_at_1280_bytes() {
        let original = v6(17, &[9u8; 1400]);
        let e = build(&original, IpAddr::V6(SRC6)).unwrap();
        assert_eq!(e.len(), V6_ERROR_MAX);
        assert_eq!(&e[48..], &original[..V6_ERROR_MAX - 48]);
        assert!(v6_checksum_ok(&e));
    }

    #[test]
    fn v6_refusals() {
        let src = IpAddr::V6(SRC6);
        for kind in [1u8, 2, 3, 4, 127] {
            assert_eq!(
                build(&v6(58, &echo(kind, 16)), src),
                Err(Refusal::IcmpError),
                "type {kind}"
            );
        }
        for kind in [128u8, 129, 200] {
            assert!(build(&v6(58, &echo(kind, 16)), src).is_ok(), "type {kind}");
        }
        // An ICMPv6 error behind a hop-by-hop header is still an error.
        let mut hop = vec![58u8, 0, 1, 4, 0, 0, 0, 0];
        hop.extend_from_slice(&echo(1, 16));
        assert_eq!(build(&v6(0, &hop), src), Err(Refusal::IcmpError));
        // Fragments: the first is answered, the others are not.
        let frag = |offset: u16| {
            let mut f = vec![17u8, 0];
            f.extend_from_slice(&((offset << 3) | 1).to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 7]);
            f.extend_from_slice(&[0u8; 16]);
            v6(44, &f)
        };
        assert!(build(&frag(0), src).is_ok());
        assert_eq!(build(&frag(100), src), Err(Refusal::NotFirstFragment));
        // Multicast and unspecified destinations; sources that are no single host.
        let mut p = v6(17, &[0u8; 16]);
        p[24] = 0xff;
        assert_eq!(build(&p, src), Err(Refusal::GroupDestination));
        let mut p = v6(17, &[0u8; 16]);
        p[8] = 0;
        p[23] = 0;
        assert_eq!(build(&p, src), Err(Refusal::BadSource), "unspecified");
        p[8] = 0xff;
        assert_eq!(build(&p, src), Err(Refusal::BadSource), "multicast");
        p[8] = 0;
        p[23] = 1;
        assert_eq!(build(&p, src), Err(Refusal::BadSource), "loopback");
        // Truncated headers.
        assert_eq!(build(&v6(17, &[])[..39], src), Err(Refusal::Malformed));
        assert_eq!(build(&v6(0, &[58]), src), Err(Refusal::Malformed));
        assert_eq!(build(&v6(58, &[]), src), Err(Refusal::Malformed));
        assert_eq!(
            build(&v6(17, &[0u8; 8]), IpAddr::V4(SRC4)),
            Err(Refusal::FamilyMismatch)
        );
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let mut b = TokenBucket::new(10, 5);
        let t0 = Instant::ZERO + Duration::from_secs(100);
        let burst = (0..50).filter(|_| b.allow(t0)).count();
        assert_eq!(burst, 5);
        // 100 ms buys one more token at 10 per second.
        assert!(b.allow(t0 + Duration::from_millis(100)));
        assert!(!b.allow(t0 + Duration::from_millis(100)));
        // One second of flooding at 1000 tries per second: at most 10 more.
        let start = t0 + Duration::from_millis(100);
        let passed = (1..=1000)
            .filter(|i| b.allow(start + Duration::from_millis(*i)))
            .count();
        assert!((9..=10).contains(&passed), "{passed}");
        // A long quiet time refills to the burst, no further.
        let later = start + Duration::from_secs(3600);
        assert_eq!((0..50).filter(|_| b.allow(later)).count(), 5);
    }

    #[test]
    fn bucket_time_never_runs_back() {
        let mut b = TokenBucket::new(1, 1);
        let t = Instant::ZERO + Duration::from_secs(10);
        assert!(b.allow(t));
        // An older instant (another thread's) gains nothing, and does not rewind the clock.
        assert!(!b.allow(t - Duration::from_millis(900)));
        assert!(!b.allow(t + Duration::from_millis(500)));
        assert!(b.allow(t + Duration::from_millis(1000)));
    }
}
