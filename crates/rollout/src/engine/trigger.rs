//! One trigger against one reading: the no-data clock, consecutive-N / N-in-window / sustained
//! conditions, minimum traffic for relative triggers, and the state code that results.

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};

use super::{Observation, Reading, TriggerStatus, fmt_dur, fmt_val};
use crate::codes::ReasonCode;
use crate::spec::{Condition, NoDataPolicy, TriggerSpec};
use changegate_policy::TriggerKind;

/// The evaluation state of one trigger (kept across evaluations; part of a
/// [`GuardSnapshot`](super::GuardSnapshot) so a guard resumes where it was).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrigState {
    /// Baseline of a relative trigger.
    #[serde(default)]
    pub(super) baseline: Option<f64>,
    /// Consecutive breaching evaluations.
    #[serde(default)]
    pub(super) consecutive: u32,
    /// Breaching evaluations inside the sliding window.
    #[serde(default)]
    pub(super) breaches: VecDeque<Timestamp>,
    /// Start of a continuous breach (sustained triggers).
    #[serde(default)]
    pub(super) breach_since: Option<Timestamp>,
    /// Start of missing data.
    #[serde(default)]
    pub(super) no_data_since: Option<Timestamp>,
}

pub(super) enum Outcome {
    Ok,
    Blocking,
    Fired,
    NoDataLimit,
}

pub(super) fn reading_for(obs: &Observation, name: &str) -> Reading {
    match obs.readings.get(name) {
        Some(Reading::Value { value }) => Reading::value(*value),
        Some(r) => r.clone(),
        None => Reading::NoData {
            detail: "not observed".into(),
        },
    }
}

pub(super) fn reading_detail(r: &Reading) -> String {
    match r {
        Reading::Value { .. } => String::new(),
        Reading::NoData { detail } => detail.clone(),
        Reading::Failed { error } => error.clone(),
    }
}

pub(super) fn status_of(t: &TriggerSpec, st: &TrigState) -> TriggerStatus {
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
pub(super) fn evaluate(
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

pub(super) fn describe(t: &TriggerSpec, s: &TriggerStatus) -> String {
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
