//! TLP 2.0 (FIRST, 2022) and **the one visibility rule** (DESIGN invariant 5; PP-3, PP-11).
//!
//! Every shared object carries a [`Tlp`] marking and an [`Audience`]; [`may_see`] is the
//! only place that decides whether a viewer may see it. Every API, page, export and log
//! line that shows a shared object asks this function; nothing else re-implements it.
//!
//! The rule, per marking (FIRST TLP 2.0 definitions, mapped onto the platform):
//! - **CLEAR** — no limit: also shown to the public (unauthenticated) views.
//! - **GREEN** — the community: any authenticated member of the platform.
//! - **AMBER** — the audience organisations *and their clients* (need-to-know), plus
//!   individuals named in the audience.
//! - **AMBER+STRICT** — the audience organisations only: **no clients**. Not the same as AMBER.
//! - **RED** — only the individuals named in the audience.
//!
//! On top of the marking, for every marking: the originating organisation always sees its
//! own object; an organisation the originator **excluded** (PP-11, e.g. its own
//! supervising authority) never does; and a viewer whose clearance is below the audience's
//! required clearance (PP-3) does not.

use crate::actor::Clearance;
use crate::id::{OrgId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A TLP 2.0 marking. Ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Tlp {
    /// TLP:CLEAR — disclosure is not limited.
    #[serde(rename = "clear")]
    Clear,
    /// TLP:GREEN — limited disclosure, restricted to the community.
    #[serde(rename = "green")]
    Green,
    /// TLP:AMBER — limited disclosure, the recipient's organisation and its clients.
    #[serde(rename = "amber")]
    Amber,
    /// TLP:AMBER+STRICT — limited disclosure, the recipient's organisation only.
    #[serde(rename = "amber+strict")]
    AmberStrict,
    /// TLP:RED — for the eyes and ears of individual recipients only.
    #[serde(rename = "red")]
    Red,
}

/// The STIX 2.1 extension definition that TLP 2.0 marking definitions use.
pub const TLP2_EXTENSION_ID: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

impl Tlp {
    /// Every marking, least restrictive first.
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// The official STIX 2.1 marking-definition id (OASIS cti-stix-common-objects).
    pub fn stix_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// The marking for a STIX marking-definition id.
    ///
    /// Accepts the TLP 2.0 ids and, because feeds still send them, the four STIX 2.1
    /// TLP 1.0 ids, mapped as the TLP 2.0 standard says (WHITE became CLEAR; GREEN,
    /// AMBER and RED keep their meaning). Anything else is refused: an unknown marking is
    /// never guessed at.
    pub fn from_stix_id(id: &str) -> Result<Tlp, UnknownMarking> {
        match id {
            "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
            | "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9" => Ok(Tlp::Clear),
            "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
            | "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da" => Ok(Tlp::Green),
            "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
            | "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82" => Ok(Tlp::Amber),
            "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003" => Ok(Tlp::AmberStrict),
            "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
            | "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed" => Ok(Tlp::Red),
            other => Err(UnknownMarking(other.chars().take(80).collect())),
        }
    }

    /// The label as TLP 2.0 writes it: `TLP:AMBER+STRICT`.
    pub fn label(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// The value of the `tlp_2_0` property in the marking definition's extension.
    pub fn slug(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Tlp {
    type Err = UnknownMarking;
    /// Accepts `TLP:AMBER+STRICT`, `amber+strict`, `AMBER_STRICT` and the like, any case.
    /// `WHITE` is refused: TLP 2.0 renamed it CLEAR, and a person typing it should know.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let t = t
            .strip_prefix("TLP:")
            .or_else(|| t.strip_prefix("tlp:"))
            .unwrap_or(t);
        match t
            .to_ascii_lowercase()
            .replace(['_', ' ', '-'], "+")
            .as_str()
        {
            "clear" => Ok(Tlp::Clear),
            "green" => Ok(Tlp::Green),
            "amber" => Ok(Tlp::Amber),
            "amber+strict" => Ok(Tlp::AmberStrict),
            "red" => Ok(Tlp::Red),
            _ => Err(UnknownMarking(s.chars().take(80).collect())),
        }
    }
}

/// A marking that is not TLP 2.0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown TLP marking {0:?}: expected TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT or TLP:RED (TLP 2.0)"
)]
pub struct UnknownMarking(pub String);

/// Who an object is shared with, as its originator set it (PP-11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    /// The organisation that created or reported the object; it always sees it.
    pub originator: Option<OrgId>,
    /// Organisations the object is shared with (AMBER and AMBER+STRICT recipients; the
    /// originator may widen this list).
    #[serde(default)]
    pub organisations: BTreeSet<OrgId>,
    /// Individuals named as recipients (required for RED; also honoured for AMBER).
    #[serde(default)]
    pub individuals: BTreeSet<UserId>,
    /// Organisations that must never see the object, whatever the marking (PP-11: the
    /// reporter may exclude its own supervising authority).
    #[serde(default)]
    pub excluded: BTreeSet<OrgId>,
    /// The clearance a viewer needs (PP-3); `None` for ordinary information.
    #[serde(default)]
    pub clearance: Clearance,
}

/// A signed-in person looking at an object.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    /// The person.
    pub user: UserId,
    /// Their organisation.
    pub org: OrgId,
    /// Their clearance.
    pub clearance: Clearance,
    /// The organisations whose client their organisation is (for AMBER's "and clients").
    pub client_of: &'a [OrgId],
}

/// Who is looking.
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    /// Anyone, unauthenticated: public pages, public exports.
    Public,
    /// A member of the platform's community.
    Member(Recipient<'a>),
}

/// Whether `viewer` may see an object marked `marking` and shared with `audience`.
///
/// This is the only place the rule lives (DESIGN invariant 5): see the module docs.
pub fn may_see(marking: Tlp, audience: &Audience, viewer: Viewer<'_>) -> bool {
    let r = match viewer {
        Viewer::Public => return marking == Tlp::Clear,
        Viewer::Member(r) => r,
    };
    if audience.originator == Some(r.org) {
        return true;
    }
    if audience.excluded.contains(&r.org) || r.clearance < audience.clearance {
        return false;
    }
    let named = audience.individuals.contains(&r.user);
    let in_org = audience.organisations.contains(&r.org);
    // An excluded organisation is no conduit: its clients get nothing through it.
    let client = r
        .client_of
        .iter()
        .any(|o| audience.organisations.contains(o) && !audience.excluded.contains(o));
    match marking {
        Tlp::Clear | Tlp::Green => true,
        Tlp::Amber => in_org || client || named,
        Tlp::AmberStrict => in_org || named,
        Tlp::Red => named,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_labels_slugs_and_ids() {
        for t in Tlp::ALL {
            assert_eq!(t.label().parse::<Tlp>(), Ok(t));
            assert_eq!(t.slug().parse::<Tlp>(), Ok(t));
            assert_eq!(Tlp::from_stix_id(t.stix_id()), Ok(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.slug()));
            assert_eq!(serde_json::from_str::<Tlp>(&json).unwrap(), t);
        }
        assert_eq!("amber_strict".parse::<Tlp>(), Ok(Tlp::AmberStrict));
        assert!("TLP:WHITE".parse::<Tlp>().is_err());
        assert!("amber strict!".parse::<Tlp>().is_err());
        assert!(
            Tlp::from_stix_id("marking-definition--00000000-0000-0000-0000-000000000000").is_err()
        );
        assert!(serde_json::from_str::<Tlp>("\"white\"").is_err());
    }

    // The rule table: every marking × every kind of viewer × two audiences (ordinary, and
    // one that needs Secret clearance). `Y` may see, `.` may not. Columns are the markings
    // CLEAR, GREEN, AMBER, AMBER+STRICT, RED.
    const ORIGINATOR: OrgId = OrgId(1);
    const AUDIENCE_ORG: OrgId = OrgId(2);
    const OTHER_ORG: OrgId = OrgId(3);
    const EXCLUDED_ORG: OrgId = OrgId(4);
    const NAMED_USER: UserId = UserId(50);

    fn viewers() -> Vec<(&'static str, Viewer<'static>)> {
        static CLIENT_OF_AUDIENCE: [OrgId; 1] = [AUDIENCE_ORG];
        static CLIENT_OF_EXCLUDED: [OrgId; 1] = [EXCLUDED_ORG];
        let m = |user, org, clearance, client_of: &'static [OrgId]| {
            Viewer::Member(Recipient {
                user: UserId(user),
                org,
                clearance,
                client_of,
            })
        };
        vec![
            ("public", Viewer::Public),
            ("originator", m(10, ORIGINATOR, Clearance::None, &[])),
            ("audience org", m(20, AUDIENCE_ORG, Clearance::Secret, &[])),
            (
                "audience org, low clearance",
                m(21, AUDIENCE_ORG, Clearance::None, &[]),
            ),
            (
                "client of audience org",
                m(30, OTHER_ORG, Clearance::Secret, &CLIENT_OF_AUDIENCE),
            ),
            ("community member", m(40, OTHER_ORG, Clearance::Secret, &[])),
            (
                "named individual",
                m(NAMED_USER.0, OTHER_ORG, Clearance::Secret, &[]),
            ),
            (
                "excluded org (also in audience)",
                m(60, EXCLUDED_ORG, Clearance::TopSecret, &[]),
            ),
            (
                "client of excluded org",
                m(70, OTHER_ORG, Clearance::Secret, &CLIENT_OF_EXCLUDED),
            ),
        ]
    }

    fn audience(clearance: Clearance) -> Audience {
        Audience {
            originator: Some(ORIGINATOR),
            organisations: [AUDIENCE_ORG, EXCLUDED_ORG].into(),
            individuals: [NAMED_USER].into(),
            excluded: [EXCLUDED_ORG].into(),
            clearance,
        }
    }

    #[test]
    fn the_rule_table() {
        let expected: [(&str, Clearance, [&str; 9]); 2] = [
            (
                "ordinary",
                Clearance::None,
                [
                    "Y....", // public
                    "YYYYY", // originator
                    "YYYY.", // audience org
                    "YYYY.", // audience org, low clearance
                    "YYY..", // client of audience org: AMBER yes, AMBER+STRICT no
                    "YY...", // community member
                    "YYYYY", // named individual
                    ".....", // excluded org, even though also in the audience
                    "YY...", // client of an excluded org: community only, nothing through it
                ],
            ),
            (
                "needs Secret",
                Clearance::Secret,
                [
                    "Y....", // public sees CLEAR: clearance is asked of members only
                    "YYYYY", // originator
                    "YYYY.", // audience org, cleared
                    ".....", // audience org, not cleared
                    "YYY..", "YY...", "YYYYY", ".....", "YY...",
                ],
            ),
        ];
        let mut checked = 0;
        for (name, clearance, rows) in expected {
            let aud = audience(clearance);
            for ((who, viewer), row) in viewers().into_iter().zip(rows) {
                let got: String = Tlp::ALL
                    .iter()
                    .map(|&t| if may_see(t, &aud, viewer) { 'Y' } else { '.' })
                    .collect();
                assert_eq!(got, row, "audience {name}, viewer {who}");
                checked += 5;
            }
        }
        assert_eq!(checked, 2 * 9 * 5);
    }

    #[test]
    fn red_without_named_individuals_reaches_only_the_originator() {
        let aud = Audience {
            originator: Some(ORIGINATOR),
            organisations: [AUDIENCE_ORG].into(),
            ..Audience::default()
        };
        let r = |org| {
            Viewer::Member(Recipient {
                user: UserId(9),
                org,
                clearance: Clearance::TopSecret,
                client_of: &[],
            })
        };
        assert!(may_see(Tlp::Red, &aud, r(ORIGINATOR)));
        assert!(!may_see(Tlp::Red, &aud, r(AUDIENCE_ORG)));
    }
}
