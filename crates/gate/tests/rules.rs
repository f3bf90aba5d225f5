//! One test (or a few) per rule, against the built-in default policy with only role holders filled
//! in. Each approval-related rule of the seed — separation of duties, category approvers, deploy
//! approvers, lead times, checklist items, the incident commander's unilateral authority, the
//! retrospective deadline — has a test here that fails if the rule is removed from (or weakened
//! in) `crates/policy/default-policy.toml`.

use changegate_gate::*;
use changegate_testkit::gate::*;

#[test]
fn ready_changes_are_allowed_in_their_windows() {
    let (p, s) = ready(2, vec![facet("api-endpoint-added", &["backend-lead"], 2)]);
    let d = decide(&p, &s, &WorldState::default(), t(TUE));
    assert!(d.allowed, "{:#?}", d.reasons);
    let (p, s) = ready(
        3,
        vec![facet(
            "schema-column-dropped",
            &["backend-lead", "dba-lead", "sre-lead"],
            3,
        )],
    );
    let d = decide(&p, &s, &world_with_announcement(), t(MW));
    assert!(d.allowed, "{:#?}", d.reasons);
}

// --- separation of duties -------------------------------------------------------------------

#[test]
fn seed_sod_author_co_author_and_last_pusher_may_not_approve() {
    for relation in ["author", "co-author", "last-pusher"] {
        let (p, mut s) = ready(2, vec![facet("dep-minor", &["backend-lead"], 2)]);
        match relation {
            "author" => s.change.authors.push("bob".into()),
            "co-author" => s.change.co_authors.push("Bob".into()),
            _ => s.change.last_pusher = Some("bob".into()),
        }
        let d = decide(&p, &s, &WorldState::default(), t(TUE));
        assert!(!d.allowed, "{relation}");
        assert_eq!(d.missing_roles, vec!["backend-lead"], "{relation}");
        let sod = d
            .reasons
            .iter()
            .find(|r| r.code == Code::ApprovalSodViolation)
            .expect("sod reason");
        assert!(sod.denies);
        assert_eq!(sod.details["relations"][0], relation);
        assert_eq!(
            sod.details["sod"]["authors"][0], "alice",
            "inputs are recorded"
        );

        let mut s2 = s.clone();
        s2.approvals.clear();
        let a = Approval {
            person: "bob".into(),
            role: "backend-lead".into(),
            head_commit: "h1".into(),
            at: t(TUE),
            stage: Default::default(),
        };
        let err = validate_approval(&p, &s2, &WorldState::default(), &a).unwrap_err();
        assert_eq!(err.code(), "approval-self", "{relation}: {err}");
    }
}

#[test]
fn seed_sod_sees_through_aliases() {
    let (p, mut s) = ready(2, vec![facet("dep-minor", &["backend-lead"], 2)]);
    s.change
        .authors
        .push("Bob Builder <bob@example.com>".into());
    let mut w = WorldState::default();
    w.aliases
        .insert("bob builder <bob@example.com>".into(), "bob".into());
    let d = decide(&p, &s, &w, t(TUE));
    assert_eq!(d.missing_roles, vec!["backend-lead"]);
}

#[test]
fn seed_sod_one_person_may_not_fill_two_required_roles() {
    // dana holds dba-lead and, through a policy override, backend-lead as well.
    let p = policy_with("[roles.backend-lead]\nholders = [\"bob\", \"dana\"]\n");
    let mut s = change(
        2,
        vec![facet(
            "schema-column-added-default",
            &["backend-lead", "dba-lead"],
            2,
        )],
    );
    set_status(&mut s, Status::InReview, t(TUE));
    let w = WorldState::default();
    approve(&mut s, "dana", "dba-lead", t(TUE));
    let second = Approval {
        person: "dana".into(),
        role: "backend-lead".into(),
        head_commit: "h1".into(),
        at: t(TUE),
        stage: Default::default(),
    };
    let err = validate_approval(&p, &s, &w, &second).unwrap_err();
    assert_eq!(err.code(), "approval-second-role", "{err}");

    s.approvals.push(second);
    let req = requirements(&p, &s).unwrap();
    let out = approval::evaluate(&p, &s, &w, &req);
    assert_eq!(
        out.missing.len(),
        2,
        "qa plus one of dana's roles: {:?}",
        out.missing
    );
    assert!(out.missing.contains(&"qa".to_string()));
    assert!(
        out.reasons
            .iter()
            .any(|r| r.code == Code::ApprovalSodViolation && r.denies)
    );
}

#[test]
fn sod_matching_is_independent_of_approval_order() {
    let p = policy_with("[roles.backend-lead]\nholders = [\"bob\", \"dana\"]\n");
    let w = WorldState::default();
    let mut s = change(
        2,
        vec![facet(
            "schema-column-added-default",
            &["backend-lead", "dba-lead"],
            2,
        )],
    );
    set_status(&mut s, Status::Approved, t(TUE));
    // dana first in backend-lead: a greedy assignment would leave dba-lead empty.
    approve(&mut s, "dana", "backend-lead", t("2026-03-10T09:00:00Z"));
    approve(&mut s, "dana", "dba-lead", t("2026-03-10T09:01:00Z"));
    approve(&mut s, "bob", "backend-lead", t("2026-03-10T09:02:00Z"));
    approve(&mut s, "quinn", "qa", t("2026-03-10T09:03:00Z"));
    let req = requirements(&p, &s).unwrap();
    let out = approval::evaluate(&p, &s, &w, &req);
    assert!(out.missing.is_empty(), "{:?}", out.missing);
    assert_eq!(out.filled["backend-lead"], "bob");
    assert_eq!(out.filled["dba-lead"], "dana");

    let mut rev = s.clone();
    rev.approvals.reverse();
    assert_eq!(decide(&p, &s, &w, t(TUE)), decide(&p, &rev, &w, t(TUE)));
}

// --- who must approve ------------------------------------------------------------------------

#[test]
fn seed_category_approvers_are_required() {
    let p = policy();
    // Category 2: the backend lead reviews every change, even when no facet names a role.
    let s = change(2, vec![facet("cost-increase", &["sre-lead", "cfo"], 2)]);
    let req = requirements(&p, &s).unwrap();
    assert_eq!(req.roles, vec!["backend-lead", "cfo", "qa", "sre-lead"]);
    assert!(req.sources["backend-lead"].contains(&"category-approvers".to_string()));
    // Category 3: the review meeting's five sign-offs.
    let s = change(3, vec![]);
    let req = requirements(&p, &s).unwrap();
    assert_eq!(
        req.roles,
        vec![
            "backend-lead",
            "dba-lead",
            "product-owner",
            "sre-lead",
            "tech-architect"
        ]
    );
    // Category 1 needs nobody.
    assert!(
        requirements(&p, &change(1, vec![facet("docs-only", &[], 1)]))
            .unwrap()
            .roles
            .is_empty()
    );
}

#[test]
fn seed_deploy_approvers_are_required() {
    let p = policy();
    let req = requirements(&p, &change(2, vec![])).unwrap();
    assert_eq!(req.sources["qa"], vec!["deploy-approvers"]);
    // Category 3: the Tech Architect's production gate is its own deploy stage (high-risk step 5),
    // not the review sign-off (tests/contradictions.rs).
    let req = requirements(&p, &change(3, vec![])).unwrap();
    assert_eq!(req.deploy_roles, ["tech-architect"]);
    assert_eq!(req.deploy_after.as_deref(), Some("staging-smoke"));
    assert!(!req.sources["tech-architect"].contains(&"deploy-approvers".to_string()));

    // Without QA's approval a ready category-2 change is denied.
    let (p, mut s) = ready(2, vec![facet("dep-minor", &["backend-lead"], 2)]);
    s.approvals.retain(|a| a.role != "qa");
    let d = decide(&p, &s, &WorldState::default(), t(TUE));
    assert_eq!(d.missing_roles, vec!["qa"]);
    assert_eq!(denies(&d), vec!["approval-missing"]);
}

#[test]
fn only_holders_may_approve_including_team_members() {
    let p = policy();
    let mut w = WorldState::default();
    let (_, mut s) = ready(2, vec![facet("infra-scaling", &["sre-lead"], 2)]);
    s.approvals.retain(|a| a.role != "sre-lead");
    approve(&mut s, "sven", "sre-lead", t(TUE));
    let d = decide(&p, &s, &w, t(TUE));
    assert!(denies(&d).contains(&"approval-unauthorized"));
    // `team:sre` is a holder of sre-lead in the test people; sven joins the team.
    w.teams.insert("sre".into(), vec!["sven".into()]);
    let d = decide(&p, &s, &w, t(TUE));
    assert!(d.allowed, "{:#?}", d.reasons);
    let present = d
        .reasons
        .iter()
        .find(|r| r.code == Code::ApprovalPresent && r.details["role"] == "sre-lead")
        .unwrap();
    assert_eq!(present.details["holding"]["via"], "team");
}

#[test]
fn approval_validation_rejections() {
    let p = policy();
    let w = WorldState::default();
    let mut s = change(2, vec![facet("dep-minor", &["backend-lead"], 2)]);
    let mk = |person: &str, role: &str, commit: &str| Approval {
        person: person.into(),
        role: role.into(),
        head_commit: commit.into(),
        at: t(TUE),
        stage: Default::default(),
    };
    assert_eq!(
        validate_approval(&p, &s, &w, &mk("bob", "backend-lead", "h1"))
            .unwrap_err()
            .code(),
        "state-invalid"
    );
    set_status(&mut s, Status::InReview, t(TUE));
    let e = validate_approval(&p, &s, &w, &mk("bob", "backend-led", "h1")).unwrap_err();
    assert_eq!(e.code(), "unknown-role");
    assert!(e.to_string().contains("did you mean `backend-lead`"), "{e}");
    assert_eq!(
        validate_approval(&p, &s, &w, &mk("tara", "tech-architect", "h1"))
            .unwrap_err()
            .code(),
        "role-not-required"
    );
    assert_eq!(
        validate_approval(&p, &s, &w, &mk("bob", "backend-lead", "h0"))
            .unwrap_err()
            .code(),
        "approval-stale"
    );
    assert_eq!(
        validate_approval(&p, &s, &w, &mk("dana", "backend-lead", "h1"))
            .unwrap_err()
            .code(),
        "approval-unauthorized"
    );
    assert_eq!(
        validate_approval(&p, &s, &w, &mk("bob", "backend-lead", "h1")),
        Ok(())
    );
    approve(&mut s, "bob", "backend-lead", t(TUE));
    assert_eq!(
        validate_approval(&p, &s, &w, &mk("BOB", "backend-lead", "h1"))
            .unwrap_err()
            .code(),
        "approval-duplicate"
    );
}

// --- invalidation ----------------------------------------------------------------------------

#[test]
fn seed_new_commit_invalidates_approvals_and_attestations() {
    let (p, mut s) = ready(2, vec![facet("dep-minor", &["backend-lead"], 2)]);
    let w = WorldState::default();
    assert!(decide(&p, &s, &w, t(TUE)).allowed);
    s.change.head_commit = "h2".into();
    let d = decide(&p, &s, &w, t(TUE));
    assert_eq!(d.missing_roles, vec!["backend-lead", "qa"]);
    assert_eq!(
        denies(&d),
        vec!["approval-missing", "approval-stale", "checklist-stale"]
    );
}

// --- lead times ------------------------------------------------------------------------------

#[test]
fn seed_rfc_lead_time_is_five_business_days() {
    let (p, mut s) = ready(3, vec![]);
    let w = world_with_announcement();
    // Tue 24 Feb 09:00 → Tue 3 Mar 02:00: 25, 26, 27 Feb, 2, 3 Mar = 5 business days.
    s.lead_items.get_mut("rfc").unwrap().at = t("2026-02-24T09:00:00Z");
    assert!(decide(&p, &s, &w, t(MW)).allowed);
    // One day later: 4 business days.
    s.lead_items.get_mut("rfc").unwrap().at = t("2026-02-25T09:00:00Z");
    let d = decide(&p, &s, &w, t(MW));
    assert_eq!(denies(&d), vec!["lead-time-rfc"]);
    let r = d
        .reasons
        .iter()
        .find(|r| r.code == Code::LeadTimeRfc)
        .unwrap();
    assert_eq!(r.details["business_days"], 4);
    assert_eq!(r.details["required_business_days"], 5);
    s.lead_items.remove("rfc");
    assert_eq!(denies(&decide(&p, &s, &w, t(MW))), vec!["lead-time-rfc"]);
}

#[test]
fn seed_stakeholder_notice_is_three_business_days() {
    let (p, mut s) = ready(3, vec![]);
    let w = world_with_announcement();
    // Thu 26 Feb 09:00 → Tue 3 Mar 02:00: 27 Feb, 2, 3 Mar = 3 business days.
    s.lead_items.get_mut("stakeholder-notice").unwrap().at = t("2026-02-26T09:00:00Z");
    assert!(decide(&p, &s, &w, t(MW)).allowed);
    s.lead_items.get_mut("stakeholder-notice").unwrap().at = t("2026-02-27T09:00:00Z");
    assert_eq!(denies(&decide(&p, &s, &w, t(MW))), vec!["lead-time-notice"]);
}

#[test]
fn lead_times_do_not_apply_to_category_2() {
    let (p, mut s) = ready(2, vec![]);
    s.lead_items.clear();
    assert!(decide(&p, &s, &WorldState::default(), t(TUE)).allowed);
}

#[test]
fn seed_review_sla_is_one_business_day_and_only_a_finding() {
    let (p, mut s) = ready(2, vec![]);
    let w = WorldState::default();
    s.history = vec![StatusChange {
        from: Status::Draft,
        to: Status::InReview,
        at: t("2026-03-09T09:00:00Z"),
        by: None,
    }];
    // Approved by the backend lead the next business day: within the SLA.
    for a in &mut s.approvals {
        a.at = t("2026-03-10T08:00:00Z");
    }
    assert!(!has(&decide(&p, &s, &w, t(TUE)), "review-sla-breached"));
    // Two business days later: breached, still allowed.
    for a in &mut s.approvals {
        a.at = t("2026-03-11T08:00:00Z");
    }
    let d = decide(&p, &s, &w, t("2026-03-11T11:00:00Z"));
    assert!(d.allowed);
    let r = d
        .reasons
        .iter()
        .find(|r| r.code == Code::ReviewSlaBreached)
        .unwrap();
    assert!(!r.denies);
    assert_eq!(r.details["business_days"], 2);
}

// --- checklist -------------------------------------------------------------------------------

#[test]
fn seed_checklist_items_per_category() {
    let p = policy();
    let items = |level: u8, facets: Vec<ClassifiedFacet>| -> Vec<String> {
        checklist::applicable(&p, level, &facets)
            .iter()
            .filter(|(_, i)| !i.auto)
            .map(|(k, _)| k.to_string())
            .collect()
    };
    assert_eq!(items(1, vec![]), ["tests-pass", "staging-smoke"]);
    let c2 = [
        "tests-pass",
        "staging-smoke",
        "rollback-plan",
        "feature-flags",
        "dashboards",
        "on-call-notified",
    ];
    assert_eq!(items(2, vec![]), c2);
    assert_eq!(
        items(2, vec![facet("schema-index-added", &["dba-lead"], 2)]),
        [
            "tests-pass",
            "staging-smoke",
            "rollback-plan",
            "migration-tested",
            "feature-flags",
            "dashboards",
            "on-call-notified"
        ]
    );
    let mut c3 = c2.to_vec();
    c3.push("stakeholders-notified");
    assert_eq!(items(3, vec![]), c3);
    assert_eq!(items(4, vec![]), ["tests-pass"]);
    let auto: Vec<&str> = checklist::applicable(&p, 2, &[])
        .iter()
        .filter(|(_, i)| i.auto)
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(auto, ["approvals", "window-compliance"]);
}

#[test]
fn seed_each_checklist_item_denies_when_missing() {
    let cases: [(u8, Vec<ClassifiedFacet>, &str); 3] = [
        (1, vec![facet("docs-only", &[], 1)], TUE),
        (
            2,
            vec![facet("schema-table-added", &["backend-lead"], 2)],
            TUE,
        ),
        (
            3,
            vec![facet("dep-major", &["backend-lead", "tech-architect"], 3)],
            MW,
        ),
    ];
    for (level, facets, at) in cases {
        let (p, s) = ready(level, facets);
        let w = world_with_announcement();
        assert!(decide(&p, &s, &w, t(at)).allowed, "category {level} ready");
        for att in &s.attestations {
            let mut s2 = s.clone();
            s2.attestations.retain(|a| a.item != att.item);
            let d = decide(&p, &s2, &w, t(at));
            // Category 3's production gate follows the staging validation (ADR 0019).
            let expected = if level == 3 && att.item == "staging-smoke" {
                vec!["checklist-missing", "deploy-approval-missing"]
            } else {
                vec!["checklist-missing"]
            };
            assert_eq!(
                denies(&d),
                expected,
                "category {level} without {}",
                att.item
            );
            let r = d
                .reasons
                .iter()
                .find(|r| r.code == Code::ChecklistMissing)
                .unwrap();
            assert_eq!(r.details["item"], att.item.as_str());
        }
        // Evidence is required where the seed asks for it.
        let mut s2 = s.clone();
        s2.attestations
            .iter_mut()
            .find(|a| a.item == "tests-pass")
            .unwrap()
            .evidence = None;
        assert_eq!(
            denies(&decide(&p, &s2, &w, t(at))),
            vec!["checklist-evidence-missing"]
        );
    }
}

#[test]
fn attestation_validation() {
    let p = policy();
    let mut s = change(2, vec![]);
    set_status(&mut s, Status::InReview, t(TUE));
    let mk = |item: &str, ev: Option<&str>, commit: &str| Attestation {
        person: "ci".into(),
        item: item.into(),
        evidence: ev.map(Into::into),
        head_commit: commit.into(),
        at: t(TUE),
        verified: None,
    };
    assert_eq!(
        validate_attestation(&p, &s, &mk("tests-pass", Some("https://ci/1"), "h1")),
        Ok(())
    );
    assert_eq!(
        validate_attestation(&p, &s, &mk("tests-pass", None, "h1"))
            .unwrap_err()
            .code(),
        "checklist-evidence-missing"
    );
    assert_eq!(
        validate_attestation(&p, &s, &mk("tests-pass", Some("x"), "h0"))
            .unwrap_err()
            .code(),
        "checklist-stale"
    );
    assert_eq!(
        validate_attestation(&p, &s, &mk("migration-tested", Some("x"), "h1"))
            .unwrap_err()
            .code(),
        "checklist-item-not-applicable"
    );
    assert_eq!(
        validate_attestation(&p, &s, &mk("approvals", None, "h1"))
            .unwrap_err()
            .code(),
        "checklist-item-auto"
    );
    let e = validate_attestation(&p, &s, &mk("test-pass", None, "h1")).unwrap_err();
    assert!(e.to_string().contains("did you mean `tests-pass`"), "{e}");
}

// --- emergencies -----------------------------------------------------------------------------

fn emergency_state(p: &changegate_policy::Policy) -> (ChangeState, WorldState) {
    let mut s = change(
        3,
        vec![facet("dep-major", &["backend-lead", "tech-architect"], 3)],
    );
    set_status(&mut s, Status::InReview, t("2026-03-14T01:00:00Z"));
    set_status(&mut s, Status::Approved, t("2026-03-14T01:20:00Z"));
    s.emergency = Some(EmergencyDeclaration {
        incident: "INC-1".into(),
        declared_by: "oscar".into(),
        at: t("2026-03-14T01:05:00Z"),
        retrospective: None,
        follow_up_pr: None,
    });
    approve(
        &mut s,
        "sam",
        "incident-commander",
        t("2026-03-14T01:10:00Z"),
    );
    attest_all(p, &mut s, t("2026-03-14T01:15:00Z"));
    let w = WorldState {
        incidents: vec![Incident {
            id: "INC-1".into(),
            severity: "P0".into(),
            title: String::new(),
            opened_at: t("2026-03-14T00:30:00Z"),
            resolved_at: None,
            commander: Some("sam".into()),
            kind: None,
            cvss: None,
        }],
        ..WorldState::default()
    };
    (s, w)
}

#[test]
fn seed_incident_commander_approves_emergencies_alone() {
    let p = policy();
    let (s, w) = emergency_state(&p);
    // Saturday 01:30, P0 active, weekend freeze: the emergency overrides all of it.
    let d = decide(&p, &s, &w, t("2026-03-14T01:30:00Z"));
    assert!(d.allowed, "{:#?}", d.reasons);
    assert_eq!(d.category, Some(4));
    assert_eq!(d.required_roles, vec!["incident-commander"]);
    assert!(has(&d, "emergency-override"));
    let over = d
        .reasons
        .iter()
        .find(|r| r.code == Code::EmergencyOverride)
        .unwrap();
    assert_eq!(
        over.details["eligible_as"], "p0-outage",
        "which entry made it one"
    );
    let present = d
        .reasons
        .iter()
        .find(|r| r.code == Code::ApprovalPresent)
        .unwrap();
    assert_eq!(present.details["holding"]["via"], "incident-commander");

    // Someone who is not the incident's commander does not count.
    let mut s2 = s.clone();
    s2.approvals[0].person = "bob".into();
    let d = decide(&p, &s2, &w, t("2026-03-14T01:30:00Z"));
    assert_eq!(d.missing_roles, vec!["incident-commander"]);
}

#[test]
fn seed_emergency_declarers() {
    let p = policy();
    let (mut s, w) = emergency_state(&p);
    s.emergency.as_mut().unwrap().declared_by = "sec".into(); // security lead
    assert!(decide(&p, &s, &w, t("2026-03-14T01:30:00Z")).allowed);
    s.emergency.as_mut().unwrap().declared_by = "bob".into();
    let d = decide(&p, &s, &w, t("2026-03-14T01:30:00Z"));
    assert_eq!(denies(&d), vec!["emergency-declarer-unauthorized"]);
    assert!(!has(&d, "emergency-override"));
}

#[test]
fn seed_retrospective_due_within_24_hours_of_the_deploy() {
    let p = policy();
    let (mut s, _) = emergency_state(&p);
    assert!(
        overdue(&p, &s, t("2026-03-20T00:00:00Z")).is_empty(),
        "nothing due before deploying"
    );
    set_status(&mut s, Status::Deploying, t("2026-03-14T02:00:00Z"));
    set_status(&mut s, Status::Deployed, t("2026-03-14T02:30:00Z"));
    assert!(overdue(&p, &s, t("2026-03-15T01:59:00Z")).is_empty());
    assert!(
        overdue(&p, &s, t("2026-03-15T02:00:00Z")).is_empty(),
        "due at exactly 24 h"
    );
    let codes = |now: &str, s: &ChangeState| -> Vec<&'static str> {
        overdue(&p, s, t(now))
            .iter()
            .map(|r| r.code.as_str())
            .collect()
    };
    assert_eq!(
        codes("2026-03-15T02:01:00Z", &s),
        [
            "emergency-retrospective-overdue",
            "emergency-follow-up-missing"
        ]
    );
    let em = s.emergency.as_mut().unwrap();
    em.retrospective = Some(Publication {
        at: t("2026-03-15T01:00:00Z"),
        link: Some("https://wiki/retro".into()),
        by: None,
        sent: None,
    });
    assert_eq!(
        codes("2026-03-15T02:01:00Z", &s),
        ["emergency-follow-up-missing"]
    );
    s.emergency.as_mut().unwrap().follow_up_pr = Some("https://example.invalid/pr/9".into());
    assert!(codes("2026-03-15T02:01:00Z", &s).is_empty());
}

/// Issue 13: an emergency declared against a P4 incident made a category-3 change category 4,
/// window-free and approved by the commander alone. Only the incidents of category 4 qualify.
#[test]
fn seed_emergencies_only_against_eligible_incidents() {
    let p = policy();
    let saturday = t("2026-03-14T01:30:00Z");
    let (declared, w) = emergency_state(&p);
    let with_incident = |severity: &str, kind: Option<&str>, cvss: Option<f64>| {
        let mut w = w.clone();
        w.incidents[0].severity = severity.into();
        w.incidents[0].kind = kind.map(String::from);
        w.incidents[0].cvss = cvss.map(|c| Cvss::new(c).unwrap());
        w
    };
    let p4 = with_incident("P4", Some("outage"), None);

    // Declaring is refused, and nothing changes.
    let mut fresh = declared.clone();
    fresh.emergency = None;
    let before = fresh.clone();
    let declare = ops::ChangeOp::DeclareEmergency {
        incident: "INC-1".into(),
        by: "oscar".into(),
    };
    let err = ops::apply(&p, &mut fresh, &p4, &declare, saturday).unwrap_err();
    assert_eq!(
        err.code(),
        RejectionCode::EmergencyIncidentIneligible,
        "{err}"
    );
    assert_eq!(fresh, before);
    // Without the emergency the change stays category 3: the full approvers and the window.
    let d = decide(&p, &fresh, &p4, saturday);
    assert!(!d.allowed);
    assert_eq!(d.category, Some(3));
    assert!(denies(&d).contains(&"window-closed"), "{:?}", denies(&d));
    assert!(d.missing_roles.contains(&"dba-lead".to_string()) || !d.missing_roles.is_empty());
    assert!(!has(&d, "emergency-override"));

    // A declaration already on record against a P4 overrides nothing either.
    let d = decide(&p, &declared, &p4, saturday);
    assert!(!d.allowed);
    assert!(
        denies(&d).contains(&"emergency-incident-ineligible"),
        "{:?}",
        denies(&d)
    );
    assert!(!has(&d, "emergency-override"));

    // The seed's category 4: P0 (any kind), security above CVSS 9.0, data loss, cascading failure.
    for (sev, kind, cvss, eligible) in [
        ("P0", None, None, true),
        ("P0", Some("outage"), None, true),
        ("P2", Some("security"), Some(9.8), true),
        ("P2", Some("security"), Some(9.0), false),
        ("P1", Some("outage"), None, false),
        ("P3", Some("data-loss"), None, true),
        ("P2", Some("cascading-failure"), None, true),
        ("P4", None, None, false),
    ] {
        let w = with_incident(sev, kind, cvss);
        let mut s = declared.clone();
        s.emergency = None;
        let r = ops::apply(&p, &mut s, &w, &declare, t("2026-03-14T01:05:00Z"));
        assert_eq!(r.is_ok(), eligible, "{sev} {kind:?} {cvss:?}: {r:?}");
        let d = decide(&p, &declared, &w, saturday);
        assert_eq!(
            d.allowed,
            eligible,
            "{sev} {kind:?} {cvss:?}: {:?}",
            denies(&d)
        );
        assert_eq!(has(&d, "emergency-override"), eligible);
    }
}

#[test]
fn incidents_are_opened_with_a_known_kind_and_a_cvss_score() {
    let p = policy();
    let mut w = WorldState::default();
    let at = t("2026-03-14T01:00:00Z");
    let open = |kind: &str| ops::WorldOp::OpenIncident {
        id: format!("INC-{kind}"),
        severity: "P1".into(),
        commander: None,
        title: String::new(),
        kind: Some(kind.into()),
        cvss: Cvss::new(9.8),
    };
    let err = ops::apply_world(&p, &mut w, &open("outages"), at).unwrap_err();
    assert_eq!(err.code(), RejectionCode::IncidentKindInvalid);
    assert!(w.incidents.is_empty());
    ops::apply_world(&p, &mut w, &open("security"), at).unwrap();
    assert_eq!(
        w.incidents[0].cvss.map(|c| c.to_string()),
        Some("9.8".into())
    );
    // Stored incidents without kind or score keep loading; the score is a number on the wire.
    let old: Incident = serde_json::from_str(
        r#"{"id":"INC-1","severity":"P0","opened_at":"2026-03-14T00:00:00Z"}"#,
    )
    .unwrap();
    assert_eq!((old.kind, old.cvss), (None, None));
    let json = serde_json::to_value(&w.incidents[0]).unwrap();
    assert_eq!(json["cvss"], serde_json::json!(9.8));
    for bad in ["10.5", "-1", "9.85"] {
        let text = format!(
            r#"{{"id":"X","severity":"P0","opened_at":"2026-03-14T00:00:00Z","cvss":{bad}}}"#
        );
        assert!(serde_json::from_str::<Incident>(&text).is_err(), "{bad}");
    }
}

#[test]
fn emergency_classification_without_declaration_is_denied() {
    let p = policy();
    let (mut s, w) = emergency_state(&p);
    s.emergency = None;
    s.change.classification.category = 4;
    let d = decide(&p, &s, &w, t("2026-03-14T01:30:00Z"));
    assert!(denies(&d).contains(&"emergency-not-declared"));
}

// --- freezes and exceptions ------------------------------------------------------------------

#[test]
fn seed_p0_p1_incidents_freeze_non_remediation_changes() {
    let (p, mut s) = ready(2, vec![]);
    for (sev, frozen) in [("P0", true), ("P1", true), ("P2", false), ("P4", false)] {
        let w = WorldState {
            incidents: vec![Incident {
                id: "INC".into(),
                severity: sev.into(),
                title: String::new(),
                opened_at: t("2026-03-10T10:00:00Z"),
                resolved_at: None,
                commander: None,
                kind: None,
                cvss: None,
            }],
            ..WorldState::default()
        };
        let d = decide(&p, &s, &w, t(TUE));
        assert_eq!(denies(&d).contains(&"freeze-active"), frozen, "{sev}");
        s.remediates = vec!["INC".into()];
        assert!(decide(&p, &s, &w, t(TUE)).allowed, "{sev} remediation");
        s.remediates.clear();
    }
}

#[test]
fn seed_exceptions_need_backend_lead_and_sre_lead() {
    let (p, mut s) = ready(2, vec![]);
    let w = WorldState::default();
    let monday_evening = t("2026-03-09T17:00:00Z");
    s.exception = Some(ExceptionRequest {
        reason: "critical-bugfix".into(),
        requested_by: "alice".into(),
        at: monday_evening,
        severity: None,
        evidence: None,
        plan: None,
        approvals: vec![ExceptionApproval {
            person: "bob".into(),
            role: "backend-lead".into(),
            at: monday_evening,
        }],
    });
    let d = decide(&p, &s, &w, monday_evening);
    assert_eq!(denies(&d), vec!["window-closed"]);
    assert!(has(&d, "exception-invalid"));
    s.exception
        .as_mut()
        .unwrap()
        .approvals
        .push(ExceptionApproval {
            person: "sam".into(),
            role: "sre-lead".into(),
            at: monday_evening,
        });
    let d = decide(&p, &s, &w, monday_evening);
    assert!(d.allowed, "{:#?}", d.reasons);
    assert!(has(&d, "exception-applied"));
}

// --- decision properties ---------------------------------------------------------------------

#[test]
fn decisions_are_deterministic_and_sorted() {
    let (p, mut s) = ready(
        3,
        vec![facet(
            "schema-column-dropped",
            &["backend-lead", "dba-lead", "sre-lead"],
            3,
        )],
    );
    s.approvals.retain(|a| a.role != "dba-lead");
    s.attestations.pop();
    let w = world_with_announcement();
    let a = serde_json::to_string(&decide(&p, &s, &w, t("2026-03-09T17:00:00Z"))).unwrap();
    s.approvals.reverse();
    s.attestations.reverse();
    let b = serde_json::to_string(&decide(&p, &s, &w, t("2026-03-09T17:00:00Z"))).unwrap();
    assert_eq!(a, b);
    let d = decide(&p, &s, &w, t("2026-03-09T17:00:00Z"));
    let first_info = d.reasons.iter().position(|r| !r.denies).unwrap();
    assert!(d.reasons[..first_info].iter().all(|r| r.denies));
    assert!(d.reasons[first_info..].iter().all(|r| !r.denies));
}

#[test]
fn deny_by_default_states() {
    let (p, mut s) = ready(1, vec![facet("docs-only", &[], 1)]);
    let w = WorldState::default();
    for status in Status::ALL {
        s.status = status;
        assert_eq!(
            decide(&p, &s, &w, t(TUE)).allowed,
            status.is_deployable(),
            "{status}"
        );
    }
}

// --- the rules come from the policy, not from the code ---------------------------------------

/// Each seed rule, switched off by a policy override, flips the outcome of a scenario the tests
/// above rely on: proof that the gate reads the rule from the policy and does not hard-code it.
#[test]
fn switching_a_seed_rule_off_in_the_policy_changes_the_outcome() {
    let w = WorldState::default();
    // Separation of duties: the author approving.
    let self_approved = |p: &changegate_policy::Policy| {
        let (_, mut s) = ready(2, vec![facet("dep-minor", &["backend-lead"], 2)]);
        s.change.authors.push("bob".into());
        decide(p, &s, &w, t(TUE)).allowed
    };
    assert!(!self_approved(&policy()));
    assert!(self_approved(&policy_with(
        "[separation_of_duties]\nauthor_may_approve = true\n"
    )));

    // One person, two roles.
    let two_roles = |extra: &str| {
        let p = policy_with(&format!(
            "[roles.backend-lead]\nholders = [\"dana\"]\n{extra}"
        ));
        let mut s = change(
            2,
            vec![facet(
                "schema-column-added-default",
                &["backend-lead", "dba-lead"],
                2,
            )],
        );
        set_status(&mut s, Status::Approved, t(TUE));
        approve(&mut s, "dana", "backend-lead", t(TUE));
        approve(&mut s, "dana", "dba-lead", t(TUE));
        approve(&mut s, "quinn", "qa", t(TUE));
        decide(&p, &s, &w, t(TUE)).missing_roles
    };
    assert_eq!(two_roles("").len(), 1);
    assert!(two_roles("[separation_of_duties]\none_person_many_roles = true\n").is_empty());

    // Category approvers and deploy approvers.
    let roles = |p: &changegate_policy::Policy, level: u8| {
        requirements(p, &change(level, vec![])).unwrap().roles
    };
    assert_eq!(roles(&policy(), 2), ["backend-lead", "qa"]);
    assert_eq!(
        roles(
            &policy_with("[categories.medium-risk]\napprovers = []\n"),
            2
        ),
        ["qa"]
    );
    assert_eq!(
        roles(
            &policy_with("[categories.medium-risk]\ndeploy_approvers = []\n"),
            2
        ),
        ["backend-lead"]
    );

    // Lead times.
    let (p, mut s) = ready(3, vec![]);
    s.lead_items.clear();
    let wa = world_with_announcement();
    assert_eq!(
        denies(&decide(&p, &s, &wa, t(MW))),
        ["lead-time-notice", "lead-time-rfc"]
    );
    let p2 = policy_with(
        "[lead_times.rfc]\napplies_to = []\n[lead_times.stakeholder-notice]\nbusiness_days = 0\n",
    );
    let d = decide(&p2, &s, &wa, t(MW));
    assert_eq!(
        denies(&d),
        ["lead-time-notice"],
        "rfc off; a notice is still needed even at 0 days"
    );

    // A checklist item.
    let (p, mut s) = ready(2, vec![]);
    s.attestations.retain(|a| a.item != "rollback-plan");
    assert!(!decide(&p, &s, &w, t(TUE)).allowed);
    assert!(
        decide(
            &policy_with("[checklist.pre.rollback-plan]\nenabled = false\n"),
            &s,
            &w,
            t(TUE)
        )
        .allowed
    );

    // Unilateral authority.
    let p_off = policy_with("[categories.emergency]\nunilateral = false\n");
    let (s, wi) = emergency_state(&p_off);
    let d = decide(&p_off, &s, &wi, t("2026-03-14T01:30:00Z"));
    assert_eq!(d.missing_roles, ["backend-lead", "tech-architect"]);

    // Retrospective deadline.
    let (mut s, _) = emergency_state(&policy());
    set_status(&mut s, Status::Deploying, t("2026-03-14T02:00:00Z"));
    assert!(!overdue(&policy(), &s, t("2026-03-15T03:00:00Z")).is_empty());
    assert!(
        overdue(
            &policy_with("[emergency]\nretrospective_within = \"48h\"\n"),
            &s,
            t("2026-03-15T03:00:00Z")
        )
        .is_empty()
    );
}

#[test]
fn decisions_round_trip_through_json() {
    let (p, s) = ready(2, vec![facet("dep-minor", &["backend-lead"], 2)]);
    let d = decide(&p, &s, &WorldState::default(), t("2026-03-14T11:00:00Z"));
    assert!(!d.allowed);
    let json = serde_json::to_string(&d).unwrap();
    assert!(json.contains("\"code\":\"freeze-active\""), "{json}");
    let back: Decision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn seed_incident_commander_is_drawn_from_sre_or_backend_lead() {
    let p = policy();
    let (mut s, mut w) = emergency_state(&p);
    // oscar (on-call engineer) assigned as commander: not eligible under commander_from.
    w.incidents[0].commander = Some("oscar".into());
    s.approvals[0].person = "oscar".into();
    let d = decide(&p, &s, &w, t("2026-03-14T01:30:00Z"));
    assert_eq!(d.missing_roles, ["incident-commander"]);
    assert!(denies(&d).contains(&"approval-unauthorized"));
    // bob (backend lead) is eligible.
    w.incidents[0].commander = Some("bob".into());
    s.approvals[0].person = "bob".into();
    assert!(decide(&p, &s, &w, t("2026-03-14T01:30:00Z")).allowed);
}
