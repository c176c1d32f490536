//! Reporting regimes as data (PP-7, PP-8, PP-18): which stages a report goes through, when
//! each is due, which impact makes it required, where it is routed, and how soon the
//! centre owes the reporter an acknowledgement and feedback.
//!
//! A regime is read from TOML ([`Regime::from_toml`]); the default one is
//! `config/regimes/default.toml`, documented in `docs/REPORTING.md` and embedded here
//! ([`Regime::default_regime`]). [`status`] is a pure function of the report's facts, the
//! stages received, the regime and "now": the same answer for the reporter and for the
//! centre, testable with a manual clock.
//!
//! **Architecture invariant:** no clock is read here; "now" is always an argument.

use crate::error::ShareError;
use crate::report::Impact;
use chrono::Duration;
use mamori_core::OrgKind;
use mamori_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The default regime's file, embedded at build time.
pub const DEFAULT_REGIME_TOML: &str = include_str!("../../../config/regimes/default.toml");

/// Where a stage's deadline counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountFrom {
    /// The time the incident was detected.
    Detection,
    /// The time the previous required stage was received.
    Previous,
}

/// One stage of a regime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRule {
    /// Its name (`flash`, `interim`, `final`).
    pub name: String,
    /// What it holds, for people.
    pub description: String,
    /// Where its deadline counts from.
    pub from: CountFrom,
    /// How long after that it is due.
    pub within: Duration,
    /// The impact levels that make it required.
    pub impacts: BTreeSet<Impact>,
    /// The kinds of authority it is routed to.
    pub route_to: BTreeSet<OrgKind>,
}

/// A reporting regime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regime {
    /// Its name, stored with every report it governs.
    pub name: String,
    /// What it is, for people.
    pub description: String,
    /// How soon after receipt the centre acknowledges a report (PP-18).
    pub acknowledge_within: Duration,
    /// How soon after receipt the centre gives the reporter feedback (PP-18).
    pub feedback_within: Duration,
    /// The stages, in order; the first is the flash report itself.
    pub stages: Vec<StageRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegimeFile {
    name: String,
    #[serde(default)]
    description: String,
    acknowledge_within: String,
    feedback_within: String,
    stages: Vec<StageFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StageFile {
    name: String,
    #[serde(default)]
    description: String,
    from: CountFrom,
    within: String,
    impacts: BTreeSet<Impact>,
    #[serde(default)]
    route_to: BTreeSet<OrgKind>,
}

/// `90m`, `24h`, `30d` → a duration; anything else is refused.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s.get(..s.len() - unit.len_utf8())?.parse().ok()?;
    if n <= 0 || n > 3650 * 24 * 60 {
        return None;
    }
    match unit {
        'm' => Some(Duration::minutes(n)),
        'h' => Some(Duration::hours(n)),
        'd' => Some(Duration::days(n)),
        _ => None,
    }
}

impl Regime {
    /// Reads and checks a regime from TOML text.
    pub fn from_toml(text: &str) -> Result<Regime, ShareError> {
        let f: RegimeFile = toml::from_str(text).map_err(|e| ShareError::Regime {
            name: "(file)".into(),
            problem: e.to_string(),
        })?;
        let err = |problem: String| ShareError::Regime {
            name: f.name.clone(),
            problem,
        };
        let dur = |what: &str, s: &str| {
            parse_duration(s).ok_or_else(|| {
                err(format!(
                    "{what} = {s:?} is not a duration: write e.g. \"90m\", \"24h\" or \"30d\""
                ))
            })
        };
        if f.name.trim().is_empty() {
            return Err(err("the name is empty".into()));
        }
        let mut stages = Vec::with_capacity(f.stages.len());
        let mut names = BTreeSet::new();
        for (i, s) in f.stages.iter().enumerate() {
            if s.name.trim().is_empty() || !names.insert(s.name.clone()) {
                return Err(err(format!(
                    "stage {i}: the name {:?} is empty or used twice",
                    s.name
                )));
            }
            if s.impacts.is_empty() {
                return Err(err(format!(
                    "stage {:?}: `impacts` is empty, so it would never be required",
                    s.name
                )));
            }
            if i == 0 && (s.from != CountFrom::Detection || s.impacts.len() != Impact::ALL.len()) {
                return Err(err(format!(
                    "the first stage {:?} is the flash report: it must count from detection and be required at every impact level",
                    s.name
                )));
            }
            stages.push(StageRule {
                name: s.name.clone(),
                description: s.description.clone(),
                from: s.from,
                within: dur(&format!("stage {:?} within", s.name), &s.within)?,
                impacts: s.impacts.clone(),
                route_to: s.route_to.clone(),
            });
        }
        if stages.is_empty() {
            return Err(err("it has no stages: the first is the flash report".into()));
        }
        Ok(Regime {
            acknowledge_within: dur("acknowledge_within", &f.acknowledge_within)?,
            feedback_within: dur("feedback_within", &f.feedback_within)?,
            name: f.name,
            description: f.description,
            stages,
        })
    }

    /// The default regime (`config/regimes/default.toml`), read once. The embedded file
    /// is checked by a unit test, so an error here means a build whose tests failed.
    pub fn default_regime() -> Result<&'static Regime, ShareError> {
        static DEFAULT: OnceLock<Result<Regime, String>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| Regime::from_toml(DEFAULT_REGIME_TOML).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ShareError::Regime {
                name: "default".into(),
                problem: e.clone(),
            })
    }

    /// The flash stage (the first; every regime read by [`Regime::from_toml`] has one).
    pub fn flash(&self) -> Option<&StageRule> {
        self.stages.first()
    }

    /// The stage called `name`.
    pub fn stage(&self, name: &str) -> Option<&StageRule> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The stages required at `impact`, in order.
    pub fn required(&self, impact: Impact) -> impl Iterator<Item = &StageRule> {
        self.stages
            .iter()
            .filter(move |s| s.impacts.contains(&impact))
    }

    /// The kinds of authority a report of `impact` is routed to.
    pub fn routes(&self, impact: Impact) -> BTreeSet<OrgKind> {
        self.required(impact)
            .flat_map(|s| s.route_to.iter().copied())
            .collect()
    }
}

/// What [`status`] needs to know about a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportFacts {
    /// When the incident was detected.
    pub detected_at: Timestamp,
    /// When the centre received the flash report.
    pub received_at: Timestamp,
    /// The impact as now assessed (the latest stage's, or the flash report's).
    pub impact: Impact,
    /// When the centre acknowledged it, if it has.
    pub acknowledged_at: Option<Timestamp>,
    /// When the centre gave feedback, if it has.
    pub feedback_at: Option<Timestamp>,
}

/// Where a stage or a centre duty stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum State {
    /// Not yet started: its deadline counts from a stage not yet received.
    Pending,
    /// Open, with a deadline still ahead.
    Due,
    /// Open, and the deadline has passed.
    Overdue,
    /// Done (received, acknowledged, answered), perhaps late.
    Received,
}

/// One stage's or duty's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Step {
    /// The stage's name, or `acknowledgement` / `feedback` for the centre's duties.
    pub name: String,
    /// Where it stands.
    pub state: State,
    /// When it is (or was) due; `None` while pending.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub due: Option<Timestamp>,
    /// When it was done.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub done_at: Option<Timestamp>,
    /// Done after its deadline.
    pub late: bool,
}

/// A report's status under its regime, as reporter and centre both see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// The regime applied.
    pub regime: String,
    /// The reporter's stages required at the current impact, in order.
    pub stages: Vec<Step>,
    /// The centre's acknowledgement (PP-18).
    pub acknowledgement: Step,
    /// The centre's feedback to the reporter (PP-18).
    pub feedback: Step,
    /// Whether any stage or centre duty is overdue.
    pub overdue: bool,
    /// Whether every required stage has been received.
    pub complete: bool,
}

fn step(name: &str, due: Option<Timestamp>, done: Option<Timestamp>, now: Timestamp) -> Step {
    let state = match (due, done) {
        (_, Some(_)) => State::Received,
        (None, None) => State::Pending,
        (Some(d), None) if now > d => State::Overdue,
        (Some(_), None) => State::Due,
    };
    Step {
        name: name.to_owned(),
        state,
        due,
        done_at: done,
        late: matches!((due, done), (Some(d), Some(t)) if t > d),
    }
}

/// Each required stage's state and the centre's duties at `now`.
///
/// The first stage (the flash report) counts as received when the report was. A stage
/// counted `from = "previous"` is pending until the previous required stage is received;
/// its deadline then runs from that receipt. `received` maps stage names to the time each
/// was received; stages not required at the current impact are left out.
pub fn status(
    report: &ReportFacts,
    received: &[(&str, Timestamp)],
    regime: &Regime,
    now: Timestamp,
) -> Status {
    let got = |name: &str| -> Option<Timestamp> {
        if regime.flash().is_some_and(|f| f.name == name) {
            return Some(report.received_at);
        }
        received
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .min()
    };
    let mut stages = Vec::new();
    // When the previous required stage arrived; `None` while it has not.
    let mut previous = Some(report.detected_at);
    for rule in regime.required(report.impact) {
        let start = match rule.from {
            CountFrom::Detection => Some(report.detected_at),
            CountFrom::Previous => previous,
        };
        let done = got(&rule.name);
        stages.push(step(&rule.name, start.map(|s| s + rule.within), done, now));
        previous = done;
    }
    let acknowledgement = step(
        "acknowledgement",
        Some(report.received_at + regime.acknowledge_within),
        report.acknowledged_at,
        now,
    );
    let feedback = step(
        "feedback",
        Some(report.received_at + regime.feedback_within),
        report.feedback_at,
        now,
    );
    let overdue = stages
        .iter()
        .chain([&acknowledgement, &feedback])
        .any(|s| s.state == State::Overdue);
    let complete = stages.iter().all(|s| s.state == State::Received);
    Status {
        regime: regime.name.clone(),
        stages,
        acknowledgement,
        feedback,
        overdue,
        complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_core::Clock;
    use mamori_core::time::{ManualClock, from_millis};

    fn t0() -> Timestamp {
        from_millis(1_790_000_000_000).unwrap()
    }

    #[test]
    fn the_default_regime_file_parses_and_says_what_the_docs_say() {
        let r = Regime::from_toml(DEFAULT_REGIME_TOML).unwrap();
        assert_eq!(&r, Regime::default_regime().unwrap());
        let names: Vec<&str> = r.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["flash", "interim", "final"]);
        assert_eq!(r.flash().unwrap().within, Duration::hours(24));
        assert_eq!(r.stage("interim").unwrap().within, Duration::hours(72));
        assert_eq!(r.stage("final").unwrap().from, CountFrom::Previous);
        assert_eq!(r.acknowledge_within, Duration::hours(1));
        assert_eq!(r.feedback_within, Duration::hours(72));
        assert_eq!(r.required(Impact::Low).count(), 1);
        assert_eq!(r.required(Impact::Medium).count(), 2);
        assert_eq!(r.required(Impact::Critical).count(), 3);
        assert_eq!(r.routes(Impact::Low), [OrgKind::CoordinationCentre].into());
        assert_eq!(
            r.routes(Impact::High),
            [OrgKind::CoordinationCentre, OrgKind::SectorAuthority].into()
        );
        // The documentation names the same deadlines.
        let doc = include_str!("../../../docs/REPORTING.md");
        for needle in ["24 h", "72 h", "30 d", "1 h"] {
            assert!(doc.contains(needle), "docs/REPORTING.md mentions {needle}");
        }
    }

    #[test]
    fn bad_regimes_are_refused_with_a_reason() {
        let good = DEFAULT_REGIME_TOML;
        for (from, to, want) in [
            (
                "within = \"24h\"",
                "within = \"24 hours\"",
                "not a duration",
            ),
            (
                "acknowledge_within = \"1h\"",
                "acknowledge_within = \"0h\"",
                "not a duration",
            ),
            ("name = \"interim\"", "name = \"flash\"", "used twice"),
            (
                "impacts = [\"low\", \"medium\", \"high\", \"critical\"]",
                "impacts = [\"high\", \"critical\"]",
                "first stage",
            ),
            (
                "impacts = [\"high\", \"critical\"]",
                "impacts = []",
                "never be required",
            ),
            (
                "route_to = [\"coordination_centre\"]",
                "route_to = [\"ministry\"]",
                "unknown variant",
            ),
            ("feedback_within", "feedback_in", "unknown field"),
        ] {
            assert!(good.contains(from), "{from}");
            let text = good.replacen(from, to, 1);
            let e = Regime::from_toml(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{to}: {e}");
        }
        assert_eq!(parse_duration("90m"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("30d"), Some(Duration::days(30)));
        for bad in ["", "h", "-1h", "1w", "1.5h", "99999999999d", "１h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    fn states(s: &Status) -> Vec<(String, State)> {
        s.stages
            .iter()
            .chain([&s.acknowledgement, &s.feedback])
            .map(|st| (st.name.clone(), st.state))
            .collect()
    }

    #[test]
    fn stages_go_due_overdue_and_received_as_the_clock_moves() {
        use State::*;
        let r = Regime::default_regime().unwrap();
        let clock = ManualClock::new(t0());
        let mut facts = ReportFacts {
            detected_at: t0() - Duration::hours(2),
            received_at: t0(),
            impact: Impact::High,
            acknowledged_at: None,
            feedback_at: None,
        };
        let s = |facts: &ReportFacts, got: &[(&str, Timestamp)]| status(facts, got, r, clock.now());
        let names = |v: [State; 5]| -> Vec<(String, State)> {
            ["flash", "interim", "final", "acknowledgement", "feedback"]
                .into_iter()
                .map(str::to_owned)
                .zip(v)
                .collect()
        };

        // Just received: the flash is in; interim due at detection + 72 h; final waits.
        let now = s(&facts, &[]);
        assert_eq!(states(&now), names([Received, Due, Pending, Due, Due]));
        assert_eq!(
            now.stages[1].due,
            Some(facts.detected_at + Duration::hours(72))
        );
        assert_eq!(now.stages[2].due, None);
        assert!(!now.overdue && !now.complete);

        // 61 minutes later the centre has not acknowledged: its duty is overdue.
        clock.advance(Duration::minutes(61));
        let later = s(&facts, &[]);
        assert_eq!(
            states(&later),
            names([Received, Due, Pending, Overdue, Due])
        );
        assert!(later.overdue);
        facts.acknowledged_at = Some(clock.now());
        assert!(s(&facts, &[]).acknowledgement.late);

        // Past detection + 72 h without an interim report: overdue. Feedback counts from
        // receipt (two hours after detection), so it is still due, until it is not.
        clock.set(facts.detected_at + Duration::hours(72) + Duration::seconds(1));
        assert_eq!(
            states(&s(&facts, &[])),
            names([Received, Overdue, Pending, Received, Due])
        );
        clock.set(facts.received_at + Duration::hours(72) + Duration::seconds(1));
        assert_eq!(
            states(&s(&facts, &[])),
            names([Received, Overdue, Pending, Received, Overdue])
        );

        // The interim report arrives; the final is now due 30 days from it.
        let interim_at = clock.now();
        let got = [("interim", interim_at)];
        facts.feedback_at = Some(clock.now());
        let st = s(&facts, &got);
        assert_eq!(
            states(&st),
            names([Received, Received, Due, Received, Received])
        );
        assert!(st.stages[1].late);
        assert_eq!(st.stages[2].due, Some(interim_at + Duration::days(30)));

        clock.advance(Duration::days(30) + Duration::seconds(1));
        assert_eq!(s(&facts, &got).stages[2].state, Overdue);
        let got = [("interim", interim_at), ("final", clock.now())];
        let done = s(&facts, &got);
        assert!(done.complete && !done.overdue && done.stages[2].late);
    }

    #[test]
    fn a_flash_report_sent_late_is_marked_late_and_low_impact_needs_no_more() {
        let r = Regime::default_regime().unwrap();
        let facts = ReportFacts {
            detected_at: t0() - Duration::hours(30),
            received_at: t0(),
            impact: Impact::Low,
            acknowledged_at: None,
            feedback_at: None,
        };
        let st = status(&facts, &[], r, t0());
        assert_eq!(st.stages.len(), 1);
        assert!(st.stages[0].late && st.complete);
        // A raised impact brings the interim stage in, already overdue.
        let raised = ReportFacts {
            impact: Impact::Medium,
            ..facts
        };
        let st = status(&raised, &[], r, t0() + Duration::hours(43));
        assert_eq!(st.stages[1].state, State::Overdue);
    }
}
