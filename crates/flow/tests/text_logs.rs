//! Zeek `conn.log` (TSV and JSON) and Argus `binetflow` files from Stratosphere: every data
//! line becomes exactly one record or one counted anomaly, and the records carry what the
//! line says.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap on test-data errors

mod common;

use std::io::BufReader;

use mamori_flow::{AnomalyKind, ArgusReader, FlowBatch, FlowSource, ZeekConnReader};

/// Data lines of a text log as a plain line count: not blank, not a `#` header.
fn data_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count()
}

const ZEEK: [&str; 5] = [
    "botnet/sdt-002-port-scanning/conn.log",
    "botnet/sdt-003-androidtester-rat/conn.log",
    "botnet/sdt-005-simda-dga/conn.log",
    "botnet/sdt-008-zeek-mixed/conn.log.labeled",
    "botnet/sdt-010-zeek-mixed/conn.log.labeled",
];

#[test]
fn zeek_every_line_is_one_record_or_one_counted_anomaly() {
    for rel in ZEEK {
        let Some(path) = common::test_data(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let mut reader =
            ZeekConnReader::new(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
        let mut batch = FlowBatch::default();
        while reader.read_batch(&mut batch, 1000).unwrap() > 0 {}
        let lines = data_lines(&text);
        assert_eq!(reader.lines() as usize, lines, "{rel}");
        assert_eq!(
            batch.len() + batch.anomalies.total() as usize,
            lines,
            "{rel}: {:?}",
            batch.anomalies
        );
        // These are clean Zeek outputs: nothing should be refused.
        assert_eq!(
            batch.anomalies.total(),
            0,
            "{rel}: {:?}",
            batch.anomalies.last()
        );
        assert!(batch.records.iter().all(|r| r.source == FlowSource::Zeek));
    }
}

#[test]
fn zeek_tsv_fields_land_in_the_record() {
    // The first data line of sdt-003, read as text here and compared with the record.
    let Some(path) = common::test_data(ZEEK[1]) else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let header: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("#fields"))
        .unwrap()
        .split('\t')
        .skip(1)
        .collect();
    let line: Vec<&str> = text
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split('\t')
        .collect();
    let field = |name: &str| line[header.iter().position(|h| *h == name).unwrap()];
    let mut reader = ZeekConnReader::new(text.as_bytes()).unwrap();
    let mut batch = FlowBatch::default();
    reader.read_batch(&mut batch, 1).unwrap();
    let r = batch.records[0];
    assert_eq!(r.src_addr.to_string(), field("id.orig_h"));
    assert_eq!(r.dst_addr.to_string(), field("id.resp_h"));
    assert_eq!(r.src_port.to_string(), field("id.orig_p"));
    assert_eq!(r.dst_port.to_string(), field("id.resp_p"));
    assert_eq!(r.packets.to_string(), field("orig_pkts"));
    assert_eq!(r.bytes.to_string(), field("orig_ip_bytes"));
    assert_eq!(r.rev_packets.to_string(), field("resp_pkts"));
    assert_eq!(r.rev_bytes.to_string(), field("resp_ip_bytes"));
    let ts: f64 = field("ts").parse().unwrap();
    assert_eq!(r.start_ms, (ts * 1000.0).floor() as i64);
}

const ARGUS: [&str; 5] = [
    "botnet/slips-argus-binetflow/test11-portscan.binetflow",
    "botnet/slips-argus-binetflow/test2-malicious.binetflow",
    "botnet/slips-argus-binetflow/test3-mixed.binetflow",
    "botnet/slips-argus-binetflow/test4-malicious.binetflow",
    "botnet/slips-argus-binetflow/test5-mixed.binetflow",
];

#[test]
fn argus_every_line_is_one_record_or_one_counted_anomaly() {
    for rel in ARGUS {
        let Some(path) = common::test_data(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let mut reader =
            ArgusReader::new(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
        let mut batch = FlowBatch::default();
        while reader.read_batch(&mut batch, 1000).unwrap() > 0 {}
        let lines = data_lines(&text) - 1; // the column-name line
        assert_eq!(reader.lines() as usize, lines, "{rel}");
        assert_eq!(
            batch.len() + batch.anomalies.total() as usize,
            lines,
            "{rel}: {:?}",
            batch.anomalies
        );
        // Only deliberate non-IP drops (Argus `man` records, LLC, ARP) may be refused.
        let non_ip = text.lines().skip(1).filter(|l| {
            let f: Vec<&str> = l.split([',', '\t']).collect();
            f.len() > 6 && (f[2] == "arp" || f[3].parse::<std::net::IpAddr>().is_err())
        });
        assert_eq!(
            batch.anomalies.get(AnomalyKind::NotIpFlow) as usize,
            non_ip.count(),
            "{rel}"
        );
        assert_eq!(
            batch.anomalies.total(),
            batch.anomalies.get(AnomalyKind::NotIpFlow),
            "{rel}: {:?}",
            batch.anomalies.last()
        );
    }
}

#[test]
fn argus_fields_land_in_the_record() {
    let Some(path) = common::test_data(ARGUS[1]) else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let line: Vec<&str> = lines.next().unwrap().split(',').collect();
    let field = |name: &str| line[header.iter().position(|h| *h == name).unwrap()].trim();
    let mut reader = ArgusReader::new(text.as_bytes()).unwrap();
    let mut batch = FlowBatch::default();
    reader.read_batch(&mut batch, 1).unwrap();
    let r = batch.records[0];
    assert_eq!(r.src_addr.to_string(), field("SrcAddr"));
    assert_eq!(r.dst_addr.to_string(), field("DstAddr"));
    assert_eq!(r.src_port.to_string(), field("Sport"));
    assert_eq!(r.dst_port.to_string(), field("Dport"));
    assert_eq!((r.packets + r.rev_packets).to_string(), field("TotPkts"));
    assert_eq!((r.bytes + r.rev_bytes).to_string(), field("TotBytes"));
    assert_eq!(r.packets.to_string(), field("SrcPkts"));
    assert_eq!(r.bytes.to_string(), field("SrcBytes"));
    let dur: f64 = field("Dur").parse().unwrap();
    assert_eq!(r.end_ms - r.start_ms, (dur * 1000.0).floor() as i64);
}
