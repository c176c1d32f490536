//! The Merkle tree as stored nodes: which complete subtrees a root, a proof or an append
//! needs, and how to assemble the answer from them.
//!
//! Storage model: the node at `(level, index)` covers leaves `[index·2^level,
//! (index+1)·2^level)` and is written once, when its last leaf arrives; it never changes
//! afterwards, so a store can keep it in an append-only table. A tree whose size is not a
//! power of two has no stored node for its right edge: its root, and any proof element
//! that covers the right edge, is folded from the complete subtrees that tile it
//! (RFC 9162 §2.1.1's recursion, read bottom-up). Every plan here names O(log n) nodes.

use crate::Error;
use crate::hash::{Hash, empty_root, node_hash};
use crate::proof::{ConsistencyProof, InclusionProof};

/// The coordinates of a complete subtree: `level` 0 is the leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves; the subtree holds `2^level` leaves.
    pub level: u8,
    /// Position within the level, counted from the left.
    pub index: u64,
}

impl NodeId {
    /// The node at `(level, index)`.
    #[must_use]
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// The leaf at `index`.
    #[must_use]
    pub const fn leaf(index: u64) -> Self {
        Self { level: 0, index }
    }

    /// First leaf covered, and one past the last, or `None` if that exceeds `u64`.
    #[must_use]
    pub fn leaf_range(&self) -> Option<std::ops::Range<u64>> {
        let width = 1u64.checked_shl(u32::from(self.level))?;
        let start = self.index.checked_mul(width)?;
        let end = start.checked_add(width)?;
        Some(start..end)
    }
}

/// A stored node: what an appender writes.
pub type StoredNode = (NodeId, Hash);

/// Where the tree's complete-subtree hashes live (a database table, a file, memory).
///
/// Implement [`NodeSource::node`]; override [`NodeSource::nodes`] to fetch a whole plan in
/// one round trip. Async stores can skip this trait: take a plan's
/// [`nodes`](InclusionPlan::nodes), fetch them however they like, and call `assemble`.
pub trait NodeSource {
    /// The store's own failure type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The hash of the complete subtree at `id`.
    fn node(&self, id: NodeId) -> Result<Hash, Self::Error>;

    /// The hashes of `ids`, in the same order.
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        ids.iter().map(|&id| self.node(id)).collect()
    }
}

fn fetch<S: NodeSource + ?Sized>(source: &S, ids: &[NodeId]) -> Result<Vec<Hash>, Error> {
    source
        .nodes(ids)
        .map_err(|e| Error::NodeSource(Box::new(e)))
}

/// Appends to `out` the complete subtrees tiling leaves `[start, end)`, largest first.
///
/// Valid for the ranges that RFC 9162's recursion produces: `start` is a multiple of a
/// power of two that is at least `end - start`, so the tiles follow the set bits of the
/// width from the top.
fn tile(start: u64, end: u64, out: &mut Vec<NodeId>) {
    let mut offset = u128::from(start);
    let width = end.saturating_sub(start);
    for level in (0..u64::BITS).rev() {
        if width >> level & 1 == 1 {
            // `offset >> level` fits in u64 because offset < 2^64.
            #[allow(clippy::cast_possible_truncation)]
            out.push(NodeId::new(level as u8, (offset >> level) as u64));
            offset += 1u128 << level;
        }
    }
}

/// Right-edge fold: `h1 ‖ (h2 ‖ (… ‖ hk))`, the RFC 6962 hash of tiles listed largest
/// first.
fn fold(tiles: &[Hash]) -> Option<Hash> {
    let (last, rest) = tiles.split_last()?;
    Some(
        rest.iter()
            .rev()
            .fold(*last, |acc, left| node_hash(left, &acc)),
    )
}

/// The nodes whose fold is the tree head at `size`: one per set bit of `size`.
#[must_use]
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    let mut out = Vec::with_capacity(size.count_ones() as usize);
    tile(0, size, &mut out);
    out
}

/// The tree head at `size` from the hashes of [`root_nodes`]`(size)`.
pub fn root_from_nodes(size: u64, hashes: &[Hash]) -> Result<Hash, Error> {
    let expected = size.count_ones() as usize;
    if hashes.len() != expected {
        return Err(Error::NodeCount {
            expected,
            got: hashes.len(),
        });
    }
    Ok(fold(hashes).unwrap_or_else(empty_root))
}

/// The tree head at `size`, reading `popcount(size)` nodes.
pub fn tree_root<S: NodeSource + ?Sized>(source: &S, size: u64) -> Result<Hash, Error> {
    root_from_nodes(size, &fetch(source, &root_nodes(size))?)
}

/// Nodes for an audit path, and how they group into proof elements.
///
/// `spans[i]` is how many consecutive entries of `nodes` fold into proof element `i`: 1 for
/// a stored sibling, more for a sibling on the incomplete right edge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PathPlan {
    nodes: Vec<NodeId>,
    spans: Vec<u8>,
}

impl PathPlan {
    /// Adds the siblings of the node at (`level`, `index`) on its way to the root of a tree of
    /// `size` leaves, bottom-up: RFC 9162 §2.1.3.1 `PATH` (and the tail of §2.1.4.1
    /// `SUBPROOF`) in the order the recursion emits them.
    fn push_path(&mut self, level: u8, index: u64, size: u64) {
        // Levels below the root: the tree of `size` leaves has height bitlen(size - 1).
        let height = u64::BITS - size.saturating_sub(1).leading_zeros();
        let size = u128::from(size);
        let mut index = u128::from(index);
        for level in u32::from(level)..height {
            let sibling = index ^ 1;
            let start = sibling << level;
            if start < size {
                let end = (sibling + 1) << level;
                let before = self.nodes.len();
                if end <= size {
                    // Complete sibling: stored as one node. Fits: start < size <= u64::MAX.
                    #[allow(clippy::cast_possible_truncation)]
                    self.nodes.push(NodeId::new(level as u8, sibling as u64));
                } else {
                    // The sibling straddles the right edge: fold its tiles.
                    #[allow(clippy::cast_possible_truncation)]
                    tile(start as u64, size as u64, &mut self.nodes);
                }
                #[allow(clippy::cast_possible_truncation)]
                self.spans.push((self.nodes.len() - before) as u8);
            }
            index >>= 1;
        }
    }

    fn assemble(&self, hashes: &[Hash]) -> Result<Vec<Hash>, Error> {
        if hashes.len() != self.nodes.len() {
            return Err(Error::NodeCount {
                expected: self.nodes.len(),
                got: hashes.len(),
            });
        }
        let mut rest = hashes;
        let mut path = Vec::with_capacity(self.spans.len());
        for &span in &self.spans {
            let (group, tail) = rest.split_at(usize::from(span));
            // Spans are never empty by construction; an empty group would mean a bug here,
            // reported rather than panicking.
            path.push(fold(group).ok_or(Error::NodeCount {
                expected: self.nodes.len(),
                got: hashes.len(),
            })?);
            rest = tail;
        }
        Ok(path)
    }
}

/// Which stored nodes an inclusion proof needs, and how to turn them into the proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionPlan {
    index: u64,
    size: u64,
    path: PathPlan,
}

impl InclusionPlan {
    /// Plans the proof that leaf `index` is in the tree of `size` leaves.
    pub fn new(index: u64, size: u64) -> Result<Self, Error> {
        if index >= size {
            return Err(Error::IndexOutOfRange { index, size });
        }
        let mut path = PathPlan::default();
        path.push_path(0, index, size);
        Ok(Self { index, size, path })
    }

    /// The nodes to read, in the order [`InclusionPlan::assemble`] wants their hashes.
    #[must_use]
    pub fn nodes(&self) -> &[NodeId] {
        &self.path.nodes
    }

    /// Builds the proof from the hashes of [`InclusionPlan::nodes`].
    pub fn assemble(&self, hashes: &[Hash]) -> Result<InclusionProof, Error> {
        Ok(InclusionProof {
            index: self.index,
            size: self.size,
            path: self.path.assemble(hashes)?,
        })
    }
}

/// Which stored nodes a consistency proof needs, and how to turn them into the proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyPlan {
    first: u64,
    second: u64,
    path: PathPlan,
}

impl ConsistencyPlan {
    /// Plans the proof that the tree of `first` leaves is a prefix of the tree of `second`.
    ///
    /// When `first` is 0 or equals `second` the proof is empty (RFC 9162 §2.1.4 defines
    /// proofs only for `0 < first < second`; the other cases are checked by comparing roots).
    pub fn new(first: u64, second: u64) -> Result<Self, Error> {
        if first > second {
            return Err(Error::SizesOutOfOrder { first, second });
        }
        let mut path = PathPlan::default();
        if first > 0 && first < second {
            // The old tree's last leaf sits at the bottom-right of the largest complete
            // subtree ending at `first`; the proof is that subtree (unless it is the whole old
            // tree, which the verifier already has) followed by its audit path in the new tree.
            let shift = first.trailing_zeros();
            let seed = NodeId::new(shift as u8, (first - 1) >> shift);
            if !first.is_power_of_two() {
                path.nodes.push(seed);
                path.spans.push(1);
            }
            path.push_path(seed.level, seed.index, second);
        }
        Ok(Self {
            first,
            second,
            path,
        })
    }

    /// The nodes to read, in the order [`ConsistencyPlan::assemble`] wants their hashes.
    #[must_use]
    pub fn nodes(&self) -> &[NodeId] {
        &self.path.nodes
    }

    /// Builds the proof from the hashes of [`ConsistencyPlan::nodes`].
    pub fn assemble(&self, hashes: &[Hash]) -> Result<ConsistencyProof, Error> {
        Ok(ConsistencyProof {
            first: self.first,
            second: self.second,
            path: self.path.assemble(hashes)?,
        })
    }
}

/// Proves leaf `index` is in the tree of `size` leaves, reading O(log size) nodes.
pub fn prove_inclusion<S: NodeSource + ?Sized>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<InclusionProof, Error> {
    let plan = InclusionPlan::new(index, size)?;
    plan.assemble(&fetch(source, plan.nodes())?)
}

/// Proves the tree of `first` leaves is a prefix of the tree of `second`, reading
/// O(log second) nodes.
pub fn prove_consistency<S: NodeSource + ?Sized>(
    source: &S,
    first: u64,
    second: u64,
) -> Result<ConsistencyProof, Error> {
    let plan = ConsistencyPlan::new(first, second)?;
    plan.assemble(&fetch(source, plan.nodes())?)
}

/// The stored nodes a single append at `size_before` reads: the left siblings that the new
/// leaf completes, lowest level first (`trailing_ones(size_before)` of them).
#[must_use]
pub fn append_needs(size_before: u64) -> Vec<NodeId> {
    (0..size_before.trailing_ones())
        .map(|level| NodeId::new(level as u8, (size_before >> level) - 1))
        .collect()
}

/// The nodes an append of `leaf_hash` at `size_before` completes: the leaf itself and every
/// subtree it closes, lowest level first. `left_siblings` are the hashes of
/// [`append_needs`]`(size_before)`. The caller writes all of them in the same transaction as
/// the leaf.
pub fn nodes_completed_by_append(
    size_before: u64,
    leaf_hash: Hash,
    left_siblings: &[Hash],
) -> Result<Vec<StoredNode>, Error> {
    if size_before == u64::MAX {
        return Err(Error::TreeFull { size: size_before });
    }
    let expected = size_before.trailing_ones() as usize;
    if left_siblings.len() != expected {
        return Err(Error::NodeCount {
            expected,
            got: left_siblings.len(),
        });
    }
    let mut out = Vec::with_capacity(expected + 1);
    out.push((NodeId::leaf(size_before), leaf_hash));
    let mut current = leaf_hash;
    for (level, left) in (1u8..).zip(left_siblings) {
        current = node_hash(left, &current);
        out.push((NodeId::new(level, size_before >> level), current));
    }
    Ok(out)
}

/// [`nodes_completed_by_append`] reading the siblings from `source`.
pub fn append_leaf<S: NodeSource + ?Sized>(
    source: &S,
    size_before: u64,
    leaf_hash: Hash,
) -> Result<Vec<StoredNode>, Error> {
    nodes_completed_by_append(
        size_before,
        leaf_hash,
        &fetch(source, &append_needs(size_before))?,
    )
}

/// The right edge of the tree: one complete subtree per set bit of the size, largest first.
///
/// It is all an appender needs to carry between leaves of a batch: load it once
/// (`popcount(size)` reads), [`push`](Frontier::push) each leaf, write the nodes it reports,
/// and read the new tree head from [`root`](Frontier::root) without touching storage again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Default for Frontier {
    fn default() -> Self {
        Self::empty()
    }
}

impl Frontier {
    /// The frontier of the empty tree.
    #[must_use]
    pub const fn empty() -> Self {
        Self {
            size: 0,
            hashes: Vec::new(),
        }
    }

    /// Rebuilds the frontier at `size` from the hashes of [`root_nodes`]`(size)`.
    pub fn from_hashes(size: u64, hashes: &[Hash]) -> Result<Self, Error> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(Error::NodeCount {
                expected,
                got: hashes.len(),
            });
        }
        Ok(Self {
            size,
            hashes: hashes.to_vec(),
        })
    }

    /// Reads the frontier at `size` from storage.
    pub fn load<S: NodeSource + ?Sized>(source: &S, size: u64) -> Result<Self, Error> {
        Self::from_hashes(size, &fetch(source, &root_nodes(size))?)
    }

    /// The number of leaves so far.
    #[must_use]
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// The tree head at [`size`](Frontier::size).
    #[must_use]
    pub fn root(&self) -> Hash {
        fold(&self.hashes).unwrap_or_else(empty_root)
    }

    /// Appends one leaf and pushes onto `completed` every node that becomes complete: the
    /// leaf, then the subtrees it closes, lowest level first.
    pub fn push(&mut self, leaf_hash: Hash, completed: &mut Vec<StoredNode>) -> Result<(), Error> {
        let index = self.size;
        let size = index
            .checked_add(1)
            .ok_or(Error::TreeFull { size: index })?;
        completed.push((NodeId::leaf(index), leaf_hash));
        let mut current = leaf_hash;
        let mut level = 0u8;
        // Each set low bit of the old size is a complete subtree of that level waiting on
        // the frontier for a right sibling of equal size: merge while they pair up.
        while index >> level & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                // Unreachable while `hashes` matches `size`'s bits, which the constructors
                // guarantee; refuse rather than corrupt the tree.
                return Err(Error::NodeCount {
                    expected: index.count_ones() as usize,
                    got: self.hashes.len(),
                });
            };
            current = node_hash(&left, &current);
            level += 1;
            completed.push((NodeId::new(level, index >> level), current));
        }
        self.hashes.push(current);
        self.size = size;
        Ok(())
    }
}

/// A whole tree held in memory, one vector per level: the reference [`NodeSource`] for
/// tests, benches and small tools.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Appends a leaf by its hash, storing every node it completes.
    pub fn push_hash(&mut self, leaf_hash: Hash) -> Result<(), Error> {
        // Goes through the same helper a database appender uses, so every test that builds
        // a tree also exercises it.
        for (id, hash) in append_leaf(self, self.size(), leaf_hash)? {
            let level = usize::from(id.level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            if let Some(nodes) = self.levels.get_mut(level) {
                nodes.push(hash);
            }
        }
        Ok(())
    }

    /// Appends a leaf by its data.
    pub fn push(&mut self, data: &[u8]) -> Result<(), Error> {
        self.push_hash(crate::hash::leaf_hash(data))
    }

    /// The tree head at the current size.
    pub fn root(&self) -> Result<Hash, Error> {
        tree_root(self, self.size())
    }
}

impl NodeSource for MemoryTree {
    type Error = Error;

    fn node(&self, id: NodeId) -> Result<Hash, Error> {
        usize::try_from(id.index)
            .ok()
            .and_then(|index| self.levels.get(usize::from(id.level))?.get(index))
            .copied()
            .ok_or(Error::MissingNode {
                level: id.level,
                index: id.index,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn tiles_follow_the_bits_of_the_width() {
        let mut out = Vec::new();
        tile(0, 7, &mut out);
        assert_eq!(
            out,
            [NodeId::new(2, 0), NodeId::new(1, 2), NodeId::new(0, 6)]
        );
        out.clear();
        tile(8, 13, &mut out);
        assert_eq!(out, [NodeId::new(2, 2), NodeId::new(0, 12)]);
        assert!(root_nodes(0).is_empty());
        assert_eq!(root_nodes(u64::MAX).len(), 64);
    }

    #[test]
    fn plans_read_logarithmically_many_nodes_at_the_largest_sizes() {
        let size = u64::MAX;
        let plan = InclusionPlan::new(size - 1, size).unwrap();
        assert!(plan.nodes().len() <= 2 * 64, "{}", plan.nodes().len());
        let plan = ConsistencyPlan::new(size - 2, size).unwrap();
        assert!(plan.nodes().len() <= 2 * 64, "{}", plan.nodes().len());
        assert_eq!(append_needs(u64::MAX >> 1).len(), 63);
        assert!(append_needs(u64::MAX - 1).is_empty());
        assert!(matches!(
            nodes_completed_by_append(u64::MAX, leaf_hash(b""), &[]),
            Err(Error::TreeFull { .. })
        ));
    }

    #[test]
    fn frontier_matches_the_stored_tree_and_writes_the_same_nodes() {
        let mut tree = MemoryTree::new();
        let mut frontier = Frontier::empty();
        for i in 0u32..100 {
            let leaf = leaf_hash(&i.to_be_bytes());
            let by_helper = append_leaf(&tree, tree.size(), leaf).unwrap();
            let mut by_frontier = Vec::new();
            frontier.push(leaf, &mut by_frontier).unwrap();
            assert_eq!(by_helper, by_frontier);
            tree.push_hash(leaf).unwrap();
            assert_eq!(frontier.root(), tree.root().unwrap());
            assert_eq!(Frontier::load(&tree, tree.size()).unwrap(), frontier);
        }
    }

    #[test]
    fn wrong_node_counts_are_refused() {
        let plan = InclusionPlan::new(2, 5).unwrap();
        assert!(matches!(
            plan.assemble(&[]),
            Err(Error::NodeCount {
                expected: 3,
                got: 0
            })
        ));
        assert!(matches!(
            root_from_nodes(3, &[empty_root()]),
            Err(Error::NodeCount {
                expected: 2,
                got: 1
            })
        ));
        assert!(Frontier::from_hashes(3, &[]).is_err());
        assert!(nodes_completed_by_append(3, empty_root(), &[]).is_err());
    }

    #[test]
    fn missing_nodes_surface_as_source_errors() {
        let mut tree = MemoryTree::new();
        tree.push(b"a").unwrap();
        let err = prove_inclusion(&tree, 0, 2).unwrap_err();
        assert!(matches!(err, Error::NodeSource(_)), "{err}");
        assert!(matches!(
            prove_inclusion(&tree, 1, 1),
            Err(Error::IndexOutOfRange { index: 1, size: 1 })
        ));
        assert!(matches!(
            prove_consistency(&tree, 2, 1),
            Err(Error::SizesOutOfOrder {
                first: 2,
                second: 1
            })
        ));
    }
}
