//! Rendering: one [`Message`] per notification (title, lines, link), then per channel: a Slack
//! Block Kit body within Slack's limits, an e-mail, a signed webhook body, a Statuspage
//! scheduled maintenance. Pure: the worker loads the change and the world and passes them in.

use changegate_gate::{ChangeState, WorldState};
use changegate_policy::Policy;
use changegate_store::Notification;
use serde_json::{Value, json};

/// Slack: at most this many blocks in a message.
pub const SLACK_MAX_BLOCKS: usize = 50;
/// Slack: at most this many characters in a section block's text.
pub const SLACK_MAX_SECTION: usize = 3000;
/// Slack: at most this many characters in a header block's text.
pub const SLACK_MAX_HEADER: usize = 150;

/// A rendered notification, independent of the channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// One line (e-mail subject, Slack header).
    pub title: String,
    /// The body, one fact per line.
    pub lines: Vec<String>,
    /// The dashboard page of the change, when the policy gives a base URL.
    pub link: Option<String>,
}

/// What a due reminder finds when it comes due.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    /// Send this.
    Send(Message),
    /// Its condition no longer holds (the duty was done, the retrospective written): cancel.
    Cancel(String),
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// Render `n` with the change it is about (if any) and the world, at send time.
pub fn render(
    policy: &Policy,
    n: &Notification,
    change: Option<&ChangeState>,
    world: &WorldState,
) -> Rendered {
    let p = &n.payload;
    let cid = s(&p["change"]);
    let title_of = change.map(|c| c.change.title.clone()).unwrap_or_default();
    let cat = s(&p["category"]);
    let named = if cid.is_empty() {
        String::new()
    } else if title_of.is_empty() {
        cid.clone()
    } else {
        format!("{cid} \u{2014} {title_of}")
    };
    let link = (!policy.notifications.base_url.is_empty() && !cid.is_empty()).then(|| {
        format!(
            "{}/changes/{cid}",
            policy.notifications.base_url.trim_end_matches('/')
        )
    });
    let mut lines = Vec::new();
    if !cat.is_empty() {
        lines.push(format!("Category: {cat}"));
    }
    let actor = s(&p["actor"]);
    let incident = s(&p["incident"]);
    let title = match n.event.as_str() {
        "change-submitted" => format!("Submitted for review: {named}"),
        "change-approved" => {
            lines.push(format!(
                "Approved by {} as {}",
                s(&p["person"]),
                s(&p["role"])
            ));
            format!("Approval: {named}")
        }
        "deployment-started" => {
            lines.push(format!("Started by {actor}"));
            format!("Deploying: {named}")
        }
        "change-deployed" => {
            lines.push(format!("Completed by {actor}"));
            format!("Deployed: {named}")
        }
        "change-rolled-back" => {
            if p["manual"] == true {
                lines.push(format!("Manual rollback {} by {actor}", s(&p["request"])));
                let reason = s(&p["reason"]);
                if !reason.is_empty() {
                    lines.push(format!("Reason: {reason}"));
                }
                let notice = s(&p["notice"]);
                if !notice.is_empty() {
                    lines.push(notice);
                }
            } else {
                lines.push(format!("Rolled back by {actor}"));
            }
            let result = s(&p["result"]);
            if !result.is_empty() {
                lines.push(format!("Result: {result}"));
            }
            format!("Rolled back: {named}")
        }
        "emergency-declared" => {
            if let Some(c) = change
                && let Some(r) = &c.emergency
                && r.retrospective.is_some()
            {
                lines.push("Retrospective already recorded".into());
            }
            lines.push(format!("Incident {incident}, declared by {}", s(&p["by"])));
            format!("Emergency declared: {named}")
        }
        "incident-opened" | "incident-updated" | "incident-resolved" | "freeze-started" => {
            let inc = world.incident(&incident);
            let sev = inc
                .map(|i| i.severity.clone())
                .unwrap_or_else(|| s(&p["severity"]));
            let t = inc
                .map(|i| i.title.clone())
                .unwrap_or_else(|| s(&p["title"]));
            if let Some(c) = inc.and_then(|i| i.commander.clone()) {
                lines.push(format!("Incident commander: {c}"));
            }
            lines.push(format!("Severity: {sev}"));
            match n.event.as_str() {
                "incident-opened" => format!("Incident {incident} opened ({sev}): {t}"),
                "incident-updated" => format!("Incident {incident} updated ({sev}): {t}"),
                "incident-resolved" => {
                    if super::route::freezing(policy, &sev) {
                        lines.push("Its change freeze lifts".into());
                    }
                    format!("Incident {incident} resolved: {t}")
                }
                _ => {
                    lines.push(
                        "Changes are frozen except the incident's remediation and emergencies"
                            .into(),
                    );
                    format!("Change freeze: incident {incident} ({sev})")
                }
            }
        }
        "maintenance-announced" => {
            lines.push(format!(
                "Window: {} to {} (UTC)",
                s(&p["window_start"]),
                s(&p["window_end"])
            ));
            format!("Planned maintenance {}", s(&p["announcement"]))
        }
        "stakeholder-notice" => {
            let when = change
                .and_then(|c| c.change.requested_deploy_at.map(|t| t.to_string()))
                .unwrap_or_else(|| "in the next maintenance window".into());
            lines.push(format!("Planned deployment: {when}"));
            let l = s(&p["link"]);
            if !l.is_empty() {
                lines.push(format!("Details: {l}"));
            }
            format!("Notice of a high-risk change: {named}")
        }
        "standby-reminder" => {
            let duty = change.and_then(|c| c.duties.iter().find(|d| d.id == "standby"));
            if p["phase"] == "end" {
                if duty.is_some_and(|d| d.done.is_some()) {
                    return Rendered::Cancel("the standby report is recorded".into());
                }
                lines.push(format!(
                    "The {} standby has ended: record the standby report",
                    s(&p["standby"])
                ));
            } else {
                lines.push(format!(
                    "Incident Commander on standby for {}",
                    s(&p["standby"])
                ));
            }
            if let Some(d) = duty {
                lines.push(format!("Owner: {}", d.owner));
            }
            format!("Standby: {named}")
        }
        "status-update-due" => {
            let day = s(&p["day"]);
            let id = format!("status-update-{day}");
            let duty = change.and_then(|c| c.duties.iter().find(|d| d.id == id));
            if duty.is_some_and(|d| d.done.is_some()) {
                return Rendered::Cancel(format!("status update {day} is recorded"));
            }
            if let Some(d) = duty {
                lines.push(format!("Owner: {}", d.owner));
            }
            lines.push(format!(
                "Daily status update {day} of {} is due",
                s(&p["of"])
            ));
            format!("Status update due: {named}")
        }
        "retrospective-due" => {
            let e = change.and_then(|c| c.emergency.as_ref());
            let retro = e.is_some_and(|e| e.retrospective.is_some());
            let follow =
                e.is_some_and(|e| e.follow_up_pr.is_some()) || !policy.emergency.follow_up_pr;
            if retro && follow {
                return Rendered::Cancel("the retrospective and follow-up PR are recorded".into());
            }
            if !retro {
                lines.push("The retrospective is overdue".into());
            }
            if !follow {
                lines.push("The follow-up PR is not linked".into());
            }
            format!("Overdue: emergency aftercare of {named}")
        }
        "post-mortem-due" => {
            let rid = s(&p["request"]);
            let done = change
                .and_then(|c| c.rollback.request(&rid))
                .and_then(|r| r.post_mortem.as_ref())
                .is_some_and(|pm| pm.recorded_at.is_some());
            if done {
                return Rendered::Cancel(format!("the post-mortem of {rid} is recorded"));
            }
            lines.push(format!("The post-mortem of rollback {rid} is overdue"));
            format!("Overdue post-mortem: {named}")
        }
        "report-generated" => {
            let report = s(&p["report"]);
            lines.push(format!("Digest to sign: {}", s(&p["digest"])));
            let cp = &p["checkpoint"];
            lines.push(format!(
                "Computed from the signed log head of size {} (root {})",
                s(&cp["size"]),
                s(&cp["root"])
            ));
            lines.push(format!("Deployments: {}", s(&p["deployments"])));
            let missed = s(&p["missed"]);
            if !missed.is_empty() && missed != "[]" {
                lines.push(format!("Targets missed: {missed}"));
            }
            let reviewers = s(&p["reviewers"]);
            if !reviewers.is_empty() {
                lines.push(format!("Reviewers: {reviewers}"));
            }
            let (kind, period) = (s(&p["kind"]), s(&p["period"]));
            lines.push(format!(
                "Read it: GET /api/v1/reports/{kind}/{period}; sign it: changegate report sign --{} {period} --role ROLE",
                if kind == "quarterly" { "quarter" } else { "month" }
            ));
            match kind.as_str() {
                "quarterly" => {
                    format!("Quarterly review {period} is ready for sign-off ({report})")
                }
                _ => format!("Monthly audit report {period} is ready for sign-off ({report})"),
            }
        }
        "executive-report" => {
            lines.push(format!(
                "An executive report is due for incident {incident}"
            ));
            format!("Executive report due: incident {incident}")
        }
        other => format!("{other}: {named}"),
    };
    if let Some(l) = &link {
        lines.push(format!("Dashboard: {l}"));
    }
    Rendered::Send(Message { title, lines, link })
}

/// Cut `text` to at most `max` characters (on a character boundary).
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

/// Escape Slack's three control characters in mrkdwn text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack Block Kit body: a header, one section with the lines (≤ 3,000 characters; a
/// longer text is cut and links to the dashboard instead of growing), a context with the link.
/// Never more than [`SLACK_MAX_BLOCKS`] blocks.
pub fn slack(m: &Message) -> Value {
    let text = slack_escape(&m.lines.join("\n"));
    let section = if text.chars().count() <= SLACK_MAX_SECTION {
        text
    } else {
        let tail = match &m.link {
            Some(l) => format!("\n\u{2026} more on <{l}|the dashboard>"),
            None => "\n\u{2026} (cut)".to_string(),
        };
        let keep = SLACK_MAX_SECTION - tail.chars().count();
        let mut t: String = text.chars().take(keep).collect();
        t.push_str(&tail);
        t
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&m.title, SLACK_MAX_HEADER)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": section}}),
    ];
    if let Some(l) = &m.link {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("<{l}|Open in changegate>")}]}));
    }
    blocks.truncate(SLACK_MAX_BLOCKS);
    json!({ "text": cut(&m.title, SLACK_MAX_SECTION), "blocks": blocks })
}

/// The e-mail body (plain text).
pub fn email_body(m: &Message) -> String {
    let mut b = m.lines.join("\n");
    b.push_str("\n\n-- \nSent by changegate.\n");
    b
}

/// The body of a generic webhook.
pub fn webhook(n: &Notification, m: &Message) -> Value {
    json!({
        "id": n.id,
        "dedupe_key": n.dedupe_key,
        "event": n.event,
        "subject": n.subject,
        "channel": n.channel,
        "title": m.title,
        "text": m.lines.join("\n"),
        "link": m.link,
        "facts": n.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_slack_message_links_to_the_dashboard_instead_of_growing() {
        let m = Message {
            title: "t".repeat(400),
            lines: vec!["x".repeat(5000)],
            link: Some("https://cg.example.com/changes/c-1".into()),
        };
        let body = slack(&m);
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= SLACK_MAX_BLOCKS);
        let section = blocks[1]["text"]["text"].as_str().unwrap();
        assert_eq!(section.chars().count(), SLACK_MAX_SECTION);
        assert!(section.ends_with("more on <https://cg.example.com/changes/c-1|the dashboard>"));
        assert_eq!(
            blocks[0]["text"]["text"].as_str().unwrap().chars().count(),
            SLACK_MAX_HEADER
        );
        // A short one is sent whole.
        let short = slack(&Message {
            title: "Deployed".into(),
            lines: vec!["a <b> & c".into()],
            link: None,
        });
        assert_eq!(short["blocks"][1]["text"]["text"], "a &lt;b&gt; &amp; c");
    }
}
