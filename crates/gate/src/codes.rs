//! Stable reason codes of gate decisions, and the codes of refused commands.
//!
//! A deploy pipeline, a dashboard or an auditor keys on these codes, so they are part of the API:
//! each is kebab-case, documented (docs/gate.md lists them all) and unique (tested, and by the
//! workspace registry). Renaming one is a breaking change. A code alone does not say whether it
//! denied: a [`crate::Reason`] carries `denies`; [`Code::denies`] says when it does.

use serde::Serialize;

changegate_codes::codes! {
    /// A reason code of a gate decision.
    pub enum Code in "gate" {
        /// The change is not in a deployable state (approved, scheduled or deploying).
        StateInvalid = "state-invalid",
        /// The change's category level is not defined by the policy (fail closed).
        CategoryUnknown = "category-unknown",
        /// A required role is not declared under `[roles]` (fail closed).
        RoleUnknown = "role-unknown",
        /// Required roles without a valid approval for the head commit; details.roles lists them.
        ApprovalMissing = "approval-missing",
        /// A required role is filled by a valid approval; details record who, for which commit and why they qualify.
        ApprovalPresent = "approval-present",
        /// The category needs no human approval (auto-approved).
        ApprovalNotRequired = "approval-not-required",
        /// An approval is for an older head commit and its role is invalidated by new commits; denies while the role stays unfilled.
        ApprovalStale = "approval-stale",
        /// The approver does not hold the role (directly, via a team, or as the incident's commander); denies while the role stays unfilled.
        ApprovalUnauthorized = "approval-unauthorized",
        /// Separation of duties: an author, co-author or the last pusher approved, or one person would fill two required roles; denies while the role stays unfilled.
        ApprovalSodViolation = "approval-sod-violation",
        /// An applicable pre-deployment checklist item has no attestation.
        ChecklistMissing = "checklist-missing",
        /// An item is attested only for an older head commit.
        ChecklistStale = "checklist-stale",
        /// An item that requires evidence was attested without an evidence link.
        ChecklistEvidenceMissing = "checklist-evidence-missing",
        /// An applicable item is attested for the head commit.
        ChecklistAttested = "checklist-attested",
        /// An `auto` item computed by the gate (approvals, window compliance); its failure is carried by the matching denial.
        ChecklistAuto = "checklist-auto",
        /// The RFC (lead time `rfc`) was not published enough business days before the deploy.
        LeadTimeRfc = "lead-time-rfc",
        /// The stakeholder notice (lead time `stakeholder-notice`) was not sent enough business days before the deploy.
        LeadTimeNotice = "lead-time-notice",
        /// Any other before-deploy lead time of the policy is not met; details.lead_time names it.
        LeadTimeNotMet = "lead-time-not-met",
        /// A before-deploy lead time is met.
        LeadTimeMet = "lead-time-met",
        /// The review took (or is taking) longer than the SLA in business days: a finding, not a denial.
        ReviewSlaBreached = "review-sla-breached",
        /// The deploy fits the category's change window; details carry the calendar's reasons.
        WindowOpen = "window-open",
        /// The deploy falls outside the change window; details.next_slot is the earliest allowed start.
        WindowClosed = "window-closed",
        /// A freeze is in force (weekend, holiday, or an active incident for a non-remediation change).
        FreezeActive = "freeze-active",
        /// Category 3: no announcement covers the maintenance window of the deploy.
        MaintenanceNotAnnounced = "maintenance-not-announced",
        /// Category 3: the announcement did not go out on every channel the policy names.
        MaintenanceAnnouncementIncomplete = "maintenance-announcement-incomplete",
        /// An emergency is in force: window restrictions are overridden and the incident commander approves alone.
        EmergencyOverride = "emergency-override",
        /// The change is classified as an emergency but no emergency was declared with an incident reference.
        EmergencyNotDeclared = "emergency-not-declared",
        /// The emergency's incident is unknown or no longer active.
        EmergencyIncidentInvalid = "emergency-incident-invalid",
        /// The emergency's incident is not one the policy makes eligible (emergency.eligible: P0 outages, critical vulnerabilities, data loss, cascading failures in the seed).
        EmergencyIncidentIneligible = "emergency-incident-ineligible",
        /// Whoever declared the emergency holds none of the roles in emergency.declared_by.
        EmergencyDeclarerUnauthorized = "emergency-declarer-unauthorized",
        /// The retrospective of a deployed emergency change is past its deadline (a finding).
        EmergencyRetrospectiveOverdue = "emergency-retrospective-overdue",
        /// No follow-up PR is linked to a deployed emergency change past its deadline (a finding).
        EmergencyFollowUpMissing = "emergency-follow-up-missing",
        /// A valid out-of-window exception was handed to the window check.
        ExceptionApplied = "exception-applied",
        /// An exception was requested but is not valid (unknown reason, missing approvers, SoD); it is ignored, so the window check decides.
        ExceptionInvalid = "exception-invalid",
        /// An emergency exception approved by the category's emergency approvers (category 3: the CTO) lifted a requirement its `emergency_exception.lifts` names (the maintenance announcement, a lead time); details.lift names it. Counted in reports.
        EmergencyExceptionLift = "emergency-exception-lift",
        /// The category's deploy-stage approval (`deploy_approvers` after `deploy_approval_after`: the Tech Architect's production gate after staging) is not on record for the head commit.
        DeployApprovalMissing = "deploy-approval-missing",
        /// A deploy-stage approval is on record for the head commit, after the staging item was attested.
        DeployApprovalPresent = "deploy-approval-present",
        /// The change's declared flag rollout does not follow its category's rollout plan (weights in order, soaks at least the plan's).
        RolloutPlanMismatch = "rollout-plan-mismatch",
        /// The flag rollout follows the category's plan; the window held only the production deployment up to its first production step.
        RolloutPlanFollowed = "rollout-plan-followed",
        /// `[rollback.testing]`: the rollback-plan item of a high-risk change has no staging rollback test for the head commit.
        RollbackTestMissing = "rollback-test-missing",
        /// `[rollback.testing]`: the latest staging rollback test took `max_duration` (5 minutes) or longer.
        RollbackTestTooSlow = "rollback-test-too-slow",
        /// `[rollback.testing]`: the application was not healthy after the latest staging rollback test.
        RollbackTestUnhealthy = "rollback-test-unhealthy",
        /// `[rollback.testing]`: the latest rollback test did not run in staging.
        RollbackTestNotStaging = "rollback-test-not-staging",
        /// `[rollback.testing]`: the rollback was tested in staging, fast enough and healthy afterwards.
        RollbackTestPassed = "rollback-test-passed",
        /// The post-mortem of a manual rollback is past `[rollback] post_mortem_within` (a finding).
        PostMortemOverdue = "post-mortem-overdue",
        /// A duty of a deployment (Incident Commander standby report, daily status update) is past its due time (a finding).
        DutyOverdue = "duty-overdue",
    }
}

/// When a reason with a given code denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Denies {
    /// The reason always denies.
    Always,
    /// Informational, or a finding: never denies.
    Never,
    /// An approval problem: denies while the role it was meant to fill stays unfilled.
    Conditional,
}

impl Denies {
    /// `always`, `never` or `conditional`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Denies::Always => "always",
            Denies::Never => "never",
            Denies::Conditional => "conditional",
        }
    }
}

impl std::fmt::Display for Denies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for Denies {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Code {
    /// When a reason with this code denies.
    pub const fn denies(self) -> Denies {
        use Denies::{Always, Conditional, Never};
        match self {
            Code::StateInvalid
            | Code::CategoryUnknown
            | Code::RoleUnknown
            | Code::ApprovalMissing
            | Code::ChecklistMissing
            | Code::ChecklistStale
            | Code::ChecklistEvidenceMissing
            | Code::LeadTimeRfc
            | Code::LeadTimeNotice
            | Code::LeadTimeNotMet
            | Code::WindowClosed
            | Code::FreezeActive
            | Code::MaintenanceNotAnnounced
            | Code::MaintenanceAnnouncementIncomplete
            | Code::EmergencyNotDeclared
            | Code::EmergencyIncidentInvalid
            | Code::EmergencyIncidentIneligible
            | Code::EmergencyDeclarerUnauthorized
            | Code::DeployApprovalMissing
            | Code::RolloutPlanMismatch
            | Code::RollbackTestMissing
            | Code::RollbackTestTooSlow
            | Code::RollbackTestUnhealthy
            | Code::RollbackTestNotStaging => Always,
            Code::ApprovalPresent
            | Code::ApprovalNotRequired
            | Code::ChecklistAttested
            | Code::ChecklistAuto
            | Code::LeadTimeMet
            | Code::ReviewSlaBreached
            | Code::WindowOpen
            | Code::EmergencyOverride
            | Code::EmergencyRetrospectiveOverdue
            | Code::EmergencyFollowUpMissing
            | Code::ExceptionApplied
            | Code::ExceptionInvalid
            | Code::EmergencyExceptionLift
            | Code::DeployApprovalPresent
            | Code::RolloutPlanFollowed
            | Code::RollbackTestPassed
            | Code::PostMortemOverdue
            | Code::DutyOverdue => Never,
            Code::ApprovalStale | Code::ApprovalUnauthorized | Code::ApprovalSodViolation => {
                Conditional
            }
        }
    }
}

changegate_codes::codes! {
    /// Why a command on a change or on the world was refused ([`crate::ops::OpError::code`]); a
    /// refused command changes nothing. Several codes are also decision reasons ([`Code`]) with
    /// the same string, on purpose: the same rule refuses the write and denies the deploy.
    pub enum RejectionCode in "gate-rejection" {
        /// The event is not allowed in the change's current state (the error lists the allowed ones).
        StateTransitionInvalid = "state-transition-invalid",
        /// Approvals and attestations are accepted only in `in-review`, `approved` or `scheduled`.
        StateInvalid = "state-invalid",
        /// The change's category level is not defined by the policy.
        UnknownCategory = "unknown-category",
        /// The role is not declared under `[roles]` (the error suggests the closest one).
        UnknownRole = "unknown-role",
        /// The change does not need an approval in that role.
        RoleNotRequired = "role-not-required",
        /// The approval names a commit other than the head.
        ApprovalStale = "approval-stale",
        /// The person does not hold the role.
        ApprovalUnauthorized = "approval-unauthorized",
        /// An author, co-author or the last pusher tried to approve (separation of duties).
        ApprovalSelf = "approval-self",
        /// The person already fills another required role.
        ApprovalSecondRole = "approval-second-role",
        /// The same person, role and commit are already on record.
        ApprovalDuplicate = "approval-duplicate",
        /// The `approve` transition was asked while required roles are missing.
        ApprovalMissing = "approval-missing",
        /// No such item under `[checklist.pre]`.
        ChecklistItemUnknown = "checklist-item-unknown",
        /// The checklist item is computed by the gate and cannot be attested.
        ChecklistItemAuto = "checklist-item-auto",
        /// The checklist item does not apply to this change.
        ChecklistItemNotApplicable = "checklist-item-not-applicable",
        /// The attestation names a commit other than the head.
        ChecklistStale = "checklist-stale",
        /// The checklist item requires evidence and no link was given.
        ChecklistEvidenceMissing = "checklist-evidence-missing",
        /// The item published is not a `[lead_times]` key.
        LeadTimeUnknown = "lead-time-unknown",
        /// No incident has this id.
        IncidentUnknown = "incident-unknown",
        /// An incident with this id already exists.
        IncidentDuplicate = "incident-duplicate",
        /// The severity is not one of `emergency.incident_severities`.
        IncidentSeverityInvalid = "incident-severity-invalid",
        /// The kind is not one of `emergency.incident_kinds`.
        IncidentKindInvalid = "incident-kind-invalid",
        /// The incident matches none of `emergency.eligible`: no emergency may be declared against it.
        EmergencyIncidentIneligible = "emergency-incident-ineligible",
        /// The declarer holds none of the roles in `emergency.declared_by`.
        EmergencyDeclarerUnauthorized = "emergency-declarer-unauthorized",
        /// An emergency command on a change without a declared emergency.
        EmergencyNotDeclared = "emergency-not-declared",
        /// An exception command on a change without a requested exception.
        ExceptionNotRequested = "exception-not-requested",
        /// The person does not hold the role, or the role does not approve exceptions.
        ExceptionApproverInvalid = "exception-approver-invalid",
        /// The change cannot take new commits in its state (deploying, deployed or terminal).
        PushRefused = "push-refused",
        /// Authority (docs/authority.md): only a commit author, co-author or the last pusher of the change (or an integration or admin token, as the table says) may do this.
        AuthorRequired = "author-required",
        /// Authority: only an integration token (the CI job that observed it) may attest a checklist item whose evidence only CI sees (`tests-pass`).
        IntegrationRequired = "integration-required",
        /// Authority: the caller holds no whole set of the category's `rollback_authority` (the incident commander's set only during an active incident).
        RollbackAuthorityRequired = "rollback-authority-required",
        /// Authority: only the incident's assigned commander or an SRE lead may mark a change as its remediation.
        RemediationAuthorityRequired = "remediation-authority-required",
        /// Authority: only the commander of the emergency's incident, its declarer or an SRE lead may record its retrospective and follow-up.
        EmergencyOwnerRequired = "emergency-owner-required",
        /// Authority: only an author, the emergency's incident commander or a holder of a `deploy_approvers` role of the category (or an integration token) may start or complete the deployment.
        DeployerRequired = "deployer-required",
        /// Authority: the caller holds none of the roles that may record incidents or announcements (`emergency.declared_by`, `emergency.commander_from`), and is not the incident's commander.
        IncidentForbidden = "incident-forbidden",
        /// Authority: only admin tokens may do this (teams, aliases).
        AdminRequired = "admin-required",
        /// A deploy-stage approval before the category's staging item (`deploy_approval_after`) was attested for the head commit, or for a category without a deploy stage.
        DeployApprovalEarly = "deploy-approval-early",
        /// Authority: only an on-call engineer, the commander of an active incident or a holder of a role of the category's `rollback_authority` (or an integration token) may open a rollback request.
        RollbackTriggerRequired = "rollback-trigger-required",
        /// Authority: only whoever opened or approved the rollback, the commander of an active incident or an SRE lead may record its post-mortem.
        PostMortemOwnerRequired = "post-mortem-owner-required",
        /// Authority: only the duty's owner or an SRE lead may record it.
        DutyOwnerRequired = "duty-owner-required",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use changegate_codes::CodeSet;

    #[test]
    fn codes_are_unique_kebab_case_and_documented() {
        let mut entries = Code::entries();
        entries.extend(RejectionCode::entries());
        let problems = changegate_codes::problems(&entries, SHARED_WITH_REJECTIONS);
        assert!(problems.is_empty(), "{problems:#?}");
        for c in Code::ALL {
            assert_eq!(c.as_str().parse::<Code>(), Ok(*c));
            assert_eq!(
                serde_json::to_string(c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
    }

    /// Codes that are both a decision reason and a rejection: the same rule refuses the write and
    /// denies the deploy (checked against the enums below, so the list cannot go stale).
    const SHARED_WITH_REJECTIONS: &[&str] = &[
        "state-invalid",
        "approval-stale",
        "approval-unauthorized",
        "approval-missing",
        "checklist-stale",
        "checklist-evidence-missing",
        "emergency-declarer-unauthorized",
        "emergency-not-declared",
        "emergency-incident-ineligible",
    ];

    #[test]
    fn the_shared_list_is_exactly_the_overlap() {
        let mut overlap: Vec<&str> = Code::ALL
            .iter()
            .map(|c| c.as_str())
            .filter(|s| s.parse::<RejectionCode>().is_ok())
            .collect();
        overlap.sort_unstable();
        let mut listed = SHARED_WITH_REJECTIONS.to_vec();
        listed.sort_unstable();
        assert_eq!(overlap, listed);
    }

    #[test]
    fn denies_is_always_never_or_conditional_as_before() {
        let by = |d: Denies| -> Vec<&str> {
            Code::ALL
                .iter()
                .filter(|c| c.denies() == d)
                .map(|c| c.as_str())
                .collect()
        };
        assert_eq!(
            by(Denies::Conditional),
            [
                "approval-stale",
                "approval-unauthorized",
                "approval-sod-violation"
            ]
        );
        assert!(by(Denies::Never).contains(&"window-open"));
        assert!(by(Denies::Always).contains(&"freeze-active"));
        assert_eq!(serde_json::to_string(&Denies::Never).unwrap(), "\"never\"");
        assert_eq!(Denies::Always.to_string(), "always");
    }

    #[test]
    fn every_code_is_documented_in_docs_gate_md() {
        let doc = include_str!("../../../docs/gate.md");
        for c in Code::ALL {
            let row = format!(
                "| `{}` | {} | {} |",
                c.as_str(),
                c.denies(),
                c.description()
            );
            assert!(doc.contains(&row), "docs/gate.md lacks the row {row}");
        }
        for c in RejectionCode::ALL {
            assert!(
                doc.contains(&format!("`{}`", c.as_str())),
                "docs/gate.md does not document the rejection code `{}`",
                c.as_str()
            );
        }
    }
}
