//! Extractors whose rejections are our JSON errors, not axum's plain-text ones, and the
//! one rule for which `Content-Type` is JSON, so that every JSON endpoint refuses any other
//! type with the same 415 and the same message (the TAXII endpoints answer 415 too, as
//! TAXII error messages).

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use mamori_core::ErrorKind;
use serde::de::DeserializeOwned;

/// The answer to a body sent without a JSON media type: 415, naming the header to send.
pub(crate) fn not_json() -> ApiError {
    ApiError::new(
        ErrorKind::UnsupportedMediaType,
        "send the body as JSON with the header Content-Type: application/json",
    )
}

/// Whether the request says its body is JSON: `application/json` or any
/// `application/…+json` (such as `application/stix+json`), parameters allowed — the rule
/// axum's `Json` applies, so every endpoint accepts the same types.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(media) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json") && sub.len() > "+json".len())
}

/// Refuses a body that is not sent as JSON, before anything reads it (see [`not_json`]).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if is_json(headers) {
        Ok(())
    } else {
        Err(not_json())
    }
}

/// A JSON body; malformed JSON → 400, too large → 413, not sent as JSON → 415, all as
/// `{"error":…}`.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// A query string; malformed → 400 as `{"error":…}`.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(v) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(ct: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        h
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/stix+json;version=2.1",
            "application/taxii+json",
        ] {
            assert!(is_json(&with(Some(ok))), "{ok}");
        }
        for bad in [
            None,
            Some(""),
            Some("text/plain"),
            Some("text/json"),
            Some("application/+json"),
            Some("application/jsonx"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert!(!is_json(&with(bad)), "{bad:?}");
        }
    }
}
