//! The RFC 6962 / RFC 9162 Merkle tree over the log's leaves, in the shape the store keeps it.
//!
//! Why not `ct-merkle`'s tree: its `MemoryBackedTree` keeps every leaf and node in memory and
//! computes proofs from that array. The log lives in a database with millions of leaves, written
//! by several processes; loading it whole for each proof would cost seconds. So the store keeps
//! the hash of every *perfect* subtree (a [`NodeId`]: level and index) in a node table, written
//! as the leaves are appended, plus the *frontier* (the roots of the perfect subtrees that cover
//! the log, largest first) in its head row. Any subtree hash RFC 6962 asks for is then a handful
//! of node look-ups: proofs need O(log² n) stored nodes at worst, fetched in one query.
//! Verification of proofs is done by `ct-merkle` (see [`crate::proof`]), an implementation
//! independent of this one; the tests check both against the published reference vectors.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// SHA-256 of the empty string: the root of the empty tree (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Leaf hash: `SHA-256(0x00 || data)` (RFC 6962 §2.1, domain-separated from nodes).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// Interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A perfect subtree: `2^level` leaves starting at leaf `index << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 = a leaf).
    pub level: u8,
    /// Position among the nodes of that level.
    pub index: u64,
}

impl NodeId {
    /// Pack into one non-negative integer (`level << 56 | index`), the node table's key.
    pub fn key(self) -> i64 {
        debug_assert!(self.level < 64 && self.index < (1 << 56));
        ((u64::from(self.level) << 56) | self.index) as i64
    }

    /// Inverse of [`NodeId::key`].
    pub fn from_key(key: i64) -> Self {
        let k = key as u64;
        NodeId {
            level: (k >> 56) as u8,
            index: k & ((1 << 56) - 1),
        }
    }

    /// First leaf covered by this node.
    pub fn first_leaf(self) -> u64 {
        self.index << self.level
    }
}

/// The roots of the perfect subtrees covering leaves `[0, size)`, largest (leftmost) first.
/// Appending a leaf only needs the frontier, and the root of the tree is a fold over it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append a leaf hash. Returns every perfect subtree completed by it, the leaf first.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut out = Vec::with_capacity(2);
        self.push_with(leaf, |id, h| out.push((id, *h)));
        out
    }

    /// Append a leaf hash, reporting every completed perfect subtree to `sink` (no allocation).
    pub fn push_with(&mut self, leaf: Hash, mut sink: impl FnMut(NodeId, &Hash)) {
        let mut idx = self.size;
        let mut level = 0u8;
        let mut h = leaf;
        sink(NodeId { level, index: idx }, &h);
        while idx & 1 == 1 {
            let left = self.hashes.pop().expect("frontier matches size");
            h = node_hash(&left, &h);
            idx >>= 1;
            level += 1;
            sink(NodeId { level, index: idx }, &h);
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// Merkle tree hash of the leaves covered.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// Serialise: the hashes concatenated (the size is stored beside it).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.hashes.concat()
    }

    /// Deserialise; `None` when the byte count does not match `size` (one hash per set bit).
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != size.count_ones() as usize * 32 {
            return None;
        }
        let hashes = bytes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        Some(Frontier { size, hashes })
    }

    /// The perfect subtrees covering `[0, size)`, largest first (what the frontier holds).
    pub fn node_ids(size: u64) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1u64 << level) != 0 {
                out.push(NodeId {
                    level,
                    index: start >> level,
                });
                start += 1u64 << level;
            }
        }
        out
    }
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Hash of leaves `[lo, hi)` (`hi > lo`) from perfect-subtree hashes given by `node`.
pub fn range_hash(lo: u64, hi: u64, node: &mut impl FnMut(NodeId) -> Hash) -> Hash {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let level = n.trailing_zeros() as u8;
        return node(NodeId {
            level,
            index: lo >> level,
        });
    }
    let k = split(n);
    let left = range_hash(lo, lo + k, node);
    let right = range_hash(lo + k, hi, node);
    node_hash(&left, &right)
}

/// Inclusion proof `PATH(index, D[0:size])` (RFC 9162 §2.1.3.1), hashes leaf side first.
/// `index < size` is the caller's to check.
pub fn inclusion_path(index: u64, size: u64, node: &mut impl FnMut(NodeId) -> Hash) -> Vec<Hash> {
    fn path(m: u64, lo: u64, hi: u64, node: &mut impl FnMut(NodeId) -> Hash, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            path(m, lo, lo + k, node, out);
            out.push(range_hash(lo + k, hi, node));
        } else {
            path(m - k, lo + k, hi, node, out);
            out.push(range_hash(lo, lo + k, node));
        }
    }
    let mut out = Vec::new();
    path(index, 0, size, node, &mut out);
    out
}

/// Consistency proof `PROOF(old, D[0:new])` (RFC 9162 §2.1.4.1). `old <= new` is the caller's
/// to check; `old == new` and `old == 0` give the empty proof.
pub fn consistency_path(old: u64, new: u64, node: &mut impl FnMut(NodeId) -> Hash) -> Vec<Hash> {
    fn sub(
        m: u64,
        lo: u64,
        hi: u64,
        complete: bool,
        node: &mut impl FnMut(NodeId) -> Hash,
        out: &mut Vec<Hash>,
    ) {
        let n = hi - lo;
        if m == n {
            if !complete {
                out.push(range_hash(lo, hi, node));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            sub(m, lo, lo + k, complete, node, out);
            out.push(range_hash(lo + k, hi, node));
        } else {
            sub(m - k, lo + k, hi, false, node, out);
            out.push(range_hash(lo, lo + k, node));
        }
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        sub(old, 0, new, true, node, &mut out);
    }
    out
}

/// The stored nodes a computation needs: run it once with a recorder, fetch them all in one
/// query, run it again with the fetched map.
pub fn needed_nodes(compute: impl FnOnce(&mut dyn FnMut(NodeId) -> Hash)) -> Vec<NodeId> {
    let mut ids = Vec::new();
    compute(&mut |id| {
        ids.push(id);
        [0u8; 32]
    });
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(n: u64) -> (Frontier, std::collections::HashMap<NodeId, Hash>) {
        let mut f = Frontier::new();
        let mut nodes = std::collections::HashMap::new();
        for i in 0..n {
            for (id, h) in f.push(leaf_hash(&i.to_be_bytes())) {
                nodes.insert(id, h);
            }
        }
        (f, nodes)
    }

    #[test]
    fn frontier_root_equals_range_hash_for_every_size() {
        for n in 1..70u64 {
            let (f, nodes) = tree(n);
            let mut get = |id: NodeId| nodes[&id];
            assert_eq!(f.root(), range_hash(0, n, &mut get), "size {n}");
            assert_eq!(Frontier::node_ids(n).len(), n.count_ones() as usize);
            let back = Frontier::from_bytes(n, &f.to_bytes()).unwrap();
            assert_eq!(back, f);
        }
        assert!(Frontier::from_bytes(3, &[0u8; 32]).is_none());
    }

    #[test]
    fn node_key_round_trips() {
        for id in [
            NodeId { level: 0, index: 0 },
            NodeId {
                level: 63,
                index: (1 << 56) - 1,
            },
            NodeId {
                level: 5,
                index: 77,
            },
        ] {
            assert_eq!(NodeId::from_key(id.key()), id);
            assert!(id.key() >= 0);
        }
    }
}
