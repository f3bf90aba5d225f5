//! A server with webhooks configured and, when asked, its delivery worker, over a real database
//! (SQLite in a temporary folder, or a fresh PostgreSQL schema) that outlives it: `restart`
//! starts a new server and worker on the same database, as a process restart would.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use changegate_policy::Policy;
use changegate_server::deliveries::WorkerConfig;
use changegate_server::routes::webhooks::Webhooks;
use changegate_server::signature::Secret;
use changegate_server::{AppState, Clock, Db};
use changegate_store::{EventFilter, StoreConfig};
use changegate_testkit::server::{Backend, PG_URL};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

pub struct Harness {
    pub base: String,
    pub admin: String,
    pub clock: Arc<Mutex<Timestamp>>,
    pub state: AppState,
    pub http: reqwest::Client,
    pub worker_cfg: WorkerConfig,
    cfg: StoreConfig,
    policy: Policy,
    secrets: Vec<String>,
    dir: Arc<tempfile::TempDir>,
    task: tokio::task::JoinHandle<()>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(w) = &self.worker {
            w.abort();
        }
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "wh_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        Timestamp::now().as_microsecond() % 1_000_000
    )
}

/// A quick worker for tests: polls every 50 ms, retries after 100 ms.
pub fn test_worker() -> WorkerConfig {
    WorkerConfig {
        poll: Duration::from_millis(50),
        backoff: SignedDuration::from_millis(100),
        ..WorkerConfig::default()
    }
}

impl Harness {
    /// A server for `policy` at `at` with these PagerDuty secrets, with a worker or not.
    pub async fn start(
        backend: Backend,
        policy: Policy,
        at: Timestamp,
        secrets: &[&str],
        worker: bool,
    ) -> Harness {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut cfg = StoreConfig::new(dir.path());
        cfg.fields = Some(changegate_audit::FieldPolicy::from_policy(
            &policy.audit.fields,
        ));
        if backend == Backend::Postgres {
            cfg.database_url = Some(PG_URL.into());
            cfg.pg_schema = Some(unique());
        }
        let db = Db::open_with(cfg.clone()).await.expect("open store");
        let t = changegate_server::token::mint();
        db.insert_token(&t, "admin", true).await.unwrap();
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        Self::boot(
            db,
            cfg,
            dir,
            policy,
            secrets,
            Arc::new(Mutex::new(at)),
            t.plaintext,
            worker,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn boot(
        db: Db,
        cfg: StoreConfig,
        dir: Arc<tempfile::TempDir>,
        policy: Policy,
        secrets: Vec<String>,
        clock: Arc<Mutex<Timestamp>>,
        admin: String,
        worker: bool,
    ) -> Harness {
        let webhooks = Webhooks {
            pagerduty_secrets: Arc::new(secrets.iter().filter_map(|s| Secret::new(s)).collect()),
            ..Default::default()
        };
        let state = AppState {
            webhooks,
            ..AppState::new(Arc::new(policy.clone()), db, Clock::Manual(clock.clone()))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            changegate_server::serve(serve_state, listener)
                .await
                .unwrap();
        });
        let worker_cfg = test_worker();
        let worker =
            worker.then(|| changegate_server::deliveries::spawn(state.clone(), worker_cfg.clone()));
        Harness {
            base,
            admin,
            clock,
            state,
            http: reqwest::Client::new(),
            worker_cfg,
            cfg,
            policy,
            secrets,
            dir,
            task,
            worker,
        }
    }

    /// Stop this server (and worker) and start another on the same database and clock.
    pub async fn restart(self, worker: bool) -> Harness {
        self.task.abort();
        if let Some(w) = &self.worker {
            w.abort();
        }
        let db = Db::open_with(self.cfg.clone()).await.expect("reopen store");
        Self::boot(
            db,
            self.cfg.clone(),
            self.dir.clone(),
            self.policy.clone(),
            self.secrets.clone(),
            self.clock.clone(),
            self.admin.clone(),
            worker,
        )
        .await
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    pub fn set_now(&self, at: Timestamp) {
        *self.clock.lock().unwrap() = at;
    }

    pub fn now(&self) -> Timestamp {
        *self.clock.lock().unwrap()
    }

    /// A token for an integration with these scopes.
    pub async fn integration_token(
        &self,
        name: &str,
        scopes: &[changegate_server::token::Scope],
    ) -> String {
        let spec = changegate_server::token::TokenSpec {
            subject: changegate_server::token::Subject::Integration {
                name: name.into(),
                scopes: scopes.to_vec(),
            },
            expires_at: None,
        };
        self.db()
            .issue_token(&spec, self.now(), "changegate")
            .await
            .unwrap()
            .plaintext
    }

    /// A person token.
    pub async fn person_token(&self, person: &str) -> String {
        let t = changegate_server::token::mint();
        self.db().insert_token(&t, person, false).await.unwrap();
        t.plaintext
    }

    /// POST raw bytes with headers.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.req(reqwest::Method::GET, path, &self.admin, None)
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.req(reqwest::Method::POST, path, &self.admin, Some(body))
            .await
    }

    /// The stored deliveries (newest first).
    pub async fn deliveries(&self) -> Vec<Value> {
        let (st, body) = self.get("/api/v1/deliveries").await;
        assert_eq!(st, 200, "{body}");
        body["deliveries"].as_array().unwrap().clone()
    }

    /// Wait until no delivery is pending (at most 10 s).
    pub async fn settle(&self) {
        for _ in 0..400 {
            if self
                .deliveries()
                .await
                .iter()
                .all(|d| d["status"] != "pending")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("deliveries still pending: {:#?}", self.deliveries().await);
    }

    /// The incidents.
    pub async fn incidents(&self) -> Vec<Value> {
        let (st, body) = self.get("/api/v1/incidents").await;
        assert_eq!(st, 200, "{body}");
        body["incidents"].as_array().unwrap().clone()
    }

    /// The incident with this id.
    pub async fn incident(&self, id: &str) -> Option<Value> {
        self.incidents().await.into_iter().find(|i| i["id"] == id)
    }

    /// How many `incident.recorded` events the log holds.
    pub async fn incident_events(&self) -> usize {
        self.db()
            .store()
            .events(&EventFilter {
                kind: Some("incident.recorded".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    }

    /// Import a change state (admin).
    pub async fn import(&self, state: &changegate_gate::ChangeState) {
        let (st, body) = self
            .post(
                "/api/v1/changes/import",
                &serde_json::to_value(state).unwrap(),
            )
            .await;
        assert_eq!(st, 201, "{body}");
    }

    /// The denying codes of a change's decision now.
    pub async fn denying(&self, id: &str) -> Vec<String> {
        let (st, body) = self.get(&format!("/api/v1/changes/{id}/decision")).await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(
            body["allowed"].as_bool().unwrap(),
            !body["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["denies"] == json!(true)),
            "{body}"
        );
        body["reasons"]
            .as_array()
            .unwrap_or_else(|| panic!("no reasons in {body}"))
            .iter()
            .filter(|r| r["denies"] == json!(true))
            .map(|r| r["code"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A category-2 change, ready: allowed at `changegate_testkit::gate::TUE` when no incident.
pub fn ready_change() -> changegate_gate::ChangeState {
    let (_, s) = changegate_testkit::gate::ready(
        2,
        vec![changegate_testkit::gate::facet(
            "api-endpoint-added",
            &["backend-lead"],
            2,
        )],
    );
    s
}
