//! The rollback path of a server-run rollout: run the rollback action, measure the switch time,
//! and record the rollback on the change (its `roll-back` transition, the rollout row and the
//! audit event with the values that caused it, in one transaction).
//!
//! The switch time has three marks, each on the monotonic clock: the breach was detected (the
//! evaluation that fired began), the action was invoked, traffic was switched — when the action
//! returned, or, with `actions.switched_query`, when Prometheus confirms the new version's traffic
//! is gone. The policy's `rollback.deadline` (30 s in the seed: "switches traffic back to old
//! version within 30 seconds") is the limit; a slower switch is recorded as `exceeded`.

use std::time::{Duration, Instant};

use changegate_audit::kinds;
use changegate_gate::authority::Authorized;
use changegate_gate::ops::ChangeOp;
use changegate_gate::{Event, Status};
use changegate_rollout::action::{ActionResult, ActionVars};
use changegate_rollout::prom::Sample;
use changegate_rollout::{Reason, ReasonCode};
use changegate_store::{RolloutRow, RolloutSaved, RolloutWrite};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ACTOR, RolloutDoc, Runtime, micros, phase};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// How long the rollback took to switch traffic back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchTiming {
    /// The breach was detected (the evaluation that fired began; for a manual rollback, the
    /// request).
    pub detected_at: Timestamp,
    /// The rollback action was invoked.
    pub action_started_at: Timestamp,
    /// The rollback action returned.
    pub action_returned_at: Timestamp,
    /// Traffic was switched back (unset when not confirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<Timestamp>,
    /// `action` (its return confirms it), `metric` (the switched query confirmed it) or
    /// `unconfirmed`.
    pub confirmed_by: String,
    /// Breach detected → action invoked, milliseconds.
    pub detect_to_action_ms: f64,
    /// Action invoked → action returned, milliseconds.
    pub action_ms: f64,
    /// Breach detected → traffic switched, milliseconds (unset when not confirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_to_switched_ms: Option<f64>,
    /// The policy's `rollback.deadline`, milliseconds.
    pub deadline_ms: f64,
    /// Switched later than the deadline, or never confirmed.
    pub exceeded: bool,
}

/// The rollback of a rollout, as recorded in its document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackRecord {
    /// When it was decided.
    pub at: Timestamp,
    /// `automatic`, `verification-failed`, `set-weight-failed`, `manual`.
    pub trigger: String,
    /// Who (the automatic trigger, or the person of a manual rollback).
    pub by: String,
    /// Reasons with the values that caused it (code, message, value, limit).
    pub reasons: Value,
    /// Trigger states at the time.
    #[serde(default)]
    pub triggers: Value,
    /// The rollback action's result.
    pub action: Value,
    /// The switch time.
    pub timing: SwitchTiming,
    /// The authority the `roll-back` transition was recorded with.
    pub authority: Value,
}

/// What caused a rollback.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    /// `automatic`, `verification-failed`, `set-weight-failed`, `manual`.
    pub trigger: &'static str,
    /// Who.
    pub by: String,
    /// Reasons.
    pub reasons: Vec<Reason>,
    /// Trigger states (JSON array of `TriggerStatus`).
    pub triggers: Value,
    /// The authority recorded.
    pub authority: Value,
    /// Detected (monotonic) and its wall time.
    pub detected: (Instant, Timestamp),
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Wait for the switched query to read at most the configured value, until `deadline` after
/// `detected`; when it does, the instant.
async fn confirm_switch(rt: &Runtime, detected: Instant, deadline: Duration) -> Option<Instant> {
    let q = rt.config.actions.switched_query.as_deref()?;
    let at_most = rt.config.actions.switched_at_most.unwrap_or(0.0);
    // Poll a little past the deadline, so a late switch is measured (and flagged) rather than
    // reported as never confirmed.
    let give_up = detected + deadline * 2;
    loop {
        if let Ok(Sample::Value(v)) = rt.prom.instant(q, None).await
            && v <= at_most
        {
            return Some(Instant::now());
        }
        if Instant::now() >= give_up {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Run the rollback action for `row` and record the rollback. The caller holds the lease.
/// Returns the switch timing (also when the action failed: the rollout is then `failed` and the
/// change stays deploying, to be rolled back by hand).
pub(crate) async fn execute(
    s: &AppState,
    rt: &Runtime,
    row: &RolloutRow,
    mut doc: RolloutDoc,
    cause: Cause,
) -> Result<SwitchTiming, ApiError> {
    let deadline = Duration::try_from(s.policy.rollback.deadline.get())
        .unwrap_or(Duration::from_secs(30))
        .max(Duration::from_secs(1));
    let step = doc.guard.step;
    let vars = ActionVars {
        action: "rollback".into(),
        weight: 0,
        step: step.map_or(0, |i| i + 1),
        environment: "production".into(),
        plan: row.plan.clone(),
        change: row.change_id.clone(),
        reasons: cause
            .reasons
            .iter()
            .map(|r| format!("{}: {}", r.code, r.message))
            .collect(),
    };
    let (detected, detected_at) = cause.detected;
    let action_started = Instant::now();
    let action_started_at = s.now();
    let result: ActionResult = rt.rollback.run(&vars, deadline, false).await;
    let returned = Instant::now();
    let action_returned_at = s.now();
    let (switched, confirmed_by) = if !result.ok {
        (None, "unconfirmed")
    } else if rt.config.actions.switched_query.is_some() {
        match confirm_switch(rt, detected, deadline).await {
            Some(i) => (Some(i), "metric"),
            None => (None, "unconfirmed"),
        }
    } else {
        (Some(returned), "action")
    };
    let switched_at = switched.map(|i| {
        let d = jiff::SignedDuration::try_from(i.saturating_duration_since(returned))
            .unwrap_or_default();
        action_returned_at
            .checked_add(d)
            .unwrap_or(action_returned_at)
    });
    let detect_to_switched = switched.map(|i| i.saturating_duration_since(detected));
    let timing = SwitchTiming {
        detected_at,
        action_started_at,
        action_returned_at,
        switched_at,
        confirmed_by: confirmed_by.into(),
        detect_to_action_ms: ms(action_started.saturating_duration_since(detected)),
        action_ms: ms(returned.saturating_duration_since(action_started)),
        detect_to_switched_ms: detect_to_switched.map(ms),
        deadline_ms: ms(deadline),
        exceeded: detect_to_switched.is_none_or(|d| d > deadline),
    };
    if timing.exceeded {
        tracing::warn!(change = %row.change_id, rollout = %row.id, ?timing, "rollback switch exceeded the policy's deadline");
    }
    let record = RollbackRecord {
        at: detected_at,
        trigger: cause.trigger.into(),
        by: cause.by.clone(),
        reasons: serde_json::to_value(&cause.reasons).unwrap_or(Value::Null),
        triggers: cause.triggers.clone(),
        action: serde_json::to_value(&result).unwrap_or(Value::Null),
        timing: timing.clone(),
        authority: cause.authority.clone(),
    };
    doc.rollback = Some(record.clone());
    doc.held = None;
    let final_phase = if result.ok {
        phase::ROLLED_BACK
    } else {
        phase::FAILED
    };
    let state = serde_json::to_string(&doc).map_err(ApiError::internal)?;
    let mut version = row.version;
    for _ in 0..16 {
        let Some((change, world)) = s.db.change_and_world(&row.change_id).await? else {
            return Err(ApiError::not_found(format!("change {}", row.change_id)));
        };
        let mut next = change.value.clone();
        let transition = result.ok && matches!(next.status, Status::Deploying | Status::Deployed);
        if transition {
            let op = ChangeOp::Transition {
                event: Event::RollBack,
                by: Some(cause.by.clone()),
            };
            changegate_gate::ops::apply(&s.policy, &mut next, &world, &op, s.now())?;
        }
        let result_code = if result.ok {
            "rollback"
        } else {
            "rollback-failed"
        };
        let mut event =
            super::worker::event(kinds::ROLLBACK, row, &next, result_code, &cause.triggers)
                .details(json!({
                    "rollout": row.id,
                    "plan": row.plan,
                    "trigger": cause.trigger,
                    "status": next.status,
                    "rollback": record,
                    "authority": cause.authority,
                }))
                .when(
                    "duration",
                    doc.duration_s(s.now()).map_or(Value::Null, Value::from),
                );
        if !result.ok {
            // Not `why.incident`: that names the incident a change is linked to (the report's
            // incident column), which a failed action is not.
            event.details["attention"] = json!("rollback action failed: roll back by hand");
        }
        let write = RolloutWrite {
            id: &row.id,
            expected_version: version,
            owner: &rt.owner,
            phase: final_phase,
            step: step.and_then(|i| i64::try_from(i).ok()),
            active: false,
            state: &state,
            due_at: micros(s.now()),
        };
        let change_write = transition.then_some((row.change_id.as_str(), change.version, &next));
        match s
            .db
            .save_rollout(write, Some(super::tidy(event)), change_write)
            .await?
        {
            RolloutSaved::Saved(_) => return Ok(timing),
            RolloutSaved::ChangeMoved => continue,
            RolloutSaved::LeaseLost => {
                // Renew and re-read the version: the action already ran, the record must follow.
                let now = micros(s.now());
                let until = now + i64::try_from(rt.lease.as_micros()).unwrap_or(i64::MAX / 2);
                if !s.db.lease_rollout(&row.id, &rt.owner, now, until).await? {
                    return Err(ApiError::new(
                        ErrorCode::ConcurrentUpdate,
                        format!("rollout {} is held by another replica", row.id),
                    ));
                }
                match s.db.rollout(&row.id).await? {
                    Some(r) if r.active => version = r.version,
                    _ => return Ok(timing),
                }
            }
        }
    }
    Err(ApiError::new(
        ErrorCode::ConcurrentUpdate,
        format!("change {} is being changed concurrently", row.change_id),
    ))
}

/// Roll back the change's active server-run rollout, if it has one: take its lease (waiting up
/// to one lease period for the replica holding it), run the configured rollback action, measure
/// the switch, and record the `roll-back` transition on the change with `authority` (the caller
/// checked it: e.g. the manual-rollback governance's dual approval) and `by` as the actor, in one
/// transaction with the rollout row and its audit event.
///
/// `Ok(None)`: no active server-run rollout (nothing done; the caller records its own
/// transition). `Ok(Some(timing))`: rolled back — the change is `rolled-back` already, the caller
/// must not apply the transition again. When the action failed, the timing says
/// `confirmed_by = "unconfirmed"` and the rollout is `failed` (the change stays as it was).
pub async fn rollback_active(
    s: &AppState,
    change_id: &str,
    reason: &str,
    by: &str,
    authority: &Authorized,
) -> Result<Option<SwitchTiming>, ApiError> {
    let Some(rt) = s.rollouts.clone() else {
        return Ok(None);
    };
    let Some(active) =
        s.db.change_rollouts(change_id)
            .await?
            .into_iter()
            .find(|r| r.active)
    else {
        return Ok(None);
    };
    let detected = (Instant::now(), s.now());
    let give_up = Instant::now() + rt.lease + Duration::from_secs(2);
    loop {
        let now = micros(s.now());
        let until = now + i64::try_from(rt.lease.as_micros()).unwrap_or(i64::MAX / 2);
        if s.db
            .lease_rollout(&active.id, &rt.owner, now, until)
            .await?
        {
            break;
        }
        if Instant::now() >= give_up {
            return Err(ApiError::new(
                ErrorCode::ConcurrentUpdate,
                format!(
                    "rollout {} is held by another replica; try again",
                    active.id
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(row) = s.db.rollout(&active.id).await? else {
        return Ok(None);
    };
    if !row.active {
        return Ok(None);
    }
    let doc: RolloutDoc = serde_json::from_str(&row.state).map_err(ApiError::internal)?;
    let cause = Cause {
        trigger: "manual",
        by: by.to_string(),
        reasons: vec![Reason {
            code: ReasonCode::ManualRollback,
            trigger: None,
            message: format!("manual rollback by {by}: {reason}"),
            value: None,
            limit: None,
        }],
        triggers: doc.last_triggers.clone(),
        authority: serde_json::to_value(authority).unwrap_or(Value::Null),
        detected,
    };
    let timing = execute(s, &rt, &row, doc, cause).await?;
    let _ = s.db.release_rollout(&row.id, &rt.owner).await;
    Ok(Some(timing))
}

/// The audit event of an automatic rollback names this authority.
pub(crate) fn automatic_authority(trigger: &str) -> Value {
    json!({"operation": "roll-back", "via": "integration", "trigger": trigger, "actor": ACTOR})
}
