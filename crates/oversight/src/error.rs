use mamori_core::ErrorKind;
use mamori_store::StoreError;

/// What went wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum OversightError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Merkle math or a signature failed (on stored data: corruption).
    #[error("ledger: {0}")]
    Ledger(#[from] mamori_ledger::Error),
    /// The signing key could not be read or written.
    #[error("ledger key {path}: {detail}")]
    Key {
        /// The key file.
        path: String,
        /// What went wrong and what to do.
        detail: String,
    },
    /// An entry's bytes are not the canonical encoding of an entry.
    #[error(transparent)]
    Encoding(#[from] mamori_core::entry::EntryError),
    /// A request named entries or sizes the log does not have.
    #[error("{0}")]
    OutOfRange(String),
}

impl OversightError {
    /// The kind that decides how a caller (and the HTTP layer) reacts.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OversightError::Store(e) => e.kind(),
            OversightError::OutOfRange(_) => ErrorKind::InvalidInput,
            OversightError::Ledger(_)
            | OversightError::Key { .. }
            | OversightError::Encoding(_) => ErrorKind::Internal,
        }
    }
}
