//! The smallest GitHub client the server needs: read a pull request's base and head commits,
//! author, title, link and clone URL, so `POST /api/v1/changes {"pr": "owner/repo#42"}` records
//! the change (and, with mirrors, the server fetches `refs/pull/N/head` from the clone URL and
//! classifies the commits itself: [`crate::mirror`]).
//! The token (`CHANGEGATE_GITHUB_TOKEN`) is sent only to the configured API and never logged.

use serde::Deserialize;

use crate::error::{ApiError, ErrorCode};

/// Where GitHub's REST API is.
#[derive(Clone)]
pub struct GitHub {
    /// Base URL, e.g. `https://api.github.com`.
    pub api: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("api", &self.api)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A pull request reference: owner, repository, number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRef {
    /// Owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Number.
    pub number: u64,
}

impl PrRef {
    /// Parse `owner/repo#42` or `https://github.com/owner/repo/pull/42`.
    pub fn parse(s: &str) -> Option<PrRef> {
        let name_ok = |x: &str| {
            !x.is_empty()
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && x != "."
                && x != ".."
        };
        let (owner, repo, number) = if let Some((path, n)) = s.split_once('#') {
            let (o, r) = path.split_once('/')?;
            (o, r, n)
        } else {
            let rest = s
                .strip_prefix("https://")
                .or_else(|| s.strip_prefix("http://"))?;
            let mut parts = rest.split('/').skip(1);
            let (o, r, kind, n) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            if kind != "pull" {
                return None;
            }
            (o, r, n)
        };
        let number = number.parse().ok()?;
        (name_ok(owner) && name_ok(repo)).then(|| PrRef {
            owner: owner.into(),
            repo: repo.into(),
            number,
        })
    }
}

/// What the server uses of a pull request.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    /// Title.
    pub title: String,
    /// Web link.
    pub html_url: String,
    /// Author.
    pub user: User,
    /// Base branch tip.
    pub base: Commit,
    /// Head commit.
    pub head: Commit,
}

/// A GitHub user.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// Login.
    pub login: String,
}

/// A branch tip (GitHub's `base` and `head`: `label`, `ref`, `repo`, `sha`, `user`).
#[derive(Debug, Clone, Deserialize)]
pub struct Commit {
    /// Commit SHA.
    pub sha: String,
    /// Branch name.
    #[serde(rename = "ref", default)]
    pub branch: Option<String>,
    /// The repository (`null` for the head of a deleted fork).
    #[serde(default)]
    pub repo: Option<Repo>,
}

/// A repository as a pull request names it.
#[derive(Debug, Clone, Deserialize)]
pub struct Repo {
    /// `owner/name`.
    #[serde(default)]
    pub full_name: Option<String>,
    /// HTTPS clone URL (`https://github.com/owner/name.git`).
    #[serde(default)]
    pub clone_url: Option<String>,
}

impl GitHub {
    /// Fetch a pull request.
    pub async fn pull_request(&self, pr: &PrRef) -> Result<PullRequest, ApiError> {
        let url = format!(
            "{}/repos/{}/{}/pulls/{}",
            self.api.trim_end_matches('/'),
            pr.owner,
            pr.repo,
            pr.number
        );
        let mut req = self
            .http
            .get(&url)
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "changegate");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.timeout(GITHUB_TIMEOUT).send().await.map_err(|e| {
            tracing::warn!(error = %e, api = %self.api, "GitHub API unreachable");
            ApiError::new(
                ErrorCode::GithubUnreachable,
                "GitHub's API cannot be reached right now; try again later",
            )
            .at("body `pr`")
        })?;
        let status = resp.status();
        match status.as_u16() {
            200 => resp.json::<PullRequest>().await.map_err(|e| {
                tracing::warn!(error = %e, api = %self.api, "GitHub answered an unexpected pull request body");
                github_error("GitHub answered an unexpected pull request body")
            }),
            404 => Err(ApiError::new(
                ErrorCode::PrNotFound,
                format!(
                    "pull request {}/{}#{} not found on GitHub",
                    pr.owner, pr.repo, pr.number
                ),
            )
            .at("body `pr`")),
            401 | 403 => {
                tracing::warn!(%status, api = %self.api, "GitHub refused the server's token");
                Err(github_error(format!(
                    "GitHub refused the server's token ({status})"
                )))
            }
            _ => {
                tracing::warn!(%status, api = %self.api, "GitHub answered an error");
                Err(github_error(format!("GitHub answered {status}")))
            }
        }
    }
}

/// How long the server waits for GitHub's answer before it reports GitHub unreachable.
pub const GITHUB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A 502: GitHub answered, but not with something the server can use.
fn github_error(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::GithubError, message).at("body `pr`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pr_references() {
        let want = PrRef {
            owner: "acme".into(),
            repo: "chat".into(),
            number: 42,
        };
        assert_eq!(PrRef::parse("acme/chat#42"), Some(want.clone()));
        assert_eq!(
            PrRef::parse("https://github.com/acme/chat/pull/42"),
            Some(want)
        );
        for bad in [
            "acme#42",
            "acme/chat#x",
            "https://github.com/acme/chat/issues/42",
            "../x#1",
            "acme/..#1",
        ] {
            assert_eq!(PrRef::parse(bad), None, "{bad}");
        }
    }
}
