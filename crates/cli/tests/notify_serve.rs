//! The crash test of the notification outbox, with the real `changegate serve`: the worker sends a
//! Slack message to the stand-in, which takes it in and holds its answer; the server is SIGKILLed
//! before it can mark the message sent; after a restart on the same data directory the lease
//! expires, the notification is sent again with the same dedupe key, marked sent, and the
//! receiver (which honours `Idempotency-Key`) shows it once. Also: `changegate notify list`
//! through the CLI, and a notify config naming a channel the policy lacks stops the server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use changegate_testkit::notify_standins::StandIn;
use serde_json::{Value, json};

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `serve`; returns it and the admin token printed on a first start (empty otherwise).
#[allow(clippy::zombie_processes)]
fn serve(data: &Path, config: &Path) -> (Server, String) {
    let mut child = Proc::new(assert_cmd::cargo::cargo_bin("changegate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--notify-config")
        .arg(config)
        .args(["--notify-lease-secs", "1"])
        .env_remove("CHANGEGATE_POLICY")
        .env_remove("CHANGEGATE_NOTIFY_CONFIG")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start changegate serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = String::new();
    loop {
        let line = lines.next().expect("server exited").unwrap();
        if line.starts_with("cg_") {
            admin = line.trim().to_string();
        }
        if let Some(addr) = line.strip_prefix("listening on ") {
            let url = addr.trim().to_string();
            // Keep reading what it prints later, so its stdout never breaks.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return (Server { child, url }, admin);
        }
    }
}

fn cg(srv: &Server, admin: &str, args: &[&str]) -> Value {
    let out = Command::cargo_bin("changegate")
        .unwrap()
        .env("CHANGEGATE_SERVER", &srv.url)
        .env("CHANGEGATE_TOKEN", admin)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_killed_between_sending_and_marking_sends_again_and_the_receiver_shows_it_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let standin = rt.block_on(StandIn::start("k", &[], "s"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("notify.toml");
    std::fs::write(
        &config,
        format!(
            "[channels.incidents]\nurl = \"{}\"\n",
            standin.slack_url("T1/B1/incidents")
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let (srv, admin) = serve(&data, &config);
    assert!(admin.starts_with("cg_"));
    standin.hold(true);
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/v1/incidents", srv.url))
            .bearer_auth(&admin)
            .json(&json!({"id": "INC-1", "severity": "P3", "title": "slow search"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 201);
    // The message reached the receiver, which holds its answer: the worker waits to mark it.
    wait_for("the first delivery", || standin.requests() == 1);
    let pending = cg(&srv, &admin, &["notify", "list", "--status", "pending"]);
    assert_eq!(
        pending["notifications"][0]["dedupe_key"], "incident:INC-1/incident-opened/incidents",
        "{pending}"
    );
    drop(srv); // SIGKILL, before it could mark the notification sent
    standin.hold(false);
    let (srv, again) = serve(&data, &config);
    assert_eq!(again, "", "the same data directory: no new admin token");
    wait_for("the notification marked sent after the restart", || {
        let sent = cg(&srv, &admin, &["notify", "list", "--status", "sent"]);
        sent["notifications"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let sent = cg(&srv, &admin, &["notify", "list", "--status", "sent"]);
    let n = &sent["notifications"][0];
    assert!(n["attempts"].as_i64().unwrap() >= 2, "{n}");
    assert_eq!(standin.requests(), 2, "delivered at least once: twice here");
    assert_eq!(
        standin.shown().len(),
        1,
        "shown once: the receiver honours the key"
    );
    assert!(
        standin.shown()[0]["body"]["text"]
            .as_str()
            .unwrap()
            .contains("INC-1"),
        "{:?}",
        standin.shown()
    );
}

#[test]
fn a_notify_config_for_an_undeclared_channel_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("notify.toml");
    std::fs::write(
        &config,
        "[channels.deploymnts]\nurl = \"https://hooks.example.com/x\"\n",
    )
    .unwrap();
    let out = Command::cargo_bin("changegate")
        .unwrap()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--notify-config")
        .arg(&config)
        .env_remove("CHANGEGATE_POLICY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[channels.deploymnts]"), "{err}");
    assert!(err.contains("declares no such channel"), "{err}");
}
