//! The text readers' fast paths against their reference paths (issue 5, CI-1): Zeek TSV
//! split in place vs. copied and split byte by byte, Zeek JSON through the specialised
//! scanner vs. `serde_json`, Argus split in place vs. the `csv` crate. Every line of the
//! real logs in ../shared/data must give the same record or the same counted anomaly on
//! both paths, whatever the reader's buffer size (lines straddling buffers included); and
//! mutated lines (bytes replaced, inserted, deleted; quotes, escapes, blank lines, `\r`)
//! must too, without a panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};

use mamori_flow::{AnomalyCounts, ArgusReader, FlowBatch, FlowRecord, ZeekConnReader};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const ZEEK: [&str; 5] = [
    "botnet/sdt-002-port-scanning/conn.log", // JSON
    "botnet/sdt-003-androidtester-rat/conn.log",
    "botnet/sdt-005-simda-dga/conn.log",
    "botnet/sdt-008-zeek-mixed/conn.log.labeled",
    "botnet/sdt-010-zeek-mixed/conn.log.labeled",
];

const ARGUS: [&str; 5] = [
    "botnet/slips-argus-binetflow/test11-portscan.binetflow",
    "botnet/slips-argus-binetflow/test2-malicious.binetflow",
    "botnet/slips-argus-binetflow/test3-mixed.binetflow",
    "botnet/slips-argus-binetflow/test4-malicious.binetflow",
    "botnet/slips-argus-binetflow/test5-mixed.binetflow",
];

/// One step of a reader: the records and anomalies of one data line.
type Outcome = (Vec<FlowRecord>, AnomalyCounts, usize);

/// Reads `input` one data line at a time, returning each line's outcome.
fn per_line(mut step: impl FnMut(&mut FlowBatch) -> usize) -> Vec<Outcome> {
    let mut out = Vec::new();
    loop {
        let mut b = FlowBatch::default();
        let n = step(&mut b);
        if n == 0 {
            assert!(b.is_empty() && b.anomalies.total() == 0);
            return out;
        }
        out.push((b.records, b.anomalies, n));
    }
}

fn zeek<R: BufRead>(mut r: ZeekConnReader<R>) -> Vec<Outcome> {
    per_line(|b| r.read_batch(b, 1).unwrap())
}

fn argus<R: BufRead>(mut r: ArgusReader<R>) -> Vec<Outcome> {
    per_line(|b| r.read_batch(b, 1).unwrap())
}

/// Both paths over `bytes`, in memory and through a small `BufReader` (so that many lines
/// straddle buffers); asserts the same outcome line by line, and returns it.
fn zeek_both_agree(bytes: &[u8], what: &str) -> Vec<Outcome> {
    let reference = zeek(ZeekConnReader::reference(bytes).unwrap());
    let fast = zeek(ZeekConnReader::new(bytes).unwrap());
    assert_same(&fast, &reference, what);
    for cap in [7, 97, 4096] {
        let fast = zeek(ZeekConnReader::new(BufReader::with_capacity(cap, bytes)).unwrap());
        assert_same(&fast, &reference, &format!("{what} (buffer {cap})"));
    }
    reference
}

fn argus_both_agree(bytes: &[u8], what: &str) -> Vec<Outcome> {
    let reference = argus(ArgusReader::reference(bytes).unwrap());
    let fast = argus(ArgusReader::new(bytes).unwrap());
    assert_same(&fast, &reference, what);
    for cap in [7, 97, 4096] {
        // The delimiter is detected from the first buffer, on both paths alike.
        let reference =
            argus(ArgusReader::reference(BufReader::with_capacity(cap, bytes)).unwrap());
        let fast = argus(ArgusReader::new(BufReader::with_capacity(cap, bytes)).unwrap());
        assert_same(&fast, &reference, &format!("{what} (buffer {cap})"));
    }
    reference
}

fn assert_same(fast: &[Outcome], reference: &[Outcome], what: &str) {
    for (i, (f, r)) in fast.iter().zip(reference).enumerate() {
        assert_eq!(f, r, "{what}: data line {} differs", i + 1);
    }
    assert_eq!(fast.len(), reference.len(), "{what}: number of data lines");
}

#[test]
fn zeek_fast_path_equals_reference_on_every_real_line() {
    for rel in ZEEK {
        let Some(path) = common::test_data(rel) else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let outcomes = zeek_both_agree(&bytes, rel);
        // Not vacuous: every line of these clean logs is a record.
        let records: usize = outcomes.iter().map(|o| o.0.len()).sum();
        assert!(records > 300, "{rel}: {records} records");
        assert_eq!(records, outcomes.len(), "{rel}");
    }
}

#[test]
fn argus_fast_path_equals_reference_on_every_real_line() {
    for rel in ARGUS {
        let Some(path) = common::test_data(rel) else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let outcomes = argus_both_agree(&bytes, rel);
        let records: usize = outcomes.iter().map(|o| o.0.len()).sum();
        assert!(records > 20, "{rel}: {records} records");
    }
}

#[test]
fn argus_quoted_fields_are_read_by_the_csv_rules() {
    // A quoted label holding the separator and a line break; the line after it, and a
    // line with a lone \r, still read as the csv crate reads them.
    let input = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,SrcPkts,Label\n\
2019/04/04 16:23:00.325010,0.027947,udp,10.8.0.69,48427,  <->,8.8.8.8,53,CON,0,0,2,142,63,1,plain\n\
2019/04/04 16:23:01.000000,0.5,tcp,10.8.0.69,1,  ->,8.8.4.4,443,CON,0,0,4,400,100,2,\"a, \"\"quoted\"\"\nlabel\"\n\
2019/04/04 16:23:02.000000,1.5,udp,10.8.0.70,2,  ->,8.8.4.4,53,CON,0,0,2,100,50,1,x\r2019/04/04 16:23:03.000000,1,udp,10.8.0.71,3,  ->,1.1.1.1,53,CON,0,0,2,100,50,1,y\n";
    let outcomes = argus_both_agree(input.as_bytes(), "quoted");
    let records: Vec<FlowRecord> = outcomes.iter().flat_map(|o| o.0.clone()).collect();
    assert_eq!(records.len(), 4);
    assert_eq!(records[1].dst_port, 443);
    assert_eq!(records[3].src_addr.to_string(), "10.8.0.71");
}

/// Lines of a real file, or `fallback` without the data.
fn seed_lines(rel: &str, fallback: &str, n: usize) -> Vec<Vec<u8>> {
    let text = match common::test_data(rel) {
        Some(p) => std::fs::read_to_string(p).unwrap(),
        None => fallback.to_owned(),
    };
    text.lines()
        .take(n)
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

/// Bytes JSON, CSV and TSV give meaning to, so mutations hit the parsers' edge cases.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b"\"\\,\t\r\n{}[]:.-0123456789eE nutf#\xef\xbb\xbf".to_vec()),
    ]
}

/// (line index, position, byte, operation) edits on a text.
type Edit = (usize, usize, u8, u8);

fn mutate(lines: &[Vec<u8>], edits: &[Edit], keep_first: bool) -> Vec<u8> {
    let mut lines = lines.to_vec();
    for &(li, at, byte, op) in edits {
        let from = usize::from(keep_first && lines.len() > 1);
        let li = from + li % (lines.len() - from).max(1);
        let Some(line) = lines.get_mut(li) else {
            continue;
        };
        let at = if line.is_empty() { 0 } else { at % line.len() };
        match op % 4 {
            0 if !line.is_empty() => line[at] = byte,
            1 => line.insert(at, byte),
            2 if !line.is_empty() => {
                line.remove(at);
            }
            _ => line.truncate(at),
        }
    }
    lines.join(&b'\n')
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        (
            any::<usize>(),
            any::<usize>(),
            interesting_byte(),
            any::<u8>(),
        ),
        1..8,
    )
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 600,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn mutated_zeek_lines_read_the_same_on_both_paths() {
    for (rel, fallback, keep_header) in [
        (
            ZEEK[0],
            "{\"ts\":1.5,\"id.orig_h\":\"::1\",\"id.orig_p\":1,\"id.resp_h\":\"::2\",\"id.resp_p\":2,\"proto\":\"udp\"}",
            false,
        ),
        (
            ZEEK[3],
            "#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n1.0\t10.0.0.1\t1\t10.0.0.2\t2\ttcp",
            true,
        ),
    ] {
        let lines = seed_lines(rel, fallback, 16);
        runner()
            .run(&edits(), |e| {
                let bytes = mutate(&lines, &e, keep_header);
                let reference = zeek(ZeekConnReader::reference(&bytes[..]).unwrap());
                let fast = zeek(ZeekConnReader::new(&bytes[..]).unwrap());
                prop_assert_eq!(&fast, &reference);
                let fast =
                    zeek(ZeekConnReader::new(BufReader::with_capacity(64, &bytes[..])).unwrap());
                prop_assert_eq!(&fast, &reference);
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn mutated_argus_lines_read_the_same_on_both_paths() {
    for rel in [ARGUS[1], ARGUS[4]] {
        let lines = seed_lines(
            rel,
            "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport\n2019/04/04 16:23:00.3,0.1,udp,10.0.0.1,1,->,10.0.0.2,2",
            16,
        );
        runner()
            .run(&(edits(), any::<bool>()), |(e, keep_header)| {
                let bytes = mutate(&lines, &e, keep_header);
                let reference = argus(ArgusReader::reference(&bytes[..]).unwrap());
                let fast = argus(ArgusReader::new(&bytes[..]).unwrap());
                prop_assert_eq!(&fast, &reference);
                let reference = argus(
                    ArgusReader::reference(BufReader::with_capacity(64, &bytes[..])).unwrap(),
                );
                let fast =
                    argus(ArgusReader::new(BufReader::with_capacity(64, &bytes[..])).unwrap());
                prop_assert_eq!(&fast, &reference);
                Ok(())
            })
            .unwrap();
    }
}
