//! Reading a change out of git: resolve the two revisions, list changed files with rename
//! detection and submodules, and serve file contents on demand (binary and oversized blobs are
//! recognised when read).
//!
//! Why libgit2 (through `git2` with the vendored library) rather than `gix`: see
//! docs/adr/0003-classifier-git-and-detectors.md. In short, its tree diff and rename detection are
//! git's own semantics, its API has been stable for years, and the build needs no system library.
//! One part goes through gix: listing a change that has no rename to detect and no link or
//! submodule among its differences (`tree_diff.rs`, on both cores, checked against libgit2's diff
//! by a differential test; ADR 0012 decision 12), and reading the blobs stored whole in a pack
//! (`GixBlobs`: straight from the pack entry; ADR 0012 decision 13). libgit2 takes over whenever
//! gix cannot answer, and reads every delta.
//!
//! Memory stays bounded: a blob is read only when a detector asks for it, and only blobs of
//! *changed* files are kept, each read at most once; blobs larger than [`CACHE_MAX`] are dropped
//! after the binary check and re-read on demand; a blob over the size limit is dropped as soon as
//! it is read and never inspected (the classifier reports it as oversized, fail closed). A blob
//! stored whole in a pack is sized from its entry's header before any inflating, so an oversized
//! one is not even read; libgit2 has no cheap size query for a delta, which it reads and then
//! drops (docs/adr/0012-classifier-performance.md, decisions 1, 6 and 13).
//!
//! Process-wide: the first call turns off libgit2's re-hashing of every object read
//! (`git2::opts::strict_hash_verification(false)`), for every libgit2 user in the process.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use git2::{
    Delta, DiffFindOptions, DiffOptions, ErrorCode, FileMode, ObjectType, Oid, Repository,
    RepositoryOpenFlags,
};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::{ChangedFile, Contents, FileStatus};

/// A directory's entries by name: the object type and id of each (a symbolic link is a blob,
/// as libgit2 reports it).
type Listing = FxHashMap<Box<[u8]>, (Option<ObjectType>, Oid)>;

/// Blobs up to this size stay cached after the first read.
pub const CACHE_MAX: u64 = 1024 * 1024;

/// Why a repository change could not be classified. Every variant is an input error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The path is not inside a git repository (for [`open_change_within`]: is not itself one).
    #[error("{path} is not a git repository (or any parent up to the filesystem root)")]
    NotARepo {
        /// The path given.
        path: PathBuf,
    },
    /// [`open_change_within`]: the repository's git directory or work tree is outside the root
    /// (a `.git` file or symbolic link pointing elsewhere).
    #[error("{path} is a repository whose git directory is outside the allowed root")]
    OutsideRoot {
        /// The path given, relative to the root.
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
    /// Contents of both sides, read on demand.
    pub contents: GitContents,
    /// Messages of the commits of `base..head`, newest first (at most [`MAX_MESSAGES`]): what
    /// marks a change as a fix (a conventional-commit type) is read from git, never from a
    /// request.
    pub messages: Vec<String>,
}

/// At most this many commit messages are read for a change.
pub const MAX_MESSAGES: usize = 1000;

/// One side of a changed file: its blob, read on first use.
struct Slot {
    oid: Oid,
    blob: OnceLock<Blob>,
}

/// What reading a blob found.
enum Blob {
    /// Small enough to keep: the bytes, and whether they hold a NUL (binary), found once: several
    /// detectors ask of the same file.
    Kept(Vec<u8>, bool),
    /// Within the size limit but larger than [`CACHE_MAX`]: re-read on each use.
    Large { binary: bool },
    /// Over the size limit: never inspected.
    Oversized(u64),
    /// Unreadable (a corrupt clone, a blob a partial clone lacks): never inspected, and the error
    /// kept for [`GitContents::take_error`].
    Missing(String),
}

/// [`Contents`] backed by a git repository. Blobs of changed files are read when a detector
/// first asks for them (each at most once while small), so files no detector looks at are never
/// read, and reading overlaps the detectors' parsing.
pub struct GitContents {
    repos: Handles,
    /// Blob reads that gix answers (blobs stored whole in a pack), `None` when the repository
    /// has no pack gix can open: libgit2 then reads every blob.
    gix: Option<GixBlobs>,
    max_file_bytes: u64,
    base_tree: Oid,
    head_tree: Oid,
    base: FxHashMap<String, Slot>,
    head: FxHashMap<String, Slot>,
    not_inspected: Mutex<BTreeMap<String, String>>,
    error: Mutex<Option<git2::Error>>,
    /// Directories listed for neighbour reads, per side (base, head): path → its entries,
    /// `None` when there is no such directory. A detector probing many paths (the NestJS
    /// bootstrap search tries `main.ts` in every parent directory of every controller) walked
    /// the tree from the root for each one; and the directories the tree compare read come
    /// from `read_dirs`, so a probe beside a changed file reads no tree at all.
    dirs: [Mutex<FxHashMap<String, Option<Arc<Listing>>>>; 2],
    /// The directories the tree compare read, per side, as it read them: made a listing (and
    /// moved to `dirs`) the first time a read looks into one.
    read_dirs: [Mutex<FxHashMap<String, Vec<crate::tree_diff::Entry>>>; 2],
}

impl GitContents {
    /// The first error met reading a blob, if any. A classification that met one set the file
    /// aside (or distrusted the detector that needed it), so it fails closed even unchecked; the
    /// CLI and server fail with it (exit 2), as a corrupt repository deserves.
    pub fn take_error(&self) -> Option<git2::Error> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn note(&self, path: &str, why: String) {
        self.not_inspected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(path.to_string())
            .or_insert(why);
    }

    fn fail(&self, path: &str, e: git2::Error) {
        self.note(path, format!("could not be read from git: {}", e.message()));
        self.error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
    }

    fn slot<'a>(&'a self, slots: &'a FxHashMap<String, Slot>, path: &str) -> Option<&'a Blob> {
        let slot = slots.get(path)?;
        Some(slot.blob.get_or_init(|| {
            // Objects stored whole (most blobs of a change) through gix, on any thread at once;
            // libgit2 reads the rest (ADR 0012, decision 13).
            if let Some(blob) = self
                .gix
                .as_ref()
                .and_then(|g| g.read(slot.oid, self.max_file_bytes))
            {
                return blob;
            }
            // Sized and sorted while the object is in libgit2's buffer, before any copy: an
            // oversized blob is never copied, and at most one per reading thread is in memory
            // at a time.
            let read = self.repos.blob(slot.oid, |data| {
                let size = data.len() as u64;
                if size > self.max_file_bytes {
                    Blob::Oversized(size)
                } else if size <= CACHE_MAX {
                    Blob::Kept(data.to_vec(), crate::has_nul(data))
                } else {
                    Blob::Large {
                        binary: crate::has_nul(data),
                    }
                }
            });
            read.unwrap_or_else(|e| {
                let msg = e.message().to_string();
                self.fail(path, e);
                Blob::Missing(msg)
            })
        }))
    }

    /// `None` when `path` is not a changed file on that side; else its blob, or `Some(None)`
    /// (with the reason noted) when it cannot be inspected.
    fn changed<'a>(
        &'a self,
        slots: &'a FxHashMap<String, Slot>,
        path: &str,
    ) -> Option<Option<Cow<'a, [u8]>>> {
        let blob = self.slot(slots, path)?;
        Some(match blob {
            Blob::Kept(d, _) => Some(Cow::Borrowed(d.as_slice())),
            Blob::Large { .. } => match self.load(slots.get(path)?.oid) {
                Ok(d) => Some(Cow::Owned(d)),
                Err(e) => {
                    self.fail(path, e);
                    None
                }
            },
            Blob::Oversized(size) => {
                self.note(path, crate::too_large(*size, self.max_file_bytes));
                None
            }
            Blob::Missing(msg) => {
                self.note(path, format!("could not be read from git: {msg}"));
                None
            }
        })
    }

    fn read<'a>(
        &'a self,
        side_tree: Oid,
        slots: &'a FxHashMap<String, Slot>,
        path: &str,
    ) -> Option<Cow<'a, [u8]>> {
        if let Some(r) = self.changed(slots, path) {
            return r;
        }
        // Not a changed file (a detector reading a neighbour, e.g. the manifest beside a
        // changed lockfile): straight from the tree. Absent is `None`; a failed read is noted.
        // A handle is taken only to read an object: a probe that the kept directory listings
        // answer (most of them: a `main.ts` that is not there) touches no libgit2 handle.
        let entry = if clean(path) {
            // Through the cached directory listing: one lookup of the file name.
            let (dir, name) = match path.rfind('/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => ("", path),
            };
            let dir = self.listing(side_tree, dir)?;
            Some(*dir.get(name.as_bytes())?)
        } else {
            None
        };
        let read = self.repos.with(|repo| {
            let entry = match entry {
                Some(e) => e,
                None => {
                    let Ok(tree) = repo.find_tree(side_tree) else {
                        return Ok(None);
                    };
                    let Ok(entry) = tree.get_path(Path::new(path)) else {
                        return Ok(None);
                    };
                    (entry.kind(), entry.id())
                }
            };
            if entry.0 != Some(ObjectType::Blob) {
                return Ok(None);
            }
            repo.find_blob(entry.1).map(|b| Some(b.content().to_vec()))
        });
        match read {
            Ok(data) => data.map(Cow::Owned),
            Err(e) => {
                self.fail(path, e);
                None
            }
        }
    }

    /// The entries of directory `dir` (`""`: the root) on the side whose root tree is `root`,
    /// or `None` when there is no such directory; cached per side.
    fn listing(&self, root: Oid, dir: &str) -> Option<Arc<Listing>> {
        let side = usize::from(root != self.base_tree);
        let cache = &self.dirs[side];
        if let Some(known) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(dir) {
            return known.clone();
        }
        let read = self.read_dirs[side]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(dir);
        if let Some(entries) = read {
            let listing = Arc::new(of_entries(entries));
            cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(dir.to_string(), Some(listing.clone()));
            return Some(listing);
        }
        let tree = if dir.is_empty() {
            Some(root)
        } else {
            let (parent, name) = match dir.rfind('/') {
                Some(i) => (&dir[..i], &dir[i + 1..]),
                None => ("", dir),
            };
            self.listing(root, parent).and_then(|p| {
                let &(kind, id) = p.get(name.as_bytes())?;
                (kind == Some(ObjectType::Tree)).then_some(id)
            })
        };
        // An unreadable tree reads as no directory, as `Tree::get_path` answered before.
        let found = tree.and_then(|t| {
            self.repos
                .with(|repo| {
                    let tree = repo.find_tree(t)?;
                    Ok(Arc::new(
                        tree.iter()
                            .map(|e| (e.name_bytes().into(), (e.kind(), e.id())))
                            .collect::<Listing>(),
                    ))
                })
                .ok()
        });
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.to_string(), found.clone());
        found
    }

    fn load(&self, oid: Oid) -> Result<Vec<u8>, git2::Error> {
        // The object database directly: no object-cache churn for blobs read once.
        self.repos.blob(oid, <[u8]>::to_vec)
    }

    fn side_binary(&self, tree: Oid, slots: &FxHashMap<String, Slot>, path: &str) -> bool {
        match self.slot(slots, path) {
            Some(Blob::Kept(_, binary)) => *binary,
            Some(Blob::Large { binary }) => *binary,
            // Noted, answered as absent: the caller sees the file as not inspected.
            Some(Blob::Oversized(_) | Blob::Missing(_)) => {
                let _ = self.changed(slots, path);
                false
            }
            None => self
                .read(tree, slots, path)
                .is_some_and(|d| crate::has_nul(&d)),
        }
    }
}

/// Whether `path` is a plain relative path (no empty, `.` or `..` segment), which the cached
/// directory lookup reads exactly as `Tree::get_path` does; any other path takes `get_path`.
fn clean(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// Blob reads through gix's pack reader, for the objects it reads fastest: those stored whole
/// (not as a delta) in a pack. Each read looks the object up in the pack indexes, parses its
/// entry's header (its kind and size: nothing is inflated), and inflates an object stored whole
/// straight into the buffer that is kept.
///
/// Why not every blob: gix's pack cache keeps resolved objects, not the intermediate objects of a
/// delta chain, so a blob at depth 40 of a chain costs 40 inflates where libgit2's delta-base
/// cache costs one (10x slower on the `monorepo` bench mix); and gix's object-store header query
/// walks the whole chain to name the object's kind (110 M instructions for `monorepo`'s 12,000
/// deltas), so the entry header is read here directly. Why not libgit2 for all: for objects
/// stored whole, libgit2 with the system zlib took 1.2x gix's time (zlib-rs), and copies each
/// blob out of its buffer.
///
/// A delta, a loose object, an object in no pack listed when the change was opened, and
/// anything gix fails on go to libgit2, which reads them (and reports errors) as before.
struct GixBlobs {
    /// The repository's packs (`objects/pack/*.idx` with their data), opened once; shared by
    /// every thread (the files are mapped, reads take no lock).
    packs: Vec<gix_pack::Bundle>,
    /// Idle inflate states (one per reading thread at a time).
    idle: Idle<gix_zlib::Inflate>,
}

/// How an object is stored in a pack.
enum Stored {
    /// Whole: a blob of this size at this entry of this pack.
    Whole(u64, usize, gix_pack::data::Entry),
    /// A delta: its size and kind are libgit2's to find.
    Delta,
}

impl GixBlobs {
    /// The packs of the object directory `objects`; `None` when there are none or one cannot be
    /// opened (libgit2 then reads every blob).
    fn open(objects: &Path) -> Option<GixBlobs> {
        let mut packs = Vec::new();
        for e in std::fs::read_dir(objects.join("pack")).ok()? {
            let path = e.ok()?.path();
            if path.extension().is_some_and(|x| x == "idx") {
                packs.push(gix_pack::Bundle::at(&path, gix_hash::Kind::Sha1).ok()?);
            }
        }
        (!packs.is_empty()).then(|| GixBlobs {
            packs,
            idle: Idle::new(Vec::new()),
        })
    }

    /// How the blob `oid` is stored, from the pack index and its entry's header; `None` when it
    /// is in no pack or is not a blob.
    fn stored(&self, oid: Oid) -> Option<Stored> {
        use gix_pack::data::entry::Header as H;
        let id = gix_hash::ObjectId::try_from(oid.as_bytes()).ok()?;
        self.packs.iter().enumerate().find_map(|(n, b)| {
            let i = b.index.lookup(id)?;
            let entry = b.pack.entry(b.index.pack_offset_at_index(i)).ok()?;
            match entry.header {
                H::Blob => Some(Stored::Whole(entry.decompressed_size, n, entry)),
                H::OfsDelta { .. } | H::RefDelta { .. } => Some(Stored::Delta),
                H::Commit | H::Tree | H::Tag => None,
            }
        })
    }

    /// The size of the blob `oid` when it is stored whole in a pack, else `None` (libgit2 then
    /// reads it and reports).
    fn size(&self, oid: Oid) -> Option<u64> {
        match self.stored(oid)? {
            Stored::Whole(size, ..) => Some(size),
            Stored::Delta => None,
        }
    }

    /// The blob `oid` if it is stored whole in a pack (see the type), or marked oversized from
    /// its entry's header (never inflated); else `None`.
    fn read(&self, oid: Oid, max_file_bytes: u64) -> Option<Blob> {
        let Stored::Whole(size, n, entry) = self.stored(oid)? else {
            return None;
        };
        if size > max_file_bytes {
            return Some(Blob::Oversized(size));
        }
        if size > CACHE_MAX {
            return None;
        }
        let mut buf = vec![0; usize::try_from(size).ok()?];
        let mut inflate = self.idle.take().unwrap_or_default();
        let read = self.packs[n]
            .pack
            .decompress_entry(&entry, &mut inflate, &mut buf);
        self.idle.put(inflate);
        read.ok()?;
        let binary = crate::has_nul(&buf);
        Some(Blob::Kept(buf, binary))
    }
}

/// Handles on one repository, one per thread reading at a time. A `git2::Repository` is not
/// `Sync`, and one handle shared behind a lock made every blob read of a change wait for the one
/// before it; separate handles read (and inflate) in parallel, so the detectors on both cores
/// no longer queue for the one reader (docs/adr/0012-classifier-performance.md, decision 7).
/// A handle is opened the first time every existing one is busy (at most one per thread that
/// reads at once: the rayon pool's threads and the caller's) and kept for the change's life.
struct Handles {
    /// The git directory of the first handle, opened again exactly (no discovery, no
    /// environment), so every handle is the same repository.
    git_dir: PathBuf,
    idle: Idle<Repository>,
}

impl Handles {
    fn new(repo: Repository) -> Handles {
        Handles {
            git_dir: repo.path().to_path_buf(),
            idle: Idle::new(vec![repo]),
        }
    }

    /// The object `oid`'s bytes, given to `f` while they are in libgit2's buffer (no copy
    /// unless `f` makes one).
    fn blob<T>(&self, oid: Oid, f: impl FnOnce(&[u8]) -> T) -> Result<T, git2::Error> {
        self.with(|repo| {
            let odb = repo.odb()?;
            let obj = odb.read(oid)?;
            Ok(f(obj.data()))
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Repository) -> Result<T, git2::Error>,
    ) -> Result<T, git2::Error> {
        let repo = match self.idle.take() {
            Some(r) => r,
            None => Repository::open_ext(
                &self.git_dir,
                RepositoryOpenFlags::NO_SEARCH,
                std::iter::empty::<&std::ffi::OsStr>(),
            )?,
        };
        let out = f(&repo);
        self.idle.put(repo);
        out
    }
}

/// Reading state that one thread uses at a time (a libgit2 handle, an inflate state), kept
/// between reads: taken when a read starts, put back when it ends, so there are at most as many
/// as threads that read at once.
struct Idle<T>(Mutex<Vec<T>>);

impl<T> Idle<T> {
    fn new(items: Vec<T>) -> Idle<T> {
        Idle(Mutex::new(items))
    }
    fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }
    fn put(&self, item: T) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(item);
    }
}

impl Contents for GitContents {
    fn base(&self, path: &str) -> Option<Cow<'_, [u8]>> {
        self.read(self.base_tree, &self.base, path)
    }
    fn head(&self, path: &str) -> Option<Cow<'_, [u8]>> {
        self.read(self.head_tree, &self.head, path)
    }
    fn inspectable(&self, path: &str, side: crate::Side) -> bool {
        let (tree, slots) = match side {
            crate::Side::Base => (self.base_tree, &self.base),
            crate::Side::Head => (self.head_tree, &self.head),
        };
        // A changed file not read yet is sized from its object's header: present and within
        // the limit is inspectable, with nothing inflated. Read already, or no header (gix
        // cannot read it, a neighbour file): the read answers, noting why not.
        if let (Some(slot), Some(gix)) = (slots.get(path), &self.gix)
            && slot.blob.get().is_none()
            && let Some(size) = gix.size(slot.oid)
        {
            if size <= self.max_file_bytes {
                return true;
            }
            let _ = slot.blob.set(Blob::Oversized(size));
        }
        self.read(tree, slots, path).is_some()
    }
    fn is_binary(&self, f: &ChangedFile) -> bool {
        // Without copying large blobs: the flag is kept from the first read.
        (f.status != FileStatus::Added
            && self.side_binary(self.base_tree, &self.base, f.base_path()))
            || (f.status != FileStatus::Deleted
                && self.side_binary(self.head_tree, &self.head, &f.path))
    }
    fn not_inspected(&self) -> BTreeMap<String, String> {
        self.not_inspected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    fn is_not_inspected(&self, path: &str) -> bool {
        self.not_inspected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(path)
    }
}

/// Open the repository at (or above) `repo_path` and list the change `base..head`.
///
/// `base` defaults to the merge base of `head` with the default branch (`origin/HEAD`, else
/// `origin/main`, `origin/master`, `main`, `master`); `head` defaults to `HEAD`. No blob is read
/// here: [`GitContents`] reads them on demand, and a blob larger than `max_file_bytes` (or one
/// that cannot be read) is answered as absent and reported by [`Contents::not_inspected`]. Turns off libgit2's
/// object re-hashing process-wide (see the module docs).
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
    change_of(repo, root, base, head, max_file_bytes)
}

/// [`open_change`] for a program that may read only repositories under `root` (the server's
/// `--repo-root`): opens `root/rel` itself, never a parent directory (no discovery upwards, and
/// git's environment variables such as `GIT_DIR` are ignored), and refuses a repository whose git
/// directory or work tree lies outside `root` (a `.git` file or symbolic link pointing elsewhere).
/// Errors name the repository by `rel`, never by an absolute path.
pub fn open_change_within(
    root: &Path,
    rel: &Path,
    base: Option<&str>,
    head: Option<&str>,
    max_file_bytes: u64,
) -> Result<GitChange, ClassifyError> {
    let not_a_repo = || ClassifyError::NotARepo {
        path: rel.to_path_buf(),
    };
    let repo = Repository::open_ext(
        root.join(rel),
        RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .map_err(|e| match e.code() {
        ErrorCode::NotFound => not_a_repo(),
        _ => ClassifyError::Git(e),
    })?;
    let root = std::fs::canonicalize(root).map_err(|_| not_a_repo())?;
    let inside = |p: &Path| std::fs::canonicalize(p).is_ok_and(|c| c.starts_with(&root));
    if !inside(repo.path())
        || !inside(repo.commondir())
        || repo.workdir().is_some_and(|w| !inside(w))
    {
        return Err(ClassifyError::OutsideRoot {
            path: rel.to_path_buf(),
        });
    }
    change_of(repo, rel.to_path_buf(), base, head, max_file_bytes)
}

/// List the change `base..head` of an open repository; `root` names it in error messages.
fn change_of(
    repo: Repository,
    root: PathBuf,
    base: Option<&str>,
    head: Option<&str>,
    max_file_bytes: u64,
) -> Result<GitChange, ClassifyError> {
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

    // The plain compare on both cores through gix when it can answer (tree_diff.rs says when);
    // libgit2's diff with rename detection otherwise.
    let store = gix_store(&repo);
    // Opened here, with the store: packs added after this are libgit2's to read.
    let blobs = GixBlobs::open(&repo.commondir().join("objects"));
    let fast = store.as_ref().and_then(|s| {
        let id = |t: &git2::Tree<'_>| gix_hash::ObjectId::try_from(t.id().as_bytes()).ok();
        match crate::tree_diff::diff(s, id(&base_tree)?, id(&head_tree)?) {
            crate::tree_diff::Outcome::Done(v, seen) => Some((v, seen)),
            crate::tree_diff::Outcome::Libgit2(_) => None,
        }
    });
    let mut read_dirs: [FxHashMap<String, Vec<crate::tree_diff::Entry>>; 2] = Default::default();
    let deltas = match fast {
        Some((v, seen)) => {
            // The directories read are kept as read; one becomes a listing only when a detector
            // looks into it (most never are).
            for (side, dir, entries) in seen {
                if let Ok(dir) = String::from_utf8(dir) {
                    read_dirs[side].insert(dir, entries);
                }
            }
            // On the pool: 10,000 files took milliseconds on one core, after a compare that
            // used both.
            use rayon::prelude::*;
            v.into_par_iter()
                .with_min_len(256)
                .filter_map(Raw::of_gix)
                .collect()
        }
        None => {
            let mut opts = DiffOptions::new();
            opts.include_typechange(true).ignore_submodules(false);
            let mut diff =
                repo.diff_tree_to_tree(Some(&base_tree), Some(&head_tree), Some(&mut opts))?;
            let mut find = DiffFindOptions::new();
            find.renames(true).rename_limit(1000);
            diff.find_similar(Some(&mut find))?;
            let v: Vec<Raw> = diff.deltas().filter_map(Raw::of_libgit2).collect();
            v
        }
    };

    // A delta without the path of its side is skipped (libgit2 names both for every status).
    let named = |d: &Raw| {
        if d.status == FileStatus::Deleted {
            d.old_path.is_some()
        } else {
            d.new_path.is_some()
        }
    };
    // The two sides' slots are built at once, one on each core (hashing and copying 10,000
    // paths into each map was the open phase's serial part); sized up front: 10,000 files grew
    // each map through a dozen rehashes.
    // `base`: the base side's slots (every file but an added one), else the head side's (every
    // file but a deleted one).
    let slots_of = |base: bool| {
        let absent = if base {
            FileStatus::Added
        } else {
            FileStatus::Deleted
        };
        let mut slots = FxHashMap::with_capacity_and_hasher(deltas.len(), Default::default());
        for d in deltas
            .iter()
            .filter(|d| named(d) && !d.submodule && d.status != absent)
        {
            let (path, id) = if base {
                (&d.old_path, d.old_id)
            } else {
                (&d.new_path, d.new_id)
            };
            if let Some(p) = path
                && !id.is_zero()
            {
                let blob = OnceLock::new();
                slots.insert(p.clone(), Slot { oid: id, blob });
            }
        }
        slots
    };
    let (base_slots, head_slots) = rayon::join(|| slots_of(true), || slots_of(false));
    let mut files = Vec::with_capacity(deltas.len());
    for d in deltas {
        if !named(&d) {
            continue;
        }
        let Raw {
            status,
            old_path,
            new_path,
            submodule,
            ..
        } = d;
        // The file's path moves out of the delta (no copy): its base path for a deletion,
        // else its head path; the base path is kept only for a rename.
        let (path, old_path) = match status {
            FileStatus::Deleted => (old_path, None),
            FileStatus::Renamed => (new_path, old_path),
            _ => (new_path, None),
        };
        let Some(path) = path else { continue };
        files.push(ChangedFile {
            path,
            old_path,
            status,
            submodule,
        });
    }
    let (bt, ht) = (base_tree.id(), head_tree.id());
    drop(base_tree);
    drop(head_tree);
    // A history that cannot be walked (a shallow clone) gives no messages: no fix marker, so the
    // coverage rule fails closed to `code-changed`.
    let messages = messages(&repo, base_commit, head_commit).unwrap_or_default();
    Ok(GitChange {
        messages,
        base: Revision {
            rev: base_rev,
            commit: base_commit.to_string(),
        },
        head: Revision {
            rev: head_rev,
            commit: head_commit.to_string(),
        },
        files,
        contents: GitContents {
            repos: Handles::new(repo),
            gix: blobs,
            max_file_bytes,
            base_tree: bt,
            head_tree: ht,
            base: base_slots,
            head: head_slots,
            not_inspected: Mutex::new(BTreeMap::new()),
            error: Mutex::new(None),
            dirs: Default::default(),
            read_dirs: read_dirs.map(Mutex::new),
        },
    })
}

/// Messages of `base..head`, newest first, at most [`MAX_MESSAGES`].
/// A directory as the tree compare read it, as a listing (the kinds libgit2 reports: a symbolic
/// link is a blob).
fn of_entries(entries: Vec<crate::tree_diff::Entry>) -> Listing {
    entries
        .into_iter()
        .filter_map(|e| {
            let kind = match e.kind {
                gix_object::tree::EntryKind::Tree => ObjectType::Tree,
                gix_object::tree::EntryKind::Commit => ObjectType::Commit,
                _ => ObjectType::Blob,
            };
            let id = Oid::from_bytes(e.oid.as_bytes()).ok()?;
            Some((e.name.into(), (Some(kind), id)))
        })
        .collect()
}

/// One changed file as either diff reports it.
struct Raw {
    status: FileStatus,
    old_path: Option<String>,
    new_path: Option<String>,
    old_id: Oid,
    new_id: Oid,
    submodule: bool,
}

impl Raw {
    fn of_libgit2(d: git2::DiffDelta<'_>) -> Option<Raw> {
        let status = match d.status() {
            Delta::Added | Delta::Copied | Delta::Untracked => FileStatus::Added,
            Delta::Deleted => FileStatus::Deleted,
            Delta::Renamed => FileStatus::Renamed,
            Delta::Typechange => FileStatus::TypeChanged,
            Delta::Unmodified | Delta::Ignored => return None,
            _ => FileStatus::Modified,
        };
        let (old, new) = (d.old_file(), d.new_file());
        let path_of = |p: Option<&Path>| p.map(|p| p.to_string_lossy().replace('\\', "/"));
        Some(Raw {
            status,
            old_path: path_of(old.path()),
            new_path: path_of(new.path()),
            old_id: old.id(),
            new_id: new.id(),
            submodule: old.mode() == FileMode::Commit || new.mode() == FileMode::Commit,
        })
    }

    /// As libgit2 reports the same file: both paths set, the absent side's id zero.
    fn of_gix(d: crate::tree_diff::Delta) -> Option<Raw> {
        use crate::tree_diff::Kind;
        let path = String::from_utf8_lossy(&d.path).replace('\\', "/");
        let id = |o: Option<gix_hash::ObjectId>| match o {
            Some(o) => Oid::from_bytes(o.as_bytes()).ok(),
            None => Some(Oid::ZERO_SHA1),
        };
        Some(Raw {
            status: match d.kind {
                Kind::Added => FileStatus::Added,
                Kind::Deleted => FileStatus::Deleted,
                Kind::Modified => FileStatus::Modified,
            },
            old_path: Some(path.clone()),
            new_path: Some(path),
            old_id: id(d.old)?,
            new_id: id(d.new)?,
            submodule: false,
        })
    }
}

/// The repository's object store opened by gix (its common directory's `objects`, alternates
/// included), or `None` when gix cannot open it: libgit2 then reads everything.
fn gix_store(repo: &Repository) -> Option<Arc<gix_odb::Store>> {
    crate::tree_diff::open_store(repo.commondir().join("objects"))
}

fn messages(repo: &Repository, base: Oid, head: Oid) -> Result<Vec<String>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    walk.hide(base)?;
    let mut out = Vec::new();
    for oid in walk.take(MAX_MESSAGES) {
        let c = repo.find_commit(oid?)?;
        out.push(String::from_utf8_lossy(c.message_bytes()).into_owned());
    }
    Ok(out)
}

/// A person as a commit records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitIdentity {
    /// Name, as written.
    pub name: String,
    /// E-mail, as written.
    pub email: String,
}

/// Who a commit names: its author, its committer, and its message (whose `Co-authored-by`
/// trailers name the co-authors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitPeople {
    /// Commit id.
    pub commit: String,
    /// Author.
    pub author: GitIdentity,
    /// Committer.
    pub committer: GitIdentity,
    /// Full message.
    pub message: String,
}

/// Every commit of `base..head` (reachable from `head`, not from `base`), newest first, with the
/// people git records for it: what the server reads so that a request body never decides who
/// wrote a change. Opens the repository at `repo_path` itself, never one above it.
pub fn commit_people(
    repo_path: &Path,
    base: &str,
    head: &str,
) -> Result<Vec<CommitPeople>, ClassifyError> {
    let repo = Repository::open_ext(
        repo_path,
        RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .map_err(|e| match e.code() {
        ErrorCode::NotFound => ClassifyError::NotARepo {
            path: repo_path.to_path_buf(),
        },
        _ => ClassifyError::Git(e),
    })?;
    let root = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
    let head = resolve(&repo, &root, head)?;
    let base = resolve(&repo, &root, base)?;
    let mut walk = repo.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL)?;
    walk.push(head)?;
    walk.hide(base)?;
    let identity = |s: git2::Signature<'_>| GitIdentity {
        name: String::from_utf8_lossy(s.name_bytes()).into_owned(),
        email: String::from_utf8_lossy(s.email_bytes()).into_owned(),
    };
    let mut out = Vec::new();
    for oid in walk {
        let c = repo.find_commit(oid?)?;
        out.push(CommitPeople {
            commit: c.id().to_string(),
            author: identity(c.author()),
            committer: identity(c.committer()),
            message: String::from_utf8_lossy(c.message_bytes()).into_owned(),
        });
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
        if let (Ok(res), Some(name)) = (r.resolve(), name)
            && let Some(oid) = res.target()
        {
            return Ok((name, oid));
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

#[cfg(test)]
mod tests {
    use changegate_testkit::GitRepo;

    use super::*;

    /// Neighbour reads (paths outside the change) through the cached directory trees answer
    /// what `Tree::get_path` answers, for plain paths and odd ones alike.
    #[test]
    fn neighbour_reads_match_get_path() {
        let r = GitRepo::with_files(&[
            ("a/b/c.txt", "c"),
            ("a/d.txt", "d"),
            ("top.txt", "t"),
            ("x", "file, not a directory"),
            ("changed.txt", "1"),
        ]);
        let base = r.head();
        r.write("changed.txt", "2");
        let head = r.commit("change");
        let change = open_change(r.path(), Some(&base), Some(&head), 8 << 20).unwrap();
        let repo = Repository::open(r.path()).unwrap();
        let tree = repo.revparse_single(&head).unwrap().peel_to_tree().unwrap();
        for p in [
            "a/b/c.txt",
            "a/d.txt",
            "top.txt",
            "a/b/none.txt",
            "a/none/c.txt",
            "none/c.txt",
            "x/y",
            "a/b",
            "a",
            "a//b/c.txt",
            "./top.txt",
            "a/./d.txt",
            "a/b/../d.txt",
            "a/b/c.txt/",
            "",
        ] {
            let want = tree
                .get_path(Path::new(p))
                .ok()
                .filter(|e| e.kind() == Some(ObjectType::Blob))
                .map(|e| repo.find_blob(e.id()).unwrap().content().to_vec());
            // Twice: the second read goes through the cached directories.
            for _ in 0..2 {
                let got = change.contents.head(p).map(Cow::into_owned);
                assert_eq!(got, want, "{p:?}");
            }
        }
        assert!(change.contents.take_error().is_none());
    }

    /// The gix blob reader gives libgit2's bytes for every blob stored whole in a pack, sizes an
    /// oversized one from its entry's header, and hands every delta (and, with no pack, every
    /// loose object) to libgit2; the change's reads through either reader agree with libgit2's.
    #[test]
    fn gix_blob_reads_agree_with_libgit2_loose_and_packed() {
        let text = |v: usize| -> String {
            (0..400)
                .map(|i| format!("line {i} of a file that packs as a delta, version {v}\n"))
                .collect()
        };
        let r = GitRepo::with_files(&[("empty.txt", ""), ("bin.dat", "a\0b")]);
        for v in 0..4 {
            r.write("big.txt", &text(v));
            r.write("small.txt", &format!("small {v}\n"));
            r.commit(&format!("v{v}"));
        }
        let base = r.head();
        r.write("big.txt", &text(9));
        r.write("bin.dat", "c\0d");
        r.write("empty.txt", "no longer empty");
        r.write("small.txt", "");
        let head = r.commit("head");
        let repo = Repository::open(r.path()).unwrap();
        let mut oids = Vec::new();
        repo.odb()
            .unwrap()
            .foreach(|id| {
                oids.push(*id);
                true
            })
            .unwrap();
        let check = |packed: bool| {
            let gix = GixBlobs::open(&repo.path().join("objects"));
            let (mut whole, mut deltas) = (0, 0);
            for &oid in &oids {
                let Ok(blob) = repo.find_blob(oid) else {
                    if let Some(gix) = &gix {
                        assert!(gix.read(oid, u64::MAX).is_none(), "not a blob: {oid}");
                    }
                    continue;
                };
                let want = blob.content();
                let Some(gix) = &gix else {
                    continue; // loose objects only: libgit2 reads them all
                };
                match gix.read(oid, u64::MAX) {
                    Some(Blob::Kept(got, binary)) => {
                        assert!(matches!(gix.stored(oid), Some(Stored::Whole(..))), "{oid}");
                        assert_eq!(gix.size(oid), Some(want.len() as u64), "{oid}");
                        assert_eq!(got, want, "{oid}");
                        assert_eq!(binary, crate::has_nul(want), "{oid}");
                        // Oversized from the entry's header, never inflated.
                        if !want.is_empty() {
                            assert!(
                                matches!(gix.read(oid, want.len() as u64 - 1), Some(Blob::Oversized(n)) if n == want.len() as u64),
                                "{oid}"
                            );
                        }
                        whole += 1;
                    }
                    None => {
                        assert!(
                            matches!(gix.stored(oid), Some(Stored::Delta)),
                            "{oid}: a blob stored whole not read by gix"
                        );
                        assert_eq!(gix.size(oid), None);
                        deltas += 1;
                    }
                    _ => panic!("{oid}: neither read nor handed over"),
                }
            }
            assert_eq!(gix.is_some(), packed);
            if packed {
                assert!(whole > 0);
                assert!(deltas > 0, "the repack made no delta: the test reads none");
            }
            let change = open_change(r.path(), Some(&base), Some(&head), 8 << 20).unwrap();
            let tree = |rev: &str| repo.revparse_single(rev).unwrap().peel_to_tree().unwrap();
            for p in ["big.txt", "bin.dat", "empty.txt", "small.txt"] {
                for (rev, got) in [
                    (&base, change.contents.base(p).map(Cow::into_owned)),
                    (&head, change.contents.head(p).map(Cow::into_owned)),
                ] {
                    let id = tree(rev).get_path(Path::new(p)).unwrap().id();
                    let want = repo.find_blob(id).unwrap().content().to_vec();
                    assert_eq!(got, Some(want), "{p} at {rev}");
                }
            }
            assert!(change.contents.take_error().is_none());
        };
        // Loose objects, as commits leave them; then packed with deltas.
        check(false);
        r.git(&["repack", "-adf", "--depth=50", "--window=50"]);
        r.git(&["prune-packed"]);
        check(true);
    }

    /// A blob stored whole whose compressed bytes are damaged is not read as something else:
    /// gix's inflate fails its checksum, libgit2 then fails too, and the file reads as not
    /// inspected with the error kept (the CLI and server fail with it).
    #[test]
    fn a_damaged_pack_entry_is_an_error_not_content() {
        let body: String = (0..200)
            .map(|i| format!("line {i} of the file\n"))
            .collect();
        let r = GitRepo::with_files(&[("f.txt", "base\n")]);
        let base = r.head();
        r.write("f.txt", &body);
        let head = r.commit("head");
        r.git(&["repack", "-adf"]);
        r.git(&["prune-packed"]);
        let id = r
            .git(&["rev-parse", &format!("{head}:f.txt")])
            .trim()
            .to_string();
        let pack_dir = r.path().join(".git/objects/pack");
        let idx = std::fs::read_dir(&pack_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "idx"))
            .unwrap();
        let listing = std::process::Command::new("git")
            .arg("show-index")
            .stdin(std::fs::File::open(&idx).unwrap())
            .output()
            .unwrap();
        let offset: usize = String::from_utf8(listing.stdout)
            .unwrap()
            .lines()
            .find(|l| l.contains(&id))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap();
        let pack = idx.with_extension("pack");
        let mut bytes = std::fs::read(&pack).unwrap();
        // Past the entry header (2 bytes for a blob this size) and zlib's, inside the deflate
        // data.
        bytes[offset + 20] ^= 0xff;
        std::fs::write(&pack, bytes).unwrap();
        let change = open_change(r.path(), Some(&base), Some(&head), 8 << 20).unwrap();
        let oid = Oid::from_str(&id).unwrap();
        let gix = GixBlobs::open(&r.path().join(".git/objects")).unwrap();
        assert!(matches!(gix.stored(oid), Some(Stored::Whole(..))));
        assert!(
            gix.read(oid, u64::MAX).is_none(),
            "damaged data read as a blob"
        );
        assert!(change.contents.head("f.txt").is_none());
        assert!(change.contents.is_not_inspected("f.txt"));
        assert!(change.contents.take_error().is_some());
    }

    /// A documentation file is sized from its object's header, never read: nothing inflated for
    /// a file whose content the classification does not look at; an oversized one is not
    /// inspectable.
    #[test]
    fn inspectable_reads_no_content() {
        let r = GitRepo::with_files(&[("docs/a.md", "a"), ("docs/big.md", "b")]);
        let base = r.head();
        r.write("docs/a.md", "a, edited");
        r.write("docs/big.md", &"x".repeat(100));
        let head = r.commit("docs");
        // Loose objects (no pack for gix to size them from): read, with the same answers.
        let change = open_change(r.path(), Some(&base), Some(&head), 50).unwrap();
        let c = &change.contents;
        assert!(c.inspectable("docs/a.md", crate::Side::Head));
        assert!(!c.inspectable("docs/big.md", crate::Side::Head));
        assert!(c.head.get("docs/a.md").unwrap().blob.get().is_some());
        // Packed: sized from the entries' headers.
        r.git(&["repack", "-adf"]);
        r.git(&["prune-packed"]);
        let change = open_change(r.path(), Some(&base), Some(&head), 50).unwrap();
        let c = &change.contents;
        assert!(c.inspectable("docs/a.md", crate::Side::Base));
        assert!(c.inspectable("docs/a.md", crate::Side::Head));
        assert!(c.base.get("docs/a.md").unwrap().blob.get().is_none());
        assert!(c.head.get("docs/a.md").unwrap().blob.get().is_none());
        assert!(c.inspectable("docs/big.md", crate::Side::Base));
        assert!(!c.inspectable("docs/big.md", crate::Side::Head));
        assert!(c.is_not_inspected("docs/big.md"));
        // Content reads still answer.
        assert_eq!(c.head("docs/a.md").as_deref(), Some(&b"a, edited"[..]));
        assert!(c.head("docs/big.md").is_none());
    }

    #[test]
    fn commit_people_reads_authors_committers_and_messages_of_base_to_head_only() {
        let r = GitRepo::with_files(&[("a.txt", "1")]);
        let base = r.head();
        r.write("a.txt", "2");
        r.git(&["add", "-A"]);
        r.git(&[
            "commit",
            "-q",
            "--author",
            "Bob Builder <bob@example.com>",
            "-m",
            "change\n\nCo-authored-by: Carl <carl@example.com>",
        ]);
        r.write("a.txt", "3");
        let head = r.commit("more");
        let got = commit_people(r.path(), &base, &head).unwrap();
        assert_eq!(
            got.len(),
            2,
            "base itself is not part of the change: {got:?}"
        );
        assert_eq!(got[0].commit, head);
        assert_eq!(got[0].author.email, changegate_testkit::git::EMAIL);
        assert_eq!(
            got[1].author,
            GitIdentity {
                name: "Bob Builder".into(),
                email: "bob@example.com".into()
            }
        );
        assert_eq!(got[1].committer.email, changegate_testkit::git::EMAIL);
        assert!(
            got[1]
                .message
                .contains("Co-authored-by: Carl <carl@example.com>")
        );
        assert!(commit_people(r.path(), &head, &head).unwrap().is_empty());
        assert!(matches!(
            commit_people(r.path(), "nope", &head),
            Err(ClassifyError::UnknownRevision { .. })
        ));
        // Never a repository above the path given.
        let sub = r.path().join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        assert!(matches!(
            commit_people(&sub, &base, &head),
            Err(ClassifyError::NotARepo { .. })
        ));
    }
}
