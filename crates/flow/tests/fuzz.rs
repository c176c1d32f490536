//! Property harnesses, one per decoder (v5, v9/IPFIX and sFlow share the datagram one), seeded from the real captures and logs in
//! ../shared/data and run bounded in `cargo test` (STYLE principle 11): mutated,
//! truncated, oversized-length, zero-length-template and looping inputs must never panic,
//! and what a decoder keeps stays bounded by its input and its limits.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap on test-data errors

mod common;

use std::net::IpAddr;

use mamori_flow::{
    ArgusReader, Datagram, DatagramDecoder, ExportDecoder, FlowBatch, FlowMeter, MeterConfig,
    NetflowV5Decoder, PcapReader, SflowDecoder, TemplateLimits, ZeekConnReader,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const CASES: u32 = 2000;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// UDP payloads of the export captures, in capture order per file.
fn export_seeds() -> Vec<Vec<Vec<u8>>> {
    let files = [
        "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-netflow-v5-export.pcap",
        "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-netflow-v9-export.pcap",
        "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-ipfix-export.pcap",
        "netflow/pmacct-tests/100-IPFIXv10-CISCO/traffic-00.pcap",
        "netflow/pmacct-tests/101-NFv9-CISCO-cust_primitives/traffic-00.pcap",
        "netflow/pmacct-tests/104-IPFIXv10-IPv6-CISCO-sampling_option/traffic-00.pcap",
        "netflow/akvorado-testdata/netflow/nfv5.pcap",
        "netflow/akvorado-testdata/netflow/ipfixprobe-templates.pcap",
        "netflow/akvorado-testdata/netflow/data+templates.pcap",
        "netflow/akvorado-testdata/sflow/data-1140.pcap",
        "netflow/akvorado-testdata/sflow/data-qinq.pcap",
        "netflow/akvorado-testdata/sflow/data-encap-vxlan.pcap",
        "netflow/akvorado-testdata/sflow/data-sflow-expanded-sample.pcap",
    ];
    let mut seeds: Vec<Vec<Vec<u8>>> = files
        .iter()
        .filter_map(|f| common::test_data(f))
        .map(|p| {
            common::udp_datagrams(&p)
                .into_iter()
                .take(6)
                .map(|d| d.payload)
                .collect()
        })
        .collect();
    // Hand-made seeds so the harness bites even without the shared data: an IPFIX
    // template with a variable-length field followed by data, and a bare v5 header.
    seeds.push(vec![
        vec![
            0, 10, 0, 36, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 12, 1, 0, 0, 2, 0, 8, 0, 4,
            0, 82, 255, 255,
        ],
        vec![
            0, 10, 0, 29, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 13, 10, 0, 0, 1, 4, b'e',
            b't', b'h', b'0',
        ],
    ]);
    seeds.push(vec![vec![
        0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]]);
    seeds
}

/// One way to damage a datagram.
#[derive(Debug, Clone)]
enum Damage {
    /// Overwrite bytes.
    Bytes(Vec<(usize, u8)>),
    /// Cut at a fraction of the length.
    Truncate(u16),
    /// Write 0xffff (oversized) or 0x0000 / 0x0004 (zero-length, looping) into a 16-bit
    /// field at an even offset: lengths, counts, template field counts and field lengths.
    Length(usize, u16),
    /// Repeat the datagram's tail (sets after the header) many times.
    Repeat(u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        prop::collection::vec((any::<usize>(), any::<u8>()), 1..8).prop_map(Damage::Bytes),
        any::<u16>().prop_map(Damage::Truncate),
        (
            any::<usize>(),
            prop::sample::select(vec![0u16, 4, 0xffff, 0xfffe, 1, 255, 256])
        )
            .prop_map(|(at, v)| Damage::Length(at, v)),
        (2u8..40).prop_map(Damage::Repeat),
    ]
}

fn apply(seed: &[u8], d: &Damage) -> Vec<u8> {
    let mut v = seed.to_vec();
    if v.is_empty() {
        return v;
    }
    match d {
        Damage::Bytes(edits) => {
            for (at, b) in edits {
                let i = at % v.len();
                v[i] = *b;
            }
        }
        Damage::Truncate(frac) => v.truncate(v.len() * usize::from(*frac) / 65_536),
        Damage::Length(at, val) => {
            let i = (at % v.len()) & !1;
            if i + 2 <= v.len() {
                v[i..i + 2].copy_from_slice(&val.to_be_bytes());
            }
        }
        Damage::Repeat(n) => {
            let head = 20.min(v.len());
            let tail = v[head..].to_vec();
            for _ in 0..*n {
                if v.len() + tail.len() > 64 * 1024 {
                    break; // keep cases small: the bound is about structure, not volume
                }
                v.extend_from_slice(&tail);
            }
        }
    }
    v
}

const EXPORTER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));

#[test]
fn export_decoders_survive_damaged_real_datagrams() {
    let seeds = export_seeds();
    let limits = TemplateLimits {
        max_templates_per_domain: 8,
        max_pending_sets: 4,
        max_pending_bytes: 4096,
        ..TemplateLimits::default()
    };
    let strategy = (
        0..seeds.len(),
        prop::collection::vec((any::<prop::sample::Index>(), damage()), 1..6),
    );
    runner()
        .run(&strategy, |(file, damages)| {
            let datagrams = &seeds[file];
            let mut decoder = ExportDecoder::with_limits(limits);
            let mut batch = FlowBatch::default();
            let mut fed = 0usize;
            // The undamaged datagrams first (templates), then damaged ones.
            for d in datagrams {
                decoder.decode(Datagram::new(EXPORTER, 0, d), &mut batch);
                fed += d.len();
            }
            for (i, dmg) in &damages {
                let bytes = apply(i.get::<Vec<u8>>(datagrams), dmg);
                decoder.decode(Datagram::new(EXPORTER, 1, &bytes), &mut batch);
                let mut v5 = NetflowV5Decoder;
                v5.decode(Datagram::new(EXPORTER, 1, &bytes), &mut batch);
                let mut sflow = SflowDecoder {
                    decapsulate_vxlan: true,
                };
                sflow.decode(Datagram::new(EXPORTER, 1, &bytes), &mut batch);
                fed += 3 * bytes.len();
            }
            // Every record consumed at least one input byte (replayed pending sets are
            // copies of input, bounded by max_pending_bytes).
            prop_assert!(batch.len() <= fed + limits.max_pending_bytes);
            prop_assert!(
                decoder.templates().template_count() <= limits.max_templates_per_domain * 4
            );
            prop_assert!(decoder.templates().pending_count() <= limits.max_pending_sets);
            Ok(())
        })
        .unwrap();
}

#[test]
fn export_decoder_survives_arbitrary_bytes() {
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..512), |mut bytes| {
            let mut decoder = ExportDecoder::default();
            let mut batch = FlowBatch::default();
            for version in [5u8, 9, 10] {
                if bytes.len() >= 2 {
                    bytes[0] = 0;
                    bytes[1] = version;
                }
                decoder.decode(Datagram::new(EXPORTER, 0, &bytes), &mut batch);
            }
            prop_assert!(batch.len() <= 3 * bytes.len());
            Ok(())
        })
        .unwrap();
}

fn text_seed(rel: &str, fallback: &str) -> Vec<u8> {
    match common::test_data(rel) {
        Some(p) => {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        }
        None => fallback.as_bytes().to_vec(),
    }
}

fn text_harness(seed: Vec<u8>, read: impl Fn(&[u8]) -> (usize, u64, usize)) {
    let strategy = prop::collection::vec(damage(), 1..4);
    runner()
        .run(&strategy, |damages| {
            let mut bytes = seed.clone();
            for d in &damages {
                bytes = apply(&bytes, d);
            }
            let (records, anomalies, lines) = read(&bytes);
            // One record or one anomaly per line read, never more.
            prop_assert_eq!(records + anomalies as usize, lines);
            // The csv crate ends a record at \n, \r or \r\n.
            prop_assert!(
                lines
                    <= bytes
                        .iter()
                        .filter(|b| matches!(**b, b'\n' | b'\r'))
                        .count()
                        + 1
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn zeek_reader_survives_damaged_logs() {
    for (rel, fallback) in [
        (
            "botnet/sdt-003-androidtester-rat/conn.log",
            "#fields\tts\tid.orig_h\n1.0\t10.0.0.1\n",
        ),
        (
            "botnet/sdt-002-port-scanning/conn.log",
            "{\"ts\":1.0,\"id.orig_h\":\"::1\"}\n",
        ),
    ] {
        text_harness(text_seed(rel, fallback), |bytes| {
            let mut r = ZeekConnReader::new(bytes).unwrap();
            let mut b = FlowBatch::default();
            while r.read_batch(&mut b, 64).unwrap() > 0 {}
            (b.len(), b.anomalies.total(), r.lines() as usize)
        });
    }
}

#[test]
fn argus_reader_survives_damaged_logs() {
    let seed = text_seed(
        "botnet/slips-argus-binetflow/test5-mixed.binetflow",
        "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport\n2019/04/04 16:23:00.3,0.1,udp,10.0.0.1,1,->,10.0.0.2,2\n",
    );
    text_harness(seed, |bytes| {
        let mut r = ArgusReader::new(bytes).unwrap();
        let mut b = FlowBatch::default();
        while r.read_batch(&mut b, 64).unwrap() > 0 {}
        (b.len(), b.anomalies.total(), r.lines() as usize)
    });
}

#[test]
fn pcap_reader_and_meter_survive_damaged_captures() {
    let seed = match common::test_data("pcap/slips-misc/test12-icmp-portscan.pcap") {
        Some(p) => std::fs::read(p).unwrap(),
        // A classic pcap header alone, so the harness still runs without the data.
        None => vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ],
    };
    let strategy = prop::collection::vec(damage(), 1..4);
    // Fewer cases: each one allocates the reader's 1 MiB block buffer (slow in debug).
    TestRunner::new(Config {
        cases: CASES / 4,
        failure_persistence: None,
        ..Config::default()
    })
    .run(&strategy, |damages| {
        let mut bytes = seed.clone();
        for d in &damages {
            bytes = apply(&bytes, d);
        }
        let mut meter = FlowMeter::new(MeterConfig {
            max_flows: 64,
            ..MeterConfig::default()
        });
        let mut batch = FlowBatch::default();
        let mut frames = 0u64;
        if let Ok(mut r) = PcapReader::new(&bytes[..]) {
            // A damaged capture may end in an error; it must not panic.
            frames = r
                .for_each_frame(|f| meter.packet(f.ts_ms, f.link, f.data, &mut batch))
                .unwrap_or(0);
        }
        prop_assert!(meter.len() <= 64);
        meter.flush(&mut batch);
        prop_assert!(batch.len() as u64 <= frames.max(batch.len() as u64));
        Ok(())
    })
    .unwrap();
}
