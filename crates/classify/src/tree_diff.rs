//! The plain compare of two trees, on every core of the pool: gix reads the trees (a handle of
//! its own per job, so no read waits for another thread's; libgit2's shared pack locks made that
//! impossible with its handles), and the result is the list libgit2's tree-to-tree diff gives
//! for the same two trees, in the same order.
//!
//! It answers only where no choice of git's is involved: files added, deleted or modified as
//! regular or executable blobs. A change that libgit2 might read differently is handed back to
//! libgit2 whole ([`Outcome::Libgit2`]): a symbolic link or submodule among the differences (type
//! changes, submodule moves), or both an added and a deleted file (a rename to detect, which is
//! libgit2's similarity measure and stays libgit2's). Any error reading here hands back as well:
//! this path is an accelerator, never a new way to fail
//! (docs/adr/0012-classifier-performance.md, decision 12).

use std::cmp::Ordering;
use std::sync::Arc;

use gix_hash::ObjectId;
use gix_object::FindExt;
use gix_object::tree::EntryKind;
use rayon::prelude::*;

/// How a file differs between the two trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Added,
    Deleted,
    Modified,
}

/// One changed file: its full path (bytes, as in the trees) and its blob on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delta {
    pub path: Vec<u8>,
    pub kind: Kind,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
}

/// A directory the compare read: its path (no trailing `/`, empty at the root), the side (0
/// base, 1 head) and its entries. Kept so that reads of files beside the changed ones (a
/// detector's neighbour reads) need no second read of the same trees.
pub(crate) type Seen = (usize, Vec<u8>, Vec<Entry>);

/// What the compare found.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every changed file, sorted as libgit2 lists them (by path), and the directories read.
    Done(Vec<Delta>, Vec<Seen>),
    /// libgit2 must read this change (the reason, for tests).
    Libgit2(#[cfg_attr(not(test), allow(dead_code))] &'static str),
}

/// Below this many pending subtree pairs the caller splits one more level before spreading the
/// work over the pool (enough jobs for both cores to stay busy to the end).
const SPLIT: usize = 64;

/// The object store in the directory `objects` (a repository's `objects`, alternates included),
/// or `None` when gix cannot open it: libgit2 then reads everything.
pub(crate) fn open_store(objects: std::path::PathBuf) -> Option<Arc<gix_odb::Store>> {
    gix_odb::Store::at_opts(
        objects,
        gix_hash::Kind::Sha1,
        &mut std::iter::empty(),
        gix_odb::store::init::Options::default(),
    )
    .ok()
    .map(Arc::new)
}

/// A handle on the store for one job: its own caches, nothing shared but the mapped packs.
pub(crate) fn handle(store: &Arc<gix_odb::Store>) -> gix_odb::HandleArc {
    let mut h = store.to_cache_arc();
    h.set_pack_cache(|| Box::new(gix_pack::cache::lru::StaticLinkedList::<64>::default()));
    h
}

/// Compare the trees `base` and `head` of the object store `store`.
pub(crate) fn diff(store: &Arc<gix_odb::Store>, base: ObjectId, head: ObjectId) -> Outcome {
    match run(store, base, head) {
        Ok(Some((mut out, seen))) => {
            let (added, deleted) = out.iter().fold((false, false), |(a, d), x| {
                (a || x.kind == Kind::Added, d || x.kind == Kind::Deleted)
            });
            if added && deleted {
                return Outcome::Libgit2("an added and a deleted file: renames to detect");
            }
            out.sort_unstable_by(|a, b| a.path.cmp(&b.path));
            Outcome::Done(out, seen)
        }
        Ok(None) => Outcome::Libgit2("a symbolic link or submodule among the differences"),
        Err(()) => Outcome::Libgit2("an object gix could not read"),
    }
}

/// A tree pair to compare, or a tree present on one side only (every file in it added or
/// deleted), with the path of its directory (ending in `/`, empty at the root).
enum Job {
    Pair(ObjectId, ObjectId, Vec<u8>),
    One(ObjectId, Vec<u8>, Kind),
}

/// `Ok(None)`: hand back to libgit2. `Err`: a read failed (also handed back).
type Step = Result<Option<()>, ()>;

/// What one job found: the changed files and the directories read.
type Found = (Vec<Delta>, Vec<Seen>);

fn run(store: &Arc<gix_odb::Store>, base: ObjectId, head: ObjectId) -> Result<Option<Found>, ()> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut jobs = vec![Job::Pair(base, head, Vec::new())];
    // Split on the caller until there are enough jobs (or none left).
    let h = handle(store);
    let mut buf = (Vec::new(), Vec::new());
    let mut levels = 0;
    while !jobs.is_empty() && jobs.len() < SPLIT && levels < 8 {
        let mut next = Vec::new();
        for job in jobs {
            if step(&h, &mut buf, job, &mut out, &mut seen, &mut next)?.is_none() {
                return Ok(None);
            }
        }
        jobs = next;
        levels += 1;
    }
    drop(h);
    // Each job to its end (depth first) on a handle of its own.
    let found: Vec<Option<Found>> = jobs
        .into_par_iter()
        .with_max_len(1)
        .map(|job| {
            let h = handle(store);
            let mut buf = (Vec::new(), Vec::new());
            let (mut out, mut seen) = (Vec::new(), Vec::new());
            let mut stack = vec![job];
            while let Some(job) = stack.pop() {
                if step(&h, &mut buf, job, &mut out, &mut seen, &mut stack)?.is_none() {
                    return Ok(None);
                }
            }
            Ok(Some((out, seen)))
        })
        .collect::<Result<_, ()>>()?;
    for part in found {
        let Some((o, s)) = part else { return Ok(None) };
        out.extend(o);
        seen.extend(s);
    }
    Ok(Some((out, seen)))
}

/// An entry of a tree, owned.
#[derive(Debug)]
pub(crate) struct Entry {
    pub name: Vec<u8>,
    pub kind: EntryKind,
    pub oid: ObjectId,
}

impl Entry {
    fn is_tree(&self) -> bool {
        self.kind == EntryKind::Tree
    }
    /// A regular or executable file: the only kinds this compare answers for.
    fn is_file(&self) -> bool {
        matches!(self.kind, EntryKind::Blob | EntryKind::BlobExecutable)
    }
}

fn entries(h: &gix_odb::HandleArc, id: &ObjectId, buf: &mut Vec<u8>) -> Result<Vec<Entry>, ()> {
    let iter = h.find_tree_iter(id, buf).map_err(|_| ())?;
    iter.map(|e| {
        let e = e.map_err(|_| ())?;
        Ok(Entry {
            name: e.filename.to_vec(),
            kind: e.mode.kind(),
            oid: e.oid.to_owned(),
        })
    })
    .collect()
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + name.len() + 1);
    p.extend_from_slice(prefix);
    p.extend_from_slice(name);
    p
}

/// One entry present on one side only (`kind` says which): a file is added or deleted, a
/// directory becomes a job of its own.
fn one_sided(
    e: &Entry,
    prefix: &[u8],
    kind: Kind,
    out: &mut Vec<Delta>,
    jobs: &mut Vec<Job>,
) -> Option<()> {
    let path = join(prefix, &e.name);
    if e.is_tree() {
        let mut dir = path;
        dir.push(b'/');
        jobs.push(Job::One(e.oid, dir, kind));
    } else if e.is_file() {
        let (old, new) = match kind {
            Kind::Deleted => (Some(e.oid), None),
            _ => (None, Some(e.oid)),
        };
        out.push(Delta {
            path,
            kind,
            old,
            new,
        });
    } else {
        return None;
    }
    Some(())
}

/// Read one job's tree(s): changed files go to `out`, subtrees still to compare to `jobs`.
fn step(
    h: &gix_odb::HandleArc,
    buf: &mut (Vec<u8>, Vec<u8>),
    job: Job,
    out: &mut Vec<Delta>,
    seen: &mut Vec<Seen>,
    jobs: &mut Vec<Job>,
) -> Step {
    let dir = |prefix: &[u8]| prefix[..prefix.len().saturating_sub(1)].to_vec();
    match job {
        Job::One(id, prefix, kind) => {
            let es = entries(h, &id, &mut buf.0)?;
            for e in &es {
                if one_sided(e, &prefix, kind, out, jobs).is_none() {
                    return Ok(None);
                }
            }
            seen.push((usize::from(kind == Kind::Added), dir(&prefix), es));
        }
        Job::Pair(a, b, prefix) => {
            let (ea, eb) = (entries(h, &a, &mut buf.0)?, entries(h, &b, &mut buf.1)?);
            let (mut i, mut j) = (0, 0);
            while i < ea.len() || j < eb.len() {
                // Git's tree order: a directory sorts as its name followed by `/`.
                let order = match (ea.get(i), eb.get(j)) {
                    (Some(x), Some(y)) => gix_object::tree::name_order(
                        x.name.as_slice(),
                        x.is_tree(),
                        y.name.as_slice(),
                        y.is_tree(),
                    ),
                    (Some(_), None) => Ordering::Less,
                    _ => Ordering::Greater,
                };
                match order {
                    Ordering::Less => {
                        if one_sided(&ea[i], &prefix, Kind::Deleted, out, jobs).is_none() {
                            return Ok(None);
                        }
                        i += 1;
                    }
                    Ordering::Greater => {
                        if one_sided(&eb[j], &prefix, Kind::Added, out, jobs).is_none() {
                            return Ok(None);
                        }
                        j += 1;
                    }
                    Ordering::Equal => {
                        let (x, y) = (&ea[i], &eb[j]);
                        if x.oid != y.oid || x.kind != y.kind {
                            if x.is_tree() && y.is_tree() {
                                let mut dir = join(&prefix, &x.name);
                                dir.push(b'/');
                                jobs.push(Job::Pair(x.oid, y.oid, dir));
                            } else if x.is_file() && y.is_file() {
                                out.push(Delta {
                                    path: join(&prefix, &x.name),
                                    kind: Kind::Modified,
                                    old: Some(x.oid),
                                    new: Some(y.oid),
                                });
                            } else {
                                return Ok(None);
                            }
                        }
                        i += 1;
                        j += 1;
                    }
                }
            }
            seen.push((0, dir(&prefix), ea));
            seen.push((1, dir(&prefix), eb));
        }
    }
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    //! Differential: on random pairs of trees (names that sort around `/`, modes, type changes,
    //! files becoming directories, submodules, symbolic links), whatever this compare answers is
    //! exactly libgit2's diff of the same trees, rename detection included, in the same order;
    //! and every directory it kept lists what libgit2 reads there.
    use super::*;
    use git2::{DiffFindOptions, DiffOptions, FileMode, Oid, Repository};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

    const NAMES: [&str; 8] = ["a", "a.b", "a-b", "a0", "b", "ab", "a b", "\u{e9}"];
    const CONTENTS: [&str; 3] = ["one\n", "two\n", "three\n"];

    /// One path of the universe: on which sides it exists, and its mode and content on each.
    type Spec = (Vec<usize>, u8, u8, usize, usize, u8);

    fn mode(m: u8) -> FileMode {
        match m {
            0..=6 => FileMode::Blob,
            7 | 8 => FileMode::BlobExecutable,
            9 => FileMode::Link,
            _ => FileMode::Commit,
        }
    }

    /// The tree of `files` (path → mode, content), written with libgit2; a path under another
    /// file's path is left out (a side cannot hold both).
    fn write(repo: &Repository, files: &BTreeMap<Vec<String>, (FileMode, usize)>) -> Oid {
        fn build(
            repo: &Repository,
            files: &BTreeMap<Vec<String>, (FileMode, usize)>,
            prefix: &[String],
        ) -> Option<Oid> {
            let mut b = repo.treebuilder(None).unwrap();
            let mut dirs = std::collections::BTreeSet::new();
            for (path, (m, c)) in files {
                if path.len() <= prefix.len() || path[..prefix.len()] != *prefix {
                    continue;
                }
                let name = &path[prefix.len()];
                if path.len() == prefix.len() + 1 {
                    let id = if *m == FileMode::Commit {
                        Oid::hash_object(git2::ObjectType::Blob, CONTENTS[*c].as_bytes()).unwrap()
                    } else {
                        repo.blob(CONTENTS[*c].as_bytes()).unwrap()
                    };
                    b.insert(name, id, (*m).into()).unwrap();
                } else {
                    dirs.insert(name.clone());
                }
            }
            for d in dirs {
                if b.get(&d).unwrap().is_some() {
                    continue;
                }
                let mut p = prefix.to_vec();
                p.push(d.clone());
                if let Some(id) = build(repo, files, &p) {
                    b.insert(&d, id, FileMode::Tree.into()).unwrap();
                }
            }
            (!b.is_empty() || prefix.is_empty()).then(|| b.write().unwrap())
        }
        build(repo, files, &[]).unwrap()
    }

    fn libgit2(repo: &Repository, a: Oid, b: Oid) -> Vec<(Vec<u8>, Kind, Oid, Oid)> {
        let (a, b) = (repo.find_tree(a).unwrap(), repo.find_tree(b).unwrap());
        let mut opts = DiffOptions::new();
        opts.include_typechange(true).ignore_submodules(false);
        let mut diff = repo
            .diff_tree_to_tree(Some(&a), Some(&b), Some(&mut opts))
            .unwrap();
        let mut find = DiffFindOptions::new();
        find.renames(true).rename_limit(1000);
        diff.find_similar(Some(&mut find)).unwrap();
        diff.deltas()
            .map(|d| {
                let kind = match d.status() {
                    git2::Delta::Added => Kind::Added,
                    git2::Delta::Deleted => Kind::Deleted,
                    git2::Delta::Modified => Kind::Modified,
                    other => panic!("libgit2 reported {other:?} where gix answered"),
                };
                let file = if kind == Kind::Deleted {
                    d.old_file()
                } else {
                    d.new_file()
                };
                (
                    file.path_bytes().unwrap().to_vec(),
                    kind,
                    d.old_file().id(),
                    d.new_file().id(),
                )
            })
            .collect()
    }

    fn oid(o: Option<ObjectId>) -> Oid {
        o.map_or(Oid::ZERO_SHA1, |o| Oid::from_bytes(o.as_bytes()).unwrap())
    }

    static ANSWERED: AtomicUsize = AtomicUsize::new(0);
    static HANDED: AtomicUsize = AtomicUsize::new(0);

    /// `None` when gix answered (and agreed), else why it handed back.
    fn check(specs: &[Spec]) -> Option<&'static str> {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let (mut base, mut head) = (BTreeMap::new(), BTreeMap::new());
        for (path, mb, mh, cb, ch, sides) in specs {
            let path: Vec<String> = path.iter().map(|&i| NAMES[i].to_string()).collect();
            if sides & 1 != 0 {
                base.insert(path.clone(), (mode(*mb), *cb));
            }
            if sides & 2 != 0 {
                head.insert(path, (mode(*mh), *ch));
            }
        }
        let (a, b) = (write(&repo, &base), write(&repo, &head));
        let store = open_store(dir.path().join("objects")).unwrap();
        let id = |o: Oid| ObjectId::try_from(o.as_bytes()).unwrap();
        match diff(&store, id(a), id(b)) {
            Outcome::Done(v, seen) => {
                ANSWERED.fetch_add(1, AtomicOrdering::Relaxed);
                let ours: Vec<_> = v
                    .into_iter()
                    .map(|d| (d.path, d.kind, oid(d.old), oid(d.new)))
                    .collect();
                assert_eq!(ours, libgit2(&repo, a, b));
                for (side, dir, entries) in seen {
                    let root = repo.find_tree(if side == 0 { a } else { b }).unwrap();
                    let tree = if dir.is_empty() {
                        root
                    } else {
                        let path = std::str::from_utf8(&dir).unwrap();
                        let e = root.get_path(std::path::Path::new(path)).unwrap();
                        repo.find_tree(e.id()).unwrap()
                    };
                    let want: Vec<_> = tree
                        .iter()
                        .map(|e| (e.name_bytes().to_vec(), e.id()))
                        .collect();
                    let got: Vec<_> = entries
                        .iter()
                        .map(|e| (e.name.clone(), Oid::from_bytes(e.oid.as_bytes()).unwrap()))
                        .collect();
                    assert_eq!(got, want, "directory {:?}", String::from_utf8_lossy(&dir));
                }
                None
            }
            Outcome::Libgit2(why) => {
                HANDED.fetch_add(1, AtomicOrdering::Relaxed);
                Some(why)
            }
        }
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (
            prop::collection::vec(0..NAMES.len(), 1..=3),
            0..11u8,
            0..11u8,
            0..CONTENTS.len(),
            0..CONTENTS.len(),
            prop_oneof![6 => Just(3u8), 1 => Just(1u8), 2 => Just(2u8)],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn whatever_gix_answers_is_libgit2s_diff(specs in prop::collection::vec(spec(), 0..16)) {
            let _ = check(&specs);
        }
    }

    #[test]
    fn the_differential_test_reaches_both_outcomes() {
        // Deterministic cases that the random ones must not be the only judge of.
        let f = |p: &[usize], mb, mh, cb, ch, s| (p.to_vec(), mb, mh, cb, ch, s);
        check(&[f(&[0], 0, 0, 0, 1, 3), f(&[1, 2], 0, 0, 0, 0, 2)]); // modify + add: answered
        check(&[f(&[0], 0, 7, 0, 0, 3)]); // mode change only: answered (modified)
        check(&[f(&[0], 0, 0, 0, 0, 1), f(&[1], 0, 0, 0, 0, 2)]); // add + delete: handed back
        check(&[f(&[0], 0, 9, 0, 0, 3)]); // blob to link: handed back
        check(&[
            f(&[0, 1], 0, 0, 0, 1, 3),
            f(&[0, 2], 0, 0, 1, 1, 3),
            f(&[3], 0, 0, 0, 2, 3),
        ]);
        assert!(ANSWERED.load(AtomicOrdering::Relaxed) >= 3);
        assert!(HANDED.load(AtomicOrdering::Relaxed) >= 2);
    }

    #[test]
    fn a_missing_object_hands_back_to_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let mut files = BTreeMap::new();
        files.insert(vec!["x".to_string()], (FileMode::Blob, 0));
        let a = write(&repo, &files);
        let store = open_store(dir.path().join("objects")).unwrap();
        let missing = ObjectId::from_hex(b"1234567890123456789012345678901234567890").unwrap();
        let id = ObjectId::try_from(a.as_bytes()).unwrap();
        match diff(&store, id, missing) {
            Outcome::Libgit2(why) => assert!(why.contains("could not read"), "{why}"),
            Outcome::Done(..) => panic!("answered without the head tree"),
        }
    }
}
