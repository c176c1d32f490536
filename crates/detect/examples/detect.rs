//! Runs every detector over flow files and, given labels, evaluates the findings.
//! A stand-in for `mamori detect` / `mamori eval` until the CLI wires them.
//!
//! ```text
//! cargo run -p mamori-detect --release --example detect -- \
//!     [--profile telescope|slips] [--feodo CSV] [--drop TXT]... \
//!     [--labels FILE] [--ground-truth TSV DATASET] [--phase-always] [--beacon-threshold X]
//!     [--top N] [--json] FILE...
//! ```
//! FILE: Zeek `conn.log[.labeled]`, Argus `*.binetflow`, or a pcap of NetFlow v5/v9,
//! IPFIX or sFlow export datagrams. `--labels` reads the `label`/`Label` column of a
//! labelled conn.log or binetflow.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

#[path = "../../flow/tests/common/mod.rs"]
mod common;

use std::io::BufReader;
use std::sync::Arc;

use mamori_detect::eval::{Labels, evaluate};
use mamori_detect::{DetectConfig, Detectors, IndicatorSetBuilder, ScanProfile};
use mamori_flow::{
    ArgusReader, Datagram, DatagramDecoder, ExportDecoder, FlowBatch, ZeekConnReader,
};

fn open(path: &str) -> BufReader<std::fs::File> {
    BufReader::new(std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

fn read_flows(path: &str, batch: &mut FlowBatch) {
    if path.ends_with(".pcap") {
        let mut decoder = ExportDecoder::default();
        for d in common::udp_datagrams(std::path::Path::new(path)) {
            decoder.decode(Datagram::new(d.src, d.ts_ms, &d.payload), batch);
        }
    } else if path.ends_with(".binetflow") {
        let mut r = ArgusReader::new(open(path)).unwrap();
        while r.read_batch(batch, 4096).unwrap() > 0 {}
    } else {
        let mut r = ZeekConnReader::new(open(path)).unwrap();
        while r.read_batch(batch, 4096).unwrap() > 0 {}
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut cfg = DetectConfig::default();
    let mut ind = IndicatorSetBuilder::new();
    let mut labels: Option<Labels> = None;
    let mut files = Vec::new();
    let mut top = 20usize;
    let mut json = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--profile" => {
                cfg.scan.profile =
                    ScanProfile::parse(&args.next().unwrap()).expect("telescope|slips")
            }
            "--feodo" => {
                let p = args.next().unwrap();
                ind.add_feodo_csv(open(&p), "abusech-feodo").unwrap();
            }
            "--drop" => {
                let p = args.next().unwrap();
                let name = if p.contains("edrop") {
                    "spamhaus-edrop"
                } else {
                    "spamhaus-drop"
                };
                ind.add_drop_list(open(&p), name).unwrap();
            }
            "--labels" => {
                let p = args.next().unwrap();
                let l = if p.ends_with(".binetflow") {
                    Labels::from_binetflow(open(&p)).unwrap()
                } else {
                    Labels::from_zeek_labeled(open(&p)).unwrap()
                };
                labels.get_or_insert_with(Labels::default).merge(l);
            }
            "--ground-truth" => {
                let p = args.next().unwrap();
                let ds = args.next().unwrap();
                let l = Labels::from_ground_truth(open(&p), &ds).unwrap();
                labels.get_or_insert_with(Labels::default).merge(l);
            }
            "--beacon-threshold" => {
                cfg.beacon.report_threshold = args.next().unwrap().parse().unwrap()
            }
            "--phase-always" => cfg.beacon.phase_test_unsampled = true,
            "--top" => top = args.next().unwrap().parse().unwrap(),
            "--json" => json = true,
            _ => files.push(a),
        }
    }
    cfg.indicators = Arc::new(ind.build());
    let mut d = Detectors::new(&cfg);
    let mut batch = FlowBatch::default();
    for f in &files {
        batch.clear();
        read_flows(f, &mut batch);
        d.observe_batch(&batch);
    }
    let records = d.records();
    let findings = d.finish();
    eprintln!("{records} records, {} findings", findings.len());
    for f in findings.iter().take(top) {
        if json {
            println!("{}", f.to_json_line());
        } else {
            println!(
                "{:<9} {:<40} {:>5}/{:<3} score {:.3} clients {}",
                f.kind.as_str(),
                f.address.to_string(),
                f.port,
                f.proto,
                f.score,
                f.clients.count
            );
        }
    }
    if let Some(l) = labels {
        eprintln!(
            "labels: {} flows, {} malicious sources, {} bots, {} C2, {} malware servers",
            l.labelled_flows,
            l.malicious_sources.len(),
            l.bots.len(),
            l.c2_servers.len(),
            l.malware_servers.len()
        );
        println!("\n{}", evaluate(&findings, &l, 0.5));
    }
}
