//! The overseer's API (issue 4): the public checkpoint and key, and — for the role
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
use serde::{Deserialize, Serialize};

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

/// Which entries to read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntryRange {
    /// First index (default 0).
    #[serde(default)]
    start: u64,
    /// One past the last index; at most 1,000 entries are returned per page.
    end: Option<u64>,
}

/// One entry: its index and its canonical bytes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EntryOut {
    /// Its position in the log.
    index: u64,
    /// The canonical encoding (JSON text); the leaf hash is SHA-256(0x00 ‖ UTF-8 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    /// The stored bytes in base64, present only when they are not valid UTF-8 (which
    /// means someone wrote to the table behind mamori's back).
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

/// A page of entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EntryPage {
    /// The number of entries in the log now.
    size: u64,
    /// The entries, in index order.
    entries: Vec<EntryOut>,
    /// The `start` of the next page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<u64>,
}

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
                data_base64: Some(base64_encode(e.as_bytes())),
            },
        })
        .collect();
    Ok(Json(EntryPage {
        size,
        entries,
        next: (last < end).then_some(last),
    }))
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An inclusion proof request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionQuery {
    /// The entry.
    index: u64,
    /// The tree size (a checkpoint's).
    size: u64,
}

/// A consistency proof request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyQuery {
    /// The older tree size.
    from: u64,
    /// The newer tree size.
    to: u64,
}

/// A Merkle audit path, hashes in hex (RFC 9162 order).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ProofOut {
    /// The sibling hashes, lowest first.
    path: Vec<String>,
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
    Ok(Json(ProofOut {
        path: proof.path.iter().map(|h| h.to_hex()).collect(),
    }))
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
    Ok(Json(ProofOut {
        path: proof.path.iter().map(|h| h.to_hex()).collect(),
    }))
}
