//! STIX that mamori produces validates with the OASIS `stix2-validator`, and mamori's own
//! parser accepts it back unchanged; the anonymised copy leaves no trace of its source.
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "common/produced.rs"]
mod produced;
#[path = "common/python.rs"]
mod python;

use mamori_core::Tlp;
use mamori_stix::pattern::Ioc;
use mamori_stix::{
    Limits, StixId, StixObject, anonymise, effective_tlp, indicator_iocs, parse_bundle,
};
use produced::*;

fn anonymised() -> mamori_stix::Anonymised {
    let b = bundle();
    anonymise(
        &b,
        &[source_identity()],
        &centre(),
        &[
            SOURCE_NAME,
            "Acme Power",
            SOURCE_DOMAIN,
            SOURCE_CONTACT,
            SOURCE_PERSON,
            SOURCE_RANGE,
        ],
        StixId::from_random_bytes("bundle", [42; 16]).unwrap(),
    )
    .unwrap()
}

#[test]
fn produced_bundles_round_trip_through_our_parser() {
    for b in [bundle(), anonymised().bundle] {
        let bytes = b.to_json().unwrap();
        assert_eq!(parse_bundle(&bytes, &Limits::default()).unwrap(), b);
    }
}

#[test]
fn produced_bundles_validate_with_stix2_validator() {
    if !python::have_module("stix2validator", "stix2-validator") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![];
    for (name, b) in [
        ("report.json", bundle()),
        ("relayed.json", anonymised().bundle),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, b.to_json().unwrap()).unwrap();
        files.push(p.display().to_string());
    }
    // The `stix2_validator` console script's entry point, run by the same python3 that
    // has the module (no PATH questions).
    let script = "import sys\nfrom stix2validator.scripts.stix2_validator import main\n\
                  sys.argv[0] = 'stix2_validator'\nsys.exit(main())";
    // Strict: best-practice warnings fail too, except 401 (custom properties should be
    // extensions) — the sample carries a partner's custom property on purpose, to show the
    // relay scrubs property names.
    let mut args = vec!["-c", script, "--strict", "--disable", "401"];
    args.extend(files.iter().map(String::as_str));
    let out = python::python3(&args).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stix2-validator refused:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("STIX JSON: Valid").count(), 2, "{text}");
}

#[test]
fn markings_and_iocs_of_the_produced_report() {
    let b = bundle();
    let tlp = |t: &str| {
        let o = b.objects().iter().find(|o| o.object_type() == t).unwrap();
        effective_tlp(o.common(), Tlp::Red).unwrap()
    };
    assert_eq!(tlp("incident"), Tlp::Red);
    assert_eq!(tlp("vulnerability"), Tlp::Clear);
    assert_eq!(tlp("report"), Tlp::Amber);
    let ind = b
        .objects()
        .iter()
        .find_map(|o| match o {
            StixObject::Indicator(i) if i.pattern.contains("ipv4") => Some(i),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        indicator_iocs(ind).unwrap(),
        vec![
            Ioc::Address("203.0.113.66".parse().unwrap()),
            Ioc::Url("http://c2.bad.example/gate.php".into())
        ]
    );
}

#[test]
fn the_anonymised_copy_has_no_trace_of_its_source() {
    let original = bundle().to_json().unwrap();
    let original = String::from_utf8(original).unwrap().to_lowercase();
    let a = anonymised();
    let text = String::from_utf8(a.bundle.to_json().unwrap()).unwrap();
    let lower = text.to_lowercase();
    // Every one of these is in the original, and none in the copy.
    for trace in [
        "acme",
        "acme power co.",
        "acme-power.example",
        "soc@acme-power.example",
        "taro yamada",
        "198.51.100.",
        source_identity().as_str(),
    ] {
        assert!(original.contains(trace), "the sample lacks {trace}");
        assert!(!lower.contains(trace), "{trace} survived:\n{text}");
    }
    // The centre speaks instead: its identity replaced the source's, and every reference
    // to the source (created_by_ref, where_sighted_refs) points at it.
    let centre_id = centre().common.id;
    let identities: Vec<&StixId> = a
        .bundle
        .objects()
        .iter()
        .filter(|o| o.object_type() == "identity")
        .map(|o| o.id())
        .collect();
    assert_eq!(identities, vec![&centre_id]);
    for o in a.bundle.objects() {
        if let Some(c) = &o.common().created_by_ref {
            assert_eq!(c, &centre_id);
        }
    }
    // The source's own address and domain were observables: dropped, with what pointed
    // at them only by `_refs` pruned (observed-data keeps the C2 address).
    assert_eq!(a.dropped.len(), 2, "{:?}", a.dropped);
    let observed = a
        .bundle
        .objects()
        .iter()
        .find_map(|o| match o {
            StixObject::ObservedData(d) => Some(d),
            _ => None,
        })
        .unwrap();
    assert_eq!(observed.object_refs.as_ref().unwrap().len(), 1);
    // Nothing else was lost: 20 objects less the source identity (replaced by the
    // centre's) and the two dropped observables.
    assert_eq!(a.bundle.objects().len(), bundle().objects().len() - 2);
    // The custom property's name carried the source's name too.
    assert!(text.contains("x_redacted_ticket"), "{text}");
}

#[test]
fn anonymising_refuses_to_return_a_copy_that_still_leaks() {
    // The source identity's id written into free text is not a reference that can be
    // rewritten: the relay refuses instead of leaking it (PP-12).
    let mut v = serde_json::to_value(bundle()).unwrap();
    let objects = v["objects"].as_array_mut().unwrap();
    let note = objects
        .iter_mut()
        .find(|o| o["type"] != "identity" && o.get("description").is_some())
        .unwrap();
    note["description"] = format!("raised by {}", source_identity().as_str()).into();
    let b =
        mamori_stix::parse_bundle(&serde_json::to_vec(&v).unwrap(), &Default::default()).unwrap();
    let e = anonymise(
        &b,
        &[source_identity()],
        &centre(),
        &[],
        StixId::from_random_bytes("bundle", [42; 16]).unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("anonymisation incomplete"), "{e}");
}

#[test]
fn a_scrub_string_found_by_chance_inside_an_identifier_withholds_nothing() {
    // A well-formed id is a type name and random hex: a hex-only name (`Abe`, `Cafe`) may
    // occur in it by chance and is no trace of the source, so the copy is written.
    let b = bundle();
    let kept = b
        .objects()
        .iter()
        .find(|o| o.id().as_str().starts_with("indicator--"))
        .unwrap()
        .id()
        .as_str()
        .to_owned();
    let inside_an_id = &kept["indicator--".len()..][..8];
    let a = anonymise(
        &b,
        &[source_identity()],
        &centre(),
        &[inside_an_id],
        StixId::from_random_bytes("bundle", [42; 16]).unwrap(),
    )
    .unwrap();
    assert!(a.bundle.objects().iter().any(|o| o.id().as_str() == kept));
}
