//! `rollout start --change ID` and `rollout status --change ID`: rollouts the server runs.
//!
//! `start` asks the server to start the rollout of an allowed change
//! (`POST /api/v1/changes/{id}/rollouts`): the plan is the one the change's category requires, the
//! gate is re-checked at start and before each promotion, and the server's worker walks the plan
//! (docs/rollout.md, "Server-run rollouts"). `status` prints the change's rollouts.
//!
//! Exit codes: 0 started / shown; 1 refused by the server (403 authority, 409 state or an active
//! rollout, 422 the gate denies now); 2 usage error or an unreachable server.

use anyhow::Context;
use serde_json::Value;

use crate::common::{Format, Outcome};

/// Server connection of the server-run rollout commands.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Change id.
    #[arg(long)]
    pub change: String,
    /// Server URL.
    #[arg(
        long,
        env = "CHANGEGATE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// API token (from `changegate token create`).
    #[arg(long, env = "CHANGEGATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

async fn send(
    a: &ServerArgs,
    method: reqwest::Method,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let token = a
        .token
        .as_deref()
        .context("an API token is required: pass --token or set CHANGEGATE_TOKEN")?;
    let url = format!(
        "{}/api/v1/changes/{}/rollouts",
        a.server.trim_end_matches('/'),
        a.change
    );
    let mut req = reqwest::Client::new()
        .request(method.clone(), &url)
        .bearer_auth(token);
    if method == reqwest::Method::POST {
        req = req.json(&serde_json::json!({}));
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {}", a.server))?;
    let status = resp.status();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

fn line(r: &Value) -> String {
    let step = r["step"]
        .as_i64()
        .map_or("-".into(), |s| (s + 1).to_string());
    let weight = r["weight"].as_u64().map_or("-".into(), |w| format!("{w}%"));
    let mut s = format!(
        "{}  change {}  plan {} (category {})  phase {}  step {}  weight {}",
        r["id"].as_str().unwrap_or("?"),
        r["change"].as_str().unwrap_or("?"),
        r["plan"].as_str().unwrap_or("?"),
        r["category"],
        r["phase"].as_str().unwrap_or("?"),
        step,
        weight
    );
    if let Some(h) = r.get("held").filter(|h| !h.is_null()) {
        s.push_str(&format!(
            "\n  held by the gate since {}: {}",
            h["since"], h["codes"]
        ));
    }
    if let Some(v) = r.get("verification").filter(|v| !v.is_null()) {
        s.push_str(&format!(
            "\n  verification: {}",
            v["result"].as_str().unwrap_or("?")
        ));
        for c in v["checks"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "\n    {} {} {} (limit {})",
                c["name"].as_str().unwrap_or("?"),
                c["state"].as_str().unwrap_or("?"),
                c["value"],
                c["limit"].as_str().unwrap_or("")
            ));
        }
    }
    if let Some(rb) = r.get("rollback").filter(|v| !v.is_null()) {
        let t = &rb["timing"];
        s.push_str(&format!(
            "\n  rolled back ({}): breach → action {:.0} ms, action {:.0} ms, breach → switched {} (deadline {:.0} ms{})",
            rb["trigger"].as_str().unwrap_or("?"),
            t["detect_to_action_ms"].as_f64().unwrap_or(0.0),
            t["action_ms"].as_f64().unwrap_or(0.0),
            t["detect_to_switched_ms"]
                .as_f64()
                .map_or("unconfirmed".into(), |v| format!("{v:.0} ms")),
            t["deadline_ms"].as_f64().unwrap_or(0.0),
            if t["exceeded"].as_bool() == Some(true) {
                ", EXCEEDED"
            } else {
                ""
            }
        ));
    }
    s
}

fn refused(status: reqwest::StatusCode, body: &Value) -> anyhow::Result<Outcome> {
    let msg = format!(
        "server answered {}: [{}] {}",
        status.as_u16(),
        body["code"].as_str().unwrap_or("error"),
        body["message"].as_str().unwrap_or("request failed")
    );
    if matches!(status.as_u16(), 403 | 409 | 422) {
        eprintln!("error: {msg}");
        Ok(Outcome::Denied)
    } else {
        anyhow::bail!(msg)
    }
}

/// `rollout start`.
pub async fn start(a: ServerArgs) -> anyhow::Result<Outcome> {
    let (status, body) = send(&a, reqwest::Method::POST).await?;
    if !status.is_success() {
        return refused(status, &body);
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&body)?),
        _ => println!("started: {}", line(&body)),
    }
    Ok(Outcome::Ok)
}

/// `rollout status`.
pub async fn status(a: ServerArgs) -> anyhow::Result<Outcome> {
    let (status, body) = send(&a, reqwest::Method::GET).await?;
    if !status.is_success() {
        return refused(status, &body);
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&body)?),
        _ => {
            let rollouts = body["rollouts"].as_array().cloned().unwrap_or_default();
            if rollouts.is_empty() {
                println!("change {} has no server-run rollouts", a.change);
            }
            for r in &rollouts {
                println!("{}", line(r));
            }
        }
    }
    Ok(Outcome::Ok)
}
