//! Errors as the API shows them: `{"error":{"code":"…","message":"…"}}`, with the status
//! decided here and nowhere else (STYLE principle 6).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mamori_core::ErrorKind;
use mamori_store::StoreError;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    /// What kind of failure; decides the status.
    pub kind: ErrorKind,
    /// What was wrong and what to do, for the client. For internal errors this stays in
    /// the log and the client is told only "internal error" with the request id.
    pub message: String,
}

/// The status for each kind, from [`ErrorKind::http_status`] (the one mapping the
/// centre and the sensor share).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ApiError {
    /// An error of `kind` with a message for the client.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The JSON body of every error response, shared with the sensor.
pub use mamori_core::{ErrorBody, ErrorDetail};

/// Marks a response as an internal error so the request-id layer can say which request
/// failed without the handler knowing the id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InternalErrorMarker;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.kind);
        let message = if self.kind == ErrorKind::Internal {
            tracing::error!(error = %self.message, "internal error");
            "internal error".to_owned()
        } else {
            self.message
        };
        let body = ErrorBody::new(self.kind, message);
        let mut resp = (status, Json(body)).into_response();
        match self.kind {
            ErrorKind::Unauthenticated => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ErrorKind::Internal => {
                resp.extensions_mut().insert(InternalErrorMarker);
            }
            _ => {}
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

impl From<mamori_oversight::OversightError> for ApiError {
    fn from(e: mamori_oversight::OversightError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => ApiError::new(
                ErrorKind::InvalidInput,
                format!(
                    "the JSON body does not have the expected fields: {}",
                    e.body_text()
                ),
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                ErrorKind::InvalidInput,
                format!("the body is not valid JSON: {}", e.body_text()),
            ),
            JsonRejection::MissingJsonContentType(_) => crate::json::not_json(),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                ErrorKind::PayloadTooLarge,
                "the request body is larger than this server accepts (body_limit_bytes): send less",
            ),
            other => ApiError::new(ErrorKind::InvalidInput, other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!("bad query string: {}", r.body_text()),
        )
    }
}

/// 405, in the same JSON shape: a routing answer, not an error kind of a room.
pub(crate) fn method_not_allowed(method: &axum::http::Method, path: &str) -> Response {
    let body = ErrorBody::with_code(
        "method_not_allowed",
        format!("{path} does not accept {method}: see /api/openapi.json"),
    );
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
