//! `POST /api/v1/webhooks/github`: a GitHub App's (or a repository's) webhooks.
//!
//! **Receiving.** Authentic when `X-Hub-Signature-256` is `sha256=` and the hex HMAC-SHA256 of
//! the raw body under the configured secret (`serve --github-webhook-secret-file`, or
//! `CHANGEGATE_GITHUB_WEBHOOK_SECRET`), compared in constant time; otherwise 401
//! `github-signature-invalid` and nothing is stored, nothing parsed. `X-GitHub-Delivery` (the GUID
//! GitHub repeats when it redelivers) is the dedupe key: a redelivery answers 200 and is not
//! processed again. The events changegate acts on are stored (the event name and the body as
//! received) and answered 202 at once; the others (and actions it does not act on) are answered
//! 202 `ignored` and not stored; `ping` answers 200. The subject of a delivery is its pull request
//! (`owner/repo#N`), so one pull request's deliveries apply in arrival order on every replica.
//!
//! **Processing** ([`process`], called by the delivery worker, at least once). Every input comes
//! from the verified payload or from what the server reads itself; a GitHub login is a person only
//! through the policy's `[people.NAME] github` ([`changegate_policy::Policy::person_of_github`]),
//! otherwise it stays `github:LOGIN`, which holds no role. Each handler reconciles: it compares
//! what the payload says with the stored change and writes only a difference, with its audit
//! event (the delivery GUID in `details.delivery`), by compare-and-swap; a second processing finds
//! nothing to do.
//!
//! - `pull_request` `opened`, `reopened`, `ready_for_review`, `edited`: the change `gh-OWNER-REPO-N`
//!   is created (the server fetches `refs/pull/N/head` into its mirror and classifies base..head
//!   itself, authors from GitHub and from the commits) or its title, draft state and head are
//!   brought up to date. A reopened pull request whose change was cancelled gets a new change
//!   (`gh-OWNER-REPO-N.2`, …). `synchronize`: a push of the new head (`push` op, by the
//!   integration; the sender is the last pusher; approvals invalidated per policy). `closed`
//!   merged: the merge commit is recorded; not merged: the change is cancelled, with the sender as
//!   the one who cancels (the authority table: an author).
//! - `pull_request_review` `submitted` with state `approved`, and `issue_comment` `created` with
//!   `/changegate approve ROLE`: an approval by the mapped reviewer, when `[integrations.github]
//!   approvals` allows it, through the same authority check and gate validation as
//!   `POST /api/v1/changes/{id}/approvals` (role holders, separation of duties, the head commit).
//!   `dismissed`: the reviewer's approvals of the reviewed commit are withdrawn.
//!   `/changegate explain`: the decision now, in the delivery's outcome (and published by the
//!   outgoing side).
//! - `workflow_run` / `check_suite` `completed` with conclusion `success` on the change's head:
//!   the CI-evidence checklist items (`evidence = "ci-run"`) attested by the integration.
//! - `deployment_status`: the deployment's start, finish or failure recorded on the change whose
//!   head or merge commit was deployed (and audited) with environment and SHA.
//! - `deployment_protection_rule`: handed to [`crate::github_out::protection_rule_requested`].
//!
//! After every change write, [`crate::github_out::change_updated`] publishes the change.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use changegate_audit::{AuditEvent, kinds};
use changegate_gate::authority::{Actor, Authorized, authorize};
use changegate_gate::ops::{ChangeOp, PushObservation};
use changegate_gate::people::{canonical, holding};
use changegate_gate::{
    ApprovalStage, ChangeRequest, ChangeState, DeploymentRecord, Event, Observer, Person,
    Provenance, PullRequestRecord, Source, Voucher, WorldState,
};
use changegate_policy::{GithubApprovals, Policy};
use changegate_store::{Delivery, DeliverySource, StoreError};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::{invalid, parse_json};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::observe;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The event name header.
pub const EVENT_HEADER: &str = "x-github-event";
/// The delivery GUID header (the dedupe key).
pub const DELIVERY_HEADER: &str = "x-github-delivery";
/// The actor of what GitHub's deliveries record (pushes, CI evidence, deployments, merges).
pub const ACTOR: &str = "integration:github";
/// Audit kind of a recorded merge.
pub const MERGED: &str = "change.merged";
/// Audit kind of a failed deployment.
pub const DEPLOYMENT_FAILED: &str = "deployment.failed";
/// Audit kind of a run of coalesced pushes: the deliveries the newest superseded.
pub const DELIVERY_SUPERSEDED: &str = "delivery.superseded";

/// The `pull_request` actions acted on.
pub const PR_ACTIONS: &[&str] = &[
    "opened",
    "reopened",
    "ready_for_review",
    "edited",
    "synchronize",
    "closed",
];

/// How many compare-and-swap races a handler retries before the delivery is retried later.
const RACES: usize = 16;

/// `POST /api/v1/webhooks/github`.
pub async fn receive(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if s.webhooks.github_secrets.is_empty() {
        return Err(ApiError::new(
            ErrorCode::WebhookNotConfigured,
            "this server has no GitHub webhook secret (serve --github-webhook-secret-file or CHANGEGATE_GITHUB_WEBHOOK_SECRET)",
        ));
    }
    // The signature first: an unauthenticated body is not even parsed.
    let header = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    crate::signature::verify_prefixed(&s.webhooks.github_secrets, "sha256=", header, &body)
        .map_err(|e| {
            ApiError::new(ErrorCode::GithubSignatureInvalid, e.to_string())
                .at("header X-Hub-Signature-256")
        })?;
    let event = header_value(&headers, EVENT_HEADER, "X-GitHub-Event", b"_")?;
    let guid = header_value(&headers, DELIVERY_HEADER, "X-GitHub-Delivery", b"-")?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::new(ErrorCode::InvalidJson, "the body is not UTF-8").at("body"))?;
    let payload: Value = parse_json(&body)?;
    if !payload.is_object() {
        return Err(invalid("a GitHub webhook body is a JSON object", "body"));
    }
    if event == "ping" {
        return Ok((
            StatusCode::OK,
            Json(json!({ "pong": true, "zen": payload.get("zen") })),
        ));
    }
    let Some(subject) = subject(&event, &payload)? else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "ignored": true, "event": event, "action": payload.get("action") })),
        ));
    };
    let stored = format!(
        "{{\"event\":{},\"payload\":{text}}}",
        Value::String(event.clone())
    );
    super::store(&s, DeliverySource::Github, &guid, &subject, ACTOR, &stored).await
}

/// A header of 1-100 ASCII letters, digits and `extra` characters.
fn header_value(
    headers: &HeaderMap,
    name: &str,
    shown: &str,
    extra: &[u8],
) -> Result<String, ApiError> {
    let v = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = !v.is_empty()
        && v.len() <= 100
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
    if ok {
        Ok(v.to_string())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidHeader,
            format!(
                "{shown} must be 1-100 characters of letters, digits and `{}`",
                String::from_utf8_lossy(extra)
            ),
        )
        .at(format!("header {shown}")))
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut at = v;
    for p in path {
        at = at.get(p)?;
    }
    at.as_str()
}

fn number(v: &Value, path: &[&str]) -> Option<u64> {
    let mut at = v;
    for p in path {
        at = at.get(p)?;
    }
    at.as_u64()
}

/// The subject a delivery of `event` is stored under, `None` when changegate does not act on it.
pub fn subject(event: &str, p: &Value) -> Result<Option<String>, ApiError> {
    let action = text(p, &["action"]).unwrap_or("");
    let handled = match event {
        "pull_request" => PR_ACTIONS.contains(&action),
        "pull_request_review" => matches!(action, "submitted" | "dismissed"),
        "issue_comment" => {
            action == "created"
                && p.get("issue")
                    .and_then(|i| i.get("pull_request"))
                    .is_some_and(Value::is_object)
                && text(p, &["comment", "body"]).is_some_and(|b| !commands(b).is_empty())
        }
        "workflow_run" | "check_suite" => action == "completed",
        "deployment_status" => true,
        "deployment_protection_rule" => action == "requested",
        _ => false,
    };
    if !handled {
        return Ok(None);
    }
    let repo = text(p, &["repository", "full_name"])
        .filter(|r| crate::github_runs::repository_slug(r).is_some())
        .ok_or_else(|| {
            invalid(
                "the payload names no repository `owner/name`",
                "body `repository.full_name`",
            )
        })?;
    let pr = match event {
        "pull_request" => number(p, &["pull_request", "number"]).or(number(p, &["number"])),
        "pull_request_review" => number(p, &["pull_request", "number"]),
        "issue_comment" => number(p, &["issue", "number"]),
        "workflow_run" | "check_suite" => p
            .get(event)
            .and_then(|r| r.get("pull_requests"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|x| x.get("number"))
            .and_then(Value::as_u64),
        _ => None,
    };
    Ok(Some(match (event, pr) {
        (_, Some(n)) => format!("{repo}#{n}"),
        ("pull_request" | "pull_request_review" | "issue_comment", None) => {
            return Err(invalid(
                "the payload names no pull request number",
                "body `pull_request.number`",
            ));
        }
        ("deployment_status", None) => match number(p, &["deployment", "id"]) {
            Some(id) => format!("{repo}@deployment:{id}"),
            None => return Err(invalid("no deployment id", "body `deployment.id`")),
        },
        ("deployment_protection_rule", None) => String::new(),
        (_, None) => match text(p, &[event, "head_sha"]) {
            Some(sha) => format!("{repo}@{sha}"),
            None => {
                return Err(invalid("no head SHA", &format!("body `{event}.head_sha`")));
            }
        },
    }))
}

/// A `/changegate …` command of a comment or review body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/changegate approve ROLE`.
    Approve(String),
    /// `/changegate explain`.
    Explain,
    /// Anything else after `/changegate`.
    Unknown(String),
}

/// The commands of a body: each line that starts with `/changegate`.
pub fn commands(body: &str) -> Vec<Command> {
    body.lines()
        .filter_map(|l| l.trim().strip_prefix("/changegate"))
        .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
        .map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                ["approve", role] => Command::Approve(role.to_string()),
                ["explain"] => Command::Explain,
                _ => Command::Unknown(rest.trim().chars().take(80).collect()),
            }
        })
        .collect()
}

/// The changegate id of the change for pull request `number` of `repo` (its first one; a reopened
/// pull request whose change was cancelled gets `ID.2`, `ID.3`, …).
pub fn change_id(repo: &str, number: u64) -> String {
    let lower = repo.to_ascii_lowercase();
    let slug: String = lower
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = format!("gh-{slug}-{number}");
    if id.len() <= 56 {
        id
    } else {
        let h = hex::encode(sha2::Sha256::digest(lower.as_bytes()));
        format!("gh-{}-{number}", &h[..16])
    }
}

/// A GitHub user as payloads carry it.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// Login.
    pub login: String,
    /// Numeric id.
    #[serde(default)]
    pub id: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
struct Repo {
    full_name: String,
    #[serde(default)]
    clone_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct Branch {
    sha: String,
    #[serde(rename = "ref", default)]
    name: String,
    #[serde(default)]
    repo: Option<Repo>,
}

#[derive(Debug, Clone, Deserialize)]
struct Pr {
    number: u64,
    html_url: String,
    #[serde(default)]
    title: String,
    user: User,
    head: Branch,
    base: Branch,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    merged_by: Option<User>,
    #[serde(default)]
    merged_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct PrEvent {
    action: String,
    pull_request: Pr,
    repository: Repo,
    sender: User,
    #[serde(default)]
    installation: Option<Installation>,
}

#[derive(Debug, Clone, Deserialize)]
struct Stored {
    event: String,
    payload: Value,
}

/// One delivery being processed.
struct Ctx<'a> {
    s: &'a AppState,
    guid: &'a str,
    row: i64,
    /// The earlier deliveries this one supersedes ([`coalesce`]): their GUID, row, head and
    /// sender, recorded in the audit event of what this one writes.
    superseded: Vec<Value>,
}

impl Ctx<'_> {
    fn policy(&self) -> &Policy {
        &self.s.policy
    }

    fn delivery(&self) -> Value {
        json!({ "source": "github", "id": self.guid, "row": self.row })
    }

    /// The audit event of a write to `state` by `actor`.
    fn event(&self, kind: &str, actor: &str, state: &ChangeState, details: Value) -> AuditEvent {
        let c = &state.change;
        let mut d = details;
        if let Some(o) = d.as_object_mut() {
            o.insert("delivery".into(), self.delivery());
            o.insert("status".into(), json!(state.status));
        }
        let approvers: Vec<Value> = state
            .approvals
            .iter()
            .map(|a| json!({"person": a.person, "role": a.role}))
            .collect();
        AuditEvent::new(kind, actor)
            .change(&c.id)
            .category(c.classification.category.to_string())
            .what("commit-sha", c.head_commit.clone())
            .who("approvers", Value::Array(approvers))
            .why(
                "pr-link",
                c.pr_link.clone().map_or(Value::Null, Value::from),
            )
            .details(d)
    }
}

/// The ticket a pull request's title names: its first issue-tracker key (`ABC-123`: two to ten
/// capitals or digits starting with a capital, a hyphen, digits), as the PR's author wrote it
/// (vouched for by the author through GitHub's signed delivery, never observed).
pub fn ticket_in(title: &str) -> Option<String> {
    title
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| {
            let Some((key, num)) = w.split_once('-') else {
                return false;
            };
            (2..=10).contains(&key.len())
                && key.starts_with(|c: char| c.is_ascii_uppercase())
                && key
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && !num.is_empty()
                && num.len() <= 9
                && num.chars().all(|c| c.is_ascii_digit())
        })
        .map(str::to_string)
}

/// The person a GitHub user is: the policy's `[people]` entry with this login (and id, when the
/// entry gives one), else `github:LOGIN` (no person of the policy; it holds no role). And whether
/// it was mapped.
pub fn person(policy: &Policy, u: &User) -> (Person, bool) {
    match policy.person_of_github(&u.login, u.id) {
        Some(p) => (p.to_string(), true),
        None => (format!("github:{}", u.login.to_ascii_lowercase()), false),
    }
}

/// What a handler decided about the current change.
enum Step {
    /// Write this state with this event; the outcome.
    Write(Box<ChangeState>, Box<AuditEvent>, Value),
    /// Nothing to write; the outcome.
    Nothing(Value),
}

fn write(next: ChangeState, event: AuditEvent, out: Value) -> Step {
    Step::Write(Box::new(next), Box::new(event), out)
}

fn nothing(result: &str, more: Value) -> Step {
    let mut o = json!({ "result": result });
    if let (Some(a), Some(b)) = (o.as_object_mut(), more.as_object()) {
        a.extend(b.clone());
    }
    Step::Nothing(o)
}

/// Authorise `op` for `actor` (the authority table) and apply it (the gate's validation): the new
/// state and the authority, or the refusal as `code: message`.
fn apply_op(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    actor: &Actor,
    op: &ChangeOp,
    now: Timestamp,
) -> Result<(ChangeState, Authorized), String> {
    let authority =
        authorize(policy, state, world, actor, op, now).map_err(|r| format!("{}: {r}", r.code))?;
    let mut next = state.clone();
    changegate_gate::ops::apply(policy, &mut next, world, op, now)
        .map_err(|e| format!("{}: {e}", e.code()))?;
    Ok((next, authority))
}

fn integration() -> Actor {
    Actor {
        person: ACTOR.into(),
        admin: false,
        integration: true,
    }
}

fn person_actor(p: &str) -> Actor {
    Actor {
        person: p.into(),
        admin: false,
        integration: false,
    }
}

/// Load change `id` with the world, let `f` decide, write by compare-and-swap; retry lost races.
async fn update(
    ctx: &Ctx<'_>,
    id: &str,
    f: impl Fn(&ChangeState, &WorldState, Timestamp) -> Step,
) -> Result<Value, String> {
    for _ in 0..RACES {
        let Some((cur, world)) = ctx
            .s
            .db
            .change_and_world(id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(json!({ "result": "no-change", "change": id }));
        };
        match f(&cur.value, &world, ctx.s.now()) {
            Step::Nothing(mut o) => {
                o["change"] = json!(id);
                return Ok(o);
            }
            Step::Write(next, event, mut o) => {
                let stored = ctx
                    .s
                    .db
                    .update_change(id, cur.version, &next, *event)
                    .await
                    .map_err(|e| e.to_string())?;
                if stored.is_some() {
                    crate::github_out::change_updated(ctx.s, id).await;
                    o["change"] = json!(id);
                    return Ok(o);
                }
            }
        }
    }
    Err(format!("change {id} kept changing concurrently"))
}

/// [`update`] for several changes at once (a deployment or CI run of a commit several changes
/// share): load them and the world, let `f` decide each, and write every difference in one
/// transaction (each write still a compare-and-swap with its own audit event); retry the whole on
/// a lost race. One outcome per id, in order.
async fn update_all(
    ctx: &Ctx<'_>,
    ids: &[String],
    f: impl Fn(&ChangeState, &WorldState, Timestamp) -> Step,
) -> Result<Vec<Value>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    for _ in 0..RACES {
        let world = ctx.s.db.world().await.map_err(|e| e.to_string())?.value;
        let docs = ctx
            .s
            .db
            .changes_by_id(ids)
            .await
            .map_err(|e| e.to_string())?;
        let now = ctx.s.now();
        let mut results = Vec::with_capacity(ids.len());
        let mut pending: Vec<(&str, i64, Box<ChangeState>)> = Vec::new();
        let mut events = Vec::new();
        for id in ids {
            let Some(cur) = docs.iter().find(|d| d.value.change.id == *id) else {
                results.push(json!({ "result": "no-change", "change": id }));
                continue;
            };
            match f(&cur.value, &world, now) {
                Step::Nothing(mut o) => {
                    o["change"] = json!(id);
                    results.push(o);
                }
                Step::Write(next, event, mut o) => {
                    o["change"] = json!(id);
                    results.push(o);
                    pending.push((id.as_str(), cur.version, next));
                    events.push(*event);
                }
            }
        }
        if pending.is_empty() {
            return Ok(results);
        }
        let writes = pending
            .iter()
            .zip(events)
            .map(
                |((id, expected, next), event)| changegate_store::ChangeWrite {
                    id,
                    expected: *expected,
                    state: next,
                    event,
                },
            )
            .collect();
        if ctx
            .s
            .db
            .update_changes(writes)
            .await
            .map_err(|e| e.to_string())?
        {
            for (id, _, _) in &pending {
                crate::github_out::change_updated(ctx.s, id).await;
            }
            return Ok(results);
        }
    }
    Err(format!(
        "changes {} kept changing concurrently",
        ids.join(", ")
    ))
}

/// The current change of a pull request (its latest generation) and the id a new one would take.
async fn current(
    s: &AppState,
    repo: &str,
    number: u64,
) -> Result<(Option<ChangeState>, String), String> {
    let base = change_id(repo, number);
    let mut found = None;
    for generation in 1..=64 {
        let id = if generation == 1 {
            base.clone()
        } else {
            format!("{base}.{generation}")
        };
        match s.db.change(&id).await.map_err(|e| e.to_string())? {
            Some(v) => found = Some(v.value),
            None => return Ok((found, id)),
        }
    }
    Err(format!("pull request {repo}#{number} has too many changes"))
}

/// Most deliveries one coalescing takes besides the one the worker holds.
const COALESCE: i64 = 32;

/// Just enough of a stored delivery to tell a push.
#[derive(Deserialize)]
struct StoredHead {
    event: String,
    payload: PayloadHead,
}

#[derive(Deserialize)]
struct PayloadHead {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    pull_request: Option<PrHead>,
    #[serde(default)]
    sender: Option<User>,
}

#[derive(Deserialize)]
struct PrHead {
    head: BranchHead,
}

#[derive(Deserialize)]
struct BranchHead {
    sha: String,
}

fn push_of(body: &str) -> Option<PayloadHead> {
    let st: StoredHead = serde_json::from_str(body).ok()?;
    (st.event == "pull_request" && st.payload.action.as_deref() == Some("synchronize"))
        .then_some(st.payload)
}

/// Coalescing a burst of pushes: when `d` (which the worker holds) is a `pull_request`
/// `synchronize`, the pushes queued right behind it for the same pull request (its subject, with
/// nothing else between them), oldest first. The last of them is the head that wins: the worker
/// processes only it ([`process_coalesced`]: one fetch, one classification) and records `d` and
/// the ones between as superseded ([`superseded_event`]), all `done` in one transaction. `None`
/// when there is nothing to coalesce. Safe across replicas: no worker claims a delivery while an
/// older one of its subject is pending, and the completion checks each row is still pending and
/// unleased.
pub async fn coalesce(s: &AppState, d: &Delivery) -> Result<Option<Vec<Delivery>>, String> {
    if d.subject.is_empty() || push_of(&d.body).is_none() {
        return Ok(None);
    }
    let later =
        s.db.pending_after(DeliverySource::Github, &d.subject, d.row, s.now(), COALESCE)
            .await
            .map_err(|e| e.to_string())?;
    let run: Vec<Delivery> = later
        .into_iter()
        .take_while(|x| push_of(&x.body).is_some())
        .collect();
    Ok((!run.is_empty()).then_some(run))
}

/// What is recorded of a superseded delivery: its GUID, row, head and sender.
fn superseded_entry(d: &Delivery) -> Value {
    let p = push_of(&d.body);
    json!({
        "delivery": d.delivery_id,
        "row": d.row,
        "head": p.as_ref().and_then(|p| p.pull_request.as_ref()).map(|pr| pr.head.sha.clone()),
        "sender": p.as_ref().and_then(|p| p.sender.as_ref()).map(|u| u.login.clone()),
    })
}

/// Process `latest`, the newest of a run of pushes ([`coalesce`]), superseding `superseded`.
pub async fn process_coalesced(
    s: &AppState,
    latest: &Delivery,
    superseded: &[&Delivery],
) -> Result<Value, String> {
    let list = superseded.iter().map(|d| superseded_entry(d)).collect();
    let mut out = process_with(s, latest, list).await?;
    out["superseded"] = json!(superseded.iter().map(|d| d.row).collect::<Vec<_>>());
    Ok(out)
}

/// The outcome recorded on a delivery `latest` superseded.
pub fn superseded_outcome(latest: &Delivery) -> Value {
    json!({
        "event": "pull_request",
        "action": "synchronize",
        "result": "superseded",
        "by": { "id": latest.delivery_id, "row": latest.row },
    })
}

/// The audit event committed with the completion of a coalesced run: which deliveries
/// `latest` superseded (each still `done`, with [`superseded_outcome`]), and what `latest` did.
pub fn superseded_event(
    latest: &Delivery,
    superseded: &[&Delivery],
    outcome: &Value,
) -> AuditEvent {
    let mut e = AuditEvent::new(DELIVERY_SUPERSEDED, ACTOR).details(json!({
        "subject": latest.subject,
        "delivery": { "source": "github", "id": latest.delivery_id, "row": latest.row },
        "superseded": superseded.iter().map(|d| superseded_entry(d)).collect::<Vec<_>>(),
        "result": outcome.get("result"),
    }));
    if let Some(id) = outcome.get("change").and_then(Value::as_str) {
        e = e.change(id);
    }
    e
}

/// Process a stored GitHub delivery: what it did (the delivery's outcome), or why it must be
/// retried.
pub async fn process(s: &AppState, d: &Delivery) -> Result<Value, String> {
    process_with(s, d, Vec::new()).await
}

async fn process_with(s: &AppState, d: &Delivery, superseded: Vec<Value>) -> Result<Value, String> {
    let st: Stored = serde_json::from_str(&d.body)
        .map_err(|e| format!("stored GitHub delivery does not parse: {e}"))?;
    let ctx = Ctx {
        s,
        guid: &d.delivery_id,
        row: d.row,
        superseded,
    };
    let p = &st.payload;
    let out = match st.event.as_str() {
        "pull_request" => pull_request(&ctx, p).await?,
        "pull_request_review" => review(&ctx, p).await?,
        "issue_comment" => comment(&ctx, p).await?,
        "workflow_run" | "check_suite" => ci(&ctx, &st.event, p).await?,
        "deployment_status" => deployment_status(&ctx, p).await?,
        "deployment_protection_rule" => {
            crate::github_out::protection_rule_requested(s, &d.delivery_id, p).await?;
            json!({ "result": "answered" })
        }
        _ => json!({ "result": "ignored" }),
    };
    let mut o = json!({ "event": st.event, "action": p.get("action") });
    if let (Some(a), Some(b)) = (o.as_object_mut(), out.as_object()) {
        a.extend(b.clone());
    }
    Ok(o)
}

/// A payload that does not have the shape GitHub documents: done, with the reason (retrying would
/// not change it).
fn malformed(e: impl std::fmt::Display) -> Value {
    json!({ "result": "invalid-payload", "error": e.to_string() })
}

fn pr_record(e: &PrEvent, old: Option<&PullRequestRecord>) -> PullRequestRecord {
    let mut r = old.cloned().unwrap_or(PullRequestRecord {
        repository: e.repository.full_name.clone(),
        number: e.pull_request.number,
        installation_id: None,
        base_ref: String::new(),
        head_ref: String::new(),
        merge_commit: None,
        merged_at: None,
        merged_by: None,
    });
    if let Some(i) = &e.installation {
        r.installation_id = Some(i.id);
    }
    r.base_ref = e.pull_request.base.name.clone();
    r.head_ref = e.pull_request.head.name.clone();
    r
}

async fn pull_request(ctx: &Ctx<'_>, p: &Value) -> Result<Value, String> {
    let e: PrEvent = match serde_json::from_value(p.clone()) {
        Ok(e) => e,
        Err(err) => return Ok(malformed(err)),
    };
    let (cur, next_id) = current(ctx.s, &e.repository.full_name, e.pull_request.number).await?;
    let open = cur.as_ref().filter(|c| !c.status.is_terminal());
    match (e.action.as_str(), open) {
        ("closed", _) if e.pull_request.merged == Some(true) => match cur {
            Some(c) => merged(ctx, &e, &c.change.id).await,
            None => Ok(json!({ "result": "no-change" })),
        },
        ("closed", Some(c)) => {
            let id = c.change.id.clone();
            cancel(ctx, &e, &id).await
        }
        ("closed", None) => Ok(json!({ "result": "no-change" })),
        ("synchronize", Some(c)) => {
            let id = c.change.id.clone();
            push(ctx, &e, &id).await
        }
        (_, Some(c)) => {
            let id = c.change.id.clone();
            let mut out = json!({});
            if c.change.head_commit != e.pull_request.head.sha {
                out["push"] = push(ctx, &e, &id).await?;
            }
            let r = refresh(ctx, &e, &id).await?;
            if let (Some(a), Some(b)) = (out.as_object_mut(), r.as_object()) {
                a.extend(b.clone());
            }
            Ok(out)
        }
        (_, None) => create(ctx, &e, &next_id).await,
    }
}

/// Where the server reads a pull request's commits: `owner/name` under its repo root, else the
/// clone URL (the mirror config's `[github] clone_base`, else the payload's `clone_url`).
fn repository_of(s: &AppState, e: &PrEvent) -> String {
    let full = &e.repository.full_name;
    if observe::repository_path(s, full).is_some() {
        return full.clone();
    }
    let (owner, name) = full.split_once('/').unwrap_or((full, full));
    let from_github = e
        .pull_request
        .base
        .repo
        .as_ref()
        .and_then(|r| r.clone_url.as_deref())
        .or(e.repository.clone_url.as_deref());
    s.mirrors
        .as_ref()
        .and_then(|m| m.pr_clone_url(owner, name, from_github))
        .or_else(|| from_github.map(str::to_string))
        .unwrap_or_else(|| full.clone())
}

fn pr_refs(number: u64) -> Vec<String> {
    vec![format!("refs/pull/{number}/head")]
}

async fn create(ctx: &Ctx<'_>, e: &PrEvent, id: &str) -> Result<Value, String> {
    let s = ctx.s;
    let pr = &e.pull_request;
    let repository = repository_of(s, e);
    let at = match observe::locate(s, &repository, pr_refs(pr.number)) {
        Ok(at) => at,
        Err(why) => {
            return Ok(
                json!({ "result": "refused", "error": why.to_string(), "code": why.code() }),
            );
        }
    };
    let o = observe::observe(
        s,
        &at,
        &repository,
        &pr.base.sha,
        &pr.head.sha,
        "body `pull_request`",
    )
    .await
    .map_err(|e| e.to_string())?;
    let world = s.db.world().await.map_err(|e| e.to_string())?.value;
    let policy = ctx.policy();
    let (author, _) = person(policy, &pr.user);
    let (pusher, _) = person(policy, &e.sender);
    let mut provenance = Provenance::default();
    provenance.classification.observe(Observer::Repository);
    provenance.authors.observe(Observer::Github);
    provenance.last_pusher = Source {
        observed: vec![Observer::Github],
        vouched: Vec::new(),
    };
    let (mut authors, mut co_authors) = (vec![author.clone()], Vec::new());
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
    let request = ChangeRequest {
        id: id.to_string(),
        repository,
        pr_link: Some(pr.html_url.clone()),
        ticket: ticket_in(&pr.title),
        title: pr.title.clone(),
        base_commit: pr.base.sha.clone(),
        head_commit: pr.head.sha.clone(),
        authors,
        co_authors,
        last_pusher: Some(pusher),
        classification: o.classification,
        requested_deploy_at: None,
        deploy_duration: None,
        maintenance: Default::default(),
        provenance,
    };
    let mut state = ChangeState::new(request);
    state.pull_request = Some(pr_record(e, None));
    let now = s.now();
    if !pr.draft {
        let op = ChangeOp::Transition {
            event: Event::Submit,
            by: Some(author.clone()),
        };
        changegate_gate::ops::apply(policy, &mut state, &world, &op, now)
            .map_err(|e| format!("{}: {e}", e.code()))?;
    }
    let c = &state.change;
    let event = ctx
        .event(
            kinds::CHANGE_CREATED,
            ACTOR,
            &state,
            json!({
                "repository": c.repository,
                "base_commit": c.base_commit,
                "facets": c.classification.facets,
                "required_roles": c.classification.required_roles,
                "authors": c.authors,
                "co_authors": c.co_authors,
                "last_pusher": c.last_pusher,
                "provenance": c.provenance,
                "pull_request": state.pull_request,
                "github": { "author": pr.user.login, "sender": e.sender.login },
            }),
        )
        .what("changed-files", observe::files_value(&o.files))
        .why(
            "ticket",
            state.change.ticket.clone().map_or(Value::Null, Value::from),
        );
    match s.db.create_change(&state, event, None).await {
        Ok(_) => {
            crate::github_out::change_updated(s, id).await;
            Ok(json!({
                "result": "created",
                "change": id,
                "category": state.change.classification.category,
                "status": state.status,
            }))
        }
        Err(StoreError::ChangeExists(_)) => Err(format!("change {id} was created concurrently")),
        Err(e) => Err(e.to_string()),
    }
}

/// Title, draft state and the pull request record brought up to date.
async fn refresh(ctx: &Ctx<'_>, e: &PrEvent, id: &str) -> Result<Value, String> {
    let policy = ctx.policy();
    let pr = &e.pull_request;
    update(ctx, id, |state, world, now| {
        let mut next = state.clone();
        let mut changed = Vec::new();
        if !pr.title.is_empty() && next.change.title != pr.title {
            next.change.title = pr.title.clone();
            changed.push("title");
        }
        let record = pr_record(e, next.pull_request.as_ref());
        if next.pull_request.as_ref() != Some(&record) {
            next.pull_request = Some(record);
            changed.push("pull_request");
        }
        let mut authority = None;
        if next.status == changegate_gate::Status::Draft && !pr.draft {
            let op = ChangeOp::Transition {
                event: Event::Submit,
                by: Some(person(policy, &pr.user).0),
            };
            match apply_op(policy, &next, world, &integration(), &op, now) {
                Ok((n, a)) => {
                    next = n;
                    authority = Some(a);
                    changed.push("submitted");
                }
                Err(why) => return nothing("refused", json!({ "error": why })),
            }
        }
        if changed.is_empty() {
            return nothing("unchanged", json!({}));
        }
        let event = ctx.event(
            kinds::CHANGE_STATE,
            ACTOR,
            &next,
            json!({ "updated": changed, "title": next.change.title, "authority": authority }),
        );
        write(
            next,
            event,
            json!({ "result": "updated", "updated": changed }),
        )
    })
    .await
}

/// A new head: the server reads base..head itself, the sender is the last pusher.
async fn push(ctx: &Ctx<'_>, e: &PrEvent, id: &str) -> Result<Value, String> {
    let s = ctx.s;
    let head = e.pull_request.head.sha.clone();
    let Some((cur, world)) = s.db.change_and_world(id).await.map_err(|e| e.to_string())? else {
        return Ok(json!({ "result": "no-change" }));
    };
    if cur.value.change.head_commit == head {
        return Ok(json!({ "result": "unchanged", "change": id }));
    }
    let c = &cur.value.change;
    let mut observed = PushObservation {
        classification: None,
        authors: Vec::new(),
        co_authors: Vec::new(),
        token: Voucher {
            token: format!("github-delivery:{}", ctx.guid),
            person: ACTOR.into(),
        },
    };
    let mut files = None;
    if let Ok(at) = observe::locate(s, &c.repository, pr_refs(e.pull_request.number)) {
        let o = observe::observe(
            s,
            &at,
            &c.repository,
            &c.base_commit,
            &head,
            "body `pull_request.head.sha`",
        )
        .await
        .map_err(|e| e.to_string())?;
        let (a, co) = observe::people(&world, &o.commits);
        observed.classification = Some(o.classification);
        observed.authors = a;
        observed.co_authors = co;
        files = Some(o.files);
    }
    let policy = ctx.policy();
    let (by, _) = person(policy, &e.sender);
    update(ctx, id, |state, world, now| {
        if state.change.head_commit == head {
            return nothing("unchanged", json!({}));
        }
        let op = ChangeOp::Push {
            commit: head.clone(),
            by: by.clone(),
            authors: Vec::new(),
            co_authors: Vec::new(),
            observed: Some(observed.clone()),
        };
        match apply_op(policy, state, world, &integration(), &op, now) {
            Ok((mut next, authority)) => {
                next.pull_request = Some(pr_record(e, next.pull_request.as_ref()));
                let stale: Vec<Value> = next
                    .approvals
                    .iter()
                    .filter(|a| a.head_commit != head)
                    .map(|a| json!({"person": a.person, "role": a.role, "approved_commit": a.head_commit}))
                    .collect();
                let mut details = json!({ "op": op, "authority": authority, "previous_head": state.change.head_commit, "approvals_for_older_heads": stale });
                if !ctx.superseded.is_empty() {
                    details["superseded"] = json!(ctx.superseded);
                }
                let mut event = ctx.event(kinds::CHANGE_CLASSIFIED, ACTOR, &next, details);
                if let Some(f) = &files {
                    event = event.what("changed-files", observe::files_value(f));
                }
                let out = json!({
                    "result": "pushed",
                    "head": head,
                    "last_pusher": by,
                    "category": next.change.classification.category,
                });
                write(next, event, out)
            }
            Err(why) => nothing("refused", json!({ "error": why })),
        }
    })
    .await
}

async fn merged(ctx: &Ctx<'_>, e: &PrEvent, id: &str) -> Result<Value, String> {
    let policy = ctx.policy();
    let pr = &e.pull_request;
    let Some(commit) = pr.merge_commit_sha.clone() else {
        return Ok(malformed("a merged pull request without merge_commit_sha"));
    };
    let by = pr.merged_by.as_ref().map(|u| person(policy, u).0);
    let at = pr
        .merged_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok());
    update(ctx, id, |state, _world, now| {
        let mut record = pr_record(e, state.pull_request.as_ref());
        if record.merge_commit.as_deref() == Some(commit.as_str()) {
            return nothing("unchanged", json!({ "merge_commit": commit }));
        }
        record.merge_commit = Some(commit.clone());
        record.merged_at = Some(at.unwrap_or(now));
        record.merged_by = by.clone();
        let mut next = state.clone();
        next.pull_request = Some(record);
        let event = ctx.event(
            MERGED,
            ACTOR,
            &next,
            json!({ "merge_commit": commit, "merged_by": by, "merged_at": at, "base_ref": pr.base.name }),
        );
        write(next, event,
            json!({ "result": "merged", "merge_commit": commit }),
        )
    })
    .await
}

/// Closed without merging: cancelled by the sender, if the authority table lets them (an author).
async fn cancel(ctx: &Ctx<'_>, e: &PrEvent, id: &str) -> Result<Value, String> {
    let policy = ctx.policy();
    let (by, _) = person(policy, &e.sender);
    update(ctx, id, |state, world, now| {
        if state.status.is_terminal() {
            return nothing("unchanged", json!({}));
        }
        let op = ChangeOp::Transition {
            event: Event::Cancel,
            by: Some(by.clone()),
        };
        match apply_op(policy, state, world, &person_actor(&by), &op, now) {
            Ok((next, authority)) => {
                let event = ctx.event(
                    kinds::CHANGE_STATE,
                    &by,
                    &next,
                    json!({ "op": op, "authority": authority, "github": { "closed_by": e.sender.login } }),
                );
                write(next, event,
                    json!({ "result": "cancelled", "by": by }),
                )
            }
            Err(why) => nothing("refused", json!({ "error": why, "by": by })),
        }
    })
    .await
}

#[derive(Debug, Clone, Deserialize)]
struct Review {
    id: u64,
    user: User,
    #[serde(default)]
    body: Option<String>,
    state: String,
    #[serde(default)]
    commit_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Numbered {
    number: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct ReviewEvent {
    action: String,
    review: Review,
    pull_request: Numbered,
    repository: Repo,
    sender: User,
    #[serde(default)]
    installation: Option<Installation>,
}

/// The policy's GitHub-read teams (`[integrations.github] teams`) brought up to date in the world
/// before the authority of an approval is checked: each team's members read from GitHub (or its
/// cache, `team_ttl_secs`), the logins mapped to persons (`[people.NAME] github`; the others hold
/// nothing and are listed as unmapped), and, when that differs from the recorded membership,
/// written to the world as the team's, audited as [`crate::github_out::teams::TEAM_SYNCED`]
/// with the GitHub team, the logins and when they were read. `Ok(Err(why))` when the
/// membership cannot be known (no GitHub credential, a team GitHub does not show): the approval
/// is refused. `Err` (retried with backoff) when GitHub did not answer or answered 5xx, 401 or
/// a rate limit.
async fn sync_teams(
    ctx: &Ctx<'_>,
    repo: &str,
    installation: Option<u64>,
) -> Result<Result<Vec<Value>, String>, String> {
    sync_github_teams(ctx.s, repo, installation, ("delivery", ctx.delivery())).await
}

/// [`sync_teams`] for any approval path: `cause` is what the `team.synced` event records as
/// the reason for the read (`delivery`: the webhook delivery; `request`: the API request or
/// dashboard form of an approval).
pub(crate) async fn sync_github_teams(
    s: &AppState,
    repo: &str,
    installation: Option<u64>,
    cause: (&str, Value),
) -> Result<Result<Vec<Value>, String>, String> {
    use crate::github_out::teams::TEAM_SYNCED;
    let policy = &s.policy;
    let cfg = &policy.integrations.github;
    if cfg.teams.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let Some(out) = &s.github_out else {
        return Ok(Err(
            "the policy reads role holders from GitHub teams ([integrations.github] teams), but this server has no GitHub credential (serve --github-app-id or --github-checks)".into(),
        ));
    };
    let ttl = jiff::SignedDuration::from_secs(cfg.team_ttl_secs.min(i64::MAX as u64) as i64);
    let mut summary = Vec::new();
    for (name, target) in &cfg.teams {
        let now = s.now();
        let read = match out.team_members(now, repo, installation, target, ttl).await {
            Ok(t) => t,
            Err(e) if e.retryable() => return Err(format!("reading GitHub team {target}: {e}")),
            Err(e) => return Ok(Err(format!("GitHub team {target} cannot be read: {e}"))),
        };
        let mut members: Vec<Person> = Vec::new();
        let mut unmapped = Vec::new();
        for m in &read.members {
            match policy.person_of_github(&m.login, m.id) {
                Some(p) => {
                    observe::add(&mut members, p.to_string());
                }
                None => unmapped.push(m.login.clone()),
            }
        }
        let logins: Vec<&str> = read.members.iter().map(|m| m.login.as_str()).collect();
        let mut written = false;
        let mut settled = false;
        for _ in 0..RACES {
            let cur = s.db.world().await.map_err(|e| e.to_string())?;
            let stored = cur.value.teams.get(name).cloned().unwrap_or_default();
            if stored == members {
                settled = true;
                break;
            }
            let op = changegate_gate::ops::WorldOp::SetTeam {
                name: name.clone(),
                members: members.clone(),
            };
            let mut next = cur.value.clone();
            changegate_gate::ops::apply_world(policy, &mut next, &op, now)
                .map_err(|e| format!("{}: {e}", e.code()))?;
            let mut details = json!({
                "op": op,
                "previous": stored,
                "github_team": read.team,
                "logins": logins,
                "unmapped": unmapped,
                "read_at": read.read_at,
                "observed": "github",
            });
            details[cause.0] = cause.1.clone();
            let event = AuditEvent::new(TEAM_SYNCED, ACTOR).details(details);
            if s.db
                .update_world(cur.version, &next, event)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                written = true;
                settled = true;
                break;
            }
        }
        if !settled {
            return Err(format!("team {name} kept changing concurrently"));
        }
        summary.push(json!({
            "team": name,
            "github_team": read.team,
            "members": members,
            "unmapped": unmapped,
            "read_at": read.read_at,
            "updated": written,
        }));
    }
    Ok(Ok(summary))
}

/// The first role of `review_roles` (or of the change's required roles when empty) that the
/// change requires, `person` holds, and the head has no approval in yet.
fn rule_role(
    policy: &Policy,
    state: &ChangeState,
    world: &WorldState,
    person: &str,
) -> Option<String> {
    let required = changegate_gate::requirements(policy, state).ok()?.roles;
    let listed = &policy.integrations.github.review_roles;
    let head = &state.change.head_commit;
    required
        .into_iter()
        .filter(|r| listed.is_empty() || listed.contains(r))
        .find(|r| {
            holding(policy, world, state, person, r).is_some()
                && !state
                    .approvals
                    .iter()
                    .any(|a| &a.role == r && &a.head_commit == head)
        })
}

/// Approve change `id` as `person` in `role` (or the role [`rule_role`] picks), for `commit` (or
/// the head): the approvals API's authority check and the gate's validation.
async fn approve(
    ctx: &Ctx<'_>,
    id: &str,
    who: &str,
    role: Option<String>,
    commit: Option<String>,
    source: Value,
) -> Result<Value, String> {
    let policy = ctx.policy();
    update(ctx, id, |state, world, now| {
        // A review approving again what its reviewer already approved (a second delivery of it):
        // nothing to do — while the reviewer still holds that role. One who no longer does (a
        // GitHub team that dropped them) is refused below like any non-holder, not told
        // `unchanged` about an approval that has stopped counting.
        let me = canonical(world, who);
        let at = commit
            .clone()
            .unwrap_or_else(|| state.change.head_commit.clone());
        let still_held = |a: &changegate_gate::Approval| {
            canonical(world, &a.person) == me
                && a.head_commit == at
                && holding(policy, world, state, who, &a.role).is_some()
        };
        if role.is_none() && state.approvals.iter().any(still_held) {
            return nothing("unchanged", json!({ "person": who }));
        }
        let role = match role.clone().or_else(|| rule_role(policy, state, world, who)) {
            Some(r) => r,
            None => {
                return nothing(
                    "refused",
                    json!({ "error": format!("{who} holds no role the change still needs an approval in"), "person": who }),
                );
            }
        };
        if !policy.roles.contains_key(&role) {
            return nothing(
                "refused",
                json!({ "error": format!("unknown-role: unknown role `{role}`"), "person": who }),
            );
        }
        let commit = at.clone();
        if state
            .approvals
            .iter()
            .any(|a| a.role == role && still_held(a))
        {
            return nothing("unchanged", json!({ "person": who, "role": role }));
        }
        let op = ChangeOp::Approve {
            person: who.to_string(),
            role: role.clone(),
            commit: Some(commit.clone()),
            stage: ApprovalStage::Review,
        };
        match apply_op(policy, state, world, &person_actor(who), &op, now) {
            Ok((next, authority)) => {
                // How the reviewer holds the role (by name, or through a team — one read from
                // GitHub when the policy maps it), as the world said when the approval was given.
                let held = holding(policy, world, state, who, &role);
                let event = ctx.event(
                    kinds::APPROVAL_GRANTED,
                    who,
                    &next,
                    json!({ "op": op, "authority": authority, "holding": held, "github": source }),
                );
                write(next, event,
                    json!({ "result": "approved", "person": who, "role": role, "commit": commit }),
                )
            }
            Err(why) => nothing(
                "refused",
                json!({ "error": why, "person": who, "role": role }),
            ),
        }
    })
    .await
}

async fn open_change(ctx: &Ctx<'_>, repo: &str, number: u64) -> Result<Option<String>, String> {
    let (cur, _) = current(ctx.s, repo, number).await?;
    Ok(cur.filter(|c| !c.status.is_terminal()).map(|c| c.change.id))
}

async fn review(ctx: &Ctx<'_>, p: &Value) -> Result<Value, String> {
    let e: ReviewEvent = match serde_json::from_value(p.clone()) {
        Ok(e) => e,
        Err(err) => return Ok(malformed(err)),
    };
    let policy = ctx.policy();
    let Some(id) = open_change(ctx, &e.repository.full_name, e.pull_request.number).await? else {
        return Ok(json!({ "result": "no-change" }));
    };
    let (who, mapped) = person(policy, &e.review.user);
    let source =
        json!({ "review": e.review.id, "login": e.review.user.login, "sender": e.sender.login });
    if e.action == "dismissed" {
        if !mapped {
            return Ok(
                json!({ "result": "no-person", "login": e.review.user.login, "change": id }),
            );
        }
        let commit = e.review.commit_id.clone();
        return update(ctx, &id, |state, world, _now| {
            let me = canonical(world, &who);
            let gone = |a: &changegate_gate::Approval| {
                canonical(world, &a.person) == me
                    && a.stage == ApprovalStage::Review
                    && commit.as_ref().is_none_or(|c| &a.head_commit == c)
            };
            let withdrawn: Vec<Value> = state
                .approvals
                .iter()
                .filter(|&a| gone(a))
                .map(|a| json!({"person": a.person, "role": a.role, "commit": a.head_commit}))
                .collect();
            if withdrawn.is_empty() {
                return nothing("unchanged", json!({ "person": who }));
            }
            let mut next = state.clone();
            next.approvals.retain(|a| !gone(a));
            let event = ctx.event(
                kinds::APPROVAL_INVALIDATED,
                ACTOR,
                &next,
                json!({ "withdrawn": withdrawn, "reason": "review-dismissed", "github": source }),
            );
            write(
                next,
                event,
                json!({ "result": "withdrawn", "withdrawn": withdrawn }),
            )
        })
        .await;
    }
    if !e.review.state.eq_ignore_ascii_case("approved") {
        return Ok(json!({ "result": "ignored", "review_state": e.review.state, "change": id }));
    }
    let mode = policy.integrations.github.approvals;
    let named = e.review.body.as_deref().map(commands).and_then(|cs| {
        cs.into_iter().find_map(|c| match c {
            Command::Approve(r) => Some(r),
            _ => None,
        })
    });
    let allowed = match mode {
        GithubApprovals::Off => false,
        GithubApprovals::Commands => named.is_some(),
        GithubApprovals::Reviews => true,
    };
    if !allowed {
        return Ok(json!({
            "result": "ignored",
            "change": id,
            "error": "the policy does not let this review approve ([integrations.github] approvals)",
        }));
    }
    if !mapped {
        return Ok(json!({
            "result": "refused",
            "change": id,
            "error": format!("GitHub user {} is no person of the policy ([people.NAME] github)", e.review.user.login),
        }));
    }
    let installation = e.installation.as_ref().map(|i| i.id);
    let teams = match sync_teams(ctx, &e.repository.full_name, installation).await? {
        Ok(t) => t,
        Err(why) => {
            return Ok(json!({ "result": "refused", "change": id, "person": who, "error": why }));
        }
    };
    let mut out = approve(ctx, &id, &who, named, e.review.commit_id.clone(), source).await?;
    if !teams.is_empty() {
        out["github_teams"] = Value::Array(teams);
    }
    Ok(out)
}

#[derive(Debug, Clone, Deserialize)]
struct Comment {
    id: u64,
    user: User,
    body: String,
}

#[derive(Debug, Clone, Deserialize)]
struct CommentEvent {
    issue: Numbered,
    comment: Comment,
    repository: Repo,
    #[serde(default)]
    installation: Option<Installation>,
}

async fn comment(ctx: &Ctx<'_>, p: &Value) -> Result<Value, String> {
    let e: CommentEvent = match serde_json::from_value(p.clone()) {
        Ok(e) => e,
        Err(err) => return Ok(malformed(err)),
    };
    let policy = ctx.policy();
    let Some(id) = open_change(ctx, &e.repository.full_name, e.issue.number).await? else {
        return Ok(json!({ "result": "no-change" }));
    };
    let (who, mapped) = person(policy, &e.comment.user);
    let source = json!({ "comment": e.comment.id, "login": e.comment.user.login });
    let installation = e.installation.as_ref().map(|i| i.id);
    let mut teams_synced: Option<Result<Vec<Value>, String>> = None;
    let mut results = Vec::new();
    for c in commands(&e.comment.body).into_iter().take(10) {
        let r = match c {
            Command::Approve(role) => {
                if policy.integrations.github.approvals == GithubApprovals::Off {
                    json!({ "result": "ignored", "error": "the policy does not let comments approve ([integrations.github] approvals)" })
                } else if !mapped {
                    json!({ "result": "refused", "error": format!("GitHub user {} is no person of the policy ([people.NAME] github)", e.comment.user.login) })
                } else {
                    if teams_synced.is_none() {
                        teams_synced =
                            Some(sync_teams(ctx, &e.repository.full_name, installation).await?);
                    }
                    match &teams_synced {
                        Some(Err(why)) => {
                            json!({ "result": "refused", "person": who, "error": why })
                        }
                        _ => approve(ctx, &id, &who, Some(role), None, source.clone()).await?,
                    }
                }
            }
            Command::Explain => {
                let Some((cur, world)) = ctx
                    .s
                    .db
                    .change_and_world(&id)
                    .await
                    .map_err(|e| e.to_string())?
                else {
                    continue;
                };
                let d = changegate_gate::decide(policy, &cur.value, &world, ctx.s.now());
                crate::github_out::change_updated(ctx.s, &id).await;
                json!({ "result": "explained", "allowed": d.allowed, "denying": d.denying_codes() })
            }
            Command::Unknown(text) => {
                json!({ "result": "unknown-command", "command": text })
            }
        };
        results.push(r);
    }
    Ok(json!({ "result": "commands", "change": id, "commands": results }))
}

/// The changes of `repo` whose head (or, with `merged`, merge commit) is `sha`: an indexed
/// lookup by commit ([`changegate_store::ServerStore::changes_at_commit`]), never a scan of every
/// change. In id order, so several changes of one commit are updated in a stable order.
async fn changes_at(
    s: &AppState,
    repo: &str,
    sha: &str,
    merged: bool,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> =
        s.db.changes_at_commit(sha, merged)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|c| {
                c.value
                    .pull_request
                    .as_ref()
                    .is_some_and(|pr| pr.repository.eq_ignore_ascii_case(repo))
            })
            .map(|c| c.value.change.id)
            .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

async fn ci(ctx: &Ctx<'_>, event: &str, p: &Value) -> Result<Value, String> {
    let run = p.get(event).cloned().unwrap_or(Value::Null);
    let Some(repo) = text(p, &["repository", "full_name"]) else {
        return Ok(malformed("no repository.full_name"));
    };
    let Some(sha) = text(&run, &["head_sha"]).map(str::to_string) else {
        return Ok(malformed(format!("no {event}.head_sha")));
    };
    let conclusion = text(&run, &["conclusion"]).unwrap_or("").to_string();
    let status = text(&run, &["status"]).unwrap_or("").to_string();
    let link = text(&run, &["html_url"])
        .or(text(&run, &["url"]))
        .map(str::to_string);
    let run_id = number(&run, &["id"]);
    if status != "completed" || conclusion != "success" {
        return Ok(
            json!({ "result": "not-evidence", "status": status, "conclusion": conclusion, "head_sha": sha }),
        );
    }
    let numbers: Vec<u64> = run
        .get("pull_requests")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| number(x, &["number"])).collect())
        .unwrap_or_default();
    let mut ids = Vec::new();
    for n in numbers {
        if let Some(id) = open_change(ctx, repo, n).await? {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        ids = changes_at(ctx.s, repo, &sha, false).await?;
    }
    let policy = ctx.policy();
    let items: Vec<String> = policy
        .checklist
        .pre
        .keys()
        .filter(|k| changegate_gate::authority::is_ci_evidence(policy, k))
        .cloned()
        .collect();
    let results = update_all(ctx, &ids, |state, world, now| {
            if state.change.head_commit != sha {
                return nothing("not-the-head", json!({ "head_sha": sha }));
            }
            let mut next = state.clone();
            let mut attested = Vec::new();
            let mut refused = Vec::new();
            let mut authority = Vec::new();
            for item in &items {
                if next.attestations.iter().any(|a| {
                    &a.item == item && a.head_commit == sha && a.person == ACTOR
                }) {
                    continue;
                }
                let op = ChangeOp::Attest {
                    person: ACTOR.into(),
                    item: item.clone(),
                    evidence: link.clone(),
                    commit: Some(sha.clone()),
                    verified: None,
                };
                match apply_op(policy, &next, world, &integration(), &op, now) {
                    Ok((n, a)) => {
                        next = n;
                        attested.push(item.clone());
                        authority.push(a);
                    }
                    Err(why) => refused.push(json!({ "item": item, "error": why })),
                }
            }
            if attested.is_empty() {
                return nothing("unchanged", json!({ "refused": refused }));
            }
            let event = ctx.event(
                kinds::ATTESTATION,
                ACTOR,
                &next,
                json!({ "items": attested, "authority": authority, "github": { "event": event, "run": run_id, "conclusion": conclusion, "link": link } }),
            );
            write(next, event,
                json!({ "result": "attested", "items": attested, "refused": refused }),
            )
        })
        .await?;
    Ok(json!({ "result": "ci", "head_sha": sha, "changes": results }))
}

#[derive(Debug, Clone, Deserialize)]
struct Deployment {
    id: u64,
    sha: String,
    #[serde(default)]
    environment: String,
    /// The ref GitHub deployed (a tag, a branch, or the SHA): the artifact version.
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct DeploymentStatus {
    state: String,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    creator: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
struct DeploymentEvent {
    deployment_status: DeploymentStatus,
    deployment: Deployment,
    repository: Repo,
}

async fn deployment_status(ctx: &Ctx<'_>, p: &Value) -> Result<Value, String> {
    let e: DeploymentEvent = match serde_json::from_value(p.clone()) {
        Ok(e) => e,
        Err(err) => return Ok(malformed(err)),
    };
    let state = e.deployment_status.state.to_ascii_lowercase();
    let (phase, kind) = match state.as_str() {
        "queued" | "pending" | "in_progress" => ("started", kinds::DEPLOYMENT_START),
        "success" => ("finished", kinds::DEPLOYMENT_FINISH),
        "failure" | "error" => ("failed", DEPLOYMENT_FAILED),
        _ => return Ok(json!({ "result": "ignored", "state": state })),
    };
    let policy = ctx.policy();
    let environment = e
        .deployment_status
        .environment
        .clone()
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| e.deployment.environment.clone());
    let by = e
        .deployment_status
        .creator
        .as_ref()
        .map(|u| person(policy, u).0);
    let sha = e.deployment.sha.clone();
    let details = json!({
        "deployment": e.deployment.id,
        "environment": environment,
        "sha": sha,
        "state": state,
        "phase": phase,
        "by": by,
        "repository": e.repository.full_name,
    });
    // The artifact version: the ref GitHub deployed (else the commit), as GitHub's signed
    // delivery says.
    let artifact = e
        .deployment
        .git_ref
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| sha.clone());
    let ids = changes_at(ctx.s, &e.repository.full_name, &sha, true).await?;
    if ids.is_empty() {
        // No change of changegate's: the deployment is still in the audit trail.
        let mut d = details.clone();
        d["delivery"] = ctx.delivery();
        let event = AuditEvent::new(kind, ACTOR)
            .what("commit-sha", sha.clone())
            .what("artifact-version", artifact.clone())
            .outcome("result", state.clone())
            .details(d);
        ctx.s.db.record(event).await.map_err(|e| e.to_string())?;
        return Ok(json!({ "result": "recorded", "phase": phase, "change": null }));
    }
    // The error rate and latency before (started) or after (finished, failed) the deployment,
    // read by the server from its Prometheus with the guard's queries of each change's category,
    // before the one transaction that records the deployment on every change of the commit.
    let mut observed_of: std::collections::HashMap<String, Value> =
        std::collections::HashMap::new();
    for id in &ids {
        let observed = match (&ctx.s.rollouts, ctx.s.db.change(id).await) {
            (Some(rt), Ok(Some(c))) => {
                let level = changegate_gate::approval::effective_level(policy, &c.value);
                match crate::rollouts::observed::spec_for(policy, rt, None, level) {
                    Some(spec) => {
                        let when = if phase == "started" {
                            "before"
                        } else {
                            "after"
                        };
                        crate::rollouts::observed::read(rt, &spec, when, ctx.s.now()).await
                    }
                    None => Value::Null,
                }
            }
            _ => Value::Null,
        };
        observed_of.insert(id.clone(), observed);
    }
    let results = update_all(ctx, &ids, |cur, _world, now| {
        if cur
            .deployments
            .iter()
            .any(|d| d.id == e.deployment.id && d.state == state)
        {
            return nothing("unchanged", json!({}));
        }
        let started_at = cur
            .deployments
            .iter()
            .filter(|d| d.id == e.deployment.id && d.phase == "started")
            .map(|d| d.at)
            .min();
        let mut next = cur.clone();
        next.deployments.push(DeploymentRecord {
            id: e.deployment.id,
            environment: environment.clone(),
            sha: sha.clone(),
            phase: phase.into(),
            state: state.clone(),
            at: now,
            by: by.clone(),
        });
        let mut d = details.clone();
        d["observed"] = observed_of
            .get(&cur.change.id)
            .cloned()
            .unwrap_or(Value::Null);
        let mut event = ctx
            .event(kind, ACTOR, &next, d)
            .what("commit-sha", sha.clone())
            .what("artifact-version", artifact.clone())
            .who(
                "deployer",
                by.clone().map_or(Value::from(ACTOR), Value::from),
            )
            .outcome("result", state.clone());
        event = crate::rollouts::observed::with_why(event, &next);
        if phase == "started" {
            event = event.when("deployed-at-utc", now.to_string());
        } else if let Some(t) = started_at {
            event = event.when("duration", now.duration_since(t).as_secs().max(0));
        }
        write(
            next,
            event,
            json!({ "result": "recorded", "phase": phase, "environment": environment }),
        )
    })
    .await?;
    Ok(json!({ "result": "deployment", "changes": results }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_key_is_read_from_the_title() {
        assert_eq!(
            ticket_in("CHAT-42: bump express").as_deref(),
            Some("CHAT-42")
        );
        assert_eq!(ticket_in("fix (OPS2-7)").as_deref(), Some("OPS2-7"));
        assert_eq!(ticket_in("Update the README"), None);
        assert_eq!(ticket_in("utf-8 and x-1 are no keys"), None);
        assert_eq!(ticket_in("A-1 too short"), None);
    }

    #[test]
    fn commands_are_read_line_by_line() {
        assert_eq!(
            commands(
                "LGTM\n/changegate approve backend-lead\n  /changegate explain\n/changegateX no"
            ),
            vec![Command::Approve("backend-lead".into()), Command::Explain]
        );
        assert_eq!(
            commands("/changegate approve"),
            vec![Command::Unknown("approve".into())]
        );
        assert!(commands("please /changegate approve x").is_empty());
    }

    #[test]
    fn change_ids_are_safe_and_stable() {
        assert_eq!(
            change_id("Codertocat/Hello-World", 2),
            "gh-codertocat-hello-world-2"
        );
        let long = change_id(&format!("{}/{}", "o".repeat(39), "r".repeat(60)), 7);
        assert!(long.len() <= 64 && long.starts_with("gh-") && long.ends_with("-7"));
        crate::routes::check_id(&long, "x").unwrap();
    }

    #[test]
    fn subjects_name_the_pull_request() {
        let p = json!({"action": "opened", "number": 2, "pull_request": {"number": 2}, "repository": {"full_name": "a/b"}});
        assert_eq!(
            subject("pull_request", &p).unwrap().as_deref(),
            Some("a/b#2")
        );
        let p = json!({"action": "labeled", "repository": {"full_name": "a/b"}});
        assert_eq!(subject("pull_request", &p).unwrap(), None);
        assert_eq!(subject("star", &p).unwrap(), None);
        let bad = json!({"action": "opened", "pull_request": {"number": 2}, "repository": {"full_name": "../x/y"}});
        assert!(subject("pull_request", &bad).is_err());
    }
}
