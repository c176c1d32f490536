//! The conformance suite's machinery (STYLE principle 10, after Quickwit's
//! `metastore_test_suite!`): every store test is one `async fn(Store)`, instantiated by
//! [`store_test_suite!`](crate::store_test_suite) for SQLite always and for PostgreSQL
//! when `MAMORI_TEST_POSTGRES_URL` is set, each on a fresh, empty database.

use crate::{Store, StoreConfig};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

pub use tokio;

/// A fresh SQLite store in a temporary data directory (removed when the guard drops).
pub async fn fresh_sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = Store::open(&StoreConfig::sqlite_in(dir.path()))
        .await
        .expect("open a fresh SQLite store");
    (store, dir)
}

/// A fresh PostgreSQL store: a new database created on the server that
/// `MAMORI_TEST_POSTGRES_URL` names. `None` (and a line saying so) when the variable is
/// unset; a panic when it is set but the server cannot be used, or when
/// `MAMORI_REQUIRE_POSTGRES=1` and it is unset, so CI cannot skip silently.
pub async fn fresh_postgres() -> Option<Store> {
    let url = fresh_postgres_url().await?;
    let opts = PgConnectOptions::from_str(&url).expect("a valid URL");
    Some(
        Store::open_postgres(opts, 4)
            .await
            .expect("open the fresh PostgreSQL store"),
    )
}

/// Like [`fresh_postgres`], but the URL of the new database, for tests that hand it to a
/// `mamori` process.
#[allow(clippy::print_stderr)]
pub async fn fresh_postgres_url() -> Option<String> {
    let Ok(url) = std::env::var("MAMORI_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("MAMORI_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "MAMORI_REQUIRE_POSTGRES=1 but MAMORI_TEST_POSTGRES_URL is not set"
        );
        eprintln!("skipping PostgreSQL: MAMORI_TEST_POSTGRES_URL is not set");
        return None;
    };
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "mamori_test_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        std::time::UNIX_EPOCH
            .elapsed()
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let admin = PgConnectOptions::from_str(&url).expect("MAMORI_TEST_POSTGRES_URL is a valid URL");
    let mut conn = admin
        .connect()
        .await
        .expect("connect to MAMORI_TEST_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create a fresh test database");
    conn.close().await.ok();
    let base = url.split('?').next().unwrap_or(&url);
    let (server, _) = base
        .rsplit_once('/')
        .expect("MAMORI_TEST_POSTGRES_URL names a database");
    Some(format!("{server}/{name}"))
}

/// Instantiates each named `async fn(Store)` twice: `sqlite::NAME` always, and
/// `postgres::NAME` on a fresh PostgreSQL database when `MAMORI_TEST_POSTGRES_URL` is set.
///
/// ```text
/// async fn org_round_trip(store: Store) { /* … */ }
/// mamori_store::store_test_suite!(org_round_trip);
/// ```
#[macro_export]
macro_rules! store_test_suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[$crate::testing::tokio::test(crate = "mamori_store::testing::tokio", flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, _dir) = $crate::testing::fresh_sqlite().await;
                    super::$test(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[$crate::testing::tokio::test(crate = "mamori_store::testing::tokio", flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(store) = $crate::testing::fresh_postgres().await else { return };
                    super::$test(store).await;
                }
            )*
        }
    };
}

impl crate::Tx {
    /// Runs raw SQL: for tests that tamper with or sabotage the database the way an
    /// attacker or a failing disk would. Test support only (feature `testing`).
    pub async fn execute_raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        crate::backend::on_backend!(self, c => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut *c).await.map(drop))
    }

    /// Which backend, for tests whose SQL differs between them.
    pub fn is_postgres(&self) -> bool {
        self.backend() == crate::Backend::Postgres
    }
}
