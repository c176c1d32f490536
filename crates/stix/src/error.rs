//! The crate's one error type (STYLE principle 6).

use mamori_core::ErrorKind;
use mamori_core::Tlp;
use std::fmt;

/// Where in a document a problem was found: which object (by index in `objects`, and its id
/// when it had a readable one) and which property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Index of the object in the bundle's or envelope's `objects` array; `None` for the
    /// bundle or envelope itself, or for a single object parsed alone.
    pub index: Option<usize>,
    /// The object's `id`, when it had a string one.
    pub id: Option<String>,
    /// The property, as a path: `created`, `external_references[2].source_name`.
    pub property: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.index, &self.id) {
            (Some(i), Some(id)) => write!(f, "object {i} ({id})")?,
            (Some(i), None) => write!(f, "object {i}")?,
            (None, Some(id)) => f.write_str(id)?,
            (None, None) => f.write_str("document")?,
        }
        if !self.property.is_empty() {
            write!(f, ", property `{}`", self.property)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong reading, checking or writing STIX and TAXII.
///
/// Every variant names the first problem found and what was expected there, so that a
/// partner whose submission is refused can fix it from the message alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document is bigger than the caller's limit; nothing was parsed.
    #[error(
        "document is {bytes} bytes, more than the limit of {limit} bytes: split it into smaller bundles"
    )]
    TooLarge {
        /// Size of the document.
        bytes: usize,
        /// The caller's limit.
        limit: usize,
    },
    /// The `objects` array holds more objects than the caller's limit.
    #[error(
        "document holds {count} objects, more than the limit of {limit}: split it into smaller bundles"
    )]
    TooManyObjects {
        /// Number of objects.
        count: usize,
        /// The caller's limit.
        limit: usize,
    },
    /// JSON arrays and objects are nested deeper than the caller's limit.
    #[error("JSON nesting is deeper than the limit of {limit} levels (at byte {offset})")]
    TooDeep {
        /// The caller's limit.
        limit: usize,
        /// Byte offset where the limit was crossed.
        offset: usize,
    },
    /// The bytes are not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser expected.
        message: String,
    },
    /// A property is missing or has the wrong form.
    #[error("{at}: expected {expected}{}", found.as_deref().map(|f| format!(", found {f}")).unwrap_or_default())]
    Invalid {
        /// Where.
        at: Location,
        /// What a valid document has there.
        expected: String,
        /// What was there instead (shortened), if anything.
        found: Option<String>,
    },
    /// A marking-definition id looks like a TLP marking but is not one of the official
    /// TLP 2.0 (or TLP 1.0) ids, or a marking definition claims a TLP level its id does not
    /// have. Unknown markings are refused at the edge (STYLE principle 5).
    #[error("{at}: marking {marking:?} is not an official TLP marking-definition id{}; use the TLP 2.0 ids from mamori_core::tlp::Tlp::stix_id", resembles.map(|t| format!(" (it resembles {} {})", t.label(), t.stix_id())).unwrap_or_default())]
    UnknownMarking {
        /// Where.
        at: Location,
        /// The marking id as received (shortened).
        marking: String,
        /// The official marking it was probably meant to be (or forged as).
        resembles: Option<Tlp>,
    },
    /// A STIX pattern does not follow the STIX 2.1 patterning grammar.
    #[error("STIX pattern syntax error at character {offset}: expected {expected}")]
    PatternSyntax {
        /// 0-based character offset in the pattern.
        offset: usize,
        /// What the grammar allows there.
        expected: String,
    },
    /// A valid STIX pattern that mamori's detectors cannot match as simple IOCs.
    #[error("unsupported pattern: {reason}")]
    UnsupportedPattern {
        /// Why it cannot become a list of IOCs.
        reason: String,
    },
    /// The anonymised copy still holds something it must not (a scrub string inside an
    /// id or a timestamp, which are never rewritten): nothing is returned.
    #[error(
        "anonymisation incomplete: {remaining:?} is still present in the copy; it cannot be relayed"
    )]
    AnonymisationIncomplete {
        /// What was found (shortened).
        remaining: String,
    },
    /// Serialising failed (a bug: our types always serialise).
    #[error("serialising STIX failed: {0}")]
    Serialise(#[source] serde_json::Error),
}

impl Error {
    /// The kind that decides how a caller (and the HTTP layer) reacts.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            Error::TooManyObjects { .. }
            | Error::TooDeep { .. }
            | Error::Json { .. }
            | Error::Invalid { .. }
            | Error::UnknownMarking { .. }
            | Error::PatternSyntax { .. }
            | Error::UnsupportedPattern { .. }
            | Error::AnonymisationIncomplete { .. } => ErrorKind::InvalidInput,
            Error::Serialise(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(
        at: Location,
        expected: impl Into<String>,
        found: Option<String>,
    ) -> Self {
        Error::Invalid {
            at,
            expected: expected.into(),
            found,
        }
    }

    pub(crate) fn json(e: &serde_json::Error) -> Self {
        Error::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}

/// A value shown in an error message: JSON text, cut to a readable length.
pub(crate) fn shorten(v: &serde_json::Value) -> String {
    let s = v.to_string();
    shorten_str(&s)
}

/// `s` cut to at most 80 characters.
pub(crate) fn shorten_str(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(77).collect();
        t.push_str("...");
        t
    }
}
