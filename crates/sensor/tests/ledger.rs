//! The sensor's own ledger through its public API (DESIGN invariant 7;
//! REQUIREMENTS CI-5, CI-9): its roots and proofs agree with `mamori-ledger`'s in-memory
//! oracle and verifiers at every size, it survives a restart, a crash at any byte of an
//! append leaves the last committed log, and damage or tampering is refused or named.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use chrono::TimeZone;
use mamori_core::entry::{Act, Actor, Entry};
use mamori_core::time::Timestamp;
use mamori_ledger::{
    Checkpoint, MemoryTree, VerifierKey, leaf_hash, tree_root, verify_consistency, verify_inclusion,
};
use mamori_sensor::ledger::{LedgerConfig, LedgerError, SensorLedger};
use mamori_sensor::record::Recorder;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
}

fn entry(i: u64) -> Entry {
    Entry::new(
        t0() + chrono::Duration::seconds(i64::try_from(i).unwrap()),
        Actor {
            org: None,
            user: None,
            name: "sensor".into(),
        },
        Act::Deletion {
            what: format!("flows:2026-11-24/00/part-{i}.parquet"),
            count: i * 7,
            content_sha256: format!("{i:064x}"),
            reason: "retention expired".into(),
        },
    )
}

fn cfg() -> LedgerConfig {
    LedgerConfig {
        origin: "sensor.test/ledger".into(),
        checkpoint_interval: Duration::from_secs(60),
    }
}

fn open(dir: &Path) -> SensorLedger {
    SensorLedger::open(dir, &cfg()).unwrap()
}

/// Appends entries `from..to` in batches of 1, 2, 3, … so batch appends cross every kind of
/// subtree boundary; returns the oracle.
fn fill(ledger: &SensorLedger, oracle: &mut MemoryTree, to: u64) {
    let mut batch = 1;
    while oracle.size() < to {
        let from = oracle.size();
        let end = (from + batch).min(to);
        let entries: Vec<Entry> = (from..end).map(entry).collect();
        assert_eq!(ledger.append(&entries).unwrap(), from);
        for e in &entries {
            oracle.push(&e.encode()).unwrap();
        }
        batch = batch % 5 + 1;
    }
}

#[test]
fn roots_and_proofs_match_the_oracle_at_every_size() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let mut oracle = MemoryTree::new();
    assert_eq!(ledger.size().unwrap(), 0);
    fill(&ledger, &mut oracle, 300);
    assert_eq!(ledger.size().unwrap(), 300);
    for size in 1..=300u64 {
        let root = tree_root(&oracle, size).unwrap();
        assert_eq!(ledger.root(size).unwrap(), root, "size {size}");
        // Inclusion: a spread of indices, including both edges.
        for index in [0, size / 3, size / 2, size - 1] {
            let proof = ledger.inclusion_proof(index, size).unwrap();
            let leaf = leaf_hash(&entry(index).encode());
            verify_inclusion(index, size, &leaf, &proof.path, &root).unwrap();
        }
        // Consistency from a spread of older sizes.
        for first in [1, size / 2, size - 1, size] {
            if first == 0 {
                continue;
            }
            let proof = ledger.consistency_proof(first, size).unwrap();
            let old = tree_root(&oracle, first).unwrap();
            verify_consistency(first, size, &old, &root, &proof.path).unwrap();
        }
    }
    // Entries read back byte for byte, paged.
    let page = ledger.entries(290, 50).unwrap();
    assert_eq!(page.len(), 10);
    for (i, bytes) in page {
        assert_eq!(Entry::decode(&bytes).unwrap(), entry(i));
    }
    assert_eq!(ledger.entries(0, 5000).unwrap().len(), 300);
    // Out of range is an input error, not a crash.
    assert!(matches!(
        ledger.inclusion_proof(0, 301),
        Err(LedgerError::OutOfRange(_))
    ));
    assert!(matches!(
        ledger.inclusion_proof(300, 300),
        Err(LedgerError::OutOfRange(_))
    ));
    assert!(matches!(
        ledger.consistency_proof(10, 5),
        Err(LedgerError::OutOfRange(_))
    ));
}

#[test]
fn reopening_after_a_restart_continues_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut oracle = MemoryTree::new();
    let note = {
        let ledger = open(dir.path());
        fill(&ledger, &mut oracle, 37);
        ledger.checkpoint(t0()).unwrap()
    };
    let ledger = open(dir.path());
    assert_eq!(ledger.size().unwrap(), 37);
    assert_eq!(ledger.root(37).unwrap(), oracle.root().unwrap());
    // The key is the same one: the old checkpoint still verifies, and the stored one is
    // served while the log has not grown.
    let key = VerifierKey::parse(
        std::fs::read_to_string(dir.path().join("ledger.pub"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(key, ledger.verifier());
    Checkpoint::open(
        note.as_bytes(),
        "sensor.test/ledger",
        std::slice::from_ref(&key),
    )
    .unwrap();
    assert_eq!(
        ledger
            .checkpoint(t0() + chrono::Duration::hours(1))
            .unwrap(),
        note
    );
    fill(&ledger, &mut oracle, 80);
    assert_eq!(ledger.root(80).unwrap(), oracle.root().unwrap());
    let report = ledger.verify().unwrap();
    assert_eq!(report.entries, 80);
    assert_eq!(report.root, oracle.root().unwrap());
    assert_eq!(report.checkpoint_size, Some(37));
}

#[cfg(unix)]
#[test]
fn the_signing_key_is_private_and_its_public_half_is_in_sumdb_form() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let mode = std::fs::metadata(dir.path().join("ledger.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let public = std::fs::read_to_string(dir.path().join("ledger.pub")).unwrap();
    assert!(public.starts_with("sensor.test/ledger+"), "{public}");
    assert_eq!(
        VerifierKey::parse(public.trim()).unwrap(),
        ledger.verifier()
    );
    // An empty origin gets a random one, so two sensors never share a name.
    let other = tempfile::tempdir().unwrap();
    let unnamed = SensorLedger::open(other.path(), &LedgerConfig::default()).unwrap();
    assert!(unnamed.origin().starts_with("mamori-sensor/"));
}

#[test]
fn checkpoints_follow_the_interval_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let key = ledger.verifier();
    let mut oracle = MemoryTree::new();
    let empty = ledger.checkpoint(t0()).unwrap();
    let cp = Checkpoint::open(
        empty.as_bytes(),
        ledger.origin(),
        std::slice::from_ref(&key),
    )
    .unwrap();
    assert_eq!(cp.size(), 0);
    fill(&ledger, &mut oracle, 5);
    // Grown, but the last checkpoint is younger than the interval: the same one.
    let soon = t0() + chrono::Duration::seconds(30);
    assert_eq!(ledger.checkpoint(soon).unwrap(), empty);
    // The overseer's forced request signs one at once.
    let forced = ledger.checkpoint_now(soon).unwrap();
    let cp = Checkpoint::open(
        forced.as_bytes(),
        ledger.origin(),
        std::slice::from_ref(&key),
    )
    .unwrap();
    assert_eq!((cp.size(), cp.root()), (5, oracle.root().unwrap()));
    // Not grown: no new signature even after the interval.
    let later = soon + chrono::Duration::minutes(5);
    assert_eq!(ledger.checkpoint(later).unwrap(), forced);
    fill(&ledger, &mut oracle, 9);
    let grown = ledger.checkpoint(later).unwrap();
    let cp = Checkpoint::open(grown.as_bytes(), ledger.origin(), &[key]).unwrap();
    assert_eq!((cp.size(), cp.root()), (9, oracle.root().unwrap()));
}

#[test]
fn the_recorder_appends_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let recorder: &dyn Recorder = &ledger;
    assert_eq!(recorder.record(&[entry(0), entry(1)]).unwrap(), 0);
    assert_eq!(recorder.record(&[entry(2)]).unwrap(), 2);
    assert_eq!(recorder.record(&[]).unwrap(), 3);
    let kept: Vec<Entry> = ledger
        .entries(0, 10)
        .unwrap()
        .into_iter()
        .map(|(_, b)| Entry::decode(&b).unwrap())
        .collect();
    assert_eq!(kept, vec![entry(0), entry(1), entry(2)]);
}

#[test]
fn two_handles_on_one_directory_append_in_turn() {
    // The running sensor and `mamori sensor reidentify` are two processes on one log; each
    // operation re-reads the commit point under the file lock.
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    let b = open(dir.path());
    let mut oracle = MemoryTree::new();
    for i in 0..40u64 {
        let writer = if i % 3 == 0 { &b } else { &a };
        assert_eq!(writer.append(&[entry(i)]).unwrap(), i);
        oracle.push(&entry(i).encode()).unwrap();
    }
    assert_eq!(a.root(40).unwrap(), oracle.root().unwrap());
    assert_eq!(b.root(40).unwrap(), oracle.root().unwrap());
    a.verify().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The non-empty files in `dir` with their lengths (a level the tree has not reached yet
/// may exist empty).
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .filter(|(name, len)| *len > 0 || name == "lock")
        .collect();
    out.sort();
    out
}

/// Commits `committed` entries, then appends `appended` more and, for every file the
/// append grew and every `stride`-th byte offset of what it added, simulates a crash
/// before the commit point: the size file still says `committed`, this file holds only
/// `cut` bytes of its new tail, every other file all of its (the worst case for a reader
/// that trusted file lengths). Returns how many crashes were simulated.
fn crash_everywhere(committed: u64, appended: u64, stride: usize) -> usize {
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("base");
    let mut oracle = MemoryTree::new();
    {
        let ledger = open(&base);
        fill(&ledger, &mut oracle, committed);
        ledger.checkpoint(t0()).unwrap();
    }
    let before = files(&base.join("ledger"));
    let root_before = oracle.root().unwrap();
    let batch: Vec<Entry> = (committed..committed + appended).map(entry).collect();
    let after_dir = work.path().join("after");
    copy_dir(&base, &after_dir);
    open(&after_dir).append(&batch).unwrap();
    let after = files(&after_dir.join("ledger"));
    let mut full = oracle.clone();
    for e in &batch {
        full.push(&e.encode()).unwrap();
    }
    let size_after = committed + appended;
    let root_after = full.root().unwrap();

    let old_len = |name: &str| {
        before
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, l)| *l)
    };
    let mut crashes: Vec<(String, u64)> = Vec::new();
    for (name, new_len) in &after {
        if matches!(name.as_str(), "size" | "lock" | "checkpoint") || *new_len == old_len(name) {
            continue;
        }
        for cut in (old_len(name)..*new_len).step_by(stride) {
            crashes.push((name.clone(), cut));
        }
        crashes.push((name.clone(), new_len - 1));
    }
    // Each crash in its own copy; eight at a time, since the cost is fsync latency.
    let one = |n: usize, name: &str, cut: u64| {
        let case = work.path().join(format!("case-{n}"));
        copy_dir(&after_dir, &case);
        std::fs::write(case.join("ledger/size"), format!("{committed}\n")).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(case.join("ledger").join(name))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let ledger = SensorLedger::open(&case, &cfg())
            .unwrap_or_else(|e| panic!("{name} cut at {cut}: {e}"));
        assert_eq!(ledger.size().unwrap(), committed, "{name} cut at {cut}");
        assert_eq!(
            ledger.root(committed).unwrap(),
            root_before,
            "{name} cut at {cut}"
        );
        // The torn tail is gone from disk…
        assert_eq!(files(&case.join("ledger")), before, "{name} cut at {cut}");
        // …and the same append now lands exactly where it should.
        assert_eq!(ledger.append(&batch).unwrap(), committed);
        assert_eq!(
            ledger.root(size_after).unwrap(),
            root_after,
            "{name} cut at {cut}"
        );
        drop(ledger);
        std::fs::remove_dir_all(&case).unwrap();
    };
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let (crashes, one) = (&crashes, &one);
            scope.spawn(move || {
                for (n, (name, cut)) in crashes.iter().enumerate().skip(worker).step_by(8) {
                    one(n, name, *cut);
                }
            });
        }
    });
    let cases = crashes.len();

    // A crash after the rename of `size`: the append is committed.
    let ledger = open(&after_dir);
    assert_eq!(ledger.root(size_after).unwrap(), root_after);
    ledger.verify().unwrap();
    // A leftover `size.tmp` from a crash before the rename changes nothing.
    std::fs::write(after_dir.join("ledger/size.tmp"), "99\n").unwrap();
    assert_eq!(open(&after_dir).size().unwrap(), size_after);
    cases
}

#[test]
fn a_crash_at_any_byte_of_an_append_leaves_the_last_committed_log() {
    // 15 → 16 completes a node on every level 0–4: the entry, its index slot and five
    // node files all grow, and every byte offset of each is a crash point.
    let cases = crash_everywhere(15, 1, 1);
    assert!(cases > 300, "only {cases} crash points");
}

#[test]
fn a_crash_in_a_batch_append_leaves_the_last_committed_log() {
    // A batch (11 → 16): the same at every 13th byte, to keep the test quick.
    let cases = crash_everywhere(11, 5, 13);
    assert!(cases > 80, "only {cases} crash points");
}

#[test]
fn files_shorter_than_the_commit_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut oracle = MemoryTree::new();
    fill(&open(dir.path()), &mut oracle, 20);
    let ledger_dir = dir.path().join("ledger");
    for name in ["entries", "entries.idx", "nodes-00", "nodes-02"] {
        let path = ledger_dir.join(name);
        let original = std::fs::read(&path).unwrap();
        std::fs::write(&path, &original[..original.len() - 1]).unwrap();
        let err = SensorLedger::open(dir.path(), &cfg()).unwrap_err();
        assert!(
            matches!(&err, LedgerError::Corrupt { path: p, .. } if p.ends_with(name)),
            "{name}: {err}"
        );
        // Nothing was "repaired": the damaged file is as it was found.
        assert_eq!(std::fs::read(&path).unwrap().len(), original.len() - 1);
        std::fs::write(&path, &original).unwrap();
    }
    for bad in ["", "x\n", "020\n", "-1\n", "99999999999999999999999\n"] {
        std::fs::write(ledger_dir.join("size"), bad).unwrap();
        assert!(
            matches!(
                SensorLedger::open(dir.path(), &cfg()),
                Err(LedgerError::Corrupt { .. })
            ),
            "{bad:?}"
        );
    }
    std::fs::write(ledger_dir.join("size"), "20\n").unwrap();
    assert_eq!(open(dir.path()).root(20).unwrap(), oracle.root().unwrap());
}

fn flip_byte(path: &PathBuf, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut oracle = MemoryTree::new();
    {
        let ledger = open(dir.path());
        fill(&ledger, &mut oracle, 30);
        ledger.checkpoint(t0()).unwrap();
        ledger.verify().unwrap();
    }
    let ledger_dir = dir.path().join("ledger");

    // One byte of entry 7 rewritten: `verify` names the entry.
    let idx = std::fs::read(ledger_dir.join("entries.idx")).unwrap();
    let end_of_6 = u64::from_be_bytes(idx[48..56].try_into().unwrap());
    let entries = ledger_dir.join("entries");
    flip_byte(&entries, usize::try_from(end_of_6).unwrap() + 20);
    let err = open(dir.path()).verify().unwrap_err();
    assert!(err.to_string().contains("entry 7 "), "{err}");
    flip_byte(&entries, usize::try_from(end_of_6).unwrap() + 20);
    open(dir.path()).verify().unwrap();

    // A stored node inside the tree rewritten: `verify` names it.
    let inner = ledger_dir.join("nodes-01");
    flip_byte(&inner, 3);
    let err = open(dir.path()).verify().unwrap_err();
    assert!(err.to_string().contains("node 0 of level 1"), "{err}");
    flip_byte(&inner, 3);

    // A node the tree head is folded from rewritten ((2, 6) for 30 leaves): the tree no
    // longer matches the signed checkpoint, so the log is refused at open.
    let nodes = ledger_dir.join("nodes-02");
    flip_byte(&nodes, 6 * 32 + 3);
    let err = SensorLedger::open(dir.path(), &cfg()).unwrap_err();
    assert!(err.to_string().contains("signed checkpoint"), "{err}");
    flip_byte(&nodes, 6 * 32 + 3);

    // Entries, leaf hashes *and* nodes rewritten consistently (the whole tail recomputed):
    // only the signed checkpoint can tell, and does.
    let copy = tempfile::tempdir().unwrap();
    {
        let forged = open(copy.path());
        let mut rewritten: Vec<Entry> = (0..30).map(entry).collect();
        rewritten[12] = entry(1000);
        forged.append(&rewritten).unwrap();
    }
    for name in [
        "entries",
        "entries.idx",
        "nodes-00",
        "nodes-01",
        "nodes-02",
        "nodes-03",
        "nodes-04",
    ] {
        std::fs::copy(copy.path().join("ledger").join(name), ledger_dir.join(name)).unwrap();
    }
    let err = SensorLedger::open(dir.path(), &cfg()).unwrap_err();
    assert!(err.to_string().contains("signed checkpoint"), "{err}");

    // The tail removed and the size file lowered to match: refused as a removal.
    let removed = tempfile::tempdir().unwrap();
    {
        let ledger = open(removed.path());
        fill(&ledger, &mut MemoryTree::new(), 30);
        ledger.checkpoint(t0()).unwrap();
    }
    std::fs::write(removed.path().join("ledger/size"), "25\n").unwrap();
    let on_disk = files(&removed.path().join("ledger"));
    let err = SensorLedger::open(removed.path(), &cfg()).unwrap_err();
    assert!(
        err.to_string().contains("entries 25..30 were removed"),
        "{err}"
    );
    // Refused before anything was cut: the hidden entries are still there as evidence.
    assert_eq!(files(&removed.path().join("ledger")), on_disk);

    // A checkpoint file not signed by this ledger's key.
    let cp = removed.path().join("ledger/checkpoint");
    let text = std::fs::read_to_string(&cp).unwrap();
    std::fs::write(removed.path().join("ledger/size"), "30\n").unwrap();
    std::fs::write(&cp, text.replace("\n30\n", "\n29\n")).unwrap();
    let err = SensorLedger::open(removed.path(), &cfg()).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
}
