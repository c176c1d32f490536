//! Proofs and checkpoints checked by an implementation that is not ours (issue 4: "proofs
//! are verifiable by a second implementation"): `tests/rfc6962_check.py`, which uses only
//! the Python standard library and recomputes everything from the RFC definitions.
//!
//! Skipped, saying so on stderr, when `python3` is not installed.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use mamori_ledger::{
    Checkpoint, MemoryTree, SignerKey, prove_consistency, prove_inclusion, tree_root,
};
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rfc6962_check.py");
/// Enough leaves for several right-edge shapes and a depth-7 tree; all pairs are checked.
const LEAVES: u64 = 77;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn emitted() -> Value {
    // Leaves of varied lengths, including empty, so length handling is exercised.
    let data: Vec<Vec<u8>> = (0..LEAVES)
        .map(|i| (0..i % 13).map(|j| (i * 31 + j) as u8).collect())
        .collect();
    let mut tree = MemoryTree::new();
    for leaf in &data {
        tree.push(leaf).expect("test fixture");
    }
    let mut roots = serde_json::Map::new();
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    for size in 0..=LEAVES {
        roots.insert(
            size.to_string(),
            json!(tree_root(&tree, size).expect("test fixture").to_hex()),
        );
        for index in 0..size {
            let proof = prove_inclusion(&tree, index, size).expect("test fixture");
            let path: Vec<String> = proof.path.iter().map(|h| h.to_hex()).collect();
            inclusion.push(json!({"index": index, "size": size, "path": path}));
        }
        for first in 0..=size {
            let proof = prove_consistency(&tree, first, size).expect("test fixture");
            let path: Vec<String> = proof.path.iter().map(|h| h.to_hex()).collect();
            consistency.push(json!({"first": first, "second": size, "path": path}));
        }
    }
    let signer = SignerKey::from_seed("mamori.example/ledger", &[0x11; 32]).expect("test fixture");
    let checkpoint = Checkpoint::new(
        "mamori.example/ledger",
        LEAVES - 3,
        tree_root(&tree, LEAVES - 3).expect("test fixture"),
    )
    .expect("test fixture")
    .sign(&signer)
    .expect("test fixture");
    json!({
        "leaves": data.iter().map(|d| hex(d)).collect::<Vec<_>>(),
        "roots": roots,
        "inclusion": inclusion,
        "consistency": consistency,
        "checkpoint": {"note": checkpoint, "vkey": signer.verifier().to_string()},
    })
}

/// Runs the script on `input`; `None` if python3 is missing.
fn run_python(input: &Value) -> Option<(bool, String)> {
    // Tests may start the independent checker; no actuator is involved.
    #[allow(clippy::disallowed_methods)]
    let child = Command::new("python3")
        .arg(Path::new(SCRIPT))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("starting python3: {e}"),
    };
    child
        .stdin
        .take()
        .expect("test fixture")
        .write_all(input.to_string().as_bytes())
        .expect("test fixture");
    let out = child.wait_with_output().expect("test fixture");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn python_hashlib_reimplementation_accepts_our_output_and_rejects_tampering() {
    let good = emitted();
    let Some((ok, report)) = run_python(&good) else {
        eprintln!("SKIPPED: python3 not found; the independent RFC 6962 check did not run");
        return;
    };
    assert!(ok, "independent check failed: {report}");
    assert!(
        report.starts_with("ok: 78 heads, 3003 inclusion and 3081 consistency proofs"),
        "{report}"
    );

    // The checker is not vacuous: each kind of tampering makes it fail, naming the problem.
    let mut bad_root = good.clone();
    bad_root["roots"]["40"] = json!("00".repeat(32));
    let (ok, report) = run_python(&bad_root).unwrap();
    assert!(!ok && report.contains("tree head at size 40"), "{report}");

    let mut bad_inclusion = good.clone();
    bad_inclusion["inclusion"][1000]["path"][0] = json!("11".repeat(32));
    let (ok, report) = run_python(&bad_inclusion).unwrap();
    assert!(!ok && report.contains("inclusion proof"), "{report}");

    let mut bad_consistency = good.clone();
    let dropped = bad_consistency["consistency"][2000]["path"]
        .as_array_mut()
        .unwrap();
    dropped.pop();
    let (ok, report) = run_python(&bad_consistency).unwrap();
    assert!(!ok && report.contains("consistency proof"), "{report}");

    let mut bad_signature = good.clone();
    let note = good["checkpoint"]["note"].as_str().unwrap();
    let (body, sig) = note.rsplit_once(' ').unwrap();
    // Past the key id (the first 6 characters), inside the Ed25519 signature.
    let mut chars: Vec<char> = sig.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    bad_signature["checkpoint"]["note"] = json!(format!("{body} {flipped}"));
    let (ok, report) = run_python(&bad_signature).unwrap();
    assert!(!ok && report.contains("Ed25519 signature"), "{report}");
}
