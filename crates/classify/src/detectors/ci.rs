//! `ci`: CI and bot configuration (`classify.ci_paths`: GitHub Actions workflows, Dependabot,
//! Renovate, GitLab CI, CircleCI).
//!
//! A changed workflow whose base or head version mentions one of `classify.deploy_markers`
//! (`kubectl`, `helm upgrade`, `environment: production`, `deploy`, …) changes how production
//! deploys: `deploy-config-changed`. Any other CI or bot file changes only what runs in CI or which
//! update pull requests are opened (each of which is classified on its own):
//! `ci-config-changed`. The seed maps them to category 2 (SRE Lead) and 1; both are policy rules.
//! Markers are matched case-insensitively on the text, so a job merely named `deploy-docs` counts
//! as deploying: the reading errs towards review.

use changegate_policy::facets::FacetCode;

use crate::facet::{evidence_line, facet};
use crate::util::{first_diff_line, globset, texts};
use crate::{Change, Detector, Finding, Side};

/// The CI and bot configuration detector.
pub struct Ci;

impl Detector for Ci {
    fn id(&self) -> &'static str {
        "ci"
    }
    fn description(&self) -> &'static str {
        "CI and bot configuration (policy classify.ci_paths): deploy-config-changed when a workflow deploys (classify.deploy_markers), else ci-config-changed"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[FacetCode::CiConfigChanged, FacetCode::DeployConfigChanged]
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let globs = globset(&change.settings.ci_paths);
        let markers: Vec<String> = change
            .settings
            .deploy_markers
            .iter()
            .map(|m| m.to_ascii_lowercase())
            .collect();
        let mut out = Finding::default();
        for f in change.files {
            if !(globs.is_match(&f.path) || globs.is_match(f.base_path())) || change.is_binary(f) {
                continue;
            }
            let Ok(t) = texts(change.contents, f) else {
                continue;
            };
            let (b, h) = (t.base.unwrap_or_default(), t.head.unwrap_or_default());
            let workflow = !is_bot(&f.path);
            let marker = workflow
                .then(|| {
                    markers.iter().find(|m| {
                        b.to_ascii_lowercase().contains(m.as_str())
                            || h.to_ascii_lowercase().contains(m.as_str())
                    })
                })
                .flatten();
            let (side, text) = if h.is_empty() {
                (Side::Base, &b)
            } else {
                (Side::Head, &h)
            };
            let line = first_diff_line(&b, &h);
            let ev = vec![evidence_line(&f.path, side, Some(text), Some(line))];
            let fc = match marker {
                Some(m) => facet(
                    self.id(),
                    FacetCode::DeployConfigChanged,
                    format!("{}: workflow that deploys changed (mentions `{m}`)", f.path),
                    ev,
                ),
                None => facet(
                    self.id(),
                    FacetCode::CiConfigChanged,
                    format!(
                        "{}: {} changed",
                        f.path,
                        if workflow {
                            "CI workflow (no deployment)"
                        } else {
                            "dependency-bot configuration"
                        }
                    ),
                    ev,
                ),
            };
            out.facets.push(fc);
            out.explained.insert(f.path.clone());
        }
        out
    }
}

fn is_bot(path: &str) -> bool {
    let name = crate::util::file_name(path);
    name.starts_with("dependabot.")
        || name.starts_with("renovate")
        || name.starts_with(".renovaterc")
}
