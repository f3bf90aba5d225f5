//! Admin-only writes: importing a change with its history, teams and aliases.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use changegate_audit::AuditEvent;
use changegate_gate::ChangeState;
use changegate_gate::ops::WorldOp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::changes::{ChangeView, view};
use super::incidents::apply_world_op;
use super::{check_id, check_new};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, JsonBody};

/// `POST /api/v1/changes/import`, `PUT /api/v1/teams/{name}`, `PUT /api/v1/aliases/{alias}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/changes/import", post(import_change))
        .route("/api/v1/teams/{name}", put(set_team))
        .route("/api/v1/aliases/{alias}", put(set_alias))
}

/// Body of `PUT /api/v1/teams/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamBody {
    /// Members (person ids); empty removes the team.
    pub members: Vec<String>,
}

/// `PUT /api/v1/teams/{name}` (admin): `team:NAME` role holders expand to these members. A team
/// the policy maps to a GitHub team is refused (409 `team-managed-by-github`): its members are
/// what GitHub says, and a hand-set list would be overwritten at the next read anyway.
pub async fn set_team(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<TeamBody>,
) -> Result<Json<Value>, ApiError> {
    // The authority table answers a non-admin first (in `apply_world_op`).
    if let Some(gh) = s
        .policy
        .integrations
        .github
        .teams
        .get(&name)
        .filter(|_| caller.admin)
    {
        return Err(ApiError::new(
            ErrorCode::TeamManagedByGithub,
            format!(
                "team `{name}` is read from the GitHub team `{gh}` ([integrations.github] teams in the policy); change its members on GitHub, or remove the mapping"
            ),
        )
        .at("path `name`"));
    }
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
        return Err(ApiError::new(
            ErrorCode::AdminRequired,
            "only admin tokens may import changes",
        ));
    }
    let id = &state.change.id;
    check_id(id, "body `change.id`")?;
    check_new(&s, id).await?;
    let event = AuditEvent::new("change.imported", &caller.person)
        .change(id)
        .category(state.change.classification.category.to_string())
        .what("commit-sha", state.change.head_commit.clone())
        .details(json!({ "state": state, "token": caller.token_id }));
    let stored = s.db.create_change(&state, event, None).await?;
    Ok((StatusCode::CREATED, Json(view(stored))))
}
