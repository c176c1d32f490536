//! mamori's flow room: the one flow record every input is reduced to, the sans-IO
//! decoders that produce it, and the pure parts of the sensor's privacy pipeline —
//! Crypto-PAn, country lookup, selection (REQUIREMENTS CI-1…CI-4, CI-12).
//!
//! # What it holds
//! - [`FlowRecord`] (compact, `Copy`) and [`FlowBatch`], the caller-owned buffer decoders
//!   push into;
//! - [`Reader`], the one bounds-checked reader hostile bytes pass through;
//! - export decoders behind [`DatagramDecoder`]: [`NetflowV5Decoder`], [`TemplateDecoder`]
//!   (NetFlow v9 and IPFIX, with the template cache), [`SflowDecoder`] (sFlow v5 flow
//!   samples, L2–L4 read from the sampled header) and [`ExportDecoder`] (dispatch on
//!   the version field);
//! - text readers: [`ZeekConnReader`] (`conn.log`, TSV with `#fields` or JSON lines) and
//!   [`ArgusReader`] (`binetflow` CSV/TSV), both on the `csv` crate's `ByteRecord`;
//! - [`Anomaly`] and [`AnomalyCounts`]: everything a decoder cannot use is a typed,
//!   counted event;
//! - [`CryptoPan`] and [`Pseudonymiser`]: prefix-preserving pseudonymisation of
//!   subscriber addresses (CI-4), bit-exact with the reference implementation, inverse
//!   only with a [`ReidentificationApproval`] (CI-5);
//! - [`GeoTable`]: the country of an address, from RIR delegation files and CIDR lists;
//! - [`SelectionPolicy`] and [`Selector`]: select before keeping (CI-2) — domestic↔domestic
//!   flows dropped and counted per [`DropReason`], non-foreign ends pseudonymised, kept
//!   flows folded into per-server aggregates unless the server is on the
//!   [`ConcernList`].
//!
//! # Architecture invariant
//! Pure: bytes or a caller-supplied `io::Read` in, records and counters out. No socket,
//! no file opened, no clock read (the caller passes "now"), no async, no logging. **No
//! payload byte survives decode** (CI-3): a [`FlowRecord`] has no field that can hold
//! one, and decoders keep only addresses, ports, counters, times and interface data.
//! **Decoders never panic** on any input: the decoder modules deny
//! `clippy::indexing_slicing`, `unwrap_used` and `panic`, and a property test per decoder
//! (`tests/fuzz.rs`) throws truncated, oversized-length, zero-length-template and looping
//! inputs seeded from real captures at them. Memory is bounded by [`TemplateLimits`].
//! **No domestic↔domestic flow and no clear subscriber address leaves [`Selector::process`]**
//! (DESIGN invariants 2 and 3; `tests/selection.rs` on the real logs).
//!
//! # API boundary
//! Callers own sockets, files, clocks and batches: they hand a [`Datagram`] (exporter
//! address, receive time, UDP payload) or a reader to a decoder, and get records and
//! anomaly counts back in their [`FlowBatch`]. Per-exporter counting is the collector's
//! job: it knows the exporter of every datagram it hands in.
//!
//! # Why our own NetFlow/IPFIX decoder
//! `netflow_parser` (see CRATES.md) decodes into owned, per-record structures (maps and
//! vectors of typed field values), which allocates per record; the target here is ≥ 20 M
//! records/s/core for v9/IPFIX and ≥ 50 M/s for v5 with zero allocation per record. This
//! decoder compiles every template once into `(offset, length, kind)` operations over
//! the fields we use, so a data record costs a dozen bounds-checked reads and no
//! allocation. Measured figures: `BENCH_NOTES.md`.

mod anomaly;
mod argus;
mod cryptopan;
mod export;
mod geo;
mod netflow_v5;
mod packet;
mod reader;
mod record;
mod selection;
mod sflow;
mod template;
mod text;
mod zeek;

pub use anomaly::{Anomaly, AnomalyCounts, AnomalyKind};
pub use argus::ArgusReader;
pub use cryptopan::{
    CacheStats, CryptoPan, CryptoPanKey, KeyError, Pseudonymiser, ReidentificationApproval,
};
pub use export::{Datagram, DatagramDecoder, ExportDecoder};
pub use geo::{
    BadCountryCode, CountryCode, GeoError, GeoTable, GeoTableBuilder, LoadReport, MAX_LINE,
};
pub use netflow_v5::NetflowV5Decoder;
pub use reader::{Reader, be_uint};
pub use record::{Direction, FlowBatch, FlowRecord, FlowSource};
pub use selection::{
    Class, Concern, ConcernList, DropReason, DropRule, End, PolicyError, SelectionCounts,
    SelectionPolicy, Selector, ServerAggregate, Side, UnknownCountry, geo_from_cidr_lists,
};
pub use sflow::SflowDecoder;
pub use template::{Expired, TemplateDecoder, TemplateLimits};
pub use zeek::ZeekConnReader;

/// Errors of the text readers: the underlying reader failed. (Bad *content* is never an
/// error: it is an [`Anomaly`] counted in the batch.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the input failed.
    #[error("reading flow input: {0}")]
    Io(#[from] std::io::Error),
}
