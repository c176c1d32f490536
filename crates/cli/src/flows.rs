//! `mamori flows FILE…` and `mamori collect`: flow records out of files and export
//! streams, as JSON lines or CSV, with counts per exporter and per anomaly kind.

use anyhow::Context;
use mamori_core::time::{from_millis, rfc3339};
use mamori_flow::{AnomalyCounts, FlowBatch, FlowRecord};
use mamori_sensor::files::{self, FileFormat, ReadError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
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
    /// The sensor's per-flow Parquet archive files.
    Parquet,
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

/// Reads one file into the sink (the readers live in `mamori_sensor::files`, shared with
/// the sensor's file inputs).
pub(crate) fn read_file<S: BatchSink>(
    path: &Path,
    format: Format,
    sink: &mut S,
) -> anyhow::Result<()> {
    let format = match format {
        Format::Auto => FileFormat::Auto,
        Format::Zeek => FileFormat::Zeek,
        Format::Argus => FileFormat::Argus,
        Format::PcapExports => FileFormat::PcapExports,
        Format::PcapMeter => FileFormat::PcapMeter,
        Format::Parquet => FileFormat::Parquet,
    };
    let mut adapter = Adapter(sink);
    files::read_file(path, format, &mut adapter).map_err(|e| match e {
        ReadError::Sink(e) => e,
        other => anyhow::Error::new(other),
    })
}

struct Adapter<'a, S>(&'a mut S);

impl<S: BatchSink> files::BatchSink for Adapter<'_, S> {
    type Error = anyhow::Error;
    fn batch(&mut self, batch: &FlowBatch) -> anyhow::Result<()> {
        self.0.batch(batch)
    }
}
