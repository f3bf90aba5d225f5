//! `GET /api/v1/reports/{monthly,quarterly}/…` and sign-off over the API, on SQLite and
//! PostgreSQL: the report is computed from the log (seeded here at its own times), every format
//! is served, bad periods and formats are 400s naming the input, and only a holder of a reviewer
//! role signs, as the token's person (a body cannot name someone else).

#[path = "../../report/tests/history/mod.rs"]
mod history;

use changegate_testkit::both;
use changegate_testkit::server::{Backend, TestServer, people_policy};
use serde_json::json;

async fn seeded(backend: Backend) -> (TestServer, history::History) {
    let srv = TestServer::start(
        backend,
        people_policy(),
        "2027-01-05T10:00:00Z".parse().unwrap(),
    )
    .await;
    let h = history::generate(3, 1);
    let store = srv.db.store();
    for chunk in h.events.chunks(500) {
        let mut tx = store.begin().await.unwrap();
        for (at, ev) in chunk {
            tx.append_audit_at(ev.clone(), *at).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    (srv, h)
}

both!(reports_are_served_and_signed_by_role_holders);
async fn reports_are_served_and_signed_by_role_holders(backend: Backend) {
    let (srv, h) = seeded(backend).await;
    let alice = srv.token("alice").await;
    let (st, r) = srv.get("/api/v1/reports/monthly/2026-11", &alice).await;
    assert_eq!(st, 200, "{r}");
    let m: changegate_report::Period = "2026-11".parse().unwrap();
    let e = history::expected(&h, m.start(), m.end());
    let deployments = r["body"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "deployments")
        .unwrap()["value"]
        .as_f64();
    assert_eq!(deployments, Some(e.deployments as f64));
    assert!(r["proof"]["checkpoint"]["size"].as_u64().unwrap() as usize >= h.events.len());
    let (st, q) = srv.get("/api/v1/reports/quarterly/2026-Q4", &alice).await;
    assert_eq!(st, 200);
    assert!(q["body"]["quarterly"]["approval_by_role"].is_array());
    // Other formats.
    for (f, needle) in [
        ("markdown", "| Rollback rate |"),
        ("html", "<svg"),
        ("csv", "change_id,category"),
    ] {
        let resp = srv
            .http
            .get(format!(
                "{}/api/v1/reports/monthly/2026-11?format={f}",
                srv.base
            ))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{f}");
        assert!(resp.text().await.unwrap().contains(needle), "{f}");
    }
    let resp = srv
        .http
        .get(format!(
            "{}/api/v1/reports/monthly/2026-11?format=xlsx",
            srv.base
        ))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(resp.bytes().await.unwrap().starts_with(b"PK"));
    // Bad input: 400 naming the place; no token: 401.
    let (st, b) = srv.get("/api/v1/reports/monthly/2026-13", &alice).await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid-path")), "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("report-period-invalid")
    );
    let (st, b) = srv.get("/api/v1/reports/monthly/2026-Q4", &alice).await;
    assert_eq!(st, 400, "{b}");
    let (st, b) = srv
        .get("/api/v1/reports/monthly/2026-11?format=pdf", &alice)
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("invalid-query")),
        "{b}"
    );
    let (st, _) = srv
        .req(
            reqwest::Method::GET,
            "/api/v1/reports/monthly/2026-11",
            None,
            None,
        )
        .await;
    assert_eq!(st, 401);

    // Sign-off: a holder of the role, as the token's person.
    let sec = srv.token("sec").await;
    let tara = srv.token("tara").await; // token creation is logged too: issue them first
    let size_before = srv.db.store().head().await.unwrap().size;
    let (st, b) = srv
        .post(
            "/api/v1/reports/monthly/2026-11/signoffs",
            &sec,
            &json!({"role": "security-lead"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["person"], "sec");
    assert_eq!(b["digest"], r["digest"], "the digest of the report served");
    assert_eq!(
        b["missing"],
        json!(["engineering-manager", "compliance-officer"])
    );
    assert_eq!(srv.db.store().head().await.unwrap().size, size_before + 1);
    let (_, again) = srv.get("/api/v1/reports/monthly/2026-11", &alice).await;
    assert_eq!(again["signoffs"]["signed"][0]["person"], "sec");
    assert_eq!(again["signoffs"]["signed"][0]["role"], "security-lead");
    // Not a holder: 403, nothing recorded.
    let (st, b) = srv
        .post(
            "/api/v1/reports/monthly/2026-11/signoffs",
            &alice,
            &json!({"role": "security-lead"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("report-signer-unauthorized")),
        "{b}"
    );
    // A role that does not review this report: 400.
    let (st, b) = srv
        .post(
            "/api/v1/reports/monthly/2026-11/signoffs",
            &tara,
            &json!({"role": "tech-architect"}),
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (400, Some("unknown-role")), "{b}");
    // The body cannot name the signer.
    let (st, _) = srv
        .post(
            "/api/v1/reports/monthly/2026-11/signoffs",
            &alice,
            &json!({"role": "security-lead", "person": "sec"}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(srv.db.store().head().await.unwrap().size, size_before + 1);
    // The quarterly review by its reviewer.
    let (st, b) = srv
        .post(
            "/api/v1/reports/quarterly/2026-Q4/signoffs",
            &tara,
            &json!({"role": "tech-architect"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["missing"], json!(["backend-lead"]));
}
