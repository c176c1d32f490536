//! The file sources: listed files read once, watched directories polled.

use super::*;

// Sources: files and watched directories.

pub(super) struct FileSource {
    pub(super) paths: Vec<PathBuf>,
    pub(super) watch: Vec<PathBuf>,
    pub(super) poll: Duration,
    pub(super) format: crate::files::FileFormat,
    pub(super) done_list: PathBuf,
    pub(super) tx: SyncSender<FlowBatch>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) pending: Arc<std::sync::atomic::AtomicUsize>,
}

/// Why a file reader stopped early.
#[derive(Debug, thiserror::Error)]
pub(super) enum Halt {
    #[error("sensor stopping")]
    Stopping,
}

pub(super) struct Feed<'a> {
    pub(super) tx: &'a SyncSender<FlowBatch>,
    pub(super) metrics: &'a Metrics,
    pub(super) stop: &'a AtomicBool,
    /// Records and malformed lines (frames, datagrams) of this file so far.
    pub(super) records: u64,
    pub(super) malformed: u64,
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
    pub(super) fn read(&self, path: &Path) -> bool {
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

    pub(super) fn run(self) {
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

pub(super) fn remember(list: &Path, path: &Path) {
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
