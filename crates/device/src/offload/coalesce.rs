//! Network → TUN: a GRO table for one batch of decrypted IP packets.
//!
//! Consecutive in-order TCP segments of a flow are merged into one
//! super-packet that the kernel accepts with a virtio header (GSO TCPV4/V6,
//! partial checksum), following the rules Linux GRO uses
//! (net/ipv4/tcp_offload.c `tcp_gro_receive`): only ACK segments (PSH allowed
//! on the last), identical TCP options and acknowledgement number, matching
//! IP headers, equal segment sizes with only the last one shorter, at most
//! 64 KiB in all. Everything else passes through with a plain header.
//!
//! With [`Coalescer::merge_udp`] (a TUN that took USO, kernel ≥ 6.2), UDP
//! datagrams of one flow are merged the same way into a GSO_UDP_L4
//! super-packet, as Linux UDP GRO does: equal payload sizes with only the last
//! one shorter, matching IP headers, checksums verified first (an IPv4
//! datagram without a checksum is never merged). The kernel cuts it back into
//! the same datagrams, so one TUN write carries dozens of small packets.
//!
//! Only appending is tried, and a packet is only ever compared with the
//! latest group of its flow, so no packet overtakes an earlier packet of its
//! own flow (an unmergeable segment, a pure ACK or a FIN ends the group).

use super::checksum;
use super::{
    addrs, be16, be32, put16, OffloadError, IPV6_HEADER_LEN, MAX_PACKET, PROTO_TCP, PROTO_UDP,
    TCP_ACK, TCP_CSUM_OFFSET, TCP_PSH,
};
use crate::vnet::{VirtioNetHdr, VNET_HDR_LEN};

/// Output buffers a [`Coalescer`] keeps by default: one per packet of a
/// full receive batch, so a batch never fills it.
pub const DEFAULT_CAPACITY: usize = 64;

/// Merges a batch of plain IP packets into fewer, larger ones for a
/// vnet-hdr TUN.
///
/// ```
/// use ferrotun_device::offload::Coalescer;
/// let mut gro = Coalescer::new(64);
/// # let batch: Vec<Vec<u8>> = Vec::new();
/// for packet in &batch {
///     gro.push(packet).expect("at most 64 packets per batch");
/// }
/// gro.drain(|with_vnet_hdr| {
///     // queue.write(with_vnet_hdr) ...
///     let _ = with_vnet_hdr;
/// });
/// ```
pub struct Coalescer {
    slots: Vec<Slot>,
    used: usize,
    /// Whether UDP datagrams are merged too (the TUN must have taken USO).
    udp: bool,
}

struct Slot {
    /// Room for the virtio header, then the packet (growing as segments are
    /// appended). Capacity is reserved once for the largest packet.
    buf: Vec<u8>,
    group: Option<Group>,
}

/// The 5-tuple.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FlowKey {
    v6: bool,
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    ports: [u8; 4],
}

/// A TCP packet, or a run of merged segments, held in a slot.
#[derive(Clone, Copy, Debug)]
struct Group {
    key: FlowKey,
    /// Whether more segments may still be appended.
    open: bool,
    /// Whether the head's checksums have been verified.
    verified: bool,
    ip_len: usize,
    tcp_len: usize,
    /// Payload of the head segment: the GSO size.
    mss: usize,
    /// Payload bytes held, all segments together.
    payload: usize,
    next_seq: u32,
    segments: usize,
    psh: bool,
}

/// What a TCP segment or UDP datagram looks like to the GRO rules (for UDP
/// `tcp_len` is the 8-byte UDP header, `seq` and `psh` are unused).
struct Segment {
    key: FlowKey,
    ip_len: usize,
    tcp_len: usize,
    seq: u32,
    payload: usize,
    psh: bool,
    /// Passes the per-packet rules (flags, no fragments or IPv4 options,
    /// consistent lengths, some payload); checksums are checked on merge.
    candidate: bool,
}

enum Class {
    /// Not TCP: passes through and affects no group.
    Other,
    /// TCP we cannot attribute to a flow (a fragment, or TCP behind IPv6
    /// extension headers): it might belong to any open group, so all close.
    Barrier,
    Segment(Segment),
}

impl Coalescer {
    /// A coalescer that holds up to `capacity` output packets between
    /// drains; reserves `capacity` buffers of 64 KiB up front.
    pub fn new(capacity: usize) -> Coalescer {
        let capacity = capacity.max(1);
        let slots = (0..capacity)
            .map(|_| Slot {
                buf: Vec::with_capacity(VNET_HDR_LEN + MAX_PACKET),
                group: None,
            })
            .collect();
        Coalescer {
            slots,
            used: 0,
            udp: false,
        }
    }

    /// Merges UDP datagrams too (GSO_UDP_L4): only for a TUN that took
    /// `TUN_F_USO4 | TUN_F_USO6`, which older kernels refuse.
    pub fn merge_udp(&mut self, on: bool) {
        self.udp = on;
    }

    /// How many output packets are held.
    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// The most output packets held between drains.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Adds one plain IP packet: merged into the latest group of its flow if
    /// the GRO rules allow, else held as a packet of its own.
    ///
    /// Errors: [`OffloadError::Full`] when the packet needs a new output
    /// buffer and all are in use (the packet was not taken: drain, then push
    /// it again), [`OffloadError::PacketTooLarge`] above 65535 bytes.
    pub fn push(&mut self, packet: &[u8]) -> Result<(), OffloadError> {
        if packet.len() > MAX_PACKET {
            return Err(OffloadError::PacketTooLarge { len: packet.len() });
        }
        let class = classify(packet, self.udp);
        if let Class::Segment(seg) = &class {
            if let Some(i) = self.latest_of(&seg.key) {
                if self.try_append(i, seg, packet) {
                    return Ok(());
                }
            }
        }
        if self.used == self.slots.len() {
            return Err(OffloadError::Full);
        }
        let group = match class {
            Class::Other => None,
            Class::Barrier => {
                for slot in &mut self.slots[..self.used] {
                    if let Some(g) = &mut slot.group {
                        g.open = false;
                    }
                }
                None
            }
            Class::Segment(t) => Some(Group {
                key: t.key,
                open: t.candidate && !t.psh,
                verified: false,
                ip_len: t.ip_len,
                tcp_len: t.tcp_len,
                mss: t.payload,
                payload: t.payload,
                next_seq: t.seq.wrapping_add(t.payload as u32),
                segments: 1,
                psh: t.psh,
            }),
        };
        let slot = &mut self.slots[self.used];
        slot.buf.clear();
        slot.buf.extend_from_slice(&[0; VNET_HDR_LEN]);
        slot.buf.extend_from_slice(packet);
        slot.group = group;
        self.used += 1;
        Ok(())
    }

    /// Hands every held packet, virtio header first, to `write` in order
    /// (packets of one flow keep their relative order) and empties the
    /// coalescer. Returns how many packets were handed over.
    pub fn drain<F: FnMut(&[u8])>(&mut self, mut write: F) -> usize {
        let n = self.used;
        for slot in &mut self.slots[..n] {
            finish(slot);
            write(&slot.buf);
            slot.buf.clear();
            slot.group = None;
        }
        self.used = 0;
        n
    }

    /// Drops every held packet.
    pub fn clear(&mut self) {
        for slot in &mut self.slots[..self.used] {
            slot.buf.clear();
            slot.group = None;
        }
        self.used = 0;
    }

    /// The slot of the most recent packet of flow `key`, if any.
    fn latest_of(&self, key: &FlowKey) -> Option<usize> {
        self.slots[..self.used]
            .iter()
            .rposition(|s| s.group.as_ref().is_some_and(|g| g.key == *key))
    }

    fn try_append(&mut self, i: usize, p: &Segment, packet: &[u8]) -> bool {
        let slot = &mut self.slots[i];
        let Some(g) = slot.group.as_mut() else {
            return false;
        };
        let head = &slot.buf[VNET_HDR_LEN..];
        if !(g.open && p.candidate && can_append(g, head, p, packet)) {
            return false;
        }
        // Merged segments get their checksum from the kernel (NEEDS_CSUM),
        // so a corrupt segment would come out valid: verify before merging.
        if !g.verified {
            if !checksums_valid(head, g.ip_len, &g.key) {
                g.open = false;
                return false;
            }
            g.verified = true;
        }
        if !checksums_valid(packet, p.ip_len, &p.key) {
            return false;
        }
        slot.buf.extend_from_slice(&packet[p.ip_len + p.tcp_len..]);
        g.payload += p.payload;
        g.next_seq = g.next_seq.wrapping_add(p.payload as u32);
        g.segments += 1;
        if p.psh {
            g.psh = true;
            g.open = false;
        }
        if p.payload < g.mss {
            // Only the last segment may be short.
            g.open = false;
        }
        true
    }
}

impl Default for Coalescer {
    fn default() -> Coalescer {
        Coalescer::new(DEFAULT_CAPACITY)
    }
}

const UDP_HEADER_LEN: usize = 8;
/// Most datagrams in one GSO_UDP_L4 packet: the kernel refuses more than its
/// `UDP_MAX_SEGMENTS` (128 now, 64 in older kernels), and a GRO batch of small
/// datagrams could otherwise reach a thousand.
pub(super) const MAX_UDP_SEGMENTS: usize = 64;
const UDP_LEN_OFFSET: usize = 4;
const UDP_CSUM_OFFSET: usize = 6;

/// IPv6 next-header values that are extension headers (RFC 8200 and the
/// IANA list), behind which a TCP header may hide.
fn is_ipv6_extension(next: u8) -> bool {
    matches!(
        next,
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

fn classify(p: &[u8], udp: bool) -> Class {
    let mergeable = |proto: u8| proto == PROTO_TCP || (udp && proto == PROTO_UDP);
    let Some(&first) = p.first() else {
        return Class::Other;
    };
    let (v6, ip_len, candidate_ip) = match first >> 4 {
        4 => {
            if p.len() < 20 || !mergeable(p[9]) {
                return Class::Other;
            }
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl {
                return Class::Other;
            }
            let more_fragments = p[6] & 0x20 != 0;
            let frag_offset = be16(p, 6) & 0x1fff;
            if more_fragments || frag_offset != 0 {
                return Class::Barrier;
            }
            let ok = ihl == 20 && usize::from(be16(p, 2)) == p.len();
            (false, ihl, ok)
        }
        6 => {
            if p.len() < IPV6_HEADER_LEN {
                return Class::Other;
            }
            if !mergeable(p[6]) {
                return if is_ipv6_extension(p[6]) {
                    Class::Barrier
                } else {
                    Class::Other
                };
            }
            let ok = usize::from(be16(p, 4)) == p.len() - IPV6_HEADER_LEN;
            (true, IPV6_HEADER_LEN, ok)
        }
        _ => return Class::Other,
    };
    let proto = if v6 { p[6] } else { p[9] };
    let min_l4 = if proto == PROTO_UDP {
        UDP_HEADER_LEN
    } else {
        20
    };
    if p.len() < ip_len + min_l4 {
        // Too short to name its flow; the kernel will drop it.
        return Class::Other;
    }
    let (src, dst) = addrs(p, v6);
    let mut key = FlowKey {
        v6,
        proto,
        src: [0; 16],
        dst: [0; 16],
        ports: [0; 4],
    };
    key.src[..src.len()].copy_from_slice(src);
    key.dst[..dst.len()].copy_from_slice(dst);
    key.ports.copy_from_slice(&p[ip_len..ip_len + 4]);
    if proto == PROTO_UDP {
        let well_formed = usize::from(be16(p, ip_len + 4)) == p.len() - ip_len;
        let payload = p.len() - ip_len - UDP_HEADER_LEN;
        // An IPv4 datagram may go without a checksum: then there is nothing to
        // verify before the kernel gives the merged one a fresh checksum.
        let has_checksum = v6 || be16(p, ip_len + UDP_CSUM_OFFSET) != 0;
        return Class::Segment(Segment {
            key,
            ip_len,
            tcp_len: UDP_HEADER_LEN,
            seq: 0,
            payload,
            psh: false,
            candidate: candidate_ip && well_formed && payload > 0 && has_checksum,
        });
    }
    let tcp_len = usize::from(p[ip_len + 12] >> 4) * 4;
    let flags = p[ip_len + 13];
    let well_formed = tcp_len >= 20 && p.len() >= ip_len + tcp_len;
    let payload = if well_formed {
        p.len() - ip_len - tcp_len
    } else {
        0
    };
    let psh = flags == TCP_ACK | TCP_PSH;
    Class::Segment(Segment {
        key,
        ip_len,
        tcp_len,
        seq: be32(p, ip_len + 4),
        payload,
        psh,
        candidate: candidate_ip && well_formed && payload > 0 && (flags == TCP_ACK || psh),
    })
}

/// The pairwise GRO rules between a group (whose head is `head`) and the
/// candidate segment `p` of the same flow.
fn can_append(g: &Group, head: &[u8], p: &Segment, packet: &[u8]) -> bool {
    if p.ip_len != g.ip_len || p.tcp_len != g.tcp_len {
        return false;
    }
    let same_ip = if g.key.v6 {
        // Version, traffic class and flow label; hop limit.
        head[..4] == packet[..4] && head[7] == packet[7]
    } else {
        // TOS (with ECN), DF and the reserved flag, TTL.
        head[1] == packet[1] && head[6] >> 5 == packet[6] >> 5 && head[8] == packet[8]
    };
    let t = g.ip_len;
    let fits = p.payload <= g.mss && g.ip_len + g.tcp_len + g.payload + p.payload <= MAX_PACKET;
    if g.key.proto == PROTO_UDP {
        return same_ip && fits && g.segments < MAX_UDP_SEGMENTS;
    }
    // Same acknowledgement number, same options (timestamps included).
    same_ip
        && head[t + 8..t + 12] == packet[t + 8..t + 12]
        && head[t + 20..t + g.tcp_len] == packet[t + 20..t + g.tcp_len]
        && p.seq == g.next_seq
        && fits
}

/// Whether the IPv4 header checksum (if any) and the TCP or UDP checksum hold.
fn checksums_valid(p: &[u8], ip_len: usize, key: &FlowKey) -> bool {
    let v6 = key.v6;
    if !v6 && checksum::sum(&p[..ip_len]) != 0xffff {
        return false;
    }
    let (src, dst) = addrs(p, v6);
    let ph = checksum::pseudo_header(src, dst, key.proto, p.len() - ip_len);
    checksum::add(ph, checksum::sum(&p[ip_len..])) == 0xffff
}

/// Writes the virtio header and, for a merged group, fixes up the head's IP
/// and TCP headers for the kernel to segment.
fn finish(slot: &mut Slot) {
    let (hdr_bytes, pkt) = slot.buf.split_at_mut(VNET_HDR_LEN);
    let hdr = match &slot.group {
        Some(g) if g.segments > 1 => {
            // A group's length is capped at MAX_PACKET in `can_append`, and
            // its headers are at most 120 bytes: the casts are exact.
            let total = pkt.len();
            if g.key.v6 {
                put16(pkt, 4, (total - IPV6_HEADER_LEN) as u16);
            } else {
                put16(pkt, 2, total as u16);
                put16(pkt, 10, checksum::ipv4_header(&pkt[..g.ip_len]));
            }
            let udp = g.key.proto == PROTO_UDP;
            if udp {
                put16(pkt, g.ip_len + UDP_LEN_OFFSET, (total - g.ip_len) as u16);
            } else if g.psh {
                pkt[g.ip_len + 13] |= TCP_PSH;
            }
            // CHECKSUM_PARTIAL convention: the field holds the folded,
            // uncomplemented pseudo-header sum over the whole L4 length;
            // the kernel adds the rest when it segments or delivers.
            let (src, dst) = addrs(pkt, g.key.v6);
            let ph = checksum::pseudo_header(src, dst, g.key.proto, total - g.ip_len);
            let csum_offset = if udp {
                UDP_CSUM_OFFSET
            } else {
                TCP_CSUM_OFFSET
            };
            put16(pkt, g.ip_len + csum_offset, ph);
            VirtioNetHdr {
                flags: VirtioNetHdr::F_NEEDS_CSUM,
                gso_type: match (udp, g.key.v6) {
                    (true, _) => VirtioNetHdr::GSO_UDP_L4,
                    (false, true) => VirtioNetHdr::GSO_TCPV6,
                    (false, false) => VirtioNetHdr::GSO_TCPV4,
                },
                hdr_len: (g.ip_len + g.tcp_len) as u16,
                gso_size: g.mss as u16,
                csum_start: g.ip_len as u16,
                csum_offset: csum_offset as u16,
            }
        }
        _ => VirtioNetHdr::NONE,
    };
    hdr.write(hdr_bytes);
}
