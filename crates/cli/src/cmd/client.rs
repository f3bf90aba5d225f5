//! CLI commands that act as a client of a changegate server: `change …`, `incident …`, and
//! `gate --change ID`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use askama::Template;
use serde_json::{Value, json};

use crate::common::{Format, Outcome};

/// How to reach the server.
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// Server URL.
    #[arg(
        long,
        env = "CHANGEGATE_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// API token (from `changegate token create`).
    #[arg(long, env = "CHANGEGATE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// `changegate change …`.
#[derive(Debug, clap::Subcommand)]
pub enum ChangeCmd {
    /// Record a change request: from a classification (`changegate classify --format json`), or
    /// from a pull request (`--pr owner/repo#42`; the server reads GitHub and classifies).
    Create {
        /// Repository (URL or owner/name; a path under the server's --repo-root to let it classify).
        #[arg(long, required_unless_present = "pr")]
        repository: Option<String>,
        /// Base commit.
        #[arg(long, required_unless_present = "pr")]
        base: Option<String>,
        /// Head commit.
        #[arg(long, required_unless_present = "pr")]
        head: Option<String>,
        /// A pull request, `owner/repo#42` or its URL.
        #[arg(long)]
        pr: Option<String>,
        /// Classification JSON file (`-` for stdin): the classifier's output, or {category, facets,
        /// required_roles}; accepted only from a token allowed to classify. Without it the server
        /// classifies (needs --repo-root or --pr).
        #[arg(long, value_name = "FILE")]
        classification: Option<PathBuf>,
        /// Title.
        #[arg(long, default_value = "")]
        title: String,
        /// Pull request link (without --pr).
        #[arg(long)]
        pr_link: Option<String>,
        /// Ticket.
        #[arg(long)]
        ticket: Option<String>,
        /// Authors to add to those the server reads from git (default, when it reads none: the
        /// token's person).
        #[arg(long = "author")]
        authors: Vec<String>,
        /// Submit for review right away.
        #[arg(long)]
        submit: bool,
        /// Make a retried create return the first result.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show a change request.
    Show {
        /// Change id.
        id: String,
    },
    /// List change requests.
    List,
    /// Approve a change in a role, as the token's person.
    Approve {
        /// Change id.
        id: String,
        /// Role.
        #[arg(long)]
        role: String,
    },
    /// Attest a pre-deployment checklist item.
    Attest {
        /// Change id.
        id: String,
        /// Item id (see `changegate policy explain`).
        #[arg(long)]
        item: String,
        /// Evidence link.
        #[arg(long)]
        evidence: Option<String>,
    },
    /// Apply a life-cycle event: submit, approve, schedule, start, complete, roll-back, reopen, cancel.
    Transition {
        /// Change id.
        id: String,
        /// Event.
        event: String,
    },
    /// Apply any gate command given as JSON, e.g. '{"op":"publish","item":"rfc","link":"https://…"}'.
    Op {
        /// Change id.
        id: String,
        /// The command.
        json: String,
    },
}

/// `changegate incident …`.
#[derive(Debug, clap::Subcommand)]
pub enum IncidentCmd {
    /// Open an incident.
    Open {
        /// Id (e.g. the PagerDuty incident number).
        #[arg(long)]
        id: String,
        /// Severity P0 … P4.
        #[arg(long)]
        severity: String,
        /// Title.
        #[arg(long, default_value = "")]
        title: String,
        /// Incident commander.
        #[arg(long)]
        commander: Option<String>,
        /// Kind, one of the policy's `emergency.incident_kinds` (outage, security, data-loss,
        /// cascading-failure, …); it decides, with the severity, whether an emergency may be
        /// declared against the incident.
        #[arg(long)]
        kind: Option<String>,
        /// CVSS base score of the vulnerability (security incidents), 0.0-10.0.
        #[arg(long)]
        cvss: Option<f64>,
    },
    /// Resolve an incident.
    Resolve {
        /// Id.
        id: String,
    },
    /// List incidents.
    List,
}

/// `changegate deliveries …`: incoming webhook deliveries (admin token).
#[derive(Debug, clap::Subcommand)]
pub enum DeliveriesCmd {
    /// List deliveries, newest first: source, delivery id, subject, status, attempts, last error,
    /// outcome.
    List {
        /// Only this status: pending, done, failed.
        #[arg(long)]
        status: Option<String>,
        /// Only this source: pagerduty, alertmanager, github.
        #[arg(long)]
        source: Option<String>,
        /// At most this many (default 100).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Make a failed delivery pending again.
    Retry {
        /// The delivery's row id (from `deliveries list`).
        row: i64,
    },
}

/// `?k=v&…` of the parameters that are set (values URL-encoded), or empty when none is.
fn query_string(params: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", urlencode(v))))
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// Run a `deliveries` command.
pub async fn deliveries(conn: &Conn, cmd: DeliveriesCmd) -> anyhow::Result<Outcome> {
    refusal_is_denial(deliveries_cmd(conn, cmd).await)
}

async fn deliveries_cmd(conn: &Conn, cmd: DeliveriesCmd) -> anyhow::Result<Outcome> {
    let c = Client::new(conn)?;
    let v = match cmd {
        DeliveriesCmd::List {
            status,
            source,
            limit,
        } => {
            let query = query_string(&[
                ("status", status),
                ("source", source),
                ("limit", limit.map(|n| n.to_string())),
            ]);
            c.get(&format!("/api/v1/deliveries{query}")).await?
        }
        DeliveriesCmd::Retry { row } => {
            c.post(&format!("/api/v1/deliveries/{row}/retry"), &json!({}))
                .await?
        }
    };
    print(&v)?;
    Ok(Outcome::Ok)
}

/// `changegate notify …`: the notification outbox (admin token).
#[derive(Debug, clap::Subcommand)]
pub enum NotifyCmd {
    /// List notifications, newest first: channel, event, subject, dedupe key, status, attempts,
    /// last error, due time, receipt.
    List {
        /// Only this status: pending, sent, dead, cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only this subject: a change id, `incident:ID`, `announcement:ID`.
        #[arg(long)]
        subject: Option<String>,
        /// At most this many (default 100).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Make a dead notification pending again.
    Retry {
        /// The notification's id (from `notify list`).
        id: i64,
    },
}

/// Run a `notify` command.
pub async fn notify(conn: &Conn, cmd: NotifyCmd) -> anyhow::Result<Outcome> {
    refusal_is_denial(notify_cmd(conn, cmd).await)
}

async fn notify_cmd(conn: &Conn, cmd: NotifyCmd) -> anyhow::Result<Outcome> {
    let c = Client::new(conn)?;
    let v = match cmd {
        NotifyCmd::List {
            status,
            subject,
            limit,
        } => {
            let query = query_string(&[
                ("status", status),
                ("subject", subject),
                ("limit", limit.map(|n| n.to_string())),
            ]);
            c.get(&format!("/api/v1/notifications{query}")).await?
        }
        NotifyCmd::Retry { id } => {
            c.post(&format!("/api/v1/notifications/{id}/retry"), &json!({}))
                .await?
        }
    };
    print(&v)?;
    Ok(Outcome::Ok)
}

struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    fn new(conn: &Conn) -> anyhow::Result<Self> {
        let token = conn
            .token
            .clone()
            .context("no API token: pass --token or set CHANGEGATE_TOKEN (create one with `changegate token create`)")?;
        Ok(Client {
            base: conn.server.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let code = body["code"].as_str().unwrap_or("error");
        let message = body["message"].as_str().unwrap_or("request failed");
        let location = body["location"]
            .as_str()
            .map(|l| format!(" (at {l})"))
            .unwrap_or_default();
        let text = format!("server answered {status}: [{code}] {message}{location}");
        if is_policy_refusal(status) {
            return Err(Refused(text).into());
        }
        bail!(text)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }
}

/// The server refused the request on the policy's grounds: the caller lacks the authority (403),
/// the request conflicts with the recorded state (409), or a rule of the policy refuses it (422).
/// The command exits 1, like a denied gate; every other failure (bad input, 400/401/404, an
/// unreachable server) stays an error, exit 2.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Refused {}

/// 403, 409 and 422 are the server's policy refusals.
fn is_policy_refusal(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 403 | 409 | 422)
}

/// A [`Refused`] request becomes [`Outcome::Denied`] (exit 1), its message printed as an error.
fn refusal_is_denial(r: anyhow::Result<Outcome>) -> anyhow::Result<Outcome> {
    match r {
        Err(e) if e.downcast_ref::<Refused>().is_some() => {
            crate::common::print_error(&e);
            Ok(Outcome::Denied)
        }
        other => other,
    }
}

fn print(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Turn the classifier's JSON output (or a plain {category, facets, required_roles}) into the
/// server's classification object.
fn classification_from(v: Value) -> anyhow::Result<Value> {
    let category = v["category"]
        .as_u64()
        .or_else(|| v["category"]["level"].as_u64())
        .context("classification JSON has no `category` (a level, or {level, …} as `changegate classify` prints)")?;
    let facets: Vec<Value> = v["facets"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| json!({ "kind": f["kind"], "roles": f.get("roles").cloned().unwrap_or(json!([])), "category": f["category"] }))
                .collect()
        })
        .unwrap_or_default();
    let roles = v
        .get("required_roles")
        .or_else(|| v.get("roles"))
        .cloned()
        .unwrap_or(json!([]));
    let roles: Vec<Value> = roles
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r.get("role").cloned().unwrap_or_else(|| r.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({ "category": category, "facets": facets, "required_roles": roles }))
}

/// Run a `change` command; a policy refusal by the server is exit 1.
pub async fn change(conn: &Conn, cmd: ChangeCmd) -> anyhow::Result<Outcome> {
    refusal_is_denial(change_cmd(conn, cmd).await)
}

async fn change_cmd(conn: &Conn, cmd: ChangeCmd) -> anyhow::Result<Outcome> {
    let c = Client::new(conn)?;
    let v = match cmd {
        ChangeCmd::Create {
            repository,
            base,
            head,
            pr,
            classification,
            title,
            pr_link,
            ticket,
            authors,
            submit,
            idempotency_key,
        } => {
            let classification = match classification {
                None => Value::Null,
                Some(path) => {
                    let text = if path.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin())?
                    } else {
                        std::fs::read_to_string(&path)
                            .with_context(|| format!("cannot read {}", path.display()))?
                    };
                    let parsed: Value = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", path.display()))?;
                    classification_from(parsed)?
                }
            };
            let mut body = json!({
                "pr": pr, "repository": repository.unwrap_or_default(), "base_commit": base.unwrap_or_default(),
                "head_commit": head.unwrap_or_default(), "title": title, "pr_link": pr_link, "ticket": ticket,
                "authors": authors, "submit": submit, "classification": classification,
            });
            if let Some(obj) = body.as_object_mut() {
                obj.retain(|_, v| !v.is_null() && v.as_str() != Some(""));
            }
            let mut req = c
                .http
                .post(format!("{}/api/v1/changes", c.base))
                .json(&body);
            if let Some(k) = idempotency_key {
                req = req.header("Idempotency-Key", k);
            }
            c.send(req).await?
        }
        ChangeCmd::Show { id } => c.get(&format!("/api/v1/changes/{id}")).await?,
        ChangeCmd::List => c.get("/api/v1/changes").await?,
        ChangeCmd::Approve { id, role } => {
            c.post(
                &format!("/api/v1/changes/{id}/approvals"),
                &json!({ "role": role }),
            )
            .await?
        }
        ChangeCmd::Attest { id, item, evidence } => {
            c.post(
                &format!("/api/v1/changes/{id}/attestations"),
                &json!({ "item": item, "evidence": evidence }),
            )
            .await?
        }
        ChangeCmd::Transition { id, event } => {
            c.post(
                &format!("/api/v1/changes/{id}/ops"),
                &json!({ "op": "transition", "event": event }),
            )
            .await?
        }
        ChangeCmd::Op { id, json } => {
            let op: Value = serde_json::from_str(&json).context("the command is not JSON")?;
            c.post(&format!("/api/v1/changes/{id}/ops"), &op).await?
        }
    };
    print(&v)?;
    Ok(Outcome::Ok)
}

/// Run an `incident` command; a policy refusal by the server is exit 1.
pub async fn incident(conn: &Conn, cmd: IncidentCmd) -> anyhow::Result<Outcome> {
    refusal_is_denial(incident_cmd(conn, cmd).await)
}

async fn incident_cmd(conn: &Conn, cmd: IncidentCmd) -> anyhow::Result<Outcome> {
    let c = Client::new(conn)?;
    let v = match cmd {
        IncidentCmd::Open {
            id,
            severity,
            title,
            commander,
            kind,
            cvss,
        } => {
            let mut body =
                json!({ "id": id, "severity": severity, "title": title, "commander": commander });
            if let Some(k) = kind {
                body["kind"] = json!(k);
            }
            if let Some(score) = cvss {
                body["cvss"] = json!(score);
            }
            c.post("/api/v1/incidents", &body).await?
        }
        IncidentCmd::Resolve { id } => {
            c.post(&format!("/api/v1/incidents/{id}/resolve"), &json!({}))
                .await?
        }
        IncidentCmd::List => c.get("/api/v1/incidents").await?,
    };
    print(&v)?;
    Ok(Outcome::Ok)
}

/// `changegate gate --change ID`: ask the server, record the decision, exit 0 allowed / 1 denied
/// (or refused by the server).
pub async fn gate_remote(
    conn: &Conn,
    id: &str,
    at: Option<&str>,
    format: Format,
) -> anyhow::Result<Outcome> {
    refusal_is_denial(gate_remote_cmd(conn, id, at, format).await)
}

async fn gate_remote_cmd(
    conn: &Conn,
    id: &str,
    at: Option<&str>,
    format: Format,
) -> anyhow::Result<Outcome> {
    let c = Client::new(conn)?;
    let mut path = format!("/api/v1/changes/{id}/decision?record=true");
    if let Some(at) = at {
        path.push_str(&format!("&at={}", urlencode(at)));
    }
    let d = c.get(&path).await?;
    render_decision(&d, format)?;
    // Denied vs waiting (exit 1 / 3), and GitHub Actions' job summary and annotations.
    crate::cmd::gate_ci::remote(&d)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Print a gate decision (JSON as the server gives it, or text for people).
pub fn render_decision(d: &Value, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        return print(d);
    }
    print!("{}", decision_text(d)?);
    Ok(())
}

/// A gate decision for people (`templates/gate/decision.txt`), from its JSON (the server's, or
/// the offline gate's).
fn decision_text(d: &Value) -> anyhow::Result<String> {
    let str_or = |v: &Value, default: &'static str| v.as_str().unwrap_or(default).to_string();
    Ok(DecisionText {
        allowed: d["allowed"].as_bool() == Some(true),
        change_id: str_or(&d["change_id"], "?"),
        at: str_or(&d["at"], "?"),
        category: d["category"].to_string(),
        status: str_or(&d["status"], "?"),
        reasons: d["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["denies"].as_bool() == Some(true),
                    str_or(&r["code"], "?"),
                    str_or(&r["message"], ""),
                )
            })
            .collect(),
        next_slot: d["next_slot"].as_str().map(str::to_string),
    }
    .render()?)
}

/// `gate --format text`.
#[derive(Template)]
#[template(path = "gate/decision.txt")]
struct DecisionText {
    allowed: bool,
    change_id: String,
    at: String,
    /// As JSON (`2`, or `null` when unknown).
    category: String,
    status: String,
    /// (denies, code, message) of each reason.
    reasons: Vec<(bool, String, String)>,
    next_slot: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_render_as_before() {
        let denied = json!({
            "allowed": false, "change_id": "ci-0123456789ab", "at": "2026-03-07T12:00:00Z",
            "category": 2, "status": "approved",
            "reasons": [
                {"code": "window-closed", "denies": true, "message": "Saturday is outside the standard window"},
                {"code": "approval-present", "denies": false, "message": "backend-lead approved"},
            ],
            "next_slot": "2026-03-09T09:00:00Z",
        });
        insta::assert_snapshot!("decision-denied.txt", decision_text(&denied).unwrap());
        let sparse = json!({"allowed": true, "reasons": []});
        insta::assert_snapshot!("decision-sparse.txt", decision_text(&sparse).unwrap());
    }
}
