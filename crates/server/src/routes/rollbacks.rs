//! Manual rollbacks through the server (docs/api.md, "Rollbacks"; ADR 0018): a rollback request
//! is opened with a reason, collects approvals in roles the callers hold until one set of the
//! category's rollback authority is covered (`changegate_gate::rollback`), and then the server runs
//! the configured rollback action — once — and marks the change rolled back. Also the post-mortem
//! of a manual rollback, the staging rollback tests of high-risk changes, and the duties of a
//! category-3 deploy.
//!
//! Exactly once: the write that records the completing approval also claims the request
//! (`executing`) by compare-and-swap on the change's version, on SQLite and PostgreSQL alike; a
//! racing approval loses the swap, re-reads, and finds the request no longer pending. Only the
//! claimer calls [`execute`] and then records the result ([`RollbackOp::Finish`]).
//!
//! [`execute`] is the one place that performs a rollback: the lead rewires it to
//! `rollouts::rollback_active(...)` when a server-run rollout of the change is active.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use changegate_audit::{AuditEvent, kinds};
use changegate_gate::ChangeState;
use changegate_gate::authority::{Authorized, Refusal};
use changegate_gate::ops::OpError;
use changegate_gate::rollback::{
    self, Applied, Execution, RequestStatus, RollbackCode, RollbackError, RollbackKind, RollbackOp,
    RollbackRequest,
};
use changegate_policy::Dur;
use changegate_rollout::action::{Action, ActionVars};
use serde::Deserialize;
use serde_json::{Value, json};

use super::MAX_RETRIES;
use super::approvals::actor;
use crate::AppState;
use crate::db::Versioned;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Caller, JsonBody};

/// The rollback actions the server runs (`serve --rollback-action`, `--database-rollback-action`).
#[derive(Debug, Clone, Default)]
pub struct RollbackActions {
    /// Application rollbacks (`kubectl rollout undo …`, or a deploy system's webhook).
    pub application: Option<Action>,
    /// Database rollbacks; without it the policy's `[rollback.database] command` runs.
    pub database: Option<Action>,
}

impl RollbackActions {
    /// The action for `kind` under `policy`.
    pub fn for_kind(
        &self,
        policy: &changegate_policy::Policy,
        kind: RollbackKind,
    ) -> Option<Action> {
        match kind {
            RollbackKind::Application => self.application.clone(),
            RollbackKind::Database => self.database.clone().or_else(|| {
                policy
                    .rollback
                    .database
                    .command
                    .as_deref()
                    .map(Action::parse)
            }),
        }
    }
}

/// `POST|GET /api/v1/changes/{id}/rollbacks`, `GET …/rollbacks/{rid}`,
/// `POST …/rollbacks/{rid}/approvals`, `POST …/rollbacks/{rid}/post-mortem`,
/// `POST /api/v1/changes/{id}/rollback-tests`, `POST /api/v1/changes/{id}/duties/{duty}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/changes/{id}/rollbacks", get(list).post(open))
        .route("/api/v1/changes/{id}/rollbacks/{rid}", get(show))
        .route(
            "/api/v1/changes/{id}/rollbacks/{rid}/approvals",
            post(approve),
        )
        .route(
            "/api/v1/changes/{id}/rollbacks/{rid}/post-mortem",
            post(post_mortem),
        )
        .route("/api/v1/changes/{id}/rollback-tests", post(record_test))
        .route("/api/v1/changes/{id}/duties/{duty}", post(record_duty))
}

/// An error of these routes: the API's, or a refused rollback command (its own codes).
#[derive(Debug)]
pub enum RbError {
    /// Any API error (authority refusals are 403 with the table row's code).
    Api(ApiError),
    /// A rollback rule refused the command.
    Rule(RollbackError),
}

impl From<ApiError> for RbError {
    fn from(e: ApiError) -> Self {
        RbError::Api(e)
    }
}

impl From<RollbackError> for RbError {
    fn from(e: RollbackError) -> Self {
        RbError::Rule(e)
    }
}

impl From<Refusal> for RbError {
    fn from(e: Refusal) -> Self {
        RbError::Api(ApiError::Op(OpError::from(e)))
    }
}

impl From<changegate_store::StoreError> for RbError {
    fn from(e: changegate_store::StoreError) -> Self {
        RbError::Api(e.into())
    }
}

/// The HTTP status of a rollback rule's refusal.
pub fn status(code: RollbackCode) -> StatusCode {
    use RollbackCode as C;
    match code {
        C::RollbackUnknown | C::DutyUnknown => StatusCode::NOT_FOUND,
        C::RollbackRoleNotHeld | C::RollbackApprovalDuplicate => StatusCode::FORBIDDEN,
        C::RollbackStateInvalid
        | C::RollbackAlreadyOpen
        | C::RollbackNotPending
        | C::RollbackActionNotConfigured
        | C::PostMortemNotDue
        | C::DutyDone => StatusCode::CONFLICT,
        C::RollbackRoleNotNeeded
        | C::RollbackReasonRequired
        | C::RollbackDowntimeRequired
        | C::RollbackDowntimeExceeded
        | C::PostMortemIncomplete
        | C::RollbackTestInvalid => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl IntoResponse for RbError {
    fn into_response(self) -> Response {
        match self {
            RbError::Api(e) => e.into_response(),
            RbError::Rule(e) => (
                status(e.code),
                Json(ErrorBody {
                    code: e.code.as_str().to_string(),
                    message: e.message,
                    location: e.location,
                }),
            )
                .into_response(),
        }
    }
}

/// A rollback request as the API answers it: the request, what it still needs, and the change's
/// status.
fn request_view(
    s: &AppState,
    state: &ChangeState,
    world: &changegate_gate::WorldState,
    r: &RollbackRequest,
    version: i64,
) -> Value {
    let missing = if r.status == RequestStatus::Pending {
        rollback::still_missing(&s.policy, world, state, r, s.now())
    } else {
        Vec::new()
    };
    json!({
        "change": state.change.id,
        "change_status": state.status,
        "version": version,
        "request": r,
        "missing": missing,
    })
}

/// The audit event of a rollback command.
fn event(
    caller: &Caller,
    state: &ChangeState,
    op: &RollbackOp,
    authority: &Authorized,
    applied: &Applied,
) -> AuditEvent {
    let kind = match op {
        RollbackOp::Open { .. } => "rollback.requested",
        RollbackOp::Approve { .. } => "rollback.approved",
        RollbackOp::Finish { .. } => kinds::ROLLBACK,
        RollbackOp::PostMortem { .. } => "rollback.post-mortem",
        RollbackOp::RecordTest { .. } => "rollback.tested",
        RollbackOp::RecordDuty { .. } => "duty.recorded",
    };
    let c = &state.change;
    let request = applied
        .request
        .as_deref()
        .and_then(|id| state.rollback.request(id));
    let approvers: Vec<Value> = request
        .map(|r| {
            r.approvals
                .iter()
                .map(|a| json!({"person": a.person, "role": a.role}))
                .collect()
        })
        .unwrap_or_default();
    let mut e = AuditEvent::new(kind, &caller.person)
        .change(&c.id)
        .category(c.classification.category.to_string())
        .what("commit-sha", c.head_commit.clone())
        .who("approvers", Value::Array(approvers));
    if let (RollbackOp::Finish { execution, .. }, Some(r)) = (op, request) {
        e = e
            .when("duration", execution.seconds)
            .outcome(
                "result",
                if execution.ok {
                    "rolled-back"
                } else {
                    "rollback-failed"
                },
            )
            .who(
                "deployer",
                r.executor.clone().unwrap_or_else(|| caller.person.clone()),
            );
    }
    e.details(json!({
        "op": op,
        "request": request,
        "claimed": applied.claimed,
        "status": state.status,
        "token": caller.token_id,
        "authority": authority,
    }))
}

/// Authorise, load, apply, compare-and-swap; retry on a lost race (the command is re-checked
/// against the fresh state, so a racing approval finds the request claimed).
async fn write(
    s: &AppState,
    caller: &Caller,
    id: &str,
    op: &RollbackOp,
) -> Result<(Versioned<ChangeState>, changegate_gate::WorldState, Applied), RbError> {
    let actor = actor(caller);
    for _ in 0..MAX_RETRIES {
        let (current, world) =
            s.db.change_and_world(id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
        let now = s.now();
        let authority = rollback::authorize(&s.policy, &current.value, &world, &actor, op, now)?;
        let mut next = current.value.clone();
        let applied = rollback::apply(&s.policy, &mut next, &world, &actor, op, now)?;
        let ev = event(caller, &next, op, &authority, &applied);
        if let Some(stored) = s.db.update_change(id, current.version, &next, ev).await? {
            return Ok((stored, world, applied));
        }
    }
    Err(ApiError::new(
        ErrorCode::ConcurrentUpdate,
        format!("change {id} is being changed concurrently; try again"),
    )
    .into())
}

/// Perform the rollback of `request` on `change`: run the configured action (command or
/// webhook) and measure it. The one seam to the deployment machinery: after the merge with
/// server-run rollouts, an active rollout of the change is rolled back through
/// `rollouts::rollback_active(...)` here instead.
pub async fn execute(s: &AppState, change: &ChangeState, request: &RollbackRequest) -> Execution {
    let policy = &s.policy;
    let started = s.now();
    let Some(action) = s.rollback.for_kind(policy, request.kind) else {
        return Execution {
            ran: String::new(),
            ok: false,
            detail: "no rollback action is configured for this kind".into(),
            started,
            seconds: 0.0,
            within_limit: false,
        };
    };
    let level = changegate_gate::approval::effective_level(policy, change);
    let plan = policy
        .category(level)
        .map(|(_, c)| c.rollout_plan.clone())
        .unwrap_or_default();
    let mut reasons = vec![format!("manual-rollback: {}", request.reason)];
    reasons.extend(
        request
            .approvals
            .iter()
            .map(|a| format!("approved-by: {} as {}", a.person, a.role)),
    );
    let vars = ActionVars {
        action: match request.kind {
            RollbackKind::Application => "rollback".into(),
            RollbackKind::Database => "database-rollback".into(),
        },
        weight: 0,
        step: 0,
        environment: "production".into(),
        plan,
        change: change.change.id.clone(),
        reasons,
    };
    let limit = match (&request.kind, &request.downtime) {
        (RollbackKind::Database, Some(d)) => d.get(),
        (RollbackKind::Database, None) => policy.rollback.database.max_downtime.get(),
        (RollbackKind::Application, _) => policy.rollback.deadline.get(),
    };
    // A hard stop well past the limit: the limit is measured and recorded, not enforced by
    // killing a rollback half-way.
    let hard = Duration::from_secs_f64(
        (limit.as_secs_f64() * 4.0).max(policy.rollback.database.max_downtime.get().as_secs_f64()),
    );
    let r = action.run(&vars, hard, false).await;
    Execution {
        within_limit: r.ok && r.seconds <= limit.as_secs_f64(),
        ran: r.ran,
        ok: r.ok,
        detail: r.detail,
        started,
        seconds: r.seconds,
    }
}

/// After a claim: run the action and record its result (retrying the write on a lost race).
async fn run_claimed(
    s: &AppState,
    caller: &Caller,
    id: &str,
    stored: Versioned<ChangeState>,
    request: &str,
) -> Result<(Versioned<ChangeState>, changegate_gate::WorldState), RbError> {
    let Some(r) = stored.value.rollback.request(request).cloned() else {
        return Err(ApiError::internal(format!("claimed request {request} vanished")).into());
    };
    let execution = execute(s, &stored.value, &r).await;
    let op = RollbackOp::Finish {
        request: request.to_string(),
        execution,
    };
    let (v, w, _) = write(s, caller, id, &op).await?;
    Ok((v, w))
}

/// Body of `POST /api/v1/changes/{id}/rollbacks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenBody {
    /// Why.
    pub reason: String,
    /// `application` (default) or `database`.
    #[serde(default)]
    pub kind: RollbackKind,
    /// Database rollbacks: the downtime estimate (`3m`).
    #[serde(default)]
    pub downtime: Option<String>,
    /// Approve in this role as well (default: the first missing role the caller holds).
    #[serde(default)]
    pub role: Option<String>,
}

fn parse_downtime(d: Option<&str>) -> Result<Option<Dur>, RbError> {
    d.map(|d| {
        d.parse::<Dur>().map_err(|e| {
            RbError::Api(ApiError::new(ErrorCode::InvalidBody, e).at("body `downtime`"))
        })
    })
    .transpose()
}

fn known_role(s: &AppState, role: &Option<String>) -> Result<(), RbError> {
    match role {
        Some(r) if !s.policy.roles.contains_key(r) => Err(ApiError::new(
            ErrorCode::UnknownRole,
            format!("unknown role `{r}`"),
        )
        .at("body `role`")
        .into()),
        _ => Ok(()),
    }
}

/// Answer a written request (and run its action when this write claimed it).
async fn answer(
    s: &AppState,
    caller: &Caller,
    id: &str,
    stored: Versioned<ChangeState>,
    world: changegate_gate::WorldState,
    applied: Applied,
) -> Result<Json<Value>, RbError> {
    let rid = applied.request.clone().unwrap_or_default();
    let (stored, world) = if applied.claimed {
        run_claimed(s, caller, id, stored, &rid).await?
    } else {
        (stored, world)
    };
    let r = stored
        .value
        .rollback
        .request(&rid)
        .ok_or_else(|| ApiError::internal("request missing after write"))?;
    Ok(Json(request_view(
        s,
        &stored.value,
        &world,
        r,
        stored.version,
    )))
}

/// `POST /api/v1/changes/{id}/rollbacks`: open a rollback request.
pub async fn open(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<OpenBody>,
) -> Result<(StatusCode, Json<Value>), RbError> {
    known_role(&s, &b.role)?;
    let downtime = parse_downtime(b.downtime.as_deref())?;
    if s.rollback.for_kind(&s.policy, b.kind).is_none() {
        return Err(RollbackError {
            code: RollbackCode::RollbackActionNotConfigured,
            message: format!(
                "this server has no {} rollback action configured (serve --rollback-action / --database-rollback-action, or [rollback.database] command)",
                b.kind.as_str()
            ),
            location: Some("body `kind`".into()),
        }
        .into());
    }
    let op = RollbackOp::Open {
        kind: b.kind,
        reason: b.reason,
        downtime,
        by: caller.person.clone(),
        role: b.role,
    };
    let (stored, world, applied) = write(&s, &caller, &id, &op).await?;
    let body = answer(&s, &caller, &id, stored, world, applied).await?;
    Ok((StatusCode::CREATED, body))
}

/// Body of `POST …/rollbacks/{rid}/approvals`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The role approved in (default: the first missing role the caller holds).
    #[serde(default)]
    pub role: Option<String>,
}

/// `POST /api/v1/changes/{id}/rollbacks/{rid}/approvals`.
pub async fn approve(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, rid)): Path<(String, String)>,
    JsonBody(b): JsonBody<ApproveBody>,
) -> Result<Json<Value>, RbError> {
    known_role(&s, &b.role)?;
    let op = RollbackOp::Approve {
        request: rid,
        by: caller.person.clone(),
        role: b.role,
    };
    let (stored, world, applied) = write(&s, &caller, &id, &op).await?;
    answer(&s, &caller, &id, stored, world, applied).await
}

/// `GET /api/v1/changes/{id}/rollbacks`: every request of the change.
pub async fn list(
    State(s): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, RbError> {
    let (c, world) =
        s.db.change_and_world(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
    let requests: Vec<Value> = c
        .value
        .rollback
        .requests
        .iter()
        .map(|r| request_view(&s, &c.value, &world, r, c.version))
        .collect();
    Ok(Json(json!({
        "change": id, "status": c.value.status, "rollbacks": requests,
        "tests": c.value.rollback.tests, "duties": c.value.duties,
    })))
}

/// `GET /api/v1/changes/{id}/rollbacks/{rid}`.
pub async fn show(
    State(s): State<AppState>,
    _caller: Caller,
    Path((id, rid)): Path<(String, String)>,
) -> Result<Json<Value>, RbError> {
    let (c, world) =
        s.db.change_and_world(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
    let r = c
        .value
        .rollback
        .request(&rid)
        .ok_or_else(|| RollbackError {
            code: RollbackCode::RollbackUnknown,
            message: format!("no rollback request {rid}"),
            location: Some("path `rid`".into()),
        })?;
    Ok(Json(request_view(&s, &c.value, &world, r, c.version)))
}

/// Body of `POST …/rollbacks/{rid}/post-mortem`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMortemBody {
    /// Answers to `[reports.retrospective] questions`, in order.
    pub answers: Vec<String>,
    /// Link to the document.
    #[serde(default)]
    pub link: Option<String>,
}

/// `POST /api/v1/changes/{id}/rollbacks/{rid}/post-mortem`.
pub async fn post_mortem(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, rid)): Path<(String, String)>,
    JsonBody(b): JsonBody<PostMortemBody>,
) -> Result<(StatusCode, Json<Value>), RbError> {
    let op = RollbackOp::PostMortem {
        request: rid,
        by: caller.person.clone(),
        answers: b.answers,
        link: b.link,
    };
    let (stored, world, applied) = write(&s, &caller, &id, &op).await?;
    let body = answer(&s, &caller, &id, stored, world, applied).await?;
    Ok((StatusCode::CREATED, body))
}

/// Body of `POST /api/v1/changes/{id}/rollback-tests`: a staging rollback test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    /// Where it ran (`staging`).
    pub environment: String,
    /// How long the rollback took (`4m 30s`), or…
    #[serde(default)]
    pub duration: Option<String>,
    /// …in seconds.
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    /// `ok` or `failed`: the application's health after the rollback.
    pub health: String,
    /// Evidence link.
    #[serde(default)]
    pub evidence: Option<String>,
}

/// `POST /api/v1/changes/{id}/rollback-tests`.
pub async fn record_test(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<TestBody>,
) -> Result<(StatusCode, Json<Value>), RbError> {
    let bad = |m: String, at: &str| RbError::Api(ApiError::new(ErrorCode::InvalidBody, m).at(at));
    let duration: Dur = match (b.duration.as_deref(), b.duration_seconds) {
        (Some(d), None) => d.parse().map_err(|e| bad(e, "body `duration`"))?,
        (None, Some(secs)) if (0.0..1e9).contains(&secs) => {
            format!("{}ms", (secs * 1000.0).round() as i64)
                .parse()
                .map_err(|e| bad(e, "body `duration_seconds`"))?
        }
        (None, Some(_)) => {
            return Err(bad(
                "`duration_seconds` must be a non-negative number".into(),
                "body `duration_seconds`",
            ));
        }
        _ => {
            return Err(bad(
                "give the measured rollback duration: `duration` (\"4m 30s\") or `duration_seconds`, not both".into(),
                "body `duration`",
            ));
        }
    };
    let health_ok = match b.health.as_str() {
        "ok" => true,
        "failed" => false,
        other => {
            return Err(bad(
                format!("`health` is `ok` or `failed`, not `{other}`"),
                "body `health`",
            ));
        }
    };
    let op = RollbackOp::RecordTest {
        by: caller.person.clone(),
        environment: b.environment,
        duration,
        health_ok,
        evidence: b.evidence,
    };
    let (stored, _, _) = write(&s, &caller, &id, &op).await?;
    let reason = rollback::testing_reason(
        &s.policy,
        &stored.value,
        changegate_gate::approval::effective_level(&s.policy, &stored.value),
        rollback::ROLLBACK_PLAN_EVIDENCE,
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "change": id, "version": stored.version,
            "tests": stored.value.rollback.tests, "checklist": reason,
        })),
    ))
}

/// Body of `POST /api/v1/changes/{id}/duties/{duty}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyBody {
    /// The standby report or the status update.
    pub note: String,
}

/// `POST /api/v1/changes/{id}/duties/{duty}`: record a duty as done.
pub async fn record_duty(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, duty)): Path<(String, String)>,
    JsonBody(b): JsonBody<DutyBody>,
) -> Result<(StatusCode, Json<Value>), RbError> {
    let op = RollbackOp::RecordDuty {
        duty,
        by: caller.person.clone(),
        note: b.note,
    };
    let (stored, _, _) = write(&s, &caller, &id, &op).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"change": id, "version": stored.version, "duties": stored.value.duties})),
    ))
}
