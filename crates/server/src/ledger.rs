//! The overseer's API (CI-5, CI-9, AN-7): the public checkpoint and key, and — for the role
//! `overseer` — entries and proofs, paged and bounded.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::json::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use mamori_core::{ErrorKind, Role};
use mamori_ledger::wire::{ConsistencyQuery, EntryPage, EntryRange, InclusionQuery, ProofOut};

const OVERSEER: &[Role] = &[Role::Overseer];
const CHECKPOINT_MEDIA: &str = "text/plain; charset=utf-8";

/// The latest signed checkpoint (C2SP tlog-checkpoint in a signed note), signing a new one
/// first if the log has grown and the last is older than the configured interval. Public.
#[utoipa::path(get, path = "/api/v1/ledger/checkpoint", tag = "ledger",
    responses((status = 200, description = "signed note", content_type = "text/plain")))]
pub(crate) async fn checkpoint(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let cp = s.ledger.checkpoint(&s.store, s.clock.now(), false).await?;
    Ok(([(header::CONTENT_TYPE, CHECKPOINT_MEDIA)], cp.note))
}

/// Signs a checkpoint of the log as it is now (role overseer).
#[utoipa::path(post, path = "/api/v1/ledger/checkpoint", tag = "ledger", security(("bearer" = [])),
    responses((status = 200, description = "signed note", content_type = "text/plain"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn checkpoint_now(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(OVERSEER, "asking for a fresh checkpoint")?;
    let cp = s.ledger.checkpoint(&s.store, s.clock.now(), true).await?;
    Ok(([(header::CONTENT_TYPE, CHECKPOINT_MEDIA)], cp.note))
}

/// The key checkpoints are signed with, in `name+keyid+base64` form. Public; the overseer
/// should also hold a copy obtained out of band, and trust that one.
#[utoipa::path(get, path = "/api/v1/ledger/key", tag = "ledger",
    responses((status = 200, description = "verifier key", content_type = "text/plain")))]
pub(crate) async fn key(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CHECKPOINT_MEDIA)],
        format!("{}\n", s.ledger.verifier()),
    )
}

// The request and response shapes are `mamori_ledger::wire`'s, shared with the sensor's
// ledger endpoints and the verifier, so the JSON cannot drift between them.

/// Ledger entries `[start, end)` (role overseer).
#[utoipa::path(get, path = "/api/v1/ledger/entries", tag = "ledger", security(("bearer" = [])), params(EntryRange),
    responses((status = 200, body = EntryPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn entries(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(range): ApiQuery<EntryRange>,
) -> Result<Json<EntryPage>, ApiError> {
    caller.require(OVERSEER, "reading the ledger")?;
    let mut tx = s.store.begin_read().await?;
    let size = tx.ledger_size().await?;
    let end = range.end.unwrap_or(size).min(size);
    if range.start > end {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!(
                "start {} is after end {end} (the log has {size} entries)",
                range.start
            ),
        ));
    }
    let rows = mamori_oversight::entries(&mut tx, range.start, end - range.start).await?;
    tx.commit().await?;
    Ok(Json(EntryPage::new(size, range.start, end, rows)))
}

/// Proof that entry `index` is in the tree of `size` entries (role overseer).
#[utoipa::path(get, path = "/api/v1/ledger/proof/inclusion", tag = "ledger", security(("bearer" = [])), params(InclusionQuery),
    responses((status = 200, body = ProofOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn inclusion(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<ProofOut>, ApiError> {
    caller.require(OVERSEER, "reading ledger proofs")?;
    let mut tx = s.store.begin_read().await?;
    let proof = mamori_oversight::inclusion_proof(&mut tx, q.index, q.size).await?;
    tx.commit().await?;
    Ok(Json(ProofOut::new(&proof.path)))
}

/// Proof that the tree of `to` entries extends the tree of `from` entries (role overseer).
#[utoipa::path(get, path = "/api/v1/ledger/proof/consistency", tag = "ledger", security(("bearer" = [])), params(ConsistencyQuery),
    responses((status = 200, body = ProofOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn consistency(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ProofOut>, ApiError> {
    caller.require(OVERSEER, "reading ledger proofs")?;
    let mut tx = s.store.begin_read().await?;
    let proof = mamori_oversight::consistency_proof(&mut tx, q.from, q.to).await?;
    tx.commit().await?;
    Ok(Json(ProofOut::new(&proof.path)))
}
