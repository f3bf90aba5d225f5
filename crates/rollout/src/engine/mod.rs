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
//!
//! Layout: this file holds the types of a decision; [`Guard`] (the state machine over the plan's
//! steps) is in `guard.rs`; the evaluation of one trigger against one reading (conditions,
//! no-data clock, the state codes) is in `trigger.rs`.

mod guard;
mod trigger;

use changegate_policy::{Metric, TriggerKind, TriggerMode};
use indexmap::IndexMap;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::codes::ReasonCode;

pub use guard::{Guard, GuardSnapshot};
pub use trigger::TrigState;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    pub(crate) fn plain(code: ReasonCode, message: String) -> Self {
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
