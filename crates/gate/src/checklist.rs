//! The pre-deployment checklist: which `[checklist.pre]` items apply to a change, whether each is
//! attested for the head commit with the evidence it asks for, and the `auto` items the gate
//! computes itself.
//!
//! Attestations are bound to a head commit for the same reason approvals are: "staging smoke tests
//! passed" is a statement about one build. An item applies when its `applies_to` lists the change's
//! category and its `condition` holds. A condition `<family>-change` holds when a facet of that
//! family is present (`schema-change` ⇒ any `schema-*` facet of the classifier catalogue); an
//! unknown condition is treated as holding (fail closed). Two `auto` items are computed here —
//! `approvals` (every required role filled) and `window-compliance` (the window check passed); any
//! other `auto` item has no check in this gate and so counts as missing.

use changegate_policy::{ChecklistItem, Level, Policy, facets};
use serde::Serialize;
use serde_json::json;

use crate::codes::{Code, RejectionCode};
use crate::model::{Attestation, ChangeState, ClassifiedFacet, WorldState};
use crate::people::canonical;
use crate::reason::Reason;
use crate::status::Status;

/// Auto item: every required approval is in.
pub const AUTO_APPROVALS: &str = "approvals";
/// Auto item: the deploy time complies with the change window.
pub const AUTO_WINDOW: &str = "window-compliance";

/// Whether an item's condition holds for these facets.
pub fn condition_holds(condition: &str, facets_: &[ClassifiedFacet]) -> bool {
    let Some(family) = condition.strip_suffix("-change") else {
        return true;
    };
    if !facets::all().any(|f| f.family == family) {
        return true;
    }
    facets_
        .iter()
        .any(|f| facets::find(&f.kind).is_some_and(|info| info.family == family))
}

/// The pre-deployment items that apply to a change of `level` with these facets, in policy order.
pub fn applicable<'p>(
    policy: &'p Policy,
    level: Level,
    facets_: &[ClassifiedFacet],
) -> Vec<(&'p str, &'p ChecklistItem)> {
    policy
        .checklist
        .pre
        .iter()
        .filter(|(_, i)| i.enabled && i.applies_to.contains(&level))
        .filter(|(_, i)| {
            i.condition
                .as_deref()
                .is_none_or(|c| condition_holds(c, facets_))
        })
        .map(|(k, i)| (k.as_str(), i))
        .collect()
}

/// Why an attestation is refused when it is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum AttestationRejection {
    /// The change does not accept attestations in its state.
    #[error("a change that is {status} does not accept attestations")]
    StateInvalid {
        /// Current state.
        status: Status,
    },
    /// No such item under `[checklist.pre]`.
    #[error("unknown checklist item `{item}`{}", .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownItem {
        /// Item given.
        item: String,
        /// Closest item.
        suggestion: Option<String>,
    },
    /// The item is computed by the gate.
    #[error("checklist item `{item}` is checked automatically and cannot be attested")]
    AutoItem {
        /// Item.
        item: String,
    },
    /// The item does not apply to this change.
    #[error("checklist item `{item}` does not apply to this change")]
    NotApplicable {
        /// Item.
        item: String,
    },
    /// The attestation names another commit than the head.
    #[error("attestation is for commit {attested} but the head is {head}")]
    StaleCommit {
        /// Commit attested.
        attested: String,
        /// Current head.
        head: String,
    },
    /// The item asks for evidence and none was given.
    #[error("checklist item `{item}` requires evidence ({kind}): give a link")]
    EvidenceMissing {
        /// Item.
        item: String,
        /// Evidence kind.
        kind: String,
    },
}

impl AttestationRejection {
    /// Stable code.
    pub fn code(&self) -> RejectionCode {
        use RejectionCode as C;
        match self {
            AttestationRejection::StateInvalid { .. } => C::StateInvalid,
            AttestationRejection::UnknownItem { .. } => C::ChecklistItemUnknown,
            AttestationRejection::AutoItem { .. } => C::ChecklistItemAuto,
            AttestationRejection::NotApplicable { .. } => C::ChecklistItemNotApplicable,
            AttestationRejection::StaleCommit { .. } => C::ChecklistStale,
            AttestationRejection::EvidenceMissing { .. } => C::ChecklistEvidenceMissing,
        }
    }
}

/// Check an attestation before recording it.
pub fn validate_attestation(
    policy: &Policy,
    state: &ChangeState,
    att: &Attestation,
) -> Result<(), AttestationRejection> {
    if !state.status.accepts_approvals() {
        return Err(AttestationRejection::StateInvalid {
            status: state.status,
        });
    }
    let Some(item) = policy.checklist.pre.get(&att.item) else {
        return Err(AttestationRejection::UnknownItem {
            item: att.item.clone(),
            suggestion: crate::approval::suggest(&att.item, policy.checklist.pre.keys()),
        });
    };
    if item.auto {
        return Err(AttestationRejection::AutoItem {
            item: att.item.clone(),
        });
    }
    let level = crate::approval::effective_level(policy, state);
    if !applicable(policy, level, &state.change.classification.facets)
        .iter()
        .any(|(k, _)| *k == att.item)
    {
        return Err(AttestationRejection::NotApplicable {
            item: att.item.clone(),
        });
    }
    if att.head_commit != state.change.head_commit {
        return Err(AttestationRejection::StaleCommit {
            attested: att.head_commit.clone(),
            head: state.change.head_commit.clone(),
        });
    }
    match &item.evidence {
        Some(kind) if att.evidence.as_deref().is_none_or(|e| e.trim().is_empty()) => {
            Err(AttestationRejection::EvidenceMissing {
                item: att.item.clone(),
                kind: kind.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Checklist reasons at decision time. `approvals_ok` and `window_ok` feed the `auto` items.
pub fn evaluate(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    level: Level,
    approvals_ok: bool,
    window_ok: bool,
) -> Vec<Reason> {
    let head = &state.change.head_commit;
    let mut out = Vec::new();
    for (id, item) in applicable(policy, level, &state.change.classification.facets) {
        let base = json!({ "item": id, "text": item.text, "evidence_kind": item.evidence, "condition": item.condition });
        if item.auto {
            let passed = match id {
                AUTO_APPROVALS => Some(approvals_ok),
                AUTO_WINDOW => Some(window_ok),
                _ => None,
            };
            match passed {
                Some(p) => out.push(Reason::info(
                    Code::ChecklistAuto,
                    format!(
                        "`{id}` checked by the gate: {}",
                        if p { "pass" } else { "fail" }
                    ),
                    crate::approval::with(base, json!({ "passed": p })),
                )),
                None => out.push(Reason::deny(
                    Code::ChecklistMissing,
                    format!("`{id}` is an automatic item this gate has no check for (fail closed)"),
                    base,
                )),
            }
            continue;
        }
        let mine: Vec<&Attestation> = state.attestations.iter().filter(|a| a.item == id).collect();
        let has_evidence = |a: &&Attestation| {
            item.evidence.is_none() || a.evidence.as_deref().is_some_and(|e| !e.trim().is_empty())
        };
        let current: Vec<&Attestation> = mine
            .iter()
            .copied()
            .filter(|a| a.head_commit == *head)
            .collect();
        let summary = |a: &Attestation| json!({ "person": canonical(world, &a.person), "evidence": a.evidence, "commit": a.head_commit, "at": a.at });
        if let Some(a) = current.iter().copied().find(has_evidence) {
            out.push(Reason::info(
                Code::ChecklistAttested,
                format!(
                    "`{id}` attested by {} for {head}",
                    canonical(world, &a.person)
                ),
                crate::approval::with(base, json!({ "attestation": summary(a) })),
            ));
        } else if let Some(a) = current.first() {
            out.push(Reason::deny(
                Code::ChecklistEvidenceMissing,
                format!(
                    "`{id}` was attested without the evidence it requires ({})",
                    item.evidence.as_deref().unwrap_or("")
                ),
                crate::approval::with(base, json!({ "attestation": summary(a) })),
            ));
        } else if !mine.is_empty() {
            let old: Vec<_> = mine.iter().map(|a| summary(a)).collect();
            out.push(Reason::deny(
                Code::ChecklistStale,
                format!("`{id}` is attested only for older commits, not for the head {head}"),
                crate::approval::with(base, json!({ "attestations": old, "head_commit": head })),
            ));
        } else {
            out.push(Reason::deny(
                Code::ChecklistMissing,
                format!("`{id}` not attested: {}", item.text),
                base,
            ));
        }
        // High-risk changes: the rollback plan must also be tested (`[rollback.testing]`).
        if item.evidence.as_deref() == Some(crate::rollback::ROLLBACK_PLAN_EVIDENCE) {
            out.extend(crate::rollback::testing_reason(policy, state, level, id));
        }
    }
    out
}
