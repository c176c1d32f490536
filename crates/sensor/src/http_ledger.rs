//! The sensor's ledger served to the overseer (issue 6 part 2; CI-5, CI-9; DESIGN
//! invariant 7) with the **same paths, query parameters and JSON** as the centre's
//! (`crates/server/src/ledger.rs`, `docs/LEDGER.md`), so `mamori audit verify --url
//! http://sensor.carrier.example.jp:9464` (the sensor serves plain HTTP) checks a sensor
//! exactly as it checks the centre:
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
//! The runtime's `GET /status` (it names the servers on the concern list) takes the
//! overseer's token or the carrier's operator token ([`StatusAuth`], made by `mamori sensor
//! operator-token`); `GET /metrics` is open and holds counters only.
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
//! it next to `/metrics`. [`OverseerAuth`] and [`issue_token`] for the overseer's token;
//! [`StatusAuth`] and [`issue_token_for`] with a [`TokenHolder`] for `/status`.

use crate::ledger::{LedgerError, SensorLedger};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mamori_core::ErrorKind;
use mamori_core::time::{Clock, SystemClock};
use mamori_ledger::wire::{ConsistencyQuery, EntryPage, EntryRange, InclusionQuery, ProofOut};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The file holding SHA-256 of the overseer's token, hex, in the data directory.
pub const TOKEN_DIGEST_FILE: &str = "overseer.token.sha256";
/// The file holding SHA-256 of the carrier's operator token (for `/status`), hex.
pub const OPERATOR_TOKEN_DIGEST_FILE: &str = "operator.token.sha256";
const TEXT: &str = "text/plain; charset=utf-8";

/// Who a sensor token belongs to. Each kind has its own digest file, so issuing one never
/// revokes the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHolder {
    /// The independent overseer: the ledger's entries and proofs, and `/status`.
    Overseer,
    /// The carrier's own operators (`mamori sensor status`, their monitoring): `/status`,
    /// never the ledger's entries.
    Operator,
}

impl TokenHolder {
    fn digest_file(self) -> &'static str {
        match self {
            TokenHolder::Overseer => TOKEN_DIGEST_FILE,
            TokenHolder::Operator => OPERATOR_TOKEN_DIGEST_FILE,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            TokenHolder::Overseer => "mamori_overseer_",
            TokenHolder::Operator => "mamori_operator_",
        }
    }
}

/// One holder's stored digest.
#[derive(Debug, Clone)]
struct StoredDigest {
    file: PathBuf,
}

impl StoredDigest {
    fn of(data_dir: &Path, holder: TokenHolder) -> StoredDigest {
        StoredDigest {
            file: data_dir.join(holder.digest_file()),
        }
    }

    /// `Ok(None)`: no token issued yet; `Ok(Some(matches))` otherwise.
    fn matches(&self, token: &str) -> Result<Option<bool>, ApiError> {
        let stored = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ApiError::new(
                    ErrorKind::Internal,
                    format!("reading {}: {e}", self.file.display()),
                ));
            }
        };
        let Some(stored) = decode_hex32(stored.trim()) else {
            return Err(ApiError::new(
                ErrorKind::Internal,
                format!("{} does not hold a SHA-256 digest", self.file.display()),
            ));
        };
        let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        Ok(Some(bool::from(given.ct_eq(&stored))))
    }
}

/// Who may read entries and proofs: the holder of the token whose digest is stored.
#[derive(Debug, Clone)]
pub struct OverseerAuth {
    digest: StoredDigest,
}

impl OverseerAuth {
    /// The overseer's token as stored in `data_dir` (by [`issue_token`]). If there is none
    /// yet, every protected request is refused until one is issued.
    pub fn from_data_dir(data_dir: &Path) -> OverseerAuth {
        OverseerAuth {
            digest: StoredDigest::of(data_dir, TokenHolder::Overseer),
        }
    }

    /// Whether `token` is the overseer's.
    fn check(&self, token: &str) -> Result<(), ApiError> {
        match self.digest.matches(token)? {
            Some(true) => Ok(()),
            Some(false) => Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "the token is not this sensor's overseer token",
            )),
            None => Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "this sensor has no overseer token yet: its operator runs `mamori sensor overseer-token`",
            )),
        }
    }
}

/// Who may read the sensor's `/status` (its concern list names servers; CI-5): the carrier's operator token or the overseer's.
#[derive(Debug, Clone)]
pub struct StatusAuth {
    operator: StoredDigest,
    overseer: StoredDigest,
}

impl StatusAuth {
    /// The tokens as stored in `data_dir`; with neither issued every request is refused.
    pub fn from_data_dir(data_dir: &Path) -> StatusAuth {
        StatusAuth {
            operator: StoredDigest::of(data_dir, TokenHolder::Operator),
            overseer: StoredDigest::of(data_dir, TokenHolder::Overseer),
        }
    }

    /// `Ok` when `headers` carry the operator's or the overseer's token; otherwise why not,
    /// as a response (401, the centre's error body, `WWW-Authenticate: Bearer`).
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), Refused> {
        self.check(headers).map_err(Refused)
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = bearer(
            headers,
            "an operator token (`mamori sensor operator-token`)",
        )?;
        let operator = self.operator.matches(token)?;
        let overseer = self.overseer.matches(token)?;
        match (operator, overseer) {
            (Some(true), _) | (_, Some(true)) => Ok(()),
            (None, None) => Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "this sensor has no operator token yet: run `mamori sensor operator-token` \
                 on it and send the token printed",
            )),
            _ => Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "the token is neither this sensor's operator token nor its overseer's",
            )),
        }
    }
}

/// A request [`StatusAuth`] refused; its response says what to send.
#[derive(Debug)]
pub struct Refused(ApiError);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

/// The token of `Authorization: Bearer <token>`, or a 401 saying what to send.
fn bearer<'h>(headers: &'h HeaderMap, what: &str) -> Result<&'h str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthenticated,
                format!("send {what} as `Authorization: Bearer <token>`"),
            )
        })
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
    issue_token_for(data_dir, TokenHolder::Overseer)
}

/// As [`issue_token`], for `holder` (each holder's token replaces only its own earlier
/// one).
pub fn issue_token_for(data_dir: &Path, holder: TokenHolder) -> io::Result<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    let token = format!("{}{}", holder.prefix(), URL_SAFE_NO_PAD.encode(secret));
    zeroize::Zeroize::zeroize(&mut secret);
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir)?;
    let file = holder.digest_file();
    let tmp = data_dir.join(format!("{file}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    crate::ledger::write_private(&tmp, &format!("{hex}\n"))?;
    std::fs::rename(&tmp, data_dir.join(file))?;
    Ok(token)
}

/// An error as the centre sends it: `{"error":{"code","message"}}`.
#[derive(Debug)]
struct ApiError {
    kind: ErrorKind,
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = if self.kind == ErrorKind::Internal {
            tracing::error!(error = %self.message, "sensor ledger endpoint failed");
            "internal error (see the sensor's log)".to_owned()
        } else {
            self.message
        };
        let body = mamori_core::ErrorBody::new(self.kind, message);
        // The centre's status for each kind: one mapping for both HTTP faces.
        let status = StatusCode::from_u16(self.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(body)).into_response();
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
        let token = bearer(headers, "the overseer's token")?;
        self.auth.check(token)
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

// The request and response shapes are `mamori_ledger::wire`'s, the centre's own, so the
// verifier reads both servers with one parser.

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
    Ok(Json(EntryPage::new(size, range.start, end, rows)))
}

async fn inclusion(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<ProofOut>, ApiError> {
    s.require_overseer(&headers)?;
    let Query(q) = q?;
    let proof = blocking(move || s.ledger.inclusion_proof(q.index, q.size)).await?;
    Ok(Json(ProofOut::new(&proof.path)))
}

async fn consistency(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ProofOut>, ApiError> {
    s.require_overseer(&headers)?;
    let Query(q) = q?;
    let proof = blocking(move || s.ledger.consistency_proof(q.from, q.to)).await?;
    Ok(Json(ProofOut::new(&proof.path)))
}
