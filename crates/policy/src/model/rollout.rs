//! Rollout plans (`[rollout]`).

use super::is_false;
use crate::types::Dur;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rollout plans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Plans by name.
    pub plans: IndexMap<String, Plan>,
}

/// A rollout plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Description.
    pub description: String,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Planned total span (reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Dur>,
    /// Monitoring after the last step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_after: Option<Dur>,
    /// Incident Commander on standby during the rollout.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incident_commander_standby: bool,
}

/// A rollout step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Environment (`staging`, `production`).
    pub environment: String,
    /// Traffic weight in percent (1..=100).
    pub weight: u8,
    /// Minimum healthy soak before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<Dur>,
}
