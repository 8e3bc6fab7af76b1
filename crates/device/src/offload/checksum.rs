//! The Internet checksum (RFC 1071) as segmentation and coalescing need it:
//! ones'-complement sums that combine, plus the TCP/UDP pseudo-header.
//!
//! Sums are kept folded to 16 bits in network order ("partial" sums); the
//! value stored in a header is the complement of the final sum.

/// Ones'-complement sum of `data` read as big-endian 16-bit words (an odd
/// trailing byte is padded with zero), folded to 16 bits, not complemented.
///
/// Sums are additive: `add(sum(a), sum(b)) == sum(a ++ b)` whenever `a` has
/// an even length, so headers and payload can be summed separately.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    // Eight bytes per step into a 128-bit accumulator: no carry handling in
    // the loop, and 2^16 ≡ 1 (mod 2^16 - 1) lets the fold below reduce it to
    // the 16-bit sum. Native-endian words avoid a byte swap per step; the sum
    // of byte-swapped words is the byte-swapped sum (RFC 1071 §2(B)).
    let mut acc: u128 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        acc += u128::from(u64::from_ne_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        acc += u128::from(u64::from_ne_bytes(w));
    }
    let native = fold128(acc);
    u16::from_be(native)
}

/// Folds a wide ones'-complement accumulator to 16 bits.
#[inline]
fn fold128(acc: u128) -> u16 {
    let mut s = (acc >> 64) + (acc & 0xffff_ffff_ffff_ffff);
    s = (s >> 64) + (s & 0xffff_ffff_ffff_ffff);
    let mut v = s as u64;
    v = (v >> 32) + (v & 0xffff_ffff);
    v = (v >> 32) + (v & 0xffff_ffff);
    v = (v >> 16) + (v & 0xffff);
    v = (v >> 16) + (v & 0xffff);
    v as u16
}

/// Ones'-complement addition of two partial sums.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// Partial sum of the TCP/UDP pseudo-header: source and destination address
/// (4 or 16 bytes each), protocol, and the L4 length (header plus payload).
#[inline]
pub fn pseudo_header(src: &[u8], dst: &[u8], proto: u8, l4_len: usize) -> u16 {
    // The L4 length is 16 bits in IPv4's pseudo-header and 32 in IPv6's; both
    // sum the same as long as it fits in 32 bits.
    let len = l4_len as u32;
    let tail = add(u16::from(proto), add((len >> 16) as u16, len as u16));
    add(add(sum(src), sum(dst)), tail)
}

/// The value to store in a checksum field: the complement of the sum of
/// everything it covers (with the field itself zero).
#[inline]
pub fn finish(partial: u16) -> u16 {
    !partial
}

/// IPv4 header checksum for `hdr` (its checksum field is ignored).
#[inline]
pub fn ipv4_header(hdr: &[u8]) -> u16 {
    // Summing with the field in place and subtracting it back out would save
    // a copy, but the header is at most 60 bytes: sum around the field.
    let before = hdr.get(..10).unwrap_or(hdr);
    let after = hdr.get(12..).unwrap_or(&[]);
    finish(add(sum(before), sum(after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward RFC 1071 reference: 16-bit words, end-around carry.
    fn reference(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for pair in data.chunks(2) {
            let w = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            s += u32::from(w);
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of these bytes is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
    }

    #[test]
    fn matches_reference_for_all_lengths() {
        // Bytes chosen so that carries happen often.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 97 + 0xf3) as u8 | 0x80).collect();
        for len in 0..data.len() {
            assert_eq!(sum(&data[..len]), reference(&data[..len]), "len {len}");
        }
        let ff = vec![0xffu8; 1000];
        assert_eq!(sum(&ff), reference(&ff));
    }

    #[test]
    fn sums_combine_at_even_offsets() {
        let data: Vec<u8> = (0..101u32).map(|i| (i * 31 + 7) as u8).collect();
        for cut in (0..data.len()).step_by(2) {
            assert_eq!(add(sum(&data[..cut]), sum(&data[cut..])), sum(&data));
        }
    }

    #[test]
    fn ipv4_header_known_value() {
        // A well-known example header (Wikipedia "IPv4 header checksum"):
        // checksum 0xb861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_header(&hdr), 0xb861);
        // And a header with its checksum in place sums to all ones.
        assert_eq!(sum(&hdr), 0xffff);
    }

    #[test]
    fn pseudo_header_matches_layout() {
        let src = [10, 0, 0, 1];
        let dst = [10, 0, 0, 2];
        let mut ph = Vec::new();
        ph.extend_from_slice(&src);
        ph.extend_from_slice(&dst);
        ph.extend_from_slice(&[0, 6]);
        ph.extend_from_slice(&1234u16.to_be_bytes());
        assert_eq!(pseudo_header(&src, &dst, 6, 1234), reference(&ph));

        let src6: Vec<u8> = (0..16).map(|i| 0xf0 | i).collect();
        let dst6: Vec<u8> = (0..16).map(|i| i * 3).collect();
        let mut ph6 = Vec::new();
        ph6.extend_from_slice(&src6);
        ph6.extend_from_slice(&dst6);
        ph6.extend_from_slice(&70000u32.to_be_bytes());
        ph6.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(pseudo_header(&src6, &dst6, 17, 70000), reference(&ph6));
    }
}
