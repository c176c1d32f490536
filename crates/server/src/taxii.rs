//! The TAXII 2.1 server (OASIS TAXII 2.1 §4–§5; issue 8 item 5; PP-4, PP-9, PP-11):
//! discovery at `/taxii2/`, one API root at `/taxii2/api/`, its collections, objects,
//! manifests, versions, deletion by the owner, and the status of each POST.
//!
//! **Architecture invariant:** every object this module sends — in an envelope, a single
//! object, a versions list or a manifest — has passed [`visible`], the one gate that asks
//! `mamori_core::tlp::may_see` (DESIGN invariant 5). Output functions take [`Visible`]
//! rows, which only [`visible`] makes, so a path that skipped the check would not compile.
//! What comes in is checked once, at the edge, by `mamori_stix::taxii::parse_envelope`
//! (bounds, STIX 2.1 rules, markings that merely resemble TLP): a refused envelope
//! stores nothing.
//!
//! **API boundary:** [`router`] adds the endpoints; errors are TAXII error messages
//! (`title`, `description`, `http_status`) whose status comes from
//! [`crate::error::status_of`] like every other error, except the two protocol answers of
//! TAXII itself, 406 (an `Accept` without the TAXII media type) and 415 (a POST whose
//! `Content-Type` is not the TAXII media type), decided here as routing answers.
//!
//! **Authentication:** the API's bearer tokens. Because many TAXII clients only speak HTTP
//! Basic, the token is also accepted as the password of `Authorization: Basic
//! base64(anything:token)`; the user name is ignored.
//!
//! **What a TAXII POST means for the audience:** each object's TLP is its effective
//! marking ([`mamori_stix::object_tlp`]); one without a TLP marking is TLP:AMBER, as
//! findings are, and is stored and served with the TLP:AMBER marking reference added
//! (`mamori_stix::carry_tlp`), so its recipients know it is AMBER (DESIGN invariant 5).
//! The audience is the posting organisation (its originator, which always
//! sees it) and the coordination centre (its recipient): AMBER reaches the centre and the
//! centre's clients, AMBER+STRICT the centre, GREEN the community, CLEAR everyone, RED only
//! the originator (no individuals are named over TAXII). As for reports, the poster's own
//! clients are not recipients. A poster excludes organisations by name with the custom
//! property `x_mamori_exclude` (PP-11): they never see the object, whatever its marking;
//! an unknown name fails that object in the status; the property is kept in the audience
//! and **stripped from the stored and served body**. The official TLP marking-definition
//! objects are public definitions: CLEAR.
//!
//! Unknown paths under `/taxii2/` answer as TAXII errors too ([`unknown_path`]).

use crate::auth::Caller;
use crate::error::{ApiError, InternalErrorMarker, status_of};
use crate::state::AppState;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::SecondsFormat;
use mamori_core::tlp::{Audience, Recipient, Viewer, may_see};
use mamori_core::{ErrorKind, OrgId, OrgKind, Role, Timestamp, Tlp};
use mamori_stix::taxii::{
    ApiRoot, Collection, Collections, Discovery, ErrorMessage, MEDIA_TYPE_STIX, MEDIA_TYPE_TAXII,
    Manifest, ManifestRecord, Status, StatusDetails, StatusKind, Versions, parse_envelope,
};
use mamori_stix::{
    Limits, StixId, StixObject, StixTimestamp, carry_tlp, object_tlp, served_with_tlp,
};
use mamori_store::{
    NewStixObject, Principal, StixQuery, StoredStixObject, TaxiiCollection, VersionMatch,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Where the API root lives.
const API_ROOT: &str = "/taxii2/api/";
/// The default and largest page (objects, manifest records, versions).
const MAX_PAGE: u32 = 1_000;
/// How many extra reads a page may take to skip objects the caller may not see, before it
/// is returned short with `more: true` (TAXII allows fewer objects than `limit`).
const MAX_SCAN_ROUNDS: usize = 8;
/// The marking of an object posted without a TLP marking.
const DEFAULT_TLP: Tlp = Tlp::Amber;

/// The TAXII endpoints, with their own body limit (`max_content_length`).
pub(crate) fn router(max_content_length: usize) -> Router<AppState> {
    let c = "/taxii2/api/collections/{collection}";
    Router::new()
        .route("/taxii2/", get(discovery))
        .route(API_ROOT, get(api_root))
        .route("/taxii2/api/collections/", get(collections))
        .route(&format!("{c}/"), get(collection))
        .route(&format!("{c}/objects/"), get(objects).post(add_objects))
        .route(
            &format!("{c}/objects/{{object}}/"),
            get(object).delete(delete_object),
        )
        .route(&format!("{c}/objects/{{object}}/versions/"), get(versions))
        .route(&format!("{c}/manifest/"), get(manifest))
        .route("/taxii2/api/status/{status}/", get(status))
        .layer(DefaultBodyLimit::max(max_content_length))
        .layer(middleware::from_fn(taxii_protocol))
}

// ---------------------------------------------------------------------------------------
// Errors and responses

/// An error as TAXII shows it (§3.6.1).
#[derive(Debug)]
pub(crate) struct TaxiiError {
    status: StatusCode,
    title: String,
    description: String,
}

impl From<ApiError> for TaxiiError {
    fn from(e: ApiError) -> Self {
        let status = status_of(e.kind);
        if e.kind == ErrorKind::Internal {
            // The request-id layer below names the request; the details stay in the log.
            tracing::error!(error = %e.message, "internal error");
            return TaxiiError {
                status,
                title: "internal error".to_owned(),
                description: String::new(),
            };
        }
        TaxiiError {
            status,
            title: e.kind.code().replace('_', " "),
            description: e.message,
        }
    }
}

impl From<mamori_store::StoreError> for TaxiiError {
    fn from(e: mamori_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<mamori_stix::Error> for TaxiiError {
    fn from(e: mamori_stix::Error) -> Self {
        ApiError::new(e.kind(), e.to_string()).into()
    }
}

impl From<QueryRejection> for TaxiiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::from(r).into()
    }
}

impl From<BytesRejection> for TaxiiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return TaxiiError::new(
                ErrorKind::PayloadTooLarge,
                "the envelope is larger than this API root's max_content_length: split it",
            );
        }
        TaxiiError::new(ErrorKind::InvalidInput, r.body_text())
    }
}

impl TaxiiError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError::new(kind, message).into()
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let internal = self.status == StatusCode::INTERNAL_SERVER_ERROR;
        let msg = ErrorMessage {
            title: self.title,
            description: (!self.description.is_empty()).then_some(self.description),
            error_id: None,
            error_code: None,
            http_status: Some(self.status.as_u16().to_string()),
            external_details: None,
            details: None,
            extra: Default::default(),
        };
        let mut resp = taxii_json(self.status, &msg, &[]);
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer, Basic realm=\"mamori TAXII\""),
            );
        }
        if internal {
            resp.extensions_mut().insert(InternalErrorMarker);
        }
        resp
    }
}

/// The answer to a path under `/taxii2/` that is no TAXII endpoint (or a method it does
/// not take): a TAXII error message, not the JSON API's error shape.
pub(crate) fn unknown_path(method: &axum::http::Method, path: &str, allowed: bool) -> Response {
    let path: String = path.chars().take(120).collect();
    if allowed {
        TaxiiError::new(
            ErrorKind::NotFound,
            format!(
                "no TAXII endpoint {method} {path}: start from the discovery resource /taxii2/"
            ),
        )
        .into_response()
    } else {
        let mut e = TaxiiError::new(
            ErrorKind::InvalidInput,
            format!("{path} does not take {method}"),
        );
        e.status = StatusCode::METHOD_NOT_ALLOWED;
        e.title = "method not allowed".to_owned();
        e.into_response()
    }
}

/// A TAXII resource as `application/taxii+json;version=2.1`, with extra headers.
fn taxii_json<T: Serialize>(
    status: StatusCode,
    body: &T,
    headers: &[(&'static str, String)],
) -> Response {
    match serde_json::to_vec(body) {
        Ok(b) => taxii_bytes(status, b, headers),
        Err(e) => TaxiiError::new(ErrorKind::Internal, format!("serialising: {e}")).into_response(),
    }
}

fn taxii_bytes(status: StatusCode, body: Vec<u8>, headers: &[(&'static str, String)]) -> Response {
    let mut resp = (status, Body::from(body)).into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE_TAXII));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    resp
}

/// Whether an `Accept` header admits the TAXII 2.1 media type (absent, `*/*`,
/// `application/*`, `application/taxii+json` with `version=2.1` or no version).
fn accepts_taxii(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT) else {
        return true;
    };
    let Ok(accept) = accept.to_str() else {
        return false;
    };
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let ty = parts.next().unwrap_or("").to_ascii_lowercase();
        let version = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("version"))
            .map(|(_, v)| v.trim().trim_matches('"').to_owned());
        match ty.as_str() {
            "*/*" | "application/*" => true,
            "application/taxii+json" => version.is_none_or(|v| v == "2.1"),
            _ => false,
        }
    })
}

/// The protocol layer of every TAXII request: 406 for an `Accept` without TAXII 2.1, and
/// internal errors named by request id in a TAXII error message.
async fn taxii_protocol(req: Request, next: Next) -> Response {
    if !accepts_taxii(req.headers()) {
        let msg = ErrorMessage {
            title: "not acceptable".to_owned(),
            description: Some(format!(
                "this server answers in {MEDIA_TYPE_TAXII} only: send Accept: {MEDIA_TYPE_TAXII}"
            )),
            error_id: None,
            error_code: None,
            http_status: Some("406".to_owned()),
            external_details: None,
            details: None,
            extra: Default::default(),
        };
        return taxii_json(StatusCode::NOT_ACCEPTABLE, &msg, &[]);
    }
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let mut resp = next.run(req).await;
    if resp
        .extensions_mut()
        .remove::<InternalErrorMarker>()
        .is_some()
    {
        let msg = ErrorMessage {
            title: "internal error".to_owned(),
            description: Some(format!(
                "internal error (request id {id}): the details are in the server log"
            )),
            error_id: Some(id),
            error_code: None,
            http_status: Some("500".to_owned()),
            external_details: None,
            details: None,
            extra: Default::default(),
        };
        return taxii_json(StatusCode::INTERNAL_SERVER_ERROR, &msg, &[]);
    }
    resp
}

// ---------------------------------------------------------------------------------------
// Who is calling

/// The caller of a TAXII endpoint: a bearer token, or the token as the password of HTTP
/// Basic.
struct TaxiiCaller(Principal);

impl FromRequestParts<AppState> for TaxiiCaller {
    type Rejection = TaxiiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, TaxiiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| {
                TaxiiError::new(
                    ErrorKind::Unauthenticated,
                    "no credentials: send Authorization: Bearer <token>, or HTTP Basic with the token as the password",
                )
            })?;
        let token = if let Some(t) = header.strip_prefix("Bearer ") {
            t.trim().to_owned()
        } else if let Some(b) = header.strip_prefix("Basic ") {
            STANDARD
                .decode(b.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|s| s.split_once(':').map(|(_, p)| p.to_owned()))
                .ok_or_else(|| {
                    TaxiiError::new(
                        ErrorKind::Unauthenticated,
                        "the Basic credentials are not base64 of `user:token`",
                    )
                })?
        } else {
            return Err(TaxiiError::new(
                ErrorKind::Unauthenticated,
                "the Authorization header must be `Bearer <token>` or `Basic base64(user:token)`",
            ));
        };
        let Caller(p) = Caller::from_token(state, &token).await?;
        Ok(TaxiiCaller(p))
    }
}

pub(crate) fn may_read(c: &TaxiiCollection, role: Role) -> bool {
    c.read_roles.contains(&role)
}

fn may_write(c: &TaxiiCollection, role: Role) -> bool {
    c.write_roles.contains(&role)
}

fn collection_out(c: &TaxiiCollection, role: Role) -> Collection {
    Collection {
        id: c.id.clone(),
        title: c.title.clone(),
        description: Some(c.description.clone()),
        alias: Some(c.alias.clone()),
        can_read: may_read(c, role),
        can_write: may_write(c, role),
        media_types: Some(vec![MEDIA_TYPE_STIX.to_owned()]),
        extra: Default::default(),
    }
}

/// The collection named in the path, if the caller may use it at all (one it can neither
/// read nor write is "not found", so its existence is not disclosed).
async fn collection_for(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> Result<TaxiiCollection, TaxiiError> {
    let mut tx = state.store.begin_read().await?;
    let c = tx.taxii_collection(id).await?;
    tx.commit().await?;
    let role = caller.user.role;
    if !may_read(&c, role) && !may_write(&c, role) {
        return Err(TaxiiError::new(
            ErrorKind::NotFound,
            format!(
                "TAXII collection {} does not exist",
                id.chars().take(80).collect::<String>()
            ),
        ));
    }
    Ok(c)
}

fn require_read(c: &TaxiiCollection, caller: &Principal) -> Result<(), TaxiiError> {
    if may_read(c, caller.user.role) {
        return Ok(());
    }
    Err(TaxiiError::new(
        ErrorKind::Forbidden,
        format!(
            "collection {} cannot be read with the role {}",
            c.alias, caller.user.role
        ),
    ))
}

fn require_write(c: &TaxiiCollection, caller: &Principal) -> Result<(), TaxiiError> {
    if may_write(c, caller.user.role) {
        return Ok(());
    }
    Err(TaxiiError::new(
        ErrorKind::Forbidden,
        format!(
            "collection {} cannot be written with the role {}",
            c.alias, caller.user.role
        ),
    ))
}

// ---------------------------------------------------------------------------------------
// The one gate

/// A stored object version the caller may see. Only [`visible`] makes one.
pub(crate) struct Visible(StoredStixObject);

impl Visible {
    /// When its collection received it (µs).
    pub(crate) fn date_added(&self) -> i64 {
        self.0.date_added
    }

    /// Its STIX JSON, as stored.
    pub(crate) fn body(&self) -> &str {
        &self.0.body
    }
}

/// **The TLP gate of every TAXII output** (DESIGN invariant 5, PP-11): keeps the rows the
/// caller may see under `mamori_core::tlp::may_see`, in order, each carrying the marking
/// it is shared under (`mamori_stix::served_with_tlp`): an object stored before POSTs
/// were marked (one posted without a TLP marking, shared as TLP:AMBER) says TLP:AMBER
/// when it is served, on every path that serves bodies (objects, object, export, events).
pub(crate) fn visible(
    rows: Vec<StoredStixObject>,
    caller: &Principal,
) -> (Vec<Visible>, Option<i64>) {
    let viewer = viewer(caller);
    let last = rows.last().map(|r| r.date_added);
    let kept = rows
        .into_iter()
        .filter(|r| may_see(r.tlp, &r.audience, viewer))
        .map(|mut r| {
            if let Some(marked) = served_with_tlp(&r.body, r.tlp) {
                r.body = marked;
            }
            Visible(r)
        })
        .collect();
    (kept, last)
}

fn viewer(caller: &Principal) -> Viewer<'_> {
    Viewer::Member(Recipient {
        user: caller.user.id,
        org: caller.org.id,
        clearance: caller.user.clearance,
        client_of: &caller.client_of,
    })
}

/// A page the caller may see: at most `limit` visible rows after `q.added_after`, whether
/// more may follow, and the `next` cursor (the `date_added` of the last row read, shown or
/// not, so hidden rows are not read twice).
pub(crate) async fn visible_page(
    state: &AppState,
    collection: &str,
    mut q: StixQuery,
    caller: &Principal,
) -> Result<(Vec<Visible>, bool, Option<i64>), TaxiiError> {
    let want = q.limit as usize;
    let mut out: Vec<Visible> = Vec::with_capacity(want.min(MAX_PAGE as usize));
    let mut tx = state.store.begin_read().await?;
    let mut more = true;
    for _ in 0..MAX_SCAN_ROUNDS {
        // One row beyond what is still needed tells whether more follow.
        let need = want - out.len();
        q.limit = u32::try_from(need + 1).unwrap_or(u32::MAX);
        let rows = tx.stix_objects(collection, &q).await?;
        let full = rows.len() > need;
        let mut rows = rows;
        if full {
            rows.truncate(need);
        }
        let (kept, last) = visible(rows, caller);
        out.extend(kept);
        if let Some(l) = last {
            q.added_after = Some(l);
        }
        if !full {
            more = false;
            break;
        }
        if out.len() == want {
            break;
        }
    }
    tx.commit().await?;
    Ok((out, more, q.added_after))
}

// ---------------------------------------------------------------------------------------
// Query parameters

/// The filters and paging of a GET (§3.4): `added_after`, `limit`, `next`,
/// `match[id|type|version|spec_version]`. Unknown parameters are refused.
struct Filters {
    query: StixQuery,
}

fn micros_of(s: &str, what: &str) -> Result<i64, TaxiiError> {
    StixTimestamp::parse(s)
        .map(|t| t.at().timestamp_micros())
        .map_err(|e| TaxiiError::new(ErrorKind::InvalidInput, format!("{what}: expected {e}")))
}

fn parse_filters(
    params: Vec<(String, String)>,
    default_versions: VersionMatch,
) -> Result<Filters, TaxiiError> {
    let mut q = StixQuery::new(MAX_PAGE);
    let mut next: Option<i64> = None;
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for (k, v) in params {
        match k.as_str() {
            "added_after" => q.added_after = Some(micros_of(&v, "added_after")?),
            "limit" => {
                let n: u32 = v.parse().map_err(|_| {
                    TaxiiError::new(
                        ErrorKind::InvalidInput,
                        format!("limit: expected a positive integer, found {v:?}"),
                    )
                })?;
                q.limit = n.clamp(1, MAX_PAGE);
            }
            "next" => {
                next = Some(v.parse().map_err(|_| {
                    TaxiiError::new(
                        ErrorKind::InvalidInput,
                        "next: pass back the `next` value of the previous page unchanged",
                    )
                })?);
            }
            "match[id]" => q.ids.extend(list(&v)),
            "match[type]" => q.types.extend(list(&v)),
            "match[spec_version]" => q.spec_versions.extend(list(&v)),
            "match[version]" => {
                for item in list(&v) {
                    q.versions.push(match item.as_str() {
                        "last" => VersionMatch::Last,
                        "first" => VersionMatch::First,
                        "all" => VersionMatch::All,
                        ts => VersionMatch::At(micros_of(ts, "match[version]")?),
                    });
                }
            }
            other => {
                return Err(TaxiiError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "unknown parameter {:?}: use added_after, limit, next, match[id], match[type], match[version] or match[spec_version]",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
        }
    }
    if q.versions.is_empty() {
        q.versions.push(default_versions);
    }
    q.added_after = match (q.added_after, next) {
        (Some(a), Some(n)) => Some(a.max(n)),
        (a, n) => a.or(n),
    };
    Ok(Filters { query: q })
}

fn taxii_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn date_headers(rows: &[Visible]) -> Vec<(&'static str, String)> {
    match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => vec![
            ("x-taxii-date-added-first", taxii_time(f.0.date_added)),
            ("x-taxii-date-added-last", taxii_time(l.0.date_added)),
        ],
        _ => Vec::new(),
    }
}

/// The `next` value: the `date_added` of the last row read (shown or not), when more
/// may follow.
fn next_of(more: bool, cursor: Option<i64>) -> Option<String> {
    more.then(|| cursor.unwrap_or(0).to_string())
}

// ---------------------------------------------------------------------------------------
// Handlers

async fn discovery(_caller: TaxiiCaller) -> Response {
    taxii_json(
        StatusCode::OK,
        &Discovery {
            title: "mamori TAXII 2.1".to_owned(),
            description: Some(
                "The coordination centre's shared indicators and reports, each shown to a \
                 caller only as its TLP 2.0 marking allows."
                    .to_owned(),
            ),
            contact: None,
            default: Some(API_ROOT.to_owned()),
            api_roots: Some(vec![API_ROOT.to_owned()]),
            extra: Default::default(),
        },
        &[],
    )
}

async fn api_root(State(s): State<AppState>, _caller: TaxiiCaller) -> Response {
    taxii_json(
        StatusCode::OK,
        &ApiRoot {
            title: "mamori".to_owned(),
            description: Some("Indicators and reports under TLP 2.0".to_owned()),
            versions: vec![MEDIA_TYPE_TAXII.to_owned()],
            max_content_length: s.config.taxii_max_content_length as u64,
            extra: Default::default(),
        },
        &[],
    )
}

async fn collections(
    State(s): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
) -> Result<Response, TaxiiError> {
    let mut tx = s.store.begin_read().await?;
    let all = tx.taxii_collections().await?;
    tx.commit().await?;
    let role = caller.user.role;
    let shown: Vec<Collection> = all
        .iter()
        .filter(|c| may_read(c, role) || may_write(c, role))
        .map(|c| collection_out(c, role))
        .collect();
    Ok(taxii_json(
        StatusCode::OK,
        &Collections {
            collections: (!shown.is_empty()).then_some(shown),
            extra: Default::default(),
        },
        &[],
    ))
}

async fn collection(
    State(s): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    let c = collection_for(&s, &caller, &id).await?;
    Ok(taxii_json(
        StatusCode::OK,
        &collection_out(&c, caller.user.role),
        &[],
    ))
}

/// An envelope of visible objects; the bodies are spliced in as stored (they were
/// serialised from checked `StixObject`s at POST), not parsed again.
/// A page of objects as the objects and object endpoints answer it: the envelope with
/// `more`/`next`, and the date-added headers.
fn envelope_response(rows: &[Visible], more: bool, scanned: Option<i64>) -> Response {
    taxii_bytes(
        StatusCode::OK,
        envelope(rows, more, next_of(more, scanned)),
        &date_headers(rows),
    )
}

fn envelope(rows: &[Visible], more: bool, next: Option<String>) -> Vec<u8> {
    let cap = rows.iter().map(|r| r.0.body.len() + 1).sum::<usize>() + 64;
    let mut b = Vec::with_capacity(cap);
    b.extend_from_slice(if more {
        b"{\"more\":true"
    } else {
        b"{\"more\":false"
    });
    if let Some(n) = next {
        b.extend_from_slice(b",\"next\":\"");
        b.extend_from_slice(n.as_bytes()); // digits only
        b.push(b'"');
    }
    if !rows.is_empty() {
        b.extend_from_slice(b",\"objects\":[");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            b.extend_from_slice(r.0.body.as_bytes());
        }
        b.push(b']');
    }
    b.push(b'}');
    b
}

async fn objects(
    State(s): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
    Path(id): Path<String>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, TaxiiError> {
    let Query(params) = params?;
    let c = collection_for(&s, &caller, &id).await?;
    require_read(&c, &caller)?;
    let f = parse_filters(params, VersionMatch::Last)?;
    let (rows, more, scanned) = visible_page(&s, &c.id, f.query, &caller).await?;
    Ok(envelope_response(&rows, more, scanned))
}

async fn object(
    State(s): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
    Path((id, object)): Path<(String, String)>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, TaxiiError> {
    let Query(params) = params?;
    let c = collection_for(&s, &caller, &id).await?;
    require_read(&c, &caller)?;
    let mut f = parse_filters(params, VersionMatch::Last)?;
    if !f.query.ids.is_empty() {
        return Err(TaxiiError::new(
            ErrorKind::InvalidInput,
            "match[id] is not a filter of a single object's endpoint",
        ));
    }
    f.query.ids = vec![object.clone()];
    let cursor = f.query.added_after;
    let (rows, more, scanned) = visible_page(&s, &c.id, f.query, &caller).await?;
    if rows.is_empty() && cursor.is_none() {
        return Err(not_found_object(&object));
    }
    Ok(envelope_response(&rows, more, scanned))
}

fn not_found_object(id: &str) -> TaxiiError {
    TaxiiError::new(
        ErrorKind::NotFound,
        format!(
            "no object {} that you may see in this collection",
            id.chars().take(100).collect::<String>()
        ),
    )
}

async fn versions(
    State(s): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
    Path((id, object)): Path<(String, String)>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, TaxiiError> {
    let Query(params) = params?;
    let c = collection_for(&s, &caller, &id).await?;
    require_read(&c, &caller)?;
    let mut f = parse_filters(params, VersionMatch::All)?;
    if !f.query.ids.is_empty() || !f.query.types.is_empty() {
        return Err(TaxiiError::new(
            ErrorKind::InvalidInput,
            "the versions endpoint takes added_after, limit, next and match[spec_version] only",
        ));
    }
    f.query.ids = vec![object.clone()];
    f.query.versions = vec![VersionMatch::All];
    f.query.with_body = false;
    let cursor = f.query.added_after;
    let (rows, more, scanned) = visible_page(&s, &c.id, f.query, &caller).await?;
    if rows.is_empty() && cursor.is_none() {
        return Err(not_found_object(&object));
    }
    let headers = date_headers(&rows);
    let body = Versions {
        more: Some(more),
        versions: Some(rows.iter().map(|r| r.0.version_text.clone()).collect()),
        extra: next_extra(next_of(more, scanned)),
    };
    Ok(taxii_json(StatusCode::OK, &body, &headers))
}

/// `next` for resources whose type has no field for it (versions, manifest).
fn next_extra(next: Option<String>) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    if let Some(n) = next {
        m.insert("next".to_owned(), serde_json::Value::String(n));
    }
    m
}

async fn manifest(
    State(s): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
    Path(id): Path<String>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, TaxiiError> {
    let Query(params) = params?;
    let c = collection_for(&s, &caller, &id).await?;
    require_read(&c, &caller)?;
    let mut f = parse_filters(params, VersionMatch::Last)?;
    f.query.with_body = false;
    let (rows, more, scanned) = visible_page(&s, &c.id, f.query, &caller).await?;
    let headers = date_headers(&rows);
    let records = rows
        .iter()
        .map(|r| {
            Ok(ManifestRecord {
                id: r.0.id.clone(),
                date_added: StixTimestamp::parse(&taxii_time(r.0.date_added))
                    .map_err(|e| TaxiiError::new(ErrorKind::Internal, e))?,
                version: r.0.version_text.clone(),
                media_type: Some(MEDIA_TYPE_STIX.to_owned()),
                extra: Default::default(),
            })
        })
        .collect::<Result<Vec<_>, TaxiiError>>()?;
    let body = Manifest {
        more: Some(more),
        objects: (!records.is_empty()).then_some(records),
        extra: next_extra(next_of(more, scanned)),
    };
    Ok(taxii_json(StatusCode::OK, &body, &headers))
}

/// The version of an object for the store: `modified`, else `created`, else the time it
/// was added (TAXII 2.1 §3.4.2 for objects without either).
fn version_of(o: &StixObject, now: Timestamp) -> (i64, String) {
    let c = o.common();
    match c.modified.as_ref().or(c.created.as_ref()) {
        Some(t) => (t.at().timestamp_micros(), t.as_str().to_owned()),
        None => (
            now.timestamp_micros(),
            now.to_rfc3339_opts(SecondsFormat::Micros, true),
        ),
    }
}

async fn add_objects(
    State(s): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, TaxiiError> {
    let c = collection_for(&s, &caller, &id).await?;
    require_write(&c, &caller)?;
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_taxii_content_type(ct) {
        let msg = ErrorMessage {
            title: "unsupported media type".to_owned(),
            description: Some(format!(
                "send the envelope with Content-Type: {MEDIA_TYPE_TAXII} (got {:?})",
                ct.chars().take(60).collect::<String>()
            )),
            error_id: None,
            error_code: None,
            http_status: Some("415".to_owned()),
            external_details: None,
            details: None,
            extra: Default::default(),
        };
        return Ok(taxii_json(StatusCode::UNSUPPORTED_MEDIA_TYPE, &msg, &[]));
    }
    let body = body?;
    let limits = Limits {
        max_bytes: s.config.taxii_max_content_length,
        ..Limits::default()
    };
    let env = parse_envelope(&body, &limits)?;
    drop(body);
    let now = s.clock.now();
    let objects = env.objects.unwrap_or_default();

    let mut tx = s.store.begin().await?;
    // A TAXII POST is shared with the coordination centre; the poster is its originator
    // (it always sees its own objects). As for reports, the poster's own clients are not
    // recipients: AMBER reaches them only if they are clients of a recipient.
    let orgs = tx.orgs().await?;
    let centres: BTreeSet<OrgId> = orgs
        .iter()
        .filter(|o| o.kind == OrgKind::CoordinationCentre)
        .map(|o| o.id)
        .collect();
    let by_name: BTreeMap<&str, OrgId> = orgs.iter().map(|o| (o.name.as_str(), o.id)).collect();
    let mut rows = Vec::with_capacity(objects.len());
    let mut successes = Vec::with_capacity(objects.len());
    let mut failures = Vec::new();
    for o in &objects {
        let official = Tlp::from_stix_id(o.id().as_str()).is_ok();
        let tlp = if official {
            Tlp::Clear
        } else {
            object_tlp(o, DEFAULT_TLP)?
        };
        let (version, version_text) = version_of(o, now);
        let mut value = o
            .to_value()
            .map_err(|e| TaxiiError::new(ErrorKind::Internal, format!("serialising: {e}")))?;
        // Stored as it is shared: an object without a TLP marking says TLP:AMBER.
        carry_tlp(&mut value, tlp);
        let excluded = match exclusions(&mut value, &by_name, &centres, caller.org.id) {
            Ok(x) => x,
            Err(message) => {
                failures.push(StatusDetails {
                    id: o.id().to_string(),
                    version: version_text,
                    message: Some(message),
                    extra: Default::default(),
                });
                continue;
            }
        };
        let body = serde_json::to_string(&value)
            .map_err(|e| TaxiiError::new(ErrorKind::Internal, format!("serialising: {e}")))?;
        successes.push(StatusDetails {
            id: o.id().to_string(),
            version: version_text.clone(),
            message: None,
            extra: Default::default(),
        });
        rows.push(NewStixObject {
            id: o.id().to_string(),
            object_type: o.object_type().to_owned(),
            spec_version: o
                .common()
                .spec_version
                .clone()
                .unwrap_or_else(|| "2.1".to_owned()),
            version,
            version_text,
            tlp,
            audience: Audience {
                originator: Some(caller.org.id),
                organisations: centres.difference(&excluded).copied().collect(),
                excluded,
                ..Audience::default()
            },
            body,
        });
    }
    drop(objects);
    let (first, _, stored) = tx
        .insert_stix_objects(&c.id, caller.org.id, &rows, now)
        .await?;
    // A POST that stored nothing (every object failed) takes no date_added: its status is
    // named by the poster, the instant and what failed, so two such POSTs do not collide.
    let name = if rows.is_empty() {
        let failed: Vec<&str> = failures.iter().map(|f| f.id.as_str()).collect();
        format!(
            "{}/empty/{}/{}/{}",
            c.id,
            caller.org.id,
            now.timestamp_micros(),
            failed.join(",")
        )
    } else {
        format!("{}/{first}", c.id)
    };
    let status_id = StixId::deterministic("x-mamori-status", &name)
        .map_err(|e| TaxiiError::new(ErrorKind::Internal, e))?
        .uuid()
        .to_string();
    let total = (rows.len() + failures.len()) as u64;
    let status = Status {
        id: status_id.clone(),
        status: StatusKind::Complete,
        request_timestamp: Some(StixTimestamp::from_datetime(now)),
        total_count: total,
        success_count: successes.len() as u64,
        successes: (!successes.is_empty()).then_some(successes),
        failure_count: failures.len() as u64,
        failures: (!failures.is_empty()).then_some(failures),
        pending_count: 0,
        pendings: None,
        extra: Default::default(),
    };
    let status_json = serde_json::to_string(&status)
        .map_err(|e| TaxiiError::new(ErrorKind::Internal, format!("serialising: {e}")))?;
    // The same failing POST again at the same instant is answered with the same status.
    match tx.taxii_status(&status_id, caller.org.id).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            tx.insert_taxii_status(&status_id, &c.id, caller.org.id, &status_json, now)
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    tracing::info!(org = %caller.org.id, collection = %c.alias, total, stored, "TAXII objects added");
    Ok(taxii_bytes(
        StatusCode::ACCEPTED,
        status_json.into_bytes(),
        &[],
    ))
}

/// The custom property with which a poster excludes organisations, by name (PP-11).
pub(crate) const EXCLUDE_PROPERTY: &str = "x_mamori_exclude";

/// Takes `x_mamori_exclude` out of a posted object (who excludes whom is itself
/// sensitive: it is kept in the audience, never in the stored or served body) and returns
/// the organisations it names. An error is the object's failure message in the status.
fn exclusions(
    object: &mut serde_json::Value,
    by_name: &BTreeMap<&str, OrgId>,
    centres: &BTreeSet<OrgId>,
    poster: OrgId,
) -> Result<BTreeSet<OrgId>, String> {
    let Some(v) = object
        .as_object_mut()
        .and_then(|m| m.remove(EXCLUDE_PROPERTY))
    else {
        return Ok(BTreeSet::new());
    };
    let names = v.as_array().ok_or_else(|| {
        format!("{EXCLUDE_PROPERTY} must be a list of organisation names; nothing was stored for this object")
    })?;
    let mut out = BTreeSet::new();
    for n in names {
        let name = n.as_str().ok_or_else(|| {
            format!("{EXCLUDE_PROPERTY} must list organisation names as strings; nothing was stored for this object")
        })?;
        let shown: String = name.chars().take(80).collect();
        let id = *by_name.get(name).ok_or_else(|| {
            format!("{EXCLUDE_PROPERTY} names {shown:?}, which is no organisation on this platform; nothing was stored for this object")
        })?;
        if id == poster || centres.contains(&id) {
            return Err(format!(
                "{EXCLUDE_PROPERTY} names {shown:?}, which is {}: exclude other organisations only; nothing was stored for this object",
                if id == poster {
                    "your own organisation"
                } else {
                    "the coordination centre"
                }
            ));
        }
        out.insert(id);
    }
    Ok(out)
}

fn is_taxii_content_type(ct: &str) -> bool {
    let mut parts = ct.split(';').map(str::trim);
    let ty = parts.next().unwrap_or("");
    let version = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("version"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned());
    ty.eq_ignore_ascii_case("application/taxii+json") && version.is_none_or(|v| v == "2.1")
}

async fn delete_object(
    State(s): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
    Path((id, object)): Path<(String, String)>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, TaxiiError> {
    let Query(params) = params?;
    if !params.is_empty() {
        return Err(TaxiiError::new(
            ErrorKind::InvalidInput,
            "DELETE removes every version your organisation posted; it takes no filters",
        ));
    }
    let c = collection_for(&s, &caller, &id).await?;
    require_write(&c, &caller)?;
    let mut tx = s.store.begin().await?;
    let n = match tx.delete_stix_object(&c.id, &object, caller.org.id).await {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::NotFound => 0,
        Err(e) => return Err(e.into()),
    };
    if n == 0 {
        // Whether someone else posted it is not disclosed.
        return Err(TaxiiError::new(
            ErrorKind::NotFound,
            format!(
                "no object {} posted by your organisation in this collection: only the organisation that posted an object may delete it",
                object.chars().take(100).collect::<String>()
            ),
        ));
    }
    tx.commit().await?;
    tracing::info!(org = %caller.org.id, collection = %c.alias, versions = n, "TAXII object deleted");
    Ok(taxii_bytes(StatusCode::OK, Vec::new(), &[]))
}

async fn status(
    State(s): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    let mut tx = s.store.begin_read().await?;
    let body = tx.taxii_status(&id, caller.org.id).await?;
    tx.commit().await?;
    Ok(taxii_bytes(StatusCode::OK, body.into_bytes(), &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
            accepts_taxii(&m)
        };
        assert!(accepts_taxii(&HeaderMap::new()));
        assert!(h("application/taxii+json;version=2.1"));
        assert!(h("application/taxii+json; version=2.1"));
        assert!(h("application/taxii+json"));
        assert!(h("text/html, */*;q=0.1"));
        assert!(!h("application/taxii+json;version=2.0"));
        assert!(!h("application/vnd.oasis.taxii+json"));
        assert!(!h("application/json"));
        assert!(is_taxii_content_type("application/taxii+json;version=2.1"));
        assert!(!is_taxii_content_type("application/json"));
        assert!(!is_taxii_content_type(""));
    }

    #[test]
    fn filters() {
        let p = |v: &[(&str, &str)]| {
            parse_filters(
                v.iter()
                    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                    .collect(),
                VersionMatch::Last,
            )
        };
        let f = p(&[
            ("match[type]", "indicator,note"),
            ("limit", "5000"),
            ("added_after", "2026-01-01T00:00:00.000001Z"),
            ("next", "1"),
            ("match[version]", "first,2016-04-06T20:03:48.000Z"),
        ])
        .unwrap()
        .query;
        assert_eq!(f.types, ["indicator", "note"]);
        assert_eq!(f.limit, MAX_PAGE);
        assert_eq!(f.added_after, Some(1_767_225_600_000_001));
        assert_eq!(
            f.versions,
            [VersionMatch::First, VersionMatch::At(1_459_973_028_000_000)]
        );
        assert_eq!(p(&[]).unwrap().query.versions, [VersionMatch::Last]);
        for bad in [
            ("limit", "-1"),
            ("next", "abc"),
            ("added_after", "yesterday"),
            ("match[colour]", "red"),
        ] {
            let e = p(&[bad]).err().unwrap();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert!(!e.description.is_empty());
        }
    }
}
