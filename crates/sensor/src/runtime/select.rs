//! The select stage: pseudonymise + select, the only way out of ingest (CI-2, CI-4;
//! invariants 2, 3).

use super::*;

// Pseudonymise + select.

pub(super) enum ToArchive {
    Flows(String, Vec<FlowRecord>),
    Aggregates(String, Vec<ServerAggregate>),
}

pub(super) struct Select {
    pub(super) selector: Selector,
    pub(super) key_id: String,
    pub(super) keys: Arc<dyn KeySource>,
    pub(super) policy: mamori_flow::SelectionPolicy,
    pub(super) geo: Arc<GeoTable>,
    pub(super) geo_slot: Arc<Swap<GeoTable>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) concerns: Arc<Concerns>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) archive: SyncSender<ToArchive>,
    pub(super) detect: Option<SyncSender<ToDetect>>,
    pub(super) aggregate_every: Duration,
}

/// What the select stage hands the detection stage: the kept records, which of their ends
/// are pseudonyms, and the id of the key they were made with.
pub(super) struct ToDetect {
    pub(super) key_id: String,
    pub(super) observed: Observed,
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
pub(super) fn bound_times(batch: &mut FlowBatch, now_ms: i64) -> u64 {
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
    pub(super) fn run(mut self, rx: Receiver<FlowBatch>) {
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
    pub(super) fn pseudonymise_exporters(&self, kept: &mut [FlowRecord]) {
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

    pub(super) fn check_key(&mut self, now: Timestamp) {
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

    pub(super) fn flush_aggregates(&mut self) {
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
