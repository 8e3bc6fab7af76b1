use super::*;
use std::time::Duration;

const SRC4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const SRC6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);

/// An IPv4 packet from 10.1.0.5 to 10.1.0.99 with `proto` and `payload`.
fn v4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&[10, 1, 0, 5]);
    p[16..20].copy_from_slice(&[10, 1, 0, 99]);
    let sum = checksum(&p, 0);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet from fd00::5 to fd00::99: `next` is the next-header value, `rest` the
/// bytes that follow the fixed header.
fn v6(next: u8, rest: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(rest.len() as u16).to_be_bytes());
    p[6] = next;
    p[7] = 64;
    p[8] = 0xfd;
    p[23] = 5;
    p[24] = 0xfd;
    p[39] = 0x99;
    p.extend_from_slice(rest);
    p
}

fn echo(kind: u8, len: usize) -> Vec<u8> {
    let mut m: Vec<u8> = (0..len).map(|i| i as u8).collect();
    m[0] = kind;
    m[1] = 0;
    m
}

fn build(packet: &[u8], src: IpAddr) -> Result<Vec<u8>, Refusal> {
    let mut out = [0u8; ERROR_MAX];
    let len = unreachable(packet, src, &mut out)?;
    Ok(out[..len].to_vec())
}

#[test]
fn checksum_matches_a_known_header() {
    // The classic example header (RFC 1071 style): its checksum field is b861.
    let header = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert_eq!(checksum(&header, 0), 0xb861);
    // Odd lengths pad with a zero byte.
    assert_eq!(checksum(&[0x01], 0), !0x0100);
}

#[test]
fn v4_error_is_well_formed() {
    let original = v4(17, &[0x30, 0x39, 0x00, 0x07, 0x00, 0x0c, 0, 0, 1, 2, 3, 4]);
    let e = build(&original, IpAddr::V4(SRC4)).unwrap();
    assert_eq!(e.len(), 20 + 8 + original.len());
    assert_eq!(e[0], 0x45);
    assert_eq!(u16::from_be_bytes([e[2], e[3]]) as usize, e.len());
    assert_eq!(e[9], 1, "protocol ICMP");
    assert_eq!(e[8], 64, "TTL");
    assert_eq!(checksum(&e[..20], 0), 0, "IPv4 header checksum");
    assert_eq!(&e[12..16], &SRC4.octets());
    assert_eq!(&e[16..20], &[10, 1, 0, 5], "to the original sender");
    assert_eq!(
        (e[20], e[21]),
        (3, 1),
        "destination unreachable, host unreachable"
    );
    assert_eq!(checksum(&e[20..], 0), 0, "ICMP checksum");
    assert_eq!(&e[24..28], &[0, 0, 0, 0], "unused");
    assert_eq!(&e[28..], &original[..], "the whole original is quoted");
}

#[test]
fn v4_quote_stops_at_576_bytes_and_at_the_claimed_length() {
    let original = v4(6, &[7u8; 1400]);
    let e = build(&original, IpAddr::V4(SRC4)).unwrap();
    assert_eq!(e.len(), V4_ERROR_MAX);
    assert_eq!(&e[28..], &original[..V4_ERROR_MAX - 28]);
    assert_eq!(checksum(&e[20..], 0), 0);
    assert_eq!(checksum(&e[..20], 0), 0);

    let mut padded = v4(17, &[1u8; 12]);
    let real = padded.len();
    padded.extend_from_slice(&[0xee; 9]);
    let e = build(&padded, IpAddr::V4(SRC4)).unwrap();
    assert_eq!(
        &e[28..],
        &padded[..real],
        "bytes past the total length are not quoted"
    );
}

#[test]
fn v4_answers_queries_but_never_errors() {
    for kind in [0u8, 8, 13, 15, 17] {
        assert!(
            build(&v4(1, &echo(kind, 16)), IpAddr::V4(SRC4)).is_ok(),
            "type {kind}"
        );
    }
    for kind in [3u8, 4, 5, 11, 12, 42, 255] {
        assert_eq!(
            build(&v4(1, &echo(kind, 16)), IpAddr::V4(SRC4)),
            Err(Refusal::IcmpError),
            "type {kind}"
        );
    }
    // An ICMP packet too short to show its type is not answered either.
    assert_eq!(
        build(&v4(1, &[]), IpAddr::V4(SRC4)),
        Err(Refusal::Malformed)
    );
}

#[test]
fn v4_refusals() {
    let base = v4(17, &[0u8; 16]);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = base.clone();
        f(&mut p);
        build(&p, IpAddr::V4(SRC4))
    };
    assert_eq!(
        with(&|p| p[6..8].copy_from_slice(&185u16.to_be_bytes())),
        Err(Refusal::NotFirstFragment)
    );
    // A first fragment (more-fragments set, offset 0) is answered.
    assert!(with(&|p| p[6] = 0x20).is_ok());
    for dst in [
        [224, 0, 0, 1],
        [239, 1, 2, 3],
        [255, 255, 255, 255],
        [0, 0, 0, 0],
    ] {
        assert_eq!(
            with(&|p| p[16..20].copy_from_slice(&dst)),
            Err(Refusal::GroupDestination),
            "{dst:?}"
        );
    }
    for src in [
        [0, 0, 0, 0],
        [224, 0, 0, 5],
        [255, 255, 255, 255],
        [127, 0, 0, 1],
        [240, 0, 0, 1],
    ] {
        assert_eq!(
            with(&|p| p[12..16].copy_from_slice(&src)),
            Err(Refusal::BadSource),
            "{src:?}"
        );
    }
    assert_eq!(
        with(&|p| p[0] = 0x44),
        Err(Refusal::Malformed),
        "IHL below 5"
    );
    assert_eq!(
        with(&|p| p[2..4].copy_from_slice(&10u16.to_be_bytes())),
        Err(Refusal::Malformed),
        "total length below the header"
    );
    assert_eq!(
        build(&base[..19], IpAddr::V4(SRC4)),
        Err(Refusal::Malformed)
    );
    assert_eq!(build(&base, IpAddr::V6(SRC6)), Err(Refusal::FamilyMismatch));
    assert_eq!(build(&[], IpAddr::V4(SRC4)), Err(Refusal::Malformed));
    assert_eq!(
        build(&[0x50; 40], IpAddr::V4(SRC4)),
        Err(Refusal::Malformed)
    );
    // Too small an output buffer is refused, not a panic.
    let mut small = [0u8; 30];
    assert_eq!(
        unreachable(&base, IpAddr::V4(SRC4), &mut small),
        Err(Refusal::NoRoom)
    );
}

/// Verifies an ICMPv6 checksum over the pseudo-header.
fn v6_checksum_ok(e: &[u8]) -> bool {
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&e[8..24]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&e[24..40]).unwrap());
    let pseudo = pseudo_header_sum(&src, &dst, (e.len() - 40) as u32, 58);
    checksum(&e[40..], pseudo) == 0
}

#[test]
fn v6_error_is_well_formed() {
    let original = v6(58, &echo(128, 64));
    let e = build(&original, IpAddr::V6(SRC6)).unwrap();
    assert_eq!(e.len(), 40 + 8 + original.len());
    assert_eq!(e[0] >> 4, 6);
    assert_eq!(u16::from_be_bytes([e[4], e[5]]) as usize, e.len() - 40);
    assert_eq!(e[6], 58, "next header ICMPv6");
    assert_eq!(&e[8..24], &SRC6.octets());
    assert_eq!(&e[24..40], &original[8..24], "to the original sender");
    assert_eq!(
        (e[40], e[41]),
        (1, 3),
        "destination unreachable, address unreachable"
    );
    assert!(v6_checksum_ok(&e));
    assert_eq!(&e[48..], &original[..]);
    // A wrong source in the pseudo-header would not verify: the checksum covers it.
    let mut moved = e.clone();
    moved[23] ^= 1;
    assert!(!v6_checksum_ok(&moved));
}

#[test]
fn v6_quote_stops_at_1280_bytes() {
    let original = v6(17, &[9u8; 1400]);
    let e = build(&original, IpAddr::V6(SRC6)).unwrap();
    assert_eq!(e.len(), V6_ERROR_MAX);
    assert_eq!(&e[48..], &original[..V6_ERROR_MAX - 48]);
    assert!(v6_checksum_ok(&e));
}

#[test]
fn v6_refusals() {
    let src = IpAddr::V6(SRC6);
    for kind in [1u8, 2, 3, 4, 127] {
        assert_eq!(
            build(&v6(58, &echo(kind, 16)), src),
            Err(Refusal::IcmpError),
            "type {kind}"
        );
    }
    for kind in [128u8, 129, 200] {
        assert!(build(&v6(58, &echo(kind, 16)), src).is_ok(), "type {kind}");
    }
    // An ICMPv6 error behind a hop-by-hop header is still an error.
    let mut hop = vec![58u8, 0, 1, 4, 0, 0, 0, 0];
    hop.extend_from_slice(&echo(1, 16));
    assert_eq!(build(&v6(0, &hop), src), Err(Refusal::IcmpError));
    // Fragments: the first is answered, the others are not.
    let frag = |offset: u16| {
        let mut f = vec![17u8, 0];
        f.extend_from_slice(&((offset << 3) | 1).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 7]);
        f.extend_from_slice(&[0u8; 16]);
        v6(44, &f)
    };
    assert!(build(&frag(0), src).is_ok());
    assert_eq!(build(&frag(100), src), Err(Refusal::NotFirstFragment));
    // Multicast and unspecified destinations; sources that are no single host.
    let mut p = v6(17, &[0u8; 16]);
    p[24] = 0xff;
    assert_eq!(build(&p, src), Err(Refusal::GroupDestination));
    let mut p = v6(17, &[0u8; 16]);
    p[8] = 0;
    p[23] = 0;
    assert_eq!(build(&p, src), Err(Refusal::BadSource), "unspecified");
    p[8] = 0xff;
    assert_eq!(build(&p, src), Err(Refusal::BadSource), "multicast");
    p[8] = 0;
    p[23] = 1;
    assert_eq!(build(&p, src), Err(Refusal::BadSource), "loopback");
    // Truncated headers.
    assert_eq!(build(&v6(17, &[])[..39], src), Err(Refusal::Malformed));
    assert_eq!(build(&v6(0, &[58]), src), Err(Refusal::Malformed));
    assert_eq!(build(&v6(58, &[]), src), Err(Refusal::Malformed));
    assert_eq!(
        build(&v6(17, &[0u8; 8]), IpAddr::V4(SRC4)),
        Err(Refusal::FamilyMismatch)
    );
}

#[test]
fn bucket_allows_a_burst_then_the_rate() {
    let mut b = TokenBucket::new(10, 5);
    let t0 = Instant::ZERO + Duration::from_secs(100);
    let burst = (0..50).filter(|_| b.allow(t0)).count();
    assert_eq!(burst, 5);
    // 100 ms buys one more token at 10 per second.
    assert!(b.allow(t0 + Duration::from_millis(100)));
    assert!(!b.allow(t0 + Duration::from_millis(100)));
    // One second of flooding at 1000 tries per second: at most 10 more.
    let start = t0 + Duration::from_millis(100);
    let passed = (1..=1000)
        .filter(|i| b.allow(start + Duration::from_millis(*i)))
        .count();
    assert!((9..=10).contains(&passed), "{passed}");
    // A long quiet time refills to the burst, no further.
    let later = start + Duration::from_secs(3600);
    assert_eq!((0..50).filter(|_| b.allow(later)).count(), 5);
}

#[test]
fn bucket_time_never_runs_back() {
    let mut b = TokenBucket::new(1, 1);
    let t = Instant::ZERO + Duration::from_secs(10);
    assert!(b.allow(t));
    // An older instant (another thread's) gains nothing, and does not rewind the clock.
    assert!(!b.allow(t - Duration::from_millis(900)));
    assert!(!b.allow(t + Duration::from_millis(500)));
    assert!(b.allow(t + Duration::from_millis(1000)));
}
