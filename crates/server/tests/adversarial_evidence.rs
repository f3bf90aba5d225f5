//! Issue 13, "CI-evidence items only from an integration token or with a verifiable link", tried
//! as an attacker would, on SQLite and PostgreSQL, against a fake GitHub on loopback that the
//! server's real client talks to. A person's `tests-pass` counts only with a link to a GitHub
//! Actions run the server looked up itself: completed, successful, of the change's head commit
//! and repository; the attestation records what the server saw (`verified-link`, run id,
//! conclusion). Every other attempt is refused with its code and nothing stored changes.

use changegate_gate::{ChangeState, Status};
use changegate_testkit::both;
use changegate_testkit::fake_github::{FakeGitHub, unreachable_api, workflow_run};
use changegate_testkit::gate::{TUE, change, facet, set_status, t};
use changegate_testkit::server::{Backend, TestServer, people_policy};
use serde_json::{Value, json};

const REPO: &str = "acme/chat-backend";
const HEAD: &str = "h1";

/// A category-2 change by alice, in review (head `h1` of acme/chat-backend).
fn in_review() -> ChangeState {
    let mut s = change(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]);
    set_status(&mut s, Status::InReview, t("2026-03-10T10:00:00Z"));
    s
}

async fn server(backend: Backend, api: String) -> (TestServer, String) {
    let srv = TestServer::start_with(backend, people_policy(), t(TUE), None, Some(api)).await;
    let (st, b) = srv
        .post(
            "/api/v1/changes/import",
            &srv.admin,
            &serde_json::to_value(in_review()).unwrap(),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    (srv, id)
}

async fn snapshot(srv: &TestServer, id: &str) -> (u64, Value) {
    let (st, c) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    assert_eq!(st, 200, "{c}");
    (srv.db.store().head().await.unwrap().size, c)
}

fn attest(link: Option<&str>) -> Value {
    json!({"item": "tests-pass", "evidence": link})
}

/// `POST path` is refused with (`status`, `code`) and nothing stored changed.
async fn refused(
    srv: &TestServer,
    token: &str,
    id: &str,
    path: &str,
    body: Value,
    status: u16,
    code: &str,
) -> Value {
    let before = snapshot(srv, id).await;
    let (st, b) = srv.post(path, token, &body).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (status, Some(code)),
        "{body}: {b}"
    );
    assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()), "{b}");
    assert_eq!(snapshot(srv, id).await, before, "nothing may be stored");
    b
}

fn attestations(path: &str, id: &str) -> String {
    format!("/api/v1/changes/{id}/{path}")
}

both!(a_verified_run_link_counts_and_records_its_provenance);
async fn a_verified_run_link_counts_and_records_its_provenance(backend: Backend) {
    let gh = FakeGitHub::start().await;
    gh.add(REPO, 4242, HEAD, "completed", Some("success"));
    let (srv, id) = server(backend, gh.api.clone()).await;
    let mallory = srv.token("mallory").await;
    let link = gh.link(REPO, 4242);
    let (st, b) = srv
        .post(
            &attestations("attestations", &id),
            &mallory,
            &attest(Some(&link)),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(gh.requests(), 1);
    let a = &b["attestations"][0];
    assert_eq!(a["person"], "mallory");
    assert_eq!(a["evidence"], link.as_str());
    assert_eq!(a["verified"]["via"], "verified-link");
    assert_eq!(a["verified"]["provider"], "github-actions");
    assert_eq!(a["verified"]["run_id"], 4242);
    assert_eq!(a["verified"]["conclusion"], "success");
    assert_eq!(a["verified"]["head_sha"], HEAD);
    assert_eq!(a["verified"]["repository"], REPO);
    // The audit event says how the authority was held.
    let events = srv
        .db
        .store()
        .events(&changegate_store::EventFilter {
            kind: Some(changegate_audit::kinds::ATTESTATION.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let auth = &events.last().unwrap().record.event.details["authority"];
    assert_eq!(auth["operation"], "attest-ci-evidence");
    assert_eq!(auth["via"], "verified-link");
    assert_eq!(auth["run_id"], 4242);
    // The same through `/ops`.
    gh.add(REPO, 4243, HEAD, "completed", Some("success"));
    let sam = srv.token("sam").await;
    let (st, b) = srv
        .post(
            &attestations("ops", &id),
            &sam,
            &json!({"op": "attest", "person": "sam", "item": "tests-pass", "evidence": gh.link(REPO, 4243)}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["attestations"][1]["verified"]["run_id"], 4243);
}

both!(every_unverified_ci_claim_is_refused_and_stores_nothing);
async fn every_unverified_ci_claim_is_refused_and_stores_nothing(backend: Backend) {
    let gh = FakeGitHub::start().await;
    gh.add(REPO, 1, "h0", "completed", Some("success"));
    gh.add(REPO, 2, HEAD, "completed", Some("failure"));
    gh.add(REPO, 3, HEAD, "in_progress", None);
    gh.add(REPO, 4, HEAD, "completed", Some("cancelled"));
    // GitHub answering, for a link to acme/chat-backend, a run of another repository.
    gh.add_run(
        REPO,
        5,
        workflow_run(
            &gh.api,
            "mallory/fork",
            5,
            HEAD,
            "completed",
            Some("success"),
        ),
    );
    gh.add("acme/other", 6, HEAD, "completed", Some("success"));
    let (srv, id) = server(backend, gh.api.clone()).await;
    let mallory = srv.token("mallory").await;
    let path = attestations("attestations", &id);
    // No link: only an integration may.
    let b = refused(
        &srv,
        &mallory,
        &id,
        &path,
        attest(None),
        403,
        "integration-required",
    )
    .await;
    assert!(b["message"].as_str().unwrap().contains("verified"), "{b}");
    // Links the server cannot verify are never followed.
    for link in [
        "https://ci.example/runs/1".to_string(),
        "https://github.com/acme/chat-backend/actions/runs/1".to_string(),
        format!("{}/acme/chat-backend/pull/1", gh.api),
        format!("{}/acme/chat-backend/actions/runs/1/jobs/9", gh.api),
    ] {
        refused(
            &srv,
            &mallory,
            &id,
            &path,
            attest(Some(&link)),
            403,
            "ci-link-unverifiable",
        )
        .await;
    }
    // A run link of another repository than the change's: refused before asking GitHub.
    refused(
        &srv,
        &mallory,
        &id,
        &path,
        attest(Some(&gh.link("acme/other", 6))),
        403,
        "ci-run-mismatch",
    )
    .await;
    assert_eq!(gh.requests(), 0);
    // Wrong commit; GitHub's run of another repository.
    for run in [1, 5] {
        refused(
            &srv,
            &mallory,
            &id,
            &path,
            attest(Some(&gh.link(REPO, run))),
            403,
            "ci-run-mismatch",
        )
        .await;
    }
    // Failed, still running, cancelled.
    for run in [2, 3, 4] {
        refused(
            &srv,
            &mallory,
            &id,
            &path,
            attest(Some(&gh.link(REPO, run))),
            403,
            "ci-run-not-successful",
        )
        .await;
    }
    // GitHub knows no such run.
    refused(
        &srv,
        &mallory,
        &id,
        &path,
        attest(Some(&gh.link(REPO, 99))),
        403,
        "ci-run-not-found",
    )
    .await;
    // A body claiming the verification itself.
    let forged = json!({
        "op": "attest", "person": "mallory", "item": "tests-pass", "evidence": "https://ci.example/1",
        "verified": {"via": "verified-link", "provider": "github-actions", "repository": REPO, "run_id": 7,
                     "head_sha": HEAD, "status": "completed", "conclusion": "success", "url": "https://ci.example/1"},
    });
    refused(
        &srv,
        &mallory,
        &id,
        &attestations("ops", &id),
        forged,
        403,
        "verification-not-allowed",
    )
    .await;
    // An integration with `ci-evidence` needs no link check (it observed the run itself).
    let before = gh.requests();
    let ci = srv
        .integration_token("ci", &[changegate_server::token::Scope::CiEvidence])
        .await;
    let (st, b) = srv
        .post(&path, &ci, &attest(Some("https://ci.example/runs/1")))
        .await;
    assert_eq!(st, 201, "{b}");
    assert!(b["attestations"][0].get("verified").is_none(), "{b}");
    assert_eq!(gh.requests(), before);
}

both!(an_unreachable_github_is_a_502_naming_github);
async fn an_unreachable_github_is_a_502_naming_github(backend: Backend) {
    let api = unreachable_api().await;
    let (srv, id) = server(backend, api.clone()).await;
    let mallory = srv.token("mallory").await;
    let link = format!("{api}/{REPO}/actions/runs/1");
    let b = refused(
        &srv,
        &mallory,
        &id,
        &attestations("attestations", &id),
        attest(Some(&link)),
        502,
        "github-unreachable",
    )
    .await;
    assert!(b["message"].as_str().unwrap().contains("GitHub"), "{b}");
    assert_eq!(b["location"], "body `evidence`");
}
