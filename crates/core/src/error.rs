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

    /// The HTTP status for this kind: the one mapping both HTTP faces use (the centre's
    /// `status_of` and the sensor's ledger endpoints), as a plain number so this crate
    /// stays free of HTTP types.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidInput => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// The JSON body of every error response, from the centre and the sensor alike:
/// `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable machine-readable code: `invalid_input`, `unauthenticated`, `forbidden`,
    /// `not_found`, `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `unavailable`, `internal`; `method_not_allowed` for a method a path does not take.
    pub code: String,
    /// What was wrong and what to do about it.
    pub message: String,
}

impl ErrorBody {
    /// The body for an error of `kind`, its code from [`ErrorKind::code`].
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::with_code(kind.code(), message)
    }

    /// A body with a code that is not an error kind (a routing answer such as
    /// `method_not_allowed`).
    pub fn with_code(code: &str, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ErrorBody, ErrorKind};

    /// The body shape both HTTP faces send, byte for byte.
    #[test]
    fn error_body_is_error_code_message() {
        let body = ErrorBody::new(ErrorKind::NotFound, "no such entry");
        assert_eq!(
            serde_json::to_string(&body).ok().as_deref(),
            Some(r#"{"error":{"code":"not_found","message":"no such entry"}}"#)
        );
    }

    /// Every kind with its code and status: the table a client can rely on (STYLE
    /// principle 6). A new kind must be added here, and the `match`es above make the
    /// compiler ask for it.
    #[test]
    fn every_kind_has_one_code_and_one_status() {
        let table = [
            (ErrorKind::InvalidInput, "invalid_input", 400),
            (ErrorKind::Unauthenticated, "unauthenticated", 401),
            (ErrorKind::Forbidden, "forbidden", 403),
            (ErrorKind::NotFound, "not_found", 404),
            (ErrorKind::Conflict, "conflict", 409),
            (ErrorKind::PayloadTooLarge, "payload_too_large", 413),
            (
                ErrorKind::UnsupportedMediaType,
                "unsupported_media_type",
                415,
            ),
            (ErrorKind::Unavailable, "unavailable", 503),
            (ErrorKind::Internal, "internal", 500),
        ];
        for (kind, code, status) in table {
            assert_eq!(kind.code(), code, "{kind:?}");
            assert_eq!(kind.http_status(), status, "{kind:?}");
            // The serde name is the code, so a kind serialised anywhere reads the same.
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::String(code.to_owned())),
                "{kind:?}"
            );
        }
    }
}
