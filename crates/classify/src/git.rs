//! Reading a change out of git: resolve the two revisions, list changed files with rename
//! detection, flag binary files, submodules and oversized blobs, and serve file contents lazily.
//!
//! Why libgit2 (through `git2` with the vendored library) rather than `gix`: see
//! docs/adr/0003-classifier-git-and-detectors.md. In short, its tree diff and rename detection are
//! git's own semantics, its API has been stable for years, and the build needs no system library.
//!
//! Memory stays bounded: only blobs of *changed* files are read, each at most once; blobs larger
//! than [`CACHE_MAX`] are dropped after the binary check and re-read on demand; a blob over the
//! size limit is dropped as soon as it is read (its other side is then not read) and never
//! inspected (the classifier reports it as oversized, fail closed). libgit2 has no cheap size
//! query for deltified objects, hence read-then-drop (docs/adr/0012-classifier-performance.md).
//!
//! Process-wide: the first call turns off libgit2's re-hashing of every object read
//! (`git2::opts::strict_hash_verification(false)`), for every libgit2 user in the process.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use git2::{Delta, DiffFindOptions, DiffOptions, ErrorCode, FileMode, ObjectType, Oid, Repository};
use serde::Serialize;

use crate::{ChangedFile, Contents, FileStatus};

/// Blobs up to this size stay cached after the first read.
pub const CACHE_MAX: u64 = 1024 * 1024;

/// Why a repository change could not be classified. Every variant is an input error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The path is not inside a git repository.
    #[error("{path} is not a git repository (or any parent up to the filesystem root)")]
    NotARepo {
        /// The path given.
        path: PathBuf,
    },
    /// A revision that does not resolve to a commit.
    #[error("revision `{rev}` not found in {repo}{hint}")]
    UnknownRevision {
        /// The revision as given.
        rev: String,
        /// The repository.
        repo: PathBuf,
        /// Extra advice (may be empty).
        hint: String,
    },
    /// A shallow clone that lacks the history classification needs.
    #[error(
        "`{rev}` is not available: {repo} is a shallow clone that does not contain it. Fetch the \
         history with `git fetch --unshallow` (GitHub Actions: `actions/checkout` with \
         `fetch-depth: 0`; GitLab: `GIT_DEPTH: 0`), or pass a --base that the clone contains"
    )]
    ShallowClone {
        /// The missing revision (or merge base).
        rev: String,
        /// The repository.
        repo: PathBuf,
    },
    /// No default branch to compute the default base from.
    #[error(
        "cannot determine the default branch of {repo} (tried origin/HEAD, origin/main, \
         origin/master, main, master): pass --base REV"
    )]
    NoDefaultBranch {
        /// The repository.
        repo: PathBuf,
    },
    /// The two revisions share no history.
    #[error("`{base}` and `{head}` have no common ancestor: pass an explicit --base")]
    NoMergeBase {
        /// Default branch.
        base: String,
        /// Head.
        head: String,
    },
    /// The coverage report is unreadable.
    #[error("coverage report: {0}")]
    Coverage(#[from] crate::coverage::CoverageError),
    /// Any other git failure (corrupt objects, IO).
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// A resolved revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// As given (or how it was derived, e.g. `merge-base(origin/main, HEAD)`).
    pub rev: String,
    /// The commit id.
    pub commit: String,
}

/// A change read from git: the changed files and their contents.
pub struct GitChange {
    /// Base revision.
    pub base: Revision,
    /// Head revision.
    pub head: Revision,
    /// Changed files (renames detected).
    pub files: Vec<ChangedFile>,
    /// Files over the size limit (path → larger size of the two sides), never read.
    pub oversized: BTreeMap<String, u64>,
    /// Contents of both sides.
    pub contents: GitContents,
}

struct Slot {
    oid: Oid,
    size: u64,
    data: OnceLock<Option<Vec<u8>>>,
}

/// [`Contents`] backed by a git repository.
pub struct GitContents {
    repo: Mutex<Repository>,
    base_tree: Oid,
    head_tree: Oid,
    base: HashMap<String, Slot>,
    head: HashMap<String, Slot>,
}

impl GitContents {
    fn read<'a>(
        &'a self,
        side_tree: Oid,
        slots: &'a HashMap<String, Slot>,
        path: &str,
    ) -> Option<Cow<'a, [u8]>> {
        if let Some(slot) = slots.get(path) {
            if let Some(Some(d)) = slot.data.get() {
                return Some(Cow::Borrowed(d.as_slice()));
            }
            let bytes = self.load(slot.oid)?;
            if slot.size <= CACHE_MAX {
                let d = slot.data.get_or_init(|| Some(bytes));
                return d.as_deref().map(Cow::Borrowed);
            }
            return Some(Cow::Owned(bytes));
        }
        let repo = self.repo.lock().unwrap_or_else(|e| e.into_inner());
        let tree = repo.find_tree(side_tree).ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        if entry.kind() != Some(ObjectType::Blob) {
            return None;
        }
        let blob = repo.find_blob(entry.id()).ok()?;
        Some(Cow::Owned(blob.content().to_vec()))
    }

    fn load(&self, oid: Oid) -> Option<Vec<u8>> {
        let repo = self.repo.lock().unwrap_or_else(|e| e.into_inner());
        repo.find_blob(oid).ok().map(|b| b.content().to_vec())
    }
}

impl Contents for GitContents {
    fn base(&self, path: &str) -> Option<Cow<'_, [u8]>> {
        self.read(self.base_tree, &self.base, path)
    }
    fn head(&self, path: &str) -> Option<Cow<'_, [u8]>> {
        self.read(self.head_tree, &self.head, path)
    }
}

/// Open the repository at (or above) `repo_path` and read the change `base..head`.
///
/// `base` defaults to the merge base of `head` with the default branch (`origin/HEAD`, else
/// `origin/main`, `origin/master`, `main`, `master`); `head` defaults to `HEAD`. Blobs larger
/// than `max_file_bytes` are listed in [`GitChange::oversized`], dropped once read and never
/// inspected. Turns off libgit2's object re-hashing process-wide (see the module docs).
pub fn open_change(
    repo_path: &Path,
    base: Option<&str>,
    head: Option<&str>,
    max_file_bytes: u64,
) -> Result<GitChange, ClassifyError> {
    let repo = Repository::discover(repo_path).map_err(|e| match e.code() {
        ErrorCode::NotFound => ClassifyError::NotARepo {
            path: repo_path.to_path_buf(),
        },
        _ => ClassifyError::Git(e),
    })?;
    let root = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
    let head_rev = head.unwrap_or("HEAD").to_string();
    let head_commit = resolve(&repo, &root, &head_rev)?;
    let (base_rev, base_commit) = match base {
        Some(b) => (b.to_string(), resolve(&repo, &root, b)?),
        None => {
            let (name, tip) = default_branch(&repo, &root)?;
            let mb = repo.merge_base(head_commit, tip).map_err(|e| {
                if repo.is_shallow() {
                    ClassifyError::ShallowClone {
                        rev: format!("merge-base({name}, {head_rev})"),
                        repo: root.clone(),
                    }
                } else if e.code() == ErrorCode::NotFound {
                    ClassifyError::NoMergeBase {
                        base: name.clone(),
                        head: head_rev.clone(),
                    }
                } else {
                    ClassifyError::Git(e)
                }
            })?;
            (format!("merge-base({name}, {head_rev})"), mb)
        }
    };
    // Objects read here are checked by zlib's checksum as they are inflated; libgit2's extra
    // SHA-1 recomputation of every object it reads (on by default) costs a quarter of reading
    // a change and catches only on-disk corruption or a tampered object store, which `git fsck`
    // is for (and a tampered store could lie about the commits anyway). Process-wide, and set
    // before the first read.
    static NO_REHASH: std::sync::Once = std::sync::Once::new();
    NO_REHASH.call_once(|| git2::opts::strict_hash_verification(false));
    let base_tree = repo.find_commit(base_commit)?.tree()?;
    let head_tree = repo.find_commit(head_commit)?.tree()?;

    let mut opts = DiffOptions::new();
    opts.include_typechange(true).ignore_submodules(false);
    let mut diff = repo.diff_tree_to_tree(Some(&base_tree), Some(&head_tree), Some(&mut opts))?;
    let mut find = DiffFindOptions::new();
    find.renames(true).rename_limit(1000);
    diff.find_similar(Some(&mut find))?;

    // Plain data per delta (the diff borrows the repository).
    let mut deltas = Vec::with_capacity(diff.deltas().len());
    for d in diff.deltas() {
        let status = match d.status() {
            Delta::Added | Delta::Copied | Delta::Untracked => FileStatus::Added,
            Delta::Deleted => FileStatus::Deleted,
            Delta::Renamed => FileStatus::Renamed,
            Delta::Typechange => FileStatus::TypeChanged,
            Delta::Unmodified | Delta::Ignored => continue,
            _ => FileStatus::Modified,
        };
        let (old, new) = (d.old_file(), d.new_file());
        let path_of = |p: Option<&Path>| p.map(|p| p.to_string_lossy().replace('\\', "/"));
        deltas.push(RawDelta {
            status,
            old_path: path_of(old.path()),
            new_path: path_of(new.path()),
            old_id: old.id(),
            new_id: new.id(),
            submodule: old.mode() == FileMode::Commit || new.mode() == FileMode::Commit,
        });
    }
    drop(diff);
    // One thread: libgit2 serialises pack access behind a global lock, so parallel readers
    // were measured slower, not faster.
    let loaded = load_blobs(&repo, &deltas, max_file_bytes)?;

    let mut files = Vec::with_capacity(deltas.len());
    let mut oversized = BTreeMap::new();
    let mut base_slots = HashMap::new();
    let mut head_slots = HashMap::new();
    for (d, l) in deltas.into_iter().zip(loaded) {
        let path = if d.status == FileStatus::Deleted {
            d.old_path.clone()
        } else {
            d.new_path.clone()
        };
        let Some(path) = path else { continue };
        if l.oversized {
            oversized.insert(path.clone(), l.base_size.max(l.head_size));
        }
        if !d.submodule && !l.oversized {
            if let (Some(p), Some(data)) = (&d.old_path, l.base) {
                base_slots.insert(
                    p.clone(),
                    Slot {
                        oid: d.old_id,
                        size: l.base_size,
                        data,
                    },
                );
            }
            if let (Some(p), Some(data)) = (&d.new_path, l.head) {
                head_slots.insert(
                    p.clone(),
                    Slot {
                        oid: d.new_id,
                        size: l.head_size,
                        data,
                    },
                );
            }
        }
        let old_path = if d.status == FileStatus::Renamed {
            d.old_path
        } else {
            None
        };
        files.push(ChangedFile {
            path,
            old_path,
            status: d.status,
            binary: l.binary,
            submodule: d.submodule,
        });
    }
    let (bt, ht) = (base_tree.id(), head_tree.id());
    drop(base_tree);
    drop(head_tree);
    Ok(GitChange {
        base: Revision {
            rev: base_rev,
            commit: base_commit.to_string(),
        },
        head: Revision {
            rev: head_rev,
            commit: head_commit.to_string(),
        },
        files,
        oversized,
        contents: GitContents {
            repo: Mutex::new(repo),
            base_tree: bt,
            head_tree: ht,
            base: base_slots,
            head: head_slots,
        },
    })
}

struct RawDelta {
    status: FileStatus,
    old_path: Option<String>,
    new_path: Option<String>,
    old_id: Oid,
    new_id: Oid,
    submodule: bool,
}

struct Loaded {
    base_size: u64,
    head_size: u64,
    oversized: bool,
    binary: bool,
    /// `Some` when the side exists; the cell is filled when the blob is small enough to cache.
    base: Option<OnceLock<Option<Vec<u8>>>>,
    head: Option<OnceLock<Option<Vec<u8>>>>,
}

/// Sizes, binary flags and (small) contents of the blobs of some deltas.
fn load_blobs(
    repo: &Repository,
    deltas: &[RawDelta],
    max_file_bytes: u64,
) -> Result<Vec<Loaded>, git2::Error> {
    let odb = repo.odb()?;
    let mut out = Vec::with_capacity(deltas.len());
    for d in deltas {
        let mut l = Loaded {
            base_size: 0,
            head_size: 0,
            oversized: false,
            binary: false,
            base: None,
            head: None,
        };
        if !d.submodule {
            // Each blob is read once, and its size taken from what was read: libgit2's header
            // lookup re-walks a deltified object's whole delta chain, and asking it first
            // doubled the cost of reading a change (measured: 1.40 G → 0.72 G instructions on
            // the 10,000-file benchmark). A blob over the limit is dropped as soon as it is
            // read, so at most one oversized blob is in memory at a time.
            for (exists, oid, is_base) in [
                (d.status != FileStatus::Added, d.old_id, true),
                (d.status != FileStatus::Deleted, d.new_id, false),
            ] {
                if !exists || oid.is_zero() {
                    continue;
                }
                // The object database directly: no object-cache churn for blobs read once.
                let obj = odb.read(oid)?;
                let size = obj.len() as u64;
                if is_base {
                    l.base_size = size;
                } else {
                    l.head_size = size;
                }
                if size > max_file_bytes {
                    l.oversized = true;
                    break;
                }
                l.binary |= obj.data().iter().take(8000).any(|&c| c == 0);
                let cell = OnceLock::new();
                if size <= CACHE_MAX {
                    let _ = cell.set(Some(obj.data().to_vec()));
                }
                if is_base {
                    l.base = Some(cell);
                } else {
                    l.head = Some(cell);
                }
            }
        }
        if l.oversized {
            (l.base, l.head, l.binary) = (None, None, false);
        }
        out.push(l);
    }
    Ok(out)
}

fn resolve(repo: &Repository, root: &Path, rev: &str) -> Result<Oid, ClassifyError> {
    match repo.revparse_single(rev).and_then(|o| o.peel_to_commit()) {
        Ok(c) => Ok(c.id()),
        Err(e)
            if matches!(
                e.code(),
                ErrorCode::NotFound | ErrorCode::InvalidSpec | ErrorCode::Ambiguous
            ) || e.class() == git2::ErrorClass::Odb =>
        {
            if repo.is_shallow() {
                Err(ClassifyError::ShallowClone {
                    rev: rev.to_string(),
                    repo: root.to_path_buf(),
                })
            } else {
                let hint = if rev.contains('/') && !rev.starts_with("refs/") {
                    " (for a remote branch, run `git fetch` first)".to_string()
                } else {
                    String::new()
                };
                Err(ClassifyError::UnknownRevision {
                    rev: rev.to_string(),
                    repo: root.to_path_buf(),
                    hint,
                })
            }
        }
        Err(e) => Err(ClassifyError::Git(e)),
    }
}

fn default_branch(repo: &Repository, root: &Path) -> Result<(String, Oid), ClassifyError> {
    if let Ok(r) = repo.find_reference("refs/remotes/origin/HEAD") {
        let name = r
            .symbolic_target()
            .ok()
            .flatten()
            .map(|s| s.trim_start_matches("refs/remotes/").to_string());
        if let (Ok(res), Some(name)) = (r.resolve(), name) {
            if let Some(oid) = res.target() {
                return Ok((name, oid));
            }
        }
    }
    for (name, full) in [
        ("origin/main", "refs/remotes/origin/main"),
        ("origin/master", "refs/remotes/origin/master"),
        ("main", "refs/heads/main"),
        ("master", "refs/heads/master"),
    ] {
        if let Ok(oid) = repo.refname_to_id(full) {
            return Ok((name.to_string(), oid));
        }
    }
    Err(ClassifyError::NoDefaultBranch {
        repo: root.to_path_buf(),
    })
}
