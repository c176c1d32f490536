//! `mamori report submit`, `status` and `orgs` against a real `mamori serve` on
//! 127.0.0.1: a flash report sent from a file, retried with the same idempotency key, its
//! regime status printed, and the directory of organisations.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::ffi::OsStr;
use support::{mamori, start_serve};

/// Asserts that a command succeeded and returns its standard output.
fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_operator_submits_a_flash_report_and_follows_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("centre");
    let d = data.as_os_str();
    let run = |args: &[&str]| support::run_in(d, args);
    run(&["init"]);
    run(&[
        "admin",
        "org",
        "add",
        "--kind",
        "operator",
        "--sector",
        "electricity",
        "--name",
        "Kanto Power",
    ]);
    run(&[
        "admin", "user", "add", "--org", "2", "--name", "sato", "--role", "member",
    ]);
    let token = run(&["admin", "token", "issue", "--user", "2"]);
    let file = dir.path().join("flash.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "detected_at": "2026-01-05T00:30:00Z",
            "sector": "electricity",
            "affected_service": "SCADA gateway",
            "impact": "high",
            "cause": "unknown",
            "tlp": "amber",
            "text": "Unusual outbound connections from the gateway.",
            "purposes": ["response"],
        })
        .to_string(),
    )
    .unwrap();

    let server = start_serve([OsStr::new("--data-dir"), d], &[]);
    let url = format!("http://{}", server.addr);
    let submit = || {
        mamori()
            .args([
                "report",
                "submit",
                "--url",
                &url,
                "--idempotency-key",
                "flash-2026-01-05",
            ])
            .arg(&file)
            .env("MAMORI_TOKEN", &token)
            .output()
            .unwrap()
    };
    let first = submit();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(
        (v["id"].as_i64(), v["tlp"].as_str()),
        (Some(1), Some("amber"))
    );
    assert!(String::from_utf8_lossy(&first.stderr).starts_with("received: report 1"));
    // A retry is answered with the same report, and says so.
    let again = submit();
    assert!(again.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&again.stdout).unwrap()["id"],
        1
    );
    assert!(String::from_utf8_lossy(&again.stderr).starts_with("already received: report 1"));

    let text = stdout_of(
        &mamori()
            .args(["report", "status", "1", "--url", &url])
            .env("MAMORI_TOKEN", &token)
            .output()
            .unwrap(),
    );
    // Detected in January: the interim report and the centre's duties are long overdue.
    assert!(
        text.contains("impact high") && text.contains("OVERDUE"),
        "{text}"
    );
    assert!(
        text.contains("flash") && text.contains("received"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("interim") && l.contains("overdue")),
        "{text}"
    );

    // Errors say what was wrong: no token; a report that is not there.
    let out = mamori()
        .args(["report", "status", "1", "--url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAMORI_TOKEN"));
    let out = mamori()
        .args(["report", "status", "9", "--url", &url])
        .env("MAMORI_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `mamori report orgs`: the directory a member may read (the admin list it may not),
    // as a table and as JSON: the names and ids `exclude` and `share_with` take.
    let orgs = |json: bool| {
        let mut cmd = mamori();
        if json {
            cmd.arg("--json");
        }
        cmd.args(["report", "orgs", "--url", &url])
            .env("MAMORI_TOKEN", &token)
            .output()
            .unwrap()
    };
    let text = stdout_of(&orgs(false));
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["2", "operator", "electricity", "Kanto", "Power"]),
        "{text}"
    );
    let listed: serde_json::Value = serde_json::from_str(&stdout_of(&orgs(true))).unwrap();
    assert_eq!(
        listed[1],
        serde_json::json!({"id": 2, "name": "Kanto Power", "kind": "operator", "sector": "electricity"})
    );

    // `mamori export`: what the operator may see, as one STIX 2.1 bundle on stdout.
    let out = mamori()
        .args(["export", "--url", &url, "--since", "2000-01-01T00:00:00Z"])
        .env("MAMORI_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bundle["type"], "bundle");
    let objects = bundle["objects"].as_array().unwrap();
    let incident = objects.iter().find(|o| o["type"] == "incident").unwrap();
    assert_eq!(
        incident["description"],
        "Unusual outbound connections from the gateway."
    );
    assert_eq!(
        incident["object_marking_refs"][0],
        mamori_core::Tlp::Amber.stix_id()
    );
    assert!(objects.iter().any(|o| o["type"] == "marking-definition"));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("exported {} objects", objects.len()))
    );
    // Only types asked for; a bad `since` is the server's clear 400.
    let out = mamori()
        .args(["export", "--url", &url, "--types", "indicator"])
        .env("MAMORI_TOKEN", &token)
        .output()
        .unwrap();
    let bundle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bundle["type"], "bundle");
    assert!(
        bundle.get("objects").is_none(),
        "an empty bundle has no objects: {bundle}"
    );
    let out = mamori()
        .args(["export", "--url", &url, "--since", "yesterday"])
        .env("MAMORI_TOKEN", &token)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("400"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}
