//! Proof generation and verification at 10^6 leaves with the in-memory node source, plus
//! the number of stored nodes each proof reads (the figure that matters once the nodes are
//! database rows).
//!
//! Run: `cargo bench -p mamori-ledger --bench proofs`

// A bench reports on stdout; that is its job.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::cell::Cell;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mamori_ledger::{
    ConsistencyProof, Frontier, Hash, InclusionProof, MemoryTree, NodeId, NodeSource, leaf_hash,
    prove_consistency, prove_inclusion, tree_root,
};

const SIZE: u64 = 1_000_000;
const SAMPLES: usize = 1024;

/// Counts reads so the bench can report rows per proof.
struct Counting<'a> {
    inner: &'a MemoryTree,
    reads: Cell<u64>,
    calls: Cell<u64>,
}

impl NodeSource for Counting<'_> {
    type Error = mamori_ledger::Error;

    fn node(&self, id: NodeId) -> Result<Hash, Self::Error> {
        self.reads.set(self.reads.get() + 1);
        self.inner.node(id)
    }

    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        self.calls.set(self.calls.get() + 1);
        ids.iter().map(|&id| self.node(id)).collect()
    }
}

/// Deterministic spread of positions (splitmix64), so runs are comparable.
fn positions(n: usize, modulus: u64) -> Vec<u64> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % modulus
        })
        .collect()
}

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_be_bytes())
}

fn build() -> MemoryTree {
    let mut tree = MemoryTree::new();
    for i in 0..SIZE {
        tree.push_hash(leaf(i)).unwrap();
    }
    tree
}

fn report_reads(tree: &MemoryTree) {
    let counting = Counting {
        inner: tree,
        reads: Cell::new(0),
        calls: Cell::new(0),
    };
    let stats = |label: &str, f: &mut dyn FnMut(u64)| {
        let (mut min, mut max, mut total) = (u64::MAX, 0, 0);
        for p in positions(SAMPLES, SIZE) {
            let before = counting.reads.get();
            f(p);
            let n = counting.reads.get() - before;
            min = min.min(n);
            max = max.max(n);
            total += n;
        }
        println!(
            "node reads per {label} at {SIZE} leaves over {SAMPLES} positions: min {min}, mean {:.1}, max {max}",
            total as f64 / SAMPLES as f64
        );
    };
    stats("inclusion proof", &mut |i| {
        prove_inclusion(&counting, i, SIZE).unwrap();
    });
    stats("consistency proof", &mut |m| {
        prove_consistency(&counting, m, SIZE).unwrap();
    });
    stats("tree head (historic size)", &mut |m| {
        tree_root(&counting, m + 1).unwrap();
    });
    println!(
        "batched fetches: {} calls to NodeSource::nodes for {} answers (one per answer)",
        counting.calls.get(),
        3 * SAMPLES
    );
}

fn benches(c: &mut Criterion) {
    let tree = build();
    let root = tree.root().unwrap();
    report_reads(&tree);

    let indices = positions(SAMPLES, SIZE);
    let inclusion: Vec<InclusionProof> = indices
        .iter()
        .map(|&i| prove_inclusion(&tree, i, SIZE).unwrap())
        .collect();
    let consistency: Vec<(ConsistencyProof, Hash)> = indices
        .iter()
        .map(|&m| {
            (
                prove_consistency(&tree, m, SIZE).unwrap(),
                tree_root(&tree, m).unwrap(),
            )
        })
        .collect();

    let mut group = c.benchmark_group("ledger_1e6");
    let mut k = 0usize;
    group.bench_function("inclusion_prove", |b| {
        b.iter(|| {
            k = (k + 1) % SAMPLES;
            black_box(prove_inclusion(&tree, indices[k], SIZE).unwrap())
        })
    });
    group.bench_function("inclusion_verify", |b| {
        b.iter(|| {
            k = (k + 1) % SAMPLES;
            let p = &inclusion[k];
            p.verify(&leaf(p.index), &root).unwrap();
        })
    });
    group.bench_function("consistency_prove", |b| {
        b.iter(|| {
            k = (k + 1) % SAMPLES;
            black_box(prove_consistency(&tree, indices[k], SIZE).unwrap())
        })
    });
    group.bench_function("consistency_verify", |b| {
        b.iter(|| {
            k = (k + 1) % SAMPLES;
            let (p, old) = &consistency[k];
            p.verify(old, &root).unwrap();
        })
    });
    // What an appender pays per entry once it holds the frontier (batched appends).
    group.bench_function("append_via_frontier", |b| {
        let mut frontier = Frontier::load(&tree, SIZE).unwrap();
        let mut written = Vec::with_capacity(64);
        let mut i = SIZE;
        b.iter(|| {
            written.clear();
            frontier.push(leaf(i), &mut written).unwrap();
            i += 1;
            black_box(written.len())
        })
    });
    group.finish();
}

criterion_group!(proofs, benches);
criterion_main!(proofs);
