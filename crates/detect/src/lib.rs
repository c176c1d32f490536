//! mamori's detect room (REQUIREMENTS CI-1, CI-11, CI-12): detectors that read flow
//! records and report attacker
//! infrastructure — C2 servers, beacons, botnets, scanners, DDoS, indicator hits — as
//! scored [`Finding`]s with the evidence an analyst needs to trust them, and the
//! evaluation of findings against labelled captures. Results on the labelled data:
//! `docs/EVALUATION.md`; speed and state size: `docs/benchmarks/detect.md`.
//!
//! # What it holds
//! - [`Finding`] and its typed [`Evidence`] (one JSON object per line);
//! - [`BeaconDetector`] (RITA v5 beacon semantics on a ≤ 256-byte sketch per pair, a
//!   sampling-robust phase test, C2 promotion), [`fan_in_findings`] (botnets),
//!   [`ScanDetector`] (threshold random walk with the CAIDA-telescope and Slips
//!   profiles, distinct-count sketches), [`DdosDetector`] (per-destination windows
//!   against their own baseline, Space-Saving top sources), [`IndicatorDetector`] over
//!   an immutable [`IndicatorSet`] (Feodo CSV, Spamhaus DROP/EDROP, exact + CIDR LPM)
//!   swapped atomically through an [`IndicatorSlot`];
//! - [`Detectors`] (all of them, streaming over batches) and [`run_all`];
//! - [`eval`]: labels from CTU `Label` columns or `GROUND_TRUTH.tsv`, and precision,
//!   recall and F1 per finding kind with the false and missed addresses.
//!
//! # Architecture invariant
//! **Pure and deterministic**: records in, findings out. No file, socket or clock (time
//! comes from the records), no async, no logging, no randomness: the same records in the
//! same order give the same findings, byte for byte. **Bounded state**: every per-key
//! table has a configured maximum (pairs, sources, destinations) and keys beyond it are
//! counted, not tracked; per-pair beacon state is ≤ 256 bytes with its key. **Findings
//! are about servers** (or scanners / DDoS sources and victims): client addresses appear
//! only as supporting evidence and arrive already pseudonymised in sensor mode (the
//! sensor pseudonymises before detection). No input panics a detector.
//!
//! # API boundary
//! In: [`mamori_flow::FlowRecord`]s (or [`mamori_flow::FlowBatch`]es), a [`DetectConfig`],
//! optionally an `Arc<IndicatorSet>` built from `io::Read` feeds. Out: `Vec<Finding>`,
//! sorted by score. [`Finding`] holds no flow type (plain `IpAddr`, numbers, strings) so
//! it can move into `mamori-core` for the centre, which never depends on flow/detect.
//! Callers (the sensor, `mamori detect`, `mamori eval`) own files, windows and clocks.
//!
//! # Assumptions worth knowing
//! - Beacon jitter is per connection around a schedule; under heavy packet sampling a
//!   cumulative random-walk jitter loses phase and is only found unsampled.
//! - Unidirectional exports: the lower port is taken as the service port; reply
//!   records add bytes to an existing pair but never create one.
//! - The telescope scan profile treats every unanswered probe as unsolicited: use it
//!   on dark or honeypot-like address space, the Slips profile (default) elsewhere.
//! - The flow record carries no TCP state for Zeek/Argus input, so "answered" is read
//!   from reverse packets and bytes.
//! - The phase test (the sampling-robust periodicity test) runs on packet-sampled pairs
//!   only unless [`BeaconConfig::phase_test_unsampled`] is set: it is the slow path.

mod beacon;
mod ddos;
pub mod eval;
mod fanin;
mod indicator;
mod orient;
mod scan;
mod stats;

use std::sync::Arc;

pub use beacon::{
    BeaconConfig, BeaconDetector, KEPT, PairKey, PairScore, PairState, Scratch, c2_score,
};
pub use ddos::{DdosConfig, DdosDetector};
pub use fanin::{FanInConfig, fan_in_findings};
pub use indicator::{Hit, IndicatorDetector, IndicatorSet, IndicatorSetBuilder, IndicatorSlot};
pub use mamori_core::finding::{
    BeaconEvidence, BotnetEvidence, Clients, DdosEvidence, Evidence, Finding, FindingKind,
    IndicatorEvidence, ScanEvidence, rfc3339_ms, sort_findings,
};
pub use scan::{ScanConfig, ScanDetector, ScanProfile};

use mamori_flow::{FlowBatch, FlowRecord};

/// Errors of this crate: only loading indicator feeds can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a feed or label file failed.
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
    /// A feed line is neither an address nor a CIDR.
    #[error("indicator entry {entry:?} is not an IP address or CIDR (fix or remove the line)")]
    BadEntry {
        /// The offending entry (first 80 characters).
        entry: String,
    },
    /// A feed line is longer than any real feed line.
    #[error("line {line} is longer than 4096 bytes: not a feed or label file?")]
    LineTooLong {
        /// 1-based line number.
        line: u64,
    },
    /// More than 1,985 feeds in one set.
    #[error("more than 1985 feeds in one indicator set: merge lists under fewer feed names")]
    TooManyFeeds,
    /// A label file lacks a column it needs.
    #[error("label file has no {column:?} column (is it a labelled conn.log or binetflow?)")]
    MissingColumn {
        /// The column looked for.
        column: &'static str,
    },
}

/// Settings of every detector; `Default` is the carrier-sensor profile.
#[derive(Clone, Debug, Default)]
pub struct DetectConfig {
    /// Beacon / C2.
    pub beacon: BeaconConfig,
    /// Fan-in / botnet.
    pub fan_in: FanInConfig,
    /// Scanning.
    pub scan: ScanConfig,
    /// DDoS.
    pub ddos: DdosConfig,
    /// Indicators to match (empty: no indicator findings).
    pub indicators: Arc<IndicatorSet>,
}

/// Every detector, fed record by record or batch by batch.
#[derive(Debug)]
pub struct Detectors {
    fan_in: FanInConfig,
    beacon: BeaconDetector,
    scan: ScanDetector,
    ddos: DdosDetector,
    indicators: IndicatorDetector,
    records: u64,
}

impl Detectors {
    /// Detectors configured by `cfg`.
    pub fn new(cfg: &DetectConfig) -> Self {
        Self {
            fan_in: cfg.fan_in.clone(),
            beacon: BeaconDetector::new(cfg.beacon.clone()),
            scan: ScanDetector::new(cfg.scan.clone()),
            ddos: DdosDetector::new(cfg.ddos.clone()),
            indicators: IndicatorDetector::new(Arc::clone(&cfg.indicators)),
            records: 0,
        }
    }

    /// Switches indicator matching to a reloaded set (e.g. from [`IndicatorSlot::load`]).
    pub fn replace_indicators(&mut self, set: Arc<IndicatorSet>) {
        self.indicators.replace_set(set);
    }

    /// Adds one record.
    pub fn observe(&mut self, r: &FlowRecord) {
        self.records += 1;
        self.beacon.observe(r);
        self.scan.observe(r);
        self.ddos.observe(r);
        self.indicators.observe(r);
    }

    /// Adds a batch.
    pub fn observe_batch(&mut self, batch: &FlowBatch) {
        for r in &batch.records {
            self.observe(r);
        }
    }

    /// Records observed.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Pairs the beacon detector tracks.
    pub fn tracked_pairs(&self) -> usize {
        self.beacon.tracked_pairs()
    }

    /// Keys not tracked because a table was full (the sensor exports these counters).
    pub fn untracked(&self) -> Untracked {
        Untracked {
            pairs: self.beacon.untracked_pairs,
            sources: self.scan.untracked_sources,
            destinations: self.ddos.untracked_destinations,
            episodes: self.ddos.dropped_episodes(),
        }
    }

    /// Scores everything and returns the findings sorted by score.
    pub fn finish(self) -> Vec<Finding> {
        let mut out = self.beacon.findings();
        out.extend(fan_in_findings(&self.beacon, &self.fan_in));
        out.extend(self.scan.findings());
        out.extend(self.indicators.findings());
        out.extend(self.ddos.findings());
        for f in &mut out {
            f.evidence.round();
            if !f.score.is_finite() {
                f.score = 0.0;
            }
        }
        sort_findings(&mut out);
        out
    }
}

/// What bounded state refused: keys beyond a table's maximum are counted, not tracked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Untracked {
    /// Client/server pairs beyond `BeaconConfig::max_pairs`.
    pub pairs: u64,
    /// Sources beyond `ScanConfig::max_sources`.
    pub sources: u64,
    /// Destinations beyond `DdosConfig::max_destinations`.
    pub destinations: u64,
    /// DDoS episodes beyond `DdosConfig::max_episodes`.
    pub episodes: u64,
}

/// Runs every detector over `records` and returns the findings sorted by score.
pub fn run_all(records: impl IntoIterator<Item = FlowRecord>, cfg: &DetectConfig) -> Vec<Finding> {
    let mut d = Detectors::new(cfg);
    for r in records {
        d.observe(&r);
    }
    d.finish()
}
