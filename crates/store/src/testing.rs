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
    drop_stale_databases(&mut conn).await;
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

/// The process id a test database name carries (`mamori_test_{pid}_{seq}_{nanos}`).
fn test_database_pid(name: &str) -> Option<u32> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    name.strip_prefix("mamori_test_")?
        .split('_')
        .next()?
        .parse()
        .ok()
}

/// Drops the test databases of test processes that have ended, once per process, so a
/// long-lived cluster (a developer's, or CI's across test binaries) does not grow by one
/// database per test until the disk fills. Databases of live processes are left alone:
/// test binaries run concurrently. Failures are ignored — this is housekeeping.
async fn drop_stale_databases(conn: &mut sqlx::PgConnection) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    ONCE.call_once(|| first = true);
    if !first || !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'mamori_test_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let Some(pid) = test_database_pid(&name) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut *conn)
        .await;
    }
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

#[cfg(test)]
mod tests {
    use super::test_database_pid;

    #[test]
    fn only_our_database_names_yield_a_pid() {
        assert_eq!(test_database_pid("mamori_test_4242_3_123456"), Some(4242));
        assert_eq!(test_database_pid("mamori_test_x_3_1"), None);
        assert_eq!(test_database_pid("postgres"), None);
        // Never a name that would need quoting in DROP DATABASE.
        assert_eq!(test_database_pid("mamori_test_1_a;drop"), None);
        assert_eq!(test_database_pid("mamori_test_1_A"), None);
    }
}
