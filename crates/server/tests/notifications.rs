//! Notifications out, on SQLite and PostgreSQL, through the real routes, the real worker and the
//! loopback stand-ins of Slack, Statuspage and a signed webhook receiver
//! (`changegate_testkit::notify_standins`, which enforce the vendors' limits):
//!
//! - a P1 incident opened through the API queues `#incidents` and the freeze notice in the
//!   transaction of its audit event; the worker sends them as Block Kit messages the Slack
//!   stand-in accepts, one per second per channel (it answers 429 otherwise);
//! - an announced maintenance window becomes a Statuspage scheduled maintenance with its
//!   components, moved to in progress and completed when the window starts and ends;
//! - a webhook the receiver refuses for good is a dead letter, listed by `?status=dead` and made
//!   pending again by `POST /api/v1/notifications/{id}/retry` (admin only, audited);
//! - a manual rollback is announced in `#incidents` (and its request's notice marked sent), its
//!   post-mortem reminder is sent when it comes due unrecorded; a category-3 deploy's standby and
//!   daily status-update reminders come due from the outbox, and one whose duty was recorded is
//!   cancelled instead of sent;
//! - re-sending a notification (a crash before it was marked sent) shows it once at a receiver
//!   that honours the idempotency key.

#[path = "notify_common/mod.rs"]
mod notify_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use changegate_policy::{Channel, ChannelKind, NotifyEvent, NotifyRoute, Policy};
use changegate_server::notify::{Endpoint, Endpoints, Notifier, WorkerConfig, worker};
use changegate_server::{AppState, Clock};
use changegate_store::NotificationStatus;
use changegate_testkit::both;

use changegate_testkit::notify_standins::StandIn;
use changegate_testkit::server::{Backend, people_policy};
use jiff::Timestamp;
use notify_common::Srv;
use serde_json::{Value, json};

const KEY: &str = "sp-key";
const HOOK_SECRET: &str = "hook-secret";

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn policy() -> Policy {
    let mut p = people_policy();
    p.notifications.base_url = "https://changegate.example.com".into();
    p.notifications.channels["status-page"].components = vec!["api".into(), "web".into()];
    p.notifications.channels.insert(
        "audit-hook".into(),
        Channel {
            kind: ChannelKind::Webhook,
            description: "an audit sink".into(),
            to: Vec::new(),
            components: Vec::new(),
        },
    );
    p.notifications.routes.push(NotifyRoute {
        events: vec![NotifyEvent::IncidentOpened],
        categories: Vec::new(),
        channels: vec!["audit-hook".into()],
    });
    p
}

fn endpoint(kind: ChannelKind, url: String, secret: Option<&str>) -> Endpoint {
    let toml = match kind {
        ChannelKind::Statuspage => format!(
            "[channels.x]\nurl = \"{url}\"\npage_id = \"pg1\"\nsecret = \"{}\"\n",
            secret.unwrap()
        ),
        ChannelKind::Webhook => {
            format!(
                "[channels.x]\nurl = \"{url}\"\nsecret = \"{}\"\n",
                secret.unwrap()
            )
        }
        _ => format!("[channels.x]\nurl = \"{url}\"\n"),
    };
    let mut p = Policy::clone(&policy());
    p.notifications.channels.insert(
        "x".into(),
        Channel {
            kind,
            description: String::new(),
            to: Vec::new(),
            components: Vec::new(),
        },
    );
    Endpoints::parse(&toml, "notify.toml", &p)
        .unwrap()
        .0
        .remove("x")
        .unwrap()
}

struct Setup {
    ts: Srv,
    state: AppState,
    n: Notifier,
    standin: StandIn,
}

async fn setup(backend: Backend, hook_secret: &str) -> Setup {
    let policy = policy();
    let ts = Srv::start(backend, policy.clone(), at("2026-03-10T10:00:00Z"), |s| {
        s.rollback.application = Some(changegate_rollout::action::Action::parse("true"))
    })
    .await;
    let standin = StandIn::start(KEY, &["api", "web"], HOOK_SECRET).await;
    let mut eps = BTreeMap::new();
    eps.insert(
        "deployments".to_string(),
        endpoint(ChannelKind::Slack, standin.slack_url("T1/B1/deploy"), None),
    );
    eps.insert(
        "incidents".to_string(),
        endpoint(
            ChannelKind::Slack,
            standin.slack_url("T1/B2/incidents"),
            None,
        ),
    );
    eps.insert(
        "status-page".to_string(),
        endpoint(ChannelKind::Statuspage, standin.url(), Some(KEY)),
    );
    eps.insert(
        "audit-hook".to_string(),
        endpoint(
            ChannelKind::Webhook,
            format!("{}/hooks/audit", standin.url()),
            Some(hook_secret),
        ),
    );
    let n = Notifier::new(
        Endpoints(eps),
        WorkerConfig {
            max_attempts: 3,
            ..Default::default()
        },
    );
    let policy = Arc::new(policy);
    let inactive = changegate_server::notify::install(ts.db.store(), policy.clone(), n.active());
    assert_eq!(
        inactive,
        ["stakeholders", "all-teams", "executives", "reviewers"]
    );
    let state = AppState::new(policy, ts.db.clone(), Clock::Manual(ts.clock.clone()));
    Setup {
        ts,
        state,
        n,
        standin,
    }
}

async fn drain(s: &Setup) -> usize {
    let mut total = 0;
    loop {
        let k = worker::run_once(&s.state, &s.n).await.unwrap();
        if k == 0 {
            return total;
        }
        total += k;
    }
}

async fn incidents_reach_slack_within_its_limits(backend: Backend) {
    let s = setup(backend, HOOK_SECRET).await;
    let admin = s.ts.admin.clone();
    let (st, b) =
        s.ts.post(
            "/api/v1/incidents",
            &admin,
            &json!({"id": "INC-7", "severity": "P1", "title": "checkout 5xx", "commander": "sam"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    // Queued with the event: #incidents, the freeze in #deployments and #incidents, the hook.
    let (st, b) =
        s.ts.get("/api/v1/notifications?status=pending", &admin)
            .await;
    assert_eq!(st, 200, "{b}");
    let mut keys: Vec<String> = b["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["dedupe_key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "incident:INC-7/freeze-started/deployments",
            "incident:INC-7/freeze-started/incidents",
            "incident:INC-7/incident-opened/audit-hook",
            "incident:INC-7/incident-opened/incidents",
        ]
    );
    assert_eq!(drain(&s).await, 4);
    // Two messages to #incidents back to back: the worker paced them, the stand-in refused none.
    assert_eq!(s.standin.refused(), Vec::<(u16, String)>::new());
    let shown = s.standin.shown();
    let slack: Vec<&Value> = shown.iter().filter(|m| m["path"].is_string()).collect();
    assert_eq!(slack.len(), 3);
    let opened = slack
        .iter()
        .find(|m| {
            m["path"] == "T1/B2/incidents" && m["body"]["text"].as_str().unwrap().contains("opened")
        })
        .expect("the incident in #incidents");
    let text = opened["body"]["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("Incident commander: sam"), "{text}");
    assert!(text.contains("Severity: P1"), "{text}");
    // The signed webhook arrived (the stand-in checked the HMAC).
    let hook = shown
        .iter()
        .find(|m| m["event"] == "incident-opened")
        .unwrap();
    assert_eq!(
        hook["dedupe_key"],
        "incident:INC-7/incident-opened/audit-hook"
    );
    // Every one is sent, with the receiver's answer.
    let (_, b) = s.ts.get("/api/v1/notifications?status=sent", &admin).await;
    assert_eq!(b["notifications"].as_array().unwrap().len(), 4);
    // Resolving queues the resolution; the freeze note says it lifts.
    let (st, _) =
        s.ts.post("/api/v1/incidents/INC-7/resolve", &admin, &json!({}))
            .await;
    assert_eq!(st, 200);
    assert_eq!(drain(&s).await, 1);
    let last = s.standin.shown().last().cloned().unwrap();
    let text = last["body"]["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("Its change freeze lifts"), "{text}");

    // A re-send of a sent message (what a crash before marking it sent causes) is shown once.
    let before = s.standin.shown().len();
    let sent = s
        .state
        .db
        .list_notifications(Some(NotificationStatus::Sent), Some("incident:INC-7"), 10)
        .await
        .unwrap();
    let row = sent.iter().find(|r| r.channel == "incidents").unwrap();
    let ep = &s.n.endpoints.0["incidents"];
    let m = changegate_server::notify::render::Message {
        title: "again".into(),
        lines: vec!["again".into()],
        link: None,
    };
    // Slack's one message per second on the channel (the stand-in enforces it).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    changegate_server::notify::send::slack(&s.n.http, ep, row, &m)
        .await
        .unwrap();
    assert_eq!(
        s.standin.shown().len(),
        before,
        "the receiver dedupes on the key"
    );
}

async fn maintenance_becomes_a_scheduled_maintenance(backend: Backend) {
    let s = setup(backend, HOOK_SECRET).await;
    let admin = s.ts.admin.clone();
    let (st, b) =
        s.ts.post(
            "/api/v1/announcements",
            &admin,
            &json!({"id": "mw-apr", "window_start": "2026-04-07T02:00:00Z",
                    "window_end": "2026-04-07T06:00:00Z", "channels": []}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(drain(&s).await, 1, "only the creation is due now");
    // The world's announcement records what changegate sent (the gate reads this).
    let world = s.state.db.world().await.unwrap().value;
    let sent = &world.announcements[0].sent;
    assert_eq!(
        sent.iter()
            .map(|x| (x.via.as_str(), x.channel.as_str()))
            .collect::<Vec<_>>(),
        [("status-page", "status-page")]
    );
    let inc = s.standin.state.lock().unwrap().incidents["inc1"].clone();
    assert_eq!(inc["status"], "scheduled");
    assert_eq!(inc["scheduled_for"], "2026-04-07T02:00:00Z");
    assert_eq!(inc["scheduled_until"], "2026-04-07T06:00:00Z");
    assert_eq!(inc["component_ids"], json!(["api", "web"]));
    s.ts.set_now(at("2026-04-07T02:00:00Z"));
    assert_eq!(drain(&s).await, 1);
    assert_eq!(
        s.standin.state.lock().unwrap().incidents["inc1"]["status"],
        "in_progress"
    );
    s.ts.set_now(at("2026-04-07T06:00:00Z"));
    assert_eq!(drain(&s).await, 1);
    assert_eq!(
        s.standin.state.lock().unwrap().incidents["inc1"]["status"],
        "completed"
    );
    assert!(s.standin.refused().is_empty(), "{:?}", s.standin.refused());
}

/// At least once, never twice, for Statuspage: the maintenance is created but the answer is lost
/// (the receiver acted; the sender saw a 502, as after a crash between sending and noting it).
/// The retry finds the maintenance by its dedupe key and adopts it: one maintenance on the page,
/// and the later phases move that one.
async fn a_maintenance_created_before_a_lost_answer_is_adopted_not_duplicated(backend: Backend) {
    let s = setup(backend, HOOK_SECRET).await;
    let admin = s.ts.admin.clone();
    s.standin.state.lock().unwrap().lose_next_create_answer = true;
    let (st, b) =
        s.ts.post(
            "/api/v1/announcements",
            &admin,
            &json!({"id": "mw-may", "window_start": "2026-05-05T02:00:00Z",
                    "window_end": "2026-05-05T06:00:00Z", "channels": []}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(drain(&s).await, 1);
    assert_eq!(s.standin.state.lock().unwrap().incidents.len(), 1);
    let creation = |b: &Value| {
        b["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["dedupe_key"] == "announcement:mw-may/maintenance-announced/status-page")
            .cloned()
            .unwrap_or_else(|| panic!("the creation row: {b}"))
    };
    let (_, b) =
        s.ts.get("/api/v1/notifications?subject=announcement:mw-may", &admin)
            .await;
    assert_eq!(creation(&b)["status"], "pending", "{b}");
    // The retry, once its backoff has passed.
    s.ts.set_now(at("2026-03-10T10:05:00Z"));
    assert_eq!(drain(&s).await, 1);
    let incidents = s.standin.state.lock().unwrap().incidents.clone();
    assert_eq!(incidents.len(), 1, "created twice: {incidents:?}");
    let (_, b) =
        s.ts.get("/api/v1/notifications?subject=announcement:mw-may", &admin)
            .await;
    let row = &creation(&b);
    assert_eq!(row["status"], "sent", "{b}");
    assert_eq!(row["receipt"]["found"], true, "{row}");
    s.ts.set_now(at("2026-05-05T02:00:00Z"));
    assert_eq!(drain(&s).await, 1);
    assert_eq!(
        s.standin.state.lock().unwrap().incidents["inc1"]["status"],
        "in_progress"
    );
}

async fn a_refused_webhook_is_a_dead_letter_retried_by_an_admin(backend: Backend) {
    let s = setup(backend, "not-the-receivers-secret").await;
    let admin = s.ts.admin.clone();
    let (st, _) =
        s.ts.post(
            "/api/v1/incidents",
            &admin,
            &json!({"id": "INC-9", "severity": "P3", "title": "slow"}),
        )
        .await;
    assert_eq!(st, 201);
    drain(&s).await;
    let (st, b) = s.ts.get("/api/v1/notifications?status=dead", &admin).await;
    assert_eq!(st, 200);
    let dead = b["notifications"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{b}");
    assert_eq!(dead[0]["channel"], "audit-hook");
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("401"),
        "{}",
        dead[0]
    );
    let id = dead[0]["id"].as_i64().unwrap();
    // Not for a person token; a bad filter is a 400.
    let sam = s.ts.token("sam").await;
    let (st, b) = s.ts.get("/api/v1/notifications", &sam).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (403, Some("admin-required")),
        "{b}"
    );
    let (st, b) =
        s.ts.post(
            &format!("/api/v1/notifications/{id}/retry"),
            &sam,
            &json!({}),
        )
        .await;
    assert_eq!(st, 403, "{b}");
    let (st, b) = s.ts.get("/api/v1/notifications?status=lost", &admin).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("invalid-query")),
        "{b}"
    );
    let (st, b) =
        s.ts.post(
            &format!("/api/v1/notifications/{id}/retry"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(
        (st, b["notification"]["status"].as_str()),
        (200, Some("pending")),
        "{b}"
    );
    let (st, _) =
        s.ts.post(
            &format!("/api/v1/notifications/{id}/retry"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(st, 404, "only a dead one");
}

/// Import a category-3 change `id` in `status` (the gate scenario's ready change).
async fn import(ts: &Srv, id: &str, status: changegate_gate::Status) {
    use changegate_testkit::gate::{facet, ready, set_status, t};
    let mut st = ready(3, vec![facet("schema-column-dropped", &[], 3)]).1;
    st.change.id = id.into();
    set_status(
        &mut st,
        changegate_gate::Status::Deploying,
        t("2026-03-10T09:00:00Z"),
    );
    if status == changegate_gate::Status::Deployed {
        set_status(&mut st, status, t("2026-03-10T09:30:00Z"));
    }
    let (code, b) = ts
        .post(
            "/api/v1/changes/import",
            &ts.admin,
            &serde_json::to_value(&st).unwrap(),
        )
        .await;
    assert_eq!(code, 201, "{b}");
}

fn sent_texts(s: &Setup, path: &str) -> Vec<String> {
    s.standin
        .shown()
        .iter()
        .filter(|m| m["path"] == path)
        .map(|m| m["body"]["text"].as_str().unwrap().to_string())
        .collect()
}

async fn rollbacks_and_duties_are_notified_when_due(backend: Backend) {
    let s = setup(backend, HOOK_SECRET).await;
    let admin = s.ts.admin.clone();
    // A manual rollback by the incident commander during an incident.
    import(&s.ts, "CR-35", changegate_gate::Status::Deployed).await;
    let (st, b) =
        s.ts.post(
            "/api/v1/incidents",
            &admin,
            &json!({"id": "INC-7", "severity": "P1", "commander": "sam"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let sam = s.ts.token("sam").await;
    let (st, b) =
        s.ts.post(
            "/api/v1/changes/CR-35/rollbacks",
            &sam,
            &json!({"reason": "checkout errors after CR-35", "role": "incident-commander"}),
        )
        .await;
    assert!((200..300).contains(&st), "{b}");
    assert_eq!(b["request"]["status"], "done", "{b}");
    drain(&s).await;
    let incidents = sent_texts(&s, "T1/B2/incidents");
    assert!(
        incidents
            .iter()
            .any(|t| t.starts_with("Rolled back: CR-35")),
        "{incidents:?}"
    );
    let (_, c) = s.ts.get("/api/v1/changes/CR-35", &admin).await;
    let req = &c["rollback"]["requests"][0];
    assert_eq!(req["incident_notice"]["status"], "sent", "{c}");
    // The post-mortem is due in 24 hours: nothing before, the overdue reminder then.
    let due: Timestamp = req["post_mortem"]["due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let before = sent_texts(&s, "T1/B2/incidents").len();
    s.ts.set_now(due.checked_sub(jiff::SignedDuration::from_secs(1)).unwrap());
    assert_eq!(drain(&s).await, 0);
    s.ts.set_now(due);
    assert_eq!(drain(&s).await, 1);
    let incidents = sent_texts(&s, "T1/B2/incidents");
    assert_eq!(incidents.len(), before + 1);
    assert!(
        incidents
            .last()
            .unwrap()
            .starts_with("Overdue post-mortem: CR-35"),
        "{incidents:?}"
    );

    // A category-3 deploy completes: standby now and at its end, three daily updates.
    s.ts.set_now(at("2026-03-10T11:00:00Z"));
    import(&s.ts, "CR-37", changegate_gate::Status::Deploying).await;
    let alice = s.ts.token("alice").await;
    let (st, b) =
        s.ts.post(
            "/api/v1/changes/CR-37/ops",
            &alice,
            &json!({"op": "transition", "event": "complete"}),
        )
        .await;
    assert!((200..300).contains(&st), "{b}");
    let (_, q) =
        s.ts.get("/api/v1/notifications?subject=CR-37", &admin)
            .await;
    let mut due: Vec<(String, String)> = q["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["dedupe_key"].as_str().unwrap().to_string(),
                n["next_attempt_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    due.sort();
    assert_eq!(
        due,
        [
            (
                "CR-37/change-deployed/deployments".to_string(),
                "2026-03-10T11:00:00Z".to_string()
            ),
            (
                "CR-37/standby-reminder/end/deployments".into(),
                "2026-03-10T15:00:00Z".into()
            ),
            (
                "CR-37/standby-reminder/start/deployments".into(),
                "2026-03-10T11:00:00Z".into()
            ),
            (
                "CR-37/status-update-due/day-1/deployments".into(),
                "2026-03-11T11:00:00Z".into()
            ),
            (
                "CR-37/status-update-due/day-2/deployments".into(),
                "2026-03-12T11:00:00Z".into()
            ),
            (
                "CR-37/status-update-due/day-3/deployments".into(),
                "2026-03-13T11:00:00Z".into()
            ),
        ]
    );
    assert_eq!(drain(&s).await, 2, "deployed and the standby start");
    let deploys = sent_texts(&s, "T1/B1/deploy");
    assert!(
        deploys.iter().any(|t| t.starts_with("Standby: CR-37")),
        "{deploys:?}"
    );
    // The standby report is recorded before the standby ends: that reminder is cancelled.
    let (st, b) =
        s.ts.post(
            "/api/v1/changes/CR-37/duties/standby",
            &sam,
            &json!({"note": "4 h on standby, quiet"}),
        )
        .await;
    assert!((200..300).contains(&st), "{b}");
    s.ts.set_now(at("2026-03-10T15:00:00Z"));
    let shown = s.standin.shown().len();
    assert_eq!(drain(&s).await, 1);
    assert_eq!(s.standin.shown().len(), shown, "cancelled, not sent");
    let (_, q) =
        s.ts.get("/api/v1/notifications?status=cancelled", &admin)
            .await;
    assert_eq!(
        q["notifications"][0]["dedupe_key"],
        "CR-37/standby-reminder/end/deployments"
    );
    // Day 1's update is not recorded: the reminder goes out, naming its owner.
    s.ts.set_now(at("2026-03-11T11:00:00Z"));
    assert_eq!(drain(&s).await, 1);
    let last = s.standin.shown().last().cloned().unwrap();
    let text = last["body"]["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("Daily status update 1 of 3 is due"), "{text}");
    assert!(text.contains("Owner: alice"), "{text}");
}

both!(incidents_reach_slack_within_its_limits);
both!(rollbacks_and_duties_are_notified_when_due);
both!(maintenance_becomes_a_scheduled_maintenance);
both!(a_maintenance_created_before_a_lost_answer_is_adopted_not_duplicated);
both!(a_refused_webhook_is_a_dead_letter_retried_by_an_admin);
