//! `changegate classify` end to end: a real repository, the built binary, exit codes and the
//! three output formats.

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use changegate_testkit::GitRepo;

/// A repository whose `feature` branch bumps a dependency's major version and edits the README.
fn repo() -> GitRepo {
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
    r
}

fn changegate() -> Command {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.env_remove("CHANGEGATE_POLICY");
    c
}

#[test]
fn json_output_follows_the_documented_schema() {
    let r = repo();
    let out = changegate()
        .args(["classify", "--format", "json", "--repo"])
        .arg(r.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["category"]["level"], 3);
    assert_eq!(v["category"]["id"], "high-risk");
    assert!(
        v["base"]["rev"]
            .as_str()
            .unwrap()
            .starts_with("merge-base(main")
    );
    let facets = v["facets"].as_array().unwrap();
    let major = facets.iter().find(|f| f["kind"] == "dep-major").unwrap();
    assert_eq!(major["details"], "express 4.19.2 → 5.0.0 major, prod");
    assert_eq!(major["evidence"][0]["path"], "package.json");
    assert_eq!(major["evidence"][0]["line"], 3);
    assert_eq!(major["evidence"][0]["side"], "head");
    assert_eq!(major["source"]["source"], "matrix");
    assert_eq!(
        major["roles"],
        serde_json::json!(["backend-lead", "tech-architect"])
    );
    let roles: Vec<&str> = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"tech-architect") && roles.contains(&"dba-lead"));
    assert_eq!(v["files"]["changed"], 2);
}

#[test]
fn text_and_markdown() {
    let r = repo();
    let text = changegate()
        .args(["classify", "--repo"])
        .arg(r.path())
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(0));
    let t = String::from_utf8(text.stdout).unwrap();
    assert!(t.contains("category 3 — High-Risk Changes"), "{t}");
    assert!(t.contains("package.json:3 (head)"), "{t}");
    let md = changegate()
        .args([
            "classify", "--format", "markdown", "--base", "main", "--repo",
        ])
        .arg(r.path())
        .output()
        .unwrap();
    let m = String::from_utf8(md.stdout).unwrap();
    assert!(m.starts_with("### changegate: category 3"), "{m}");
    assert!(m.contains("| 3 | `dep-major` |"), "{m}");
    assert!(
        m.contains("<details><summary>Why each approver</summary>"),
        "{m}"
    );
}

#[test]
fn input_errors_exit_2_with_a_reason() {
    let r = repo();
    let out = changegate()
        .args(["classify", "--base", "nope", "--repo"])
        .arg(r.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("revision `nope` not found"));
    let empty = tempfile::tempdir().unwrap();
    let out = changegate()
        .args(["classify", "--repo"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a git repository"));
    let bad = r.path().join("cov.info");
    std::fs::write(&bad, "garbage").unwrap();
    let out = changegate()
        .args(["classify", "--coverage"])
        .arg(&bad)
        .arg("--repo")
        .arg(r.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn detectors_list_shows_the_registry() {
    let out = changegate()
        .args(["detectors", "list", "--detectors", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    for id in [
        "docs",
        "deps-npm",
        "deps-cargo",
        "env",
        "config",
        "infra-k8s",
        "runtime",
        "coverage",
        "classifier",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let out = changegate()
        .args(["detectors", "list", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let major = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["facet"] == "dep-major")
        .unwrap();
    assert_eq!(
        major["detectors"],
        serde_json::json!(["deps-npm", "deps-cargo"])
    );
}
