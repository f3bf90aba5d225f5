//! The web dashboard (issue 18): server-rendered HTML pages over the same state, the same gate
//! and the same authority checks as the JSON API, served by `changegate serve` itself.
//!
//! - [`session`]: sign-in with an API token (`GET`/`POST /login`) or, where configured, with
//!   GitHub ([`github_login`]), the session cookie (HttpOnly,
//!   `SameSite=Strict`, `Secure` behind TLS), server-side sessions with expiry, sign-out, and the
//!   per-session CSRF token every form carries.
//! - [`pages`]: `/changes`, `/changes/{id}`, `/calendar`, `/rollouts`, `/incidents`, `/reports`,
//!   `/audit`, and the forms behind them (approve, attest, roll back, verify the log).
//! - [`cache`]: what the change list needs per change (repository, required and missing roles),
//!   kept per change version so a list of 10,000 changes renders without parsing 10,000 documents.
//! - [`chart`]: the small server-rendered SVG charts of the rollout page.
//!
//! Templates (askama) are compiled into the binary from `crates/server/templates/dashboard/`; the
//! stylesheet and the vendored htmx (`assets/dashboard/`, 0BSD) are embedded with `include_str!`.
//! Every page works without JavaScript; htmx only refreshes the decision and rollout panels.
//! Writes go through the API's own functions (`apply_change_op`, the rollback routes), so a
//! refused POST is refused by the same code that refuses it over the API.

pub mod cache;
pub mod chart;
pub mod forge;
pub mod github_login;
pub mod metrics;
pub mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::SignedDuration;

use crate::AppState;

/// The vendored htmx (npm `htmx.org` 2.0.11, `dist/htmx.min.js`, 0BSD licence beside it).
pub const HTMX: &str = include_str!("../../assets/dashboard/htmx-2.0.11.min.js");
/// The one stylesheet.
pub const STYLESHEET: &str = include_str!("../../assets/dashboard/dashboard.css");

/// The dashboard's settings and caches (a field of [`AppState`]).
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// How long a session lasts after sign-in (default 8 hours); never longer than its token.
    pub session_lifetime: SignedDuration,
    /// Always mark the session cookie `Secure` (`serve` behind TLS). Without it the cookie is
    /// `Secure` when the request says it came over https (`X-Forwarded-Proto: https`).
    pub secure_cookies: bool,
    /// Rows per page of the change list.
    pub page_size: usize,
    /// Per-change summaries for the list ([`cache::Cache`]).
    pub cache: Arc<cache::Cache>,
    /// Sign in with GitHub ([`github_login`]); `None`: API tokens only.
    pub github_login: Option<Arc<github_login::GithubLogin>>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            session_lifetime: SignedDuration::from_hours(8),
            secure_cookies: false,
            page_size: 50,
            cache: Arc::default(),
            github_login: None,
        }
    }
}

/// The dashboard's routes (merged into [`crate::router`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(session::root))
        .route("/login", get(session::login_page).post(session::login))
        .route("/login/github", get(github_login::start))
        .route("/login/github/callback", get(github_login::callback))
        .route("/logout", post(session::logout))
        .route("/changes", get(pages::changes))
        .route("/changes/{id}", get(pages::change))
        .route("/changes/{id}/approve", post(pages::approve))
        .route("/changes/{id}/attest", post(pages::attest))
        .route("/calendar", get(pages::calendar))
        .route("/rollouts", get(pages::rollouts))
        .route("/rollouts/{change}/rollback", post(pages::rollback))
        .route("/incidents", get(pages::incidents))
        .route("/reports", get(pages::reports))
        .route("/audit", get(pages::audit))
        .route("/audit/verify", post(pages::verify))
        .route("/audit/checkpoint", get(pages::checkpoint))
        .route("/audit/export.jsonl", get(pages::export))
        .route("/audit/proofs/{event}", get(pages::proof))
        .route("/assets/dashboard.css", get(stylesheet))
        .route("/assets/htmx.min.js", get(htmx))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn htmx() -> Response {
    asset("text/javascript; charset=utf-8", HTMX)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The Content-Security-Policy of every page: only this server's scripts, styles and images.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML response with the dashboard's headers (CSP, no caching of pages, no framing).
pub fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// A `303 See Other` to `to` (after a form, or to the sign-in page).
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The code and message of an API error response (any handler's error turned into its JSON
/// body), for a page that shows a refusal.
pub async fn refusal(resp: Response) -> (StatusCode, String, String) {
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let code = v["code"].as_str().unwrap_or("refused").to_string();
    let message = v["message"]
        .as_str()
        .unwrap_or("the server refused the request")
        .to_string();
    (status, code, message)
}
