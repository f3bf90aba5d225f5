//! `rollout triggers`: the plan and the triggers a rollout would enforce, with their PromQL.

use askama::Template;
use changegate_rollout::engine::fmt_dur;
use changegate_rollout::queries;
use changegate_rollout::spec::{Condition, GuardSpec, NoDataPolicy};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::{PlanArgs, spec};
use crate::common::{Format, Global, Outcome};

/// `rollout triggers`.
#[derive(Debug, clap::Args)]
pub struct TriggersArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub(super) fn run(global: &Global, a: TriggersArgs) -> anyhow::Result<Outcome> {
    let spec = spec(global, &a.plan)?;
    let rows: Vec<serde_json::Value> = spec
        .triggers
        .iter()
        .map(|t| {
            serde_json::json!({
                "trigger": t.name,
                "metric": t.metric,
                "kind": t.kind,
                "threshold": t.threshold,
                "unit": t.metric.unit(),
                "window_seconds": t.window.map(|w| w.as_secs()),
                "mode": t.mode,
                "condition": t.condition,
                "no_data": t.no_data,
                "min_traffic": t.min_traffic,
                "query": queries::for_trigger(t, &a.plan.selector, &spec.queries),
            })
        })
        .collect();
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "plan": spec.plan, "category": spec.category, "triggers": rows,
                "traffic_query": queries::traffic(&a.plan.selector, &spec.queries),
            }))?
        );
        return Ok(Outcome::Ok);
    }
    print!("{}", text(&spec, &a.plan.selector)?);
    Ok(Outcome::Ok)
}

/// The plan and its triggers for people.
fn text(spec: &GuardSpec, selector: &str) -> anyhow::Result<String> {
    let steps: Vec<String> = spec
        .plan
        .steps
        .iter()
        .map(|s| {
            let soak = if s.soak.is_zero() {
                String::new()
            } else {
                format!(" (soak {})", fmt_dur(s.soak))
            };
            format!("{}% {}{soak}", s.weight, s.environment)
        })
        .collect();
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "trigger",
            "fires when",
            "condition",
            "no data",
            "mode",
            "query",
        ]);
    for t in &spec.triggers {
        let unit = t.metric.unit();
        let when = match (t.kind, t.window) {
            (changegate_policy::TriggerKind::Relative, _) => {
                format!(
                    "> baseline + {} {unit} (judged at ≥ {} req/s)",
                    t.threshold, t.min_traffic
                )
            }
            (changegate_policy::TriggerKind::Count, Some(w)) => {
                format!("> {} {unit} in {}", t.threshold, fmt_dur(w))
            }
            (changegate_policy::TriggerKind::Sustained, Some(w)) => {
                format!("> {} {unit} for {}", t.threshold, fmt_dur(w))
            }
            _ => format!("> {} {unit}", t.threshold),
        };
        let cond = match t.condition {
            Condition::Consecutive { count } => format!("{count} consecutive"),
            Condition::InWindow { count, window } => format!("{count} in {}", fmt_dur(window)),
        };
        let nd = match t.no_data {
            NoDataPolicy::Hold => "hold".to_string(),
            NoDataPolicy::RollbackAfter { limit } => format!("roll back after {}", fmt_dur(limit)),
        };
        table.add_row([
            t.name.clone(),
            when,
            cond,
            nd,
            format!("{:?}", t.mode).to_lowercase(),
            queries::for_trigger(t, selector, &spec.queries),
        ]);
    }
    let view = TriggersText {
        plan: &spec.plan.name,
        category: spec.category,
        steps: steps.join(" → "),
        monitor: (!spec.plan.monitor_after.is_zero()).then(|| fmt_dur(spec.plan.monitor_after)),
        table,
        traffic: queries::traffic(selector, &spec.queries),
    };
    Ok(view.render()?)
}

/// `rollout triggers --format text` (`templates/rollout/triggers.txt`).
#[derive(Template)]
#[template(path = "rollout/triggers.txt")]
struct TriggersText<'a> {
    plan: &'a str,
    category: u8,
    /// The steps, `5% production (soak 15m 0s) → …`.
    steps: String,
    /// How long the last step is monitored, when it is.
    monitor: Option<String>,
    /// One row per trigger, with its PromQL.
    table: Table,
    traffic: String,
}

#[cfg(test)]
mod tests {
    use changegate_rollout::spec::{GuardSettings, resolve};

    use super::*;

    #[test]
    fn plans_and_triggers_render_as_before() {
        let policy = changegate_policy::load_default().policy;
        for plan in ["standard", "high-risk"] {
            let spec = resolve(&policy, Some(plan), None, &GuardSettings::default()).unwrap();
            insta::assert_snapshot!(
                format!("triggers-{plan}.txt"),
                text(&spec, "service=\"chat\"").unwrap()
            );
        }
    }
}
