//! `changegate codes`: the registry of every stable code, gathered from the code sets of every
//! crate (each made by `changegate_codes::codes!`). The same list feeds `docs/codes.md` and the
//! workspace test that every code is unique, kebab-case and documented.

use askama::Template;
use changegate_codes::{CodeSet, Entry};

use crate::common::{Format, Outcome};

/// Arguments of `changegate codes`.
#[derive(Debug, clap::Args)]
pub struct CodesArgs {
    /// Output format (markdown is docs/codes.md).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Only the codes of this family (e.g. `gate`, `api-error`, `facet`).
    #[arg(long)]
    pub domain: Option<String>,
}

/// One family of codes.
#[derive(Debug, Clone)]
pub struct Set {
    /// The family (`CodeSet::DOMAIN`).
    pub domain: &'static str,
    /// The Rust path of the enum that declares it.
    pub path: &'static str,
    /// Where the codes appear.
    pub about: &'static str,
    /// Its codes in declaration order.
    pub entries: Vec<Entry>,
}

fn set<C: CodeSet>(path: &'static str, about: &'static str) -> Set {
    Set {
        domain: C::DOMAIN,
        path,
        about,
        entries: C::entries(),
    }
}

/// Every code set of the workspace. A new code enum is added here (and the registry test then
/// checks it).
pub fn registry() -> Vec<Set> {
    vec![
        set::<changegate_policy::facets::FacetCode>(
            "changegate_policy::facets::FacetCode",
            "Facets: the kinds of change the classifier recognises (`classify`, policy `[rules]` and matrices).",
        ),
        set::<changegate_policy::DiagCode>(
            "changegate_policy::DiagCode",
            "Diagnostics of a policy file (`policy validate`, and every command that loads a policy).",
        ),
        set::<changegate_calendar::Code>(
            "changegate_calendar::Code",
            "Change-window reasons (`window check`; the details of the gate's window reasons). `freeze` stands for the family `freeze-<key>`, one per freeze of the policy.",
        ),
        set::<changegate_gate::Code>(
            "changegate_gate::Code",
            "Reasons of a deploy decision (`gate`, `GET …/decision`).",
        ),
        set::<changegate_gate::RejectionCode>(
            "changegate_gate::RejectionCode",
            "Why the gate refused a command (an approval, an attestation, an op, a transition).",
        ),
        set::<changegate_audit::Code>(
            "changegate_audit::Code",
            "Audit-trail verification failures and proof errors (`audit verify`, `audit check-proof`).",
        ),
        set::<changegate_store::StoreCode>(
            "changegate_store::StoreCode",
            "Errors of the store (SQLite or PostgreSQL) as the CLI and server report them.",
        ),
        set::<changegate_rollout::ReasonCode>(
            "changegate_rollout::ReasonCode",
            "Reasons of the rollout guard's decisions and trigger states (`rollout run | replay | triggers`).",
        ),
        set::<changegate_rollout::RolloutResult>(
            "changegate_rollout::RolloutResult",
            "Results of rollout steps recorded in the audit trail (`rollout run --audit`).",
        ),
        set::<changegate_server::ErrorCode>(
            "changegate_server::ErrorCode",
            "The `code` of an HTTP API error body (docs/api.md gives each one's status).",
        ),
        set::<changegate_gate::rollback::RollbackCode>(
            "changegate_gate::rollback::RollbackCode",
            "Why a rollback command was refused (`POST …/rollbacks`, its approvals, post-mortem, rollback tests, duties; docs/api.md \"Rollbacks\").",
        ),
        set::<changegate_server::routes::gates::EngineCode>(
            "changegate_server::routes::gates::EngineCode",
            "Reasons of an engine gate's answer (Flagger webhooks, the Argo Rollouts decision; docs/api.md \"Engine gates\").",
        ),
        set::<changegate_report::Code>(
            "changegate_report::Code",
            "Report errors and `report verify` failures (docs/reports.md).",
        ),
    ]
}

/// Code strings declared by two families on purpose (see docs/codes.md).
pub const SHARED: &[&str] = &[
    // gate reasons that carry a calendar reason through
    "window-closed",
    "emergency-override",
    "maintenance-not-announced",
    "exception-applied",
    "category-unknown",
    // a refused command names the reason the decision would give
    "state-invalid",
    "approval-stale",
    "approval-unauthorized",
    "approval-missing",
    "checklist-stale",
    "checklist-evidence-missing",
    "emergency-declarer-unauthorized",
    "emergency-not-declared",
    "emergency-incident-ineligible",
    // input naming an unknown role or category: the same code in the policy file and the API
    "unknown-role",
    "unknown-category",
    // an admin-only command: the gate's authority table and the API's admin routes
    "admin-required",
];

#[derive(Template)]
#[template(path = "codes/codes.md")]
struct Page<'a> {
    total: usize,
    sets: &'a [Set],
    shared: &'a [&'a str],
}

/// `docs/codes.md`.
pub fn markdown(sets: &[Set]) -> anyhow::Result<String> {
    let total = sets.iter().map(|s| s.entries.len()).sum();
    let shared: Vec<&str> = SHARED
        .iter()
        .copied()
        .filter(|c| {
            sets.iter()
                .filter(|s| s.entries.iter().any(|e| e.code == *c))
                .count()
                > 1
        })
        .collect();
    Ok(Page {
        total,
        sets,
        shared: &shared,
    }
    .render()?)
}

/// Run `changegate codes`.
pub fn run(args: CodesArgs) -> anyhow::Result<Outcome> {
    let mut sets = registry();
    if let Some(d) = &args.domain {
        sets.retain(|s| s.domain == d);
        if sets.is_empty() {
            let known: Vec<&str> = registry().iter().map(|s| s.domain).collect();
            anyhow::bail!(
                "unknown code family `{d}` (--domain); the families are {}",
                known.join(", ")
            );
        }
    }
    match args.format {
        Format::Markdown => print!("{}", markdown(&sets)?),
        Format::Json => {
            let entries: Vec<serde_json::Value> = sets
                .iter()
                .flat_map(|s| &s.entries)
                .map(|e| {
                    serde_json::json!({
                        "domain": e.domain,
                        "code": e.code,
                        "description": e.description,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&entries)?);
        }
        Format::Text => {
            let width = sets
                .iter()
                .flat_map(|s| &s.entries)
                .map(|e| e.domain.len() + e.code.len() + 1)
                .max()
                .unwrap_or(0);
            for e in sets.iter().flat_map(|s| &s.entries) {
                let name = format!("{}/{}", e.domain, e.code);
                println!("{name:width$}  {}", e.description);
            }
        }
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Entry> {
        registry().into_iter().flat_map(|s| s.entries).collect()
    }

    #[test]
    fn every_code_is_unique_kebab_case_and_documented() {
        let problems = changegate_codes::problems(&all(), SHARED);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn every_shared_code_is_really_shared() {
        // A stale entry would let a later collision slip through unnoticed.
        let entries = all();
        for c in SHARED {
            let domains: std::collections::BTreeSet<&str> = entries
                .iter()
                .filter(|e| e.code == *c)
                .map(|e| e.domain)
                .collect();
            assert!(
                domains.len() > 1,
                "`{c}` is listed as shared but only {domains:?} declare it"
            );
        }
    }

    #[test]
    fn every_family_is_distinct_and_non_empty() {
        let mut seen = std::collections::BTreeSet::new();
        for s in registry() {
            assert!(
                seen.insert(s.domain),
                "family {} registered twice",
                s.domain
            );
            assert!(!s.entries.is_empty(), "family {} has no code", s.domain);
            assert!(s.about.ends_with('.'), "{}: about", s.domain);
        }
    }

    /// The full list: a rename, addition or removal shows in review as a snapshot change.
    #[test]
    fn the_full_list() {
        let list: Vec<String> = all()
            .iter()
            .map(|e| format!("{}/{}", e.domain, e.code))
            .collect();
        insta::assert_snapshot!(list.join("\n"));
    }

    #[test]
    fn docs_codes_md_is_current() {
        let doc = include_str!("../../../../docs/codes.md");
        assert!(
            doc == markdown(&registry()).unwrap(),
            "docs/codes.md is stale: run `cargo xtask docs`"
        );
    }
}
