//! UDP end to end on loopback: mamori's collector and nfcapd (Debian `nfdump`), fed the
//! same NetFlow v5 datagrams at the same rates by the same sender, in the same run
//! (CI-1, CI-8). Reports, per offered rate, the records each received and so the highest
//! lossless rate of each.
//!
//! ```sh
//! apt-get install nfdump        # the peer
//! sysctl -w net.core.rmem_max=33554432   # let both have 32 MiB socket buffers
//! cargo bench -p mamori-sensor --bench udp
//! ```
//! `MAMORI_BENCH_RATES` (records/s, comma-separated) and `MAMORI_BENCH_SECONDS` tune it.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::indexing_slicing
)] // a benchmark harness: it starts nfcapd and prints figures

use mamori_core::time::SystemClock;
use mamori_sensor::collector::{Collector, CollectorConfig};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

const RECORDS_PER_DATAGRAM: usize = 30;

/// A NetFlow v5 datagram of 30 records with addresses varied by `seed`.
fn v5_datagram(seed: u32, sequence: u32) -> Vec<u8> {
    let mut d = Vec::with_capacity(24 + 48 * RECORDS_PER_DATAGRAM);
    d.extend_from_slice(&5u16.to_be_bytes());
    d.extend_from_slice(&(RECORDS_PER_DATAGRAM as u16).to_be_bytes());
    d.extend_from_slice(&3_600_000u32.to_be_bytes()); // sysUptime ms
    d.extend_from_slice(&1_790_000_000u32.to_be_bytes()); // unix secs
    d.extend_from_slice(&0u32.to_be_bytes()); // nsecs
    d.extend_from_slice(&sequence.to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 0]); // engine type/id, sampling
    for i in 0..RECORDS_PER_DATAGRAM as u32 {
        let n = seed.wrapping_mul(2_654_435_761).wrapping_add(i);
        d.extend_from_slice(&(0x0a00_0000 | (n & 0x00ff_ffff)).to_be_bytes()); // src 10.x
        d.extend_from_slice(&(0xc633_6400 | (n >> 24)).to_be_bytes()); // dst 198.51.100.x
        d.extend_from_slice(&0u32.to_be_bytes()); // nexthop
        d.extend_from_slice(&1u16.to_be_bytes()); // input
        d.extend_from_slice(&2u16.to_be_bytes()); // output
        d.extend_from_slice(&(1 + (n % 20)).to_be_bytes()); // packets
        d.extend_from_slice(&(64 * (1 + (n % 20))).to_be_bytes()); // bytes
        d.extend_from_slice(&3_500_000u32.to_be_bytes()); // first
        d.extend_from_slice(&3_599_000u32.to_be_bytes()); // last
        d.extend_from_slice(&((1024 + (n % 60000)) as u16).to_be_bytes()); // sport
        d.extend_from_slice(&443u16.to_be_bytes()); // dport
        d.push(0); // pad
        d.push(0x1b); // tcp flags
        d.push(6); // proto
        d.push(0); // tos
        d.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // as, masks, pad
    }
    d
}

/// Sends `rate` records/s for `seconds` to `to`; returns records sent.
fn send(to: SocketAddr, rate: u64, seconds: u64, ring: &[Vec<u8>]) -> u64 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(to).unwrap();
    let per_sec = rate / RECORDS_PER_DATAGRAM as u64;
    let start = Instant::now();
    let end = Duration::from_secs(seconds);
    let mut sent = 0u64;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= end {
            break;
        }
        let due = (elapsed.as_nanos() as u64).saturating_mul(per_sec) / 1_000_000_000;
        while sent < due {
            let d = &ring[(sent as usize) % ring.len()];
            if sock.send(d).is_err() {
                break;
            }
            sent += 1;
        }
        std::hint::spin_loop();
    }
    sent * RECORDS_PER_DATAGRAM as u64
}

fn mamori_run(rate: u64, seconds: u64, ring: &[Vec<u8>]) -> (u64, u64) {
    let (tx, rx) = sync_channel(256);
    let cfg = CollectorConfig {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        recv_buffer_bytes: 32 * 1024 * 1024,
        batch_records: 8192,
        flush_ms: 100,
        ..CollectorConfig::default()
    };
    let collector = Collector::start(&cfg, tx, Arc::new(SystemClock)).unwrap();
    let to = collector.local_addrs()[0];
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let consumer = std::thread::spawn(move || {
        while let Ok(b) = rx.recv() {
            counter.fetch_add(b.records.len() as u64, Ordering::Relaxed);
        }
    });
    let sent = send(to, rate, seconds, ring);
    std::thread::sleep(Duration::from_millis(500));
    collector.stop();
    consumer.join().unwrap();
    (sent, received.load(Ordering::Relaxed))
}

fn nfcapd_run(rate: u64, seconds: u64, ring: &[Vec<u8>]) -> Option<(u64, u64)> {
    let dir =
        std::env::temp_dir().join(format!("mamori-bench-nfcapd-{}-{rate}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let port = UdpSocket::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut child = std::process::Command::new("nfcapd")
        .args([
            "-b",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "3600",
            "-B",
            "33554432",
            "-w",
        ])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(800));
    let sent = send(
        SocketAddr::from(([127, 0, 0, 1], port)),
        rate,
        seconds,
        ring,
    );
    std::thread::sleep(Duration::from_millis(500));
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .ok()?;
    child.wait().ok()?;
    let out = std::process::Command::new("nfdump")
        .arg("-R")
        .arg(&dir)
        .arg("-I")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let flows = text
        .lines()
        .find_map(|l| l.strip_prefix("Flows: "))
        .and_then(|n| n.trim().parse().ok())?;
    std::fs::remove_dir_all(&dir).ok();
    Some((sent, flows))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list here
    }
    let rates: Vec<u64> = std::env::var("MAMORI_BENCH_RATES")
        .unwrap_or_else(|_| "500000,1000000,2000000,3000000,4000000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let seconds: u64 = std::env::var("MAMORI_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let ring: Vec<Vec<u8>> = (0..4096)
        .map(|i| v5_datagram(i, i * RECORDS_PER_DATAGRAM as u32))
        .collect();
    let rmem = std::fs::read_to_string("/proc/sys/net/core/rmem_max").unwrap_or_default();
    println!(
        "NetFlow v5, {RECORDS_PER_DATAGRAM} records/datagram, {seconds} s per rate, net.core.rmem_max = {}",
        rmem.trim()
    );
    println!(
        "{:>12} | {:>12} {:>12} {:>8} | {:>12} {:>12} {:>8}",
        "offered r/s", "mamori recv", "mamori r/s", "loss", "nfcapd recv", "nfcapd r/s", "loss"
    );
    for rate in rates {
        let (sent_m, got_m) = mamori_run(rate, seconds, &ring);
        let nf = nfcapd_run(rate, seconds, &ring);
        let loss =
            |sent: u64, got: u64| 100.0 * (sent.saturating_sub(got)) as f64 / sent.max(1) as f64;
        let (nf_got, nf_rate, nf_loss) = match nf {
            Some((sent_n, got_n)) => (
                got_n.to_string(),
                format!("{:.0}", got_n as f64 / seconds as f64),
                format!("{:.2}%", loss(sent_n, got_n)),
            ),
            None => ("n/a".into(), "n/a".into(), "(nfcapd missing)".into()),
        };
        println!(
            "{rate:>12} | {got_m:>12} {:>12.0} {:>7.2}% | {nf_got:>12} {nf_rate:>12} {nf_loss:>8}",
            got_m as f64 / seconds as f64,
            loss(sent_m, got_m)
        );
    }
}
