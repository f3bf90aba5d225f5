//! One error type for every handler. Client errors say what and where; internal errors are logged
//! with the request id and shown to the client only as "internal error".

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
    /// 400: the request is malformed.
    #[error("{message}")]
    BadRequest {
        /// Code.
        code: String,
        /// Message.
        message: String,
        /// Where.
        location: Option<String>,
    },
    /// 401: no or bad token.
    #[error("authentication required")]
    Unauthorized,
    /// 403: authenticated, not allowed.
    #[error("{message}")]
    Forbidden {
        /// Code.
        code: String,
        /// Message.
        message: String,
    },
    /// 404.
    #[error("{0} not found")]
    NotFound(String),
    /// 409: the request conflicts with the state (invalid transition, duplicate, refused rule).
    #[error("{message}")]
    Conflict {
        /// Code.
        code: String,
        /// Message.
        message: String,
    },
    /// 422: a policy rule refused the command.
    #[error("{message}")]
    Refused {
        /// Code.
        code: String,
        /// Message.
        message: String,
    },
    /// 503: the database is unreachable.
    #[error("service unavailable")]
    Unavailable,
    /// 500: a bug or an infrastructure failure (details logged, not shown).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a code and location.
    pub fn bad_request(code: &str, message: impl Into<String>, location: Option<String>) -> Self {
        ApiError::BadRequest {
            code: code.into(),
            message: message.into(),
            location,
        }
    }
    /// A 500 from any error (logged when rendered).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, location) = match self {
            ApiError::BadRequest {
                code,
                message,
                location,
            } => (StatusCode::BAD_REQUEST, code, message, location),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized".into(),
                "a valid API token is required: Authorization: Bearer cg_…".into(),
                Some("header Authorization".into()),
            ),
            ApiError::Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message, None),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not-found".into(),
                format!("{what} not found"),
                None,
            ),
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message, None),
            ApiError::Refused { code, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, message, None)
            }
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable".into(),
                "the database is unavailable".into(),
                None,
            ),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal".into(),
                    "internal error".into(),
                    None,
                )
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

impl From<changegate_gate::ops::OpError> for ApiError {
    fn from(e: changegate_gate::ops::OpError) -> Self {
        use changegate_gate::ops::OpError as E;
        let code = e.code().to_string();
        let message = e.to_string();
        match e {
            E::Transition(_) | E::DuplicateIncident { .. } | E::PushRefused { .. } => {
                ApiError::Conflict { code, message }
            }
            _ => ApiError::Refused { code, message },
        }
    }
}
