//! One macro for the closed vocabularies (sectors, organisation kinds, roles, clearances):
//! each word has a stable machine name (`slug`) for APIs, config and storage, and a
//! Japanese and an English name for people. Parsing refuses anything else, once, at the
//! edge (STYLE principle 5), with an error that lists what is accepted.

/// A name that is not in a closed vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}: expected one of {}", expected.join(", "))]
pub struct UnknownName {
    /// Which vocabulary was being parsed.
    pub what: &'static str,
    /// The first characters of what was given.
    pub given: String,
    /// The accepted names.
    pub expected: &'static [&'static str],
}

macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($variant:ident => $slug:literal, $ja:literal, $en:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $(#[doc = concat!($en, " (", $ja, ")")] $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable machine name used in APIs, config and storage.
            pub fn slug(self) -> &'static str {
                match self { $($name::$variant => $slug,)* }
            }

            /// The name in Japanese.
            pub fn name_ja(self) -> &'static str {
                match self { $($name::$variant => $ja,)* }
            }

            /// The name in English.
            pub fn name_en(self) -> &'static str {
                match self { $($name::$variant => $en,)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.slug())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::named::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($slug => Ok($name::$variant),)*
                    _ => Err($crate::named::UnknownName {
                        what: $what,
                        given: s.chars().take(40).collect(),
                        expected: &[$($slug),*],
                    }),
                }
            }
        }
    };
}

pub(crate) use named_enum;
