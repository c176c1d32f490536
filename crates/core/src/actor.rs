//! The actors of REQUIREMENTS.md as organisation kinds, and the roles a user can hold.
//!
//! An organisation's kind says what it is (an operator, a carrier, the coordination
//! centre…); a user's role says what that person may do on the platform. Some roles only
//! make sense in some kinds of organisation — an overseer works for the overseer — and
//! [`Role::allowed_in`] is the one place that says which.

use crate::named::named_enum;

named_enum! {
    /// What an organisation is (REQUIREMENTS "Actors").
    pub enum OrgKind ("organisation kind") {
        Operator => "operator", "重要インフラ事業者等", "Operator";
        Carrier => "carrier", "電気通信事業者", "Carrier";
        CoordinationCentre => "coordination_centre", "司令塔（調整センター）", "Coordination centre";
        OperationsUnit => "operations_unit", "実施部隊", "Operations unit";
        Overseer => "overseer", "独立機関", "Independent overseer";
        SectorAuthority => "sector_authority", "所管省庁", "Sector authority";
        Isac => "isac", "ISAC・セプター", "ISAC / CEPTOR";
        ForeignPartner => "foreign_partner", "海外パートナー", "Foreign partner";
    }
}

named_enum! {
    /// What a user may do on the platform.
    pub enum Role ("role") {
        Admin => "admin", "管理者", "Administrator";
        Analyst => "analyst", "分析官", "Coordination centre analyst";
        Officer => "officer", "実施担当官", "Operations officer";
        Overseer => "overseer", "監督官", "Overseer";
        Member => "member", "参加者", "Member";
    }
}

named_enum! {
    /// A person's security clearance (PP-3). Ordered: a higher clearance includes the
    /// lower ones.
    pub enum Clearance ("clearance") {
        None => "none", "なし", "None";
        Confidential => "confidential", "秘", "Confidential";
        Secret => "secret", "極秘", "Secret";
        TopSecret => "top_secret", "機密", "Top secret";
    }
}

#[allow(clippy::derivable_impls)] // the enum comes from a macro shared with enums that have no default
impl Default for Clearance {
    fn default() -> Self {
        Clearance::None
    }
}

impl Role {
    /// Whether a user with this role may belong to an organisation of `kind`.
    ///
    /// Administrators and analysts are the coordination centre's staff; officers belong
    /// to an operations unit; overseers to the overseer (AN-7: the overseer is
    /// independent, so no one else holds its role). Anyone may be a plain member.
    pub fn allowed_in(self, kind: OrgKind) -> bool {
        match self {
            Role::Admin | Role::Analyst => kind == OrgKind::CoordinationCentre,
            Role::Officer => kind == OrgKind::OperationsUnit,
            Role::Overseer => kind == OrgKind::Overseer,
            Role::Member => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearances_are_ordered() {
        assert!(Clearance::None < Clearance::Confidential);
        assert!(Clearance::Secret < Clearance::TopSecret);
    }

    #[test]
    fn roles_fit_only_their_kinds_of_organisation() {
        let allowed: Vec<(Role, OrgKind)> = Role::ALL
            .iter()
            .flat_map(|&r| OrgKind::ALL.iter().map(move |&k| (r, k)))
            .filter(|&(r, k)| r.allowed_in(k) && r != Role::Member)
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Role::Admin, OrgKind::CoordinationCentre),
                (Role::Analyst, OrgKind::CoordinationCentre),
                (Role::Officer, OrgKind::OperationsUnit),
                (Role::Overseer, OrgKind::Overseer),
            ]
        );
        assert!(OrgKind::ALL.iter().all(|&k| Role::Member.allowed_in(k)));
        assert_eq!("isac".parse::<OrgKind>(), Ok(OrgKind::Isac));
        assert!("root".parse::<Role>().is_err());
    }
}
