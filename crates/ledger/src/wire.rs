//! The ledger's HTTP wire: the JSON the centre and a carrier's sensor serve on
//! `/api/v1/ledger/*` and the overseer's verifier reads (CI-5, CI-9, AN-7).
//!
//! Both servers answer the same paths with the same bodies, so `mamori audit verify` works
//! against either; the types live here once so the three cannot drift apart. They are
//! plain serde shapes — no IO, no HTTP types — and sit in this crate (not `core`) because
//! they convert to and from its [`Hash`] and leaf bytes. The JSON is unchanged from the
//! earlier per-crate copies: `docs/LEDGER.md` describes it.

use crate::error::Error;
use crate::hash::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// Which entries to read: `GET /api/v1/ledger/entries?start=&end=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct EntryRange {
    /// First index (default 0).
    #[serde(default)]
    pub start: u64,
    /// One past the last index; at most 1,000 entries are returned per page.
    pub end: Option<u64>,
}

/// One entry: its index and its canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntryOut {
    /// Its position in the log.
    pub index: u64,
    /// The canonical encoding (JSON text); the leaf hash is SHA-256(0x00 ‖ UTF-8 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The stored bytes in base64, present only when they are not valid UTF-8 (which
    /// means someone wrote to the table behind mamori's back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
}

impl EntryOut {
    /// The entry as served: text when the bytes are UTF-8, base64 otherwise, so every
    /// stored byte reaches the verifier as it is.
    pub fn new(index: u64, bytes: Vec<u8>) -> EntryOut {
        match String::from_utf8(bytes) {
            Ok(text) => EntryOut {
                index,
                data: Some(text),
                data_base64: None,
            },
            Err(e) => EntryOut {
                index,
                data: None,
                data_base64: Some(STANDARD.encode(e.as_bytes())),
            },
        }
    }

    /// The leaf bytes this entry carries (what its leaf hash is computed over).
    ///
    /// # Errors
    /// [`Error::MalformedEntry`] when it has neither `data` nor `data_base64`, or the base64
    /// does not decode.
    pub fn bytes(&self) -> Result<Vec<u8>, Error> {
        match (&self.data, &self.data_base64) {
            (Some(text), _) => Ok(text.as_bytes().to_vec()),
            (None, Some(b64)) => STANDARD.decode(b64).map_err(|_| Error::MalformedEntry {
                index: self.index,
                reason: "has data_base64 that is not base64",
            }),
            (None, None) => Err(Error::MalformedEntry {
                index: self.index,
                reason: "came without data",
            }),
        }
    }
}

/// A page of entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntryPage {
    /// The number of entries in the log now.
    pub size: u64,
    /// The entries, in index order.
    pub entries: Vec<EntryOut>,
    /// The `start` of the next page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

impl EntryPage {
    /// The page answering a request for `[start, end)` of a log of `size` entries, given
    /// the `(index, bytes)` rows read (at most a page's worth): `next` is set when rows
    /// before `end` remain.
    pub fn new(size: u64, start: u64, end: u64, rows: Vec<(u64, Vec<u8>)>) -> EntryPage {
        let last = rows.last().map_or(start, |(i, _)| i.saturating_add(1));
        EntryPage {
            size,
            entries: rows
                .into_iter()
                .map(|(index, bytes)| EntryOut::new(index, bytes))
                .collect(),
            next: (last < end).then_some(last),
        }
    }
}

/// An inclusion proof request: `GET /api/v1/ledger/proof/inclusion?index=&size=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The entry.
    pub index: u64,
    /// The tree size (a checkpoint's).
    pub size: u64,
}

/// A consistency proof request: `GET /api/v1/ledger/proof/consistency?from=&to=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
}

/// A Merkle audit path, hashes in hex (RFC 9162 order); the answer to both proof requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProofOut {
    /// The sibling hashes, lowest first.
    pub path: Vec<String>,
}

impl ProofOut {
    /// The wire form of an audit path.
    pub fn new(path: &[Hash]) -> ProofOut {
        ProofOut {
            path: path.iter().map(Hash::to_hex).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ConsistencyQuery, EntryOut, EntryPage, EntryRange, InclusionQuery, ProofOut};
    use crate::hash::{Hash, leaf_hash};

    /// The JSON both servers send and the verifier reads, pinned byte for byte: a change
    /// here is a change of the overseer's API (CI-9, AN-7; `docs/LEDGER.md`).
    #[test]
    fn the_json_is_the_documented_shape() {
        let page = EntryPage::new(
            3,
            0,
            3,
            vec![(0, b"{\"k\":1}".to_vec()), (1, vec![0xff, 0x00])],
        );
        let text = serde_json::to_string(&page).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"size":3,"entries":[{"index":0,"data":"{\"k\":1}"},{"index":1,"data_base64":"/wA="}],"next":2}"#
        );
        assert_eq!(serde_json::from_str::<EntryPage>(&text).ok(), Some(page));
        let last = EntryPage::new(1, 0, 1, vec![(0, b"x".to_vec())]);
        assert_eq!(
            serde_json::to_string(&last).unwrap_or_default(),
            r#"{"size":1,"entries":[{"index":0,"data":"x"}]}"#
        );
        let proof = ProofOut::new(&[leaf_hash(b"")]);
        let text = serde_json::to_string(&proof).unwrap_or_default();
        assert_eq!(
            text,
            format!(r#"{{"path":["{}"]}}"#, leaf_hash(b"").to_hex())
        );
        assert_eq!(serde_json::from_str::<ProofOut>(&text).ok(), Some(proof));
        // Requests: unknown parameters are refused, `start` defaults to 0.
        assert_eq!(
            serde_json::from_str::<EntryRange>("{}").ok(),
            Some(EntryRange {
                start: 0,
                end: None
            })
        );
        assert!(serde_json::from_str::<EntryRange>(r#"{"begin":1}"#).is_err());
        assert!(serde_json::from_str::<InclusionQuery>(r#"{"index":1}"#).is_err());
        assert_eq!(
            serde_json::from_str::<ConsistencyQuery>(r#"{"from":1,"to":2}"#).ok(),
            Some(ConsistencyQuery { from: 1, to: 2 })
        );
    }

    #[test]
    fn entry_text_and_binary_round_trip() {
        let text = EntryOut::new(0, b"{\"k\":1}".to_vec());
        assert_eq!(text.data.as_deref(), Some("{\"k\":1}"));
        assert_eq!(text.bytes().ok(), Some(b"{\"k\":1}".to_vec()));
        let binary = EntryOut::new(1, vec![0xff, 0x00]);
        assert_eq!(binary.data, None);
        assert_eq!(binary.data_base64.as_deref(), Some("/wA="));
        assert_eq!(binary.bytes().ok(), Some(vec![0xff, 0x00]));
    }

    #[test]
    fn entry_without_data_or_with_bad_base64_is_named() {
        let none = EntryOut {
            index: 7,
            data: None,
            data_base64: None,
        };
        assert_eq!(
            none.bytes().err().map(|e| e.to_string()),
            Some("entry 7 came without data".to_owned())
        );
        let bad = EntryOut {
            index: 8,
            data: None,
            data_base64: Some("!!".to_owned()),
        };
        assert_eq!(
            bad.bytes().err().map(|e| e.to_string()),
            Some("entry 8 has data_base64 that is not base64".to_owned())
        );
    }

    #[test]
    fn page_next_only_when_rows_remain() {
        let partial = EntryPage::new(5, 0, 5, vec![(0, b"a".to_vec()), (1, b"b".to_vec())]);
        assert_eq!(partial.next, Some(2));
        let full = EntryPage::new(2, 0, 2, vec![(0, b"a".to_vec()), (1, b"b".to_vec())]);
        assert_eq!(full.next, None);
        let empty = EntryPage::new(0, 0, 0, Vec::new());
        assert_eq!((empty.entries.len(), empty.next), (0, None));
    }

    #[test]
    fn proof_hashes_round_trip_as_hex() {
        let path = [leaf_hash(b"a"), leaf_hash(b"b")];
        let out = ProofOut::new(&path);
        let back: Result<Vec<Hash>, _> = out.path.iter().map(|h| Hash::from_hex(h)).collect();
        assert_eq!(back.ok(), Some(path.to_vec()));
    }
}
