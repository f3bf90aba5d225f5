//! Incidents and announcements, and every write of the shared world document (incidents,
//! announcements, teams, aliases) through [`apply_world_op`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use changegate_audit::{AuditEvent, kinds};
use changegate_gate::WorldState;
use changegate_gate::ops::{OpError, WorldOp};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::MAX_RETRIES;
use crate::AppState;
use crate::db::Versioned;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, JsonBody};

/// `/api/v1/incidents`, `POST /api/v1/incidents/{id}/resolve`, `POST /api/v1/announcements`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/incidents", get(list_incidents).post(open_incident))
        .route("/api/v1/incidents/{id}/resolve", post(resolve_incident))
        .route("/api/v1/announcements", post(announce))
}

/// Body of `POST /api/v1/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenIncident {
    /// Id (e.g. the PagerDuty incident number).
    pub id: String,
    /// Severity `P0` … `P4`.
    pub severity: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Incident commander.
    #[serde(default)]
    pub commander: Option<String>,
    /// Kind, one of the policy's `emergency.incident_kinds` (`outage`, `security`, …).
    #[serde(default)]
    pub kind: Option<String>,
    /// CVSS base score (security incidents), 0.0-10.0.
    #[serde(default)]
    pub cvss: Option<changegate_gate::Cvss>,
}

/// Authorise, load, apply, compare-and-swap; retry on a lost race.
pub(super) async fn apply_world_op(
    s: &AppState,
    caller: &Caller,
    op: WorldOp,
) -> Result<Versioned<WorldState>, ApiError> {
    let actor = super::approvals::actor(caller);
    for _ in 0..MAX_RETRIES {
        let current = s.db.world().await?;
        let now = s.now();
        // The authority table, for the token's identity (an incident's commander is read from
        // the stored world, never from the request; who is on call, from the policy's rotations
        // and the stored teams at this instant).
        let authority = changegate_gate::authority::authorize_world_at(
            &s.policy,
            &current.value,
            &actor,
            &op,
            now,
        )
        .map_err(OpError::from)?;
        let mut next = current.value.clone();
        changegate_gate::ops::apply_world(&s.policy, &mut next, &op, now)?;
        let event = AuditEvent::new(kinds::INCIDENT, &caller.person)
            .details(json!({ "op": op, "token": caller.token_id, "authority": authority }));
        if let Some(stored) = s.db.update_world(current.version, &next, event).await? {
            return Ok(stored);
        }
    }
    Err(ApiError::new(
        ErrorCode::ConcurrentUpdate,
        "incidents are being changed concurrently; try again",
    ))
}

/// `POST /api/v1/incidents`.
pub async fn open_incident(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<OpenIncident>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let op = WorldOp::OpenIncident {
        id: b.id.clone(),
        severity: b.severity,
        commander: b.commander,
        title: b.title,
        kind: b.kind,
        cvss: b.cvss,
    };
    let w = apply_world_op(&s, &caller, op).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "incident": w.value.incident(&b.id) })),
    ))
}

/// `POST /api/v1/incidents/{id}/resolve`.
pub async fn resolve_incident(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let w = apply_world_op(&s, &caller, WorldOp::ResolveIncident { id: id.clone() }).await?;
    Ok(Json(json!({ "incident": w.value.incident(&id) })))
}

/// `GET /api/v1/incidents`.
pub async fn list_incidents(
    State(s): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let w = s.db.world().await?;
    Ok(Json(json!({ "incidents": w.value.incidents })))
}

/// Body of `POST /api/v1/announcements`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announce {
    /// Id.
    pub id: String,
    /// Window start.
    pub window_start: Timestamp,
    /// Window end.
    pub window_end: Timestamp,
    /// Channels (`email`, `status-page`).
    #[serde(default)]
    pub channels: Vec<String>,
}

/// `POST /api/v1/announcements`: record a maintenance-window announcement.
pub async fn announce(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<Announce>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let op = WorldOp::Announce {
        id: b.id,
        window_start: b.window_start,
        window_end: b.window_end,
        channels: b.channels,
    };
    let w = apply_world_op(&s, &caller, op).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "announcements": w.value.announcements })),
    ))
}
