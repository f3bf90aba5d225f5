//! The changegate server: an axum app over the pure gate and the store.
//!
//! The router is built by [`router`] (one module per resource under [`routes`]) so tests run it
//! in-process or on a loopback port; state holds the policy and the database handle ([`Db`], the
//! store behind `Arc<dyn changegate_store::ServerStore>`: no SQL in this crate). Every write is authenticated (API tokens bound to a person),
//! authorised by the caller's identity (non-admin tokens act only as themselves; the gate checks
//! role holders and separation of duties), validated by `changegate_gate::ops`, and stored with its
//! audit event in one transaction. Reads need a token too, except the health endpoints and the
//! OpenAPI document.
#![deny(missing_docs)]

pub mod background_cpu;
pub mod dashboard;
pub mod db;
pub mod deliveries;
pub mod error;
pub mod extract;
pub mod github;
pub mod github_out;
pub mod github_runs;
pub mod mirror;
pub mod notify;
pub mod observe;
pub mod reports_schedule;
pub mod request_id;
pub mod rollouts;
pub mod routes;
pub mod signature;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use changegate_policy::Policy;
use jiff::Timestamp;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use db::Db;
pub use error::{ApiError, ErrorCode};

/// The OpenAPI document served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Where "now" comes from. Production uses the system clock; tests may start the clock at a fixed
/// instant (it then advances in real time), which the server logs loudly at start.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock.
    System,
    /// `start` at process start, advancing with the monotonic clock.
    From {
        /// The instant the clock starts at.
        start: Timestamp,
        /// When the process started.
        since: std::time::Instant,
    },
    /// Set by the embedding program (tests replay scenarios at given instants). Only reachable
    /// through the library, never from the command line.
    Manual(Arc<std::sync::Mutex<Timestamp>>),
}

impl Clock {
    /// Now.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::From { start, since } => {
                let elapsed = jiff::SignedDuration::try_from(since.elapsed()).unwrap_or_default();
                start.checked_add(elapsed).unwrap_or(*start)
            }
            Clock::Manual(t) => *t.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The effective policy.
    pub policy: Arc<Policy>,
    /// Database.
    pub db: Db,
    /// Clock.
    pub clock: Clock,
    /// Local repositories under this directory may be classified by the server
    /// (`POST /api/v1/changes` without a classification). `None` disables it.
    pub repo_root: Option<std::path::PathBuf>,
    /// GitHub's API, for changes created from a pull request (`{"pr": "owner/repo#42"}`).
    pub github: Option<github::GitHub>,
    /// The manual rollback actions (`serve --rollback-action`, `--database-rollback-action`).
    pub rollback: routes::rollbacks::RollbackActions,
    /// Bare mirrors of remote repositories (`serve --mirror-dir`): a change whose `repository`
    /// is an allowed URL (or a configured name) is classified from them. `None` disables it.
    pub mirrors: Option<Arc<mirror::Mirrors>>,
    /// Incoming webhooks: PagerDuty secrets, the delivery worker's wake-up.
    pub webhooks: routes::webhooks::Webhooks,
    /// Server-run rollouts (`serve --rollout-config FILE`); `None`: starting one is refused.
    pub rollouts: Option<Arc<rollouts::Runtime>>,
    /// What the server sends back to GitHub (check runs, PR comments, deployment protection
    /// rule answers); `None`: nothing is sent.
    pub github_out: Option<Arc<github_out::app::Outgoing>>,
    /// The web dashboard's settings and caches (session lifetime, secure cookies).
    pub dashboard: dashboard::Dashboard,
    /// What the server read from repositories between two commit ids (classification, people),
    /// so a burst of deliveries on the same commits reads each pair once.
    pub observed: Arc<observe::ObservationCache>,
}

impl AppState {
    /// A state with the policy, database and clock and every optional part off: no local
    /// repositories, no GitHub, no mirrors, no rollback actions, no webhook secrets, no rollouts.
    /// Callers set what they need with struct update syntax
    /// (`AppState { rollouts: Some(..), ..AppState::new(policy, db, clock) }`), so adding a field
    /// here means giving it a default here and nowhere else.
    pub fn new(policy: Arc<Policy>, db: Db, clock: Clock) -> Self {
        AppState {
            policy,
            db,
            clock,
            repo_root: None,
            github: None,
            rollback: Default::default(),
            mirrors: None,
            webhooks: Default::default(),
            rollouts: None,
            github_out: None,
            dashboard: Default::default(),
            observed: Default::default(),
        }
    }

    /// Now, by the state's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// Every route, for the OpenAPI consistency test: (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/health"),
    ("get", "/api/v1/health/database"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/changes"),
    ("post", "/api/v1/changes"),
    ("post", "/api/v1/changes/import"),
    ("get", "/api/v1/changes/{id}"),
    ("post", "/api/v1/changes/{id}/approvals"),
    ("post", "/api/v1/changes/{id}/attestations"),
    ("post", "/api/v1/changes/{id}/exceptions"),
    ("post", "/api/v1/changes/{id}/ops"),
    ("get", "/api/v1/changes/{id}/decision"),
    ("get", "/api/v1/changes/{id}/rollouts"),
    ("post", "/api/v1/changes/{id}/rollouts"),
    ("get", "/api/v1/incidents"),
    ("post", "/api/v1/incidents"),
    ("post", "/api/v1/incidents/{id}/resolve"),
    ("post", "/api/v1/announcements"),
    ("get", "/api/v1/overdue"),
    ("put", "/api/v1/teams/{name}"),
    ("put", "/api/v1/aliases/{alias}"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/changes/{id}/rollbacks"),
    ("post", "/api/v1/changes/{id}/rollbacks"),
    ("get", "/api/v1/changes/{id}/rollbacks/{rid}"),
    ("post", "/api/v1/changes/{id}/rollbacks/{rid}/approvals"),
    ("post", "/api/v1/changes/{id}/rollbacks/{rid}/post-mortem"),
    ("post", "/api/v1/changes/{id}/rollback-tests"),
    ("post", "/api/v1/changes/{id}/duties/{duty}"),
    ("post", "/api/v1/gates/flagger/confirm-rollout"),
    ("post", "/api/v1/gates/flagger/confirm-promotion"),
    ("post", "/api/v1/gates/flagger/rollback"),
    ("get", "/api/v1/gates/argo/changes/{id}"),
    ("post", "/api/v1/webhooks/pagerduty"),
    ("post", "/api/v1/webhooks/alertmanager"),
    ("post", "/api/v1/webhooks/github"),
    ("get", "/api/v1/deliveries"),
    ("post", "/api/v1/deliveries/{row}/retry"),
    ("get", "/api/v1/reports/monthly/{month}"),
    ("get", "/api/v1/reports/quarterly/{quarter}"),
    ("post", "/api/v1/reports/monthly/{month}/signoffs"),
    ("post", "/api/v1/reports/quarterly/{quarter}/signoffs"),
    // The web dashboard (issue 18, `dashboard`): HTML pages and their forms.
    ("get", "/"),
    ("get", "/login"),
    ("post", "/login"),
    ("get", "/login/github"),
    ("get", "/login/github/callback"),
    ("post", "/logout"),
    ("get", "/changes"),
    ("get", "/changes/{id}"),
    ("post", "/changes/{id}/approve"),
    ("post", "/changes/{id}/attest"),
    ("get", "/calendar"),
    ("get", "/rollouts"),
    ("post", "/rollouts/{change}/rollback"),
    ("get", "/incidents"),
    ("get", "/reports"),
    ("get", "/audit"),
    ("post", "/audit/verify"),
    ("get", "/audit/checkpoint"),
    ("get", "/audit/export.jsonl"),
    ("get", "/audit/proofs/{event}"),
    ("get", "/assets/dashboard.css"),
    ("get", "/assets/htmx.min.js"),
    ("get", "/api/v1/notifications"),
    ("post", "/api/v1/notifications/{id}/retry"),
];

/// The application router: every resource's routes ([`routes::app`]) with the request-id, trace,
/// timeout and body-limit layers.
///
/// Every 4xx and 5xx carries the JSON error body (`{code, message, location}`): unknown routes
/// answer the fallback's `not-found`, and [`json_errors`] rewrites what axum and tower-http answer
/// in plain text or with no body (405, 408, 413, undecodable path parameters and query strings).
/// [`refuse_nul`] refuses a NUL in the path or query before any handler sees it.
pub fn router(state: AppState) -> Router {
    routes::app()
        .merge(dashboard::router())
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(refuse_nul))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn(request_id::scope))
        .layer(TraceLayer::new_for_http().make_span_with(request_id::make_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Refuse a request whose path or query string decodes to a NUL character (`%00`): path
/// parameters (change ids, team names, aliases) are stored or looked up as text, which PostgreSQL
/// refuses with NUL and SQLite would store. (Header values cannot carry NUL: HTTP forbids it.)
pub async fn refuse_nul(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    let nul = |s: &str| s.contains("%00");
    let at = if nul(uri.path()) {
        Some("path")
    } else if uri.query().is_some_and(nul) {
        Some("query")
    } else {
        None
    };
    match at {
        Some(at) => ApiError::new(
            ErrorCode::NulCharacter,
            format!("the {at} contains a NUL character (%00), which is not accepted"),
        )
        .at(at)
        .into_response(),
        None => next.run(req).await,
    }
}

/// Give every error response the JSON error body: a 4xx or 5xx that is not JSON (axum's
/// rejections of path parameters and query strings answer plain text; 405, and tower-http's 408
/// and 413, answer with no body or plain text) becomes [`error::from_rejection`]'s error, with the
/// same status and the other headers kept (`Allow` of a 405).
pub async fn json_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    use axum::response::IntoResponse;
    let resp = next.run(req).await;
    let status = resp.status();
    // The dashboard's pages answer errors as HTML pages; they pass as they are.
    let json = resp.headers().get(CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
    });
    if json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut out = error::from_rejection(status, &text).into_response();
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// The gate's view of a classification: the category level, the facets with their roles,
/// levels, details and evidence (file and line), and the roles required. (The one conversion from `changegate_classify` to
/// `changegate_gate`, used by server-side classification and by `changegate gate`.)
pub fn classified_change(
    c: &changegate_classify::Classification,
) -> changegate_gate::ClassifiedChange {
    changegate_gate::ClassifiedChange {
        category: c.category.level,
        facets: c
            .facets
            .iter()
            .map(|f| changegate_gate::ClassifiedFacet {
                kind: f.facet.kind.to_string(),
                roles: f.roles.clone(),
                category: f.category,
                details: f.facet.details.clone(),
                evidence: f
                    .facet
                    .evidence
                    .iter()
                    .take(changegate_gate::ClassifiedFacet::EVIDENCE_KEPT)
                    .map(|e| changegate_gate::FacetEvidence {
                        path: e.path.clone(),
                        line: e.line,
                        side: match e.side {
                            changegate_classify::Side::Base => changegate_gate::EvidenceSide::Base,
                            changegate_classify::Side::Head => changegate_gate::EvidenceSide::Head,
                        },
                    })
                    .collect(),
                more_evidence: u32::try_from(
                    f.facet
                        .evidence
                        .len()
                        .saturating_sub(changegate_gate::ClassifiedFacet::EVIDENCE_KEPT),
                )
                .unwrap_or(u32::MAX),
            })
            .collect(),
        required_roles: c.roles.iter().map(|r| r.role.clone()).collect(),
    }
}

/// Serve until ctrl-c / SIGTERM, then finish in-flight requests. With rollouts configured, the
/// rollout worker ([`rollouts::worker::run`]) runs beside the listener and stops with it.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "changegate server listening");
    let worker = state
        .rollouts
        .clone()
        .map(|rt| changegate_store::spawn_background(rollouts::worker::run(state.clone(), rt)));
    let _stop = AbortOnDrop(worker);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

/// Aborts the worker when `serve` returns or its future is dropped (a killed server task).
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
