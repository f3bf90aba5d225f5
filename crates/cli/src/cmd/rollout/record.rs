//! Where a rollout is recorded: the JSON-lines log, and with `--audit` the tamper-evident audit
//! trail as well (SQLite in the data directory, or PostgreSQL).

use std::path::PathBuf;

use changegate_rollout::RolloutResult;
use changegate_rollout::engine::Verdict;
use changegate_rollout::recorder::{Event, EventKind, JsonlRecorder, RecordError, Recorder};

/// Where the rollout is recorded (the JSON-lines log, and the audit trail with `--audit`).
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
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
    pub async fn open(
        args: &RecordArgs,
        policy: &changegate_policy::Policy,
    ) -> anyhow::Result<Self> {
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
        (EventKind::Finished, Some(Verdict::Complete)) => Some(RolloutResult::Success),
        (EventKind::ManualRollback, Some(Verdict::Rollback)) => Some(RolloutResult::Rollback),
        (EventKind::ManualRollback, _) => Some(RolloutResult::RollbackDenied),
        (_, v) => v.map(RolloutResult::from),
    };
    changegate_store::RolloutEvent {
        phase: Some(phase),
        deployer: deployer.to_string(),
        change_id: e.change.clone(),
        category: Some(e.category.to_string()),
        result: result.map(|r| r.to_string()),
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
    async fn record(&mut self, event: &Event) -> Result<(), RecordError> {
        self.jsonl.record(event).await?;
        if let Some(store) = &self.store {
            store
                .record_rollout_event(&to_rollout_event(event, &self.deployer))
                .await
                .map_err(|e| RecordError {
                    path: "audit trail".into(),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }
}

impl RecordArgs {
    /// The JSON-lines log.
    pub fn path(&self) -> PathBuf {
        self.log
            .clone()
            .unwrap_or_else(|| self.data_dir.join("rollout.jsonl"))
    }
}
