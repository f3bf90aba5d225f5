//! Actions the guard takes on the outside world: set the traffic weight, roll back.
//!
//! An action is either a shell command (`sh -c`, with `{weight}`, `{step}`, `{environment}`,
//! `{plan}` and `{change}` substituted, shell-quoted, and the same values plus the reasons in
//! `CHANGEGATE_*` environment variables) or a webhook (an `http://` or `https://` URL that gets
//! a JSON POST). A command that exits non-zero, a webhook that answers non-2xx, and anything that
//! outlives its timeout is a failure, reported with its output.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "target", rename_all = "kebab-case")]
pub enum Action {
    /// `sh -c` command template.
    Command(String),
    /// Webhook URL.
    Webhook(String),
}

/// Values an action is run with.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActionVars {
    /// `set-weight` or `rollback`.
    pub action: String,
    /// Weight in percent (0 for rollback).
    pub weight: u8,
    /// Step number, 1-based (0 before the first).
    pub step: usize,
    /// Environment.
    pub environment: String,
    /// Plan.
    pub plan: String,
    /// Change id, if known.
    pub change: String,
    /// Reason codes and messages.
    pub reasons: Vec<String>,
}

/// How an action went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionResult {
    /// The action.
    pub action: Action,
    /// What was run (substituted command, or URL).
    pub ran: String,
    /// Succeeded.
    pub ok: bool,
    /// Exit status / HTTP status and output, trimmed.
    pub detail: String,
    /// Start.
    pub started: Timestamp,
    /// Duration in seconds.
    pub seconds: f64,
    /// Not run: dry run.
    pub dry_run: bool,
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/@%+=-".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Action {
    /// A URL (`http://`, `https://`) is a webhook; anything else a command.
    pub fn parse(s: &str) -> Action {
        if s.starts_with("http://") || s.starts_with("https://") {
            Action::Webhook(s.to_string())
        } else {
            Action::Command(s.to_string())
        }
    }

    /// The command with variables substituted (the URL for a webhook).
    pub fn render(&self, v: &ActionVars) -> String {
        match self {
            Action::Command(c) => c
                .replace("{weight}", &v.weight.to_string())
                .replace("{step}", &v.step.to_string())
                .replace("{environment}", &quote(&v.environment))
                .replace("{plan}", &quote(&v.plan))
                .replace("{change}", &quote(&v.change)),
            Action::Webhook(u) => u.clone(),
        }
    }

    /// Run it (or only describe it when `dry_run`), stamped with the wall clock.
    pub async fn run(&self, v: &ActionVars, timeout: Duration, dry_run: bool) -> ActionResult {
        self.run_on(&crate::clock::SystemClock, v, timeout, dry_run)
            .await
    }

    /// [`Action::run`], its start stamped by `clock` (the guard loop's clock). `seconds` is
    /// always the real time the command or webhook took.
    pub async fn run_on<C: crate::clock::Clock>(
        &self,
        clock: &C,
        v: &ActionVars,
        timeout: Duration,
        dry_run: bool,
    ) -> ActionResult {
        let started = clock.now();
        let clock = Instant::now();
        let ran = self.render(v);
        let done = |ok: bool, detail: String| ActionResult {
            action: self.clone(),
            ran: ran.clone(),
            ok,
            detail,
            started,
            seconds: clock.elapsed().as_secs_f64(),
            dry_run,
        };
        if dry_run {
            return done(true, "dry run: not executed".into());
        }
        match self {
            Action::Command(_) => {
                let mut cmd = tokio::process::Command::new("sh");
                cmd.arg("-c")
                    .arg(&ran)
                    .env("CHANGEGATE_ACTION", &v.action)
                    .env("CHANGEGATE_WEIGHT", v.weight.to_string())
                    .env("CHANGEGATE_STEP", v.step.to_string())
                    .env("CHANGEGATE_ENVIRONMENT", &v.environment)
                    .env("CHANGEGATE_PLAN", &v.plan)
                    .env("CHANGEGATE_CHANGE", &v.change)
                    .env("CHANGEGATE_REASONS", v.reasons.join("\n"))
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true);
                match tokio::time::timeout(timeout, cmd.output()).await {
                    Err(_) => done(false, format!("timed out after {}s", timeout.as_secs_f64())),
                    Ok(Err(e)) => done(false, format!("could not start: {e}")),
                    Ok(Ok(out)) => {
                        let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
                        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
                        if !err.is_empty() {
                            text = if text.is_empty() {
                                err
                            } else {
                                format!("{text}\n{err}")
                            };
                        }
                        let text: String = text.chars().take(2000).collect();
                        done(
                            out.status.success(),
                            format!(
                                "{}{}",
                                out.status,
                                if text.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {text}")
                                }
                            ),
                        )
                    }
                }
            }
            Action::Webhook(url) => {
                let client = match reqwest::Client::builder().timeout(timeout).build() {
                    Ok(c) => c,
                    Err(e) => return done(false, e.to_string()),
                };
                match client.post(url).json(v).send().await {
                    Err(e) => done(false, e.to_string()),
                    Ok(resp) => {
                        let status = resp.status();
                        let body: String = resp
                            .text()
                            .await
                            .unwrap_or_default()
                            .chars()
                            .take(500)
                            .collect();
                        done(
                            status.is_success(),
                            format!(
                                "HTTP {}{}",
                                status.as_u16(),
                                if body.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {body}")
                                }
                            ),
                        )
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_substitutes_and_quotes() {
        let a = Action::parse("kubectl set weight={weight} env={environment} change={change}");
        let v = ActionVars {
            weight: 50,
            environment: "production".into(),
            change: "PR 12; rm -rf /".into(),
            ..Default::default()
        };
        assert_eq!(
            a.render(&v),
            "kubectl set weight=50 env=production change='PR 12; rm -rf /'"
        );
        assert!(matches!(
            Action::parse("https://x.invalid/hook"),
            Action::Webhook(_)
        ));
    }

    #[tokio::test]
    async fn command_failure_and_dry_run_are_reported() {
        let v = ActionVars {
            weight: 5,
            ..Default::default()
        };
        let ok = Action::parse("test {weight} -eq 5")
            .run(&v, Duration::from_secs(5), false)
            .await;
        assert!(ok.ok, "{ok:?}");
        let bad = Action::parse("echo nope >&2; exit 3")
            .run(&v, Duration::from_secs(5), false)
            .await;
        assert!(!bad.ok && bad.detail.contains("nope"), "{bad:?}");
        let dry = Action::parse("exit 1")
            .run(&v, Duration::from_secs(5), true)
            .await;
        assert!(dry.ok && dry.dry_run);
        let slow = Action::parse("sleep 5")
            .run(&v, Duration::from_millis(100), false)
            .await;
        assert!(!slow.ok && slow.detail.contains("timed out"));
    }
}
