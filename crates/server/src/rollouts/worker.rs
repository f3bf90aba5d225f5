//! The worker: one loop per server that takes the rollouts that are due, leases each, and runs
//! one evaluation of it ([`tick`]).
//!
//! One evaluation: restore the pure guard from the stored snapshot, read every trigger from
//! Prometheus, let the engine decide, then act:
//! - **rollback** → the rollback path ([`super::rollback`]), always (a freeze never blocks a
//!   rollback);
//! - **promote** → re-check the gate at now first: denied (a freeze began) → the rollout is
//!   **held** at its step (the promotion is not taken, the soak is not reset, triggers keep being
//!   watched) and resumes at the first evaluation the gate allows; allowed → set-weight action,
//!   then the step is recorded;
//! - **hold** → recorded when its reasons change;
//! - **complete** → the change's `complete` transition, then the verification phase.
//!
//! Every write is the rollout row (conditioned on its version and the lease) with its audit event
//! on the change, in one transaction; a replica that lost the lease writes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use changegate_audit::{AuditEvent, kinds};
use changegate_gate::ops::ChangeOp;
use changegate_gate::{ChangeState, Event, Status};
use changegate_rollout::action::ActionVars;
use changegate_rollout::runner::PromSource;
use changegate_rollout::{Guard, Reason, ReasonCode, Verdict};
use changegate_store::{RolloutRow, RolloutSaved, RolloutWrite};
use serde_json::{Value, json};

use super::rollback::{Cause, automatic_authority};
use super::{ACTOR, Hold, RolloutDoc, Runtime, StepRecord, Verification, micros, phase};
use crate::AppState;
use crate::error::ApiError;

/// The audit event of a rollout write on the change: kind, the commit, the result code and the
/// error rate / latency the triggers read.
pub(crate) fn event(
    kind: &str,
    row: &RolloutRow,
    change: &ChangeState,
    result: &str,
    triggers: &Value,
) -> AuditEvent {
    let mut e = AuditEvent::new(kind, ACTOR)
        .change(&row.change_id)
        .category(row.category.to_string())
        .what("commit-sha", change.change.head_commit.clone())
        .who("deployer", row.started_by.clone())
        .outcome("result", result);
    let worst = |m: &str| {
        triggers
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["metric"] == m)
            .filter_map(|t| t["value"].as_f64())
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
    };
    if let Some(v) = worst("error-rate") {
        e = e.outcome("error-rate", v);
    }
    if let Some(v) = worst("p95-latency") {
        e = e.outcome("latency-impact", v);
    }
    e
}

/// Run the worker until the task is dropped.
pub async fn run(s: AppState, rt: Arc<Runtime>) {
    tracing::info!(owner = %rt.owner, "rollout worker started");
    loop {
        let now = micros(s.now());
        match s.db.due_rollouts(now, &rt.owner, 16).await {
            Ok(ids) => {
                for id in ids {
                    let now = micros(s.now());
                    let until = now + lease_us(&rt);
                    match s.db.lease_rollout(&id, &rt.owner, now, until).await {
                        Ok(true) => {
                            if let Err(e) = tick(&s, &rt, &id).await {
                                tracing::warn!(rollout = %id, error = %e, "rollout evaluation failed");
                            }
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(rollout = %id, error = %e, "lease failed"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list due rollouts"),
        }
        tokio::time::sleep(rt.poll).await;
    }
}

fn lease_us(rt: &Runtime) -> i64 {
    i64::try_from(rt.lease.as_micros()).unwrap_or(i64::MAX / 4)
}

fn due(s: &AppState, d: Duration) -> i64 {
    micros(s.now()) + i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}

/// Write the rollout (and its event, and the change) as the lease holder.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn save(
    s: &AppState,
    rt: &Runtime,
    row: &RolloutRow,
    doc: &RolloutDoc,
    phase: &str,
    active: bool,
    due_at: i64,
    event: Option<AuditEvent>,
    change: Option<(i64, &ChangeState)>,
) -> Result<RolloutSaved, ApiError> {
    let state = serde_json::to_string(doc).map_err(ApiError::internal)?;
    let write = RolloutWrite {
        id: &row.id,
        expected_version: row.version,
        owner: &rt.owner,
        phase,
        step: doc.guard.step.and_then(|i| i64::try_from(i).ok()),
        active,
        state: &state,
        due_at,
    };
    let change = change.map(|(v, c)| (row.change_id.as_str(), v, c));
    Ok(s.db
        .save_rollout(write, event.map(super::tidy), change)
        .await?)
}

fn codes(reasons: &[Reason]) -> Vec<String> {
    let mut v: Vec<String> = reasons
        .iter()
        .filter(|r| r.code != ReasonCode::Soaking)
        .map(|r| format!("{}:{}", r.code, r.trigger.as_deref().unwrap_or("")))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// One evaluation of the rollout `id` (the caller holds its lease).
pub async fn tick(s: &AppState, rt: &Runtime, id: &str) -> Result<(), ApiError> {
    let Some(row) = s.db.rollout(id).await? else {
        return Ok(());
    };
    if !row.active || row.lease_owner.as_deref() != Some(rt.owner.as_str()) {
        return Ok(());
    }
    let mut doc: RolloutDoc = serde_json::from_str(&row.state).map_err(ApiError::internal)?;
    let Some((change, world)) = s.db.change_and_world(&row.change_id).await? else {
        save(
            s,
            rt,
            &row,
            &doc,
            phase::ABORTED,
            false,
            micros(s.now()),
            None,
            None,
        )
        .await?;
        return Ok(());
    };
    if !matches!(change.value.status, Status::Deploying | Status::Deployed) {
        // Rolled back or cancelled by someone else (a manual transition): stop watching.
        let ev = event(
            kinds::DEPLOYMENT_STEP,
            &row,
            &change.value,
            "stopped",
            &doc.last_triggers,
        )
        .details(json!({"rollout": row.id, "status": change.value.status,
            "message": format!("the change is {} now; the rollout stops", change.value.status)}));
        let ph = if change.value.status == Status::RolledBack {
            phase::ROLLED_BACK
        } else {
            phase::ABORTED
        };
        save(
            s,
            rt,
            &row,
            &doc,
            ph,
            false,
            micros(s.now()),
            Some(ev),
            None,
        )
        .await?;
        return Ok(());
    }
    if row.phase == phase::VERIFYING {
        return super::verify::tick(s, rt, &row, doc, &change.value).await;
    }
    let level = u8::try_from(row.category).unwrap_or(u8::MAX);
    let spec =
        changegate_rollout::resolve(&s.policy, Some(&row.plan), Some(level), &rt.config.guard)
            .map_err(ApiError::internal)?;
    let mut guard = Guard::restore(spec.clone(), doc.guard.clone());
    let before = guard.snapshot();
    let detected = (Instant::now(), s.now());
    let obs = PromSource::new(rt.prom.clone(), &spec, &rt.config.selector)
        .observe_at(None)
        .await;
    let now = s.now();
    let d = guard.observe(now, &obs);
    doc.evaluations += 1;
    doc.last_reasons = json!(d.reasons);
    doc.last_triggers = json!(d.triggers);
    let triggers = doc.last_triggers.clone();
    let next_due = due(s, rt.interval);
    match d.verdict {
        Verdict::Rollback => {
            doc.guard = guard.snapshot();
            doc.guard.step = before.step.or(doc.guard.step);
            let cause = Cause {
                trigger: "automatic",
                by: ACTOR.into(),
                reasons: d.reasons.clone(),
                triggers: triggers.clone(),
                authority: automatic_authority("automatic"),
                detected,
            };
            super::rollback::execute(s, rt, &row, doc, cause).await?;
        }
        Verdict::Abort => {
            doc.guard = guard.snapshot();
            let mut next = change.value.clone();
            let op = ChangeOp::Transition {
                event: Event::RollBack,
                by: Some(ACTOR.into()),
            };
            changegate_gate::ops::apply(&s.policy, &mut next, &world, &op, now)?;
            let ev = event(kinds::ROLLBACK, &row, &next, "abort", &triggers).details(json!({
                "rollout": row.id, "plan": row.plan, "decision": d,
                "message": "no baseline: the rollout never started; nothing was moved",
                "authority": automatic_authority("abort"),
            }));
            save(
                s,
                rt,
                &row,
                &doc,
                phase::ABORTED,
                false,
                micros(now),
                Some(ev),
                Some((change.version, &next)),
            )
            .await?;
        }
        Verdict::Promote => {
            let gate = changegate_gate::decide(&s.policy, &change.value, &world, now);
            if !gate.allowed {
                // Held by the gate: the promotion is not taken (phase and step stay), the
                // triggers' state is kept, the rollout waits for the gate.
                let mut snap = guard.snapshot();
                snap.phase = before.phase;
                snap.step = before.step;
                doc.guard = snap;
                let denying: Vec<String> =
                    gate.denying_codes().iter().map(|c| c.to_string()).collect();
                let changed = doc.held.as_ref().is_none_or(|h| h.codes != denying);
                let ev = changed.then(|| {
                    event(kinds::DEPLOYMENT_STEP, &row, &change.value, "held", &triggers).details(json!({
                        "rollout": row.id, "plan": row.plan, "step": before.step,
                        "message": format!("the gate denies the next promotion now ({}); the rollout holds at its step and resumes when the gate allows", denying.join(", ")),
                        "gate": gate, "decision": d,
                    }))
                });
                let mut reasons = d.reasons.clone();
                reasons.push(Reason {
                    code: ReasonCode::GateHold,
                    trigger: None,
                    message: format!(
                        "the gate denies the next promotion now: {}",
                        denying.join(", ")
                    ),
                    value: None,
                    limit: None,
                });
                doc.last_reasons = json!(reasons);
                if changed {
                    doc.holds += 1;
                    doc.held = Some(Hold {
                        since: doc.held.as_ref().map_or(now, |h| h.since),
                        codes: denying,
                    });
                }
                save(s, rt, &row, &doc, phase::HELD, true, next_due, ev, None).await?;
                return Ok(());
            }
            let resumed = doc.held.take();
            let step = d.step.unwrap_or(0);
            let weight = d.weight.unwrap_or(0);
            let action = match &rt.set_weight {
                Some(a) => {
                    let vars = ActionVars {
                        action: "set-weight".into(),
                        weight,
                        step: step + 1,
                        environment: d.environment.clone().unwrap_or_default(),
                        plan: row.plan.clone(),
                        change: row.change_id.clone(),
                        reasons: d
                            .reasons
                            .iter()
                            .map(|r| format!("{}: {}", r.code, r.message))
                            .collect(),
                    };
                    Some(a.run(&vars, rt.action_timeout, false).await)
                }
                None => None,
            };
            if let Some(a) = action.as_ref().filter(|a| !a.ok) {
                doc.guard = before.clone();
                let cause = Cause {
                    trigger: "set-weight-failed",
                    by: ACTOR.into(),
                    reasons: vec![Reason {
                        code: ReasonCode::SetWeightFailed,
                        trigger: None,
                        message: format!("set-weight to {weight}% failed: {}", a.detail),
                        value: None,
                        limit: None,
                    }],
                    triggers: triggers.clone(),
                    authority: automatic_authority("set-weight-failed"),
                    detected,
                };
                super::rollback::execute(s, rt, &row, doc, cause).await?;
                return Ok(());
            }
            let action = action.map(|a| serde_json::to_value(a).unwrap_or(Value::Null));
            // The first promotion follows the baseline read: the error rate and latency before
            // the deployment moved any traffic, with the guard's queries.
            let observed = if matches!(before.phase, changegate_rollout::Phase::Baseline) {
                super::observed::read(rt, &spec, "before", now).await
            } else {
                Value::Null
            };
            doc.guard = guard.snapshot();
            doc.steps.push(StepRecord {
                step,
                weight,
                at: now,
                action: action.clone(),
            });
            doc.last_codes = codes(&d.reasons);
            let ev = event(
                kinds::DEPLOYMENT_STEP,
                &row,
                &change.value,
                "promote",
                &triggers,
            )
            .details(json!({
                "rollout": row.id, "plan": row.plan, "step": step, "weight": weight,
                "decision": d, "action": action,
                "gate": {"allowed": true, "reasons": gate.reasons},
                "resumed_after_hold": resumed,
                "observed": observed,
            }));
            save(
                s,
                rt,
                &row,
                &doc,
                phase::RUNNING,
                true,
                next_due,
                Some(ev),
                None,
            )
            .await?;
        }
        Verdict::Hold => {
            doc.guard = guard.snapshot();
            let now_codes = codes(&d.reasons);
            let ev = (now_codes != doc.last_codes).then(|| {
                event(
                    kinds::DEPLOYMENT_STEP,
                    &row,
                    &change.value,
                    "hold",
                    &triggers,
                )
                .details(json!({"rollout": row.id, "plan": row.plan, "decision": d}))
            });
            doc.last_codes = now_codes;
            let ph = if doc.held.is_some() {
                phase::HELD
            } else {
                phase::RUNNING
            };
            save(s, rt, &row, &doc, ph, true, next_due, ev, None).await?;
        }
        Verdict::Complete => {
            doc.guard = guard.snapshot();
            let mut next = change.value.clone();
            let op = ChangeOp::Transition {
                event: Event::Complete,
                by: Some(ACTOR.into()),
            };
            changegate_gate::ops::apply(&s.policy, &mut next, &world, &op, now)?;
            let within = s.policy.verification.within.get();
            doc.verification = Some(Verification {
                started: now,
                deadline: now.checked_add(within).unwrap_or(now),
                result: "running".into(),
                checks: Vec::new(),
            });
            let ev = event(kinds::DEPLOYMENT_FINISH, &row, &next, "complete", &triggers)
                .when(
                    "duration",
                    doc.duration_s(now).map_or(Value::Null, Value::from),
                )
                .details(json!({
                    "rollout": row.id, "plan": row.plan, "decision": d, "steps": doc.steps,
                    "authority": {"operation": "complete", "via": "integration", "actor": ACTOR},
                    "message": "the plan completed; post-deployment verification starts",
                }));
            save(
                s,
                rt,
                &row,
                &doc,
                phase::VERIFYING,
                true,
                micros(now),
                Some(ev),
                Some((change.version, &next)),
            )
            .await?;
        }
    }
    Ok(())
}
