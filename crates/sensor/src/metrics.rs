//! The sensor's counters (REQUIREMENTS CI-5, CI-6: every stage is
//! controlled, so every stage is counted): datagrams, records and anomalies per exporter,
//! file inputs, selection drops per reason, kept records and aggregates, archive files and
//! bytes, detection windows and findings, findings posted and failed, the concern list,
//! queue depths and drops per stage, and the process's memory and CPU time.
//!
//! Rendered as Prometheus text ([`Snapshot::prometheus`], `GET /metrics`) and as JSON
//! (`GET /status`, SIGUSR1, `mamori sensor status`), both from one [`Snapshot`].
//!
//! **Architecture invariant:** counters hold numbers and exporter (router) addresses only:
//! no flow address, pseudonymised or not, is ever a label (DESIGN invariant 2 — and a
//! label per address would make the series unbounded). The exporters are the carrier's own
//! routers, so `/metrics` may stay open; their number is bounded by the collector's
//! allow-list and cap (the rest are one `other` series). What names servers (the concern
//! list) is only in `/status`, behind a token.
//!
//! **API boundary:** the stages bump the public atomics of [`Metrics`]; [`Metrics::snapshot`]
//! reads them all at once with the collector's per-exporter [`Stats`].

use crate::collector::{CollectorTotals, ExporterStats, Stats};
use mamori_flow::{DropReason, SelectionCounts};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counters of one bounded queue between two stages.
#[derive(Debug)]
pub struct QueueStats {
    /// The stage the queue feeds (`select`, `archive`, `detect`, `post`).
    pub name: &'static str,
    /// Capacity in batches.
    pub capacity: usize,
    /// Records handed to the queue.
    pub enqueued_records: AtomicU64,
    /// Records taken from it.
    pub dequeued_records: AtomicU64,
    /// Batches dropped because the queue was full.
    pub dropped_batches: AtomicU64,
    /// Records in those batches.
    pub dropped_records: AtomicU64,
}

impl QueueStats {
    /// Counters for a queue of `capacity` batches.
    pub fn new(name: &'static str, capacity: usize) -> Self {
        Self {
            name,
            capacity,
            enqueued_records: AtomicU64::new(0),
            dequeued_records: AtomicU64::new(0),
            dropped_batches: AtomicU64::new(0),
            dropped_records: AtomicU64::new(0),
        }
    }

    /// A batch of `records` went in.
    pub fn enqueued(&self, records: u64) {
        self.enqueued_records.fetch_add(records, Ordering::Relaxed);
    }

    /// A batch of `records` came out.
    pub fn dequeued(&self, records: u64) {
        self.dequeued_records.fetch_add(records, Ordering::Relaxed);
    }

    /// A batch of `records` was dropped (queue full).
    pub fn dropped(&self, records: u64) {
        self.dropped_batches.fetch_add(1, Ordering::Relaxed);
        self.dropped_records.fetch_add(records, Ordering::Relaxed);
    }
}

/// Every counter of a running sensor.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// Files read to the end.
    pub files_read: AtomicU64,
    /// Files that could not be read (named in the log), or in which no line was a record
    /// but some were malformed (a file in another format than the one set).
    pub file_errors: AtomicU64,
    /// Records read from files.
    pub file_records: AtomicU64,
    /// Lines, frames or datagrams in files that could not be decoded (each counted, the
    /// next one read; the file is named in the log).
    pub file_malformed: AtomicU64,
    /// Selection counters (seen, dropped per reason, aggregated, kept per flow).
    pub selection: Mutex<SelectionCounts>,
    /// Pseudonym key changes seen by the select stage.
    pub key_rotations: AtomicU64,
    /// Aggregate rows handed to the archive.
    pub aggregates: AtomicU64,
    /// Archive files written.
    pub archive_files: AtomicU64,
    /// Bytes of those files.
    pub archive_bytes: AtomicU64,
    /// Per-flow rows written.
    pub archive_flow_rows: AtomicU64,
    /// Aggregate rows written.
    pub archive_aggregate_rows: AtomicU64,
    /// Write failures (the rows of a failed write are counted here and lost).
    pub archive_errors: AtomicU64,
    /// Rows lost with failed writes.
    pub archive_lost_rows: AtomicU64,
    /// Expired archive files deleted by the reaper (CI-5).
    pub reaped_files: AtomicU64,
    /// Deletion entries appended to the ledger.
    pub reaped_recorded: AtomicU64,
    /// Deletions done but still waiting in the journal for the ledger.
    pub reaped_pending: AtomicU64,
    /// Files the reaper could not judge or delete (left for a person).
    pub reap_failures: AtomicU64,
    /// Pseudonym keys retired (no kept data needs them any more).
    pub keys_retired: AtomicU64,
    /// Country table refreshed after its files changed.
    pub geo_reloads: AtomicU64,
    /// Refreshes that failed (the table in force stayed).
    pub geo_reload_errors: AtomicU64,
    /// Age of the oldest country file, seconds (checked every minute).
    pub geo_age_seconds: AtomicU64,
    /// 1 while that age is over `[geo] max_age`.
    pub geo_stale: AtomicU64,
    /// Indicator lists reloaded after a change.
    pub indicator_reloads: AtomicU64,
    /// Reloads that failed (the set in force stayed).
    pub indicator_reload_errors: AtomicU64,
    /// Records the detectors saw.
    pub detect_records: AtomicU64,
    /// Records whose window had closed (later than the allowed lateness): counted and
    /// kept out of detection.
    pub detect_late_records: AtomicU64,
    /// Records dated more than the allowed skew after the sensor's clock at ingest, or
    /// before 1970: re-timed to their arrival (an exporter's clock must not move the
    /// windows or the archive's hours).
    pub retimed_records: AtomicU64,
    /// Findings about subscribers (their address a pseudonym): reported as infected
    /// clients, never concern-listed.
    pub findings_infected_client: AtomicU64,
    /// Findings withheld because the window saw more pseudonyms than it could remember,
    /// so a pseudonym could not be told from a server.
    pub findings_withheld: AtomicU64,
    /// Windows closed.
    pub detect_windows: AtomicU64,
    /// Findings produced (all scores).
    pub findings: AtomicU64,
    /// Findings at or above the configured score.
    pub findings_reported: AtomicU64,
    /// Findings the centre accepted.
    pub findings_posted: AtomicU64,
    /// Findings given up on after every attempt (or refused by the centre).
    pub findings_post_failed: AtomicU64,
    /// Failed attempts (each retried one counts).
    pub post_attempt_errors: AtomicU64,
    /// Concerns in force.
    pub concerns_active: AtomicU64,
    /// Concerns listed (each recorded first).
    pub concerns_listed: AtomicU64,
    /// Concerns ended (each recorded first).
    pub concerns_ended: AtomicU64,
    /// Concern changes not made because recording them failed.
    pub concern_record_failures: AtomicU64,
    /// Concerns rebuilt from the ledger at start, or taken from it while running (a
    /// manual concern).
    pub concerns_restored: AtomicU64,
    /// Concern entries in the ledger not applied: an address inside the subscriber
    /// prefixes, or not an address.
    pub concerns_refused: AtomicU64,
    /// Sources → select.
    pub ingest: QueueStats,
    /// Select → archive.
    pub archive_queue: QueueStats,
    /// Select → detect.
    pub detect_queue: QueueStats,
    /// Detect → poster (records = findings).
    pub post_queue: QueueStats,
}

impl Metrics {
    /// Zeroed counters for queues of the given capacities.
    pub fn new(ingest: usize, archive: usize, detect: usize, post: usize) -> Self {
        let z = || AtomicU64::new(0);
        Self {
            started: Instant::now(),
            files_read: z(),
            file_errors: z(),
            file_records: z(),
            file_malformed: z(),
            selection: Mutex::new(SelectionCounts::default()),
            key_rotations: z(),
            aggregates: z(),
            archive_files: z(),
            archive_bytes: z(),
            archive_flow_rows: z(),
            archive_aggregate_rows: z(),
            archive_errors: z(),
            archive_lost_rows: z(),
            reaped_files: z(),
            reaped_recorded: z(),
            reaped_pending: z(),
            reap_failures: z(),
            keys_retired: z(),
            geo_reloads: z(),
            geo_reload_errors: z(),
            geo_age_seconds: z(),
            geo_stale: z(),
            indicator_reloads: z(),
            indicator_reload_errors: z(),
            detect_records: z(),
            detect_late_records: z(),
            retimed_records: z(),
            findings_infected_client: z(),
            findings_withheld: z(),
            detect_windows: z(),
            findings: z(),
            findings_reported: z(),
            findings_posted: z(),
            findings_post_failed: z(),
            post_attempt_errors: z(),
            concerns_active: z(),
            concerns_listed: z(),
            concerns_ended: z(),
            concern_record_failures: z(),
            concerns_restored: z(),
            concerns_refused: z(),
            ingest: QueueStats::new("select", ingest),
            archive_queue: QueueStats::new("archive", archive),
            detect_queue: QueueStats::new("detect", detect),
            post_queue: QueueStats::new("post", post),
        }
    }

    /// Everything now. `collector` is the UDP collector's per-exporter counters, if any.
    pub fn snapshot(&self, collector: Option<&Stats>) -> Snapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut exporters: BTreeMap<String, ExporterStats> = collector
            .map(|s| {
                s.snapshot()
                    .into_iter()
                    .map(|(ip, st)| (ip.to_string(), st))
                    .collect()
            })
            .unwrap_or_default();
        let totals = collector.map(Stats::totals).unwrap_or_default();
        if totals.other.datagrams > 0 {
            exporters.insert(OTHER_EXPORTERS.to_owned(), totals.other.clone());
        }
        let udp_records: u64 = exporters.values().map(|e| e.records).sum();
        let udp_dropped: u64 = exporters.values().map(|e| e.dropped_records).sum();
        let sel = self.selection.lock().map(|s| s.clone()).unwrap_or_default();
        let dropped = DropReason::ALL
            .iter()
            .map(|r| (r.name().to_owned(), sel.dropped(*r)))
            .collect();
        // The collector hands batches straight to the ingest queue: what went in is what
        // it decoded minus what it dropped, plus what the file readers sent.
        let queue = |q: &QueueStats, enq: u64, dropped_records: u64| QueueSnapshot {
            capacity: q.capacity as u64,
            depth_records: enq.saturating_sub(g(&q.dequeued_records)),
            dropped_batches: g(&q.dropped_batches),
            dropped_records,
        };
        let ingest_enq = udp_records.saturating_sub(udp_dropped) + g(&self.ingest.enqueued_records);
        let mut queues = BTreeMap::new();
        queues.insert(
            self.ingest.name.to_owned(),
            queue(
                &self.ingest,
                ingest_enq,
                udp_dropped + g(&self.ingest.dropped_records),
            ),
        );
        for q in [&self.archive_queue, &self.detect_queue, &self.post_queue] {
            queues.insert(
                q.name.to_owned(),
                queue(q, g(&q.enqueued_records), g(&q.dropped_records)),
            );
        }
        let (rss, max_rss) = memory();
        Snapshot {
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            exporters,
            files_read: g(&self.files_read),
            file_errors: g(&self.file_errors),
            file_records: g(&self.file_records),
            file_malformed: g(&self.file_malformed),
            collector: CollectorTotals {
                other: ExporterStats::default(),
                ..totals
            },
            selection: SelectionSnapshot {
                seen: sel.seen,
                dropped,
                dropped_by_rule: sel.dropped_by_rule.clone(),
                aggregated: sel.aggregated,
                kept_per_flow: sel.kept_per_flow,
                pseudonymised: sel.pseudonymised,
            },
            key_rotations: g(&self.key_rotations),
            aggregates: g(&self.aggregates),
            archive: ArchiveSnapshot {
                files: g(&self.archive_files),
                bytes: g(&self.archive_bytes),
                flow_rows: g(&self.archive_flow_rows),
                aggregate_rows: g(&self.archive_aggregate_rows),
                errors: g(&self.archive_errors),
                lost_rows: g(&self.archive_lost_rows),
                reaped_files: g(&self.reaped_files),
                reaped_recorded: g(&self.reaped_recorded),
                reaped_pending: g(&self.reaped_pending),
                reap_failures: g(&self.reap_failures),
                keys_retired: g(&self.keys_retired),
            },
            detection: DetectionSnapshot {
                records: g(&self.detect_records),
                late_records: g(&self.detect_late_records),
                retimed_records: g(&self.retimed_records),
                findings_infected_client: g(&self.findings_infected_client),
                findings_withheld: g(&self.findings_withheld),
                windows: g(&self.detect_windows),
                findings: g(&self.findings),
                findings_reported: g(&self.findings_reported),
                findings_posted: g(&self.findings_posted),
                findings_post_failed: g(&self.findings_post_failed),
                post_attempt_errors: g(&self.post_attempt_errors),
                geo_reloads: g(&self.geo_reloads),
                geo_reload_errors: g(&self.geo_reload_errors),
                geo_age_seconds: g(&self.geo_age_seconds),
                geo_stale: g(&self.geo_stale) > 0,
                indicator_reloads: g(&self.indicator_reloads),
                indicator_reload_errors: g(&self.indicator_reload_errors),
            },
            concerns: ConcernSnapshot {
                active: g(&self.concerns_active),
                listed: g(&self.concerns_listed),
                ended: g(&self.concerns_ended),
                record_failures: g(&self.concern_record_failures),
                restored: g(&self.concerns_restored),
                refused: g(&self.concerns_refused),
            },
            queues,
            process: ProcessSnapshot {
                resident_bytes: rss,
                max_resident_bytes: max_rss,
                cpu_seconds: cpu_seconds(),
            },
        }
    }
}

/// The counters at one moment (the body of `GET /status`).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Per exporter (router address; `other` for those beyond `max_exporters`):
    /// datagrams, records, anomalies, dropped records, the last datagram's time.
    pub exporters: BTreeMap<String, ExporterStats>,
    /// Datagrams rejected (not an allowed exporter) and dropped by the kernel (receive
    /// buffer full); `other` is in `exporters`.
    pub collector: CollectorTotals,
    /// Files read to the end.
    pub files_read: u64,
    /// Files that failed.
    pub file_errors: u64,
    /// Records read from files.
    pub file_records: u64,
    /// Malformed lines, frames or datagrams in files.
    pub file_malformed: u64,
    /// Selection.
    pub selection: SelectionSnapshot,
    /// Pseudonym key changes.
    pub key_rotations: u64,
    /// Aggregate rows produced.
    pub aggregates: u64,
    /// Archive.
    pub archive: ArchiveSnapshot,
    /// Detection and posting.
    pub detection: DetectionSnapshot,
    /// The concern list.
    pub concerns: ConcernSnapshot,
    /// Queues by the stage they feed.
    pub queues: BTreeMap<String, QueueSnapshot>,
    /// This process.
    pub process: ProcessSnapshot,
}

/// Selection counters.
#[derive(Debug, Clone, Serialize)]
pub struct SelectionSnapshot {
    /// Records seen.
    pub seen: u64,
    /// Dropped, per reason.
    pub dropped: BTreeMap<String, u64>,
    /// Dropped per drop rule, in policy order.
    pub dropped_by_rule: Vec<u64>,
    /// Folded into aggregates.
    pub aggregated: u64,
    /// Kept per flow (concern list).
    pub kept_per_flow: u64,
    /// Addresses pseudonymised.
    pub pseudonymised: u64,
}

/// Archive counters.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveSnapshot {
    /// Files written.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Per-flow rows.
    pub flow_rows: u64,
    /// Aggregate rows.
    pub aggregate_rows: u64,
    /// Failed writes.
    pub errors: u64,
    /// Rows lost with them.
    pub lost_rows: u64,
    /// Expired files deleted.
    pub reaped_files: u64,
    /// Deletion entries appended to the ledger.
    pub reaped_recorded: u64,
    /// Deletions waiting in the journal for the ledger (now).
    pub reaped_pending: u64,
    /// Files the reaper left for a person.
    pub reap_failures: u64,
    /// Pseudonym keys retired.
    pub keys_retired: u64,
}

/// Detection counters.
#[derive(Debug, Clone, Serialize)]
pub struct DetectionSnapshot {
    /// Records seen.
    pub records: u64,
    /// Records later than their window's allowed lateness (kept out of detection).
    pub late_records: u64,
    /// Records dated past the sensor's clock plus the allowed skew, or before 1970
    /// (re-timed to their arrival).
    pub retimed_records: u64,
    /// Findings about subscribers, reported as infected clients.
    pub findings_infected_client: u64,
    /// Findings withheld (a pseudonym could not be told from a server).
    pub findings_withheld: u64,
    /// Windows closed.
    pub windows: u64,
    /// Findings produced.
    pub findings: u64,
    /// Findings at or above the score threshold.
    pub findings_reported: u64,
    /// Accepted by the centre.
    pub findings_posted: u64,
    /// Given up on.
    pub findings_post_failed: u64,
    /// Failed attempts.
    pub post_attempt_errors: u64,
    /// Country table refreshed after its files changed.
    pub geo_reloads: u64,
    /// Refreshes that failed (the table in force stayed).
    pub geo_reload_errors: u64,
    /// Age of the oldest country file, seconds.
    pub geo_age_seconds: u64,
    /// Whether that age is over `[geo] max_age` (the selection's countries are out of date).
    pub geo_stale: bool,
    /// Indicator lists reloaded after a change.
    pub indicator_reloads: u64,
    /// Reloads that failed (the set in force stayed).
    pub indicator_reload_errors: u64,
}

/// Concern list counters.
#[derive(Debug, Clone, Serialize)]
pub struct ConcernSnapshot {
    /// In force now.
    pub active: u64,
    /// Listed since start.
    pub listed: u64,
    /// Ended since start.
    pub ended: u64,
    /// Changes refused because recording failed.
    pub record_failures: u64,
    /// Rebuilt from the ledger at start or taken from it while running.
    pub restored: u64,
    /// Ledger concern entries not applied (inside the subscriber prefixes).
    pub refused: u64,
}

/// One queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSnapshot {
    /// Capacity, batches.
    pub capacity: u64,
    /// Records waiting.
    pub depth_records: u64,
    /// Batches dropped (full).
    pub dropped_batches: u64,
    /// Records dropped (full).
    pub dropped_records: u64,
}

/// The process.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessSnapshot {
    /// Resident memory now.
    pub resident_bytes: u64,
    /// Peak resident memory.
    pub max_resident_bytes: u64,
    /// User + system CPU time.
    pub cpu_seconds: f64,
}

/// (VmRSS, VmHWM) in bytes from `/proc/self/status`; zeros where unavailable.
fn memory() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU seconds of this process from `/proc/self/stat` (clock ticks of
/// 1/100 s, the Linux `USER_HZ`); 0 where unavailable.
pub fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing ')'.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) as f64 / 100.0
}

/// The exporter label of the exporters beyond the cap, counted together.
pub const OTHER_EXPORTERS: &str = "other";

fn esc(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Snapshot {
    /// Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut o = String::with_capacity(8192);
        let mut metric = |name: &str, kind: &str, help: &str, rows: &[(String, f64)]| {
            let _ = writeln!(o, "# HELP mamori_sensor_{name} {help}");
            let _ = writeln!(o, "# TYPE mamori_sensor_{name} {kind}");
            for (labels, v) in rows {
                if labels.is_empty() {
                    let _ = writeln!(o, "mamori_sensor_{name} {v}");
                } else {
                    let _ = writeln!(o, "mamori_sensor_{name}{{{labels}}} {v}");
                }
            }
        };
        let one = |v: u64| vec![(String::new(), v as f64)];
        let per_exp = |f: &dyn Fn(&ExporterStats) -> u64| -> Vec<(String, f64)> {
            self.exporters
                .iter()
                .map(|(ip, s)| (format!("exporter=\"{}\"", esc(ip)), f(s) as f64))
                .collect()
        };
        metric(
            "uptime_seconds",
            "gauge",
            "Seconds since the sensor started.",
            &[(String::new(), self.uptime_seconds)],
        );
        metric(
            "datagrams_total",
            "counter",
            "UDP datagrams received, per exporter.",
            &per_exp(&|s| s.datagrams),
        );
        metric(
            "records_total",
            "counter",
            "Flow records decoded from UDP, per exporter.",
            &per_exp(&|s| s.records),
        );
        metric(
            "malformed_total",
            "counter",
            "Malformed datagrams or sets, per exporter.",
            &per_exp(&|s| s.malformed()),
        );
        metric(
            "exporter_dropped_records_total",
            "counter",
            "Records decoded but dropped because the ingest queue was full, per exporter.",
            &per_exp(&|s| s.dropped_records),
        );
        let anomalies: Vec<(String, f64)> = self
            .exporters
            .iter()
            .flat_map(|(ip, s)| {
                s.anomalies.iter().map(move |(k, n)| {
                    (
                        format!("exporter=\"{}\",kind=\"{}\"", esc(ip), esc(k)),
                        *n as f64,
                    )
                })
            })
            .collect();
        metric(
            "anomalies_total",
            "counter",
            "Decoding anomalies per exporter and kind.",
            &anomalies,
        );
        metric(
            "rejected_datagrams_total",
            "counter",
            "UDP datagrams from sources outside the exporter allow-list, not decoded.",
            &one(self.collector.rejected_datagrams),
        );
        metric(
            "udp_kernel_drops_total",
            "counter",
            "UDP datagrams the kernel dropped because a socket's receive buffer was full.",
            &one(self.collector.kernel_drops),
        );
        metric(
            "files_read_total",
            "counter",
            "Flow files read to the end.",
            &one(self.files_read),
        );
        metric(
            "file_errors_total",
            "counter",
            "Flow files that could not be read.",
            &one(self.file_errors),
        );
        metric(
            "file_records_total",
            "counter",
            "Records read from files.",
            &one(self.file_records),
        );
        metric(
            "file_malformed_total",
            "counter",
            "Lines, frames or datagrams in files that could not be decoded.",
            &one(self.file_malformed),
        );
        metric(
            "selection_seen_total",
            "counter",
            "Records the selection saw.",
            &one(self.selection.seen),
        );
        let drops: Vec<(String, f64)> = self
            .selection
            .dropped
            .iter()
            .map(|(r, n)| (format!("reason=\"{}\"", esc(r)), *n as f64))
            .collect();
        metric(
            "selection_dropped_total",
            "counter",
            "Records dropped by the selection, per reason (never written).",
            &drops,
        );
        let rules: Vec<(String, f64)> = self
            .selection
            .dropped_by_rule
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("rule=\"{i}\""), *n as f64))
            .collect();
        metric(
            "selection_dropped_by_rule_total",
            "counter",
            "Records dropped per policy drop rule (index in the policy).",
            &rules,
        );
        metric(
            "selection_aggregated_total",
            "counter",
            "Kept records folded into per-server aggregates.",
            &one(self.selection.aggregated),
        );
        metric(
            "kept_records_total",
            "counter",
            "Records kept per flow (servers on the concern list).",
            &one(self.selection.kept_per_flow),
        );
        metric(
            "pseudonymised_total",
            "counter",
            "Addresses pseudonymised.",
            &one(self.selection.pseudonymised),
        );
        metric(
            "key_rotations_total",
            "counter",
            "Pseudonym key changes.",
            &one(self.key_rotations),
        );
        metric(
            "aggregates_total",
            "counter",
            "Aggregate rows produced.",
            &one(self.aggregates),
        );
        metric(
            "archive_files_total",
            "counter",
            "Archive files written.",
            &one(self.archive.files),
        );
        metric(
            "archive_bytes_total",
            "counter",
            "Bytes of archive files written.",
            &one(self.archive.bytes),
        );
        metric(
            "archive_rows_total",
            "counter",
            "Rows written, per kind.",
            &[
                ("kind=\"flows\"".to_owned(), self.archive.flow_rows as f64),
                (
                    "kind=\"aggregates\"".to_owned(),
                    self.archive.aggregate_rows as f64,
                ),
            ],
        );
        metric(
            "archive_errors_total",
            "counter",
            "Failed archive writes.",
            &one(self.archive.errors),
        );
        metric(
            "archive_lost_rows_total",
            "counter",
            "Rows lost with failed writes.",
            &one(self.archive.lost_rows),
        );
        metric(
            "archive_reaped_files_total",
            "counter",
            "Expired archive files deleted by the reaper.",
            &one(self.archive.reaped_files),
        );
        metric(
            "archive_reaped_recorded_total",
            "counter",
            "Deletion entries appended to the sensor's ledger.",
            &one(self.archive.reaped_recorded),
        );
        metric(
            "archive_reaped_pending",
            "gauge",
            "Deletions done but waiting in the journal for the ledger.",
            &one(self.archive.reaped_pending),
        );
        metric(
            "archive_reap_failures_total",
            "counter",
            "Archive files the reaper left for a person (unreadable expiry, failed delete).",
            &one(self.archive.reap_failures),
        );
        metric(
            "pseudonym_keys_retired_total",
            "counter",
            "Pseudonym keys retired because no kept data needs them.",
            &one(self.archive.keys_retired),
        );
        metric(
            "detect_records_total",
            "counter",
            "Records the detectors saw.",
            &one(self.detection.records),
        );
        metric(
            "detect_late_records_total",
            "counter",
            "Records later than their window's allowed lateness, kept out of detection.",
            &one(self.detection.late_records),
        );
        metric(
            "retimed_records_total",
            "counter",
            "Records dated past the sensor's clock plus the allowed skew, or before 1970, re-timed to their arrival.",
            &one(self.detection.retimed_records),
        );
        metric(
            "findings_infected_client_total",
            "counter",
            "Findings about subscribers (pseudonyms), reported as infected clients.",
            &one(self.detection.findings_infected_client),
        );
        metric(
            "findings_withheld_total",
            "counter",
            "Findings withheld because a pseudonym could not be told from a server.",
            &one(self.detection.findings_withheld),
        );
        metric(
            "detect_windows_total",
            "counter",
            "Detection windows closed.",
            &one(self.detection.windows),
        );
        metric(
            "findings_total",
            "counter",
            "Findings produced.",
            &one(self.detection.findings),
        );
        metric(
            "findings_reported_total",
            "counter",
            "Findings at or above the score threshold.",
            &one(self.detection.findings_reported),
        );
        metric(
            "findings_posted_total",
            "counter",
            "Findings accepted by the centre.",
            &one(self.detection.findings_posted),
        );
        metric(
            "findings_post_failed_total",
            "counter",
            "Findings given up on after every attempt.",
            &one(self.detection.findings_post_failed),
        );
        metric(
            "post_attempt_errors_total",
            "counter",
            "Failed attempts to post findings.",
            &one(self.detection.post_attempt_errors),
        );
        metric(
            "geo_reloads_total",
            "counter",
            "Country table refreshed after its files changed.",
            &one(self.detection.geo_reloads),
        );
        metric(
            "geo_reload_errors_total",
            "counter",
            "Country table refreshes that failed (the table in force stayed).",
            &one(self.detection.geo_reload_errors),
        );
        metric(
            "geo_data_age_seconds",
            "gauge",
            "Age of the oldest country file (by modification time).",
            &one(self.detection.geo_age_seconds),
        );
        metric(
            "geo_data_stale",
            "gauge",
            "1 while the oldest country file is older than [geo] max_age.",
            &one(u64::from(self.detection.geo_stale)),
        );
        metric(
            "indicator_reloads_total",
            "counter",
            "Indicator lists reloaded after a change.",
            &one(self.detection.indicator_reloads),
        );
        metric(
            "indicator_reload_errors_total",
            "counter",
            "Indicator reloads that failed (the set in force stayed).",
            &one(self.detection.indicator_reload_errors),
        );
        metric(
            "concerns",
            "gauge",
            "Servers on the concern list now.",
            &one(self.concerns.active),
        );
        metric(
            "concerns_listed_total",
            "counter",
            "Concerns listed.",
            &one(self.concerns.listed),
        );
        metric(
            "concerns_ended_total",
            "counter",
            "Concerns ended.",
            &one(self.concerns.ended),
        );
        metric(
            "concern_record_failures_total",
            "counter",
            "Concern changes not made because recording failed.",
            &one(self.concerns.record_failures),
        );
        metric(
            "concerns_restored_total",
            "counter",
            "Concerns rebuilt from the ledger at start or taken from it while running.",
            &one(self.concerns.restored),
        );
        metric(
            "concerns_refused_total",
            "counter",
            "Ledger concern entries not applied (inside the subscriber prefixes).",
            &one(self.concerns.refused),
        );
        let q = |f: &dyn Fn(&QueueSnapshot) -> u64| -> Vec<(String, f64)> {
            self.queues
                .iter()
                .map(|(n, s)| (format!("stage=\"{}\"", esc(n)), f(s) as f64))
                .collect()
        };
        metric(
            "queue_capacity_batches",
            "gauge",
            "Queue capacity in batches, per stage fed.",
            &q(&|s| s.capacity),
        );
        metric(
            "queue_depth_records",
            "gauge",
            "Records waiting, per stage fed.",
            &q(&|s| s.depth_records),
        );
        metric(
            "queue_dropped_batches_total",
            "counter",
            "Batches dropped because the queue was full, per stage fed.",
            &q(&|s| s.dropped_batches),
        );
        metric(
            "queue_dropped_records_total",
            "counter",
            "Records dropped because the queue was full, per stage fed.",
            &q(&|s| s.dropped_records),
        );
        metric(
            "resident_memory_bytes",
            "gauge",
            "Resident memory.",
            &one(self.process.resident_bytes),
        );
        metric(
            "max_resident_memory_bytes",
            "gauge",
            "Peak resident memory.",
            &one(self.process.max_resident_bytes),
        );
        metric(
            "cpu_seconds_total",
            "counter",
            "User and system CPU time.",
            &[(String::new(), self.process.cpu_seconds)],
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_stage_and_parses_line_by_line() {
        let m = Metrics::new(4, 4, 4, 4);
        m.file_records.fetch_add(7, Ordering::Relaxed);
        m.ingest.enqueued(7);
        m.ingest.dequeued(5);
        m.detect_queue.dropped(3);
        if let Ok(mut s) = m.selection.lock() {
            s.seen = 5;
        }
        let snap = m.snapshot(None);
        assert_eq!(snap.queues["select"].depth_records, 2);
        let text = snap.prometheus();
        for needle in [
            "mamori_sensor_file_records_total 7",
            "mamori_sensor_selection_seen_total 5",
            "mamori_sensor_selection_dropped_total{reason=\"domestic_domestic\"} 0",
            "mamori_sensor_queue_dropped_records_total{stage=\"detect\"} 3",
            "mamori_sensor_queue_depth_records{stage=\"select\"} 2",
            "mamori_sensor_resident_memory_bytes ",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
        }
    }

    #[test]
    fn process_figures_are_read_on_linux() {
        let (rss, max) = memory();
        assert!(rss > 0 && max >= rss, "{rss} {max}");
        // Burn a little CPU so the figure is positive.
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0 && cpu_seconds() > 0.0);
    }
}
