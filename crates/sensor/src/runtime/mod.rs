//! `mamori sensor`: the carrier's runtime as one process (REQUIREMENTS
//! CI-1…CI-8, CI-11, CI-12; DESIGN invariants 1–4).
//!
//! ```text
//!  UDP collector ─┐                        ┌─► archive (hourly Parquet, key id per file)
//!  file readers ──┴─► [ingest] ─► select ──┤   (kept per-flow records + aggregates)
//!  (files, watched dirs)   pseudonymise    └─► [detect] ─► detection on time windows
//!                          + select                          │ concern list (recorded first)
//!                          (Selector)                        └─► [post] ─► centre
//! ```
//!
//! One thread per stage, joined by bounded `sync_channel`s ([`crate::config::QueueConfig`]);
//! one file per stage in this folder (`select`, `archive`, `detect`, `post`, `sources`,
//! `reload`, `reap`, `concerns`, `ring`, `http`), this one starting and stopping them.
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
//! - *No stage dies silently*: a panicking stage is named by [`Sensor::failed_stage`]
//!   while running and by [`Sensor::stop`]'s [`RuntimeError::StagePanicked`] (CI-5: each
//!   stage is controlled), so the process stops instead of running on without it.
//!
//! **API boundary:** [`Sensor::start`] with a [`SensorConfig`] and [`Deps`] (clock, key
//! source, recorder, country table, the centre's token); [`Sensor::status`],
//! [`http_router`] (`GET /metrics`, and `GET /status` with the operator's or the overseer's
//! token; mergeable with other routers), [`Sensor::failed_stage`], [`Sensor::stop`];
//! [`RingKeys`], the key ring as the [`KeySource`] with the key-retirement policy.

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

mod archive;
mod concerns;
mod detect;
mod http;
mod post;
mod reap;
mod reload;
mod ring;
mod select;
mod sources;

#[cfg(test)]
mod tests;

pub use self::concerns::ListedConcern;
pub use self::detect::{MAX_INDICATOR_FILE_BYTES, load_indicators};
pub use self::http::{SensorView, Status, http_router};
pub use self::ring::RingKeys;
pub use self::select::{MAX_FUTURE_SKEW, MAX_LATENESS};

use self::archive::archiver;
use self::concerns::{ConcernKeeper, Concerns};
use self::detect::Detection;
use self::http::serve_http;
use self::post::poster;
use self::reap::Reaper;
use self::reload::{GEO_AGE_EVERY, GeoAge, GeoReloader, IndicatorReloader, Swap, periodically};
use self::select::{Select, ToArchive, ToDetect};
use self::sources::FileSource;

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
    /// A stage panicked: the sensor stopped rather than run on without it. A bug; the log
    /// holds the panic's backtrace.
    #[error(
        "the sensor's stage `{stage}` panicked ({message}); the sensor stopped without it — \
         report this as a bug with the log"
    )]
    StagePanicked {
        /// The stage's thread name (`sensor select`, `sensor reaper`, …).
        stage: String,
        /// The panic's message.
        message: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let what = what.into();
    move |source| RuntimeError::Io { what, source }
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
    failed: Arc<Failed>,
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

/// The stages that panicked, by thread name, as they panic: [`Sensor::failed_stage`] reads
/// it while running, so the process stops instead of running on without a stage.
#[derive(Default)]
pub(super) struct Failed(Mutex<Vec<String>>);

impl Failed {
    fn first(&self) -> Option<String> {
        self.0.lock().ok().and_then(|f| f.first().cloned())
    }
}

/// Pushes the thread's name onto [`Failed`] when the stage unwinds.
struct PanicWatch {
    name: String,
    failed: Arc<Failed>,
}

impl Drop for PanicWatch {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(mut f) = self.failed.0.lock()
        {
            f.push(std::mem::take(&mut self.name));
        }
    }
}

pub(super) fn spawn(
    failed: &Arc<Failed>,
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, RuntimeError> {
    let watch = PanicWatch {
        name: name.to_owned(),
        failed: Arc::clone(failed),
    };
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _watch = watch;
            f();
        })
        .map_err(io_err(format!("starting thread {name}")))
}

/// Joins a stage; a panic becomes [`RuntimeError::StagePanicked`] naming it, never
/// swallowed.
fn join(t: JoinHandle<()>) -> Result<(), RuntimeError> {
    let stage = t.thread().name().unwrap_or("sensor stage").to_owned();
    t.join().map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|m| (*m).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        RuntimeError::StagePanicked { stage, message }
    })
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
        let failed = Arc::new(Failed::default());
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
                stages.push(spawn(&failed, "sensor post", move || {
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
            stages.push(spawn(&failed, "sensor geo", move || reloader.run())?);
        }

        // The country files' age: a warning when they are out of date.
        if !cfg.geo.max_age.is_zero() && !cfg.geo.files().is_empty() {
            let watch = GeoAge {
                geo: cfg.geo.clone(),
                clock: Arc::clone(&deps.clock),
                metrics: Arc::clone(&metrics),
            };
            let s = Arc::clone(&stop);
            stages.push(spawn(&failed, "sensor geo age", move || {
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
                stages.push(spawn(&failed, "sensor indicators", move || reloader.run())?);
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
            stages.push(spawn(&failed, "sensor detect", move || {
                stage.run(detect_rx)
            })?);
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
            stages.push(spawn(&failed, "sensor archive", move || {
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
            stages.push(spawn(&failed, "sensor select", move || {
                stage.run(ingest_rx)
            })?);
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
            sources.push(spawn(&failed, "sensor files", move || files.run())?);
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
            sources.push(spawn(&failed, "sensor concerns", move || keeper.run())?);
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
            sources.push(spawn(&failed, "sensor reaper", move || reaper.run())?);
        }
        let view = SensorView {
            metrics,
            collector: collector.as_ref().map(|c| c.stats().clone()),
            concerns,
            files_pending: Arc::clone(&files_pending),
        };
        let http = if cfg.http.enabled {
            Some(serve_http(
                &failed,
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
            failed,
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

    /// The first stage that panicked, by thread name, while the sensor runs: the caller
    /// then stops the sensor ([`Sensor::stop`] returns the panic) rather than run on
    /// without the stage.
    pub fn failed_stage(&self) -> Option<String> {
        self.failed.first()
    }

    /// Stops the sources, drains the stages (closing the detection window and writing
    /// the archive's buffers) and returns the final counters. A stage that panicked is
    /// never swallowed: every stage is still joined, then the first panic is returned
    /// ([`RuntimeError::StagePanicked`], naming the stage).
    pub fn stop(mut self) -> Result<Status, RuntimeError> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(c) = self.collector.take() {
            c.stop();
        }
        let mut first_panic = None;
        let mut joined = |r: Result<(), RuntimeError>| {
            if let Err(e) = r {
                tracing::error!(error = %e, "sensor stage failed");
                first_panic.get_or_insert(e);
            }
        };
        for t in self.sources.drain(..) {
            joined(join(t));
        }
        drop(self.ingest.take());
        // Every ingest sender is gone: the select stage drains and ends, and so on down.
        for t in self.stages.drain(..) {
            joined(join(t));
        }
        let status = self.view.status();
        if let Some((_, tx, t)) = self.http.take() {
            let _ = tx.send(());
            joined(join(t));
        }
        tracing::info!(
            records = status.counters.selection.seen,
            files = status.counters.archive.files,
            "sensor stopped"
        );
        match first_panic {
            Some(e) => Err(e),
            None => Ok(status),
        }
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
