//! changegate's tamper-evident audit log, as pure functions: no database, no clock, no
//! randomness (the store supplies time, ids and salts).
//!
//! Why this shape: an audit trail an insider can quietly edit proves nothing. Every event is
//! sealed into a leaf of an append-only Merkle tree in the style of RFC 6962 / RFC 9162
//! ([`tree`]), with distinct leaf and node hashing; the log's roots are published as signed
//! C2SP `tlog-checkpoint` notes ([`checkpoint`]); inclusion and consistency proofs
//! ([`proof`]) let an auditor check an event or the log's growth with nothing but a checkpoint
//! they trust. Each leaf commits to a *salted* hash of its record ([`record`]), so retention can
//! delete a record and keep the leaf, and [`verify`] still proves what remains.
//!
//! docs/audit.md describes the formats byte by byte; docs/adr/0005-audit-log.md why they are so.
#![deny(missing_docs)]

pub mod checkpoint;
pub mod codes;
pub mod proof;
pub mod record;
pub mod tree;
pub mod verify;

pub use checkpoint::{Checkpoint, CheckpointError, LogSigner, VerifierKey};
pub use codes::Code;
pub use proof::{
    ConsistencyProofFile, InclusionProofFile, ProofCheck, ProofError, ProofFile, ProvenRecord,
};
pub use record::{
    AuditEvent, FieldPolicy, LeafData, Record, RecordError, Sealed, StateRef, StateTable, WORLD_ID,
    seal, state_hash,
};
pub use tree::{Frontier, Hash, NodeId};
pub use verify::{
    Failure, LeafRow, PRUNED_KIND, RecordRow, Report, StateRow, Verifier, parse_subject,
};

/// Well-known event kinds. Kinds are free dotted strings; these are the ones changegate writes.
pub mod kinds {
    /// A change request was created / classified.
    pub const CHANGE_CREATED: &str = "change.created";
    /// Classification (facets, category) computed.
    pub const CHANGE_CLASSIFIED: &str = "change.classified";
    /// Change request state transition.
    pub const CHANGE_STATE: &str = "change.state";
    /// Approval given.
    pub const APPROVAL_GRANTED: &str = "approval.granted";
    /// Approval invalidated (e.g. new head commit).
    pub const APPROVAL_INVALIDATED: &str = "approval.invalidated";
    /// Checklist item attested.
    pub const ATTESTATION: &str = "attestation.recorded";
    /// Exception requested / approved.
    pub const EXCEPTION: &str = "exception.recorded";
    /// Incident opened / resolved.
    pub const INCIDENT: &str = "incident.recorded";
    /// Gate decision.
    pub const GATE_DECISION: &str = "gate.decision";
    /// Deployment started.
    pub const DEPLOYMENT_START: &str = "deployment.start";
    /// Deployment step (rollout stage promoted / held).
    pub const DEPLOYMENT_STEP: &str = "deployment.step";
    /// Deployment finished.
    pub const DEPLOYMENT_FINISH: &str = "deployment.finish";
    /// Rollback, with its trigger and metric values.
    pub const ROLLBACK: &str = "rollback.triggered";
    /// Retention deleted records (details.before).
    pub const AUDIT_PRUNED: &str = crate::verify::PRUNED_KIND;
    /// An operator adopted a stored row no event had logged (`changegate audit adopt`): its
    /// `state` is the row as found, `details` say who and why.
    pub const AUDIT_ADOPTED: &str = "audit.adopted";
}
