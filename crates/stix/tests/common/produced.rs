//! A bundle as mamori produces one: a flash report from an operator, with the incident,
//! indicators, a vulnerability, the reporter's identity, a note, a sighting, observed data
//! and SCOs, each marked with an official TLP 2.0 marking.

use mamori_core::Tlp;
use mamori_stix::object::{
    AddressObject, Common, DomainName, ExternalReference, Extra, File, Identity, Incident,
    Indicator, Note, ObservedData, Relationship, Report, Sighting, Url, Vulnerability,
};
use mamori_stix::{Bundle, MarkingDefinition, StixId, StixObject, StixTimestamp};
use std::collections::BTreeMap;

pub(crate) const SOURCE_NAME: &str = "Acme Power Co.";
pub(crate) const SOURCE_DOMAIN: &str = "acme-power.example";
pub(crate) const SOURCE_CONTACT: &str = "soc@acme-power.example";
pub(crate) const SOURCE_PERSON: &str = "Taro Yamada";
pub(crate) const SOURCE_RANGE: &str = "198.51.100.0/24";

fn id(t: &str, n: u8) -> StixId {
    StixId::from_random_bytes(t, [n; 16]).unwrap()
}

pub(crate) fn source_identity() -> StixId {
    id("identity", 1)
}

fn common(t: &str, n: u8, tlp: Tlp) -> Common {
    let at = mamori_core::time::from_millis(1_764_000_000_000).unwrap();
    let mut c = Common::new_sdo(id(t, n), at, Some(source_identity()));
    c.mark(tlp);
    c
}

fn ts(s: &str) -> StixTimestamp {
    StixTimestamp::parse(s).unwrap()
}

fn sco(t: &str, value: &str) -> Common {
    let mut c = Common::new_sco(
        StixId::deterministic(
            t,
            &format!("{{\"value\":{}}}", serde_json::to_string(value).unwrap()),
        )
        .unwrap(),
    );
    c.mark(Tlp::Amber);
    c
}

pub(crate) fn bundle() -> Bundle {
    let source = Identity {
        common: common("identity", 1, Tlp::Green),
        name: SOURCE_NAME.into(),
        description: Some(format!("Electricity operator; web {SOURCE_DOMAIN}")),
        roles: None,
        identity_class: Some("organization".into()),
        sectors: Some(vec!["utilities".into()]),
        contact_information: Some(format!("{SOURCE_PERSON} <{SOURCE_CONTACT}>")),
        extra: Extra::new(),
    };
    let c2 = AddressObject {
        common: sco("ipv4-addr", "203.0.113.66"),
        value: "203.0.113.66".into(),
        resolves_to_refs: None,
        belongs_to_refs: None,
        extra: Extra::new(),
    };
    let victim = AddressObject {
        common: sco("ipv4-addr", "198.51.100.23"),
        value: "198.51.100.23".into(),
        resolves_to_refs: None,
        belongs_to_refs: None,
        extra: Extra::new(),
    };
    let own_domain = DomainName {
        common: sco("domain-name", SOURCE_DOMAIN),
        value: SOURCE_DOMAIN.into(),
        resolves_to_refs: Some(vec![victim.common.id.clone()]),
        extra: Extra::new(),
    };
    let bad_url = Url {
        common: sco("url", "http://c2.bad.example/gate.php"),
        value: "http://c2.bad.example/gate.php".into(),
        extra: Extra::new(),
    };
    let dropper = File {
        common: {
            let mut c = Common::new_sco(StixId::deterministic("file", "{\"hashes\":{\"SHA-256\":\"aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f\"}}").unwrap());
            c.mark(Tlp::Amber);
            c
        },
        hashes: Some(BTreeMap::from([(
            "SHA-256".to_owned(),
            "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f".to_owned(),
        )])),
        size: Some(77312),
        name: Some("invoice.exe".into()),
        extra: Extra::new(),
    };
    let indicator = Indicator {
        common: common("indicator", 2, Tlp::Amber),
        name: Some("C2 contacted from the control network".into()),
        description: Some(format!(
            "Seen by {SOURCE_NAME} from 198.51.100.23 towards 203.0.113.66; ask {SOURCE_CONTACT}."
        )),
        indicator_types: Some(vec!["malicious-activity".into()]),
        pattern:
            "[ipv4-addr:value = '203.0.113.66'] OR [url:value = 'http://c2.bad.example/gate.php']"
                .into(),
        pattern_type: "stix".into(),
        pattern_version: Some("2.1".into()),
        valid_from: ts("2025-11-24T16:00:00.000Z"),
        valid_until: Some(ts("2026-02-24T16:00:00.000Z")),
        kill_chain_phases: None,
        extra: Extra::new(),
    };
    let hash_indicator = Indicator {
        common: common("indicator", 3, Tlp::AmberStrict),
        name: Some("Dropper".into()),
        description: Some("Dropper delivered by e-mail.".into()),
        indicator_types: Some(vec!["malicious-activity".into()]),
        pattern: "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']".into(),
        pattern_type: "stix".into(),
        pattern_version: None,
        valid_from: ts("2025-11-24T16:00:00.000Z"),
        valid_until: None,
        kill_chain_phases: None,
        extra: Extra::new(),
    };
    let mut vuln_common = common("vulnerability", 4, Tlp::Clear);
    vuln_common.external_references = Some(vec![ExternalReference {
        source_name: "cve".into(),
        description: None,
        url: None,
        hashes: None,
        external_id: Some("CVE-2024-3400".into()),
        extra: Extra::new(),
    }]);
    let vuln = Vulnerability {
        common: vuln_common,
        name: "CVE-2024-3400".into(),
        description: Some("Exploited on the VPN gateway.".into()),
        extra: Extra::new(),
    };
    let incident = Incident {
        common: common("incident", 5, Tlp::Red),
        name: "SCADA historian contacted a C2 server".into(),
        description: Some(format!("Flash report by {SOURCE_NAME} (acme power ops)")),
        kill_chain_phases: None,
        extra: Extra::new(),
    };
    let observed = ObservedData {
        common: common("observed-data", 6, Tlp::Amber),
        first_observed: ts("2025-11-24T15:00:00.000Z"),
        last_observed: ts("2025-11-24T15:30:00.000Z"),
        number_observed: 12,
        object_refs: Some(vec![c2.common.id.clone(), victim.common.id.clone()]),
        objects: None,
        extra: Extra::new(),
    };
    let sighting = Sighting {
        common: common("sighting", 7, Tlp::Amber),
        description: None,
        first_seen: Some(ts("2025-11-24T15:00:00.000Z")),
        last_seen: Some(ts("2025-11-24T15:30:00.000Z")),
        count: Some(12),
        sighting_of_ref: indicator.common.id.clone(),
        observed_data_refs: Some(vec![observed.common.id.clone()]),
        where_sighted_refs: Some(vec![source_identity()]),
        summary: None,
        extra: Extra::new(),
    };
    let rel = Relationship {
        common: common("relationship", 8, Tlp::Amber),
        relationship_type: "related-to".into(),
        description: None,
        source_ref: incident.common.id.clone(),
        target_ref: indicator.common.id.clone(),
        start_time: None,
        stop_time: None,
        extra: Extra::new(),
    };
    let mut note_common = common("note", 9, Tlp::Green);
    note_common.extensions = None;
    let mut note_extra = Extra::new();
    note_extra.insert(
        "x_acme_power_ticket".into(),
        serde_json::json!("ACME POWER-4711"),
    );
    let note = Note {
        common: note_common,
        summary: Some("Centre feedback".into()),
        content: format!(
            "Thank you, {SOURCE_PERSON}. Block 203.0.113.66 at {SOURCE_DOMAIN}'s edge."
        ),
        authors: Some(vec![SOURCE_PERSON.into()]),
        object_refs: vec![incident.common.id.clone()],
        extra: note_extra,
    };
    let report = Report {
        common: common("report", 10, Tlp::Amber),
        name: format!("Flash report: {SOURCE_NAME}"),
        description: Some("Intentional: C2 traffic from the historian.".into()),
        report_types: Some(vec!["threat-report".into()]),
        published: ts("2025-11-24T16:00:00.000Z"),
        object_refs: vec![
            incident.common.id.clone(),
            indicator.common.id.clone(),
            hash_indicator.common.id.clone(),
            vuln.common.id.clone(),
            observed.common.id.clone(),
        ],
        extra: Extra::new(),
    };
    let mut objects: Vec<StixObject> = Tlp::ALL
        .iter()
        .map(|t| StixObject::MarkingDefinition(Box::new(MarkingDefinition::official_tlp(*t))))
        .collect();
    objects.extend([
        StixObject::Identity(Box::new(source)),
        StixObject::Report(Box::new(report)),
        StixObject::Incident(Box::new(incident)),
        StixObject::Indicator(Box::new(indicator)),
        StixObject::Indicator(Box::new(hash_indicator)),
        StixObject::Vulnerability(Box::new(vuln)),
        StixObject::ObservedData(Box::new(observed)),
        StixObject::Sighting(Box::new(sighting)),
        StixObject::Relationship(Box::new(rel)),
        StixObject::Note(Box::new(note)),
        StixObject::Ipv4Addr(Box::new(c2)),
        StixObject::Ipv4Addr(Box::new(victim)),
        StixObject::DomainName(Box::new(own_domain)),
        StixObject::Url(Box::new(bad_url)),
        StixObject::File(Box::new(dropper)),
    ]);
    Bundle::new(id("bundle", 11), objects).unwrap()
}

pub(crate) fn centre() -> Identity {
    let at = mamori_core::time::from_millis(1_700_000_000_000).unwrap();
    let mut c = Common::new_sdo(id("identity", 99), at, None);
    c.mark(Tlp::Clear);
    Identity {
        name: "National Cyber Coordination Centre".into(),
        description: None,
        roles: None,
        identity_class: Some("organization".into()),
        sectors: Some(vec!["government".into()]),
        contact_information: None,
        common: {
            c.created_by_ref = None;
            c
        },
        extra: Extra::new(),
    }
}
