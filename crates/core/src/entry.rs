//! Ledger entries: one typed, versioned record per sensitive act, and its canonical bytes.
//!
//! **Canonical encoding (version 1)** — the bytes the leaf hash covers, specified in
//! `docs/LEDGER.md`: compact JSON (no insignificant whitespace), UTF-8, object members in
//! the fixed order of the structs below (`v`, `at`, `actor`, `act`; inside `act`, `kind`
//! first), integers only (no floats), times as `YYYY-MM-DDTHH:MM:SS.mmmZ`, optional ids as
//! `null`, strings escaped as JSON requires and nothing more. [`Entry::decode`] accepts
//! only bytes that re-encode identically, so each entry has exactly one encoding and a
//! verifier in any language can re-derive the leaf hash from the served bytes.
//!
//! The entry lives in `core` because two ledgers write it: the centre's (`mamori-oversight`,
//! over the store) and each carrier sensor's own (`mamori-sensor`, file-backed, which may not
//! depend on SQL). One encoding for both lets `mamori audit` read either (CI-5, CI-9).

use crate::time::{Timestamp, rfc3339_ms};
use crate::{OrgId, Tlp, TokenId, UserId};
use serde::{Deserialize, Serialize};

/// Bytes that are not the canonical encoding of an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger entry is not canonical: {0}")]
pub struct EntryError(pub String);

/// The encoding version written today.
pub const VERSION: u8 = 1;

/// A sensitive act, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Encoding version ([`VERSION`]).
    pub v: u8,
    /// When the act happened (UTC, milliseconds).
    #[serde(with = "rfc3339_ms")]
    pub at: Timestamp,
    /// Who did it.
    pub actor: Actor,
    /// What was done.
    pub act: Act,
}

/// Who performed an act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The organisation, if the actor is a platform user.
    pub org: Option<OrgId>,
    /// The user, if the actor is a platform user.
    pub user: Option<UserId>,
    /// A name a person can read: the user's login, or `local:mamori admin` for the host's
    /// command line, or a service name.
    pub name: String,
}

impl Actor {
    /// The administrator at the centre host's command line (no token involved).
    pub fn local_cli() -> Actor {
        Actor {
            org: None,
            user: None,
            name: "local:mamori admin".to_owned(),
        }
    }
}

/// A measure's lifecycle step (AN-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureStep {
    /// Put into effect.
    Applied,
    /// Ended at its expiry.
    Expired,
    /// Undone.
    RolledBack,
}

/// An approval's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Approved.
    Approved,
    /// Refused.
    Refused,
}

/// A pseudonym key's lifecycle step at a sensor (CI-4; DESIGN invariant 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStep {
    /// Created for a new period; subscriber addresses are pseudonymised with it from now.
    Created,
    /// Deleted: no kept data was pseudonymised with it any more, so its pseudonyms can
    /// never be re-identified again.
    Retired,
}

/// What was done. The `kind` tag names the act in queries and reports (CI-9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Act {
    /// Access to communications information (CI-5): who asked what, why, how much came back.
    CommsAccess {
        /// The query as run.
        query: String,
        /// The recorded purpose.
        purpose: String,
        /// How many records were returned.
        records: u64,
    },
    /// Re-identification of one pseudonymised address (CI-4, CI-5).
    Reidentification {
        /// The pseudonym resolved.
        pseudonym: String,
        /// The approval that allowed it.
        approval: String,
        /// Why.
        purpose: String,
    },
    /// An approval decision (AN-7, AN-8).
    Approval {
        /// What was approved or refused, e.g. `measure:12`.
        subject: String,
        /// The outcome.
        decision: Decision,
        /// The reasoning recorded.
        reason: String,
    },
    /// A measure applied, expired or rolled back (AN-6, AN-7).
    Measure {
        /// The measure, e.g. `measure:12`.
        measure: String,
        /// The step.
        step: MeasureStep,
        /// What it acts on.
        target: String,
        /// Why.
        reason: String,
    },
    /// A deletion (CI-5, invariant 4): what, how many, and the hash of what was deleted.
    Deletion {
        /// What was deleted, e.g. `flows:2026-11-01`.
        what: String,
        /// How many records.
        count: u64,
        /// SHA-256 of the deleted content, hex.
        content_sha256: String,
        /// Why (e.g. retention expired).
        reason: String,
    },
    /// A shared object's marking changed by someone other than its originator (PP-11).
    TlpOverride {
        /// The object.
        object: String,
        /// The marking before.
        from: Tlp,
        /// The marking after.
        to: Tlp,
        /// Why.
        reason: String,
    },
    /// A sealed report source revealed (PP-12).
    SourceReveal {
        /// The report.
        report: String,
        /// The approval that allowed it.
        approval: String,
        /// Why.
        reason: String,
    },
    /// A server put on a sensor's concern list: its flows are now kept record by record
    /// ("broad first, deep only on concern", CI-2, CI-4).
    ConcernListed {
        /// The server, as `address`, `address:port` or `address:port/proto`.
        server: String,
        /// Why: the detection or indicator that raised the concern.
        reason: String,
        /// When deep collection ends unless renewed.
        #[serde(with = "rfc3339_ms")]
        expires_at: Timestamp,
        /// A renewal of a listing still in force (a later expiry for the same server),
        /// not a second listing. Absent (false) in a first listing, so the entries written
        /// before renewals existed keep their canonical bytes.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        renewal: bool,
    },
    /// A server taken off a sensor's concern list (removed, or its listing expired).
    ConcernEnded {
        /// The server, as it was listed.
        server: String,
        /// Why (e.g. `expired`, or the operator's reason).
        reason: String,
    },
    /// A sensor's Crypto-PAn key created or retired (CI-4): the ledger shows which key
    /// covered which period, and that each was destroyed once no kept data needed it.
    PseudonymKey {
        /// The key's id: the UTC start of its period, `YYYYMMDDTHHMMSSZ`. Never the key.
        key_id: String,
        /// Created or retired.
        step: KeyStep,
    },
    /// An API token issued.
    TokenIssued {
        /// The token.
        token: TokenId,
        /// For whom.
        user: UserId,
        /// Until when.
        #[serde(with = "rfc3339_ms")]
        expires_at: Timestamp,
    },
    /// An API token revoked.
    TokenRevoked {
        /// The token.
        token: TokenId,
        /// Whose.
        user: UserId,
    },
}

impl Act {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Act::CommsAccess { .. } => "comms_access",
            Act::Reidentification { .. } => "reidentification",
            Act::Approval { .. } => "approval",
            Act::Measure { .. } => "measure",
            Act::Deletion { .. } => "deletion",
            Act::TlpOverride { .. } => "tlp_override",
            Act::SourceReveal { .. } => "source_reveal",
            Act::ConcernListed { .. } => "concern_listed",
            Act::ConcernEnded { .. } => "concern_ended",
            Act::PseudonymKey { .. } => "pseudonym_key",
            Act::TokenIssued { .. } => "token_issued",
            Act::TokenRevoked { .. } => "token_revoked",
        }
    }

    /// Every kind, for reports that list zero counts too.
    pub const KINDS: [&'static str; 12] = [
        "comms_access",
        "reidentification",
        "approval",
        "measure",
        "deletion",
        "tlp_override",
        "source_reveal",
        "concern_listed",
        "concern_ended",
        "pseudonym_key",
        "token_issued",
        "token_revoked",
    ];
}

impl Entry {
    /// An entry of the current version at `at` (truncated to milliseconds).
    pub fn new(at: Timestamp, actor: Actor, act: Act) -> Entry {
        Entry {
            v: VERSION,
            at: crate::time::truncate_ms(at),
            actor,
            act,
        }
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these types cannot fail: no maps with non-string keys, no floats.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads canonical bytes; anything else (other spellings, extra spaces, unknown
    /// fields, other versions) is refused.
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        let entry: Entry = serde_json::from_slice(bytes).map_err(|e| EntryError(e.to_string()))?;
        if entry.v != VERSION {
            return Err(EntryError(format!("unknown entry version {}", entry.v)));
        }
        if entry.encode() != bytes {
            return Err(EntryError(
                "the bytes are not the canonical encoding of the entry they contain".into(),
            ));
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;

    fn sample() -> Entry {
        Entry::new(
            from_millis(1_790_000_000_123).unwrap(),
            Actor {
                org: Some(OrgId(1)),
                user: Some(UserId(2)),
                name: "kimura".into(),
            },
            Act::Deletion {
                what: "flows:2026-11-01".into(),
                count: 5,
                content_sha256: "ab".repeat(32),
                reason: "retention".into(),
            },
        )
    }

    #[test]
    fn the_encoding_is_the_documented_one() {
        let text = String::from_utf8(sample().encode()).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"at":"2026-09-21T14:13:20.123Z","actor":{"org":1,"user":2,"name":"kimura"},"act":{"kind":"deletion","what":"flows:2026-11-01","count":5,"content_sha256":"abababababababababababababababababababababababababababababababab","reason":"retention"}}"#
        );
        assert_eq!(Entry::decode(text.as_bytes()).unwrap(), sample());
    }

    #[test]
    fn only_canonical_bytes_decode() {
        let good = String::from_utf8(sample().encode()).unwrap();
        for bad in [
            good.replace(",\"at\"", ", \"at\""),
            good.replace(".123Z", ".123000Z"),
            good.replace(".123Z", ".123+00:00"),
            good.replace("{\"v\":1,", "{\"v\":2,"),
            good.replace("\"name\":\"kimura\"", "\"name\":\"kimura\",\"extra\":1"),
            good.replace("\"count\":5", "\"count\":5.0"),
            good.replace(
                "{\"v\":1,\"at\":\"2026-09-21T14:13:20.123Z\",",
                "{\"at\":\"2026-09-21T14:13:20.123Z\",\"v\":1,",
            ),
        ] {
            assert!(Entry::decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_act_encodes_as_documented() {
        let e = Entry::new(
            from_millis(1_790_000_000_000).unwrap(),
            Actor {
                org: None,
                user: None,
                name: "sensor".into(),
            },
            Act::PseudonymKey {
                key_id: "20260921T000000Z".into(),
                step: KeyStep::Retired,
            },
        );
        let text = String::from_utf8(e.encode()).unwrap();
        assert!(
            text.ends_with(
                r#""act":{"kind":"pseudonym_key","key_id":"20260921T000000Z","step":"retired"}}"#
            ),
            "{text}"
        );
        assert_eq!(Entry::decode(text.as_bytes()).unwrap(), e);
        assert!(Act::KINDS.contains(&e.act.kind()));
    }

    #[test]
    fn every_kind_is_listed_once() {
        let kinds: std::collections::BTreeSet<_> = Act::KINDS.iter().collect();
        assert_eq!(kinds.len(), Act::KINDS.len());
        assert!(Act::KINDS.contains(&sample().act.kind()));
    }
}
