//! Snapshots of decisions as JSON (what `changegate gate --format json` and the decision endpoint
//! return) for the kit's prepared changes: allowed in a window, denied on a weekend with the next
//! slot, a category-3 change allowed in the announced maintenance window, and the same change
//! with one approval removed. A change to a reason, its wording or its order shows up in review.

use changegate_gate::*;
use changegate_testkit::gate::*;

fn json(d: &Decision) -> String {
    serde_json::to_string_pretty(d).unwrap()
}

fn category_3() -> (changegate_policy::Policy, ChangeState) {
    ready(
        3,
        vec![facet(
            "schema-column-dropped",
            &["backend-lead", "dba-lead", "sre-lead"],
            3,
        )],
    )
}

#[test]
fn category_2_allowed_on_tuesday() {
    let (p, s) = ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]);
    let d = decide(&p, &s, &WorldState::default(), t(TUE));
    assert!(d.allowed);
    insta::assert_snapshot!(json(&d));
}

#[test]
fn category_2_denied_on_saturday_with_the_next_slot() {
    let (p, s) = ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]);
    let d = decide(&p, &s, &WorldState::default(), t(SAT));
    assert!(!d.allowed && d.next_slot.is_some());
    insta::assert_snapshot!(json(&d));
}

#[test]
fn category_3_allowed_in_the_maintenance_window() {
    let (p, s) = category_3();
    let d = decide(&p, &s, &world_with_announcement(), t(MW));
    assert!(d.allowed);
    insta::assert_snapshot!(json(&d));
}

#[test]
fn category_3_missing_the_dba_lead() {
    let (p, mut s) = category_3();
    s.approvals.retain(|a| a.role != "dba-lead");
    let d = decide(&p, &s, &world_with_announcement(), t(MW));
    assert!(!d.allowed);
    insta::assert_snapshot!(json(&d));
}
