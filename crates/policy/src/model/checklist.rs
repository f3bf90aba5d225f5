//! Pre-deployment checklist and post-deployment verification (`[checklist]`).

use super::{Level, is_false, is_true, yes};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Checklists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checklist {
    /// Pre-deployment checklist.
    pub pre: IndexMap<String, ChecklistItem>,
    /// Post-deployment verification.
    pub post: IndexMap<String, ChecklistItem>,
}

/// A checklist item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    /// Text.
    pub text: String,
    /// Category levels.
    pub applies_to: Vec<Level>,
    /// Kind of evidence expected with an attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Checked by changegate itself.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto: bool,
    /// Applies only when the change has this property (`schema-change`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Endpoints to probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Threshold in the item's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Disable without deleting.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}
