//! Roles and separation of duties (`[roles]`, `[separation_of_duties]`).

use super::{is_true, yes};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A role and its holders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Display name.
    pub name: String,
    /// What the role does in the process.
    #[serde(default)]
    pub description: String,
    /// People (`alice`) or teams (`team:backend`) who hold the role.
    #[serde(default)]
    pub holders: Vec<String>,
    /// Whether an approval in this role is invalidated by a new head commit.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub invalidate_on_new_commit: bool,
}

/// Separation-of-duties rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeparationOfDuties {
    /// May a commit author, co-author or the last pusher approve the change?
    pub author_may_approve: bool,
    /// May one person fill two required roles of the same change?
    pub one_person_many_roles: bool,
}
