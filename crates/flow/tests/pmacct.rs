//! pmacct's regression captures (Cisco and Huawei NetFlow v9 / IPFIX), decoded and
//! compared field by field with pmacct's own expected output (`output-flow-00.json`).
//!
//! pmacct aggregates flows on the primitives its `nfacctd-00.conf` lists, some of which we
//! do not decode (MPLS labels, forwarding status, VRF names). Both sides are therefore
//! summed over the key we share — addresses, ports, protocol, interfaces, ToS, and the
//! flow times when pmacct prints them — and the sums must be equal. Where the conf sets
//! `nfacctd_renormalize: true`, our counters are multiplied by the decoded sampling rate.
//! `peer_ip_src` is not compared: pmacct's test harness replays the datagrams from its own
//! container address, not the capture's.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap on test-data errors

mod common;

use std::collections::BTreeMap;

use mamori_flow::{AnomalyKind, Datagram, DatagramDecoder, ExportDecoder, FlowBatch, FlowSource};

type Key = (
    String,
    String,
    u64,
    u64,
    String,
    u64,
    u64,
    u64,
    Option<(i64, i64)>,
);

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "ipv6-icmp".into(),
        2 => "igmp".into(),
        47 => "gre".into(),
        89 => "ospf".into(),
        103 => "pim".into(),
        112 => "vrrp".into(),
        n => n.to_string(),
    }
}

fn secs(v: &serde_json::Value) -> Option<i64> {
    v.as_str()
        .map(|s| s.split('.').next().unwrap().parse().unwrap())
}

/// pmacct's whole-second rendering: for NetFlow v9 it subtracts the uptime difference in
/// whole seconds from the header's whole seconds (`unix_secs - (uptime - first) / 1000`),
/// which is our millisecond time rounded up; absolute IPFIX times are truncated.
fn pmacct_secs(ms: i64, source: FlowSource) -> i64 {
    if source == FlowSource::NetflowV9 {
        -(-ms).div_euclid(1000)
    } else {
        ms.div_euclid(1000)
    }
}

fn check(test: &str, pcaps: &[&str]) {
    let dir = format!("netflow/pmacct-tests/{test}");
    let Some(expected) = common::test_data(&format!("{dir}/output-flow-00.json")) else {
        return;
    };
    let conf =
        std::fs::read_to_string(common::test_data(&format!("{dir}/nfacctd-00.conf")).unwrap())
            .unwrap();
    let renormalize = conf
        .lines()
        .any(|l| l.trim_start().starts_with("nfacctd_renormalize") && l.contains("true"));

    let mut want: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    let mut timed = false;
    for line in std::fs::read_to_string(expected)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let j: serde_json::Value = serde_json::from_str(line).unwrap();
        let times = match (secs(&j["timestamp_start"]), secs(&j["timestamp_end"])) {
            (Some(s), Some(e)) => {
                timed = true;
                Some((s, e))
            }
            _ => None,
        };
        let key = (
            j["ip_src"].as_str().unwrap().to_string(),
            j["ip_dst"].as_str().unwrap().to_string(),
            j["port_src"].as_u64().unwrap(),
            j["port_dst"].as_u64().unwrap(),
            j["ip_proto"].as_str().unwrap().to_string(),
            j["iface_in"].as_u64().unwrap(),
            j["iface_out"].as_u64().unwrap(),
            j["tos"].as_u64().unwrap(),
            times,
        );
        let e = want.entry(key).or_default();
        e.0 += j["packets"].as_u64().unwrap();
        e.1 += j["bytes"].as_u64().unwrap();
    }

    let mut decoder = ExportDecoder::default();
    let mut batch = FlowBatch::default();
    for pcap in pcaps {
        let path = common::test_data(&format!("{dir}/{pcap}")).unwrap();
        for d in common::udp_datagrams(&path) {
            decoder.decode(Datagram::new(d.src, d.ts_ms, &d.payload), &mut batch);
        }
    }
    let unknown = batch.anomalies.get(AnomalyKind::UnknownTemplate);
    assert_eq!(
        batch.anomalies.total(),
        unknown,
        "{test}: {:?}",
        batch.anomalies
    );
    let mut got: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    for r in &batch.records {
        let f = if renormalize { r.sampling_factor() } else { 1 };
        let key = (
            r.src_addr.to_string(),
            r.dst_addr.to_string(),
            u64::from(r.src_port),
            u64::from(r.dst_port),
            proto_name(r.protocol),
            u64::from(r.input_if),
            u64::from(r.output_if),
            u64::from(r.tos),
            timed.then(|| {
                (
                    pmacct_secs(r.start_ms, r.source),
                    pmacct_secs(r.end_ms, r.source),
                )
            }),
        );
        let e = got.entry(key).or_default();
        e.0 += r.packets * f;
        e.1 += r.bytes * f;
    }
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .take(3)
        .collect();
    assert!(
        missing.is_empty(),
        "{test}: pmacct flows not decoded identically, e.g. {missing:#?}\nours: {:#?}",
        got.iter().take(5).collect::<Vec<_>>()
    );
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(3)
        .collect();
    assert!(
        extra.is_empty(),
        "{test}: flows pmacct did not output: {extra:#?}"
    );
}

#[test]
fn ipfix_cisco() {
    check("100-IPFIXv10-CISCO", &["traffic-00.pcap"]);
}

#[test]
fn nfv9_cisco() {
    check("101-NFv9-CISCO-cust_primitives", &["traffic-00.pcap"]);
}

#[test]
fn ipfix_ipv6_cisco_sampling_option() {
    check(
        "104-IPFIXv10-IPv6-CISCO-sampling_option",
        &["traffic-00.pcap"],
    );
}

#[test]
fn ipfix_huawei() {
    check("106-IPFIXv10-HUAWEI-vrf_name", &["traffic-00.pcap"]);
}

#[test]
fn ipfix_and_nfv9_mixed_sources() {
    check(
        "111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources",
        &["traffic-00.pcap", "traffic-01.pcap"],
    );
}

#[test]
fn ipfix_cisco_options_reassignment() {
    check(
        "112-IPFIXv10-CISCO-options-map-reassignment",
        &["traffic-00.pcap"],
    );
}

/// Test 112: the router renames its interfaces in a second round of options data; each
/// flow must carry the name valid when it was exported (pmacct prints `/` as `_`).
#[test]
fn interface_names_follow_options_reassignment() {
    let dir = "netflow/pmacct-tests/112-IPFIXv10-CISCO-options-map-reassignment";
    let (Some(expected), Some(pcap)) = (
        common::test_data(&format!("{dir}/output-flow-00.json")),
        common::test_data(&format!("{dir}/traffic-00.pcap")),
    ) else {
        return;
    };
    let mut want = std::collections::BTreeSet::new();
    for line in std::fs::read_to_string(expected)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let j: serde_json::Value = serde_json::from_str(line).unwrap();
        want.insert((
            j["iface_in"].as_u64().unwrap(),
            j["iface_name_in"].as_str().unwrap().to_string(),
        ));
    }
    let mut decoder = ExportDecoder::default();
    let mut got = std::collections::BTreeSet::new();
    for d in common::udp_datagrams(&pcap) {
        let mut batch = FlowBatch::default();
        decoder.decode(Datagram::new(d.src, d.ts_ms, &d.payload), &mut batch);
        for r in &batch.records {
            let name = decoder
                .templates()
                .interface_name(r.exporter, r.observation_domain, 10, r.input_if)
                .unwrap_or_default();
            got.insert((u64::from(r.input_if), name.replace('/', "_")));
        }
    }
    assert_eq!(got, want);
}
