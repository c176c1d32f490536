//! `mamori flows FILE…` and `mamori collect`: flow records out of files and export
//! streams, as JSON lines or CSV, with counts per exporter and per anomaly kind.

use anyhow::{Context, bail};
use mamori_core::time::{from_millis, rfc3339};
use mamori_flow::{
    AnomalyCounts, ArgusReader, Datagram, DatagramDecoder, ExportDecoder, FlowBatch, FlowMeter,
    FlowRecord, MeterConfig, PcapReader, ZeekConnReader, udp_payload,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// One JSON object per line.
    Json,
    /// CSV with a header line.
    Csv,
    /// Nothing (with --stats, only the counts).
    None,
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Detect from the content.
    Auto,
    /// Zeek conn.log (TSV with #fields, or JSON lines).
    Zeek,
    /// Argus / CTU-13 binetflow.
    Argus,
    /// pcap/pcapng of flow exports (NetFlow, IPFIX, sFlow), decoded as exports.
    PcapExports,
    /// pcap/pcapng of any other traffic, reduced to flows by the flow meter.
    PcapMeter,
}

/// A record as printed: metadata only, times in RFC 3339 UTC.
#[derive(Serialize)]
struct Row {
    start: String,
    end: String,
    src: String,
    src_port: u16,
    dst: String,
    dst_port: u16,
    protocol: u8,
    packets: u64,
    bytes: u64,
    rev_packets: u64,
    rev_bytes: u64,
    tcp_flags: u8,
    icmp_type: u8,
    icmp_code: u8,
    tos: u8,
    sampling_rate: u32,
    exporter: String,
    observation_domain: u32,
    input_if: u32,
    output_if: u32,
    direction: String,
    source: String,
}

fn time(ms: i64) -> String {
    from_millis(ms).map(rfc3339).unwrap_or_default()
}

fn row(r: &FlowRecord) -> Row {
    Row {
        start: time(r.start_ms),
        end: time(r.end_ms),
        src: r.src_addr.to_string(),
        src_port: r.src_port,
        dst: r.dst_addr.to_string(),
        dst_port: r.dst_port,
        protocol: r.protocol,
        packets: r.packets,
        bytes: r.bytes,
        rev_packets: r.rev_packets,
        rev_bytes: r.rev_bytes,
        tcp_flags: r.tcp_flags,
        icmp_type: r.icmp_type,
        icmp_code: r.icmp_code,
        tos: r.tos,
        sampling_rate: r.sampling_rate,
        exporter: r.exporter.to_string(),
        observation_domain: r.observation_domain,
        input_if: r.input_if,
        output_if: r.output_if,
        direction: format!("{:?}", r.direction).to_lowercase(),
        source: format!("{:?}", r.source).to_lowercase(),
    }
}

const CSV_HEADER: &str = "start,end,src,src_port,dst,dst_port,protocol,packets,bytes,rev_packets,rev_bytes,tcp_flags,icmp_type,icmp_code,tos,sampling_rate,exporter,observation_domain,input_if,output_if,direction,source";

/// Where batches read from files go: the printer of `mamori flows`, the detectors of
/// `mamori detect`.
pub(crate) trait BatchSink {
    fn batch(&mut self, batch: &FlowBatch) -> anyhow::Result<()>;
}

impl<W: Write> BatchSink for Printer<W> {
    fn batch(&mut self, batch: &FlowBatch) -> anyhow::Result<()> {
        Printer::batch(self, batch)
    }
}

/// Writes records in the chosen form; counts what it wrote.
pub(crate) struct Printer<W: Write> {
    out: W,
    output: Output,
    header_done: bool,
    /// Records per exporter.
    pub records: BTreeMap<String, u64>,
    /// Anomalies by kind, over everything read.
    pub anomalies: AnomalyCounts,
}

impl<W: Write> Printer<W> {
    pub(crate) fn new(out: W, output: Output) -> Self {
        Self {
            out,
            output,
            header_done: false,
            records: BTreeMap::new(),
            anomalies: AnomalyCounts::default(),
        }
    }

    pub(crate) fn batch(&mut self, batch: &FlowBatch) -> anyhow::Result<()> {
        self.anomalies.merge(&batch.anomalies);
        for r in &batch.records {
            *self.records.entry(r.exporter.to_string()).or_default() += 1;
            match self.output {
                Output::None => {}
                Output::Json => {
                    serde_json::to_writer(&mut self.out, &row(r))?;
                    self.out.write_all(b"\n")?;
                }
                Output::Csv => {
                    if !self.header_done {
                        writeln!(self.out, "{CSV_HEADER}")?;
                        self.header_done = true;
                    }
                    let v = row(r);
                    writeln!(
                        self.out,
                        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                        v.start,
                        v.end,
                        v.src,
                        v.src_port,
                        v.dst,
                        v.dst_port,
                        v.protocol,
                        v.packets,
                        v.bytes,
                        v.rev_packets,
                        v.rev_bytes,
                        v.tcp_flags,
                        v.icmp_type,
                        v.icmp_code,
                        v.tos,
                        v.sampling_rate,
                        v.exporter,
                        v.observation_domain,
                        v.input_if,
                        v.output_if,
                        v.direction,
                        v.source
                    )?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush().context("writing records")
    }

    /// The counts, for `--stats`.
    pub(crate) fn summary(&self) -> String {
        let mut s = String::from("records per exporter:");
        for (exp, n) in &self.records {
            s.push_str(&format!("\n  {exp:<40} {n:>10}"));
        }
        s.push_str("\nanomalies by kind:");
        for (kind, n) in self.anomalies.iter().filter(|(_, n)| *n > 0) {
            s.push_str(&format!("\n  {:<40} {n:>10}", kind.name()));
        }
        if self.anomalies.total() == 0 {
            s.push_str("\n  (none)");
        }
        s
    }
}

const BATCH_LINES: usize = 4096;

/// Opens `path`, decompressing gzip, xz or zstd on the fly (recognised by their magic
/// bytes, not the file name), so CTU-13's compressed files are read as they ship.
fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead + Send>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut raw = BufReader::with_capacity(1 << 20, file);
    let head = raw
        .fill_buf()
        .with_context(|| format!("reading {}", path.display()))?;
    let cap = 1 << 20;
    Ok(match head {
        [0x1f, 0x8b, ..] => Box::new(BufReader::with_capacity(
            cap,
            flate2::bufread::MultiGzDecoder::new(raw),
        )),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Box::new(BufReader::with_capacity(
            cap,
            liblzma::bufread::XzDecoder::new_multi_decoder(raw),
        )),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(raw)
                .map_err(|e| anyhow::anyhow!("{}: not a valid zstd stream: {e}", path.display()))?;
            Box::new(BufReader::with_capacity(cap, decoder))
        }
        _ => Box::new(raw),
    })
}

fn is_pcap(head: &[u8]) -> bool {
    matches!(
        head.get(..4),
        Some(
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x0a, 0x0d, 0x0d, 0x0a]
        )
    )
}

/// A UDP payload that starts like a NetFlow v5/v9, IPFIX or sFlow v5 export.
fn looks_like_export(p: &[u8]) -> bool {
    match p {
        [0, 5 | 9 | 10, ..] => p.len() >= 16,
        [0, 0, 0, 5, ..] => p.len() >= 28,
        _ => false,
    }
}

/// Whether a capture carries flow exports: judged on its first 8 MiB — most of its frames
/// are UDP, and nearly all of those start like an export.
fn capture_of_exports(path: &Path) -> anyhow::Result<bool> {
    let input = open_input(path)?;
    let (mut frames, mut udp, mut exports) = (0u64, 0u64, 0u64);
    let mut reader = PcapReader::new(std::io::Read::take(input, 8 << 20))?;
    // A frame cut by the 8 MiB limit ends the sample with an error: what was read counts.
    let _ = reader.for_each_frame(|f| {
        frames += 1;
        if let Some((_, _, payload)) = udp_payload(f.link, f.data) {
            udp += 1;
            exports += u64::from(looks_like_export(payload));
        }
    });
    Ok(udp > 0 && udp * 2 >= frames && exports * 10 >= udp * 9)
}

fn read_pcap<S: BatchSink>(path: &Path, exports: bool, printer: &mut S) -> anyhow::Result<()> {
    let mut reader = PcapReader::new(open_input(path)?)?;
    let mut batch = FlowBatch::with_capacity(BATCH_LINES * 2);
    let mut failed: Option<anyhow::Error> = None;
    let mut decoder = ExportDecoder::default();
    let mut meter = FlowMeter::new(MeterConfig::default());
    let mut last_expire = i64::MIN;
    reader.for_each_frame(|f| {
        if failed.is_some() {
            return;
        }
        if exports {
            if let Some((src, _, payload)) =
                udp_payload(f.link, f.data).filter(|(_, _, p)| looks_like_export(p))
            {
                decoder.decode(Datagram::new(src, f.ts_ms, payload), &mut batch);
            }
        } else {
            meter.packet(f.ts_ms, f.link, f.data, &mut batch);
            // Ending idle flows once a second of capture time keeps the table bounded.
            if f.ts_ms >= last_expire.saturating_add(1000) {
                meter.expire(f.ts_ms, &mut batch);
                last_expire = f.ts_ms;
            }
        }
        if batch.len() >= BATCH_LINES {
            if let Err(e) = printer.batch(&batch) {
                failed = Some(e);
            }
            batch.clear();
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    meter.flush(&mut batch);
    printer.batch(&batch)
}

fn detect(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(head);
    let first = text.trim_start();
    if first.starts_with("#separator") || first.starts_with("#fields") || first.starts_with('{') {
        return Some(Format::Zeek);
    }
    let header = first.lines().next().unwrap_or("");
    if header.contains("SrcAddr") && (header.contains("StartTime") || header.contains("Dur")) {
        return Some(Format::Argus);
    }
    None
}

/// Reads one file into the printer.
pub(crate) fn read_file<S: BatchSink>(
    path: &Path,
    format: Format,
    printer: &mut S,
) -> anyhow::Result<()> {
    let mut input = open_input(path)?;
    let format = match format {
        Format::Auto => {
            let head = input
                .fill_buf()
                .with_context(|| format!("reading {}", path.display()))?;
            if is_pcap(head) {
                if capture_of_exports(path)? {
                    Format::PcapExports
                } else {
                    Format::PcapMeter
                }
            } else {
                match detect(head) {
                    Some(f) => f,
                    None => bail!(
                        "{}: not a format mamori recognises (pcap/pcapng, Zeek conn.log, Argus binetflow); use --format to force one",
                        path.display()
                    ),
                }
            }
        }
        f => f,
    };
    let mut batch = FlowBatch::with_capacity(BATCH_LINES);
    if matches!(format, Format::PcapExports | Format::PcapMeter) {
        drop(input);
        return read_pcap(path, format == Format::PcapExports, printer)
            .with_context(|| format!("reading {}", path.display()));
    }
    if format == Format::Argus {
        drain(ArgusReader::new(input)?, printer, &mut batch, |r, b| {
            r.read_batch(b, BATCH_LINES)
        })
    } else {
        drain(ZeekConnReader::new(input)?, printer, &mut batch, |r, b| {
            r.read_batch(b, BATCH_LINES)
        })
    }
    .with_context(|| format!("reading {}", path.display()))
}

fn drain<R, S: BatchSink>(
    mut reader: R,
    printer: &mut S,
    batch: &mut FlowBatch,
    mut next: impl FnMut(&mut R, &mut FlowBatch) -> Result<usize, mamori_flow::Error>,
) -> anyhow::Result<()> {
    loop {
        batch.clear();
        let n = next(&mut reader, batch)?;
        printer.batch(batch)?;
        if n == 0 {
            return Ok(());
        }
    }
}
