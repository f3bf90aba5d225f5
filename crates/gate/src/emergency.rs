//! Emergency changes: declared with an incident reference, approved by the incident commander
//! alone (the category's `unilateral` flag), exempt from window restrictions — and owed a
//! retrospective and a follow-up PR afterwards.
//!
//! The override holds only while the declaration is sound: the incident exists, is active at the
//! deploy instant and is one the policy makes eligible (`emergency.eligible`: in the seed P0
//! outages, security incidents above CVSS 9.0, data loss, cascading failures — never any open
//! incident), and whoever declared it holds one of `emergency.declared_by`. A change the
//! classifier put in the emergency category without a declaration is denied, never waved through.
//! The retrospective clock (`emergency.retrospective_within`) starts when the change first started
//! deploying: that is when the policy was bypassed.

use changegate_calendar::OnCallShift;
use changegate_policy::{Policy, RoleId};
use jiff::Timestamp;
use serde_json::json;

use crate::approval::Requirements;
use crate::codes::Code;
use crate::model::{ChangeState, Incident, WorldState};
use crate::people::{canonical, holding, holds_directly, on_call_at};
use crate::reason::Reason;
use crate::status::Status;

/// Emergency reasons; the bool says whether the override is in force.
pub fn evaluate(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    req: &Requirements,
    now: Timestamp,
) -> (Vec<Reason>, bool) {
    let mut out = Vec::new();
    if !req.emergency {
        return (out, false);
    }
    let Some(em) = &state.emergency else {
        out.push(Reason::deny(
            Code::EmergencyNotDeclared,
            "classified as an emergency change but no emergency is declared (declare one with an incident reference)",
            json!({ "category": req.level }),
        ));
        return (out, false);
    };
    let mut ok = true;
    let mut eligible_as = None;
    match world.incident(&em.incident) {
        None => {
            ok = false;
            out.push(Reason::deny(
                Code::EmergencyIncidentInvalid,
                format!("emergency refers to unknown incident {}", em.incident),
                json!({ "incident": em.incident, "problem": "unknown" }),
            ));
        }
        Some(inc) if !inc.active_at(now) => {
            ok = false;
            out.push(Reason::deny(
                Code::EmergencyIncidentInvalid,
                format!("incident {} is not active at {now}", inc.id),
                json!({ "incident": inc.id, "problem": "not-active", "opened_at": inc.opened_at, "resolved_at": inc.resolved_at }),
            ));
        }
        Some(inc) => {
            eligible_as = eligibility(policy, inc);
            if let Some(problem) = ineligible(policy, inc) {
                ok = false;
                out.push(problem);
            }
        }
    }
    let declarer = canonical(world, &em.declared_by);
    let via: Vec<_> = policy
        .emergency
        .declared_by
        .iter()
        .filter_map(|r| {
            holding(policy, world, state, &em.declared_by, r)
                .map(|h| json!({ "role": r, "holding": h }))
        })
        .collect();
    if via.is_empty() {
        ok = false;
        out.push(Reason::deny(
            Code::EmergencyDeclarerUnauthorized,
            format!(
                "{declarer} declared the emergency but holds none of {}",
                policy.emergency.declared_by.join(", ")
            ),
            json!({ "declared_by": declarer, "allowed_roles": policy.emergency.declared_by }),
        ));
    }
    if ok {
        out.push(Reason::info(
            Code::EmergencyOverride,
            format!("emergency for incident {} in force: window restrictions overridden, the incident commander approves alone", em.incident),
            json!({ "incident": em.incident, "eligible_as": eligible_as, "declared_by": declarer, "declared_at": em.at, "declarer_roles": via, "unilateral": req.unilateral }),
        ));
    }
    (out, ok)
}

/// Why someone may be an incident commander (recorded in reasons and audit events).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum CommanderBasis {
    /// Holds a role of `emergency.commander_from` (directly or through a team).
    Role {
        /// The role.
        role: RoleId,
    },
    /// On call in a rotation of `emergency.commander_on_call` at the instant asked about.
    OnCall {
        /// The shift.
        shift: OnCallShift,
    },
    /// The policy names neither roles nor rotations: anyone qualifies.
    Unrestricted,
}

/// Whether `person` may be an incident commander at `at`: "the on-call SRE or a Backend Lead",
/// as the policy says it — a holder of a role of `emergency.commander_from` (never through an
/// incident), or whoever is on call at `at` in a rotation of `emergency.commander_on_call`. The
/// one function every commander check calls (the commander role's holding, incident authority,
/// rollbacks, incidents from PagerDuty).
pub fn commander_eligible(
    policy: &Policy,
    world: &WorldState,
    person: &str,
    at: Timestamp,
) -> Option<CommanderBasis> {
    let e = &policy.emergency;
    if e.commander_from.is_empty() && e.commander_on_call.is_empty() {
        return Some(CommanderBasis::Unrestricted);
    }
    if let Some(role) = e
        .commander_from
        .iter()
        .filter(|r| **r != e.commander_role)
        .find(|r| holds_directly(policy, world, person, r))
    {
        return Some(CommanderBasis::Role { role: role.clone() });
    }
    let me = canonical(world, person);
    e.commander_on_call.iter().find_map(|rotation| {
        on_call_at(policy, world, rotation, at)
            .filter(|s| s.person == me)
            .map(|shift| CommanderBasis::OnCall { shift })
    })
}

/// The `emergency.eligible` entry the incident matches, if any.
pub fn eligibility<'p>(policy: &'p Policy, inc: &Incident) -> Option<&'p str> {
    policy.emergency.eligibility(
        &inc.severity,
        inc.kind.as_deref(),
        inc.cvss.map(|c| c.score()),
    )
}

/// The incident's severity, kind and CVSS score, for messages.
pub fn summary(inc: &Incident) -> String {
    let mut s = inc.severity.clone();
    if let Some(k) = &inc.kind {
        s.push_str(&format!(", {k}"));
    }
    if let Some(c) = inc.cvss {
        s.push_str(&format!(", CVSS {c}"));
    }
    s
}

/// A denying `emergency-incident-ineligible` reason when the incident is not eligible.
fn ineligible(policy: &Policy, inc: &Incident) -> Option<Reason> {
    if eligibility(policy, inc).is_some() {
        return None;
    }
    Some(Reason::deny(
        Code::EmergencyIncidentIneligible,
        format!(
            "incident {} ({}) is not one an emergency may be declared for",
            inc.id,
            summary(inc)
        ),
        json!({
            "incident": inc.id, "severity": inc.severity, "kind": inc.kind, "cvss": inc.cvss,
            "eligible": policy.emergency.eligible.keys().collect::<Vec<_>>(),
        }),
    ))
}

/// Post-incident duties of an emergency change that are overdue at `now`: the retrospective
/// (`emergency-retrospective-overdue`) and, when the policy requires one, the follow-up PR
/// (`emergency-follow-up-missing`). Empty for non-emergency changes and before the change started
/// deploying.
pub fn overdue(policy: &Policy, state: &ChangeState, now: Timestamp) -> Vec<Reason> {
    let mut out = Vec::new();
    let Some(em) = &state.emergency else {
        return out;
    };
    let Some(started) = state.first_entered(Status::Deploying) else {
        return out;
    };
    let within = policy.emergency.retrospective_within.get();
    let Ok(due) = started.checked_add(within) else {
        return out;
    };
    if now <= due {
        return out;
    }
    let base = json!({ "incident": em.incident, "deploy_started_at": started, "due_at": due, "within": policy.emergency.retrospective_within.to_string() });
    if em.retrospective.as_ref().is_none_or(|r| r.at > now) {
        out.push(Reason::info(
            Code::EmergencyRetrospectiveOverdue,
            format!(
                "retrospective for incident {} was due at {due}",
                em.incident
            ),
            base.clone(),
        ));
    }
    if policy.emergency.follow_up_pr && em.follow_up_pr.is_none() {
        out.push(Reason::info(
            Code::EmergencyFollowUpMissing,
            format!("no follow-up PR linked for the emergency change (due at {due})"),
            base,
        ));
    }
    out
}
