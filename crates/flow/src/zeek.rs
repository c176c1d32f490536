//! Zeek `conn.log`: the TSV form (`#separator`, `#fields`, `#types` headers; `-` unset,
//! `(empty)` empty) and the JSON-lines form (`LogAscii::use_json`).
//!
//! One connection line becomes one [`FlowRecord`] (originator → responder forward,
//! responder → originator in the `rev_*` counters) or one counted [`Anomaly`].
//!
//! The TSV form is split on tabs directly rather than through the `csv` crate: Zeek's
//! TSV has no quoting (separators inside values are escaped as `\x09`), and the csv
//! state machine alone cost half the time per line (measured: 2.5 M lines/s with it;
//! docs/benchmarks/flow-decode.md has the figure without it).
//!
//! **Hot path** (issue 5, ≥ 5 M lines/s/core): lines are found with `memchr` and parsed
//! in the reader's buffer (a line is copied only when it straddles two buffers), TSV
//! fields are split eight bytes at a time, and addresses, ports, counters and epoch
//! times go through one-pass parsers in `text`; no allocation per line. JSON lines go
//! through `zeek_json`'s scanner, which declines to `serde_json` on anything unusual.
//!
//! **Architecture invariant:** the fast path never decides differently from the
//! reference path ([`ZeekConnReader::reference`]: lines copied, split byte by byte, JSON
//! through `serde_json`). `tests/text_equivalence.rs` holds both to the same record or
//! the same anomaly on every line of the real logs and on mutated lines (CI-1).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::io::BufRead;

use serde::Deserialize;

use crate::Error;
use crate::anomaly::Anomaly;
use crate::record::{FlowBatch, FlowRecord, FlowSource};
use crate::text::{self, Line};

/// Column positions from the `#fields` header.
#[derive(Debug, Default, Clone, Copy)]
struct Columns {
    ts: Option<usize>,
    orig_h: Option<usize>,
    orig_p: Option<usize>,
    resp_h: Option<usize>,
    resp_p: Option<usize>,
    proto: Option<usize>,
    duration: Option<usize>,
    orig_pkts: Option<usize>,
    orig_ip_bytes: Option<usize>,
    resp_pkts: Option<usize>,
    resp_ip_bytes: Option<usize>,
    /// The highest column index read.
    last: usize,
}

impl Columns {
    fn from_header(line: &[u8]) -> Self {
        let mut c = Columns::default();
        // Column 0 is the `#fields` tag itself.
        for (i, name) in line.split(|b| *b == b'\t').enumerate().skip(1) {
            let slot = match name {
                b"ts" => &mut c.ts,
                b"id.orig_h" => &mut c.orig_h,
                b"id.orig_p" => &mut c.orig_p,
                b"id.resp_h" => &mut c.resp_h,
                b"id.resp_p" => &mut c.resp_p,
                b"proto" => &mut c.proto,
                b"duration" => &mut c.duration,
                b"orig_pkts" => &mut c.orig_pkts,
                b"orig_ip_bytes" => &mut c.orig_ip_bytes,
                b"resp_pkts" => &mut c.resp_pkts,
                b"resp_ip_bytes" => &mut c.resp_ip_bytes,
                _ => continue,
            };
            *slot = Some(i - 1);
            c.last = c.last.max(i - 1);
        }
        c
    }
}

/// The two forms of `conn.log`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per reader, never moved in a hot loop
enum Format {
    Tsv {
        /// Field boundaries of the current line (reused: no per-line allocation).
        spans: Vec<(usize, usize)>,
        columns: Option<Columns>,
    },
    Json {
        /// The key order of the lines read so far (speeds the scanner up only).
        order: crate::zeek_json::KeyOrder,
    },
}

/// Reads Zeek `conn.log` lines into flow batches; detects TSV or JSON from the first byte.
pub struct ZeekConnReader<R> {
    input: R,
    /// A line that straddles the input's buffer is copied here (reused).
    line: Vec<u8>,
    format: Format,
    /// `false`: the reference path only (every line copied, TSV split byte by byte, JSON
    /// through `serde_json`), for the differential tests and benchmarks.
    fast: bool,
    lines: u64,
}

impl<R> std::fmt::Debug for ZeekConnReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeekConnReader")
            .field("format", &self.format)
            .field("fast", &self.fast)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> ZeekConnReader<R> {
    /// A reader over `input`, whose format is detected from its first non-blank byte.
    pub fn new(mut input: R) -> Result<Self, Error> {
        let json = loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                break false;
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(p) => break buf.get(p) == Some(&b'{'),
                None => {
                    let n = buf.len();
                    input.consume(n);
                }
            }
        };
        let format = if json {
            Format::Json {
                order: crate::zeek_json::KeyOrder::default(),
            }
        } else {
            Format::Tsv {
                spans: Vec::with_capacity(32),
                columns: None,
            }
        };
        Ok(Self {
            input,
            line: Vec::with_capacity(1024),
            format,
            fast: true,
            lines: 0,
        })
    }

    /// The same reader on its reference path only: every line copied, TSV lines split
    /// byte by byte, every JSON line parsed by `serde_json`. Slower; it gives the same
    /// records and anomalies as [`ZeekConnReader::new`] (the differential tests compare
    /// the two on every line of the real logs) and serves as the benchmarks' baseline.
    pub fn reference(input: R) -> Result<Self, Error> {
        let mut r = Self::new(input)?;
        r.fast = false;
        Ok(r)
    }

    /// Data lines read so far (header and comment lines excluded).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Reads up to `max_lines` data lines into `batch`; returns how many were read
    /// (0 at the end of the input).
    pub fn read_batch(&mut self, batch: &mut FlowBatch, max_lines: usize) -> Result<usize, Error> {
        let Self {
            input,
            line,
            format,
            fast,
            ..
        } = self;
        let fast = *fast;
        let each = |l: &[u8], batch: &mut FlowBatch| match format {
            Format::Tsv { spans, columns } => tsv_line(l, spans, columns, batch, fast),
            Format::Json { order } => json_line(l, batch, fast, order),
        };
        let n = if fast {
            text::for_each_line(input, line, batch, max_lines, each)?
        } else {
            text::for_each_line_copying(input, line, batch, max_lines, each)?
        };
        self.lines += n as u64;
        Ok(n)
    }
}

fn tsv_line(
    line: &[u8],
    spans: &mut Vec<(usize, usize)>,
    columns: &mut Option<Columns>,
    batch: &mut FlowBatch,
    fast: bool,
) -> Line {
    if line.is_empty() {
        return Line::Header;
    }
    if line.first() == Some(&b'#') {
        if line.starts_with(b"#fields\t") {
            *columns = Some(Columns::from_header(line));
        }
        return Line::Header;
    }
    let Some(c) = columns else {
        batch.count(Anomaly::MalformedLine {
            what: "data line before the #fields header",
        });
        return Line::Data;
    };
    // Split only as far as the last column we read.
    spans.clear();
    let mut start = 0;
    if fast {
        text::for_each_separator(line, b'\t', |i| {
            spans.push((start, i));
            start = i + 1;
            spans.len() <= c.last
        });
    } else {
        for (i, b) in line.iter().enumerate() {
            if *b == b'\t' {
                spans.push((start, i));
                start = i + 1;
                if spans.len() > c.last {
                    break;
                }
            }
        }
    }
    if spans.len() <= c.last {
        spans.push((start, line.len()));
    }
    let get = |i: Option<usize>| {
        let (a, b) = *spans.get(i?)?;
        line.get(a..b)
    };
    match conn(
        get(c.ts),
        get(c.orig_h),
        get(c.orig_p),
        get(c.resp_h),
        get(c.resp_p),
        get(c.proto),
        get(c.duration),
        [
            get(c.orig_pkts),
            get(c.orig_ip_bytes),
            get(c.resp_pkts),
            get(c.resp_ip_bytes),
        ],
    ) {
        Ok(r) => batch.records.push(r),
        Err(a) => batch.count(a),
    }
    Line::Data
}

/// Zeek's unset (`-`) and empty (`(empty)`) markers read as "no value".
fn present(b: Option<&[u8]>) -> Option<&[u8]> {
    b.filter(|v| !matches!(*v, b"-" | b"(empty)" | b""))
}

fn count(b: Option<&[u8]>, field: &'static str) -> Result<u64, Anomaly> {
    match present(b) {
        None => Ok(0),
        Some(v) => text::uint(v).ok_or(Anomaly::BadField { field }),
    }
}

#[allow(clippy::too_many_arguments)]
fn conn(
    ts: Option<&[u8]>,
    orig_h: Option<&[u8]>,
    orig_p: Option<&[u8]>,
    resp_h: Option<&[u8]>,
    resp_p: Option<&[u8]>,
    proto: Option<&[u8]>,
    duration: Option<&[u8]>,
    counters: [Option<&[u8]>; 4],
) -> Result<FlowRecord, Anomaly> {
    let start_ms = present(ts)
        .and_then(text::seconds_to_ms)
        .ok_or(Anomaly::BadField { field: "ts" })?;
    let src_addr = present(orig_h)
        .and_then(text::ip)
        .ok_or(Anomaly::BadField { field: "id.orig_h" })?;
    let dst_addr = present(resp_h)
        .and_then(text::ip)
        .ok_or(Anomaly::BadField { field: "id.resp_h" })?;
    let port = |b: Option<&[u8]>, field| -> Result<u16, Anomaly> {
        u16::try_from(count(b, field)?).map_err(|_| Anomaly::BadField { field })
    };
    let src_port = port(orig_p, "id.orig_p")?;
    let dst_port = port(resp_p, "id.resp_p")?;
    let protocol = match present(proto) {
        None => 0,
        Some(p) => text::protocol(p).ok_or(Anomaly::BadField { field: "proto" })?,
    };
    let dur_ms = match present(duration) {
        None => 0,
        Some(d) => text::seconds_to_ms(d).ok_or(Anomaly::BadField { field: "duration" })?,
    };
    let [op, ob, rp, rb] = counters;
    let mut rec = FlowRecord {
        src_addr,
        dst_addr,
        start_ms,
        end_ms: start_ms.saturating_add(dur_ms),
        packets: count(op, "orig_pkts")?,
        bytes: count(ob, "orig_ip_bytes")?,
        rev_packets: count(rp, "resp_pkts")?,
        rev_bytes: count(rb, "resp_ip_bytes")?,
        src_port,
        dst_port,
        protocol,
        source: FlowSource::Zeek,
        ..FlowRecord::default()
    };
    if rec.is_icmp() {
        // Zeek writes the ICMP type as the originator port and the code as the responder's.
        rec.icmp_type = u8::try_from(src_port).unwrap_or(u8::MAX);
        rec.icmp_code = u8::try_from(dst_port).unwrap_or(u8::MAX);
    }
    Ok(rec)
}

/// The `conn.log` fields we read from a JSON line; strings are borrowed from the line.
/// Filled by `serde_json` (the reference path) or by [`crate::zeek_json::scan_into`].
#[derive(Deserialize, Default, Debug, Clone, PartialEq)]
pub(crate) struct ConnJson<'a> {
    pub(crate) ts: Option<f64>,
    #[serde(rename = "id.orig_h", borrow)]
    pub(crate) orig_h: Option<&'a str>,
    #[serde(rename = "id.orig_p")]
    pub(crate) orig_p: Option<u64>,
    #[serde(rename = "id.resp_h", borrow)]
    pub(crate) resp_h: Option<&'a str>,
    #[serde(rename = "id.resp_p")]
    pub(crate) resp_p: Option<u64>,
    #[serde(borrow)]
    pub(crate) proto: Option<&'a str>,
    pub(crate) duration: Option<f64>,
    pub(crate) orig_pkts: Option<u64>,
    pub(crate) orig_ip_bytes: Option<u64>,
    pub(crate) resp_pkts: Option<u64>,
    pub(crate) resp_ip_bytes: Option<u64>,
}

fn json_line(
    line: &[u8],
    batch: &mut FlowBatch,
    fast: bool,
    order: &mut crate::zeek_json::KeyOrder,
) -> Line {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return Line::Header;
    }
    let mut parsed = ConnFields::default();
    if !(fast && crate::zeek_json::scan_into(trimmed, order, &mut parsed)) {
        // Anything the scanner does not fully understand takes the serde path.
        parsed = match serde_json::from_slice::<ConnJson<'_>>(trimmed) {
            Ok(p) => p.into(),
            Err(_) => {
                batch.count(Anomaly::MalformedLine {
                    what: "not a JSON object",
                });
                return Line::Data;
            }
        };
    }
    match conn_json(&parsed) {
        Ok(r) => batch.records.push(r),
        Err(a) => batch.count(a),
    }
    Line::Data
}

/// Seconds → whole milliseconds, rounded down; `None` for NaN, infinities and
/// |ms| ≥ 1e17. The floor is taken on the integer (truncate, then one down for a
/// negative fraction): exact below 1e17 and without a `floor` call per field.
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn seconds_f64_to_ms(s: f64) -> Option<i64> {
    let ms = s * 1000.0;
    // NaN compares as nothing: refused with the infinities.
    if ms.abs().partial_cmp(&1e17) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    // |ms| < 1e17 < 2^63: the truncation is exact, and so is its conversion back.
    let t = ms as i64;
    Some(if (t as f64) > ms { t - 1 } else { t })
}

/// [`ConnJson`] with its strings as bytes: what the record is built from, whichever path
/// read the line (the scanner needs no UTF-8 check: it only accepts ASCII lines).
#[derive(Default, Debug, Clone, PartialEq)]
pub(crate) struct ConnFields<'a> {
    pub(crate) ts: Option<f64>,
    pub(crate) orig_h: Option<&'a [u8]>,
    pub(crate) orig_p: Option<u64>,
    pub(crate) resp_h: Option<&'a [u8]>,
    pub(crate) resp_p: Option<u64>,
    pub(crate) proto: Option<&'a [u8]>,
    pub(crate) duration: Option<f64>,
    pub(crate) orig_pkts: Option<u64>,
    pub(crate) orig_ip_bytes: Option<u64>,
    pub(crate) resp_pkts: Option<u64>,
    pub(crate) resp_ip_bytes: Option<u64>,
}

impl<'a> From<ConnJson<'a>> for ConnFields<'a> {
    fn from(c: ConnJson<'a>) -> Self {
        Self {
            ts: c.ts,
            orig_h: c.orig_h.map(str::as_bytes),
            orig_p: c.orig_p,
            resp_h: c.resp_h.map(str::as_bytes),
            resp_p: c.resp_p,
            proto: c.proto.map(str::as_bytes),
            duration: c.duration,
            orig_pkts: c.orig_pkts,
            orig_ip_bytes: c.orig_ip_bytes,
            resp_pkts: c.resp_pkts,
            resp_ip_bytes: c.resp_ip_bytes,
        }
    }
}

fn conn_json(c: &ConnFields<'_>) -> Result<FlowRecord, Anomaly> {
    let start_ms =
        c.ts.and_then(seconds_f64_to_ms)
            .ok_or(Anomaly::BadField { field: "ts" })?;
    let addr = |a: Option<&[u8]>, field| a.and_then(text::ip).ok_or(Anomaly::BadField { field });
    let port = |p: Option<u64>, field| {
        u16::try_from(p.unwrap_or(0)).map_err(|_| Anomaly::BadField { field })
    };
    let protocol = match c.proto {
        None => 0,
        Some(p) => text::protocol(p).ok_or(Anomaly::BadField { field: "proto" })?,
    };
    let dur_ms = match c.duration {
        None => 0,
        Some(d) => seconds_f64_to_ms(d).ok_or(Anomaly::BadField { field: "duration" })?,
    };
    let mut rec = FlowRecord {
        src_addr: addr(c.orig_h, "id.orig_h")?,
        dst_addr: addr(c.resp_h, "id.resp_h")?,
        start_ms,
        end_ms: start_ms.saturating_add(dur_ms),
        packets: c.orig_pkts.unwrap_or(0),
        bytes: c.orig_ip_bytes.unwrap_or(0),
        rev_packets: c.resp_pkts.unwrap_or(0),
        rev_bytes: c.resp_ip_bytes.unwrap_or(0),
        src_port: port(c.orig_p, "id.orig_p")?,
        dst_port: port(c.resp_p, "id.resp_p")?,
        protocol,
        source: FlowSource::Zeek,
        ..FlowRecord::default()
    };
    if rec.is_icmp() {
        rec.icmp_type = u8::try_from(rec.src_port).unwrap_or(u8::MAX);
        rec.icmp_code = u8::try_from(rec.dst_port).unwrap_or(u8::MAX);
    }
    Ok(rec)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Milliseconds are rounded down exactly as `f64::floor` does, and the same
        /// values are refused (NaN, infinities, |ms| ≥ 1e17).
        #[test]
        fn seconds_round_down_as_floor_does(bits in proptest::prelude::any::<u64>(), small in -1e15f64..1e15) {
            for s in [f64::from_bits(bits), small, small.trunc() / 1000.0] {
                let ms = (s * 1000.0).floor();
                #[allow(clippy::cast_possible_truncation)]
                let reference = (ms.is_finite() && ms.abs() < 1e17).then_some(ms as i64);
                proptest::prop_assert_eq!(seconds_f64_to_ms(s), reference, "{}", s);
            }
        }
    }

    const TSV: &str = "#separator \\x09\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\n\
1.5\t10.0.0.1\t1234\t10.0.0.2\t80\ttcp\t-\t3\t180\t-\t(empty)\n\
2.0\tnot-an-ip\t1\t10.0.0.2\t80\ttcp\t1.0\t1\t1\t1\t1\n";

    #[test]
    fn tsv_unset_and_empty_read_as_zero_and_bad_lines_are_counted() {
        let mut r = ZeekConnReader::new(TSV.as_bytes()).expect("in memory");
        let mut b = FlowBatch::default();
        assert_eq!(r.read_batch(&mut b, 100).expect("in memory"), 2);
        assert_eq!(b.len(), 1);
        let rec = b.records[0];
        assert_eq!(
            (rec.start_ms, rec.end_ms, rec.packets, rec.bytes),
            (1500, 1500, 3, 180)
        );
        assert_eq!((rec.rev_packets, rec.rev_bytes), (0, 0));
        assert_eq!(
            b.anomalies.last(),
            Some(Anomaly::BadField { field: "id.orig_h" })
        );
    }

    #[test]
    fn data_before_fields_header_is_counted() {
        let mut r = ZeekConnReader::new("1.0\t10.0.0.1\n".as_bytes()).expect("in memory");
        let mut b = FlowBatch::default();
        assert_eq!(r.read_batch(&mut b, 10).expect("in memory"), 1);
        assert_eq!(b.anomalies.total(), 1);
    }

    #[test]
    fn json_lines_are_detected() {
        let input = "\n{\"ts\":1.25,\"id.orig_h\":\"::1\",\"id.orig_p\":1,\"id.resp_h\":\"::2\",\"id.resp_p\":2,\"proto\":\"udp\",\"orig_pkts\":4}\n{oops\n";
        let mut r = ZeekConnReader::new(input.as_bytes()).expect("in memory");
        let mut b = FlowBatch::default();
        assert_eq!(r.read_batch(&mut b, 10).expect("in memory"), 2);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (
                b.records[0].start_ms,
                b.records[0].packets,
                b.records[0].protocol
            ),
            (1250, 4, 17)
        );
        assert_eq!(b.anomalies.total(), 1);
    }
}
