//! `cargo bench -p changegate-audit --bench verify`: the pure cost of verification (no
//! database): seal N events, then feed them to the streaming verifier; and proof generation and
//! checking on an in-memory node map. Compare with the store benchmark to see what the database
//! adds.

use std::collections::HashMap;
use std::time::Instant;

use changegate_audit::tree::{Frontier, inclusion_path, leaf_hash};
use changegate_audit::{AuditEvent, LeafRow, RecordRow, Verifier, seal};

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = if quick {
        2000
    } else {
        std::env::var("CHANGEGATE_BENCH_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    };
    let at: jiff::Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
    let t = Instant::now();
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let e = AuditEvent::new("deployment.step", format!("deployer{}", i % 7))
                .change(format!("CR-{}", i % 1000))
                .what("commit-sha", format!("{:040x}", i * 7919))
                .why(
                    "pr-link",
                    format!("https://git.example/org/app/pull/{}", i % 5000),
                )
                .outcome("result", "success");
            let s = seal(e, i, format!("ev_{i:032x}"), at, &[7; 32]);
            (s.leaf.encode(), s)
        })
        .collect();
    println!(
        "seal {n} events:          {:>8.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut v = Verifier::new(false);
    for (leaf, s) in &rows {
        let r = &s.record;
        v.leaf(LeafRow {
            seq: r.seq as i64,
            leaf,
            record: Some(RecordRow {
                event_id: &r.id,
                kind: &r.event.kind,
                actor: &r.event.actor,
                change_id: r.event.change_id.as_deref(),
                recorded_at_us: s.leaf.recorded_at_us,
                salt: &[7; 32],
                record: &s.record_bytes,
            }),
        });
    }
    let report = v.finish();
    assert!(report.ok() || n == 0);
    println!(
        "verify {n} events (CPU):  {:>8.2} s   ({:.2} µs/event)",
        t.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let mut f = Frontier::new();
    let mut nodes = HashMap::new();
    for (leaf, _) in &rows {
        nodes.extend(f.push(leaf_hash(leaf)));
    }
    let t = Instant::now();
    let probes = 10_000u64;
    for k in 0..probes {
        std::hint::black_box(inclusion_path((k * 7919) % n, n, &mut |id| nodes[&id]));
    }
    println!(
        "inclusion path (memory): {:>8.2} µs",
        t.elapsed().as_secs_f64() * 1e6 / probes as f64
    );
}
