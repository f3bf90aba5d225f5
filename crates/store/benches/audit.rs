//! `cargo bench -p changegate-store --bench audit` — prints, in one run:
//! 1. durable appends/s (SQLite, WAL, synchronous=FULL, one transaction per event) next to
//!    plain SQLite inserts of the same rows into a table without any audit machinery, same
//!    pragmas, one transaction per row; the ratio (goal >= 0.5);
//! 2. the time to verify a log of 1,000,000 events (goal < 3 s), loaded with the batch path;
//! 3. inclusion proof time from the database (goal < 1 ms).
//!
//! `CHANGEGATE_BENCH_EVENTS` overrides the 1,000,000; `CHANGEGATE_BENCH_APPENDS` the 2,000;
//! `CHANGEGATE_BENCH_DIR` keeps the large log there, so later runs skip loading it.

use std::time::Instant;

use changegate_audit::{AuditEvent, ProofFile, kinds};
use changegate_store::{Store, StoreConfig};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(i: u64) -> AuditEvent {
    AuditEvent::new(kinds::DEPLOYMENT_STEP, format!("deployer{}", i % 7))
        .change(format!("CR-{}", i % 1000))
        .category("medium-risk")
        .what("commit-sha", format!("{:040x}", i * 7919))
        .what("artifact-version", format!("1.{}.{}", i % 50, i % 7))
        .who("deployer", format!("deployer{}", i % 7))
        .why(
            "pr-link",
            format!("https://git.example/org/app/pull/{}", i % 5000),
        )
        .outcome("result", "success")
        .outcome("error-rate", 0.001)
}

// Two worker threads, as `changegate audit` runs.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let appends = if quick {
        50
    } else {
        env("CHANGEGATE_BENCH_APPENDS", 2000)
    };
    let events = if quick {
        5000
    } else {
        env("CHANGEGATE_BENCH_EVENTS", 1_000_000)
    };
    let dir = tempfile::tempdir().unwrap();

    // 1. Durable appends vs plain inserts of the same rows.
    let store = Store::open(StoreConfig::new(dir.path().join("append")))
        .await
        .unwrap();
    let opts = SqliteConnectOptions::new()
        .filename(dir.path().join("plain.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let plain = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE plain (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, \
         change_id TEXT, recorded_at INTEGER NOT NULL, salt BLOB NOT NULL, record TEXT NOT NULL, leaf BLOB NOT NULL)",
    )
    .execute(&plain)
    .await
    .unwrap();
    // Interleave one append and one plain insert, timing each, so disk hiccups from other
    // work on the machine hit both sides alike.
    let (mut t_append, mut t_plain) = (0.0, 0.0);
    for i in 0..appends {
        let t = Instant::now();
        store.append(event(i)).await.unwrap();
        t_append += t.elapsed().as_secs_f64();
        // The same row the log stored (sealed the same way), into a plain table.
        let r = changegate_audit::seal(
            event(i),
            i,
            format!("ev_{i:032x}"),
            jiff::Timestamp::now(),
            &[7; 32],
        );
        let (text, leaf) = (
            String::from_utf8(r.record_bytes.clone()).unwrap(),
            r.leaf.encode().to_vec(),
        );
        let t = Instant::now();
        let mut tx = plain.begin().await.unwrap();
        sqlx::query("INSERT INTO plain VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(r.record.seq as i64)
            .bind(&r.record.id)
            .bind(&r.record.event.kind)
            .bind(&r.record.event.actor)
            .bind(r.record.event.change_id.as_deref())
            .bind(r.leaf.recorded_at_us)
            .bind(vec![7u8; 32])
            .bind(text)
            .bind(leaf)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        t_plain += t.elapsed().as_secs_f64();
    }
    let seq = appends;
    store.close().await;
    plain.close().await;
    let append_rate = seq as f64 / t_append;
    let plain_rate = seq as f64 / t_plain;
    println!(
        "durable appends:        {append_rate:>10.0} /s   ({seq} events, one transaction each, WAL + synchronous=FULL)"
    );
    println!(
        "plain SQLite inserts:   {plain_rate:>10.0} /s   (same rows, same pragmas, interleaved one by one)"
    );
    println!(
        "ratio appends/inserts:  {:>10.2}      (goal >= 0.50)",
        append_rate / plain_rate
    );

    // 2. Verification of a large log (kept in `CHANGEGATE_BENCH_DIR` when set, and loaded only
    // once there).
    let big = match std::env::var_os("CHANGEGATE_BENCH_DIR") {
        Some(d) => std::path::PathBuf::from(d).join(format!("big-{events}")),
        None => dir.path().join("big"),
    };
    let store = Store::open(StoreConfig {
        checkpoint_every: 65536,
        ..StoreConfig::new(big)
    })
    .await
    .unwrap();
    let t = Instant::now();
    let mut done = store.head().await.unwrap().size;
    assert!(
        done == 0 || done == events,
        "CHANGEGATE_BENCH_DIR holds a partly loaded log ({done} events): delete it"
    );
    while done < events {
        let n = (events - done).min(20_000);
        let mut tx = store.begin().await.unwrap();
        tx.append_audit_batch((done..done + n).map(event).collect())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        done += n;
    }
    println!(
        "load {events} events:      {:>10.2} s    (batch appends of 20,000)",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let report = store.verify(None).await.unwrap();
    let verify_s = t.elapsed().as_secs_f64();
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!(report.size, events);
    println!(
        "verify {events} events:    {verify_s:>10.2} s    (records, leaves, {} nodes, {} checkpoints; goal < 3 s for 1,000,000)",
        report.nodes, report.checkpoints
    );

    // 3. Inclusion proofs from the database.
    let key = store.verifier_key().clone();
    let probes = if quick { 20 } else { 2000 };
    let t = Instant::now();
    let mut x = 12345u64;
    for _ in 0..probes {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let p = store
            .prove(&((x >> 11) % events).to_string())
            .await
            .unwrap();
        std::hint::black_box(p);
    }
    let prove_us = t.elapsed().as_secs_f64() * 1e6 / probes as f64;
    let p = store.prove(&(events / 3).to_string()).await.unwrap();
    let t = Instant::now();
    for _ in 0..probes {
        std::hint::black_box(ProofFile::Inclusion(p.clone()).check(Some(&key)).unwrap());
    }
    let check_us = t.elapsed().as_secs_f64() * 1e6 / probes as f64;
    println!(
        "inclusion proof:        {prove_us:>10.0} µs   (from the database, tree of {events}; goal < 1000 µs)"
    );
    println!("check inclusion proof:  {check_us:>10.0} µs   (offline, with signature)");
    store.close().await;
}
