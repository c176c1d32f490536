//! The whole sensor pipeline fed from loopback UDP (CI-1, CI-8): the NetFlow v9
//! datagrams softflowd exported from test-cc-capture-1 (real exports, templates
//! included), replayed in a loop by a sender in a *separate process* at a fixed rate, into
//! `Sensor::start` with detection, selection (Crypto-PAn), aggregation and the archive all
//! on. Reports, per run: records offered, received, lost (kernel + queue drops), the
//! sensor process's CPU time (utime + stime from `/proc/self/stat`, sender excluded) as
//! cores, and its peak resident memory.
//!
//! ```sh
//! MAMORI_TEST_DATA=/work/shared/data cargo bench -p mamori-sensor --bench pipeline
//! ```
//! `MAMORI_BENCH_PLAN` = `rate:seconds,...` (default `1000000:20,2000000:10`) and
//! `MAMORI_BENCH_REPEAT` (default 3) tune it. `MAMORI_BENCH_VARY=1` makes every pass over
//! the capture new traffic: the far side's host byte and the subscriber's ephemeral port
//! shift with the pass number, so the pseudonym cache, the selection, the aggregates and
//! the detectors meet hundreds of thousands of hosts and millions of flows instead of the
//! capture's 594 again and again.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    clippy::indexing_slicing
)] // a benchmark harness: it re-executes itself as the sender and prints figures

use mamori_core::time::SystemClock;
use mamori_flow::{Datagram, DatagramDecoder, ExportDecoder, FlowBatch, PcapReader, udp_payload};
use mamori_sensor::config::SensorConfig;
use mamori_sensor::metrics::cpu_seconds;
use mamori_sensor::record::Recorder;
use mamori_sensor::runtime::{Deps, Sensor, StaticKey};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const V9: &str =
    "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-netflow-v9-export.pcap";

fn data() -> PathBuf {
    std::env::var_os("MAMORI_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// The export datagrams of the capture, in order.
fn datagrams(path: &Path) -> Vec<Vec<u8>> {
    let mut r =
        PcapReader::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())).unwrap();
    let mut out = Vec::new();
    r.for_each_frame(|f| {
        if let Some((_, _, p)) = udp_payload(f.link, f.data) {
            out.push(p.to_vec());
        }
    })
    .unwrap();
    out
}

/// Records per pass over the ring, decoded as the sensor will (templates learnt on the
/// first pass stay known, so every later pass decodes every data set).
fn records_per_pass(ring: &[Vec<u8>]) -> u64 {
    let mut d = ExportDecoder::default();
    let mut b = FlowBatch::default();
    for p in ring {
        d.decode(Datagram::new([127, 0, 0, 1].into(), 0, p), &mut b);
    }
    b.records.clear();
    for p in ring {
        d.decode(Datagram::new([127, 0, 0, 1].into(), 0, p), &mut b);
    }
    b.records.len() as u64
}

/// Where one NetFlow v9 data record keeps its addresses and ports.
#[derive(Clone, Copy)]
struct Site {
    src: usize,
    dst: usize,
    sport: usize,
    dport: usize,
}

/// The address and port fields of every data record in `ring` (softflowd's v9: templates
/// with IPV4_SRC_ADDR 8, IPV4_DST_ADDR 12, L4_SRC_PORT 7, L4_DST_PORT 11), per datagram.
fn sites(ring: &[Vec<u8>]) -> Vec<Vec<Site>> {
    let u16_at = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]) as usize;
    let mut templates: std::collections::HashMap<usize, (usize, [Option<usize>; 4])> =
        Default::default();
    let mut out = Vec::new();
    for d in ring {
        let mut found = Vec::new();
        let mut at = 20; // v9 header
        while at + 4 <= d.len() {
            let (id, len) = (u16_at(d, at), u16_at(d, at + 2));
            if len < 4 || at + len > d.len() {
                break;
            }
            if id == 0 {
                let mut t = at + 4;
                while t + 4 <= at + len {
                    let (tid, count) = (u16_at(d, t), u16_at(d, t + 2));
                    let (mut off, mut pos) = (0, [None; 4]);
                    for f in 0..count {
                        let (ty, flen) = (u16_at(d, t + 4 + 4 * f), u16_at(d, t + 6 + 4 * f));
                        let slot = match ty {
                            8 => Some(0),
                            12 => Some(1),
                            7 => Some(2),
                            11 => Some(3),
                            _ => None,
                        };
                        if let Some(slot) = slot {
                            pos[slot] = Some(off);
                        }
                        off += flen;
                    }
                    templates.insert(tid, (off, pos));
                    t += 4 + 4 * count;
                }
            } else if let Some(&(size, [Some(src), Some(dst), Some(sport), Some(dport)])) =
                templates.get(&id)
            {
                let mut r = at + 4;
                while size > 0 && r + size <= at + len {
                    found.push(Site {
                        src: r + src,
                        dst: r + dst,
                        sport: r + sport,
                        dport: r + dport,
                    });
                    r += size;
                }
            }
            at += len;
        }
        out.push(found);
    }
    out
}

/// The capture's subscribers, as the benchmark's selection names them.
fn subscriber(a: &[u8]) -> bool {
    matches!(a, [147, 32, ..] | [10, ..] | [192, 168, ..])
}

/// `datagram` as pass `pass` sends it: the far side's host byte plus `pass`, the
/// subscriber's ephemeral port shifted by `pass` (within 1024–65535).
fn vary(datagram: &[u8], sites: &[Site], pass: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(datagram);
    let shift = |port: &mut [u8]| {
        let p = u16::from_be_bytes([port[0], port[1]]) as u64;
        if p >= 1024 {
            let q = 1024 + (p - 1024 + pass.wrapping_mul(131)) % 64512;
            port.copy_from_slice(&(q as u16).to_be_bytes());
        }
    };
    for s in sites {
        let (far, port) = if subscriber(&out[s.src..s.src + 4]) {
            (s.dst, s.sport)
        } else {
            (s.src, s.dport)
        };
        out[far + 3] = out[far + 3].wrapping_add(pass as u8);
        if !subscriber(&out[far..far + 4]) {
            shift(&mut out[port..port + 2]);
        }
    }
}

/// The sender role: `rate` records/s for `seconds`, paced per datagram.
fn sender(to: SocketAddr, rate: u64, seconds: u64) {
    let ring = datagrams(&data().join(V9));
    let varied = std::env::var("MAMORI_BENCH_VARY").as_deref() == Ok("1");
    let sites = sites(&ring);
    let mut scratch = Vec::new();
    let per_pass_sites: usize = sites.iter().map(Vec::len).sum();
    let per_pass = records_per_pass(&ring);
    let per_datagram = per_pass as f64 / ring.len() as f64;
    // Every record is varied, or the figures would be for a different mix.
    assert!(
        !varied || per_pass_sites as u64 == per_pass,
        "{per_pass_sites} sites for {per_pass} records"
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(to).unwrap();
    // Templates first, then the paced loop.
    for d in &ring {
        sock.send(d).unwrap();
    }
    let datagrams_per_sec = rate as f64 / per_datagram;
    let start = Instant::now();
    let end = Duration::from_secs(seconds);
    let mut sent = 0u64;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= end {
            break;
        }
        let due = (elapsed.as_secs_f64() * datagrams_per_sec) as u64;
        while sent < due {
            let i = (sent as usize) % ring.len();
            if varied {
                vary(&ring[i], &sites[i], sent / ring.len() as u64, &mut scratch);
                let _ = sock.send(&scratch);
            } else {
                let _ = sock.send(&ring[i]);
            }
            sent += 1;
        }
        std::hint::spin_loop();
    }
    let full = sent / ring.len() as u64;
    let rest = (sent % ring.len() as u64) as usize;
    // Records in the datagrams sent (partial pass counted by decoding it).
    let mut d = ExportDecoder::default();
    let mut b = FlowBatch::default();
    for p in &ring {
        d.decode(Datagram::new([127, 0, 0, 1].into(), 0, p), &mut b);
    }
    b.records.clear();
    for p in &ring[..rest] {
        d.decode(Datagram::new([127, 0, 0, 1].into(), 0, p), &mut b);
    }
    let records = per_pass + full * per_pass + b.records.len() as u64;
    println!("{records} {:.3}", start.elapsed().as_secs_f64());
}

struct NoLedger;
impl Recorder for NoLedger {
    fn record(&self, _: &[mamori_core::entry::Entry]) -> std::io::Result<u64> {
        Ok(0)
    }
    fn read_from(
        &self,
        start: u64,
        _: &mut dyn FnMut(&mamori_core::entry::Entry),
    ) -> std::io::Result<u64> {
        Ok(start)
    }
}

struct Run {
    rate: u64,
    seconds: u64,
    offered: u64,
    received: u64,
    selected: u64,
    /// Lost before selection: kernel drops plus the ingest queue's drops.
    lost: u64,
    /// Dropped at the detect queue (detection behind; selection and archive unaffected).
    detect_dropped: u64,
    /// Dropped at the archive queue.
    archive_dropped: u64,
    cores: f64,
    max_rss_mib: f64,
}

fn one_run(rate: u64, seconds: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let geo_root = data().join("geo/country-ip-blocks/ipv4");
    let cfg = SensorConfig::from_toml(&format!(
        r#"data_dir = {dir:?}
[collector]
listen = ["127.0.0.1:0"]
[selection]
subscriber_prefixes = ["147.32.0.0/16", "10.0.0.0/8", "192.168.0.0/16"]
[geo]
cidr_lists = [{{ country = "US", path = {us:?} }}, {{ country = "JP", path = {jp:?} }}]
[archive]
flush = "1h"
[http]
enabled = false
"#,
        dir = dir.path(),
        us = geo_root.join("us.cidr"),
        jp = geo_root.join("jp.cidr"),
    ))
    .unwrap();
    let geo = cfg.geo.load(Path::new("/")).unwrap();
    let sensor = Sensor::start(
        &cfg,
        Deps {
            clock: Arc::new(SystemClock),
            keys: Arc::new(StaticKey {
                id: "bench".into(),
                key: mamori_flow::CryptoPanKey::from_bytes([7; 32]),
            }),
            recorder: Arc::new(NoLedger),
            geo: Arc::new(geo),
            centre_token: None,
        },
    )
    .unwrap();
    let to = sensor.udp_addrs()[0];
    let cpu0 = cpu_seconds();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("MAMORI_BENCH_ROLE", "sender")
        .env("MAMORI_BENCH_TO", to.to_string())
        .env("MAMORI_BENCH_RATE", rate.to_string())
        .env("MAMORI_BENCH_SECONDS", seconds.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let offered: u64 = it.next().unwrap().parse().unwrap();
    let took: f64 = it.next().unwrap().parse().unwrap();
    // Let the queues drain, then read the counters while running (CPU of the run only).
    std::thread::sleep(Duration::from_millis(1500));
    let cpu = cpu_seconds() - cpu0;
    let s = sensor.status().counters;
    let received: u64 = s.exporters.values().map(|e| e.records).sum();
    let q = |name: &str| s.queues.get(name).map_or(0, |q| q.dropped_records);
    let (ingest_drops, detect_dropped, archive_dropped) = (q("select"), q("detect"), q("archive"));
    let end = sensor.stop().expect("no stage panicked");
    Run {
        rate,
        seconds,
        offered,
        received,
        selected: end.counters.selection.seen,
        lost: offered.saturating_sub(received) + ingest_drops,
        detect_dropped,
        archive_dropped,
        cores: cpu / took,
        max_rss_mib: end.counters.process.max_resident_bytes as f64 / 1048576.0,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::var("MAMORI_BENCH_ROLE").as_deref() == Ok("sender") {
        let to: SocketAddr = std::env::var("MAMORI_BENCH_TO").unwrap().parse().unwrap();
        let rate: u64 = std::env::var("MAMORI_BENCH_RATE").unwrap().parse().unwrap();
        let seconds: u64 = std::env::var("MAMORI_BENCH_SECONDS")
            .unwrap()
            .parse()
            .unwrap();
        sender(to, rate, seconds);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !data().join(V9).exists() {
        println!(
            "skipping: {} not found (set MAMORI_TEST_DATA)",
            data().join(V9).display()
        );
        return;
    }
    let plan =
        std::env::var("MAMORI_BENCH_PLAN").unwrap_or_else(|_| "1000000:20,2000000:10".into());
    let repeat: usize = std::env::var("MAMORI_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!(
        "rate/s     secs  offered      received     selected     lost        det.drop    arch.drop  cores  maxRSS MiB"
    );
    for step in plan.split(',') {
        let (rate, secs) = step.split_once(':').unwrap();
        let (rate, secs): (u64, u64) = (rate.parse().unwrap(), secs.parse().unwrap());
        let mut runs = Vec::new();
        for _ in 0..repeat {
            let r = one_run(rate, secs);
            println!(
                "{:<10} {:<5} {:<12} {:<12} {:<12} {:<11} {:<11} {:<10} {:<6.3} {:.1}",
                r.rate,
                r.seconds,
                r.offered,
                r.received,
                r.selected,
                r.lost,
                r.detect_dropped,
                r.archive_dropped,
                r.cores,
                r.max_rss_mib
            );
            runs.push(r);
        }
        println!(
            "median     {secs:<5} offered/s {:.0}  lost {:.0}  detect dropped {:.0}  cores {:.3}  maxRSS {:.1} MiB",
            median(
                runs.iter()
                    .map(|r| r.offered as f64 / r.seconds as f64)
                    .collect()
            ),
            median(runs.iter().map(|r| r.lost as f64).collect()),
            median(runs.iter().map(|r| r.detect_dropped as f64).collect()),
            median(runs.iter().map(|r| r.cores).collect()),
            median(runs.iter().map(|r| r.max_rss_mib).collect()),
        );
    }
}
