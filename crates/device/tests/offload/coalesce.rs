use super::util::*;
use ferrotun_device::offload::{Coalescer, OffloadError};
use ferrotun_device::{VirtioNetHdr, VNET_HDR_LEN};

/// The most datagrams the kernel takes in one GSO_UDP_L4 packet (UDP_GRO_CNT_MAX), which
/// the coalescer must not exceed.
const MAX_UDP_SEGMENTS: usize = 64;

/// One direction of a TCP connection, producing consecutive segments.
pub struct Flow {
    pub ip: Ip,
    pub tcp: Tcp,
}

impl Flow {
    pub fn new(v6: bool, sport: u16) -> Flow {
        let mut tcp = Tcp::new(1_000_000);
        tcp.sport = sport;
        tcp.options = ts_option(77, 88);
        Flow {
            ip: if v6 { Ip::v6() } else { Ip::v4() },
            tcp,
        }
    }

    /// The next segment: `len` payload bytes with `flags`.
    pub fn seg(&mut self, len: usize, flags: u8) -> Vec<u8> {
        let mut t = self.tcp.clone();
        t.flags = flags;
        let p = tcp_packet(&self.ip, &t, &payload(len, self.tcp.seq as u8));
        self.tcp.seq = self.tcp.seq.wrapping_add(len as u32);
        self.ip.id = self.ip.id.wrapping_add(1);
        p
    }
}

pub fn drain_all(c: &mut Coalescer) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let n = c.drain(|b| out.push(b.to_vec()));
    assert_eq!(n, out.len());
    assert!(c.is_empty());
    out
}

fn hdr(out: &[u8]) -> VirtioNetHdr {
    VirtioNetHdr::parse(out).unwrap()
}

fn push_all(c: &mut Coalescer, pkts: &[Vec<u8>]) {
    for p in pkts {
        c.push(p).unwrap();
    }
}

/// Asserts `outs` are exactly `pkts`, each passed through unmerged.
fn assert_passed_through(outs: &[Vec<u8>], pkts: &[Vec<u8>]) {
    assert_eq!(outs.len(), pkts.len());
    for (o, p) in outs.iter().zip(pkts) {
        assert_eq!(hdr(o), VirtioNetHdr::NONE);
        assert_eq!(&o[VNET_HDR_LEN..], &p[..]);
    }
}

#[test]
fn merges_in_order_segments_v4_and_v6() {
    for v6 in [false, true] {
        let mut f = Flow::new(v6, 1);
        let mut pkts: Vec<Vec<u8>> = (0..4).map(|_| f.seg(1000, ACK)).collect();
        pkts.push(f.seg(500, ACK | PSH));
        let mut c = Coalescer::new(8);
        push_all(&mut c, &pkts);
        assert_eq!(c.len(), 1);
        let outs = drain_all(&mut c);
        assert_eq!(outs.len(), 1);
        let h = hdr(&outs[0]);
        let ip_len = if v6 { 40 } else { 20 };
        assert_eq!(
            h,
            VirtioNetHdr {
                flags: VirtioNetHdr::F_NEEDS_CSUM,
                gso_type: if v6 {
                    VirtioNetHdr::GSO_TCPV6
                } else {
                    VirtioNetHdr::GSO_TCPV4
                },
                hdr_len: ip_len + 32,
                gso_size: 1000,
                csum_start: ip_len,
                csum_offset: 16,
            }
        );
        let sp = &outs[0][VNET_HDR_LEN..];
        assert_eq!(sp.len(), usize::from(ip_len) + 32 + 4500);
        if v6 {
            assert_eq!(u16::from_be_bytes([sp[4], sp[5]]) as usize, sp.len() - 40);
        } else {
            assert_eq!(u16::from_be_bytes([sp[2], sp[3]]) as usize, sp.len());
            assert_eq!(ref_sum(&[&sp[..20]]), 0xffff, "IPv4 header checksum");
        }
        assert_eq!(tcp_flags(sp), ACK | PSH);
        assert_eq!(tcp_seq(sp), 1_000_000);
        // The TCP checksum field holds the pseudo-header sum over the whole
        // TCP length, so completing it gives a valid checksum.
        let mut complete = sp.to_vec();
        let (l, _) = l4_of(&complete);
        let mut partial_check = complete.clone();
        make_partial(&mut partial_check);
        assert_eq!(&complete[l + 16..l + 18], &partial_check[l + 16..l + 18]);
        let c = !(ref_sum(&[&complete[l..]]) as u16);
        complete[l + 16..l + 18].copy_from_slice(&c.to_be_bytes());
        verify(&complete).unwrap();
        let joined: Vec<u8> = pkts.iter().flat_map(|p| tcp_payload(p).to_vec()).collect();
        assert_eq!(tcp_payload(sp), &joined[..]);
    }
}

#[test]
fn round_trip_returns_original_segments() {
    for v6 in [false, true] {
        let mut f = Flow::new(v6, 2);
        let mut pkts: Vec<Vec<u8>> = (0..7).map(|_| f.seg(1380, ACK)).collect();
        pkts.push(f.seg(17, ACK | PSH));
        let mut c = Coalescer::new(8);
        push_all(&mut c, &pkts);
        let outs = drain_all(&mut c);
        assert_eq!(outs.len(), 1);
        assert_eq!(split_all(&outs[0]).unwrap(), pkts);
    }
}

#[test]
fn single_packets_pass_through_untouched() {
    let mut f = Flow::new(false, 3);
    let pkts = vec![
        f.seg(100, ACK),
        udp_packet(&Ip::v4(), 1, 2, b"udp"),
        udp_packet(&Ip::v6(), 1, 2, b"udp6"),
        vec![0x45, 0, 0], // garbage
        vec![],
        vec![0xff; 50],
    ];
    let mut c = Coalescer::new(8);
    push_all(&mut c, &pkts);
    assert_passed_through(&drain_all(&mut c), &pkts);
}

#[test]
fn refuses_out_of_order() {
    let mut f = Flow::new(false, 4);
    let s: Vec<Vec<u8>> = (0..3).map(|_| f.seg(1000, ACK)).collect();
    let pkts = vec![s[0].clone(), s[2].clone(), s[1].clone()];
    let mut c = Coalescer::new(8);
    push_all(&mut c, &pkts);
    assert_passed_through(&drain_all(&mut c), &pkts);

    // A retransmission (same seq again) is not merged either.
    let mut f = Flow::new(true, 4);
    let a = f.seg(1000, ACK);
    let pkts = vec![a.clone(), a];
    push_all(&mut c, &pkts);
    assert_passed_through(&drain_all(&mut c), &pkts);
}

#[test]
fn interleaved_flows_merge_separately_in_first_seen_order() {
    let mut x = Flow::new(false, 10);
    let mut y = Flow::new(false, 11);
    let mut z = Flow::new(true, 10);
    let (x0, y0, z0, x1, y1, z1) = (
        x.seg(800, ACK),
        y.seg(900, ACK),
        z.seg(700, ACK),
        x.seg(800, ACK),
        y.seg(900, ACK),
        z.seg(700, ACK),
    );
    let mut c = Coalescer::new(8);
    push_all(
        &mut c,
        &[
            x0.clone(),
            y0.clone(),
            z0.clone(),
            x1.clone(),
            y1.clone(),
            z1.clone(),
        ],
    );
    let outs = drain_all(&mut c);
    assert_eq!(outs.len(), 3);
    assert_eq!(split_all(&outs[0]).unwrap(), vec![x0, x1]);
    assert_eq!(split_all(&outs[1]).unwrap(), vec![y0, y1]);
    assert_eq!(split_all(&outs[2]).unwrap(), vec![z0, z1]);
}

#[test]
fn refuses_other_flags() {
    for flags in [
        ACK | FIN,
        ACK | SYN,
        ACK | URG,
        ACK | ECE,
        ACK | CWR,
        ACK | 0x04,
        PSH,
        0,
    ] {
        let mut f = Flow::new(false, 5);
        let pkts = vec![f.seg(1000, ACK), f.seg(1000, flags), f.seg(1000, ACK)];
        let mut c = Coalescer::new(8);
        push_all(&mut c, &pkts);
        let outs = drain_all(&mut c);
        // Nothing may merge across the odd one: the third must not jump
        // ahead of the second.
        assert_passed_through(&outs, &pkts);
    }
}

#[test]
fn psh_ends_a_group() {
    let mut f = Flow::new(false, 6);
    let pkts = vec![
        f.seg(1000, ACK),
        f.seg(1000, ACK | PSH),
        f.seg(1000, ACK),
        f.seg(1000, ACK),
    ];
    let mut c = Coalescer::new(8);
    push_all(&mut c, &pkts);
    let outs = drain_all(&mut c);
    assert_eq!(outs.len(), 2);
    assert_eq!(split_all(&outs[0]).unwrap(), pkts[..2]);
    assert_eq!(split_all(&outs[1]).unwrap(), pkts[2..]);
}

#[test]
fn pure_ack_between_segments_keeps_order() {
    let mut f = Flow::new(false, 7);
    let pkts = vec![
        f.seg(1000, ACK),
        f.seg(0, ACK),
        f.seg(1000, ACK),
        f.seg(1000, ACK),
    ];
    let mut c = Coalescer::new(8);
    push_all(&mut c, &pkts);
    let outs = drain_all(&mut c);
    assert_eq!(outs.len(), 3);
    assert_passed_through(&outs[..2], &pkts[..2]);
    assert_eq!(split_all(&outs[2]).unwrap(), pkts[2..]);
}

#[test]
fn refuses_header_differences() {
    type Tweak = fn(&mut Flow);
    let tweaks: [(&str, Tweak); 7] = [
        ("ack", |f| f.tcp.ack += 1),
        ("options", |f| f.tcp.options = ts_option(78, 88)),
        ("option length", |f| f.tcp.options = Vec::new()),
        ("ttl", |f| f.ip.ttl -= 1),
        ("tos", |f| f.ip.tos = 0x02),
        ("ip options", |f| f.ip.options = vec![1, 1, 1, 0]),
        ("ports", |f| f.tcp.dport += 1),
    ];
    for v6 in [false, true] {
        for (what, tweak) in tweaks {
            if v6 && what == "ip options" {
                continue;
            }
            let mut f = Flow::new(v6, 8);
            let a = f.seg(1000, ACK);
            tweak(&mut f);
            let b = f.seg(1000, ACK);
            let mut c = Coalescer::new(8);
            push_all(&mut c, &[a.clone(), b.clone()]);
            let outs = drain_all(&mut c);
            assert_eq!(outs.len(), 2, "merged despite different {what} (v6 {v6})");
            assert_passed_through(&outs, &[a, b]);
        }
    }
}

#[test]
fn ipv4_options_never_merge() {
    let mut f = Flow::new(false, 9);
    f.ip.options = vec![1, 1, 1, 0];
    let pkts = vec![f.seg(1000, ACK), f.seg(1000, ACK)];
    let mut c = Coalescer::new(8);
    push_all(&mut c, &pkts);
    assert_passed_through(&drain_all(&mut c), &pkts);
}

#[test]
fn segment_sizes() {
    // Larger after smaller: no. Anything after a short one: no.
    let mut f = Flow::new(false, 12);
    let pkts = vec![f.seg(1000, ACK), f.seg(1200, ACK)];
    let mut c = Coalescer::new(8);
    push_all(&mut c, &pkts);
    assert_passed_through(&drain_all(&mut c), &pkts);

    let pkts = vec![f.seg(1000, ACK), f.seg(400, ACK), f.seg(400, ACK)];
    push_all(&mut c, &pkts);
    let outs = drain_all(&mut c);
    assert_eq!(outs.len(), 2);
    assert_eq!(split_all(&outs[0]).unwrap(), pkts[..2]);
    assert_passed_through(&outs[1..], &pkts[2..]);
}

#[test]
fn bad_checksums_are_not_merged() {
    let mut f = Flow::new(false, 13);
    let mut pkts: Vec<Vec<u8>> = (0..3).map(|_| f.seg(1000, ACK)).collect();
    let last = pkts[1].len() - 1;
    pkts[1][last] ^= 1; // corrupt payload of the middle one
    let mut c = Coalescer::new(8);
    push_all(&mut c, &pkts);
    assert_passed_through(&drain_all(&mut c), &pkts);

    // A corrupt head: nothing merges into it.
    let mut f = Flow::new(true, 13);
    let mut pkts: Vec<Vec<u8>> = (0..2).map(|_| f.seg(1000, ACK)).collect();
    pkts[0][80] ^= 0x80; // payload byte
    push_all(&mut c, &pkts);
    assert_passed_through(&drain_all(&mut c), &pkts);

    // A corrupt IPv4 header checksum on an appended segment.
    let mut f = Flow::new(false, 13);
    let mut pkts: Vec<Vec<u8>> = (0..2).map(|_| f.seg(1000, ACK)).collect();
    pkts[1][10] ^= 1;
    push_all(&mut c, &pkts);
    assert_passed_through(&drain_all(&mut c), &pkts);
}

#[test]
fn caps_at_64k() {
    let mut f = Flow::new(false, 14);
    let pkts: Vec<Vec<u8>> = (0..100).map(|_| f.seg(1400, ACK)).collect();
    let mut c = Coalescer::new(8);
    push_all(&mut c, &pkts);
    let outs = drain_all(&mut c);
    // (65535 - 52) / 1400 = 46 segments per super-packet.
    assert_eq!(outs.len(), 3);
    let mut back = Vec::new();
    for o in &outs {
        assert!(o.len() - VNET_HDR_LEN <= 65535);
        back.extend(split_all(o).unwrap());
    }
    assert_eq!(split_all(&outs[0]).unwrap().len(), 46);
    assert_eq!(back, pkts);
}

#[test]
fn full_then_drain() {
    let mut a = Flow::new(false, 20);
    let mut b = Flow::new(false, 21);
    let mut d = Flow::new(false, 22);
    let mut c = Coalescer::new(2);
    assert_eq!(c.capacity(), 2);
    let a0 = a.seg(1000, ACK);
    let b0 = b.seg(1000, ACK);
    c.push(&a0).unwrap();
    c.push(&b0).unwrap();
    // Appending needs no new buffer, so it still works when full.
    let a1 = a.seg(1000, ACK);
    c.push(&a1).unwrap();
    let d0 = d.seg(1000, ACK);
    assert_eq!(c.push(&d0), Err(OffloadError::Full));
    assert_eq!(c.len(), 2);
    let outs = drain_all(&mut c);
    assert_eq!(outs.len(), 2);
    assert_eq!(split_all(&outs[0]).unwrap(), vec![a0, a1]);
    c.push(&d0).unwrap();
    assert_passed_through(&drain_all(&mut c), &[d0]);

    let huge = vec![0x45; 65536];
    assert_eq!(
        c.push(&huge),
        Err(OffloadError::PacketTooLarge { len: 65536 })
    );
}

#[test]
fn fragment_is_a_barrier() {
    let mut f = Flow::new(false, 23);
    let s0 = f.seg(1000, ACK);
    let s1 = f.seg(1000, ACK);
    let mut frag = f.seg(1000, ACK);
    frag[6] |= 0x20; // more fragments
    let s3 = f.seg(1000, ACK);
    let mut c = Coalescer::new(8);
    push_all(&mut c, &[s0.clone(), s1.clone(), frag.clone(), s3.clone()]);
    let outs = drain_all(&mut c);
    assert_eq!(outs.len(), 3);
    assert_eq!(split_all(&outs[0]).unwrap(), vec![s0, s1]);
    assert_passed_through(&outs[1..], &[frag, s3]);
}

#[test]
fn clear_drops_everything() {
    let mut f = Flow::new(false, 24);
    let mut c = Coalescer::default();
    c.push(&f.seg(10, ACK)).unwrap();
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.drain(|_| panic!("nothing to drain")), 0);
}

fn datagram(v6: bool, sport: u16, len: usize, salt: u8) -> Vec<u8> {
    let ip = if v6 { Ip::v6() } else { Ip::v4() };
    udp_packet(&ip, sport, 53, &payload(len, salt))
}

fn udp_coalescer() -> Coalescer {
    let mut c = Coalescer::new(64);
    c.merge_udp(true);
    c
}

#[test]
fn udp_datagrams_merge_into_one_uso_packet_and_split_back() {
    for v6 in [false, true] {
        let mut pkts: Vec<Vec<u8>> = (0..20).map(|k| datagram(v6, 5000, 36, k)).collect();
        pkts.push(datagram(v6, 5000, 10, 99));
        let mut c = udp_coalescer();
        push_all(&mut c, &pkts);
        let outs = drain_all(&mut c);
        assert_eq!(outs.len(), 1);
        let h = hdr(&outs[0]);
        assert_eq!(h.gso_type, VirtioNetHdr::GSO_UDP_L4);
        assert_eq!(h.gso_size, 36);
        let back = split_all(&outs[0]).unwrap();
        back.iter().for_each(|p| verify(p).unwrap());
        assert_eq!(without_ids(back), without_ids(pkts));
    }
}

#[test]
fn udp_groups_stop_at_the_kernel_segment_limit() {
    // 200 small datagrams of one flow in one batch: more than the kernel takes
    // in one GSO_UDP_L4 packet, so they leave as several, in order.
    let pkts: Vec<Vec<u8>> = (0..200)
        .map(|k| datagram(false, 5000, 8, k as u8))
        .collect();
    let mut c = udp_coalescer();
    push_all(&mut c, &pkts);
    let outs = drain_all(&mut c);
    let counts: Vec<usize> = outs.iter().map(|o| split_all(o).unwrap().len()).collect();
    assert_eq!(
        counts,
        [MAX_UDP_SEGMENTS, MAX_UDP_SEGMENTS, MAX_UDP_SEGMENTS, 8]
    );
    let back: Vec<Vec<u8>> = outs.iter().flat_map(|o| split_all(o).unwrap()).collect();
    assert_eq!(without_ids(back), without_ids(pkts));
}

#[test]
fn udp_is_left_alone_unless_asked() {
    let pkts: Vec<Vec<u8>> = (0..4).map(|k| datagram(false, 5000, 36, k)).collect();
    let mut c = Coalescer::new(8);
    push_all(&mut c, &pkts);
    assert_passed_through(&drain_all(&mut c), &pkts);
}

#[test]
fn udp_groups_keep_each_flow_in_order() {
    // A shorter datagram ends its group; a larger one starts a new group; a
    // datagram without a checksum (IPv4) or with a wrong one is never merged,
    // and nothing that follows it may jump ahead of it.
    let mut no_csum = datagram(false, 5000, 36, 3);
    no_csum[26..28].fill(0);
    let mut bad = datagram(false, 5000, 36, 5);
    bad[30] ^= 0xff;
    let pkts = vec![
        datagram(false, 5000, 36, 0),
        datagram(false, 5000, 36, 1),
        datagram(false, 5000, 20, 2),
        no_csum,
        datagram(false, 5000, 36, 4),
        bad,
        datagram(false, 5000, 36, 6),
        datagram(false, 5001, 36, 7),
        datagram(false, 5000, 50, 8),
    ];
    let mut c = udp_coalescer();
    push_all(&mut c, &pkts);
    let outs = drain_all(&mut c);
    let back: Vec<Vec<u8>> = outs.iter().flat_map(|o| split_all(o).unwrap()).collect();
    // Per flow, the order is the order pushed.
    for port in [5000u16, 5001] {
        let of = |v: &[Vec<u8>]| -> Vec<Vec<u8>> {
            v.iter()
                .filter(|p| u16::from_be_bytes([p[20], p[21]]) == port)
                .cloned()
                .collect()
        };
        // The corrupt datagram passes through as it came (the kernel drops it).
        assert_eq!(
            without_ids(of(&back)),
            without_ids(of(&pkts)),
            "flow {port}"
        );
    }
    // 0+1+2 merge (2 is shorter: the group ends); 3 has no checksum and 5 a
    // wrong one, so each stays alone; 4 and 6 start groups of their own.
    let gso: Vec<bool> = outs.iter().map(|o| hdr(o).is_gso()).collect();
    assert_eq!(gso, [true, false, false, false, false, false, false]);
}
