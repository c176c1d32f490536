//! The centre's router on a SQLite store, for the TAXII benchmark
//! (`crates/server/benches/taxii_vs_medallion.py`, `docs/benchmarks/taxii.md`): the same
//! router `mamori serve` runs, without the sensor's and detectors' crates, so a release
//! build for the benchmark stays short.
//!
//! `cargo run --release -p mamori-server --example taxii_bench_server -- DATA_DIR [PG_URL]`
//! prints `ADDR TOKEN` (the first administrator's) on one line, then serves until killed.
//! With `PG_URL` (an empty PostgreSQL database) the store is PostgreSQL instead of SQLite.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use mamori_server::{AppState, ServerConfig, router};
use mamori_store::{Store, StoreConfig};
use std::io::Write;
use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: taxii_bench_server DATA_DIR"),
    );
    let store = Store::open(&StoreConfig {
        database_url: std::env::args().nth(2),
        max_connections: 8,
        ..StoreConfig::sqlite_in(&dir)
    })
    .await
    .unwrap();
    let now = mamori_core::Clock::now(&mamori_core::time::SystemClock);
    let mut tx = store.begin().await.unwrap();
    let (_, _, secret) = tx
        .bootstrap_admin("Centre", "admin", chrono::Duration::days(1), now)
        .await
        .unwrap()
        .expect("an empty data directory");
    tx.commit().await.unwrap();
    let config = ServerConfig {
        request_timeout_secs: 600,
        taxii_max_content_length: 256 << 20,
        ..ServerConfig::default()
    };
    let (ledger, _) = mamori_oversight::Ledger::open(&dir, &Default::default()).unwrap();
    let state = AppState::new(store, config, ledger);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{} {}", listener.local_addr().unwrap(), secret.expose());
    std::io::stdout().flush().unwrap();
    axum::serve(listener, router(state)).await.unwrap();
}
