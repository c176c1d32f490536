//! Argus `binetflow` (the CTU-13 / Stratosphere format): a header line naming the columns
//! (`StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,
//! TotBytes,SrcBytes[,SrcPkts],Label`), comma- or tab-separated.
//!
//! One line becomes one [`FlowRecord`] or one counted [`Anomaly`]. Times are read as UTC.
//! Forward counters are the `Src*` columns and the reverse ones `Tot* − Src*`; when a file
//! has no `SrcPkts` column, all packets and bytes are counted forward.
//! Argus management records (`man`) and non-IP flows (ARP, LLC, … with MAC addresses)
//! are deliberate drops, counted as [`Anomaly::NotIpFlow`].
//!
//! **Hot path** (issue 5, ≥ 5 M lines/s/core): lines are found with `memchr` and split on
//! the separator in the reader's buffer, eight bytes at a time; no allocation per line.
//! The `csv` crate reads the rest of the input from the first line that it might read
//! differently (a quote, a lone `\r`, an overlong line), so quoting keeps its csv
//! meaning.
//!
//! **Architecture invariant:** the fast path never decides differently from the
//! reference path ([`ArgusReader::reference`]: the `csv` crate throughout);
//! `tests/text_equivalence.rs` checks every line of the real files and mutated lines (CI-1).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, Read};

use crate::Error;
use crate::anomaly::Anomaly;
use crate::record::{FlowBatch, FlowRecord, FlowSource};
use crate::text::{self, Line};

#[derive(Debug, Default, Clone, Copy)]
struct Columns {
    start: Option<usize>,
    dur: Option<usize>,
    proto: Option<usize>,
    src: Option<usize>,
    sport: Option<usize>,
    dst: Option<usize>,
    dport: Option<usize>,
    stos: Option<usize>,
    tot_pkts: Option<usize>,
    tot_bytes: Option<usize>,
    src_bytes: Option<usize>,
    src_pkts: Option<usize>,
}

impl Columns {
    fn from_header<'a>(names: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut c = Columns::default();
        for (i, name) in names.enumerate() {
            let slot = match name.trim_ascii() {
                b"StartTime" => &mut c.start,
                b"Dur" => &mut c.dur,
                b"Proto" => &mut c.proto,
                b"SrcAddr" => &mut c.src,
                b"Sport" => &mut c.sport,
                b"DstAddr" => &mut c.dst,
                b"Dport" => &mut c.dport,
                b"sTos" => &mut c.stos,
                b"TotPkts" => &mut c.tot_pkts,
                b"TotBytes" => &mut c.tot_bytes,
                b"SrcBytes" => &mut c.src_bytes,
                b"SrcPkts" => &mut c.src_pkts,
                _ => continue,
            };
            *slot = Some(i);
        }
        c
    }

    fn found(&self) -> bool {
        self.start.is_some() && self.src.is_some() && self.dst.is_some()
    }
}

/// The `csv` crate's reader, started at a given line: the rest of a buffered line
/// (`Cursor`) and then the remaining input.
type CsvReader<R> = csv::Reader<std::io::Chain<std::io::Cursor<Vec<u8>>, R>>;

/// Where lines are read from.
enum Mode<R> {
    /// Lines split in place on the separator (the fast path).
    Lines {
        input: R,
        /// A line that straddles the input's buffer, copied (reused).
        spill: Vec<u8>,
        /// Field boundaries of the current line (reused).
        spans: Vec<(usize, usize)>,
    },
    /// The `csv` crate, from the first line the fast path cannot take (a quote, a lone
    /// `\r`, a line longer than [`text::MAX_LINE`]) to the end of the input; from the
    /// start on the reference path.
    Csv {
        csv: Box<CsvReader<R>>,
        row: csv::ByteRecord,
    },
    /// Only while moving from `Lines` to `Csv`.
    Switching,
}

/// Reads Argus `binetflow` lines into flow batches.
///
/// Lines are split on the separator in place (no copy, no allocation per line). The
/// `csv` crate's quoting rules (a quoted field may hold the separator or a line break)
/// are kept: from the first line that holds a `"` (or a lone `\r`, or is overlong), the
/// rest of the input is read by the `csv` crate exactly as before, so a file is never
/// read differently from the reference path ([`ArgusReader::reference`]).
pub struct ArgusReader<R> {
    mode: Mode<R>,
    delimiter: u8,
    columns: Option<Columns>,
    lines: u64,
}

impl<R> std::fmt::Debug for ArgusReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgusReader")
            .field(
                "mode",
                &match self.mode {
                    Mode::Lines { .. } => "lines",
                    Mode::Csv { .. } => "csv",
                    Mode::Switching => "switching",
                },
            )
            .field("delimiter", &char::from(self.delimiter))
            .field("columns", &self.columns)
            .field("lines", &self.lines)
            .finish()
    }
}

/// The `csv` reader configured as the binetflow files need, over `prefix` then `input`.
fn csv_reader<R: BufRead>(delimiter: u8, prefix: Vec<u8>, input: R) -> CsvReader<R> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::Cursor::new(prefix).chain(input))
}

impl<R: BufRead> ArgusReader<R> {
    /// A reader over `input`; the delimiter (comma or tab) is detected from the header line.
    pub fn new(mut input: R) -> Result<Self, Error> {
        let head = input.fill_buf()?;
        let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
        let tab = head.get(..line_end).is_some_and(|l| l.contains(&b'\t'));
        // The csv crate drops a UTF-8 byte-order mark at the very start; so do we.
        if head.starts_with(b"\xef\xbb\xbf") {
            input.consume(3);
        }
        Ok(Self {
            mode: Mode::Lines {
                input,
                spill: Vec::with_capacity(1024),
                spans: Vec::with_capacity(32),
            },
            delimiter: if tab { b'\t' } else { b',' },
            columns: None,
            lines: 0,
        })
    }

    /// The same reader on its reference path only: every line read by the `csv` crate.
    /// Slower; it gives the same records and anomalies as [`ArgusReader::new`] (the
    /// differential tests compare the two on every line of the real files) and serves as
    /// the benchmarks' baseline.
    pub fn reference(mut input: R) -> Result<Self, Error> {
        let head = input.fill_buf()?;
        let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
        let tab = head.get(..line_end).is_some_and(|l| l.contains(&b'\t'));
        let delimiter = if tab { b'\t' } else { b',' };
        Ok(Self {
            mode: Mode::Csv {
                csv: Box::new(csv_reader(delimiter, Vec::new(), input)),
                row: csv::ByteRecord::new(),
            },
            delimiter,
            columns: None,
            lines: 0,
        })
    }

    /// Data lines read so far (the header excluded).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Reads up to `max_lines` data lines into `batch`; returns how many were read
    /// (0 at the end of the input).
    pub fn read_batch(&mut self, batch: &mut FlowBatch, max_lines: usize) -> Result<usize, Error> {
        let mut n = 0;
        while n < max_lines {
            match &mut self.mode {
                Mode::Lines {
                    input,
                    spill,
                    spans,
                } => {
                    let step = read_lines(
                        input,
                        spill,
                        spans,
                        self.delimiter,
                        &mut self.columns,
                        batch,
                        max_lines - n,
                    )?;
                    n += step.lines;
                    match step.next {
                        Next::More => {}
                        Next::End => break,
                        Next::Csv(prefix) => self.switch_to_csv(prefix),
                    }
                }
                Mode::Csv { csv, row } => {
                    match read_csv_record(csv, row, &mut self.columns, batch)? {
                        Line::End => break,
                        Line::Header => {}
                        Line::Data => n += 1,
                    }
                }
                Mode::Switching => break,
            }
        }
        self.lines += n as u64;
        Ok(n)
    }

    /// Hands the rest of the input, from the line in `prefix` (if any) on, to the `csv`
    /// crate. A blank line goes first so that the csv reader, which drops a byte-order
    /// mark at what it takes for the start of a file, reads this line as it would have
    /// mid-file (blank lines are skipped).
    fn switch_to_csv(&mut self, mut prefix: Vec<u8>) {
        if let Mode::Lines { input, .. } = std::mem::replace(&mut self.mode, Mode::Switching) {
            prefix.insert(0, b'\n');
            self.mode = Mode::Csv {
                csv: Box::new(csv_reader(self.delimiter, prefix, input)),
                row: csv::ByteRecord::new(),
            };
        }
    }
}

/// What [`read_lines`] stopped on.
enum Next {
    /// The line budget is spent or the buffer needs refilling.
    More,
    /// The input is exhausted.
    End,
    /// The next line needs the `csv` crate; it starts with these (already consumed)
    /// bytes, and continues in the input.
    Csv(Vec<u8>),
}

struct Step {
    lines: usize,
    next: Next,
}

/// Whether the fast path can read a line (terminator and trailing `\r` stripped) exactly
/// as the `csv` crate would: no quote (quoting rules), no `\r` (a record terminator to csv).
fn plain(line: &[u8]) -> bool {
    memchr::memchr2(b'"', b'\r', line).is_none()
}

fn strip_cr(mut line: &[u8]) -> &[u8] {
    while let [head @ .., b'\r'] = line {
        line = head;
    }
    line
}

/// Reads the whole lines of the input's current buffer (at most `max_lines` data lines),
/// or continues a line that straddles buffers.
fn read_lines<R: BufRead>(
    input: &mut R,
    spill: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
    delimiter: u8,
    columns: &mut Option<Columns>,
    batch: &mut FlowBatch,
    max_lines: usize,
) -> Result<Step, Error> {
    let buf = input.fill_buf()?;
    if !spill.is_empty() {
        // Continuing a line begun in an earlier buffer.
        let (take, complete) = match memchr::memchr(b'\n', buf) {
            Some(p) => (p + 1, true),
            None => (buf.len(), buf.is_empty()),
        };
        spill.extend_from_slice(buf.get(..take).unwrap_or_default());
        input.consume(take);
        if spill.len() > text::MAX_LINE {
            return Ok(Step {
                lines: 0,
                next: Next::Csv(std::mem::take(spill)),
            });
        }
        if !complete {
            return Ok(Step {
                lines: 0,
                next: Next::More,
            });
        }
        let line = strip_cr(spill.strip_suffix(b"\n").unwrap_or(spill));
        if !plain(line) {
            return Ok(Step {
                lines: 0,
                next: Next::Csv(std::mem::take(spill)),
            });
        }
        let lines = usize::from(split_line(line, spans, delimiter, columns, batch));
        spill.clear();
        return Ok(Step {
            lines,
            next: Next::More,
        });
    }
    if buf.is_empty() {
        return Ok(Step {
            lines: 0,
            next: Next::End,
        });
    }
    let mut used = 0;
    let mut lines = 0;
    let mut next = Next::More;
    while lines < max_lines {
        let Some(rest) = buf.get(used..) else { break };
        let Some(p) = memchr::memchr(b'\n', rest) else {
            if used == 0 {
                // No whole line in the buffer: copy what there is and read on.
                spill.extend_from_slice(rest);
                used = rest.len();
            }
            break;
        };
        let line = strip_cr(rest.get(..p).unwrap_or_default());
        if !plain(line) || p > text::MAX_LINE {
            next = Next::Csv(Vec::new());
            break;
        }
        used += p + 1;
        lines += usize::from(split_line(line, spans, delimiter, columns, batch));
    }
    input.consume(used);
    Ok(Step { lines, next })
}

/// One plain line, split on the delimiter in place; `true` when it is a data line.
fn split_line(
    line: &[u8],
    spans: &mut Vec<(usize, usize)>,
    delimiter: u8,
    columns: &mut Option<Columns>,
    batch: &mut FlowBatch,
) -> bool {
    if line.is_empty() {
        return false; // the csv crate skips blank lines
    }
    spans.clear();
    let mut start = 0;
    text::for_each_separator(line, delimiter, |i| {
        spans.push((start, i));
        start = i + 1;
        true
    });
    spans.push((start, line.len()));
    let get = |i: Option<usize>| {
        let (a, b) = *spans.get(i?)?;
        line.get(a..b)
    };
    record(get, columns, batch)
}

/// One record from the `csv` crate.
fn read_csv_record<R: std::io::Read>(
    csv: &mut csv::Reader<R>,
    row: &mut csv::ByteRecord,
    columns: &mut Option<Columns>,
    batch: &mut FlowBatch,
) -> Result<Line, Error> {
    match csv.read_byte_record(row) {
        Ok(false) => return Ok(Line::End),
        Ok(true) => {}
        Err(e) => match e.into_kind() {
            csv::ErrorKind::Io(io) => return Err(Error::Io(io)),
            _ => {
                batch.count(Anomaly::MalformedLine {
                    what: "unreadable line",
                });
                return Ok(Line::Data);
            }
        },
    }
    let get = |i: Option<usize>| row.get(i?);
    Ok(if record(get, columns, batch) {
        Line::Data
    } else {
        Line::Header
    })
}

/// One record's fields, however split: the header (until there is one), or one flow
/// or one counted anomaly. `true` when it was a data line.
fn record<'a>(
    get: impl Fn(Option<usize>) -> Option<&'a [u8]>,
    columns: &mut Option<Columns>,
    batch: &mut FlowBatch,
) -> bool {
    let Some(c) = columns else {
        let c = Columns::from_header((0..).map_while(|i| get(Some(i))));
        if c.found() {
            *columns = Some(c);
            return false;
        }
        batch.count(Anomaly::MalformedLine {
            what: "no binetflow header line",
        });
        return true;
    };
    match line(get, c) {
        Ok(r) => batch.records.push(r),
        Err(a) => batch.count(a),
    }
    true
}

fn line<'a>(
    get: impl Fn(Option<usize>) -> Option<&'a [u8]>,
    c: &Columns,
) -> Result<FlowRecord, Anomaly> {
    let get = |i: Option<usize>| get(i).map(<[u8]>::trim_ascii);
    let num = |i: Option<usize>, field: &'static str| -> Result<u64, Anomaly> {
        match get(i) {
            None | Some(b"") => Ok(0),
            Some(v) => text::uint(v).ok_or(Anomaly::BadField { field }),
        }
    };
    let proto = get(c.proto).unwrap_or_default();
    // (tcp, udp and icmp, on almost every line, are none of these.)
    if !matches!(proto, b"tcp" | b"udp" | b"icmp")
        && [
            &b"arp"[..],
            b"rarp",
            b"llc",
            b"man",
            b"stp",
            b"lldp",
            b"ipx",
        ]
        .iter()
        .any(|p| proto.eq_ignore_ascii_case(p))
    {
        // ARP "flows" carry IP addresses but are link-layer; management records are not flows.
        return Err(Anomaly::NotIpFlow {
            what: "non-IP argus record",
        });
    }
    let src = get(c.src).and_then(text::ip);
    let dst = get(c.dst).and_then(text::ip);
    let protocol = text::protocol(proto);
    let (Some(src_addr), Some(dst_addr)) = (src, dst) else {
        if protocol.is_none() {
            return Err(Anomaly::NotIpFlow {
                what: "non-IP argus record",
            });
        }
        return Err(Anomaly::BadField {
            field: if src.is_none() { "SrcAddr" } else { "DstAddr" },
        });
    };
    let protocol = protocol.ok_or(Anomaly::BadField { field: "Proto" })?;
    let start_ms = get(c.start)
        .and_then(text::datetime_to_ms)
        .ok_or(Anomaly::BadField { field: "StartTime" })?;
    let dur_ms = match get(c.dur) {
        None | Some(b"") => 0,
        Some(d) => text::seconds_to_ms(d).ok_or(Anomaly::BadField { field: "Dur" })?,
    };
    let port = |i, field| u16::try_from(num(i, field)?).map_err(|_| Anomaly::BadField { field });
    let src_port = port(c.sport, "Sport")?;
    let dst_port = port(c.dport, "Dport")?;
    let tot_pkts = num(c.tot_pkts, "TotPkts")?;
    let tot_bytes = num(c.tot_bytes, "TotBytes")?;
    let (packets, bytes) = if c.src_pkts.is_some() {
        (num(c.src_pkts, "SrcPkts")?, num(c.src_bytes, "SrcBytes")?)
    } else {
        (tot_pkts, tot_bytes)
    };
    let mut rec = FlowRecord {
        src_addr,
        dst_addr,
        start_ms,
        end_ms: start_ms.saturating_add(dur_ms),
        packets,
        bytes,
        rev_packets: tot_pkts.saturating_sub(packets),
        rev_bytes: tot_bytes.saturating_sub(bytes),
        src_port,
        dst_port,
        protocol,
        tos: u8::try_from(num(c.stos, "sTos")?).unwrap_or(u8::MAX),
        source: FlowSource::Argus,
        ..FlowRecord::default()
    };
    if rec.is_icmp() {
        // Argus writes the ICMP type as the source "port" and the code as the destination's.
        rec.icmp_type = u8::try_from(src_port).unwrap_or(u8::MAX);
        rec.icmp_code = u8::try_from(dst_port).unwrap_or(u8::MAX);
    }
    Ok(rec)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn reads_forward_and_reverse_counters_and_drops_non_ip() {
        let input = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,SrcPkts,Label\n\
2019/04/04 16:23:00.325010,0.027947,udp,10.8.0.69,48427,  <->,8.8.8.8,53,CON,0,0,2,142,63,1,\n\
1970/01/01 01:00:00.000000,0.000000,llc,00:00:00:00:00:00,0,   ->,00:00:00:00:00:00,0,INT,,,1,60,60,1,\n";
        let mut r = ArgusReader::new(input.as_bytes()).expect("in memory");
        let mut b = FlowBatch::default();
        assert_eq!(r.read_batch(&mut b, 10).expect("in memory"), 2);
        assert_eq!(b.len(), 1);
        let rec = b.records[0];
        assert_eq!(
            (rec.packets, rec.bytes, rec.rev_packets, rec.rev_bytes),
            (1, 63, 1, 79)
        );
        assert_eq!(rec.end_ms - rec.start_ms, 27);
        assert_eq!(b.anomalies.get(crate::AnomalyKind::NotIpFlow), 1);
    }
}
