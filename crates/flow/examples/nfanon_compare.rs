//! Side by side with `nfanon` (Debian `nfdump`): the addresses of the same records,
//! pseudonymised by mamori, checked against nfanon's output, and timed.
//!
//! Usage (the whole procedure, nfanon timed in the same run: `BENCH_CRYPTOPAN.md`):
//! `cargo run --release -p mamori-flow --example nfanon_compare -- KEYHEX orig.txt anon.txt REPS`
//! where `orig.txt`/`anon.txt` are `nfdump -q -o "fmt:%sa %da"` of the input and of
//! nfanon's output. Prints the number of records whose two addresses match nfanon's and
//! the median records/s (two addresses per record) of REPS runs of each mamori path.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::net::IpAddr;
use std::time::Instant;

use mamori_flow::{CryptoPan, CryptoPanKey, Pseudonymiser};

fn pairs(path: &str) -> Vec<IpAddr> {
    // The example reads its own small inputs; library code never opens files.
    let text = std::fs::read_to_string(path).unwrap();
    text.split_whitespace()
        .map(|a| a.parse().unwrap())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let key = CryptoPanKey::from_hex(args[1].trim_start_matches("0x")).unwrap();
    let orig = pairs(&args[2]);
    let anon = if args[3] == "/dev/null" {
        Vec::new()
    } else {
        pairs(&args[3])
    };
    let reps: usize = args.get(4).map_or(5, |r| r.parse().unwrap());
    let records = orig.len() / 2;

    // Bit-exactness with nfanon on every address.
    let mut check = orig.clone();
    Pseudonymiser::new(&key).pseudonymise_in_place(&mut check);
    let matching = check
        .chunks(2)
        .zip(anon.chunks(2))
        .filter(|(a, b)| a == b)
        .count();
    println!("records: {records}; identical to nfanon: {matching}");

    let mut batch = Vec::new();
    let mut table = Vec::new();
    for _ in 0..reps {
        // A fresh pseudonymiser per run: cold caches, like a fresh nfanon process.
        let mut p = Pseudonymiser::new(&key);
        let mut buf = orig.clone();
        let t = Instant::now();
        // In batches of 1,024 records, as the sensor hands them over.
        for chunk in buf.chunks_mut(2048) {
            p.pseudonymise_in_place(chunk);
        }
        batch.push(records as f64 / t.elapsed().as_secs_f64());
        std::hint::black_box(&buf);

        let pan = CryptoPan::new(&key);
        let t = Instant::now();
        for a in &orig {
            std::hint::black_box(pan.anonymise(*a));
        }
        table.push(records as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "mamori batch (table + prefix cache): median {:.0} records/s over {reps} runs: {batch:.0?}",
        median(batch.clone())
    );
    println!(
        "mamori table only (one address per call): median {:.0} records/s: {table:.0?}",
        median(table.clone())
    );
}
