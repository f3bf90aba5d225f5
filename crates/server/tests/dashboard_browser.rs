//! The dashboard in a real headless Chromium (Debian `chromium` and `chromium-driver`, installed by
//! `scripts/services.sh`), driven over WebDriver with fantoccini: sign in, the list, a change,
//! approving it as the role holder and seeing the decision flip, a refused approval for someone who
//! holds no role, the calendar month, a forged POST refused, and a session that expires by the
//! server's clock; and signing in with GitHub (the stand-in for github.com on loopback). Screenshots of
//! every page go to `$CARGO_TARGET_DIR/dashboard-screenshots/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use changegate_testkit::server::{Backend, TestServer, people_policy};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

async fn driver() -> Driver {
    let bin = which("chromedriver")
        .expect("chromedriver is not installed: run scripts/services.sh (Debian chromium-driver)");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    // Owned by the guard at once: killed and waited for on every path, a panic included.
    let d = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{}/status", d.url)).send().await
            && r.status().is_success()
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {}", d.url);
}

async fn browser(d: &Driver, width: u32, height: u32) -> Client {
    let chromium = which("chromium").expect("chromium is not installed: run scripts/services.sh");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), "--lang=en-US"],
        }),
    );
    ClientBuilder::rustls()
        .expect("rustls")
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("connect to chromedriver")
}

fn shots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/debug/deps/this-test → target
            let exe = std::env::current_exe().unwrap();
            exe.ancestors().nth(3).unwrap().to_path_buf()
        });
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    c.find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The form navigates: wait for the page after it (the list, or the sign-in page again with
    // its error).
    c.wait()
        .for_element(Locator::Css("#signed-in-as, #login-error"))
        .await
        .unwrap();
}

/// Click and wait for the next page to have `css`.
async fn click_to(c: &Client, button: &str, css: &str) {
    c.find(Locator::Css(button))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("after {button}, no {css}: {e}"));
}

/// CR-7's head commit.
const HEAD7: &str = "b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0";

/// A category-2 change by alice, every checklist item attested and QA's approval in, so only
/// bob's approval (the backend lead) is missing.
async fn ready_but_for_approval(srv: &TestServer) {
    let body = json!({
        "id": "CR-7", "repository": "acme/chat", "title": "Add pins endpoint",
        "base_commit": "a1", "head_commit": HEAD7, "authors": ["alice"], "last_pusher": "alice",
        "pr_link": "https://github.com/acme/chat/pull/7",
        "classification": {"category": 2, "facets": [{"kind": "api-endpoint-added", "roles": ["backend-lead"], "category": 2,
            "details": "POST /pins", "evidence": [{"path": "src/pins/pins.controller.ts", "line": 42}]}], "required_roles": ["backend-lead"]},
        "submit": true,
    });
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_eq!(st, 201, "{b}");
    for item in [
        "tests-pass",
        "staging-smoke",
        "rollback-plan",
        "feature-flags",
        "dashboards",
        "on-call-notified",
    ] {
        let (st, b) = srv
            .post(
                "/api/v1/changes/CR-7/attestations",
                &srv.admin,
                &json!({"item": item, "evidence": format!("https://ci.example/{item}"), "person": "sam"}),
            )
            .await;
        assert_eq!(st, 201, "{item}: {b}");
    }
    // QA approves through the API; the backend lead is left for the browser.
    let quinn = srv.token("quinn").await;
    let (st, b) = srv
        .post(
            "/api/v1/changes/CR-7/approvals",
            &quinn,
            &json!({"role": "qa"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let (_, d) = srv.get("/api/v1/changes/CR-7/decision", &srv.admin).await;
    let denying: Vec<&Value> = d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["denies"] == true)
        .collect();
    assert_eq!(d["allowed"], false, "{d}");
    assert!(
        denying
            .iter()
            .all(|r| r["code"] == "approval-missing" || r["code"] == "state-invalid"),
        "only the approval should deny: {d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_headless_chromium() {
    let srv = TestServer::start(Backend::Sqlite, people_policy(), at("2026-03-10T10:30:00Z")).await;
    ready_but_for_approval(&srv).await;
    for (i, title) in ["Bump log level", "Rotate TLS certificate", "Tidy README"]
        .iter()
        .enumerate()
    {
        let body = json!({
            "id": format!("CR-{}", i + 1), "repository": "acme/web", "title": title,
            "base_commit": "a1", "head_commit": "b1", "authors": ["fiona"], "last_pusher": "fiona",
            "classification": {"category": 1, "facets": [], "required_roles": []}, "submit": true,
        });
        let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
        assert_eq!(st, 201, "{b}");
    }
    let (st, b) = srv
        .post(
            "/api/v1/incidents",
            &srv.admin,
            &json!({"id": "INC-7", "severity": "P3", "title": "Slow search", "commander": "sam"}),
        )
        .await;
    assert!(st < 300, "{b}");
    let base = srv.base.clone();
    let d = driver().await;
    let c = browser(&d, 1280, 1000).await;

    // Signed out, `/` is the sign-in page.
    c.goto(&format!("{base}/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path() == "/login");
    shot(&c, "login").await;

    // Sign in as bob, the backend lead: the list, with what waits on him.
    sign_in(&c, &base, &srv.token("bob").await).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/changes");
    assert!(text(&c, "#signed-in-as").await.contains("bob"));
    assert!(text(&c, "#waiting-total").await.starts_with("1 "));
    assert!(text(&c, "#changes").await.contains("CR-7"));
    // The session cookie is HttpOnly: scripts do not see it.
    let cookies = c.execute("return document.cookie", vec![]).await.unwrap();
    assert!(
        !cookies.as_str().unwrap_or("").contains("cg_session"),
        "{cookies}"
    );
    shot(&c, "changes").await;

    // Open the change: denied, missing the backend lead; approve; the decision flips.
    c.find(Locator::LinkText("CR-7"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#verdict"))
        .await
        .unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/changes/CR-7");
    assert!(text(&c, "#verdict").await.starts_with("Denied"));
    assert!(text(&c, "#missing-roles").await.contains("backend-lead"));
    // Each facet's evidence: file:line, linked to the file at the head commit on GitHub.
    let ev = c
        .find(Locator::Css("#facets a.evidence-link"))
        .await
        .expect("an evidence link");
    assert_eq!(ev.text().await.unwrap(), "src/pins/pins.controller.ts:42");
    assert_eq!(
        ev.attr("href").await.unwrap().as_deref(),
        Some(
            format!("https://github.com/acme/chat/blob/{HEAD7}/src/pins/pins.controller.ts#L42")
                .as_str()
        )
    );
    shot(&c, "change-before").await;
    click_to(&c, "#approve-backend-lead", "#flash").await;
    assert_eq!(text(&c, "#flash").await, "Approval recorded.");
    // No approval is missing any more; what is left is the state (in review).
    assert!(c.find(Locator::Css("#missing-roles")).await.is_err());
    assert!(!text(&c, "#decision").await.contains("approval-missing"));
    assert!(text(&c, "#decision").await.contains("state-invalid"));
    // The change moves to approved (through the API): the open page's decision panel flips to
    // allowed by itself (htmx refreshes it), without a reload.
    let (st, b) = srv
        .post(
            "/api/v1/changes/CR-7/ops",
            &srv.admin,
            &json!({"op": "transition", "event": "approve"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let mut verdict = String::new();
    for _ in 0..60 {
        verdict = text(&c, "#verdict").await;
        if verdict.starts_with("Allowed to deploy") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(verdict.starts_with("Allowed to deploy"), "{verdict}");
    assert_eq!(
        text(&c, "#flash").await,
        "Approval recorded.",
        "not reloaded"
    );
    assert!(text(&c, "#role-backend-lead").await.contains("✓ bob"));
    assert!(text(&c, "#timeline").await.contains("inclusion proof"));
    shot(&c, "change-approved").await;

    // The calendar month.
    c.goto(&format!("{base}/calendar?month=2026-03&category=2"))
        .await
        .unwrap();
    assert_eq!(text(&c, "#month-title").await, "March 2026");
    assert!(
        text(&c, "#day-2026-03-10")
            .await
            .contains("standard window")
    );
    assert!(text(&c, "#day-2026-03-10").await.contains("incident INC-7"));
    // Open since today: not on the days to come.
    assert!(!text(&c, "#day-2026-03-11").await.contains("INC-7"));
    shot(&c, "calendar").await;

    for (path, name) in [
        ("/rollouts", "rollouts"),
        ("/incidents", "incidents"),
        ("/reports", "reports"),
        ("/audit", "audit"),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        shot(&c, name).await;
    }
    click_to(&c, "#verify", "#verify-result").await;
    assert!(
        text(&c, "#verify-result")
            .await
            .contains("Verified: the log is intact.")
    );
    shot(&c, "audit-verified").await;

    // A forged POST from this very page (a form without the session's CSRF token): refused.
    c.goto(&format!("{base}/changes/CR-1")).await.unwrap();
    c.execute(
        "const f = document.createElement('form'); f.method = 'post'; \
         f.action = '/changes/CR-1/attest'; const i = document.createElement('input'); \
         i.name = 'item'; i.value = 'tests-pass'; f.appendChild(i); document.body.appendChild(f); \
         f.submit();",
        vec![],
    )
    .await
    .unwrap();
    c.wait()
        .for_element(Locator::Css("#refusal-code"))
        .await
        .unwrap();
    assert_eq!(text(&c, "#refusal-code").await, "csrf-token-invalid");
    shot(&c, "csrf-refused").await;
    let (_, cr1) = srv.get("/api/v1/changes/CR-1", &srv.admin).await;
    assert_eq!(cr1["attestations"], json!([]));

    // A forged POST from another site: SameSite=Strict keeps the cookie home, so it arrives
    // signed out and lands on the sign-in page; nothing stored.
    let forged = format!(
        "data:text/html,<form id=f method=post action='{base}/changes/CR-1/attest'>\
         <input name=item value=tests-pass></form><script>document.getElementById('f').submit()</script>"
    );
    c.goto(&forged).await.unwrap();
    let mut landed = String::new();
    for _ in 0..50 {
        landed = c.current_url().await.unwrap().to_string();
        if landed.starts_with(&base) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(landed, format!("{base}/login"));
    let (_, cr1) = srv.get("/api/v1/changes/CR-1", &srv.admin).await;
    assert_eq!(cr1["attestations"], json!([]));

    // Sign out.
    sign_in(&c, &base, &srv.token("bob").await).await;
    click_to(&c, "#sign-out", "#notice").await;
    assert_eq!(text(&c, "#notice").await, "You are signed out.");
    c.close().await.unwrap();

    // carol holds no role: no button, and the POST behind it is refused with the API's code.
    let c = browser(&d, 390, 844).await;
    sign_in(&c, &base, &srv.token("carol").await).await;
    shot(&c, "changes-phone").await;
    let body = json!({
        "id": "CR-8", "repository": "acme/chat", "title": "Another endpoint",
        "base_commit": "a1", "head_commit": "b2", "authors": ["alice"], "last_pusher": "alice",
        "classification": {"category": 2, "facets": [], "required_roles": ["backend-lead"]}, "submit": true,
    });
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
    assert_eq!(st, 201, "{b}");
    c.goto(&format!("{base}/changes/CR-8")).await.unwrap();
    assert!(
        c.find(Locator::Css("#approve-backend-lead")).await.is_err(),
        "carol must not see an approve button"
    );
    assert!(
        text(&c, "#role-backend-lead")
            .await
            .contains("You cannot approve")
    );
    // Post the form she was not shown, with her own valid CSRF token.
    c.execute(
        "const f = document.createElement('form'); f.method = 'post'; \
         f.action = '/changes/CR-8/approve'; \
         for (const [k, v] of [['role', 'backend-lead'], ['csrf', document.querySelector('input[name=csrf]').value]]) { \
           const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i); } \
         document.body.appendChild(f); f.submit();",
        vec![],
    )
    .await
    .unwrap();
    c.wait()
        .for_element(Locator::Css("#refusal-code"))
        .await
        .unwrap();
    let code = text(&c, "#refusal-code").await;
    assert_ne!(code, "csrf-token-invalid");
    assert!(code.contains("role") || code.contains("approval"), "{code}");
    shot(&c, "approval-refused").await;
    let (_, cr8) = srv.get("/api/v1/changes/CR-8", &srv.admin).await;
    assert_eq!(cr8["approvals"], json!([]));

    // The session expires by the server's clock (8 hours): the next page is the sign-in page.
    srv.set_now(at("2026-03-10T18:31:00Z"));
    c.goto(&format!("{base}/changes")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    assert!(text(&c, "#notice").await.contains("Your session ended"));
    shot(&c, "session-expired").await;
    c.close().await.unwrap();
}

/// Sign in with GitHub in the browser: the button on the sign-in page, the trip to GitHub (the
/// stand-in's github.com, its user signed in, answers the authorize request with a redirect, as
/// GitHub does once the user has authorized the app) and back, landing on the list as the person
/// the policy maps the login to; then sign out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_with_github_in_headless_chromium() {
    let fake = changegate_testkit::fake_github::FakeGitHub::start().await;
    let policy = changegate_gate::corpus::case_policy(
        &changegate_testkit::server::people(),
        "[people.bob]\ngithub = \"Bob-GH\"\ngithub_id = 4242\n",
    )
    .unwrap();
    let srv = TestServer::start_with_github_login(
        Backend::Sqlite,
        policy,
        at("2026-03-10T10:30:00Z"),
        &fake,
    )
    .await;
    ready_but_for_approval(&srv).await;
    fake.rest.sign_in_as("bob-gh", 4242);
    let base = srv.base.clone();
    let d = driver().await;
    let c = browser(&d, 1280, 900).await;
    c.goto(&format!("{base}/login")).await.unwrap();
    shot(&c, "login-github").await;
    click_to(&c, "#sign-in-github", "#signed-in-as").await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.origin().ascii_serialization(), base, "{url}");
    assert_eq!(url.path(), "/changes", "{url}");
    assert!(text(&c, "#signed-in-as").await.contains("bob"));
    assert!(text(&c, "#waiting-total").await.starts_with("1 "));
    // The session cookie is HttpOnly: scripts do not see it.
    let cookies = c.execute("return document.cookie", vec![]).await.unwrap();
    let cookies = cookies.as_str().unwrap_or("");
    assert!(!cookies.contains("cg_session"), "{cookies}");
    shot(&c, "changes-github").await;
    // A GitHub user the policy does not know is refused, and nobody is signed in.
    click_to(&c, "#sign-out", "#sign-in-github").await;
    fake.rest.sign_in_as("mallory-gh", 666);
    click_to(&c, "#sign-in-github", "#refusal-code").await;
    assert_eq!(text(&c, "#refusal-code").await, "github-user-unmapped");
    let err = text(&c, "#refusal").await;
    assert!(err.contains("mallory-gh (id 666)"), "{err}");
    shot(&c, "login-github-refused").await;
    c.goto(&format!("{base}/changes")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    c.close().await.unwrap();
}
