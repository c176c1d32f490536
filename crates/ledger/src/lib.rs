//! The overseer's ledger, as mathematics and text formats.
//!
//! mamori records every access to communications information, every approval, measure and
//! deletion in an append-only log that an independent overseer can check without trusting
//! the centre's operators or database administrators (REQUIREMENTS CI-5, CI-6, CI-9, AN-7;
//! DESIGN invariant 7: "everything sensitive is logged verifiably"). This crate holds the
//! parts of that log that are pure functions:
//!
//! - **Merkle trees** per RFC 6962 / RFC 9162 with SHA-256: [`leaf_hash`] `= H(0x00‖d)`,
//!   [`node_hash`] `= H(0x01‖l‖r)`, tree heads, inclusion and consistency proofs, and the
//!   RFC 9162 §2.1.3.2 / §2.1.4.2 verifiers ([`verify_inclusion`], [`verify_consistency`]).
//! - **Proofs from stored nodes.** A tree of 10⁷ entries lives in a database, not memory.
//!   Every complete subtree `(level, index)` ([`NodeId`]) is stored once its last leaf exists
//!   and never changes. [`InclusionPlan`], [`ConsistencyPlan`] and [`root_nodes`] name the
//!   O(log n) nodes an answer needs; `assemble` builds it from their hashes. The sync
//!   [`NodeSource`] trait and [`prove_inclusion`] / [`prove_consistency`] / [`tree_root`]
//!   do both steps for stores that can answer synchronously; [`MemoryTree`] is the
//!   in-memory one. Appenders call [`nodes_completed_by_append`] (one leaf) or keep a
//!   [`Frontier`] (a batch) to learn which nodes to write.
//! - **Checkpoints** ([`Checkpoint`], c2sp.org/tlog-checkpoint) inside **signed notes**
//!   (c2sp.org/signed-note) with Ed25519 keys in the text forms of Go's
//!   `golang.org/x/mod/sumdb/note` ([`SignerKey`], [`VerifierKey`]), so the overseer's
//!   tools need not be ours.
//! - **The HTTP wire** ([`wire`]): the JSON of the entries page and the proof answers,
//!   one serde definition for the centre, the sensor and the overseer's verifier.
//!
//! # Architecture invariant
//!
//! Pure: no IO, no clock, no randomness, no async runtime, no SQL. Bytes and numbers in,
//! values or a typed [`Error`] out; no input can make it panic. Keys are made from seed bytes
//! the caller supplies. Trust is a type: only [`SignedNote::verify`] makes a
//! [`VerifiedNote`] and only [`Checkpoint::open`] makes a [`VerifiedCheckpoint`].
//!
//! # API boundary
//!
//! Used by `mamori-oversight` (storing leaves and nodes, issuing checkpoints, serving proofs)
//! and by the `mamori audit verify` command (the overseer's independent check). It knows
//! nothing of entry kinds or their encoding — a leaf is bytes — nor of storage, HTTP
//! (beyond the shape of its JSON, [`wire`]) or time. Proof verification here follows the RFC text and shares no code with proof
//! generation; the tests check both against the published RFC 6962 vectors of
//! transparency-dev/merkle, against the independent `ct-merkle` crate, and against a
//! hashlib-only Python script (`tests/rfc6962_check.py`).
//!
//! # Why not `ct-merkle`, `signed_note`, `tlog_tiles`
//!
//! `ct-merkle` 0.3 indexes nodes in-order over a tree whose right-edge nodes change as it
//! grows; our store writes each node once, so the few dozen lines of index arithmetic are
//! ours (and `ct-merkle` serves as a test oracle). Cloudflare's `signed_note` 0.2 and
//! `tlog_tiles` 0.2 pull a second RustCrypto generation (`ed25519-dalek` 2, `sha2` 0.10,
//! `thiserror` 1) and, for `tlog_tiles`, `url`/ICU and `serde_json`; the formats are small
//! enough to implement on the one generation we already build.

mod checkpoint;
mod error;
mod hash;
mod note;
mod proof;
mod tree;
pub mod wire;

pub use checkpoint::{Checkpoint, VerifiedCheckpoint};
pub use error::Error;
pub use hash::{Hash, empty_root, leaf_hash, node_hash};
pub use note::{
    ALG_ED25519, KeyId, MAX_NOTE_BYTES, MAX_SIGNATURES, NoteSignature, SignedNote, SignerKey,
    VerifiedNote, VerifierKey, open_note, sign_note,
};
pub use proof::{ConsistencyProof, InclusionProof, verify_consistency, verify_inclusion};
pub use tree::{
    ConsistencyPlan, Frontier, InclusionPlan, MemoryTree, NodeId, NodeSource, StoredNode,
    append_leaf, append_needs, nodes_completed_by_append, prove_consistency, prove_inclusion,
    root_from_nodes, root_nodes, tree_root,
};
