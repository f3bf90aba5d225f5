//! Verified CI links: a person attests a CI-evidence checklist item (`evidence = "ci-run"`, the
//! seed's `tests-pass`) with a link to a GitHub Actions workflow run,
//! `https://HOST/OWNER/REPO/actions/runs/ID`, and the server looks the run up itself
//! (`GET /repos/{owner}/{repo}/actions/runs/{run_id}` on the configured API) before the
//! attestation may count. The run must be of the change's repository, on the commit attested
//! (the head), `completed` with conclusion `success`; what the server saw is recorded with the
//! attestation ([`VerifiedLink`], `"via": "verified-link"`).
//!
//! HOST is the web host of the GitHub the server talks to: `github.com` for
//! `https://api.github.com`, else the API URL's own host (GitHub Enterprise serves
//! `https://HOST/api/v3`; a test's fake serves both on one loopback address). So `serve
//! --github-api URL` configures both. Any other link is refused (`ci-link-unverifiable`), never
//! followed.

use changegate_gate::{ChangeRequest, VerifiedLink};
use serde::Deserialize;

use crate::error::{ApiError, ErrorCode};
use crate::github::{GITHUB_TIMEOUT, GitHub};

/// Where a refusal points.
const LOCATION: &str = "body `evidence`";

/// A workflow-run link, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLink {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Run id.
    pub run_id: u64,
}

fn name_ok(x: &str) -> bool {
    !x.is_empty()
        && x.len() <= 100
        && x.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && x != "."
        && x != ".."
}

/// The web host (`HOST[:PORT]`) whose run links the API at `api` can verify.
pub fn web_host(api: &str) -> String {
    let rest = api
        .strip_prefix("https://")
        .or_else(|| api.strip_prefix("http://"))
        .unwrap_or(api);
    let host = rest.split('/').next().unwrap_or_default();
    match host {
        "api.github.com" => "github.com".to_string(),
        h => h.to_ascii_lowercase(),
    }
}

impl RunLink {
    /// Parse `https://HOST/OWNER/REPO/actions/runs/ID` (optionally `/attempts/N`, a trailing
    /// slash, a query or fragment) for this web host. `http://` only on loopback hosts (tests).
    pub fn parse(link: &str, host: &str) -> Option<RunLink> {
        let (scheme_ok, rest) = match link.strip_prefix("https://") {
            Some(r) => (true, r),
            None => {
                let r = link.strip_prefix("http://")?;
                let loopback = host.starts_with("127.0.0.1") || host.starts_with("localhost");
                (loopback, r)
            }
        };
        if !scheme_ok {
            return None;
        }
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let mut parts = rest.trim_end_matches('/').split('/');
        let h = parts.next()?;
        if !h.eq_ignore_ascii_case(host) {
            return None;
        }
        let (owner, repo) = (parts.next()?, parts.next()?);
        if parts.next()? != "actions" || parts.next()? != "runs" {
            return None;
        }
        let id = parts.next()?;
        if !id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 19 {
            return None;
        }
        let run_id: u64 = id.parse().ok().filter(|&n| n > 0)?;
        match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => {}
            (Some("attempts"), Some(n), None) if n.parse::<u32>().is_ok() => {}
            _ => return None,
        }
        (name_ok(owner) && name_ok(repo)).then(|| RunLink {
            owner: owner.into(),
            repo: repo.into(),
            run_id,
        })
    }
}

/// `owner/name` of a change's repository (`owner/name`, a GitHub URL, with or without `.git`),
/// lowercased; `None` when it names no GitHub repository.
pub fn repository_slug(repository: &str) -> Option<String> {
    let r = repository.trim().trim_end_matches('/');
    let r = r.strip_suffix(".git").unwrap_or(r);
    let path = match r.split_once("://") {
        Some((_, rest)) => rest.split_once('/')?.1,
        None => match r.strip_prefix("git@") {
            Some(rest) => rest.split_once(':')?.1,
            None => r,
        },
    };
    let mut parts = path.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && name_ok(owner) && name_ok(name))
        .then(|| format!("{owner}/{name}").to_ascii_lowercase())
}

/// The fields of GitHub's workflow-run object the server uses.
#[derive(Debug, Deserialize)]
struct WorkflowRun {
    id: u64,
    head_sha: String,
    /// `queued`, `in_progress`, `completed`, … (nullable in GitHub's schema).
    status: Option<String>,
    /// `success`, `failure`, `cancelled`, … (null until completed).
    conclusion: Option<String>,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
}

fn refuse(code: ErrorCode, message: String) -> ApiError {
    ApiError::new(code, message).at(LOCATION)
}

/// Verify `link` as a successful run of `commit` in `change`'s repository; what the server saw.
pub async fn verify_run(
    gh: &GitHub,
    link: &str,
    change: &ChangeRequest,
    commit: &str,
) -> Result<VerifiedLink, ApiError> {
    let host = web_host(&gh.api);
    let Some(run) = RunLink::parse(link, &host) else {
        return Err(refuse(
            ErrorCode::CiLinkUnverifiable,
            format!(
                "the evidence link is not a GitHub Actions workflow run the server can verify (https://{host}/OWNER/REPO/actions/runs/ID); CI evidence without one must come from an integration token"
            ),
        ));
    };
    let linked = format!("{}/{}", run.owner, run.repo).to_ascii_lowercase();
    let want = repository_slug(&change.repository);
    if want.as_deref() != Some(linked.as_str()) {
        return Err(refuse(
            ErrorCode::CiRunMismatch,
            format!(
                "the run link is for repository {linked}, the change is of {}",
                change.repository
            ),
        ));
    }
    let url = format!(
        "{}/repos/{}/{}/actions/runs/{}",
        gh.api.trim_end_matches('/'),
        run.owner,
        run.repo,
        run.run_id
    );
    let mut req = gh
        .http
        .get(&url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header("user-agent", "changegate");
    if let Some(t) = &gh.token {
        req = req.bearer_auth(t);
    }
    let resp = req.timeout(GITHUB_TIMEOUT).send().await.map_err(|e| {
        tracing::warn!(error = %e, api = %gh.api, "GitHub API unreachable (workflow run)");
        refuse(
            ErrorCode::GithubUnreachable,
            "GitHub's API cannot be reached right now to verify the CI run; nothing was recorded, try again later".into(),
        )
    })?;
    let status = resp.status();
    let found: WorkflowRun = match status.as_u16() {
        200 => resp.json().await.map_err(|e| {
            tracing::warn!(error = %e, api = %gh.api, "GitHub answered an unexpected workflow run body");
            refuse(
                ErrorCode::GithubError,
                "GitHub answered an unexpected workflow run body".into(),
            )
        })?,
        404 => {
            return Err(refuse(
                ErrorCode::CiRunNotFound,
                format!(
                    "GitHub knows no workflow run {} in {}/{}",
                    run.run_id, run.owner, run.repo
                ),
            ));
        }
        _ => {
            tracing::warn!(%status, api = %gh.api, "GitHub answered an error (workflow run)");
            return Err(refuse(
                ErrorCode::GithubError,
                format!("GitHub answered {status} for the workflow run"),
            ));
        }
    };
    if found.id != run.run_id || found.repository.full_name.to_ascii_lowercase() != linked {
        return Err(refuse(
            ErrorCode::CiRunMismatch,
            format!(
                "GitHub answered run {} of {} for the link to run {} of {linked}",
                found.id, found.repository.full_name, run.run_id
            ),
        ));
    }
    if found.head_sha != commit {
        return Err(refuse(
            ErrorCode::CiRunMismatch,
            format!(
                "workflow run {} ran on commit {}, the attestation is for {commit}",
                run.run_id, found.head_sha
            ),
        ));
    }
    let (st, concl) = (
        found.status.unwrap_or_default(),
        found.conclusion.unwrap_or_default(),
    );
    if st != "completed" || concl != "success" {
        return Err(refuse(
            ErrorCode::CiRunNotSuccessful,
            format!(
                "workflow run {} is {} with conclusion {}: only a completed, successful run is evidence",
                run.run_id,
                if st.is_empty() { "of no status" } else { &st },
                if concl.is_empty() { "none" } else { &concl }
            ),
        ));
    }
    Ok(VerifiedLink {
        via: VerifiedLink::VIA.into(),
        provider: "github-actions".into(),
        repository: found.repository.full_name,
        run_id: found.id,
        head_sha: found.head_sha,
        status: st,
        conclusion: concl,
        url: link.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_links() {
        let want = RunLink {
            owner: "acme".into(),
            repo: "chat".into(),
            run_id: 42,
        };
        for ok in [
            "https://github.com/acme/chat/actions/runs/42",
            "https://GitHub.com/acme/chat/actions/runs/42/",
            "https://github.com/acme/chat/actions/runs/42?check_suite_focus=true",
            "https://github.com/acme/chat/actions/runs/42/attempts/2",
        ] {
            assert_eq!(RunLink::parse(ok, "github.com"), Some(want.clone()), "{ok}");
        }
        for bad in [
            "http://github.com/acme/chat/actions/runs/42",
            "https://github.com.evil/acme/chat/actions/runs/42",
            "https://evil.example/acme/chat/actions/runs/42",
            "https://github.com/acme/chat/actions/runs/x",
            "https://github.com/acme/chat/actions/runs/0",
            "https://github.com/acme/chat/actions/runs/42/jobs/7",
            "https://github.com/acme/../actions/runs/42",
            "https://github.com/acme/chat/pull/42",
            "https://ci.example/1",
            "",
        ] {
            assert_eq!(RunLink::parse(bad, "github.com"), None, "{bad}");
        }
        assert_eq!(
            RunLink::parse(
                "http://127.0.0.1:9/acme/chat/actions/runs/42",
                "127.0.0.1:9"
            ),
            Some(want)
        );
    }

    #[test]
    fn hosts_and_repositories() {
        assert_eq!(web_host("https://api.github.com"), "github.com");
        assert_eq!(web_host("https://ghe.corp/api/v3"), "ghe.corp");
        assert_eq!(web_host("http://127.0.0.1:8123"), "127.0.0.1:8123");
        for (r, want) in [
            ("acme/chat", Some("acme/chat")),
            ("https://github.com/Acme/chat.git", Some("acme/chat")),
            ("git@github.com:acme/chat.git", Some("acme/chat")),
            ("repos/chat", Some("repos/chat")),
            ("chat", None),
            ("a/b/c", None),
        ] {
            assert_eq!(repository_slug(r).as_deref(), want, "{r}");
        }
    }
}
