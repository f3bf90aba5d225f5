//! changegate as the policy gate of the progressive-delivery engines people already run
//! (docs/api.md, "Engine gates"; ADR 0018):
//!
//! - **Flagger** calls its gate webhooks with `POST {"name", "namespace", "phase", "checksum",
//!   "metadata": {…}}` and reads only the status: 2xx = go, anything else = hold (Flagger retries
//!   on its analysis interval). `confirm-rollout` answers the gate's decision for "deploy now";
//!   `confirm-promotion` the same and no rollback request pending; `rollback` answers 200 (roll
//!   back now) once a manual rollback request of the change has its authority complete. The change
//!   is `metadata.changegate_change` (required; a checksum does not name a change). Flagger's
//!   webhooks cannot send headers, so the integration token may also be
//!   `metadata.changegate_token`.
//! - **Argo Rollouts**: a `web` metric provider reads `GET /api/v1/gates/argo/changes/{id}` and
//!   evaluates `successCondition: result.allowed == true` (and `failureCondition:
//!   result.rollback == true`); the answer is always 200 with the JSON decision.
//!
//! Both need an integration token with the `deployments` scope (or an admin token). They read;
//! nothing is stored (the decision is reproducible from the stored state and the time).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::routing::{get, post};
use axum::{Json, Router};
use changegate_gate::rollback::RequestStatus;
use changegate_gate::{ChangeState, Status, WorldState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, JsonBody};
use crate::token::Scope;

changegate_codes::codes! {
    /// Reasons of an engine gate's answer (Flagger webhooks, the Argo Rollouts decision).
    pub enum EngineCode in "engine-gate" {
        /// The gate allows deploying the change now.
        GateAllows = "gate-allows",
        /// The gate denies deploying the change now; the denying decision codes follow.
        GateDenies = "gate-denies",
        /// A manual rollback request of the change is pending: hold the promotion.
        RollbackPending = "rollback-pending",
        /// A manual rollback of the change has its authority complete (or ran): roll back.
        RollbackAuthorised = "rollback-authorised",
        /// No manual rollback of the change is authorised: do not roll back on changegate's account.
        RollbackNotAuthorised = "rollback-not-authorised",
    }
}

/// `POST /api/v1/gates/flagger/{hook}`, `GET /api/v1/gates/argo/changes/{id}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/gates/flagger/confirm-rollout",
            post(confirm_rollout),
        )
        .route(
            "/api/v1/gates/flagger/confirm-promotion",
            post(confirm_promotion),
        )
        .route("/api/v1/gates/flagger/rollback", post(flagger_rollback))
        .route("/api/v1/gates/argo/changes/{id}", get(argo))
}

/// The body Flagger posts to a gate webhook.
#[derive(Debug, Deserialize)]
pub struct FlaggerHook {
    /// Canary name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Canary phase (`Progressing`, `Waiting`, `Promoting`, …).
    #[serde(default)]
    pub phase: Option<String>,
    /// Checksum of the canary's spec.
    #[serde(default)]
    pub checksum: Option<String>,
    /// The webhook's metadata (`changegate_change`, optionally `changegate_token`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// One reason of an engine answer.
#[derive(Debug, Clone, Serialize)]
pub struct EngineReason {
    /// Code (an engine code or a gate decision code).
    pub code: String,
    /// For people.
    pub message: String,
}

/// An engine gate's answer.
#[derive(Debug, Clone, Serialize)]
pub struct EngineAnswer {
    /// Go (Flagger: 200) or hold (403).
    pub allowed: bool,
    /// A rollback is authorised (Argo: `failureCondition: result.rollback == true`).
    pub rollback: bool,
    /// The change.
    pub change: String,
    /// Its status.
    pub status: Status,
    /// Why.
    pub reasons: Vec<EngineReason>,
}

fn reason(code: &str, message: impl Into<String>) -> EngineReason {
    EngineReason {
        code: code.to_string(),
        message: message.into(),
    }
}

/// The caller of a token given as text (the `Authorization` header or Flagger's metadata):
/// the same checks as the extractor — secret, revocation, expiry.
async fn authenticate(s: &AppState, token: &str) -> Result<Caller, ApiError> {
    let (id, secret) = crate::token::parse(token).ok_or_else(ApiError::unauthorized)?;
    let row = s.db.token(id).await?.ok_or_else(ApiError::unauthorized)?;
    if !crate::token::verify(secret, &row.digest) {
        return Err(ApiError::unauthorized());
    }
    if row.revoked {
        return Err(ApiError::new(
            ErrorCode::TokenRevoked,
            format!("API token {id} was revoked"),
        ));
    }
    if let Some(expiry) = row.expires_at
        && s.now() >= expiry
    {
        return Err(ApiError::new(
            ErrorCode::TokenExpired,
            format!("API token {id} expired at {expiry}"),
        ));
    }
    Ok(Caller::from_row(id, row))
}

/// The token of the request: `Authorization: Bearer …`, else `metadata.changegate_token`.
async fn flagger_caller(
    s: &AppState,
    headers: &HeaderMap,
    hook: &FlaggerHook,
) -> Result<Caller, ApiError> {
    let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = match header {
        Some(h) => {
            let (scheme, rest) = h
                .trim_start()
                .split_once(char::is_whitespace)
                .ok_or_else(ApiError::unauthorized)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(ApiError::unauthorized());
            }
            rest.trim().to_string()
        }
        None => hook
            .metadata
            .get("changegate_token")
            .cloned()
            .ok_or_else(ApiError::unauthorized)?,
    };
    let caller = authenticate(s, &token).await?;
    caller.require_scope(Scope::Deployments, "an engine gate")?;
    Ok(caller)
}

async fn load(s: &AppState, id: &str) -> Result<(ChangeState, WorldState), ApiError> {
    let (c, w) =
        s.db.change_and_world(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
    Ok((c.value, w))
}

/// Which engine question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    ConfirmRollout,
    ConfirmPromotion,
    Rollback,
}

/// The answer for `hook` on `state` now.
fn decide(s: &AppState, state: &ChangeState, world: &WorldState, hook: Hook) -> EngineAnswer {
    let now = s.now();
    let id = state.change.id.clone();
    let pending = state
        .rollback
        .requests
        .iter()
        .find(|r| r.status == RequestStatus::Pending);
    let authorised = state
        .rollback
        .requests
        .iter()
        .find(|r| matches!(r.status, RequestStatus::Executing | RequestStatus::Done));
    let rollback = authorised.is_some() || state.status == Status::RolledBack;
    let mut reasons = Vec::new();
    let allowed = match hook {
        Hook::Rollback => {
            match authorised {
                Some(r) => reasons.push(reason(
                    EngineCode::RollbackAuthorised.as_str(),
                    format!(
                        "rollback {} of {id} is authorised by {}",
                        r.id,
                        r.granted_by.clone().unwrap_or_default().join(" + ")
                    ),
                )),
                None if state.status == Status::RolledBack => reasons.push(reason(
                    EngineCode::RollbackAuthorised.as_str(),
                    format!("{id} is rolled back"),
                )),
                None => reasons.push(reason(
                    EngineCode::RollbackNotAuthorised.as_str(),
                    format!("no manual rollback of {id} is authorised"),
                )),
            }
            rollback
        }
        Hook::ConfirmRollout | Hook::ConfirmPromotion => {
            let d = changegate_gate::decide(&s.policy, state, world, now);
            if d.allowed {
                reasons.push(reason(
                    EngineCode::GateAllows.as_str(),
                    format!("the gate allows deploying {id} now"),
                ));
            } else {
                reasons.push(reason(
                    EngineCode::GateDenies.as_str(),
                    format!("the gate denies deploying {id} now"),
                ));
                for r in d.reasons.iter().filter(|r| r.denies) {
                    reasons.push(reason(r.code.as_str(), r.message.clone()));
                }
            }
            let mut ok = d.allowed && !rollback;
            if hook == Hook::ConfirmPromotion
                && let Some(p) = pending
            {
                ok = false;
                reasons.push(reason(
                    EngineCode::RollbackPending.as_str(),
                    format!("rollback request {} of {id} is pending: {}", p.id, p.reason),
                ));
            }
            if rollback {
                reasons.push(reason(
                    EngineCode::RollbackAuthorised.as_str(),
                    format!("a rollback of {id} is authorised: no promotion"),
                ));
            }
            ok
        }
    };
    EngineAnswer {
        allowed,
        rollback,
        change: id,
        status: state.status,
        reasons,
    }
}

async fn flagger(
    s: AppState,
    headers: HeaderMap,
    hook: FlaggerHook,
    which: Hook,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    flagger_caller(&s, &headers, &hook).await?;
    let id = hook.metadata.get("changegate_change").ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidBody,
            "name the change in the webhook's metadata: `changegate_change: <change id>`",
        )
        .at("body `metadata.changegate_change`")
    })?;
    let (state, world) = load(&s, id).await?;
    let a = decide(&s, &state, &world, which);
    let status = if a.allowed {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    let mut body = serde_json::to_value(&a).map_err(ApiError::internal)?;
    body["canary"] = json!({"name": hook.name, "namespace": hook.namespace, "phase": hook.phase, "checksum": hook.checksum});
    Ok((status, Json(body)))
}

/// `POST /api/v1/gates/flagger/confirm-rollout`: 200 when the gate allows deploying now.
pub async fn confirm_rollout(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(hook): JsonBody<FlaggerHook>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    flagger(s, headers, hook, Hook::ConfirmRollout).await
}

/// `POST /api/v1/gates/flagger/confirm-promotion`: 200 when the gate allows and no rollback is
/// pending.
pub async fn confirm_promotion(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(hook): JsonBody<FlaggerHook>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    flagger(s, headers, hook, Hook::ConfirmPromotion).await
}

/// `POST /api/v1/gates/flagger/rollback`: 200 (roll back) when a manual rollback is authorised.
pub async fn flagger_rollback(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(hook): JsonBody<FlaggerHook>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    flagger(s, headers, hook, Hook::Rollback).await
}

/// `GET /api/v1/gates/argo/changes/{id}`: the decision an Argo Rollouts `web` metric evaluates.
pub async fn argo(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EngineAnswer>, ApiError> {
    caller.require_scope(Scope::Deployments, "an engine gate")?;
    let (state, world) = load(&s, &id).await?;
    Ok(Json(decide(&s, &state, &world, Hook::ConfirmPromotion)))
}
