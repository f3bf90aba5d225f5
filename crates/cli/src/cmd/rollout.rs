//! `changegate rollout run | replay | rollback | triggers`: the rollout guard (crates/rollout).
//!
//! Exit codes: `run` 0 when the plan completed, 1 when it rolled back or never started;
//! `replay` 0 when it would have completed, 1 otherwise (rolled back, never started, or the data
//! ended first); `rollback` 0 when done, 1 when the roles lack the rollback authority. 2 is a usage
//! or input error, as everywhere.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use changegate_policy::{Dur, Level};
use changegate_rollout::action::{Action, ActionVars};
use changegate_rollout::engine::{Verdict, fmt_dur};
use changegate_rollout::prom::Prometheus;
use changegate_rollout::recorded::Recorded;
use changegate_rollout::recorder::{Event, EventKind, JsonlRecorder, Recorder};
use changegate_rollout::replay::{ReplayOptions, ReplayReport, ReplayVerdict, replay};
use changegate_rollout::runner::{PromSource, RunEnd, RunOptions, fetch_history, run as run_guard};
use changegate_rollout::spec::{Condition, GuardSettings, GuardSpec, NoDataPolicy, resolve};
use changegate_rollout::{ReasonCode, authority, progress, queries};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use jiff::Timestamp;

use crate::common::{Format, Global, Outcome, policy};

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

/// Where the rollout log goes.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Data directory; the log defaults to DIR/rollout.jsonl.
    #[arg(
        long,
        env = "CHANGEGATE_DATA",
        default_value = "./changegate-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// JSON-lines log of steps, state-changing evaluations and rollbacks.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Also append every recorded event to the tamper-evident audit trail of the data directory
    /// (or of --database-url), in the policy's audit fields.
    #[arg(long)]
    pub audit: bool,
    /// With --audit: the PostgreSQL audit trail instead of the data directory's SQLite file.
    #[arg(long, env = "CHANGEGATE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

/// Records to the JSON-lines log and, with `--audit`, to the audit trail as well.
pub struct AuditedRecorder {
    jsonl: JsonlRecorder,
    store: Option<changegate_store::Store>,
    deployer: String,
}

impl AuditedRecorder {
    async fn open(args: &LogArgs, policy: &changegate_policy::Policy) -> anyhow::Result<Self> {
        let jsonl = JsonlRecorder::open(&args.path())?;
        let store = if args.audit {
            let mut cfg = changegate_store::StoreConfig::new(&args.data_dir);
            cfg.database_url = args.database_url.clone();
            cfg.fields = Some(changegate_audit::FieldPolicy::from_policy(
                &policy.audit.fields,
            ));
            Some(
                changegate_store::Store::open(cfg)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot open the audit trail: {e}"))?,
            )
        } else {
            None
        };
        let deployer = std::env::var("CHANGEGATE_DEPLOYER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "changegate-rollout".into());
        Ok(AuditedRecorder {
            jsonl,
            store,
            deployer,
        })
    }
}

/// The rollout event as an audit event (policy field names; the whole event in details).
fn to_rollout_event(e: &Event, deployer: &str) -> changegate_store::RolloutEvent {
    use changegate_store::RolloutPhase as P;
    let phase = match e.kind {
        EventKind::Started => P::Start,
        EventKind::Step | EventKind::Evaluation => P::Step,
        EventKind::Finished => P::Finish,
        EventKind::Rollback | EventKind::ManualRollback => P::Rollback,
    };
    let result = match (e.kind, e.verdict) {
        (EventKind::Finished, Some(Verdict::Complete)) => Some("success".to_string()),
        (EventKind::Finished, v) => v.map(|v| format!("{v:?}").to_lowercase()),
        (EventKind::Rollback | EventKind::ManualRollback, Some(Verdict::Rollback)) => {
            Some("rollback".to_string())
        }
        (EventKind::ManualRollback, _) => Some("rollback-denied".to_string()),
        (_, v) => v.map(|v| format!("{v:?}").to_lowercase()),
    };
    changegate_store::RolloutEvent {
        phase: Some(phase),
        deployer: deployer.to_string(),
        change_id: e.change.clone(),
        category: Some(e.category.to_string()),
        result,
        stage: e.step.map(|s| {
            format!(
                "step {} at {}%{}",
                s + 1,
                e.weight.unwrap_or(0),
                if e.dry_run { " (dry run)" } else { "" }
            )
        }),
        trigger: e
            .reasons
            .iter()
            .find_map(|r| r.trigger.clone())
            .or_else(|| e.reasons.first().map(|r| r.code.to_string())),
        metrics: serde_json::to_value(e).ok(),
        ..Default::default()
    }
}

impl Recorder for AuditedRecorder {
    async fn record(
        &mut self,
        event: &Event,
    ) -> Result<(), changegate_rollout::recorder::RecordError> {
        self.jsonl.record(event).await?;
        if let Some(store) = &self.store {
            store
                .record_rollout_event(&to_rollout_event(event, &self.deployer))
                .await
                .map_err(|e| changegate_rollout::recorder::RecordError {
                    path: "audit trail".into(),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }
}

impl LogArgs {
    fn path(&self) -> PathBuf {
        self.log
            .clone()
            .unwrap_or_else(|| self.data_dir.join("rollout.jsonl"))
    }
}

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
    pub log: LogArgs,
    /// Final summary format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `rollout replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Recorded metrics, JSON lines of {t, metric, value} (docs/rollout.md).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "prometheus",
        required_unless_present = "prometheus"
    )]
    pub metrics: Option<PathBuf>,
    /// Read history from this Prometheus (needs --from and --to).
    #[arg(long, value_name = "URL", requires_all = ["from", "to"])]
    pub prometheus: Option<String>,
    /// The rollout starts here (RFC 3339). Default: first recorded sample.
    #[arg(long)]
    pub from: Option<Timestamp>,
    /// Last evaluation (RFC 3339). Default: last recorded sample.
    #[arg(long)]
    pub to: Option<Timestamp>,
    /// Evaluation interval.
    #[arg(long, default_value = "10s")]
    pub interval: Dur,
    /// How old a sample may be and still count.
    #[arg(long, default_value = "5m")]
    pub lookback: Dur,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

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
    pub log: LogArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `rollout triggers`.
#[derive(Debug, clap::Args)]
pub struct TriggersArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Run a rollout command.
pub fn run(global: &Global, cmd: RolloutCmd) -> anyhow::Result<Outcome> {
    match cmd {
        RolloutCmd::Run(a) => run_cmd(global, a),
        RolloutCmd::Replay(a) => replay_cmd(global, a),
        RolloutCmd::Rollback(a) => rollback_cmd(global, a),
        RolloutCmd::Triggers(a) => triggers_cmd(global, a),
    }
}

fn spec(global: &Global, a: &PlanArgs) -> anyhow::Result<GuardSpec> {
    spec_or(global, a, None)
}

/// `default_plan` applies when neither --plan nor --category is given.
fn spec_or(global: &Global, a: &PlanArgs, default_plan: Option<&str>) -> anyhow::Result<GuardSpec> {
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn std_dur(d: &Dur) -> Duration {
    Duration::from_secs_f64(d.get().as_secs_f64().max(0.001))
}

fn run_cmd(global: &Global, a: RunArgs) -> anyhow::Result<Outcome> {
    let spec = spec(global, &a.plan)?;
    let log = a.log.path();
    let mut recorder = runtime()?.block_on(AuditedRecorder::open(&a.log, &policy(global)?))?;
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
    let out = runtime()?.block_on(run_guard(
        &spec,
        &source,
        &mut recorder,
        &mut progress,
        &opts,
    ))?;
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

fn replay_cmd(global: &Global, a: ReplayArgs) -> anyhow::Result<Outcome> {
    let spec = spec_or(global, &a.plan, Some("standard"))?;
    let interval = a.interval.get();
    let (rec, from, to) = match (&a.metrics, &a.prometheus) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let rec = Recorded::parse(&text).with_context(|| file.display().to_string())?;
            let Some((first, last)) = rec.span() else {
                bail!("{} has no samples", file.display())
            };
            (rec, a.from.unwrap_or(first), a.to.unwrap_or(last))
        }
        (None, Some(url)) => {
            let (Some(from), Some(to)) = (a.from, a.to) else {
                bail!("--prometheus needs --from and --to")
            };
            let prom = Prometheus::new(url, Duration::from_secs(30))?;
            let rec = runtime()?.block_on(fetch_history(
                &prom,
                &spec,
                &a.plan.selector,
                from,
                to,
                interval,
            ))?;
            (rec, from, to)
        }
        (None, None) => bail!("give --metrics FILE or --prometheus URL"),
    };
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let report = replay(
        &spec,
        &rec,
        ReplayOptions {
            from,
            to,
            interval,
            lookback: a.lookback.get(),
        },
    );
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        _ => print!("{}", replay_text(&spec, &report)),
    }
    Ok(if report.verdict == ReplayVerdict::Complete {
        Outcome::Ok
    } else {
        Outcome::Denied
    })
}

fn replay_text(spec: &GuardSpec, r: &ReplayReport) -> String {
    let mut s = format!(
        "replay: plan {} (category {}), {} → {}, every {}, lookback {}, {} evaluation(s)\n",
        r.plan,
        r.category,
        r.options.from,
        r.options.to,
        fmt_dur(r.options.interval),
        fmt_dur(r.options.lookback),
        r.evaluations
    );
    let n = spec.plan.steps.len();
    for d in &r.timeline {
        let step = match (d.step, d.weight) {
            (Some(i), Some(w)) => format!("step {}/{n} {w:>3}%", i + 1),
            _ => "not started ".into(),
        };
        let verdict = match d.verdict {
            Verdict::Rollback => "ROLLBACK".to_string(),
            v => format!("{v:?}").to_lowercase(),
        };
        let reasons: Vec<&_> = d
            .reasons
            .iter()
            .filter(|x| x.code != ReasonCode::Soaking)
            .collect();
        if reasons.is_empty() {
            s.push_str(&format!("{}  {verdict:<8}  {step}  soaking\n", d.at));
        }
        for (i, x) in reasons.iter().enumerate() {
            let head = if i == 0 {
                format!("{}  {verdict:<8}  {step}", d.at)
            } else {
                " ".repeat(d.at.to_string().len() + 26)
            };
            s.push_str(&format!("{head}  {} {}\n", x.code, x.message));
        }
    }
    let outcome = match r.verdict {
        ReplayVerdict::Complete => "would have COMPLETED".to_string(),
        ReplayVerdict::Rollback => "would have ROLLED BACK".to_string(),
        ReplayVerdict::Abort => "would never have started (no baseline)".to_string(),
        ReplayVerdict::Incomplete => {
            "data ended before the plan completed; no rollback".to_string()
        }
    };
    s.push_str(&format!(
        "verdict: {} at {}{}\n",
        outcome,
        r.at,
        r.weight.map_or(String::new(), |w| format!(" (at {w}%)"))
    ));
    s
}

fn rollback_cmd(global: &Global, a: RollbackArgs) -> anyhow::Result<Outcome> {
    let policy = policy(global)?;
    let decision = authority::check(&policy, a.category, &a.by, a.active_incident);
    let plan = policy
        .category(a.category)
        .map(|(_, c)| c.rollout_plan.clone())
        .unwrap_or_default();
    let log = a.log.path();
    let rt = runtime()?;
    let mut recorder = rt.block_on(AuditedRecorder::open(&a.log, &policy))?;
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
            Some(rt.block_on(Action::parse(cmd).run(&vars, timeout, a.dry_run)))
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
    rt.block_on(recorder.record(&event))?;
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

fn triggers_cmd(global: &Global, a: TriggersArgs) -> anyhow::Result<Outcome> {
    let spec = spec(global, &a.plan)?;
    let rows: Vec<serde_json::Value> = spec
        .triggers
        .iter()
        .map(|t| {
            serde_json::json!({
                "trigger": t.name,
                "metric": t.metric,
                "kind": t.kind,
                "threshold": t.threshold,
                "unit": t.metric.unit(),
                "window_seconds": t.window.map(|w| w.as_secs()),
                "mode": t.mode,
                "condition": t.condition,
                "no_data": t.no_data,
                "min_traffic": t.min_traffic,
                "query": queries::for_trigger(t, &a.plan.selector, &spec.queries),
            })
        })
        .collect();
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "plan": spec.plan, "category": spec.category, "triggers": rows,
                "traffic_query": queries::traffic(&a.plan.selector, &spec.queries),
            }))?
        );
        return Ok(Outcome::Ok);
    }
    let steps: Vec<String> = spec
        .plan
        .steps
        .iter()
        .map(|s| {
            let soak = if s.soak.is_zero() {
                String::new()
            } else {
                format!(" (soak {})", fmt_dur(s.soak))
            };
            format!("{}% {}{soak}", s.weight, s.environment)
        })
        .collect();
    println!(
        "plan {} (category {}): {}",
        spec.plan.name,
        spec.category,
        steps.join(" → ")
    );
    if !spec.plan.monitor_after.is_zero() {
        println!("then monitor for {}", fmt_dur(spec.plan.monitor_after));
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "trigger",
            "fires when",
            "condition",
            "no data",
            "mode",
            "query",
        ]);
    for t in &spec.triggers {
        let unit = t.metric.unit();
        let when = match (t.kind, t.window) {
            (changegate_policy::TriggerKind::Relative, _) => {
                format!(
                    "> baseline + {} {unit} (judged at ≥ {} req/s)",
                    t.threshold, t.min_traffic
                )
            }
            (changegate_policy::TriggerKind::Count, Some(w)) => {
                format!("> {} {unit} in {}", t.threshold, fmt_dur(w))
            }
            (changegate_policy::TriggerKind::Sustained, Some(w)) => {
                format!("> {} {unit} for {}", t.threshold, fmt_dur(w))
            }
            _ => format!("> {} {unit}", t.threshold),
        };
        let cond = match t.condition {
            Condition::Consecutive { count } => format!("{count} consecutive"),
            Condition::InWindow { count, window } => format!("{count} in {}", fmt_dur(window)),
        };
        let nd = match t.no_data {
            NoDataPolicy::Hold => "hold".to_string(),
            NoDataPolicy::RollbackAfter { limit } => format!("roll back after {}", fmt_dur(limit)),
        };
        table.add_row([
            t.name.clone(),
            when,
            cond,
            nd,
            format!("{:?}", t.mode).to_lowercase(),
            queries::for_trigger(t, &a.plan.selector, &spec.queries),
        ]);
    }
    println!("{table}");
    println!(
        "traffic: {}",
        queries::traffic(&a.plan.selector, &spec.queries)
    );
    Ok(Outcome::Ok)
}
