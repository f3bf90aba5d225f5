//! Render time of every dashboard page with 10,000 changes in the database, against the JSON API
//! for the same data, in the same run, on a real server over SQLite (and PostgreSQL unless
//! `CG_BENCH_SKIP_PG=1`). Prints the median and p95 per page and the page/API ratio; the goal is
//! a page under 20 ms.
//!
//! `cargo bench -p changegate-server --bench dashboard_pages` (CG_BENCH_CHANGES, CG_BENCH_ROUNDS
//! override the size and the number of requests per page).

use std::time::{Duration, Instant};

use changegate_audit::{AuditEvent, kinds};
use changegate_testkit::gate::{change, facet};
use changegate_testkit::server::{Backend, TestServer, people_policy};
use jiff::Timestamp;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn fill(srv: &TestServer, n: usize) {
    let statuses = ["in-review", "approved", "deployed", "draft"];
    for i in 0..n {
        let mut s = if i % 3 == 0 {
            // With evidence, as the server's own classification keeps it (the change page links
            // each place to the forge).
            let mut f = facet("api-endpoint-added", &["backend-lead"], 2);
            f.details = format!("POST /api/v1/items/{i}");
            f.evidence = (1..=3)
                .map(|l| changegate_gate::FacetEvidence {
                    path: format!("src/routes/items_{i}.ts"),
                    line: Some(l * 10),
                    side: changegate_gate::EvidenceSide::Head,
                })
                .collect();
            change(2, vec![f])
        } else {
            change(1, vec![])
        };
        s.change.id = format!("CR-{i:05}");
        s.change.title = format!("Change number {i}");
        s.change.repository = format!("https://github.com/acme/repo-{}", i % 25);
        s.change.head_commit = format!("{i:040x}");
        s.status = serde_json::from_value(serde_json::json!(statuses[i % statuses.len()])).unwrap();
        let event = AuditEvent::new(kinds::CHANGE_CREATED, "bench").change(&s.change.id);
        srv.db.create_change(&s, event, None).await.unwrap();
    }
}

/// An `application/x-www-form-urlencoded` body.
fn form_body(pairs: &[(&str, &str)]) -> String {
    use changegate_server::dashboard::pages::urlencode;
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body.find(&marker).expect("hidden input");
    let rest = &body[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn session(srv: &TestServer, _http: &reqwest::Client) -> String {
    // Not following redirects: the sign-in answers 303 with the session cookie, and a client
    // that follows it (without a cookie jar) lands on the sign-in page again.
    let http = &reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = srv.token("bob").await;
    let login = http
        .get(format!("{}/login", srv.base))
        .send()
        .await
        .unwrap();
    let login_cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .next()
        .unwrap();
    let csrf = hidden(&login.text().await.unwrap(), "csrf");
    let r = http
        .post(format!("{}/login", srv.base))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("token", token.as_str()),
            ("csrf", csrf.as_str()),
        ]))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("cg_session="));
    match cookie {
        Some(c) => c,
        None => panic!(
            "no session cookie: {status} {}",
            r.text().await.unwrap_or_default()
        ),
    }
}

struct Timing {
    p50: Duration,
    p95: Duration,
    bytes: usize,
}

impl Timing {
    /// Median and p95 of the latencies.
    fn of(mut lat: Vec<Duration>, bytes: usize) -> Timing {
        lat.sort();
        Timing {
            p50: lat[lat.len() / 2],
            p95: lat[(lat.len() * 95 / 100).min(lat.len() - 1)],
            bytes,
        }
    }
}

/// The page paths issue 18 names (part of the interface).
const ISSUE_PAGES: &[&str] = &[
    "/",
    "/login",
    "/changes",
    "/changes/{id}",
    "/calendar",
    "/rollouts",
    "/incidents",
    "/reports",
    "/audit",
];

/// The row of [`time_after_write`] for a change's write: the listing is brought forward.
const AFTER_WRITE: &str = "/changes (each right after a write)";

/// The row of [`time_after_write`] for an incident declared (a world write that leaves the
/// people as they were): the world row is read again, no entry is recomputed.
const AFTER_INCIDENT: &str = "/changes (each right after an incident)";

/// The row of [`time_after_write`] for a team's members changed: the world row is read again and
/// the changes with approvals recomputed (the bench's changes have none).
const AFTER_TEAM: &str = "/changes (each right after a team change)";

/// The row of [`time_after_write`] for an alias added (of nobody's author here): the world row
/// is read again, no entry recomputed.
const AFTER_ALIAS: &str = "/changes (each right after an alias)";

/// The row of [`time_after_write`] for a change created: every summary is read again (a new
/// change's place in the order is the database's) — the path every write took before ADR 0033,
/// the baseline of the rows above in the same run.
const AFTER_CREATE: &str = "/changes (each right after a new change)";

/// What [`time_after_write`] writes before each request.
#[derive(Clone, Copy, PartialEq)]
enum Write {
    Change,
    Incident,
    Team,
    Alias,
    Create,
}

async fn time(http: &reqwest::Client, url: &str, auth: (&str, &str), rounds: usize) -> Timing {
    let mut lat = Vec::with_capacity(rounds);
    let mut bytes = 0;
    // One warm-up request (the dashboard's per-change cache fills on the first list).
    for i in 0..=rounds {
        let t0 = Instant::now();
        let r = http.get(url).header(auth.0, auth.1).send().await.unwrap();
        // `/` answers a redirect to the list (signed in), which the client follows: its time
        // is the redirect and the list.
        assert!(
            r.status().is_success() || r.status().is_redirection(),
            "{url}: {}",
            r.status()
        );
        let b = r.bytes().await.unwrap();
        if i > 0 {
            lat.push(t0.elapsed());
            bytes = b.len();
        }
    }
    Timing::of(lat, bytes)
}

/// `/changes` right after a write each round: one change's title edited through the store, with
/// its audit event, an incident declared, or a team's members set (see [`Write`]).
async fn time_after_write(
    srv: &TestServer,
    http: &reqwest::Client,
    cookie: &str,
    id: &str,
    rounds: usize,
    write: Write,
) -> Timing {
    let mut lat = Vec::with_capacity(rounds);
    let mut bytes = 0;
    for i in 0..=rounds {
        if write == Write::Create {
            let mut st = change(1, vec![]);
            st.change.id = format!("CR-NEW-{i:03}");
            st.change.title = format!("New change {i}");
            let event = AuditEvent::new(kinds::CHANGE_CREATED, "bench").change(&st.change.id);
            srv.db.create_change(&st, event, None).await.unwrap();
        } else if write == Write::Incident {
            let (st, b) = srv
                .post(
                    "/api/v1/incidents",
                    &srv.admin,
                    &serde_json::json!({"id": format!("INC-B{i}"), "severity": "P3", "title": "Slow search", "commander": "sam"}),
                )
                .await;
            assert!(st < 300, "{b}");
        } else if write == Write::Team || write == Write::Alias {
            let cur = srv.db.world().await.unwrap();
            let mut w = cur.value.clone();
            if write == Write::Team {
                w.teams.insert("bench".into(), vec![format!("person-{i}")]);
            } else {
                w.aliases
                    .insert(format!("person-{i}@example.com"), format!("person-{i}"));
            }
            let event = AuditEvent::new(kinds::INCIDENT, "bench");
            srv.db
                .update_world(cur.version, &w, event)
                .await
                .unwrap()
                .unwrap();
        } else {
            let cur = srv.db.change(id).await.unwrap().unwrap();
            let mut st = cur.value.clone();
            st.change.title = format!("Edited {i}");
            let event = AuditEvent::new(kinds::CHANGE_STATE, "bench").change(id);
            srv.db
                .update_change(id, cur.version, &st, event)
                .await
                .unwrap()
                .unwrap();
        }
        let t0 = Instant::now();
        let r = http
            .get(format!("{}/changes", srv.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "/changes: {}", r.status());
        let b = r.bytes().await.unwrap();
        if i > 0 {
            lat.push(t0.elapsed());
            bytes = b.len();
        }
    }
    Timing::of(lat, bytes)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn run(backend: Backend, n: usize, rounds: usize) {
    let t: Timestamp = "2026-03-10T10:30:00Z".parse().unwrap();
    let srv = TestServer::start(backend, people_policy(), t).await;
    let filled = Instant::now();
    fill(&srv, n).await;
    println!(
        "{backend:?}: {n} changes stored in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::new();
    let cookie = session(&srv, &http).await;
    let bearer = format!("Bearer {}", srv.admin);
    let one = format!("CR-{:05}", n / 2 - (n / 2) % 3);
    let pairs: Vec<(String, String)> = [
        ("/".to_string(), "/api/v1/health".to_string()),
        ("/login".into(), "/api/v1/health".into()),
        ("/changes".into(), "/api/v1/changes".into()),
        (AFTER_WRITE.into(), "/api/v1/changes".into()),
        (AFTER_INCIDENT.into(), "/api/v1/changes".into()),
        (AFTER_TEAM.into(), "/api/v1/changes".into()),
        (AFTER_ALIAS.into(), "/api/v1/changes".into()),
        (AFTER_CREATE.into(), "/api/v1/changes".into()),
        ("/changes?waiting=1".into(), "/api/v1/changes".into()),
        (
            "/changes?state=in-review&sort=title&page=3".into(),
            "/api/v1/changes".into(),
        ),
        (
            format!("/changes/{one}"),
            format!("/api/v1/changes/{one}/decision"),
        ),
        (
            "/calendar?month=2026-03&category=2".into(),
            "/api/v1/changes".into(),
        ),
        (
            "/rollouts".into(),
            format!("/api/v1/changes/{one}/rollouts"),
        ),
        ("/incidents".into(), "/api/v1/incidents".into()),
        ("/reports".into(), "/api/v1/health".into()),
        ("/audit".into(), "/api/v1/health/database".into()),
    ]
    .into();
    // Every page path of the issue is measured.
    for path in ISSUE_PAGES {
        let covered = pairs.iter().any(|(page, _)| {
            let page = page.split('?').next().unwrap_or(page);
            match path.strip_suffix("{id}") {
                Some(prefix) => page.starts_with(prefix) && page.len() > prefix.len(),
                None => page == *path,
            }
        });
        assert!(covered, "the bench does not measure {path}");
    }
    println!(
        "{:<46} {:>10} {:>10} {:>9} | {:<34} {:>10} | {:>6}",
        "page", "p50", "p95", "bytes", "JSON API, same data", "p50", "ratio"
    );
    for (page, api) in pairs {
        let write = match page.as_str() {
            AFTER_WRITE => Some(Write::Change),
            AFTER_INCIDENT => Some(Write::Incident),
            AFTER_TEAM => Some(Write::Team),
            AFTER_ALIAS => Some(Write::Alias),
            AFTER_CREATE => Some(Write::Create),
            _ => None,
        };
        let p = if let Some(w) = write {
            time_after_write(&srv, &http, &cookie, &one, rounds, w).await
        } else {
            time(
                &http,
                &format!("{}{page}", srv.base),
                ("cookie", &cookie),
                rounds,
            )
            .await
        };
        let a = time(
            &http,
            &format!("{}{api}", srv.base),
            ("authorization", &bearer),
            rounds,
        )
        .await;
        println!(
            "{:<46} {:>10} {:>10} {:>9} | {:<34} {:>10} | {:>5.2}x{}",
            page,
            ms(p.p50),
            ms(p.p95),
            p.bytes,
            api,
            ms(a.p50),
            p.p50.as_secs_f64() / a.p50.as_secs_f64().max(1e-9),
            if p.p50 > Duration::from_millis(20) {
                "  (over the 20 ms goal)"
            } else {
                ""
            }
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env("CG_BENCH_CHANGES", 10_000);
    let rounds = env("CG_BENCH_ROUNDS", 30);
    run(Backend::Sqlite, n, rounds).await;
    if std::env::var("CG_BENCH_SKIP_PG").is_err() {
        run(Backend::Postgres, n, rounds).await;
    }
}
