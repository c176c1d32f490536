//! Recorded deletion with a controllable clock (DESIGN invariants 4 and 7;
//! CI-5): nothing outlives its expiry, and every deleted file has exactly one `deletion`
//! entry in the sensor's ledger — also when the ledger refuses for a while, and after a
//! crash between journalling and deleting.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use chrono::TimeZone;
use mamori_core::entry::{Act, Entry};
use mamori_core::time::{Clock, ManualClock, Timestamp};
use mamori_flow::{Direction, FlowRecord, FlowSource, ServerAggregate};
use mamori_sensor::archive::{ArchiveWriter, RetentionPolicy, WrittenFile};
use mamori_sensor::ledger::{LedgerConfig, SensorLedger};
use mamori_sensor::record::Recorder;
use mamori_sensor::retention::{JOURNAL_FILE, deletion_entry, reap_recorded};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;

fn day() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
}

fn flow(start_ms: i64, i: u32) -> FlowRecord {
    FlowRecord {
        src_addr: format!("10.0.{}.7", i % 200).parse().unwrap(),
        dst_addr: format!("198.51.100.{}", i % 250).parse().unwrap(),
        exporter: "192.0.2.1".parse().unwrap(),
        start_ms,
        end_ms: start_ms + 10,
        packets: 1,
        bytes: 40,
        rev_packets: 0,
        rev_bytes: 0,
        observation_domain: 0,
        input_if: 0,
        output_if: 0,
        sampling_rate: 0,
        src_port: 40_000,
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0,
        tos: 0,
        icmp_type: 0,
        icmp_code: 0,
        direction: Direction::Ingress,
        source: FlowSource::Ipfix,
    }
}

fn aggregate(bin_start_ms: i64, i: u64) -> ServerAggregate {
    ServerAggregate {
        server: format!("203.0.113.{}", i % 250).parse().unwrap(),
        port: 8080,
        protocol: 6,
        bin_start_ms,
        flows: i + 1,
        packets_to_server: i * 10,
        bytes_to_server: i * 1000,
        packets_from_server: i * 9,
        bytes_from_server: i * 900,
        distinct_clients: i % 4 + 1,
        transit: false,
    }
}

/// A ledger that can be switched off, as a full disk would.
struct Flaky {
    ledger: SensorLedger,
    down: AtomicBool,
}

impl Recorder for Flaky {
    fn record(&self, entries: &[Entry]) -> std::io::Result<u64> {
        if self.down.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("no space left on device"));
        }
        self.ledger.record(entries)
    }
    fn read_from(&self, start: u64, visit: &mut dyn FnMut(&Entry)) -> std::io::Result<u64> {
        self.ledger.read_from(start, visit)
    }
}

fn write_hours(w: &ArchiveWriter, hours: i64) -> Vec<WrittenFile> {
    let h = day().timestamp_millis();
    let mut files = Vec::new();
    for hour in 0..hours {
        let n = 5 + u32::try_from(hour).unwrap();
        let recs: Vec<FlowRecord> = (0..n).map(|i| flow(h + hour * HOUR_MS + 1, i)).collect();
        files.extend(w.write_flows(&recs).unwrap());
        let aggs: Vec<ServerAggregate> = (0..u64::from(n))
            .map(|i| aggregate(h + hour * HOUR_MS, i))
            .collect();
        files.extend(w.write_aggregates(&aggs).unwrap());
    }
    files
}

fn deletions(ledger: &SensorLedger) -> Vec<(String, u64, String)> {
    ledger
        .entries(0, 1000)
        .unwrap()
        .into_iter()
        .filter_map(|(_, b)| match Entry::decode(&b).unwrap().act {
            Act::Deletion {
                what,
                count,
                content_sha256,
                reason,
            } => {
                assert_eq!(reason, "retention expired");
                Some((what, count, content_sha256))
            }
            _ => None,
        })
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn what_of(archive: &Path, f: &WrittenFile) -> String {
    let rel = f
        .path
        .strip_prefix(archive.join(f.kind.name()))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    format!("{}:{rel}", f.kind.name())
}

#[test]
fn nothing_outlives_its_expiry_and_every_deletion_has_exactly_one_entry() {
    let data = tempfile::tempdir().unwrap();
    let archive = data.path().join("archive");
    let policy = RetentionPolicy {
        flows: Duration::from_secs(2 * 3600),
        aggregates: Duration::from_secs(5 * 3600),
    };
    let w = ArchiveWriter::new(&archive, policy).unwrap();
    let files = write_hours(&w, 6);
    assert_eq!(files.len(), 12);
    let expected: BTreeMap<String, (u64, String)> = files
        .iter()
        .map(|f| (what_of(&archive, f), (f.records, sha256_hex(&f.path))))
        .collect();
    let flaky = Flaky {
        ledger: SensorLedger::open(data.path(), &LedgerConfig::default()).unwrap(),
        down: AtomicBool::new(false),
    };
    let clock = ManualClock::new(day());
    let mut deleted_while_down = 0;

    // Every ten minutes for a day; the ledger is down from hour 8 to hour 9 (while flows
    // expire), so those deletions wait in the journal — but still happen on time.
    for step in 0..(24 * 6) {
        let now = clock.now();
        flaky
            .down
            .store((8 * 6..9 * 6).contains(&step), Ordering::SeqCst);
        let pass = reap_recorded(&archive, data.path(), now, &flaky).unwrap();
        assert!(pass.failed.is_empty(), "{:?}", pass.failed);
        for f in &files {
            assert_eq!(
                f.path.exists(),
                f.expires_at > now,
                "{} (expires {}) at {}",
                f.path.display(),
                f.expires_at,
                now
            );
        }
        if flaky.down.load(Ordering::SeqCst) {
            assert_eq!(pass.recorded, 0);
            deleted_while_down += pass.deleted.len();
            if deleted_while_down > 0 {
                assert_eq!(pass.pending, deleted_while_down);
                assert!(pass.ledger_error.is_some());
            }
        } else {
            assert_eq!(pass.pending, 0, "at step {step}");
        }
        clock.advance(chrono::Duration::minutes(10));
    }
    assert_eq!(
        deleted_while_down, 2,
        "a flow file and an aggregate file expire at 08:00"
    );
    // Every file is gone, and each has exactly one entry with its count and hash.
    let recorded = deletions(&flaky.ledger);
    assert_eq!(recorded.len(), files.len());
    let by_what: BTreeMap<String, (u64, String)> = recorded
        .into_iter()
        .map(|(what, count, hash)| (what, (count, hash)))
        .collect();
    assert_eq!(by_what, expected);
    let journal = std::fs::read(data.path().join(JOURNAL_FILE)).unwrap();
    assert!(journal.is_empty());
    flaky.ledger.verify().unwrap();
}

#[test]
fn a_crash_between_journal_and_delete_is_finished_and_recorded_once() {
    let data = tempfile::tempdir().unwrap();
    let archive = data.path().join("archive");
    let w = ArchiveWriter::new(
        &archive,
        RetentionPolicy {
            flows: Duration::from_secs(3600),
            aggregates: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let files = write_hours(&w, 2);
    let ledger = SensorLedger::open(data.path(), &LedgerConfig::default()).unwrap();
    let now = files.iter().map(|f| f.expires_at).max().unwrap();

    // The crashed pass journalled the first file (and half of a second line) but deleted
    // nothing.
    let first = &files[0];
    let d = mamori_sensor::archive::Deletion {
        path: first.path.clone(),
        what: what_of(&archive, first),
        kind: first.kind,
        count: first.records,
        content_sha256: Sha256::digest(std::fs::read(&first.path).unwrap()).into(),
        expires_at: first.expires_at,
        reason: "retention expired",
    };
    let mut line = deletion_entry(&d, now).encode();
    line.push(b'\n');
    line.extend_from_slice(b"{\"v\":1,\"at\":\"2026-11-2");
    std::fs::write(data.path().join(JOURNAL_FILE), line).unwrap();

    let pass = reap_recorded(&archive, data.path(), now, &ledger).unwrap();
    assert!(files.iter().all(|f| !f.path.exists()));
    assert_eq!(pass.recorded, files.len());
    let recorded = deletions(&ledger);
    assert_eq!(recorded.len(), files.len());
    let mut whats: Vec<&String> = recorded.iter().map(|(w, _, _)| w).collect();
    whats.sort();
    whats.dedup();
    assert_eq!(whats.len(), files.len(), "a deletion was recorded twice");
}

#[test]
fn a_damaged_journal_stops_the_reaper_and_is_kept() {
    let data = tempfile::tempdir().unwrap();
    let archive = data.path().join("archive");
    let w = ArchiveWriter::new(&archive, RetentionPolicy::default()).unwrap();
    let files = write_hours(&w, 1);
    let ledger = SensorLedger::open(data.path(), &LedgerConfig::default()).unwrap();
    std::fs::write(data.path().join(JOURNAL_FILE), b"not an entry\n").unwrap();
    let far = day() + chrono::Duration::days(365);
    let err = reap_recorded(&archive, data.path(), far, &ledger).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    assert!(files.iter().all(|f| f.path.exists()));
    assert_eq!(
        std::fs::read(data.path().join(JOURNAL_FILE)).unwrap(),
        b"not an entry\n"
    );
    assert_eq!(ledger.size().unwrap(), 0);
}
