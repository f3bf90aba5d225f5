//! Stable reason codes of gate decisions.
//!
//! A deploy pipeline, a dashboard or an auditor keys on these codes, so they are part of the API:
//! each is kebab-case, documented (docs/gate.md lists them all) and unique (tested). Renaming one is
//! a breaking change. A code alone does not say whether it denied: a [`crate::Reason`] carries
//! `denies`; the column "denies" here says when it does.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $denies:literal, $desc:literal;)*) => {
        /// A reason code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* #[doc = $desc] $variant,)*
        }

        impl Code {
            /// Every code.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable kebab-case code.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// When a reason with this code denies: `always`, `never` or `conditional`.
            pub fn denies(self) -> &'static str {
                match self { $(Code::$variant => $denies,)* }
            }

            /// What it means.
            pub fn description(self) -> &'static str {
                match self { $(Code::$variant => $desc,)* }
            }
        }
    };
}

codes! {
    StateInvalid = "state-invalid", "always", "The change is not in a deployable state (approved, scheduled or deploying).";
    CategoryUnknown = "category-unknown", "always", "The change's category level is not defined by the policy (fail closed).";
    RoleUnknown = "role-unknown", "always", "A required role is not declared under `[roles]` (fail closed).";
    ApprovalMissing = "approval-missing", "always", "Required roles without a valid approval for the head commit; details.roles lists them.";
    ApprovalPresent = "approval-present", "never", "A required role is filled by a valid approval; details record who, for which commit and why they qualify.";
    ApprovalNotRequired = "approval-not-required", "never", "The category needs no human approval (auto-approved).";
    ApprovalStale = "approval-stale", "conditional", "An approval is for an older head commit and its role is invalidated by new commits; denies while the role stays unfilled.";
    ApprovalUnauthorized = "approval-unauthorized", "conditional", "The approver does not hold the role (directly, via a team, or as the incident's commander); denies while the role stays unfilled.";
    ApprovalSodViolation = "approval-sod-violation", "conditional", "Separation of duties: an author, co-author or the last pusher approved, or one person would fill two required roles; denies while the role stays unfilled.";
    ChecklistMissing = "checklist-missing", "always", "An applicable pre-deployment checklist item has no attestation.";
    ChecklistStale = "checklist-stale", "always", "An item is attested only for an older head commit.";
    ChecklistEvidenceMissing = "checklist-evidence-missing", "always", "An item that requires evidence was attested without an evidence link.";
    ChecklistAttested = "checklist-attested", "never", "An applicable item is attested for the head commit.";
    ChecklistAuto = "checklist-auto", "never", "An `auto` item computed by the gate (approvals, window compliance); its failure is carried by the matching denial.";
    LeadTimeRfc = "lead-time-rfc", "always", "The RFC (lead time `rfc`) was not published enough business days before the deploy.";
    LeadTimeNotice = "lead-time-notice", "always", "The stakeholder notice (lead time `stakeholder-notice`) was not sent enough business days before the deploy.";
    LeadTimeNotMet = "lead-time-not-met", "always", "Any other before-deploy lead time of the policy is not met; details.lead_time names it.";
    LeadTimeMet = "lead-time-met", "never", "A before-deploy lead time is met.";
    ReviewSlaBreached = "review-sla-breached", "never", "The review took (or is taking) longer than the SLA in business days: a finding, not a denial.";
    WindowOpen = "window-open", "never", "The deploy fits the category's change window; details carry the calendar's reasons.";
    WindowClosed = "window-closed", "always", "The deploy falls outside the change window; details.next_slot is the earliest allowed start.";
    FreezeActive = "freeze-active", "always", "A freeze is in force (weekend, holiday, or an active incident for a non-remediation change).";
    MaintenanceNotAnnounced = "maintenance-not-announced", "always", "Category 3: no announcement covers the maintenance window of the deploy.";
    MaintenanceAnnouncementIncomplete = "maintenance-announcement-incomplete", "always", "Category 3: the announcement did not go out on every channel the policy names.";
    EmergencyOverride = "emergency-override", "never", "An emergency is in force: window restrictions are overridden and the incident commander approves alone.";
    EmergencyNotDeclared = "emergency-not-declared", "always", "The change is classified as an emergency but no emergency was declared with an incident reference.";
    EmergencyIncidentInvalid = "emergency-incident-invalid", "always", "The emergency's incident is unknown or no longer active.";
    EmergencyDeclarerUnauthorized = "emergency-declarer-unauthorized", "always", "Whoever declared the emergency holds none of the roles in emergency.declared_by.";
    EmergencyRetrospectiveOverdue = "emergency-retrospective-overdue", "never", "The retrospective of a deployed emergency change is past its deadline (a finding).";
    EmergencyFollowUpMissing = "emergency-follow-up-missing", "never", "No follow-up PR is linked to a deployed emergency change past its deadline (a finding).";
    ExceptionApplied = "exception-applied", "never", "A valid out-of-window exception was handed to the window check.";
    ExceptionInvalid = "exception-invalid", "never", "An exception was requested but is not valid (unknown reason, missing approvers, SoD); it is ignored, so the window check decides.";
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown reason code `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_unique_kebab_case_and_documented() {
        let mut seen = BTreeSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'),
                "{s} is not kebab-case"
            );
            assert!(
                !s.starts_with('-') && !s.ends_with('-') && !s.contains("--"),
                "{s}"
            );
            assert!(matches!(c.denies(), "always" | "never" | "conditional"));
            assert!(c.description().ends_with('.'), "{s}: description");
            assert_eq!(s.parse::<Code>(), Ok(*c));
        }
    }

    #[test]
    fn every_code_is_documented_in_docs_gate_md() {
        let doc = include_str!("../../../docs/gate.md");
        for c in Code::ALL {
            assert!(
                doc.contains(&format!("`{}`", c.as_str())),
                "docs/gate.md does not document `{}`",
                c.as_str()
            );
        }
    }
}
