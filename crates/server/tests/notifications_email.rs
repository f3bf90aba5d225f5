//! E-mail notifications against a real SMTP server (Debian's python3-aiosmtpd, started by the
//! test as `tests/smtp_sink.py`), on SQLite and PostgreSQL: a category-2 deploy e-mails the
//! stakeholder list, a maintenance announcement e-mails all teams; each arrives with the policy's
//! recipients, the subject and the body, and a Message-ID derived from the dedupe key.

#[path = "notify_common/mod.rs"]
mod notify_common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use changegate_audit::{AuditEvent, kinds};
use changegate_gate::{ChangeRequest, ChangeState, ClassifiedChange};
use changegate_server::notify::{Endpoints, Notifier, WorkerConfig, worker};
use changegate_server::{AppState, Clock};
use changegate_testkit::both;

use changegate_testkit::server::{Backend, people_policy};
use notify_common::Srv;
use serde_json::{Value, json};

struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (PEM files in `dir`), made with the
/// `openssl` command line (scripts/services.sh installs it): rustls refuses a self-signed CA
/// certificate used as the server's own, so the chain is real.
fn test_pki(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (scripts/services.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=changegate test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

impl Sink {
    fn start() -> Sink {
        Sink::start_with(None)
    }

    /// With `Some(dir)` holding `server.pem`/`server.key`: STARTTLS offered and required.
    fn start_with(tls: Option<&Path>) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        // Debian's interpreter, which has python3-aiosmtpd (a `python3` first on PATH may not).
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut cmd = Command::new(python);
        cmd.arg(&script).arg(dir.path());
        if let Some(pki) = tls {
            cmd.arg(pki.join("server.pem")).arg(pki.join("server.key"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (scripts/services.sh installs python3-aiosmtpd)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .unwrap_or_else(|| panic!("smtp_sink.py did not start: `{line}`"))
            .parse()
            .unwrap();
        Sink { child, port, dir }
    }

    /// Messages received, in order (`dup-` files are re-deliveries of a seen Message-ID).
    fn messages(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".json") && !name.starts_with('.') {
                let text = std::fs::read_to_string(e.path()).unwrap();
                out.insert(name, serde_json::from_str(&text).unwrap());
            }
        }
        out
    }
}

fn change() -> ChangeState {
    ChangeState::new(ChangeRequest {
        id: "CR-42".into(),
        repository: "acme/chat".into(),
        pr_link: None,
        ticket: None,
        title: "Add the typing indicator endpoint".into(),
        base_commit: "a".repeat(40),
        head_commit: "b".repeat(40),
        authors: vec!["alice".into()],
        co_authors: Vec::new(),
        last_pusher: None,
        classification: ClassifiedChange {
            category: 2,
            facets: Vec::new(),
            required_roles: Vec::new(),
        },
        requested_deploy_at: None,
        deploy_duration: None,
        maintenance: Default::default(),
        provenance: Default::default(),
    })
}

async fn stakeholders_and_all_teams_get_their_emails(backend: Backend) {
    let sink = Sink::start();
    let mut policy = people_policy();
    policy.notifications.base_url = "https://changegate.example.com".into();
    policy.notifications.channels["stakeholders"].to =
        vec!["ops@example.com".into(), "pm@example.com".into()];
    let ts = Srv::start(
        backend,
        policy.clone(),
        "2026-03-10T10:00:00Z".parse().unwrap(),
        |_| {},
    )
    .await;
    let cfg = format!(
        "[channels.stakeholders]\nurl = \"smtp://127.0.0.1:{p}\"\nfrom = \"changegate@example.com\"\n\
         [channels.all-teams]\nurl = \"smtp://127.0.0.1:{p}\"\nfrom = \"changegate@example.com\"\n",
        p = sink.port
    );
    let eps = Endpoints::parse(&cfg, "notify.toml", &policy).unwrap();
    let n = Notifier::new(eps, WorkerConfig::default());
    let policy = Arc::new(policy);
    changegate_server::notify::install(ts.db.store(), policy.clone(), n.active());
    let state = AppState::new(policy, ts.db.clone(), Clock::Manual(ts.clock.clone()));

    ts.db
        .create_change(
            &change(),
            AuditEvent::new(kinds::CHANGE_CREATED, "alice").change("CR-42"),
            None,
        )
        .await
        .unwrap();
    // The deployment completes (as the rollout worker or the pipeline records it).
    ts.db
        .record(
            AuditEvent::new(kinds::DEPLOYMENT_FINISH, "integration:deploy")
                .change("CR-42")
                .category("2"),
        )
        .await
        .unwrap();
    let (st, b) = ts
        .post(
            "/api/v1/announcements",
            &ts.admin,
            &json!({"id": "mw-apr", "window_start": "2026-04-07T02:00:00Z",
                    "window_end": "2026-04-07T06:00:00Z"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(worker::run_once(&state, &n).await.unwrap(), 2);
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let deploy = msgs
        .values()
        .find(|m| m["subject"].as_str().unwrap().contains("Deployed"))
        .unwrap();
    assert_eq!(
        deploy["subject"],
        "[changegate] Deployed: CR-42 \u{2014} Add the typing indicator endpoint"
    );
    assert_eq!(
        deploy["rcpt_tos"],
        json!(["ops@example.com", "pm@example.com"])
    );
    assert_eq!(deploy["mail_from"], "changegate@example.com");
    let body = deploy["body"].as_str().unwrap();
    assert!(body.contains("Category: 2"), "{body}");
    assert!(body.contains("Completed by integration:deploy"), "{body}");
    assert!(
        body.contains("https://changegate.example.com/changes/CR-42"),
        "{body}"
    );
    assert_eq!(
        deploy["message_id"],
        changegate_server::notify::send::message_id("CR-42/change-deployed/stakeholders")
    );
    let mw = msgs
        .values()
        .find(|m| m["subject"].as_str().unwrap().contains("maintenance"))
        .unwrap();
    assert_eq!(mw["rcpt_tos"], json!(["all-teams@example.com"]));
    assert!(
        mw["body"]
            .as_str()
            .unwrap()
            .contains("Window: 2026-04-07T02:00:00Z to 2026-04-07T06:00:00Z"),
        "{mw}"
    );
}

async fn the_stakeholder_notice_is_sent_and_recorded_as_sent(backend: Backend) {
    let sink = Sink::start();
    let mut policy = people_policy();
    policy.notifications.require_sent = vec!["stakeholder-notice".into()];
    let ts = Srv::start(
        backend,
        policy.clone(),
        "2026-02-24T09:00:00Z".parse().unwrap(),
        |_| {},
    )
    .await;
    let cfg = format!(
        "[channels.all-teams]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"changegate@example.com\"\n",
        sink.port
    );
    let eps = Endpoints::parse(&cfg, "notify.toml", &policy).unwrap();
    let n = Notifier::new(eps, WorkerConfig::default());
    let policy = Arc::new(policy);
    changegate_server::notify::install(ts.db.store(), policy.clone(), n.active());
    let state = AppState::new(policy, ts.db.clone(), Clock::Manual(ts.clock.clone()));
    let mut c = change();
    c.change.id = "CR-43".into();
    c.change.classification.category = 3;
    ts.db
        .create_change(
            &c,
            AuditEvent::new(kinds::CHANGE_CREATED, "alice").change("CR-43"),
            None,
        )
        .await
        .unwrap();
    // The author asks for the notice; changegate sends it.
    let alice = ts.token("alice").await;
    let (st, b) = ts
        .post(
            "/api/v1/changes/CR-43/ops",
            &alice,
            &json!({"op": "publish", "item": "stakeholder-notice", "link": "https://wiki/cr-43"}),
        )
        .await;
    assert!((200..300).contains(&st), "{b}");
    let declared = ts.db.change("CR-43").await.unwrap().unwrap().value;
    assert!(declared.lead_items["stakeholder-notice"].sent.is_none());
    ts.set_now("2026-02-24T09:05:00Z".parse().unwrap());
    assert_eq!(worker::run_once(&state, &n).await.unwrap(), 1);
    let msgs = sink.messages();
    let m = msgs.values().next().expect("the notice e-mail");
    assert_eq!(m["rcpt_tos"], json!(["all-teams@example.com"]));
    assert!(
        m["subject"]
            .as_str()
            .unwrap()
            .contains("Notice of a high-risk change: CR-43"),
        "{m}"
    );
    assert!(
        m["body"].as_str().unwrap().contains("https://wiki/cr-43"),
        "{m}"
    );
    let sent = ts.db.change("CR-43").await.unwrap().unwrap().value;
    let rec = sent.lead_items["stakeholder-notice"]
        .sent
        .clone()
        .expect("recorded as sent");
    assert_eq!(
        (rec.via.as_str(), rec.channel.as_str()),
        ("email", "all-teams")
    );
    assert_eq!(
        rec.at,
        "2026-02-24T09:05:00Z".parse::<jiff::Timestamp>().unwrap()
    );
}

/// STARTTLS: with `starttls = "required"` and the company CA in `ca_file`, mail goes to a relay
/// that requires STARTTLS, encrypted; without the CA the certificate is refused and nothing is
/// sent (the notification stays for a retry); a relay that offers no STARTTLS gets nothing when
/// it is required, and gets the mail when it is opportunistic (the default).
async fn starttls_is_used_where_offered_and_refused_when_required_and_missing(backend: Backend) {
    let pki = tempfile::tempdir().unwrap();
    test_pki(pki.path());
    let tls_sink = Sink::start_with(Some(pki.path()));
    let plain_sink = Sink::start();
    let policy = people_policy();
    let ts = Srv::start(
        backend,
        policy.clone(),
        "2026-03-10T10:00:00Z".parse().unwrap(),
        |_| {},
    )
    .await;
    let ca = pki.path().join("ca.pem");
    let policy = Arc::new(policy);
    let deploy = |id: &str| {
        let mut c = change();
        c.change.id = id.into();
        c
    };
    // Each case: the channel's config, the sink it points at, and whether the mail arrives.
    let cases = [
        (
            format!("starttls = \"required\"\nca_file = \"{}\"\n", ca.display()),
            &tls_sink,
            true,
        ),
        ("starttls = \"required\"\n".to_string(), &tls_sink, false),
        ("starttls = \"required\"\n".to_string(), &plain_sink, false),
        (String::new(), &plain_sink, true),
    ];
    for (i, (extra, sink, arrives)) in cases.iter().enumerate() {
        let cfg = format!(
            "[channels.stakeholders]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"changegate@example.com\"\n{extra}",
            sink.port
        );
        let eps = Endpoints::parse(&cfg, "notify.toml", &policy).unwrap();
        let n = Notifier::new(eps, WorkerConfig::default());
        changegate_server::notify::install(ts.db.store(), policy.clone(), n.active());
        let state = AppState::new(
            policy.clone(),
            ts.db.clone(),
            Clock::Manual(ts.clock.clone()),
        );
        let id = format!("CR-5{i}");
        let before = sink.messages().len();
        ts.db
            .create_change(
                &deploy(&id),
                AuditEvent::new(kinds::CHANGE_CREATED, "alice").change(&id),
                None,
            )
            .await
            .unwrap();
        ts.db
            .record(
                AuditEvent::new(kinds::DEPLOYMENT_FINISH, "integration:deploy")
                    .change(&id)
                    .category("2"),
            )
            .await
            .unwrap();
        assert_eq!(worker::run_once(&state, &n).await.unwrap(), 1, "case {i}");
        let msgs = sink.messages();
        let mine: Vec<&Value> = msgs
            .values()
            .filter(|m| m["subject"].as_str().unwrap().contains(&id))
            .collect();
        if *arrives {
            assert_eq!(mine.len(), 1, "case {i} ({extra:?}): {msgs:?}");
            assert_eq!(
                mine[0]["tls"],
                json!(std::ptr::eq(*sink, &tls_sink)),
                "case {i}"
            );
        } else {
            assert_eq!(
                msgs.len(),
                before,
                "case {i} ({extra:?}): sent in clear or to an untrusted server"
            );
        }
        let (st, b) = ts
            .get(&format!("/api/v1/notifications?subject={id}"), &ts.admin)
            .await;
        assert_eq!(st, 200, "{b}");
        let row = &b["notifications"][0];
        if *arrives {
            assert_eq!(row["status"], "sent", "case {i}: {row}");
        } else {
            // Kept for a retry with the reason, never dropped.
            assert_eq!(row["status"], "pending", "case {i}: {row}");
            assert!(
                row["last_error"].as_str().is_some_and(|e| !e.is_empty()),
                "{row}"
            );
        }
    }
}

both!(stakeholders_and_all_teams_get_their_emails);
both!(starttls_is_used_where_offered_and_refused_when_required_and_missing);
both!(the_stakeholder_notice_is_sent_and_recorded_as_sent);
