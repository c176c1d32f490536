//! API token text: `mamori_<id>_<secret>`, the secret 256 random bits in base64url.
//!
//! Only SHA-256(secret) is stored; the id in the text finds the row, and the digest is
//! compared in constant time (`subtle`), so neither the database nor response timing
//! tells anything about a secret. The `mamori_` prefix lets secret scanners spot a
//! leaked token.

use crate::accounts::{Org, User};
use crate::error::StoreError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mamori_core::TokenId;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

const PREFIX: &str = "mamori_";
const SECRET_BYTES: usize = 32;

/// A token's full text, shown once when issued. Its `Debug` does not print the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    pub(crate) fn new(id: TokenId, secret: &str) -> Self {
        Self(format!("{PREFIX}{id}_{secret}"))
    }

    /// The text to hand to the token's holder.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(…)")
    }
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Principal {
    /// The user.
    pub user: User,
    /// The user's organisation.
    pub org: Org,
    /// The token used.
    pub token: TokenId,
    /// The organisations whose client the user's organisation is (TLP:AMBER reaches a
    /// recipient organisation's clients), loaded with the token.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<i64>))]
    pub client_of: Vec<mamori_core::OrgId>,
}

pub(crate) fn random_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

pub(crate) fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub(crate) fn digest_matches(stored: &[u8], secret: &str) -> bool {
    bool::from(stored.ct_eq(&digest(secret)))
}

/// Splits token text into its id and secret, if it has the issued shape.
pub(crate) fn parse(token: &str) -> Option<(TokenId, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id: TokenId = id.parse().ok()?;
    // 32 bytes in unpadded base64 are 43 characters.
    (secret.len() == 43 && URL_SAFE_NO_PAD.decode(secret).is_ok()).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_text_parses_back_and_only_its_secret_matches() {
        let secret = random_secret().unwrap();
        let text = TokenSecret::new(TokenId(7), &secret);
        let (id, s) = parse(text.expose()).unwrap();
        assert_eq!((id, s), (TokenId(7), secret.as_str()));
        assert!(digest_matches(&digest(&secret), s));
        assert!(!digest_matches(&digest(&random_secret().unwrap()), s));
        assert!(!digest_matches(&[], s));
        assert_eq!(format!("{text:?}"), "TokenSecret(…)");
    }

    #[test]
    fn malformed_texts_are_refused() {
        let good = random_secret().unwrap();
        for bad in [
            String::new(),
            format!("mamori_0_{good}"),
            format!("mamori_x_{good}"),
            format!("other_1_{good}"),
            "mamori_1_short".to_owned(),
            format!("mamori_1_{}", &good[..42]),
            format!("mamori_1_{good}!"),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }
}
