//! Incident reports to the one window (PP-8): a short **flash report** first, then
//! follow-up **stages** that add detail.
//!
//! The flash report is the minimal required set the seeds ask for — who reports, when the
//! incident was detected, the sector, the affected service, the impact, the suspected cause
//! (PP-15), the TLP marking (PP-11), free text, and the purpose the information may be used
//! for (PP-10) — plus the reporter's choices about its audience: widen it, name individual
//! recipients, exclude organisations (e.g. its own supervising authority), route it to
//! further authorities, or hold it in confidence as an early "something is different"
//! report (PP-22).
//!
//! The reporting organisation is not part of the body: it is the authenticated caller's
//! organisation, so no one can report in another's name.
//!
//! **Architecture invariant:** a [`FlashReport`] or [`StageReport`] that passed
//! [`FlashReport::validate`] / [`StageReport::validate`] is the only thing stored; parsing
//! refuses unknown fields, and every refusal names the field and what is accepted.

use crate::error::ShareError;
use mamori_core::time::Timestamp;
use mamori_core::{OrgId, Sector, Tlp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Longest affected-service name, in characters.
pub const MAX_SERVICE_CHARS: usize = 200;
/// Longest free text of a flash report or a stage, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Most organisations or individuals in any one audience list.
pub const MAX_LIST: usize = 100;

/// How large the impact is (PP-7: whether and how fully an incident must be reported
/// depends on it). Ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Impact {
    /// No or negligible effect on the service.
    Low,
    /// Degraded service for some users.
    Medium,
    /// Service interrupted or data affected for many users.
    High,
    /// Disruption with effects beyond the operator (other sectors, public safety).
    Critical,
}

impl Impact {
    /// Every level, least severe first.
    pub const ALL: [Impact; 4] = [Impact::Low, Impact::Medium, Impact::High, Impact::Critical];

    /// The machine name: `low`, `medium`, `high`, `critical`.
    pub fn slug(self) -> &'static str {
        match self {
            Impact::Low => "low",
            Impact::Medium => "medium",
            Impact::High => "high",
            Impact::Critical => "critical",
        }
    }

    /// The level for a machine name.
    pub fn from_slug(s: &str) -> Option<Impact> {
        Impact::ALL.into_iter().find(|i| i.slug() == s)
    }
}

/// The suspected cause (PP-15). `Unknown` is a first-class answer: a flash report is sent
/// before the cause is known, and intentional causes are often disguised as the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Cause {
    /// A cyber attack.
    Intentional,
    /// An operating error, a faulty update, a misconfiguration.
    Accidental,
    /// A natural disaster, a power cut, a fire.
    Environmental,
    /// Something else, described in the text.
    Other,
    /// Not known yet.
    Unknown,
}

/// What the reported information may be used for (PP-10). It is never used for sanctions
/// against the reporter: there is no such purpose to choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Purpose {
    /// The centre coordinates the response with the reporter.
    Response,
    /// The centre warns others (anonymised, under the TLP marking).
    Warning,
    /// The centre counts it in statistics and trend analysis.
    Statistics,
}

/// A recipient's rating of a shared report (PP-13): whether it helped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Rating {
    /// It helped (detection, hunting, defence).
    Useful,
    /// It did not help.
    NotUseful,
    /// What it describes was not malicious where the recipient looked.
    FalsePositive,
}

impl Rating {
    /// Every rating.
    pub const ALL: [Rating; 3] = [Rating::Useful, Rating::NotUseful, Rating::FalsePositive];

    /// The machine name: `useful`, `not_useful`, `false_positive`.
    pub fn slug(self) -> &'static str {
        match self {
            Rating::Useful => "useful",
            Rating::NotUseful => "not_useful",
            Rating::FalsePositive => "false_positive",
        }
    }
}

/// The flash report (速報, PP-8): the minimal required set, sent within minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlashReport {
    /// When the incident was detected (RFC 3339, UTC). The regime's deadlines count from it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub detected_at: Timestamp,
    /// The critical-infrastructure sector concerned.
    pub sector: Sector,
    /// The affected service, as the reporter names it (1–200 characters).
    pub affected_service: String,
    /// How large the impact is.
    pub impact: Impact,
    /// The suspected cause (PP-15).
    pub cause: Cause,
    /// The TLP 2.0 marking the reporter chose (PP-11).
    pub tlp: Tlp,
    /// What happened, in the reporter's words (1–20,000 characters).
    pub text: String,
    /// What the information may be used for (PP-10); at least one.
    pub purposes: BTreeSet<Purpose>,
    /// An early, uncertain "something is different" report, held in confidence: only
    /// the reporter and the centre's analysts see it, and it is routed nowhere (PP-22).
    #[serde(default)]
    pub confidential: bool,
    /// Organisations that must never see the report, whatever the marking (PP-11). In a
    /// submission, ids or registered names ([`resolve_org_names`]); stored as ids.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<OrgRef>))]
    pub exclude: BTreeSet<OrgId>,
    /// Authorities to route the report to, beyond those the regime names (ids or names).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<OrgRef>))]
    pub route_to: BTreeSet<OrgId>,
    /// Further organisations the reporter shares it with (widening the audience, PP-11;
    /// ids or names).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<OrgRef>))]
    pub share_with: BTreeSet<OrgId>,
    /// Individuals named as recipients (TLP:RED reaches only them, the reporter and the
    /// centre's analysts).
    #[serde(default)]
    pub recipients: BTreeSet<UserId>,
    /// The reporter allows its identity to be shown: to everyone who sees the report and
    /// in the relayed copy. Without it (the default) the source is sealed for everyone but
    /// the reporter and the authorities the report is routed to (PP-12).
    #[serde(default)]
    pub disclose_source: bool,
}

/// An organisation as a submission may name it in an audience list: its id, or its
/// registered name. [`resolve_org_names`] turns names into ids before a [`FlashReport`]
/// is read; the type says so in the API's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrgRef {
    /// The organisation's id.
    Id(OrgId),
    /// Its registered name.
    Name(String),
}

/// A follow-up stage: the detail a regime asks for after the flash report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageReport {
    /// Which stage of the regime this is (`interim`, `final` in the default regime).
    pub stage: String,
    /// What is known now (1–20,000 characters).
    pub text: String,
    /// The impact as now assessed, if it changed; a higher impact may trigger more stages.
    #[serde(default)]
    pub impact: Option<Impact>,
    /// The cause as now assessed, if it changed (PP-15).
    #[serde(default)]
    pub cause: Option<Cause>,
    /// Technical detail (indicators, techniques) for analysts (PP-2), as free JSON.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: Option<serde_json::Value>,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ShareError {
    ShareError::Invalid {
        field,
        problem: problem.into(),
    }
}

fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), ShareError> {
    let n = s.chars().count();
    if s.trim().is_empty() {
        return Err(invalid(field, "is empty: say what happened"));
    }
    if n > max {
        return Err(invalid(
            field,
            format!("has {n} characters, more than {max}: shorten it or send detail in a stage"),
        ));
    }
    Ok(())
}

fn check_list<T>(field: &'static str, l: &BTreeSet<T>) -> Result<(), ShareError> {
    if l.len() > MAX_LIST {
        return Err(invalid(
            field,
            format!("names {} entries, more than {MAX_LIST}", l.len()),
        ));
    }
    Ok(())
}

impl FlashReport {
    /// Checks the rules a flash report must meet, given the time it is received.
    pub fn validate(&self, now: Timestamp) -> Result<(), ShareError> {
        check_text(
            "affected_service",
            &self.affected_service,
            MAX_SERVICE_CHARS,
        )?;
        check_text("text", &self.text, MAX_TEXT_CHARS)?;
        // A few minutes of clock skew between reporter and centre are tolerated.
        if self.detected_at > now + chrono::Duration::minutes(5) {
            return Err(invalid(
                "detected_at",
                format!(
                    "{} is in the future: give the time the incident was detected (UTC)",
                    mamori_core::time::rfc3339(self.detected_at)
                ),
            ));
        }
        if self.purposes.is_empty() {
            return Err(invalid(
                "purposes",
                "is empty: name at least one of response, warning, statistics (PP-10)",
            ));
        }
        check_list("exclude", &self.exclude)?;
        check_list("route_to", &self.route_to)?;
        check_list("share_with", &self.share_with)?;
        check_list("recipients", &self.recipients)?;
        for (field, list) in [
            ("route_to", &self.route_to),
            ("share_with", &self.share_with),
        ] {
            if let Some(o) = list.intersection(&self.exclude).next() {
                return Err(invalid(
                    field,
                    format!("names organisation {o}, which `exclude` also names: choose one"),
                ));
            }
        }
        if self.confidential
            && !(self.route_to.is_empty()
                && self.share_with.is_empty()
                && self.recipients.is_empty())
        {
            return Err(invalid(
                "confidential",
                "a confidential report is held by the centre alone: leave route_to, share_with and recipients empty (PP-22)",
            ));
        }
        Ok(())
    }
}

/// The audience lists of a flash report that may name organisations by their registered
/// name as well as by id.
pub const LISTS_TAKING_NAMES: [&str; 3] = ["exclude", "route_to", "share_with"];

/// Replaces the organisation names in a flash report's `exclude`, `route_to` and
/// `share_with` lists (JSON, before it is read as a [`FlashReport`]) by their ids, so a
/// reporter can write `"exclude": ["Ministry of Energy"]` without looking an id up.
///
/// `directory` is every organisation as `(id, name)`. Names match exactly, as they are
/// registered (unique on the platform). Every unknown name of a list is named in one
/// refusal, with where to look the names up. Anything that is not a string is left for
/// the parser to judge, and nothing else in the report is touched.
pub fn resolve_org_names<'a>(
    report: &mut serde_json::Value,
    directory: impl IntoIterator<Item = (OrgId, &'a str)> + Clone,
) -> Result<(), ShareError> {
    for field in LISTS_TAKING_NAMES {
        let Some(list) = report.get_mut(field).and_then(|l| l.as_array_mut()) else {
            continue;
        };
        let mut unknown = Vec::new();
        for entry in list.iter_mut() {
            let Some(name) = entry.as_str() else {
                continue;
            };
            match directory.clone().into_iter().find(|(_, n)| *n == name) {
                Some((id, _)) => *entry = serde_json::Value::from(id.0),
                None => unknown.push(format!("{name:?}")),
            }
        }
        if !unknown.is_empty() {
            return Err(invalid(
                field,
                format!(
                    "names {}, which no organisation is called: give a registered name or id \
                     (`mamori report orgs`, GET /api/v1/orgs)",
                    unknown.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

impl StageReport {
    /// Checks the rules a stage must meet (the stage name is checked against the regime).
    pub fn validate(&self) -> Result<(), ShareError> {
        check_text("text", &self.text, MAX_TEXT_CHARS)?;
        if self.stage.trim().is_empty() {
            return Err(invalid("stage", "is empty: name a stage of the regime"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_core::time::from_millis;

    fn now() -> Timestamp {
        from_millis(1_790_000_000_000).unwrap()
    }

    pub(crate) fn flash() -> FlashReport {
        FlashReport {
            detected_at: now() - chrono::Duration::minutes(20),
            sector: Sector::Electricity,
            affected_service: "SCADA gateway".into(),
            impact: Impact::Medium,
            cause: Cause::Unknown,
            tlp: Tlp::Amber,
            text: "Unusual outbound connections from the gateway.".into(),
            purposes: [Purpose::Response].into(),
            confidential: false,
            exclude: BTreeSet::new(),
            route_to: BTreeSet::new(),
            share_with: BTreeSet::new(),
            recipients: BTreeSet::new(),
            disclose_source: false,
        }
    }

    #[test]
    fn organisation_names_become_ids_and_unknown_ones_are_named() {
        let directory = [(OrgId(2), "Kanto Power"), (OrgId(3), "Ministry of Energy")];
        let mut f = serde_json::to_value(flash()).unwrap();
        f["exclude"] = serde_json::json!(["Ministry of Energy"]);
        f["share_with"] = serde_json::json!([2, "Kanto Power"]);
        resolve_org_names(&mut f, directory).unwrap();
        let f: FlashReport = serde_json::from_value(f).unwrap();
        assert_eq!(f.exclude, [OrgId(3)].into());
        assert_eq!(f.share_with, [OrgId(2)].into());

        let mut f = serde_json::to_value(flash()).unwrap();
        f["route_to"] = serde_json::json!(["Kanto Power"]);
        f["exclude"] = serde_json::json!(["Ministry of Energie", 3, "kanto power"]);
        let e = resolve_org_names(&mut f, directory).unwrap_err();
        assert_eq!(e.kind(), mamori_core::ErrorKind::InvalidInput);
        let msg = e.to_string();
        assert!(
            msg.contains("exclude")
                && msg.contains("\"Ministry of Energie\", \"kanto power\"")
                && msg.contains("GET /api/v1/orgs"),
            "{msg}"
        );
    }

    #[test]
    fn a_complete_flash_report_is_valid_and_round_trips() {
        let f = flash();
        f.validate(now()).unwrap();
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains("\"cause\":\"unknown\""), "{json}");
        assert!(json.contains("\"tlp\":\"amber\""), "{json}");
        assert_eq!(serde_json::from_str::<FlashReport>(&json).unwrap(), f);
    }

    #[test]
    fn each_rule_refuses_with_the_field_named() {
        type Change = Box<dyn Fn(&mut FlashReport)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "affected_service",
                Box::new(|f| f.affected_service = " ".into()),
            ),
            (
                "affected_service",
                Box::new(|f| f.affected_service = "x".repeat(201)),
            ),
            ("text", Box::new(|f| f.text.clear())),
            (
                "detected_at",
                Box::new(|f| f.detected_at = now() + chrono::Duration::hours(1)),
            ),
            ("purposes", Box::new(|f| f.purposes.clear())),
            (
                "route_to",
                Box::new(|f| {
                    f.exclude.insert(OrgId(7));
                    f.route_to.insert(OrgId(7));
                }),
            ),
            (
                "share_with",
                Box::new(|f| {
                    f.exclude.insert(OrgId(7));
                    f.share_with.insert(OrgId(7));
                }),
            ),
            (
                "confidential",
                Box::new(|f| {
                    f.confidential = true;
                    f.share_with.insert(OrgId(8));
                }),
            ),
            (
                "recipients",
                Box::new(|f| f.recipients = (1..=101).map(UserId).collect()),
            ),
        ];
        for (field, change) in cases {
            let mut f = flash();
            change(&mut f);
            let e = f.validate(now()).unwrap_err();
            assert!(
                matches!(&e, ShareError::Invalid { field: got, .. } if *got == field),
                "{field}: {e}"
            );
        }
    }

    #[test]
    fn missing_and_unknown_fields_and_values_are_refused_by_the_parser() {
        let mut v = serde_json::to_value(flash()).unwrap();
        v.as_object_mut().unwrap().remove("sector");
        let e = serde_json::from_value::<FlashReport>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `sector`"), "{e}");
        let mut v = serde_json::to_value(flash()).unwrap();
        v["cause"] = "sabotage".into();
        let e = serde_json::from_value::<FlashReport>(v)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("intentional"),
            "the accepted causes are listed: {e}"
        );
        let mut v = serde_json::to_value(flash()).unwrap();
        v["tlp"] = "white".into();
        assert!(serde_json::from_value::<FlashReport>(v).is_err());
        let mut v = serde_json::to_value(flash()).unwrap();
        v["reporter"] = 3.into();
        let e = serde_json::from_value::<FlashReport>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `reporter`"), "{e}");
    }

    #[test]
    fn impacts_are_ordered_and_named() {
        assert!(Impact::Low < Impact::Critical);
        for i in Impact::ALL {
            assert_eq!(Impact::from_slug(i.slug()), Some(i));
        }
        assert_eq!(Impact::from_slug("huge"), None);
    }

    #[test]
    fn stages_need_a_name_and_text() {
        let s = StageReport {
            stage: "interim".into(),
            text: "Contained.".into(),
            impact: None,
            cause: Some(Cause::Intentional),
            detail: None,
        };
        s.validate().unwrap();
        let mut t = s.clone();
        t.stage = String::new();
        assert!(t.validate().is_err());
        let mut t = s;
        t.text = String::new();
        assert!(t.validate().is_err());
    }
}
