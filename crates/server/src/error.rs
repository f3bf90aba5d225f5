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
        /// The API token presented has expired.
        TokenExpired = "token-expired",
        /// The API token presented was revoked.
        TokenRevoked = "token-revoked",
        /// The route, change or other resource does not exist.
        NotFound = "not-found",
        /// The database cannot be reached right now.
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
        /// The token lacks the scope this needs (an integration token's named scopes).
        ScopeRequired = "scope-required",
        /// A person name is empty or not `[a-z0-9][a-z0-9._-]*` (at most 64 characters).
        InvalidPersonName = "invalid-person-name",
        /// An integration name is empty or not `[a-z0-9][a-z0-9._-]*` (at most 64 characters).
        InvalidIntegrationName = "invalid-integration-name",
        /// A token scope the server does not know.
        UnknownScope = "unknown-scope",
        /// Scopes given to a person or admin token, or none to an integration token.
        InvalidScopes = "invalid-scopes",
        /// A token expiry is malformed or not in the future.
        InvalidExpiry = "invalid-expiry",
        /// The token may not send a classification: the server classifies the commits itself and accepts one only from a token allowed to classify.
        ClassificationNotAllowed = "classification-not-allowed",
        /// Only the integration that observed the push (an admin or integration token) may name the last pusher.
        LastPusherNotAllowed = "last-pusher-not-allowed",
        /// The request carries what only the server observes (a push's `observed`).
        ObservationNotAllowed = "observation-not-allowed",
        /// A change with this id already exists.
        ChangeExists = "change-exists",
        /// The team's members are read from GitHub (`[integrations.github] teams`); change them on GitHub.
        TeamManagedByGithub = "team-managed-by-github",
        /// Others kept changing the same document; the request may be retried.
        ConcurrentUpdate = "concurrent-update",
        /// Starting the deployment was refused because the gate denies it now.
        GateDenied = "gate-denied",
        /// A string of the input (body, path or query) contains a NUL character (U+0000).
        NulCharacter = "nul-character",
        /// A path parameter could not be decoded (e.g. percent-encoding that is not UTF-8).
        InvalidPath = "invalid-path",
        /// The query string could not be decoded for this route.
        InvalidQuery = "invalid-query",
        /// The route exists, but not for this HTTP method (see the `Allow` header).
        MethodNotAllowed = "method-not-allowed",
        /// The request took longer than the server allows.
        RequestTimeout = "request-timeout",
        /// The request was refused before it reached a handler, for a reason no other code names.
        BadRequest = "bad-request",
        /// The path under the repo root is not itself a git repository (the server never looks in parent directories).
        NotARepository = "not-a-repository",
        /// GitHub's API cannot be reached (connection refused, DNS, timeout).
        GithubUnreachable = "github-unreachable",
        /// GitHub's API answered something the server cannot use (refused the server's token, an error status, an unexpected body).
        GithubError = "github-error",
        /// The repository URL is not one the server fetches: a scheme other than https, http, ssh or git, credentials in the URL, a query, or a path with `.`, `..` or percent-encoding.
        InvalidRepositoryUrl = "invalid-repository-url",
        /// The repository URL matches no remote of the server's mirror allow-list (`serve --mirror-config`); nothing is fetched.
        RepositoryNotAllowed = "repository-not-allowed",
        /// The repository's remote cannot be reached (connection refused, DNS, timeout).
        RemoteUnreachable = "remote-unreachable",
        /// The repository's remote refused the server's credentials (or asked for credentials the server has none for).
        RemoteAuthFailed = "remote-auth-failed",
        /// The repository's remote answered, but fetching the commits failed (it does not have or serve the repository, or git failed).
        RemoteFetchFailed = "remote-fetch-failed",
        /// A person attested a CI-evidence item with a link that is not a GitHub Actions workflow run of the server's GitHub (`https://HOST/OWNER/REPO/actions/runs/ID`): it cannot be verified, so it does not count.
        CiLinkUnverifiable = "ci-link-unverifiable",
        /// The linked workflow run is of another repository or another commit than the change's head.
        CiRunMismatch = "ci-run-mismatch",
        /// The linked workflow run has not completed, or did not conclude `success`.
        CiRunNotSuccessful = "ci-run-not-successful",
        /// GitHub knows no such workflow run.
        CiRunNotFound = "ci-run-not-found",
        /// The request carries a verified CI run (`verified`), which only the server records.
        VerificationNotAllowed = "verification-not-allowed",
        /// This server has no secret for the webhook's source (PagerDuty: `serve --pagerduty-webhook-secret-file`).
        WebhookNotConfigured = "webhook-not-configured",
        /// The webhook's signature is missing or matches no configured secret; nothing was stored.
        WebhookSignatureInvalid = "webhook-signature-invalid",
        /// The webhook's body is JSON but not the payload its source sends (a required field missing, an unknown status, a payload version not supported).
        WebhookPayloadInvalid = "webhook-payload-invalid",
        /// A GitHub webhook without an `X-Hub-Signature-256` that matches the configured secret (nothing is stored).
        GithubSignatureInvalid = "github-signature-invalid",
        /// The server runs no rollouts (`serve --rollout-config FILE` not given).
        RolloutsNotConfigured = "rollouts-not-configured",
        /// The change already has an active server-run rollout.
        RolloutActive = "rollout-active",
        /// A rollout start named a plan that no approved exception of the change selected: the plan is the one the category requires by the policy.
        PlanNotSelectable = "plan-not-selectable",
        /// A report sign-off by a person who does not hold the reviewer role (directly or through a team).
        ReportSignerUnauthorized = "report-signer-unauthorized",
        /// A dashboard form did not carry the session's CSRF token (missing, another session's, or altered), or the sign-in form did not match its cookie; nothing was done.
        CsrfTokenInvalid = "csrf-token-invalid",
        /// A GitHub sign-in came back without the `state` the server sent with it (missing, expired, another browser's, or forged); nobody was signed in.
        GithubOauthStateInvalid = "github-oauth-state-invalid",
        /// GitHub sign-in: the GitHub user is no person of the policy (`[people.NAME] github`, and `github_id` when given); nobody was signed in.
        GithubUserUnmapped = "github-user-unmapped",
        /// GitHub sign-in: GitHub refused the code exchange or `GET /user` (or did not answer); nobody was signed in.
        GithubOauthFailed = "github-oauth-failed",
        /// GitHub sign-in is not configured on this server (`serve --github-oauth-client-id`).
        GithubOauthNotConfigured = "github-oauth-not-configured",
    }
}

impl ErrorCode {
    /// The HTTP status of a response with this code.
    pub const fn status(self) -> StatusCode {
        use ErrorCode as C;
        match self {
            C::Unauthorized | C::TokenExpired | C::TokenRevoked | C::GithubSignatureInvalid => {
                StatusCode::UNAUTHORIZED
            }
            C::NotFound | C::WebhookNotConfigured | C::GithubOauthNotConfigured => {
                StatusCode::NOT_FOUND
            }
            C::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            C::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            C::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            C::UnsupportedMediaType
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
            | C::PrNotFound
            | C::NulCharacter
            | C::InvalidPath
            | C::InvalidQuery
            | C::BadRequest
            | C::NotARepository
            | C::InvalidPersonName
            | C::InvalidIntegrationName
            | C::UnknownScope
            | C::InvalidScopes
            | C::InvalidExpiry
            | C::InvalidRepositoryUrl
            | C::RepositoryNotAllowed
            | C::WebhookPayloadInvalid => StatusCode::BAD_REQUEST,
            C::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            C::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            C::GithubUnreachable
            | C::GithubError
            | C::RemoteUnreachable
            | C::RemoteAuthFailed
            | C::RemoteFetchFailed
            | C::GithubOauthFailed => StatusCode::BAD_GATEWAY,
            C::ImpersonationForbidden
            | C::AdminRequired
            | C::ScopeRequired
            | C::ClassificationNotAllowed
            | C::LastPusherNotAllowed
            | C::ObservationNotAllowed
            | C::CiLinkUnverifiable
            | C::CiRunMismatch
            | C::CiRunNotSuccessful
            | C::CiRunNotFound
            | C::VerificationNotAllowed
            | C::WebhookSignatureInvalid
            | C::ReportSignerUnauthorized
            | C::CsrfTokenInvalid
            | C::GithubOauthStateInvalid
            | C::GithubUserUnmapped => StatusCode::FORBIDDEN,
            C::ChangeExists | C::ConcurrentUpdate | C::TeamManagedByGithub => StatusCode::CONFLICT,
            C::GateDenied | C::PlanNotSelectable => StatusCode::UNPROCESSABLE_ENTITY,
            C::RolloutsNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            C::RolloutActive => StatusCode::CONFLICT,
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
        use changegate_store::StoreError;
        match e {
            // A concurrent create of the same id won (the database's unique key decided).
            StoreError::ChangeExists(id) => ApiError::new(
                ErrorCode::ChangeExists,
                format!("change {id} already exists"),
            ),
            // PostgreSQL refuses NUL in text (`22021`); the extractors refuse it first, this
            // is the backstop for a string that reached the store another way.
            e if e.is_nul_refusal() => ApiError::new(
                ErrorCode::NulCharacter,
                "the input contains a NUL character (U+0000), which is not accepted",
            ),
            e if e.is_unavailable() => ApiError::unavailable(),
            e => ApiError::internal(e),
        }
    }
}

/// The JSON error of a response that left the router without one (axum's and tower-http's own
/// rejections answer plain text or nothing): its status says which, `text` is the rejection's
/// plain-text body, if any. See [`crate::json_errors`].
pub fn from_rejection(status: StatusCode, text: &str) -> ApiError {
    let text = text.trim();
    let said = |default: &str| {
        if text.is_empty() {
            default.to_string()
        } else {
            text.to_string()
        }
    };
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not accept this method (see the Allow header)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::BodyTooLarge,
            format!(
                "the body is larger than the server accepts ({} bytes)",
                crate::BODY_LIMIT
            ),
        )
        .at("body"),
        StatusCode::REQUEST_TIMEOUT => ApiError::new(
            ErrorCode::RequestTimeout,
            "the request took longer than the server allows",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            said("the body must be JSON with Content-Type: application/json"),
        )
        .at("header Content-Type"),
        StatusCode::BAD_REQUEST if text.starts_with("Failed to deserialize query string") => {
            ApiError::new(ErrorCode::InvalidQuery, text).at("query")
        }
        StatusCode::BAD_REQUEST
            if text.starts_with("Invalid URL") || text.contains("path param") =>
        {
            ApiError::new(ErrorCode::InvalidPath, text).at("path")
        }
        s if s.is_client_error() => ApiError::new(
            ErrorCode::BadRequest,
            said(s.canonical_reason().unwrap_or("bad request")),
        ),
        s => ApiError::internal(format!("{s} without an error body: {text}")),
    }
}

/// A failure to classify a repository under the repo root, as the API answers it:
/// `not-a-repository` when the path is not itself a repository, `repository-outside-root` when
/// its git directory lies outside the root, else `classify-failed`. The message names the
/// repository as the client gave it (`shown`) and never the server's absolute paths: the repo
/// root (as configured and canonical) is replaced by `<repo-root>`.
pub fn classify_failed(
    e: &changegate_classify::ClassifyError,
    root: &std::path::Path,
    shown: &str,
) -> ApiError {
    use changegate_classify::ClassifyError as E;
    let location = "body `repository`, `base_commit`, `head_commit`";
    match e {
        E::NotARepo { .. } => ApiError::new(
            ErrorCode::NotARepository,
            format!(
                "`{shown}` is not a git repository under the server's repo root (the server opens the directory itself, never a parent)"
            ),
        )
        .at("body `repository`"),
        E::OutsideRoot { .. } => ApiError::new(
            ErrorCode::RepositoryOutsideRoot,
            format!("`{shown}` is a repository whose git directory is outside the server's repo root"),
        )
        .at("body `repository`"),
        e => ApiError::new(ErrorCode::ClassifyFailed, redact_root(&e.to_string(), root)).at(location),
    }
}

/// `message` with every occurrence of `root` (as given and canonical) replaced by `<repo-root>`.
pub fn redact_root(message: &str, root: &std::path::Path) -> String {
    let mut out = message.to_string();
    let mut forms = vec![root.to_path_buf()];
    if let Ok(c) = std::fs::canonicalize(root) {
        forms.push(c);
    }
    // Longest first, so a canonical form that extends the given one is replaced whole.
    forms.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for f in forms {
        let f = f.to_string_lossy();
        let f = f.trim_end_matches('/');
        if !f.is_empty() {
            out = out.replace(f, "<repo-root>");
        }
    }
    out
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
