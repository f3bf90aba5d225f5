//! An internal error, end to end through the router (in process, on one thread, so the test's
//! subscriber sees every line): its log line carries the request id the client sent (or was
//! given), and the client sees only a generic message with that id. The store is a stand-in
//! behind `ServerStore` whose reads fail with what a database error can carry.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use changegate_audit::AuditEvent;
use changegate_gate::{ChangeState, WorldState};
use changegate_store::{
    Appended, Backend, BoxFuture, ChangeAndWorld, ChangeSummary, NewTokenRow, Revocation,
    ServerStore, Store, StoreConfig, StoreError, TokenInfo, TokenKind, TokenRow, Versioned,
};
use jiff::Timestamp;
use tower::ServiceExt as _;

use changegate_server::token::NewToken;
use changegate_server::{AppState, Clock, Db};

/// What a database failure can carry: a file path and the SQL that failed.
const LEAK: &str = "no such column: statee in SELECT statee FROM server_change (/srv/changegate/data/changegate.db)";

/// A store whose every read fails with [`LEAK`], except the token lookup (one admin token).
#[derive(Debug)]
struct Broken {
    log: Store,
    token: TokenRow,
    token_id: String,
}

fn leak<T>() -> BoxFuture<'static, changegate_store::Result<T>> {
    Box::pin(async { Err(StoreError::Corrupt(LEAK.into())) })
}

impl ServerStore for Broken {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }
    fn now(&self) -> Timestamp {
        self.log.now()
    }
    fn audit_log(&self) -> &Store {
        &self.log
    }
    fn ping(&self) -> BoxFuture<'_, changegate_store::Result<()>> {
        leak()
    }
    fn token_count(&self) -> BoxFuture<'_, changegate_store::Result<i64>> {
        leak()
    }
    fn create_token<'a>(
        &'a self,
        _: NewTokenRow<'a>,
    ) -> BoxFuture<'a, changegate_store::Result<()>> {
        leak()
    }
    fn find_token<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, changegate_store::Result<Option<TokenRow>>> {
        let row = (id == self.token_id).then(|| self.token.clone());
        Box::pin(async move { Ok(row) })
    }
    fn list_tokens(&self) -> BoxFuture<'_, changegate_store::Result<Vec<TokenInfo>>> {
        leak()
    }
    fn revoke_token<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, changegate_store::Result<Revocation>> {
        leak()
    }
    fn change<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, changegate_store::Result<Option<Versioned<ChangeState>>>> {
        leak()
    }
    fn change_and_world<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, changegate_store::Result<Option<ChangeAndWorld>>> {
        leak()
    }
    fn idempotent<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, changegate_store::Result<Option<String>>> {
        leak()
    }
    fn create_change<'a>(
        &'a self,
        _: &'a ChangeState,
        _: AuditEvent,
        _: Option<(&'a str, &'a str)>,
    ) -> BoxFuture<'a, changegate_store::Result<Versioned<ChangeState>>> {
        leak()
    }
    fn update_change<'a>(
        &'a self,
        _: &'a str,
        _: i64,
        _: &'a ChangeState,
        _: AuditEvent,
    ) -> BoxFuture<'a, changegate_store::Result<Option<Versioned<ChangeState>>>> {
        leak()
    }
    fn list_changes(&self) -> BoxFuture<'_, changegate_store::Result<Vec<ChangeSummary>>> {
        leak()
    }
    fn world(&self) -> BoxFuture<'_, changegate_store::Result<Versioned<WorldState>>> {
        leak()
    }
    fn update_world<'a>(
        &'a self,
        _: i64,
        _: &'a WorldState,
        _: AuditEvent,
    ) -> BoxFuture<'a, changegate_store::Result<Option<Versioned<WorldState>>>> {
        leak()
    }
    fn record(&self, _: AuditEvent) -> BoxFuture<'_, changegate_store::Result<Appended>> {
        leak()
    }
}

/// Log lines, as the server's subscriber would write them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

async fn get(
    app: &axum::Router,
    token: &NewToken,
    request_id: Option<&str>,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let mut req = Request::get("/api/v1/changes")
        .header("authorization", format!("Bearer {}", token.plaintext));
    if let Some(id) = request_id {
        req = req.header("x-request-id", id);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, id, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn internal_errors_are_logged_and_answered_with_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let token = changegate_server::token::mint();
    let broken = Broken {
        log: Store::open(StoreConfig::new(dir.path())).await.unwrap(),
        token: TokenRow {
            digest: token.digest.clone(),
            person: "admin".into(),
            admin: true,
            revoked: false,
            kind: TokenKind::Admin,
            scopes: Vec::new(),
            expires_at: None,
        },
        token_id: token.id.clone(),
    };
    let app = changegate_server::router(AppState::new(
        Arc::new(changegate_policy::load_default().policy),
        Db::new(Arc::new(broken)),
        Clock::System,
    ));
    let logs = Captured::default();
    let writer = logs.clone();
    // The filter `changegate serve` uses by default.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("info,tower_http=warn")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // The id the client sent, and one the server made up.
    let (status, echoed, sent_body) = get(&app, &token, Some("client-req-42")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(echoed.as_deref(), Some("client-req-42"));
    let (status, made_up, made_up_body) = get(&app, &token, None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let made_up = made_up.expect("the server sets x-request-id");
    assert!(!made_up.is_empty());

    let log = logs.text();
    for (id, body) in [
        ("client-req-42", &sent_body),
        (made_up.as_str(), &made_up_body),
    ] {
        // The operator's side: the error's line names the request and the cause.
        let line = log
            .lines()
            .find(|l| l.contains("internal error") && l.contains(id))
            .unwrap_or_else(|| panic!("no log line with request id {id} in:\n{log}"));
        assert!(line.contains(&format!("request_id={id}")), "{line}");
        assert!(line.contains("ERROR") && line.contains(LEAK), "{line}");
        // The client's side: a generic message with the id, nothing internal.
        assert_eq!(body["code"], "internal");
        assert_eq!(
            body["message"],
            format!("internal error (request id {id})").as_str()
        );
        let text = body.to_string();
        for secret in [
            "SELECT",
            "server_change",
            "/srv/",
            "changegate.db",
            "column",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}
