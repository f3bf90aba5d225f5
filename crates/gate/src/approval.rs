//! Who must approve, who may, and whether the approvals on record add up.
//!
//! Required roles are the union of the facet roles, the classifier's roles, the category's
//! `approvers` and its `deploy_approvers`; a `unilateral` category (the emergency one) needs only
//! its first approver role (the incident commander). The rules run twice, on purpose: once when an
//! approval is recorded ([`validate_approval`], so a self-approval is refused with a typed reason
//! at the door) and again at decision time ([`evaluate`]), because the policy, the team map, the
//! head commit or the authors may have changed since, and the decision must stand on its own
//! inputs. At decision time, one-person-many-roles is a bipartite matching (roles ↔ distinct
//! people), so the answer does not depend on the order approvals arrived in.

use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::{Category, CategoryKind, Level, Policy, RoleId};
use serde::Serialize;
use serde_json::json;

use crate::codes::{Code, RejectionCode};
use crate::model::{Approval, ApprovalStage, ChangeState, Person, WorldState};
use crate::people::{Holding, Relation, canonical, holding, relations, sod_inputs};
use crate::reason::Reason;
use crate::status::Status;

/// What a change needs before it may ship, derived from the policy and the classification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Requirements {
    /// Effective category level (the emergency category while an emergency is declared).
    pub level: Level,
    /// Key of the category under `[categories]`.
    pub category: String,
    /// Required roles, sorted.
    pub roles: Vec<RoleId>,
    /// Why each role is required (`facet:<code>`, `classifier`, `category-approvers`,
    /// `deploy-approvers`, `unilateral`).
    pub sources: BTreeMap<RoleId, Vec<String>>,
    /// The category is the emergency kind.
    pub emergency: bool,
    /// One role alone satisfies every approval requirement.
    pub unilateral: bool,
    /// Roles that approve the production deployment in the separate `deploy` stage (the
    /// category's `deploy_approvers` when it sets `deploy_approval_after`), sorted.
    pub deploy_roles: Vec<RoleId>,
    /// The checklist item the deploy-stage approvals must follow (`staging-smoke`).
    pub deploy_after: Option<String>,
}

/// The category level that governs the change: the policy's emergency category while an
/// emergency is declared, otherwise the classifier's level.
pub fn effective_level(policy: &Policy, state: &ChangeState) -> Level {
    match (&state.emergency, emergency_category(policy)) {
        (Some(_), Some(c)) => c.level,
        _ => state.change.classification.category,
    }
}

/// The first category of the emergency kind.
pub fn emergency_category(policy: &Policy) -> Option<&Category> {
    policy
        .categories
        .values()
        .filter(|c| c.kind == CategoryKind::Emergency)
        .min_by_key(|c| c.level)
}

/// What the change requires; `Err(level)` when the policy does not define its category.
pub fn requirements(policy: &Policy, state: &ChangeState) -> Result<Requirements, Level> {
    let level = effective_level(policy, state);
    let (key, cat) = policy.category(level).ok_or(level)?;
    let mut sources: BTreeMap<RoleId, Vec<String>> = BTreeMap::new();
    let mut add = |role: &str, why: String| {
        let v = sources.entry(role.to_string()).or_default();
        if !v.contains(&why) {
            v.push(why);
        }
    };
    let unilateral = cat.unilateral && !cat.approvers.is_empty();
    if unilateral {
        add(&cat.approvers[0], "unilateral".into());
    } else {
        let cls = &state.change.classification;
        for f in &cls.facets {
            for r in &f.roles {
                add(r, format!("facet:{}", f.kind));
            }
        }
        for r in &cls.required_roles {
            add(r, "classifier".into());
        }
        for r in &cat.approvers {
            add(r, "category-approvers".into());
        }
        if cat.deploy_approval_after.is_none() {
            for r in &cat.deploy_approvers {
                add(r, "deploy-approvers".into());
            }
        }
    }
    let (deploy_roles, deploy_after) = match (&cat.deploy_approval_after, unilateral) {
        (Some(after), false) => {
            let mut v = cat.deploy_approvers.clone();
            v.sort();
            v.dedup();
            (v, Some(after.clone()))
        }
        _ => (Vec::new(), None),
    };
    Ok(Requirements {
        level,
        category: key.to_string(),
        roles: sources.keys().cloned().collect(),
        sources,
        emergency: cat.kind == CategoryKind::Emergency,
        unilateral,
        deploy_roles,
        deploy_after,
    })
}

/// Why an approval is refused when it is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum ApprovalRejection {
    /// The change does not accept approvals in its state.
    #[error(
        "a change that is {status} does not accept approvals (only in-review, approved or scheduled)"
    )]
    StateInvalid {
        /// Current state.
        status: Status,
    },
    /// The change's category is not in the policy.
    #[error("category level {level} is not defined by the policy")]
    CategoryUnknown {
        /// Level.
        level: Level,
    },
    /// The role is not declared by the policy.
    #[error("unknown role `{role}`{}", did_you_mean(.suggestion))]
    UnknownRole {
        /// Role given.
        role: RoleId,
        /// Closest declared role.
        suggestion: Option<RoleId>,
    },
    /// The role is not required for this change.
    #[error("role `{role}` is not required for this change (required: {})", .required.join(", "))]
    RoleNotRequired {
        /// Role given.
        role: RoleId,
        /// Required roles.
        required: Vec<RoleId>,
    },
    /// The approval names another commit than the head.
    #[error("approval is for commit {approved} but the head is {head}")]
    StaleCommit {
        /// Commit approved.
        approved: String,
        /// Current head.
        head: String,
    },
    /// The person does not hold the role.
    #[error("{person} does not hold role `{role}`")]
    NotRoleHolder {
        /// Person.
        person: Person,
        /// Role.
        role: RoleId,
    },
    /// An author, co-author or the last pusher tried to approve.
    #[error("{person} may not approve a change they wrote ({}): separation of duties", rels(.relations))]
    SelfApproval {
        /// Person.
        person: Person,
        /// How they took part.
        relations: Vec<Relation>,
    },
    /// The person already approves in another required role.
    #[error(
        "{person} already approves as `{other_role}`; one person may not fill two required roles"
    )]
    SecondRole {
        /// Person.
        person: Person,
        /// Role given.
        role: RoleId,
        /// Role they already fill.
        other_role: RoleId,
    },
    /// Same person, role and commit already on record.
    #[error("{person} already approved as `{role}` for this commit")]
    AlreadyApproved {
        /// Person.
        person: Person,
        /// Role.
        role: RoleId,
    },
    /// A deploy-stage approval before the staging item was attested for the head commit, or for a
    /// category without a deploy stage.
    #[error("{}", early(.after))]
    DeployApprovalEarly {
        /// Role.
        role: RoleId,
        /// The checklist item the approval must follow (`None`: no deploy stage).
        after: Option<String>,
    },
}

fn did_you_mean(s: &Option<RoleId>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

fn early(after: &Option<String>) -> String {
    match after {
        Some(item) => format!(
            "the production deployment is approved after `{item}` is attested for the head commit; it is not yet"
        ),
        None => "this change's category has no deploy-stage approval; approve in the review stage"
            .to_string(),
    }
}

fn rels(r: &[Relation]) -> String {
    r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

impl ApprovalRejection {
    /// Stable code.
    pub fn code(&self) -> RejectionCode {
        use RejectionCode as C;
        match self {
            ApprovalRejection::StateInvalid { .. } => C::StateInvalid,
            ApprovalRejection::CategoryUnknown { .. } => C::UnknownCategory,
            ApprovalRejection::UnknownRole { .. } => C::UnknownRole,
            ApprovalRejection::RoleNotRequired { .. } => C::RoleNotRequired,
            ApprovalRejection::StaleCommit { .. } => C::ApprovalStale,
            ApprovalRejection::NotRoleHolder { .. } => C::ApprovalUnauthorized,
            ApprovalRejection::SelfApproval { .. } => C::ApprovalSelf,
            ApprovalRejection::SecondRole { .. } => C::ApprovalSecondRole,
            ApprovalRejection::AlreadyApproved { .. } => C::ApprovalDuplicate,
            ApprovalRejection::DeployApprovalEarly { .. } => C::DeployApprovalEarly,
        }
    }
}

/// The closest name in `names` to `given`, when reasonably close.
pub(crate) fn suggest<'a>(given: &str, names: impl Iterator<Item = &'a String>) -> Option<String> {
    names
        .map(|n| (levenshtein(given, n), n))
        .filter(|(d, n)| *d <= 3.max(n.len() / 3))
        .min()
        .map(|(_, n)| n.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether an approval in `role` for an older commit no longer counts.
fn invalidated(policy: &Policy, role: &str) -> bool {
    policy
        .roles
        .get(role)
        .is_none_or(|r| r.invalidate_on_new_commit)
}

/// Check an approval before recording it. Checks run in a fixed order (state, category, role,
/// commit, holder, authors, duplicates, second role) and the first failure is returned.
pub fn validate_approval(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    approval: &Approval,
) -> Result<(), ApprovalRejection> {
    if !state.status.accepts_approvals() {
        return Err(ApprovalRejection::StateInvalid {
            status: state.status,
        });
    }
    let req = requirements(policy, state)
        .map_err(|level| ApprovalRejection::CategoryUnknown { level })?;
    let role = &approval.role;
    if !policy.roles.contains_key(role) {
        return Err(ApprovalRejection::UnknownRole {
            role: role.clone(),
            suggestion: suggest(role, policy.roles.keys()),
        });
    }
    let deploy = approval.stage == ApprovalStage::Deploy;
    let stage_roles = if deploy {
        &req.deploy_roles
    } else {
        &req.roles
    };
    if deploy && req.deploy_after.is_none() {
        return Err(ApprovalRejection::DeployApprovalEarly {
            role: role.clone(),
            after: None,
        });
    }
    if !stage_roles.contains(role) {
        return Err(ApprovalRejection::RoleNotRequired {
            role: role.clone(),
            required: stage_roles.clone(),
        });
    }
    let head = &state.change.head_commit;
    if &approval.head_commit != head {
        return Err(ApprovalRejection::StaleCommit {
            approved: approval.head_commit.clone(),
            head: head.clone(),
        });
    }
    let person = canonical(world, &approval.person);
    if holding(policy, world, state, &approval.person, role).is_none() {
        return Err(ApprovalRejection::NotRoleHolder {
            person,
            role: role.clone(),
        });
    }
    if !policy.separation_of_duties.author_may_approve {
        let rel = relations(world, state, &approval.person);
        if !rel.is_empty() {
            return Err(ApprovalRejection::SelfApproval {
                person,
                relations: rel,
            });
        }
    }
    if let (true, Some(after)) = (deploy, &req.deploy_after)
        && staging_attested(state, after).is_none()
    {
        return Err(ApprovalRejection::DeployApprovalEarly {
            role: role.clone(),
            after: Some(after.clone()),
        });
    }
    let current = |a: &&Approval| {
        a.stage == approval.stage
            && (a.head_commit == *head || (!deploy && !invalidated(policy, &a.role)))
    };
    let mine: Vec<&Approval> = state
        .approvals
        .iter()
        .filter(current)
        .filter(|a| canonical(world, &a.person) == person)
        .collect();
    if mine.iter().any(|a| a.role == *role) {
        return Err(ApprovalRejection::AlreadyApproved {
            person,
            role: role.clone(),
        });
    }
    let other = mine.iter().find(|a| stage_roles.contains(&a.role));
    match other {
        Some(other) if !policy.separation_of_duties.one_person_many_roles => {
            Err(ApprovalRejection::SecondRole {
                person,
                role: role.clone(),
                other_role: other.role.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// The approvals at decision time.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalOutcome {
    /// Required roles.
    pub required: Vec<RoleId>,
    /// Who fills each filled role.
    pub filled: BTreeMap<RoleId, Person>,
    /// Required roles without a valid approval.
    pub missing: Vec<RoleId>,
    /// Reasons (approval-present, -missing, -stale, -unauthorized, -sod-violation, -not-required).
    pub reasons: Vec<Reason>,
}

struct Candidate<'a> {
    person: Person,
    approval: &'a Approval,
    holding: Holding,
}

/// Evaluate the approvals on record against the requirements.
pub fn evaluate(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    req: &Requirements,
) -> ApprovalOutcome {
    let sod = &policy.separation_of_duties;
    let head = &state.change.head_commit;
    let mut reasons = Vec::new();
    // Problems found per role; they deny only if the role ends up unfilled.
    let mut problems: Vec<(RoleId, Code, String, serde_json::Value)> = Vec::new();
    let mut cands: BTreeMap<&str, Vec<Candidate>> =
        req.roles.iter().map(|r| (r.as_str(), Vec::new())).collect();

    for role in &req.roles {
        if !policy.roles.contains_key(role) {
            reasons.push(Reason::deny(
                Code::RoleUnknown,
                format!("required role `{role}` is not declared in the policy"),
                json!({ "role": role, "required_by": req.sources.get(role) }),
            ));
        }
    }

    let mut sorted: Vec<&Approval> = state
        .approvals
        .iter()
        .filter(|a| a.stage == ApprovalStage::Review && req.roles.contains(&a.role))
        .collect();
    sorted.sort_by(|a, b| {
        (a.at, &a.role, &a.person, &a.head_commit).cmp(&(b.at, &b.role, &b.person, &b.head_commit))
    });
    for a in sorted {
        let person = canonical(world, &a.person);
        let base = json!({ "role": a.role, "person": person, "approved_commit": a.head_commit, "head_commit": head, "at": a.at });
        let mut ok = true;
        if a.head_commit != *head && invalidated(policy, &a.role) {
            ok = false;
            problems.push((
                a.role.clone(),
                Code::ApprovalStale,
                format!(
                    "{person}'s approval as `{}` is for {} but the head is now {head}",
                    a.role, a.head_commit
                ),
                with(base.clone(), json!({ "invalidate_on_new_commit": true })),
            ));
        }
        let held = holding(policy, world, state, &a.person, &a.role);
        if held.is_none() {
            ok = false;
            problems.push((
                a.role.clone(),
                Code::ApprovalUnauthorized,
                format!("{person} does not hold role `{}`", a.role),
                with(
                    base.clone(),
                    json!({ "holders": policy.roles.get(&a.role).map(|r| &r.holders) }),
                ),
            ));
        }
        if !sod.author_may_approve {
            let rel = relations(world, state, &a.person);
            if !rel.is_empty() {
                ok = false;
                problems.push((
                    a.role.clone(),
                    Code::ApprovalSodViolation,
                    format!("{person} may not approve as `{}`: they are the change's {}", a.role, rels(&rel)),
                    with(base.clone(), json!({ "rule": "author-may-not-approve", "relations": rel, "sod": sod_inputs(world, state) })),
                ));
            }
        }
        if let (true, Some(holding)) = (ok, held) {
            let list = cands
                .get_mut(a.role.as_str())
                .expect("filtered to required roles");
            if !list.iter().any(|c| c.person == person) {
                list.push(Candidate {
                    person,
                    approval: a,
                    holding,
                });
            }
        }
    }

    // Assign roles to people.
    let roles: Vec<&str> = req.roles.iter().map(String::as_str).collect();
    let mut assigned: Vec<Option<usize>> = vec![None; roles.len()]; // role index → candidate index
    if sod.one_person_many_roles {
        for (i, r) in roles.iter().enumerate() {
            if !cands[r].is_empty() {
                assigned[i] = Some(0);
            }
        }
    } else {
        let mut owner: BTreeMap<Person, usize> = BTreeMap::new(); // person → role index
        for i in 0..roles.len() {
            let mut seen = BTreeSet::new();
            augment(i, &roles, &cands, &mut owner, &mut assigned, &mut seen);
        }
    }

    let mut filled = BTreeMap::new();
    let mut missing = Vec::new();
    let sod_json = with(
        sod_inputs(world, state),
        json!({
            "author_may_approve": sod.author_may_approve,
            "one_person_many_roles": sod.one_person_many_roles,
        }),
    );
    for (i, r) in roles.iter().enumerate() {
        match assigned[i] {
            Some(ci) => {
                let c = &cands[r][ci];
                filled.insert(r.to_string(), c.person.clone());
                reasons.push(Reason::info(
                    Code::ApprovalPresent,
                    format!("`{r}` approved by {} for {}", c.person, c.approval.head_commit),
                    json!({
                        "role": r, "person": c.person, "approved_commit": c.approval.head_commit, "at": c.approval.at,
                        "holding": c.holding, "required_by": req.sources.get(*r),
                        "sod": sod_json.clone(),
                    }),
                ));
            }
            None => {
                missing.push(r.to_string());
                if !cands[r].is_empty() {
                    let taken: Vec<_> = cands[r]
                        .iter()
                        .map(|c| {
                            let other = roles.iter().enumerate().find(|(j, rr)| {
                                assigned[*j].is_some_and(|cj| cands[*rr][cj].person == c.person)
                            });
                            json!({ "person": c.person, "fills": other.map(|(_, rr)| *rr) })
                        })
                        .collect();
                    reasons.push(Reason::deny(
                        Code::ApprovalSodViolation,
                        format!("`{r}` is approved only by people who already fill another required role"),
                        json!({ "rule": "one-person-many-roles", "role": r, "candidates": taken, "one_person_many_roles": false }),
                    ));
                }
            }
        }
    }
    for (role, code, message, details) in problems {
        let unfilled = missing.contains(&role);
        reasons.push(Reason {
            code,
            message,
            denies: unfilled,
            details: with(details, json!({ "role_filled": !unfilled })),
        });
    }
    if req.roles.is_empty() {
        reasons.push(Reason::info(
            Code::ApprovalNotRequired,
            format!(
                "category {} ({}) needs no human approval",
                req.level, req.category
            ),
            json!({ "category": req.level }),
        ));
    }
    if !missing.is_empty() {
        let why: BTreeMap<&String, _> = missing.iter().map(|r| (r, req.sources.get(r))).collect();
        reasons.push(Reason::deny(
            Code::ApprovalMissing,
            format!("missing approval by {}", missing.join(", ")),
            json!({ "roles": missing, "required_by": why }),
        ));
    }
    ApprovalOutcome {
        required: req.roles.clone(),
        filled,
        missing,
        reasons,
    }
}

/// Kuhn's augmenting path for role `i`; deterministic because roles and candidates are ordered.
fn augment(
    i: usize,
    roles: &[&str],
    cands: &BTreeMap<&str, Vec<Candidate>>,
    owner: &mut BTreeMap<Person, usize>,
    assigned: &mut [Option<usize>],
    seen: &mut BTreeSet<Person>,
) -> bool {
    for (ci, c) in cands[roles[i]].iter().enumerate() {
        if !seen.insert(c.person.clone()) {
            continue;
        }
        let free = match owner.get(&c.person).copied() {
            None => true,
            Some(j) => augment(j, roles, cands, owner, assigned, seen),
        };
        if free {
            owner.insert(c.person.clone(), i);
            assigned[i] = Some(ci);
            return true;
        }
    }
    false
}

/// `a` with the fields of `b` added.
pub(crate) fn with(a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    let mut out = a;
    if let (Some(o), serde_json::Value::Object(extra)) = (out.as_object_mut(), b) {
        o.extend(extra);
    }
    out
}

/// When the checklist item `item` was first attested for the head commit.
pub fn staging_attested(state: &ChangeState, item: &str) -> Option<jiff::Timestamp> {
    state
        .attestations
        .iter()
        .filter(|a| a.item == item && a.head_commit == state.change.head_commit)
        .map(|a| a.at)
        .min()
}

/// The deploy-stage approvals (high-risk step 5: the Tech Architect approves the production
/// deployment after staging): for each of `req.deploy_roles`, a `deploy` approval for the head
/// commit by a holder who did not write the change, recorded at or after the first attestation of
/// `req.deploy_after`. A review-stage approval never counts for it.
pub fn evaluate_deploy(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    req: &Requirements,
) -> Vec<Reason> {
    let mut out = Vec::new();
    let Some(after) = &req.deploy_after else {
        return out;
    };
    let head = &state.change.head_commit;
    let staged = staging_attested(state, after);
    for role in &req.deploy_roles {
        let mut rejected = Vec::new();
        let mut found = None;
        let mut list: Vec<&Approval> = state
            .approvals
            .iter()
            .filter(|a| a.stage == ApprovalStage::Deploy && a.role == *role)
            .collect();
        list.sort_by(|a, b| (a.at, &a.person).cmp(&(b.at, &b.person)));
        for a in list {
            let person = canonical(world, &a.person);
            let problem = if a.head_commit != *head {
                Some(format!("for {} but the head is {head}", a.head_commit))
            } else if holding(policy, world, state, &a.person, role).is_none() {
                Some(format!("{person} does not hold `{role}`"))
            } else if !policy.separation_of_duties.author_may_approve
                && !relations(world, state, &a.person).is_empty()
            {
                Some(format!("{person} wrote the change"))
            } else if staged.is_none_or(|t| a.at < t) {
                Some(format!("recorded before `{after}` was attested"))
            } else {
                None
            };
            match problem {
                Some(p) => rejected.push(json!({ "person": person, "at": a.at, "problem": p })),
                None => {
                    found = Some((person, a.at));
                    break;
                }
            }
        }
        match found {
            Some((person, at)) => out.push(Reason::info(
                Code::DeployApprovalPresent,
                format!("`{role}` approved the production deployment ({person}, after `{after}`)"),
                json!({ "role": role, "person": person, "at": at, "after": after, "staging_attested_at": staged, "head_commit": head }),
            )),
            None => out.push(Reason::deny(
                Code::DeployApprovalMissing,
                format!(
                    "no deploy-stage approval by `{role}` after `{after}` for {head}; the review sign-off does not count for it"
                ),
                json!({ "role": role, "after": after, "staging_attested_at": staged, "head_commit": head, "rejected": rejected }),
            )),
        }
    }
    out
}
