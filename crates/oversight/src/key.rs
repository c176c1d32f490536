//! The deployment's checkpoint-signing key, kept in the data directory.

use crate::error::OversightError;
use mamori_ledger::{SignerKey, VerifierKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The private key file inside the data directory (mode 0600).
pub const KEY_FILE: &str = "ledger.key";
/// The public verifier key, for the overseer (`name+keyid+key` text).
pub const PUBLIC_KEY_FILE: &str = "ledger.pub";

/// The ledger's part of the configuration (`[ledger]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// The log's origin line, naming this deployment (e.g. `centre.example.jp/ledger`).
    /// Used only when the key is first created; empty means `mamori/<random id>`.
    pub origin: String,
    /// A new checkpoint is signed at most this often (seconds) when the log has grown;
    /// the overseer can ask for one at once.
    pub checkpoint_interval_secs: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            origin: String::new(),
            checkpoint_interval_secs: 60,
        }
    }
}

fn key_error(path: &Path, detail: impl Into<String>) -> OversightError {
    OversightError::Key {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Loads the signing key from `dir`, creating it (and its public half) if there is none.
/// Returns the key and whether it was created now.
pub(crate) fn load_or_create(
    dir: &Path,
    origin: &str,
) -> Result<(SignerKey, bool), OversightError> {
    let path = dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = SignerKey::parse(text.trim()).map_err(|e| {
                key_error(
                    &path,
                    format!("is not a signing key ({e}); restore it from backup"),
                )
            })?;
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|e| key_error(&path, format!("no randomness: {e}")))?;
            let name = if origin.is_empty() {
                let mut id = [0u8; 6];
                getrandom::fill(&mut id)
                    .map_err(|e| key_error(&path, format!("no randomness: {e}")))?;
                format!(
                    "mamori/{}",
                    id.iter().map(|b| format!("{b:02x}")).collect::<String>()
                )
            } else {
                origin.to_owned()
            };
            let key = SignerKey::from_seed(&name, &seed)
                .map_err(|e| key_error(&path, format!("origin {name:?} cannot name a key: {e}")))?;
            seed.fill(0);
            write_private(&path, &key.to_secret_text())?;
            let public = dir.join(PUBLIC_KEY_FILE);
            std::fs::write(&public, format!("{}\n", key.verifier()))
                .map_err(|e| key_error(&public, e.to_string()))?;
            Ok((key, true))
        }
        Err(e) => Err(key_error(&path, e.to_string())),
    }
}

fn write_private(path: &PathBuf, text: &str) -> Result<(), OversightError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| key_error(path, e.to_string()))?;
    f.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| key_error(path, e.to_string()))
}

/// Reads a verifier key from its text (`name+keyid+base64`) or from a file holding it.
pub fn read_verifier(text_or_path: &str) -> Result<VerifierKey, OversightError> {
    let text = if Path::new(text_or_path).is_file() {
        std::fs::read_to_string(text_or_path)
            .map_err(|e| key_error(Path::new(text_or_path), e.to_string()))?
    } else {
        text_or_path.to_owned()
    };
    VerifierKey::parse(text.trim())
        .map_err(|e| key_error(Path::new(text_or_path), format!("not a verifier key: {e}")))
}
