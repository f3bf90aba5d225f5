//! End-to-end classification of real git changes: one scenario per facet the core detectors
//! emit, each matrix row and rule they feed (real diff → expected roles), and the awkward inputs
//! (renames, binary, deleted, oversized files, submodules, malformed files, bad revisions,
//! shallow clones). Every test builds its own repository; none depends on another.

mod fixture;

use changegate_classify::{ClassifyError, Coverage, Options, RoleReason};
use fixture::*;

// ---- category 1: auto-approved -------------------------------------------------------------

#[test]
fn docs_and_comment_only_edits_are_category_1() {
    let r = Repo::service();
    r.edit(
        "README.md",
        "Chat backend.",
        "Chat backend for the mobile apps.",
    );
    r.write("docs/arch.png", "\u{89}PNG\r\n\u{1a}\n\0\0\0 binary");
    r.edit(
        "src/retry.ts",
        "export function",
        "/** Exponential back-off, capped at 30 s. */\nexport function",
    );
    r.edit(
        "src/retry.ts",
        "return 0;",
        "return 0; // nothing to wait for",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["docs-only"]);
    assert_eq!(c.category.level, 1);
    assert!(c.roles.is_empty());
    assert!(
        c.facets
            .iter()
            .any(|f| f.facet.details.contains("comment-only edit: src/retry.ts"))
    );
}

#[test]
fn log_level_only_is_category_1() {
    let r = Repo::service();
    r.edit("config/app.json", "\"info\"", "\"debug\"");
    r.edit("k8s/deployment.yaml", "value: info", "value: debug");
    r.edit("helm/values.yaml", "logLevel: info", "logLevel: warn");
    r.edit(".env.example", "LOG_LEVEL=info", "LOG_LEVEL=debug");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["log-level"]);
    assert_eq!(c.category.level, 1);
    assert!(c.roles.is_empty());
    let ev = &c
        .facets
        .iter()
        .find(|f| f.facet.evidence[0].path == "k8s/deployment.yaml")
        .unwrap()
        .facet
        .evidence[0];
    assert_eq!(ev.line, Some(21));
}

#[test]
fn feature_flag_flip_is_category_1() {
    let r = Repo::service();
    r.edit("config/flags.json", "false", "true");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["feature-flag-config"]);
    assert_eq!(c.category.level, 1);
}

#[test]
fn covered_bug_fix_is_category_1_and_uncovered_is_code_changed() {
    let fix = |r: &Repo| r.edit("src/retry.ts", "attempt <= 0", "attempt < 1");
    let r = Repo::service();
    fix(&r);
    let c = r.classify_with_coverage(
        "SF:/ci/src/retry.ts\nDA:1,5\nDA:2,5\nDA:3,1\nDA:5,4\nend_of_record\n",
    );
    assert_eq!(codes(&c), vec!["bugfix-covered"]);
    assert_eq!(c.category.level, 1);

    let r = Repo::service();
    fix(&r);
    let c =
        r.classify_with_coverage("SF:/ci/src/retry.ts\nDA:1,5\nDA:2,0\nDA:3,0\nend_of_record\n");
    assert_eq!(codes(&c), vec!["code-changed"]);
    assert_eq!((c.category.level, roles(&c)), (2, vec!["backend-lead"]));

    // Cobertura works the same; no report at all is code-changed.
    let r = Repo::service();
    fix(&r);
    let cob = r#"<coverage><packages><package><classes><class filename="src/retry.ts"><lines><line number="2" hits="3"/></lines></class></classes></package></packages></coverage>"#;
    assert_eq!(
        codes(&r.classify_with_coverage(cob)),
        vec!["bugfix-covered"]
    );
    let r = Repo::service();
    fix(&r);
    assert_eq!(codes(&r.classify()), vec!["code-changed"]);
}

// ---- dependencies matrix -------------------------------------------------------------------

fn bump(r: &Repo, name: &str, from: &str, to: &str) {
    r.edit(
        "package.json",
        &format!("\"^{from}\""),
        &format!("\"^{to}\""),
    );
    let lock: Vec<(&str, &str, bool, &str)> = BASE_LOCK
        .iter()
        .map(|(n, v, d, l)| {
            if *n == name {
                (*n, to, *d, *l)
            } else {
                (*n, *v, *d, *l)
            }
        })
        .collect();
    r.write("package-lock.json", &npm_lock(&lock));
}

#[test]
fn dep_patch_is_auto_approved() {
    let r = Repo::service();
    bump(&r, "express", "4.19.2", "4.19.3");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-patch"]);
    assert_eq!((c.category.level, roles(&c)), (1, vec![]));
}

#[test]
fn dep_minor_needs_backend_lead() {
    let r = Repo::service();
    bump(&r, "express", "4.19.2", "4.21.0");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-minor"]);
    assert_eq!((c.category.level, roles(&c)), (2, vec!["backend-lead"]));
}

#[test]
fn dep_major_needs_backend_lead_and_tech_architect_plus_the_review_board() {
    let r = Repo::service();
    bump(&r, "express", "4.19.2", "5.0.0");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-major"]);
    assert_eq!(
        c.facets[0].facet.details,
        "express 4.19.2 → 5.0.0 major, prod"
    );
    let ev = &c.facets[0].facet.evidence[0];
    assert_eq!((ev.path.as_str(), ev.line), ("package.json", Some(16)));
    assert_eq!(c.category.level, 3);
    assert_eq!(roles(&c), with_board(&[]));
    let ta = c.roles.iter().find(|r| r.role == "tech-architect").unwrap();
    assert!(
        ta.reasons
            .iter()
            .any(|x| matches!(x, RoleReason::Facet { facet, .. } if facet == "dep-major"))
    );
    assert!(
        ta.reasons
            .iter()
            .any(|x| matches!(x, RoleReason::CategoryApprovers { level: 3, .. }))
    );
}

#[test]
fn zero_major_minor_bump_is_major() {
    let r = Repo::service();
    r.edit(
        "package.json",
        "\"^7.8.1\"",
        "\"^7.8.1\",\n    \"tiny-lib\": \"^0.3.0\"",
    );
    r.land("add tiny-lib");
    r.edit("package.json", "\"^0.3.0\"", "\"^0.4.0\"");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-major"]);
}

#[test]
fn new_prod_dependency_needs_backend_lead_and_dev_dependency_is_auto() {
    let r = Repo::service();
    r.edit(
        "package.json",
        "\"rxjs\": \"^7.8.1\"",
        "\"rxjs\": \"^7.8.1\",\n    \"zod\": \"^3.23.0\"",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-added-prod"]);
    assert_eq!((c.category.level, roles(&c)), (2, vec!["backend-lead"]));

    let r = Repo::service();
    r.edit(
        "package.json",
        "\"jest\": \"^29.7.0\"",
        "\"jest\": \"^29.7.0\",\n    \"prettier\": \"^3.3.0\"",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-added-dev"]);
    assert_eq!((c.category.level, roles(&c)), (1, vec![]));
}

#[test]
fn dev_dependency_update_is_auto_approved() {
    let r = Repo::service();
    bump(&r, "jest", "29.7.0", "30.0.0");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-dev-changed"]);
    assert_eq!((c.category.level, roles(&c)), (1, vec![]));
}

#[test]
fn socket_io_major_is_a_protocol_change() {
    let r = Repo::service();
    r.edit(
        "package.json",
        "\"rxjs\": \"^7.8.1\"",
        "\"rxjs\": \"^7.8.1\",\n    \"socket.io\": \"^4.7.0\"",
    );
    r.land("socket.io");
    r.edit("package.json", "\"^4.7.0\"", "\"^5.0.0\"");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-major", "protocol-changed"]);
    assert_eq!(roles(&c), with_board(&[]));
}

#[test]
fn cloud_provider_and_region_failover() {
    let r = Repo::service();
    r.write(
        "infra/main.tf",
        "provider \"aws\" {\n  region = \"eu-west-1\"\n}\n",
    );
    r.land("terraform");
    r.write(
        "infra/main.tf",
        "provider \"aws\" {\n  region = \"eu-west-1\"\n  secondary_region = \"eu-central-1\"\n}\n",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["region-failover-changed"]);
    assert_eq!(roles(&c), with_board(&[]));
    let ta = c.roles.iter().find(|r| r.role == "tech-architect").unwrap();
    assert!(
        matches!(&ta.reasons[0], RoleReason::Facet { facet, .. } if facet == "region-failover-changed")
    );
    r.write(
        "infra/main.tf",
        "provider \"google\" {\n  region = \"europe-west1\"\n}\n",
    );
    let c = r.classify();
    assert_eq!(
        codes(&c),
        vec!["cloud-provider-changed", "region-failover-changed"]
    );
    assert_eq!(roles(&c), with_board(&["cfo", "cto"]));
}

#[test]
fn cost_increase_over_500_a_month_needs_sre_lead_and_cfo() {
    let report = |total: &str| {
        format!(
            "{{\n  \"version\": \"0.2\",\n  \"currency\": \"USD\",\n  \"projects\": [{{\"name\": \"infra/prod\"}}],\n  \"totalMonthlyCost\": \"{total}\"\n}}\n"
        )
    };
    let r = Repo::service();
    r.write("infra/infracost.json", &report("1200.00"));
    r.land("cost baseline");
    // Within the $500 threshold: explained, nothing to approve for the cost.
    r.write("infra/infracost.json", &report("1650.00"));
    let c = r.classify();
    assert!(!codes(&c).contains(&"cost-increase"), "{:?}", codes(&c));
    assert_eq!(c.files.unclassified, 0);
    // Over it: the "Cost increase >$500/month" row, SRE Lead + CFO.
    r.write("infra/infracost.json", &report("1800.00"));
    let c = r.classify();
    assert_eq!(codes(&c), vec!["cost-increase"]);
    // Backend Lead reviews every category-2 change.
    assert_eq!(
        (c.category.level, roles(&c)),
        (2, vec!["backend-lead", "cfo", "sre-lead"])
    );
    let f = &c.facets[0];
    assert!(
        f.facet.details.starts_with("monthly cost +$600.00"),
        "{}",
        f.facet.details
    );
    assert_eq!(
        (f.facet.evidence[0].path.as_str(), f.facet.evidence[0].line),
        ("infra/infracost.json", Some(5))
    );
    let cfo = c.roles.iter().find(|r| r.role == "cfo").unwrap();
    assert!(matches!(&cfo.reasons[0], RoleReason::Facet { facet, .. } if facet == "cost-increase"));
    // A policy with a higher threshold takes the same change as within budget.
    let mut p = policy();
    for m in p.matrices.values_mut() {
        for row in &mut m.rows {
            if row.facets.iter().any(|f| f == "cost-increase") {
                row.threshold_usd_per_month = Some(1000.0);
            }
        }
    }
    let c = changegate_classify::classify_repo(r.path(), None, None, &p, None).unwrap();
    assert!(!codes(&c).contains(&"cost-increase"), "{:?}", codes(&c));
}

#[test]
fn removed_dependency_needs_backend_lead() {
    let r = Repo::service();
    r.edit("package.json", ",\n    \"rxjs\": \"^7.8.1\"", "");
    let lock: Vec<_> = BASE_LOCK
        .iter()
        .copied()
        .filter(|p| p.0 != "rxjs")
        .collect();
    r.write("package-lock.json", &npm_lock(&lock));
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-removed"]);
    assert_eq!((c.category.level, roles(&c)), (2, vec!["backend-lead"]));
}

#[test]
fn license_change_needs_legal_and_tech_architect() {
    let r = Repo::service();
    let lock: Vec<_> = BASE_LOCK
        .iter()
        .map(|p| {
            if p.0 == "express" {
                (p.0, p.1, p.2, "GPL-3.0")
            } else {
                *p
            }
        })
        .collect();
    r.write("package-lock.json", &npm_lock(&lock));
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-license-changed"]);
    assert!(c.facets[0].facet.details.contains("MIT → GPL-3.0"));
    let ev = &c.facets[0].facet.evidence[0];
    assert_eq!(
        (ev.path.as_str(), ev.line.is_some()),
        ("package-lock.json", true)
    );
    assert_eq!(roles(&c), vec!["backend-lead", "legal", "tech-architect"]);
    assert_eq!(c.category.level, 2);
}

#[test]
fn cargo_manifest_and_lock() {
    let r = Repo::service();
    let manifest = |v: &str| {
        format!(
            "[package]\nname = \"tool\"\nversion = \"0.1.0\"\nlicense = \"MIT\"\n\n[dependencies]\nserde = \"{v}\"\n"
        )
    };
    let lock = |v: &str| {
        format!(
            "version = 4\n\n[[package]]\nname = \"serde\"\nversion = \"{v}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n[[package]]\nname = \"tool\"\nversion = \"0.1.0\"\n"
        )
    };
    r.write("tools/Cargo.toml", &manifest("1.0.200"));
    r.write("tools/Cargo.lock", &lock("1.0.200"));
    r.land("tool");
    r.write("tools/Cargo.toml", &manifest("1.0.210"));
    r.write("tools/Cargo.lock", &lock("1.0.210"));
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-patch"]);
    assert_eq!(c.category.level, 1);
}

// ---- infrastructure matrix and rules -------------------------------------------------------

#[test]
fn scaling_needs_sre_lead() {
    let r = Repo::service();
    r.edit("k8s/deployment.yaml", "replicas: 3", "replicas: 5");
    r.edit("k8s/deployment.yaml", "memory: 512Mi", "memory: 1Gi");
    r.edit("k8s/hpa.yaml", "maxReplicas: 10", "maxReplicas: 20");
    r.edit("helm/values.yaml", "replicaCount: 2", "replicaCount: 4");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["infra-scaling"]);
    assert_eq!(
        (c.category.level, roles(&c)),
        (2, vec!["backend-lead", "sre-lead"])
    );
    let sre = c.roles.iter().find(|r| r.role == "sre-lead").unwrap();
    assert!(matches!(&sre.reasons[0], RoleReason::Facet { facet, .. } if facet == "infra-scaling"));
}

#[test]
fn env_added_changed_removed() {
    let r = Repo::service();
    r.write(".env.example", "PORT=3000\nLOG_LEVEL=info\nDATABASE_URL=postgres://localhost/chat\nREDIS_URL=redis://localhost\n");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["env-added"]);
    assert_eq!((c.category.level, roles(&c)), (2, vec!["backend-lead"]));

    let r = Repo::service();
    r.edit(".env.example", "PORT=3000", "PORT=8080");
    assert_eq!(codes(&r.classify()), vec!["env-changed"]);

    let r = Repo::service();
    r.edit(
        "k8s/deployment.yaml",
        "            - name: LOG_LEVEL\n              value: info\n",
        "",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["env-removed"]);
    assert_eq!(c.category.level, 3);
}

#[test]
fn secret_rotation_needs_security_lead() {
    let r = Repo::service();
    r.edit("k8s/deployment.yaml", "chat-db-v1", "chat-db-v2");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["secret-rotated"]);
    assert_eq!(
        (c.category.level, roles(&c)),
        (2, vec!["backend-lead", "security-lead"])
    );
}

#[test]
fn node_upgrade_is_a_runtime_upgrade() {
    let r = Repo::service();
    r.edit("Dockerfile", "node:18-alpine", "node:20-alpine");
    r.write(".nvmrc", "20\n");
    r.edit("package.json", "\">=18\"", "\">=20\"");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["runtime-upgrade"]);
    assert_eq!(c.category.level, 3);
    assert_eq!(roles(&c), with_board(&[]));
    assert!(
        c.facets.iter().any(
            |f| f.facet.evidence[0].path == "Dockerfile" && f.facet.evidence[0].line == Some(1)
        )
    );
}

#[test]
fn postgres_major_is_a_database_engine_upgrade() {
    let r = Repo::service();
    r.edit("k8s/postgres.yaml", "postgres:14.11", "postgres:15.6");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["database-engine-upgrade"]);
    assert_eq!(roles(&c), with_board(&[]));
    let dba = c.roles.iter().find(|r| r.role == "dba-lead").unwrap();
    assert!(
        matches!(&dba.reasons[0], RoleReason::Facet { facet, .. } if facet == "database-engine-upgrade")
    );
}

// ---- fail closed ---------------------------------------------------------------------------

#[test]
fn unknown_files_are_unclassified_never_category_1() {
    let r = Repo::service();
    r.edit("Makefile", "npm run build", "npm run build && npm test");
    r.write_bytes("assets/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    // A binary file with a source extension is not judged as code (no lines to cover).
    r.write_bytes("src/blob.ts", b"\0\0\0binary\0");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["unclassified"]);
    assert_eq!(c.facets.len(), 3);
    assert_eq!((c.category.level, roles(&c)), (2, vec!["backend-lead"]));
    let details = |path: &str| {
        c.facets
            .iter()
            .find(|f| f.facet.evidence[0].path == path)
            .map(|f| f.facet.details.clone())
            .unwrap()
    };
    assert!(details("src/blob.ts").contains("binary file added"));
    assert!(details("assets/logo.png").contains("file added that no detector explains"));
}

#[test]
fn app_image_bump_is_not_understood() {
    let r = Repo::service();
    r.edit(
        "k8s/deployment.yaml",
        "chat-backend:1.4.0",
        "chat-backend:1.5.0",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["unclassified"]);
    assert_eq!(c.category.level, 2);
}

#[test]
fn malformed_inputs_are_unparseable_with_the_parser_error() {
    for (path, bad) in [
        ("package-lock.json", "{ \"lockfileVersion\": 3, "),
        ("package.json", "{ name: chat }"),
        ("k8s/deployment.yaml", "spec: [unclosed\n  - x: y: z\n"),
        ("config/flags.json", "{ \"newRoomsUi\": tru }"),
    ] {
        let r = Repo::service();
        r.write(path, bad);
        let c = r.classify();
        assert!(
            codes(&c).contains(&"unparseable"),
            "{path}: {:?}",
            codes(&c)
        );
        assert!(c.category.level >= 2, "{path}");
        let f = c
            .facets
            .iter()
            .find(|f| f.facet.kind == "unparseable")
            .unwrap();
        assert!(
            f.facet.evidence[0]
                .snippet
                .as_deref()
                .is_some_and(|s| !s.is_empty()),
            "{path}"
        );
    }
}

#[test]
fn a_policy_that_maps_unclassified_to_category_1_is_overridden() {
    let r = Repo::service();
    r.edit("Makefile", "npm run build", "make all");
    r.commit("change");
    let mut p = policy();
    p.rules.get_mut("unclassified").unwrap().category = 1;
    let c = changegate_classify::classify_repo(r.path(), None, None, &p, None).unwrap();
    assert_eq!(c.category.level, 2);
}

// ---- awkward file changes ------------------------------------------------------------------

#[test]
fn renames_are_followed() {
    let r = Repo::service();
    std::fs::create_dir_all(r.path().join("docs/ops")).unwrap();
    std::fs::create_dir_all(r.path().join("src/util")).unwrap();
    r.git(&["mv", "docs/runbook.md", "docs/ops/runbook.md"]);
    r.git(&["mv", "src/retry.ts", "src/util/retry.ts"]);
    let c = r.classify();
    assert_eq!(codes(&c), vec!["code-changed", "docs-only"]);
    let code = c
        .facets
        .iter()
        .find(|f| f.facet.kind == "code-changed")
        .unwrap();
    assert_eq!(code.facet.evidence[0].path, "src/util/retry.ts");
    assert_eq!(c.files.changed, 2);
}

#[test]
fn deleted_files() {
    let r = Repo::service();
    r.remove("docs/runbook.md");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["docs-only"]);

    let r = Repo::service();
    r.remove("src/retry.ts");
    let c = r.classify_with_coverage("SF:src/retry.ts\nDA:1,1\nend_of_record\n");
    assert_eq!(codes(&c), vec!["code-changed"]);
}

#[test]
fn oversized_files_are_not_inspected() {
    // Files are read on demand: one a detector reads (a manifest, a source file judged by
    // coverage) is found too large when read and then set aside, as if never read; one no
    // detector reads is unclassified without being read.
    let r = Repo::service();
    let big_yaml = format!("replicas: 2\n{}", "# padding\n".repeat(500));
    r.write("k8s/big.yaml", &big_yaml);
    r.write(
        "src/seed.ts",
        &format!("export const x = 1;\n{}", "// pad\n".repeat(700)),
    );
    r.write("data/seed.json", &"x".repeat(5000));
    r.commit("change");
    let opts = Options {
        max_file_bytes: 4096,
        ..Options::default()
    };
    let c = r.try_classify(None, None, &opts).unwrap();
    assert_eq!(codes(&c), vec!["unclassified"]);
    assert_eq!(c.facets.len(), 3);
    for path in ["k8s/big.yaml", "src/seed.ts"] {
        let f = c
            .facets
            .iter()
            .find(|f| f.facet.evidence[0].path == path)
            .unwrap();
        assert!(
            f.facet.details.contains("too large"),
            "{path}: {}",
            f.facet.details
        );
    }
    assert_eq!(c.files.unclassified, 3);
    assert_eq!(c.files.source, 0);
}

#[test]
fn an_oversized_documentation_file_is_not_category_1() {
    // Documentation is classified by path, but only when it can be inspected.
    let r = Repo::service();
    r.write("docs/big.md", &format!("# Big\n{}", "text\n".repeat(1000)));
    r.edit(
        "docs/runbook.md",
        "Restart the pods.",
        "Restart the pods, then check.",
    );
    r.commit("change");
    let opts = Options {
        max_file_bytes: 4096,
        ..Options::default()
    };
    let c = r.try_classify(None, None, &opts).unwrap();
    assert_eq!(codes(&c), vec!["docs-only", "unclassified"]);
    assert_eq!(c.category.level, 2);
    let big = c
        .facets
        .iter()
        .find(|f| f.facet.kind == "unclassified")
        .unwrap();
    assert_eq!(big.facet.evidence[0].path, "docs/big.md");
    assert!(big.facet.details.contains("too large"));
}

#[test]
fn a_detector_that_needed_an_oversized_neighbour_is_not_trusted() {
    // The manifest changes and its lockfile is too large to inspect: the npm detector cannot
    // know what was resolved, so it concludes nothing (a major bump hidden in the lockfile must
    // not pass as "removed" or as a manifest-only change).
    let r = Repo::service();
    bump(&r, "express", "4.19.2", "5.0.0");
    let lock = std::fs::read_to_string(r.path().join("package-lock.json")).unwrap();
    r.write("package-lock.json", &format!("{lock}{}", " ".repeat(8000)));
    r.commit("change");
    let opts = Options {
        max_file_bytes: 6000,
        ..Options::default()
    };
    let c = r.try_classify(None, None, &opts).unwrap();
    assert_eq!(codes(&c), vec!["unclassified", "unparseable"]);
    let npm = c
        .facets
        .iter()
        .find(|f| f.facet.kind == "unparseable")
        .unwrap();
    assert_eq!(npm.facet.detector, "deps-npm");
    assert_eq!(npm.facet.evidence[0].path, "package-lock.json");
    assert!(
        npm.facet.evidence[0]
            .snippet
            .as_deref()
            .unwrap()
            .contains("too large")
    );
    // Neither file is explained by the detector that could not inspect them.
    let unclassified: Vec<&str> = c
        .facets
        .iter()
        .filter(|f| f.facet.kind == "unclassified")
        .map(|f| f.facet.evidence[0].path.as_str())
        .collect();
    assert_eq!(unclassified, vec!["package-lock.json", "package.json"]);
}

#[test]
fn a_rename_whose_base_alone_is_oversized_is_not_inspected() {
    let r = Repo::service();
    let body = |n: usize| {
        let mut s =
            String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n");
        for i in 0..n {
            s.push_str(&format!("  key{i:03}: value-{i:03}-padding-padding\n"));
        }
        s
    };
    r.write("k8s/cfg.yaml", &body(110));
    r.land("base");
    std::fs::remove_file(r.path().join("k8s/cfg.yaml")).unwrap();
    r.write("k8s/config.yaml", &body(100));
    r.commit("change");
    let opts = Options {
        max_file_bytes: body(105).len() as u64,
        ..Options::default()
    };
    let c = r.try_classify(None, None, &opts).unwrap();
    assert_eq!(codes(&c), vec!["unclassified"]);
    assert_eq!(c.facets.len(), 1, "{:?}", c.facets);
    assert!(
        c.facets[0]
            .facet
            .details
            .contains("k8s/cfg.yaml → k8s/config.yaml")
    );
    assert!(c.facets[0].facet.details.contains("too large"));
}

#[test]
fn a_blob_that_cannot_be_read_is_an_error_not_an_absent_file() {
    // Blobs are read on demand; one missing from the object store (a corrupt clone) must fail
    // the classification (exit 2), never pass as "file deleted" or be skipped.
    let r = Repo::service();
    r.edit("src/retry.ts", "export function", "export async function");
    r.commit("change");
    let oid = r.git(&["rev-parse", "HEAD:src/retry.ts"]);
    let oid = oid.trim();
    std::fs::remove_file(
        r.path()
            .join(".git/objects")
            .join(&oid[..2])
            .join(&oid[2..]),
    )
    .unwrap();
    let e = r.try_classify(None, None, &Options::default()).unwrap_err();
    assert!(matches!(e, ClassifyError::Git(_)), "{e}");
    // Through the library without checking the error: the file is set aside, never read as
    // deleted.
    let change = changegate_classify::open_change(r.path(), None, None, 1 << 20).unwrap();
    let none = std::collections::BTreeMap::new();
    let c = changegate_classify::classify(
        &changegate_classify::ClassifyInput {
            files: &change.files,
            contents: &change.contents,
            oversized: &none,
            coverage: None,
            messages: &[],
            labels: &[],
        },
        &policy(),
        &Options::default(),
    );
    assert_eq!(codes(&c), vec!["unclassified"]);
    assert!(c.facets[0].facet.details.contains("could not be read"));
    assert!(change.contents.take_error().is_some());
}

#[test]
fn an_oversized_side_of_a_modified_file_is_not_inspected() {
    // Only the head side is over the limit: the whole file is set aside, nothing is concluded
    // from its base alone (e.g. "every key removed").
    let r = Repo::service();
    let text = std::fs::read_to_string(r.path().join("k8s/deployment.yaml")).unwrap();
    r.write(
        "k8s/deployment.yaml",
        &format!("{text}\n{}", "# padding\n".repeat(2000)),
    );
    r.commit("change");
    let opts = Options {
        max_file_bytes: text.len() as u64 + 100,
        ..Options::default()
    };
    let c = r.try_classify(None, None, &opts).unwrap();
    assert_eq!(codes(&c), vec!["unclassified"]);
    assert!(c.facets[0].facet.details.contains("too large"));
    assert_eq!(c.facets[0].facet.evidence[0].path, "k8s/deployment.yaml");
}

#[test]
fn submodule_pointer_moves_are_unclassified() {
    let r = Repo::service();
    let sha = r.git(&["rev-parse", "HEAD"]);
    r.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{sha},vendor/lib"),
    ]);
    r.git(&["commit", "-q", "-m", "submodule"]);
    let c = r.try_classify(None, None, &Options::default()).unwrap();
    assert_eq!(codes(&c), vec!["unclassified"]);
    assert!(c.facets[0].facet.details.contains("submodule"));
}

#[test]
fn mixed_change_takes_the_highest_category_and_the_union_of_roles() {
    let r = Repo::service();
    bump(&r, "express", "4.19.2", "5.0.0");
    r.edit("README.md", "Chat backend.", "Chat backend (express 5).");
    r.edit("k8s/deployment.yaml", "replicas: 3", "replicas: 4");
    r.edit("k8s/deployment.yaml", "chat-db-v1", "chat-db-v2");
    let c = r.classify();
    assert_eq!(
        codes(&c),
        vec!["dep-major", "docs-only", "infra-scaling", "secret-rotated"]
    );
    assert_eq!(c.category.level, 3);
    assert_eq!(roles(&c), with_board(&["security-lead"]));
    assert_eq!(c.facets[0].category, 3);
    assert_eq!(c.files.changed, 4);
    assert_eq!(c.files.explained, 4);
}

#[test]
fn empty_change() {
    let r = Repo::service();
    let c = r.classify();
    assert!(c.facets.is_empty());
    assert_eq!(c.category.level, 1);
}

// ---- input errors --------------------------------------------------------------------------

#[test]
fn not_a_repository() {
    let d = tempfile::tempdir().unwrap();
    let e = changegate_classify::classify_repo(d.path(), Some("HEAD~1"), None, &policy(), None)
        .unwrap_err();
    assert!(matches!(e, ClassifyError::NotARepo { .. }), "{e}");
}

/// `classify_repo_within` (the server's `--repo-root`) opens the directory named, never a parent
/// repository, refuses a `.git` that points outside the root, and names the repository by the
/// relative path it was given.
#[test]
fn within_a_root_no_parent_repository_is_opened() {
    let parent = GitRepo::new();
    parent.write("README.md", "one\n");
    let base = parent.commit("base");
    parent.write("README.md", "two\n");
    parent.commit("docs");
    let root = parent.path().join("root");
    std::fs::create_dir_all(root.join("plain")).unwrap();
    // `discover` (the CLI's way) finds the parent; the server's way does not.
    assert!(
        changegate_classify::classify_repo(&root.join("plain"), Some(&base), None, &policy(), None)
            .is_ok()
    );
    let e = changegate_classify::classify_repo_within(
        &root,
        std::path::Path::new("plain"),
        Some(&base),
        None,
        &policy(),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ClassifyError::NotARepo { path } if path == std::path::Path::new("plain")),
        "{e}"
    );
    assert!(
        !e.to_string().contains(&*parent.path().to_string_lossy()),
        "{e}"
    );
    std::fs::create_dir_all(root.join("linked")).unwrap();
    std::fs::write(
        root.join("linked/.git"),
        format!("gitdir: {}\n", parent.path().join(".git").display()),
    )
    .unwrap();
    let e = changegate_classify::classify_repo_within(
        &root,
        std::path::Path::new("linked"),
        Some(&base),
        None,
        &policy(),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, ClassifyError::OutsideRoot { .. }), "{e}");
    // A repository under the root is classified, and its errors name it relatively.
    let inner = GitRepo::init_at(&root.join("svc"));
    inner.write("README.md", "one\n");
    let inner_base = inner.commit("base");
    inner.write("README.md", "two\n");
    inner.commit("docs");
    let svc = std::path::Path::new("svc");
    assert!(
        changegate_classify::classify_repo_within(
            &root,
            svc,
            Some(&inner_base),
            Some("HEAD"),
            &policy(),
            None
        )
        .is_ok()
    );
    let e = changegate_classify::classify_repo_within(
        &root,
        svc,
        Some("nope"),
        Some("HEAD"),
        &policy(),
        None,
    )
    .unwrap_err();
    assert!(
        !e.to_string().contains(&*parent.path().to_string_lossy()),
        "{e}"
    );
}

#[test]
fn unknown_revision() {
    let r = Repo::service();
    let e = r
        .try_classify(Some("no-such-branch"), None, &Options::default())
        .unwrap_err();
    assert!(
        matches!(&e, ClassifyError::UnknownRevision { rev, .. } if rev == "no-such-branch"),
        "{e}"
    );
}

#[test]
fn shallow_clone_missing_the_base_says_how_to_fix() {
    let r = Repo::service();
    r.edit("README.md", "Chat", "Chatty");
    let first = r.git(&["rev-parse", "main"]);
    r.commit("change");
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", r.path().display());
    git_in(
        clone.path(),
        &[
            "clone", "-q", "--depth", "1", "--branch", "feature", &url, "c",
        ],
    );
    let repo = clone.path().join("c");
    let e =
        changegate_classify::classify_repo(&repo, Some(&first), None, &policy(), None).unwrap_err();
    assert!(matches!(e, ClassifyError::ShallowClone { .. }), "{e}");
    assert!(
        e.to_string().contains("git fetch --unshallow") && e.to_string().contains("fetch-depth: 0")
    );
}

#[test]
fn no_default_branch() {
    let r = Repo::service();
    r.git(&["branch", "-q", "-m", "main", "trunk"]);
    let e = r.try_classify(None, None, &Options::default()).unwrap_err();
    assert!(matches!(e, ClassifyError::NoDefaultBranch { .. }), "{e}");
}

#[test]
fn coverage_reports_must_parse() {
    assert!(Coverage::parse("not a report").is_err());
}
