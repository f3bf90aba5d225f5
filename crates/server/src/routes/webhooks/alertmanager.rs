//! `POST /api/v1/webhooks/alertmanager`: Prometheus Alertmanager's webhook receiver (payload
//! version 4).
//!
//! Alertmanager does not sign bodies: the receiver's `http_config.authorization` sends a bearer
//! token, an integration token with the `incidents` scope (or an admin token). One incident per
//! Alertmanager group (`groupKey`: the route and the values of its `group_by` labels), id
//! `AM-<first 16 hex digits of SHA-256(groupKey)>`: the group is what Alertmanager notifies about,
//! so an incident per group follows the operators' own grouping (an incident per alert would open
//! one freeze record per replica of a failing service). The incident is active while the group
//! fires, with the most severe severity of its firing alerts (label `[integrations.alertmanager]
//! severity_label` through its table), and resolved when the group is.
//!
//! Alertmanager re-sends an unchanged group every `repeat_interval`: the dedupe key is a digest of
//! the group's state (group key, status, and each alert's fingerprint, status, start and
//! severity), so a repeat is answered 200 and stored no second time; and processing is a
//! reconciliation, so even a repeat that is stored changes nothing (no audit event).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use changegate_gate::WorldState;
use changegate_policy::Policy;
use changegate_store::{Delivery, DeliverySource};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Plan, PlanError, Target, invalid, most_severe, parse_json, reconcile};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::token::Scope;

/// A webhook body (version 4).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// `4`.
    pub version: String,
    /// The group's key.
    pub group_key: String,
    /// `firing` (at least one alert fires) or `resolved`.
    pub status: String,
    /// Receiver name.
    #[serde(default)]
    pub receiver: String,
    /// Labels every alert of the group has.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert of the group has.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Alerts left out (`max_alerts`).
    #[serde(default)]
    pub truncated_alerts: u64,
    /// The alerts.
    pub alerts: Vec<Alert>,
}

/// One alert.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started.
    #[serde(default)]
    pub starts_at: String,
    /// Its label set's fingerprint.
    #[serde(default)]
    pub fingerprint: String,
}

fn check(p: &Payload) -> Result<(), ApiError> {
    if p.version != "4" {
        return Err(invalid(
            format!("payload version `{}` is not supported (only 4)", p.version),
            "body `version`",
        ));
    }
    if p.group_key.is_empty() {
        return Err(invalid("`groupKey` is empty", "body `groupKey`"));
    }
    for (at, s) in std::iter::once(("body `status`".to_string(), &p.status)).chain(
        p.alerts
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("body `alerts[{i}].status`"), &a.status)),
    ) {
        if s != "firing" && s != "resolved" {
            return Err(invalid(
                format!("status `{s}` is neither firing nor resolved"),
                &at,
            ));
        }
    }
    Ok(())
}

/// The incident of a group: `AM-` and the first 16 hex digits of SHA-256 of its key.
pub fn incident_of(group_key: &str) -> String {
    format!(
        "AM-{}",
        &hex::encode(Sha256::digest(group_key.as_bytes()))[..16]
    )
}

/// The dedupe key: a digest of the group's state, so a repeat of an unchanged group is the same.
pub fn state_key(policy: &Policy, p: &Payload) -> String {
    let label = &policy.integrations.alertmanager.severity_label;
    let mut alerts: Vec<String> = p
        .alerts
        .iter()
        .map(|a| {
            let sev = a.labels.get(label).map_or("", String::as_str);
            format!("{}|{}|{}|{sev}", a.fingerprint, a.status, a.starts_at)
        })
        .collect();
    alerts.sort();
    let text = format!(
        "{}\n{}\n{}\n{}",
        p.group_key,
        p.status,
        p.truncated_alerts,
        alerts.join("\n")
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `POST /api/v1/webhooks/alertmanager`.
pub async fn receive(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_scope(Scope::Incidents, "an Alertmanager webhook")?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::new(
            crate::error::ErrorCode::InvalidJson,
            "the body is not UTF-8",
        )
        .at("body")
    })?;
    let p: Payload = parse_json(&body)?;
    check(&p)?;
    let key = state_key(&s.policy, &p);
    let id = incident_of(&p.group_key);
    super::store(
        &s,
        DeliverySource::Alertmanager,
        &key,
        &id,
        &caller.person,
        text,
    )
    .await
}

/// What a stored Alertmanager delivery means for `world` at `at`.
pub fn plan(
    policy: &Policy,
    d: &Delivery,
    world: &WorldState,
    at: Timestamp,
) -> Result<Plan, PlanError> {
    let p: Payload = serde_json::from_str(&d.body)
        .map_err(|e| PlanError(format!("stored Alertmanager body does not parse: {e}")))?;
    check(&p).map_err(|e| PlanError(e.to_string()))?;
    let table = &policy.integrations.alertmanager;
    let firing: Vec<&Alert> = p.alerts.iter().filter(|a| a.status == "firing").collect();
    let severities: Vec<&str> = firing
        .iter()
        .map(|a| table.severity_of(|l| a.labels.get(l).map(String::as_str)))
        .collect();
    let active = p.status == "firing" && !firing.is_empty();
    let severity = most_severe(policy, severities.iter().copied())
        .unwrap_or(table.unmapped.as_str())
        .to_string();
    let title = p
        .common_annotations
        .get("summary")
        .or_else(|| p.common_labels.get("alertname"))
        .cloned()
        .unwrap_or_else(|| p.group_key.clone());
    let title: String = title.chars().take(200).collect();
    let id = incident_of(&p.group_key);
    let target = Target {
        id: id.clone(),
        active,
        severity: severity.clone(),
        title,
        commander: None,
    };
    let (op, result) = reconcile(world, &target, at);
    Ok(Plan {
        outcome: json!({
            "incident": id,
            "group_key": p.group_key,
            "receiver": p.receiver,
            "status": p.status,
            "firing": firing.len(),
            "result": result,
            "severity": severity,
        }),
        op,
        actor: super::actor(d),
    })
}
