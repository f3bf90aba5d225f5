//! The notification outbox, for operators: `GET /api/v1/notifications` (filter by status and
//! subject; the dead letters are `?status=dead`) and `POST /api/v1/notifications/{id}/retry` (a
//! dead notification becomes pending again). Admin tokens only: the rows name recipients and
//! channels of every change.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use changegate_store::NotificationStatus;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::Caller;

/// `GET /api/v1/notifications`, `POST /api/v1/notifications/{id}/retry`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications", get(list))
        .route("/api/v1/notifications/{id}/retry", post(retry))
}

/// Query of `GET /api/v1/notifications`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this status (`pending`, `sent`, `dead`, `cancelled`).
    #[serde(default)]
    pub status: Option<String>,
    /// Only this subject (a change id, `incident:ID`, `announcement:ID`).
    #[serde(default)]
    pub subject: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `GET /api/v1/notifications` (admin): newest first, with status, attempts, last error, due
/// time and receipt.
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin("list notifications")?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(v) => Some(NotificationStatus::parse(v).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                format!("status `{v}` is not one of pending, sent, dead, cancelled"),
            )
            .at("query `status`")
        })?),
    };
    let subject = q.subject.as_deref().filter(|s| !s.is_empty());
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = s.db.list_notifications(status, subject, limit).await?;
    Ok(Json(json!({ "notifications": rows })))
}

/// `POST /api/v1/notifications/{id}/retry` (admin): a dead notification is due again now,
/// audited as `notification.retried`.
pub async fn retry(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin("retry notifications")?;
    if !s.db.retry_notification(id, &caller.person, s.now()).await? {
        return Err(ApiError::not_found(format!("dead notification {id}")));
    }
    Ok(Json(
        json!({ "notification": { "id": id, "status": NotificationStatus::Pending } }),
    ))
}
