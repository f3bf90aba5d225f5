//! API tokens over HTTP: issue (admin), list (admin), revoke (admin, or a person revoking one of
//! their own tokens). The same rules as `changegate token create | list | revoke` on the host.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use changegate_store::{Revocation, TokenInfo, TokenKind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, JsonBody};
use crate::token::TokenRequest;

/// `POST|GET /api/v1/tokens`, `DELETE /api/v1/tokens/{id}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
}

/// Body of `POST /api/v1/tokens`: a `person` (with `admin` for an admin token) or an
/// `integration` with `scopes`; optionally `expires_in` (`90d`) or `expires_at` (RFC 3339).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    /// The person a person or admin token acts as.
    pub person: Option<String>,
    /// The integration an integration token stands for.
    pub integration: Option<String>,
    /// An admin token.
    #[serde(default)]
    pub admin: bool,
    /// Scopes of an integration token.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Lifetime: a number and `m`, `h`, `d` or `w`.
    pub expires_in: Option<String>,
    /// Expiry instant (RFC 3339).
    pub expires_at: Option<String>,
}

/// A token just issued: its secret, shown this once.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    /// The whole token (`cg_<id>_<secret>`), to hand to its holder.
    pub token: String,
    /// What `GET /api/v1/tokens` will show of it.
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// `POST /api/v1/tokens` (admin): issue a token, audited as `token.created` by the caller.
pub async fn create_token(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<NewTokenBody>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    caller.require_admin("issue tokens")?;
    let now = s.now();
    let spec = TokenRequest {
        person: b.person.as_deref(),
        integration: b.integration.as_deref(),
        admin: b.admin,
        scopes: &b.scopes,
        expires_in: b.expires_in.as_deref(),
        expires_at: b.expires_at.as_deref(),
    }
    .spec(now)
    .map_err(|e| ApiError::from(e).at("body"))?;
    let t =
        s.db.issue_token(&spec, now, &caller.person)
            .await
            .map_err(|e| ApiError::from(e).at("body"))?;
    let info =
        s.db.list_tokens()
            .await?
            .into_iter()
            .find(|i| i.id == t.id)
            .ok_or_else(|| ApiError::internal("the token just issued is not listed"))?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token: t.plaintext,
            info,
        }),
    ))
}

/// `GET /api/v1/tokens` (admin): every token, never a secret or its digest.
pub async fn list_tokens(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin("list tokens")?;
    Ok(Json(json!({ "tokens": s.db.list_tokens().await? })))
}

/// `DELETE /api/v1/tokens/{id}`: revoke, effective on the next request. An admin may revoke any
/// token; a person may revoke their own person tokens (a leaked one, say).
pub async fn revoke_token(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !caller.is_admin() {
        let own = match s.db.token(&id).await? {
            Some(row) => {
                row.kind == TokenKind::Person && caller.is_person() && row.person == caller.person
            }
            None => false,
        };
        if !own {
            return Err(ApiError::new(
                ErrorCode::AdminRequired,
                "only admin tokens may revoke others' tokens",
            ));
        }
    }
    match s.db.revoke_token(&id, &caller.person).await? {
        Revocation::Revoked => Ok(Json(json!({ "id": id, "revoked": true }))),
        Revocation::AlreadyRevoked => {
            Ok(Json(json!({ "id": id, "revoked": true, "already": true })))
        }
        Revocation::NotFound => Err(ApiError::not_found(format!("token {id}"))),
    }
}
