//! `mamori audit`: the overseer's independent verifier, and the transparency figures.
//!
//! `verify` trusts nothing the log's server (the centre, or a carrier's sensor) says
//! except what its signing key (held by the overseer, obtained out of band) and the
//! overseer's own last saved checkpoint vouch for: it recomputes the Merkle root from every
//! entry served and checks the signature and the consistency proof from the saved
//! checkpoint (CI-5, CI-9, AN-7).

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use mamori_ledger::{
    Checkpoint, Hash, MemoryTree, VerifiedCheckpoint, VerifierKey, leaf_hash, tree_root,
    verify_consistency,
};
use serde::Deserialize;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// What `mamori audit verify` needs.
#[derive(Debug)]
pub(crate) struct VerifyArgs {
    pub url: String,
    pub key: String,
    pub token: String,
    pub checkpoint: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Page {
    entries: Vec<PageEntry>,
    next: Option<u64>,
}

#[derive(Deserialize)]
struct PageEntry {
    index: u64,
    data: Option<String>,
    data_base64: Option<String>,
}

#[derive(Deserialize)]
struct Proof {
    path: Vec<String>,
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
        let p: Proof = serde_json::from_str(&self.get(path, true)?).context("reading a proof")?;
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
    if let Some(path) = args.checkpoint.as_ref().filter(|p| p.exists()) {
        let saved_text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
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
    }

    // 3. Every entry, hashed by us.
    let mut tree = MemoryTree::new();
    let mut start = 0u64;
    while start < size {
        let body = client.get(
            &format!("/api/v1/ledger/entries?start={start}&end={size}"),
            true,
        )?;
        let page: Page = serde_json::from_str(&body).context("reading a page of entries")?;
        if page.entries.is_empty() {
            break;
        }
        for e in &page.entries {
            if e.index != tree.size() {
                bail!(
                    "entry {} is missing: the log served entry {} next (checkpoint size {size})",
                    tree.size(),
                    e.index
                );
            }
            let bytes = match (&e.data, &e.data_base64) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .with_context(|| format!("entry {}: bad base64", e.index))?,
                (None, None) => bail!("entry {} came without data", e.index),
            };
            tree.push_hash(leaf_hash(&bytes))?;
        }
        start = page.next.unwrap_or(tree.size());
    }
    if tree.size() < size {
        bail!(
            "entries {}..{size} are missing: the log serves {} entries but its signed checkpoint commits to {size}",
            tree.size(),
            tree.size()
        );
    }
    let computed = tree.root()?;
    if computed != root {
        let bad = first_bad_index(&client, &tree, size, &root)?;
        bail!(
            "entry {bad} does not match the signed log (checkpoint size {size}, root {root}; recomputed root {computed}): \
             it was rewritten, reordered or replaced"
        );
    }

    if let Some(path) = &args.checkpoint {
        std::fs::write(path, &note)
            .with_context(|| format!("saving the checkpoint to {}", path.display()))?;
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

/// Bisects with consistency proofs against the signed root: the longest prefix of the
/// served entries that the signed log extends is intact; the entry after it is the first
/// bad one. O(log n) proofs.
fn first_bad_index(
    client: &Client,
    tree: &MemoryTree,
    size: u64,
    root: &Hash,
) -> anyhow::Result<u64> {
    let (mut good, mut bad) = (0u64, size);
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        let prefix_root = tree_root(tree, mid)?;
        let path = client.proof(&format!(
            "/api/v1/ledger/proof/consistency?from={mid}&to={size}"
        ))?;
        if verify_consistency(mid, size, &prefix_root, root, &path).is_ok() {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Ok(good)
}
