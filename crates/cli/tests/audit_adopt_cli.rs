//! `changegate audit adopt` end to end on a SQLite data dir: a token row written behind the log's
//! back (as every token issued before state proofs was) makes `audit verify` exit 1 naming it;
//! `adopt --dry-run` lists it and writes nothing; `adopt --reason` logs it as an audited operator
//! act and verify is ok again; an edited token is never adopted.

use assert_cmd::Command;
use predicates::prelude::*;

fn cg(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env("CHANGEGATE_DATA", dir)
        .env_remove("CHANGEGATE_DATABASE_URL")
        .env_remove("CHANGEGATE_POLICY");
    c
}

async fn exec(dir: &std::path::Path, sql: &str) {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("changegate.db"));
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_logs_a_legacy_token_and_refuses_an_edited_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cg(d)
        .args(["token", "create", "--person", "alice"])
        .assert()
        .success();
    cg(d).args(["audit", "verify"]).assert().success();
    exec(
        d,
        "INSERT INTO server_token (id, digest, person, admin, revoked, created_at, kind, scopes) \
         VALUES ('tok_legacy', 'abcd', 'olga', FALSE, FALSE, '2025-01-05T09:00:00Z', 'person', '')",
    )
    .await;
    cg(d)
        .args(["audit", "verify"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "audit-state-unlogged: token tok_legacy",
        ))
        .stdout(predicate::str::contains("abcd").not());
    cg(d)
        .args(["audit", "adopt", "--dry-run", "--reason", "upgrade"])
        .assert()
        .success()
        .stdout(predicate::str::contains("would adopt token tok_legacy"));
    cg(d).args(["audit", "verify"]).assert().code(1);
    cg(d)
        .args([
            "audit",
            "adopt",
            "--actor",
            "carol",
            "--reason",
            "tokens issued before state proofs",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "adopted token tok_legacy version 1",
        ));
    cg(d).args(["audit", "verify"]).assert().success();
    cg(d)
        .args([
            "audit",
            "log",
            "--kind",
            "audit.adopted",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "tokens issued before state proofs",
        ));
    // Edited afterwards: reported, and adoption refuses to launder it (exit 2, nothing logged).
    exec(
        d,
        "UPDATE server_token SET kind = 'admin', admin = TRUE WHERE id = 'tok_legacy'",
    )
    .await;
    cg(d)
        .args(["audit", "adopt", "--reason", "cleanup"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("audit-adopt-refused"));
    cg(d)
        .args(["audit", "verify"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "audit-state-modified: token tok_legacy",
        ));
}
