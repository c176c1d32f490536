//! Acceptance on the labelled third-party captures in `../shared/data/`: every expected
//! value comes from the datasets' labels, `GROUND_TRUTH.tsv`, their READMEs or the
//! threat lists themselves — never from this crate's output.
#![allow(clippy::unwrap_used)]

#[path = "../../flow/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use mamori_detect::eval::{Labels, evaluate};
use mamori_detect::{
    DetectConfig, Evidence, Finding, FindingKind, IndicatorSetBuilder, ScanProfile, run_all,
};
use mamori_flow::{
    ArgusReader, Datagram, DatagramDecoder, ExportDecoder, FlowBatch, FlowRecord, ZeekConnReader,
};

fn open(p: &Path) -> BufReader<std::fs::File> {
    BufReader::new(std::fs::File::open(p).unwrap())
}

fn zeek(rel: &str) -> Option<Vec<FlowRecord>> {
    let path = common::test_data(rel)?;
    let mut r = ZeekConnReader::new(open(&path)).unwrap();
    let mut b = FlowBatch::default();
    while r.read_batch(&mut b, 4096).unwrap() > 0 {}
    Some(b.records)
}

fn argus(rel: &str) -> Option<Vec<FlowRecord>> {
    let path = common::test_data(rel)?;
    let mut r = ArgusReader::new(open(&path)).unwrap();
    let mut b = FlowBatch::default();
    while r.read_batch(&mut b, 4096).unwrap() > 0 {}
    Some(b.records)
}

fn export(rel: &str) -> Option<Vec<FlowRecord>> {
    let path = common::test_data(rel)?;
    let mut decoder = ExportDecoder::default();
    let mut b = FlowBatch::default();
    for d in common::udp_datagrams(&path) {
        decoder.decode(Datagram::new(d.src, d.ts_ms, &d.payload), &mut b);
    }
    Some(b.records)
}

fn ground_truth(dataset: &str) -> Option<Labels> {
    let path = common::test_data("botnet/GROUND_TRUTH.tsv")?;
    Some(Labels::from_ground_truth(open(&path), dataset).unwrap())
}

fn telescope() -> DetectConfig {
    let mut cfg = DetectConfig::default();
    cfg.scan.profile = ScanProfile::Telescope;
    cfg
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn false_c2(findings: &[Finding], labels: &Labels) -> usize {
    evaluate(findings, labels, 0.5)
        .kind(FindingKind::C2)
        .unwrap()
        .false_positives
}

#[test]
fn softflowd_exports_of_test_cc_capture_show_the_beacon_first() {
    let Some(truth) = ground_truth("slips-test-cc") else {
        return;
    };
    assert_eq!(
        truth.c2_servers.len(),
        1,
        "GROUND_TRUTH names one beacon destination"
    );
    let server = *truth.c2_servers.first().unwrap();
    for file in [
        "softflowd-netflow-v9-export.pcap",
        "softflowd-ipfix-export.pcap",
        "softflowd-netflow-v5-export.pcap",
    ] {
        let Some(records) = export(&format!(
            "netflow/derived-softflowd-from-test-cc-capture-1/{file}"
        )) else {
            return;
        };
        let findings = run_all(records, &DetectConfig::default());
        let top: Vec<&Finding> = findings
            .iter()
            .filter(|f| matches!(f.kind, FindingKind::Beacon | FindingKind::C2))
            .take(3)
            .collect();
        let hit = top.iter().find(|f| f.address == server && f.port == 443);
        let hit =
            hit.unwrap_or_else(|| panic!("{file}: beacon to {server}:443 not in top 3: {top:?}"));
        assert!(hit.score >= 0.5, "{file}: {hit:?}");
        // The beacon's source is the one GROUND_TRUTH names.
        assert!(
            truth.bots.iter().all(|b| hit.clients.addresses.contains(b)),
            "{file}"
        );
        assert_eq!(false_c2(&findings, &truth), 0, "{file}");
    }
}

#[test]
fn androidtester_rat_c2_is_found_as_c2() {
    let (Some(records), Some(truth)) = (
        zeek("botnet/sdt-003-androidtester-rat/conn.log"),
        ground_truth("sdt-003"),
    ) else {
        return;
    };
    let findings = run_all(records, &DetectConfig::default());
    let r = evaluate(&findings, &truth, 0.5);
    let c2 = r.kind(FindingKind::C2).unwrap();
    assert_eq!(c2.recall, Some(1.0), "{r}");
    assert!(c2.false_positives <= 1, "{r}");
    let f = findings
        .iter()
        .find(|f| f.kind == FindingKind::C2 && f.address == ip("147.32.83.234"))
        .unwrap();
    assert_eq!((f.port, f.proto), (1337, 6), "README: 1337/TCP");
    assert_eq!(f.clients.addresses, vec![ip("10.8.0.61")]);
}

#[test]
fn external_scanners_of_ctu_normal_days_are_found_with_precision_and_recall_over_0_9() {
    for rel in [
        "botnet/sdt-008-zeek-mixed/conn.log.labeled",
        "botnet/sdt-010-zeek-mixed/conn.log.labeled",
    ] {
        let Some(records) = zeek(rel) else {
            return;
        };
        let labels = Labels::from_zeek_labeled(open(&common::test_data(rel).unwrap())).unwrap();
        assert!(labels.malicious_sources.len() > 1500, "{rel}: labels read");
        let findings = run_all(records, &telescope());
        let r = evaluate(&findings, &labels, 0.5);
        let scan = r.kind(FindingKind::Scan).unwrap();
        assert!(scan.precision.unwrap() >= 0.9, "{rel}\n{r}");
        assert!(scan.recall.unwrap() >= 0.9, "{rel}\n{r}");
        assert!(false_c2(&findings, &labels) <= 1, "{rel}\n{r}");
    }
}

#[test]
fn port_scanner_of_sdt_002_is_found() {
    // README: "one client 172.16.1.11 performing multiple scans using Nmap".
    let Some(records) = zeek("botnet/sdt-002-port-scanning/conn.log") else {
        return;
    };
    let findings = run_all(records, &DetectConfig::default());
    let scanners: Vec<IpAddr> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Scan)
        .map(|f| f.address)
        .collect();
    assert_eq!(scanners, vec![ip("172.16.1.11")]);
}

#[test]
fn slips_binetflow_scans_are_found() {
    // Expected scanners and scan types from Slips' dataset notes (PROVENANCE.md):
    // test3 = horizontal RDP scan from 46.166.151.160, test4 = 192.168.2.12 port-scanning,
    // test11 = port scan from 10.8.0.69 (type not documented: its TCP flows carry reply
    // bytes, so only its ICMP sweep reads as unanswered; see EVALUATION.md).
    for (file, scanner, kind) in [
        ("test3-mixed.binetflow", "46.166.151.160", "horizontal"),
        ("test4-malicious.binetflow", "192.168.2.12", ""),
        ("test11-portscan.binetflow", "10.8.0.69", ""),
    ] {
        let Some(records) = argus(&format!("botnet/slips-argus-binetflow/{file}")) else {
            return;
        };
        let findings = run_all(records, &DetectConfig::default());
        let f = findings
            .iter()
            .find(|f| f.kind == FindingKind::Scan && f.address == ip(scanner))
            .unwrap_or_else(|| panic!("{file}: {scanner} not found"));
        let Evidence::Scan(e) = &f.evidence else {
            panic!("scan evidence");
        };
        assert!(
            kind.is_empty() || e.scan_type == kind || e.scan_type == "both",
            "{file}: {e:?}"
        );
        if file.starts_with("test3") {
            assert_eq!(f.port, 3389, "RDP");
        }
    }
}

/// Independent oracle: the lists parsed with plain string code and matched by masks.
fn oracle_lists() -> Option<Vec<(String, u32, u32)>> {
    let mut nets = Vec::new();
    for (rel, feed) in [
        ("intel/spamhaus-drop/drop.txt", "spamhaus-drop"),
        ("intel/spamhaus-drop/edrop.txt", "spamhaus-edrop"),
    ] {
        let text = std::fs::read_to_string(common::test_data(rel)?).unwrap();
        for line in text.lines() {
            let entry = line.split(';').next().unwrap().trim();
            let Some((net, len)) = entry.split_once('/') else {
                continue;
            };
            let Ok(net) = net.parse::<std::net::Ipv4Addr>() else {
                continue;
            };
            let len: u32 = len.parse().unwrap();
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            nets.push((feed.to_string(), u32::from(net) & mask, mask));
        }
    }
    Some(nets)
}

fn builder_with_lists() -> Option<IndicatorSetBuilder> {
    let mut b = IndicatorSetBuilder::new();
    b.add_feodo_csv(
        open(&common::test_data(
            "intel/abusech-feodo/feodotracker-ipblocklist-2024-04-04.csv",
        )?),
        "abusech-feodo",
    )
    .unwrap();
    for (rel, feed) in [
        ("intel/spamhaus-drop/drop.txt", "spamhaus-drop"),
        ("intel/spamhaus-drop/edrop.txt", "spamhaus-edrop"),
        ("intel/spamhaus-drop/drop_ipv6.txt", "spamhaus-dropv6"),
    ] {
        let n = b
            .add_drop_list(open(&common::test_data(rel)?), feed)
            .unwrap();
        assert!(n > 0, "{rel}");
    }
    Some(b)
}

#[test]
fn spamhaus_hits_in_the_ctu_days_match_an_independent_oracle() {
    let (Some(lists), Some(builder)) = (oracle_lists(), builder_with_lists()) else {
        return;
    };
    let mut cfg = telescope();
    cfg.indicators = Arc::new(builder.build());
    for rel in [
        "botnet/sdt-008-zeek-mixed/conn.log.labeled",
        "botnet/sdt-010-zeek-mixed/conn.log.labeled",
    ] {
        let Some(records) = zeek(rel) else {
            return;
        };
        let mut want: BTreeMap<IpAddr, BTreeSet<String>> = BTreeMap::new();
        for r in &records {
            for a in [r.src_addr, r.dst_addr] {
                if let IpAddr::V4(v4) = a {
                    for (feed, net, mask) in &lists {
                        if u32::from(v4) & mask == *net {
                            want.entry(a).or_default().insert(feed.clone());
                        }
                    }
                }
            }
        }
        assert!(!want.is_empty(), "{rel}: the oracle finds listed addresses");
        let findings = run_all(records, &cfg);
        let got: BTreeMap<IpAddr, String> = findings
            .iter()
            .filter(|f| f.kind == FindingKind::Indicator)
            .map(|f| (f.address, f.feed.clone().unwrap()))
            .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{rel}"
        );
        for (a, feed) in &got {
            assert!(
                want[a].contains(feed),
                "{rel}: {a} named {feed}, lists say {:?}",
                want[a]
            );
        }
    }
}

#[test]
fn feodo_c2_addresses_are_reported_with_their_feed_and_port() {
    let Some(builder) = builder_with_lists() else {
        return;
    };
    let csv = std::fs::read_to_string(
        common::test_data("intel/abusech-feodo/feodotracker-ipblocklist-2024-04-04.csv").unwrap(),
    )
    .unwrap();
    // (ip, port) straight from the CSV rows.
    let rows: Vec<(IpAddr, u16)> = csv
        .lines()
        .filter(|l| l.starts_with("\"20"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(|x| x.trim_matches('"')).collect();
            (ip(f[1]), f[2].parse().unwrap())
        })
        .collect();
    assert!(rows.len() >= 20);
    let records: Vec<FlowRecord> = rows
        .iter()
        .enumerate()
        .map(|(i, (a, p))| FlowRecord {
            src_addr: ip("10.9.0.7"),
            dst_addr: *a,
            src_port: 40_000 + i as u16,
            dst_port: *p,
            protocol: 6,
            packets: 5,
            bytes: 600,
            start_ms: 1_712_000_000_000 + i as i64 * 1000,
            end_ms: 1_712_000_000_500 + i as i64 * 1000,
            ..FlowRecord::default()
        })
        .collect();
    let cfg = DetectConfig {
        indicators: Arc::new(builder.build()),
        ..DetectConfig::default()
    };
    let findings = run_all(records, &cfg);
    for (a, p) in &rows {
        let f = findings
            .iter()
            .find(|f| f.kind == FindingKind::Indicator && f.address == *a)
            .unwrap_or_else(|| panic!("{a} not reported"));
        assert_eq!(f.feed.as_deref(), Some("abusech-feodo"));
        assert_eq!(f.port, *p);
        assert_eq!(f.clients.addresses, vec![ip("10.9.0.7")]);
    }
}

#[test]
fn findings_are_deterministic_and_one_json_object_per_line() {
    let Some(records) = zeek("botnet/sdt-003-androidtester-rat/conn.log") else {
        return;
    };
    let a = run_all(records.clone(), &DetectConfig::default());
    let b = run_all(records, &DetectConfig::default());
    assert_eq!(a, b);
    for f in &a {
        let line = f.to_json_line();
        assert!(!line.contains('\n'));
        let back: Finding = serde_json::from_str(&line).unwrap();
        assert_eq!(&back, f);
    }
}
