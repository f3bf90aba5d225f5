//! `POST /api/v1/changes/{id}/rollouts` (start) and `GET /api/v1/changes/{id}/rollouts` (status).
//!
//! Start is the `start` row of the authority table (an author, the emergency's incident
//! commander, a `deploy_approvers` role holder of the category, or an integration token with the
//! `deployments` scope), the gate re-decided at now (a denial is a 422 `gate-denied` with the
//! gate's codes; nothing is stored), and the plan the change's category requires by the policy.
//! The request cannot choose a plan freely: `{"plan": "NAME"}` is accepted only when the change
//! carries an approved exception that selected that plan (its reason lists it under
//! `[exceptions.reasons.*] plans`); otherwise it is refused (`plan-not-selectable`).

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

/// The body of a start: empty, `{}`, or `{"plan": "NAME"}` (checked against the change's
/// approved exception by [`plan_of`]).
fn check_body(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson, format!("the body is not JSON: {e}")).at("body")
    })?;
    let Some(obj) = v.as_object() else {
        return Err(
            ApiError::new(ErrorCode::InvalidBody, "the body must be a JSON object").at("body"),
        );
    };
    if let Some(k) = obj.keys().find(|k| *k != "plan") {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("unknown field `{k}`: a rollout start takes only `plan`"),
        )
        .at(format!("body `{k}`")));
    }
    match obj.get("plan") {
        None => Ok(None),
        Some(Value::String(p)) => Ok(Some(p.clone())),
        Some(_) => {
            Err(ApiError::new(ErrorCode::InvalidBody, "`plan` must be a string").at("body `plan`"))
        }
    }
}

/// The plan of this start: the category's, or the one an approved exception selected. A plan
/// named by the request that no approved exception selected is refused.
fn plan_of(
    s: &AppState,
    state: &changegate_gate::ChangeState,
    world: &changegate_gate::WorldState,
    level: changegate_policy::Level,
    category_plan: String,
    requested: Option<&str>,
) -> Result<String, ApiError> {
    let Some(want) = requested else {
        return Ok(category_plan);
    };
    if want == category_plan {
        return Ok(category_plan);
    }
    let refuse = |why: String| {
        Err(ApiError::new(
            ErrorCode::PlanNotSelectable,
            format!(
                "the plan is `{category_plan}`, the one category {level} requires; `{want}` {why}"
            ),
        )
        .at("body `plan`"))
    };
    let Some(ex) = &state.exception else {
        return refuse("needs an approved exception that selects it".into());
    };
    if ex.plan.as_deref() != Some(want) {
        return refuse(format!(
            "is not the plan the change's exception selected ({})",
            ex.plan.as_deref().unwrap_or("none")
        ));
    }
    match changegate_gate::window::exception_grant(&s.policy, state, world, level) {
        Ok(Some(_)) => Ok(want.to_string()),
        Ok(None) => refuse("needs an approved exception that selects it".into()),
        Err(problems) => refuse(format!(
            "was selected by an exception that is not approved: {}",
            problems.join("; ")
        )),
    }
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
    let requested = check_body(&body)?;
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
        let category_plan = s
            .policy
            .category(level)
            .map(|(_, c)| c.rollout_plan.clone())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownCategory,
                    format!("the policy defines no category {level}"),
                )
            })?;
        let plan = plan_of(
            &s,
            &current.value,
            &world,
            level,
            category_plan,
            requested.as_deref(),
        )?;
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
            started: Some(now),
        };
        let doc_text = serde_json::to_string(&doc).map_err(ApiError::internal)?;
        let head = next.change.head_commit.clone();
        // What is deployed, observed by the server: the artifact its configuration builds from
        // the commit, and the paths git lists for base..head when it can read the repository.
        let files = super::super::observe::changed_files(
            &s,
            &next.change.repository,
            &next.change.base_commit,
            &head,
        )
        .await;
        let environment = spec
            .plan
            .steps
            .first()
            .map(|st| st.environment.clone())
            .unwrap_or_default();
        let mut event = AuditEvent::new(kinds::DEPLOYMENT_START, &caller.person)
            .change(&id)
            .category(level.to_string())
            .what("commit-sha", head.clone())
            .what("artifact-version", super::observed::artifact(&rt, &head))
            .who("deployer", caller.person.clone())
            .who(
                "approvers",
                Value::Array(
                    current
                        .value
                        .approvals
                        .iter()
                        .map(|a| json!({"person": a.person, "role": a.role, "at": a.at}))
                        .collect(),
                ),
            )
            .when("deployed-at-utc", now.to_string())
            .outcome("result", "allowed");
        if let Some(f) = files {
            event = event.what("changed-files", crate::observe::files_value(&f));
        }
        let event = super::observed::with_why(event, &next).details(json!({
                "environment": environment,
                "op": op, "status": next.status, "token": caller.token_id,
                "authority": authority, "decision": decision,
                "rollout": {
                    "id": rollout_id, "plan": plan, "category": level, "spec": spec,
                    "plan_selected_by": if requested.as_deref() == Some(plan.as_str())
                        && current.value.exception.as_ref().and_then(|e| e.plan.as_deref()) == Some(plan.as_str())
                    { "exception" } else { "category" },
                },
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
