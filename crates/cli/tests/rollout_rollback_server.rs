//! `changegate rollout rollback --server URL --token T`: the server-run, dual-approval manual
//! rollback from the command line, on SQLite and PostgreSQL. The on-call engineer opens the
//! request, the backend lead and the SRE lead approve it; the server's rollback action (a real
//! command writing a marker file) runs once, after the second approval only. A refusal is exit 1.

use assert_cmd::Command;
use changegate_gate::Status;
use changegate_rollout::action::Action;
use changegate_testkit::both;
use changegate_testkit::gate::{TUE, facet, ready, set_status, t};
use changegate_testkit::server::{Backend, TestServer, people_policy};

/// Run the CLI with `args` as `token`'s person against `srv`: (exit code, stdout, stderr).
async fn cli(srv: &TestServer, token: &str, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY")
        .env_remove("CHANGEGATE_SERVER")
        .env_remove("CHANGEGATE_TOKEN")
        .args([
            "rollout", "rollback", "--server", &srv.base, "--token", token,
        ])
        .args(args);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

both!(rollout_rollback_collects_two_approvals_through_the_cli);
async fn rollout_rollback_collects_two_approvals_through_the_cli(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("rolled-back");
    let m = marker.clone();
    let srv =
        TestServer::start_configured(backend, people_policy(), t(TUE), None, None, move |s| {
            s.rollback.application = Some(Action::parse(&format!(
                "echo {{change}} >> {}",
                m.display()
            )));
        })
        .await;
    let mut s = ready(3, vec![facet("schema-column-dropped", &[], 3)]).1;
    s.change.id = "CR-CLI".into();
    set_status(&mut s, Status::Deploying, t("2026-03-10T10:00:00Z"));
    let (st, b) = srv
        .post(
            "/api/v1/changes/import",
            &srv.admin,
            &serde_json::to_value(&s).unwrap(),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let (oscar, bob, sam, mallory) = (
        srv.token("oscar").await,
        srv.token("bob").await,
        srv.token("sam").await,
        srv.token("mallory").await,
    );
    let change = ["--change", "CR-CLI"];
    // Nobody with no authority opens one: exit 1, nothing runs.
    let (code, _, err) = cli(&srv, &mallory, &[&change[..], &["--reason", "x"]].concat()).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rollback-trigger-required"), "{err}");
    // Approving needs a request first; opening needs a reason (a usage error, exit 2).
    let (code, _, err) = cli(&srv, &oscar, &change).await;
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = cli(
        &srv,
        &oscar,
        &[&change[..], &["--reason", "p95 regression"]].concat(),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("pending") && out.contains("still missing: backend-lead + sre-lead"),
        "{out}"
    );
    let (code, out, err) = cli(&srv, &bob, &change).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("still missing: sre-lead"), "{out}");
    assert!(!marker.exists(), "nothing runs after the first approval");
    // bob again: one person counts once (exit 1).
    let (code, _, err) = cli(&srv, &bob, &change).await;
    assert_eq!(code, 1);
    assert!(err.contains("rollback-role-not-held"), "{err}");
    let (code, out, err) = cli(&srv, &sam, &change).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(": done") && out.contains("rolled-back"),
        "{out}"
    );
    assert!(out.contains("rollback action ran"), "{out}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "CR-CLI\n");
    // The JSON answer, and a refusal once done (no request pending, the change is rolled back).
    let (code, _, err) = cli(
        &srv,
        &sam,
        &[&change[..], &["--reason", "again", "--format", "json"]].concat(),
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rollback-state-invalid"), "{err}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "CR-CLI\n");
}

/// The real `changegate serve --rollback-action CMD`: the flag is the action the server runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_rollback_action_it_was_given() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("rolled-back");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[roles.backend-lead]\nholders = [\"bob\"]\n").unwrap();
    let data = dir.path().join("data");
    let bin = assert_cmd::cargo::cargo_bin("changegate");
    let mut child = std::process::Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--test-clock", TUE])
        .arg("--policy")
        .arg(&policy)
        .arg("--data-dir")
        .arg(&data)
        .arg("--rollback-action")
        .arg(format!("echo {{change}} >> {}", marker.display()))
        .env_remove("CHANGEGATE_POLICY")
        .env_remove("CHANGEGATE_ROLLBACK_ACTION")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = None;
    let url = loop {
        let line = lines.next().expect("server exited").unwrap();
        if line.starts_with("cg_") {
            admin = Some(line.trim().to_string());
        }
        if let Some(a) = line.strip_prefix("listening on ") {
            break a.trim().to_string();
        }
    };
    let admin = admin.expect("first start prints an admin token");
    let out = std::process::Command::new(&bin)
        .args(["token", "create", "--person", "bob", "--policy"])
        .arg(&policy)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let bob = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut s = ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]).1;
    s.change.id = "CR-SERVE".into();
    set_status(&mut s, Status::Deploying, t("2026-03-10T10:00:00Z"));
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/v1/changes/import"))
        .bearer_auth(&admin)
        .json(&s)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY")
        .args(["rollout", "rollback", "--server", &url, "--token", &bob])
        .args(["--change", "CR-SERVE", "--reason", "errors"]);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rolled-back"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "CR-SERVE\n");
}
