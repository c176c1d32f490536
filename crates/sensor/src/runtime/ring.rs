//! The key ring as the runtime's key source, with the key-retirement policy (CI-4, CI-5;
//! DESIGN invariant 2): a key lives as long as some kept or buffered data needs it, then
//! is destroyed and its retirement recorded, so old pseudonyms can no longer be reversed.

use super::KeySource;
use crate::keys::{KeyError, KeyId, KeyRing, period_start};
use mamori_core::time::Timestamp;
use mamori_flow::CryptoPanKey;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The key ring as the runtime's key source: the key of each period, made (and its
/// creation recorded) when the period starts.
pub struct RingKeys {
    ring: KeyRing,
    period: Duration,
    /// How long kept rows may wait in the archive's buffers (their key must outlive them).
    flush: Duration,
    last: Mutex<(KeyId, CryptoPanKey)>,
}

impl std::fmt::Debug for RingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingKeys")
            .field("ring", &self.ring)
            .field("period", &self.period)
            .field("flush", &self.flush)
            .finish_non_exhaustive()
    }
}

impl RingKeys {
    /// The ring's key source, with the key of the period holding `now` made (or read).
    pub fn open(
        ring: KeyRing,
        period: Duration,
        flush: Duration,
        now: Timestamp,
    ) -> Result<Self, KeyError> {
        let first = ring.current(now, period)?;
        Ok(Self {
            ring,
            period,
            flush,
            last: Mutex::new(first),
        })
    }
}

impl KeySource for RingKeys {
    fn key_for(&self, now: Timestamp) -> (String, CryptoPanKey) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.ring.current(now, self.period) {
            Ok(k) => *last = k,
            // Until the new period's key is made and recorded, the key in use stays.
            Err(e) => tracing::warn!(error = %e, "no new pseudonym key yet; the current one stays"),
        }
        (last.0.to_string(), last.1.clone())
    }

    /// The retirement policy: a key is kept while an archive file names it, while rows
    /// buffered for the archive may still carry it (the period of `now - flush - 1 min`),
    /// and while it is the key in use; every other key is retired, each retirement
    /// recorded ([`KeyRing::retire`]).
    fn retire_unused(&self, now: Timestamp, archive_dir: &Path) -> Result<usize, String> {
        let mut needed: BTreeSet<KeyId> = self
            .ring
            .keys_in_use(archive_dir)
            .map_err(|e| e.to_string())?;
        // Rows still buffered for the archive may carry the key of the period before.
        let buffered = chrono::Duration::from_std(self.flush + Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        if let Ok(start) = period_start(now - buffered, self.period) {
            needed.insert(KeyId::for_start(start));
        }
        if let Ok(last) = self.last.lock() {
            needed.insert(last.0.clone());
        }
        self.ring
            .retire(now, &needed)
            .map(|retired| retired.len())
            .map_err(|e| e.to_string())
    }
}
