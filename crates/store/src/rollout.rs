//! A small front door for the rollout engine: record a deployment start, step, finish or
//! rollback as an audit event with the policy's field names, in one call.

use changegate_audit::{AuditEvent, kinds};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Appended, Result, Store, Tx};

/// Which moment of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutPhase {
    /// Deployment started.
    Start,
    /// A stage was promoted or held.
    Step,
    /// Deployment finished.
    Finish,
    /// Rolled back.
    Rollback,
}

impl RolloutPhase {
    fn kind(self) -> &'static str {
        match self {
            RolloutPhase::Start => kinds::DEPLOYMENT_START,
            RolloutPhase::Step => kinds::DEPLOYMENT_STEP,
            RolloutPhase::Finish => kinds::DEPLOYMENT_FINISH,
            RolloutPhase::Rollback => kinds::ROLLBACK,
        }
    }
}

/// A rollout event. `None` fields are left out of the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutEvent {
    /// Phase (`None` is refused).
    pub phase: Option<RolloutPhase>,
    /// Who deployed (the `deployer` audit field).
    pub deployer: String,
    /// Change request id.
    pub change_id: Option<String>,
    /// Category id.
    pub category: Option<String>,
    /// `commit-sha`.
    pub commit_sha: Option<String>,
    /// `artifact-version`.
    pub artifact_version: Option<String>,
    /// `duration` so far (e.g. `PT12M`).
    pub duration: Option<String>,
    /// `result`: success / rollback / failed / held.
    pub result: Option<String>,
    /// `error-rate` (fraction).
    pub error_rate: Option<f64>,
    /// `latency-impact` (e.g. p99 delta in ms).
    pub latency_impact: Option<f64>,
    /// Stage name (step events).
    pub stage: Option<String>,
    /// What triggered a rollback / hold, e.g. the rule id.
    pub trigger: Option<String>,
    /// Metric values seen when deciding.
    pub metrics: Option<Value>,
}

impl RolloutEvent {
    /// As an audit event.
    pub fn to_audit_event(&self) -> AuditEvent {
        let phase = self.phase.unwrap_or(RolloutPhase::Step);
        let mut e = AuditEvent::new(phase.kind(), self.deployer.clone())
            .who("deployer", self.deployer.clone());
        e.change_id = self.change_id.clone();
        e.category = self.category.clone();
        if let Some(v) = &self.commit_sha {
            e = e.what("commit-sha", v.clone());
        }
        if let Some(v) = &self.artifact_version {
            e = e.what("artifact-version", v.clone());
        }
        if let Some(v) = &self.duration {
            e = e.when("duration", v.clone());
        }
        if let Some(v) = &self.result {
            e = e.outcome("result", v.clone());
        }
        if let Some(v) = self.error_rate {
            e = e.outcome("error-rate", v);
        }
        if let Some(v) = self.latency_impact {
            e = e.outcome("latency-impact", v);
        }
        let mut details = serde_json::Map::new();
        if let Some(s) = &self.stage {
            details.insert("stage".into(), json!(s));
        }
        if let Some(t) = &self.trigger {
            details.insert("trigger".into(), json!(t));
        }
        if let Some(m) = &self.metrics {
            details.insert("metrics".into(), m.clone());
        }
        if !details.is_empty() {
            e = e.details(Value::Object(details));
        }
        e
    }
}

impl Store {
    /// Record a rollout event in its own transaction.
    pub async fn record_rollout_event(&self, ev: &RolloutEvent) -> Result<Appended> {
        self.append(ev.to_audit_event()).await
    }
}

impl Tx {
    /// Record a rollout event inside a transaction (with the rollout's own state writes).
    pub async fn record_rollout_event(&mut self, ev: &RolloutEvent) -> Result<Appended> {
        self.append_audit(ev.to_audit_event()).await
    }
}
