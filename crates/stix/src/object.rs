//! The STIX 2.1 object model: common properties, the typed objects mamori exchanges, and a
//! lossless path for every other object type.
//!
//! Every struct keeps the properties it does not name in `extra`, and every optional
//! property is an `Option` (lists too), so `parse → serialise` gives back the same JSON
//! values — custom properties, empty lists and `false` flags included. Nothing a partner
//! sends is dropped.

use crate::id::{StixId, StixTimestamp};
use mamori_core::Timestamp;
use mamori_core::tlp::{TLP2_EXTENSION_ID, Tlp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Properties a [`StixObject`] does not name, kept as received.
pub type Extra = Map<String, Value>;

/// The `spec_version` mamori reads and writes.
pub const SPEC_VERSION: &str = "2.1";

/// The STIX Incident Core Extension (an extension-definition in OASIS
/// cti-stix-common-objects), whose properties an [`Incident`] keeps as JSON.
pub const INCIDENT_CORE_EXTENSION_ID: &str =
    "extension-definition--ef765651-680c-498d-9894-99799f2fa126";

/// The common properties (§3.2) every STIX object may carry. Which ones are required
/// depends on the kind of object; [`crate::parse_bundle`] checks that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Common {
    /// The object type: `indicator`, `ipv4-addr`, `x-mitre-tactic`…
    #[serde(rename = "type")]
    pub object_type: String,
    /// `2.1`; required on SDOs, SROs and SMOs, optional on SCOs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<String>,
    /// The identifier; its type part equals `object_type`.
    pub id: StixId,
    /// When this object was first created (SDOs, SROs, SMOs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<StixTimestamp>,
    /// When this version was made; never before `created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<StixTimestamp>,
    /// The identity that made the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_ref: Option<StixId>,
    /// Markings that apply to the whole object (TLP and others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_marking_refs: Option<Vec<StixId>>,
    /// Markings that apply to parts of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granular_markings: Option<Vec<GranularMarking>>,
    /// Free labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Confidence 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    /// References to outside sources (CVE ids, reports, ATT&CK ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_references: Option<Vec<ExternalReference>>,
    /// Language of the text properties (RFC 5646).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Whether the object has been revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<bool>,
    /// Extensions, by extension-definition id or name, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
    /// Whether an SCO's values were defanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defanged: Option<bool>,
}

impl Common {
    /// Common properties for a new SDO or SRO made by mamori: `spec_version` 2.1,
    /// `created == modified == at` (millisecond precision), made by `created_by`.
    pub fn new_sdo(id: StixId, at: Timestamp, created_by: Option<StixId>) -> Common {
        let t = StixTimestamp::from_datetime(at);
        Common {
            object_type: id.object_type().to_owned(),
            spec_version: Some(SPEC_VERSION.to_owned()),
            id,
            created: Some(t.clone()),
            modified: Some(t),
            created_by_ref: created_by,
            object_marking_refs: None,
            granular_markings: None,
            labels: None,
            confidence: None,
            external_references: None,
            lang: None,
            revoked: None,
            extensions: None,
            defanged: None,
        }
    }

    /// Common properties for a new SCO: only `type`, `spec_version` and `id`.
    pub fn new_sco(id: StixId) -> Common {
        Common {
            created: None,
            modified: None,
            ..Common::new_sdo(id, Timestamp::default(), None)
        }
    }

    /// Adds the official TLP 2.0 marking to `object_marking_refs`.
    pub fn mark(&mut self, tlp: Tlp) {
        let id = tlp_id(tlp);
        let refs = self.object_marking_refs.get_or_insert_with(Vec::new);
        if !refs.contains(&id) {
            refs.push(id);
        }
    }
}

fn tlp_id(tlp: Tlp) -> StixId {
    StixId::official(tlp.stix_id())
}

/// An external reference (§2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalReference {
    /// The source: `cve`, `capec`, `mitre-attack`, a vendor name.
    pub source_name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where to read more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Hashes of what `url` points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    /// The id in that source: `CVE-2024-3400`, `T0801`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A granular marking (§7.2.3): a marking (or language) applied to selected properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GranularMarking {
    /// The language of the selected properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The marking applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marking_ref: Option<StixId>,
    /// Which properties: `description`, `external_references.[0].url`.
    pub selectors: Vec<String>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A report (§4.14): a collection of threat intelligence about one or more topics —
/// mamori's flash reports and advisories go out as these (PP-2, PP-4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Title.
    pub name: String,
    /// Free text (executive context, PP-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Open vocabulary: `threat-report`, `attack-pattern`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_types: Option<Vec<String>>,
    /// When it was published.
    pub published: StixTimestamp,
    /// What it is about.
    pub object_refs: Vec<StixId>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An incident (§4.6); the Incident Core Extension's properties stay JSON in
/// `common.extensions` ([`Incident::core_extension`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Kill-chain phases, as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_chain_phases: Option<Value>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Incident {
    /// The Incident Core Extension's properties (determination, impacts, …), if present.
    pub fn core_extension(&self) -> Option<&Map<String, Value>> {
        self.common
            .extensions
            .as_ref()?
            .get(INCIDENT_CORE_EXTENSION_ID)?
            .as_object()
    }
}

/// An indicator (§4.7): a pattern that detects suspicious activity. [`crate::pattern`]
/// turns its pattern into IOCs for the detectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Open vocabulary: `malicious-activity`, `compromised`, `anomalous-activity`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator_types: Option<Vec<String>>,
    /// The detection pattern.
    pub pattern: String,
    /// The pattern language: `stix`, `snort`, `yara`, `sigma`…
    pub pattern_type: String,
    /// The version of the pattern language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_version: Option<String>,
    /// From when the indicator is valid.
    pub valid_from: StixTimestamp,
    /// Until when it is valid (after `valid_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<StixTimestamp>,
    /// Kill-chain phases, as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_chain_phases: Option<Value>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A vulnerability (§4.20), usually named by a CVE external reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Name (often the CVE id).
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Vulnerability {
    /// The CVE id from the external reference whose `source_name` is `cve`.
    pub fn cve(&self) -> Option<&str> {
        self.common
            .external_references
            .as_ref()?
            .iter()
            .find(|r| r.source_name == "cve")?
            .external_id
            .as_deref()
    }
}

/// An identity (§4.5): an organisation, person, sector or system — reporters, the centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// `individual`, `group`, `system`, `organization`, `class`, `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_class: Option<String>,
    /// Industry sectors (open vocabulary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sectors: Option<Vec<String>>,
    /// How to reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_information: Option<String>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A note (§4.10): added context, e.g. the centre's feedback on a report (PP-18).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Summary.
    #[serde(rename = "abstract", default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The text.
    pub content: String,
    /// Authors' names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authors: Option<Vec<String>>,
    /// What the note is about.
    pub object_refs: Vec<StixId>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A sighting (§5.2): someone saw an indicator, malware… (PP-13 feedback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// First seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<StixTimestamp>,
    /// Last seen (not before `first_seen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<StixTimestamp>,
    /// How many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// What was sighted.
    pub sighting_of_ref: StixId,
    /// Observed data supporting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_data_refs: Option<Vec<StixId>>,
    /// Identities or locations where it was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub where_sighted_refs: Option<Vec<StixId>>,
    /// Whether this is a summary of other sightings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<bool>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A relationship (§5.1) between two objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relationship {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// `indicates`, `uses`, `attributed-to`, `targets`…
    pub relationship_type: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// From.
    pub source_ref: StixId,
    /// To.
    pub target_ref: StixId,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<StixTimestamp>,
    /// Stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_time: Option<StixTimestamp>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A marking definition (§7.2.1): TLP 2.0 ones by extension, TLP 1.0 and statements by
/// `definition_type`/`definition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkingDefinition {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// `TLP:AMBER`, a statement's title…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `tlp` or `statement` (required unless `extensions` say what it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_type: Option<String>,
    /// `{"tlp": "amber"}`, `{"statement": "…"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<Value>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

impl MarkingDefinition {
    /// The official TLP 2.0 marking-definition object for `tlp`, exactly as OASIS
    /// cti-stix-common-objects publishes it (same JSON values).
    pub fn official_tlp(tlp: Tlp) -> MarkingDefinition {
        let mut ext = Map::new();
        ext.insert(
            "extension_type".to_owned(),
            Value::String("property-extension".to_owned()),
        );
        ext.insert("tlp_2_0".to_owned(), Value::String(tlp.slug().to_owned()));
        let mut extensions = Map::new();
        extensions.insert(TLP2_EXTENSION_ID.to_owned(), Value::Object(ext));
        let created = StixTimestamp::parse("2022-10-01T00:00:00.000Z")
            .unwrap_or_else(|_| StixTimestamp::from_datetime(Timestamp::default()));
        MarkingDefinition {
            common: Common {
                created: Some(created),
                modified: None,
                extensions: Some(extensions),
                ..Common::new_sco(tlp_id(tlp))
            },
            name: Some(tlp.label().to_owned()),
            definition_type: None,
            definition: None,
            extra: Extra::new(),
        }
    }

    /// The TLP level this object claims by its content (TLP 2.0 extension, TLP 1.0
    /// `definition`, or a `TLP:` name), whatever its id: `Some(Ok(level))`, `Some(Err(text))`
    /// for a TLP claim naming no known level, `None` for a non-TLP marking.
    pub fn claimed_tlp(&self) -> Option<Result<Tlp, String>> {
        let ext = self
            .common
            .extensions
            .as_ref()
            .and_then(|e| e.get(TLP2_EXTENSION_ID));
        if let Some(ext) = ext {
            let v = ext.get("tlp_2_0").and_then(Value::as_str).unwrap_or("");
            return Some(tlp_from_slug(v, false).ok_or_else(|| v.to_owned()));
        }
        if self.definition_type.as_deref() == Some("tlp") {
            let v = self
                .definition
                .as_ref()
                .and_then(|d| d.get("tlp"))
                .and_then(Value::as_str)
                .unwrap_or("");
            return Some(tlp_from_slug(v, true).ok_or_else(|| v.to_owned()));
        }
        let name = self.name.as_deref()?;
        let rest = name
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("tlp:"))
            .and_then(|_| name.get(4..))?;
        Some(tlp_from_slug(&rest.to_ascii_lowercase(), true).ok_or_else(|| name.to_owned()))
    }
}

/// A TLP slug (`amber+strict`) or, when `v1` is allowed, a TLP 1.0 one (`white` = CLEAR).
fn tlp_from_slug(s: &str, v1: bool) -> Option<Tlp> {
    match s {
        "white" if v1 => Some(Tlp::Clear),
        "clear" => Some(Tlp::Clear),
        "green" => Some(Tlp::Green),
        "amber" => Some(Tlp::Amber),
        "amber+strict" => Some(Tlp::AmberStrict),
        "red" => Some(Tlp::Red),
        _ => None,
    }
}

/// Observed data (§4.13): something was seen, as SCO references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedData {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Start of the observation window.
    pub first_observed: StixTimestamp,
    /// End of the window (not before `first_observed`).
    pub last_observed: StixTimestamp,
    /// How many times (1 to 999,999,999).
    pub number_observed: u64,
    /// The SCOs observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_refs: Option<Vec<StixId>>,
    /// Deprecated embedded observables (STIX 2.0 style), as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Value>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An `ipv4-addr` or `ipv6-addr` SCO (§6.4, §6.5): an address or a CIDR block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressObject {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// `198.51.100.3`, `198.51.100.0/24`, `2001:db8::/32`.
    pub value: String,
    /// MAC addresses it resolves to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolves_to_refs: Option<Vec<StixId>>,
    /// Autonomous systems it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub belongs_to_refs: Option<Vec<StixId>>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `domain-name` SCO (§6.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainName {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// The name.
    pub value: String,
    /// Addresses or names it resolves to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolves_to_refs: Option<Vec<StixId>>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `url` SCO (§6.17).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Url {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// The URL.
    pub value: String,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `file` SCO (§6.7); mamori uses its hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Hashes by algorithm: `MD5`, `SHA-1`, `SHA-256`, `SHA-512`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// File name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Any other object: its common properties typed, the rest as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherObject {
    /// Common properties.
    #[serde(flatten)]
    pub common: Common,
    /// Everything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One STIX 2.1 object. The types mamori works with are typed; every other valid object
/// (attack patterns, malware, custom `x-` objects…) travels losslessly as [`StixObject::Other`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StixObject {
    /// `report`.
    Report(Box<Report>),
    /// `incident`.
    Incident(Box<Incident>),
    /// `indicator`.
    Indicator(Box<Indicator>),
    /// `vulnerability`.
    Vulnerability(Box<Vulnerability>),
    /// `identity`.
    Identity(Box<Identity>),
    /// `note`.
    Note(Box<Note>),
    /// `sighting`.
    Sighting(Box<Sighting>),
    /// `relationship`.
    Relationship(Box<Relationship>),
    /// `marking-definition`.
    MarkingDefinition(Box<MarkingDefinition>),
    /// `observed-data`.
    ObservedData(Box<ObservedData>),
    /// `ipv4-addr`.
    Ipv4Addr(Box<AddressObject>),
    /// `ipv6-addr`.
    Ipv6Addr(Box<AddressObject>),
    /// `domain-name`.
    DomainName(Box<DomainName>),
    /// `url`.
    Url(Box<Url>),
    /// `file`.
    File(Box<File>),
    /// Any other object type.
    Other(Box<OtherObject>),
}

macro_rules! each {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            StixObject::Report($o) => $e,
            StixObject::Incident($o) => $e,
            StixObject::Indicator($o) => $e,
            StixObject::Vulnerability($o) => $e,
            StixObject::Identity($o) => $e,
            StixObject::Note($o) => $e,
            StixObject::Sighting($o) => $e,
            StixObject::Relationship($o) => $e,
            StixObject::MarkingDefinition($o) => $e,
            StixObject::ObservedData($o) => $e,
            StixObject::Ipv4Addr($o) => $e,
            StixObject::Ipv6Addr($o) => $e,
            StixObject::DomainName($o) => $e,
            StixObject::Url($o) => $e,
            StixObject::File($o) => $e,
            StixObject::Other($o) => $e,
        }
    };
}

impl StixObject {
    /// The common properties.
    pub fn common(&self) -> &Common {
        each!(self, o => &o.common)
    }

    /// The common properties, to change.
    pub fn common_mut(&mut self) -> &mut Common {
        each!(self, o => &mut o.common)
    }

    /// The identifier.
    pub fn id(&self) -> &StixId {
        &self.common().id
    }

    /// The object type.
    pub fn object_type(&self) -> &str {
        &self.common().object_type
    }

    /// The object as JSON.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    /// Converts JSON into the typed object for its `type`. This checks property types
    /// only; [`crate::parse_object`] and [`crate::parse_bundle`] also check the rules of
    /// the specification (required properties, timestamps, markings).
    pub fn from_value(v: Value) -> Result<StixObject, serde_json::Error> {
        fn b<T: serde::de::DeserializeOwned>(v: Value) -> Result<Box<T>, serde_json::Error> {
            serde_json::from_value(v).map(Box::new)
        }
        let t = v.get("type").and_then(Value::as_str).unwrap_or("");
        Ok(match t {
            "report" => StixObject::Report(b(v)?),
            "incident" => StixObject::Incident(b(v)?),
            "indicator" => StixObject::Indicator(b(v)?),
            "vulnerability" => StixObject::Vulnerability(b(v)?),
            "identity" => StixObject::Identity(b(v)?),
            "note" => StixObject::Note(b(v)?),
            "sighting" => StixObject::Sighting(b(v)?),
            "relationship" => StixObject::Relationship(b(v)?),
            "marking-definition" => StixObject::MarkingDefinition(b(v)?),
            "observed-data" => StixObject::ObservedData(b(v)?),
            "ipv4-addr" => StixObject::Ipv4Addr(b(v)?),
            "ipv6-addr" => StixObject::Ipv6Addr(b(v)?),
            "domain-name" => StixObject::DomainName(b(v)?),
            "url" => StixObject::Url(b(v)?),
            "file" => StixObject::File(b(v)?),
            _ => StixObject::Other(b(v)?),
        })
    }
}

impl Serialize for StixObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        each!(self, o => o.serialize(s))
    }
}

impl<'de> Deserialize<'de> for StixObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        StixObject::from_value(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_tlp_ids_parse_and_claims_match() {
        for t in Tlp::ALL {
            let md = MarkingDefinition::official_tlp(t);
            assert_eq!(md.common.id.as_str(), t.stix_id());
            assert_eq!(md.claimed_tlp(), Some(Ok(t)));
            assert_eq!(Tlp::from_stix_id(md.common.id.as_str()), Ok(t));
        }
    }

    #[test]
    fn unknown_properties_survive() {
        let v: Value = serde_json::json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
            "valid_from": "2016-01-01T00:00:00Z", "labels": [], "revoked": false,
            "x_acme_score": 7.5, "external_references": [{"source_name": "x", "x_y": [1, {"z": null}]}]
        });
        let o = StixObject::from_value(v.clone()).unwrap();
        assert!(matches!(o, StixObject::Indicator(_)));
        assert_eq!(o.to_value().unwrap(), v);
    }
}
