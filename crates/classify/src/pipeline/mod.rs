//! The classification pipeline: run every detector, account for every changed file, map facets
//! to requirements through the policy, and combine them into the change's category and roles.
//!
//! Fail closed, in every branch:
//! - a changed file no detector explains becomes an `unclassified` facet (or `code-changed` /
//!   `bugfix-covered` for source files, decided by coverage of the changed lines);
//! - oversized files and submodule pointer moves are never inspected: `unclassified`;
//! - a detector that panics yields an `unparseable` facet instead of silently vanishing;
//! - a facet the policy does not map is treated as `unclassified`;
//! - `unclassified` and `unparseable` never map below the second-lowest category, whatever the
//!   policy file says, so nothing changegate does not understand comes out as category 1.

mod catalogue;
mod code;
mod requirements;
mod run;
#[cfg(test)]
mod tests;
mod watched;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use changegate_policy::facets::FacetCode;
use changegate_policy::{Level, Policy, RoleId, RuleSource};
use serde::Serialize;

pub use catalogue::{DetectorInfo, detector_catalogue};

use crate::coverage::Coverage;
use crate::git::{ClassifyError, Revision, open_change, open_change_within};
use crate::{ChangedFile, Contents, Facet, detectors};

/// Version of the JSON output schema (docs/classify.md). Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Classifier settings the policy model does not (yet) carry. Defaults are documented in
/// docs/classify.md.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Files larger than this (either side) are not read: they become `unclassified`.
    pub max_file_bytes: u64,
    /// Extensions (no dot, lower case) of source files: unexplained changes to them are
    /// `code-changed`, or `bugfix-covered` with enough coverage.
    pub source_extensions: Vec<String>,
    /// Labels of the pull request the change belongs to, as an authenticated GitHub webhook
    /// reported them (never a request body): one of `rules.bugfix-covered.fix_labels` marks the
    /// change as a fix.
    pub pr_labels: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_file_bytes: 8 * 1024 * 1024,
            source_extensions: [
                "ts", "tsx", "mts", "cts", "js", "jsx", "mjs", "cjs", "rs", "py", "go", "java",
                "kt", "kts", "rb", "php", "cs", "c", "h", "cc", "cpp", "hpp", "swift", "scala",
                "sh",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            pr_labels: Vec::new(),
        }
    }
}

/// What the pure pipeline classifies.
pub struct ClassifyInput<'a> {
    /// Changed files.
    pub files: &'a [ChangedFile],
    /// Contents of both sides.
    pub contents: &'a dyn Contents,
    /// Files too large to read (path → size); they are classified without being read.
    pub oversized: &'a BTreeMap<String, u64>,
    /// Line coverage of head, when a report was given.
    pub coverage: Option<&'a Coverage>,
    /// Messages of the change's commits (read from git): a conventional-commit type of
    /// `rules.bugfix-covered.fix_types` marks the change as a fix.
    pub messages: &'a [String],
    /// Pull-request labels (from an authenticated webhook): one of
    /// `rules.bugfix-covered.fix_labels` marks the change as a fix.
    pub labels: &'a [String],
}

/// A category, as the policy names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryRef {
    /// Level (1 = lowest risk).
    pub level: Level,
    /// Policy key, e.g. `high-risk`.
    pub id: String,
    /// Name, e.g. `High-Risk Changes (Multi-Approval)`.
    pub name: String,
}

/// A facet with what the policy requires for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassifiedFacet {
    /// The facet.
    #[serde(flatten)]
    pub facet: Facet,
    /// Category level it puts the change in.
    pub category: Level,
    /// The change type as the policy names it (matrix row or rule).
    pub change: String,
    /// Roles that must all approve.
    pub roles: Vec<RoleId>,
    /// The policy element behind it; absent when no element maps it (fail-closed fallback).
    pub source: Option<RuleSource>,
    /// Why the classifier overrode or substituted the policy's mapping, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why a role is required.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "because", rename_all = "kebab-case")]
pub enum RoleReason {
    /// A facet's matrix row or rule names the role.
    Facet {
        /// Facet code.
        facet: FacetCode,
        /// The policy's change type.
        change: String,
        /// Matrix row or rule.
        source: Option<RuleSource>,
    },
    /// The change's category requires the role for every change.
    CategoryApprovers {
        /// Category level.
        level: Level,
        /// Category key.
        category: String,
    },
}

/// A required approver role and the reasons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequiredRole {
    /// Role id.
    pub role: RoleId,
    /// Role name from the policy.
    pub name: String,
    /// Every reason (deduplicated per facet code).
    pub reasons: Vec<RoleReason>,
}

/// File accounting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    /// Changed files.
    pub changed: usize,
    /// Explained by a detector.
    pub explained: usize,
    /// Source files judged by coverage (`code-changed` / `bugfix-covered`).
    pub source: usize,
    /// Unexplained (`unclassified`), including oversized files and submodules.
    pub unclassified: usize,
}

/// The classification of a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// JSON schema version.
    pub schema_version: u32,
    /// Base revision (when classified from git).
    pub base: Option<Revision>,
    /// Head revision (when classified from git).
    pub head: Option<Revision>,
    /// The change's category: the highest of its facets.
    pub category: CategoryRef,
    /// Every facet, highest category first.
    pub facets: Vec<ClassifiedFacet>,
    /// Union of the facets' roles and the category's approvers, in policy order.
    pub roles: Vec<RequiredRole>,
    /// File accounting.
    pub files: FileSummary,
    /// Remarks (fail-closed substitutions, empty change).
    pub notes: Vec<String>,
}

impl Classification {
    /// Facet codes, in output order (deduplicated).
    pub fn facet_codes(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.facets
            .iter()
            .map(|f| f.facet.kind.as_str())
            .filter(|k| seen.insert(*k))
            .collect()
    }
    /// Required role ids.
    pub fn role_ids(&self) -> Vec<&str> {
        self.roles.iter().map(|r| r.role.as_str()).collect()
    }
}

/// Classify a change: pure, no IO.
pub fn classify(input: &ClassifyInput<'_>, policy: &Policy, options: &Options) -> Classification {
    classify_with(input, policy, options, &detectors::all())
}

/// [`classify`] with a given detector registry (tests inject failing detectors).
fn classify_with(
    input: &ClassifyInput<'_>,
    policy: &Policy,
    options: &Options,
    all: &[&dyn crate::Detector],
) -> Classification {
    // Contents are read on demand, so a file too large to inspect (or unreadable) is only found
    // when something reads it (its reads then answer "absent"). When that happens the change is
    // classified again with those files set aside, as if they had been known from the start:
    // nothing is ever concluded from a file that could not be inspected. Blobs already read stay
    // cached, so the second pass costs only the detectors' own work; each pass sets aside at
    // least one more file, so this ends.
    let mut aside: BTreeMap<String, String> = input
        .oversized
        .iter()
        .map(|(p, size)| (p.clone(), crate::too_large(*size, options.max_file_bytes)))
        .collect();
    loop {
        let c = run::classify_once(input, &aside, policy, options, all);
        let found = input.contents.not_inspected();
        let mut more = false;
        for f in input.files {
            let why = [f.path.as_str(), f.base_path()]
                .iter()
                .find_map(|p| found.get(*p));
            if let (Some(why), false) = (why, aside.contains_key(&f.path)) {
                aside.insert(f.path.clone(), why.clone());
                more = true;
            }
        }
        if !more {
            return c;
        }
    }
}

/// Read the change from git and classify it (see [`open_change`] for the defaults).
pub fn classify_repo(
    repo: &Path,
    base: Option<&str>,
    head: Option<&str>,
    policy: &Policy,
    coverage: Option<&Coverage>,
) -> Result<Classification, ClassifyError> {
    classify_repo_with(repo, base, head, policy, coverage, &Options::default())
}

/// [`classify_repo`] with explicit [`Options`].
pub fn classify_repo_with(
    repo: &Path,
    base: Option<&str>,
    head: Option<&str>,
    policy: &Policy,
    coverage: Option<&Coverage>,
    options: &Options,
) -> Result<Classification, ClassifyError> {
    classify_git_change(
        open_change(repo, base, head, options.max_file_bytes)?,
        policy,
        coverage,
        options,
    )
}

/// [`classify_repo`] for a program that may read only repositories under `root` (the server's
/// `--repo-root`): the repository is `root/rel` itself, never a parent directory, and its git
/// directory must be under `root` too (see [`crate::open_change_within`]). Errors name it by
/// `rel`, never by an absolute path.
pub fn classify_repo_within(
    root: &Path,
    rel: &Path,
    base: Option<&str>,
    head: Option<&str>,
    policy: &Policy,
    coverage: Option<&Coverage>,
) -> Result<Classification, ClassifyError> {
    let options = Options::default();
    let change = open_change_within(root, rel, base, head, options.max_file_bytes)?;
    classify_git_change(change, policy, coverage, &options)
}

fn classify_git_change(
    change: crate::git::GitChange,
    policy: &Policy,
    coverage: Option<&Coverage>,
    options: &Options,
) -> Result<Classification, ClassifyError> {
    let none = BTreeMap::new();
    let input = ClassifyInput {
        files: &change.files,
        contents: &change.contents,
        oversized: &none,
        coverage,
        messages: &change.messages,
        labels: &options.pr_labels,
    };
    let mut c = classify(&input, policy, options);
    // A blob that could not be read was answered as absent: the result is not to be trusted.
    if let Some(e) = change.contents.take_error() {
        return Err(ClassifyError::Git(e));
    }
    c.base = Some(change.base.clone());
    c.head = Some(change.head.clone());
    free_later(change);
    Ok(c)
}

/// Frees a change after its classification, off the caller's path: its blobs and libgit2's
/// object caches (every tree the diff read, some 17,000 on a 10,000-file change) took 4–16 ms to
/// free, serially, after the answer was known (docs/adr/0012-classifier-performance.md, decision
/// 11). On a thread of its own, so a caller that exits right away (the CLI) does not wait for it;
/// when no thread can be started, the change is freed here (the closure is dropped unrun).
fn free_later(change: crate::git::GitChange) {
    let _ = std::thread::Builder::new()
        .name("changegate-free".into())
        .spawn(move || drop(change));
}
