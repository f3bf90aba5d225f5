//! `changegate audit ...` end to end on a SQLite log in a temp data dir: append, verify, prove
//! and check offline, tamper and see verify exit 1 with the first bad position.

use assert_cmd::Command;
use predicates::prelude::*;

fn cg(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env("CHANGEGATE_DATA", dir)
        .env_remove("CHANGEGATE_DATABASE_URL")
        .env_remove("CHANGEGATE_POLICY");
    c
}

#[test]
fn append_verify_prove_check_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 0..5 {
        let ev = format!(
            r#"{{"kind":"change.approved","actor":"user{i}","change_id":"CR-{i}","what":{{"commit-sha":"{i:07x}"}}}}"#
        );
        cg(d)
            .args(["audit", "append", "--json", &ev])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("\"seq\":{i}")));
    }
    // Fields the policy does not name are refused (exit 2).
    cg(d)
        .args([
            "audit",
            "append",
            "--json",
            r#"{"kind":"x","actor":"a","what":{"colour":"blue"}}"#,
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("audit-field-unknown"));
    cg(d)
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ok: 5 events verified"));
    let proof = cg(d)
        .args(["audit", "prove", "3"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let pf = d.join("proof.json");
    std::fs::write(&pf, &proof).unwrap();
    cg(d)
        .args(["audit", "check-proof"])
        .arg(&pf)
        .assert()
        .success()
        .stdout(predicate::str::contains("signed by the trusted log key"));
    // A doctored proof is rejected (exit 1).
    let bad = String::from_utf8(proof)
        .unwrap()
        .replace("\"leaf_index\": 3", "\"leaf_index\": 2");
    std::fs::write(&pf, bad).unwrap();
    cg(d)
        .args(["audit", "check-proof"])
        .arg(&pf)
        .assert()
        .code(1);
    let cons = cg(d)
        .args(["audit", "consistency", "2", "5"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    std::fs::write(&pf, cons).unwrap();
    cg(d)
        .args(["audit", "check-proof", "--format", "json"])
        .arg(&pf)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"ok\": true"));
    let cp = d.join("cp.txt");
    let note = cg(d)
        .args(["audit", "checkpoint"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    std::fs::write(&cp, note).unwrap();
    cg(d)
        .args(["audit", "verify", "--checkpoint"])
        .arg(&cp)
        .assert()
        .success();
    cg(d)
        .args(["audit", "log", "--actor", "user2", "--format", "json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("CR-2"));
    cg(d)
        .args(["audit", "export", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("seq,id,recorded_at"));
    // Retention refuses a cutoff younger than policy.audit.retention (2y).
    cg(d)
        .args(["audit", "prune", "--before", "2999-01-01"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("audit-retention-refused"));
    // Issue 13: a one-minute retention is not a policy (validation error with its location), so
    // `audit prune` under it deletes nothing.
    let short = d.join("short-retention.toml");
    std::fs::write(&short, "[audit]\nretention = \"60s\"\n").unwrap();
    cg(d)
        .arg("--policy")
        .arg(&short)
        .args(["audit", "prune", "--before", "2026-01-01"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error[retention-below-minimum]"))
        .stderr(predicate::str::contains("short-retention.toml:2:13"));
    // Tamper with record 2 behind the log's back: verify exits 1 naming position 2.
    let db = d.join("changegate.db");
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&db)).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER audit_record_no_update; UPDATE audit_record SET record = replace(record, 'user2', 'userX') WHERE seq = 2;")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    cg(d)
        .args(["audit", "verify"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("first bad position 2"));
}

#[test]
fn verify_without_a_log_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    cg(dir.path())
        .args(["audit", "verify"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no audit log"));
}
