//! The concern list: rebuilt from the ledger, read by the select stage, changed by the
//! detection stage only after recording, and kept in step with the ledger and the clock
//! (CI-4, CI-5).

use super::*;

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
    pub(super) expires_ms: i64,
}

impl ListedConcern {
    pub(super) fn new(server: IpAddr, reason: String, expires_at: Timestamp) -> Self {
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
pub(super) fn replay_concerns(
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
pub(super) struct Concerns {
    pub(super) compiled: RwLock<Arc<ConcernList>>,
    pub(super) listed: Mutex<BTreeMap<IpAddr, ListedConcern>>,
}

impl Concerns {
    pub(super) fn current(&self) -> Arc<ConcernList> {
        self.compiled
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_default()
    }

    pub(super) fn publish(&self, listed: &BTreeMap<IpAddr, ListedConcern>) {
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
    pub(super) fn restore(
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

    pub(super) fn snapshot(&self) -> Vec<ListedConcern> {
        self.listed
            .lock()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Keeps the concern list in step with the ledger and the clock, with or without the
/// detection stage: applies the concern entries others append (a manual concern) and ends
/// expired listings, recording each end first.
pub(super) struct ConcernKeeper {
    pub(super) side: Selector,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) recorder: Arc<dyn Recorder>,
    /// The ledger index up to which concern entries have been applied.
    pub(super) ledger_next: u64,
    pub(super) concerns: Arc<Concerns>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) stop: Arc<AtomicBool>,
}

impl ConcernKeeper {
    pub(super) fn run(mut self) {
        let stop = Arc::clone(&self.stop);
        periodically(&stop, Duration::from_secs(1), false, || {
            self.follow_ledger();
            self.expire();
        });
    }

    /// Applies the concern entries appended to the ledger since the last look: a manual
    /// concern added or removed with `mamori sensor concern` takes effect here, after it
    /// was recorded. Our own entries come back too and change nothing.
    pub(super) fn follow_ledger(&mut self) {
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
    pub(super) fn expire(&self) {
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
