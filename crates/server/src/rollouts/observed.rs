//! What a production deployment carries that only the server observes: the error rate and p95
//! latency **before** it moved traffic and **after** it, read from Prometheus with the guard's own
//! queries (docs/reports.md, "What a deployment is, and what it carries").
//!
//! One read = the error rate (%) and the p95 latency (ms), each with the query of the category's
//! rollout trigger on that metric when the plan has one, else the guard's default query for the
//! metric narrowed by the rollout config's `selector`; both reads of a deployment use the same
//! queries, so before and after compare. The read is recorded as `details.observed`
//! (`{phase, error-rate, p95-latency, at, source, queries}`) of the event it was taken for: the
//! first promotion of a server-run rollout (its baseline read), the conclusive post-deployment
//! verification, and GitHub's `deployment_status` start and finish.

use changegate_policy::{Level, Metric, Policy};
use changegate_rollout::GuardSpec;
use changegate_rollout::prom::Sample;
use changegate_rollout::queries;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::Runtime;

/// The (metric name, PromQL) pairs a read uses under `spec`.
pub fn queries_for(rt: &Runtime, spec: &GuardSpec) -> Vec<(&'static str, String)> {
    [
        (Metric::ErrorRate, "error-rate"),
        (Metric::P95Latency, "p95-latency"),
    ]
    .into_iter()
    .map(|(m, name)| {
        let q = spec
            .triggers
            .iter()
            .find(|t| t.metric == m)
            .map(|t| queries::for_trigger(t, &rt.config.selector, &spec.queries))
            .unwrap_or_else(|| queries::default_query(m, None, &rt.config.selector, &spec.queries));
        (name, q)
    })
    .collect()
}

/// The guard spec of `level`'s plan (or `plan`), for the queries.
pub fn spec_for(
    policy: &Policy,
    rt: &Runtime,
    plan: Option<&str>,
    level: Level,
) -> Option<GuardSpec> {
    changegate_rollout::resolve(policy, plan, Some(level), &rt.config.guard).ok()
}

/// Read both metrics now (Prometheus's own now: its samples are real, the server's clock may be a
/// test's) and return the `details.observed` object; `at` is the server's time of the read.
pub async fn read(rt: &Runtime, spec: &GuardSpec, phase: &str, at: Timestamp) -> Value {
    let mut out = json!({ "phase": phase, "at": at, "source": "prometheus" });
    let mut qs = serde_json::Map::new();
    for (name, q) in queries_for(rt, spec) {
        let v = match rt.prom.instant(&q, None).await {
            Ok(Sample::Value(v)) if v.is_finite() => json!(v),
            Ok(_) => Value::Null,
            Err(e) => {
                out[format!("{name}-error")] = json!(e.to_string());
                Value::Null
            }
        };
        out[name] = v;
        qs.insert(name.to_string(), json!(q));
    }
    out["queries"] = Value::Object(qs);
    out
}

/// The artifact version a server-run rollout deploys (`artifact` of the rollout config, else the
/// commit).
pub fn artifact(rt: &Runtime, commit: &str) -> String {
    match &rt.config.artifact {
        Some(t) => t
            .replace("{commit}", commit)
            .replace("{short}", &commit[..commit.len().min(12)]),
        None => commit.to_string(),
    }
}

/// The incident a change is linked to in its record: the emergency's incident, else the first
/// incident it remediates (each set by an authorised `declare-emergency` / `remediates`).
pub fn incident_of(state: &changegate_gate::ChangeState) -> Option<String> {
    state
        .emergency
        .as_ref()
        .map(|e| e.incident.clone())
        .or_else(|| state.remediates.first().cloned())
}

/// `why` of a deployment event from the change's record: the PR link and ticket (vouched for by
/// whoever created the change, or read from GitHub's signed pull request) and the incident.
pub fn with_why(
    e: changegate_audit::AuditEvent,
    state: &changegate_gate::ChangeState,
) -> changegate_audit::AuditEvent {
    let c = &state.change;
    let or_null = |v: Option<String>| v.map_or(Value::Null, Value::from);
    e.why("pr-link", or_null(c.pr_link.clone()))
        .why("ticket", or_null(c.ticket.clone()))
        .why("incident", or_null(incident_of(state)))
}
