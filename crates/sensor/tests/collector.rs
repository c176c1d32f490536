//! The UDP collector on loopback, fed softflowd's real NetFlow v9 and IPFIX exports:
//! every record arrives, each exporter is counted, garbage is counted and survived, and a
//! full queue drops and counts instead of blocking (issue 5; STYLE principle 4).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

// The flow crate's test helpers (test-data lookup, pcap → UDP datagrams), shared by path.
#[path = "../../flow/tests/common/mod.rs"]
mod common;

use mamori_core::time::SystemClock;
use mamori_flow::{Datagram, DatagramDecoder, ExportDecoder, FlowBatch};
use mamori_sensor::collector::{Collector, CollectorConfig};
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
