//! Picks the data-plane AEAD by measurement and tracks handshake cost.
//!
//! `cargo bench -p ferrotun-proto --bench crypto -- --warm-up-time 1 --measurement-time 2`
//!
//! The AEAD groups seal and open in place, as `TransportKey` does, for 64-byte (keepalive /
//! TCP ACK sized), 1420-byte (default MTU) and 8192-byte (GSO-ish batch) plaintexts; criterion
//! reports bytes/s (multiply GiB/s by 8.59 for Gbit/s).

use std::hint::black_box;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrotun_proto::crypto::TransportKey;
use ferrotun_proto::keys::{PresharedKey, PrivateKey};
use ferrotun_proto::noise::{open_initiation, Handshake, LocalStatic};
use ferrotun_proto::time::{Instant, WallTime};
use ferrotun_proto::wire;
use rand::rngs::StdRng;
use rand::SeedableRng;

const SIZES: [usize; 3] = [64, 1420, 8192];
const KEY: [u8; 32] = [7; 32];

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

fn ring_key() -> ring::aead::LessSafeKey {
    let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &KEY).unwrap();
    ring::aead::LessSafeKey::new(unbound)
}

fn seal(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0u8; size];

        let ring = ring_key();
        g.bench_with_input(BenchmarkId::new("ring", size), &size, |b, _| {
            let mut ctr = 0u64;
            b.iter(|| {
                ctr += 1;
                let n = ring::aead::Nonce::assume_unique_for_key(nonce(ctr));
                let tag = ring
                    .seal_in_place_separate_tag(n, ring::aead::Aad::empty(), &mut buf)
                    .unwrap();
                black_box(&tag);
            })
        });

        let rc = ChaCha20Poly1305::new((&KEY).into());
        g.bench_with_input(BenchmarkId::new("rustcrypto", size), &size, |b, _| {
            let mut ctr = 0u64;
            b.iter(|| {
                ctr += 1;
                black_box(
                    rc.encrypt_in_place_detached(&nonce(ctr).into(), &[], &mut buf)
                        .unwrap(),
                );
            })
        });

        let tk = TransportKey::new(&KEY);
        g.bench_with_input(BenchmarkId::new("TransportKey", size), &size, |b, _| {
            let mut ctr = 0u64;
            b.iter(|| {
                ctr += 1;
                black_box(tk.seal_in_place(ctr, &mut buf));
            })
        });
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("open");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        // A fixed valid ciphertext; each iteration restores it so open always authenticates.
        let tk = TransportKey::new(&KEY);
        let mut sealed = vec![0u8; size];
        let tag = tk.seal_in_place(1, &mut sealed);
        sealed.extend_from_slice(&tag);
        let mut buf = sealed.clone();

        let ring = ring_key();
        g.bench_with_input(BenchmarkId::new("ring", size), &size, |b, _| {
            b.iter(|| {
                buf.copy_from_slice(&sealed);
                let n = ring::aead::Nonce::assume_unique_for_key(nonce(1));
                black_box(
                    ring.open_in_place(n, ring::aead::Aad::empty(), &mut buf)
                        .unwrap()
                        .len(),
                );
            })
        });

        let rc = ChaCha20Poly1305::new((&KEY).into());
        g.bench_with_input(BenchmarkId::new("rustcrypto", size), &size, |b, _| {
            b.iter(|| {
                buf.copy_from_slice(&sealed);
                let (body, tag) = buf.split_at_mut(size);
                rc.decrypt_in_place_detached(&nonce(1).into(), &[], body, (&*tag).into())
                    .unwrap();
                black_box(body.len());
            })
        });

        g.bench_with_input(BenchmarkId::new("TransportKey", size), &size, |b, _| {
            b.iter(|| {
                buf.copy_from_slice(&sealed);
                black_box(tk.open_in_place(1, &mut buf).unwrap());
            })
        });
    }
    g.finish();
}

fn handshake(c: &mut Criterion) {
    let initiator = LocalStatic::new(PrivateKey::from_bytes([1; 32]));
    let responder = LocalStatic::new(PrivateKey::from_bytes([2; 32]));
    let psk = PresharedKey::from_bytes([3; 32]);
    let mut i_hs = Handshake::new(&initiator, *responder.public_key(), psk.clone());
    let mut r_hs = Handshake::new(&responder, *initiator.public_key(), psk);
    let mut rng = StdRng::seed_from_u64(1);
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    let mut step = 0u64;
    g.bench_function("initiation+response+consume", |b| {
        b.iter(|| {
            step += 1;
            // Timestamps and arrival times advance so replay and flood checks pass.
            let now = Instant::from_nanos(step * 1_000_000_000);
            let wall = WallTime::new(1_700_000_000 + step, 0);
            let init = i_hs
                .create_initiation(&initiator, 1, now, wall, &mut rng)
                .unwrap();
            let opened =
                open_initiation(&responder, &wire::Initiation::new(&init).unwrap()).unwrap();
            let accepted = r_hs.accept_initiation(&responder, opened, now).unwrap();
            let (resp, _) = r_hs
                .create_response(&responder, accepted, 2, now, &mut rng)
                .unwrap();
            black_box(
                i_hs.consume_response(&initiator, &wire::Response::new(&resp).unwrap(), now)
                    .unwrap(),
            );
        })
    });
    g.finish();
}

criterion_group!(benches, seal, open, handshake);
criterion_main!(benches);
