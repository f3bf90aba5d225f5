//! Bare mirrors of remote repositories (`serve --mirror-dir DIR --mirror-config FILE`), so the
//! server classifies a change whose `repository` is a URL (or a name the config maps to one) from
//! the commits themselves, as it does under `--repo-root`.
//!
//! - **Allow-list.** Only URLs under a configured remote prefix are fetched (prefixes match whole
//!   path segments, with the same scheme, user, host and port): an API caller cannot make the
//!   server fetch an arbitrary URL. URLs are parsed strictly ([`RemoteUrl::parse`]): `https`,
//!   `http`, `ssh` or `git`; no credentials, query, fragment, percent-encoding, `.` or `..`.
//! - **Credentials** come from the config, per prefix, read from files when a fetch starts: an
//!   HTTPS token goes to git as an `http.extraHeader` through `GIT_CONFIG_*` environment variables
//!   of the git process (never its command line, never a log line or an error message), an SSH
//!   key through `GIT_SSH_COMMAND` (its path only).
//! - **git** is the `git` CLI run with tokio ([`tokio::process`]): the workspace's git2 is built
//!   without HTTPS and SSH. Its environment is pinned: no system or global config (no
//!   `insteadOf` rewriting a URL past the allow-list), no `GIT_*` variable of the server's
//!   environment, no terminal prompt, only the URL's protocol (`GIT_ALLOW_PROTOCOL`), no HTTP
//!   redirects.
//! - **Concurrency.** One fetch at a time per repository (a lock per mirror), at most
//!   `max_concurrent_fetches` at once (a semaphore), each killed after `fetch_timeout_secs`. A
//!   fetch runs as its own task: a request that gives up does not abort it, so a retry finds
//!   the commits. A fetch is skipped when the mirror already holds every commit asked for by
//!   its full id (commit ids name their content).
//! - **Directory names** are derived from the URL: a sanitized slug of its last two path
//!   segments and 16 hex digits of its SHA-256 (`org-repo-0123456789abcdef.git`): never a path
//!   separator, never a leading dot, one directory per URL.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sha2::Digest as _;

/// The mirror config file (`serve --mirror-config FILE`, TOML).
///
/// ```toml
/// max_concurrent_fetches = 4
/// fetch_timeout_secs = 120
///
/// [[remote]]
/// prefix = "https://git.example.com/acme/"
/// token_file = "/etc/changegate/git-token"   # sent as `Authorization: Bearer …`
/// # username = "x-access-token"              # with a username: `Authorization: Basic …`
///
/// [[remote]]
/// prefix = "ssh://git@git.example.com/acme/"
/// ssh_key_file = "/etc/changegate/id_ed25519"
/// known_hosts_file = "/etc/changegate/known_hosts"
///
/// [repositories]          # names a change's `repository` may use instead of the URL
/// svc = "https://git.example.com/acme/svc.git"
///
/// [github]
/// clone_base = "https://github.com/"  # clone PRs from {clone_base}{owner}/{repo}.git
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// Fetches at once across all repositories (default 4).
    #[serde(default)]
    pub max_concurrent_fetches: Option<usize>,
    /// Seconds a fetch may take before it is killed (default 120).
    #[serde(default)]
    pub fetch_timeout_secs: Option<u64>,
    /// The remotes the server may fetch from, with their credentials.
    #[serde(default, rename = "remote")]
    pub remotes: Vec<RemoteConfig>,
    /// Repository names mapped to URLs (each URL under a remote's prefix).
    #[serde(default)]
    pub repositories: BTreeMap<String, String>,
    /// Where the server clones pull requests from.
    #[serde(default)]
    pub github: GithubCloneConfig,
}

/// One remote prefix of the allow-list and its credential.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// URL prefix, e.g. `https://git.example.com/acme/` (whole path segments).
    pub prefix: String,
    /// File holding an HTTPS token (trailing whitespace ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// With `token_file`: send `Authorization: Basic base64(username:token)` instead of
    /// `Bearer token` (GitHub and GitLab want Basic for git, e.g. `x-access-token`, `oauth2`).
    #[serde(default)]
    pub username: Option<String>,
    /// SSH private key for `ssh://` prefixes.
    #[serde(default)]
    pub ssh_key_file: Option<PathBuf>,
    /// `known_hosts` for `ssh://` prefixes (host keys are checked strictly).
    #[serde(default)]
    pub known_hosts_file: Option<PathBuf>,
}

/// Where pull requests are cloned from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubCloneConfig {
    /// `{clone_base}{owner}/{repo}.git` instead of the pull request's `base.repo.clone_url`.
    #[serde(default)]
    pub clone_base: Option<String>,
}

/// A mirror config that cannot be used (reported at start; paths are the admin's own).
#[derive(Debug, thiserror::Error)]
pub enum MirrorConfigError {
    /// Not valid TOML for [`MirrorConfig`].
    #[error("mirror config: {0}")]
    Toml(String),
    /// A URL of the config is not a URL the server fetches.
    #[error("mirror config: `{url}`: {why}")]
    Url {
        /// The URL as written.
        url: String,
        /// Why.
        why: UrlError,
    },
    /// A repository name maps to a URL under no remote prefix.
    #[error("mirror config: repository `{0}` maps to a URL under no [[remote]] prefix")]
    NameNotAllowed(String),
    /// A credential that does not fit its remote or cannot be read.
    #[error("mirror config: remote `{prefix}`: {why}")]
    Credential {
        /// The remote's prefix.
        prefix: String,
        /// Why.
        why: String,
    },
    /// The mirror directory cannot be created or used.
    #[error("mirror directory {dir}: {error}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The error.
        error: std::io::Error,
    },
}

/// Why a string is not a URL the server fetches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://`, or another scheme than https, http, ssh or git.
    #[error("the scheme must be https, http, ssh or git (as scheme://host/path)")]
    Scheme,
    /// A user or password in an https, http or git URL, or a password in an ssh URL.
    #[error("credentials do not belong in the URL (the server's mirror config holds them)")]
    Credentials,
    /// The host is empty or has characters other than letters, digits, `.` and `-`.
    #[error("the host must be letters, digits, `.` and `-` (or an IPv6 address in brackets)")]
    Host,
    /// The port is not 1-65535.
    #[error("the port must be 1-65535")]
    Port,
    /// A query, fragment, percent-encoding, empty segment, `.`, `..` or other character.
    #[error(
        "the path must be segments of letters, digits and `. _ ~ + -` (no `.`, `..`, empty segments, percent-encoding, query or fragment)"
    )]
    Path,
}

/// The schemes the server fetches over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `https://`.
    Https,
    /// `http://` (e.g. a loopback server; a token goes in clear).
    Http,
    /// `ssh://`.
    Ssh,
    /// `git://` (no credentials).
    Git,
}

impl Scheme {
    /// As written in a URL and in `GIT_ALLOW_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
            Scheme::Git => "git",
        }
    }
}

/// A remote URL, parsed strictly and canonical (scheme and host lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteUrl {
    /// Scheme.
    pub scheme: Scheme,
    /// User (ssh only).
    pub user: Option<String>,
    /// Host (lowercase; an IPv6 address keeps its brackets).
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
    /// Path segments.
    pub path: Vec<String>,
}

impl RemoteUrl {
    /// Parse a repository URL (`prefix` false) or an allow-list prefix (`prefix` true: may end
    /// with `/` and have no path).
    pub fn parse(s: &str, prefix: bool) -> Result<RemoteUrl, UrlError> {
        let (scheme, rest) = s.split_once("://").ok_or(UrlError::Scheme)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            "ssh" => Scheme::Ssh,
            "git" => Scheme::Git,
            _ => return Err(UrlError::Scheme),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let user = match user {
            None => None,
            Some(u) if scheme != Scheme::Ssh || u.contains(':') => {
                return Err(UrlError::Credentials);
            }
            Some(u) => {
                let ok = !u.is_empty()
                    && !u.starts_with('-')
                    && u.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !ok {
                    return Err(UrlError::Credentials);
                }
                Some(u.to_string())
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or(UrlError::Host)?;
            if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return Err(UrlError::Host);
            }
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(UrlError::Port)?),
            };
            (format!("[{}]", addr.to_ascii_lowercase()), port)
        } else {
            let (h, p) = match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            let ok = !h.is_empty()
                && !h.starts_with(['-', '.'])
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return Err(UrlError::Host);
            }
            (h.to_ascii_lowercase(), p)
        };
        let port = match port {
            None => None,
            Some(p) => {
                let n: u16 = p
                    .parse()
                    .ok()
                    .filter(|_| p.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(UrlError::Port)?;
                if n == 0 {
                    return Err(UrlError::Port);
                }
                Some(n)
            }
        };
        let path = if prefix {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        let mut segments = Vec::new();
        if !path.is_empty() {
            for seg in path.split('/') {
                let ok = !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && !seg.starts_with('-')
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._~+-".contains(&b));
                if !ok {
                    return Err(UrlError::Path);
                }
                segments.push(seg.to_string());
            }
        }
        if !prefix && segments.is_empty() {
            return Err(UrlError::Path);
        }
        Ok(RemoteUrl {
            scheme,
            user,
            host,
            port,
            path: segments,
        })
    }

    /// Whether this URL is `prefix` or under it (same scheme, user, host and port; the prefix's
    /// path segments first). A prefix without a user matches any user.
    pub fn is_under(&self, prefix: &RemoteUrl) -> bool {
        self.scheme == prefix.scheme
            && (prefix.user.is_none() || self.user == prefix.user)
            && self.host == prefix.host
            && self.port == prefix.port
            && self.path.len() >= prefix.path.len()
            && self.path.iter().zip(&prefix.path).all(|(a, b)| a == b)
    }

    /// The directory name of this URL's mirror: a slug of its last two path segments and 16 hex
    /// digits of the SHA-256 of the canonical URL (`[a-z0-9._-]`, never a leading dot).
    pub fn mirror_name(&self) -> String {
        let hash = hex::encode(sha2::Sha256::digest(self.to_string().as_bytes()));
        let tail: Vec<&str> = self
            .path
            .iter()
            .rev()
            .take(2)
            .rev()
            .map(String::as_str)
            .collect();
        let joined = tail.join("-");
        let joined = joined.strip_suffix(".git").unwrap_or(&joined);
        let mut slug: String = joined
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
                _ => '-',
            })
            .take(48)
            .collect();
        slug = slug.trim_matches(['-', '_']).to_string();
        if slug.is_empty() {
            slug.push_str("repo");
        }
        format!("{slug}-{}.git", &hash[..16])
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "/{}", self.path.join("/"))
    }
}

/// How the server authenticates to a remote.
#[derive(Clone, Default)]
pub enum Credential {
    /// None (`git://`, public HTTPS).
    #[default]
    None,
    /// A token read from a file, sent as `Bearer` or, with a username, `Basic`.
    Token {
        /// The file.
        file: PathBuf,
        /// Username for Basic.
        username: Option<String>,
    },
    /// An SSH key (and known hosts).
    SshKey {
        /// Private key file.
        key: PathBuf,
        /// Known hosts file.
        known_hosts: Option<PathBuf>,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Paths are the admin's; the secret is never held here.
        match self {
            Credential::None => f.write_str("None"),
            Credential::Token { username, .. } => f
                .debug_struct("Token")
                .field("username", username)
                .finish_non_exhaustive(),
            Credential::SshKey { .. } => f.write_str("SshKey"),
        }
    }
}

/// A remote of the allow-list.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Its prefix.
    pub prefix: RemoteUrl,
    /// Its credential.
    pub credential: Credential,
}

/// A repository the server may fetch: its URL and the remote entry that allows it.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// The URL.
    pub url: RemoteUrl,
    /// The allowing remote's credential.
    pub credential: Credential,
}

/// Why a fetch failed, as the API answers it (no credentials, no server paths).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Connection refused, DNS, timeout.
    #[error("the remote {url} cannot be reached right now ({why}); try again later")]
    Unreachable {
        /// The remote.
        url: String,
        /// What happened, in a few words.
        why: String,
    },
    /// The remote refused the server's credentials (or asked for some it has none for).
    #[error(
        "the remote {url} refused the server's credentials (see the [[remote]] entry of its mirror config)"
    )]
    Auth {
        /// The remote.
        url: String,
    },
    /// The remote answered but the fetch failed.
    #[error("fetching from the remote {url} failed: {why}")]
    Failed {
        /// The remote.
        url: String,
        /// What happened, in a few words.
        why: String,
    },
}

/// The server's mirrors: a directory, an allow-list with credentials, and the fetch limits.
pub struct Mirrors {
    dir: PathBuf,
    remotes: Vec<Remote>,
    names: BTreeMap<String, RemoteUrl>,
    clone_base: Option<RemoteUrl>,
    timeout: Duration,
    permits: Arc<tokio::sync::Semaphore>,
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Mirrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirrors")
            .field("remotes", &self.remotes.len())
            .field("names", &self.names.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Mirrors {
    /// Mirrors in `dir` (created if missing) for `config` (checked: every URL parses, every
    /// name maps under a prefix, every credential fits its scheme and its files exist).
    pub fn new(dir: &Path, config: &MirrorConfig) -> Result<Mirrors, MirrorConfigError> {
        let url = |s: &str, prefix: bool| {
            RemoteUrl::parse(s, prefix).map_err(|why| MirrorConfigError::Url {
                url: s.to_string(),
                why,
            })
        };
        let mut remotes = Vec::new();
        for r in &config.remotes {
            let prefix = url(&r.prefix, true)?;
            let bad = |why: &str| MirrorConfigError::Credential {
                prefix: r.prefix.clone(),
                why: why.to_string(),
            };
            let readable = |p: &Path, what: &str| {
                std::fs::metadata(p)
                    .ok()
                    .filter(std::fs::Metadata::is_file)
                    .map(|_| ())
                    .ok_or_else(|| bad(&format!("{what} {} cannot be read", p.display())))
            };
            let credential = match (&r.token_file, &r.ssh_key_file) {
                (Some(_), Some(_)) => return Err(bad("give token_file or ssh_key_file, not both")),
                (Some(file), None) => {
                    if !matches!(prefix.scheme, Scheme::Https | Scheme::Http) {
                        return Err(bad("token_file is for https:// (or http://) remotes"));
                    }
                    readable(file, "token_file")?;
                    if let Some(u) = &r.username
                        && (u.is_empty() || u.contains(':') || u.chars().any(char::is_control))
                    {
                        return Err(bad("username must be non-empty, without `:`"));
                    }
                    Credential::Token {
                        file: file.clone(),
                        username: r.username.clone(),
                    }
                }
                (None, Some(key)) => {
                    if prefix.scheme != Scheme::Ssh {
                        return Err(bad("ssh_key_file is for ssh:// remotes"));
                    }
                    readable(key, "ssh_key_file")?;
                    for p in [Some(key), r.known_hosts_file.as_ref()]
                        .into_iter()
                        .flatten()
                    {
                        if p.to_string_lossy().contains('\'') {
                            return Err(bad("key and known_hosts paths may not contain `'`"));
                        }
                    }
                    if let Some(k) = &r.known_hosts_file {
                        readable(k, "known_hosts_file")?;
                    }
                    Credential::SshKey {
                        key: key.clone(),
                        known_hosts: r.known_hosts_file.clone(),
                    }
                }
                (None, None) => {
                    if r.username.is_some() || r.known_hosts_file.is_some() {
                        return Err(bad(
                            "username needs token_file; known_hosts_file needs ssh_key_file",
                        ));
                    }
                    Credential::None
                }
            };
            remotes.push(Remote { prefix, credential });
        }
        let mut mirrors = Mirrors {
            dir: dir.to_path_buf(),
            remotes,
            names: BTreeMap::new(),
            clone_base: None,
            timeout: Duration::from_secs(config.fetch_timeout_secs.unwrap_or(120).max(1)),
            permits: Arc::new(tokio::sync::Semaphore::new(
                config.max_concurrent_fetches.unwrap_or(4).max(1),
            )),
            locks: std::sync::Mutex::new(HashMap::new()),
        };
        for (name, u) in &config.repositories {
            let parsed = url(u, false)?;
            if mirrors.allowed(&parsed).is_none() {
                return Err(MirrorConfigError::NameNotAllowed(name.clone()));
            }
            mirrors.names.insert(name.clone(), parsed);
        }
        if let Some(base) = &config.github.clone_base {
            mirrors.clone_base = Some(url(base, true)?);
        }
        std::fs::create_dir_all(dir).map_err(|error| MirrorConfigError::Dir {
            dir: dir.to_path_buf(),
            error,
        })?;
        Ok(mirrors)
    }

    /// [`Mirrors::new`] from the text of a config file.
    pub fn from_toml(dir: &Path, text: &str) -> Result<Mirrors, MirrorConfigError> {
        let config: MirrorConfig =
            toml::from_str(text).map_err(|e| MirrorConfigError::Toml(e.to_string()))?;
        Mirrors::new(dir, &config)
    }

    /// The mirror directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The remote entry that allows `url`: the one with the longest prefix.
    pub fn allowed(&self, url: &RemoteUrl) -> Option<Allowed> {
        self.remotes
            .iter()
            .filter(|r| url.is_under(&r.prefix))
            .max_by_key(|r| r.prefix.path.len())
            .map(|r| Allowed {
                url: url.clone(),
                credential: r.credential.clone(),
            })
    }

    /// A configured repository name's URL.
    pub fn named(&self, name: &str) -> Option<&RemoteUrl> {
        self.names.get(name)
    }

    /// The URL to clone a pull request's repository from: `{clone_base}{owner}/{repo}.git` when
    /// configured, else GitHub's `clone_url`.
    pub fn pr_clone_url(&self, owner: &str, repo: &str, clone_url: Option<&str>) -> Option<String> {
        match &self.clone_base {
            Some(base) => {
                let mut u = base.clone();
                u.path.push(owner.to_string());
                u.path
                    .push(format!("{}.git", repo.strip_suffix(".git").unwrap_or(repo)));
                Some(u.to_string())
            }
            None => clone_url.map(str::to_string),
        }
    }

    fn lock_of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(key.to_string()).or_default().clone()
    }

    /// Make the mirror of `repo` hold `want` (commit ids or revisions): unless it already holds
    /// every one by its full id, fetch its branches from the remote (a failure is the error),
    /// then, while a wanted commit is missing, `refs` (e.g. `refs/pull/7/head`) and the missing
    /// ids themselves (failures tolerated). Returns the mirror's directory
    /// name (under [`Mirrors::dir`]). Runs as a task of its own (see the module docs).
    pub async fn fetch(
        self: &Arc<Self>,
        repo: &Allowed,
        refs: &[String],
        want: &[String],
    ) -> Result<String, FetchError> {
        let this = self.clone();
        let (repo, refs, want) = (repo.clone(), refs.to_vec(), want.to_vec());
        let url = repo.url.to_string();
        tokio::spawn(async move { this.fetch_now(&repo, &refs, &want).await })
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "mirror fetch task failed");
                Err(FetchError::Failed {
                    url,
                    why: "the fetch stopped unexpectedly".into(),
                })
            })
    }

    async fn fetch_now(
        &self,
        repo: &Allowed,
        refs: &[String],
        want: &[String],
    ) -> Result<String, FetchError> {
        let url = repo.url.to_string();
        let name = repo.url.mirror_name();
        let path = self.dir.join(&name);
        let lock = self.lock_of(&name);
        let _guard = lock.lock().await;
        let failed = |why: &str| FetchError::Failed {
            url: url.clone(),
            why: why.to_string(),
        };
        if !path.join("HEAD").is_file() {
            self.init(&name).await.map_err(|e| {
                tracing::error!(error = %e, mirror = %name, "cannot create a mirror");
                failed("the server cannot create its mirror")
            })?;
        }
        let ids: Vec<String> = want.iter().filter(|w| is_full_id(w)).cloned().collect();
        if ids.len() == want.len() && self.has_all(&path, &ids).await {
            tracing::debug!(mirror = %name, "mirror holds every wanted commit; no fetch");
            return Ok(name);
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| failed("the server is shutting down"))?;
        let started = std::time::Instant::now();
        self.run_fetch(repo, &path, &["+refs/heads/*:refs/heads/*".to_string()])
            .await?;
        // Commits on no branch: the extra refs (a pull request's head), then by id (servers
        // that allow it answer). Either may be refused; a commit still missing is then an
        // unknown revision when the server reads the change.
        let specs: Vec<String> = refs.iter().map(|r| format!("+{r}:{r}")).collect();
        for specs in [specs, ids.clone()] {
            if specs.is_empty() || self.has_all(&path, &ids).await {
                break;
            }
            if let Err(e) = self.run_fetch(repo, &path, &specs).await {
                tracing::info!(error = %e, mirror = %name, "fetch of extra refs refused");
            }
        }
        tracing::info!(remote = %url, mirror = %name, ms = started.elapsed().as_millis() as u64, "mirror fetched");
        Ok(name)
    }

    /// Create the bare mirror `name` (in a temporary directory renamed into place, so a crash
    /// leaves no half-made mirror).
    async fn init(&self, name: &str) -> std::io::Result<()> {
        let path = self.dir.join(name);
        if path.exists() {
            // A directory without HEAD: not a mirror we finished; start again.
            tokio::fs::remove_dir_all(&path).await?;
        }
        let tmp = self
            .dir
            .join(format!(".tmp-{name}-{}", rand::random::<u64>()));
        let out = git(&self.dir)
            .args(["init", "--bare", "-q"])
            .arg(&tmp)
            .output()
            .await?;
        if !out.status.success() {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(std::io::Error::other(format!(
                "git init failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        tokio::fs::rename(&tmp, &path).await
    }

    async fn has_all(&self, path: &Path, want: &[String]) -> bool {
        for w in want {
            let ok = git(path)
                .arg("cat-file")
                .arg("-e")
                .arg(format!("{w}^{{commit}}"))
                .output()
                .await
                .is_ok_and(|o| o.status.success());
            if !ok {
                return false;
            }
        }
        true
    }

    /// `git fetch` of `specs` from `repo` into the mirror at `path`, with its credential and the
    /// fetch timeout.
    async fn run_fetch(
        &self,
        repo: &Allowed,
        path: &Path,
        specs: &[String],
    ) -> Result<(), FetchError> {
        let url = repo.url.to_string();
        let mut cmd = git(path);
        let plan = FetchPlan::new(repo, specs, self.timeout).map_err(|e| {
            tracing::error!(remote = %url, error = %e, "cannot read the remote's credential");
            FetchError::Failed {
                url: url.clone(),
                why: "the server cannot read its credential for this remote".into(),
            }
        })?;
        cmd.args(&plan.args);
        for (k, v) in &plan.env {
            cmd.env(k, v);
        }
        cmd.stdin(std::process::Stdio::null());
        let child = cmd.output();
        let out = match tokio::time::timeout(self.timeout, child).await {
            Err(_) => {
                return Err(FetchError::Unreachable {
                    url,
                    why: format!("no answer within {}s", self.timeout.as_secs()),
                });
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot run git");
                return Err(FetchError::Failed {
                    url,
                    why: "the server cannot run git".into(),
                });
            }
            Ok(Ok(out)) => out,
        };
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = plan.redact(&stderr, &self.dir);
        tracing::warn!(remote = %url, stderr = %stderr.trim(), "git fetch failed");
        Err(classify_failure(&url, &stderr))
    }
}

/// Whether `s` is a full commit id (40 or 64 hex digits).
pub fn is_full_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A `git` command in `dir` with the pinned environment (see the module docs).
fn git(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("git");
    c.current_dir(dir).kill_on_drop(true);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            c.env_remove(k);
        }
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .env("LC_ALL", "C");
    c
}

/// The arguments and environment of one `git fetch` (separate from running it so tests check
/// that no secret is on the command line).
#[derive(Default)]
pub struct FetchPlan {
    /// Command-line arguments (no secret ever).
    pub args: Vec<String>,
    /// Environment variables (the credential, when any).
    pub env: Vec<(String, String)>,
    secrets: Vec<String>,
}

impl FetchPlan {
    /// The fetch of `specs` from `repo`. Reads the token file, if any.
    pub fn new(repo: &Allowed, specs: &[String], timeout: Duration) -> std::io::Result<FetchPlan> {
        let mut plan = FetchPlan::default();
        let mut config: Vec<(String, String)> = vec![
            ("http.followRedirects".into(), "false".into()),
            ("http.lowSpeedLimit".into(), "1000".into()),
            (
                "http.lowSpeedTime".into(),
                timeout.as_secs().max(5).to_string(),
            ),
            ("gc.autoDetach".into(), "false".into()),
            ("maintenance.autoDetach".into(), "false".into()),
            ("protocol.version".into(), "2".into()),
        ];
        match &repo.credential {
            Credential::None => {}
            Credential::Token { file, username } => {
                let token = std::fs::read_to_string(file)?.trim().to_string();
                if token.is_empty() || token.contains(['\n', '\r']) {
                    return Err(std::io::Error::other(
                        "the token file is empty or multi-line",
                    ));
                }
                let header = match username {
                    Some(u) => {
                        use base64::Engine as _;
                        let b = base64::engine::general_purpose::STANDARD
                            .encode(format!("{u}:{token}"));
                        plan.secrets.push(b.clone());
                        format!("Authorization: Basic {b}")
                    }
                    None => format!("Authorization: Bearer {token}"),
                };
                plan.secrets.push(token);
                config.push(("http.extraHeader".into(), header));
            }
            Credential::SshKey { key, known_hosts } => {
                let mut ssh = format!(
                    "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=10 -i '{}'",
                    key.display()
                );
                match known_hosts {
                    Some(k) => ssh.push_str(&format!(
                        " -o StrictHostKeyChecking=yes -o UserKnownHostsFile='{}'",
                        k.display()
                    )),
                    None => ssh.push_str(" -o StrictHostKeyChecking=yes"),
                }
                plan.env.push(("GIT_SSH_COMMAND".into(), ssh));
                plan.env.push(("GIT_SSH_VARIANT".into(), "ssh".into()));
            }
        }
        plan.env
            .push(("GIT_CONFIG_COUNT".into(), config.len().to_string()));
        for (i, (k, v)) in config.into_iter().enumerate() {
            plan.env.push((format!("GIT_CONFIG_KEY_{i}"), k));
            plan.env.push((format!("GIT_CONFIG_VALUE_{i}"), v));
        }
        plan.env
            .push(("GIT_ALLOW_PROTOCOL".into(), repo.url.scheme.as_str().into()));
        plan.args = [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-recurse-submodules",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        plan.args.push(repo.url.to_string());
        plan.args.extend(specs.iter().cloned());
        Ok(plan)
    }

    /// `text` without the secret or the mirror directory.
    fn redact(&self, text: &str, dir: &Path) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        crate::error::redact_root(&out, dir).replace("<repo-root>", "<mirror-dir>")
    }
}

/// What a failed fetch's (redacted) stderr says, as a [`FetchError`].
fn classify_failure(url: &str, stderr: &str) -> FetchError {
    let s = stderr.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    let url = url.to_string();
    if has(&[
        "repository not found",
        "no such repository",
        "not exported",
        "does not appear to be a git repository",
        "returned error: 404",
        "not found",
    ]) {
        return FetchError::Failed {
            url,
            why: "the remote does not have this repository (or does not serve it)".into(),
        };
    }
    if has(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "returned error: 401",
        "returned error: 403",
        "permission denied",
        "host key verification failed",
    ]) {
        return FetchError::Auth { url };
    }
    if has(&[
        "could not resolve",
        "connection refused",
        "unable to connect",
        "failed to connect",
        "couldn't connect",
        "timed out",
        "no route to host",
        "network is unreachable",
        "unable to look up",
        "connection reset",
        "could not read from remote",
        "the remote end hung up",
    ]) {
        return FetchError::Unreachable {
            url,
            why: "the connection failed".into(),
        };
    }
    FetchError::Failed {
        url,
        why: "git could not fetch the commits".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_strictly() {
        let u = RemoteUrl::parse("HTTPS://Git.Example.com:8443/acme/svc.git", false).unwrap();
        assert_eq!(u.to_string(), "https://git.example.com:8443/acme/svc.git");
        let s = RemoteUrl::parse("ssh://git@host/acme/svc.git", false).unwrap();
        assert_eq!(s.user.as_deref(), Some("git"));
        for (bad, why) in [
            ("file:///etc/passwd", UrlError::Scheme),
            ("ext::sh -c id", UrlError::Scheme),
            ("/srv/git/x", UrlError::Scheme),
            ("git@host:acme/svc.git", UrlError::Scheme),
            ("https://user:pw@host/x", UrlError::Credentials),
            ("https://tok@host/x", UrlError::Credentials),
            ("ssh://git:pw@host/x", UrlError::Credentials),
            ("https://-oProxyCommand=x/y", UrlError::Host),
            ("https:///x", UrlError::Host),
            ("https://host:0/x", UrlError::Port),
            ("https://host:99999/x", UrlError::Port),
            ("https://host/acme/../etc", UrlError::Path),
            ("https://host/acme/./x", UrlError::Path),
            ("https://host/acme//x", UrlError::Path),
            ("https://host/acme/%2e%2e/x", UrlError::Path),
            ("https://host/x?y=1", UrlError::Path),
            ("https://host/x#y", UrlError::Path),
            ("https://host/x y", UrlError::Path),
            ("https://host/", UrlError::Path),
            ("https://host/-x", UrlError::Path),
        ] {
            assert_eq!(RemoteUrl::parse(bad, false), Err(why), "{bad}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let p = RemoteUrl::parse("https://git.example.com/acme/", true).unwrap();
        let yes = RemoteUrl::parse("https://git.example.com/acme/svc.git", false).unwrap();
        assert!(yes.is_under(&p));
        for no in [
            "https://git.example.com/acme-evil/svc.git",
            "https://git.example.com.evil.com/acme/svc.git",
            "http://git.example.com/acme/svc.git",
            "https://git.example.com:444/acme/svc.git",
            "https://git.example.com/other/svc.git",
        ] {
            let u = RemoteUrl::parse(no, false).unwrap();
            assert!(!u.is_under(&p), "{no}");
        }
        let host = RemoteUrl::parse("git://127.0.0.1:9418", true).unwrap();
        assert!(
            RemoteUrl::parse("git://127.0.0.1:9418/a/b.git", false)
                .unwrap()
                .is_under(&host)
        );
    }

    #[test]
    fn mirror_names_are_safe_and_distinct() {
        let a = RemoteUrl::parse("https://h/acme/svc.git", false).unwrap();
        let b = RemoteUrl::parse("https://h/acme/svc", false).unwrap();
        let c = RemoteUrl::parse("https://h/..a/.svc~+.git", false).unwrap();
        let (na, nb, nc) = (a.mirror_name(), b.mirror_name(), c.mirror_name());
        assert!(na.starts_with("acme-svc-") && na.ends_with(".git"), "{na}");
        assert_ne!(na, nb);
        for n in [&na, &nb, &nc] {
            assert!(!n.starts_with('.') && !n.contains('/'), "{n}");
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)),
                "{n}"
            );
        }
    }

    #[test]
    fn the_token_is_never_on_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret-token\n").unwrap();
        for username in [None, Some("x-access-token".to_string())] {
            let repo = Allowed {
                url: RemoteUrl::parse("https://h/acme/svc.git", false).unwrap(),
                credential: Credential::Token {
                    file: file.clone(),
                    username: username.clone(),
                },
            };
            let plan = FetchPlan::new(
                &repo,
                &["+refs/heads/*:refs/heads/*".into()],
                Duration::from_secs(5),
            )
            .unwrap();
            let secret = plan.secrets[0].clone();
            assert!(
                plan.args
                    .iter()
                    .all(|a| !a.contains("s3cret") && !a.contains(&secret))
            );
            assert!(plan.env.iter().any(|(_, v)| v.contains(&secret)));
            assert_eq!(plan.redact(&format!("x {secret} y"), dir.path()), "x *** y");
            assert!(!format!("{:?}", repo.credential).contains("s3cret"));
        }
    }

    #[test]
    fn ssh_keys_go_through_git_ssh_command_with_strict_host_keys() {
        let repo = Allowed {
            url: RemoteUrl::parse("ssh://git@h/acme/svc.git", false).unwrap(),
            credential: Credential::SshKey {
                key: "/keys/id_ed25519".into(),
                known_hosts: Some("/keys/known_hosts".into()),
            },
        };
        let plan = FetchPlan::new(&repo, &[], Duration::from_secs(5)).unwrap();
        let ssh = plan
            .env
            .iter()
            .find(|(k, _)| k == "GIT_SSH_COMMAND")
            .map(|(_, v)| v.as_str())
            .unwrap();
        for part in [
            "-i '/keys/id_ed25519'",
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "UserKnownHostsFile='/keys/known_hosts'",
            "-F /dev/null",
        ] {
            assert!(ssh.contains(part), "{ssh}");
        }
        assert!(
            plan.env
                .contains(&("GIT_ALLOW_PROTOCOL".into(), "ssh".into()))
        );
        let dash = plan.args.iter().position(|a| a == "--").unwrap();
        assert_eq!(plan.args[dash + 1], "ssh://git@h/acme/svc.git");
    }

    #[test]
    fn configs_are_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k").unwrap();
        let m = Mirrors::from_toml(
            &dir.path().join("m"),
            "[[remote]]\nprefix = \"https://h/acme/\"\n[repositories]\nsvc = \"https://h/acme/svc.git\"\n",
        )
        .unwrap();
        assert!(m.named("svc").is_some() && dir.path().join("m").is_dir());
        for (text, want) in [
            ("bogus = 1", "unknown field"),
            ("[[remote]]\nprefix = \"file:///x\"", "scheme"),
            (
                "[[remote]]\nprefix = \"https://h/acme/\"\n[repositories]\nx = \"https://h/other/x.git\"",
                "under no [[remote]] prefix",
            ),
            (
                "[[remote]]\nprefix = \"git://h/\"\ntoken_file = \"/nonexistent\"",
                "token_file is for https",
            ),
            (
                "[[remote]]\nprefix = \"https://h/\"\ntoken_file = \"/nonexistent\"",
                "cannot be read",
            ),
        ] {
            let e = Mirrors::from_toml(dir.path(), text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let text = format!(
            "[[remote]]\nprefix = \"https://h/\"\nssh_key_file = \"{}\"",
            key.display()
        );
        let e = Mirrors::from_toml(dir.path(), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssh_key_file is for ssh"), "{e}");
    }

    #[test]
    fn failures_are_classified() {
        let u = "git://h/x.git";
        assert!(matches!(
            classify_failure(
                u,
                "fatal: unable to connect to 127.0.0.1:\nConnection refused"
            ),
            FetchError::Unreachable { .. }
        ));
        assert!(matches!(
            classify_failure(
                u,
                "fatal: could not read Username for 'http://h': terminal prompts disabled"
            ),
            FetchError::Auth { .. }
        ));
        assert!(matches!(
            classify_failure(
                u,
                "fatal: remote error: access denied or repository not exported: /x.git"
            ),
            FetchError::Failed { .. }
        ));
    }
}
