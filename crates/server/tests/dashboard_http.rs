//! The dashboard over plain HTTP, on SQLite and PostgreSQL: sign-in and its cookie, reading needs a
//! session, CSRF on every form, the same authority as the API (no button, and the POST refused
//! anyway), session expiry by the server's clock, sign-out and revoked tokens, and every page.

use changegate_testkit::both;
use changegate_testkit::server::{Backend, TestServer, people_policy};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

/// A category-2 change by alice that waits on the backend lead (bob).
fn cat2(id: &str) -> Value {
    json!({
        "id": id,
        "repository": "acme/chat", "title": "Add pins endpoint", "base_commit": "a1", "head_commit": "b1",
        "authors": ["alice"], "last_pusher": "alice",
        "classification": {"category": 2, "facets": [{"kind": "api-endpoint-added", "roles": ["backend-lead"], "category": 2}], "required_roles": ["backend-lead"]},
        "submit": true,
    })
}

async fn server(backend: Backend) -> TestServer {
    TestServer::start(backend, people_policy(), at("2026-03-10T10:30:00Z")).await
}

/// A browser-like client that does not follow redirects and keeps cookies by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser {
    fn new(srv: &TestServer) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: srv.base.clone(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let r = if self.cookies.is_empty() {
            r
        } else {
            r.header(COOKIE, self.cookie_header())
        };
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() && !c.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        let body = resp.text().await.unwrap();
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form));
        self.send(r).await
    }

    /// Sign in with `token`; the landing page.
    async fn sign_in(&mut self, token: &str) -> Page {
        let login = self.get("/login").await;
        assert_eq!(login.status, 200);
        let csrf = hidden(&login.body, "csrf");
        self.post("/login", &[("token", token), ("csrf", &csrf)])
            .await
    }
}

/// The value of the first hidden input `name` in a page.
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
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"));
    let rest = &body[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn create(srv: &TestServer, id: &str) {
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &cat2(id)).await;
    assert_eq!(st, 201, "{b}");
}

async fn approvals(srv: &TestServer, id: &str) -> Vec<Value> {
    let (_, b) = srv.get(&format!("/api/v1/changes/{id}"), &srv.admin).await;
    b["approvals"].as_array().cloned().unwrap_or_default()
}

both!(signing_in_sets_a_strict_http_only_cookie_and_reading_needs_it);
async fn signing_in_sets_a_strict_http_only_cookie_and_reading_needs_it(backend: Backend) {
    let srv = server(backend).await;
    create(&srv, "CR-1").await;
    let mut b = Browser::new(&srv);
    // Signed out: every page sends to the sign-in page; `/` too.
    for path in [
        "/",
        "/changes",
        "/changes/CR-1",
        "/calendar",
        "/rollouts",
        "/incidents",
        "/reports",
        "/audit",
        "/audit/export.jsonl",
    ] {
        let p = b.get(path).await;
        assert_eq!(
            (p.status, p.location.as_deref()),
            (303, Some("/login")),
            "{path}"
        );
        assert!(!p.body.contains("CR-1"), "{path}");
    }
    let login = b.get("/login").await;
    assert!(login.body.contains("<html lang=\"en\">"));
    assert!(login.body.contains("<label for=\"token\">"));
    let csrf = hidden(&login.body, "csrf");
    // A sign-in form not from this browser's page (no matching login cookie) is refused.
    let mut other = Browser::new(&srv);
    let bob = srv.token("bob").await;
    let p = other
        .post("/login", &[("token", &bob), ("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("csrf-token-invalid"), "{}", p.body);
    assert!(other.cookie("cg_session").is_none());
    // Wrong tokens: a clear page, no session.
    let (id, _) = bob.strip_prefix("cg_").unwrap().split_once('_').unwrap();
    let forged = format!("cg_{id}_{}", "0".repeat(64));
    for bad in ["", "nope", forged.as_str()] {
        let p = b.sign_in(bad).await;
        assert_eq!(p.status, 401, "{bad}");
        assert!(p.body.contains("not a valid API token"), "{}", p.body);
        assert!(b.cookie("cg_session").is_none());
    }
    // An integration token is no person.
    let ci = srv
        .integration_token("ci", &[changegate_server::token::Scope::CiEvidence])
        .await;
    let p = b.sign_in(&ci).await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("integration"), "{}", p.body);
    // A person's token opens a session.
    let p = b.sign_in(&bob).await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/changes")));
    let cookie = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("cg_session="))
        .unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // The secret is not what the store keeps: only its digest.
    let secret = b.cookie("cg_session").unwrap();
    assert!(srv.db.find_session(&secret).await.unwrap().is_none());
    let digest = changegate_server::token::digest(&secret);
    assert_eq!(
        srv.db.find_session(&digest).await.unwrap().unwrap().person,
        "bob"
    );
    let p = b.get("/").await;
    assert_eq!(p.location.as_deref(), Some("/changes"));
    let p = b.get("/changes").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("href=\"/changes/CR-1\""), "{}", p.body);
    assert!(p.body.contains("Signed in as <strong>bob</strong>"));
    // Pages carry a CSP that allows only this server's scripts.
    let resp = reqwest::Client::new()
        .get(format!("{}/changes", srv.base))
        .header(COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    // Behind an https proxy the cookie is Secure.
    let mut tls = Browser::new(&srv);
    let login = tls.get("/login").await;
    let csrf = hidden(&login.body, "csrf");
    let r = tls
        .http
        .post(format!("{}/login", srv.base))
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("token", bob.as_str()),
            ("csrf", csrf.as_str()),
        ]));
    let p = tls.send(r).await;
    let cookie = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("cg_session="))
        .unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

both!(every_form_needs_the_session_csrf_token);
async fn every_form_needs_the_session_csrf_token(backend: Backend) {
    let srv = server(backend).await;
    create(&srv, "CR-1").await;
    let mut bob = Browser::new(&srv);
    bob.sign_in(&srv.token("bob").await).await;
    let page = bob.get("/changes/CR-1").await;
    assert!(
        page.body.contains("id=\"approve-backend-lead\""),
        "{}",
        page.body
    );
    let mine = hidden(&page.body, "csrf");
    let mut sam = Browser::new(&srv);
    sam.sign_in(&srv.token("sam").await).await;
    let theirs = hidden(&sam.get("/changes").await.body, "csrf");
    assert_ne!(mine, theirs, "CSRF tokens are per session");
    let size = srv.db.store().head().await.unwrap().size;
    for (what, form) in [
        ("none", vec![("role", "backend-lead")]),
        ("empty", vec![("role", "backend-lead"), ("csrf", "")]),
        (
            "another session's",
            vec![("role", "backend-lead"), ("csrf", theirs.as_str())],
        ),
        (
            "altered",
            vec![("role", "backend-lead"), ("csrf", &mine[..mine.len() - 1])],
        ),
    ] {
        let p = bob.post("/changes/CR-1/approve", &form).await;
        assert_eq!(p.status, 403, "{what}");
        assert!(p.body.contains("csrf-token-invalid"), "{what}: {}", p.body);
    }
    for path in [
        "/changes/CR-1/attest",
        "/rollouts/CR-1/rollback",
        "/audit/verify",
        "/logout",
    ] {
        let p = bob.post(path, &[("csrf", theirs.as_str())]).await;
        assert_eq!(p.status, 403, "{path}");
    }
    assert!(approvals(&srv, "CR-1").await.is_empty());
    assert_eq!(srv.db.store().head().await.unwrap().size, size);
    // Still signed in (the forged sign-out did nothing); with its own token the form works.
    let p = bob
        .post(
            "/changes/CR-1/approve",
            &[("role", "backend-lead"), ("csrf", mine.as_str())],
        )
        .await;
    assert_eq!(
        (p.status, p.location.as_deref()),
        (303, Some("/changes/CR-1?done=approved"))
    );
    let a = approvals(&srv, "CR-1").await;
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0]["person"].as_str(), a[0]["role"].as_str()),
        (Some("bob"), Some("backend-lead"))
    );
    let page = bob.get("/changes/CR-1?done=approved").await;
    assert!(page.body.contains("Approval recorded."));
    assert!(page.body.contains("✓ bob"), "{}", page.body);
    assert!(!page.body.contains("id=\"approve-backend-lead\""));
    // The approval is on the audit timeline with a link to its inclusion proof.
    let (_, ev) = srv.get("/api/v1/changes/CR-1", &srv.admin).await;
    assert_eq!(ev["approvals"][0]["person"], "bob");
    assert!(
        page.body.contains("change.approved") || page.body.contains("approval"),
        "{}",
        page.body
    );
    let link = page
        .body
        .split("href=\"/audit/proofs/")
        .nth(1)
        .map(|r| r[..r.find('"').unwrap()].to_string())
        .unwrap();
    let proof = bob.get(&format!("/audit/proofs/{link}")).await;
    assert_eq!(proof.status, 200, "{}", proof.body);
    let proof: Value = serde_json::from_str(&proof.body).unwrap();
    assert!(proof.is_object());
}

both!(pages_show_no_button_the_api_would_refuse_and_refuse_the_post_anyway);
async fn pages_show_no_button_the_api_would_refuse_and_refuse_the_post_anyway(backend: Backend) {
    let srv = server(backend).await;
    create(&srv, "CR-1").await;
    for (person, why) in [("carol", "holds no role"), ("alice", "is the author")] {
        let token = srv.token(person).await;
        let mut b = Browser::new(&srv);
        b.sign_in(&token).await;
        let page = b.get("/changes/CR-1").await;
        assert_eq!(page.status, 200);
        assert!(
            !page.body.contains("id=\"approve-backend-lead\""),
            "{person} {why}: {}",
            page.body
        );
        assert!(page.body.contains("You cannot approve"), "{}", page.body);
        let csrf = hidden(&page.body, "csrf");
        let p = b
            .post(
                "/changes/CR-1/approve",
                &[("role", "backend-lead"), ("csrf", csrf.as_str())],
            )
            .await;
        // The same refusal as the API's for the same token.
        let (st, api) = srv
            .post(
                "/api/v1/changes/CR-1/approvals",
                &token,
                &json!({"role": "backend-lead"}),
            )
            .await;
        assert_eq!(p.status, st, "{person}: {} / {api}", p.body);
        assert!((400..500).contains(&st), "{api}");
        let code = api["code"].as_str().unwrap();
        assert!(p.body.contains(code), "{person}: {code} not in {}", p.body);
        assert!(approvals(&srv, "CR-1").await.is_empty());
        // Not counted as waiting on them either.
        let list = b.get("/changes?waiting=1").await;
        assert!(list.body.contains("No changes match."), "{}", list.body);
    }
    // bob: one change waits on him, counted and filtered.
    let mut bob = Browser::new(&srv);
    bob.sign_in(&srv.token("bob").await).await;
    let list = bob.get("/changes?waiting=1").await;
    assert!(
        list.body.contains("<strong>1</strong> waiting on you"),
        "{}",
        list.body
    );
    assert!(list.body.contains("href=\"/changes/CR-1\""));
    // An unknown role is a clear 400 page.
    let csrf = hidden(&list.body, "csrf");
    let p = bob
        .post(
            "/changes/CR-1/approve",
            &[("role", "nobody"), ("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("unknown-role"));
    // An unknown change is a 404 page.
    assert_eq!(bob.get("/changes/NOPE").await.status, 404);
}

both!(sessions_expire_by_the_server_clock_and_end_with_their_token);
async fn sessions_expire_by_the_server_clock_and_end_with_their_token(backend: Backend) {
    let srv = server(backend).await;
    let mut b = Browser::new(&srv);
    let token = srv.token("bob").await;
    b.sign_in(&token).await;
    assert_eq!(b.get("/changes").await.status, 200);
    srv.set_now(at("2026-03-10T18:29:59Z"));
    assert_eq!(b.get("/changes").await.status, 200, "7h59m59s later");
    srv.set_now(at("2026-03-10T18:30:00Z"));
    let p = b.get("/changes").await;
    assert_eq!(
        (p.status, p.location.as_deref()),
        (303, Some("/login?expired=1"))
    );
    let login = b.get("/login?expired=1").await;
    assert!(login.body.contains("Your session ended"));
    // Sign in again, then revoke the token through the API: the session ends with it.
    b.sign_in(&token).await;
    assert_eq!(b.get("/changes").await.status, 200);
    let (id, _) = token.strip_prefix("cg_").unwrap().split_once('_').unwrap();
    let (st, _) = srv
        .req(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&srv.admin),
            None,
        )
        .await;
    assert!(st < 300, "{st}");
    let p = b.get("/changes").await;
    assert_eq!(p.location.as_deref(), Some("/login?expired=1"));
    let p = b.sign_in(&token).await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("revoked"));
    // Signing out ends the session on the server: the old cookie no longer works.
    let mut c = Browser::new(&srv);
    c.sign_in(&srv.token("sam").await).await;
    let old = c.cookie("cg_session").unwrap();
    let csrf = hidden(&c.get("/changes").await.body, "csrf");
    let p = c.post("/logout", &[("csrf", csrf.as_str())]).await;
    assert_eq!(p.location.as_deref(), Some("/login?signed_out=1"));
    assert!(c.cookie("cg_session").is_none());
    c.cookies.push(("cg_session".into(), old));
    assert_eq!(c.get("/changes").await.location.as_deref(), Some("/login"));
}

both!(every_page_renders_for_a_signed_in_person);
async fn every_page_renders_for_a_signed_in_person(backend: Backend) {
    let srv = server(backend).await;
    create(&srv, "CR-1").await;
    let (st, b) = srv
        .post(
            "/api/v1/incidents",
            &srv.admin,
            &json!({"id": "INC-7", "severity": "P1", "title": "Chat is down", "commander": "sam"}),
        )
        .await;
    assert!(st < 300, "{b}");
    let mut b = Browser::new(&srv);
    b.sign_in(&srv.token("bob").await).await;
    let cal = b.get("/calendar?month=2026-03&category=2").await;
    assert_eq!(cal.status, 200);
    for want in [
        "March 2026",
        "id=\"day-2026-03-10\"",
        "standard window",
        "incident INC-7",
    ] {
        assert!(cal.body.contains(want), "{want}: {}", cal.body);
    }
    let bad = b.get("/calendar?month=March&category=x").await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains("is not YYYY-MM"));
    assert!(bad.body.contains("is not a level"));
    let inc = b.get("/incidents").await;
    assert!(
        inc.body.contains("INC-7") && inc.body.contains("sam"),
        "{}",
        inc.body
    );
    assert!(inc.body.contains("frozen"), "{}", inc.body);
    let ro = b.get("/rollouts").await;
    assert_eq!(ro.status, 200);
    assert!(ro.body.contains("No rollout is active."));
    assert!(b.get("/reports").await.body.contains("Reports"));
    let audit = b.get("/audit").await;
    assert!(audit.body.contains("id=\"checkpoint\""));
    let csrf = hidden(&audit.body, "csrf");
    let v = b.post("/audit/verify", &[("csrf", csrf.as_str())]).await;
    assert_eq!(v.status, 200);
    assert!(
        v.body.contains("Verified: the log is intact."),
        "{}",
        v.body
    );
    let export = b.get("/audit/export.jsonl?change=CR-1").await;
    assert_eq!(export.status, 200);
    let first: Value = serde_json::from_str(export.body.lines().next().unwrap()).unwrap();
    assert_eq!(first["change_id"], "CR-1");
    let cp = b.get("/audit/checkpoint").await;
    assert!(cp.status == 200 && !cp.body.is_empty());
    // Filters, sorting and paging of the list; bad values are said, not a 500.
    let list = b
        .get("/changes?state=in-review&category=2&sort=title&dir=asc")
        .await;
    assert!(list.body.contains("href=\"/changes/CR-1\""));
    let none = b.get("/changes?state=deployed").await;
    assert!(none.body.contains("No changes match."));
    let odd = b.get("/changes?category=two&page=zero&sort=size").await;
    assert_eq!(odd.status, 200);
    for want in ["category `two`", "page `zero`", "sort `size`"] {
        assert!(odd.body.contains(want), "{want}");
    }
    // The stylesheet and htmx are served from the binary.
    let css = b.get("/assets/dashboard.css").await;
    assert!(css.body.contains(":root"));
    let js = b.get("/assets/htmx.min.js").await;
    assert!(js.body.len() > 10_000);
}
