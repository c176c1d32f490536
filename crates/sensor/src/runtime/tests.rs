//! Unit tests of the runtime's stages.

use super::detect::{Pseudonyms, Subject};
use super::select::bound_times;
use super::*;
use crate::post::tests::finding;

#[test]
fn a_full_queue_drops_the_whole_batch_and_counts_it_without_waiting() {
    let (tx, rx) = sync_channel::<Vec<u32>>(1);
    let q = QueueStats::new("detect", 1);
    hand_on(&tx, &q, vec![1, 2, 3], 3);
    let t = Instant::now();
    hand_on(&tx, &q, vec![4, 5], 2);
    assert!(t.elapsed() < Duration::from_millis(100));
    assert_eq!(q.enqueued_records.load(Ordering::Relaxed), 3);
    assert_eq!(q.dropped_batches.load(Ordering::Relaxed), 1);
    assert_eq!(q.dropped_records.load(Ordering::Relaxed), 2);
    assert_eq!(rx.recv().unwrap(), vec![1, 2, 3]);
}

#[test]
fn a_window_that_forgot_pseudonyms_tells_no_address_for_a_server() {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let mut p = Pseudonyms {
        cap: 1,
        ..Pseudonyms::default()
    };
    let k = p.key_index("2026-12-01");
    p.insert(ip("147.26.123.12"), k);
    assert!(matches!(
        p.subject(ip("147.26.123.12")),
        Subject::Pseudonym("2026-12-01")
    ));
    assert!(matches!(p.subject(ip("192.0.2.1")), Subject::Server));
    // One pseudonym too many: from now on an unknown address may be a forgotten
    // pseudonym, so it is neither a server nor listed (the finding is withheld).
    p.insert(ip("147.26.123.13"), k);
    assert!(matches!(p.subject(ip("192.0.2.1")), Subject::Unknown));
    assert!(matches!(
        p.subject(ip("147.26.123.12")),
        Subject::Pseudonym(_)
    ));
}

#[test]
fn records_from_the_future_or_before_1970_are_retimed_to_their_arrival() {
    let now = 1_765_000_000_000;
    let rec = |start_ms: i64, end_ms: i64| FlowRecord {
        start_ms,
        end_ms,
        ..FlowRecord::default()
    };
    let mut batch = FlowBatch {
        records: vec![
            rec(now - 60_000, now - 1_000),            // fine
            rec(now - 3_600_000, now - 3_000_000),     // an hour old: fine (late is detection's)
            rec(now + 60_000, now + 120_000),          // within the skew: fine
            rec(4_012_000_000_000, 4_012_000_030_000), // 2097: re-timed, duration kept
            rec(-5, 10),                               // before 1970: re-timed, 15 ms kept
        ],
        ..FlowBatch::default()
    };
    let before = batch.records.clone();
    assert_eq!(bound_times(&mut batch, now), 2);
    assert_eq!(batch.records[..3], before[..3]);
    assert_eq!(
        (batch.records[3].start_ms, batch.records[3].end_ms),
        (now - 30_000, now)
    );
    assert_eq!(
        (batch.records[4].start_ms, batch.records[4].end_ms),
        (now - 15, now)
    );
}

#[test]
fn an_unreachable_centre_is_retried_then_counted_as_failed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = CentreConfig {
        url: format!("http://127.0.0.1:{port}"),
        token_env: "X".into(),
        tlp: mamori_core::Tlp::Amber,
        max_attempts: 2,
        timeout: Duration::from_secs(2),
    };
    let centre = Centre {
        url: cfg.url.clone(),
        token: "t".into(),
        tlp: cfg.tlp,
    };
    let m = Metrics::new(1, 1, 1, 1);
    let (tx, rx) = sync_channel(1);
    tx.send(vec![finding(), finding()]).unwrap();
    drop(tx);
    poster(rx, &centre, &cfg, &m, &AtomicBool::new(false));
    assert_eq!(m.post_attempt_errors.load(Ordering::Relaxed), 2);
    assert_eq!(m.findings_post_failed.load(Ordering::Relaxed), 2);
    assert_eq!(m.findings_posted.load(Ordering::Relaxed), 0);
}

#[test]
fn a_centre_without_its_token_is_refused_at_start() {
    let c = CentreConfig {
        url: "http://127.0.0.1:1".into(),
        token_env: "MAMORI_SENSOR_TOKEN".into(),
        tlp: mamori_core::Tlp::Amber,
        max_attempts: 1,
        timeout: Duration::from_secs(1),
    };
    let e = centre(&c, None).unwrap_err();
    assert!(e.to_string().contains("MAMORI_SENSOR_TOKEN"), "{e}");
    assert!(centre(&c, Some("t".into())).is_ok());
}

/// An indicator list over the bound is refused, naming the file and what to do, never
/// read whole into memory (parsing itself is `mamori_detect`'s `add_list`).
#[test]
fn an_oversized_indicator_list_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.txt");
    // Sparse: no 64 MiB written.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(MAX_INDICATOR_FILE_BYTES + 1)
        .unwrap();
    let err = load_indicators(std::slice::from_ref(&path)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RuntimeError::Config(_)), "{text}");
    assert!(
        text.contains("huge.txt") && text.contains("split"),
        "{text}"
    );
}
