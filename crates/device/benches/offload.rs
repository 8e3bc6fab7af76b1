//! Cost of the TUN offload helpers per 64 KiB super-packet.
//!
//! `cargo bench -p ferrotun-device --bench offload -- --warm-up-time 1 --measurement-time 2`
//!
//! - `checksum/65535`: the ones'-complement sum alone.
//! - `split/tcp4`: one 46-segment TCPv4 super-packet into 1380-byte segments
//!   (copy + per-segment checksums), as the TUN → network path does per read.
//! - `coalesce/tcp4`: 46 segments pushed and drained as one super-packet
//!   (copy + per-segment checksum verification).
//!
//! Throughput is in payload bytes; multiply GiB/s by 8.59 for Gbit/s.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrotun_device::offload::{checksum, split, Coalescer};
use ferrotun_device::{VirtioNetHdr, VNET_HDR_LEN};

const MSS: usize = 1380;
const SEGMENTS: usize = 46;

/// A TCPv4 segment (20-byte IP, 32-byte TCP header) with valid checksums.
fn segment(i: usize, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; 52 + len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((52 + len) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&(i as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let c = checksum::ipv4_header(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5201u16.to_be_bytes());
    p[24..28].copy_from_slice(&((i * MSS) as u32).to_be_bytes());
    p[32] = 8 << 4;
    p[33] = 0x10;
    p[34..36].copy_from_slice(&500u16.to_be_bytes());
    for (k, b) in p[52..].iter_mut().enumerate() {
        *b = (k * 7 + i) as u8;
    }
    let ph = checksum::pseudo_header(&[10, 0, 0, 1], &[10, 0, 0, 2], 6, 32 + len);
    let c = checksum::finish(checksum::add(ph, checksum::sum(&p[20..])));
    p[36..38].copy_from_slice(&c.to_be_bytes());
    p
}

fn benches(c: &mut Criterion) {
    let segs: Vec<Vec<u8>> = (0..SEGMENTS).map(|i| segment(i, MSS)).collect();
    let payload = (SEGMENTS * MSS) as u64;

    let data = vec![0xa5u8; 65535];
    let mut g = c.benchmark_group("checksum");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("65535", |b| b.iter(|| checksum::sum(black_box(&data))));
    g.finish();

    let mut gro = Coalescer::new(64);
    let mut sup = Vec::new();
    for s in &segs {
        gro.push(s).unwrap();
    }
    gro.drain(|b| sup = b.to_vec());
    assert!(VirtioNetHdr::parse(&sup).unwrap().is_gso());
    assert!(sup.len() > VNET_HDR_LEN + payload as usize);

    let mut g = c.benchmark_group("split");
    g.throughput(Throughput::Bytes(payload));
    let mut outs = vec![vec![0u8; 16 + 1500]; 64];
    let mut lens = [0usize; 64];
    g.bench_function("tcp4", |b| {
        b.iter(|| split(black_box(&sup), &mut outs, 16, &mut lens).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("coalesce");
    g.throughput(Throughput::Bytes(payload));
    g.bench_function("tcp4", |b| {
        b.iter(|| {
            for s in &segs {
                gro.push(black_box(s)).unwrap();
            }
            gro.drain(|b| {
                black_box(b);
            })
        })
    });
    g.finish();
}

criterion_group!(offload, benches);
criterion_main!(offload);
