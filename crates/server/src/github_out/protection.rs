//! Deployment protection rules: changegate as a GitHub App that environments name as a custom
//! protection rule. For each `deployment_protection_rule` delivery (action `requested`) the
//! request is stored (once per delivery GUID) and then evaluated by the scheduler
//! ([`run_once`]), at once and again whenever it is due:
//!
//! - the change whose head (or recorded merge commit) is the deployment's SHA, in the
//!   deployment's repository, is decided at the server's now;
//! - allowed → `approved`, with a comment listing what held; no change, or a denial that is not
//!   only time → `rejected`, with a comment giving every denying reason;
//! - denied only by time (window closed, freeze, lead time: [`super::render::time_only`]) → a
//!   status report (a review with a comment and no state, posted once per distinct content) and
//!   the row stays pending, due at the decision's next slot (else after `recheck`): when the slot
//!   opens the scheduler approves it. A change to the change (an approval) makes it due at once.
//! - a failed callback (no answer, 5xx, rate limit) is retried with exponential backoff up to
//!   `max_attempts`, then the row is `failed`;
//! - the sweeper: a request left waiting longer than `max_wait` is rejected (GitHub fails a
//!   protection rule nobody answers within 30 days).
//!
//! The answer goes only to the configured API's review endpoint of the run the callback URL
//! names: a `deployment_callback_url` elsewhere is refused, so the server's token never leaves
//! for a URL a payload chose. Every answer is recorded in the audit log as a gate decision.

use changegate_audit::{AuditEvent, kinds};
use changegate_gate::{ChangeState, Decision};
use changegate_store::{GithubGate, GithubGateUpdate, NewGithubGate};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::app::{OutError, Outgoing};
use super::render::{truncate, waits_only_for_time};
use crate::AppState;
use crate::github_runs::repository_slug;

/// A parsed `deployment_protection_rule` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `owner/name`.
    pub repository: String,
    /// The environment.
    pub environment: String,
    /// The deployment's commit.
    pub sha: String,
    /// The run the callback names.
    pub run_id: u64,
    /// The installation that received it.
    pub installation: Option<u64>,
}

/// Read a `deployment_protection_rule` payload; `Ok(None)` for another action. The callback URL
/// must be `{api}/repos/{owner}/{repo}/actions/runs/{id}/deployment_protection_rule` of the
/// payload's own repository.
pub fn parse(api: &str, payload: &Value) -> Result<Option<Request>, String> {
    if payload["action"] != "requested" {
        return Ok(None);
    }
    let field = |p: &str| -> Result<String, String> {
        payload
            .pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "the payload has no `{}`",
                    p.trim_start_matches('/').replace('/', ".")
                )
            })
    };
    let environment = field("/environment")?;
    let repository = field("/repository/full_name")?;
    // `sha` is always there ("populated from the check suite, regardless of whether a
    // deployment is created"); `deployment.sha` when a deployment was.
    let sha = field("/sha").or_else(|_| field("/deployment/sha"))?;
    let callback = field("/deployment_callback_url")?;
    if !sha.bytes().all(|b| b.is_ascii_hexdigit()) || !(7..=64).contains(&sha.len()) {
        return Err("`deployment.sha` is not a commit id".into());
    }
    let prefix = format!("{}/repos/", api.trim_end_matches('/'));
    let rest = callback.strip_prefix(&prefix).ok_or_else(|| {
        "`deployment_callback_url` is not on the GitHub API this server talks to (serve --github-api); it is not followed".to_string()
    })?;
    let parts: Vec<&str> = rest.split('/').collect();
    let ok_shape = parts.len() == 6
        && parts[2] == "actions"
        && parts[3] == "runs"
        && parts[5] == "deployment_protection_rule";
    let run_id = ok_shape
        .then(|| parts[4].parse::<u64>().ok())
        .flatten()
        .filter(|&n| n > 0)
        .ok_or("`deployment_callback_url` is not a run's deployment_protection_rule endpoint")?;
    if !format!("{}/{}", parts[0], parts[1]).eq_ignore_ascii_case(&repository) {
        return Err("`deployment_callback_url` names another repository than the payload's".into());
    }
    Ok(Some(Request {
        repository,
        environment,
        sha,
        run_id,
        installation: payload.pointer("/installation/id").and_then(Value::as_u64),
    }))
}

/// Store the request of delivery `delivery` and evaluate what is due. `Err` only when it could
/// not be stored (the webhook worker retries); a payload that cannot be answered is logged and
/// dropped.
pub async fn requested(state: &AppState, delivery: &str, payload: &Value) -> Result<(), String> {
    let Some(out) = state.github_out.clone() else {
        return Ok(());
    };
    let req = match parse(&out.api, payload) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(()),
        Err(why) => {
            tracing::warn!(delivery, %why, "deployment protection rule request not answered");
            return Ok(());
        }
    };
    let now = state.now();
    state
        .db
        .insert_github_gate(NewGithubGate {
            delivery_id: delivery,
            repository: &req.repository,
            environment: &req.environment,
            sha: &req.sha,
            run_id: req.run_id as i64,
            installation_id: req.installation.map(|i| i as i64),
            at: now,
        })
        .await
        .map_err(|e| format!("storing the protection rule request: {e}"))?;
    // Answer now if it can be; the scheduler does the rest.
    if let Err(e) = run_once(state).await {
        tracing::warn!(error = %e, "protection rule scheduler: claiming failed");
    }
    Ok(())
}

/// The change a deployment of `sha` in `repository` is of: its head, or the merge commit
/// recorded for its pull request; the newest such change. An indexed lookup by commit
/// ([`changegate_store::ServerStore::changes_at_commit`]), never a scan of every change.
pub async fn change_for(
    state: &AppState,
    repository: &str,
    sha: &str,
) -> Result<Option<ChangeState>, changegate_store::StoreError> {
    let want = repository.to_ascii_lowercase();
    let found = state
        .db
        .changes_at_commit(sha, true)
        .await?
        .into_iter()
        .map(|c| c.value)
        .find(|c| {
            repository_slug(&c.change.repository).as_deref() == Some(want.as_str())
                || c.pull_request
                    .as_ref()
                    .is_some_and(|pr| pr.repository.eq_ignore_ascii_case(repository))
        });
    Ok(found)
}

/// What the gate says about a request now.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Approve, with this comment.
    Approve(String),
    /// Reject, with this comment.
    Reject(String),
    /// Only time stands in the way: post this status report, look again at `until`.
    Wait {
        /// The report.
        report: String,
        /// When to look again.
        until: Timestamp,
    },
}

fn reasons_text(d: &Decision, denying: bool) -> String {
    let mut s = String::new();
    for r in d.reasons.iter().filter(|r| r.denies == denying) {
        s.push_str(&format!("- {}: {}\n", r.code, r.message));
    }
    s
}

/// Decide `gate` at `now`.
pub async fn evaluate(
    state: &AppState,
    out: &Outgoing,
    gate: &GithubGate,
    now: Timestamp,
) -> Result<(Verdict, Option<String>), changegate_store::StoreError> {
    let Some(change) = change_for(state, &gate.repository, &gate.sha).await? else {
        return Ok((
            Verdict::Reject(format!(
                "changegate: no change request of {} has commit {} as its head, so nothing approves deploying it to {}. Open the pull request (or `changegate change create`) first.",
                gate.repository, gate.sha, gate.environment
            )),
            None,
        ));
    };
    let id = change.change.id.clone();
    let link = out
        .change_link(&id)
        .map(|l| format!("\nDetails: {l}"))
        .unwrap_or_default();
    if now.duration_since(gate.created_at) > out.max_wait {
        return Ok((
            Verdict::Reject(format!(
                "changegate: change {id} waited for its window since {} — longer than the {} this server waits — so the deployment to {} is rejected; start it again.{link}",
                gate.created_at, out.max_wait, gate.environment
            )),
            Some(id),
        ));
    }
    let world = state.db.world().await?.value;
    let d = changegate_gate::decide(&state.policy, &change, &world, now);
    let verdict = if d.allowed {
        let held = reasons_text(&d, false);
        Verdict::Approve(format!(
            "changegate: change {id} may deploy {} to {} at {now}.\n{held}{link}",
            gate.sha, gate.environment
        ))
    } else if waits_only_for_time(&d) {
        // The next slot, else a re-check; never later than when the sweeper gives up on it.
        let sweep_at = gate
            .created_at
            .checked_add(out.max_wait)
            .and_then(|t| t.checked_add(jiff::SignedDuration::from_secs(1)))
            .unwrap_or(now);
        let until = d
            .next_slot
            .filter(|t| *t > now)
            .unwrap_or_else(|| now.checked_add(out.recheck).unwrap_or(now))
            .min(sweep_at);
        let slot = d
            .next_slot
            .map(|t| format!("the next slot opens at {t}; changegate approves then"))
            .unwrap_or_else(|| format!("changegate looks again at {until}"));
        Verdict::Wait {
            report: format!(
                "changegate: change {id} is waiting to deploy to {}: {slot}.\n{}{link}",
                gate.environment,
                reasons_text(&d, true)
            ),
            until,
        }
    } else {
        Verdict::Reject(format!(
            "changegate: change {id} may not deploy to {} at {now}:\n{}{link}",
            gate.environment,
            reasons_text(&d, true)
        ))
    };
    Ok((verdict, Some(id)))
}

/// Post a review (`state` approved/rejected, or `None`: a status report) for `gate`.
async fn review(
    state: &AppState,
    out: &Outgoing,
    gate: &GithubGate,
    decision: Option<&str>,
    comment: &str,
) -> Result<(), OutError> {
    let mut body = json!({
        "environment_name": gate.environment,
        "comment": truncate(comment, 60_000, None),
    });
    if let Some(s) = decision {
        body["state"] = json!(s);
    }
    out.call(
        state.now(),
        &gate.repository,
        gate.installation_id.map(|i| i as u64),
        reqwest::Method::POST,
        &format!(
            "/repos/{}/actions/runs/{}/deployment_protection_rule",
            gate.repository, gate.run_id
        ),
        Some(&body),
        "the deployment protection rule review",
    )
    .await
    .map(|_| ())
}

/// Evaluate and answer one leased request.
async fn process(state: &AppState, out: &Outgoing, gate: &GithubGate) -> Result<(), String> {
    let owner = out.worker.owner.as_str();
    let now = state.now();
    let (verdict, change_id) = evaluate(state, out, gate, now)
        .await
        .map_err(|e| e.to_string())?;
    let (decision, comment, wait_until) = match &verdict {
        Verdict::Approve(c) => (Some("approved"), c.clone(), None),
        Verdict::Reject(c) => (Some("rejected"), c.clone(), None),
        Verdict::Wait { report, until } => (None, report.clone(), Some(*until)),
    };
    let digest = hex::encode(Sha256::digest(comment.as_bytes()));
    let already_reported = wait_until.is_some() && gate.report_digest == digest;
    let sent = if already_reported {
        Ok(())
    } else {
        review(state, out, gate, decision, &comment).await
    };
    let outcome = json!({ "state": decision.unwrap_or("waiting"), "comment": comment });
    let error_text = sent.as_ref().err().map(ToString::to_string);
    let update = match &sent {
        Ok(()) => match wait_until {
            Some(until) => GithubGateUpdate {
                status: "pending",
                due_at: until,
                change_id: change_id.as_deref(),
                report_digest: &digest,
                attempts: 0,
                last_error: None,
                answered_at: None,
                outcome: Some(&outcome),
            },
            None => GithubGateUpdate {
                status: decision.unwrap_or("approved"),
                due_at: now,
                change_id: change_id.as_deref(),
                report_digest: &gate.report_digest,
                attempts: 0,
                last_error: None,
                answered_at: Some(now),
                outcome: Some(&outcome),
            },
        },
        Err(e) => {
            let attempts = gate.attempts + 1;
            let give_up = !e.retryable() || attempts >= out.worker.max_attempts;
            GithubGateUpdate {
                status: if give_up { "failed" } else { "pending" },
                due_at: now.checked_add(out.worker.delay(attempts)).unwrap_or(now),
                change_id: change_id.as_deref(),
                report_digest: &gate.report_digest,
                attempts,
                last_error: error_text.as_deref(),
                answered_at: None,
                outcome: None,
            }
        }
    };
    let kept = state
        .db
        .update_github_gate(gate.row, owner, &update)
        .await
        .map_err(|e| e.to_string())?;
    if !kept {
        tracing::info!(
            row = gate.row,
            "protection rule request taken over by another replica"
        );
    }
    if sent.is_ok() && !already_reported {
        let event = AuditEvent::new(kinds::GATE_DECISION, "github")
            .change(change_id.clone().unwrap_or_default())
            .what("commit-sha", gate.sha.clone())
            .outcome(
                "result",
                match decision {
                    Some("approved") => "allowed",
                    Some(_) => "denied",
                    None => "waiting",
                },
            )
            .details(json!({
                "via": "github-deployment-protection-rule",
                "repository": gate.repository,
                "environment": gate.environment,
                "run_id": gate.run_id,
                "delivery": gate.delivery_id,
                "answer": decision.unwrap_or("status-report"),
                "comment": comment,
            }));
        if let Err(e) = state.db.record(event).await {
            tracing::warn!(error = %e, "protection rule answer not recorded in the audit log");
        }
    }
    match sent {
        Ok(()) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Claim the due requests once and answer them; how many were claimed.
pub async fn run_once(state: &AppState) -> Result<usize, changegate_store::StoreError> {
    let Some(out) = state.github_out.clone() else {
        return Ok(0);
    };
    let cfg = &out.worker;
    let claimed = state
        .db
        .claim_github_gates(&cfg.owner, state.now(), cfg.lease, cfg.batch)
        .await?;
    let n = claimed.len();
    for g in claimed {
        if let Err(e) = process(state, &out, &g).await {
            tracing::warn!(row = g.row, repository = %g.repository, error = %e, "protection rule answer failed");
        }
    }
    Ok(n)
}

/// The scheduler: answers due requests until aborted, at least every `poll`.
pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let out = state.github_out.clone()?;
    Some(changegate_store::spawn_background(async move {
        tracing::info!(owner = %out.worker.owner, "deployment protection rule scheduler started");
        loop {
            match run_once(&state).await {
                Ok(n) if n as i64 >= out.worker.batch => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "protection rule scheduler: claiming failed"),
            }
            tokio::time::sleep(out.worker.poll).await;
        }
    }))
}
