//! The periodic reloaders: indicator lists and country data swapped in when their files
//! change, and the country files' age watched (CI-11).

use super::*;

/// Reloads the indicator lists when a file changes (CI-11: reloaded atomically
/// without pausing ingest): the new set is built here, off the ingest path, and stored in
/// the slot; the detection stage picks it up at its next batch. A list that fails to load
/// leaves the set in force and is counted.
pub(super) struct IndicatorReloader {
    pub(super) paths: Vec<PathBuf>,
    pub(super) every: Duration,
    pub(super) slot: Arc<IndicatorSlot>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) stop: Arc<AtomicBool>,
}

/// What tells a changed file from an unchanged one: modification time and length.
pub(super) fn stamps(paths: &[PathBuf]) -> Vec<Option<(std::time::SystemTime, u64)>> {
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
pub(super) fn periodically(
    stop: &AtomicBool,
    every: Duration,
    at_once: bool,
    mut tick: impl FnMut(),
) {
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
pub(super) fn on_file_change(
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
pub(super) struct Swap<T>(RwLock<Arc<T>>);

impl<T> Swap<T> {
    pub(super) fn new(value: Arc<T>) -> Self {
        Self(RwLock::new(value))
    }

    pub(super) fn load(&self) -> Arc<T> {
        match self.0.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(super) fn store(&self, value: Arc<T>) {
        match self.0.write() {
            Ok(mut g) => *g = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

/// Refreshes the country table when its RIR or CIDR files change (CI-2: the foreign/domestic
/// line follows the real RIR files), built off the ingest path and swapped in; the
/// stages use the new table from their next batch. A failed load keeps the table in force.
pub(super) struct GeoReloader {
    pub(super) geo: crate::config::GeoConfig,
    pub(super) every: Duration,
    pub(super) slot: Arc<Swap<GeoTable>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) stop: Arc<AtomicBool>,
}

impl GeoReloader {
    pub(super) fn run(self) {
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
pub(super) const GEO_AGE_EVERY: Duration = Duration::from_secs(60);

/// Warns when the country files are older than `[geo] max_age` (a carrier's engineer: the
/// selection by country is only as good as the files' date): in the log when they become
/// out of date, and in `geo_data_age_seconds` / `geo_data_stale` all along.
pub(super) struct GeoAge {
    pub(super) geo: crate::config::GeoConfig,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) metrics: Arc<Metrics>,
}

impl GeoAge {
    /// Updates the gauges; returns whether the files are out of date now.
    pub(super) fn check(&self, was_stale: bool) -> bool {
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
    pub(super) fn run(self) {
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
