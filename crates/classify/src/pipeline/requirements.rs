//! From facets to the change's category and roles, through the policy only.

use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::facets::FacetCode;
use changegate_policy::{Level, Policy, RoleId, RuleSource};

use super::{
    CategoryRef, Classification, ClassifiedFacet, FileSummary, RequiredRole, RoleReason,
    SCHEMA_VERSION,
};
use crate::Facet;

/// Facets that exist to fail closed.
const FAIL_CLOSED: &[FacetCode] = &[
    FacetCode::Unclassified,
    FacetCode::Unparseable,
    FacetCode::CodeChanged,
];

#[derive(Clone)]
pub(super) struct Req {
    pub(super) category: Level,
    change: String,
    roles: Vec<RoleId>,
    source: Option<RuleSource>,
    pub(super) note: Option<String>,
}

pub(super) fn requirement(policy: &Policy, code: &str) -> Req {
    let levels = policy.levels();
    let lowest = levels.first().copied().unwrap_or(1);
    let floor = levels
        .iter()
        .copied()
        .find(|l| *l > lowest)
        .unwrap_or(lowest + 1);
    match policy.facet_requirement(code) {
        Some(r) if FAIL_CLOSED.iter().any(|c| *c == code) && r.category <= lowest => Req {
            category: floor,
            change: r.change,
            roles: r.roles,
            source: Some(r.source),
            note: Some(format!(
                "the policy maps `{code}` to category {}; raised to {floor}: what is not understood never \
                 gets the lowest category",
                r.category
            )),
        },
        Some(r) => Req {
            category: r.category,
            change: r.change,
            roles: r.roles,
            source: Some(r.source),
            note: None,
        },
        None if code != FacetCode::Unclassified.as_str() => {
            let mut r = requirement(policy, FacetCode::Unclassified.as_str());
            r.note = Some(format!(
                "the policy does not map facet `{code}`; treated as unclassified"
            ));
            r
        }
        None => Req {
            category: floor,
            change: "Not understood (the policy maps no `unclassified` rule)".into(),
            roles: vec![],
            source: None,
            note: Some(format!(
                "the policy does not map `unclassified`; fail closed at category {floor}"
            )),
        },
    }
}

pub(super) fn build(
    facets: Vec<Facet>,
    policy: &Policy,
    files: FileSummary,
    mut notes: Vec<String>,
) -> Classification {
    use rayon::prelude::*;
    // Each code's requirement once; then every facet gets its copy on the pool (a change of
    // 8,000 facets spent milliseconds here on one core, after the detectors had used both).
    let mut cache: BTreeMap<FacetCode, Req> = BTreeMap::new();
    for f in &facets {
        cache
            .entry(f.kind)
            .or_insert_with(|| requirement(policy, f.kind.as_str()));
    }
    let mut out: Vec<ClassifiedFacet> = facets
        .into_par_iter()
        .with_min_len(1024)
        .map(|f| {
            let r = &cache[&f.kind];
            ClassifiedFacet {
                facet: f,
                category: r.category,
                change: r.change.clone(),
                roles: r.roles.clone(),
                source: r.source.clone(),
                note: r.note.clone(),
            }
        })
        .collect();
    // Stable, as before: facets of one code keep the detectors' order.
    out.par_sort_by(|a, b| {
        b.category
            .cmp(&a.category)
            // By code string, as before codes were typed (output order is part of the JSON).
            .then_with(|| a.facet.kind.as_str().cmp(b.facet.kind.as_str()))
    });
    let lowest = policy.levels().first().copied().unwrap_or(1);
    if out.is_empty() {
        notes.push("no changed files".into());
    }
    let level = out.iter().map(|f| f.category).max().unwrap_or(lowest);
    let category = match policy.category(level) {
        Some((id, c)) => CategoryRef {
            level,
            id: id.to_string(),
            name: c.name.clone(),
        },
        None => CategoryRef {
            level,
            id: format!("level-{level}"),
            name: format!("Category {level}"),
        },
    };

    let mut reasons: BTreeMap<RoleId, Vec<RoleReason>> = BTreeMap::new();
    // Borrowed: a change of 8,000 facets cloned a role name per facet and role here. Facets of
    // one code share their requirement (`cache`), so only the first of each code can add a
    // reason: the rest are skipped without looking at their roles.
    let mut seen: BTreeSet<(&RoleId, FacetCode)> = BTreeSet::new();
    let mut codes: BTreeSet<FacetCode> = BTreeSet::new();
    for f in &out {
        if !codes.insert(f.facet.kind) {
            continue;
        }
        for role in &f.roles {
            if seen.insert((role, f.facet.kind)) {
                reasons
                    .entry(role.clone())
                    .or_default()
                    .push(RoleReason::Facet {
                        facet: f.facet.kind,
                        change: f.change.clone(),
                        source: f.source.clone(),
                    });
            }
        }
    }
    if let Some((id, c)) = policy.category(level) {
        for role in &c.approvers {
            reasons
                .entry(role.clone())
                .or_default()
                .push(RoleReason::CategoryApprovers {
                    level,
                    category: id.to_string(),
                });
        }
    }
    let order: Vec<&RoleId> = policy.roles.keys().collect();
    let mut roles: Vec<RequiredRole> = reasons
        .into_iter()
        .map(|(role, reasons)| RequiredRole {
            name: policy
                .roles
                .get(&role)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| role.clone()),
            role,
            reasons,
        })
        .collect();
    roles.sort_by_key(|r| {
        order
            .iter()
            .position(|o| **o == r.role)
            .unwrap_or(usize::MAX)
    });
    // Likewise one note per code at most (in the facets' order).
    let mut noted: BTreeSet<FacetCode> = BTreeSet::new();
    for f in &out {
        if let Some(n) = &f.note
            && noted.insert(f.facet.kind)
            && !notes.contains(n)
        {
            notes.push(n.clone());
        }
    }
    Classification {
        schema_version: SCHEMA_VERSION,
        base: None,
        head: None,
        category,
        facets: out,
        roles,
        files,
        notes,
    }
}
