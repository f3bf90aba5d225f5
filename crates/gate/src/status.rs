//! The change-request life cycle as an explicit state machine.
//!
//! ```text
//! draft ─submit─► in-review ─approve─► approved ─schedule─► scheduled ─start─► deploying ─complete─► deployed
//!   │                ▲                    │                     │                 │                    │
//!   │                └──────reopen────────┴─────────────────────┘                 └─roll-back─► rolled-back ◄┘
//!   └──────────── cancel (from draft, in-review, approved, scheduled) ──► cancelled
//! ```
//!
//! Why a table and not ad-hoc checks: every writer (server, CLI, tests) goes through
//! [`transition`], so an invalid move is one typed error with the moves that *are* allowed, and
//! the table is the documentation. `reopen` exists because a new head commit invalidates approvals:
//! an approved change goes back to review instead of keeping a state it no longer deserves.

use serde::{Deserialize, Serialize};

use crate::codes::RejectionCode;

/// Where a change request is in its life cycle.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Being prepared; not yet asking for review.
    #[default]
    Draft,
    /// Waiting for approvals.
    InReview,
    /// Every required approval is in.
    Approved,
    /// A deploy time is booked.
    Scheduled,
    /// Rolling out.
    Deploying,
    /// Shipped (terminal unless rolled back).
    Deployed,
    /// Rolled back (terminal).
    RolledBack,
    /// Abandoned (terminal).
    Cancelled,
}

impl Status {
    /// Every state.
    pub const ALL: [Status; 8] = [
        Status::Draft,
        Status::InReview,
        Status::Approved,
        Status::Scheduled,
        Status::Deploying,
        Status::Deployed,
        Status::RolledBack,
        Status::Cancelled,
    ];

    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::InReview => "in-review",
            Status::Approved => "approved",
            Status::Scheduled => "scheduled",
            Status::Deploying => "deploying",
            Status::Deployed => "deployed",
            Status::RolledBack => "rolled-back",
            Status::Cancelled => "cancelled",
        }
    }

    /// No event leaves this state.
    pub fn is_terminal(self) -> bool {
        Status::ALL_EVENTS.iter().all(|e| next(self, *e).is_none())
    }

    /// States from which a deployment may start or continue (the gate denies others with
    /// `state-invalid`).
    pub fn is_deployable(self) -> bool {
        matches!(
            self,
            Status::Approved | Status::Scheduled | Status::Deploying
        )
    }

    /// States in which approvals and attestations may still be recorded.
    pub fn accepts_approvals(self) -> bool {
        matches!(
            self,
            Status::InReview | Status::Approved | Status::Scheduled
        )
    }

    const ALL_EVENTS: [Event; 8] = Event::ALL;
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that moves a change request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// Ask for review.
    Submit,
    /// All required approvals are in.
    Approve,
    /// Book the deploy.
    Schedule,
    /// Start deploying.
    Start,
    /// The rollout finished.
    Complete,
    /// The deployment was rolled back.
    RollBack,
    /// Back to review (a new head commit invalidated approvals).
    Reopen,
    /// Abandon the change.
    Cancel,
}

impl Event {
    /// Every event.
    pub const ALL: [Event; 8] = [
        Event::Submit,
        Event::Approve,
        Event::Schedule,
        Event::Start,
        Event::Complete,
        Event::RollBack,
        Event::Reopen,
        Event::Cancel,
    ];

    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Submit => "submit",
            Event::Approve => "approve",
            Event::Schedule => "schedule",
            Event::Start => "start",
            Event::Complete => "complete",
            Event::RollBack => "roll-back",
            Event::Reopen => "reopen",
            Event::Cancel => "cancel",
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event that is not allowed in the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("cannot {event} a change that is {from}; allowed here: {}", list(.allowed))]
pub struct TransitionError {
    /// Current state.
    pub from: Status,
    /// The event refused.
    pub event: Event,
    /// Events that are allowed in `from` (empty for a terminal state).
    pub allowed: Vec<Event>,
}

impl TransitionError {
    /// Stable code.
    pub const CODE: RejectionCode = RejectionCode::StateTransitionInvalid;
}

fn list(events: &[Event]) -> String {
    if events.is_empty() {
        return "nothing (terminal state)".into();
    }
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The transition table.
fn next(from: Status, event: Event) -> Option<Status> {
    use Event as E;
    use Status as S;
    Some(match (from, event) {
        (S::Draft, E::Submit) => S::InReview,
        (S::InReview, E::Approve) => S::Approved,
        (S::Approved, E::Schedule) => S::Scheduled,
        // Approved changes may start directly (category 1 auto-deploys, emergencies).
        (S::Approved | S::Scheduled, E::Start) => S::Deploying,
        (S::Deploying, E::Complete) => S::Deployed,
        // A deployed change may still be rolled back during post-deployment monitoring.
        (S::Deploying | S::Deployed, E::RollBack) => S::RolledBack,
        (S::Approved | S::Scheduled, E::Reopen) => S::InReview,
        (S::Draft | S::InReview | S::Approved | S::Scheduled, E::Cancel) => S::Cancelled,
        _ => return None,
    })
}

/// Events allowed in `from`.
pub fn allowed_events(from: Status) -> Vec<Event> {
    Event::ALL
        .into_iter()
        .filter(|e| next(from, *e).is_some())
        .collect()
}

/// Apply `event` to `from`.
pub fn transition(from: Status, event: Event) -> Result<Status, TransitionError> {
    next(from, event).ok_or_else(|| TransitionError {
        from,
        event,
        allowed: allowed_events(from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn happy_path() {
        let mut s = Status::Draft;
        for e in [
            Event::Submit,
            Event::Approve,
            Event::Schedule,
            Event::Start,
            Event::Complete,
        ] {
            s = transition(s, e).unwrap();
        }
        assert_eq!(s, Status::Deployed);
        assert_eq!(transition(s, Event::RollBack), Ok(Status::RolledBack));
    }

    #[test]
    fn invalid_transitions_are_typed_and_list_alternatives() {
        let err = transition(Status::Draft, Event::Start).unwrap_err();
        assert_eq!(err.from, Status::Draft);
        assert_eq!(err.allowed, vec![Event::Submit, Event::Cancel]);
        assert!(
            err.to_string()
                .contains("cannot start a change that is draft")
        );
        let err = transition(Status::Cancelled, Event::Submit).unwrap_err();
        assert!(err.allowed.is_empty());
        assert!(err.to_string().contains("terminal"));
    }

    #[test]
    fn terminal_states() {
        let terminal: Vec<Status> = Status::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, vec![Status::RolledBack, Status::Cancelled]);
        // Deployed is final for the rollout but can still be rolled back.
        assert_eq!(allowed_events(Status::Deployed), vec![Event::RollBack]);
    }

    #[test]
    fn cancel_only_before_deploying() {
        for s in Status::ALL {
            let ok = transition(s, Event::Cancel).is_ok();
            assert_eq!(
                ok,
                matches!(
                    s,
                    Status::Draft | Status::InReview | Status::Approved | Status::Scheduled
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn names_round_trip_through_serde() {
        for s in Status::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), s);
        }
    }
}
