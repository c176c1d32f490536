//! The server's part of the configuration (STYLE principle 8).

use mamori_share::Regime;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How the centre's HTTP face behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on. Loopback by default: put a TLS-terminating proxy in
    /// front before exposing it.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Longest a request may take, in seconds, before it is answered with 503.
    pub request_timeout_secs: u64,
    /// Lifetime of a token issued without an explicit expiry, in days.
    pub token_lifetime_days: u32,
    /// Largest TAXII envelope accepted by `POST …/objects/`, in bytes (the API root's
    /// `max_content_length`); larger ones get 413. Bigger than `body_limit_bytes` so a
    /// 10⁵-indicator feed fits in one envelope.
    pub taxii_max_content_length: usize,
    /// How often an event-stream subscriber reads the change feed when no write through
    /// this instance woke it, in milliseconds: the delay after which writes through
    /// *another* centre instance over the same database reach it.
    pub events_poll_millis: u64,
    /// Incident reports (`[server.reports]`).
    pub reports: ReportsConfig,
}

/// Incident reports' settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// A reporting regime file (TOML, as `config/regimes/default.toml`): its stages,
    /// deadlines and routes replace the embedded default regime. Unset: the default.
    pub regime: Option<PathBuf>,
}

/// A regime file that cannot be used: the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum RegimeFileError {
    /// The file cannot be read.
    #[error("cannot read the reporting regime file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid regime.
    #[error("the reporting regime file {path} is not a valid regime: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, as the regime reader says it.
        problem: String,
    },
}

impl ServerConfig {
    /// The regime `[server.reports] regime` names, read and checked; `None` when unset
    /// (the embedded default is in force). Call at start, so a bad file stops the server
    /// with an error naming the file and the fault.
    pub fn load_regime(&self) -> Result<Option<Regime>, RegimeFileError> {
        let Some(path) = &self.reports.regime else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| RegimeFileError::Read {
            path: path.clone(),
            source,
        })?;
        Regime::from_toml(&text)
            .map(Some)
            .map_err(|e| RegimeFileError::Invalid {
                path: path.clone(),
                problem: e.to_string(),
            })
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            token_lifetime_days: 90,
            taxii_max_content_length: 64 * 1024 * 1024,
            events_poll_millis: 2_000,
            reports: ReportsConfig::default(),
        }
    }
}
