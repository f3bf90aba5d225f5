//! Human renderings of a [`Classification`]: plain text for terminals and Markdown ready to post
//! as a pull-request comment. JSON is `serde_json` of the structure itself (docs/classify.md).

use std::fmt::Write as _;

use changegate_policy::RuleSource;

use crate::{Classification, ClassifiedFacet, Evidence, RoleReason, Side};

const MAX_EVIDENCE: usize = 5;

fn source_text(s: &Option<RuleSource>) -> String {
    match s {
        Some(RuleSource::Matrix { matrix, row }) => format!("matrix {matrix}, row {}", row + 1),
        Some(RuleSource::Rule { facet }) => format!("rule {facet}"),
        None => "fail-closed fallback".into(),
    }
}

fn evidence_text(e: &Evidence) -> String {
    let side = match e.side {
        Side::Base => "base",
        Side::Head => "head",
    };
    let loc = match e.line {
        Some(l) => format!("{}:{l}", e.path),
        None => e.path.clone(),
    };
    match &e.snippet {
        Some(s) => format!("{loc} ({side}): {s}"),
        None => format!("{loc} ({side})"),
    }
}

fn roles_text(f: &ClassifiedFacet) -> String {
    if f.roles.is_empty() {
        "no approver (auto-approved)".into()
    } else {
        f.roles.join(", ")
    }
}

fn range(c: &Classification) -> String {
    match (&c.base, &c.head) {
        (Some(b), Some(h)) => format!(" {}..{}", short(&b.commit), short(&h.commit)),
        _ => String::new(),
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(10)]
}

/// Plain text for a terminal.
pub fn render_text(c: &Classification) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Change{}: category {} — {}",
        range(c),
        c.category.level,
        c.category.name
    );
    let _ = writeln!(
        o,
        "Files: {} changed, {} explained by detectors, {} source, {} unclassified",
        c.files.changed, c.files.explained, c.files.source, c.files.unclassified
    );
    let _ = writeln!(o, "\nFacets:");
    if c.facets.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for f in &c.facets {
        let _ = writeln!(
            o,
            "  [{}] {}: {}",
            f.category, f.facet.kind, f.facet.details
        );
        for e in f.facet.evidence.iter().take(MAX_EVIDENCE) {
            let _ = writeln!(o, "        at {}", evidence_text(e));
        }
        if f.facet.evidence.len() > MAX_EVIDENCE {
            let _ = writeln!(
                o,
                "        … and {} more",
                f.facet.evidence.len() - MAX_EVIDENCE
            );
        }
        let _ = writeln!(
            o,
            "        requires {} ({}: {})",
            roles_text(f),
            source_text(&f.source),
            f.change
        );
    }
    let _ = writeln!(o, "\nRequired approvers:");
    if c.roles.is_empty() {
        let _ = writeln!(o, "  none (auto-approved)");
    }
    for r in &c.roles {
        let why: Vec<String> = r.reasons.iter().map(reason_text).collect();
        let _ = writeln!(o, "  {} ({}): {}", r.name, r.role, why.join("; "));
    }
    for n in &c.notes {
        let _ = writeln!(o, "note: {n}");
    }
    o
}

fn reason_text(r: &RoleReason) -> String {
    match r {
        RoleReason::Facet {
            facet,
            change,
            source,
        } => format!("{facet} — {change} [{}]", source_text(source)),
        RoleReason::CategoryApprovers { level, category } => {
            format!("every category {level} change ({category})")
        }
    }
}

fn md(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('\n', " ")
        .replace('<', "&lt;")
}

/// Markdown for a pull-request comment.
pub fn render_markdown(c: &Classification) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### changegate: category {} — {}\n",
        c.category.level,
        md(&c.category.name)
    );
    if c.roles.is_empty() {
        let _ = writeln!(o, "**Required approvers:** none (auto-approved)\n");
    } else {
        let names: Vec<String> = c
            .roles
            .iter()
            .map(|r| format!("**{}**", md(&r.name)))
            .collect();
        let _ = writeln!(o, "**Required approvers:** {}\n", names.join(", "));
    }
    let _ = writeln!(
        o,
        "{} files changed: {} explained by detectors, {} source, {} unclassified{}.\n",
        c.files.changed,
        c.files.explained,
        c.files.source,
        c.files.unclassified,
        range(c).replace(' ', " at ")
    );
    if !c.facets.is_empty() {
        let _ = writeln!(o, "| Cat. | Facet | Details | Requires | Evidence |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for f in &c.facets {
            let mut ev: Vec<String> = f
                .facet
                .evidence
                .iter()
                .take(3)
                .map(|e| match e.line {
                    Some(l) => format!("`{}:{l}`", md(&e.path)),
                    None => format!("`{}`", md(&e.path)),
                })
                .collect();
            if f.facet.evidence.len() > 3 {
                ev.push(format!("+{} more", f.facet.evidence.len() - 3));
            }
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {} | {} |",
                f.category,
                f.facet.kind,
                md(&f.facet.details),
                md(&roles_text(f)),
                ev.join(" ")
            );
        }
        o.push('\n');
    }
    if !c.roles.is_empty() {
        let _ = writeln!(o, "<details><summary>Why each approver</summary>\n");
        for r in &c.roles {
            let why: Vec<String> = r.reasons.iter().map(|x| md(&reason_text(x))).collect();
            let _ = writeln!(o, "- **{}**: {}", md(&r.name), why.join("; "));
        }
        let _ = writeln!(o, "\n</details>\n");
    }
    for n in &c.notes {
        let _ = writeln!(o, "> note: {}", md(n));
    }
    o
}
