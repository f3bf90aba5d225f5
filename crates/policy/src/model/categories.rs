//! Change categories (`[categories]`): level, approval kind, window class, rollback authority
//! and monitoring.

use super::{Level, RoleId, is_false};
use crate::types::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a category is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CategoryKind {
    /// Auto-approved by CI.
    Auto,
    /// One approval (plus matrix rows).
    SingleApproval,
    /// Several approvals.
    MultiApproval,
    /// Emergency: the incident commander decides.
    Emergency,
}

/// Which change-window class a category is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WindowClass {
    /// 24/7, no restrictions.
    AnyTime,
    /// The standard windows, minus freezes.
    Standard,
    /// Planned maintenance windows only.
    Maintenance,
    /// 24/7, overriding every restriction.
    Emergency,
}

impl WindowClass {
    /// The name used in the policy file (`any-time`).
    pub fn as_str(self) -> &'static str {
        match self {
            WindowClass::AnyTime => "any-time",
            WindowClass::Standard => "standard",
            WindowClass::Maintenance => "maintenance",
            WindowClass::Emergency => "emergency",
        }
    }
}

/// A change category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Numeric level; a change takes the highest level of its facets.
    pub level: Level,
    /// How changes of this category are approved.
    pub kind: CategoryKind,
    /// Display name.
    pub name: String,
    /// Definition.
    #[serde(default)]
    pub definition: String,
    /// Examples from the policy.
    #[serde(default)]
    pub examples: Vec<String>,
    /// The approval process, step by step.
    #[serde(default)]
    pub approval_process: Vec<String>,
    /// Roles that approve every change of this category, besides the matrix rows.
    #[serde(default)]
    pub approvers: Vec<RoleId>,
    /// Roles that approve the production deployment itself (after staging).
    #[serde(default)]
    pub deploy_approvers: Vec<RoleId>,
    /// When set (a `[checklist.pre]` item id, `staging-smoke`), the `deploy_approvers` approve in
    /// a separate `deploy` stage, recorded after that item was attested for the head commit; a
    /// review-stage approval in the same role does not count for it. Unset: a deploy approver's
    /// approval is an ordinary one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_approval_after: Option<String>,
    /// When true, the first role in `approvers` alone satisfies every approval requirement.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unilateral: bool,
    /// Change-window class.
    pub window: WindowClass,
    /// Rollout plan name (under `[rollout.plans]`).
    pub rollout_plan: String,
    /// Notification targets (`slack:#channel`, `email:list`, `status-page`).
    #[serde(default)]
    pub notify: Vec<String>,
    /// Remark on notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_note: Option<String>,
    /// Who may roll back: any one of these sets, all roles of the set together.
    pub rollback_authority: Vec<Authority>,
    /// Roles that approve an emergency (out-of-window) exception for this category.
    #[serde(default)]
    pub emergency_approvers: Vec<RoleId>,
    /// What an exception approved by `emergency_approvers` lifts besides the window closure
    /// (category 3: "Emergency: CTO approval required").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_exception: Option<EmergencyException>,
    /// High-risk changes must include a tested rollback plan.
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_tested_rollback: bool,
    /// Post-deployment monitoring.
    pub monitoring: Monitoring,
}

/// A set of roles that together hold an authority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// All of these roles are needed.
    pub all_of: Vec<RoleId>,
    /// Only while an incident is active.
    #[serde(default, skip_serializing_if = "is_false")]
    pub during_active_incident: bool,
}

/// Post-deployment monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// Watch dashboards for this long after deployment.
    pub watch: Dur,
    /// Incident Commander on standby for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_commander_standby: Option<Dur>,
    /// Daily status updates for this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_status_days: Option<u32>,
}

/// What an emergency exception (approved by the category's `emergency_approvers`) lifts. The
/// change keeps its category: its approvers, checklist and rollout plan still apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyException {
    /// Requirements lifted: `maintenance-announcement` (the announcement of the maintenance
    /// window) and lead-time ids under `[lead_times]` (`stakeholder-notice`). Each lift is a
    /// reason of the decision (`emergency-exception-lift`).
    #[serde(default)]
    pub lifts: Vec<String>,
}

/// The `lifts` entry for the maintenance-window announcement.
pub const LIFT_MAINTENANCE_ANNOUNCEMENT: &str = "maintenance-announcement";
