//! Real git repositories for tests and benches, built with the `git` CLI in a temporary folder.
//!
//! Every command runs with the same pinned environment: no global or system configuration (so a
//! developer's `commit.gpgsign`, hooks or `init.defaultBranch` never leak in), one identity and
//! one fixed author and committer date. The same files and messages therefore give the same
//! commit ids on every machine, which keeps snapshots that show them stable.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The name every commit is authored and committed by.
pub const NAME: &str = "Dev";
/// The e-mail every commit is authored and committed by.
pub const EMAIL: &str = "dev@example.com";
/// The author and committer date of every commit (a Monday).
pub const DATE: &str = "2026-01-05T10:00:00Z";
/// [`DATE`] as seconds since the epoch, for `git fast-import`.
pub const DATE_SECONDS: i64 = 1_767_607_200;

/// A `git` command in `dir` with the pinned environment (see the module docs).
pub fn command(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", NAME)
        .env("GIT_AUTHOR_EMAIL", EMAIL)
        .env("GIT_COMMITTER_NAME", NAME)
        .env("GIT_COMMITTER_EMAIL", EMAIL)
        .env("GIT_AUTHOR_DATE", DATE)
        .env("GIT_COMMITTER_DATE", DATE);
    c
}

/// Run `git args` in `dir`; panics with git's stderr when it fails. Returns stdout, trimmed.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = command(dir).args(args).output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git repository on disk: a fresh temporary folder ([`GitRepo::new`]) or a folder the caller
/// owns ([`GitRepo::init_at`]). It starts empty on branch `main`.
pub struct GitRepo {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl GitRepo {
    /// An empty repository on `main` in a new temporary folder (removed on drop).
    pub fn new() -> GitRepo {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().to_path_buf();
        git_in(&path, &["init", "-q", "-b", "main"]);
        GitRepo {
            path,
            _dir: Some(dir),
        }
    }

    /// An empty repository on `main` at `path` (created if needed; not removed on drop).
    pub fn init_at(path: &Path) -> GitRepo {
        std::fs::create_dir_all(path).expect("repository folder");
        git_in(path, &["init", "-q", "-b", "main"]);
        GitRepo {
            path: path.to_path_buf(),
            _dir: None,
        }
    }

    /// A repository on `main` whose one commit (`base`) holds `files`.
    pub fn with_files(files: &[(&str, &str)]) -> GitRepo {
        let r = GitRepo::new();
        for (path, text) in files {
            r.write(path, text);
        }
        r.commit("base");
        r
    }

    /// The working tree.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `git args` here (see [`git_in`]).
    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.path, args)
    }

    /// Write a file of the working tree (folders created as needed).
    pub fn write(&self, path: &str, content: &str) {
        self.write_bytes(path, content.as_bytes());
    }

    /// Write a file of the working tree from bytes.
    pub fn write_bytes(&self, path: &str, content: &[u8]) {
        let p = self.path.join(path);
        std::fs::create_dir_all(p.parent().expect("a file has a parent folder")).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Read a file of the working tree.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path.join(path)).unwrap()
    }

    /// Replace the first `from` by `to` in a file (the text must be there).
    pub fn edit(&self, path: &str, from: &str, to: &str) {
        let s = self.read(path);
        assert!(s.contains(from), "{path} does not contain {from:?}");
        self.write(path, &s.replacen(from, to, 1));
    }

    /// `git rm` a file.
    pub fn remove(&self, path: &str) {
        self.git(&["rm", "-q", path]);
    }

    /// Stage everything and commit it (an empty commit if nothing changed); returns its id.
    pub fn commit(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.head()
    }

    /// Create `branch` at HEAD and switch to it.
    pub fn branch(&self, branch: &str) {
        self.git(&["checkout", "-q", "-b", branch]);
    }

    /// Switch to an existing branch.
    pub fn checkout(&self, branch: &str) {
        self.git(&["checkout", "-q", branch]);
    }

    /// The commit id `rev` names.
    pub fn rev_parse(&self, rev: &str) -> String {
        self.git(&["rev-parse", rev])
    }

    /// The commit id of HEAD.
    pub fn head(&self) -> String {
        self.rev_parse("HEAD")
    }
}

/// One commit of a [`fast_import`] stream: `files` are written over its parent's tree.
pub struct BulkCommit {
    /// The ref it lands on, e.g. `refs/heads/main`.
    pub branch: String,
    /// The commit message.
    pub message: String,
    /// Whether its parent is the previous commit of the stream (else it is a root commit).
    pub on_previous: bool,
    /// `(path, content)` written by this commit.
    pub files: Vec<(String, String)>,
}

/// Build a large history fast with `git fast-import` in an (empty or new) repository at `dir`,
/// then point HEAD at `head` (a branch name). For benches: ten thousand files in seconds.
pub fn fast_import(dir: &Path, commits: impl IntoIterator<Item = BulkCommit>, head: &str) {
    std::fs::create_dir_all(dir).expect("repository folder");
    git_in(dir, &["init", "-q", "-b", "main"]);
    let mut fi = command(dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    let mut w = std::io::BufWriter::new(fi.stdin.take().unwrap());
    for (n, c) in commits.into_iter().enumerate() {
        writeln!(
            w,
            "commit {}\nmark :{}\ncommitter {NAME} <{EMAIL}> {DATE_SECONDS} +0000\ndata {}\n{}",
            c.branch,
            n + 1,
            c.message.len(),
            c.message
        )
        .unwrap();
        if c.on_previous && n > 0 {
            writeln!(w, "from :{n}").unwrap();
        }
        for (path, text) in &c.files {
            writeln!(w, "M 100644 inline {path}\ndata {}\n{text}", text.len()).unwrap();
        }
        writeln!(w).unwrap();
    }
    drop(w);
    assert!(fi.wait().unwrap().success(), "git fast-import failed");
    git_in(
        dir,
        &["symbolic-ref", "HEAD", &format!("refs/heads/{head}")],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_reproducible() {
        let a = GitRepo::with_files(&[("README.md", "# x\n")]);
        let b = GitRepo::with_files(&[("README.md", "# x\n")]);
        assert_eq!(a.head(), b.head());
        assert_eq!(a.head().len(), 40);
        a.branch("feature");
        a.edit("README.md", "x", "y");
        let next = a.commit("edit");
        assert_ne!(next, b.head());
        assert_eq!(a.rev_parse("main"), b.head());
        assert_eq!(
            a.git(&["log", "-1", "--format=%an %ae %aI"]),
            format!("{NAME} {EMAIL} 2026-01-05T10:00:00Z")
        );
    }

    #[test]
    fn fast_import_builds_two_branches() {
        let dir = tempfile::tempdir().unwrap();
        let files = |v: &str| vec![("a.txt".to_string(), format!("{v}\n"))];
        fast_import(
            dir.path(),
            [
                BulkCommit {
                    branch: "refs/heads/main".into(),
                    message: "base".into(),
                    on_previous: false,
                    files: files("1"),
                },
                BulkCommit {
                    branch: "refs/heads/feature".into(),
                    message: "head".into(),
                    on_previous: true,
                    files: files("2"),
                },
            ],
            "feature",
        );
        let diff = git_in(dir.path(), &["diff", "--name-status", "main", "feature"]);
        assert_eq!(diff, "M\ta.txt");
        assert_eq!(
            git_in(dir.path(), &["symbolic-ref", "--short", "HEAD"]),
            "feature"
        );
    }
}
