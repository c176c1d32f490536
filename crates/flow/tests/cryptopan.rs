//! Crypto-PAn known answers and properties.
//!
//! Known answers: the sample trace of the reference C++ distribution
//! (`sample_trace_raw.dat` / `sample_trace_sanitized.dat`, key below, 71 distinct IPv4
//! pairs as collected in Yawning Angel's Go package tests), and the pair printed by the
//! pycryptopan/yacryptopan self-test (key = bytes 0..31). Properties (bounded
//! proptests): prefix preservation, bijection, and re-identification inverting.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mamori_flow::{CryptoPan, CryptoPanKey, Pseudonymiser, ReidentificationApproval};
use proptest::prelude::*;

const REFERENCE_KEY: [u8; 32] = [
    21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16, 216, 152, 143, 131, 121,
    121, 101, 39, 98, 87, 76, 45, 42, 132, 34, 2,
];

const REFERENCE_TRACE: &[(&str, &str)] = &[
    ("128.11.68.132", "135.242.180.132"),
    ("129.118.74.4", "134.136.186.123"),
    ("130.132.252.244", "133.68.164.234"),
    ("141.223.7.43", "141.167.8.160"),
    ("141.233.145.108", "141.129.237.235"),
    ("152.163.225.39", "151.140.114.167"),
    ("156.29.3.236", "147.225.12.42"),
    ("165.247.96.84", "162.9.99.234"),
    ("166.107.77.190", "160.132.178.185"),
    ("192.102.249.13", "252.138.62.131"),
    ("192.215.32.125", "252.43.47.189"),
    ("192.233.80.103", "252.25.108.8"),
    ("192.41.57.43", "252.222.221.184"),
    ("193.150.244.223", "253.169.52.216"),
    ("195.205.63.100", "255.186.223.5"),
    ("198.200.171.101", "249.199.68.213"),
    ("198.26.132.101", "249.36.123.202"),
    ("198.36.213.5", "249.7.21.132"),
    ("198.51.77.238", "249.18.186.254"),
    ("199.217.79.101", "248.38.184.213"),
    ("202.49.198.20", "245.206.7.234"),
    ("203.12.160.252", "244.248.163.4"),
    ("204.184.162.189", "243.192.77.90"),
    ("204.202.136.230", "243.178.4.198"),
    ("204.29.20.4", "243.33.20.123"),
    ("205.178.38.67", "242.108.198.51"),
    ("205.188.147.153", "242.96.16.101"),
    ("205.188.248.25", "242.96.88.27"),
    ("205.245.121.43", "242.21.121.163"),
    ("207.105.49.5", "241.118.205.138"),
    ("207.135.65.238", "241.202.129.222"),
    ("207.155.9.214", "241.220.250.22"),
    ("207.188.7.45", "241.255.249.220"),
    ("207.25.71.27", "241.33.119.156"),
    ("207.33.151.131", "241.1.233.131"),
    ("208.147.89.59", "227.237.98.191"),
    ("208.234.120.210", "227.154.67.17"),
    ("208.28.185.184", "227.39.94.90"),
    ("208.52.56.122", "227.8.63.165"),
    ("209.12.231.7", "226.243.167.8"),
    ("209.238.72.3", "226.6.119.243"),
    ("209.246.74.109", "226.22.124.76"),
    ("209.68.60.238", "226.184.220.233"),
    ("209.85.249.6", "226.170.70.6"),
    ("212.120.124.31", "228.135.163.231"),
    ("212.146.8.236", "228.19.4.234"),
    ("212.186.227.154", "228.59.98.98"),
    ("212.204.172.118", "228.71.195.169"),
    ("212.206.130.201", "228.69.242.193"),
    ("216.148.237.145", "235.84.194.111"),
    ("216.157.30.252", "235.89.31.26"),
    ("216.184.159.48", "235.96.225.78"),
    ("216.227.10.221", "235.28.253.36"),
    ("216.254.18.172", "235.7.16.162"),
    ("216.32.132.250", "235.192.139.38"),
    ("216.35.217.178", "235.195.157.81"),
    ("24.0.250.221", "100.15.198.226"),
    ("24.13.62.231", "100.2.192.247"),
    ("24.14.213.138", "100.1.42.141"),
    ("24.5.0.80", "100.9.15.210"),
    ("24.7.198.88", "100.10.6.25"),
    ("24.94.26.44", "100.88.228.35"),
    ("38.15.67.68", "64.3.66.187"),
    ("4.3.88.225", "124.60.155.63"),
    ("63.14.55.111", "95.9.215.7"),
    ("63.195.241.44", "95.179.238.44"),
    ("63.97.7.140", "95.97.9.123"),
    ("64.14.118.196", "0.255.183.58"),
    ("64.34.154.117", "0.221.154.117"),
    ("64.39.15.238", "0.219.7.41"),
    ("10.185.25.118", "117.161.29.118"),
];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn reference_sample_trace() {
    let key = CryptoPanKey::from_bytes(REFERENCE_KEY);
    let pan = CryptoPan::new(&key);
    let mut batch: Vec<IpAddr> = REFERENCE_TRACE.iter().map(|(a, _)| ip(a)).collect();
    Pseudonymiser::new(&key).pseudonymise_in_place(&mut batch);
    for ((raw, sanitized), got) in REFERENCE_TRACE.iter().zip(&batch) {
        assert_eq!(pan.anonymise(ip(raw)), ip(sanitized), "{raw}");
        assert_eq!(pan.anonymise_uncached(ip(raw)), ip(sanitized), "{raw}");
        assert_eq!(*got, ip(sanitized), "{raw} (batch)");
    }
    assert_eq!(REFERENCE_TRACE.len(), 71);
}

#[test]
fn pycryptopan_self_test_pair() {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    let pan = CryptoPan::new(&CryptoPanKey::from_bytes(k));
    assert_eq!(pan.anonymise(ip("192.0.2.1")), ip("2.90.93.17"));
    assert_eq!(
        pan.anonymise(ip("2001:db8::1")),
        ip("dd92:2c44:3fc0:ff1e:7ff9:c7f0:8180:7e00")
    );
}

fn common_prefix(a: u128, b: u128) -> u32 {
    (a ^ b).leading_zeros()
}

fn ext(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn pan() -> &'static CryptoPan {
    static PAN: std::sync::OnceLock<CryptoPan> = std::sync::OnceLock::new();
    PAN.get_or_init(|| CryptoPan::new(&CryptoPanKey::from_bytes(REFERENCE_KEY)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Two addresses sharing exactly a k-bit prefix map to pseudonyms sharing exactly a
    /// k-bit prefix.
    #[test]
    fn prefix_preserving_v4(a in any::<u32>(), b in any::<u32>(), k in 0u32..=32) {
        let mask = u32::MAX.checked_shl(32 - k).unwrap_or(0);
        let b = (a & mask) | (b & !mask);
        let (a, b) = (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)));
        let p = pan();
        let (pa, pb) = (p.anonymise(a), p.anonymise(b));
        let shared = common_prefix(ext(a), ext(b)).min(32);
        prop_assert_eq!(common_prefix(ext(pa), ext(pb)).min(32), shared);
    }

    #[test]
    fn prefix_preserving_v6(a in any::<u128>(), b in any::<u128>(), k in 0u32..=128) {
        let mask = u128::MAX.checked_shl(128 - k).unwrap_or(0);
        let b = (a & mask) | (b & !mask);
        let (a, b) = (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)));
        let p = pan();
        let (pa, pb) = (p.anonymise(a), p.anonymise(b));
        prop_assert_eq!(common_prefix(ext(pa), ext(pb)), common_prefix(ext(a), ext(b)));
    }

    /// Re-identification with a recorded approval returns the original address.
    #[test]
    fn deanonymise_inverts(a in any::<u32>(), b in any::<u128>()) {
        let p = pan();
        let receipt = ReidentificationApproval::recorded("test approval", 1);
        for addr in [IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b))] {
            prop_assert_eq!(p.deanonymise(p.anonymise(addr), &receipt), addr);
        }
    }
}

/// A bijection on a sample: a whole /16 (65,536 addresses) maps onto 65,536 distinct
/// pseudonyms, all inside one /16 (prefix preservation of the shared 16 bits).
#[test]
fn bijection_on_a_slash16() {
    let mut p = Pseudonymiser::new(&CryptoPanKey::from_bytes(REFERENCE_KEY));
    let mut addrs: Vec<IpAddr> = (0u32..65_536)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0xC0A8_0000 | i)))
        .collect();
    p.pseudonymise_in_place(&mut addrs);
    let mut seen: Vec<u32> = addrs
        .iter()
        .map(|a| match a {
            IpAddr::V4(a) => u32::from(*a),
            IpAddr::V6(_) => unreachable!(),
        })
        .collect();
    let top = seen[0] >> 16;
    assert!(seen.iter().all(|a| a >> 16 == top));
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 65_536);
}
