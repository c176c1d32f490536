//! Typed ids: an `OrgId` cannot be passed where a `UserId` is meant.
//!
//! Ids are the store's row numbers (positive 64-bit integers): the same on SQLite and
//! PostgreSQL, short in URLs and logs. They carry no meaning and are never reused.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct $name(pub i64);

        impl $name {
            /// The raw row number.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.parse::<i64>() {
                    Ok(n) if n > 0 => Ok(Self(n)),
                    _ => Err(IdParseError { what: $what, input: s.chars().take(40).collect() }),
                }
            }
        }
    };
}

typed_id!(
    /// An organisation: an operator, a carrier, the coordination centre, …
    OrgId, "organisation id"
);
typed_id!(
    /// A person (or a machine account) inside an organisation.
    UserId, "user id"
);
typed_id!(
    /// An API token (the id, never the secret).
    TokenId, "token id"
);

/// A string that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid {what}: expected a positive whole number")]
pub struct IdParseError {
    /// Which kind of id was expected.
    pub what: &'static str,
    /// The first characters of what was given.
    pub input: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_positive_numbers_only() {
        assert_eq!("42".parse::<OrgId>(), Ok(OrgId(42)));
        let err = "0".parse::<UserId>().unwrap_err();
        assert_eq!(err.what, "user id");
        assert!("-3".parse::<TokenId>().is_err());
        assert!(
            "abc"
                .parse::<TokenId>()
                .unwrap_err()
                .to_string()
                .contains("token id")
        );
    }
}
