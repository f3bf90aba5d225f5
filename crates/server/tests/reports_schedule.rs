//! Issue 17, "generated on a schedule (first day of the month / quarter) by the server and
//! notified", on SQLite and PostgreSQL, with an injected clock: the previous month's report is
//! generated on the first of the month (a server that starts later catches up at once), the
//! quarter's on the quarter's first day, each exactly once however often and by however many
//! replicas the scheduler runs; it is stored (the API serves it and sign-off signs its digest and
//! checkpoint) and one `report-generated` notification per report is queued for the channel the
//! policy routes it to.

use std::collections::BTreeSet;
use std::sync::Arc;

use changegate_audit::AuditEvent;
use changegate_server::reports_schedule::{self, run_once};
use changegate_server::{AppState, Clock};
use changegate_store::EventFilter;
use changegate_testkit::both;
use changegate_testkit::gate::t;
use changegate_testkit::server::{Backend, TestServer, people_policy};
use serde_json::json;

/// A deployed change at `at`.
async fn deploy(srv: &TestServer, id: &str, at: &str) {
    let store = srv.db.store();
    let mut tx = store.begin().await.unwrap();
    let at = t(at);
    let commit = format!("{:040x}", id.len() * 7919);
    for (kind, min) in [
        ("change.created", 0),
        ("gate.decision", 1),
        ("deployment.start", 2),
        ("deployment.finish", 30),
    ] {
        let mut e = AuditEvent::new(kind, "alice")
            .change(id)
            .category("1")
            .what("commit-sha", commit.clone());
        if kind == "gate.decision" {
            e = e.details(json!({"allowed": true, "reasons": []}));
        }
        tx.append_audit_at(
            e,
            at.checked_add(jiff::SignedDuration::from_mins(min))
                .unwrap(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

both!(reports_are_generated_on_the_first_day_once_stored_and_notified);
async fn reports_are_generated_on_the_first_day_once_stored_and_notified(backend: Backend) {
    let policy = Arc::new(people_policy());
    let srv = TestServer::start(backend, (*policy).clone(), t("2026-11-20T10:00:00Z")).await;
    deploy(&srv, "CR-OCT", "2026-10-05T10:00:00Z").await;
    deploy(&srv, "CR-NOV", "2026-11-10T10:00:00Z").await;
    changegate_server::notify::install(
        srv.db.store(),
        policy.clone(),
        BTreeSet::from(["reviewers".to_string()]),
    );
    let state = AppState::new(
        policy.clone(),
        srv.db.clone(),
        Clock::Manual(srv.clock.clone()),
    );

    // A server started on 20 November: October's report was missed, so it is generated now;
    // Q3 ended before the log began, so it is not.
    assert_eq!(run_once(&state).await.unwrap(), ["monthly:2026-10"]);
    assert!(run_once(&state).await.unwrap().is_empty(), "never twice");
    // The last second of November: nothing is due.
    srv.set_now(t("2026-11-30T23:59:59Z"));
    assert!(run_once(&state).await.unwrap().is_empty());
    // The first of December: November's report.
    srv.set_now(t("2026-12-01T00:00:00Z"));
    assert_eq!(run_once(&state).await.unwrap(), ["monthly:2026-11"]);
    assert!(run_once(&state).await.unwrap().is_empty());

    // Stored and logged: one `report.generated` event per report, naming its digest and
    // checkpoint.
    let evs = srv
        .db
        .store()
        .events(&EventFilter {
            kind: Some(changegate_report::KIND_GENERATED.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<&str> = evs
        .iter()
        .map(|e| e.record.event.details["report"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["monthly:2026-10", "monthly:2026-11"]);
    let nov = &evs[1].record;
    let stored = srv
        .db
        .store()
        .stored_report("monthly:2026-11")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.event_seq, nov.seq);
    assert_eq!(
        nov.event.details["digest"].as_str(),
        Some(stored.digest.as_str())
    );

    // Notified: one row per report for the reviewers' channel, naming the digest.
    let rows = srv
        .db
        .list_notifications(None, Some("report:monthly:2026-11"), 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].channel, "reviewers");
    assert_eq!(rows[0].event, "report-generated");
    assert_eq!(
        rows[0].dedupe_key,
        "report:monthly:2026-11/report-generated/reviewers"
    );
    let world = srv.db.world().await.unwrap().value;
    match changegate_server::notify::render::render(&policy, &rows[0], None, &world) {
        changegate_server::notify::render::Rendered::Send(m) => {
            assert!(m.title.contains("Monthly audit report 2026-11"), "{m:?}");
            assert!(m.lines.iter().any(|l| l.contains(&stored.digest)), "{m:?}");
        }
        other => panic!("{other:?}"),
    }
    let all = srv.db.list_notifications(None, None, 100).await.unwrap();
    assert_eq!(
        all.iter().filter(|n| n.event == "report-generated").count(),
        2
    );

    // The API serves the stored report (its digest and checkpoint, as notified), and a
    // sign-off signs that digest and that checkpoint, though the log has grown since.
    deploy(&srv, "CR-DEC", "2026-12-01T08:00:00Z").await;
    let alice = srv.token("alice").await;
    let (st, r) = srv.get("/api/v1/reports/monthly/2026-11", &alice).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["digest"], stored.digest.as_str());
    assert_eq!(r["generated"]["event_seq"], stored.event_seq);
    assert_eq!(r["proof"]["checkpoint"]["size"], stored.checkpoint_size);
    let head = srv.db.store().head().await.unwrap().size;
    assert!(head > stored.checkpoint_size);
    let sec = srv.token("sec").await;
    let (st, b) = srv
        .post(
            "/api/v1/reports/monthly/2026-11/signoffs",
            &sec,
            &json!({"role": "security-lead"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["digest"], stored.digest.as_str());
    assert_eq!(b["checkpoint"]["size"], stored.checkpoint_size);
    let (_, again) = srv.get("/api/v1/reports/monthly/2026-11", &alice).await;
    assert_eq!(again["signoffs"]["signed"][0]["person"], "sec", "{again}");
    // A report computed on demand (never generated) has no `generated`.
    let (_, dec) = srv.get("/api/v1/reports/monthly/2026-12", &alice).await;
    assert!(dec.get("generated").is_none(), "{dec}");

    // Restart across the first of January (the server was down that day): two replicas start
    // at once on 2 January, one through the scheduler task (it runs at start), one by hand;
    // December's report and Q4's review are generated once between them.
    srv.set_now(t("2027-01-02T09:00:00Z"));
    let a = AppState::new(
        policy.clone(),
        srv.db.clone(),
        Clock::Manual(srv.clock.clone()),
    );
    let b = AppState::new(
        policy.clone(),
        srv.db.clone(),
        Clock::Manual(srv.clock.clone()),
    );
    let task = reports_schedule::spawn(a.clone(), reports_schedule::ScheduleConfig::default());
    let by_hand = run_once(&b).await.unwrap();
    let count = || async {
        srv.db
            .store()
            .events(&EventFilter {
                kind: Some(changegate_report::KIND_GENERATED.into()),
                ..Default::default()
            })
            .await
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count().await.len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduler did not run at start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    task.abort();
    let evs = count().await;
    let mut names: Vec<&str> = evs
        .iter()
        .map(|e| e.record.event.details["report"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "monthly:2026-10",
            "monthly:2026-11",
            "monthly:2026-12",
            "quarterly:2026-Q4"
        ],
        "each once between the replicas (by hand: {by_hand:?})"
    );
    assert!(run_once(&a).await.unwrap().is_empty());
    assert!(run_once(&b).await.unwrap().is_empty());
    let all = srv.db.list_notifications(None, None, 100).await.unwrap();
    assert_eq!(
        all.iter().filter(|n| n.event == "report-generated").count(),
        4,
        "one notification per report"
    );
    // The log still verifies.
    let report = srv.db.store().verify(None).await.unwrap();
    assert!(report.ok(), "{report:?}");
}
