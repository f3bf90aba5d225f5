//! A fake GitHub REST API on a loopback port, for the server's GitHub clients: tests talk to it
//! through the real client code. It answers `GET /repos/{owner}/{repo}/actions/runs/{run_id}`
//! with the workflow-run object GitHub documents (the fields the server reads — `id`,
//! `head_sha`, `status`, `conclusion`, `repository.full_name` — among the others a real answer
//! carries) for the runs a test added, `404 {"message": "Not Found"}` otherwise, and counts the
//! requests it served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Default)]
struct Runs {
    by_id: Mutex<HashMap<(String, u64), Value>>,
    requests: AtomicU64,
}

/// A running fake; stops when dropped.
pub struct FakeGitHub {
    /// `http://127.0.0.1:PORT`: the API base URL (and the web host of its run links).
    pub api: String,
    runs: Arc<Runs>,
    /// The write operations (check runs, comments, protection rule reviews, App tokens),
    /// validated against GitHub's OpenAPI description: [`crate::github_api`].
    pub rest: crate::github_api::GitHubRest,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A workflow run as `GET /repos/{owner}/{repo}/actions/runs/{run_id}` returns it (GitHub's
/// documented `workflow-run` schema, abridged to fields a client may read).
pub fn workflow_run(
    api: &str,
    repo: &str,
    id: u64,
    head_sha: &str,
    status: &str,
    conclusion: Option<&str>,
) -> Value {
    let (owner, name) = repo.split_once('/').unwrap_or((repo, repo));
    json!({
        "id": id,
        "name": "CI",
        "node_id": format!("WFR_{id}"),
        "check_suite_id": id + 1000,
        "head_branch": "main",
        "head_sha": head_sha,
        "path": ".github/workflows/ci.yml",
        "display_title": "CI",
        "run_number": 7,
        "run_attempt": 1,
        "event": "push",
        "status": status,
        "conclusion": conclusion,
        "workflow_id": 161335,
        "url": format!("{api}/repos/{repo}/actions/runs/{id}"),
        "html_url": format!("{api}/{repo}/actions/runs/{id}"),
        "created_at": "2026-03-10T08:00:00Z",
        "updated_at": "2026-03-10T08:10:00Z",
        "run_started_at": "2026-03-10T08:00:05Z",
        "actor": {"login": "ci-bot", "id": 1},
        "head_commit": {"id": head_sha, "tree_id": head_sha, "message": "change", "timestamp": "2026-03-10T07:59:00Z"},
        "repository": {"id": 1296269, "name": name, "full_name": repo, "owner": {"login": owner, "id": 2}, "private": false, "html_url": format!("{api}/{repo}")},
        "head_repository": {"id": 1296269, "name": name, "full_name": repo, "owner": {"login": owner, "id": 2}},
        "pull_requests": [],
    })
}

impl FakeGitHub {
    /// Start one on a free loopback port.
    pub async fn start() -> FakeGitHub {
        let runs = Arc::new(Runs::default());
        let app = axum::Router::new()
            .route(
                "/repos/{owner}/{repo}/actions/runs/{run_id}",
                get(
                    |State(runs): State<Arc<Runs>>,
                     Path((owner, repo, id)): Path<(String, String, u64)>| async move {
                        runs.requests.fetch_add(1, Ordering::SeqCst);
                        let key = (format!("{owner}/{repo}").to_ascii_lowercase(), id);
                        match runs.by_id.lock().unwrap().get(&key) {
                            Some(run) => (StatusCode::OK, axum::Json(run.clone())),
                            None => (
                                StatusCode::NOT_FOUND,
                                axum::Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run", "status": "404"})),
                            ),
                        }
                    },
                ),
            )
            .with_state(runs.clone());
        let rest = crate::github_api::GitHubRest::default();
        let app = app.merge(crate::github_api::router(rest.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        rest.set_base(&api);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGitHub {
            api,
            runs,
            rest,
            task,
        }
    }

    /// Serve `run` (a [`workflow_run`] or any JSON) for run `id` of `repo` (`owner/name`).
    pub fn add_run(&self, repo: &str, id: u64, run: Value) {
        self.runs
            .by_id
            .lock()
            .unwrap()
            .insert((repo.to_ascii_lowercase(), id), run);
    }

    /// A [`workflow_run`] of `repo` on `head_sha` with this status and conclusion, served.
    pub fn add(&self, repo: &str, id: u64, head_sha: &str, status: &str, conclusion: Option<&str>) {
        let run = workflow_run(&self.api, repo, id, head_sha, status, conclusion);
        self.add_run(repo, id, run);
    }

    /// The link a person would paste for run `id` of `repo`.
    pub fn link(&self, repo: &str, id: u64) -> String {
        format!("{}/{repo}/actions/runs/{id}", self.api)
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.runs.requests.load(Ordering::SeqCst)
    }
}

/// An API base URL where nothing listens (a port bound, then released): GitHub unreachable.
pub async fn unreachable_api() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}
