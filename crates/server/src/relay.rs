//! Revealing a sealed report source over the API (PP-12, DESIGN invariants 6 and 7): the
//! analyst's request, a different officer's or admin's decision (its `Approval` in the
//! ledger first), and the requester's read of the source (its `SourceReveal` in the
//! ledger first). The rules are `mamori_share::reveal`'s; handlers are thin.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::json::ApiJson;
use crate::reports::{regime, report_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mamori_share::reveal::{self, RevealDecision, RevealRequestOut, RevealedSource};
use serde::Deserialize;

/// Why the source is needed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevealRequestIn {
    /// The reason, recorded with the request and, on a reveal, in the ledger.
    reason: String,
}

/// The decision on a reveal request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevealDecisionIn {
    /// `approved` or `refused`.
    decision: RevealDecision,
    /// The reasoning, recorded in the ledger.
    reason: String,
}

/// A centre analyst asks to reveal a report's sealed source (PP-12).
#[utoipa::path(post, path = "/api/v1/reports/{id}/reveal-requests", tag = "reports", security(("bearer" = [])),
    params(("id" = i64, Path, description = "report id")), request_body = RevealRequestIn,
    responses((status = 201, body = RevealRequestOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn request(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevealRequestIn>,
) -> Result<(StatusCode, Json<RevealRequestOut>), ApiError> {
    let id = report_id(&id)?;
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let out = reveal::request(&mut tx, &caller.0, id, &req.reason, regime(&s)?, now).await?;
    tx.commit().await?;
    tracing::info!(report = id, request = out.id, by = %caller.0.user.id, "source reveal requested");
    Ok((StatusCode::CREATED, Json(out)))
}

/// A different officer or admin of the centre approves or refuses a reveal request; the
/// approval is in the ledger before the decision is stored.
#[utoipa::path(post, path = "/api/v1/reveal-requests/{rid}/decision", tag = "reports", security(("bearer" = [])),
    params(("rid" = i64, Path, description = "reveal request id")), request_body = RevealDecisionIn,
    responses((status = 200, body = RevealRequestOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    Path(rid): Path<String>,
    ApiJson(d): ApiJson<RevealDecisionIn>,
) -> Result<Json<RevealRequestOut>, ApiError> {
    let rid = report_id(&rid)?;
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let out = reveal::decide(&mut tx, &caller.0, rid, d.decision, &d.reason, now).await?;
    tx.commit().await?;
    tracing::info!(request = rid, state = %out.state, by = %caller.0.user.id, "source reveal decided");
    Ok(Json(out))
}

/// The requester reads a report's sealed source under an approved, unexpired request;
/// the reveal is in the ledger before the organisation is returned.
#[utoipa::path(get, path = "/api/v1/reports/{id}/source", tag = "reports", security(("bearer" = [])),
    params(("id" = i64, Path, description = "report id")),
    responses((status = 200, body = RevealedSource), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn source(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RevealedSource>, ApiError> {
    let id = report_id(&id)?;
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let out = reveal::reveal(&mut tx, &caller.0, id, regime(&s)?, now).await?;
    tx.commit().await?;
    // The organisation stays out of the log line: the ledger holds the reveal.
    tracing::info!(report = id, request = out.request, by = %caller.0.user.id, "sealed source revealed");
    Ok(Json(out))
}
