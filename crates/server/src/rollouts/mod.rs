//! Rollouts the server runs for a change (issue 14): `POST /api/v1/changes/{id}/rollouts` starts
//! the plan the change's category requires, and a worker inside the server walks it.
//!
//! Why in the server, with its state in the database: a rollout of a category-3 change lasts more
//! than a day; a CLI loop on someone's laptop is neither bound to the change nor survives a
//! restart. Here the rollout is a row (`server_rollout`: the guard's snapshot, the step, the phase,
//! the next due time, the lease), so any replica can continue it, and a lease makes exactly one
//! replica act per step (see `changegate_store::server` rollouts). Design: docs/adr/0017.
//!
//! - [`config`]: `serve --rollout-config FILE` (Prometheus, actions, service base URL, lease).
//! - [`routes`]: start and status.
//! - [`worker`]: the loop (one per server) that takes due rollouts, feeds the pure engine
//!   (`changegate_rollout::Guard`, restored from its snapshot), re-checks the gate before every
//!   promotion (a denial holds the rollout; it never rolls back), runs the actions and writes each
//!   promotion, hold, rollback and completion with its audit event in one transaction.
//! - [`verify`]: the post-deployment verification after the last step.
//! - [`observed`]: the error rate and p95 latency before and after a deployment, the artifact
//!   version, and the change record's `why`, as a deployment's events carry them.
//! - [`rollback`]: the rollback path (automatic, failed verification, or [`rollback_active`]) with
//!   its measured switch time.

pub mod config;
pub mod observed;
pub mod rollback;
pub mod routes;
pub mod verify;
pub mod worker;

use changegate_rollout::engine::GuardSnapshot;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use config::{RolloutConfig, Runtime};
pub use rollback::{SwitchTiming, rollback_active};

/// Who the server's own rollout writes are recorded as (the automatic trigger).
pub const ACTOR: &str = "integration:changegate-rollout";

/// Phases of a server-run rollout (column `phase`).
pub mod phase {
    /// The guard is walking the plan.
    pub const RUNNING: &str = "running";
    /// The gate denies the next promotion (a freeze began); the rollout waits at its step.
    pub const HELD: &str = "held";
    /// The last step is done; the post-deployment verification runs.
    pub const VERIFYING: &str = "verifying";
    /// Deployed and verified.
    pub const COMPLETED: &str = "completed";
    /// Rolled back (automatically, by a failed verification, or on request).
    pub const ROLLED_BACK: &str = "rolled-back";
    /// Never started (no baseline): nothing moved.
    pub const ABORTED: &str = "aborted";
    /// The rollback action failed: roll back by hand.
    pub const FAILED: &str = "failed";
}

/// One step the rollout took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step index.
    pub step: usize,
    /// Weight set.
    pub weight: u8,
    /// When.
    pub at: Timestamp,
    /// The set-weight action's result, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<serde_json::Value>,
}

/// Why the gate holds the rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// Since when.
    pub since: Timestamp,
    /// The gate's denying codes.
    pub codes: Vec<String>,
}

/// One check of the verification, as last read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Check name (`health:/api/v1/health`, `error-rate`, …).
    pub name: String,
    /// `passed`, `failed`, `no-data`.
    pub state: String,
    /// The value read (HTTP status for endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The limit it was judged against.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub limit: String,
    /// Details (error text).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Progress of the post-deployment verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// When it started (the last step's completion).
    pub started: Timestamp,
    /// It must pass by then.
    pub deadline: Timestamp,
    /// `running`, `passed`, `failed`.
    pub result: String,
    /// The last reading of every check.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
}

/// The rollout document (column `state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutDoc {
    /// The guard's state.
    pub guard: GuardSnapshot,
    /// Reason codes of the last recorded evaluation (holds are recorded when they change).
    #[serde(default)]
    pub last_codes: Vec<String>,
    /// Steps taken.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// Held by the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Hold>,
    /// Holds by the gate so far.
    #[serde(default)]
    pub holds: u32,
    /// Verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The rollback, once it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<rollback::RollbackRecord>,
    /// The last decision's reasons (code, message, value, limit), as JSON.
    #[serde(default)]
    pub last_reasons: serde_json::Value,
    /// The last decision's trigger states, as JSON.
    #[serde(default)]
    pub last_triggers: serde_json::Value,
    /// Evaluations run.
    #[serde(default)]
    pub evaluations: u64,
    /// When it started, by the server's clock (the start of `when.duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
}

impl RolloutDoc {
    /// Seconds from the start to `now` (`when.duration` of the finish or the rollback).
    pub fn duration_s(&self, now: Timestamp) -> Option<i64> {
        self.started.map(|t| now.duration_since(t).as_secs().max(0))
    }
}

/// A rollout as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    /// Rollout id.
    pub id: String,
    /// Change id.
    pub change: String,
    /// Plan.
    pub plan: String,
    /// Category level.
    pub category: i64,
    /// Phase.
    pub phase: String,
    /// Step index, once started.
    pub step: Option<i64>,
    /// Weight of the current step.
    pub weight: Option<u8>,
    /// The worker still has work.
    pub active: bool,
    /// Next due (RFC 3339).
    pub due_at: Option<Timestamp>,
    /// Who started it.
    pub started_by: String,
    /// Created.
    pub created_at: String,
    /// Last write.
    pub updated_at: String,
    /// Version of the row.
    pub version: i64,
    /// The document.
    #[serde(flatten)]
    pub doc: serde_json::Value,
}

/// Round every float of an event's details and outcome to 6 decimals, for readable records
/// (metric values are long binary fractions such as `0.10344827586206896`; six decimals are far
/// below any threshold's precision). Not needed for correctness: the workspace parses floats
/// exactly (serde_json `float_roundtrip`), so any float re-encodes byte for byte
/// (`changegate_audit::record` tests).
pub fn tidy(mut e: changegate_audit::AuditEvent) -> changegate_audit::AuditEvent {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                if let Some(f) = n.as_f64() {
                    let r = (f * 1e6).round() / 1e6;
                    if let Some(x) = serde_json::Number::from_f64(r) {
                        *n = x;
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            serde_json::Value::Object(o) => o.values_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut e.details);
    for group in [
        &mut e.what,
        &mut e.who,
        &mut e.when,
        &mut e.why,
        &mut e.outcome,
    ] {
        group.values_mut().for_each(walk);
    }
    e
}

/// Microseconds since the Unix epoch.
pub fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// A view of a stored rollout (the document flattened in).
pub fn view(row: &changegate_store::RolloutRow) -> RolloutView {
    let doc: serde_json::Value = serde_json::from_str(&row.state).unwrap_or_default();
    let weight = doc
        .get("steps")
        .and_then(|s| s.as_array())
        .and_then(|s| s.last())
        .and_then(|s| s.get("weight"))
        .and_then(|w| w.as_u64())
        .and_then(|w| u8::try_from(w).ok());
    RolloutView {
        id: row.id.clone(),
        change: row.change_id.clone(),
        plan: row.plan.clone(),
        category: row.category,
        phase: row.phase.clone(),
        step: row.step,
        weight,
        active: row.active,
        due_at: row
            .active
            .then(|| Timestamp::from_microsecond(row.due_at).ok())
            .flatten(),
        started_by: row.started_by.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        version: row.version,
        doc,
    }
}
