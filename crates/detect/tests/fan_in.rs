//! Fan-in: twelve bots polling one server alike (same period, same request size) make a
//! botnet finding naming the server and grouping the bots; twelve clients using a popular
//! server at random times with random sizes do not.

use std::net::IpAddr;

use mamori_detect::{DetectConfig, Evidence, FindingKind, run_all};
use mamori_flow::{FlowRecord, FlowSource};

const T0: i64 = 1_700_000_000_000;

fn conn(client: IpAddr, server: IpAddr, port: u16, at: i64, up: u64, sport: u16) -> FlowRecord {
    FlowRecord {
        src_addr: client,
        dst_addr: server,
        src_port: sport,
        dst_port: port,
        protocol: 6,
        start_ms: at,
        end_ms: at + 300,
        packets: 6,
        bytes: up,
        rev_packets: 5,
        rev_bytes: 1_200,
        source: FlowSource::Zeek,
        ..FlowRecord::default()
    }
}

#[test]
fn bots_polling_one_server_alike_form_a_botnet_and_random_users_do_not() {
    let c2: IpAddr = [192, 0, 2, 66].into();
    let popular: IpAddr = [198, 51, 100, 80].into();
    let mut records = Vec::new();
    let mut x = 99u64;
    let mut rnd = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    for b in 0..12u8 {
        let bot: IpAddr = [10, 2, 0, 10 + b].into();
        let phase = i64::from(b) * 7_000;
        for k in 0..72i64 {
            let jitter = (rnd() % 4_000) as i64 - 2_000;
            records.push(conn(
                bot,
                c2,
                8443,
                T0 + phase + k * 300_000 + jitter,
                400,
                40_000 + k as u16,
            ));
        }
        let user: IpAddr = [10, 3, 0, 10 + b].into();
        for k in 0..72u16 {
            let at = T0 + (rnd() % 21_600_000) as i64;
            records.push(conn(
                user,
                popular,
                443,
                at,
                200 + rnd() % 20_000,
                40_000 + k,
            ));
        }
    }
    records.sort_by_key(|r| r.start_ms);
    let findings = run_all(records, &DetectConfig::default());
    let botnets: Vec<_> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Botnet)
        .collect();
    assert_eq!(botnets.len(), 1, "{botnets:?}");
    let f = botnets[0];
    assert_eq!((f.address, f.port), (c2, 8443));
    assert_eq!(f.clients.count, 12);
    let Evidence::Botnet(e) = &f.evidence else {
        panic!("botnet evidence");
    };
    assert_eq!(e.similar_timing_clients, 12);
    assert!((e.median_interval_s - 300.0).abs() < 10.0, "{e:?}");
    assert!(
        !findings.iter().any(|f| f.address == popular),
        "popular server reported"
    );
}

#[test]
fn tables_beyond_their_maximum_count_keys_instead_of_tracking_them() {
    let mut cfg = DetectConfig::default();
    cfg.beacon.max_pairs = 10;
    cfg.scan.max_sources = 10;
    cfg.ddos.max_destinations = 10;
    let mut d = mamori_detect::Detectors::new(&cfg);
    for i in 0..50u8 {
        let r = conn(
            [10, 9, 0, i].into(),
            [192, 0, 2, i].into(),
            443,
            T0 + i64::from(i),
            100,
            40_000,
        );
        d.observe(&r);
    }
    assert_eq!(d.tracked_pairs(), 10);
    let u = d.untracked();
    assert_eq!((u.pairs, u.sources, u.destinations), (40, 40, 40));
}
