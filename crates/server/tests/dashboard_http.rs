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

/// The list page links each of `ids`, in that order (newest first).
fn listed_in_order(body: &str, ids: &[&str]) {
    let at = |id: &str| {
        body.find(&format!("href=\"/changes/{id}\""))
            .unwrap_or_else(|| panic!("{id} not listed: {body}"))
    };
    for w in ids.windows(2) {
        assert!(at(w[0]) < at(w[1]), "{} before {}: {body}", w[0], w[1]);
    }
}

/// Whether a list page links to change `id`.
fn lists(page: &Page, id: &str) -> bool {
    page.body.contains(&format!("href=\"/changes/{id}\""))
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
    assert!(lists(&p, "CR-1"), "{}", p.body);
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

both!(the_list_follows_every_kind_of_write_between_two_reads);
/// The kept listing is brought forward from the audit events since it was read (ADR 0033): each
/// kind of write between two reads of the list shows on the second.
async fn the_list_follows_every_kind_of_write_between_two_reads(backend: Backend) {
    use changegate_audit::{AuditEvent, kinds};
    let srv = server(backend).await;
    create(&srv, "CR-1").await;
    create(&srv, "CR-2").await;
    let mut bob = Browser::new(&srv);
    bob.sign_in(&srv.token("bob").await).await;
    let list = bob.get("/changes").await;
    assert!(
        list.body.contains("<strong>2</strong> waiting on you"),
        "{}",
        list.body
    );

    // A change written through the API (an approval): its row moves, the other stays.
    let (st, b) = srv
        .post(
            "/api/v1/changes/CR-1/approvals",
            &srv.token("bob").await,
            &json!({"role": "backend-lead"}),
        )
        .await;
    assert!(st < 300, "{b}");
    let list = bob.get("/changes?waiting=1").await;
    assert!(
        list.body.contains("<strong>1</strong> waiting on you"),
        "{}",
        list.body
    );
    assert!(!lists(&list, "CR-1"), "{}", list.body);
    assert!(lists(&list, "CR-2"), "{}", list.body);

    // Two changes written through the store between two reads, with events that are not
    // document writes in between (a recorded decision).
    for (id, title) in [("CR-1", "Renamed one"), ("CR-2", "Renamed two")] {
        let cur = srv.db.change(id).await.unwrap().unwrap();
        let mut st = cur.value.clone();
        st.change.title = title.into();
        let ev = AuditEvent::new(kinds::CHANGE_STATE, "admin").change(id);
        srv.db
            .update_change(id, cur.version, &st, ev)
            .await
            .unwrap()
            .unwrap();
        srv.db
            .record(AuditEvent::new(kinds::GATE_DECISION, "admin").change(id))
            .await
            .unwrap();
    }
    let list = bob.get("/changes").await;
    for want in ["Renamed one", "Renamed two"] {
        assert!(list.body.contains(want), "{want}: {}", list.body);
    }
    assert!(!list.body.contains("Add pins endpoint"), "{}", list.body);

    // A new change: listed first (newest first).
    create(&srv, "CR-3").await;
    listed_in_order(&bob.get("/changes").await.body, &["CR-3", "CR-2", "CR-1"]);
    // Two at once, between two reads: both listed, the newest first.
    create(&srv, "CR-9").await;
    create(&srv, "CR-0").await;
    listed_in_order(&bob.get("/changes").await.body, &["CR-0", "CR-9", "CR-3"]);

    // A write of the world (an incident) shows on the pages that read the world from the list.
    let before = bob.get("/incidents").await;
    assert!(!before.body.contains("INC-9"), "{}", before.body);
    let (st, b) = srv
        .post(
            "/api/v1/incidents",
            &srv.admin,
            &json!({"id": "INC-9", "severity": "P1", "title": "Chat is down", "commander": "sam"}),
        )
        .await;
    assert!(st < 300, "{b}");
    let after = bob.get("/incidents").await;
    assert!(after.body.contains("INC-9"), "{}", after.body);

    // A write of the world's people: an e-mail that turns out to be bob's. CR-4's author is
    // that e-mail, so it waits on bob, until the alias makes him its author.
    let mut by_email = cat2("CR-4");
    by_email["authors"] = json!(["bob@example.com"]);
    by_email["last_pusher"] = json!("bob@example.com");
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &by_email).await;
    assert_eq!(st, 201, "{b}");
    let list = bob.get("/changes?waiting=1").await;
    assert!(lists(&list, "CR-4"), "{}", list.body);
    srv.alias("bob@example.com", "bob").await;
    let list = bob.get("/changes?waiting=1").await;
    assert!(!lists(&list, "CR-4"), "{}", list.body);
    assert!(lists(&list, "CR-2"), "{}", list.body);

    // A write of the world's teams: tom holds sre-lead through team `sre` and approves CR-5;
    // once the team no longer has him, his approval stops counting and CR-5 waits on sam.
    let put_team = |members: Value| {
        let srv = &srv;
        async move {
            let (st, b) = srv
                .put(
                    "/api/v1/teams/sre",
                    &srv.admin,
                    &json!({ "members": members }),
                )
                .await;
            assert!(st < 300, "{b}");
        }
    };
    put_team(json!(["tom"])).await;
    let mut sre = cat2("CR-5");
    sre["classification"]["required_roles"] = json!(["sre-lead"]);
    sre["classification"]["facets"][0]["roles"] = json!(["sre-lead"]);
    let (st, b) = srv.post("/api/v1/changes", &srv.admin, &sre).await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = srv
        .post(
            "/api/v1/changes/CR-5/approvals",
            &srv.token("tom").await,
            &json!({"role": "sre-lead"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let mut sam = Browser::new(&srv);
    sam.sign_in(&srv.token("sam").await).await;
    let list = sam.get("/changes?waiting=1").await;
    assert!(!lists(&list, "CR-5"), "{}", list.body);
    put_team(json!([])).await;
    let list = sam.get("/changes?waiting=1").await;
    assert!(lists(&list, "CR-5"), "{}", list.body);
}

// ---------------------------------------------------------------------------------------------
// A change's facets with their evidence

/// A change by alice with facets whose evidence is on the head and the base side, and a path
/// and details that need escaping.
fn with_evidence(id: &str, repository: &str, pr: Option<&str>) -> Value {
    json!({
        "id": id, "repository": repository, "pr_link": pr, "title": "Drop legacy column",
        "base_commit": "a1b2c3d4e5", "head_commit": "0123456789abcdef0123456789abcdef01234567",
        "authors": ["alice"], "last_pusher": "alice",
        "classification": {"category": 2, "facets": [
            {"kind": "api-endpoint-added", "roles": ["backend-lead"], "category": 2,
             "details": "POST /pins <script>alert(1)</script>",
             "evidence": [{"path": "src/pins.ts", "line": 12},
                          {"path": "db/\"old\" <v1>&#1.sql", "line": 3, "side": "base"}],
             "more_evidence": 4},
            {"kind": "code-changed", "roles": [], "category": 1}
        ], "required_roles": ["backend-lead"]},
        "submit": true,
    })
}

both!(the_change_page_shows_each_facets_evidence_linked_to_the_forge);
async fn the_change_page_shows_each_facets_evidence_linked_to_the_forge(backend: Backend) {
    let srv = server(backend).await;
    for (id, repo, pr) in [
        ("CR-1", "https://github.com/acme/chat.git", None),
        ("CR-2", "acme/chat", None),
        (
            "CR-3",
            "acme/chat",
            Some("https://github.com/acme/chat/pull/9"),
        ),
    ] {
        let (st, b) = srv
            .post("/api/v1/changes", &srv.admin, &with_evidence(id, repo, pr))
            .await;
        assert_eq!(st, 201, "{b}");
    }
    // The evidence is kept with the change.
    let (_, c) = srv.get("/api/v1/changes/CR-1", &srv.admin).await;
    let f = &c["change"]["classification"]["facets"][0];
    assert_eq!(
        f["evidence"][0],
        json!({"path": "src/pins.ts", "line": 12}),
        "{c}"
    );
    assert_eq!(f["more_evidence"], 4);
    let mut b = Browser::new(&srv);
    b.sign_in(&srv.token("bob").await).await;
    let p = b.get("/changes/CR-1").await;
    assert_eq!(p.status, 200);
    // file:line, linked to the file at the head commit on GitHub.
    assert!(
        p.body.contains(
            "<a class=\"evidence-link\" href=\"https://github.com/acme/chat/blob/0123456789abcdef0123456789abcdef01234567/src/pins.ts#L12\"><code>src/pins.ts:12</code></a>"
        ),
        "{}",
        p.body
    );
    // Base-side evidence links the base commit; the path is percent-encoded in the link and
    // HTML-escaped in the text.
    assert!(
        p.body.contains(
            "href=\"https://github.com/acme/chat/blob/a1b2c3d4e5/db/%22old%22%20%3Cv1%3E%26%231.sql#L3\""
        ),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<code>db/&#34;old&#34; &#60;v1&#62;&#38;#1.sql:3</code>")
            || p.body
                .contains("<code>db/&quot;old&quot; &lt;v1&gt;&amp;#1.sql:3</code>"),
        "{}",
        p.body
    );
    assert!(p.body.contains("(base commit)"));
    assert!(p.body.contains("and 4 more"));
    assert!(
        !p.body.contains("<script>alert(1)</script>"),
        "details escaped"
    );
    // A facet without evidence says so.
    assert!(p.body.contains("no file and line recorded with the change"));
    // Where the classification came from.
    assert!(p.body.contains("vouched for by token"), "{}", p.body);
    // A bare `owner/name` has no known forge: the place is shown, not linked.
    let p = b.get("/changes/CR-2").await;
    assert!(
        p.body
            .contains("<code class=\"evidence-place\">src/pins.ts:12</code>"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("github.com/acme/chat/blob"), "{}", p.body);
    // Its GitHub pull request names the forge.
    let p = b.get("/changes/CR-3").await;
    assert!(
        p.body.contains("href=\"https://github.com/acme/chat/blob/0123456789abcdef0123456789abcdef01234567/src/pins.ts#L12\""),
        "{}",
        p.body
    );
    // Evidence that is not a relative file path is refused where it is, nothing stored.
    for (ev, why) in [
        (json!({"path": "../etc/passwd", "line": 1}), "relative"),
        (json!({"path": "/etc/passwd"}), "relative"),
        (json!({"path": "a.rs", "line": 0}), "counts from 1"),
        (json!({"path": ""}), "1 to 1024"),
    ] {
        let mut body = with_evidence("CR-9", "acme/chat", None);
        body["classification"]["facets"][0]["evidence"] = json!([ev]);
        let (st, b) = srv.post("/api/v1/changes", &srv.admin, &body).await;
        assert_eq!(st, 400, "{b}");
        assert_eq!(b["code"], "invalid-body", "{b}");
        assert!(b["message"].as_str().unwrap().contains(why), "{b}");
        assert_eq!(
            b["location"], "body `classification.facets[0].evidence[0]`",
            "{b}"
        );
    }
    let (st, _) = srv.get("/api/v1/changes/CR-9", &srv.admin).await;
    assert_eq!(st, 404);
}

both!(the_change_page_links_the_evidence_the_server_observed);
async fn the_change_page_links_the_evidence_the_server_observed(backend: Backend) {
    use changegate_testkit::git::GitRepo;
    // A repository under the server's repo root: the server classifies it itself.
    let root = tempfile::tempdir().unwrap();
    let repo = GitRepo::init_at(&root.path().join("chat"));
    repo.write(
        "prisma/migrations/001_init/migration.sql",
        "CREATE TABLE \"User\" (\"id\" INTEGER NOT NULL, \"email\" TEXT, CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\"));\n",
    );
    let base = repo.commit("init");
    repo.write(
        "prisma/migrations/002_drop/migration.sql",
        "-- drop the e-mail\nALTER TABLE \"User\" DROP COLUMN \"email\";\n",
    );
    let head = repo.commit("drop email");
    let srv = TestServer::start_with(
        backend,
        people_policy(),
        at("2026-03-10T10:30:00Z"),
        Some(root.path().to_path_buf()),
        None,
    )
    .await;
    let alice = srv.token("alice").await;
    let (st, b) = srv
        .post(
            "/api/v1/changes",
            &alice,
            &json!({"id": "CR-1", "repository": "chat", "base_commit": base, "head_commit": head,
                    "pr_link": "https://github.com/acme/chat/pull/3", "title": "Drop e-mail"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let facets = b["change"]["classification"]["facets"]
        .as_array()
        .unwrap()
        .clone();
    let dropped = facets
        .iter()
        .find(|f| f["kind"] == "schema-column-dropped")
        .unwrap_or_else(|| panic!("{facets:#?}"));
    let ev = &dropped["evidence"][0];
    assert_eq!(
        ev["path"], "prisma/migrations/002_drop/migration.sql",
        "{dropped}"
    );
    assert_eq!(ev["line"], 2, "{dropped}");
    let mut br = Browser::new(&srv);
    br.sign_in(&srv.token("bob").await).await;
    let p = br.get("/changes/CR-1").await;
    let link = format!(
        "href=\"https://github.com/acme/chat/blob/{head}/prisma/migrations/002_drop/migration.sql#L2\""
    );
    assert!(p.body.contains(&link), "{link} in {}", p.body);
    assert!(
        p.body.contains("read by changegate from the repository"),
        "{}",
        p.body
    );
}

// ---------------------------------------------------------------------------------------------
// Sign in with GitHub

/// The people policy with GitHub logins: bob is `Bob-GH` (user 4242), carol `carol-gh` (any id).
fn github_people() -> changegate_policy::Policy {
    changegate_gate::corpus::case_policy(
        &changegate_testkit::server::people(),
        "[people.bob]\ngithub = \"Bob-GH\"\ngithub_id = 4242\n[people.carol]\ngithub = \"carol-gh\"\n",
    )
    .unwrap()
}

async fn github_server(
    backend: Backend,
    fake: &changegate_testkit::fake_github::FakeGitHub,
) -> TestServer {
    github_server_for(backend, fake, github_people()).await
}

async fn github_server_for(
    backend: Backend,
    fake: &changegate_testkit::fake_github::FakeGitHub,
    policy: changegate_policy::Policy,
) -> TestServer {
    TestServer::start_with_github_login(backend, policy, at("2026-03-10T10:30:00Z"), fake).await
}

/// The `code` GitHub put in a callback URL.
fn code_of(callback: &str) -> String {
    let after = callback.split("code=").nth(1).unwrap();
    after.split('&').next().unwrap().to_string()
}

/// Leave for GitHub and come back: the callback URL GitHub sends the browser to, and the state
/// the server sent.
async fn to_github_and_back(b: &mut Browser, fake_api: &str) -> (String, String) {
    let start = b.get("/login/github").await;
    assert_eq!(start.status, 303);
    let authorize = start.location.clone().unwrap();
    assert!(
        authorize.starts_with(&format!(
            "{fake_api}/login/oauth/authorize?client_id=Iv1.test-app&redirect_uri="
        )),
        "{authorize}"
    );
    let state_cookie = start
        .set_cookies
        .iter()
        .find(|c| c.starts_with("cg_oauth="))
        .unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/login/github",
        "Max-Age=600",
    ] {
        assert!(state_cookie.contains(part), "{state_cookie}");
    }
    // The cookie holds the state and the PKCE verifier; GitHub is sent the state and the
    // verifier's S256 challenge, never the verifier.
    let kept = b.cookie("cg_oauth").unwrap();
    let (state, verifier) = kept.split_once('.').unwrap();
    let (state, verifier) = (state.to_string(), verifier.to_string());
    assert!(
        authorize.contains(&format!("&state={state}")),
        "{authorize}"
    );
    let challenge = changegate_server::dashboard::github_login::pkce_challenge(&verifier);
    assert!(
        authorize.contains(&format!(
            "&code_challenge={challenge}&code_challenge_method=S256"
        )),
        "{authorize}"
    );
    assert!(!authorize.contains(&verifier), "{authorize}");
    // GitHub (the stand-in, its user signed in) sends the browser back with a code.
    let back = b.http.get(&authorize).send().await.unwrap();
    assert_eq!(back.status(), 302, "{:?}", back.text().await);
    let to = back.headers()["location"].to_str().unwrap().to_string();
    let path = to
        .strip_prefix(&b.base)
        .unwrap_or_else(|| panic!("{to}"))
        .to_string();
    (path, state)
}

both!(signing_in_with_github_maps_the_login_to_a_person);
async fn signing_in_with_github_maps_the_login_to_a_person(backend: Backend) {
    let fake = changegate_testkit::fake_github::FakeGitHub::start().await;
    let srv = github_server(backend, &fake).await;
    create(&srv, "CR-1").await;
    fake.rest.sign_in_as("bob-gh", 4242);
    let mut b = Browser::new(&srv);
    assert!(b.get("/login").await.body.contains("id=\"sign-in-github\""));

    // A forged state (another browser's, or made up): refused before anything is exchanged.
    let (callback, state) = to_github_and_back(&mut b, &fake.api).await;
    let forged = callback.replace(&state, &"f".repeat(64));
    let p = b.get(&forged).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(p.body.contains("github-oauth-state-invalid"), "{}", p.body);
    assert!(b.cookie("cg_session").is_none());
    assert!(b.cookie("cg_oauth").is_none(), "the state is single-use");
    // The genuine callback in a browser that never started a sign-in: no state cookie.
    let mut stranger = Browser::new(&srv);
    let p = stranger.get(&callback).await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("github-oauth-state-invalid"));
    assert!(stranger.cookie("cg_session").is_none());
    assert!(
        fake.rest.requests("oauth/access-token").is_empty(),
        "no code was exchanged"
    );

    // The whole flow: bob's GitHub login (any case) and id are bob.
    let (callback, _) = to_github_and_back(&mut b, &fake.api).await;
    let p = b.get(&callback).await;
    assert_eq!(
        (p.status, p.location.as_deref()),
        (303, Some("/changes")),
        "{}",
        p.body
    );
    let cookie = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("cg_session="))
        .unwrap();
    assert!(
        cookie.contains("SameSite=Strict") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let list = b.get("/changes").await;
    assert!(
        list.body.contains("Signed in as <strong>bob</strong>"),
        "{}",
        list.body
    );
    // The exchange and the user lookup went to GitHub's documented endpoints, conforming.
    let exchange = fake.rest.requests("oauth/access-token");
    assert_eq!(exchange.len(), 1);
    assert_eq!(exchange[0].body["client_id"], "Iv1.test-app");
    assert_eq!(
        exchange[0].body["redirect_uri"],
        format!("{}/login/github/callback", srv.base)
    );
    let user = fake.rest.requests("users/get-authenticated");
    assert_eq!(user.len(), 1);
    assert!(
        user[0]
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer gho_")
    );
    fake.rest.assert_conforming();
    // The session is bob's with bob's roles: the approve button, and the approval recorded as
    // vouched for by the GitHub identity.
    let page = b.get("/changes/CR-1").await;
    assert!(
        page.body.contains("id=\"approve-backend-lead\""),
        "{}",
        page.body
    );
    let csrf = hidden(&page.body, "csrf");
    let p = b
        .post(
            "/changes/CR-1/approve",
            &[("csrf", csrf.as_str()), ("role", "backend-lead")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(approvals(&srv, "CR-1").await[0]["person"], "bob");
    let export = b.get("/audit/export.jsonl?change=CR-1").await;
    assert!(
        export.body.contains("\"token\":\"github:bob-gh\""),
        "{}",
        export.body
    );
    // Nothing of GitHub's secrets is kept: the session row has the login and id only.
    let secret = b.cookie("cg_session").unwrap();
    let row = srv
        .db
        .find_session(&changegate_server::token::digest(&secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.github, Some(("bob-gh".into(), 4242)));
    assert_eq!(row.token_id, "");
    // PKCE: the exchange proved the verifier of this browser's cookie.
    let verifier_sent = exchange[0].body["code_verifier"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(verifier_sent.len(), 64);
    // A code is used once: the same callback again fails at GitHub, nobody signed in.
    let mut again = Browser::new(&srv);
    let (_, state) = to_github_and_back(&mut again, &fake.api).await;
    let code = code_of(&callback);
    let p = again
        .get(&format!("/login/github/callback?code={code}&state={state}"))
        .await;
    assert_eq!(p.status, 502, "{}", p.body);
    assert!(
        p.body.contains("github-oauth-failed") && p.body.contains("bad_verification_code"),
        "{}",
        p.body
    );
    assert!(again.cookie("cg_session").is_none());
    assert!(!p.body.contains("s3cret-client"));

    // An intercepted code (leaked from bob's redirect) brought back in the attacker's own
    // sign-in, with the attacker's own state: the state matches the attacker's cookie, but the
    // code is bound to bob's PKCE challenge, so GitHub refuses the exchange with the attacker's
    // verifier and nobody is signed in as bob.
    let mut victim = Browser::new(&srv);
    let (leaked, _) = to_github_and_back(&mut victim, &fake.api).await;
    let leaked_code = code_of(&leaked);
    let mut attacker = Browser::new(&srv);
    let (_, attacker_state) = to_github_and_back(&mut attacker, &fake.api).await;
    let p = attacker
        .get(&format!(
            "/login/github/callback?code={leaked_code}&state={attacker_state}"
        ))
        .await;
    assert_eq!(p.status, 502, "{}", p.body);
    assert!(
        p.body.contains("github-oauth-failed") && p.body.contains("code_verifier"),
        "{}",
        p.body
    );
    assert!(attacker.cookie("cg_session").is_none());

    // A GitHub user who is no person of the policy is refused; so is bob's login with another
    // user id (a renamed or re-registered account).
    for (login, id) in [("mallory", 666), ("Bob-GH", 9999)] {
        fake.rest.sign_in_as(login, id);
        let mut m = Browser::new(&srv);
        let (callback, _) = to_github_and_back(&mut m, &fake.api).await;
        let p = m.get(&callback).await;
        assert_eq!(p.status, 403, "{login}: {}", p.body);
        assert!(p.body.contains("github-user-unmapped"), "{}", p.body);
        assert!(m.cookie("cg_session").is_none(), "{login}");
    }
    // carol's entry gives no id: her login is enough.
    fake.rest.sign_in_as("carol-gh", 7);
    let mut c = Browser::new(&srv);
    let (callback, _) = to_github_and_back(&mut c, &fake.api).await;
    assert_eq!(c.get(&callback).await.location.as_deref(), Some("/changes"));
    assert!(
        c.get("/changes")
            .await
            .body
            .contains("Signed in as <strong>carol</strong>")
    );
    fake.rest.assert_conforming();
}

both!(a_github_session_ends_once_the_policy_maps_its_login_elsewhere);
async fn a_github_session_ends_once_the_policy_maps_its_login_elsewhere(backend: Backend) {
    // The policy this server runs: bob's GitHub login is now `bob-new`; carol's is unchanged.
    let policy = changegate_gate::corpus::case_policy(
        &changegate_testkit::server::people(),
        "[people.bob]\ngithub = \"bob-new\"\n[people.carol]\ngithub = \"carol-gh\"\n",
    )
    .unwrap();
    let fake = changegate_testkit::fake_github::FakeGitHub::start().await;
    let srv = github_server_for(backend, &fake, policy).await;
    // Sessions opened under the earlier policy (bob as Bob-GH, user 4242; carol as carol-gh),
    // as a server restarted on a new policy finds them in the database.
    let now = at("2026-03-10T10:30:00Z").as_microsecond();
    let mut cookies = Vec::new();
    for (person, login, uid) in [("bob", "bob-gh", 4242), ("carol", "carol-gh", 7)] {
        let secret = format!("{person}-session-secret-0123456789abcdef");
        srv.db
            .create_session(&changegate_store::SessionRow {
                id: changegate_server::token::digest(&secret),
                token_id: String::new(),
                person: person.into(),
                csrf: "c".repeat(32),
                created_us: now,
                expires_us: now + 3_600_000_000,
                github: Some((login.into(), uid)),
            })
            .await
            .unwrap();
        cookies.push(secret);
    }
    let mut bob = Browser::new(&srv);
    bob.cookies.push(("cg_session".into(), cookies[0].clone()));
    let p = bob.get("/changes").await;
    assert_eq!(
        (p.status, p.location.as_deref()),
        (303, Some("/login?expired=1")),
        "{}",
        p.body
    );
    assert!(
        srv.db
            .find_session(&changegate_server::token::digest(&cookies[0]))
            .await
            .unwrap()
            .is_none(),
        "the session row is gone"
    );
    // carol's login still maps to carol: her session goes on.
    let mut carol = Browser::new(&srv);
    carol
        .cookies
        .push(("cg_session".into(), cookies[1].clone()));
    let p = carol.get("/changes").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("Signed in as <strong>carol</strong>"));
}

both!(without_github_sign_in_configured_there_is_none);
async fn without_github_sign_in_configured_there_is_none(backend: Backend) {
    let srv = server(backend).await;
    let mut b = Browser::new(&srv);
    assert!(!b.get("/login").await.body.contains("sign-in-github"));
    for path in ["/login/github", "/login/github/callback?code=x&state=y"] {
        let p = b.get(path).await;
        assert_eq!(p.status, 404, "{path}");
        assert!(p.body.contains("github-oauth-not-configured"), "{path}");
    }
}
