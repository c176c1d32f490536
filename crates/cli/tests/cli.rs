//! The binary as a person uses it: help texts, `init`, `admin`, and `serve` answering on a
//! real socket on 127.0.0.1 until SIGTERM.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;
use support::{mamori, start_serve};

/// Every command path: [], [serve], [admin], [admin, org], [admin, org, add], …
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = vec![vec![]];
    let mut i = 0;
    while i < paths.len() {
        let path = paths[i].clone();
        let help =
            String::from_utf8(mamori().args(&path).arg("--help").output().unwrap().stdout).unwrap();
        let mut in_commands = false;
        for line in help.lines() {
            if line == "Commands:" {
                in_commands = true;
                continue;
            }
            if in_commands {
                let Some(name) = line
                    .strip_prefix("  ")
                    .and_then(|l| l.split_whitespace().next())
                else {
                    break;
                };
                if name != "help" {
                    let mut p = path.clone();
                    p.push(name.to_owned());
                    paths.push(p);
                }
            }
        }
        i += 1;
    }
    paths
}

#[test]
fn every_command_describes_itself_in_one_line() {
    let paths = command_paths();
    let names: Vec<String> = paths.iter().map(|p| p.join(" ")).collect();
    for expected in [
        "serve",
        "init",
        "admin org add",
        "admin user add",
        "admin token issue",
        "admin token revoke",
        "config show",
        "audit verify",
        "audit report",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    // The parent's one-line summary of each command is its help's first line.
    for path in &paths {
        let out = mamori().args(path).arg("--help").output().unwrap();
        assert!(out.status.success(), "{path:?} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        let first = help.lines().next().unwrap();
        assert!(
            first.split_whitespace().count() >= 3 && !first.ends_with('.'),
            "{path:?}: {first:?}"
        );
        assert!(help.contains("Usage: mamori"), "{path:?}");
    }
}

/// Each option's help names its environment variable once: clap's own `[env: X=…]` and a
/// hand-written `[env: X]` in the doc comment must not both appear.
#[test]
fn no_help_names_an_environment_variable_twice() {
    for path in command_paths() {
        // With every MAMORI_* variable set, clap also shows values it does not hide.
        let out = mamori()
            .args(&path)
            .arg("--help")
            .env("MAMORI_URL", "http://127.0.0.1:1")
            .output()
            .unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        for line in help.lines() {
            let names: Vec<&str> = line
                .match_indices("[env: ")
                .filter_map(|(at, _)| line.get(at + 6..)?.split([']', '=']).next())
                .collect();
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "mamori {path:?} --help: {line}");
        }
    }
}

#[test]
fn init_then_admin_then_refuse_a_second_init() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = mamori()
        .arg("init")
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(token.trim().starts_with("mamori_1_"), "{token}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown once"));
    assert!(data.join("mamori.db").exists());

    let again = mamori()
        .arg("init")
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));

    let add = |args: &[&str]| {
        mamori()
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let org = add(&[
        "--json",
        "admin",
        "org",
        "add",
        "--kind",
        "isac",
        "--name",
        "Finance ISAC",
        "--sector",
        "finance",
    ]);
    assert!(org.status.success());
    let org: serde_json::Value = serde_json::from_slice(&org.stdout).unwrap();
    assert_eq!(org["kind"], "isac");
    let bad = add(&[
        "admin", "user", "add", "--org", "2", "--name", "x", "--role", "analyst",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("coordination centre"));
    // Client relations (TLP:AMBER's "and its clients", PP-11): organisation 2 becomes a
    // client of the centre (1), is listed, and the relation ends with --remove.
    let client = add(&["--json", "admin", "org", "client", "2", "--of", "1"]);
    assert!(
        client.status.success(),
        "{}",
        String::from_utf8_lossy(&client.stderr)
    );
    let client: serde_json::Value = serde_json::from_slice(&client.stdout).unwrap();
    assert_eq!(client["clients"], serde_json::json!([2]));
    let again = add(&["admin", "org", "client", "2", "--of", "1"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already a client"));
    let own = add(&["admin", "org", "client", "1", "--of", "1"]);
    assert!(String::from_utf8_lossy(&own.stderr).contains("its own client"));
    let removed = add(&["admin", "org", "client", "2", "--of", "1", "--remove"]);
    assert!(String::from_utf8_lossy(&removed.stdout).contains("clients of 1: none"));
    let gone = add(&["admin", "org", "client", "2", "--of", "1", "--remove"]);
    assert!(!gone.status.success());
    let unknown = add(&["admin", "org", "add", "--kind", "bank", "--name", "Y"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("expected one of operator, carrier"));
    // Transparency figures: the first admin token is a recorded act; a bad period is refused.
    let report = add(&[
        "--json",
        "audit",
        "report",
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01T00:00:00Z",
    ]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["counts"]["token_issued"], 1, "{report}");
    assert_eq!(report["counts"]["deletion"], 0);
    assert_eq!(
        report["from"], "1999-12-31T15:00:00.000Z",
        "a date means 00:00 JST"
    );
    let bad = add(&[
        "audit",
        "report",
        "--from",
        "2030-01-01",
        "--to",
        "2020-01-01",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--from must be before --to"));
    let bad = add(&[
        "audit",
        "report",
        "--from",
        "yesterday",
        "--to",
        "2020-01-01",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither an RFC 3339 time nor a date"));
    let listed = add(&["admin", "org", "list"]);
    let text = String::from_utf8(listed.stdout).unwrap();
    assert!(
        text.contains("Finance ISAC") && text.contains("coordination_centre"),
        "{text}"
    );
    assert!(!text.contains("Y\n"));
    // The registered profile the relay scrubs (PP-12): added, checked, shown.
    let id = org["id"].to_string();
    let added = add(&[
        "admin",
        "org",
        "profile",
        &id,
        "--alias",
        "FISAC",
        "--domain",
        "fisac.example",
        "--contact",
        "+81-3-5555-0100",
        "--range",
        "198.51.100.0/24",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let bad = add(&["admin", "org", "profile", &id, "--range", "198.51.100.0"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a CIDR block"));
    let shown = add(&["--json", "admin", "org", "show", &id]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["org"]["name"], "Finance ISAC");
    assert_eq!(
        shown["profile"],
        serde_json::json!([
            {"kind": "alias", "value": "FISAC"},
            {"kind": "contact", "value": "+81-3-5555-0100"},
            {"kind": "domain", "value": "fisac.example"},
            {"kind": "range", "value": "198.51.100.0/24"},
        ])
    );
}

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
    #[allow(clippy::disallowed_methods)] // bounded by take()
    s.take(1 << 20).read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn serve_until_sigterm(data: &Path, check: impl FnOnce(&str)) -> String {
    let server = start_serve([OsStr::new("--data-dir"), data.as_os_str()], &[]);
    check(&server.addr);
    let (status, log) = server.stop();
    assert!(
        status.success(),
        "graceful exit on SIGTERM: {status:?}\n{log}"
    );
    log
}

#[test]
fn serve_on_an_empty_directory_initialises_it_and_answers_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let log = serve_until_sigterm(&data, |addr| {
        let (status, body) = http_get(addr, "/healthz", None);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"database\":\"sqlite\""), "{body}");
        assert_eq!(http_get(addr, "/api/v1/whoami", None).0, 401);
    });
    assert!(data.join("mamori.db").exists());
    assert!(log.contains("first administrator"), "{log}");
    assert!(
        log.contains("SIGTERM: shutting down") && log.contains("stopped"),
        "{log}"
    );
    // Every request is logged with its request id, as JSON.
    assert!(
        log.lines()
            .any(|l| l.contains("request_id") && l.contains("/healthz")),
        "{log}"
    );
}

#[test]
fn a_token_from_init_works_against_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let out = mamori()
        .arg("init")
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    serve_until_sigterm(&data, |addr| {
        let (status, body) = http_get(addr, "/api/v1/whoami", Some(&token));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"role\":\"admin\""), "{body}");
    });
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = mamori()
        .args(["config", "show"])
        .env("MAMORI_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("socket address") && err.contains("LISTEN"),
        "{err}"
    );
    let out = mamori()
        .args(["--config", "/nonexistent/mamori.toml", "config", "show"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // A reporting regime file that is not a regime stops `mamori serve` before it opens
    // anything, naming the file and the fault.
    let dir = tempfile::tempdir().unwrap();
    let regime = dir.path().join("regime.toml");
    std::fs::write(&regime, "name = \"broken\"\n").unwrap();
    let config = dir.path().join("mamori.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.reports]\nregime = {:?}\n",
            regime.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = mamori()
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("regime.toml") && err.contains("not a valid regime"),
        "{err}"
    );
    assert!(!data.join("mamori.db").exists(), "nothing was opened");
}

#[test]
fn detect_posts_its_findings_to_the_centre() {
    let Some(pcap) = mamori_core::testdata::path("pcap/slips-test-cc/test-cc-capture-1.pcap")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("centre");
    let d = data.as_os_str();
    let admin = String::from_utf8(
        mamori()
            .arg("--data-dir")
            .arg(d)
            .arg("init")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let admin = admin.trim().to_owned();
    let carrier = support::add_carrier(d);
    let server = start_serve([OsStr::new("--data-dir"), d], &[]);
    let out = mamori()
        .args(["detect", "--post", &format!("http://{}", server.addr)])
        .arg(&pcap)
        .env("MAMORI_TOKEN", &carrier)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("posted 1 findings"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The centre's administrator (coordination centre) sees the carrier's AMBER finding.
    let (status, body) = http_get(&server.addr, "/api/v1/findings", Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("141.193.213.21") && body.contains("\"tlp\":\"amber\""),
        "{body}"
    );
    // Without a token, --post refuses before sending anything.
    let out = mamori()
        .args(["detect", "--post", &format!("http://{}", server.addr)])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--post needs a carrier's token"));
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}
