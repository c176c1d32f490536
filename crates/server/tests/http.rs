//! The API's behaviour through the router, in-process, on both backends: the token
//! lifecycle, and every kind of bad request getting its status while changing nothing.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Duration;
use http_body_util::BodyExt;
use mamori_core::time::ManualClock;
use mamori_server::ServerConfig;
use mamori_store::{Store, store_test_suite};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

mod common;

struct Api {
    app: Router,
    store: Store,
    clock: Arc<ManualClock>,
    admin: String,
    _keys: tempfile::TempDir,
}

impl Api {
    async fn new(store: Store) -> Api {
        let c = common::Centre::start(
            store,
            ServerConfig {
                body_limit_bytes: 4096,
                ..ServerConfig::default()
            },
        )
        .await;
        Api {
            app: c.app,
            store: c.store,
            clock: c.clock,
            admin: c.admin,
            _keys: c.keys,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Body>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let has_body = body.is_some();
        if has_body {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body.unwrap_or_else(Body::empty)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call("GET", path, token, None).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, token, Some(Body::from(body.to_string())))
            .await
    }

    /// Everything the accounts tables hold, for "nothing changed" checks.
    async fn snapshot(&self) -> String {
        let mut tx = self.store.begin().await.unwrap();
        format!(
            "{:?}",
            (
                tx.orgs().await.unwrap(),
                tx.users().await.unwrap(),
                tx.tokens(None).await.unwrap(),
                tx.ledger_size().await.unwrap(),
            )
        )
    }
}

fn assert_error(resp: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["error"]["code"], code, "{}", resp.1);
    let msg = resp.1["error"]["message"].as_str().unwrap();
    assert!(msg.len() > 10, "message says what to do: {msg}");
}

async fn health_and_openapi_need_no_token(store: Store) {
    let api = Api::new(store).await;
    let (status, body) = api.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, doc) = api.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/healthz",
        "/api/v1/whoami",
        "/api/v1/orgs",
        "/api/v1/admin/orgs",
        "/api/v1/admin/users",
        "/api/v1/admin/tokens",
        "/api/v1/admin/tokens/{id}/revoke",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // The ledger's wire types keep their schemas now that they live in mamori_ledger.
    for schema in ["EntryPage", "EntryOut", "ProofOut"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} documented"
        );
    }
    assert_error(
        &api.get("/api/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, body) = api.call("DELETE", "/healthz", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

async fn token_lifecycle_over_http(store: Store) {
    let api = Api::new(store).await;
    let admin = api.admin.clone();
    let (status, me) = api.get("/api/v1/whoami", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["role"], "admin");
    assert_eq!(me["org"]["kind"], "coordination_centre");

    // Issue: an operator organisation, a member, and a 2-day token for it.
    let (s, org) = api
        .post(
            "/api/v1/admin/orgs",
            Some(&admin),
            json!({"kind": "operator", "sector": "water", "name": "Osaka Water"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{org}");
    let (s, user) = api
        .post(
            "/api/v1/admin/users",
            Some(&admin),
            json!({"org": org["id"], "name": "tanaka", "role": "member"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{user}");
    assert_eq!(user["clearance"], "none");
    let (s, issued) = api
        .post(
            "/api/v1/admin/tokens",
            Some(&admin),
            json!({"user": user["id"], "label": "soc", "expires_in_days": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    let secret = issued["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("mamori_"));

    // Use.
    let (s, me) = api.get("/api/v1/whoami", Some(&secret)).await;
    assert_eq!(
        (s, me["user"]["name"].as_str()),
        (StatusCode::OK, Some("tanaka"))
    );
    // The directory: every organisation's id, name, kind and sector, for any member (to
    // name in a report's `exclude` or `share_with`); nothing more. The admin list is not.
    let centre = api.get("/api/v1/admin/orgs", Some(&admin)).await.1[0]["name"].clone();
    let (s, dir) = api.get("/api/v1/orgs", Some(&secret)).await;
    assert_eq!(s, StatusCode::OK, "{dir}");
    assert_eq!(
        dir,
        json!([
            {"id": 1, "name": centre, "kind": "coordination_centre"},
            {"id": org["id"], "name": "Osaka Water", "kind": "operator", "sector": "water"},
        ])
    );
    assert_error(
        &api.get("/api/v1/admin/orgs", Some(&secret)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.get("/api/v1/orgs", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // The secret is never listed again.
    let (_, listed) = api
        .get(
            &format!("/api/v1/admin/tokens?user={}", user["id"]),
            Some(&admin),
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret[20..]));

    // Wrong token: right id, wrong secret.
    let mut wrong = secret.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'x' { 'y' } else { 'x' });
    assert_error(
        &api.get("/api/v1/whoami", Some(&wrong)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );

    // Expire: two days later it no longer works.
    api.clock.advance(Duration::days(2));
    let resp = api.get("/api/v1/whoami", Some(&secret)).await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // Revoke: a fresh token works until it is revoked.
    let (_, issued) = api
        .post(
            "/api/v1/admin/tokens",
            Some(&admin),
            json!({"user": user["id"]}),
        )
        .await;
    let second = issued["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        api.get("/api/v1/whoami", Some(&second)).await.0,
        StatusCode::OK
    );
    let (s, revoked) = api
        .post(
            &format!("/api/v1/admin/tokens/{}/revoke", issued["token"]["id"]),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let resp = api.get("/api/v1/whoami", Some(&second)).await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    // Revoking twice is a conflict; revoking what does not exist is 404.
    let path = format!("/api/v1/admin/tokens/{}/revoke", issued["token"]["id"]);
    assert_error(
        &api.post(&path, Some(&admin), json!({})).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &api.post("/api/v1/admin/tokens/999/revoke", Some(&admin), json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.post("/api/v1/admin/tokens/abc/revoke", Some(&admin), json!({}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
}

async fn bad_requests_get_their_status_and_change_nothing(store: Store) {
    let api = Api::new(store).await;
    let admin = api.admin.clone();
    let (_, org) = api
        .post(
            "/api/v1/admin/orgs",
            Some(&admin),
            json!({"kind": "carrier", "name": "Carrier K"}),
        )
        .await;
    let (_, member) = api
        .post(
            "/api/v1/admin/users",
            Some(&admin),
            json!({"org": org["id"], "name": "suzuki", "role": "member"}),
        )
        .await;
    let (_, issued) = api
        .post(
            "/api/v1/admin/tokens",
            Some(&admin),
            json!({"user": member["id"], "expires_in_days": 1}),
        )
        .await;
    let member_token = issued["secret"].as_str().unwrap().to_owned();
    let (_, gone) = api
        .post(
            "/api/v1/admin/tokens",
            Some(&admin),
            json!({"user": member["id"]}),
        )
        .await;
    let revoked_token = gone["secret"].as_str().unwrap().to_owned();
    api.post(
        &format!("/api/v1/admin/tokens/{}/revoke", gone["token"]["id"]),
        Some(&admin),
        json!({}),
    )
    .await;
    let (_, old) = api
        .post(
            "/api/v1/admin/tokens",
            Some(&admin),
            json!({"user": member["id"], "expires_in_days": 1}),
        )
        .await;
    let expiring_token = old["secret"].as_str().unwrap().to_owned();
    api.clock.advance(Duration::hours(23));

    let before = api.snapshot().await;
    let new_org = json!({"kind": "operator", "name": "Should Not Exist"});
    let cases: Vec<(&str, (StatusCode, Value), StatusCode, &str)> = vec![
        (
            "no token",
            api.post("/api/v1/admin/orgs", None, new_org.clone()).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "unknown token",
            api.post(
                "/api/v1/admin/orgs",
                Some("mamori_99_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                new_org.clone(),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "garbage token",
            api.post("/api/v1/admin/orgs", Some("hunter2"), new_org.clone())
                .await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "revoked token",
            api.post("/api/v1/admin/orgs", Some(&revoked_token), new_org.clone())
                .await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "role may not act",
            api.post("/api/v1/admin/orgs", Some(&member_token), new_org.clone())
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "role may not issue",
            api.post(
                "/api/v1/admin/tokens",
                Some(&member_token),
                json!({"user": member["id"]}),
            )
            .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "malformed JSON",
            api.call(
                "POST",
                "/api/v1/admin/orgs",
                Some(&admin),
                Some(Body::from("{\"kind\": \"operator\", \"name\":")),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "wrong field type",
            api.post(
                "/api/v1/admin/orgs",
                Some(&admin),
                json!({"kind": "operator", "name": 7}),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "unknown kind",
            api.post(
                "/api/v1/admin/orgs",
                Some(&admin),
                json!({"kind": "hacker", "name": "X"}),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "unknown field",
            api.post(
                "/api/v1/admin/orgs",
                Some(&admin),
                json!({"kind": "operator", "name": "X", "admin": true}),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "role unfit for org",
            api.post(
                "/api/v1/admin/users",
                Some(&admin),
                json!({"org": org["id"], "name": "eve", "role": "overseer"}),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "duplicate name",
            api.post(
                "/api/v1/admin/orgs",
                Some(&admin),
                json!({"kind": "carrier", "name": "Carrier K"}),
            )
            .await,
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            "lifetime out of range",
            api.post(
                "/api/v1/admin/tokens",
                Some(&admin),
                json!({"user": member["id"], "expires_in_days": 0}),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "oversized body",
            api.call(
                "POST",
                "/api/v1/admin/orgs",
                Some(&admin),
                Some(Body::from(format!(
                    "{{\"kind\":\"operator\",\"name\":\"{}\"}}",
                    "x".repeat(8192)
                ))),
            )
            .await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (what, resp, status, code) in &cases {
        assert_eq!(resp.0, *status, "{what}: {}", resp.1);
        assert_eq!(resp.1["error"]["code"], *code, "{what}: {}", resp.1);
    }
    // Expired: the clock passes the one-day lifetime.
    api.clock.advance(Duration::hours(2));
    let resp = api
        .post("/api/v1/admin/orgs", Some(&expiring_token), new_org.clone())
        .await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthenticated");
    // Without a JSON content type.
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/admin/orgs")
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .body(Body::from(new_org.to_string()))
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        resp.headers().get("x-request-id").is_some(),
        "every response names its request"
    );

    assert_eq!(
        api.snapshot().await,
        before,
        "no bad request changed stored state"
    );
}

async fn the_overseer_reads_the_ledger_and_no_one_else_does(store: Store) {
    let api = Api::new(store).await;
    let admin = api.admin.clone();
    let (_, org) = api
        .post(
            "/api/v1/admin/orgs",
            Some(&admin),
            json!({"kind": "overseer", "name": "Oversight Board"}),
        )
        .await;
    let (_, user) = api
        .post(
            "/api/v1/admin/users",
            Some(&admin),
            json!({"org": org["id"], "name": "kimura", "role": "overseer"}),
        )
        .await;
    let (_, issued) = api
        .post(
            "/api/v1/admin/tokens",
            Some(&admin),
            json!({"user": user["id"]}),
        )
        .await;
    let overseer = issued["secret"].as_str().unwrap().to_owned();
    let (_, second) = api
        .post(
            "/api/v1/admin/tokens",
            Some(&admin),
            json!({"user": user["id"]}),
        )
        .await;
    api.post(
        &format!("/api/v1/admin/tokens/{}/revoke", second["token"]["id"]),
        Some(&admin),
        json!({}),
    )
    .await;

    // The checkpoint and key are public; the checkpoint commits to the three acts.
    let req = Request::builder()
        .uri("/api/v1/ledger/checkpoint")
        .body(Body::empty())
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let note = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let req = Request::builder()
        .uri("/api/v1/ledger/key")
        .body(Body::empty())
        .unwrap();
    let key_text = String::from_utf8(
        api.app
            .clone()
            .oneshot(req)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let key = mamori_ledger::VerifierKey::parse(key_text.trim()).unwrap();
    let origin = key.name().to_owned();
    let cp = mamori_ledger::Checkpoint::open(note.as_bytes(), &origin, &[key]).unwrap();
    assert_eq!(cp.checkpoint().size(), 3, "{note}");

    // Entries: the overseer sees them, with who did what.
    let (s, page) = api
        .get("/api/v1/ledger/entries?start=0&end=10", Some(&overseer))
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let kinds: Vec<String> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let entry: Value = serde_json::from_str(e["data"].as_str().unwrap()).unwrap();
            assert_eq!(entry["actor"]["name"], "admin");
            entry["act"]["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(kinds, ["token_issued", "token_issued", "token_revoked"]);
    let (_, page) = api
        .get("/api/v1/ledger/entries?start=1&end=2", Some(&overseer))
        .await;
    assert_eq!(
        (
            page["entries"].as_array().unwrap().len(),
            page["next"].is_null()
        ),
        (1, true)
    );

    // Proofs verify against the signed root.
    let (s, proof) = api
        .get(
            "/api/v1/ledger/proof/inclusion?index=1&size=3",
            Some(&overseer),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{proof}");
    let (_, page) = api
        .get("/api/v1/ledger/entries?start=1&end=2", Some(&overseer))
        .await;
    let leaf = mamori_ledger::leaf_hash(page["entries"][0]["data"].as_str().unwrap().as_bytes());
    let path: Vec<mamori_ledger::Hash> = proof["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| mamori_ledger::Hash::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    mamori_ledger::verify_inclusion(1, 3, &leaf, &path, &cp.checkpoint().root()).unwrap();
    let (s, consistency) = api
        .get(
            "/api/v1/ledger/proof/consistency?from=1&to=3",
            Some(&overseer),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // The bodies are `mamori_ledger::wire`'s types, the sensor's and the verifier's too
    // (CI-9, AN-7): each parses as the shared type and writes back the same JSON.
    let (_, full) = api
        .get("/api/v1/ledger/entries?start=0&end=2", Some(&overseer))
        .await;
    let shared: mamori_ledger::wire::EntryPage = serde_json::from_value(full.clone()).unwrap();
    assert_eq!((shared.entries.len(), shared.next), (2, None));
    assert_eq!(serde_json::to_value(&shared).unwrap(), full);
    for body in [&proof, &consistency] {
        let shared: mamori_ledger::wire::ProofOut = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&shared).unwrap(), body);
    }

    // Bad requests and other roles.
    assert_error(
        &api.get(
            "/api/v1/ledger/proof/inclusion?index=0&size=99",
            Some(&overseer),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_error(
        &api.get(
            "/api/v1/ledger/proof/consistency?from=3&to=1",
            Some(&overseer),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_error(
        &api.get("/api/v1/ledger/entries?start=5&end=1", Some(&overseer))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_error(
        &api.get("/api/v1/ledger/entries?start=x", Some(&overseer))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_error(
        &api.get("/api/v1/ledger/entries", Some(&admin)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.get("/api/v1/ledger/entries", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &api.post("/api/v1/ledger/checkpoint", Some(&admin), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}

fn finding(address: &str, score: f64) -> Value {
    use mamori_core::finding::{Clients, Evidence, Finding, FindingKind, IndicatorEvidence};
    let f = Finding {
        kind: FindingKind::Indicator,
        address: address.parse().unwrap(),
        port: 443,
        proto: 6,
        score,
        first_seen: 1_790_000_000_000,
        last_seen: 1_790_000_060_000,
        clients: Clients::new(2, vec![]),
        evidence: Evidence::Indicator(IndicatorEvidence {
            entry: format!("{address}/32"),
            flows: 3,
            packets: 30,
            bytes: 3000,
            as_destination: true,
        }),
        feed: Some("abusech-feodo".into()),
    };
    serde_json::to_value(f).unwrap()
}

async fn findings_reach_whom_their_tlp_allows(store: Store) {
    let api = Api::new(store).await;
    let admin = api.admin.clone();
    let token_for =
        |org_kind: &'static str, org: &'static str, user: &'static str, role: &'static str| {
            let api = &api;
            let admin = admin.clone();
            async move {
                let (_, o) = api
                    .post(
                        "/api/v1/admin/orgs",
                        Some(&admin),
                        json!({"kind": org_kind, "name": org}),
                    )
                    .await;
                let (_, u) = api
                    .post(
                        "/api/v1/admin/users",
                        Some(&admin),
                        json!({"org": o["id"], "name": user, "role": role}),
                    )
                    .await;
                let (_, t) = api
                    .post(
                        "/api/v1/admin/tokens",
                        Some(&admin),
                        json!({"user": u["id"]}),
                    )
                    .await;
                t["secret"].as_str().unwrap().to_owned()
            }
        };
    let carrier = token_for("carrier", "Carrier K", "sensor-k", "member").await;
    let other_carrier = token_for("carrier", "Carrier L", "sensor-l", "member").await;
    let operator = token_for("operator", "Kanto Power", "sato", "member").await;
    let (_, centre_org) = api.get("/api/v1/admin/orgs", Some(&admin)).await;
    let centre_id = centre_org[0]["id"].clone();
    let (_, analyst_user) = api
        .post(
            "/api/v1/admin/users",
            Some(&admin),
            json!({"org": centre_id, "name": "yamada", "role": "analyst"}),
        )
        .await;
    let (_, t) = api
        .post(
            "/api/v1/admin/tokens",
            Some(&admin),
            json!({"user": analyst_user["id"]}),
        )
        .await;
    let analyst = t["secret"].as_str().unwrap().to_owned();

    // Two AMBER findings (the default) and one GREEN.
    let (s, r) = api
        .post(
            "/api/v1/findings",
            Some(&carrier),
            json!({"findings": [finding("198.51.100.7", 0.9), finding("198.51.100.8", 0.8)]}),
        )
        .await;
    assert_eq!(
        (s, r["accepted"].as_u64()),
        (StatusCode::ACCEPTED, Some(2)),
        "{r}"
    );
    let (s, _) = api
        .post(
            "/api/v1/findings",
            Some(&carrier),
            json!({"tlp": "green", "findings": [finding("203.0.113.9", 0.7)]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);

    let seen = |v: &Value| -> Vec<String> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["finding"]["address"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = api.get("/api/v1/findings", Some(&analyst)).await;
    assert_eq!(
        seen(&v),
        ["198.51.100.7", "198.51.100.8", "203.0.113.9"],
        "the centre sees all"
    );
    let (_, v) = api.get("/api/v1/findings", Some(&carrier)).await;
    assert_eq!(seen(&v).len(), 3, "the reporter sees its own");
    let (_, v) = api.get("/api/v1/findings", Some(&operator)).await;
    assert_eq!(seen(&v), ["203.0.113.9"], "others see only GREEN");
    let (_, v) = api.get("/api/v1/findings", Some(&other_carrier)).await;
    assert_eq!(seen(&v), ["203.0.113.9"]);
    let (_, v) = api
        .get("/api/v1/findings?after=1&limit=1", Some(&analyst))
        .await;
    assert_eq!(
        (seen(&v), v["next"].as_i64()),
        (vec!["198.51.100.8".to_owned()], Some(2))
    );

    // Refused, and nothing stored: not a carrier, bad marking, bad score, malformed finding.
    let before = api.get("/api/v1/findings", Some(&analyst)).await.1;
    assert_error(
        &api.post(
            "/api/v1/findings",
            Some(&operator),
            json!({"findings": [finding("192.0.2.1", 0.5)]}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.post(
            "/api/v1/findings",
            Some(&carrier),
            json!({"tlp": "white", "findings": []}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_error(
        &api.post(
            "/api/v1/findings",
            Some(&carrier),
            json!({"findings": [finding("192.0.2.1", 1.5)]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_error(
        &api.post(
            "/api/v1/findings",
            Some(&carrier),
            json!({"findings": [{"kind": "c2"}]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_error(
        &api.post("/api/v1/findings", None, json!({"findings": []}))
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_eq!(api.get("/api/v1/findings", Some(&analyst)).await.1, before);

    // A sensor's finding about one of its subscribers (CI-4): accepted and served back
    // as sent, saying its address is a pseudonym and naming the key.
    let infected = {
        let f: mamori_core::finding::Finding =
            serde_json::from_value(finding("147.26.123.12", 0.8)).unwrap();
        serde_json::to_value(f.into_infected_client("2026-12-01")).unwrap()
    };
    let (s, _) = api
        .post(
            "/api/v1/findings",
            Some(&carrier),
            json!({"findings": [infected]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, v) = api.get("/api/v1/findings?after=3", Some(&analyst)).await;
    let got = &v["findings"][0]["finding"];
    assert_eq!(got, &infected, "{v}");
    assert_eq!(got["kind"], "infected_client");
    assert_eq!(got["evidence"]["address_is"], "pseudonym");
}

store_test_suite!(
    findings_reach_whom_their_tlp_allows,
    the_overseer_reads_the_ledger_and_no_one_else_does,
    health_and_openapi_need_no_token,
    token_lifecycle_over_http,
    bad_requests_get_their_status_and_change_nothing,
);
