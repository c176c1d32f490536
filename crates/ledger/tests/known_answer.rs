//! Known-answer tests for tree heads, stored nodes, inclusion and consistency proofs.
//!
//! Every expected value below is published: the eight leaf inputs, the hashes of every
//! complete subtree and the roots for sizes 0..=8 are transparency-dev/merkle
//! `testonly/constants.go` (`LeafInputs`, `NodeHashes`, `RootHashes`; the same vectors as
//! Google's certificate-transparency code); the proofs are the tables
//! `inclusionProofs`/`consistencyProofs` of that repository's `proof/verify_test.go`
//! (before commit 022f84c moved them to `testdata/*/happy-path.json`, unchanged). That
//! file numbers leaves from 1; the tables here use 0-based indices.

use mamori_ledger::{
    ConsistencyPlan, Error, Hash, InclusionPlan, MemoryTree, NodeId, NodeSource, empty_root,
    leaf_hash, prove_consistency, prove_inclusion, tree_root, verify_consistency, verify_inclusion,
};

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `NodeHashes()`: `[level][index]` for every complete subtree of the 8-leaf tree.
const NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// `RootHashes()`: the tree head for sizes 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `(leaf index, tree size, audit path)`.
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, &[]),
];

/// `(first size, second size, proof)`.
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h(hex: &str) -> Hash {
    Hash::from_hex(hex).expect("published vector is hex")
}

fn hashes(hexes: &[&str]) -> Vec<Hash> {
    hexes.iter().map(|x| h(x)).collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("published vector is hex"))
        .collect()
}

fn root(size: u64) -> Hash {
    h(ROOTS[size as usize])
}

fn leaf(index: u64) -> Hash {
    leaf_hash(&unhex(LEAVES[index as usize]))
}

fn tree() -> MemoryTree {
    let mut tree = MemoryTree::new();
    for data in LEAVES {
        tree.push(&unhex(data)).expect("in-memory append");
    }
    tree
}

#[test]
fn tree_heads_for_every_size_match_and_come_from_stored_nodes() {
    let mut growing = MemoryTree::new();
    assert_eq!(growing.root().unwrap(), root(0));
    assert_eq!(empty_root(), root(0));
    for (i, data) in LEAVES.iter().enumerate() {
        growing.push(&unhex(data)).unwrap();
        assert_eq!(
            growing.root().unwrap(),
            root(i as u64 + 1),
            "size {}",
            i + 1
        );
    }
    // Historic heads are recomputed from the full tree's stored nodes alone.
    let full = tree();
    for size in 0..=8 {
        assert_eq!(tree_root(&full, size).unwrap(), root(size), "size {size}");
    }
}

#[test]
fn every_stored_node_matches_the_published_subtree_hash() {
    let full = tree();
    for (level, row) in NODES.iter().enumerate() {
        for (index, expected) in row.iter().enumerate() {
            let id = NodeId::new(level as u8, index as u64);
            assert_eq!(full.node(id).unwrap(), h(expected), "{id:?}");
        }
    }
    // Nothing beyond the complete subtrees is stored.
    assert!(full.node(NodeId::new(0, 8)).is_err());
    assert!(full.node(NodeId::new(3, 1)).is_err());
    assert!(full.node(NodeId::new(4, 0)).is_err());
}

#[test]
fn inclusion_proofs_match_and_verify() {
    let full = tree();
    for (index, size, path) in INCLUSION {
        let expected = hashes(path);
        let proof = prove_inclusion(&full, index, size).unwrap();
        assert_eq!(proof.path, expected, "index {index} size {size}");
        verify_inclusion(index, size, &leaf(index), &expected, &root(size)).unwrap();
        // The plan reads exactly as many nodes as a stored tree needs for these sizes:
        // one per proof element, plus the extra tiles of a right-edge sibling.
        assert!(InclusionPlan::new(index, size).unwrap().nodes().len() >= expected.len());
    }
}

#[test]
fn consistency_proofs_match_and_verify() {
    let full = tree();
    for (first, second, path) in CONSISTENCY {
        let expected = hashes(path);
        let proof = prove_consistency(&full, first, second).unwrap();
        assert_eq!(proof.path, expected, "{first} -> {second}");
        verify_consistency(first, second, &root(first), &root(second), &expected).unwrap();
        assert!(ConsistencyPlan::new(first, second).unwrap().nodes().len() >= expected.len());
    }
}

#[test]
fn every_pair_of_sizes_in_the_vector_tree_proves_and_verifies() {
    // Beyond the published table: all (index, size) and (first, second) pairs up to 8,
    // checked against the published heads.
    let full = tree();
    for size in 1..=8u64 {
        for index in 0..size {
            let proof = prove_inclusion(&full, index, size).unwrap();
            proof.verify(&leaf(index), &root(size)).unwrap();
        }
        for first in 0..=size {
            let proof = prove_consistency(&full, first, size).unwrap();
            proof.verify(&root(first), &root(size)).unwrap();
        }
    }
}

/// The corruptions transparency-dev/merkle's verifier tests apply to each published proof
/// (index ±1, index ^ 2, size ×2 and ÷2, a wrong leaf or root, prepended or appended
/// hashes, a flipped bit in each element, a dropped element), applied here with our code.
#[test]
fn corrupted_published_inclusion_proofs_fail() {
    for (index, size, path) in INCLUSION {
        let path = hashes(path);
        let leaf = leaf(index);
        let good_root = root(size);
        let mut cases: Vec<(u64, u64, Hash, Vec<Hash>, Hash)> = vec![
            (index + 1, size, leaf, path.clone(), good_root),
            (index ^ 2, size, leaf, path.clone(), good_root),
            (index, size * 2, leaf, path.clone(), good_root),
            (index, size / 2, leaf, path.clone(), good_root),
            (
                index,
                size,
                leaf_hash(b"WrongLeaf"),
                path.clone(),
                good_root,
            ),
            (index, size, leaf, path.clone(), empty_root()),
            (index, size, leaf, path.clone(), leaf_hash(b"random root")),
            (
                index,
                size,
                leaf,
                [vec![good_root], path.clone()].concat(),
                good_root,
            ),
            (
                index,
                size,
                leaf,
                [path.clone(), vec![good_root]].concat(),
                good_root,
            ),
            (
                index,
                size,
                leaf,
                [path.clone(), vec![leaf]].concat(),
                good_root,
            ),
        ];
        if index > 0 {
            cases.push((index - 1, size, leaf, path.clone(), good_root));
        }
        for i in 0..path.len() {
            let mut flipped = path.clone();
            let mut bytes = *flipped[i].as_bytes();
            bytes[3] ^= 0x10;
            flipped[i] = Hash::from_bytes(bytes);
            cases.push((index, size, leaf, flipped, good_root));
            let mut dropped = path.clone();
            dropped.remove(i);
            cases.push((index, size, leaf, dropped, good_root));
        }
        for (i, s, l, p, r) in cases {
            assert!(
                verify_inclusion(i, s, &l, &p, &r).is_err(),
                "index {i} size {s} accepted a corrupted proof"
            );
        }
    }
}

#[test]
fn corrupted_published_consistency_proofs_fail() {
    for (first, second, path) in CONSISTENCY {
        if first == second {
            continue;
        }
        let path = hashes(path);
        let (r1, r2) = (root(first), root(second));
        let mut cases: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (first + 1, second, r1, r2, path.clone()),
            (first - 1, second, r1, r2, path.clone()),
            (first ^ 2, second, r1, r2, path.clone()),
            (first, second * 2, r1, r2, path.clone()),
            (first, second / 2, r1, r2, path.clone()),
            (first, second, r2, r1, path.clone()),
            (first, second, empty_root(), r2, path.clone()),
            (first, second, r1, empty_root(), path.clone()),
            (first, second, r1, r2, Vec::new()),
            (first, second, r1, r2, [vec![r1], path.clone()].concat()),
            (first, second, r1, r2, [vec![r2], path.clone()].concat()),
            (first, second, r1, r2, [path.clone(), vec![r1]].concat()),
            (first, second, r1, r2, [path.clone(), vec![r2]].concat()),
        ];
        for i in 0..path.len() {
            let mut flipped = path.clone();
            let mut bytes = *flipped[i].as_bytes();
            bytes[3] ^= 0x10;
            flipped[i] = Hash::from_bytes(bytes);
            cases.push((first, second, r1, r2, flipped));
            let mut dropped = path.clone();
            dropped.remove(i);
            cases.push((first, second, r1, r2, dropped));
        }
        for (f, s, a, b, p) in cases {
            assert!(
                verify_consistency(f, s, &a, &b, &p).is_err(),
                "{f} -> {s} accepted a corrupted proof"
            );
        }
    }
}

#[test]
fn verifier_errors_say_what_failed() {
    let (index, size, path) = INCLUSION[0];
    let path = hashes(path);
    assert!(matches!(
        verify_inclusion(index, size, &leaf(index), &path[..2], &root(size)),
        Err(Error::WrongLength {
            expected: 3,
            got: 2
        })
    ));
    assert!(matches!(
        verify_inclusion(index, size, &leaf(1), &path, &root(size)),
        Err(Error::RootMismatch { .. })
    ));
    assert!(matches!(
        verify_inclusion(8, 8, &leaf(0), &path, &root(8)),
        Err(Error::IndexOutOfRange { index: 8, size: 8 })
    ));
    let (first, second, path) = CONSISTENCY[2];
    let path = hashes(path);
    let err = verify_consistency(first, second, &root(5), &root(second), &path).unwrap_err();
    assert!(matches!(err, Error::OldRootMismatch { .. }), "{err}");
    let err = verify_consistency(first, second, &root(first), &root(7), &path).unwrap_err();
    assert!(matches!(err, Error::RootMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&root(7).to_hex()), "{err}");
}
