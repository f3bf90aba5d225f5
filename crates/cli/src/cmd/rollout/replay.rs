//! `rollout replay`: the triggers over recorded or historical metrics.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use askama::Template;
use changegate_policy::Dur;
use changegate_rollout::ReasonCode;
use changegate_rollout::engine::{Verdict, fmt_dur};
use changegate_rollout::prom::Prometheus;
use changegate_rollout::recorded::Recorded;
use changegate_rollout::replay::{ReplayOptions, ReplayReport, ReplayVerdict, replay};
use changegate_rollout::runner::fetch_history;
use changegate_rollout::spec::GuardSpec;
use jiff::Timestamp;

use super::{PlanArgs, spec_or};
use crate::common::{Format, Global, Outcome};

/// `rollout replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Recorded metrics, JSON lines of {t, metric, value} (docs/rollout.md).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "prometheus",
        required_unless_present = "prometheus"
    )]
    pub metrics: Option<PathBuf>,
    /// Read history from this Prometheus (needs --from and --to).
    #[arg(long, value_name = "URL", requires_all = ["from", "to"])]
    pub prometheus: Option<String>,
    /// The rollout starts here (RFC 3339). Default: first recorded sample.
    #[arg(long)]
    pub from: Option<Timestamp>,
    /// Last evaluation (RFC 3339). Default: last recorded sample.
    #[arg(long)]
    pub to: Option<Timestamp>,
    /// Evaluation interval.
    #[arg(long, default_value = "10s")]
    pub interval: Dur,
    /// How old a sample may be and still count.
    #[arg(long, default_value = "5m")]
    pub lookback: Dur,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub(super) async fn run(global: &Global, a: ReplayArgs) -> anyhow::Result<Outcome> {
    let spec = spec_or(global, &a.plan, Some("standard"))?;
    let interval = a.interval.get();
    let (rec, from, to) = match (&a.metrics, &a.prometheus) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let rec = Recorded::parse(&text).with_context(|| file.display().to_string())?;
            let Some((first, last)) = rec.span() else {
                bail!("{} has no samples", file.display())
            };
            (rec, a.from.unwrap_or(first), a.to.unwrap_or(last))
        }
        (None, Some(url)) => {
            let (Some(from), Some(to)) = (a.from, a.to) else {
                bail!("--prometheus needs --from and --to")
            };
            let prom = Prometheus::new(url, Duration::from_secs(30))?;
            let rec = fetch_history(&prom, &spec, &a.plan.selector, from, to, interval).await?;
            (rec, from, to)
        }
        (None, None) => bail!("give --metrics FILE or --prometheus URL"),
    };
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let report = replay(
        &spec,
        &rec,
        ReplayOptions {
            from,
            to,
            interval,
            lookback: a.lookback.get(),
        },
    );
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        _ => print!("{}", replay_text(&spec, &report)?),
    }
    Ok(if report.verdict == ReplayVerdict::Complete {
        Outcome::Ok
    } else {
        Outcome::Denied
    })
}

/// The replay for people (`templates/rollout/replay.txt`).
fn replay_text(spec: &GuardSpec, r: &ReplayReport) -> anyhow::Result<String> {
    let n = spec.plan.steps.len();
    let rows = r
        .timeline
        .iter()
        .map(|d| {
            let step = match (d.step, d.weight) {
                (Some(i), Some(w)) => format!("step {}/{n} {w:>3}%", i + 1),
                _ => "not started ".into(),
            };
            let verdict = match d.verdict {
                Verdict::Rollback => "ROLLBACK".to_string(),
                v => format!("{v:?}").to_lowercase(),
            };
            TimelineRow {
                head: format!("{}  {verdict:<8}  {step}", d.at),
                indent: " ".repeat(d.at.to_string().len() + 26),
                reasons: d
                    .reasons
                    .iter()
                    .filter(|x| x.code != ReasonCode::Soaking)
                    .map(|x| (x.code, x.message.clone()))
                    .collect(),
            }
        })
        .collect();
    let outcome = match r.verdict {
        ReplayVerdict::Complete => "would have COMPLETED",
        ReplayVerdict::Rollback => "would have ROLLED BACK",
        ReplayVerdict::Abort => "would never have started (no baseline)",
        ReplayVerdict::Incomplete => "data ended before the plan completed; no rollback",
    };
    Ok(ReplayText {
        r,
        interval: fmt_dur(r.options.interval),
        lookback: fmt_dur(r.options.lookback),
        rows,
        outcome,
    }
    .render()?)
}

/// `rollout replay --format text`.
#[derive(Template)]
#[template(path = "rollout/replay.txt")]
struct ReplayText<'a> {
    r: &'a ReplayReport,
    interval: String,
    lookback: String,
    rows: Vec<TimelineRow>,
    outcome: &'static str,
}

/// One evaluation of the timeline.
struct TimelineRow {
    /// Time, verdict and step, aligned.
    head: String,
    /// As wide as `head`, for the reasons after the first.
    indent: String,
    /// The reasons, without `soaking` (the row says so when nothing else happened).
    reasons: Vec<(ReasonCode, String)>,
}

#[cfg(test)]
mod tests {
    use changegate_rollout::spec::{GuardSettings, resolve};

    use super::*;

    #[test]
    fn the_recorded_incident_renders_as_before() {
        let text = include_str!("../../../../rollout/testdata/incident-2026-03-03-checkout.jsonl");
        let rec = Recorded::parse(text).unwrap();
        let (from, to) = rec.span().unwrap();
        let policy = changegate_policy::load_default().policy;
        let spec = resolve(&policy, Some("standard"), None, &GuardSettings::default()).unwrap();
        let report = replay(
            &spec,
            &rec,
            ReplayOptions {
                from,
                to,
                interval: jiff::SignedDuration::from_secs(10),
                lookback: jiff::SignedDuration::from_mins(5),
            },
        );
        insta::assert_snapshot!("replay-incident.txt", replay_text(&spec, &report).unwrap());
    }
}
