use crate::config::ServerConfig;
use mamori_core::Clock;
use mamori_oversight::Ledger;
use mamori_store::Store;
use std::sync::Arc;

/// What every request handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Where "now" comes from (a manual clock in tests of expiry).
    pub clock: Arc<dyn Clock>,
    /// The server's settings.
    pub config: Arc<ServerConfig>,
    /// The overseer's log: its signing key and checkpoint policy.
    pub ledger: Arc<Ledger>,
}

impl AppState {
    /// State over `store` with the system clock.
    pub fn new(store: Store, config: ServerConfig, ledger: Ledger) -> Self {
        Self {
            store,
            clock: Arc::new(mamori_core::time::SystemClock),
            config: Arc::new(config),
            ledger: Arc::new(ledger),
        }
    }
}
