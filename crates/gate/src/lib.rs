//! The deploy gate: change requests, approvals, checklist, lead times, incidents, emergencies and
//! the pure decision "may change X be deployed to production at time T?" with every reason.
//!
//! Why a pure core: the server, the CLI and the test corpus must give the same answer for the same
//! facts, and an auditor must be able to replay a decision years later. So nothing here does IO
//! or reads a clock. The inputs are the [`Policy`](changegate_policy::Policy) (every rule comes
//! from it, none is hard-coded), a [`ChangeState`] (the change and everything recorded about it),
//! a [`WorldState`] (incidents, maintenance announcements, team memberships, identity aliases) and
//! the instant to decide for. The output is a [`Decision`] whose [`Reason`]s carry stable codes
//! ([`Code`]) and the inputs that produced them.
//!
//! Modules, one rule family each: [`status`] (the life-cycle state machine), [`approval`]
//! (required roles, role holders, separation of duties, invalidation on new commits),
//! [`checklist`], [`lead_time`], [`emergency`], [`window`] (via the calendar crate) and
//! [`ops`] (the commands a server applies to a state, each validated), [`authority`] (who may
//! apply which command: the one authority table) and [`corpus`] (the scenario format shared by
//! every front end's tests).
#![deny(missing_docs)]

pub mod approval;
pub mod authority;
pub mod checklist;
pub mod codes;
pub mod corpus;
mod decide;
pub mod emergency;
pub mod lead_time;
mod model;
pub mod ops;
pub mod people;
mod reason;
pub mod rollback;
pub mod status;
pub mod window;

pub use approval::{ApprovalRejection, Requirements, requirements, validate_approval};
pub use checklist::{AttestationRejection, validate_attestation};
pub use codes::{Code, Denies, RejectionCode};
pub use decide::{Decision, GateSettings, decide, decide_with};
pub use emergency::overdue;
pub use model::*;
pub use people::{CoAuthor, parse_co_authors};
pub use reason::Reason;
pub use status::{Event, Status, TransitionError, transition};
