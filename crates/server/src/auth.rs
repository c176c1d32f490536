//! Who is calling: the bearer token, checked against the store on every request.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mamori_core::{ErrorKind, Role};
use mamori_store::Principal;

/// The authenticated caller. A handler that takes one can only run for a valid,
/// unexpired, unrevoked token.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthenticated,
                "no credentials: send the header Authorization: Bearer <token>",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Unauthenticated,
                    "the Authorization header must be `Bearer <token>`",
                )
            })?;
        Caller::from_token(state, token).await
    }
}

impl Caller {
    /// The caller a token text speaks for (also used by TAXII, which accepts the token
    /// inside HTTP Basic too).
    pub(crate) async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let now = state.clock.now();
        let mut tx = state.store.begin_read().await?;
        let principal = tx.authenticate(token, now).await?;
        tx.commit().await?;
        Ok(Caller(principal))
    }

    /// The caller as the ledger records an actor.
    pub(crate) fn actor(&self) -> mamori_oversight::Actor {
        mamori_oversight::Actor {
            org: Some(self.0.org.id),
            user: Some(self.0.user.id),
            name: self.0.user.name.clone(),
        }
    }

    /// Refuses with 403 unless the caller holds one of `roles`.
    pub(crate) fn require(&self, roles: &[Role], to: &str) -> Result<(), ApiError> {
        if roles.contains(&self.0.user.role) {
            return Ok(());
        }
        let needed: Vec<&str> = roles.iter().map(|r| r.slug()).collect();
        Err(ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "{to} needs the role {}; user {:?} has the role {}",
                needed.join(" or "),
                self.0.user.name,
                self.0.user.role
            ),
        ))
    }
}
