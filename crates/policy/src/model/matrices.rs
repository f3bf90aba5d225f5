//! Approval matrices and facet rules (`[matrices]`, `[rules]`), and what a facet requires.

use super::{Level, RoleId};
use crate::types::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An approval matrix (one table of the policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Title.
    pub title: String,
    /// Rows.
    pub rows: Vec<MatrixRow>,
}

/// One row of an approval matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixRow {
    /// The change type, as the policy names it.
    pub change: String,
    /// Facet codes this row covers.
    pub facets: Vec<String>,
    /// Roles that must all approve.
    pub roles: Vec<RoleId>,
    /// Category level the facet puts a change in.
    pub category: Level,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// Downtime above which a migration counts as requiring downtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_threshold: Option<Dur>,
    /// Monthly cost increase (USD) above which the row applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_usd_per_month: Option<f64>,
}

/// A facet rule outside the matrices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The change type.
    pub change: String,
    /// Roles that must all approve.
    pub roles: Vec<RoleId>,
    /// Category level.
    pub category: Level,
    /// Minimum coverage (percent) of changed lines for this facet to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_changed_line_coverage: Option<f64>,
    /// Conventional-commit types that mark a change as a fix (`fix`, `hotfix`): with
    /// `min_changed_line_coverage`, the rule applies only to a change one of whose commits has
    /// such a type (`fix: …`, `fix(scope)!: …`) or that carries one of `fix_labels`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix_types: Vec<String>,
    /// Pull-request labels that mark a change as a fix (labels come from the authenticated
    /// GitHub webhook, never from a request body).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix_labels: Vec<String>,
}

/// Where a facet's requirement comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum RuleSource {
    /// A matrix row.
    Matrix {
        /// Matrix key.
        matrix: String,
        /// Row index (0-based).
        row: usize,
    },
    /// A `[rules]` entry.
    Rule {
        /// Facet code.
        facet: String,
    },
}

/// What one facet requires.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FacetRequirement {
    /// The facet code.
    pub facet: String,
    /// The change type as the policy names it.
    pub change: String,
    /// Roles that must all approve.
    pub roles: Vec<RoleId>,
    /// Category level.
    pub category: Level,
    /// Where in the policy this comes from.
    pub source: RuleSource,
}
