//! `changegate detectors list`: the facet catalogue and what the policy maps each facet to.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::common::{Format, Global, Outcome, policy};

/// Detector commands.
#[derive(Debug, clap::Subcommand)]
pub enum DetectorsCmd {
    /// List every facet code, its family and the category and roles the policy gives it.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// Run a detectors command.
pub fn run(global: &Global, cmd: DetectorsCmd) -> anyhow::Result<Outcome> {
    let DetectorsCmd::List { format } = cmd;
    let policy = policy(global)?;
    let rows: Vec<serde_json::Value> = changegate_policy::facets::FACETS
        .iter()
        .map(|f| {
            let req = policy.facet_requirement(f.code);
            serde_json::json!({
                "facet": f.code,
                "family": f.family,
                "description": f.description,
                "category": req.as_ref().map(|r| r.category),
                "roles": req.as_ref().map(|r| r.roles.clone()).unwrap_or_default(),
            })
        })
        .collect();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Text | Format::Markdown => {
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED).set_header([
                "facet",
                "family",
                "category",
                "roles",
                "description",
            ]);
            for r in &rows {
                t.add_row([
                    r["facet"].as_str().unwrap_or_default().to_string(),
                    r["family"].as_str().unwrap_or_default().to_string(),
                    r["category"]
                        .as_u64()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "unmapped".into()),
                    r["roles"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default(),
                    r["description"].as_str().unwrap_or_default().to_string(),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(Outcome::Ok)
}
