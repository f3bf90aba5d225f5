//! Commands on one change: approvals, attestations, exceptions, any gate command (`/ops`), and
//! the deploy decision. Each write goes through [`apply_change_op`] (load, apply, compare-and-swap,
//! retry).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use changegate_audit::{AuditEvent, kinds};
use changegate_gate::authority::{Actor, Authorized, authorize};
use changegate_gate::ops::{ChangeOp, OpError};
use changegate_gate::{ChangeState, Decision, Event};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::changes::{ChangeView, view};
use super::{MAX_RETRIES, acting_as};
use crate::AppState;
use crate::db::Versioned;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, JsonBody};

/// `POST /api/v1/changes/{id}/{approvals,attestations,exceptions,ops}`,
/// `GET /api/v1/changes/{id}/decision`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/changes/{id}/approvals", post(approve))
        .route("/api/v1/changes/{id}/attestations", post(attest))
        .route("/api/v1/changes/{id}/exceptions", post(exception))
        .route("/api/v1/changes/{id}/ops", post(change_op))
        .route("/api/v1/changes/{id}/decision", get(decision))
}

/// Whether the caller's token is an integration's (a CI job, the deploy pipeline, the rollout
/// guard): an integration token with the `ci-evidence` or `deployments` scope, or an admin token
/// (which holds every scope). The authority table's integration rows (CI evidence, automatic
/// rollbacks, pipeline transitions) are granted to these.
pub(super) fn is_integration(caller: &Caller) -> bool {
    use crate::token::Scope;
    caller.has_scope(Scope::CiEvidence) || caller.has_scope(Scope::Deployments)
}

/// The identity the authority table is checked for: the token's person and kind, never a body.
pub(crate) fn actor(caller: &Caller) -> Actor {
    Actor {
        person: caller.person.clone(),
        admin: caller.admin,
        integration: is_integration(caller),
    }
}

/// Audit event for a change command, with the authority that allowed it.
fn op_event(
    caller: &Caller,
    state: &ChangeState,
    op: &ChangeOp,
    authority: &Authorized,
) -> AuditEvent {
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
        .details(json!({
            "op": op, "status": state.status, "token": caller.token_id, "authority": authority,
        }))
}

/// Authorise (the authority table, for the token's identity), load, apply, compare-and-swap;
/// retry on a lost race. `dry_run` checks everything and stores nothing.
pub(crate) async fn apply_change_op(
    s: &AppState,
    caller: &Caller,
    id: &str,
    op: ChangeOp,
    dry_run: bool,
) -> Result<Versioned<ChangeState>, ApiError> {
    let actor = actor(caller);
    if let ChangeOp::Approve { person, role, .. } = &op
        && !dry_run
    {
        github_teams(s, id, &caller.person, person, role).await?;
    }
    for _ in 0..MAX_RETRIES {
        let (current, world) =
            s.db.change_and_world(id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
        let now = s.now();
        let authority = authorize(&s.policy, &current.value, &world, &actor, &op, now)
            .map_err(OpError::from)?;
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
                return Err(ApiError::new(
                    ErrorCode::GateDenied,
                    format!(
                        "the gate denies deploying {id} now: {codes}; see GET /api/v1/changes/{id}/decision"
                    ),
                ));
            }
        }
        let mut next = current.value.clone();
        changegate_gate::ops::apply(&s.policy, &mut next, &world, &op, now)?;
        if dry_run {
            return Ok(Versioned {
                value: next,
                version: current.version,
            });
        }
        let mut event = op_event(caller, &next, &op, &authority);
        // A push the server classified itself: the paths git lists for base..commit.
        if let ChangeOp::Push {
            commit,
            observed: Some(o),
            ..
        } = &op
            && o.classification.is_some()
            && let Some(f) = crate::observe::changed_files(
                s,
                &next.change.repository,
                &next.change.base_commit,
                commit,
            )
            .await
        {
            event = event.what("changed-files", crate::observe::files_value(&f));
        }
        if let Some(d) = &authorised_by {
            event = event
                .outcome("result", "allowed")
                .details(serde_json::json!({
                    "op": op,
                    "status": next.status,
                    "token": caller.token_id,
                    "authority": authority,
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
    Err(ApiError::new(
        ErrorCode::ConcurrentUpdate,
        format!("change {id} is being changed concurrently; try again"),
    ))
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
    /// `review` (default) or `deploy`: the production-deployment gate of a category with
    /// `deploy_approval_after` (the Tech Architect after staging), recorded after that item.
    #[serde(default)]
    pub stage: changegate_gate::ApprovalStage,
}

/// Before an approval from the API or the dashboard: the policy's GitHub-read teams brought up
/// to date in the world ([`crate::routes::webhooks::github::sync_github_teams`], the same read,
/// cache and `team.synced` event as a PR review's approval), so a person GitHub removed from a
/// team holds its roles no longer. Refused (nothing recorded) when the members cannot be known.
async fn github_teams(
    s: &AppState,
    id: &str,
    caller: &str,
    person: &str,
    role: &str,
) -> Result<(), ApiError> {
    if s.policy.integrations.github.teams.is_empty() {
        return Ok(());
    }
    let Some(current) = s.db.change(id).await? else {
        // The approval itself answers the 404.
        return Ok(());
    };
    let repo = current.value.change.repository.clone();
    let cause = serde_json::json!({
        "caller": caller, "person": person, "role": role, "change": id,
    });
    match crate::routes::webhooks::github::sync_github_teams(s, &repo, None, ("request", cause))
        .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(why)) => {
            let code = if s.github_out.is_none() {
                ErrorCode::GithubNotConfigured
            } else {
                ErrorCode::GithubError
            };
            Err(ApiError::new(
                code,
                format!("the role holders of {id} cannot be known, nothing was recorded: {why}"),
            ))
        }
        Err(why) => Err(ApiError::new(
            ErrorCode::GithubUnreachable,
            format!(
                "reading the role holders of {id} from GitHub failed, nothing was recorded; retry: {why}"
            ),
        )),
    }
}

/// `POST /api/v1/changes/{id}/approvals`.
pub async fn approve(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ApproveBody>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    if !s.policy.roles.contains_key(&b.role) {
        return Err(
            ApiError::new(ErrorCode::UnknownRole, format!("unknown role `{}`", b.role))
                .at("body `role`"),
        );
    }
    let person = acting_as(&caller, b.person)?;
    let op = ChangeOp::Approve {
        person,
        role: b.role,
        commit: b.commit,
        stage: b.stage,
    };
    Ok((
        StatusCode::CREATED,
        Json(view(apply_change_op(&s, &caller, &id, op, false).await?)),
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
        verified: None,
    };
    let op = verify_ci_link(&s, &caller, &id, op).await?;
    Ok((
        StatusCode::CREATED,
        Json(view(apply_change_op(&s, &caller, &id, op, false).await?)),
    ))
}

/// A person's attestation of a CI-evidence item with a link: the server looks the CI run up
/// itself ([`crate::github_runs::verify_run`]) and attaches what it saw, which the authority
/// table then requires to be a successful run of the commit attested. A `verified` sent in a
/// body is refused: only the server records it. Integration and admin tokens need no link; any
/// other attestation passes unchanged.
async fn verify_ci_link(
    s: &AppState,
    caller: &Caller,
    id: &str,
    op: ChangeOp,
) -> Result<ChangeOp, ApiError> {
    let ChangeOp::Attest {
        person,
        item,
        evidence,
        commit,
        verified,
    } = op
    else {
        return Ok(op);
    };
    if verified.is_some() {
        return Err(ApiError::new(
            ErrorCode::VerificationNotAllowed,
            "`verified` is what the server records after looking the CI run up itself; send the run link as `evidence`",
        )
        .at("body `verified`"));
    }
    let person_attests_ci = changegate_gate::authority::is_ci_evidence(&s.policy, &item)
        && !caller.admin
        && !is_integration(caller);
    // A server with no GitHub configured verifies no link: the authority table then refuses.
    let verified = match (&evidence, person_attests_ci, s.github.as_ref()) {
        (Some(link), true, Some(gh)) => {
            let current =
                s.db.change(id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
            let c = &current.value.change;
            let at = commit.as_deref().unwrap_or(&c.head_commit);
            Some(crate::github_runs::verify_run(gh, link, c, at).await?)
        }
        _ => None,
    };
    Ok(ChangeOp::Attest {
        person,
        item,
        evidence,
        commit,
        verified,
    })
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
    /// A rollout plan the exception selects instead of the category's (one of the reason's
    /// `plans` in the policy).
    #[serde(default)]
    pub plan: Option<String>,
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
            plan: b.plan,
        },
        (None, Some(role)) => ChangeOp::ApproveException { person, role },
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "give either `reason` (request an exception) or `approve_as` (approve it), not both",
            )
            .at("body"));
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(view(apply_change_op(&s, &caller, &id, op, false).await?)),
    ))
}

/// Query of `POST /api/v1/changes/{id}/ops`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsQuery {
    /// Check the command (authority, state, policy) and answer as if applied, storing nothing
    /// (`changegate rollout rollback --dry-run` asks this way).
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /api/v1/changes/{id}/ops?dry_run=BOOL`: any gate command (`{"op": "push", …}`, see the
/// OpenAPI doc).
pub async fn change_op(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<OpsQuery>,
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
            stage,
        } => ChangeOp::Approve {
            person: acting_as(&caller, Some(person))?,
            role,
            commit,
            stage,
        },
        ChangeOp::Attest {
            person,
            item,
            evidence,
            commit,
            verified,
        } => {
            let op = ChangeOp::Attest {
                person: acting_as(&caller, Some(person))?,
                item,
                evidence,
                commit,
                verified,
            };
            verify_ci_link(&s, &caller, &id, op).await?
        }
        // A push carries commits, never a classification: the server reads the new commits
        // itself (classification, authors) and records the token that sent it.
        ChangeOp::Push {
            commit,
            by,
            authors,
            co_authors,
            observed,
        } => {
            if observed.is_some() {
                return Err(ApiError::new(
                    ErrorCode::ObservationNotAllowed,
                    "`observed` is what the server reads from the repository; a push carries commits only",
                )
                .at("body `observed`"));
            }
            let by = acting_as(&caller, Some(by))?;
            let observed = Some(crate::observe::push(&s, &caller, &id, &commit).await?);
            ChangeOp::Push {
                commit,
                by,
                authors,
                co_authors,
                observed,
            }
        }
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
            plan,
        } => ChangeOp::RequestException {
            reason,
            by: acting_as(&caller, Some(by))?,
            severity,
            evidence,
            plan,
        },
        ChangeOp::ApproveException { person, role } => ChangeOp::ApproveException {
            person: acting_as(&caller, Some(person))?,
            role,
        },
        other => other,
    };
    Ok(Json(view(
        apply_change_op(&s, &caller, &id, op, q.dry_run).await?,
    )))
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
            ApiError::new(
                ErrorCode::InvalidTime,
                format!("`{t}` is not an RFC 3339 time: {e}"),
            )
            .at("query `at`")
        })?,
    };
    let (current, world) =
        s.db.change_and_world(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
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
