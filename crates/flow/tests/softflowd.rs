//! softflowd's v5, v9 and IPFIX exports of one capture, decoded and compared record for
//! record with nfdump's CSV of the same flows (made by Debian softflowd 1.1.0 → nfcapd
//! 1.7.1 → `nfdump -o csv`; see ../shared/data/netflow/EXPORTER_COLLECTOR_COMMANDS.md).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap on test-data errors

mod common;

use std::collections::BTreeMap;

use mamori_flow::{
    Datagram, DatagramDecoder, Direction, ExportDecoder, FlowBatch, FlowRecord, FlowSource,
};

const DIR: &str = "netflow/derived-softflowd-from-test-cc-capture-1";

/// What nfdump's CSV says about one flow, in the CSV's own units.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    ts: String,
    te: String,
    duration_ms: i64,
    src: String,
    dst: String,
    sport: u16,
    dport: u16,
    proto: String,
    flags: u8,
    packets: u64,
    bytes: u64,
}

fn nfdump_rows() -> Option<(Vec<Row>, Vec<u8>)> {
    let path = common::test_data(&format!("{DIR}/nfdump-from-v9.csv"))?;
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    let headers = csv.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (ts, te, td, sa, da, sp, dp, pr, flg, ipkt, ibyt, dir) = (
        col("ts"),
        col("te"),
        col("td"),
        col("sa"),
        col("da"),
        col("sp"),
        col("dp"),
        col("pr"),
        col("flg"),
        col("ipkt"),
        col("ibyt"),
        col("dir"),
    );
    let mut rows = Vec::new();
    let mut dirs = Vec::new();
    for r in csv.records() {
        let r = r.unwrap();
        if r.len() != headers.len() {
            continue; // the "Summary" trailer
        }
        let flags = r[flg]
            .bytes()
            .rev()
            .enumerate()
            .filter(|(_, c)| *c != b'.')
            .fold(0u8, |acc, (i, _)| acc | (1 << i));
        let td_ms = (r[td].trim().parse::<f64>().unwrap() * 1000.0).round() as i64;
        rows.push(Row {
            ts: r[ts].to_string(),
            te: r[te].to_string(),
            duration_ms: td_ms,
            src: r[sa].to_string(),
            dst: r[da].to_string(),
            sport: r[sp].parse().unwrap(),
            dport: r[dp].parse().unwrap(),
            proto: r[pr].to_string(),
            flags,
            packets: r[ipkt].parse().unwrap(),
            bytes: r[ibyt].parse().unwrap(),
        });
        dirs.push(r[dir].parse().unwrap());
    }
    Some((rows, dirs))
}

/// UTC `YYYY-MM-DD hh:mm:ss`, as nfdump prints times (seconds truncated).
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant), to print without a date crate.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn row_of(r: &FlowRecord) -> Row {
    Row {
        ts: utc(r.start_ms),
        te: utc(r.end_ms),
        duration_ms: r.end_ms - r.start_ms,
        src: r.src_addr.to_string(),
        dst: r.dst_addr.to_string(),
        sport: r.src_port,
        dport: r.dst_port,
        proto: match r.protocol {
            6 => "TCP".into(),
            17 => "UDP".into(),
            1 => "ICMP".into(),
            p => p.to_string(),
        },
        flags: r.tcp_flags,
        packets: r.packets,
        bytes: r.bytes,
    }
}

fn decode(file: &str) -> Option<FlowBatch> {
    let path = common::test_data(&format!("{DIR}/{file}"))?;
    let mut decoder = ExportDecoder::default();
    let mut batch = FlowBatch::default();
    for d in common::udp_datagrams(&path) {
        decoder.decode(Datagram::new(d.src, d.ts_ms, &d.payload), &mut batch);
    }
    Some(batch)
}

fn multiset(rows: impl IntoIterator<Item = Row>) -> BTreeMap<Row, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r).or_insert(0) += 1;
    }
    m
}

fn check(file: &str, source: FlowSource) {
    let (Some((expected, dirs)), Some(batch)) = (nfdump_rows(), decode(file)) else {
        return;
    };
    assert_eq!(batch.anomalies.total(), 0, "{file}: {:?}", batch.anomalies);
    assert_eq!(expected.len(), 594);
    assert_eq!(batch.len(), 594, "{file}: record count");
    assert_eq!(batch.records.iter().map(|r| r.packets).sum::<u64>(), 7931);
    assert!(batch.records.iter().all(|r| r.source == source));
    if source == FlowSource::NetflowV9 {
        // Same export as nfdump read: identical to the second.
        let got = multiset(batch.records.iter().map(row_of));
        let want = multiset(expected.iter().cloned());
        let missing: Vec<_> = want
            .iter()
            .filter(|(k, n)| got.get(*k) != Some(n))
            .take(3)
            .collect();
        assert!(
            missing.is_empty(),
            "{file}: nfdump rows not decoded identically, e.g. {missing:#?}"
        );
    } else {
        // nfdump's times come from the v9 export, whose header carries whole seconds only,
        // so they sit up to 1 s before the true time; v5 (unix_nsecs) and IPFIX (-A milli,
        // IE 152/153) carry milliseconds. Compare every other field exactly, and the start
        // time within that second of header resolution (plus nfdump's truncation), and
        // the duration within 1 ms (start and end are each rounded to ms by the exporter).
        let untimed = |r: &Row| Row {
            ts: String::new(),
            te: String::new(),
            duration_ms: 0,
            ..r.clone()
        };
        let mut ours: BTreeMap<Row, Vec<(i64, i64)>> = BTreeMap::new();
        for r in &batch.records {
            ours.entry(untimed(&row_of(r)))
                .or_default()
                .push((r.start_ms, r.end_ms - r.start_ms));
        }
        let mut theirs: BTreeMap<Row, Vec<(i64, i64)>> = BTreeMap::new();
        for r in &expected {
            theirs
                .entry(untimed(r))
                .or_default()
                .push((common::parse_utc(&r.ts), r.duration_ms));
        }
        assert_eq!(ours.len(), theirs.len(), "{file}: distinct flows");
        for (key, mut want) in theirs {
            let mut got = ours
                .remove(&key)
                .unwrap_or_else(|| panic!("{file}: not decoded: {key:#?}"));
            assert_eq!(got.len(), want.len(), "{file}: {key:#?}");
            got.sort_unstable();
            want.sort_unstable();
            for ((g, gd), (w, wd)) in got.iter().zip(&want) {
                assert!(
                    (0..2000).contains(&(g - w)),
                    "{file}: start {g} vs nfdump {w} for {key:#?}"
                );
                assert!(
                    (gd - wd).abs() <= 1,
                    "{file}: duration {gd} vs nfdump {wd} for {key:#?}"
                );
            }
        }
    }
    if source != FlowSource::NetflowV5 {
        // nfdump's `dir` column is IE 61 flowDirection: 0 ingress, 1 egress.
        let by_dir = |d: u8| dirs.iter().filter(|x| **x == d).count();
        let ours = |d: Direction| batch.records.iter().filter(|r| r.direction == d).count();
        assert_eq!(ours(Direction::Ingress), by_dir(0), "{file}: ingress");
        assert_eq!(ours(Direction::Egress), by_dir(1), "{file}: egress");
    }
}

#[test]
fn v9_export_matches_nfdump_record_for_record() {
    check("softflowd-netflow-v9-export.pcap", FlowSource::NetflowV9);
}

#[test]
fn ipfix_export_matches_nfdump_record_for_record() {
    check("softflowd-ipfix-export.pcap", FlowSource::Ipfix);
}

#[test]
fn v5_export_matches_nfdump_record_for_record() {
    check("softflowd-netflow-v5-export.pcap", FlowSource::NetflowV5);
}
