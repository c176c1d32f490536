//! Checkpoints (c2sp.org/tlog-checkpoint): the signed tree head the overseer keeps.
//!
//! Body: origin line, decimal tree size, base64 root hash, then optional extension lines,
//! each ending in a newline. Parsing refuses anything the spec does not allow (leading
//! zeros, non-canonical base64, empty lines, a hash that is not 32 bytes) so that two
//! different texts never mean the same tree head.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::Error;
use crate::hash::Hash;
use crate::note::{SignerKey, VerifiedNote, VerifierKey, open_note, sign_note};

/// A tree head for one log: which log, how many leaves, and their root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

fn check_line(line: &str, what: &'static str) -> Result<(), Error> {
    if line.is_empty() || line.chars().any(char::is_control) {
        return Err(Error::MalformedCheckpoint { reason: what });
    }
    Ok(())
}

impl Checkpoint {
    /// A checkpoint for `origin` (the log's identity, e.g. `mamori.example.jp/ledger`).
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Self, Error> {
        check_line(
            origin,
            "the origin must be one non-empty line without control characters",
        )?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// Adds an extension line (opaque to us; the spec discourages them).
    pub fn with_extension(mut self, line: &str) -> Result<Self, Error> {
        check_line(
            line,
            "an extension must be one non-empty line without control characters",
        )?;
        self.extensions.push(line.to_owned());
        Ok(self)
    }

    /// The log's identity.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves.
    #[must_use]
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// The tree head.
    #[must_use]
    pub const fn root(&self) -> Hash {
        self.root
    }

    /// Extension lines, in order.
    #[must_use]
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The note text: the bytes that get signed.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root.as_bytes())
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint body strictly.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(Error::MalformedCheckpoint {
                reason: "the text must end with a newline",
            });
        };
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(Error::MalformedCheckpoint {
                reason: "expected origin, tree size and root hash lines",
            });
        };
        check_line(origin, "the origin line is empty or has control characters")?;
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        let mut checkpoint = Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        };
        for line in lines {
            checkpoint = checkpoint.with_extension(line)?;
        }
        Ok(checkpoint)
    }

    /// Signs the checkpoint, producing a signed note.
    pub fn sign(&self, signer: &SignerKey) -> Result<String, Error> {
        sign_note(&self.to_text(), &[signer])
    }

    /// Parses and verifies a signed checkpoint: it must carry a valid signature by one of
    /// `verifiers` and name `origin`.
    pub fn open(
        note: &[u8],
        origin: &str,
        verifiers: &[VerifierKey],
    ) -> Result<VerifiedCheckpoint, Error> {
        let note = open_note(note, verifiers)?;
        let checkpoint = Self::parse(note.text())?;
        if checkpoint.origin != origin {
            return Err(Error::OriginMismatch {
                expected: origin.to_owned(),
                got: checkpoint.origin,
            });
        }
        Ok(VerifiedCheckpoint { checkpoint, note })
    }
}

fn parse_size(line: &str) -> Result<u64, Error> {
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    if !canonical {
        return Err(Error::MalformedCheckpoint {
            reason: "the tree size must be decimal digits without leading zeros",
        });
    }
    line.parse().map_err(|_| Error::MalformedCheckpoint {
        reason: "the tree size does not fit in 64 bits",
    })
}

fn parse_root(line: &str) -> Result<Hash, Error> {
    // The engine refuses non-zero trailing bits and missing padding, so each hash has
    // exactly one accepted spelling.
    let bytes = BASE64
        .decode(line)
        .map_err(|_| Error::MalformedCheckpoint {
            reason: "the root hash is not canonical standard base64",
        })?;
    Hash::from_slice(&bytes).map_err(|_| Error::MalformedCheckpoint {
        reason: "the root hash must be 32 bytes",
    })
}

/// A checkpoint whose signature verified against a trusted key. Only
/// [`Checkpoint::open`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    note: VerifiedNote,
}

impl VerifiedCheckpoint {
    /// The tree head.
    #[must_use]
    pub const fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The verified note it came in (for the list of signers).
    #[must_use]
    pub const fn note(&self) -> &VerifiedNote {
        &self.note
    }
}

impl std::ops::Deref for VerifiedCheckpoint {
    type Target = Checkpoint;

    fn deref(&self) -> &Checkpoint {
        &self.checkpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn round_trip_with_extensions() {
        let cp = Checkpoint::new("mamori.example/ledger", 42, leaf_hash(b"x"))
            .unwrap()
            .with_extension("ext one")
            .unwrap();
        assert_eq!(Checkpoint::parse(&cp.to_text()).unwrap(), cp);
    }

    #[test]
    fn refuses_non_canonical_bodies() {
        let root = BASE64.encode([0u8; 32]);
        let good = format!("o\n5\n{root}\n");
        Checkpoint::parse(&good).unwrap();
        for bad in [
            format!("o\n5\n{root}"),
            format!("\n5\n{root}\n"),
            format!("o\n05\n{root}\n"),
            format!("o\n+5\n{root}\n"),
            format!("o\n5 \n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o\n5\n{}\n", BASE64.encode([0u8; 31])),
            format!("o\n5\n{}\n", root.trim_end_matches('=')),
            "o\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n".to_owned(),
            format!("o\n5\n{root}\n\n"),
            format!("o\n5\n{root}\next\n\n"),
            "o\n5\n".to_owned(),
            String::new(),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
        assert!(Checkpoint::new("two\nlines", 1, Hash::default()).is_err());
        assert!(Checkpoint::new("", 1, Hash::default()).is_err());
    }
}
