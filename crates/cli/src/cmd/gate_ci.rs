//! `changegate gate` inside CI: the exit code that tells "denied" from "waiting", and, in GitHub
//! Actions (`GITHUB_ACTIONS=true`), a job summary appended to `$GITHUB_STEP_SUMMARY` and
//! `::error file=…,line=…::` annotations at the evidence of each denying facet.
//!
//! Exit codes of `gate` (docs/integrations.md): **0** allowed, **1** denied, **2** usage or input
//! error, **3** waiting — denied only by time (outside the window, a freeze, a lead time not yet
//! met), so a later run passes without anyone doing anything. GitLab's `allow_failure:
//! exit_codes: [3]` lets a pipeline wait for the window instead of failing.

use std::io::Write;

use changegate_gate::Decision;
use serde_json::Value;

use crate::common::Outcome;

/// The outcome of a decision: allowed, waiting (only time denies), or denied.
pub fn outcome(d: &Decision) -> Outcome {
    if d.allowed {
        Outcome::Ok
    } else if changegate_server::github_out::render::waits_only_for_time(d) {
        Outcome::Waiting
    } else {
        Outcome::Denied
    }
}

/// A facet the gate holds against the change, with where the classifier found it.
#[derive(Debug, Clone)]
pub struct DenyingFacet {
    /// Facet code.
    pub kind: String,
    /// What changed.
    pub details: String,
    /// Roles it requires that have not approved.
    pub missing: Vec<String>,
    /// (path, line) of its evidence.
    pub spots: Vec<(String, Option<u32>)>,
}

/// The facets of an offline classification whose roles are missing from the decision.
pub fn denying_facets(c: &changegate_classify::Classification, d: &Decision) -> Vec<DenyingFacet> {
    c.facets
        .iter()
        .filter_map(|f| {
            let missing: Vec<String> = f
                .roles
                .iter()
                .filter(|r| d.missing_roles.contains(r))
                .cloned()
                .collect();
            (!missing.is_empty()).then(|| DenyingFacet {
                kind: f.facet.kind.to_string(),
                details: f.facet.details.clone(),
                missing,
                spots: f
                    .facet
                    .evidence
                    .iter()
                    .filter(|e| matches!(e.side, changegate_classify::Side::Head))
                    .map(|e| (e.path.clone(), e.line))
                    .collect(),
            })
        })
        .collect()
}

/// A workflow command's message, escaped as GitHub's toolkit does (`%`, CR, LF).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value, escaped (also `:` and `,`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The `::error` lines: one per denying facet's evidence spot (at its file and line), then one
/// per denying reason.
pub fn annotations(d: &Decision, facets: &[DenyingFacet]) -> Vec<String> {
    let mut out = Vec::new();
    for f in facets {
        let msg = escape_data(&format!(
            "{}: {} needs an approval by {}",
            f.kind,
            f.details,
            f.missing.join(", ")
        ));
        let title = escape_property(&format!("changegate: {}", f.kind));
        for (path, line) in &f.spots {
            let line = line.map(|l| format!(",line={l}")).unwrap_or_default();
            out.push(format!(
                "::error file={}{line},title={title}::{msg}",
                escape_property(path)
            ));
        }
    }
    for r in d.reasons.iter().filter(|r| r.denies) {
        out.push(format!(
            "::error title={}::{}",
            escape_property(&format!("changegate: {}", r.code)),
            escape_data(&r.message)
        ));
    }
    out
}

/// The job summary (Markdown).
pub fn summary(d: &Decision) -> String {
    let verdict = match outcome(d) {
        Outcome::Ok => "allowed",
        Outcome::Waiting => "waiting for its window",
        _ => "denied",
    };
    let mut s = format!(
        "## changegate gate: {verdict}\n\nChange `{}` · category {} · status `{}` · decided for {}\n\n",
        d.change_id,
        d.category
            .map(|c| c.to_string())
            .unwrap_or_else(|| "?".into()),
        d.status,
        d.at
    );
    if !d.missing_roles.is_empty() {
        s.push_str(&format!(
            "**Approvals missing:** {}\n\n",
            d.missing_roles.join(", ")
        ));
    }
    if let Some(slot) = d.next_slot {
        s.push_str(&format!("**Next slot:** {slot}\n\n"));
    }
    s.push_str("| | Code | Reason |\n| --- | --- | --- |\n");
    for r in &d.reasons {
        s.push_str(&format!(
            "| {} | `{}` | {} |\n",
            if r.denies { "❌" } else { "✅" },
            r.code,
            r.message.replace('|', "\\|").replace('\n', " ")
        ));
    }
    s
}

/// In GitHub Actions: append the job summary and print the annotations (to stdout, where the
/// runner reads workflow commands). Elsewhere nothing.
pub fn github_actions(d: &Decision, facets: &[DenyingFacet]) -> anyhow::Result<()> {
    if std::env::var("GITHUB_ACTIONS").as_deref() != Ok("true") {
        return Ok(());
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                anyhow::anyhow!("cannot append the job summary to $GITHUB_STEP_SUMMARY: {e}")
            })?;
        f.write_all(summary(d).as_bytes())?;
    }
    let mut out = std::io::stdout().lock();
    for line in annotations(d, facets) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// [`github_actions`] and [`outcome`] for a decision as the server answers it (JSON).
pub fn remote(d: &Value) -> anyhow::Result<Outcome> {
    let d: Decision = serde_json::from_value(d.clone())
        .map_err(|e| anyhow::anyhow!("the server's decision does not parse: {e}"))?;
    github_actions(&d, &[])?;
    Ok(outcome(&d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(codes: &[changegate_gate::Code]) -> Decision {
        Decision {
            allowed: codes.is_empty(),
            change_id: "c".into(),
            at: "2026-03-14T11:00:00Z".parse().unwrap(),
            status: changegate_gate::Status::Approved,
            category: Some(2),
            reasons: codes
                .iter()
                .map(|c| changegate_gate::Reason::deny(*c, "m", serde_json::json!({})))
                .collect(),
            required_roles: vec![],
            missing_roles: vec![],
            next_slot: None,
        }
    }

    #[test]
    fn waiting_is_only_time_and_has_its_own_exit_code() {
        use changegate_gate::Code;
        assert_eq!(outcome(&decision(&[])), Outcome::Ok);
        assert_eq!(outcome(&decision(&[Code::WindowClosed])), Outcome::Waiting);
        assert_eq!(
            outcome(&decision(&[Code::FreezeActive, Code::LeadTimeRfc])),
            Outcome::Waiting
        );
        assert_eq!(
            outcome(&decision(&[Code::WindowClosed, Code::ApprovalMissing])),
            Outcome::Denied
        );
        assert!(
            summary(&decision(&[Code::WindowClosed])).starts_with("## changegate gate: waiting")
        );
    }

    #[test]
    fn workflow_commands_are_escaped() {
        assert_eq!(escape_data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
