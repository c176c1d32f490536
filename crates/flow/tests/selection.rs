//! Selection on the real captures and logs in ../shared/data (Stratosphere Zeek
//! `conn.log`s and Argus `binetflow`s, read with our decoders), with the real country
//! files: after selection no subscriber or other non-foreign address appears in clear in
//! the kept records or the aggregates (CI-4, invariant 2), every domestic↔domestic flow
//! is dropped and counted per reason (CI-2, invariant 3), and every record is accounted
//! for. Expected classes are computed here from the policy's definition, not taken from
//! the selector.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::net::IpAddr;

use ipnet::IpNet;
use mamori_flow::{
    ArgusReader, Concern, ConcernList, CountryCode, CryptoPan, CryptoPanKey, DropReason, FlowBatch,
    FlowRecord, GeoTable, GeoTableBuilder, ReidentificationApproval, SelectionPolicy, Selector,
    ZeekConnReader,
};

const ZEEK: [&str; 5] = [
    "botnet/sdt-002-port-scanning/conn.log",
    "botnet/sdt-003-androidtester-rat/conn.log",
    "botnet/sdt-005-simda-dga/conn.log",
    "botnet/sdt-008-zeek-mixed/conn.log.labeled",
    "botnet/sdt-010-zeek-mixed/conn.log.labeled",
];
const ARGUS: [&str; 5] = [
    "botnet/slips-argus-binetflow/test2-malicious.binetflow",
    "botnet/slips-argus-binetflow/test3-mixed.binetflow",
    "botnet/slips-argus-binetflow/test4-malicious.binetflow",
    "botnet/slips-argus-binetflow/test5-mixed.binetflow",
    "botnet/slips-argus-binetflow/test11-portscan.binetflow",
];

/// The lab networks of these captures are private: they play the subscribers.
const SUBSCRIBERS: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

fn example_policy() -> SelectionPolicy {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/selection.example.toml"
    );
    SelectionPolicy::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn example_policy_file_parses() {
    let p = example_policy();
    assert_eq!(p.home_country, "JP".parse::<CountryCode>().unwrap());
    assert_eq!(p.subscriber_prefixes.len(), 4);
    assert_eq!(p.drop_rules.len(), 1);
    assert_eq!(p.drop_rules[0].ports, vec![123]);
}

fn geo() -> Option<GeoTable> {
    let root = common::test_data("geo")?;
    let mut b = GeoTableBuilder::new();
    b.add_rir_delegations(
        File::open(root.join("apnic-delegated-2010/delegated-apnic-latest")).unwrap(),
    )
    .unwrap();
    // Added after APNIC: the newer lists win where both name the same prefix.
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

fn records() -> Option<Vec<FlowRecord>> {
    let mut batch = FlowBatch::default();
    for rel in ZEEK {
        let path = common::test_data(rel)?;
        let mut r = ZeekConnReader::new(BufReader::new(File::open(path).unwrap())).unwrap();
        while r.read_batch(&mut batch, 4096).unwrap() > 0 {}
    }
    for rel in ARGUS {
        let path = common::test_data(rel)?;
        let mut r = ArgusReader::new(BufReader::new(File::open(path).unwrap())).unwrap();
        while r.read_batch(&mut batch, 4096).unwrap() > 0 {}
    }
    Some(batch.records)
}

#[test]
fn selection_on_real_logs_keeps_no_clear_domestic_address_and_counts_every_drop() {
    let (Some(geo), Some(input)) = (geo(), records()) else {
        return;
    };
    let subscribers: Vec<IpNet> = SUBSCRIBERS.iter().map(|s| s.parse().unwrap()).collect();
    let jp: CountryCode = "JP".parse().unwrap();
    // Independently of the selector: an end is foreign iff it is outside the subscriber
    // prefixes and has a country other than JP (unknown counts as domestic: default).
    let foreign = |a: IpAddr| {
        !subscribers.iter().any(|n| n.contains(&a)) && geo.country(a).is_some_and(|c| c != jp)
    };
    let expected_dd = input
        .iter()
        .filter(|r| !foreign(r.src_addr) && !foreign(r.dst_addr))
        .count() as u64;
    let expected_kept = input.len() as u64 - expected_dd;
    let clear_domestic: HashSet<IpAddr> = input
        .iter()
        .flat_map(|r| [r.src_addr, r.dst_addr])
        .filter(|a| !foreign(*a))
        .collect();
    // A concern: the first foreign destination in the input, so some flows stay per-flow.
    let concern_server = input
        .iter()
        .map(|r| r.dst_addr)
        .find(|a| foreign(*a))
        .unwrap();
    let concerns = ConcernList::new(vec![Concern {
        prefix: IpNet::from(concern_server),
        reason: "test: first foreign server in the logs".into(),
        expires_ms: i64::MAX,
    }]);

    let policy = SelectionPolicy {
        subscriber_prefixes: subscribers.clone(),
        ..SelectionPolicy::default()
    };
    let key = CryptoPanKey::from_bytes(*b"selection test key, 32 bytes ok!");
    let mut selector = Selector::new(policy, &key).unwrap();
    let mut kept = Vec::new();
    for chunk in input.chunks(1000) {
        let mut batch = FlowBatch {
            records: chunk.to_vec(),
            ..FlowBatch::default()
        };
        selector.process(&mut batch, &geo, &concerns, 0);
        kept.extend(batch.records);
    }
    let aggregates = selector.take_aggregates();
    let counts = selector.counts().clone();

    println!(
        "{} records: {} domestic-domestic dropped, {} aggregated into {} server aggregates, {} kept per flow, {} addresses pseudonymised",
        input.len(),
        counts.dropped(DropReason::DomesticDomestic),
        counts.aggregated,
        aggregates.len(),
        counts.kept_per_flow,
        counts.pseudonymised
    );
    assert!(
        expected_dd > 0 && expected_kept > 0,
        "the data has both kinds"
    );
    assert_eq!(counts.seen, input.len() as u64);
    assert_eq!(counts.dropped(DropReason::DomesticDomestic), expected_dd);
    assert_eq!(counts.dropped_total(), expected_dd);
    assert_eq!(counts.aggregated + counts.kept_per_flow, expected_kept);
    assert_eq!(
        aggregates.iter().map(|a| a.flows).sum::<u64>(),
        counts.aggregated
    );
    assert!(counts.kept_per_flow > 0);

    // No clear domestic address in the aggregates: every server is foreign.
    for a in &aggregates {
        assert!(
            foreign(a.server),
            "aggregate server {} is not foreign",
            a.server
        );
        assert!(!clear_domestic.contains(&a.server));
    }
    // Per-flow records: only the concern's flows; each non-foreign end is the pseudonym
    // of an input domestic address, never the address itself.
    let pan = CryptoPan::new(&key);
    let receipt = ReidentificationApproval::recorded("test", 0);
    for r in &kept {
        assert!(r.src_addr == concern_server || r.dst_addr == concern_server);
        for end in [r.src_addr, r.dst_addr] {
            if end == concern_server {
                continue;
            }
            assert!(!clear_domestic.contains(&end), "{end} left in clear");
            assert!(clear_domestic.contains(&pan.deanonymise(end, &receipt)));
        }
    }
}

mod props {
    use super::*;
    use mamori_flow::Class;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            // Near the test prefixes, so every class occurs.
            any::<u16>()
                .prop_map(|a| IpAddr::V4(Ipv4Addr::from(0xCB00_7100 | u32::from(a & 0xff)))),
            any::<u16>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(0x0808_0000 | u32::from(a)))),
        ]
    }

    fn small_geo() -> GeoTable {
        mamori_flow::geo_from_cidr_lists([
            ("JP".parse().unwrap(), "133.0.0.0/8\n2001:200::/32\n"),
            ("US".parse().unwrap(), "8.0.0.0/9\n"),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any record classifies without panicking, and process accounts for every record
        /// within the aggregate bound.
        #[test]
        fn classify_and_process_never_panic(
            ends in proptest::collection::vec((addr(), addr(), any::<u8>(), any::<u16>(), any::<i64>()), 1..40),
            unknown in 0usize..3,
        ) {
            let unknown = ["domestic", "foreign", "drop"][unknown];
            let policy = SelectionPolicy::from_toml(&format!(
                "subscriber_prefixes = [\"203.0.113.0/24\"]\nunknown_country = \"{unknown}\"\nmax_aggregates = 16"
            )).unwrap();
            let mut s = Selector::new(policy, &CryptoPanKey::from_bytes([3; 32])).unwrap();
            let geo = small_geo();
            let records: Vec<FlowRecord> = ends.iter().map(|(a, b, p, port, t)| FlowRecord {
                src_addr: *a, dst_addr: *b, protocol: *p, dst_port: *port, start_ms: *t,
                sampling_rate: u32::from(*port), packets: u64::MAX, bytes: u64::MAX,
                ..FlowRecord::default()
            }).collect();
            for r in &records {
                let _class: Class = s.classify(r, &geo);
            }
            let mut batch = FlowBatch { records: records.clone(), ..FlowBatch::default() };
            let concerns = ConcernList::new(vec![Concern {
                prefix: "8.8.0.0/24".parse().unwrap(), reason: "p".into(), expires_ms: 0,
            }]);
            let c = s.process(&mut batch, &geo, &concerns, -1);
            prop_assert_eq!(c.seen, records.len() as u64);
            prop_assert_eq!(c.dropped_total() + c.aggregated + c.kept_per_flow, c.seen);
            let aggs = s.take_aggregates();
            prop_assert!(aggs.len() <= 16);
        }
    }
}
