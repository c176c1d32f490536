//! The crate's one error type (STYLE principle 6).

use crate::hash::Hash;
use crate::note::KeyId;

/// Everything that can go wrong in the ledger's math and formats.
///
/// Verification failures name what failed (which root, which key, which line) because the
/// overseer's verifier reports them verbatim; storage failures from a [`crate::NodeSource`]
/// are carried boxed so this crate stays free of any storage type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- tree coordinates and proof requests -------------------------------------------
    /// An inclusion proof was asked for (or checked against) a leaf the tree does not have.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size it was asked against.
        size: u64,
    },
    /// A consistency proof was asked from a bigger tree to a smaller one.
    #[error("first tree size {first} is larger than second tree size {second}")]
    SizesOutOfOrder {
        /// Size of the older tree.
        first: u64,
        /// Size of the newer tree.
        second: u64,
    },
    /// The tree cannot grow past `u64::MAX` leaves.
    #[error("the tree is full: no leaf can be appended at size {size}")]
    TreeFull {
        /// The size the append was attempted at.
        size: u64,
    },
    /// A caller handed a plan fewer or more node hashes than it asked for.
    #[error("expected {expected} node hashes for this plan, got {got}")]
    NodeCount {
        /// How many hashes the plan named.
        expected: usize,
        /// How many were supplied.
        got: usize,
    },
    /// The in-memory tree was asked for a node it does not hold (incomplete or absent).
    #[error("node at level {level}, index {index} is not stored")]
    MissingNode {
        /// Level of the node (0 = leaves).
        level: u8,
        /// Index of the node within its level.
        index: u64,
    },
    /// The caller's node storage failed; the source error is kept for the log.
    #[error("reading tree nodes failed: {0}")]
    NodeSource(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),

    // --- proof verification --------------------------------------------------------------
    /// The proof has the wrong number of hashes for its index and sizes.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength {
        /// The length the index and sizes require.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// The root the proof leads to is not the root that was claimed.
    #[error("proof leads to root {computed}, expected {expected}")]
    RootMismatch {
        /// The root that was claimed (e.g. from a signed checkpoint).
        expected: Hash,
        /// The root computed from the proof.
        computed: Hash,
    },
    /// A consistency proof does not reproduce the older tree's root.
    #[error("consistency proof leads to old root {computed}, expected {expected}")]
    OldRootMismatch {
        /// The older root that was claimed.
        expected: Hash,
        /// The older root computed from the proof.
        computed: Hash,
    },
    /// A hash had the wrong number of bytes or was not valid hex/base64.
    #[error("malformed hash: {reason}")]
    MalformedHash {
        /// What was wrong.
        reason: &'static str,
    },

    // --- signed notes and keys -------------------------------------------------------------
    /// The bytes are not a signed note as c2sp.org/signed-note defines it.
    #[error("malformed signed note: {reason}")]
    MalformedNote {
        /// What was wrong.
        reason: &'static str,
    },
    /// A key name is empty or holds a space or plus sign.
    #[error("invalid key name {name:?}: it must be non-empty and contain no spaces or '+'")]
    InvalidKeyName {
        /// The offending name.
        name: String,
    },
    /// A verifier or signer key string is malformed.
    #[error("malformed key: {reason}")]
    MalformedKey {
        /// What was wrong.
        reason: &'static str,
    },
    /// A key string names an algorithm other than Ed25519 (0x01).
    #[error("unsupported key algorithm 0x{0:02x}: only Ed25519 (0x01) is supported")]
    UnsupportedAlgorithm(u8),
    /// A key string's id does not match its name and key material.
    #[error(
        "key id {stated} of key {name:?} does not match its name and public key (computed {computed})"
    )]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// The id written in the key string.
        stated: KeyId,
        /// The id computed from name and key.
        computed: KeyId,
    },
    /// The public key bytes are not a valid Ed25519 point.
    #[error("invalid Ed25519 public key for {name:?}")]
    InvalidPublicKey {
        /// The key name.
        name: String,
    },
    /// Two trusted keys share both name and id, so a signature cannot be attributed.
    #[error("ambiguous key {name}+{key_id}: more than one trusted key has this name and id")]
    AmbiguousKey {
        /// Key name.
        name: String,
        /// Key id.
        key_id: KeyId,
    },
    /// A signature from a trusted key does not verify: the note was altered or forged.
    #[error("invalid signature for key {name}+{key_id}")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: KeyId,
    },
    /// No signature on the note comes from a trusted key.
    #[error("note has no signature from a trusted key (signed by: {})", signed_by.join(", "))]
    NoTrustedSignature {
        /// `name+keyid` of every signature present, for the report.
        signed_by: Vec<String>,
    },

    // --- checkpoints ----------------------------------------------------------------------
    /// The note text is not a c2sp.org/tlog-checkpoint body.
    #[error("malformed checkpoint: {reason}")]
    MalformedCheckpoint {
        /// What was wrong.
        reason: &'static str,
    },
    /// The checkpoint belongs to another log.
    #[error("checkpoint origin {got:?} is not the expected origin {expected:?}")]
    OriginMismatch {
        /// The origin the caller trusts.
        expected: String,
        /// The origin on the checkpoint.
        got: String,
    },

    // --- the HTTP wire ([`crate::wire`]) ----------------------------------------------------
    /// A served entry carries no usable bytes: neither `data` nor `data_base64`, or base64
    /// that does not decode.
    #[error("entry {index} {reason}")]
    MalformedEntry {
        /// The entry's index as served.
        index: u64,
        /// What was wrong.
        reason: &'static str,
    },
}
