//! `config`: feature-flag configuration and log-level-only changes in JSON/TOML config.
//!
//! Files matching `classify.feature_flag_paths` are flag configuration: once they parse, any
//! change to them is `feature-flag-config` (a flag flip needs no code deploy); a flag file that
//! does not parse is `unparseable`. Other JSON and TOML files are explained only when every
//! changed key is a log-level key (`classify.log_level_keys`, dotted keys match nested tables) →
//! `log-level`. YAML outside flag files is read by `infra-k8s`, manifests by the deps detectors.

use changegate_policy::facets::FacetCode;

use crate::facet::{evidence_at, facet, unparseable};
use crate::parse::structured::{Format, Leaves, contains_seq, diff, flatten_docs, parse};
use crate::util::{file_name, globset, text_at};
use crate::{Change, ChangedFile, Detector, Finding, Side};

/// The configuration detector.
pub struct Config;

const NOT_CONFIG: &[&str] = &[
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "Cargo.toml",
];

impl Detector for Config {
    fn id(&self) -> &'static str {
        "config"
    }
    fn description(&self) -> &'static str {
        "Feature-flag files (policy classify.feature_flag_paths) and log-level-only edits of JSON/TOML config (classify.log_level_keys)"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[
            FacetCode::FeatureFlagConfig,
            FacetCode::LogLevel,
            FacetCode::DocsOnly,
            FacetCode::Unparseable,
        ]
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let flags = globset(&change.settings.feature_flag_paths);
        let logs: Vec<Vec<&str>> = change
            .settings
            .log_level_keys
            .iter()
            .map(|k| k.split('.').collect())
            .collect();
        let mut out = Finding::default();
        for f in change.files {
            let is_flag = flags.is_match(&f.path);
            let name = file_name(&f.path);
            let format = Format::of(&f.path);
            let plain_config = matches!(format, Some(Format::Json | Format::Toml))
                && !NOT_CONFIG.contains(&name)
                && !name.starts_with("openapi")
                && !name.starts_with("swagger");
            if !(is_flag || plain_config) || change.is_binary(f) {
                continue;
            }
            let Some(leaves) = self.load(change, f, format, is_flag, &mut out) else {
                continue;
            };
            let [base, head] = &leaves;
            let changes = diff(base, head);
            let head_text = text_at(change.contents, Side::Head, &f.path).and_then(Result::ok);
            if is_flag {
                let keys: Vec<String> = changes.iter().take(8).map(|c| c.dotted()).collect();
                let more = if changes.len() > 8 {
                    format!(", … {} more", changes.len() - 8)
                } else {
                    String::new()
                };
                out.facets.push(facet(
                    self.id(),
                    FacetCode::FeatureFlagConfig,
                    format!(
                        "feature flags changed in {}: {}{more}",
                        f.path,
                        keys.join(", ")
                    ),
                    changes
                        .iter()
                        .map(|c| {
                            let v = c.head.as_deref().unwrap_or_default();
                            evidence_at(&f.path, Side::Head, head_text.as_deref(), &[c.last(), v])
                        })
                        .collect(),
                ));
                out.explained.insert(f.path.clone());
                continue;
            }
            if changes.is_empty() {
                if base.is_empty() && head.is_empty() {
                    continue;
                }
                out.facets.push(facet(
                    self.id(),
                    FacetCode::DocsOnly,
                    format!("{}: formatting only (same values)", f.path),
                    vec![evidence_at(&f.path, Side::Head, None, &[])],
                ));
                out.explained.insert(f.path.clone());
                continue;
            }
            let all_log = changes.iter().all(|c| {
                c.base.is_some()
                    && c.head.is_some()
                    && logs.iter().any(|k| contains_seq(&c.path, k))
            });
            if all_log {
                for c in &changes {
                    out.facets.push(facet(
                        self.id(),
                        FacetCode::LogLevel,
                        format!(
                            "{} {} → {} ({})",
                            c.dotted(),
                            c.base.as_deref().unwrap_or_default(),
                            c.head.as_deref().unwrap_or_default(),
                            f.path
                        ),
                        vec![evidence_at(
                            &f.path,
                            Side::Head,
                            head_text.as_deref(),
                            &[c.last(), c.head.as_deref().unwrap_or_default()],
                        )],
                    ));
                }
                out.explained.insert(f.path.clone());
            }
        }
        out
    }
}

impl Config {
    fn load(
        &self,
        change: &Change<'_>,
        f: &ChangedFile,
        format: Option<Format>,
        is_flag: bool,
        out: &mut Finding,
    ) -> Option<[Leaves; 2]> {
        let mut leaves = [Leaves::new(), Leaves::new()];
        for (i, side) in [Side::Base, Side::Head].into_iter().enumerate() {
            let path = if side == Side::Base {
                f.base_path()
            } else {
                &f.path
            };
            let Some(text) = text_at(change.contents, side, path) else {
                continue;
            };
            let parsed = text.and_then(|t| match format {
                Some(fmt) => parse(fmt, &t),
                // A flag file in an unknown format: compare it line by line.
                None => Ok(vec![serde_json::Value::Array(
                    t.lines()
                        .map(|l| serde_json::Value::String(l.to_string()))
                        .collect(),
                )]),
            });
            match parsed {
                Ok(d) => leaves[i] = flatten_docs(&d),
                Err(e) if is_flag => {
                    out.facets
                        .push(unparseable(self.id(), path, side, "feature-flag file", e));
                    out.explained.insert(f.path.clone());
                    return None;
                }
                Err(_) => return None,
            }
        }
        Some(leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapContents;

    fn run(path: &str, base: &str, head: &str) -> Finding {
        let p = changegate_policy::load_default().policy;
        let c = MapContents::default()
            .with_base(path, base)
            .with_head(path, head);
        let files = c.changed_files();
        crate::detectors::testing::detect(
            &Config,
            &Change {
                files: &files,
                contents: &c,
                settings: &p.classify,
                parses: None,
            },
        )
    }

    #[test]
    fn flags() {
        let f = run(
            "config/flags.json",
            r#"{"newChat": false}"#,
            r#"{"newChat": true}"#,
        );
        assert_eq!(f.facets[0].kind, "feature-flag-config");
        assert!(f.explained.contains("config/flags.json"));
        let bad = run(
            "config/flags.json",
            r#"{"newChat": false}"#,
            r#"{"newChat": tru"#,
        );
        assert_eq!(bad.facets[0].kind, "unparseable");
    }

    #[test]
    fn log_level_only() {
        let f = run(
            "config/app.json",
            r#"{"logging":{"level":"info"},"port":3000}"#,
            r#"{"logging":{"level":"debug"},"port":3000}"#,
        );
        assert_eq!(f.facets[0].kind, "log-level");
        assert!(f.explained.contains("config/app.json"));
        let g = run(
            "config/app.json",
            r#"{"logLevel":"info","port":3000}"#,
            r#"{"logLevel":"debug","port":3001}"#,
        );
        assert!(g.facets.is_empty() && g.explained.is_empty());
        let t = run(
            "app.toml",
            "log_level = \"info\"\n",
            "log_level = \"warn\"\n",
        );
        assert_eq!(t.facets[0].kind, "log-level");
    }
}
