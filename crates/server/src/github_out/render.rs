//! The content changegate publishes on a pull request: the `changegate` check run (title,
//! summary, text, annotations, conclusion) and the PR comment with the same content in Markdown.
//! Pure: the same change, decision and evidence give the same bytes, so a digest of them tells
//! whether anything needs publishing.

use changegate_gate::{ChangeState, Code, Decision, Reason, Status};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// GitHub's limit on a check run's `output.summary` and `output.text` (the OpenAPI description's
/// `maxLength`, in characters; kept in bytes here, which is stricter).
pub const OUTPUT_LIMIT: usize = 65_535;

/// GitHub's limit on annotations per check run request (the OpenAPI description's `maxItems`).
pub const ANNOTATIONS_PER_REQUEST: usize = 50;

/// GitHub's limit on an issue comment's body.
pub const COMMENT_LIMIT: usize = 65_536;

/// The hidden marker that identifies changegate's comment on a pull request.
pub fn marker(change_id: &str) -> String {
    format!("<!-- changegate:change={change_id} -->")
}

/// One place a facet was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    /// File path.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// In the head version (else the base version: a removed line).
    pub head: bool,
    /// What is there.
    pub snippet: Option<String>,
}

/// A facet with the evidence the server's classifier found for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacetEvidence {
    /// Facet code.
    pub kind: String,
    /// Its category level.
    pub category: u8,
    /// Roles it requires.
    pub roles: Vec<String>,
    /// What changed.
    pub details: String,
    /// Where.
    pub evidence: Vec<Spot>,
}

/// The codes that only time lifts: outside the window, a freeze, a lead time not yet met. A
/// deployment denied for these alone waits (and is approved when they lift) instead of being
/// rejected; `changegate gate` exits with its "waiting" code.
pub fn time_only(code: Code) -> bool {
    matches!(
        code,
        Code::WindowClosed
            | Code::FreezeActive
            | Code::LeadTimeRfc
            | Code::LeadTimeNotice
            | Code::LeadTimeNotMet
    )
}

/// Denied, and only for reasons time lifts.
pub fn waits_only_for_time(d: &Decision) -> bool {
    let mut denying = d.reasons.iter().filter(|r| r.denies).peekable();
    !d.allowed && denying.peek().is_some() && denying.all(|r| time_only(r.code))
}

/// Codes no approval and no waiting can lift: the policy refuses the change as it stands.
fn refuses(code: Code) -> bool {
    matches!(
        code,
        Code::CategoryUnknown
            | Code::RoleUnknown
            | Code::EmergencyNotDeclared
            | Code::EmergencyIncidentInvalid
            | Code::EmergencyIncidentIneligible
            | Code::EmergencyDeclarerUnauthorized
            | Code::RolloutPlanMismatch
    )
}

/// Codes that say a review approval is missing.
fn approval(code: Code) -> bool {
    matches!(
        code,
        Code::ApprovalMissing
            | Code::ApprovalStale
            | Code::ApprovalUnauthorized
            | Code::ApprovalSodViolation
    )
}

/// The check run's conclusion: `failure` when the policy refuses the change (a refusing reason,
/// or the change cancelled or rolled back), `action_required` while approvals are missing (or the
/// change is still a draft), `success` when it may merge (every required role approved). Time and deploy-time reasons
/// (window, freeze, lead times, checklist, deploy approval) do not hold the merge: the deployment
/// protection rule holds the deployment.
pub fn conclusion(state: &ChangeState, d: &Decision) -> &'static str {
    if matches!(state.status, Status::Cancelled | Status::RolledBack) {
        return "failure";
    }
    let denying: Vec<&Reason> = d.reasons.iter().filter(|r| r.denies).collect();
    if denying.iter().any(|r| refuses(r.code)) {
        return "failure";
    }
    if state.status == Status::Draft
        || !d.missing_roles.is_empty()
        || denying.iter().any(|r| approval(r.code))
    {
        return "action_required";
    }
    "success"
}

/// Everything published for one state of a change.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The head commit it is about.
    pub head_sha: String,
    /// `success`, `action_required`, `failure`.
    pub conclusion: &'static str,
    /// Check run title.
    pub title: String,
    /// Check run summary (Markdown, at most [`OUTPUT_LIMIT`] bytes).
    pub summary: String,
    /// Check run text (Markdown, at most [`OUTPUT_LIMIT`] bytes).
    pub text: String,
    /// Annotations, every one (sent in batches of [`ANNOTATIONS_PER_REQUEST`]).
    pub annotations: Vec<Value>,
    /// The PR comment's body (with the [`marker`]).
    pub comment: String,
}

impl Report {
    /// SHA-256 of everything published (hex).
    pub fn digest(&self) -> String {
        let v = json!([
            self.head_sha,
            self.conclusion,
            self.title,
            self.summary,
            self.text,
            self.annotations,
            self.comment
        ]);
        hex::encode(Sha256::digest(v.to_string().as_bytes()))
    }
}

/// Cut `s` to at most `limit` bytes (at a character boundary), ending with a pointer to the full
/// report when it was cut.
pub fn truncate(s: &str, limit: usize, link: Option<&str>) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let tail = match link {
        Some(l) => format!("\n\n… truncated to GitHub's limit: the full report is at {l}"),
        None => {
            "\n\n… truncated to GitHub's limit: `changegate explain` shows the full report".into()
        }
    };
    let mut end = limit.saturating_sub(tail.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{tail}", &s[..end])
}

fn md(s: &str) -> String {
    // Keep a message from closing our HTML comment or table cell.
    s.replace("-->", "--&gt;")
        .replace('|', "\\|")
        .replace('\n', " ")
}

fn reason_line(r: &Reason) -> String {
    let mut line = format!("- `{}`: {}", r.code, md(&r.message));
    if let Some(slot) = r.details.get("next_slot").and_then(Value::as_str) {
        line.push_str(&format!(" (next slot {slot})"));
    }
    line
}

/// Render the report of `state` as `d` decided it, with the facets' evidence.
pub fn render(
    state: &ChangeState,
    d: &Decision,
    facets: &[FacetEvidence],
    link: Option<&str>,
) -> Report {
    let c = &state.change;
    let conclusion = conclusion(state, d);
    let verdict = match conclusion {
        "success" if d.allowed => "may merge and deploy now",
        "success" => "may merge",
        "action_required" => "approvals missing",
        _ => "refused by the policy",
    };
    let category = d
        .category
        .map(|l| format!("category {l}"))
        .unwrap_or_else(|| "category unknown".into());
    let title = format!("{category} · {verdict}");
    let mut s = String::new();
    let id_shown = match link {
        Some(l) => format!("[`{}`]({l})", c.id),
        None => format!("`{}`", c.id),
    };
    s.push_str(&format!(
        "**Change** {id_shown} · **{category}** · status `{}` · head `{}`\n\n",
        state.status,
        c.head_commit.get(..12).unwrap_or(&c.head_commit)
    ));
    // Roles.
    s.push_str("### Approvals\n\n");
    if d.required_roles.is_empty() {
        s.push_str("No approval is required for this category.\n\n");
    } else {
        s.push_str("| Role | Approved by | |\n| --- | --- | --- |\n");
        for role in &d.required_roles {
            let by: Vec<String> = state
                .approvals
                .iter()
                .filter(|a| &a.role == role && a.head_commit == c.head_commit)
                .map(|a| md(&a.person))
                .collect();
            let missing = d.missing_roles.contains(role);
            s.push_str(&format!(
                "| `{role}` | {} | {} |\n",
                if by.is_empty() {
                    "—".to_string()
                } else {
                    by.join(", ")
                },
                if missing { "missing" } else { "approved" }
            ));
        }
        s.push('\n');
    }
    // What is missing, split into what holds the merge and what holds only the deployment.
    let denying: Vec<&Reason> = d.reasons.iter().filter(|r| r.denies).collect();
    let (now, later): (Vec<&Reason>, Vec<&Reason>) = denying.iter().partition(|r| {
        refuses(r.code)
            || approval(r.code)
            || (r.code == Code::StateInvalid
                && matches!(
                    state.status,
                    Status::Draft | Status::Cancelled | Status::RolledBack
                ))
    });
    s.push_str("### Still missing\n\n");
    if now.is_empty() {
        s.push_str("Nothing holds the merge.\n\n");
    } else {
        for r in &now {
            s.push_str(&reason_line(r));
            s.push('\n');
        }
        s.push('\n');
    }
    if !later.is_empty() {
        s.push_str("### Before deploying\n\n");
        for r in &later {
            s.push_str(&reason_line(r));
            s.push('\n');
        }
        s.push('\n');
    }
    // Window.
    s.push_str("### Window\n\n");
    let closed = denying
        .iter()
        .any(|r| matches!(r.code, Code::WindowClosed | Code::FreezeActive));
    s.push_str(&format!(
        "{} at {}.",
        if closed {
            "Closed"
        } else {
            "Open (or not required)"
        },
        d.at
    ));
    if let Some(slot) = d.next_slot {
        s.push_str(&format!(" Next slot: **{slot}**."));
    }
    s.push_str("\n\n");
    // Facets.
    s.push_str("### Facets\n\n");
    if c.classification.facets.is_empty() {
        s.push_str("None found.\n");
    }
    for f in &c.classification.facets {
        let roles = if f.roles.is_empty() {
            String::new()
        } else {
            format!("; roles {}", f.roles.join(", "))
        };
        let spots: Vec<String> = facets
            .iter()
            .filter(|e| e.kind == f.kind)
            .flat_map(|e| &e.evidence)
            .map(|p| match p.line {
                Some(l) => format!("`{}:{l}`", p.path),
                None => format!("`{}`", p.path),
            })
            .collect();
        let at = if spots.is_empty() {
            String::new()
        } else {
            format!(" — {}", spots.join(", "))
        };
        s.push_str(&format!(
            "- `{}` (category {}{roles}){at}\n",
            f.kind, f.category
        ));
    }
    let summary = truncate(&s, OUTPUT_LIMIT, link);
    // Text: every reason, then every facet's details and evidence.
    let mut t = String::from("### Every reason\n\n");
    for r in &d.reasons {
        t.push_str(&format!(
            "- {} `{}`: {}\n",
            if r.denies { "**denies**" } else { "ok" },
            r.code,
            md(&r.message)
        ));
    }
    t.push_str("\n### Evidence\n\n");
    for f in facets {
        t.push_str(&format!("- `{}`: {}\n", f.kind, md(&f.details)));
        for p in &f.evidence {
            let side = if p.head { "" } else { " (base)" };
            let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
            let snippet = p
                .snippet
                .as_deref()
                .map(|x| format!(" `{}`", md(x).replace('`', "'")))
                .unwrap_or_default();
            t.push_str(&format!("  - `{}{line}`{side}{snippet}\n", p.path));
        }
    }
    let text = truncate(&t, OUTPUT_LIMIT, link);
    // Annotations: one per evidence spot.
    let mut annotations = Vec::new();
    for f in facets {
        for p in &f.evidence {
            let line = if p.head {
                p.line.unwrap_or(1).max(1)
            } else {
                1
            };
            let mut message = format!("{} (category {})", f.details, f.category);
            if !f.roles.is_empty() {
                message.push_str(&format!(": needs {}", f.roles.join(", ")));
            }
            if !p.head
                && let Some(l) = p.line
            {
                message.push_str(&format!(" (line {l} of the base version)"));
            }
            let mut a = json!({
                "path": p.path,
                "start_line": line,
                "end_line": line,
                "annotation_level": if f.roles.is_empty() { "notice" } else { "warning" },
                "title": truncate(&format!("changegate: {}", f.kind), 255, None),
                "message": truncate(&message, 60_000, None),
            });
            if let Some(snip) = &p.snippet {
                a["raw_details"] = json!(truncate(snip, 60_000, None));
            }
            annotations.push(a);
        }
    }
    let body = format!(
        "{}\n## changegate: {title}\n\n{summary}\n<details><summary>Every reason and the evidence</summary>\n\n{text}\n</details>\n",
        marker(&c.id)
    );
    let comment = truncate(&body, COMMENT_LIMIT, link);
    Report {
        head_sha: c.head_commit.clone(),
        conclusion,
        title,
        summary,
        text,
        annotations,
        comment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_the_limit_and_links_the_dashboard() {
        let s = "é".repeat(40_000);
        let t = truncate(&s, OUTPUT_LIMIT, Some("https://cg.example/changes/c1"));
        assert!(t.len() <= OUTPUT_LIMIT, "{}", t.len());
        assert!(t.ends_with("https://cg.example/changes/c1"));
        assert_eq!(truncate("short", OUTPUT_LIMIT, None), "short");
    }

    #[test]
    fn time_only_codes() {
        assert!(time_only(Code::WindowClosed) && time_only(Code::FreezeActive));
        assert!(time_only(Code::LeadTimeRfc) && time_only(Code::LeadTimeNotMet));
        assert!(!time_only(Code::ApprovalMissing) && !time_only(Code::ChecklistMissing));
    }

    #[test]
    fn markers_are_not_closed_by_content() {
        assert_eq!(md("a --> b | c"), "a --&gt; b \\| c");
        assert_eq!(marker("c-1"), "<!-- changegate:change=c-1 -->");
    }
}
