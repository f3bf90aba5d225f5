//! One test per rule of the seed policy document. Each asserts the rule's exact content in the
//! built-in default, so removing or altering the rule in `default-policy.toml` fails a test that
//! names it.

use changegate_policy::{
    Category, CategoryKind, Freeze, LeadKind, Metric, Policy, TriggerKind, Weekday, WindowClass,
    load_default,
};

fn p() -> Policy {
    load_default().policy
}

fn cat(level: u8) -> Category {
    p().category(level)
        .unwrap_or_else(|| panic!("category {level} missing"))
        .1
        .clone()
}

/// Asserts the matrix row that maps `facet`: change text, roles, category.
fn row(matrix: &str, change: &str, facets: &[&str], roles: &[&str], category: u8) {
    let policy = p();
    let m = policy
        .matrices
        .get(matrix)
        .unwrap_or_else(|| panic!("matrix {matrix} missing"));
    let r = m
        .rows
        .iter()
        .find(|r| r.change == change)
        .unwrap_or_else(|| panic!("row `{change}` missing from {matrix}"));
    assert_eq!(r.facets, facets, "facets of `{change}`");
    assert_eq!(r.roles, roles, "roles of `{change}`");
    assert_eq!(r.category, category, "category of `{change}`");
    for f in facets {
        let req = policy.facet_requirement(f).unwrap();
        assert_eq!(req.roles, roles);
        assert_eq!(req.category, category);
    }
}

macro_rules! rows {
    ($($name:ident: $matrix:literal, $change:literal, [$($f:literal),*], [$($r:literal),*], $cat:literal;)*) => {
        $(#[test] fn $name() { row($matrix, $change, &[$($f),*], &[$($r),*], $cat); })*
    };
}

// ---- Approval matrices: API surface (7 rows) ----
rows! {
    api_new_endpoint: "api-surface", "New endpoint (backward-compatible)", ["api-endpoint-added", "api-event-added"], ["backend-lead"], 2;
    api_new_optional_field: "api-surface", "New optional field in response", ["api-response-field-added"], ["backend-lead"], 2;
    api_required_to_optional: "api-surface", "Required field -> optional (relaxation)", ["api-field-relaxed"], ["backend-lead"], 2;
    api_optional_to_required: "api-surface", "Optional field -> required (restriction)", ["api-field-required"], ["backend-lead", "frontend-lead"], 3;
    api_endpoint_removal: "api-surface", "Endpoint removal", ["api-endpoint-removed", "api-event-removed"], ["tech-architect", "product-owner"], 3;
    api_field_type_change: "api-surface", "Response schema change (field type)", ["api-field-type-changed"], ["tech-architect", "frontend-lead"], 3;
    api_rate_limit: "api-surface", "Rate limit adjustments", ["api-rate-limit-changed"], ["sre-lead"], 2;
}

// ---- Database schema (8 rows) ----
rows! {
    db_new_table: "database-schema", "New table", ["schema-table-added"], ["backend-lead"], 2;
    db_new_nullable_column: "database-schema", "New column (nullable)", ["schema-column-added-nullable"], ["backend-lead"], 2;
    db_new_default_column: "database-schema", "New column (non-null with default)", ["schema-column-added-default"], ["backend-lead", "dba-lead"], 2;
    db_new_index: "database-schema", "New index", ["schema-index-added"], ["dba-lead"], 2;
    db_column_rename: "database-schema", "Column rename (requires app coordination)", ["schema-column-renamed"], ["backend-lead", "dba-lead"], 3;
    db_column_removal: "database-schema", "Column removal", ["schema-column-dropped"], ["backend-lead", "dba-lead", "sre-lead"], 3;
    db_table_removal: "database-schema", "Table removal", ["schema-table-dropped"], ["tech-architect", "dba-lead"], 3;
    db_downtime: "database-schema", "Migration requiring downtime (>5 min)", ["schema-downtime", "schema-column-added-required", "schema-column-type-changed"], ["tech-architect", "dba-lead", "product-owner"], 3;
}

// ---- Dependencies (7 rows) ----
rows! {
    dep_patch: "dependencies", "Patch update (e.g., 5.0.1 -> 5.0.2)", ["dep-patch"], [], 1;
    dep_minor: "dependencies", "Minor update (e.g., 5.0 -> 5.1)", ["dep-minor"], ["backend-lead"], 2;
    dep_major: "dependencies", "Major update (e.g., 5 -> 6)", ["dep-major"], ["backend-lead", "tech-architect"], 3;
    dep_new_prod: "dependencies", "New dependency (production)", ["dep-added-prod"], ["backend-lead"], 2;
    dep_new_dev: "dependencies", "New dependency (dev/test)", ["dep-added-dev", "dep-dev-changed"], [], 1;
    dep_removal: "dependencies", "Dependency removal", ["dep-removed"], ["backend-lead"], 2;
    dep_license: "dependencies", "License change (e.g., MIT -> GPL)", ["dep-license-changed"], ["legal", "tech-architect"], 2;
}

// ---- Infrastructure (6 rows) ----
rows! {
    infra_scaling: "infrastructure", "Scaling parameters (CPU/memory)", ["infra-scaling"], ["sre-lead"], 2;
    infra_env: "infrastructure", "Environment variable changes", ["env-added", "env-changed"], ["backend-lead"], 2;
    infra_secret: "infrastructure", "Secret rotation", ["secret-rotated"], ["security-lead"], 2;
    infra_cloud: "infrastructure", "Cloud provider change (AWS -> GCP)", ["cloud-provider-changed"], ["cto", "cfo"], 3;
    infra_region: "infrastructure", "Region failover configuration", ["region-failover-changed"], ["sre-lead", "tech-architect"], 3;
    infra_cost: "infrastructure", "Cost increase >$500/month", ["cost-increase"], ["sre-lead", "cfo"], 2;
}

#[test]
fn matrices_have_the_seed_row_counts() {
    let policy = p();
    let counts: Vec<(String, usize)> = policy
        .matrices
        .iter()
        .map(|(k, m)| (k.clone(), m.rows.len()))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("api-surface".into(), 7),
            ("database-schema".into(), 8),
            ("dependencies".into(), 7),
            ("infrastructure".into(), 6)
        ]
    );
}

#[test]
fn downtime_threshold_and_cost_threshold() {
    let policy = p();
    let db = &policy.matrices["database-schema"].rows[7];
    assert_eq!(db.downtime_threshold.as_ref().unwrap().as_secs(), 300);
    let cost = &policy.matrices["infrastructure"].rows[5];
    assert_eq!(cost.threshold_usd_per_month, Some(500.0));
}

// ---- Rules from category examples and fail-closed facets ----
fn rule(facet: &str, roles: &[&str], category: u8) {
    let r = p()
        .rules
        .get(facet)
        .unwrap_or_else(|| panic!("rule {facet} missing"))
        .clone();
    assert_eq!(r.roles, roles, "{facet}");
    assert_eq!(r.category, category, "{facet}");
}

#[test]
fn rule_docs_only_is_category_1() {
    rule("docs-only", &[], 1);
}
#[test]
fn rule_log_level_is_category_1() {
    rule("log-level", &[], 1);
}
#[test]
fn rule_feature_flag_config_is_category_1() {
    rule("feature-flag-config", &[], 1);
}
#[test]
fn rule_bugfix_needs_90_percent_coverage() {
    rule("bugfix-covered", &[], 1);
    assert_eq!(
        p().rules["bugfix-covered"].min_changed_line_coverage,
        Some(90.0)
    );
}
#[test]
fn rule_protocol_change_is_high_risk() {
    rule("protocol-changed", &["tech-architect", "backend-lead"], 3);
}
#[test]
fn rule_runtime_upgrade_is_high_risk() {
    rule("runtime-upgrade", &["sre-lead", "tech-architect"], 3);
}
#[test]
fn rule_database_engine_upgrade_is_high_risk() {
    rule(
        "database-engine-upgrade",
        &["dba-lead", "sre-lead", "tech-architect"],
        3,
    );
}
#[test]
fn rule_env_removal_is_not_medium_risk() {
    rule("env-removed", &["backend-lead"], 3);
}
#[test]
fn fail_closed_facets_are_never_category_1() {
    for f in ["unclassified", "unparseable", "code-changed"] {
        let r = &p().rules[f];
        assert!(r.category >= 2, "{f} must fail closed");
        assert!(!r.roles.is_empty(), "{f} must need a reviewer");
    }
}

// ---- Categories ----
#[test]
fn category_1_low_risk_auto_any_time() {
    let c = cat(1);
    assert_eq!(c.kind, CategoryKind::Auto);
    assert!(c.approvers.is_empty());
    assert_eq!(c.window, WindowClass::AnyTime);
    assert_eq!(c.rollout_plan, "low-risk");
    assert_eq!(c.notify, ["slack:#deployments"]);
    assert_eq!(c.rollback_authority.len(), 2);
    assert_eq!(c.rollback_authority[0].all_of, ["on-call-engineer"]);
    assert_eq!(c.rollback_authority[1].all_of, ["incident-commander"]);
}
#[test]
fn category_2_medium_risk_single_approval() {
    let c = cat(2);
    assert_eq!(c.kind, CategoryKind::SingleApproval);
    assert_eq!(c.approvers, ["backend-lead"]);
    assert_eq!(c.deploy_approvers, ["qa"]);
    assert_eq!(c.window, WindowClass::Standard);
    assert_eq!(c.rollout_plan, "standard");
    assert_eq!(c.notify, ["slack:#deployments", "email:stakeholders"]);
    assert_eq!(c.rollback_authority.len(), 1);
    assert_eq!(c.rollback_authority[0].all_of, ["backend-lead"]);
    assert_eq!(c.emergency_approvers, ["backend-lead", "sre-lead"]);
    assert_eq!(c.monitoring.watch.as_secs(), 3600);
}
#[test]
fn category_3_high_risk_review_board_and_gate() {
    let c = cat(3);
    assert_eq!(c.kind, CategoryKind::MultiApproval);
    assert_eq!(
        c.approvers,
        [
            "tech-architect",
            "backend-lead",
            "dba-lead",
            "sre-lead",
            "product-owner"
        ]
    );
    assert_eq!(c.deploy_approvers, ["tech-architect"]);
    assert_eq!(c.window, WindowClass::Maintenance);
    assert_eq!(c.rollout_plan, "high-risk");
    assert_eq!(c.rollback_authority[0].all_of, ["backend-lead", "sre-lead"]);
    assert!(!c.rollback_authority[0].during_active_incident);
    assert_eq!(c.rollback_authority[1].all_of, ["incident-commander"]);
    assert!(c.rollback_authority[1].during_active_incident);
    assert_eq!(c.emergency_approvers, ["cto"]);
    assert!(c.requires_tested_rollback);
    assert_eq!(
        c.monitoring
            .incident_commander_standby
            .as_ref()
            .unwrap()
            .as_secs(),
        4 * 3600
    );
    assert_eq!(c.monitoring.daily_status_days, Some(3));
}
#[test]
fn category_4_emergency_unilateral_any_time() {
    let c = cat(4);
    assert_eq!(c.kind, CategoryKind::Emergency);
    assert!(c.unilateral);
    assert_eq!(c.approvers, ["incident-commander"]);
    assert_eq!(c.window, WindowClass::Emergency);
    assert_eq!(c.rollback_authority[0].all_of, ["incident-commander"]);
    assert_eq!(c.notify, ["slack:#incidents"]);
}

// ---- Roles ----
#[test]
fn the_fifteen_roles_exist_with_no_holders_by_default() {
    let policy = p();
    let ids: Vec<&str> = policy.roles.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "backend-lead",
            "frontend-lead",
            "tech-architect",
            "product-owner",
            "dba-lead",
            "sre-lead",
            "security-lead",
            "legal",
            "cto",
            "cfo",
            "incident-commander",
            "on-call-engineer",
            "qa",
            "engineering-manager",
            "compliance-officer"
        ]
    );
    assert!(policy.roles.values().all(|r| r.holders.is_empty()));
    assert!(policy.roles.values().all(|r| r.invalidate_on_new_commit));
}
#[test]
fn separation_of_duties_is_strict() {
    let sod = p().separation_of_duties;
    assert!(!sod.author_may_approve);
    assert!(!sod.one_person_many_roles);
}

// ---- Windows ----
fn slot(set: &[changegate_policy::Slot], days: &[Weekday]) -> (String, String) {
    let s = set
        .iter()
        .find(|s| s.days == days)
        .unwrap_or_else(|| panic!("no slot for {days:?}"));
    (s.start.to_string(), s.end.to_string())
}
#[test]
fn window_monday_10_to_16() {
    assert_eq!(
        slot(&p().windows.standard.slots, &[Weekday::Mon]),
        ("10:00".into(), "16:00".into())
    );
}
#[test]
fn window_tuesday_to_thursday_10_to_18() {
    assert_eq!(
        slot(
            &p().windows.standard.slots,
            &[Weekday::Tue, Weekday::Wed, Weekday::Thu]
        ),
        ("10:00".into(), "18:00".into())
    );
}
#[test]
fn window_friday_10_to_14() {
    assert_eq!(
        slot(&p().windows.standard.slots, &[Weekday::Fri]),
        ("10:00".into(), "14:00".into())
    );
}
#[test]
fn window_no_weekend_slots_and_utc() {
    let policy = p();
    assert_eq!(policy.windows.standard.slots.len(), 3);
    assert_eq!(policy.standard_tz().name(), "UTC");
}
#[test]
fn preferred_window_tuesday_to_thursday_10_to_16() {
    let policy = p();
    assert_eq!(policy.windows.preferred.slots.len(), 1);
    assert_eq!(
        slot(
            &policy.windows.preferred.slots,
            &[Weekday::Tue, Weekday::Wed, Weekday::Thu]
        ),
        ("10:00".into(), "16:00".into())
    );
}
#[test]
fn maintenance_first_tuesday_02_to_06_fallback_second() {
    let m = p().windows.maintenance;
    assert_eq!(m.weekday, Weekday::Tue);
    assert_eq!(m.nth, 1);
    assert_eq!(
        (m.start.to_string(), m.end.to_string()),
        ("02:00".into(), "06:00".into())
    );
    assert_eq!(m.fallback_nth, Some(2));
    assert_eq!(m.max_duration.as_secs(), 4 * 3600);
    assert_eq!(m.announce_lead.as_secs(), 14 * 86400);
    assert!(m.requires_customer_notification);
}
#[test]
fn weekend_freeze_friday_16_to_monday_08() {
    let policy = p();
    match &policy.freezes["weekend"] {
        Freeze::Weekly {
            from,
            to,
            applies_to,
            ..
        } => {
            assert_eq!(
                (from.day, from.time.to_string()),
                (Weekday::Fri, "16:00".into())
            );
            assert_eq!(
                (to.day, to.time.to_string()),
                (Weekday::Mon, "08:00".into())
            );
            assert_eq!(applies_to, &[2, 3]);
        }
        other => panic!("weekend freeze is {other:?}"),
    }
}
#[test]
fn holiday_freeze_last_week_of_december() {
    let policy = p();
    match &policy.freezes["holiday"] {
        Freeze::Annual {
            start,
            end,
            applies_to,
            ..
        } => {
            assert_eq!(
                (start.to_string(), end.to_string()),
                ("12-25".into(), "12-31".into())
            );
            assert_eq!(applies_to, &[2, 3]);
        }
        other => panic!("holiday freeze is {other:?}"),
    }
}
#[test]
fn incident_freeze_p0_p1_except_remediation() {
    let policy = p();
    match &policy.freezes["incident"] {
        Freeze::Incident {
            severities,
            except_remediation,
            applies_to,
            ..
        } => {
            assert_eq!(severities, &["P0", "P1"]);
            assert!(*except_remediation);
            assert_eq!(applies_to, &[2, 3]);
        }
        other => panic!("incident freeze is {other:?}"),
    }
}
#[test]
fn exceptions_backend_and_sre_lead_for_three_reasons() {
    let e = p().exceptions;
    assert_eq!(e.approvers, ["backend-lead", "sre-lead"]);
    assert_eq!(e.applies_to, [2]);
    let reasons: Vec<&str> = e.reasons.keys().map(String::as_str).collect();
    assert_eq!(
        reasons,
        ["critical-bugfix", "security-patch", "performance"]
    );
    assert_eq!(
        e.reasons["security-patch"].min_severity.as_deref(),
        Some("high")
    );
    assert_eq!(
        e.reasons["performance"].requires_evidence.as_deref(),
        Some("monitoring-plan")
    );
}

// ---- Lead times ----
#[test]
fn lead_time_rfc_5_business_days_for_high_risk() {
    let lt = &p().lead_times["rfc"];
    assert_eq!(
        (lt.business_days, lt.applies_to.as_slice(), lt.kind),
        (5, &[3u8][..], LeadKind::BeforeDeploy)
    );
    assert_eq!(lt.must_include.len(), 5);
}
#[test]
fn lead_time_stakeholder_notice_3_business_days() {
    let lt = &p().lead_times["stakeholder-notice"];
    assert_eq!(
        (lt.business_days, lt.applies_to.as_slice(), lt.kind),
        (3, &[3u8][..], LeadKind::BeforeDeploy)
    );
}
#[test]
fn review_sla_1_business_day_for_medium_risk() {
    let lt = &p().lead_times["review-sla"];
    assert_eq!(
        (lt.business_days, lt.applies_to.as_slice(), lt.kind),
        (1, &[2u8][..], LeadKind::Sla)
    );
}
#[test]
fn business_days_monday_to_friday() {
    let b = p().business_days;
    assert_eq!(
        b.days,
        [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri
        ]
    );
}

// ---- Rollout plans ----
fn steps(plan: &str) -> Vec<(String, u8, Option<i64>)> {
    p().rollout.plans[plan]
        .steps
        .iter()
        .map(|s| {
            (
                s.environment.clone(),
                s.weight,
                s.soak.as_ref().map(|d| d.as_secs()),
            )
        })
        .collect()
}
#[test]
fn plan_low_risk_staging_2h_soak_then_production() {
    assert_eq!(
        steps("low-risk"),
        [
            ("staging".into(), 100, Some(7200)),
            ("production".into(), 100, None)
        ]
    );
}
#[test]
fn plan_standard_canary_5_50_100_over_30_minutes() {
    let s = steps("standard");
    assert_eq!(s.iter().map(|s| s.1).collect::<Vec<_>>(), [5, 50, 100]);
    assert_eq!(s.iter().filter_map(|s| s.2).sum::<i64>(), 1800);
    assert_eq!(
        p().rollout.plans["standard"]
            .monitor_after
            .as_ref()
            .unwrap()
            .as_secs(),
        3600
    );
}
#[test]
fn plan_high_risk_5_25_50_100_with_8h_soaks() {
    let s = steps("high-risk");
    assert_eq!(s.iter().map(|s| s.1).collect::<Vec<_>>(), [5, 25, 50, 100]);
    assert_eq!(
        s.iter().map(|s| s.2).collect::<Vec<_>>(),
        [Some(28800), Some(28800), Some(28800), None]
    );
    let plan = &p().rollout.plans["high-risk"];
    assert!(plan.incident_commander_standby);
    assert_eq!(plan.total.as_ref().unwrap().as_secs(), 48 * 3600);
}
#[test]
fn plan_emergency_direct_to_production() {
    assert_eq!(steps("emergency"), [("production".into(), 100, None)]);
}

// ---- Rollback triggers ----
fn trigger(
    id: &str,
    metric: Metric,
    kind: TriggerKind,
    threshold: f64,
    window: Option<i64>,
    levels: &[u8],
) {
    let policy = p();
    let t = policy
        .rollback
        .triggers
        .get(id)
        .unwrap_or_else(|| panic!("trigger {id} missing"));
    assert_eq!(t.metric, metric, "{id}");
    assert_eq!(t.kind, kind, "{id}");
    assert_eq!(t.threshold, threshold, "{id}");
    assert_eq!(t.window.as_ref().map(|w| w.as_secs()), window, "{id}");
    assert_eq!(t.applies_to, levels, "{id}");
    assert!(t.enabled, "{id}");
}
#[test]
fn trigger_slo_error_rate_above_half_percent() {
    trigger(
        "slo-error-rate",
        Metric::ErrorRate,
        TriggerKind::Absolute,
        0.5,
        None,
        &[1, 2],
    );
}
#[test]
fn trigger_slo_p95_above_250ms() {
    trigger(
        "slo-p95-latency",
        Metric::P95Latency,
        TriggerKind::Absolute,
        250.0,
        None,
        &[1, 2],
    );
}
#[test]
fn trigger_error_rate_plus_0_3_points() {
    trigger(
        "error-rate-increase",
        Metric::ErrorRate,
        TriggerKind::Relative,
        0.3,
        None,
        &[1, 2, 3, 4],
    );
}
#[test]
fn trigger_p95_plus_100ms() {
    trigger(
        "p95-latency-increase",
        Metric::P95Latency,
        TriggerKind::Relative,
        100.0,
        None,
        &[1, 2, 3, 4],
    );
}
#[test]
fn trigger_more_than_3_health_check_failures_in_5_minutes() {
    trigger(
        "health-check-failures",
        Metric::HealthCheckFailures,
        TriggerKind::Count,
        3.0,
        Some(300),
        &[1, 2, 3, 4],
    );
}
#[test]
fn trigger_db_pool_above_90_percent() {
    trigger(
        "db-pool-exhaustion",
        Metric::DbPoolUtilisation,
        TriggerKind::Utilisation,
        90.0,
        None,
        &[1, 2, 3, 4],
    );
}
#[test]
fn trigger_memory_above_85_percent_for_5_minutes() {
    trigger(
        "memory-sustained",
        Metric::MemoryUtilisation,
        TriggerKind::Sustained,
        85.0,
        Some(300),
        &[1, 2, 3, 4],
    );
}
#[test]
fn rollback_within_30_seconds_and_procedures() {
    let r = p().rollback;
    assert_eq!(r.deadline.as_secs(), 30);
    assert_eq!(r.post_mortem_within.as_secs(), 86400);
    assert_eq!(r.database.approver, "dba-lead");
    assert_eq!(r.database.max_downtime.as_secs(), 300);
    assert_eq!(r.testing.applies_to, [3]);
    assert_eq!(r.testing.requirements.len(), 4);
    assert_eq!(r.testing.max_duration.as_secs(), 300);
    assert_eq!(r.triggers.len(), 7);
}

// ---- Checklists ----
fn item(list: &str, id: &str, text_part: &str, levels: &[u8]) {
    let policy = p();
    let l = if list == "pre" {
        &policy.checklist.pre
    } else {
        &policy.checklist.post
    };
    let i = l
        .get(id)
        .unwrap_or_else(|| panic!("checklist {list}.{id} missing"));
    assert!(i.text.contains(text_part), "{list}.{id}: {}", i.text);
    assert_eq!(i.applies_to, levels, "{list}.{id}");
    assert!(i.enabled);
}
#[test]
fn pre_tests_pass() {
    item("pre", "tests-pass", "All tests pass in CI", &[1, 2, 3, 4]);
}
#[test]
fn pre_approvals() {
    item(
        "pre",
        "approvals",
        "approved by required approvers",
        &[1, 2, 3, 4],
    );
    assert!(p().checklist.pre["approvals"].auto);
}
#[test]
fn pre_staging_smoke() {
    item(
        "pre",
        "staging-smoke",
        "Staging deployment successful",
        &[1, 2, 3],
    );
}
#[test]
fn pre_rollback_plan() {
    item("pre", "rollback-plan", "Rollback plan documented", &[2, 3]);
}
#[test]
fn pre_migration_tested() {
    item(
        "pre",
        "migration-tested",
        "Database migration tested in staging",
        &[2, 3],
    );
    assert_eq!(
        p().checklist.pre["migration-tested"].condition.as_deref(),
        Some("schema-change")
    );
}
#[test]
fn pre_feature_flags() {
    item("pre", "feature-flags", "Feature flags configured", &[2, 3]);
}
#[test]
fn pre_dashboards() {
    item(
        "pre",
        "dashboards",
        "Monitoring dashboards prepared",
        &[2, 3],
    );
}
#[test]
fn pre_on_call_notified() {
    item(
        "pre",
        "on-call-notified",
        "On-call engineer notified",
        &[2, 3],
    );
}
#[test]
fn pre_window_compliance() {
    item(
        "pre",
        "window-compliance",
        "Change window compliance",
        &[1, 2, 3, 4],
    );
    assert!(p().checklist.pre["window-compliance"].auto);
}
#[test]
fn pre_stakeholders_notified() {
    item(
        "pre",
        "stakeholders-notified",
        "Stakeholder notification sent",
        &[3],
    );
}
#[test]
fn pre_checklist_has_ten_items() {
    assert_eq!(p().checklist.pre.len(), 10);
}
#[test]
fn post_health_checks() {
    item(
        "post",
        "health-checks",
        "Health checks passing",
        &[1, 2, 3, 4],
    );
    assert_eq!(
        p().checklist.post["health-checks"].endpoints,
        ["/api/v1/health", "/api/v1/health/database"]
    );
}
#[test]
fn post_error_rate() {
    item("post", "error-rate", "Error rate <0.5%", &[1, 2, 3, 4]);
    assert_eq!(p().checklist.post["error-rate"].threshold, Some(0.5));
}
#[test]
fn post_p95_latency() {
    item("post", "p95-latency", "p95 latency <250ms", &[1, 2, 3, 4]);
    assert_eq!(p().checklist.post["p95-latency"].threshold, Some(250.0));
}
#[test]
fn post_no_new_errors() {
    item("post", "no-new-errors", "No new errors", &[1, 2, 3, 4]);
}
#[test]
fn post_db_performance() {
    item(
        "post",
        "db-performance",
        "no slow queries >1s",
        &[1, 2, 3, 4],
    );
    assert_eq!(p().checklist.post["db-performance"].threshold, Some(1000.0));
}
#[test]
fn post_socket_connections() {
    item(
        "post",
        "socket-connections",
        "Socket.IO connections stable",
        &[1, 2, 3, 4],
    );
}
#[test]
fn post_feature_flag_rollout() {
    item(
        "post",
        "feature-flag-rollout",
        "expected rollout percentage",
        &[2, 3],
    );
}
#[test]
fn post_verification_has_seven_items() {
    assert_eq!(p().checklist.post.len(), 7);
}

// ---- Emergency procedure ----
#[test]
fn emergency_declaration_commander_and_deadlines() {
    let e = p().emergency;
    assert!(e.declared_by.contains(&"on-call-engineer".to_string()));
    assert_eq!(e.declaration_via, "pagerduty-incident");
    assert_eq!(e.commander_from, ["sre-lead", "backend-lead"]);
    assert_eq!(e.commander_role, "incident-commander");
    assert_eq!(e.channel, "slack:#incidents");
    assert!(e.may_bypass_staging);
    assert_eq!(e.retrospective_within.as_secs(), 86400);
    assert!(e.follow_up_pr);
    assert_eq!(e.executive_report_for, ["P0", "security"]);
    assert_eq!(e.incident_severities, ["P0", "P1", "P2", "P3", "P4"]);
}
/// Category 4: "CRITICAL security vulnerability patches (CVE with CVSS >9.0)", "Production outage
/// hotfixes (P0 incidents)", "Data loss prevention", "Cascading failure mitigation" — and nothing
/// else: a P4, a P1 outage or a CVSS 9.0 vulnerability is not an emergency.
#[test]
fn emergencies_only_for_the_incidents_of_category_4() {
    let e = p().emergency;
    let el = |sev: &str, kind: Option<&str>, cvss: Option<f64>| e.eligibility(sev, kind, cvss);
    assert_eq!(el("P0", Some("outage"), None), Some("p0-outage"));
    assert_eq!(
        el("P0", None, None),
        Some("p0-outage"),
        "incidents without a kind"
    );
    assert_eq!(
        el("P2", Some("security"), Some(9.8)),
        Some("critical-vulnerability")
    );
    assert_eq!(el("P3", Some("data-loss"), None), Some("data-loss"));
    assert_eq!(
        el("P1", Some("cascading-failure"), None),
        Some("cascading-failure")
    );
    for (sev, kind, cvss) in [
        ("P4", None, None),
        ("P4", Some("outage"), None),
        ("P1", Some("outage"), None),
        ("P1", Some("security"), Some(9.0)),
        ("P1", Some("security"), None),
        ("P2", Some("degradation"), Some(9.9)),
    ] {
        assert_eq!(el(sev, kind, cvss), None, "{sev} {kind:?} {cvss:?}");
    }
    assert!(e.incident_kinds.contains(&"security".to_string()));
}
/// "Retention: 2 years (compliance requirement)": the seed's value is the built-in floor.
#[test]
fn audit_retention_two_years_is_the_floor() {
    let a = p().audit;
    assert_eq!(
        a.retention.to_string(),
        changegate_policy::MINIMUM_RETENTION
    );
    assert!(!a.below_minimum());
    assert!(a.retention_below_minimum_acknowledged.is_none());
}
#[test]
fn security_incident_response_deadlines() {
    let s = p().emergency.security;
    assert_eq!(s.declared_by, "security-lead");
    assert_eq!(s.min_cvss, 9.0);
    assert_eq!(
        (
            s.mitigate_within.as_secs(),
            s.remediate_within.as_secs(),
            s.post_incident_within.as_secs()
        ),
        (3600, 4 * 3600, 86400)
    );
}
#[test]
fn data_loss_restore_rto_30_minutes() {
    let d = p().emergency.data_loss;
    assert_eq!(d.restore_rto.as_secs(), 1800);
    assert_eq!(d.restored_by, "dba-lead");
}

// ---- Audit, reports, reviews ----
#[test]
fn audit_fields_and_two_year_retention() {
    let a = p().audit;
    assert_eq!(a.retention.to_string(), "2y");
    assert_eq!(a.retention.get().get_years(), 2);
    assert_eq!(
        a.fields.what,
        ["commit-sha", "artifact-version", "changed-files"]
    );
    assert_eq!(a.fields.who, ["deployer", "approvers"]);
    assert_eq!(a.fields.when, ["deployed-at-utc", "duration"]);
    assert_eq!(a.fields.why, ["pr-link", "ticket", "incident"]);
    assert_eq!(a.fields.outcome, ["result", "error-rate", "latency-impact"]);
}
#[test]
fn monthly_report_reviewers() {
    assert_eq!(
        p().reports.monthly.reviewers,
        ["engineering-manager", "security-lead", "compliance-officer"]
    );
}
#[test]
fn report_metric_targets() {
    use changegate_policy::Op;
    let m = p().reports.metrics;
    assert!(m.contains_key("deployments-by-category"));
    assert_eq!(
        (m["rollback-rate"].op, m["rollback-rate"].target),
        (Some(Op::Lt), Some(5.0))
    );
    assert_eq!(
        (m["window-violations"].op, m["window-violations"].target),
        (Some(Op::Eq), Some(0.0))
    );
    assert_eq!(
        (m["approval-bypasses"].op, m["approval-bypasses"].target),
        (Some(Op::Eq), Some(0.0))
    );
    assert_eq!(
        (m["mttd-low-risk"].op, m["mttd-low-risk"].target),
        (Some(Op::Lt), Some(2.0))
    );
    assert_eq!(m["mttd-low-risk"].applies_to, [1]);
}
#[test]
fn quarterly_review_and_retrospective_questions() {
    let r = p().reports;
    assert_eq!(r.quarterly.reviewers, ["tech-architect", "backend-lead"]);
    assert_eq!(r.quarterly.questions.len(), 4);
    assert_eq!(r.retrospective.questions.len(), 3);
}
#[test]
fn meta_version_and_owner() {
    let m = p().meta;
    assert_eq!(m.version, "1.0");
    assert_eq!(m.effective_date.to_string(), "2025-10-20");
    assert_eq!(m.owner, "tech-architect");
}

// ---- classification on real history (issue 19) ------------------------------------------------

#[test]
fn seed_classify_readings_ci_rules_and_fix_markers() {
    use changegate_policy::{DevUpdates, Transitive};
    let policy = p();
    assert_eq!(policy.classify.transitive, Transitive::Attribute);
    assert_eq!(policy.classify.dev_updates, DevUpdates::DevChanged);
    assert!(policy.classify.env_files.iter().any(|g| g == "**/.env"));
    assert!(policy.classify.env_files.iter().any(|g| g == "**/.env.*"));
    assert!(
        policy
            .classify
            .ci_paths
            .iter()
            .any(|g| g == ".github/workflows/*.yml")
    );
    assert!(
        policy
            .classify
            .deploy_markers
            .iter()
            .any(|m| m == "kubectl")
    );
    let ci = policy.facet_requirement("ci-config-changed").unwrap();
    assert_eq!((ci.category, ci.roles.len()), (1, 0));
    let deploy = policy.facet_requirement("deploy-config-changed").unwrap();
    assert_eq!(deploy.category, 2);
    assert_eq!(deploy.roles, vec!["sre-lead".to_string()]);
    let fix = &policy.rules["bugfix-covered"];
    assert_eq!(fix.fix_types, vec!["fix", "hotfix", "revert"]);
    assert!(fix.fix_labels.iter().any(|l| l == "bug"));
    // The strict readings are policy data.
    let strict = changegate_policy::load(
        "[classify]\ntransitive = \"strict\"\ndev_updates = \"graded\"\n",
        "strict.toml",
    )
    .unwrap()
    .policy;
    assert_eq!(strict.classify.transitive, Transitive::Strict);
    assert_eq!(strict.classify.dev_updates, DevUpdates::Graded);
    assert!(changegate_policy::load("[classify]\ntransitive = \"loose\"\n", "bad.toml").is_err());
}
