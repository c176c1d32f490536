//! Country lookups/s on the real country files, and selection of a batch of real records
//! (Zeek conn.log + Argus binetflow from ../shared/data): classify, drop, pseudonymise,
//! aggregate. Figures and commands: docs/benchmarks/cryptopan.md.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::hint::black_box;
use std::io::BufReader;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mamori_flow::{
    ArgusReader, ConcernList, CryptoPanKey, FlowBatch, GeoTable, GeoTableBuilder, Observed,
    SelectionPolicy, Selector, ZeekConnReader,
};

fn geo() -> Option<GeoTable> {
    let root = common::test_data("geo")?;
    let mut b = GeoTableBuilder::new();
    b.add_rir_delegations(
        File::open(root.join("apnic-delegated-2010/delegated-apnic-latest")).unwrap(),
    )
    .unwrap();
    for country in ["jp", "us", "cn", "kr", "ru"] {
        for family in ["ipv4", "ipv6"] {
            let path = root
                .join("country-ip-blocks")
                .join(family)
                .join(format!("{country}.cidr"));
            b.add_cidr_list(File::open(path).unwrap(), country.parse().unwrap())
                .unwrap();
        }
    }
    Some(b.build())
}

fn bench(c: &mut Criterion) {
    let Some(geo) = geo() else {
        return;
    };
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let v4: Vec<IpAddr> = (0..4096)
        .map(|_| IpAddr::V4(Ipv4Addr::from(next() as u32)))
        .collect();
    // IPv6 inside 2000::/3 where the allocations are.
    let v6: Vec<IpAddr> = (0..4096)
        .map(|_| {
            IpAddr::V6(Ipv6Addr::from(
                (u128::from(next()) << 64 | u128::from(next())) >> 3 | 1 << 125,
            ))
        })
        .collect();
    let mut g = c.benchmark_group("geo");
    g.throughput(Throughput::Elements(4096));
    g.bench_function("country/ipv4-random", |b| {
        b.iter(|| v4.iter().filter(|a| geo.country(**a).is_some()).count())
    });
    g.bench_function("country/ipv6-random", |b| {
        b.iter(|| v6.iter().filter(|a| geo.country(**a).is_some()).count())
    });
    g.finish();

    let mut records = FlowBatch::default();
    for rel in [
        "botnet/sdt-008-zeek-mixed/conn.log.labeled",
        "botnet/sdt-010-zeek-mixed/conn.log.labeled",
    ] {
        let Some(path) = common::test_data(rel) else {
            return;
        };
        let mut r = ZeekConnReader::new(BufReader::new(File::open(path).unwrap())).unwrap();
        while r.read_batch(&mut records, 4096).unwrap() > 0 {}
    }
    if let Some(path) = common::test_data("botnet/slips-argus-binetflow/test2-malicious.binetflow")
    {
        let mut r = ArgusReader::new(BufReader::new(File::open(path).unwrap())).unwrap();
        while r.read_batch(&mut records, 4096).unwrap() > 0 {}
    }
    let input = records.records;
    let policy = SelectionPolicy {
        subscriber_prefixes: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect(),
        ..SelectionPolicy::default()
    };
    let mut selector = Selector::new(policy, &CryptoPanKey::from_bytes([9; 32])).unwrap();
    let concerns = ConcernList::default();
    let mut batch = FlowBatch::with_capacity(input.len());
    let mut g = c.benchmark_group("selection");
    g.throughput(Throughput::Elements(input.len() as u64));
    g.bench_function("process/zeek+argus", |b| {
        b.iter(|| {
            batch.records.clear();
            batch.records.extend_from_slice(&input);
            black_box(selector.process(&mut batch, &geo, &concerns, 0));
            if selector.aggregate_count() > 100_000 {
                black_box(selector.take_aggregates());
            }
        })
    });
    // What the sensor runs: every kept record also handed to the detectors, with which
    // of its ends are pseudonyms (the buffers reused).
    let mut observed = Observed::default();
    g.bench_function("process_observed/zeek+argus", |b| {
        b.iter(|| {
            batch.records.clear();
            batch.records.extend_from_slice(&input);
            observed.clear();
            black_box(selector.process_observed(
                &mut batch,
                &geo,
                &concerns,
                0,
                Some(&mut observed),
            ));
            if selector.aggregate_count() > 100_000 {
                black_box(selector.take_aggregates());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
