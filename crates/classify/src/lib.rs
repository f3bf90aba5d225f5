//! Classification: what kind of change is this, why, and who must approve it.
//!
//! A change is a list of [`ChangedFile`]s plus a [`Contents`] provider for the base and head
//! versions. Each detector (one file under [`detectors`], at the path its id names) looks at the
//! files it understands and returns [`Facet`]s with evidence, and the set of paths it fully
//! explains. Facet codes are [`FacetCode`] variants; a detector declares the ones it may emit, and
//! an emission it did not declare fails closed as `unparseable`.
//! Files no detector explains become `unclassified` facets; inputs a detector cannot parse become
//! `unparseable` facets. Facets map to categories and roles through the policy only.
//!
//! SHARED CONTRACT (two developers write detectors against it; extend, do not break):
//! [`ChangedFile`], [`FileStatus`], [`Contents`], [`Change`], [`Facet`], [`Evidence`], [`Side`],
//! [`Finding`], [`Detector`].
#![deny(missing_docs)]

pub mod coverage;
pub mod detectors;
pub(crate) mod facet;
mod git;
pub(crate) mod parse;
mod pipeline;
mod render;
mod tree_diff;
pub(crate) mod util;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::ClassifySettings;
pub use changegate_policy::facets::FacetCode;
use serde::Serialize;

pub use coverage::{Coverage, CoverageError};
pub use git::{
    ClassifyError, CommitPeople, GitChange, GitContents, GitIdentity, Revision, commit_people,
    open_change, open_change_within,
};
pub use parse::ts_shared::TsParses;
pub use pipeline::{
    CategoryRef, Classification, ClassifiedFacet, ClassifyInput, DetectorInfo, FileSummary,
    Options, RequiredRole, RoleReason, SCHEMA_VERSION, classify, classify_repo, classify_repo_with,
    classify_repo_within, detector_catalogue,
};
pub use render::{render_markdown, render_text};

/// How a file changed between base and head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    /// New in head.
    Added,
    /// Gone in head.
    Deleted,
    /// Changed content.
    Modified,
    /// Moved (maybe with changes); `old_path` is set.
    Renamed,
    /// Changed kind (file ↔ symlink ↔ submodule).
    TypeChanged,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    /// Path in head (or in base, when deleted), `/`-separated, relative to the repository root.
    pub path: String,
    /// Path in base, when renamed.
    pub old_path: Option<String>,
    /// How it changed.
    pub status: FileStatus,
    /// A submodule (gitlink) on either side.
    pub submodule: bool,
}

impl ChangedFile {
    /// Path of the file in base.
    pub fn base_path(&self) -> &str {
        self.old_path.as_deref().unwrap_or(&self.path)
    }
}

/// Which version of a file evidence points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The base commit.
    Base,
    /// The head commit.
    Head,
}

/// Where a facet was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// File path.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// Base or head version of the file.
    pub side: Side,
    /// What is there (e.g. the changed line, or a parser error).
    pub snippet: Option<String>,
}

/// One detected aspect of the change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Facet {
    /// Facet code, e.g. `dep-major` (serialized as that string).
    pub kind: FacetCode,
    /// What changed, e.g. `express 4.19.2 → 5.0.0 (major, prod)`.
    pub details: String,
    /// Where.
    pub evidence: Vec<Evidence>,
    /// Id of the detector that found it.
    pub detector: String,
}

/// File contents of both sides. Implemented over git by the classifier and over maps in tests.
///
/// Contents are read on demand: a file no detector asks about is never read, so whether it is
/// binary, or too large to inspect, is only known once something reads it.
pub trait Contents: Sync {
    /// The file at `path` in base, `None` when absent (or when it could not be inspected: see
    /// [`Contents::not_inspected`]).
    fn base(&self, path: &str) -> Option<Cow<'_, [u8]>>;
    /// The file at `path` in head, `None` when absent (or not inspected).
    fn head(&self, path: &str) -> Option<Cow<'_, [u8]>>;
    /// Whether the changed file is binary: a NUL byte in the first 8000 bytes of either side
    /// (git's own test). Reads both sides.
    fn is_binary(&self, f: &ChangedFile) -> bool {
        let nul = |d: Option<Cow<'_, [u8]>>| d.is_some_and(|d| has_nul(&d));
        (f.status != FileStatus::Added && nul(self.base(f.base_path())))
            || (f.status != FileStatus::Deleted && nul(self.head(&f.path)))
    }
    /// Whether the file at `path` on `side` exists and can be inspected (within the size limit,
    /// readable), for a detector that decides from the path alone once the file is known to be
    /// inspectable (documentation). A provider that can tell without reading the contents does
    /// (git: from the object's header); one that cannot reads them. A file found not inspectable
    /// is noted as a read would note it.
    fn inspectable(&self, path: &str, side: Side) -> bool {
        match side {
            Side::Base => self.base(path).is_some(),
            Side::Head => self.head(path).is_some(),
        }
    }
    /// Files that exist but whose reads so far answered `None` because they could not be
    /// inspected (too large, unreadable): path → why. The pipeline sets them aside as
    /// `unclassified`, and a detector that needed one is not trusted (`unparseable`).
    fn not_inspected(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    /// Whether `path` is in [`Contents::not_inspected`] (cheaper than the whole map).
    fn is_not_inspected(&self, path: &str) -> bool {
        self.not_inspected().contains_key(path)
    }
}

/// Why a file over the size limit is not inspected (one wording wherever it is found).
pub(crate) fn too_large(size: u64, max: u64) -> String {
    format!("too large to inspect ({size} bytes > {max} bytes)")
}

/// git's binary test: a NUL byte in the first 8000 bytes.
pub(crate) fn has_nul(data: &[u8]) -> bool {
    // A word-at-a-time search (`contains` on bytes), not a byte loop: every blob read is checked.
    data[..data.len().min(8000)].contains(&0)
}

/// Everything a detector sees.
pub struct Change<'a> {
    /// Changed files.
    pub files: &'a [ChangedFile],
    /// Contents of both sides.
    pub contents: &'a dyn Contents,
    /// Classifier settings from the policy.
    pub settings: &'a ClassifySettings,
    /// Parses shared between the detectors of one classification pass (`None`: each detector
    /// parses on its own, as a detector run alone does).
    pub parses: Option<&'a TsParses>,
}

impl Change<'_> {
    /// Whether a changed file is binary on either side ([`Contents::is_binary`]; reads it).
    /// Detectors ask after their cheap path filters, so files they do not want stay unread.
    pub fn is_binary(&self, f: &ChangedFile) -> bool {
        self.contents.is_binary(f)
    }
}

/// What a detector found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Finding {
    /// Facets.
    pub facets: Vec<Facet>,
    /// Paths whose change this detector fully explains (they will not be `unclassified`).
    pub explained: BTreeSet<String>,
}

/// A facet detector.
pub trait Detector: Sync {
    /// Stable id, e.g. `deps-npm`.
    fn id(&self) -> &'static str;
    /// One line for `changegate detectors list`.
    fn description(&self) -> &'static str;
    /// Facet codes it may emit. The pipeline turns any other facet it emits into `unparseable`
    /// (fail closed), and a test checks that the registry declares every [`FacetCode`].
    fn facets(&self) -> &'static [FacetCode];
    /// Inspect the change.
    fn detect(&self, change: &Change<'_>) -> Finding;
    /// Whether `detect` spreads its files over the thread pool (scheduling hint: such detectors
    /// start after the single-threaded ones).
    fn splits_files(&self) -> bool {
        false
    }
    /// The id of a detector whose `detect` must have returned before this one's starts, when
    /// both run in one pass: this one takes answers that one leaves in the pass's shared parses
    /// (docs takes api-nestjs's comment-only answers rather than parse the same files again).
    /// A detector run alone does all its work itself. Default: none.
    fn after(&self) -> Option<&'static str> {
        None
    }
}

/// [`Contents`] over two in-memory maps (tests, fixtures, callers that already hold the files).
#[derive(Debug, Default, Clone)]
pub struct MapContents {
    /// Files in base, by path.
    pub base: BTreeMap<String, Vec<u8>>,
    /// Files in head, by path.
    pub head: BTreeMap<String, Vec<u8>>,
}

impl MapContents {
    /// Add or replace a base file.
    pub fn with_base(mut self, path: &str, text: impl Into<Vec<u8>>) -> Self {
        self.base.insert(path.to_string(), text.into());
        self
    }
    /// Add or replace a head file.
    pub fn with_head(mut self, path: &str, text: impl Into<Vec<u8>>) -> Self {
        self.head.insert(path.to_string(), text.into());
        self
    }
    /// The changed files implied by the two maps (no rename detection).
    pub fn changed_files(&self) -> Vec<ChangedFile> {
        let paths: BTreeSet<&String> = self.base.keys().chain(self.head.keys()).collect();
        let mut out = Vec::new();
        for p in paths {
            let (b, h) = (self.base.get(p), self.head.get(p));
            let status = match (b, h) {
                (Some(b), Some(h)) if b == h => continue,
                (Some(_), Some(_)) => FileStatus::Modified,
                (None, Some(_)) => FileStatus::Added,
                (Some(_), None) => FileStatus::Deleted,
                (None, None) => continue,
            };
            out.push(ChangedFile {
                path: p.clone(),
                old_path: None,
                status,
                submodule: false,
            });
        }
        out
    }
}

impl Contents for MapContents {
    fn base(&self, path: &str) -> Option<Cow<'_, [u8]>> {
        self.base.get(path).map(|v| Cow::Borrowed(v.as_slice()))
    }
    fn head(&self, path: &str) -> Option<Cow<'_, [u8]>> {
        self.head.get(path).map(|v| Cow::Borrowed(v.as_slice()))
    }
}
