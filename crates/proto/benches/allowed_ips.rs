//! AllowedIPs lookups on the per-packet path, and loading a large configuration.
//!
//! `cargo bench -p ferrotun-proto --bench allowed_ips -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ferrotun_proto::allowed_ips::AllowedIps;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PEERS: u32 = 10_000;
const PROBES: usize = 4096;

/// Raw header bytes, as the data plane hands them over.
#[derive(Clone, Copy)]
enum Probe {
    V4([u8; 4]),
    V6([u8; 16]),
}

fn v4_net(rng: &mut StdRng) -> u32 {
    // Everything inside 10.0.0.0/8 so that probes meet many near-misses.
    0x0a00_0000 | (rng.gen::<u32>() & 0x00ff_ffff)
}

fn v6_net(rng: &mut StdRng) -> u128 {
    (0xfd00_u128 << 112) | (rng.gen::<u128>() >> 16)
}

/// `count` prefixes, half per family, with lengths picked from `v4_lens`/`v6_lens`,
/// plus half the probes landing on a configured prefix and half anywhere in the range.
fn build(count: u32, v4_lens: &[u8], v6_lens: &[u8]) -> (AllowedIps<u32>, Vec<Probe>) {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut table = AllowedIps::new();
    let mut hits = Vec::new();
    for n in 0..count {
        let peer = n / 2;
        if n % 2 == 0 {
            let (a, len) = (v4_net(&mut rng), v4_lens[rng.gen_range(0..v4_lens.len())]);
            table
                .insert(IpAddr::V4(Ipv4Addr::from(a)), len, peer)
                .unwrap();
            hits.push(Probe::V4(a.to_be_bytes()));
        } else {
            let (a, len) = (v6_net(&mut rng), v6_lens[rng.gen_range(0..v6_lens.len())]);
            table
                .insert(IpAddr::V6(Ipv6Addr::from(a)), len, peer)
                .unwrap();
            hits.push(Probe::V6(a.to_be_bytes()));
        }
    }
    let probes = (0..PROBES)
        .map(|i| match (i % 2 == 0, i % 4 < 2) {
            (true, _) => hits[rng.gen_range(0..hits.len())],
            (false, true) => Probe::V4(v4_net(&mut rng).to_be_bytes()),
            (false, false) => Probe::V6(v6_net(&mut rng).to_be_bytes()),
        })
        .collect();
    (table, probes)
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("allowed_ips_lookup");
    group.throughput(Throughput::Elements(PROBES as u64));
    let mixed_v4: &[u8] = &[32, 32, 30, 28, 24, 16, 0];
    let mixed_v6: &[u8] = &[128, 128, 96, 64, 56, 48, 0];
    // The 1k and 100k points show that cost does not grow with the number of prefixes.
    let shapes: [(&str, u32, &[u8], &[u8]); 4] = [
        ("1k_host_routes", 1_000, &[32], &[128]),
        ("10k_host_routes", 10_000, &[32], &[128]),
        ("100k_host_routes", 100_000, &[32], &[128]),
        ("10k_mixed_lengths", 10_000, mixed_v4, mixed_v6),
    ];
    for (name, count, v4_lens, v6_lens) in shapes {
        let (table, probes) = build(count, v4_lens, v6_lens);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut found = 0u32;
                for probe in &probes {
                    let hit = match probe {
                        Probe::V4(a) => table.lookup_v4(black_box(a)),
                        Probe::V6(a) => table.lookup_v6(black_box(a)),
                    };
                    found = found.wrapping_add(hit.copied().unwrap_or(0));
                }
                found
            })
        });
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("allowed_ips_load");
    group.throughput(Throughput::Elements(u64::from(PEERS)));
    group.sample_size(20);
    group.bench_function("10k_peers_v4_32_v6_128", |b| {
        b.iter(|| {
            let mut table = AllowedIps::new();
            for peer in 0..PEERS {
                let v4 = Ipv4Addr::from(0x0a00_0000 | peer);
                let v6 = Ipv6Addr::from((0xfd00_u128 << 112) | u128::from(peer));
                table.insert(IpAddr::V4(v4), 32, peer).unwrap();
                table.insert(IpAddr::V6(v6), 128, peer).unwrap();
            }
            table
        })
    });
    group.bench_function("10k_peers_remove_value", |b| {
        b.iter_batched(
            || {
                let mut table = AllowedIps::new();
                for peer in 0..PEERS {
                    let v4 = Ipv4Addr::from(0x0a00_0000 | peer);
                    table.insert(IpAddr::V4(v4), 32, peer).unwrap();
                    let v6 = Ipv6Addr::from((0xfd00_u128 << 112) | u128::from(peer));
                    table.insert(IpAddr::V6(v6), 128, peer).unwrap();
                }
                table
            },
            |mut table| {
                for peer in 0..PEERS {
                    table.remove_value(&peer);
                }
                table
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, lookups, load);
criterion_main!(benches);
