//! One error type for every handler. Client errors say what and where, with a stable code
//! ([`ErrorCode`]); internal errors are logged inside the request's trace span (which records its
//! `x-request-id`) and shown to the client only as "internal error" with that request id.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use changegate_gate::ops::OpError;
use serde::Serialize;

changegate_codes::codes! {
    /// Codes of the API's error bodies (`{"code": …}`), besides the gate's command rejections
    /// that `POST /api/v1/changes/{id}/…` passes through. Each code has one HTTP status
    /// ([`ErrorCode::status`]).
    pub enum ErrorCode in "api-error" {
        /// No valid API token was presented.
        Unauthorized = "unauthorized",
        /// The route, change or other resource does not exist.
        NotFound = "not-found",
        /// The database (or GitHub's API) cannot be reached right now.
        Unavailable = "unavailable",
        /// A bug or an infrastructure failure; details are in the server log under the request id.
        Internal = "internal",
        /// The body is not sent as `application/json`.
        UnsupportedMediaType = "unsupported-media-type",
        /// The body is larger than the server accepts.
        BodyTooLarge = "body-too-large",
        /// The body could not be read.
        BodyUnreadable = "body-unreadable",
        /// The body is not valid JSON for this route, or misses a required field.
        InvalidJson = "invalid-json",
        /// The body is valid JSON but its fields do not go together.
        InvalidBody = "invalid-body",
        /// A header has an invalid value.
        InvalidHeader = "invalid-header",
        /// A time is not RFC 3339.
        InvalidTime = "invalid-time",
        /// A change id is not 1-64 characters of `A-Z a-z 0-9 . _ -`.
        InvalidId = "invalid-id",
        /// A pull request reference is not `owner/repo#NUMBER` or a pull request URL.
        InvalidPr = "invalid-pr",
        /// The input names a role the policy does not declare.
        UnknownRole = "unknown-role",
        /// The input names a category level the policy does not declare.
        UnknownCategory = "unknown-category",
        /// No classification was given and this server does not classify repositories.
        ClassificationRequired = "classification-required",
        /// The repository to classify is not under the server's repo root.
        RepositoryOutsideRoot = "repository-outside-root",
        /// The server could not classify the repository between the given commits.
        ClassifyFailed = "classify-failed",
        /// A pull request was named but the server has no GitHub API configured.
        GithubNotConfigured = "github-not-configured",
        /// GitHub does not know the pull request.
        PrNotFound = "pr-not-found",
        /// A non-admin token tried to act on behalf of someone else.
        ImpersonationForbidden = "impersonation-forbidden",
        /// Only admin tokens may do this.
        AdminRequired = "admin-required",
        /// A change with this id already exists.
        ChangeExists = "change-exists",
        /// Others kept changing the same document; the request may be retried.
        ConcurrentUpdate = "concurrent-update",
        /// Starting the deployment was refused because the gate denies it now.
        GateDenied = "gate-denied",
    }
}

impl ErrorCode {
    /// The HTTP status of a response with this code.
    pub const fn status(self) -> StatusCode {
        use ErrorCode as C;
        match self {
            C::Unauthorized => StatusCode::UNAUTHORIZED,
            C::NotFound => StatusCode::NOT_FOUND,
            C::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            C::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            C::UnsupportedMediaType
            | C::BodyTooLarge
            | C::BodyUnreadable
            | C::InvalidJson
            | C::InvalidBody
            | C::InvalidHeader
            | C::InvalidTime
            | C::InvalidId
            | C::InvalidPr
            | C::UnknownRole
            | C::UnknownCategory
            | C::ClassificationRequired
            | C::RepositoryOutsideRoot
            | C::ClassifyFailed
            | C::GithubNotConfigured
            | C::PrNotFound => StatusCode::BAD_REQUEST,
            C::ImpersonationForbidden | C::AdminRequired => StatusCode::FORBIDDEN,
            C::ChangeExists | C::ConcurrentUpdate => StatusCode::CONFLICT,
            C::GateDenied => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

/// The error body of every 4xx/5xx response.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable kebab-case code, e.g. `approval-sod-violation`, `invalid-json`.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
    /// Where in the input (JSON path, header, path parameter), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// An API error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client (4xx) or availability (503) error; the status is the code's.
    #[error("{message}")]
    Api {
        /// Code.
        code: ErrorCode,
        /// Message.
        message: String,
        /// Where in the input, when known.
        location: Option<String>,
    },
    /// A gate command refused (409 for a conflict with the state, 422 for a policy rule).
    #[error(transparent)]
    Op(#[from] OpError),
    /// 500: a bug or an infrastructure failure (details logged, not shown).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// An error with this code (its status is [`ErrorCode::status`]).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Api {
            code,
            message: message.into(),
            location: None,
        }
    }

    /// The same error, located in the input (`body \`role\``, `header Content-Type`, …).
    pub fn at(self, location: impl Into<String>) -> Self {
        match self {
            ApiError::Api { code, message, .. } => ApiError::Api {
                code,
                message,
                location: Some(location.into()),
            },
            other => other,
        }
    }

    /// 404: `{what} not found`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// 401.
    pub fn unauthorized() -> Self {
        ApiError::new(
            ErrorCode::Unauthorized,
            "a valid API token is required: Authorization: Bearer cg_…",
        )
        .at("header Authorization")
    }

    /// 503: the database is unreachable.
    pub fn unavailable() -> Self {
        ApiError::new(ErrorCode::Unavailable, "the database is unavailable")
    }

    /// A 500 from any error (logged when rendered).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// The code of the response body.
    pub fn code(&self) -> String {
        match self {
            ApiError::Api { code, .. } => code.as_str().to_string(),
            ApiError::Op(e) => op_code(e),
            ApiError::Internal(_) => ErrorCode::Internal.as_str().to_string(),
        }
    }
}

/// The code of a refused gate command: the gate's own (input naming an unknown role or category
/// is `unknown-role` / `unknown-category` there too, as for `POST …/approvals`).
fn op_code(e: &OpError) -> String {
    e.code().to_string()
}

/// The status of a refused gate command (unchanged by the code unification above: a command
/// refused by the gate is 422, a conflict with the state 409).
fn op_status(e: &OpError) -> StatusCode {
    match e {
        OpError::Transition(_)
        | OpError::DuplicateIncident { .. }
        | OpError::PushRefused { .. } => StatusCode::CONFLICT,
        OpError::Unauthorized(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let (status, message, location) = match self {
            ApiError::Api {
                code,
                message,
                location,
            } => (code.status(), message, location),
            ApiError::Op(e) => (op_status(&e), e.to_string(), None),
            ApiError::Internal(detail) => {
                // Inside the request's span: the log line carries `request_id`.
                tracing::error!(error = %detail, "internal error");
                let message = match crate::request_id::current() {
                    Some(id) => format!("internal error (request id {id})"),
                    None => "internal error".to_string(),
                };
                (ErrorCode::Internal.status(), message, None)
            }
        };
        (
            status,
            Json(ErrorBody {
                code,
                message,
                location,
            }),
        )
            .into_response()
    }
}

impl From<changegate_store::StoreError> for ApiError {
    fn from(e: changegate_store::StoreError) -> Self {
        if e.is_unavailable() {
            ApiError::unavailable()
        } else {
            ApiError::internal(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_documented_with_its_status_in_docs_api_md() {
        let doc = include_str!("../../../docs/api.md");
        for c in ErrorCode::ALL {
            let row = format!("| `{c}` | {} | {} |", c.status().as_u16(), c.description());
            assert!(doc.contains(&row), "docs/api.md lacks the row {row}");
        }
        let problems =
            changegate_codes::problems(&<ErrorCode as changegate_codes::CodeSet>::entries(), &[]);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
