//! `cost`: monthly cost changes, from Infracost JSON reports kept in the repository.
//!
//! A cost is not in a diff of Terraform or Kubernetes files; teams that budget infrastructure
//! keep the output of `infracost breakdown --format json` (or `infracost diff --format json`)
//! beside it and update it with the change. For every changed file matching
//! `classify.cost_report_paths`, the report's `totalMonthlyCost` is compared between base and
//! head (a report new in head counts from its `pastTotalMonthlyCost`, else from zero). An
//! increase above the `threshold_usd_per_month` of the policy row listing `cost-increase`
//! ("Cost increase >$500/month") is a `cost-increase` facet; a smaller change or a decrease is
//! explained and adds nothing.
//!
//! Fail closed: a report that does not parse, has no total, is not in USD (the policy's
//! threshold is), or was deleted is not taken as "within budget".

use changegate_policy::facets::FacetCode;
use serde::Deserialize;

use crate::facet::{evidence_at, facet, unparseable};
use crate::util::{globset, text_at};
use crate::{Change, Detector, Finding, Side};

/// The Infracost report detector.
pub struct Cost;

impl Detector for Cost {
    fn id(&self) -> &'static str {
        "cost"
    }
    fn description(&self) -> &'static str {
        "Infracost JSON reports (policy classify.cost_report_paths): monthly cost increase above the cost-increase row's threshold"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[FacetCode::CostIncrease, FacetCode::Unparseable]
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let globs = globset(&change.settings.cost_report_paths);
        let mut out = Finding::default();
        for f in change.files {
            // A report renamed to or from another name is not compared: left unexplained (a
            // file renamed away from a report path is no longer a report, and a file renamed
            // into one has no report as its base).
            if !globs.is_match(&f.path) || !globs.is_match(f.base_path()) || change.is_binary(f) {
                continue;
            }
            let read = |side: Side, path: &str| -> Option<Result<Report, String>> {
                let text = text_at(change.contents, side, path)?;
                Some(text.and_then(|t| Report::parse(&t).map(|r| r.with_text(t))))
            };
            let (base, head) = (read(Side::Base, f.base_path()), read(Side::Head, &f.path));
            let mut broken = false;
            for (side, path, r) in [
                (Side::Base, f.base_path(), &base),
                (Side::Head, f.path.as_str(), &head),
            ] {
                if let Some(Err(e)) = r {
                    out.facets
                        .push(unparseable(self.id(), path, side, "Infracost report", e));
                    broken = true;
                }
            }
            if broken {
                out.explained.insert(f.path.clone());
                continue;
            }
            // A deleted report proves nothing about the cost of what remains: not explained.
            let Some(Ok(head)) = head else { continue };
            let before = match &base {
                Some(Ok(b)) => b.total,
                _ => head.past.unwrap_or(0.0),
            };
            let increase = head.total - before;
            // No threshold, or one that is not a usable amount: any increase counts.
            let threshold = change
                .settings
                .cost_threshold_usd_per_month
                .filter(|t| t.is_finite() && *t >= 0.0)
                .unwrap_or(0.0);
            if increase > threshold {
                let projects = if head.projects.is_empty() {
                    String::new()
                } else {
                    format!("; projects: {}", head.projects.join(", "))
                };
                out.facets.push(facet(
                    self.id(),
                    FacetCode::CostIncrease,
                    format!(
                        "monthly cost +${increase:.2} (${before:.2} → ${:.2} USD, over the ${threshold:.2} threshold){projects} ({})",
                        head.total, f.path
                    ),
                    vec![evidence_at(
                        &f.path,
                        Side::Head,
                        Some(&head.text),
                        &["\"totalMonthlyCost\""],
                    )],
                ));
            }
            out.explained.insert(f.path.clone());
        }
        out
    }
}

/// What is read of a report.
#[derive(Debug)]
struct Report {
    total: f64,
    past: Option<f64>,
    projects: Vec<String>,
    text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReport {
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    total_monthly_cost: Option<Amount>,
    #[serde(default)]
    past_total_monthly_cost: Option<Amount>,
    #[serde(default)]
    projects: Vec<RawProject>,
}

#[derive(Deserialize)]
struct RawProject {
    #[serde(default)]
    name: Option<String>,
}

/// Infracost writes amounts as decimal strings ("1234.5"); numbers are accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Amount {
    Text(String),
    Number(f64),
}

impl Amount {
    fn value(&self, what: &str) -> Result<f64, String> {
        let v = match self {
            Amount::Number(n) => *n,
            Amount::Text(t) => t
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{what} `{t}` is not a number"))?,
        };
        if !v.is_finite() {
            Err(format!("{what} is not a finite amount"))
        } else if v < 0.0 {
            Err(format!("{what} {v} is negative"))
        } else {
            Ok(v)
        }
    }
}

impl Report {
    fn parse(text: &str) -> Result<Report, String> {
        let raw: RawReport = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match raw.currency.as_deref() {
            None | Some("USD") => {}
            Some(c) => {
                return Err(format!(
                    "currency {c}: the policy's cost threshold is in USD"
                ));
            }
        }
        let total = raw
            .total_monthly_cost
            .ok_or("no totalMonthlyCost (an unknown cost cannot be shown to be within budget)")?
            .value("totalMonthlyCost")?;
        let past = raw
            .past_total_monthly_cost
            .map(|a| a.value("pastTotalMonthlyCost"))
            .transpose()?;
        Ok(Report {
            total,
            past,
            projects: raw.projects.into_iter().filter_map(|p| p.name).collect(),
            text: String::new(),
        })
    }

    fn with_text(mut self, text: String) -> Report {
        self.text = text;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapContents;

    fn report(total: &str) -> String {
        format!(
            "{{\n  \"version\": \"0.2\",\n  \"currency\": \"USD\",\n  \"projects\": [{{\"name\": \"infra/prod\"}}],\n  \"totalHourlyCost\": \"1\",\n  \"totalMonthlyCost\": {total}\n}}\n"
        )
    }

    fn run(c: &MapContents, threshold: Option<f64>) -> Finding {
        run_on(c, &c.changed_files(), threshold)
    }

    fn run_on(c: &MapContents, files: &[crate::ChangedFile], threshold: Option<f64>) -> Finding {
        let mut settings = changegate_policy::load_default().policy.classify;
        settings.cost_threshold_usd_per_month = threshold;
        crate::detectors::testing::detect(
            &Cost,
            &Change {
                files,
                contents: c,
                settings: &settings,
                parses: None,
            },
        )
    }

    fn kinds(f: &Finding) -> Vec<&str> {
        f.facets.iter().map(|f| f.kind.as_str()).collect()
    }

    #[test]
    fn increase_over_the_threshold_is_cost_increase_with_evidence() {
        let c = MapContents::default()
            .with_base("infra/infracost.json", report("\"1200.00\""))
            .with_head("infra/infracost.json", report("\"1800.50\""));
        let f = run(&c, Some(500.0));
        assert_eq!(kinds(&f), vec!["cost-increase"]);
        assert_eq!(
            f.facets[0].details,
            "monthly cost +$600.50 ($1200.00 → $1800.50 USD, over the $500.00 threshold); projects: infra/prod (infra/infracost.json)"
        );
        assert_eq!(f.facets[0].evidence[0].line, Some(6));
        assert!(f.explained.contains("infra/infracost.json"));
    }

    #[test]
    fn increase_at_or_under_the_threshold_and_decreases_add_nothing() {
        for (b, h) in [("1200", "1700"), ("1200", "1250.5"), ("1800", "100")] {
            let c = MapContents::default()
                .with_base("infracost.json", report(&format!("\"{b}\"")))
                .with_head("infracost.json", report(&format!("\"{h}\"")));
            let f = run(&c, Some(500.0));
            assert!(f.facets.is_empty(), "{b} → {h}");
            assert!(f.explained.contains("infracost.json"));
        }
    }

    #[test]
    fn new_report_counts_from_its_past_total_or_from_zero() {
        let c = MapContents::default().with_head("infracost-diff.json", report("\"900\""));
        assert_eq!(kinds(&run(&c, Some(500.0))), vec!["cost-increase"]);
        let diff = report("\"900\"").replace(
            "\"totalMonthlyCost\"",
            "\"pastTotalMonthlyCost\": \"600\",\n  \"totalMonthlyCost\"",
        );
        let c = MapContents::default().with_head("infracost-diff.json", diff);
        assert!(run(&c, Some(500.0)).facets.is_empty());
    }

    #[test]
    fn without_a_threshold_any_increase_counts() {
        let c = MapContents::default()
            .with_base("infracost.json", report("10"))
            .with_head("infracost.json", report("10.01"));
        assert_eq!(kinds(&run(&c, None)), vec!["cost-increase"]);
    }

    #[test]
    fn unknown_or_foreign_costs_fail_closed() {
        let cases = [
            ("{", "EOF"),
            ("{\"currency\": \"USD\"}", "no totalMonthlyCost"),
            (
                "{\"currency\": \"USD\", \"totalMonthlyCost\": null}",
                "no totalMonthlyCost",
            ),
            (
                "{\"currency\": \"USD\", \"totalMonthlyCost\": \"n/a\"}",
                "not a number",
            ),
            (
                "{\"currency\": \"EUR\", \"totalMonthlyCost\": \"10\"}",
                "currency EUR",
            ),
        ];
        for (head, why) in cases {
            let c = MapContents::default()
                .with_base("infracost.json", report("\"10\""))
                .with_head("infracost.json", head);
            let f = run(&c, Some(500.0));
            assert_eq!(kinds(&f), vec!["unparseable"], "{head}");
            assert!(
                f.facets[0].evidence[0]
                    .snippet
                    .as_deref()
                    .is_some_and(|s| s.contains(why)),
                "{head}: {:?}",
                f.facets[0].evidence
            );
        }
        // A deleted report is left unexplained (unclassified downstream).
        let c = MapContents::default().with_base("infracost.json", report("\"10\""));
        let f = run(&c, Some(500.0));
        assert!(f.facets.is_empty() && f.explained.is_empty());
    }

    #[test]
    fn negative_amounts_fail_closed_and_unusable_thresholds_count_any_increase() {
        for head in [
            "{\"currency\": \"USD\", \"totalMonthlyCost\": \"-5\"}",
            "{\"currency\": \"USD\", \"pastTotalMonthlyCost\": \"-900\", \"totalMonthlyCost\": \"10\"}",
        ] {
            let c = MapContents::default().with_head("infracost.json", head);
            let f = run(&c, Some(500.0));
            assert_eq!(kinds(&f), vec!["unparseable"], "{head}");
        }
        for t in [f64::NAN, f64::INFINITY, -1.0] {
            let c = MapContents::default()
                .with_base("infracost.json", report("10"))
                .with_head("infracost.json", report("11"));
            assert_eq!(kinds(&run(&c, Some(t))), vec!["cost-increase"], "{t}");
        }
    }

    #[test]
    fn renames_to_or_from_a_report_path_are_not_explained() {
        for (old, path) in [
            ("infracost.json", "deploy/config.json"),
            ("deploy/config.json", "infracost.json"),
        ] {
            let c = MapContents::default()
                .with_base(old, report("\"10\""))
                .with_head(path, report("\"10\""));
            let files = vec![crate::ChangedFile {
                path: path.into(),
                old_path: Some(old.into()),
                status: crate::FileStatus::Renamed,
                submodule: false,
            }];
            let f = run_on(&c, &files, Some(500.0));
            assert!(
                f.facets.is_empty() && f.explained.is_empty(),
                "{old} → {path}: {f:?}"
            );
        }
    }

    #[test]
    fn other_json_files_are_not_reports() {
        let c = MapContents::default()
            .with_base("config/app.json", report("\"1\""))
            .with_head("config/app.json", report("\"9999\""));
        let f = run(&c, Some(500.0));
        assert!(f.facets.is_empty() && f.explained.is_empty());
    }
}
