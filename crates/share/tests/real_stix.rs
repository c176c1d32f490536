//! The OASIS STIX 2.1 examples in `../shared/data/stix/` sent as reports (issue 8
//! acceptance): each is refused with a clear error naming what is missing — none marks its
//! report with TLP or carries the required set — and never panics or fails internally;
//! the real threat reports become flash reports once marked and completed.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use mamori_core::{ErrorKind, Tlp, testdata};
use mamori_share::stix_in::{REPORT_PROPERTY, flash_from_bundle};
use mamori_stix::Limits;
use serde_json::{Value, json};

const EXAMPLES: [(&str, &str); 8] = [
    (
        "stix/cti-stix2-json-schemas/examples/interop-objectmarking-test.json",
        "expected \"bundle\"",
    ),
    (
        "stix/cti-stix2-json-schemas/examples/indicator-to-campaign-relationship.json",
        "no incident or report",
    ),
    (
        "stix/cti-stix2-json-schemas/examples/malicious-email-indicator-with-attachment.json",
        "no incident or report",
    ),
    (
        "stix/cti-stix2-json-schemas/examples/infrastructure.json",
        "no incident or report",
    ),
    (
        "stix/cti-stix2-json-schemas/examples/indicators-for-C2-with-COA.json",
        "no incident or report",
    ),
    (
        "stix/cti-stix2-json-schemas/examples/indicator-for-c2-ip-address.json",
        "no incident or report",
    ),
    (
        "stix/cti-stix2-json-schemas/examples/threat-reports/apt1.json",
        "carry no TLP marking",
    ),
    (
        "stix/cti-stix2-json-schemas/examples/threat-reports/poisonivy.json",
        "carry no TLP marking",
    ),
];

#[test]
fn the_oasis_examples_are_refused_with_a_clear_reason() {
    let mut seen = 0;
    for (rel, reason) in EXAMPLES {
        let Some(p) = testdata::path(rel) else {
            continue;
        };
        let bytes = std::fs::read(p).unwrap();
        let e = flash_from_bundle(&bytes, &Limits::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{rel}: {e}");
        assert!(e.to_string().contains(reason), "{rel}: {e}");
        seen += 1;
    }
    eprintln!("{seen} OASIS examples checked");
}

#[test]
fn a_real_threat_report_marked_and_completed_becomes_a_flash_report() {
    for rel in [
        "stix/cti-stix2-json-schemas/examples/threat-reports/poisonivy.json",
        "stix/cti-stix2-json-schemas/examples/threat-reports/apt1.json",
    ] {
        let Some(p) = testdata::path(rel) else { return };
        let mut b: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        let report = b["objects"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|o| o["type"] == "report")
            .unwrap();
        report["object_marking_refs"] = json!([Tlp::Green.stix_id()]);
        report[REPORT_PROPERTY] = json!({
            "detected_at": "2026-09-01T00:00:00Z",
            "sector": "government",
            "affected_service": "Mail gateway",
            "impact": "medium",
            "cause": "intentional",
            "purposes": ["warning"],
        });
        let description = report["description"].as_str().unwrap().to_owned();
        let bytes = serde_json::to_vec(&b).unwrap();
        let f = flash_from_bundle(&bytes, &Limits::default()).unwrap();
        assert_eq!(
            (f.tlp, f.text.as_str()),
            (Tlp::Green, description.as_str()),
            "{rel}"
        );
        // Marked with a forged lookalike of TLP:RED instead: refused, naming it.
        let mut forged = b.clone();
        let r = forged["objects"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|o| o["type"] == "report")
            .unwrap();
        r["object_marking_refs"] =
            json!(["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c0"]);
        let e = flash_from_bundle(&serde_json::to_vec(&forged).unwrap(), &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("resembles TLP:RED"), "{rel}: {e}");
    }
}
