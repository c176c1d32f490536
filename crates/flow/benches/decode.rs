//! Decode-only throughput from memory, on the real captures and logs in ../shared/data:
//! NetFlow v5, v9 and IPFIX records/s (ours and `netflow_parser` on the same datagrams),
//! sFlow samples/s, Zeek conn.log and Argus binetflow lines/s, flow-meter packets/s. See docs/benchmarks/flow-decode.md for figures and commands.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mamori_flow::{
    ArgusReader, Datagram, DatagramDecoder, ExportDecoder, FlowBatch, FlowMeter, MeterConfig,
    PcapReader, ZeekConnReader,
};

/// Whether a v9/IPFIX datagram carries any (options) template set.
fn has_template(d: &[u8]) -> bool {
    let version = u16::from_be_bytes([d[0], d[1]]);
    let (mut at, template_ids) = match version {
        9 => (20, [0u16, 1]),
        10 => (16, [2, 3]),
        _ => return false,
    };
    while at + 4 <= d.len() {
        let id = u16::from_be_bytes([d[at], d[at + 1]]);
        let len = usize::from(u16::from_be_bytes([d[at + 2], d[at + 3]]));
        if template_ids.contains(&id) {
            return true;
        }
        if len < 4 {
            return false;
        }
        at += len;
    }
    false
}

struct Corpus {
    exporter: IpAddr,
    /// Datagrams that define templates, decoded once before measuring.
    warmup: Vec<Vec<u8>>,
    /// Datagrams measured.
    data: Vec<Vec<u8>>,
    records: u64,
}

fn corpus(rel: &str) -> Option<Corpus> {
    let dgs = common::udp_datagrams(&common::test_data(rel)?);
    let exporter = dgs.first()?.src;
    let (warmup, data): (Vec<_>, Vec<_>) = dgs
        .into_iter()
        .map(|d| d.payload)
        .partition(|p| has_template(p));
    let mut decoder = ExportDecoder::default();
    let mut batch = FlowBatch::default();
    for d in &warmup {
        decoder.decode(Datagram::new(exporter, 0, d), &mut batch);
    }
    batch.clear();
    for d in &data {
        decoder.decode(Datagram::new(exporter, 0, d), &mut batch);
    }
    assert_eq!(
        batch.anomalies.total(),
        0,
        "{rel}: {:?}",
        batch.anomalies.last()
    );
    Some(Corpus {
        exporter,
        warmup,
        data,
        records: batch.len() as u64,
    })
}

fn exports(c: &mut Criterion) {
    let cases = [
        (
            "v5/softflowd",
            "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-netflow-v5-export.pcap",
        ),
        (
            "v9/softflowd",
            "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-netflow-v9-export.pcap",
        ),
        (
            "v9/cisco-pmacct-101",
            "netflow/pmacct-tests/101-NFv9-CISCO-cust_primitives/traffic-00.pcap",
        ),
        (
            "ipfix/softflowd",
            "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-ipfix-export.pcap",
        ),
        (
            "ipfix/cisco-pmacct-100",
            "netflow/pmacct-tests/100-IPFIXv10-CISCO/traffic-00.pcap",
        ),
        (
            "sflow/akvorado-1140",
            "netflow/akvorado-testdata/sflow/data-1140.pcap",
        ),
    ];
    let mut g = c.benchmark_group("decode");
    for (name, rel) in cases {
        let Some(corpus) = corpus(rel) else { continue };
        g.throughput(Throughput::Elements(corpus.records));
        let mut decoder = ExportDecoder::default();
        let mut batch = FlowBatch::with_capacity(4096);
        for d in &corpus.warmup {
            decoder.decode(Datagram::new(corpus.exporter, 0, d), &mut batch);
        }
        g.bench_function(format!("mamori/{name}"), |b| {
            b.iter(|| {
                batch.clear();
                for d in &corpus.data {
                    decoder.decode(Datagram::new(corpus.exporter, 0, black_box(d)), &mut batch);
                }
                black_box(batch.len())
            })
        });
        if name.starts_with("sflow") {
            continue; // netflow_parser does not read sFlow
        }
        let mut peer = netflow_parser::NetflowParser::default();
        for d in &corpus.warmup {
            let parsed = peer.parse_bytes(d);
            black_box(&parsed);
        }
        g.bench_function(format!("netflow_parser/{name}"), |b| {
            b.iter(|| {
                for d in &corpus.data {
                    let parsed = peer.parse_bytes(black_box(d));
                    black_box(&parsed);
                }
            })
        });
    }
    g.finish();
}

fn text(c: &mut Criterion) {
    let mut g = c.benchmark_group("text");
    let zeek = [
        (
            "zeek-tsv/sdt-008",
            "botnet/sdt-008-zeek-mixed/conn.log.labeled",
        ),
        ("zeek-json/sdt-002", "botnet/sdt-002-port-scanning/conn.log"),
    ];
    for (name, rel) in zeek {
        let Some(path) = common::test_data(rel) else {
            continue;
        };
        let bytes = std::fs::read(path).unwrap();
        let lines = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty() && l[0] != b'#')
            .count();
        g.throughput(Throughput::Elements(lines as u64));
        let mut batch = FlowBatch::with_capacity(lines);
        g.bench_function(name, |b| {
            b.iter(|| {
                batch.clear();
                let mut r = ZeekConnReader::new(black_box(&bytes[..])).unwrap();
                while r.read_batch(&mut batch, 4096).unwrap() > 0 {}
                black_box(batch.len())
            })
        });
        // The reference path (lines copied, TSV split byte by byte, JSON via serde_json):
        // the before of the fast path, in the same run.
        g.bench_function(format!("{name}/reference"), |b| {
            b.iter(|| {
                batch.clear();
                let mut r = ZeekConnReader::reference(black_box(&bytes[..])).unwrap();
                while r.read_batch(&mut batch, 4096).unwrap() > 0 {}
                black_box(batch.len())
            })
        });
    }
    if let Some(path) = common::test_data("botnet/slips-argus-binetflow/test2-malicious.binetflow")
    {
        let bytes = std::fs::read(path).unwrap();
        let lines = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
            - 1;
        g.throughput(Throughput::Elements(lines as u64));
        let mut batch = FlowBatch::with_capacity(lines);
        g.bench_function("argus/test2", |b| {
            b.iter(|| {
                batch.clear();
                let mut r = ArgusReader::new(black_box(&bytes[..])).unwrap();
                while r.read_batch(&mut batch, 4096).unwrap() > 0 {}
                black_box(batch.len())
            })
        });
        // The reference path: every line through the csv crate.
        g.bench_function("argus/test2/reference", |b| {
            b.iter(|| {
                batch.clear();
                let mut r = ArgusReader::reference(black_box(&bytes[..])).unwrap();
                while r.read_batch(&mut batch, 4096).unwrap() > 0 {}
                black_box(batch.len())
            })
        });
    }
    g.finish();
}

fn meter(c: &mut Criterion) {
    let Some(path) = common::test_data("pcap/slips-test-cc/test-cc-capture-1.pcap") else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let mut g = c.benchmark_group("meter");
    g.throughput(Throughput::Elements(7931));
    let mut batch = FlowBatch::with_capacity(1024);
    g.bench_function("pcap/test-cc-capture-1", |b| {
        b.iter(|| {
            batch.clear();
            let mut m = FlowMeter::new(MeterConfig::default());
            let mut r = PcapReader::new(black_box(&bytes[..])).unwrap();
            r.for_each_frame(|f| m.packet(f.ts_ms, f.link, f.data, &mut batch))
                .unwrap();
            m.flush(&mut batch);
            black_box(batch.len())
        })
    });
    g.finish();
}

criterion_group!(benches, exports, text, meter);
criterion_main!(benches);
