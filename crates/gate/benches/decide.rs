//! `cargo bench -p changegate-gate`: decisions per second of `decide` for a fully prepared
//! category-2 and category-3 change, next to a trivial baseline measured in the same run (count
//! the approvals for the head commit) and to the calendar's window check alone, so the numbers
//! read as ratios rather than absolute times on a shared machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use changegate_gate::*;
use changegate_testkit::gate::*;

fn rate(name: &str, mut f: impl FnMut() -> usize) -> f64 {
    // Warm up, then run for about a second.
    for _ in 0..100 {
        black_box(f());
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(1000) {
        for _ in 0..64 {
            black_box(f());
        }
        n += 64;
    }
    let per_sec = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "{name:<44} {per_sec:>14.0} /s   {:>9.2} µs each",
        1e6 / per_sec
    );
    per_sec
}

fn main() {
    // The same prepared changes as the gate's rule tests (the kit's `ready`).
    let world = world_with_announcement();
    let (p2, s2) = ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]);
    let (p3, s3) = ready(
        3,
        vec![facet(
            "schema-column-dropped",
            &["backend-lead", "dba-lead", "sre-lead"],
            3,
        )],
    );
    let (tue, sat, mw) = (t(TUE), t(SAT), t(MW));
    assert!(decide(&p2, &s2, &world, tue).allowed);
    assert!(decide(&p3, &s3, &world, mw).allowed);
    assert!(!decide(&p2, &s2, &world, sat).allowed);

    println!("changegate-gate decide() throughput (single thread)");
    let base = rate("baseline: count head-commit approvals", || {
        let head = &black_box(&s3).change.head_commit;
        s3.approvals
            .iter()
            .filter(|a| &a.head_commit == head)
            .count()
    });
    let window = changegate_calendar::WindowRequest {
        category: 2,
        start: tue,
        duration: jiff::SignedDuration::from_mins(30),
        exception: None,
        incidents: vec![],
        maintenance: changegate_calendar::MaintenanceSlot::Primary,
        announced_at: None,
    };
    let cal = rate("calendar::check alone (category 2)", || {
        changegate_calendar::check(black_box(&p2), &window)
            .reasons
            .len()
    });
    let d2 = rate("decide: category 2, allowed", || {
        decide(black_box(&p2), &s2, &world, tue).reasons.len()
    });
    let d2n = rate("decide: category 2, weekend (denied + next slot)", || {
        decide(black_box(&p2), &s2, &world, sat).reasons.len()
    });
    let d3 = rate("decide: category 3, allowed", || {
        decide(black_box(&p3), &s3, &world, mw).reasons.len()
    });
    println!();
    println!(
        "ratio baseline / decide (cat 2 allowed): {:>8.1}x",
        base / d2
    );
    println!(
        "ratio baseline / decide (cat 3 allowed): {:>8.1}x",
        base / d3
    );
    println!(
        "ratio calendar::check / decide (cat 2):  {:>8.1}x",
        cal / d2
    );
    println!(
        "decide cat 2 denied vs allowed:          {:>8.2}x",
        d2 / d2n
    );
}
