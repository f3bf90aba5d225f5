//! Alertmanager webhooks, on SQLite and PostgreSQL: bearer-token authentication (an integration
//! token with the `incidents` scope, or admin), malformed payloads, severity from the label table,
//! repeated notifications changing nothing, and the real Prometheus Alertmanager (Debian's
//! `prometheus-alertmanager`, `scripts/services.sh`) opening and resolving an incident whose
//! freeze denies, then allows, a category-2 change.

#[path = "webhooks_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use changegate_server::token::Scope;
use changegate_testkit::both;
use changegate_testkit::gate::{TUE, policy, t};
use changegate_testkit::server::Backend;
use common::{Harness, ready_change};
use serde_json::{Value, json};

const PATH: &str = "/api/v1/webhooks/alertmanager";

/// A version-4 notification of the group `{alertname="HighErrorRate"}` with these alerts
/// (`(fingerprint, status, severity)`), shaped as Alertmanager's webhook sends it.
fn notification(status: &str, alerts: &[(&str, &str, Option<&str>)]) -> Value {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(fp, st, sev)| {
            let mut labels = json!({"alertname": "HighErrorRate", "instance": fp});
            if let Some(s) = sev {
                labels["severity"] = json!(s);
            }
            json!({
                "status": st,
                "labels": labels,
                "annotations": {"summary": "5xx above 1%"},
                "startsAt": "2026-03-10T10:58:00Z",
                "endsAt": if *st == "resolved" { "2026-03-10T11:00:00Z" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus.invalid/graph",
                "fingerprint": fp,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighErrorRate\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "changegate",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate"},
        "commonAnnotations": {"summary": "5xx above 1%"},
        "externalURL": "http://alertmanager.invalid",
        "alerts": alerts,
    })
}

async fn send(h: &Harness, token: &str, body: &Value) -> (u16, Value) {
    h.req(reqwest::Method::POST, PATH, token, Some(body)).await
}

fn incident_id() -> String {
    changegate_server::routes::webhooks::alertmanager::incident_of(
        "{}:{alertname=\"HighErrorRate\"}",
    )
}

async fn authentication_and_malformed_payloads(backend: Backend) {
    let h = Harness::start(backend, policy(), t(TUE), &[], false).await;
    let firing = notification("firing", &[("a1", "firing", Some("critical"))]);
    let bytes = serde_json::to_vec(&firing).unwrap();
    let (st, b) = h.post_raw(PATH, &[], &bytes).await;
    assert_eq!((st, b["code"].as_str()), (401, Some("unauthorized")), "{b}");
    let person = h.person_token("sam").await;
    let ci = h.integration_token("ci", &[Scope::Classify]).await;
    for token in [&person, &ci] {
        let (st, b) = send(&h, token, &firing).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (403, Some("scope-required")),
            "{b}"
        );
    }
    assert!(
        h.deliveries().await.is_empty(),
        "nothing stored for a refused request"
    );
    let am = h
        .integration_token("alertmanager", &[Scope::Incidents])
        .await;
    for (body, code, location) in [
        (
            json!({"version": "3", "groupKey": "g", "status": "firing", "alerts": []}),
            "webhook-payload-invalid",
            "body `version`",
        ),
        (
            json!({"version": "4", "groupKey": "g", "status": "burning", "alerts": []}),
            "webhook-payload-invalid",
            "body `status`",
        ),
        (
            json!({"version": "4", "status": "firing", "alerts": []}),
            "webhook-payload-invalid",
            "body line 1 column 45",
        ),
        (
            json!({"version": "4", "groupKey": "g", "status": "firing", "alerts": [{"status": "x"}]}),
            "webhook-payload-invalid",
            "body `alerts[0].status`",
        ),
    ] {
        let (st, b) = send(&h, &am, &body).await;
        assert_eq!((st, b["code"].as_str()), (400, Some(code)), "{b}");
        if !location.starts_with("body line") {
            assert_eq!(b["location"], location, "{b}");
        }
    }
    let (st, b) = h
        .post_raw(
            PATH,
            &[("authorization", format!("Bearer {am}"))],
            b"{\"version\": ",
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (400, Some("invalid-json")), "{b}");
    assert!(h.deliveries().await.is_empty());
    let (st, b) = send(&h, &am, &firing).await;
    assert_eq!(st, 202, "{b}");
    assert_eq!(b["delivery"]["subject"], incident_id());
    let resolved = notification("resolved", &[("a1", "resolved", Some("critical"))]);
    let (st, b) = send(&h, &h.admin, &resolved).await;
    assert_eq!(st, 202, "an admin token works too: {b}");
    let ds = h.deliveries().await;
    assert_eq!(ds[1]["received_by"], "integration:alertmanager");
    assert_eq!(ds[0]["received_by"], "admin");
}
both!(authentication_and_malformed_payloads);

async fn severity_follows_the_label_table(backend: Backend) {
    let h = Harness::start(backend, policy(), t(TUE), &[], true).await;
    let am = h
        .integration_token("alertmanager", &[Scope::Incidents])
        .await;
    let id = incident_id();
    send(
        &h,
        &am,
        &notification("firing", &[("a1", "firing", Some("warning"))]),
    )
    .await;
    h.settle().await;
    let inc = h.incident(&id).await.unwrap();
    assert_eq!(
        (inc["severity"].as_str(), inc["title"].as_str()),
        (Some("P3"), Some("5xx above 1%")),
        "{inc}"
    );
    // A second alert of the group fires critical: the incident takes the most severe.
    send(
        &h,
        &am,
        &notification(
            "firing",
            &[
                ("a1", "firing", Some("warning")),
                ("a2", "firing", Some("critical")),
            ],
        ),
    )
    .await;
    h.settle().await;
    assert_eq!(h.incident(&id).await.unwrap()["severity"], "P1");
    // The critical one resolves: back to P3 (still firing).
    send(
        &h,
        &am,
        &notification(
            "firing",
            &[
                ("a1", "firing", Some("warning")),
                ("a2", "resolved", Some("critical")),
            ],
        ),
    )
    .await;
    h.settle().await;
    assert_eq!(h.incident(&id).await.unwrap()["severity"], "P3");
    // An alert without the label: `unmapped` (P1, which freezes).
    send(&h, &am, &notification("firing", &[("a3", "firing", None)])).await;
    h.settle().await;
    assert_eq!(h.incident(&id).await.unwrap()["severity"], "P1");
    send(
        &h,
        &am,
        &notification("resolved", &[("a3", "resolved", None)]),
    )
    .await;
    h.settle().await;
    assert!(h.incident(&id).await.unwrap()["resolved_at"].is_string());
    assert_eq!(h.incident_events().await, 5);
}
both!(severity_follows_the_label_table);

async fn repeated_notifications_change_nothing(backend: Backend) {
    let h = Harness::start(backend, policy(), t(TUE), &[], true).await;
    let am = h
        .integration_token("alertmanager", &[Scope::Incidents])
        .await;
    let firing = notification("firing", &[("a1", "firing", Some("critical"))]);
    let (st, _) = send(&h, &am, &firing).await;
    assert_eq!(st, 202);
    h.settle().await;
    // repeat_interval: the same group state again, answered 200 and not stored.
    for _ in 0..3 {
        let (st, b) = send(&h, &am, &firing).await;
        assert_eq!(
            (st, b["delivery"]["duplicate"].as_bool()),
            (200, Some(true)),
            "{b}"
        );
    }
    // The same state in another shape (a changed annotation, a different receiver): stored, and
    // processing finds nothing to change.
    let mut other = firing.clone();
    other["receiver"] = json!("changegate-2");
    other["truncatedAlerts"] = json!(1);
    let (st, _) = send(&h, &am, &other).await;
    assert_eq!(st, 202);
    h.settle().await;
    assert_eq!(h.deliveries().await.len(), 2);
    assert_eq!(h.deliveries().await[0]["outcome"]["result"], "unchanged");
    assert_eq!(
        h.incident_events().await,
        1,
        "one audit event for one state"
    );
}
both!(repeated_notifications_change_nothing);

/// A real Alertmanager on a free loopback port, killed on drop.
struct Alertmanager {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn alertmanager(receiver: &str, token: &str) -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"route:
  receiver: changegate
  group_by: ['alertname']
  group_wait: 200ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: changegate
    webhook_configs:
      - url: '{receiver}'
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: '{token}'
"#
    );
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, config).unwrap();
    let port = free_port();
    let child = std::process::Command::new("/usr/bin/prometheus-alertmanager")
        .arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("prometheus-alertmanager (run scripts/services.sh)");
    let am = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = http.get(format!("{}/-/ready", am.url)).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return am;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait (at most 15 s) until `check` holds for the incidents.
async fn wait_for(h: &Harness, what: &str, check: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let incidents = h.incidents().await;
        if check(&incidents) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: incidents {incidents:#?}, deliveries {:#?}",
            h.deliveries().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_real_alertmanager_freezes_and_unfreezes(backend: Backend) {
    let started = Instant::now();
    let h = Harness::start(backend, policy(), t(TUE), &[], true).await;
    h.import(&ready_change()).await;
    assert!(
        h.denying("CR-1").await.is_empty(),
        "allowed before the alert"
    );
    let token = h
        .integration_token("alertmanager", &[Scope::Incidents])
        .await;
    let am = alertmanager(&format!("{}{PATH}", h.base), &token).await;
    let http = reqwest::Client::new();
    let now = jiff::Timestamp::now();
    let starts = now
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .unwrap();
    let alert = |ends: Option<jiff::Timestamp>| {
        let mut a = json!({
            "labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "chat"},
            "annotations": {"summary": "5xx above 1% on chat"},
            "startsAt": starts.to_string(),
            "generatorURL": "http://prometheus.invalid/graph",
        });
        if let Some(e) = ends {
            a["endsAt"] = json!(e.to_string());
        }
        json!([a])
    };
    let r = http
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&alert(None))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let id = incident_id();
    wait_for(&h, "the incident opens", |is| {
        is.iter().any(|i| {
            i["id"] == id.as_str()
                && i["severity"] == "P1"
                && i.get("resolved_at").is_none_or(Value::is_null)
        })
    })
    .await;
    assert_eq!(
        h.denying("CR-1").await,
        ["freeze-active"],
        "the freeze denies a category-2 change"
    );
    // Resolve: the same alert with an end in the past.
    let past = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .unwrap();
    let r = http
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&alert(Some(past)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    wait_for(&h, "the incident resolves", |is| {
        is.iter()
            .any(|i| i["id"] == id.as_str() && i["resolved_at"].is_string())
    })
    .await;
    assert!(h.denying("CR-1").await.is_empty(), "the freeze lifted");
    h.settle().await;
    assert_eq!(h.incident_events().await, 2, "opened once, resolved once");
    let ds = h.deliveries().await;
    assert!(
        ds.iter()
            .all(|d| d["received_by"] == "integration:alertmanager"),
        "{ds:#?}"
    );
    let took = started.elapsed();
    eprintln!("real Alertmanager scenario on {backend:?}: {took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}
both!(the_real_alertmanager_freezes_and_unfreezes);
