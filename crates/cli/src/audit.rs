//! `mamori audit`: the overseer's independent verifier, and the transparency figures.
//!
//! `verify` trusts nothing the log's server (the centre, or a carrier's sensor) says
//! except what its signing key (held by the overseer, obtained out of band) and the
//! overseer's own last saved checkpoint vouch for: it recomputes the Merkle root from every
//! entry served and checks the signature and the consistency proof from the saved
//! checkpoint (CI-5, CI-9, AN-7). When the log does not match, it names the first bad
//! entry (`docs/LEDGER.md`): against its own leaf record of the last verified log, kept
//! beside the saved checkpoint, then with proofs it checks against the signed root.

use anyhow::{Context, anyhow, bail};
use mamori_ledger::{
    Checkpoint, Hash, MemoryTree, VerifiedCheckpoint, VerifierKey, leaf_hash, tree_root,
    verify_consistency, verify_inclusion,
};
// The pages and proofs as both servers send them: one shared definition (`mamori_ledger::wire`).
use mamori_ledger::wire::{EntryPage, ProofOut};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `mamori audit verify` needs.
#[derive(Debug)]
pub(crate) struct VerifyArgs {
    pub url: String,
    pub key: String,
    pub token: String,
    pub checkpoint: Option<PathBuf>,
}

struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

impl Client {
    fn get(&self, path: &str, auth: bool) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        if auth {
            req = req.header("Authorization", &format!("Bearer {}", self.token));
        }
        let resp = req.call().map_err(|e| anyhow!("GET {url}: {e}"))?;
        let status = resp.status();
        let mut body = String::new();
        #[allow(clippy::disallowed_methods)] // bounded by take()
        resp.into_body()
            .into_reader()
            .take(MAX_RESPONSE)
            .read_to_string(&mut body)
            .with_context(|| format!("reading GET {url}"))?;
        if !status.is_success() {
            bail!("GET {url}: HTTP {status}: {body}");
        }
        Ok(body)
    }

    fn proof(&self, path: &str) -> anyhow::Result<Vec<Hash>> {
        let p: ProofOut =
            serde_json::from_str(&self.get(path, true)?).context("reading a proof")?;
        p.path
            .iter()
            .map(|h| Hash::from_hex(h).map_err(|e| anyhow!("proof hash {h:?}: {e}")))
            .collect()
    }
}

fn open_checkpoint(
    text: &str,
    key: &VerifierKey,
    whose: &str,
) -> anyhow::Result<VerifiedCheckpoint> {
    Checkpoint::open(text.as_bytes(), key.name(), std::slice::from_ref(key)).map_err(|e| {
        anyhow!(
            "the {whose} checkpoint does not verify with key {} ({}): {e}",
            key.name(),
            key.key_id()
        )
    })
}

/// The overseer's check. Returns a summary, or an error saying exactly what failed.
pub(crate) fn verify(args: &VerifyArgs) -> anyhow::Result<String> {
    let key = mamori_oversight::read_verifier(&args.key).context("reading the verifier key")?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let client = Client {
        agent,
        base: args.url.trim_end_matches('/').to_owned(),
        token: args.token.clone(),
    };

    // 1. The signature.
    let note = client.get("/api/v1/ledger/checkpoint", false)?;
    let current = open_checkpoint(&note, &key, "served")?;
    let size = current.checkpoint().size();
    let root = current.checkpoint().root();

    // 2. Consistency with what the overseer saw last time.
    let mut consistent_with = None;
    // The leaf hashes this verifier saw the last time it verified: only once they fold to
    // the saved checkpoint's root, which the served log has just been proved to extend.
    let mut record: Vec<Hash> = Vec::new();
    if let Some(saved_path) = args.checkpoint.as_ref().filter(|p| p.exists()) {
        let saved_text = std::fs::read_to_string(saved_path)
            .with_context(|| format!("reading {}", saved_path.display()))?;
        let saved = open_checkpoint(&saved_text, &key, "saved")?;
        let (old_size, old_root) = (saved.checkpoint().size(), saved.checkpoint().root());
        if old_size > size {
            bail!(
                "the log shrank: the saved checkpoint commits to {old_size} entries, the served one now to {size}; \
                 entries {size}..{old_size} were removed"
            );
        }
        let path = client.proof(&format!(
            "/api/v1/ledger/proof/consistency?from={old_size}&to={size}"
        ))?;
        verify_consistency(old_size, size, &old_root, &root, &path).map_err(|e| {
            anyhow!(
                "consistency proof from the saved checkpoint (size {old_size}, root {old_root}) to the served \
                 (size {size}, root {root}) does not verify: the log was rewritten or forked ({e})"
            )
        })?;
        consistent_with = Some(old_size);
        record = read_record(saved_path, old_size, &old_root);
    }

    // 3. Every entry, hashed by us.
    let mut leaves: Vec<Hash> = Vec::new();
    let mut start = 0u64;
    while start < size {
        let body = client.get(
            &format!("/api/v1/ledger/entries?start={start}&end={size}"),
            true,
        )?;
        let page: EntryPage = serde_json::from_str(&body).context("reading a page of entries")?;
        if page.entries.is_empty() {
            break;
        }
        for e in &page.entries {
            let next = leaves.len() as u64;
            if e.index != next {
                bail!(
                    "entry {next} is missing: the log served entry {} next (checkpoint size {size})",
                    e.index
                );
            }
            let bytes = e.bytes()?;
            leaves.push(leaf_hash(&bytes));
        }
        start = page.next.unwrap_or(leaves.len() as u64);
    }
    let mut tree = MemoryTree::new();
    for h in &leaves {
        tree.push_hash(*h)?;
    }
    let served = tree.size();
    if served != size || tree.root()? != root {
        bail!("{}", locate(&client, &tree, &leaves, &record, size, &root)?);
    }

    if let Some(path) = &args.checkpoint {
        std::fs::write(path, &note)
            .with_context(|| format!("saving the checkpoint to {}", path.display()))?;
        let bytes: Vec<u8> = leaves.iter().flat_map(|h| *h.as_bytes()).collect();
        let at = record_path(path);
        std::fs::write(&at, bytes)
            .with_context(|| format!("saving the leaf record to {}", at.display()))?;
    }
    Ok(format!(
        "verified: {size} entries recomputed to root {root}, signed by {} ({}){}{}",
        key.name(),
        key.key_id(),
        consistent_with
            .map(|n| format!(", consistent with the saved checkpoint of size {n}"))
            .unwrap_or_default(),
        args.checkpoint
            .as_ref()
            .map(|p| format!("; checkpoint saved to {}", p.display()))
            .unwrap_or_default(),
    ))
}

/// Where the leaf record of a checkpoint file is kept: beside it, `FILE.leaves`.
fn record_path(checkpoint: &Path) -> PathBuf {
    let mut name = checkpoint.as_os_str().to_owned();
    name.push(".leaves");
    PathBuf::from(name)
}

/// The leaf record saved with the checkpoint (`size` hashes of 32 bytes), if it is there
/// and folds to the checkpoint's `root`; anything else is ignored, as if there were none.
fn read_record(checkpoint: &Path, size: u64, root: &Hash) -> Vec<Hash> {
    let Ok(bytes) = std::fs::read(record_path(checkpoint)) else {
        return Vec::new();
    };
    if bytes.len() as u64 != size.saturating_mul(Hash::LEN as u64) {
        return Vec::new();
    }
    let mut tree = MemoryTree::new();
    let mut leaves = Vec::with_capacity(bytes.len() / Hash::LEN);
    for chunk in bytes.chunks_exact(Hash::LEN) {
        let Ok(h) = Hash::from_slice(chunk) else {
            return Vec::new();
        };
        if tree.push_hash(h).is_err() {
            return Vec::new();
        }
        leaves.push(h);
    }
    if tree.root().ok().as_ref() == Some(root) {
        leaves
    } else {
        Vec::new()
    }
}

/// Names the first entry the served log gets wrong, for `docs/LEDGER.md`'s promise of the
/// first bad index, trusting the centre for nothing that is not checked against the
/// signed root.
///
/// 1. The overseer's own record of the last verified log (`record`): the first served
///    leaf that differs from it is the answer — exact, even when the centre recomputed
///    its stored tree over a rewritten entry, so that none of its proofs verifies.
/// 2. Past the record, bisection over prefixes with consistency proofs against the signed
///    root: the longest prefix the signed log extends is intact, the entry after it is the
///    first bad one. O(log n) proofs.
/// 3. If no proof verified, the proofs may come from a recomputed tree: the answer stands
///    only when an inclusion proof of the last served entry verifies (the centre's nodes
///    are the signed tree's); otherwise the message says the entry cannot be named.
fn locate(
    client: &Client,
    tree: &MemoryTree,
    leaves: &[Hash],
    record: &[Hash],
    size: u64,
    root: &Hash,
) -> anyhow::Result<String> {
    let served = tree.size();
    let missing = |from: u64| {
        format!(
            "entries {from}..{size} are missing: the log serves {served} entries but its signed checkpoint commits to {size}"
        )
    };
    let bad_entry = |i: u64| {
        if served < size {
            format!(
                "entry {i} does not match the signed log (checkpoint size {size}, root {root}): the log serves \
                 {served} entries, and from entry {i} on they are not the signed ones: it was removed and the later \
                 entries renumbered, or rewritten"
            )
        } else {
            format!(
                "entry {i} does not match the signed log (checkpoint size {size}, root {root}; recomputed root {}): \
                 it was rewritten, reordered or replaced",
                tree.root().map(|h| h.to_string()).unwrap_or_default()
            )
        }
    };

    // 1. The record.
    if let Some(i) = record.iter().zip(leaves).position(|(a, b)| a != b) {
        return Ok(bad_entry(i as u64));
    }
    if leaves.len() < record.len() {
        return Ok(missing(served));
    }
    let trusted = record.len() as u64;

    // 2. Bisection: prefix `good` is intact; prefix `bad` is not (or, past what was
    // served, not known to be).
    let (mut good, mut bad) = (trusted, if served < size { served + 1 } else { size });
    let mut proved = false;
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        let prefix_root = tree_root(tree, mid)?;
        let path = client.proof(&format!(
            "/api/v1/ledger/proof/consistency?from={mid}&to={size}"
        ))?;
        if verify_consistency(mid, size, &prefix_root, root, &path).is_ok() {
            good = mid;
            proved = true;
        } else {
            bad = mid;
        }
    }
    if good == served {
        return Ok(missing(served));
    }

    // 3. Is the answer the centre's proofs gave worth naming?
    let only_candidate = served == size && good + 1 == size;
    if !proved && !only_candidate {
        let last = served.saturating_sub(1);
        let agrees = last > good
            && client
                .proof(&format!(
                    "/api/v1/ledger/proof/inclusion?index={last}&size={size}"
                ))
                .is_ok_and(|path| {
                    leaves
                        .get(last as usize)
                        .is_some_and(|leaf| verify_inclusion(last, size, leaf, &path, root).is_ok())
                });
        if !agrees {
            return Ok(format!(
                "entries {good}..{served} do not match the signed log (checkpoint size {size}, root {root}), and \
                 the log's own proofs do not match its signed checkpoint either: its stored tree was recomputed over \
                 changed entries, so they cannot show which entry changed. Verify regularly with --checkpoint FILE: \
                 the leaf record each successful run saves beside it (FILE.leaves) names the entry"
            ));
        }
    }
    Ok(bad_entry(good))
}
