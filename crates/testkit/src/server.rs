//! A real server on a loopback port over a real database (a temporary SQLite file, or a fresh
//! schema in the local PostgreSQL), with a clock the test sets. Used by the server's API and
//! corpus tests and by its load bench.

use std::sync::{Arc, Mutex};

use changegate_policy::Policy;
use changegate_server::{AppState, Clock, Db};
use changegate_store::StoreConfig;
use jiff::Timestamp;
use serde_json::Value;

/// The local PostgreSQL the suite runs against (`scripts/services.sh` starts it).
pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh schema in [`PG_URL`].
    Postgres,
}

/// What a [`TestServer`] may read besides its database.
#[derive(Default)]
pub struct Options {
    /// Classify repositories under this directory (`serve --repo-root`).
    pub repo_root: Option<std::path::PathBuf>,
    /// GitHub's API (a fake on loopback).
    pub github_api: Option<String>,
    /// Mirrors of remote repositories (`serve --mirror-dir`).
    pub mirrors: Option<Arc<changegate_server::mirror::Mirrors>>,
}

pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An admin token's plaintext.
    pub admin: String,
    /// The server's manual clock ([`TestServer::set_now`]).
    pub clock: Arc<Mutex<Timestamp>>,
    /// The server's database, for setting up state directly.
    pub db: Db,
    /// A client for [`TestServer::req`].
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        Timestamp::now().as_microsecond() % 1_000_000
    )
}

impl TestServer {
    /// A server for `policy` whose clock reads `at`.
    pub async fn start(backend: Backend, policy: Policy, at: Timestamp) -> TestServer {
        Self::start_with(backend, policy, at, None, None).await
    }

    /// [`TestServer::start`] that may classify repositories under `repo_root` and read pull
    /// requests from a GitHub API at `github_api`.
    pub async fn start_with(
        backend: Backend,
        policy: Policy,
        at: Timestamp,
        repo_root: Option<std::path::PathBuf>,
        github_api: Option<String>,
    ) -> TestServer {
        Self::start_opts(
            backend,
            policy,
            at,
            Options {
                repo_root,
                github_api,
                mirrors: None,
            },
        )
        .await
    }

    /// [`TestServer::start`] with every option ([`Options`]).
    pub async fn start_opts(
        backend: Backend,
        policy: Policy,
        at: Timestamp,
        options: Options,
    ) -> TestServer {
        Self::start_full(backend, policy, at, options, |_| {}).await
    }

    /// [`TestServer::start_with`], the state adjusted by `configure` before the server starts
    /// (rollback actions, …).
    pub async fn start_configured(
        backend: Backend,
        policy: Policy,
        at: Timestamp,
        repo_root: Option<std::path::PathBuf>,
        github_api: Option<String>,
        configure: impl FnOnce(&mut AppState),
    ) -> TestServer {
        let options = Options {
            repo_root,
            github_api,
            mirrors: None,
        };
        Self::start_full(backend, policy, at, options, configure).await
    }

    /// [`TestServer::start_opts`], the state adjusted by `configure` before the server starts.
    pub async fn start_full(
        backend: Backend,
        policy: Policy,
        at: Timestamp,
        options: Options,
        configure: impl FnOnce(&mut AppState),
    ) -> TestServer {
        Self::start_knowing_base(backend, policy, at, options, |s, _| configure(s)).await
    }

    /// A server on `policy` at `at` whose dashboard offers "Sign in with GitHub" against the
    /// fake GitHub `fake` (its web flow and API on one loopback address), with the OAuth app
    /// `Iv1.test-app` / `s3cret-client` registered there with the server's own callback.
    pub async fn start_with_github_login(
        backend: Backend,
        policy: Policy,
        at: Timestamp,
        fake: &crate::fake_github::FakeGitHub,
    ) -> TestServer {
        use changegate_server::dashboard::github_login::GithubLogin;
        let (api, rest) = (fake.api.clone(), fake.rest.clone());
        TestServer::start_knowing_base(backend, policy, at, Options::default(), move |s, base| {
            let gh = GithubLogin::new("Iv1.test-app", "s3cret-client", &api, &api, base);
            rest.oauth_app("Iv1.test-app", "s3cret-client", &gh.callback());
            s.dashboard.github_login = Some(gh);
        })
        .await
    }

    /// [`TestServer::start_full`] whose `configure` also gets the server's base URL
    /// (`http://127.0.0.1:PORT`, bound already), for settings that name the server itself (the
    /// dashboard's public URL).
    pub async fn start_knowing_base(
        backend: Backend,
        policy: Policy,
        at: Timestamp,
        options: Options,
        configure: impl FnOnce(&mut AppState, &str),
    ) -> TestServer {
        let Options {
            repo_root,
            github_api,
            mirrors,
        } = options;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::new(dir.path());
        cfg.fields = Some(changegate_audit::FieldPolicy::from_policy(
            &policy.audit.fields,
        ));
        if backend == Backend::Postgres {
            cfg.database_url = Some(PG_URL.into());
            cfg.pg_schema = Some(unique("srv"));
        }
        let db = Db::open_with(cfg).await.expect("open store");
        let t = changegate_server::token::mint();
        db.insert_token(&t, "admin", true).await.unwrap();
        let clock = Arc::new(Mutex::new(at));
        let mut state = AppState {
            repo_root,
            github: github_api.map(|api| changegate_server::github::GitHub {
                api,
                token: Some("ghp_test".into()),
                http: reqwest::Client::new(),
            }),
            mirrors,
            ..AppState::new(Arc::new(policy), db.clone(), Clock::Manual(clock.clone()))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        configure(&mut state, &base);
        let task = tokio::spawn(async move {
            changegate_server::serve(state, listener).await.unwrap();
        });
        TestServer {
            base,
            admin: t.plaintext,
            clock,
            db,
            http: reqwest::Client::new(),
            _dir: dir,
            task,
        }
    }

    /// Set the server's clock.
    pub fn set_now(&self, at: Timestamp) {
        *self.clock.lock().unwrap() = at;
    }

    /// A token for `person`.
    pub async fn token(&self, person: &str) -> String {
        let t = changegate_server::token::mint();
        self.db.insert_token(&t, person, false).await.unwrap();
        t.plaintext
    }

    /// A token for an integration with these scopes (the actor `integration:NAME`).
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
        self.issue(&spec).await
    }

    /// A token for `spec` (validated against the server's clock).
    pub async fn issue(&self, spec: &changegate_server::token::TokenSpec) -> String {
        let now = *self.clock.lock().unwrap();
        self.db
            .issue_token(spec, now, "changegate")
            .await
            .unwrap()
            .plaintext
    }

    /// A request; the body is JSON when it parses, else the text as a JSON string.
    pub async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
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

    /// The audit log's records of `kind` (exact, or a prefix ending in `*`), in log order, as
    /// JSON.
    pub async fn events(&self, kind: &str) -> Vec<Value> {
        self.db
            .store()
            .events(&changegate_store::EventFilter {
                kind: Some(kind.into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| serde_json::to_value(&e.record).unwrap())
            .collect()
    }

    /// `GET path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.req(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// `POST path` with `token` and a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.req(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    /// `PUT path` with `token` and a JSON body.
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.req(reqwest::Method::PUT, path, Some(token), Some(body))
            .await
    }

    /// Map the commit identity `alias` (an e-mail, `pagerduty:ID`, …) to `person`, as the admin
    /// (`PUT /api/v1/aliases/{alias}`); panics with the response body unless it is 200.
    pub async fn alias(&self, alias: &str, person: &str) {
        let (st, b) = self
            .put(
                &format!("/api/v1/aliases/{alias}"),
                &self.admin,
                &serde_json::json!({ "person": person }),
            )
            .await;
        assert_eq!(st, 200, "alias {alias} → {person}: {b}");
    }
}

/// The people file of the gate corpus (role holders).
pub fn people() -> String {
    crate::gate::PEOPLE.to_string()
}

/// The default policy with the corpus' role holders.
pub fn people_policy() -> Policy {
    changegate_gate::corpus::case_policy(&people(), "").unwrap()
}

/// Runs one async scenario `async fn NAME(backend: Backend)` as two tests, `NAME::sqlite` and
/// `NAME::postgres`: the API behaves the same on both databases.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::server::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::server::Backend::Postgres).await
            }
        }
    };
}
