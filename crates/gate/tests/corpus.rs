//! The decision corpus: every `tests/cases/*.toml` file is a scenario — a policy override (merged
//! over the built-in default and `_people.toml`), an initial change state and world, then steps
//! that apply commands at given times and check decisions. One test runs them all and reports
//! every failing case at once; a second checks that the corpus as a whole exercises every denying
//! reason code.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use changegate_gate::ops::{ChangeOp, WorldOp, apply, apply_world};
use changegate_gate::*;
use jiff::Timestamp;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    #[serde(default)]
    policy: String,
    state: ChangeState,
    #[serde(default)]
    world: WorldState,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    at: Timestamp,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    change: Option<ChangeOp>,
    #[serde(default)]
    world: Option<WorldOp>,
    /// Code of the error the command must fail with.
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    decide: Option<Expect>,
    /// Codes `overdue` must return (exactly).
    #[serde(default)]
    overdue: Option<Vec<String>>,
    /// The status expected after the step.
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    allowed: bool,
    /// Exactly the denying codes.
    #[serde(default)]
    deny: Vec<String>,
    /// Non-denying codes that must be present.
    #[serde(default)]
    info: Vec<String>,
    #[serde(default)]
    missing_roles: Option<Vec<String>>,
    #[serde(default)]
    required_roles: Option<Vec<String>>,
    #[serde(default)]
    next_slot: Option<Timestamp>,
    #[serde(default)]
    category: Option<u8>,
}

struct Seen {
    denying: BTreeSet<String>,
    all: BTreeSet<String>,
}

fn run_case(path: &Path, seen: &mut Seen) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Case = toml::from_str(&text).map_err(|e| format!("parse: {e}"))?;
    let _ = &case.description;
    let policy = common::policy_with(&case.policy);
    let mut state = case.state;
    let mut world = case.world;
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
            (Some(Err(e)), Some(want)) if e.code() != want => {
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
            if serde_json::to_string(&d).unwrap() != serde_json::to_string(&again).unwrap() {
                return Err(format!("{here}: decision is not deterministic"));
            }
            for r in &d.reasons {
                seen.all.insert(r.code.as_str().to_string());
                if r.denies {
                    seen.denying.insert(r.code.as_str().to_string());
                }
            }
            let show = || serde_json::to_string_pretty(&d.reasons).unwrap();
            if d.allowed != exp.allowed {
                return Err(format!(
                    "{here}: allowed = {}, expected {}; reasons: {}",
                    d.allowed,
                    exp.allowed,
                    show()
                ));
            }
            let mut want: Vec<&str> = exp.deny.iter().map(String::as_str).collect();
            want.sort_unstable();
            want.dedup();
            if d.denying_codes() != want {
                return Err(format!(
                    "{here}: denying codes {:?}, expected {:?}; reasons: {}",
                    d.denying_codes(),
                    want,
                    show()
                ));
            }
            let codes = d.codes();
            for c in &exp.info {
                if !d.reasons.iter().any(|r| !r.denies && r.code.as_str() == c) {
                    return Err(format!("{here}: no non-denying `{c}` among {codes:?}"));
                }
            }
            if let Some(m) = &exp.missing_roles
                && &d.missing_roles != m
            {
                return Err(format!(
                    "{here}: missing roles {:?}, expected {m:?}",
                    d.missing_roles
                ));
            }
            if let Some(m) = &exp.required_roles
                && &d.required_roles != m
            {
                return Err(format!(
                    "{here}: required roles {:?}, expected {m:?}",
                    d.required_roles
                ));
            }
            if exp.next_slot.is_some() && d.next_slot != exp.next_slot {
                return Err(format!(
                    "{here}: next slot {:?}, expected {:?}",
                    d.next_slot, exp.next_slot
                ));
            }
            if exp.category.is_some() && d.category != exp.category {
                return Err(format!(
                    "{here}: category {:?}, expected {:?}",
                    d.category, exp.category
                ));
            }
        }
        if let Some(want) = &step.overdue {
            let got: Vec<String> = overdue(&policy, &state, step.at)
                .iter()
                .map(|r| r.code.as_str().to_string())
                .collect();
            for c in &got {
                seen.all.insert(c.clone());
            }
            if &got != want {
                return Err(format!("{here}: overdue {got:?}, expected {want:?}"));
            }
        }
    }
    Ok(())
}

fn cases() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && !p.file_name().unwrap().to_string_lossy().starts_with('_')
        })
        .collect();
    files.sort();
    files
}

#[test]
fn corpus() {
    let files = cases();
    let mut seen = Seen {
        denying: BTreeSet::new(),
        all: BTreeSet::new(),
    };
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run_case(f, &mut seen) {
            failures.push(format!("{}: {e}", f.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
    assert!(files.len() >= 10, "corpus has only {} cases", files.len());

    // The corpus as a whole must make every reason that can deny actually deny, and show every code.
    let never_denied: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| c.denies() != "never" && !seen.denying.contains(c.as_str()))
        .map(|c| c.as_str())
        .collect();
    assert!(
        never_denied.is_empty(),
        "no corpus case denies with: {never_denied:?}"
    );
    let never_seen: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !seen.all.contains(c.as_str()))
        .map(|c| c.as_str())
        .collect();
    assert!(
        never_seen.is_empty(),
        "no corpus case produces: {never_seen:?}"
    );
}
