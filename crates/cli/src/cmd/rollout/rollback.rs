//! `rollout rollback`: a manual rollback, checked against the category's rollback authority.

use std::time::Duration;

use anyhow::bail;
use changegate_policy::Level;
use changegate_rollout::action::{Action, ActionVars};
use changegate_rollout::engine::Verdict;
use changegate_rollout::recorder::{Event, EventKind, Recorder};
use changegate_rollout::{ReasonCode, authority};
use jiff::Timestamp;

use super::record::{AuditedRecorder, RecordArgs};
use crate::common::{Format, Global, Outcome, policy};

/// `rollout rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// Change id.
    #[arg(long)]
    pub change: String,
    /// Why (recorded).
    #[arg(long)]
    pub reason: String,
    /// Roles of the people asking (repeat, or comma-separate), e.g. --by backend-lead,sre-lead.
    #[arg(
        long = "by",
        required = true,
        value_delimiter = ',',
        value_name = "ROLE"
    )]
    pub by: Vec<String>,
    /// The change's category level (until the server knows the change).
    #[arg(long)]
    pub category: Level,
    /// An incident is active (enables incident-only authorities, e.g. the incident commander).
    #[arg(long)]
    pub active_incident: bool,
    /// Rollback action to run when allowed: a command or webhook URL.
    #[arg(long = "rollback", value_name = "CMD|URL")]
    pub action: Option<String>,
    /// Check and record, but do not run the action.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub log: RecordArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub(super) async fn run(global: &Global, a: RollbackArgs) -> anyhow::Result<Outcome> {
    let policy = policy(global)?;
    let decision = authority::check(&policy, a.category, &a.by, a.active_incident);
    let plan = policy
        .category(a.category)
        .map(|(_, c)| c.rollout_plan.clone())
        .unwrap_or_default();
    let log = a.log.path();
    let mut recorder = AuditedRecorder::open(&a.log, &policy).await?;
    let mut reasons = decision.reasons.clone();
    reasons.push(changegate_rollout::Reason {
        code: ReasonCode::ManualRollback,
        trigger: None,
        message: a.reason.clone(),
        value: None,
        limit: None,
    });
    let action = match (&a.action, decision.allowed) {
        (Some(cmd), true) => {
            let vars = ActionVars {
                action: "rollback".into(),
                plan: plan.clone(),
                change: a.change.clone(),
                reasons: reasons
                    .iter()
                    .map(|r| format!("{}: {}", r.code, r.message))
                    .collect(),
                ..Default::default()
            };
            let timeout =
                Duration::from_secs_f64(policy.rollback.deadline.get().as_secs_f64().max(1.0));
            Some(Action::parse(cmd).run(&vars, timeout, a.dry_run).await)
        }
        _ => None,
    };
    let event = Event {
        t: Timestamp::now(),
        kind: EventKind::ManualRollback,
        change: Some(a.change.clone()),
        plan,
        category: a.category,
        step: None,
        weight: None,
        verdict: Some(if decision.allowed {
            Verdict::Rollback
        } else {
            Verdict::Hold
        }),
        reasons: reasons.clone(),
        triggers: Vec::new(),
        action: action.clone(),
        detail: serde_json::json!({ "by": a.by, "allowed": decision.allowed, "active_incident": a.active_incident }),
        dry_run: a.dry_run,
    };
    recorder.record(&event).await?;
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "change": a.change, "allowed": decision.allowed, "granted_by": decision.granted_by,
                "reasons": reasons, "action": action, "log": log,
            }))?
        );
    } else {
        for r in &reasons {
            println!("{} {}", r.code, r.message);
        }
        match &action {
            Some(res) => println!(
                "rollback action {}: {} ({})",
                if res.ok { "ran" } else { "FAILED" },
                res.ran,
                res.detail
            ),
            None if decision.allowed => {
                println!("allowed; no --rollback action given, recorded only")
            }
            None => println!("denied: nothing was run"),
        }
        println!("recorded in {}", log.display());
    }
    if action.as_ref().is_some_and(|r| !r.ok) {
        bail!("the rollback action failed");
    }
    Ok(if decision.allowed {
        Outcome::Ok
    } else {
        Outcome::Denied
    })
}
