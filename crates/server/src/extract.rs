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
        if let Some(path) = nul_path(&bytes) {
            let location = if path.is_empty() {
                "body".to_string()
            } else {
                format!("body `{path}`")
            };
            return Err(ApiError::new(
                ErrorCode::NulCharacter,
                "a string contains a NUL character (\\u0000), which is not accepted",
            )
            .at(location));
        }
        Ok(JsonBody(value))
    }
}

/// The JSON path (`classification.facets[0].kind`; empty for the root) of the first string or
/// object key of a JSON body that contains NUL (U+0000). PostgreSQL refuses NUL in text and SQLite
/// would store it, so every body is refused with it, whichever route and database. A raw NUL byte
/// is not valid JSON, so only the escape `\u0000` can bring one: bodies without it are not parsed
/// again.
pub fn nul_path(json: &[u8]) -> Option<String> {
    if !json.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let mut path = String::new();
    find_nul(&value, &mut path).then_some(path)
}

fn find_nul(v: &serde_json::Value, path: &mut String) -> bool {
    use serde_json::Value;
    use std::fmt::Write as _;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().enumerate().any(|(i, x)| {
            let len = path.len();
            let _ = write!(path, "[{i}]");
            let found = find_nul(x, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        Value::Object(fields) => fields.iter().any(|(k, x)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&k.replace('\0', "\\u0000"));
            let found = k.contains('\0') || find_nul(x, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::nul_path;

    #[test]
    fn nul_is_found_with_its_json_path() {
        let cases: [(&str, Option<&str>); 7] = [
            (r#"{"title": "a\u0000b"}"#, Some("title")),
            (r#"{"a": {"b": [1, "x", "y\u0000"]}}"#, Some("a.b[2]")),
            (r#"{"k\u0000": 1}"#, Some("k\\u0000")),
            (r#""\u0000""#, Some("")),
            // An escaped backslash followed by `u0000` is no NUL.
            (r#"{"title": "a\\u0000b"}"#, None),
            (r#"{"title": "plain"}"#, None),
            (r#"{"title": "\u0001"}"#, None),
        ];
        for (json, want) in cases {
            assert_eq!(nul_path(json.as_bytes()).as_deref(), want, "{json}");
        }
    }
}
