//! Snapshots of the three renderings of one classification (plain text, Markdown, JSON): a change
//! to the fixture service touching docs, a dependency's major version, an endpoint, a Kubernetes
//! replica count and a feature flag, classified from a real repository. Any change to what a user
//! reads shows up as a snapshot diff in review. Commit ids are replaced by `<base>` / `<head>`.

mod fixture;

use changegate_testkit::Redactions;
use fixture::*;

/// The classification, and the redactions for its commit ids.
fn classified() -> (changegate_classify::Classification, Redactions) {
    let r = Repo::service();
    r.edit(
        "README.md",
        "Chat backend.",
        "Chat backend, now on express 5.",
    );
    r.edit("package.json", "\"^4.19.2\"", "\"^5.0.0\"");
    let lock: Vec<(&str, &str, bool, &str)> = BASE_LOCK
        .iter()
        .map(|&(n, v, d, l)| (n, if n == "express" { "5.0.0" } else { v }, d, l))
        .collect();
    r.write("package-lock.json", &npm_lock(&lock));
    r.edit(
        "src/rooms.controller.ts",
        "    return ['general'];\n  }\n",
        "    return ['general'];\n  }\n\n  @Get(':id/pins')\n  pins(): string[] {\n    return [];\n  }\n",
    );
    r.edit("k8s/deployment.yaml", "replicas: 3", "replicas: 4");
    r.edit("config/flags.json", "false", "true");
    let c = r.classify();
    let redact = Redactions::new()
        .commit(&r.rev_parse("main"), "base")
        .commit(&r.rev_parse("feature"), "head");
    (c, redact)
}

#[test]
fn text_rendering() {
    let (c, redact) = classified();
    insta::assert_snapshot!(redact.apply(&changegate_classify::render_text(&c)));
}

#[test]
fn markdown_rendering() {
    let (c, redact) = classified();
    insta::assert_snapshot!(redact.apply(&changegate_classify::render_markdown(&c)));
}

#[test]
fn json_rendering() {
    let (c, redact) = classified();
    let json = serde_json::to_string_pretty(&c).unwrap();
    insta::assert_snapshot!(redact.apply(&json));
}

#[test]
fn renderings_are_deterministic() {
    let (a, ra) = classified();
    let (b, rb) = classified();
    assert_eq!(
        ra.apply(&changegate_classify::render_markdown(&a)),
        rb.apply(&changegate_classify::render_markdown(&b))
    );
    // The git builder pins identity and dates: the same change has the same commit ids.
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}
