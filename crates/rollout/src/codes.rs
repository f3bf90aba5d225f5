//! Stable reason codes. Every decision the guard takes, and every status of a trigger, carries one
//! of these kebab-case codes, so logs, JSON output and dashboards can match on them while the
//! human messages are free to improve. Codes are never renamed; new ones are added at the end.

use serde::{Deserialize, Serialize};

/// Why the guard decided what it did (or why a trigger is in the state it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonCode {
    /// The baseline of a relative trigger was measured before the first step.
    BaselineMeasured,
    /// A relative trigger has no baseline yet: the first step waits.
    BaselineMissing,
    /// The baseline could not be measured within the no-data limit: the rollout is aborted
    /// before any traffic moved.
    BaselineUnavailable,
    /// The current step is soaking; the next step waits for the soak to end.
    Soaking,
    /// The soak ended with every enforced trigger healthy: promote.
    SoakElapsed,
    /// The last step soaked (and was monitored) healthy: the rollout is complete.
    PlanComplete,
    /// A trigger's value is below its limit.
    Healthy,
    /// An absolute or utilisation trigger crossed its threshold.
    ThresholdExceeded,
    /// A relative trigger crossed baseline + threshold.
    BaselineExceeded,
    /// A count trigger counted more events in its window than its threshold.
    CountExceeded,
    /// A sustained trigger stayed above its threshold for its whole window.
    SustainedBreach,
    /// A trigger is above its limit but its condition (consecutive-N, N-in-window, sustained
    /// window) is not met yet: no promotion meanwhile.
    BreachPending,
    /// A shadow-mode trigger would have rolled back; recorded only.
    ShadowBreach,
    /// The query returned no sample (empty result or NaN): never counts as healthy.
    NoData,
    /// The query failed or Prometheus was unreachable: never counts as healthy.
    QueryFailed,
    /// A trigger had no data for longer than its no-data limit: roll back.
    NoDataLimit,
    /// Traffic is below the minimum for a relative trigger to judge: it neither fires nor
    /// vouches for promotion.
    InsufficientTraffic,
    /// The guard already finished; further observations change nothing.
    GuardFinished,
    /// The set-weight action failed: fail closed and roll back.
    SetWeightFailed,
    /// A person asked for the rollback (`rollout rollback`).
    ManualRollback,
    /// The roles given hold the category's rollback authority.
    AuthorityGranted,
    /// The roles given do not hold the category's rollback authority.
    AuthorityDenied,
    /// Replay reached the end of the recorded data before the plan completed.
    DataEnded,
    /// A non-relative trigger before the first step: it is judged from the first step on.
    NotStarted,
}

impl ReasonCode {
    /// Every code, in declaration order (docs and the uniqueness test use it).
    pub const ALL: &'static [ReasonCode] = &[
        ReasonCode::BaselineMeasured,
        ReasonCode::BaselineMissing,
        ReasonCode::BaselineUnavailable,
        ReasonCode::Soaking,
        ReasonCode::SoakElapsed,
        ReasonCode::PlanComplete,
        ReasonCode::Healthy,
        ReasonCode::ThresholdExceeded,
        ReasonCode::BaselineExceeded,
        ReasonCode::CountExceeded,
        ReasonCode::SustainedBreach,
        ReasonCode::BreachPending,
        ReasonCode::ShadowBreach,
        ReasonCode::NoData,
        ReasonCode::QueryFailed,
        ReasonCode::NoDataLimit,
        ReasonCode::InsufficientTraffic,
        ReasonCode::GuardFinished,
        ReasonCode::SetWeightFailed,
        ReasonCode::ManualRollback,
        ReasonCode::AuthorityGranted,
        ReasonCode::AuthorityDenied,
        ReasonCode::DataEnded,
        ReasonCode::NotStarted,
    ];

    /// The kebab-case code.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::BaselineMeasured => "baseline-measured",
            ReasonCode::BaselineMissing => "baseline-missing",
            ReasonCode::BaselineUnavailable => "baseline-unavailable",
            ReasonCode::Soaking => "soaking",
            ReasonCode::SoakElapsed => "soak-elapsed",
            ReasonCode::PlanComplete => "plan-complete",
            ReasonCode::Healthy => "healthy",
            ReasonCode::ThresholdExceeded => "threshold-exceeded",
            ReasonCode::BaselineExceeded => "baseline-exceeded",
            ReasonCode::CountExceeded => "count-exceeded",
            ReasonCode::SustainedBreach => "sustained-breach",
            ReasonCode::BreachPending => "breach-pending",
            ReasonCode::ShadowBreach => "shadow-breach",
            ReasonCode::NoData => "no-data",
            ReasonCode::QueryFailed => "query-failed",
            ReasonCode::NoDataLimit => "no-data-limit",
            ReasonCode::InsufficientTraffic => "insufficient-traffic",
            ReasonCode::GuardFinished => "guard-finished",
            ReasonCode::SetWeightFailed => "set-weight-failed",
            ReasonCode::ManualRollback => "manual-rollback",
            ReasonCode::AuthorityGranted => "authority-granted",
            ReasonCode::AuthorityDenied => "authority-denied",
            ReasonCode::DataEnded => "data-ended",
            ReasonCode::NotStarted => "not-started",
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_kebab_and_match_serde() {
        let mut seen = HashSet::new();
        for code in ReasonCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{s} is not kebab-case"
            );
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(s.into())
            );
        }
        // ALL must list every variant: serde round-trips each listed one, and the count is pinned.
        assert_eq!(ReasonCode::ALL.len(), 24);
    }
}
