//! `changegate gate --repo . --base A --head B`: the CI gate with no server, on real git repos.

use std::path::Path;

use assert_cmd::Command;
use changegate_testkit::GitRepo;
use predicates::prelude::*;

/// A repository with one base commit; returns it and the base sha.
fn repo() -> (GitRepo, String) {
    let r = GitRepo::with_files(&[
        ("README.md", "# chat\n"),
        (
            "package.json",
            r#"{ "name": "chat", "version": "1.0.0", "dependencies": { "express": "4.19.2" } }"#,
        ),
    ]);
    let base = r.head();
    (r, base)
}

fn gate(dir: &Path, base: &str, extra: &[&str]) -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY")
        .args(["gate", "--repo"])
        .arg(dir)
        .args(["--base", base, "--head", "HEAD"])
        .args(extra);
    c
}

#[test]
fn docs_change_passes_with_its_checklist_any_time() {
    let (dir, base) = repo();
    dir.write("README.md", "# chat\n\nRunbook link.\n");
    dir.commit("docs");
    // Saturday night: category 1 ships 24/7.
    let at = ["--at", "2026-03-14T23:00:00Z"];
    gate(dir.path(), &base, &at)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("checklist-missing"));
    gate(dir.path(), &base, &at)
        .args([
            "--attest",
            "tests-pass=https://ci/1",
            "--attest",
            "staging-smoke=https://ci/2",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("ALLOWED"))
        .stdout(predicate::str::contains("category 1"));
}

#[test]
fn major_dependency_bump_needs_the_review_board_and_the_maintenance_window() {
    let (dir, base) = repo();
    dir.write(
        "package.json",
        r#"{ "name": "chat", "version": "1.0.0", "dependencies": { "express": "5.0.0" } }"#,
    );
    dir.commit("express 5");
    let out = gate(
        dir.path(),
        &base,
        &[
            "--at",
            "2026-03-10T11:00:00Z",
            "--format",
            "json",
            "--author",
            "alice",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["category"], 3);
    let missing: Vec<&str> = d["missing_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for role in [
        "backend-lead",
        "tech-architect",
        "dba-lead",
        "sre-lead",
        "product-owner",
    ] {
        assert!(missing.contains(&role), "{role} missing from {missing:?}");
    }
    let codes: Vec<&str> = d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["denies"] == true)
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"approval-missing"), "{codes:?}");
    assert!(
        codes.contains(&"window-closed"),
        "Tuesday 11:00 is not a maintenance window: {codes:?}"
    );
    // The author approving is separation-of-duties, not an approval.
    let policy = dir.path().join("people.toml");
    std::fs::write(&policy, "[roles.backend-lead]\nholders = [\"alice\"]\n").unwrap();
    gate(
        dir.path(),
        &base,
        &[
            "--at",
            "2026-03-10T11:00:00Z",
            "--author",
            "alice",
            "--approval",
            "backend-lead=alice",
        ],
    )
    .arg("--policy")
    .arg(&policy)
    .assert()
    .code(1)
    .stdout(predicate::str::contains("approval-"));
}

#[test]
fn a_missing_revision_is_an_input_error() {
    let (dir, _) = repo();
    gate(dir.path(), "does-not-exist", &[])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does-not-exist"));
}

#[test]
fn in_github_actions_a_job_summary_and_error_annotations_at_the_denying_facets() {
    let (dir, base) = repo();
    dir.write(
        "package.json",
        "{\n  \"name\": \"chat\",\n  \"version\": \"1.0.0\",\n  \"dependencies\": { \"express\": \"5.0.0\" }\n}\n",
    );
    dir.commit("express 5");
    let summary = tempfile::NamedTempFile::new().unwrap();
    let out = gate(
        dir.path(),
        &base,
        &["--at", "2026-03-10T11:00:00Z", "--author", "alice"],
    )
    .env("GITHUB_ACTIONS", "true")
    .env("GITHUB_STEP_SUMMARY", summary.path())
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "denied, not waiting: approvals are missing"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error file=package.json,line=")),
        "{stdout}"
    );
    assert!(
        stdout.contains("::error title=changegate%3A approval-missing::"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(summary.path()).unwrap();
    assert!(md.starts_with("## changegate gate: denied"), "{md}");
    assert!(md.contains("backend-lead"), "{md}");
    // Outside GitHub Actions: neither.
    let out = gate(
        dir.path(),
        &base,
        &["--at", "2026-03-10T11:00:00Z", "--author", "alice"],
    )
    .env_remove("GITHUB_ACTIONS")
    .output()
    .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("::error"));
}

/// Exit codes a CI job branches on (GitLab's `allow_failure: exit_codes`, a GitHub Actions
/// step's `continue-on-error` plus its outcome): 0 allowed, 1 denied, 3 waiting — denied only by
/// time (a closed window, a freeze, a lead time), so the job can wait and retry rather than fail.
#[test]
fn exit_3_when_only_time_denies_and_1_when_anything_else_does() {
    let (dir, base) = repo();
    dir.write(
        "package.json",
        r#"{ "name": "chat", "version": "1.0.0", "dependencies": { "express": "4.21.0" } }"#,
    );
    dir.commit("express 4.21");
    let policy = dir.path().join("people.toml");
    std::fs::write(
        &policy,
        "[roles.backend-lead]\nholders = [\"bob\"]\n[roles.sre-lead]\nholders = [\"sam\"]\n[roles.qa]\nholders = [\"quinn\"]\n",
    )
    .unwrap();
    let everything = [
        "--author",
        "alice",
        "--approval",
        "backend-lead=bob",
        "--approval",
        "sre-lead=sam",
        "--attest",
        "tests-pass=https://ci/1",
        "--attest",
        "staging-smoke=https://ci/2",
        "--attest",
        "rollback-plan=https://wiki/rb",
        "--attest",
        "feature-flags=https://flags/1",
        "--attest",
        "dashboards=https://grafana/1",
        "--attest",
        "on-call-notified=https://pager/1",
        "--approval",
        "qa=quinn",
    ];
    let run = |at: &str, args: &[&str]| {
        let mut c = gate(dir.path(), &base, &["--at", at]);
        c.args(args).arg("--policy").arg(&policy);
        c
    };
    // Tuesday 11:00, inside the standard window, everything in place: allowed.
    run("2026-03-10T11:00:00Z", &everything)
        .assert()
        .success()
        .stdout(predicate::str::contains("ALLOWED"));
    // Saturday: the weekend freeze and the closed window are the only reasons: waiting, with the
    // next slot.
    run("2026-03-14T12:00:00Z", &everything)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("freeze-active"))
        .stdout(predicate::str::contains("next allowed slot"))
        .stdout(predicate::str::contains("approval-missing").not());
    // The same Saturday without QA's approval: a reason time does not lift, denied.
    let without = &everything[..everything.len() - 2];
    assert_eq!(without.last(), Some(&"on-call-notified=https://pager/1"));
    run("2026-03-14T12:00:00Z", without)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("approval-missing"))
        .stdout(predicate::str::contains("freeze-active"));
    // JSON says the same: `waiting` only when every denying reason is time.
    let out = run("2026-03-14T12:00:00Z", &everything)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["allowed"], false);
    let denying: Vec<&str> = d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["denies"] == true)
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(!denying.is_empty());
    for code in &denying {
        assert!(
            [
                "freeze-active",
                "window-closed",
                "lead-time-rfc",
                "lead-time"
            ]
            .contains(code)
                || code.starts_with("lead-time"),
            "only time denies: {denying:?}"
        );
    }
}
