//! The sensor's own ledger (DESIGN invariant 7; REQUIREMENTS CI-4, CI-5,
//! CI-9): re-identifications, concern-list changes, pseudonym keys and deletions happen at
//! the carrier, so they are appended to an RFC 6962 Merkle log kept in the sensor's data
//! directory, with the same entries ([`mamori_core::entry`]), the same tree and the same
//! signed C2SP checkpoints as the centre's — so the overseer checks a sensor with
//! `mamori audit verify` exactly as it checks the centre.
//!
//! # Files
//!
//! ```text
//! DATA/ledger.key              Ed25519 signing key (mode 0600), created on first open
//! DATA/ledger.pub              its verifier key, Go sumdb/note form, for the overseer
//! DATA/ledger/size             the committed number of entries, decimal: the commit point
//! DATA/ledger/entries          the entries' canonical bytes, back to back
//! DATA/ledger/entries.idx      per entry, the u64 (big-endian) end offset in `entries`
//! DATA/ledger/nodes-LL         per level LL (00 = leaf hashes), 32-byte subtree hashes
//! DATA/ledger/checkpoint       the latest signed checkpoint: its time, then the note
//! DATA/ledger/lock             advisory lock shared by every process that opens the log
//! ```
//!
//! Entry `i` is read in O(1) (two index slots, one range of `entries`); node
//! `(level, index)` is the 32 bytes at `index·32` in `nodes-LL`, written once when its last
//! leaf arrives, so roots and proofs read O(log n) nodes through [`NodeSource`].
//!
//! # Architecture invariant
//!
//! **The size file is the only commit point.** An append writes the entries, the index and
//! the nodes past the committed ends, fsyncs them, and only then replaces `size` (written
//! to `size.tmp`, fsynced, renamed, directory fsynced). A crash anywhere before the rename
//! leaves the old size, and whatever lies past the committed ends is a torn tail: [`open`]
//! cuts it off and the next append overwrites it. Nothing committed is ever rewritten or
//! truncated; files *shorter* than the committed size, or a log that no longer matches its
//! last signed checkpoint, are refused with an error naming the file — never "repaired".
//! Every operation re-reads `size` under an advisory file lock, so the running sensor and
//! a `mamori sensor reidentify` in another process append to one log in turn.
//!
//! # API boundary
//!
//! [`SensorLedger::open`] with a [`LedgerConfig`]; [`SensorLedger::append`] (also as
//! [`Recorder`]); [`SensorLedger::entries`], [`SensorLedger::inclusion_proof`],
//! [`SensorLedger::consistency_proof`], [`SensorLedger::checkpoint`] for the overseer's
//! endpoints ([`crate::http_ledger`]); [`SensorLedger::verify`] re-derives every hash
//! locally. No SQL (DESIGN: the sensor builds without it); the Merkle math is
//! `mamori-ledger`'s, shared with the centre.
//!
//! [`open`]: SensorLedger::open

use crate::record::Recorder;
use mamori_core::ErrorKind;
use mamori_core::entry::Entry;
use mamori_core::time::{Timestamp, rfc3339};
use mamori_ledger::{
    Checkpoint, ConsistencyPlan, ConsistencyProof, Frontier, Hash, InclusionPlan, InclusionProof,
    MemoryTree, NodeId, NodeSource, SignerKey, VerifierKey, leaf_hash, tree_root,
};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The private key file inside the data directory (mode 0600).
pub const KEY_FILE: &str = "ledger.key";
/// The public verifier key, for the overseer (`name+keyid+base64` text).
pub const PUBLIC_KEY_FILE: &str = "ledger.pub";
/// The directory of the log's files inside the data directory.
pub const LEDGER_DIR: &str = "ledger";
/// The most entries one read returns (as the centre's, so pages look alike).
pub const MAX_ENTRIES_PER_PAGE: u64 = 1000;
/// No entry the sensor writes comes near this; a longer one in the index means the files
/// were damaged, and reading it is refused rather than allocating what the index says.
pub const MAX_ENTRY_BYTES: u64 = 1 << 20;

const HASH_LEN: u64 = 32;
const SLOT_LEN: u64 = 8;

/// The ledger's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// The log's origin line, naming this sensor (e.g. `sensor.carrier.example.jp/ledger`).
    /// Used only when the key is first created; empty means `mamori-sensor/<random id>`.
    pub origin: String,
    /// A new checkpoint is signed at most this often when the log has grown; the overseer
    /// can ask for one at once ([`SensorLedger::checkpoint_now`]).
    pub checkpoint_interval: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            origin: String::new(),
            checkpoint_interval: Duration::from_secs(60),
        }
    }
}

/// What can go wrong with the sensor's ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A file operation failed.
    #[error("ledger: cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The files contradict each other or the last signed checkpoint: damage or tampering.
    /// Nothing is changed; restore the directory from backup and tell the overseer.
    #[error("ledger: {path} is damaged or was altered: {detail}")]
    Corrupt {
        /// The file (or directory) found wrong.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The signing key could not be read or made.
    #[error("ledger key {path}: {detail}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A request named entries or sizes the log does not have.
    #[error("{0}")]
    OutOfRange(String),
    /// The Merkle math refused (a bug, or a tree past `u64::MAX` leaves).
    #[error("ledger: {0}")]
    Merkle(#[from] mamori_ledger::Error),
}

impl LedgerError {
    /// The kind that decides how a caller (and the HTTP layer) reacts.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LedgerError::OutOfRange(_) => ErrorKind::InvalidInput,
            _ => ErrorKind::Internal,
        }
    }

    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LedgerError + 'a {
        move |source| LedgerError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    fn corrupt(path: &Path, detail: impl Into<String>) -> LedgerError {
        LedgerError::Corrupt {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}

/// Shorthand for this module's results.
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// What [`SensorLedger::verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries re-hashed.
    pub entries: u64,
    /// The tree head recomputed from them.
    pub root: Hash,
    /// The size of the last signed checkpoint, which the recomputed tree matches.
    pub checkpoint_size: Option<u64>,
}

/// The sensor's append-only, verifiable log. Thread-safe: every method takes `&self`.
#[derive(Debug)]
pub struct SensorLedger {
    dir: PathBuf,
    signer: SignerKey,
    interval: chrono::Duration,
    /// The advisory lock other processes opening this log share; taken after `inner`.
    lock: File,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    entries: File,
    index: File,
    /// `nodes-LL` files, opened as levels appear.
    levels: Vec<File>,
    /// The committed state this process last read.
    size: u64,
    data_len: u64,
    frontier: Frontier,
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(LedgerError::io("open", path))
}

fn file_len(file: &File, path: &Path) -> Result<u64> {
    Ok(file
        .metadata()
        .map_err(LedgerError::io("stat", path))?
        .len())
}

fn read_at(mut file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(buf))
        .map_err(LedgerError::io("read", path))
}

fn write_at(mut file: &File, path: &Path, offset: u64, buf: &[u8]) -> Result<()> {
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.write_all(buf))
        .map_err(LedgerError::io("write", path))
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Directories cannot be opened for fsync everywhere; on Unix this makes a rename durable.
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LedgerError::io("fsync", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `text` to `path` atomically: a temporary file, fsynced, renamed, directory fsynced.
fn replace_file(dir: &Path, name: &str, text: &str) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).map_err(LedgerError::io("create", &tmp))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(LedgerError::io("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(LedgerError::io("rename", &tmp))?;
    sync_dir(dir)
}

fn level_name(level: usize) -> String {
    format!("nodes-{level:02}")
}

/// How many nodes of `level` a tree of `size` leaves has stored.
fn nodes_at(size: u64, level: usize) -> u64 {
    u32::try_from(level)
        .ok()
        .and_then(|l| size.checked_shr(l))
        .unwrap_or(0)
}

/// How many levels a tree of `size` leaves has stored nodes on.
fn level_count(size: u64) -> usize {
    (u64::BITS - size.leading_zeros()) as usize
}

impl Inner {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read_committed_size(&self) -> Result<u64> {
        let path = self.path("size");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(LedgerError::io("read", &path)(e)),
        };
        let digits = text.strip_suffix('\n').unwrap_or(&text);
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !canonical {
            return Err(LedgerError::corrupt(
                &path,
                format!(
                    "expected a decimal entry count, found {:?}",
                    text.chars().take(40).collect::<String>()
                ),
            ));
        }
        digits
            .parse()
            .map_err(|_| LedgerError::corrupt(&path, "the entry count does not fit in 64 bits"))
    }

    fn ensure_levels(&mut self, count: usize) -> Result<()> {
        while self.levels.len() < count {
            let path = self.path(&level_name(self.levels.len()));
            self.levels.push(open_rw(&path)?);
        }
        Ok(())
    }

    /// The end offset of entry `i` in `entries` (0 for `i = -1`).
    fn end_of(&self, i: Option<u64>) -> Result<u64> {
        let Some(i) = i else { return Ok(0) };
        let mut slot = [0u8; 8];
        read_at(
            &self.index,
            &self.path("entries.idx"),
            i * SLOT_LEN,
            &mut slot,
        )?;
        Ok(u64::from_be_bytes(slot))
    }

    /// Re-reads the commit point; if another process (or a crashed earlier run) moved it,
    /// reloads the frontier and checks the files hold everything it commits to.
    fn refresh(&mut self) -> Result<()> {
        let size = self.read_committed_size()?;
        if size == self.size && self.frontier.size() == size {
            return Ok(());
        }
        self.ensure_levels(level_count(size))?;
        let idx_path = self.path("entries.idx");
        let need = size.saturating_mul(SLOT_LEN);
        if file_len(&self.index, &idx_path)? < need {
            return Err(LedgerError::corrupt(
                &idx_path,
                format!("{size} entries are committed but the index is shorter than {need} bytes"),
            ));
        }
        let data_len = self.end_of(size.checked_sub(1))?;
        let data_path = self.path("entries");
        if file_len(&self.entries, &data_path)? < data_len {
            return Err(LedgerError::corrupt(
                &data_path,
                format!(
                    "{size} entries are committed but the file is shorter than {data_len} bytes"
                ),
            ));
        }
        for (level, file) in self.levels.iter().enumerate() {
            let path = self.path(&level_name(level));
            let need = nodes_at(size, level) * HASH_LEN;
            if file_len(file, &path)? < need {
                return Err(LedgerError::corrupt(
                    &path,
                    format!("{size} entries are committed but it is shorter than {need} bytes"),
                ));
            }
        }
        self.size = size;
        self.data_len = data_len;
        self.frontier = Frontier::load(&Nodes(self), size)?;
        Ok(())
    }

    /// Cuts every file back to the committed size: what lies beyond is a torn tail left by
    /// an append that never reached its commit point.
    fn cut_torn_tail(&mut self) -> Result<()> {
        let cut = |file: &File, path: &Path, len: u64| -> Result<()> {
            if file_len(file, path)? > len {
                tracing::warn!(path = %path.display(), len, "cutting an uncommitted ledger tail");
                file.set_len(len)
                    .and_then(|()| file.sync_all())
                    .map_err(LedgerError::io("truncate", path))?;
            }
            Ok(())
        };
        cut(&self.entries, &self.path("entries"), self.data_len)?;
        cut(&self.index, &self.path("entries.idx"), self.size * SLOT_LEN)?;
        // Levels beyond the committed tree may exist from a torn append; open them too.
        let mut level = self.levels.len();
        while self.path(&level_name(level)).exists() {
            self.ensure_levels(level + 1)?;
            level += 1;
        }
        for (level, file) in self.levels.iter().enumerate() {
            cut(
                file,
                &self.path(&level_name(level)),
                nodes_at(self.size, level) * HASH_LEN,
            )?;
        }
        // A level the committed tree does not reach is now empty. Its file is truncated,
        // not removed: another process may hold it open, and must keep writing to the
        // file every later open reads.
        Ok(())
    }

    fn read_entry(&self, i: u64) -> Result<Vec<u8>> {
        let start = self.end_of(i.checked_sub(1))?;
        let end = self.end_of(Some(i))?;
        let data_path = self.path("entries");
        if end < start || end - start > MAX_ENTRY_BYTES || end > self.data_len {
            return Err(LedgerError::corrupt(
                &self.path("entries.idx"),
                format!(
                    "entry {i} is indexed at bytes {start}..{end} of {}",
                    self.data_len
                ),
            ));
        }
        let len = usize::try_from(end - start).map_err(|_| {
            LedgerError::corrupt(&data_path, format!("entry {i} is too large to read"))
        })?;
        let mut buf = vec![0u8; len];
        read_at(&self.entries, &data_path, start, &mut buf)?;
        Ok(buf)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<u64> {
        let first = self.size;
        if entries.is_empty() {
            return Ok(first);
        }
        let mut frontier = self.frontier.clone();
        let mut data = Vec::new();
        let mut slots = Vec::with_capacity(entries.len() * 8);
        let mut completed = Vec::with_capacity(entries.len() * 2);
        for entry in entries {
            let bytes = entry.encode();
            frontier.push(leaf_hash(&bytes), &mut completed)?;
            data.extend_from_slice(&bytes);
            slots.extend_from_slice(&(self.data_len + data.len() as u64).to_be_bytes());
        }
        let size = frontier.size();
        self.ensure_levels(level_count(size))?;

        // 1. Everything past the committed ends, then set each file's exact length (which
        //    also drops any torn tail a failed earlier append left).
        let data_path = self.path("entries");
        let new_data_len = self.data_len + data.len() as u64;
        write_at(&self.entries, &data_path, self.data_len, &data)?;
        self.entries
            .set_len(new_data_len)
            .map_err(LedgerError::io("truncate", &data_path))?;
        let idx_path = self.path("entries.idx");
        write_at(&self.index, &idx_path, first * SLOT_LEN, &slots)?;
        self.index
            .set_len(size * SLOT_LEN)
            .map_err(LedgerError::io("truncate", &idx_path))?;
        let mut per_level: Vec<Vec<u8>> = vec![Vec::new(); level_count(size)];
        for (id, hash) in &completed {
            if let Some(buf) = per_level.get_mut(usize::from(id.level)) {
                buf.extend_from_slice(hash.as_bytes());
            }
        }
        for (level, (file, buf)) in self.levels.iter().zip(&per_level).enumerate() {
            if buf.is_empty() {
                continue;
            }
            let path = self.path(&level_name(level));
            write_at(file, &path, nodes_at(first, level) * HASH_LEN, buf)?;
            file.set_len(nodes_at(size, level) * HASH_LEN)
                .map_err(LedgerError::io("truncate", &path))?;
        }
        // 2. Durable before the commit point moves.
        self.entries
            .sync_data()
            .map_err(LedgerError::io("fsync", &data_path))?;
        self.index
            .sync_data()
            .map_err(LedgerError::io("fsync", &idx_path))?;
        for (level, (file, buf)) in self.levels.iter().zip(&per_level).enumerate() {
            if !buf.is_empty() {
                file.sync_data()
                    .map_err(LedgerError::io("fsync", &self.path(&level_name(level))))?;
            }
        }
        // 3. The commit point.
        replace_file(&self.dir, "size", &format!("{size}\n"))?;
        self.size = size;
        self.data_len = new_data_len;
        self.frontier = frontier;
        Ok(first)
    }
}

/// The stored nodes of the committed tree, as [`mamori_ledger`] reads them.
struct Nodes<'a>(&'a Inner);

impl NodeSource for Nodes<'_> {
    type Error = LedgerError;

    fn node(&self, id: NodeId) -> Result<Hash> {
        let level = usize::from(id.level);
        let path = self.0.path(&level_name(level));
        let (Some(file), true) = (
            self.0.levels.get(level),
            id.index < nodes_at(self.0.size, level),
        ) else {
            return Err(LedgerError::OutOfRange(format!(
                "node ({}, {}) is not part of the tree of {} entries",
                id.level, id.index, self.0.size
            )));
        };
        let mut buf = [0u8; 32];
        read_at(file, &path, id.index * HASH_LEN, &mut buf)?;
        Ok(Hash::from(buf))
    }
}

/// Holds the advisory lock on the ledger's `lock` file for the duration of one operation.
struct FileLock<'a>(&'a File);

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl SensorLedger {
    /// Opens (creating on first use) the ledger in `data_dir`: the signing key in
    /// `data_dir/ledger.key`, the log in `data_dir/ledger/`. A torn tail from a crash is cut
    /// back to the last committed size; files that hold less than it commits to, or that
    /// no longer match the last signed checkpoint, are refused.
    pub fn open(data_dir: &Path, cfg: &LedgerConfig) -> Result<SensorLedger> {
        let dir = data_dir.join(LEDGER_DIR);
        fs::create_dir_all(&dir).map_err(LedgerError::io("create", &dir))?;
        let lock = open_rw(&dir.join("lock"))?;
        let signer = {
            // Two processes opening a new data directory at once make one key, not two.
            lock.lock()
                .map_err(LedgerError::io("lock", &dir.join("lock")))?;
            let _held = FileLock(&lock);
            load_or_create_key(data_dir, &cfg.origin)?
        };
        let inner = Inner {
            entries: open_rw(&dir.join("entries"))?,
            index: open_rw(&dir.join("entries.idx"))?,
            levels: Vec::new(),
            dir: dir.clone(),
            size: 0,
            data_len: 0,
            frontier: Frontier::empty(),
        };
        let ledger = SensorLedger {
            dir,
            signer,
            interval: chrono::Duration::from_std(cfg.checkpoint_interval)
                .unwrap_or(chrono::Duration::MAX),
            lock,
            inner: Mutex::new(inner),
        };
        {
            let mut inner = ledger.lock_inner();
            let _held = ledger.exclusive()?;
            // Force a full reload: `size` 0 with an empty frontier would otherwise be taken
            // as already current.
            inner.size = u64::MAX;
            inner.refresh()?;
            // Checked before anything is cut: a size file lowered behind the log's back
            // must be refused with the entries it hides still on disk.
            ledger.check_against_checkpoint(&inner)?;
            inner.cut_torn_tail()?;
        }
        Ok(ledger)
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves only in-memory state, which every operation
        // re-reads from the files anyway.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The log's origin line (also the key's name).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The public key the overseer verifies checkpoints with.
    pub fn verifier(&self) -> VerifierKey {
        self.signer.verifier()
    }

    /// The directory holding the log's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `entries` durably and in order; returns the index of the first. On error
    /// nothing was committed (what was written past the commit point is cut or overwritten
    /// later) — with one exception the file system leaves no way around: if the rename of
    /// `size` succeeded but the directory fsync after it failed, the entries are visible
    /// and the error says so ("cannot fsync"). Callers then err on the side of the act not
    /// having happened (no address revealed; a deletion recorded again).
    pub fn append(&self, entries: &[Entry]) -> Result<u64> {
        let mut inner = self.lock_inner();
        let _held = self.exclusive()?;
        inner.refresh()?;
        inner.append(entries)
    }

    /// The number of committed entries.
    pub fn size(&self) -> Result<u64> {
        let mut inner = self.lock_inner();
        let _held = self.shared()?;
        inner.refresh()?;
        Ok(inner.size)
    }

    /// Entries from `start`, at most `limit` (capped at [`MAX_ENTRIES_PER_PAGE`]) and not
    /// past the end of the log: `(index, canonical bytes as stored)`.
    pub fn entries(&self, start: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut inner = self.lock_inner();
        let _held = self.shared()?;
        inner.refresh()?;
        let end = start
            .saturating_add(limit.min(MAX_ENTRIES_PER_PAGE))
            .min(inner.size);
        (start..end)
            .map(|i| Ok((i, inner.read_entry(i)?)))
            .collect()
    }

    /// The tree head at `size` (at most the current size), from O(log n) stored nodes.
    pub fn root(&self, size: u64) -> Result<Hash> {
        let mut inner = self.lock_inner();
        let _held = self.shared()?;
        inner.refresh()?;
        check_size(&inner, size)?;
        Ok(tree_root(&Nodes(&inner), size)?)
    }

    /// Proof that entry `index` is in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        let mut inner = self.lock_inner();
        let _held = self.shared()?;
        inner.refresh()?;
        check_size(&inner, size)?;
        let plan =
            InclusionPlan::new(index, size).map_err(|e| LedgerError::OutOfRange(e.to_string()))?;
        let found = Nodes(&inner).nodes(plan.nodes())?;
        Ok(plan.assemble(&found)?)
    }

    /// Proof that the tree of `second` entries extends the tree of `first` entries.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<ConsistencyProof> {
        let mut inner = self.lock_inner();
        let _held = self.shared()?;
        inner.refresh()?;
        check_size(&inner, second)?;
        let plan = ConsistencyPlan::new(first, second)
            .map_err(|e| LedgerError::OutOfRange(e.to_string()))?;
        let found = Nodes(&inner).nodes(plan.nodes())?;
        Ok(plan.assemble(&found)?)
    }

    /// The newest signed checkpoint (a C2SP signed note), signing a new one first if the
    /// log has grown and the last one is older than the configured interval.
    pub fn checkpoint(&self, now: Timestamp) -> Result<String> {
        self.checkpoint_inner(now, false)
    }

    /// A checkpoint of the log as it is now: signs one unless the latest already covers
    /// every entry (what the overseer's `POST /api/v1/ledger/checkpoint` asks for).
    pub fn checkpoint_now(&self, now: Timestamp) -> Result<String> {
        self.checkpoint_inner(now, true)
    }

    fn checkpoint_inner(&self, now: Timestamp, force: bool) -> Result<String> {
        let mut inner = self.lock_inner();
        let _held = self.exclusive()?;
        inner.refresh()?;
        if let Some(latest) = self.latest_checkpoint(&inner)?
            && (latest.size == inner.size || (!force && now - latest.created < self.interval))
        {
            return Ok(latest.note);
        }
        let root = inner.frontier.root();
        let note = Checkpoint::new(self.origin(), inner.size, root)?.sign(&self.signer)?;
        replace_file(
            &inner.dir,
            "checkpoint",
            &format!("{}\n{note}", rfc3339(now)),
        )?;
        tracing::info!(size = inner.size, root = %root, "signed a sensor ledger checkpoint");
        Ok(note)
    }

    /// The stored checkpoint: when it was signed, its size, its note. Verified with our
    /// own key, so a replaced file is noticed.
    fn latest_checkpoint(&self, inner: &Inner) -> Result<Option<StoredCheckpoint>> {
        let path = inner.path("checkpoint");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LedgerError::io("read", &path)(e)),
        };
        let Some((time, note)) = text.split_once('\n') else {
            return Err(LedgerError::corrupt(&path, "no time line before the note"));
        };
        let created = chrono::DateTime::parse_from_rfc3339(time)
            .map_err(|e| LedgerError::corrupt(&path, format!("time line: {e}")))?
            .to_utc();
        let verified = Checkpoint::open(note.as_bytes(), self.origin(), &[self.verifier()])
            .map_err(|e| {
                LedgerError::corrupt(&path, format!("does not verify with the ledger key: {e}"))
            })?;
        Ok(Some(StoredCheckpoint {
            created,
            size: verified.size(),
            root: verified.root(),
            note: note.to_owned(),
        }))
    }

    /// O(log n): the committed tree must extend the last signed checkpoint.
    fn check_against_checkpoint(&self, inner: &Inner) -> Result<()> {
        let Some(StoredCheckpoint {
            size, root: signed, ..
        }) = self.latest_checkpoint(inner)?
        else {
            return Ok(());
        };
        if size > inner.size {
            return Err(LedgerError::corrupt(
                &inner.dir,
                format!(
                    "the log holds {} entries but its last signed checkpoint commits to {size}: \
                     entries {}..{size} were removed",
                    inner.size, inner.size
                ),
            ));
        }
        let stored = tree_root(&Nodes(inner), size)?;
        if stored != signed {
            return Err(LedgerError::corrupt(
                &inner.dir,
                format!(
                    "the stored tree of {size} entries has root {stored}, the signed checkpoint {signed}"
                ),
            ));
        }
        Ok(())
    }

    /// Re-derives everything from the entries: each stored leaf hash, every stored node,
    /// and the root of the last signed checkpoint. O(n); names the first entry or node that
    /// does not match.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut inner = self.lock_inner();
        let _held = self.shared()?;
        inner.refresh()?;
        let nodes = Nodes(&inner);
        let mut tree = MemoryTree::new();
        for i in 0..inner.size {
            let bytes = inner.read_entry(i)?;
            let hash = leaf_hash(&bytes);
            if nodes.node(NodeId::leaf(i))? != hash {
                return Err(LedgerError::corrupt(
                    &inner.path("entries"),
                    format!("entry {i} does not match its stored leaf hash"),
                ));
            }
            tree.push_hash(hash)?;
        }
        for level in 0..level_count(inner.size) {
            for index in 0..nodes_at(inner.size, level) {
                #[allow(clippy::cast_possible_truncation)] // level < 64
                let id = NodeId::new(level as u8, index);
                if nodes.node(id)? != tree.node(id)? {
                    return Err(LedgerError::corrupt(
                        &inner.path(&level_name(level)),
                        format!("node {index} of level {level} does not match the entries"),
                    ));
                }
            }
        }
        let root = tree_root(&tree, inner.size)?;
        let checkpoint_size = match self.latest_checkpoint(&inner)? {
            None => None,
            Some(StoredCheckpoint { size, root, .. }) => {
                if size > inner.size || tree_root(&tree, size)? != root {
                    return Err(LedgerError::corrupt(
                        &inner.dir,
                        format!(
                            "the entries do not reproduce the signed checkpoint of size {size}"
                        ),
                    ));
                }
                Some(size)
            }
        };
        Ok(VerifyReport {
            entries: inner.size,
            root,
            checkpoint_size,
        })
    }
}

/// The checkpoint file, read and verified.
struct StoredCheckpoint {
    created: Timestamp,
    size: u64,
    root: Hash,
    note: String,
}

fn check_size(inner: &Inner, size: u64) -> Result<()> {
    if size > inner.size {
        return Err(LedgerError::OutOfRange(format!(
            "the log has {} entries; size {size} does not exist yet",
            inner.size
        )));
    }
    Ok(())
}

impl SensorLedger {
    fn exclusive(&self) -> Result<FileLock<'_>> {
        self.lock
            .lock()
            .map_err(LedgerError::io("lock", &self.dir.join("lock")))?;
        Ok(FileLock(&self.lock))
    }

    fn shared(&self) -> Result<FileLock<'_>> {
        self.lock
            .lock_shared()
            .map_err(LedgerError::io("lock", &self.dir.join("lock")))?;
        Ok(FileLock(&self.lock))
    }
}

impl Recorder for SensorLedger {
    fn record(&self, entries: &[Entry]) -> io::Result<u64> {
        self.append(entries).map_err(|e| match e {
            LedgerError::Io { ref source, .. } => io::Error::new(source.kind(), e.to_string()),
            other => io::Error::other(other.to_string()),
        })
    }

    fn read_from(&self, start: u64, visit: &mut dyn FnMut(&Entry)) -> io::Result<u64> {
        let mut next = start;
        loop {
            let page = self
                .entries(next, MAX_ENTRIES_PER_PAGE)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let Some(&(last, _)) = page.last() else {
                return Ok(next);
            };
            for (index, bytes) in &page {
                let entry = Entry::decode(bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("sensor ledger entry {index}: {e}"),
                    )
                })?;
                visit(&entry);
            }
            next = last + 1;
        }
    }
}

// ---------------------------------------------------------------------------------------
// The signing key: the centre's approach (`mamori-oversight`'s key module), in the
// sensor's data directory.

fn key_error(path: &Path, detail: impl Into<String>) -> LedgerError {
    LedgerError::Key {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// `bytes` random bytes from the operating system, as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn load_or_create_key(dir: &Path, origin: &str) -> Result<SignerKey> {
    let path = dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => SignerKey::parse(text.trim()).map_err(|e| {
            key_error(
                &path,
                format!("is not a signing key ({e}); restore it from backup"),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|e| key_error(&path, format!("no randomness: {e}")))?;
            let name = if origin.is_empty() {
                format!(
                    "mamori-sensor/{}",
                    random_hex(6).map_err(|e| key_error(&path, e.to_string()))?
                )
            } else {
                origin.to_owned()
            };
            let key = SignerKey::from_seed(&name, &seed)
                .map_err(|e| key_error(&path, format!("origin {name:?} cannot name a key: {e}")))?;
            zeroize::Zeroize::zeroize(&mut seed);
            write_private(&path, &format!("{}\n", key.to_secret_text()))
                .map_err(|e| key_error(&path, e.to_string()))?;
            let public = dir.join(PUBLIC_KEY_FILE);
            fs::write(&public, format!("{}\n", key.verifier()))
                .map_err(|e| key_error(&public, e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(key_error(&path, e.to_string())),
    }
}

/// Creates `path` with owner-only permissions and writes `text`, fsynced. Refuses to
/// replace an existing file.
pub(crate) fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_arithmetic() {
        assert_eq!(level_count(0), 0);
        assert_eq!(level_count(1), 1);
        assert_eq!(level_count(2), 2);
        assert_eq!(level_count(5), 3);
        assert_eq!(nodes_at(5, 0), 5);
        assert_eq!(nodes_at(5, 2), 1);
        assert_eq!(nodes_at(5, 3), 0);
        assert_eq!(nodes_at(5, 200), 0);
    }
}
