//! `rollout rollback`: a manual rollback, only by someone who holds the category's rollback
//! authority (docs/authority.md).
//!
//! With `--server` and no `--rollback` action, the rollback is the server's (ADR 0018): the
//! command opens a rollback request for the change (`POST …/rollbacks` with the reason, the kind
//! and, for a database rollback, the downtime estimate) or, when one is pending, approves it in a
//! role the token's person holds (`POST …/rollbacks/{rid}/approvals`). It prints what is still
//! missing; once the category's authority is complete the server runs its rollback action and
//! marks the change rolled back. Exit 0 when the request was accepted (pending or done), 1 when the
//! server refuses it or the action failed ([`server_request`]).
//!
//! The older flow below (`--server` with `--rollback CMD`: the server checks, the CLI runs the
//! action) stays for single-person authorities.
//!
//! Who holds it is the server's to say, not the command line's: typing `--by sre-lead` proves
//! nothing. With `--server`, the server checks the token's identity against the authority table
//! (`POST …/ops?dry_run=true`: the category's `rollback_authority`, the incident commander during
//! an active incident, the on-call engineer where the policy says so); the action runs only when
//! it answers yes, and the rollback is then recorded on the server too. Offline, changegate
//! cannot check who is asking, so it claims no authority: it records the request as "authority
//! unverified", runs nothing and exits 1. `--by` names the roles the requester claims; they are
//! recorded, never trusted.

use std::time::Duration;

use anyhow::{Context, bail};
use changegate_policy::Level;
use changegate_rollout::action::{Action, ActionVars};
use changegate_rollout::engine::Verdict;
use changegate_rollout::recorder::{Event, EventKind, Recorder};
use changegate_rollout::{Reason, ReasonCode};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::record::{AuditedRecorder, RecordArgs};
use crate::common::{Format, Global, Outcome, policy};

/// `rollout rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// Change id.
    #[arg(long)]
    pub change: String,
    /// Why (recorded; required to open a rollback request).
    #[arg(long)]
    pub reason: Option<String>,
    /// With --server: `application` (default) or `database` (the DBA Lead approves and executes).
    #[arg(long, value_parser = ["application", "database"], default_value = "application")]
    pub kind: String,
    /// With --server, database rollbacks: the downtime estimate (`3m`; above the policy's
    /// max_downtime more approvers are needed).
    #[arg(long, value_name = "DURATION")]
    pub downtime: Option<String>,
    /// With --server: approve in this role (default: the first role still missing that the
    /// token's person holds).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Roles the requester claims (repeat, or comma-separate): recorded only, never trusted; the
    /// server checks the token's own authority.
    #[arg(long = "by", value_delimiter = ',', value_name = "ROLE")]
    pub by: Vec<String>,
    /// The change's category level (offline; with --server the server's record of the change
    /// decides).
    #[arg(long)]
    pub category: Option<Level>,
    /// An incident is active (recorded only; the server knows its incidents).
    #[arg(long)]
    pub active_incident: bool,
    /// Rollback action to run when allowed: a command or webhook URL.
    #[arg(long = "rollback", value_name = "CMD|URL")]
    pub action: Option<String>,
    /// Check and record, but do not run the action (nor record the rollback on the server).
    #[arg(long)]
    pub dry_run: bool,
    /// The changegate server that checks the rollback authority of the token's person.
    #[arg(long, env = "CHANGEGATE_SERVER")]
    pub server: Option<String>,
    /// API token (from `changegate token create`), with --server.
    #[arg(long, env = "CHANGEGATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub log: RecordArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// What the server said.
struct Answer {
    allowed: bool,
    category: Level,
    message: String,
}

struct Server {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Server {
    fn new(base: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let token = token.context(
            "--server needs an API token: pass --token or set CHANGEGATE_TOKEN (the server checks that token's rollback authority)",
        )?;
        Ok(Server {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        })
    }

    /// (status, body); an unreachable server is an error.
    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    fn refusal(status: u16, body: &Value) -> String {
        format!(
            "server answered {status}: [{}] {}",
            body["code"].as_str().unwrap_or("error"),
            body["message"].as_str().unwrap_or("request failed")
        )
    }

    /// Record (or, with `dry_run`, only check) the `roll-back` transition as the token's person.
    async fn roll_back(&self, change: &str, dry_run: bool) -> anyhow::Result<(u16, Value)> {
        let url = format!(
            "{}/api/v1/changes/{change}/ops?dry_run={dry_run}",
            self.base
        );
        self.send(
            self.http
                .post(url)
                .json(&json!({"op": "transition", "event": "roll-back"})),
        )
        .await
    }

    /// Ask whether the token's person may roll the change back now.
    async fn ask(&self, change: &str) -> anyhow::Result<Answer> {
        let (status, body) = self
            .send(
                self.http
                    .get(format!("{}/api/v1/changes/{change}", self.base)),
            )
            .await?;
        if status >= 500 || status == 401 || status == 404 {
            bail!("{}", Self::refusal(status, &body));
        }
        let category = body["change"]["classification"]["category"]
            .as_u64()
            .and_then(|c| Level::try_from(c).ok())
            .context("the server's change has no category")?;
        let (status, body) = self.roll_back(change, true).await?;
        if status >= 500 {
            bail!("{}", Self::refusal(status, &body));
        }
        let allowed = (200..300).contains(&status);
        let message = if allowed {
            format!(
                "the server at {} granted the token's person the rollback authority",
                self.base
            )
        } else {
            Self::refusal(status, &body)
        };
        Ok(Answer {
            allowed,
            category,
            message,
        })
    }
}

pub(super) async fn run(global: &Global, a: RollbackArgs) -> anyhow::Result<Outcome> {
    if let (Some(url), None, false) = (&a.server, &a.action, a.dry_run) {
        let server = Server::new(url, a.token.as_deref())?;
        return server_request(&server, &a).await;
    }
    let policy = policy(global)?;
    let server = match &a.server {
        Some(url) => Some(Server::new(url, a.token.as_deref())?),
        None => None,
    };
    let reason = a
        .reason
        .clone()
        .context("--reason is required (why the change is rolled back)")?;
    let answer = match &server {
        Some(s) => s.ask(&a.change).await?,
        None => Answer {
            allowed: false,
            category: a.category.context(
                "--category is required without --server (with --server the server knows the change)",
            )?,
            message: format!(
                "authority unverified: offline, changegate cannot check who holds the rollback authority{}; nothing was run. Run with --server URL --token TOKEN so the server checks the token's authority",
                if a.by.is_empty() {
                    String::new()
                } else {
                    format!(" (requested as {})", a.by.join(", "))
                }
            ),
        },
    };
    let category = answer.category;
    let plan = policy
        .category(category)
        .map(|(_, c)| c.rollout_plan.clone())
        .unwrap_or_default();
    let log = a.log.path();
    let mut recorder = AuditedRecorder::open(&a.log, &policy).await?;
    let mut reasons = vec![Reason {
        code: if answer.allowed {
            ReasonCode::AuthorityGranted
        } else {
            ReasonCode::AuthorityDenied
        },
        trigger: None,
        message: answer.message.clone(),
        value: None,
        limit: None,
    }];
    reasons.push(Reason {
        code: ReasonCode::ManualRollback,
        trigger: None,
        message: reason.clone(),
        value: None,
        limit: None,
    });
    let action = match (&a.action, answer.allowed) {
        (Some(cmd), true) => {
            let vars = ActionVars {
                action: "rollback".into(),
                plan: plan.clone(),
                change: a.change.clone(),
                reasons: reasons
                    .iter()
                    .map(|r| format!("{}: {}", r.code, r.message))
                    .collect(),
                ..Default::default()
            };
            let timeout =
                Duration::from_secs_f64(policy.rollback.deadline.get().as_secs_f64().max(1.0));
            Some(Action::parse(cmd).run(&vars, timeout, a.dry_run).await)
        }
        _ => None,
    };
    let authority = match (&server, answer.allowed) {
        (None, _) => "unverified",
        (Some(_), true) => "granted-by-server",
        (Some(_), false) => "refused-by-server",
    };
    let event = Event {
        t: Timestamp::now(),
        kind: EventKind::ManualRollback,
        change: Some(a.change.clone()),
        plan,
        category,
        step: None,
        weight: None,
        verdict: Some(if answer.allowed {
            Verdict::Rollback
        } else {
            Verdict::Hold
        }),
        reasons: reasons.clone(),
        triggers: Vec::new(),
        action: action.clone(),
        detail: json!({
            "by": a.by, "allowed": answer.allowed, "authority": authority,
            "server": a.server, "active_incident": a.active_incident,
        }),
        dry_run: a.dry_run,
    };
    recorder.record(&event).await?;
    let action_failed = action.as_ref().is_some_and(|r| !r.ok);
    // The rollback happened: the server records it (and checks the authority again).
    if let (Some(s), true, false, false) = (&server, answer.allowed, a.dry_run, action_failed) {
        let (status, body) = s.roll_back(&a.change, false).await?;
        if !(200..300).contains(&status) {
            bail!(
                "the rollback ran but the server did not record it: {}",
                Server::refusal(status, &body)
            );
        }
    }
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "change": a.change, "allowed": answer.allowed, "authority": authority,
                "reasons": reasons, "action": action, "log": log,
            }))?
        );
    } else {
        for r in &reasons {
            println!("{} {}", r.code, r.message);
        }
        match &action {
            Some(res) => println!(
                "rollback action {}: {} ({})",
                if res.ok { "ran" } else { "FAILED" },
                res.ran,
                res.detail
            ),
            None if answer.allowed => {
                println!("allowed; no --rollback action given, recorded only")
            }
            None => println!("denied: nothing was run"),
        }
        println!("recorded in {}", log.display());
    }
    if !answer.allowed {
        eprintln!("rollback refused: {}", answer.message);
    }
    if action_failed {
        bail!("the rollback action failed");
    }
    Ok(if answer.allowed {
        Outcome::Ok
    } else {
        Outcome::Denied
    })
}

/// The server-run rollback: open a request for the change, or approve the pending one; print what
/// the server answered and what is still missing. 0: accepted (pending or done); 1: refused by the
/// server (403, 409, 422) or the action failed.
async fn server_request(server: &Server, a: &RollbackArgs) -> anyhow::Result<Outcome> {
    let base = format!("{}/api/v1/changes/{}/rollbacks", server.base, a.change);
    let (status, list) = server.send(server.http.get(&base)).await?;
    if !(200..300).contains(&status) {
        bail!("{}", Server::refusal(status, &list));
    }
    let pending = list["rollbacks"].as_array().and_then(|rs| {
        rs.iter()
            .find(|r| r["request"]["status"] == "pending")
            .and_then(|r| r["request"]["id"].as_str().map(str::to_string))
    });
    let (action, (status, body)) = match &pending {
        Some(rid) => {
            let mut b = json!({});
            if let Some(r) = &a.role {
                b["role"] = json!(r);
            }
            (
                format!("approved rollback request {rid}"),
                server
                    .send(server.http.post(format!("{base}/{rid}/approvals")).json(&b))
                    .await?,
            )
        }
        None => {
            let reason = a.reason.clone().context(
                "no rollback request is pending for this change: --reason is required to open one",
            )?;
            let mut b = json!({"reason": reason, "kind": a.kind});
            if let Some(d) = &a.downtime {
                b["downtime"] = json!(d);
            }
            if let Some(r) = &a.role {
                b["role"] = json!(r);
            }
            (
                "opened a rollback request".to_string(),
                server.send(server.http.post(&base).json(&b)).await?,
            )
        }
    };
    if matches!(status, 403 | 409 | 422) {
        eprintln!("rollback refused: {}", Server::refusal(status, &body));
        if a.format == Format::Json {
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        return Ok(Outcome::Denied);
    }
    if !(200..300).contains(&status) {
        bail!("{}", Server::refusal(status, &body));
    }
    let req = &body["request"];
    let state = req["status"].as_str().unwrap_or("unknown");
    if a.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        println!(
            "{action} {} for {} ({} rollback): {state}",
            req["id"].as_str().unwrap_or("?"),
            a.change,
            req["kind"].as_str().unwrap_or("application")
        );
        for ap in req["approvals"].as_array().into_iter().flatten() {
            println!(
                "  approved by {} as {}",
                ap["person"].as_str().unwrap_or("?"),
                ap["role"].as_str().unwrap_or("?")
            );
        }
        if state == "pending" {
            let sets: Vec<String> = body["missing"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    s.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" + ")
                })
                .collect();
            println!("still missing: {}", sets.join(", or: "));
        }
        if let Some(ex) = req.get("execution").filter(|e| !e.is_null()) {
            println!(
                "rollback action {}: {} in {:.3}s ({})",
                if ex["ok"] == true { "ran" } else { "FAILED" },
                ex["ran"].as_str().unwrap_or(""),
                ex["seconds"].as_f64().unwrap_or(0.0),
                ex["detail"].as_str().unwrap_or("")
            );
        }
        println!(
            "change {} is {}",
            a.change,
            body["change_status"].as_str().unwrap_or("?")
        );
    }
    if state == "failed" {
        eprintln!("the rollback action failed; the change is not rolled back");
        return Ok(Outcome::Denied);
    }
    Ok(Outcome::Ok)
}
