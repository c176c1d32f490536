//! The sensor's ledger endpoints over a real socket on 127.0.0.1 (issue 6 part 2; CI-5,
//! CI-9): the centre's paths, parameters and JSON shapes; the public checkpoint and key;
//! entries and proofs only with the overseer's token, whose digest alone is stored.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use chrono::TimeZone;
use mamori_core::entry::{Act, Actor, Entry};
use mamori_core::time::ManualClock;
use mamori_ledger::{
    Checkpoint, Hash, MemoryTree, leaf_hash, verify_consistency, verify_inclusion,
};
use mamori_sensor::http_ledger::{
    OverseerAuth, TokenHolder, issue_token, issue_token_for, router_with_clock,
};
use mamori_sensor::ledger::{LedgerConfig, SensorLedger};
use std::sync::Arc;
use std::time::Duration;

fn entry(i: u64) -> Entry {
    Entry::new(
        chrono::Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap(),
        Actor {
            org: None,
            user: None,
            name: "sensor".into(),
        },
        Act::ConcernEnded {
            server: format!("192.0.2.{i}:443/tcp"),
            reason: "expired".into(),
        },
    )
}

struct Sensor {
    url: String,
    agent: ureq::Agent,
    _data: tempfile::TempDir,
    token: String,
    ledger: Arc<SensorLedger>,
}

impl Sensor {
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String, Option<String>) {
        let mut req = self.agent.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let resp = req.call().unwrap();
        let status = resp.status().as_u16();
        let auth = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, resp.into_body().read_to_string().unwrap(), auth)
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (status, body, _) = self.get(path, Some(&self.token));
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn start(entries: u64) -> Sensor {
    let data = tempfile::tempdir().unwrap();
    let ledger = Arc::new(
        SensorLedger::open(
            data.path(),
            &LedgerConfig {
                origin: "sensor.test/ledger".into(),
                checkpoint_interval: Duration::from_secs(60),
            },
        )
        .unwrap(),
    );
    ledger
        .append(&(0..entries).map(entry).collect::<Vec<_>>())
        .unwrap();
    let token = issue_token(data.path()).unwrap();
    let clock = Arc::new(ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 11, 24, 1, 0, 0).unwrap(),
    ));
    let app = router_with_clock(
        ledger.clone(),
        OverseerAuth::from_data_dir(data.path()),
        clock,
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    Sensor {
        url: format!("http://{}", rx.recv().unwrap()),
        agent,
        _data: data,
        token,
        ledger,
    }
}

#[test]
fn public_checkpoint_and_key_verify_each_other() {
    let s = start(12);
    let (status, key, _) = s.get("/api/v1/ledger/key", None);
    assert_eq!(status, 200);
    let key = mamori_ledger::VerifierKey::parse(key.trim()).unwrap();
    let (status, note, _) = s.get("/api/v1/ledger/checkpoint", None);
    assert_eq!(status, 200);
    let cp = Checkpoint::open(note.as_bytes(), "sensor.test/ledger", &[key]).unwrap();
    assert_eq!(cp.size(), 12);
    assert_eq!(cp.root(), s.ledger.root(12).unwrap());
}

#[test]
fn protected_endpoints_need_the_overseer_token() {
    let s = start(3);
    // The carrier's operator token reads /status, never the ledger's entries or proofs.
    let operator = issue_token_for(s._data.path(), TokenHolder::Operator).unwrap();
    for path in [
        "/api/v1/ledger/entries",
        "/api/v1/ledger/proof/inclusion?index=0&size=3",
        "/api/v1/ledger/proof/consistency?from=1&to=3",
    ] {
        for token in [
            None,
            Some("mamori_overseer_wrong"),
            Some(""),
            Some(operator.as_str()),
        ] {
            let (status, body, auth) = s.get(path, token);
            assert_eq!(status, 401, "{path} {token:?}: {body}");
            assert_eq!(auth.as_deref(), Some("Bearer"));
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"]["code"], "unauthenticated", "{body}");
        }
    }
    let resp = s
        .agent
        .post(format!("{}/api/v1/ledger/checkpoint", s.url))
        .send_empty()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // A new token replaces the old one at once.
    let old = s.token.clone();
    let new = issue_token(s._data.path()).unwrap();
    assert_eq!(s.get("/api/v1/ledger/entries", Some(&old)).0, 401);
    assert_eq!(s.get("/api/v1/ledger/entries", Some(&new)).0, 200);
}

#[test]
fn entries_and_proofs_have_the_centres_shapes() {
    let s = start(1500);
    let mut oracle = MemoryTree::new();
    for i in 0..1500 {
        oracle.push(&entry(i).encode()).unwrap();
    }
    // Pages of at most 1,000, with `next`.
    let page = s.json("/api/v1/ledger/entries");
    assert_eq!(page["size"], 1500);
    assert_eq!(page["entries"].as_array().unwrap().len(), 1000);
    assert_eq!(page["next"], 1000);
    assert_eq!(page["entries"][7]["index"], 7);
    assert_eq!(
        page["entries"][7]["data"].as_str().unwrap().as_bytes(),
        entry(7).encode().as_slice()
    );
    assert!(page["entries"][7].get("data_base64").is_none());
    let page = s.json("/api/v1/ledger/entries?start=1000&end=1200");
    assert_eq!(page["entries"].as_array().unwrap().len(), 200);
    assert!(page.get("next").is_none());
    assert_eq!(
        s.json("/api/v1/ledger/entries?start=1500")["entries"],
        serde_json::json!([])
    );

    let root = oracle.root().unwrap();
    let hashes = |v: &serde_json::Value| -> Vec<Hash> {
        v["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Hash::from_hex(h.as_str().unwrap()).unwrap())
            .collect()
    };
    let p = s.json("/api/v1/ledger/proof/inclusion?index=777&size=1500");
    verify_inclusion(
        777,
        1500,
        &leaf_hash(&entry(777).encode()),
        &hashes(&p),
        &root,
    )
    .unwrap();
    let p = s.json("/api/v1/ledger/proof/consistency?from=600&to=1500");
    let old = mamori_ledger::tree_root(&oracle, 600).unwrap();
    verify_consistency(600, 1500, &old, &root, &hashes(&p)).unwrap();

    // Bad requests are 400 with a message, as at the centre.
    for bad in [
        "/api/v1/ledger/entries?start=10&end=5",
        "/api/v1/ledger/entries?start=x",
        "/api/v1/ledger/entries?begin=1",
        "/api/v1/ledger/proof/inclusion?index=1500&size=1500",
        "/api/v1/ledger/proof/inclusion?index=1&size=1501",
        "/api/v1/ledger/proof/consistency?from=9&to=3",
        "/api/v1/ledger/proof/consistency?from=1",
    ] {
        let (status, body, _) = s.get(bad, Some(&s.token));
        assert_eq!(status, 400, "{bad}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "invalid_input", "{bad}: {body}");
    }

    // The overseer's POST signs a checkpoint of the log as it is now.
    s.ledger.append(&[entry(1500)]).unwrap();
    let resp = s
        .agent
        .post(format!("{}/api/v1/ledger/checkpoint", s.url))
        .header("Authorization", &format!("Bearer {}", s.token))
        .send_empty()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let note = resp.into_body().read_to_string().unwrap();
    let cp = Checkpoint::open(
        note.as_bytes(),
        "sensor.test/ledger",
        &[s.ledger.verifier()],
    )
    .unwrap();
    assert_eq!(cp.size(), 1501);
}

#[test]
fn bytes_that_are_not_utf8_are_served_in_base64() {
    // Only someone writing to the entry file behind the sensor's back produces them; the
    // overseer must still get the exact bytes, to find the entry that changed.
    let s = start(3);
    let entries = s._data.path().join("ledger/entries");
    let mut bytes = std::fs::read(&entries).unwrap();
    let second = entry(0).encode().len() + 5;
    bytes[second] = 0xff;
    std::fs::write(&entries, &bytes).unwrap();
    let page = s.json("/api/v1/ledger/entries");
    assert!(page["entries"][0]["data"].is_string());
    assert!(page["entries"][1].get("data").is_none(), "{page}");
    let b64 = page["entries"][1]["data_base64"].as_str().unwrap();
    use base64::Engine;
    let served = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let len = entry(1).encode().len();
    assert_eq!(served, bytes[second - 5..second - 5 + len]);
}

/// The sensor serves `mamori_ledger::wire`'s types, the centre's own (CI-9, AN-7): each
/// body parses as the shared type the verifier reads and writes back byte for byte, so
/// nothing on the wire is left to a copy that could drift.
#[test]
fn bodies_are_the_shared_wire_types_byte_for_byte() {
    use mamori_ledger::wire::{EntryPage, ProofOut};
    let s = start(1200);
    let entries = s._data.path().join("ledger/entries");
    let mut bytes = std::fs::read(&entries).unwrap();
    bytes[entry(0).encode().len() + 5] = 0xff;
    std::fs::write(&entries, &bytes).unwrap();
    for path in [
        "/api/v1/ledger/entries",
        "/api/v1/ledger/entries?start=1000&end=1100",
    ] {
        let (status, body, _) = s.get(path, Some(&s.token));
        assert_eq!(status, 200, "{path}: {body}");
        let page: EntryPage = serde_json::from_str(&body).unwrap();
        assert_eq!(serde_json::to_string(&page).unwrap(), body, "{path}");
        for e in &page.entries {
            e.bytes().unwrap();
        }
    }
    let (_, body, _) = s.get("/api/v1/ledger/entries", Some(&s.token));
    let page: EntryPage = serde_json::from_str(&body).unwrap();
    assert_eq!(page.next, Some(1000));
    assert!(page.entries[1].data_base64.is_some(), "{body}");
    for path in [
        "/api/v1/ledger/proof/inclusion?index=77&size=1200",
        "/api/v1/ledger/proof/consistency?from=600&to=1200",
    ] {
        let (status, body, _) = s.get(path, Some(&s.token));
        assert_eq!(status, 200, "{path}: {body}");
        let proof: ProofOut = serde_json::from_str(&body).unwrap();
        assert!(!proof.path.is_empty(), "{path}");
        assert_eq!(serde_json::to_string(&proof).unwrap(), body, "{path}");
    }
}
