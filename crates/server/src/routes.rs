//! Handlers. Every write follows one pattern: load the current state with its version, apply a
//! validated gate command (`changegate_gate::ops`), and store the new state only if nobody else
//! wrote in between (compare-and-swap on the version), in the same transaction as its audit event.
//! On a lost race the command is re-validated against the fresh state and retried, so concurrent
//! approvals across replicas never lose an update and never double-approve.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use changegate_audit::{AuditEvent, kinds};
use changegate_gate::ops::{ChangeOp, WorldOp};
use changegate_gate::{
    ChangeRequest, ChangeState, ClassifiedChange, Decision, Event, MaintenanceOccurrence,
    WorldState,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::db::Versioned;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};

const MAX_RETRIES: usize = 16;

/// `GET /api/v1/health`: the process answers.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /api/v1/health/database`: the database answers.
pub async fn health_database(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    s.db.ping().await.map_err(|_| ApiError::Unavailable)?;
    Ok(Json(json!({ "status": "ok", "backend": s.db.backend() })))
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::OPENAPI,
    )
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

fn view(v: Versioned<ChangeState>) -> ChangeView {
    ChangeView {
        id: v.value.change.id.clone(),
        version: v.version,
        state: v.value,
    }
}

/// Body of `POST /api/v1/changes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChange {
    /// A pull request (`owner/repo#42` or its URL): the server reads base, head, author, title and
    /// link from GitHub, and classifies `owner/repo` under its repo root unless `classification`
    /// is given.
    #[serde(default)]
    pub pr: Option<String>,
    /// Repository (URL or owner/name; for server-side classification a path under the repo root).
    #[serde(default)]
    pub repository: String,
    /// Pull request link.
    #[serde(default)]
    pub pr_link: Option<String>,
    /// Ticket.
    #[serde(default)]
    pub ticket: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Base commit (from the PR when `pr` is given).
    #[serde(default)]
    pub base_commit: String,
    /// Head commit (from the PR when `pr` is given).
    #[serde(default)]
    pub head_commit: String,
    /// Commit authors (default: the caller).
    #[serde(default)]
    pub authors: Vec<String>,
    /// Co-authors.
    #[serde(default)]
    pub co_authors: Vec<String>,
    /// Last pusher (default: the caller).
    #[serde(default)]
    pub last_pusher: Option<String>,
    /// Classification (from `changegate classify --format json`). When absent, the server
    /// classifies `repository` itself: a path relative to its `--repo-root`.
    #[serde(default)]
    pub classification: Option<ClassifiedChange>,
    /// Requested deploy time.
    #[serde(default)]
    pub requested_deploy_at: Option<Timestamp>,
    /// Deploy duration (`30m`).
    #[serde(default)]
    pub deploy_duration: Option<changegate_policy::Dur>,
    /// Maintenance occurrence for category 3.
    #[serde(default)]
    pub maintenance: MaintenanceOccurrence,
    /// Submit for review right away.
    #[serde(default)]
    pub submit: bool,
    /// Choose the id (e.g. derived from the PR); default a random `chg-…`. 1-64 characters of
    /// `A-Z a-z 0-9 . _ -`.
    #[serde(default)]
    pub id: Option<String>,
}

fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    format!("chg-{}", hex::encode(b))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 200)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid-header",
                        "Idempotency-Key must be 1 to 200 visible ASCII characters",
                        Some("header Idempotency-Key".into()),
                    )
                })?;
            Ok(Some(s.to_string()))
        }
    }
}

/// `POST /api/v1/changes`.
pub async fn create_change(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<CreateChange>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    if let Some(pr) = body.pr.clone() {
        from_pull_request(&s, &mut body, &pr).await?;
    }
    for (field, value) in [
        ("repository", &body.repository),
        ("base_commit", &body.base_commit),
        ("head_commit", &body.head_commit),
    ] {
        if value.is_empty() {
            return Err(ApiError::bad_request(
                "invalid-json",
                format!("missing field `{field}` (or give `pr`)"),
                Some(format!("body `{field}`")),
            ));
        }
    }
    let classification = match body.classification.clone() {
        Some(c) => c,
        None => classify_on_server(&s, &body).await?,
    };
    if s.policy.category(classification.category).is_none() {
        return Err(ApiError::bad_request(
            "unknown-category",
            format!("no category has level {}", classification.category),
            Some("body `classification.category`".into()),
        ));
    }
    for (i, f) in classification.facets.iter().enumerate() {
        for (j, r) in f.roles.iter().enumerate() {
            if !s.policy.roles.contains_key(r) {
                return Err(ApiError::bad_request(
                    "unknown-role",
                    format!("unknown role `{r}`"),
                    Some(format!("body `classification.facets[{i}].roles[{j}]`")),
                ));
            }
        }
    }
    if let Some(id) = &body.id {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(ApiError::bad_request(
                "invalid-id",
                format!("change id `{id}` must be 1-64 characters of A-Z a-z 0-9 . _ -"),
                Some("body `id`".into()),
            ));
        }
        if s.db.change(id).await?.is_some() {
            return Err(ApiError::Conflict {
                code: "change-exists".into(),
                message: format!("change {id} already exists"),
            });
        }
    }
    let key = idempotency_key(&headers)?;
    if let Some(key) = &key
        && let Some(id) = s.db.idempotent(&caller.person, key).await?
    {
        let existing =
            s.db.change(&id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("change {id}")))?;
        return Ok((StatusCode::OK, Json(view(existing))));
    }
    let now = s.now();
    let authors = if body.authors.is_empty() {
        vec![caller.person.clone()]
    } else {
        body.authors
    };
    let request = ChangeRequest {
        id: body.id.clone().unwrap_or_else(new_id),
        repository: body.repository,
        pr_link: body.pr_link,
        ticket: body.ticket,
        title: body.title,
        base_commit: body.base_commit,
        head_commit: body.head_commit,
        authors,
        co_authors: body.co_authors,
        last_pusher: body.last_pusher.or_else(|| Some(caller.person.clone())),
        classification,
        requested_deploy_at: body.requested_deploy_at,
        deploy_duration: body.deploy_duration,
        maintenance: body.maintenance,
    };
    let mut state = ChangeState::new(request);
    if body.submit {
        let world = s.db.world().await?.value;
        changegate_gate::ops::apply(
            &s.policy,
            &mut state,
            &world,
            &ChangeOp::Transition {
                event: Event::Submit,
                by: Some(caller.person.clone()),
            },
            now,
        )?;
    }
    let c = &state.change;
    let event = AuditEvent::new(kinds::CHANGE_CREATED, &caller.person)
        .change(&c.id)
        .category(c.classification.category.to_string())
        .what("commit-sha", c.head_commit.clone())
        .why(
            "pr-link",
            c.pr_link.clone().map_or(Value::Null, Value::from),
        )
        .why("ticket", c.ticket.clone().map_or(Value::Null, Value::from))
        .details(json!({
            "repository": c.repository,
            "base_commit": c.base_commit,
            "facets": c.classification.facets,
            "required_roles": c.classification.required_roles,
            "status": state.status,
        }));
    let stored =
        s.db.create_change(
            &state,
            event,
            key.as_deref().map(|k| (caller.person.as_str(), k)),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(stored))))
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
            .ok_or_else(|| ApiError::NotFound(format!("change {id}")))?;
    Ok(Json(view(v)))
}

/// Who a write is on behalf of: the caller, or (admin tokens only) someone named in the body.
fn acting_as(caller: &Caller, named: Option<String>) -> Result<String, ApiError> {
    match named {
        Some(p) if p != caller.person => {
            if caller.admin {
                Ok(p)
            } else {
                Err(ApiError::Forbidden {
                    code: "impersonation-forbidden".into(),
                    message: format!(
                        "{} may not act on behalf of {p}; only admin tokens may",
                        caller.person
                    ),
                })
            }
        }
        _ => Ok(caller.person.clone()),
    }
}

/// Audit event for a change command.
fn op_event(caller: &Caller, state: &ChangeState, op: &ChangeOp) -> AuditEvent {
    let kind = match op {
        ChangeOp::Transition { event, .. } => match event {
            Event::Start => kinds::DEPLOYMENT_START,
            Event::Complete => kinds::DEPLOYMENT_FINISH,
            Event::RollBack => kinds::ROLLBACK,
            _ => kinds::CHANGE_STATE,
        },
        ChangeOp::Approve { .. } => kinds::APPROVAL_GRANTED,
        ChangeOp::Attest { .. } => kinds::ATTESTATION,
        ChangeOp::Push { .. } => kinds::CHANGE_CLASSIFIED,
        ChangeOp::RequestException { .. } | ChangeOp::ApproveException { .. } => kinds::EXCEPTION,
        ChangeOp::DeclareEmergency { .. }
        | ChangeOp::Retrospective { .. }
        | ChangeOp::FollowUp { .. }
        | ChangeOp::Remediates { .. } => kinds::INCIDENT,
        ChangeOp::Publish { .. } => kinds::CHANGE_STATE,
    };
    let c = &state.change;
    let approvers: Vec<Value> = state
        .approvals
        .iter()
        .map(|a| json!({"person": a.person, "role": a.role}))
        .collect();
    AuditEvent::new(kind, &caller.person)
        .change(&c.id)
        .category(c.classification.category.to_string())
        .what("commit-sha", c.head_commit.clone())
        .who("approvers", Value::Array(approvers))
        .why(
            "pr-link",
            c.pr_link.clone().map_or(Value::Null, Value::from),
        )
        .details(json!({ "op": op, "status": state.status, "token": caller.token_id }))
}

/// Load, apply, compare-and-swap; retry on a lost race.
async fn apply_change_op(
    s: &AppState,
    caller: &Caller,
    id: &str,
    op: ChangeOp,
) -> Result<Versioned<ChangeState>, ApiError> {
    for _ in 0..MAX_RETRIES {
        let (current, world) =
            s.db.change_and_world(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("change {id}")))?;
        let now = s.now();
        // Starting a deployment re-decides at "now": a start the gate denies is never recorded,
        // and the decision that allowed it goes into the audit event.
        let mut authorised_by = None;
        if let ChangeOp::Transition {
            event: Event::Start,
            ..
        } = &op
        {
            let decision = changegate_gate::decide(&s.policy, &current.value, &world, now);
            if decision.allowed {
                authorised_by = Some(decision);
            } else {
                let codes = decision.denying_codes().join(", ");
                return Err(ApiError::Refused {
                    code: "gate-denied".into(),
                    message: format!(
                        "the gate denies deploying {id} now: {codes}; see GET /api/v1/changes/{id}/decision"
                    ),
                });
            }
        }
        let mut next = current.value.clone();
        changegate_gate::ops::apply(&s.policy, &mut next, &world, &op, now)?;
        let mut event = op_event(caller, &next, &op);
        if let Some(d) = &authorised_by {
            event = event
                .outcome("result", "allowed")
                .details(serde_json::json!({
                    "op": op,
                    "status": next.status,
                    "token": caller.token_id,
                    "decision": d,
                }));
        }
        if let Some(stored) =
            s.db.update_change(id, current.version, &next, event)
                .await?
        {
            return Ok(stored);
        }
    }
    Err(ApiError::Conflict {
        code: "concurrent-update".into(),
        message: format!("change {id} is being changed concurrently; try again"),
    })
}

/// Body of `POST /api/v1/changes/{id}/approvals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// Role approved in.
    pub role: String,
    /// Commit approved (default: the head).
    #[serde(default)]
    pub commit: Option<String>,
    /// Admin tokens only: approve on behalf of this person.
    #[serde(default)]
    pub person: Option<String>,
}

/// `POST /api/v1/changes/{id}/approvals`.
pub async fn approve(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ApproveBody>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    if !s.policy.roles.contains_key(&b.role) {
        return Err(ApiError::bad_request(
            "unknown-role",
            format!("unknown role `{}`", b.role),
            Some("body `role`".into()),
        ));
    }
    let person = acting_as(&caller, b.person)?;
    let op = ChangeOp::Approve {
        person,
        role: b.role,
        commit: b.commit,
    };
    Ok((
        StatusCode::CREATED,
        Json(view(apply_change_op(&s, &caller, &id, op).await?)),
    ))
}

/// Body of `POST /api/v1/changes/{id}/attestations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestBody {
    /// Checklist item id.
    pub item: String,
    /// Evidence link.
    #[serde(default)]
    pub evidence: Option<String>,
    /// Commit attested (default: the head).
    #[serde(default)]
    pub commit: Option<String>,
    /// Admin tokens only: attest on behalf of this person.
    #[serde(default)]
    pub person: Option<String>,
}

/// `POST /api/v1/changes/{id}/attestations`.
pub async fn attest(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<AttestBody>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    let person = acting_as(&caller, b.person)?;
    let op = ChangeOp::Attest {
        person,
        item: b.item,
        evidence: b.evidence,
        commit: b.commit,
    };
    Ok((
        StatusCode::CREATED,
        Json(view(apply_change_op(&s, &caller, &id, op).await?)),
    ))
}

/// Body of `POST /api/v1/changes/{id}/exceptions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionBody {
    /// Request an exception for this reason (omit to approve the pending one).
    #[serde(default)]
    pub reason: Option<String>,
    /// Severity for reasons with a minimum severity.
    #[serde(default)]
    pub severity: Option<String>,
    /// Evidence link (monitoring plan).
    #[serde(default)]
    pub evidence: Option<String>,
    /// Approve the pending exception in this role.
    #[serde(default)]
    pub approve_as: Option<String>,
    /// Admin tokens only: on behalf of this person.
    #[serde(default)]
    pub person: Option<String>,
}

/// `POST /api/v1/changes/{id}/exceptions`: request an exception, or approve the pending one.
pub async fn exception(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ExceptionBody>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    let person = acting_as(&caller, b.person)?;
    let op = match (b.reason, b.approve_as) {
        (Some(reason), None) => ChangeOp::RequestException {
            reason,
            by: person,
            severity: b.severity,
            evidence: b.evidence,
        },
        (None, Some(role)) => ChangeOp::ApproveException { person, role },
        _ => {
            return Err(ApiError::bad_request(
                "invalid-body",
                "give either `reason` (request an exception) or `approve_as` (approve it), not both",
                Some("body".into()),
            ));
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(view(apply_change_op(&s, &caller, &id, op).await?)),
    ))
}

/// `POST /api/v1/changes/{id}/ops`: any gate command (`{"op": "push", …}`, see the OpenAPI doc).
pub async fn change_op(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(op): JsonBody<ChangeOp>,
) -> Result<Json<ChangeView>, ApiError> {
    let op = match op {
        ChangeOp::Transition { event, by } => ChangeOp::Transition {
            event,
            by: Some(acting_as(&caller, by)?),
        },
        ChangeOp::Approve {
            person,
            role,
            commit,
        } => ChangeOp::Approve {
            person: acting_as(&caller, Some(person))?,
            role,
            commit,
        },
        ChangeOp::Attest {
            person,
            item,
            evidence,
            commit,
        } => ChangeOp::Attest {
            person: acting_as(&caller, Some(person))?,
            item,
            evidence,
            commit,
        },
        ChangeOp::Push {
            commit,
            by,
            authors,
            co_authors,
            classification,
        } => ChangeOp::Push {
            commit,
            by: acting_as(&caller, Some(by))?,
            authors,
            co_authors,
            classification,
        },
        ChangeOp::Publish { item, link, by } => ChangeOp::Publish {
            item,
            link,
            by: Some(acting_as(&caller, by)?),
        },
        ChangeOp::DeclareEmergency { incident, by } => ChangeOp::DeclareEmergency {
            incident,
            by: acting_as(&caller, Some(by))?,
        },
        ChangeOp::RequestException {
            reason,
            by,
            severity,
            evidence,
        } => ChangeOp::RequestException {
            reason,
            by: acting_as(&caller, Some(by))?,
            severity,
            evidence,
        },
        ChangeOp::ApproveException { person, role } => ChangeOp::ApproveException {
            person: acting_as(&caller, Some(person))?,
            role,
        },
        other => other,
    };
    Ok(Json(view(apply_change_op(&s, &caller, &id, op).await?)))
}

/// Query of `GET /api/v1/changes/{id}/decision`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// Decide for this instant (RFC 3339); default now.
    #[serde(default)]
    pub at: Option<String>,
    /// Record the decision in the audit trail (what `changegate gate` does before a deploy).
    #[serde(default)]
    pub record: bool,
}

/// `GET /api/v1/changes/{id}/decision?at=TIME`.
pub async fn decision(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<DecisionQuery>,
) -> Result<Json<Decision>, ApiError> {
    let at = match q.at.as_deref() {
        None => s.now(),
        Some(t) => t.parse::<Timestamp>().map_err(|e| {
            ApiError::bad_request(
                "invalid-time",
                format!("`{t}` is not an RFC 3339 time: {e}"),
                Some("query `at`".into()),
            )
        })?,
    };
    let (current, world) =
        s.db.change_and_world(&id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("change {id}")))?;
    let d = changegate_gate::decide(&s.policy, &current.value, &world, at);
    if q.record {
        let event = AuditEvent::new(kinds::GATE_DECISION, &caller.person)
            .change(&id)
            .category(d.category.map(|c| c.to_string()).unwrap_or_default())
            .what("commit-sha", current.value.change.head_commit.clone())
            .outcome("result", if d.allowed { "allowed" } else { "denied" })
            .details(serde_json::to_value(&d).map_err(ApiError::internal)?);
        s.db.record(event).await?;
    }
    Ok(Json(d))
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
}

fn may_change_world(s: &AppState, caller: &Caller, op: &WorldOp) -> Result<(), ApiError> {
    if caller.admin {
        return Ok(());
    }
    let roles: Vec<&String> = s
        .policy
        .emergency
        .declared_by
        .iter()
        .chain(s.policy.emergency.commander_from.iter())
        .collect();
    let holds = roles.iter().any(|r| {
        s.policy
            .roles
            .get(*r)
            .is_some_and(|role| role.holders.contains(&caller.person))
    });
    let people_op = matches!(op, WorldOp::SetTeam { .. } | WorldOp::SetAlias { .. });
    if people_op {
        return Err(ApiError::Forbidden {
            code: "admin-required".into(),
            message: "only admin tokens may change teams and aliases".into(),
        });
    }
    if holds {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "incident-forbidden".into(),
            message: format!(
                "{} may not record incidents or announcements; roles allowed: {}",
                caller.person,
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

async fn apply_world_op(
    s: &AppState,
    caller: &Caller,
    op: WorldOp,
) -> Result<Versioned<WorldState>, ApiError> {
    may_change_world(s, caller, &op)?;
    for _ in 0..MAX_RETRIES {
        let current = s.db.world().await?;
        let mut next = current.value.clone();
        changegate_gate::ops::apply_world(&s.policy, &mut next, &op, s.now())?;
        let event = AuditEvent::new(kinds::INCIDENT, &caller.person)
            .details(json!({ "op": op, "token": caller.token_id }));
        if let Some(stored) = s.db.update_world(current.version, &next, event).await? {
            return Ok(stored);
        }
    }
    Err(ApiError::Conflict {
        code: "concurrent-update".into(),
        message: "incidents are being changed concurrently; try again".into(),
    })
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

/// `GET /api/v1/overdue`: emergency changes whose retrospective or follow-up PR is overdue.
pub async fn overdue(State(s): State<AppState>, _caller: Caller) -> Result<Json<Value>, ApiError> {
    let now = s.now();
    let mut out = BTreeMap::new();
    for summary in s.db.list_changes().await? {
        if let Some(c) = s.db.change(&summary.id).await? {
            let reasons = changegate_gate::overdue(&s.policy, &c.value, now);
            if !reasons.is_empty() {
                out.insert(summary.id.clone(), reasons);
            }
        }
    }
    Ok(Json(json!({ "at": now, "overdue": out })))
}

/// Body of `PUT /api/v1/teams/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamBody {
    /// Members (person ids); empty removes the team.
    pub members: Vec<String>,
}

/// `PUT /api/v1/teams/{name}` (admin): `team:NAME` role holders expand to these members.
pub async fn set_team(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<TeamBody>,
) -> Result<Json<Value>, ApiError> {
    let w = apply_world_op(
        &s,
        &caller,
        WorldOp::SetTeam {
            name,
            members: b.members,
        },
    )
    .await?;
    Ok(Json(json!({ "teams": w.value.teams })))
}

/// Body of `PUT /api/v1/aliases/{alias}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasBody {
    /// The person the alias names; null removes it.
    pub person: Option<String>,
}

/// `PUT /api/v1/aliases/{alias}` (admin): another identifier of a person (e-mail, git name).
pub async fn set_alias(
    State(s): State<AppState>,
    caller: Caller,
    Path(alias): Path<String>,
    JsonBody(b): JsonBody<AliasBody>,
) -> Result<Json<Value>, ApiError> {
    let w = apply_world_op(
        &s,
        &caller,
        WorldOp::SetAlias {
            alias,
            person: b.person,
        },
    )
    .await?;
    Ok(Json(json!({ "aliases": w.value.aliases })))
}

/// `POST /api/v1/changes/import` (admin): record a change with its history as it stands elsewhere
/// (migration from another tool, replaying scenarios). Nothing in it is trusted: the gate re-checks
/// every approval and attestation at decision time. Audited as `change.imported` with the whole
/// state.
pub async fn import_change(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(state): JsonBody<ChangeState>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    if !caller.admin {
        return Err(ApiError::Forbidden {
            code: "admin-required".into(),
            message: "only admin tokens may import changes".into(),
        });
    }
    let id = &state.change.id;
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(ApiError::bad_request(
            "invalid-id",
            format!("change id `{id}` must be 1-64 characters of A-Z a-z 0-9 . _ -"),
            Some("body `change.id`".into()),
        ));
    }
    if s.db.change(id).await?.is_some() {
        return Err(ApiError::Conflict {
            code: "change-exists".into(),
            message: format!("change {id} already exists"),
        });
    }
    let event = AuditEvent::new("change.imported", &caller.person)
        .change(id)
        .category(state.change.classification.category.to_string())
        .what("commit-sha", state.change.head_commit.clone())
        .details(json!({ "state": state, "token": caller.token_id }));
    let stored = s.db.create_change(&state, event, None).await?;
    Ok((StatusCode::CREATED, Json(view(stored))))
}

/// Classify `body.repository` (a path under the server's repo root) between the given commits.
async fn classify_on_server(
    s: &AppState,
    body: &CreateChange,
) -> Result<ClassifiedChange, ApiError> {
    let Some(root) = s.repo_root.clone() else {
        return Err(ApiError::bad_request(
            "classification-required",
            "give `classification` (from `changegate classify --format json`); this server does not classify repositories (start it with --repo-root DIR)",
            Some("body `classification`".into()),
        ));
    };
    let rel = std::path::Path::new(&body.repository);
    let safe = !rel.is_absolute()
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    let path = root.join(rel);
    let inside = safe
        && std::fs::canonicalize(&path)
            .ok()
            .zip(std::fs::canonicalize(&root).ok())
            .is_some_and(|(p, r)| p.starts_with(r));
    if !inside {
        return Err(ApiError::bad_request(
            "repository-outside-root",
            format!(
                "`{}` is not a repository under the server's repo root",
                body.repository
            ),
            Some("body `repository`".into()),
        ));
    }
    let policy = s.policy.clone();
    let (base, head) = (body.base_commit.clone(), body.head_commit.clone());
    let c = tokio::task::spawn_blocking(move || {
        changegate_classify::classify_repo(&path, Some(&base), Some(&head), &policy, None)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| {
        ApiError::bad_request(
            "classify-failed",
            e.to_string(),
            Some("body `repository`, `base_commit`, `head_commit`".into()),
        )
    })?;
    Ok(ClassifiedChange {
        category: c.category.level,
        facets: c
            .facets
            .iter()
            .map(|f| changegate_gate::ClassifiedFacet {
                kind: f.facet.kind.to_string(),
                roles: f.roles.clone(),
                category: f.category,
            })
            .collect(),
        required_roles: c.roles.iter().map(|r| r.role.clone()).collect(),
    })
}

/// Fill a create request from a GitHub pull request.
async fn from_pull_request(
    s: &AppState,
    body: &mut CreateChange,
    pr: &str,
) -> Result<(), ApiError> {
    let reference = crate::github::PrRef::parse(pr).ok_or_else(|| {
        ApiError::bad_request(
            "invalid-pr",
            format!("`{pr}` is not owner/repo#NUMBER or a pull request URL"),
            Some("body `pr`".into()),
        )
    })?;
    let gh = s.github.as_ref().ok_or_else(|| {
        ApiError::bad_request(
            "github-not-configured",
            "this server has no GitHub API configured (serve --github-api)",
            Some("body `pr`".into()),
        )
    })?;
    let p = gh.pull_request(&reference).await?;
    if body.repository.is_empty() {
        body.repository = format!("{}/{}", reference.owner, reference.repo);
    }
    body.base_commit = p.base.sha;
    body.head_commit = p.head.sha;
    body.pr_link.get_or_insert(p.html_url);
    if body.title.is_empty() {
        body.title = p.title;
    }
    if body.authors.is_empty() {
        body.authors = vec![p.user.login];
    }
    Ok(())
}
