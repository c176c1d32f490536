//! TAXII 2.1 resources (OASIS TAXII 2.1, §4–§5) as serde types. No HTTP: the server crate
//! serves these, a client reads them.
//!
//! Every resource keeps unknown properties in `extra` (TAXII allows custom properties), so
//! what a partner's server says is not lost.

use crate::bundle::{Limits, objects, parse_json};
use crate::error::{Error, Location, shorten};
use crate::id::StixTimestamp;
use crate::object::{Extra, StixObject};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The TAXII 2.1 media type (`Accept` and `Content-Type` of TAXII resources).
pub const MEDIA_TYPE_TAXII: &str = "application/taxii+json;version=2.1";
/// The STIX 2.1 media type (objects in envelopes, manifests' `media_type`).
pub const MEDIA_TYPE_STIX: &str = "application/stix+json;version=2.1";

/// Discovery (§4.1): the server's title and its API roots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    /// Human-readable name.
    pub title: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whom to contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// The default API root's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The API roots' URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_roots: Option<Vec<String>>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// API root information (§4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiRoot {
    /// Human-readable name.
    pub title: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Supported versions: [`MEDIA_TYPE_TAXII`].
    pub versions: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_content_length: u64,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A collection (§5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    /// Identifier (a UUID).
    pub id: String,
    /// Human-readable name.
    pub title: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Alternative name for URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Whether the requester may read objects.
    pub can_read: bool,
    /// Whether the requester may add objects.
    pub can_write: bool,
    /// Media types of the objects: [`MEDIA_TYPE_STIX`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_types: Option<Vec<String>>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The collections of an API root (§5.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Collections {
    /// The collections (absent when there are none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<Collection>>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An envelope (§3.7): a page of objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Whether more pages follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    /// Value for the `next` URL parameter to get the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The objects (absent when there are none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<StixObject>>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A manifest (§5.6): which object versions a collection holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Whether more pages follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    /// The records (absent when there are none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<ManifestRecord>>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One manifest record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRecord {
    /// Object id.
    pub id: String,
    /// When the server added this version.
    pub date_added: StixTimestamp,
    /// The version (the object's `modified`, or `created`).
    pub version: String,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The versions of one object (§5.9).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// Whether more pages follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    /// The versions (absent when there are none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<String>>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Whether a status is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    /// All objects processed.
    Complete,
    /// Some still being processed.
    Pending,
}

/// The status of a POST of objects (§4.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The status id.
    pub id: String,
    /// Complete or pending.
    pub status: StatusKind,
    /// When the request was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timestamp: Option<StixTimestamp>,
    /// Objects in the request.
    pub total_count: u64,
    /// Objects added.
    pub success_count: u64,
    /// Which were added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successes: Option<Vec<StatusDetails>>,
    /// Objects refused.
    pub failure_count: u64,
    /// Which were refused, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<StatusDetails>>,
    /// Objects still being processed.
    pub pending_count: u64,
    /// Which are pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pendings: Option<Vec<StatusDetails>>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One object in a status (§4.3.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDetails {
    /// Object id.
    pub id: String,
    /// Object version.
    pub version: String,
    /// Why (for failures) or what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A TAXII error message (§3.6.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// Short human-readable summary.
    pub title: String,
    /// Longer explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Identifier of this occurrence (mamori's request id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// Machine-readable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The HTTP status, repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<String>,
    /// Where to read more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_details: Option<String>,
    /// Structured details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Anything else, as received.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Parses and checks a TAXII envelope from untrusted bytes: the same bounds and object
/// rules as [`crate::parse_bundle`].
pub fn parse_envelope(bytes: &[u8], limits: &Limits) -> Result<Envelope, Error> {
    let v = parse_json(bytes, limits)?;
    let Value::Object(mut m) = v else {
        return Err(Error::invalid(
            Location {
                index: None,
                id: None,
                property: String::new(),
            },
            "a JSON object (a TAXII envelope)",
            Some(shorten(&v)),
        ));
    };
    let objs = match m.get("objects") {
        None => None,
        some => Some(objects(some, limits, None)?),
    };
    m.remove("objects");
    let mut env: Envelope = serde_json::from_value(Value::Object(m)).map_err(|e| {
        Error::invalid(
            Location {
                index: None,
                id: None,
                property: String::new(),
            },
            format!("a TAXII envelope ({e})"),
            None,
        )
    })?;
    env.objects = objs;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_checked_like_bundles() {
        let ok = br#"{"more": true, "next": "2", "objects": [{"type": "indicator",
            "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
            "valid_from": "2016-01-01T00:00:00Z"}]}"#;
        let env = parse_envelope(ok, &Limits::default()).unwrap();
        assert_eq!((env.more, env.next.as_deref()), (Some(true), Some("2")));
        assert_eq!(env.objects.as_ref().map(Vec::len), Some(1));
        let bad = br#"{"objects": [{"type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}]}"#;
        let e = parse_envelope(bad, &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "object 0 (indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f), property `created`"
            ),
            "{e}"
        );
        assert_eq!(
            parse_envelope(b"{}", &Limits::default()).unwrap(),
            Envelope::default()
        );
    }

    #[test]
    fn empty_resources_serialise_as_empty_objects() {
        assert_eq!(
            serde_json::to_string(&Collections::default()).unwrap(),
            "{}"
        );
        assert_eq!(serde_json::to_string(&Envelope::default()).unwrap(), "{}");
    }
}
