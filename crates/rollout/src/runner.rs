//! The guard loop (IO shell around [`crate::engine::Guard`]): every interval, read all trigger
//! metrics at once, feed the engine, act on its verdict, record, show progress.
//!
//! Order of work on a rollback is chosen for speed: the rollback action runs first, the event is
//! recorded right after with the action's result and the values that caused it. Promotions are
//! recorded before the set-weight action runs. A failing set-weight action fails closed: the guard
//! rolls back (`set-weight-failed`).
//!
//! Time comes from one injected [`Clock`]: it stamps every evaluation and event and paces the
//! loop, so a test on [`ManualClock`](crate::clock::ManualClock) drives the very loop that runs in
//! production ([`run`] is [`run_with_clock`] on the [`SystemClock`]).

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::action::{Action, ActionResult, ActionVars};
use crate::clock::{Clock, SystemClock};
use crate::codes::ReasonCode;
use crate::engine::{Decision, Guard, Observation, Reason, Verdict};
use crate::progress::Progress;
use crate::prom::Prometheus;
use crate::queries;
use crate::recorder::{Event, EventKind, RecordError, Recorder};
use crate::replay::is_state_change;
use crate::spec::GuardSpec;

/// Where observations come from.
pub trait MetricSource: Sync {
    /// Read every trigger's metric (and traffic) as of `at`.
    fn observe(&self, at: Timestamp) -> impl Future<Output = Observation> + Send;
}

/// Reads the triggers' PromQL from a Prometheus server, all queries concurrently.
#[derive(Debug, Clone)]
pub struct PromSource {
    prom: Prometheus,
    queries: Vec<(String, String)>,
    traffic: String,
}

impl PromSource {
    /// Resolve each trigger's query (`--selector` narrows the defaults).
    pub fn new(prom: Prometheus, spec: &GuardSpec, selector: &str) -> Self {
        let queries = spec
            .triggers
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    queries::for_trigger(t, selector, &spec.queries),
                )
            })
            .collect();
        PromSource {
            prom,
            queries,
            traffic: queries::traffic(selector, &spec.queries),
        }
    }

    /// The (trigger, PromQL) pairs.
    pub fn queries(&self) -> &[(String, String)] {
        &self.queries
    }

    /// The traffic query.
    pub fn traffic_query(&self) -> &str {
        &self.traffic
    }
}

impl MetricSource for PromSource {
    async fn observe(&self, at: Timestamp) -> Observation {
        self.observe_at(Some(at)).await
    }
}

impl PromSource {
    /// Read every query as of `at`, or as of Prometheus's own "now" when `None` (the server's
    /// guard: its clock may be a test's, Prometheus's samples are real).
    pub async fn observe_at(&self, at: Option<Timestamp>) -> Observation {
        let mut set = JoinSet::new();
        for (i, (_, q)) in self.queries.iter().enumerate() {
            let (prom, q) = (self.prom.clone(), q.clone());
            set.spawn(async move { (Some(i), prom.instant(&q, at).await) });
        }
        let (prom, q) = (self.prom.clone(), self.traffic.clone());
        set.spawn(async move { (None, prom.instant(&q, at).await) });
        let mut readings = vec![None; self.queries.len()];
        let mut traffic = None;
        while let Some(joined) = set.join_next().await {
            let Ok((slot, result)) = joined else { continue };
            let reading = match result {
                Ok(sample) => sample.reading(),
                Err(e) => crate::engine::Reading::Failed {
                    error: e.to_string(),
                },
            };
            match slot {
                Some(i) => readings[i] = Some(reading),
                None => traffic = Some(reading),
            }
        }
        let mut obs = Observation {
            traffic,
            ..Default::default()
        };
        for ((name, _), r) in self.queries.iter().zip(readings) {
            obs.readings.insert(
                name.clone(),
                r.unwrap_or(crate::engine::Reading::Failed {
                    error: "query task failed".into(),
                }),
            );
        }
        obs
    }
}

/// How to run the guard.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Evaluation interval.
    pub interval: Duration,
    /// Set-weight action (none: weights are only recorded).
    pub set_weight: Option<Action>,
    /// Rollback action.
    pub rollback: Action,
    /// Describe actions instead of running them.
    pub dry_run: bool,
    /// Change id for the log and the actions.
    pub change: Option<String>,
    /// Stop (without acting) after this many evaluations; for tests and bounded trials.
    pub max_evaluations: Option<u64>,
    /// Timeout of the set-weight action (the rollback action gets the policy's deadline).
    pub action_timeout: Duration,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunEnd {
    /// The plan completed.
    Completed,
    /// The guard rolled back.
    RolledBack,
    /// Never started (no baseline).
    Aborted,
    /// Stopped by `max_evaluations`.
    Stopped,
}

/// Timing of an automatic rollback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackTiming {
    /// When the evaluation that fired started (queries sent).
    pub evaluation_started: Timestamp,
    /// When the engine decided.
    pub decided: Timestamp,
    /// The rollback action.
    pub action: ActionResult,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    /// How it ended.
    pub end: RunEnd,
    /// The last decision.
    pub last: Decision,
    /// Set for automatic rollbacks.
    pub rollback: Option<RollbackTiming>,
    /// Set-weight actions that ran, in order.
    pub steps: Vec<ActionResult>,
    /// Evaluations run.
    pub evaluations: u64,
}

struct Ctx<'a, R: Recorder + ?Sized, C: Clock> {
    clock: &'a C,
    spec: &'a GuardSpec,
    opts: &'a RunOptions,
    recorder: &'a mut R,
}

impl<R: Recorder + ?Sized, C: Clock> Ctx<'_, R, C> {
    async fn event(
        &mut self,
        kind: EventKind,
        d: Option<&Decision>,
        action: Option<ActionResult>,
    ) -> Result<(), RecordError> {
        let ev = Event {
            t: d.map_or_else(|| self.clock.now(), |d| d.at),
            kind,
            change: self.opts.change.clone(),
            plan: self.spec.plan.name.clone(),
            category: self.spec.category,
            step: d.and_then(|d| d.step),
            weight: d.and_then(|d| d.weight),
            verdict: d.map(|d| d.verdict),
            reasons: d.map(|d| d.reasons.clone()).unwrap_or_default(),
            triggers: d.map(|d| d.triggers.clone()).unwrap_or_default(),
            action,
            detail: serde_json::Value::Null,
            dry_run: self.opts.dry_run,
        };
        self.recorder.record(&ev).await
    }

    fn vars(&self, action: &str, d: &Decision) -> ActionVars {
        ActionVars {
            action: action.into(),
            weight: if action == "rollback" {
                0
            } else {
                d.weight.unwrap_or(0)
            },
            step: d.step.map_or(0, |s| s + 1),
            environment: d.environment.clone().unwrap_or_default(),
            plan: self.spec.plan.name.clone(),
            change: self.opts.change.clone().unwrap_or_default(),
            reasons: d
                .reasons
                .iter()
                .map(|r| format!("{}: {}", r.code, r.message))
                .collect(),
        }
    }
}

/// Run the guard on the wall clock until it completes, rolls back, aborts or hits
/// `max_evaluations`.
pub async fn run<S: MetricSource, R: Recorder + ?Sized, P: Progress + ?Sized>(
    spec: &GuardSpec,
    source: &S,
    recorder: &mut R,
    progress: &mut P,
    opts: &RunOptions,
) -> Result<RunOutcome, RecordError> {
    run_with_clock(&SystemClock, spec, source, recorder, progress, opts).await
}

/// [`run`] on the given clock: every timestamp (events, decisions, rollback timing) and every
/// wait between evaluations comes from `clock`. Evaluations are `opts.interval` apart; one that
/// ends late starts the next interval from its end instead of bunching up (the first evaluation
/// runs at once).
pub async fn run_with_clock<
    C: Clock,
    S: MetricSource,
    R: Recorder + ?Sized,
    P: Progress + ?Sized,
>(
    clock: &C,
    spec: &GuardSpec,
    source: &S,
    recorder: &mut R,
    progress: &mut P,
    opts: &RunOptions,
) -> Result<RunOutcome, RecordError> {
    let mut ctx = Ctx {
        clock,
        spec,
        opts,
        recorder,
    };
    let start = Event {
        t: clock.now(),
        kind: EventKind::Started,
        change: opts.change.clone(),
        plan: spec.plan.name.clone(),
        category: spec.category,
        step: None,
        weight: None,
        verdict: None,
        reasons: Vec::new(),
        triggers: Vec::new(),
        action: None,
        detail: serde_json::json!({ "spec": spec, "interval_seconds": opts.interval.as_secs_f64() }),
        dry_run: opts.dry_run,
    };
    ctx.recorder.record(&start).await?;
    let mut guard = Guard::new(spec.clone());
    let mut next = clock.now();
    let mut last: Option<Decision> = None;
    let mut steps = Vec::new();
    let mut evaluations = 0u64;
    let rollback_timeout = Duration::from_secs_f64(spec.rollback_deadline.as_secs_f64().max(1.0));
    loop {
        next = tick(clock, next, opts.interval).await;
        if opts.max_evaluations.is_some_and(|m| evaluations >= m) {
            let d = last
                .clone()
                .unwrap_or_else(|| guard.observe(clock.now(), &Observation::default()));
            progress.finish();
            return Ok(RunOutcome {
                end: RunEnd::Stopped,
                last: d,
                rollback: None,
                steps,
                evaluations,
            });
        }
        let evaluation_started = clock.now();
        let obs = source.observe(evaluation_started).await;
        let mut d = guard.observe(clock.now(), &obs);
        evaluations += 1;
        progress.update(spec, &d);
        match d.verdict {
            Verdict::Rollback => {
                let decided = d.at;
                let vars = ctx.vars("rollback", &d);
                let action = opts
                    .rollback
                    .run_on(clock, &vars, rollback_timeout, opts.dry_run)
                    .await;
                progress.note(&rollback_note(&d, &action));
                ctx.event(EventKind::Rollback, Some(&d), Some(action.clone()))
                    .await?;
                ctx.event(EventKind::Finished, Some(&d), None).await?;
                progress.finish();
                let rollback = Some(RollbackTiming {
                    evaluation_started,
                    decided,
                    action,
                });
                return Ok(RunOutcome {
                    end: RunEnd::RolledBack,
                    last: d,
                    rollback,
                    steps,
                    evaluations,
                });
            }
            Verdict::Promote => {
                ctx.event(EventKind::Evaluation, Some(&d), None).await?;
                if let Some(set_weight) = &opts.set_weight {
                    let vars = ctx.vars("set-weight", &d);
                    let result = set_weight
                        .run_on(clock, &vars, opts.action_timeout, opts.dry_run)
                        .await;
                    ctx.event(EventKind::Step, Some(&d), Some(result.clone()))
                        .await?;
                    let ok = result.ok;
                    progress.note(&format!(
                        "step {}: weight {}% in {} — set-weight {}: {}",
                        vars.step,
                        vars.weight,
                        vars.environment,
                        if result.dry_run {
                            "(dry run, not run)"
                        } else if ok {
                            "ok"
                        } else {
                            "FAILED"
                        },
                        result.ran
                    ));
                    steps.push(result.clone());
                    if !ok {
                        d.verdict = Verdict::Rollback;
                        d.reasons = vec![Reason {
                            code: ReasonCode::SetWeightFailed,
                            trigger: None,
                            message: format!(
                                "set-weight to {}% failed: {}",
                                vars.weight, result.detail
                            ),
                            value: None,
                            limit: None,
                        }];
                        let decided = clock.now();
                        let vars = ctx.vars("rollback", &d);
                        let action = opts
                            .rollback
                            .run_on(clock, &vars, rollback_timeout, opts.dry_run)
                            .await;
                        progress.note(&rollback_note(&d, &action));
                        ctx.event(EventKind::Rollback, Some(&d), Some(action.clone()))
                            .await?;
                        ctx.event(EventKind::Finished, Some(&d), None).await?;
                        progress.finish();
                        let rollback = Some(RollbackTiming {
                            evaluation_started,
                            decided,
                            action,
                        });
                        return Ok(RunOutcome {
                            end: RunEnd::RolledBack,
                            last: d,
                            rollback,
                            steps,
                            evaluations,
                        });
                    }
                } else {
                    let vars = ctx.vars("set-weight", &d);
                    progress.note(&format!(
                        "step {}: weight {}% in {} (no --set-weight: recorded only)",
                        vars.step, vars.weight, vars.environment
                    ));
                    ctx.event(EventKind::Step, Some(&d), None).await?;
                }
            }
            Verdict::Complete | Verdict::Abort => {
                ctx.event(EventKind::Evaluation, Some(&d), None).await?;
                ctx.event(EventKind::Finished, Some(&d), None).await?;
                progress.note(
                    &d.reasons
                        .iter()
                        .map(|r| r.message.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                progress.finish();
                let end = if d.verdict == Verdict::Complete {
                    RunEnd::Completed
                } else {
                    RunEnd::Aborted
                };
                return Ok(RunOutcome {
                    end,
                    last: d,
                    rollback: None,
                    steps,
                    evaluations,
                });
            }
            Verdict::Hold => {
                if is_state_change(last.as_ref(), &d) {
                    ctx.event(EventKind::Evaluation, Some(&d), None).await?;
                }
            }
        }
        last = Some(d);
    }
}

/// Wait until `due` (at most one `interval`, so a clock stepped backwards cannot stall the loop),
/// and return when the tick after this one is due: `interval` after `due`, or after now when this
/// tick came late.
async fn tick<C: Clock>(clock: &C, due: Timestamp, interval: Duration) -> Timestamp {
    let now = clock.now();
    if due > now {
        let wait = Duration::try_from(due.duration_since(now)).unwrap_or_default();
        clock.sleep(wait.min(interval)).await;
    }
    let now = clock.now();
    let step = jiff::SignedDuration::try_from(interval).unwrap_or(jiff::SignedDuration::MAX);
    let base = if now > due { now } else { due };
    base.checked_add(step).unwrap_or(base)
}

fn rollback_note(d: &Decision, a: &ActionResult) -> String {
    format!(
        "ROLLBACK: {} — rollback action {} ({:.3}s){}",
        d.reasons
            .iter()
            .map(|r| r.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        if a.dry_run {
            "not run (dry run)"
        } else if a.ok {
            "ok"
        } else {
            "FAILED"
        },
        a.seconds,
        if a.ok {
            String::new()
        } else {
            format!(": {}", a.detail)
        }
    )
}

/// Fetch the triggers' series (and traffic) from Prometheus over `[from, to]` every `step`, for
/// `rollout replay --prometheus`. Keys are `trigger:NAME` and `traffic`.
pub async fn fetch_history(
    prom: &Prometheus,
    spec: &GuardSpec,
    selector: &str,
    from: Timestamp,
    to: Timestamp,
    step: jiff::SignedDuration,
) -> Result<crate::recorded::Recorded, crate::prom::PromError> {
    let source = PromSource::new(prom.clone(), spec, selector);
    let mut rec = crate::recorded::Recorded::default();
    for (name, q) in source.queries() {
        rec.insert(
            &format!("trigger:{name}"),
            prom.range(q, from, to, step).await?,
        );
    }
    rec.insert(
        "traffic",
        prom.range(source.traffic_query(), from, to, step).await?,
    );
    Ok(rec)
}
