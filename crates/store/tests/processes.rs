//! Several processes against one log: a writer SIGKILLed in the middle of a stream of appends
//! (after restart the log verifies and every acknowledged append is there), and two writers
//! appending to one database at once (one consistent log). The child processes are this test
//! binary re-run on the ignored `child_writer` test.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use changegate_audit::AuditEvent;
use changegate_store::{EventFilter, Store, StoreConfig};
use common::{Kind, TestDb};

/// Child: append events until killed (or `CG_CHILD_COUNT` of them), printing `ack SEQ ID` after
/// each commit.
#[test]
#[ignore = "run as a child process by the tests below"]
fn child_writer() {
    let Ok(dir) = std::env::var("CG_CHILD_DATA") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = StoreConfig::new(&dir);
        if let Ok(schema) = std::env::var("CG_CHILD_SCHEMA") {
            cfg = cfg.postgres(common::pg_url());
            cfg.pg_schema = Some(schema);
        }
        cfg.checkpoint_every = 16;
        let store = Store::open(cfg).await.unwrap();
        let count: u64 = std::env::var("CG_CHILD_COUNT")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(u64::MAX);
        let tag = std::env::var("CG_CHILD_TAG").unwrap_or_default();
        for i in 0..count {
            let a = store
                .append(
                    AuditEvent::new("test.append", format!("writer-{tag}"))
                        .details(serde_json::json!({"i": i})),
                )
                .await
                .unwrap();
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            writeln!(out, "ack {} {}", a.seq, a.id).unwrap();
            out.flush().unwrap();
        }
    });
}

fn spawn(db: &TestDb, count: Option<u64>, tag: &str) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_writer",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("CG_CHILD_DATA", db.dir.path())
    .env("CG_CHILD_TAG", tag)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if db.kind == Kind::Postgres {
        cmd.env("CG_CHILD_SCHEMA", &db.schema);
    }
    if let Some(c) = count {
        cmd.env("CG_CHILD_COUNT", c.to_string());
    }
    cmd.spawn().unwrap()
}

fn parse_ack(line: &str) -> Option<(u64, String)> {
    // libtest may print `test child_writer ... ` before the first line of output.
    let rest = &line[line.find("ack ")? + 4..];
    let (seq, id) = rest.split_once(' ')?;
    Some((seq.parse().ok()?, id.to_string()))
}

async fn assert_all_present(store: &Store, acked: &HashMap<u64, String>) {
    let report = store.verify(None).await.unwrap();
    assert!(report.ok(), "{:#?}", report.failures);
    let events = store.events(&EventFilter::default()).await.unwrap();
    let stored: HashMap<u64, String> = events.into_iter().map(|e| (e.seq, e.record.id)).collect();
    for (seq, id) in acked {
        assert_eq!(
            stored.get(seq),
            Some(id),
            "acknowledged append {seq} {id} is missing after restart"
        );
    }
}

async fn sigkill_during_appends(kind: Kind) {
    let db = TestDb::new(kind);
    // Create the log (and key) first, like a server's first start.
    db.open().await.close().await;
    let mut child = spawn(&db, None, "crash");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = HashMap::new();
    let mut lines = stdout.lines();
    while acked.len() < 60 {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some((seq, id)) = parse_ack(&line) {
            acked.insert(seq, id);
        }
    }
    // SIGKILL while it keeps appending (std's kill sends SIGKILL on Unix).
    child.kill().unwrap();
    // Whatever it printed before dying was acknowledged too.
    for line in lines.map_while(Result::ok) {
        if let Some((seq, id)) = parse_ack(&line) {
            acked.insert(seq, id);
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    // Restart: the log verifies, has everything acknowledged, and goes on.
    let store = db.open().await;
    assert_all_present(&store, &acked).await;
    let size = store.head().await.unwrap().size;
    assert!(size >= acked.len() as u64);
    assert_eq!(
        store
            .append(AuditEvent::new("test.after-restart", "ops"))
            .await
            .unwrap()
            .seq,
        size
    );
    assert!(store.verify(None).await.unwrap().ok());
    store.close().await;
    db.cleanup().await;
}

async fn two_processes_append_to_one_log(kind: Kind) {
    let db = TestDb::new(kind);
    db.open().await.close().await;
    const EACH: u64 = 80;
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|t| spawn(&db, Some(EACH), t))
        .collect();
    let mut acked = HashMap::new();
    for mut c in children {
        let out = BufReader::new(c.stdout.take().unwrap());
        for line in out.lines() {
            if let Some((seq, id)) = parse_ack(&line.unwrap()) {
                assert!(
                    acked.insert(seq, id).is_none(),
                    "position {seq} acknowledged twice"
                );
            }
        }
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(acked.len() as u64, 2 * EACH);
    let store = db.open().await;
    assert_eq!(store.head().await.unwrap().size, 2 * EACH);
    assert_all_present(&store, &acked).await;
    // Both writers really interleaved into one log (not one after the other is fine too, but
    // both must be there).
    for t in ["writer-a", "writer-b"] {
        let n = store
            .events(&EventFilter {
                actor: Some(t.into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len() as u64;
        assert_eq!(n, EACH, "{t}");
    }
    store.close().await;
    db.cleanup().await;
}

async fn verify_while_another_process_appends(kind: Kind) {
    // Verification reads one snapshot: appends committed meanwhile never look like tampering.
    let db = TestDb::new(kind);
    db.open().await.close().await;
    let mut child = spawn(&db, Some(150), "busy");
    let store = db.open().await;
    let mut runs = 0;
    while child.try_wait().unwrap().is_none() || runs < 3 {
        let report = store.verify(None).await.unwrap();
        assert!(
            report.ok(),
            "verify during appends (size {}): {:#?}",
            report.size,
            report.failures
        );
        runs += 1;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(store.head().await.unwrap().size, 150);
    assert!(store.verify(None).await.unwrap().ok());
    store.close().await;
    db.cleanup().await;
}

both!(
    sigkill_during_appends,
    two_processes_append_to_one_log,
    verify_while_another_process_appends
);
