//! Property tests: every proof generated from stored nodes, for random sizes, verifies,
//! agrees with the independent `ct-merkle` implementation, and every mutation of it fails.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use mamori_ledger::{
    Checkpoint, Frontier, Hash, MemoryTree, SignedNote, SignerKey, VerifierKey, leaf_hash,
    prove_consistency, prove_inclusion, tree_root, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;
use sha2::Sha256;

/// A tree of `size` distinct leaves (the salt keeps cases apart; distinct leaves keep two
/// different questions from having the same honest answer), ours and ct-merkle's, with
/// ct-merkle's head at every size.
struct Fixture {
    data: Vec<Vec<u8>>,
    ours: MemoryTree,
    theirs: MemoryBackedTree<Sha256, Vec<u8>>,
    their_roots: Vec<Hash>,
}

fn fixture(size: u64, salt: u64) -> Fixture {
    let mut data = Vec::new();
    let mut ours = MemoryTree::new();
    let mut theirs = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let mut their_roots = vec![mamori_ledger::empty_root()];
    for i in 0..size {
        let leaf = format!("entry {i} / {salt}").into_bytes();
        ours.push(&leaf).expect("in-memory append");
        theirs.push(leaf.clone());
        their_roots.push(
            Hash::from_slice(theirs.root().as_bytes().as_slice()).expect("SHA-256 is 32 bytes"),
        );
        data.push(leaf);
    }
    Fixture {
        data,
        ours,
        theirs,
        their_roots,
    }
}

fn concat(path: &[Hash]) -> Vec<u8> {
    path.iter().flat_map(|h| *h.as_bytes()).collect()
}

fn flip(path: &[Hash], element: usize, bit: usize) -> Vec<Hash> {
    let mut out = path.to_vec();
    let i = element % out.len();
    let mut bytes = *out[i].as_bytes();
    bytes[(bit / 8) % 32] ^= 1 << (bit % 8);
    out[i] = Hash::from_bytes(bytes);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn roots_from_stored_nodes_match_ct_merkle(size in 0u64..600, salt: u64) {
        let f = fixture(size, salt);
        for m in 0..=size {
            prop_assert_eq!(tree_root(&f.ours, m).unwrap(), f.their_roots[m as usize]);
        }
        let frontier = Frontier::load(&f.ours, size).unwrap();
        prop_assert_eq!(frontier.root(), f.their_roots[size as usize]);
    }

    #[test]
    fn inclusion_proofs_verify_match_ct_merkle_and_mutations_fail(
        size in 1u64..600,
        salt: u64,
        pick: u64,
        other: u64,
        element: usize,
        bit: usize,
        junk: [u8; 32],
    ) {
        let f = fixture(size, salt);
        let index = pick % size;
        let leaf = leaf_hash(&f.data[index as usize]);
        let root = f.their_roots[size as usize];
        let proof = prove_inclusion(&f.ours, index, size).unwrap();
        prop_assert_eq!((proof.index, proof.size), (index, size));

        // Honest: verifies here and in ct-merkle, and is byte-identical to ct-merkle's.
        proof.verify(&leaf, &root).unwrap();
        let theirs = f.theirs.prove_inclusion(index as usize);
        prop_assert_eq!(concat(&proof.path), theirs.as_bytes().to_vec());
        let their_root = f.theirs.root();
        let ours_in_their_type =
            ct_merkle::InclusionProof::<Sha256>::try_from_bytes(concat(&proof.path)).unwrap();
        prop_assert!(their_root
            .verify_inclusion(&f.data[index as usize], index, &ours_in_their_type)
            .is_ok());

        // Mutations.
        let path = &proof.path;
        if !path.is_empty() {
            prop_assert!(verify_inclusion(index, size, &leaf, &flip(path, element, bit), &root).is_err());
            let mut dropped = path.clone();
            dropped.remove(element % path.len());
            prop_assert!(verify_inclusion(index, size, &leaf, &dropped, &root).is_err());
        }
        let mut extra = path.clone();
        extra.insert(element % (path.len() + 1), Hash::from_bytes(junk));
        prop_assert!(verify_inclusion(index, size, &leaf, &extra, &root).is_err());

        let wrong_index = other % (size + 1);
        if wrong_index != index {
            prop_assert!(verify_inclusion(wrong_index, size, &leaf, path, &root).is_err());
        }
        let wrong_size = 1 + other % size;
        if wrong_size != size {
            let wrong_root = f.their_roots[wrong_size as usize];
            prop_assert!(verify_inclusion(index, wrong_size, &leaf, path, &wrong_root).is_err());
        }
        prop_assert!(verify_inclusion(index, size, &leaf_hash(&junk), path, &root).is_err());
        prop_assert!(verify_inclusion(index, size, &leaf, path, &Hash::from_bytes(junk)).is_err());
    }

    #[test]
    fn consistency_proofs_verify_match_ct_merkle_and_mutations_fail(
        size in 1u64..600,
        salt: u64,
        pick: u64,
        other: u64,
        element: usize,
        bit: usize,
        junk: [u8; 32],
    ) {
        let f = fixture(size, salt);
        let first = pick % (size + 1);
        let (r1, r2) = (f.their_roots[first as usize], f.their_roots[size as usize]);
        let proof = prove_consistency(&f.ours, first, size).unwrap();
        proof.verify(&r1, &r2).unwrap();

        if first > 0 && first < size {
            let theirs = f.theirs.prove_consistency((size - first) as usize);
            prop_assert_eq!(concat(&proof.path), theirs.as_bytes().to_vec());
            let ours_in_their_type =
                ct_merkle::ConsistencyProof::<Sha256>::try_from_bytes(concat(&proof.path)).unwrap();
            let old = ct_merkle::RootHash::<Sha256>::new((*r1.as_bytes()).into(), first);
            prop_assert!(f.theirs.root().verify_consistency(&old, &ours_in_their_type).is_ok());
        }

        let path = &proof.path;
        if !path.is_empty() {
            prop_assert!(verify_consistency(first, size, &r1, &r2, &flip(path, element, bit)).is_err());
            let mut dropped = path.clone();
            dropped.remove(element % path.len());
            prop_assert!(verify_consistency(first, size, &r1, &r2, &dropped).is_err());
        }
        let mut extra = path.clone();
        extra.insert(element % (path.len() + 1), Hash::from_bytes(junk));
        prop_assert!(verify_consistency(first, size, &r1, &r2, &extra).is_err());

        // A different old size, with that size's honest head: this proof is not its proof.
        let wrong_first = other % (size + 1);
        // (Sizes 0 and `size` take an empty proof, so there an empty path is honest.)
        if wrong_first != first && (!path.is_empty() || (wrong_first != 0 && wrong_first != size)) {
            let wrong_r1 = f.their_roots[wrong_first as usize];
            prop_assert!(verify_consistency(wrong_first, size, &wrong_r1, &r2, path).is_err());
        }
        let wrong_second = first.max(1) + other % size;
        if first > 0 && wrong_second != size && wrong_second <= size {
            let wrong_r2 = f.their_roots[wrong_second as usize];
            prop_assert!(verify_consistency(first, wrong_second, &r1, &wrong_r2, path).is_err());
        }
        // A forked history: the same sizes with a head the log never had. (Every tree extends
        // the empty one, so size 0 is left out.)
        if first > 0 {
            prop_assert!(verify_consistency(first, size, &r1, &Hash::from_bytes(junk), path).is_err());
            prop_assert!(verify_consistency(first, size, &Hash::from_bytes(junk), &r2, path).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic_on_arbitrary_input(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = SignedNote::parse(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = Checkpoint::parse(&text);
        let _ = VerifierKey::parse(&text);
        let _ = SignerKey::parse(&text);
        let _ = Hash::from_hex(&text);
    }

    #[test]
    fn any_single_byte_change_to_a_signed_checkpoint_is_refused(
        seed: [u8; 32],
        size: u64,
        root: [u8; 32],
        position: usize,
        change in 1u8..=255,
    ) {
        let signer = SignerKey::from_seed("mamori.example/ledger", &seed).unwrap();
        let cp = Checkpoint::new("mamori.example/ledger", size, Hash::from_bytes(root)).unwrap();
        let note = cp.sign(&signer).unwrap().into_bytes();
        let trusted = [signer.verifier()];
        let opened = Checkpoint::open(&note, "mamori.example/ledger", &trusted).unwrap();
        prop_assert_eq!(opened.checkpoint(), &cp);

        let mut tampered = note.clone();
        let i = position % tampered.len();
        tampered[i] ^= change;
        prop_assert!(Checkpoint::open(&tampered, "mamori.example/ledger", &trusted).is_err());
    }
}
