use super::util::*;
use ferrotun_device::offload::{segment_count, split, split_from, OffloadError};
use ferrotun_device::{VirtioNetHdr, VNET_HDR_LEN};

/// Checks the segments of a TCP super-packet built from `ip`, `tcp`, `data`.
fn check_tcp_segments(segs: &[Vec<u8>], ip: &Ip, tcp: &Tcp, data: &[u8], mss: usize) {
    let expected = data.len().div_ceil(mss);
    assert_eq!(segs.len(), expected);
    let hl = if ip.v6 { 40 } else { 20 + ip.options.len() } + 20 + tcp.options.len();
    let mut joined = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        verify(s).unwrap_or_else(|e| panic!("segment {i}: {e}"));
        let want_payload = if last { data.len() - i * mss } else { mss };
        assert_eq!(s.len(), hl + want_payload, "segment {i} length");
        assert_eq!(
            tcp_seq(s),
            tcp.seq.wrapping_add((i * mss) as u32),
            "seq {i}"
        );
        let mut flags = tcp.flags;
        if !last {
            flags &= !(FIN | PSH);
        }
        if i > 0 {
            flags &= !CWR;
        }
        assert_eq!(tcp_flags(s), flags, "flags of segment {i}");
        if !ip.v6 {
            let id = u16::from_be_bytes([s[4], s[5]]);
            assert_eq!(id, ip.id.wrapping_add(i as u16), "IP id {i}");
            assert_eq!(&s[20..20 + ip.options.len()], &ip.options[..]);
        }
        let (l, _) = l4_of(s);
        // Everything in the TCP header but seq, flags and checksum is copied.
        assert_eq!(&s[l..l + 4], &[0x9c, 0x40, 0x14, 0x51]);
        assert_eq!(&s[l + 8..l + 12], &tcp.ack.to_be_bytes());
        assert_eq!(&s[l + 14..l + 16], &tcp.window.to_be_bytes());
        assert_eq!(&s[l + 20..l + 20 + tcp.options.len()], &tcp.options[..]);
        joined.extend_from_slice(tcp_payload(s));
    }
    assert_eq!(joined, data);
}

#[test]
fn tcp4_with_options_psh_fin() {
    let mut ip = Ip::v4();
    ip.options = vec![0x94, 0x04, 0, 0]; // router alert
    ip.id = 0xfffe; // wraps during the split
    let mut tcp = Tcp::new(0xffff_f000); // and so does seq
    tcp.flags = ACK | PSH | FIN;
    tcp.options = ts_option(111, 222);
    let data = payload(5000, 1);
    let input = tcp_super(&ip, &tcp, &data, 1380);
    assert_eq!(segment_count(&input), Ok(4));
    let segs = split_all(&input).unwrap();
    check_tcp_segments(&segs, &ip, &tcp, &data, 1380);
}

#[test]
fn tcp6_with_cwr_and_ecn_flag() {
    let ip = Ip::v6();
    let mut tcp = Tcp::new(7);
    tcp.flags = ACK | PSH | CWR;
    tcp.options = ts_option(1, 2);
    let data = payload(1400 * 5, 2); // an exact multiple: last one full
    let mut input = tcp_super(&ip, &tcp, &data, 1400);
    input[1] |= VirtioNetHdr::GSO_ECN;
    let segs = split_all(&input).unwrap();
    check_tcp_segments(&segs, &ip, &tcp, &data, 1400);
    assert_eq!(tcp_flags(&segs[0]), ACK | CWR);
    assert_eq!(tcp_flags(&segs[4]), ACK | PSH);
}

#[test]
fn tcp4_like_the_kernel_reports_it() {
    // The header measured on this kernel: hdr_len 40, gso 1380, csum 20/16.
    let ip = Ip::v4();
    let tcp = Tcp::new(1);
    let data = payload(65535 - 40, 3);
    let input = tcp_super(&ip, &tcp, &data, 1380);
    let hdr = VirtioNetHdr::parse(&input).unwrap();
    assert_eq!(
        (hdr.hdr_len, hdr.gso_size, hdr.csum_start, hdr.csum_offset),
        (40, 1380, 20, 16)
    );
    let segs = split_all(&input).unwrap();
    check_tcp_segments(&segs, &ip, &tcp, &data, 1380);
    assert_eq!(segs.len(), 48);
}

#[test]
fn single_segment_gso_and_headers_only() {
    let ip = Ip::v4();
    let tcp = Tcp::new(1);
    let data = payload(100, 4);
    let segs = split_all(&tcp_super(&ip, &tcp, &data, 1380)).unwrap();
    check_tcp_segments(&segs, &ip, &tcp, &data, 1380);
    // No payload at all still yields the one (valid) header-only packet.
    let segs = split_all(&tcp_super(&ip, &tcp, &[], 1380)).unwrap();
    assert_eq!(segs.len(), 1);
    verify(&segs[0]).unwrap();
}

#[test]
fn hdr_len_is_only_a_hint() {
    // The forwarding path can report hdr_len as a whole first segment.
    let ip = Ip::v4();
    let tcp = Tcp::new(1);
    let data = payload(3000, 5);
    let mut input = tcp_super(&ip, &tcp, &data, 1000);
    input[2..4].copy_from_slice(&1040u16.to_ne_bytes());
    let segs = split_all(&input).unwrap();
    check_tcp_segments(&segs, &ip, &tcp, &data, 1000);
}

#[test]
fn gso_without_needs_csum_uses_ip_header() {
    let ip = Ip::v6();
    let tcp = Tcp::new(1);
    let data = payload(3000, 6);
    let mut input = tcp_super(&ip, &tcp, &data, 1000);
    input[0] = 0;
    input[6..10].fill(0);
    let segs = split_all(&input).unwrap();
    check_tcp_segments(&segs, &ip, &tcp, &data, 1000);
}

#[test]
fn udp_l4_v4_and_v6() {
    for ip in [Ip::v4(), Ip::v6()] {
        let data = payload(3000, 7);
        let input = udp_super(&ip, &data, 1200);
        let segs = split_all(&input).unwrap();
        assert_eq!(segs.len(), 3);
        let hl = if ip.v6 { 48 } else { 28 };
        let mut joined = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            verify(s).unwrap_or_else(|e| panic!("datagram {i}: {e}"));
            assert_eq!(s.len(), hl + [1200, 1200, 600][i]);
            assert_eq!(&s[hl - 8..hl - 4], &[0x14, 0xe9, 0x11, 0x5c]); // ports
            if !ip.v6 {
                assert_eq!(
                    u16::from_be_bytes([s[4], s[5]]),
                    ip.id.wrapping_add(i as u16)
                );
            }
            joined.extend_from_slice(&s[hl..]);
        }
        assert_eq!(joined, data);
    }
}

#[test]
fn plain_packet_copied_verbatim_at_offset() {
    let pkt = udp_packet(&Ip::v4(), 1, 2, b"hello");
    let input = with_vnet(VirtioNetHdr::NONE, &pkt);
    let mut outs = [[0xaau8; 100]];
    let mut lens = [0];
    assert_eq!(split(&input, &mut outs, 16, &mut lens), Ok(1));
    assert_eq!(lens[0], pkt.len());
    assert_eq!(&outs[0][16..16 + pkt.len()], &pkt[..]);
    // Headroom and tail untouched.
    assert!(outs[0][..16].iter().all(|&b| b == 0xaa));
    assert!(outs[0][16 + pkt.len()..].iter().all(|&b| b == 0xaa));
}

#[test]
fn needs_csum_completed_tcp_udp_v4_v6() {
    let mut tcp = Tcp::new(99);
    tcp.options = ts_option(5, 6);
    for ip in [Ip::v4(), Ip::v6()] {
        for len in [0, 1, 33, 1000] {
            for good in [
                tcp_packet(&ip, &tcp, &payload(len, 8)),
                udp_packet(&ip, 3, 4, &payload(len, 9)),
            ] {
                let mut partial = good.clone();
                let (start, off) = make_partial(&mut partial);
                assert_ne!(partial, good);
                let hdr = VirtioNetHdr {
                    flags: VirtioNetHdr::F_NEEDS_CSUM,
                    csum_start: start,
                    csum_offset: off,
                    ..VirtioNetHdr::NONE
                };
                let segs = split_all(&with_vnet(hdr, &partial)).unwrap();
                assert_eq!(segs.len(), 1);
                verify(&segs[0]).unwrap();
                assert_eq!(segs[0], good);
            }
        }
    }
}

#[test]
fn needs_csum_zero_result_becomes_ffff() {
    // Tune two payload bytes so the UDP checksum comes out as zero, which
    // must be sent as 0xffff.
    let ip = Ip::v4();
    let mut good = udp_packet(&ip, 3, 4, &payload(40, 10));
    let c = u16::from_be_bytes([good[26], good[27]]);
    let c = if c == 0xffff { 0 } else { c };
    let w = u32::from(u16::from_be_bytes([good[28], good[29]])) + u32::from(c);
    let w = ((w & 0xffff) + (w >> 16)) as u16;
    good[28..30].copy_from_slice(&w.to_be_bytes());
    good[26..28].copy_from_slice(&0xffffu16.to_be_bytes());
    verify(&good).unwrap();
    let mut partial = good.clone();
    let (start, off) = make_partial(&mut partial);
    let hdr = VirtioNetHdr {
        flags: VirtioNetHdr::F_NEEDS_CSUM,
        csum_start: start,
        csum_offset: off,
        ..VirtioNetHdr::NONE
    };
    let segs = split_all(&with_vnet(hdr, &partial)).unwrap();
    assert_eq!(&segs[0][26..28], &[0xff, 0xff]);
    assert_eq!(segs[0], good);
}

fn tcp4_input() -> Vec<u8> {
    tcp_super(&Ip::v4(), &Tcp::new(1), &payload(4000, 11), 1000)
}

fn set_hdr(input: &mut [u8], f: impl FnOnce(&mut VirtioNetHdr)) {
    let mut h = VirtioNetHdr::parse(input).unwrap();
    f(&mut h);
    h.write(input);
}

fn err_of(input: &[u8]) -> OffloadError {
    split_all(input).expect_err("malformed input accepted")
}

#[test]
fn malformed_inputs_are_errors() {
    assert!(matches!(err_of(&[]), OffloadError::NoVnetHeader { len: 0 }));
    assert!(matches!(
        err_of(&[0; 9]),
        OffloadError::NoVnetHeader { len: 9 }
    ));
    assert!(matches!(err_of(&[0; 10]), OffloadError::Truncated { .. }));

    let mut i = tcp4_input();
    set_hdr(&mut i, |h| h.hdr_len = 5000);
    assert!(matches!(
        err_of(&i),
        OffloadError::BadHdrLen { hdr_len: 5000, .. }
    ));

    let mut i = tcp4_input();
    set_hdr(&mut i, |h| h.gso_size = 0);
    assert_eq!(err_of(&i), OffloadError::ZeroGsoSize);

    let mut i = tcp4_input();
    set_hdr(&mut i, |h| h.csum_offset = 5000);
    assert!(matches!(
        err_of(&i),
        OffloadError::BadChecksumPosition { .. }
    ));

    let mut i = tcp4_input();
    set_hdr(&mut i, |h| h.csum_start = u16::MAX);
    assert!(matches!(
        err_of(&i),
        OffloadError::BadChecksumPosition { .. }
    ));

    let mut i = tcp4_input();
    set_hdr(&mut i, |h| h.csum_offset = 6);
    assert!(matches!(
        err_of(&i),
        OffloadError::BadChecksumPosition { .. }
    ));

    let mut i = tcp4_input();
    set_hdr(&mut i, |h| h.csum_start = 24);
    assert!(matches!(
        err_of(&i),
        OffloadError::BadChecksumStart { csum_start: 24, .. }
    ));

    // Plain packet, partial checksum field past the end.
    let pkt = udp_packet(&Ip::v4(), 1, 2, b"x");
    let hdr = VirtioNetHdr {
        flags: VirtioNetHdr::F_NEEDS_CSUM,
        csum_start: 20,
        csum_offset: 8,
        ..VirtioNetHdr::NONE
    };
    assert!(matches!(
        err_of(&with_vnet(hdr, &pkt)),
        OffloadError::BadChecksumPosition { .. }
    ));

    let mut i = tcp4_input();
    set_hdr(&mut i, |h| h.gso_type = VirtioNetHdr::GSO_TCPV6);
    assert!(matches!(
        err_of(&i),
        OffloadError::GsoVersionMismatch { version: 4, .. }
    ));

    for t in [VirtioNetHdr::GSO_UDP, 2, 0x7f] {
        let mut i = tcp4_input();
        set_hdr(&mut i, |h| h.gso_type = t);
        assert_eq!(err_of(&i), OffloadError::UnsupportedGso(t));
    }

    let mut i = tcp4_input();
    set_hdr(&mut i, |h| h.gso_type = VirtioNetHdr::GSO_UDP_L4);
    // TCP packet claimed as UDP: the csum offset is TCP's, caught first.
    assert!(matches!(
        err_of(&i),
        OffloadError::BadChecksumPosition { .. }
    ));
    set_hdr(&mut i, |h| h.csum_offset = 6);
    assert!(matches!(
        err_of(&i),
        OffloadError::WrongProtocol {
            expected: 17,
            found: 6,
            ..
        }
    ));

    let mut i = tcp4_input();
    i[VNET_HDR_LEN] = 0x75;
    assert_eq!(err_of(&i), OffloadError::BadIpVersion(7));

    let mut i = tcp4_input();
    i[VNET_HDR_LEN] = 0x44;
    assert_eq!(err_of(&i), OffloadError::BadIpv4HeaderLen(16));

    let mut i = tcp4_input();
    i[VNET_HDR_LEN + 20 + 12] = 0x40;
    assert_eq!(err_of(&i), OffloadError::BadTcpHeaderLen(16));

    let mut i = tcp4_input();
    i[VNET_HDR_LEN + 20 + 12] = 0xf0; // 60-byte header, runs past hdr_len
    i.truncate(VNET_HDR_LEN + 70);
    assert!(matches!(
        err_of(&i),
        OffloadError::Truncated {
            what: "TCP header",
            need: 80,
            len: 70
        }
    ));

    // Cut inside the TCP header: the partial checksum field is gone first.
    let mut i = tcp4_input();
    i.truncate(VNET_HDR_LEN + 30);
    assert!(matches!(
        err_of(&i),
        OffloadError::BadChecksumPosition { .. }
    ));
    set_hdr(&mut i, |h| h.flags = 0);
    assert!(matches!(
        err_of(&i),
        OffloadError::Truncated {
            what: "TCP header",
            ..
        }
    ));
    i.truncate(VNET_HDR_LEN + 15);
    assert!(matches!(
        err_of(&i),
        OffloadError::Truncated {
            what: "IPv4 header",
            ..
        }
    ));
    let mut i = tcp_super(&Ip::v6(), &Tcp::new(1), &[], 1000);
    set_hdr(&mut i, |h| h.flags = 0);
    i.truncate(VNET_HDR_LEN + 39);
    assert!(matches!(
        err_of(&i),
        OffloadError::Truncated {
            what: "IPv6 header",
            ..
        }
    ));
}

#[test]
fn too_few_or_too_small_buffers_write_nothing() {
    let input = tcp4_input();
    let mut outs = vec![vec![0u8; 1100]; 3];
    let mut lens = [0usize; 3];
    assert_eq!(
        split(&input, &mut outs, 16, &mut lens),
        Err(OffloadError::TooManySegments {
            needed: 4,
            available: 3
        })
    );
    let mut outs = vec![vec![0u8; 1100]; 4];
    let mut lens = [0usize; 3];
    assert!(matches!(
        split(&input, &mut outs, 16, &mut lens),
        Err(OffloadError::TooManySegments { .. })
    ));
    let mut outs = vec![vec![0u8; 1100]; 4];
    outs[3] = vec![0u8; 1000];
    let mut lens = [0usize; 4];
    assert_eq!(
        split(&input, &mut outs, 16, &mut lens),
        Err(OffloadError::OutputTooSmall {
            needed: 1056,
            available: 1000
        })
    );
    assert!(outs.iter().all(|o| o.iter().all(|&b| b == 0)));
    assert_eq!(lens, [0; 4]);
}

#[test]
fn split_from_in_chunks_matches_split() {
    let input = tcp_super(&Ip::v4(), &Tcp::new(5), &payload(9000, 12), 1000);
    let whole = split_all(&input).unwrap();
    let mut got = Vec::new();
    let mut outs = vec![vec![0u8; 1100]; 4];
    let mut lens = [0usize; 4];
    let mut first = 0;
    loop {
        let n = split_from(&input, first, &mut outs, 4, &mut lens).unwrap();
        if n == 0 {
            break;
        }
        for k in 0..n {
            got.push(outs[k][4..4 + lens[k]].to_vec());
        }
        first += n;
    }
    assert_eq!(first, 9);
    assert_eq!(got, whole);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes, and valid packets with arbitrary headers, never
        /// panic; whatever comes out verifies or is refused.
        #[test]
        fn never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            hdr in any::<[u8; 10]>(),
            v6 in any::<bool>(),
            len in 0usize..3000,
            cut in 0usize..3100,
        ) {
            let _ = split_all(&bytes);
            let ip = if v6 { Ip::v6() } else { Ip::v4() };
            let mut input = tcp_super(&ip, &Tcp::new(1), &payload(len, 13), 700);
            input[..10].copy_from_slice(&hdr);
            input.truncate(cut.max(10));
            let _ = split_all(&input);
        }

        #[test]
        fn valid_super_packets_split_correctly(
            v6 in any::<bool>(),
            len in 0usize..20000,
            mss in 200u16..3000,
            opts in 0usize..3,
            seq in any::<u32>(),
            flags in prop::sample::select(vec![ACK, ACK | PSH, ACK | FIN, ACK | PSH | FIN | CWR]),
        ) {
            let ip = if v6 { Ip::v6() } else { Ip::v4() };
            let mut tcp = Tcp::new(seq);
            tcp.flags = flags;
            tcp.options = (0..opts).flat_map(|k| ts_option(k as u32, 9)).collect();
            let data = payload(len, 14);
            let input = tcp_super(&ip, &tcp, &data, mss);
            let n = segment_count(&input).unwrap();
            let mut outs = vec![vec![0u8; 3200]; n];
            let mut lens = vec![0usize; n];
            prop_assert_eq!(split(&input, &mut outs, 0, &mut lens), Ok(n));
            let segs: Vec<Vec<u8>> = outs.iter().zip(&lens).map(|(o, &l)| o[..l].to_vec()).collect();
            if len == 0 {
                prop_assert_eq!(n, 1);
                verify(&segs[0]).unwrap();
            } else {
                check_tcp_segments(&segs, &ip, &tcp, &data, usize::from(mss));
            }
        }
    }
}
