//! `changegate detectors list`: the facet catalogue, the detectors that emit each facet, and
//! what the policy maps each facet to; `--detectors` lists the detector registry instead.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::common::{Format, Global, Outcome, policy};

/// Detector commands.
#[derive(Debug, clap::Subcommand)]
pub enum DetectorsCmd {
    /// List every facet code, its family, the detectors that emit it and the category and roles
    /// the policy gives it (or, with --detectors, every detector and its facets).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// List the detectors (registry order) instead of the facets.
        #[arg(long)]
        detectors: bool,
    },
}

/// Run a detectors command.
pub fn run(global: &Global, cmd: DetectorsCmd) -> anyhow::Result<Outcome> {
    let DetectorsCmd::List { format, detectors } = cmd;
    let catalogue = changegate_classify::detector_catalogue();
    if detectors {
        match format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&catalogue)?),
            Format::Text | Format::Markdown => {
                let mut t = Table::new();
                t.load_style(UTF8_FULL_CONDENSED)
                    .set_header(["detector", "facets", "description"]);
                for d in &catalogue {
                    t.add_row([
                        d.id.to_string(),
                        d.facets
                            .iter()
                            .map(|f| f.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        d.description.to_string(),
                    ]);
                }
                println!("{t}");
            }
        }
        return Ok(Outcome::Ok);
    }
    let policy = policy(global)?;
    let rows: Vec<serde_json::Value> = changegate_policy::facets::all()
        .map(|f| {
            let req = policy.facet_requirement(f.code);
            let by: Vec<&str> = catalogue
                .iter()
                .filter(|d| d.facets.contains(&f.facet))
                .map(|d| d.id)
                .collect();
            serde_json::json!({
                "facet": f.code,
                "family": f.family,
                "description": f.description,
                "category": req.as_ref().map(|r| r.category),
                "roles": req.as_ref().map(|r| r.roles.clone()).unwrap_or_default(),
                "detectors": by,
            })
        })
        .collect();
    let join = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Text | Format::Markdown => {
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED).set_header([
                "facet",
                "family",
                "category",
                "roles",
                "detectors",
                "description",
            ]);
            for r in &rows {
                let detectors = join(&r["detectors"]);
                t.add_row([
                    r["facet"].as_str().unwrap_or_default().to_string(),
                    r["family"].as_str().unwrap_or_default().to_string(),
                    r["category"]
                        .as_u64()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "unmapped".into()),
                    join(&r["roles"]),
                    if detectors.is_empty() {
                        "none yet".into()
                    } else {
                        detectors
                    },
                    r["description"].as_str().unwrap_or_default().to_string(),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(Outcome::Ok)
}
