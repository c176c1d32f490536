//! Acts that must be recorded, done together with their ledger entry. Callers use these
//! instead of the bare store operations, so the entry cannot be forgotten.

use crate::Result;
use crate::entry::{Act, Actor, Entry};
use crate::log::append;
use mamori_core::time::Timestamp;
use mamori_core::{TokenId, UserId};
use mamori_store::{TokenInfo, TokenSecret, Tx};

/// Issues a token and records it (in the same transaction).
pub async fn issue_token(
    tx: &mut Tx,
    actor: Actor,
    user: UserId,
    label: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<(TokenInfo, TokenSecret)> {
    let (info, secret) = tx.issue_token(user, label, expires_at, now).await?;
    let act = Act::TokenIssued {
        token: info.id,
        user,
        expires_at: info.expires_at,
    };
    append(tx, &[Entry::new(now, actor, act)]).await?;
    Ok((info, secret))
}

/// Revokes a token and records it (in the same transaction).
pub async fn revoke_token(
    tx: &mut Tx,
    actor: Actor,
    token: TokenId,
    now: Timestamp,
) -> Result<TokenInfo> {
    let info = tx.revoke_token(token, now).await?;
    append(
        tx,
        &[Entry::new(
            now,
            actor,
            Act::TokenRevoked {
                token,
                user: info.user,
            },
        )],
    )
    .await?;
    Ok(info)
}
