//! The TAXII 2.1 server through the router, in-process, on both backends (issue 8 item 5;
//! PP-9, PP-11, DESIGN invariant 5): every output path shows each recipient only what
//! the marking allows; paging by `next` and `added_after` is exact; bad envelopes are
//! refused with a TAXII error and store nothing.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine;
use chrono::Duration;
use http_body_util::BodyExt;
use mamori_core::time::ManualClock;
use mamori_core::{Clearance, OrgKind, Role, Sector, Tlp};
use mamori_server::ServerConfig;
use mamori_store::{NewOrg, NewUser, StixQuery, Store, VersionMatch, store_test_suite};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const TAXII: &str = "application/taxii+json;version=2.1";
const OBJECTS: &str = "/taxii2/api/collections/indicators/objects/";

mod common;

use common::t0;

struct Api {
    app: Router,
    store: Store,
    clock: Arc<ManualClock>,
    /// The centre's administrator.
    admin: String,
    /// An analyst of the centre.
    analyst: String,
    /// A member of operator A (the poster).
    a: String,
    /// Another member of operator A.
    a2: String,
    /// A member of operator B.
    b: String,
    /// The overseer (may not read the collections).
    overseer: String,
    _keys: tempfile::TempDir,
}

impl Api {
    async fn new(store: Store, max_content_length: usize) -> Api {
        let config = ServerConfig {
            taxii_max_content_length: max_content_length,
            ..ServerConfig::default()
        };
        let c = common::Centre::start(store, config).await;
        let mut tx = c.store.begin().await.unwrap();
        let centre = tx.orgs().await.unwrap()[0].id;
        let mut tokens = Vec::new();
        for (kind, org_name, user, role) in [
            (None, "", "analyst", Role::Analyst),
            (Some(OrgKind::Operator), "Operator A", "a", Role::Member),
            (None, "", "a2", Role::Member),
            (Some(OrgKind::Operator), "Operator B", "b", Role::Member),
            (Some(OrgKind::Overseer), "Overseer", "o", Role::Overseer),
        ] {
            let org_id = match kind {
                None if user == "analyst" => centre,
                None => tx.orgs().await.unwrap().last().unwrap().id,
                Some(kind) => {
                    let new = NewOrg {
                        kind,
                        sector: (kind == OrgKind::Operator).then_some(Sector::Electricity),
                        name: org_name.into(),
                    };
                    tx.create_org(&new, t0()).await.unwrap().id
                }
            };
            let u = tx
                .create_user(
                    &NewUser {
                        org: org_id,
                        name: user.into(),
                        role,
                        clearance: Clearance::None,
                    },
                    t0(),
                )
                .await
                .unwrap();
            let (_, secret) = tx
                .issue_token(u.id, "test", t0() + Duration::days(30), t0())
                .await
                .unwrap();
            tokens.push(secret.expose().to_owned());
        }
        tx.commit().await.unwrap();
        let mut t = tokens.into_iter();
        let mut next = || t.next().unwrap();
        Api {
            app: c.app,
            store: c.store,
            clock: c.clock,
            admin: c.admin,
            analyst: next(),
            a: next(),
            a2: next(),
            b: next(),
            overseer: next(),
            _keys: c.keys,
        }
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, HeaderMap, Value) {
        self.send(
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::ACCEPT, TAXII)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: impl Into<Body>,
    ) -> (StatusCode, HeaderMap, Value) {
        self.send(
            Request::post(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::ACCEPT, TAXII)
                .header(header::CONTENT_TYPE, content_type)
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    async fn post(&self, token: &str, objects: Vec<Value>) -> (StatusCode, HeaderMap, Value) {
        self.post_raw(
            OBJECTS,
            token,
            TAXII,
            json!({ "objects": objects }).to_string(),
        )
        .await
    }

    /// Every version stored, in every collection, for "nothing stored" checks.
    async fn stored(&self) -> usize {
        let mut tx = self.store.begin_read().await.unwrap();
        let mut n = 0;
        for c in tx.taxii_collections().await.unwrap() {
            let mut q = StixQuery::new(100_000);
            q.versions = vec![VersionMatch::All];
            n += tx.stix_objects(&c.id, &q).await.unwrap().len();
        }
        n
    }
}

fn uuid(n: u32) -> String {
    format!("8e2e2d2b-17d4-4cbf-938f-{n:012}")
}

fn indicator(n: u32, modified: &str, tlp: Option<Tlp>) -> Value {
    let mut o = json!({
        "type": "indicator", "spec_version": "2.1", "id": format!("indicator--{}", uuid(n)),
        "created": "2026-01-01T00:00:00.000Z", "modified": modified,
        "pattern": format!("[ipv4-addr:value = '198.51.100.{}']", n % 250),
        "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"
    });
    if let Some(t) = tlp {
        o["object_marking_refs"] = json!([t.stix_id()]);
    }
    o
}

fn assert_taxii_error(r: &(StatusCode, HeaderMap, Value), status: StatusCode) {
    assert_eq!(r.0, status, "{}", r.2);
    assert_eq!(r.1[header::CONTENT_TYPE], TAXII);
    assert_eq!(r.2["http_status"], status.as_u16().to_string(), "{}", r.2);
    assert!(r.2["title"].as_str().unwrap().len() > 3, "{}", r.2);
}

fn ids_of(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn discovery_root_and_collections(store: Store) {
    let api = Api::new(store, 1 << 20).await;
    let (s, h, d) = api.get("/taxii2/", &api.a).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], TAXII);
    assert_eq!(d["api_roots"], json!(["/taxii2/api/"]));
    let (_, _, r) = api.get("/taxii2/api/", &api.a).await;
    assert_eq!(r["versions"], json!([TAXII]));
    assert_eq!(r["max_content_length"], 1 << 20);
    // A member reads both and writes only indicators; the overseer sees no collection.
    let (_, _, c) = api.get("/taxii2/api/collections/", &api.a).await;
    let flags: Vec<(String, bool, bool)> = c["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["alias"].as_str().unwrap().to_owned(),
                c["can_read"].as_bool().unwrap(),
                c["can_write"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            ("indicators".to_owned(), true, true),
            ("reports".to_owned(), true, false)
        ]
    );
    let id = c["collections"][0]["id"].as_str().unwrap().to_owned();
    let (s, _, one) = api
        .get(&format!("/taxii2/api/collections/{id}/"), &api.a)
        .await;
    assert_eq!((s, &one["alias"]), (StatusCode::OK, &json!("indicators")));
    let (s, _, none) = api.get("/taxii2/api/collections/", &api.overseer).await;
    assert_eq!((s, none), (StatusCode::OK, json!({})));
    let r = api.get(OBJECTS, &api.overseer).await;
    assert_taxii_error(&r, StatusCode::NOT_FOUND);
    let r = api
        .get("/taxii2/api/collections/nonesuch/objects/", &api.a)
        .await;
    assert_taxii_error(&r, StatusCode::NOT_FOUND);
    // HTTP Basic carries the same token (for clients that only speak Basic).
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("anyone:{}", api.a));
    let r = api
        .send(
            Request::get("/taxii2/")
                .header(header::AUTHORIZATION, format!("Basic {basic}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.2);
    let wrong = base64::engine::general_purpose::STANDARD.encode("anyone:mamori_1_nope");
    let r = api
        .send(
            Request::get("/taxii2/")
                .header(header::AUTHORIZATION, format!("Basic {wrong}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_taxii_error(&r, StatusCode::UNAUTHORIZED);
    assert!(r.1.contains_key(header::WWW_AUTHENTICATE));
    let r = api
        .send(Request::get("/taxii2/").body(Body::empty()).unwrap())
        .await;
    assert_taxii_error(&r, StatusCode::UNAUTHORIZED);
}

/// The TLP table over every TAXII output path: objects, object, versions, manifest.
async fn every_output_path_shows_only_what_the_marking_allows(store: Store) {
    let api = Api::new(store, 1 << 20).await;
    // Operator A posts one indicator per marking, plus one unmarked (AMBER by default).
    let markings: [(u32, Option<Tlp>); 6] = [
        (1, Some(Tlp::Clear)),
        (2, Some(Tlp::Green)),
        (3, Some(Tlp::Amber)),
        (4, Some(Tlp::AmberStrict)),
        (5, Some(Tlp::Red)),
        (6, None),
    ];
    let objs = markings
        .iter()
        .map(|(n, t)| indicator(*n, "2026-01-01T00:00:00.000Z", *t))
        .collect();
    let (s, _, status) = api.post(&api.a, objs).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{status}");
    assert_eq!(
        (&status["status"], &status["success_count"]),
        (&json!("complete"), &json!(6))
    );
    // Who sees which: A's own members see everything, the centre the audience markings
    // but not RED, B only the community ones.
    let table: [(&str, &str, [bool; 6]); 5] = [
        ("poster", &api.a, [true; 6]),
        ("poster's colleague", &api.a2, [true; 6]),
        (
            "centre admin",
            &api.admin,
            [true, true, true, true, false, true],
        ),
        (
            "centre analyst",
            &api.analyst,
            [true, true, true, true, false, true],
        ),
        (
            "other operator",
            &api.b,
            [true, true, false, false, false, false],
        ),
    ];
    for (who, token, sees) in table {
        let want: Vec<String> = markings
            .iter()
            .zip(sees)
            .filter(|(_, s)| *s)
            .map(|((n, _), _)| format!("indicator--{}", uuid(*n)))
            .collect();
        let (_, _, env) = api.get(OBJECTS, token).await;
        assert_eq!(ids_of(&env, "objects"), want, "objects, {who}");
        let (_, _, man) = api
            .get("/taxii2/api/collections/indicators/manifest/", token)
            .await;
        assert_eq!(ids_of(&man, "objects"), want, "manifest, {who}");
        for ((n, _), see) in markings.iter().zip(sees) {
            let id = format!("indicator--{}", uuid(*n));
            let (s, _, one) = api.get(&format!("{OBJECTS}{id}/"), token).await;
            let (vs, _, versions) = api.get(&format!("{OBJECTS}{id}/versions/"), token).await;
            if see {
                assert_eq!(
                    (s, ids_of(&one, "objects")),
                    (StatusCode::OK, vec![id.clone()]),
                    "object, {who}"
                );
                assert_eq!(
                    versions["versions"],
                    json!(["2026-01-01T00:00:00.000Z"]),
                    "versions, {who}"
                );
            } else {
                assert_eq!(s, StatusCode::NOT_FOUND, "object {id}, {who}: {one}");
                assert_eq!(
                    vs,
                    StatusCode::NOT_FOUND,
                    "versions {id}, {who}: {versions}"
                );
                assert!(!one.to_string().contains("198.51.100"), "{one}");
            }
        }
    }
}

async fn paging_is_exact(store: Store) {
    let api = Api::new(store, 1 << 20).await;
    let objs: Vec<Value> = (0..25)
        .map(|n| indicator(n, "2026-01-01T00:00:00.000Z", Some(Tlp::Green)))
        .collect();
    assert_eq!(api.post(&api.a, objs).await.0, StatusCode::ACCEPTED);
    // B posts a RED one in between: A never sees it, and A's pages are still exact.
    api.clock.advance(Duration::seconds(1));
    assert_eq!(
        api.post(
            &api.b,
            vec![indicator(100, "2026-01-01T00:00:00.000Z", Some(Tlp::Red))]
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    api.clock.advance(Duration::seconds(1));
    let later: Vec<Value> = (25..30)
        .map(|n| indicator(n, "2026-01-01T00:00:00.000Z", Some(Tlp::Green)))
        .collect();
    assert_eq!(api.post(&api.a, later).await.0, StatusCode::ACCEPTED);

    let mut got = Vec::new();
    let mut url = format!("{OBJECTS}?limit=10");
    let mut pages = 0;
    loop {
        let (s, h, env) = api.get(&url, &api.a).await;
        assert_eq!(s, StatusCode::OK, "{env}");
        pages += 1;
        let ids = ids_of(&env, "objects");
        assert!(ids.len() <= 10);
        if !ids.is_empty() {
            assert!(h.contains_key("x-taxii-date-added-first"));
            assert!(h["x-taxii-date-added-first"] <= h["x-taxii-date-added-last"]);
        }
        got.extend(ids);
        if env["more"] != json!(true) {
            assert!(env.get("next").is_none());
            break;
        }
        url = format!("{OBJECTS}?limit=10&next={}", env["next"].as_str().unwrap());
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..30).map(|n| format!("indicator--{}", uuid(n))).collect();
    assert_eq!(got, want);
    // added_after: only what the last POST added (after the RED one's date_added).
    let (_, _, all) = api
        .get("/taxii2/api/collections/indicators/manifest/", &api.b)
        .await;
    let red_added = all["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == format!("indicator--{}", uuid(100)))
        .unwrap()["date_added"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, _, env) = api
        .get(&format!("{OBJECTS}?added_after={red_added}"), &api.a)
        .await;
    let want: Vec<String> = (25..30)
        .map(|n| format!("indicator--{}", uuid(n)))
        .collect();
    assert_eq!(ids_of(&env, "objects"), want);
    // match[type] and match[id].
    let (_, _, env) = api
        .get(&format!("{OBJECTS}?match[type]=note"), &api.a)
        .await;
    assert_eq!(env, json!({"more": false}));
    let (_, _, env) = api
        .get(
            &format!(
                "{OBJECTS}?match[id]=indicator--{},indicator--{}",
                uuid(3),
                uuid(100)
            ),
            &api.a,
        )
        .await;
    assert_eq!(ids_of(&env, "objects"), [format!("indicator--{}", uuid(3))]);
}

async fn versions_and_owner_only_deletion(store: Store) {
    let api = Api::new(store, 1 << 20).await;
    let id = format!("indicator--{}", uuid(1));
    for m in ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"] {
        assert_eq!(
            api.post(&api.a, vec![indicator(1, m, Some(Tlp::Green))])
                .await
                .0,
            StatusCode::ACCEPTED
        );
    }
    let (_, _, v) = api.get(&format!("{OBJECTS}{id}/versions/"), &api.b).await;
    assert_eq!(
        v["versions"],
        json!(["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"])
    );
    let (_, _, last) = api.get(&format!("{OBJECTS}{id}/"), &api.b).await;
    assert_eq!(last["objects"][0]["modified"], "2026-02-01T00:00:00.000Z");
    let (_, _, first) = api
        .get(&format!("{OBJECTS}{id}/?match[version]=first"), &api.b)
        .await;
    assert_eq!(first["objects"][0]["modified"], "2026-01-01T00:00:00.000Z");
    let (_, _, all) = api
        .get(&format!("{OBJECTS}?match[version]=all"), &api.b)
        .await;
    assert_eq!(all["objects"].as_array().unwrap().len(), 2);

    let del = |token: String| {
        let api = &api;
        let id = id.clone();
        async move {
            api.send(
                Request::delete(format!("{OBJECTS}{id}/"))
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let r = del(api.b.clone()).await;
    assert_taxii_error(&r, StatusCode::NOT_FOUND);
    assert_eq!(api.stored().await, 2);
    // The analyst may write to the collection, but did not post this object.
    let r = del(api.analyst.clone()).await;
    assert_taxii_error(&r, StatusCode::NOT_FOUND);
    let r = del(api.a2.clone()).await;
    assert_eq!(r.0, StatusCode::OK);
    assert_eq!(api.stored().await, 0);
}

async fn status_belongs_to_the_poster(store: Store) {
    let api = Api::new(store, 1 << 20).await;
    let (_, _, st) = api
        .post(&api.a, vec![indicator(1, "2026-01-01T00:00:00.000Z", None)])
        .await;
    let path = format!("/taxii2/api/status/{}/", st["id"].as_str().unwrap());
    let (s, _, again) = api.get(&path, &api.a2).await;
    assert_eq!((s, &again), (StatusCode::OK, &st));
    assert_eq!(
        again["successes"][0],
        json!({"id": format!("indicator--{}", uuid(1)), "version": "2026-01-01T00:00:00.000Z"})
    );
    let r = api.get(&path, &api.b).await;
    assert_taxii_error(&r, StatusCode::NOT_FOUND);
}

async fn bad_envelopes_store_nothing(store: Store) {
    let api = Api::new(store, 4096).await;
    let good = indicator(1, "2026-01-01T00:00:00.000Z", None);
    let mut invalid = good.clone();
    invalid.as_object_mut().unwrap().remove("pattern");
    // A marking one character away from TLP:RED's official id.
    let mut forged = good.clone();
    forged["object_marking_refs"] =
        json!(["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c2"]);
    let big: Vec<Value> = (0..40)
        .map(|n| indicator(n, "2026-01-01T00:00:00.000Z", None))
        .collect();
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            "{\"objects\": [".into(),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "not an envelope",
            "[1]".into(),
            StatusCode::BAD_REQUEST,
            "envelope",
        ),
        (
            "invalid STIX",
            json!({"objects": [good.clone(), invalid]}).to_string(),
            StatusCode::BAD_REQUEST,
            "pattern",
        ),
        (
            "unknown marking",
            json!({"objects": [good.clone(), forged]}).to_string(),
            StatusCode::BAD_REQUEST,
            "resembles TLP:RED",
        ),
        (
            "oversized envelope",
            json!({"objects": big}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "max_content_length",
        ),
    ];
    for (what, body, status, says) in cases {
        let r = api.post_raw(OBJECTS, &api.a, TAXII, body).await;
        assert_taxii_error(&r, status);
        let d = r.2["description"].as_str().unwrap();
        assert!(d.contains(says), "{what}: {d}");
        assert_eq!(api.stored().await, 0, "{what} stored something");
    }
    let body = json!({"objects": [good.clone()]}).to_string();
    let r = api
        .post_raw(OBJECTS, &api.a, "application/json", body.clone())
        .await;
    assert_taxii_error(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = api
        .send(
            Request::get(OBJECTS)
                .header(header::AUTHORIZATION, format!("Bearer {}", api.a))
                .header(header::ACCEPT, "application/taxii+json;version=2.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_taxii_error(&r, StatusCode::NOT_ACCEPTABLE);
    // A member may not write to reports.
    let r = api
        .post_raw(
            "/taxii2/api/collections/reports/objects/",
            &api.a,
            TAXII,
            body.clone(),
        )
        .await;
    assert_taxii_error(&r, StatusCode::FORBIDDEN);
    let r = api
        .get(&format!("{OBJECTS}?match[version]=newest"), &api.a)
        .await;
    assert_taxii_error(&r, StatusCode::BAD_REQUEST);
    assert_eq!(api.stored().await, 0);
    // And the good envelope goes in.
    let r = api.post_raw(OBJECTS, &api.a, TAXII, body).await;
    assert_eq!(r.0, StatusCode::ACCEPTED, "{}", r.2);
    assert_eq!(api.stored().await, 1);
}

store_test_suite!(
    discovery_root_and_collections,
    every_output_path_shows_only_what_the_marking_allows,
    paging_is_exact,
    versions_and_owner_only_deletion,
    status_belongs_to_the_poster,
    bad_envelopes_store_nothing,
);
