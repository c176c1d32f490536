//! Appending, checkpointing and proving, over the store's ledger rows.

use crate::Result;
use crate::entry::{Act, Entry};
use crate::error::OversightError;
use crate::key::{LedgerConfig, load_or_create};
use mamori_core::time::{Timestamp, truncate_ms};
use mamori_ledger::{
    Checkpoint, ConsistencyPlan, ConsistencyProof, Frontier, Hash, InclusionPlan, InclusionProof,
    NodeId, SignerKey, VerifierKey, leaf_hash, root_from_nodes, root_nodes,
};
use mamori_store::{LedgerLeaf, LedgerNode, Store, StoredCheckpoint, Tx};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

/// The most entries one read returns (pages keep responses bounded).
pub const MAX_ENTRIES_PER_PAGE: u64 = 1000;

fn coords(ids: &[NodeId]) -> Vec<(u8, u64)> {
    ids.iter().map(|n| (n.level, n.index)).collect()
}

async fn hashes(tx: &mut Tx, ids: &[NodeId]) -> Result<Vec<Hash>> {
    Ok(tx
        .ledger_nodes(&coords(ids))
        .await?
        .into_iter()
        .map(Hash::from_bytes)
        .collect())
}

/// Appends `entries` in the caller's transaction and returns their indices. Commit the
/// transaction with the act they record: both happen or neither does.
pub async fn append(tx: &mut Tx, entries: &[Entry]) -> Result<Range<u64>> {
    let start = tx.ledger_size_for_append().await?;
    let frontier_nodes = root_nodes(start);
    let mut frontier = Frontier::from_hashes(start, &hashes(tx, &frontier_nodes).await?)?;
    let encoded: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
    let mut completed = Vec::with_capacity(encoded.len() * 2);
    for bytes in &encoded {
        frontier.push(leaf_hash(bytes), &mut completed)?;
    }
    let leaves: Vec<LedgerLeaf<'_>> = entries
        .iter()
        .zip(&encoded)
        .map(|(e, data)| LedgerLeaf {
            kind: e.act.kind(),
            at: e.at,
            data,
        })
        .collect();
    let nodes: Vec<LedgerNode> = completed
        .iter()
        .map(|(id, h)| (id.level, id.index, *h.as_bytes()))
        .collect();
    tx.ledger_append(start, &leaves, &nodes).await?;
    Ok(start..frontier.size())
}

/// The root hash at `size` (at most the current size), from O(log n) stored nodes.
pub async fn root(tx: &mut Tx, size: u64) -> Result<Hash> {
    let nodes = root_nodes(size);
    Ok(root_from_nodes(size, &hashes(tx, &nodes).await?)?)
}

async fn check_size(tx: &mut Tx, size: u64) -> Result<()> {
    let current = tx.ledger_size().await?;
    if size > current {
        return Err(OversightError::OutOfRange(format!(
            "the log has {current} entries; size {size} does not exist yet"
        )));
    }
    Ok(())
}

/// Proof that entry `index` is in the tree of `size` entries.
pub async fn inclusion_proof(tx: &mut Tx, index: u64, size: u64) -> Result<InclusionProof> {
    check_size(tx, size).await?;
    let plan =
        InclusionPlan::new(index, size).map_err(|e| OversightError::OutOfRange(e.to_string()))?;
    let found = hashes(tx, plan.nodes()).await?;
    Ok(plan.assemble(&found)?)
}

/// Proof that the tree of `to` entries extends the tree of `from` entries.
pub async fn consistency_proof(tx: &mut Tx, from: u64, to: u64) -> Result<ConsistencyProof> {
    check_size(tx, to).await?;
    let plan =
        ConsistencyPlan::new(from, to).map_err(|e| OversightError::OutOfRange(e.to_string()))?;
    let found = hashes(tx, plan.nodes()).await?;
    Ok(plan.assemble(&found)?)
}

/// Entries from `start`, at most `limit` (capped at [`MAX_ENTRIES_PER_PAGE`]) and not past
/// the end of the log: `(index, canonical bytes)`.
pub async fn entries(tx: &mut Tx, start: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>> {
    let size = tx.ledger_size().await?;
    let end = start
        .saturating_add(limit.min(MAX_ENTRIES_PER_PAGE))
        .min(size);
    if start >= end {
        return Ok(Vec::new());
    }
    Ok(tx.ledger_entries(start, end).await?)
}

/// How many acts of each kind fall in `[from, to)`: the figures of a transparency report
/// (CI-9). Every kind is listed, with zero where none happened.
pub async fn counts(tx: &mut Tx, from: Timestamp, to: Timestamp) -> Result<BTreeMap<String, u64>> {
    let mut all: BTreeMap<String, u64> = Act::KINDS.iter().map(|k| ((*k).to_owned(), 0)).collect();
    for (kind, n) in tx.ledger_counts(from, to).await? {
        all.insert(kind, n);
    }
    Ok(all)
}

/// The deployment's ledger: its signing key and checkpoint policy.
#[derive(Debug)]
pub struct Ledger {
    signer: SignerKey,
    interval: chrono::Duration,
}

impl Ledger {
    /// Loads the signing key from the data directory, creating it on first use. Returns
    /// whether it was created now.
    pub fn open(data_dir: &Path, cfg: &LedgerConfig) -> Result<(Ledger, bool)> {
        let (signer, created) = load_or_create(data_dir, &cfg.origin)?;
        let secs = i64::try_from(cfg.checkpoint_interval_secs).unwrap_or(i64::MAX);
        Ok((
            Ledger {
                signer,
                interval: chrono::Duration::seconds(secs),
            },
            created,
        ))
    }

    /// The log's origin line (also the key's name).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The public key the overseer verifies checkpoints with.
    pub fn verifier(&self) -> VerifierKey {
        self.signer.verifier()
    }

    /// The newest checkpoint, signing a new one first if the log has grown and the last one
    /// is older than the interval — or at once if `force`.
    pub async fn checkpoint(
        &self,
        store: &Store,
        now: Timestamp,
        force: bool,
    ) -> Result<StoredCheckpoint> {
        // Most calls (the public GET) find the latest checkpoint still current: decide that
        // in a read transaction, so they never take SQLite's write lock.
        let fresh = |size: u64, l: &StoredCheckpoint| {
            l.size == size || (!force && now - l.created_at < self.interval)
        };
        let mut read = store.begin_read().await?;
        let size = read.ledger_size().await?;
        let latest = read.ledger_latest_checkpoint().await?;
        read.commit().await?;
        if let Some(l) = latest
            && fresh(size, &l)
        {
            return Ok(l);
        }
        // Re-check under the write lock: another request may have signed one meanwhile.
        let mut tx = store.begin().await?;
        let size = tx.ledger_size().await?;
        if let Some(l) = tx.ledger_latest_checkpoint().await?
            && fresh(size, &l)
        {
            tx.commit().await?;
            return Ok(l);
        }
        let root = root(&mut tx, size).await?;
        let note = Checkpoint::new(self.origin(), size, root)?.sign(&self.signer)?;
        let cp = StoredCheckpoint {
            size,
            root: *root.as_bytes(),
            note,
            created_at: truncate_ms(now),
        };
        tx.ledger_put_checkpoint(&cp).await?;
        tx.commit().await?;
        tracing::info!(size, root = %root, "signed a ledger checkpoint");
        Ok(cp)
    }
}
