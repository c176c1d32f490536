//! SHA-256 and the RFC 6962 §2.1 domain-separated leaf and node hashes.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::Error;

/// A SHA-256 output: a leaf hash, an interior node hash or a tree head.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash([u8; 32]);

impl Hash {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Copies a 32-byte slice, refusing any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| Error::MalformedHash {
                reason: "a hash is exactly 32 bytes",
            })
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let digits = text.as_bytes();
        if digits.len() != 2 * Self::LEN {
            return Err(Error::MalformedHash {
                reason: "a hex hash is exactly 64 digits",
            });
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (
                pair.first().copied().and_then(hex_value),
                pair.get(1).copied().and_then(hex_value),
            ) else {
                return Err(Error::MalformedHash {
                    reason: "not a hex digit",
                });
            };
            *byte = (hi << 4) | lo;
        }
        Ok(Self(out))
    }

    /// The 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, as the RFC 6962 test vectors print hashes.
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

/// Prefix that makes a leaf hash unable to collide with an interior node (RFC 6962 §2.1).
const LEAF_PREFIX: u8 = 0x00;
/// Prefix for interior nodes.
const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 || data)`: the hash of one log entry.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    Hash(hasher.finalize().into())
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // One contiguous buffer: a single padded-block pass is measurably cheaper than three
    // `update` calls on the proof hot path.
    let mut buf = [0u8; 1 + 2 * Hash::LEN];
    buf[0] = NODE_PREFIX;
    buf[1..=Hash::LEN].copy_from_slice(&left.0);
    buf[1 + Hash::LEN..].copy_from_slice(&right.0);
    Hash(Sha256::digest(buf).into())
}

/// The head of the empty tree: `SHA-256("")` (RFC 6962 §2.1).
#[must_use]
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        let h = leaf_hash(b"");
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()).unwrap(), h);
        assert!(Hash::from_hex("00").is_err());
        assert!(Hash::from_hex(&"g".repeat(64)).is_err());
        // A multi-byte character must not be split into digits.
        assert!(Hash::from_hex(&format!("é{}", "0".repeat(62))).is_err());
        assert!(Hash::from_slice(&[0u8; 31]).is_err());
        assert_eq!(
            Hash::from_slice(&[7u8; 32]).unwrap(),
            Hash::from_bytes([7u8; 32])
        );
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        // RFC 6962 §2.1 and transparency-dev/merkle testonly.EmptyRootHash.
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
