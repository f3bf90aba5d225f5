//! `cargo bench -p changegate-calendar`: the cost of `check` and `next_slot` next to a trivial
//! baseline measured in the same run (goals: check < 10 µs, next over a one-year horizon < 1 ms).

use std::hint::black_box;
use std::time::{Duration, Instant};

use changegate_calendar::{
    Calendar, MaintenanceSlot, NEXT_SLOT_HORIZON, WindowRequest, check, next_slot,
};
use jiff::{SignedDuration, Timestamp};

fn req(category: u8, at: &str, minutes: i64) -> WindowRequest {
    WindowRequest {
        category,
        start: at.parse().unwrap(),
        duration: SignedDuration::from_mins(minutes),
        exception: None,
        incidents: Vec::new(),
        maintenance: MaintenanceSlot::Primary,
        announced_at: None,
    }
}

/// Mean time per call over at least ~0.3 s (after a warm-up).
fn measure<T>(mut f: impl FnMut() -> T) -> Duration {
    for _ in 0..10 {
        black_box(f());
    }
    let mut n: u32 = 1;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        let el = t.elapsed();
        if el > Duration::from_millis(300) {
            return el / n;
        }
        n = n.saturating_mul(2);
    }
}

fn main() {
    let loaded = changegate_policy::load_default();
    let policy = loaded.policy;
    let mut berlin = policy.clone();
    berlin.windows.timezone = "Europe/Berlin".parse().unwrap();
    let cal = Calendar::new(&policy);
    let cal_berlin = Calendar::new(&berlin);

    let open = req(2, "2026-03-03T11:00:00Z", 30);
    let weekend = req(2, "2026-03-07T12:00:00Z", 30);
    let maint = req(3, "2026-03-04T12:00:00Z", 60);
    let xmas = req(2, "2026-12-24T17:31:00Z", 30);
    let never = req(2, "2026-03-02T10:00:00Z", 9 * 60);
    let base_ts: Timestamp = "2026-03-03T11:00:00Z".parse().unwrap();

    let baseline = measure(|| {
        // Trivial work of the same kind: a category lookup and one timestamp comparison.
        let r = black_box(&open);
        (
            policy.category(r.category).is_some(),
            black_box(base_ts) + r.duration > r.start,
        )
    });
    let rows: Vec<(&str, Duration)> = vec![
        ("baseline (category lookup + compare)", baseline),
        (
            "Calendar::new (compile policy)",
            measure(|| Calendar::new(black_box(&policy))),
        ),
        (
            "check, open window (compiled)",
            measure(|| cal.check(black_box(&open))),
        ),
        (
            "check, open window (free fn)",
            measure(|| check(&policy, black_box(&open))),
        ),
        (
            "check, open window, Europe/Berlin",
            measure(|| cal_berlin.check(black_box(&open))),
        ),
        (
            "evaluate, weekend (no next-slot search)",
            measure(|| cal.evaluate(black_box(&weekend))),
        ),
        (
            "check, weekend (incl. next slot)",
            measure(|| cal.check(black_box(&weekend))),
        ),
        (
            "next_slot, weekend -> monday",
            measure(|| cal.next_slot(black_box(&weekend), NEXT_SLOT_HORIZON)),
        ),
        (
            "next_slot, cat 3 -> next month",
            measure(|| cal.next_slot(black_box(&maint), NEXT_SLOT_HORIZON)),
        ),
        (
            "next_slot, dec 24 -> jan 1",
            measure(|| cal.next_slot(black_box(&xmas), NEXT_SLOT_HORIZON)),
        ),
        (
            "next_slot, 9h never fits (full year)",
            measure(|| next_slot(&policy, black_box(&never), NEXT_SLOT_HORIZON)),
        ),
        (
            "next_slot, full year, Europe/Berlin",
            measure(|| cal_berlin.next_slot(black_box(&never), NEXT_SLOT_HORIZON)),
        ),
    ];
    println!("{:<44} {:>12} {:>10}", "operation", "time/op", "x baseline");
    for (name, d) in rows {
        println!(
            "{name:<44} {:>12} {:>10.1}",
            format!("{:.2?}", d),
            d.as_nanos() as f64 / baseline.as_nanos().max(1) as f64
        );
    }
}
