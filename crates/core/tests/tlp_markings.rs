//! The TLP 2.0 marking-definition ids agree with OASIS's published objects (PP-11).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use mamori_core::testdata;
use mamori_core::tlp::{TLP2_EXTENSION_ID, Tlp};

#[test]
fn stix_ids_match_the_published_marking_definitions() {
    let Some(dir) = testdata::path("stix/tlp-2.0-cti-stix-common-objects") else {
        return;
    };
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
        for obj in bundle["objects"].as_array().unwrap() {
            if obj["type"] != "marking-definition" {
                // The GREEN example is a bundle that *uses* the marking: check its ref.
                for r in obj["object_marking_refs"].as_array().into_iter().flatten() {
                    let id = r.as_str().unwrap();
                    assert_eq!(Tlp::from_stix_id(id), Ok(Tlp::Green), "{id}");
                    assert_eq!(Tlp::Green.stix_id(), id);
                    seen.push(Tlp::Green);
                }
                continue;
            }
            let ext = &obj["extensions"][TLP2_EXTENSION_ID];
            let slug = ext["tlp_2_0"].as_str().unwrap();
            let tlp: Tlp = slug.parse().unwrap();
            assert_eq!(tlp.slug(), slug);
            assert_eq!(tlp.stix_id(), obj["id"].as_str().unwrap());
            assert_eq!(tlp.label(), obj["name"].as_str().unwrap());
            seen.push(tlp);
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict]);
}
