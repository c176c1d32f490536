//! Detector hot paths: beacon scoring of 288-point series (a 5-minute beacon over a
//! day), exact-address and CIDR indicator lookups with 10⁶ indicators, and the whole
//! detector set over the largest labelled file. See docs/benchmarks/detect.md for figures and
//! the commands.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

#[path = "../../flow/tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::io::BufReader;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mamori_detect::{
    BeaconConfig, DetectConfig, IndicatorSetBuilder, PairKey, PairState, ScanProfile, Scratch,
    run_all,
};
use mamori_flow::{FlowBatch, ZeekConnReader};

/// splitmix64, fixed seeds: the benchmark inputs are the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

const T0: i64 = 1_700_000_000_000;

/// `pairs` sketches of 288 connections each: periodic (300 s ± 5 s) or uniformly random;
/// `sampled` marks them as seen through packet sampling (enables the phase test).
fn series(pairs: usize, periodic: bool, sampled: bool) -> Vec<PairState> {
    let mut rng = Rng(7);
    (0..pairs)
        .map(|_| {
            let mut starts: Vec<i64> = (0..288)
                .map(|k| {
                    if periodic {
                        T0 + k * 300_000 + (rng.next() % 10_000) as i64 - 5_000
                    } else {
                        T0 + (rng.next() % 86_400_000) as i64
                    }
                })
                .collect();
            starts.sort_unstable();
            let mut p = PairState::new(starts[0]);
            if sampled {
                p.mark_sampled();
            }
            for (i, s) in starts.iter().enumerate() {
                p.observe(*s, s + 800, 40_000 + i as u16, 400 + rng.next() % 8, 2_000);
            }
            p
        })
        .collect()
}

fn beacon_scoring(c: &mut Criterion) {
    println!(
        "state bytes per tracked pair: PairState {} + PairKey {} = {}",
        std::mem::size_of::<PairState>(),
        std::mem::size_of::<PairKey>(),
        std::mem::size_of::<PairState>() + std::mem::size_of::<PairKey>()
    );
    let cfg = BeaconConfig::default();
    let window = (T0, T0 + 86_400_000);
    let mut g = c.benchmark_group("beacon_score_288pt");
    for (name, periodic, sampled) in [
        ("periodic", true, false),
        ("random", false, false),
        ("random_sampled_phase_test", false, true),
    ] {
        let pairs = series(1_000, periodic, sampled);
        g.throughput(Throughput::Elements(pairs.len() as u64));
        g.bench_function(name, |b| {
            let mut scratch = Scratch::default();
            b.iter(|| {
                let mut s = 0.0;
                for p in &pairs {
                    if let Some(x) = p.score(window, &cfg, &mut scratch) {
                        s += x.beacon;
                    }
                }
                black_box(s)
            })
        });
    }
    g.finish();
}

fn indicator_lookups(c: &mut Criterion) {
    const N: usize = 1_000_000;
    const Q: usize = 1 << 16;
    let mut rng = Rng(11);
    let mut exact = IndicatorSetBuilder::new();
    let mut listed = Vec::with_capacity(N);
    for _ in 0..N {
        let a = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
        listed.push(a);
        exact.add_address(a, "bench").unwrap();
    }
    let exact = exact.build();
    // Queries: half listed, half random (mostly unlisted).
    let queries: Vec<IpAddr> = (0..Q)
        .map(|i| {
            if i % 2 == 0 {
                listed[(rng.next() % N as u64) as usize]
            } else {
                IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
            }
        })
        .collect();

    let mut cidr = IndicatorSetBuilder::new();
    let mut nets = Vec::with_capacity(N);
    for _ in 0..N {
        let len = 12 + (rng.next() % 21) as u8; // /12 … /32
        let a = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
        nets.push(a);
        if len == 32 {
            cidr.add_prefix(a, 31, "bench").unwrap();
        } else {
            cidr.add_prefix(a, len, "bench").unwrap();
        }
    }
    let cidr = cidr.build();
    let cidr_queries: Vec<IpAddr> = (0..Q)
        .map(|i| {
            if i % 2 == 0 {
                nets[(rng.next() % N as u64) as usize]
            } else {
                IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
            }
        })
        .collect();

    let mut g = c.benchmark_group("indicator_lookup_1e6");
    g.throughput(Throughput::Elements(Q as u64));
    g.bench_function("exact_v4", |b| {
        b.iter(|| queries.iter().filter(|q| exact.contains_exact(**q)).count())
    });
    g.bench_function("cidr_v4_lpm", |b| {
        b.iter(|| {
            cidr_queries
                .iter()
                .filter(|q| cidr.lookup_prefix(**q).is_some())
                .count()
        })
    });
    g.finish();
}

fn whole_file(c: &mut Criterion) {
    let Some(path) = common::test_data("botnet/sdt-002-port-scanning/conn.log") else {
        return;
    };
    let mut r = ZeekConnReader::new(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    let mut batch = FlowBatch::default();
    while r.read_batch(&mut batch, 4096).unwrap() > 0 {}
    let records = batch.records;
    let mut cfg = DetectConfig::default();
    cfg.scan.profile = ScanProfile::Slips;
    let mut g = c.benchmark_group("run_all");
    g.sample_size(20);
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("sdt-002-conn.log", |b| {
        b.iter(|| run_all(records.iter().copied(), &cfg).len())
    });
    g.finish();
}

criterion_group!(benches, beacon_scoring, indicator_lookups, whole_file);
criterion_main!(benches);
