//! The report parsers never panic (STYLE 11): arbitrary bytes, and a valid flash report and
//! STIX report bundle mutated byte by byte, through the JSON form, the STIX form and
//! validation. Whatever they accept passes validation or is refused with an error.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use mamori_core::time::from_millis;
use mamori_share::stix_in::flash_from_bundle;
use mamori_share::{FlashReport, StageReport};
use mamori_stix::Limits;
use proptest::prelude::*;

const FLASH: &str = r#"{"detected_at":"2026-09-21T00:40:00Z","sector":"electricity","affected_service":"SCADA gateway","impact":"high","cause":"unknown","tlp":"amber+strict","text":"Unusual outbound connections.","purposes":["response"],"exclude":[7],"recipients":[3],"confidential":false}"#;

const BUNDLE: &str = r#"{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[{"type":"incident","spec_version":"2.1","id":"incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-11-24T01:00:00.000Z","modified":"2026-11-24T01:00:00.000Z","name":"Gateway beaconing","description":"Beaconing every 60 s.","object_marking_refs":["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"],"x_mamori_report":{"detected_at":"2026-09-21T00:40:00Z","sector":"electricity","affected_service":"SCADA gateway","impact":"high","cause":"intentional","purposes":["response","warning"]}}]}"#;

fn all_parsers(bytes: &[u8]) {
    let now = from_millis(1_790_000_000_000).unwrap();
    if let Ok(f) = serde_json::from_slice::<FlashReport>(bytes) {
        let _ = f.validate(now);
    }
    if let Ok(s) = serde_json::from_slice::<StageReport>(bytes) {
        let _ = s.validate();
    }
    let limits = Limits {
        max_depth: 16,
        ..Limits::default()
    };
    if let Ok(f) = flash_from_bundle(bytes, &limits) {
        let _ = f.validate(now);
    }
}

#[test]
fn the_seeds_are_accepted() {
    let now = from_millis(1_790_000_000_000).unwrap();
    serde_json::from_str::<FlashReport>(FLASH)
        .unwrap()
        .validate(now)
        .unwrap();
    flash_from_bundle(BUNDLE.as_bytes(), &Limits::default())
        .unwrap()
        .validate(now)
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        all_parsers(&bytes);
    }

    #[test]
    fn mutated_reports_never_panic(
        stix in any::<bool>(),
        edits in prop::collection::vec((any::<usize>(), prop::sample::select(b"{}[]\":,\\-0Z a".to_vec()), 0u8..3), 1..8),
    ) {
        let mut b = if stix { BUNDLE } else { FLASH }.as_bytes().to_vec();
        for (i, x, op) in edits {
            let n = b.len().max(1);
            match op {
                0 => if let Some(c) = b.get_mut(i % n) { *c = x },
                1 => b.insert(i % (b.len() + 1), x),
                _ => { if !b.is_empty() { b.remove(i % n); } }
            }
        }
        all_parsers(&b);
    }
}
