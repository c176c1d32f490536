#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: signals the process as an operator would
//! `mamori sensor run` as a carrier runs it (issue 6 part 5, issue 7 part 3; REQUIREMENTS
//! CI-4, CI-11; DESIGN invariant 2): a real `mamori serve` as the centre, the sensor
//! reading test-cc-capture-1 from a file input, finding the beacon, posting it with the
//! carrier's token under the configured TLP; `/metrics`, `/status`, `mamori sensor status`
//! and SIGUSR1 report; SIGTERM stops it gracefully. No subscriber address in clear in the
//! process's logs, its served texts, its files or the findings the centre stored.

mod support;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{mamori, start_serve};

const SUBSCRIBERS: [&str; 4] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "147.32.0.0/16",
];

fn http_get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.take(16 << 20).read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// The subscriber addresses of the input, in clear, from `mamori flows`.
fn subscribers_in(pcap: &Path) -> Vec<String> {
    let out = mamori().arg("flows").arg(pcap).output().unwrap();
    assert!(out.status.success());
    let policy =
        mamori_flow::SelectionPolicy::from_toml(&format!("subscriber_prefixes = {SUBSCRIBERS:?}"))
            .unwrap();
    let sel = mamori_flow::Selector::new(policy, &mamori_flow::CryptoPanKey::from_bytes([0; 32]))
        .unwrap();
    let geo = mamori_flow::GeoTableBuilder::new().build();
    let mut set = std::collections::BTreeSet::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for k in ["src", "dst"] {
            let a: IpAddr = v[k].as_str().unwrap().parse().unwrap();
            if sel.side(a, &geo) == mamori_flow::Side::Subscriber {
                set.insert(a.to_string());
            }
        }
    }
    set.into_iter().collect()
}

fn contains_addr(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        let part =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_hexdigit() || c == '.' || c == ':');
        !part(before) && !part(after)
    })
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn sensor_finds_the_beacon_posts_it_to_a_real_centre_and_reports_without_clear_subscribers() {
    let (Some(pcap), Some(geo_us), Some(geo_jp)) = (
        mamori_core::testdata::path("pcap/slips-test-cc/test-cc-capture-1.pcap"),
        mamori_core::testdata::path("geo/country-ip-blocks/ipv4/us.cidr"),
        mamori_core::testdata::path("geo/country-ip-blocks/ipv4/jp.cidr"),
    ) else {
        return;
    };
    let forbidden = subscribers_in(&pcap);
    assert!(
        forbidden.iter().any(|a| a == "147.32.80.37"),
        "{forbidden:?}"
    );

    // The centre, with a carrier and its token.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("centre");
    let d = data.as_os_str();
    let run = |args: &[&str]| support::run_in(d, args);
    let admin = run(&["init"]);
    let carrier = support::add_carrier(d);
    let server = start_serve([OsStr::new("--data-dir"), d], &[]);

    // The sensor.
    let sensor_dir = dir.path().join("sensor");
    let cfg = dir.path().join("sensor.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"data_dir = {sensor_dir:?}
[collector]
listen = []
[files]
paths = [{pcap:?}]
[selection]
subscriber_prefixes = {SUBSCRIBERS:?}
[geo]
cidr_lists = [{{ country = "US", path = {geo_us:?} }}, {{ country = "JP", path = {geo_jp:?} }}]
[detection]
window = "1d"
idle_close = "1s"
[centre]
url = "http://{addr}"
token_env = "TEST_SENSOR_TOKEN"
tlp = "green"
[http]
listen = "127.0.0.1:0"
"#,
            addr = server.addr
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("mamori"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MAMORI_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["sensor", "run", "--config"])
        .arg(&cfg)
        .env("MAMORI_LOG_FORMAT", "json")
        .env("TEST_SENSOR_TOKEN", &carrier)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let next_line = |log: &mut String, until: Instant| -> Option<String> {
        let left = until.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).ok()?;
        log.push_str(&line);
        log.push('\n');
        Some(line)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = loop {
        let line = next_line(&mut log, deadline).unwrap_or_else(|| panic!("no endpoint: {log}"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(a) = v["addr"].as_str() {
            break a.to_owned();
        }
    };

    // `/status` names servers: it needs the carrier's operator token (CI-5).
    let refused = mamori()
        .args(["sensor", "status", "--url", &format!("http://{http}")])
        .args(["--token", "mamori_operator_guess"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let operator = mamori()
        .arg("--data-dir")
        .arg(&sensor_dir)
        .args(["sensor", "operator-token"])
        .output()
        .unwrap();
    assert!(
        operator.status.success(),
        "{}",
        String::from_utf8_lossy(&operator.stderr)
    );
    let operator = String::from_utf8(operator.stdout)
        .unwrap()
        .trim()
        .to_owned();

    // Wait until the finding is posted, watching through `mamori sensor status`.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status_text = loop {
        let out = mamori()
            .args([
                "--json",
                "sensor",
                "status",
                "--url",
                &format!("http://{http}"),
            ])
            .env("MAMORI_TOKEN", &operator)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if v["detection"]["findings_posted"].as_u64().unwrap() >= 1 {
            assert!(
                v["concern_list"].to_string().contains("141.193.213.21"),
                "{v}"
            );
            assert_eq!(v["files_read"], 1);
            break text;
        }
        assert!(Instant::now() < deadline, "nothing posted: {text}\n{log}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // The same, for a person.
    let out = mamori()
        .args(["sensor", "status", "--url", &format!("http://{http}")])
        .args(["--token", &operator])
        .output()
        .unwrap();
    assert!(out.status.success());
    let readable = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "files          1 read, 0 failed, 0 pending",
        "queue to select",
        "concern list   1 server(s)",
        "  141.193.213.21 until ",
    ] {
        assert!(
            readable.contains(needle),
            "{needle:?} missing from\n{readable}"
        );
    }
    let (code, metrics) = http_get(&http, "/metrics", None);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("mamori_sensor_findings_posted_total 1"),
        "{metrics}"
    );

    // The sensor's own ledger, served beside /metrics, holds the key's creation and the
    // concern's listing, and the overseer verifies it as it verifies the centre (CI-5, CI-9).
    let overseer = mamori()
        .arg("--data-dir")
        .arg(&sensor_dir)
        .args(["sensor", "overseer-token"])
        .output()
        .unwrap();
    assert!(
        overseer.status.success(),
        "{}",
        String::from_utf8_lossy(&overseer.stderr)
    );
    let overseer = String::from_utf8(overseer.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let (code, entries) = http_get(&http, "/api/v1/ledger/entries?start=0", Some(&overseer));
    assert_eq!(code, 200, "{entries}");
    assert!(
        entries.contains(r#"\"kind\":\"pseudonym_key\""#)
            && entries.contains(r#"\"kind\":\"concern_listed\",\"server\":\"141.193.213.21"#),
        "{entries}"
    );
    let verified = mamori()
        .args([
            "audit",
            "verify",
            "--url",
            &format!("http://{http}"),
            "--key",
        ])
        .arg(sensor_dir.join("ledger.pub"))
        .args(["--token", &overseer, "--checkpoint"])
        .arg(dir.path().join("sensor-checkpoint.txt"))
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let (code, metrics_now) = http_get(&http, "/metrics", None);
    assert_eq!(code, 200);
    assert!(
        metrics_now.contains("mamori_sensor_archive_reaped_files_total 0"),
        "the reaper runs and nothing expired yet: {metrics_now}"
    );

    // SIGUSR1 logs the status.
    let kill = |sig: &str| {
        std::process::Command::new("kill")
            .arg(sig)
            .arg(child.id().to_string())
            .status()
            .unwrap()
    };
    kill("-USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line =
            next_line(&mut log, deadline).unwrap_or_else(|| panic!("no SIGUSR1 status: {log}"));
        if line.contains("SIGUSR1") {
            assert!(line.contains("selection"), "{line}");
            break;
        }
    }
    // SIGTERM: graceful stop, archive flushed.
    kill("-TERM");
    let status = child.wait().unwrap();
    reader.join().unwrap();
    while let Ok(line) = rx.try_recv() {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(status.success(), "{log}");
    assert!(log.contains("final status"), "{log}");

    // The centre stored the finding with the sensor's TLP.
    let (code, body) = http_get(&server.addr, "/api/v1/findings", Some(&admin));
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("141.193.213.21") && body.contains("\"tlp\":\"green\""),
        "{body}"
    );
    let (status, serve_log) = server.stop();
    assert!(status.success(), "{serve_log}");

    // No subscriber address in clear anywhere the sensor wrote or served.
    let mut files = Vec::new();
    files_under(&sensor_dir, &mut files);
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "parquet")),
        "{files:?}"
    );
    let mut outputs = vec![log, status_text, readable, metrics, body];
    for f in files {
        outputs.push(String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned());
    }
    for a in &forbidden {
        for o in &outputs {
            assert!(
                !contains_addr(o, a),
                "{a} in clear in:\n{}",
                &o[..o.len().min(2000)]
            );
        }
    }
}

/// Manual concerns (CI-4, CI-5): `mamori sensor
/// concern add|remove` records the change, with its reason, in the sensor's ledger before
/// it takes effect (the running sensor follows the ledger); an address inside the
/// subscriber prefixes is refused with an error naming the prefix, and removing a server
/// that is not listed is refused. Refused changes leave no entry.
#[test]
fn manual_concerns_are_recorded_with_their_reason_and_subscribers_are_refused() {
    use mamori_core::entry::Act;
    use mamori_sensor::record::Recorder;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("sensor.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = {data:?}\n[selection]\nsubscriber_prefixes = {SUBSCRIBERS:?}\n"),
    )
    .unwrap();
    // The sensor has run once: its ledger exists (the admin commands never make one).
    drop(
        mamori_sensor::ledger::SensorLedger::open(
            &data,
            &mamori_sensor::ledger::LedgerConfig::default(),
        )
        .unwrap(),
    );
    let concern = |args: &[&str]| {
        let out = mamori()
            .args(["sensor", "concern"])
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = concern(&["add", "141.193.213.21", "--reason", "case 7", "--for", "2d"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("141.193.213.21 on the concern list until"),
        "{out}"
    );
    let (ok, _, err) = concern(&["add", "147.32.80.37", "--reason", "case 8"]);
    assert!(!ok);
    assert!(
        err.contains("147.32.0.0/16") && err.contains("never subscribers"),
        "{err}"
    );
    let (ok, _, err) = concern(&["remove", "198.51.100.1", "--reason", "case 9"]);
    assert!(!ok);
    assert!(err.contains("not on the concern list"), "{err}");
    let (ok, _, err) = concern(&["add", "141.193.213.21", "--reason", ""]);
    assert!(!ok);
    assert!(err.contains("--reason"), "{err}");
    let (ok, _, err) = concern(&["remove", "141.193.213.21", "--reason", "case 7 closed"]);
    assert!(ok, "{err}");

    let ledger = mamori_sensor::ledger::SensorLedger::open(
        &data,
        &mamori_sensor::ledger::LedgerConfig::default(),
    )
    .unwrap();
    let mut acts = Vec::new();
    ledger
        .read_from(0, &mut |e| acts.push(e.act.clone()))
        .unwrap();
    assert_eq!(acts.len(), 2, "{acts:?}");
    assert!(
        matches!(&acts[0], Act::ConcernListed { server, reason, renewal: false, .. } if server == "141.193.213.21" && reason == "manual: case 7"),
        "{acts:?}"
    );
    assert!(
        matches!(&acts[1], Act::ConcernEnded { server, reason } if server == "141.193.213.21" && reason == "manual: case 7 closed"),
        "{acts:?}"
    );
}
