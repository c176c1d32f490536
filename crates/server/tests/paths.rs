//! TLP 2.0 on every output path (issue 8 item 3; DESIGN invariant 5; PP-11), through the
//! router, in-process, on both backends: one declarative table of every marking × kind of
//! recipient × output path — report get and list, TAXII objects, object by id and
//! manifest, the export, the event stream — and the server's log lines. Also: the event
//! stream's order, wake-up and `Last-Event-ID` resumption; TAXII exclusions by name; the
//! configurable regime; TAXII errors for unknown paths.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Duration;
use http_body_util::BodyExt;
use mamori_core::time::rfc3339;
use mamori_core::{OrgId, Tlp};
use mamori_server::{ReportsConfig, ServerConfig};
use mamori_store::{Store, store_test_suite};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tower::ServiceExt;

mod common;
#[path = "../../stix/tests/common/python.rs"]
mod python;

use common::t0;

// ---------------------------------------------------------------------------------------
// The server's log, captured

/// Everything the server logged in this test binary (all levels, all targets).
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(w.clone()))
            .finish();
        tracing::subscriber::set_global_default(sub).unwrap();
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&log().lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------------------------
// The centre and its callers

struct Api {
    app: Router,
    store: Store,
    admin: String,
    _keys: tempfile::TempDir,
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl Api {
    async fn new(store: Store, config: ServerConfig) -> Api {
        log();
        let c = common::Centre::start(store, config).await;
        Api {
            app: c.app,
            store: c.store,
            admin: c.admin,
            _keys: c.keys,
        }
    }

    /// A centre whose event stream polls the store every `millis`.
    async fn polling(store: Store, millis: u64) -> Api {
        Api::new(
            store,
            ServerConfig {
                events_poll_millis: millis,
                ..ServerConfig::default()
            },
        )
        .await
    }

    fn request(
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Request<Body> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Resp {
        let resp = self
            .app
            .clone()
            .oneshot(Self::request(method, path, token, headers, body))
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call("GET", path, token, &[], None).await
    }

    async fn post_json(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.call(
            "POST",
            path,
            Some(token),
            &[("content-type", "application/json")],
            Some(body.to_string()),
        )
        .await
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let r = self.post_json(path, &self.admin.clone(), &body).await;
        assert!(r.status.is_success(), "{path}: {}", r.text);
        r.json()
    }

    async fn org(&self, kind: &str, name: &str) -> OrgId {
        OrgId(
            self.admin(
                "/api/v1/admin/orgs",
                json!({"kind": kind, "sector": "electricity", "name": name}),
            )
            .await["id"]
                .as_i64()
                .unwrap(),
        )
    }

    async fn user(&self, org: OrgId, name: &str, role: &str) -> (i64, String) {
        let u = self
            .admin(
                "/api/v1/admin/users",
                json!({"org": org.0, "name": name, "role": role}),
            )
            .await;
        let t = self
            .admin("/api/v1/admin/tokens", json!({"user": u["id"]}))
            .await;
        (
            u["id"].as_i64().unwrap(),
            t["secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn client(&self, provider: OrgId, client: OrgId) {
        let mut tx = self.store.begin().await.unwrap();
        tx.add_client(provider, client, t0()).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn report(&self, token: &str, tlp: Tlp, text: &str, extra: Value) -> i64 {
        let mut body = json!({
            "detected_at": rfc3339(t0() - Duration::minutes(30)),
            "sector": "electricity",
            "affected_service": "SCADA gateway",
            "impact": "low",
            "cause": "unknown",
            "tlp": tlp,
            "text": text,
            "purposes": ["response"],
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self.post_json("/api/v1/reports", token, &body).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        r.json()["id"].as_i64().unwrap()
    }

    async fn taxii_post(&self, token: &str, objects: Vec<Value>) -> Value {
        let r = self
            .call(
                "POST",
                "/taxii2/api/collections/indicators/objects/",
                Some(token),
                &[("content-type", TAXII), ("accept", TAXII)],
                Some(json!({ "objects": objects }).to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        r.json()
    }

    /// Every page of the export, as one bundle's objects.
    async fn export(&self, token: Option<&str>, query: &str) -> (StatusCode, Vec<Value>) {
        let mut objects = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let sep = if query.is_empty() { "?" } else { "&" };
            let path = match &after {
                Some(a) => format!("/api/v1/export?{query}{sep}after={a}"),
                None => format!("/api/v1/export?{query}"),
            };
            let r = self.get(&path, token).await;
            if r.status != StatusCode::OK {
                return (r.status, objects);
            }
            assert_eq!(
                r.headers[header::CONTENT_TYPE],
                "application/stix+json;version=2.1"
            );
            let b = r.json();
            assert_eq!(b["type"], "bundle");
            // STIX 2.1: `objects`, when present, holds one or more.
            if let Some(o) = b.get("objects") {
                assert!(!o.as_array().unwrap().is_empty(), "{b}");
                objects.extend(o.as_array().unwrap().iter().cloned());
            }
            match r.headers.get("mamori-next") {
                Some(n) => after = Some(n.to_str().unwrap().replace(':', "%3A")),
                None => return (StatusCode::OK, objects),
            }
        }
    }

    /// Subscribes to the event stream and reads until `stop` holds for an event (or 20 s).
    async fn events(
        &self,
        token: Option<&str>,
        last_id: Option<&str>,
        stop: impl Fn(&Sse) -> bool,
    ) -> (StatusCode, Vec<Sse>) {
        let mut headers = vec![];
        if let Some(l) = last_id {
            headers.push(("last-event-id", l));
        }
        let resp = self
            .app
            .clone()
            .oneshot(Self::request(
                "GET",
                "/api/v1/events",
                token,
                &headers,
                None,
            ))
            .await
            .unwrap();
        let status = resp.status();
        if status != StatusCode::OK {
            return (status, vec![]);
        }
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
        let mut body = resp.into_body();
        let mut buf = String::new();
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .expect("the awaited event arrives")
                .unwrap()
                .unwrap();
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.push_str(&String::from_utf8_lossy(&data));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut e = Sse::default();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        e.id = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        e.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        e.data.push_str(v);
                    }
                }
                if e.event.is_empty() {
                    continue; // a keep-alive comment
                }
                let done = stop(&e);
                out.push(e);
                if done {
                    return (status, out);
                }
            }
        }
    }
}

const TAXII: &str = "application/taxii+json;version=2.1";

#[derive(Debug, Default, Clone)]
struct Sse {
    id: String,
    event: String,
    data: String,
}

fn indicator(n: u32, tlp: Tlp, description: &str, exclude: &[&str]) -> Value {
    let mut o = json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--8e2e2d2b-17d4-4cbf-938f-{n:012}"),
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "name": "C2 address", "description": description,
        "indicator_types": ["malicious-activity"],
        "pattern": format!("[ipv4-addr:value = '198.51.100.{n}']"),
        "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
        "object_marking_refs": [tlp.stix_id()],
    });
    if !exclude.is_empty() {
        o["x_mamori_exclude"] = json!(exclude);
    }
    o
}

// ---------------------------------------------------------------------------------------
// The table

/// The kinds of recipient (issue 8 item 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    /// A member of the organisation that reported or posted.
    Originator,
    /// A member of a client of the originator (the originator is no recipient).
    ClientOfOriginator,
    /// A member of a client of a recipient organisation (reports: the organisation the
    /// reporter shared with; TAXII: the centre).
    ClientOfRecipient,
    /// A member of an organisation with no part in it.
    Community,
    /// A member of the organisation the originator excluded (it is also a client of the
    /// centre and of the recipient: exclusion wins).
    Excluded,
    /// A person the reporter named as recipient (TAXII names no one).
    NamedIndividual,
    /// An analyst of the coordination centre.
    CentreAnalyst,
    /// No credentials.
    Anonymous,
}

const EVERYONE: [Who; 8] = [
    Who::Originator,
    Who::ClientOfOriginator,
    Who::ClientOfRecipient,
    Who::Community,
    Who::Excluded,
    Who::NamedIndividual,
    Who::CentreAnalyst,
    Who::Anonymous,
];

/// The output paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    ReportGet,
    ReportList,
    TaxiiObjects,
    TaxiiObject,
    TaxiiManifest,
    ExportReports,
    ExportObjects,
    StreamReports,
    StreamObjects,
}

const PATHS: [Path; 9] = [
    Path::ReportGet,
    Path::ReportList,
    Path::TaxiiObjects,
    Path::TaxiiObject,
    Path::TaxiiManifest,
    Path::ExportReports,
    Path::ExportObjects,
    Path::StreamReports,
    Path::StreamObjects,
];

/// One row per expectation: on this path, this recipient receives the item marked
/// CLEAR, GREEN, AMBER, AMBER+STRICT, RED (`Y`) or not (`.`). The report is shared with a
/// recipient organisation and a named person and excludes one organisation; the TAXII
/// object (posted by the same organisation) excludes the same organisation by name.
#[rustfmt::skip]
const TABLE: &[(Path, Who, &str)] = {
    use Path::*;
    use Who::*;
    &[
        // Reports: mamori_share::view::visible (the centre's analysts handle RED too).
        (ReportGet, Originator, "YYYYY"),
        (ReportGet, ClientOfOriginator, "YY..."),
        (ReportGet, ClientOfRecipient, "YYY.."),
        (ReportGet, Community, "YY..."),
        (ReportGet, Excluded, "....."),
        (ReportGet, NamedIndividual, "YYYYY"),
        (ReportGet, CentreAnalyst, "YYYYY"),
        (ReportGet, Anonymous, "....."),
        (ReportList, Originator, "YYYYY"),
        (ReportList, ClientOfOriginator, "YY..."),
        (ReportList, ClientOfRecipient, "YYY.."),
        (ReportList, Community, "YY..."),
        (ReportList, Excluded, "....."),
        (ReportList, NamedIndividual, "YYYYY"),
        (ReportList, CentreAnalyst, "YYYYY"),
        (ReportList, Anonymous, "....."),
        (ExportReports, Originator, "YYYYY"),
        (ExportReports, ClientOfOriginator, "YY..."),
        (ExportReports, ClientOfRecipient, "YYY.."),
        (ExportReports, Community, "YY..."),
        (ExportReports, Excluded, "....."),
        (ExportReports, NamedIndividual, "YYYYY"),
        (ExportReports, CentreAnalyst, "YYYYY"),
        (ExportReports, Anonymous, "....."),
        (StreamReports, Originator, "YYYYY"),
        (StreamReports, ClientOfOriginator, "YY..."),
        (StreamReports, ClientOfRecipient, "YYY.."),
        (StreamReports, Community, "YY..."),
        (StreamReports, Excluded, "....."),
        (StreamReports, NamedIndividual, "YYYYY"),
        (StreamReports, CentreAnalyst, "YYYYY"),
        (StreamReports, Anonymous, "....."),
        // TAXII objects: mamori_core::tlp::may_see; the recipient is the centre.
        (TaxiiObjects, Originator, "YYYYY"),
        (TaxiiObjects, ClientOfOriginator, "YY..."),
        (TaxiiObjects, ClientOfRecipient, "YYY.."),
        (TaxiiObjects, Community, "YY..."),
        (TaxiiObjects, Excluded, "....."),
        (TaxiiObjects, NamedIndividual, "YY..."),
        (TaxiiObjects, CentreAnalyst, "YYYY."),
        (TaxiiObjects, Anonymous, "....."),
        (TaxiiObject, Originator, "YYYYY"),
        (TaxiiObject, ClientOfOriginator, "YY..."),
        (TaxiiObject, ClientOfRecipient, "YYY.."),
        (TaxiiObject, Community, "YY..."),
        (TaxiiObject, Excluded, "....."),
        (TaxiiObject, NamedIndividual, "YY..."),
        (TaxiiObject, CentreAnalyst, "YYYY."),
        (TaxiiObject, Anonymous, "....."),
        (TaxiiManifest, Originator, "YYYYY"),
        (TaxiiManifest, ClientOfOriginator, "YY..."),
        (TaxiiManifest, ClientOfRecipient, "YYY.."),
        (TaxiiManifest, Community, "YY..."),
        (TaxiiManifest, Excluded, "....."),
        (TaxiiManifest, NamedIndividual, "YY..."),
        (TaxiiManifest, CentreAnalyst, "YYYY."),
        (TaxiiManifest, Anonymous, "....."),
        (ExportObjects, Originator, "YYYYY"),
        (ExportObjects, ClientOfOriginator, "YY..."),
        (ExportObjects, ClientOfRecipient, "YYY.."),
        (ExportObjects, Community, "YY..."),
        (ExportObjects, Excluded, "....."),
        (ExportObjects, NamedIndividual, "YY..."),
        (ExportObjects, CentreAnalyst, "YYYY."),
        (ExportObjects, Anonymous, "....."),
        (StreamObjects, Originator, "YYYYY"),
        (StreamObjects, ClientOfOriginator, "YY..."),
        (StreamObjects, ClientOfRecipient, "YYY.."),
        (StreamObjects, Community, "YY..."),
        (StreamObjects, Excluded, "....."),
        (StreamObjects, NamedIndividual, "YY..."),
        (StreamObjects, CentreAnalyst, "YYYY."),
        (StreamObjects, Anonymous, "....."),
    ]
};

/// What may appear in the server's log, per marking: only CLEAR report text and object
/// bodies may (and need not); nothing marked above CLEAR ever does.
const LOG_MAY_HOLD: &str = "?....";

fn report_marker(i: usize) -> String {
    format!("zq-report-text-{i}-kx")
}

fn object_marker(i: usize) -> String {
    format!("zq-object-body-{i}-kx")
}

fn object_id(i: usize) -> String {
    format!("indicator--8e2e2d2b-17d4-4cbf-938f-{:012}", 100 + i)
}

async fn every_marking_recipient_and_output_path_follows_the_table(store: Store) {
    let api = Api::new(
        store,
        ServerConfig {
            events_poll_millis: 50,
            ..ServerConfig::default()
        },
    )
    .await;
    let centre = OrgId(1);
    let originator = api.org("operator", "Kanto Power").await;
    let client_of_originator = api.org("operator", "Originator's Client").await;
    let recipient = api.org("operator", "Recipient Org").await;
    let client_of_recipient = api.org("operator", "Recipient's Client").await;
    let community = api.org("operator", "Kansai Gas").await;
    let excluded = api.org("sector_authority", "Supervising Ministry").await;
    let named_org = api.org("operator", "Tohoku Rail").await;
    api.client(originator, client_of_originator).await;
    api.client(recipient, client_of_recipient).await;
    api.client(centre, client_of_recipient).await;
    // The excluded organisation is a client of the recipient and of the centre: its
    // exclusion still wins.
    api.client(recipient, excluded).await;
    api.client(centre, excluded).await;

    let mut tokens = std::collections::BTreeMap::new();
    tokens.insert(
        Who::Originator,
        api.user(originator, "sato", "member").await.1,
    );
    tokens.insert(
        Who::ClientOfOriginator,
        api.user(client_of_originator, "suzuki", "member").await.1,
    );
    tokens.insert(
        Who::ClientOfRecipient,
        api.user(client_of_recipient, "takahashi", "member").await.1,
    );
    tokens.insert(Who::Community, api.user(community, "ito", "member").await.1);
    tokens.insert(Who::Excluded, api.user(excluded, "kato", "member").await.1);
    let (named_id, named) = api.user(named_org, "watanabe", "member").await;
    tokens.insert(Who::NamedIndividual, named);
    tokens.insert(
        Who::CentreAnalyst,
        api.user(centre, "yamamoto", "analyst").await.1,
    );
    let reporter = tokens[&Who::Originator].clone();

    // One report and one TAXII object per marking, then a CLEAR sentinel from elsewhere
    // that everyone signed in sees: once it arrives, the stream has sent all before it.
    let mut report_ids = Vec::new();
    for (i, tlp) in Tlp::ALL.iter().enumerate() {
        report_ids.push(
            api.report(
                &reporter,
                *tlp,
                &format!("Beaconing seen. {}", report_marker(i)),
                json!({"share_with": [recipient.0], "exclude": [excluded.0], "recipients": [named_id]}),
            )
            .await,
        );
    }
    let objects: Vec<Value> = Tlp::ALL
        .iter()
        .enumerate()
        .map(|(i, tlp)| {
            indicator(
                100 + i as u32,
                *tlp,
                &object_marker(i),
                &["Supervising Ministry"],
            )
        })
        .collect();
    let status = api.taxii_post(&reporter, objects).await;
    assert_eq!(status["success_count"], 5, "{status}");
    api.report(
        &tokens[&Who::Community],
        Tlp::Clear,
        "sentinel zq-sentinel-kx",
        json!({}),
    )
    .await;

    // What each recipient receives on each path, as text to look for markers in.
    let mut got: Vec<(Path, Who, String)> = Vec::new();
    let c = "/taxii2/api/collections/indicators";
    for who in EVERYONE {
        let token = tokens.get(&who).map(String::as_str);
        let taxii = |path: String| {
            let api = &api;
            async move {
                api.call("GET", &path, token, &[("accept", TAXII)], None)
                    .await
                    .text
            }
        };
        for path in PATHS {
            let received: String = match path {
                Path::ReportGet => {
                    let mut s = String::new();
                    for id in &report_ids {
                        let r = api.get(&format!("/api/v1/reports/{id}"), token).await;
                        if r.status == StatusCode::OK {
                            s.push_str(&r.text);
                        }
                    }
                    s
                }
                Path::ReportList => api.get("/api/v1/reports", token).await.text,
                Path::TaxiiObjects => taxii(format!("{c}/objects/")).await,
                Path::TaxiiObject => {
                    let mut s = String::new();
                    for i in 0..5 {
                        s.push_str(&taxii(format!("{c}/objects/{}/", object_id(i))).await);
                    }
                    s
                }
                Path::TaxiiManifest => taxii(format!("{c}/manifest/")).await,
                Path::ExportReports | Path::ExportObjects => {
                    let (_, objects) = api.export(token, "").await;
                    let kind = if path == Path::ExportReports {
                        "incident"
                    } else {
                        "indicator"
                    };
                    objects
                        .iter()
                        .filter(|o| o["type"] == kind)
                        .map(Value::to_string)
                        .collect()
                }
                Path::StreamReports | Path::StreamObjects => {
                    let (_, events) = api
                        .events(token, Some("0"), |e| e.data.contains("zq-sentinel-kx"))
                        .await;
                    let kind = if path == Path::StreamReports {
                        "report"
                    } else {
                        "object"
                    };
                    // In order: ids only grow.
                    let seqs: Vec<i64> = events
                        .iter()
                        .map(|e| e.id.split(':').next().unwrap().parse().unwrap())
                        .collect();
                    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
                    events
                        .iter()
                        .filter(|e| e.event == kind)
                        .map(|e| e.data.clone())
                        .collect()
                }
            };
            // Who excludes whom never leaves the centre, on any path, to anyone.
            assert!(
                !received.contains("x_mamori_exclude") && !received.contains("Ministry"),
                "{path:?} to {who:?} shows the exclusion: {received}"
            );
            got.push((path, who, received));
        }
    }

    // The table covers every path × recipient exactly once.
    let covered: BTreeSet<(Path, Who)> = TABLE.iter().map(|(p, w, _)| (*p, *w)).collect();
    assert_eq!(covered.len(), TABLE.len(), "a row is repeated");
    assert_eq!(
        covered.len(),
        PATHS.len() * EVERYONE.len(),
        "a row is missing"
    );

    let mut failures = Vec::new();
    for (path, who, expected) in TABLE {
        let received = &got
            .iter()
            .find(|(p, w, _)| p == path && w == who)
            .unwrap()
            .2;
        let row: String = (0..5)
            .map(|i| {
                let needle = match path {
                    Path::TaxiiManifest => object_id(i),
                    Path::TaxiiObjects
                    | Path::TaxiiObject
                    | Path::ExportObjects
                    | Path::StreamObjects => object_marker(i),
                    _ => report_marker(i),
                };
                if received.contains(&needle) { 'Y' } else { '.' }
            })
            .collect();
        if row != *expected {
            failures.push(format!(
                "{path:?} to {who:?}: expected {expected}, got {row}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The log: nothing marked above CLEAR, on any path, at any level.
    let text = log_text();
    assert!(
        text.contains("report received") && text.contains("TAXII objects added"),
        "the log was captured"
    );
    for (i, may) in LOG_MAY_HOLD.chars().enumerate() {
        if may == '.' {
            for needle in [report_marker(i), object_marker(i)] {
                assert!(
                    !text.contains(&needle),
                    "{} text is in the log",
                    Tlp::ALL[i]
                );
            }
        }
    }

    // What the originator exports (everything) validates with the OASIS stix2-validator.
    let (_, objects) = api.export(Some(&reporter), "").await;
    assert!(objects.iter().any(|o| o["type"] == "marking-definition"));
    validate(
        &json!({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": objects}),
    );
}

/// Validates a bundle with the OASIS `stix2-validator` when it is installed (strict, but
/// for 401: mamori's report fields travel as the custom property `x_mamori_report`).
fn validate(bundle: &Value) {
    if !python::have_module("stix2validator", "stix2-validator") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("export.json");
    std::fs::write(&p, bundle.to_string()).unwrap();
    let script = "import sys\nfrom stix2validator.scripts.stix2_validator import main\n\
                  sys.argv[0] = 'stix2_validator'\nsys.exit(main())";
    let file = p.display().to_string();
    let out = python::python3(&["-c", script, "--strict", "--disable", "401", &file]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stix2-validator refused the export:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("STIX JSON: Valid"), "{text}");
}

// ---------------------------------------------------------------------------------------
// The event stream

async fn the_stream_is_in_order_wakes_on_writes_and_resumes(store: Store) {
    let api = Api::new(
        store,
        ServerConfig {
            // Long: the live event below must come from the wake-up, not the poll.
            events_poll_millis: 60_000,
            ..ServerConfig::default()
        },
    )
    .await;
    let org = api.org("operator", "Kanto Power").await;
    let (_, t) = api.user(org, "sato", "member").await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(
            api.report(&t, Tlp::Green, &format!("stream report {n}"), json!({}))
                .await,
        );
    }
    // Replay from the start: the four reports, in order (each followed by the TAXII
    // event of its anonymised relayed copy, PP-12).
    let last_report = |e: &Sse| e.event == "report" && e.data.contains("stream report 3");
    let (_, all) = api.events(Some(&t), Some("0"), last_report).await;
    let all: Vec<Sse> = all.into_iter().filter(|e| e.event == "report").collect();
    let got: Vec<i64> = all
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, ids);
    // Resume after the second: the third and fourth only.
    let (_, rest) = api.events(Some(&t), Some(&all[1].id), last_report).await;
    let rest_ids: Vec<&str> = rest
        .iter()
        .filter(|e| e.event == "report")
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(rest_ids, [all[2].id.as_str(), all[3].id.as_str()]);

    // Live: a subscriber without Last-Event-ID starts at the newest event and is woken by
    // the next write through this instance.
    let app = api.app.clone();
    let t2 = t.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let body = json!({
            "detected_at": rfc3339(t0() - Duration::minutes(30)),
            "sector": "electricity", "affected_service": "SCADA gateway",
            "impact": "low", "cause": "unknown", "tlp": "green",
            "text": "live report", "purposes": ["response"],
        });
        let r = app
            .oneshot(Api::request(
                "POST",
                "/api/v1/reports",
                Some(&t2),
                &[("content-type", "application/json")],
                Some(body.to_string()),
            ))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    });
    let (_, live) = api
        .events(Some(&t), None, |e| {
            e.event == "report" && e.data.contains("live report")
        })
        .await;
    writer.await.unwrap();
    assert_eq!(live.len(), 1, "only what came after subscribing: {live:?}");

    // A token revoked while its stream is open ends the stream at the next read.
    let (_, t3) = api.user(org, "suzuki", "member").await;
    let token_id = t3.split('_').nth(1).unwrap().to_owned();
    let admin = api.admin.clone();
    let app = api.app.clone();
    let revoker = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let r = app
            .oneshot(Api::request(
                "POST",
                &format!("/api/v1/admin/tokens/{token_id}/revoke"),
                Some(&admin),
                &[],
                None,
            ))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    });
    let (_, ended) = api.events(Some(&t3), None, |e| e.event == "error").await;
    revoker.await.unwrap();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(ended[0].data.contains("revoked"), "{ended:?}");

    // Bad Last-Event-ID and no credentials are refused.
    let (s, _) = api.events(Some(&t), Some("yesterday"), |_| true).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api.events(None, None, |_| true).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

fn finding(n: u32) -> Value {
    use mamori_core::finding::{Clients, Evidence, Finding, FindingKind, IndicatorEvidence};
    let address = format!("198.51.{}.{}", 100 + n / 250, n % 250);
    let f = Finding {
        kind: FindingKind::Indicator,
        address: address.parse().unwrap(),
        port: 443,
        proto: 6,
        score: 0.9,
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

/// Carriers' findings in the stream, through the findings' own gate: AMBER reaches the
/// sending carrier and the centre, GREEN the community; a submission larger than one read
/// is sent in bounded reads and resumes inside itself.
async fn findings_reach_the_stream_as_their_tlp_allows(store: Store) {
    let api = Api::new(store, ServerConfig::default()).await;
    let carrier = api.org("carrier", "Carrier K").await;
    let other = api.org("carrier", "Carrier L").await;
    let (_, k) = api.user(carrier, "sensor-k", "member").await;
    let (_, l) = api.user(other, "sensor-l", "member").await;
    let (_, analyst) = api.user(OrgId(1), "yamada", "analyst").await;
    let post = |tlp: &'static str, from: u32, n: u32| {
        let api = &api;
        let k = k.clone();
        async move {
            let findings: Vec<Value> = (from..from + n).map(finding).collect();
            let r = api
                .post_json(
                    "/api/v1/findings",
                    &k,
                    &json!({"tlp": tlp, "findings": findings}),
                )
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        }
    };
    post("amber", 0, 2).await;
    post("green", 2, 150).await;
    let last = "\"198.51.100.151\"";
    for (who, want) in [(&k, 152), (&l, 150), (&analyst, 152)] {
        let (_, got) = api
            .events(Some(who), Some("0"), |e| e.data.contains(last))
            .await;
        assert!(got.iter().all(|e| e.event == "finding"), "{got:?}");
        assert_eq!(got.len(), want);
        let ids: BTreeSet<&str> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), want, "each finding once, each with its own id");
    }
    // Resume inside the 150-finding submission.
    let (_, all) = api
        .events(Some(&l), Some("0"), |e| e.data.contains(last))
        .await;
    let (_, rest) = api
        .events(Some(&l), Some(&all[99].id), |e| e.data.contains(last))
        .await;
    let want: Vec<&str> = all[100..].iter().map(|e| e.id.as_str()).collect();
    let got: Vec<&str> = rest.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(got, want);
}

/// Two centre instances over one database (DESIGN "Scale-out"): a subscriber of one gets
/// what is written through the other, by the poll, with no state shared in memory.
async fn a_write_through_another_instance_reaches_the_stream_by_the_poll(store: Store) {
    let a = Api::new(
        store,
        ServerConfig {
            events_poll_millis: 100,
            ..ServerConfig::default()
        },
    )
    .await;
    let (ledger, _) = mamori_oversight::Ledger::open(a._keys.path(), &Default::default()).unwrap();
    let mut state = mamori_server::AppState::new(a.store.clone(), ServerConfig::default(), ledger);
    state.clock = Arc::new(mamori_core::time::ManualClock::new(t0()));
    let b = mamori_server::router(state);
    let org = a.org("operator", "Kanto Power").await;
    let (_, t) = a.user(org, "sato", "member").await;
    let t2 = t.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let body = json!({
            "detected_at": rfc3339(t0() - Duration::minutes(30)),
            "sector": "electricity", "affected_service": "SCADA gateway",
            "impact": "low", "cause": "unknown", "tlp": "green",
            "text": "written through instance b", "purposes": ["response"],
        });
        let r = b
            .oneshot(Api::request(
                "POST",
                "/api/v1/reports",
                Some(&t2),
                &[("content-type", "application/json")],
                Some(body.to_string()),
            ))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    });
    let (_, got) = a
        .events(Some(&t), None, |e| e.data.contains("instance b"))
        .await;
    writer.await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
}

async fn a_large_taxii_post_is_streamed_in_bounded_reads_and_resumes_inside_it(store: Store) {
    let api = Api::new(store, ServerConfig::default()).await;
    let org = api.org("operator", "Kanto Power").await;
    let (_, t) = api.user(org, "sato", "member").await;
    let n = 250u32;
    let objects: Vec<Value> = (0..n)
        .map(|i| indicator(i, Tlp::Green, &format!("bulk {i}"), &[]))
        .collect();
    api.taxii_post(&t, objects).await;
    let last = format!("bulk {}\"", n - 1);
    let (_, all) = api
        .events(Some(&t), Some("0"), |e| e.data.contains(&last))
        .await;
    assert_eq!(all.len(), n as usize);
    assert!(
        all.iter()
            .all(|e| e.event == "object" && e.id.contains(':'))
    );
    // Resume in the middle of the one POST: the rest, nothing twice.
    let (_, rest) = api
        .events(Some(&t), Some(&all[149].id), |e| e.data.contains(&last))
        .await;
    let want: Vec<&str> = all[150..].iter().map(|e| e.id.as_str()).collect();
    let got: Vec<&str> = rest.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------
// The export

async fn export_pages_are_bounded_and_add_up_to_the_whole(store: Store) {
    let api = Api::new(store, ServerConfig::default()).await;
    let org = api.org("operator", "Kanto Power").await;
    let (_, t) = api.user(org, "sato", "member").await;
    for n in 0..4 {
        let id = api
            .report(
                &t,
                Tlp::Green,
                &format!("export report {n}"),
                json!({"impact": "medium"}),
            )
            .await;
        let r = api
            .post_json(
                &format!("/api/v1/reports/{id}/stages"),
                &t,
                &json!({"stage": "interim", "text": format!("interim {n}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    let objects: Vec<Value> = (0..5)
        .map(|i| indicator(i, Tlp::Amber, &format!("export object {i}"), &[]))
        .collect();
    api.taxii_post(&t, objects).await;

    let (s, whole) = api.export(Some(&t), "").await;
    assert_eq!(s, StatusCode::OK);
    let count = |objs: &[Value], t: &str| objs.iter().filter(|o| o["type"] == t).count();
    // The reports as this caller sees them (an incident and a note per stage, no
    // `created_by_ref`), and the centre's anonymised relayed copies of them from the
    // TAXII `reports` collection (a `report` and an `incident` each, by the centre).
    let (rendered, relayed): (Vec<Value>, Vec<Value>) = whole
        .iter()
        .cloned()
        .partition(|o| o.get("created_by_ref").is_none());
    assert_eq!(
        (
            count(&rendered, "incident"),
            count(&rendered, "note"),
            count(&rendered, "indicator")
        ),
        (4, 4, 5)
    );
    assert_eq!(
        (count(&relayed, "report"), count(&relayed, "incident")),
        (4, 4),
        "{relayed:?}"
    );
    let centre: Vec<&str> = whole
        .iter()
        .filter(|o| o["type"] == "identity")
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(centre.len(), 1, "only the centre's identity: {centre:?}");
    assert!(relayed.iter().all(|o| o["created_by_ref"] == centre[0]));
    // Each note names its incident; the incident names no source.
    let incident_ids: BTreeSet<&str> = rendered
        .iter()
        .filter(|o| o["type"] == "incident")
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert!(
        rendered
            .iter()
            .filter(|o| o["type"] == "note")
            .all(|n| incident_ids.contains(n["object_refs"][0].as_str().unwrap()))
    );

    // Pages of at most 3 objects (plus the marking definitions they use) add up to it.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(a) => format!("/api/v1/export?limit=3&after={a}"),
            None => "/api/v1/export?limit=3".to_owned(),
        };
        let r = api.get(&path, Some(&t)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let objs: Vec<Value> = r.json()["objects"].as_array().cloned().unwrap_or_default();
        let content: Vec<Value> = objs
            .into_iter()
            .filter(|o| o["type"] != "marking-definition")
            .collect();
        assert!(content.len() <= 3, "{content:?}");
        paged.extend(content);
        pages += 1;
        match r.headers.get("mamori-next") {
            Some(n) => after = Some(n.to_str().unwrap().replace(':', "%3A")),
            None => break,
        }
    }
    assert!(pages >= 5, "{pages}");
    let ids = |v: &[Value]| -> BTreeSet<String> {
        v.iter()
            .filter(|o| o["type"] != "marking-definition")
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&paged), ids(&whole));
    assert_eq!(paged.len(), ids(&whole).len(), "nothing twice");

    // Filters: types; since (nothing was received after the start + 1 h).
    let (_, only) = api.export(Some(&t), "types=indicator").await;
    assert_eq!((only.len(), count(&only, "indicator")), (5, 5));
    let later = rfc3339(t0() + Duration::hours(1))
        .replace(':', "%3A")
        .replace('+', "%2B");
    let (_, none) = api.export(Some(&t), &format!("since={later}")).await;
    assert!(none.is_empty(), "{none:?}");
    // Bad input is a clear 400; no credentials 401.
    for bad in [
        "types=Not_A_Type",
        "after=zzz",
        "colour=red",
        "since=yesterday",
    ] {
        let r = api.get(&format!("/api/v1/export?{bad}"), Some(&t)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    assert_eq!(api.export(None, "").await.0, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------
// TAXII exclusions, errors; the regime

async fn taxii_exclusions_by_name_fail_unknown_names_and_are_stripped(store: Store) {
    let api = Api::new(store, ServerConfig::default()).await;
    let org = api.org("operator", "Kanto Power").await;
    let ministry = api.org("sector_authority", "Supervising Ministry").await;
    let (_, t) = api.user(org, "sato", "member").await;
    let (_, m) = api.user(ministry, "kato", "member").await;
    let status = api
        .taxii_post(
            &t,
            vec![
                indicator(
                    1,
                    Tlp::Green,
                    "kept from the ministry",
                    &["Supervising Ministry"],
                ),
                indicator(2, Tlp::Green, "names no one known", &["Nobody Inc"]),
                indicator(3, Tlp::Green, "excludes the centre", &["Centre"]),
                indicator(4, Tlp::Green, "for everyone", &[]),
            ],
        )
        .await;
    assert_eq!(status["success_count"], 2, "{status}");
    assert_eq!(status["failure_count"], 2, "{status}");
    let failures = status["failures"].as_array().unwrap();
    assert!(
        failures[0]["message"]
            .as_str()
            .unwrap()
            .contains("\"Nobody Inc\", which is no organisation"),
        "{status}"
    );
    assert!(
        failures[1]["message"]
            .as_str()
            .unwrap()
            .contains("coordination centre"),
        "{status}"
    );
    // A POST whose every object fails stores nothing and still has a status, again.
    for _ in 0..2 {
        let s = api
            .taxii_post(&t, vec![indicator(9, Tlp::Green, "bad", &["Nobody Inc"])])
            .await;
        assert_eq!(
            (s["success_count"].as_u64(), s["failure_count"].as_u64()),
            (Some(0), Some(1)),
            "{s}"
        );
    }
    // The ministry sees only the object that did not exclude it; nobody sees the failures.
    let c = "/taxii2/api/collections/indicators/objects/";
    let seen = api
        .call("GET", c, Some(&m), &[("accept", TAXII)], None)
        .await
        .text;
    assert!(
        seen.contains("for everyone") && !seen.contains("kept from the ministry"),
        "{seen}"
    );
    let own = api
        .call("GET", c, Some(&t), &[("accept", TAXII)], None)
        .await
        .text;
    assert!(own.contains("kept from the ministry") && !own.contains("names no one known"));
    // The stored body holds no trace of the exclusion.
    let mut tx = api.store.begin().await.unwrap();
    let coll = tx.taxii_collection("indicators").await.unwrap();
    let rows = tx
        .stix_objects(&coll.id, &mamori_store::StixQuery::new(100))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| !r.body.contains("x_mamori_exclude") && !r.body.contains("Ministry"))
    );
    assert!(rows.iter().any(|r| r.audience.excluded.contains(&ministry)));
}

async fn unknown_taxii_paths_answer_as_taxii_errors(store: Store) {
    let api = Api::new(store, ServerConfig::default()).await;
    for (method, path, status) in [
        ("GET", "/taxii2/api/nope/", StatusCode::NOT_FOUND),
        ("GET", "/taxii2/other-root/", StatusCode::NOT_FOUND),
        ("GET", "/taxii2", StatusCode::NOT_FOUND),
        ("PUT", "/taxii2/", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let r = api
            .call(
                method,
                path,
                Some(&api.admin.clone()),
                &[("accept", TAXII)],
                None,
            )
            .await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        assert_eq!(r.headers[header::CONTENT_TYPE], TAXII, "{method} {path}");
        let b = r.json();
        assert_eq!(b["http_status"], status.as_u16().to_string(), "{b}");
        assert!(
            b["title"].is_string() && b["description"].is_string(),
            "{b}"
        );
        assert!(b.get("error").is_none(), "not the API's error shape: {b}");
    }
    // The API keeps its own shape.
    let r = api.get("/api/v1/nope", Some(&api.admin.clone())).await;
    assert_eq!(r.json()["error"]["code"], "not_found");
}

const CUSTOM_REGIME: &str = r#"
name = "custom-2026"
description = "A sector regulator's own timetable."
acknowledge_within = "2h"
feedback_within = "5d"

[[stages]]
name = "flash"
description = "first notice"
from = "detection"
within = "6h"
impacts = ["low", "medium", "high", "critical"]
route_to = ["coordination_centre"]

[[stages]]
name = "closing"
description = "closing report"
from = "previous"
within = "10d"
impacts = ["low", "medium", "high", "critical"]
route_to = ["coordination_centre"]
"#;

async fn a_configured_regime_file_is_in_force(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regime.toml");
    std::fs::write(&path, CUSTOM_REGIME).unwrap();
    let config = ServerConfig {
        reports: ReportsConfig {
            regime: Some(path.clone()),
        },
        ..ServerConfig::default()
    };
    let regime = config.load_regime().unwrap().unwrap();
    assert_eq!(regime.name, "custom-2026");
    // The centre as `mamori serve` builds it: the loaded regime in its state.
    log();
    let c = common::Centre::start(store, ServerConfig::default()).await;
    let (ledger, _) = mamori_oversight::Ledger::open(c.keys.path(), &Default::default()).unwrap();
    let mut state =
        mamori_server::AppState::new(c.store.clone(), config, ledger).with_regime(regime);
    state.clock = c.clock.clone();
    let api = Api {
        app: mamori_server::router(state),
        store: c.store,
        admin: c.admin,
        _keys: c.keys,
    };
    let org = api.org("operator", "Kanto Power").await;
    let (_, t) = api.user(org, "sato", "member").await;
    let id = api
        .report(&t, Tlp::Green, "under the custom regime", json!({}))
        .await;
    let r = api
        .get(&format!("/api/v1/reports/{id}"), Some(&t))
        .await
        .json();
    assert_eq!(r["status"]["regime"], "custom-2026", "{r}");
    assert!(r.to_string().contains("closing"), "{r}");
    let stage = api
        .post_json(
            &format!("/api/v1/reports/{id}/stages"),
            &t,
            &json!({"stage": "interim", "text": "the default regime's stage"}),
        )
        .await;
    assert_eq!(stage.status, StatusCode::BAD_REQUEST, "{}", stage.text);
    assert!(stage.text.contains("closing"), "{}", stage.text);

    // A bad file is refused, naming the file and the fault; a missing one too.
    std::fs::write(&path, "name = \"broken\"\n[[stages]]\nname = 3\n").unwrap();
    let bad = ServerConfig {
        reports: ReportsConfig {
            regime: Some(path.clone()),
        },
        ..ServerConfig::default()
    };
    let e = bad.load_regime().unwrap_err().to_string();
    assert!(
        e.contains(&path.display().to_string()) && e.contains("not a valid regime"),
        "{e}"
    );
    let missing = ServerConfig {
        reports: ReportsConfig {
            regime: Some(dir.path().join("absent.toml")),
        },
        ..ServerConfig::default()
    };
    let e = missing.load_regime().unwrap_err().to_string();
    assert!(
        e.contains("absent.toml") && e.contains("cannot read"),
        "{e}"
    );
    assert!(ServerConfig::default().load_regime().unwrap().is_none());
}

// ---------------------------------------------------------------------------------------
// What every path shows: sealed sources scrubbed, markings stated

// PP-12, DESIGN invariant 6: a stage's free `detail` names the source in its property
// names as plainly as in its values; both are scrubbed on every path that shows the report
// to someone the source is sealed for (get, list, event stream), and the reporter still
// sees its own words.
async fn a_sealed_source_is_scrubbed_from_property_names_on_every_path(store: Store) {
    let api = Api::polling(store, 50).await;
    let kanto = api.org("operator", "Kanto Power").await;
    let other = api.org("operator", "Kansai Gas").await;
    let mut tx = api.store.begin().await.unwrap();
    tx.add_org_identifiers(kanto, &[("domain", "kanto-power.example")], t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (_, reporter) = api.user(kanto, "hanako", "member").await;
    let (_, reader) = api.user(other, "ito", "member").await;
    let id = api
        .report(
            &reporter,
            Tlp::Green,
            "Beacons from the gateway.",
            json!({}),
        )
        .await;
    let detail = json!({
        "kanto-power.example": "x",
        "hosts": {"vpn.kanto-power.example": ["203.0.113.9"], "Kanto Power": "y"},
    });
    let r = api
        .post_json(
            &format!("/api/v1/reports/{id}/stages"),
            &reporter,
            &json!({"stage": "interim", "text": "Contained.", "detail": detail}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);

    let one = api
        .get(&format!("/api/v1/reports/{id}"), Some(&reader))
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    let list = api.get("/api/v1/reports", Some(&reader)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let (_, events) = api
        .events(Some(&reader), Some("0"), |e| e.data.contains("Contained."))
        .await;
    let streamed: Vec<String> = events.into_iter().map(|e| e.data).collect();
    for (path, text) in [
        ("get", one.text.clone()),
        ("list", list.text.clone()),
        ("events", streamed.join("\n")),
    ] {
        assert!(text.contains("Contained."), "{path}: {text}");
        assert!(
            !text.to_ascii_lowercase().contains("kanto"),
            "{path} leaks the sealed source: {text}"
        );
    }
    let shown = &one.json()["stages"][0]["detail"];
    assert_eq!(shown["[redacted]"], "x", "{shown}");
    assert_eq!(shown["hosts"]["vpn.[redacted]"], json!(["203.0.113.9"]));
    assert_eq!(shown["hosts"]["[redacted]"], "y");
    // The reporter sees its own detail as sent.
    let own = api
        .get(&format!("/api/v1/reports/{id}"), Some(&reporter))
        .await;
    assert_eq!(own.json()["stages"][0]["detail"], detail);
}

// DESIGN invariant 5: an object posted over TAXII without a TLP marking is shared as
// TLP:AMBER and says so on every path that serves it — objects, object, export, event
// stream — including one stored before POSTs were marked; the export still validates.
async fn an_unmarked_taxii_object_says_amber_on_every_path(store: Store) {
    let api = Api::polling(store, 50).await;
    let poster_org = api.org("operator", "Kanto Power").await;
    let (_, poster) = api.user(poster_org, "hanako", "member").await;
    let centre = OrgId(
        api.get("/api/v1/admin/orgs", Some(&api.admin)).await.json()[0]["id"]
            .as_i64()
            .unwrap(),
    );
    let (_, analyst) = api.user(centre, "yamada", "analyst").await;
    // A partner's own (non-TLP) marking, e.g. a copyright statement.
    let statement = "marking-definition--a1b2c3d4-0000-4000-8000-000000000001";
    let mut unmarked = indicator(1, Tlp::Amber, "posted without a TLP marking", &[]);
    unmarked
        .as_object_mut()
        .unwrap()
        .remove("object_marking_refs");
    // A statement marking only: no TLP marking either.
    let mut stated = indicator(2, Tlp::Amber, "a copyright statement only", &[]);
    stated["object_marking_refs"] = json!([statement]);
    let status = api.taxii_post(&poster, vec![unmarked, stated]).await;
    assert_eq!(status["success_count"], 2, "{status}");
    // As an earlier release stored it: the body without the marking it is shared under.
    let old_id = "indicator--8e2e2d2b-17d4-4cbf-938f-000000000003";
    let mut tx = api.store.begin().await.unwrap();
    let indicators = tx.taxii_collection("indicators").await.unwrap().id;
    let mut body = indicator(3, Tlp::Amber, "stored before POSTs were marked", &[]);
    body.as_object_mut().unwrap().remove("object_marking_refs");
    tx.insert_stix_objects(
        &indicators,
        poster_org,
        &[mamori_store::NewStixObject {
            id: old_id.to_owned(),
            object_type: "indicator".to_owned(),
            spec_version: "2.1".to_owned(),
            version: 1_767_225_600_000_000,
            version_text: "2026-01-01T00:00:00.000Z".to_owned(),
            tlp: Tlp::Amber,
            audience: mamori_core::tlp::Audience {
                originator: Some(poster_org),
                organisations: [centre].into(),
                ..Default::default()
            },
            body: body.to_string(),
        }],
        t0(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let ids: Vec<String> = (1..=3)
        .map(|n| format!("indicator--8e2e2d2b-17d4-4cbf-938f-{n:012}"))
        .collect();
    let amber = Tlp::Amber.stix_id();
    let says_amber = |o: &Value| {
        o["object_marking_refs"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r == amber))
    };
    for token in [&poster, &analyst] {
        let objects = api
            .call(
                "GET",
                "/taxii2/api/collections/indicators/objects/",
                Some(token),
                &[("accept", TAXII)],
                None,
            )
            .await;
        assert_eq!(objects.status, StatusCode::OK, "{}", objects.text);
        let objects = objects.json()["objects"].as_array().cloned().unwrap();
        let (_, exported) = api.export(Some(token), "types=indicator").await;
        let (_, events) = api
            .events(Some(token), Some("0"), |e| e.data.contains(old_id))
            .await;
        let streamed: Vec<Value> = events
            .iter()
            .filter(|e| e.event == "object")
            .map(|e| serde_json::from_str::<Value>(&e.data).unwrap()["object"].clone())
            .collect();
        for id in &ids {
            let one = api
                .call(
                    "GET",
                    &format!("/taxii2/api/collections/indicators/objects/{id}/"),
                    Some(token),
                    &[("accept", TAXII)],
                    None,
                )
                .await;
            assert_eq!(one.status, StatusCode::OK, "{}", one.text);
            let one = one.json();
            let served = [
                ("objects", objects.iter().find(|o| o["id"] == **id)),
                ("object", one["objects"].get(0)),
                ("export", exported.iter().find(|o| o["id"] == **id)),
                ("events", streamed.iter().find(|o| o["id"] == **id)),
            ];
            for (path, o) in served {
                let o = o.unwrap_or_else(|| panic!("{id} not served by {path}"));
                assert!(says_amber(o), "{path} serves {id} without TLP:AMBER: {o}");
            }
        }
        // The copyright statement stays beside the added TLP marking.
        let stated = objects.iter().find(|o| o["id"] == ids[1]).unwrap();
        assert_eq!(
            stated["object_marking_refs"],
            json!([statement, amber]),
            "{stated}"
        );
        let (_, all) = api.export(Some(token), "").await;
        validate(&json!({"type": "bundle",
            "id": "bundle--0e1d2c3b-4a59-4687-9a6b-5c4d3e2f1a0b", "objects": all}));
    }
}

store_test_suite!(
    a_sealed_source_is_scrubbed_from_property_names_on_every_path,
    an_unmarked_taxii_object_says_amber_on_every_path,
    every_marking_recipient_and_output_path_follows_the_table,
    export_pages_are_bounded_and_add_up_to_the_whole,
    the_stream_is_in_order_wakes_on_writes_and_resumes,
    a_large_taxii_post_is_streamed_in_bounded_reads_and_resumes_inside_it,
    taxii_exclusions_by_name_fail_unknown_names_and_are_stripped,
    unknown_taxii_paths_answer_as_taxii_errors,
    a_configured_regime_file_is_in_force,
    a_write_through_another_instance_reaches_the_stream_by_the_poll,
    findings_reach_the_stream_as_their_tlp_allows,
);
