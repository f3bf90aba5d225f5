//! Properties of the decision that hold for any order of the records and any subset of approvals.

use changegate_gate::*;
use changegate_testkit::gate::*;
use proptest::prelude::*;

/// A category-2 schema change with many candidate approvals, some by people holding two roles.
fn base() -> (changegate_policy::Policy, ChangeState, WorldState) {
    let p = policy_with(
        "[roles.backend-lead]\nholders = [\"bob\", \"dana\", \"team:backend\"]\n[roles.dba-lead]\nholders = [\"dana\", \"dora\"]\n",
    );
    let mut s = change(
        2,
        vec![facet(
            "schema-column-added-default",
            &["backend-lead", "dba-lead"],
            2,
        )],
    );
    set_status(&mut s, Status::Approved, t("2026-03-09T09:00:00Z"));
    attest_all(&p, &mut s, t("2026-03-09T09:00:00Z"));
    let mut w = WorldState::default();
    w.teams
        .insert("backend".into(), vec!["alice".into(), "ben".into()]);
    (p, s, w)
}

const CANDIDATES: [(&str, &str); 9] = [
    ("dana", "backend-lead"),
    ("dana", "dba-lead"),
    ("bob", "backend-lead"),
    ("dora", "dba-lead"),
    ("alice", "backend-lead"), // the author: never counts
    ("ben", "backend-lead"),
    ("quinn", "qa"),
    ("bob", "dba-lead"), // not a holder
    ("quinn", "backend-lead"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Same records in any order → byte-identical decision.
    #[test]
    fn order_of_records_does_not_matter(picks in proptest::collection::vec(0usize..CANDIDATES.len(), 0..8), seed in any::<u64>()) {
        let (p, mut s, w) = base();
        for (i, k) in picks.iter().enumerate() {
            let (who, role) = CANDIDATES[*k];
            approve(&mut s, who, role, t("2026-03-09T10:00:00Z") + jiff::SignedDuration::from_mins(i as i64 % 3));
        }
        let at = t("2026-03-10T11:00:00Z");
        let a = serde_json::to_string(&decide(&p, &s, &w, at)).unwrap();
        // Deterministic shuffle from the seed.
        let mut x = seed | 1;
        for i in (1..s.approvals.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            s.approvals.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for i in (1..s.attestations.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            s.attestations.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let b = serde_json::to_string(&decide(&p, &s, &w, at)).unwrap();
        prop_assert_eq!(a, b);
    }

    /// Adding an approval never leaves more roles missing (the matching is maximal), and every
    /// filled role is filled by a distinct person who holds it and did not write the change.
    #[test]
    fn more_approvals_never_hurt_and_fillers_are_distinct(picks in proptest::collection::vec(0usize..CANDIDATES.len(), 0..8), extra in 0usize..CANDIDATES.len()) {
        let (p, mut s, w) = base();
        for k in &picks {
            let (who, role) = CANDIDATES[*k];
            approve(&mut s, who, role, t("2026-03-09T10:00:00Z"));
        }
        let req = requirements(&p, &s).unwrap();
        let before = approval::evaluate(&p, &s, &w, &req);
        let (who, role) = CANDIDATES[extra];
        approve(&mut s, who, role, t("2026-03-09T11:00:00Z"));
        let after = approval::evaluate(&p, &s, &w, &req);
        prop_assert!(after.missing.len() <= before.missing.len(), "{:?} -> {:?}", before.missing, after.missing);
        let people: std::collections::BTreeSet<&String> = after.filled.values().collect();
        prop_assert_eq!(people.len(), after.filled.len(), "one person filled two roles: {:?}", after.filled);
        prop_assert!(!after.filled.values().any(|p| p == "alice"));
        prop_assert!(!after.filled.iter().any(|(r, p)| r == "dba-lead" && p == "bob"));
    }
}
