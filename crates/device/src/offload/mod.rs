//! Segmentation and coalescing for a TUN opened with offloads
//! (`Tun::create_with_offload`): every packet on such a TUN carries a
//! [`VirtioNetHdr`](crate::VirtioNetHdr) and may stand for many wire packets.
//!
//! - [`split`] (TUN → network): turns one read — a TCP/UDP super-packet or a
//!   packet with a partial checksum — into the complete IP packets it stands
//!   for, each ready to be encrypted.
//! - [`Coalescer`] (network → TUN): merges consecutive TCP segments of a flow
//!   from a batch of decrypted packets into super-packets, so the kernel's TCP
//!   stack sees a few large packets instead of many small ones.
//!
//! Both are pure computations over byte buffers: no syscalls, no allocation
//! per packet. All input is treated as untrusted; malformed input is an
//! [`OffloadError`], never a panic.
//!
//! Use them only when `Tun::vnet_hdr()` is true. In a worker:
//!
//! ```text
//! read:  n = queue.read(&mut big)            // big: VNET_HDR_LEN + 65535
//!        k = split(&big[..n], &mut bufs, room, &mut lens)?      // then seal each
//!        (TooManySegments: segment_count + split_from in rounds)
//! write: for p in decrypted batch { gro.push(p) }   // Full: drain, push again
//!        gro.drain(|b| { queue.write(b); })         // b starts with the virtio header
//! ```

pub mod checksum;
mod coalesce;
mod refused;
mod split;

pub use coalesce::{Coalescer, DEFAULT_CAPACITY};
pub use refused::{write_or_split, TunWrite};
pub use split::{segment_count, split, split_from};

/// Largest IP packet a TUN read or write carries (the IPv4 total length and
/// the IPv6 payload length are 16-bit fields; we keep both under 64 KiB).
pub const MAX_PACKET: usize = 65535;

/// Why a packet could not be split or coalesced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("input of {len} bytes is shorter than the 10-byte virtio-net header")]
    NoVnetHeader { len: usize },
    #[error("packet of {len} bytes is too short for its {what} (need {need})")]
    Truncated {
        what: &'static str,
        need: usize,
        len: usize,
    },
    #[error("IP version {0} is neither 4 nor 6")]
    BadIpVersion(u8),
    #[error("GSO type {gso_type} does not fit an IPv{version} packet")]
    GsoVersionMismatch { gso_type: u8, version: u8 },
    #[error("GSO type {0} is not supported")]
    UnsupportedGso(u8),
    #[error("GSO packet with gso_size 0")]
    ZeroGsoSize,
    #[error("hdr_len {hdr_len} exceeds the packet length {len}")]
    BadHdrLen { hdr_len: u16, len: usize },
    #[error("csum_start {csum_start} + csum_offset {csum_offset} is out of range for a {len}-byte packet")]
    BadChecksumPosition {
        csum_start: u16,
        csum_offset: u16,
        len: usize,
    },
    #[error("csum_start {csum_start} does not match the IP header length {ip_header_len}")]
    BadChecksumStart {
        csum_start: u16,
        ip_header_len: usize,
    },
    #[error("GSO type {gso_type} needs IP protocol {expected}, packet has {found}")]
    WrongProtocol {
        gso_type: u8,
        expected: u8,
        found: u8,
    },
    #[error("TCP header length {0} is outside 20..=60")]
    BadTcpHeaderLen(usize),
    #[error("IPv4 header length {0} is outside 20..=60")]
    BadIpv4HeaderLen(usize),
    #[error("a segment of {len} bytes exceeds the 65535-byte IP limit")]
    SegmentTooLarge { len: usize },
    #[error("super-packet needs {needed} output buffers, {available} given")]
    TooManySegments { needed: usize, available: usize },
    #[error("output buffer of {available} bytes cannot hold {needed} (offset included)")]
    OutputTooSmall { needed: usize, available: usize },
    #[error("packet of {len} bytes exceeds 65535")]
    PacketTooLarge { len: usize },
    #[error("coalescer is full; drain it first")]
    Full,
}

/// IP protocol numbers the offloads deal with.
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;

pub(crate) const IPV6_HEADER_LEN: usize = 40;
pub(crate) const UDP_HEADER_LEN: usize = 8;
pub(crate) const TCP_CSUM_OFFSET: usize = 16;
pub(crate) const UDP_CSUM_OFFSET: usize = 6;

/// TCP flag bits (byte 13 of the header).
pub(crate) const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_PSH: u8 = 0x08;
pub(crate) const TCP_ACK: u8 = 0x10;
pub(crate) const TCP_CWR: u8 = 0x80;

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Source and destination address of an IPv4 (`v6 == false`) or IPv6 header
/// whose fixed part is known to be present.
#[inline]
pub(crate) fn addrs(pkt: &[u8], v6: bool) -> (&[u8], &[u8]) {
    if v6 {
        (&pkt[8..24], &pkt[24..40])
    } else {
        (&pkt[12..16], &pkt[16..20])
    }
}
