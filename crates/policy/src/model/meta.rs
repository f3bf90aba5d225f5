//! Name, version and ownership of the policy (`[meta]`).

use super::RoleId;
use crate::types::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Name, version and ownership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Policy name.
    pub name: String,
    /// Policy version.
    pub version: String,
    /// Effective date.
    pub effective_date: Date,
    /// Who authorised the policy.
    #[serde(default)]
    pub authority: String,
    /// Compliance frameworks the policy serves.
    #[serde(default)]
    pub compliance: Vec<String>,
    /// Role that owns the policy.
    pub owner: RoleId,
    /// Next scheduled review.
    pub next_review: Option<Date>,
    /// Purpose statements.
    #[serde(default)]
    pub purpose: Vec<String>,
}
