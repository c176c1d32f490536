//! Crypto-PAn addresses per on-CPU second of this thread (from
//! `/proc/thread-self/schedstat`), so the per-core figure does not depend on how many
//! other processes share the machine. Same address sets as `benches/cryptopan.rs`.
//! `cargo run --release -p mamori-flow --example cryptopan_cpu`
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mamori_flow::{CryptoPan, CryptoPanKey, Pseudonymiser};

fn on_cpu_ns() -> u64 {
    // Example code reads /proc; library code never opens files.
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

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

fn measure(name: &str, addrs: &[IpAddr], mut f: impl FnMut(&mut [IpAddr])) {
    let mut rates = Vec::new();
    let mut buf = addrs.to_vec();
    for _ in 0..7 {
        let rounds = 200;
        let t = on_cpu_ns();
        for _ in 0..rounds {
            buf.copy_from_slice(addrs);
            f(&mut buf);
        }
        let ns = (on_cpu_ns() - t).max(1);
        rates.push((rounds * addrs.len()) as f64 / (ns as f64 / 1e9));
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<40} median {:>6.2} M addresses per CPU-second",
        rates[3] / 1e6
    );
}

fn main() {
    let key = CryptoPanKey::from_bytes(*b"mamori bench key, 32 bytes long!");
    let pan = CryptoPan::new(&key);
    let mut rng = Rng(42);
    let n = 4096;
    let random4: Vec<IpAddr> = (0..n)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next() as u32)))
        .collect();
    let nets4: Vec<u32> = (0..4096).map(|_| (rng.next() as u32) & !0xff).collect();
    let sub4: Vec<IpAddr> = (0..n)
        .map(|_| {
            IpAddr::V4(Ipv4Addr::from(
                nets4[rng.next() as usize % 4096] | (rng.next() as u32 & 0xff),
            ))
        })
        .collect();
    let random6: Vec<IpAddr> = (0..n)
        .map(|_| {
            IpAddr::V6(Ipv6Addr::from(
                u128::from(rng.next()) << 64 | u128::from(rng.next()),
            ))
        })
        .collect();
    let nets6: Vec<u64> = (0..4096).map(|_| rng.next()).collect();
    let sub6: Vec<IpAddr> = (0..n)
        .map(|_| {
            IpAddr::V6(Ipv6Addr::from(
                u128::from(nets6[rng.next() as usize % 4096]) << 64 | u128::from(rng.next()),
            ))
        })
        .collect();
    for (name, set) in [
        ("ipv4-random", &random4),
        ("ipv4-subscriber", &sub4),
        ("ipv6-random", &random6),
        ("ipv6-subscriber", &sub6),
    ] {
        let mut p = Pseudonymiser::new(&key);
        measure(&format!("batch/{name}"), set, |b| {
            p.pseudonymise_in_place(b)
        });
        measure(&format!("table/{name}"), set, |b| {
            for a in b.iter_mut() {
                *a = pan.anonymise(*a);
            }
        });
        measure(&format!("uncached/{name}"), set, |b| {
            for a in b.iter_mut() {
                *a = pan.anonymise_uncached(*a);
            }
        });
    }
}
