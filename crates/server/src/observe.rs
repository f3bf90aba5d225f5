//! What the server observes itself, so that a request body never decides what a change contains
//! or who wrote it: a repository under its `--repo-root` or a mirror it fetches from the
//! repository's remote (`--mirror-dir`, [`crate::mirror`]; [`locate`]), read between two commits for the
//! classification and for the people git names (authors, committers, `Co-authored-by`
//! trailers). And who may vouch for what the server cannot observe.
//!
//! The authority checks are one function each ([`may_send_classification`],
//! [`may_name_last_pusher`]) so the token model can change in one place.

use std::path::{Component, Path, PathBuf};

use changegate_classify::CommitPeople;
use changegate_gate::ops::PushObservation;
use changegate_gate::people::{canonical, parse_co_authors};
use changegate_gate::{ClassifiedChange, Person, Voucher, WorldState};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::Caller;

/// Whether this token may send a classification (one a CI job computed with `changegate
/// classify`): a token with the `classify` scope (admin tokens hold every scope).
pub fn may_send_classification(caller: &Caller) -> bool {
    caller.has_scope(crate::token::Scope::Classify)
}

/// Whether this token may name the last pusher (the integration that observed the push): a token
/// with the `deployments` scope (admin tokens hold every scope).
pub fn may_name_last_pusher(caller: &Caller) -> bool {
    caller.has_scope(crate::token::Scope::Deployments)
}

/// The caller's token as a voucher (recorded in the change's provenance).
pub fn voucher(caller: &Caller) -> Voucher {
    Voucher {
        token: caller.token_id.clone(),
        person: caller.person.clone(),
    }
}

/// The directory the server reads for `repository`: a relative path of plain components under
/// its repo root that stays inside the root after resolving links. `None` when the server has no
/// repo root or `repository` is not such a path.
pub fn repository_path(s: &AppState, repository: &str) -> Option<PathBuf> {
    let root = s.repo_root.as_ref()?;
    let rel = Path::new(repository);
    let plain = !repository.is_empty()
        && !rel.is_absolute()
        && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return None;
    }
    let path = root.join(rel);
    let inside = std::fs::canonicalize(&path)
        .ok()
        .zip(std::fs::canonicalize(root).ok())
        .is_some_and(|(p, r)| p.starts_with(r));
    inside.then_some(path)
}

/// Where the server reads a change's repository.
#[derive(Debug, Clone)]
pub enum Located {
    /// A repository under `--repo-root`: `root/rel`.
    Local {
        /// The repo root.
        root: PathBuf,
        /// The repository, relative to it.
        rel: PathBuf,
    },
    /// A remote repository the server mirrors (`--mirror-dir`), fetched before it is read.
    Mirror {
        /// The remote.
        remote: crate::mirror::Allowed,
        /// Refs to fetch besides its branches (`refs/pull/N/head`).
        refs: Vec<String>,
    },
}

/// Where the server reads `repository`: under its repo root; else, with mirrors, a configured
/// repository name or a URL under an allowed remote prefix (with `refs` to fetch besides the
/// branches). Otherwise the error says why the server cannot classify it (`repository-outside-root`,
/// `classification-required`, `invalid-repository-url`, `repository-not-allowed`): the caller
/// answers it unless a token allowed to classify sent a classification.
pub fn locate(s: &AppState, repository: &str, refs: Vec<String>) -> Result<Located, ApiError> {
    if let Some(path) = repository_path(s, repository)
        && let Some(root) = &s.repo_root
    {
        let rel = path
            .strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        return Ok(Located::Local {
            root: root.clone(),
            rel,
        });
    }
    let looks_remote =
        repository.contains("://") || (repository.contains('@') && repository.contains(':'));
    if let Some(m) = &s.mirrors {
        let url = match m.named(repository) {
            Some(u) => Some(u.clone()),
            None if looks_remote => Some(
                crate::mirror::RemoteUrl::parse(repository, false).map_err(|why| {
                    ApiError::new(
                        ErrorCode::InvalidRepositoryUrl,
                        format!(
                            "`{}` is not a repository URL the server fetches: {why}",
                            shown(repository)
                        ),
                    )
                    .at("body `repository`")
                })?,
            ),
            None => None,
        };
        if let Some(url) = url {
            let remote = m.allowed(&url).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::RepositoryNotAllowed,
                    format!(
                        "the server does not fetch from `{url}`: it matches no remote of its mirror allow-list (serve --mirror-config)"
                    ),
                )
                .at("body `repository`")
            })?;
            return Ok(Located::Mirror { remote, refs });
        }
    }
    Err(cannot_classify(s, repository, looks_remote))
}

/// `repository` as an error message may show it: a URL's user information (which could be a
/// credential) replaced by `***`.
fn shown(repository: &str) -> String {
    if let Some((scheme, rest)) = repository.split_once("://") {
        let end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    repository.to_string()
}

/// Why the server cannot classify `repository` when no classification was given.
fn cannot_classify(s: &AppState, repository: &str, looks_remote: bool) -> ApiError {
    if looks_remote {
        return ApiError::new(
            ErrorCode::ClassificationRequired,
            "give `classification` (from `changegate classify --format json`, with a token allowed to classify); this server keeps no mirrors of remote repositories (start it with --mirror-dir DIR --mirror-config FILE)",
        )
        .at("body `classification`");
    }
    if s.repo_root.is_none() {
        let mirrors = if s.mirrors.is_some() {
            ", and `repository` is neither a URL nor a repository name of its mirror config"
        } else {
            ""
        };
        return ApiError::new(
            ErrorCode::ClassificationRequired,
            format!(
                "give `classification` (from `changegate classify --format json`, with a token allowed to classify); this server does not classify repositories by path (start it with --repo-root DIR){mirrors}"
            ),
        )
        .at("body `classification`");
    }
    ApiError::new(
        ErrorCode::RepositoryOutsideRoot,
        format!("`{repository}` is not a repository under the server's repo root"),
    )
    .at("body `repository`")
}

/// The server's observations of (repository, base, head) where both are full commit ids: a
/// commit id names its content, so what the server read between two of them (classification,
/// the commits' people) is the same every time it reads it, under one policy. A burst of
/// deliveries for pull requests on the same commits (or a delivery retried) then reads the
/// repository once: concurrent readers of one key wait for the first (one fetch, one
/// classification). Bounded: the oldest entries are dropped beyond [`ObservationCache::CAPACITY`].
/// Failures are not kept (the next reader tries again). A ref or abbreviated id is never cached
/// (it can move).
#[derive(Default)]
pub struct ObservationCache {
    inner: std::sync::Mutex<CacheInner>,
    reads: std::sync::atomic::AtomicU64,
}

type CacheKey = (usize, String, String, String);
type CacheCell = std::sync::Arc<tokio::sync::OnceCell<std::sync::Arc<Observed>>>;

#[derive(Default)]
struct CacheInner {
    map: std::collections::HashMap<CacheKey, CacheCell>,
    order: std::collections::VecDeque<CacheKey>,
}

impl std::fmt::Debug for ObservationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservationCache")
            .field("reads", &self.reads())
            .finish_non_exhaustive()
    }
}

impl ObservationCache {
    /// Entries kept.
    pub const CAPACITY: usize = 1024;

    /// How many times the server read a repository (fetched a mirror if needed and classified)
    /// rather than answering from the cache.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cell(&self, key: CacheKey) -> CacheCell {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = g.map.get(&key) {
            return c.clone();
        }
        let c = CacheCell::default();
        g.map.insert(key.clone(), c.clone());
        g.order.push_back(key);
        while g.order.len() > Self::CAPACITY {
            if let Some(old) = g.order.pop_front() {
                g.map.remove(&old);
            }
        }
        c
    }
}

/// What the server read from a repository between two commits.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The classification of `base..head`.
    pub classification: ClassifiedChange,
    /// Every commit of `base..head` with its people.
    pub commits: Vec<CommitPeople>,
    /// The paths `base..head` changes, as git lists them (renames detected; at most
    /// [`MAX_CHANGED_FILES`]): `what.changed-files` of the event that records the
    /// classification.
    pub files: Vec<String>,
}

/// At most this many changed paths are recorded in one event (the rest are counted).
pub const MAX_CHANGED_FILES: usize = 1000;

/// The changed paths of `base..head` in the repository `rel` under `root` (no blob is read).
fn list_files(
    root: &Path,
    rel: &Path,
    base: &str,
    head: &str,
) -> Result<Vec<String>, changegate_classify::ClassifyError> {
    let change =
        changegate_classify::open_change_within(root, rel, Some(base), Some(head), u64::MAX)?;
    Ok(change
        .files
        .into_iter()
        .map(|f| f.path)
        .take(MAX_CHANGED_FILES)
        .collect())
}

/// The changed paths of `base..head` of a repository under the server's repo root, read from
/// git at deploy time (`None` when the server cannot read it there: the classification's
/// event carries them then, when the server observed it).
pub async fn changed_files(
    s: &AppState,
    repository: &str,
    base: &str,
    head: &str,
) -> Option<Vec<String>> {
    let path = repository_path(s, repository)?;
    let root = s.repo_root.clone()?;
    let rel = path.strip_prefix(&root).ok()?.to_path_buf();
    let (base, head) = (base.to_string(), head.to_string());
    tokio::task::spawn_blocking(move || list_files(&root, &rel, &base, &head).ok())
        .await
        .ok()
        .flatten()
}

/// The files of an observation as an event's `what.changed-files`.
pub fn files_value(files: &[String]) -> serde_json::Value {
    serde_json::Value::from(files.to_vec())
}

/// Classify `base..head` of the repository `at` (a mirror is fetched first: a 502 when its
/// remote fails) and read its commits' people. Errors are `classify-failed`, located at
/// `location`, with the server's paths replaced by `repository`.
pub async fn observe(
    s: &AppState,
    at: &Located,
    repository: &str,
    base: &str,
    head: &str,
    location: &str,
) -> Result<Observed, ApiError> {
    use crate::mirror::is_full_id;
    if !(is_full_id(base) && is_full_id(head)) {
        return read(s, at, repository, base, head, location).await;
    }
    let place = match at {
        Located::Local { root, rel } => root.join(rel).display().to_string(),
        Located::Mirror { remote, .. } => remote.url.to_string(),
    };
    let policy = std::sync::Arc::as_ptr(&s.policy) as usize;
    let key = (
        policy,
        place,
        base.to_ascii_lowercase(),
        head.to_ascii_lowercase(),
    );
    let cell = s.observed.cell(key);
    let o = cell
        .get_or_try_init(|| async {
            read(s, at, repository, base, head, location)
                .await
                .map(std::sync::Arc::new)
        })
        .await?;
    Ok(Observed::clone(o))
}

/// [`observe`] without the cache.
async fn read(
    s: &AppState,
    at: &Located,
    repository: &str,
    base: &str,
    head: &str,
    location: &str,
) -> Result<Observed, ApiError> {
    s.observed
        .reads
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (root, rel) = match at {
        Located::Local { root, rel } => (root.clone(), rel.clone()),
        Located::Mirror { remote, refs } => {
            let m = s
                .mirrors
                .as_ref()
                .ok_or_else(|| ApiError::internal("a mirror located without mirrors"))?;
            let want = [base.to_string(), head.to_string()];
            let name = m
                .fetch(remote, refs, &want)
                .await
                .map_err(|e| fetch_error(&e))?;
            (m.dir().to_path_buf(), PathBuf::from(name))
        }
    };
    let policy = s.policy.clone();
    let (base, head) = (base.to_string(), head.to_string());
    let path = root.join(&rel);
    let dir = path.clone();
    // Opened as a repository of its own, never a parent's (`classify_repo_within`, NO_SEARCH).
    let within = root.clone();
    let rel_shown = rel.display().to_string();
    // On the background pool, below the priority of the threads that answer requests.
    let read = tokio::task::spawn_blocking(move || {
        crate::background_cpu::run(|| {
            let c = changegate_classify::classify_repo_within(
                &within,
                &rel,
                Some(&base),
                Some(&head),
                &policy,
                None,
            )?;
            let commits = changegate_classify::commit_people(&dir, &base, &head)?;
            let files = list_files(&within, &rel, &base, &head)?;
            Ok::<_, changegate_classify::ClassifyError>((c, commits, files))
        })
    })
    .await
    .map_err(ApiError::internal)?;
    let (c, commits, files) = read.map_err(|e| {
        use changegate_classify::ClassifyError as E;
        if matches!(e, E::NotARepo { .. } | E::OutsideRoot { .. }) {
            return crate::error::classify_failed(&e, &root, repository);
        }
        let mut msg = e.to_string();
        for p in [Some(path.clone()), std::fs::canonicalize(&path).ok()]
            .into_iter()
            .flatten()
        {
            msg = msg.replace(&p.display().to_string(), repository);
        }
        if matches!(at, Located::Mirror { .. }) && !rel_shown.is_empty() {
            msg = msg.replace(&rel_shown, repository);
        }
        ApiError::new(
            ErrorCode::ClassifyFailed,
            crate::error::redact_root(&msg, &root),
        )
        .at(location)
    })?;
    Ok(Observed {
        classification: crate::classified_change(&c),
        commits,
        files,
    })
}

/// A failed mirror fetch as the API answers it: a 502 naming the remote.
fn fetch_error(e: &crate::mirror::FetchError) -> ApiError {
    use crate::mirror::FetchError as F;
    let code = match e {
        F::Unreachable { .. } => ErrorCode::RemoteUnreachable,
        F::Auth { .. } => ErrorCode::RemoteAuthFailed,
        F::Failed { .. } => ErrorCode::RemoteFetchFailed,
    };
    ApiError::new(code, e.to_string()).at("body `repository`")
}

/// The person a git identity names: the person an alias maps its e-mail (or else its name) to;
/// unmapped, the identity as it is (its e-mail, lowercase, or its name), so separation of duties
/// still sees it and an alias added later still maps it. `None` for an empty identity.
pub fn person_of(world: &WorldState, name: &str, email: &str) -> Option<Person> {
    let (name, email) = (name.trim(), email.trim());
    for key in [email, name] {
        if !key.is_empty() && world.aliases.contains_key(&key.to_lowercase()) {
            return Some(canonical(world, key));
        }
    }
    [email, name]
        .into_iter()
        .find(|k| !k.is_empty())
        .map(str::to_lowercase)
}

/// The people of these commits: (authors and committers, `Co-authored-by` co-authors), each once,
/// in commit order.
pub fn people(world: &WorldState, commits: &[CommitPeople]) -> (Vec<Person>, Vec<Person>) {
    let (mut authors, mut co_authors) = (Vec::new(), Vec::new());
    for c in commits.iter().rev() {
        for id in [&c.author, &c.committer] {
            if let Some(p) = person_of(world, &id.name, &id.email) {
                add(&mut authors, p);
            }
        }
        for co in parse_co_authors(&c.message) {
            if let Some(p) = person_of(world, &co.name, &co.email) {
                add(&mut co_authors, p);
            }
        }
    }
    (authors, co_authors)
}

/// Push `p` unless it is there; whether it was added.
pub fn add(v: &mut Vec<Person>, p: Person) -> bool {
    if v.contains(&p) {
        false
    } else {
        v.push(p);
        true
    }
}

/// What the server observes of a push of `commit` to change `id`: the classification and people
/// of `base..commit` when the change's repository is under its repo root (an unknown commit there
/// is `classify-failed`), and always the token that sent it.
pub async fn push(
    s: &AppState,
    caller: &Caller,
    id: &str,
    commit: &str,
) -> Result<PushObservation, ApiError> {
    let mut obs = PushObservation {
        classification: None,
        authors: Vec::new(),
        co_authors: Vec::new(),
        token: voucher(caller),
    };
    let Some((current, world)) = s.db.change_and_world(id).await? else {
        return Err(ApiError::not_found(format!("change {id}")));
    };
    let c = &current.value.change;
    let refs = pr_refs(c.pr_link.as_deref());
    if let Ok(at) = locate(s, &c.repository, refs) {
        let o = observe(
            s,
            &at,
            &c.repository,
            &c.base_commit,
            commit,
            "body `commit`",
        )
        .await?;
        let (authors, co_authors) = people(&world, &o.commits);
        obs.classification = Some(o.classification);
        obs.authors = authors;
        obs.co_authors = co_authors;
    }
    Ok(obs)
}

/// The refs to fetch for a pull request's change besides the branches: `refs/pull/N/head` of
/// the pull request its link names.
pub fn pr_refs(pr_link: Option<&str>) -> Vec<String> {
    pr_link
        .and_then(crate::github::PrRef::parse)
        .map(|p| vec![format!("refs/pull/{}/head", p.number)])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_identities_map_through_aliases_or_stay_as_they_are() {
        let mut world = WorldState::default();
        world.aliases.insert("bob@example.com".into(), "bob".into());
        world.aliases.insert("carl builder".into(), "carl".into());
        assert_eq!(
            person_of(&world, "Bob B", " Bob@Example.com").as_deref(),
            Some("bob")
        );
        assert_eq!(
            person_of(&world, "Carl Builder", "c@x").as_deref(),
            Some("carl")
        );
        assert_eq!(
            person_of(&world, "Dana", "Dana@Example.com").as_deref(),
            Some("dana@example.com")
        );
        assert_eq!(person_of(&world, "Eve", "").as_deref(), Some("eve"));
        assert_eq!(person_of(&world, " ", ""), None);
    }
}
