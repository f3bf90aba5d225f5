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
    /// What the change window must hold: the whole rollout (a canary of minutes), or only the
    /// production deployment up to its first production step (a feature-flag rollout whose
    /// later steps are flag promotions over hours or days).
    #[serde(default, skip_serializing_if = "WindowHolds::is_whole")]
    pub window_holds: WindowHolds,
}

/// What the change window must hold of a rollout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WindowHolds {
    /// The whole rollout, every step and soak (the change's `deploy_duration`, default the plan's
    /// span).
    #[default]
    WholeRollout,
    /// The deployment up to and including its first production step (the change's
    /// `deploy_duration`, default the gate's); later steps are checked against the plan instead.
    FirstProductionStep,
}

impl WindowHolds {
    /// The default (`whole-rollout`).
    pub fn is_whole(&self) -> bool {
        *self == WindowHolds::WholeRollout
    }
}

impl Plan {
    /// The planned span of the steps: the sum of their soaks.
    pub fn span(&self) -> jiff::SignedDuration {
        self.steps
            .iter()
            .filter_map(|s| s.soak.as_ref())
            .fold(jiff::SignedDuration::ZERO, |a, d| a.saturating_add(d.get()))
    }
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
