//! mamori's flow room: the one flow record every input is reduced to, and the sans-IO
//! decoders that produce it. Requirements: **CI-1** (read what carriers' routers and
//! probes export: NetFlow v5/v9, IPFIX, sFlow, pcap, Zeek, Argus), **CI-3** (reduce
//! everything to flow metadata at once — no payload kept), **CI-12** (at carrier rates).
//!
//! # What it holds
//! - [`FlowRecord`] (compact, `Copy`, 128 bytes) and [`FlowBatch`], the caller-owned,
//!   reusable buffer decoders push records and [`AnomalyCounts`] into;
//! - [`Reader`], the one bounds-checked reader hostile bytes pass through;
//! - export decoders behind one trait, [`DatagramDecoder`]: [`NetflowV5Decoder`],
//!   [`TemplateDecoder`] (NetFlow v9 and IPFIX, with the template cache and options
//!   state), [`SflowDecoder`] (sFlow v5 flow samples, L2–L4 read from the sampled header)
//!   and [`ExportDecoder`] (all of them on one port, dispatching on the version field);
//! - [`FlowMeter`]: captured frames (from [`PcapReader`], pcap or pcapng) reduced to
//!   bidirectional 5-tuple flows with idle and active timeouts; [`udp_payload`] takes
//!   export datagrams out of captures of export traffic;
//! - [`CryptoPan`] and [`Pseudonymiser`]: prefix-preserving pseudonymisation of
//!   subscriber addresses (CI-4), bit-exact with the reference implementation, inverse
//!   only with a [`ReidentificationApproval`] (CI-5);
//! - [`GeoTable`]: the country of an address, from RIR delegation files and CIDR lists;
//! - [`SelectionPolicy`] and [`Selector`]: select before keeping (CI-2) — domestic↔domestic
//!   flows dropped and counted per [`DropReason`], non-foreign ends pseudonymised, kept
//!   flows folded into per-server aggregates unless the server is on the
//!   [`ConcernList`];
//! - text readers: [`ZeekConnReader`] (`conn.log`, TSV with `#fields` or JSON lines) and
//!   [`ArgusReader`] (`binetflow` CSV/TSV, on the `csv` crate's `ByteRecord`);
//! - [`Anomaly`] / [`AnomalyKind`]: everything a decoder cannot use, or deliberately
//!   drops, is a typed, counted event — never a panic, never a log line.
//!
//! # Architecture invariant
//! Pure: bytes or a caller-supplied `io::Read` in, records and counters out. No socket,
//! no file opened, no clock read (the caller passes "now": [`Datagram::received_ms`],
//! [`TemplateDecoder::expire`]; the meter runs on packet time), no async, no logging.
//! **No payload byte survives decode** (CI-3): a [`FlowRecord`] has no field that could
//! hold one, and the packet-header parser stops at the end of the L4 header (property
//! tests `no_payload_byte_survives_decode` in `tests/sflow.rs` and
//! `no_payload_byte_survives_metering` in `tests/meter.rs`). **Decoders never panic**:
//! decoder modules deny `clippy::indexing_slicing`, `unwrap_used` and `panic`, and a
//! bounded property harness per decoder (`tests/fuzz.rs`, run by `cargo test`) feeds
//! them truncated, oversized-length, zero-length-template and looping inputs seeded from
//! the real captures. Memory is bounded by [`TemplateLimits`] and [`MeterConfig`].
//! **No domestic↔domestic flow and no clear subscriber address leaves [`Selector::process`]**
//! (DESIGN invariants 2 and 3; `tests/selection.rs` on the real logs).
//!
//! # API boundary
//! Callers own sockets, files, clocks and batches: they hand a [`Datagram`] (exporter
//! address, receive time, UDP payload), a captured frame or a reader to a decoder and
//! read records and anomaly counts from their [`FlowBatch`], which they clear and reuse.
//! Per-exporter counting is the collector's job: it knows the exporter of each datagram.
//! Decompression of `.gz`/`.xz`/`.zst` logs is the caller's too (wrap the reader).
//!
//! # Why our own NetFlow v9/IPFIX decoder
//! CRATES.md recommends `netflow_parser`; measured on the same real datagrams (the
//! `decode` bench) it decodes v9/IPFIX about ten times slower than the target of
//! ≥ 20 M records/s/core, because it builds owned per-record structures (vectors of
//! typed field values) and so allocates per record. Here every template is compiled once,
//! when it arrives, into the offsets of the fields we use (enterprise and unused fields
//! cost nothing), and a data record is a short loop of bounds-checked loads into a slot
//! array: no allocation per record, none per re-sent template either. For NetFlow v5 the
//! two are on a par; ours keeps the one record type and reader. Figures and commands:
//! `docs/benchmarks/flow-decode.md`.

mod anomaly;
mod argus;
mod cryptopan;
mod export;
mod geo;
mod meter;
mod netflow_v5;
mod packet;
mod pcap;
mod reader;
mod record;
mod selection;
mod sflow;
mod template;
mod text;
mod zeek;
mod zeek_json;

pub use anomaly::{Anomaly, AnomalyCounts, AnomalyKind};
pub use argus::ArgusReader;
pub use cryptopan::{
    CacheStats, CryptoPan, CryptoPanKey, KeyError, Pseudonymiser, ReidentificationApproval,
};
pub use export::{Datagram, DatagramDecoder, ExportDecoder};
pub use geo::{
    BadCountryCode, CountryCode, GeoError, GeoTable, GeoTableBuilder, LoadReport, MAX_LINE,
};
pub use meter::{FlowMeter, LinkType, MeterConfig};
pub use netflow_v5::NetflowV5Decoder;
pub use pcap::{Frame, PcapReader, udp_payload};
pub use reader::{Reader, be_uint};
pub use record::{Direction, FlowBatch, FlowRecord, FlowSource};
pub use selection::{
    Class, Concern, ConcernList, DropReason, DropRule, End, Observed, PolicyError, Pseudonymised,
    SelectionCounts, SelectionPolicy, Selector, ServerAggregate, Side, UnknownCountry,
    geo_from_cidr_lists,
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
