//! The sealed source (PP-12, DESIGN invariant 6): who may learn which organisation sent a
//! report, what everyone else sees instead, and what is scrubbed from what they read.
//!
//! - The **reporting organisation** always sees its own reports with their source.
//! - The **authorities the report is routed to** under the regime (legal reporting, PP-7:
//!   the regime's routes for the report's impact and sector, and the reporter's own
//!   `route_to`), except excluded ones and the centre itself, see the source.
//! - **Everyone else — the centre's analysts included —** sees the source sealed: no
//!   reporter organisation or user, id or name, but a stable opaque handle (`src-` and 128
//!   random bits stored with the report, so no reader can derive it from an organisation
//!   id), and every free text scrubbed of the reporter's **registered profile** (name,
//!   aliases, domains, contacts, address ranges) and the submitting user's name, by the
//!   relay's own rules (`mamori_stix::scrub_text`).
//! - Unless the reporter allowed identification (`disclose_source`): then everyone who
//!   sees the report sees its source.
//!
//! The only way past the seal is the reveal ([`crate::reveal`]): two people, an approval
//! and the reveal itself recorded in the ledger.
//!
//! **Architecture invariant:** [`Sources::sees_source`] is the one decision; the reports
//! API, the relay and the reveal all ask it.

use crate::error::ShareError;
use crate::regime::Regime;
use crate::report::{FlashReport, Impact};
use mamori_core::{OrgId, OrgKind, Sector, UserId};
use mamori_store::{Org, OrgIdentifier, Principal, ReportRelay, StoredReport, Tx};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The kinds of entry a registered profile holds.
pub const PROFILE_KINDS: [&str; 4] = ["alias", "domain", "contact", "range"];

/// A report's source as one viewer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum SourceOut {
    /// The source, for whom it is not sealed.
    Open {
        /// Always `false`.
        sealed: bool,
        /// The reporting organisation.
        org: OrgId,
        /// Its name.
        name: String,
    },
    /// The seal: an opaque handle that names this report's source without saying who.
    Sealed {
        /// Always `true`.
        sealed: bool,
        /// `src-` and 32 hex digits, random, stored with the report.
        handle: String,
    },
}

/// Where a report's relayed copy stands: shown to its reporter and the centre's analysts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayOut {
    /// `written`, `withheld` (anonymisation failed closed: nothing was redistributed),
    /// `not_relayed` (confidential, PP-22), or `pending`.
    pub state: String,
    /// Why it was withheld or not relayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many versions of the relayed copy were written.
    pub versions: i64,
}

/// Validates one profile entry; returns it trimmed.
pub fn check_identifier(kind: &str, value: &str) -> Result<String, ShareError> {
    let v = value.trim();
    if !PROFILE_KINDS.contains(&kind) {
        return Err(ShareError::Invalid {
            field: "kind",
            problem: format!(
                "{kind:?} is not a profile entry: use one of {}",
                PROFILE_KINDS.join(", ")
            ),
        });
    }
    if v.chars().count() < 2 || v.chars().count() > 200 {
        return Err(ShareError::Invalid {
            field: "value",
            problem: format!("a {kind} must be 2–200 characters, not {v:?}"),
        });
    }
    if kind == "range" {
        let ok = v.split_once('/').is_some_and(|(a, p)| {
            a.parse::<std::net::IpAddr>().is_ok_and(|a| {
                p.parse::<u8>()
                    .is_ok_and(|p| p <= if a.is_ipv4() { 32 } else { 128 })
            })
        });
        if !ok {
            return Err(ShareError::Invalid {
                field: "value",
                problem: format!("range {v:?} is not a CIDR block such as 198.51.100.0/24"),
            });
        }
    }
    Ok(v.to_owned())
}

/// What deciding and rendering sources needs: organisations, registered profiles, user
/// names and the reports' relay rows.
#[derive(Debug, Default)]
pub struct Sources {
    orgs: Vec<Org>,
    profiles: BTreeMap<OrgId, Vec<String>>,
    users: BTreeMap<UserId, String>,
    relays: BTreeMap<i64, ReportRelay>,
}

impl Sources {
    /// Loads organisations, profiles and user names.
    pub async fn load(tx: &mut Tx) -> Result<Sources, ShareError> {
        let orgs = tx.orgs().await?;
        let mut profiles: BTreeMap<OrgId, Vec<String>> = BTreeMap::new();
        for OrgIdentifier { org, value, .. } in tx.org_identifiers(&[]).await? {
            profiles.entry(org).or_default().push(value);
        }
        let users = tx
            .users()
            .await?
            .into_iter()
            .map(|u| (u.id, u.name))
            .collect();
        Ok(Sources {
            orgs,
            profiles,
            users,
            relays: BTreeMap::new(),
        })
    }

    /// Adds the relay rows of `reports`.
    pub async fn load_relays(&mut self, tx: &mut Tx, reports: &[i64]) -> Result<(), ShareError> {
        for r in tx.report_relays(reports).await? {
            self.relays.insert(r.report, r);
        }
        Ok(())
    }

    /// The organisations.
    pub fn orgs(&self) -> &[Org] {
        &self.orgs
    }

    /// An organisation's name.
    pub fn org_name(&self, id: OrgId) -> Option<&str> {
        self.orgs
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.name.as_str())
    }

    /// Report `id`'s relay row.
    pub fn relay(&self, id: i64) -> Option<&ReportRelay> {
        self.relays.get(&id)
    }

    /// What is scrubbed from a report by `org`, submitted by `user`: the organisation's
    /// name and registered profile, and the user's name.
    pub fn scrub_terms(&self, org: OrgId, user: UserId) -> Vec<String> {
        let mut t: Vec<String> = self.org_name(org).map(str::to_owned).into_iter().collect();
        t.extend(self.profiles.get(&org).into_iter().flatten().cloned());
        t.extend(self.users.get(&user).cloned());
        t
    }

    /// The authorities report `r` is routed to under `regime` (and by its `route_to`),
    /// without excluded organisations and without the centre.
    pub fn routed_authorities(
        &self,
        r: &StoredReport,
        flash: &FlashReport,
        impact: Impact,
        regime: &Regime,
    ) -> BTreeSet<OrgId> {
        if r.confidential {
            return BTreeSet::new();
        }
        let mut out = routed(regime, impact, r.sector, &self.orgs);
        out.extend(flash.route_to.iter().copied());
        let centres: BTreeSet<OrgId> = self
            .orgs
            .iter()
            .filter(|o| o.kind == OrgKind::CoordinationCentre)
            .map(|o| o.id)
            .collect();
        out.retain(|o| !centres.contains(o) && !r.audience.excluded.contains(o) && *o != r.org);
        out
    }

    /// **The one decision:** whether `who` sees report `r`'s source. See the module docs.
    pub fn sees_source(
        &self,
        who: &Principal,
        r: &StoredReport,
        flash: &FlashReport,
        impact: Impact,
        regime: &Regime,
    ) -> bool {
        who.org.id == r.org
            || flash.disclose_source
            || self
                .routed_authorities(r, flash, impact, regime)
                .contains(&who.org.id)
    }

    /// The source as `who` sees it.
    pub fn source_out(&self, r: &StoredReport, sees: bool) -> Result<SourceOut, ShareError> {
        if sees {
            return Ok(SourceOut::Open {
                sealed: false,
                org: r.org,
                name: self.org_name(r.org).unwrap_or_default().to_owned(),
            });
        }
        let handle = self.relay(r.id).map(|x| x.handle.clone()).ok_or_else(|| {
            ShareError::Store(mamori_store::StoreError::Corrupt {
                what: "report relay",
                detail: format!("report {} has no source handle", r.id),
            })
        })?;
        Ok(SourceOut::Sealed {
            sealed: true,
            handle,
        })
    }
}

/// The organisations a report of `impact` in `sector` is routed to by `regime`.
pub(crate) fn routed(
    regime: &Regime,
    impact: Impact,
    sector: Sector,
    orgs: &[Org],
) -> BTreeSet<OrgId> {
    let kinds = regime.routes(impact);
    orgs.iter()
        .filter(|o| kinds.contains(&o.kind))
        .filter(|o| match o.kind {
            // Sector bodies receive their own sector's reports only.
            OrgKind::SectorAuthority | OrgKind::Isac => o.sector == Some(sector),
            _ => true,
        })
        .map(|o| o.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_entries_are_checked() {
        assert_eq!(
            check_identifier("domain", " kanto-power.example ").unwrap(),
            "kanto-power.example"
        );
        check_identifier("range", "198.51.100.0/24").unwrap();
        check_identifier("range", "2001:db8:42::/48").unwrap();
        for (kind, value) in [
            ("range", "198.51.100.0"),
            ("range", "198.51.100.0/33"),
            ("nickname", "KP"),
            ("alias", "K"),
        ] {
            let e = check_identifier(kind, value).unwrap_err();
            assert_eq!(
                e.kind(),
                mamori_core::ErrorKind::InvalidInput,
                "{kind} {value}"
            );
        }
    }

    use crate::report::Cause;
    use mamori_core::time::from_millis;
    use mamori_core::tlp::Audience;
    use mamori_core::{Clearance, Role, Tlp, TokenId};

    const CENTRE: OrgId = OrgId(1);
    const REPORTER: OrgId = OrgId(2);
    const AUTHORITY: OrgId = OrgId(3); // electricity sector authority: routed at medium
    const MINISTRY: OrgId = OrgId(4); // also an electricity authority, but excluded
    const GAS_AUTHORITY: OrgId = OrgId(5); // another sector's: not routed
    const OTHER: OrgId = OrgId(6);
    const NAMED_AUTHORITY: OrgId = OrgId(7); // the reporter's own `route_to`

    fn org(id: OrgId, kind: OrgKind, sector: Option<Sector>) -> Org {
        Org {
            id,
            kind,
            sector,
            name: format!("org {id}"),
            created_at: from_millis(0).unwrap(),
        }
    }

    fn principal(o: &Org, role: Role) -> Principal {
        Principal {
            user: mamori_store::User {
                id: UserId(o.id.get() * 10),
                org: o.id,
                name: "u".into(),
                role,
                clearance: Clearance::None,
                created_at: from_millis(0).unwrap(),
            },
            org: o.clone(),
            token: TokenId(1),
            client_of: Vec::new(),
        }
    }

    // PP-12, DESIGN invariant 6: who sees a report's source, for a medium-impact
    // electricity report, with and without `disclose_source`, and held in confidence.
    #[test]
    fn the_source_rule_table() {
        let orgs = vec![
            org(CENTRE, OrgKind::CoordinationCentre, None),
            org(REPORTER, OrgKind::Operator, Some(Sector::Electricity)),
            org(
                AUTHORITY,
                OrgKind::SectorAuthority,
                Some(Sector::Electricity),
            ),
            org(
                MINISTRY,
                OrgKind::SectorAuthority,
                Some(Sector::Electricity),
            ),
            org(GAS_AUTHORITY, OrgKind::SectorAuthority, Some(Sector::Gas)),
            org(OTHER, OrgKind::Operator, Some(Sector::Gas)),
            org(NAMED_AUTHORITY, OrgKind::Isac, Some(Sector::Finance)),
        ];
        let sources = Sources {
            orgs: orgs.clone(),
            ..Sources::default()
        };
        let regime = Regime::default_regime().unwrap();
        let at = from_millis(1_790_000_000_000).unwrap();
        let report = |confidential| StoredReport {
            id: 1,
            org: REPORTER,
            user: UserId(20),
            tlp: Tlp::Amber,
            confidential,
            sector: Sector::Electricity,
            impact: "medium".into(),
            regime: "default".into(),
            detected_at: at,
            received_at: at,
            body: String::new(),
            audience: Audience {
                originator: Some(REPORTER),
                excluded: [MINISTRY].into(),
                ..Audience::default()
            },
            acknowledged_at: None,
            feedback_at: None,
            feedback: None,
        };
        let flash = |disclose| FlashReport {
            detected_at: at,
            sector: Sector::Electricity,
            affected_service: "gateway".into(),
            impact: Impact::Medium,
            cause: Cause::Unknown,
            tlp: Tlp::Amber,
            text: "t".into(),
            purposes: [crate::report::Purpose::Response].into(),
            confidential: false,
            exclude: [MINISTRY].into(),
            route_to: [NAMED_AUTHORITY].into(),
            share_with: BTreeSet::new(),
            recipients: BTreeSet::new(),
            disclose_source: disclose,
        };
        // Columns: sealed report, disclose_source, confidential. `Y` sees the source.
        let table = [
            (REPORTER, Role::Member, "YYY"),
            (CENTRE, Role::Analyst, ".Y."),
            (CENTRE, Role::Admin, ".Y."),
            (AUTHORITY, Role::Member, "YY."),
            (NAMED_AUTHORITY, Role::Member, "YY."),
            (MINISTRY, Role::Member, ".Y."),
            (GAS_AUTHORITY, Role::Member, ".Y."),
            (OTHER, Role::Member, ".Y."),
        ];
        for (who, role, want) in table {
            let o = orgs.iter().find(|o| o.id == who).unwrap();
            let p = principal(o, role);
            let got: String = [(false, false), (true, false), (false, true)]
                .into_iter()
                .map(|(disclose, confidential)| {
                    let seen = sources.sees_source(
                        &p,
                        &report(confidential),
                        &flash(disclose),
                        Impact::Medium,
                        regime,
                    );
                    if seen { 'Y' } else { '.' }
                })
                .collect();
            assert_eq!(got, want, "viewer {who} ({role:?})");
        }
        // A sealed source without a handle is a stored-data error, never an open source.
        assert!(sources.source_out(&report(false), false).is_err());
    }

    #[test]
    fn the_seal_serialises_without_the_source() {
        let sealed = SourceOut::Sealed {
            sealed: true,
            handle: "src-00112233445566778899aabbccddeeff".into(),
        };
        assert_eq!(
            serde_json::to_value(&sealed).unwrap(),
            serde_json::json!({"sealed": true, "handle": "src-00112233445566778899aabbccddeeff"})
        );
    }
}
