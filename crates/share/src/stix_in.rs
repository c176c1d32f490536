//! A flash report sent as a STIX 2.1 bundle (PP-9: machine to machine, in the format
//! partners already speak).
//!
//! The bundle is parsed and checked by `mamori-stix` (limits, STIX 2.1 rules, markings
//! that only look like TLP refused). Its first `incident` object — or, without one, its
//! first `report` object — is the report:
//! - its **TLP marking** (`object_marking_refs` or granular markings; the most restrictive
//!   wins) is the report's marking, and it must have one (PP-11: every item carries TLP);
//! - its `description` (or, without one, its `name`) is the report's text;
//! - the rest of the minimal required set travels in the custom property
//!   `x_mamori_report`, with the same names and values as the JSON form
//!   (`detected_at`, `sector`, `affected_service`, `impact`, `cause`, `purposes`, and the
//!   optional `confidential`, `exclude`, `route_to`, `share_with`, `recipients`,
//!   `disclose_source`).

use crate::error::ShareError;
use crate::report::{Cause, FlashReport, Impact, Purpose};
use mamori_core::time::Timestamp;
use mamori_core::{OrgId, Sector, Tlp, UserId};
use mamori_stix::object::{Common, Extra};
use mamori_stix::{Limits, StixObject, effective_tlp, parse_bundle};
use serde::Deserialize;
use std::collections::BTreeSet;

/// The custom property that carries mamori's required fields on an incident or report.
pub const REPORT_PROPERTY: &str = "x_mamori_report";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    detected_at: Timestamp,
    sector: Sector,
    affected_service: String,
    impact: Impact,
    cause: Cause,
    purposes: BTreeSet<Purpose>,
    #[serde(default)]
    confidential: bool,
    #[serde(default)]
    exclude: BTreeSet<OrgId>,
    #[serde(default)]
    route_to: BTreeSet<OrgId>,
    #[serde(default)]
    share_with: BTreeSet<OrgId>,
    #[serde(default)]
    recipients: BTreeSet<UserId>,
    #[serde(default)]
    disclose_source: bool,
}

/// Whether the object carries a TLP marking (not only statements or copyright notices).
fn has_tlp(c: &Common) -> bool {
    let refs = c.object_marking_refs.iter().flatten();
    let granular = c
        .granular_markings
        .iter()
        .flatten()
        .filter_map(|g| g.marking_ref.as_ref());
    refs.chain(granular)
        .any(|r| Tlp::from_stix_id(r.as_str()).is_ok())
}

/// An object's common properties, name, description and other properties.
type Parts<'a> = (&'a Common, &'a String, Option<&'a str>, &'a Extra);

fn incident(o: &StixObject) -> Option<Parts<'_>> {
    match o {
        StixObject::Incident(i) => Some((&i.common, &i.name, i.description.as_deref(), &i.extra)),
        _ => None,
    }
}

fn report(o: &StixObject) -> Option<Parts<'_>> {
    match o {
        StixObject::Report(r) => Some((&r.common, &r.name, r.description.as_deref(), &r.extra)),
        _ => None,
    }
}

/// [`flash_from_bundle_naming`] with the default STIX limits but at most `max_bytes` bytes
/// (the HTTP body limit).
pub fn flash_from_bundle_bytes(
    bytes: &[u8],
    max_bytes: usize,
    directory: &[(OrgId, &str)],
) -> Result<FlashReport, ShareError> {
    let limits = Limits {
        max_bytes,
        ..Limits::default()
    };
    flash_from_bundle_naming(bytes, &limits, directory)
}

/// Reads a flash report from a STIX 2.1 bundle's bytes. See the module docs. Its audience
/// lists take organisation ids only; [`flash_from_bundle_naming`] takes names too.
pub fn flash_from_bundle(bytes: &[u8], limits: &Limits) -> Result<FlashReport, ShareError> {
    flash_from_bundle_naming(bytes, limits, &[])
}

/// [`flash_from_bundle`], where `exclude`, `route_to` and `share_with` in
/// `x_mamori_report` may also name organisations of `directory` (`(id, name)`), as in the
/// JSON form ([`crate::report::resolve_org_names`]).
pub fn flash_from_bundle_naming(
    bytes: &[u8],
    limits: &Limits,
    directory: &[(OrgId, &str)],
) -> Result<FlashReport, ShareError> {
    let bundle = parse_bundle(bytes, limits)?;
    let objects = bundle.objects();
    let (common, name, description, extra) = objects
        .iter()
        .find_map(incident)
        .or_else(|| objects.iter().find_map(report))
        .ok_or_else(|| ShareError::Invalid {
            field: "objects",
            problem: "hold no incident or report object: send the incident as an `incident` (or `report`) object".into(),
        })?;
    if !has_tlp(common) {
        return Err(ShareError::Invalid {
            field: "object_marking_refs",
            problem: format!(
                "of {} carry no TLP marking: mark it with a TLP 2.0 marking-definition id (e.g. TLP:AMBER {})",
                common.id,
                Tlp::Amber.stix_id()
            ),
        });
    }
    let tlp = effective_tlp(common, Tlp::Red)?;
    let fields = extra.get(REPORT_PROPERTY).ok_or_else(|| ShareError::Invalid {
        field: REPORT_PROPERTY,
        problem: format!(
            "is missing on {}: add it with detected_at, sector, affected_service, impact, cause and purposes",
            common.id
        ),
    })?;
    let mut fields = fields.clone();
    crate::report::resolve_org_names(&mut fields, directory.iter().copied())?;
    let f: Fields = serde_json::from_value(fields).map_err(|e| ShareError::Invalid {
        field: REPORT_PROPERTY,
        problem: format!("of {} is not a valid report: {e}", common.id),
    })?;
    Ok(FlashReport {
        detected_at: f.detected_at,
        sector: f.sector,
        affected_service: f.affected_service,
        impact: f.impact,
        cause: f.cause,
        tlp,
        text: description.unwrap_or(name).to_owned(),
        purposes: f.purposes,
        confidential: f.confidential,
        exclude: f.exclude,
        route_to: f.route_to,
        share_with: f.share_with,
        recipients: f.recipients,
        disclose_source: f.disclose_source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    pub(crate) fn bundle(marking: Option<&str>, fields: Value) -> Vec<u8> {
        let mut incident = json!({
            "type": "incident",
            "spec_version": "2.1",
            "id": "incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2026-11-24T01:00:00.000Z",
            "modified": "2026-11-24T01:00:00.000Z",
            "name": "Gateway beaconing",
            "description": "Beaconing from the SCADA gateway every 60 s.",
            "x_mamori_report": fields,
        });
        if let Some(m) = marking {
            incident["object_marking_refs"] = json!([m]);
        }
        json!({
            "type": "bundle",
            "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
            "objects": [incident],
        })
        .to_string()
        .into_bytes()
    }

    pub(crate) fn fields() -> Value {
        json!({
            "detected_at": "2026-11-24T00:40:00Z",
            "sector": "electricity",
            "affected_service": "SCADA gateway",
            "impact": "high",
            "cause": "intentional",
            "purposes": ["response", "warning"],
            "exclude": [9],
        })
    }

    #[test]
    fn an_incident_with_its_marking_becomes_a_flash_report() {
        let b = bundle(Some(Tlp::AmberStrict.stix_id()), fields());
        let f = flash_from_bundle(&b, &Limits::default()).unwrap();
        assert_eq!(f.tlp, Tlp::AmberStrict);
        assert_eq!(f.impact, Impact::High);
        assert_eq!(f.cause, Cause::Intentional);
        assert_eq!(f.text, "Beaconing from the SCADA gateway every 60 s.");
        assert_eq!(f.exclude, [OrgId(9)].into());
        // TLP 1.0 RED maps onto TLP 2.0 RED.
        let b = bundle(
            Some("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"),
            fields(),
        );
        assert_eq!(
            flash_from_bundle(&b, &Limits::default()).unwrap().tlp,
            Tlp::Red
        );
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let l = Limits::default();
        let err = |b: &[u8]| flash_from_bundle(b, &l).unwrap_err().to_string();
        assert!(err(&bundle(None, fields())).contains("carry no TLP marking"));
        let forged = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c2";
        let e = err(&bundle(Some(forged), fields()));
        assert!(e.contains("not an official TLP marking"), "{e}");
        let mut f = fields();
        f.as_object_mut().unwrap().remove("sector");
        let e = err(&bundle(Some(Tlp::Green.stix_id()), f));
        assert!(e.contains("missing field `sector`"), "{e}");
        assert!(err(&bundle(Some(Tlp::Green.stix_id()), Value::Null)).contains("x_mamori_report"));
        assert!(err(b"{\"type\":\"bundle\"").contains("malformed JSON"));
        let empty = br#"{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[]}"#;
        assert!(err(empty).contains("no incident or report"));
        let small = Limits {
            max_bytes: 100,
            ..Limits::default()
        };
        let e =
            flash_from_bundle(&bundle(Some(Tlp::Green.stix_id()), fields()), &small).unwrap_err();
        assert_eq!(e.kind(), mamori_core::ErrorKind::PayloadTooLarge);
    }
}
