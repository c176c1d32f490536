//! `mamori detect` end to end beside `nfdump -s` on the same flows, in the same run
//! (issue 7, REQUIREMENTS CI-11, CI-12).
//!
//! nfdump reads only its own nfcapd files, and the largest file in `../shared/data/botnet/`
//! is a Zeek `conn.log` (sdt-002, 4,504 connections). So the flows of that file are turned
//! into **IPFIX** (RFC 7011) once, and both tools get the same IPFIX: nfcapd receives the
//! datagrams on loopback and writes its file (the count it stored is checked against the
//! count sent, so both tools really read the same flows), and the same datagrams are written
//! as a pcap that `mamori detect` decodes as exports. Then, alternating, each tool is timed
//! over its file:
//!
//! - `mamori detect exports.pcap --json --top 50` — decode, then every detector (beacon/C2,
//!   fan-in, scan, DDoS), findings printed;
//! - `nfdump -R dir -q -n 50 -s dstip/flows -s srcip/flows -s dstport/flows` — nfdump's
//!   aggregation: three top-N statistics, the part of mamori's work a peer does.
//!
//! The file is also replicated with its times shifted (`MAMORI_BENCH_COPIES`, default
//! `1,100,500`) so start-up does not hide the per-flow cost. Wall and CPU seconds (user+sys
//! via `/usr/bin/time` when installed) are the median of `MAMORI_BENCH_REPEATS` (default 7).
//!
//! ```sh
//! apt-get install nfdump time
//! MAMORI_TEST_DATA=../shared/data cargo bench -p mamori --bench detect_vs_nfdump
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)] // a benchmark harness: it starts nfcapd and prints figures

use mamori_flow::{FlowBatch, FlowRecord, ZeekConnReader};
use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TEMPLATE_V4: u16 = 256;
const TEMPLATE_V6: u16 = 257;
const MAX_DATAGRAM: usize = 1400;

/// (IE id, length) of the two templates' fields after the addresses.
const COMMON_FIELDS: [(u16, u16); 8] = [
    (7, 2),   // sourceTransportPort
    (11, 2),  // destinationTransportPort
    (4, 1),   // protocolIdentifier
    (6, 1),   // tcpControlBits
    (2, 8),   // packetDeltaCount
    (1, 8),   // octetDeltaCount
    (152, 8), // flowStartMilliseconds
    (153, 8), // flowEndMilliseconds
];

fn template_set() -> Vec<u8> {
    let mut t = Vec::new();
    for (id, (src, dst, len)) in [
        (TEMPLATE_V4, (8u16, 12u16, 4u16)),
        (TEMPLATE_V6, (27, 28, 16)),
    ] {
        t.extend_from_slice(&id.to_be_bytes());
        t.extend_from_slice(&10u16.to_be_bytes());
        for (ie, l) in [(src, len), (dst, len)].into_iter().chain(COMMON_FIELDS) {
            t.extend_from_slice(&ie.to_be_bytes());
            t.extend_from_slice(&l.to_be_bytes());
        }
    }
    let mut set = Vec::with_capacity(4 + t.len());
    set.extend_from_slice(&2u16.to_be_bytes());
    set.extend_from_slice(&((4 + t.len()) as u16).to_be_bytes());
    set.extend_from_slice(&t);
    set
}

fn encode(r: &FlowRecord, out: &mut Vec<u8>) {
    match (r.src_addr, r.dst_addr) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            out.extend_from_slice(&to_v6(s).octets());
            out.extend_from_slice(&to_v6(d).octets());
        }
    }
    out.extend_from_slice(&r.src_port.to_be_bytes());
    out.extend_from_slice(&r.dst_port.to_be_bytes());
    out.push(r.protocol);
    out.push(r.tcp_flags);
    out.extend_from_slice(&r.packets.max(1).to_be_bytes());
    out.extend_from_slice(&r.bytes.to_be_bytes());
    out.extend_from_slice(&(r.start_ms as u64).to_be_bytes());
    out.extend_from_slice(&(r.end_ms.max(r.start_ms) as u64).to_be_bytes());
}

fn to_v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// IPFIX messages carrying `records` (forward direction of each flow), the templates in
/// every message so either reader may start anywhere.
fn ipfix_messages(records: &[FlowRecord]) -> Vec<Vec<u8>> {
    let templates = template_set();
    let mut messages = Vec::new();
    let mut sequence = 0u32;
    let mut i = 0;
    while i < records.len() {
        let mut msg = vec![0u8; 16];
        msg.extend_from_slice(&templates);
        let mut export_ms = 0i64;
        while i < records.len() && msg.len() < MAX_DATAGRAM - 120 {
            let v4 = records[i].src_addr.is_ipv4() && records[i].dst_addr.is_ipv4();
            let set_start = msg.len();
            msg.extend_from_slice(&(if v4 { TEMPLATE_V4 } else { TEMPLATE_V6 }).to_be_bytes());
            msg.extend_from_slice(&[0, 0]);
            let mut n = 0u32;
            while i < records.len()
                && msg.len() < MAX_DATAGRAM - 80
                && (records[i].src_addr.is_ipv4() && records[i].dst_addr.is_ipv4()) == v4
            {
                encode(&records[i], &mut msg);
                export_ms = export_ms.max(records[i].end_ms);
                i += 1;
                n += 1;
            }
            let set_len = (msg.len() - set_start) as u16;
            msg[set_start + 2..set_start + 4].copy_from_slice(&set_len.to_be_bytes());
            sequence = sequence.wrapping_add(n);
        }
        let len = msg.len() as u16;
        msg[0..2].copy_from_slice(&10u16.to_be_bytes());
        msg[2..4].copy_from_slice(&len.to_be_bytes());
        msg[4..8].copy_from_slice(&((export_ms / 1000) as u32).to_be_bytes());
        msg[8..12].copy_from_slice(&sequence.to_be_bytes());
        msg[12..16].copy_from_slice(&1u32.to_be_bytes()); // observation domain
        messages.push(msg);
    }
    messages
}

/// A classic pcap (Ethernet) of the messages as UDP from 192.0.2.1 to 192.0.2.2:4739.
fn write_pcap(path: &Path, messages: &[Vec<u8>], first_ms: i64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
    f.write_all(&2u16.to_le_bytes()).unwrap();
    f.write_all(&4u16.to_le_bytes()).unwrap();
    f.write_all(&[0; 8]).unwrap();
    f.write_all(&65_535u32.to_le_bytes()).unwrap();
    f.write_all(&1u32.to_le_bytes()).unwrap();
    for (k, m) in messages.iter().enumerate() {
        let udp_len = 8 + m.len();
        let ip_len = 20 + udp_len;
        let mut frame = Vec::with_capacity(14 + ip_len);
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        frame.extend_from_slice(&[0x45, 0, (ip_len >> 8) as u8, ip_len as u8, 0, 0, 0, 0]);
        frame.extend_from_slice(&[64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        frame.extend_from_slice(&[0x12, 0x34, 0x12, 0x83]); // 4660 → 4739
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(m);
        let ts = first_ms + k as i64;
        f.write_all(&((ts / 1000) as u32).to_le_bytes()).unwrap();
        f.write_all(&(((ts % 1000) * 1000) as u32).to_le_bytes())
            .unwrap();
        f.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&frame).unwrap();
    }
    f.flush().unwrap();
}

/// Has nfcapd store the messages in `dir`; returns the flows it stored.
fn nfcapd_store(dir: &Path, messages: &[Vec<u8>]) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("nfcapd")
        .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-t", "3600"])
        .args(["-B", "33554432", "-w"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nfcapd (apt-get install nfdump)");
    std::thread::sleep(Duration::from_millis(800));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap();
    for (k, m) in messages.iter().enumerate() {
        sock.send(m).unwrap();
        if k % 64 == 63 {
            std::thread::sleep(Duration::from_micros(500)); // well under nfcapd's lossless rate
        }
    }
    std::thread::sleep(Duration::from_millis(800));
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap();
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(dir)
        .arg("-I")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Flows: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `cmd` with stdout discarded; returns (wall s, cpu s if measurable).
fn timed(program: &str, args: &[String]) -> (f64, Option<f64>) {
    let time = Path::new("/usr/bin/time");
    let start = Instant::now();
    let out = if time.exists() {
        Command::new(time)
            .args(["-f", "%U %S"])
            .arg(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    } else {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let wall = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{program} {args:?} failed: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let cpu = stderr.lines().last().and_then(|l| {
        let mut it = l.split_whitespace().map(|x| x.parse::<f64>().ok());
        Some(it.next()?? + it.next()??)
    });
    (wall, if time.exists() { cpu } else { None })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list here
    }
    let Some(input) = mamori_core::testdata::path("botnet/sdt-002-port-scanning/conn.log") else {
        println!("skipped: botnet/sdt-002-port-scanning/conn.log not found under MAMORI_TEST_DATA");
        return;
    };
    let mamori = env!("CARGO_BIN_EXE_mamori");
    let copies: Vec<usize> = std::env::var("MAMORI_BENCH_COPIES")
        .unwrap_or_else(|_| "1,100,500".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let repeats: usize = std::env::var("MAMORI_BENCH_REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);

    let mut reader = ZeekConnReader::new(std::io::BufReader::new(
        std::fs::File::open(&input).unwrap(),
    ))
    .unwrap();
    let mut batch = FlowBatch::with_capacity(8192);
    let mut records = Vec::new();
    while reader.read_batch(&mut batch, 8192).unwrap() > 0 {
        records.extend_from_slice(&batch.records);
        batch.clear();
    }
    let first = records.iter().map(|r| r.start_ms).min().unwrap_or(0);
    let last = records
        .iter()
        .map(|r| r.end_ms.max(r.start_ms))
        .max()
        .unwrap_or(0);
    let span = last - first + 1000;

    let work: PathBuf =
        std::env::temp_dir().join(format!("mamori-bench-detect-{}", std::process::id()));
    println!(
        "input: {} ({} flows), repeats: {repeats}",
        input.display(),
        records.len()
    );
    println!(
        "{:>7} {:>9} | {:>9} {:>9} | {:>9} {:>9} | {:>10} {:>10}",
        "copies", "flows", "mamori s", "cpu s", "nfdump s", "cpu s", "wall ratio", "cpu ratio"
    );
    for &n in &copies {
        let flows: Vec<FlowRecord> = (0..n)
            .flat_map(|k| {
                records.iter().map(move |r| {
                    let mut r = *r;
                    r.start_ms += k as i64 * span;
                    r.end_ms += k as i64 * span;
                    r
                })
            })
            .collect();
        let messages = ipfix_messages(&flows);
        let dir = work.join(format!("x{n}"));
        let nfdir = dir.join("nfcapd");
        let pcap = dir.join("exports.pcap");
        let stored = nfcapd_store(&nfdir, &messages);
        assert_eq!(stored, flows.len() as u64, "nfcapd stored every flow sent");
        write_pcap(&pcap, &messages, first);

        let m_args: Vec<String> = vec![
            "detect".into(),
            pcap.display().to_string(),
            "--json".into(),
            "--top".into(),
            "50".into(),
        ];
        let n_args: Vec<String> = ["-R", &nfdir.display().to_string(), "-q", "-n", "50"]
            .into_iter()
            .map(String::from)
            .chain(
                [
                    "-s",
                    "dstip/flows",
                    "-s",
                    "srcip/flows",
                    "-s",
                    "dstport/flows",
                ]
                .into_iter()
                .map(String::from),
            )
            .collect();
        // Both tools must see every flow: nfcapd's count is checked above, mamori's here.
        let check = Command::new(mamori).args(&m_args).output().unwrap();
        let summary = String::from_utf8_lossy(&check.stderr);
        let read: usize = summary
            .lines()
            .find_map(|l| l.strip_suffix(" findings"))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .unwrap_or(0);
        assert_eq!(read, flows.len(), "mamori read every flow: {summary}");
        let (mut mw, mut mc, mut nw, mut nc) = (vec![], vec![], vec![], vec![]);
        for _ in 0..repeats {
            let (w, c) = timed(mamori, &m_args);
            mw.push(w);
            mc.extend(c);
            let (w, c) = timed("nfdump", &n_args);
            nw.push(w);
            nc.extend(c);
        }
        let (mw, nw) = (median(mw), median(nw));
        let cpu = |v: Vec<f64>| if v.is_empty() { f64::NAN } else { median(v) };
        let (mc, nc) = (cpu(mc), cpu(nc));
        println!(
            "{n:>7} {:>9} | {mw:>9.3} {mc:>9.3} | {nw:>9.3} {nc:>9.3} | {:>10.2} {:>10.2}",
            flows.len(),
            mw / nw,
            mc / nc
        );
        std::fs::remove_dir_all(&dir).ok();
    }
    std::fs::remove_dir_all(&work).ok();
}
