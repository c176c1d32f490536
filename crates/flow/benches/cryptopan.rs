//! Crypto-PAn addresses/s on one core: the paper's algorithm one block at a time
//! ("uncached"), the 16-bit prefix table with one address per call ("table"), and the
//! sensor's path — table + per-thread prefix cache + blocks of many addresses per AES
//! call ("batch"). Address sets: uniformly random (no locality: the cache's worst case)
//! and subscriber-like (IPv4 from 4,096 /24s, IPv6 from 4,096 /64s with random
//! interface ids). Figures and commands: docs/benchmarks/cryptopan.md.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mamori_flow::{CryptoPan, CryptoPanKey, Pseudonymiser};

const N: usize = 4096;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn sets() -> Vec<(&'static str, Vec<IpAddr>)> {
    let mut rng = Rng(42);
    let random4 = (0..N)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next() as u32)))
        .collect();
    let nets4: Vec<u32> = (0..4096).map(|_| (rng.next() as u32) & !0xff).collect();
    // 16 batches' worth, so the cache sees each /24 many times, as a sensor would.
    let subscriber4 = (0..N)
        .map(|_| {
            let net = nets4[rng.next() as usize % nets4.len()];
            IpAddr::V4(Ipv4Addr::from(net | (rng.next() as u32 & 0xff)))
        })
        .collect();
    let random6 = (0..N)
        .map(|_| {
            IpAddr::V6(Ipv6Addr::from(
                u128::from(rng.next()) << 64 | u128::from(rng.next()),
            ))
        })
        .collect();
    let nets6: Vec<u64> = (0..4096).map(|_| rng.next()).collect();
    let subscriber6 = (0..N)
        .map(|_| {
            let net = nets6[rng.next() as usize % nets6.len()];
            IpAddr::V6(Ipv6Addr::from(
                u128::from(net) << 64 | u128::from(rng.next()),
            ))
        })
        .collect();
    vec![
        ("ipv4-random", random4),
        ("ipv4-subscriber", subscriber4),
        ("ipv6-random", random6),
        ("ipv6-subscriber", subscriber6),
    ]
}

fn cryptopan(c: &mut Criterion) {
    let key = CryptoPanKey::from_bytes(*b"mamori bench key, 32 bytes long!");
    let pan = CryptoPan::new(&key);
    let mut g = c.benchmark_group("cryptopan");
    g.throughput(Throughput::Elements(N as u64));
    for (name, addrs) in sets() {
        let mut pseudonymiser = Pseudonymiser::new(&key);
        let mut buf = addrs.clone();
        g.bench_function(format!("batch/{name}"), |b| {
            b.iter(|| {
                buf.copy_from_slice(&addrs);
                pseudonymiser.pseudonymise_in_place(black_box(&mut buf));
            })
        });
        g.bench_function(format!("table/{name}"), |b| {
            b.iter(|| {
                for a in &addrs {
                    black_box(pan.anonymise(black_box(*a)));
                }
            })
        });
        if name.ends_with("random") {
            g.bench_function(format!("uncached/{name}"), |b| {
                b.iter(|| {
                    for a in &addrs {
                        black_box(pan.anonymise_uncached(black_box(*a)));
                    }
                })
            });
        }
    }
    g.finish();
    c.bench_function("cryptopan/new (key setup, 16-bit table)", |b| {
        b.iter(|| black_box(CryptoPan::new(black_box(&key))))
    });
}

criterion_group!(benches, cryptopan);
criterion_main!(benches);
