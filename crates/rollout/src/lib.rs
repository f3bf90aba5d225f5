//! The changegate rollout guard: walks a canary plan from the policy, watches the service's
//! metrics, and rolls back the moment a trigger fires.
//!
//! Shape (see docs/adr/0007-rollout-guard.md):
//! - [`spec`] resolves the plan and triggers from the policy (plus the guard's own settings file
//!   for knobs the policy model does not carry yet).
//! - [`engine`] is the pure decision core: `(spec, observations, now) → Decision`. No clock, no IO.
//! - [`replay`] runs the same engine over recorded series ([`recorded`] file format, or a
//!   Prometheus range query).
//! - The IO shell: [`prom`] (Prometheus HTTP API), [`queries`] (default PromQL), [`action`]
//!   (set-weight / rollback as a command or a webhook), [`recorder`] (JSON-lines log behind the
//!   [`recorder::Recorder`] trait, the seam for the audit trail), [`runner`] (the guard loop, paced
//!   and stamped by the injected [`clock::Clock`]) and [`progress`] (live status on stderr).
//! - [`authority`] checks manual rollbacks against the category's rollback authority (pure).
#![deny(missing_docs)]

pub mod action;
pub mod authority;
pub mod clock;
pub mod codes;
pub mod engine;
pub mod progress;
pub mod prom;
pub mod queries;
pub mod recorded;
pub mod recorder;
pub mod replay;
pub mod runner;
pub mod spec;

pub use codes::{ReasonCode, RolloutResult};
pub use engine::{Decision, Guard, Observation, Phase, Reading, Reason, TriggerStatus, Verdict};
pub use spec::{GuardSettings, GuardSpec, resolve};
