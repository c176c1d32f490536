//! The server's part of the configuration (STYLE principle 8).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            token_lifetime_days: 90,
            taxii_max_content_length: 64 * 1024 * 1024,
        }
    }
}
