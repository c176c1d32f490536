use crate::config::ServerConfig;
use mamori_core::Clock;
use mamori_oversight::Ledger;
use mamori_share::Regime;
use mamori_store::Store;
use std::sync::Arc;
use tokio::sync::watch;

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
    /// The reporting regime loaded from `[reports] regime`; `None`: the embedded default.
    pub regime: Option<Arc<Regime>>,
    /// Bumped after every successful write through this instance, so event-stream
    /// subscribers read the change feed at once instead of at their next poll. Writes
    /// through other instances reach them by the poll (DESIGN "Scale-out").
    pub changes: Arc<watch::Sender<u64>>,
}

impl AppState {
    /// State over `store` with the system clock and the embedded default regime.
    pub fn new(store: Store, config: ServerConfig, ledger: Ledger) -> Self {
        Self {
            store,
            clock: Arc::new(mamori_core::time::SystemClock),
            config: Arc::new(config),
            ledger: Arc::new(ledger),
            regime: None,
            changes: Arc::new(watch::Sender::new(0)),
        }
    }

    /// The same state with `regime` in force (from [`ServerConfig::load_regime`]).
    pub fn with_regime(mut self, regime: Regime) -> Self {
        self.regime = Some(Arc::new(regime));
        self
    }

    /// The regime in force: the configured one, else the embedded default.
    pub(crate) fn regime(&self) -> Result<&Regime, mamori_share::ShareError> {
        match &self.regime {
            Some(r) => Ok(r),
            None => Regime::default_regime(),
        }
    }

    /// Tells this instance's event-stream subscribers that something was written.
    pub(crate) fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}
