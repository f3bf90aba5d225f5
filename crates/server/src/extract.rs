//! Extractors that turn bad input into clear 4xx errors that say what and where.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A JSON body whose deserialisation errors name the JSON path, line and column.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_type {
            return Err(ApiError::bad_request(
                "unsupported-media-type",
                "the body must be JSON with Content-Type: application/json",
                Some("header Content-Type".into()),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let too_big = e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE;
            ApiError::bad_request(
                if too_big {
                    "body-too-large"
                } else {
                    "body-unreadable"
                },
                e.body_text(),
                Some("body".into()),
            )
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let location = if path.is_empty() || path == "." {
                format!("body line {} column {}", inner.line(), inner.column())
            } else {
                format!(
                    "body `{path}` (line {} column {})",
                    inner.line(),
                    inner.column()
                )
            };
            ApiError::bad_request("invalid-json", inner.to_string(), Some(location))
        })?;
        de.end().map_err(|e| {
            ApiError::bad_request(
                "invalid-json",
                e.to_string(),
                Some(format!("body line {} column {}", e.line(), e.column())),
            )
        })?;
        Ok(JsonBody(value))
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Person the token is bound to.
    pub person: String,
    /// Admin tokens may act on behalf of others and change shared state.
    pub admin: bool,
    /// Token id (safe to log).
    pub token_id: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(ApiError::Unauthorized)?
            .trim();
        let (id, secret) = crate::token::parse(token).ok_or(ApiError::Unauthorized)?;
        let row = state.db.token(id).await?.ok_or(ApiError::Unauthorized)?;
        if row.revoked || !crate::token::verify(secret, &row.digest) {
            return Err(ApiError::Unauthorized);
        }
        Ok(Caller {
            person: row.person,
            admin: row.admin,
            token_id: id.to_string(),
        })
    }
}
