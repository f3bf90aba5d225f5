//! Reading changes: the listing, one change with its version, and what is overdue (emergency
//! retrospectives and follow-ups, post-mortems of manual rollbacks, category-3 duties).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use changegate_gate::ChangeState;
use serde::Serialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::db::Versioned;
use crate::error::ApiError;
use crate::extract::Caller;

/// `GET /api/v1/changes`, `GET /api/v1/changes/{id}`, `GET /api/v1/overdue`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/changes", get(list_changes))
        .route("/api/v1/changes/{id}", get(get_change))
        .route("/api/v1/overdue", get(overdue))
}

/// A change with its version (for optimistic concurrency) and links.
#[derive(Debug, Serialize)]
pub struct ChangeView {
    /// Id.
    pub id: String,
    /// Version, incremented by every write.
    pub version: i64,
    /// The whole state.
    #[serde(flatten)]
    pub state: ChangeState,
}

/// The view of a stored change.
pub fn view(v: Versioned<ChangeState>) -> ChangeView {
    ChangeView {
        id: v.value.change.id.clone(),
        version: v.version,
        state: v.value,
    }
}

/// `GET /api/v1/changes`.
pub async fn list_changes(
    State(s): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let rows = s.db.list_changes().await?;
    Ok(Json(json!({ "changes": rows })))
}

/// `GET /api/v1/changes/{id}`.
pub async fn get_change(
    State(s): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ChangeView>, ApiError> {
    let v =
        s.db.change(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
    Ok(Json(view(v)))
}

/// `GET /api/v1/overdue`: emergency changes whose retrospective or follow-up PR is overdue.
pub async fn overdue(State(s): State<AppState>, _caller: Caller) -> Result<Json<Value>, ApiError> {
    let now = s.now();
    let mut out = BTreeMap::new();
    for summary in s.db.list_changes().await? {
        if let Some(c) = s.db.change(&summary.id).await? {
            let mut reasons = changegate_gate::overdue(&s.policy, &c.value, now);
            // Manual rollbacks' post-mortems and category-3 duties (changegate_gate::rollback).
            reasons.extend(changegate_gate::rollback::overdue(&c.value, now));
            if !reasons.is_empty() {
                out.insert(summary.id.clone(), reasons);
            }
        }
    }
    Ok(Json(json!({ "at": now, "overdue": out })))
}
