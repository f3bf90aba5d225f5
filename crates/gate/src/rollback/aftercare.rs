//! Before and after a deployment: the staging rollback test a high-risk change must show
//! (`[rollback.testing]`), the duties a category-3 deployment leaves (Incident Commander standby,
//! daily status updates), and what is overdue (post-mortems, duties).

use changegate_policy::{Dur, Policy};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::codes::Code;
use crate::model::{ChangeState, Person, WorldState};
use crate::people::canonical;
use crate::reason::Reason;
use crate::status::Status;

use super::RequestStatus;

/// The evidence kind of the checklist item that documents the rollback plan (the seed's
/// `rollback-plan`): for the categories of `[rollback.testing] applies_to` it also needs a staging
/// rollback test ([`testing_reason`]).
pub const ROLLBACK_PLAN_EVIDENCE: &str = "rollback-plan";

/// The environment a rollback test must have run in.
pub const TEST_ENVIRONMENT: &str = "staging";

/// A rollback tested in staging: the structured evidence of `[rollback.testing]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackTest {
    /// Who ran it.
    pub by: Person,
    /// Where (`staging`).
    pub environment: String,
    /// Measured duration of the rollback.
    pub duration: Dur,
    /// The application was healthy after the rollback.
    pub health_ok: bool,
    /// Evidence link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// The head commit it tested.
    pub head_commit: String,
    /// When it was recorded.
    pub at: Timestamp,
}

/// What a duty is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DutyKind {
    /// Incident Commander on standby after a category-3 deploy; done by the standby report at
    /// its end.
    Standby,
    /// A daily status update after a category-3 deploy.
    StatusUpdate,
}

/// A duty done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyRecord {
    /// Who.
    pub by: Person,
    /// When.
    pub at: Timestamp,
    /// The report or update.
    pub note: String,
}

/// A tracked duty with an owner and a due time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Duty {
    /// Id within the change (`standby`, `status-update-1`, …).
    pub id: String,
    /// What.
    pub kind: DutyKind,
    /// Who owes it.
    pub owner: Person,
    /// From when (the standby period starts at the deploy's completion).
    pub starts_at: Timestamp,
    /// Due.
    pub due_at: Timestamp,
    /// Done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<DutyRecord>,
}

/// The standby commander of a category-3 deploy: the policy says the Incident Commander is "on-call
/// SRE or Backend Lead", so the change's approver in the first `emergency.commander_from` role
/// that approved it (the seed: the SRE Lead, else the Backend Lead), else whoever completed it.
fn standby_owner(policy: &Policy, world: &WorldState, state: &ChangeState, by: &str) -> Person {
    policy
        .emergency
        .commander_from
        .iter()
        .find_map(|role| {
            state
                .approvals
                .iter()
                .rev()
                .find(|a| &a.role == role)
                .map(|a| canonical(world, &a.person))
        })
        .unwrap_or_else(|| canonical(world, by))
}

/// The owner of the daily status updates: whoever completed the deployment, or (for an
/// integration) the first author.
fn status_owner(world: &WorldState, state: &ChangeState, by: &str) -> Person {
    if by.starts_with("integration:") || by.is_empty() {
        state
            .change
            .authors
            .first()
            .map(|a| canonical(world, a))
            .unwrap_or_else(|| by.to_string())
    } else {
        canonical(world, by)
    }
}

/// Record the duties of a completed deployment at `at`, by `by` (called by the `complete`
/// transition): for a category whose monitoring names `incident_commander_standby` and
/// `daily_status_days` (the seed: category 3, 4 hours and 3 days), a standby duty due at the end
/// of the standby and one status update due each day.
pub fn record_duties(
    policy: &Policy,
    state: &mut ChangeState,
    world: &WorldState,
    by: Option<&str>,
    at: Timestamp,
) {
    let level = crate::approval::effective_level(policy, state);
    let Some((_, cat)) = policy.category(level) else {
        return;
    };
    let by = by.unwrap_or("");
    let mut duties = Vec::new();
    if let Some(standby) = &cat.monitoring.incident_commander_standby {
        duties.push(Duty {
            id: "standby".to_string(),
            kind: DutyKind::Standby,
            owner: standby_owner(policy, world, state, by),
            starts_at: at,
            due_at: at.checked_add(standby.get()).unwrap_or(at),
            done: None,
        });
    }
    for day in 1..=cat.monitoring.daily_status_days.unwrap_or(0) {
        let due = at
            .checked_add(SignedDuration::from_hours(24 * i64::from(day)))
            .unwrap_or(at);
        duties.push(Duty {
            id: format!("status-update-{day}"),
            kind: DutyKind::StatusUpdate,
            owner: status_owner(world, state, by),
            starts_at: at
                .checked_add(SignedDuration::from_hours(24 * i64::from(day - 1)))
                .unwrap_or(at),
            due_at: due,
            done: None,
        });
    }
    for d in duties {
        if !state.duties.iter().any(|x| x.id == d.id) {
            state.duties.push(d);
        }
    }
}

/// The rollback-testing reason of the rollback-plan item for a change whose category is in
/// `[rollback.testing] applies_to` (`None` otherwise): the latest staging rollback test for the
/// head commit must have run in `staging`, left the application healthy and taken less than
/// `max_duration`.
pub fn testing_reason(
    policy: &Policy,
    state: &ChangeState,
    level: changegate_policy::Level,
    item: &str,
) -> Option<Reason> {
    let testing = &policy.rollback.testing;
    if !testing.applies_to.contains(&level) {
        return None;
    }
    let head = &state.change.head_commit;
    let max = &testing.max_duration;
    let base = json!({ "item": item, "max_duration": max.to_string(), "requirements": testing.requirements });
    let latest = state
        .rollback
        .tests
        .iter()
        .rev()
        .find(|t| &t.head_commit == head);
    let Some(t) = latest else {
        let older = state.rollback.tests.len();
        return Some(Reason::deny(
            Code::RollbackTestMissing,
            format!(
                "`{item}`: a category-{level} change needs a tested rollback: record a staging rollback test for {head} (its measured duration, under {max}, and the health after it){}",
                if older > 0 {
                    " — the tests on record are for older commits"
                } else {
                    ""
                }
            ),
            crate::approval::with(base, json!({ "head_commit": head, "older_tests": older })),
        ));
    };
    let test = json!({ "test": t });
    let detail = crate::approval::with(base, test);
    if t.environment != TEST_ENVIRONMENT {
        return Some(Reason::deny(
            Code::RollbackTestNotStaging,
            format!(
                "`{item}`: the rollback was tested in `{}`, not in {TEST_ENVIRONMENT}",
                t.environment
            ),
            detail,
        ));
    }
    if !t.health_ok {
        return Some(Reason::deny(
            Code::RollbackTestUnhealthy,
            format!("`{item}`: the application was not healthy after the staging rollback"),
            detail,
        ));
    }
    if t.duration.get() >= max.get() {
        return Some(Reason::deny(
            Code::RollbackTestTooSlow,
            format!(
                "`{item}`: the staging rollback took {}, the policy's target is under {max}",
                t.duration
            ),
            detail,
        ));
    }
    Some(Reason::info(
        Code::RollbackTestPassed,
        format!(
            "`{item}`: rollback tested in staging in {} (under {max}), healthy afterwards",
            t.duration
        ),
        detail,
    ))
}

/// What a change owes and has missed at `now`: the post-mortem of every done manual rollback past
/// `post_mortem_within` (`post-mortem-overdue`) and every duty past its due time
/// (`duty-overdue`).
pub fn overdue(state: &ChangeState, now: Timestamp) -> Vec<Reason> {
    let mut out = Vec::new();
    for r in &state.rollback.requests {
        if r.status != RequestStatus::Done {
            continue;
        }
        if let Some(pm) = &r.post_mortem
            && pm.recorded_at.is_none()
            && now > pm.due_at
        {
            out.push(Reason::info(
                Code::PostMortemOverdue,
                format!(
                    "the post-mortem of rollback {} ({}) was due at {}",
                    r.id, r.reason, pm.due_at
                ),
                json!({ "rollback": r.id, "due_at": pm.due_at, "finished_at": r.finished_at, "owners": {
                    "opened_by": r.opened_by,
                    "approvers": r.approvals.iter().map(|a| a.person.clone()).collect::<Vec<_>>(),
                }}),
            ));
        }
    }
    if state.status == Status::Deployed || state.status == Status::RolledBack {
        for d in &state.duties {
            if d.done.is_none() && now > d.due_at {
                out.push(Reason::info(
                    Code::DutyOverdue,
                    format!("duty {} of {} was due at {}", d.id, d.owner, d.due_at),
                    json!({ "duty": d.id, "kind": d.kind, "owner": d.owner, "due_at": d.due_at }),
                ));
            }
        }
    }
    out
}
