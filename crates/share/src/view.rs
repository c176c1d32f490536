//! Who may see a report: **the one function every output path calls** (DESIGN invariant
//! 5; PP-11, PP-22), built on `mamori_core::tlp::may_see`.
//!
//! A report is addressed to the one window (PP-8), so on top of the TLP rule:
//! - the centre's **analysts** handle every report the centre holds, whatever its
//!   marking — as recipients inside the centre, so the reporter's exclusions and the
//!   clearance rule still apply to them;
//! - a **confidential** early report (PP-22) is seen by the reporter and the centre's
//!   analysts and by no one else, whatever its marking;
//! - an organisation the reporter **excluded** never sees it, and nor do that
//!   organisation's clients through it (the rule in `core`).
//!
//! Everyone else sees a report exactly when `may_see(marking, audience, viewer)` says so,
//! where the audience is the reporter (originator), the centre, the authorities it was
//! routed to and the organisations it was shared with, the named individuals, and the
//! exclusions.
//!
//! **Architecture invariant:** [`Visible`] values are made only by [`reveal`], so code that
//! renders a report (API gets and lists, exports, later TAXII and the UI) can only render
//! what this function let through (STYLE principle 5).

use mamori_core::tlp::{Audience, Recipient, Viewer, may_see};
use mamori_core::{OrgId, OrgKind, Role, Tlp};
use mamori_store::Principal;

/// Who is looking at reports.
#[derive(Debug, Clone, Copy)]
pub enum ReportViewer<'a> {
    /// Unauthenticated.
    Public,
    /// A signed-in member.
    Member {
        /// The person, their organisation, clearance and client relations.
        recipient: Recipient<'a>,
        /// Whether they are an analyst of the coordination centre (the window).
        centre_analyst: bool,
    },
}

impl<'a> ReportViewer<'a> {
    /// The viewer an authenticated caller is. `client_of` lists the organisations whose
    /// client the caller's organisation is (AMBER's "and its clients").
    pub fn of(p: &Principal, client_of: &'a [OrgId]) -> ReportViewer<'a> {
        ReportViewer::Member {
            recipient: Recipient {
                user: p.user.id,
                org: p.org.id,
                clearance: p.user.clearance,
                client_of,
            },
            centre_analyst: p.org.kind == OrgKind::CoordinationCentre
                && p.user.role == Role::Analyst,
        }
    }
}

/// What decides who sees a report: its marking, whether it is held in confidence, and
/// its audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportAudience {
    /// The reporter's TLP 2.0 marking.
    pub tlp: Tlp,
    /// Held in confidence (PP-22).
    pub confidential: bool,
    /// Originator, recipient organisations and individuals, exclusions.
    pub audience: Audience,
}

/// Whether `viewer` may see a report shared with `a`. See the module docs.
pub fn visible(viewer: ReportViewer<'_>, a: &ReportAudience) -> bool {
    let (recipient, centre_analyst) = match viewer {
        ReportViewer::Public => {
            return !a.confidential && may_see(a.tlp, &a.audience, Viewer::Public);
        }
        ReportViewer::Member {
            recipient,
            centre_analyst,
        } => (recipient, centre_analyst),
    };
    let member = Viewer::Member(recipient);
    // The window: the centre is in every report's audience, so AMBER+STRICT reaches its
    // members unless excluded or not cleared; its analysts get RED as well.
    let as_window = centre_analyst && may_see(a.tlp.min(Tlp::AmberStrict), &a.audience, member);
    if a.confidential {
        return as_window || a.audience.originator == Some(recipient.org);
    }
    as_window || may_see(a.tlp, &a.audience, member)
}

/// Something the one visibility function let through to one viewer.
#[derive(Debug, Clone, PartialEq)]
pub struct Visible<T>(T);

impl<T> Visible<T> {
    /// The item.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// The item, owned.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// `item` wrapped as visible if [`visible`] lets `viewer` see it under `audience`.
pub fn reveal<T>(
    viewer: ReportViewer<'_>,
    audience: &ReportAudience,
    item: T,
) -> Option<Visible<T>> {
    visible(viewer, audience).then_some(Visible(item))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_core::{Clearance, UserId};

    const REPORTER: OrgId = OrgId(1);
    const CENTRE: OrgId = OrgId(2);
    const AUTHORITY: OrgId = OrgId(3); // routed to
    const OTHER: OrgId = OrgId(4);
    const EXCLUDED: OrgId = OrgId(5); // e.g. the reporter's supervising ministry
    const NAMED: UserId = UserId(50);

    fn viewers() -> Vec<(&'static str, ReportViewer<'static>)> {
        static CLIENT_OF_REPORTER: [OrgId; 1] = [REPORTER];
        static CLIENT_OF_AUTHORITY: [OrgId; 1] = [AUTHORITY];
        static CLIENT_OF_EXCLUDED: [OrgId; 1] = [EXCLUDED];
        let m = |user, org, analyst, client_of: &'static [OrgId]| ReportViewer::Member {
            recipient: Recipient {
                user: UserId(user),
                org,
                clearance: Clearance::None,
                client_of,
            },
            centre_analyst: analyst,
        };
        vec![
            ("anonymous", ReportViewer::Public),
            ("originator org", m(10, REPORTER, false, &[])),
            (
                "client of the originator",
                m(11, OTHER, false, &CLIENT_OF_REPORTER),
            ),
            ("centre analyst", m(20, CENTRE, true, &[])),
            ("centre, not an analyst", m(21, CENTRE, false, &[])),
            ("routed authority", m(30, AUTHORITY, false, &[])),
            (
                "client of the authority",
                m(31, OTHER, false, &CLIENT_OF_AUTHORITY),
            ),
            ("another community org", m(40, OTHER, false, &[])),
            ("named individual", m(NAMED.0, OTHER, false, &[])),
            ("excluded org", m(60, EXCLUDED, false, &[])),
            (
                "client of the excluded org",
                m(61, OTHER, false, &CLIENT_OF_EXCLUDED),
            ),
        ]
    }

    fn audience(tlp: Tlp, confidential: bool) -> ReportAudience {
        ReportAudience {
            tlp,
            confidential,
            audience: Audience {
                originator: Some(REPORTER),
                organisations: if confidential {
                    [CENTRE].into()
                } else {
                    [CENTRE, AUTHORITY].into()
                },
                individuals: if confidential {
                    [].into()
                } else {
                    [NAMED].into()
                },
                excluded: [EXCLUDED].into(),
                clearance: Clearance::None,
            },
        }
    }

    // Every marking × every kind of recipient, for an ordinary and a confidential report.
    // Columns: CLEAR, GREEN, AMBER, AMBER+STRICT, RED. `Y` sees it, `.` does not.
    #[test]
    fn the_report_rule_table() {
        let expected: [(bool, [&str; 11]); 2] = [
            (
                false,
                [
                    "Y....", // anonymous: CLEAR only
                    "YYYYY", // originator org: always its own
                    "YY...", // client of the originator: a community member, no more
                    "YYYYY", // centre analyst: the window handles everything
                    "YYYY.", // centre staff who are not analysts: the TLP rule
                    "YYYY.", // routed authority: an audience organisation
                    "YYY..", // its client: AMBER yes, AMBER+STRICT no
                    "YY...", // another community org
                    "YYYYY", // named individual: RED reaches them
                    ".....", // excluded org: never (PP-11)
                    "YY...", // client of the excluded org: nothing through it
                ],
            ),
            (
                true,
                [
                    ".....", // confidential (PP-22): reporter and centre analysts only
                    "YYYYY", ".....", "YYYYY", ".....", ".....", ".....", ".....", ".....",
                    ".....", ".....",
                ],
            ),
        ];
        let mut checked = 0;
        for (confidential, rows) in expected {
            for ((who, viewer), row) in viewers().into_iter().zip(rows) {
                let got: String = Tlp::ALL
                    .iter()
                    .map(|&t| {
                        let a = audience(t, confidential);
                        let seen = visible(viewer, &a);
                        assert_eq!(reveal(viewer, &a, ()).is_some(), seen);
                        if seen { 'Y' } else { '.' }
                    })
                    .collect();
                assert_eq!(got, row, "confidential {confidential}, viewer {who}");
                checked += 5;
            }
        }
        assert_eq!(checked, 2 * 11 * 5);
    }

    #[test]
    fn an_analyst_below_the_clearance_or_in_an_excluded_centre_sees_nothing_red() {
        let mut a = audience(Tlp::Red, false);
        a.audience.clearance = Clearance::Secret;
        let analyst = |clearance| ReportViewer::Member {
            recipient: Recipient {
                user: UserId(20),
                org: CENTRE,
                clearance,
                client_of: &[],
            },
            centre_analyst: true,
        };
        assert!(!visible(analyst(Clearance::None), &a));
        assert!(visible(analyst(Clearance::Secret), &a));
        a.audience.excluded.insert(CENTRE);
        assert!(!visible(analyst(Clearance::TopSecret), &a));
    }
}
