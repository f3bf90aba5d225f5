//! Who may do what: the one authority table ([`TABLE`]) and its check ([`authorize`],
//! [`authorize_world`]).
//!
//! Every write to a change or to the shared world is one [`Operation`]. For each, the table says
//! which authority it needs ([`Grant`]), whether an integration token (a CI job, the deploy
//! pipeline, the automatic rollback) holds it too, and the code of the refusal, which names the
//! missing authority. Admin tokens hold every authority (they are the operator's key; each use is
//! audited with the token id).
//!
//! Why here, pure: the inputs are only what changegate knows itself — the policy (role holders,
//! the category's rollback authority, the emergency roles), the stored change and world, and the
//! identity the token is bound to ([`Actor`]) — never a role or a person a request claims. The
//! server asks before it applies any command, for the API and the CLI alike (the CLI talks to the
//! API), and records which authority granted it ([`Authorized`]) in the command's audit event. A
//! refusal ([`Refusal`]) changes nothing. `docs/authority.md` is this table, tested current.
//!
//! Longer than 600 lines on purpose: the operations, the table, its check and its rendering stay in
//! one file so the whole authority model is read in one place (tests: `authority/tests.rs`).

use changegate_policy::{Policy, RoleId};
use jiff::Timestamp;
use serde::Serialize;

use crate::codes::RejectionCode;
use crate::model::{ChangeState, Person, WorldState};
use crate::ops::{ChangeOp, WorldOp};
use crate::people::{Holding, Relation, canonical, holding, relations};
use crate::status::Event;

/// Evidence kinds of checklist items that only CI observes (`evidence = "ci-run"`, the seed's
/// `tests-pass`): such an item is attested only by an integration token, or by a person with a
/// link to a CI run the server verified ([`crate::model::VerifiedLink`]).
pub const CI_EVIDENCE: &[&str] = &["ci-run"];

/// Who is asking: the identity the API token is bound to, and what kind of token it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The person the token belongs to.
    pub person: Person,
    /// An admin token: holds every authority.
    pub admin: bool,
    /// An integration token (CI, deploy pipeline, rollout guard): holds the authorities the table
    /// grants integrations.
    pub integration: bool,
}

/// A write that needs an authority: one row of [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Record a new change request.
    Create,
    /// Transition `submit`: ask for review.
    Submit,
    /// Transition `approve`: mark the change approved (the gate checks every approval is in).
    MarkApproved,
    /// Transition `schedule`: book the deploy.
    Schedule,
    /// Transition `reopen`: back to review.
    Reopen,
    /// Transition `cancel`: abandon the change.
    Cancel,
    /// Transition `start`: start the deployment (the gate must allow it now).
    Start,
    /// Transition `complete`: the deployment finished.
    Complete,
    /// Transition `roll-back`: the deployment was rolled back.
    RollBack,
    /// Approve the change in a role.
    Approve,
    /// Attest a checklist item a person can vouch for.
    Attest,
    /// Attest a checklist item whose evidence only CI observes ([`CI_EVIDENCE`]).
    AttestCiEvidence,
    /// A new head commit was pushed.
    Push,
    /// Publish a lead-time item (the RFC, the stakeholder notice).
    Publish,
    /// Mark the change as remediation of an incident (it may ship through the incident freeze).
    Remediates,
    /// Declare an emergency for the change.
    DeclareEmergency,
    /// Record the emergency's retrospective.
    Retrospective,
    /// Link the emergency's follow-up PR.
    FollowUp,
    /// Request an out-of-window exception.
    RequestException,
    /// Approve the out-of-window exception in a role.
    ApproveException,
    /// Open an incident.
    OpenIncident,
    /// Resolve an incident.
    ResolveIncident,
    /// Change an incident's severity, title or commander, or reopen it.
    UpdateIncident,
    /// Record a maintenance-window announcement.
    Announce,
    /// Set a team's members.
    SetTeam,
    /// Map an alias (e-mail, git name) to a person.
    SetAlias,
    /// Open a manual rollback request (`POST /api/v1/changes/{id}/rollbacks`).
    OpenRollback,
    /// Approve a rollback request in a role the caller holds.
    ApproveRollback,
    /// Record a staging rollback test (the rollback-plan evidence of a high-risk change).
    RecordRollbackTest,
    /// Record the post-mortem of a manual rollback.
    PostMortem,
    /// Record a duty as done (standby report, daily status update).
    RecordDuty,
}

impl Operation {
    /// Every operation, in table order.
    pub const ALL: [Operation; 31] = [
        Operation::Create,
        Operation::Submit,
        Operation::MarkApproved,
        Operation::Schedule,
        Operation::Reopen,
        Operation::Cancel,
        Operation::Start,
        Operation::Complete,
        Operation::RollBack,
        Operation::Approve,
        Operation::Attest,
        Operation::AttestCiEvidence,
        Operation::Push,
        Operation::Publish,
        Operation::Remediates,
        Operation::DeclareEmergency,
        Operation::Retrospective,
        Operation::FollowUp,
        Operation::RequestException,
        Operation::ApproveException,
        Operation::OpenIncident,
        Operation::ResolveIncident,
        Operation::UpdateIncident,
        Operation::Announce,
        Operation::SetTeam,
        Operation::SetAlias,
        Operation::OpenRollback,
        Operation::ApproveRollback,
        Operation::RecordRollbackTest,
        Operation::PostMortem,
        Operation::RecordDuty,
    ];

    /// How the API names it (the op, or the transition event).
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Submit => "submit",
            Operation::MarkApproved => "approve (transition)",
            Operation::Schedule => "schedule",
            Operation::Reopen => "reopen",
            Operation::Cancel => "cancel",
            Operation::Start => "start",
            Operation::Complete => "complete",
            Operation::RollBack => "roll-back",
            Operation::Approve => "approve",
            Operation::Attest => "attest",
            Operation::AttestCiEvidence => "attest (CI evidence)",
            Operation::Push => "push",
            Operation::Publish => "publish",
            Operation::Remediates => "remediates",
            Operation::DeclareEmergency => "declare-emergency",
            Operation::Retrospective => "retrospective",
            Operation::FollowUp => "follow-up",
            Operation::RequestException => "request-exception",
            Operation::ApproveException => "approve-exception",
            Operation::OpenIncident => "open-incident",
            Operation::ResolveIncident => "resolve-incident",
            Operation::UpdateIncident => "update-incident",
            Operation::Announce => "announce",
            Operation::SetTeam => "set-team",
            Operation::SetAlias => "set-alias",
            Operation::OpenRollback => "open-rollback",
            Operation::ApproveRollback => "approve-rollback",
            Operation::RecordRollbackTest => "record-rollback-test",
            Operation::PostMortem => "post-mortem",
            Operation::RecordDuty => "record-duty",
        }
    }

    /// Its row of [`TABLE`].
    pub fn row(self) -> &'static Row {
        &TABLE[self as usize]
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authority, as the policy and the stored state define it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    /// Any authenticated person.
    Anyone,
    /// A commit author, co-author or the last pusher of the change.
    Author,
    /// A holder of the role the command names; the gate's own rules check it (holding,
    /// separation of duties) and refuse with their codes.
    RoleHolder,
    /// An author, the emergency's incident commander, or a holder of a `deploy_approvers` role of
    /// the change's category.
    Deployer,
    /// The category's `rollback_authority`: every role of one of its sets (sets marked
    /// `during_active_incident` only while an incident is active, whose assigned commander then
    /// holds the commander role).
    RollbackAuthority,
    /// The assigned commander of the incident named, or a holder of a role in
    /// `emergency.remediation_by`.
    Remediator,
    /// The commander of the emergency's incident, whoever declared the emergency, or a holder of
    /// a role in `emergency.retrospective_by`.
    EmergencyOwner,
    /// A holder of a role in `emergency.declared_by`.
    Declarer,
    /// A holder of a role in `emergency.declared_by` or `emergency.commander_from`.
    IncidentResponder,
    /// The incident's assigned commander, or an incident responder.
    IncidentOwner,
    /// An integration token only.
    Integration,
    /// An integration token (the CI job that observed it), or a person whose evidence link the
    /// server verified: a successful, completed CI run of the change's head commit in its
    /// repository.
    CiObserved,
    /// An admin token only.
    Admin,
    /// An on-call engineer ([`crate::rollback::on_call`]), the commander of an active incident,
    /// or a holder of a role of one of the sets the rollback needs.
    RollbackTrigger,
    /// Whoever opened or approved the rollback, the commander of an active incident, or an SRE
    /// lead.
    PostMortemOwner,
    /// The duty's owner, or an SRE lead.
    DutyOwner,
}

impl Grant {
    /// For people (the docs table and refusal messages).
    pub const fn describe(self) -> &'static str {
        match self {
            Grant::Anyone => "any authenticated person",
            Grant::Author => "a commit author, co-author or the last pusher of the change",
            Grant::RoleHolder => {
                "a holder of the role named (the gate's approval rules check it, with their own codes)"
            }
            Grant::Deployer => {
                "an author, the emergency's incident commander, or a holder of a `deploy_approvers` role of the category"
            }
            Grant::RollbackAuthority => {
                "one set of the category's `rollback_authority` held alone (a set of several roles only where the policy lets one person fill many roles; else through a rollback request's approvals); a set marked `during_active_incident` only while an incident is active, when that incident's assigned commander holds the commander role"
            }
            Grant::Remediator => {
                "the incident's assigned commander, or a holder of a role in `emergency.remediation_by` (the seed: `sre-lead`)"
            }
            Grant::EmergencyOwner => {
                "the commander of the emergency's incident, whoever declared it, or a holder of a role in `emergency.retrospective_by` (the seed: `sre-lead`)"
            }
            Grant::Declarer => "a holder of a role in `emergency.declared_by`",
            Grant::IncidentResponder => {
                "a holder of a role in `emergency.declared_by` or `emergency.commander_from` (directly or through a team), or whoever is on call in a rotation of `emergency.commander_on_call`"
            }
            Grant::IncidentOwner => "the incident's assigned commander, or an incident responder",
            Grant::Integration => "an integration token (the CI job that observed it)",
            Grant::CiObserved => {
                "an integration token (the CI job that observed it), or a person with a link to a CI run the server verified (GitHub Actions: completed, successful, of the change's head commit and repository)"
            }
            Grant::Admin => "an admin token",
            Grant::RollbackTrigger => {
                "an on-call engineer (holder of `on-call-engineer`), the commander of an active incident, or a holder of a role of the category's `rollback_authority` (database rollbacks: also of `[rollback.database]` approver and executor)"
            }
            Grant::PostMortemOwner => {
                "whoever opened or approved the rollback, the commander of an active incident, or a holder of a role in `emergency.retrospective_by` (the seed: `sre-lead`)"
            }
            Grant::DutyOwner => {
                "the duty's owner, or a holder of a role in `emergency.retrospective_by` (the seed: `sre-lead`)"
            }
        }
    }
}

/// One row of the authority table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The operation.
    pub op: Operation,
    /// The authority it needs.
    pub grant: Grant,
    /// Whether an integration token holds it too.
    pub integration: bool,
    /// The code of a refusal (`None`: never refused for lack of authority).
    pub code: Option<RejectionCode>,
}

const fn row(op: Operation, grant: Grant, integration: bool, code: RejectionCode) -> Row {
    Row {
        op,
        grant,
        integration,
        code: Some(code),
    }
}

const fn open(op: Operation, grant: Grant) -> Row {
    Row {
        op,
        grant,
        integration: true,
        code: None,
    }
}

/// The authority table: one row per [`Operation`], in [`Operation::ALL`] order. Admin tokens hold
/// every row.
pub const TABLE: [Row; 31] = {
    use Grant as G;
    use Operation as O;
    use RejectionCode as C;
    [
        open(O::Create, G::Anyone),
        row(O::Submit, G::Author, true, C::AuthorRequired),
        row(O::MarkApproved, G::Author, true, C::AuthorRequired),
        row(O::Schedule, G::Author, true, C::AuthorRequired),
        row(O::Reopen, G::Author, true, C::AuthorRequired),
        row(O::Cancel, G::Author, false, C::AuthorRequired),
        row(O::Start, G::Deployer, true, C::DeployerRequired),
        row(O::Complete, G::Deployer, true, C::DeployerRequired),
        row(
            O::RollBack,
            G::RollbackAuthority,
            true,
            C::RollbackAuthorityRequired,
        ),
        open(O::Approve, G::RoleHolder),
        open(O::Attest, G::Anyone),
        row(
            O::AttestCiEvidence,
            G::CiObserved,
            true,
            C::IntegrationRequired,
        ),
        row(O::Push, G::Author, true, C::AuthorRequired),
        row(O::Publish, G::Author, false, C::AuthorRequired),
        row(
            O::Remediates,
            G::Remediator,
            false,
            C::RemediationAuthorityRequired,
        ),
        row(
            O::DeclareEmergency,
            G::Declarer,
            false,
            C::EmergencyDeclarerUnauthorized,
        ),
        row(
            O::Retrospective,
            G::EmergencyOwner,
            false,
            C::EmergencyOwnerRequired,
        ),
        row(
            O::FollowUp,
            G::EmergencyOwner,
            false,
            C::EmergencyOwnerRequired,
        ),
        row(O::RequestException, G::Author, false, C::AuthorRequired),
        open(O::ApproveException, G::RoleHolder),
        row(
            O::OpenIncident,
            G::IncidentResponder,
            true,
            C::IncidentForbidden,
        ),
        row(
            O::ResolveIncident,
            G::IncidentOwner,
            true,
            C::IncidentForbidden,
        ),
        row(
            O::UpdateIncident,
            G::IncidentOwner,
            true,
            C::IncidentForbidden,
        ),
        row(
            O::Announce,
            G::IncidentResponder,
            false,
            C::IncidentForbidden,
        ),
        row(O::SetTeam, G::Admin, false, C::AdminRequired),
        row(O::SetAlias, G::Admin, false, C::AdminRequired),
        row(
            O::OpenRollback,
            G::RollbackTrigger,
            true,
            C::RollbackTriggerRequired,
        ),
        open(O::ApproveRollback, G::RoleHolder),
        open(O::RecordRollbackTest, G::Anyone),
        row(
            O::PostMortem,
            G::PostMortemOwner,
            false,
            C::PostMortemOwnerRequired,
        ),
        row(O::RecordDuty, G::DutyOwner, false, C::DutyOwnerRequired),
    ]
};

/// How an authority was held (recorded in the command's audit event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum Via {
    /// An admin token.
    Admin,
    /// An integration token.
    Integration,
    /// The operation is open to any authenticated person.
    Anyone,
    /// The gate's own rules check the role the command names.
    RoleRules,
    /// The person wrote the change.
    Author {
        /// How.
        relation: Relation,
    },
    /// The person holds these roles (all of one set, or one role).
    Roles {
        /// Roles.
        roles: Vec<RoleId>,
    },
    /// The person is the assigned commander of this incident.
    IncidentCommander {
        /// Incident id.
        incident: String,
    },
    /// The person declared the change's emergency.
    Declarer,
    /// The person linked a CI run the server verified (GitHub Actions run id).
    VerifiedLink {
        /// The run id.
        run_id: u64,
        /// Its conclusion (`success`).
        conclusion: String,
    },
    /// The person is on call in this rotation (an incident-commander candidate).
    OnCall {
        /// Rotation name.
        rotation: String,
    },
}

/// A granted authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authorized {
    /// The operation.
    pub operation: Operation,
    /// How the authority was held.
    #[serde(flatten)]
    pub via: Via,
}

/// A refused operation: the caller lacks the authority; nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{person} may not {operation}: it needs {needs}")]
pub struct Refusal {
    /// The operation.
    pub operation: Operation,
    /// Who asked (canonical id).
    pub person: Person,
    /// The code naming the missing authority.
    pub code: RejectionCode,
    /// What it needs, for people.
    pub needs: String,
}

/// Whether checklist item `item` is one only CI observes ([`CI_EVIDENCE`]).
pub fn is_ci_evidence(policy: &Policy, item: &str) -> bool {
    policy
        .checklist
        .pre
        .get(item)
        .and_then(|i| i.evidence.as_deref())
        .is_some_and(|e| CI_EVIDENCE.contains(&e))
}

/// The operation a change command is.
pub fn operation(policy: &Policy, op: &ChangeOp) -> Operation {
    match op {
        ChangeOp::Transition { event, .. } => match event {
            Event::Submit => Operation::Submit,
            Event::Approve => Operation::MarkApproved,
            Event::Schedule => Operation::Schedule,
            Event::Start => Operation::Start,
            Event::Complete => Operation::Complete,
            Event::RollBack => Operation::RollBack,
            Event::Reopen => Operation::Reopen,
            Event::Cancel => Operation::Cancel,
        },
        ChangeOp::Approve { .. } => Operation::Approve,
        ChangeOp::Attest { item, .. } if is_ci_evidence(policy, item) => {
            Operation::AttestCiEvidence
        }
        ChangeOp::Attest { .. } => Operation::Attest,
        ChangeOp::Push { .. } => Operation::Push,
        ChangeOp::Publish { .. } => Operation::Publish,
        ChangeOp::Remediates { .. } => Operation::Remediates,
        ChangeOp::DeclareEmergency { .. } => Operation::DeclareEmergency,
        ChangeOp::Retrospective { .. } => Operation::Retrospective,
        ChangeOp::FollowUp { .. } => Operation::FollowUp,
        ChangeOp::RequestException { .. } => Operation::RequestException,
        ChangeOp::ApproveException { .. } => Operation::ApproveException,
    }
}

/// The operation a world command is.
pub fn world_operation(op: &WorldOp) -> Operation {
    match op {
        WorldOp::OpenIncident { .. } => Operation::OpenIncident,
        WorldOp::ResolveIncident { .. } => Operation::ResolveIncident,
        WorldOp::UpdateIncident { .. } => Operation::UpdateIncident,
        WorldOp::Announce { .. } => Operation::Announce,
        WorldOp::SetTeam { .. } => Operation::SetTeam,
        WorldOp::SetAlias { .. } => Operation::SetAlias,
    }
}

/// Admin and integration tokens, before any person-based authority.
fn by_token(actor: &Actor, row: &Row) -> Option<Via> {
    if actor.admin {
        Some(Via::Admin)
    } else if actor.integration && row.integration {
        Some(Via::Integration)
    } else {
        None
    }
}

fn refuse(world: &WorldState, actor: &Actor, row: &Row, needs: String) -> Refusal {
    Refusal {
        operation: row.op,
        person: canonical(world, &actor.person),
        // Rows without a code never refuse (a test checks it); the fallback keeps this total.
        code: row.code.unwrap_or(RejectionCode::AuthorRequired),
        needs,
    }
}

/// The person holds `role` directly or through a team (never through an incident).
fn holds(policy: &Policy, world: &WorldState, person: &str, role: &str) -> bool {
    let me = canonical(world, person);
    policy.roles.get(role).is_some_and(|def| {
        def.holders.iter().any(|h| match h.strip_prefix("team:") {
            Some(team) => world
                .teams
                .get(team)
                .is_some_and(|ms| ms.iter().any(|m| canonical(world, m) == me)),
            None => canonical(world, h) == me,
        })
    })
}

fn first_role<'a>(
    roles: impl IntoIterator<Item = &'a RoleId>,
    mut held: impl FnMut(&str) -> bool,
) -> Option<Via> {
    roles.into_iter().find(|r| held(r)).map(|r| Via::Roles {
        roles: vec![r.clone()],
    })
}

fn author(world: &WorldState, state: &ChangeState, person: &str) -> Option<Via> {
    relations(world, state, person)
        .first()
        .map(|&relation| Via::Author { relation })
}

fn is_commander(world: &WorldState, incident: &str, person: &str) -> bool {
    world
        .incident(incident)
        .and_then(|i| i.commander.as_deref())
        .is_some_and(|c| canonical(world, c) == canonical(world, person))
}

/// The set of the category's rollback authority the person holds whole at `at`, or what it
/// needs (for the refusal).
fn rollback(
    policy: &Policy,
    world: &WorldState,
    state: &ChangeState,
    person: &str,
    at: Timestamp,
) -> Result<Vec<RoleId>, String> {
    let level = crate::approval::effective_level(policy, state);
    let Some((name, cat)) = policy.category(level) else {
        return Err(format!(
            "the rollback authority of category {level}, which the policy does not define"
        ));
    };
    let active: Vec<&str> = world
        .incidents
        .iter()
        .filter(|i| i.active_at(at))
        .map(|i| i.id.as_str())
        .collect();
    let holds_role = |role: &str| {
        holding(policy, world, state, person, role).is_some()
            || (role == policy.emergency.commander_role
                && active.iter().any(|id| is_commander(world, id, person)))
    };
    for set in &cat.rollback_authority {
        if set.during_active_incident && active.is_empty() {
            continue;
        }
        // One person fills one role of a set (dual approval is two people) unless the policy
        // lets one person fill many roles; a two-role set is collected by a rollback request.
        let alone = set.all_of.len() == 1 || policy.separation_of_duties.one_person_many_roles;
        if alone && !set.all_of.is_empty() && set.all_of.iter().all(|r| holds_role(r)) {
            return Ok(set.all_of.clone());
        }
    }
    let sets: Vec<String> = cat
        .rollback_authority
        .iter()
        .map(|s| {
            let during = if s.during_active_incident {
                " (during an active incident)"
            } else {
                ""
            };
            format!("{}{during}", s.all_of.join(" + "))
        })
        .collect();
    Err(format!(
        "the rollback authority of a {name} change (category {level}), one of: {}",
        sets.join("; ")
    ))
}

/// A CI-evidence attestation carrying a run the server verified for the commit attested.
fn verified_link(state: &ChangeState, op: &ChangeOp) -> Option<Via> {
    let ChangeOp::Attest {
        commit,
        verified: Some(v),
        ..
    } = op
    else {
        return None;
    };
    let commit = commit.as_deref().unwrap_or(&state.change.head_commit);
    v.proves(commit).then(|| Via::VerifiedLink {
        run_id: v.run_id,
        conclusion: v.conclusion.clone(),
    })
}

/// May `actor` apply `op` to the change `state` at `at`? The answer says how the authority is
/// held, or why not (a [`Refusal`] whose code names the missing authority).
pub fn authorize(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    actor: &Actor,
    op: &ChangeOp,
    at: Timestamp,
) -> Result<Authorized, Refusal> {
    let operation = operation(policy, op);
    let row = operation.row();
    if let Some(via) = by_token(actor, row) {
        return Ok(Authorized { operation, via });
    }
    let me = actor.person.as_str();
    let emergency_commander = || {
        let em = state.emergency.as_ref()?;
        matches!(
            holding(policy, world, state, me, &policy.emergency.commander_role),
            Some(Holding::IncidentCommander { .. })
        )
        .then(|| Via::IncidentCommander {
            incident: em.incident.clone(),
        })
    };
    let any_role = |roles: &[RoleId]| first_role(roles, |r| holds(policy, world, me, r));
    let granted = match row.grant {
        Grant::Anyone => Some(Via::Anyone),
        Grant::RoleHolder => Some(Via::RoleRules),
        Grant::Author => author(world, state, me),
        Grant::Deployer => author(world, state, me)
            .or_else(emergency_commander)
            .or_else(|| {
                let level = crate::approval::effective_level(policy, state);
                let deployers = policy
                    .category(level)
                    .map(|(_, c)| c.deploy_approvers.as_slice())
                    .unwrap_or_default();
                first_role(deployers, |r| holds(policy, world, me, r))
            }),
        Grant::RollbackAuthority => match rollback(policy, world, state, me, at) {
            Ok(roles) => Some(Via::Roles { roles }),
            Err(needs) => return Err(refuse(world, actor, row, needs)),
        },
        Grant::Remediator => {
            let incident = match op {
                ChangeOp::Remediates { incident } => incident.as_str(),
                _ => "",
            };
            is_commander(world, incident, me)
                .then(|| Via::IncidentCommander {
                    incident: incident.to_string(),
                })
                .or_else(|| any_role(&policy.emergency.remediation_by))
        }
        Grant::EmergencyOwner => emergency_commander()
            .or_else(|| {
                let em = state.emergency.as_ref()?;
                (canonical(world, &em.declared_by) == canonical(world, me)).then_some(Via::Declarer)
            })
            .or_else(|| any_role(&policy.emergency.retrospective_by)),
        Grant::Declarer => first_role(&policy.emergency.declared_by, |r| {
            holding(policy, world, state, me, r).is_some()
        }),
        Grant::CiObserved => verified_link(state, op),
        Grant::IncidentResponder
        | Grant::IncidentOwner
        | Grant::Integration
        | Grant::Admin
        | Grant::RollbackTrigger
        | Grant::PostMortemOwner
        | Grant::DutyOwner => None,
    };
    match granted {
        Some(via) => Ok(Authorized { operation, via }),
        None => Err(refuse(world, actor, row, row.grant.describe().to_string())),
    }
}

/// May `actor` apply `op` to the shared world? Role holders only: whoever is on call in a
/// rotation of `emergency.commander_on_call` counts only through [`authorize_world_at`], which
/// the server calls.
pub fn authorize_world(
    policy: &Policy,
    world: &WorldState,
    actor: &Actor,
    op: &WorldOp,
) -> Result<Authorized, Refusal> {
    authorize_world_inner(policy, world, actor, op, None)
}

/// May `actor` apply `op` to the shared world at `at`? Incident responders are the holders of
/// `emergency.declared_by` and everyone [`crate::emergency::commander_eligible`] at `at` (a
/// `commander_from` role held directly or through a team, or on call in a `commander_on_call`
/// rotation).
pub fn authorize_world_at(
    policy: &Policy,
    world: &WorldState,
    actor: &Actor,
    op: &WorldOp,
    at: Timestamp,
) -> Result<Authorized, Refusal> {
    authorize_world_inner(policy, world, actor, op, Some(at))
}

fn authorize_world_inner(
    policy: &Policy,
    world: &WorldState,
    actor: &Actor,
    op: &WorldOp,
    at: Option<Timestamp>,
) -> Result<Authorized, Refusal> {
    let operation = world_operation(op);
    let row = operation.row();
    if let Some(via) = by_token(actor, row) {
        return Ok(Authorized { operation, via });
    }
    let me = actor.person.as_str();
    let e = &policy.emergency;
    let responder = || {
        first_role(e.declared_by.iter().chain(&e.commander_from), |r| {
            holds(policy, world, me, r)
        })
        .or_else(
            || match crate::emergency::commander_eligible(policy, world, me, at?)? {
                crate::emergency::CommanderBasis::OnCall { shift } => Some(Via::OnCall {
                    rotation: shift.rotation,
                }),
                _ => None,
            },
        )
    };
    let granted = match (row.grant, op) {
        (Grant::IncidentResponder, _) => responder(),
        (
            Grant::IncidentOwner,
            WorldOp::ResolveIncident { id } | WorldOp::UpdateIncident { id, .. },
        ) => is_commander(world, id, me)
            .then(|| Via::IncidentCommander {
                incident: id.clone(),
            })
            .or_else(responder),
        _ => None,
    };
    granted
        .map(|via| Authorized { operation, via })
        .ok_or_else(|| {
            let needs = match row.grant {
                Grant::IncidentResponder | Grant::IncidentOwner => {
                    let roles: Vec<&str> = e
                        .declared_by
                        .iter()
                        .chain(&e.commander_from)
                        .map(String::as_str)
                        .collect();
                    format!("{} (roles: {})", row.grant.describe(), roles.join(", "))
                }
                g => g.describe().to_string(),
            };
            refuse(world, actor, row, needs)
        })
}

/// The table as Markdown (`docs/authority.md` contains it; a test keeps them equal).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| operation | who holds the authority | integration token | refusal code |\n| --- | --- | --- | --- |\n",
    );
    for r in &TABLE {
        let code = r
            .code
            .map(|c| format!("`{c}`"))
            .unwrap_or_else(|| "none".to_string());
        out.push_str(&format!(
            "| `{}` | {} | {} | {code} |\n",
            r.op,
            r.grant.describe(),
            if r.integration { "yes" } else { "no" },
        ));
    }
    out
}

#[cfg(test)]
mod tests;
