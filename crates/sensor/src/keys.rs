//! The sensor's pseudonym keys (DESIGN invariant 2; REQUIREMENTS CI-4, CI-5):
//! one Crypto-PAn key per configured period, living only in the sensor's data directory,
//! kept only as long as kept data was pseudonymised with it, and every creation and
//! retirement recorded in the sensor's ledger (`pseudonym_key` entries).
//!
//! # Files
//!
//! ```text
//! DATA/keys/<KEY_ID>.key   64 hex digits (AES key, then padding key), mode 0600
//! ```
//!
//! `KEY_ID` is the UTC start of the key's period, `YYYYMMDDTHHMMSSZ`. Periods are aligned
//! to the Unix epoch (a period of one day starts at 00:00 UTC). Archive files name the key
//! their pseudonyms were made with in their Parquet metadata under
//! [`PSEUDONYM_KEY_METADATA`]; [`KeyRing::keys_in_use`] reads it back.
//!
//! # Architecture invariant
//!
//! **A key is used only once its creation is recorded, and destroyed only after its
//! retirement is recorded.** A new key is written as `<id>.key.new`, its creation appended
//! to the ledger, then renamed into place; a key to retire is first renamed to
//! `<id>.key.retiring` (so nothing can use it), its retirement appended, then deleted. If an
//! append fails the rename is undone and the caller gets the error. A crash in between
//! leaves a `.new` file (deleted and made again: at worst a second `created` entry for the
//! id) or a `.retiring` file (recorded and deleted by the next [`KeyRing::retire`]: at worst
//! a second `retired` entry) — never a key in use without its entry. Key bytes never reach
//! a log line, an error message or the network: [`CryptoPanKey`]'s `Debug` is redacted.
//!
//! # API boundary
//!
//! [`KeyRing::open`] over the data directory and a [`Recorder`]; [`KeyRing::current`],
//! [`KeyRing::get`], [`KeyRing::list`], [`KeyRing::retire`], [`KeyRing::keys_in_use`],
//! [`KeyRing::reidentify`];
//! [`scan_key_ids`] for what the archive holds. "Now" always comes from the caller.

use crate::record::Recorder;
use mamori_core::entry::{Act, Actor, Entry, KeyStep};
use mamori_core::time::Timestamp;
use mamori_flow::{CryptoPan, CryptoPanKey, ReidentificationApproval};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use zeroize::Zeroize;

/// The Parquet key-value metadata key naming the pseudonym key of an archive file's
/// subscriber addresses (its value is a [`KeyId`]).
pub const PSEUDONYM_KEY_METADATA: &str = crate::archive::PSEUDONYM_KEY_ID_KEY;
/// The directory of key files inside the data directory.
pub const KEYS_DIR: &str = "keys";

const ID_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// A key's id: the UTC start of its period, `YYYYMMDDTHHMMSSZ`. Orders chronologically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id of the period starting at `start`.
    pub fn for_start(start: Timestamp) -> KeyId {
        KeyId(start.format(ID_FORMAT).to_string())
    }

    /// Reads an id; anything but `YYYYMMDDTHHMMSSZ` naming a real time is refused.
    pub fn parse(text: &str) -> Result<KeyId, KeyError> {
        let start = Self::start_of(text)?;
        // One spelling per time: what we would have written for it.
        if Self::for_start(start).0 != text {
            return Err(KeyError::BadId(text.chars().take(40).collect()));
        }
        Ok(KeyId(text.to_owned()))
    }

    fn start_of(text: &str) -> Result<Timestamp, KeyError> {
        chrono::NaiveDateTime::parse_from_str(text, ID_FORMAT)
            .map(|t| t.and_utc())
            .map_err(|_| KeyError::BadId(text.chars().take(40).collect()))
    }

    /// When its period starts.
    pub fn start(&self) -> Timestamp {
        // Only `for_start` and `parse` make ids, so this parses.
        Self::start_of(&self.0).unwrap_or_default()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for KeyId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        KeyId::parse(s)
    }
}

/// What can go wrong with the pseudonym keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a key id.
    #[error("{0:?} is not a key id (expected the UTC start of its period as YYYYMMDDTHHMMSSZ)")]
    BadId(String),
    /// The key for that id is not (or no longer) here.
    #[error(
        "no pseudonym key {0}: it never existed here or was retired, so its pseudonyms cannot be re-identified"
    )]
    NotFound(KeyId),
    /// The period is zero or longer than the calendar allows.
    #[error("the key period must be at least one second")]
    BadPeriod,
    /// A file operation failed.
    #[error("pseudonym keys: cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A re-identification without an approval reference or a purpose.
    #[error("re-identification needs an approval reference and a purpose (CI-5)")]
    Unapproved,
    /// A key file is not 64 hex digits (damaged); it is left in place.
    #[error("pseudonym key file {0} is damaged (expected 64 hex digits); restore it from backup")]
    Damaged(PathBuf),
    /// The ledger refused the entry, so the act did not happen.
    #[error("the ledger did not record the key's {step}, so it was not done: {source}")]
    NotRecorded {
        /// `creation`, `retirement` or `re-identification`.
        step: &'static str,
        /// The ledger's error.
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> KeyError + 'a {
    move |source| KeyError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The start of the period of length `period` (aligned to the Unix epoch) holding `now`.
pub fn period_start(now: Timestamp, period: Duration) -> Result<Timestamp, KeyError> {
    let secs = i64::try_from(period.as_secs()).map_err(|_| KeyError::BadPeriod)?;
    if secs == 0 {
        return Err(KeyError::BadPeriod);
    }
    let start = now.timestamp().div_euclid(secs) * secs;
    chrono::DateTime::from_timestamp(start, 0).ok_or(KeyError::BadPeriod)
}

/// The sensor's pseudonym keys. Thread-safe.
pub struct KeyRing {
    dir: PathBuf,
    recorder: std::sync::Arc<dyn Recorder>,
    actor: Actor,
    /// Keys read so far (zeroised when dropped).
    cache: Mutex<BTreeMap<KeyId, CryptoPanKey>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.dir)
            .field("actor", &self.actor.name)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The keys in `data_dir/keys`, recording their lifecycle through `recorder` as `actor`.
    pub fn open(
        data_dir: &Path,
        recorder: std::sync::Arc<dyn Recorder>,
        actor: Actor,
    ) -> Result<KeyRing, KeyError> {
        let dir = data_dir.join(KEYS_DIR);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err("restrict", &dir))?;
        }
        Ok(KeyRing {
            dir,
            recorder,
            actor,
            cache: Mutex::new(BTreeMap::new()),
        })
    }

    fn path(&self, id: &KeyId, suffix: &str) -> PathBuf {
        self.dir.join(format!("{id}.key{suffix}"))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, BTreeMap<KeyId, CryptoPanKey>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, now: Timestamp, id: &KeyId, step: KeyStep) -> io::Result<u64> {
        self.recorder.record(&[Entry::new(
            now,
            self.actor.clone(),
            Act::PseudonymKey {
                key_id: id.to_string(),
                step,
            },
        )])
    }

    /// The key for the period holding `now`, made (and its creation recorded) if this is
    /// the first call in a new period.
    pub fn current(
        &self,
        now: Timestamp,
        period: Duration,
    ) -> Result<(KeyId, CryptoPanKey), KeyError> {
        let id = KeyId::for_start(period_start(now, period)?);
        let mut cache = self.cache();
        if let Some(key) = cache.get(&id) {
            return Ok((id, key.clone()));
        }
        let key = match self.read(&id) {
            Ok(key) => key,
            Err(KeyError::NotFound(_)) => self.create(now, &id)?,
            Err(e) => return Err(e),
        };
        cache.insert(id.clone(), key.clone());
        Ok((id, key))
    }

    fn create(&self, now: Timestamp, id: &KeyId) -> Result<CryptoPanKey, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Io {
            op: "draw randomness for",
            path: self.path(id, ""),
            source: io::Error::other(e.to_string()),
        })?;
        let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let key = CryptoPanKey::from_bytes(bytes);
        bytes.zeroize();
        let new = self.path(id, ".new");
        // A `.new` file is from a crash before the rename: never used, start over.
        match fs::remove_file(&new) {
            Ok(()) => tracing::warn!(key_id = %id, "discarding a key left half-made by a crash"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &new)(e)),
        }
        hex.push('\n');
        let written = crate::ledger::write_private(&new, &hex);
        hex.zeroize();
        written.map_err(io_err("write", &new))?;
        if let Err(source) = self.record(now, id, KeyStep::Created) {
            let _ = fs::remove_file(&new);
            return Err(KeyError::NotRecorded {
                step: "creation",
                source,
            });
        }
        let path = self.path(id, "");
        fs::rename(&new, &path).map_err(io_err("rename", &new))?;
        sync_dir(&self.dir)?;
        tracing::info!(key_id = %id, "made a new pseudonym key");
        Ok(key)
    }

    fn read(&self, id: &KeyId) -> Result<CryptoPanKey, KeyError> {
        let path = self.path(id, "");
        let mut text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeyError::NotFound(id.clone()));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let key = CryptoPanKey::from_hex(text.trim()).map_err(|_| KeyError::Damaged(path));
        text.zeroize();
        key
    }

    /// The key `id`, if it is still here.
    pub fn get(&self, id: &KeyId) -> Result<CryptoPanKey, KeyError> {
        let mut cache = self.cache();
        if let Some(key) = cache.get(id) {
            return Ok(key.clone());
        }
        let key = self.read(id)?;
        cache.insert(id.clone(), key.clone());
        Ok(key)
    }

    /// The ids of the keys held, oldest first.
    pub fn list(&self) -> Result<BTreeSet<KeyId>, KeyError> {
        Ok(self.files()?.0)
    }

    /// Key files (`<id>.key`) and leftovers of interrupted retirements (`<id>.key.retiring`).
    fn files(&self) -> Result<(BTreeSet<KeyId>, BTreeSet<KeyId>), KeyError> {
        let (mut keys, mut retiring) = (BTreeSet::new(), BTreeSet::new());
        for entry in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".key") {
                if let Ok(id) = KeyId::parse(id) {
                    keys.insert(id);
                }
            } else if let Some(id) = name.strip_suffix(".key.retiring")
                && let Ok(id) = KeyId::parse(id)
            {
                retiring.insert(id);
            }
        }
        Ok((keys, retiring))
    }

    /// Destroys every key that `still_needed` does not name, except the newest one that has
    /// started by `now` (the key in use) and any that start after `now`. Each retirement is
    /// recorded before the key file is deleted. `still_needed` must cover every key whose
    /// pseudonyms are kept — in the archive ([`KeyRing::keys_in_use`]) and in data not yet
    /// written. Returns the ids retired.
    pub fn retire(
        &self,
        now: Timestamp,
        still_needed: &BTreeSet<KeyId>,
    ) -> Result<Vec<KeyId>, KeyError> {
        let (keys, leftovers) = self.files()?;
        let in_use = keys.iter().rfind(|id| id.start() <= now).cloned();
        let mut retired = Vec::new();
        // Interrupted retirements first: the key is already unusable; record and delete.
        for id in leftovers {
            self.finish_retirement(now, &id)?;
            retired.push(id);
        }
        for id in keys {
            if still_needed.contains(&id) || Some(&id) == in_use.as_ref() || id.start() > now {
                continue;
            }
            let (path, retiring) = (self.path(&id, ""), self.path(&id, ".retiring"));
            self.cache().remove(&id);
            fs::rename(&path, &retiring).map_err(io_err("rename", &path))?;
            if let Err(e) = self.finish_retirement(now, &id) {
                if matches!(e, KeyError::NotRecorded { .. }) {
                    // Not recorded, so not done: the key goes back.
                    fs::rename(&retiring, &path).map_err(io_err("rename", &retiring))?;
                }
                return Err(e);
            }
            retired.push(id);
        }
        Ok(retired)
    }

    fn finish_retirement(&self, now: Timestamp, id: &KeyId) -> Result<(), KeyError> {
        self.record(now, id, KeyStep::Retired)
            .map_err(|source| KeyError::NotRecorded {
                step: "retirement",
                source,
            })?;
        let retiring = self.path(id, ".retiring");
        fs::remove_file(&retiring).map_err(io_err("delete", &retiring))?;
        sync_dir(&self.dir)?;
        tracing::info!(key_id = %id, "retired a pseudonym key");
        Ok(())
    }

    /// Re-identifies one pseudonymised subscriber address (CI-4, CI-5; DESIGN invariant 2):
    /// appends `Act::Reidentification` to the ledger **first** — pseudonym as
    /// `<address>@<KEY_ID>`, the approval reference and the purpose — and only with the
    /// index it returns builds the receipt [`ReidentificationApproval`] that
    /// [`CryptoPan::deanonymise`] demands. If the append fails, nothing is revealed.
    /// Refuses an empty approval reference or purpose, and a key that is gone.
    pub fn reidentify(
        &self,
        now: Timestamp,
        actor: Actor,
        pseudonym: IpAddr,
        key_id: &KeyId,
        approval: &str,
        purpose: &str,
    ) -> Result<Reidentified, KeyError> {
        let (approval, purpose) = (approval.trim(), purpose.trim());
        if approval.is_empty() || purpose.is_empty() {
            return Err(KeyError::Unapproved);
        }
        let key = self.get(key_id)?;
        let act = Act::Reidentification {
            pseudonym: format!("{pseudonym}@{key_id}"),
            approval: approval.to_owned(),
            purpose: purpose.to_owned(),
        };
        let index = self
            .recorder
            .record(&[Entry::new(now, actor, act)])
            .map_err(|source| KeyError::NotRecorded {
                step: "re-identification",
                source,
            })?;
        let receipt = ReidentificationApproval::recorded(approval, index);
        let address = CryptoPan::new(&key).deanonymise(pseudonym, &receipt);
        Ok(Reidentified {
            address,
            ledger_index: index,
        })
    }

    /// The keys the archive under `archive_dir` still needs: those named by its files'
    /// [`PSEUDONYM_KEY_METADATA`] — and, if any file does not say (or cannot be read),
    /// every key held, since its pseudonyms might have been made with any of them.
    pub fn keys_in_use(&self, archive_dir: &Path) -> Result<BTreeSet<KeyId>, KeyError> {
        let scan = scan_key_ids(archive_dir)?;
        if scan.unlabelled.is_empty() {
            Ok(scan.ids)
        } else {
            let mut all = self.list()?;
            all.extend(scan.ids);
            Ok(all)
        }
    }
}

/// A re-identified address and where its record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reidentified {
    /// The subscriber's address in clear.
    pub address: IpAddr,
    /// The index of the `reidentification` entry in the sensor's ledger.
    pub ledger_index: u64,
}

fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// What the archive says about its pseudonym keys.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeysInUse {
    /// Key ids named by archive files.
    pub ids: BTreeSet<KeyId>,
    /// Files that name no (valid) key id or could not be read: they might need any key.
    pub unlabelled: Vec<PathBuf>,
}

/// Reads [`PSEUDONYM_KEY_METADATA`] from the footer of every file under `archive_dir`
/// (only the footer is read, not the data).
pub fn scan_key_ids(archive_dir: &Path) -> Result<KeysInUse, KeyError> {
    let mut out = KeysInUse::default();
    if !archive_dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![archive_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let path = entry.path();
            if entry.file_type().map_err(io_err("stat", &path))?.is_dir() {
                stack.push(path);
                continue;
            }
            match key_id_of(&path) {
                Some(id) => {
                    out.ids.insert(id);
                }
                None => out.unlabelled.push(path),
            }
        }
    }
    out.unlabelled.sort();
    Ok(out)
}

fn key_id_of(path: &Path) -> Option<KeyId> {
    let meta = crate::archive::file_metadata(path).ok()?;
    KeyId::parse(meta.get(PSEUDONYM_KEY_METADATA)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_have_one_spelling() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 6, 0, 0).unwrap();
        let id = KeyId::for_start(t);
        assert_eq!(id.as_str(), "20261124T060000Z");
        assert_eq!(KeyId::parse("20261124T060000Z").unwrap(), id);
        assert_eq!(id.start(), t);
        for bad in [
            "",
            "2026-11-24T06:00:00Z",
            "20261124T060000",
            "20261124t060000Z",
            "20261332T060000Z",
            "20261124T060000Z ",
            "+20261124T060000Z",
            "../../etc/passwd",
        ] {
            assert!(KeyId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn periods_align_to_the_epoch() {
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 11, 24, 6, 30, 7)
            .unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(
            period_start(t, day).unwrap(),
            chrono::Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
        );
        assert_eq!(
            period_start(t, Duration::from_secs(3600)).unwrap(),
            chrono::Utc.with_ymd_and_hms(2026, 11, 24, 6, 0, 0).unwrap()
        );
        assert!(period_start(t, Duration::ZERO).is_err());
        assert!(period_start(t, Duration::from_secs(u64::MAX)).is_err());
    }
}
