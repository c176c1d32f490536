//! The overseer's log (DESIGN invariant 7; REQUIREMENTS CI-5, CI-6, CI-9, AN-7).
//!
//! Every access to communications information, re-identification, approval, measure,
//! deletion, TLP override or source reveal, and token issue or revocation becomes an
//! [`Entry`] appended to an RFC 6962 Merkle log **in the same database transaction as the
//! act itself**: if the append fails the transaction fails, so the act does not happen.
//! The log's checkpoints are signed with the deployment's Ed25519 key, and the overseer
//! verifies them — and every entry — with `mamori audit verify`, trusting nothing but the
//! public key and its own last saved checkpoint.
//!
//! **Architecture invariant:** nothing here updates or deletes a ledger row. Entries have
//! one canonical byte encoding ([`entry`], documented in `docs/LEDGER.md`); the leaf hash
//! is over exactly those bytes. Proofs read O(log n) stored nodes, never the whole log.
//!
//! **API boundary:** [`append`] (in the caller's [`mamori_store::Tx`]), [`Ledger`] (the
//! signing key: [`Ledger::checkpoint`]), [`inclusion_proof`], [`consistency_proof`],
//! [`entries`], [`counts`], the act helpers in [`acts`], and [`OversightError`].

pub mod acts;
pub use mamori_core::entry;
mod error;
mod key;
mod log;

pub use entry::{Act, Actor, Entry};
pub use error::OversightError;
pub use key::{KEY_FILE, LedgerConfig, PUBLIC_KEY_FILE, read_verifier};
pub use log::{
    Ledger, MAX_ENTRIES_PER_PAGE, append, consistency_proof, counts, entries, inclusion_proof, root,
};

/// Shorthand for results of this crate.
pub type Result<T, E = OversightError> = std::result::Result<T, E>;
