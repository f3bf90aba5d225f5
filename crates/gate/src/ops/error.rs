//! Why a command was refused, and its stable code.

use serde::Serialize;

use crate::approval::ApprovalRejection;
use crate::checklist::AttestationRejection;
use crate::codes::RejectionCode;
use crate::model::Person;
use crate::status::{Status, TransitionError};

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
    /// Kind not in `emergency.incident_kinds`.
    #[error("invalid incident kind `{given}` (expected one of {})", .allowed.join(", "))]
    InvalidIncidentKind {
        /// Given.
        given: String,
        /// Allowed.
        allowed: Vec<String>,
    },
    /// The incident matches none of `emergency.eligible`.
    #[error("incident {incident} ({}) is not eligible for an emergency; eligible: {}", .incident_summary, .eligible.join("; "))]
    IneligibleIncident {
        /// Incident id.
        incident: String,
        /// Its severity, kind and CVSS score, for people.
        incident_summary: String,
        /// The policy's eligible incidents (their descriptions).
        eligible: Vec<String>,
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
    /// The caller lacks the authority for the command ([`crate::authority`]).
    #[error(transparent)]
    Unauthorized(#[from] crate::authority::Refusal),
    /// The change cannot take new commits in its state.
    #[error("a change that is {status} cannot take new commits")]
    PushRefused {
        /// State.
        status: Status,
    },
}

impl OpError {
    /// Stable code.
    pub fn code(&self) -> RejectionCode {
        use RejectionCode as C;
        match self {
            OpError::Transition(_) => TransitionError::CODE,
            OpError::Approval(r) => r.code(),
            OpError::Attestation(r) => r.code(),
            OpError::ApprovalsIncomplete { .. } => C::ApprovalMissing,
            OpError::UnknownLeadTime { .. } => C::LeadTimeUnknown,
            OpError::UnknownIncident { .. } => C::IncidentUnknown,
            OpError::DuplicateIncident { .. } => C::IncidentDuplicate,
            OpError::InvalidSeverity { .. } => C::IncidentSeverityInvalid,
            OpError::InvalidIncidentKind { .. } => C::IncidentKindInvalid,
            OpError::IneligibleIncident { .. } => C::EmergencyIncidentIneligible,
            OpError::NotADeclarer { .. } => C::EmergencyDeclarerUnauthorized,
            OpError::NoEmergency => C::EmergencyNotDeclared,
            OpError::NoException => C::ExceptionNotRequested,
            OpError::ExceptionApproverInvalid { .. } => C::ExceptionApproverInvalid,
            OpError::PushRefused { .. } => C::PushRefused,
            OpError::Unauthorized(r) => r.code,
        }
    }
}
