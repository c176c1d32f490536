//! Inclusion and consistency proofs and their verifiers, RFC 9162 §2.1.3.2 and §2.1.4.2.
//!
//! The verifiers follow the RFC's bit-walking algorithms step by step and share no code with
//! proof generation in [`crate::tree`], so a generator bug cannot hide behind a verifier
//! bug of the same shape. Before hashing, each verifier derives from the same walk how many
//! hashes the proof must have, so a truncated or padded proof is reported as such rather
//! than as a root mismatch.

use crate::Error;
use crate::hash::{Hash, node_hash};

/// Proof that one leaf is in a tree of a given size (RFC 9162 §2.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The leaf's index.
    pub index: u64,
    /// The tree size the proof is against.
    pub size: u64,
    /// Sibling hashes, bottom-up.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Checks that the leaf with `leaf_hash` is at [`index`](Self::index) in the tree whose
    /// head at [`size`](Self::size) is `root`.
    pub fn verify(&self, leaf_hash: &Hash, root: &Hash) -> Result<(), Error> {
        verify_inclusion(self.index, self.size, leaf_hash, &self.path, root)
    }
}

/// Proof that a tree is a prefix of a bigger one (RFC 9162 §2.1.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub first: u64,
    /// The newer tree size.
    pub second: u64,
    /// The proof hashes, in RFC order.
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks that the tree with head `first_root` at [`first`](Self::first) leaves is a
    /// prefix of the tree with head `second_root` at [`second`](Self::second) leaves.
    pub fn verify(&self, first_root: &Hash, second_root: &Hash) -> Result<(), Error> {
        verify_consistency(self.first, self.second, first_root, second_root, &self.path)
    }
}

const fn lsb(x: u64) -> bool {
    x & 1 == 1
}

/// Shared bit walk of both algorithms: for `fn`/`sn`, how many path elements remain.
///
/// Each iteration consumes one element; the walk ends when `sn` reaches 0 (RFC step 4a /
/// 6a would fail on further elements, step 5 / 7 on fewer).
const fn path_length(mut fnode: u64, mut snode: u64) -> usize {
    let mut count = 0;
    while snode != 0 {
        count += 1;
        // RFC step "(LSB(fn) or fn = sn) and not LSB(fn)": skip the levels where the
        // node has no right sibling.
        if fnode == snode && !lsb(fnode) {
            while !lsb(fnode) && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        }
        fnode >>= 1;
        snode >>= 1;
    }
    count
}

/// RFC 9162 §2.1.3.2: verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves
/// whose head is `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    path: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    // Step 1.
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    // Step 2.
    let mut fnode = index;
    let mut snode = size - 1;
    let expected = path_length(fnode, snode);
    if path.len() != expected {
        return Err(Error::WrongLength {
            expected,
            got: path.len(),
        });
    }
    // Step 3.
    let mut r = *leaf_hash;
    // Step 4.
    for p in path {
        if snode == 0 {
            // Unreachable after the length check; kept because it is the RFC's guard.
            return Err(Error::WrongLength {
                expected,
                got: path.len(),
            });
        }
        if lsb(fnode) || fnode == snode {
            r = node_hash(p, &r);
            if !lsb(fnode) {
                while !lsb(fnode) && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5.
    if snode != 0 {
        return Err(Error::WrongLength {
            expected,
            got: path.len(),
        });
    }
    if r != *root {
        return Err(Error::RootMismatch {
            expected: *root,
            computed: r,
        });
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: verifies that the tree of `first` leaves with head `first_root` is a
/// prefix of the tree of `second` leaves with head `second_root`.
///
/// Outside the RFC's `0 < first < second`: `first == second` holds iff the roots are equal
/// and the proof is empty; `first == 0` holds with an empty proof (the empty tree is a prefix
/// of every tree; its head is fixed, so `first_root` must be [`crate::empty_root`]).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    path: &[Hash],
) -> Result<(), Error> {
    if first > second {
        return Err(Error::SizesOutOfOrder { first, second });
    }
    if first == 0 || first == second {
        if !path.is_empty() {
            return Err(Error::WrongLength {
                expected: 0,
                got: path.len(),
            });
        }
        if first == 0 {
            let empty = crate::hash::empty_root();
            if *first_root != empty {
                return Err(Error::OldRootMismatch {
                    expected: *first_root,
                    computed: empty,
                });
            }
            return Ok(());
        }
        if first_root != second_root {
            return Err(Error::RootMismatch {
                expected: *second_root,
                computed: *first_root,
            });
        }
        return Ok(());
    }

    // Step 2: when `first` is a power of two the old head is itself the seed and is not sent.
    let seed_sent = !first.is_power_of_two();
    // Step 3.
    let mut fnode = first - 1;
    let mut snode = second - 1;
    // Step 4.
    while lsb(fnode) {
        fnode >>= 1;
        snode >>= 1;
    }
    let expected = path_length(fnode, snode) + usize::from(seed_sent);
    if path.len() != expected {
        return Err(Error::WrongLength {
            expected,
            got: path.len(),
        });
    }
    // Step 1 (an empty path) is covered by the length check: `expected` is at least 1 here.
    // Step 5.
    let (seed, rest) = if seed_sent {
        match path.split_first() {
            Some((seed, rest)) => (*seed, rest),
            None => {
                return Err(Error::WrongLength { expected, got: 0 });
            }
        }
    } else {
        (*first_root, path)
    };
    let mut fr = seed;
    let mut sr = seed;
    // Step 6.
    for c in rest {
        if snode == 0 {
            return Err(Error::WrongLength {
                expected,
                got: path.len(),
            });
        }
        if lsb(fnode) || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if !lsb(fnode) {
                while !lsb(fnode) && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(Error::WrongLength {
            expected,
            got: path.len(),
        });
    }
    if fr != *first_root {
        return Err(Error::OldRootMismatch {
            expected: *first_root,
            computed: fr,
        });
    }
    if sr != *second_root {
        return Err(Error::RootMismatch {
            expected: *second_root,
            computed: sr,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{empty_root, leaf_hash};

    #[test]
    fn degenerate_consistency_cases() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        // Equal sizes: equal roots and an empty proof, nothing else.
        verify_consistency(1, 1, &a, &a, &[]).unwrap();
        assert!(matches!(
            verify_consistency(1, 1, &a, &b, &[]),
            Err(Error::RootMismatch { .. })
        ));
        assert!(matches!(
            verify_consistency(1, 1, &a, &a, &[a]),
            Err(Error::WrongLength {
                expected: 0,
                got: 1
            })
        ));
        // From the empty tree: only the empty head, only an empty proof.
        verify_consistency(0, 5, &empty_root(), &b, &[]).unwrap();
        assert!(verify_consistency(0, 5, &a, &b, &[]).is_err());
        assert!(verify_consistency(0, 5, &empty_root(), &b, &[a]).is_err());
        // Backwards and empty proofs.
        assert!(matches!(
            verify_consistency(2, 1, &a, &b, &[]),
            Err(Error::SizesOutOfOrder {
                first: 2,
                second: 1
            })
        ));
        assert!(matches!(
            verify_consistency(1, 2, &a, &b, &[]),
            Err(Error::WrongLength {
                expected: 1,
                got: 0
            })
        ));
    }

    #[test]
    fn inclusion_in_a_single_leaf_tree_is_the_leaf_itself() {
        let a = leaf_hash(b"data");
        verify_inclusion(0, 1, &a, &[], &a).unwrap();
        assert!(matches!(
            verify_inclusion(0, 1, &a, &[], &empty_root()),
            Err(Error::RootMismatch { .. })
        ));
        for (index, size) in [(0, 0), (1, 0), (2, 1)] {
            assert!(matches!(
                verify_inclusion(index, size, &a, &[], &a),
                Err(Error::IndexOutOfRange { .. })
            ));
        }
    }
}
