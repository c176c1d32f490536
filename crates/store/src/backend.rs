//! The two backends behind one API.

use crate::Result;
use crate::config::StoreConfig;
use crate::error::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the data directory (the embedded default).
    Sqlite,
    /// PostgreSQL (production).
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A handle on the database: cheap to clone, shared by every request.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction: every store operation runs in one. Dropped without
/// [`commit`](Tx::commit), it rolls back, so nothing half-done is ever kept.
#[derive(Debug)]
pub struct Tx {
    pub(crate) inner: TxInner,
}

#[derive(Debug)]
pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection, once per backend:
/// the SQL is written once and type-checked against each driver.
macro_rules! on_backend {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::backend::TxInner::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::backend::TxInner::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_backend;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Opens (creating if needed) the database the config names and brings its schema up
    /// to date.
    pub async fn open(cfg: &StoreConfig) -> Result<Store> {
        let url = cfg
            .database_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        match url {
            None => {
                create_private_dir(&cfg.data_dir)?;
                Store::open_sqlite(&cfg.default_sqlite_path(), cfg.max_connections).await
            }
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                let opts = PgConnectOptions::from_str(u).map_err(|source| StoreError::Open {
                    backend: "postgres",
                    source,
                })?;
                Store::open_postgres(opts, cfg.max_connections).await
            }
            Some(u) => match u
                .strip_prefix("sqlite://")
                .or_else(|| u.strip_prefix("sqlite:"))
            {
                Some(path) if !path.is_empty() => {
                    Store::open_sqlite(Path::new(path), cfg.max_connections).await
                }
                _ => Err(StoreError::UnsupportedUrl(u.chars().take(60).collect())),
            },
        }
    }

    /// Opens the SQLite database at `path` in WAL mode, creating it if missing.
    pub async fn open_sqlite(path: &Path, max_connections: u32) -> Result<Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                backend: "sqlite",
                source,
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: "sqlite",
                source,
            })?;
        Ok(Store {
            pool: Pool::Sqlite(pool),
        })
    }

    /// Connects to PostgreSQL and runs its migrations.
    pub async fn open_postgres(opts: PgConnectOptions, max_connections: u32) -> Result<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                backend: "postgres",
                source,
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: "postgres",
                source,
            })?;
        Ok(Store {
            pool: Pool::Postgres(pool),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Begins a transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so two writers wait for each other instead of failing half-way.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => {
                TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await.map_err(|source| {
                    StoreError::Db {
                        op: "begin",
                        source,
                    }
                })?)
            }
            Pool::Postgres(p) => {
                TxInner::Postgres(p.begin().await.map_err(|source| StoreError::Db {
                    op: "begin",
                    source,
                })?)
            }
        };
        Ok(Tx { inner })
    }

    /// Begins a read-only transaction: on SQLite a deferred one that takes no write lock, so
    /// reads (every request's token check among them) run beside a writer; on PostgreSQL
    /// `READ ONLY`, so a write through it is refused.
    pub async fn begin_read(&self) -> Result<Tx> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => {
                TxInner::Sqlite(p.begin().await.map_err(|source| StoreError::Db {
                    op: "begin",
                    source,
                })?)
            }
            Pool::Postgres(p) => {
                TxInner::Postgres(p.begin_with("BEGIN READ ONLY").await.map_err(|source| {
                    StoreError::Db {
                        op: "begin",
                        source,
                    }
                })?)
            }
        };
        Ok(Tx { inner })
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<()> {
        let r = match &self.pool {
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
            Pool::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
        };
        r.map_err(|source| StoreError::Db { op: "ping", source })
    }

    /// Closes every connection, waiting for those in use (at shutdown).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    /// Makes everything done in this transaction permanent.
    pub async fn commit(self) -> Result<()> {
        let r = match self.inner {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        };
        r.map_err(|source| StoreError::Db {
            op: "commit",
            source,
        })
    }

    /// Undoes everything done in this transaction.
    pub async fn rollback(self) -> Result<()> {
        let r = match self.inner {
            TxInner::Sqlite(t) => t.rollback().await,
            TxInner::Postgres(t) => t.rollback().await,
        };
        r.map_err(|source| StoreError::Db {
            op: "rollback",
            source,
        })
    }

    /// Which database this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Creates `dir` (and parents); new directories are private to the service's user,
/// because they hold the database and keys.
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| StoreError::Open {
        backend: "sqlite",
        source: sqlx::Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot create data directory {}: {e}", dir.display()),
        )),
    })
}
