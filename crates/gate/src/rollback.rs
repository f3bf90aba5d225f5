//! Rollback governance: manual rollback requests that collect the category's rollback authority
//! from one or more people before the rollback action runs, the database rollback path, the
//! rollback testing evidence of high-risk changes, and what a manual rollback leaves behind (the
//! incident notice, the pending verification, the post-mortem) — pure, like the rest of the gate.
//!
//! Why requests and not one call: the policy's category-3 authority is *dual* ("Rollback requires
//! dual approval (Backend Lead + SRE Lead)"), so one person's call cannot be the whole decision. A
//! request ([`RollbackRequest`]) is opened with a reason, collects approvals (one person counts
//! once: two different people fill Backend Lead + SRE Lead unless the policy's
//! `separation_of_duties.one_person_many_roles` says one may fill both), and when one set of the
//! category's `rollback_authority` is covered it is *claimed* ([`RequestStatus::Executing`]) in
//! the same compare-and-swap write that recorded the last approval: only that writer runs the
//! action, so the action runs once however many approvals race. [`RollbackOp::Finish`] records
//! the action's result and, when it succeeded, moves the change to `rolled-back`.
//!
//! Who is on call: [`on_call`] is the one place that answers it (today the holders of the
//! `on-call-engineer` role; an on-call rota in the policy replaces its body).
//!
//! Files: this one (model, authority, commands); `rollback/aftercare.rs` (rollback testing, duties
//! after a category-3 deploy, what is overdue).

use changegate_policy::{Dur, Level, Policy, RoleId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::authority::{Actor, Authorized, Grant, Operation, Refusal, Via};
use crate::codes::RejectionCode;
use crate::model::{ChangeState, Person, StatusChange, WorldState};
use crate::people::{canonical, holding};
use crate::status::{Event, Status, transition};

mod aftercare;

pub use aftercare::{
    Duty, DutyKind, DutyRecord, ROLLBACK_PLAN_EVIDENCE, RollbackTest, overdue, record_duties,
    testing_reason,
};

/// The role whose holders are the on-call engineers (until the policy has an on-call rota).
pub const ON_CALL_ROLE: &str = "on-call-engineer";

/// The channel the incident notice of a manual rollback is for.
pub const INCIDENT_CHANNEL: &str = "slack:#incidents";

changegate_codes::codes! {
    /// Why a rollback command (`POST /api/v1/changes/{id}/rollbacks`, its approvals, post-mortem,
    /// rollback tests and duties) was refused; a refused command changes nothing.
    pub enum RollbackCode in "rollback" {
        /// The change is not deploying or deployed, so there is nothing to roll back (or, for a rollback test, it no longer takes pre-deployment evidence).
        RollbackStateInvalid = "rollback-state-invalid",
        /// A rollback request of the change is still pending or executing; approve it instead of opening another.
        RollbackAlreadyOpen = "rollback-already-open",
        /// No rollback request of the change has this id.
        RollbackUnknown = "rollback-unknown",
        /// The rollback request is no longer pending (it is executing, done or failed).
        RollbackNotPending = "rollback-not-pending",
        /// The caller does not hold the role named, or holds none of the roles the request still needs.
        RollbackRoleNotHeld = "rollback-role-not-held",
        /// The role named is in none of the authority sets this rollback needs.
        RollbackRoleNotNeeded = "rollback-role-not-needed",
        /// The person already approved this request: one person counts once (unless the policy lets one person fill many roles).
        RollbackApprovalDuplicate = "rollback-approval-duplicate",
        /// A rollback needs a reason.
        RollbackReasonRequired = "rollback-reason-required",
        /// A database rollback needs the downtime estimate (`downtime`, e.g. `3m`).
        RollbackDowntimeRequired = "rollback-downtime-required",
        /// The downtime estimate is above `[rollback.database] max_downtime` and the policy names no `long_downtime_approvers`.
        RollbackDowntimeExceeded = "rollback-downtime-exceeded",
        /// The server has no rollback action configured for this kind (`serve --rollback-action`, `--database-rollback-action` or `[rollback.database] command`).
        RollbackActionNotConfigured = "rollback-action-not-configured",
        /// The post-mortem does not answer every question of `[reports.retrospective]`.
        PostMortemIncomplete = "post-mortem-incomplete",
        /// The rollback request has not run (no post-mortem is owed yet).
        PostMortemNotDue = "post-mortem-not-due",
        /// The rollback test evidence is malformed (an empty environment, a negative duration).
        RollbackTestInvalid = "rollback-test-invalid",
        /// No duty of the change has this id.
        DutyUnknown = "duty-unknown",
        /// The duty is already recorded as done.
        DutyDone = "duty-done",
    }
}

/// Which rollback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackKind {
    /// The application (traffic back to the old version: `kubectl rollout undo …`).
    #[default]
    Application,
    /// The database migration (`npm run prisma:migrate:rollback`): the DBA Lead approves and
    /// executes, with a downtime estimate.
    Database,
}

impl RollbackKind {
    /// `application` or `database`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RollbackKind::Application => "application",
            RollbackKind::Database => "database",
        }
    }
}

/// Where a rollback request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestStatus {
    /// Collecting approvals.
    Pending,
    /// The authority is complete; the action is running (claimed by exactly one writer).
    Executing,
    /// The action succeeded; the change is rolled back.
    Done,
    /// The action failed; the change is unchanged (a new request may be opened).
    Failed,
}

/// One approval of a rollback request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackApproval {
    /// Who (canonical person id).
    pub person: Person,
    /// In which role.
    pub role: RoleId,
    /// When.
    pub at: Timestamp,
    /// The active incident whose assigned commander the person is, when the role is held that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

/// What the rollback action did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// What ran (the substituted command, or the webhook URL).
    pub ran: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// Exit status or HTTP status, and output (trimmed).
    pub detail: String,
    /// When it started.
    pub started: Timestamp,
    /// How long it took, in seconds (measured by the server).
    pub seconds: f64,
    /// Whether it finished within the limit: `[rollback] deadline` (application) or the downtime
    /// estimate (database).
    pub within_limit: bool,
    /// The server-run rollout that performed it (its rollback recorded the `roll-back`
    /// transition and the `rollback.triggered` event), when one was active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
}

/// The incident notice a manual rollback owes the incident channel (recorded here until a
/// notification outbox delivers it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// Channel (`slack:#incidents`).
    pub channel: String,
    /// The message.
    pub message: String,
    /// When it was recorded.
    pub at: Timestamp,
    /// `recorded` (no outbox yet), later `sent`.
    pub status: String,
}

/// The verification a manual rollback owes (health checks, metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// `pending` until a verification is recorded, then `passed` or `failed`.
    pub status: String,
    /// Due (the category's monitoring `watch` after the rollback).
    pub due_at: Timestamp,
    /// When the result was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Timestamp>,
    /// Who observed it (`integration:changegate-rollout`: the server's own checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Every check with its value and limit, as read.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub checks: serde_json::Value,
}

/// Record the result of the verification a done rollback owes (the server's own health and
/// metric checks after the rollback). Refused when the request is unknown, not done, or its
/// verification is already recorded.
pub fn record_verification(
    state: &mut ChangeState,
    request: &str,
    passed: bool,
    by: &str,
    checks: serde_json::Value,
    at: Timestamp,
) -> Result<(), RollbackError> {
    let idx = index(state, request)?;
    let r = &mut state.rollback.requests[idx];
    let Some(v) = r.verification.as_mut().filter(|v| v.status == "pending") else {
        return Err(err(
            RollbackCode::RollbackNotPending,
            format!("rollback request {request} owes no pending verification"),
        ));
    };
    v.status = if passed { "passed" } else { "failed" }.to_string();
    v.checked_at = Some(at);
    v.by = Some(by.to_string());
    v.checks = checks;
    Ok(())
}

/// One answered retrospective question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The question, as the policy words it.
    pub question: String,
    /// The answer.
    pub answer: String,
}

/// The post-mortem a manual rollback owes (`[rollback] post_mortem_within`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMortem {
    /// When it is due.
    pub due_at: Timestamp,
    /// When it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<Timestamp>,
    /// Who recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Person>,
    /// Link to the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The answers to `[reports.retrospective] questions`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
}

/// A manual rollback request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Id within the change (`rb-1`, `rb-2`, …).
    pub id: String,
    /// Application or database.
    pub kind: RollbackKind,
    /// Why.
    pub reason: String,
    /// Who opened it.
    pub opened_by: Person,
    /// When.
    pub opened_at: Timestamp,
    /// How the opener held the authority to open it (an [`Authorized`]'s `via`, as JSON).
    pub opened_via: serde_json::Value,
    /// Database rollbacks: the downtime estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<Dur>,
    /// Approvals, in order.
    #[serde(default)]
    pub approvals: Vec<RollbackApproval>,
    /// Where it is.
    pub status: RequestStatus,
    /// The authority set that the approvals completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<Vec<RoleId>>,
    /// Database rollbacks: the person who executes it (the approver in the executor role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<Person>,
    /// When the authority was complete and the action claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<Timestamp>,
    /// What the action did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// The incident notice (done rollbacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_notice: Option<Notice>,
    /// The verification owed (done rollbacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The post-mortem owed (done rollbacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_mortem: Option<PostMortem>,
}

/// Rollback requests and rollback tests of a change (`ChangeState::rollback`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackState {
    /// Manual rollback requests, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<RollbackRequest>,
    /// Staging rollback tests (evidence for the rollback-plan item of high-risk changes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<RollbackTest>,
}

impl RollbackState {
    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.tests.is_empty()
    }

    /// A request by id.
    pub fn request(&self, id: &str) -> Option<&RollbackRequest> {
        self.requests.iter().find(|r| r.id == id)
    }

    /// The pending or executing request, if any.
    pub fn open(&self) -> Option<&RollbackRequest> {
        self.requests
            .iter()
            .find(|r| matches!(r.status, RequestStatus::Pending | RequestStatus::Executing))
    }
}

/// A rollback command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RollbackOp {
    /// Open a request (and approve it in `role`, or in the first missing role the opener holds).
    Open {
        /// Application or database.
        kind: RollbackKind,
        /// Why.
        reason: String,
        /// Database: downtime estimate.
        #[serde(default)]
        downtime: Option<Dur>,
        /// Who.
        by: Person,
        /// Approve in this role as well.
        #[serde(default)]
        role: Option<RoleId>,
    },
    /// Approve a pending request in `role` (default: the first missing role the person holds).
    Approve {
        /// Request id.
        request: String,
        /// Who.
        by: Person,
        /// Role.
        #[serde(default)]
        role: Option<RoleId>,
    },
    /// The action ran (the server, after a claim).
    Finish {
        /// Request id.
        request: String,
        /// Its result.
        execution: Execution,
    },
    /// Record the post-mortem of a done rollback.
    PostMortem {
        /// Request id.
        request: String,
        /// Who.
        by: Person,
        /// Answers to `[reports.retrospective] questions`, in order.
        answers: Vec<String>,
        /// Link to the document.
        #[serde(default)]
        link: Option<String>,
    },
    /// Record a staging rollback test for the head commit.
    RecordTest {
        /// Who ran it.
        by: Person,
        /// Where (`staging`).
        environment: String,
        /// How long the rollback took.
        duration: Dur,
        /// Whether the application was healthy after it.
        health_ok: bool,
        /// Evidence link (CI job, runbook log).
        #[serde(default)]
        evidence: Option<String>,
    },
    /// Record a duty as done (the standby report, a daily status update).
    RecordDuty {
        /// Duty id (`standby`, `status-update-1`, …).
        duty: String,
        /// Who.
        by: Person,
        /// The report or update.
        note: String,
    },
}

/// A refused rollback command: nothing changes.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[error("{message}")]
pub struct RollbackError {
    /// Stable code.
    pub code: RollbackCode,
    /// For people.
    pub message: String,
    /// Where in the input, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

fn err(code: RollbackCode, message: impl Into<String>) -> RollbackError {
    RollbackError {
        code,
        message: message.into(),
        location: None,
    }
}

impl RollbackError {
    /// Located in the input.
    pub fn at(mut self, location: &str) -> Self {
        self.location = Some(location.to_string());
        self
    }
}

/// What a command did, beyond the new state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The request it concerned.
    pub request: Option<String>,
    /// This command completed the authority and claimed the action: the caller runs it (and
    /// only this caller).
    pub claimed: bool,
}

/// Whether `person` is an on-call engineer at `at`: today a holder of [`ON_CALL_ROLE`] (directly
/// or through a team). The one place that answers it: an on-call rota in the policy replaces it.
pub fn on_call(policy: &Policy, world: &WorldState, person: &str, _at: Timestamp) -> bool {
    holds_plain(policy, world, person, ON_CALL_ROLE)
}

/// The person holds `role` directly or through a team.
fn holds_plain(policy: &Policy, world: &WorldState, person: &str, role: &str) -> bool {
    let me = canonical(world, person);
    policy.roles.get(role).is_some_and(|def| {
        def.holders.iter().any(|h| match h.strip_prefix("team:") {
            Some(team) => world
                .teams
                .get(team)
                .is_some_and(|ms| ms.iter().any(|m| canonical(world, m) == me)),
            None => canonical(world, h) == me,
        })
    })
}

fn active_incidents(world: &WorldState, at: Timestamp) -> Vec<&crate::model::Incident> {
    world.incidents.iter().filter(|i| i.active_at(at)).collect()
}

/// Whether `person` holds `role` for a rollback of `state` at `at`, and through which active
/// incident when they hold the commander role as an incident's assigned commander.
fn holds_role(
    policy: &Policy,
    world: &WorldState,
    state: &ChangeState,
    person: &str,
    role: &str,
    at: Timestamp,
) -> Option<Option<String>> {
    if role == ON_CALL_ROLE {
        return on_call(policy, world, person, at).then_some(None);
    }
    if holding(policy, world, state, person, role).is_some() {
        return Some(None);
    }
    if role == policy.emergency.commander_role {
        let me = canonical(world, person);
        return active_incidents(world, at)
            .into_iter()
            .find(|i| {
                i.commander
                    .as_deref()
                    .is_some_and(|c| canonical(world, c) == me)
            })
            .map(|i| Some(i.id.clone()));
    }
    None
}

/// The authority sets a rollback of `kind` needs at `at`: the category's `rollback_authority`
/// (sets marked `during_active_incident` only while an incident is active), each extended for a
/// database rollback with `[rollback.database] approver` and `executor`, and with
/// `long_downtime_approvers` when the downtime estimate is above `max_downtime`.
pub fn required_sets(
    policy: &Policy,
    world: &WorldState,
    state: &ChangeState,
    kind: RollbackKind,
    downtime: Option<&Dur>,
    at: Timestamp,
) -> Vec<Vec<RoleId>> {
    let level = crate::approval::effective_level(policy, state);
    let Some((_, cat)) = policy.category(level) else {
        return Vec::new();
    };
    let active = !active_incidents(world, at).is_empty();
    let db = &policy.rollback.database;
    cat.rollback_authority
        .iter()
        .filter(|s| !s.during_active_incident || active)
        .filter(|s| !s.all_of.is_empty())
        .map(|s| {
            let mut roles = s.all_of.clone();
            if kind == RollbackKind::Database {
                let mut extra = vec![db.approver.clone(), db.executor.clone()];
                if downtime.is_some_and(|d| d.get() > db.max_downtime.get()) {
                    extra.extend(db.long_downtime_approvers.iter().cloned());
                }
                for r in extra {
                    if !roles.contains(&r) {
                        roles.push(r);
                    }
                }
            }
            roles
        })
        .collect()
}

fn level_of(policy: &Policy, state: &ChangeState) -> Level {
    crate::approval::effective_level(policy, state)
}

/// The first set whose every role has an approval.
pub fn complete_set(sets: &[Vec<RoleId>], approvals: &[RollbackApproval]) -> Option<Vec<RoleId>> {
    sets.iter()
        .find(|s| s.iter().all(|r| approvals.iter().any(|a| &a.role == r)))
        .cloned()
}

/// For each set, the roles still without an approval.
pub fn missing(sets: &[Vec<RoleId>], approvals: &[RollbackApproval]) -> Vec<Vec<RoleId>> {
    sets.iter()
        .map(|s| {
            s.iter()
                .filter(|r| !approvals.iter().any(|a| &a.role == *r))
                .cloned()
                .collect()
        })
        .collect()
}

fn refusal(world: &WorldState, actor: &Actor, op: Operation, needs: String) -> Refusal {
    Refusal {
        operation: op,
        person: canonical(world, &actor.person),
        code: op
            .row()
            .code
            .unwrap_or(RejectionCode::RollbackAuthorityRequired),
        needs,
    }
}

/// The operation a rollback command is.
pub fn operation(op: &RollbackOp) -> Operation {
    match op {
        RollbackOp::Open { .. } => Operation::OpenRollback,
        RollbackOp::Approve { .. } | RollbackOp::Finish { .. } => Operation::ApproveRollback,
        RollbackOp::PostMortem { .. } => Operation::PostMortem,
        RollbackOp::RecordTest { .. } => Operation::RecordRollbackTest,
        RollbackOp::RecordDuty { .. } => Operation::RecordDuty,
    }
}

/// May `actor` apply the rollback command `op` to `state` at `at`? The rows of
/// [`crate::authority::TABLE`] for the rollback operations; approvals themselves are checked by
/// [`apply`]'s rules (role held, role needed, one person once).
pub fn authorize(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    actor: &Actor,
    op: &RollbackOp,
    at: Timestamp,
) -> Result<Authorized, Refusal> {
    let operation = operation(op);
    let row = operation.row();
    if actor.admin {
        return Ok(Authorized {
            operation,
            via: Via::Admin,
        });
    }
    if actor.integration && row.integration {
        return Ok(Authorized {
            operation,
            via: Via::Integration,
        });
    }
    let me = actor.person.as_str();
    // "or an SRE lead": the roles the policy names for retrospectives (`emergency.retrospective_by`,
    // the seed: `sre-lead`), which a post-mortem and a deployment's duties are kin to.
    let sre = || {
        policy
            .emergency
            .retrospective_by
            .iter()
            .find(|r| holds_plain(policy, world, me, r))
            .map(|r| Via::Roles {
                roles: vec![r.clone()],
            })
    };
    let granted = match (row.grant, op) {
        (Grant::Anyone, _) => Some(Via::Anyone),
        (Grant::RoleHolder, _) => Some(Via::RoleRules),
        (Grant::RollbackTrigger, RollbackOp::Open { kind, downtime, .. }) => {
            trigger(policy, world, state, me, *kind, downtime.as_ref(), at)
        }
        (Grant::PostMortemOwner, RollbackOp::PostMortem { request, .. }) => {
            let me_c = canonical(world, me);
            if state.rollback.request(request).is_none() {
                // An unknown request is the command's error (`rollback-unknown`).
                return Ok(Authorized {
                    operation,
                    via: Via::RoleRules,
                });
            }
            state
                .rollback
                .request(request)
                .and_then(|r| {
                    let involved = canonical(world, &r.opened_by) == me_c
                        || r.approvals
                            .iter()
                            .any(|a| canonical(world, &a.person) == me_c);
                    involved.then_some(Via::RoleRules)
                })
                .or_else(|| {
                    holds_role(
                        policy,
                        world,
                        state,
                        me,
                        &policy.emergency.commander_role,
                        at,
                    )
                    .flatten()
                    .map(|incident| Via::IncidentCommander { incident })
                })
                .or_else(sre)
        }
        (Grant::DutyOwner, RollbackOp::RecordDuty { duty, .. }) => {
            match state.duties.iter().find(|d| d.id == *duty) {
                // An unknown duty is the command's error (`duty-unknown`), not an authority's.
                None => Some(Via::RoleRules),
                Some(d) => (canonical(world, &d.owner) == canonical(world, me))
                    .then_some(Via::RoleRules)
                    .or_else(sre),
            }
        }
        _ => None,
    };
    granted
        .map(|via| Authorized { operation, via })
        .ok_or_else(|| refusal(world, actor, operation, needs(policy, state, row.grant)))
}

fn needs(policy: &Policy, state: &ChangeState, grant: Grant) -> String {
    let level = level_of(policy, state);
    match grant {
        Grant::RollbackTrigger => {
            let roles: Vec<String> = policy
                .category(level)
                .map(|(_, c)| {
                    c.rollback_authority
                        .iter()
                        .flat_map(|s| s.all_of.iter().cloned())
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{} (category {level}: {})",
                grant.describe(),
                roles.join(", ")
            )
        }
        g => g.describe().to_string(),
    }
}

/// The opener's authority: an on-call engineer, the commander of an active incident, or a holder
/// of a role of one of the sets the rollback needs.
fn trigger(
    policy: &Policy,
    world: &WorldState,
    state: &ChangeState,
    me: &str,
    kind: RollbackKind,
    downtime: Option<&Dur>,
    at: Timestamp,
) -> Option<Via> {
    if on_call(policy, world, me, at) {
        return Some(Via::Roles {
            roles: vec![ON_CALL_ROLE.to_string()],
        });
    }
    if let Some(Some(incident)) = holds_role(
        policy,
        world,
        state,
        me,
        &policy.emergency.commander_role,
        at,
    ) {
        return Some(Via::IncidentCommander { incident });
    }
    required_sets(policy, world, state, kind, downtime, at)
        .iter()
        .flatten()
        .find(|r| holds_role(policy, world, state, me, r, at).is_some())
        .map(|r| Via::Roles {
            roles: vec![r.clone()],
        })
}

/// Record `person`'s approval of request `idx` in `role` (or the first missing role they hold),
/// checking the rules; claim the request when its authority is complete. `optional`: holding no
/// missing role is no error (an opener who only triggers).
#[allow(clippy::too_many_arguments)] // the command's parts, passed through from `apply`
fn approve(
    policy: &Policy,
    state: &mut ChangeState,
    world: &WorldState,
    idx: usize,
    person: &str,
    role: Option<&str>,
    at: Timestamp,
    optional: bool,
) -> Result<bool, RollbackError> {
    let req = &state.rollback.requests[idx];
    let sets = required_sets(policy, world, state, req.kind, req.downtime.as_ref(), at);
    let me = canonical(world, person);
    let mine: Vec<&RollbackApproval> = req.approvals.iter().filter(|a| a.person == me).collect();
    let many = policy.separation_of_duties.one_person_many_roles;
    let open = missing(&sets, &req.approvals);
    let chosen = match role {
        Some(r) => {
            if !sets.iter().any(|s| s.iter().any(|x| x == r)) {
                let needed: Vec<String> = sets.iter().map(|s| s.join(" + ")).collect();
                return Err(err(
                    RollbackCode::RollbackRoleNotNeeded,
                    format!(
                        "`{r}` is in none of the authority sets this rollback needs ({})",
                        needed.join("; ")
                    ),
                )
                .at("body `role`"));
            }
            let Some(incident) = holds_role(policy, world, state, person, r, at) else {
                return Err(err(
                    RollbackCode::RollbackRoleNotHeld,
                    format!("{me} does not hold the role `{r}`"),
                )
                .at("body `role`"));
            };
            Some((r.to_string(), incident))
        }
        None => open
            .iter()
            .flatten()
            .find_map(|r| holds_role(policy, world, state, person, r, at).map(|i| (r.clone(), i))),
    };
    let Some((role, incident)) = chosen else {
        if optional {
            return Ok(false);
        }
        let still: Vec<String> = open.iter().map(|s| s.join(" + ")).collect();
        return Err(err(
            RollbackCode::RollbackRoleNotHeld,
            format!(
                "{me} holds none of the roles this rollback still needs ({})",
                still.join("; ")
            ),
        ));
    };
    if mine.iter().any(|a| a.role == role) || (!many && !mine.is_empty()) {
        if optional {
            return Ok(false);
        }
        return Err(err(
            RollbackCode::RollbackApprovalDuplicate,
            format!(
                "{me} already approved this rollback (as {}); one person counts once, so another person must approve in `{role}`",
                mine.iter()
                    .map(|a| a.role.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let req = &mut state.rollback.requests[idx];
    req.approvals.push(RollbackApproval {
        person: me,
        role,
        at,
        incident,
    });
    if let Some(set) = complete_set(&sets, &req.approvals) {
        let db = &policy.rollback.database;
        if req.kind == RollbackKind::Database {
            req.executor = req
                .approvals
                .iter()
                .find(|a| a.role == db.executor)
                .map(|a| a.person.clone());
        }
        req.granted_by = Some(set);
        req.status = RequestStatus::Executing;
        req.claimed_at = Some(at);
        return Ok(true);
    }
    Ok(false)
}

/// The longest a rollback action of `kind` may run before the server stops it: four times its
/// limit (`[rollback] deadline` for an application rollback, the downtime estimate or
/// `[rollback.database] max_downtime` for a database one), and at least `max_downtime`. The limit
/// itself is measured and recorded, not enforced by killing a rollback half-way.
pub fn action_hard_stop(
    policy: &Policy,
    kind: RollbackKind,
    downtime: Option<&Dur>,
) -> jiff::SignedDuration {
    let limit = match (kind, downtime) {
        (RollbackKind::Database, Some(d)) => d.get(),
        (RollbackKind::Database, None) => policy.rollback.database.max_downtime.get(),
        (RollbackKind::Application, _) => policy.rollback.deadline.get(),
    };
    let floor = policy.rollback.database.max_downtime.get();
    let four = jiff::SignedDuration::from_secs_f64(limit.as_secs_f64() * 4.0);
    four.max(floor)
}

/// How long after its claim an `executing` request with no recorded result counts as
/// interrupted (the server stopped between running the action and recording it): the action's
/// hard stop plus one minute.
pub fn interrupted_after(policy: &Policy, request: &RollbackRequest) -> jiff::SignedDuration {
    action_hard_stop(policy, request.kind, request.downtime.as_ref())
        .saturating_add(jiff::SignedDuration::from_mins(1))
}

/// Requests claimed longer ago than [`interrupted_after`] without a result are marked `failed`
/// with an `interrupted` execution, so a new request can be opened. The action may have run:
/// the new request collects its authority afresh, and its approvers are told to check first.
fn interrupt_stale(policy: &Policy, state: &mut ChangeState, at: Timestamp) {
    for r in &mut state.rollback.requests {
        if r.status != RequestStatus::Executing {
            continue;
        }
        let Some(claimed) = r.claimed_at else {
            continue;
        };
        let after = interrupted_after(policy, r);
        if claimed.checked_add(after).is_ok_and(|due| due <= at) {
            r.status = RequestStatus::Failed;
            r.finished_at = Some(at);
            r.execution = Some(Execution {
                ran: String::new(),
                ok: false,
                detail: format!(
                    "interrupted: no result was recorded within {after:#} of the claim (the server stopped); the action may have run, check the service before approving a new request"
                ),
                started: claimed,
                seconds: 0.0,
                within_limit: false,
                rollout: None,
            });
        }
    }
}

fn index(state: &ChangeState, id: &str) -> Result<usize, RollbackError> {
    state
        .rollback
        .requests
        .iter()
        .position(|r| r.id == id)
        .ok_or_else(|| {
            err(
                RollbackCode::RollbackUnknown,
                format!("no rollback request {id}"),
            )
        })
}

/// Apply a rollback command at `at` (after [`authorize`]). Nothing changes when it is refused.
pub fn apply(
    policy: &Policy,
    state: &mut ChangeState,
    world: &WorldState,
    actor: &Actor,
    op: &RollbackOp,
    at: Timestamp,
) -> Result<Applied, RollbackError> {
    let mut next = state.clone();
    let applied = apply_inner(policy, &mut next, world, actor, op, at)?;
    *state = next;
    Ok(applied)
}

fn apply_inner(
    policy: &Policy,
    state: &mut ChangeState,
    world: &WorldState,
    actor: &Actor,
    op: &RollbackOp,
    at: Timestamp,
) -> Result<Applied, RollbackError> {
    match op {
        RollbackOp::Open {
            kind,
            reason,
            downtime,
            by,
            role,
        } => {
            if reason.trim().is_empty() {
                return Err(err(
                    RollbackCode::RollbackReasonRequired,
                    "a rollback needs a reason",
                )
                .at("body `reason`"));
            }
            if transition(state.status, Event::RollBack).is_err() {
                return Err(err(
                    RollbackCode::RollbackStateInvalid,
                    format!(
                        "the change is {}: only a deploying or deployed change is rolled back",
                        state.status
                    ),
                ));
            }
            interrupt_stale(policy, state, at);
            if let Some(open) = state.rollback.open() {
                return Err(err(
                    RollbackCode::RollbackAlreadyOpen,
                    format!(
                        "rollback request {} is {}; approve it (POST …/rollbacks/{}/approvals) instead",
                        open.id,
                        serde_json::to_value(open.status)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default(),
                        open.id
                    ),
                ));
            }
            let db = &policy.rollback.database;
            if *kind == RollbackKind::Database {
                match downtime {
                    None => {
                        return Err(err(
                            RollbackCode::RollbackDowntimeRequired,
                            format!(
                                "a database rollback needs the downtime estimate (`downtime`, at most {} without further approval)",
                                db.max_downtime
                            ),
                        )
                        .at("body `downtime`"));
                    }
                    Some(d)
                        if d.get() > db.max_downtime.get()
                            && db.long_downtime_approvers.is_empty() =>
                    {
                        return Err(err(
                            RollbackCode::RollbackDowntimeExceeded,
                            format!(
                                "the downtime estimate {d} is above the policy's max_downtime {} and the policy names no long_downtime_approvers",
                                db.max_downtime
                            ),
                        )
                        .at("body `downtime`"));
                    }
                    Some(_) => {}
                }
            }
            let opened_via = authorize(policy, state, world, actor, op, at)
                .ok()
                .and_then(|a| serde_json::to_value(a.via).ok())
                .unwrap_or_default();
            let id = format!("rb-{}", state.rollback.requests.len() + 1);
            state.rollback.requests.push(RollbackRequest {
                id: id.clone(),
                kind: *kind,
                reason: reason.trim().to_string(),
                opened_by: canonical(world, by),
                opened_at: at,
                opened_via,
                downtime: if *kind == RollbackKind::Database {
                    downtime.clone()
                } else {
                    None
                },
                approvals: Vec::new(),
                status: RequestStatus::Pending,
                granted_by: None,
                executor: None,
                claimed_at: None,
                execution: None,
                finished_at: None,
                incident_notice: None,
                verification: None,
                post_mortem: None,
            });
            let idx = state.rollback.requests.len() - 1;
            // Integrations and admins open; only people approve.
            let claimed = if actor.integration && !actor.admin {
                false
            } else {
                approve(
                    policy,
                    state,
                    world,
                    idx,
                    by,
                    role.as_deref(),
                    at,
                    role.is_none(),
                )?
            };
            Ok(Applied {
                request: Some(id),
                claimed,
            })
        }
        RollbackOp::Approve { request, by, role } => {
            let idx = index(state, request)?;
            let r = &state.rollback.requests[idx];
            if r.status != RequestStatus::Pending {
                return Err(err(
                    RollbackCode::RollbackNotPending,
                    format!("rollback request {request} is no longer pending"),
                ));
            }
            let claimed = approve(policy, state, world, idx, by, role.as_deref(), at, false)?;
            Ok(Applied {
                request: Some(request.clone()),
                claimed,
            })
        }
        RollbackOp::Finish { request, execution } => {
            let idx = index(state, request)?;
            if state.rollback.requests[idx].status != RequestStatus::Executing {
                return Err(err(
                    RollbackCode::RollbackNotPending,
                    format!("rollback request {request} is not executing"),
                ));
            }
            let level = level_of(policy, state);
            let watch = policy
                .category(level)
                .map(|(_, c)| c.monitoring.watch.get())
                .unwrap_or(jiff::SignedDuration::from_hours(1));
            let ok = execution.ok;
            let by = {
                let r = &state.rollback.requests[idx];
                r.executor
                    .clone()
                    .or_else(|| r.approvals.last().map(|a| a.person.clone()))
                    .unwrap_or_else(|| r.opened_by.clone())
            };
            if ok && let Ok(to) = transition(state.status, Event::RollBack) {
                state.history.push(StatusChange {
                    from: state.status,
                    to,
                    at,
                    by: Some(by),
                });
                state.status = to;
            }
            let r = &mut state.rollback.requests[idx];
            r.execution = Some(execution.clone());
            r.finished_at = Some(at);
            if ok {
                r.status = RequestStatus::Done;
                r.incident_notice = Some(Notice {
                    channel: INCIDENT_CHANNEL.to_string(),
                    message: format!(
                        "{} rolled back ({} rollback, {:.1}s): {}",
                        state.change.id,
                        r.kind.as_str(),
                        execution.seconds,
                        r.reason
                    ),
                    at,
                    status: "recorded".to_string(),
                });
                r.verification = Some(Verification {
                    status: "pending".to_string(),
                    due_at: at.checked_add(watch).unwrap_or(at),
                    checked_at: None,
                    by: None,
                    checks: serde_json::Value::Null,
                });
                r.post_mortem = Some(PostMortem {
                    due_at: at
                        .checked_add(policy.rollback.post_mortem_within.get())
                        .unwrap_or(at),
                    recorded_at: None,
                    by: None,
                    link: None,
                    answers: Vec::new(),
                });
            } else {
                r.status = RequestStatus::Failed;
            }
            Ok(Applied {
                request: Some(request.clone()),
                claimed: false,
            })
        }
        RollbackOp::PostMortem {
            request,
            by,
            answers,
            link,
        } => {
            let idx = index(state, request)?;
            let questions = &policy.reports.retrospective.questions;
            let r = &state.rollback.requests[idx];
            if r.status != RequestStatus::Done || r.post_mortem.is_none() {
                return Err(err(
                    RollbackCode::PostMortemNotDue,
                    format!("rollback request {request} has not run; no post-mortem is owed"),
                ));
            }
            if answers.len() != questions.len() {
                return Err(err(
                    RollbackCode::PostMortemIncomplete,
                    format!(
                        "a post-mortem answers the policy's {} retrospective questions in order ({} answers given): {}",
                        questions.len(),
                        answers.len(),
                        questions.join(" | ")
                    ),
                )
                .at("body `answers`"));
            }
            if let Some(i) = answers.iter().position(|a| a.trim().is_empty()) {
                return Err(err(
                    RollbackCode::PostMortemIncomplete,
                    format!("question {} is not answered: {}", i + 1, questions[i]),
                )
                .at(&format!("body `answers[{i}]`")));
            }
            let pm = state.rollback.requests[idx]
                .post_mortem
                .as_mut()
                .ok_or_else(|| err(RollbackCode::PostMortemNotDue, "no post-mortem is owed"))?;
            pm.recorded_at = Some(at);
            pm.by = Some(canonical(world, by));
            pm.link = link.clone();
            pm.answers = questions
                .iter()
                .zip(answers)
                .map(|(q, a)| Answer {
                    question: q.clone(),
                    answer: a.trim().to_string(),
                })
                .collect();
            Ok(Applied {
                request: Some(request.clone()),
                claimed: false,
            })
        }
        RollbackOp::RecordTest {
            by,
            environment,
            duration,
            health_ok,
            evidence,
        } => {
            if !state.status.accepts_approvals() {
                return Err(err(
                    RollbackCode::RollbackStateInvalid,
                    format!(
                        "a change that is {} takes no more pre-deployment evidence",
                        state.status
                    ),
                ));
            }
            if environment.trim().is_empty() {
                return Err(err(
                    RollbackCode::RollbackTestInvalid,
                    "name the environment the rollback was tested in (`staging`)",
                )
                .at("body `environment`"));
            }
            state.rollback.tests.push(RollbackTest {
                by: canonical(world, by),
                environment: environment.trim().to_string(),
                duration: duration.clone(),
                health_ok: *health_ok,
                evidence: evidence.clone(),
                head_commit: state.change.head_commit.clone(),
                at,
            });
            Ok(Applied::default())
        }
        RollbackOp::RecordDuty { duty, by, note } => {
            let d = state
                .duties
                .iter_mut()
                .find(|d| d.id == *duty)
                .ok_or_else(|| {
                    err(
                        RollbackCode::DutyUnknown,
                        format!("no duty {duty} on this change"),
                    )
                    .at("path `duty`")
                })?;
            if d.done.is_some() {
                return Err(err(
                    RollbackCode::DutyDone,
                    format!("duty {duty} is already done"),
                ));
            }
            if note.trim().is_empty() {
                return Err(err(
                    RollbackCode::RollbackTestInvalid,
                    "a duty record needs a note",
                )
                .at("body `note`"));
            }
            d.done = Some(DutyRecord {
                by: canonical(world, by),
                at,
                note: note.trim().to_string(),
            });
            Ok(Applied::default())
        }
    }
}

/// The state a request needs right now: for each set, the roles still missing.
pub fn still_missing(
    policy: &Policy,
    world: &WorldState,
    state: &ChangeState,
    request: &RollbackRequest,
    at: Timestamp,
) -> Vec<Vec<RoleId>> {
    let sets = required_sets(
        policy,
        world,
        state,
        request.kind,
        request.downtime.as_ref(),
        at,
    );
    missing(&sets, &request.approvals)
}

/// Whether a status allows a rollback request at all.
pub fn may_roll_back(status: Status) -> bool {
    transition(status, Event::RollBack).is_ok()
}

#[cfg(test)]
mod tests;
