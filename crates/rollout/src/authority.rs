//! Who may roll back: the category's `rollback_authority` is a list of role sets; any one set
//! whose roles are all present grants it. Sets marked `during_active_incident` count only while an
//! incident is active. Pure; the caller says which roles are present (from flags today, from the
//! store's approvals and incidents later).

use changegate_policy::{Level, Policy, RoleId};
use serde::Serialize;

use crate::codes::ReasonCode;
use crate::engine::Reason;

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthorityDecision {
    /// Whether the roles may roll back.
    pub allowed: bool,
    /// The role set that granted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<Vec<RoleId>>,
    /// Why.
    pub reasons: Vec<Reason>,
}

/// Check `roles` against the rollback authority of category `level`.
pub fn check(
    policy: &Policy,
    level: Level,
    roles: &[RoleId],
    active_incident: bool,
) -> AuthorityDecision {
    let deny = |message: String| AuthorityDecision {
        allowed: false,
        granted_by: None,
        reasons: vec![Reason {
            code: ReasonCode::AuthorityDenied,
            trigger: None,
            message,
            value: None,
            limit: None,
        }],
    };
    let Some((name, cat)) = policy.category(level) else {
        return deny(format!("category {level} is not defined"));
    };
    let unknown: Vec<&RoleId> = roles
        .iter()
        .filter(|r| !policy.roles.contains_key(*r))
        .collect();
    if !unknown.is_empty() {
        return deny(format!(
            "unknown role(s) {unknown:?}; roles are declared under [roles]"
        ));
    }
    for set in &cat.rollback_authority {
        if set.during_active_incident && !active_incident {
            continue;
        }
        if set.all_of.iter().all(|r| roles.contains(r)) {
            return AuthorityDecision {
                allowed: true,
                granted_by: Some(set.all_of.clone()),
                reasons: vec![Reason {
                    code: ReasonCode::AuthorityGranted,
                    trigger: None,
                    message: format!(
                        "{} may roll back a {name} change{}",
                        set.all_of.join(" + "),
                        if set.during_active_incident {
                            " during an active incident"
                        } else {
                            ""
                        }
                    ),
                    value: None,
                    limit: None,
                }],
            };
        }
    }
    let needed: Vec<String> = cat
        .rollback_authority
        .iter()
        .map(|s| {
            format!(
                "{}{}",
                s.all_of.join(" + "),
                if s.during_active_incident {
                    " (during an active incident)"
                } else {
                    ""
                }
            )
        })
        .collect();
    deny(format!(
        "{:?} cannot roll back a {name} change (category {level}); it needs one of: {}",
        roles,
        needed.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(r: &[&str]) -> Vec<RoleId> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn high_risk_needs_both_leads_or_commander_in_incident() {
        let p = changegate_policy::load_default().policy;
        assert!(!check(&p, 3, &roles(&["backend-lead"]), false).allowed);
        let both = check(&p, 3, &roles(&["backend-lead", "sre-lead"]), false);
        assert!(both.allowed);
        assert_eq!(both.reasons[0].code, ReasonCode::AuthorityGranted);
        assert!(!check(&p, 3, &roles(&["incident-commander"]), false).allowed);
        assert!(check(&p, 3, &roles(&["incident-commander"]), true).allowed);
        assert!(check(&p, 2, &roles(&["backend-lead"]), false).allowed);
        let denied = check(&p, 2, &roles(&["sre-lead"]), false);
        assert_eq!(denied.reasons[0].code, ReasonCode::AuthorityDenied);
        assert!(denied.reasons[0].message.contains("backend-lead"));
        assert!(!check(&p, 2, &roles(&["ceo-of-everything"]), false).allowed);
        assert!(!check(&p, 9, &roles(&["backend-lead"]), false).allowed);
    }
}
