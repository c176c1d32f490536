//! The anonymous relay and the sealed source (issue 8 item 4; PP-12, DESIGN invariant 6)
//! through the router, in-process, on both backends: the relayed STIX copy in the TAXII
//! `reports` collection has no trace of its source; exclusions hold on it; confidential
//! reports are not relayed; stages make new versions; `disclose_source` keeps the
//! identity; a copy that cannot be anonymised is withheld, not leaked; and the source is
//! revealed only through a two-person approval recorded in the ledger (invariant 7).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration;
use http_body_util::BodyExt;
use mamori_core::entry::{Act, Decision, Entry};
use mamori_core::time::{ManualClock, rfc3339};
use mamori_core::{OrgId, Tlp};
use mamori_server::ServerConfig;
use mamori_store::{Store, store_test_suite};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

mod common;
#[path = "../../stix/tests/common/python.rs"]
#[allow(dead_code)]
mod python;

use common::t0;

const TAXII: &str = "application/taxii+json;version=2.1";
const RELAYED: &str = "/taxii2/api/collections/reports/objects/";

struct Api {
    app: Router,
    store: Store,
    clock: Arc<ManualClock>,
    admin: String,
    _keys: tempfile::TempDir,
}

impl Api {
    async fn new(store: Store) -> Api {
        let c = common::Centre::start(store, ServerConfig::default()).await;
        Api {
            app: c.app,
            store: c.store,
            clock: c.clock,
            admin: c.admin,
            _keys: c.keys,
        }
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, Value, String) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        )
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(
                Request::get(path)
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        (s, v)
    }

    /// A TAXII GET: the status, the parsed body and the raw text as served.
    async fn taxii(&self, path: &str, token: &str) -> (StatusCode, Value, String) {
        self.send(
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::ACCEPT, TAXII)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post_as(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: String,
    ) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(
                Request::post(path)
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        (s, v)
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        self.post_as(path, token, "application/json", body.to_string())
            .await
    }

    async fn admin_post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, &self.admin.clone(), &body).await;
        assert!(s.is_success(), "{path}: {v}");
        v
    }

    async fn org(&self, kind: &str, sector: Option<&str>, name: &str) -> i64 {
        self.admin_post(
            "/api/v1/admin/orgs",
            json!({"kind": kind, "sector": sector, "name": name}),
        )
        .await["id"]
            .as_i64()
            .unwrap()
    }

    async fn user(&self, org: i64, name: &str, role: &str) -> (i64, String) {
        let u = self
            .admin_post(
                "/api/v1/admin/users",
                json!({"org": org, "name": name, "role": role}),
            )
            .await;
        let t = self
            .admin_post("/api/v1/admin/tokens", json!({"user": u["id"]}))
            .await;
        (
            u["id"].as_i64().unwrap(),
            t["secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn profile(&self, org: i64, entries: &[(&str, &str)]) {
        let mut tx = self.store.begin().await.unwrap();
        tx.add_org_identifiers(OrgId(org), entries, t0())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn ledger(&self) -> Vec<Entry> {
        let mut tx = self.store.begin_read().await.unwrap();
        let rows = mamori_oversight::entries(&mut tx, 0, 1000).await.unwrap();
        tx.commit().await.unwrap();
        rows.iter()
            .map(|(_, b)| Entry::decode(b).unwrap())
            .collect()
    }

    /// The relayed objects `token` can fetch, by type.
    async fn relayed(&self, token: &str) -> Vec<Value> {
        let (s, env, _) = self.taxii(RELAYED, token).await;
        assert_eq!(s, StatusCode::OK, "{env}");
        env["objects"].as_array().cloned().unwrap_or_default()
    }
}

/// The reporter (with a registered profile), the authority the regime routes to, its
/// supervising ministry (excluded), another operator, and the centre's analyst.
struct Cast {
    reporter_org: i64,
    reporter: String,
    authority: String,
    excluded_org: i64,
    excluded: String,
    other: String,
    analyst: String,
}

const NAME: &str = "Kanto Power";
const ALIAS: &str = "KantoDen";
const DOMAIN: &str = "kanto-power.example";
const PHONE: &str = "+81-3-5555-0100";
const EMAIL: &str = "soc@ops.kanto-power.example";
const RANGE: &str = "198.51.100.0/24";
const USER: &str = "hanako.sato";

async fn cast(api: &Api) -> Cast {
    let reporter_org = api.org("operator", Some("electricity"), NAME).await;
    let authority_org = api
        .org(
            "sector_authority",
            Some("electricity"),
            "Electricity Agency",
        )
        .await;
    let excluded_org = api
        .org(
            "sector_authority",
            Some("electricity"),
            "Supervising Ministry",
        )
        .await;
    let other_org = api.org("operator", Some("gas"), "Kansai Gas").await;
    let centre = api.get("/api/v1/admin/orgs", &api.admin).await.1[0]["id"]
        .as_i64()
        .unwrap();
    api.profile(
        reporter_org,
        &[
            ("alias", ALIAS),
            ("domain", DOMAIN),
            ("contact", PHONE),
            ("range", RANGE),
        ],
    )
    .await;
    Cast {
        reporter_org,
        reporter: api.user(reporter_org, USER, "member").await.1,
        authority: api.user(authority_org, "tanaka", "member").await.1,
        excluded_org,
        excluded: api.user(excluded_org, "kato", "member").await.1,
        other: api.user(other_org, "ito", "member").await.1,
        analyst: api.user(centre, "yamada", "analyst").await.1,
    }
}

fn fields(c: &Cast, extra: Value) -> Value {
    let mut f = json!({
        "detected_at": rfc3339(t0() - Duration::minutes(30)),
        "sector": "electricity",
        "affected_service": format!("{NAME} SCADA gateway"),
        "impact": "medium",
        "cause": "intentional",
        "purposes": ["response", "warning"],
        "exclude": [c.excluded_org],
    });
    f.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    f
}

/// A STIX submission that names its source everywhere it can: identity, free text, an
/// indicator, a note, a text attachment, its own address and domain as observables, and
/// a binary attachment.
fn submission(c: &Cast, extra: Value) -> String {
    let text = format!(
        "{NAME} ({ALIAS}) saw beacons from vpn.{DOMAIN} at 198.51.100.23 to 203.0.113.9. \
         Call {PHONE} (from Japan 03 5555 0100) or mail {EMAIL}; reported by {USER}."
    );
    let attachment =
        format!("From: {EMAIL}\nTo: cert\n{ALIAS} firewall log: 198.51.100.77 -> 203.0.113.9\n");
    let marking = Tlp::Green.stix_id();
    json!({
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": [
            {"type": "identity", "spec_version": "2.1",
             "id": "identity--1c0f5e4a-3b2d-4a1e-8f6c-7d9e0a1b2c3d",
             "created": "2026-11-24T00:00:00.000Z", "modified": "2026-11-24T00:00:00.000Z",
             "name": NAME, "identity_class": "organization",
             "contact_information": format!("{EMAIL}, {PHONE}")},
            {"type": "incident", "spec_version": "2.1",
             "id": "incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
             "created": "2026-11-24T01:00:00.000Z", "modified": "2026-11-24T01:00:00.000Z",
             "created_by_ref": "identity--1c0f5e4a-3b2d-4a1e-8f6c-7d9e0a1b2c3d",
             "name": format!("{ALIAS} gateway beaconing"),
             "description": text,
             "object_marking_refs": [marking],
             "x_mamori_report": fields(c, extra)},
            {"type": "indicator", "spec_version": "2.1",
             "id": "indicator--0b6f7a9e-4c2d-4e8f-9a1b-2c3d4e5f6a7b",
             "created": "2026-11-24T01:00:00.000Z", "modified": "2026-11-24T01:00:00.000Z",
             "created_by_ref": "identity--1c0f5e4a-3b2d-4a1e-8f6c-7d9e0a1b2c3d",
             "name": "C2 server", "description": format!("Seen by {NAME} SOC"),
             "pattern": "[ipv4-addr:value = '203.0.113.9']", "pattern_type": "stix",
             "valid_from": "2026-11-24T01:00:00.000Z",
             "object_marking_refs": [marking]},
            {"type": "relationship", "spec_version": "2.1",
             "id": "relationship--9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
             "created": "2026-11-24T01:00:00.000Z", "modified": "2026-11-24T01:00:00.000Z",
             "relationship_type": "related-to",
             "source_ref": "indicator--0b6f7a9e-4c2d-4e8f-9a1b-2c3d4e5f6a7b",
             "target_ref": "incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"},
            {"type": "note", "spec_version": "2.1",
             "id": "note--3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b",
             "created": "2026-11-24T01:00:00.000Z", "modified": "2026-11-24T01:00:00.000Z",
             "content": format!("{ALIAS} on-call: {PHONE}"),
             "object_refs": ["incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"]},
            {"type": "artifact", "spec_version": "2.1",
             "id": "artifact--4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d",
             "mime_type": "text/plain",
             "payload_bin": STANDARD.encode(attachment),
             "hashes": {"SHA-256": "6db1a1c1e2b7c7d0f0b6b3f9a1d5c4e3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7"}},
            {"type": "artifact", "spec_version": "2.1",
             "id": "artifact--5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e",
             "mime_type": "application/octet-stream",
             "payload_bin": STANDARD.encode([0x4d_u8, 0x5a, 0x90, 0x00, 0xff, 0xfe, 0x00, 0x01])},
            {"type": "ipv4-addr", "spec_version": "2.1",
             "id": "ipv4-addr--6c7d8e9f-0a1b-4c2d-9e3f-4a5b6c7d8e9f",
             "value": "198.51.100.23"},
            {"type": "domain-name", "spec_version": "2.1",
             "id": "domain-name--7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a",
             "value": format!("vpn.{DOMAIN}")}
        ]
    })
    .to_string()
}

async fn submit_stix(api: &Api, c: &Cast, extra: Value) -> i64 {
    let (s, v) = api
        .post_as(
            "/api/v1/reports",
            &c.reporter,
            "application/stix+json;version=2.1",
            submission(c, extra),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["id"].as_i64().unwrap()
}

/// Every number anywhere in `v`.
fn numbers(v: &Value, out: &mut Vec<i64>) {
    match v {
        Value::Number(n) => out.extend(n.as_i64()),
        Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        Value::Object(m) => m.values().for_each(|x| numbers(x, out)),
        _ => {}
    }
}

// PP-12, DESIGN invariant 6: the copy another organisation fetches through TAXII holds
// nothing that identifies the source — in any field, text or attachment.
async fn the_relayed_copy_has_no_trace_of_its_source(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let id = submit_stix(&api, &c, json!({})).await;

    let (s, env, raw) = api.taxii(RELAYED, &c.other).await;
    assert_eq!(s, StatusCode::OK, "{env}");
    let objects = env["objects"].as_array().unwrap();
    let types: Vec<&str> = objects
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    for t in [
        "report",
        "incident",
        "indicator",
        "relationship",
        "note",
        "artifact",
        "identity",
    ] {
        assert!(types.contains(&t), "{t} relayed: {types:?}");
    }
    // The source's own address and domain, and the binary attachment, are dropped.
    assert!(
        !types.contains(&"ipv4-addr") && !types.contains(&"domain-name"),
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|t| **t == "artifact").count(), 1);
    // Serialised as served, in every letter case: no name, alias, domain (nor the
    // subdomain, nor the mailbox at it), phone, address in the range, user name.
    let lower = raw.to_ascii_lowercase();
    for needle in [
        NAME,
        ALIAS,
        DOMAIN,
        "kanto",
        PHONE,
        EMAIL,
        "198.51.100.",
        USER,
        "sato",
        "x_mamori_report",
        "1c0f5e4a-3b2d-4a1e-8f6c-7d9e0a1b2c3d",
    ] {
        assert!(
            !lower.contains(&needle.to_ascii_lowercase()),
            "{needle:?} leaked into the relayed copy: {raw}"
        );
    }
    // Nor inside the re-encoded text attachment, which now carries no stale hashes.
    let art = objects.iter().find(|o| o["type"] == "artifact").unwrap();
    let text = String::from_utf8(
        STANDARD
            .decode(art["payload_bin"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        text.contains("[redacted]") && text.contains("203.0.113.9"),
        "{text}"
    );
    assert!(!text.to_ascii_lowercase().contains("kanto"), "{text}");
    assert!(art.get("hashes").is_none(), "{art}");
    // No number anywhere is the reporter's organisation id.
    let mut nums = Vec::new();
    numbers(&env, &mut nums);
    assert!(!nums.contains(&c.reporter_org), "{nums:?}");
    // The centre made it: every created_by_ref is the centre's identity.
    let centre = objects.iter().find(|o| o["type"] == "identity").unwrap();
    assert_eq!(centre["name"], "Centre");
    let report = objects.iter().find(|o| o["type"] == "report").unwrap();
    assert_eq!(report["created_by_ref"], centre["id"]);
    assert_eq!(report["object_marking_refs"], json!([Tlp::Green.stix_id()]));
    let incident = objects.iter().find(|o| o["type"] == "incident").unwrap();
    assert_eq!(incident["created_by_ref"], centre["id"]);
    assert!(
        incident["description"]
            .as_str()
            .unwrap()
            .contains("203.0.113.9")
    );
    // References to the submission's incident now point at the relayed one.
    let rel = objects
        .iter()
        .find(|o| o["type"] == "relationship")
        .unwrap();
    assert_eq!(rel["target_ref"], incident["id"]);

    // What the centre produces validates with the OASIS stix2-validator (issue 8
    // acceptance): strict, except 401 (custom properties should be extensions).
    if python::have_module("stix2validator", "stix2-validator") {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relayed.json");
        let bundle = json!({"type": "bundle",
            "id": "bundle--0e1d2c3b-4a59-4687-9a6b-5c4d3e2f1a0b", "objects": objects});
        std::fs::write(&file, bundle.to_string()).unwrap();
        let script = "import sys\nfrom stix2validator.scripts.stix2_validator import main\n\
                      sys.argv[0] = 'stix2_validator'\nsys.exit(main())";
        let f = file.display().to_string();
        let out = python::python3(&["-c", script, "--strict", "--disable", "401", &f]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "stix2-validator refused:\n{text}");
    }

    // The analysts' API view: the sealed handle, not the source; the relay written.
    let (s, v) = api.get(&format!("/api/v1/reports/{id}"), &c.analyst).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["source"]["sealed"], true);
    let handle = v["source"]["handle"].as_str().unwrap();
    assert!(handle.starts_with("src-") && handle.len() == 36, "{handle}");
    assert_eq!(v["relay"]["state"], "written", "{v}");
    assert_eq!(v["relay"]["versions"], 1);
    let lower = v.to_string().to_ascii_lowercase();
    for needle in ["kanto", "sato", "198.51.100.", "5555-0100"] {
        assert!(
            !lower.contains(needle),
            "{needle:?} in the analysts' view: {v}"
        );
    }
    // The reporter sees its own report with the source, and where its relay stands.
    let (_, mine) = api.get(&format!("/api/v1/reports/{id}"), &c.reporter).await;
    assert_eq!(mine["source"]["name"], NAME);
    assert_eq!(mine["relay"]["state"], "written", "{mine}");
    // Other recipients are not told.
    let (_, theirs) = api.get(&format!("/api/v1/reports/{id}"), &c.other).await;
    assert!(theirs.get("relay").is_none(), "{theirs}");
}

// PP-12: registered names are matched as words in text, not as substrings of the STIX
// document. An organisation `Den` (inside "incident"), users `mark` (inside
// "object_marking_refs") and `rep` (inside "report") get their reports relayed, their
// names still scrubbed from the text however punctuated; a Japanese name, which has no
// word boundaries, is scrubbed as a substring. The reporter sees its relay's state.
async fn short_and_japanese_names_are_scrubbed_as_words_and_the_copy_is_written(store: Store) {
    let api = Api::new(store).await;
    let den = api.org("operator", Some("electricity"), "Den").await;
    let kanden = api.org("operator", Some("electricity"), "関東電力").await;
    let other_org = api.org("operator", Some("gas"), "Kansai Gas").await;
    let (_, other) = api.user(other_org, "ito", "member").await;
    let centre = api.get("/api/v1/admin/orgs", &api.admin).await.1[0]["id"]
        .as_i64()
        .unwrap();
    let (_, analyst) = api.user(centre, "yamada", "analyst").await;
    let flash = |text: &str| {
        json!({
            "detected_at": rfc3339(t0() - Duration::minutes(30)),
            "sector": "electricity", "affected_service": "SCADA gateway",
            "impact": "low", "cause": "intentional", "tlp": "green",
            "purposes": ["response", "warning"], "text": text,
        })
    };
    let cases = [
        (
            den,
            "mark",
            "Den's SCADA gateway DEN-01 beacons to 203.0.113.9; mark is on call.",
        ),
        (den, "rep", "Den (den_scada) saw the same; ask rep."),
        (
            kanden,
            "taro",
            "関東電力の制御系でビーコンを検知。関東電力株式会社より",
        ),
    ];
    for (org, user, text) in cases {
        let (_, token) = api.user(org, user, "member").await;
        let (s, v) = api.post("/api/v1/reports", &token, &flash(text)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        // The reporter is told, in its own view, that the copy went out.
        assert_eq!(v["relay"]["state"], "written", "{user}: {v}");
        let id = v["id"].as_i64().unwrap();
        let (_, seen) = api.get(&format!("/api/v1/reports/{id}"), &analyst).await;
        assert_eq!(seen["relay"]["state"], "written", "{seen}");
    }
    let (s, env, raw) = api.taxii(RELAYED, &other).await;
    assert_eq!(s, StatusCode::OK, "{env}");
    for written in [
        "[redacted]'s SCADA gateway [redacted]-01 beacons to 203.0.113.9; [redacted] is on call.",
        "[redacted] ([redacted]_scada) saw the same; ask [redacted].",
        "[redacted]の制御系でビーコンを検知。[redacted]株式会社より",
    ] {
        assert!(raw.contains(written), "{written:?} not relayed: {raw}");
    }
    let lower = raw.to_ascii_lowercase();
    for needle in ["den's", "den-01", "den_", "mark is", "ask rep", "関東電力"] {
        assert!(!lower.contains(needle), "{needle:?} leaked: {raw}");
    }
    let objects = env["objects"].as_array().unwrap();
    assert_eq!(
        objects.iter().filter(|o| o["type"] == "incident").count(),
        3,
        "{raw}"
    );
    let mut tx = api.store.begin_read().await.unwrap();
    let counts = tx.report_relay_counts().await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(counts, vec![("written".to_owned(), 3)]);
}

// PP-11 on the relayed copy; PP-22; one copy, versioned per stage; disclose_source.
async fn exclusions_confidentiality_stages_and_disclosure_hold_on_the_relay(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let id = submit_stix(&api, &c, json!({})).await;
    // The excluded ministry (the regime would route to it) never gets the copy: nothing
    // but the centre's own identity, which is CLEAR.
    let seen = api.relayed(&c.excluded).await;
    assert!(
        seen.iter()
            .all(|o| o["type"] == "identity" && o["name"] == "Centre"),
        "{seen:?}"
    );
    assert!(!api.relayed(&c.other).await.is_empty());
    assert!(!api.relayed(&c.authority).await.is_empty());

    // A stage makes a new version of the same report and incident.
    let (s, v) = api
        .post(
            &format!("/api/v1/reports/{id}/stages"),
            &c.reporter,
            &json!({"stage": "interim", "text": format!("{ALIAS} isolated the gateway.")}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let objects = api.relayed(&c.other).await;
    let report = objects.iter().find(|o| o["type"] == "report").unwrap();
    let path = format!(
        "/taxii2/api/collections/reports/objects/{}/versions/",
        report["id"].as_str().unwrap()
    );
    let (s, versions, _) = api.taxii(&path, &c.other).await;
    assert_eq!(s, StatusCode::OK, "{versions}");
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        2,
        "{versions}"
    );
    let incident = objects.iter().find(|o| o["type"] == "incident").unwrap();
    let d = incident["description"].as_str().unwrap();
    assert!(
        d.contains("[interim] [redacted] isolated the gateway."),
        "{d}"
    );
    assert_eq!(
        objects.iter().filter(|o| o["type"] == "indicator").count(),
        1,
        "the submission's objects are not duplicated"
    );
    let (_, v) = api.get(&format!("/api/v1/reports/{id}"), &c.analyst).await;
    assert_eq!(v["relay"]["versions"], 2, "{v}");

    // A confidential report (PP-22) is never relayed.
    let before = api.relayed(&c.analyst).await.len();
    let mut f = fields(&c, json!({"confidential": true}));
    f["exclude"] = json!([]);
    f["tlp"] = json!("amber");
    f["text"] = json!("Something is different on the gateway.");
    let (s, v) = api.post("/api/v1/reports", &c.reporter, &f).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let conf = v["id"].as_i64().unwrap();
    let (_, v) = api
        .get(&format!("/api/v1/reports/{conf}"), &c.analyst)
        .await;
    assert_eq!(v["relay"]["state"], "not_relayed", "{v}");
    assert_eq!(api.relayed(&c.analyst).await.len(), before);

    // With disclose_source the relayed copy and every reader keep the identity.
    let mut f = fields(&c, json!({"disclose_source": true}));
    f["tlp"] = json!("green");
    f["text"] = json!(format!("{NAME} reports a phishing wave."));
    let (s, v) = api.post("/api/v1/reports", &c.reporter, &f).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let open = v["id"].as_i64().unwrap();
    let (_, v) = api.get(&format!("/api/v1/reports/{open}"), &c.other).await;
    assert_eq!(v["source"]["sealed"], false, "{v}");
    assert_eq!(v["source"]["name"], NAME);
    assert_eq!(v["text"], format!("{NAME} reports a phishing wave."));
    let (_, _, raw) = api.taxii(RELAYED, &c.other).await;
    assert!(
        raw.contains("Kanto Power reports a phishing wave."),
        "{raw}"
    );
    let objects = api.relayed(&c.other).await;
    assert!(
        objects
            .iter()
            .any(|o| o["type"] == "identity" && o["name"] == NAME)
    );
}

// Fail closed: a copy that cannot be anonymised is withheld and counted; the report
// itself is accepted.
async fn a_copy_that_cannot_be_anonymised_is_withheld(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    // An alias that also occurs where the scrubber does not rewrite: a `type` below the
    // object's own (it may name a structure, so it is searched but never rewritten).
    api.profile(c.reporter_org, &[("alias", "0b6f7a9e")]).await;
    let mut bundle: Value = serde_json::from_str(&submission(&c, json!({}))).unwrap();
    bundle["objects"][2]["x_tooling"] = json!({"type": "0b6f7a9e"});
    let (s, v) = api
        .post_as(
            "/api/v1/reports",
            &c.reporter,
            "application/stix+json;version=2.1",
            bundle.to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_i64().unwrap();
    let (_, v) = api.get(&format!("/api/v1/reports/{id}"), &c.analyst).await;
    assert_eq!(v["relay"]["state"], "withheld", "{v}");
    let reason = v["relay"]["reason"].as_str().unwrap();
    assert!(reason.contains("failed closed"), "{reason}");
    assert!(
        !reason.contains("0b6f7a9e"),
        "the reason does not repeat what leaked"
    );
    assert!(api.relayed(&c.other).await.is_empty());
    assert!(api.relayed(&c.analyst).await.is_empty());
    let mut tx = api.store.begin_read().await.unwrap();
    let counts = tx.report_relay_counts().await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(counts, vec![("withheld".to_owned(), 1)]);
    // The reporter is told too, with what it can do about it.
    let (_, mine) = api.get(&format!("/api/v1/reports/{id}"), &c.reporter).await;
    assert_eq!(mine["relay"]["state"], "withheld", "{mine}");
    let reason = mine["relay"]["reason"].as_str().unwrap();
    assert!(reason.contains("disclose_source"), "{reason}");
    assert!(!reason.contains("0b6f7a9e"), "{reason}");
}

// DESIGN invariant 5: the centre's identity, which every relayed copy references by
// `created_by_ref`, is CLEAR — not the marking and audience of the first report relayed —
// so every organisation that gets a copy can resolve who made it; an identity stored by an
// earlier release with the first report's audience is made CLEAR by the next relay.
async fn the_centres_identity_is_clear_for_every_copy_that_references_it(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    // The first report is AMBER+STRICT: the other operator is not in its audience.
    let mut f = fields(&c, json!({}));
    f["tlp"] = json!("amber+strict");
    f["text"] = json!("Beacons from the gateway.");
    let (s, v) = api.post("/api/v1/reports", &c.reporter, &f).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let seen: Vec<Value> = api.relayed(&c.other).await;
    assert!(seen.iter().all(|o| o["type"] == "identity"), "{seen:?}");
    let centre_id = api
        .relayed(&c.authority)
        .await
        .iter()
        .find(|o| o["type"] == "report")
        .unwrap()["created_by_ref"]
        .as_str()
        .unwrap()
        .to_owned();
    let identity = format!("{RELAYED}{centre_id}/");
    let clear = json!([Tlp::Clear.stix_id()]);
    for token in [&c.other, &c.excluded, &c.authority] {
        let (s, v, _) = api.taxii(&identity, token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["objects"][0]["object_marking_refs"], clear, "{v}");
    }

    // As an earlier release left it: the first report's marking and audience.
    let centre = api.get("/api/v1/admin/orgs", &api.admin).await.1[0]["id"]
        .as_i64()
        .unwrap();
    let mut tx = api.store.begin().await.unwrap();
    let reports = tx.taxii_collection("reports").await.unwrap().id;
    let first = tx.report(v["id"].as_i64().unwrap()).await.unwrap().unwrap();
    tx.set_stix_object_audience(
        &reports,
        &centre_id,
        OrgId(centre),
        Tlp::AmberStrict,
        &first.audience,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (s, _, _) = api.taxii(&identity, &c.other).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The next relayed copy (GREEN: the other operator gets it) repairs it.
    let mut f = fields(&c, json!({}));
    f["tlp"] = json!("green");
    f["text"] = json!("Phishing wave.");
    let (s, v) = api.post("/api/v1/reports", &c.reporter, &f).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let copy = api.relayed(&c.other).await;
    let report = copy.iter().find(|o| o["type"] == "report").unwrap();
    assert_eq!(report["created_by_ref"], centre_id.as_str());
    let (s, v, _) = api.taxii(&identity, &c.other).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["objects"][0]["object_marking_refs"], clear, "{v}");
}

// A report stored before migration 0006 (no relay row: the migration backfills one, this
// covers any other path) gets its handle and its relayed copy with its next stage.
async fn a_report_from_before_the_relay_is_relayed_with_its_next_stage(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let (_, me) = api.get("/api/v1/whoami", &c.reporter).await;
    let centre = api.get("/api/v1/admin/orgs", &api.admin).await.1[0]["id"]
        .as_i64()
        .unwrap();
    let mut f = fields(&c, json!({}));
    f["tlp"] = json!("green");
    f["text"] = json!(format!("{NAME} saw beacons."));
    let flash: mamori_share::FlashReport = serde_json::from_value(f).unwrap();
    let audience = mamori_core::tlp::Audience {
        originator: Some(OrgId(c.reporter_org)),
        organisations: [OrgId(centre)].into(),
        excluded: [OrgId(c.excluded_org)].into(),
        ..Default::default()
    };
    let mut tx = api.store.begin().await.unwrap();
    let id = tx
        .insert_report(
            &mamori_store::NewReport {
                org: OrgId(c.reporter_org),
                user: mamori_core::UserId(me["user"]["id"].as_i64().unwrap()),
                tlp: Tlp::Green,
                confidential: false,
                sector: mamori_core::Sector::Electricity,
                impact: "medium",
                regime: "default",
                detected_at: t0() - Duration::minutes(30),
                body: &serde_json::to_string(&flash).unwrap(),
                audience: &audience,
                idempotency_key: None,
            },
            t0(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(api.relayed(&c.other).await.is_empty());
    let (s, v) = api
        .post(
            &format!("/api/v1/reports/{id}/stages"),
            &c.reporter,
            &json!({"stage": "interim", "text": "Contained."}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (_, v) = api.get(&format!("/api/v1/reports/{id}"), &c.analyst).await;
    assert_eq!(v["source"]["sealed"], true, "{v}");
    assert_eq!(v["relay"]["state"], "written", "{v}");
    let (_, _, raw) = api.taxii(RELAYED, &c.other).await;
    assert!(raw.contains("[redacted] saw beacons."), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("kanto"), "{raw}");
}

fn assert_refused(s: StatusCode, v: &Value, status: StatusCode, says: &str) {
    assert_eq!(s, status, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(says), "{says:?} not in {msg:?}");
}

// PP-12 and invariant 7: two people, the approval and the reveal in the ledger, in order,
// and every refusal with its reason.
async fn a_sealed_source_is_revealed_only_through_a_recorded_approval(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let centre = api.get("/api/v1/admin/orgs", &api.admin).await.1[0]["id"]
        .as_i64()
        .unwrap();
    let (_, second_analyst) = api.user(centre, "mori", "analyst").await;
    let (_, second_admin) = api.user(centre, "abe", "admin").await;
    let mut f = fields(&c, json!({}));
    f["tlp"] = json!("amber");
    f["text"] = json!("Beacons from the gateway.");
    let (_, v) = api.post("/api/v1/reports", &c.reporter, &f).await;
    let id = v["id"].as_i64().unwrap();
    let requests = format!("/api/v1/reports/{id}/reveal-requests");
    let source = format!("/api/v1/reports/{id}/source");
    let reason =
        json!({"reason": "the reporter's network is the C2's next hop; we must call them"});

    // Only a centre analyst asks.
    let (s, v) = api.post(&requests, &c.authority, &reason).await;
    assert_refused(
        s,
        &v,
        StatusCode::FORBIDDEN,
        "analyst of the coordination centre",
    );
    let (s, v) = api
        .post(&requests, &c.analyst, &json!({"reason": " "}))
        .await;
    assert_refused(s, &v, StatusCode::BAD_REQUEST, "reason");
    let (s, v) = api.post(&requests, &c.analyst, &reason).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["state"], "pending");
    let rid = v["id"].as_i64().unwrap();
    let (s, v) = api.post(&requests, &second_analyst, &reason).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let refused_rid = v["id"].as_i64().unwrap();

    // Not decided yet: no source.
    let (s, v) = api.get(&source, &c.analyst).await;
    assert_refused(s, &v, StatusCode::CONFLICT, "not approved yet");
    // Another analyst has no request of their own.
    let third = api.user(centre, "ono", "analyst").await.1;
    let (s, v) = api.get(&source, &third).await;
    assert_refused(s, &v, StatusCode::FORBIDDEN, "no reveal request");
    // Analysts do not decide.
    let decide = |rid: i64| format!("/api/v1/reveal-requests/{rid}/decision");
    let approve = json!({"decision": "approved", "reason": "necessary and proportionate"});
    let (s, v) = api.post(&decide(rid), &second_analyst, &approve).await;
    assert_refused(s, &v, StatusCode::FORBIDDEN, "officer or admin");
    // Nobody decides their own request (here one made by the admin, straight in the store).
    let admin_user = {
        let mut tx = api.store.begin_read().await.unwrap();
        let p = tx.authenticate(&api.admin, t0()).await.unwrap();
        tx.commit().await.unwrap();
        p.user.id
    };
    let own = {
        let mut tx = api.store.begin().await.unwrap();
        let own = tx
            .insert_reveal_request(id, admin_user, "test of the two-person rule", t0())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        own
    };
    let (s, v) = api.post(&decide(own), &api.admin, &approve).await;
    assert_refused(s, &v, StatusCode::FORBIDDEN, "your own");
    assert!(
        reveal_acts(&api).await.is_empty(),
        "no refused act is recorded"
    );

    // Refused, then approved; a decision is final.
    let (s, v) = api
        .post(
            &decide(refused_rid),
            &api.admin,
            &json!({"decision": "refused", "reason": "not needed to coordinate"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "refused");
    let (s, v) = api.get(&source, &second_analyst).await;
    assert_refused(s, &v, StatusCode::FORBIDDEN, "not needed to coordinate");
    let (s, v) = api.post(&decide(rid), &second_admin, &approve).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "approved");
    assert!(v["valid_until"].is_string());
    let (s, v) = api.post(&decide(rid), &api.admin, &approve).await;
    assert_refused(s, &v, StatusCode::CONFLICT, "already approved");

    // The requester, and only the requester, reads the source.
    let (s, v) = api.get(&source, &second_analyst).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = api.get(&source, &c.analyst).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["org"], c.reporter_org);
    assert_eq!(v["name"], NAME);
    assert_eq!(v["request"], rid);
    // The report itself stays sealed for the analyst.
    let (_, r) = api.get(&format!("/api/v1/reports/{id}"), &c.analyst).await;
    assert_eq!(r["source"]["sealed"], true);

    // 24 hours later the approval has expired.
    api.clock.advance(Duration::hours(25));
    let (s, v) = api.get(&source, &c.analyst).await;
    assert_refused(s, &v, StatusCode::CONFLICT, "expired");

    // The ledger: refusal, approval, reveal — in that order, nothing else.
    let entries = reveal_acts(&api).await;
    let acts: Vec<Act> = entries.iter().map(|e| e.act.clone()).collect();
    assert_eq!(
        acts,
        vec![
            Act::Approval {
                subject: format!("source_reveal:{refused_rid}"),
                decision: Decision::Refused,
                reason: "not needed to coordinate".into(),
            },
            Act::Approval {
                subject: format!("source_reveal:{rid}"),
                decision: Decision::Approved,
                reason: "necessary and proportionate".into(),
            },
            Act::SourceReveal {
                report: format!("report:{id}"),
                approval: format!("source_reveal:{rid}"),
                reason: reason["reason"].as_str().unwrap().into(),
            },
        ]
    );
    // The three steps are documented in the OpenAPI document.
    let (_, doc) = api.get("/api/openapi.json", &api.admin).await;
    for (path, method) in [
        ("/api/v1/reports/{id}/reveal-requests", "post"),
        ("/api/v1/reveal-requests/{rid}/decision", "post"),
        ("/api/v1/reports/{id}/source", "get"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"]["403"].is_object(),
            "{path}"
        );
    }
    // Two people: the approver is not the one who read the source.
    assert!(entries[1].actor.user.is_some() && entries[2].actor.user.is_some());
    assert_ne!(entries[1].actor.user, entries[2].actor.user, "two people");
}

/// The ledger's approvals and source reveals, in order (token issues are left out).
async fn reveal_acts(api: &Api) -> Vec<Entry> {
    api.ledger()
        .await
        .into_iter()
        .filter(|e| matches!(e.act, Act::Approval { .. } | Act::SourceReveal { .. }))
        .collect()
}

store_test_suite!(
    the_relayed_copy_has_no_trace_of_its_source,
    short_and_japanese_names_are_scrubbed_as_words_and_the_copy_is_written,
    the_centres_identity_is_clear_for_every_copy_that_references_it,
    exclusions_confidentiality_stages_and_disclosure_hold_on_the_relay,
    a_copy_that_cannot_be_anonymised_is_withheld,
    a_report_from_before_the_relay_is_relayed_with_its_next_stage,
    a_sealed_source_is_revealed_only_through_a_recorded_approval,
);
