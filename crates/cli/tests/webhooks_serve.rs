//! The real `changegate serve` with `--pagerduty-webhook-secret-file`: a signed PagerDuty event is
//! stored and processed by the worker `serve` starts (the incident opens), `changegate deliveries
//! list` shows it done; with `--no-delivery-worker` it stays pending; a secret file without a
//! secret stops the server at start.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::{Value, json};

struct Server {
    child: Child,
    url: String,
    admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)]
fn serve(data: &Path, secrets: &Path, extra: &[&str]) -> Server {
    let mut child = Proc::new(assert_cmd::cargo::cargo_bin("changegate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--pagerduty-webhook-secret-file")
        .arg(secrets)
        .args(extra)
        .env_remove("CHANGEGATE_POLICY")
        .env_remove("CHANGEGATE_PAGERDUTY_WEBHOOK_SECRET")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start changegate serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = String::new();
    loop {
        let line = lines.next().expect("server exited").unwrap();
        if line.starts_with("cg_") {
            admin = line.trim().to_string();
        }
        if let Some(addr) = line.strip_prefix("listening on ") {
            return Server {
                child,
                url: addr.trim().to_string(),
                admin,
            };
        }
    }
}

fn cg(srv: &Server, args: &[&str]) -> Value {
    let out = Command::cargo_bin("changegate")
        .unwrap()
        .env("CHANGEGATE_SERVER", &srv.url)
        .env("CHANGEGATE_TOKEN", &srv.admin)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn triggered() -> Vec<u8> {
    serde_json::to_vec(&json!({"event": {
        "id": "01DEMOEVENT", "event_type": "incident.triggered", "resource_type": "incident",
        "occurred_at": "2026-03-10T10:00:00Z",
        "data": {"id": "PGR0VU2", "type": "incident", "status": "triggered",
                 "title": "A little bump in the road", "urgency": "high",
                 "priority": {"summary": "P1"}, "assignees": []}
    }}))
    .unwrap()
}

fn post_signed(srv: &Server, secret: &str, body: &[u8]) -> u16 {
    let sig = changegate_server::signature::Secret::new(secret)
        .unwrap()
        .sign_hex(body);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/v1/webhooks/pagerduty", srv.url))
            .header("content-type", "application/json")
            .header("x-pagerduty-signature", format!("v1={sig}"))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn serve_verifies_stores_and_processes_pagerduty_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("pagerduty.secret");
    std::fs::write(&secrets, "new-secret\nold-secret\n").unwrap();
    let srv = serve(&dir.path().join("data"), &secrets, &[]);
    // Signed with the old secret of the rotation: accepted.
    assert_eq!(post_signed(&srv, "old-secret", &triggered()), 202);
    assert_eq!(post_signed(&srv, "wrong", &triggered()), 403);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let incidents = cg(&srv, &["incident", "list"]);
        if let Some(i) = incidents["incidents"].as_array().unwrap().first() {
            assert_eq!(
                (i["id"].as_str(), i["severity"].as_str()),
                (Some("PD-PGR0VU2"), Some("P0"))
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never processed the delivery"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ds = cg(&srv, &["deliveries", "list", "--source", "pagerduty"]);
    let d = &ds["deliveries"][0];
    assert_eq!(
        (d["status"].as_str(), d["delivery_id"].as_str()),
        (Some("done"), Some("01DEMOEVENT")),
        "{ds}"
    );
    assert_eq!(
        cg(&srv, &["deliveries", "list", "--status", "failed"])["deliveries"],
        json!([])
    );
}

#[test]
fn without_the_worker_deliveries_wait_and_an_empty_secret_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("pagerduty.secret");
    std::fs::write(&secrets, "s3cret\n").unwrap();
    let srv = serve(
        &dir.path().join("data"),
        &secrets,
        &["--no-delivery-worker"],
    );
    assert_eq!(post_signed(&srv, "s3cret", &triggered()), 202);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cg(&srv, &["incident", "list"])["incidents"], json!([]));
    let ds = cg(&srv, &["deliveries", "list"]);
    assert_eq!(ds["deliveries"][0]["status"], "pending", "{ds}");
    drop(srv);
    let empty = dir.path().join("empty.secret");
    std::fs::write(&empty, "\n \n").unwrap();
    let out = Command::cargo_bin("changegate")
        .unwrap()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data2"))
        .arg("--pagerduty-webhook-secret-file")
        .arg(&empty)
        .env_remove("CHANGEGATE_POLICY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no secret"), "{err}");
}

/// POST `body` to the GitHub route as GitHub would (`secret: None` sends no signature).
fn post_github(srv: &Server, secret: Option<&str>, event: &str, guid: &str, body: &[u8]) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new()
            .post(format!("{}/api/v1/webhooks/github", srv.url))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", guid)
            .body(body.to_vec());
        if let Some(s) = secret {
            let sig = changegate_server::signature::Secret::new(s)
                .unwrap()
                .sign_hex(body);
            r = r.header("x-hub-signature-256", format!("sha256={sig}"));
        }
        r.send().await.unwrap().status().as_u16()
    })
}

#[test]
fn serve_verifies_and_processes_github_webhooks_with_the_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let pd = dir.path().join("pagerduty.secret");
    std::fs::write(&pd, "pd\n").unwrap();
    let gh = dir.path().join("github.secret");
    std::fs::write(&gh, "gh-secret\n").unwrap();
    let gh_arg = gh.display().to_string();
    let srv = serve(
        &dir.path().join("data"),
        &pd,
        &["--github-webhook-secret-file", &gh_arg],
    );
    // GitHub's own example payload (server tests' fixtures, @octokit/webhooks-examples).
    let opened = std::fs::read(format!(
        "{}/../server/tests/data/github/pull_request.opened.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(post_github(&srv, None, "pull_request", "g-1", &opened), 401);
    assert_eq!(
        post_github(&srv, Some("wrong"), "pull_request", "g-1", &opened),
        401
    );
    assert_eq!(
        post_github(&srv, Some("gh-secret"), "pull_request", "g-1", &opened),
        202
    );
    assert_eq!(
        post_github(&srv, Some("gh-secret"), "pull_request", "g-1", &opened),
        200,
        "a redelivery"
    );
    // Processed by the worker `serve` started: this server keeps no mirror of the repository, so
    // it cannot classify it and says so in the outcome.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ds = cg(&srv, &["deliveries", "list", "--source", "github"]);
        let d = &ds["deliveries"][0];
        if d["status"] == "done" {
            assert_eq!(ds["deliveries"].as_array().unwrap().len(), 1, "{ds}");
            assert_eq!(d["outcome"]["result"], "refused", "{d}");
            break;
        }
        assert!(Instant::now() < deadline, "never processed: {ds}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
