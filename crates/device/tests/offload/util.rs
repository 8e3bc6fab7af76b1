//! Packet builders and an independent checksum verifier for the tests. Kept
//! deliberately naive (16-bit words, one at a time) so that it shares no code
//! or shortcuts with `offload::checksum`.

use ferrotun_device::{VirtioNetHdr, VNET_HDR_LEN};

pub const ACK: u8 = 0x10;
pub const PSH: u8 = 0x08;
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

/// RFC 1071 sum, word by word.
pub fn ref_sum(parts: &[&[u8]]) -> u32 {
    let mut bytes = Vec::new();
    for p in parts {
        bytes.extend_from_slice(p);
    }
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut s: u32 = 0;
    for w in bytes.chunks(2) {
        s += u32::from(w[0]) << 8 | u32::from(w[1]);
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
    }
    s
}

fn pseudo(pkt: &[u8], proto: u8, l4_len: usize) -> Vec<u8> {
    let mut ph = Vec::new();
    if pkt[0] >> 4 == 4 {
        ph.extend_from_slice(&pkt[12..20]);
        ph.extend_from_slice(&[0, proto]);
        ph.extend_from_slice(&(l4_len as u16).to_be_bytes());
    } else {
        ph.extend_from_slice(&pkt[8..40]);
        ph.extend_from_slice(&(l4_len as u32).to_be_bytes());
        ph.extend_from_slice(&[0, 0, 0, proto]);
    }
    ph
}

/// IP header length and protocol of a packet without IPv6 extensions.
pub fn l4_of(pkt: &[u8]) -> (usize, u8) {
    if pkt[0] >> 4 == 4 {
        (usize::from(pkt[0] & 0xf) * 4, pkt[9])
    } else {
        (40, pkt[6])
    }
}

/// Whether every checksum of a complete IPv4/IPv6 TCP or UDP packet holds,
/// and the IP length fields match the packet.
pub fn verify(pkt: &[u8]) -> Result<(), String> {
    let (ip_len, proto) = l4_of(pkt);
    if pkt[0] >> 4 == 4 {
        if ref_sum(&[&pkt[..ip_len]]) != 0xffff {
            return Err("IPv4 header checksum".into());
        }
        let tot = u16::from_be_bytes([pkt[2], pkt[3]]) as usize;
        if tot != pkt.len() {
            return Err(format!("IPv4 total length {tot} != {}", pkt.len()));
        }
    } else {
        let pl = u16::from_be_bytes([pkt[4], pkt[5]]) as usize;
        if pl + 40 != pkt.len() {
            return Err(format!("IPv6 payload length {pl} != {}", pkt.len() - 40));
        }
    }
    let l4 = &pkt[ip_len..];
    if proto == 17 {
        let ulen = u16::from_be_bytes([l4[4], l4[5]]) as usize;
        if ulen != l4.len() {
            return Err(format!("UDP length {ulen} != {}", l4.len()));
        }
        if l4[6] == 0 && l4[7] == 0 {
            return Err("UDP checksum absent".into());
        }
    }
    let ph = pseudo(pkt, proto, l4.len());
    if ref_sum(&[&ph, l4]) != 0xffff {
        return Err(format!("proto {proto} checksum"));
    }
    Ok(())
}

/// The checksum value a correct sender stores, computed naively.
fn l4_checksum(pkt: &[u8], ip_len: usize, proto: u8) -> u16 {
    let ph = pseudo(pkt, proto, pkt.len() - ip_len);
    !(ref_sum(&[&ph, &pkt[ip_len..]]) as u16)
}

#[derive(Clone, Debug)]
pub struct Ip {
    pub v6: bool,
    pub src: Vec<u8>,
    pub dst: Vec<u8>,
    pub id: u16,
    pub ttl: u8,
    pub tos: u8,
    /// IPv4 options (a multiple of 4 bytes).
    pub options: Vec<u8>,
}

impl Ip {
    pub fn v4() -> Ip {
        Ip {
            v6: false,
            src: vec![10, 9, 0, 1],
            dst: vec![10, 9, 0, 2],
            id: 0x1234,
            ttl: 64,
            tos: 0,
            options: Vec::new(),
        }
    }

    pub fn v6() -> Ip {
        let mut src = vec![0xfd, 0, 0, 0, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut dst = src.clone();
        dst[15] = 2;
        src[7] = 0x98;
        Ip {
            v6: true,
            src,
            dst,
            id: 0,
            ttl: 64,
            tos: 0,
            options: Vec::new(),
        }
    }

    /// The IP header for `l4_len` bytes of protocol `proto` (IPv4 checksum
    /// included).
    pub fn header(&self, proto: u8, l4_len: usize) -> Vec<u8> {
        if self.v6 {
            let mut h = vec![0u8; 40];
            h[0] = 0x60 | self.tos >> 4;
            h[1] = self.tos << 4 | 0x0a; // and a flow label
            h[2] = 0xbc;
            h[3] = 0xde;
            h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            h[6] = proto;
            h[7] = self.ttl;
            h[8..24].copy_from_slice(&self.src);
            h[24..40].copy_from_slice(&self.dst);
            h
        } else {
            let ihl = 20 + self.options.len();
            let mut h = vec![0u8; ihl];
            h[0] = 0x40 | (ihl / 4) as u8;
            h[1] = self.tos;
            h[2..4].copy_from_slice(&((ihl + l4_len) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&self.id.to_be_bytes());
            h[6] = 0x40; // DF
            h[8] = self.ttl;
            h[9] = proto;
            h[12..16].copy_from_slice(&self.src);
            h[16..20].copy_from_slice(&self.dst);
            h[20..].copy_from_slice(&self.options);
            let c = !(ref_sum(&[&h]) as u16);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h
        }
    }
}

#[derive(Clone, Debug)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// TCP options (a multiple of 4 bytes).
    pub options: Vec<u8>,
}

impl Tcp {
    pub fn new(seq: u32) -> Tcp {
        Tcp {
            sport: 40000,
            dport: 5201,
            seq,
            ack: 0xa0b0c0d0,
            flags: ACK,
            window: 502,
            options: Vec::new(),
        }
    }

    fn header(&self) -> Vec<u8> {
        let len = 20 + self.options.len();
        let mut h = vec![0u8; len];
        h[0..2].copy_from_slice(&self.sport.to_be_bytes());
        h[2..4].copy_from_slice(&self.dport.to_be_bytes());
        h[4..8].copy_from_slice(&self.seq.to_be_bytes());
        h[8..12].copy_from_slice(&self.ack.to_be_bytes());
        h[12] = ((len / 4) as u8) << 4;
        h[13] = self.flags;
        h[14..16].copy_from_slice(&self.window.to_be_bytes());
        h[20..].copy_from_slice(&self.options);
        h
    }
}

/// Timestamp option padded with two NOPs, as Linux sends it.
pub fn ts_option(val: u32, ecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&val.to_be_bytes());
    o.extend_from_slice(&ecr.to_be_bytes());
    o
}

/// A complete TCP packet with correct checksums.
pub fn tcp_packet(ip: &Ip, tcp: &Tcp, payload: &[u8]) -> Vec<u8> {
    let th = tcp.header();
    let mut p = ip.header(6, th.len() + payload.len());
    let ip_len = p.len();
    p.extend_from_slice(&th);
    p.extend_from_slice(payload);
    let c = l4_checksum(&p, ip_len, 6);
    p[ip_len + 16..ip_len + 18].copy_from_slice(&c.to_be_bytes());
    p
}

/// A complete UDP packet with correct checksums.
pub fn udp_packet(ip: &Ip, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = ip.header(17, 8 + payload.len());
    let ip_len = p.len();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    let mut c = l4_checksum(&p, ip_len, 17);
    if c == 0 {
        c = 0xffff;
    }
    p[ip_len + 6..ip_len + 8].copy_from_slice(&c.to_be_bytes());
    p
}

/// Replaces a complete packet's L4 checksum with the partial
/// (pseudo-header only) sum a NEEDS_CSUM packet carries.
pub fn make_partial(pkt: &mut [u8]) -> (u16, u16) {
    let (ip_len, proto) = l4_of(pkt);
    let off = if proto == 6 { 16 } else { 6 };
    let ph = pseudo(pkt, proto, pkt.len() - ip_len);
    let partial = ref_sum(&[&ph]) as u16;
    pkt[ip_len + off..ip_len + off + 2].copy_from_slice(&partial.to_be_bytes());
    (ip_len as u16, off as u16)
}

/// Prepends a virtio header.
pub fn with_vnet(hdr: VirtioNetHdr, pkt: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; VNET_HDR_LEN];
    assert!(hdr.write(&mut v));
    v.extend_from_slice(pkt);
    v
}

/// A super-packet the way the kernel hands one out: one IP/TCP header for
/// all of `payload`, partial checksum, NEEDS_CSUM, hdr_len and gso_size set.
pub fn tcp_super(ip: &Ip, tcp: &Tcp, payload: &[u8], mss: u16) -> Vec<u8> {
    let mut p = tcp_packet(ip, tcp, payload);
    let (start, off) = make_partial(&mut p);
    let hl = start as usize + 20 + tcp.options.len();
    let hdr = VirtioNetHdr {
        flags: VirtioNetHdr::F_NEEDS_CSUM,
        gso_type: if ip.v6 {
            VirtioNetHdr::GSO_TCPV6
        } else {
            VirtioNetHdr::GSO_TCPV4
        },
        hdr_len: hl as u16,
        gso_size: mss,
        csum_start: start,
        csum_offset: off,
    };
    with_vnet(hdr, &p)
}

/// A USO super-packet: one UDP header for all of `payload`.
pub fn udp_super(ip: &Ip, payload: &[u8], gso: u16) -> Vec<u8> {
    let mut p = udp_packet(ip, 5353, 4444, payload);
    let (start, off) = make_partial(&mut p);
    let hdr = VirtioNetHdr {
        flags: VirtioNetHdr::F_NEEDS_CSUM,
        gso_type: VirtioNetHdr::GSO_UDP_L4,
        hdr_len: start + 8,
        gso_size: gso,
        csum_start: start,
        csum_offset: off,
    };
    with_vnet(hdr, &p)
}

/// Deterministic, non-repeating payload bytes.
pub fn payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_be_bytes()[0] ^ salt)
        .collect()
}

/// Runs `split` at offset 16 and returns the packets.
pub fn split_all(input: &[u8]) -> Result<Vec<Vec<u8>>, ferrotun_device::offload::OffloadError> {
    const OFF: usize = 16;
    // Exactly as many buffers as needed, each no larger than the input:
    // fresh 64 KiB buffers per call would dominate the property tests.
    let count = ferrotun_device::offload::segment_count(input)?;
    let mut outs = vec![vec![0u8; OFF + input.len()]; count];
    let mut lens = vec![0usize; count];
    let n = ferrotun_device::offload::split(input, &mut outs, OFF, &mut lens)?;
    Ok(outs[..n]
        .iter()
        .zip(&lens)
        .map(|(o, &l)| o[OFF..OFF + l].to_vec())
        .collect())
}

pub fn tcp_seq(pkt: &[u8]) -> u32 {
    let (l, _) = l4_of(pkt);
    u32::from_be_bytes(pkt[l + 4..l + 8].try_into().unwrap())
}

pub fn tcp_flags(pkt: &[u8]) -> u8 {
    let (l, _) = l4_of(pkt);
    pkt[l + 13]
}

/// Payload of a TCP packet.
pub fn tcp_payload(pkt: &[u8]) -> &[u8] {
    let (l, _) = l4_of(pkt);
    let doff = usize::from(pkt[l + 12] >> 4) * 4;
    &pkt[l + doff..]
}

/// Without the IPv4 id and header checksum: the pieces of a merged packet get
/// ids counted up from the first one's, as the kernel numbers them.
pub fn without_ids(pkts: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    pkts.into_iter()
        .map(|mut p| {
            if p[0] >> 4 == 4 {
                p[4..6].fill(0);
                p[10..12].fill(0);
            }
            p
        })
        .collect()
}
