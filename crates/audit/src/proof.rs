//! Inclusion and consistency proofs: the portable JSON form `changegate audit check-proof`
//! reads, and their verification.
//!
//! Verification is delegated to `ct-merkle` (RFC 6962 §2.1.1/§2.1.2 verifiers), an
//! implementation independent of the proof *generator* in [`crate::tree`]: a bug in one is
//! unlikely to be mirrored in the other, and both are checked against the transparency-dev
//! reference vectors. The few cases `ct-merkle` does not cover (consistency from the empty tree)
//! follow RFC 9162 §2.1.4.2 here.

use ct_merkle::RootHash;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::checkpoint::{Checkpoint, VerifierKey};
use crate::codes::Code;
use crate::record::{LeafData, commitment};
use crate::tree::{Hash, empty_root, leaf_hash};

/// Why a proof was rejected. Codes are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof does not lead from the leaf (or old root) to the root.
    #[error("{code}: {0}", code = Code::ProofInvalid)]
    Invalid(String),
    /// The proof file is not well formed.
    #[error("{code}: {0}", code = Code::ProofMalformed)]
    Malformed(String),
    /// The checkpoint in the proof file is not signed by the trusted key, or names another tree.
    #[error("{code}: {0}", code = Code::ProofCheckpoint)]
    Checkpoint(String),
    /// The event record in the proof file does not match the leaf.
    #[error("{code}: {0}", code = Code::ProofRecordMismatch)]
    Record(String),
}

impl ProofError {
    /// Stable kebab-case code.
    pub fn code(&self) -> Code {
        match self {
            ProofError::Invalid(_) => Code::ProofInvalid,
            ProofError::Malformed(_) => Code::ProofMalformed,
            ProofError::Checkpoint(_) => Code::ProofCheckpoint,
            ProofError::Record(_) => Code::ProofRecordMismatch,
        }
    }
}

fn digests(proof: &[Hash]) -> Vec<ct_merkle::digest::Output<Sha256>> {
    proof.iter().map(|h| (*h).into()).collect()
}

/// Verify that `leaf_data` is leaf `index` of the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf_data: &[u8],
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Invalid(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let root = RootHash::<Sha256>::new((*root).into(), size);
    let d = digests(proof);
    let proof = ct_merkle::InclusionProof::<Sha256>::from_digests(d.iter());
    root.verify_inclusion(&leaf_data, index, &proof)
        .map_err(|e| {
            ProofError::Invalid(format!(
                "inclusion of leaf {index} in tree of size {size}: {e:?}"
            ))
        })
}

/// Verify that the tree `(old, old_root)` is a prefix of `(new, new_root)`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Invalid(format!(
            "old size {old} is larger than new size {new}"
        )));
    }
    if old == 0 {
        // Every tree extends the empty tree; the proof is empty (RFC 9162 §2.1.4.2 step 1 does
        // not apply, there is nothing to check but the empty root).
        return if proof.is_empty() && *old_root == empty_root() {
            Ok(())
        } else {
            Err(ProofError::Invalid(
                "a proof from the empty tree must be empty and name the empty root".into(),
            ))
        };
    }
    if old == new {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Invalid(
                "equal sizes need an empty proof and equal roots".into(),
            ))
        };
    }
    let old_rh = RootHash::<Sha256>::new((*old_root).into(), old);
    let new_rh = RootHash::<Sha256>::new((*new_root).into(), new);
    let d = digests(proof);
    let proof = ct_merkle::ConsistencyProof::<Sha256>::from_digests(d.iter());
    new_rh
        .verify_consistency(&old_rh, &proof)
        .map_err(|e| ProofError::Invalid(format!("consistency {old} -> {new}: {e:?}")))
}

mod hexhash {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::tree::Hash;

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
    pub fn parse(s: &str) -> Result<Hash, String> {
        let v = hex::decode(s).map_err(|e| format!("not hex: {e}"))?;
        v.try_into()
            .map_err(|_| "a hash has 32 bytes (64 hex digits)".to_string())
    }
    pub mod vec {
        use super::*;
        pub fn serialize<S: Serializer>(v: &[Hash], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(hex::encode))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
            let v = Vec::<String>::deserialize(d)?;
            v.iter()
                .map(|s| parse(s).map_err(serde::de::Error::custom))
                .collect()
        }
    }
}

/// An event's record as shipped inside a proof file, so the auditor can check the event itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenRecord {
    /// Event id.
    pub id: String,
    /// Salt, hex.
    pub salt: String,
    /// The canonical record bytes, as text (hashed exactly as given).
    pub record: String,
}

/// `changegate audit prove` output: leaf `leaf_index` is in the tree of `tree_size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProofFile {
    /// Always `"inclusion"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Log origin (checkpoint first line).
    pub origin: String,
    /// Leaf position.
    pub leaf_index: u64,
    /// Tree size the proof is for.
    pub tree_size: u64,
    /// The leaf bytes, hex (see [`LeafData`]).
    pub leaf_data: String,
    /// `SHA-256(0x00 || leaf_data)`, hex (informative; recomputed on check).
    #[serde(with = "hexhash")]
    pub leaf_hash: Hash,
    /// Root of the tree of `tree_size`, hex.
    #[serde(with = "hexhash")]
    pub root_hash: Hash,
    /// Audit path, leaf side first, hex.
    #[serde(with = "hexhash::vec")]
    pub proof: Vec<Hash>,
    /// Signed checkpoint for `tree_size` (C2SP tlog-checkpoint signed note), if the log has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// The event record, unless retention deleted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<ProvenRecord>,
}

/// `changegate audit consistency` output: the tree of `old_size` is a prefix of `new_size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProofFile {
    /// Always `"consistency"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Log origin.
    pub origin: String,
    /// Old tree size.
    pub old_size: u64,
    /// New tree size.
    pub new_size: u64,
    /// Old root, hex.
    #[serde(with = "hexhash")]
    pub old_root: Hash,
    /// New root, hex.
    #[serde(with = "hexhash")]
    pub new_root: Hash,
    /// Proof hashes, hex.
    #[serde(with = "hexhash::vec")]
    pub proof: Vec<Hash>,
    /// Signed checkpoint of the old tree, if the log kept one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_checkpoint: Option<String>,
    /// Signed checkpoint of the new tree, if the log kept one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_checkpoint: Option<String>,
}

/// A proof file of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ProofFile {
    /// Inclusion proof.
    Inclusion(InclusionProofFile),
    /// Consistency proof.
    Consistency(ConsistencyProofFile),
}

/// What `check-proof` established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofCheck {
    /// `inclusion` or `consistency`.
    pub kind: &'static str,
    /// One line per fact established.
    pub facts: Vec<String>,
    /// Whether a checkpoint signature was verified (false: the roots are only as trustworthy
    /// as the file).
    pub signed: bool,
}

impl ProofFile {
    /// Parse a proof file (JSON).
    pub fn parse(text: &str) -> Result<Self, ProofError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ProofError::Malformed(e.to_string()))?;
        match v.get("type").and_then(|t| t.as_str()) {
            Some("inclusion") => serde_json::from_value(v).map(ProofFile::Inclusion),
            Some("consistency") => serde_json::from_value(v).map(ProofFile::Consistency),
            other => {
                return Err(ProofError::Malformed(format!(
                    "unknown proof type {other:?}; expected inclusion or consistency"
                )));
            }
        }
        .map_err(|e| ProofError::Malformed(e.to_string()))
    }

    /// Check the proof; when `key` is given, every checkpoint in the file must carry its valid
    /// signature and name the same tree as the proof, and the checkpoint of the proven (or new)
    /// tree must be there.
    pub fn check(&self, key: Option<&VerifierKey>) -> Result<ProofCheck, ProofError> {
        match self {
            ProofFile::Inclusion(p) => check_inclusion(p, key),
            ProofFile::Consistency(p) => check_consistency(p, key),
        }
    }
}

fn check_signed(
    note: Option<&str>,
    key: Option<&VerifierKey>,
    origin: &str,
    size: u64,
    root: &Hash,
    what: &str,
    required: bool,
) -> Result<bool, ProofError> {
    let Some(key) = key else { return Ok(false) };
    let Some(note) = note else {
        return if required {
            Err(ProofError::Checkpoint(format!(
                "no checkpoint for the {what} tree in the file"
            )))
        } else {
            Ok(false)
        };
    };
    let cp = Checkpoint::open(note, key).map_err(|e| ProofError::Checkpoint(e.to_string()))?;
    if cp.origin != origin || cp.size != size || cp.root != *root {
        return Err(ProofError::Checkpoint(format!(
            "the {what} checkpoint names {} size {} root {}, the proof {origin} size {size} root {}",
            cp.origin,
            cp.size,
            hex::encode(cp.root),
            hex::encode(root)
        )));
    }
    Ok(true)
}

fn check_inclusion(
    p: &InclusionProofFile,
    key: Option<&VerifierKey>,
) -> Result<ProofCheck, ProofError> {
    let data =
        hex::decode(&p.leaf_data).map_err(|e| ProofError::Malformed(format!("leaf_data: {e}")))?;
    if leaf_hash(&data) != p.leaf_hash {
        return Err(ProofError::Invalid(
            "leaf_hash is not the hash of leaf_data".into(),
        ));
    }
    let leaf = LeafData::decode(&data).map_err(|e| ProofError::Malformed(e.to_string()))?;
    if leaf.seq != p.leaf_index {
        return Err(ProofError::Invalid(format!(
            "the leaf says position {}, the proof {}",
            leaf.seq, p.leaf_index
        )));
    }
    verify_inclusion(&data, p.leaf_index, p.tree_size, &p.proof, &p.root_hash)?;
    let mut facts = vec![format!(
        "leaf {} is in the tree of size {} with root {}",
        p.leaf_index,
        p.tree_size,
        hex::encode(p.root_hash)
    )];
    if let Some(r) = &p.record {
        let salt = hex::decode(&r.salt).map_err(|e| ProofError::Malformed(format!("salt: {e}")))?;
        if commitment(&salt, r.record.as_bytes()) != leaf.commitment {
            return Err(ProofError::Record(
                "the record and salt do not hash to the leaf's commitment".into(),
            ));
        }
        facts.push(format!(
            "event {} is the record committed in that leaf",
            r.id
        ));
    }
    let signed = check_signed(
        p.checkpoint.as_deref(),
        key,
        &p.origin,
        p.tree_size,
        &p.root_hash,
        "proven",
        true,
    )?;
    if signed {
        facts.push("the root is signed by the trusted log key".into());
    }
    Ok(ProofCheck {
        kind: "inclusion",
        facts,
        signed,
    })
}

fn check_consistency(
    p: &ConsistencyProofFile,
    key: Option<&VerifierKey>,
) -> Result<ProofCheck, ProofError> {
    verify_consistency(p.old_size, p.new_size, &p.old_root, &p.new_root, &p.proof)?;
    let mut facts = vec![format!(
        "the tree of size {} is a prefix of the tree of size {}",
        p.old_size, p.new_size
    )];
    let signed_old = check_signed(
        p.old_checkpoint.as_deref(),
        key,
        &p.origin,
        p.old_size,
        &p.old_root,
        "old",
        false,
    )?;
    let signed_new = check_signed(
        p.new_checkpoint.as_deref(),
        key,
        &p.origin,
        p.new_size,
        &p.new_root,
        "new",
        true,
    )?;
    if signed_new {
        facts.push("the new root is signed by the trusted log key".into());
    }
    if signed_old {
        facts.push("the old root is signed by the trusted log key".into());
    }
    Ok(ProofCheck {
        kind: "consistency",
        facts,
        signed: signed_new,
    })
}
