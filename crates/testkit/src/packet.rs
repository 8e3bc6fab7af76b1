//! Packet builders for tests: IPv4 and IPv6 headers and UDP datagrams, with the checksums
//! the kernel checks.

/// IP protocol numbers the tests use.
pub const UDP: u8 = 17;

/// Internet checksum (RFC 1071) over `data`, starting from `sum`.
pub fn csum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

/// Folds a running sum into the one's-complement checksum.
pub fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A minimal IPv4 header (no options, DF set, TTL 64, checksum filled in) for
/// `payload_len` bytes of protocol `proto`.
pub fn ipv4_header(src: [u8; 4], dst: [u8; 4], proto: u8, payload_len: usize) -> [u8; 20] {
    let total = u16::try_from(20 + payload_len).expect("IPv4 packet over 64 KiB");
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[6] = 0x40;
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let c = csum_fold(csum_add(0, &h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// An IPv4 packet: the header, then `payload` as protocol `proto`.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = ipv4_header(src, dst, proto, payload.len()).to_vec();
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet (hop limit 64, no extension headers): the header, then `payload` as
/// next header `proto`.
pub fn ipv6(src: [u8; 16], dst: [u8; 16], proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("IPv6 payload over 64 KiB");
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&len.to_be_bytes());
    p[6] = proto;
    p[7] = 64;
    p[8..24].copy_from_slice(&src);
    p[24..40].copy_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

/// A UDP header and payload with checksum 0 ("none", allowed over IPv4).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("UDP datagram over 64 KiB");
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// An IPv4/UDP packet with UDP checksum 0.
pub fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv4(src, dst, UDP, &udp(sport, dport, payload))
}

/// An IPv6/UDP packet with its UDP checksum (mandatory over IPv6).
pub fn udp6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut datagram = udp(sport, dport, payload);
    let len = datagram.len() as u32;
    let mut sum = csum_add(0, &src);
    sum = csum_add(sum, &dst);
    sum = csum_add(sum, &len.to_be_bytes());
    sum = csum_add(sum, &[0, 0, 0, UDP]);
    sum = csum_add(sum, &datagram);
    let c = match csum_fold(sum) {
        0 => 0xffff,
        c => c,
    };
    datagram[6..8].copy_from_slice(&c.to_be_bytes());
    ipv6(src, dst, UDP, &datagram)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, b"hi");
        assert_eq!(p.len(), 30);
        assert_eq!(csum_fold(csum_add(0, &p[..20])), 0);
    }

    #[test]
    fn udp6_checksum_verifies() {
        let src = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let p = udp6(src, 5, dst, 6, b"abc");
        let mut sum = csum_add(0, &p[8..40]);
        sum = csum_add(sum, &11u32.to_be_bytes());
        sum = csum_add(sum, &[0, 0, 0, UDP]);
        sum = csum_add(sum, &p[40..]);
        assert_eq!(csum_fold(sum), 0);
    }
}
