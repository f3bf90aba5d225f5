//! Replay: run the guard's engine over recorded series as if a rollout had started at `from`,
//! evaluating every `interval`, and report when and why it would have rolled back — or that it
//! would have completed. Pure: the series come from a file ([`Recorded::parse`]) or from a
//! Prometheus range query filled in by the caller.

use changegate_policy::Metric;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::codes::ReasonCode;
use crate::engine::{Decision, Guard, Observation, Reason, Verdict};
use crate::recorded::Recorded;
use crate::spec::GuardSpec;

/// The policy name of a metric (the recorded file's `metric` field).
pub fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::ErrorRate => "error-rate",
        Metric::P95Latency => "p95-latency",
        Metric::HealthCheckFailures => "health-check-failures",
        Metric::DbPoolUtilisation => "db-pool-utilisation",
        Metric::MemoryUtilisation => "memory-utilisation",
    }
}

/// Replay settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReplayOptions {
    /// The rollout starts here (baselines are read here).
    pub from: Timestamp,
    /// Last evaluation at or before this time.
    pub to: Timestamp,
    /// Evaluation interval.
    #[serde(with = "crate::spec::dur_secs")]
    pub interval: SignedDuration,
    /// How old a sample may be and still count.
    #[serde(with = "crate::spec::dur_secs")]
    pub lookback: SignedDuration,
}

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayVerdict {
    /// The plan would have completed.
    Complete,
    /// The guard would have rolled back.
    Rollback,
    /// The rollout would never have started (no baseline).
    Abort,
    /// The data ended before the plan completed (and nothing fired).
    Incomplete,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// Outcome.
    pub verdict: ReplayVerdict,
    /// Plan name.
    pub plan: String,
    /// Category level.
    pub category: u8,
    /// Settings used.
    pub options: ReplayOptions,
    /// When the outcome was reached (the last evaluation for `incomplete`).
    pub at: Timestamp,
    /// Step index reached, if started.
    pub step: Option<usize>,
    /// Weight reached.
    pub weight: Option<u8>,
    /// Why (the final decision's reasons).
    pub reasons: Vec<Reason>,
    /// Every decision that changed state (promotions, new hold reasons, the final one).
    pub timeline: Vec<Decision>,
    /// Number of evaluations run.
    pub evaluations: usize,
}

/// Whether `d` differs from `prev` in a way worth recording: a verdict other than hold, or a
/// different set of reason codes per trigger.
pub fn is_state_change(prev: Option<&Decision>, d: &Decision) -> bool {
    let key = |d: &Decision| {
        d.reasons
            .iter()
            .map(|r| (r.code, r.trigger.clone()))
            .collect::<Vec<_>>()
    };
    d.verdict != Verdict::Hold || prev.is_none_or(|p| key(p) != key(d) || p.step != d.step)
}

/// The observation the recorded series give at `t`.
pub fn observe(
    spec: &GuardSpec,
    rec: &Recorded,
    t: Timestamp,
    lookback: SignedDuration,
) -> Observation {
    let mut obs = Observation::default();
    for trig in &spec.triggers {
        let own = format!("trigger:{}", trig.name);
        obs.readings.insert(
            trig.name.clone(),
            rec.reading(&[&own, metric_name(trig.metric)], t, lookback),
        );
    }
    if rec.keys().any(|k| k == "traffic") {
        obs.traffic = Some(rec.reading(&["traffic"], t, lookback));
    }
    obs
}

/// Replay `spec` over `rec`.
pub fn replay(spec: &GuardSpec, rec: &Recorded, opts: ReplayOptions) -> ReplayReport {
    let mut guard = Guard::new(spec.clone());
    let mut timeline: Vec<Decision> = Vec::new();
    let mut last: Option<Decision> = None;
    let mut evaluations = 0;
    let interval = if opts.interval.is_positive() {
        opts.interval
    } else {
        SignedDuration::from_secs(10)
    };
    let mut t = opts.from;
    while t <= opts.to && !guard.finished() {
        let d = guard.observe(t, &observe(spec, rec, t, opts.lookback));
        evaluations += 1;
        if is_state_change(last.as_ref(), &d) {
            timeline.push(d.clone());
        }
        last = Some(d);
        t += interval;
    }
    let verdict = match guard.phase() {
        crate::engine::Phase::Complete => ReplayVerdict::Complete,
        crate::engine::Phase::RolledBack => ReplayVerdict::Rollback,
        crate::engine::Phase::Aborted => ReplayVerdict::Abort,
        _ => ReplayVerdict::Incomplete,
    };
    let (at, step, weight, mut reasons) = match &last {
        Some(d) => (d.at, d.step, d.weight, d.reasons.clone()),
        None => (opts.from, None, None, Vec::new()),
    };
    if verdict == ReplayVerdict::Incomplete {
        reasons.insert(
            0,
            Reason {
                code: ReasonCode::DataEnded,
                trigger: None,
                message: format!(
                    "replay ended at {at} before the plan completed; it did not roll back"
                ),
                value: None,
                limit: None,
            },
        );
    }
    ReplayReport {
        verdict,
        plan: spec.plan.name.clone(),
        category: spec.category,
        options: opts,
        at,
        step,
        weight,
        reasons,
        timeline,
        evaluations,
    }
}
