//! Liveness of the process and of the database, and the OpenAPI document (no token needed).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// `/api/v1/health`, `/api/v1/health/database`, `/api/v1/openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/health/database", get(health_database))
        .route("/api/v1/openapi.json", get(openapi))
}

/// `GET /api/v1/health`: the process answers.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /api/v1/health/database`: the database answers.
pub async fn health_database(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    s.db.ping().await.map_err(|_| ApiError::unavailable())?;
    Ok(Json(json!({ "status": "ok", "backend": s.db.backend() })))
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::OPENAPI,
    )
}
