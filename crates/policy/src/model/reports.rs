//! Reports, metrics and reviews (`[reports]`).

use super::{Level, RoleId};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reports {
    /// Monthly audit report.
    pub monthly: MonthlyReport,
    /// Tracked metrics, keyed by id.
    pub metrics: IndexMap<String, ReportMetric>,
    /// Quarterly review.
    pub quarterly: QuarterlyReview,
    /// Post-mortem questions.
    pub retrospective: Retrospective,
}

/// Monthly report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonthlyReport {
    /// Reviewer roles.
    pub reviewers: Vec<RoleId>,
}

/// Comparison for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Op {
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// At most.
    #[serde(rename = "<=")]
    Le,
    /// Equal.
    #[serde(rename = "=")]
    Eq,
    /// At least.
    #[serde(rename = ">=")]
    Ge,
    /// More than.
    #[serde(rename = ">")]
    Gt,
}

impl Op {
    /// Whether `value op target` holds.
    pub fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Op::Lt => value < target,
            Op::Le => value <= target,
            Op::Eq => (value - target).abs() < f64::EPSILON,
            Op::Ge => value >= target,
            Op::Gt => value > target,
        }
    }
    /// Symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }
}

/// A report metric and its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportMetric {
    /// Description.
    pub description: String,
    /// Unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    /// Target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Category levels counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<Level>,
}

/// Quarterly review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarterlyReview {
    /// Reviewer roles.
    pub reviewers: Vec<RoleId>,
    /// Review questions.
    pub questions: Vec<String>,
}

/// Retrospective questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retrospective {
    /// Questions every post-mortem must answer.
    pub questions: Vec<String>,
}
