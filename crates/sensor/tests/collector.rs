//! The UDP collector on loopback, fed softflowd's real NetFlow v9 and IPFIX exports:
//! every record arrives, each exporter is counted, garbage is counted and survived, and a
//! full queue drops and counts instead of blocking (CI-8; STYLE principle 4).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

// The flow crate's test helpers (test-data lookup, pcap → UDP datagrams), shared by path.
#[path = "../../flow/tests/common/mod.rs"]
mod common;

use mamori_core::time::SystemClock;
use mamori_flow::{Datagram, DatagramDecoder, ExportDecoder, FlowBatch};
use mamori_sensor::collector::{Collector, CollectorConfig, Stats};
use mamori_sensor::metrics::Metrics;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

const DIR: &str = "netflow/derived-softflowd-from-test-cc-capture-1";

fn config() -> CollectorConfig {
    CollectorConfig {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        recv_buffer_bytes: 4 * 1024 * 1024,
        batch_records: 256,
        flush_ms: 20,
        ..CollectorConfig::default()
    }
}

/// Decodes the datagrams directly: what the collector must deliver.
fn expected(datagrams: &[common::Udp]) -> usize {
    let mut decoder = ExportDecoder::default();
    let mut batch = FlowBatch::default();
    for d in datagrams {
        decoder.decode(Datagram::new(d.src, d.ts_ms, &d.payload), &mut batch);
    }
    batch.records.len()
}

#[test]
fn real_exports_arrive_whole_and_counted_per_exporter() {
    for file in [
        "softflowd-netflow-v9-export.pcap",
        "softflowd-ipfix-export.pcap",
    ] {
        let Some(path) = common::test_data(&format!("{DIR}/{file}")) else {
            return;
        };
        let datagrams = common::udp_datagrams(&path);
        let want = expected(&datagrams);
        assert!(want > 500, "{file}: {want}");

        let (tx, rx) = sync_channel(1024);
        let collector = Collector::start(&config(), tx, Arc::new(SystemClock)).unwrap();
        let to = collector.local_addrs()[0];
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"\x00\x09garbage", to).unwrap(); // a malformed datagram first
        for (i, d) in datagrams.iter().enumerate() {
            sender.send_to(&d.payload, to).unwrap();
            if i % 16 == 0 {
                std::thread::sleep(Duration::from_millis(1)); // stay within the socket buffer
            }
        }
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < want && Instant::now() < deadline {
            if let Ok(batch) = rx.recv_timeout(Duration::from_millis(100)) {
                got += batch.records.len();
            }
        }
        let stats = collector.stop().snapshot();
        assert_eq!(got, want, "{file}: every record delivered");
        let me = stats.get(&"127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(me.datagrams as usize, datagrams.len() + 1, "{file}");
        assert_eq!(me.records as usize, want, "{file}");
        assert!(
            me.malformed() >= 1,
            "{file}: the garbage datagram is counted: {me:?}"
        );
        assert_eq!(me.dropped_records, 0);
    }
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let Some(path) = common::test_data(&format!("{DIR}/softflowd-netflow-v5-export.pcap")) else {
        return;
    };
    let datagrams = common::udp_datagrams(&path);
    let want = expected(&datagrams);
    // A queue of one batch that nobody reads.
    let (tx, _rx) = sync_channel(1);
    let mut cfg = config();
    cfg.batch_records = 30;
    let collector = Collector::start(&cfg, tx, Arc::new(SystemClock)).unwrap();
    let to = collector.local_addrs()[0];
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, d) in datagrams.iter().enumerate() {
        sender.send_to(&d.payload, to).unwrap();
        if i % 8 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let stats = collector.stop().snapshot();
    let me = stats.get(&"127.0.0.1".parse().unwrap()).unwrap();
    assert_eq!(
        me.records as usize, want,
        "every datagram was still received and decoded"
    );
    assert!(me.dropped_records > 0, "{me:?}");
    assert!(
        me.dropped_records as usize <= want - 30,
        "at most the unqueued records dropped: {me:?}"
    );
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cfg = config();
    cfg.listen = vec![taken.local_addr().unwrap()];
    let (tx, _rx) = sync_channel(1);
    let err = Collector::start(&cfg, tx, Arc::new(SystemClock)).unwrap_err();
    assert!(
        err.to_string().contains("cannot listen on UDP 127.0.0.1:"),
        "{err}"
    );
}

/// Waits until `done` holds of the collector's counters (bounded), then returns them.
fn settle(stats: &Stats, what: &str, done: impl Fn(&Stats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(stats) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One datagram from each of many sources must not grow the counters without bound
/// (CI-6: 50,000 sources once made `/metrics` 12 MB): sources outside
/// the allow-list are rejected by one counter, and past the cap exporters are folded into
/// `other`.
#[test]
fn strangers_are_rejected_and_exporters_past_the_cap_are_counted_as_other() {
    let mut cfg = config();
    cfg.exporters = vec!["127.0.0.0/28".parse().unwrap()]; // 127.0.0.1 … 127.0.0.15 send
    cfg.max_exporters = 4;
    let (tx, _rx) = sync_channel(64);
    let collector = Collector::start(&cfg, tx, Arc::new(SystemClock)).unwrap();
    let to = collector.local_addrs()[0];
    for host in 1..=40u8 {
        let sender = UdpSocket::bind((std::net::Ipv4Addr::new(127, 0, 0, host), 0)).unwrap();
        sender.send_to(b"\x00\x09garbage", to).unwrap();
    }
    let stats = collector.stats().clone();
    settle(&stats, "40 datagrams counted", |s| {
        let t = s.totals();
        let tracked: u64 = s.snapshot().values().map(|e| e.datagrams).sum();
        tracked + t.other.datagrams + t.rejected_datagrams == 40
    });
    collector.stop();
    let per = stats.snapshot();
    let totals = stats.totals();
    assert_eq!(per.len(), 4, "{per:?}");
    assert!(
        per.keys().all(|ip| cfg.exporters[0].contains(ip)),
        "{per:?}"
    );
    assert_eq!(totals.other.datagrams, 11, "{totals:?}");
    assert_eq!(totals.rejected_datagrams, 25, "{totals:?}");

    // What is served holds the four, `other` and one rejection counter: no series per
    // stranger.
    let snap = Metrics::new(1, 1, 1, 1).snapshot(Some(&stats));
    assert_eq!(snap.exporters.len(), 5, "{:?}", snap.exporters.keys());
    assert_eq!(snap.exporters["other"].datagrams, 11);
    let text = snap.prometheus();
    assert!(text.contains("mamori_sensor_datagrams_total{exporter=\"other\"} 11"));
    assert!(
        text.contains("mamori_sensor_rejected_datagrams_total 25"),
        "{text}"
    );
    for host in 16..=40 {
        assert!(
            !text.contains(&format!("127.0.0.{host}\"")),
            "127.0.0.{host}"
        );
    }
}

/// A flood into a tiny receive buffer on 127.0.0.1 (bounded: 20,000 datagrams): what the
/// kernel dropped is counted, and with what was received makes up everything sent (CI-6:
/// 30,292 drops once showed only in `/proc/net/udp`).
#[test]
fn kernel_receive_drops_are_counted_and_account_for_the_shortfall() {
    let mut cfg = config();
    cfg.recv_buffer_bytes = 2048; // the kernel's minimum
    let (tx, rx) = sync_channel(1 << 16);
    let collector = Collector::start(&cfg, tx, Arc::new(SystemClock)).unwrap();
    let to = collector.local_addrs()[0];
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = [0u8; 1400];
    let backlog_before = backlog_drops();
    let mut sent = 0u64;
    for _ in 0..20_000 {
        if sender.send_to(&payload, to).is_ok() {
            sent += 1;
        }
    }
    let stats = collector.stats().clone();
    // On a loaded host loopback itself may drop from its per-CPU backlog before the
    // socket sees a datagram (softnet_stat, any process's): that alone is not ours to count.
    let backlog = backlog_drops().saturating_sub(backlog_before);
    settle(&stats, "received + dropped = sent", |s| {
        let got: u64 = s.snapshot().values().map(|e| e.datagrams).sum();
        got + s.totals().kernel_drops + backlog >= sent
    });
    collector.stop();
    drop(rx);
    let got: u64 = stats.snapshot().values().map(|e| e.datagrams).sum();
    let drops = stats.totals().kernel_drops;
    assert!(
        drops > 0,
        "a 2 KiB buffer cannot hold a burst of {sent}: got {got}"
    );
    assert!(
        got + drops <= sent && got + drops + backlog >= sent,
        "sent {sent}: received {got}, dropped by the socket {drops}, by the backlog {backlog}"
    );
    let text = Metrics::new(1, 1, 1, 1).snapshot(Some(&stats)).prometheus();
    assert!(
        text.contains(&format!("mamori_sensor_udp_kernel_drops_total {drops}")),
        "{text}"
    );
}

/// Packets the kernel dropped from its per-CPU input backlogs (the second column of
/// `/proc/net/softnet_stat`, hexadecimal), summed.
fn backlog_drops() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|h| u64::from_str_radix(h, 16).ok())
        .sum()
}
