//! Where the sensor's runtime records its sensitive acts (DESIGN invariant 7; REQUIREMENTS
//! CI-4, CI-5, CI-9): re-identifications, concern-list changes, queries of kept records and
//! deletions happen at the carrier, so they go into the sensor's own verifiable ledger.
//!
//! The runtime sees only this trait, so the pipeline and the reaper are tested without a
//! signing key, and the ledger is tested without a pipeline.

use mamori_core::entry::Entry;

/// Durable, ordered recording of ledger entries.
pub trait Recorder: Send + Sync {
    /// Appends `entries` durably and in order, returning the index of the first. An error
    /// means nothing was recorded, and the act the entries describe must not happen (or,
    /// for a deletion already done, must be retried until it is recorded).
    fn record(&self, entries: &[Entry]) -> std::io::Result<u64>;

    /// Hands every recorded entry from index `start` on to `visit`, in order, and returns
    /// the index after the last one: what the runtime rebuilds its concern list from at
    /// start, and how it follows listings appended by others while running (a manual
    /// concern from `mamori sensor concern`). An entry that cannot be read is an error.
    fn read_from(&self, start: u64, visit: &mut dyn FnMut(&Entry)) -> std::io::Result<u64>;
}
