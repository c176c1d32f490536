//! mamori's persistence: one API over SQLite (the embedded default, WAL mode, in a data
//! directory) and PostgreSQL (the production store, selected by a `postgres://` URL).
//!
//! **Architecture invariant:** every operation exists once, on [`Tx`], and runs inside a
//! transaction the caller owns — so an act and its ledger entry can commit together
//! (DESIGN invariant 7). The SQL of an operation is written once and expanded for each
//! backend by the `on_backend!` macro; where the dialects differ the migrations differ,
//! not the operations. Each backend has its own migrations, run at open.
//!
//! **API boundary:** [`Store`] (open, migrate, begin, ping), [`Tx`] (the operations),
//! the row types in [`accounts`], [`stix_objects`] and [`relay`], [`StoreError`] with its [`mamori_core::ErrorKind`], and,
//! behind the `testing` feature, the conformance-suite macro [`store_test_suite!`].
//!
//! Why sqlx and not an ORM: one async API for both databases, migrations embedded at
//! compile time with no database needed to build, and plain SQL a DBA can read.

pub mod accounts;
mod backend;
pub mod config;
mod error;
pub mod events;
pub mod findings;
pub mod ledger;
pub mod relay;
pub mod reports;
pub mod stix_objects;
pub mod token;

#[cfg(feature = "testing")]
pub mod testing;

pub use accounts::{NewOrg, NewUser, Org, TokenInfo, User};
pub use backend::{Backend, Store, Tx};
pub use config::StoreConfig;
pub use error::StoreError;
pub use events::{ShareEvent, ShareEventKind};
pub use findings::StoredFinding;
pub use ledger::{LedgerLeaf, LedgerNode, StoredCheckpoint};
pub use relay::{OrgIdentifier, ReportRelay, RevealRequest};
pub use reports::{NewReport, ReportCounts, ReportQuery, StoredReport, StoredStage};
pub use stix_objects::{NewStixObject, StixQuery, StoredStixObject, TaxiiCollection, VersionMatch};
pub use token::{Principal, TokenSecret};

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
