//! Local stand-ins for the notification receivers that cannot run offline: a Slack incoming
//! webhook, an Atlassian Statuspage API, a generic webhook receiver. Each is a real HTTP server
//! on a loopback port that changegate's real client code talks to, and each enforces what the
//! vendor documents, so a message that breaks a limit fails here as it would there:
//!
//! - Slack (api.slack.com, "Sending messages using incoming webhooks", "Rate limits", Block Kit
//!   reference): a JSON body with `text` or `blocks`; at most 50 blocks; a section's text at most
//!   3,000 characters, a header's plain text at most 150; one message per second per webhook
//!   (beyond it: `429` with `Retry-After`); a bad body is `400 invalid_blocks` / `no_text`.
//! - Statuspage (developer.statuspage.io, "Incidents"): `Authorization: OAuth KEY`; create a
//!   scheduled maintenance with `status = "scheduled"`, `scheduled_for` before `scheduled_until`,
//!   known `component_ids` (else `422`); `PATCH` moves it `scheduled → in_progress → completed`
//!   only forwards; `GET …/incidents/scheduled` lists them.
//! - Webhooks: `X-Changegate-Signature: sha256=<hex HMAC-SHA256>` checked against the secret.
//!
//! Every stand-in honours the `Idempotency-Key` a message carries: a second delivery of a key is
//! answered as a success but not shown again, which is how a receiver sees an at-least-once
//! sender's message once. [`Received::held`] makes the stand-in take a message in and then not
//! answer until released (a sender killed between sending and marking it sent).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};

/// What a stand-in received.
#[derive(Debug, Default)]
pub struct Received {
    /// Every request body, as sent (also repeats).
    pub requests: Vec<Value>,
    /// The messages shown (once per idempotency key).
    pub shown: Vec<Value>,
    /// Requests refused, with the status and why.
    pub refused: Vec<(u16, String)>,
    /// Idempotency keys seen.
    keys: Vec<String>,
    /// Slack: when the last message was accepted, per webhook path.
    last: BTreeMap<String, Instant>,
    /// Statuspage: incidents by id.
    pub incidents: BTreeMap<String, Value>,
    /// While true, a message is taken in (recorded) but not answered.
    pub held: bool,
    /// Statuspage: the next creation is stored but answered `502`, as when the connection drops
    /// after the receiver acted (or the sender dies before noting the answer).
    pub lose_next_create_answer: bool,
}

/// A running stand-in.
#[derive(Clone)]
pub struct StandIn {
    /// Its address.
    pub addr: SocketAddr,
    /// What it received.
    pub state: Arc<Mutex<Received>>,
    /// Released when holding ends.
    pub release: Arc<tokio::sync::Notify>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<Received>>,
    release: Arc<tokio::sync::Notify>,
    api_key: String,
    components: Vec<String>,
    secret: Vec<u8>,
    per_second: Duration,
}

impl StandIn {
    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A Slack incoming webhook URL on this stand-in.
    pub fn slack_url(&self, path: &str) -> String {
        format!("{}/services/{path}", self.url())
    }

    /// The messages shown so far.
    pub fn shown(&self) -> Vec<Value> {
        self.state.lock().unwrap().shown.clone()
    }

    /// How many requests arrived (repeats included).
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// The refusals so far.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.state.lock().unwrap().refused.clone()
    }

    /// Take messages in without answering (or answer again).
    pub fn hold(&self, on: bool) {
        self.state.lock().unwrap().held = on;
        if !on {
            self.release.notify_waiters();
        }
    }

    /// Start one on a loopback port: `api_key` for Statuspage, its `components`, `secret` for
    /// signed webhooks.
    pub async fn start(api_key: &str, components: &[&str], secret: &str) -> StandIn {
        let state = Arc::new(Mutex::new(Received::default()));
        let release = Arc::new(tokio::sync::Notify::new());
        let shared = Shared {
            state: state.clone(),
            release: release.clone(),
            api_key: api_key.to_string(),
            components: components.iter().map(|c| c.to_string()).collect(),
            secret: secret.as_bytes().to_vec(),
            per_second: Duration::from_secs(1),
        };
        let app = Router::new()
            .route("/services/{*path}", post(slack))
            .route("/pages/{page}/incidents", post(sp_create))
            .route("/pages/{page}/incidents/scheduled", get(sp_list))
            .route("/pages/{page}/incidents/{id}", patch(sp_update))
            .route("/hooks/{*path}", post(hook))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn {
            addr,
            state,
            release,
        }
    }
}

fn refuse(s: &Shared, status: StatusCode, why: &str) -> Response {
    s.state
        .lock()
        .unwrap()
        .refused
        .push((status.as_u16(), why.to_string()));
    (status, why.to_string()).into_response()
}

/// Record the request; `true` when its idempotency key was seen (a repeat: not shown again).
fn take(s: &Shared, headers: &HeaderMap, body: &Value) -> bool {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut st = s.state.lock().unwrap();
    st.requests.push(body.clone());
    match key {
        Some(k) if st.keys.contains(&k) => true,
        Some(k) => {
            st.keys.push(k);
            false
        }
        None => false,
    }
}

/// While held, the message is in (shown) but the answer waits until released.
async fn hold(s: &Shared) {
    let notified = s.release.notified();
    if s.state.lock().unwrap().held {
        notified.await;
    }
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

async fn slack(
    State(s): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refuse(&s, StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let blocks = v["blocks"].as_array().cloned().unwrap_or_default();
    if v["text"].as_str().is_none_or(str::is_empty) && blocks.is_empty() {
        return refuse(&s, StatusCode::BAD_REQUEST, "no_text");
    }
    if blocks.len() > 50 {
        return refuse(
            &s,
            StatusCode::BAD_REQUEST,
            "invalid_blocks: more than 50 blocks",
        );
    }
    for b in &blocks {
        let bad = match b["type"].as_str() {
            Some("section") => chars(&b["text"]["text"]) > 3000,
            Some("header") => chars(&b["text"]["text"]) > 150 || b["text"]["type"] != "plain_text",
            Some("context") | Some("divider") => false,
            _ => true,
        };
        if bad {
            return refuse(&s, StatusCode::BAD_REQUEST, "invalid_blocks");
        }
    }
    {
        let mut st = s.state.lock().unwrap();
        let now = Instant::now();
        if let Some(t) = st.last.get(&path)
            && now.duration_since(*t) < s.per_second
        {
            drop(st);
            let mut r = refuse(&s, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            r.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            return r;
        }
        st.last.insert(path.clone(), now);
    }
    if !take(&s, &headers, &v) {
        s.state
            .lock()
            .unwrap()
            .shown
            .push(json!({ "path": path, "body": v }));
    }
    hold(&s).await;
    (StatusCode::OK, "ok").into_response()
}

fn sp_auth(s: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("OAuth {}", s.api_key))
}

async fn sp_create(
    State(s): State<Shared>,
    Path(page): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !sp_auth(&s, &headers) {
        return refuse(&s, StatusCode::UNAUTHORIZED, "invalid api key");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refuse(&s, StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let inc = &v["incident"];
    if inc["name"].as_str().is_none_or(str::is_empty) {
        return refuse(&s, StatusCode::UNPROCESSABLE_ENTITY, "name can't be blank");
    }
    if inc["status"] != "scheduled" {
        return refuse(
            &s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "status must be scheduled",
        );
    }
    let t = |k: &str| {
        inc[k]
            .as_str()
            .and_then(|x| x.parse::<jiff::Timestamp>().ok())
    };
    match (t("scheduled_for"), t("scheduled_until")) {
        (Some(a), Some(b)) if a < b => {}
        _ => {
            return refuse(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                "scheduled_for must be before scheduled_until",
            );
        }
    }
    for c in inc["component_ids"].as_array().into_iter().flatten() {
        if !s.components.iter().any(|k| c == k.as_str()) {
            return refuse(&s, StatusCode::UNPROCESSABLE_ENTITY, "unknown component");
        }
    }
    take(&s, &headers, &v);
    let mut st = s.state.lock().unwrap();
    let id = format!("inc{}", st.incidents.len() + 1);
    let mut out = inc.clone();
    out["id"] = json!(id);
    out["page_id"] = json!(page);
    st.incidents.insert(id.clone(), out.clone());
    st.shown.push(out.clone());
    if std::mem::take(&mut st.lose_next_create_answer) {
        return (StatusCode::BAD_GATEWAY, "upstream connection lost").into_response();
    }
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

async fn sp_list(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !sp_auth(&s, &headers) {
        return refuse(&s, StatusCode::UNAUTHORIZED, "invalid api key");
    }
    let st = s.state.lock().unwrap();
    let list: Vec<Value> = st.incidents.values().cloned().collect();
    axum::Json(list).into_response()
}

async fn sp_update(
    State(s): State<Shared>,
    Path((_page, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !sp_auth(&s, &headers) {
        return refuse(&s, StatusCode::UNAUTHORIZED, "invalid api key");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refuse(&s, StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let order = ["scheduled", "in_progress", "verifying", "completed"];
    let mut st = s.state.lock().unwrap();
    let Some(inc) = st.incidents.get_mut(&id) else {
        drop(st);
        return refuse(&s, StatusCode::NOT_FOUND, "no such incident");
    };
    let from = order.iter().position(|x| inc["status"] == *x);
    let to = v["incident"]["status"]
        .as_str()
        .and_then(|x| order.iter().position(|o| *o == x));
    match (from, to) {
        (Some(a), Some(b)) if b > a => {
            inc["status"] = json!(order[b]);
            let out = inc.clone();
            st.requests.push(v);
            (StatusCode::OK, axum::Json(out)).into_response()
        }
        _ => {
            drop(st);
            refuse(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                "a scheduled maintenance only moves forward",
            )
        }
    }
}

async fn hook(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    use hmac::{KeyInit, Mac};
    let sig = headers
        .get("x-changegate-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&s.secret).unwrap();
    mac.update(&body);
    if sig.is_none_or(|sig| mac.verify_slice(&sig).is_err()) {
        return refuse(&s, StatusCode::UNAUTHORIZED, "bad signature");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refuse(&s, StatusCode::BAD_REQUEST, "invalid JSON");
    };
    if !take(&s, &headers, &v) {
        s.state.lock().unwrap().shown.push(v);
    }
    hold(&s).await;
    StatusCode::NO_CONTENT.into_response()
}
