//! Revealing a sealed source: the "approved act recorded in the ledger" of PP-12 (DESIGN
//! invariants 6 and 7). Two people, three steps:
//!
//! 1. [`request`]: an **analyst of the coordination centre** asks, with a reason, to learn
//!    who sent a report whose source is sealed for them. The request is stored, pending.
//! 2. [`decide`]: a **different** user of the coordination centre with role officer or
//!    admin approves or refuses it, with a reason. The ledger's `Approval` entry
//!    (`subject: "source_reveal:<request>"`) is appended **before** the decision is stored,
//!    in the same transaction: no decision exists without its entry. The requester can
//!    never decide their own request.
//! 3. [`reveal`]: the requester (only) reads the source while an approval of theirs is
//!    less than [`APPROVAL_VALID_HOURS`] old. The ledger's `SourceReveal` entry is appended
//!    **before** the organisation is returned.
//!
//! Every refusal says which rule refused it: not an analyst, not a decider, own request,
//! no request, not decided yet, refused, expired, already decided, not sealed.

use crate::error::ShareError;
use crate::regime::Regime;
use crate::report::{FlashReport, Impact};
use crate::source::Sources;
use mamori_core::entry::{Act, Actor, Decision, Entry};
use mamori_core::time::Timestamp;
use mamori_core::{OrgId, OrgKind, Role, UserId};
use mamori_store::{Principal, RevealRequest, Tx};
use serde::{Deserialize, Serialize};

/// How long an approval lets the requester read the source.
pub const APPROVAL_VALID_HOURS: i64 = 24;
/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 2_000;

/// A reveal request as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevealRequestOut {
    /// Its id.
    pub id: i64,
    /// The report.
    pub report: i64,
    /// The analyst who asked.
    pub requester: UserId,
    /// Why.
    pub reason: String,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// `pending`, `approved` or `refused`.
    pub state: String,
    /// Who decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<UserId>,
    /// The decider's reasoning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    /// Until when an approval lets the requester read the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub valid_until: Option<Timestamp>,
}

/// A decision on a reveal request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RevealDecision {
    /// The requester may read the source (for 24 hours).
    Approved,
    /// The requester may not.
    Refused,
}

/// A revealed source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevealedSource {
    /// The report.
    pub report: i64,
    /// The reporting organisation.
    pub org: OrgId,
    /// Its name.
    pub name: String,
    /// The approved request this reveal used.
    pub request: i64,
}

fn out(r: RevealRequest) -> RevealRequestOut {
    let valid_until = (r.decision.as_deref() == Some("approved"))
        .then(|| {
            r.decided_at
                .map(|t| t + chrono::Duration::hours(APPROVAL_VALID_HOURS))
        })
        .flatten();
    RevealRequestOut {
        id: r.id,
        report: r.report,
        requester: r.requester,
        reason: r.reason,
        created_at: r.created_at,
        state: r.decision.unwrap_or_else(|| "pending".to_owned()),
        decided_by: r.decided_by,
        decision_reason: r.decision_reason,
        valid_until,
    }
}

fn actor(who: &Principal) -> Actor {
    Actor {
        org: Some(who.org.id),
        user: Some(who.user.id),
        name: who.user.name.clone(),
    }
}

fn check_reason(reason: &str) -> Result<(), ShareError> {
    let n = reason.chars().count();
    if reason.trim().is_empty() || n > MAX_REASON_CHARS {
        return Err(ShareError::Invalid {
            field: "reason",
            problem: format!(
                "must be 1–{MAX_REASON_CHARS} characters: say why the source is needed (it is recorded in the ledger)"
            ),
        });
    }
    Ok(())
}

fn require_analyst(who: &Principal, to: &str) -> Result<(), ShareError> {
    if who.org.kind == OrgKind::CoordinationCentre && who.user.role == Role::Analyst {
        return Ok(());
    }
    Err(ShareError::Forbidden(format!(
        "{to} needs an analyst of the coordination centre; user {:?} is {} of a {} (PP-12)",
        who.user.name,
        who.user.role.slug(),
        who.org.kind.slug()
    )))
}

/// A centre analyst asks to reveal report `id`'s sealed source.
pub async fn request(
    tx: &mut Tx,
    who: &Principal,
    id: i64,
    reason: &str,
    regime: &Regime,
    now: Timestamp,
) -> Result<RevealRequestOut, ShareError> {
    require_analyst(who, "asking to reveal a report's source")?;
    check_reason(reason)?;
    // The analyst must be able to see the report (404 otherwise, as for any report).
    crate::intake::get(tx, who, id, regime, now).await?;
    let r = tx.report(id).await?.ok_or(ShareError::NotFound(id))?;
    let flash: FlashReport = serde_json::from_str(&r.body).map_err(|e| {
        ShareError::Store(mamori_store::StoreError::Corrupt {
            what: "report body",
            detail: e.to_string(),
        })
    })?;
    let impact = Impact::from_slug(&r.impact).unwrap_or(flash.impact);
    let sources = Sources::load(tx).await?;
    if sources.sees_source(who, &r, &flash, impact, regime) {
        return Err(ShareError::Conflict(format!(
            "the source of report {id} is not sealed for you: the reporter allowed identification"
        )));
    }
    let rid = tx
        .insert_reveal_request(id, who.user.id, reason, now)
        .await?;
    let stored = tx
        .reveal_request(rid)
        .await?
        .ok_or(ShareError::NotFound(id))?;
    Ok(out(stored))
}

/// A different officer or admin of the centre approves or refuses request `rid`; the
/// ledger's `Approval` entry is appended first.
pub async fn decide(
    tx: &mut Tx,
    who: &Principal,
    rid: i64,
    decision: RevealDecision,
    reason: &str,
    now: Timestamp,
) -> Result<RevealRequestOut, ShareError> {
    if who.org.kind != OrgKind::CoordinationCentre
        || !matches!(who.user.role, Role::Officer | Role::Admin)
    {
        return Err(ShareError::Forbidden(format!(
            "deciding a reveal request needs an officer or admin of the coordination centre; user {:?} is {} of a {} (PP-12)",
            who.user.name,
            who.user.role.slug(),
            who.org.kind.slug()
        )));
    }
    check_reason(reason)?;
    let req = tx.reveal_request(rid).await?.ok_or_else(|| {
        ShareError::Store(mamori_store::StoreError::NotFound {
            what: "reveal request",
            id: rid.to_string(),
        })
    })?;
    if req.requester == who.user.id {
        return Err(ShareError::Forbidden(format!(
            "reveal request {rid} is your own: another officer or admin of the centre decides it (two people, PP-12)"
        )));
    }
    if let Some(d) = &req.decision {
        return Err(ShareError::Conflict(format!(
            "reveal request {rid} was already {d}: ask again with a new request"
        )));
    }
    let (d, slug) = match decision {
        RevealDecision::Approved => (Decision::Approved, "approved"),
        RevealDecision::Refused => (Decision::Refused, "refused"),
    };
    let act = Act::Approval {
        subject: format!("source_reveal:{rid}"),
        decision: d,
        reason: reason.to_owned(),
    };
    mamori_oversight::append(tx, &[Entry::new(now, actor(who), act)]).await?;
    tx.decide_reveal_request(rid, slug, who.user.id, reason, now)
        .await?;
    let stored = tx
        .reveal_request(rid)
        .await?
        .ok_or(ShareError::NotFound(req.report))?;
    Ok(out(stored))
}

/// The requester reads report `id`'s source under an approved, unexpired request of
/// theirs; the ledger's `SourceReveal` entry is appended first.
pub async fn reveal(
    tx: &mut Tx,
    who: &Principal,
    id: i64,
    regime: &Regime,
    now: Timestamp,
) -> Result<RevealedSource, ShareError> {
    require_analyst(who, "reading a sealed source")?;
    crate::intake::get(tx, who, id, regime, now).await?;
    let mine: Vec<RevealRequest> = tx
        .reveal_requests(id)
        .await?
        .into_iter()
        .filter(|r| r.requester == who.user.id)
        .collect();
    let valid = |r: &RevealRequest| {
        r.decision.as_deref() == Some("approved")
            && r.decided_at
                .is_some_and(|t| now < t + chrono::Duration::hours(APPROVAL_VALID_HOURS))
    };
    let Some(approved) = mine.iter().rev().find(|r| valid(r)) else {
        return Err(match mine.last() {
            None => ShareError::Forbidden(format!(
                "you have no reveal request for report {id}: ask with POST /api/v1/reports/{id}/reveal-requests (only the requester may read the source)"
            )),
            Some(r) => match r.decision.as_deref() {
                None => ShareError::Conflict(format!(
                    "reveal request {} is not approved yet: an officer or admin of the centre must decide it first",
                    r.id
                )),
                Some("refused") => ShareError::Forbidden(format!(
                    "reveal request {} was refused: {}",
                    r.id,
                    r.decision_reason.as_deref().unwrap_or("no reason given")
                )),
                Some(_) => ShareError::Conflict(format!(
                    "the approval of reveal request {} expired ({APPROVAL_VALID_HOURS} h after it was given): ask again",
                    r.id
                )),
            },
        });
    };
    let r = tx.report(id).await?.ok_or(ShareError::NotFound(id))?;
    let act = Act::SourceReveal {
        report: format!("report:{id}"),
        approval: format!("source_reveal:{}", approved.id),
        reason: approved.reason.clone(),
    };
    mamori_oversight::append(tx, &[Entry::new(now, actor(who), act)]).await?;
    let sources = Sources::load(tx).await?;
    Ok(RevealedSource {
        report: id,
        org: r.org,
        name: sources.org_name(r.org).unwrap_or_default().to_owned(),
        request: approved.id,
    })
}
