//! A server on loopback for the notification tests whose store stamps audit events with the same
//! manual clock the server decides with (`testkit::server::TestServer` leaves the store on the
//! system clock): the outbox's due times come from the event's time, so both must agree for a
//! test to move time forward and see reminders come due.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use changegate_policy::Policy;
use changegate_server::{AppState, Clock, Db};
use changegate_store::StoreConfig;
use changegate_testkit::server::{Backend, PG_URL};
use jiff::Timestamp;
use serde_json::Value;

pub struct Srv {
    pub base: String,
    pub admin: String,
    pub clock: Arc<Mutex<Timestamp>>,
    pub db: Db,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Srv {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Srv {
    pub async fn start(
        backend: Backend,
        policy: Policy,
        at: Timestamp,
        configure: impl FnOnce(&mut AppState),
    ) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(Mutex::new(at));
        let mut cfg = StoreConfig::new(dir.path());
        cfg.fields = Some(changegate_audit::FieldPolicy::from_policy(
            &policy.audit.fields,
        ));
        let c = clock.clone();
        cfg.clock = Some(Arc::new(move || *c.lock().unwrap()));
        if backend == Backend::Postgres {
            cfg.database_url = Some(PG_URL.into());
            cfg.pg_schema = Some(format!(
                "notify_{}_{}",
                std::process::id(),
                Timestamp::now().as_microsecond() % 1_000_000_000
            ));
        }
        let db = Db::open_with(cfg).await.expect("open store");
        let t = changegate_server::token::mint();
        db.insert_token(&t, "admin", true).await.unwrap();
        let mut state = AppState::new(Arc::new(policy), db.clone(), Clock::Manual(clock.clone()));
        configure(&mut state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            changegate_server::serve(state, listener).await.unwrap();
        });
        Srv {
            base,
            admin: t.plaintext,
            clock,
            db,
            http: reqwest::Client::new(),
            _dir: dir,
            task,
        }
    }

    pub fn set_now(&self, at: Timestamp) {
        *self.clock.lock().unwrap() = at;
    }

    pub async fn token(&self, person: &str) -> String {
        let t = changegate_server::token::mint();
        self.db.insert_token(&t, person, false).await.unwrap();
        t.plaintext
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

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.req(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.req(reqwest::Method::POST, path, token, Some(body))
            .await
    }
}
