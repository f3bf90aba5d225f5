//! `rollout run --audit` records every event of a real guard run in the audit trail, on SQLite
//! (the data directory) and on PostgreSQL (`--database-url`). It once opened the store on a
//! throwaway runtime and used it on another, which PostgreSQL connections do not survive.
//!
//! The Prometheus is a stand-in on loopback that answers every instant query with 0 (healthy:
//! no errors, no latency; the guard settings let relative triggers judge at zero traffic), so the
//! plan (5 % for 1 s, then 100 % monitored for 1 s) completes in a few seconds.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use assert_cmd::Command;
use serde_json::Value;

const POLICY: &str = r#"
[rollout.plans.standard]
description = "Canary 5% for a second, then 100% monitored for a second"
monitor_after = "1s"
steps = [
  { environment = "production", weight = 5, soak = "1s" },
  { environment = "production", weight = 100 },
]
"#;

const GUARD: &str = "[defaults]\nmin_traffic = 0.0\n";

fn cg() -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY")
        .env_remove("CHANGEGATE_DATA")
        .env_remove("CHANGEGATE_DATABASE_URL")
        .env_remove("CHANGEGATE_GUARD")
        .env_remove("CHANGEGATE_PROMETHEUS")
        .env("NO_COLOR", "1");
    c
}

/// A Prometheus HTTP API that answers every query with the scalar 0. Returns its URL.
fn healthy_prometheus() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                // Request line and headers (GET: no body).
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        break;
                    }
                    line.clear();
                }
                let body =
                    r#"{"status":"success","data":{"resultType":"scalar","result":[0,"0"]}}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
}

/// Run the guard with `--audit`, then read the audit trail back and verify it.
fn run_audited(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let guard = dir.path().join("guard.toml");
    std::fs::write(&guard, GUARD).unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let db = |c: &mut Command| {
        if let Some(url) = database_url {
            c.args(["--database-url", url]);
        }
    };

    let mut run = cg();
    run.args(["--policy", policy.to_str().unwrap(), "rollout", "run"])
        .args(["--plan", "standard", "--change", "CR-42"])
        .args(["--guard", guard.to_str().unwrap()])
        .args(["--prometheus", &healthy_prometheus()])
        .args(["--rollback", "true", "--interval", "200ms"])
        .args(["--audit", "--data-dir", data, "--format", "json"])
        .timeout(std::time::Duration::from_secs(120));
    db(&mut run);
    let out = run.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "rollout run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["end"], "completed");

    let logged: Vec<Value> = std::fs::read_to_string(format!("{data}/rollout.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let mut log = cg();
    log.args(["audit", "log", "--data-dir", data, "--format", "json"]);
    db(&mut log);
    let out = log.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audited: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    // Every event of the JSON-lines log is in the audit trail, in order, as the right kind.
    assert_eq!(audited.len(), logged.len(), "{audited:#?}");
    let kinds: Vec<String> = audited
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("deployment.start"));
    assert_eq!(kinds.last().map(String::as_str), Some("deployment.finish"));
    assert!(kinds.iter().any(|k| k == "deployment.step"), "{kinds:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CR-42"), "{text}");
    assert!(text.contains("\"success\""), "{text}");

    let mut verify = cg();
    verify.args(["audit", "verify", "--data-dir", data]);
    db(&mut verify);
    let out = verify.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("ok: {} events verified", logged.len())),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn rollout_run_audit_on_sqlite() {
    run_audited(None);
}

#[test]
fn rollout_run_audit_on_postgres() {
    let db = changegate_testkit::pg::TempDb::create("cg_rollout");
    run_audited(Some(&db.url()));
}
