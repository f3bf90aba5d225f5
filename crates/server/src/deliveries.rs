//! The delivery worker: processes stored webhook deliveries in the background, at least once.
//!
//! [`spawn`] starts one tokio task per server process (`changegate serve` does). It wakes when a
//! route stores a delivery and at least every [`WorkerConfig::poll`], leases due deliveries
//! ([`changegate_store::ServerStore::claim_deliveries`]: on PostgreSQL `FOR UPDATE SKIP LOCKED`,
//! so replicas share the work and never take the same row; on SQLite under `BEGIN IMMEDIATE`),
//! and processes each ([`process`]): the source's processor says what the delivery means for the
//! current world, the authority table is checked for the delivery's actor, and the world write,
//! its audit event and the row's `done` commit together, only while this worker still holds the
//! lease. So:
//!
//! - a crash before that commit leaves the row pending: once the lease expires, this or another
//!   process takes it again (at least once);
//! - a crash after it leaves nothing to redo, and a second processing finds the world already
//!   saying what the delivery says (the processors reconcile): no second write, no second event;
//! - a failed attempt (a policy that refuses the severity, a database error) is retried with
//!   exponential backoff ([`WorkerConfig::backoff`] doubling up to [`WorkerConfig::max_backoff`])
//!   and after [`WorkerConfig::max_attempts`] attempts marked `failed`, visible in
//!   `GET /api/v1/deliveries?status=failed` and `changegate deliveries list`, and retried by hand
//!   with `POST /api/v1/deliveries/{row}/retry`.
//!
//! **Keeping up with a burst.** The worker runs up to [`WorkerConfig::concurrency`] deliveries at
//! once, each its own task, topping the set up with one claim whenever half of it is free. A
//! claim never takes a delivery while an older one of its subject is pending (one pull request's
//! or incident's deliveries still apply in arrival order), so deliveries that run together are of
//! different subjects; the changes they touch are written by compare-and-swap, so two subjects
//! of one change (a pull request's reviews and a deployment of its head) cannot lose each other's
//! writes. A run of pushes queued for one pull request is coalesced
//! ([`webhooks::github::coalesce`]): the newest head is processed, once, the older deliveries
//! are recorded as superseded and done in the same transaction. And the server's observations are
//! cached ([`crate::observe::ObservationCache`]: a classification of a (base, head) pair of full
//! commit ids is read once, and a mirror that holds both commits is not fetched).

use std::time::Duration;

use changegate_audit::{AuditEvent, kinds};
use changegate_store::{Completion, Delivery, StoreError, WorldWrite};
use jiff::SignedDuration;
use serde_json::json;

use crate::AppState;
use crate::routes::webhooks;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's name in leases (unique per process).
    pub owner: String,
    /// Poll at least this often (a stored delivery wakes the worker at once besides).
    pub poll: Duration,
    /// A claimed delivery is this worker's for this long; after that another may take it.
    pub lease: SignedDuration,
    /// Deliveries claimed at once (at most).
    pub batch: i64,
    /// Deliveries processed at once (each its own task).
    pub concurrency: usize,
    /// Attempts before a delivery is `failed`.
    pub max_attempts: i64,
    /// Delay before the second attempt; doubled for each further one.
    pub backoff: SignedDuration,
    /// Longest delay between attempts.
    pub max_backoff: SignedDuration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let mut id = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        WorkerConfig {
            owner: format!("worker-{}-{}", std::process::id(), hex::encode(id)),
            poll: Duration::from_secs(2),
            lease: SignedDuration::from_secs(60),
            batch: 16,
            concurrency: 8,
            max_attempts: 8,
            backoff: SignedDuration::from_secs(2),
            max_backoff: SignedDuration::from_mins(10),
        }
    }
}

impl WorkerConfig {
    /// The delay after `attempts` failed attempts.
    pub fn delay(&self, attempts: i64) -> SignedDuration {
        let exp = attempts.clamp(1, 20) - 1;
        let secs = self.backoff.as_secs_f64() * 2f64.powi(exp as i32);
        SignedDuration::from_secs_f64(secs.min(self.max_backoff.as_secs_f64()))
    }
}

/// Start the worker: runs until the task is aborted (or the runtime stops; the deliveries it
/// was processing are then taken again once their lease expires).
pub fn spawn(state: AppState, cfg: WorkerConfig) -> tokio::task::JoinHandle<()> {
    changegate_store::spawn_background(async move {
        tracing::info!(owner = %cfg.owner, concurrency = cfg.concurrency, "delivery worker started");
        let width = cfg.concurrency.max(1);
        let mut running = tokio::task::JoinSet::new();
        loop {
            // Top up when half the slots are free: one claim serves several of them.
            let mut more = false;
            if running.len() <= width / 2 {
                let limit = ((width - running.len()) as i64).min(cfg.batch.max(1));
                match claim(&state, &cfg, limit).await {
                    Ok(claimed) => {
                        more = claimed.len() as i64 >= limit;
                        for d in claimed {
                            let (s, c) = (state.clone(), cfg.clone());
                            running.spawn(changegate_store::background(async move {
                                process(&s, &c, &d).await;
                            }));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "delivery worker: claiming failed"),
                }
            }
            if running.is_empty() {
                tokio::select! {
                    () = tokio::time::sleep(cfg.poll) => {}
                    () = state.webhooks.wake.notified() => {}
                }
                continue;
            }
            // A full claim with slots still free: there may be more due right now.
            if more && running.len() <= width / 2 {
                continue;
            }
            tokio::select! {
                _ = running.join_next() => {}
                () = tokio::time::sleep(cfg.poll) => {}
                () = state.webhooks.wake.notified() => {}
            }
        }
    })
}

async fn claim(
    state: &AppState,
    cfg: &WorkerConfig,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    state
        .db
        .claim_deliveries(&cfg.owner, state.now(), cfg.lease, limit)
        .await
}

/// Claim the due deliveries once (at most [`WorkerConfig::batch`]) and process them, at most
/// [`WorkerConfig::concurrency`] at once; how many were claimed.
pub async fn run_once(state: &AppState, cfg: &WorkerConfig) -> Result<usize, StoreError> {
    let claimed = claim(state, cfg, cfg.batch).await?;
    let n = claimed.len();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(cfg.concurrency.max(1)));
    let mut running = tokio::task::JoinSet::new();
    for d in claimed {
        let (s, c, gate) = (state.clone(), cfg.clone(), gate.clone());
        running.spawn(changegate_store::background(async move {
            let _slot = gate.acquire_owned().await;
            process(&s, &c, &d).await;
        }));
    }
    while running.join_next().await.is_some() {}
    Ok(n)
}

/// What processing one delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Done (with its world write, if any).
    Done,
    /// Failed this attempt; due again later.
    Retry(String),
    /// Failed for good.
    Failed(String),
    /// Another worker holds it now.
    LeaseLost,
}

/// Process one claimed delivery.
pub async fn process(state: &AppState, cfg: &WorkerConfig, d: &Delivery) -> Processed {
    let outcome = attempt(state, cfg, d).await;
    let result = match outcome {
        Ok(Completion::Done) => Processed::Done,
        Ok(Completion::LeaseLost) => Processed::LeaseLost,
        Ok(Completion::WorldConflict) => {
            Processed::Retry("the world kept changing concurrently".into())
        }
        Err(message) => {
            if d.attempts >= cfg.max_attempts {
                Processed::Failed(message)
            } else {
                Processed::Retry(message)
            }
        }
    };
    let now = state.now();
    let recorded = match &result {
        Processed::Retry(e) => {
            let at = now.checked_add(cfg.delay(d.attempts)).unwrap_or(now);
            state
                .db
                .fail_delivery(d.row, &cfg.owner, e, now, Some(at))
                .await
        }
        Processed::Failed(e) => {
            state
                .db
                .fail_delivery(d.row, &cfg.owner, e, now, None)
                .await
        }
        _ => Ok(true),
    };
    if let Err(e) = recorded {
        // The lease expires and the delivery is taken again.
        tracing::warn!(row = d.row, error = %e, "delivery worker: recording the attempt failed");
    }
    match &result {
        Processed::Done => {
            tracing::info!(row = d.row, source = %d.source, delivery_id = %d.delivery_id, "delivery processed")
        }
        Processed::Retry(e) | Processed::Failed(e) => {
            tracing::warn!(row = d.row, source = %d.source, attempts = d.attempts, error = %e, "delivery not processed")
        }
        Processed::LeaseLost => {
            tracing::info!(row = d.row, "delivery taken over by another worker")
        }
    }
    result
}

/// Plan and commit, retrying lost compare-and-swap races on the world. A GitHub delivery writes
/// changes itself ([`webhooks::github::process`], each write with its audit event, reconciled so a
/// second processing writes nothing), then its `done`.
async fn attempt(state: &AppState, cfg: &WorkerConfig, d: &Delivery) -> Result<Completion, String> {
    if d.source == changegate_store::DeliverySource::Github {
        use webhooks::github::{coalesce, process_coalesced, superseded_event, superseded_outcome};
        if let Some(run) = coalesce(state, d).await? {
            let (latest, between) = run.split_last().expect("coalesce returns a non-empty run");
            let superseded: Vec<&Delivery> = std::iter::once(d).chain(between).collect();
            let outcome = process_coalesced(state, latest, &superseded).await?;
            let event = superseded_event(latest, &superseded, &outcome);
            let mut rows: Vec<(i64, serde_json::Value)> = superseded
                .iter()
                .map(|x| (x.row, superseded_outcome(latest)))
                .collect();
            rows.push((latest.row, outcome));
            return state
                .db
                .complete_deliveries(&cfg.owner, d.row, &rows, state.now(), Some(event))
                .await
                .map_err(|e| e.to_string());
        }
        let outcome = webhooks::github::process(state, d).await?;
        return state
            .db
            .complete_delivery(d.row, &cfg.owner, &outcome, state.now(), None)
            .await
            .map_err(|e| e.to_string());
    }
    for _ in 0..16 {
        let now = state.now();
        let current = state.db.world().await.map_err(|e| e.to_string())?;
        let plan = webhooks::plan(state, d, &current.value, now).map_err(|e| e.to_string())?;
        let mut next = current.value.clone();
        let event = match &plan.op {
            None => None,
            Some(op) => {
                let authority = changegate_gate::authority::authorize_world_at(
                    &state.policy,
                    &current.value,
                    &plan.actor,
                    op,
                    now,
                )
                .map_err(|r| format!("{}: {r}", r.code))?;
                changegate_gate::ops::apply_world(&state.policy, &mut next, op, now)
                    .map_err(|e| format!("{}: {e}", e.code()))?;
                Some(
                    AuditEvent::new(kinds::INCIDENT, &plan.actor.person).details(json!({
                        "op": op,
                        "authority": authority,
                        "delivery": { "source": d.source, "id": d.delivery_id, "row": d.row },
                    })),
                )
            }
        };
        let mut outcome = plan.outcome.clone();
        if let Some(o) = outcome.as_object_mut() {
            o.insert("op".into(), json!(plan.op));
        }
        let write = event.map(|event| WorldWrite {
            expected: current.version,
            world: &next,
            event,
        });
        let done = state
            .db
            .complete_delivery(d.row, &cfg.owner, &outcome, now, write)
            .await
            .map_err(|e| e.to_string())?;
        if done != Completion::WorldConflict {
            return Ok(done);
        }
    }
    Ok(Completion::WorldConflict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = WorkerConfig::default();
        assert_eq!(cfg.delay(1), SignedDuration::from_secs(2));
        assert_eq!(cfg.delay(2), SignedDuration::from_secs(4));
        assert_eq!(cfg.delay(4), SignedDuration::from_secs(16));
        assert_eq!(cfg.delay(30), SignedDuration::from_mins(10));
    }
}
