//! Classifier settings (`[classify]`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Classifier settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifySettings {
    /// Globs of documentation files.
    #[serde(default)]
    pub docs_paths: Vec<String>,
    /// Globs of SQL migration files.
    #[serde(default)]
    pub migration_paths: Vec<String>,
    /// Globs of feature-flag configuration files.
    #[serde(default)]
    pub feature_flag_paths: Vec<String>,
    /// Keys whose change is a log-level adjustment.
    #[serde(default)]
    pub log_level_keys: Vec<String>,
    /// Globs of env example files.
    #[serde(default)]
    pub env_files: Vec<String>,
    /// Tables whose migrations are flagged as locking a big table.
    #[serde(default)]
    pub big_tables: Vec<String>,
    /// Globs of Infracost JSON reports (`infracost breakdown --format json`) kept in the
    /// repository: the monthly total of base and head is compared for the `cost-increase` row.
    #[serde(default)]
    pub cost_report_paths: Vec<String>,
    /// How lockfile changes of transitive packages are graded (`attribute`, the default: as
    /// evidence of the direct dependency change that caused them, graded by it; `strict`: each
    /// graded on its own, as the matrix rows read literally). A lockfile-only change (no direct
    /// dependency changed) is graded by its transitive changes either way, and a transitive
    /// production package is never attributed to a dev-only direct change.
    #[serde(default)]
    pub transitive: Transitive,
    /// How an update of a dev-only dependency is graded (`dev-changed`, the default: the
    /// `dep-dev-changed` facet, which the seed maps with new dev dependencies, "no production
    /// impact"; `graded`: `dep-patch` / `dep-minor` / `dep-major` like a production dependency).
    /// Either way a production dependency changed in the same manifest keeps its own grade.
    #[serde(default)]
    pub dev_updates: DevUpdates,
    /// Globs of CI and bot configuration files (GitHub Actions workflows, Dependabot, Renovate):
    /// `ci-config-changed`, or `deploy-config-changed` when a changed workflow deploys (one of
    /// `deploy_markers` appears in the base or head version).
    #[serde(default)]
    pub ci_paths: Vec<String>,
    /// Text that marks a CI workflow as deploying to production (e.g. `kubectl`, `environment:
    /// production`): such a workflow changes how production deploys.
    #[serde(default)]
    pub deploy_markers: Vec<String>,
    /// Monthly increase (USD) above which a cost change is a `cost-increase`: not written in
    /// the file, but taken from the `threshold_usd_per_month` of the matrix row that lists the
    /// `cost-increase` facet when a change is classified. `None`: any increase counts.
    #[serde(skip)]
    #[schemars(skip)]
    pub cost_threshold_usd_per_month: Option<f64>,
    /// Declared downtime above which a migration requires downtime (`schema-downtime`): not
    /// written in the file, but taken from the `downtime_threshold` of the matrix row that lists
    /// `schema-downtime` when a change is classified. `None`: any declared downtime counts.
    #[serde(skip)]
    #[schemars(skip)]
    pub downtime_threshold: Option<crate::types::Dur>,
}

/// How transitive lockfile changes are graded (`[classify] transitive`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Transitive {
    /// Attributed to the direct dependency change of the same manifest (shown as its evidence);
    /// graded on their own only when no direct dependency changed.
    #[default]
    Attribute,
    /// Every transitive change graded on its own.
    Strict,
}

/// How dev-only dependency updates are graded (`[classify] dev_updates`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DevUpdates {
    /// `dep-dev-changed`, whatever the semver grade.
    #[default]
    DevChanged,
    /// `dep-patch` / `dep-minor` / `dep-major`, as a production dependency.
    Graded,
}
