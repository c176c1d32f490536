//! STIX identifiers (`type--UUID`) and RFC 3339 UTC timestamps, validated when made.

use chrono::{DateTime, SecondsFormat, Utc};
use mamori_core::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use uuid::Uuid;

/// The namespace STIX 2.1 (§2.9) fixes for deterministic (UUIDv5) SCO identifiers.
pub const STIX_SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00abedb4_aa42_466c_9c01_fed23315a9b7);

/// Whether `t` is a valid STIX object type name (§3.1): 3–250 characters of lowercase
/// ASCII letters, digits and hyphens, not starting or ending with a hyphen and without two
/// hyphens in a row.
pub fn is_valid_type_name(t: &str) -> bool {
    (3..=250).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !t.starts_with('-')
        && !t.ends_with('-')
        && !t.contains("--")
}

/// A STIX identifier: `object-type--UUID` (§2.9), checked when made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StixId(String);

impl StixId {
    /// Parses an identifier. The error says what was expected.
    pub fn parse(s: &str) -> Result<StixId, &'static str> {
        let Some((t, u)) = s.split_once("--") else {
            return Err("an identifier of the form object-type--UUID");
        };
        if !is_valid_type_name(t) {
            return Err(
                "an identifier whose type part is 3-250 lowercase letters, digits and single hyphens",
            );
        }
        // The hyphenated 36-character form only (no braces, no URN, no simple form).
        if u.len() != 36 || Uuid::try_parse(u).is_err() {
            return Err("an identifier ending in a UUID like 8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
        }
        Ok(StixId(s.to_owned()))
    }

    /// An identifier from a constant this crate's tests check (the official TLP ids).
    pub(crate) fn official(s: &'static str) -> StixId {
        StixId(s.to_owned())
    }

    /// The identifier for `object_type` and an existing UUID.
    pub fn from_uuid(object_type: &str, uuid: Uuid) -> Result<StixId, &'static str> {
        StixId::parse(&format!("{object_type}--{}", uuid.hyphenated()))
    }

    /// A version-4 identifier from 16 random bytes the caller drew (this crate does no IO,
    /// so it has no random source of its own).
    pub fn from_random_bytes(object_type: &str, bytes: [u8; 16]) -> Result<StixId, &'static str> {
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        StixId::from_uuid(object_type, uuid)
    }

    /// A deterministic version-5 identifier in the STIX SCO namespace: the same `name`
    /// always gives the same id (§2.9 — for SCOs the name is the canonical JSON of the
    /// object's ID-contributing properties, e.g. `{"value":"198.51.100.3"}`).
    pub fn deterministic(object_type: &str, name: &str) -> Result<StixId, &'static str> {
        StixId::from_uuid(
            object_type,
            Uuid::new_v5(&STIX_SCO_NAMESPACE, name.as_bytes()),
        )
    }

    /// The object type part: `indicator` for `indicator--…`.
    pub fn object_type(&self) -> &str {
        self.0.split_once("--").map_or("", |(t, _)| t)
    }

    /// The UUID part.
    pub fn uuid(&self) -> Uuid {
        self.0
            .split_once("--")
            .and_then(|(_, u)| Uuid::try_parse(u).ok())
            .unwrap_or_default()
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StixId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StixId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for StixId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StixId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StixId::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("expected {e}, found {s:?}")))
    }
}

/// A STIX timestamp (§3.2): RFC 3339 in UTC with a `Z`, any number of fractional digits.
///
/// The text as received is kept, so an object round-trips byte-for-byte in its values;
/// comparisons use the instant. Timestamps mamori makes have millisecond precision, as the
/// specification requires of `created` and `modified`.
#[derive(Debug, Clone)]
pub struct StixTimestamp {
    raw: String,
    at: Timestamp,
}

impl StixTimestamp {
    /// Parses a timestamp; the error says what was expected.
    pub fn parse(s: &str) -> Result<StixTimestamp, &'static str> {
        const EXPECTED: &str = "an RFC 3339 UTC timestamp like 2024-01-31T09:00:00.000Z";
        let b = s.as_bytes();
        // Shape first: YYYY-MM-DDTHH:MM:SS[.fff…]Z. chrono alone would also take offsets,
        // lowercase separators and a space for the T, which STIX does not allow.
        let digits =
            |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        let at = |i: usize, c: u8| b.get(i) == Some(&c);
        let shape = digits(0..4)
            && at(4, b'-')
            && digits(5..7)
            && at(7, b'-')
            && digits(8..10)
            && at(10, b'T')
            && digits(11..13)
            && at(13, b':')
            && digits(14..16)
            && at(16, b':')
            && digits(17..19)
            && s.ends_with('Z')
            && match b.get(19) {
                Some(b'Z') => b.len() == 20,
                Some(b'.') => b.len() > 21 && digits(20..b.len() - 1),
                _ => false,
            };
        if !shape {
            return Err(EXPECTED);
        }
        let at = DateTime::parse_from_rfc3339(s).map_err(|_| EXPECTED)?;
        Ok(StixTimestamp {
            raw: s.to_owned(),
            at: at.with_timezone(&Utc),
        })
    }

    /// A timestamp with millisecond precision, the form mamori writes.
    pub fn from_datetime(t: Timestamp) -> StixTimestamp {
        let raw = t.to_rfc3339_opts(SecondsFormat::Millis, true);
        // Truncate the instant to what the text says, so parse(raw) == self.
        let at = DateTime::parse_from_rfc3339(&raw).map_or(t, |d| d.with_timezone(&Utc));
        StixTimestamp { raw, at }
    }

    /// The instant.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// The text as received (or as made).
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl PartialEq for StixTimestamp {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for StixTimestamp {}
impl PartialOrd for StixTimestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for StixTimestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

impl fmt::Display for StixTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for StixTimestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for StixTimestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StixTimestamp::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("expected {e}, found {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_tlp_ids_are_valid_identifiers() {
        for t in mamori_core::Tlp::ALL {
            assert_eq!(
                StixId::parse(t.stix_id()),
                Ok(StixId::official(t.stix_id()))
            );
        }
    }

    #[test]
    fn ids() {
        let id = StixId::parse("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f").unwrap();
        assert_eq!(id.object_type(), "indicator");
        assert_eq!(
            id.uuid().to_string(),
            "8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
        );
        for bad in [
            "indicator-8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "Indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "indicator--8e2e2d2b17d44cbf938f98ee46b3cd3f",
            "indicator--{8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f}",
            "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3g",
            "-x--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "",
        ] {
            assert!(StixId::parse(bad).is_err(), "{bad}");
        }
    }

    // Expected value from Python's `uuid.uuid5` (an independent implementation) over the
    // STIX namespace: uuid5(UUID("00abedb4-…"), '{"value":"example.com"}').
    #[test]
    fn deterministic_ids_match_python_uuid5() {
        let a = StixId::deterministic("domain-name", r#"{"value":"example.com"}"#).unwrap();
        assert_eq!(
            a.as_str(),
            "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7"
        );
        let r = StixId::from_random_bytes("indicator", [7; 16]).unwrap();
        assert_eq!(r.uuid().get_version_num(), 4);
    }

    #[test]
    fn timestamps() {
        for ok in [
            "2016-05-12T08:17:27.000Z",
            "2016-05-12T08:17:27Z",
            "2016-11-02T12:34:34.123456Z",
        ] {
            assert_eq!(StixTimestamp::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "2022-101-27T13:49:54.326Z",
            "2016-05-12T08:17:27.000+09:00",
            "2016-05-12 08:17:27.000Z",
            "2016-05-12t08:17:27.000Z",
            "2016-05-12T08:17:27.Z",
            "2016-13-12T08:17:27.000Z",
            "2016-05-12T08:17:27.000z",
            "",
        ] {
            assert!(StixTimestamp::parse(bad).is_err(), "{bad}");
        }
        let a = StixTimestamp::parse("2016-05-12T08:17:27Z").unwrap();
        let b = StixTimestamp::parse("2016-05-12T08:17:27.000Z").unwrap();
        assert_eq!(a, b);
        let t = mamori_core::time::from_millis(1_764_000_000_123).unwrap();
        assert_eq!(
            StixTimestamp::from_datetime(t).as_str(),
            "2025-11-24T16:00:00.123Z"
        );
    }
}
