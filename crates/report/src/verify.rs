//! Proof of completeness: the checkpoint a report names, and `report verify`, which recomputes a
//! report from an export of the log and proves the export is the log's whole population.

use changegate_audit::record::{LeafData, commitment, write_canonical};
use changegate_audit::tree::{Frontier, leaf_hash};
use changegate_audit::{Checkpoint, ConsistencyProofFile, ProofFile, Record, VerifierKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes::Code;
use crate::metrics::build;
use crate::period::Period;
use crate::{Report, ReportError, digest};

/// A tree size and its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofPoint {
    /// Leaves.
    pub size: u64,
    /// Root, hex.
    pub root: String,
    /// Where this point comes from (`signed head`, `end of 2026-10`, `report 2026-10 signed by …`).
    pub note: String,
}

/// What a report was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proof {
    /// Log origin.
    pub origin: String,
    /// The log's public key (an auditor should check it against the one they were given).
    pub verifier_key: String,
    /// The signed checkpoint (C2SP signed note) the report was computed from.
    pub checkpoint_note: String,
    /// Its size and root.
    pub checkpoint: ProofPoint,
    /// The tree at the end of the period (every record of the period is in it).
    pub period_end: ProofPoint,
    /// The previous report's checkpoint.
    pub previous: Option<ProofPoint>,
    /// Consistency proof from `previous` to `checkpoint`.
    pub consistency: Option<ConsistencyProofFile>,
}

/// One exported event: the record, its salt and its leaf hash.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedEvent {
    /// The record.
    pub record: Record,
    /// Its canonical bytes.
    pub bytes: Vec<u8>,
    /// Leaf hash recomputed from the record and salt.
    pub leaf_hash: [u8; 32],
    /// The leaf hash the export claims.
    pub claimed_leaf_hash: String,
}

/// Parse one line of `changegate audit export --format jsonl`.
pub fn parse_export_line(line: &str, n: usize) -> Result<ExportedEvent, ReportError> {
    let bad = |m: String| ReportError::Export(format!("line {n}: {m}"));
    let mut v: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    let o = v
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    let claimed = o
        .remove("leaf_hash")
        .and_then(|h| h.as_str().map(str::to_string))
        .ok_or_else(|| bad("no leaf_hash".into()))?;
    let salt = o
        .remove("salt")
        .and_then(|h| h.as_str().map(str::to_string))
        .ok_or_else(|| {
            bad("no salt (export with a changegate that writes salts: `audit export --format jsonl`)".into())
        })?;
    let salt = hex::decode(&salt).map_err(|e| bad(format!("salt: {e}")))?;
    let mut bytes = Vec::new();
    write_canonical(&v, &mut bytes);
    let record = Record::parse(&bytes).map_err(|e| bad(e.to_string()))?;
    let leaf = LeafData {
        seq: record.seq,
        recorded_at_us: record.recorded_at.as_microsecond(),
        commitment: commitment(&salt, &bytes),
    };
    Ok(ExportedEvent {
        leaf_hash: leaf_hash(&leaf.encode()),
        record,
        bytes,
        claimed_leaf_hash: claimed,
    })
}

/// One failure of `report verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stable code.
    pub code: Code,
    /// What differs, naming the place.
    pub message: String,
}

/// What `report verify` established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyOutcome {
    /// Facts established.
    pub facts: Vec<String>,
    /// Failures (empty: the report is proven).
    pub failures: Vec<Failure>,
    /// Whether the checkpoint signature was checked against a key the caller gave.
    pub trusted_key: bool,
}

impl VerifyOutcome {
    /// No failure.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Recompute `report` from `export` (JSON lines, the whole log from position 0) and check that
/// the export is exactly the log's population up to the report's checkpoint. `key`: the log key
/// the auditor trusts (without it the key named in the report is used, which proves only that
/// the report is self-consistent).
pub fn verify_export(report: &Report, export: &str, key: Option<&VerifierKey>) -> VerifyOutcome {
    let mut out = VerifyOutcome {
        facts: Vec::new(),
        failures: Vec::new(),
        trusted_key: key.is_some(),
    };
    let fail = |out: &mut VerifyOutcome, code: Code, message: String| {
        out.failures.push(Failure { code, message });
    };
    let Some(proof) = &report.proof else {
        fail(
            &mut out,
            Code::ReportMalformed,
            "the report names no checkpoint (it was not generated from a log)".into(),
        );
        return out;
    };
    // 1. The checkpoint.
    let report_key = VerifierKey::parse(&proof.verifier_key);
    let key = match (key, &report_key) {
        (Some(k), _) => Some(k.clone()),
        (None, Ok(k)) => Some(k.clone()),
        (None, Err(e)) => {
            fail(
                &mut out,
                Code::CheckpointInvalid,
                format!("verifier_key: {e}"),
            );
            None
        }
    };
    if let Some(k) = &key {
        match Checkpoint::open(&proof.checkpoint_note, k) {
            Ok(cp) => {
                if cp.size != proof.checkpoint.size || hex::encode(cp.root) != proof.checkpoint.root
                {
                    fail(
                        &mut out,
                        Code::CheckpointInvalid,
                        format!(
                            "the signed note names size {} root {}, the report size {} root {}",
                            cp.size,
                            hex::encode(cp.root),
                            proof.checkpoint.size,
                            proof.checkpoint.root
                        ),
                    );
                } else {
                    out.facts.push(format!(
                        "checkpoint {} (size {}, root {}) is signed by {}",
                        cp.origin,
                        cp.size,
                        proof.checkpoint.root,
                        if out.trusted_key {
                            "the trusted key"
                        } else {
                            "the key named in the report (pass --key to trust it)"
                        }
                    ));
                }
            }
            Err(e) => fail(&mut out, Code::CheckpointInvalid, e.to_string()),
        }
    }
    // 2. The export: positions 0..size, each record bound to its leaf.
    let size = proof.checkpoint.size;
    let mut frontier = Frontier::new();
    let mut records = Vec::new();
    let mut roots = std::collections::BTreeMap::new();
    let wanted: Vec<u64> = [
        Some(proof.period_end.size),
        proof.previous.as_ref().map(|p| p.size),
    ]
    .into_iter()
    .flatten()
    .collect();
    if wanted.contains(&0) {
        roots.insert(0, hex::encode(frontier.root()));
    }
    for (i, line) in export.lines().enumerate() {
        if frontier.size() >= size {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let ev = match parse_export_line(line, i + 1) {
            Ok(ev) => ev,
            Err(e) => {
                fail(&mut out, Code::ExportMalformed, e.to_string());
                return out;
            }
        };
        let expect = frontier.size();
        if ev.record.seq != expect {
            fail(
                &mut out,
                Code::ExportIncomplete,
                format!(
                    "line {}: position {} where position {expect} was expected (an event is missing, duplicated or out of order; export the whole log without --since/--until)",
                    i + 1,
                    ev.record.seq
                ),
            );
            return out;
        }
        if hex::encode(ev.leaf_hash) != ev.claimed_leaf_hash {
            fail(
                &mut out,
                Code::ExportRecordAltered,
                format!(
                    "line {}: event {} at position {} does not hash to the leaf the export names",
                    i + 1,
                    ev.record.id,
                    ev.record.seq
                ),
            );
        }
        frontier.push(ev.leaf_hash);
        if wanted.contains(&frontier.size()) {
            roots.insert(frontier.size(), hex::encode(frontier.root()));
        }
        records.push(ev.record);
    }
    if frontier.size() < size {
        fail(
            &mut out,
            Code::ExportIncomplete,
            format!(
                "the export has {} event(s), the checkpoint {size}",
                frontier.size()
            ),
        );
        return out;
    }
    let root = hex::encode(frontier.root());
    if root != proof.checkpoint.root {
        fail(
            &mut out,
            Code::RootMismatch,
            format!(
                "the tree root of the exported events is {root}, the checkpoint's {}",
                proof.checkpoint.root
            ),
        );
    } else {
        out.facts.push(format!(
            "the {size} exported events are exactly the log's population up to the checkpoint (tree root {root})"
        ));
    }
    for (label, p) in [
        ("period end", Some(&proof.period_end)),
        ("previous", proof.previous.as_ref()),
    ] {
        let Some(p) = p else { continue };
        match roots.get(&p.size) {
            Some(r) if *r == p.root => out.facts.push(format!(
                "the {label} tree (size {}) has root {}",
                p.size, p.root
            )),
            Some(r) => fail(
                &mut out,
                Code::RootMismatch,
                format!(
                    "the {label} tree (size {}) of the export has root {r}, the report says {}",
                    p.size, p.root
                ),
            ),
            None => fail(
                &mut out,
                Code::ReportMalformed,
                format!("the {label} size {} exceeds the checkpoint", p.size),
            ),
        }
    }
    // 3. The consistency proof from the previous report's checkpoint.
    match (&proof.previous, &proof.consistency) {
        (Some(prev), Some(c)) => {
            let shape_ok = c.old_size == prev.size
                && hex::encode(c.old_root) == prev.root
                && c.new_size == size
                && hex::encode(c.new_root) == proof.checkpoint.root;
            if !shape_ok {
                fail(
                    &mut out,
                    Code::ConsistencyInvalid,
                    "the consistency proof names other trees than the report".into(),
                );
            } else {
                match ProofFile::Consistency(c.clone()).check(None) {
                    Ok(_) => out.facts.push(format!(
                        "the log at the previous report's checkpoint (size {}) is a prefix of this one",
                        prev.size
                    )),
                    Err(e) => fail(&mut out, Code::ConsistencyInvalid, e.to_string()),
                }
            }
        }
        (None, None) => {}
        _ => fail(
            &mut out,
            Code::ConsistencyInvalid,
            "previous checkpoint and consistency proof must come together".into(),
        ),
    }
    // 4. Every metric, recomputed.
    let period: Period = match Period::parse_as(report.kind, &report.period) {
        Ok(p) => p,
        Err(e) => {
            fail(&mut out, Code::ReportMalformed, e.to_string());
            return out;
        }
    };
    let body = build(&period, &records, &report.body.settings);
    let mut differing = 0;
    for m in &body.metrics {
        match report.body.metrics.iter().find(|x| x.id == m.id) {
            Some(x) if x == m => {}
            Some(x) => {
                differing += 1;
                fail(
                    &mut out,
                    Code::MetricMismatch,
                    format!(
                        "metric `{}`: the report says {:?} ({}), the export gives {:?} ({})",
                        m.id, x.value, x.basis, m.value, m.basis
                    ),
                );
            }
            None => {
                differing += 1;
                fail(
                    &mut out,
                    Code::MetricMismatch,
                    format!("metric `{}` is missing from the report", m.id),
                );
            }
        }
    }
    let a = serde_json::to_value(&body).unwrap_or_default();
    let b = serde_json::to_value(&report.body).unwrap_or_default();
    if differing == 0 && a != b {
        let keys = a
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| a[k.as_str()] != b[k.as_str()])
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        fail(
            &mut out,
            Code::MetricMismatch,
            format!("the report body differs from the recomputed one in: {keys}"),
        );
    }
    if a == b {
        out.facts.push(format!(
            "all {} metrics and {} change row(s) recompute from the export",
            body.metrics.len(),
            body.changes.len()
        ));
    }
    let d = digest(report.kind, &report.period, &body);
    if d != report.digest {
        fail(
            &mut out,
            Code::MetricMismatch,
            format!(
                "digest: the report says {}, the export gives {d}",
                report.digest
            ),
        );
    }
    out
}
