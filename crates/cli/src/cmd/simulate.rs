//! `changegate policy simulate --policy candidate.toml --from … --to … [--baseline FILE]`:
//! re-evaluate every
//! recorded change under a candidate policy and report what would have differed (the quarterly
//! review's "update this policy based on data-driven insights", made measurable; docs/reports.md).
//!
//! Each change is decided (`changegate_gate::decide`) under the baseline policy (default the
//! built-in one) and under the candidate (the global `--policy`), with the same stored state and world, at the instant it started deploying (or, if
//! it never deployed, the end of the range), with the approvals and attestations recorded by then
//! and its status as it was when it asked to deploy (approved). The difference is the policy's
//! alone.

use std::path::PathBuf;

use anyhow::Context;
use changegate_gate::{ChangeState, Decision, Status};
use changegate_policy::Policy;
use changegate_store::{ServerStore, Store, StoreConfig};
use jiff::Timestamp;
use serde::Serialize;

use crate::common::{Global, Outcome, StoreArgs, load_policy_file, policy};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SimFormat {
    /// Markdown table.
    #[default]
    Markdown,
    /// JSON.
    Json,
}

/// `policy simulate` arguments.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub db: StoreArgs,
    /// The policy the changes were decided under (default: the built-in policy). The candidate
    /// is the global `--policy FILE`.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Start (RFC 3339 or YYYY-MM-DD, UTC), inclusive.
    #[arg(long)]
    pub from: String,
    /// End, exclusive.
    #[arg(long)]
    pub to: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: SimFormat,
}

/// One change's two decisions.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// Change id.
    pub change_id: String,
    /// When it was decided (deploy start, or the range end).
    pub at: Timestamp,
    /// Whether it deployed.
    pub deployed: bool,
    /// Allowed under the effective policy.
    pub allowed_now: bool,
    /// Allowed under the candidate.
    pub allowed_candidate: bool,
    /// Required roles, effective policy.
    pub roles_now: Vec<String>,
    /// Required roles, candidate.
    pub roles_candidate: Vec<String>,
    /// Required roles without a valid approval, effective policy.
    pub missing_now: Vec<String>,
    /// Required roles without a valid approval, candidate.
    pub missing_candidate: Vec<String>,
    /// Denying codes under the candidate that the effective policy did not have.
    pub new_denials: Vec<String>,
    /// Denying codes of the effective policy the candidate lifts.
    pub lifted_denials: Vec<String>,
    /// Extra wait for the next window slot under the candidate, seconds (when it would deny on
    /// the window and names a next slot).
    pub window_delay_s: Option<i64>,
}

/// The simulation.
#[derive(Debug, Clone, Serialize)]
pub struct Simulation {
    /// Range start.
    pub from: Timestamp,
    /// Range end.
    pub to: Timestamp,
    /// Changes evaluated.
    pub changes: usize,
    /// Would have been blocked (allowed now, denied under the candidate).
    pub newly_blocked: usize,
    /// Would have been allowed (denied now, allowed under the candidate).
    pub newly_allowed: usize,
    /// Required approvers differ.
    pub approvers_changed: usize,
    /// Delayed by the candidate's windows.
    pub window_delayed: usize,
    /// Changes whose decisions differ in any way.
    pub differences: Vec<Difference>,
}

fn parse_time(s: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let d: jiff::civil::Date = s
        .parse()
        .with_context(|| format!("`{s}` is neither an RFC 3339 time nor a YYYY-MM-DD date"))?;
    Ok(d.to_zoned_datetime(jiff::tz::TimeZone::UTC)?.timestamp())
}

/// The state as it stood at `at`, asking to deploy.
fn as_of(state: &ChangeState, at: Timestamp) -> ChangeState {
    let mut s = state.clone();
    s.approvals.retain(|a| a.at <= at);
    s.attestations.retain(|a| a.at <= at);
    if matches!(
        s.status,
        Status::Deploying | Status::Deployed | Status::RolledBack
    ) {
        s.status = Status::Approved;
    }
    s
}

fn denials(d: &Decision) -> Vec<String> {
    d.denying_codes().into_iter().map(str::to_string).collect()
}

/// Decide every change under both policies.
pub fn simulate(
    now_policy: &Policy,
    candidate: &Policy,
    changes: &[ChangeState],
    world: &changegate_gate::WorldState,
    from: Timestamp,
    to: Timestamp,
) -> Simulation {
    let mut out = Simulation {
        from,
        to,
        changes: 0,
        newly_blocked: 0,
        newly_allowed: 0,
        approvers_changed: 0,
        window_delayed: 0,
        differences: Vec::new(),
    };
    for state in changes {
        let started = state.first_entered(Status::Deploying);
        let created = state.history.first().map(|h| h.at);
        let (at, deployed) = match (started, created) {
            (Some(t), _) if from <= t && t < to => (t, true),
            (None, Some(c)) if from <= c && c < to => (to, false),
            _ => continue,
        };
        out.changes += 1;
        let s = as_of(state, at);
        let a = changegate_gate::decide(now_policy, &s, world, at);
        let b = changegate_gate::decide(candidate, &s, world, at);
        let (da, db) = (denials(&a), denials(&b));
        let window_delay_s = if b.denying_codes().contains(&"window-closed") {
            b.next_slot.map(|n| n.duration_since(at).as_secs())
        } else {
            None
        };
        let diff = Difference {
            change_id: state.change.id.clone(),
            at,
            deployed,
            allowed_now: a.allowed,
            allowed_candidate: b.allowed,
            roles_now: a.required_roles.clone(),
            roles_candidate: b.required_roles.clone(),
            missing_now: a.missing_roles.clone(),
            missing_candidate: b.missing_roles.clone(),
            new_denials: db.iter().filter(|c| !da.contains(c)).cloned().collect(),
            lifted_denials: da.iter().filter(|c| !db.contains(c)).cloned().collect(),
            window_delay_s: window_delay_s.filter(|_| !da.iter().any(|c| c == "window-closed")),
        };
        out.newly_blocked += usize::from(a.allowed && !b.allowed);
        out.newly_allowed += usize::from(!a.allowed && b.allowed);
        out.approvers_changed += usize::from(diff.roles_now != diff.roles_candidate);
        out.window_delayed += usize::from(diff.window_delay_s.is_some());
        if diff.allowed_now != diff.allowed_candidate
            || diff.roles_now != diff.roles_candidate
            || !diff.new_denials.is_empty()
            || !diff.lifted_denials.is_empty()
        {
            out.differences.push(diff);
        }
    }
    out
}

fn markdown(s: &Simulation) -> String {
    let mut o = format!(
        "# Policy simulation {} to {}\n\n{} change(s) re-evaluated: {} would have been blocked, {} would have been allowed, {} with other required approvers, {} delayed by the candidate's windows.\n\n",
        s.from,
        s.to,
        s.changes,
        s.newly_blocked,
        s.newly_allowed,
        s.approvers_changed,
        s.window_delayed
    );
    o.push_str("| Change | At | Allowed now → candidate | Roles now | Roles candidate | New denials | Lifted | Window delay |\n|---|---|---|---|---|---|---|---|\n");
    for d in &s.differences {
        o.push_str(&format!(
            "| {} | {} | {} → {} | {} | {} | {} | {} | {} |\n",
            d.change_id,
            d.at,
            d.allowed_now,
            d.allowed_candidate,
            d.roles_now.join(", "),
            d.roles_candidate.join(", "),
            d.new_denials.join(", "),
            d.lifted_denials.join(", "),
            d.window_delay_s
                .map(|x| format!("{:.1} h", x as f64 / 3600.0))
                .unwrap_or_default()
        ));
    }
    o
}

/// Run `policy simulate`.
pub async fn run(global: &Global, a: SimulateArgs) -> anyhow::Result<Outcome> {
    let Some(candidate_path) = global.policy.as_deref() else {
        anyhow::bail!(
            "pass the candidate policy: `changegate policy simulate --policy candidate.toml --from … --to …`"
        );
    };
    let candidate =
        policy(global).with_context(|| format!("candidate policy {}", candidate_path.display()))?;
    let now_policy = load_policy_file(a.baseline.as_deref())?.policy;
    let (from, to) = (parse_time(&a.from)?, parse_time(&a.to)?);
    if from >= to {
        anyhow::bail!("--from ({from}) must be before --to ({to})");
    }
    if a.db.database_url.is_none() && !a.db.data_dir.join(changegate_store::SQLITE_FILE).exists() {
        anyhow::bail!(
            "no store in {} (no {}); pass --data-dir or --database-url",
            a.db.data_dir.display(),
            changegate_store::SQLITE_FILE
        );
    }
    let mut cfg = StoreConfig::new(&a.db.data_dir);
    cfg.database_url = a.db.database_url.clone();
    cfg.create_key = false;
    let store = Store::open(cfg).await.context("cannot open the store")?;
    let result = async {
        let world = store.world().await?.value;
        let mut states = Vec::new();
        for c in store.list_changes().await? {
            if let Some(v) = store.change(&c.id).await? {
                states.push(v.value);
            }
        }
        Ok::<_, changegate_store::StoreError>((world, states))
    }
    .await;
    store.close().await;
    let (world, states) = result?;
    let sim = simulate(&now_policy, &candidate, &states, &world, from, to);
    match a.format {
        SimFormat::Json => println!("{}", serde_json::to_string_pretty(&sim)?),
        SimFormat::Markdown => print!("{}", markdown(&sim)),
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use changegate_gate::StatusChange;
    use changegate_testkit::gate::{TUE, change, facet, policy, policy_with, t};

    fn deployed_change() -> ChangeState {
        let mut s = change(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]);
        s.approvals.push(changegate_gate::Approval {
            person: "bob".into(),
            role: "backend-lead".into(),
            head_commit: "h1".into(),
            at: t("2026-03-10T09:00:00Z"),
            stage: Default::default(),
        });
        s.status = Status::Deployed;
        s.history.push(StatusChange {
            from: Status::Approved,
            to: Status::Deploying,
            at: t(TUE),
            by: None,
        });
        s
    }

    #[test]
    fn a_stricter_candidate_shows_the_approver_it_adds_and_blocks() {
        let base = policy();
        let candidate = policy_with(
            "[categories.medium-risk]\napprovers = [\"backend-lead\", \"tech-architect\"]\n",
        );
        let world = changegate_gate::WorldState::default();
        let s = deployed_change();
        let sim = simulate(
            &base,
            &candidate,
            std::slice::from_ref(&s),
            &world,
            t("2026-03-01T00:00:00Z"),
            t("2026-04-01T00:00:00Z"),
        );
        assert_eq!(sim.changes, 1);
        assert_eq!(sim.approvers_changed, 1, "{sim:#?}");
        let d = &sim.differences[0];
        assert!(
            d.roles_candidate.iter().any(|r| r == "tech-architect"),
            "{d:#?}"
        );
        assert!(!d.roles_now.iter().any(|r| r == "tech-architect"));
        // Bob's backend-lead approval fills the baseline's review; the candidate misses the
        // Tech Architect.
        assert!(
            d.missing_candidate.iter().any(|r| r == "tech-architect"),
            "{d:#?}"
        );
        assert!(!d.missing_now.iter().any(|r| r == "tech-architect"));
        assert!(!d.missing_now.iter().any(|r| r == "backend-lead"), "{d:#?}");
        // The same policy on both sides: nothing differs.
        let same = simulate(
            &base,
            &base,
            &[s],
            &world,
            t("2026-03-01T00:00:00Z"),
            t("2026-04-01T00:00:00Z"),
        );
        assert!(same.differences.is_empty(), "{same:#?}");
        assert_eq!(same.changes, 1);
    }
}
