//! The flow meter on a real capture, against the connections softflowd exported from the
//! same capture (nfdump's CSV of softflowd's v9 export), and the CI-3 property on frames.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap on test-data errors

mod common;

use std::collections::BTreeMap;

use mamori_flow::{FlowBatch, FlowMeter, LinkType, MeterConfig, PcapReader, udp_payload};
use proptest::prelude::*;

/// A connection as an unordered pair of endpoints, with per-direction counters
/// (lower endpoint → higher, then higher → lower).
type Conn = ((String, u16), (String, u16), String);

/// Per-direction counters, then the start time (ms; nfdump: its whole second).
type Counts = [i64; 5];

fn nfdump_connections() -> Option<BTreeMap<Conn, Vec<Counts>>> {
    let path =
        common::test_data("netflow/derived-softflowd-from-test-cc-capture-1/nfdump-from-v9.csv")?;
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    let h = csv.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let (sa, da, sp, dp, pr, ipkt, ibyt, ts) = (
        col("sa"),
        col("da"),
        col("sp"),
        col("dp"),
        col("pr"),
        col("ipkt"),
        col("ibyt"),
        col("ts"),
    );
    // softflowd exports a connection as two records with the same start second.
    let mut halves: BTreeMap<(Conn, String), Counts> = BTreeMap::new();
    for r in csv.records() {
        let r = r.unwrap();
        if r.len() != h.len() {
            continue;
        }
        let s = (r[sa].to_string(), r[sp].parse::<u16>().unwrap());
        let d = (r[da].to_string(), r[dp].parse::<u16>().unwrap());
        let (lo, hi, forward) = if s <= d { (s, d, true) } else { (d, s, false) };
        let e = halves
            .entry(((lo, hi, r[pr].to_lowercase()), r[ts].to_string()))
            .or_default();
        let (p, b): (i64, i64) = (r[ipkt].parse().unwrap(), r[ibyt].parse().unwrap());
        e[4] = common::parse_utc(&r[ts]);
        if forward {
            e[0] += p;
            e[1] += b;
        } else {
            e[2] += p;
            e[3] += b;
        }
    }
    let mut out: BTreeMap<Conn, Vec<Counts>> = BTreeMap::new();
    for ((conn, _), counts) in halves {
        out.entry(conn).or_default().push(counts);
    }
    Some(out)
}

#[test]
fn capture_gives_the_connections_softflowd_exported() {
    let (Some(want), Some(pcap)) = (
        nfdump_connections(),
        common::test_data("pcap/slips-test-cc/test-cc-capture-1.pcap"),
    ) else {
        return;
    };
    // softflowd 1.1.0's defaults: TCP flows idle for up to 3600 s, a new connection on a
    // reused 5-tuple joins the old flow.
    let mut meter = FlowMeter::new(MeterConfig {
        idle_timeout_ms: 3_600_000,
        split_tcp_on_new_syn: false,
        ..MeterConfig::default()
    });
    let mut batch = FlowBatch::default();
    let mut reader = PcapReader::new(std::fs::File::open(pcap).unwrap()).unwrap();
    let frames = reader
        .for_each_frame(|f| meter.packet(f.ts_ms, f.link, f.data, &mut batch))
        .unwrap();
    meter.flush(&mut batch);
    assert_eq!(frames, 7931);
    assert_eq!(batch.anomalies.total(), 0, "{:?}", batch.anomalies.last());
    let mut got: BTreeMap<Conn, Vec<Counts>> = BTreeMap::new();
    for r in &batch.records {
        let s = (r.src_addr.to_string(), r.src_port);
        let d = (r.dst_addr.to_string(), r.dst_port);
        let proto = match r.protocol {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            p => p.to_string(),
        };
        let c = |v: u64| i64::try_from(v).unwrap();
        let counts = if s <= d {
            [
                c(r.packets),
                c(r.bytes),
                c(r.rev_packets),
                c(r.rev_bytes),
                r.start_ms,
            ]
        } else {
            [
                c(r.rev_packets),
                c(r.rev_bytes),
                c(r.packets),
                c(r.bytes),
                r.start_ms,
            ]
        };
        let (lo, hi) = if s <= d { (s, d) } else { (d, s) };
        got.entry((lo, hi, proto)).or_default().push(counts);
    }
    for v in got.values_mut() {
        v.sort_unstable();
    }
    let want: BTreeMap<Conn, Vec<Counts>> = want
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            (k, v)
        })
        .collect();
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 297);
    // Counters exactly; the start within the second nfdump's time can be early by (its
    // source, the v9 export header, carries whole seconds) plus its own truncation.
    let untimed = |m: &BTreeMap<Conn, Vec<Counts>>| -> BTreeMap<Conn, Vec<[i64; 4]>> {
        m.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter().map(|c| [c[0], c[1], c[2], c[3]]).collect(),
                )
            })
            .collect()
    };
    assert_eq!(untimed(&got), untimed(&want));
    for (k, ours) in &got {
        for (o, w) in ours.iter().zip(&want[k]) {
            assert!(
                (0..2000).contains(&(o[4] - w[4])),
                "{k:?}: start {} vs nfdump {}",
                o[4],
                w[4]
            );
        }
    }
}

#[test]
fn export_capture_datagrams_come_out_whole() {
    let Some(pcap) = common::test_data(
        "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-netflow-v9-export.pcap",
    ) else {
        return;
    };
    // The test helper's own pcap reader is the reference.
    let reference: Vec<Vec<u8>> = common::udp_datagrams(&pcap)
        .into_iter()
        .map(|d| d.payload)
        .collect();
    let mut ours = Vec::new();
    PcapReader::new(std::fs::File::open(pcap).unwrap())
        .unwrap()
        .for_each_frame(|f| {
            if let Some((_, _, payload)) = udp_payload(f.link, f.data) {
                ours.push(payload.to_vec());
            }
        })
        .unwrap();
    assert_eq!(ours, reference);
}

fn frame(payload: &[u8], sport: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = u16::try_from(20 + 8 + payload.len()).unwrap();
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&[0, 53]);
    f.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// CI-3: frames that differ only in payload bytes meter to identical records.
    #[test]
    fn no_payload_byte_survives_metering(a in prop::collection::vec(any::<u8>(), 0..200), b in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut b = b;
        b.resize(a.len(), 0);
        let meter = |p: &[u8]| {
            let mut m = FlowMeter::new(MeterConfig::default());
            let mut batch = FlowBatch::default();
            m.packet(1_000, LinkType::Ethernet, &frame(p, 40000), &mut batch);
            m.packet(1_500, LinkType::Ethernet, &frame(p, 40000), &mut batch);
            m.flush(&mut batch);
            batch.records
        };
        let (ra, rb) = (meter(&a), meter(&b));
        prop_assert_eq!(ra.len(), 1);
        prop_assert_eq!(&ra, &rb);
        prop_assert_eq!(ra[0].packets, 2);
    }
}

#[test]
fn idle_and_active_timeouts_split_flows() {
    let config = MeterConfig {
        idle_timeout_ms: 10_000,
        active_timeout_ms: 60_000,
        max_flows: 16,
        split_tcp_on_new_syn: true,
    };
    let mut m = FlowMeter::new(config);
    let mut batch = FlowBatch::default();
    // Every 5 s for 100 s: never idle, so only the active timeout splits (at 60 s).
    for t in 0..=20 {
        m.packet(
            t * 5_000,
            LinkType::Ethernet,
            &frame(b"", 40000),
            &mut batch,
        );
    }
    // 20 s of silence: the idle timeout ends the second flow.
    m.packet(120_000, LinkType::Ethernet, &frame(b"", 40001), &mut batch);
    let got: Vec<_> = batch
        .records
        .iter()
        .map(|r| (r.start_ms, r.end_ms, r.packets))
        .collect();
    assert_eq!(got, [(0, 55_000, 12), (60_000, 100_000, 9)]);
    m.flush(&mut batch);
    assert_eq!(batch.len(), 3);
}

fn tcp(from_client: bool, flags: u8) -> Vec<u8> {
    let (s, d, sp, dp) = if from_client {
        ([192, 0, 2, 1], [198, 51, 100, 7], 40000u16, 443u16)
    } else {
        ([198, 51, 100, 7], [192, 0, 2, 1], 443, 40000)
    };
    let mut f = vec![
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0,
        0,
    ];
    f.extend_from_slice(&s);
    f.extend_from_slice(&d);
    f.extend_from_slice(&sp.to_be_bytes());
    f.extend_from_slice(&dp.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x50, flags, 0, 0, 0, 0, 0, 0]);
    f
}

#[test]
fn a_new_syn_after_both_fins_starts_a_new_connection() {
    let mut m = FlowMeter::new(MeterConfig::default());
    let mut batch = FlowBatch::default();
    let (syn, synack, ack, fin) = (0x02, 0x12, 0x10, 0x11);
    for (t, (client, flags)) in [
        (true, syn),
        (false, synack),
        (true, ack),
        (true, fin),
        (false, fin),
        (true, syn),
        (false, synack),
    ]
    .into_iter()
    .enumerate()
    {
        m.packet(
            i64::try_from(t).unwrap() * 100,
            LinkType::Ethernet,
            &tcp(client, flags),
            &mut batch,
        );
    }
    m.flush(&mut batch);
    let got: Vec<_> = batch
        .records
        .iter()
        .map(|r| (r.src_port, r.packets, r.rev_packets, r.start_ms))
        .collect();
    assert_eq!(got, [(40000, 3, 2, 0), (40000, 1, 1, 500)]);
}

/// The same frames written as pcapng (section header, interface description with
/// microsecond resolution, enhanced packet blocks), built here from the classic capture.
fn to_pcapng(classic: &[u8]) -> Vec<u8> {
    let block = |kind: u32, body: &[u8]| {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = u32::try_from(body.len() + 12).unwrap();
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&body);
        b.extend_from_slice(&len.to_le_bytes());
        b
    };
    let mut out = block(
        0x0a0d_0d0a,
        &[
            0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
    let linktype = u16::try_from(u32::from_le_bytes(classic[20..24].try_into().unwrap())).unwrap();
    let mut idb = linktype.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0, 0, 0, 4, 0]);
    out.extend(block(1, &idb));
    let mut at = 24;
    while at + 16 <= classic.len() {
        let word = |o: usize| u32::from_le_bytes(classic[at + o..at + o + 4].try_into().unwrap());
        let (sec, usec, caplen, origlen) = (word(0), word(4), word(8), word(12));
        let ticks = u64::from(sec) * 1_000_000 + u64::from(usec);
        let data = &classic[at + 16..at + 16 + caplen as usize];
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&u32::try_from(ticks >> 32).unwrap().to_le_bytes());
        epb.extend_from_slice(&u32::try_from(ticks & 0xffff_ffff).unwrap().to_le_bytes());
        epb.extend_from_slice(&caplen.to_le_bytes());
        epb.extend_from_slice(&origlen.to_le_bytes());
        epb.extend_from_slice(data);
        out.extend(block(6, &epb));
        at += 16 + caplen as usize;
    }
    out
}

#[test]
fn pcapng_and_pcap_meter_alike() {
    let Some(path) = common::test_data("pcap/slips-misc/test7-malicious.pcap") else {
        return;
    };
    let classic = std::fs::read(path).unwrap();
    let meter = |bytes: &[u8]| {
        let mut m = FlowMeter::new(MeterConfig::default());
        let mut batch = FlowBatch::default();
        let n = PcapReader::new(bytes)
            .unwrap()
            .for_each_frame(|f| m.packet(f.ts_ms, f.link, f.data, &mut batch))
            .unwrap();
        m.flush(&mut batch);
        (n, batch.records)
    };
    let (n, from_pcap) = meter(&classic);
    assert!(n > 0 && !from_pcap.is_empty());
    let (n_ng, from_pcapng) = meter(&to_pcapng(&classic));
    assert_eq!(n_ng, n);
    let first_diff = from_pcap.iter().zip(&from_pcapng).find(|(a, b)| a != b);
    assert_eq!(first_diff, None);
    assert_eq!(from_pcapng.len(), from_pcap.len());
}
