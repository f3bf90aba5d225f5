//! [`Guard`]: the state machine over the plan's steps (baseline, steps, the final phases).

use jiff::{SignedDuration, Timestamp};

use super::trigger::{
    Outcome, TrigState, describe, evaluate, reading_detail, reading_for, status_of,
};
use super::{
    Decision, Observation, Phase, Reading, Reason, TriggerStatus, Verdict, fmt_dur, fmt_val,
};
use crate::codes::ReasonCode;
use crate::spec::{GuardSpec, NoDataPolicy};
use changegate_policy::{TriggerKind, TriggerMode};

/// Everything a [`Guard`] remembers between observations, so a guard restored from it (after a
/// restart, on another replica) decides exactly as the original would have.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GuardSnapshot {
    /// Phase.
    pub phase: Phase,
    /// Step reached.
    pub step: Option<usize>,
    /// Per-trigger state, in the spec's trigger order.
    pub triggers: Vec<TrigState>,
}

/// The rollout guard's state machine.
#[derive(Debug, Clone)]
pub struct Guard {
    spec: GuardSpec,
    phase: Phase,
    /// The step the rollout is at (or ended at).
    step: Option<usize>,
    states: Vec<TrigState>,
}

impl Guard {
    /// A guard about to measure baselines.
    pub fn new(spec: GuardSpec) -> Self {
        let states = vec![TrigState::default(); spec.triggers.len()];
        Guard {
            spec,
            phase: Phase::Baseline,
            step: None,
            states,
        }
    }

    /// Its state, to store.
    pub fn snapshot(&self) -> GuardSnapshot {
        GuardSnapshot {
            phase: self.phase,
            step: self.step,
            triggers: self.states.clone(),
        }
    }

    /// A guard that continues from `snap` (trigger states are matched by position; a snapshot
    /// of another spec's length starts those triggers afresh).
    pub fn restore(spec: GuardSpec, snap: GuardSnapshot) -> Self {
        let mut states = snap.triggers;
        states.resize(spec.triggers.len(), TrigState::default());
        Guard {
            spec,
            phase: snap.phase,
            step: snap.step,
            states,
        }
    }

    /// The step the guard is at (or ended at), if it started.
    pub fn step_index(&self) -> Option<usize> {
        self.step
    }

    /// The spec.
    pub fn spec(&self) -> &GuardSpec {
        &self.spec
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the guard reached a final phase.
    pub fn finished(&self) -> bool {
        matches!(
            self.phase,
            Phase::Complete | Phase::RolledBack | Phase::Aborted
        )
    }

    /// Feed one observation taken at `now`; get the decision.
    pub fn observe(&mut self, now: Timestamp, obs: &Observation) -> Decision {
        match self.phase {
            Phase::Baseline => self.observe_baseline(now, obs),
            Phase::Step { index, since } => self.observe_step(now, obs, index, since),
            _ => {
                let reasons = vec![Reason::plain(
                    ReasonCode::GuardFinished,
                    "the rollout already finished".into(),
                )];
                self.decision(now, Verdict::Hold, reasons, Vec::new())
            }
        }
    }

    fn observe_baseline(&mut self, now: Timestamp, obs: &Observation) -> Decision {
        let mut reasons = Vec::new();
        let mut missing = Vec::new();
        let mut statuses = Vec::new();
        let mut abort = false;
        for (i, t) in self.spec.triggers.iter().enumerate() {
            let reading = reading_for(obs, &t.name);
            let mut status = status_of(t, &self.states[i]);
            if t.kind == TriggerKind::Relative {
                match reading {
                    Reading::Value { value } => {
                        status.value = Some(value);
                        status.baseline = Some(value);
                        status.limit = Some(value + t.threshold);
                        status.state = ReasonCode::BaselineMeasured;
                    }
                    other => {
                        status.state = ReasonCode::BaselineMissing;
                        status.detail = reading_detail(&other);
                        if t.mode == TriggerMode::Enforce {
                            let since = *self.states[i].no_data_since.get_or_insert(now);
                            if let NoDataPolicy::RollbackAfter { limit } = t.no_data
                                && now.duration_since(since) >= limit
                            {
                                abort = true;
                            }
                            missing.push((t.name.clone(), status.detail.clone()));
                        }
                    }
                }
            } else {
                status.state = ReasonCode::NotStarted;
                status.detail = "judged from the first step on".into();
            }
            statuses.push(status);
        }
        if !missing.is_empty() {
            let code = if abort {
                ReasonCode::BaselineUnavailable
            } else {
                ReasonCode::BaselineMissing
            };
            for (name, detail) in missing {
                reasons.push(Reason {
                    code,
                    trigger: Some(name.clone()),
                    message: format!(
                        "no baseline for `{name}` ({detail}); not starting the first step"
                    ),
                    value: None,
                    limit: None,
                });
            }
            if abort {
                self.phase = Phase::Aborted;
                return self.decision(now, Verdict::Abort, reasons, statuses);
            }
            return self.decision(now, Verdict::Hold, reasons, statuses);
        }
        for (i, status) in statuses.iter().enumerate() {
            if let Some(b) = status.baseline {
                self.states[i].baseline = Some(b);
                self.states[i].no_data_since = None;
                let t = &self.spec.triggers[i];
                reasons.push(Reason {
                    code: ReasonCode::BaselineMeasured,
                    trigger: Some(t.name.clone()),
                    message: format!(
                        "baseline of `{}` is {}; it fires above {}",
                        t.name,
                        fmt_val(b, t.metric.unit()),
                        fmt_val(b + t.threshold, t.metric.unit())
                    ),
                    value: Some(b),
                    limit: Some(b + t.threshold),
                });
            }
        }
        self.phase = Phase::Step {
            index: 0,
            since: now,
        };
        self.step = Some(0);
        let step = &self.spec.plan.steps[0];
        reasons.push(Reason::plain(
            ReasonCode::SoakElapsed,
            format!(
                "starting step 1/{}: {}% in {}",
                self.spec.plan.steps.len(),
                step.weight,
                step.environment
            ),
        ));
        self.decision(now, Verdict::Promote, reasons, statuses)
    }

    fn observe_step(
        &mut self,
        now: Timestamp,
        obs: &Observation,
        index: usize,
        since: Timestamp,
    ) -> Decision {
        let traffic = match &obs.traffic {
            Some(Reading::Value { value }) => Some(*value),
            _ => None,
        };
        let mut statuses = Vec::new();
        let mut fired = Vec::new();
        let mut shadow = Vec::new();
        let mut blockers = Vec::new();
        for i in 0..self.spec.triggers.len() {
            let t = self.spec.triggers[i].clone();
            let reading = reading_for(obs, &t.name);
            let (status, outcome) = evaluate(&t, &mut self.states[i], &reading, traffic, now);
            let reason = Reason {
                code: status.state,
                trigger: Some(t.name.clone()),
                message: describe(&t, &status),
                value: status.value,
                limit: status.limit,
            };
            match (outcome, t.mode) {
                (Outcome::Fired, TriggerMode::Enforce)
                | (Outcome::NoDataLimit, TriggerMode::Enforce) => fired.push(reason),
                (Outcome::Fired, TriggerMode::Shadow) => shadow.push(Reason {
                    code: ReasonCode::ShadowBreach,
                    message: format!("shadow: {}", reason.message),
                    ..reason
                }),
                (Outcome::Blocking, TriggerMode::Enforce) => blockers.push(reason),
                _ => {}
            }
            statuses.push(status);
        }
        if !fired.is_empty() {
            self.phase = Phase::RolledBack;
            fired.extend(shadow);
            return self.decision(now, Verdict::Rollback, fired, statuses);
        }
        let mut reasons = shadow;
        let hold = self.spec.plan.hold(index);
        let elapsed = now.duration_since(since);
        let last = index + 1 == self.spec.plan.steps.len();
        if elapsed < hold {
            reasons.push(Reason::plain(
                ReasonCode::Soaking,
                format!(
                    "step {}/{} {}: {} of {} elapsed",
                    index + 1,
                    self.spec.plan.steps.len(),
                    if last { "soak and monitoring" } else { "soak" },
                    fmt_dur(elapsed),
                    fmt_dur(hold)
                ),
            ));
            reasons.extend(blockers);
            return self.decision(now, Verdict::Hold, reasons, statuses);
        }
        if !blockers.is_empty() {
            for b in &mut blockers {
                b.message = format!("soak is over but not promoting: {}", b.message);
            }
            reasons.extend(blockers);
            return self.decision(now, Verdict::Hold, reasons, statuses);
        }
        if last {
            self.phase = Phase::Complete;
            reasons.push(Reason::plain(
                ReasonCode::PlanComplete,
                format!(
                    "last step healthy for {}: rollout complete",
                    fmt_dur(elapsed)
                ),
            ));
            return self.decision(now, Verdict::Complete, reasons, statuses);
        }
        self.phase = Phase::Step {
            index: index + 1,
            since: now,
        };
        self.step = Some(index + 1);
        let next = &self.spec.plan.steps[index + 1];
        reasons.push(Reason::plain(
            ReasonCode::SoakElapsed,
            format!(
                "step {} healthy for {}: promoting to step {}/{} ({}% in {})",
                index + 1,
                fmt_dur(elapsed),
                index + 2,
                self.spec.plan.steps.len(),
                next.weight,
                next.environment
            ),
        ));
        self.decision(now, Verdict::Promote, reasons, statuses)
    }

    fn decision(
        &self,
        now: Timestamp,
        verdict: Verdict,
        reasons: Vec<Reason>,
        triggers: Vec<TriggerStatus>,
    ) -> Decision {
        let step = self.step;
        let soak_left = match self.phase {
            Phase::Step { index, since } => {
                let left = self.spec.plan.hold(index) - now.duration_since(since);
                Some(left.max(SignedDuration::ZERO))
            }
            _ => None,
        };
        let step_spec = step.and_then(|i| self.spec.plan.steps.get(i));
        Decision {
            at: now,
            verdict,
            phase: self.phase,
            step,
            weight: step_spec.map(|s| s.weight),
            environment: step_spec.map(|s| s.environment.clone()),
            soak_left,
            reasons,
            triggers,
        }
    }
}
