//! Commands that change a [`ChangeState`] or the [`WorldState`], each validated first.
//!
//! The server applies one of these per write request (and persists the result with its audit
//! event); the test corpus replays them. Keeping them here, pure, means the rules that guard a
//! write (who may approve, which transitions exist, which checklist items exist) live beside the
//! rules that decide, and cannot drift apart.

use changegate_policy::Policy;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::approval::{ApprovalRejection, requirements, validate_approval};
use crate::checklist::{AttestationRejection, validate_attestation};
use crate::model::{
    Announcement, Approval, Attestation, ChangeState, ClassifiedChange, EmergencyDeclaration,
    ExceptionApproval, ExceptionRequest, Incident, Person, Publication, StatusChange, WorldState,
};
use crate::people::{canonical, holding};
use crate::status::{Event, Status, TransitionError, transition};

/// A command on one change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ChangeOp {
    /// A life-cycle event.
    Transition {
        /// Event.
        event: Event,
        /// Who.
        #[serde(default)]
        by: Option<Person>,
    },
    /// Approve in a role (for `commit`, default the head).
    Approve {
        /// Who.
        person: Person,
        /// Role.
        role: String,
        /// Commit approved; default the current head.
        #[serde(default)]
        commit: Option<String>,
    },
    /// Attest a checklist item (for `commit`, default the head).
    Attest {
        /// Who.
        person: Person,
        /// Item id.
        item: String,
        /// Evidence link.
        #[serde(default)]
        evidence: Option<String>,
        /// Commit attested; default the current head.
        #[serde(default)]
        commit: Option<String>,
    },
    /// A new head commit was pushed.
    Push {
        /// New head.
        commit: String,
        /// Pusher.
        by: Person,
        /// Authors of the new commits.
        #[serde(default)]
        authors: Vec<Person>,
        /// Co-authors of the new commits.
        #[serde(default)]
        co_authors: Vec<Person>,
        /// New classification, when it changed.
        #[serde(default)]
        classification: Option<ClassifiedChange>,
    },
    /// Publish a lead-time item (`rfc`, `stakeholder-notice`).
    Publish {
        /// Key under `[lead_times]`.
        item: String,
        /// Link.
        #[serde(default)]
        link: Option<String>,
        /// Who.
        #[serde(default)]
        by: Option<Person>,
    },
    /// Mark the change as remediation of an incident.
    Remediates {
        /// Incident id.
        incident: String,
    },
    /// Declare an emergency.
    DeclareEmergency {
        /// Incident id.
        incident: String,
        /// Who declares.
        by: Person,
    },
    /// Record the emergency retrospective.
    Retrospective {
        /// Link.
        link: String,
    },
    /// Link the emergency follow-up PR.
    FollowUp {
        /// PR link.
        pr: String,
    },
    /// Request an out-of-window exception.
    RequestException {
        /// Reason id.
        reason: String,
        /// Who.
        by: Person,
        /// Severity.
        #[serde(default)]
        severity: Option<String>,
        /// Evidence link.
        #[serde(default)]
        evidence: Option<String>,
    },
    /// Approve the exception in a role.
    ApproveException {
        /// Who.
        person: Person,
        /// Role.
        role: String,
    },
}

/// A command on the shared world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum WorldOp {
    /// Open an incident.
    OpenIncident {
        /// Id.
        id: String,
        /// Severity (`P0` … `P4`).
        severity: String,
        /// Assigned incident commander.
        #[serde(default)]
        commander: Option<Person>,
        /// Title.
        #[serde(default)]
        title: String,
    },
    /// Resolve an incident.
    ResolveIncident {
        /// Id.
        id: String,
    },
    /// Announce a maintenance window.
    Announce {
        /// Id.
        id: String,
        /// Window start.
        window_start: Timestamp,
        /// Window end.
        window_end: Timestamp,
        /// Channels.
        #[serde(default)]
        channels: Vec<String>,
    },
    /// Set the members of a team (`team:NAME` holders in the policy expand to them); an empty
    /// list removes the team.
    SetTeam {
        /// Team name (without `team:`).
        name: String,
        /// Members (person ids).
        members: Vec<Person>,
    },
    /// Map another identifier of a person (an e-mail address, a git author name) to the person id;
    /// `person = None` removes the alias.
    SetAlias {
        /// The identifier (compared lowercase).
        alias: String,
        /// The person it names.
        #[serde(default)]
        person: Option<Person>,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OpError {
    /// Invalid life-cycle event.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Approval refused.
    #[error(transparent)]
    Approval(#[from] ApprovalRejection),
    /// Attestation refused.
    #[error(transparent)]
    Attestation(#[from] AttestationRejection),
    /// `approve` while required roles are missing.
    #[error("cannot mark the change approved: missing approval by {}", .missing.join(", "))]
    ApprovalsIncomplete {
        /// Missing roles.
        missing: Vec<String>,
    },
    /// Unknown `[lead_times]` key.
    #[error("unknown lead-time item `{item}` (known: {})", .known.join(", "))]
    UnknownLeadTime {
        /// Item given.
        item: String,
        /// Known keys.
        known: Vec<String>,
    },
    /// Unknown incident.
    #[error("unknown incident `{id}`")]
    UnknownIncident {
        /// Id.
        id: String,
    },
    /// Incident already exists.
    #[error("incident `{id}` already exists")]
    DuplicateIncident {
        /// Id.
        id: String,
    },
    /// Severity not in `emergency.incident_severities`.
    #[error("invalid severity `{severity}` (expected one of {})", .allowed.join(", "))]
    InvalidSeverity {
        /// Given.
        severity: String,
        /// Allowed.
        allowed: Vec<String>,
    },
    /// The declarer holds none of `emergency.declared_by`.
    #[error("{person} may not declare an emergency (roles: {})", .roles.join(", "))]
    NotADeclarer {
        /// Person.
        person: Person,
        /// Roles that may.
        roles: Vec<String>,
    },
    /// Emergency op without a declared emergency.
    #[error("no emergency is declared for this change")]
    NoEmergency,
    /// Exception op without a requested exception.
    #[error("no exception is requested for this change")]
    NoException,
    /// The exception approver does not hold the role or is not an exception approver role.
    #[error("{person} may not approve the exception as `{role}`")]
    ExceptionApproverInvalid {
        /// Person.
        person: Person,
        /// Role.
        role: String,
    },
    /// The change cannot take new commits in its state.
    #[error("a change that is {status} cannot take new commits")]
    PushRefused {
        /// State.
        status: Status,
    },
}

impl OpError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            OpError::Transition(_) => TransitionError::CODE,
            OpError::Approval(r) => r.code(),
            OpError::Attestation(r) => r.code(),
            OpError::ApprovalsIncomplete { .. } => "approval-missing",
            OpError::UnknownLeadTime { .. } => "lead-time-unknown",
            OpError::UnknownIncident { .. } => "incident-unknown",
            OpError::DuplicateIncident { .. } => "incident-duplicate",
            OpError::InvalidSeverity { .. } => "incident-severity-invalid",
            OpError::NotADeclarer { .. } => "emergency-declarer-unauthorized",
            OpError::NoEmergency => "emergency-not-declared",
            OpError::NoException => "exception-not-requested",
            OpError::ExceptionApproverInvalid { .. } => "exception-approver-invalid",
            OpError::PushRefused { .. } => "push-refused",
        }
    }
}

fn move_to(
    state: &mut ChangeState,
    event: Event,
    at: Timestamp,
    by: Option<Person>,
) -> Result<(), OpError> {
    let to = transition(state.status, event)?;
    state.history.push(StatusChange {
        from: state.status,
        to,
        at,
        by,
    });
    state.status = to;
    Ok(())
}

fn push_unique(v: &mut Vec<Person>, items: &[Person]) {
    for p in items {
        if !v.contains(p) {
            v.push(p.clone());
        }
    }
}

/// Apply a command to a change at `at`. Nothing changes when it is refused.
pub fn apply(
    policy: &Policy,
    state: &mut ChangeState,
    world: &WorldState,
    op: &ChangeOp,
    at: Timestamp,
) -> Result<(), OpError> {
    match op {
        ChangeOp::Transition { event, by } => {
            if *event == Event::Approve {
                let req = requirements(policy, state)
                    .map_err(|level| ApprovalRejection::CategoryUnknown { level })?;
                let outcome = crate::approval::evaluate(policy, state, world, &req);
                if !outcome.missing.is_empty() {
                    transition(state.status, *event)?;
                    return Err(OpError::ApprovalsIncomplete {
                        missing: outcome.missing,
                    });
                }
            }
            move_to(state, *event, at, by.clone())
        }
        ChangeOp::Approve {
            person,
            role,
            commit,
        } => {
            let a = Approval {
                person: person.clone(),
                role: role.clone(),
                head_commit: commit
                    .clone()
                    .unwrap_or_else(|| state.change.head_commit.clone()),
                at,
            };
            validate_approval(policy, state, world, &a)?;
            state.approvals.push(a);
            Ok(())
        }
        ChangeOp::Attest {
            person,
            item,
            evidence,
            commit,
        } => {
            let a = Attestation {
                person: person.clone(),
                item: item.clone(),
                evidence: evidence.clone(),
                head_commit: commit
                    .clone()
                    .unwrap_or_else(|| state.change.head_commit.clone()),
                at,
            };
            validate_attestation(policy, state, &a)?;
            state.attestations.push(a);
            Ok(())
        }
        ChangeOp::Push {
            commit,
            by,
            authors,
            co_authors,
            classification,
        } => {
            if matches!(state.status, Status::Deploying)
                || state.status.is_terminal()
                || state.status == Status::Deployed
            {
                return Err(OpError::PushRefused {
                    status: state.status,
                });
            }
            if matches!(state.status, Status::Approved | Status::Scheduled) {
                move_to(state, Event::Reopen, at, Some(by.clone()))?;
            }
            let c = &mut state.change;
            c.head_commit = commit.clone();
            c.last_pusher = Some(by.clone());
            push_unique(&mut c.authors, authors);
            push_unique(&mut c.co_authors, co_authors);
            if let Some(cls) = classification {
                c.classification = cls.clone();
            }
            Ok(())
        }
        ChangeOp::Publish { item, link, by } => {
            if !policy.lead_times.contains_key(item) {
                return Err(OpError::UnknownLeadTime {
                    item: item.clone(),
                    known: policy.lead_times.keys().cloned().collect(),
                });
            }
            state.lead_items.insert(
                item.clone(),
                Publication {
                    at,
                    link: link.clone(),
                    by: by.clone(),
                },
            );
            Ok(())
        }
        ChangeOp::Remediates { incident } => {
            world
                .incident(incident)
                .ok_or_else(|| OpError::UnknownIncident {
                    id: incident.clone(),
                })?;
            if !state.remediates.contains(incident) {
                state.remediates.push(incident.clone());
            }
            Ok(())
        }
        ChangeOp::DeclareEmergency { incident, by } => {
            world
                .incident(incident)
                .ok_or_else(|| OpError::UnknownIncident {
                    id: incident.clone(),
                })?;
            let roles = &policy.emergency.declared_by;
            if !roles
                .iter()
                .any(|r| holding(policy, world, state, by, r).is_some())
            {
                return Err(OpError::NotADeclarer {
                    person: canonical(world, by),
                    roles: roles.clone(),
                });
            }
            state.emergency = Some(EmergencyDeclaration {
                incident: incident.clone(),
                declared_by: by.clone(),
                at,
                retrospective: None,
                follow_up_pr: None,
            });
            Ok(())
        }
        ChangeOp::Retrospective { link } => {
            let em = state.emergency.as_mut().ok_or(OpError::NoEmergency)?;
            em.retrospective = Some(Publication {
                at,
                link: Some(link.clone()),
                by: None,
            });
            Ok(())
        }
        ChangeOp::FollowUp { pr } => {
            let em = state.emergency.as_mut().ok_or(OpError::NoEmergency)?;
            em.follow_up_pr = Some(pr.clone());
            Ok(())
        }
        ChangeOp::RequestException {
            reason,
            by,
            severity,
            evidence,
        } => {
            state.exception = Some(ExceptionRequest {
                reason: reason.clone(),
                requested_by: by.clone(),
                at,
                severity: severity.clone(),
                evidence: evidence.clone(),
                approvals: Vec::new(),
            });
            Ok(())
        }
        ChangeOp::ApproveException { person, role } => {
            if state.exception.is_none() {
                return Err(OpError::NoException);
            }
            let level = crate::approval::effective_level(policy, state);
            let allowed_role = policy.exceptions.approvers.contains(role)
                || policy
                    .category(level)
                    .is_some_and(|(_, c)| c.emergency_approvers.contains(role));
            if !allowed_role || holding(policy, world, state, person, role).is_none() {
                return Err(OpError::ExceptionApproverInvalid {
                    person: canonical(world, person),
                    role: role.clone(),
                });
            }
            let ex = state.exception.as_mut().ok_or(OpError::NoException)?;
            ex.approvals.push(ExceptionApproval {
                person: person.clone(),
                role: role.clone(),
                at,
            });
            Ok(())
        }
    }
}

/// Apply a command to the world at `at`.
pub fn apply_world(
    policy: &Policy,
    world: &mut WorldState,
    op: &WorldOp,
    at: Timestamp,
) -> Result<(), OpError> {
    match op {
        WorldOp::OpenIncident {
            id,
            severity,
            commander,
            title,
        } => {
            let allowed = &policy.emergency.incident_severities;
            if !allowed.contains(severity) {
                return Err(OpError::InvalidSeverity {
                    severity: severity.clone(),
                    allowed: allowed.clone(),
                });
            }
            if world.incident(id).is_some() {
                return Err(OpError::DuplicateIncident { id: id.clone() });
            }
            world.incidents.push(Incident {
                id: id.clone(),
                severity: severity.clone(),
                title: title.clone(),
                opened_at: at,
                resolved_at: None,
                commander: commander.clone(),
            });
            Ok(())
        }
        WorldOp::ResolveIncident { id } => {
            let inc = world
                .incidents
                .iter_mut()
                .find(|i| i.id == *id)
                .ok_or_else(|| OpError::UnknownIncident { id: id.clone() })?;
            inc.resolved_at.get_or_insert(at);
            Ok(())
        }
        WorldOp::Announce {
            id,
            window_start,
            window_end,
            channels,
        } => {
            world.announcements.push(Announcement {
                id: id.clone(),
                window_start: *window_start,
                window_end: *window_end,
                announced_at: at,
                channels: channels.clone(),
                link: None,
            });
            Ok(())
        }
        WorldOp::SetTeam { name, members } => {
            let name = name.strip_prefix("team:").unwrap_or(name).to_string();
            if members.is_empty() {
                world.teams.remove(&name);
            } else {
                world.teams.insert(name, members.clone());
            }
            Ok(())
        }
        WorldOp::SetAlias { alias, person } => {
            let alias = alias.to_lowercase();
            match person {
                Some(p) => world.aliases.insert(alias, p.clone()),
                None => world.aliases.remove(&alias),
            };
            Ok(())
        }
    }
}

#[cfg(test)]
mod people_ops_tests {
    use super::*;

    #[test]
    fn teams_and_aliases_are_set_and_removed() {
        let policy = changegate_policy::load_default().policy;
        let mut w = WorldState::default();
        let at: Timestamp = "2026-03-10T10:00:00Z".parse().unwrap();
        let set = WorldOp::SetTeam {
            name: "team:qa".into(),
            members: vec!["carl".into()],
        };
        apply_world(&policy, &mut w, &set, at).unwrap();
        assert_eq!(w.teams["qa"], ["carl"]);
        let alias = WorldOp::SetAlias {
            alias: "Carl@Example.com".into(),
            person: Some("carl".into()),
        };
        apply_world(&policy, &mut w, &alias, at).unwrap();
        assert_eq!(w.aliases["carl@example.com"], "carl");
        apply_world(
            &policy,
            &mut w,
            &WorldOp::SetTeam {
                name: "qa".into(),
                members: vec![],
            },
            at,
        )
        .unwrap();
        apply_world(
            &policy,
            &mut w,
            &WorldOp::SetAlias {
                alias: "carl@example.com".into(),
                person: None,
            },
            at,
        )
        .unwrap();
        assert!(w.teams.is_empty() && w.aliases.is_empty());
    }
}
