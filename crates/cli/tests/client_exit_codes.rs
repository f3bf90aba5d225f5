//! Issue 13, exit codes: a policy refusal by the server (403, 409, 422) makes the CLI client exit
//! 1, like a denied gate; input errors (bad arguments, 400, 401, 404) and an unreachable server stay
//! 2. The real `changegate` binary against a real server on loopback, on SQLite and PostgreSQL.

use assert_cmd::Command;
use changegate_testkit::server::{Backend, TestServer, people_policy};
use serde_json::Value;

struct Out {
    code: i32,
    stderr: String,
}

/// Run the CLI with `token` against `base` (off the runtime's threads: the server runs on them).
async fn cg(base: &str, token: &str, args: &[&str]) -> Out {
    let (base, token) = (base.to_string(), token.to_string());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("changegate")
            .unwrap()
            .env("CHANGEGATE_SERVER", base)
            .env("CHANGEGATE_TOKEN", token)
            .env_remove("CHANGEGATE_POLICY")
            .args(&args)
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

async fn incidents(srv: &TestServer) -> Vec<Value> {
    let (st, body) = srv.get("/api/v1/incidents", &srv.admin).await;
    assert_eq!(st, 200, "{body}");
    body["incidents"].as_array().cloned().unwrap_or_default()
}

async fn exit_codes(backend: Backend) {
    let srv = TestServer::start(
        backend,
        people_policy(),
        "2026-03-10T10:00:00Z".parse().unwrap(),
    )
    .await;
    let (admin, base) = (srv.admin.clone(), srv.base.clone());
    let alice = srv.token("alice").await;
    let open = |id: &'static str| {
        vec![
            "incident",
            "open",
            "--id",
            id,
            "--severity",
            "P1",
            "--kind",
            "security",
            "--cvss",
            "9.8",
        ]
    };

    let ok = cg(&base, &admin, &open("INC-1")).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let stored = incidents(&srv).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (&stored[0]["kind"], &stored[0]["cvss"]),
        (&Value::from("security"), &Value::from(9.8))
    );

    // Policy refusals: exit 1, the code on stderr, nothing stored.
    for (who, args, status, code) in [
        // 403: alice holds no role that may record incidents.
        (&alice, open("INC-2"), "403", "incident-forbidden"),
        // 409: the incident exists.
        (&admin, open("INC-1"), "409", "incident-duplicate"),
        // 422: the policy knows no such kind.
        (
            &admin,
            vec![
                "incident",
                "open",
                "--id",
                "INC-3",
                "--severity",
                "P1",
                "--kind",
                "outages",
            ],
            "422",
            "incident-kind-invalid",
        ),
    ] {
        let out = cg(&base, who, &args).await;
        assert_eq!(out.code, 1, "{code}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("server answered {status}"))
                && out.stderr.contains(&format!("[{code}]")),
            "{}",
            out.stderr
        );
        assert_eq!(incidents(&srv).await, stored, "{code}: nothing stored");
    }

    // Input errors stay 2.
    for (token, args, needle) in [
        // 400: not a CVSS score.
        (
            admin.as_str(),
            vec![
                "incident",
                "open",
                "--id",
                "INC-4",
                "--severity",
                "P1",
                "--cvss",
                "11",
            ],
            "server answered 400",
        ),
        // 404: no such change.
        (
            admin.as_str(),
            vec!["change", "show", "CR-NOPE"],
            "server answered 404",
        ),
        // 401: not a token.
        (
            "cg_not-a-token",
            vec!["incident", "list"],
            "server answered 401",
        ),
        // The command is not JSON (never sent).
        (
            admin.as_str(),
            vec!["change", "op", "CR-1", "{not json"],
            "not JSON",
        ),
    ] {
        let out = cg(&base, token, &args).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    assert_eq!(incidents(&srv).await, stored);

    // An unreachable server is an error too.
    let out = cg("http://127.0.0.1:9", &admin, &["incident", "list"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot reach the server"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_refusals_exit_1_and_input_errors_exit_2_on_sqlite() {
    exit_codes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_refusals_exit_1_and_input_errors_exit_2_on_postgres() {
    exit_codes(Backend::Postgres).await;
}
