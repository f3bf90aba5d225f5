//! Commands that change a [`ChangeState`] or the [`WorldState`], each validated first.
//!
//! The server applies one of these per write request (and persists the result with its audit
//! event); the test corpus replays them. Keeping them here, pure, means the rules that guard a
//! write (who may approve, which transitions exist, which checklist items exist) live beside the
//! rules that decide, and cannot drift apart.

//!
//! Files: this one declares the commands; `error.rs` says why one is refused ([`OpError`], each
//! with a stable [`RejectionCode`](crate::codes::RejectionCode)); `change.rs` applies a
//! [`ChangeOp`] and `world.rs` a [`WorldOp`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{ApprovalStage, ClassifiedChange, Cvss, Person, Voucher};
use crate::status::Event;

mod change;
mod error;
mod world;

pub use change::apply;
pub use error::OpError;
pub use world::apply_world;

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
        /// `review` (default) or `deploy` (the production-deployment gate after staging).
        #[serde(default, skip_serializing_if = "ApprovalStage::is_review")]
        stage: ApprovalStage,
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
        /// The CI run the server verified behind `evidence` (set by the server only; a request
        /// carrying it is refused).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verified: Option<crate::model::VerifiedLink>,
    },
    /// A new head commit was pushed. A push carries commits, never a classification: the server
    /// reads the new commits itself and attaches what it saw as `observed`.
    Push {
        /// New head.
        commit: String,
        /// Pusher.
        by: Person,
        /// Authors of the new commits (added to those recorded, never replacing them).
        #[serde(default)]
        authors: Vec<Person>,
        /// Co-authors of the new commits (added, likewise).
        #[serde(default)]
        co_authors: Vec<Person>,
        /// What the server observed of the push. Set by the server only: a request carrying it is
        /// refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        observed: Option<PushObservation>,
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
        /// A rollout plan the exception selects (one of the reason's `plans`).
        #[serde(default)]
        plan: Option<String>,
    },
    /// Approve the exception in a role.
    ApproveException {
        /// Who.
        person: Person,
        /// Role.
        role: String,
    },
}

/// What the server observed of a push, attached by the server to [`ChangeOp::Push`] (and so
/// recorded in the push's audit event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushObservation {
    /// The classification of `base..commit`, when the server could read the repository. It
    /// replaces an observed classification; one a token vouched for is only ever raised by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassifiedChange>,
    /// Commit authors and committers of `base..commit` (mapped to people; an unmapped identity as
    /// its e-mail).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Person>,
    /// `Co-authored-by` trailers of those commits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub co_authors: Vec<Person>,
    /// The token that sent the push: it vouches for the pusher and for the authors the command
    /// itself adds.
    pub token: Voucher,
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
        /// Kind, one of `emergency.incident_kinds`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        /// CVSS base score (security incidents).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cvss: Option<Cvss>,
    },
    /// Resolve an incident.
    ResolveIncident {
        /// Id.
        id: String,
    },
    /// Change an incident as its source reports it (a paging tool's priority, assignee or
    /// reopening): only the fields given change.
    UpdateIncident {
        /// Id.
        id: String,
        /// New severity (`P0` … `P4`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<String>,
        /// New title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// New assigned commander.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commander: Option<Person>,
        /// Remove the assigned commander (the incident was reassigned to nobody eligible).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        clear_commander: bool,
        /// Reopen a resolved incident: it is active again from now on, as one incident (its
        /// `resolved_at` is cleared).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reopen: bool,
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
