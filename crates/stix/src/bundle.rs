//! Bundles: bounded parsing, validation at the edge, serialisation.

use crate::error::{Error, Location, shorten};
use crate::id::StixId;
use crate::object::{Extra, StixObject};
use crate::validate;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// Bounds on a document from outside. The caller sets them (the HTTP body limit, the
/// TAXII `max_content_length`); nothing bigger is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document, in bytes.
    pub max_bytes: usize,
    /// Most objects in one bundle or envelope.
    pub max_objects: usize,
    /// Deepest nesting of JSON arrays and objects (the bundle itself is level 1).
    pub max_depth: usize,
}

impl Default for Limits {
    /// 64 MiB, 250,000 objects, 32 levels: room for MITRE ATT&CK Enterprise or a
    /// 10⁵-indicator feed, not for a decompression bomb.
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 20,
            max_objects: 250_000,
            max_depth: 32,
        }
    }
}

/// A STIX 2.1 bundle whose every object passed the STIX 2.1 rules
/// and the TLP marking check. Only [`parse_bundle`] and [`Bundle::new`] make one.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    id: StixId,
    objects: Vec<StixObject>,
    extra: Extra,
}

impl Bundle {
    /// A bundle of objects mamori made (or changed); each is checked as if it had come
    /// from outside, so what mamori sends is held to the same rules as what it accepts.
    pub fn new(id: StixId, objects: Vec<StixObject>) -> Result<Bundle, Error> {
        if id.object_type() != "bundle" {
            return Err(Error::invalid(
                Location {
                    index: None,
                    id: Some(id.to_string()),
                    property: "id".to_owned(),
                },
                "a bundle--UUID identifier",
                None,
            ));
        }
        for (i, o) in objects.iter().enumerate() {
            let v = o.to_value().map_err(Error::Serialise)?;
            validate::object(&v, Some(i))?;
        }
        Ok(Bundle {
            id,
            objects,
            extra: Extra::new(),
        })
    }

    /// The bundle's id.
    pub fn id(&self) -> &StixId {
        &self.id
    }

    /// The objects, in order.
    pub fn objects(&self) -> &[StixObject] {
        &self.objects
    }

    /// The objects, owned.
    pub fn into_objects(self) -> Vec<StixObject> {
        self.objects
    }

    /// The object with this id (the first, if several versions are present).
    pub fn get(&self, id: &StixId) -> Option<&StixObject> {
        self.objects.iter().find(|o| o.id() == id)
    }

    /// Top-level properties other than `type`, `id` and `objects`, as received.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// The bundle as JSON values.
    pub fn to_value(&self) -> Result<Value, Error> {
        serde_json::to_value(self).map_err(Error::Serialise)
    }

    /// The bundle as compact JSON bytes (`application/stix+json;version=2.1`).
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(Error::Serialise)
    }
}

impl Serialize for Bundle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", "bundle")?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("objects", &self.objects)?;
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Refuses a document over the size or nesting limit before any parsing.
pub(crate) fn check_shape(bytes: &[u8], limits: &Limits) -> Result<(), Error> {
    if bytes.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            bytes: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(Error::TooDeep {
                        limit: limits.max_depth,
                        offset: i,
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses JSON within the limits.
pub(crate) fn parse_json(bytes: &[u8], limits: &Limits) -> Result<Value, Error> {
    check_shape(bytes, limits)?;
    serde_json::from_slice(bytes).map_err(|e| Error::json(&e))
}

fn top(property: &str, id: Option<&str>) -> Location {
    Location {
        index: None,
        id: id.map(crate::error::shorten_str),
        property: property.to_owned(),
    }
}

/// Checks and types an `objects` array (of a bundle or a TAXII envelope).
pub(crate) fn objects(
    list: Option<&Value>,
    limits: &Limits,
    owner: Option<&str>,
) -> Result<Vec<StixObject>, Error> {
    let list = match list {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(Error::invalid(
                top("objects", owner),
                "a list of STIX objects",
                Some(shorten(v)),
            ));
        }
    };
    if list.len() > limits.max_objects {
        return Err(Error::TooManyObjects {
            count: list.len(),
            limit: limits.max_objects,
        });
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        out.push(typed(v, Some(i))?);
    }
    Ok(out)
}

/// Validates one object and converts it to its typed form.
fn typed(v: &Value, index: Option<usize>) -> Result<StixObject, Error> {
    validate::object(v, index)?;
    StixObject::from_value(v.clone()).map_err(|e| {
        Error::invalid(
            Location {
                index,
                id: v
                    .get("id")
                    .and_then(Value::as_str)
                    .map(crate::error::shorten_str),
                property: String::new(),
            },
            format!("properties of the right types ({e})"),
            None,
        )
    })
}

/// Parses and checks a STIX 2.1 bundle from untrusted bytes.
///
/// Refuses, naming the first problem: a document over `limits`; malformed JSON; a
/// top level that is not a bundle (`type` must be `bundle`, `id` a `bundle--UUID`, no
/// `spec_version` — that is STIX 2.0); and any object that breaks a rule (required
/// properties, id prefix, RFC 3339 UTC timestamps, `modified >= created`, references,
/// a valid STIX pattern on `stix` indicators) or carries a marking that only looks like
/// TLP.
pub fn parse_bundle(bytes: &[u8], limits: &Limits) -> Result<Bundle, Error> {
    let v = parse_json(bytes, limits)?;
    let Value::Object(mut m) = v else {
        return Err(Error::invalid(
            top("", None),
            "a JSON object (a STIX bundle)",
            Some(shorten(&v)),
        ));
    };
    let id_text = m.get("id").and_then(Value::as_str).map(str::to_owned);
    let idr = id_text.as_deref();
    match m.get("type") {
        Some(Value::String(t)) if t == "bundle" => {}
        found => {
            return Err(Error::invalid(
                top("type", idr),
                "\"bundle\"",
                found.map(shorten),
            ));
        }
    }
    let id = match m.get("id").and_then(Value::as_str).map(StixId::parse) {
        Some(Ok(id)) if id.object_type() == "bundle" => id,
        _ => {
            return Err(Error::invalid(
                top("id", idr),
                "a bundle--UUID identifier",
                m.get("id").map(shorten),
            ));
        }
    };
    if let Some(sv) = m.get("spec_version") {
        return Err(Error::invalid(
            top("spec_version", idr),
            "no spec_version on a STIX 2.1 bundle (a bundle with one is STIX 2.0, which is not accepted)",
            Some(shorten(sv)),
        ));
    }
    let objects = objects(m.get("objects"), limits, idr)?;
    m.remove("type");
    m.remove("id");
    m.remove("objects");
    Ok(Bundle {
        id,
        objects,
        extra: m,
    })
}

/// Parses and checks one STIX 2.1 object (not in a bundle) from untrusted bytes, by the
/// same rules as [`parse_bundle`].
pub fn parse_object(bytes: &[u8], limits: &Limits) -> Result<StixObject, Error> {
    let v = parse_json(bytes, limits)?;
    typed(&v, None)
}

/// Checks one object given as JSON (e.g. from storage or a TAXII envelope already
/// parsed), by the same rules as [`parse_bundle`].
pub fn check_object(v: Value) -> Result<StixObject, Error> {
    validate::object(&v, None)?;
    StixObject::from_value(v).map_err(|e| {
        Error::invalid(
            top("", None),
            format!("properties of the right types ({e})"),
            None,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_before_parsing() {
        let small = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            parse_bundle(b"{\"type\": \"bundle\"}", &small),
            Err(Error::TooLarge {
                bytes: 18,
                limit: 10
            })
        ));
        let shallow = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        let deep = br#"{"a": [{"b": [1]}], "s": "[[[[[["}"#;
        assert!(matches!(
            parse_bundle(deep, &shallow),
            Err(Error::TooDeep {
                limit: 3,
                offset: 13
            })
        ));
        // Brackets inside strings do not count.
        assert!(check_shape(br#"{"s": "[[[[[[\"[[[["}"#, &shallow).is_ok());
        let few = Limits {
            max_objects: 1,
            ..Limits::default()
        };
        let two = br#"{"type":"bundle","id":"bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","objects":[{},{}]}"#;
        assert!(matches!(
            parse_bundle(two, &few),
            Err(Error::TooManyObjects { count: 2, limit: 1 })
        ));
    }

    #[test]
    fn top_level_errors() {
        let l = Limits::default();
        for (doc, want) in [
            (&b"[1]"[..], "expected a JSON object"),
            (b"{", "malformed JSON at line 1"),
            (br#"{"id":"bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","objects":[]}"#, "property `type`: expected \"bundle\""),
            (br#"{"type":"bundle","id":"report--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}"#, "property `id`: expected a bundle--UUID"),
            (br#"{"type":"bundle","id":"bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","spec_version":"2.0"}"#, "STIX 2.0"),
            (br#"{"type":"bundle","id":"bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","objects":[7]}"#, "object 0: expected a JSON object, found 7"),
        ] {
            let e = parse_bundle(doc, &l).unwrap_err().to_string();
            assert!(e.contains(want), "{e}\n should contain {want}");
        }
    }
}
