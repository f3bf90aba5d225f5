//! Applying a [`ChangeOp`] to one change.

use changegate_policy::Policy;
use jiff::Timestamp;

use super::{ChangeOp, OpError};
use crate::approval::{ApprovalRejection, requirements, validate_approval};
use crate::checklist::validate_attestation;
use crate::model::{
    Approval, Attestation, ChangeState, EmergencyDeclaration, ExceptionApproval, ExceptionRequest,
    Observer, Person, Publication, Source, StatusChange, WorldState,
};
use crate::people::{canonical, holding};
use crate::status::{Event, Status, transition};

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
            move_to(state, *event, at, by.clone())?;
            if *event == Event::Complete {
                // Category 3: Incident Commander standby and daily status updates.
                crate::rollback::record_duties(policy, state, world, by.as_deref(), at);
            }
            Ok(())
        }
        ChangeOp::Approve {
            person,
            role,
            commit,
            stage,
        } => {
            let a = Approval {
                person: person.clone(),
                role: role.clone(),
                head_commit: commit
                    .clone()
                    .unwrap_or_else(|| state.change.head_commit.clone()),
                at,
                stage: *stage,
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
            verified,
        } => {
            let a = Attestation {
                person: person.clone(),
                item: item.clone(),
                evidence: evidence.clone(),
                head_commit: commit
                    .clone()
                    .unwrap_or_else(|| state.change.head_commit.clone()),
                at,
                verified: verified.clone(),
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
            observed,
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
            if let Some(obs) = observed {
                push_unique(&mut c.authors, &obs.authors);
                push_unique(&mut c.co_authors, &obs.co_authors);
                if let Some(cls) = &obs.classification {
                    // A classification a token vouched for was not the server's to drop: the new
                    // observation may raise it, never lower it.
                    c.classification = if c.provenance.classification.vouched.is_empty() {
                        cls.clone()
                    } else {
                        cls.merge(&c.classification)
                    };
                    c.provenance.classification.observe(Observer::Repository);
                }
                if !obs.authors.is_empty() || !obs.co_authors.is_empty() {
                    c.provenance.authors.observe(Observer::Repository);
                }
                if !authors.is_empty() || !co_authors.is_empty() {
                    c.provenance.authors.vouch(&obs.token);
                }
                c.provenance.last_pusher = Source::vouched_by(&obs.token);
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
                    sent: None,
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
            let inc = world
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
            if crate::emergency::eligibility(policy, inc).is_none() {
                return Err(OpError::IneligibleIncident {
                    incident: incident.clone(),
                    incident_summary: crate::emergency::summary(inc),
                    eligible: policy
                        .emergency
                        .eligible
                        .values()
                        .map(|e| e.description.clone())
                        .collect(),
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
                sent: None,
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
            plan,
        } => {
            state.exception = Some(ExceptionRequest {
                reason: reason.clone(),
                requested_by: by.clone(),
                at,
                severity: severity.clone(),
                evidence: evidence.clone(),
                plan: plan.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClassifiedChange, Voucher};
    use crate::ops::PushObservation;

    fn state(vouched: bool) -> ChangeState {
        let mut v = serde_json::json!({"change": {
            "id": "CR-1", "repository": "svc", "base_commit": "b0", "head_commit": "h1",
            "authors": ["alice"], "classification": {"category": 3, "facets": [], "required_roles": ["qa"]},
            "provenance": {"classification": {"observed": ["repository"]}},
        }, "status": "in-review"});
        if vouched {
            v["change"]["provenance"]["classification"]["vouched"] =
                serde_json::json!([{"token": "t1", "person": "ci"}]);
        }
        serde_json::from_value(v).unwrap()
    }

    fn push(category: u8) -> ChangeOp {
        ChangeOp::Push {
            commit: "h2".into(),
            by: "alice".into(),
            authors: vec![],
            co_authors: vec![],
            observed: Some(PushObservation {
                classification: Some(ClassifiedChange {
                    category,
                    facets: vec![],
                    required_roles: vec![],
                }),
                authors: vec!["bob@example.com".into()],
                co_authors: vec![],
                token: Voucher {
                    token: "t2".into(),
                    person: "alice".into(),
                },
            }),
        }
    }

    #[test]
    fn an_observed_push_replaces_an_observed_classification_and_only_raises_a_vouched_one() {
        let policy = crate::corpus::case_policy("", "").unwrap();
        let world = WorldState::default();
        let at: Timestamp = "2026-03-10T10:00:00Z".parse().unwrap();
        let mut s = state(false);
        apply(&policy, &mut s, &world, &push(2), at).unwrap();
        assert_eq!(s.change.classification.category, 2);
        assert_eq!(s.change.authors, ["alice", "bob@example.com"]);
        assert_eq!(s.change.provenance.last_pusher.vouched[0].token, "t2");
        let mut s = state(true);
        apply(&policy, &mut s, &world, &push(2), at).unwrap();
        assert_eq!(s.change.classification.category, 3);
        assert_eq!(s.change.classification.required_roles, ["qa"]);
        let mut s = state(true);
        apply(&policy, &mut s, &world, &push(4), at).unwrap();
        assert_eq!(s.change.classification.category, 4);
    }
}
