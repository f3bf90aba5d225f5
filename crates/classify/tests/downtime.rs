//! Issue 14, contradiction 6: "Migration requiring downtime (> 5 min)" uses the policy's 5-minute
//! threshold on a migration's declared downtime (`-- changegate: downtime=10m`), not only
//! `classify.big_tables` (empty in the seed). End to end: a real repository, the default policy.

mod fixture;

use fixture::*;

const MIG: &str = "prisma/migrations/20260301000000_bio/migration.sql";

fn classify(sql: &str) -> changegate_classify::Classification {
    let r = Repo::service();
    r.write(MIG, sql);
    r.classify()
}

#[test]
fn a_declared_downtime_over_five_minutes_is_the_downtime_row() {
    let c =
        classify("-- changegate: downtime=10m\nALTER TABLE \"User\" ADD COLUMN \"bio\" TEXT;\n");
    assert!(codes(&c).contains(&"schema-downtime"), "{:?}", codes(&c));
    assert_eq!(c.category.level, 3);
    for role in ["tech-architect", "dba-lead", "product-owner"] {
        assert!(roles(&c).contains(&role), "{role}: {:?}", roles(&c));
    }
}

#[test]
fn a_declared_downtime_within_five_minutes_is_not() {
    let c = classify("-- changegate: downtime=5m\nALTER TABLE \"User\" ADD COLUMN \"bio\" TEXT;\n");
    assert!(!codes(&c).contains(&"schema-downtime"), "{:?}", codes(&c));
    assert_eq!(c.category.level, 2);
}
