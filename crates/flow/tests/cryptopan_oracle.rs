//! Crypto-PAn is bit-exact with an independent implementation: the PyPI package
//! `yacryptopan`, driven through `tests/cryptopan_oracle.py` (issue 6 acceptance).
//!
//! Without `yacryptopan` the test says so and passes; with `MAMORI_REQUIRE_TEST_DATA=1`
//! (CI, which installs it) it fails instead, so CI cannot skip the comparison.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use mamori_flow::{CryptoPan, CryptoPanKey, Pseudonymiser};

const KEYS: usize = 4;
const PER_FAMILY_PER_KEY: usize = 2_500;

/// splitmix64: a seeded generator, so a failure names reproducible inputs.
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

// A test starting the independent implementation is the one place a test needs a process.
#[allow(clippy::disallowed_methods)]
fn python() -> Command {
    Command::new("python3")
}

fn yacryptopan_available() -> bool {
    let ok = python()
        .args(["-c", "import yacryptopan"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if std::env::var("MAMORI_REQUIRE_TEST_DATA").as_deref() == Ok("1") {
        panic!("yacryptopan is required (MAMORI_REQUIRE_TEST_DATA=1): pip install yacryptopan");
    }
    println!("skipping: yacryptopan not installed (pip install yacryptopan)");
    false
}

fn oracle(key_hex: &str, addrs: &[IpAddr]) -> Vec<IpAddr> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cryptopan_oracle.py");
    let mut child = python()
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = format!("{key_hex}\n");
    for a in addrs {
        input.push_str(&a.to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "oracle failed");
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|l| {
            let v = u128::from_str_radix(l, 16).unwrap();
            if l.len() == 8 {
                IpAddr::V4(Ipv4Addr::from(v as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(v))
            }
        })
        .collect()
}

/// Random addresses, half of them near an earlier one (same /24 or /64, or a shared
/// prefix of random length), so the caches and the shared-prefix paths are exercised.
fn addresses(rng: &mut Rng) -> Vec<IpAddr> {
    let mut v4: Vec<u32> = Vec::new();
    let mut v6: Vec<u128> = Vec::new();
    for i in 0..PER_FAMILY_PER_KEY {
        let fresh4 = rng.next() as u32;
        let fresh6 = u128::from(rng.next()) << 64 | u128::from(rng.next());
        if i % 2 == 1 && !v4.is_empty() {
            let base4 = v4[rng.next() as usize % v4.len()];
            let base6 = v6[rng.next() as usize % v6.len()];
            let k4 = (rng.next() % 33) as u32;
            let k6 = (rng.next() % 129) as u32;
            let m4 = u32::MAX.checked_shl(32 - k4).unwrap_or(0);
            let m6 = u128::MAX.checked_shl(128 - k6).unwrap_or(0);
            v4.push(base4 & m4 | fresh4 & !m4);
            v6.push(base6 & m6 | fresh6 & !m6);
        } else {
            v4.push(fresh4);
            v6.push(fresh6);
        }
    }
    v4.into_iter()
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
        .chain(v6.into_iter().map(|a| IpAddr::V6(Ipv6Addr::from(a))))
        .collect()
}

#[test]
fn bit_exact_with_yacryptopan() {
    if !yacryptopan_available() {
        return;
    }
    let mut rng = Rng(0x6d61_6d6f_7269);
    let (mut compared4, mut compared6) = (0usize, 0usize);
    for k in 0..KEYS {
        let mut key = [0u8; 32];
        for b in key.iter_mut() {
            *b = rng.next() as u8;
        }
        let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let key = CryptoPanKey::from_bytes(key);
        let addrs = addresses(&mut rng);
        let want = oracle(&key_hex, &addrs);
        assert_eq!(want.len(), addrs.len(), "oracle answered every address");

        // The batch path with small caches (evictions), the single-address path, and
        // for a sample the table-free reference path.
        let mut batch = addrs.clone();
        Pseudonymiser::with_cache_slots(&key, 64).pseudonymise_in_place(&mut batch);
        let pan = CryptoPan::new(&key);
        for (i, ((a, w), b)) in addrs.iter().zip(&want).zip(&batch).enumerate() {
            assert_eq!(b, w, "key #{k} ({key_hex}) batch path: {a}");
            assert_eq!(pan.anonymise(*a), *w, "key #{k} ({key_hex}) single: {a}");
            if i % 50 == 0 {
                assert_eq!(pan.anonymise_uncached(*a), *w, "key #{k} uncached: {a}");
            }
            match a {
                IpAddr::V4(_) => compared4 += 1,
                IpAddr::V6(_) => compared6 += 1,
            }
        }
    }
    println!("yacryptopan agrees on {compared4} IPv4 and {compared6} IPv6 addresses, {KEYS} keys");
    assert!(compared4 >= 10_000 && compared6 >= 10_000);
}
