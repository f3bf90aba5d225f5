//! `POST /api/v1/webhooks/pagerduty`: PagerDuty V3 webhooks.
//!
//! Authentic when one `v1=` value of `X-PagerDuty-Signature` is the HMAC-SHA256 of the raw body
//! under a configured secret (403 otherwise, so PagerDuty does not retry a forgery; nothing is
//! stored). Deduplicated on the event id (`event.id`, repeated by every delivery attempt of one
//! event). Incident events (`data.type = "incident"`) carry the whole incident, so the processor
//! reconciles: the changegate incident `PD-<incident id>` is made to say what PagerDuty says now —
//! opened on `incident.triggered`, its severity from the priority (`[integrations.pagerduty]`),
//! its commander the first assignee who is eligible ([`super::commander::commander_for`]; a
//! PagerDuty user is a person through the alias `pagerduty:<user id>`, `PUT /api/v1/aliases`),
//! reopened, resolved. An event that changes nothing changegate records writes nothing. Other
//! event types (notes, status updates, services, `pagey.ping`) are answered 202 and not stored.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use changegate_gate::WorldState;
use changegate_gate::people::canonical;
use changegate_policy::Policy;
use changegate_store::{Delivery, DeliverySource};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Plan, PlanError, Target, incident_id, invalid, parse_json, reconcile};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-pagerduty-signature";

/// The actor of PagerDuty's deliveries.
pub const ACTOR: &str = "integration:pagerduty";

/// The event types acted on: each carries the incident as it is now.
pub const INCIDENT_EVENTS: &[&str] = &[
    "incident.triggered",
    "incident.acknowledged",
    "incident.unacknowledged",
    "incident.resolved",
    "incident.reopened",
    "incident.priority_updated",
    "incident.reassigned",
    "incident.escalated",
    "incident.delegated",
];

/// A V3 webhook body: one event.
#[derive(Debug, Deserialize)]
pub struct Payload {
    /// The event.
    pub event: Event,
}

/// A V3 event (fields changegate does not read are ignored).
#[derive(Debug, Deserialize)]
pub struct Event {
    /// Unique id of the event: the dedupe key.
    pub id: String,
    /// `incident.triggered`, …
    pub event_type: String,
    /// When it happened.
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// The resource (for incident events, the incident).
    #[serde(default)]
    pub data: Option<Value>,
}

/// An incident as V3 incident events carry it.
#[derive(Debug, Deserialize)]
pub struct IncidentData {
    /// PagerDuty's incident id (`PGR0VU2`).
    pub id: String,
    /// `incident`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Priority (`summary` is its name: `P1` …), if set.
    #[serde(default)]
    pub priority: Option<Reference>,
    /// `high` or `low`.
    #[serde(default)]
    pub urgency: Option<String>,
    /// Assigned users.
    #[serde(default)]
    pub assignees: Option<Vec<Reference>>,
}

/// A reference to another PagerDuty object.
#[derive(Debug, Deserialize)]
pub struct Reference {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Name.
    #[serde(default)]
    pub summary: Option<String>,
}

fn incident(data: Option<&Value>) -> Result<IncidentData, ApiError> {
    let data = data.ok_or_else(|| {
        invalid(
            "an incident event carries the incident in `event.data`",
            "body `event.data`",
        )
    })?;
    let inc: IncidentData = serde_json::from_value(data.clone()).map_err(|e| {
        invalid(
            format!("`event.data` is not an incident: {e}"),
            "body `event.data`",
        )
    })?;
    if inc.kind != "incident" {
        return Err(invalid(
            format!("`event.data.type` is `{}`, not `incident`", inc.kind),
            "body `event.data.type`",
        ));
    }
    if !["triggered", "acknowledged", "resolved"].contains(&inc.status.as_str()) {
        return Err(invalid(
            format!(
                "`event.data.status` is `{}`, not triggered, acknowledged or resolved",
                inc.status
            ),
            "body `event.data.status`",
        ));
    }
    Ok(inc)
}

/// `POST /api/v1/webhooks/pagerduty`.
pub async fn receive(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if s.webhooks.pagerduty_secrets.is_empty() {
        return Err(ApiError::new(
            ErrorCode::WebhookNotConfigured,
            "this server has no PagerDuty webhook secret (serve --pagerduty-webhook-secret-file)",
        ));
    }
    // The signature first: an unauthenticated body is not even parsed.
    let header = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    crate::signature::verify_v1(&s.webhooks.pagerduty_secrets, header, &body).map_err(|e| {
        ApiError::new(ErrorCode::WebhookSignatureInvalid, e.to_string())
            .at("header X-PagerDuty-Signature")
    })?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::new(ErrorCode::InvalidJson, "the body is not UTF-8").at("body"))?;
    let p: Payload = parse_json(&body)?;
    let e = &p.event;
    if e.id.trim().is_empty() || e.id.len() > 200 {
        return Err(invalid(
            "`event.id` must be 1-200 characters",
            "body `event.id`",
        ));
    }
    if !INCIDENT_EVENTS.contains(&e.event_type.as_str()) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "ignored": true, "event_type": e.event_type })),
        ));
    }
    let inc = incident(e.data.as_ref())?;
    let id = incident_id("PD-", &inc.id, "body `event.data.id`")?;
    super::store(&s, DeliverySource::Pagerduty, &e.id, &id, ACTOR, text).await
}

/// What a stored PagerDuty delivery means for `world` at `at`.
pub fn plan(
    policy: &Policy,
    d: &Delivery,
    world: &WorldState,
    at: Timestamp,
) -> Result<Plan, PlanError> {
    let p: Payload = serde_json::from_str(&d.body)
        .map_err(|e| PlanError(format!("stored PagerDuty body does not parse: {e}")))?;
    let inc = incident(p.event.data.as_ref()).map_err(|e| PlanError(e.to_string()))?;
    let id = incident_id("PD-", &inc.id, "").map_err(|e| PlanError(e.to_string()))?;
    let table = &policy.integrations.pagerduty;
    let priority = inc.priority.as_ref().and_then(|p| p.summary.as_deref());
    let severity = table
        .severity_of(priority, inc.urgency.as_deref())
        .to_string();
    // The first assignee who may command (a PagerDuty user is a person through an alias).
    let mut assignees = Vec::new();
    let mut commander = None;
    for a in inc.assignees.iter().flatten() {
        let Some(uid) = a.id.as_deref() else { continue };
        let alias = format!("pagerduty:{uid}");
        let person = canonical(world, &alias);
        let mapped = person != alias.to_lowercase();
        let basis = mapped
            .then(|| super::commander::commander_for(policy, world, &person, at))
            .flatten();
        if commander.is_none() && basis.is_some() {
            commander = Some(person.clone());
        }
        assignees.push(json!({
            "id": uid,
            "person": mapped.then_some(&person),
            "eligible": basis,
        }));
    }
    let target = Target {
        id: id.clone(),
        active: inc.status != "resolved",
        severity: severity.clone(),
        title: inc.title.clone().unwrap_or_default(),
        commander: Some(commander.clone()),
    };
    let (op, result) = reconcile(world, &target, at);
    Ok(Plan {
        outcome: json!({
            "incident": id,
            "event_type": p.event.event_type,
            "occurred_at": p.event.occurred_at,
            "result": result,
            "severity": severity,
            "priority": priority,
            "commander": commander,
            "assignees": assignees,
        }),
        op,
        actor: super::actor(d),
    })
}
