//! The request id (`x-request-id`, from the client or made up by the server) in the two places an
//! internal error needs it: the trace span every log line of the request is written in, and the
//! generic message the client gets (so a report quotes the id an operator greps the log for).

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Span;

/// The header the id travels in (set by `SetRequestIdLayer` when the client sent none).
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

fn of<B>(req: &axum::http::Request<B>) -> &str {
    req.headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The trace span of a request: method, path and request id (`TraceLayer::make_span_with`). At
/// INFO, so the id is on every line the request logs under the default filter.
pub fn make_span<B>(req: &axum::http::Request<B>) -> Span {
    tracing::info_span!(
        "request",
        method = %req.method(),
        uri = %req.uri(),
        request_id = %of(req),
    )
}

/// Middleware: run the rest of the request with its id at hand for [`current`].
pub async fn scope(req: Request, next: Next) -> Response {
    let id = of(&req).to_string();
    REQUEST_ID.scope(id, next.run(req)).await
}

/// The id of the request being handled, if any.
pub fn current() -> Option<String> {
    REQUEST_ID
        .try_with(|id| id.clone())
        .ok()
        .filter(|id| !id.is_empty())
}
