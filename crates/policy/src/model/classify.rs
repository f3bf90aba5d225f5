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
