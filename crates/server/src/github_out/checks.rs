//! Publishing a change's check run and PR comment.
//!
//! For a change linked to a pull request (`pr_link`), after every state change: decide at now,
//! render ([`super::render`]), and unless the digest of the rendered content equals the one
//! stored for the change, publish:
//!
//! - the check run `changegate` on the head commit: created (`POST …/check-runs`, `status
//!   completed` with the conclusion, the first 50 annotations) when the change has none for this
//!   head, the remaining annotations in further `PATCH`es of at most 50 each (GitHub appends
//!   them); otherwise updated in place by its stored id, without annotations (they depend on the
//!   head's commits only, and GitHub would append them again);
//! - one PR comment, found by its stored id or else by its hidden marker among the PR's comments,
//!   edited in place (`PATCH …/issues/comments/{id}`), created only when there is none.
//!
//! The ids and the digest are stored after a successful publish, so a failed one is done again
//! on the next state change. The facets' evidence comes from the server's own classification of
//! the change's commits (its repo root or mirror), never from a request body.

use changegate_gate::ChangeState;
use serde_json::{Value, json};

use super::app::{OutError, Outgoing};
use super::render::{ANNOTATIONS_PER_REQUEST, FacetEvidence, Report, Spot, marker, render};
use crate::AppState;
use crate::github::PrRef;
use crate::github_runs::repository_slug;

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Nothing configured, or the change has no pull request.
    NotApplicable,
    /// The content is what was last published.
    Unchanged,
    /// Published: the check run's and the comment's ids.
    Done {
        /// Check run id.
        check_run: i64,
        /// Comment id.
        comment: i64,
    },
}

/// The pull request of a change: `owner/name` and number.
pub fn pull_request_of(state: &ChangeState) -> Option<(String, u64)> {
    let link = state.change.pr_link.as_deref()?;
    let pr = PrRef::parse(link)?;
    let repo = format!("{}/{}", pr.owner, pr.repo);
    // Never published to a pull request of another repository than the change's (when the
    // change's repository names one: `owner/name` or a URL ending in it).
    match repository_slug(&state.change.repository) {
        Some(slug) if slug != repo.to_ascii_lowercase() => None,
        _ => Some((repo, pr.number)),
    }
}

/// The facets of the change with their evidence, from the server's own classification of
/// `base..head` (empty when the server cannot read the repository).
pub async fn evidence(state: &AppState, change: &ChangeState) -> Vec<FacetEvidence> {
    let c = &change.change;
    let refs = crate::observe::pr_refs(c.pr_link.as_deref());
    let Ok(at) = crate::observe::locate(state, &c.repository, refs) else {
        return Vec::new();
    };
    let (root, rel) = match &at {
        crate::observe::Located::Local { root, rel } => (root.clone(), rel.clone()),
        crate::observe::Located::Mirror { remote, refs } => {
            let Some(m) = state.mirrors.as_ref() else {
                return Vec::new();
            };
            let want = [c.base_commit.clone(), c.head_commit.clone()];
            match m.fetch(remote, refs, &want).await {
                Ok(name) => (m.dir().to_path_buf(), std::path::PathBuf::from(name)),
                Err(e) => {
                    tracing::warn!(error = %e, "github check run: the mirror cannot be fetched; no annotations");
                    return Vec::new();
                }
            }
        }
    };
    let policy = state.policy.clone();
    let (base, head) = (c.base_commit.clone(), c.head_commit.clone());
    let found = tokio::task::spawn_blocking(move || {
        changegate_classify::classify_repo_within(
            &root,
            &rel,
            Some(&base),
            Some(&head),
            &policy,
            None,
        )
    })
    .await;
    match found {
        Ok(Ok(cl)) => cl
            .facets
            .iter()
            .map(|f| FacetEvidence {
                kind: f.facet.kind.to_string(),
                category: f.category,
                roles: f.roles.clone(),
                details: f.facet.details.clone(),
                evidence: f
                    .facet
                    .evidence
                    .iter()
                    .map(|e| Spot {
                        path: e.path.clone(),
                        line: e.line,
                        head: matches!(e.side, changegate_classify::Side::Head),
                        snippet: e.snippet.clone(),
                    })
                    .collect(),
            })
            .collect(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, change = %c.id, "github check run: classification failed; no annotations");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, "github check run: classification task failed");
            Vec::new()
        }
    }
}

/// The report of a change now (decided at the server's clock).
pub async fn report(
    state: &AppState,
    out: &Outgoing,
    change: &ChangeState,
) -> Result<Report, OutError> {
    let world = state
        .db
        .world()
        .await
        .map_err(|e| OutError::Unreachable(format!("database: {e}")))?
        .value;
    let d = changegate_gate::decide(&state.policy, change, &world, state.now());
    let facets = evidence(state, change).await;
    Ok(render(
        change,
        &d,
        &facets,
        out.change_link(&change.change.id).as_deref(),
    ))
}

fn db_err(e: changegate_store::StoreError) -> OutError {
    OutError::Unreachable(format!("database: {e}"))
}

/// Publish the check run and the comment of `change_id` (see the module docs).
pub async fn publish(state: &AppState, change_id: &str) -> Result<Published, OutError> {
    let Some(out) = state.github_out.clone() else {
        return Ok(Published::NotApplicable);
    };
    let Some(current) = state.db.change(change_id).await.map_err(db_err)? else {
        return Ok(Published::NotApplicable);
    };
    let change = current.value;
    let Some((repo, number)) = pull_request_of(&change) else {
        return Ok(Published::NotApplicable);
    };
    let report = report(state, &out, &change).await?;
    publish_report(state, &out, change_id, &repo, number, &report).await
}

/// Publish `report` as the check run and comment of `change_id` on pull request `number` of
/// `repo` (the second half of [`publish`]; tests hand it a report of their own).
pub async fn publish_report(
    state: &AppState,
    out: &Outgoing,
    change_id: &str,
    repo: &str,
    number: u64,
    report: &Report,
) -> Result<Published, OutError> {
    let repo = repo.to_string();
    let digest = report.digest();
    let stored = state
        .db
        .github_publication(change_id)
        .await
        .map_err(db_err)?;
    if stored.as_ref().is_some_and(|p| p.digest == digest) {
        return Ok(Published::Unchanged);
    }
    let now = state.now();
    let same_head = stored
        .as_ref()
        .is_some_and(|p| p.head_sha == report.head_sha && p.check_run_id.is_some());
    let output = |annotations: Option<&[Value]>| {
        let mut o = json!({"title": report.title, "summary": report.summary, "text": report.text});
        if let Some(a) = annotations {
            o["annotations"] = json!(a);
        }
        o
    };
    let completed_at = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let check_run = if same_head {
        let id = stored
            .as_ref()
            .and_then(|p| p.check_run_id)
            .unwrap_or_default();
        let body = json!({
            "name": out.check_name,
            "status": "completed",
            "conclusion": report.conclusion,
            "completed_at": completed_at,
            "details_url": out.change_link(change_id),
            "external_id": change_id,
            "output": output(None),
        });
        out.call(
            now,
            &repo,
            None,
            reqwest::Method::PATCH,
            &format!("/repos/{repo}/check-runs/{id}"),
            Some(&strip_nulls(body)),
            "the check run update",
        )
        .await?;
        id
    } else {
        let mut batches = report.annotations.chunks(ANNOTATIONS_PER_REQUEST);
        let first = batches.next().unwrap_or(&[]);
        let body = json!({
            "name": out.check_name,
            "head_sha": report.head_sha,
            "status": "completed",
            "conclusion": report.conclusion,
            "completed_at": completed_at,
            "details_url": out.change_link(change_id),
            "external_id": change_id,
            "output": output(Some(first)),
        });
        let (_, v) = out
            .call(
                now,
                &repo,
                None,
                reqwest::Method::POST,
                &format!("/repos/{repo}/check-runs"),
                Some(&strip_nulls(body)),
                "the check run",
            )
            .await?;
        let id = v["id"]
            .as_i64()
            .ok_or_else(|| OutError::Invalid("GitHub answered a check run without an id".into()))?;
        for batch in batches {
            out.call(
                now,
                &repo,
                None,
                reqwest::Method::PATCH,
                &format!("/repos/{repo}/check-runs/{id}"),
                Some(&json!({"output": output(Some(batch))})),
                "the check run's annotations",
            )
            .await?;
        }
        id
    };
    let comment = upsert_comment(
        state,
        out,
        &repo,
        number,
        change_id,
        stored.as_ref().and_then(|p| p.comment_id),
        &report.comment,
    )
    .await?;
    state
        .db
        .save_github_publication(&changegate_store::GithubPublication {
            change_id: change_id.to_string(),
            repository: repo.clone(),
            pr_number: number as i64,
            head_sha: report.head_sha.clone(),
            check_run_id: Some(check_run),
            comment_id: Some(comment),
            digest,
            updated_at: now.to_string(),
        })
        .await
        .map_err(db_err)?;
    tracing::info!(change = %change_id, repo = %repo, pr = number, conclusion = report.conclusion, check_run, comment, "published to GitHub");
    Ok(Published::Done { check_run, comment })
}

fn strip_nulls(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
    }
    v
}

/// Edit the change's comment in place (by its stored id, else found by its marker), or create
/// it when there is none; its id.
async fn upsert_comment(
    state: &AppState,
    out: &Outgoing,
    repo: &str,
    number: u64,
    change_id: &str,
    stored: Option<i64>,
    body: &str,
) -> Result<i64, OutError> {
    let now = state.now();
    let payload = json!({ "body": body });
    let edit = |id: i64| {
        let payload = payload.clone();
        async move {
            out.call(
                now,
                repo,
                None,
                reqwest::Method::PATCH,
                &format!("/repos/{repo}/issues/comments/{id}"),
                Some(&payload),
                "the PR comment update",
            )
            .await
        }
    };
    if let Some(id) = stored {
        match edit(id).await {
            Ok(_) => return Ok(id),
            // Deleted by someone: find another or make a new one.
            Err(OutError::Status { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let mark = marker(change_id);
    for page in 1..=20 {
        let (_, v) = out
            .call(
                now,
                repo,
                None,
                reqwest::Method::GET,
                &format!("/repos/{repo}/issues/{number}/comments?per_page=100&page={page}"),
                None,
                "the PR comments",
            )
            .await?;
        let list = v.as_array().cloned().unwrap_or_default();
        if let Some(id) = list
            .iter()
            .find(|c| c["body"].as_str().is_some_and(|b| b.contains(&mark)))
            .and_then(|c| c["id"].as_i64())
        {
            edit(id).await?;
            return Ok(id);
        }
        if list.len() < 100 {
            break;
        }
    }
    let (_, v) = out
        .call(
            now,
            repo,
            None,
            reqwest::Method::POST,
            &format!("/repos/{repo}/issues/{number}/comments"),
            Some(&payload),
            "the PR comment",
        )
        .await?;
    v["id"]
        .as_i64()
        .ok_or_else(|| OutError::Invalid("GitHub answered a comment without an id".into()))
}
