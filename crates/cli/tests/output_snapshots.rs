//! Snapshots of what a person reads from a few representative commands, through the built
//! binary: `classify` in its three formats, `window check` allowed and denied, the offline `gate`
//! in text and JSON, and the head of `policy explain`. Repositories come from the test kit (real
//! git, pinned dates); commit ids and temporary paths are replaced by placeholders.

use assert_cmd::Command;
use changegate_testkit::{GitRepo, Redactions};

fn cg() -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY")
        .env_remove("COLUMNS")
        .env("NO_COLOR", "1");
    c
}

/// Run; returns (exit code, stdout, stderr).
fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `main` with a README and express 4; `feature` moves express to 5 and edits the README.
fn express_major() -> (GitRepo, Redactions) {
    let r = GitRepo::with_files(&[
        ("README.md", "# svc\n"),
        (
            "package.json",
            "{\n  \"dependencies\": {\n    \"express\": \"4.19.2\"\n  }\n}\n",
        ),
    ]);
    r.branch("feature");
    r.write("README.md", "# svc\n\nNow on express 5.\n");
    r.write(
        "package.json",
        "{\n  \"dependencies\": {\n    \"express\": \"5.0.0\"\n  }\n}\n",
    );
    r.commit("express 5");
    let redact = Redactions::new()
        .commit(&r.rev_parse("main"), "base")
        .commit(&r.rev_parse("feature"), "head")
        .path(r.path(), "[repo]");
    (r, redact)
}

fn classify(format: &str) -> String {
    let (r, redact) = express_major();
    let (code, out, err) = run(cg()
        .args(["classify", "--format", format, "--repo"])
        .arg(r.path()));
    assert_eq!(code, 0, "{err}");
    redact.apply(&out)
}

#[test]
fn classify_text() {
    insta::assert_snapshot!(classify("text"));
}

#[test]
fn classify_markdown() {
    insta::assert_snapshot!(classify("markdown"));
}

#[test]
fn classify_json() {
    insta::assert_snapshot!(classify("json"));
}

#[test]
fn window_check_allowed() {
    let (code, out, err) = run(cg().args([
        "window",
        "check",
        "--category",
        "2",
        "--at",
        "2026-03-03T10:00:00Z",
    ]));
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn window_check_denied_on_a_weekend() {
    let (code, out, err) = run(cg().args([
        "window",
        "check",
        "--category",
        "2",
        "--at",
        "2026-03-07T12:00:00Z",
    ]));
    assert_eq!(code, 1, "{err}");
    insta::assert_snapshot!(out);
}

fn gate(format: &str) -> String {
    let (r, redact) = express_major();
    let base = r.rev_parse("main");
    let (code, out, err) = run(cg()
        .args(["gate", "--repo"])
        .arg(r.path())
        .args(["--base", &base, "--head", "HEAD"])
        .args(["--at", "2026-03-10T11:00:00Z", "--author", "alice"])
        .args(["--format", format]));
    assert_eq!(code, 1, "a major bump without approvals is denied: {err}");
    redact.apply(&out)
}

#[test]
fn gate_offline_text() {
    insta::assert_snapshot!(gate("text"));
}

#[test]
fn gate_offline_json() {
    insta::assert_snapshot!(gate("json"));
}

#[test]
fn policy_explain_head() {
    let (code, out, err) = run(cg().args(["policy", "explain"]));
    assert_eq!(code, 0, "{err}");
    let head: Vec<&str> = out.lines().take(40).collect();
    insta::assert_snapshot!(head.join("\n"));
}
