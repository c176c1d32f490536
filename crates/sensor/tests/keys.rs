//! Pseudonym keys with rotation (DESIGN invariant 2; CI-4, CI-5), driven by
//! a controllable clock: one key per period, made only with its creation recorded, kept
//! while any archive file names it (or might), destroyed only with its retirement recorded.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use chrono::TimeZone;
use mamori_core::entry::{Act, Actor, Entry, KeyStep};
use mamori_core::time::{Clock, ManualClock};
use mamori_flow::{CryptoPan, CryptoPanKey};
use mamori_sensor::keys::{KeyError, KeyId, KeyRing, PSEUDONYM_KEY_METADATA, scan_key_ids};
use mamori_sensor::ledger::{LedgerConfig, SensorLedger};
use mamori_sensor::record::Recorder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn actor() -> Actor {
    Actor {
        org: None,
        user: None,
        name: "sensor".into(),
    }
}

fn key_acts(ledger: &SensorLedger) -> Vec<(String, KeyStep)> {
    ledger
        .entries(0, 1000)
        .unwrap()
        .into_iter()
        .filter_map(|(_, b)| match Entry::decode(&b).unwrap().act {
            Act::PseudonymKey { key_id, step } => Some((key_id, step)),
            _ => None,
        })
        .collect()
}

fn pseudonym(key: &CryptoPanKey) -> IpAddr {
    CryptoPan::new(key).anonymise("198.51.100.7".parse().unwrap())
}

/// An archive-like Parquet file, optionally naming its pseudonym key.
fn archive_file(path: &Path, key: Option<&KeyId>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let col: ArrayRef = Arc::new(UInt64Array::from(vec![1u64, 2, 3]));
    let batch = RecordBatch::try_from_iter([("n", col)]).unwrap();
    let props = WriterProperties::builder()
        .set_key_value_metadata(
            key.map(|k| vec![KeyValue::new(PSEUDONYM_KEY_METADATA.into(), k.to_string())]),
        )
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn setup() -> (tempfile::TempDir, Arc<SensorLedger>, KeyRing, ManualClock) {
    let data = tempfile::tempdir().unwrap();
    let ledger = Arc::new(SensorLedger::open(data.path(), &LedgerConfig::default()).unwrap());
    let ring = KeyRing::open(data.path(), ledger.clone(), actor()).unwrap();
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 11, 24, 6, 0, 0).unwrap());
    (data, ledger, ring, clock)
}

#[test]
fn one_key_per_period_each_creation_recorded() {
    let (data, ledger, ring, clock) = setup();
    let (day0, k0) = ring.current(clock.now(), DAY).unwrap();
    assert_eq!(day0.as_str(), "20261124T000000Z");
    let file = data.path().join("keys/20261124T000000Z.key");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.trim().len(), 64);
    assert!(text.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Later the same day: the same key, nothing new recorded.
    clock.advance(chrono::Duration::hours(17));
    let (again, k) = ring.current(clock.now(), DAY).unwrap();
    assert_eq!(
        (again.clone(), pseudonym(&k)),
        (day0.clone(), pseudonym(&k0))
    );
    // A new day: a new key.
    clock.advance(chrono::Duration::hours(1));
    let (day1, k1) = ring.current(clock.now(), DAY).unwrap();
    assert_eq!(day1.as_str(), "20261125T000000Z");
    assert_ne!(pseudonym(&k1), pseudonym(&k0));
    assert_eq!(
        key_acts(&ledger),
        vec![
            (day0.to_string(), KeyStep::Created),
            (day1.to_string(), KeyStep::Created)
        ]
    );
    // A restarted sensor finds its keys: same pseudonyms, no new entries.
    let reopened = KeyRing::open(data.path(), ledger.clone(), actor()).unwrap();
    assert_eq!(pseudonym(&reopened.get(&day0).unwrap()), pseudonym(&k0));
    let (_, k) = reopened.current(clock.now(), DAY).unwrap();
    assert_eq!(pseudonym(&k), pseudonym(&k1));
    assert_eq!(key_acts(&ledger).len(), 2);
    assert_eq!(reopened.list().unwrap(), BTreeSet::from([day0, day1]));
    // No key material in Debug output.
    let shown = format!("{reopened:?} {k:?}");
    assert!(!shown.contains(text.trim()), "{shown}");
}

#[test]
fn keys_are_kept_while_the_archive_needs_them_and_retired_with_a_record() {
    let (data, ledger, ring, clock) = setup();
    let archive = data.path().join("archive");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(ring.current(clock.now(), DAY).unwrap().0);
        clock.advance(chrono::Duration::days(1));
    }
    clock.advance(chrono::Duration::hours(-1)); // still on the third day
    let (d0, d1, d2) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    let f0 = archive.join("flows/2026-11-24/06/part-0.parquet");
    archive_file(&f0, Some(&d0));
    archive_file(
        &archive.join("aggregates/2026-11-24/07/part-0.parquet"),
        Some(&d0),
    );

    let needed = ring.keys_in_use(&archive).unwrap();
    assert_eq!(needed, BTreeSet::from([d0.clone()]));
    // d1 is needed by nothing; d2 is the key in use; d0 is in the archive.
    assert_eq!(ring.retire(clock.now(), &needed).unwrap(), vec![d1.clone()]);
    assert!(matches!(ring.get(&d1), Err(KeyError::NotFound(_))));
    assert!(!data.path().join(format!("keys/{d1}.key")).exists());
    ring.get(&d0).unwrap();
    ring.get(&d2).unwrap();

    // An archive file that does not say which key it used needs them all.
    let stray = archive.join("flows/2026-11-24/08/part-0.parquet");
    archive_file(&stray, None);
    let scan = scan_key_ids(&archive).unwrap();
    assert_eq!(scan.unlabelled, vec![stray.clone()]);
    let needed = ring.keys_in_use(&archive).unwrap();
    assert_eq!(needed, BTreeSet::from([d0.clone(), d2.clone()]));
    assert!(ring.retire(clock.now(), &needed).unwrap().is_empty());
    // So does one that cannot be read.
    std::fs::remove_file(&stray).unwrap();
    std::fs::write(&stray, b"not parquet").unwrap();
    assert!(ring.keys_in_use(&archive).unwrap().contains(&d0));
    std::fs::remove_file(&stray).unwrap();

    // The archive's files of the first day are gone: so is its key.
    std::fs::remove_dir_all(archive.join("flows")).unwrap();
    std::fs::remove_dir_all(archive.join("aggregates")).unwrap();
    let needed = ring.keys_in_use(&archive).unwrap();
    assert!(needed.is_empty());
    assert_eq!(ring.retire(clock.now(), &needed).unwrap(), vec![d0.clone()]);
    assert_eq!(ring.list().unwrap(), BTreeSet::from([d2.clone()]));

    assert_eq!(
        key_acts(&ledger),
        vec![
            (d0.to_string(), KeyStep::Created),
            (d1.to_string(), KeyStep::Created),
            (d2.to_string(), KeyStep::Created),
            (d1.to_string(), KeyStep::Retired),
            (d0.to_string(), KeyStep::Retired),
        ]
    );
}

/// A ledger that refuses every append (a full disk, an unwritable directory).
#[derive(Debug)]
struct Refusing;

impl Recorder for Refusing {
    fn record(&self, _: &[Entry]) -> std::io::Result<u64> {
        Err(std::io::Error::other("disk full"))
    }
    fn read_from(&self, start: u64, _: &mut dyn FnMut(&Entry)) -> std::io::Result<u64> {
        Ok(start)
    }
}

#[test]
fn nothing_happens_to_a_key_unless_it_is_recorded() {
    let (data, _ledger, ring, clock) = setup();
    let (d0, k0) = ring.current(clock.now(), DAY).unwrap();
    let refusing = KeyRing::open(data.path(), Arc::new(Refusing), actor()).unwrap();
    // A new period with an unwritable ledger: no key, so nothing can be pseudonymised with
    // a key the overseer does not know of.
    clock.advance(chrono::Duration::days(1));
    assert!(matches!(
        refusing.current(clock.now(), DAY),
        Err(KeyError::NotRecorded { .. })
    ));
    let left: Vec<_> = std::fs::read_dir(data.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec![format!("{d0}.key")]);
    // Retirement with an unwritable ledger: the key stays, usable.
    let (d1, _) = ring.current(clock.now(), DAY).unwrap();
    assert!(matches!(
        refusing.retire(clock.now(), &BTreeSet::new()),
        Err(KeyError::NotRecorded { .. })
    ));
    assert_eq!(pseudonym(&refusing.get(&d0).unwrap()), pseudonym(&k0));
    assert_eq!(ring.list().unwrap(), BTreeSet::from([d0.clone(), d1]));
    // A retirement interrupted after the key was set aside is finished (and recorded) by
    // the next pass.
    std::fs::rename(
        data.path().join(format!("keys/{d0}.key")),
        data.path().join(format!("keys/{d0}.key.retiring")),
    )
    .unwrap();
    assert_eq!(
        ring.retire(clock.now(), &BTreeSet::new()).unwrap(),
        vec![d0.clone()]
    );
    assert!(!data.path().join(format!("keys/{d0}.key.retiring")).exists());
}

/// The runtime's retirement policy ([`RingKeys`], moved from the CLI into the sensor):
/// the key in use and the key rows still buffered for the archive may carry (the period
/// of `now - flush - 1 min`) are kept; older keys nothing names are retired, recorded.
#[test]
fn ring_keys_keep_the_key_in_use_and_the_buffered_period_and_retire_the_rest() {
    use mamori_sensor::runtime::{KeySource, RingKeys};
    let (data, ledger, ring, clock) = setup();
    let hour = Duration::from_secs(3600);
    let t0 = clock.now();
    let at = |h: i64| t0 + chrono::Duration::hours(h);
    for h in [0, 1, 3] {
        ring.current(at(h), hour).unwrap();
    }
    // Opened at hour 5: the key in use is hour 5's; with a 1 h flush, rows buffered since
    // hour 3:59 may still carry hour 3's key.
    let keys = RingKeys::open(ring, hour, hour, at(5)).unwrap();
    let archive = data.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    assert_eq!(keys.retire_unused(at(5), &archive).unwrap(), 2);
    let reopened = KeyRing::open(data.path(), ledger.clone(), actor()).unwrap();
    let left: Vec<String> = reopened
        .list()
        .unwrap()
        .iter()
        .map(|k| k.to_string())
        .collect();
    let expect: Vec<String> = [3, 5]
        .iter()
        .map(|h| KeyId::for_start(at(*h)).to_string())
        .collect();
    assert_eq!(left, expect);
    assert_eq!(keys.key_for(at(5)).0, expect[1]);
}
