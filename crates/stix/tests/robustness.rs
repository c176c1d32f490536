//! Parsers never panic: arbitrary bytes, and real bundles mutated byte by byte (STYLE 11).
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

// Only the sample bundle is used here; the relay helpers serve tests/produced.rs.
#[allow(dead_code)]
#[path = "common/produced.rs"]
mod produced;

use mamori_stix::taxii::parse_envelope;
use mamori_stix::{Limits, Pattern, parse_bundle, parse_object};
use proptest::prelude::*;

/// Seeds: the produced sample always; real bundles from the shared data when present.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = vec![produced::bundle().to_json().unwrap()];
    for rel in [
        "stix/cti-stix2-json-schemas/examples/indicators-for-C2-with-COA.json",
        "stix/cti-stix2-json-schemas/examples/infrastructure.json",
        "stix/cti-stix2-json-schemas/examples/malicious-email-indicator-with-attachment.json",
        "stix/tlp-2.0-cti-stix-common-objects/using-tlp2.0-green.json",
        "stix/cti-python-stix2/stix2_data/marking-definition/marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168.json",
    ] {
        if let Some(p) = mamori_core::testdata::path(rel) {
            out.push(std::fs::read(p).unwrap());
        }
    }
    out
}

fn all_parsers(bytes: &[u8]) {
    let limits = Limits {
        max_depth: 16,
        ..Limits::default()
    };
    let _ = parse_bundle(bytes, &limits);
    let _ = parse_object(bytes, &limits);
    let _ = parse_envelope(bytes, &limits);
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = Pattern::parse(s).map(|p| p.iocs());
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    /// Replaces a byte with one of JSON's structural characters.
    Structural(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (
            any::<usize>(),
            prop::sample::select(b"{}[]\":,\\-0Z".to_vec())
        )
            .prop_map(|(i, b)| Edit::Structural(i, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        all_parsers(&bytes);
    }

    #[test]
    fn mutated_real_bundles_never_panic(seed in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..8)) {
        let seeds = seeds();
        let mut b = seeds[seed.index(seeds.len())].clone();
        for e in edits {
            let n = b.len().max(1);
            match e {
                Edit::Flip(i, x) => if let Some(c) = b.get_mut(i % n) { *c ^= x },
                Edit::Insert(i, x) => b.insert(i % (b.len() + 1), x),
                Edit::Delete(i) => { if !b.is_empty() { b.remove(i % n); } }
                Edit::Structural(i, x) => if let Some(c) = b.get_mut(i % n) { *c = x },
            }
        }
        all_parsers(&b);
    }

    #[test]
    fn arbitrary_pattern_text_never_panics(s in "[\\[\\]() a-z:'.=<>!*,0-9A-Z_-]{0,80}") {
        let _ = Pattern::parse(&s).map(|p| p.iocs());
    }
}

/// Deep nesting is refused by the limit, before serde_json's own recursion limit.
#[test]
fn deep_nesting_is_refused_by_the_limit() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = parse_bundle(deep.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "JSON nesting is deeper than the limit of 32 levels (at byte 32)"
    );
}
