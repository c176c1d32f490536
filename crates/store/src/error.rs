use mamori_core::ErrorKind;

/// What went wrong in the store. Each variant says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The database could not be opened or reached.
    #[error("cannot open the {backend} database: {source}")]
    Open {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed; the database is left at the last good version.
    #[error("migrating the {backend} database failed: {source}")]
    Migrate {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A named thing does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// What was looked up ("organisation", "user", "token").
        what: &'static str,
        /// Its id or name.
        id: String,
    },
    /// The operation conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The input breaks a rule of the data model.
    #[error("{0}")]
    Invalid(String),
    /// A stored value cannot be read back (hand-edited or corrupt row).
    #[error("stored {what} is unreadable: {detail}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// The parse error.
        detail: String,
    },
    /// The driver failed during an operation.
    #[error("database error during {op}: {source}")]
    Db {
        /// The operation that failed.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A token was missing, malformed, unknown, expired or revoked.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The system's random source failed (token generation).
    #[error("the system random source failed: {0}")]
    Random(String),
}

impl StoreError {
    /// The kind that decides how a caller (and the HTTP layer) reacts.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::UnsupportedUrl(_) | StoreError::Invalid(_) => ErrorKind::InvalidInput,
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::Open { .. } => ErrorKind::Unavailable,
            StoreError::Db { source, .. } => match source {
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                    ErrorKind::Unavailable
                }
                _ => ErrorKind::Internal,
            },
            StoreError::Migrate { .. } | StoreError::Corrupt { .. } | StoreError::Random(_) => {
                ErrorKind::Internal
            }
        }
    }

    /// Wraps a driver error from `op`, turning unique-constraint violations into
    /// [`StoreError::Conflict`] with `conflict` as the message.
    pub(crate) fn db(op: &'static str, conflict: &str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| match &source {
            sqlx::Error::Database(e) if e.is_unique_violation() => {
                StoreError::Conflict(conflict.to_owned())
            }
            sqlx::Error::Database(e) if e.is_foreign_key_violation() => {
                StoreError::Invalid(format!("{op}: a referenced row does not exist"))
            }
            _ => StoreError::Db { op, source },
        }
    }
}
