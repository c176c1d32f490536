//! The archive: kept flow records and per-server aggregates as Parquet files, each with
//! an expiry, and the reaper that deletes them on time and reports every deletion
//! (DESIGN invariant 4 "bounded retention", CI-5).
//!
//! # Layout
//!
//! ```text
//! DIR/flows/YYYY-MM-DD/HH/part-<seq>.parquet       per-flow records (concern list only)
//! DIR/aggregates/YYYY-MM-DD/HH/part-<seq>.parquet  per-server aggregates (broad first)
//! ```
//!
//! The hour is the UTC hour of the flow's start (`FlowRecord::start_ms`) or of the
//! aggregate's bin (`ServerAggregate::bin_start_ms`). Each write call produces one new file
//! per hour it touches; `<seq>` counts up from 0 within the hour and is never reused, so a
//! restarted sensor never overwrites a file. DuckDB reads a whole day with
//! `read_parquet('DIR/flows/2026-11-24/*/*.parquet')`, pandas with
//! `pd.read_parquet('DIR/flows')`.
//!
//! # Columns
//!
//! Typed, so no analyst parses text: times are `Timestamp(ms, UTC)`; counters `UInt64`;
//! ports `UInt16`; protocol, flags and ICMP fields `UInt8`. **Addresses are strings**
//! (`"192.0.2.1"`, `"2001:db8::1"`): DuckDB, pandas and pyarrow compare and print them
//! directly (`WHERE dst_addr = '192.0.2.1'`), where fixed binary would need a conversion in
//! every query; Parquet's dictionary encoding and zstd make the repeated text cheap (see
//! `docs/benchmarks/archive.md` for bytes per record). `direction` and `source` are short lowercase
//! names. There is no payload column: the types hold none (invariant 1). The caller has
//! already pseudonymised subscriber addresses and selected what may be kept (invariants
//! 2, 3); this module writes what it is given.
//!
//! # Invariants
//!
//! - **Everything written has an expiry.** Each file's Parquet key-value metadata holds
//!   `mamori.expires_at` (RFC 3339, UTC, ms): the end of its hour plus the policy's
//!   retention for its kind ([`RetentionPolicy`]). The reaper needs no separate index, and a
//!   file copied elsewhere still says when it must go.
//! - **Writes are atomic**: `part-N.parquet.tmp` is written, fsynced, renamed, and the
//!   directory fsynced, so a reader or the reaper never sees half a file under its name.
//! - **Deletion is on time and reported**: [`reap`] deletes every file whose expiry is at or
//!   before `now` and returns, per file, what the ledger's `deletion` act needs (what,
//!   count, SHA-256 of the bytes deleted, reason). A file whose expiry cannot be read — a
//!   corrupt file, an interrupted `.tmp`, a stranger — is never deleted silently: it is
//!   reported as a [`ReapFailure`] and left for a human, and the others are reaped.
//!
//! # API boundary
//!
//! [`ArchiveWriter::new`] with a directory and a [`RetentionPolicy`];
//! [`ArchiveWriter::write_flows`] / [`ArchiveWriter::write_aggregates`] → [`WrittenFile`]s;
//! [`reap`]`(dir, now)` → [`ReapReport`]; [`read_flows`] / [`read_aggregates`] to read a
//! file back. The sensor may not depend on `mamori-oversight` (DESIGN layering: sensor sits
//! on core, flow, detect, stix), so the runtime turns each [`Deletion`] into one ledger
//! `Act::Deletion { what, count, content_sha256, reason }` — the fields are named to match —
//! and appends it. "Now" always comes from the caller's `Clock`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{
    BooleanBuilder, StringBuilder, TimestampMillisecondBuilder, UInt8Builder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use mamori_core::time::{Timestamp, from_millis, rfc3339};
use mamori_flow::{Direction, FlowRecord, FlowSource, ServerAggregate};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Key of the expiry in each file's Parquet key-value metadata.
pub const EXPIRES_AT_KEY: &str = "mamori.expires_at";
/// Key of the kind (`flows` / `aggregates`) in each file's key-value metadata.
pub const KIND_KEY: &str = "mamori.kind";
/// Key of the id of the pseudonym key the file's subscriber addresses were pseudonymised
/// with (one key per file), when the writer was given one
/// ([`ArchiveWriter::set_pseudonym_key_id`]): what re-identification and key retirement
/// look up.
pub const PSEUDONYM_KEY_ID_KEY: &str = "mamori.pseudonym_key_id";
/// Rows per row group: large enough for zstd and dictionaries to work across many rows,
/// small enough that a reader filtering on time skips most of an hour's file.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// The `reason` of every deletion the reaper reports.
pub const RETENTION_REASON: &str = "retention expired";

const HOUR_MS: i64 = 3_600_000;
const ZSTD_LEVEL: i32 = 3;
/// The time-zone name of every timestamp column: `UTC`, which pyarrow, pandas and DuckDB
/// all show as UTC (arrow-rs's own `with_timezone_utc` writes `+00:00`).
const UTC: &str = "UTC";

/// How long each kind of archived data is kept after the end of its hour.
///
/// In TOML: `flows = "7d"`, `aggregates = "90d"` (units `d`, `h`, `m`, `s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionPolicy {
    /// Per-flow records (only servers on the concern list). Default 7 days: deep data is
    /// the most sensitive, kept only long enough to act on a concern.
    #[serde(with = "duration_text")]
    pub flows: Duration,
    /// Per-server aggregates. Default 90 days: long enough to see a server return after a
    /// takedown or compare a quarter's figures.
    #[serde(with = "duration_text")]
    pub aggregates: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            flows: Duration::from_secs(7 * 86_400),
            aggregates: Duration::from_secs(90 * 86_400),
        }
    }
}

/// What a file holds; the first path component under the archive directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Per-flow records.
    Flows,
    /// Per-server aggregates.
    Aggregates,
}

impl Kind {
    /// The directory and metadata name: `flows` or `aggregates`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Flows => "flows",
            Kind::Aggregates => "aggregates",
        }
    }

    fn retention(self, policy: &RetentionPolicy) -> Duration {
        match self {
            Kind::Flows => policy.flows,
            Kind::Aggregates => policy.aggregates,
        }
    }
}

/// What went wrong writing, reading or reaping the archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A file-system operation failed.
    #[error("archive: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Parquet or Arrow refused the data or the file.
    #[error("archive: parquet {}: {message}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The library's message.
        message: String,
    },
    /// A file does not hold what the archive writes (missing column, wrong type, bad value).
    #[error("archive: {} is not a mamori archive file: {why}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// A time cannot be represented (start far outside the calendar, retention too long).
    #[error("archive: time out of range: {what}")]
    TimeRange {
        /// Which time.
        what: String,
    },
}

impl ArchiveError {
    fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Self + 'p {
        move |source| Self::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    fn parquet(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> Self + '_ {
        move |e| Self::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    fn arrow(path: &Path) -> impl FnOnce(arrow_schema::ArrowError) -> Self + '_ {
        move |e| Self::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    fn format(path: &Path, why: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}

/// Result with [`ArchiveError`].
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// One file the writer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it holds.
    pub kind: Kind,
    /// The start of its UTC hour.
    pub hour: Timestamp,
    /// Rows written.
    pub records: u64,
    /// When the reaper must delete it.
    pub expires_at: Timestamp,
}

/// What one write call did, hour by hour.
#[derive(Debug, Default)]
pub struct Written {
    /// The files written.
    pub files: Vec<WrittenFile>,
    /// The hours that could not be written; the other hours were written all the same.
    pub failed: Vec<FailedHour>,
}

/// One hour of a write call that could not be written.
#[derive(Debug)]
pub struct FailedHour {
    /// The hour's start, UTC ms (as computed from the rows' times, possibly absurd).
    pub hour_ms: i64,
    /// Its rows, lost.
    pub rows: u64,
    /// Why.
    pub error: ArchiveError,
}

impl Written {
    /// Rows lost with the failed hours.
    pub fn lost_rows(&self) -> u64 {
        self.failed.iter().map(|f| f.rows).sum()
    }

    /// The files, or the first failed hour's error.
    pub fn into_result(self) -> Result<Vec<WrittenFile>> {
        match self.failed.into_iter().next() {
            Some(f) => Err(f.error),
            None => Ok(self.files),
        }
    }
}

/// Writes kept records and aggregates into the hour-partitioned archive.
#[derive(Debug)]
pub struct ArchiveWriter {
    dir: PathBuf,
    policy: RetentionPolicy,
    pseudonym_key_id: Option<String>,
}

impl ArchiveWriter {
    /// A writer into `dir` (created if missing) under `policy`.
    pub fn new(dir: impl Into<PathBuf>, policy: RetentionPolicy) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(ArchiveError::io("create directory", &dir))?;
        Ok(Self {
            dir,
            policy,
            pseudonym_key_id: None,
        })
    }

    /// Names the pseudonym key of everything written from now on
    /// ([`PSEUDONYM_KEY_ID_KEY`] in each file's metadata). The caller writes the rows of
    /// one key before switching, so a file never mixes keys.
    pub fn set_pseudonym_key_id(&mut self, id: Option<String>) {
        self.pseudonym_key_id = id;
    }

    /// The pseudonym key id written into new files.
    pub fn pseudonym_key_id(&self) -> Option<&str> {
        self.pseudonym_key_id.as_deref()
    }

    /// The archive directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The retention policy.
    pub fn policy(&self) -> &RetentionPolicy {
        &self.policy
    }

    /// Writes `records` (already pseudonymised and selected), one new file per UTC hour of
    /// their start times, in input order within each hour. The first hour that cannot be
    /// written is the error; the other hours are written all the same
    /// ([`ArchiveWriter::write_flows_each`] says which rows were lost).
    pub fn write_flows(&self, records: &[FlowRecord]) -> Result<Vec<WrittenFile>> {
        self.write_flows_each(records).into_result()
    }

    /// As [`ArchiveWriter::write_flows`], reporting per hour: one record whose time cannot
    /// be partitioned (a fuzzed or far-future timestamp) loses its own hour's rows, never
    /// the rest of the buffer (CI-5: everything kept is kept with its expiry).
    pub fn write_flows_each(&self, records: &[FlowRecord]) -> Written {
        let mut by_hour: BTreeMap<i64, Vec<&FlowRecord>> = BTreeMap::new();
        for r in records {
            by_hour.entry(hour_of(r.start_ms)).or_default().push(r);
        }
        self.write_hours(Kind::Flows, by_hour, flows_batch)
    }

    /// Writes `aggregates`, one new file per UTC hour of their bin starts (errors as
    /// [`ArchiveWriter::write_flows`]).
    pub fn write_aggregates(&self, aggregates: &[ServerAggregate]) -> Result<Vec<WrittenFile>> {
        self.write_aggregates_each(aggregates).into_result()
    }

    /// As [`ArchiveWriter::write_aggregates`], reporting per hour.
    pub fn write_aggregates_each(&self, aggregates: &[ServerAggregate]) -> Written {
        let mut by_hour: BTreeMap<i64, Vec<&ServerAggregate>> = BTreeMap::new();
        for a in aggregates {
            by_hour.entry(hour_of(a.bin_start_ms)).or_default().push(a);
        }
        self.write_hours(Kind::Aggregates, by_hour, aggregates_batch)
    }

    fn write_hours<T>(
        &self,
        kind: Kind,
        by_hour: BTreeMap<i64, Vec<&T>>,
        batch: impl Fn(&[&T], &Path) -> Result<RecordBatch>,
    ) -> Written {
        let mut out = Written::default();
        for (hour_ms, rows) in by_hour {
            let n = rows.len() as u64;
            match self.write_hour(kind, hour_ms, n, |path| batch(&rows, path)) {
                Ok(f) => out.files.push(f),
                Err(error) => out.failed.push(FailedHour {
                    hour_ms,
                    rows: n,
                    error,
                }),
            }
        }
        out
    }

    fn write_hour(
        &self,
        kind: Kind,
        hour_ms: i64,
        records: u64,
        batch: impl FnOnce(&Path) -> Result<RecordBatch>,
    ) -> Result<WrittenFile> {
        let hour = time(hour_ms, "hour")?;
        let expires_at = expiry(hour, kind.retention(&self.policy))?;
        let part_dir = self
            .dir
            .join(kind.name())
            .join(hour.format("%Y-%m-%d").to_string())
            .join(hour.format("%H").to_string());
        fs::create_dir_all(&part_dir).map_err(ArchiveError::io("create directory", &part_dir))?;
        let (path, tmp, file) = claim_part(&part_dir)?;
        let batch = batch(&path)?;

        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(ZSTD_LEVEL).map_err(ArchiveError::parquet(&path))?,
            ))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            // Min/max per row group is what DuckDB prunes on (time, address); the page
            // index on top costs ~2 KB per hourly file and buys little at these sizes.
            .set_statistics_enabled(EnabledStatistics::None)
            // No page index at all: with one or two pages per column per file it only
            // repeats the chunk offsets (readers fall back to the chunk metadata).
            .set_offset_index_disabled(true)
            // Dictionaries for the address columns only: a dictionary page per column
            // costs a page header and its metadata in every file, and zstd already folds
            // the repeated small integers and constant names of PLAIN pages
            // (docs/benchmarks/archive.md).
            .set_dictionary_enabled(false)
            .set_column_dictionary_enabled(ColumnPath::from("src_addr"), true)
            .set_column_dictionary_enabled(ColumnPath::from("dst_addr"), true)
            .set_column_dictionary_enabled(ColumnPath::from("server"), true)
            // Start and end times are nearly sorted and nearly unique: deltas, not a
            // dictionary.
            .set_column_dictionary_enabled(ColumnPath::from("start"), false)
            .set_column_encoding(ColumnPath::from("start"), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(ColumnPath::from("end"), false)
            .set_column_encoding(ColumnPath::from("end"), Encoding::DELTA_BINARY_PACKED)
            // …and only on the columns queries filter on: statistics of the others
            // (counters, flags, interfaces) cost footer bytes in every file for nothing.
            .set_column_statistics_enabled(ColumnPath::from("start"), EnabledStatistics::Chunk)
            .set_column_statistics_enabled(ColumnPath::from("end"), EnabledStatistics::Chunk)
            .set_column_statistics_enabled(ColumnPath::from("bin_start"), EnabledStatistics::Chunk)
            .set_column_statistics_enabled(ColumnPath::from("src_addr"), EnabledStatistics::Chunk)
            .set_column_statistics_enabled(ColumnPath::from("dst_addr"), EnabledStatistics::Chunk)
            .set_column_statistics_enabled(ColumnPath::from("server"), EnabledStatistics::Chunk)
            .set_column_statistics_enabled(ColumnPath::from("dst_port"), EnabledStatistics::Chunk)
            .set_column_statistics_enabled(ColumnPath::from("port"), EnabledStatistics::Chunk)
            .set_key_value_metadata(Some({
                let mut kv = vec![
                    KeyValue::new(EXPIRES_AT_KEY.to_owned(), rfc3339(expires_at)),
                    KeyValue::new(KIND_KEY.to_owned(), kind.name().to_owned()),
                ];
                if let Some(id) = &self.pseudonym_key_id {
                    kv.push(KeyValue::new(PSEUDONYM_KEY_ID_KEY.to_owned(), id.clone()));
                }
                kv
            }))
            .set_created_by(concat!("mamori-sensor ", env!("CARGO_PKG_VERSION")).to_owned())
            .build();
        let handle = file.try_clone().map_err(ArchiveError::io("write", &tmp))?;
        let written = (|| {
            // The embedded Arrow schema repeats what the Parquet logical types already say
            // (timestamp UTC ms, unsigned widths) and costs ~1 KB per file.
            let options = ArrowWriterOptions::new()
                .with_properties(props)
                .with_skip_arrow_metadata(true);
            let mut writer = ArrowWriter::try_new_with_options(handle, batch.schema(), options)
                .map_err(ArchiveError::parquet(&tmp))?;
            writer.write(&batch).map_err(ArchiveError::parquet(&tmp))?;
            writer.close().map_err(ArchiveError::parquet(&tmp))?;
            file.sync_all().map_err(ArchiveError::io("fsync", &tmp))?;
            drop(file);
            fs::rename(&tmp, &path).map_err(ArchiveError::io("rename", &tmp))?;
            // The rename is durable only once the directory entry is.
            File::open(&part_dir)
                .and_then(|d| d.sync_all())
                .map_err(ArchiveError::io("fsync directory", &part_dir))
        })();
        if let Err(e) = written {
            // Best effort: an unfinished .tmp left behind is reported by the reaper.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(WrittenFile {
            path,
            kind,
            hour,
            records,
            expires_at,
        })
    }
}

/// Picks the next unused `part-<seq>` in `dir` and creates its `.tmp` exclusively, so two
/// writers (or a leftover `.tmp` from a crash) never share a sequence number.
fn claim_part(dir: &Path) -> Result<(PathBuf, PathBuf, File)> {
    let mut seq = 0u64;
    for entry in fs::read_dir(dir).map_err(ArchiveError::io("list", dir))? {
        let entry = entry.map_err(ArchiveError::io("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let n = name
            .strip_prefix("part-")
            .and_then(|rest| rest.split('.').next())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            seq = seq.max(n.saturating_add(1));
        }
    }
    loop {
        let path = dir.join(format!("part-{seq}.parquet"));
        let tmp = dir.join(format!("part-{seq}.parquet.tmp"));
        if !path.exists() {
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => return Ok((path, tmp, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(ArchiveError::io("create", &tmp)(e)),
            }
        }
        seq = seq.saturating_add(1);
    }
}

fn hour_of(ms: i64) -> i64 {
    // Saturating: an absurd time becomes an hour that `time` refuses, never a panic.
    ms.div_euclid(HOUR_MS).saturating_mul(HOUR_MS)
}

fn time(ms: i64, what: &str) -> Result<Timestamp> {
    from_millis(ms).ok_or_else(|| ArchiveError::TimeRange {
        what: format!("{what} {ms} ms"),
    })
}

/// The end of the hour plus the retention: the newest record of the file has then been
/// kept for at least the retention, and no record longer than retention + 1 h.
fn expiry(hour: Timestamp, retention: Duration) -> Result<Timestamp> {
    let retention = chrono::Duration::from_std(retention).map_err(|_| ArchiveError::TimeRange {
        what: format!("retention {retention:?}"),
    })?;
    hour.checked_add_signed(chrono::Duration::hours(1))
        .and_then(|end| end.checked_add_signed(retention))
        .ok_or_else(|| ArchiveError::TimeRange {
            what: format!("expiry of hour {}", rfc3339(hour)),
        })
}

// ---------------------------------------------------------------------------------------
// Schemas and conversion.

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// The schema of `flows` files.
pub fn flows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("start", ts_type(), false),
        Field::new("end", ts_type(), false),
        Field::new("src_addr", DataType::Utf8, false),
        Field::new("src_port", DataType::UInt16, false),
        Field::new("dst_addr", DataType::Utf8, false),
        Field::new("dst_port", DataType::UInt16, false),
        Field::new("protocol", DataType::UInt8, false),
        Field::new("packets", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("rev_packets", DataType::UInt64, false),
        Field::new("rev_bytes", DataType::UInt64, false),
        Field::new("tcp_flags", DataType::UInt8, false),
        Field::new("tos", DataType::UInt8, false),
        Field::new("icmp_type", DataType::UInt8, false),
        Field::new("icmp_code", DataType::UInt8, false),
        Field::new("exporter", DataType::Utf8, false),
        Field::new("observation_domain", DataType::UInt32, false),
        Field::new("input_if", DataType::UInt32, false),
        Field::new("output_if", DataType::UInt32, false),
        Field::new("sampling_rate", DataType::UInt32, false),
        Field::new("direction", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
    ]))
}

/// The schema of `aggregates` files.
pub fn aggregates_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("bin_start", ts_type(), false),
        Field::new("server", DataType::Utf8, false),
        Field::new("port", DataType::UInt16, false),
        Field::new("protocol", DataType::UInt8, false),
        Field::new("flows", DataType::UInt64, false),
        Field::new("packets_to_server", DataType::UInt64, false),
        Field::new("bytes_to_server", DataType::UInt64, false),
        Field::new("packets_from_server", DataType::UInt64, false),
        Field::new("bytes_from_server", DataType::UInt64, false),
        Field::new("distinct_clients", DataType::UInt64, false),
        Field::new("transit", DataType::Boolean, false),
    ]))
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Unknown => "unknown",
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

fn direction_from(name: &str) -> Option<Direction> {
    Some(match name {
        "unknown" => Direction::Unknown,
        "ingress" => Direction::Ingress,
        "egress" => Direction::Egress,
        _ => return None,
    })
}

fn source_name(s: FlowSource) -> &'static str {
    match s {
        FlowSource::NetflowV5 => "netflow_v5",
        FlowSource::NetflowV9 => "netflow_v9",
        FlowSource::Ipfix => "ipfix",
        FlowSource::Sflow => "sflow",
        FlowSource::Pcap => "pcap",
        FlowSource::Zeek => "zeek",
        FlowSource::Argus => "argus",
        _ => "unknown",
    }
}

fn source_from(name: &str) -> Option<FlowSource> {
    Some(match name {
        "unknown" => FlowSource::Unknown,
        "netflow_v5" => FlowSource::NetflowV5,
        "netflow_v9" => FlowSource::NetflowV9,
        "ipfix" => FlowSource::Ipfix,
        "sflow" => FlowSource::Sflow,
        "pcap" => FlowSource::Pcap,
        "zeek" => FlowSource::Zeek,
        "argus" => FlowSource::Argus,
        _ => return None,
    })
}

fn flows_batch(rows: &[&FlowRecord], path: &Path) -> Result<RecordBatch> {
    let n = rows.len();
    let ts = |f: fn(&FlowRecord) -> i64| {
        let mut b = TimestampMillisecondBuilder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish().with_timezone(UTC)) as ArrayRef
    };
    let addr = |f: fn(&FlowRecord) -> IpAddr| {
        let mut b = StringBuilder::with_capacity(n, n * 15);
        rows.iter().for_each(|r| b.append_value(f(r).to_string()));
        Arc::new(b.finish()) as ArrayRef
    };
    let text = |f: fn(&FlowRecord) -> &'static str| {
        let mut b = StringBuilder::with_capacity(n, n * 8);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish()) as ArrayRef
    };
    let u8s = |f: fn(&FlowRecord) -> u8| {
        let mut b = UInt8Builder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish()) as ArrayRef
    };
    let u16s = |f: fn(&FlowRecord) -> u16| {
        let mut b = UInt16Builder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish()) as ArrayRef
    };
    let u32s = |f: fn(&FlowRecord) -> u32| {
        let mut b = UInt32Builder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish()) as ArrayRef
    };
    let u64s = |f: fn(&FlowRecord) -> u64| {
        let mut b = UInt64Builder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish()) as ArrayRef
    };
    RecordBatch::try_new(
        flows_schema(),
        vec![
            ts(|r| r.start_ms),
            ts(|r| r.end_ms),
            addr(|r| r.src_addr),
            u16s(|r| r.src_port),
            addr(|r| r.dst_addr),
            u16s(|r| r.dst_port),
            u8s(|r| r.protocol),
            u64s(|r| r.packets),
            u64s(|r| r.bytes),
            u64s(|r| r.rev_packets),
            u64s(|r| r.rev_bytes),
            u8s(|r| r.tcp_flags),
            u8s(|r| r.tos),
            u8s(|r| r.icmp_type),
            u8s(|r| r.icmp_code),
            addr(|r| r.exporter),
            u32s(|r| r.observation_domain),
            u32s(|r| r.input_if),
            u32s(|r| r.output_if),
            u32s(|r| r.sampling_rate),
            text(|r| direction_name(r.direction)),
            text(|r| source_name(r.source)),
        ],
    )
    .map_err(ArchiveError::arrow(path))
}

fn aggregates_batch(rows: &[&ServerAggregate], path: &Path) -> Result<RecordBatch> {
    let n = rows.len();
    let u64s = |f: fn(&ServerAggregate) -> u64| {
        let mut b = UInt64Builder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish()) as ArrayRef
    };
    let mut bin = TimestampMillisecondBuilder::with_capacity(n);
    let mut server = StringBuilder::with_capacity(n, n * 15);
    let mut port = UInt16Builder::with_capacity(n);
    let mut protocol = UInt8Builder::with_capacity(n);
    let mut transit = BooleanBuilder::with_capacity(n);
    for r in rows {
        bin.append_value(r.bin_start_ms);
        server.append_value(r.server.to_string());
        port.append_value(r.port);
        protocol.append_value(r.protocol);
        transit.append_value(r.transit);
    }
    RecordBatch::try_new(
        aggregates_schema(),
        vec![
            Arc::new(bin.finish().with_timezone(UTC)),
            Arc::new(server.finish()),
            Arc::new(port.finish()),
            Arc::new(protocol.finish()),
            u64s(|r| r.flows),
            u64s(|r| r.packets_to_server),
            u64s(|r| r.bytes_to_server),
            u64s(|r| r.packets_from_server),
            u64s(|r| r.bytes_from_server),
            u64s(|r| r.distinct_clients),
            Arc::new(transit.finish()),
        ],
    )
    .map_err(ArchiveError::arrow(path))
}

/// Typed access to one column of a batch read back, with errors that name the file.
struct Columns<'a> {
    batch: &'a RecordBatch,
    path: &'a Path,
}

impl Columns<'_> {
    fn col(&self, name: &str) -> Result<&ArrayRef> {
        let col = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| ArchiveError::format(self.path, format!("no column {name}")))?;
        if col.null_count() > 0 {
            return Err(ArchiveError::format(self.path, format!("nulls in {name}")));
        }
        Ok(col)
    }

    fn prim<T: arrow_array::ArrowPrimitiveType>(&self, name: &str) -> Result<&[T::Native]> {
        self.col(name)?
            .as_primitive_opt::<T>()
            .map(|a| a.values().as_ref())
            .ok_or_else(|| ArchiveError::format(self.path, format!("{name} has the wrong type")))
    }

    fn strings(&self, name: &str) -> Result<&arrow_array::StringArray> {
        self.col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| ArchiveError::format(self.path, format!("{name} has the wrong type")))
    }

    fn addr(&self, strings: &arrow_array::StringArray, i: usize, name: &str) -> Result<IpAddr> {
        strings
            .value(i)
            .parse()
            .map_err(|_| ArchiveError::format(self.path, format!("{name} row {i}: not an address")))
    }
}

fn at<T: Copy>(values: &[T], i: usize, name: &str, path: &Path) -> Result<T> {
    values
        .get(i)
        .copied()
        .ok_or_else(|| ArchiveError::format(path, format!("{name} shorter than the batch")))
}

fn read_batches(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).map_err(ArchiveError::io("open", path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(ArchiveError::parquet(path))?
        .build()
        .map_err(ArchiveError::parquet(path))?;
    reader
        .map(|b| b.map_err(ArchiveError::arrow(path)))
        .collect()
}

/// Reads a `flows` file back into records, in file order.
pub fn read_flows(path: &Path) -> Result<Vec<FlowRecord>> {
    let mut out = Vec::new();
    for batch in read_batches(path)? {
        let c = Columns {
            batch: &batch,
            path,
        };
        let start = c.prim::<TimestampMillisecondType>("start")?;
        let end = c.prim::<TimestampMillisecondType>("end")?;
        let src_addr = c.strings("src_addr")?;
        let src_port = c.prim::<UInt16Type>("src_port")?;
        let dst_addr = c.strings("dst_addr")?;
        let dst_port = c.prim::<UInt16Type>("dst_port")?;
        let protocol = c.prim::<UInt8Type>("protocol")?;
        let packets = c.prim::<UInt64Type>("packets")?;
        let bytes = c.prim::<UInt64Type>("bytes")?;
        let rev_packets = c.prim::<UInt64Type>("rev_packets")?;
        let rev_bytes = c.prim::<UInt64Type>("rev_bytes")?;
        let tcp_flags = c.prim::<UInt8Type>("tcp_flags")?;
        let tos = c.prim::<UInt8Type>("tos")?;
        let icmp_type = c.prim::<UInt8Type>("icmp_type")?;
        let icmp_code = c.prim::<UInt8Type>("icmp_code")?;
        let exporter = c.strings("exporter")?;
        let observation_domain = c.prim::<UInt32Type>("observation_domain")?;
        let input_if = c.prim::<UInt32Type>("input_if")?;
        let output_if = c.prim::<UInt32Type>("output_if")?;
        let sampling_rate = c.prim::<UInt32Type>("sampling_rate")?;
        let direction = c.strings("direction")?;
        let source = c.strings("source")?;
        for i in 0..batch.num_rows() {
            out.push(FlowRecord {
                start_ms: at(start, i, "start", path)?,
                end_ms: at(end, i, "end", path)?,
                src_addr: c.addr(src_addr, i, "src_addr")?,
                dst_addr: c.addr(dst_addr, i, "dst_addr")?,
                exporter: c.addr(exporter, i, "exporter")?,
                packets: at(packets, i, "packets", path)?,
                bytes: at(bytes, i, "bytes", path)?,
                rev_packets: at(rev_packets, i, "rev_packets", path)?,
                rev_bytes: at(rev_bytes, i, "rev_bytes", path)?,
                observation_domain: at(observation_domain, i, "observation_domain", path)?,
                input_if: at(input_if, i, "input_if", path)?,
                output_if: at(output_if, i, "output_if", path)?,
                sampling_rate: at(sampling_rate, i, "sampling_rate", path)?,
                src_port: at(src_port, i, "src_port", path)?,
                dst_port: at(dst_port, i, "dst_port", path)?,
                protocol: at(protocol, i, "protocol", path)?,
                tcp_flags: at(tcp_flags, i, "tcp_flags", path)?,
                tos: at(tos, i, "tos", path)?,
                icmp_type: at(icmp_type, i, "icmp_type", path)?,
                icmp_code: at(icmp_code, i, "icmp_code", path)?,
                direction: direction_from(direction.value(i))
                    .ok_or_else(|| ArchiveError::format(path, "unknown direction"))?,
                source: source_from(source.value(i))
                    .ok_or_else(|| ArchiveError::format(path, "unknown source"))?,
            });
        }
    }
    Ok(out)
}

/// Reads an `aggregates` file back, in file order.
pub fn read_aggregates(path: &Path) -> Result<Vec<ServerAggregate>> {
    let mut out = Vec::new();
    for batch in read_batches(path)? {
        let c = Columns {
            batch: &batch,
            path,
        };
        let bin = c.prim::<TimestampMillisecondType>("bin_start")?;
        let server = c.strings("server")?;
        let port = c.prim::<UInt16Type>("port")?;
        let protocol = c.prim::<UInt8Type>("protocol")?;
        let flows = c.prim::<UInt64Type>("flows")?;
        let pts = c.prim::<UInt64Type>("packets_to_server")?;
        let bts = c.prim::<UInt64Type>("bytes_to_server")?;
        let pfs = c.prim::<UInt64Type>("packets_from_server")?;
        let bfs = c.prim::<UInt64Type>("bytes_from_server")?;
        let clients = c.prim::<UInt64Type>("distinct_clients")?;
        let transit = c
            .col("transit")?
            .as_boolean_opt()
            .ok_or_else(|| ArchiveError::format(path, "transit has the wrong type"))?;
        for i in 0..batch.num_rows() {
            out.push(ServerAggregate {
                server: c.addr(server, i, "server")?,
                port: at(port, i, "port", path)?,
                protocol: at(protocol, i, "protocol", path)?,
                bin_start_ms: at(bin, i, "bin_start", path)?,
                flows: at(flows, i, "flows", path)?,
                packets_to_server: at(pts, i, "packets_to_server", path)?,
                bytes_to_server: at(bts, i, "bytes_to_server", path)?,
                packets_from_server: at(pfs, i, "packets_from_server", path)?,
                bytes_from_server: at(bfs, i, "bytes_from_server", path)?,
                distinct_clients: at(clients, i, "distinct_clients", path)?,
                transit: transit.value(i),
            });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The reaper.

/// One file the reaper deleted: what the ledger's `deletion` act records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The file deleted.
    pub path: PathBuf,
    /// For the ledger entry: `<kind>:<YYYY-MM-DD>/<HH>/part-<seq>.parquet`, the path
    /// relative to the archive directory with the kind as prefix.
    pub what: String,
    /// What it held.
    pub kind: Kind,
    /// Rows it held (from the Parquet footer).
    pub count: u64,
    /// SHA-256 of the file's bytes as they were just before deletion.
    pub content_sha256: [u8; 32],
    /// The expiry it carried.
    pub expires_at: Timestamp,
    /// Why: always [`RETENTION_REASON`] from the reaper.
    pub reason: &'static str,
}

impl Deletion {
    /// The content hash as lowercase hex, as the ledger entry carries it.
    pub fn content_sha256_hex(&self) -> String {
        use std::fmt::Write as _;
        self.content_sha256
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}

/// A file the reaper could not judge and therefore left in place for a human.
#[derive(Debug)]
pub struct ReapFailure {
    /// The file.
    pub path: PathBuf,
    /// Why it was left.
    pub error: ArchiveError,
}

/// What one reaper pass did.
#[derive(Debug, Default)]
pub struct ReapReport {
    /// Files deleted, each to be appended to the ledger.
    pub deleted: Vec<Deletion>,
    /// Files not yet expired.
    pub kept: u64,
    /// Files left in place because their expiry could not be read (or deletion failed).
    pub failed: Vec<ReapFailure>,
}

/// Deletes every archive file under `dir` whose expiry is at or before `now`.
///
/// Each file is read once: the SHA-256 and the footer (expiry, row count) come from the
/// same bytes, so the hash reported is of exactly what the expiry was read from. An error
/// listing `dir` itself is returned; anything wrong with one file is a [`ReapFailure`] and
/// the pass goes on.
pub fn reap(dir: &Path, now: Timestamp) -> Result<ReapReport> {
    reap_with(dir, now, |_| Ok(()))
}

/// [`reap`], calling `before_delete` with each file's [`Deletion`] after it was judged
/// expired and hashed and before it is deleted: a caller journals the deletion there, so
/// a crash cannot delete a file without its record (`retention::reap_recorded`). If the
/// hook fails, that file is kept and reported as a [`ReapFailure`].
pub fn reap_with(
    dir: &Path,
    now: Timestamp,
    mut before_delete: impl FnMut(&Deletion) -> io::Result<()>,
) -> Result<ReapReport> {
    let mut report = ReapReport::default();
    for kind in [Kind::Flows, Kind::Aggregates] {
        let root = dir.join(kind.name());
        if !root.exists() {
            continue;
        }
        let mut files = Vec::new();
        walk(&root, &mut files, &mut report.failed)?;
        files.sort();
        for path in files {
            match reap_one(dir, kind, &path, now, &mut before_delete) {
                Ok(Some(deletion)) => report.deleted.push(deletion),
                Ok(None) => report.kept += 1,
                Err(error) => report.failed.push(ReapFailure { path, error }),
            }
        }
    }
    Ok(report)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, failed: &mut Vec<ReapFailure>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(ArchiveError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(ArchiveError::io("list", dir))?;
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                if let Err(error) = walk(&path, files, failed) {
                    failed.push(ReapFailure { path, error });
                }
            }
            Ok(_) => files.push(path),
            Err(source) => failed.push(ReapFailure {
                error: ArchiveError::Io {
                    op: "stat",
                    path: path.clone(),
                    source,
                },
                path,
            }),
        }
    }
    Ok(())
}

/// The `mamori.*` key-value metadata of an archive file (expiry, kind, pseudonym key id).
pub fn file_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    // Only the footer is read, not the file.
    let file = File::open(path).map_err(ArchiveError::io("open", path))?;
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(ArchiveError::parquet(path))?;
    Ok(meta
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter(|kv| kv.key.starts_with("mamori."))
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
        .collect())
}

fn reap_one(
    dir: &Path,
    kind: Kind,
    path: &Path,
    now: Timestamp,
    before_delete: &mut impl FnMut(&Deletion) -> io::Result<()>,
) -> Result<Option<Deletion>> {
    let bytes = bytes::Bytes::from(fs::read(path).map_err(ArchiveError::io("read", path))?);
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes)
        .map_err(ArchiveError::parquet(path))?;
    let file_meta = meta.file_metadata();
    let value = |key: &str| {
        file_meta
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.as_deref())
    };
    let expires_at = value(EXPIRES_AT_KEY)
        .ok_or_else(|| ArchiveError::format(path, format!("no {EXPIRES_AT_KEY}")))?;
    let expires_at = chrono::DateTime::parse_from_rfc3339(expires_at)
        .map_err(|e| ArchiveError::format(path, format!("{EXPIRES_AT_KEY}: {e}")))?
        .to_utc();
    if value(KIND_KEY) != Some(kind.name()) {
        return Err(ArchiveError::format(
            path,
            format!("{KIND_KEY} is not {}", kind.name()),
        ));
    }
    if expires_at > now {
        return Ok(None);
    }
    let count = u64::try_from(file_meta.num_rows())
        .map_err(|_| ArchiveError::format(path, "negative row count"))?;
    let content_sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let rel = path
        .strip_prefix(dir.join(kind.name()))
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned();
    let deletion = Deletion {
        path: path.to_path_buf(),
        what: format!("{}:{rel}", kind.name()),
        kind,
        count,
        content_sha256,
        expires_at,
        reason: RETENTION_REASON,
    };
    before_delete(&deletion).map_err(ArchiveError::io("journal the deletion of", path))?;
    fs::remove_file(path).map_err(ArchiveError::io("delete", path))?;
    Ok(Some(deletion))
}

/// Serde for a [`Duration`] as `"<n><unit>"`, unit `d`, `h`, `m` or `s` (`"7d"`, `"36h"`).
pub(crate) mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// A duration as the configuration writes it: `7d`, `1h`, `90s`.
    pub fn format(d: Duration) -> String {
        let secs = d.as_secs();
        match secs {
            0 => "0s".to_owned(),
            _ if secs.is_multiple_of(86_400) => format!("{}d", secs / 86_400),
            _ if secs.is_multiple_of(3_600) => format!("{}h", secs / 3_600),
            _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
            _ => format!("{secs}s"),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            D::Error::custom(format!(
                "duration {text:?}: expected a whole number and a unit d, h, m or s, e.g. \"7d\", \
                 of at most {MAX_DAYS}d"
            ))
        })
    }

    pub(crate) fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let unit_at = text.len().checked_sub(1)?;
        let (n, unit) = (text.get(..unit_at)?, text.get(unit_at..)?);
        let n: u64 = n.parse().ok()?;
        let per = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return None,
        };
        // Longer than a century is a typo (and would overflow the time arithmetic of
        // expiries and windows: every write would fail later instead of now).
        n.checked_mul(per)
            .filter(|secs| *secs <= MAX_DAYS * 86_400)
            .map(Duration::from_secs)
    }

    /// The longest duration a setting takes: 100 years.
    pub(crate) const MAX_DAYS: u64 = 36_500;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonym_key_id_is_in_the_metadata_only_when_set() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ArchiveWriter::new(dir.path(), RetentionPolicy::default()).unwrap();
        let rec = FlowRecord {
            start_ms: 1_700_000_000_000,
            ..FlowRecord::default()
        };
        let without = w.write_flows(&[rec]).unwrap();
        w.set_pseudonym_key_id(Some("k-2026-11".into()));
        let with = w.write_flows(&[rec]).unwrap();
        let m0 = file_metadata(&without[0].path).unwrap();
        let m1 = file_metadata(&with[0].path).unwrap();
        assert_eq!(m0.get(PSEUDONYM_KEY_ID_KEY), None);
        assert_eq!(m0.get(KIND_KEY).map(String::as_str), Some("flows"));
        assert_eq!(
            m1.get(PSEUDONYM_KEY_ID_KEY).map(String::as_str),
            Some("k-2026-11")
        );
    }

    #[test]
    fn retention_reads_units_and_refuses_nonsense() {
        assert_eq!(
            duration_text::parse("7d"),
            Some(Duration::from_secs(604_800))
        );
        assert_eq!(
            duration_text::parse("36h"),
            Some(Duration::from_secs(129_600))
        );
        assert_eq!(duration_text::parse("7"), None);
        assert_eq!(duration_text::parse("d"), None);
        assert_eq!(duration_text::parse("-1d"), None);
        assert_eq!(duration_text::parse("7w"), None);
    }

    #[test]
    fn expiry_is_end_of_hour_plus_retention() {
        let hour = time(hour_of(1_764_000_123_456), "t").unwrap_or_default();
        assert_eq!(rfc3339(hour), "2025-11-24T16:00:00.000Z");
        let e = expiry(hour, Duration::from_secs(86_400)).unwrap_or_default();
        assert_eq!(rfc3339(e), "2025-11-25T17:00:00.000Z");
        assert_eq!(hour_of(-1), -HOUR_MS);
    }

    #[test]
    fn every_source_and_direction_round_trips_by_name() {
        for s in [
            FlowSource::Unknown,
            FlowSource::NetflowV5,
            FlowSource::NetflowV9,
            FlowSource::Ipfix,
            FlowSource::Sflow,
            FlowSource::Pcap,
            FlowSource::Zeek,
            FlowSource::Argus,
        ] {
            assert_eq!(source_from(source_name(s)), Some(s));
        }
        for d in [Direction::Unknown, Direction::Ingress, Direction::Egress] {
            assert_eq!(direction_from(direction_name(d)), Some(d));
        }
    }
}
