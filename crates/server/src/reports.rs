//! Incident reports to the one window (issue 8; PP-8, PP-9): flash reports as JSON or as
//! a STIX 2.1 bundle, follow-up stages, the centre's acknowledgement, and reads that show
//! each caller only what `mamori_share::view::visible` allows (DESIGN invariant 5).
//!
//! Handlers are thin: they read the request, call `mamori_share::intake` in one
//! transaction, and commit only when it succeeded, so a refused request stores nothing.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mamori_core::time::Timestamp;
use mamori_core::{ErrorKind, Sector};
use mamori_share::intake::{self, ListQuery, ReportOut, ReportPage, StatusFilter, Submitted};
use mamori_share::{FlashReport, Rating, Regime, ShareError, StageReport};
use serde::{Deserialize, Serialize};

/// The header a client sets so that a retried submission is not stored twice.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on the answer to a retried submission that stored nothing new.
const REPLAYED: &str = "idempotent-replayed";

impl From<ShareError> for ApiError {
    fn from(e: ShareError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

/// The regime in force (`[server.reports] regime`, else the embedded default).
pub(crate) fn regime(s: &AppState) -> Result<&Regime, ApiError> {
    Ok(s.regime()?)
}

fn idempotency_key(h: &HeaderMap) -> Result<Option<&str>, ApiError> {
    h.get(IDEMPOTENCY_KEY)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::new(
                    ErrorKind::InvalidInput,
                    "the Idempotency-Key header must be printable ASCII (a UUID is a good key)",
                )
            })
        })
        .transpose()
}

/// Whether the body is a STIX bundle: said by its media type, or detected from its
/// top-level `"type": "bundle"` when sent as plain JSON.
fn is_stix(h: &HeaderMap, body: &[u8]) -> bool {
    let media = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if media.starts_with("application/stix+json") || media.starts_with("application/taxii+json") {
        return true;
    }
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<&'a str>,
    }
    serde_json::from_slice::<Probe<'_>>(body).is_ok_and(|p| p.kind == Some("bundle"))
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorKind::PayloadTooLarge,
                "the request body is larger than this server accepts (body_limit_bytes): send the detail in follow-up stages",
            )
        } else {
            ApiError::new(ErrorKind::InvalidInput, r.body_text())
        }
    })
}

fn accepted(s: Submitted) -> Response {
    let location = format!("/api/v1/reports/{}", s.report.id);
    let mut resp = (StatusCode::ACCEPTED, Json(s.report)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if s.replayed {
        resp.headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    resp
}

/// Receives a flash report: JSON (`FlashReport`), or a STIX 2.1 bundle whose incident
/// (or report) object carries the TLP marking and the `x_mamori_report` property
/// (`Content-Type: application/stix+json`, or detected). `Idempotency-Key` makes a retry
/// return the first answer and store nothing.
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports", security(("bearer" = [])),
    request_body(content = FlashReport, description = "a flash report as JSON, or a STIX 2.1 bundle"),
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key store nothing new")),
    responses((status = 202, body = ReportOut, description = "received; Location names the status resource"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody, description = "not sent as application/json or application/stix+json")))]
pub(crate) async fn submit(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Like every JSON endpoint: a body not sent as JSON is refused before it is read.
    crate::json::require_json(&headers)?;
    let body = body_bytes(body)?;
    let key = idempotency_key(&headers)?;
    let stix = is_stix(&headers, &body);
    let mut tx = s.store.begin().await?;
    let flash = if stix {
        let orgs = tx.orgs().await?;
        let directory: Vec<_> = orgs.iter().map(|o| (o.id, o.name.as_str())).collect();
        mamori_share::stix_in::flash_from_bundle_bytes(
            &body,
            s.config.body_limit_bytes,
            &directory,
        )?
    } else {
        flash_from_json(&mut tx, &body).await?
    };
    let now = s.clock.now();
    // A STIX submission is kept with the report: its objects are relayed (anonymised).
    let bundle = stix.then(|| String::from_utf8_lossy(&body));
    let done = intake::submit_with(
        &mut tx,
        &caller.0,
        &flash,
        bundle.as_deref(),
        key,
        regime(&s)?,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(report = done.report.id, org = %caller.0.org.id, tlp = %flash.tlp,
        replayed = done.replayed, "report received");
    Ok(accepted(done))
}

/// A flash report sent as JSON, its audience lists' organisation names made ids
/// (`mamori_share::report::resolve_org_names`) from the directory in `tx`.
async fn flash_from_json(tx: &mut mamori_store::Tx, body: &[u8]) -> Result<FlashReport, ApiError> {
    let not_a_report = |e: serde_json::Error| {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!("the body is not a valid flash report: {e} (see docs/REPORTING.md)"),
        )
    };
    let mut v: serde_json::Value = serde_json::from_slice(body).map_err(not_a_report)?;
    let names_any = mamori_share::report::LISTS_TAKING_NAMES.iter().any(|l| {
        v.get(l)
            .and_then(|l| l.as_array())
            .is_some_and(|l| l.iter().any(|e| e.is_string()))
    });
    if names_any {
        let orgs = tx.orgs().await?;
        mamori_share::report::resolve_org_names(
            &mut v,
            orgs.iter().map(|o| (o.id, o.name.as_str())),
        )?;
    }
    serde_json::from_value(v).map_err(not_a_report)
}

pub(crate) fn report_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!(
                "{:?} is not a report id: expected a positive whole number",
                id.chars().take(40).collect::<String>()
            ),
        )
    })
}

/// Adds a follow-up stage (reporting organisation only). The same stage sent again with
/// the same content is a retry and stores nothing.
#[utoipa::path(post, path = "/api/v1/reports/{id}/stages", tag = "reports", security(("bearer" = [])),
    params(("id" = i64, Path, description = "report id")), request_body = StageReport,
    responses((status = 202, body = ReportOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn add_stage(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(stage): ApiJson<StageReport>,
) -> Result<Response, ApiError> {
    let id = report_id(&id)?;
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let done = intake::add_stage(&mut tx, &caller.0, id, &stage, regime(&s)?, now).await?;
    tx.commit().await?;
    tracing::info!(report = id, stage = %stage.stage, replayed = done.replayed, "report stage received");
    Ok(accepted(done))
}

/// The centre's acknowledgement, with optional feedback to the reporter (PP-18).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Acknowledgement {
    /// Feedback, advice or support offered to the reporter.
    #[serde(default)]
    feedback: Option<String>,
}

/// The centre acknowledges a report and may answer the reporter (centre analysts only).
#[utoipa::path(post, path = "/api/v1/reports/{id}/acknowledge", tag = "reports", security(("bearer" = [])),
    params(("id" = i64, Path, description = "report id")), request_body = Acknowledgement,
    responses((status = 200, body = ReportOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn acknowledge(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(ack): ApiJson<Acknowledgement>,
) -> Result<Json<ReportOut>, ApiError> {
    let id = report_id(&id)?;
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let out = intake::acknowledge(
        &mut tx,
        &caller.0,
        id,
        ack.feedback.as_deref(),
        regime(&s)?,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(report = id, by = %caller.0.user.id, "report acknowledged");
    Ok(Json(out))
}

/// A recipient's rating of a report (PP-13).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RatingIn {
    /// `useful`, `not_useful` or `false_positive`.
    rating: Rating,
}

/// A recipient organisation rates a report it may see (not its own). The reporter sees
/// only the counts per rating, never who rated (PP-13, PP-18).
#[utoipa::path(post, path = "/api/v1/reports/{id}/ratings", tag = "reports", security(("bearer" = [])),
    params(("id" = i64, Path, description = "report id")), request_body = RatingIn,
    responses((status = 200, body = RatingIn), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn rate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RatingIn>,
) -> Result<Json<RatingIn>, ApiError> {
    let id = report_id(&id)?;
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    intake::rate(&mut tx, &caller.0, id, r.rating, regime(&s)?, now).await?;
    tx.commit().await?;
    Ok(Json(r))
}

/// A report with its regime status (due and overdue stages), if the caller may see it;
/// 404 otherwise, exactly as for a report that does not exist.
#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = i64, Path, description = "report id")),
    responses((status = 200, body = ReportOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReportOut>, ApiError> {
    let id = report_id(&id)?;
    let now = s.clock.now();
    let mut tx = s.store.begin_read().await?;
    let out = intake::get(&mut tx, &caller.0, id, regime(&s)?, now).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Which reports to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// Only reports with an id above this (the `next` of the previous page).
    #[serde(default)]
    after: i64,
    /// At most this many (default and maximum 500).
    limit: Option<u32>,
    /// Only this sector (`electricity`, `telecom`, …).
    #[param(value_type = Option<String>)]
    sector: Option<Sector>,
    /// Only reports in this state: `overdue`, `open` or `complete`.
    #[param(value_type = Option<String>)]
    status: Option<StatusFilter>,
    /// Only reports received at or after this time (RFC 3339).
    #[param(value_type = Option<String>)]
    since: Option<Timestamp>,
}

/// The reports the caller may see, oldest first, with filters and cursor paging.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = ReportPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<ReportPage>, ApiError> {
    let q = ListQuery {
        after: p.after,
        limit: p.limit.unwrap_or(intake::MAX_PAGE),
        sector: p.sector,
        status: p.status,
        since: p.since,
    };
    let now = s.clock.now();
    let mut tx = s.store.begin_read().await?;
    let page = intake::list(&mut tx, &caller.0, &q, regime(&s)?, now).await?;
    tx.commit().await?;
    Ok(Json(page))
}
