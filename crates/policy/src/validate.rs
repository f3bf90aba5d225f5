//! Cross-reference checks on a typed policy (the last loading step, after the raw pass and
//! deserialisation). Every problem is collected, none stops the others, each with the path of the
//! offending value. Depends on the model and on [`crate::source`] for locations, never on the
//! loader.

use std::collections::{BTreeSet, HashMap};

use crate::diag::{DiagCode, Diagnostic};
use crate::facets;
use crate::model::{CategoryKind, Freeze, Level, Policy, TriggerKind, WindowClass};
use crate::source::{Locator, Seg, path_string};
use crate::suggest::did_you_mean;

mod emergency_audit;
mod integrations;
mod notifications;
mod references;

fn k(s: &str) -> Seg {
    Seg::Key(s.to_string())
}
fn i(n: usize) -> Seg {
    Seg::Index(n)
}

struct Ctx<'a> {
    policy: &'a Policy,
    loc: &'a Locator<'a>,
    out: Vec<Diagnostic>,
    used_roles: BTreeSet<String>,
}

impl Ctx<'_> {
    /// Report a problem at `path` (an error or a warning, as its code says).
    fn report(&mut self, code: DiagCode, path: Vec<Seg>, message: String, help: Option<String>) {
        let d = self.loc.diag(code, &path, message, help);
        self.out.push(d);
    }

    fn role(&mut self, role: &str, path: Vec<Seg>) {
        self.used_roles.insert(role.to_string());
        if !self.policy.roles.contains_key(role) {
            let hint = match did_you_mean(role, self.policy.roles.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`? Roles are declared under [roles]"),
                None => format!(
                    "declare it under [roles.{role}] or use one of: {}",
                    self.policy
                        .roles
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.report(
                DiagCode::UnknownRole,
                path,
                format!("unknown role `{role}`"),
                Some(hint),
            );
        }
    }

    fn roles(&mut self, roles: &[String], path: Vec<Seg>) {
        for (n, r) in roles.iter().enumerate() {
            let mut p = path.clone();
            p.push(i(n));
            self.role(r, p);
        }
    }

    fn level(&mut self, level: Level, path: Vec<Seg>) {
        if self.policy.category(level).is_none() {
            let levels: Vec<String> = self.policy.levels().iter().map(|l| l.to_string()).collect();
            self.report(
                DiagCode::UnknownCategory,
                path,
                format!("no category has level {level}"),
                Some(format!("defined levels: {}", levels.join(", "))),
            );
        }
    }

    fn levels(&mut self, levels: &[Level], path: Vec<Seg>) {
        for (n, l) in levels.iter().enumerate() {
            let mut p = path.clone();
            p.push(i(n));
            self.level(*l, p);
        }
    }
}

/// Validate a policy; returns errors and warnings.
pub(crate) fn validate(policy: &Policy, loc: &Locator<'_>) -> Vec<Diagnostic> {
    let mut cx = Ctx {
        policy,
        loc,
        out: Vec::new(),
        used_roles: BTreeSet::new(),
    };

    // Meta.
    cx.role(&policy.meta.owner, vec![k("meta"), k("owner")]);

    // Categories.
    let mut seen_levels: HashMap<Level, String> = HashMap::new();
    let mut has_emergency = false;
    for (key, cat) in &policy.categories {
        let base = vec![k("categories"), k(key)];
        if let Some(other) = seen_levels.insert(cat.level, key.clone()) {
            cx.report(
                DiagCode::DuplicateCategoryLevel,
                [base.clone(), vec![k("level")]].concat(),
                format!(
                    "categories `{other}` and `{key}` both have level {}",
                    cat.level
                ),
                Some("give each category its own level".into()),
            );
        }
        if cat.kind == CategoryKind::Emergency && cat.window == WindowClass::Emergency {
            has_emergency = true;
        }
        cx.roles(
            &cat.approvers,
            [base.clone(), vec![k("approvers")]].concat(),
        );
        cx.roles(
            &cat.deploy_approvers,
            [base.clone(), vec![k("deploy_approvers")]].concat(),
        );
        cx.roles(
            &cat.emergency_approvers,
            [base.clone(), vec![k("emergency_approvers")]].concat(),
        );
        for (n, auth) in cat.rollback_authority.iter().enumerate() {
            let p = [
                base.clone(),
                vec![k("rollback_authority"), i(n), k("all_of")],
            ]
            .concat();
            if auth.all_of.is_empty() {
                cx.report(
                    DiagCode::EmptyAuthority,
                    p.clone(),
                    "rollback authority lists no roles".into(),
                    Some("name at least one role, e.g. all_of = [\"sre-lead\"]".into()),
                );
            }
            cx.roles(&auth.all_of, p);
        }
        if !policy.rollout.plans.contains_key(&cat.rollout_plan) {
            let hint = did_you_mean(
                &cat.rollout_plan,
                policy.rollout.plans.keys().map(String::as_str),
            )
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| "declare it under [rollout.plans]".into());
            cx.report(
                DiagCode::UnknownPlan,
                [base.clone(), vec![k("rollout_plan")]].concat(),
                format!("unknown rollout plan `{}`", cat.rollout_plan),
                Some(hint),
            );
        }
    }
    if !has_emergency {
        cx.report(
            DiagCode::NoEmergencyCategory,
            vec![k("categories")],
            "no emergency category".into(),
            Some("one category needs kind = \"emergency\" and window = \"emergency\"".into()),
        );
    }

    // Matrices and rules: roles, levels, facets mapped once and known.
    let mut mapped: HashMap<String, Vec<Seg>> = HashMap::new();
    let mut check_facet = |cx: &mut Ctx<'_>, facet: &str, path: Vec<Seg>| {
        if facets::find(facet).is_none() {
            let hint = did_you_mean(facet, facets::all().map(|f| f.code))
                .map(|s| {
                    format!("did you mean `{s}`? `changegate detectors list` shows every facet")
                })
                .unwrap_or_else(|| "`changegate detectors list` shows every facet".into());
            cx.report(
                DiagCode::UnknownFacet,
                path.clone(),
                format!("unknown facet `{facet}`"),
                Some(hint),
            );
        }
        if let Some(first) = mapped.get(facet) {
            let first = path_string(first);
            cx.report(
                DiagCode::FacetMappedTwice,
                path,
                format!("facet `{facet}` is mapped twice"),
                Some(format!(
                    "it is already mapped at {first}; a facet may appear in one row only"
                )),
            );
        } else {
            mapped.insert(facet.to_string(), path);
        }
    };
    for (mkey, matrix) in &policy.matrices {
        for (n, row) in matrix.rows.iter().enumerate() {
            let base = vec![k("matrices"), k(mkey), k("rows"), i(n)];
            for (f, facet) in row.facets.iter().enumerate() {
                check_facet(
                    &mut cx,
                    facet,
                    [base.clone(), vec![k("facets"), i(f)]].concat(),
                );
            }
            cx.roles(&row.roles, [base.clone(), vec![k("roles")]].concat());
            cx.level(row.category, [base.clone(), vec![k("category")]].concat());
            // `nan` would make every comparison false: no increase would ever exceed it.
            if let Some(t) = row.threshold_usd_per_month
                && (!t.is_finite() || t < 0.0)
            {
                cx.report(
                    DiagCode::BadThreshold,
                    [base.clone(), vec![k("threshold_usd_per_month")]].concat(),
                    format!("threshold_usd_per_month {t} is not an amount"),
                    Some("a non-negative number of US dollars per month".into()),
                );
            }
        }
    }
    for (facet, rule) in &policy.rules {
        let base = vec![k("rules"), k(facet)];
        check_facet(&mut cx, facet, base.clone());
        cx.roles(&rule.roles, [base.clone(), vec![k("roles")]].concat());
        cx.level(rule.category, [base.clone(), vec![k("category")]].concat());
    }
    let unmapped: Vec<&str> = facets::all()
        .map(|f| f.code)
        .filter(|c| !mapped.contains_key(*c))
        .collect();
    if !unmapped.is_empty() {
        cx.out.push(Diagnostic {
            severity: DiagCode::FacetUnmapped.severity(),
            code: DiagCode::FacetUnmapped,
            message: format!("{} facet(s) are not mapped: {}", unmapped.len(), unmapped.join(", ")),
            path: String::new(),
            location: None,
            help: Some("changes with them are treated as `unclassified`; add matrix rows or [rules] entries".into()),
        });
    }

    // Windows.
    for (set_name, set) in [
        ("standard", &policy.windows.standard),
        ("preferred", &policy.windows.preferred),
    ] {
        for (n, slot) in set.slots.iter().enumerate() {
            let base = vec![k("windows"), k(set_name), k("slots"), i(n)];
            if slot.end <= slot.start {
                cx.report(
                    DiagCode::WindowEndBeforeStart,
                    [base.clone(), vec![k("end")]].concat(),
                    format!("slot ends at {} but starts at {}", slot.end, slot.start),
                    Some(
                        "a slot lies within one day; use `24:00` for midnight, or split it in two"
                            .into(),
                    ),
                );
            }
            if slot.days.is_empty() {
                cx.report(
                    DiagCode::EmptyDays,
                    [base, vec![k("days")]].concat(),
                    "slot lists no days".into(),
                    Some("list days such as [\"mon\", \"tue\"], or remove the slot".into()),
                );
            }
        }
    }
    let m = &policy.windows.maintenance;
    let mbase = vec![k("windows"), k("maintenance")];
    if m.end <= m.start {
        cx.report(
            DiagCode::WindowEndBeforeStart,
            [mbase.clone(), vec![k("end")]].concat(),
            format!(
                "maintenance window ends at {} but starts at {}",
                m.end, m.start
            ),
            Some("the window lies within one day; use `24:00` for midnight".into()),
        );
    } else if i64::from(m.end.minutes() - m.start.minutes()) * 60 < m.max_duration.as_secs() {
        cx.report(
            DiagCode::WindowTooShort,
            [mbase.clone(), vec![k("max_duration")]].concat(),
            format!(
                "max_duration {} is longer than the window {}-{}",
                m.max_duration, m.start, m.end
            ),
            Some("shorten max_duration or widen the window".into()),
        );
    }
    if !(1..=5).contains(&m.nth) {
        cx.report(
            DiagCode::BadOccurrence,
            [mbase.clone(), vec![k("nth")]].concat(),
            format!("nth = {} is not 1 to 5", m.nth),
            Some("1 = first occurrence of the weekday in the month, up to 5".into()),
        );
    }
    if let Some(f) = m.fallback_nth
        && (!(1..=5).contains(&f) || f <= m.nth)
    {
        cx.report(
            DiagCode::BadOccurrence,
            [mbase.clone(), vec![k("fallback_nth")]].concat(),
            format!(
                "fallback_nth = {f} must be later than nth = {} and at most 5",
                m.nth
            ),
            Some("the seed uses nth = 1 (first Tuesday) and fallback_nth = 2".into()),
        );
    }

    // Freezes.
    for (key, freeze) in &policy.freezes {
        let base = vec![k("freezes"), k(key)];
        cx.levels(
            freeze.applies_to(),
            [base.clone(), vec![k("applies_to")]].concat(),
        );
        match freeze {
            Freeze::Dates { start, end, .. } if end < start => cx.report(
                DiagCode::FreezeEndBeforeStart,
                [base.clone(), vec![k("end")]].concat(),
                format!("freeze ends {end} before it starts {start}"),
                Some("swap start and end; both days are inclusive".into()),
            ),
            Freeze::Incident { severities, .. } => {
                for (n, s) in severities.iter().enumerate() {
                    if !policy.emergency.incident_severities.contains(s) {
                        cx.report(
                            DiagCode::UnknownSeverity,
                            [base.clone(), vec![k("severities"), i(n)]].concat(),
                            format!("unknown incident severity `{s}`"),
                            Some(format!(
                                "known: {}",
                                policy.emergency.incident_severities.join(", ")
                            )),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    // Exceptions, lead times.
    cx.roles(
        &policy.exceptions.approvers,
        vec![k("exceptions"), k("approvers")],
    );
    cx.levels(
        &policy.exceptions.applies_to,
        vec![k("exceptions"), k("applies_to")],
    );
    for (key, lt) in &policy.lead_times {
        cx.levels(
            &lt.applies_to,
            vec![k("lead_times"), k(key), k("applies_to")],
        );
    }

    // Rollout plans.
    for (key, plan) in &policy.rollout.plans {
        let base = vec![k("rollout"), k("plans"), k(key), k("steps")];
        if plan.steps.is_empty() {
            cx.report(
                DiagCode::BadPlan,
                base.clone(),
                format!("plan `{key}` has no steps"),
                Some("add at least one step ending at weight = 100".into()),
            );
            continue;
        }
        let mut last: HashMap<&str, u8> = HashMap::new();
        for (n, step) in plan.steps.iter().enumerate() {
            let p = [base.clone(), vec![i(n), k("weight")]].concat();
            if !(1..=100).contains(&step.weight) {
                cx.report(
                    DiagCode::BadPlan,
                    p.clone(),
                    format!("weight {} is not 1 to 100", step.weight),
                    Some("weights are traffic percentages".into()),
                );
            }
            if let Some(prev) = last.insert(step.environment.as_str(), step.weight)
                && step.weight < prev
            {
                cx.report(
                    DiagCode::BadPlan,
                    p,
                    format!(
                        "weight goes down from {prev}% to {}% in {}",
                        step.weight, step.environment
                    ),
                    Some("a rollout only widens; a decrease is a rollback".into()),
                );
            }
        }
        if plan.steps.last().map(|s| s.weight) != Some(100) {
            cx.report(
                DiagCode::BadPlan,
                [base.clone(), vec![i(plan.steps.len() - 1), k("weight")]].concat(),
                format!("plan `{key}` does not end at 100%"),
                Some(
                    "the last step must send all traffic to the new version (weight = 100)".into(),
                ),
            );
        }
    }

    // Rollback.
    for (key, t) in &policy.rollback.triggers {
        let base = vec![k("rollback"), k("triggers"), k(key)];
        cx.levels(
            &t.applies_to,
            [base.clone(), vec![k("applies_to")]].concat(),
        );
        if matches!(t.kind, TriggerKind::Count | TriggerKind::Sustained) && t.window.is_none() {
            cx.report(
                DiagCode::TriggerNeedsWindow,
                base.clone(),
                format!("trigger `{key}` of kind {:?} needs a `window`", t.kind).to_lowercase(),
                Some("add e.g. window = \"5m\"".into()),
            );
        }
        let percent = t.metric.unit() == "%" && t.kind != TriggerKind::Relative;
        if t.threshold < 0.0 || !t.threshold.is_finite() || (percent && t.threshold > 100.0) {
            cx.report(
                DiagCode::BadThreshold,
                [base, vec![k("threshold")]].concat(),
                format!(
                    "threshold {} is out of range for {}",
                    t.threshold,
                    t.metric.unit()
                ),
                Some("thresholds are non-negative; percentages are at most 100".into()),
            );
        }
    }
    cx.role(
        &policy.rollback.database.approver,
        vec![k("rollback"), k("database"), k("approver")],
    );
    cx.role(
        &policy.rollback.database.executor,
        vec![k("rollback"), k("database"), k("executor")],
    );
    cx.roles(
        &policy.rollback.database.long_downtime_approvers,
        vec![k("rollback"), k("database"), k("long_downtime_approvers")],
    );
    cx.levels(
        &policy.rollback.testing.applies_to,
        vec![k("rollback"), k("testing"), k("applies_to")],
    );

    // Checklists.
    for (list_name, list) in [
        ("pre", &policy.checklist.pre),
        ("post", &policy.checklist.post),
    ] {
        for (key, item) in list {
            cx.levels(
                &item.applies_to,
                vec![k("checklist"), k(list_name), k(key), k("applies_to")],
            );
        }
    }

    // Post-deployment verification.
    for (key, c) in &policy.verification.checks {
        let base = vec![k("verification"), k("checks"), k(key)];
        cx.levels(
            &c.applies_to,
            [base.clone(), vec![k("applies_to")]].concat(),
        );
        if !policy.checklist.post.contains_key(&c.item) {
            let known: Vec<&str> = policy.checklist.post.keys().map(String::as_str).collect();
            cx.report(
                DiagCode::BadVerificationCheck,
                [base.clone(), vec![k("item")]].concat(),
                format!("no [checklist.post] item `{}`", c.item),
                Some(match did_you_mean(&c.item, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("items: {}", known.join(", ")),
                }),
            );
        }
        if c.below.is_none() && c.at_least.is_none() && !c.rollout_weight {
            cx.report(
                DiagCode::BadVerificationCheck,
                base.clone(),
                format!("verification check `{key}` has no limit"),
                Some("set `below`, `at_least` or `rollout_weight = true`".into()),
            );
        }
        if c.query.trim().is_empty() {
            cx.report(
                DiagCode::BadVerificationCheck,
                [base.clone(), vec![k("query")]].concat(),
                format!("verification check `{key}` has an empty query"),
                Some("a PromQL expression returning one value".into()),
            );
        }
    }

    // Emergency.
    let e = &policy.emergency;
    cx.roles(&e.declared_by, vec![k("emergency"), k("declared_by")]);
    cx.roles(&e.commander_from, vec![k("emergency"), k("commander_from")]);
    cx.role(&e.commander_role, vec![k("emergency"), k("commander_role")]);
    cx.roles(&e.remediation_by, vec![k("emergency"), k("remediation_by")]);
    cx.roles(
        &e.retrospective_by,
        vec![k("emergency"), k("retrospective_by")],
    );
    cx.role(
        &e.security.declared_by,
        vec![k("emergency"), k("security"), k("declared_by")],
    );
    cx.role(
        &e.data_loss.restored_by,
        vec![k("emergency"), k("data_loss"), k("restored_by")],
    );
    emergency_audit::emergency(&mut cx);
    references::references(&mut cx);

    integrations::integrations(&mut cx);
    integrations::github(&mut cx);
    notifications::notifications(&mut cx);

    // Audit.
    emergency_audit::retention(&mut cx);

    // Reports.
    cx.roles(
        &policy.reports.monthly.reviewers,
        vec![k("reports"), k("monthly"), k("reviewers")],
    );
    cx.roles(
        &policy.reports.quarterly.reviewers,
        vec![k("reports"), k("quarterly"), k("reviewers")],
    );
    for (key, metric) in &policy.reports.metrics {
        if metric.op.is_some() != metric.target.is_some() {
            cx.report(
                DiagCode::BadTarget,
                vec![k("reports"), k("metrics"), k(key)],
                format!("metric `{key}` needs both `op` and `target`, or neither"),
                Some("e.g. op = \"<\" and target = 5.0".into()),
            );
        }
        cx.levels(
            &metric.applies_to,
            vec![k("reports"), k("metrics"), k(key), k("applies_to")],
        );
    }

    // Roles nobody references.
    let unused: Vec<String> = policy
        .roles
        .keys()
        .filter(|r| !cx.used_roles.contains(*r))
        .cloned()
        .collect();
    for r in unused {
        cx.report(
            DiagCode::UnusedRole,
            vec![k("roles"), k(&r)],
            format!("role `{r}` is declared but never used"),
            Some("remove it, or reference it from a matrix row, category or report".into()),
        );
    }
    cx.out
}
