//! Country lookup on the real geolocation files in ../shared/data/geo: every record's
//! first and last address map to the record's own country, and well-known allocations
//! named in the files (1.0.16.0/20 JP, 133.0.0.0/8 JP, 8.0.0.0/9 US, 2001:200::/32 JP)
//! map as the files say.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mamori_flow::{CountryCode, GeoTable, GeoTableBuilder};

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// (first, last, country) of every prefix in a CIDR list, read independently of the
/// library.
fn cidr_records(text: &str, country: &str) -> Vec<(IpAddr, IpAddr, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (a, len) = l.trim().split_once('/').unwrap();
            let len: u32 = len.parse().unwrap();
            match a.parse::<IpAddr>().unwrap() {
                IpAddr::V4(a) => {
                    let host = u32::MAX.checked_shr(len).unwrap_or(0);
                    let first = u32::from(a);
                    (
                        IpAddr::V4(a),
                        IpAddr::V4(Ipv4Addr::from(first | host)),
                        country.to_owned(),
                    )
                }
                IpAddr::V6(a) => {
                    let host = u128::MAX.checked_shr(len).unwrap_or(0);
                    (
                        IpAddr::V6(a),
                        IpAddr::V6(Ipv6Addr::from(u128::from(a) | host)),
                        country.to_owned(),
                    )
                }
            }
        })
        .collect()
}

#[test]
fn country_ip_blocks_every_prefix_maps_to_its_country() {
    let Some(root) = common::test_data("geo/country-ip-blocks") else {
        return;
    };
    let mut builder = GeoTableBuilder::new();
    let mut expected = Vec::new();
    for country in ["jp", "us", "cn", "kr", "ru"] {
        for family in ["ipv4", "ipv6"] {
            let path = root.join(family).join(format!("{country}.cidr"));
            let report = builder
                .add_cidr_list(File::open(&path).unwrap(), cc(country))
                .unwrap();
            assert_eq!(report.malformed, 0, "{}", path.display());
            let text = std::fs::read_to_string(&path).unwrap();
            let records = cidr_records(&text, &country.to_uppercase());
            assert_eq!(
                (report.ipv4_prefixes + report.ipv6_prefixes) as usize,
                records.len()
            );
            expected.extend(records);
        }
    }
    let table = builder.build();
    for (first, last, country) in &expected {
        assert_eq!(table.country(*first), Some(cc(country)), "{first}");
        assert_eq!(table.country(*last), Some(cc(country)), "{last}");
    }
    // From the files: 1.0.16.0/20 and 133.0.0.0/8 in jp.cidr, 8.0.0.0/9 in us.cidr,
    // 2001:200::/32 in ipv6/jp.cidr.
    assert_eq!(table.country(ip("1.0.16.1")), Some(cc("JP")));
    assert_eq!(table.country(ip("133.11.0.1")), Some(cc("JP")));
    assert_eq!(table.country(ip("8.8.8.8")), Some(cc("US")));
    assert_eq!(table.country(ip("2001:200::1")), Some(cc("JP")));
    // Nothing covers private addresses.
    assert_eq!(table.country(ip("10.0.0.1")), None);
    assert_eq!(table.country(ip("192.168.1.1")), None);
    println!(
        "{} prefixes checked; table {:?}",
        expected.len(),
        table.ranges()
    );
}

#[test]
fn apnic_2010_delegations_every_record_maps_to_its_country() {
    let Some(path) = common::test_data("geo/apnic-delegated-2010/delegated-apnic-latest") else {
        return;
    };
    let mut builder = GeoTableBuilder::new();
    let report = builder
        .add_rir_delegations(File::open(&path).unwrap())
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    // Independently: the records the file holds.
    let mut v4 = Vec::new();
    let mut v6 = 0u64;
    let mut table_expect = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 7 || f[1] == "*" || f[1].is_empty() {
            continue;
        }
        match f[2] {
            "ipv4" => {
                let start = u32::from(f[3].parse::<Ipv4Addr>().unwrap());
                let count: u32 = f[4].parse().unwrap();
                v4.push(());
                table_expect.push((
                    IpAddr::V4(Ipv4Addr::from(start)),
                    IpAddr::V4(Ipv4Addr::from(start + (count - 1))),
                    f[1].to_owned(),
                ));
            }
            "ipv6" => {
                v6 += 1;
                let start = u128::from(f[3].parse::<Ipv6Addr>().unwrap());
                let len: u32 = f[4].parse().unwrap();
                let host = u128::MAX.checked_shr(len).unwrap_or(0);
                table_expect.push((
                    IpAddr::V6(Ipv6Addr::from(start)),
                    IpAddr::V6(Ipv6Addr::from(start | host)),
                    f[1].to_owned(),
                ));
            }
            _ => {}
        }
    }
    assert_eq!(report.malformed, 0);
    assert_eq!(report.ipv6_prefixes, v6);
    // Counts that are not an aligned power of two become several prefixes.
    assert!(report.ipv4_prefixes >= v4.len() as u64);
    let table: GeoTable = builder.build();
    for (first, last, country) in &table_expect {
        assert_eq!(table.country(*first), Some(cc(country)), "{first}");
        assert_eq!(table.country(*last), Some(cc(country)), "{last}");
    }
    // Lines of the file: "apnic|JP|ipv4|133.0.0.0|16777216|19970301|allocated",
    // "apnic|JP|ipv6|2001:200::|35|19990813|allocated".
    assert_eq!(table.country(ip("133.255.255.255")), Some(cc("JP")));
    assert_eq!(table.country(ip("2001:200:1fff:ffff::1")), Some(cc("JP")));
    println!("{} IPv4 and {} IPv6 records checked", v4.len(), v6);
}

mod lpm {
    use super::*;
    use proptest::prelude::*;

    const CODES: [&str; 4] = ["JP", "US", "CN", "KR"];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The flattened table answers like a naive longest-prefix match (the later of
        /// two equal prefixes wins), on addresses inside a small space so prefixes nest.
        #[test]
        fn table_equals_naive_longest_prefix_match(
            prefixes in proptest::collection::vec((any::<u8>(), 24u8..=32, 0usize..4), 0..40),
            probes in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            let base = 0xC000_0200u32 & !0xff; // 192.0.2.0/24
            let mut b = GeoTableBuilder::new();
            for (host, len, c) in &prefixes {
                b.add_prefix(IpAddr::V4(Ipv4Addr::from(base | u32::from(*host))), *len, cc(CODES[*c]));
            }
            b.add_prefix(ip("192.0.0.0"), 16, cc("RU"));
            let t = b.build();
            for p in probes {
                let a = base | u32::from(p);
                let mut best: Option<(u8, &str)> = Some((16, "RU"));
                for (host, len, c) in &prefixes {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                    if (base | u32::from(*host)) & mask == a & mask
                        && best.is_none_or(|(l, _)| *len >= l)
                    {
                        best = Some((*len, CODES[*c]));
                    }
                }
                prop_assert_eq!(t.country(IpAddr::V4(Ipv4Addr::from(a))), best.map(|(_, c)| cc(c)));
            }
            prop_assert_eq!(t.country(ip("192.1.0.0")), None);
        }
    }
}
