//! Organisations, users and API tokens (issue 3).

use crate::Result;
use crate::backend::{Tx, on_backend};
use crate::error::StoreError;
use crate::token::{self, Principal, TokenSecret};
use mamori_core::time::Timestamp;
use mamori_core::{Clearance, OrgId, OrgKind, Role, Sector, TokenId, UserId};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// An organisation taking part: an operator, a carrier, the centre itself, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Org {
    /// Its id.
    pub id: OrgId,
    /// What it is.
    pub kind: OrgKind,
    /// Its critical-infrastructure sector, if it has one.
    pub sector: Option<Sector>,
    /// Its name, unique on the platform.
    pub name: String,
    /// When it was registered.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// What registering an organisation needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewOrg {
    /// What it is.
    pub kind: OrgKind,
    /// Its sector, if any.
    pub sector: Option<Sector>,
    /// Its name (1–200 characters, unique).
    pub name: String,
}

/// A person or machine account inside an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The organisation it belongs to.
    pub org: OrgId,
    /// Its login name, unique on the platform.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Its security clearance (PP-3).
    pub clearance: Clearance,
    /// When it was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// What creating a user needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewUser {
    /// The organisation it belongs to.
    pub org: OrgId,
    /// Its login name (1–200 characters, unique).
    pub name: String,
    /// Its role; must fit the organisation's kind ([`Role::allowed_in`]).
    pub role: Role,
    /// Its clearance.
    pub clearance: Clearance,
}

/// What is kept about an API token: never its secret, only when and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    /// Its id (also the visible part of the token text).
    pub id: TokenId,
    /// The user it acts as.
    pub user: UserId,
    /// What it is for, as the issuer wrote it.
    pub label: String,
    /// When it was issued.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it stops working.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    /// When it was revoked, if it was.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<Timestamp>,
}

/// A token's state at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TokenState {
    /// It works.
    Active,
    /// Its lifetime is over.
    Expired,
    /// Someone revoked it.
    Revoked,
}

impl TokenInfo {
    /// Its state at `now`.
    pub fn state(&self, now: Timestamp) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if now >= self.expires_at {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0 || n > 200 || name.trim() != name || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "{what} name {:?} is not acceptable: use 1 to 200 printable characters without leading or trailing spaces",
            name.chars().take(60).collect::<String>()
        )));
    }
    Ok(())
}

pub(crate) fn parse_col<T: FromStr>(what: &'static str, s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

type OrgRow = (i64, String, Option<String>, String, Timestamp);
type UserRow = (i64, i64, String, String, String, Timestamp);
type TokenRow = (i64, i64, String, Timestamp, Timestamp, Option<Timestamp>);

fn org_from((id, kind, sector, name, created_at): OrgRow) -> Result<Org> {
    Ok(Org {
        id: OrgId(id),
        kind: parse_col("organisation kind", &kind)?,
        sector: sector.map(|s| parse_col("sector", &s)).transpose()?,
        name,
        created_at,
    })
}

fn user_from((id, org, name, role, clearance, created_at): UserRow) -> Result<User> {
    Ok(User {
        id: UserId(id),
        org: OrgId(org),
        name,
        role: parse_col("role", &role)?,
        clearance: parse_col("clearance", &clearance)?,
        created_at,
    })
}

fn token_from((id, user, label, created_at, expires_at, revoked_at): TokenRow) -> TokenInfo {
    TokenInfo {
        id: TokenId(id),
        user: UserId(user),
        label,
        created_at,
        expires_at,
        revoked_at,
    }
}

impl Tx {
    /// Registers an organisation.
    pub async fn create_org(&mut self, new: &NewOrg, now: Timestamp) -> Result<Org> {
        check_name("organisation", &new.name)?;
        let conflict = format!("an organisation named {:?} already exists", new.name);
        let id: i64 = on_backend!(self, c => sqlx::query_scalar(
            "INSERT INTO orgs (kind, sector, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(new.kind.slug())
            .bind(new.sector.map(Sector::slug))
            .bind(&new.name)
            .bind(now)
            .fetch_one(&mut *c).await)
        .map_err(StoreError::db("create organisation", &conflict))?;
        Ok(Org {
            id: OrgId(id),
            kind: new.kind,
            sector: new.sector,
            name: new.name.clone(),
            created_at: now,
        })
    }

    /// The organisation `id`.
    pub async fn org(&mut self, id: OrgId) -> Result<Org> {
        let row: Option<OrgRow> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, kind, sector, name, created_at FROM orgs WHERE id = $1")
            .bind(id.get())
            .fetch_optional(&mut *c).await)
        .map_err(StoreError::db("read organisation", ""))?;

        row.map(org_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                what: "organisation",
                id: id.to_string(),
            })
    }

    /// Every organisation, oldest first.
    pub async fn orgs(&mut self) -> Result<Vec<Org>> {
        let rows: Vec<OrgRow> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, kind, sector, name, created_at FROM orgs ORDER BY id")
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("list organisations", ""))?;
        rows.into_iter().map(org_from).collect()
    }

    /// Creates a user in an existing organisation, if its role fits the organisation.
    pub async fn create_user(&mut self, new: &NewUser, now: Timestamp) -> Result<User> {
        check_name("user", &new.name)?;
        let org = match self.org(new.org).await {
            Err(StoreError::NotFound { .. }) => {
                return Err(StoreError::Invalid(format!(
                    "organisation {} does not exist: create it first",
                    new.org
                )));
            }
            other => other?,
        };
        if !new.role.allowed_in(org.kind) {
            return Err(StoreError::Invalid(format!(
                "role {} cannot belong to {:?}, an organisation of kind {}: {}",
                new.role,
                org.name,
                org.kind,
                role_hint(new.role)
            )));
        }
        let conflict = format!("a user named {:?} already exists", new.name);
        let id: i64 = on_backend!(self, c => sqlx::query_scalar(
            "INSERT INTO users (org_id, name, role, clearance, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(new.org.get())
            .bind(&new.name)
            .bind(new.role.slug())
            .bind(new.clearance.slug())
            .bind(now)
            .fetch_one(&mut *c).await)
        .map_err(StoreError::db("create user", &conflict))?;
        Ok(User {
            id: UserId(id),
            org: new.org,
            name: new.name.clone(),
            role: new.role,
            clearance: new.clearance,
            created_at: now,
        })
    }

    /// The user `id`.
    pub async fn user(&mut self, id: UserId) -> Result<User> {
        let row: Option<UserRow> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, org_id, name, role, clearance, created_at FROM users WHERE id = $1")
            .bind(id.get())
            .fetch_optional(&mut *c).await)
        .map_err(StoreError::db("read user", ""))?;
        row.map(user_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                what: "user",
                id: id.to_string(),
            })
    }

    /// Every user, oldest first.
    pub async fn users(&mut self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, org_id, name, role, clearance, created_at FROM users ORDER BY id")
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("list users", ""))?;
        rows.into_iter().map(user_from).collect()
    }

    /// Issues a token for `user`, valid until `expires_at`. The returned secret is the
    /// only copy: only its SHA-256 digest is stored.
    pub async fn issue_token(
        &mut self,
        user: UserId,
        label: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(TokenInfo, TokenSecret)> {
        if label.chars().count() > 200 || label.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "token label must be at most 200 printable characters".into(),
            ));
        }
        if expires_at <= now {
            return Err(StoreError::Invalid(
                "token expiry must be in the future".into(),
            ));
        }
        match self.user(user).await {
            Err(StoreError::NotFound { .. }) => {
                return Err(StoreError::Invalid(format!(
                    "user {user} does not exist: create it first"
                )));
            }
            other => other?,
        };
        let secret = token::random_secret()?;
        let digest = token::digest(&secret).to_vec();
        let id: i64 = on_backend!(self, c => sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, label, digest, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(user.get())
            .bind(label)
            .bind(&digest)
            .bind(now)
            .bind(expires_at)
            .fetch_one(&mut *c).await)
        .map_err(StoreError::db("issue token", "token id collision"))?;
        let info = TokenInfo {
            id: TokenId(id),
            user,
            label: label.to_owned(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        Ok((info, TokenSecret::new(TokenId(id), &secret)))
    }

    /// The token `id` (without its secret).
    pub async fn token(&mut self, id: TokenId) -> Result<TokenInfo> {
        let row: Option<TokenRow> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, user_id, label, created_at, expires_at, revoked_at FROM api_tokens WHERE id = $1")
            .bind(id.get())
            .fetch_optional(&mut *c).await)
        .map_err(StoreError::db("read token", ""))?;
        row.map(token_from).ok_or_else(|| StoreError::NotFound {
            what: "token",
            id: id.to_string(),
        })
    }

    /// Every token, of one user or of all, oldest first.
    pub async fn tokens(&mut self, user: Option<UserId>) -> Result<Vec<TokenInfo>> {
        let rows: Vec<TokenRow> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, user_id, label, created_at, expires_at, revoked_at FROM api_tokens
             WHERE $1 IS NULL OR user_id = $1 ORDER BY id")
            .bind(user.map(UserId::get))
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("list tokens", ""))?;
        Ok(rows.into_iter().map(token_from).collect())
    }

    /// Revokes the token `id` from `now` on. Revoking twice is a conflict, so the first
    /// revocation time is never overwritten.
    pub async fn revoke_token(&mut self, id: TokenId, now: Timestamp) -> Result<TokenInfo> {
        let info = self.token(id).await?;
        if let Some(at) = info.revoked_at {
            return Err(StoreError::Conflict(format!(
                "token {id} was already revoked at {}",
                mamori_core::time::rfc3339(at)
            )));
        }
        on_backend!(self, c => sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id.get())
            .execute(&mut *c).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("revoke token", ""))?;
        Ok(TokenInfo {
            revoked_at: Some(now),
            ..info
        })
    }

    /// Who presents `token` at `now`: the token must parse, exist, match in constant time,
    /// be unexpired and unrevoked.
    pub async fn authenticate(&mut self, token: &str, now: Timestamp) -> Result<Principal> {
        let (id, secret) = token::parse(token).ok_or(StoreError::Unauthenticated(
            "the bearer token is malformed: expected mamori_<id>_<secret> as issued by `mamori admin token issue`",
        ))?;
        let row: Option<(Vec<u8>, Timestamp, Option<Timestamp>, i64)> =
            on_backend!(self, c => sqlx::query_as(
            "SELECT digest, expires_at, revoked_at, user_id FROM api_tokens WHERE id = $1")
            .bind(id.get())
            .fetch_optional(&mut *c).await)
            .map_err(StoreError::db("authenticate", ""))?;
        let unknown = StoreError::Unauthenticated(
            "unknown token: check that it was copied whole, or ask an administrator for a new one",
        );
        let Some((stored, expires_at, revoked_at, user)) = row else {
            return Err(unknown);
        };
        if !token::digest_matches(&stored, secret) {
            return Err(unknown);
        }
        if revoked_at.is_some() {
            return Err(StoreError::Unauthenticated(
                "this token has been revoked: ask an administrator for a new one",
            ));
        }
        if now >= expires_at {
            return Err(StoreError::Unauthenticated(
                "this token has expired: ask an administrator for a new one",
            ));
        }
        let user = self.user(UserId(user)).await?;
        let org = self.org(user.org).await?;
        let client_of = self.client_of(org.id).await?;
        Ok(Principal {
            user,
            org,
            token: id,
            client_of,
        })
    }

    /// On an empty database, creates the coordination centre, its first administrator and
    /// a token for it. Returns `None` (and changes nothing) if any organisation exists.
    pub async fn bootstrap_admin(
        &mut self,
        centre_name: &str,
        admin_name: &str,
        token_lifetime: chrono::Duration,
        now: Timestamp,
    ) -> Result<Option<(User, TokenInfo, TokenSecret)>> {
        let any: Option<i64> =
            on_backend!(self, c => sqlx::query_scalar("SELECT id FROM orgs LIMIT 1")
            .fetch_optional(&mut *c).await)
            .map_err(StoreError::db("bootstrap", ""))?;
        if any.is_some() {
            return Ok(None);
        }
        let org = self
            .create_org(
                &NewOrg {
                    kind: OrgKind::CoordinationCentre,
                    sector: None,
                    name: centre_name.to_owned(),
                },
                now,
            )
            .await?;
        let user = self
            .create_user(
                &NewUser {
                    org: org.id,
                    name: admin_name.to_owned(),
                    role: Role::Admin,
                    clearance: Clearance::None,
                },
                now,
            )
            .await?;
        let (info, secret) = self
            .issue_token(
                user.id,
                "first administrator (mamori init)",
                now + token_lifetime,
                now,
            )
            .await?;
        Ok(Some((user, info, secret)))
    }
}

fn role_hint(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Analyst => {
            "administrators and analysts belong to the coordination centre"
        }
        Role::Officer => "officers belong to an operations unit",
        Role::Overseer => "overseers belong to the independent overseer",
        Role::Member => "members may belong to any organisation",
    }
}
