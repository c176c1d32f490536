//! The detection stage: time windows over the selected records, findings, the concern
//! list changed through the recorder (CI-4, CI-5, CI-11).

use super::*;

/// The largest indicator list read (the largest public feeds are a few MiB): a bigger
/// file is refused rather than read into memory.
pub const MAX_INDICATOR_FILE_BYTES: u64 = 64 << 20;

/// Builds one indicator set from indicator lists (abuse.ch Feodo CSV or Spamhaus
/// DROP/EDROP, told apart by their header: [`IndicatorSetBuilder::add_list`]); each hit
/// names its file as the feed. Each file is read bounded ([`MAX_INDICATOR_FILE_BYTES`]).
/// Used by the sensor and by `mamori detect --indicators` (CI-11).
pub fn load_indicators(paths: &[PathBuf]) -> Result<IndicatorSet, RuntimeError> {
    let mut b = IndicatorSetBuilder::new();
    for path in paths {
        let feed = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("indicators")
            .to_owned();
        let text = read_bounded(path)?;
        let n = b
            .add_list(&text, &feed)
            .map_err(|e| RuntimeError::Config(format!("indicators {}: {e}", path.display())))?;
        tracing::info!(feed, n, "indicators loaded");
    }
    Ok(b.build())
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, RuntimeError> {
    use std::io::Read;
    let mut text = Vec::new();
    #[allow(clippy::disallowed_methods)] // bounded by take()
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INDICATOR_FILE_BYTES + 1).read_to_end(&mut text))
        .map_err(io_err(format!("reading indicators {}", path.display())))?;
    if text.len() as u64 > MAX_INDICATOR_FILE_BYTES {
        return Err(RuntimeError::Config(format!(
            "indicators {}: larger than {} MiB; split the list into several files",
            path.display(),
            MAX_INDICATOR_FILE_BYTES >> 20
        )));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------
// Detection on time windows, the concern list, and posting.

pub(super) struct Detection {
    pub(super) cfg: DetectConfig,
    /// Where reloaded indicator sets arrive.
    pub(super) indicators: Arc<IndicatorSlot>,
    pub(super) window_ms: i64,
    /// How long after its end a window takes late records: [`MAX_LATENESS`], at most one
    /// window length.
    pub(super) lateness_ms: i64,
    pub(super) idle_close: Duration,
    pub(super) min_score: f64,
    pub(super) concern_expiry: chrono::Duration,
    pub(super) side: Selector,
    pub(super) unknown_is_foreign: bool,
    pub(super) geo: Arc<GeoTable>,
    pub(super) geo_slot: Arc<Swap<GeoTable>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) recorder: Arc<dyn Recorder>,
    pub(super) concerns: Arc<Concerns>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) post: Option<SyncSender<Vec<Finding>>>,
}

pub(super) fn record_time(r: &FlowRecord) -> i64 {
    if r.start_ms != 0 {
        r.start_ms
    } else {
        r.end_ms
    }
}

/// Most pseudonyms one window remembers. Beyond it, a finding whose address is not among
/// them could be an unremembered pseudonym: it is withheld and counted, never listed.
pub(super) const MAX_PSEUDONYMS_PER_WINDOW: usize = 1 << 21;

/// One open detection window: its detectors, and every address its records carried as a
/// pseudonym, decided by the select stage before pseudonymisation. A finding's address is
/// judged against these, never against country data: a pseudonym may fall into any
/// country's prefix (CI-4, DESIGN invariant 2).
pub(super) struct Window {
    pub(super) detectors: Detectors,
    pub(super) pseudonyms: Pseudonyms,
}

/// The pseudonyms of one window, each with the key it was made with.
pub(super) struct Pseudonyms {
    pub(super) seen: FxHashMap<IpAddr, u32>,
    pub(super) keys: Vec<String>,
    /// Most pseudonyms remembered ([`MAX_PSEUDONYMS_PER_WINDOW`]).
    pub(super) cap: usize,
    pub(super) overflow: bool,
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
    pub(super) fn key_index(&mut self, key_id: &str) -> u32 {
        match self.keys.iter().position(|k| k == key_id) {
            Some(i) => i as u32,
            None => {
                self.keys.push(key_id.to_owned());
                (self.keys.len() - 1) as u32
            }
        }
    }

    pub(super) fn insert(&mut self, addr: IpAddr, key: u32) {
        if self.seen.len() < self.cap {
            self.seen.entry(addr).or_insert(key);
        } else if !self.seen.contains_key(&addr) {
            self.overflow = true;
        }
    }

    pub(super) fn subject(&self, addr: IpAddr) -> Subject<'_> {
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
    pub(super) fn new(cfg: &DetectConfig) -> Self {
        Self {
            detectors: Detectors::new(cfg),
            pseudonyms: Pseudonyms::default(),
        }
    }

    pub(super) fn observe(&mut self, r: &FlowRecord, p: Pseudonymised, key: u32) {
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
pub(super) enum Subject<'a> {
    /// A foreign server (or scanner, or source) in clear.
    Server,
    /// A subscriber's pseudonym, made with this key.
    Pseudonym(&'a str),
    /// Cannot be told: the window forgot some pseudonyms.
    Unknown,
}

impl Detection {
    pub(super) fn run(mut self, rx: Receiver<ToDetect>) {
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
    pub(super) fn closes_at(&self, w: i64) -> i64 {
        w.saturating_add(1)
            .saturating_mul(self.window_ms)
            .saturating_add(self.lateness_ms)
    }

    pub(super) fn is_foreign(&self, addr: IpAddr) -> bool {
        match self.side.side(addr, &self.geo) {
            Side::Foreign => true,
            Side::Unknown => self.unknown_is_foreign,
            Side::Subscriber | Side::Domestic => false,
        }
    }

    pub(super) fn close(&self, window: i64, w: Window) {
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
    pub(super) fn list(&self, server: IpAddr, reason: String) {
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
