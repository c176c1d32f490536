//! The ledger's rows (issue 4). This module only stores and fetches bytes and hashes; what
//! they mean — entry encoding, Merkle math, signatures — belongs to `mamori-oversight` and
//! `mamori-ledger`, so the store stays free of both.

use crate::Result;
use crate::backend::{Backend, Tx, on_backend};
use crate::error::StoreError;
use mamori_core::time::Timestamp;

/// One entry to append: its kind and time (for queries) and its canonical bytes.
#[derive(Debug, Clone, Copy)]
pub struct LedgerLeaf<'a> {
    /// The kind of act, e.g. `token_issued`.
    pub kind: &'a str,
    /// When the act happened.
    pub at: Timestamp,
    /// The entry's canonical encoding.
    pub data: &'a [u8],
}

/// A stored complete subtree: `(level, index, hash)`.
pub type LedgerNode = (u8, u64, [u8; 32]);

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it commits to.
    pub size: u64,
    /// The root hash at that size.
    pub root: [u8; 32],
    /// The signed note, as served.
    pub note: String,
    /// When it was signed.
    pub created_at: Timestamp,
}

/// Rows per INSERT statement: SQLite allows 32,766 parameters, and 4 per row × 1,000
/// stays well inside while keeping round trips few.
const CHUNK: usize = 1000;

fn to_i64(what: &'static str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} is too large")))
}

fn to_u64(what: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("negative value {v}"),
    })
}

fn hash32(what: &'static str, v: &[u8]) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("{} bytes instead of 32", v.len()),
    })
}

impl Tx {
    /// The number of entries, taking the append lock: on PostgreSQL the head row stays
    /// locked until this transaction ends, so appends are serialised (on SQLite the
    /// transaction already holds the write lock).
    pub async fn ledger_size_for_append(&mut self) -> Result<u64> {
        let size: i64 = match self.backend() {
            Backend::Sqlite => on_backend!(self, c => sqlx::query_scalar(
                "SELECT size FROM ledger_head WHERE id = 1").fetch_one(&mut *c).await),
            Backend::Postgres => on_backend!(self, c => sqlx::query_scalar(
                "SELECT size FROM ledger_head WHERE id = 1 FOR UPDATE").fetch_one(&mut *c).await),
        }
        .map_err(StoreError::db("read ledger head", ""))?;
        to_u64("ledger size", size)
    }

    /// The number of entries, without locking.
    pub async fn ledger_size(&mut self) -> Result<u64> {
        let size: i64 = on_backend!(self, c => sqlx::query_scalar(
            "SELECT size FROM ledger_head WHERE id = 1").fetch_one(&mut *c).await)
        .map_err(StoreError::db("read ledger head", ""))?;
        to_u64("ledger size", size)
    }

    /// The hashes of the nodes `ids`, in the same order. A missing node is corruption.
    pub async fn ledger_nodes(&mut self, ids: &[(u8, u64)]) -> Result<Vec<[u8; 32]>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let rows: Vec<(i16, i64, Vec<u8>)> = on_backend!(self, c => {
                let mut q = sqlx::QueryBuilder::new("SELECT level, idx, hash FROM ledger_nodes WHERE ");
                let mut sep = q.separated(" OR ");
                for &(level, idx) in chunk {
                    sep.push("(level = ")
                        .push_bind_unseparated(i16::from(level))
                        .push_unseparated(" AND idx = ")
                        .push_bind_unseparated(to_i64("node index", idx)?)
                        .push_unseparated(")");
                }
                q.build_query_as().fetch_all(&mut *c).await
            })
            .map_err(StoreError::db("read ledger nodes", ""))?;
            found.extend(rows);
        }
        let found: std::collections::HashMap<(i16, i64), Vec<u8>> =
            found.into_iter().map(|(l, i, h)| ((l, i), h)).collect();
        ids.iter()
            .map(|&(level, idx)| {
                let key = (i16::from(level), to_i64("node index", idx)?);
                match found.get(&key) {
                    Some(h) => hash32("ledger node", h),
                    None => Err(StoreError::Corrupt {
                        what: "ledger node",
                        detail: format!("node ({level}, {idx}) is missing"),
                    }),
                }
            })
            .collect()
    }

    /// Appends `leaves` at index `start` with the `nodes` they complete, and moves the head.
    /// `start` must be the size read by [`ledger_size_for_append`](Tx::ledger_size_for_append)
    /// in this transaction.
    pub async fn ledger_append(
        &mut self,
        start: u64,
        leaves: &[LedgerLeaf<'_>],
        nodes: &[LedgerNode],
    ) -> Result<()> {
        let new_size = start
            .checked_add(leaves.len() as u64)
            .ok_or_else(|| StoreError::Invalid("ledger is full".into()))?;
        for (n, chunk) in leaves.chunks(CHUNK).enumerate() {
            let first = start + (n * CHUNK) as u64;
            let rows = chunk
                .iter()
                .enumerate()
                .map(|(i, l)| Ok((to_i64("entry index", first + i as u64)?, l)))
                .collect::<Result<Vec<_>>>()?;
            on_backend!(self, c => {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO ledger_entries (idx, kind, at, data) ");
                q.push_values(&rows, |mut b, (idx, l)| {
                    b.push_bind(*idx).push_bind(l.kind).push_bind(l.at).push_bind(l.data);
                });
                q.build().execute(&mut *c).await.map(drop)
            })
            .map_err(StoreError::db("append ledger entries", "ledger entry index already used"))?;
        }
        for chunk in nodes.chunks(CHUNK) {
            let rows = chunk
                .iter()
                .map(|&(level, idx, hash)| Ok((i16::from(level), to_i64("node index", idx)?, hash)))
                .collect::<Result<Vec<_>>>()?;
            on_backend!(self, c => {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO ledger_nodes (level, idx, hash) ");
                q.push_values(&rows, |mut b, (level, idx, hash)| {
                    b.push_bind(*level).push_bind(*idx).push_bind(&hash[..]);
                });
                q.build().execute(&mut *c).await.map(drop)
            })
            .map_err(StoreError::db(
                "append ledger nodes",
                "ledger node already stored",
            ))?;
        }
        let updated = on_backend!(self, c => sqlx::query(
            "UPDATE ledger_head SET size = $1 WHERE id = 1 AND size = $2")
            .bind(to_i64("ledger size", new_size)?)
            .bind(to_i64("ledger size", start)?)
            .execute(&mut *c).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("move ledger head", ""))?;
        if updated != 1 {
            return Err(StoreError::Conflict(format!(
                "the ledger head moved while appending at {start}: append under ledger_size_for_append"
            )));
        }
        Ok(())
    }

    /// Entries `[start, end)` as `(index, canonical bytes)`, in order.
    pub async fn ledger_entries(&mut self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let rows: Vec<(i64, Vec<u8>)> = on_backend!(self, c => sqlx::query_as(
            "SELECT idx, data FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx")
            .bind(to_i64("start", start)?)
            .bind(to_i64("end", end)?)
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("read ledger entries", ""))?;
        rows.into_iter()
            .map(|(i, d)| Ok((to_u64("entry index", i)?, d)))
            .collect()
    }

    /// The newest checkpoint, if any.
    pub async fn ledger_latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>> {
        let row: Option<(i64, Vec<u8>, String, Timestamp)> = on_backend!(self, c => sqlx::query_as(
            "SELECT size, root, note, created_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&mut *c).await)
        .map_err(StoreError::db("read checkpoint", ""))?;
        row.map(|(size, root, note, created_at)| {
            Ok(StoredCheckpoint {
                size: to_u64("checkpoint size", size)?,
                root: hash32("checkpoint root", &root)?,
                note,
                created_at,
            })
        })
        .transpose()
    }

    /// Stores a checkpoint; one for the same size already stored is kept as it is.
    pub async fn ledger_put_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (size) DO NOTHING")
            .bind(to_i64("checkpoint size", cp.size)?)
            .bind(&cp.root[..])
            .bind(&cp.note)
            .bind(cp.created_at)
            .execute(&mut *c).await.map(drop))
        .map_err(StoreError::db("store checkpoint", ""))
    }

    /// How many entries of each kind fall in `[from, to)`, by kind.
    pub async fn ledger_counts(
        &mut self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = on_backend!(self, c => sqlx::query_as(
            "SELECT kind, COUNT(*) FROM ledger_entries WHERE at >= $1 AND at < $2 GROUP BY kind ORDER BY kind")
            .bind(from)
            .bind(to)
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("count ledger entries", ""))?;
        rows.into_iter()
            .map(|(k, n)| Ok((k, to_u64("count", n)?)))
            .collect()
    }
}
