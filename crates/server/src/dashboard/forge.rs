//! Links from a change's facet evidence (file and line) to the forge that hosts the repository.
//!
//! Only GitHub is known: a change's forge is `https://github.com/{owner}/{repo}` when its
//! repository is a github.com URL (`https://`, `ssh://git@`, `git@github.com:`), when its pull
//! request link is a github.com pull request, or when it names a mirror (`serve --mirror-dir`)
//! whose remote is on github.com. Anything else (a bare `owner/name` under `--repo-root`, another
//! host) has no known forge URL, and the page shows the place without a link.
//!
//! A link names the commit the evidence was read from (the head commit, or the base commit for
//! evidence on the base side, e.g. a removed line), so it shows exactly the file the classifier
//! read: `https://github.com/{owner}/{repo}/blob/{sha}/{path}#L{line}`. Each path segment is
//! percent-encoded; HTML escaping is the template's.

use changegate_gate::{ChangeRequest, EvidenceSide, FacetEvidence};

use super::pages::urlencode;

/// A GitHub repository: owner and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubRepo {
    /// Owner (user or organisation).
    pub owner: String,
    /// Repository name.
    pub name: String,
}

fn name_ok(x: &str) -> bool {
    !x.is_empty()
        && x.len() <= 100
        && x != "."
        && x != ".."
        && x.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `owner/name` from the path after `github.com` (`/owner/name(.git)(/…)`), when both are
/// GitHub names.
fn from_path(path: &str, exact: bool) -> Option<GithubRepo> {
    let mut parts = path.trim_start_matches('/').split('/');
    let owner = parts.next()?;
    let name = parts.next()?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    if exact && parts.any(|p| !p.is_empty()) {
        return None;
    }
    (name_ok(owner) && name_ok(name)).then(|| GithubRepo {
        owner: owner.to_string(),
        name: name.to_string(),
    })
}

/// The GitHub repository a repository URL names (`https://github.com/o/r(.git)`,
/// `ssh://git@github.com/o/r.git`, `git@github.com:o/r.git`); `None` for another host or a bare
/// name.
pub fn github_url(url: &str) -> Option<GithubRepo> {
    let u = url.trim();
    if let Some(rest) = u.strip_prefix("git@github.com:") {
        return from_path(rest, true);
    }
    let (scheme, rest) = u.split_once("://")?;
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "https" | "ssh" | "git"
    ) {
        return None;
    }
    let (authority, path) = rest.split_once('/')?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.eq_ignore_ascii_case("github.com")
        .then(|| from_path(path, true))
        .flatten()
}

/// The GitHub repository of a pull request link `https://github.com/o/r/pull/N`.
pub fn github_pr(link: &str) -> Option<GithubRepo> {
    let rest = link.trim().strip_prefix("https://github.com/")?;
    let mut parts = rest.split('/');
    let (owner, name, kind, number) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if kind != "pull" || number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    from_path(&format!("{owner}/{name}"), true)
}

/// The forge of a change: its repository URL, its pull request link, or the remote of the mirror
/// it names (in that order); `None` when none is on github.com.
pub fn forge_of(c: &ChangeRequest, mirrors: Option<&crate::mirror::Mirrors>) -> Option<GithubRepo> {
    github_url(&c.repository)
        .or_else(|| c.pr_link.as_deref().and_then(github_pr))
        .or_else(|| {
            let url = mirrors?.named(&c.repository)?;
            github_url(&url.to_string())
        })
}

fn commit_ok(sha: &str) -> bool {
    (4..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The link to one place of evidence at the commit it was read from; `None` when the commit is
/// not a commit id.
pub fn blob_link(repo: &GithubRepo, c: &ChangeRequest, e: &FacetEvidence) -> Option<String> {
    let sha = match e.side {
        EvidenceSide::Head => &c.head_commit,
        EvidenceSide::Base => &c.base_commit,
    };
    if !commit_ok(sha) {
        return None;
    }
    let path: Vec<String> = e.path.split('/').map(urlencode).collect();
    let mut link = format!(
        "https://github.com/{}/{}/blob/{sha}/{}",
        repo.owner,
        repo.name,
        path.join("/")
    );
    if let Some(line) = e.line {
        link.push_str(&format!("#L{line}"));
    }
    Some(link)
}

/// `path:line` (or `path`) for people.
pub fn place(e: &FacetEvidence) -> String {
    match e.line {
        Some(l) => format!("{}:{l}", e.path),
        None => e.path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(repository: &str, pr: Option<&str>) -> ChangeRequest {
        serde_json::from_value(serde_json::json!({
            "id": "CR-1", "repository": repository, "pr_link": pr,
            "base_commit": "a1b2c3d4", "head_commit": "0123456789abcdef0123456789abcdef01234567",
            "classification": {"category": 1},
        }))
        .unwrap()
    }

    fn ev(path: &str, line: Option<u32>, side: EvidenceSide) -> FacetEvidence {
        FacetEvidence {
            path: path.into(),
            line,
            side,
        }
    }

    #[test]
    fn github_repositories_are_recognised_by_url_and_pull_request_only() {
        let acme = Some(GithubRepo {
            owner: "acme".into(),
            name: "chat".into(),
        });
        for url in [
            "https://github.com/acme/chat",
            "https://github.com/acme/chat.git",
            "https://GitHub.com/acme/chat/",
            "ssh://git@github.com/acme/chat.git",
            "git@github.com:acme/chat.git",
        ] {
            assert_eq!(github_url(url), acme, "{url}");
        }
        for url in [
            "acme/chat",
            "https://gitlab.com/acme/chat",
            "https://github.com.evil.example/acme/chat",
            "https://evil.example/github.com/acme/chat",
            "https://github.com/acme",
            "https://github.com/acme/chat/tree/main",
            "https://github.com/ac%20me/chat",
            "file:///srv/github.com/acme/chat",
        ] {
            assert_eq!(github_url(url), None, "{url}");
        }
        assert_eq!(github_pr("https://github.com/acme/chat/pull/7"), acme);
        for link in [
            "https://github.com/acme/chat/issues/7",
            "https://github.com/acme/chat/pull/x",
            "http://github.com/acme/chat/pull/7",
            "https://ghe.example/acme/chat/pull/7",
        ] {
            assert_eq!(github_pr(link), None, "{link}");
        }
        // A bare name has no known forge; its pull request link gives one.
        assert_eq!(forge_of(&change("acme/chat", None), None), None);
        assert_eq!(
            forge_of(
                &change("acme/chat", Some("https://github.com/acme/chat/pull/7")),
                None
            ),
            acme
        );
    }

    #[test]
    fn links_name_the_commit_the_line_and_encode_the_path() {
        let c = change("https://github.com/acme/chat", None);
        let repo = forge_of(&c, None).unwrap();
        assert_eq!(
            blob_link(&repo, &c, &ev("src/pins.ts", Some(12), EvidenceSide::Head)).unwrap(),
            "https://github.com/acme/chat/blob/0123456789abcdef0123456789abcdef01234567/src/pins.ts#L12"
        );
        // Base-side evidence (a removed line) is read at the base commit.
        assert_eq!(
            blob_link(&repo, &c, &ev("db/schema.sql", Some(3), EvidenceSide::Base)).unwrap(),
            "https://github.com/acme/chat/blob/a1b2c3d4/db/schema.sql#L3"
        );
        // Characters that would end the path, start a query or a fragment, or break out of
        // an attribute are percent-encoded; `/` stays a separator.
        let odd = blob_link(
            &repo,
            &c,
            &ev("docs/a b/\"x\"<y>&#?.md", None, EvidenceSide::Head),
        )
        .unwrap();
        assert!(
            odd.ends_with("/docs/a%20b/%22x%22%3Cy%3E%26%23%3F.md"),
            "{odd}"
        );
        // A commit that is not a commit id gets no link.
        let mut weird = c.clone();
        weird.head_commit = "main\"><script>".into();
        assert_eq!(
            blob_link(&repo, &weird, &ev("a", Some(1), EvidenceSide::Head)),
            None
        );
        assert_eq!(
            place(&ev("a/b.rs", Some(9), EvidenceSide::Head)),
            "a/b.rs:9"
        );
        assert_eq!(place(&ev("a/b.rs", None, EvidenceSide::Head)), "a/b.rs");
    }
}
