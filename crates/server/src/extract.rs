//! Extractors that turn bad input into clear 4xx errors that say what and where.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

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
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON with Content-Type: application/json",
            )
            .at("header Content-Type"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let too_big = e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE;
            let code = if too_big {
                ErrorCode::BodyTooLarge
            } else {
                ErrorCode::BodyUnreadable
            };
            ApiError::new(code, e.body_text()).at("body")
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
            ApiError::new(ErrorCode::InvalidJson, inner.to_string()).at(location)
        })?;
        de.end().map_err(|e| {
            ApiError::new(ErrorCode::InvalidJson, e.to_string()).at(format!(
                "body line {} column {}",
                e.line(),
                e.column()
            ))
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
            .ok_or_else(ApiError::unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(ApiError::unauthorized)?
            .trim();
        let (id, secret) = crate::token::parse(token).ok_or_else(ApiError::unauthorized)?;
        let row = state
            .db
            .token(id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if row.revoked || !crate::token::verify(secret, &row.digest) {
            return Err(ApiError::unauthorized());
        }
        Ok(Caller {
            person: row.person,
            admin: row.admin,
            token_id: id.to_string(),
        })
    }
}
