//! Signed notes (c2sp.org/signed-note) with Ed25519 keys, in the text formats of Go's
//! `golang.org/x/mod/sumdb/note`, so Go, Sigstore and witness tooling read what we write.
//!
//! Parsing is strict and total: every malformed input is an [`Error`], never a panic.
//! Verification follows the spec: signatures by unknown keys are ignored, a signature by a
//! trusted key must verify or the whole note is refused, and at least one trusted signature
//! must be present. Only a [`VerifiedNote`] exposes the text as trusted.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Error;

/// Signature type byte for Ed25519 (c2sp.org/signed-note §Signature types).
pub const ALG_ED25519: u8 = 0x01;

/// Notes with more signatures are refused; the spec asks verifiers to accept at least 16
/// and Go's reference implementation stops at 100.
pub const MAX_SIGNATURES: usize = 100;

/// Notes longer than this are refused before any other work: a checkpoint is a few hundred
/// bytes, and 100 post-quantum signatures (≈5 kB each) still fit.
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// The em dash and space that open every signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// The 32-bit key id: `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, big-endian.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl KeyId {
    /// The id of the Ed25519 key `public_key` under `name`.
    #[must_use]
    pub fn ed25519(name: &str, public_key: &[u8; 32]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([b'\n', ALG_ED25519]);
        hasher.update(public_key);
        let digest: [u8; 32] = hasher.finalize().into();
        Self(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]))
    }

    /// The id as it leads each signature.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Key names must be non-empty and hold no Unicode space and no `+` (they are `+`-separated
/// in key strings and space-separated in signature lines).
fn check_key_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(Error::InvalidKeyName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Splits `name+hexid+base64` into its parts and decodes them; shared by both key formats.
fn parse_key_parts(text: &str) -> Result<(&str, KeyId, u8, Vec<u8>), Error> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::MalformedKey {
            reason: "expected name+keyid+keydata",
        });
    };
    check_key_name(name)?;
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::MalformedKey {
            reason: "the key id must be 8 hex digits",
        });
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| Error::MalformedKey {
        reason: "the key id must be 8 hex digits",
    })?;
    let data = BASE64.decode(key_b64).map_err(|_| Error::MalformedKey {
        reason: "the key data is not standard base64",
    })?;
    let Some((&alg, key)) = data.split_first() else {
        return Err(Error::MalformedKey {
            reason: "the key data is empty",
        });
    };
    if alg != ALG_ED25519 {
        return Err(Error::UnsupportedAlgorithm(alg));
    }
    if key.len() != 32 {
        return Err(Error::MalformedKey {
            reason: "an Ed25519 key is 32 bytes",
        });
    }
    Ok((name, KeyId(id), alg, key.to_vec()))
}

fn key_material(key: &[u8; 32]) -> String {
    let mut data = Vec::with_capacity(33);
    data.push(ALG_ED25519);
    data.extend_from_slice(key);
    BASE64.encode(data)
}

/// A public key that verifies notes: text form `name+hexkeyid+base64(0x01 || pubkey)`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: KeyId,
    key: VerifyingKey,
}

impl VerifierKey {
    /// A verifier for the Ed25519 `public_key` under `name`.
    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<Self, Error> {
        check_key_name(name)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| Error::InvalidPublicKey {
            name: name.to_owned(),
        })?;
        Ok(Self {
            name: name.to_owned(),
            id: KeyId::ed25519(name, public_key),
            key,
        })
    }

    /// Parses the vkey text form, checking that the id matches the name and key.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (name, stated, _alg, key) = parse_key_parts(text)?;
        let public_key = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| Error::MalformedKey {
            reason: "an Ed25519 key is 32 bytes",
        })?;
        let verifier = Self::from_public_key(name, &public_key)?;
        if verifier.id != stated {
            return Err(Error::KeyIdMismatch {
                name: name.to_owned(),
                stated,
                computed: verifier.id,
            });
        }
        Ok(verifier)
    }

    /// The key name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.id
    }

    /// The raw Ed25519 public key.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    fn verifies(&self, text: &[u8], signature: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|sig| self.key.verify_strict(text, &sig).is_ok())
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{}+{}",
            self.name,
            self.id,
            key_material(self.key.as_bytes())
        )
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// A private key that signs notes: text form `PRIVATE+KEY+name+hexkeyid+base64(0x01 || seed)`.
///
/// The seed is zeroised on drop and never printed by `Debug`.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    id: KeyId,
    key: SigningKey,
}

const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

impl SignerKey {
    /// A signer from a 32-byte Ed25519 seed. The caller brings the randomness (this crate
    /// does no IO, so it cannot read the OS generator itself).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, Error> {
        check_key_name(name)?;
        let key = SigningKey::from_bytes(seed);
        Ok(Self {
            name: name.to_owned(),
            id: KeyId::ed25519(name, key.verifying_key().as_bytes()),
            key,
        })
    }

    /// Parses the skey text form, checking that the id matches the name and derived public key.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let Some(rest) = text.strip_prefix(PRIVATE_PREFIX) else {
            return Err(Error::MalformedKey {
                reason: "a signer key starts with PRIVATE+KEY+",
            });
        };
        let (name, stated, _alg, seed) = parse_key_parts(rest)?;
        let seed = <[u8; 32]>::try_from(seed.as_slice()).map_err(|_| Error::MalformedKey {
            reason: "an Ed25519 seed is 32 bytes",
        })?;
        let signer = Self::from_seed(name, &seed)?;
        if signer.id != stated {
            return Err(Error::KeyIdMismatch {
                name: name.to_owned(),
                stated,
                computed: signer.id,
            });
        }
        Ok(signer)
    }

    /// The skey text form. It is the secret: store it with owner-only permissions.
    #[must_use]
    pub fn to_secret_text(&self) -> String {
        format!(
            "{PRIVATE_PREFIX}{}+{}+{}",
            self.name,
            self.id,
            key_material(self.key.as_bytes())
        )
    }

    /// The matching public key.
    #[must_use]
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The key name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    #[must_use]
    pub const fn key_id(&self) -> KeyId {
        self.id
    }

    fn signature_line(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&self.id.to_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("{SIG_PREFIX}{} {}\n", self.name, BASE64.encode(blob))
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("key_id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Checks the rules every note text obeys: valid UTF-8 (given by `&str`), no control
/// characters but newline, and a final newline.
fn check_text(text: &str) -> Result<(), Error> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(Error::MalformedNote {
            reason: "the text must be non-empty and end with a newline",
        });
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(Error::MalformedNote {
            reason: "control characters other than newline are not allowed",
        });
    }
    Ok(())
}

/// Signs `text` with every signer, producing the note's bytes.
pub fn sign_note(text: &str, signers: &[&SignerKey]) -> Result<String, Error> {
    check_text(text)?;
    if signers.is_empty() {
        return Err(Error::MalformedNote {
            reason: "a note needs at least one signature",
        });
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(Error::MalformedNote {
            reason: "too many signatures",
        });
    }
    let mut note = String::with_capacity(text.len() + 1 + signers.len() * 120);
    note.push_str(text);
    note.push('\n');
    for signer in signers {
        note.push_str(&signer.signature_line(text));
    }
    Ok(note)
}

/// One signature line: who claims to have signed, and the raw signature bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id (the first four bytes of the base64 blob).
    pub key_id: KeyId,
    /// The algorithm's signature bytes (after the key id).
    pub signature: Vec<u8>,
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSignature({}+{})", self.name, self.key_id)
    }
}

/// A syntactically valid signed note whose signatures have not been checked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a note strictly. Nothing is verified yet; call [`SignedNote::verify`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(Error::MalformedNote {
                reason: "note is larger than 1 MiB",
            });
        }
        let note = std::str::from_utf8(bytes).map_err(|_| Error::MalformedNote {
            reason: "not valid UTF-8",
        })?;
        // The rule covers the signature lines too, so a control byte cannot hide in a name.
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(Error::MalformedNote {
                reason: "control characters other than newline are not allowed",
            });
        }
        // The text is separated from the signatures by the last blank line; signature lines
        // are never empty, so that is the last "\n\n".
        let Some(split) = note.rfind("\n\n") else {
            return Err(Error::MalformedNote {
                reason: "no blank line between text and signatures",
            });
        };
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        check_text(text)?;
        if sigs.is_empty() {
            return Err(Error::MalformedNote {
                reason: "no signature lines",
            });
        }
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(Error::MalformedNote {
                reason: "the last signature line must end with a newline",
            });
        };
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(Error::MalformedNote {
                    reason: "too many signatures",
                });
            }
            signatures.push(parse_signature_line(line)?);
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The text, not yet trusted.
    #[must_use]
    pub fn unverified_text(&self) -> &str {
        &self.text
    }

    /// The signature lines in order.
    #[must_use]
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Verifies against the trusted keys `verifiers`.
    ///
    /// Refuses the note if any signature by a trusted key (same name and id) fails, if two
    /// trusted keys share a name and id, or if no trusted key signed. Signatures by other
    /// keys are ignored, as the spec requires (they may be witnesses' cosignatures).
    pub fn verify(self, verifiers: &[VerifierKey]) -> Result<VerifiedNote, Error> {
        let mut verified_by: Vec<VerifierKey> = Vec::new();
        for sig in &self.signatures {
            let mut matching = verifiers
                .iter()
                .filter(|v| v.id == sig.key_id && v.name == sig.name);
            let Some(verifier) = matching.next() else {
                continue;
            };
            if matching.next().is_some() {
                return Err(Error::AmbiguousKey {
                    name: sig.name.clone(),
                    key_id: sig.key_id,
                });
            }
            if !verifier.verifies(self.text.as_bytes(), &sig.signature) {
                return Err(Error::InvalidSignature {
                    name: sig.name.clone(),
                    key_id: sig.key_id,
                });
            }
            if !verified_by.contains(verifier) {
                verified_by.push(verifier.clone());
            }
        }
        if verified_by.is_empty() {
            return Err(Error::NoTrustedSignature {
                signed_by: self
                    .signatures
                    .iter()
                    .map(|s| format!("{}+{}", s.name, s.key_id))
                    .collect(),
            });
        }
        Ok(VerifiedNote {
            note: self,
            verified_by,
        })
    }
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, Error> {
    let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
        return Err(Error::MalformedNote {
            reason: "a signature line starts with an em dash and a space",
        });
    };
    let Some((name, blob)) = rest.split_once(' ') else {
        return Err(Error::MalformedNote {
            reason: "a signature line is: em dash, space, key name, space, base64",
        });
    };
    check_key_name(name).map_err(|_| Error::MalformedNote {
        reason: "invalid key name in a signature line",
    })?;
    let blob = BASE64.decode(blob).map_err(|_| Error::MalformedNote {
        reason: "signature is not standard base64",
    })?;
    let Some((id, signature)) = blob.split_first_chunk::<4>() else {
        return Err(Error::MalformedNote {
            reason: "signature is shorter than its key id",
        });
    };
    if signature.is_empty() {
        return Err(Error::MalformedNote {
            reason: "signature is empty",
        });
    }
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: KeyId(u32::from_be_bytes(*id)),
        signature: signature.to_vec(),
    })
}

/// A note at least one trusted key signed. Only [`SignedNote::verify`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedNote {
    note: SignedNote,
    verified_by: Vec<VerifierKey>,
}

impl VerifiedNote {
    /// The signed text, trusted.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.note.text
    }

    /// The trusted keys whose signatures verified.
    #[must_use]
    pub fn verified_by(&self) -> &[VerifierKey] {
        &self.verified_by
    }

    /// Every signature line, including ones by keys we do not know.
    #[must_use]
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.note.signatures
    }
}

/// Parses and verifies a note in one step.
pub fn open_note(bytes: &[u8], verifiers: &[VerifierKey]) -> Result<VerifiedNote, Error> {
    SignedNote::parse(bytes)?.verify(verifiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_refuse_spaces_and_pluses() {
        for bad in ["", "a b", "a+b", "a\u{3000}b", "tab\t"] {
            assert!(SignerKey::from_seed(bad, &[0; 32]).is_err(), "{bad:?}");
        }
        SignerKey::from_seed("example.com/log", &[0; 32]).unwrap();
    }

    #[test]
    fn signer_debug_hides_the_seed() {
        let signer = SignerKey::from_seed("k", &[7; 32]).unwrap();
        let secret = signer.to_secret_text();
        let shown = format!("{signer:?}");
        let material = secret.rsplit('+').next().unwrap();
        assert!(!shown.contains(material), "{shown}");
    }

    #[test]
    fn own_keys_round_trip_through_text() {
        let signer = SignerKey::from_seed("mamori.example/ledger", &[42; 32]).unwrap();
        let again = SignerKey::parse(&signer.to_secret_text()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
        let vkey = signer.verifier().to_string();
        assert_eq!(VerifierKey::parse(&vkey).unwrap(), signer.verifier());
        assert_eq!(
            VerifierKey::from_public_key(signer.name(), &signer.verifier().public_key()).unwrap(),
            signer.verifier()
        );
    }
}
