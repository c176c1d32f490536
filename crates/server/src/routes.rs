//! The router: endpoints, the OpenAPI document generated from them, and the layers every
//! request passes through (request id, trace, timeout, body limit).

use crate::admin;
use crate::auth::Caller;
use crate::error::{self, ApiError, ErrorBody, InternalErrorMarker};
use crate::events;
use crate::export;
use crate::findings;
use crate::ledger;
use crate::relay;
use crate::reports;
use crate::state::AppState;
use crate::taxii;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use mamori_core::ErrorKind;
use mamori_store::Principal;
use serde::Serialize;
use std::time::Duration;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mamori",
        description = "The coordination centre's API of mamori, an Active Cyber Defense platform. \
                       Authenticate with `Authorization: Bearer <token>`; errors are \
                       `{\"error\":{\"code\":…,\"message\":…}}`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "health", description = "Liveness"),
        (name = "accounts", description = "Who am I, and the directory of organisations"),
        (name = "admin", description = "Organisations, users and tokens (role admin)"),
        (name = "export", description = "Everything the caller may see as STIX 2.1 bundles, page by page"),
        (name = "findings", description = "Findings about servers from carriers' sensors, under their TLP"),
        (name = "ledger", description = "The overseer's verifiable log (role overseer; checkpoint and key are public)"),
        (name = "events", description = "Server-sent events: new and updated reports and TAXII objects, each as its TLP allows the subscriber"),
        (name = "reports", description = "Incident reports to the one window: flash report, stages, regime status, under their TLP")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(whoami))
        .routes(routes!(admin::directory))
        .routes(routes!(admin::list_orgs, admin::create_org))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::list_tokens, admin::issue_token))
        .routes(routes!(admin::revoke_token))
        .routes(routes!(ledger::checkpoint, ledger::checkpoint_now))
        .routes(routes!(ledger::key))
        .routes(routes!(ledger::entries))
        .routes(routes!(ledger::inclusion))
        .routes(routes!(ledger::consistency))
        .routes(routes!(findings::submit, findings::list))
        .routes(routes!(reports::submit, reports::list))
        .routes(routes!(reports::get))
        .routes(routes!(reports::add_stage))
        .routes(routes!(reports::acknowledge))
        .routes(routes!(reports::rate))
        .routes(routes!(relay::request))
        .routes(routes!(relay::decide))
        .routes(routes!(relay::source))
        .routes(routes!(events::stream))
        .routes(routes!(export::export))
        .split_for_parts()
}

/// The OpenAPI 3.1 document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The centre's HTTP service.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = api();
    let doc = std::sync::Arc::new(doc);
    let timeout = Duration::from_secs(state.config.request_timeout_secs.max(1));
    routes
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .merge(taxii::router(state.config.taxii_max_content_length))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), wake_subscribers))
        .layer(middleware::from_fn(move |req, next| with_timeout(timeout, req, next)))
        .layer(middleware::from_fn(name_request_in_internal_errors))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The path only: query strings may carry search terms worth keeping out of logs.
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// After a write that succeeded, wakes this instance's event-stream subscribers (they
/// read the change feed, which the store appended to in the write's own transaction).
async fn wake_subscribers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let resp = next.run(req).await;
    if write && resp.status().is_success() {
        state.changed();
    }
    resp
}

async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        // Dropping the handler's future drops its transaction: nothing half-done is kept.
        Err(_) => ApiError::new(
            ErrorKind::Unavailable,
            format!(
                "the request took longer than {} s and was abandoned; nothing was changed, try again",
                limit.as_secs()
            ),
        )
        .into_response(),
    }
}

/// A 500 tells the client only which request failed, so an operator can find the
/// details in the log.
async fn name_request_in_internal_errors(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let resp = next.run(req).await;
    if resp.extensions().get::<InternalErrorMarker>().is_none() {
        return resp;
    }
    let (parts, _) = resp.into_parts();
    let body = ErrorBody {
        error: error::ErrorDetail {
            code: ErrorKind::Internal.code().to_owned(),
            message: format!("internal error (request id {id}): the details are in the server log"),
        },
    };
    (parts, Json(body)).into_response()
}

fn is_taxii(path: &str) -> bool {
    path == "/taxii2" || path.starts_with("/taxii2/")
}

async fn not_found(method: Method, uri: Uri) -> Response {
    if is_taxii(uri.path()) {
        return taxii::unknown_path(&method, uri.path(), true);
    }
    ApiError::new(
        ErrorKind::NotFound,
        format!(
            "no endpoint {method} {}: see /api/openapi.json for the API",
            uri.path()
        ),
    )
    .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    if is_taxii(uri.path()) {
        return taxii::unknown_path(&method, uri.path(), false);
    }
    error::method_not_allowed(&method, uri.path())
}

/// Liveness and database reachability.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `ok` when the database answers.
    status: &'static str,
    /// `sqlite` or `postgres`.
    database: &'static str,
}

/// Is the server up, and does its database answer?
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await?;
    Ok(Json(Health {
        status: "ok",
        database: state.store.backend().name(),
    }))
}

/// The user, organisation and token the request is authenticated as.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Principal), (status = 401, body = ErrorBody)))]
async fn whoami(Caller(p): Caller) -> Json<Principal> {
    Json(p)
}
