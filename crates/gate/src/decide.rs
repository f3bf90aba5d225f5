//! The decision function: may this change be deployed at this instant, and every reason why.
//!
//! Deny by default: `allowed` starts false and becomes true only when every rule was evaluated and
//! none denies. No rule short-circuits another (except that an unknown category leaves nothing to
//! evaluate against), so a denied change lists *all* that stands in its way, and the same inputs
//! give byte-identical output (reasons are sorted; nothing iterates a hash map; "now" is an
//! argument).

use changegate_policy::{Level, Policy, RoleId};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::codes::Code;
use crate::model::{ChangeState, WorldState};
use crate::reason::{Reason, sort};
use crate::status::Status;
use crate::{approval, checklist, emergency, lead_time, window};

/// Gate settings the policy model does not (yet) carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateSettings {
    /// How long a deployment is assumed to run when the change does not say: the whole of it
    /// must fit the window. Default 30 minutes (the standard canary plan's span).
    pub default_deploy_duration: SignedDuration,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            default_deploy_duration: SignedDuration::from_mins(30),
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// May the change be deployed at `at`?
    pub allowed: bool,
    /// The change decided on.
    pub change_id: String,
    /// The instant decided for.
    pub at: Timestamp,
    /// The change's state.
    pub status: Status,
    /// Effective category level (`None` only if it could not be determined).
    pub category: Option<Level>,
    /// Every rule that applied: denials first, then by code.
    pub reasons: Vec<Reason>,
    /// Roles that must approve.
    pub required_roles: Vec<RoleId>,
    /// Required roles without a valid approval.
    pub missing_roles: Vec<RoleId>,
    /// When the window denies: the earliest start at which the change fits.
    pub next_slot: Option<Timestamp>,
}

impl Decision {
    /// Codes of the denying reasons, sorted and de-duplicated.
    pub fn denying_codes(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self
            .reasons
            .iter()
            .filter(|r| r.denies)
            .map(|r| r.code.as_str())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    /// What emergency exceptions lifted (`emergency-exception-lift` reasons: `maintenance-announcement`,
    /// lead-time ids), in reason order: what reports count.
    pub fn emergency_lifts(&self) -> Vec<&str> {
        self.reasons
            .iter()
            .filter(|r| r.code == Code::EmergencyExceptionLift)
            .filter_map(|r| r.details["lift"].as_str())
            .collect()
    }
    /// Codes of all reasons, sorted and de-duplicated.
    pub fn codes(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.reasons.iter().map(|r| r.code.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Decide with the default [`GateSettings`].
pub fn decide(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    now: Timestamp,
) -> Decision {
    decide_with(policy, &GateSettings::default(), state, world, now)
}

/// Decide whether `state`'s change may be deployed at `now`.
pub fn decide_with(
    policy: &Policy,
    settings: &GateSettings,
    state: &ChangeState,
    world: &WorldState,
    now: Timestamp,
) -> Decision {
    let mut reasons = Vec::new();
    let mut decision = Decision {
        allowed: false,
        change_id: state.change.id.clone(),
        at: now,
        status: state.status,
        category: None,
        reasons: Vec::new(),
        required_roles: Vec::new(),
        missing_roles: Vec::new(),
        next_slot: None,
    };
    if !state.status.is_deployable() {
        reasons.push(Reason::deny(
            Code::StateInvalid,
            format!("the change is {}; only approved, scheduled or deploying changes may deploy", state.status),
            json!({ "status": state.status, "deployable": [Status::Approved, Status::Scheduled, Status::Deploying] }),
        ));
    }
    let req = match approval::requirements(policy, state) {
        Ok(r) => r,
        Err(level) => {
            reasons.push(Reason::deny(
                Code::CategoryUnknown,
                format!("category level {level} is not defined by the policy"),
                json!({ "category": level, "defined": policy.levels() }),
            ));
            decision.category = Some(level);
            sort(&mut reasons);
            decision.reasons = reasons;
            return decision;
        }
    };
    decision.category = Some(req.level);
    decision.required_roles = req.roles.clone();

    let approvals = approval::evaluate(policy, state, world, &req);
    decision.missing_roles = approvals.missing.clone();
    let deploy_approvals = approval::evaluate_deploy(policy, state, world, &req);
    let approvals_ok =
        !approvals.reasons.iter().any(|r| r.denies) && !deploy_approvals.iter().any(|r| r.denies);
    reasons.extend(approvals.reasons);
    reasons.extend(deploy_approvals);

    let (em, _override) = emergency::evaluate(policy, state, world, &req, now);
    reasons.extend(em);
    // An emergency exception (category 3: approved by the CTO) keeps the category and lifts what
    // the category's `emergency_exception.lifts` names; each lift is a reason.
    let lift = window::emergency_lift(policy, state, world, req.level);
    reasons.extend(lead_time::evaluate_lifted(
        policy,
        state,
        req.level,
        now,
        lift.as_ref(),
    ));

    let (duration, rollout) =
        window::deploy_span(policy, state, req.level, settings.default_deploy_duration);
    reasons.extend(rollout);
    let win = window::evaluate(
        policy,
        state,
        world,
        req.level,
        now,
        duration,
        lift.as_ref(),
    );
    let window_ok = win.allowed && !win.reasons.iter().any(|r| r.denies);
    decision.next_slot = win.next_slot;
    reasons.extend(win.reasons);

    reasons.extend(checklist::evaluate(
        policy,
        state,
        world,
        req.level,
        approvals_ok,
        window_ok,
    ));
    reasons.extend(emergency::overdue(policy, state, now));

    sort(&mut reasons);
    decision.allowed = !reasons.iter().any(|r| r.denies);
    decision.reasons = reasons;
    decision
}
