//! The window's acts, inside the caller's store transaction: submit a flash report
//! (idempotently), add a stage, acknowledge, get, list.
//!
//! **Architecture invariant:** every report handed back goes through [`crate::view::reveal`]
//! first, including the one just submitted; the rendered form ([`ReportOut`]) shows the
//! audience only to the reporter and the centre's analysts, and the reporting organisation
//! only where [`crate::source::Sources::sees_source`] allows (PP-12: others — the centre's
//! analysts included — learn what happened, not who reported it). Accepting a report and
//! adding a stage also write its relayed copy ([`crate::relay`]) in the same transaction. Every check runs before the
//! first write, and a failed write is never followed by another in the same transaction
//! (PostgreSQL spoils a transaction after an error), so a refused request stores nothing.

use crate::error::ShareError;
use crate::regime::Regime;
use crate::regime::{ReportFacts, Status, status};
use crate::report::{Cause, FlashReport, Impact, Purpose, Rating, StageReport};
use crate::source::{RelayOut, SourceOut, Sources, routed};
use crate::view::{ReportAudience, ReportViewer, Visible, reveal};
use mamori_core::time::Timestamp;
use mamori_core::tlp::Audience;
use mamori_core::{OrgId, OrgKind, Role, Sector, Tlp};
use mamori_store::{NewReport, Principal, ReportQuery, StoredReport, StoredStage, Tx};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 200;
/// Most reports in one page.
pub const MAX_PAGE: u32 = 500;

/// A follow-up stage as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageOut {
    /// When the centre received it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: Timestamp,
    /// The stage as sent.
    #[serde(flatten)]
    pub stage: StageReport,
}

/// Who a report is shared with: shown to its reporter and the centre's analysts only (the
/// reporter itself only where the source is not sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AudienceOut {
    /// The reporting organisation: only where the source is not sealed (PP-12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporter: Option<OrgId>,
    /// Organisations it is shared with: the centre, routed authorities, `share_with`.
    pub organisations: BTreeSet<OrgId>,
    /// Named individuals.
    pub individuals: BTreeSet<mamori_core::UserId>,
    /// Organisations that never see it.
    pub excluded: BTreeSet<OrgId>,
}

/// How recipients rated a report (PP-13, PP-18): counts of organisations per rating, never
/// who. Shown to the reporter and the centre's analysts only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ratings {
    /// Organisations that found it useful.
    pub useful: i64,
    /// Organisations that did not.
    pub not_useful: i64,
    /// Organisations that found it a false positive.
    pub false_positive: i64,
}

/// A report as one caller may see it: the status resource of the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportOut {
    /// Its id.
    pub id: i64,
    /// Its marking.
    pub tlp: Tlp,
    /// Held in confidence (PP-22).
    pub confidential: bool,
    /// Its sector.
    pub sector: Sector,
    /// The affected service.
    pub affected_service: String,
    /// The impact as now assessed.
    pub impact: Impact,
    /// The cause as now assessed (PP-15).
    pub cause: Cause,
    /// What the information may be used for (PP-10).
    pub purposes: BTreeSet<Purpose>,
    /// When the incident was detected.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub detected_at: Timestamp,
    /// When the centre received the flash report.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: Timestamp,
    /// The flash report's text.
    pub text: String,
    /// Follow-up stages received, oldest first.
    pub stages: Vec<StageOut>,
    /// Where each stage and the centre's duties stand under the regime.
    pub status: Status,
    /// The centre's feedback to the reporter (PP-18), shown to the reporter and the centre.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// The reporter and the audience: only for the reporter and the centre's analysts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<AudienceOut>,
    /// What recipients said of it: only for the reporter and the centre's analysts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratings: Option<Ratings>,
    /// Who reported it, or the seal over it (PP-12; see `mamori_share::source`).
    pub source: SourceOut,
    /// Where its anonymised, relayed copy stands: only for the reporter and the centre's
    /// analysts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayOut>,
}

/// The result of a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// The report, as the submitter sees it.
    pub report: ReportOut,
    /// Whether this was a retry of an earlier submission (nothing new was stored).
    pub replayed: bool,
}

/// Which reports a list shows, by regime status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StatusFilter {
    /// A stage or a centre duty is overdue.
    Overdue,
    /// Some required stage has not been received.
    Open,
    /// Every required stage has been received.
    Complete,
}

/// What a list asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    /// Only ids above this (the `next` of the previous page).
    pub after: i64,
    /// At most this many (1–500).
    pub limit: u32,
    /// Only this sector.
    pub sector: Option<Sector>,
    /// Only reports in this state.
    pub status: Option<StatusFilter>,
    /// Only reports received at or after this time.
    pub since: Option<Timestamp>,
}

/// A page of reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportPage {
    /// The reports this caller may see, oldest first.
    pub reports: Vec<ReportOut>,
    /// The `after` of the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

fn viewer(p: &Principal) -> ReportViewer<'_> {
    // The caller's client relations were loaded with its token (AMBER's "and clients").
    ReportViewer::of(p, &p.client_of)
}

fn audience_of(r: &StoredReport) -> ReportAudience {
    ReportAudience {
        tlp: r.tlp,
        confidential: r.confidential,
        audience: r.audience.clone(),
    }
}

fn is_centre_analyst(p: &Principal) -> bool {
    p.org.kind == OrgKind::CoordinationCentre && p.user.role == Role::Analyst
}

fn stored_json<T: for<'de> Deserialize<'de>>(what: &'static str, s: &str) -> Result<T, ShareError> {
    serde_json::from_str(s).map_err(|e| {
        ShareError::Store(mamori_store::StoreError::Corrupt {
            what,
            detail: e.to_string(),
        })
    })
}

fn to_json<T: Serialize>(v: &T) -> Result<String, ShareError> {
    serde_json::to_string(v).map_err(|e| ShareError::Invalid {
        field: "body",
        problem: format!("cannot be stored: {e}"),
    })
}

/// What the rendering needs besides the report: its stages and ratings, and the sources
/// (to seal the reporter's identity and scrub its profile from what others read).
struct Context<'a> {
    stages: &'a [StoredStage],
    ratings: &'a [(i64, String, i64)],
    sources: &'a Sources,
}

/// Renders a report the view let through. For anyone the source is sealed for (see
/// [`crate::source`]), the reporter's registered profile and the submitter's name are
/// scrubbed from every free text (PP-12).
fn render(
    r: Visible<StoredReport>,
    cx: &Context<'_>,
    who: &Principal,
    regime: &Regime,
    now: Timestamp,
) -> Result<ReportOut, ShareError> {
    let (stages, ratings) = (cx.stages, cx.ratings);
    let r = r.into_inner();
    let insider = r.org == who.org.id || is_centre_analyst(who);
    let mut flash: FlashReport = stored_json("report body", &r.body)?;
    let assessed = Impact::from_slug(&r.impact).unwrap_or(flash.impact);
    let sees_source = cx.sources.sees_source(who, &r, &flash, assessed, regime);
    let terms = if sees_source {
        Vec::new()
    } else {
        cx.sources.scrub_terms(r.org, r.user)
    };
    let scrub: Vec<&str> = terms.iter().map(String::as_str).collect();
    let source = cx.sources.source_out(&r, sees_source)?;
    // The reporter is told whether its report was redistributed, and why not (the reason
    // never repeats what was found), as the centre's analysts are.
    let relay = (is_centre_analyst(who) || r.org == who.org.id)
        .then(|| cx.sources.relay(r.id))
        .flatten()
        .map(|x| RelayOut {
            state: x.state.clone(),
            reason: x.reason.clone(),
            versions: x.versions,
        });
    if !scrub.is_empty() {
        flash.text = mamori_stix::scrub_text(&flash.text, &scrub);
        flash.affected_service = mamori_stix::scrub_text(&flash.affected_service, &scrub);
    }
    let mut stages_out = Vec::new();
    let mut cause = flash.cause;
    for s in stages.iter().filter(|s| s.report == r.id) {
        let mut stage: StageReport = stored_json("report stage", &s.body)?;
        if !scrub.is_empty() {
            stage.text = mamori_stix::scrub_text(&stage.text, &scrub);
            if let Some(d) = stage.detail.as_mut() {
                // Property names as well as values: `{"kanto-power.example": …}` names
                // the source as plainly as a value would.
                mamori_stix::scrub_json(d, &scrub);
            }
        }
        cause = stage.cause.unwrap_or(cause);
        stages_out.push(StageOut {
            received_at: s.received_at,
            stage,
        });
    }
    let impact = Impact::from_slug(&r.impact).unwrap_or(flash.impact);
    let received: Vec<(&str, Timestamp)> = stages_out
        .iter()
        .map(|s| (s.stage.stage.as_str(), s.received_at))
        .collect();
    let st = status(
        &ReportFacts {
            detected_at: r.detected_at,
            received_at: r.received_at,
            impact,
            acknowledged_at: r.acknowledged_at,
            feedback_at: r.feedback_at,
        },
        &received,
        regime,
        now,
    );
    let mut counts = Ratings::default();
    for (_, rating, n) in ratings.iter().filter(|(id, _, _)| *id == r.id) {
        match rating.as_str() {
            "useful" => counts.useful += n,
            "not_useful" => counts.not_useful += n,
            "false_positive" => counts.false_positive += n,
            other => {
                return Err(ShareError::Store(mamori_store::StoreError::Corrupt {
                    what: "report rating",
                    detail: other.chars().take(40).collect(),
                }));
            }
        }
    }
    Ok(ReportOut {
        id: r.id,
        tlp: r.tlp,
        confidential: r.confidential,
        sector: r.sector,
        affected_service: flash.affected_service,
        impact,
        cause,
        purposes: flash.purposes,
        detected_at: r.detected_at,
        received_at: r.received_at,
        text: flash.text,
        stages: stages_out,
        status: st,
        feedback: if insider {
            r.feedback.map(|f| mamori_stix::scrub_text(&f, &scrub))
        } else {
            None
        },
        audience: insider.then_some(AudienceOut {
            reporter: sees_source.then_some(r.org),
            organisations: r.audience.organisations,
            individuals: r.audience.individuals,
            excluded: r.audience.excluded,
        }),
        ratings: insider.then_some(counts),
        source,
        relay,
    })
}

fn check_key(key: &str) -> Result<(), ShareError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ShareError::Invalid {
            field: "Idempotency-Key",
            problem: format!(
                "must be 1–{MAX_KEY_BYTES} printable ASCII characters without spaces (a UUID is a good key)"
            ),
        });
    }
    Ok(())
}

/// Builds the audience of a new report, checking every organisation and person it names.
async fn build_audience(
    tx: &mut Tx,
    who: &Principal,
    f: &FlashReport,
    regime: &Regime,
) -> Result<Audience, ShareError> {
    let orgs = tx.orgs().await?;
    let known: BTreeSet<OrgId> = orgs.iter().map(|o| o.id).collect();
    let centres: BTreeSet<OrgId> = orgs
        .iter()
        .filter(|o| o.kind == OrgKind::CoordinationCentre)
        .map(|o| o.id)
        .collect();
    for (field, list) in [
        ("exclude", &f.exclude),
        ("route_to", &f.route_to),
        ("share_with", &f.share_with),
    ] {
        if let Some(o) = list.iter().find(|o| !known.contains(o)) {
            return Err(ShareError::Invalid {
                field,
                problem: format!("names organisation {o}, which does not exist"),
            });
        }
    }
    if let Some(o) = f
        .exclude
        .iter()
        .find(|o| centres.contains(o) || **o == who.org.id)
    {
        return Err(ShareError::Invalid {
            field: "exclude",
            problem: format!(
                "names organisation {o}, which is {}: exclude other organisations only",
                if *o == who.org.id {
                    "your own"
                } else {
                    "the coordination centre, the reporting window itself"
                }
            ),
        });
    }
    if !f.recipients.is_empty() {
        let users: BTreeSet<_> = tx.users().await?.into_iter().map(|u| u.id).collect();
        if let Some(u) = f.recipients.iter().find(|u| !users.contains(u)) {
            return Err(ShareError::Invalid {
                field: "recipients",
                problem: format!("names user {u}, who does not exist"),
            });
        }
    }
    let mut organisations = centres;
    if !f.confidential {
        organisations.extend(routed(regime, f.impact, f.sector, &orgs));
        organisations.extend(f.route_to.iter().copied());
        organisations.extend(f.share_with.iter().copied());
    }
    organisations.remove(&who.org.id);
    let organisations = organisations.difference(&f.exclude).copied().collect();
    Ok(Audience {
        originator: Some(who.org.id),
        organisations,
        individuals: f.recipients.clone(),
        excluded: f.exclude.clone(),
        clearance: Default::default(),
    })
}

/// The report `id` with its stages, rendered for `who`, or [`ShareError::NotFound`] if
/// it does not exist or `who` may not see it.
async fn load(
    tx: &mut Tx,
    who: &Principal,
    id: i64,
    regime: &Regime,
    now: Timestamp,
) -> Result<(StoredReport, ReportOut), ShareError> {
    let r = tx.report(id).await?.ok_or(ShareError::NotFound(id))?;
    let a = audience_of(&r);
    let v = reveal(viewer(who), &a, r.clone()).ok_or(ShareError::NotFound(id))?;
    let stages = tx.report_stages(&[id]).await?;
    let ratings = tx.report_rating_counts(&[id]).await?;
    let mut sources = Sources::load(tx).await?;
    sources.load_relays(tx, &[id]).await?;
    let cx = Context {
        stages: &stages,
        ratings: &ratings,
        sources: &sources,
    };
    let out = render(v, &cx, who, regime, now)?;
    Ok((r, out))
}

/// Receives a flash report from `who`'s organisation at `now`.
///
/// With an idempotency `key`: a retry with the same content returns the report stored the
/// first time and stores nothing; the same key with other content is a
/// [`ShareError::Conflict`].
pub async fn submit(
    tx: &mut Tx,
    who: &Principal,
    flash: &FlashReport,
    key: Option<&str>,
    regime: &Regime,
    now: Timestamp,
) -> Result<Submitted, ShareError> {
    submit_with(tx, who, flash, None, key, regime, now).await
}

/// [`submit`] of a report sent as a STIX bundle (`bundle`, its JSON as received): the
/// bundle is kept with the report so that its indicators and observables are relayed
/// with it (anonymised, [`crate::relay`]).
pub async fn submit_with(
    tx: &mut Tx,
    who: &Principal,
    flash: &FlashReport,
    bundle: Option<&str>,
    key: Option<&str>,
    regime: &Regime,
    now: Timestamp,
) -> Result<Submitted, ShareError> {
    if let Some(k) = key {
        check_key(k)?;
    }
    flash.validate(now)?;
    let body = to_json(flash)?;
    if let Some(k) = key
        && let Some(id) = tx.report_for_key(who.org.id, k).await?
    {
        let (stored, report) = load(tx, who, id, regime, now).await?;
        if stored.body != body {
            return Err(ShareError::Conflict(format!(
                "Idempotency-Key {k:?} was already used for report {id} with different content: \
                 send a new key for a new report, or the same body to retry"
            )));
        }
        return Ok(Submitted {
            report,
            replayed: true,
        });
    }
    let audience = build_audience(tx, who, flash, regime).await?;
    let id = tx
        .insert_report(
            &NewReport {
                org: who.org.id,
                user: who.user.id,
                tlp: flash.tlp,
                confidential: flash.confidential,
                sector: flash.sector,
                impact: flash.impact.slug(),
                regime: &regime.name,
                detected_at: flash.detected_at,
                body: &body,
                audience: &audience,
                idempotency_key: key,
            },
            now,
        )
        .await?;
    // The sealed source's handle, then the relayed copy (PP-12).
    tx.insert_report_relay(id, bundle, now).await?;
    crate::relay::write(tx, id, now).await?;
    let (_, report) = load(tx, who, id, regime, now).await?;
    Ok(Submitted {
        report,
        replayed: false,
    })
}

/// Adds a follow-up stage to report `id` from its reporting organisation. The same stage
/// sent again with the same content is a retry: nothing new is stored.
pub async fn add_stage(
    tx: &mut Tx,
    who: &Principal,
    id: i64,
    stage: &StageReport,
    regime: &Regime,
    now: Timestamp,
) -> Result<Submitted, ShareError> {
    let (stored, _) = load(tx, who, id, regime, now).await?;
    if stored.org != who.org.id {
        return Err(ShareError::Forbidden(format!(
            "only the reporting organisation adds stages to report {id}"
        )));
    }
    stage.validate()?;
    let names: Vec<&str> = regime
        .stages
        .iter()
        .skip(1)
        .map(|s| s.name.as_str())
        .collect();
    if !names.contains(&stage.stage.as_str()) {
        return Err(ShareError::Invalid {
            field: "stage",
            problem: format!(
                "{:?} is not a follow-up stage of regime {:?}: use one of {}",
                stage.stage.chars().take(40).collect::<String>(),
                regime.name,
                names.join(", ")
            ),
        });
    }
    let body = to_json(stage)?;
    if let Some(prev) = tx
        .report_stages(&[id])
        .await?
        .into_iter()
        .find(|s| s.stage == stage.stage)
    {
        if prev.body != body {
            return Err(ShareError::Conflict(format!(
                "stage {:?} of report {id} was already received with different content: send new detail as a later stage",
                stage.stage
            )));
        }
        let (_, report) = load(tx, who, id, regime, now).await?;
        return Ok(Submitted {
            report,
            replayed: true,
        });
    }
    tx.insert_report_stage(id, &stage.stage, &body, now).await?;
    if let Some(impact) = stage.impact {
        let mut audience = stored.audience.clone();
        if !stored.confidential {
            let orgs = tx.orgs().await?;
            // Routing only widens: what was shared stays shared; exclusions still win.
            audience
                .organisations
                .extend(routed(regime, impact, stored.sector, &orgs));
            audience.organisations.remove(&stored.org);
            audience.organisations = audience
                .organisations
                .difference(&audience.excluded)
                .copied()
                .collect();
        }
        tx.update_report_assessment(id, impact.slug(), &audience)
            .await?;
    }
    // A new version of the relayed copy (PP-12).
    crate::relay::write(tx, id, now).await?;
    let (_, report) = load(tx, who, id, regime, now).await?;
    Ok(Submitted {
        report,
        replayed: false,
    })
}

/// The centre acknowledges report `id` and, optionally, gives the reporter feedback
/// (PP-18). Centre analysts only.
pub async fn acknowledge(
    tx: &mut Tx,
    who: &Principal,
    id: i64,
    feedback: Option<&str>,
    regime: &Regime,
    now: Timestamp,
) -> Result<ReportOut, ShareError> {
    if !is_centre_analyst(who) {
        return Err(ShareError::Forbidden(
            "acknowledging a report needs an analyst of the coordination centre".into(),
        ));
    }
    if let Some(f) = feedback
        && (f.trim().is_empty() || f.chars().count() > crate::report::MAX_TEXT_CHARS)
    {
        return Err(ShareError::Invalid {
            field: "feedback",
            problem: format!("must be 1–{} characters", crate::report::MAX_TEXT_CHARS),
        });
    }
    load(tx, who, id, regime, now).await?;
    tx.acknowledge_report(id, now, feedback).await?;
    Ok(load(tx, who, id, regime, now).await?.1)
}

/// `who`'s organisation rates report `id` (PP-13); a later rating replaces its earlier
/// one. Any organisation that may see the report may rate it, except the reporter's own.
pub async fn rate(
    tx: &mut Tx,
    who: &Principal,
    id: i64,
    rating: Rating,
    regime: &Regime,
    now: Timestamp,
) -> Result<(), ShareError> {
    let (stored, _) = load(tx, who, id, regime, now).await?;
    if stored.org == who.org.id {
        return Err(ShareError::Forbidden(format!(
            "report {id} is your organisation's own: its recipients rate it"
        )));
    }
    tx.rate_report(id, who.org.id, rating.slug(), now).await?;
    Ok(())
}

/// Report `id` as `who` may see it.
pub async fn get(
    tx: &mut Tx,
    who: &Principal,
    id: i64,
    regime: &Regime,
    now: Timestamp,
) -> Result<ReportOut, ShareError> {
    Ok(load(tx, who, id, regime, now).await?.1)
}

/// A page of the reports `who` may see, matching `q`.
///
/// Rows are read in batches and filtered by the one visibility function and the status
/// filter; at most ten batches are read per page, so a page may hold fewer than `limit`
/// reports while `next` says there may be more.
pub async fn list(
    tx: &mut Tx,
    who: &Principal,
    q: &ListQuery,
    regime: &Regime,
    now: Timestamp,
) -> Result<ReportPage, ShareError> {
    let limit = q.limit.clamp(1, MAX_PAGE);
    let v = viewer(who);
    let mut sources = Sources::load(tx).await?;
    let mut after = q.after;
    let mut out = Vec::new();
    for _ in 0..10 {
        // One row more than a batch, to know whether another batch exists.
        let mut rows = tx
            .reports(&ReportQuery {
                after,
                limit: limit + 1,
                sector: q.sector,
                since: q.since,
            })
            .await?;
        let exhausted = rows.len() as u32 <= limit;
        rows.truncate(limit as usize);
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok(ReportPage {
                reports: out,
                next: None,
            });
        };
        let seen: Vec<Visible<StoredReport>> = rows
            .into_iter()
            .filter_map(|r| {
                let a = audience_of(&r);
                reveal(v, &a, r)
            })
            .collect();
        let ids: Vec<i64> = seen.iter().map(|r| r.get().id).collect();
        let stages = tx.report_stages(&ids).await?;
        let ratings = tx.report_rating_counts(&ids).await?;
        sources.load_relays(tx, &ids).await?;
        let cx = Context {
            stages: &stages,
            ratings: &ratings,
            sources: &sources,
        };
        for r in seen {
            let id = r.get().id;
            let rendered = render(r, &cx, who, regime, now)?;
            let keep = match q.status {
                None => true,
                Some(StatusFilter::Overdue) => rendered.status.overdue,
                Some(StatusFilter::Open) => !rendered.status.complete,
                Some(StatusFilter::Complete) => rendered.status.complete,
            };
            if keep {
                out.push(rendered);
            }
            if out.len() as u32 == limit {
                // The last row of the last batch: there is no next page.
                let more = !(exhausted && id == last);
                return Ok(ReportPage {
                    reports: out,
                    next: more.then_some(id),
                });
            }
        }
        after = last;
        if exhausted {
            return Ok(ReportPage {
                reports: out,
                next: None,
            });
        }
    }
    Ok(ReportPage {
        reports: out,
        next: Some(after),
    })
}
