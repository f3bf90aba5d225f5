//! `POST /api/v1/changes/{id}/rollouts` (start) and `GET /api/v1/changes/{id}/rollouts` (status).
//!
//! Start is the `start` row of the authority table (an author, the emergency's incident
//! commander, a `deploy_approvers` role holder of the category, or an integration token with the
//! `deployments` scope), the gate re-decided at now (a denial is a 422 `gate-denied` with the
//! gate's codes; nothing is stored), and the plan the change's category requires by the policy.
//! The request cannot choose a plan: exceptions name no plan today, so a body naming one is
//! refused (`plan-not-selectable`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use changegate_audit::{AuditEvent, kinds};
use changegate_gate::Event;
use changegate_gate::authority::{Actor, authorize};
use changegate_gate::ops::{ChangeOp, OpError};
use changegate_rollout::Guard;
use changegate_store::{NewRollout, RolloutStart};
use serde_json::{Value, json};

use super::{RolloutDoc, RolloutView, micros, phase, view};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::Caller;
use crate::token::Scope;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/changes/{id}/rollouts", post(start).get(list))
}

/// The body of a start: empty, or `{}`. A `plan` is refused.
fn check_body(body: &Bytes) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson, format!("the body is not JSON: {e}")).at("body")
    })?;
    let Some(obj) = v.as_object() else {
        return Err(
            ApiError::new(ErrorCode::InvalidBody, "the body must be a JSON object").at("body"),
        );
    };
    if obj.contains_key("plan") {
        return Err(ApiError::new(
            ErrorCode::PlanNotSelectable,
            "the plan is the one the change's category requires by the policy; a request cannot choose it (exceptions name no plan)",
        )
        .at("body `plan`"));
    }
    if let Some(k) = obj.keys().next() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("unknown field `{k}`: a rollout start takes no fields"),
        )
        .at(format!("body `{k}`")));
    }
    Ok(())
}

fn new_id(change: &str) -> String {
    let n = rand::RngCore::next_u32(&mut rand::rng());
    format!("{change}-r{n:08x}")
}

/// `POST /api/v1/changes/{id}/rollouts`.
pub async fn start(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    check_body(&body)?;
    if s.rollouts.is_none() {
        return Err(ApiError::new(
            ErrorCode::RolloutsNotConfigured,
            "this server runs no rollouts: start it with `serve --rollout-config FILE`",
        ));
    }
    // Integration tokens hold the start authority only with the `deployments` scope.
    let actor = Actor {
        person: caller.person.clone(),
        admin: caller.admin,
        integration: caller.has_scope(Scope::Deployments),
    };
    for _ in 0..16 {
        let (current, world) =
            s.db.change_and_world(&id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
        let now = s.now();
        let op = ChangeOp::Transition {
            event: Event::Start,
            by: Some(caller.person.clone()),
        };
        let authority = authorize(&s.policy, &current.value, &world, &actor, &op, now)
            .map_err(OpError::from)?;
        let decision = changegate_gate::decide(&s.policy, &current.value, &world, now);
        if !decision.allowed {
            return Err(ApiError::new(
                ErrorCode::GateDenied,
                format!(
                    "the gate denies deploying {id} now: {}; see GET /api/v1/changes/{id}/decision",
                    decision.denying_codes().join(", ")
                ),
            ));
        }
        let level = changegate_gate::approval::effective_level(&s.policy, &current.value);
        let plan = s
            .policy
            .category(level)
            .map(|(_, c)| c.rollout_plan.clone())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownCategory,
                    format!("the policy defines no category {level}"),
                )
            })?;
        let rt = s
            .rollouts
            .clone()
            .ok_or_else(|| ApiError::internal("rollouts vanished"))?;
        let spec =
            changegate_rollout::resolve(&s.policy, Some(&plan), Some(level), &rt.config.guard)
                .map_err(ApiError::internal)?;
        let mut next = current.value.clone();
        changegate_gate::ops::apply(&s.policy, &mut next, &world, &op, now)?;
        let rollout_id = new_id(&id);
        let doc = RolloutDoc {
            guard: Guard::new(spec.clone()).snapshot(),
            last_codes: Vec::new(),
            steps: Vec::new(),
            held: None,
            holds: 0,
            verification: None,
            rollback: None,
            last_reasons: Value::Array(Vec::new()),
            last_triggers: Value::Array(Vec::new()),
            evaluations: 0,
        };
        let doc_text = serde_json::to_string(&doc).map_err(ApiError::internal)?;
        let event = AuditEvent::new(kinds::DEPLOYMENT_START, &caller.person)
            .change(&id)
            .category(level.to_string())
            .what("commit-sha", next.change.head_commit.clone())
            .who("deployer", caller.person.clone())
            .outcome("result", "allowed")
            .details(json!({
                "op": op, "status": next.status, "token": caller.token_id,
                "authority": authority, "decision": decision,
                "rollout": {"id": rollout_id, "plan": plan, "category": level, "spec": spec},
            }));
        let new = NewRollout {
            id: &rollout_id,
            change_id: &id,
            plan: &plan,
            category: i64::from(level),
            phase: phase::RUNNING,
            state: &doc_text,
            due_at: micros(now),
            started_by: &caller.person,
        };
        match s
            .db
            .start_rollout(new, current.version, &next, super::tidy(event))
            .await?
        {
            RolloutStart::Started(row) => return Ok((StatusCode::CREATED, Json(view(&row)))),
            RolloutStart::ChangeMoved => continue,
            RolloutStart::AlreadyActive => {
                return Err(ApiError::new(
                    ErrorCode::RolloutActive,
                    format!("change {id} already has an active rollout"),
                ));
            }
        }
    }
    Err(ApiError::new(
        ErrorCode::ConcurrentUpdate,
        format!("change {id} is being changed concurrently; try again"),
    ))
}

/// `GET /api/v1/changes/{id}/rollouts`: every rollout of the change, oldest first.
pub async fn list(
    State(s): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if s.db.change(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("change {id}")));
    }
    let rows = s.db.change_rollouts(&id).await?;
    let views: Vec<RolloutView> = rows.iter().map(view).collect();
    Ok(Json(json!({"change": id, "rollouts": views})))
}
