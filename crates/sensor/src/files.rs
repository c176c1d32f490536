//! Flow files as a source (CI-1): pcap/pcapng (flow exports decoded as exports,
//! other traffic reduced to flows by the meter), Zeek conn.log and Argus/CTU binetflow,
//! each possibly gzip-, xz- or zstd-compressed. The same readers serve `mamori flows`,
//! `mamori detect` and the sensor's file and directory inputs.
//!
//! **Architecture invariant:** a file is read as a stream of [`FlowBatch`]es handed to a
//! [`BatchSink`]; nothing but metadata leaves a reader (the meter keeps no payload byte,
//! DESIGN invariant 1). Bad input is a typed [`ReadError`] naming the file, never a panic.
//!
//! **API boundary:** [`read_file`] with a [`FileFormat`] and a sink; [`open_input`] for
//! the transparent decompression.

use mamori_flow::{
    ArgusReader, Datagram, DatagramDecoder, ExportDecoder, FlowBatch, FlowMeter, MeterConfig,
    PcapReader, ZeekConnReader, udp_payload,
};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// Detect from the content.
    #[default]
    Auto,
    /// Zeek conn.log (TSV with #fields, or JSON lines).
    Zeek,
    /// Argus / CTU-13 binetflow.
    Argus,
    /// pcap/pcapng of flow exports (NetFlow, IPFIX, sFlow), decoded as exports.
    PcapExports,
    /// pcap/pcapng of any other traffic, reduced to flows by the flow meter.
    PcapMeter,
    /// The sensor's own archive: a per-flow Parquet file (`DATA/archive/flows/…`), its
    /// subscriber addresses already pseudonymised.
    Parquet,
}

/// Where batches read from files go (a printer, the detectors, the sensor's pipeline).
pub trait BatchSink {
    /// The sink's own error, returned unchanged by [`read_file`] as [`ReadError::Sink`].
    type Error;
    /// Takes one batch (the reader reuses it afterwards).
    fn batch(&mut self, batch: &FlowBatch) -> Result<(), Self::Error>;
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError<E> {
    /// Opening or reading failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// `opening` or `reading`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The content is not what the format says (or no format was recognised).
    #[error("reading {}: {why}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// The sink refused a batch.
    #[error("{0}")]
    Sink(E),
}

const BATCH_LINES: usize = 4096;

fn io_err<E>(path: &Path) -> impl FnOnce(std::io::Error) -> ReadError<E> + '_ {
    io_op("reading", path)
}

fn open_err<E>(path: &Path) -> impl FnOnce(std::io::Error) -> ReadError<E> + '_ {
    io_op("opening", path)
}

fn io_op<'p, E>(
    op: &'static str,
    path: &'p Path,
) -> impl FnOnce(std::io::Error) -> ReadError<E> + 'p {
    move |source| ReadError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn format_err<E>(path: &Path, why: impl std::fmt::Display) -> ReadError<E> {
    ReadError::Format {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Opens `path`, decompressing gzip, xz or zstd on the fly (recognised by their magic
/// bytes, not the file name), so CTU-13's compressed files are read as they ship.
pub fn open_input(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    let file = std::fs::File::open(path)?;
    let mut raw = BufReader::with_capacity(1 << 20, file);
    let head = raw.fill_buf()?;
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
            let decoder = ruzstd::decoding::StreamingDecoder::new(raw).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("not a valid zstd stream: {e}"),
                )
            })?;
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
pub fn looks_like_export(p: &[u8]) -> bool {
    match p {
        [0, 5 | 9 | 10, ..] => p.len() >= 16,
        [0, 0, 0, 5, ..] => p.len() >= 28,
        _ => false,
    }
}

/// Whether a capture carries flow exports: judged on its first 8 MiB — most of its frames
/// are UDP, and nearly all of those start like an export.
fn capture_of_exports<E>(path: &Path) -> Result<bool, ReadError<E>> {
    let input = open_input(path).map_err(open_err(path))?;
    let (mut frames, mut udp, mut exports) = (0u64, 0u64, 0u64);
    let mut reader =
        PcapReader::new(std::io::Read::take(input, 8 << 20)).map_err(|e| format_err(path, e))?;
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

fn read_pcap<S: BatchSink>(
    path: &Path,
    exports: bool,
    sink: &mut S,
) -> Result<(), ReadError<S::Error>> {
    let input = open_input(path).map_err(open_err(path))?;
    let mut reader = PcapReader::new(input).map_err(|e| format_err(path, e))?;
    let mut batch = FlowBatch::with_capacity(BATCH_LINES * 2);
    let mut failed: Option<S::Error> = None;
    let mut decoder = ExportDecoder::default();
    let mut meter = FlowMeter::new(MeterConfig::default());
    let mut last_expire = i64::MIN;
    let read = reader.for_each_frame(|f| {
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
            if let Err(e) = sink.batch(&batch) {
                failed = Some(e);
            }
            batch.clear();
        }
    });
    if let Some(e) = failed {
        return Err(ReadError::Sink(e));
    }
    read.map_err(|e| format_err(path, e))?;
    meter.flush(&mut batch);
    sink.batch(&batch).map_err(ReadError::Sink)
}

fn detect(head: &[u8]) -> Option<FileFormat> {
    let text = String::from_utf8_lossy(head);
    let first = text.trim_start();
    if first.starts_with("#separator") || first.starts_with("#fields") || first.starts_with('{') {
        return Some(FileFormat::Zeek);
    }
    let header = first.lines().next().unwrap_or("");
    if header.contains("SrcAddr") && (header.contains("StartTime") || header.contains("Dur")) {
        return Some(FileFormat::Argus);
    }
    None
}

/// Reads one file into `sink`, batch by batch.
pub fn read_file<S: BatchSink>(
    path: &Path,
    format: FileFormat,
    sink: &mut S,
) -> Result<(), ReadError<S::Error>> {
    let mut input = open_input(path).map_err(open_err(path))?;
    let format = match format {
        FileFormat::Auto => {
            let head = input.fill_buf().map_err(io_err(path))?;
            if head.starts_with(b"PAR1") {
                FileFormat::Parquet
            } else if is_pcap(head) {
                if capture_of_exports(path)? {
                    FileFormat::PcapExports
                } else {
                    FileFormat::PcapMeter
                }
            } else {
                match detect(head) {
                    Some(f) => f,
                    None => {
                        return Err(format_err(
                            path,
                            "not a format mamori recognises (pcap/pcapng, Zeek conn.log, Argus binetflow, the sensor's Parquet); use --format to force one",
                        ));
                    }
                }
            }
        }
        f => f,
    };
    let mut batch = FlowBatch::with_capacity(BATCH_LINES);
    if format == FileFormat::Parquet {
        drop(input);
        return read_parquet(path, sink, &mut batch);
    }
    if matches!(format, FileFormat::PcapExports | FileFormat::PcapMeter) {
        drop(input);
        return read_pcap(path, format == FileFormat::PcapExports, sink);
    }
    if format == FileFormat::Argus {
        let reader = ArgusReader::new(input).map_err(|e| format_err(path, e))?;
        drain(path, reader, sink, &mut batch, |r, b| {
            r.read_batch(b, BATCH_LINES)
        })
    } else {
        let reader = ZeekConnReader::new(input).map_err(|e| format_err(path, e))?;
        drain(path, reader, sink, &mut batch, |r, b| {
            r.read_batch(b, BATCH_LINES)
        })
    }
}

/// A per-flow archive file, read back as the records the sensor kept (CI-11: `mamori
/// detect` runs on the sensor's Parquet). An aggregates file holds per-server sums, not
/// flows, and is refused with a clear error.
fn read_parquet<S: BatchSink>(
    path: &Path,
    sink: &mut S,
    batch: &mut FlowBatch,
) -> Result<(), ReadError<S::Error>> {
    let meta = crate::archive::file_metadata(path).map_err(|e| format_err(path, e))?;
    match meta.get(crate::archive::KIND_KEY).map(String::as_str) {
        Some("flows") => {}
        Some(other) => {
            return Err(format_err(
                path,
                format!(
                    "a Parquet file of {other}, not of flows: the detectors read the per-flow files (DATA/archive/flows/…)"
                ),
            ));
        }
        None => {
            return Err(format_err(
                path,
                "a Parquet file without mamori's metadata: only the sensor's archive files are read",
            ));
        }
    }
    let records = crate::archive::read_flows(path).map_err(|e| format_err(path, e))?;
    for chunk in records.chunks(BATCH_LINES) {
        batch.clear();
        batch.records.extend_from_slice(chunk);
        sink.batch(batch).map_err(ReadError::Sink)?;
    }
    Ok(())
}

fn drain<R, S: BatchSink>(
    path: &Path,
    mut reader: R,
    sink: &mut S,
    batch: &mut FlowBatch,
    mut next: impl FnMut(&mut R, &mut FlowBatch) -> Result<usize, mamori_flow::Error>,
) -> Result<(), ReadError<S::Error>> {
    loop {
        batch.clear();
        let n = next(&mut reader, batch).map_err(|e| format_err(path, e))?;
        sink.batch(batch).map_err(ReadError::Sink)?;
        if n == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(u64);
    impl BatchSink for Count {
        type Error = std::convert::Infallible;
        fn batch(&mut self, b: &FlowBatch) -> Result<(), Self::Error> {
            self.0 += b.records.len() as u64;
            Ok(())
        }
    }

    #[test]
    fn unknown_content_is_a_clear_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.txt");
        std::fs::write(&path, b"hello\nworld\n").unwrap();
        let err = read_file(&path, FileFormat::Auto, &mut Count(0)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("junk.txt") && text.contains("not a format"),
            "{text}"
        );
    }

    #[test]
    fn compressed_binetflow_is_read_like_the_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let plain = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,Label\n\
2011/08/10 09:46:53.047277,3550.182373,udp,212.50.71.179,39678,  <->,147.32.84.229,13363,CON,0,0,12,875,413,flow=Background-UDP-Established\n";
        let a = dir.path().join("a.binetflow");
        std::fs::write(&a, plain).unwrap();
        let b = dir.path().join("b.binetflow.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, plain.as_bytes()).unwrap();
        std::fs::write(&b, gz.finish().unwrap()).unwrap();
        let (mut ca, mut cb) = (Count(0), Count(0));
        read_file(&a, FileFormat::Auto, &mut ca).unwrap();
        read_file(&b, FileFormat::Auto, &mut cb).unwrap();
        assert_eq!(ca.0, 1);
        assert_eq!(cb.0, 1);
    }
}
