//! The crate's one error type (STYLE principle 6).

use mamori_core::ErrorKind;
use mamori_store::StoreError;

/// Everything that can go wrong receiving, storing or showing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// A field of a report or stage breaks a rule.
    #[error("`{field}` {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what is accepted.
        problem: String,
    },
    /// A STIX bundle was refused (malformed, invalid, unknown marking, too large).
    #[error("STIX bundle refused: {0}")]
    Stix(#[from] mamori_stix::Error),
    /// A regime file breaks a rule.
    #[error("reporting regime {name:?}: {problem}")]
    Regime {
        /// The regime's name (or the file).
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// No such report, or one the caller may not see (the two are not told apart, so
    /// that the existence of a report is not disclosed).
    #[error("report {0} does not exist or is not visible to you")]
    NotFound(i64),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with what is stored (idempotency key reused for another
    /// body, a stage already received with other content).
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger could not record an act (so the act did not happen).
    #[error(transparent)]
    Ledger(#[from] mamori_oversight::OversightError),
}

impl ShareError {
    /// The kind that decides how a caller (and the HTTP layer) reacts.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ShareError::Invalid { .. } => ErrorKind::InvalidInput,
            ShareError::Stix(e) => e.kind(),
            ShareError::Regime { .. } => ErrorKind::Internal,
            ShareError::NotFound(_) => ErrorKind::NotFound,
            ShareError::Forbidden(_) => ErrorKind::Forbidden,
            ShareError::Conflict(_) => ErrorKind::Conflict,
            ShareError::Store(e) => e.kind(),
            ShareError::Ledger(e) => e.kind(),
        }
    }
}
