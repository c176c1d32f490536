//! The centre's HTTP face (DESIGN "server"): the JSON API under `/api/v1`, its OpenAPI
//! 3.1 document at `/api/openapi.json`, `/healthz`, and the TAXII 2.1 server under
//! `/taxii2/`.
//!
//! **Architecture invariant:** handlers are thin — they authenticate, check the role,
//! call the room that owns the act (today: the store's accounts), and map the result.
//! An error becomes an HTTP status in exactly one place ([`error::status_of`]); no
//! handler picks a status code itself. Bad input never changes stored state: every
//! write runs in one transaction that commits only when the whole request succeeded.
//!
//! **API boundary:** [`router`] builds the service from an [`AppState`]; [`ServerConfig`]
//! is this room's configuration; [`openapi`] returns the generated document.

mod admin;
mod auth;
pub mod config;
pub mod error;
mod events;
mod export;
mod findings;
mod json;
mod ledger;
mod relay;
mod reports;
mod routes;
mod state;
mod taxii;

pub use config::{RegimeFileError, ReportsConfig, ServerConfig};
pub use routes::{openapi, router};
pub use state::AppState;
