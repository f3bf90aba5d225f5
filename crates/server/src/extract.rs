//! Extractors that turn bad input into clear 4xx errors that say what and where.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use std::collections::BTreeSet;

use changegate_store::TokenKind;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::token::Scope;

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

/// What the caller's token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// A person acting as themself (with the roles the policy grants them).
    Person,
    /// A named integration (CI, deploy pipeline, alerting) with the scopes of its token.
    Integration {
        /// The integration's name (the actor is `integration:NAME`).
        name: String,
    },
    /// An admin: may act on behalf of others and change shared state.
    Admin,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who acts: the person a person or admin token is bound to, or `integration:NAME` for an
    /// integration token (never a valid person name, so an integration holds no person's roles).
    /// Audit events, approvals and idempotency keys are recorded under this name.
    pub person: String,
    /// Admin tokens may act on behalf of others and change shared state
    /// (`kind == CallerKind::Admin`).
    pub admin: bool,
    /// Token id (safe to log).
    pub token_id: String,
    /// What the token stands for.
    pub kind: CallerKind,
    /// The token's scopes (integration tokens; empty for person and admin tokens, which
    /// [`Caller::has_scope`] treats as none and all).
    pub scopes: BTreeSet<Scope>,
}

impl Caller {
    /// An admin token.
    pub fn is_admin(&self) -> bool {
        self.kind == CallerKind::Admin
    }

    /// A person token (not admin, not integration).
    pub fn is_person(&self) -> bool {
        self.kind == CallerKind::Person
    }

    /// The integration's name, for an integration token.
    pub fn integration(&self) -> Option<&str> {
        match &self.kind {
            CallerKind::Integration { name } => Some(name),
            _ => None,
        }
    }

    /// The person, for a person or admin token (`None` for an integration).
    pub fn person(&self) -> Option<&str> {
        match self.kind {
            CallerKind::Integration { .. } => None,
            _ => Some(&self.person),
        }
    }

    /// Whether the token grants `scope`: an integration token that names it, or an admin token.
    /// A person token grants none (a person's authority comes from the policy's roles).
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.is_admin() || self.scopes.contains(&scope)
    }

    /// [`Caller::has_scope`], or a 403 `scope-required` naming the scope and `what` needs it.
    pub fn require_scope(&self, scope: Scope, what: &str) -> Result<(), ApiError> {
        if self.has_scope(scope) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::ScopeRequired,
            format!(
                "{what} needs a token with the `{scope}` scope; {} has none",
                self.person
            ),
        ))
    }

    /// A 403 `admin-required` unless this is an admin token.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::AdminRequired,
            format!("only admin tokens may {what}"),
        ))
    }

    /// The caller a stored token stands for (scope names the server does not know are dropped:
    /// a token never gains authority from a name this version cannot read).
    pub fn from_row(token_id: &str, row: changegate_store::TokenRow) -> Caller {
        let scopes = row.scopes.iter().filter_map(|s| Scope::parse(s)).collect();
        let (kind, person) = match row.kind {
            TokenKind::Person => (CallerKind::Person, row.person),
            TokenKind::Admin => (CallerKind::Admin, row.person),
            TokenKind::Integration => (
                CallerKind::Integration {
                    name: row.person.clone(),
                },
                crate::token::integration_actor(&row.person),
            ),
        };
        Caller {
            admin: kind == CallerKind::Admin,
            scopes: match kind {
                CallerKind::Integration { .. } => scopes,
                _ => BTreeSet::new(),
            },
            person,
            token_id: token_id.to_string(),
            kind,
        }
    }
}

/// The token of an `Authorization: Bearer …` header (the scheme in any case, RFC 7235).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim_start().split_once(char::is_whitespace)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let token = bearer(header).ok_or_else(ApiError::unauthorized)?;
        let (id, secret) = crate::token::parse(token).ok_or_else(ApiError::unauthorized)?;
        let row = state
            .db
            .token(id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        // The secret first: without it, nobody learns whether an id is revoked or expired.
        if !crate::token::verify(secret, &row.digest) {
            return Err(ApiError::unauthorized());
        }
        if row.revoked {
            return Err(ApiError::new(
                ErrorCode::TokenRevoked,
                format!("API token {id} was revoked"),
            )
            .at("header Authorization"));
        }
        if let Some(expiry) = row.expires_at
            && state.now() >= expiry
        {
            return Err(ApiError::new(
                ErrorCode::TokenExpired,
                format!("API token {id} expired at {expiry}"),
            )
            .at("header Authorization"));
        }
        Ok(Caller::from_row(id, row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for h in [
            "Bearer cg_x",
            "bearer cg_x",
            "BEARER  cg_x ",
            "BeArEr\tcg_x",
        ] {
            assert_eq!(bearer(h), Some("cg_x"), "{h:?}");
        }
        for h in [
            "",
            "Bearer",
            "Bearer ",
            "Basic cg_x",
            "Bearercg_x",
            "Token cg_x",
        ] {
            assert_eq!(bearer(h), None, "{h:?}");
        }
    }

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
