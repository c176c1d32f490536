//! The pattern parser against the OASIS pattern validator's own test cases, and — when the
//! `stix2-patterns` Python package is installed — against the validator itself on
//! mutations of those cases.
// Tests may unwrap and print: a panic is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "common/oasis_patterns.rs"]
mod oasis_patterns;
#[path = "common/python.rs"]
mod python;

use mamori_stix::{Error, Pattern};
use oasis_patterns::{INVALID, VALID};

#[test]
fn oasis_valid_patterns_parse() {
    assert_eq!(VALID.len(), 60);
    for p in VALID {
        if let Err(e) = Pattern::parse(p) {
            panic!("{p}: {e}");
        }
    }
}

#[test]
fn oasis_invalid_patterns_are_refused() {
    assert_eq!(INVALID.len(), 27);
    for p in INVALID {
        match Pattern::parse(p) {
            Err(Error::PatternSyntax { .. }) => {}
            other => panic!("{p}: {other:?}"),
        }
    }
}

#[test]
fn errors_say_where_and_what() {
    let e = Pattern::parse("[file:size = ]").unwrap_err().to_string();
    assert_eq!(
        e,
        "STIX pattern syntax error at character 13: expected a literal value, found \"]\""
    );
    let e = Pattern::parse("[foo:bar=1] within 2 seconds")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "STIX pattern syntax error at character 12: expected the end of the pattern, found \"within 2 seconds\""
    );
    let e = Pattern::parse("[file:hashes.'SHA-256' = 'f00']")
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"f00\" is not a valid SHA-256 hash"), "{e}");
}

/// Deterministic mutations: every pattern with one character deleted, and with two
/// neighbouring characters swapped.
fn mutants() -> Vec<String> {
    let mut out = vec![];
    for p in VALID.iter().chain(INVALID) {
        let chars: Vec<char> = p.chars().collect();
        for i in 0..chars.len() {
            let mut d = chars.clone();
            d.remove(i);
            out.push(d.into_iter().collect());
            if i + 1 < chars.len() {
                let mut s = chars.clone();
                s.swap(i, i + 1);
                out.push(s.into_iter().collect());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn mutated_patterns_never_panic() {
    let m = mutants();
    assert!(m.len() > 5000, "{}", m.len());
    for p in &m {
        let _ = Pattern::parse(p).map(|x| x.iocs());
    }
}

/// Our verdict equals the OASIS validator's on every mutant.
#[test]
fn agrees_with_the_oasis_validator_on_mutants() {
    if !python::have_module("stix2patterns", "stix2-patterns") {
        return;
    }
    let m = mutants();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("patterns.txt");
    std::fs::write(&input, m.join("\n")).unwrap();
    let script = "import sys\nfrom stix2patterns.validator import validate\n\
                  for line in open(sys.argv[1], encoding='utf-8').read().split('\\n'):\n    \
                  print('1' if validate(line, stix_version='2.1') else '0')\n";
    let out = python::python3(&["-c", script, input.to_str().unwrap()]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<bool> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "1")
        .collect();
    assert_eq!(verdicts.len(), m.len());
    let mut disagree = vec![];
    for (p, oasis) in m.iter().zip(verdicts) {
        let ours = Pattern::parse(p).is_ok();
        if ours != oasis {
            disagree.push(format!("ours {ours}, oasis {oasis}: {p}"));
        }
    }
    assert!(
        disagree.is_empty(),
        "{} disagreements:\n{}",
        disagree.len(),
        disagree.join("\n")
    );
}
