//! Rollback deadline, triggers and procedures (`[rollback]`).

use super::{Level, RoleId, is_true, yes};
use crate::types::Dur;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rollback settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// Traffic must be back on the old version within this time.
    pub deadline: Dur,
    /// How rollback is executed.
    #[serde(default)]
    pub execution: String,
    /// Post-mortem due after a manual rollback.
    pub post_mortem_within: Dur,
    /// Documented manual rollback commands.
    #[serde(default)]
    pub manual_commands: Vec<String>,
    /// Automatic rollback triggers.
    pub triggers: IndexMap<String, Trigger>,
    /// Database rollback.
    pub database: DatabaseRollback,
    /// Rollback testing for high-risk changes.
    pub testing: RollbackTesting,
}

/// A metric a trigger watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Percent of requests that failed (5xx).
    ErrorRate,
    /// p95 latency in milliseconds.
    P95Latency,
    /// Count of failed health checks.
    HealthCheckFailures,
    /// Database connection pool utilisation, percent.
    DbPoolUtilisation,
    /// Memory utilisation, percent.
    MemoryUtilisation,
}

impl Metric {
    /// The unit values of this metric are in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::ErrorRate | Metric::DbPoolUtilisation | Metric::MemoryUtilisation => "%",
            Metric::P95Latency => "ms",
            Metric::HealthCheckFailures => "failures",
        }
    }
}

/// How a trigger compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerKind {
    /// Value above threshold.
    Absolute,
    /// Value above baseline + threshold.
    Relative,
    /// Count of events in `window` above threshold.
    Count,
    /// Utilisation above threshold (percent).
    Utilisation,
    /// Above threshold for all of `window`.
    Sustained,
}

/// Whether a trigger acts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerMode {
    /// Fires a rollback.
    #[default]
    Enforce,
    /// Evaluated and recorded only.
    Shadow,
}

/// An automatic rollback trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Description.
    pub description: String,
    /// Metric.
    pub metric: Metric,
    /// Comparison.
    pub kind: TriggerKind,
    /// Threshold in the metric's unit.
    pub threshold: f64,
    /// Window for `count` and `sustained`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Dur>,
    /// Category levels.
    pub applies_to: Vec<Level>,
    /// Enforce or shadow.
    #[serde(default, skip_serializing_if = "is_default_mode")]
    pub mode: TriggerMode,
    /// Disable without deleting.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// PromQL override for the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

fn is_default_mode(m: &TriggerMode) -> bool {
    *m == TriggerMode::Enforce
}

/// Database rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRollback {
    /// Role that approves.
    pub approver: RoleId,
    /// Role that executes.
    pub executor: RoleId,
    /// Maximum downtime of a database rollback approved by the usual authority ("may require
    /// brief downtime (<5 min)").
    pub max_downtime: Dur,
    /// The migration-rollback command the server runs for a database rollback (unless the server
    /// is given `--database-rollback-action`), e.g. `npm run prisma:migrate:rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Roles that must also approve a database rollback whose downtime estimate is above
    /// `max_downtime` (the seed: the Product Owner, who approves customer-visible downtime). Empty:
    /// such a rollback is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub long_downtime_approvers: Vec<RoleId>,
}

/// Rollback testing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackTesting {
    /// Category levels.
    pub applies_to: Vec<Level>,
    /// Requirements.
    pub requirements: Vec<String>,
    /// Target rollback duration.
    pub max_duration: Dur,
}
