//! `changegate token create | list | revoke` on the server's host, on SQLite and on the local
//! PostgreSQL: malformed names and scopes refused with their codes (exit 2, nothing stored), the
//! listing without secrets, and a token revoked from the command line refused at once by a
//! server that is running (and had just accepted it).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Proc, Stdio};

use assert_cmd::Command;
use serde_json::Value;

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

// The child is killed and waited for by `Server`'s Drop.
#[allow(clippy::zombie_processes)]
fn serve(data: &Path, db_url: Option<&str>) -> Server {
    let mut cmd = Proc::new(assert_cmd::cargo::cargo_bin("changegate"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env_remove("CHANGEGATE_POLICY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(u) = db_url {
        cmd.args(["--database-url", u]);
    }
    let mut child = cmd.spawn().expect("start changegate serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            return Server {
                child,
                url: addr.trim().to_string(),
            };
        }
    }
}

/// `changegate token ARGS…` against this store: (exit code, stdout, stderr).
fn token(data: &Path, db_url: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::cargo_bin("changegate").unwrap();
    c.arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("CHANGEGATE_POLICY");
    if let Some(u) = db_url {
        c.args(["--database-url", u]);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn list(data: &Path, db_url: Option<&str>) -> Value {
    let (code, out, err) = token(data, db_url, &["list", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn get_changes(url: &str, tok: &str) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(format!("{url}/api/v1/changes"))
            .bearer_auth(tok)
            .send()
            .await
            .unwrap();
        let st = resp.status().as_u16();
        (st, resp.json().await.unwrap_or(Value::Null))
    })
}

fn scenario(data: &Path, db_url: Option<&str>) {
    // Refused, each with its code, and nothing stored.
    for (args, code) in [
        (&["create", "--person", ""][..], "invalid-person-name"),
        (&["create", "--person", "Bob"][..], "invalid-person-name"),
        (
            &["create", "--person", "team:sre"][..],
            "invalid-person-name",
        ),
        (
            &["create", "--integration", "ci", "--scope", "root"][..],
            "unknown-scope",
        ),
        (&["create", "--integration", "ci"][..], "invalid-scopes"),
        (
            &["create", "--person", "bob", "--expires-in", "soon"][..],
            "invalid-expiry",
        ),
        (
            &[
                "create",
                "--person",
                "bob",
                "--expires-at",
                "2001-01-01T00:00:00Z",
            ][..],
            "invalid-expiry",
        ),
    ] {
        let (exit, out, err) = token(data, db_url, args);
        assert_eq!(exit, 2, "{args:?}: {out} {err}");
        assert!(err.contains(code), "{args:?}: {err}");
        assert!(!out.contains("cg_"), "{args:?} printed a token: {out}");
    }
    assert_eq!(list(data, db_url)["tokens"], serde_json::json!([]));

    let (exit, bob, err) = token(data, db_url, &["create", "--person", "bob"]);
    assert_eq!(exit, 0, "{err}");
    let bob = bob.trim().to_string();
    let (exit, ci, err) = token(
        data,
        db_url,
        &[
            "create",
            "--integration",
            "ci",
            "--scope",
            "classify,ci-evidence",
            "--expires-in",
            "90d",
        ],
    );
    assert_eq!(exit, 0, "{err}");
    let listing = list(data, db_url);
    let text = listing.to_string();
    for t in [&bob, ci.trim()] {
        let secret = t.rsplit('_').next().unwrap();
        assert!(!text.contains(secret), "secret listed: {text}");
    }
    let rows = listing["tokens"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listing}");
    let ci_row = rows.iter().find(|r| r["kind"] == "integration").unwrap();
    assert_eq!(ci_row["name"], "ci");
    assert_eq!(
        ci_row["scopes"],
        serde_json::json!(["ci-evidence", "classify"])
    );
    assert!(ci_row["expires_at"].is_string());

    // A running server accepts bob's token, then refuses it the moment the CLI revokes it.
    let srv = serve(data, db_url);
    assert_eq!(get_changes(&srv.url, &bob).0, 200);
    let id = bob.split('_').nth(1).unwrap();
    let (exit, out, err) = token(data, db_url, &["revoke", id]);
    assert_eq!(exit, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    let (st, body) = get_changes(&srv.url, &bob);
    assert_eq!((st, body["code"].as_str()), (401, Some("token-revoked")));
    let rows = list(data, db_url)["tokens"].as_array().unwrap().clone();
    let bob_row = rows.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(bob_row["revoked_by"], "changegate");
    // Unknown ids are an error; the text listing has a line per token.
    let (exit, _, err) = token(data, db_url, &["revoke", "ffffffffffffffff"]);
    assert_ne!(exit, 0);
    assert!(err.contains("not-found"), "{err}");
    let (_, text, _) = token(data, db_url, &["list"]);
    assert_eq!(text.lines().count(), 3, "{text}"); // header, bob, ci (tokens existed: no first-start admin)
}

#[test]
fn token_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(&dir.path().join("data"), None);
}

#[test]
fn token_commands_on_postgres() {
    let db = changegate_testkit::pg::TempDb::create("cg_tok");
    let dir = tempfile::tempdir().unwrap();
    scenario(&dir.path().join("data"), Some(&db.url()));
}
