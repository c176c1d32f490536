//! What the server's in-process tests share: the fixed start time and a centre — a
//! bootstrapped administrator, a ledger key, and the router over the given store.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // test support

use axum::Router;
use chrono::Duration;
use mamori_core::time::{ManualClock, Timestamp, from_millis};
use mamori_server::{AppState, ServerConfig, router};
use mamori_store::Store;
use std::sync::Arc;

/// The tests' "now" at start.
pub fn t0() -> Timestamp {
    from_millis(1_790_000_000_000).unwrap()
}

/// A centre under test.
pub struct Centre {
    /// The router, as `mamori serve` mounts it.
    pub app: Router,
    /// The store behind it.
    pub store: Store,
    /// "Now", moved by the test.
    pub clock: Arc<ManualClock>,
    /// The first administrator's token.
    pub admin: String,
    /// The ledger's key directory (kept alive with the centre).
    pub keys: tempfile::TempDir,
}

impl Centre {
    /// Bootstraps the administrator in `store` and builds the router with `config`.
    pub async fn start(store: Store, config: ServerConfig) -> Centre {
        let clock = Arc::new(ManualClock::new(t0()));
        let mut tx = store.begin().await.unwrap();
        let (_, _, secret) = tx
            .bootstrap_admin("Centre", "admin", Duration::days(30), t0())
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
        let keys = tempfile::tempdir().unwrap();
        let (ledger, _) = mamori_oversight::Ledger::open(keys.path(), &Default::default()).unwrap();
        let mut state = AppState::new(store.clone(), config, ledger);
        state.clock = clock.clone();
        Centre {
            app: router(state),
            store,
            clock,
            admin: secret.expose().to_owned(),
            keys,
        }
    }
}
