//! A merged packet the TUN refuses goes in as the packets it was made of.
//!
//! The kernel answers EINVAL to a super-packet it cannot take: a GSO type it
//! does not know (USO before 6.2), more segments than it allows (a GSO_UDP_L4
//! packet past `UDP_MAX_SEGMENTS`), a header it reads differently than we wrote
//! it. None of that may cost packets, so the segments are cut out here (the
//! same [`split`](super::split) the read side uses) and written one by one
//! with a plain virtio header.

use std::io;

use super::{segment_count, split_from};
use crate::vnet::{VirtioNetHdr, VNET_HDR_LEN};

/// Segments cut per round: the buffers are allocated on refusal only (the
/// caller stops merging after one), so a few rounds beat one buffer per segment.
const ROUND: usize = 8;

/// What became of one TUN write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunWrite {
    /// Taken as it was.
    Whole,
    /// Refused as a super-packet and written as its `segments` packets, of
    /// which `failed` were refused too.
    Split { segments: usize, failed: usize },
}

/// Writes `packet` (virtio header first) with `write`; a GSO packet refused
/// with EINVAL is written again as its segments. Any other error, or a
/// refused packet we cannot cut, is returned as the kernel's error.
pub fn write_or_split(
    packet: &[u8],
    mut write: impl FnMut(&[u8]) -> io::Result<usize>,
) -> io::Result<TunWrite> {
    let refused = match write(packet) {
        Ok(_) => return Ok(TunWrite::Whole),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && is_gso(packet) => e,
        Err(e) => return Err(e),
    };
    let Ok(segments) = segment_count(packet) else {
        return Err(refused);
    };
    // Every segment is shorter than the super-packet it comes from.
    let mut outs = vec![vec![0u8; VNET_HDR_LEN + packet.len()]; ROUND.min(segments)];
    let mut lens = [0usize; ROUND];
    let (mut first, mut failed) = (0, 0);
    while first < segments {
        let Ok(n) = split_from(packet, first, &mut outs, VNET_HDR_LEN, &mut lens) else {
            return Err(refused);
        };
        if n == 0 {
            break;
        }
        for (out, &len) in outs.iter_mut().zip(&lens).take(n) {
            VirtioNetHdr::NONE.write(out);
            if write(&out[..VNET_HDR_LEN + len]).is_err() {
                failed += 1;
            }
        }
        first += n;
    }
    Ok(TunWrite::Split { segments, failed })
}

fn is_gso(packet: &[u8]) -> bool {
    VirtioNetHdr::parse(packet).is_some_and(|h| h.is_gso())
}
