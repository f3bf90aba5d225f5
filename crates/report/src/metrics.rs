//! The metrics of the policy's Audit Reports and Quarterly Review, and the DORA measures,
//! computed from [`crate::facts`] (definitions: docs/reports.md).

use std::collections::BTreeMap;

use changegate_audit::Record;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::facts::{self, Deployment, Outcome};
use crate::period::{Period, ReportKind};
use crate::view::EventView;

/// A metric's target, as the policy states it (`[reports.metrics.<id>]` `op` and `target`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// `<`, `<=`, `=`, `>=` or `>`.
    pub op: String,
    /// The target value, in the metric's unit.
    pub value: f64,
}

impl Target {
    /// Whether `v` meets the target.
    pub fn holds(&self, v: f64) -> bool {
        match self.op.as_str() {
            "<" => v < self.value,
            "<=" => v <= self.value,
            "=" => (v - self.value).abs() < f64::EPSILON,
            ">=" => v >= self.value,
            ">" => v > self.value,
            _ => false,
        }
    }
}

/// Report settings: the policy's targets and reviewers, and the incident-correlation window.
/// They are part of the report body, so `report verify` recomputes with the same ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Targets by metric id (policy `[reports.metrics]`).
    pub targets: BTreeMap<String, Target>,
    /// Reviewer roles of the monthly report (policy `[reports.monthly] reviewers`).
    pub monthly_reviewers: Vec<String>,
    /// Reviewer roles of the quarterly review (policy `[reports.quarterly] reviewers`).
    pub quarterly_reviewers: Vec<String>,
    /// An incident opened within this many hours after a deployment finished is counted
    /// against it (quarterly incident correlation).
    pub incident_window_h: u32,
}

impl Default for Settings {
    fn default() -> Self {
        let t = |op: &str, value: f64| Target {
            op: op.into(),
            value,
        };
        Settings {
            targets: BTreeMap::from([
                ("rollback-rate".to_string(), t("<", 5.0)),
                ("window-violations".to_string(), t("=", 0.0)),
                ("approval-bypasses".to_string(), t("=", 0.0)),
                ("mttd-low-risk".to_string(), t("<", 2.0)),
            ]),
            monthly_reviewers: vec![
                "engineering-manager".into(),
                "security-lead".into(),
                "compliance-officer".into(),
            ],
            quarterly_reviewers: vec!["tech-architect".into(), "backend-lead".into()],
            incident_window_h: 24,
        }
    }
}

impl Settings {
    /// From the policy's `[reports]`.
    pub fn from_policy(p: &changegate_policy::Policy) -> Self {
        let targets = p
            .reports
            .metrics
            .iter()
            .filter_map(|(id, m)| {
                Some((
                    id.clone(),
                    Target {
                        op: m.op?.symbol().to_string(),
                        value: m.target?,
                    },
                ))
            })
            .collect();
        Settings {
            targets,
            monthly_reviewers: p.reports.monthly.reviewers.clone(),
            quarterly_reviewers: p.reports.quarterly.reviewers.clone(),
            incident_window_h: 24,
        }
    }
}

/// One metric with its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Stable id (`rollback-rate`, `dora-lead-time`, ...).
    pub id: String,
    /// Label.
    pub label: String,
    /// Value (`None`: nothing to measure in the period).
    pub value: Option<f64>,
    /// Unit (`count`, `%`, `h`, `per day`).
    pub unit: String,
    /// Target as the policy states it (`< 5 %`, `0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The target was missed.
    pub missed: bool,
    /// What the value was computed from (`3 of 61 deployments`).
    pub basis: String,
    /// Who reads it (the policy's reviewer of that metric).
    pub reviewer: String,
    /// Where the definition comes from (DORA measures cite the published definitions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Per-category effectiveness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryRow {
    /// Level.
    pub category: u8,
    /// Name.
    pub name: String,
    /// Deployments started.
    pub deployments: u64,
    /// Of which rolled back.
    pub rollbacks: u64,
    /// Percent.
    pub rollback_rate_pct: Option<f64>,
    /// Deployments followed by an incident opened within the incident window.
    pub followed_by_incident: u64,
    /// Percent.
    pub incident_rate_pct: Option<f64>,
}

/// Latency from submission to an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyRow {
    /// Role id.
    pub role: String,
    /// Person (empty for the per-role rows).
    pub person: String,
    /// Approvals measured.
    pub approvals: u64,
    /// Median hours (nearest rank).
    pub p50_h: f64,
    /// 90th percentile hours (nearest rank).
    pub p90_h: f64,
}

/// Deploys in one weekly slot (UTC weekday and hour of the start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotRow {
    /// `Tue 14:00`.
    pub slot: String,
    /// Deployments started in it.
    pub deployments: u64,
}

/// The quarterly review's four questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarterly {
    /// Hours after a deployment in which an incident counts against it.
    pub incident_window_h: u32,
    /// Submission → approval, per role.
    pub approval_by_role: Vec<LatencyRow>,
    /// Submission → approval, per role and person.
    pub approval_by_person: Vec<LatencyRow>,
    /// Deployments per weekly slot, busiest first.
    pub window_slots: Vec<SlotRow>,
    /// Gate decisions denied (among other reasons) by a closed window.
    pub window_denials: u64,
    /// Deployments that waited for a window (a `window-closed` decision before the start).
    pub window_delayed: u64,
    /// Median wait, hours.
    pub window_delay_p50_h: Option<f64>,
    /// 90th percentile wait, hours.
    pub window_delay_p90_h: Option<f64>,
    /// Longest wait, hours.
    pub window_delay_max_h: Option<f64>,
    /// Emergency declarations per month of the quarter.
    pub emergencies_by_month: Vec<(String, u64)>,
    /// Emergency declarations in the previous quarter.
    pub emergencies_previous_quarter: u64,
    /// `rising`, `falling` or `flat` against the previous quarter.
    pub emergency_trend: String,
}

/// The population a report counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    /// Records recorded in the period.
    pub events: u64,
    /// First and last log position of those records.
    pub first_seq: Option<u64>,
    /// Last position.
    pub last_seq: Option<u64>,
    /// Records recorded before the period's end (the log size at the end of the period).
    pub size_at_end: u64,
    /// Production deployments started in the period (one row each in `changes`).
    pub deployments: u64,
}

/// Everything computed from the records: what `report verify` recomputes and reviewers sign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body {
    /// Period start (inclusive).
    pub from: Timestamp,
    /// Period end (exclusive).
    pub to: Timestamp,
    /// Settings used.
    pub settings: Settings,
    /// The population.
    pub population: Population,
    /// Metrics with targets.
    pub metrics: Vec<Metric>,
    /// Per category.
    pub by_category: Vec<CategoryRow>,
    /// Emergency changes (change ids) deployed in the period.
    pub emergency_changes: Vec<String>,
    /// Security patches (change ids) deployed in the period.
    pub security_patches: Vec<String>,
    /// Approval bypasses: change id and code.
    pub approval_bypasses: Vec<(String, String)>,
    /// Window violations (change ids).
    pub window_violations: Vec<String>,
    /// The quarterly review (quarterly reports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarterly: Option<Quarterly>,
    /// One row per production deployment started in the period.
    pub changes: Vec<Deployment>,
}

/// Category name.
pub fn category_name(c: u8) -> &'static str {
    match c {
        1 => "low-risk",
        2 => "medium-risk",
        3 => "high-risk",
        4 => "emergency",
        _ => "unknown",
    }
}

/// Round to 4 decimals (stable JSON, same on recomputation).
pub fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn pct(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| round(n as f64 * 100.0 / d as f64))
}

fn hours(secs: i64) -> f64 {
    secs as f64 / 3600.0
}

/// Nearest-rank percentile of `v` (sorted ascending here), `p` in 0-100.
pub fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(round(v[rank.min(v.len()) - 1]))
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| round(v.iter().sum::<f64>() / v.len() as f64))
}

struct M<'a> {
    out: &'a mut Vec<Metric>,
    settings: &'a Settings,
}

impl M<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        id: &str,
        label: &str,
        value: Option<f64>,
        unit: &str,
        basis: String,
        reviewer: &str,
        source: Option<&str>,
    ) {
        self.out.push(Metric {
            id: id.into(),
            label: label.into(),
            value,
            unit: unit.into(),
            target: self.settings.targets.get(id).map(|t| {
                let unit = if unit == "count" { "" } else { unit };
                format!(
                    "{} {}{}",
                    t.op,
                    t.value,
                    if unit.is_empty() {
                        String::new()
                    } else {
                        format!(" {unit}")
                    }
                )
            }),
            missed: match (self.settings.targets.get(id), value) {
                (Some(t), Some(v)) => !t.holds(v),
                _ => false,
            },
            basis,
            reviewer: reviewer.into(),
            source: source.map(str::to_string),
        });
    }
}

const DORA: &str = "DORA, dora.dev/guides/dora-metrics-four-keys";

/// Whether an incident was opened while `d` ran or within `window_h` hours after it finished
/// (`opened`: the incidents' opening times, sorted).
fn incident_followed(d: &Deployment, opened: &[Timestamp], window_h: u32) -> bool {
    let Some(fin) = d.finished_at else {
        return false;
    };
    let limit = fin + jiff::SignedDuration::from_hours(i64::from(window_h));
    let first = opened.partition_point(|t| *t < d.started_at);
    opened.get(first).is_some_and(|t| *t <= limit)
}

/// Compute the body of `period` from the log's records (log order).
pub fn build(period: &Period, records: &[Record], settings: &Settings) -> Body {
    let mut b = BodyBuilder::new(period, settings);
    for r in records {
        b.push(&EventView::of(r));
    }
    b.finish()
}

/// The body, one record at a time (log order): [`BodyBuilder::push`] each record, then
/// [`BodyBuilder::finish`]. The records need not be held: a million-event log streams through.
pub struct BodyBuilder {
    period: Period,
    from: Timestamp,
    to: Timestamp,
    settings: Settings,
    fold: facts::Fold,
    events: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    size_at_end: u64,
}

impl BodyBuilder {
    /// A body of `period` under `settings`.
    pub fn new(period: &Period, settings: &Settings) -> Self {
        let (from, to) = (period.start(), period.end());
        BodyBuilder {
            period: *period,
            from,
            to,
            settings: settings.clone(),
            fold: facts::Fold::new(to),
            events: 0,
            first_seq: None,
            last_seq: None,
            size_at_end: 0,
        }
    }

    /// Take one record.
    pub fn push(&mut self, e: &EventView<'_>) {
        let at = e.recorded_at;
        if at < self.to {
            self.size_at_end += 1;
            if at >= self.from {
                self.events += 1;
                self.first_seq.get_or_insert(e.seq);
                self.last_seq = Some(e.seq);
            }
        }
        self.fold.push(e);
    }

    /// Records seen so far recorded before the end of the period.
    pub fn size_at_end(&self) -> u64 {
        self.size_at_end
    }

    /// The body.
    pub fn finish(self) -> Body {
        let population = |deployments| Population {
            events: self.events,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            size_at_end: self.size_at_end,
            deployments,
        };
        body(
            &self.period,
            (self.from, self.to),
            self.fold.finish(),
            &self.settings,
            population,
        )
    }
}

fn body(
    period: &Period,
    (from, to): (Timestamp, Timestamp),
    mut f: facts::Facts,
    settings: &Settings,
    population: impl FnOnce(u64) -> Population,
) -> Body {
    let contains = |t: Timestamp| from <= t && t < to;
    let mut all = std::mem::take(&mut f.deployments);
    all.retain(|d| contains(d.started_at));
    let changes = all;
    let deps: Vec<&Deployment> = changes.iter().collect();
    let n = deps.len() as u64;
    let rolled = deps
        .iter()
        .filter(|d| d.outcome == Outcome::RolledBack)
        .count() as u64;
    let ended = deps
        .iter()
        .filter(|d| d.outcome != Outcome::InProgress)
        .count() as u64;
    let ok: Vec<&&Deployment> = deps
        .iter()
        .filter(|d| d.outcome == Outcome::Success)
        .collect();

    let mut metrics = Vec::new();
    let mut m = M {
        out: &mut metrics,
        settings,
    };
    m.push(
        "deployments",
        "Total production deployments",
        Some(n as f64),
        "count",
        format!("{n} deployment(s) started"),
        "engineering-manager",
        None,
    );
    for c in 1..=4u8 {
        let k = deps.iter().filter(|d| d.category == Some(c)).count() as u64;
        m.push(
            &format!("deployments-{}", category_name(c)),
            &format!("Deployments, category {c} ({})", category_name(c)),
            Some(k as f64),
            "count",
            format!("{k} of {n}"),
            "engineering-manager",
            None,
        );
    }
    let rr = pct(rolled, n);
    m.push(
        "rollback-rate",
        "Rollback rate",
        rr,
        "%",
        format!("{rolled} of {n} deployment(s) rolled back"),
        "engineering-manager",
        None,
    );
    let wv: Vec<String> = deps
        .iter()
        .filter(|d| d.window_violation)
        .map(|d| d.change_id.clone())
        .collect();
    m.push(
        "window-violations",
        "Change window violations",
        Some(wv.len() as f64),
        "count",
        format!("{} of {n} deployment(s)", wv.len()),
        "compliance-officer",
        None,
    );
    let bypass: Vec<(String, String)> = deps
        .iter()
        .filter_map(|d| d.bypass.clone().map(|b| (d.change_id.clone(), b)))
        .collect();
    m.push(
        "approval-bypasses",
        "Approval bypass incidents",
        Some(bypass.len() as f64),
        "count",
        format!("{} of {n} deployment(s)", bypass.len()),
        "compliance-officer",
        None,
    );
    let lead = |d: &Deployment| {
        Some(hours(
            d.finished_at?.duration_since(d.commit_seen_at?).as_secs(),
        ))
    };
    let low: Vec<f64> = ok
        .iter()
        .filter(|d| d.category == Some(1))
        .filter_map(|d| lead(d))
        .collect();
    let mttd = mean(&low);
    m.push(
        "mttd-low-risk",
        "Mean time to deploy, commit → production (low-risk)",
        mttd,
        "h",
        format!("{} successful low-risk deployment(s)", low.len()),
        "engineering-manager",
        None,
    );
    let emergency: Vec<String> = deps
        .iter()
        .filter(|d| d.emergency)
        .map(|d| d.change_id.clone())
        .collect();
    m.push(
        "emergency-changes",
        "Emergency changes",
        Some(emergency.len() as f64),
        "count",
        format!("{} of {n} deployment(s)", emergency.len()),
        "security-lead",
        None,
    );
    let security: Vec<String> = deps
        .iter()
        .filter(|d| d.security_patch)
        .map(|d| d.change_id.clone())
        .collect();
    m.push(
        "security-patches",
        "Security patches",
        Some(security.len() as f64),
        "count",
        format!("{} of {n} deployment(s)", security.len()),
        "security-lead",
        None,
    );
    let exc = deps.iter().filter(|d| d.exception.is_some()).count();
    m.push(
        "exceptions-used",
        "Out-of-window exceptions used",
        Some(exc as f64),
        "count",
        format!("{exc} of {n} deployment(s)"),
        "security-lead",
        None,
    );
    let freq = round(ok.len() as f64 / period.days());
    m.push(
        "dora-deployment-frequency",
        "DORA deployment frequency",
        Some(freq),
        "per day",
        format!(
            "{} successful deployment(s) in {} day(s)",
            ok.len(),
            period.days()
        ),
        "engineering-manager",
        Some(DORA),
    );
    let mut leads: Vec<f64> = ok.iter().filter_map(|d| lead(d)).collect();
    let nl = leads.len();
    m.push(
        "dora-lead-time",
        "DORA lead time for changes (median)",
        percentile(&mut leads, 50.0),
        "h",
        format!("{nl} successful deployment(s)"),
        "engineering-manager",
        Some(DORA),
    );
    m.push(
        "dora-change-failure-rate",
        "DORA change failure rate",
        pct(rolled, ended),
        "%",
        format!("{rolled} of {ended} ended deployment(s) failed (rolled back)"),
        "engineering-manager",
        Some(DORA),
    );
    let mut restore: Vec<f64> = f
        .incidents
        .values()
        .filter(|i| contains(i.opened_at))
        .filter_map(|i| Some(hours(i.resolved_at?.duration_since(i.opened_at).as_secs())))
        .collect();
    let nr = restore.len();
    let opened = f
        .incidents
        .values()
        .filter(|i| contains(i.opened_at))
        .count();
    m.push(
        "dora-time-to-restore",
        "DORA time to restore service (median)",
        percentile(&mut restore, 50.0),
        "h",
        format!("{nr} of {opened} incident(s) opened in the period resolved"),
        "engineering-manager",
        Some(DORA),
    );

    let mut opened_at: Vec<Timestamp> = f.incidents.values().map(|i| i.opened_at).collect();
    opened_at.sort_unstable();
    let by_category = (1..=4u8)
        .map(|c| {
            let ds: Vec<&&Deployment> = deps.iter().filter(|d| d.category == Some(c)).collect();
            let dn = ds.len() as u64;
            let rb = ds
                .iter()
                .filter(|d| d.outcome == Outcome::RolledBack)
                .count() as u64;
            let inc = ds
                .iter()
                .filter(|d| incident_followed(d, &opened_at, settings.incident_window_h))
                .count() as u64;
            CategoryRow {
                category: c,
                name: category_name(c).into(),
                deployments: dn,
                rollbacks: rb,
                rollback_rate_pct: pct(rb, dn),
                followed_by_incident: inc,
                incident_rate_pct: pct(inc, dn),
            }
        })
        .collect();

    let quarterly = (period.kind() == ReportKind::Quarterly)
        .then(|| quarterly(period, &f, &deps, settings.incident_window_h));

    drop(deps);
    Body {
        from,
        to,
        settings: settings.clone(),
        population: population(n),
        metrics,
        by_category,
        emergency_changes: emergency,
        security_patches: security,
        approval_bypasses: bypass,
        window_violations: wv,
        quarterly,
        changes,
    }
}

fn quarterly(period: &Period, f: &facts::Facts, deps: &[&Deployment], window_h: u32) -> Quarterly {
    let (from, to) = (period.start(), period.end());
    let contains = |t: Timestamp| from <= t && t < to;
    let mut by_role: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut by_person: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for (_, submitted, approvals) in &f.submissions {
        for a in approvals {
            if !contains(a.at) || a.at < *submitted {
                continue;
            }
            let h = hours(a.at.duration_since(*submitted).as_secs());
            by_role.entry(a.role.clone()).or_default().push(h);
            by_person
                .entry((a.role.clone(), a.person.clone()))
                .or_default()
                .push(h);
        }
    }
    let row = |role: String, person: String, mut v: Vec<f64>| LatencyRow {
        role,
        person,
        approvals: v.len() as u64,
        p50_h: percentile(&mut v, 50.0).unwrap_or(0.0),
        p90_h: percentile(&mut v, 90.0).unwrap_or(0.0),
    };
    let approval_by_role = by_role
        .into_iter()
        .map(|(r, v)| row(r, String::new(), v))
        .collect();
    let approval_by_person = by_person
        .into_iter()
        .map(|((r, p), v)| row(r, p, v))
        .collect();

    let mut slots: BTreeMap<(i8, i8), u64> = BTreeMap::new();
    for d in deps {
        let z = d.started_at.to_zoned_datetime(jiff::tz::TimeZone::UTC);
        *slots
            .entry((z.weekday().to_monday_zero_offset(), z.hour()))
            .or_default() += 1;
    }
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut window_slots: Vec<SlotRow> = slots
        .into_iter()
        .map(|((d, h), n)| SlotRow {
            slot: format!("{} {h:02}:00", DAYS[d as usize]),
            deployments: n,
        })
        .collect();
    window_slots.sort_by_key(|s| std::cmp::Reverse(s.deployments));
    let window_denials = f
        .decisions
        .iter()
        .filter(|d| d.window_closed && contains(d.at))
        .count() as u64;
    let mut delays: Vec<f64> = deps
        .iter()
        .filter(|d| !d.window_violation && d.bypass.is_none())
        .filter_map(|d| d.window_delay_s.map(hours))
        .collect();
    let window_delayed = delays.len() as u64;
    let p50 = percentile(&mut delays, 50.0);
    let p90 = percentile(&mut delays, 90.0);
    let max = percentile(&mut delays, 100.0);

    let emergencies_by_month = period
        .month_list()
        .into_iter()
        .map(|m| {
            let n = f.emergencies.iter().filter(|(_, t)| m.contains(*t)).count() as u64;
            (m.to_string(), n)
        })
        .collect::<Vec<_>>();
    let prev = period.previous();
    let emergencies_previous_quarter = f
        .emergencies
        .iter()
        .filter(|(_, t)| prev.contains(*t))
        .count() as u64;
    let now: u64 = emergencies_by_month.iter().map(|(_, n)| n).sum();
    let emergency_trend = match now.cmp(&emergencies_previous_quarter) {
        std::cmp::Ordering::Greater => "rising",
        std::cmp::Ordering::Less => "falling",
        std::cmp::Ordering::Equal => "flat",
    }
    .to_string();
    Quarterly {
        incident_window_h: window_h,
        approval_by_role,
        approval_by_person,
        window_slots,
        window_denials,
        window_delayed,
        window_delay_p50_h: p50,
        window_delay_p90_h: p90,
        window_delay_max_h: max,
        emergencies_by_month,
        emergencies_previous_quarter,
        emergency_trend,
    }
}
