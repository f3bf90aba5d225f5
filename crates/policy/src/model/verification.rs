//! Post-deployment verification (`[verification]`): what the server checks after the last step
//! of a rollout, and how long it has to pass.
//!
//! The list is the policy's `[checklist.post]`: the health endpoints of its items are polled on
//! the deployed service, and each item with a Prometheus reading has a check here that names it
//! (`item`), its PromQL (`query`) and its limit. Checks apply to every category unless they say
//! otherwise (`applies_to`): the seed's error rate < 0.5 % and p95 < 250 ms are verified for
//! every category, not only the categories whose rollback triggers carry those SLOs.

use super::{Level, is_false, is_true, yes};
use crate::types::Dur;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Post-deployment verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// Every check must pass within this time after the last step of the rollout; a check that
    /// fails, or has not passed by then, fails the verification (which rolls back).
    pub within: Dur,
    /// How often the checks are polled.
    pub interval: Dur,
    /// Absolute URLs polled besides the `endpoints` of the `[checklist.post]` items (which are
    /// paths on the deployed service's base URL). Each must answer 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Prometheus checks, by name.
    #[serde(default)]
    pub checks: IndexMap<String, VerificationCheck>,
}

impl Default for Verification {
    fn default() -> Self {
        Verification {
            within: "1h".parse().expect("a valid duration"),
            interval: "30s".parse().expect("a valid duration"),
            urls: Vec::new(),
            checks: IndexMap::new(),
        }
    }
}

/// One Prometheus check of the verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationCheck {
    /// The `[checklist.post]` item this check verifies.
    pub item: String,
    /// PromQL returning one value (the largest series is judged; no data never passes).
    pub query: String,
    /// Passes when the value is strictly below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Passes when the value is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    /// Passes when the value is within `tolerance` of the plan's final weight (the feature-flag
    /// rollout percentage the rollout ended at).
    #[serde(default, skip_serializing_if = "is_false")]
    pub rollout_weight: bool,
    /// Tolerance of `rollout_weight`, in percentage points (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Unit of the value, for messages (`%`, `ms`, `count`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// Category levels it applies to (default: every category).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<Level>,
    /// Disable without deleting.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

impl VerificationCheck {
    /// Whether it applies to a change of category `level`.
    pub fn applies(&self, level: Level) -> bool {
        self.enabled && (self.applies_to.is_empty() || self.applies_to.contains(&level))
    }
}
