//! `mamori sensor`: the carrier's runtime as one process (issue 6 part 5, issue 7 part 3;
//! REQUIREMENTS CI-1…CI-8, CI-11, CI-12; DESIGN invariants 1–4).
//!
//! ```text
//!  UDP collector ─┐                        ┌─► archive (hourly Parquet, key id per file)
//!  file readers ──┴─► [ingest] ─► select ──┤   (kept per-flow records + aggregates)
//!  (files, watched dirs)   pseudonymise    └─► [detect] ─► detection on time windows
//!                          + select                          │ concern list (recorded first)
//!                          (Selector)                        └─► [post] ─► centre
//! ```
//!
//! One thread per stage, joined by bounded `sync_channel`s ([`crate::config::QueueConfig`]).
//!
//! **Architecture invariants.**
//! - *Nothing unselected gets past the select stage*: the only records that leave it are
//!   those [`Selector::process_observed`] kept, with every non-foreign end pseudonymised
//!   (CI-2, CI-4; invariants 2, 3). The archive and the detectors see nothing else; the
//!   findings posted name foreign servers in clear and clients only as pseudonyms.
//! - *Ingest never blocks on a slow stage*: the UDP collector and the select stage hand
//!   on with `try_send`; when a queue is full the whole batch is dropped and counted
//!   against the stage it was meant for ([`Metrics`]). File readers alone wait (back-
//!   pressure on a file loses nothing).
//! - *A concern changes only after it is recorded*: `Act::ConcernListed` /
//!   `Act::ConcernEnded` go through the [`Recorder`] before the list the select stage
//!   reads is swapped (CI-5). A failed recording leaves the list as it was and is counted.
//!   The ledger is the list's durable state: rebuilt from it at start, followed every
//!   second (manual changes, [`crate::concern`]); a listed server is renewed, never listed
//!   twice.
//! - *A pseudonym is never a server*: which ends the select stage pseudonymised travels
//!   with each record to the detection stage ([`Observed`]); a finding whose address a
//!   window saw as a pseudonym becomes an infected-client finding naming the key, and is
//!   never concern-listed (CI-4, invariant 2). Country data is consulted for clear
//!   addresses only.
//! - *No exporter's clock moves time*: records dated past [`MAX_FUTURE_SKEW`] (or before
//!   1970) are re-timed to their arrival and counted; windows close by the latest record
//!   time plus [`MAX_LATENESS`], and later records are counted and left out of detection;
//!   the archive loses at most the hour of a record it cannot place.
//! - *One pseudonym key per archive file*: the select stage asks the [`KeySource`] for the
//!   key of "now"; when its id changes, the aggregates of the old key are flushed, the
//!   archive writes what it buffered under the old id, and new files carry the new id
//!   ([`crate::archive::PSEUDONYM_KEY_ID_KEY`]).
//! - *Graceful stop*: [`Sensor::stop`] stops the sources, drains every queue, closes the
//!   detection window, writes the archive's buffers and gives the poster a bounded time.
//!
//! **API boundary:** [`Sensor::start`] with a [`SensorConfig`] and [`Deps`] (clock, key
//! source, recorder, country table, the centre's token); [`Sensor::status`],
//! [`http_router`] (`GET /metrics`, and `GET /status` with the operator's or the overseer's
//! token; mergeable with other routers),
//! [`Sensor::stop`].

use crate::archive::ArchiveWriter;
use crate::collector::{Collector, Stats};
use crate::concern::Change;
use crate::config::{CentreConfig, SensorConfig};
use crate::files::{BatchSink, read_file};
use crate::http_ledger::StatusAuth;
use crate::metrics::{Metrics, QueueStats, Snapshot};
use crate::post::{Centre, post};
use crate::record::Recorder;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ipnet::IpNet;
use mamori_core::Clock;
use mamori_core::entry::{Act, Actor, Entry};
use mamori_core::finding::Finding;
use mamori_core::time::{Timestamp, from_millis};
use mamori_detect::{
    DetectConfig, Detectors, IndicatorSet, IndicatorSetBuilder, IndicatorSlot, ScanProfile,
};
use mamori_flow::{
    Concern, ConcernList, CryptoPanKey, FlowBatch, FlowRecord, GeoTable, Observed, Pseudonymised,
    Selector, ServerAggregate, Side, UnknownCountry,
};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the runtime gets the pseudonym key in force at a time (the sensor's key ring,
/// rotated per period; the key never leaves the sensor).
pub trait KeySource: Send + Sync {
    /// The id and the key to pseudonymise with at `now`.
    fn key_for(&self, now: Timestamp) -> (String, CryptoPanKey);

    /// Destroys the keys no kept data needs any more (each retirement recorded), called by
    /// the reaper after it has deleted expired files; returns how many it retired. A source
    /// without rotation retires nothing.
    fn retire_unused(&self, _now: Timestamp, _archive_dir: &Path) -> Result<usize, String> {
        Ok(0)
    }
}

/// One key, always (tests, and sensors without rotation).
#[derive(Clone)]
pub struct StaticKey {
    /// Its id, written into each archive file.
    pub id: String,
    /// The key.
    pub key: CryptoPanKey,
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl KeySource for StaticKey {
    fn key_for(&self, _now: Timestamp) -> (String, CryptoPanKey) {
        (self.id.clone(), self.key.clone())
    }
}

/// What the runtime is given rather than makes.
pub struct Deps {
    /// "Now" for concern expiry, entries and the collector.
    pub clock: Arc<dyn Clock>,
    /// The pseudonym key of each moment.
    pub keys: Arc<dyn KeySource>,
    /// Where concern-list changes are recorded.
    pub recorder: Arc<dyn Recorder>,
    /// Country of each address.
    pub geo: Arc<GeoTable>,
    /// The carrier's token for the centre (from the environment variable the
    /// configuration names); `None` with a `[centre]` section is refused.
    pub centre_token: Option<String>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is never printed.
        f.debug_struct("Deps")
            .field("clock", &self.clock)
            .field("centre_token", &self.centre_token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// Why the sensor could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The selection policy was refused.
    #[error("selection policy: {0}")]
    Policy(#[from] mamori_flow::PolicyError),
    /// The archive directory could not be made.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// A UDP socket could not be bound.
    #[error(transparent)]
    Collector(#[from] crate::collector::CollectorError),
    /// The HTTP endpoint could not listen, or a thread could not start.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Something in the configuration cannot be used as given.
    #[error("{0}")]
    Config(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let what = what.into();
    move |source| RuntimeError::Io { what, source }
}

/// One server on the concern list, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedConcern {
    /// The server (a foreign address, in clear).
    pub server: IpAddr,
    /// Why it was listed.
    pub reason: String,
    /// When deep collection ends unless renewed (RFC 3339).
    pub expires_at: String,
    #[serde(skip)]
    expires_ms: i64,
}

impl ListedConcern {
    fn new(server: IpAddr, reason: String, expires_at: Timestamp) -> Self {
        Self {
            server,
            reason,
            expires_at: mamori_core::time::rfc3339(expires_at),
            expires_ms: expires_at.timestamp_millis(),
        }
    }
}

/// Applies the concern entries of the ledger from index `start` on to `listed` — a listing
/// or renewal sets the server's reason and expiry, an end removes it — and returns the
/// index after the last entry. This is how the list survives a restart (rebuilt from the
/// ledger, where every change was recorded before it took effect, CI-5) and how a manual
/// concern reaches the running sensor. An entry naming an address inside the subscriber
/// prefixes, or no plain address, is refused and counted: deep collection follows foreign
/// servers, never subscribers (CI-4). Expired listings come back too and are ended, with
/// their end recorded, by the detection stage's next expiry pass.
fn replay_concerns(
    recorder: &dyn Recorder,
    start: u64,
    listed: &mut BTreeMap<IpAddr, ListedConcern>,
    side: &Selector,
    metrics: &Metrics,
) -> std::io::Result<u64> {
    recorder.read_from(start, &mut |e| match crate::concern::change(e) {
        Change::Listed {
            server,
            reason,
            expires_at,
        } if !side.is_subscriber(server) => {
            let concern = ListedConcern::new(server, reason.to_owned(), expires_at);
            if listed.get(&server) != Some(&concern) {
                listed.insert(server, concern);
                metrics.concerns_restored.fetch_add(1, Ordering::Relaxed);
            }
        }
        Change::Listed { server, .. } => {
            metrics.concerns_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%server, "concern entry not applied: inside the subscriber prefixes");
        }
        Change::NotAnAddress(server) => {
            metrics.concerns_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%server, "concern entry not applied: not an address");
        }
        Change::Ended { server } => {
            listed.remove(&server);
        }
        Change::Other => {}
    })
}

/// The concern list: written by the detection stage, read by the select stage.
#[derive(Debug, Default)]
struct Concerns {
    compiled: RwLock<Arc<ConcernList>>,
    listed: Mutex<BTreeMap<IpAddr, ListedConcern>>,
}

impl Concerns {
    fn current(&self) -> Arc<ConcernList> {
        self.compiled
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_default()
    }

    fn publish(&self, listed: &BTreeMap<IpAddr, ListedConcern>) {
        let list = ConcernList::new(
            listed
                .values()
                .map(|c| Concern {
                    prefix: IpNet::from(c.server),
                    reason: c.reason.clone(),
                    expires_ms: c.expires_ms,
                })
                .collect(),
        );
        if let Ok(mut w) = self.compiled.write() {
            *w = Arc::new(list);
        }
    }

    /// Rebuilds the list from the ledger at start; returns the index to follow it from.
    fn restore(
        &self,
        recorder: &dyn Recorder,
        side: &Selector,
        metrics: &Metrics,
    ) -> std::io::Result<u64> {
        let mut listed = self
            .listed
            .lock()
            .map_err(|_| std::io::Error::other("concern list lock poisoned"))?;
        let next = replay_concerns(recorder, 0, &mut listed, side, metrics)?;
        self.publish(&listed);
        metrics
            .concerns_active
            .store(listed.len() as u64, Ordering::Relaxed);
        Ok(next)
    }

    fn snapshot(&self) -> Vec<ListedConcern> {
        self.listed
            .lock()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// What `GET /status` returns.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Every counter.
    #[serde(flatten)]
    pub counters: Snapshot,
    /// Files named in `[files] paths` not read yet.
    pub files_pending: u64,
    /// The concern list.
    pub concern_list: Vec<ListedConcern>,
}

/// A read-only view of a running sensor, for the HTTP endpoint and signals.
#[derive(Clone)]
pub struct SensorView {
    metrics: Arc<Metrics>,
    collector: Option<Stats>,
    concerns: Arc<Concerns>,
    files_pending: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for SensorView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensorView").finish_non_exhaustive()
    }
}

impl SensorView {
    /// Counters and the concern list now.
    pub fn status(&self) -> Status {
        Status {
            counters: self.metrics.snapshot(self.collector.as_ref()),
            files_pending: self.files_pending.load(Ordering::Relaxed) as u64,
            concern_list: self.concerns.snapshot(),
        }
    }
}

/// `GET /metrics` (Prometheus text, open: counters only, no flow address) and `GET
/// /status` (JSON, with the concern list: only with the operator's or the overseer's token,
/// `auth`) over `view`; merge other routers (the sensor's ledger) into it with
/// [`Router::merge`].
pub fn http_router(view: SensorView, auth: StatusAuth) -> Router {
    async fn metrics(State((v, _)): State<(SensorView, StatusAuth)>) -> impl IntoResponse {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            v.status().counters.prometheus(),
        )
    }
    async fn status(
        State((v, auth)): State<(SensorView, StatusAuth)>,
        headers: HeaderMap,
    ) -> Response {
        match auth.authorize(&headers) {
            Ok(()) => axum::Json(v.status()).into_response(),
            Err(refused) => refused.into_response(),
        }
    }
    Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state((view, auth))
}

/// Deletes expired archive files on time and records each deletion, then retires keys.
struct Reaper {
    archive_dir: PathBuf,
    data_dir: PathBuf,
    every: Duration,
    clock: Arc<dyn Clock>,
    recorder: Arc<dyn Recorder>,
    keys: Arc<dyn KeySource>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
}

impl Reaper {
    fn run(self) {
        periodically(
            &self.stop,
            self.every.max(Duration::from_secs(1)),
            true,
            || {
                self.pass();
            },
        );
    }

    fn pass(&self) {
        let now = self.clock.now();
        let m = &self.metrics;
        match crate::retention::reap_recorded(
            &self.archive_dir,
            &self.data_dir,
            now,
            &*self.recorder,
        ) {
            Ok(r) => {
                m.reaped_files
                    .fetch_add(r.deleted.len() as u64, Ordering::Relaxed);
                m.reaped_recorded
                    .fetch_add(r.recorded as u64, Ordering::Relaxed);
                m.reaped_pending.store(r.pending as u64, Ordering::Relaxed);
                m.reap_failures
                    .fetch_add(r.failed.len() as u64, Ordering::Relaxed);
                if let Some(e) = &r.ledger_error {
                    tracing::warn!(pending = r.pending, error = %e, "deletions done but not yet recorded; retried next pass");
                }
            }
            Err(e) => {
                m.reap_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "reaper pass failed");
            }
        }
        match self.keys.retire_unused(now, &self.archive_dir) {
            Ok(n) => {
                m.keys_retired.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "retiring pseudonym keys failed"),
        }
    }
}

/// A running sensor.
pub struct Sensor {
    view: SensorView,
    stop: Arc<AtomicBool>,
    collector: Option<Collector>,
    udp: Vec<SocketAddr>,
    sources: Vec<JoinHandle<()>>,
    stages: Vec<JoinHandle<()>>,
    files_pending: Arc<std::sync::atomic::AtomicUsize>,
    http: Option<(SocketAddr, tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>,
    /// Held until [`Sensor::stop`], so the stages keep running (windows close on idle,
    /// concerns expire) after every file input has been read.
    ingest: Option<SyncSender<FlowBatch>>,
}

impl std::fmt::Debug for Sensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sensor")
            .field("udp", &self.udp)
            .finish_non_exhaustive()
    }
}

const SERVICE: &str = "sensor:detection";

fn actor() -> Actor {
    Actor {
        org: None,
        user: None,
        name: SERVICE.to_owned(),
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, RuntimeError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(io_err(format!("starting thread {name}")))
}

/// Hands `item` on without waiting; a full (or closed) queue drops it and counts it.
fn hand_on<T>(tx: &SyncSender<T>, q: &QueueStats, item: T, records: u64) {
    match tx.try_send(item) {
        Ok(()) => q.enqueued(records),
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => q.dropped(records),
    }
}

impl Sensor {
    /// Starts every stage. `base` is the directory relative paths of the configuration
    /// are resolved from (the configuration file's directory).
    pub fn start(cfg: &SensorConfig, deps: Deps) -> Result<Sensor, RuntimeError> {
        Self::start_with_routes(cfg, deps, Router::new())
    }

    /// As [`Sensor::start`], serving `extra` (the sensor's ledger endpoints) beside
    /// `/metrics` and `/status`.
    pub fn start_with_routes(
        cfg: &SensorConfig,
        deps: Deps,
        extra: Router,
    ) -> Result<Sensor, RuntimeError> {
        let q = &cfg.queues;
        let metrics = Arc::new(Metrics::new(q.ingest, q.archive, q.detect, q.findings));
        if let Ok(mut s) = metrics.selection.lock() {
            s.dropped_by_rule = vec![0; cfg.selection.drop_rules.len()];
        }
        let concerns = Arc::new(Concerns::default());
        let stop = Arc::new(AtomicBool::new(false));
        // Checked before any thread starts.
        let now = deps.clock.now();
        let (key_id, key) = deps.keys.key_for(now);
        let selector = Selector::new(cfg.selection.clone(), &key)?;
        // The concern list as the ledger left it (CI-4, CI-5): deep
        // collection resumes after a restart instead of silently stopping.
        let ledger_next = concerns
            .restore(&*deps.recorder, &selector, &metrics)
            .map_err(io_err(
                "reading the sensor ledger to rebuild the concern list (check <data dir>/ledger)",
            ))?;
        let mut writer = ArchiveWriter::new(cfg.data_dir.join("archive"), cfg.retention)?;
        writer.set_pseudonym_key_id(Some(key_id.clone()));
        let centre = match &cfg.centre {
            None => None,
            Some(c) => Some(centre(c, deps.centre_token.clone())?),
        };
        let detect_cfg = detect_config(cfg)?;

        let (ingest_tx, ingest_rx) = sync_channel::<FlowBatch>(q.ingest);
        let (archive_tx, archive_rx) = sync_channel::<ToArchive>(q.archive);
        let (detect_tx, detect_rx) = sync_channel::<ToDetect>(q.detect);
        let mut stages = Vec::new();

        // Poster.
        let post_tx = match centre {
            Some((centre, c)) => {
                let (tx, rx) = sync_channel::<Vec<Finding>>(q.findings);
                let m = Arc::clone(&metrics);
                let s = Arc::clone(&stop);
                stages.push(spawn("sensor post", move || {
                    poster(rx, &centre, &c, &m, &s);
                })?);
                Some(tx)
            }
            None => None,
        };

        // The country table, refreshed when its files change.
        let geo_slot = Arc::new(Swap::new(Arc::clone(&deps.geo)));
        if cfg.geo.refresh > Duration::ZERO
            && (!cfg.geo.rir_delegated.is_empty() || !cfg.geo.cidr_lists.is_empty())
        {
            let reloader = GeoReloader {
                geo: cfg.geo.clone(),
                every: cfg.geo.refresh,
                slot: Arc::clone(&geo_slot),
                metrics: Arc::clone(&metrics),
                stop: Arc::clone(&stop),
            };
            stages.push(spawn("sensor geo", move || reloader.run())?);
        }

        // The country files' age: a warning when they are out of date.
        if !cfg.geo.max_age.is_zero() && !cfg.geo.files().is_empty() {
            let watch = GeoAge {
                geo: cfg.geo.clone(),
                clock: Arc::clone(&deps.clock),
                metrics: Arc::clone(&metrics),
            };
            let s = Arc::clone(&stop);
            stages.push(spawn("sensor geo age", move || {
                let mut was_stale = false;
                periodically(&s, GEO_AGE_EVERY, true, || {
                    was_stale = watch.check(was_stale);
                });
            })?);
        }

        // Detection.
        let detect_tx = if cfg.detection.enabled {
            let slot = Arc::new(IndicatorSlot::default());
            slot.store(Arc::clone(&detect_cfg.indicators));
            if !cfg.detection.indicators.is_empty() {
                let reloader = IndicatorReloader {
                    paths: cfg.detection.indicators.clone(),
                    every: cfg.detection.indicators_reload,
                    slot: Arc::clone(&slot),
                    metrics: Arc::clone(&metrics),
                    stop: Arc::clone(&stop),
                };
                stages.push(spawn("sensor indicators", move || reloader.run())?);
            }
            let stage = Detection {
                cfg: detect_cfg,
                indicators: slot,
                window_ms: millis(cfg.detection.window),
                lateness_ms: millis(cfg.detection.window).min(millis(MAX_LATENESS)),
                idle_close: cfg.detection.idle_close,
                min_score: cfg.detection.min_score,
                concern_expiry: chrono::Duration::from_std(cfg.detection.concern_expiry).map_err(
                    |_| RuntimeError::Config("detection.concern_expiry too long".into()),
                )?,
                side: Selector::new(cfg.selection.clone(), &key)?,
                unknown_is_foreign: cfg.selection.unknown_country == UnknownCountry::Foreign,
                geo: Arc::clone(&deps.geo),
                geo_slot: Arc::clone(&geo_slot),
                clock: Arc::clone(&deps.clock),
                recorder: Arc::clone(&deps.recorder),
                concerns: Arc::clone(&concerns),
                metrics: Arc::clone(&metrics),
                post: post_tx,
            };
            stages.push(spawn("sensor detect", move || stage.run(detect_rx))?);
            Some(detect_tx)
        } else {
            drop(detect_rx);
            None
        };

        let select_key_id = key_id.clone();
        // Archive.
        {
            let m = Arc::clone(&metrics);
            let flush = cfg.archive.flush;
            let max_rows = cfg.archive.max_buffered_rows.max(1);
            stages.push(spawn("sensor archive", move || {
                archiver(archive_rx, writer, key_id, flush, max_rows, &m);
            })?);
        }

        // Pseudonymise + select.
        {
            let stage = Select {
                selector,
                key_id: select_key_id,
                keys: Arc::clone(&deps.keys),
                policy: cfg.selection.clone(),
                geo: Arc::clone(&deps.geo),
                geo_slot: Arc::clone(&geo_slot),
                clock: Arc::clone(&deps.clock),
                concerns: Arc::clone(&concerns),
                metrics: Arc::clone(&metrics),
                archive: archive_tx,
                detect: detect_tx,
                aggregate_every: Duration::from_secs(u64::from(
                    cfg.selection.aggregate_bin_seconds,
                ))
                .min(cfg.archive.flush),
            };
            stages.push(spawn("sensor select", move || stage.run(ingest_rx))?);
        }

        // Sources.
        let collector = if cfg.collector.listen.is_empty() {
            None
        } else {
            Some(Collector::start(
                &cfg.collector,
                ingest_tx.clone(),
                Arc::clone(&deps.clock),
            )?)
        };
        let udp = collector
            .as_ref()
            .map(|c| c.local_addrs().to_vec())
            .unwrap_or_default();
        let files_pending = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut sources = Vec::new();
        if !cfg.files.paths.is_empty() || !cfg.files.watch.is_empty() {
            files_pending.store(cfg.files.paths.len(), Ordering::Relaxed);
            let files = FileSource {
                paths: cfg.files.paths.clone(),
                watch: cfg.files.watch.clone(),
                poll: cfg.files.poll,
                format: cfg.files.format,
                done_list: cfg.data_dir.join("inputs-read.txt"),
                tx: ingest_tx.clone(),
                metrics: Arc::clone(&metrics),
                stop: Arc::clone(&stop),
                pending: Arc::clone(&files_pending),
            };
            sources.push(spawn("sensor files", move || files.run())?);
        }
        // The concern list's upkeep: the ledger followed, expiries ended and recorded.
        {
            let keeper = ConcernKeeper {
                side: Selector::new(cfg.selection.clone(), &key)?,
                clock: Arc::clone(&deps.clock),
                recorder: Arc::clone(&deps.recorder),
                ledger_next,
                concerns: Arc::clone(&concerns),
                metrics: Arc::clone(&metrics),
                stop: Arc::clone(&stop),
            };
            sources.push(spawn("sensor concerns", move || keeper.run())?);
        }
        // The reaper: expired files deleted on time, each deletion recorded (CI-5,
        // invariant 4), then the keys no kept file needs retired.
        {
            let reaper = Reaper {
                archive_dir: cfg.data_dir.join("archive"),
                data_dir: cfg.data_dir.clone(),
                every: cfg.archive.reap_every,
                clock: Arc::clone(&deps.clock),
                recorder: Arc::clone(&deps.recorder),
                keys: Arc::clone(&deps.keys),
                metrics: Arc::clone(&metrics),
                stop: Arc::clone(&stop),
            };
            sources.push(spawn("sensor reaper", move || reaper.run())?);
        }
        let view = SensorView {
            metrics,
            collector: collector.as_ref().map(|c| c.stats().clone()),
            concerns,
            files_pending: Arc::clone(&files_pending),
        };
        let http = if cfg.http.enabled {
            Some(serve_http(
                cfg.http.listen,
                http_router(view.clone(), StatusAuth::from_data_dir(&cfg.data_dir)).merge(extra),
            )?)
        } else {
            None
        };
        tracing::info!(
            udp = ?udp,
            http = ?http.as_ref().map(|h| h.0),
            files = cfg.files.paths.len(),
            watched = cfg.files.watch.len(),
            "sensor running"
        );
        Ok(Sensor {
            view,
            stop,
            collector,
            udp,
            sources,
            stages,
            files_pending,
            http,
            ingest: Some(ingest_tx),
        })
    }

    /// The UDP addresses bound (port 0 resolved).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// The HTTP endpoint's address, if serving.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.0)
    }

    /// A view for status reports.
    pub fn view(&self) -> SensorView {
        self.view.clone()
    }

    /// Counters and the concern list now.
    pub fn status(&self) -> Status {
        self.view.status()
    }

    /// Whether every file named in `[files] paths` has been read (or failed).
    pub fn files_done(&self) -> bool {
        self.files_pending.load(Ordering::Relaxed) == 0
    }

    /// Stops the sources, drains the stages (closing the detection window and writing
    /// the archive's buffers) and returns the final counters.
    pub fn stop(mut self) -> Status {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(c) = self.collector.take() {
            c.stop();
        }
        for t in self.sources.drain(..) {
            t.join().ok();
        }
        drop(self.ingest.take());
        // Every ingest sender is gone: the select stage drains and ends, and so on down.
        for t in self.stages.drain(..) {
            t.join().ok();
        }
        let status = self.view.status();
        if let Some((_, tx, t)) = self.http.take() {
            let _ = tx.send(());
            t.join().ok();
        }
        tracing::info!(
            records = status.counters.selection.seen,
            files = status.counters.archive.files,
            "sensor stopped"
        );
        status
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

fn centre(c: &CentreConfig, token: Option<String>) -> Result<(Centre, CentreConfig), RuntimeError> {
    let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
        RuntimeError::Config(format!(
            "[centre] is configured but the token variable {} is not set",
            c.token_env
        ))
    })?;
    Ok((
        Centre {
            url: c.url.clone(),
            token,
            tlp: c.tlp,
        },
        c.clone(),
    ))
}

fn detect_config(cfg: &SensorConfig) -> Result<DetectConfig, RuntimeError> {
    let mut d = DetectConfig::default();
    d.scan.profile = ScanProfile::parse(&cfg.detection.profile).ok_or_else(|| {
        RuntimeError::Config(format!(
            "detection.profile {:?}: use slips or telescope",
            cfg.detection.profile
        ))
    })?;
    if !cfg.detection.indicators.is_empty() {
        d.indicators = Arc::new(load_indicators(&cfg.detection.indicators)?);
    }
    Ok(d)
}

/// Builds one indicator set from indicator lists (abuse.ch Feodo CSV or Spamhaus
/// DROP/EDROP, told apart by their header); each hit names its file as the feed. Used by
/// the sensor and by `mamori detect --indicators`.
pub fn load_indicators(paths: &[PathBuf]) -> Result<IndicatorSet, RuntimeError> {
    let mut b = IndicatorSetBuilder::new();
    for path in paths {
        let feed = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("indicators")
            .to_owned();
        let text = std::fs::read(path)
            .map_err(io_err(format!("reading indicators {}", path.display())))?;
        let head = String::from_utf8_lossy(text.get(..4096).unwrap_or(&text)).to_lowercase();
        let n = if head.contains("dst_ip") || head.contains("abuse.ch") {
            b.add_feodo_csv(&text[..], &feed)
        } else {
            b.add_drop_list(&text[..], &feed)
        }
        .map_err(|e| RuntimeError::Config(format!("indicators {}: {e}", path.display())))?;
        tracing::info!(feed, n, "indicators loaded");
    }
    Ok(b.build())
}

/// Reloads the indicator lists when a file changes (CI-11; issue 7: "reloaded atomically
/// without pausing ingest"): the new set is built here, off the ingest path, and stored in
/// the slot; the detection stage picks it up at its next batch. A list that fails to load
/// leaves the set in force and is counted.
struct IndicatorReloader {
    paths: Vec<PathBuf>,
    every: Duration,
    slot: Arc<IndicatorSlot>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
}

/// What tells a changed file from an unchanged one: modification time and length.
fn stamps(paths: &[PathBuf]) -> Vec<Option<(std::time::SystemTime, u64)>> {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

/// Calls `tick` every `every` until `stop` is set: the first time at once when `at_once`,
/// else after one period. The stop flag is checked ten times a second.
fn periodically(stop: &AtomicBool, every: Duration, at_once: bool, mut tick: impl FnMut()) {
    let mut next = Instant::now() + if at_once { Duration::ZERO } else { every };
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            tick();
            next = Instant::now() + every;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Calls `changed` whenever one of `paths` changes, checked every `every` until `stop`.
fn on_file_change(
    paths: &[PathBuf],
    every: Duration,
    stop: &AtomicBool,
    mut changed: impl FnMut(),
) {
    let mut seen = stamps(paths);
    periodically(stop, every, false, || {
        let now = stamps(paths);
        if now != seen {
            seen = now;
            changed();
        }
    });
}

/// A value the stages read per batch and a reloader replaces whole (the lock is held only
/// to clone or swap the `Arc`).
#[derive(Debug)]
struct Swap<T>(RwLock<Arc<T>>);

impl<T> Swap<T> {
    fn new(value: Arc<T>) -> Self {
        Self(RwLock::new(value))
    }

    fn load(&self) -> Arc<T> {
        match self.0.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn store(&self, value: Arc<T>) {
        match self.0.write() {
            Ok(mut g) => *g = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

/// Refreshes the country table when its RIR or CIDR files change (issue 6 part 3: "loadable
/// from the real RIR files and refreshable"), built off the ingest path and swapped in; the
/// stages use the new table from their next batch. A failed load keeps the table in force.
struct GeoReloader {
    geo: crate::config::GeoConfig,
    every: Duration,
    slot: Arc<Swap<GeoTable>>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
}

impl GeoReloader {
    fn run(self) {
        let paths: Vec<PathBuf> = self
            .geo
            .rir_delegated
            .iter()
            .cloned()
            .chain(self.geo.cidr_lists.iter().map(|l| l.path.clone()))
            .collect();
        on_file_change(&paths, self.every, &self.stop, || {
            match self.geo.load(Path::new("")) {
                Ok(table) => {
                    tracing::info!("country table refreshed");
                    self.slot.store(Arc::new(table));
                    self.metrics.geo_reloads.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "country table not refreshed; the table in force stays");
                    self.metrics
                        .geo_reload_errors
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// How often the country files' age is checked.
const GEO_AGE_EVERY: Duration = Duration::from_secs(60);

/// Warns when the country files are older than `[geo] max_age` (a carrier's engineer: the
/// selection by country is only as good as the files' date): in the log when they become
/// out of date, and in `geo_data_age_seconds` / `geo_data_stale` all along.
struct GeoAge {
    geo: crate::config::GeoConfig,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl GeoAge {
    /// Updates the gauges; returns whether the files are out of date now.
    fn check(&self, was_stale: bool) -> bool {
        let Some(age) = self.geo.oldest_age(self.clock.now()) else {
            return false;
        };
        let stale = age > self.geo.max_age;
        self.metrics
            .geo_age_seconds
            .store(age.as_secs(), Ordering::Relaxed);
        self.metrics
            .geo_stale
            .store(u64::from(stale), Ordering::Relaxed);
        if stale && !was_stale {
            tracing::warn!(
                age_days = age.as_secs() / 86_400,
                max_age_days = self.geo.max_age.as_secs() / 86_400,
                "the country files are out of date: fetch the RIRs' current delegation files (they publish daily)"
            );
        }
        stale
    }
}

impl IndicatorReloader {
    fn run(self) {
        on_file_change(
            &self.paths,
            self.every,
            &self.stop,
            || match load_indicators(&self.paths) {
                Ok(set) => {
                    tracing::info!(entries = set.len(), "indicator lists reloaded");
                    self.slot.store(Arc::new(set));
                    self.metrics
                        .indicator_reloads
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "indicator lists not reloaded; the set in force stays");
                    self.metrics
                        .indicator_reload_errors
                        .fetch_add(1, Ordering::Relaxed);
                }
            },
        );
    }
}

fn serve_http(
    addr: SocketAddr,
    router: Router,
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>, JoinHandle<()>), RuntimeError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(io_err(format!("listening on {addr}")))?;
    let local = listener
        .local_addr()
        .map_err(io_err(format!("listening on {addr}")))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err(format!("listening on {addr}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("starting the HTTP runtime"))?;
    let t = spawn("sensor http", move || {
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "HTTP endpoint failed");
                    return;
                }
            };
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP endpoint failed");
            }
        });
    })?;
    Ok((local, tx, t))
}

// ---------------------------------------------------------------------------------------
// Sources: files and watched directories.

struct FileSource {
    paths: Vec<PathBuf>,
    watch: Vec<PathBuf>,
    poll: Duration,
    format: crate::files::FileFormat,
    done_list: PathBuf,
    tx: SyncSender<FlowBatch>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    pending: Arc<std::sync::atomic::AtomicUsize>,
}

/// Why a file reader stopped early.
#[derive(Debug, thiserror::Error)]
enum Halt {
    #[error("sensor stopping")]
    Stopping,
}

struct Feed<'a> {
    tx: &'a SyncSender<FlowBatch>,
    metrics: &'a Metrics,
    stop: &'a AtomicBool,
    /// Records and malformed lines (frames, datagrams) of this file so far.
    records: u64,
    malformed: u64,
}

impl BatchSink for Feed<'_> {
    type Error = Halt;
    fn batch(&mut self, batch: &FlowBatch) -> Result<(), Halt> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(Halt::Stopping);
        }
        // Every anomaly but an unknown template (a v9/IPFIX export read before its
        // template, not a bad line) is something in the file that could not be read.
        let malformed = batch.anomalies.total()
            - batch
                .anomalies
                .get(mamori_flow::AnomalyKind::UnknownTemplate);
        self.malformed += malformed;
        self.metrics
            .file_malformed
            .fetch_add(malformed, Ordering::Relaxed);
        if batch.records.is_empty() {
            return Ok(());
        }
        let n = batch.records.len() as u64;
        // Files wait for room (nothing is lost); a stop interrupts the wait.
        let mut item = batch.clone();
        loop {
            match self.tx.try_send(item) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return Err(Halt::Stopping);
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(TrySendError::Disconnected(_)) => return Err(Halt::Stopping),
            }
        }
        self.metrics.ingest.enqueued(n);
        self.metrics.file_records.fetch_add(n, Ordering::Relaxed);
        self.records += n;
        Ok(())
    }
}

impl FileSource {
    fn read(&self, path: &Path) -> bool {
        let mut feed = Feed {
            tx: &self.tx,
            metrics: &self.metrics,
            stop: &self.stop,
            records: 0,
            malformed: 0,
        };
        match read_file(path, self.format, &mut feed) {
            // Nothing but malformed lines: not this format (STYLE 4) — a failed file, not a
            // file read.
            Ok(()) if feed.records == 0 && feed.malformed > 0 => {
                self.metrics.file_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    file = %path.display(),
                    malformed = feed.malformed,
                    format = ?self.format,
                    "file input failed: no record, only malformed lines (is [files] format right for it?)"
                );
                true
            }
            Ok(()) => {
                self.metrics.files_read.fetch_add(1, Ordering::Relaxed);
                if feed.malformed > 0 {
                    tracing::warn!(
                        file = %path.display(),
                        records = feed.records,
                        malformed = feed.malformed,
                        "file read with malformed lines (counted and skipped)"
                    );
                } else {
                    tracing::info!(file = %path.display(), records = feed.records, "file read");
                }
                true
            }
            Err(crate::files::ReadError::Sink(Halt::Stopping)) => false,
            Err(e) => {
                self.metrics.file_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "file input failed");
                true
            }
        }
    }

    fn run(self) {
        for p in &self.paths {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            self.read(p);
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
        self.pending.store(0, Ordering::Relaxed);
        if self.watch.is_empty() {
            return;
        }
        // Files already read by an earlier run are not read again.
        let mut done: BTreeSet<PathBuf> = std::fs::read_to_string(&self.done_list)
            .unwrap_or_default()
            .lines()
            .map(PathBuf::from)
            .collect();
        let mut sizes: BTreeMap<PathBuf, u64> = BTreeMap::new();
        while !self.stop.load(Ordering::Relaxed) {
            for dir in &self.watch {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<(PathBuf, u64)> = entries
                    .flatten()
                    .filter_map(|e| {
                        let m = e.metadata().ok()?;
                        m.is_file().then(|| (e.path(), m.len()))
                    })
                    .collect();
                names.sort();
                for (path, size) in names {
                    if done.contains(&path) || self.stop.load(Ordering::Relaxed) {
                        continue;
                    }
                    // Read only once the size held still over one poll.
                    if sizes.insert(path.clone(), size) != Some(size) {
                        continue;
                    }
                    if self.read(&path) {
                        sizes.remove(&path);
                        remember(&self.done_list, &path);
                        done.insert(path);
                    }
                }
            }
            let until = Instant::now() + self.poll;
            while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50).min(self.poll));
            }
        }
    }
}

fn remember(list: &Path, path: &Path) {
    use std::io::Write as _;
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list)
        .and_then(|mut f| writeln!(f, "{}", path.display()));
    if let Err(e) = appended {
        tracing::warn!(error = %e, list = %list.display(), "cannot note a file as read");
    }
}

// ---------------------------------------------------------------------------------------
// Pseudonymise + select.

enum ToArchive {
    Flows(String, Vec<FlowRecord>),
    Aggregates(String, Vec<ServerAggregate>),
}

struct Select {
    selector: Selector,
    key_id: String,
    keys: Arc<dyn KeySource>,
    policy: mamori_flow::SelectionPolicy,
    geo: Arc<GeoTable>,
    geo_slot: Arc<Swap<GeoTable>>,
    clock: Arc<dyn Clock>,
    concerns: Arc<Concerns>,
    metrics: Arc<Metrics>,
    archive: SyncSender<ToArchive>,
    detect: Option<SyncSender<ToDetect>>,
    aggregate_every: Duration,
}

/// What the select stage hands the detection stage: the kept records, which of their ends
/// are pseudonyms, and the id of the key they were made with.
struct ToDetect {
    key_id: String,
    observed: Observed,
}

/// How far past the sensor's clock a record may be dated. No flow ends in the future, so a
/// later time is an exporter's wrong clock or a forged header: such a record is kept with
/// its arrival time instead and counted (`retimed_records`), so that one exporter's clock
/// can move neither the detection windows nor the archive's hours (CI-11: detection keeps
/// running; CI-5: every archive hour keeps a real expiry). Past times are allowed: files
/// replay history, and late records are the detection's lateness rule's to judge
/// ([`MAX_LATENESS`]).
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(5 * 60);

/// How long a detection window stays open after its end for late records (at most one
/// window length): a record whose window closed longer ago than this is counted as late
/// and kept out of detection, so findings always carry the window their records are in.
pub const MAX_LATENESS: Duration = Duration::from_secs(10 * 60);

/// Re-times the records of `batch` dated more than [`MAX_FUTURE_SKEW`] after `now_ms`, or
/// before 1970 (no input dates flows there; a fuzzed or truncated time field does), to
/// `now_ms` (their arrival), keeping a plausible duration; returns how many.
fn bound_times(batch: &mut FlowBatch, now_ms: i64) -> u64 {
    let latest = now_ms.saturating_add(millis(MAX_FUTURE_SKEW));
    let mut retimed = 0;
    for r in &mut batch.records {
        let out = |t: i64| t < 0 || t > latest;
        if !out(r.start_ms) && !out(r.end_ms) {
            continue;
        }
        let duration = r.end_ms.saturating_sub(r.start_ms);
        let duration = if r.start_ms != 0 && (0..=millis(MAX_LATENESS)).contains(&duration) {
            duration
        } else {
            0
        };
        r.end_ms = now_ms;
        r.start_ms = now_ms - duration;
        retimed += 1;
    }
    retimed
}

impl Select {
    fn run(mut self, rx: Receiver<FlowBatch>) {
        let mut last_key_check = Instant::now();
        let mut last_flush = Instant::now();
        let mut observed = Observed::default();
        loop {
            let msg = rx.recv_timeout(Duration::from_millis(200));
            let now = self.clock.now();
            if last_key_check.elapsed() >= Duration::from_secs(1) {
                last_key_check = Instant::now();
                self.check_key(now);
                self.geo = self.geo_slot.load();
            }
            match msg {
                Ok(mut batch) => {
                    let n = batch.records.len() as u64;
                    self.metrics.ingest.dequeued(n);
                    let retimed = bound_times(&mut batch, now.timestamp_millis());
                    if retimed > 0 {
                        self.metrics
                            .retimed_records
                            .fetch_add(retimed, Ordering::Relaxed);
                        tracing::warn!(
                            records = retimed,
                            "records dated in the future (or before 1970) kept with their arrival time"
                        );
                    }
                    let concerns = self.concerns.current();
                    observed.clear();
                    let sink = self.detect.is_some().then_some(&mut observed);
                    let counts = self.selector.process_observed(
                        &mut batch,
                        &self.geo,
                        &concerns,
                        now.timestamp_millis(),
                        sink,
                    );
                    if let Ok(mut s) = self.metrics.selection.lock() {
                        s.merge(&counts);
                    }
                    if !batch.records.is_empty() {
                        let mut kept = std::mem::take(&mut batch.records);
                        self.pseudonymise_exporters(&mut kept);
                        let k = kept.len() as u64;
                        hand_on(
                            &self.archive,
                            &self.metrics.archive_queue,
                            ToArchive::Flows(self.key_id.clone(), kept),
                            k,
                        );
                    }
                    if let Some(tx) = &self.detect
                        && !observed.is_empty()
                    {
                        let cap = observed.len();
                        let feed = std::mem::replace(
                            &mut observed,
                            Observed {
                                records: Vec::with_capacity(cap),
                                pseudonymised: Vec::with_capacity(cap),
                            },
                        );
                        let k = feed.len() as u64;
                        let item = ToDetect {
                            key_id: self.key_id.clone(),
                            observed: feed,
                        };
                        hand_on(tx, &self.metrics.detect_queue, item, k);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush_aggregates();
                    return;
                }
            }
            if last_flush.elapsed() >= self.aggregate_every
                || self.selector.aggregate_count() >= self.policy.max_aggregates / 2
            {
                last_flush = Instant::now();
                self.flush_aggregates();
            }
        }
    }

    /// The archive's `exporter` column: an exporter inside the subscriber prefixes — which
    /// `[selection] subscriber_prefixes` promises are always pseudonymised — is written as
    /// its pseudonym under the file's key, like every other address there; exporters
    /// outside them (the carrier's routers) stay in clear (CI-4, DESIGN invariant 2).
    fn pseudonymise_exporters(&self, kept: &mut [FlowRecord]) {
        let mut last: Option<(IpAddr, IpAddr)> = None;
        for r in kept {
            if let Some((clear, pseudonym)) = last
                && clear == r.exporter
            {
                r.exporter = pseudonym;
                continue;
            }
            if self.selector.is_subscriber(r.exporter) {
                let clear = r.exporter;
                r.exporter = self.selector.pseudonymiser().crypto_pan().anonymise(clear);
                last = Some((clear, r.exporter));
            }
        }
    }

    fn check_key(&mut self, now: Timestamp) {
        let (id, key) = self.keys.key_for(now);
        if id == self.key_id {
            return;
        }
        match Selector::new(self.policy.clone(), &key) {
            Ok(s) => {
                // Aggregates counted distinct clients under the old key: out they go first.
                self.flush_aggregates();
                self.selector = s;
                tracing::info!(key_id = %id, "pseudonym key changed");
                self.key_id = id;
                self.metrics.key_rotations.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "cannot use the new pseudonym key"),
        }
    }

    fn flush_aggregates(&mut self) {
        if self.selector.aggregate_count() == 0 {
            return;
        }
        let aggs = self.selector.take_aggregates();
        let n = aggs.len() as u64;
        self.metrics.aggregates.fetch_add(n, Ordering::Relaxed);
        // Aggregates are few and precious (broad first): wait for room rather than drop.
        match self
            .archive
            .send(ToArchive::Aggregates(self.key_id.clone(), aggs))
        {
            Ok(()) => self.metrics.archive_queue.enqueued(n),
            Err(_) => self.metrics.archive_queue.dropped(n),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Archive.

fn archiver(
    rx: Receiver<ToArchive>,
    mut writer: ArchiveWriter,
    mut key_id: String,
    flush: Duration,
    max_rows: usize,
    m: &Metrics,
) {
    let mut flows: Vec<FlowRecord> = Vec::new();
    let mut aggs: Vec<ServerAggregate> = Vec::new();
    let mut last = Instant::now();
    let write = |writer: &mut ArchiveWriter,
                 flows: &mut Vec<FlowRecord>,
                 aggs: &mut Vec<ServerAggregate>| {
        // Hour by hour: a row whose hour cannot be written loses that hour only, never
        // the rest of the buffer (CI-5).
        for (kind, written) in [
            ("flows", writer.write_flows_each(flows)),
            ("aggregates", writer.write_aggregates_each(aggs)),
        ] {
            for f in &written.files {
                let bytes = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
                m.archive_files.fetch_add(1, Ordering::Relaxed);
                m.archive_bytes.fetch_add(bytes, Ordering::Relaxed);
                let counter = if kind == "flows" {
                    &m.archive_flow_rows
                } else {
                    &m.archive_aggregate_rows
                };
                counter.fetch_add(f.records, Ordering::Relaxed);
            }
            for failed in &written.failed {
                m.archive_errors.fetch_add(1, Ordering::Relaxed);
                m.archive_lost_rows
                    .fetch_add(failed.rows, Ordering::Relaxed);
                tracing::error!(error = %failed.error, kind, rows = failed.rows, "archive write failed");
            }
        }
        flows.clear();
        aggs.clear();
    };
    loop {
        let msg = rx.recv_timeout(Duration::from_millis(500));
        match msg {
            Ok(msg) => {
                let (id, rows) = match &msg {
                    ToArchive::Flows(id, r) => (id, r.len()),
                    ToArchive::Aggregates(id, a) => (id, a.len()),
                };
                m.archive_queue.dequeued(rows as u64);
                if *id != key_id {
                    // One key per file: what was buffered under the old key goes first.
                    write(&mut writer, &mut flows, &mut aggs);
                    key_id = id.clone();
                    writer.set_pseudonym_key_id(Some(key_id.clone()));
                }
                match msg {
                    ToArchive::Flows(_, r) => flows.extend(r),
                    ToArchive::Aggregates(_, a) => aggs.extend(a),
                }
                if flows.len() + aggs.len() >= max_rows {
                    write(&mut writer, &mut flows, &mut aggs);
                    last = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                write(&mut writer, &mut flows, &mut aggs);
                return;
            }
        }
        if last.elapsed() >= flush {
            write(&mut writer, &mut flows, &mut aggs);
            last = Instant::now();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Detection on time windows, the concern list, and posting.

struct Detection {
    cfg: DetectConfig,
    /// Where reloaded indicator sets arrive.
    indicators: Arc<IndicatorSlot>,
    window_ms: i64,
    /// How long after its end a window takes late records: [`MAX_LATENESS`], at most one
    /// window length.
    lateness_ms: i64,
    idle_close: Duration,
    min_score: f64,
    concern_expiry: chrono::Duration,
    side: Selector,
    unknown_is_foreign: bool,
    geo: Arc<GeoTable>,
    geo_slot: Arc<Swap<GeoTable>>,
    clock: Arc<dyn Clock>,
    recorder: Arc<dyn Recorder>,
    concerns: Arc<Concerns>,
    metrics: Arc<Metrics>,
    post: Option<SyncSender<Vec<Finding>>>,
}

fn record_time(r: &FlowRecord) -> i64 {
    if r.start_ms != 0 {
        r.start_ms
    } else {
        r.end_ms
    }
}

/// Most pseudonyms one window remembers. Beyond it, a finding whose address is not among
/// them could be an unremembered pseudonym: it is withheld and counted, never listed.
const MAX_PSEUDONYMS_PER_WINDOW: usize = 1 << 21;

/// One open detection window: its detectors, and every address its records carried as a
/// pseudonym, decided by the select stage before pseudonymisation. A finding's address is
/// judged against these, never against country data: a pseudonym may fall into any
/// country's prefix (CI-4, DESIGN invariant 2).
struct Window {
    detectors: Detectors,
    pseudonyms: Pseudonyms,
}

/// The pseudonyms of one window, each with the key it was made with.
struct Pseudonyms {
    seen: FxHashMap<IpAddr, u32>,
    keys: Vec<String>,
    /// Most pseudonyms remembered ([`MAX_PSEUDONYMS_PER_WINDOW`]).
    cap: usize,
    overflow: bool,
}

impl Default for Pseudonyms {
    fn default() -> Self {
        Self {
            seen: FxHashMap::default(),
            keys: Vec::new(),
            cap: MAX_PSEUDONYMS_PER_WINDOW,
            overflow: false,
        }
    }
}

impl Pseudonyms {
    fn key_index(&mut self, key_id: &str) -> u32 {
        match self.keys.iter().position(|k| k == key_id) {
            Some(i) => i as u32,
            None => {
                self.keys.push(key_id.to_owned());
                (self.keys.len() - 1) as u32
            }
        }
    }

    fn insert(&mut self, addr: IpAddr, key: u32) {
        if self.seen.len() < self.cap {
            self.seen.entry(addr).or_insert(key);
        } else if !self.seen.contains_key(&addr) {
            self.overflow = true;
        }
    }

    fn subject(&self, addr: IpAddr) -> Subject<'_> {
        match self.seen.get(&addr) {
            Some(&k) => Subject::Pseudonym(
                self.keys
                    .get(k as usize)
                    .map(String::as_str)
                    .unwrap_or_default(),
            ),
            None if self.overflow => Subject::Unknown,
            None => Subject::Server,
        }
    }
}

impl Window {
    fn new(cfg: &DetectConfig) -> Self {
        Self {
            detectors: Detectors::new(cfg),
            pseudonyms: Pseudonyms::default(),
        }
    }

    fn observe(&mut self, r: &FlowRecord, p: Pseudonymised, key: u32) {
        self.detectors.observe(r);
        if p.src {
            self.pseudonyms.insert(r.src_addr, key);
        }
        if p.dst {
            self.pseudonyms.insert(r.dst_addr, key);
        }
    }
}

/// What a finding's address turned out to be.
enum Subject<'a> {
    /// A foreign server (or scanner, or source) in clear.
    Server,
    /// A subscriber's pseudonym, made with this key.
    Pseudonym(&'a str),
    /// Cannot be told: the window forgot some pseudonyms.
    Unknown,
}

impl Detection {
    fn run(mut self, rx: Receiver<ToDetect>) {
        let mut windows: BTreeMap<i64, Window> = BTreeMap::new();
        // The latest record time seen: it closes windows. Bounded by the sensor's clock
        // (the select stage re-times records from the future), so no exporter's clock
        // can hold windows open or close them early by more than the allowed skew.
        let mut watermark = i64::MIN;
        let mut last_record = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(ToDetect { key_id, observed }) => {
                    // A reloaded indicator set takes effect from this batch on, in the
                    // open windows too.
                    self.geo = self.geo_slot.load();
                    let current = self.indicators.load();
                    if !Arc::ptr_eq(&current, &self.cfg.indicators) {
                        for w in windows.values_mut() {
                            w.detectors.replace_indicators(Arc::clone(&current));
                        }
                        self.cfg.indicators = current;
                    }
                    let n = observed.len() as u64;
                    self.metrics.detect_queue.dequeued(n);
                    self.metrics.detect_records.fetch_add(n, Ordering::Relaxed);
                    last_record = Instant::now();
                    let mut late = 0u64;
                    for (r, p) in observed.iter() {
                        let t = record_time(r);
                        watermark = watermark.max(t);
                        let w = t.div_euclid(self.window_ms);
                        if self.closes_at(w) <= watermark {
                            // Its window is past its lateness (closed, or closing at the
                            // end of this batch): kept out of detection, so no finding
                            // carries a window its records are not in.
                            late += 1;
                            continue;
                        }
                        let window = windows.entry(w).or_insert_with(|| Window::new(&self.cfg));
                        let key = window.pseudonyms.key_index(&key_id);
                        window.observe(r, p, key);
                    }
                    if late > 0 {
                        self.metrics
                            .detect_late_records
                            .fetch_add(late, Ordering::Relaxed);
                    }
                    while let Some(entry) = windows.first_entry() {
                        if self.closes_at(*entry.key()) > watermark {
                            break;
                        }
                        let (start, window) = entry.remove_entry();
                        self.close(start, window);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if last_record.elapsed() >= self.idle_close {
                        while let Some((start, window)) = windows.pop_first() {
                            self.close(start, window);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    while let Some((start, window)) = windows.pop_first() {
                        self.close(start, window);
                    }
                    return;
                }
            }
        }
    }

    /// When window `w` closes: once a record at or past its end plus the lateness is seen.
    fn closes_at(&self, w: i64) -> i64 {
        w.saturating_add(1)
            .saturating_mul(self.window_ms)
            .saturating_add(self.lateness_ms)
    }

    fn is_foreign(&self, addr: IpAddr) -> bool {
        match self.side.side(addr, &self.geo) {
            Side::Foreign => true,
            Side::Unknown => self.unknown_is_foreign,
            Side::Subscriber | Side::Domestic => false,
        }
    }

    fn close(&self, window: i64, w: Window) {
        let Window {
            detectors,
            pseudonyms,
        } = w;
        let records = detectors.records();
        let findings = detectors.finish();
        self.metrics.detect_windows.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .findings
            .fetch_add(findings.len() as u64, Ordering::Relaxed);
        let start = from_millis(window.saturating_mul(self.window_ms))
            .map(mamori_core::time::rfc3339)
            .unwrap_or_default();
        let mut reported = Vec::new();
        for f in findings {
            if f.score < self.min_score {
                continue;
            }
            match pseudonyms.subject(f.address) {
                Subject::Pseudonym(key_id) => {
                    // A subscriber behaving as attacker infrastructure: reported as an
                    // infected client under its pseudonym, never listed (a pseudonym is
                    // nobody's server, and listing it would follow whoever really holds
                    // that address).
                    self.metrics
                        .findings_infected_client
                        .fetch_add(1, Ordering::Relaxed);
                    reported.push(f.into_infected_client(key_id));
                }
                Subject::Unknown => {
                    self.metrics
                        .findings_withheld
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        kind = f.kind.as_str(),
                        "finding withheld: the window saw too many pseudonyms to tell this address from one"
                    );
                }
                Subject::Server => {
                    // Clear addresses here are foreign ends (non-foreign ones were
                    // pseudonymised); the country check stays as a second guard.
                    if self.is_foreign(f.address) {
                        let reason = format!(
                            "{} {}:{}/{} score {:.3} (window {start})",
                            f.kind.as_str(),
                            f.address,
                            f.port,
                            f.proto,
                            f.score
                        );
                        self.list(f.address, reason);
                    }
                    reported.push(f);
                }
            }
        }
        self.metrics
            .findings_reported
            .fetch_add(reported.len() as u64, Ordering::Relaxed);
        tracing::info!(window = %start, records, findings = reported.len(), "detection window closed");
        for f in &reported {
            // Addresses here are foreign servers in clear, or pseudonyms: never a
            // subscriber in clear (the select stage pseudonymised before detection).
            tracing::info!(
                kind = f.kind.as_str(),
                address = %f.address,
                port = f.port,
                proto = f.proto,
                score = f.score,
                "finding"
            );
        }
        if let Some(tx) = &self.post
            && !reported.is_empty()
        {
            let n = reported.len() as u64;
            hand_on(tx, &self.metrics.post_queue, reported, n);
        }
    }

    /// Puts `server` on the concern list, recording the act first; a server already
    /// listed is renewed (recorded as a renewal) only when its expiry would move by more
    /// than a minute, never listed a second time.
    fn list(&self, server: IpAddr, reason: String) {
        let now = self.clock.now();
        // Milliseconds, as the ledger keeps it: the list rebuilt from the ledger is equal.
        let Some(expires_at) = now
            .checked_add_signed(self.concern_expiry)
            .map(mamori_core::time::truncate_ms)
        else {
            return;
        };
        let Ok(mut listed) = self.concerns.listed.lock() else {
            return;
        };
        let renewal = match listed.get(&server) {
            Some(c) if c.expires_ms >= expires_at.timestamp_millis() - 60_000 => return,
            Some(_) => true,
            None => false,
        };
        let entry = Entry::new(
            now,
            actor(),
            Act::ConcernListed {
                server: server.to_string(),
                reason: reason.clone(),
                expires_at,
                renewal,
            },
        );
        if let Err(e) = self.recorder.record(&[entry]) {
            self.metrics
                .concern_record_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, %server, "concern not listed: recording failed");
            return;
        }
        listed.insert(server, ListedConcern::new(server, reason, expires_at));
        self.concerns.publish(&listed);
        if !renewal {
            self.metrics.concerns_listed.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics
            .concerns_active
            .store(listed.len() as u64, Ordering::Relaxed);
        tracing::info!(%server, renewal, expires_at = %mamori_core::time::rfc3339(expires_at), "concern listed");
    }
}

/// Keeps the concern list in step with the ledger and the clock, with or without the
/// detection stage: applies the concern entries others append (a manual concern) and ends
/// expired listings, recording each end first.
struct ConcernKeeper {
    side: Selector,
    clock: Arc<dyn Clock>,
    recorder: Arc<dyn Recorder>,
    /// The ledger index up to which concern entries have been applied.
    ledger_next: u64,
    concerns: Arc<Concerns>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
}

impl ConcernKeeper {
    fn run(mut self) {
        let stop = Arc::clone(&self.stop);
        periodically(&stop, Duration::from_secs(1), false, || {
            self.follow_ledger();
            self.expire();
        });
    }

    /// Applies the concern entries appended to the ledger since the last look: a manual
    /// concern added or removed with `mamori sensor concern` takes effect here, after it
    /// was recorded. Our own entries come back too and change nothing.
    fn follow_ledger(&mut self) {
        let Ok(mut listed) = self.concerns.listed.lock() else {
            return;
        };
        match replay_concerns(
            &*self.recorder,
            self.ledger_next,
            &mut listed,
            &self.side,
            &self.metrics,
        ) {
            Ok(next) if next != self.ledger_next => {
                self.ledger_next = next;
                self.concerns.publish(&listed);
                self.metrics
                    .concerns_active
                    .store(listed.len() as u64, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the sensor ledger for concern changes failed; retrying")
            }
        }
    }

    /// Ends expired concerns, recording each first.
    fn expire(&self) {
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let Ok(mut listed) = self.concerns.listed.lock() else {
            return;
        };
        let expired: Vec<IpAddr> = listed
            .values()
            .filter(|c| c.expires_ms <= now_ms)
            .map(|c| c.server)
            .collect();
        if expired.is_empty() {
            return;
        }
        for server in expired {
            let entry = Entry::new(
                now,
                actor(),
                Act::ConcernEnded {
                    server: server.to_string(),
                    reason: "expired".to_owned(),
                },
            );
            if let Err(e) = self.recorder.record(&[entry]) {
                // Kept listed (it no longer matches: the select stage checks expiry) and
                // retried next second, so the end is recorded before it is removed.
                self.metrics
                    .concern_record_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, %server, "concern end not recorded; retrying");
                continue;
            }
            listed.remove(&server);
            self.metrics.concerns_ended.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%server, "concern ended (expired)");
        }
        self.concerns.publish(&listed);
        self.metrics
            .concerns_active
            .store(listed.len() as u64, Ordering::Relaxed);
    }
}

fn poster(
    rx: Receiver<Vec<Finding>>,
    centre: &Centre,
    cfg: &CentreConfig,
    m: &Metrics,
    stop: &AtomicBool,
) {
    for findings in rx {
        let n = findings.len() as u64;
        m.post_queue.dequeued(n);
        let mut backoff = Duration::from_secs(1);
        let mut attempt = 1;
        loop {
            match post(centre, &findings, cfg.timeout) {
                Ok(sent) => {
                    m.findings_posted.fetch_add(sent, Ordering::Relaxed);
                    tracing::info!(findings = sent, tlp = %centre.tlp, "findings posted to the centre");
                    break;
                }
                Err(e) => {
                    m.post_attempt_errors.fetch_add(1, Ordering::Relaxed);
                    // Stopping: one more try at most, no long waits.
                    let give_up = !e.retryable()
                        || attempt >= cfg.max_attempts
                        || (stop.load(Ordering::Relaxed) && attempt >= 2);
                    if give_up {
                        m.findings_post_failed.fetch_add(n, Ordering::Relaxed);
                        tracing::warn!(error = %e, findings = n, attempt, "findings not posted");
                        break;
                    }
                    tracing::warn!(error = %e, attempt, retry_in = ?backoff, "posting findings failed; retrying");
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_whole_batch_and_counts_it_without_waiting() {
        let (tx, rx) = sync_channel::<Vec<u32>>(1);
        let q = QueueStats::new("detect", 1);
        hand_on(&tx, &q, vec![1, 2, 3], 3);
        let t = Instant::now();
        hand_on(&tx, &q, vec![4, 5], 2);
        assert!(t.elapsed() < Duration::from_millis(100));
        assert_eq!(q.enqueued_records.load(Ordering::Relaxed), 3);
        assert_eq!(q.dropped_batches.load(Ordering::Relaxed), 1);
        assert_eq!(q.dropped_records.load(Ordering::Relaxed), 2);
        assert_eq!(rx.recv().unwrap(), vec![1, 2, 3]);
    }

    fn finding() -> Finding {
        Finding {
            kind: mamori_core::finding::FindingKind::Beacon,
            address: "192.0.2.1".parse().unwrap(),
            port: 443,
            proto: 6,
            score: 0.9,
            first_seen: 0,
            last_seen: 1,
            clients: mamori_core::finding::Clients::default(),
            evidence: mamori_core::finding::Evidence::Beacon(Default::default()),
            feed: None,
        }
    }

    #[test]
    fn a_window_that_forgot_pseudonyms_tells_no_address_for_a_server() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut p = Pseudonyms {
            cap: 1,
            ..Pseudonyms::default()
        };
        let k = p.key_index("2026-12-01");
        p.insert(ip("147.26.123.12"), k);
        assert!(matches!(
            p.subject(ip("147.26.123.12")),
            Subject::Pseudonym("2026-12-01")
        ));
        assert!(matches!(p.subject(ip("192.0.2.1")), Subject::Server));
        // One pseudonym too many: from now on an unknown address may be a forgotten
        // pseudonym, so it is neither a server nor listed (the finding is withheld).
        p.insert(ip("147.26.123.13"), k);
        assert!(matches!(p.subject(ip("192.0.2.1")), Subject::Unknown));
        assert!(matches!(
            p.subject(ip("147.26.123.12")),
            Subject::Pseudonym(_)
        ));
    }

    #[test]
    fn records_from_the_future_or_before_1970_are_retimed_to_their_arrival() {
        let now = 1_765_000_000_000;
        let rec = |start_ms: i64, end_ms: i64| FlowRecord {
            start_ms,
            end_ms,
            ..FlowRecord::default()
        };
        let mut batch = FlowBatch {
            records: vec![
                rec(now - 60_000, now - 1_000),            // fine
                rec(now - 3_600_000, now - 3_000_000), // an hour old: fine (late is detection's)
                rec(now + 60_000, now + 120_000),      // within the skew: fine
                rec(4_012_000_000_000, 4_012_000_030_000), // 2097: re-timed, duration kept
                rec(-5, 10),                           // before 1970: re-timed, 15 ms kept
            ],
            ..FlowBatch::default()
        };
        let before = batch.records.clone();
        assert_eq!(bound_times(&mut batch, now), 2);
        assert_eq!(batch.records[..3], before[..3]);
        assert_eq!(
            (batch.records[3].start_ms, batch.records[3].end_ms),
            (now - 30_000, now)
        );
        assert_eq!(
            (batch.records[4].start_ms, batch.records[4].end_ms),
            (now - 15, now)
        );
    }

    #[test]
    fn an_unreachable_centre_is_retried_then_counted_as_failed() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = CentreConfig {
            url: format!("http://127.0.0.1:{port}"),
            token_env: "X".into(),
            tlp: mamori_core::Tlp::Amber,
            max_attempts: 2,
            timeout: Duration::from_secs(2),
        };
        let centre = Centre {
            url: cfg.url.clone(),
            token: "t".into(),
            tlp: cfg.tlp,
        };
        let m = Metrics::new(1, 1, 1, 1);
        let (tx, rx) = sync_channel(1);
        tx.send(vec![finding(), finding()]).unwrap();
        drop(tx);
        poster(rx, &centre, &cfg, &m, &AtomicBool::new(false));
        assert_eq!(m.post_attempt_errors.load(Ordering::Relaxed), 2);
        assert_eq!(m.findings_post_failed.load(Ordering::Relaxed), 2);
        assert_eq!(m.findings_posted.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_centre_without_its_token_is_refused_at_start() {
        let c = CentreConfig {
            url: "http://127.0.0.1:1".into(),
            token_env: "MAMORI_SENSOR_TOKEN".into(),
            tlp: mamori_core::Tlp::Amber,
            max_attempts: 1,
            timeout: Duration::from_secs(1),
        };
        let e = centre(&c, None).unwrap_err();
        assert!(e.to_string().contains("MAMORI_SENSOR_TOKEN"), "{e}");
        assert!(centre(&c, Some("t".into())).is_ok());
    }
}
