//! The decision core: a pure state machine of (plan, triggers, observations, clock).
//!
//! Nothing here reads a clock, a socket or a file: the caller hands in `now` and the readings, and
//! gets back a [`Decision`] with its reasons. That is what lets a 24-hour high-risk rollout be
//! tested in milliseconds, lets `rollout replay` run the very same code over recorded series, and
//! makes every decision reproducible from the log.
//!
//! Rules, in the order they are applied at each observation:
//! 1. Before the first step, the baselines of relative triggers are measured; the first step
//!    starts only when every enforced relative trigger has one (else hold, or abort once the
//!    no-data limit passes — nothing was deployed yet).
//! 2. An enforced trigger that fires rolls back at once; so does an enforced trigger whose data
//!    has been missing longer than its no-data limit.
//! 3. Missing data, failed queries, a pending breach or too little traffic for a relative trigger
//!    never count as healthy: the guard holds and says why, even when the soak is over.
//! 4. When the soak of the step is over and nothing blocks, promote (or complete after the last
//!    step and its monitoring period).
//!
//! Shadow triggers go through the same evaluation, but only ever add `shadow-breach` reasons.

use std::collections::VecDeque;

use changegate_policy::{Metric, TriggerKind, TriggerMode};
use indexmap::IndexMap;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::codes::ReasonCode;
use crate::spec::{Condition, GuardSpec, NoDataPolicy, TriggerSpec};

/// One reading of one trigger's metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reading {
    /// A value in the metric's unit.
    Value {
        /// The value.
        value: f64,
    },
    /// No sample: empty result or NaN.
    NoData {
        /// What was missing.
        detail: String,
    },
    /// The query failed or Prometheus was unreachable.
    Failed {
        /// The error.
        error: String,
    },
}

impl Reading {
    /// A value; NaN becomes [`Reading::NoData`].
    pub fn value(v: f64) -> Self {
        if v.is_nan() {
            Reading::NoData {
                detail: "NaN (no traffic?)".into(),
            }
        } else {
            Reading::Value { value: v }
        }
    }
}

/// Everything observed at one evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observation {
    /// Reading per trigger name; a trigger missing here counts as no data.
    pub readings: IndexMap<String, Reading>,
    /// Requests per second (gates relative triggers); `None` when not measured.
    pub traffic: Option<Reading>,
}

/// What the guard says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Move traffic to the (new) current step's weight.
    Promote,
    /// Keep the current weight.
    Hold,
    /// Move all traffic back to the old version now.
    Rollback,
    /// The plan finished healthy.
    Complete,
    /// The rollout never started (no baseline); nothing to roll back.
    Abort,
}

/// Where the rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// Measuring baselines before the first step.
    Baseline,
    /// At a step since a time.
    Step {
        /// Step index.
        index: usize,
        /// When the step began.
        since: Timestamp,
    },
    /// Complete.
    Complete,
    /// Rolled back.
    RolledBack,
    /// Aborted before the first step.
    Aborted,
}

/// One reason of a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// Stable code.
    pub code: ReasonCode,
    /// Trigger it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// For people.
    pub message: String,
    /// The value that caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The limit it was judged against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
}

impl Reason {
    fn plain(code: ReasonCode, message: String) -> Self {
        Reason {
            code,
            trigger: None,
            message,
            value: None,
            limit: None,
        }
    }
}

/// A trigger's state after an evaluation (for progress display and the log).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggerStatus {
    /// Trigger name.
    pub name: String,
    /// Metric.
    pub metric: Metric,
    /// Kind.
    pub kind: TriggerKind,
    /// Mode.
    pub mode: TriggerMode,
    /// State code: `healthy`, `breach-pending`, a firing code, `no-data`, `query-failed`,
    /// `insufficient-traffic`, `baseline-missing`.
    pub state: ReasonCode,
    /// Last value.
    pub value: Option<f64>,
    /// Limit it is judged against (threshold, or baseline + threshold).
    pub limit: Option<f64>,
    /// Baseline (relative triggers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// Unit of value and limit.
    pub unit: &'static str,
    /// Detail (error text, condition progress).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The outcome of one observation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// When.
    pub at: Timestamp,
    /// What to do.
    pub verdict: Verdict,
    /// Phase after the decision.
    pub phase: Phase,
    /// Current step index (after the decision; the last one reached once finished), if started.
    pub step: Option<usize>,
    /// Weight of the current step.
    pub weight: Option<u8>,
    /// Environment of the current step.
    pub environment: Option<String>,
    /// Time left before the current step may be left (soak, plus monitoring on the last step).
    #[serde(with = "crate::spec::opt_dur_secs")]
    pub soak_left: Option<SignedDuration>,
    /// Why.
    pub reasons: Vec<Reason>,
    /// Every trigger's state.
    pub triggers: Vec<TriggerStatus>,
}

impl Decision {
    /// The reason codes, in order.
    pub fn codes(&self) -> Vec<ReasonCode> {
        self.reasons.iter().map(|r| r.code).collect()
    }
}

#[derive(Debug, Clone, Default)]
struct TrigState {
    baseline: Option<f64>,
    consecutive: u32,
    breaches: VecDeque<Timestamp>,
    breach_since: Option<Timestamp>,
    no_data_since: Option<Timestamp>,
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

enum Outcome {
    Ok,
    Blocking,
    Fired,
    NoDataLimit,
}

fn reading_for(obs: &Observation, name: &str) -> Reading {
    match obs.readings.get(name) {
        Some(Reading::Value { value }) => Reading::value(*value),
        Some(r) => r.clone(),
        None => Reading::NoData {
            detail: "not observed".into(),
        },
    }
}

fn reading_detail(r: &Reading) -> String {
    match r {
        Reading::Value { .. } => String::new(),
        Reading::NoData { detail } => detail.clone(),
        Reading::Failed { error } => error.clone(),
    }
}

fn status_of(t: &TriggerSpec, st: &TrigState) -> TriggerStatus {
    TriggerStatus {
        name: t.name.clone(),
        metric: t.metric,
        kind: t.kind,
        mode: t.mode,
        state: ReasonCode::Healthy,
        value: None,
        limit: match t.kind {
            TriggerKind::Relative => st.baseline.map(|b| b + t.threshold),
            _ => Some(t.threshold),
        },
        baseline: st.baseline,
        unit: t.metric.unit(),
        detail: String::new(),
    }
}

/// Evaluate one trigger against one reading, updating its state.
fn evaluate(
    t: &TriggerSpec,
    st: &mut TrigState,
    reading: &Reading,
    traffic: Option<f64>,
    now: Timestamp,
) -> (TriggerStatus, Outcome) {
    let mut status = status_of(t, st);
    let value = match reading {
        Reading::Value { value } => *value,
        other => {
            // Missing data keeps breach streaks as they are (unknown is not healthy), and starts
            // or continues the no-data clock.
            let since = *st.no_data_since.get_or_insert(now);
            status.state = if matches!(other, Reading::Failed { .. }) {
                ReasonCode::QueryFailed
            } else {
                ReasonCode::NoData
            };
            let missing_for = now.duration_since(since);
            status.detail = format!(
                "{} (missing for {})",
                reading_detail(other),
                fmt_dur(missing_for)
            );
            if let NoDataPolicy::RollbackAfter { limit } = t.no_data
                && missing_for >= limit
            {
                status.state = ReasonCode::NoDataLimit;
                return (status, Outcome::NoDataLimit);
            }
            return (status, Outcome::Blocking);
        }
    };
    st.no_data_since = None;
    status.value = Some(value);
    let Some(limit) = status.limit else {
        status.state = ReasonCode::BaselineMissing;
        status.detail = "no baseline was measured".into();
        return (status, Outcome::Blocking);
    };
    if t.kind == TriggerKind::Relative
        && let Some(rps) = traffic
        && rps < t.min_traffic
    {
        status.state = ReasonCode::InsufficientTraffic;
        status.detail = format!("{rps:.2} req/s < {} req/s", t.min_traffic);
        return (status, Outcome::Blocking);
    }
    let breach = value > limit;
    if breach {
        st.consecutive += 1;
        st.breaches.push_back(now);
        st.breach_since.get_or_insert(now);
    } else {
        st.consecutive = 0;
        st.breach_since = None;
    }
    if let Condition::InWindow { window, .. } = t.condition {
        while st
            .breaches
            .front()
            .is_some_and(|b| now.duration_since(*b) > window)
        {
            st.breaches.pop_front();
        }
    } else if st.breaches.len() > 64 {
        st.breaches.pop_front();
    }
    if !breach {
        if let Condition::InWindow { count, window } = t.condition
            && !st.breaches.is_empty()
        {
            // Recent breaches still count toward N-in-window: not healthy enough to promote.
            status.state = ReasonCode::BreachPending;
            status.detail = format!("{} of {count} in {}", st.breaches.len(), fmt_dur(window));
            return (status, Outcome::Blocking);
        }
        return (status, Outcome::Ok);
    }
    let fired = if t.kind == TriggerKind::Sustained {
        let window = t.window.unwrap_or(SignedDuration::ZERO);
        let held = now.duration_since(st.breach_since.unwrap_or(now));
        status.detail = format!("above for {} of {}", fmt_dur(held), fmt_dur(window));
        held >= window
    } else {
        match t.condition {
            Condition::Consecutive { count } => {
                status.detail = format!("{} of {count} consecutive", st.consecutive);
                st.consecutive >= count
            }
            Condition::InWindow { count, window } => {
                status.detail = format!("{} of {count} in {}", st.breaches.len(), fmt_dur(window));
                st.breaches.len() as u32 >= count
            }
        }
    };
    if fired {
        status.state = match t.kind {
            TriggerKind::Absolute | TriggerKind::Utilisation => ReasonCode::ThresholdExceeded,
            TriggerKind::Relative => ReasonCode::BaselineExceeded,
            TriggerKind::Count => ReasonCode::CountExceeded,
            TriggerKind::Sustained => ReasonCode::SustainedBreach,
        };
        (status, Outcome::Fired)
    } else {
        status.state = ReasonCode::BreachPending;
        (status, Outcome::Blocking)
    }
}

fn describe(t: &TriggerSpec, s: &TriggerStatus) -> String {
    let unit = t.metric.unit();
    let v = s.value.map_or("n/a".to_string(), |v| fmt_val(v, unit));
    let l = s.limit.map_or("n/a".to_string(), |l| fmt_val(l, unit));
    let base = match (t.kind, s.baseline) {
        (TriggerKind::Relative, Some(b)) => format!(
            " (baseline {} + {})",
            fmt_val(b, unit),
            fmt_val(t.threshold, unit)
        ),
        _ => String::new(),
    };
    let what = match s.state {
        ReasonCode::Healthy => format!("{v} <= {l}{base}"),
        ReasonCode::NoData | ReasonCode::QueryFailed => format!("no data: {}", s.detail),
        ReasonCode::NoDataLimit => format!("no data past the limit: {}", s.detail),
        ReasonCode::InsufficientTraffic => format!("not judged: traffic {}", s.detail),
        ReasonCode::BaselineMissing => "not judged: no baseline".to_string(),
        ReasonCode::BreachPending => format!("{v} vs limit {l}{base}, pending: {}", s.detail),
        _ if s.detail.is_empty() => format!("{v} > {l}{base}"),
        _ => format!("{v} > {l}{base}, {}", s.detail),
    };
    format!("`{}` {what}", t.name)
}

/// A value with its unit, for messages.
pub fn fmt_val(v: f64, unit: &str) -> String {
    match unit {
        "%" => format!("{v:.3}%"),
        "ms" => format!("{v:.1}ms"),
        _ => format!("{v:.1} {unit}"),
    }
}

/// A duration as `8h 0m 0s` style text, rounded to seconds.
pub fn fmt_dur(d: SignedDuration) -> String {
    let s = d.as_secs().max(0);
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}
