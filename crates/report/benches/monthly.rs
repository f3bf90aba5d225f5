//! The monthly report over 1,000,000 events against a plain SQL aggregate (count by category)
//! over the same rows, in the same run, printed as a ratio (goal: within 3×). A plain `main`
//! (`harness = false`): `cargo bench -p changegate-report --bench monthly`. Set
//! `REPORT_BENCH_EVENTS` for another size (e.g. 50000 under callgrind) and `REPORT_BENCH_RUNS`
//! for another number of runs (the best of each side is printed; default 3).
//!
//! Both sides read the same SQLite table of canonical records (the store's `audit_record`
//! layout): the SQL side `GROUP BY json_extract(record, '$.category')`; the report side streams
//! the records in log order through a `ReportBuilder` (each read as an `EventView` of its stored
//! bytes, as `Store::report` does) and computes the whole monthly report, digest included.

use std::time::Instant;

use changegate_audit::record::seal;
use changegate_audit::{AuditEvent, kinds};
use changegate_report::{Period, ReportBuilder, Settings};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

fn events(n: usize) -> Vec<Vec<u8>> {
    let start: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    let span = SignedDuration::from_hours(24 * 29).as_secs();
    let mut out = Vec::with_capacity(n);
    let per_change = 5;
    let changes = n / per_change;
    for c in 0..changes {
        let t0 = start + SignedDuration::from_secs(span * c as i64 / changes as i64);
        let id = format!("CR-{c:07}");
        let cat = (1 + c % 4).to_string();
        let commit = format!("{c:040x}");
        let base = |k: &str, a: &str| {
            AuditEvent::new(k, a)
                .change(&id)
                .category(&cat)
                .what("commit-sha", commit.clone())
        };
        let evs = [
            base(kinds::CHANGE_CREATED, "alice")
                .details(json!({"status": "in-review", "repository": "acme/app"})),
            base(kinds::APPROVAL_GRANTED, "bob")
                .details(json!({"op": {"op": "approve", "person": "bob", "role": "backend-lead"}})),
            base(kinds::GATE_DECISION, "ci")
                .outcome("result", "allowed")
                .details(
                    json!({"allowed": true, "reasons": [{"code": "window-open", "denies": false}]}),
                ),
            base(kinds::DEPLOYMENT_START, "dee").who("deployer", "dee"),
            if c % 25 == 0 {
                base(kinds::ROLLBACK, "changegate").outcome("result", "abort")
            } else {
                base(kinds::DEPLOYMENT_FINISH, "changegate").outcome("result", "complete")
            },
        ];
        for (i, e) in evs.into_iter().enumerate() {
            let seq = (c * per_change + i) as u64;
            let at = t0 + SignedDuration::from_mins(10 * i as i64);
            out.push(seal(e, seq, format!("ev_{seq}"), at, &[1; 32]).record_bytes);
        }
    }
    out
}

fn main() {
    let n: usize = std::env::var("REPORT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("changegate-report-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench.db");
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE audit_record (seq INTEGER PRIMARY KEY, record TEXT NOT NULL);",
    )
    .unwrap();
    let t = Instant::now();
    let rows = events(n);
    {
        let tx = conn.transaction().unwrap();
        {
            let mut ins = tx
                .prepare("INSERT INTO audit_record (seq, record) VALUES (?1, ?2)")
                .unwrap();
            for (i, r) in rows.iter().enumerate() {
                ins.execute((i as i64, std::str::from_utf8(r).unwrap()))
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    drop(rows);
    eprintln!("seeded {n} events in {:.1?}", t.elapsed());

    let period = Period::Month(2026, 11);
    let settings = Settings::default();
    let runs: usize = std::env::var("REPORT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut best_sql = f64::MAX;
    let mut best_report = f64::MAX;
    let mut best_select = f64::MAX;
    let mut best_finish = f64::MAX;
    let mut counts = Vec::new();
    let mut deployments = 0.0;
    let mut digest = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut st = conn
            .prepare("SELECT json_extract(record, '$.category') AS c, count(*) FROM audit_record GROUP BY c ORDER BY c")
            .unwrap();
        counts = st
            .query_map([], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        best_sql = best_sql.min(t.elapsed().as_secs_f64());

        // The floor: the same rows selected, nothing parsed.
        let t = Instant::now();
        let mut st = conn
            .prepare("SELECT record FROM audit_record ORDER BY seq")
            .unwrap();
        let mut rows = st.query([]).unwrap();
        let mut bytes = 0usize;
        while let Some(row) = rows.next().unwrap() {
            bytes += row.get_ref(0).unwrap().as_bytes().unwrap().len();
        }
        std::hint::black_box(bytes);
        best_select = best_select.min(t.elapsed().as_secs_f64());

        // The report as the store computes it: the rows streamed in log order, each read as an
        // `EventView` of its stored bytes and folded, then the body, digest and sign-offs.
        let t = Instant::now();
        let mut st = conn
            .prepare("SELECT record FROM audit_record ORDER BY seq")
            .unwrap();
        let mut rows = st.query([]).unwrap();
        let mut b = ReportBuilder::new(&period, &settings);
        while let Some(row) = rows.next().unwrap() {
            b.push_bytes(row.get_ref(0).unwrap().as_bytes().unwrap())
                .unwrap();
        }
        let tf = Instant::now();
        let r = b.finish(period.end(), None);
        best_finish = best_finish.min(tf.elapsed().as_secs_f64());
        best_report = best_report.min(t.elapsed().as_secs_f64());
        deployments = r.body.metrics[0].value.unwrap_or_default();
        digest = r.digest;
    }
    println!("events: {n}; SQL count by category: {counts:?}; report deployments: {deployments}");
    println!("report digest: {digest}");
    println!("plain SQL count by category: {:.3} s", best_sql);
    println!(
        "monthly report (select + parse + compute, streamed): {:.3} s (selecting the rows alone {:.3} s; the body and digest after the last row {:.3} s)",
        best_report, best_select, best_finish
    );
    println!(
        "ratio report / SQL aggregate: {:.2}x (goal <= 3x)",
        best_report / best_sql,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
