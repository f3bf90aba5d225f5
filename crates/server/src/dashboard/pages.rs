//! The pages and the forms behind them.
//!
//! Reading needs a session ([`Viewer`]); every form checks the session's CSRF token first, then
//! does exactly what the API does for the same token: approvals and attestations through
//! [`apply_change_op`] (the authority table, the gate's validation, compare-and-swap), rollbacks
//! through the rollback routes' own handler. Buttons are shown only when a dry run of the same
//! command, for the same identity, would pass ([`may_change`], [`may_roll_back`]).

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use changegate_audit::InclusionProofFile;
use changegate_gate::authority::authorize;
use changegate_gate::ops::ChangeOp;
use changegate_gate::{ApprovalStage, ChangeState, Status, WorldState};
use changegate_store::EventFilter;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::session::{Viewer, csrf_ok, csrf_refused};
use super::{html, refusal, see_other};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::routes::approvals::{actor, apply_change_op};

/// What every page's frame shows: who is signed in, the sign-out form's CSRF token, the active
/// navigation entry.
pub struct Chrome {
    /// The signed-in person.
    pub person: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The active navigation entry (`changes`, `calendar`, …).
    pub active: &'static str,
    /// An admin token.
    pub admin: bool,
    /// A message to show once (after a form).
    pub flash: Option<String>,
}

impl Chrome {
    fn new(v: &Viewer, active: &'static str) -> Chrome {
        Chrome {
            person: v.caller.person.clone(),
            csrf: v.csrf.clone(),
            active,
            admin: v.caller.admin,
            flash: None,
        }
    }

    /// `aria-current` for the navigation entry `name`.
    pub fn current(&self, name: &str) -> &'static str {
        if self.active == name { "page" } else { "false" }
    }
}

/// A time for people: `2026-03-10 10:30 UTC`.
pub fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "dashboard template failed");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "The page could not be rendered.",
            )
        }
    }
}

/// A page saying what went wrong.
#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
}

/// An error page with `status`, a stable `code` and a message for people.
pub fn error_page(status: StatusCode, code: &str, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        code,
        message,
    };
    let body = page
        .render()
        .unwrap_or_else(|_| format!("{} {code}: {message}", status.as_u16()));
    html(status, body)
}

/// An API error as a page (its status, code and message).
async fn api_error_page(e: impl IntoResponse) -> Response {
    let (status, code, message) = refusal(e.into_response()).await;
    error_page(status, &code, &message)
}

// ---------------------------------------------------------------------------------------------
// Changes

/// Query of `GET /changes` (every field text, so a bad value is a clear message, not a 400).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Status filter (`in-review`).
    #[serde(default)]
    pub state: Option<String>,
    /// Category level filter.
    #[serde(default)]
    pub category: Option<String>,
    /// Repository filter (exact).
    #[serde(default)]
    pub repository: Option<String>,
    /// `1`: only changes waiting on the signed-in person.
    #[serde(default)]
    pub waiting: Option<String>,
    /// Sort key: `updated` (default), `id`, `title`, `status`, `category`, `repository`.
    #[serde(default)]
    pub sort: Option<String>,
    /// `asc` or `desc`.
    #[serde(default)]
    pub dir: Option<String>,
    /// Page, from 1.
    #[serde(default)]
    pub page: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// One row of the list.
pub struct ChangeRow {
    id: String,
    title: String,
    status: String,
    category: i64,
    repository: String,
    updated: String,
    missing: String,
    waits_on_me: bool,
}

/// A sortable column header.
pub struct SortLink {
    label: &'static str,
    href: String,
    aria: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard/changes.html")]
struct ChangesPage {
    chrome: Chrome,
    rows: Vec<ChangeRow>,
    total: usize,
    shown_from: usize,
    shown_to: usize,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
    sort_links: Vec<SortLink>,
    statuses: Vec<(String, bool)>,
    categories: Vec<(String, String, bool)>,
    repositories: Vec<(String, bool)>,
    waiting_only: bool,
    waiting_total: usize,
    waiting_by_role: Vec<(String, usize)>,
    problems: Vec<String>,
}

/// The roles `person` holds (directly or through a team).
fn roles_of(s: &AppState, world: &WorldState, person: &str) -> Vec<String> {
    s.policy
        .roles
        .keys()
        .filter(|r| changegate_gate::people::holds_directly(&s.policy, world, person, r))
        .cloned()
        .collect()
}

fn query_string(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if v.is_empty() {
            continue;
        }
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&urlencode(v));
    }
    out
}

/// Percent-encode a query value.
pub fn urlencode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /changes`.
pub async fn changes(
    State(s): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let listing = match s.dashboard.cache.listing(&s).await {
        Ok(l) => l,
        Err(e) => return api_error_page(e).await,
    };
    let me = viewer.caller.person.as_str();
    let my_roles = roles_of(&s, &listing.world, me);
    let mut problems = Vec::new();
    let state = nonempty(&q.state).map(str::to_string);
    let category = match nonempty(&q.category) {
        None => None,
        Some(c) => match c.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(format!(
                    "category `{c}` is not a level number (e.g. 2); showing every category"
                ));
                None
            }
        },
    };
    let repository = nonempty(&q.repository).map(str::to_string);
    let waiting_only = nonempty(&q.waiting).is_some_and(|w| w != "0");
    let sort = match nonempty(&q.sort).unwrap_or("updated") {
        k @ ("updated" | "id" | "title" | "status" | "category" | "repository") => k.to_string(),
        other => {
            problems.push(format!(
                "sort `{other}` is unknown (updated, id, title, status, category, repository)"
            ));
            "updated".into()
        }
    };
    let desc = match nonempty(&q.dir) {
        Some("asc") => false,
        Some("desc") => true,
        _ => sort == "updated",
    };
    let page: usize = match nonempty(&q.page) {
        None => 1,
        Some(p) => match p.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                problems.push(format!("page `{p}` is not a page number; showing page 1"));
                1
            }
        },
    };

    // Counters over every change, filters aside.
    let mut waiting_total = 0;
    let mut by_role: BTreeMap<String, usize> = BTreeMap::new();
    let mut statuses: BTreeSet<String> = Status::ALL.iter().map(|s| s.to_string()).collect();
    let mut repos: BTreeSet<&str> = BTreeSet::new();
    for (c, e) in listing.rows() {
        statuses.insert(c.status.clone());
        repos.insert(&e.repository);
        if e.waits_on(me, &my_roles) {
            waiting_total += 1;
            for r in e.missing.iter().filter(|r| my_roles.contains(r)) {
                *by_role.entry(r.clone()).or_default() += 1;
            }
        }
    }

    let mut rows: Vec<_> = listing
        .rows()
        .filter(|(c, e)| {
            state.as_deref().is_none_or(|st| c.status == st)
                && category.is_none_or(|k| c.category == k)
                && repository.as_deref().is_none_or(|r| e.repository == r)
                && (!waiting_only || e.waits_on(me, &my_roles))
        })
        .collect();
    match sort.as_str() {
        "id" => rows.sort_by(|a, b| a.0.id.cmp(&b.0.id)),
        "title" => rows.sort_by(|a, b| a.0.title.cmp(&b.0.title).then(a.0.id.cmp(&b.0.id))),
        "status" => rows.sort_by(|a, b| a.0.status.cmp(&b.0.status).then(a.0.id.cmp(&b.0.id))),
        "category" => {
            rows.sort_by(|a, b| a.0.category.cmp(&b.0.category).then(a.0.id.cmp(&b.0.id)))
        }
        "repository" => rows.sort_by(|a, b| {
            a.1.repository
                .cmp(&b.1.repository)
                .then(a.0.id.cmp(&b.0.id))
        }),
        _ => rows.sort_by(|a, b| {
            a.0.updated_at
                .cmp(&b.0.updated_at)
                .then(a.0.id.cmp(&b.0.id))
        }),
    }
    if desc {
        rows.reverse();
    }
    let total = rows.len();
    let size = s.dashboard.page_size.max(1);
    let pages = total.div_ceil(size).max(1);
    let page = page.min(pages);
    let start = (page - 1) * size;
    let shown: Vec<ChangeRow> = rows
        .iter()
        .skip(start)
        .take(size)
        .map(|(c, e)| ChangeRow {
            id: c.id.clone(),
            title: c.title.clone(),
            status: c.status.clone(),
            category: c.category,
            repository: e.repository.clone(),
            updated: c
                .updated_at
                .get(..16)
                .unwrap_or(&c.updated_at)
                .replace('T', " "),
            missing: e.missing.join(", "),
            waits_on_me: e.waits_on(me, &my_roles),
        })
        .collect();

    let base = |sort: &str, dir: &str, page: usize| {
        query_string(&[
            ("state", state.clone().unwrap_or_default()),
            (
                "category",
                category.map(|c| c.to_string()).unwrap_or_default(),
            ),
            ("repository", repository.clone().unwrap_or_default()),
            (
                "waiting",
                if waiting_only {
                    "1".into()
                } else {
                    String::new()
                },
            ),
            ("sort", sort.to_string()),
            ("dir", dir.to_string()),
            (
                "page",
                if page > 1 {
                    page.to_string()
                } else {
                    String::new()
                },
            ),
        ])
    };
    let dir_now = if desc { "desc" } else { "asc" };
    let sort_links = [
        ("id", "Change"),
        ("title", "Title"),
        ("status", "State"),
        ("category", "Category"),
        ("repository", "Repository"),
        ("updated", "Updated"),
    ]
    .into_iter()
    .map(|(key, label)| {
        let active = sort == key;
        let dir = if active && !desc { "desc" } else { "asc" };
        SortLink {
            label,
            href: format!("/changes{}", base(key, dir, 1)),
            aria: match (active, desc) {
                (false, _) => "none",
                (true, true) => "descending",
                (true, false) => "ascending",
            },
        }
    })
    .collect();
    let page_view = ChangesPage {
        chrome: Chrome::new(&viewer, "changes"),
        total,
        shown_from: if total == 0 { 0 } else { start + 1 },
        shown_to: start + shown.len(),
        rows: shown,
        page,
        pages,
        prev: (page > 1).then(|| format!("/changes{}", base(&sort, dir_now, page - 1))),
        next: (page < pages).then(|| format!("/changes{}", base(&sort, dir_now, page + 1))),
        sort_links,
        statuses: statuses
            .into_iter()
            .map(|x| {
                let sel = state.as_deref() == Some(x.as_str());
                (x, sel)
            })
            .collect(),
        categories: s
            .policy
            .categories
            .values()
            .map(|c| {
                (
                    c.level.to_string(),
                    c.name.clone(),
                    category == Some(i64::from(c.level)),
                )
            })
            .collect(),
        repositories: repos
            .into_iter()
            .map(|r| (r.to_string(), repository.as_deref() == Some(r)))
            .collect(),
        waiting_only,
        waiting_total,
        waiting_by_role: by_role.into_iter().collect(),
        problems,
    };
    render(StatusCode::OK, &page_view)
}

// ---------------------------------------------------------------------------------------------
// One change

/// Whether the caller may apply `op` now: the authority table and the gate's own validation, on a
/// copy (what the POST behind the button will do).
pub fn may_change(
    s: &AppState,
    state: &ChangeState,
    world: &WorldState,
    caller: &Caller,
    op: &ChangeOp,
    now: Timestamp,
) -> Result<(), String> {
    authorize(&s.policy, state, world, &actor(caller), op, now).map_err(|e| e.to_string())?;
    let mut next = state.clone();
    changegate_gate::ops::apply(&s.policy, &mut next, world, op, now).map_err(|e| e.to_string())
}

/// Whether the caller may open a manual rollback of the change now (the rollback authority
/// rows and rules, on a copy), and the server has a rollback action to run.
pub fn may_roll_back(
    s: &AppState,
    state: &ChangeState,
    world: &WorldState,
    caller: &Caller,
    now: Timestamp,
) -> Result<(), String> {
    use changegate_gate::rollback::{self, RollbackKind, RollbackOp};
    if s.rollback
        .for_kind(&s.policy, RollbackKind::Application)
        .is_none()
    {
        return Err("this server has no rollback action configured".into());
    }
    let op = RollbackOp::Open {
        kind: RollbackKind::Application,
        reason: "dashboard".into(),
        downtime: None,
        by: caller.person.clone(),
        role: None,
    };
    let actor = actor(caller);
    rollback::authorize(&s.policy, state, world, &actor, &op, now).map_err(|e| e.to_string())?;
    let mut next = state.clone();
    rollback::apply(&s.policy, &mut next, world, &actor, &op, now)
        .map(|_| ())
        .map_err(|e| e.message)
}

/// A required role on the change page.
pub struct RoleRow {
    role: String,
    name: String,
    why: String,
    stage: &'static str,
    approved_by: Option<String>,
    others: Vec<String>,
    can_approve: bool,
    why_not: String,
}

/// A facet on the change page.
pub struct FacetRow {
    kind: String,
    category: u8,
    roles: String,
    details: String,
    places: Vec<PlaceRow>,
    more: u32,
}

/// One place of a facet's evidence: `path:line`, linked to the forge when the repository's is
/// known.
pub struct PlaceRow {
    label: String,
    href: Option<String>,
    base: bool,
}

/// A checklist item on the change page.
pub struct ItemRow {
    id: String,
    text: String,
    evidence_kind: String,
    auto: bool,
    attested: Vec<(String, String, Option<String>)>,
    can_attest: bool,
}

/// A reason of the decision.
pub struct ReasonRow {
    code: String,
    message: String,
    denies: bool,
}

/// An audit event on the change's timeline.
pub struct EventRow {
    seq: u64,
    id: String,
    kind: String,
    actor: String,
    at: String,
}

/// The decision panel (refreshed by htmx).
pub struct DecisionView {
    allowed: bool,
    at: String,
    reasons: Vec<ReasonRow>,
    missing: String,
    next_slot: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/change.html")]
struct ChangePage {
    chrome: Chrome,
    id: String,
    title: String,
    repository: String,
    pr_link: Option<String>,
    ticket: Option<String>,
    status: String,
    head: String,
    category: String,
    category_level: u8,
    facets: Vec<FacetRow>,
    classified_by: String,
    roles: Vec<RoleRow>,
    items: Vec<ItemRow>,
    decision: DecisionView,
    events: Vec<EventRow>,
    emergency: Option<String>,
}

/// Query of `GET /changes/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct ChangeQuery {
    /// What a form just did (`approved`, `attested`).
    #[serde(default)]
    pub done: Option<String>,
}

/// The facets of a change with their evidence, each place linked to the forge when the
/// repository's is known ([`super::forge`]).
pub fn facet_rows(
    c: &changegate_gate::ChangeRequest,
    mirrors: Option<&crate::mirror::Mirrors>,
) -> Vec<FacetRow> {
    let forge = super::forge::forge_of(c, mirrors);
    c.classification
        .facets
        .iter()
        .map(|f| FacetRow {
            kind: f.kind.clone(),
            category: f.category,
            roles: f.roles.join(", "),
            details: f.details.clone(),
            places: f
                .evidence
                .iter()
                .map(|e| PlaceRow {
                    label: super::forge::place(e),
                    href: forge
                        .as_ref()
                        .and_then(|r| super::forge::blob_link(r, c, e)),
                    base: e.side == changegate_gate::EvidenceSide::Base,
                })
                .collect(),
            more: f.more_evidence,
        })
        .collect()
}

/// Where the classification came from, for people: observed by the server, vouched for by
/// tokens, or both.
fn classification_source(p: &changegate_gate::Source) -> String {
    use changegate_gate::Observer;
    let mut parts: Vec<String> = p
        .observed
        .iter()
        .map(|o| match o {
            Observer::Repository => "read by changegate from the repository's commits".to_string(),
            Observer::Github => "read by changegate from GitHub".to_string(),
        })
        .collect();
    parts.extend(
        p.vouched
            .iter()
            .map(|v| format!("vouched for by token {} ({})", v.token, v.person)),
    );
    if parts.is_empty() {
        "not recorded".into()
    } else {
        parts.join("; ")
    }
}

/// `GET /changes/{id}`.
pub async fn change(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ChangeQuery>,
) -> Response {
    let (current, world) = match s.db.change_and_world(&id).await {
        Ok(Some(x)) => x,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "not-found",
                &format!("There is no change `{id}`."),
            );
        }
        Err(e) => return api_error_page(ApiError::from(e)).await,
    };
    let st = &current.value;
    let now = s.now();
    let c = &st.change;
    let caller = &viewer.caller;
    let decision = changegate_gate::decide(&s.policy, st, &world, now);
    let req = changegate_gate::requirements(&s.policy, st).ok();
    let outcome = req
        .as_ref()
        .map(|r| changegate_gate::approval::evaluate(&s.policy, st, &world, r));

    let mut roles = Vec::new();
    if let (Some(req), Some(out)) = (&req, &outcome) {
        let rows = req
            .roles
            .iter()
            .map(|r| (r, ApprovalStage::Review))
            .chain(req.deploy_roles.iter().map(|r| (r, ApprovalStage::Deploy)));
        for (role, stage) in rows {
            let approved_by = match stage {
                ApprovalStage::Review => out.filled.get(role).cloned(),
                ApprovalStage::Deploy => st
                    .approvals
                    .iter()
                    .find(|a| {
                        &a.role == role
                            && a.stage == ApprovalStage::Deploy
                            && a.head_commit == c.head_commit
                    })
                    .map(|a| a.person.clone()),
            };
            let others = st
                .approvals
                .iter()
                .filter(|a| &a.role == role && a.stage == stage)
                .filter(|a| approved_by.as_deref() != Some(a.person.as_str()))
                .map(|a| {
                    let stale = if a.head_commit == c.head_commit {
                        ""
                    } else {
                        " (older commit)"
                    };
                    format!("{} at {}{stale}", a.person, when(a.at))
                })
                .collect();
            let op = ChangeOp::Approve {
                person: caller.person.clone(),
                role: role.clone(),
                commit: None,
                stage,
            };
            let check = if approved_by.is_some() {
                Err("approved".into())
            } else {
                may_change(&s, st, &world, caller, &op, now)
            };
            roles.push(RoleRow {
                role: role.clone(),
                name: s
                    .policy
                    .roles
                    .get(role)
                    .map(|r| r.name.clone())
                    .unwrap_or_default(),
                why: req
                    .sources
                    .get(role)
                    .map(|v| v.join(", "))
                    .unwrap_or_default(),
                stage: match stage {
                    ApprovalStage::Review => "review",
                    ApprovalStage::Deploy => "deploy",
                },
                approved_by,
                others,
                can_approve: check.is_ok(),
                why_not: check.err().unwrap_or_default(),
            });
        }
    }

    let level = changegate_gate::approval::effective_level(&s.policy, st);
    let items = changegate_gate::checklist::applicable(&s.policy, level, &c.classification.facets)
        .into_iter()
        .map(|(item_id, item)| {
            let attested = st
                .attestations
                .iter()
                .filter(|a| a.item == item_id)
                .map(|a| {
                    let stale = if a.head_commit == c.head_commit {
                        ""
                    } else {
                        " (older commit)"
                    };
                    (
                        a.person.clone(),
                        format!("{}{stale}", when(a.at)),
                        a.evidence.clone().filter(|e| e.starts_with("https://")),
                    )
                })
                .collect();
            let op = ChangeOp::Attest {
                person: caller.person.clone(),
                item: item_id.to_string(),
                evidence: Some("https://dashboard.invalid/evidence".into()),
                commit: None,
                verified: None,
            };
            ItemRow {
                id: item_id.to_string(),
                text: item.text.clone(),
                evidence_kind: item.evidence.clone().unwrap_or_default(),
                auto: item.auto,
                attested,
                can_attest: !item.auto && may_change(&s, st, &world, caller, &op, now).is_ok(),
            }
        })
        .collect();

    let facets = facet_rows(c, s.mirrors.as_deref());

    let events = match s
        .db
        .store()
        .events(&EventFilter {
            change_id: Some(id.clone()),
            limit: Some(200),
            ..Default::default()
        })
        .await
    {
        Ok(ev) => ev
            .into_iter()
            .map(|e| EventRow {
                seq: e.seq,
                id: e.record.id.clone(),
                kind: e.record.event.kind.clone(),
                actor: e.record.event.actor.clone(),
                at: when(e.record.recorded_at),
            })
            .collect(),
        Err(e) => return api_error_page(ApiError::from(e)).await,
    };

    let mut chrome = Chrome::new(&viewer, "changes");
    chrome.flash = match q.done.as_deref() {
        Some("approved") => Some("Approval recorded.".into()),
        Some("attested") => Some("Attestation recorded.".into()),
        _ => None,
    };
    let page = ChangePage {
        chrome,
        id: c.id.clone(),
        title: c.title.clone(),
        repository: c.repository.clone(),
        pr_link: c.pr_link.clone().filter(|l| l.starts_with("https://")),
        ticket: c.ticket.clone(),
        status: st.status.to_string(),
        head: c.head_commit.clone(),
        category: s
            .policy
            .category(level)
            .map(|(_, k)| k.name.clone())
            .unwrap_or_else(|| format!("level {level}")),
        category_level: level,
        facets,
        classified_by: classification_source(&c.provenance.classification),
        roles,
        items,
        decision: DecisionView {
            allowed: decision.allowed,
            at: when(decision.at),
            reasons: decision
                .reasons
                .iter()
                .map(|r| ReasonRow {
                    code: r.code.as_str().to_string(),
                    message: r.message.clone(),
                    denies: r.denies,
                })
                .collect(),
            missing: decision.missing_roles.join(", "),
            next_slot: decision.next_slot.map(when),
        },
        events,
        emergency: st.emergency.as_ref().map(|e| e.incident.clone()),
    };
    render(StatusCode::OK, &page)
}

/// Body of `POST /changes/{id}/approve`.
#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    /// CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
    /// Role approved in.
    #[serde(default)]
    pub role: String,
    /// `review` (default) or `deploy`.
    #[serde(default)]
    pub stage: Option<String>,
}

/// `POST /changes/{id}/approve`: approve as the signed-in person, through the API's path.
pub async fn approve(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<ApproveForm>,
) -> Response {
    if !csrf_ok(&viewer, f.csrf.as_deref()) {
        return csrf_refused();
    }
    if !s.policy.roles.contains_key(&f.role) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "unknown-role",
            &format!("The policy has no role `{}`.", f.role),
        );
    }
    let stage = match f.stage.as_deref() {
        None | Some("") | Some("review") => ApprovalStage::Review,
        Some("deploy") => ApprovalStage::Deploy,
        Some(other) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid-body",
                &format!("stage `{other}` must be review or deploy"),
            );
        }
    };
    let op = ChangeOp::Approve {
        person: viewer.caller.person.clone(),
        role: f.role,
        commit: None,
        stage,
    };
    match apply_change_op(&s, &viewer.caller, &id, op, false).await {
        Ok(_) => see_other(&format!("/changes/{}?done=approved", urlencode(&id))),
        Err(e) => api_error_page(e).await,
    }
}

/// Body of `POST /changes/{id}/attest`.
#[derive(Debug, Deserialize)]
pub struct AttestForm {
    /// CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
    /// Checklist item id.
    #[serde(default)]
    pub item: String,
    /// Evidence link.
    #[serde(default)]
    pub evidence: Option<String>,
}

/// `POST /changes/{id}/attest`: attest a checklist item as the signed-in person.
pub async fn attest(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<AttestForm>,
) -> Response {
    if !csrf_ok(&viewer, f.csrf.as_deref()) {
        return csrf_refused();
    }
    let op = ChangeOp::Attest {
        person: viewer.caller.person.clone(),
        item: f.item,
        evidence: f
            .evidence
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty()),
        commit: None,
        verified: None,
    };
    // A person's CI-evidence attestation needs the server to look the run up (the API's
    // `verify_ci_link`); the dashboard does not, so the authority table refuses it as the API
    // does without a verified link.
    match apply_change_op(&s, &viewer.caller, &id, op, false).await {
        Ok(_) => see_other(&format!("/changes/{}?done=attested", urlencode(&id))),
        Err(e) => api_error_page(e).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar

/// Query of `GET /calendar`.
#[derive(Debug, Default, Deserialize)]
pub struct CalendarQuery {
    /// `YYYY-MM` (default: this month).
    #[serde(default)]
    pub month: Option<String>,
    /// Category level whose allowed time to show.
    #[serde(default)]
    pub category: Option<String>,
}

/// One band on a day.
pub struct BandRow {
    class: &'static str,
    label: String,
    span: String,
}

/// One day cell.
pub struct DayCell {
    day: i8,
    date: String,
    in_month: bool,
    today: bool,
    bands: Vec<BandRow>,
}

#[derive(Template)]
#[template(path = "dashboard/calendar.html")]
struct CalendarPage {
    chrome: Chrome,
    title: String,
    month: String,
    prev: String,
    next: String,
    zone: String,
    categories: Vec<(String, String, bool)>,
    weeks: Vec<Vec<DayCell>>,
    conditional: Vec<String>,
    problems: Vec<String>,
}

/// `GET /calendar`: a month of windows, freezes, maintenance, incidents and scheduled changes.
pub async fn calendar(
    State(s): State<AppState>,
    viewer: Viewer,
    Query(q): Query<CalendarQuery>,
) -> Response {
    use changegate_calendar::month::{BandKind, month_view};
    let tz = s.policy.windows.timezone.to_jiff();
    let now = s.now();
    let today = tz.to_datetime(now).date();
    let mut problems = Vec::new();
    let (year, month) = match nonempty(&q.month) {
        None => (today.year(), today.month()),
        Some(m) => match m
            .split_once('-')
            .and_then(|(y, mo)| Some((y.parse::<i16>().ok()?, mo.parse::<i8>().ok()?)))
            .filter(|(_, mo)| (1..=12).contains(mo))
        {
            Some(x) => x,
            None => {
                problems.push(format!(
                    "month `{m}` is not YYYY-MM (e.g. 2026-03); showing this month"
                ));
                (today.year(), today.month())
            }
        },
    };
    let category = match nonempty(&q.category) {
        None => None,
        Some(c) => match c.parse::<u8>() {
            Ok(l) if s.policy.category(l).is_some() => Some(l),
            _ => {
                problems.push(format!(
                    "category `{c}` is not a level of the policy; showing no category's slots"
                ));
                None
            }
        },
    };
    let view = match month_view(&s.policy, year, month, &tz, category) {
        Ok(v) => v,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "invalid-body", &e.to_string()),
    };
    let world = match s.db.world().await {
        Ok(w) => w.value,
        Err(e) => return api_error_page(ApiError::from(e)).await,
    };
    let listing = match s.dashboard.cache.listing(&s).await {
        Ok(l) => l,
        Err(e) => return api_error_page(e).await,
    };
    let hhmm = |t: Timestamp| tz.to_datetime(t).strftime("%H:%M").to_string();
    // An end at the next day's midnight reads 24:00.
    let until = |t: Timestamp, day_end: Timestamp| {
        if t >= day_end {
            "24:00".to_string()
        } else {
            hhmm(t)
        }
    };
    let mut days: Vec<DayCell> = view
        .days
        .iter()
        .map(|d| {
            let mut bands: Vec<BandRow> = d
                .bands
                .iter()
                .map(|b| BandRow {
                    class: match b.kind {
                        BandKind::Allowed => "allowed",
                        BandKind::Standard => "standard",
                        BandKind::Preferred => "preferred",
                        BandKind::Maintenance => "maintenance",
                        BandKind::MaintenanceFallback => "maintenance-fallback",
                        BandKind::Freeze => "freeze",
                    },
                    label: match b.kind {
                        BandKind::Allowed => "allowed".into(),
                        BandKind::Standard => "standard window".into(),
                        BandKind::Preferred => "preferred window".into(),
                        BandKind::Maintenance => "maintenance window".into(),
                        BandKind::MaintenanceFallback => "fallback maintenance".into(),
                        BandKind::Freeze => format!("freeze: {}", b.label),
                    },
                    span: format!("{}–{}", hhmm(b.start), until(b.end, d.end)),
                })
                .collect();
            for a in &world.announcements {
                if a.window_start < d.end && a.window_end > d.start {
                    bands.push(BandRow {
                        class: "announced",
                        label: format!("announced maintenance {}", a.id),
                        span: format!(
                            "{}–{}",
                            hhmm(a.window_start.max(d.start)),
                            until(a.window_end, d.end)
                        ),
                    });
                }
            }
            for i in &world.incidents {
                // An open incident is shown up to now, not on the days to come.
                let end = i.resolved_at.unwrap_or(now);
                if i.opened_at < d.end && end >= d.start {
                    bands.push(BandRow {
                        class: "incident",
                        label: format!("incident {} ({})", i.id, i.severity),
                        span: if i.resolved_at.is_some() {
                            "resolved".into()
                        } else {
                            "open".into()
                        },
                    });
                }
            }
            // Scheduled changes by time, then id (the listing's order is no order).
            let mut scheduled: Vec<_> = listing
                .rows()
                .filter_map(|(c, e)| {
                    let t = e.requested_deploy_at?;
                    (t >= d.start && t < d.end).then_some((t, c))
                })
                .collect();
            scheduled.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
            for (t, c) in scheduled {
                bands.push(BandRow {
                    class: "scheduled",
                    label: format!("change {} ({})", c.id, c.status),
                    span: hhmm(t),
                });
            }
            DayCell {
                day: d.date.day(),
                date: d.date.to_string(),
                in_month: true,
                today: d.date == today,
                bands,
            }
        })
        .collect();
    // Pad to whole weeks, Monday first.
    let first_weekday = view
        .days
        .first()
        .map(|d| d.date.weekday().to_monday_zero_offset())
        .unwrap_or(0);
    let mut cells: Vec<DayCell> = (0..first_weekday)
        .map(|_| DayCell {
            day: 0,
            date: String::new(),
            in_month: false,
            today: false,
            bands: Vec::new(),
        })
        .collect();
    cells.append(&mut days);
    while !cells.len().is_multiple_of(7) {
        cells.push(DayCell {
            day: 0,
            date: String::new(),
            in_month: false,
            today: false,
            bands: Vec::new(),
        });
    }
    let mut weeks = Vec::new();
    let mut it = cells.into_iter().peekable();
    while it.peek().is_some() {
        weeks.push(it.by_ref().take(7).collect());
    }
    let (py, pm) = if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    };
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let cat_q = category
        .map(|c| format!("&category={c}"))
        .unwrap_or_default();
    let month_names = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let page = CalendarPage {
        chrome: Chrome::new(&viewer, "calendar"),
        title: format!(
            "{} {year}",
            month_names[usize::try_from(month - 1).unwrap_or(0)]
        ),
        month: format!("{year:04}-{month:02}"),
        prev: format!("/calendar?month={py:04}-{pm:02}{cat_q}"),
        next: format!("/calendar?month={ny:04}-{nm:02}{cat_q}"),
        zone: view.zone.clone(),
        categories: s
            .policy
            .categories
            .values()
            .map(|c| {
                (
                    c.level.to_string(),
                    c.name.clone(),
                    category == Some(c.level),
                )
            })
            .collect(),
        weeks,
        conditional: view
            .conditional_freezes
            .iter()
            .map(|(_, name)| name.clone())
            .collect(),
        problems,
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------------------------
// Rollouts

/// A trigger of a rollout.
pub struct TriggerRow {
    name: String,
    source: String,
    state: String,
    value: String,
    limit: String,
    breach: bool,
    chart: String,
}

/// A rollout on the page.
pub struct RolloutRow {
    id: String,
    change: String,
    plan: String,
    phase: String,
    step: String,
    weight: String,
    started_by: String,
    updated: String,
    held: Option<String>,
    triggers: Vec<TriggerRow>,
    metrics_note: Option<String>,
    history: Vec<String>,
    can_roll_back: bool,
    why_not: String,
}

#[derive(Template)]
#[template(path = "dashboard/rollouts.html")]
struct RolloutsPage {
    chrome: Chrome,
    active: Vec<RolloutRow>,
    recent: Vec<RolloutRow>,
    configured: bool,
}

fn fmt_num(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "—".into(),
        Some(x) => {
            let r = (x * 10_000.0).round() / 10_000.0;
            if unit.is_empty() {
                format!("{r}")
            } else {
                format!("{r} {unit}")
            }
        }
    }
}

/// Readings of each trigger from the change's audit events since `since` (the worker records
/// the trigger states with every step, hold and rollback).
fn readings(events: &[changegate_store::StoredEvent]) -> BTreeMap<String, Vec<(Timestamp, f64)>> {
    let mut out: BTreeMap<String, Vec<(Timestamp, f64)>> = BTreeMap::new();
    for e in events {
        let d = &e.record.event.details;
        let triggers = d
            .get("triggers")
            .or_else(|| d.get("last_triggers"))
            .and_then(|t| t.as_array());
        for t in triggers.into_iter().flatten() {
            if let (Some(name), Some(v)) = (t["name"].as_str(), t["value"].as_f64()) {
                out.entry(name.to_string())
                    .or_default()
                    .push((e.record.recorded_at, v));
            }
        }
    }
    out
}

async fn rollout_rows(
    s: &AppState,
    viewer: &Viewer,
    rows: Vec<changegate_store::RolloutRow>,
    now: Timestamp,
) -> Result<Vec<RolloutRow>, ApiError> {
    let since = now - SignedDuration::from_hours(1);
    let mut out = Vec::new();
    for row in rows {
        let v = crate::rollouts::view(&row);
        let doc: Option<crate::rollouts::RolloutDoc> = serde_json::from_str(&row.state).ok();
        let events =
            s.db.store()
                .events(&EventFilter {
                    change_id: Some(row.change_id.clone()),
                    since: Some(since),
                    limit: Some(500),
                    ..Default::default()
                })
                .await?;
        let mut series = readings(&events);
        // The line: Prometheus's values of the guard's own queries over the last hour (active
        // rollouts of a server that runs them); else the recorded readings alone.
        let wall = Timestamp::now();
        let prom = if row.active && s.rollouts.is_some() {
            Some(
                super::metrics::trigger_ranges(s, &row, wall - SignedDuration::from_hours(1), wall)
                    .await,
            )
        } else {
            None
        };
        let (from, to) = match &prom {
            Some(Ok(_)) => (wall - SignedDuration::from_hours(1), wall),
            _ => (since, now),
        };
        let (mut lines, metrics_note) = match prom {
            Some(Ok(l)) => (l, None),
            Some(Err(why)) => (BTreeMap::new(), Some(why)),
            None => (BTreeMap::new(), None),
        };
        // The last evaluation's values, at the time the worker wrote them.
        let last_eval: Option<Timestamp> = row.updated_at.parse().ok();
        let triggers = doc
            .as_ref()
            .and_then(|d| d.last_triggers.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let name = t["name"].as_str().unwrap_or("trigger").to_string();
                let unit = t["unit"].as_str().unwrap_or("");
                let value = t["value"].as_f64();
                let limit = t["limit"].as_f64();
                let mut points = series.remove(&name).unwrap_or_default();
                if let (Some(x), Some(at)) = (value, last_eval) {
                    points.push((at, x));
                }
                let line = lines.remove(&name).unwrap_or_default();
                points.retain(|(at, _)| *at >= from && *at <= to);
                TriggerRow {
                    chart: super::chart::trigger_chart(
                        &format!("{name} over the last hour against its limit"),
                        &line,
                        &points,
                        limit,
                        from,
                        to,
                    ),
                    source: if line.is_empty() {
                        format!("{} readings recorded by the guard", points.len())
                    } else {
                        format!(
                            "line: Prometheus, the guard's query, {} points; dots: {} readings recorded by the guard",
                            line.len(),
                            points.len()
                        )
                    },
                    state: t["state"].as_str().unwrap_or("").to_string(),
                    breach: matches!((value, limit), (Some(x), Some(l)) if x > l),
                    value: fmt_num(value, unit),
                    limit: fmt_num(limit, unit),
                    name,
                }
            })
            .collect();
        let mut history: Vec<String> = doc
            .as_ref()
            .map(|d| {
                d.steps
                    .iter()
                    .map(|st| {
                        format!(
                            "{}: promoted to step {} ({}%)",
                            when(st.at),
                            st.step,
                            st.weight
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(d) = &doc {
            if let Some(h) = &d.held {
                history.push(format!(
                    "{}: held by the gate ({})",
                    when(h.since),
                    h.codes.join(", ")
                ));
            }
            if let Some(rb) = &d.rollback {
                history.push(format!(
                    "rolled back: {}",
                    serde_json::to_string(rb).unwrap_or_default()
                ));
            }
        }
        let check = if row.active {
            match s.db.change_and_world(&row.change_id).await? {
                Some((c, w)) => may_roll_back(s, &c.value, &w, &viewer.caller, now),
                None => Err("the change is gone".into()),
            }
        } else {
            Err("not active".into())
        };
        out.push(RolloutRow {
            id: v.id,
            change: v.change,
            plan: v.plan,
            phase: v.phase,
            step: v.step.map(|x| x.to_string()).unwrap_or_else(|| "—".into()),
            weight: v
                .weight
                .map(|w| format!("{w}%"))
                .unwrap_or_else(|| "—".into()),
            started_by: v.started_by,
            updated: v.updated_at,
            held: doc
                .as_ref()
                .and_then(|d| d.held.as_ref())
                .map(|h| h.codes.join(", ")),
            triggers,
            metrics_note,
            history,
            can_roll_back: check.is_ok(),
            why_not: check.err().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// `GET /rollouts`: active rollouts with their triggers, and the latest finished ones.
pub async fn rollouts(State(s): State<AppState>, viewer: Viewer) -> Response {
    let now = s.now();
    let result: Result<(Vec<RolloutRow>, Vec<RolloutRow>), ApiError> = async {
        let mut active = Vec::new();
        for id in s.db.active_rollout_changes().await? {
            active.extend(
                s.db.change_rollouts(&id)
                    .await?
                    .into_iter()
                    .filter(|r| r.active),
            );
        }
        let mut recent = Vec::new();
        for id in s.db.recent_rollout_changes(10).await? {
            recent.extend(
                s.db.change_rollouts(&id)
                    .await?
                    .into_iter()
                    .filter(|r| !r.active),
            );
        }
        recent.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
        recent.truncate(10);
        Ok((
            rollout_rows(&s, &viewer, active, now).await?,
            rollout_rows(&s, &viewer, recent, now).await?,
        ))
    }
    .await;
    match result {
        Ok((active, recent)) => render(
            StatusCode::OK,
            &RolloutsPage {
                chrome: Chrome::new(&viewer, "rollouts"),
                active,
                recent,
                configured: s.rollouts.is_some(),
            },
        ),
        Err(e) => api_error_page(e).await,
    }
}

/// Body of `POST /rollouts/{change}/rollback`.
#[derive(Debug, Deserialize)]
pub struct RollbackForm {
    /// CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `POST /rollouts/{change}/rollback`: open a manual rollback request, through the API's handler
/// (its authority rows, its dual approval, its one execution).
pub async fn rollback(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(change): Path<String>,
    axum::Form(f): axum::Form<RollbackForm>,
) -> Response {
    if !csrf_ok(&viewer, f.csrf.as_deref()) {
        return csrf_refused();
    }
    let body = crate::routes::rollbacks::OpenBody {
        reason: f.reason,
        kind: Default::default(),
        downtime: None,
        role: None,
    };
    match crate::routes::rollbacks::open(
        State(s),
        viewer.caller.clone(),
        Path(change.clone()),
        crate::extract::JsonBody(body),
    )
    .await
    {
        Ok(_) => see_other("/rollouts"),
        Err(e) => api_error_page(e).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Incidents and emergencies

/// An open incident.
pub struct IncidentRow {
    id: String,
    severity: String,
    title: String,
    commander: String,
    opened: String,
    freezes: String,
}

/// An emergency change.
pub struct EmergencyRow {
    id: String,
    title: String,
    incident: String,
    retrospective: String,
    follow_up: String,
    overdue: Vec<String>,
}

#[derive(Template)]
#[template(path = "dashboard/incidents.html")]
struct IncidentsPage {
    chrome: Chrome,
    incidents: Vec<IncidentRow>,
    emergencies: Vec<EmergencyRow>,
}

/// `GET /incidents`.
pub async fn incidents(State(s): State<AppState>, viewer: Viewer) -> Response {
    let now = s.now();
    let listing = match s.dashboard.cache.listing(&s).await {
        Ok(l) => l,
        Err(e) => return api_error_page(e).await,
    };
    let incidents = listing
        .world
        .incidents
        .iter()
        .filter(|i| i.active_at(now))
        .map(|i| {
            let freezes: Vec<String> = s
                .policy
                .freezes
                .values()
                .filter_map(|f| match f {
                    changegate_policy::Freeze::Incident {
                        name,
                        severities,
                        applies_to,
                        ..
                    } if severities.contains(&i.severity) => Some(format!(
                        "{name} (categories {})",
                        applies_to
                            .iter()
                            .map(|l| l.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    _ => None,
                })
                .collect();
            IncidentRow {
                id: i.id.clone(),
                severity: i.severity.clone(),
                title: i.title.clone(),
                commander: i
                    .commander
                    .clone()
                    .unwrap_or_else(|| "none assigned".into()),
                opened: when(i.opened_at),
                freezes: if freezes.is_empty() {
                    "no freeze".into()
                } else {
                    format!("frozen: {}", freezes.join("; "))
                },
            }
        })
        .collect();
    let ids: Vec<String> = listing
        .rows()
        .filter(|(_, e)| e.emergency)
        .map(|(c, _)| c.id.clone())
        .collect();
    let docs = match s.db.changes_by_id(&ids).await {
        Ok(d) => d,
        Err(e) => return api_error_page(ApiError::from(e)).await,
    };
    let mut emergencies: Vec<EmergencyRow> = docs
        .iter()
        .filter_map(|d| {
            let st = &d.value;
            let em = st.emergency.as_ref()?;
            let overdue: Vec<String> = changegate_gate::overdue(&s.policy, st, now)
                .into_iter()
                .map(|r| r.message)
                .collect();
            let due = st.first_entered(Status::Deploying).and_then(|t| {
                t.checked_add(s.policy.emergency.retrospective_within.get())
                    .ok()
            });
            Some(EmergencyRow {
                id: st.change.id.clone(),
                title: st.change.title.clone(),
                incident: em.incident.clone(),
                retrospective: match (&em.retrospective, due) {
                    (Some(p), _) => format!("written {}", when(p.at)),
                    (None, Some(d)) => format!("due by {}", when(d)),
                    (None, None) => "due once deployed".into(),
                },
                follow_up: match &em.follow_up_pr {
                    Some(pr) => format!("linked: {pr}"),
                    None if s.policy.emergency.follow_up_pr => "not linked yet".into(),
                    None => "not required".into(),
                },
                overdue,
            })
        })
        .collect();
    emergencies.sort_by(|a, b| b.overdue.len().cmp(&a.overdue.len()).then(a.id.cmp(&b.id)));
    render(
        StatusCode::OK,
        &IncidentsPage {
            chrome: Chrome::new(&viewer, "incidents"),
            incidents,
            emergencies,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Reports

#[derive(Template)]
#[template(path = "dashboard/reports.html")]
struct ReportsPage {
    chrome: Chrome,
    api: Vec<String>,
}

/// `GET /reports`: a placeholder that links the reports API when this server has one.
pub async fn reports(viewer: Viewer) -> Response {
    let api = crate::ROUTES
        .iter()
        .filter(|(m, p)| *m == "get" && p.starts_with("/api/v1/reports") && !p.contains('{'))
        .map(|(_, p)| p.to_string())
        .collect();
    render(
        StatusCode::OK,
        &ReportsPage {
            chrome: Chrome::new(&viewer, "reports"),
            api,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Audit

/// The result of a verification run.
pub struct VerifyView {
    ok: bool,
    size: u64,
    records: u64,
    checkpoints: u64,
    states: u64,
    failures: Vec<String>,
}

#[derive(Template)]
#[template(path = "dashboard/audit.html")]
struct AuditPage {
    chrome: Chrome,
    size: u64,
    root: String,
    checkpoint: String,
    backend: &'static str,
    verified: Option<VerifyView>,
}

async fn audit_page(s: &AppState, viewer: &Viewer, verified: Option<VerifyView>) -> Response {
    let head = match s.db.store().head().await {
        Ok(h) => h,
        Err(e) => return api_error_page(ApiError::from(e)).await,
    };
    render(
        StatusCode::OK,
        &AuditPage {
            chrome: Chrome::new(viewer, "audit"),
            size: head.size,
            root: head.root,
            checkpoint: head.checkpoint,
            backend: s.db.backend(),
            verified,
        },
    )
}

/// `GET /audit`: the latest signed checkpoint, the verify button, export links.
pub async fn audit(State(s): State<AppState>, viewer: Viewer) -> Response {
    audit_page(&s, &viewer, None).await
}

/// `POST /audit/verify`: recompute the whole log and show the result.
pub async fn verify(
    State(s): State<AppState>,
    viewer: Viewer,
    axum::Form(f): axum::Form<super::session::CsrfForm>,
) -> Response {
    if !csrf_ok(&viewer, f.csrf.as_deref()) {
        return csrf_refused();
    }
    let report = match s.db.store().verify(None).await {
        Ok(r) => r,
        Err(e) => return api_error_page(ApiError::from(e)).await,
    };
    let v = VerifyView {
        ok: report.ok(),
        size: report.size,
        records: report.records,
        checkpoints: report.checkpoints,
        states: report.states,
        failures: report
            .failures
            .iter()
            .map(|f| serde_json::to_string(f).unwrap_or_default())
            .collect(),
    };
    audit_page(&s, &viewer, Some(v)).await
}

/// `GET /audit/checkpoint`: the latest signed checkpoint note, as text.
pub async fn checkpoint(State(s): State<AppState>, _viewer: Viewer) -> Response {
    match s.db.store().head().await {
        Ok(head) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"checkpoint.txt\"",
                ),
            ],
            head.checkpoint,
        )
            .into_response(),
        Err(e) => api_error_page(ApiError::from(e)).await,
    }
}

/// Query of `GET /audit/export.jsonl`.
#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    /// Only this change's events.
    #[serde(default)]
    pub change: Option<String>,
}

/// `GET /audit/export.jsonl`: the records (one JSON object a line), optionally of one change.
pub async fn export(
    State(s): State<AppState>,
    _viewer: Viewer,
    Query(q): Query<ExportQuery>,
) -> Response {
    let filter = EventFilter {
        change_id: nonempty(&q.change).map(str::to_string),
        ..Default::default()
    };
    match s.db.store().events(&filter).await {
        Ok(events) => {
            let mut out = String::new();
            for e in events {
                out.push_str(&String::from_utf8_lossy(&e.record.canonical()));
                out.push('\n');
            }
            (
                [
                    (header::CONTENT_TYPE, "application/x-ndjson"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"audit.jsonl\"",
                    ),
                ],
                out,
            )
                .into_response()
        }
        Err(e) => api_error_page(ApiError::from(e)).await,
    }
}

/// `GET /audit/proofs/{event}`: the inclusion proof of an event (what `changegate audit prove`
/// writes), as JSON.
pub async fn proof(
    State(s): State<AppState>,
    _viewer: Viewer,
    Path(event): Path<String>,
) -> Response {
    match s.db.store().prove(&event).await {
        Ok(p) => {
            let p: InclusionProofFile = p;
            Json(p).into_response()
        }
        Err(e) => api_error_page(ApiError::from(e)).await,
    }
}
