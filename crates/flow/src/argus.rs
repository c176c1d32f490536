//! Argus `binetflow` (the CTU-13 / Stratosphere format): a header line naming the columns
//! (`StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,
//! TotBytes,SrcBytes[,SrcPkts],Label`), comma- or tab-separated.
//!
//! One line becomes one [`FlowRecord`] or one counted [`Anomaly`]. Times are read as UTC.
//! Forward counters are the `Src*` columns and the reverse ones `Tot* − Src*`; when a file
//! has no `SrcPkts` column, all packets and bytes are counted forward.
//! Argus management records (`man`) and non-IP flows (ARP, LLC, … with MAC addresses)
//! are deliberate drops, counted as [`Anomaly::NotIpFlow`].
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::io::BufRead;

use crate::Error;
use crate::anomaly::Anomaly;
use crate::record::{FlowBatch, FlowRecord, FlowSource};
use crate::text;

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
    fn from_header(h: &csv::ByteRecord) -> Self {
        let mut c = Columns::default();
        for (i, name) in h.iter().enumerate() {
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
}

/// Reads Argus `binetflow` lines into flow batches.
#[derive(Debug)]
pub struct ArgusReader<R> {
    csv: csv::Reader<R>,
    row: csv::ByteRecord,
    columns: Option<Columns>,
    lines: u64,
}

impl<R: BufRead> ArgusReader<R> {
    /// A reader over `input`; the delimiter (comma or tab) is detected from the header line.
    pub fn new(mut input: R) -> Result<Self, Error> {
        let head = input.fill_buf()?;
        let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
        let tab = head.get(..line_end).is_some_and(|l| l.contains(&b'\t'));
        let csv = csv::ReaderBuilder::new()
            .delimiter(if tab { b'\t' } else { b',' })
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        Ok(Self {
            csv,
            row: csv::ByteRecord::new(),
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
            match self.csv.read_byte_record(&mut self.row) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => match e.into_kind() {
                    csv::ErrorKind::Io(io) => return Err(Error::Io(io)),
                    _ => {
                        batch.count(Anomaly::MalformedLine {
                            what: "unreadable line",
                        });
                        n += 1;
                        continue;
                    }
                },
            }
            let Some(c) = self.columns else {
                let c = Columns::from_header(&self.row);
                if c.start.is_some() && c.src.is_some() && c.dst.is_some() {
                    self.columns = Some(c);
                    continue;
                }
                batch.count(Anomaly::MalformedLine {
                    what: "no binetflow header line",
                });
                n += 1;
                continue;
            };
            n += 1;
            match line(&self.row, &c) {
                Ok(r) => batch.records.push(r),
                Err(a) => batch.count(a),
            }
        }
        self.lines += n as u64;
        Ok(n)
    }
}

fn line(row: &csv::ByteRecord, c: &Columns) -> Result<FlowRecord, Anomaly> {
    let get = |i: Option<usize>| i.and_then(|i| row.get(i)).map(<[u8]>::trim_ascii);
    let num = |i: Option<usize>, field: &'static str| -> Result<u64, Anomaly> {
        match get(i) {
            None | Some(b"") => Ok(0),
            Some(v) => text::uint(v).ok_or(Anomaly::BadField { field }),
        }
    };
    let proto = get(c.proto).unwrap_or_default();
    if [
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
