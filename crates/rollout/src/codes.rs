//! Stable reason codes. Every decision the guard takes, and every status of a trigger, carries one
//! of these kebab-case codes, so logs, JSON output and dashboards can match on them while the
//! human messages are free to improve. Codes are never renamed; new ones are added at the end.
//!
//! Declared with [`changegate_codes::codes!`], so `ReasonCode::ALL`, the strings, serde and the
//! registry entries all come from the one list below.

changegate_codes::codes! {
    /// Why the guard decided what it did (or why a trigger is in the state it is).
    pub enum ReasonCode in "rollout" {
        /// The baseline of a relative trigger was measured before the first step.
        BaselineMeasured = "baseline-measured",
        /// A relative trigger has no baseline yet, so the first step waits.
        BaselineMissing = "baseline-missing",
        /// The baseline could not be measured within the no-data limit, so the rollout is aborted before any traffic moved.
        BaselineUnavailable = "baseline-unavailable",
        /// The current step is soaking; the next step waits for the soak to end.
        Soaking = "soaking",
        /// The soak ended with every enforced trigger healthy, so the guard promotes.
        SoakElapsed = "soak-elapsed",
        /// The last step soaked (and was monitored) healthy: the rollout is complete.
        PlanComplete = "plan-complete",
        /// A trigger's value is below its limit.
        Healthy = "healthy",
        /// An absolute or utilisation trigger crossed its threshold.
        ThresholdExceeded = "threshold-exceeded",
        /// A relative trigger crossed baseline + threshold.
        BaselineExceeded = "baseline-exceeded",
        /// A count trigger counted more events in its window than its threshold.
        CountExceeded = "count-exceeded",
        /// A sustained trigger stayed above its threshold for its whole window.
        SustainedBreach = "sustained-breach",
        /// A trigger is above its limit but its condition (consecutive-N, N-in-window, sustained window) is not met yet, so nothing is promoted meanwhile.
        BreachPending = "breach-pending",
        /// A shadow-mode trigger would have rolled back; recorded only.
        ShadowBreach = "shadow-breach",
        /// The query returned no sample (empty result or NaN), which never counts as healthy.
        NoData = "no-data",
        /// The query failed or Prometheus was unreachable, which never counts as healthy.
        QueryFailed = "query-failed",
        /// A trigger had no data for longer than its no-data limit, so the guard rolls back.
        NoDataLimit = "no-data-limit",
        /// Traffic is below the minimum for a relative trigger to judge: it neither fires nor vouches for promotion.
        InsufficientTraffic = "insufficient-traffic",
        /// The guard already finished; further observations change nothing.
        GuardFinished = "guard-finished",
        /// The set-weight action failed, so the guard fails closed and rolls back.
        SetWeightFailed = "set-weight-failed",
        /// A person asked for the rollback (`rollout rollback`).
        ManualRollback = "manual-rollback",
        /// The roles given hold the category's rollback authority.
        AuthorityGranted = "authority-granted",
        /// The roles given do not hold the category's rollback authority.
        AuthorityDenied = "authority-denied",
        /// Replay reached the end of the recorded data before the plan completed.
        DataEnded = "data-ended",
        /// A non-relative trigger before the first step: it is judged from the first step on.
        NotStarted = "not-started",
        /// The post-deployment verification failed (a check failed, or did not pass in time), so the server rolls back.
        VerificationFailed = "verification-failed",
        /// The gate denies the next promotion (a freeze began): the server holds the rollout at its step.
        GateHold = "gate-hold",
    }
}

changegate_codes::codes! {
    /// How a rollout event ended, as recorded in the audit trail's `outcome.result` (`rollout run`
    /// and `rollout rollback` with `--audit`).
    pub enum RolloutResult in "rollout-result" {
        /// The plan completed healthy.
        Success = "success",
        /// The guard moved traffic to the next step.
        Promote = "promote",
        /// The guard kept the current weight.
        Hold = "hold",
        /// Traffic was moved back to the old version.
        Rollback = "rollback",
        /// The guard judged the plan complete (an evaluation before the final event).
        Complete = "complete",
        /// The rollout never started (no baseline); nothing was rolled back.
        Abort = "abort",
        /// A manual rollback was refused: the roles given lack the rollback authority.
        RollbackDenied = "rollback-denied",
    }
}

impl From<crate::engine::Verdict> for RolloutResult {
    /// The result of an event whose decision had this verdict.
    fn from(v: crate::engine::Verdict) -> Self {
        use crate::engine::Verdict as V;
        match v {
            V::Promote => RolloutResult::Promote,
            V::Hold => RolloutResult::Hold,
            V::Rollback => RolloutResult::Rollback,
            V::Complete => RolloutResult::Complete,
            V::Abort => RolloutResult::Abort,
        }
    }
}

#[cfg(test)]
mod tests {
    use changegate_codes::CodeSet;

    use super::*;

    #[test]
    fn codes_are_unique_kebab_and_described() {
        let mut entries = ReasonCode::entries();
        entries.extend(RolloutResult::entries());
        let problems = changegate_codes::problems(&entries, &[]);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// The audit results keep the strings they had when they were the verdict's lowercased name.
    #[test]
    fn results_of_verdicts_are_the_verdicts_names() {
        use crate::engine::Verdict as V;
        for v in [V::Promote, V::Hold, V::Rollback, V::Complete, V::Abort] {
            assert_eq!(
                RolloutResult::from(v).as_str(),
                format!("{v:?}").to_lowercase()
            );
        }
    }

    #[test]
    fn every_code_round_trips_through_serde_as_its_string() {
        for code in ReasonCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
            assert_eq!(serde_json::from_value::<ReasonCode>(json).unwrap(), *code);
        }
    }

    /// The codes listed (in backticks) in the section of docs/rollout.md under `heading`.
    fn documented(heading: &str) -> Vec<&'static str> {
        let docs = include_str!("../../../docs/rollout.md");
        let section = docs
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("docs/rollout.md has no `{heading}` section"));
        let section = section.split("\n## ").next().unwrap_or(section);
        section
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|s| changegate_codes::is_kebab(s))
            .collect()
    }

    /// docs/rollout.md lists every code, and nothing there looks like a code that does not exist.
    fn check_documented<C: CodeSet + std::str::FromStr>(heading: &str) {
        let listed = documented(heading);
        for code in C::ALL {
            assert!(
                listed.contains(&code.as_str()),
                "docs/rollout.md ({heading}) does not document `{}`",
                code.as_str()
            );
        }
        for s in &listed {
            assert!(
                s.parse::<C>().is_ok(),
                "docs/rollout.md ({heading}) lists `{s}`, which is not a {} code",
                C::DOMAIN
            );
        }
    }

    #[test]
    fn docs_list_every_code() {
        check_documented::<ReasonCode>("## Reason codes");
        check_documented::<RolloutResult>("## Audit trail");
    }
}
