//! Findings from carriers' sensors (issue 7; CI-10, CI-11): received with their TLP, and
//! shown to each caller only as the one visibility rule allows (DESIGN invariant 5).

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mamori_core::finding::Finding;
use mamori_core::tlp::{Audience, Recipient, Viewer, may_see};
use mamori_core::{ErrorKind, OrgKind, Tlp};
use serde::{Deserialize, Serialize};

/// The most findings one submission may carry.
const MAX_PER_SUBMISSION: usize = 10_000;
/// The most findings one page returns.
const MAX_PAGE: u32 = 1_000;

/// A sensor's submission.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Submission {
    /// The marking of every finding in it; TLP:AMBER (the reporting carrier and the
    /// centre) if omitted.
    #[serde(default = "amber")]
    tlp: Tlp,
    /// The findings, as `mamori detect --json` prints them (at most 10,000).
    #[schema(value_type = Vec<Object>)]
    findings: Vec<Finding>,
}

fn amber() -> Tlp {
    Tlp::Amber
}

/// How many findings were stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    /// Findings stored.
    accepted: u64,
}

/// Receives findings from a carrier's sensor (a token of a carrier organisation).
#[utoipa::path(post, path = "/api/v1/findings", tag = "findings", security(("bearer" = [])), request_body = Submission,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn submit(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(sub): ApiJson<Submission>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    if caller.0.org.kind != OrgKind::Carrier {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "findings come from carriers' sensors; {:?} is an organisation of kind {}",
                caller.0.org.name, caller.0.org.kind
            ),
        ));
    }
    if sub.findings.len() > MAX_PER_SUBMISSION {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!(
                "{} findings in one submission; send at most {MAX_PER_SUBMISSION}",
                sub.findings.len()
            ),
        ));
    }
    if let Some((i, f)) = sub
        .findings
        .iter()
        .enumerate()
        .find(|(_, f)| !(0.0..=1.0).contains(&f.score))
    {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!("finding {i}: score {} is outside 0–1", f.score),
        ));
    }
    let mut tx = s.store.begin().await?;
    let n = tx
        .insert_findings(caller.0.org.id, sub.tlp, &sub.findings, s.clock.now())
        .await?;
    tx.commit().await?;
    tracing::info!(org = %caller.0.org.id, n, tlp = %sub.tlp, "findings received");
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted: n })))
}

/// Which page of findings.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    /// Only findings with an id above this (the `next` of the previous page).
    #[serde(default)]
    after: i64,
    /// At most this many (default and maximum 1,000).
    limit: Option<u32>,
}

/// A finding as a caller may see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FindingOut {
    /// Its id.
    pub(crate) id: i64,
    /// Its marking.
    tlp: Tlp,
    /// The finding.
    #[schema(value_type = Object)]
    finding: Finding,
}

/// A page of findings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FindingPage {
    /// The findings this caller may see.
    findings: Vec<FindingOut>,
    /// The `after` of the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<i64>,
}

/// The findings the caller may see under their TLP markings.
#[utoipa::path(get, path = "/api/v1/findings", tag = "findings", security(("bearer" = [])), params(Page),
    responses((status = 200, body = FindingPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<FindingPage>, ApiError> {
    let limit = page.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let mut tx = s.store.begin_read().await?;
    let rows = tx.findings(page.after, limit).await?;
    let centres = centres(&mut tx).await?;
    tx.commit().await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let findings = visible(rows, &centres, &caller.0);
    Ok(Json(FindingPage { findings, next }))
}

/// The coordination centres: a carrier reports to them, so they are every finding's
/// audience.
pub(crate) async fn centres(
    tx: &mut mamori_store::Tx,
) -> Result<std::collections::BTreeSet<mamori_core::OrgId>, ApiError> {
    Ok(tx
        .orgs()
        .await?
        .into_iter()
        .filter(|o| o.kind == OrgKind::CoordinationCentre)
        .map(|o| o.id)
        .collect())
}

/// **The TLP gate of every findings output** (the list and the event stream): keeps the
/// findings `me` may see under `mamori_core::tlp::may_see`, in order. A finding's audience
/// is the centres, its originator the carrier that sent it.
pub(crate) fn visible(
    rows: Vec<mamori_store::StoredFinding>,
    centres: &std::collections::BTreeSet<mamori_core::OrgId>,
    me: &mamori_store::Principal,
) -> Vec<FindingOut> {
    let mut audience = Audience {
        organisations: centres.clone(),
        ..Audience::default()
    };
    let viewer = Viewer::Member(Recipient {
        user: me.user.id,
        org: me.org.id,
        clearance: me.user.clearance,
        client_of: &me.client_of,
    });
    rows.into_iter()
        .filter(|r| {
            audience.originator = Some(r.org);
            may_see(r.tlp, &audience, viewer)
        })
        .map(|r| FindingOut {
            id: r.id,
            tlp: r.tlp,
            finding: r.finding,
        })
        .collect()
}
