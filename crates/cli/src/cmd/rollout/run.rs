//! `rollout run`: walk the plan, watch the triggers in Prometheus, roll back at once.

use std::time::Duration;

use anyhow::bail;
use changegate_policy::Dur;
use changegate_rollout::action::Action;
use changegate_rollout::progress;
use changegate_rollout::prom::Prometheus;
use changegate_rollout::runner::{PromSource, RunEnd, RunOptions, run as run_guard};

use super::record::{AuditedRecorder, RecordArgs};
use super::{PlanArgs, spec, std_dur};
use crate::common::{Format, Global, Outcome, policy};

/// `rollout run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Change id (recorded, and passed to the actions as {change}).
    #[arg(long)]
    pub change: Option<String>,
    /// Prometheus base URL.
    #[arg(long, env = "CHANGEGATE_PROMETHEUS", value_name = "URL")]
    pub prometheus: String,
    /// Set-weight action: a command with {weight}, {step}, {environment}, {plan}, {change}
    /// substituted, or an http(s) webhook URL (JSON POST).
    #[arg(long, value_name = "CMD|URL")]
    pub set_weight: Option<String>,
    /// Rollback action: a command or webhook URL, run at once when a trigger fires.
    #[arg(long, value_name = "CMD|URL")]
    pub rollback: String,
    /// Evaluation interval.
    #[arg(long, default_value = "10s")]
    pub interval: Dur,
    /// Timeout of each Prometheus query.
    #[arg(long, default_value = "5s")]
    pub query_timeout: Dur,
    /// Evaluate and record, but print the actions instead of running them.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub log: RecordArgs,
    /// Final summary format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub(super) async fn run(global: &Global, a: RunArgs) -> anyhow::Result<Outcome> {
    let spec = spec(global, &a.plan)?;
    let log = a.log.path();
    let mut recorder = AuditedRecorder::open(&a.log, &policy(global)?).await?;
    let prom = Prometheus::new(&a.prometheus, std_dur(&a.query_timeout))?;
    let source = PromSource::new(prom, &spec, &a.plan.selector);
    let opts = RunOptions {
        interval: std_dur(&a.interval),
        set_weight: a.set_weight.as_deref().map(Action::parse),
        rollback: Action::parse(&a.rollback),
        dry_run: a.dry_run,
        change: a.change.clone(),
        max_evaluations: None,
        action_timeout: Duration::from_secs(60),
    };
    anstream::eprintln!(
        "rollout guard: plan {} (category {}), {} trigger(s), every {}, log {}{}",
        spec.plan.name,
        spec.category,
        spec.triggers.len(),
        a.interval,
        log.display(),
        if a.dry_run {
            " — DRY RUN: actions are printed, not run"
        } else {
            ""
        }
    );
    let mut progress = progress::Stderr::new();
    let out = run_guard(&spec, &source, &mut recorder, &mut progress, &opts).await?;
    if a.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let why: Vec<String> = out
            .last
            .reasons
            .iter()
            .map(|r| format!("{} {}", r.code, r.message))
            .collect();
        println!("{:?}: {}", out.end, why.join("; "));
        if let Some(rb) = &out.rollback {
            println!(
                "rollback action {} in {:.3}s: {}",
                if rb.action.ok { "succeeded" } else { "FAILED" },
                rb.action.seconds,
                rb.action.detail
            );
        }
    }
    if out.rollback.as_ref().is_some_and(|rb| !rb.action.ok) {
        bail!(
            "the rollback action failed: roll back by hand now (see {})",
            log.display()
        );
    }
    Ok(if out.end == RunEnd::Completed {
        Outcome::Ok
    } else {
        Outcome::Denied
    })
}
