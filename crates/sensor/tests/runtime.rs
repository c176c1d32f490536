#![allow(clippy::unwrap_used)]
//! The sensor runtime end to end on the real captures (REQUIREMENTS
//! CI-2, CI-4, CI-5, CI-11; DESIGN invariants 1–4): NetFlow v9 / IPFIX
//! exports replayed over loopback UDP, and flow files, through pseudonymise → select →
//! detect → archive. Checked: no clear non-foreign address in anything written or served,
//! domestic↔domestic flows never reach disk and are counted per reason, the beacon of
//! test-cc-capture-1 is found and put on the concern list (recorded first), after which
//! its flows are kept per record; concern expiry is recorded; one pseudonym key per file.

#[path = "../../flow/tests/common/mod.rs"]
mod common;

use mamori_core::entry::{Act, Entry};
use mamori_core::time::ManualClock;
use mamori_flow::{
    Datagram, DatagramDecoder, ExportDecoder, FlowBatch, GeoTable, GeoTableBuilder, Side,
};
use mamori_sensor::archive::{PSEUDONYM_KEY_ID_KEY, file_metadata, read_aggregates, read_flows};
use mamori_sensor::config::SensorConfig;
use mamori_sensor::http_ledger::{TokenHolder, issue_token, issue_token_for};
use mamori_sensor::record::Recorder;
use mamori_sensor::runtime::{Deps, KeySource, RuntimeError, Sensor, StaticKey, Status};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BEACON: &str = "141.193.213.21";
/// The captures' own networks play the carrier's subscribers: the lab's private ranges,
/// CTU's 147.32.0.0/16 (test-cc-capture-1's client) and pmacct's 138.187.0.0/16.
const SUBSCRIBERS: &str = r#"subscriber_prefixes = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "147.32.0.0/16", "138.187.0.0/16"]"#;
const V9: &str =
    "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-netflow-v9-export.pcap";
const IPFIX: &str = "netflow/derived-softflowd-from-test-cc-capture-1/softflowd-ipfix-export.pcap";

#[derive(Default)]
struct MemRecorder {
    entries: Mutex<Vec<Entry>>,
    fail: AtomicBool,
}

impl Recorder for MemRecorder {
    fn record(&self, entries: &[Entry]) -> std::io::Result<u64> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("ledger unavailable"));
        }
        let mut e = self.entries.lock().unwrap();
        e.extend_from_slice(entries);
        Ok(e.len() as u64 - entries.len() as u64)
    }
    fn read_from(&self, start: u64, visit: &mut dyn FnMut(&Entry)) -> std::io::Result<u64> {
        let e = self.entries.lock().unwrap();
        for entry in e.iter().skip(usize::try_from(start).unwrap()) {
            visit(entry);
        }
        Ok(e.len() as u64)
    }
}

fn geo() -> Option<GeoTable> {
    let root = common::test_data("geo")?;
    let mut b = GeoTableBuilder::new();
    b.add_rir_delegations(
        File::open(root.join("apnic-delegated-2010/delegated-apnic-latest")).unwrap(),
    )
    .unwrap();
    for country in ["jp", "us", "cn", "kr", "ru"] {
        for family in ["ipv4", "ipv6"] {
            let path = root
                .join("country-ip-blocks")
                .join(family)
                .join(format!("{country}.cidr"));
            b.add_cidr_list(File::open(path).unwrap(), country.parse().unwrap())
                .unwrap();
        }
    }
    Some(b.build())
}

fn config(dir: &Path, udp: bool, files: &[PathBuf], watch: &[PathBuf]) -> SensorConfig {
    let mut text = format!(
        "data_dir = {dir:?}\n[collector]\nlisten = {listen}\nflush_ms = 20\n[files]\npaths = {files:?}\nwatch = {watch:?}\npoll = \"1s\"\n[selection]\n{SUBSCRIBERS}\n[detection]\nwindow = \"1d\"\nidle_close = \"1s\"\n[archive]\nflush = \"1h\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
        listen = if udp { "[\"127.0.0.1:0\"]" } else { "[]" },
    );
    text.push_str("[queues]\ningest = 4096\n");
    SensorConfig::from_toml(&text).unwrap()
}

fn start(
    cfg: &SensorConfig,
    geo: GeoTable,
    keys: Arc<dyn KeySource>,
    rec: Arc<MemRecorder>,
    clock: Arc<ManualClock>,
) -> Sensor {
    Sensor::start(
        cfg,
        Deps {
            clock,
            keys,
            recorder: rec,
            geo: Arc::new(geo),
            centre_token: None,
        },
    )
    .unwrap()
}

/// A sensor on `cfg` with no country data, a fixed key, an in-memory ledger and a manual
/// clock at a fixed instant: for tests that need nothing else.
fn start_plain(cfg: &SensorConfig) -> Sensor {
    start(
        cfg,
        GeoTableBuilder::new().build(),
        static_key(),
        Arc::new(MemRecorder::default()),
        Arc::new(ManualClock::new(
            mamori_core::time::from_millis(1_700_000_000_000).unwrap(),
        )),
    )
}

fn static_key() -> Arc<dyn KeySource> {
    Arc::new(StaticKey {
        id: "test-key-1".into(),
        key: mamori_flow::CryptoPanKey::from_bytes([42; 32]),
    })
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal HTTP/1.1 GET (the endpoint is ours; no client library needed): the status
/// code and the body.
fn http_request(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    #[allow(clippy::disallowed_methods)] // bounded by take()
    s.take(1 << 20).read_to_string(&mut out).unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, out.split_once("\r\n\r\n").unwrap().1.to_owned())
}

/// GET that must succeed; `/status` is asked with an operator token issued in `data_dir`.
fn http_get(addr: SocketAddr, path: &str, data_dir: &Path) -> String {
    let token = issue_token_for(data_dir, TokenHolder::Operator).unwrap();
    let (code, body) = http_request(addr, path, Some(&token));
    assert_eq!(code, 200, "{path}: {body}");
    body
}

fn replay(to: SocketAddr, datagrams: &[common::Udp]) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, d) in datagrams.iter().enumerate() {
        sock.send_to(&d.payload, to).unwrap();
        if i % 32 == 31 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Every flow address of the input that is not foreign under the test's policy: none
/// of these may appear in clear in any output.
fn non_foreign(records: &[mamori_flow::FlowRecord], geo: &GeoTable) -> BTreeSet<IpAddr> {
    let policy = mamori_flow::SelectionPolicy::from_toml(SUBSCRIBERS).unwrap();
    let s = mamori_flow::Selector::new(policy, &mamori_flow::CryptoPanKey::from_bytes([0; 32]))
        .unwrap();
    records
        .iter()
        .flat_map(|r| [r.src_addr, r.dst_addr])
        .filter(|a| s.side(*a, geo) != Side::Foreign)
        .collect()
}

fn decode(datagrams: &[common::Udp]) -> Vec<mamori_flow::FlowRecord> {
    let mut d = ExportDecoder::default();
    let mut b = FlowBatch::default();
    for u in datagrams {
        d.decode(Datagram::new(u.src, u.ts_ms, &u.payload), &mut b);
    }
    b.records
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn parquet_files(dir: &Path, kind: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let root = dir.join("archive").join(kind);
    if root.exists() {
        all_files(&root, &mut v);
    }
    v.retain(|p| p.extension().is_some_and(|e| e == "parquet"));
    v
}

/// Checks every output for a clear non-foreign address: the rows of every Parquet file
/// (read back), the raw bytes of every file in the data directory, and the served texts.
fn assert_no_clear(dir: &Path, texts: &[&str], forbidden: &BTreeSet<IpAddr>) {
    let mut files = Vec::new();
    all_files(dir, &mut files);
    let mut raw = Vec::new();
    for f in &files {
        raw.push(std::fs::read(f).unwrap());
    }
    for a in forbidden {
        let needle = a.to_string();
        for t in texts {
            assert!(
                !contains_addr(t, &needle),
                "{needle} in clear in a served text"
            );
        }
        for (f, bytes) in files.iter().zip(&raw) {
            assert!(
                !contains_addr(&String::from_utf8_lossy(bytes), &needle),
                "{needle} in clear in {}",
                f.display()
            );
        }
    }
    for f in parquet_files(dir, "flows") {
        for r in read_flows(&f).unwrap() {
            for a in [r.src_addr, r.dst_addr] {
                assert!(!forbidden.contains(&a), "{a} in clear in {}", f.display());
            }
        }
    }
    for f in parquet_files(dir, "aggregates") {
        for a in read_aggregates(&f).unwrap() {
            assert!(!forbidden.contains(&a.server), "{} in clear", a.server);
        }
    }
}

/// `needle` as a whole address in `hay` (not as the prefix of a longer one).
fn contains_addr(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        let part =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_hexdigit() || c == '.' || c == ':');
        !part(before) && !part(after)
    })
}

fn status(s: &Sensor) -> Status {
    s.status()
}

#[test]
fn udp_replay_finds_the_beacon_lists_it_recorded_then_keeps_its_flows_and_ends_it_on_expiry() {
    let (Some(geo), Some(v9), Some(ipfix)) =
        (geo(), common::test_data(V9), common::test_data(IPFIX))
    else {
        return;
    };
    let v9 = common::udp_datagrams(&v9);
    let ipfix = common::udp_datagrams(&ipfix);
    let mut input = decode(&v9);
    input.extend(decode(&ipfix));
    let forbidden = non_foreign(&input, &geo);
    // The beacon's client, a subscriber here.
    let client: IpAddr = "147.32.80.37".parse().unwrap();
    assert!(forbidden.contains(&client), "{forbidden:?}");

    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(MemRecorder::default());
    let clock = Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )));
    let cfg = config(dir.path(), true, &[], &[]);
    let sensor = start(
        &cfg,
        geo.clone(),
        static_key(),
        Arc::clone(&rec),
        Arc::clone(&clock),
    );
    let udp = sensor.udp_addrs()[0];
    let http = sensor.http_addr().unwrap();

    // 1. Broad first: the beacon's flows are aggregated, not kept, until it is found.
    replay(udp, &v9);
    wait_until(
        "the beacon on the concern list",
        Duration::from_secs(30),
        || status(&sensor).counters.concerns.listed >= 1,
    );
    let s = status(&sensor);
    assert_eq!(s.counters.selection.kept_per_flow, 0);
    assert!(s.counters.detection.windows >= 1);
    let beacon: IpAddr = BEACON.parse().unwrap();
    assert!(
        s.concern_list.iter().any(|c| c.server == beacon),
        "{:?}",
        s.concern_list
    );
    {
        let entries = rec.entries.lock().unwrap();
        assert!(entries.iter().any(|e| matches!(&e.act, Act::ConcernListed { server, reason, .. } if server == BEACON && (reason.starts_with("beacon") || reason.starts_with("c2")))), "{entries:?}");
    }
    // Every record was seen; the exporter is counted.
    let exporters = &s.counters.exporters;
    assert_eq!(exporters["127.0.0.1"].datagrams, v9.len() as u64);

    // 2. Deep on concern: the same traffic again (as IPFIX) is now kept per flow.
    let seen_before = s.counters.selection.seen;
    replay(udp, &ipfix);
    wait_until(
        "the IPFIX replay through selection",
        Duration::from_secs(30),
        || {
            let s = status(&sensor).counters;
            s.selection.seen >= seen_before + decode(&ipfix).len() as u64
        },
    );
    let metrics = http_get(http, "/metrics", dir.path());
    let status_json = http_get(http, "/status", dir.path());
    assert!(
        metrics.contains("mamori_sensor_selection_dropped_total{reason=\"domestic_domestic\"}")
    );
    let v: serde_json::Value = serde_json::from_str(&status_json).unwrap();
    assert!(v["selection"]["kept_per_flow"].as_u64().unwrap() > 0, "{v}");

    // 3. Expiry: once the second window has closed (it renews nothing: the listing is
    // fresh), the clock passes the concern's end; the end is recorded, the list empties.
    wait_until("the second window", Duration::from_secs(30), || {
        status(&sensor).counters.detection.windows >= 2
    });
    assert_eq!(status(&sensor).counters.concerns.listed, 1);
    clock.advance(chrono::Duration::days(8));
    wait_until("the concern to end", Duration::from_secs(10), || {
        status(&sensor).counters.concerns.ended >= 1
    });
    let end = sensor.stop().unwrap();
    assert_eq!(end.counters.concerns.active, 0);
    assert!(end.concern_list.is_empty());
    {
        let entries = rec.entries.lock().unwrap();
        let listed = entries
            .iter()
            .position(|e| matches!(&e.act, Act::ConcernListed { server, .. } if server == BEACON))
            .unwrap();
        let ended = entries
            .iter()
            .position(|e| matches!(&e.act, Act::ConcernEnded { server, .. } if server == BEACON))
            .unwrap();
        assert!(listed < ended);
    }

    // The kept records are the beacon's, with the client pseudonymised.
    let flows = parquet_files(dir.path(), "flows");
    assert!(!flows.is_empty());
    let mut kept = 0;
    for f in &flows {
        assert_eq!(
            file_metadata(f).unwrap()[PSEUDONYM_KEY_ID_KEY],
            "test-key-1"
        );
        for r in read_flows(f).unwrap() {
            assert!(r.src_addr == beacon || r.dst_addr == beacon, "{r:?}");
            kept += 1;
        }
    }
    assert_eq!(kept, end.counters.selection.kept_per_flow);
    assert_eq!(kept, end.counters.archive.flow_rows);
    assert!(!parquet_files(dir.path(), "aggregates").is_empty());
    assert_no_clear(dir.path(), &[&metrics, &status_json], &forbidden);
}

fn read_all(paths: &[PathBuf]) -> Vec<mamori_flow::FlowRecord> {
    struct All(Vec<mamori_flow::FlowRecord>);
    impl mamori_sensor::files::BatchSink for All {
        type Error = std::convert::Infallible;
        fn batch(&mut self, b: &FlowBatch) -> Result<(), Self::Error> {
            self.0.extend_from_slice(&b.records);
            Ok(())
        }
    }
    let mut all = All(Vec::new());
    for p in paths {
        mamori_sensor::files::read_file(p, Default::default(), &mut all).unwrap();
    }
    all.0
}

#[test]
fn file_inputs_pcap_binetflow_and_pmacct_exports_never_write_domestic_pairs_or_clear_subscribers() {
    let rels = [
        "pcap/slips-test-cc/test-cc-capture-1.pcap",
        "botnet/slips-argus-binetflow/test3-mixed.binetflow",
        "netflow/pmacct-tests/100-IPFIXv10-CISCO/traffic-00.pcap",
        "netflow/pmacct-tests/101-NFv9-CISCO-cust_primitives/traffic-00.pcap",
    ];
    let Some(geo) = geo() else { return };
    let mut paths = Vec::new();
    for r in rels {
        let Some(p) = common::test_data(r) else {
            return;
        };
        paths.push(p);
    }
    let input = read_all(&paths);
    let forbidden = non_foreign(&input, &geo);
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(MemRecorder::default());
    let clock = Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )));
    let cfg = config(dir.path(), false, &paths, &[]);
    let sensor = start(&cfg, geo.clone(), static_key(), rec, clock);
    let http = sensor.http_addr().unwrap();
    wait_until("files read", Duration::from_secs(60), || {
        sensor.files_done()
    });
    wait_until("all records selected", Duration::from_secs(30), || {
        status(&sensor).counters.selection.seen == input.len() as u64
    });
    let metrics = http_get(http, "/metrics", dir.path());
    let status_json = http_get(http, "/status", dir.path());
    let end = sensor.stop().unwrap();
    let c = &end.counters;
    assert_eq!(c.files_read, paths.len() as u64);
    assert_eq!(c.file_records, input.len() as u64);
    // pmacct's captures are all domestic↔domestic under this policy: counted, dropped.
    assert!(
        c.selection.dropped["domestic_domestic"] > 0,
        "{:?}",
        c.selection
    );
    assert_eq!(
        c.selection.seen,
        c.selection.dropped.values().sum::<u64>()
            + c.selection.aggregated
            + c.selection.kept_per_flow
    );
    assert!(c.archive.aggregate_rows > 0);
    // Nothing domestic↔domestic on disk: every aggregate's server is foreign.
    let policy = mamori_flow::SelectionPolicy::from_toml(SUBSCRIBERS).unwrap();
    let sel = mamori_flow::Selector::new(policy, &mamori_flow::CryptoPanKey::from_bytes([0; 32]))
        .unwrap();
    for f in parquet_files(dir.path(), "aggregates") {
        for a in read_aggregates(&f).unwrap() {
            assert_eq!(sel.side(a.server, &geo), Side::Foreign, "{a:?}");
        }
    }
    assert!(metrics.contains(&format!("mamori_sensor_file_records_total {}", input.len())));
    assert_no_clear(dir.path(), &[&metrics, &status_json], &forbidden);
}

#[test]
fn a_concern_whose_recording_fails_is_not_listed_and_its_flows_stay_aggregated() {
    let (Some(geo), Some(v9)) = (geo(), common::test_data(V9)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(MemRecorder::default());
    rec.fail.store(true, Ordering::Relaxed);
    let clock = Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )));
    let cfg = config(dir.path(), false, &[v9.clone(), v9], &[]);
    let sensor = start(&cfg, geo, static_key(), Arc::clone(&rec), clock);
    wait_until("a failed recording", Duration::from_secs(30), || {
        status(&sensor).counters.concerns.record_failures >= 1
    });

    let end = sensor.stop().unwrap();
    assert_eq!(end.counters.concerns.listed, 0);
    assert!(end.concern_list.is_empty());
    assert_eq!(end.counters.selection.kept_per_flow, 0);
    assert!(rec.entries.lock().unwrap().is_empty());
}

/// Switches keys when told.
struct TwoKeys(AtomicBool);
impl KeySource for TwoKeys {
    fn key_for(&self, _now: mamori_core::Timestamp) -> (String, mamori_flow::CryptoPanKey) {
        if self.0.load(Ordering::Relaxed) {
            ("k2".into(), mamori_flow::CryptoPanKey::from_bytes([2; 32]))
        } else {
            ("k1".into(), mamori_flow::CryptoPanKey::from_bytes([1; 32]))
        }
    }
}

#[test]
fn a_key_change_starts_new_files_each_naming_its_key_and_watched_files_are_picked_up() {
    let (Some(geo), Some(binetflow)) = (
        geo(),
        common::test_data("botnet/slips-argus-binetflow/test3-mixed.binetflow"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let watch = dir.path().join("incoming");
    std::fs::create_dir(&watch).unwrap();
    let keys = Arc::new(TwoKeys(AtomicBool::new(false)));
    let clock = Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )));
    let mut cfg = config(
        &dir.path().join("data"),
        false,
        &[],
        std::slice::from_ref(&watch),
    );
    cfg.detection.enabled = false;
    let sensor = start(
        &cfg,
        geo,
        keys.clone(),
        Arc::new(MemRecorder::default()),
        clock,
    );
    std::fs::copy(&binetflow, watch.join("a.binetflow")).unwrap();
    wait_until("the first watched file", Duration::from_secs(30), || {
        status(&sensor).counters.files_read == 1
    });
    let first = status(&sensor).counters.file_records;
    wait_until(
        "selection of the first file",
        Duration::from_secs(30),
        || status(&sensor).counters.selection.seen == first,
    );
    keys.0.store(true, Ordering::Relaxed);
    wait_until("the key change", Duration::from_secs(30), || {
        status(&sensor).counters.key_rotations == 1
    });
    std::fs::copy(&binetflow, watch.join("b.binetflow")).unwrap();
    wait_until("the second watched file", Duration::from_secs(30), || {
        status(&sensor).counters.files_read == 2
    });
    let end = sensor.stop().unwrap();
    assert_eq!(end.counters.file_records, 2 * first);
    let mut ids = BTreeSet::new();
    for f in parquet_files(&dir.path().join("data"), "aggregates") {
        ids.insert(file_metadata(&f).unwrap()[PSEUDONYM_KEY_ID_KEY].clone());
    }
    assert_eq!(ids, BTreeSet::from(["k1".to_owned(), "k2".to_owned()]));
    // Read files are remembered, so a restart does not read them twice.
    let done = std::fs::read_to_string(dir.path().join("data/inputs-read.txt")).unwrap();
    assert_eq!(done.lines().count(), 2);
}

#[test]
fn the_stages_outlive_the_file_inputs_so_concerns_still_expire_and_are_recorded() {
    let (Some(geo), Some(v9)) = (geo(), common::test_data(V9)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(MemRecorder::default());
    let clock = Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )));
    let cfg = config(dir.path(), false, &[v9], &[]);
    let sensor = start(
        &cfg,
        geo,
        static_key(),
        Arc::clone(&rec),
        Arc::clone(&clock),
    );
    wait_until("the beacon listed", Duration::from_secs(30), || {
        status(&sensor).counters.concerns.listed == 1
    });
    assert!(sensor.files_done());
    clock.advance(chrono::Duration::days(8));
    wait_until(
        "the concern to end after the input ran dry",
        Duration::from_secs(10),
        || status(&sensor).counters.concerns.ended == 1,
    );
    sensor.stop().unwrap();
    let entries = rec.entries.lock().unwrap();
    assert!(matches!(
        entries.last().unwrap().act,
        Act::ConcernEnded { .. }
    ));
}

/// Counts the reaper's calls to retire keys; with `panics`, retirement panics instead, so
/// the reaper's stage dies.
#[derive(Default)]
struct CountingKeys {
    calls: std::sync::atomic::AtomicU64,
    panics: bool,
}
impl KeySource for CountingKeys {
    fn key_for(&self, _now: mamori_core::Timestamp) -> (String, mamori_flow::CryptoPanKey) {
        (
            "counting".into(),
            mamori_flow::CryptoPanKey::from_bytes([7; 32]),
        )
    }
    fn retire_unused(
        &self,
        _now: mamori_core::Timestamp,
        _archive_dir: &Path,
    ) -> Result<usize, String> {
        assert!(!self.panics, "key ring poisoned");
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(0)
    }
}

/// A panicking stage is never swallowed: the sensor reports it while running and
/// `stop` returns an error naming the stage and the panic (the process then stops).
#[test]
fn a_panicking_stage_is_named_by_the_running_sensor_and_by_stop() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), false, &[], &[]);
    let sensor = start(
        &cfg,
        GeoTableBuilder::new().build(),
        Arc::new(CountingKeys {
            panics: true,
            ..CountingKeys::default()
        }),
        Arc::new(MemRecorder::default()),
        clock_now(),
    );
    wait_until("the reaper's panic", Duration::from_secs(10), || {
        sensor.failed_stage().is_some()
    });
    assert_eq!(sensor.failed_stage().as_deref(), Some("sensor reaper"));
    let err = sensor.stop().unwrap_err();
    match &err {
        RuntimeError::StagePanicked { stage, message } => {
            assert_eq!(stage, "sensor reaper");
            assert_eq!(message, "key ring poisoned");
        }
        other => panic!("expected StagePanicked, got {other:?}"),
    }
    assert!(err.to_string().contains("sensor reaper"), "{err}");
}

/// The running sensor deletes expired archive files on time and records one `deletion`
/// entry per file (CI-5, DESIGN invariant 4), then asks its key source to retire keys.
#[test]
fn the_running_sensor_reaps_on_time_and_records_every_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let now = mamori_core::Clock::now(&mamori_core::time::SystemClock);
    let clock = Arc::new(ManualClock::new(now));
    // Two files, one hour apart, each kept for one hour after the end of its hour.
    let retention = mamori_sensor::archive::RetentionPolicy {
        flows: Duration::from_secs(3600),
        aggregates: Duration::from_secs(3600),
    };
    let writer =
        mamori_sensor::archive::ArchiveWriter::new(dir.path().join("archive"), retention).unwrap();
    let hour_ms = 3_600_000;
    let base_ms = (now.timestamp_millis() / hour_ms) * hour_ms;
    let record = |start_ms: i64| mamori_flow::FlowRecord {
        src_addr: "198.51.100.7".parse().unwrap(),
        dst_addr: "192.0.2.1".parse().unwrap(),
        start_ms,
        end_ms: start_ms + 1000,
        packets: 1,
        bytes: 60,
        protocol: 6,
        ..Default::default()
    };
    let older = writer
        .write_flows(&[record(base_ms - 2 * hour_ms)])
        .unwrap();
    let newer = writer.write_flows(&[record(base_ms + 10)]).unwrap();
    assert_eq!((older.len(), newer.len()), (1, 1));

    let mut cfg = config(dir.path(), false, &[], &[]);
    cfg.retention = retention;
    cfg.archive.reap_every = Duration::from_secs(1);
    cfg.detection.enabled = false;
    let rec = Arc::new(MemRecorder::default());
    let keys = Arc::new(CountingKeys::default());
    let sensor = Sensor::start(
        &cfg,
        Deps {
            clock: clock.clone(),
            keys: keys.clone(),
            recorder: rec.clone(),
            geo: Arc::new(GeoTableBuilder::new().build()),
            centre_token: None,
        },
    )
    .unwrap();
    // The older file's expiry (end of its hour + 1 h) has passed: it goes, recorded.
    wait_until("the expired file reaped", Duration::from_secs(20), || {
        !older[0].path.exists()
    });
    wait_until("its deletion recorded", Duration::from_secs(20), || {
        rec.entries.lock().unwrap().len() == 1
    });
    assert!(newer[0].path.exists(), "a file before its expiry stays");
    // Two hours on, the newer one has expired too.
    clock.advance(chrono::Duration::hours(2));
    wait_until("the second file reaped", Duration::from_secs(20), || {
        !newer[0].path.exists()
    });
    wait_until("its deletion recorded", Duration::from_secs(20), || {
        rec.entries.lock().unwrap().len() == 2
    });
    let end = sensor.stop().unwrap();
    let entries = rec.entries.lock().unwrap();
    for (e, w) in entries.iter().zip([&older[0], &newer[0]]) {
        match &e.act {
            Act::Deletion { what, count, .. } => {
                let rel = w
                    .path
                    .strip_prefix(dir.path().join("archive/flows"))
                    .unwrap();
                assert_eq!(what, &format!("flows:{}", rel.display()));
                assert_eq!(*count, 1);
            }
            other => panic!("not a deletion: {other:?}"),
        }
    }
    assert_eq!(end.counters.archive.reaped_files, 2);
    assert_eq!(end.counters.archive.reaped_recorded, 2);
    assert!(
        keys.calls.load(Ordering::Relaxed) >= 2,
        "keys retired after each pass"
    );
}

/// An indicator list changed while the sensor runs is reloaded and used from the next batch
/// on, without a restart (CI-11: reloaded atomically without pausing ingest); each hit
/// names its feed.
#[test]
fn a_changed_indicator_list_is_reloaded_while_running() {
    let (Some(geo), Some(v9)) = (geo(), common::test_data(V9)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("local-drop.txt");
    std::fs::write(&list, "192.0.2.0/24 ; SBL000001\n").unwrap();
    let watch = dir.path().join("incoming");
    std::fs::create_dir_all(&watch).unwrap();
    let mut cfg = config(dir.path(), false, &[], std::slice::from_ref(&watch));
    cfg.detection.indicators = vec![list.clone()];
    cfg.detection.indicators_reload = Duration::from_millis(200);
    let rec = Arc::new(MemRecorder::default());
    let clock = Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )));
    let sensor = start(&cfg, geo, static_key(), Arc::clone(&rec), clock);
    // The list now names the beacon's /24: reloaded without a restart.
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(
        &list,
        "192.0.2.0/24 ; SBL000001\n141.193.213.0/24 ; SBL999999\n",
    )
    .unwrap();
    wait_until("the list reloaded", Duration::from_secs(20), || {
        status(&sensor).counters.detection.indicator_reloads >= 1
    });
    std::fs::copy(&v9, watch.join("export.pcap")).unwrap();
    wait_until("the indicator hit listed", Duration::from_secs(60), || {
        status(&sensor)
            .concern_list
            .iter()
            .any(|c| c.server.to_string() == "141.193.213.21")
    });
    let end = sensor.stop().unwrap();
    let listed = end
        .concern_list
        .iter()
        .find(|c| c.server.to_string() == "141.193.213.21")
        .unwrap();
    assert!(listed.reason.starts_with("indicator"), "{}", listed.reason);
    assert_eq!(end.counters.detection.indicator_reload_errors, 0);
    let entries = rec.entries.lock().unwrap();
    assert!(entries.iter().any(|e| matches!(
        &e.act,
        Act::ConcernListed { server, reason, .. } if server.starts_with("141.193.213.21") && reason.starts_with("indicator")
    )));
}

/// A sensor configuration watching `DIR/incoming`, with `list` as the US country list,
/// checked for changes every second.
fn us_list_config(dir: &Path, list: &Path) -> (std::path::PathBuf, SensorConfig) {
    let watch = dir.join("incoming");
    std::fs::create_dir_all(&watch).unwrap();
    let mut cfg = config(dir, false, &[], std::slice::from_ref(&watch));
    cfg.geo = SensorConfig::from_toml(&format!(
        "[geo]\ncidr_lists = [{{ country = \"US\", path = {list:?} }}]\nrefresh = \"1s\"\n"
    ))
    .unwrap()
    .geo;
    (watch, cfg)
}

/// The country table is refreshed while the sensor runs when its files change (CI-2,
/// refreshable country data): the beacon's server, unknown (so domestic, dropped) at start, is
/// foreign once its country list names it, and is then found and listed.
#[test]
fn a_changed_country_list_is_refreshed_while_running() {
    let Some(v9) = common::test_data(V9) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("us.cidr");
    std::fs::write(&list, "192.0.2.0/24\n").unwrap();
    let (watch, cfg) = us_list_config(dir.path(), &list);
    let geo = cfg.geo.load(Path::new("")).unwrap();
    let rec = Arc::new(MemRecorder::default());
    let clock = Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )));
    let sensor = start(&cfg, geo, static_key(), Arc::clone(&rec), clock);
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(&list, "192.0.2.0/24\n141.193.213.0/24\n").unwrap();
    wait_until("the table refreshed", Duration::from_secs(20), || {
        status(&sensor).counters.detection.geo_reloads >= 1
    });
    std::fs::copy(&v9, watch.join("export.pcap")).unwrap();
    wait_until("the beacon listed", Duration::from_secs(60), || {
        status(&sensor)
            .concern_list
            .iter()
            .any(|c| c.server.to_string() == BEACON)
    });
    let end = sensor.stop().unwrap();
    assert_eq!(end.counters.detection.geo_reload_errors, 0);
    assert!(end.counters.selection.kept_per_flow + end.counters.selection.aggregated > 0);
}

/// A country list rewritten with garbage (a half-written download, an error page saved in
/// its place) is refused and counted on refresh; the table in force stays, so the beacon's
/// server is still foreign and still found (CI-2: the selection never runs on a table with
/// countries missing). At start the same file is a configuration error naming it.
#[test]
fn a_broken_country_list_keeps_the_table_in_force() {
    let Some(v9) = common::test_data(V9) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("us.cidr");
    std::fs::write(&list, "192.0.2.0/24\n141.193.213.0/24\n").unwrap();
    let (watch, cfg) = us_list_config(dir.path(), &list);
    let geo = cfg.geo.load(Path::new("")).unwrap();
    let rec = Arc::new(MemRecorder::default());
    let clock = Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )));
    let sensor = start(&cfg, geo, static_key(), Arc::clone(&rec), clock);
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(&list, "<html><body>502 Bad Gateway</body></html>\n").unwrap();
    wait_until("the broken list refused", Duration::from_secs(20), || {
        status(&sensor).counters.detection.geo_reload_errors >= 1
    });
    std::fs::copy(&v9, watch.join("export.pcap")).unwrap();
    wait_until("the beacon listed", Duration::from_secs(60), || {
        status(&sensor)
            .concern_list
            .iter()
            .any(|c| c.server.to_string() == BEACON)
    });
    let end = sensor.stop().unwrap();
    assert_eq!(end.counters.detection.geo_reloads, 0);
    let err = cfg.geo.load(Path::new("")).unwrap_err().to_string();
    assert!(
        err.contains("us.cidr") && err.contains("1 malformed"),
        "{err}"
    );
}

/// A list rewritten with garbage is refused and counted; the set in force stays and still
/// finds what it listed (bad input loses nothing already loaded).
#[test]
fn a_broken_indicator_list_keeps_the_set_in_force() {
    let (Some(geo), Some(v9)) = (geo(), common::test_data(V9)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("local-drop.txt");
    std::fs::write(&list, "141.193.213.0/24 ; SBL999999\n").unwrap();
    let watch = dir.path().join("incoming");
    std::fs::create_dir_all(&watch).unwrap();
    let mut cfg = config(dir.path(), false, &[], std::slice::from_ref(&watch));
    cfg.detection.indicators = vec![list.clone()];
    cfg.detection.indicators_reload = Duration::from_millis(200);
    let rec = Arc::new(MemRecorder::default());
    let clock = Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )));
    let sensor = start(&cfg, geo, static_key(), Arc::clone(&rec), clock);
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(&list, "this is not an address list ; at all\n").unwrap();
    wait_until("the broken list refused", Duration::from_secs(20), || {
        status(&sensor).counters.detection.indicator_reload_errors >= 1
    });
    std::fs::copy(&v9, watch.join("export.pcap")).unwrap();
    wait_until("the indicator hit listed", Duration::from_secs(60), || {
        status(&sensor)
            .concern_list
            .iter()
            .any(|c| c.server.to_string() == BEACON && c.reason.starts_with("indicator"))
    });
    let end = sensor.stop().unwrap();
    assert_eq!(end.counters.detection.indicator_reloads, 0);
}

/// `/status` names the servers on the concern list: it needs the carrier's operator token
/// or the overseer's; `/metrics` stays open (CI-5).
#[test]
fn status_needs_the_operator_or_overseer_token_and_metrics_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), false, &[], &[]);
    let sensor = start_plain(&cfg);
    let http = sensor.http_addr().unwrap();

    let (code, body) = http_request(http, "/status", None);
    assert_eq!(code, 401, "{body}");
    assert!(!body.contains("concern_list"), "{body}");
    let (code, body) = http_request(http, "/status", Some("mamori_operator_guess"));
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("mamori sensor operator-token"), "{body}");

    let operator = issue_token_for(dir.path(), TokenHolder::Operator).unwrap();
    let (code, body) = http_request(http, "/status", Some("mamori_operator_guess"));
    assert_eq!(code, 401, "{body}");
    let (code, body) = http_request(http, "/status", Some(&operator));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("concern_list"), "{body}");
    let overseer = issue_token(dir.path()).unwrap();
    assert_eq!(http_request(http, "/status", Some(&overseer)).0, 200);
    // A new operator token replaces the old one, and leaves the overseer's alone.
    let newer = issue_token_for(dir.path(), TokenHolder::Operator).unwrap();
    assert_eq!(http_request(http, "/status", Some(&operator)).0, 401);
    assert_eq!(http_request(http, "/status", Some(&newer)).0, 200);
    assert_eq!(http_request(http, "/status", Some(&overseer)).0, 200);

    let (code, metrics) = http_request(http, "/metrics", None);
    assert_eq!(code, 200, "{metrics}");
    assert!(
        metrics.contains("mamori_sensor_selection_seen_total"),
        "{metrics}"
    );
    sensor.stop().unwrap();
}

/// Malformed lines in input files are counted, and a file with nothing but malformed lines
/// (a binary file forced as Zeek) is a failed file, not a file read (STYLE 4).
#[test]
fn malformed_lines_in_files_are_counted_and_a_file_of_nothing_else_fails() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("capture.bin");
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&binary, &junk).unwrap();
    let mut cfg = config(dir.path(), false, &[binary], &[]);
    cfg.files.format = mamori_sensor::files::FileFormat::Zeek;
    let sensor = start_plain(&cfg);
    wait_until("the file", Duration::from_secs(30), || sensor.files_done());
    let c = sensor.stop().unwrap().counters;
    assert_eq!((c.files_read, c.file_errors, c.file_records), (0, 1, 0));
    assert!(c.file_malformed > 0, "{c:?}");
    assert!(c.prometheus().contains(&format!(
        "mamori_sensor_file_malformed_total {}",
        c.file_malformed
    )));

    // A good file with two bad lines: read, its records kept, the two lines counted.
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("a.binetflow");
    std::fs::write(
        &flows,
        "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,Label\n\
2011/08/10 09:46:53.047277,3550.182373,udp,212.50.71.179,39678,  <->,147.32.84.229,13363,CON,0,0,12,875,413,flow=Background\n\
not,a,flow\n\
2011/08/10 09:46:54.047277,1.0,tcp,212.50.71.180,39679,   ->,147.32.84.229,80,CON,0,0,3,180,120,flow=Background\n\
2011/99/99 nonsense,1.0,tcp,x,1,   ->,y,80,CON,0,0,3,180,120,flow=Background\n",
    )
    .unwrap();
    let cfg = config(dir.path(), false, &[flows], &[]);
    let sensor = start_plain(&cfg);
    wait_until("the file", Duration::from_secs(30), || sensor.files_done());
    let c = sensor.stop().unwrap().counters;
    assert_eq!((c.files_read, c.file_errors, c.file_records), (1, 0, 2));
    assert_eq!(c.file_malformed, 2, "{c:?}");
}

/// Country files older than `[geo] max_age` are reported as out of date, in `/status` and
/// `/metrics` (and the log), by the injected clock: the selection by country is only as
/// good as the files' date.
#[test]
fn country_files_older_than_max_age_are_reported_out_of_date() {
    for (days_later, stale) in [(0, false), (40, true)] {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("us.cidr");
        std::fs::write(&list, "192.0.2.0/24\n").unwrap();
        let (_, mut cfg) = us_list_config(dir.path(), &list);
        cfg.geo.max_age = Duration::from_secs(30 * 86_400);
        let geo = cfg.geo.load(Path::new("")).unwrap();
        let now = mamori_core::Clock::now(&mamori_core::time::SystemClock)
            + chrono::Duration::days(days_later);
        let clock = Arc::new(ManualClock::new(now));
        let rec = Arc::new(MemRecorder::default());
        let sensor = start(&cfg, geo, static_key(), rec, clock);
        wait_until("the age checked", Duration::from_secs(10), || {
            let d = status(&sensor).counters.detection;
            d.geo_age_seconds >= (days_later as u64) * 86_400 && d.geo_stale == stale
        });
        let end = sensor.stop().unwrap();
        let text = end.counters.prometheus();
        assert!(
            text.contains(&format!("mamori_sensor_geo_data_stale {}", u8::from(stale))),
            "{text}"
        );
        assert!(end.counters.detection.geo_age_seconds < (days_later as u64 + 1) * 86_400);
    }
}

// ---------------------------------------------------------------------------------------
// The data path (CI-2, CI-4, CI-5, CI-11; DESIGN invariants 2 and 4): pseudonyms are
// never servers, record times are bounded, late records keep their window, the concern
// list lives in the ledger (manual changes too), exporters inside the subscriber prefixes
// are pseudonymised.

/// A controllable clock that starts at the real now.
fn clock_now() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(mamori_core::Clock::now(
        &mamori_core::time::SystemClock,
    )))
}

/// A centre that takes every POST of findings and keeps their bodies (loopback only).
struct FakeCentre {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

fn fake_centre() -> FakeCentre {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let body = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body[..len].to_owned());
                    }
                }
            };
            if let Some(body) = body {
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    FakeCentre { url, bodies }
}

/// One Argus binetflow line: `src` probes `dst`:`port` with a SYN that gets no answer.
fn probe(at: &str, src: &str, dst: &str, port: u16) -> String {
    format!("{at},0.000000,tcp,{src},40000,   ->,{dst},{port},S_,0,0,1,60,60,1,\n")
}

const BINETFLOW_HEADER: &str = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,SrcPkts,Label\n";

/// CI-4, DESIGN invariant 2: a subscriber scanning the internet is pseudonymised
/// under the carrier's key into a prefix the country table calls foreign. The detection
/// must know it is a pseudonym from the select stage, not from a country lookup: no
/// concern listing (no deep collection of whoever holds that address), and the finding
/// sent to the centre is an infected-client finding that says "pseudonym" and names the
/// key.
#[test]
fn a_subscribers_pseudonym_in_a_foreign_prefix_is_an_infected_client_never_a_listed_server() {
    let subscriber: IpAddr = "147.32.5.5".parse().unwrap();
    let key = mamori_flow::CryptoPanKey::from_bytes([42; 32]);
    let pseudonym = mamori_flow::CryptoPan::new(&key).anonymise(subscriber);
    let IpAddr::V4(p) = pseudonym else {
        unreachable!()
    };
    let [a, b, ..] = p.octets();
    assert_ne!(
        (a, b),
        (147, 32),
        "the pseudonym leaves the subscriber prefix"
    );
    // The pseudonym's /16 and the scanned range are "US" in the country table.
    let geo = mamori_flow::geo_from_cidr_lists([(
        "US".parse().unwrap(),
        format!("{a}.{b}.0.0/16\n198.18.0.0/16\n").as_str(),
    )]);
    let selector = mamori_flow::Selector::new(
        mamori_flow::SelectionPolicy::from_toml(SUBSCRIBERS).unwrap(),
        &key,
    )
    .unwrap();
    assert_eq!(selector.side(pseudonym, &geo), Side::Foreign);

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.binetflow");
    let mut text = BINETFLOW_HEADER.to_owned();
    for i in 0..200u32 {
        let at = format!("2024/02/08 10:{:02}:{:02}.000000", i / 60, i % 60);
        text.push_str(&probe(
            &at,
            "147.32.5.5",
            &format!("198.18.{}.{}", i / 250, 1 + i % 250),
            23,
        ));
    }
    std::fs::write(&input, text).unwrap();
    let centre = fake_centre();
    let mut cfg = config(dir.path(), false, std::slice::from_ref(&input), &[]);
    cfg.centre = SensorConfig::from_toml(&format!("[centre]\nurl = {:?}\n", centre.url))
        .unwrap()
        .centre;
    let rec = Arc::new(MemRecorder::default());
    let clock = clock_now();
    let sensor = Sensor::start(
        &cfg,
        Deps {
            clock,
            keys: static_key(),
            recorder: rec.clone(),
            geo: Arc::new(geo),
            centre_token: Some("t".into()),
        },
    )
    .unwrap();
    wait_until("the finding posted", Duration::from_secs(30), || {
        status(&sensor).counters.detection.findings_posted >= 1
    });
    let end = sensor.stop().unwrap();
    assert!(end.concern_list.is_empty(), "{:?}", end.concern_list);
    assert_eq!(end.counters.concerns.listed, 0);
    assert!(
        !rec.entries
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e.act, Act::ConcernListed { .. })),
        "a pseudonym was put on the concern list"
    );
    assert_eq!(end.counters.detection.findings_infected_client, 1);
    let bodies = centre.bodies.lock().unwrap();
    let findings: Vec<&serde_json::Value> = bodies
        .iter()
        .flat_map(|b| b["findings"].as_array().unwrap())
        .collect();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = findings[0];
    assert_eq!(f["kind"], "infected_client", "{f}");
    assert_eq!(f["address"], pseudonym.to_string());
    assert_eq!(f["evidence"]["type"], "infected_client");
    assert_eq!(f["evidence"]["address_is"], "pseudonym");
    assert_eq!(f["evidence"]["pseudonym_key_id"], "test-key-1");
    assert_eq!(f["evidence"]["detected_as"], "scan");
    assert!(!f.to_string().contains("147.32.5.5"));
}

/// One NetFlow v5 datagram (header and one record) from an exporter whose clock says
/// `unix_secs`: `src` → `dst`:443/tcp.
fn v5_datagram(unix_secs: u32, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&5u16.to_be_bytes());
    d.extend_from_slice(&1u16.to_be_bytes());
    d.extend_from_slice(&600_000u32.to_be_bytes()); // sys_uptime
    d.extend_from_slice(&unix_secs.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes()); // nsecs
    d.extend_from_slice(&1u32.to_be_bytes()); // sequence
    d.extend_from_slice(&[0, 0, 0, 0]); // engine, sampling
    d.extend_from_slice(&src);
    d.extend_from_slice(&dst);
    d.extend_from_slice(&[0; 4]); // next hop
    d.extend_from_slice(&[0; 4]); // input, output
    d.extend_from_slice(&3u32.to_be_bytes()); // packets
    d.extend_from_slice(&180u32.to_be_bytes()); // bytes
    d.extend_from_slice(&599_000u32.to_be_bytes()); // first
    d.extend_from_slice(&599_500u32.to_be_bytes()); // last
    d.extend_from_slice(&50_000u16.to_be_bytes());
    d.extend_from_slice(&443u16.to_be_bytes());
    d.extend_from_slice(&[0, 0x1b, 6, 0]); // pad, flags, proto, tos
    d.extend_from_slice(&[0; 4]); // AS
    d.extend_from_slice(&[0; 4]); // masks, pad
    d
}

/// CI-5, CI-11: one valid NetFlow v5 datagram whose header says 2097 neither moves the
/// detection windows nor gets an archive hour in 2097: it is re-timed to its arrival and
/// counted, and the beacon that follows is found in its own window.
#[test]
fn a_datagram_dated_2097_is_retimed_and_counted_and_moves_no_window() {
    let (Some(geo), Some(v9)) = (geo(), common::test_data(V9)) else {
        return;
    };
    let v9 = common::udp_datagrams(&v9);
    let input = decode(&v9);
    let first = input
        .iter()
        .map(|r| r.start_ms)
        .filter(|&t| t > 0)
        .min()
        .unwrap();
    let last = input
        .iter()
        .map(|r| r.end_ms.max(r.start_ms))
        .max()
        .unwrap();
    let day = mamori_core::time::rfc3339(
        mamori_core::time::from_millis(first.div_euclid(86_400_000) * 86_400_000).unwrap(),
    );
    // Live: the sensor's clock is just after the capture.
    let clock = Arc::new(ManualClock::new(
        mamori_core::time::from_millis(last + 60_000).unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(MemRecorder::default());
    let cfg = config(dir.path(), true, &[], &[]);
    let sensor = start(&cfg, geo, static_key(), Arc::clone(&rec), clock);
    let udp = sensor.udp_addrs()[0];
    // A subscriber's flow to a foreign server (kept), stamped 2097 by its exporter.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(
        &v5_datagram(4_012_000_000, [147, 32, 80, 37], [141, 193, 213, 22]),
        udp,
    )
    .unwrap();
    wait_until("the 2097 record selected", Duration::from_secs(10), || {
        status(&sensor).counters.selection.seen >= 1
    });
    replay(udp, &v9);
    wait_until("the beacon listed", Duration::from_secs(30), || {
        status(&sensor).counters.concerns.listed >= 1
    });
    let end = sensor.stop().unwrap();
    let beacon: IpAddr = BEACON.parse().unwrap();
    let listed = end
        .concern_list
        .iter()
        .find(|c| c.server == beacon)
        .unwrap();
    assert!(
        listed.reason.contains(&format!("(window {day})")),
        "{} (want window {day})",
        listed.reason
    );
    for f in parquet_files(dir.path(), "aggregates") {
        assert!(!f.to_string_lossy().contains("/2097-"), "{}", f.display());
        assert!(
            file_metadata(&f).unwrap()["mamori.expires_at"].as_str() < "2030",
            "{}",
            f.display()
        );
    }
    assert_eq!(end.counters.archive.lost_rows, 0);
    assert_eq!(end.counters.detection.retimed_records, 1);
}

/// CI-11: a record late by less than the allowed lateness goes to its own window, so the
/// finding names that window; one later than that is counted and kept out of detection.
#[test]
fn late_records_go_to_their_own_window_or_are_counted_and_left_out() {
    let geo = mamori_flow::geo_from_cidr_lists([("US".parse().unwrap(), "198.51.100.0/24\n")]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("late.binetflow");
    let mut text = BINETFLOW_HEADER.to_owned();
    let scan = |text: &mut String, hour: u32, minute: u32, src: &str| {
        for i in 0..150u32 {
            let at = format!("2024/02/08 {hour:02}:{minute:02}:{:02}.{:06}", i % 60, i);
            text.push_str(&probe(
                &at,
                src,
                &format!("147.32.{}.{}", 1 + i / 200, 1 + i % 200),
                445,
            ));
        }
    };
    scan(&mut text, 11, 0, "198.51.100.1"); // window 11:00
    scan(&mut text, 10, 58, "198.51.100.2"); // 2 minutes late: its own window, 10:00
    scan(&mut text, 11, 30, "198.51.100.3"); // window 11:00
    scan(&mut text, 10, 30, "198.51.100.4"); // an hour late: left out and counted
    std::fs::write(&input, text).unwrap();
    let mut cfg = config(dir.path(), false, std::slice::from_ref(&input), &[]);
    cfg.detection.window = Duration::from_secs(3600);
    let rec = Arc::new(MemRecorder::default());
    let clock = clock_now();
    let sensor = start(&cfg, geo, static_key(), Arc::clone(&rec), clock);
    wait_until("the windows closed", Duration::from_secs(30), || {
        let s = status(&sensor);
        sensor.files_done()
            && s.counters.detection.records >= 600
            && s.counters.concerns.listed >= 3
    });
    let end = sensor.stop().unwrap();
    let reason = |server: &str| {
        end.concern_list
            .iter()
            .find(|c| c.server.to_string() == server)
            .map(|c| c.reason.clone())
    };
    let at = |hour: &str| format!("(window 2024-02-08T{hour}:00:00.000Z)");
    assert!(reason("198.51.100.1").unwrap().ends_with(&at("11")));
    assert!(
        reason("198.51.100.2").unwrap().ends_with(&at("10")),
        "{:?}",
        reason("198.51.100.2")
    );
    assert!(reason("198.51.100.3").unwrap().ends_with(&at("11")));
    assert_eq!(reason("198.51.100.4"), None, "{:?}", end.concern_list);
    assert_eq!(end.counters.detection.late_records, 150);
}

/// CI-4, CI-5: the concern list survives a restart: rebuilt from the ledger, so deep
/// collection goes on; a server already listed is not listed a second time.
#[test]
fn the_concern_list_is_rebuilt_from_the_ledger_after_a_restart_and_never_listed_twice() {
    let (Some(geo), Some(v9)) = (geo(), common::test_data(V9)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(MemRecorder::default());
    let clock = clock_now();
    let watch = dir.path().join("incoming");
    std::fs::create_dir_all(&watch).unwrap();
    let cfg = config(dir.path(), false, &[], std::slice::from_ref(&watch));
    let sensor = start(
        &cfg,
        geo.clone(),
        static_key(),
        Arc::clone(&rec),
        Arc::clone(&clock),
    );
    std::fs::copy(&v9, watch.join("a.pcap")).unwrap();
    wait_until("the beacon listed", Duration::from_secs(30), || {
        status(&sensor).counters.concerns.listed == 1
    });
    let before = sensor.stop().unwrap().concern_list;

    // Restarted: the list is there before any input, and deep collection resumes.
    let sensor = start(&cfg, geo, static_key(), Arc::clone(&rec), clock);
    assert_eq!(status(&sensor).concern_list, before);
    assert_eq!(status(&sensor).counters.concerns.restored, 1);
    std::fs::copy(&v9, watch.join("b.pcap")).unwrap();
    wait_until("the second file's windows", Duration::from_secs(30), || {
        let s = status(&sensor).counters;
        s.files_read == 1 && s.detection.windows >= 1
    });
    let end = sensor.stop().unwrap();
    assert!(end.counters.selection.kept_per_flow > 0);
    assert_eq!(end.concern_list, before);
    let listings = rec
        .entries
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(&e.act, Act::ConcernListed { server, .. } if server == BEACON))
        .count();
    assert_eq!(listings, 1);
}

/// Manual concerns and the exporter column (CI-4, CI-5): a concern added through the ledger (as `mamori sensor
/// concern add` records it) is in force from the start; its flows are archived per
/// record with the exporter, which lies inside the subscriber prefixes, pseudonymised
/// like every address there. A concern on a subscriber address is never applied.
#[test]
fn a_recorded_manual_concern_is_applied_and_exporters_inside_subscriber_prefixes_are_pseudonymised()
{
    let (Some(geo), Some(v9)) = (geo(), common::test_data(V9)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(MemRecorder::default());
    let now = mamori_core::Clock::now(&mamori_core::time::SystemClock);
    let clock = Arc::new(ManualClock::new(now));
    let manual = |server: &str| {
        Entry::new(
            now,
            mamori_core::entry::Actor::local_cli(),
            Act::ConcernListed {
                server: server.into(),
                reason: "manual: case 12".into(),
                expires_at: now + chrono::Duration::days(1),
                renewal: false,
            },
        )
    };
    rec.record(&[manual(BEACON), manual("147.32.80.37")])
        .unwrap();
    let mut cfg = config(dir.path(), false, &[v9], &[]);
    cfg.detection.enabled = false;
    // The exporter of the capture is 127.0.0.1: the carrier counts it among its own.
    cfg.selection
        .subscriber_prefixes
        .push("127.0.0.0/8".parse().unwrap());
    let sensor = start(&cfg, geo, static_key(), Arc::clone(&rec), clock);
    let listed: Vec<String> = status(&sensor)
        .concern_list
        .iter()
        .map(|c| c.server.to_string())
        .collect();
    assert_eq!(listed, vec![BEACON.to_owned()]);
    assert_eq!(status(&sensor).counters.concerns.refused, 1);
    wait_until("the file read", Duration::from_secs(30), || {
        sensor.files_done()
    });
    wait_until("the file selected", Duration::from_secs(30), || {
        let c = status(&sensor).counters;
        c.selection.seen == c.file_records
    });
    // Removed by hand while running: the entry comes first, the list follows it.
    rec.record(&[Entry::new(
        now,
        mamori_core::entry::Actor::local_cli(),
        Act::ConcernEnded {
            server: BEACON.into(),
            reason: "manual: case 12 closed".into(),
        },
    )])
    .unwrap();
    wait_until("the removal applied", Duration::from_secs(10), || {
        status(&sensor).concern_list.is_empty()
    });
    let end = sensor.stop().unwrap();
    assert!(end.counters.selection.kept_per_flow > 0);
    let exporter: IpAddr = "127.0.0.1".parse().unwrap();
    let pseudonym = mamori_flow::CryptoPan::new(&mamori_flow::CryptoPanKey::from_bytes([42; 32]))
        .anonymise(exporter);
    let mut rows = 0;
    for f in parquet_files(dir.path(), "flows") {
        for r in read_flows(&f).unwrap() {
            assert_eq!(r.exporter, pseudonym, "{r:?}");
            rows += 1;
        }
    }
    assert_eq!(rows, end.counters.selection.kept_per_flow);
}
