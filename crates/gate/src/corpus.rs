//! The decision corpus format (`crates/gate/tests/cases/*.toml`), public so the server and CLI
//! test suites can replay the very same scenarios through their own front ends (HTTP, command
//! line) and check the answers with the same [`Expect::check`].
//!
//! A case is a policy override (merged over the built-in default policy and a shared people file),
//! an initial [`ChangeState`] and [`WorldState`], and [`Step`]s: a command applied at `at`
//! (optionally expected to fail with an error code), a decision to check, the `overdue` findings or
//! the resulting status. [`run`] replays a case against this crate directly.

use jiff::Timestamp;
use serde::Deserialize;

use crate::codes::{Code, RejectionCode};
use crate::decide::{Decision, decide};
use crate::model::{ChangeState, WorldState};
use crate::ops::{ChangeOp, WorldOp, apply, apply_world};
use crate::status::Status;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub description: String,
    /// Policy override (TOML text), merged over the default policy and the people file.
    #[serde(default)]
    pub policy: String,
    /// Initial state of the change.
    pub state: ChangeState,
    /// Initial world.
    #[serde(default)]
    pub world: WorldState,
    /// Steps in order.
    pub steps: Vec<Step>,
}

/// One step of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// When the step happens.
    pub at: Timestamp,
    /// Remark.
    #[serde(default)]
    pub note: Option<String>,
    /// A command on the change.
    #[serde(default)]
    pub change: Option<ChangeOp>,
    /// A command on the world.
    #[serde(default)]
    pub world: Option<WorldOp>,
    /// Code of the error the command must fail with (a typo fails to parse the case).
    #[serde(default)]
    pub error: Option<RejectionCode>,
    /// Decision to check at `at`.
    #[serde(default)]
    pub decide: Option<Expect>,
    /// Exactly the codes `overdue` must return at `at`.
    #[serde(default)]
    pub overdue: Option<Vec<Code>>,
    /// Status expected after the step.
    #[serde(default)]
    pub status: Option<Status>,
}

/// What a decision must look like.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Verdict.
    pub allowed: bool,
    /// Exactly the denying codes (order and duplicates ignored).
    #[serde(default)]
    pub deny: Vec<Code>,
    /// Non-denying codes that must be present.
    #[serde(default)]
    pub info: Vec<Code>,
    /// Exactly these missing roles.
    #[serde(default)]
    pub missing_roles: Option<Vec<String>>,
    /// Exactly these required roles.
    #[serde(default)]
    pub required_roles: Option<Vec<String>>,
    /// This next slot.
    #[serde(default)]
    pub next_slot: Option<Timestamp>,
    /// This effective category.
    #[serde(default)]
    pub category: Option<u8>,
}

impl Expect {
    /// Check a decision; the error says what differs.
    pub fn check(&self, d: &Decision) -> Result<(), String> {
        if d.allowed != self.allowed {
            return Err(format!(
                "allowed = {}, expected {}",
                d.allowed, self.allowed
            ));
        }
        let mut want: Vec<&str> = self.deny.iter().map(|c| c.as_str()).collect();
        want.sort_unstable();
        want.dedup();
        if d.denying_codes() != want {
            return Err(format!(
                "denying codes {:?}, expected {want:?}",
                d.denying_codes()
            ));
        }
        for c in &self.info {
            if !d.reasons.iter().any(|r| !r.denies && r.code == *c) {
                return Err(format!("no non-denying `{c}` among {:?}", d.codes()));
            }
        }
        if let Some(m) = &self.missing_roles
            && &d.missing_roles != m
        {
            return Err(format!(
                "missing roles {:?}, expected {m:?}",
                d.missing_roles
            ));
        }
        if let Some(m) = &self.required_roles
            && &d.required_roles != m
        {
            return Err(format!(
                "required roles {:?}, expected {m:?}",
                d.required_roles
            ));
        }
        if self.next_slot.is_some() && d.next_slot != self.next_slot {
            return Err(format!(
                "next slot {:?}, expected {:?}",
                d.next_slot, self.next_slot
            ));
        }
        if self.category.is_some() && d.category != self.category {
            return Err(format!(
                "category {:?}, expected {:?}",
                d.category, self.category
            ));
        }
        Ok(())
    }
}

/// Merge TOML tables key by key (other values replace), the policy loader's override rule; used
/// to put a case's `policy` over the shared people file before loading.
pub fn merge_toml(into: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge_toml(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// The policy of a case: the default policy with `people` and then `case_policy` merged over it.
pub fn case_policy(people: &str, case_policy: &str) -> Result<changegate_policy::Policy, String> {
    let mut base: toml::Table = toml::from_str(people).map_err(|e| format!("people file: {e}"))?;
    let over: toml::Table = toml::from_str(case_policy).map_err(|e| format!("case policy: {e}"))?;
    merge_toml(&mut base, over);
    let text = toml::to_string(&base).map_err(|e| e.to_string())?;
    changegate_policy::load(&text, "case-policy.toml")
        .map(|l| l.policy)
        .map_err(|e| format!("{e}: {:?}", e.diagnostics()))
}

/// Replay a case against this crate. `observe` sees every decision made (to collect codes).
pub fn run(case: &Case, people: &str, mut observe: impl FnMut(&Decision)) -> Result<(), String> {
    let policy = case_policy(people, &case.policy)?;
    let mut state = case.state.clone();
    let mut world = case.world.clone();
    for (i, step) in case.steps.iter().enumerate() {
        let here = format!(
            "step {} (at {}{})",
            i + 1,
            step.at,
            step.note
                .as_deref()
                .map(|n| format!(", {n}"))
                .unwrap_or_default()
        );
        let result = match (&step.change, &step.world) {
            (Some(op), None) => Some(apply(&policy, &mut state, &world, op, step.at)),
            (None, Some(op)) => Some(apply_world(&policy, &mut world, op, step.at)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(format!("{here}: one of `change` or `world` per step"));
            }
        };
        match (result, &step.error) {
            (Some(Ok(())), Some(want)) => {
                return Err(format!(
                    "{here}: expected error `{want}`, command succeeded"
                ));
            }
            (Some(Err(e)), None) => {
                return Err(format!("{here}: command failed: {} ({e})", e.code()));
            }
            (Some(Err(e)), Some(want)) if e.code() != *want => {
                return Err(format!(
                    "{here}: expected error `{want}`, got `{}` ({e})",
                    e.code()
                ));
            }
            (None, Some(_)) => return Err(format!("{here}: `error` without a command")),
            _ => {}
        }
        if let Some(want) = step.status
            && state.status != want
        {
            return Err(format!(
                "{here}: status is {}, expected {want}",
                state.status
            ));
        }
        if let Some(exp) = &step.decide {
            let d = decide(&policy, &state, &world, step.at);
            let again = decide(&policy, &state, &world, step.at);
            if d != again {
                return Err(format!("{here}: decision is not deterministic"));
            }
            observe(&d);
            exp.check(&d).map_err(|e| {
                format!(
                    "{here}: {e}; reasons: {}",
                    serde_json::to_string_pretty(&d.reasons).unwrap_or_default()
                )
            })?;
        }
        if let Some(want) = &step.overdue {
            let mut found = crate::emergency::overdue(&policy, &state, step.at);
            found.extend(crate::rollback::overdue(&state, step.at));
            let got: Vec<Code> = found.iter().map(|r| r.code).collect();
            if got != *want {
                return Err(format!("{here}: overdue {got:?}, expected {want:?}"));
            }
            observe(&Decision {
                allowed: true,
                change_id: state.change.id.clone(),
                at: step.at,
                status: state.status,
                category: None,
                reasons: found,
                required_roles: vec![],
                missing_roles: vec![],
                next_slot: None,
            });
        }
    }
    Ok(())
}
