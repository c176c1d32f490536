//! TLP markings at the edge: refuse what only looks like TLP, and compute an object's
//! effective TLP (PP-11, DESIGN invariant 5).
//!
//! "Looks like TLP" is decided two ways. A marking-definition *object* that claims a TLP
//! level (the TLP 2.0 extension, `definition_type: "tlp"`, or a `TLP:` name) must carry
//! the official id of that level. A marking *reference* that is not an official id but is
//! within a few characters of one (a typo, a changed letter case, or a forgery meant to be
//! read as TLP by eye) is refused: mamori never guesses which marking was meant. Other
//! markings (statements, copyright notices, a partner's own marking definitions) pass and
//! do not change the effective TLP.

use crate::error::{Error, Location, shorten_str};
use crate::object::{Common, MarkingDefinition, StixObject};
use mamori_core::Tlp;
use serde_json::{Map, Value};

/// The TLP 1.0 marking-definition ids of STIX 2.1 §7.2.1.4, which TLP 2.0 maps onto
/// CLEAR (from WHITE), GREEN, AMBER and RED.
const TLP1_IDS: [&str; 4] = [
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
];

/// How many characters may differ before an id no longer "resembles" an official one.
const RESEMBLANCE: usize = 4;

/// The official TLP marking an id resembles without being it, if any.
pub fn resembles_tlp(id: &str) -> Option<Tlp> {
    if Tlp::from_stix_id(id).is_ok() {
        return None;
    }
    let official = Tlp::ALL.iter().map(|t| t.stix_id()).chain(TLP1_IDS);
    for o in official {
        if o.len() != id.len() {
            continue;
        }
        let differ = o.bytes().zip(id.bytes()).filter(|(a, b)| a != b).count();
        if differ <= RESEMBLANCE {
            return Tlp::from_stix_id(o).ok();
        }
    }
    None
}

/// Checks the markings of one object (called for every object at the edge).
pub(crate) fn check_object(
    t: &str,
    o: &Map<String, Value>,
    at: impl Fn(&str) -> Location,
) -> Result<(), Error> {
    let refs = o
        .get("object_marking_refs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| (format!("object_marking_refs[{i}]"), v));
    let granular = o
        .get("granular_markings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, g)| {
            Some((
                format!("granular_markings[{i}].marking_ref"),
                g.get("marking_ref")?,
            ))
        });
    for (p, v) in refs.chain(granular) {
        let Some(s) = v.as_str() else { continue };
        if let Some(like) = resembles_tlp(s) {
            return Err(Error::UnknownMarking {
                at: at(&p),
                marking: shorten_str(s),
                resembles: Some(like),
            });
        }
    }
    if t == "marking-definition" {
        // Typed view of the claim; the validator has checked the shapes it reads.
        let md: Option<MarkingDefinition> = serde_json::from_value(Value::Object(o.clone())).ok();
        let id = o.get("id").and_then(Value::as_str).unwrap_or("");
        if let Some(claim) = md.as_ref().and_then(MarkingDefinition::claimed_tlp) {
            match (Tlp::from_stix_id(id), claim) {
                (Ok(is), Ok(claims)) if is == claims => {}
                (Ok(is), Ok(claims)) => {
                    return Err(Error::invalid(
                        at("extensions"),
                        format!("the level of its official id, {is}"),
                        Some(format!("a claim of {claims}")),
                    ));
                }
                (_, Err(level)) => {
                    return Err(Error::invalid(
                        at("definition"),
                        "a TLP level: clear, green, amber, amber+strict or red",
                        Some(shorten_str(&level)),
                    ));
                }
                (Err(_), Ok(claims)) => {
                    return Err(Error::UnknownMarking {
                        at: at("id"),
                        marking: shorten_str(id),
                        resembles: Some(claims),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The effective TLP of an object: the most restrictive TLP marking among its
/// `object_marking_refs` and granular markings (a part marked RED makes the whole object
/// RED for sharing), or `default` when it carries none. Non-TLP markings do not count.
///
/// Errors when a marking only resembles an official TLP id; objects that came through
/// [`crate::parse_bundle`] or [`crate::Bundle::new`] never do.
pub fn effective_tlp(common: &Common, default: Tlp) -> Result<Tlp, Error> {
    let refs = common.object_marking_refs.iter().flatten();
    let granular = common
        .granular_markings
        .iter()
        .flatten()
        .filter_map(|g| g.marking_ref.as_ref());
    let mut found: Option<Tlp> = None;
    for r in refs.chain(granular) {
        match Tlp::from_stix_id(r.as_str()) {
            Ok(t) => found = Some(found.map_or(t, |f| f.max(t))),
            Err(_) => {
                if let Some(like) = resembles_tlp(r.as_str()) {
                    return Err(Error::UnknownMarking {
                        at: Location {
                            index: None,
                            id: Some(common.id.to_string()),
                            property: "object_marking_refs".to_owned(),
                        },
                        marking: shorten_str(r.as_str()),
                        resembles: Some(like),
                    });
                }
            }
        }
    }
    Ok(found.unwrap_or(default))
}

/// [`effective_tlp`] of a whole object.
pub fn object_tlp(object: &StixObject, default: Tlp) -> Result<Tlp, Error> {
    effective_tlp(object.common(), default)
}

/// The official ids that mean `tlp`: its TLP 2.0 id and the TLP 1.0 id mapped onto it.
fn ids_of(tlp: Tlp) -> impl Iterator<Item = &'static str> {
    std::iter::once(tlp.stix_id()).chain(
        TLP1_IDS
            .into_iter()
            .filter(move |id| Tlp::from_stix_id(id) == Ok(tlp)),
    )
}

/// The TLP level an official marking id in `v` means, if it is one.
fn tlp_of(v: &Value) -> Option<Tlp> {
    v.as_str().and_then(|s| Tlp::from_stix_id(s).ok())
}

/// Makes the object `v` (its JSON) **state** `tlp`, the marking it is shared under (DESIGN
/// invariant 5: every served object carries its effective marking, so its recipient knows
/// how it may be passed on): unless its own TLP markings already come to `tlp` or more,
/// the TLP references below `tlp` are taken out of `object_marking_refs` and `tlp`'s
/// official id is added (other markings are kept). An object posted without a TLP
/// marking, shared as TLP:AMBER, so says TLP:AMBER. Marking definitions are left as they
/// are. Returns whether `v` changed.
pub fn carry_tlp(v: &mut Value, tlp: Tlp) -> bool {
    let Some(m) = v.as_object_mut() else {
        return false;
    };
    if m.get("type").and_then(Value::as_str) == Some("marking-definition") {
        return false;
    }
    let refs = m
        .get("object_marking_refs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let granular = m
        .get("granular_markings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.get("marking_ref"));
    let stated = refs.chain(granular).filter_map(tlp_of).max();
    if stated >= Some(tlp) {
        return false;
    }
    let refs = m
        .entry("object_marking_refs")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !refs.is_array() {
        *refs = Value::Array(Vec::new());
    }
    if let Value::Array(a) = refs {
        a.retain(|r| tlp_of(r).is_none_or(|t| t >= tlp));
        a.push(Value::String(tlp.stix_id().to_owned()));
    }
    true
}

/// A stored object's JSON as it is served under `tlp` ([`carry_tlp`]), or `None` when it
/// already states it. Only a body that holds none of `tlp`'s official ids is parsed, so a
/// page of correctly marked objects is sent as stored.
pub fn served_with_tlp(body: &str, tlp: Tlp) -> Option<String> {
    if ids_of(tlp).any(|id| body.contains(id)) {
        return None;
    }
    let mut v: Value = serde_json::from_str(body).ok()?;
    if !carry_tlp(&mut v, tlp) {
        return None;
    }
    serde_json::to_string(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::StixId;

    // DESIGN invariant 5: an object shared under a TLP states it; one that says less (no
    // TLP marking, or a lower one) is made to say it, other markings kept; marking
    // definitions and objects that already say it are left alone.
    #[test]
    fn served_objects_state_the_marking_they_are_shared_under() {
        let amber = Tlp::Amber.stix_id();
        let statement = "marking-definition--a1b2c3d4-0000-4000-8000-000000000001";
        let body = |refs: Value| {
            let mut v = serde_json::json!({"type": "indicator", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"});
            if !refs.is_null() {
                v["object_marking_refs"] = refs;
            }
            v.to_string()
        };
        let served = |b: String, t: Tlp| {
            served_with_tlp(&b, t)
                .map(|s| serde_json::from_str::<Value>(&s).unwrap()["object_marking_refs"].clone())
        };
        assert_eq!(
            served(body(Value::Null), Tlp::Amber),
            Some(serde_json::json!([amber]))
        );
        assert_eq!(
            served(
                body(serde_json::json!([statement, Tlp::Green.stix_id()])),
                Tlp::Amber
            ),
            Some(serde_json::json!([statement, amber]))
        );
        assert_eq!(served(body(serde_json::json!([amber])), Tlp::Amber), None);
        assert_eq!(
            served(body(serde_json::json!([TLP1_IDS[2]])), Tlp::Amber),
            None
        );
        let mut red =
            serde_json::from_str::<Value>(&body(serde_json::json!([Tlp::Red.stix_id()]))).unwrap();
        assert!(!carry_tlp(&mut red, Tlp::Amber), "says more already");
        let def = MarkingDefinition::official_tlp(Tlp::Amber);
        let def = serde_json::to_string(&def).unwrap();
        assert_eq!(served_with_tlp(&def, Tlp::Clear), None);
        assert_eq!(served_with_tlp("not json", Tlp::Amber), None);
    }

    #[test]
    fn resemblance() {
        assert_eq!(
            resembles_tlp("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ec"),
            Some(Tlp::Red)
        );
        assert_eq!(
            resembles_tlp("marking-definition--E828B379-4e03-4974-9ac4-e53a884c97c1"),
            Some(Tlp::Red)
        );
        assert_eq!(resembles_tlp(Tlp::Amber.stix_id()), None);
        assert_eq!(resembles_tlp(TLP1_IDS[0]), None);
        // The MITRE ATT&CK copyright statement is far from every TLP id.
        assert_eq!(
            resembles_tlp("marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168"),
            None
        );
    }

    #[test]
    fn most_restrictive_wins() {
        let id = StixId::parse("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f").unwrap();
        let mut c = Common::new_sdo(id, mamori_core::time::from_millis(0).unwrap(), None);
        assert_eq!(effective_tlp(&c, Tlp::Amber).unwrap(), Tlp::Amber);
        c.mark(Tlp::Green);
        assert_eq!(effective_tlp(&c, Tlp::Amber).unwrap(), Tlp::Green);
        c.object_marking_refs
            .get_or_insert_with(Vec::new)
            .push(StixId::parse(TLP1_IDS[3]).unwrap());
        assert_eq!(effective_tlp(&c, Tlp::Clear).unwrap(), Tlp::Red);
        // A statement marking changes nothing.
        let mut s = Common::new_sdo(
            StixId::parse("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f").unwrap(),
            mamori_core::time::from_millis(0).unwrap(),
            None,
        );
        s.object_marking_refs = Some(vec![
            StixId::parse("marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168").unwrap(),
        ]);
        assert_eq!(
            effective_tlp(&s, Tlp::AmberStrict).unwrap(),
            Tlp::AmberStrict
        );
        s.object_marking_refs = Some(vec![
            StixId::parse("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ec").unwrap(),
        ]);
        assert!(effective_tlp(&s, Tlp::Clear).is_err());
    }
}
