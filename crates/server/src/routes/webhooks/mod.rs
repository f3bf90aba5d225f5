//! Incoming webhooks: PagerDuty and Alertmanager incidents (later GitHub), and the deliveries they
//! leave.
//!
//! Every webhook follows one path. The request is authenticated first (PagerDuty: the
//! `X-PagerDuty-Signature` HMAC over the raw body; Alertmanager: a bearer token with the
//! `incidents` scope), then parsed just enough to reject what is malformed (400) and to read its
//! dedupe key and subject, then stored as one row of the `deliveries` table and answered at once
//! (202; a redelivery of the same key answers 200 and stores nothing). A refused request stores
//! nothing. The background worker ([`crate::deliveries`]) processes each row later, at least
//! once: it asks the source's processor ([`plan`]) what the delivery means for the current world
//! (a world command, or nothing when the world already says it), and commits that command, its
//! audit event and the row's `done` in one transaction.
//!
//! A processor is a pure function of the stored body, the policy and the world: processing the
//! same delivery twice, or Alertmanager's repeated notifications of an unchanged group, changes
//! nothing the second time (same state, no new audit event). Adding a source (GitHub) means a
//! variant of [`DeliverySource`], a route that authenticates and stores, and an arm of [`plan`].

pub mod alertmanager;
pub mod commander;
pub mod github;
pub mod pagerduty;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use changegate_gate::WorldState;
use changegate_gate::authority::Actor;
use changegate_gate::ops::WorldOp;
use changegate_store::{Delivery, DeliverySource, DeliveryStatus, NewDelivery, Received};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::Caller;
use crate::signature::Secret;

/// What the webhook routes need besides the policy: the PagerDuty signing secrets, and the
/// worker's wake-up (a stored delivery is processed at once, not at the next poll).
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    /// PagerDuty webhook subscription secrets (several during a rotation). Empty: the PagerDuty
    /// route answers `webhook-not-configured`.
    pub pagerduty_secrets: Arc<Vec<Secret>>,
    /// GitHub webhook secrets (several during a rotation). Empty: the GitHub route answers
    /// `webhook-not-configured`.
    pub github_secrets: Arc<Vec<Secret>>,
    /// Notified when a delivery is stored.
    pub wake: Arc<tokio::sync::Notify>,
}

/// `POST /api/v1/webhooks/pagerduty`, `POST /api/v1/webhooks/alertmanager`,
/// `GET /api/v1/deliveries`, `POST /api/v1/deliveries/{row}/retry`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks/pagerduty", post(pagerduty::receive))
        .route("/api/v1/webhooks/alertmanager", post(alertmanager::receive))
        .route("/api/v1/webhooks/github", post(github::receive))
        .route("/api/v1/deliveries", get(list))
        .route("/api/v1/deliveries/{row}/retry", post(retry))
}

/// What a delivery means for the world, as its source's processor reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The command to apply, if the world does not already say what the delivery says.
    pub op: Option<WorldOp>,
    /// Who acts (the audit event's actor; the authority table is checked for it).
    pub actor: Actor,
    /// What processing did, for the delivery's `outcome` (and `GET /api/v1/deliveries`).
    pub outcome: Value,
}

/// Why a delivery cannot be processed (retried with backoff, then `failed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// The source's processor: what `d` means for `world` at `at`.
pub fn plan(
    s: &AppState,
    d: &Delivery,
    world: &WorldState,
    at: Timestamp,
) -> Result<Plan, PlanError> {
    match d.source {
        DeliverySource::Pagerduty => pagerduty::plan(&s.policy, d, world, at),
        DeliverySource::Alertmanager => alertmanager::plan(&s.policy, d, world, at),
        // GitHub deliveries write changes, not the world: `github::process` (async).
        DeliverySource::Github => Err(PlanError(
            "GitHub deliveries are processed by routes::webhooks::github::process".into(),
        )),
    }
}

/// The actor a stored delivery acts as: whoever sent it (the token's actor, or
/// `integration:pagerduty` for a signed PagerDuty webhook), with an integration's authority (the
/// route checked the `incidents` scope, or an admin token, before storing it).
pub fn actor(d: &Delivery) -> Actor {
    Actor {
        person: d.received_by.clone(),
        admin: false,
        integration: true,
    }
}

/// Store a checked delivery and answer: 202 when stored (the worker is woken), 200 when the same
/// delivery was received before (nothing stored, nothing processed again).
pub(crate) async fn store(
    s: &AppState,
    source: DeliverySource,
    delivery_id: &str,
    subject: &str,
    received_by: &str,
    body: &str,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let received =
        s.db.insert_delivery(NewDelivery {
            source,
            delivery_id,
            subject,
            received_by,
            body,
            at: s.now(),
        })
        .await?;
    let (status, row, state, duplicate) = match received {
        Received::Stored { row } => {
            s.webhooks.wake.notify_one();
            (StatusCode::ACCEPTED, row, DeliveryStatus::Pending, false)
        }
        Received::Duplicate { row, status } => (StatusCode::OK, row, status, true),
    };
    tracing::info!(%source, delivery_id, row, duplicate, "webhook delivery received");
    Ok((
        status,
        Json(json!({ "delivery": {
            "row": row,
            "source": source,
            "delivery_id": delivery_id,
            "subject": subject,
            "status": state,
            "duplicate": duplicate,
        }})),
    ))
}

/// A 400 `webhook-payload-invalid` at `location`.
pub(crate) fn invalid(message: impl Into<String>, location: &str) -> ApiError {
    ApiError::new(ErrorCode::WebhookPayloadInvalid, message).at(location)
}

/// The body as JSON: 400 `invalid-json` (with line and column) when it is not.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let location = if path.is_empty() || path == "." {
            format!("body line {} column {}", inner.line(), inner.column())
        } else {
            format!("body `{path}`")
        };
        let code = if inner.is_data() {
            ErrorCode::WebhookPayloadInvalid
        } else {
            ErrorCode::InvalidJson
        };
        ApiError::new(code, inner.to_string()).at(location)
    })?;
    de.end().map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson, e.to_string()).at(format!(
            "body line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    if let Some(path) = crate::extract::nul_path(body) {
        return Err(ApiError::new(
            ErrorCode::NulCharacter,
            "a string contains a NUL character (\\u0000), which is not accepted",
        )
        .at(format!("body `{path}`")));
    }
    Ok(value)
}

/// An incident id taken from a sender (`PD-` + PagerDuty's id): 1-64 characters of
/// `A-Z a-z 0-9 . _ -`, so it is safe in paths (`/incidents/{id}/resolve`) and logs.
pub(crate) fn incident_id(prefix: &str, raw: &str, location: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() + prefix.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(format!("{prefix}{raw}"))
    } else {
        Err(invalid(
            format!("`{raw}` is not an incident id (1-60 characters of A-Z a-z 0-9 . _ -)"),
            location,
        ))
    }
}

/// Query of `GET /api/v1/deliveries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this status (`pending`, `done`, `failed`).
    #[serde(default)]
    pub status: Option<String>,
    /// Only this source (`pagerduty`, `alertmanager`, `github`).
    #[serde(default)]
    pub source: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `GET /api/v1/deliveries` (admin): deliveries newest first, with status, attempts, last error
/// and outcome (never the body).
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin("list webhook deliveries")?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(v) => Some(DeliveryStatus::parse(v).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                format!("status `{v}` is not one of pending, done, failed"),
            )
            .at("query `status`")
        })?),
    };
    let source = match q.source.as_deref() {
        None | Some("") => None,
        Some(v) => Some(DeliverySource::parse(v).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                format!("source `{v}` is not one of pagerduty, alertmanager, github"),
            )
            .at("query `source`")
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = s.db.list_deliveries(status, source, limit).await?;
    Ok(Json(json!({ "deliveries": rows })))
}

/// `POST /api/v1/deliveries/{row}/retry` (admin): a failed delivery becomes pending again.
pub async fn retry(
    State(s): State<AppState>,
    caller: Caller,
    Path(row): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin("retry webhook deliveries")?;
    if !s.db.retry_delivery(row, &caller.person, s.now()).await? {
        return Err(ApiError::not_found(format!("failed delivery {row}")));
    }
    s.webhooks.wake.notify_one();
    Ok(Json(
        json!({ "delivery": { "row": row, "status": DeliveryStatus::Pending } }),
    ))
}

/// The severity among `severities` that the policy ranks first (`emergency.incident_severities`
/// lists the most severe first), for an incident made of several alerts.
pub(crate) fn most_severe<'a>(
    policy: &changegate_policy::Policy,
    severities: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let rank = |s: &str| {
        policy
            .emergency
            .incident_severities
            .iter()
            .position(|x| x == s)
            .unwrap_or(0)
    };
    severities.into_iter().min_by_key(|s| rank(s))
}

/// What a source says an incident is now, reconciled with the world into at most one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Incident id.
    pub id: String,
    /// Active (firing, triggered, acknowledged) or resolved.
    pub active: bool,
    /// Severity.
    pub severity: String,
    /// Title.
    pub title: String,
    /// `Some(commander)` when the source assigns commanders (PagerDuty: `Some(None)` when
    /// nobody eligible is assigned); `None` leaves the commander as it is (Alertmanager).
    pub commander: Option<Option<String>>,
}

/// The command that makes the world say what `t` says, or `None` when it already does; and a
/// note saying which.
pub(crate) fn reconcile(
    world: &WorldState,
    t: &Target,
    at: Timestamp,
) -> (Option<WorldOp>, &'static str) {
    let Some(inc) = world.incident(&t.id) else {
        if !t.active {
            return (
                None,
                "resolved before changegate saw it open: nothing to do",
            );
        }
        return (
            Some(WorldOp::OpenIncident {
                id: t.id.clone(),
                severity: t.severity.clone(),
                commander: t.commander.clone().flatten(),
                title: t.title.clone(),
                kind: None,
                cvss: None,
            }),
            "opened",
        );
    };
    let active_now = inc.resolved_at.is_none_or(|r| r > at);
    if !t.active {
        return if active_now {
            (
                Some(WorldOp::ResolveIncident { id: t.id.clone() }),
                "resolved",
            )
        } else {
            (None, "already resolved")
        };
    }
    let severity = (inc.severity != t.severity).then(|| t.severity.clone());
    let title = (inc.title != t.title && !t.title.is_empty()).then(|| t.title.clone());
    let (commander, clear_commander) = match &t.commander {
        Some(Some(c)) if inc.commander.as_deref() != Some(c.as_str()) => (Some(c.clone()), false),
        Some(None) if inc.commander.is_some() => (None, true),
        _ => (None, false),
    };
    let reopen = !active_now;
    if severity.is_none() && title.is_none() && commander.is_none() && !clear_commander && !reopen {
        return (None, "unchanged");
    }
    (
        Some(WorldOp::UpdateIncident {
            id: t.id.clone(),
            severity,
            title,
            commander,
            clear_commander,
            reopen,
        }),
        if reopen { "reopened" } else { "updated" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(active: bool, severity: &str, commander: Option<Option<&str>>) -> Target {
        Target {
            id: "PD-1".into(),
            active,
            severity: severity.into(),
            title: "t".into(),
            commander: commander.map(|c| c.map(str::to_string)),
        }
    }

    #[test]
    fn reconciling_is_idempotent() {
        let policy = changegate_policy::load_default().policy;
        let at: Timestamp = "2026-03-10T10:00:00Z".parse().unwrap();
        let mut w = WorldState::default();
        let t = target(true, "P1", Some(Some("sam")));
        let (op, note) = reconcile(&w, &t, at);
        assert_eq!(note, "opened");
        changegate_gate::ops::apply_world(&policy, &mut w, &op.unwrap(), at).unwrap();
        assert_eq!(reconcile(&w, &t, at), (None, "unchanged"));
        let (op, note) = reconcile(&w, &target(true, "P0", Some(None)), at);
        assert_eq!(note, "updated");
        assert!(matches!(
            op,
            Some(WorldOp::UpdateIncident {
                clear_commander: true,
                ..
            })
        ));
        let done = target(false, "P1", None);
        let (op, _) = reconcile(&w, &done, at);
        changegate_gate::ops::apply_world(&policy, &mut w, &op.unwrap(), at).unwrap();
        assert_eq!(reconcile(&w, &done, at), (None, "already resolved"));
        let (_, note) = reconcile(&w, &t, at);
        assert_eq!(note, "reopened");
        assert_eq!(
            reconcile(&WorldState::default(), &done, at).0,
            None,
            "an unknown incident resolved is not opened"
        );
        assert_eq!(most_severe(&policy, ["P3", "P1", "P2"]), Some("P1"));
    }
}
