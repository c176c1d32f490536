//! Ledger throughput and proof latency on the real stores (issue 4):
//! - appends per second, batched (1,000 entries per transaction) and one per transaction;
//! - inclusion and consistency proofs at 10⁶ entries, with the number of stored nodes read.
//!
//! SQLite always; PostgreSQL when `MAMORI_TEST_POSTGRES_URL` names a server. The log size
//! for the proof benchmarks is `MAMORI_BENCH_LEDGER_SIZE` (default 1,000,000).
//!
//! `cargo bench -p mamori-oversight --bench ledger`

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark: failures abort, figures are printed

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mamori_core::UserId;
use mamori_core::time::from_millis;
use mamori_ledger::{ConsistencyPlan, InclusionPlan};
use mamori_oversight::entry::Decision;
use mamori_oversight::{Act, Actor, Entry};
use mamori_store::Store;
use std::time::{Duration, Instant};

fn entry(i: u64) -> Entry {
    Entry::new(
        from_millis(1_790_000_000_000 + i as i64).unwrap(),
        Actor {
            org: None,
            user: Some(UserId(7)),
            name: "analyst-7".into(),
        },
        Act::Approval {
            subject: format!("measure:{i}"),
            decision: Decision::Approved,
            reason: "necessary and proportionate".into(),
        },
    )
}

async fn append_batches(store: &Store, from: u64, batches: u64, batch: u64) -> Duration {
    let start = Instant::now();
    for b in 0..batches {
        let first = from + b * batch;
        let es: Vec<Entry> = (first..first + batch).map(entry).collect();
        let mut tx = store.begin().await.unwrap();
        mamori_oversight::append(&mut tx, &es).await.unwrap();
        tx.commit().await.unwrap();
    }
    start.elapsed()
}

async fn size(store: &Store) -> u64 {
    let mut tx = store.begin().await.unwrap();
    let n = tx.ledger_size().await.unwrap();
    tx.commit().await.unwrap();
    n
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let target: u64 = std::env::var("MAMORI_BENCH_LEDGER_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut stores: Vec<(&str, Store, Option<tempfile::TempDir>)> = Vec::new();
    let (sqlite, dir) = rt.block_on(mamori_store::testing::fresh_sqlite());
    stores.push(("sqlite", sqlite, Some(dir)));
    if let Some(pg) = rt.block_on(mamori_store::testing::fresh_postgres()) {
        stores.push(("postgres", pg, None));
    }

    for (name, store, _) in &stores {
        // Fill to the target size, timing it: the sustained batched append rate.
        let took = rt.block_on(append_batches(store, 0, target / 1000, 1000));
        println!(
            "{name}: filled {target} entries in {:.1} s = {:.0} entries/s (batches of 1,000)",
            took.as_secs_f64(),
            target as f64 / took.as_secs_f64()
        );
        let n = rt.block_on(size(store));
        let inc = InclusionPlan::new(n / 3, n).unwrap().nodes().len();
        let con = ConsistencyPlan::new(n / 3, n).unwrap().nodes().len();
        println!(
            "{name}: at {n} entries an inclusion proof reads {inc} stored nodes, a consistency proof {con}"
        );

        let mut g = c.benchmark_group(format!("ledger/{name}"));
        g.sample_size(20).measurement_time(Duration::from_secs(8));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        g.bench_function(BenchmarkId::new("inclusion_proof", n), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let mut tx = store.begin_read().await.unwrap();
                        mamori_oversight::inclusion_proof(&mut tx, next() % n, n)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        g.bench_function(BenchmarkId::new("consistency_proof", n), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let mut tx = store.begin_read().await.unwrap();
                        mamori_oversight::consistency_proof(&mut tx, 1 + next() % (n - 1), n)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        g.throughput(Throughput::Elements(1000));
        g.bench_function("append_batch_1000", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let from = size(store).await;
                    append_batches(store, from, iters, 1000).await
                })
            })
        });
        g.throughput(Throughput::Elements(1));
        g.bench_function("append_one_per_transaction", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let from = size(store).await;
                    append_batches(store, from, iters, 1).await
                })
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
