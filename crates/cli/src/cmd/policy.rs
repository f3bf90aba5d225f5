//! `changegate policy show | explain | validate | schema`.

use std::path::PathBuf;

use askama::Template;
use changegate_policy::{Freeze, Policy, RoleId};
use comfy_table::{ContentArrangement, Table, presets};

use crate::common::{Format, Global, Outcome, load_policy_file, policy};

/// Policy commands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Print the effective policy (built-in default merged with --policy) as a complete TOML file.
    Show {
        /// `text` prints TOML; `json` prints the same policy as JSON.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Explain the effective policy for people: who approves what, and when changes may ship.
    Explain {
        /// `text` (tables) or `markdown`.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Check a policy file; print every problem with file, line and column. Exit 2 when invalid.
    Validate {
        /// The policy file.
        file: PathBuf,
    },
    /// Print the JSON Schema of the policy file (for editors and CI linters).
    Schema,
    /// Re-evaluate every recorded change of a range under a candidate policy (the global
    /// `--policy FILE`) and report what would have differed: approvers required, changes blocked
    /// or allowed, window delays.
    Simulate(Box<crate::cmd::simulate::SimulateArgs>),
}

/// Run a policy command.
pub fn run(global: &Global, cmd: PolicyCmd) -> anyhow::Result<Outcome> {
    match cmd {
        PolicyCmd::Show { format } => {
            let p = policy(global)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&p)?),
                _ => print!("{}", to_toml(&p)?),
            }
        }
        PolicyCmd::Explain { format } => {
            print!("{}", explain(&policy(global)?, format == Format::Markdown)?)
        }
        PolicyCmd::Validate { file } => {
            let loaded = load_policy_file(Some(&file))?;
            println!(
                "{}: valid ({} categories, {} matrix rows, {} rules, {} warning(s))",
                file.display(),
                loaded.policy.categories.len(),
                loaded
                    .policy
                    .matrices
                    .values()
                    .map(|m| m.rows.len())
                    .sum::<usize>(),
                loaded.policy.rules.len(),
                loaded.warnings.len()
            );
        }
        PolicyCmd::Schema => println!("{}", changegate_policy::json_schema()),
        PolicyCmd::Simulate(_) => {
            anyhow::bail!("`policy simulate` reads the store and runs asynchronously")
        }
    }
    Ok(Outcome::Ok)
}

/// The policy as a complete, standalone TOML document.
pub fn to_toml(p: &Policy) -> anyhow::Result<String> {
    let body = toml::to_string_pretty(p)?;
    Ok(format!(
        "# Effective changegate policy (complete; `extends = \"none\"` makes it standalone).\n{body}"
    ))
}

fn role_names(p: &Policy, roles: &[RoleId]) -> String {
    if roles.is_empty() {
        return "auto-approved".into();
    }
    roles
        .iter()
        .map(|r| p.roles.get(r).map_or(r.as_str(), |role| role.name.as_str()))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn table(markdown: bool, header: &[&str]) -> Table {
    let mut t = Table::new();
    if markdown {
        t.load_style(presets::ASCII_MARKDOWN);
    } else {
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(120);
    }
    t.set_header(header.iter().copied());
    t
}

/// `policy explain`: the policy for people, as text (tables) or markdown
/// (`templates/policy/explain.txt`).
#[derive(Template)]
#[template(path = "policy/explain.txt")]
struct Explain {
    md: bool,
    title: String,
    categories: Table,
    /// Title and table of each approval matrix.
    matrices: Vec<(String, Table)>,
    rules: Table,
    windows: Table,
    freezes: Table,
    exception_approvers: String,
    exception_reasons: String,
    lead_times: Table,
    plans: Table,
    triggers: Table,
    rollback_deadline: String,
    checklist: Table,
    roles: Table,
    retention: String,
    reviewers: String,
}

impl Explain {
    /// A section heading: `## text` in markdown, the text underlined otherwise.
    fn heading(&self, level: usize, text: &str) -> String {
        if self.md {
            format!("\n{} {text}\n\n", "#".repeat(level))
        } else {
            let rule = if level == 1 { "=" } else { "-" }.repeat(text.chars().count());
            format!("\n{text}\n{rule}\n")
        }
    }
}

/// A human-readable summary of a policy.
pub fn explain(p: &Policy, md: bool) -> anyhow::Result<String> {
    let title = format!(
        "{}{} v{} (effective {})",
        if md { "# " } else { "" },
        p.meta.name,
        p.meta.version,
        p.meta.effective_date
    );
    let mut t = table(
        md,
        &[
            "level",
            "category",
            "approved by",
            "deploy gate",
            "window",
            "rollout",
            "rollback by",
        ],
    );
    let mut cats: Vec<_> = p.categories.values().collect();
    cats.sort_by_key(|c| c.level);
    for c in &cats {
        let rollback = c
            .rollback_authority
            .iter()
            .map(|a| {
                let s = role_names(p, &a.all_of);
                if a.during_active_incident {
                    format!("{s} (during an incident)")
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join(" or ");
        let approvers = if c.unilateral {
            format!("{} (alone)", role_names(p, &c.approvers))
        } else if c.approvers.is_empty() {
            "auto (CI gate)".into()
        } else {
            format!("{} + matrix roles", role_names(p, &c.approvers))
        };
        t.add_row([
            c.level.to_string(),
            c.name.clone(),
            approvers,
            if c.deploy_approvers.is_empty() {
                "-".into()
            } else {
                role_names(p, &c.deploy_approvers)
            },
            c.window.as_str().to_string(),
            c.rollout_plan.clone(),
            rollback,
        ]);
    }
    let categories = t;

    let mut matrices = Vec::new();
    for m in p.matrices.values() {
        let mut t = table(md, &["change", "approvers", "category", "facets"]);
        for r in &m.rows {
            t.add_row([
                r.change.clone(),
                role_names(p, &r.roles),
                r.category.to_string(),
                r.facets.join(", "),
            ]);
        }
        matrices.push((m.title.clone(), t));
    }
    let mut t = table(md, &["change", "approvers", "category", "facet"]);
    for (facet, r) in &p.rules {
        t.add_row([
            r.change.clone(),
            role_names(p, &r.roles),
            r.category.to_string(),
            facet.clone(),
        ]);
    }
    let rules = t;

    let mut t = table(md, &["window", "when", "applies to"]);
    for c in &cats {
        use changegate_policy::WindowClass as W;
        let when = match c.window {
            W::AnyTime => "24/7, no restrictions".to_string(),
            W::Emergency => "24/7, overrides every restriction".to_string(),
            W::Standard => {
                p.windows
                    .standard
                    .slots
                    .iter()
                    .map(|s| {
                        let days: Vec<_> = s.days.iter().map(|d| d.as_str()).collect();
                        format!("{} {}-{}", days.join("/"), s.start, s.end)
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
                    + &format!(" ({})", p.standard_tz())
            }
            W::Maintenance => {
                let m = &p.windows.maintenance;
                format!(
                    "occurrence {} of {} each month {}-{} ({}), fallback occurrence {}; max {}; announced {} ahead",
                    m.nth,
                    m.weekday,
                    m.start,
                    m.end,
                    p.maintenance_tz(),
                    m.fallback_nth.map_or("-".into(), |f| f.to_string()),
                    m.max_duration,
                    m.announce_lead
                )
            }
        };
        t.add_row([
            c.window.as_str().to_string(),
            when,
            format!("category {}", c.level),
        ]);
    }
    let pref: Vec<String> = p
        .windows
        .preferred
        .slots
        .iter()
        .map(|s| {
            let days: Vec<_> = s.days.iter().map(|d| d.as_str()).collect();
            format!("{} {}-{}", days.join("/"), s.start, s.end)
        })
        .collect();
    t.add_row([
        "preferred (reported only)".into(),
        format!("{} ({})", pref.join("; "), p.preferred_tz()),
        "".into(),
    ]);
    let windows = t;

    let mut t = table(md, &["freeze", "when", "applies to"]);
    for f in p.freezes.values() {
        let when = match f {
            Freeze::Weekly { from, to, .. } => {
                format!("{} {} - {} {}", from.day, from.time, to.day, to.time)
            }
            Freeze::Annual { start, end, .. } => format!("every year {start} to {end} (inclusive)"),
            Freeze::Dates { start, end, .. } => format!("{start} to {end} (inclusive)"),
            Freeze::Incident {
                severities,
                except_remediation,
                ..
            } => format!(
                "while a {} incident is active{}",
                severities.join("/"),
                if *except_remediation {
                    ", except its remediation"
                } else {
                    ""
                }
            ),
        };
        let levels: Vec<String> = f.applies_to().iter().map(|l| l.to_string()).collect();
        t.add_row([
            f.name().to_string(),
            when,
            format!("categories {}", levels.join(", ")),
        ]);
    }
    let freezes = t;
    let reasons: Vec<&str> = p
        .exceptions
        .reasons
        .values()
        .map(|r| r.description.as_str())
        .collect();
    let exception_approvers = role_names(p, &p.exceptions.approvers);
    let exception_reasons = reasons.join("; ");

    let mut t = table(md, &["what", "business days", "categories"]);
    for lt in p.lead_times.values() {
        let levels: Vec<String> = lt.applies_to.iter().map(|l| l.to_string()).collect();
        t.add_row([
            lt.description.clone(),
            lt.business_days.to_string(),
            levels.join(", "),
        ]);
    }
    let lead_times = t;

    let mut t = table(md, &["plan", "steps"]);
    for (name, plan) in &p.rollout.plans {
        let steps: Vec<String> = plan
            .steps
            .iter()
            .map(|s| {
                let soak = s
                    .soak
                    .as_ref()
                    .map(|d| format!(" (soak {d})"))
                    .unwrap_or_default();
                format!("{} {}%{soak}", s.environment, s.weight)
            })
            .collect();
        t.add_row([name.clone(), steps.join(" -> ")]);
    }
    let plans = t;

    let mut t = table(md, &["trigger", "rule", "categories"]);
    for (id, tr) in &p.rollback.triggers {
        let levels: Vec<String> = tr.applies_to.iter().map(|l| l.to_string()).collect();
        t.add_row([id.clone(), tr.description.clone(), levels.join(", ")]);
    }
    let triggers = t;

    let mut t = table(md, &["item", "check", "categories"]);
    for (id, item) in &p.checklist.pre {
        let levels: Vec<String> = item.applies_to.iter().map(|l| l.to_string()).collect();
        let how = if item.auto {
            " (checked by changegate)"
        } else {
            ""
        };
        t.add_row([id.clone(), format!("{}{how}", item.text), levels.join(", ")]);
    }
    let checklist = t;

    let mut t = table(md, &["role", "name", "holders"]);
    for (id, r) in &p.roles {
        t.add_row([
            id.clone(),
            r.name.clone(),
            if r.holders.is_empty() {
                "(nobody yet)".into()
            } else {
                r.holders.join(", ")
            },
        ]);
    }
    let roles = t;
    Ok(Explain {
        md,
        title,
        categories,
        matrices,
        rules,
        windows,
        freezes,
        exception_approvers,
        exception_reasons,
        lead_times,
        plans,
        triggers,
        rollback_deadline: p.rollback.deadline.to_string(),
        checklist,
        roles,
        retention: p.audit.retention.to_string(),
        reviewers: role_names(p, &p.reports.monthly.reviewers),
    }
    .render()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_of_the_default_policy_renders_as_before() {
        let p = changegate_policy::load_default().policy;
        insta::assert_snapshot!("explain.txt", explain(&p, false).unwrap());
        insta::assert_snapshot!("explain.md", explain(&p, true).unwrap());
    }
}
