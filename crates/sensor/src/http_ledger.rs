//! The sensor's ledger served to the overseer (issue 6 part 2; CI-5, CI-9; DESIGN
//! invariant 7) with the **same paths, query parameters and JSON** as the centre's
//! (`crates/server/src/ledger.rs`, `docs/LEDGER.md`), so `mamori audit verify --url
//! https://sensor.carrier.example.jp` checks a sensor exactly as it checks the centre:
//!
//! | endpoint | who |
//! |---|---|
//! | `GET /api/v1/ledger/checkpoint` | anyone |
//! | `GET /api/v1/ledger/key` | anyone |
//! | `POST /api/v1/ledger/checkpoint` | overseer |
//! | `GET /api/v1/ledger/entries?start=&end=` | overseer |
//! | `GET /api/v1/ledger/proof/inclusion?index=&size=` | overseer |
//! | `GET /api/v1/ledger/proof/consistency?from=&to=` | overseer |
//!
//! The sensor has no user database, so "overseer" means: the request carries
//! `Authorization: Bearer <token>` where SHA-256 of the token is the digest in
//! `<data_dir>/overseer.token.sha256`, made by `mamori sensor overseer-token` ([`issue_token`]),
//! which prints the token once. Only the digest is stored, compared in constant time
//! (`subtle`), and re-read on each request so a new token replaces the old at once.
//!
//! **Architecture invariant:** file reads run on the blocking pool, never on the async
//! executor; errors are `{"error":{"code","message"}}` with the centre's status codes.
//!
//! **API boundary:** [`router`] (system clock) or [`router_with_clock`]; the runtime mounts
//! it next to `/metrics`. [`OverseerAuth`] and [`issue_token`] for the token.

use crate::ledger::{LedgerError, SensorLedger};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mamori_core::ErrorKind;
use mamori_core::time::{Clock, SystemClock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The file holding SHA-256 of the overseer's token, hex, in the data directory.
pub const TOKEN_DIGEST_FILE: &str = "overseer.token.sha256";
const TOKEN_PREFIX: &str = "mamori_overseer_";
const TEXT: &str = "text/plain; charset=utf-8";

/// Who may read entries and proofs: the holder of the token whose digest is stored.
#[derive(Debug, Clone)]
pub struct OverseerAuth {
    digest_file: PathBuf,
}

impl OverseerAuth {
    /// The overseer's token as stored in `data_dir` (by [`issue_token`]). If there is none
    /// yet, every protected request is refused until one is issued.
    pub fn from_data_dir(data_dir: &Path) -> OverseerAuth {
        OverseerAuth {
            digest_file: data_dir.join(TOKEN_DIGEST_FILE),
        }
    }

    /// Whether `token` is the overseer's.
    fn check(&self, token: &str) -> Result<(), ApiError> {
        let stored = match std::fs::read_to_string(&self.digest_file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ApiError::new(
                    ErrorKind::Unauthenticated,
                    "this sensor has no overseer token yet: its operator runs `mamori sensor overseer-token`",
                ));
            }
            Err(e) => {
                return Err(ApiError::new(
                    ErrorKind::Internal,
                    format!("reading {}: {e}", self.digest_file.display()),
                ));
            }
        };
        let Some(stored) = decode_hex32(stored.trim()) else {
            return Err(ApiError::new(
                ErrorKind::Internal,
                format!(
                    "{} does not hold a SHA-256 digest",
                    self.digest_file.display()
                ),
            ));
        };
        let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if bool::from(given.ct_eq(&stored)) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "the token is not this sensor's overseer token",
            ))
        }
    }
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Makes a new overseer token, stores its SHA-256 in `data_dir` (replacing any earlier
/// one, which stops working at once) and returns the token: the only time it is shown.
pub fn issue_token(data_dir: &Path) -> io::Result<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    zeroize::Zeroize::zeroize(&mut secret);
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir)?;
    let tmp = data_dir.join(format!("{TOKEN_DIGEST_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    crate::ledger::write_private(&tmp, &format!("{hex}\n"))?;
    std::fs::rename(&tmp, data_dir.join(TOKEN_DIGEST_FILE))?;
    Ok(token)
}

/// An error as the centre sends it: `{"error":{"code","message"}}`.
#[derive(Debug)]
struct ApiError {
    kind: ErrorKind,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::new(ErrorKind::InvalidInput, e.body_text())
    }
}

fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = if self.kind == ErrorKind::Internal {
            tracing::error!(error = %self.message, "sensor ledger endpoint failed");
            "internal error (see the sensor's log)".to_owned()
        } else {
            self.message
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.kind.code(),
                message,
            },
        };
        let mut resp = (status_of(self.kind), Json(body)).into_response();
        if self.kind == ErrorKind::Unauthenticated {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[derive(Clone)]
struct AppState {
    ledger: Arc<SensorLedger>,
    auth: OverseerAuth,
    clock: Arc<dyn Clock>,
}

impl AppState {
    fn require_overseer(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Unauthenticated,
                    "send the overseer's token as `Authorization: Bearer <token>`",
                )
            })?;
        self.auth.check(token.trim())
    }
}

/// Runs ledger file IO on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("ledger task failed: {e}")))?
        .map_err(ApiError::from)
}

/// The overseer's ledger endpoints over `ledger`, with "now" from the system clock.
pub fn router(ledger: Arc<SensorLedger>, auth: OverseerAuth) -> axum::Router {
    router_with_clock(ledger, auth, Arc::new(SystemClock))
}

/// The overseer's ledger endpoints over `ledger`, with "now" (for checkpoint times) from
/// `clock`.
pub fn router_with_clock(
    ledger: Arc<SensorLedger>,
    auth: OverseerAuth,
    clock: Arc<dyn Clock>,
) -> axum::Router {
    axum::Router::new()
        .route(
            "/api/v1/ledger/checkpoint",
            get(checkpoint).post(checkpoint_now),
        )
        .route("/api/v1/ledger/key", get(key))
        .route("/api/v1/ledger/entries", get(entries))
        .route("/api/v1/ledger/proof/inclusion", get(inclusion))
        .route("/api/v1/ledger/proof/consistency", get(consistency))
        .with_state(AppState {
            ledger,
            auth,
            clock,
        })
}

async fn checkpoint(State(s): State<AppState>) -> Result<Response, ApiError> {
    let now = s.clock.now();
    let note = blocking(move || s.ledger.checkpoint(now)).await?;
    Ok(([(header::CONTENT_TYPE, TEXT)], note).into_response())
}

async fn checkpoint_now(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    s.require_overseer(&headers)?;
    let now = s.clock.now();
    let note = blocking(move || s.ledger.checkpoint_now(now)).await?;
    Ok(([(header::CONTENT_TYPE, TEXT)], note).into_response())
}

async fn key(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, TEXT)],
        format!("{}\n", s.ledger.verifier()),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryRange {
    #[serde(default)]
    start: u64,
    end: Option<u64>,
}

#[derive(Debug, Serialize)]
struct EntryOut {
    index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

#[derive(Debug, Serialize)]
struct EntryPage {
    size: u64,
    entries: Vec<EntryOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<u64>,
}

async fn entries(
    State(s): State<AppState>,
    headers: HeaderMap,
    range: Result<Query<EntryRange>, QueryRejection>,
) -> Result<Json<EntryPage>, ApiError> {
    s.require_overseer(&headers)?;
    let Query(range) = range?;
    let ledger = s.ledger.clone();
    let (size, rows) = blocking(move || {
        let size = ledger.size()?;
        let end = range.end.unwrap_or(size).min(size);
        if range.start > end {
            return Err(LedgerError::OutOfRange(format!(
                "start {} is after end {end} (the log has {size} entries)",
                range.start
            )));
        }
        Ok((size, ledger.entries(range.start, end - range.start)?))
    })
    .await?;
    let end = range.end.unwrap_or(size).min(size);
    let last = rows.last().map_or(range.start, |(i, _)| i + 1);
    let entries = rows
        .into_iter()
        .map(|(index, bytes)| match String::from_utf8(bytes) {
            Ok(text) => EntryOut {
                index,
                data: Some(text),
                data_base64: None,
            },
            Err(e) => EntryOut {
                index,
                data: None,
                data_base64: Some(STANDARD.encode(e.as_bytes())),
            },
        })
        .collect();
    Ok(Json(EntryPage {
        size,
        entries,
        next: (last < end).then_some(last),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

#[derive(Debug, Serialize)]
struct ProofOut {
    path: Vec<String>,
}

async fn inclusion(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<ProofOut>, ApiError> {
    s.require_overseer(&headers)?;
    let Query(q) = q?;
    let proof = blocking(move || s.ledger.inclusion_proof(q.index, q.size)).await?;
    Ok(Json(ProofOut {
        path: proof.path.iter().map(|h| h.to_hex()).collect(),
    }))
}

async fn consistency(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ProofOut>, ApiError> {
    s.require_overseer(&headers)?;
    let Query(q) = q?;
    let proof = blocking(move || s.ledger.consistency_proof(q.from, q.to)).await?;
    Ok(Json(ProofOut {
        path: proof.path.iter().map(|h| h.to_hex()).collect(),
    }))
}
