//! Administration over the API: organisations, users, tokens (role `admin`).
//! The same acts as `mamori admin …` on the command line.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mamori_core::{Clearance, ErrorKind, OrgId, OrgKind, Role, Sector, TokenId, UserId};
use mamori_store::{NewOrg, NewUser, Org, TokenInfo, User};
use serde::{Deserialize, Serialize};

const ADMIN: &[Role] = &[Role::Admin];

/// Registers an organisation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrg {
    /// What it is.
    kind: OrgKind,
    /// Its critical-infrastructure sector, if any.
    #[serde(default)]
    sector: Option<Sector>,
    /// Its name (unique).
    name: String,
}

/// Creates a user in an organisation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    /// The organisation.
    org: OrgId,
    /// Login name (unique).
    name: String,
    /// Role; must fit the organisation's kind.
    role: Role,
    /// Security clearance; `none` if omitted.
    #[serde(default)]
    clearance: Clearance,
}

/// Issues a token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueToken {
    /// The user the token acts as.
    user: UserId,
    /// What it is for.
    #[serde(default)]
    label: String,
    /// Lifetime in days (1–3650); the server's `token_lifetime_days` if omitted.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A new token: the secret is shown here once and never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IssuedToken {
    /// What is kept about the token.
    token: TokenInfo,
    /// The bearer token text. Store it now: only its digest is kept.
    secret: String,
}

/// Filter for the token list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenFilter {
    /// Only this user's tokens.
    user: Option<UserId>,
}

/// One organisation in the directory every member may read: what a reporter needs to
/// name it in `exclude`, `route_to` or `share_with`, and nothing more (no contacts, no
/// registered profile, no users).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DirectoryEntry {
    /// Its id.
    id: OrgId,
    /// Its registered name (unique; a report's audience lists take it too).
    name: String,
    /// What it is.
    kind: OrgKind,
    /// Its critical-infrastructure sector, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    sector: Option<Sector>,
}

/// The directory of organisations, for every authenticated caller: id, name, kind and
/// sector, so a reporter can name who to exclude or share with (PP-11).
#[utoipa::path(get, path = "/api/v1/orgs", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Vec<DirectoryEntry>), (status = 401, body = ErrorBody)))]
pub(crate) async fn directory(
    State(s): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<DirectoryEntry>>, ApiError> {
    let mut tx = s.store.begin_read().await?;
    let orgs = tx.orgs().await?;
    tx.commit().await?;
    Ok(Json(
        orgs.into_iter()
            .map(|o| DirectoryEntry {
                id: o.id,
                name: o.name,
                kind: o.kind,
                sector: o.sector,
            })
            .collect(),
    ))
}

/// Every organisation.
#[utoipa::path(get, path = "/api/v1/admin/orgs", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<Org>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_orgs(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Org>>, ApiError> {
    caller.require(ADMIN, "listing organisations")?;
    let mut tx = s.store.begin_read().await?;
    let orgs = tx.orgs().await?;
    tx.commit().await?;
    Ok(Json(orgs))
}

/// Registers an organisation.
#[utoipa::path(post, path = "/api/v1/admin/orgs", tag = "admin", security(("bearer" = [])), request_body = CreateOrg,
    responses((status = 201, body = Org), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn create_org(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateOrg>,
) -> Result<(StatusCode, Json<Org>), ApiError> {
    caller.require(ADMIN, "registering an organisation")?;
    let mut tx = s.store.begin().await?;
    let org = tx
        .create_org(
            &NewOrg {
                kind: req.kind,
                sector: req.sector,
                name: req.name,
            },
            s.clock.now(),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(org = %org.id, by = %caller.0.user.id, "organisation registered");
    Ok((StatusCode::CREATED, Json(org)))
}

/// Every user.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_users(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<User>>, ApiError> {
    caller.require(ADMIN, "listing users")?;
    let mut tx = s.store.begin_read().await?;
    let users = tx.users().await?;
    tx.commit().await?;
    Ok(Json(users))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])), request_body = CreateUser,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn create_user(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    caller.require(ADMIN, "creating a user")?;
    let mut tx = s.store.begin().await?;
    let user = tx
        .create_user(
            &NewUser {
                org: req.org,
                name: req.name,
                role: req.role,
                clearance: req.clearance,
            },
            s.clock.now(),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(user = %user.id, by = %caller.0.user.id, "user created");
    Ok((StatusCode::CREATED, Json(user)))
}

/// Tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "admin", security(("bearer" = [])), params(TokenFilter),
    responses((status = 200, body = Vec<TokenInfo>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_tokens(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<TokenFilter>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    caller.require(ADMIN, "listing tokens")?;
    let mut tx = s.store.begin_read().await?;
    let tokens = tx.tokens(filter.user).await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

/// Issues a token for a user; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/admin/tokens", tag = "admin", security(("bearer" = [])), request_body = IssueToken,
    responses((status = 201, body = IssuedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn issue_token(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<IssueToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    caller.require(ADMIN, "issuing a token")?;
    let days = req.expires_in_days.unwrap_or(s.config.token_lifetime_days);
    if !(1..=3650).contains(&days) {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!("expires_in_days must be between 1 and 3650, not {days}"),
        ));
    }
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let expires = now + chrono::Duration::days(i64::from(days));
    let (token, secret) = mamori_oversight::acts::issue_token(
        &mut tx,
        caller.actor(),
        req.user,
        &req.label,
        expires,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(token = %token.id, user = %token.user, by = %caller.0.user.id, "token issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token,
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Revokes a token at once.
#[utoipa::path(post, path = "/api/v1/admin/tokens/{id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path, description = "token id")),
    responses((status = 200, body = TokenInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn revoke_token(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    caller.require(ADMIN, "revoking a token")?;
    let id: TokenId = id.parse().map_err(|e: mamori_core::id::IdParseError| {
        ApiError::new(ErrorKind::InvalidInput, e.to_string())
    })?;
    let mut tx = s.store.begin().await?;
    let token =
        mamori_oversight::acts::revoke_token(&mut tx, caller.actor(), id, s.clock.now()).await?;
    tx.commit().await?;
    tracing::info!(token = %token.id, by = %caller.0.user.id, "token revoked");
    Ok(Json(token))
}
