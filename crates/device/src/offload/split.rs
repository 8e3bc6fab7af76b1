//! TUN → network: cut what one read from a vnet-hdr TUN returned into the
//! complete IP packets it stands for.

use super::checksum;
use super::{
    addrs, be16, be32, put16, put32, OffloadError, IPV6_HEADER_LEN, MAX_PACKET, PROTO_TCP,
    PROTO_UDP, TCP_CSUM_OFFSET, TCP_CWR, TCP_FIN, TCP_PSH, UDP_CSUM_OFFSET, UDP_HEADER_LEN,
};
use crate::vnet::{VirtioNetHdr, VNET_HDR_LEN};

/// What a read holds, worked out from its virtio header and IP/L4 headers.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// One packet; if `csum` is set, the L4 checksum is partial: the sum of
    /// `pkt[start..]` (the field holding the pseudo-header sum) completes it.
    Plain { csum: Option<(usize, usize)> },
    /// A TCP or UDP super-packet.
    Segment(Gso),
}

#[derive(Debug, Clone, Copy)]
struct Gso {
    tcp: bool,
    v6: bool,
    /// IPv4 header length (the IPv6 fixed header is 40).
    ip_len: usize,
    /// Offset of the TCP/UDP header (after any IPv6 extension headers).
    l4: usize,
    /// Length of all headers copied into every segment.
    hl: usize,
    /// Payload bytes per segment (the last may be shorter).
    mss: usize,
    count: usize,
}

impl Plan {
    fn count(&self) -> usize {
        match self {
            Plan::Plain { .. } => 1,
            Plan::Segment(g) => g.count,
        }
    }
}

fn need(what: &'static str, need: usize, len: usize) -> Result<(), OffloadError> {
    if len < need {
        Err(OffloadError::Truncated { what, need, len })
    } else {
        Ok(())
    }
}

fn plan(hdr: &VirtioNetHdr, pkt: &[u8]) -> Result<Plan, OffloadError> {
    let len = pkt.len();
    need("IP header", 1, len)?;
    // The field must lie inside the packet whatever the GSO type.
    let csum = if hdr.needs_csum() {
        let start = usize::from(hdr.csum_start);
        let field = start + usize::from(hdr.csum_offset);
        if field + 2 > len {
            return Err(OffloadError::BadChecksumPosition {
                csum_start: hdr.csum_start,
                csum_offset: hdr.csum_offset,
                len,
            });
        }
        Some((start, field))
    } else {
        None
    };
    let kind = hdr.gso_kind();
    let (tcp, want_v6) = match kind {
        VirtioNetHdr::GSO_NONE => return Ok(Plan::Plain { csum }),
        VirtioNetHdr::GSO_TCPV4 => (true, Some(false)),
        VirtioNetHdr::GSO_TCPV6 => (true, Some(true)),
        VirtioNetHdr::GSO_UDP_L4 => (false, None),
        _ => return Err(OffloadError::UnsupportedGso(hdr.gso_type)),
    };
    let v6 = match pkt[0] >> 4 {
        4 => false,
        6 => true,
        v => return Err(OffloadError::BadIpVersion(v)),
    };
    if want_v6.is_some_and(|w| w != v6) {
        return Err(OffloadError::GsoVersionMismatch {
            gso_type: hdr.gso_type,
            version: if v6 { 6 } else { 4 },
        });
    }
    let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
    let (ip_len, next) = if v6 {
        need("IPv6 header", IPV6_HEADER_LEN, len)?;
        (IPV6_HEADER_LEN, pkt[6])
    } else {
        need("IPv4 header", 20, len)?;
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        if ihl < 20 {
            return Err(OffloadError::BadIpv4HeaderLen(ihl));
        }
        need("IPv4 header", ihl, len)?;
        (ihl, pkt[9])
    };
    // The kernel points csum_start at the L4 header; it is the only way past
    // IPv6 extension headers without walking them.
    let l4 = match csum {
        Some((start, field)) => {
            let bad_start = if v6 {
                start < IPV6_HEADER_LEN
            } else {
                start != ip_len
            };
            if bad_start {
                return Err(OffloadError::BadChecksumStart {
                    csum_start: hdr.csum_start,
                    ip_header_len: ip_len,
                });
            }
            let want = if tcp {
                TCP_CSUM_OFFSET
            } else {
                UDP_CSUM_OFFSET
            };
            if field - start != want {
                return Err(OffloadError::BadChecksumPosition {
                    csum_start: hdr.csum_start,
                    csum_offset: hdr.csum_offset,
                    len,
                });
            }
            start
        }
        None => ip_len,
    };
    if l4 == ip_len && next != proto {
        return Err(OffloadError::WrongProtocol {
            gso_type: hdr.gso_type,
            expected: proto,
            found: next,
        });
    }
    let l4_hl = if tcp {
        need("TCP header", l4 + 20, len)?;
        let doff = usize::from(pkt[l4 + 12] >> 4) * 4;
        if doff < 20 {
            return Err(OffloadError::BadTcpHeaderLen(doff));
        }
        need("TCP header", l4 + doff, len)?;
        doff
    } else {
        need("UDP header", l4 + UDP_HEADER_LEN, len)?;
        UDP_HEADER_LEN
    };
    let hl = l4 + l4_hl;
    // hdr_len is only a hint: on the forwarding path the kernel has been seen
    // to report the whole first segment, so the parsed headers decide. A
    // value past the end is still nonsense.
    if usize::from(hdr.hdr_len) > len {
        return Err(OffloadError::BadHdrLen {
            hdr_len: hdr.hdr_len,
            len,
        });
    }
    if hdr.gso_size == 0 {
        return Err(OffloadError::ZeroGsoSize);
    }
    let mss = usize::from(hdr.gso_size);
    let payload = len - hl;
    let largest = hl + mss.min(payload);
    if largest > MAX_PACKET {
        return Err(OffloadError::SegmentTooLarge { len: largest });
    }
    Ok(Plan::Segment(Gso {
        tcp,
        v6,
        ip_len,
        l4,
        hl,
        mss,
        count: payload.div_ceil(mss).max(1),
    }))
}

fn parse(input: &[u8]) -> Result<(&[u8], Plan), OffloadError> {
    let hdr = VirtioNetHdr::parse(input).ok_or(OffloadError::NoVnetHeader { len: input.len() })?;
    let pkt = &input[VNET_HDR_LEN..];
    Ok((pkt, plan(&hdr, pkt)?))
}

/// How many IP packets [`split`] will make of `input` (a read from a
/// vnet-hdr TUN, header included), or why it cannot.
pub fn segment_count(input: &[u8]) -> Result<usize, OffloadError> {
    Ok(parse(input)?.1.count())
}

/// Splits one read from a vnet-hdr TUN (`input`: the 10-byte virtio header
/// followed by the packet) into complete IP packets with correct checksums.
///
/// Packet `i` is written to `outs[i][out_offset..out_offset + lens[i]]`;
/// returns the number of packets. Fails without writing anything if the input
/// is malformed, if `outs` or `lens` has fewer than [`segment_count`] entries
/// ([`OffloadError::TooManySegments`]), or if a buffer is too small.
pub fn split<B: AsMut<[u8]>>(
    input: &[u8],
    outs: &mut [B],
    out_offset: usize,
    lens: &mut [usize],
) -> Result<usize, OffloadError> {
    let (pkt, plan) = parse(input)?;
    let available = outs.len().min(lens.len());
    if plan.count() > available {
        return Err(OffloadError::TooManySegments {
            needed: plan.count(),
            available,
        });
    }
    write_segments(pkt, &plan, 0, outs, out_offset, lens)
}

/// Like [`split`], but writes only as many packets as `outs` and `lens`
/// hold, starting with packet number `first`; returns how many it wrote
/// (0 once `first` reaches [`segment_count`]). For super-packets with more
/// segments than the caller has buffers: call again with `first` advanced.
pub fn split_from<B: AsMut<[u8]>>(
    input: &[u8],
    first: usize,
    outs: &mut [B],
    out_offset: usize,
    lens: &mut [usize],
) -> Result<usize, OffloadError> {
    let (pkt, plan) = parse(input)?;
    write_segments(pkt, &plan, first, outs, out_offset, lens)
}

fn segment_len(pkt: &[u8], g: &Gso, i: usize) -> usize {
    let start = g.hl + i * g.mss;
    g.hl + (pkt.len() - start).min(g.mss)
}

fn write_segments<B: AsMut<[u8]>>(
    pkt: &[u8],
    plan: &Plan,
    first: usize,
    outs: &mut [B],
    out_offset: usize,
    lens: &mut [usize],
) -> Result<usize, OffloadError> {
    let n = plan
        .count()
        .saturating_sub(first)
        .min(outs.len())
        .min(lens.len());
    // Check every buffer before touching any, so an error leaves no
    // half-written batch behind.
    for (k, out) in outs[..n].iter_mut().enumerate() {
        let len = match plan {
            Plan::Plain { .. } => pkt.len(),
            Plan::Segment(g) => segment_len(pkt, g, first + k),
        };
        let available = out.as_mut().len();
        if available < out_offset.saturating_add(len) {
            return Err(OffloadError::OutputTooSmall {
                needed: out_offset.saturating_add(len),
                available,
            });
        }
    }
    for (k, (out, len)) in outs[..n].iter_mut().zip(lens.iter_mut()).enumerate() {
        let out = &mut out.as_mut()[out_offset..];
        *len = match plan {
            Plan::Plain { csum } => write_plain(pkt, *csum, out),
            Plan::Segment(g) => write_segment(pkt, g, first + k, out),
        };
    }
    Ok(n)
}

fn write_plain(pkt: &[u8], csum: Option<(usize, usize)>, out: &mut [u8]) -> usize {
    let out = &mut out[..pkt.len()];
    out.copy_from_slice(pkt);
    if let Some((start, field)) = csum {
        // The field already holds the pseudo-header sum, so summing from
        // csum_start over the field completes the checksum. A result of zero
        // goes out as 0xffff, as the kernel does: UDP reads zero as "none".
        let c = checksum::finish(checksum::sum(&out[start..]));
        put16(out, field, if c == 0 { 0xffff } else { c });
    }
    pkt.len()
}

fn write_segment(pkt: &[u8], g: &Gso, i: usize, out: &mut [u8]) -> usize {
    let start = g.hl + i * g.mss;
    let end = (start + g.mss).min(pkt.len());
    let seg_len = g.hl + (end - start);
    let out = &mut out[..seg_len];
    out[..g.hl].copy_from_slice(&pkt[..g.hl]);
    out[g.hl..].copy_from_slice(&pkt[start..end]);

    // Every segment is at most MAX_PACKET bytes (checked in `plan`) and
    // `i * mss` is below the super-packet's length: the casts are exact.
    if g.v6 {
        put16(out, 4, (seg_len - IPV6_HEADER_LEN) as u16);
    } else {
        put16(out, 2, seg_len as u16);
        // Like the kernel's TSO: consecutive IDs from the super-packet's.
        put16(out, 4, be16(pkt, 4).wrapping_add(i as u16));
        put16(out, 10, checksum::ipv4_header(&out[..g.ip_len]));
    }

    let l4 = g.l4;
    let l4_len = seg_len - l4;
    let field = if g.tcp {
        put32(
            out,
            l4 + 4,
            be32(pkt, l4 + 4).wrapping_add((i * g.mss) as u32),
        );
        let mut flags = out[l4 + 13];
        if i + 1 != g.count {
            // FIN and PSH belong to the end of the data, CWR to its start.
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if i != 0 {
            flags &= !TCP_CWR;
        }
        out[l4 + 13] = flags;
        l4 + TCP_CSUM_OFFSET
    } else {
        put16(out, l4 + 4, l4_len as u16);
        l4 + UDP_CSUM_OFFSET
    };
    put16(out, field, 0);
    let proto = if g.tcp { PROTO_TCP } else { PROTO_UDP };
    let (src, dst) = addrs(out, g.v6);
    let ph = checksum::pseudo_header(src, dst, proto, l4_len);
    let c = checksum::finish(checksum::add(ph, checksum::sum(&out[l4..])));
    put16(out, field, if c == 0 && !g.tcp { 0xffff } else { c });
    seg_len
}
