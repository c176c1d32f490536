//! The reports API (issue 8) through the router, in-process, on both backends: who sees
//! what under every TLP marking on every read path, exclusion of a named organisation,
//! idempotent resubmission, STIX bundles, staged reporting with overdue transitions on a
//! manual clock, and malformed input refused with nothing stored.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::Duration;
use http_body_util::BodyExt;
use mamori_core::Tlp;
use mamori_core::time::{ManualClock, rfc3339};
use mamori_server::ServerConfig;
use mamori_store::{ReportCounts, Store, store_test_suite};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

mod common;

use common::t0;

const BODY_LIMIT: usize = 8192;

struct Api {
    app: Router,
    store: Store,
    clock: Arc<ManualClock>,
    admin: String,
    _keys: tempfile::TempDir,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Api {
    async fn new(store: Store) -> Api {
        let c = common::Centre::start(
            store,
            ServerConfig {
                body_limit_bytes: BODY_LIMIT,
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
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(
                req.body(body.map(Body::from).unwrap_or_else(Body::empty))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call("GET", path, token, &[], None).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call(
            "POST",
            path,
            token,
            &[("content-type", "application/json")],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    async fn admin_post(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, Some(&self.admin.clone()), &body).await;
        assert!(r.status.is_success(), "{path}: {}", r.body);
        r.body
    }

    /// A new organisation; returns its id.
    async fn org(&self, kind: &str, sector: Option<&str>, name: &str) -> i64 {
        self.admin_post(
            "/api/v1/admin/orgs",
            json!({"kind": kind, "sector": sector, "name": name}),
        )
        .await["id"]
            .as_i64()
            .unwrap()
    }

    /// A user with a token in `org`; returns (user id, token).
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

    async fn counts(&self) -> ReportCounts {
        let mut tx = self.store.begin().await.unwrap();
        let c = tx.report_counts().await.unwrap();
        tx.commit().await.unwrap();
        c
    }
}

fn assert_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.len() > 20, "message says what to do: {msg}");
}

fn flash(tlp: Tlp, impact: &str) -> Value {
    json!({
        "detected_at": rfc3339(t0() - Duration::minutes(30)),
        "sector": "electricity",
        "affected_service": "SCADA gateway",
        "impact": impact,
        "cause": "unknown",
        "tlp": tlp,
        "text": "Unusual outbound connections from the gateway every 60 s.",
        "purposes": ["response", "warning"],
    })
}

/// The cast: a reporter, the sector's authority (routed to), its supervising ministry
/// (also a sector authority, but excluded by the reporter), another operator, a person
/// named as recipient, and an analyst of the centre.
struct Cast {
    reporter: String,
    authority: String,
    excluded_org: i64,
    excluded: String,
    other: String,
    named_id: i64,
    named: String,
    analyst: String,
}

async fn cast(api: &Api) -> Cast {
    let reporter_org = api
        .org("operator", Some("electricity"), "Kanto Power")
        .await;
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
    let rail_org = api.org("operator", Some("railways"), "Tohoku Rail").await;
    let centre = api.get("/api/v1/admin/orgs", Some(&api.admin)).await.body[0]["id"]
        .as_i64()
        .unwrap();
    Cast {
        reporter: api.user(reporter_org, "sato", "member").await.1,
        authority: api.user(authority_org, "tanaka", "member").await.1,
        excluded_org,
        excluded: api.user(excluded_org, "kato", "member").await.1,
        other: api.user(other_org, "ito", "member").await.1,
        named_id: 0,
        named: String::new(),
        analyst: api.user(centre, "yamada", "analyst").await.1,
    }
    .with_named(api.user(rail_org, "suzuki", "member").await)
}

impl Cast {
    fn with_named(mut self, (id, token): (i64, String)) -> Cast {
        self.named_id = id;
        self.named = token;
        self
    }
}

async fn every_marking_reaches_whom_it_allows_on_every_read_path(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    // One report per marking, plus a confidential one (PP-22); every one excludes the
    // supervising ministry although the regime routes medium impact to sector authorities.
    let mut ids = Vec::new();
    for confidential in [false, true] {
        for tlp in Tlp::ALL {
            let mut body = flash(tlp, "medium");
            // By id, or by its registered name: the same exclusion either way.
            body["exclude"] = if confidential {
                json!([c.excluded_org])
            } else {
                json!(["Supervising Ministry"])
            };
            if !confidential {
                body["recipients"] = json!([c.named_id]);
            }
            body["confidential"] = json!(confidential);
            let r = api.post("/api/v1/reports", Some(&c.reporter), &body).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
            ids.push(r.body["id"].as_i64().unwrap());
        }
    }
    // Columns: CLEAR, GREEN, AMBER, AMBER+STRICT, RED; then the same five held in
    // confidence. `Y` sees it on both paths, `.` on neither.
    let table: [(&str, Option<&str>, &str); 7] = [
        ("originator org", Some(&c.reporter), "YYYYY YYYYY"),
        ("routed sector authority", Some(&c.authority), "YYYY. ....."),
        ("another community org", Some(&c.other), "YY... ....."),
        (
            "excluded org (routed by the regime)",
            Some(&c.excluded),
            "..... .....",
        ),
        ("named individual", Some(&c.named), "YYYYY ....."),
        ("centre analyst", Some(&c.analyst), "YYYYY YYYYY"),
        ("anonymous", None, "..... ....."),
    ];
    let mut checked = 0;
    for (who, token, row) in table {
        let want: Vec<bool> = row
            .chars()
            .filter(|c| *c != ' ')
            .map(|c| c == 'Y')
            .collect();
        // Path 1: GET one report. Not visible is 404, as for a report that does not exist.
        let mut got = Vec::new();
        for id in &ids {
            let r = api.get(&format!("/api/v1/reports/{id}"), token).await;
            match (token, r.status) {
                (None, s) => assert_eq!(s, StatusCode::UNAUTHORIZED),
                (_, StatusCode::OK) => assert_eq!(r.body["id"], *id),
                (_, s) => assert_error(&r, s, "not_found"),
            }
            got.push(r.status == StatusCode::OK);
        }
        assert_eq!(got, want, "GET, viewer {who}");
        // Path 2: the list.
        let r = api.get("/api/v1/reports", token).await;
        let listed: Vec<i64> = r.body["reports"]
            .as_array()
            .map(|a| a.iter().map(|x| x["id"].as_i64().unwrap()).collect())
            .unwrap_or_default();
        let got: Vec<bool> = ids.iter().map(|id| listed.contains(id)).collect();
        assert_eq!(got, want, "list, viewer {who}");
        checked += 2 * ids.len();
    }
    assert_eq!(checked, 7 * 10 * 2);

    // The audience is shown to the reporter and the centre only; the source (PP-12) to
    // the reporter and the authority the regime routed it to, sealed for the centre's
    // analysts and everyone else.
    let path = format!("/api/v1/reports/{}", ids[2]);
    let mine = api.get(&path, Some(&c.reporter)).await.body;
    assert_eq!(mine["audience"]["excluded"], json!([c.excluded_org]));
    assert!(mine["audience"]["reporter"].is_i64());
    assert_eq!(mine["source"]["sealed"], false);
    let analysts = api.get(&path, Some(&c.analyst)).await.body;
    assert!(analysts["audience"].is_object());
    assert!(analysts["audience"].get("reporter").is_none(), "{analysts}");
    assert_eq!(analysts["source"]["sealed"], true);
    let theirs = api.get(&path, Some(&c.authority)).await.body;
    assert!(theirs.get("audience").is_none(), "{theirs}");
    assert_eq!(theirs["text"], mine["text"]);
    assert_eq!(theirs["source"]["sealed"], false, "{theirs}");
    assert_eq!(theirs["source"]["name"], "Kanto Power");
    let others = api
        .get(&format!("/api/v1/reports/{}", ids[1]), Some(&c.other))
        .await
        .body;
    assert_eq!(others["source"]["sealed"], true, "{others}");
}

async fn a_retried_submission_is_not_stored_twice(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let body = flash(Tlp::Amber, "low");
    let send = |body: Vec<u8>, token: String, key: &'static str| {
        let api = &api;
        async move {
            api.call(
                "POST",
                "/api/v1/reports",
                Some(&token),
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", key),
                ],
                Some(body),
            )
            .await
        }
    };
    let first = send(
        body.to_string().into_bytes(),
        c.reporter.clone(),
        "4f1c-retry",
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let id = first.body["id"].as_i64().unwrap();
    assert_eq!(
        first.headers[header::LOCATION],
        format!("/api/v1/reports/{id}")
    );
    assert!(first.headers.get("idempotent-replayed").is_none());
    let after_first = api.counts().await;
    assert_eq!((after_first.reports, after_first.keys), (1, 1));

    // The same report again, formatted differently: the same resource, nothing stored.
    let pretty = serde_json::to_vec_pretty(&body).unwrap();
    let again = send(pretty, c.reporter.clone(), "4f1c-retry").await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(api.counts().await, after_first);

    // Another body under the same key: 409, and nothing stored.
    let mut other = body.clone();
    other["impact"] = json!("high");
    let clash = send(
        other.to_string().into_bytes(),
        c.reporter.clone(),
        "4f1c-retry",
    )
    .await;
    assert_error(&clash, StatusCode::CONFLICT, "conflict");
    assert!(
        clash.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("different content")
    );
    assert_eq!(api.counts().await, after_first);

    // Keys are per organisation: another reporter's same key is its own report.
    let theirs = send(body.to_string().into_bytes(), c.other.clone(), "4f1c-retry").await;
    assert_eq!(theirs.status, StatusCode::ACCEPTED);
    assert_ne!(theirs.body["id"], first.body["id"]);
    // Without a key, a second submission is a second report.
    let plain = api.post("/api/v1/reports", Some(&c.reporter), &body).await;
    assert_ne!(plain.body["id"], first.body["id"]);
    assert_eq!(api.counts().await.reports, 3);
    let bad_key = send(
        body.to_string().into_bytes(),
        c.reporter.clone(),
        "has space",
    )
    .await;
    assert_error(&bad_key, StatusCode::BAD_REQUEST, "invalid_input");
}

fn stix_bundle(marking: Option<&str>) -> Value {
    let mut incident = json!({
        "type": "incident",
        "spec_version": "2.1",
        "id": "incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-09-21T14:00:00.000Z",
        "modified": "2026-09-21T14:00:00.000Z",
        "name": "Gateway beaconing",
        "description": "Beaconing from the SCADA gateway every 60 s.",
        "x_mamori_report": {
            "detected_at": rfc3339(t0() - Duration::minutes(30)),
            "sector": "electricity",
            "affected_service": "SCADA gateway",
            "impact": "medium",
            "cause": "intentional",
            "purposes": ["response"],
        },
    });
    if let Some(m) = marking {
        incident["object_marking_refs"] = json!([m]);
    }
    json!({
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": [incident],
    })
}

async fn a_stix_bundle_becomes_a_report_under_its_marking(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    for (media, tlp) in [
        ("application/stix+json;version=2.1", Tlp::AmberStrict),
        ("application/json", Tlp::Green), // detected from "type": "bundle"
    ] {
        let r = api
            .call(
                "POST",
                "/api/v1/reports",
                Some(&c.reporter),
                &[("content-type", media)],
                Some(stix_bundle(Some(tlp.stix_id())).to_string().into_bytes()),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{media}: {}", r.body);
        assert_eq!(r.body["tlp"], json!(tlp));
        assert_eq!(r.body["cause"], "intentional");
        assert_eq!(
            r.body["text"],
            "Beaconing from the SCADA gateway every 60 s."
        );
    }
    // AMBER+STRICT reached the routed authority; GREEN reaches everyone signed in.
    let listed = api.get("/api/v1/reports", Some(&c.other)).await.body;
    assert_eq!(listed["reports"].as_array().unwrap().len(), 1);
    assert_eq!(listed["reports"][0]["tlp"], "green");
    // The audience lists of `x_mamori_report` take names, as the JSON form does: a GREEN
    // report excluding Kansai Gas by name never reaches it.
    let mut named = stix_bundle(Some(Tlp::Green.stix_id()));
    named["objects"][0]["x_mamori_report"]["exclude"] = json!(["Kansai Gas"]);
    let r = api.post("/api/v1/reports", Some(&c.reporter), &named).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let kansai = api.get("/api/v1/admin/orgs", Some(&api.admin)).await.body;
    let kansai = kansai
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Kansai Gas")
        .unwrap()["id"]
        .clone();
    assert_eq!(r.body["audience"]["excluded"], json!([kansai]));
    let listed = api.get("/api/v1/reports", Some(&c.other)).await.body;
    assert_eq!(listed["reports"].as_array().unwrap().len(), 1);
    named["objects"][0]["x_mamori_report"]["exclude"] = json!(["Kansai Gass"]);
    let r = api.post("/api/v1/reports", Some(&c.reporter), &named).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input");
}

async fn malformed_input_is_refused_and_nothing_is_stored(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let ok = api
        .post(
            "/api/v1/reports",
            Some(&c.reporter),
            &flash(Tlp::Red, "high"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED);
    let id = ok.body["id"].as_i64().unwrap();
    let before = api.counts().await;

    let stix = "application/stix+json";
    let forged = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c2";
    let mut missing = flash(Tlp::Amber, "low");
    missing.as_object_mut().unwrap().remove("cause");
    let mut unknown_org = flash(Tlp::Amber, "low");
    unknown_org["exclude"] = json!([4242]);
    let mut unknown_name = flash(Tlp::Amber, "low");
    unknown_name["share_with"] = json!(["Kansai Gas", "Supervising Ministery"]);
    let mut exclude_centre = flash(Tlp::Amber, "low");
    exclude_centre["exclude"] = json!([1]);
    let mut future = flash(Tlp::Amber, "low");
    future["detected_at"] = json!(rfc3339(t0() + Duration::days(1)));
    let mut white = flash(Tlp::Amber, "low");
    white["tlp"] = json!("white");
    let mut invalid_stix = stix_bundle(Some(Tlp::Amber.stix_id()));
    invalid_stix["objects"][0]["created"] = json!("yesterday");
    let mut huge = flash(Tlp::Amber, "low");
    huge["text"] = json!("x".repeat(BODY_LIMIT));
    // (what, media type, body, status, code, what the message says)
    type Case<'a> = (&'a str, &'a str, Vec<u8>, StatusCode, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            "application/json",
            b"{\"sector\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "not a valid flash report",
        ),
        (
            "missing required field",
            "application/json",
            missing.to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "missing field `cause`",
        ),
        (
            "TLP 1.0 WHITE",
            "application/json",
            white.to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "unknown variant",
        ),
        (
            "unknown organisation",
            "application/json",
            unknown_org.to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "does not exist",
        ),
        (
            "unknown organisation name",
            "application/json",
            unknown_name.to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "`share_with` names \"Supervising Ministery\", which no organisation is called",
        ),
        (
            "excluding the window",
            "application/json",
            exclude_centre.to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "reporting window",
        ),
        (
            "detected in the future",
            "application/json",
            future.to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "in the future",
        ),
        (
            "invalid STIX",
            stix,
            invalid_stix.to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "property `created`",
        ),
        (
            "STIX without a marking",
            stix,
            stix_bundle(None).to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "no TLP marking",
        ),
        (
            "unknown marking",
            stix,
            stix_bundle(Some(forged)).to_string().into(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "not an official TLP marking",
        ),
        (
            "STIX that is not JSON",
            stix,
            b"<bundle/>".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "malformed JSON",
        ),
        (
            "oversized body",
            "application/json",
            huge.to_string().into(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "larger than",
        ),
        // A valid report sent as anything but JSON is refused like on every JSON endpoint.
        (
            "sent as text/plain",
            "text/plain",
            flash(Tlp::Amber, "low").to_string().into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type: application/json",
        ),
        (
            "sent without a Content-Type",
            "",
            flash(Tlp::Amber, "low").to_string().into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type: application/json",
        ),
    ];
    for (what, media, body, status, code, says) in cases {
        let headers: &[(&str, &str)] = if media.is_empty() {
            &[]
        } else {
            &[("content-type", media)]
        };
        let r = api
            .call(
                "POST",
                "/api/v1/reports",
                Some(&c.reporter),
                headers,
                Some(body),
            )
            .await;
        assert_error(&r, status, code);
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{what}: {msg}");
        assert_eq!(api.counts().await, before, "{what}: nothing stored");
    }
    // Bad stages and reads: refused, nothing stored.
    let stages = format!("/api/v1/reports/{id}/stages");
    let bad_stage = api
        .post(
            &stages,
            Some(&c.reporter),
            &json!({"stage": "flash", "text": "again"}),
        )
        .await;
    assert_error(&bad_stage, StatusCode::BAD_REQUEST, "invalid_input");
    assert!(
        bad_stage.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("interim, final")
    );
    let extra = api
        .post(
            &stages,
            Some(&c.reporter),
            &json!({"stage": "interim", "text": "x", "colour": 1}),
        )
        .await;
    assert_error(&extra, StatusCode::BAD_REQUEST, "invalid_input");
    let as_text = api
        .call(
            "POST",
            &stages,
            Some(&c.reporter),
            &[("content-type", "text/plain")],
            Some(json!({"stage": "interim", "text": "x"}).to_string().into()),
        )
        .await;
    assert_error(
        &as_text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let not_mine = api
        .post(
            &stages,
            Some(&c.analyst),
            &json!({"stage": "interim", "text": "x"}),
        )
        .await;
    assert_error(&not_mine, StatusCode::FORBIDDEN, "forbidden");
    let unseen = api
        .post(
            &stages,
            Some(&c.other),
            &json!({"stage": "interim", "text": "x"}),
        )
        .await;
    assert_error(&unseen, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &api.get("/api/v1/reports/abc", Some(&c.reporter)).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_error(
        &api.get("/api/v1/reports?status=late", Some(&c.reporter))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    let ack = format!("/api/v1/reports/{id}/acknowledge");
    assert_error(
        &api.post(&ack, Some(&c.reporter), &json!({})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(api.counts().await, before);
}

fn states(v: &Value) -> BTreeMap<String, String> {
    let st = &v["status"];
    st["stages"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&st["acknowledgement"], &st["feedback"]])
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn want(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

async fn stages_fall_due_go_overdue_and_are_received(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let r = api
        .post(
            "/api/v1/reports",
            Some(&c.reporter),
            &flash(Tlp::Amber, "high"),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/reports/{id}");
    assert_eq!(
        states(&r.body),
        want(&[
            ("flash", "received"),
            ("interim", "due"),
            ("final", "pending"),
            ("acknowledgement", "due"),
            ("feedback", "due")
        ])
    );
    // A low-impact report from the same reporter, complete at once.
    let low = api
        .post(
            "/api/v1/reports",
            Some(&c.reporter),
            &flash(Tlp::Amber, "low"),
        )
        .await;
    let low_id = low.body["id"].as_i64().unwrap();
    assert_eq!(low.body["status"]["complete"], true);

    // 73 hours on: the interim report is overdue, as are the centre's duties; both the
    // reporter and the centre see it, and the overdue filter finds it.
    api.clock.advance(Duration::hours(73));
    for token in [&c.reporter, &c.analyst] {
        let v = api.get(&path, Some(token)).await.body;
        assert_eq!(
            states(&v),
            want(&[
                ("flash", "received"),
                ("interim", "overdue"),
                ("final", "pending"),
                ("acknowledgement", "overdue"),
                ("feedback", "overdue")
            ])
        );
        assert_eq!(v["status"]["overdue"], true);
    }
    let overdue = api
        .get("/api/v1/reports?status=overdue", Some(&c.analyst))
        .await
        .body;
    let ids: Vec<i64> = overdue["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [id, low_id],
        "the low report's centre duties are overdue too"
    );
    let complete = api
        .get("/api/v1/reports?status=complete", Some(&c.analyst))
        .await
        .body;
    assert_eq!(complete["reports"].as_array().unwrap().len(), 1);

    // The centre acknowledges with feedback; the reporter sends the interim stage.
    let ack = api
        .post(
            &format!("{path}/acknowledge"),
            Some(&c.analyst),
            &json!({"feedback": "Received. Advisory 12 covers this C2."}),
        )
        .await;
    assert_eq!(ack.status, StatusCode::OK, "{}", ack.body);
    let stage = json!({"stage": "interim", "text": "C2 confirmed; gateway isolated.", "cause": "intentional",
                       "detail": {"indicators": ["198.51.100.7"]}});
    let s = api
        .post(&format!("{path}/stages"), Some(&c.reporter), &stage)
        .await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.body);
    assert_eq!(s.headers[header::LOCATION], path);
    assert_eq!(
        states(&s.body),
        want(&[
            ("flash", "received"),
            ("interim", "received"),
            ("final", "due"),
            ("acknowledgement", "received"),
            ("feedback", "received")
        ])
    );
    assert_eq!(s.body["cause"], "intentional");
    assert_eq!(s.body["status"]["stages"][1]["late"], true);
    assert_eq!(s.body["feedback"], "Received. Advisory 12 covers this C2.");
    assert_eq!(
        s.body["stages"][0]["detail"]["indicators"][0],
        "198.51.100.7"
    );
    // The routed authority sees the stage but not the centre's feedback to the reporter.
    let theirs = api.get(&path, Some(&c.authority)).await.body;
    assert_eq!(
        theirs["stages"][0]["text"],
        "C2 confirmed; gateway isolated."
    );
    assert!(theirs.get("feedback").is_none());

    // The same stage again is a retry; other content under the same stage is a conflict.
    let before = api.counts().await;
    let again = api
        .post(&format!("{path}/stages"), Some(&c.reporter), &stage)
        .await;
    assert_eq!(
        (again.status, &again.headers["idempotent-replayed"]),
        (StatusCode::ACCEPTED, &"true".parse().unwrap())
    );
    let mut changed = stage.clone();
    changed["text"] = json!("something else");
    assert_error(
        &api.post(&format!("{path}/stages"), Some(&c.reporter), &changed)
            .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_eq!(api.counts().await, before);

    // Thirty days after the interim report the final one is overdue.
    api.clock.advance(Duration::days(30) + Duration::minutes(1));
    let v = api.get(&path, Some(&c.reporter)).await.body;
    assert_eq!(states(&v)["final"], "overdue");
}

async fn a_raised_impact_routes_the_report_further(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let gas_agency = api.org("sector_authority", Some("gas"), "Gas Agency").await;
    let gas = api.user(gas_agency, "mori", "member").await.1;
    // Low impact: the default regime routes to the centre only.
    let r = api
        .post(
            "/api/v1/reports",
            Some(&c.reporter),
            &flash(Tlp::AmberStrict, "low"),
        )
        .await;
    let path = format!("/api/v1/reports/{}", r.body["id"]);
    assert_eq!(
        api.get(&path, Some(&c.authority)).await.status,
        StatusCode::NOT_FOUND
    );
    let s = api
        .post(
            &format!("{path}/stages"),
            Some(&c.reporter),
            &json!({"stage": "interim", "text": "Worse.", "impact": "high"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.body);
    assert_eq!(s.body["impact"], "high");
    assert_eq!(
        api.get(&path, Some(&c.authority)).await.status,
        StatusCode::OK
    );
    // The other sector authority of the same sector is routed to as well; an excluded one
    // would not be (see every_marking_reaches_whom_it_allows_on_every_read_path).
    assert_eq!(
        api.get(&path, Some(&c.excluded)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.get(&path, Some(&c.other)).await.status,
        StatusCode::NOT_FOUND
    );
    // Sector authorities receive their own sector's reports only.
    assert_eq!(
        api.get(&path, Some(&gas)).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn reports_are_filtered_and_paged(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let mut ids = Vec::new();
    for (i, sector) in ["electricity", "gas", "electricity"]
        .into_iter()
        .enumerate()
    {
        api.clock.set(t0() + Duration::hours(i as i64));
        let mut f = flash(Tlp::Green, "low");
        f["sector"] = json!(sector);
        ids.push(
            api.post("/api/v1/reports", Some(&c.reporter), &f)
                .await
                .body["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let list = |q: String| {
        let api = &api;
        let token = c.other.clone();
        async move {
            let v = api
                .get(&format!("/api/v1/reports{q}"), Some(&token))
                .await
                .body;
            let got: Vec<i64> = v["reports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_i64().unwrap())
                .collect();
            (got, v["next"].as_i64())
        }
    };
    assert_eq!(list(String::new()).await, (ids.clone(), None));
    assert_eq!(list("?sector=gas".into()).await.0, [ids[1]]);
    let since = rfc3339(t0() + Duration::hours(1)).replace(':', "%3A");
    assert_eq!(list(format!("?since={since}")).await.0, ids[1..]);
    let (page, next) = list("?limit=2".into()).await;
    assert_eq!((page.as_slice(), next), (&ids[..2], Some(ids[1])));
    assert_eq!(
        list(format!("?limit=2&after={}", ids[1])).await,
        (vec![ids[2]], None)
    );
    // A page that ends exactly at the last report says there is no next one.
    assert_eq!(list("?limit=3".into()).await, (ids.clone(), None));
}

async fn recipients_rate_a_report_and_the_reporter_sees_only_counts(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let r = api
        .post(
            "/api/v1/reports",
            Some(&c.reporter),
            &flash(Tlp::Green, "medium"),
        )
        .await;
    let path = format!("/api/v1/reports/{}", r.body["id"]);
    let rate = |token: String, rating: &'static str| {
        let api = &api;
        let path = format!("{path}/ratings");
        async move {
            api.post(&path, Some(&token), &json!({"rating": rating}))
                .await
        }
    };
    assert_eq!(
        rate(c.authority.clone(), "useful").await.status,
        StatusCode::OK
    );
    assert_eq!(
        rate(c.other.clone(), "false_positive").await.status,
        StatusCode::OK
    );
    // The authority changes its mind: its rating is replaced, not added.
    assert_eq!(
        rate(c.authority.clone(), "not_useful").await.status,
        StatusCode::OK
    );
    let mine = api.get(&path, Some(&c.reporter)).await.body;
    assert_eq!(
        mine["ratings"],
        json!({"useful": 0, "not_useful": 1, "false_positive": 1})
    );
    assert_eq!(
        api.get(&path, Some(&c.analyst)).await.body["ratings"],
        mine["ratings"]
    );
    // Who rated appears nowhere in what the reporter gets, and other recipients see no counts.
    let text = mine.to_string();
    assert!(
        !text.contains("Electricity Agency") && !text.contains("Kansai Gas"),
        "{text}"
    );
    assert!(
        api.get(&path, Some(&c.authority))
            .await
            .body
            .get("ratings")
            .is_none()
    );
    let listed = api.get("/api/v1/reports", Some(&c.reporter)).await.body;
    assert_eq!(listed["reports"][0]["ratings"], mine["ratings"]);

    // Refused, nothing stored: the reporter rating its own, a report one may not see, an
    // unknown rating.
    let before = api.counts().await;
    assert_error(
        &rate(c.reporter.clone(), "useful").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let red = api
        .post(
            "/api/v1/reports",
            Some(&c.reporter),
            &flash(Tlp::Red, "low"),
        )
        .await;
    let before = ReportCounts {
        reports: before.reports + 1,
        ..before
    };
    let unseen = api
        .post(
            &format!("/api/v1/reports/{}/ratings", red.body["id"]),
            Some(&c.other),
            &json!({"rating": "useful"}),
        )
        .await;
    assert_error(&unseen, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &rate(c.other.clone(), "great").await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_eq!(api.counts().await, before);
}

async fn the_reports_api_is_documented(store: Store) {
    let api = Api::new(store).await;
    let doc = api.get("/api/openapi.json", None).await.body;
    for (path, method) in [
        ("/api/v1/reports", "post"),
        ("/api/v1/reports", "get"),
        ("/api/v1/reports/{id}", "get"),
        ("/api/v1/reports/{id}/stages", "post"),
        ("/api/v1/reports/{id}/acknowledge", "post"),
        ("/api/v1/reports/{id}/ratings", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} documented"
        );
    }
    for schema in [
        "FlashReport",
        "ReportOut",
        "StageReport",
        "Status",
        "Ratings",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let post = &doc["paths"]["/api/v1/reports"]["post"];
    assert!(post["responses"]["202"].is_object() && post["responses"]["409"].is_object());
    assert!(post["responses"]["415"].is_object(), "{post}");
    // The audience lists take an organisation's id or its name; the directory is there.
    let exclude = &doc["components"]["schemas"]["FlashReport"]["properties"]["exclude"];
    assert_eq!(
        exclude["items"]["$ref"], "#/components/schemas/OrgRef",
        "{exclude}"
    );
    let org_ref = doc["components"]["schemas"]["OrgRef"].to_string();
    assert!(
        org_ref.contains("#/components/schemas/OrgId") && org_ref.contains("\"string\""),
        "{org_ref}"
    );
    assert!(doc["paths"]["/api/v1/orgs"]["get"].is_object());
}

async fn the_reporters_name_is_scrubbed_from_what_others_read(store: Store) {
    let api = Api::new(store).await;
    let c = cast(&api).await;
    let mut f = flash(Tlp::Green, "medium");
    f["text"] =
        json!("KANTO POWER's gateway beacons to 198.51.100.7 (Kanto Power on-call: 03-0000-0000).");
    f["affected_service"] = json!("Kanto Power SCADA");
    let r = api.post("/api/v1/reports", Some(&c.reporter), &f).await;
    let path = format!("/api/v1/reports/{}", r.body["id"]);
    let stage = json!({"stage": "interim", "text": "Kanto Power isolated it.",
                       "detail": {"notes": ["seen by kanto power SOC"], "count": 3}});
    assert_eq!(
        api.post(&format!("{path}/stages"), Some(&c.reporter), &stage)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    // The reporter reads it as written, with its source.
    let v = api.get(&path, Some(&c.reporter)).await.body;
    assert_eq!(v["text"], f["text"]);
    assert_eq!(
        v["stages"][0]["detail"]["notes"][0],
        "seen by kanto power SOC"
    );
    assert_eq!(v["source"]["sealed"], false);
    assert_eq!(v["source"]["name"], "Kanto Power");
    // Everyone else — the centre's analysts included (PP-12, invariant 6) — reads what
    // happened, not who reported it, on both read paths.
    let mut seen = Vec::new();
    for token in [&c.other, &c.analyst] {
        seen.push(api.get(&path, Some(token)).await.body);
        seen.push(api.get("/api/v1/reports", Some(token)).await.body["reports"][0].clone());
    }
    for v in seen {
        assert_eq!(v["source"]["sealed"], true, "{v}");
        assert!(v["source"]["handle"].as_str().unwrap().starts_with("src-"));
        assert!(v["audience"].get("reporter").is_none(), "{v}");
        assert_eq!(
            v["text"],
            "[redacted]'s gateway beacons to 198.51.100.7 ([redacted] on-call: 03-0000-0000)."
        );
        assert_eq!(v["affected_service"], "[redacted] SCADA");
        assert_eq!(v["stages"][0]["text"], "[redacted] isolated it.");
        assert_eq!(
            v["stages"][0]["detail"],
            json!({"notes": ["seen by [redacted] SOC"], "count": 3})
        );
        assert!(!v.to_string().to_ascii_lowercase().contains("kanto"), "{v}");
    }
}

store_test_suite!(
    the_reporters_name_is_scrubbed_from_what_others_read,
    the_reports_api_is_documented,
    recipients_rate_a_report_and_the_reporter_sees_only_counts,
    every_marking_reaches_whom_it_allows_on_every_read_path,
    a_retried_submission_is_not_stored_twice,
    a_stix_bundle_becomes_a_report_under_its_marking,
    malformed_input_is_refused_and_nothing_is_stored,
    stages_fall_due_go_overdue_and_are_received,
    a_raised_impact_routes_the_report_further,
    reports_are_filtered_and_paged,
);
