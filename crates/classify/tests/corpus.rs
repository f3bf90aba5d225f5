//! The classifier scored on real history: the labelled commits of `corpus/real.toml` (public
//! NestJS + Prisma/TypeORM + PostgreSQL repositories; only URLs, shas, paths and labels are
//! stored, never their code), classified from local mirrors of those repositories.
//!
//! The mirrors are not part of the repository. Where they are absent (CI) the test says so and
//! passes without scoring; docs/classification-corpus.md gives the command that fetches them and
//! runs the scoring:
//!
//! ```text
//! CHANGEGATE_CORPUS_MIRRORS=/work/.mirror cargo test -p changegate-classify --test corpus -- --nocapture
//! ```
//!
//! `CHANGEGATE_CORPUS_READING=strict` scores the strict policy reading instead
//! (`classify.transitive = "strict"`, `classify.dev_updates = "graded"`), for comparison; the
//! goals are asserted only for the seed reading.
//!
//! `CHANGEGATE_CORPUS_MIRRORS` is a directory holding `<owner>+<name>/repo` (a bare git
//! directory per repository); default `/work/.mirror`. `CHANGEGATE_CORPUS_REQUIRE=1` turns a
//! missing mirror into a failure.
//!
//! Scored, as the issue sets the goals: exact category on the unambiguous rows (≥ 90 %), the
//! required roles a superset of the labelled ones, and never category 1 where the label is
//! higher (on every row, ambiguous or not).

use std::collections::BTreeMap;
use std::path::PathBuf;

use changegate_classify::{Options, classify_repo_with};
use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    repo: Vec<RepoRow>,
    commit: Vec<Row>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RepoRow {
    name: String,
    url: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Row {
    repo: String,
    sha: String,
    paths: Vec<String>,
    category: u8,
    #[serde(default)]
    roles: Vec<String>,
    reason: String,
    #[serde(default)]
    ambiguous: bool,
}

fn corpus() -> Corpus {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/real.toml");
    let text = std::fs::read_to_string(path).expect("corpus/real.toml");
    toml::from_str(&text).expect("corpus/real.toml parses")
}

#[test]
fn corpus_file_is_well_formed() {
    let c = corpus();
    let repos: Vec<&str> = c.repo.iter().map(|r| r.name.as_str()).collect();
    assert!(repos.len() >= 3, "at least three repositories");
    assert!(c.commit.len() >= 100, "at least 100 commits");
    let mut seen = std::collections::BTreeSet::new();
    for r in &c.commit {
        assert!(repos.contains(&r.repo.as_str()), "{}: unknown repo", r.sha);
        assert_eq!(r.sha.len(), 40, "{}: full sha", r.sha);
        assert!(seen.insert(&r.sha), "{} twice", r.sha);
        assert!((1..=4).contains(&r.category), "{}: category", r.sha);
        assert!(!r.reason.is_empty() && !r.paths.is_empty(), "{}", r.sha);
    }
}

struct Miss {
    repo: String,
    sha: String,
    label: u8,
    got: u8,
    ambiguous: bool,
    missing_roles: Vec<String>,
    facets: String,
}

#[test]
fn classifier_scores_on_real_history() {
    let root = std::env::var_os("CHANGEGATE_CORPUS_MIRRORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/.mirror"));
    let require = std::env::var_os("CHANGEGATE_CORPUS_REQUIRE").is_some();
    let c = corpus();
    let mut policy = changegate_policy::load_default().policy;
    let strict = std::env::var("CHANGEGATE_CORPUS_READING").is_ok_and(|v| v == "strict");
    if strict {
        policy.classify.transitive = changegate_policy::Transitive::Strict;
        policy.classify.dev_updates = changegate_policy::DevUpdates::Graded;
    }
    let mirror = |name: &str| root.join(name.replace('/', "+")).join("repo");
    let absent: Vec<&str> = c
        .repo
        .iter()
        .filter(|r| !mirror(&r.name).exists())
        .map(|r| r.name.as_str())
        .collect();
    if !absent.is_empty() {
        let msg = format!(
            "corpus mirrors absent under {} ({}): not scored; see docs/classification-corpus.md",
            root.display(),
            absent.join(", ")
        );
        assert!(!require, "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let (mut exact, mut unamb, mut amb_exact, mut amb) = (0, 0, 0, 0);
    let (mut roles_ok, mut low) = (0, 0);
    let mut misses: Vec<Miss> = Vec::new();
    let mut per_repo: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in &c.commit {
        let repo = mirror(&r.repo);
        let base = format!("{}^", r.sha);
        let got = classify_repo_with(
            &repo,
            Some(&base),
            Some(&r.sha),
            &policy,
            None,
            &Options::default(),
        )
        .unwrap_or_else(|e| panic!("{} {}: {e}", r.repo, r.sha));
        let level = got.category.level;
        let ids = got.role_ids();
        let missing: Vec<String> = r
            .roles
            .iter()
            .filter(|x| !ids.contains(&x.as_str()))
            .cloned()
            .collect();
        if missing.is_empty() {
            roles_ok += 1;
        }
        if level == 1 && r.category > 1 {
            low += 1;
        }
        let e = per_repo.entry(&r.repo).or_default();
        e.1 += 1;
        if r.ambiguous {
            amb += 1;
            amb_exact += usize::from(level == r.category);
        } else {
            unamb += 1;
            if level == r.category {
                exact += 1;
                e.0 += 1;
            }
        }
        if level != r.category || !missing.is_empty() {
            misses.push(Miss {
                repo: r.repo.clone(),
                sha: r.sha.clone(),
                label: r.category,
                got: level,
                ambiguous: r.ambiguous,
                missing_roles: missing,
                facets: got
                    .facets
                    .iter()
                    .take(4)
                    .map(|f| format!("{} ({})", f.facet.kind, f.facet.details))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
    }
    let pct = |a: usize, b: usize| {
        if b == 0 {
            100.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    println!(
        "corpus: {} commits from {} repositories",
        c.commit.len(),
        c.repo.len()
    );
    println!(
        "exact category, unambiguous rows: {exact}/{unamb} ({:.1} %)",
        pct(exact, unamb)
    );
    println!(
        "exact category, ambiguous rows: {amb_exact}/{amb} ({:.1} %)",
        pct(amb_exact, amb)
    );
    println!(
        "required roles ⊇ labelled roles: {roles_ok}/{} ({:.1} %)",
        c.commit.len(),
        pct(roles_ok, c.commit.len())
    );
    println!("category 1 where the label is higher: {low}");
    for m in &misses {
        println!(
            "MISS {} {} label {} got {}{}{} :: {}",
            m.repo,
            &m.sha[..10],
            m.label,
            m.got,
            if m.ambiguous { " (ambiguous)" } else { "" },
            if m.missing_roles.is_empty() {
                String::new()
            } else {
                format!(" missing roles {}", m.missing_roles.join(","))
            },
            m.facets
        );
    }
    if strict {
        println!("(strict reading: scores for comparison, goals not asserted)");
        return;
    }
    assert_eq!(low, 0, "category 1 where the label is higher");
    assert!(
        pct(exact, unamb) >= 90.0,
        "exact category on unambiguous rows below 90 %"
    );
}
