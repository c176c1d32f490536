//! The rules of STIX 2.1 that mamori checks on every object at the edge, before it is
//! typed. Each failure names the object, the property and what was expected.

use crate::error::{Error, Location, shorten};
use crate::id::{StixId, StixTimestamp, is_valid_type_name};
use crate::marking;
use serde_json::{Map, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

/// What kind of object a type is, which decides the required common properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// SDOs, SROs, `language-content`, `extension-definition`: `spec_version`, `created`,
    /// `modified` required.
    Domain,
    /// `marking-definition`: `spec_version` and `created` required.
    Marking,
    /// SCOs: `spec_version` optional.
    Observable,
    /// Custom object types: only `type` and `id` required.
    Custom,
}

const DOMAIN_TYPES: &[&str] = &[
    "attack-pattern",
    "campaign",
    "course-of-action",
    "grouping",
    "identity",
    "incident",
    "indicator",
    "infrastructure",
    "intrusion-set",
    "location",
    "malware",
    "malware-analysis",
    "note",
    "observed-data",
    "opinion",
    "report",
    "threat-actor",
    "tool",
    "vulnerability",
    "relationship",
    "sighting",
    "language-content",
    "extension-definition",
];

const OBSERVABLE_TYPES: &[&str] = &[
    "artifact",
    "autonomous-system",
    "directory",
    "domain-name",
    "email-addr",
    "email-message",
    "file",
    "ipv4-addr",
    "ipv6-addr",
    "mac-addr",
    "mutex",
    "network-traffic",
    "process",
    "software",
    "url",
    "user-account",
    "windows-registry-key",
    "x509-certificate",
];

pub(crate) fn class(t: &str) -> Class {
    if t == "marking-definition" {
        Class::Marking
    } else if DOMAIN_TYPES.contains(&t) {
        Class::Domain
    } else if OBSERVABLE_TYPES.contains(&t) {
        Class::Observable
    } else {
        Class::Custom
    }
}

/// Properties (beyond the common ones) the specification requires, per type.
fn required(t: &str) -> &'static [&'static str] {
    match t {
        "report" => &["name", "published", "object_refs"],
        "indicator" => &["pattern", "pattern_type", "valid_from"],
        "incident" | "vulnerability" | "identity" | "campaign" | "attack-pattern"
        | "course-of-action" | "infrastructure" | "intrusion-set" | "threat-actor" | "tool" => {
            &["name"]
        }
        "note" => &["content", "object_refs"],
        "opinion" => &["opinion", "object_refs"],
        "grouping" => &["context", "object_refs"],
        "malware" => &["is_family"],
        "sighting" => &["sighting_of_ref"],
        "relationship" => &["relationship_type", "source_ref", "target_ref"],
        "observed-data" => &["first_observed", "last_observed", "number_observed"],
        "ipv4-addr" | "ipv6-addr" | "domain-name" | "url" | "email-addr" | "mac-addr" => &["value"],
        _ => &[],
    }
}

/// Properties that hold timestamps wherever they appear at the top level of an object.
const TIMESTAMPS: &[&str] = &[
    "created",
    "modified",
    "published",
    "valid_from",
    "valid_until",
    "first_seen",
    "last_seen",
    "first_observed",
    "last_observed",
    "start_time",
    "stop_time",
];

/// Pairs `(earlier, later, strictly)` whose order the specification fixes.
const ORDERED: &[(&str, &str, bool)] = &[
    ("created", "modified", false),
    ("valid_from", "valid_until", true),
    ("first_seen", "last_seen", false),
    ("first_observed", "last_observed", false),
    ("start_time", "stop_time", true),
];

struct Ctx<'a> {
    index: Option<usize>,
    id: Option<&'a str>,
}

impl Ctx<'_> {
    fn at(&self, property: impl Into<String>) -> Location {
        Location {
            index: self.index,
            id: self.id.map(crate::error::shorten_str),
            property: property.into(),
        }
    }

    fn bad(&self, property: impl Into<String>, expected: &str, found: Option<&Value>) -> Error {
        Error::invalid(self.at(property), expected, found.map(shorten))
    }
}

/// Checks one object against the rules; `index` is its place in the `objects` array.
pub(crate) fn object(v: &Value, index: Option<usize>) -> Result<(), Error> {
    let Some(o) = v.as_object() else {
        let cx = Ctx { index, id: None };
        return Err(cx.bad("", "a JSON object", Some(v)));
    };
    let cx = Ctx {
        index,
        id: o.get("id").and_then(Value::as_str),
    };
    // type and id
    let t = match o.get("type") {
        Some(Value::String(t)) if is_valid_type_name(t) => t.as_str(),
        found => {
            return Err(cx.bad(
                "type",
                "an object type of 3-250 lowercase letters, digits and hyphens",
                found,
            ));
        }
    };
    let id = match o.get("id") {
        Some(Value::String(s)) => StixId::parse(s).map_err(|e| cx.bad("id", e, o.get("id")))?,
        found => return Err(cx.bad("id", "an identifier of the form type--UUID", found)),
    };
    if id.object_type() != t {
        return Err(cx.bad(
            "id",
            &format!("an identifier starting with {t}-- (the object's type)"),
            o.get("id"),
        ));
    }
    let class = class(t);

    // spec_version
    let spec_expected = "\"2.1\" (STIX 2.0 content is not accepted: convert it to 2.1)";
    match (o.get("spec_version"), class) {
        (Some(Value::String(s)), _) if s == "2.1" => {}
        (None, Class::Observable | Class::Custom) => {}
        (found, _) => return Err(cx.bad("spec_version", spec_expected, found)),
    }

    // timestamps: form, presence, order
    for &p in TIMESTAMPS {
        if let Some(x) = o.get(p) {
            let s = x.as_str().ok_or_else(|| {
                cx.bad(
                    p,
                    "an RFC 3339 UTC timestamp like 2024-01-31T09:00:00.000Z",
                    Some(x),
                )
            })?;
            StixTimestamp::parse(s).map_err(|e| cx.bad(p, e, Some(x)))?;
        }
    }
    let needs: &[&str] = match class {
        Class::Domain => &["created", "modified"],
        Class::Marking => &["created"],
        Class::Observable | Class::Custom => &[],
    };
    for &p in needs {
        if !o.contains_key(p) {
            return Err(cx.bad(
                p,
                "an RFC 3339 UTC timestamp (required on this object type)",
                None,
            ));
        }
    }
    for &(a, b, strict) in ORDERED {
        let (Some(x), Some(y)) = (ts(o, a), ts(o, b)) else {
            continue;
        };
        if y < x || (strict && y == x) {
            let rel = if strict { "later than" } else { "at or after" };
            return Err(cx.bad(b, &format!("a time {rel} `{a}` ({x})"), o.get(b)));
        }
    }

    // required properties of the type
    for &p in required(t) {
        if !o.contains_key(p) {
            return Err(cx.bad(p, &format!("this property (required on {t})"), None));
        }
    }

    common(o, &cx)?;
    references(o, &cx)?;
    specific(t, o, &cx)?;
    marking::check_object(t, o, |p| cx.at(p))?;
    Ok(())
}

fn ts(o: &Map<String, Value>, p: &str) -> Option<StixTimestamp> {
    StixTimestamp::parse(o.get(p)?.as_str()?).ok()
}

fn strings(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
}

fn common(o: &Map<String, Value>, cx: &Ctx<'_>) -> Result<(), Error> {
    for p in ["labels"] {
        if let Some(v) = o.get(p).filter(|v| !strings(v)) {
            return Err(cx.bad(p, "a list of strings", Some(v)));
        }
    }
    for p in ["lang", "name", "description"] {
        if let Some(v) = o.get(p).filter(|v| !v.is_string()) {
            return Err(cx.bad(p, "a string", Some(v)));
        }
    }
    for p in ["revoked", "defanged"] {
        if let Some(v) = o.get(p).filter(|v| !v.is_boolean()) {
            return Err(cx.bad(p, "true or false", Some(v)));
        }
    }
    if let Some(v) = o.get("confidence")
        && v.as_u64().is_none_or(|c| c > 100)
    {
        return Err(cx.bad("confidence", "an integer from 0 to 100", Some(v)));
    }
    if let Some(v) = o.get("extensions") {
        let ok = v
            .as_object()
            .is_some_and(|m| !m.is_empty() && m.values().all(Value::is_object));
        if !ok {
            return Err(cx.bad(
                "extensions",
                "a non-empty object mapping extension names to objects",
                Some(v),
            ));
        }
    }
    if let Some(v) = o.get("external_references") {
        let list = v
            .as_array()
            .ok_or_else(|| cx.bad("external_references", "a list of objects", Some(v)))?;
        for (i, r) in list.iter().enumerate() {
            let p = |q: &str| format!("external_references[{i}]{q}");
            let r = r
                .as_object()
                .ok_or_else(|| cx.bad(p(""), "an object", Some(r)))?;
            let src = r.get("source_name");
            let Some(src) = src.and_then(Value::as_str) else {
                return Err(cx.bad(p(".source_name"), "a string", src));
            };
            for q in ["description", "url", "external_id"] {
                if let Some(x) = r.get(q).filter(|x| !x.is_string()) {
                    return Err(cx.bad(p(&format!(".{q}")), "a string", Some(x)));
                }
            }
            if src == "cve" {
                let e = r.get("external_id");
                if !e.and_then(Value::as_str).is_some_and(is_cve_id) {
                    return Err(cx.bad(
                        p(".external_id"),
                        "a CVE id like CVE-2024-3400 (source_name is cve)",
                        e,
                    ));
                }
            }
        }
    }
    if let Some(v) = o.get("granular_markings") {
        let list = v
            .as_array()
            .ok_or_else(|| cx.bad("granular_markings", "a list of objects", Some(v)))?;
        for (i, g) in list.iter().enumerate() {
            let p = |q: &str| format!("granular_markings[{i}]{q}");
            let g = g
                .as_object()
                .ok_or_else(|| cx.bad(p(""), "an object", Some(g)))?;
            let sel = g.get("selectors");
            if !sel.is_some_and(|s| strings(s) && s.as_array().is_some_and(|a| !a.is_empty())) {
                return Err(cx.bad(p(".selectors"), "a non-empty list of strings", sel));
            }
            match (g.get("marking_ref"), g.get("lang")) {
                (Some(m), _) => marking_id(m, &p(".marking_ref"), cx)?,
                (None, Some(Value::String(_))) => {}
                (None, found) => {
                    return Err(cx.bad(p(""), "a marking_ref or a lang", found));
                }
            }
        }
    }
    if let Some(v) = o.get("object_marking_refs") {
        let list = v
            .as_array()
            .ok_or_else(|| cx.bad("object_marking_refs", "a list of identifiers", Some(v)))?;
        for (i, m) in list.iter().enumerate() {
            marking_id(m, &format!("object_marking_refs[{i}]"), cx)?;
        }
    }
    Ok(())
}

fn marking_id(v: &Value, property: &str, cx: &Ctx<'_>) -> Result<(), Error> {
    let ok = v
        .as_str()
        .and_then(|s| StixId::parse(s).ok())
        .is_some_and(|id| id.object_type() == "marking-definition");
    if ok {
        Ok(())
    } else {
        Err(cx.bad(property, "a marking-definition--UUID identifier", Some(v)))
    }
}

/// Every top-level `*_ref` the specification defines holds an identifier and every
/// `*_refs` a list of them.
fn references(o: &Map<String, Value>, cx: &Ctx<'_>) -> Result<(), Error> {
    // Custom properties (x_…) pass as received: the OASIS validator accepts MITRE
    // ATT&CK's `x_mitre_data_source_ref: ""`, and so do we.
    for (k, v) in o.iter().filter(|(k, _)| !k.starts_with("x_")) {
        if k.ends_with("_ref") {
            if v.as_str().is_none_or(|s| StixId::parse(s).is_err()) {
                return Err(cx.bad(k.as_str(), "an identifier of the form type--UUID", Some(v)));
            }
        } else if k.ends_with("_refs") {
            let Some(list) = v.as_array() else {
                return Err(cx.bad(k.as_str(), "a list of identifiers", Some(v)));
            };
            for (i, x) in list.iter().enumerate() {
                if x.as_str().is_none_or(|s| StixId::parse(s).is_err()) {
                    return Err(cx.bad(
                        format!("{k}[{i}]"),
                        "an identifier of the form type--UUID",
                        Some(x),
                    ));
                }
            }
        }
    }
    if let Some(v) = o.get("created_by_ref")
        && !v.as_str().is_some_and(|s| s.starts_with("identity--"))
    {
        return Err(cx.bad("created_by_ref", "an identity--UUID identifier", Some(v)));
    }
    Ok(())
}

/// Rules of single object types.
fn specific(t: &str, o: &Map<String, Value>, cx: &Ctx<'_>) -> Result<(), Error> {
    let string = |p: &str| -> Result<(), Error> {
        match o.get(p) {
            Some(v) if !v.is_string() => Err(cx.bad(p, "a string", Some(v))),
            _ => Ok(()),
        }
    };
    match t {
        "indicator" => {
            string("pattern")?;
            string("pattern_type")?;
            if o.get("pattern_type").and_then(Value::as_str) == Some("stix") {
                let p = o.get("pattern").and_then(Value::as_str).unwrap_or("");
                if let Err(e) = crate::pattern::Pattern::parse(p) {
                    return Err(cx.bad(
                        "pattern",
                        &format!("a STIX 2.1 pattern ({e})"),
                        o.get("pattern"),
                    ));
                }
            }
        }
        "report" | "note" | "opinion" | "grouping" => {
            let v = o.get("object_refs");
            if v.and_then(Value::as_array).is_none_or(|a| a.is_empty()) {
                return Err(cx.bad("object_refs", "a non-empty list of identifiers", v));
            }
        }
        "relationship" => string("relationship_type")?,
        "observed-data" => {
            let v = o.get("number_observed");
            if !v
                .and_then(Value::as_u64)
                .is_some_and(|n| (1..=999_999_999).contains(&n))
            {
                return Err(cx.bad("number_observed", "an integer from 1 to 999,999,999", v));
            }
            if !o.contains_key("object_refs") && !o.contains_key("objects") {
                return Err(cx.bad("object_refs", "a list of SCO identifiers", None));
            }
        }
        "marking-definition" if !defines_marking(o) => {
            return Err(cx.bad(
                "definition",
                "definition_type and definition (required unless extensions define the marking)",
                None,
            ));
        }
        "ipv4-addr" => {
            let v = o.get("value");
            if !v.and_then(Value::as_str).is_some_and(is_ipv4_or_cidr) {
                return Err(cx.bad(
                    "value",
                    "an IPv4 address or CIDR block like 198.51.100.0/24",
                    v,
                ));
            }
        }
        "ipv6-addr" => {
            let v = o.get("value");
            if !v.and_then(Value::as_str).is_some_and(is_ipv6_or_cidr) {
                return Err(cx.bad(
                    "value",
                    "an IPv6 address or CIDR block like 2001:db8::/32",
                    v,
                ));
            }
        }
        "domain-name" | "url" => string("value")?,
        "file" => {
            if !o.contains_key("hashes") && !o.contains_key("name") {
                return Err(cx.bad(
                    "hashes",
                    "hashes or a name (a file needs one of them)",
                    None,
                ));
            }
            if let Some(h) = o.get("hashes")
                && !h
                    .as_object()
                    .is_some_and(|m| !m.is_empty() && m.values().all(Value::is_string))
            {
                return Err(cx.bad(
                    "hashes",
                    "an object mapping algorithm names to hash strings",
                    Some(h),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether a marking definition says what it is: by `extensions` (TLP 2.0) or by
/// `definition_type` with `definition` (TLP 1.0, statements).
fn defines_marking(o: &Map<String, Value>) -> bool {
    o.contains_key("extensions")
        || (o.contains_key("definition_type") && o.contains_key("definition"))
}

pub(crate) fn is_cve_id(s: &str) -> bool {
    let mut parts = s.splitn(3, '-');
    parts.next() == Some("CVE")
        && parts
            .next()
            .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
        && parts
            .next()
            .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

fn split_cidr(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    }
}

fn prefix_ok(p: Option<&str>, max: u8) -> bool {
    match p {
        None => true,
        Some(p) => {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u8>().is_ok_and(|n| n <= max)
        }
    }
}

pub(crate) fn is_ipv4_or_cidr(s: &str) -> bool {
    let (a, p) = split_cidr(s);
    a.parse::<Ipv4Addr>().is_ok() && prefix_ok(p, 32)
}

pub(crate) fn is_ipv6_or_cidr(s: &str) -> bool {
    let (a, p) = split_cidr(s);
    a.parse::<Ipv6Addr>().is_ok() && prefix_ok(p, 128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn indicator() -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
            "valid_from": "2016-01-01T00:00:00Z"
        })
    }

    fn refused(v: &Value) -> String {
        match object(v, Some(4)) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("accepted {v}"),
        }
    }

    #[test]
    fn a_valid_indicator_passes() {
        object(&indicator(), Some(0)).unwrap();
    }

    #[test]
    fn each_rule_names_object_and_property() {
        type Mutation = Box<dyn Fn(&mut Map<String, Value>)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|o| {
                    o.remove("valid_from");
                }),
                "property `valid_from`: expected this property",
            ),
            (
                Box::new(|o| {
                    o.remove("spec_version");
                }),
                "property `spec_version`: expected \"2.1\"",
            ),
            (
                Box::new(|o| {
                    o.insert(
                        "id".into(),
                        json!("malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"),
                    );
                }),
                "property `id`: expected an identifier starting with indicator--",
            ),
            (
                Box::new(|o| {
                    o.insert("modified".into(), json!("2016-04-06T20:03:47.999Z"));
                }),
                "property `modified`: expected a time at or after `created`",
            ),
            (
                Box::new(|o| {
                    o.insert("created".into(), json!("2016-04-06T20:03:48.000+09:00"));
                }),
                "property `created`: expected an RFC 3339 UTC timestamp",
            ),
            (
                Box::new(|o| {
                    o.insert("valid_until".into(), json!("2016-01-01T00:00:00Z"));
                }),
                "property `valid_until`: expected a time later than `valid_from`",
            ),
            (
                Box::new(|o| {
                    o.insert("confidence".into(), json!(101));
                }),
                "property `confidence`",
            ),
            (
                Box::new(|o| {
                    o.insert(
                        "created_by_ref".into(),
                        json!("malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"),
                    );
                }),
                "property `created_by_ref`",
            ),
            (
                Box::new(|o| {
                    o.insert("foo_refs".into(), json!(["nope"]));
                }),
                "property `foo_refs[0]`",
            ),
            (
                Box::new(|o| {
                    o.insert("pattern".into(), json!("[ipv4-addr:value = ]"));
                }),
                "property `pattern`: expected a STIX 2.1 pattern",
            ),
            (
                Box::new(|o| {
                    o.insert(
                        "external_references".into(),
                        json!([{"source_name": "cve", "external_id": "2024-1"}]),
                    );
                }),
                "property `external_references[0].external_id`",
            ),
            (
                Box::new(|o| {
                    o.insert(
                        "object_marking_refs".into(),
                        json!(["identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"]),
                    );
                }),
                "property `object_marking_refs[0]`",
            ),
        ];
        for (mutate, want) in cases {
            let mut v = indicator();
            mutate(v.as_object_mut().unwrap());
            let got = refused(&v);
            assert!(got.starts_with("object 4 ("), "{got}");
            assert!(got.contains(want), "{got}\n  should contain {want}");
        }
    }

    #[test]
    fn addresses() {
        assert!(is_ipv4_or_cidr("198.51.100.0/24"));
        assert!(!is_ipv4_or_cidr("198.51.100.0/33"));
        assert!(!is_ipv4_or_cidr("198.51.100.0/"));
        assert!(!is_ipv4_or_cidr("198.51.100"));
        assert!(is_ipv6_or_cidr("2001:db8::/32"));
        assert!(!is_ipv6_or_cidr("2001:db8::/129"));
        assert!(is_cve_id("CVE-2024-3400"));
        assert!(is_cve_id("CVE-2021-44228"));
        assert!(!is_cve_id("CVE-21-44228"));
    }
}
