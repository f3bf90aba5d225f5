//! A seeded year of change history as audit events, with the ground truth each event came from,
//! so tests compute the expected metrics independently of `changegate-report` (shared by the
//! report, store and CLI tests through `#[path]`).
#![allow(dead_code)]

use changegate_audit::{AuditEvent, kinds};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// 0..n
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// percent chance
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

#[derive(Debug, Clone)]
pub struct GenApproval {
    pub role: String,
    pub person: String,
    pub at: Timestamp,
}

/// What the generator did for one change (the ground truth).
#[derive(Debug, Clone)]
pub struct GenChange {
    pub id: String,
    pub category: u8,
    pub created: Timestamp,
    pub approvals: Vec<GenApproval>,
    pub emergency: bool,
    pub security: bool,
    pub exception: Option<String>,
    /// First window-closed decision.
    pub window_closed_at: Option<Timestamp>,
    pub deployed: Option<Timestamp>,
    /// `no-decision` / `decision-denied`.
    pub bypass: Option<&'static str>,
    pub window_violation: bool,
    pub rolled_back: Option<Timestamp>,
    pub finished: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct GenIncident {
    pub id: String,
    pub opened: Timestamp,
    pub resolved: Option<Timestamp>,
}

pub struct History {
    pub events: Vec<(Timestamp, AuditEvent)>,
    pub changes: Vec<GenChange>,
    pub incidents: Vec<GenIncident>,
    /// (change id, time) of emergency declarations.
    pub emergencies: Vec<Timestamp>,
}

fn min(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

const APPROVERS: [(&str, &[&str]); 4] = [
    ("backend-lead", &["bob", "bea"]),
    ("tech-architect", &["tara"]),
    ("dba-lead", &["dan", "dora"]),
    ("incident-commander", &["ivan"]),
];

fn person(rng: &mut Rng, role: &str) -> String {
    let people = APPROVERS.iter().find(|(r, _)| *r == role).unwrap().1;
    people[rng.below(people.len() as u64) as usize].to_string()
}

fn decision(allowed: bool, window_closed: bool, over: Option<&str>) -> serde_json::Value {
    let mut reasons = vec![];
    if window_closed {
        reasons.push(
            json!({"code": "window-closed", "denies": true, "message": "closed", "details": {}}),
        );
    } else {
        reasons.push(
            json!({"code": "window-open", "denies": false, "message": "open", "details": {}}),
        );
    }
    if let Some(o) = over {
        reasons.push(json!({"code": o, "denies": false, "message": o, "details": {}}));
    }
    json!({"allowed": allowed, "change_id": "x", "reasons": reasons, "required_roles": [], "missing_roles": []})
}

/// A year (2026) of changes: `per_day` up to that many changes a day.
pub fn generate(seed: u64, per_day: u64) -> History {
    let mut rng = Rng::new(seed);
    let mut events: Vec<(Timestamp, AuditEvent)> = Vec::new();
    let mut changes = Vec::new();
    let mut incidents = Vec::new();
    let mut emergencies = Vec::new();
    let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut n = 0;
    let mut inc_n = 0;
    for day in 0..365 {
        let day0 = start + SignedDuration::from_hours(24 * day);
        for _ in 0..rng.below(per_day + 1) {
            n += 1;
            let id = format!("CR-{n:05}");
            let commit = format!("{:040x}", rng.next() as u128 * 7 + n as u128);
            let category = match rng.below(100) {
                0..50 => 1u8,
                50..80 => 2,
                80..92 => 3,
                _ => 4,
            };
            let created = day0 + min(8 * 60 + rng.below(8 * 60) as i64);
            let cat = category.to_string();
            let ev = |kind: &str, actor: &str| {
                AuditEvent::new(kind, actor)
                    .change(&id)
                    .category(&cat)
                    .what("commit-sha", commit.clone())
            };
            let mut g = GenChange {
                id: id.clone(),
                category,
                created,
                approvals: vec![],
                emergency: false,
                security: false,
                exception: None,
                window_closed_at: None,
                deployed: None,
                bypass: None,
                window_violation: false,
                rolled_back: None,
                finished: None,
            };
            let mut t = created;
            if category == 4 {
                inc_n += 1;
                let inc = format!("INC-{inc_n}");
                let security = rng.chance(50);
                let opened = created - min(10);
                let mut op =
                    json!({"op": "open-incident", "id": inc, "severity": "P0", "title": "outage"});
                if security {
                    op["kind"] = json!("security");
                    op["cvss"] = json!(9.8);
                }
                events.push((
                    opened,
                    AuditEvent::new(kinds::INCIDENT, "pagerduty").details(json!({"op": op})),
                ));
                let resolved = opened + min(60 + rng.below(600) as i64);
                events.push((
                    resolved,
                    AuditEvent::new(kinds::INCIDENT, "pagerduty")
                        .details(json!({"op": {"op": "resolve-incident", "id": inc}})),
                ));
                incidents.push(GenIncident {
                    id: inc.clone(),
                    opened,
                    resolved: Some(resolved),
                });
                g.security = security;
                g.emergency = true;
                events.push((
                    created + min(1),
                    ev(kinds::INCIDENT, "ivan").details(
                        json!({"op": {"op": "declare-emergency", "incident": inc, "by": "ivan"}}),
                    ),
                ));
                emergencies.push(created + min(1));
            }
            events.push((
                created,
                ev(kinds::CHANGE_CREATED, "alice")
                    .why("pr-link", format!("https://git.example/acme/app/pull/{n}"))
                    .why("ticket", format!("OPS-{n}"))
                    .details(json!({"repository": "acme/app", "status": "in-review"})),
            ));
            let roles: Vec<&str> = match category {
                1 => vec![],
                2 => vec!["backend-lead"],
                3 => vec!["tech-architect", "dba-lead"],
                _ => vec!["incident-commander"],
            };
            for role in roles {
                t += min(if category == 4 {
                    5
                } else {
                    30 + rng.below(30 * 60) as i64
                });
                let p = person(&mut rng, role);
                events.push((
                    t,
                    ev(kinds::APPROVAL_GRANTED, &p)
                        .details(json!({"op": {"op": "approve", "person": p, "role": role}})),
                ));
                g.approvals.push(GenApproval {
                    role: role.into(),
                    person: p,
                    at: t,
                });
            }
            if category == 2 && rng.chance(10) {
                let reason = if rng.chance(50) {
                    "security-patch"
                } else {
                    "critical-bugfix"
                };
                t += min(5);
                events.push((
                    t,
                    ev(kinds::EXCEPTION, "alice").details(
                        json!({"op": {"op": "request-exception", "reason": reason, "by": "alice"}}),
                    ),
                ));
                t += min(5);
                events.push((
                    t,
                    ev(kinds::EXCEPTION, "cto").details(
                        json!({"op": {"op": "approve-exception", "person": "cto", "role": "cto"}}),
                    ),
                ));
                g.exception = Some(reason.to_string());
                if reason == "security-patch" {
                    g.security = true;
                }
            }
            if rng.chance(5) {
                changes.push(g); // never deployed
                continue;
            }
            if category != 4 && rng.chance(15) {
                t += min(2);
                events.push((
                    t,
                    ev(kinds::GATE_DECISION, "ci")
                        .outcome("result", "denied")
                        .details(decision(false, true, None)),
                ));
                g.window_closed_at = Some(t);
                t += min(60 + rng.below(20 * 60) as i64);
            } else {
                t += min(if category == 1 {
                    5 + rng.below(150) as i64
                } else {
                    10 + rng.below(300) as i64
                });
            }
            let roll = rng.below(1000);
            let over = if category == 4 {
                Some("emergency-override")
            } else if g.exception.is_some() {
                Some("exception-applied")
            } else {
                None
            };
            if roll < 15 {
                // No decision at the start; an earlier window-closed denial for the same commit
                // is then the decision it started against (docs/reports.md).
                if g.window_closed_at.is_some() {
                    g.bypass = Some("decision-denied");
                    g.window_violation = true;
                } else {
                    g.bypass = Some("no-decision");
                }
            } else if roll < 25 {
                g.bypass = Some("decision-denied");
                g.window_violation = true;
                events.push((
                    t - min(1),
                    ev(kinds::GATE_DECISION, "ci")
                        .outcome("result", "denied")
                        .details(decision(false, true, None)),
                ));
                g.window_closed_at.get_or_insert(t - min(1));
            } else {
                events.push((
                    t - min(1),
                    ev(kinds::GATE_DECISION, "ci")
                        .outcome("result", "allowed")
                        .details(decision(true, false, over)),
                ));
            }
            events.push((
                t,
                ev(kinds::DEPLOYMENT_START, "deployer")
                    .who("deployer", "dee")
                    .details(json!({"op": {"op": "transition", "event": "start"}})),
            ));
            g.deployed = Some(t);
            if rng.chance(4) {
                let at = t + min(20);
                events.push((
                    at,
                    ev(kinds::ROLLBACK, "changegate")
                        .outcome("result", "abort")
                        .outcome("error-rate", 7.5),
                ));
                g.rolled_back = Some(at);
            } else {
                let at = t + min(30);
                events.push((
                    at,
                    ev(kinds::DEPLOYMENT_FINISH, "changegate")
                        .outcome("result", "complete")
                        .outcome("error-rate", 0.2),
                ));
                g.finished = Some(at);
                if rng.chance(3) {
                    inc_n += 1;
                    let inc = format!("INC-{inc_n}");
                    let opened = at + min(180);
                    events.push((opened, AuditEvent::new(kinds::INCIDENT, "pagerduty").details(json!({"op": {"op": "open-incident", "id": inc, "severity": "P2", "title": "errors"}}))));
                    let resolved = opened + min(30 + rng.below(300) as i64);
                    events.push((
                        resolved,
                        AuditEvent::new(kinds::INCIDENT, "pagerduty")
                            .details(json!({"op": {"op": "resolve-incident", "id": inc}})),
                    ));
                    incidents.push(GenIncident {
                        id: inc,
                        opened,
                        resolved: Some(resolved),
                    });
                }
            }
            changes.push(g);
        }
    }
    // Log order is time order (what a single clock gives).
    events.sort_by_key(|(t, _)| *t);
    History {
        events,
        changes,
        incidents,
        emergencies,
    }
}

// ---- Expected metrics, computed from the ground truth alone ----

pub fn nearest_rank(mut v: Vec<f64>, p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let k = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[k.max(1) - 1])
}

pub fn r4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn h(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs() as f64 / 3600.0
}

/// Expected monthly/quarterly metrics between `from` and `to`.
pub struct Expected {
    pub deployments: usize,
    pub by_category: [usize; 4],
    pub rollbacks: usize,
    pub rollback_rate: Option<f64>,
    pub window_violations: usize,
    pub bypasses: usize,
    pub mttd_low: Option<f64>,
    pub emergencies: usize,
    pub security: usize,
    pub exceptions: usize,
    pub frequency: f64,
    pub lead_median: Option<f64>,
    pub cfr: Option<f64>,
    pub restore_median: Option<f64>,
    pub emergency_declarations: usize,
    pub window_delayed: usize,
    pub window_delay_p90: Option<f64>,
    /// role -> (count, p50, p90)
    pub approval_by_role: Vec<(String, usize, f64, f64)>,
    pub followed_by_incident: [usize; 4],
}

pub fn expected(hist: &History, from: Timestamp, to: Timestamp) -> Expected {
    let inp = |t: Timestamp| from <= t && t < to;
    let deps: Vec<&GenChange> = hist
        .changes
        .iter()
        .filter(|c| c.deployed.is_some_and(inp))
        .collect();
    let rolled = |c: &GenChange| c.rolled_back.is_some_and(|t| t < to);
    let done = |c: &GenChange| c.finished.is_some_and(|t| t < to);
    let n = deps.len();
    let rollbacks = deps.iter().filter(|c| rolled(c)).count();
    let ended = deps.iter().filter(|c| rolled(c) || done(c)).count();
    let mut by_category = [0; 4];
    let mut followed = [0; 4];
    for c in &deps {
        by_category[c.category as usize - 1] += 1;
        if let Some(end) = c
            .finished
            .filter(|t| *t < to)
            .or(c.rolled_back.filter(|t| *t < to))
        {
            let lim = end + SignedDuration::from_hours(24);
            let start = c.deployed.unwrap();
            if hist
                .incidents
                .iter()
                .any(|i| i.opened < to && i.opened >= start && i.opened <= lim)
            {
                followed[c.category as usize - 1] += 1;
            }
        }
    }
    let ok: Vec<&&GenChange> = deps.iter().filter(|c| done(c)).collect();
    let low: Vec<f64> = ok
        .iter()
        .filter(|c| c.category == 1)
        .map(|c| h(c.created, c.finished.unwrap()))
        .collect();
    let leads: Vec<f64> = ok
        .iter()
        .map(|c| h(c.created, c.finished.unwrap()))
        .collect();
    let restore: Vec<f64> = hist
        .incidents
        .iter()
        .filter(|i| inp(i.opened))
        .filter_map(|i| i.resolved.filter(|r| *r < to).map(|r| h(i.opened, r)))
        .collect();
    let days = to.duration_since(from).as_secs() as f64 / 86_400.0;
    let delays: Vec<f64> = deps
        .iter()
        .filter(|c| c.bypass.is_none())
        .filter_map(|c| c.window_closed_at.map(|w| h(w, c.deployed.unwrap())))
        .collect();
    let mut roles: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for c in &hist.changes {
        for a in &c.approvals {
            if inp(a.at) {
                roles
                    .entry(a.role.clone())
                    .or_default()
                    .push(h(c.created, a.at));
            }
        }
    }
    Expected {
        deployments: n,
        by_category,
        rollbacks,
        rollback_rate: (n > 0).then(|| r4(rollbacks as f64 * 100.0 / n as f64)),
        window_violations: deps.iter().filter(|c| c.window_violation).count(),
        bypasses: deps.iter().filter(|c| c.bypass.is_some()).count(),
        mttd_low: (!low.is_empty()).then(|| r4(low.iter().sum::<f64>() / low.len() as f64)),
        emergencies: deps.iter().filter(|c| c.emergency).count(),
        security: deps.iter().filter(|c| c.security).count(),
        exceptions: deps.iter().filter(|c| c.exception.is_some()).count(),
        frequency: r4(ok.len() as f64 / days),
        lead_median: nearest_rank(leads, 50.0).map(r4),
        cfr: (ended > 0).then(|| r4(rollbacks as f64 * 100.0 / ended as f64)),
        restore_median: nearest_rank(restore, 50.0).map(r4),
        emergency_declarations: hist.emergencies.iter().filter(|t| inp(**t)).count(),
        window_delayed: delays.len(),
        window_delay_p90: nearest_rank(delays, 90.0).map(r4),
        approval_by_role: roles
            .into_iter()
            .map(|(r, v)| {
                let n = v.len();
                (
                    r,
                    n,
                    r4(nearest_rank(v.clone(), 50.0).unwrap()),
                    r4(nearest_rank(v, 90.0).unwrap()),
                )
            })
            .collect(),
        followed_by_incident: followed,
    }
}
