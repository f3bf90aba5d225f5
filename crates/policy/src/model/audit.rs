//! Audit trail fields and retention (`[audit]`).

use crate::types::CalSpan;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Retention period.
    pub retention: CalSpan,
    /// Logged fields by question.
    pub fields: AuditFields,
}

/// Audit fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditFields {
    /// What changed.
    pub what: Vec<String>,
    /// Who.
    pub who: Vec<String>,
    /// When.
    pub when: Vec<String>,
    /// Why.
    pub why: Vec<String>,
    /// Outcome.
    pub outcome: Vec<String>,
}
