//! Recorded deletion (DESIGN invariant 4 "bounded retention", invariant 7;
//! REQUIREMENTS CI-5): the archive's reaper, with one ledger `deletion` entry per file it
//! deletes — and never a deleted file without its entry, even if the ledger is unwritable
//! or the process dies mid-pass.
//!
//! # The pending journal
//!
//! `DATA/deletions.pending` holds, one canonical entry per line, deletions done (or about
//! to be done) but not yet in the ledger. For each expired file the reaper appends its
//! entry to the journal and fsyncs **before** deleting the file; after the pass, every
//! journalled entry is appended to the ledger in one batch and the journal emptied. If the
//! ledger refuses, the journal stays and the next call records it first. Retention does
//! not wait for the ledger: files are deleted on time either way (invariant 4), and their
//! entries follow as soon as the ledger takes them.
//!
//! Crashes: a torn last journal line was never followed by its deletion (the fsync comes
//! first), so it is dropped; a journalled file that still exists (crash between journal
//! and delete) is deleted before its entry is recorded. The one window left is between
//! the ledger append and emptying the journal: a crash there records those deletions a
//! second time (never zero times).
//!
//! **API boundary:** [`reap_recorded`]`(archive_dir, data_dir, now, recorder)` →
//! [`RecordedReap`]. The runtime calls it on a timer with "now" from its clock.

use crate::archive::{self, ReapFailure};
use crate::record::Recorder;
use mamori_core::entry::{Act, Actor, Entry};
use mamori_core::time::Timestamp;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The pending journal's file name in the data directory.
pub const JOURNAL_FILE: &str = "deletions.pending";
/// The actor of the sensor's own deletions.
pub const REAPER_ACTOR: &str = "mamori-sensor retention";
/// A journal larger than this is damaged (each line is a few hundred bytes).
const MAX_JOURNAL_BYTES: u64 = 256 << 20;

/// What can go wrong with recorded deletion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// The archive directory could not be listed.
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    /// The journal could not be read or written.
    #[error("deletion journal {path}: cannot {op}: {source}")]
    Journal {
        /// What was being done.
        op: &'static str,
        /// The journal.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A complete journal line is not an entry: the journal is damaged. It is left as it
    /// is, and nothing more is deleted until a person looks.
    #[error(
        "deletion journal {path} line {line} is not a ledger entry ({detail}); it is kept for inspection"
    )]
    Damaged {
        /// The journal.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
}

/// What one recorded reaper pass did.
#[derive(Debug, Default)]
pub struct RecordedReap {
    /// Files deleted in this pass.
    pub deleted: Vec<archive::Deletion>,
    /// Files not yet expired.
    pub kept: u64,
    /// Files left for a person (unreadable expiry, failed delete).
    pub failed: Vec<ReapFailure>,
    /// Deletion entries appended to the ledger in this pass (earlier passes' included).
    pub recorded: usize,
    /// The ledger index of the first of them.
    pub first_index: Option<u64>,
    /// Deletions done but still waiting for the ledger (it refused: see `ledger_error`).
    pub pending: usize,
    /// Why the ledger refused, if it did.
    pub ledger_error: Option<String>,
}

fn journal_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> RetentionError + 'a {
    move |source| RetentionError::Journal {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The `deletion` entry for one reaped file.
pub fn deletion_entry(d: &archive::Deletion, now: Timestamp) -> Entry {
    Entry::new(
        now,
        Actor {
            org: None,
            user: None,
            name: REAPER_ACTOR.to_owned(),
        },
        Act::Deletion {
            what: d.what.clone(),
            count: d.count,
            content_sha256: d.content_sha256_hex(),
            reason: d.reason.to_owned(),
        },
    )
}

/// Reads the journal: complete lines as entries, and whether a torn last line was dropped.
fn read_journal(path: &Path) -> Result<(Vec<Entry>, bool), RetentionError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(journal_err("open", path)(e)),
    };
    let mut bytes = Vec::new();
    #[allow(clippy::disallowed_methods)] // bounded by take()
    file.take(MAX_JOURNAL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(journal_err("read", path))?;
    if bytes.len() as u64 > MAX_JOURNAL_BYTES {
        return Err(RetentionError::Damaged {
            path: path.to_path_buf(),
            line: 0,
            detail: "larger than 256 MiB".into(),
        });
    }
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = complete < bytes.len();
    if torn {
        tracing::warn!(journal = %path.display(), "dropping a torn last line of the deletion journal (its file was not deleted)");
    }
    let entries = bytes
        .get(..complete)
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(n, line)| {
            Entry::decode(line).map_err(|e| RetentionError::Damaged {
                path: path.to_path_buf(),
                line: n + 1,
                detail: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((entries, torn))
}

/// The archive path a journalled deletion names (`<kind>:<relative path>`).
fn path_of(archive_dir: &Path, what: &str) -> Option<PathBuf> {
    let (kind, rel) = what.split_once(':')?;
    let rel = Path::new(rel);
    let safe = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (safe && matches!(kind, "flows" | "aggregates")).then(|| archive_dir.join(kind).join(rel))
}

/// Deletes every archive file under `archive_dir` whose expiry is at or before `now`, and
/// records one `deletion` entry per file through `recorder` — first any left pending by
/// an earlier pass (journal in `data_dir`).
pub fn reap_recorded(
    archive_dir: &Path,
    data_dir: &Path,
    now: Timestamp,
    recorder: &dyn Recorder,
) -> Result<RecordedReap, RetentionError> {
    let path = data_dir.join(JOURNAL_FILE);
    let (mut entries, torn) = read_journal(&path)?;
    // A journalled file still present: the pass that journalled it died before deleting.
    for e in &entries {
        if let Act::Deletion { what, .. } = &e.act
            && let Some(file) = path_of(archive_dir, what)
            && file.exists()
        {
            fs::remove_file(&file)
                .map_err(journal_err("finish a journalled deletion of", &file))?;
        }
    }
    if torn {
        // Rewrite the journal without its torn tail before appending to it.
        let mut text: Vec<u8> = Vec::new();
        for e in &entries {
            text.extend_from_slice(&e.encode());
            text.push(b'\n');
        }
        replace(&path, &text)?;
    }

    let mut journal = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(journal_err("open", &path))?;
    let report = archive::reap_with(archive_dir, now, |d| {
        let entry = deletion_entry(d, now);
        let mut line = entry.encode();
        line.push(b'\n');
        journal.write_all(&line)?;
        journal.sync_data()?;
        entries.push(entry);
        Ok(())
    })?;
    drop(journal);

    let mut out = RecordedReap {
        deleted: report.deleted,
        kept: report.kept,
        failed: report.failed,
        ..RecordedReap::default()
    };
    if entries.is_empty() {
        return Ok(out);
    }
    match recorder.record(&entries) {
        Ok(first) => {
            out.recorded = entries.len();
            out.first_index = Some(first);
            replace(&path, &[])?;
        }
        Err(e) => {
            tracing::warn!(pending = entries.len(), error = %e, "the ledger refused deletion entries; they stay in the journal");
            out.pending = entries.len();
            out.ledger_error = Some(e.to_string());
        }
    }
    Ok(out)
}

/// Replaces the journal's content atomically (temporary file, fsync, rename).
fn replace(path: &Path, bytes: &[u8]) -> Result<(), RetentionError> {
    let tmp = path.with_extension("pending.tmp");
    let mut f = File::create(&tmp).map_err(journal_err("create", &tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(journal_err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(journal_err("replace", path))?;
    if let Some(dir) = path.parent() {
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(journal_err("fsync the directory of", path))?;
        #[cfg(not(unix))]
        let _ = dir;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journalled_paths_stay_inside_the_archive() {
        let a = Path::new("/archive");
        assert_eq!(
            path_of(a, "flows:2026-11-24/06/part-0.parquet"),
            Some(PathBuf::from("/archive/flows/2026-11-24/06/part-0.parquet"))
        );
        for bad in [
            "flows:../../etc/passwd",
            "flows:/etc/passwd",
            "other:x.parquet",
            "no-colon",
            "aggregates:./x",
        ] {
            assert_eq!(path_of(a, bad), None, "{bad}");
        }
    }
}
