//! Issue 15, "Out": what changegate sends back to GitHub, on SQLite and PostgreSQL, against the
//! local stand-in of GitHub's REST API (`changegate_testkit::github_api`), which checks every
//! request against GitHub's published OpenAPI description (`@octokit/openapi`) and records it.
//!
//! - the `changegate` check run: its conclusion for each state, updated in place by its stored id,
//!   annotations in batches of at most 50, output within 65,535 bytes and truncated with a link;
//! - the one PR comment, edited in place (by its stored id, or found by its hidden marker);
//! - publishing skipped when nothing changed;
//! - deployment protection rules: approved, rejected with every reason, a status report while
//!   only time stands in the way and approval when the slot opens (an injected clock), callback
//!   retries with backoff, a callback URL elsewhere refused, redeliveries, the sweeper;
//! - GitHub App authentication: the RS256 JWT, the installation token cached until shortly
//!   before it expires.

use std::sync::Arc;

use changegate_gate::{ChangeState, Status, requirements};
use changegate_server::github_out::app::{AppAuth, Auth, Outgoing};
use changegate_server::github_out::checks::{self, Published};
use changegate_server::github_out::render::{self, FacetEvidence, OUTPUT_LIMIT, Spot};
use changegate_server::github_out::{self as out, protection};
use changegate_server::{AppState, Clock};
use changegate_testkit::both;
use changegate_testkit::fake_github::FakeGitHub;
use changegate_testkit::gate::{SAT, TUE, change, facet, holder, ready, set_status, t};
use changegate_testkit::github_api::{self, protection_rule_requested};
use changegate_testkit::server::{Backend, TestServer, people_policy};
use jiff::SignedDuration;
use serde_json::{Value, json};

const REPO: &str = "acme/chat-backend";
const DETAILS: &str = "https://changegate.example";

struct Env {
    gh: FakeGitHub,
    srv: TestServer,
    state: AppState,
}

fn outgoing(api: &str, auth: Auth) -> Outgoing {
    let mut o = Outgoing::new(api, auth);
    o.base_url = Some(DETAILS.into());
    o.worker.backoff = SignedDuration::from_secs(10);
    o.worker.max_attempts = 4;
    o
}

async fn env_with(backend: Backend, auth: impl FnOnce(&FakeGitHub) -> Auth) -> Env {
    let gh = FakeGitHub::start().await;
    let srv = TestServer::start(backend, people_policy(), t(TUE)).await;
    let o = outgoing(&gh.api, auth(&gh));
    let state = AppState {
        github_out: Some(Arc::new(o)),
        ..AppState::new(
            Arc::new(people_policy()),
            srv.db.clone(),
            Clock::Manual(srv.clock.clone()),
        )
    };
    Env { gh, srv, state }
}

async fn env(backend: Backend) -> Env {
    env_with(backend, |_| Auth::Token("ghp_test".into())).await
}

/// A 40-hex commit id for change `n`.
fn sha(n: u32) -> String {
    format!("{n:0>8}{}", "ab".repeat(16))
}

/// `state` as change `id` of PR `n` with head [`sha`]`(n)` (every approval, attestation and test
/// rebound to that head).
fn as_pr(state: &ChangeState, id: &str, n: u32) -> Value {
    let text = serde_json::to_string(state)
        .unwrap()
        .replace("\"h1\"", &format!("\"{}\"", sha(n)));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["change"]["id"] = json!(id);
    v["change"]["pr_link"] = json!(format!("https://github.com/{REPO}/pull/{n}"));
    v
}

async fn import(e: &Env, v: &Value) -> String {
    let (st, b) = e.srv.post("/api/v1/changes/import", &e.srv.admin, v).await;
    assert_eq!(st, 201, "{b}");
    b["id"].as_str().unwrap().to_string()
}

/// A category-2 change in review (backend-lead and the category's roles missing).
fn in_review() -> ChangeState {
    let mut s = change(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]);
    set_status(&mut s, Status::InReview, t("2026-03-09T10:00:00Z"));
    s
}

fn ready2() -> ChangeState {
    ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]).1
}

fn check_run_bodies(e: &Env) -> Vec<Value> {
    e.gh.rest
        .all_requests()
        .into_iter()
        .filter(|r| r.operation.starts_with("checks/"))
        .map(|r| r.body)
        .collect()
}

both!(check_run_conclusions_follow_the_change_and_update_in_place);
async fn check_run_conclusions_follow_the_change_and_update_in_place(backend: Backend) {
    let e = env(backend).await;
    let id = import(&e, &as_pr(&in_review(), "CR-7", 7)).await;
    let first = checks::publish(&e.state, &id).await.unwrap();
    let Published::Done { check_run, comment } = first else {
        panic!("{first:?}")
    };
    let runs = e.gh.rest.check_runs();
    let run = &runs[&(check_run as u64)];
    assert_eq!(run["conclusion"], "action_required");
    assert_eq!(run["head_sha"], sha(7));
    assert_eq!(run["name"], "changegate");
    assert_eq!(run["details_url"], format!("{DETAILS}/changes/{id}"));
    let summary = run["output"]["summary"].as_str().unwrap();
    assert!(summary.contains("category 2"), "{summary}");
    assert!(
        summary.contains("`backend-lead`") && summary.contains("missing"),
        "{summary}"
    );
    assert!(summary.contains("api-endpoint-added"), "{summary}");
    assert!(summary.contains("### Window"), "{summary}");
    let comments = e.gh.rest.comments(REPO, 7);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0]["body"]
            .as_str()
            .unwrap()
            .starts_with(&render::marker(&id))
    );

    // Nothing changed: nothing sent.
    let before = e.gh.rest.all_requests().len();
    assert_eq!(
        checks::publish(&e.state, &id).await.unwrap(),
        Published::Unchanged
    );
    assert_eq!(e.gh.rest.all_requests().len(), before);

    // Every required role approves through the API: success, the same check run and comment.
    let current = e.srv.db.change(&id).await.unwrap().unwrap().value;
    let roles = requirements(&people_policy(), &current).unwrap().roles;
    for r in &roles {
        let tok = e.srv.token(holder(r)).await;
        let (st, b) = e
            .srv
            .post(
                &format!("/api/v1/changes/{id}/approvals"),
                &tok,
                &json!({"role": r}),
            )
            .await;
        assert_eq!(st, 201, "{r}: {b}");
    }
    let again = checks::publish(&e.state, &id).await.unwrap();
    assert_eq!(
        again,
        Published::Done { check_run, comment },
        "updated in place"
    );
    let run = &e.gh.rest.check_runs()[&(check_run as u64)];
    assert_eq!(run["conclusion"], "success", "{}", run["output"]["summary"]);
    assert_eq!(e.gh.rest.requests("checks/create").len(), 1);
    assert_eq!(e.gh.rest.requests("checks/update").len(), 1);
    assert_eq!(e.gh.rest.comments(REPO, 7).len(), 1, "one comment, edited");
    assert_eq!(e.gh.rest.requests("issues/update-comment").len(), 1);
    let edited = e.gh.rest.comments(REPO, 7)[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!edited.contains("| missing |"), "{edited}");

    // A cancelled change: failure.
    let mut cancelled = in_review();
    set_status(&mut cancelled, Status::Cancelled, t("2026-03-09T12:00:00Z"));
    let cid = import(&e, &as_pr(&cancelled, "CR-8", 8)).await;
    let Published::Done { check_run, .. } = checks::publish(&e.state, &cid).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        e.gh.rest.check_runs()[&(check_run as u64)]["conclusion"],
        "failure"
    );
    // An approved change outside its window may still merge: success (the protection rule
    // holds the deployment).
    e.srv.set_now(t(SAT));
    let rid = import(&e, &as_pr(&ready2(), "CR-9", 9)).await;
    let Published::Done { check_run, .. } = checks::publish(&e.state, &rid).await.unwrap() else {
        panic!()
    };
    let run = &e.gh.rest.check_runs()[&(check_run as u64)];
    assert_eq!(run["conclusion"], "success");
    assert!(
        run["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("Next slot"),
        "{}",
        run["output"]["summary"]
    );
    e.gh.rest.assert_conforming();
}

both!(annotations_go_in_batches_of_50_and_output_is_truncated_with_a_link);
async fn annotations_go_in_batches_of_50_and_output_is_truncated_with_a_link(backend: Backend) {
    let e = env(backend).await;
    let id = import(&e, &as_pr(&in_review(), "CR-11", 11)).await;
    let state: ChangeState = {
        let v = e.srv.db.change(&id).await.unwrap().unwrap();
        v.value
    };
    let facets = vec![FacetEvidence {
        kind: "api-endpoint-added".into(),
        category: 2,
        roles: vec!["backend-lead".into()],
        details: "a new endpoint".into(),
        evidence: (1..=120)
            .map(|i| Spot {
                path: format!("src/routes/r{i}.rs"),
                line: Some(i),
                head: true,
                snippet: Some("x".repeat(1000)),
            })
            .collect(),
    }];
    let world = e.srv.db.world().await.unwrap().value;
    let d = changegate_gate::decide(&people_policy(), &state, &world, t(TUE));
    let link = format!("{DETAILS}/changes/{id}");
    let report = render::render(&state, &d, &facets, Some(&link));
    assert!(report.text.len() <= OUTPUT_LIMIT && report.summary.len() <= OUTPUT_LIMIT);
    assert!(
        report.text.ends_with(&link),
        "truncated with a link to the dashboard"
    );
    let o = e.state.github_out.clone().unwrap();
    let Published::Done { check_run, .. } =
        checks::publish_report(&e.state, &o, &id, REPO, 11, &report)
            .await
            .unwrap()
    else {
        panic!()
    };
    let bodies = check_run_bodies(&e);
    let sizes: Vec<usize> = bodies
        .iter()
        .map(|b| b["output"]["annotations"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![50, 50, 20]);
    assert_eq!(e.gh.rest.annotations(check_run as u64).len(), 120);
    let first = &e.gh.rest.annotations(check_run as u64)[0];
    assert_eq!(first["path"], "src/routes/r1.rs");
    assert_eq!(first["start_line"], 1);
    assert_eq!(first["annotation_level"], "warning");
    let text = e.gh.rest.check_runs()[&(check_run as u64)]["output"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.len() <= OUTPUT_LIMIT && text.ends_with(&link));
    // The comment holds the same, within GitHub's limit.
    let body = e.gh.rest.comments(REPO, 11)[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body.len() <= render::COMMENT_LIMIT);
    // A new state of the same head: updated in place, annotations not sent again.
    let d2 = changegate_gate::decide(&people_policy(), &state, &world, t(SAT));
    let report2 = render::render(&state, &d2, &facets, Some(&link));
    checks::publish_report(&e.state, &o, &id, REPO, 11, &report2)
        .await
        .unwrap();
    assert_eq!(e.gh.rest.annotations(check_run as u64).len(), 120);
    let last = e.gh.rest.requests("checks/update").pop().unwrap();
    assert!(last.body["output"].get("annotations").is_none());
    e.gh.rest.assert_conforming();
}

both!(the_comment_is_found_by_its_marker_and_edited_not_duplicated);
async fn the_comment_is_found_by_its_marker_and_edited_not_duplicated(backend: Backend) {
    let e = env(backend).await;
    let id = import(&e, &as_pr(&in_review(), "CR-12", 12)).await;
    // Someone else's comments, then changegate's from an earlier life (no stored id).
    let http = reqwest::Client::new();
    for body in [
        "LGTM".to_string(),
        format!("{}\nold report", render::marker(&id)),
    ] {
        let r = http
            .post(format!("{}/repos/{REPO}/issues/12/comments", e.gh.api))
            .bearer_auth("ghp_test")
            .json(&json!({"body": body}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    checks::publish(&e.state, &id).await.unwrap();
    let comments = e.gh.rest.comments(REPO, 12);
    assert_eq!(comments.len(), 2, "no new comment");
    assert_eq!(comments[0]["body"], "LGTM");
    assert!(
        comments[1]["body"]
            .as_str()
            .unwrap()
            .contains("### Approvals")
    );
    assert_eq!(
        e.gh.rest.requests("issues/create-comment").len(),
        2,
        "only the test's two"
    );
    e.gh.rest.assert_conforming();
}

fn payload(e: &Env, run_id: u64, n: u32) -> Value {
    protection_rule_requested(&e.gh.api, REPO, run_id, "production", &sha(n), 555)
}

async fn gate_rows(e: &Env) -> Vec<changegate_store::GithubGate> {
    e.srv.db.list_github_gates(100).await.unwrap()
}

both!(a_protection_rule_is_approved_or_rejected_with_every_reason);
async fn a_protection_rule_is_approved_or_rejected_with_every_reason(backend: Backend) {
    let e = env(backend).await;
    let ok = import(&e, &as_pr(&ready2(), "CR-20", 20)).await;
    out::protection_rule_requested(&e.state, "guid-20", &payload(&e, 9020, 20))
        .await
        .unwrap();
    let reviews = e.gh.rest.reviews();
    assert_eq!(reviews.len(), 1);
    let (repo, run, body) = &reviews[0];
    assert_eq!((repo.as_str(), *run), (REPO, 9020));
    assert_eq!(body["state"], "approved");
    assert_eq!(body["environment_name"], "production");
    assert!(body["comment"].as_str().unwrap().contains(&ok));
    // A redelivery (same GUID) is a no-op.
    out::protection_rule_requested(&e.state, "guid-20", &payload(&e, 9020, 20))
        .await
        .unwrap();
    assert_eq!(e.gh.rest.reviews().len(), 1);
    // In review: rejected, with every denying reason.
    import(&e, &as_pr(&in_review(), "CR-21", 21)).await;
    out::protection_rule_requested(&e.state, "guid-21", &payload(&e, 9021, 21))
        .await
        .unwrap();
    let (_, _, body) = e.gh.rest.reviews().pop().unwrap();
    assert_eq!(body["state"], "rejected");
    let c = body["comment"].as_str().unwrap();
    assert!(
        c.contains("approval-missing") && c.contains("state-invalid"),
        "{c}"
    );
    // No change for the commit: rejected.
    out::protection_rule_requested(&e.state, "guid-22", &payload(&e, 9022, 22))
        .await
        .unwrap();
    let (_, _, body) = e.gh.rest.reviews().pop().unwrap();
    assert_eq!(body["state"], "rejected");
    assert!(
        body["comment"]
            .as_str()
            .unwrap()
            .contains("no change request")
    );
    let rows = gate_rows(&e).await;
    let status: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(status, vec!["rejected", "rejected", "approved"]);
    // Every answer is in the audit trail as a gate decision.
    let events = e
        .srv
        .db
        .store()
        .events(&changegate_store::EventFilter {
            kind: Some(changegate_audit::kinds::GATE_DECISION.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].record.event.details["environment"], "production");
    e.gh.rest.assert_conforming();
}

both!(outside_the_window_a_status_report_then_approval_when_the_slot_opens);
async fn outside_the_window_a_status_report_then_approval_when_the_slot_opens(backend: Backend) {
    let e = env(backend).await;
    e.srv.set_now(t(SAT));
    let id = import(&e, &as_pr(&ready2(), "CR-30", 30)).await;
    out::protection_rule_requested(&e.state, "guid-30", &payload(&e, 9030, 30))
        .await
        .unwrap();
    let reviews = e.gh.rest.reviews();
    assert_eq!(reviews.len(), 1);
    let report = &reviews[0].2;
    assert!(
        report.get("state").is_none(),
        "a status report, not a rejection: {report}"
    );
    let text = report["comment"].as_str().unwrap();
    assert!(text.contains("waiting") && text.contains(&id), "{text}");
    let row = gate_rows(&e).await.pop().unwrap();
    assert_eq!(row.status, "pending");
    let slot = row.due_at;
    assert!(slot > t(SAT), "due at the next slot");
    assert!(
        text.contains(&slot.to_string()),
        "the report names the slot {slot}: {text}"
    );
    // Before the slot: nothing happens, however often the scheduler runs.
    e.srv
        .set_now(slot.checked_sub(SignedDuration::from_secs(1)).unwrap());
    assert_eq!(protection::run_once(&e.state).await.unwrap(), 0);
    assert_eq!(e.gh.rest.reviews().len(), 1);
    // A restart: a new state (another replica's scheduler) over the same database.
    let other = AppState {
        github_out: Some(Arc::new({
            let mut o = outgoing(&e.gh.api, Auth::Token("ghp_test".into()));
            o.worker.owner = "replica-2".into();
            o
        })),
        ..AppState::new(
            Arc::new(people_policy()),
            e.srv.db.clone(),
            Clock::Manual(e.srv.clock.clone()),
        )
    };
    e.srv.set_now(slot);
    assert_eq!(protection::run_once(&other).await.unwrap(), 1);
    let (_, _, body) = e.gh.rest.reviews().pop().unwrap();
    assert_eq!(body["state"], "approved", "{body}");
    assert_eq!(e.gh.rest.reviews().len(), 2);
    assert_eq!(gate_rows(&e).await[0].status, "approved");
    assert_eq!(
        protection::run_once(&e.state).await.unwrap(),
        0,
        "answered once"
    );
    e.gh.rest.assert_conforming();
}

both!(a_failed_callback_is_retried_with_backoff);
async fn a_failed_callback_is_retried_with_backoff(backend: Backend) {
    let e = env(backend).await;
    import(&e, &as_pr(&ready2(), "CR-40", 40)).await;
    e.gh.rest
        .fail_next("actions/review-custom-gates-for-run", 502, 2);
    out::protection_rule_requested(&e.state, "guid-40", &payload(&e, 9040, 40))
        .await
        .unwrap();
    let row = gate_rows(&e).await.pop().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(row.last_error.as_deref().unwrap().contains("502"));
    let first_delay = row.due_at.duration_since(t(TUE));
    assert_eq!(first_delay, SignedDuration::from_secs(10));
    assert_eq!(
        protection::run_once(&e.state).await.unwrap(),
        0,
        "not due yet"
    );
    e.srv.set_now(row.due_at);
    protection::run_once(&e.state).await.unwrap();
    let row2 = gate_rows(&e).await.pop().unwrap();
    assert_eq!(row2.attempts, 2);
    assert_eq!(
        row2.due_at.duration_since(row.due_at),
        SignedDuration::from_secs(20),
        "doubled"
    );
    e.srv.set_now(row2.due_at);
    protection::run_once(&e.state).await.unwrap();
    let row3 = gate_rows(&e).await.pop().unwrap();
    assert_eq!(row3.status, "approved");
    let calls = e.gh.rest.requests("actions/review-custom-gates-for-run");
    assert_eq!(
        calls.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![502, 502, 204]
    );
    e.gh.rest.assert_conforming();
}

both!(a_callback_url_elsewhere_is_never_called_and_the_sweeper_rejects_old_waits);
async fn a_callback_url_elsewhere_is_never_called_and_the_sweeper_rejects_old_waits(
    backend: Backend,
) {
    let e = env(backend).await;
    import(&e, &as_pr(&ready2(), "CR-50", 50)).await;
    let mut p = payload(&e, 9050, 50);
    p["deployment_callback_url"] = json!(
        "https://evil.example/repos/acme/chat-backend/actions/runs/9050/deployment_protection_rule"
    );
    out::protection_rule_requested(&e.state, "guid-50", &p)
        .await
        .unwrap();
    let mut q = payload(&e, 9051, 50);
    q["deployment_callback_url"] = json!(format!(
        "{}/repos/other/repo/actions/runs/9051/deployment_protection_rule",
        e.gh.api
    ));
    out::protection_rule_requested(&e.state, "guid-51", &q)
        .await
        .unwrap();
    assert!(gate_rows(&e).await.is_empty());
    assert!(e.gh.rest.all_requests().is_empty());

    // The sweeper: a wait longer than max_wait is rejected.
    let mut o = outgoing(&e.gh.api, Auth::Token("ghp_test".into()));
    o.max_wait = SignedDuration::from_hours(1);
    let short = AppState {
        github_out: Some(Arc::new(o)),
        ..e.state.clone()
    };
    e.srv.set_now(t(SAT));
    out::protection_rule_requested(&short, "guid-52", &payload(&e, 9052, 50))
        .await
        .unwrap();
    let row = gate_rows(&e).await.pop().unwrap();
    assert_eq!(row.status, "pending");
    assert!(row.due_at <= t(SAT).checked_add(SignedDuration::from_secs(3601)).unwrap());
    e.srv.set_now(row.due_at);
    protection::run_once(&short).await.unwrap();
    let (_, _, body) = e.gh.rest.reviews().pop().unwrap();
    assert_eq!(body["state"], "rejected");
    assert!(
        body["comment"].as_str().unwrap().contains("longer than"),
        "{body}"
    );
    e.gh.rest.assert_conforming();
}

both!(as_a_github_app_installation_tokens_are_cached_until_shortly_before_expiry);
async fn as_a_github_app_installation_tokens_are_cached_until_shortly_before_expiry(
    backend: Backend,
) {
    let e = env_with(backend, |gh| {
        gh.rest
            .expect_app(77, github_api::TEST_APP_PUBLIC_KEY, 555, &[REPO]);
        Auth::App(AppAuth::from_pem(77, github_api::TEST_APP_KEY.as_bytes()).unwrap())
    })
    .await;
    let id = import(&e, &as_pr(&in_review(), "CR-60", 60)).await;
    checks::publish(&e.state, &id).await.unwrap();
    assert_eq!(e.gh.rest.requests("apps/get-repo-installation").len(), 1);
    let tokens = e.gh.rest.tokens();
    assert_eq!(tokens.len(), 1);
    let create = e.gh.rest.requests("checks/create").pop().unwrap();
    assert_eq!(
        create.authorization.as_deref(),
        Some(format!("Bearer {}", tokens[0].1).as_str())
    );
    // A JWT went only to the App endpoints.
    let jwt =
        e.gh.rest
            .requests("apps/create-installation-access-token")
            .pop()
            .unwrap();
    assert_eq!(
        jwt.authorization.as_deref().unwrap().matches('.').count(),
        2
    );
    // Half an hour later: the same token.
    e.srv
        .set_now(t(TUE).checked_add(SignedDuration::from_mins(30)).unwrap());
    out::protection_rule_requested(&e.state, "guid-60", &payload(&e, 9060, 60))
        .await
        .unwrap();
    assert_eq!(e.gh.rest.tokens().len(), 1);
    // 56 minutes after it was issued (it lives an hour; renewed 5 minutes before): a new one.
    e.srv
        .set_now(t(TUE).checked_add(SignedDuration::from_mins(56)).unwrap());
    out::protection_rule_requested(&e.state, "guid-61", &payload(&e, 9061, 60))
        .await
        .unwrap();
    assert_eq!(e.gh.rest.tokens().len(), 2);
    let review =
        e.gh.rest
            .requests("actions/review-custom-gates-for-run")
            .pop()
            .unwrap();
    assert_eq!(
        review.authorization.as_deref(),
        Some(format!("Bearer {}", e.gh.rest.tokens()[1].1).as_str())
    );
    e.gh.rest.assert_conforming();
}

both!(an_installation_token_github_refuses_is_dropped_and_minted_again_once);
async fn an_installation_token_github_refuses_is_dropped_and_minted_again_once(backend: Backend) {
    let e = env_with(backend, |gh| {
        gh.rest
            .expect_app(77, github_api::TEST_APP_PUBLIC_KEY, 555, &[REPO]);
        Auth::App(AppAuth::from_pem(77, github_api::TEST_APP_KEY.as_bytes()).unwrap())
    })
    .await;
    let id = import(&e, &as_pr(&in_review(), "CR-62", 62)).await;
    checks::publish(&e.state, &id).await.unwrap();
    assert_eq!(e.gh.rest.tokens().len(), 1);
    // GitHub revokes the token well before its `expires_at` (the cache would still use it).
    e.gh.rest.revoke_tokens();
    let first = e.gh.rest.tokens()[0].1.clone();
    let before = e.gh.rest.all_requests().len();
    out::protection_rule_requested(&e.state, "guid-62", &payload(&e, 9062, 62))
        .await
        .unwrap();
    // The call bearing the revoked token is answered 401; a new token is minted and the same
    // call made again with it, once, and it is answered.
    let after: Vec<_> = e.gh.rest.all_requests().into_iter().skip(before).collect();
    let refused: Vec<_> = after.iter().filter(|r| r.status == 401).collect();
    assert_eq!(refused.len(), 1, "{after:#?}");
    assert_eq!(
        refused[0].authorization.as_deref(),
        Some(format!("Bearer {first}").as_str())
    );
    let tokens = e.gh.rest.tokens();
    assert_eq!(tokens.len(), 2, "minted again, once");
    let retried: Vec<_> = after
        .iter()
        .filter(|r| r.path == refused[0].path && r.status != 401)
        .collect();
    assert_eq!(retried.len(), 1, "{after:#?}");
    assert_eq!(
        retried[0].authorization.as_deref(),
        Some(format!("Bearer {}", tokens[1].1).as_str())
    );
    assert_eq!(
        e.gh.rest.reviews().len(),
        1,
        "the protection rule was answered"
    );
    // The new token is the cached one now: the next call uses it without minting.
    checks::publish(&e.state, &id).await.unwrap();
    assert_eq!(e.gh.rest.tokens().len(), 2);
    // GitHub refusing every installation token (the App uninstalled): one new mint, one more
    // refusal, and that is the answer (no loop of mints).
    e.gh.rest.refuse_tokens(true);
    let before = e.gh.rest.all_requests().len();
    out::protection_rule_requested(&e.state, "guid-63", &payload(&e, 9063, 62))
        .await
        .unwrap();
    let after: Vec<_> = e.gh.rest.all_requests().into_iter().skip(before).collect();
    assert_eq!(
        after.iter().filter(|r| r.status == 401).count(),
        2,
        "{after:#?}"
    );
    assert_eq!(e.gh.rest.tokens().len(), 3, "one mint for the refusal");
    assert_eq!(e.gh.rest.reviews().len(), 1, "not answered this time");
    e.gh.rest.assert_conforming();
}

#[test]
fn the_stand_in_refuses_what_github_would() {
    // A stand-in that accepted anything could not catch a request GitHub refuses.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let gh = FakeGitHub::start().await;
        let http = reqwest::Client::new();
        let bad = http
            .post(format!("{}/repos/{REPO}/check-runs", gh.api))
            .bearer_auth("x")
            .json(&json!({"name": "changegate", "head_sha": "a", "conclusion": "maybe", "output": {"title": "t", "summary": "s".repeat(65_536)}}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422);
        let r = gh.rest.rejections();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].errors.len(), 2, "{:?}", r[0].errors);
        let nowhere = http.post(format!("{}/repos/{REPO}/statuses/abc", gh.api)).bearer_auth("x").json(&json!({})).send().await.unwrap();
        assert_eq!(nowhere.status(), 404);
        assert_eq!(gh.rest.rejections().len(), 2);
    });
}

both!(annotations_come_from_the_servers_own_classification_of_the_commits);
async fn annotations_come_from_the_servers_own_classification_of_the_commits(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let r = changegate_testkit::GitRepo::init_at(&root.path().join(REPO));
    let manifest =
        |v: &str| format!("{{\n  \"dependencies\": {{\n    \"express\": \"{v}\"\n  }}\n}}\n");
    r.write("package.json", &manifest("4.19.2"));
    let base = r.commit("base");
    r.write("package.json", &manifest("5.0.0"));
    let head = r.commit("bump express");
    let gh = FakeGitHub::start().await;
    let srv = TestServer::start_with(
        backend,
        people_policy(),
        t(TUE),
        Some(root.path().to_path_buf()),
        None,
    )
    .await;
    let state = AppState {
        repo_root: Some(root.path().to_path_buf()),
        github_out: Some(Arc::new(outgoing(&gh.api, Auth::Token("ghp_test".into())))),
        ..AppState::new(
            Arc::new(people_policy()),
            srv.db.clone(),
            Clock::Manual(srv.clock.clone()),
        )
    };
    let alice = srv.token("alice").await;
    let (st, c) = srv
        .post(
            "/api/v1/changes",
            &alice,
            &json!({"repository": REPO, "base_commit": base, "head_commit": head,
                    "pr_link": format!("https://github.com/{REPO}/pull/70"), "title": "bump express", "submit": true}),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let id = c["id"].as_str().unwrap();
    out::change_updated(&state, id).await;
    let runs = gh.rest.check_runs();
    let (run_id, run) = runs.iter().next().expect("a check run");
    assert_eq!(run["head_sha"], head);
    let notes = gh.rest.annotations(*run_id);
    assert!(!notes.is_empty(), "{run}");
    assert!(
        notes.iter().all(|a| a["path"] == "package.json"),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|a| a["start_line"].as_u64().unwrap() > 1),
        "at the evidence line: {notes:?}"
    );
    let summary = run["output"]["summary"].as_str().unwrap();
    assert!(summary.contains("`package.json:"), "{summary}");
    gh.rest.assert_conforming();
}
