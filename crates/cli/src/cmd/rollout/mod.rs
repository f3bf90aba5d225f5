//! `changegate rollout run | replay | rollback | triggers | start | status`: the rollout guard
//! (crates/rollout); `start` and `status` talk to the server that runs rollouts (`server.rs`).
//!
//! Exit codes: `run` 0 when the plan completed, 1 when it rolled back or never started;
//! `replay` 0 when it would have completed, 1 otherwise (rolled back, never started, or the data
//! ended first); `rollback` 0 when done, 1 when the server refuses the token's rollback authority
//! or when it cannot be checked (offline: authority unverified). 2 is a usage or input error (or
//! an unreachable server), as everywhere.
//!
//! One file per subcommand; `record.rs` is where events go (the JSON-lines log and, with
//! `--audit`, the audit trail).

mod record;
mod replay;
mod rollback;
mod run;
mod server;
mod triggers;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use changegate_policy::{Dur, Level};
use changegate_rollout::spec::{GuardSettings, GuardSpec, resolve};

use crate::common::{Global, Outcome, policy};

pub use replay::ReplayArgs;
pub use rollback::RollbackArgs;
pub use run::RunArgs;
pub use server::ServerArgs;
pub use triggers::TriggersArgs;

/// Rollout commands.
#[derive(Debug, clap::Subcommand)]
pub enum RolloutCmd {
    /// Walk a plan's steps, watch the triggers in Prometheus, roll back at once on a violation.
    Run(RunArgs),
    /// Run the triggers over recorded or historical metrics: would the rollout have rolled back?
    Replay(ReplayArgs),
    /// Roll back by hand, checked against the category's rollback authority.
    Rollback(RollbackArgs),
    /// Show the plan and the triggers a rollout would enforce, with the PromQL each one runs.
    Triggers(TriggersArgs),
    /// Ask the server to start the rollout of an allowed change (the plan its category requires;
    /// the server's worker runs it).
    Start(ServerArgs),
    /// Show a change's server-run rollouts (phase, step, holds, verification, rollback timing).
    Status(ServerArgs),
}

/// Which plan, which triggers.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Plan name under `[rollout.plans]` (standard, high-risk, low-risk, emergency, ...).
    /// Defaults to the category's plan (`replay`: to `standard` when no category is given).
    #[arg(long)]
    pub plan: Option<String>,
    /// Category level whose triggers apply. Defaults to the one category using --plan.
    #[arg(long)]
    pub category: Option<Level>,
    /// Guard settings (TOML): consecutive-N / N-in-window conditions, no-data policy, minimum
    /// traffic, rate window, DB pool size. See docs/rollout.md.
    #[arg(long, env = "CHANGEGATE_GUARD", value_name = "FILE")]
    pub guard: Option<PathBuf>,
    /// Label matchers added to every default query, e.g. 'service="chat"'.
    #[arg(long, default_value = "")]
    pub selector: String,
}

/// Run a rollout command.
pub async fn run(global: &Global, cmd: RolloutCmd) -> anyhow::Result<Outcome> {
    match cmd {
        RolloutCmd::Run(a) => run::run(global, a).await,
        RolloutCmd::Replay(a) => replay::run(global, a).await,
        RolloutCmd::Rollback(a) => rollback::run(global, a).await,
        RolloutCmd::Triggers(a) => triggers::run(global, a),
        RolloutCmd::Start(a) => server::start(a).await,
        RolloutCmd::Status(a) => server::status(a).await,
    }
}

pub(crate) fn spec(global: &Global, a: &PlanArgs) -> anyhow::Result<GuardSpec> {
    spec_or(global, a, None)
}

/// `default_plan` applies when neither --plan nor --category is given.
pub(crate) fn spec_or(
    global: &Global,
    a: &PlanArgs,
    default_plan: Option<&str>,
) -> anyhow::Result<GuardSpec> {
    let settings = match &a.guard {
        Some(p) => GuardSettings::from_toml(
            &std::fs::read_to_string(p)
                .with_context(|| format!("cannot read guard settings {}", p.display()))?,
        )
        .with_context(|| p.display().to_string())?,
        None => GuardSettings::default(),
    };
    let plan = a.plan.as_deref().or(if a.category.is_none() {
        default_plan
    } else {
        None
    });
    Ok(resolve(&policy(global)?, plan, a.category, &settings)?)
}

pub(crate) fn std_dur(d: &Dur) -> Duration {
    Duration::from_secs_f64(d.get().as_secs_f64().max(0.001))
}
