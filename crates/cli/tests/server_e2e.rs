//! The real `changegate serve` process on loopback, driven by the real CLI client commands, on
//! SQLite and on the local PostgreSQL; and two server replicas on one PostgreSQL racing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Proc, Stdio};

use assert_cmd::Command;
use serde_json::{Value, json};

const PEOPLE: &str = r#"
[roles.backend-lead]
holders = ["bob"]
[roles.qa]
holders = ["quinn"]
[roles.sre-lead]
holders = ["sam"]
[roles.on-call-engineer]
holders = ["oscar"]
[roles.tech-architect]
holders = ["tara"]
"#;

struct Server {
    child: Child,
    url: String,
    admin: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin() -> String {
    assert_cmd::cargo::cargo_bin("changegate")
        .display()
        .to_string()
}

// The child is killed and waited for by `Server`'s Drop (and on the panic path by the test harness
// ending the process group); clippy cannot see through the struct.
#[allow(clippy::zombie_processes)]
fn serve(data: &Path, policy: &Path, db_url: Option<&str>, clock: &str) -> Server {
    let mut cmd = Proc::new(bin());
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--test-clock",
        clock,
        "--policy",
    ])
    .arg(policy)
    .arg("--data-dir")
    .arg(data)
    .env_remove("CHANGEGATE_POLICY")
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Some(u) = db_url {
        cmd.args(["--database-url", u]);
    }
    let mut child = cmd.spawn().expect("start changegate serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = None;
    loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if line.starts_with("cg_") {
            admin = Some(line.trim().to_string());
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

fn token(data: &Path, policy: &Path, db_url: Option<&str>, person: &str) -> String {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.args(["token", "create", "--person", person, "--policy"])
        .arg(policy)
        .arg("--data-dir")
        .arg(data);
    if let Some(u) = db_url {
        c.args(["--database-url", u]);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn cg(srv: &Server, tok: &str) -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env("CHANGEGATE_SERVER", &srv.url)
        .env("CHANGEGATE_TOKEN", tok)
        .env_remove("CHANGEGATE_POLICY");
    c
}

fn json_out(c: &mut Command) -> Value {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A category-2 change through its whole life with the CLI: create, approve (author refused),
/// attest, approve transition, gate (denied on Saturday, allowed now), start, complete.
fn category_2_lifecycle(db_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, PEOPLE).unwrap();
    let data = dir.path().join("data");
    // Tuesday 10:30 UTC: inside the standard and preferred windows.
    let srv = serve(&data, &policy, db_url, "2026-03-10T10:30:00Z");
    let admin = srv
        .admin
        .clone()
        .expect("first start prints an admin token");
    let alice = token(&data, &policy, db_url, "alice");
    let bob = token(&data, &policy, db_url, "bob");
    let quinn = token(&data, &policy, db_url, "quinn");

    let classification = dir.path().join("classification.json");
    std::fs::write(
        &classification,
        json!({"category": {"level": 2, "id": "medium-risk", "name": "x"},
               "facets": [{"kind": "api-endpoint-added", "category": 2, "roles": ["backend-lead"]}],
               "roles": [{"role": "backend-lead"}]})
        .to_string(),
    )
    .unwrap();
    // Only a token allowed to classify may send a classification: the admin records alice's change.
    let created = json_out(
        cg(&srv, &admin)
            .args([
                "change",
                "create",
                "--author",
                "alice",
                "--repository",
                "acme/chat",
                "--base",
                "a1",
                "--head",
                "b1",
                "--submit",
                "--title",
                "pins",
            ])
            .arg("--classification")
            .arg(&classification),
    );
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "in-review");

    // Denied: nothing approved yet (exit 1, every reason listed).
    cg(&srv, &alice)
        .args(["gate", "--change", &id])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("approval-missing"));
    // The author may not approve (alice holds no role; bob approves): a policy refusal, exit 1.
    cg(&srv, &alice)
        .args(["change", "approve", &id, "--role", "backend-lead"])
        .assert()
        .code(1);
    json_out(cg(&srv, &bob).args(["change", "approve", &id, "--role", "backend-lead"]));
    json_out(cg(&srv, &quinn).args(["change", "approve", &id, "--role", "qa"]));
    // `tests-pass` is CI evidence: only the CI job's (integration, here admin) token attests it.
    json_out(cg(&srv, &admin).args([
        "change",
        "attest",
        &id,
        "--item",
        "tests-pass",
        "--evidence",
        "https://ci.example/1",
    ]));
    for item in [
        "staging-smoke",
        "rollback-plan",
        "feature-flags",
        "dashboards",
        "on-call-notified",
    ] {
        json_out(cg(&srv, &alice).args([
            "change",
            "attest",
            &id,
            "--item",
            item,
            "--evidence",
            "https://ci.example/1",
        ]));
    }
    json_out(cg(&srv, &admin).args(["change", "transition", &id, "approve"]));
    // Saturday is inside the weekend freeze: denied by time only, so `waiting` (exit 3), with
    // the next slot.
    cg(&srv, &alice)
        .args(["gate", "--change", &id, "--at", "2026-03-14T12:00:00Z"])
        .assert()
        .code(3)
        .stdout(predicates::str::contains("[freeze-active] Weekend freeze"))
        .stdout(predicates::str::contains(
            "next allowed slot: 2026-03-16T10:00:00Z",
        ));
    cg(&srv, &alice)
        .args(["gate", "--change", &id])
        .assert()
        .success()
        .stdout(predicates::str::contains("ALLOWED"));
    json_out(cg(&srv, &alice).args(["change", "transition", &id, "start"]));
    let done = json_out(cg(&srv, &alice).args(["change", "transition", &id, "complete"]));
    assert_eq!(done["status"], "deployed");
    // Every step is in the audit trail, and the start carries the decision that allowed it.
    let mut audit = Command::cargo_bin("changegate").unwrap();
    audit
        .args(["audit", "export", "--format", "jsonl", "--data-dir"])
        .arg(&data)
        .env_remove("CHANGEGATE_POLICY");
    if let Some(u) = db_url {
        audit.args(["--database-url", u]);
    }
    let out = audit.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["kind"].as_str().or(e["event"]["kind"].as_str()))
        .collect();
    for k in [
        "change.created",
        "approval.granted",
        "attestation.recorded",
        "change.state",
        "deployment.start",
        "deployment.finish",
        "gate.decision",
    ] {
        assert!(
            kinds.contains(&k),
            "{k} missing from the audit trail: {kinds:?}"
        );
    }
    let start = events
        .iter()
        .find(|e| e.to_string().contains("deployment.start"))
        .unwrap()
        .to_string();
    assert!(
        start.contains("\"allowed\":true") && start.contains("\"result\":\"allowed\""),
        "{start}"
    );
    // A new commit after deployment is refused (terminal state).
    cg(&srv, &alice)
        .args([
            "change",
            "op",
            &id,
            r#"{"op":"push","commit":"c9","by":"alice"}"#,
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("push-refused"));
    // `rollout rollback` asks the server: the author holds no rollback authority, whatever
    // `--by` says; the backend lead holds category 2's. Only then does the action run.
    let marker = dir.path().join("rolled-back");
    let log = dir.path().join("rollout.jsonl");
    let rollback = |tok: &str| {
        let mut c = cg(&srv, tok);
        c.args([
            "rollout", "rollback", "--change", &id, "--reason", "p95", "--by",
        ])
        .args(["backend-lead,sre-lead", "--rollback"])
        .arg(format!("touch {}", marker.display()))
        .arg("--log")
        .arg(&log)
        .arg("--policy")
        .arg(&policy);
        c
    };
    rollback(&alice)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("rollback-authority-required"));
    assert!(!marker.exists());
    rollback(&bob).assert().success();
    assert!(marker.exists());
    let after = json_out(cg(&srv, &bob).args(["change", "show", &id]));
    assert_eq!(after["status"], "rolled-back");
}

#[test]
fn lifecycle_through_cli_and_server_on_sqlite() {
    category_2_lifecycle(None);
}

#[test]
fn lifecycle_through_cli_and_server_on_postgres() {
    let db = changegate_testkit::pg::TempDb::create("cg_e2e");
    category_2_lifecycle(Some(&db.url()));
}

/// Two server processes on one PostgreSQL: many clients approve and re-approve the same changes
/// through both at once. Every change ends with exactly one approval per role and a version that
/// counts exactly the successful writes; nothing is lost or doubled.
#[test]
fn two_replicas_on_one_postgres_never_lose_or_double_an_approval() {
    let db = changegate_testkit::pg::TempDb::create("cg_e2e");
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, PEOPLE).unwrap();
    // Replicas share the data directory's log key (deploy it as a secret to every replica).
    let data = dir.path().join("data");
    let a = serve(&data, &policy, Some(&url), "2026-03-10T10:30:00Z");
    let b = serve(&data, &policy, Some(&url), "2026-03-10T10:30:00Z");
    let admin = a
        .admin
        .clone()
        .expect("first replica creates the admin token");
    assert!(
        b.admin.is_none(),
        "the second replica must not create another admin token"
    );
    let bob = token(&data, &policy, Some(&url), "bob");
    let quinn = token(&data, &policy, Some(&url), "quinn");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let mut ids = Vec::new();
        for n in 0..4 {
            let body = json!({"repository": "acme/chat", "base_commit": "a", "head_commit": format!("h{n}"), "authors": ["alice"],
                "classification": {"category": 2, "facets": [], "required_roles": []}, "submit": true});
            let v: Value = http
                .post(format!("{}/api/v1/changes", a.url))
                .bearer_auth(&admin)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ids.push(v["id"].as_str().unwrap().to_string());
        }
        let mut tasks = Vec::new();
        for id in &ids {
            for i in 0..12 {
                let base = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
                let (tok, role) = if i % 3 == 0 { (quinn.clone(), "qa") } else { (bob.clone(), "backend-lead") };
                let http = http.clone();
                let url = format!("{base}/api/v1/changes/{id}/approvals");
                tasks.push(tokio::spawn(async move {
                    http.post(url).bearer_auth(tok).json(&json!({"role": role})).send().await.unwrap().status().as_u16()
                }));
            }
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        assert!(codes.iter().all(|c| [201, 409, 422].contains(c)), "{codes:?}");
        assert_eq!(codes.iter().filter(|c| **c == 201).count(), 2 * ids.len(), "{codes:?}");
        for id in &ids {
            let v: Value = http
                .get(format!("{}/api/v1/changes/{id}", b.url))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut roles: Vec<&str> = v["approvals"].as_array().unwrap().iter().map(|a| a["role"].as_str().unwrap()).collect();
            roles.sort_unstable();
            assert_eq!(roles, ["backend-lead", "qa"], "{id}: {v}");
            assert_eq!(v["version"], 3, "{id}: create + two approvals");
        }
    });
    drop(a);
    drop(b);
}
