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

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use changegate_policy::{Level, Policy, RoleId, RuleSource};
use rayon::prelude::*;
use serde::Serialize;

use crate::coverage::Coverage;
use crate::git::{ClassifyError, Revision, open_change};
use crate::util::{ext, facet};
use crate::{Change, ChangedFile, Contents, Evidence, Facet, FileStatus, Side, detectors};

/// Version of the JSON output schema (docs/classify.md). Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Facets that exist to fail closed.
const FAIL_CLOSED: &[&str] = &["unclassified", "unparseable", "code-changed"];

/// Classifier settings the policy model does not (yet) carry. Defaults are documented in
/// docs/classify.md.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Files larger than this (either side) are not read: they become `unclassified`.
    pub max_file_bytes: u64,
    /// Extensions (no dot, lower case) of source files: unexplained changes to them are
    /// `code-changed`, or `bugfix-covered` with enough coverage.
    pub source_extensions: Vec<String>,
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
        }
    }
}

/// A detector as `changegate detectors list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetectorInfo {
    /// Stable id (the `detector` field of facets).
    pub id: &'static str,
    /// One line.
    pub description: &'static str,
    /// Facet codes it may emit.
    pub facets: Vec<&'static str>,
}

/// Every detector of the registry, plus the pipeline's own fail-closed steps (`classifier`,
/// `coverage`), in run order.
pub fn detector_catalogue() -> Vec<DetectorInfo> {
    let mut out: Vec<DetectorInfo> = detectors::all()
        .into_iter()
        .map(|d| DetectorInfo {
            id: d.id(),
            description: d.description(),
            facets: d.facets().to_vec(),
        })
        .collect();
    out.push(DetectorInfo {
        id: "coverage",
        description: "Source files no detector explains: bugfix-covered when the coverage report covers more than \
                      rules.bugfix-covered.min_changed_line_coverage of the changed lines, else code-changed",
        facets: vec!["bugfix-covered", "code-changed"],
    });
    out.push(DetectorInfo {
        id: "classifier",
        description: "Fail closed: any other file no detector explains, oversized files, submodules; detectors that panic",
        facets: vec!["unclassified", "unparseable"],
    });
    out
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
        facet: String,
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
        let c = classify_once(input, &aside, policy, options, all);
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

/// [`Contents`] as one detector sees it: notes every file it needed that could not be
/// inspected, so its conclusions (drawn from an "absent" file) are not trusted.
struct Watched<'a> {
    inner: &'a dyn Contents,
    needed: std::sync::Mutex<BTreeSet<String>>,
}

impl Watched<'_> {
    /// Notes `path` when it could not be inspected.
    fn note(&self, path: &str) {
        if self.inner.is_not_inspected(path) {
            self.needed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_string());
        }
    }
    /// A read that answered "absent" may be a file that could not be inspected.
    fn check<T>(&self, path: &str, r: Option<T>) -> Option<T> {
        if r.is_none() {
            self.note(path);
        }
        r
    }
}

impl Contents for Watched<'_> {
    fn base(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.check(path, self.inner.base(path))
    }
    fn head(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.check(path, self.inner.head(path))
    }
    fn is_binary(&self, f: &ChangedFile) -> bool {
        let b = self.inner.is_binary(f);
        self.note(&f.path);
        self.note(f.base_path());
        b
    }
    fn not_inspected(&self) -> BTreeMap<String, String> {
        self.inner.not_inspected()
    }
    fn is_not_inspected(&self, path: &str) -> bool {
        self.inner.is_not_inspected(path)
    }
}

/// One classification pass, with the files of `aside` (path → why) set aside.
fn classify_once(
    input: &ClassifyInput<'_>,
    aside: &BTreeMap<String, String>,
    policy: &Policy,
    options: &Options,
    all: &[&dyn crate::Detector],
) -> Classification {
    let mut notes = Vec::new();
    let inspectable: Vec<ChangedFile> = input
        .files
        .iter()
        .filter(|f| !f.submodule && !aside.contains_key(&f.path))
        .cloned()
        .collect();
    // The cost detector compares against the threshold of the matrix row for `cost-increase`
    // (the lowest, should several rows list it; none when a row has no threshold: then any
    // increase counts).
    let thresholds: Option<Vec<f64>> = policy
        .matrices
        .values()
        .flat_map(|m| &m.rows)
        .filter(|r| r.facets.iter().any(|f| f == "cost-increase"))
        .map(|r| r.threshold_usd_per_month)
        .collect();
    let settings = changegate_policy::ClassifySettings {
        cost_threshold_usd_per_month: thresholds.and_then(|t| t.into_iter().reduce(f64::min)),
        ..policy.classify.clone()
    };
    let mut facets: Vec<Facet> = Vec::new();
    let mut explained: BTreeSet<String> = BTreeSet::new();
    // Detectors are independent and `Sync`: they run on rayon's work-stealing pool (the heavy
    // ones split their files over it too), then merge in registry order so the output does not
    // depend on scheduling.
    let run = |d: &dyn crate::Detector| -> crate::Finding {
        let watched = Watched {
            inner: input.contents,
            needed: Default::default(),
        };
        let change = Change {
            files: &inspectable,
            contents: &watched,
            settings: &settings,
        };
        match catch_unwind(AssertUnwindSafe(|| d.detect(&change))) {
            // Conclusions drawn from a file that read as absent because it could not be
            // inspected are void: the detector's files are not understood.
            Ok(_)
                if !watched
                    .needed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty() =>
            {
                let needed = watched
                    .needed
                    .into_inner()
                    .unwrap_or_else(|e| e.into_inner());
                let why = input.contents.not_inspected();
                crate::Finding {
                    facets: vec![facet(
                        "unparseable",
                        d.id(),
                        format!(
                            "detector `{}` needed {} that could not be inspected; its files \
                             are treated as not understood",
                            d.id(),
                            needed.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        needed
                            .iter()
                            .map(|p| Evidence {
                                path: p.clone(),
                                line: None,
                                side: Side::Head,
                                snippet: why.get(p).cloned(),
                            })
                            .collect(),
                    )],
                    explained: BTreeSet::new(),
                }
            }
            Ok(found) => found,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                crate::Finding {
                    facets: vec![facet(
                        "unparseable",
                        d.id(),
                        format!(
                            "detector `{}` failed; its files are treated as not understood",
                            d.id()
                        ),
                        vec![Evidence {
                            path: String::new(),
                            line: None,
                            side: Side::Head,
                            snippet: Some(msg),
                        }],
                    )],
                    explained: BTreeSet::new(),
                }
            }
        }
    };
    // Detectors that work through their files on one thread start first, in registry order;
    // those that spread their files over the pool come last and fill the idle workers, so a
    // long single-threaded detector does not start late and leave one core idle at the end.
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| all[i].splits_files());
    let slots: Vec<std::sync::Mutex<Option<crate::Finding>>> =
        all.iter().map(|_| std::sync::Mutex::new(None)).collect();
    rayon::scope(|s| {
        for &i in &order {
            let (run, slot, d) = (&run, &slots[i], all[i]);
            s.spawn(move |_| {
                let found = run(d);
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
            });
        }
    });
    let results = slots.into_iter().map(|m| {
        m.into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_default()
    });
    for found in results {
        facets.extend(found.facets);
        explained.extend(found.explained);
    }
    // An input reported as unparseable is accounted for by that facet.
    for f in facets.iter().filter(|f| f.kind == "unparseable") {
        explained.extend(
            f.evidence
                .iter()
                .map(|e| e.path.clone())
                .filter(|p| !p.is_empty()),
        );
    }

    let mut summary = FileSummary {
        changed: input.files.len(),
        ..Default::default()
    };
    let mut source_files = Vec::new();
    for f in input.files {
        let key_paths = [f.path.as_str(), f.base_path()];
        if let Some(why) = aside.get(&f.path) {
            summary.unclassified += 1;
            facets.push(unclassified(f, why.clone()));
        } else if f.submodule {
            summary.unclassified += 1;
            facets.push(unclassified(
                f,
                "submodule pointer changed (contents not inspected)".into(),
            ));
        } else if key_paths.iter().any(|p| explained.contains(*p)) {
            summary.explained += 1;
        } else if options.source_extensions.contains(&ext(&f.path)) && !input.contents.is_binary(f)
        {
            summary.source += 1;
            source_files.push(f);
        } else {
            summary.unclassified += 1;
            // Only source files are read here (to tell text from binary); any other file no
            // detector explains is unclassified whatever it holds, and is not read at all.
            let what = if options.source_extensions.contains(&ext(&f.path)) {
                "binary file"
            } else {
                "file"
            };
            facets.push(unclassified(
                f,
                format!("{what} {} that no detector explains", status_word(f.status)),
            ));
        }
    }
    if !source_files.is_empty() {
        facets.push(code_facet(&source_files, input, policy, &mut notes));
    }
    if facets.is_empty() && !input.files.is_empty() {
        // Explained files with no facet: the detectors understood nothing risky, but nothing
        // proves it either. Fail closed.
        for f in input.files {
            facets.push(unclassified(
                f,
                "explained by a detector that reported no facet".into(),
            ));
        }
    }
    build(facets, policy, summary, notes)
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
    let change = open_change(repo, base, head, options.max_file_bytes)?;
    let none = BTreeMap::new();
    let input = ClassifyInput {
        files: &change.files,
        contents: &change.contents,
        oversized: &none,
        coverage,
    };
    let mut c = classify(&input, policy, options);
    // A blob that could not be read was answered as absent: the result is not to be trusted.
    if let Some(e) = change.contents.take_error() {
        return Err(ClassifyError::Git(e));
    }
    c.base = Some(change.base.clone());
    c.head = Some(change.head.clone());
    Ok(c)
}

fn status_word(s: FileStatus) -> &'static str {
    match s {
        FileStatus::Added => "added",
        FileStatus::Deleted => "deleted",
        FileStatus::Modified => "modified",
        FileStatus::Renamed => "renamed",
        FileStatus::TypeChanged => "changed kind",
    }
}

fn unclassified(f: &ChangedFile, why: String) -> Facet {
    let side = if f.status == FileStatus::Deleted {
        Side::Base
    } else {
        Side::Head
    };
    let details = match &f.old_path {
        Some(old) => format!("{old} → {}: {why}", f.path),
        None => format!("{}: {why}", f.path),
    };
    facet(
        "unclassified",
        "classifier",
        details,
        vec![Evidence {
            path: f.path.clone(),
            line: None,
            side,
            snippet: None,
        }],
    )
}

/// Head lines (1-based) added or changed by the edit.
fn changed_lines(base: &str, head: &str) -> Vec<u32> {
    // Lines end at `\n` only, as editors and coverage reports count them (a lone `\r` is not a
    // line break).
    let b: Vec<&str> = base.split_inclusive('\n').collect();
    let h: Vec<&str> = head.split_inclusive('\n').collect();
    // Lines shared at the start and the end are unchanged in any minimal diff: only the middle
    // goes through the diff algorithm (most edits touch a few lines of a file), as git's own
    // diff trims.
    let pre = b.iter().zip(&h).take_while(|(x, y)| x == y).count();
    let suf = b[pre..]
        .iter()
        .rev()
        .zip(h[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (bm, hm) = (&b[pre..b.len() - suf], &h[pre..h.len() - suf]);
    let mut out = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, bm, hm) {
        let (tag, _, new) = op.as_tag_tuple();
        if matches!(tag, similar::DiffTag::Insert | similar::DiffTag::Replace) {
            out.extend(new.map(|i| (i + pre) as u32 + 1));
        }
    }
    out
}

fn code_facet(
    files: &[&ChangedFile],
    input: &ClassifyInput<'_>,
    policy: &Policy,
    notes: &mut Vec<String>,
) -> Facet {
    let threshold = policy
        .rules
        .get("bugfix-covered")
        .and_then(|r| r.min_changed_line_coverage);
    // Per file, in parallel: (measured lines, covered lines, measurable, evidence).
    let per_file: Vec<(usize, usize, bool, Evidence)> = files
        .par_iter()
        .map(|f| {
            let (head, base) = (
                input.contents.head(&f.path),
                input.contents.base(f.base_path()),
            );
            let head = head.as_deref().map(String::from_utf8_lossy);
            let base = base.as_deref().map(String::from_utf8_lossy);
            let Some(head) = head else {
                let ev = Evidence {
                    path: f.path.clone(),
                    line: None,
                    side: Side::Base,
                    snippet: Some("deleted".into()),
                };
                return (0, 0, false, ev);
            };
            let lines = changed_lines(base.as_deref().unwrap_or(""), &head);
            let first = lines.first().copied();
            let (m, c, what) = match input.coverage.map(|cov| cov.lines(&f.path)) {
                None => (0, 0, format!("{} changed lines", lines.len())),
                Some(None) => {
                    let head_lines: Vec<&str> = head.lines().collect();
                    let n = lines
                        .iter()
                        .filter(|l| {
                            head_lines
                                .get(**l as usize - 1)
                                .is_some_and(|t| !t.trim().is_empty())
                        })
                        .count();
                    (
                        n,
                        0,
                        format!("{n} changed lines, file absent from the coverage report"),
                    )
                }
                Some(Some(hits)) => {
                    let m = lines.iter().filter(|l| hits.contains_key(l)).count();
                    let c = lines
                        .iter()
                        .filter(|l| hits.get(l).is_some_and(|h| *h > 0))
                        .count();
                    (m, c, format!("{c}/{m} changed executable lines covered"))
                }
            };
            let ev = Evidence {
                path: f.path.clone(),
                line: first,
                side: Side::Head,
                snippet: Some(what),
            };
            (m, c, true, ev)
        })
        .collect();
    let (mut measured, mut covered) = (0usize, 0usize);
    let mut all_measurable = true;
    let mut evidence = Vec::with_capacity(per_file.len());
    for (m, c, ok, ev) in per_file {
        measured += m;
        covered += c;
        all_measurable &= ok;
        evidence.push(ev);
    }
    let n = files.len();
    let pct = if measured > 0 {
        covered as f64 * 100.0 / measured as f64
    } else {
        0.0
    };
    match (input.coverage, threshold) {
        (Some(_), Some(t)) if all_measurable && measured > 0 && pct > t => facet(
            "bugfix-covered",
            "coverage",
            format!(
                "{n} source files; {covered}/{measured} changed lines covered ({pct:.1}% > {t}%)"
            ),
            evidence,
        ),
        (Some(_), Some(t)) => facet(
            "code-changed",
            "coverage",
            if !all_measurable {
                format!(
                    "{n} source files, some deleted (no coverage possible); {pct:.1}% of changed lines covered"
                )
            } else {
                format!(
                    "{n} source files; {covered}/{measured} changed lines covered ({pct:.1}% ≤ {t}%)"
                )
            },
            evidence,
        ),
        (Some(_), None) => {
            notes.push("the policy sets no rules.bugfix-covered.min_changed_line_coverage: coverage ignored".into());
            facet(
                "code-changed",
                "coverage",
                format!("{n} source files changed"),
                evidence,
            )
        }
        (None, _) => facet(
            "code-changed",
            "coverage",
            format!("{n} source files changed (no coverage report)"),
            evidence,
        ),
    }
}

#[derive(Clone)]
struct Req {
    category: Level,
    change: String,
    roles: Vec<RoleId>,
    source: Option<RuleSource>,
    note: Option<String>,
}

fn requirement(policy: &Policy, code: &str) -> Req {
    let levels = policy.levels();
    let lowest = levels.first().copied().unwrap_or(1);
    let floor = levels
        .iter()
        .copied()
        .find(|l| *l > lowest)
        .unwrap_or(lowest + 1);
    match policy.facet_requirement(code) {
        Some(r) if FAIL_CLOSED.contains(&code) && r.category <= lowest => Req {
            category: floor,
            change: r.change,
            roles: r.roles,
            source: Some(r.source),
            note: Some(format!(
                "the policy maps `{code}` to category {}; raised to {floor}: what is not understood never \
                 gets the lowest category",
                r.category
            )),
        },
        Some(r) => Req {
            category: r.category,
            change: r.change,
            roles: r.roles,
            source: Some(r.source),
            note: None,
        },
        None if code != "unclassified" => {
            let mut r = requirement(policy, "unclassified");
            r.note = Some(format!(
                "the policy does not map facet `{code}`; treated as unclassified"
            ));
            r
        }
        None => Req {
            category: floor,
            change: "Not understood (the policy maps no `unclassified` rule)".into(),
            roles: vec![],
            source: None,
            note: Some(format!(
                "the policy does not map `unclassified`; fail closed at category {floor}"
            )),
        },
    }
}

fn build(
    facets: Vec<Facet>,
    policy: &Policy,
    files: FileSummary,
    mut notes: Vec<String>,
) -> Classification {
    let mut cache: BTreeMap<String, Req> = BTreeMap::new();
    let mut out: Vec<ClassifiedFacet> = facets
        .into_iter()
        .map(|f| {
            let r = cache
                .entry(f.kind.clone())
                .or_insert_with(|| requirement(policy, &f.kind))
                .clone();
            ClassifiedFacet {
                facet: f,
                category: r.category,
                change: r.change,
                roles: r.roles,
                source: r.source,
                note: r.note,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.category
            .cmp(&a.category)
            .then_with(|| a.facet.kind.cmp(&b.facet.kind))
    });
    let lowest = policy.levels().first().copied().unwrap_or(1);
    if out.is_empty() {
        notes.push("no changed files".into());
    }
    let level = out.iter().map(|f| f.category).max().unwrap_or(lowest);
    let category = match policy.category(level) {
        Some((id, c)) => CategoryRef {
            level,
            id: id.to_string(),
            name: c.name.clone(),
        },
        None => CategoryRef {
            level,
            id: format!("level-{level}"),
            name: format!("Category {level}"),
        },
    };

    let mut reasons: BTreeMap<RoleId, Vec<RoleReason>> = BTreeMap::new();
    let mut seen: BTreeSet<(RoleId, String)> = BTreeSet::new();
    for f in &out {
        for role in &f.roles {
            if seen.insert((role.clone(), f.facet.kind.clone())) {
                reasons
                    .entry(role.clone())
                    .or_default()
                    .push(RoleReason::Facet {
                        facet: f.facet.kind.clone(),
                        change: f.change.clone(),
                        source: f.source.clone(),
                    });
            }
        }
    }
    if let Some((id, c)) = policy.category(level) {
        for role in &c.approvers {
            reasons
                .entry(role.clone())
                .or_default()
                .push(RoleReason::CategoryApprovers {
                    level,
                    category: id.to_string(),
                });
        }
    }
    let order: Vec<&RoleId> = policy.roles.keys().collect();
    let mut roles: Vec<RequiredRole> = reasons
        .into_iter()
        .map(|(role, reasons)| RequiredRole {
            name: policy
                .roles
                .get(&role)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| role.clone()),
            role,
            reasons,
        })
        .collect();
    roles.sort_by_key(|r| {
        order
            .iter()
            .position(|o| **o == r.role)
            .unwrap_or(usize::MAX)
    });
    for f in &out {
        if let Some(n) = &f.note {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    Classification {
        schema_version: SCHEMA_VERSION,
        base: None,
        head: None,
        category,
        facets: out,
        roles,
        files,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapContents;

    fn run(c: &MapContents, policy: &Policy, cov: Option<&Coverage>) -> Classification {
        let files = c.changed_files();
        let none = BTreeMap::new();
        classify(
            &ClassifyInput {
                files: &files,
                contents: c,
                oversized: &none,
                coverage: cov,
            },
            policy,
            &Options::default(),
        )
    }

    /// Counts the reads of each path (both sides), over a map.
    struct Counting {
        inner: MapContents,
        reads: std::sync::Mutex<BTreeMap<String, usize>>,
    }
    impl Contents for Counting {
        fn base(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
            *self.reads.lock().unwrap().entry(path.into()).or_default() += 1;
            self.inner.base(path)
        }
        fn head(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
            *self.reads.lock().unwrap().entry(path.into()).or_default() += 1;
            self.inner.head(path)
        }
    }

    #[test]
    fn files_no_detector_wants_are_never_read() {
        // An unknown file is unclassified whatever it holds: it is not read (on a big change
        // with assets these are most of the bytes). Documentation is read, only to know it can
        // be inspected (size limit, readable) before it may count as category 1.
        let c = MapContents::default()
            .with_base("docs/guide.md", "a")
            .with_head("docs/guide.md", "b")
            .with_base("assets/blob.dat", "a")
            .with_head("assets/blob.dat", "\0b")
            .with_base("src/a.ts", "export const a = 1;\n")
            .with_head("src/a.ts", "export const a = 2;\n")
            .with_base("k8s/app.yaml", "replicas: 1\n")
            .with_head("k8s/app.yaml", "replicas: 2\n");
        let files = c.changed_files();
        let counting = Counting {
            inner: c,
            reads: Default::default(),
        };
        let none = BTreeMap::new();
        let p = changegate_policy::load_default().policy;
        let r = classify(
            &ClassifyInput {
                files: &files,
                contents: &counting,
                oversized: &none,
                coverage: None,
            },
            &p,
            &Options::default(),
        );
        let reads = counting.reads.into_inner().unwrap();
        assert!(!reads.contains_key("assets/blob.dat"), "{reads:?}");
        for p in ["src/a.ts", "k8s/app.yaml", "docs/guide.md"] {
            assert!(reads.contains_key(p), "{p}: {reads:?}");
        }
        assert!(r.facet_codes().contains(&"unclassified"));
        assert!(r.facet_codes().contains(&"docs-only"));
    }

    /// Explains every file, and panics on one of them inside the parallel per-file helper (a
    /// rayon worker), as a detector bug would.
    struct Panicky;
    impl crate::Detector for Panicky {
        fn id(&self) -> &'static str {
            "panicky"
        }
        fn description(&self) -> &'static str {
            "test"
        }
        fn facets(&self) -> &'static [&'static str] {
            &[]
        }
        fn detect(&self, change: &Change<'_>) -> crate::Finding {
            crate::util::per_file(
                change.files,
                || (),
                |_, f, out| {
                    out.explained.insert(f.path.clone());
                    assert!(f.path != "docs/boom.md", "boom at {}", f.path);
                },
            )
        }
    }

    #[test]
    fn a_panicking_detector_fails_closed_and_the_others_still_run() {
        let p = changegate_policy::load_default().policy;
        let mut c = MapContents::default();
        for i in 0..200 {
            c = c
                .with_base(&format!("docs/p{i}.md"), "a")
                .with_head(&format!("docs/p{i}.md"), "b");
        }
        let c = c
            .with_base("docs/boom.md", "a")
            .with_head("docs/boom.md", "b");
        let files = c.changed_files();
        let none = BTreeMap::new();
        let input = ClassifyInput {
            files: &files,
            contents: &c,
            oversized: &none,
            coverage: None,
        };
        let mut registry = detectors::all();
        registry.insert(0, &Panicky);
        let r = classify_with(&input, &p, &Options::default(), &registry);
        // What the panicking detector claimed to explain is dropped with it: the docs detector
        // still explains the pages, and the failure itself is an `unparseable` facet.
        assert_eq!(r.facet_codes(), vec!["unparseable", "docs-only"]);
        assert_eq!(
            r.category.level, 2,
            "never category 1 after a detector failed"
        );
        let u = r
            .facets
            .iter()
            .find(|f| f.facet.kind == "unparseable")
            .unwrap();
        assert_eq!(u.facet.detector, "panicky");
        assert!(
            u.facet.evidence[0]
                .snippet
                .as_deref()
                .is_some_and(|s| s.contains("boom at docs/boom.md")),
            "{:?}",
            u.facet.evidence
        );
    }

    #[test]
    fn unknown_file_is_unclassified_and_never_category_one() {
        let p = changegate_policy::load_default().policy;
        let c = MapContents::default()
            .with_base("weird.bin.dat", "a")
            .with_head("weird.bin.dat", "b");
        let r = run(&c, &p, None);
        assert_eq!(r.facet_codes(), vec!["unclassified"]);
        assert_eq!(r.category.level, 2);
        assert!(r.role_ids().contains(&"backend-lead"));
    }

    #[test]
    fn a_policy_mapping_unclassified_to_one_is_overridden() {
        let mut p = changegate_policy::load_default().policy;
        p.rules.get_mut("unclassified").unwrap().category = 1;
        let c = MapContents::default().with_head("x.unknown", "b");
        let r = run(&c, &p, None);
        assert_eq!(r.category.level, 2);
        assert!(r.notes.iter().any(|n| n.contains("raised")));
    }

    #[test]
    fn unmapped_facet_is_treated_as_unclassified() {
        let p = changegate_policy::load_default().policy;
        let r = requirement(&p, "no-such-facet");
        assert_eq!(r.category, 2);
        assert!(r.note.unwrap().contains("not map"));
    }

    #[test]
    fn empty_change_is_lowest_with_a_note() {
        let p = changegate_policy::load_default().policy;
        let r = run(&MapContents::default(), &p, None);
        assert_eq!(r.category.level, 1);
        assert!(r.facets.is_empty());
        assert_eq!(r.notes, vec!["no changed files".to_string()]);
    }

    #[test]
    fn coverage_decides_bugfix_covered() {
        let p = changegate_policy::load_default().policy;
        let c = MapContents::default()
            .with_base("src/a.ts", "export const a = 1;\n")
            .with_head("src/a.ts", "export const a = 2;\n");
        let good = Coverage::parse("SF:/x/src/a.ts\nDA:1,4\nend_of_record\n").unwrap();
        let bad = Coverage::parse("SF:/x/src/a.ts\nDA:1,0\nend_of_record\n").unwrap();
        assert_eq!(
            run(&c, &p, Some(&good)).facet_codes(),
            vec!["bugfix-covered"]
        );
        assert_eq!(run(&c, &p, Some(&good)).category.level, 1);
        assert_eq!(run(&c, &p, Some(&bad)).facet_codes(), vec!["code-changed"]);
        assert_eq!(run(&c, &p, None).facet_codes(), vec!["code-changed"]);
        let other = Coverage::parse("SF:/x/src/b.ts\nDA:1,1\nend_of_record\n").unwrap();
        assert_eq!(
            run(&c, &p, Some(&other)).facet_codes(),
            vec!["code-changed"]
        );
    }

    #[test]
    fn changed_lines_are_head_lines() {
        assert_eq!(changed_lines("a\nb\nc\n", "a\nB\nc\nd\n"), vec![2, 4]);
        assert!(changed_lines("a\n", "a\n").is_empty());
        assert_eq!(changed_lines("", "a\nb"), vec![1, 2]);
        assert!(changed_lines("a\nb", "").is_empty());
        assert_eq!(changed_lines("a\nb", "a\nb\n"), vec![2]);
        // A lone CR does not start a line; CRLF lines compare whole.
        assert_eq!(changed_lines("a\rb\nc\n", "a\rb\nC\n"), vec![2]);
        assert_eq!(changed_lines("a\r\nb\r\n", "a\r\nB\r\n"), vec![2]);
    }

    /// The untrimmed diff of the same lines.
    fn reference(base: &str, head: &str) -> Vec<u32> {
        let b: Vec<&str> = base.split_inclusive('\n').collect();
        let h: Vec<&str> = head.split_inclusive('\n').collect();
        let mut out = Vec::new();
        for op in similar::capture_diff_slices(similar::Algorithm::Myers, &b, &h) {
            let (tag, _, new) = op.as_tag_tuple();
            if matches!(tag, similar::DiffTag::Insert | similar::DiffTag::Replace) {
                out.extend(new.map(|i| i as u32 + 1));
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn trimmed_changed_lines_equal_the_full_diff(
            base in proptest::collection::vec("[abc\r]{0,2}", 0..12),
            head in proptest::collection::vec("[abc\r]{0,2}", 0..12),
            bnl in proptest::bool::ANY,
            hnl in proptest::bool::ANY,
        ) {
            let join = |v: &[String], nl: bool| {
                let mut t = v.join("\n");
                if nl && !t.is_empty() { t.push('\n'); }
                t
            };
            let (b, h) = (join(&base, bnl), join(&head, hnl));
            // Trimming shared first and last lines keeps the diff minimal (as git's own diff
            // does): as many changed lines as the full diff, and the head lines left unchanged
            // appear in base in the same order. Where two minimal diffs exist, either may come.
            let got = changed_lines(&b, &h);
            proptest::prop_assert_eq!(got.len(), reference(&b, &h).len(), "{:?} -> {:?}", b, h);
            let lines = |t: &str| t.split_inclusive('\n').map(String::from).collect::<Vec<_>>();
            let (bl, hl) = (lines(&b), lines(&h));
            let kept = hl.iter().enumerate().filter(|(i, _)| !got.contains(&(*i as u32 + 1))).map(|(_, l)| l);
            let mut it = bl.iter();
            for l in kept {
                proptest::prop_assert!(it.any(|x| x == l), "{:?} -> {:?}: {:?}", b, h, got);
            }
        }
    }
}
