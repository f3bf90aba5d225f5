//! Rollout events reach the tamper-evident audit trail with `--audit`.

use assert_cmd::Command;
use predicates::prelude::*;

fn cg() -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY")
        .env_remove("CHANGEGATE_DATA")
        .env_remove("CHANGEGATE_DATABASE_URL");
    c
}

#[test]
fn manual_rollbacks_are_audited_allowed_and_denied() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    cg().args([
        "rollout",
        "rollback",
        "--change",
        "CR-7",
        "--reason",
        "p95 spike",
        "--by",
        "backend-lead",
        "--category",
        "2",
    ])
    .args(["--audit", "--data-dir", data])
    .assert()
    .code(1);
    // Offline no authority can be checked (issue 13): every request is refused and audited.
    cg().args([
        "rollout",
        "rollback",
        "--change",
        "CR-8",
        "--reason",
        "errors",
        "--by",
        "backend-lead",
        "--category",
        "3",
    ])
    .args(["--audit", "--data-dir", data])
    .assert()
    .code(1);
    cg().args(["audit", "log", "--data-dir", data])
        .assert()
        .success()
        .stdout(predicate::str::contains("rollback.triggered"))
        .stdout(predicate::str::contains("CR-7"))
        .stdout(predicate::str::contains("CR-8"))
        .stdout(predicate::str::contains("outcome.result=rollback-denied"));
    cg().args(["audit", "verify", "--data-dir", data])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 events verified"));
}
