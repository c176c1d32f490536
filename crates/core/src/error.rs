//! The small set of error kinds that every library error maps to (STYLE principle 6).
//!
//! Each library crate has its own `thiserror` enum with context; its `kind()` returns one
//! of these, and the server maps a kind to an HTTP status in exactly one place.

use serde::Serialize;

/// What kind of failure an error is, as far as a caller needs to know to react.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller sent something malformed or out of range; fixing the input fixes it.
    InvalidInput,
    /// No credentials, or credentials that are unknown, expired or revoked.
    Unauthenticated,
    /// The caller is known but its role or organisation may not do this.
    Forbidden,
    /// The thing named does not exist (or is not visible to the caller).
    NotFound,
    /// The request conflicts with what is stored (a duplicate name, a revoked token…).
    Conflict,
    /// The request body is larger than the configured limit.
    PayloadTooLarge,
    /// The request body is sent as a media type the endpoint does not read (no
    /// `Content-Type`, or `text/plain` where JSON is expected); resending it with the
    /// named type fixes it.
    UnsupportedMediaType,
    /// A dependency (the database, a broker) is down or timed out; retrying may help.
    Unavailable,
    /// A bug or an unexpected state: details go to the log, not to the caller.
    Internal,
}

impl ErrorKind {
    /// A stable, machine-readable code used in JSON error bodies.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}
