//! PagerDuty V3 webhooks end to end, on SQLite and PostgreSQL: the signature (good, bad,
//! missing, rotated, no secret configured), malformed bodies, the documented payload of each
//! incident event type mapped to open / update / resolve, the priority table, replays, the worker
//! surviving a restart and a dead worker's lease, failed deliveries, and the incident freeze
//! engaging and lifting with no human typing.

#[path = "webhooks_common/mod.rs"]
mod common;

use changegate_testkit::both;
use changegate_testkit::gate::{TUE, policy, policy_with, t};
use changegate_testkit::server::Backend;
use common::{Harness, ready_change};
use serde_json::{Value, json};

const SECRET: &str = "pd-secret-current";
const OLD_SECRET: &str = "pd-secret-previous";
const PATH: &str = "/api/v1/webhooks/pagerduty";

/// The `incident.priority_updated` example of PagerDuty's V3 webhook documentation
/// (developer.pagerduty.com, Webhooks › Overview › Webhook Payload), with the event id, type,
/// status, priority and assignee a test names.
fn event(
    id: &str,
    event_type: &str,
    status: &str,
    priority: Option<&str>,
    assignee: &str,
) -> Value {
    json!({
      "event": {
        "id": id,
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": "2020-10-02T18:45:22.169Z",
        "agent": {
          "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
          "id": "PLH1HKV",
          "self": "https://api.pagerduty.com/users/PLH1HKV",
          "summary": "Tenex Engineer",
          "type": "user_reference"
        },
        "client": { "name": "PagerDuty" },
        "data": {
          "id": "PGR0VU2",
          "type": "incident",
          "self": "https://api.pagerduty.com/incidents/PGR0VU2",
          "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
          "number": 2,
          "status": status,
          "incident_key": "d3640fbd41094207a1c11e58e46b1662",
          "created_at": "2020-04-09T15:16:27Z",
          "title": "A little bump in the road",
          "service": {
            "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
            "id": "PF9KMXH",
            "self": "https://api.pagerduty.com/services/PF9KMXH",
            "summary": "API Service",
            "type": "service_reference"
          },
          "assignees": [
            {
              "html_url": format!("https://acme.pagerduty.com/users/{assignee}"),
              "id": assignee,
              "self": format!("https://api.pagerduty.com/users/{assignee}"),
              "summary": "User 123",
              "type": "user_reference"
            }
          ],
          "escalation_policy": {
            "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
            "id": "PUS0KTE",
            "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
            "summary": "Default",
            "type": "escalation_policy_reference"
          },
          "teams": [
            {
              "html_url": "https://acme.pagerduty.com/teams/PFCVPS0",
              "id": "PFCVPS0",
              "self": "https://api.pagerduty.com/teams/PFCVPS0",
              "summary": "Engineering",
              "type": "team_reference"
            }
          ],
          "priority": priority.map(|p| json!({
            "html_url": "https://acme.pagerduty.com/account/incident_priorities",
            "id": "PSO75BM",
            "self": "https://api.pagerduty.com/priorities/PSO75BM",
            "summary": p,
            "type": "priority_reference"
          })),
          "urgency": "high",
          "conference_bridge": {
            "conference_number": "+1 1234123412,,987654321#",
            "conference_url": "https://example.com"
          },
          "resolve_reason": null
        }
      }
    })
}

fn sign(secret: &str, body: &[u8]) -> String {
    changegate_server::signature::Secret::new(secret)
        .unwrap()
        .sign_hex(body)
}

/// POST `body` signed with `secret` (as PagerDuty does).
async fn send(h: &Harness, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = format!("v1={}", sign(SECRET, &bytes));
    h.post_raw(PATH, &[("x-pagerduty-signature", sig)], &bytes)
        .await
}

async fn start(backend: Backend, worker: bool) -> Harness {
    Harness::start(backend, policy(), t(TUE), &[SECRET, OLD_SECRET], worker).await
}

async fn signatures(backend: Backend) {
    let h = start(backend, false).await;
    let body = serde_json::to_vec(&event(
        "E1",
        "incident.triggered",
        "triggered",
        Some("P2"),
        "PX",
    ))
    .unwrap();
    let good = sign(SECRET, &body);
    let forged = sign("not-the-secret", &body);
    let refused = |st: u16, b: &Value| {
        assert_eq!(
            (st, b["code"].as_str()),
            (403, Some("webhook-signature-invalid")),
            "{b}"
        );
        assert_eq!(b["location"], "header X-PagerDuty-Signature");
        assert!(!b.to_string().contains(SECRET), "the secret never shows");
    };
    // Missing, bare hex (not a v1 value), forged, a v2 value, and the right MAC of another body.
    let (st, b) = h.post_raw(PATH, &[], &body).await;
    refused(st, &b);
    for header in [
        good.clone(),
        format!("v1={forged}"),
        format!("v2={good}"),
        format!("v1={}", sign(SECRET, b"{}")),
    ] {
        let (st, b) = h
            .post_raw(PATH, &[("x-pagerduty-signature", header)], &body)
            .await;
        refused(st, &b);
    }
    assert!(
        h.deliveries().await.is_empty(),
        "nothing stored for a refused request"
    );
    // Malformed bodies, correctly signed: 400, nothing stored.
    for (raw, code) in [
        (&b"{\"event\": "[..], "invalid-json"),
        (&b"{\"hello\": 1}"[..], "webhook-payload-invalid"),
        (
            &br#"{"event": {"id": "E9", "event_type": "incident.triggered", "data": {"id": "P1", "type": "incident", "status": "sleeping"}}}"#[..],
            "webhook-payload-invalid",
        ),
        (
            &br#"{"event": {"id": "E9", "event_type": "incident.triggered", "data": {"id": "../etc", "type": "incident", "status": "triggered"}}}"#[..],
            "webhook-payload-invalid",
        ),
    ] {
        let sig = format!("v1={}", sign(SECRET, raw));
        let (st, b) = h.post_raw(PATH, &[("x-pagerduty-signature", sig)], raw).await;
        assert_eq!((st, b["code"].as_str()), (400, Some(code)), "{b}");
    }
    assert!(h.deliveries().await.is_empty());
    // Rotation: two v1 values, only the second matches; and a body signed only with the old secret.
    let rotated = format!("v1={forged},v1={good}");
    let (st, b) = h
        .post_raw(PATH, &[("x-pagerduty-signature", rotated)], &body)
        .await;
    assert_eq!(st, 202, "{b}");
    assert_eq!(b["delivery"]["duplicate"], false);
    let body2 = serde_json::to_vec(&event(
        "E2",
        "incident.acknowledged",
        "acknowledged",
        Some("P2"),
        "PX",
    ))
    .unwrap();
    let old = format!("v1={}", sign(OLD_SECRET, &body2));
    let (st, b) = h
        .post_raw(PATH, &[("x-pagerduty-signature", old)], &body2)
        .await;
    assert_eq!(st, 202, "{b}");
    // Events changegate does not act on are answered and not stored.
    let ping = json!({"event": {"id": "E3", "event_type": "pagey.ping", "data": {}}});
    let (st, b) = send(&h, &ping).await;
    assert_eq!((st, b["ignored"].as_bool()), (202, Some(true)), "{b}");
    assert_eq!(h.deliveries().await.len(), 2);
    // A server without a secret answers 404 and stores nothing.
    let bare = Harness::start(backend, policy(), t(TUE), &[], false).await;
    let (st, b) = bare
        .post_raw(
            PATH,
            &[("x-pagerduty-signature", format!("v1={good}"))],
            &body,
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (404, Some("webhook-not-configured")),
        "{b}"
    );
    assert!(bare.deliveries().await.is_empty());
}
both!(signatures);

async fn replays_are_no_ops(backend: Backend) {
    let h = start(backend, true).await;
    let e = event("E1", "incident.triggered", "triggered", Some("P2"), "PX");
    let (st, first) = send(&h, &e).await;
    assert_eq!(st, 202, "{first}");
    h.settle().await;
    assert_eq!(h.incident_events().await, 1);
    // The same event again (PagerDuty retried): found, not stored, not processed.
    let (st, again) = send(&h, &e).await;
    assert_eq!(
        (st, again["delivery"]["duplicate"].as_bool()),
        (200, Some(true)),
        "{again}"
    );
    assert_eq!(again["delivery"]["row"], first["delivery"]["row"]);
    assert_eq!(again["delivery"]["status"], "done");
    // A new event saying the same (acknowledged, nothing else changed): processed, no write.
    let (st, _) = send(
        &h,
        &event(
            "E2",
            "incident.acknowledged",
            "acknowledged",
            Some("P2"),
            "PX",
        ),
    )
    .await;
    assert_eq!(st, 202);
    h.settle().await;
    assert_eq!(
        h.incident_events().await,
        1,
        "one audit event however often it is said"
    );
    let ds = h.deliveries().await;
    assert_eq!(ds.len(), 2);
    assert_eq!(ds[0]["outcome"]["result"], "unchanged", "{:#?}", ds);
    assert_eq!(ds[1]["outcome"]["result"], "opened");
    assert_eq!(h.incidents().await.len(), 1);
}
both!(replays_are_no_ops);

async fn event_types_open_update_and_resolve(backend: Backend) {
    let h = start(backend, true).await;
    // PagerDuty user PSAM is sam (an SRE lead: may command); PNOBODY is nobody changegate knows.
    let (st, b) = h
        .req(
            reqwest::Method::PUT,
            "/api/v1/aliases/pagerduty:PSAM",
            &h.admin,
            Some(&json!({"person": "sam"})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let before = h.incident_events().await;
    let id = "PD-PGR0VU2";
    let step =
        |n: u32,
         ty: &'static str,
         status: &'static str,
         prio: Option<&'static str>,
         who: &'static str| { event(&format!("E{n}"), ty, status, prio, who) };
    send(
        &h,
        &step(1, "incident.triggered", "triggered", Some("P3"), "PSAM"),
    )
    .await;
    h.settle().await;
    let inc = h.incident(id).await.unwrap();
    assert_eq!(
        (inc["severity"].as_str(), inc["commander"].as_str()),
        (Some("P2"), Some("sam")),
        "{inc}"
    );
    assert_eq!(inc["title"], "A little bump in the road");
    send(
        &h,
        &step(
            2,
            "incident.priority_updated",
            "triggered",
            Some("P1"),
            "PSAM",
        ),
    )
    .await;
    h.settle().await;
    assert_eq!(h.incident(id).await.unwrap()["severity"], "P0");
    send(
        &h,
        &step(
            3,
            "incident.reassigned",
            "acknowledged",
            Some("P1"),
            "PNOBODY",
        ),
    )
    .await;
    h.settle().await;
    let inc = h.incident(id).await.unwrap();
    assert!(
        inc.get("commander").is_none_or(Value::is_null),
        "an ineligible assignee commands nothing: {inc}"
    );
    let last = &h.deliveries().await[0];
    assert_eq!(
        last["outcome"]["assignees"][0]["person"],
        Value::Null,
        "{last}"
    );
    send(
        &h,
        &step(
            4,
            "incident.acknowledged",
            "acknowledged",
            Some("P1"),
            "PSAM",
        ),
    )
    .await;
    h.settle().await;
    assert_eq!(h.incident(id).await.unwrap()["commander"], "sam");
    send(
        &h,
        &step(5, "incident.resolved", "resolved", Some("P1"), "PSAM"),
    )
    .await;
    h.settle().await;
    assert!(h.incident(id).await.unwrap()["resolved_at"].is_string());
    send(
        &h,
        &step(6, "incident.reopened", "triggered", Some("P1"), "PSAM"),
    )
    .await;
    h.settle().await;
    assert!(
        h.incident(id)
            .await
            .unwrap()
            .get("resolved_at")
            .is_none_or(Value::is_null)
    );
    // Opened, priority, reassigned, reassigned back, resolved, reopened: six writes.
    assert_eq!(h.incident_events().await - before, 6);
    let events: Vec<_> = h
        .db()
        .store()
        .events(&changegate_store::EventFilter {
            kind: Some("incident.recorded".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .skip(before)
        .collect();
    let first = &events[0].record.event;
    assert_eq!(first.actor, "integration:pagerduty");
    assert_eq!(first.details["delivery"]["id"], "E1");
    assert_eq!(first.details["op"]["op"], "open-incident");
    assert_eq!(events[5].record.event.details["op"]["reopen"], true);
}
both!(event_types_open_update_and_resolve);

async fn the_priority_table_is_policy(backend: Backend) {
    let p = policy_with(
        "[integrations.pagerduty]\nseverity = { P1 = \"P3\" }\nurgency = { high = \"P4\" }\n",
    );
    let h = Harness::start(backend, p, t(TUE), &[SECRET], true).await;
    let mut e = event("E1", "incident.triggered", "triggered", Some("P1"), "PX");
    send(&h, &e).await;
    e["event"]["id"] = json!("E2");
    e["event"]["data"]["id"] = json!("PNOPRIO");
    e["event"]["data"]["priority"] = Value::Null;
    send(&h, &e).await;
    e["event"]["id"] = json!("E3");
    e["event"]["data"]["id"] = json!("PODD");
    e["event"]["data"]["priority"] = json!({"summary": "SEV-9"});
    e["event"]["data"]["urgency"] = json!("medium");
    send(&h, &e).await;
    h.settle().await;
    let sev = |id: &str| {
        let id = id.to_string();
        let h = &h;
        async move {
            h.incident(&id).await.unwrap()["severity"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(
        sev("PD-PGR0VU2").await,
        "P3",
        "by the policy's priority table"
    );
    assert_eq!(sev("PD-PNOPRIO").await, "P4", "no priority: by urgency");
    assert_eq!(
        sev("PD-PODD").await,
        "P1",
        "neither: `unmapped`, which freezes"
    );
}
both!(the_priority_table_is_policy);

async fn the_freeze_engages_and_lifts_by_itself(backend: Backend) {
    let h = start(backend, true).await;
    h.import(&ready_change()).await;
    assert_eq!(
        h.denying("CR-1").await,
        Vec::<String>::new(),
        "allowed before the incident"
    );
    send(
        &h,
        &event("E1", "incident.triggered", "triggered", Some("P2"), "PX"),
    )
    .await;
    h.settle().await;
    assert_eq!(h.denying("CR-1").await, ["freeze-active"]);
    send(
        &h,
        &event("E2", "incident.resolved", "resolved", Some("P2"), "PX"),
    )
    .await;
    h.settle().await;
    assert_eq!(
        h.denying("CR-1").await,
        Vec::<String>::new(),
        "allowed after resolve"
    );
}
both!(the_freeze_engages_and_lifts_by_itself);

async fn a_pending_delivery_survives_a_restart(backend: Backend) {
    // No worker: the delivery is stored and answered, and stays pending.
    let h = start(backend, false).await;
    let (st, _) = send(
        &h,
        &event("E1", "incident.triggered", "triggered", Some("P2"), "PX"),
    )
    .await;
    assert_eq!(st, 202);
    assert!(h.incidents().await.is_empty());
    assert_eq!(h.deliveries().await[0]["status"], "pending");
    // A worker that claimed the second delivery and died: its lease holds the row.
    send(
        &h,
        &event("E2", "incident.resolved", "resolved", Some("P2"), "PX"),
    )
    .await;
    let h = h.restart(false).await;
    let dead = h
        .db()
        .claim_deliveries(
            "dead-worker",
            h.now(),
            jiff::SignedDuration::from_secs(60),
            16,
        )
        .await
        .unwrap();
    assert_eq!(
        dead.len(),
        1,
        "the second waits for the first (same incident)"
    );
    // Restart with a worker: nothing happens while the dead worker's lease lasts...
    let h = h.restart(true).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        h.incidents().await.is_empty(),
        "a leased delivery is not taken"
    );
    // ...and once it expires, both are processed, in order.
    h.set_now(
        t(TUE)
            .checked_add(jiff::SignedDuration::from_secs(61))
            .unwrap(),
    );
    h.state.webhooks.wake.notify_one();
    h.settle().await;
    let inc = h.incident("PD-PGR0VU2").await.unwrap();
    assert!(
        inc["resolved_at"].is_string(),
        "opened, then resolved: {inc}"
    );
    assert_eq!(h.incident_events().await, 2);
    let ds = h.deliveries().await;
    assert!(ds.iter().all(|d| d["status"] == "done"), "{ds:#?}");
    assert_eq!(
        (ds[0]["attempts"].as_i64(), ds[1]["attempts"].as_i64()),
        (Some(1), Some(2)),
        "the dead worker's attempt counts"
    );
}
both!(a_pending_delivery_survives_a_restart);

async fn failed_deliveries_are_visible_and_retried(backend: Backend) {
    let h = start(backend, false).await;
    // A GitHub delivery whose stored body is no GitHub delivery (`{}`): every attempt fails.
    let stored = h
        .db()
        .insert_delivery(changegate_store::NewDelivery {
            source: changegate_store::DeliverySource::Github,
            delivery_id: "gh-1",
            subject: "",
            received_by: "integration:github",
            body: "{}",
            at: h.now(),
        })
        .await
        .unwrap();
    let changegate_store::Received::Stored { row } = stored else {
        panic!("{stored:?}")
    };
    let mut cfg = common::test_worker();
    cfg.max_attempts = 2;
    for n in 1..=2 {
        assert_eq!(
            changegate_server::deliveries::run_once(&h.state, &cfg)
                .await
                .unwrap(),
            1
        );
        h.set_now(
            h.now()
                .checked_add(jiff::SignedDuration::from_secs(n * 10))
                .unwrap(),
        );
    }
    assert_eq!(
        changegate_server::deliveries::run_once(&h.state, &cfg)
            .await
            .unwrap(),
        0
    );
    let (st, b) = h.get("/api/v1/deliveries?status=failed").await;
    assert_eq!(st, 200);
    let d = &b["deliveries"][0];
    assert_eq!(
        (
            d["row"].as_i64(),
            d["status"].as_str(),
            d["attempts"].as_i64()
        ),
        (Some(row), Some("failed"), Some(2)),
        "{b}"
    );
    assert!(
        d["last_error"].as_str().unwrap().contains("does not parse"),
        "{d}"
    );
    assert!(d.get("body").is_none(), "the body is never listed");
    // Only admins list and retry; a bad filter is a 400.
    let person = h.person_token("sam").await;
    let (st, b) = h
        .req(reqwest::Method::GET, "/api/v1/deliveries", &person, None)
        .await;
    assert_eq!((st, b["code"].as_str()), (403, Some("admin-required")));
    let (st, b) = h.get("/api/v1/deliveries?status=lost").await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("invalid-query")),
        "{b}"
    );
    let (st, b) = h
        .post(&format!("/api/v1/deliveries/{row}/retry"), &json!({}))
        .await;
    assert_eq!(
        (st, b["delivery"]["status"].as_str()),
        (200, Some("pending")),
        "{b}"
    );
    let (st, _) = h
        .post(&format!("/api/v1/deliveries/{row}/retry"), &json!({}))
        .await;
    assert_eq!(st, 404, "only a failed delivery is retried");
    assert_eq!(
        changegate_server::deliveries::run_once(&h.state, &cfg)
            .await
            .unwrap(),
        1
    );
}
both!(failed_deliveries_are_visible_and_retried);
