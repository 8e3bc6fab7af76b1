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
#[path = "icmp_tests.rs"]
mod tests;
