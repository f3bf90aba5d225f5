//! `POST /api/v1/changes`: record a change request from its body, from a GitHub pull request
//! (`{"pr": "owner/repo#42"}`), classified and its authors read by the server under `--repo-root`
//! or from a mirror it fetches from the repository's remote (`--mirror-dir`; see
//! [`crate::mirror`]); a client's classification only from a token allowed to classify (see
//! [`create_change`]).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use changegate_audit::{AuditEvent, kinds};
use changegate_gate::ops::ChangeOp;
use changegate_gate::people::canonical;
use changegate_gate::{
    ChangeRequest, ChangeState, ClassifiedChange, Event, MaintenanceOccurrence, Observer,
    Provenance, Source,
};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::changes::{ChangeView, view};
use super::{check_id, check_new};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, JsonBody};
use crate::{AppState, observe};

/// `POST /api/v1/changes`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/changes", post(create_change))
}

/// Body of `POST /api/v1/changes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChange {
    /// A pull request (`owner/repo#42` or its URL): the server reads base, head, author, title and
    /// link from GitHub, and classifies `owner/repo` under its repo root.
    #[serde(default)]
    pub pr: Option<String>,
    /// Repository: for server-side classification a path under the repo root, or (with mirrors)
    /// a URL under an allowed remote prefix or a repository name of the mirror config.
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
    /// Authors to add to those the server reads from git and GitHub (default, when it reads
    /// none: the caller).
    #[serde(default)]
    pub authors: Vec<String>,
    /// Co-authors to add to the commits' `Co-authored-by` trailers.
    #[serde(default)]
    pub co_authors: Vec<String>,
    /// Last pusher (default: the caller). Naming someone else needs a token allowed to
    /// ([`observe::may_name_last_pusher`]): `last-pusher-not-allowed` otherwise.
    #[serde(default)]
    pub last_pusher: Option<String>,
    /// Classification (from `changegate classify --format json`), only from a token allowed to
    /// classify (`classification-not-allowed` otherwise), joined with the server's own when it
    /// can classify `repository` (a path relative to its `--repo-root`).
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
///
/// What the server observes wins over what the body says: under `--repo-root` it classifies
/// `base..head` itself and reads the commits' authors, committers and `Co-authored-by` trailers;
/// for a pull request it reads GitHub. A body classification is accepted only from a token
/// allowed to classify ([`observe::may_send_classification`]) and then joined with the server's
/// (the higher category, every facet and role); a body may add authors, never remove them; only
/// a token allowed to ([`observe::may_name_last_pusher`]) names a last pusher other than itself.
/// The change and its audit event record which input was observed and which vouched for by
/// which token.
pub async fn create_change(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<CreateChange>,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    let mut github_author = None;
    let mut refs = observe::pr_refs(body.pr_link.as_deref());
    if let Some(pr) = body.pr.clone() {
        let (author, number) = from_pull_request(&s, &mut body, &pr).await?;
        github_author = Some(author);
        refs = vec![format!("refs/pull/{number}/head")];
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
    if body.classification.is_some() && !observe::may_send_classification(&caller) {
        return Err(ApiError::new(
            ErrorCode::ClassificationNotAllowed,
            format!(
                "token {} ({}) may not send a classification: the server classifies the commits itself (a repository under its --repo-root, or `pr`); leave `classification` out",
                caller.token_id, caller.person
            ),
        )
        .at("body `classification`"));
    }
    if let Some(c) = &body.classification {
        check_evidence(c)?;
    }
    let world = s.db.world().await?.value;
    let voucher = observe::voucher(&caller);
    let last_pusher = match body.last_pusher.take() {
        None => caller.person.clone(),
        Some(p) if canonical(&world, &p) == canonical(&world, &caller.person) => p,
        Some(p) if observe::may_name_last_pusher(&caller) => p,
        Some(p) => {
            return Err(ApiError::new(
                ErrorCode::LastPusherNotAllowed,
                format!(
                    "{} may not name {p} as the last pusher: only the integration that observed the push may (leave `last_pusher` out: it is the caller)",
                    caller.person
                ),
            )
            .at("body `last_pusher`"));
        }
    };
    let mut provenance = Provenance {
        last_pusher: Source::vouched_by(&voucher),
        ..Provenance::default()
    };
    // Under the repo root, or (with mirrors) fetched from the repository's remote: the server
    // reads the commits itself. Where it cannot, only a vouched classification will do.
    let observed = match observe::locate(&s, &body.repository, refs) {
        Ok(at) => Some(
            observe::observe(
                &s,
                &at,
                &body.repository,
                &body.base_commit,
                &body.head_commit,
                "body `repository`, `base_commit`, `head_commit`",
            )
            .await?,
        ),
        Err(why) if body.classification.is_none() => return Err(why),
        Err(_) => None,
    };
    let classification = match (&observed, body.classification.take()) {
        (Some(o), vouched) => {
            provenance.classification.observe(Observer::Repository);
            match vouched {
                Some(v) => {
                    provenance.classification.vouch(&voucher);
                    o.classification.merge(&v)
                }
                None => o.classification.clone(),
            }
        }
        (None, Some(v)) => {
            provenance.classification.vouch(&voucher);
            v
        }
        (None, None) => return Err(ApiError::internal("neither observed nor vouched")),
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
    // Authors: the pull request's author (GitHub) and the commits' people (git) first; the body
    // may only add to them.
    let (mut authors, mut co_authors) = (Vec::new(), Vec::new());
    if let Some(login) = github_author {
        observe::add(&mut authors, login);
        provenance.authors.observe(Observer::Github);
    }
    if let Some(o) = &observed {
        let (a, co) = observe::people(&world, &o.commits);
        if !a.is_empty() || !co.is_empty() {
            provenance.authors.observe(Observer::Repository);
        }
        for p in a {
            observe::add(&mut authors, p);
        }
        for p in co {
            observe::add(&mut co_authors, p);
        }
    }
    let mut added = false;
    for p in body.authors {
        added |= observe::add(&mut authors, p);
    }
    for p in body.co_authors {
        added |= observe::add(&mut co_authors, p);
    }
    if authors.is_empty() {
        added |= observe::add(&mut authors, caller.person.clone());
    }
    if added {
        provenance.authors.vouch(&voucher);
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
    let request = ChangeRequest {
        id: body.id.clone().unwrap_or_else(new_id),
        repository: body.repository,
        pr_link: body.pr_link,
        ticket: body.ticket,
        title: body.title,
        base_commit: body.base_commit,
        head_commit: body.head_commit,
        authors,
        co_authors,
        last_pusher: Some(last_pusher),
        classification,
        requested_deploy_at: body.requested_deploy_at,
        deploy_duration: body.deploy_duration,
        maintenance: body.maintenance,
        provenance,
    };
    let mut state = ChangeState::new(request);
    if body.submit {
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
    let files = observed.as_ref().map(|o| observe::files_value(&o.files));
    let c = &state.change;
    let mut event = AuditEvent::new(kinds::CHANGE_CREATED, &caller.person)
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
            "authors": c.authors,
            "co_authors": c.co_authors,
            "last_pusher": c.last_pusher,
            "provenance": c.provenance,
            "token": caller.token_id,
        }));
    // The paths git lists for base..head, when the server read the commits itself.
    if let Some(f) = files {
        event = event.what("changed-files", f);
    }
    let stored =
        s.db.create_change(
            &state,
            event,
            key.as_deref().map(|k| (caller.person.as_str(), k)),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(stored))))
}

/// Fill a create request from a GitHub pull request; returns the pull request's author (as
/// GitHub reports it: observed, not claimed) and number. The repository is `owner/repo` (under
/// the repo root), or, when the server keeps mirrors and the repo root has no `owner/repo`, the
/// URL it clones the pull request from (the configured clone base, else GitHub's
/// `base.repo.clone_url`), so the server fetches `refs/pull/N/head` and classifies it itself.
async fn from_pull_request(
    s: &AppState,
    body: &mut CreateChange,
    pr: &str,
) -> Result<(String, u64), ApiError> {
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
        let name = format!("{}/{}", reference.owner, reference.repo);
        let clone = s.mirrors.as_ref().and_then(|m| {
            let from_github = p.base.repo.as_ref().and_then(|r| r.clone_url.as_deref());
            m.pr_clone_url(&reference.owner, &reference.repo, from_github)
        });
        body.repository = match clone {
            Some(url) if observe::repository_path(s, &name).is_none() => url,
            _ => name,
        };
    }
    body.base_commit = p.base.sha;
    body.head_commit = p.head.sha;
    body.pr_link.get_or_insert(p.html_url);
    if body.title.is_empty() {
        body.title = p.title;
    }
    Ok((p.user.login, reference.number))
}

/// A vouched classification's evidence: at most [`ClassifiedFacet::EVIDENCE_KEPT`] places a
/// facet, each a relative path and a line from 1 (the dashboard links them to the forge).
///
/// [`ClassifiedFacet::EVIDENCE_KEPT`]: changegate_gate::ClassifiedFacet::EVIDENCE_KEPT
pub fn check_evidence(c: &ClassifiedChange) -> Result<(), ApiError> {
    for (i, f) in c.facets.iter().enumerate() {
        if f.evidence.len() > changegate_gate::ClassifiedFacet::EVIDENCE_KEPT {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!(
                    "a facet keeps at most {} places of evidence; count the rest in `more_evidence`",
                    changegate_gate::ClassifiedFacet::EVIDENCE_KEPT
                ),
            )
            .at(format!("body `classification.facets[{i}].evidence`")));
        }
        for (j, e) in f.evidence.iter().enumerate() {
            if let Some(why) = evidence_problem(e) {
                return Err(ApiError::new(ErrorCode::InvalidBody, why)
                    .at(format!("body `classification.facets[{i}].evidence[{j}]`")));
            }
        }
    }
    Ok(())
}

/// Why a facet's evidence is unusable: a path that is not a relative file path of a repository
/// (empty, absolute, `..`, control characters, over 1024 bytes) or line 0.
pub fn evidence_problem(e: &changegate_gate::FacetEvidence) -> Option<String> {
    let p = &e.path;
    if p.is_empty() || p.len() > 1024 {
        return Some(format!(
            "`path` must be a file path of 1 to 1024 bytes ({} given)",
            p.len()
        ));
    }
    if p.starts_with('/')
        || p.split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Some(format!(
            "`path` `{p}` must be relative to the repository, without empty, `.` or `..` segments"
        ));
    }
    if p.chars().any(char::is_control) {
        return Some("`path` contains a control character".into());
    }
    if e.line == Some(0) {
        return Some("`line` counts from 1".into());
    }
    None
}
