//! The reaper: expired archive files deleted on time, each deletion recorded, then the
//! keys no kept file needs retired (CI-5, invariant 4).

use super::*;

/// Deletes expired archive files on time and records each deletion, then retires keys.
pub(super) struct Reaper {
    pub(super) archive_dir: PathBuf,
    pub(super) data_dir: PathBuf,
    pub(super) every: Duration,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) recorder: Arc<dyn Recorder>,
    pub(super) keys: Arc<dyn KeySource>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) stop: Arc<AtomicBool>,
}

impl Reaper {
    pub(super) fn run(self) {
        periodically(
            &self.stop,
            self.every.max(Duration::from_secs(1)),
            true,
            || {
                self.pass();
            },
        );
    }

    pub(super) fn pass(&self) {
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
