//! A report as STIX 2.1, for the export (issue 8 item 3; PP-4, PP-9): an `incident`
//! carrying the report's marking and its minimal required set, and one `note` per
//! follow-up stage.
//!
//! **Architecture invariant:** the input is a [`ReportOut`], which only
//! [`crate::intake`] makes, after [`crate::view::reveal`] let the report through and
//! after the reporter's name was scrubbed for whoever is not the reporter or the centre
//! (PP-12). Nothing here reads the store or decides who sees what; the rendering carries
//! no `created_by_ref` and no audience, so the copy does not name its source.
//!
//! Ids are derived from the report id (`incident--uuid5("mamori-report/N")`), so a report
//! exported twice is the same object, and its `modified` moves with each stage.

use crate::error::ShareError;
use crate::intake::ReportOut;
use mamori_stix::{StixId, StixObject, StixTimestamp, check_object};
use serde_json::{Value, json};

/// The custom property that carries the report's required set (as `stix_in` reads it).
pub const REPORT_PROPERTY: &str = crate::stix_in::REPORT_PROPERTY;

fn id(kind: &str, name: &str) -> Result<StixId, ShareError> {
    StixId::deterministic(kind, name).map_err(|e| ShareError::Invalid {
        field: "id",
        problem: e.to_owned(),
    })
}

fn checked(v: Value) -> Result<StixObject, ShareError> {
    Ok(check_object(v)?)
}

/// The STIX objects of one report: its incident, then a note per stage.
pub fn report_objects(r: &ReportOut) -> Result<Vec<StixObject>, ShareError> {
    let incident = id("incident", &format!("mamori-report/{}", r.id))?;
    let created = StixTimestamp::from_datetime(r.received_at);
    let modified = r
        .stages
        .iter()
        .map(|s| s.received_at)
        .max()
        .filter(|t| *t > r.received_at)
        .map_or_else(|| created.clone(), StixTimestamp::from_datetime);
    let marking = [r.tlp.stix_id()];
    let mut out = vec![checked(json!({
        "type": "incident",
        "spec_version": "2.1",
        "id": incident.as_str(),
        "created": created.as_str(),
        "modified": modified.as_str(),
        "name": format!("{} incident: {}", r.sector.slug(), r.affected_service),
        "description": r.text,
        "object_marking_refs": marking,
        "external_references": [{"source_name": "mamori", "external_id": format!("report-{}", r.id)}],
        REPORT_PROPERTY: {
            "detected_at": StixTimestamp::from_datetime(r.detected_at).as_str(),
            "sector": r.sector,
            "affected_service": r.affected_service,
            "impact": r.impact,
            "cause": r.cause,
            "purposes": r.purposes,
            "confidential": r.confidential,
        },
    }))?];
    for s in &r.stages {
        let at = StixTimestamp::from_datetime(s.received_at);
        let note = id(
            "note",
            &format!("mamori-report/{}/stage/{}", r.id, s.stage.stage),
        )?;
        out.push(checked(json!({
            "type": "note",
            "spec_version": "2.1",
            "id": note.as_str(),
            "created": at.as_str(),
            "modified": at.as_str(),
            "abstract": format!("stage {}", s.stage.stage),
            "content": s.stage.text,
            "object_refs": [incident.as_str()],
            "object_marking_refs": marking,
        }))?);
    }
    Ok(out)
}
