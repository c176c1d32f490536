//! The anonymous relay (the CEPTOR model; PP-12, DESIGN invariant 6): when the centre
//! accepts a report, and again when a follow-up stage arrives, it redistributes what
//! happened — never who reported it — as STIX 2.1 in the TAXII `reports` collection.
//!
//! The relayed copy is a `report` and an `incident` made by the centre (`created_by_ref`
//! the centre's identity), with the report's TLP marking, plus the indicators, observables
//! and other objects of a STIX submission. Each stage writes a new version of the same
//! STIX ids (their `modified` is the time of the stage). The ids are derived from the
//! report's random source handle, so they say nothing about the reporter either.
//!
//! Unless the reporter allowed identification (`disclose_source`), the copy goes through
//! `mamori_stix::anonymise_with`: every identity object of the submission is taken for the
//! source's and replaced by the centre's, every reference to it rewritten, and the
//! reporter's registered profile (name, aliases, domains — subdomains and e-mail addresses
//! at them included — contacts, address ranges) and the submitting user's name scrubbed,
//! as words, from every text value, property name and text attachment; binary attachments
//! are dropped. If anonymisation **fails closed** (something identifying remained where it
//! cannot be rewritten), nothing is written: the report's relay state becomes `withheld`,
//! counted by `Tx::report_relay_counts` and shown to the reporter and the centre's
//! analysts — the report itself is still accepted.
//!
//! **Architecture invariant:** the relayed rows carry the report's own audience (its
//! originator, recipients and **exclusions**) and marking, so the TAXII server's one TLP
//! gate shows the copy exactly to whom the report may be shown, and never to an excluded
//! organisation (PP-11); every object states the marking it is shared under. The one
//! exception is the centre's identity, which every copy references: it is TLP:CLEAR, so
//! it is at least as visible as any copy (DESIGN invariant 5). A confidential report
//! (PP-22) is never relayed.

use crate::error::ShareError;
use crate::report::{FlashReport, Impact, StageReport};
use crate::source::Sources;
use mamori_core::time::Timestamp;
use mamori_core::tlp::Audience;
use mamori_core::{OrgId, OrgKind, Tlp};
use mamori_stix::object::Identity;
use mamori_stix::{
    AnonymiseOptions, Bundle, Limits, StixId, StixObject, StixTimestamp, anonymise_with, carry_tlp,
    check_object, object_tlp, parse_bundle,
};
use mamori_store::{NewStixObject, Org, ReportRelay, StoredReport, Tx};
use serde_json::{Value, json};

/// The TAXII collection the relayed copies go to.
pub const COLLECTION: &str = "reports";

/// Where a relay stands after [`write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new version of the relayed copy was stored (how many objects).
    Written(usize),
    /// Anonymisation failed closed: nothing was stored.
    Withheld(String),
    /// Confidential: never relayed.
    NotRelayed,
}

fn id(kind: &str, handle: &str) -> Result<StixId, ShareError> {
    StixId::deterministic(kind, &format!("mamori-relay/{handle}")).map_err(|e| {
        ShareError::Invalid {
            field: "relay",
            problem: e.to_owned(),
        }
    })
}

fn ts(t: Timestamp) -> String {
    StixTimestamp::from_datetime(t).as_str().to_owned()
}

/// Replaces every string equal to `from` by `to`, recursively (references to the
/// submission's own incident or report object now point at the relayed incident).
fn replace_refs(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) if s == from => *s = to.to_owned(),
        Value::Array(a) => a.iter_mut().for_each(|x| replace_refs(x, from, to)),
        Value::Object(m) => m.values_mut().for_each(|x| replace_refs(x, from, to)),
        _ => {}
    }
}

fn is_tlp_definition(o: &StixObject) -> bool {
    Tlp::from_stix_id(o.id().as_str()).is_ok()
}

/// The coordination centre's organisation.
fn centre_org(sources: &Sources) -> Result<&Org, ShareError> {
    sources
        .orgs()
        .iter()
        .find(|o| o.kind == OrgKind::CoordinationCentre)
        .ok_or_else(|| ShareError::Forbidden("no coordination centre is registered".into()))
}

/// The centre's identity object: TLP:CLEAR, because every relayed copy, whatever its
/// marking and audience, points at it by `created_by_ref` (DESIGN invariant 5: it is at
/// least as visible as anything that references it).
fn centre_identity(sources: &Sources) -> Result<Identity, ShareError> {
    let centre = centre_org(sources)?;
    let v = json!({
        "type": "identity", "spec_version": "2.1",
        "id": StixId::deterministic("identity", &format!("mamori-org/{}", centre.id))
            .map_err(|e| ShareError::Invalid { field: "relay", problem: e.to_owned() })?,
        "created": ts(centre.created_at), "modified": ts(centre.created_at),
        "name": centre.name, "identity_class": "organization",
        "object_marking_refs": [Tlp::Clear.stix_id()],
    });
    match check_object(v)? {
        StixObject::Identity(i) => Ok(*i),
        _ => Err(ShareError::Invalid {
            field: "relay",
            problem: "the centre's identity is not an identity".into(),
        }),
    }
}

/// The relayed copy before anonymisation: the centre's report and incident, and the
/// submission's other objects (their references to its incident moved to ours).
struct Draft {
    objects: Vec<Value>,
    /// The submission's identity objects: the source's.
    source_ids: Vec<StixId>,
}

#[allow(clippy::too_many_arguments)] // the parts of one report, each needed once
fn draft(
    r: &StoredReport,
    flash: &FlashReport,
    stages: &[(StageReport, Timestamp)],
    impact: Impact,
    submitted: Option<&Bundle>,
    handle: &str,
    centre: &Identity,
    reporter: Option<(&StixId, &str)>,
    now: Timestamp,
) -> Result<Draft, ShareError> {
    let tlp_ref = r.tlp.stix_id();
    let incident_id = id("incident", handle)?;
    let report_id = id("report", handle)?;
    let mut cause = flash.cause;
    let mut description = flash.text.clone();
    for (s, _) in stages {
        cause = s.cause.unwrap_or(cause);
        description.push_str(&format!("\n\n[{}] {}", s.stage, s.text));
    }
    let mut objects = Vec::new();
    let mut source_ids = Vec::new();
    let mut refs = vec![Value::String(incident_id.to_string())];
    if let Some(b) = submitted {
        let own = b
            .objects()
            .iter()
            .find(|o| matches!(o, StixObject::Incident(_)))
            .or_else(|| {
                b.objects()
                    .iter()
                    .find(|o| matches!(o, StixObject::Report(_)))
            })
            .map(|o| o.id().to_string());
        for o in b.objects() {
            if Some(o.id().to_string()) == own || is_tlp_definition(o) {
                continue;
            }
            if matches!(o, StixObject::Identity(_)) && reporter.is_none() {
                source_ids.push(o.id().clone());
                continue;
            }
            let mut v = o.to_value().map_err(|e| corrupt("submitted object", e))?;
            if let Some(own) = &own {
                replace_refs(&mut v, own, incident_id.as_str());
            }
            // It says the marking it is shared under: the report's, or its own if higher.
            carry_tlp(&mut v, object_tlp(o, r.tlp)?.max(r.tlp));
            refs.push(Value::String(o.id().to_string()));
            objects.push(v);
        }
    }
    let incident_by = reporter.map_or(centre.common.id.as_str(), |(id, _)| id.as_str());
    let detail = json!({
        "sector": r.sector, "impact": impact, "cause": cause,
        "detected_at": ts(r.detected_at),
        "stages": stages.iter().map(|(s, at)| json!({"stage": s.stage, "received_at": ts(*at)})).collect::<Vec<_>>(),
    });
    objects.insert(
        0,
        json!({
            "type": "incident", "spec_version": "2.1", "id": incident_id,
            "created": ts(r.received_at), "modified": ts(now),
            "created_by_ref": incident_by,
            "name": format!("{} incident: {}", r.sector.slug(), flash.affected_service),
            "description": description,
            "object_marking_refs": [tlp_ref],
            "x_mamori_incident": detail,
        }),
    );
    objects.insert(
        0,
        json!({
            "type": "report", "spec_version": "2.1", "id": report_id,
            "created": ts(r.received_at), "modified": ts(now),
            "created_by_ref": centre.common.id,
            "name": format!("Incident report relayed by {}", centre.name),
            "description": description,
            "report_types": ["threat-report"],
            "published": ts(now),
            "object_refs": refs,
            "object_marking_refs": [tlp_ref],
        }),
    );
    if let Some((rid, name)) = reporter {
        objects.push(json!({
            "type": "identity", "spec_version": "2.1", "id": rid,
            "created": ts(r.received_at), "modified": ts(r.received_at),
            "name": name, "identity_class": "organization",
            "object_marking_refs": [tlp_ref],
        }));
    }
    Ok(Draft {
        objects,
        source_ids,
    })
}

/// Writes (a new version of) report `report`'s relayed copy, or records why not. Runs in
/// the caller's transaction, after the report or stage was stored.
pub async fn write(tx: &mut Tx, report: i64, now: Timestamp) -> Result<Outcome, ShareError> {
    let r = tx
        .report(report)
        .await?
        .ok_or(ShareError::NotFound(report))?;
    if r.confidential {
        tx.set_report_relay_state(
            report,
            "not_relayed",
            Some("held in confidence (PP-22): a confidential report is never relayed"),
            now,
        )
        .await?;
        return Ok(Outcome::NotRelayed);
    }
    let mut sources = Sources::load(tx).await?;
    sources.load_relays(tx, &[report]).await?;
    if sources.relay(report).is_none() {
        // A report stored before the relay existed gets its handle now.
        tx.insert_report_relay(report, None, now).await?;
        sources.load_relays(tx, &[report]).await?;
    }
    let relay = sources
        .relay(report)
        .cloned()
        .ok_or(ShareError::NotFound(report))?;
    let flash: FlashReport =
        serde_json::from_str(&r.body).map_err(|e| corrupt("report body", e))?;
    let mut stages = Vec::new();
    for s in tx.report_stages(&[report]).await? {
        let st: StageReport =
            serde_json::from_str(&s.body).map_err(|e| corrupt("report stage", e))?;
        stages.push((st, s.received_at));
    }
    let rows = match build(&r, &flash, &stages, &relay, &sources, now) {
        Ok(rows) => rows,
        Err(e) => {
            let reason = withheld_reason(&e);
            tx.set_report_relay_state(report, "withheld", Some(&reason), now)
                .await?;
            return Ok(Outcome::Withheld(reason));
        }
    };
    let collection = tx.taxii_collection(COLLECTION).await?;
    let centre = centre_org(&sources)?.id;
    tx.insert_stix_objects(&collection.id, centre, &rows, now)
        .await?;
    // The centre's identity is stored once (its version never changes), so one stored by
    // an earlier release with the first report's marking and audience is made CLEAR here
    // (as migration 0008 does at start).
    let identity = centre_identity(&sources)?;
    tx.set_stix_object_audience(
        &collection.id,
        identity.common.id.as_str(),
        centre,
        Tlp::Clear,
        &centre_audience(centre),
    )
    .await?;
    tx.set_report_relay_state(report, "written", None, now)
        .await?;
    Ok(Outcome::Written(rows.len()))
}

/// The relayed copy's rows, or the error that withholds it. Reads and writes nothing.
fn build(
    r: &StoredReport,
    flash: &FlashReport,
    stages: &[(StageReport, Timestamp)],
    relay: &ReportRelay,
    sources: &Sources,
    now: Timestamp,
) -> Result<Vec<NewStixObject>, ShareError> {
    let impact = Impact::from_slug(&r.impact).unwrap_or(flash.impact);
    let submitted = relay
        .bundle
        .as_deref()
        .map(|b| {
            parse_bundle(
                b.as_bytes(),
                &Limits {
                    max_bytes: b.len().saturating_add(1),
                    ..Limits::default()
                },
            )
        })
        .transpose()?;
    let centre = centre_identity(sources)?;
    let reporter_id;
    let reporter =
        if flash.disclose_source {
            reporter_id = StixId::deterministic("identity", &format!("mamori-org/{}", r.org))
                .map_err(|e| ShareError::Invalid {
                    field: "relay",
                    problem: e.to_owned(),
                })?;
            Some((&reporter_id, sources.org_name(r.org).unwrap_or_default()))
        } else {
            None
        };
    // Each version's `modified` is later than the last one's, even within a millisecond.
    let modified = now.max(r.received_at + chrono::Duration::milliseconds(relay.versions));
    let d = draft(
        r,
        flash,
        stages,
        impact,
        submitted.as_ref(),
        &relay.handle,
        &centre,
        reporter,
        modified,
    )?;
    let objects: Vec<StixObject> = d
        .objects
        .into_iter()
        .map(check_object)
        .collect::<Result<_, _>>()?;
    let bundle_id = id("bundle", &format!("{}/{}", relay.handle, relay.versions))?;
    let copy = if flash.disclose_source {
        let mut objects = objects;
        objects.insert(1, StixObject::Identity(Box::new(centre.clone())));
        Bundle::new(bundle_id, objects)?
    } else {
        let terms = sources.scrub_terms(r.org, r.user);
        let terms: Vec<&str> = terms.iter().map(String::as_str).collect();
        let draft = Bundle::new(bundle_id.clone(), objects)?;
        anonymise_with(
            &draft,
            &d.source_ids,
            &centre,
            &terms,
            bundle_id,
            AnonymiseOptions::default(),
        )?
        .bundle
    };
    let centre_id = centre.common.id.as_str();
    let centre_org = centre_org(sources)?.id;
    let mut rows = Vec::with_capacity(copy.objects().len());
    for o in copy.objects() {
        let c = o.common();
        let (version, version_text) = match c.modified.as_ref().or(c.created.as_ref()) {
            Some(t) => (t.at().timestamp_micros(), t.as_str().to_owned()),
            // Observables have no version of their own: the report's receipt is theirs, so
            // a later stage does not duplicate them.
            None => (r.received_at.timestamp_micros(), ts(r.received_at)),
        };
        // Everything carries the report's marking and audience, but the centre's identity,
        // which every copy references: CLEAR, from the centre.
        let (tlp, audience) = if o.id().as_str() == centre_id {
            (Tlp::Clear, centre_audience(centre_org))
        } else {
            (object_tlp(o, r.tlp)?.max(r.tlp), r.audience.clone())
        };
        rows.push(NewStixObject {
            id: o.id().to_string(),
            object_type: o.object_type().to_owned(),
            spec_version: c.spec_version.clone().unwrap_or_else(|| "2.1".to_owned()),
            version,
            version_text,
            tlp,
            audience,
            body: serde_json::to_string(o).map_err(|e| corrupt("relayed object", e))?,
        });
    }
    Ok(rows)
}

/// The audience of the centre's identity: the centre, and — as it is CLEAR — everyone.
fn centre_audience(centre: OrgId) -> Audience {
    Audience {
        originator: Some(centre),
        ..Audience::default()
    }
}

/// Why a copy is withheld, for the centre's analysts and the reporter. The error's own
/// text may name what remained (the reporter's name, say), so it never goes into the
/// reason: for the analysts, too, the source is sealed.
fn withheld_reason(e: &ShareError) -> String {
    match e {
        ShareError::Stix(mamori_stix::Error::AnonymisationIncomplete { .. }) => {
            "anonymisation failed closed: a trace of the source remained where it cannot be rewritten (an id, a timestamp or another structural property); nothing was redistributed. To have it redistributed, the reporter submits it again with no ids, timestamps or property names that hold its name or registered profile, or allows identification (disclose_source)".to_owned()
        }
        other => format!(
            "the anonymised copy could not be built ({:?}); nothing was redistributed",
            other.kind()
        ),
    }
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> ShareError {
    ShareError::Store(mamori_store::StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}
