//! `changegate policy …` end to end through the real binary.

use assert_cmd::Command;
use predicates::prelude::*;

fn cg() -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY");
    c
}

#[test]
fn explain_shows_who_approves_what_and_when() {
    cg().args(["policy", "explain"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Who approves what"))
        .stdout(predicate::str::contains("Tech Architect + Product Owner"))
        .stdout(predicate::str::contains(
            "mon 10:00-16:00; tue/wed/thu 10:00-18:00; fri 10:00-14:00 (UTC)",
        ))
        .stdout(predicate::str::contains("fri 16:00 - mon 08:00"));
}

#[test]
fn explain_markdown_has_tables() {
    cg().args(["policy", "explain", "--format", "markdown"])
        .assert()
        .success()
        .stdout(predicate::str::contains("## Categories"))
        .stdout(predicate::str::contains("| New table"));
}

#[test]
fn show_validate_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let shown = cg().args(["policy", "show"]).output().unwrap();
    assert!(shown.status.success());
    let file = dir.path().join("effective.toml");
    std::fs::write(&file, &shown.stdout).unwrap();
    cg().args(["policy", "validate"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("valid"));
    // Showing the shown file gives the same text.
    let again = cg()
        .args(["policy", "show", "--policy"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&shown.stdout)
    );
}

#[test]
fn invalid_file_exits_2_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[windows]\ntimezone = \"Mars/Base\"\n").unwrap();
    cg().args(["policy", "validate"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml:2:12"))
        .stderr(predicate::str::contains("unknown time zone `Mars/Base`"));
}

#[test]
fn missing_file_exits_2() {
    cg().args(["policy", "validate", "/nonexistent/policy.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read policy file /nonexistent/policy.toml",
        ));
}

#[test]
fn policy_env_var_selects_the_file_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(&file, "[roles.backend-lead]\nholders = [\"alice\"]\n").unwrap();
    cg().env("CHANGEGATE_POLICY", &file)
        .args(["policy", "explain"])
        .assert()
        .success()
        .stdout(predicate::str::contains("alice"));
    cg().env("CHANGEGATE_POLICY", dir.path().join("missing.toml"))
        .args(["policy", "show"])
        .assert()
        .code(2);
}

#[test]
fn schema_is_json_schema() {
    let out = cg().args(["policy", "schema"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["title"], "Policy");
    assert!(v["properties"]["matrices"].is_object());
}

#[test]
fn usage_error_exits_2() {
    cg().args(["policy", "frobnicate"]).assert().code(2);
}

/// `changegate policy show | head -1`: a reader that stops early gets no panic message on the
/// terminal, and the exit status is SIGPIPE's 141 — never 0, which would read as "allowed".
#[test]
fn a_closed_stdout_ends_quietly_with_141() {
    // The read end is closed before the program starts: its first write fails, every time.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("changegate"))
        .args(["policy", "show"])
        .env_remove("CHANGEGATE_POLICY")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
