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
//! [`execute`] performs a rollback with the configured action; an application rollback of a
//! change whose server-run rollout is active goes through the rollout instead
//! (`rollouts::rollback_active`, which records the `roll-back` transition itself).

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
        // Through a server-run rollout, the rollout's own event is the `rollback.triggered`
        // (one per rollback, as reports count them); the request's result is `rollback.finished`.
        RollbackOp::Finish { execution, .. } if execution.rollout.is_some() => "rollback.finished",
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
/// webhook) and measure it. A change with an active server-run rollout is rolled back through
/// the rollout instead ([`through_rollout`]).
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
            rollout: None,
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
    // killing a rollback half-way (a request left executing past it counts as interrupted).
    let hard = Duration::try_from(rollback::action_hard_stop(
        policy,
        request.kind,
        request.downtime.as_ref(),
    ))
    .unwrap_or(Duration::from_secs(120));
    let r = action.run(&vars, hard, false).await;
    Execution {
        within_limit: r.ok && r.seconds <= limit.as_secs_f64(),
        rollout: None,
        ran: r.ran,
        ok: r.ok,
        detail: r.detail,
        started,
        seconds: r.seconds,
    }
}

/// An application rollback of a change whose server-run rollout is active goes through the
/// rollout (`rollouts::rollback_active`): its rollback action, its switch-time measurement, its
/// lease (so the guard loop does not promote while the rollback runs), and the `roll-back`
/// transition recorded with the rollout row. The request's `Finish` then records the result
/// only: the change is already `rolled-back`, so no second transition is made.
///
/// `Ok(None)`: a database rollback, or no active server-run rollout: the configured action runs.
async fn through_rollout(
    s: &AppState,
    id: &str,
    request: &RollbackRequest,
) -> Result<Option<Execution>, RbError> {
    if request.kind != RollbackKind::Application || s.rollouts.is_none() {
        return Ok(None);
    }
    let by = request
        .executor
        .clone()
        .or_else(|| request.approvals.last().map(|a| a.person.clone()))
        .unwrap_or_else(|| request.opened_by.clone());
    // The authority the request collected, as the rollout's audit event records it.
    let authority = Authorized {
        operation: changegate_gate::authority::Operation::ApproveRollback,
        via: changegate_gate::authority::Via::Roles {
            roles: request.approvals.iter().map(|a| a.role.clone()).collect(),
        },
    };
    let rollout =
        s.db.change_rollouts(id)
            .await?
            .into_iter()
            .find(|r| r.active)
            .map(|r| r.id)
            .unwrap_or_default();
    let started = s.now();
    let t0 = std::time::Instant::now();
    let Some(timing) =
        crate::rollouts::rollback_active(s, id, &request.reason, &by, &authority).await?
    else {
        return Ok(None);
    };
    let seconds = t0.elapsed().as_secs_f64();
    let rolled_back =
        s.db.change(id)
            .await?
            .is_some_and(|c| c.value.status == changegate_gate::Status::RolledBack);
    Ok(Some(Execution {
        ran: format!("server-run rollout of {id}: rollback"),
        ok: rolled_back,
        detail: format!(
            "switch {} ({}), action {:.0} ms",
            timing
                .detect_to_switched_ms
                .map_or("unconfirmed".to_string(), |ms| format!("{ms:.0} ms")),
            timing.confirmed_by,
            timing.action_ms
        ),
        started,
        seconds: timing
            .detect_to_switched_ms
            .map_or(seconds, |ms| ms / 1000.0),
        within_limit: rolled_back && !timing.exceeded,
        rollout: Some(rollout),
    }))
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
    let execution = match through_rollout(s, id, &r).await? {
        Some(execution) => execution,
        None => execute(s, &stored.value, &r).await,
    };
    let op = RollbackOp::Finish {
        request: request.to_string(),
        execution,
    };
    let (v, w, _) = write(s, caller, id, &op).await?;
    let owes = v
        .value
        .rollback
        .request(request)
        .and_then(|r| r.verification.as_ref())
        .is_some_and(|v| v.status == "pending");
    if owes && s.rollouts.is_some() {
        changegate_store::spawn_background(verify_after_rollback(
            s.clone(),
            id.to_string(),
            request.to_string(),
        ));
    }
    Ok((v, w))
}

/// The verification a done manual rollback owes, observed by the server: the post-deployment
/// checks of the policy (health endpoints, `[verification]` URLs and Prometheus checks, with the
/// flag rollout expected back at 0 %) polled every `verification.interval` until every check
/// passes at one reading or `verification.within` has passed; the result is recorded on the
/// request (`rollback.verified`, with every check's value and limit) by the server's own
/// integration actor. Needs server-run rollouts configured (their Prometheus and service URL).
pub async fn verify_after_rollback(s: AppState, id: String, request: String) {
    let Some(rt) = s.rollouts.clone() else {
        return;
    };
    let level = match s.db.change(&id).await {
        Ok(Some(c)) => changegate_gate::approval::effective_level(&s.policy, &c.value),
        _ => return,
    };
    let within =
        Duration::try_from(s.policy.verification.within.get()).unwrap_or(Duration::from_secs(3600));
    let interval = Duration::try_from(s.policy.verification.interval.get())
        .unwrap_or(Duration::from_secs(30))
        .max(Duration::from_millis(100));
    let give_up = std::time::Instant::now() + within;
    let (passed, checks) = loop {
        let checks = crate::rollouts::verify::run_checks(&s, &rt, level, 0).await;
        let all = !checks.is_empty() && checks.iter().all(|c| c.state == "passed");
        if all || std::time::Instant::now() >= give_up {
            break (all, checks);
        }
        tokio::time::sleep(interval).await;
    };
    let checks = serde_json::to_value(&checks).unwrap_or(Value::Null);
    for _ in 0..MAX_RETRIES {
        let Ok(Some(current)) = s.db.change(&id).await else {
            return;
        };
        let mut next = current.value.clone();
        let now = s.now();
        if rollback::record_verification(
            &mut next,
            &request,
            passed,
            crate::rollouts::ACTOR,
            checks.clone(),
            now,
        )
        .is_err()
        {
            return;
        }
        let c = &next.change;
        let mut ev = AuditEvent::new("rollback.verified", crate::rollouts::ACTOR)
            .change(&c.id)
            .category(c.classification.category.to_string())
            .what("commit-sha", c.head_commit.clone())
            .outcome("result", if passed { "passed" } else { "failed" })
            .details(json!({
                "request": request,
                "checks": checks,
                "authority": {"operation": "verify-rollback", "via": "integration", "actor": crate::rollouts::ACTOR},
            }));
        if !passed {
            ev = ev.why(
                "incident",
                "the service did not verify healthy after the rollback",
            );
            tracing::warn!(change = %id, request = %request, "verification after a manual rollback failed");
        }
        match s
            .db
            .update_change(&id, current.version, &next, crate::rollouts::tidy(ev))
            .await
        {
            Ok(Some(_)) => return,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(change = %id, error = %e, "recording the verification after a rollback failed");
                return;
            }
        }
    }
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
    // An application rollback of a change with an active server-run rollout is the rollout's
    // (its own rollback action); otherwise the server needs an action for the kind.
    let through_rollout = b.kind == RollbackKind::Application
        && s.rollouts.is_some()
        && s.db.change_rollouts(&id).await?.iter().any(|r| r.active);
    if !through_rollout && s.rollback.for_kind(&s.policy, b.kind).is_none() {
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
