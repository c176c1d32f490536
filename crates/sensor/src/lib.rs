//! The carrier's runtime (DESIGN "sensor"; REQUIREMENTS CI-1…CI-8): sources of flow
//! exports and files, decoded by `mamori-flow`, handed on in batches with back-pressure,
//! and counted per exporter.
//!
//! It holds the **UDP collector** ([`collector`]), the **file inputs** ([`files`]), the
//! **archive** ([`archive`]: kept records and per-server aggregates as hour-partitioned
//! Parquet files, each with an expiry, and the reaper that deletes them on time and
//! reports each deletion for the ledger, DESIGN invariant 4), the **runtime** ([`runtime`]:
//! sources → pseudonymise+select → archive / detection → concern list and findings to the
//! centre, [`post`]), its **configuration** ([`config`]) and its **counters** ([`metrics`]). The sensor's own
//! verifiable ledger ([`ledger`], served by [`http_ledger`] with the centre's endpoints), its
//! pseudonym keys ([`keys`]) and recorded deletion ([`retention`]) make every sensitive act at
//! the carrier checkable by the overseer (DESIGN invariants 2, 4, 7; CI-4, CI-5, CI-9).
//!
//! **Architecture invariant:** bad input and deliberate drops are counted events, never
//! log floods and never stops (STYLE principle 4): a malformed datagram is counted against
//! its exporter and the next one is read; a full downstream queue drops whole batches and
//! counts the records dropped, rather than blocking the socket until the kernel drops
//! blindly. Threads, not async: one blocking receive loop per socket keeps the hot path
//! free of executor overhead and its buffers reused (STYLE principle 12).
//!
//! **API boundary:** [`runtime::Sensor::start`] with a [`config::SensorConfig`] and
//! [`runtime::Deps`]; [`runtime::http_router`]; [`collector::Collector::start`] with a
//! [`collector::CollectorConfig`] and a bounded channel for [`mamori_flow::FlowBatch`]es;
//! [`collector::Stats`] for the counters; [`archive::ArchiveWriter`] and [`archive::reap`]
//! for retention; [`ledger::SensorLedger`] (a [`record::Recorder`]), [`http_ledger::router`],
//! [`keys::KeyRing`] and [`retention::reap_recorded`] for the ledger and what it records.

pub mod archive;
pub mod collector;
pub mod concern;
pub mod config;
pub mod files;
pub mod http_ledger;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod post;
pub mod record;
pub mod retention;
pub mod runtime;
