//! `changegate rollout`: replay exit codes and output on the recorded incident, manual rollback
//! authority, the triggers listing. (The guard loop against a real Prometheus is tested in
//! crates/rollout/tests/prometheus.rs.)

use assert_cmd::Command;
use predicates::prelude::*;

const INCIDENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../rollout/testdata/incident-2026-03-03-checkout.jsonl"
);

fn cg() -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY")
        .env_remove("CHANGEGATE_GUARD")
        .env_remove("CHANGEGATE_DATA");
    c
}

#[test]
fn replay_of_the_recorded_incident_would_roll_back() {
    cg().args(["rollout", "replay", "--metrics", INCIDENT])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("ROLLBACK"))
        .stdout(predicate::str::contains(
            "baseline-exceeded `error-rate-increase` 0.440%",
        ))
        .stdout(predicate::str::contains(
            "verdict: would have ROLLED BACK at 2026-03-03T14:16:50Z (at 50%)",
        ));
    let out = cg()
        .args([
            "rollout",
            "replay",
            "--metrics",
            INCIDENT,
            "--format",
            "json",
        ])
        .assert()
        .code(1);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["verdict"], "rollback");
    assert_eq!(v["reasons"][0]["code"], "baseline-exceeded");
}

#[test]
fn replay_that_completes_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("healthy.jsonl");
    let mut text = String::new();
    for k in 0..=60 {
        let t = 1_772_546_400 + 10 * k;
        for (m, v) in [
            ("traffic", 50.0),
            ("error-rate", 0.1),
            ("p95-latency", 120.0),
            ("health-check-failures", 0.0),
            ("db-pool-utilisation", 30.0),
            ("memory-utilisation", 40.0),
        ] {
            text.push_str(&format!("{{\"t\":{t},\"metric\":\"{m}\",\"value\":{v}}}\n"));
        }
    }
    std::fs::write(&file, text).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[rollout.plans.standard]\ndescription = \"short\"\nmonitor_after = \"1m\"\nsteps = [\n  { environment = \"production\", weight = 5, soak = \"2m\" },\n  { environment = \"production\", weight = 100 },\n]\n",
    )
    .unwrap();
    cg().args([
        "--policy",
        policy.to_str().unwrap(),
        "rollout",
        "replay",
        "--plan",
        "standard",
        "--metrics",
        file.to_str().unwrap(),
    ])
    .assert()
    .success()
    .stdout(predicate::str::contains("would have COMPLETED"));
}

/// Offline, `--by` grants nothing: changegate cannot check who is typing, so it claims no
/// authority, records the request as unverified and runs nothing (exit 1). With `--server` the
/// server checks the token (crates/server/tests/adversarial_authority.rs and server_e2e.rs).
#[test]
fn manual_rollback_offline_claims_no_authority() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rollout.jsonl");
    let marker = dir.path().join("rolled-back");
    let action = format!("touch {}", marker.display());
    for by in ["backend-lead", "backend-lead,sre-lead"] {
        cg().args([
            "rollout",
            "rollback",
            "--change",
            "PR-9",
            "--reason",
            "p95 regression",
            "--by",
            by,
            "--category",
            "3",
        ])
        .args(["--rollback", &action, "--log", log.to_str().unwrap()])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("authority-denied"))
        .stderr(predicate::str::contains("authority unverified"));
        assert!(!marker.exists(), "{by}: nothing may run");
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["kind"], "manual-rollback");
        assert_eq!(l["detail"]["allowed"], false);
        assert_eq!(l["detail"]["authority"], "unverified");
    }
    assert_eq!(
        lines[1]["detail"]["by"],
        serde_json::json!(["backend-lead", "sre-lead"])
    );
}

#[test]
fn triggers_lists_the_promql_with_the_selector() {
    cg().args([
        "rollout",
        "triggers",
        "--plan",
        "standard",
        "--selector",
        "service=\"chat\"",
    ])
    .assert()
    .success()
    .stdout(predicate::str::contains("slo-error-rate"))
    .stdout(predicate::str::contains(
        "http_requests_total{service=\"chat\",code=~\"5..\"}",
    ))
    .stdout(predicate::str::contains("5% production (soak 15m 0s)"));
}
