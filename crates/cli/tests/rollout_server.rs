//! `changegate rollout start|status --change ID`: the real binary against a real server (SQLite)
//! that runs rollouts. Start refusals exit 1 with the server's code and store nothing; a start
//! prints the rollout; status shows it. (The rollouts themselves are tested in the server's
//! `tests/rollouts.rs` against a real Prometheus; here the server's Prometheus is unreachable, so
//! the guard holds before its first step — fail closed.)

use std::sync::{Arc, Mutex};

use assert_cmd::Command;
use changegate_server::rollouts::{RolloutConfig, Runtime};
use changegate_server::{AppState, Clock, Db};
use changegate_store::StoreConfig;
use changegate_testkit::gate::{TUE, facet, ready, t};
use serde_json::Value;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn cg(base: &str, token: &str, args: &[&str]) -> Out {
    let (base, token) = (base.to_string(), token.to_string());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("changegate")
            .unwrap()
            .env("CHANGEGATE_SERVER", base)
            .env("CHANGEGATE_TOKEN", token)
            .env_remove("CHANGEGATE_POLICY")
            .args(&args)
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_status_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let policy = changegate_testkit::gate::policy();
    let mut cfg = StoreConfig::new(dir.path());
    cfg.fields = Some(changegate_audit::FieldPolicy::from_policy(
        &policy.audit.fields,
    ));
    let db = Db::open_with(cfg).await.unwrap();
    let mint = |p: &str| (changegate_server::token::mint(), p.to_string());
    let (admin, alice, mallory) = (mint("admin"), mint("alice"), mint("mallory"));
    db.insert_token(&admin.0, "admin", true).await.unwrap();
    db.insert_token(&alice.0, "alice", false).await.unwrap();
    db.insert_token(&mallory.0, "mallory", false).await.unwrap();
    let rollouts = RolloutConfig::from_toml(
        "prometheus = \"http://127.0.0.1:9\"\npoll = \"200ms\"\n[actions]\nrollback = \"true\"\n",
    )
    .unwrap();
    let state = AppState {
        rollouts: Some(Arc::new(Runtime::new(rollouts, None).unwrap())),
        ..AppState::new(
            Arc::new(policy),
            db.clone(),
            Clock::Manual(Arc::new(Mutex::new(t(TUE)))),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        changegate_server::serve(state, listener).await.unwrap();
    });
    let mut change = ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]).1;
    change.change.id = "CR-CLI".into();
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/changes/import"))
        .bearer_auth(&admin.0.plaintext)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    let start = ["rollout", "start", "--change", "CR-CLI"];
    let refused = cg(&base, &mallory.0.plaintext, &start).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("deployer-required"),
        "{}",
        refused.stderr
    );
    let none = cg(
        &base,
        &alice.0.plaintext,
        &["rollout", "status", "--change", "CR-CLI"],
    )
    .await;
    assert_eq!(none.code, 0, "{}", none.stderr);
    assert!(
        none.stdout.contains("no server-run rollouts"),
        "{}",
        none.stdout
    );

    let ok = cg(&base, &alice.0.plaintext, &start).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout.contains("plan standard (category 2)"),
        "{}",
        ok.stdout
    );
    let again = cg(&base, &alice.0.plaintext, &start).await;
    assert_eq!(again.code, 1, "a second start is refused: {}", again.stderr);

    let status = cg(
        &base,
        &alice.0.plaintext,
        &[
            "rollout", "status", "--change", "CR-CLI", "--format", "json",
        ],
    )
    .await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let v: Value = serde_json::from_str(&status.stdout).unwrap();
    let r = &v["rollouts"][0];
    assert_eq!(
        (r["plan"].as_str(), r["active"].as_bool()),
        (Some("standard"), Some(true))
    );
    assert!(
        r["steps"].as_array().is_some_and(Vec::is_empty),
        "no step without metrics: {r}"
    );
    let missing = cg(
        &base,
        &alice.0.plaintext,
        &["rollout", "status", "--change", "NOPE"],
    )
    .await;
    assert_eq!(missing.code, 2, "404 is an input error: {}", missing.stderr);
    server.abort();
}
