//! `POST /api/v1/changes`: record a change request from its body, from a GitHub pull request
//! (`{"pr": "owner/repo#42"}`), and classified by the client or, under `--repo-root`, by the server.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use changegate_audit::{AuditEvent, kinds};
use changegate_gate::ops::ChangeOp;
use changegate_gate::{ChangeRequest, ChangeState, ClassifiedChange, Event, MaintenanceOccurrence};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::changes::{ChangeView, view};
use super::{check_id, check_new};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, JsonBody};

/// `POST /api/v1/changes`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/changes", post(create_change))
}

/// Body of `POST /api/v1/changes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChange {
    /// A pull request (`owner/repo#42` or its URL): the server reads base, head, author, title and
    /// link from GitHub, and classifies `owner/repo` under its repo root unless `classification`
    /// is given.
    #[serde(default)]
    pub pr: Option<String>,
    /// Repository (URL or owner/name; for server-side classification a path under the repo root).
    #[serde(default)]
    pub repository: String,
    /// Pull request link.
    #[serde(default)]
    pub pr_link: Option<String>,
    /// Ticket.
    #[serde(default)]
    pub ticket: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Base commit (from the PR when `pr` is given).
    #[serde(default)]
    pub base_commit: String,
    /// Head commit (from the PR when `pr` is given).
    #[serde(default)]
    pub head_commit: String,
    /// Commit authors (default: the caller).
    #[serde(default)]
    pub authors: Vec<String>,
    /// Co-authors.
    #[serde(default)]
    pub co_authors: Vec<String>,
    /// Last pusher (default: the caller).
    #[serde(default)]
    pub last_pusher: Option<String>,
    /// Classification (from `changegate classify --format json`). When absent, the server
    /// classifies `repository` itself: a path relative to its `--repo-root`.
    #[serde(default)]
    pub classification: Option<ClassifiedChange>,
    /// Requested deploy time.
    #[serde(default)]
    pub requested_deploy_at: Option<Timestamp>,
    /// Deploy duration (`30m`).
    #[serde(default)]
    pub deploy_duration: Option<changegate_policy::Dur>,
    /// Maintenance occurrence for category 3.
    #[serde(default)]
    pub maintenance: MaintenanceOccurrence,
    /// Submit for review right away.
    #[serde(default)]
    pub submit: bool,
    /// Choose the id (e.g. derived from the PR); default a random `chg-…`. 1-64 characters of
    /// `A-Z a-z 0-9 . _ -`.
    #[serde(default)]
    pub id: Option<String>,
}

fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    format!("chg-{}", hex::encode(b))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 200)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidHeader,
                        "Idempotency-Key must be 1 to 200 visible ASCII characters",
                    )
                    .at("header Idempotency-Key")
                })?;
            Ok(Some(s.to_string()))
        }
    }
}

/// `POST /api/v1/changes`.
pub async fn create_change(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<CreateChange>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    if let Some(pr) = body.pr.clone() {
        from_pull_request(&s, &mut body, &pr).await?;
    }
    for (field, value) in [
        ("repository", &body.repository),
        ("base_commit", &body.base_commit),
        ("head_commit", &body.head_commit),
    ] {
        if value.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                format!("missing field `{field}` (or give `pr`)"),
            )
            .at(format!("body `{field}`")));
        }
    }
    let classification = match body.classification.clone() {
        Some(c) => c,
        None => classify_on_server(&s, &body).await?,
    };
    if s.policy.category(classification.category).is_none() {
        return Err(ApiError::new(
            ErrorCode::UnknownCategory,
            format!("no category has level {}", classification.category),
        )
        .at("body `classification.category`"));
    }
    for (i, f) in classification.facets.iter().enumerate() {
        for (j, r) in f.roles.iter().enumerate() {
            if !s.policy.roles.contains_key(r) {
                return Err(
                    ApiError::new(ErrorCode::UnknownRole, format!("unknown role `{r}`"))
                        .at(format!("body `classification.facets[{i}].roles[{j}]`")),
                );
            }
        }
    }
    if let Some(id) = &body.id {
        check_id(id, "body `id`")?;
        check_new(&s, id).await?;
    }
    let key = idempotency_key(&headers)?;
    if let Some(key) = &key
        && let Some(id) = s.db.idempotent(&caller.person, key).await?
    {
        let existing =
            s.db.change(&id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("change {id}")))?;
        return Ok((StatusCode::OK, Json(view(existing))));
    }
    let now = s.now();
    let authors = if body.authors.is_empty() {
        vec![caller.person.clone()]
    } else {
        body.authors
    };
    let request = ChangeRequest {
        id: body.id.clone().unwrap_or_else(new_id),
        repository: body.repository,
        pr_link: body.pr_link,
        ticket: body.ticket,
        title: body.title,
        base_commit: body.base_commit,
        head_commit: body.head_commit,
        authors,
        co_authors: body.co_authors,
        last_pusher: body.last_pusher.or_else(|| Some(caller.person.clone())),
        classification,
        requested_deploy_at: body.requested_deploy_at,
        deploy_duration: body.deploy_duration,
        maintenance: body.maintenance,
    };
    let mut state = ChangeState::new(request);
    if body.submit {
        let world = s.db.world().await?.value;
        changegate_gate::ops::apply(
            &s.policy,
            &mut state,
            &world,
            &ChangeOp::Transition {
                event: Event::Submit,
                by: Some(caller.person.clone()),
            },
            now,
        )?;
    }
    let c = &state.change;
    let event = AuditEvent::new(kinds::CHANGE_CREATED, &caller.person)
        .change(&c.id)
        .category(c.classification.category.to_string())
        .what("commit-sha", c.head_commit.clone())
        .why(
            "pr-link",
            c.pr_link.clone().map_or(Value::Null, Value::from),
        )
        .why("ticket", c.ticket.clone().map_or(Value::Null, Value::from))
        .details(json!({
            "repository": c.repository,
            "base_commit": c.base_commit,
            "facets": c.classification.facets,
            "required_roles": c.classification.required_roles,
            "status": state.status,
        }));
    let stored =
        s.db.create_change(
            &state,
            event,
            key.as_deref().map(|k| (caller.person.as_str(), k)),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(stored))))
}

/// Classify `body.repository` (a path under the server's repo root) between the given commits.
async fn classify_on_server(
    s: &AppState,
    body: &CreateChange,
) -> Result<ClassifiedChange, ApiError> {
    let Some(root) = s.repo_root.clone() else {
        return Err(ApiError::new(
            ErrorCode::ClassificationRequired,
            "give `classification` (from `changegate classify --format json`); this server does not classify repositories (start it with --repo-root DIR)",
        )
        .at("body `classification`"));
    };
    let rel = std::path::Path::new(&body.repository);
    let safe = !rel.is_absolute()
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    let path = root.join(rel);
    let inside = safe
        && std::fs::canonicalize(&path)
            .ok()
            .zip(std::fs::canonicalize(&root).ok())
            .is_some_and(|(p, r)| p.starts_with(r));
    if !inside {
        return Err(ApiError::new(
            ErrorCode::RepositoryOutsideRoot,
            format!(
                "`{}` is not a repository under the server's repo root",
                body.repository
            ),
        )
        .at("body `repository`"));
    }
    let policy = s.policy.clone();
    let (base, head) = (body.base_commit.clone(), body.head_commit.clone());
    let (within, rel) = (root.clone(), rel.to_path_buf());
    let c = tokio::task::spawn_blocking(move || {
        changegate_classify::classify_repo_within(
            &within,
            &rel,
            Some(&base),
            Some(&head),
            &policy,
            None,
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| crate::error::classify_failed(&e, &root, &body.repository))?;
    Ok(crate::classified_change(&c))
}

/// Fill a create request from a GitHub pull request.
async fn from_pull_request(
    s: &AppState,
    body: &mut CreateChange,
    pr: &str,
) -> Result<(), ApiError> {
    let reference = crate::github::PrRef::parse(pr).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidPr,
            format!("`{pr}` is not owner/repo#NUMBER or a pull request URL"),
        )
        .at("body `pr`")
    })?;
    let gh = s.github.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::GithubNotConfigured,
            "this server has no GitHub API configured (serve --github-api)",
        )
        .at("body `pr`")
    })?;
    let p = gh.pull_request(&reference).await?;
    if body.repository.is_empty() {
        body.repository = format!("{}/{}", reference.owner, reference.repo);
    }
    body.base_commit = p.base.sha;
    body.head_commit = p.head.sha;
    body.pr_link.get_or_insert(p.html_url);
    if body.title.is_empty() {
        body.title = p.title;
    }
    if body.authors.is_empty() {
        body.authors = vec![p.user.login];
    }
    Ok(())
}
