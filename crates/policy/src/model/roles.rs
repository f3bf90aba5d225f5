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

/// A person's identities in other systems (`[people.NAME]`): how changegate recognises the
/// person behind a GitHub login.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonIds {
    /// GitHub login (compared case-insensitively): a review, comment or push by this login in a
    /// signed GitHub webhook is this person's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<String>,
    /// GitHub's numeric user id for the login; when set, a webhook whose user has another id
    /// (a renamed or re-registered login) is not this person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_id: Option<u64>,
}

/// Whether `login` is a GitHub login: 1-39 ASCII letters, digits and single hyphens, not
/// starting or ending with a hyphen (bots end in `[bot]`).
pub fn is_github_login(login: &str) -> bool {
    let name = login.strip_suffix("[bot]").unwrap_or(login);
    !name.is_empty()
        && name.len() <= 39
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}
