//! `env`: environment variables declared in env files (`classify.env_files` globs: `.env`,
//! `.env.*`, which covers `.env.example`, `.env.production`, …). Kubernetes and Compose env
//! entries are handled by `infra-k8s`. An env file added declares each of its variables (`env-added`);
//! one deleted removes each (`env-removed`).
//!
//! Values are never shown: details and evidence name the variable only (`KEY=…`), since real
//! repositories commit secrets in `.env` files.
//!
//! Each variable added, removed or given a new value is a facet; a new value of a log-level key
//! (`classify.log_level_keys`) is a `log-level` adjustment instead. Comments and blank lines carry
//! no meaning, so a comment-only edit is `docs-only`. The file is always fully explained once
//! read; a file that is not UTF-8 is `unparseable`.

use std::collections::BTreeMap;

use changegate_policy::facets::FacetCode;

use crate::facet::{evidence_at, facet, unparseable};
use crate::util::{globset, texts};
use crate::{Change, Detector, Finding, Side};

/// The env example detector.
pub struct EnvFiles;

impl Detector for EnvFiles {
    fn id(&self) -> &'static str {
        "env"
    }
    fn description(&self) -> &'static str {
        "Environment variables added, removed or changed in env example files (policy classify.env_files)"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[
            FacetCode::EnvAdded,
            FacetCode::EnvRemoved,
            FacetCode::EnvChanged,
            FacetCode::LogLevel,
            FacetCode::DocsOnly,
            FacetCode::Unparseable,
        ]
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let globs = globset(&change.settings.env_files);
        let mut out = Finding::default();
        for f in change.files {
            if !globs.is_match(&f.path) || change.is_binary(f) {
                continue;
            }
            let t = match texts(change.contents, f) {
                Ok(t) => t,
                Err((side, e)) => {
                    out.facets
                        .push(unparseable(self.id(), &f.path, side, "env file", e));
                    out.explained.insert(f.path.clone());
                    continue;
                }
            };
            let (b, h) = (
                parse(t.base.as_deref().unwrap_or("")),
                parse(t.head.as_deref().unwrap_or("")),
            );
            let mut any = false;
            for (k, hv) in &h {
                let ev = || {
                    redact(
                        evidence_at(&f.path, Side::Head, t.head.as_deref(), &[&format!("{k}=")]),
                        k,
                    )
                };
                match b.get(k) {
                    None => out.facets.push(facet(
                        self.id(),
                        FacetCode::EnvAdded,
                        format!("{k} added ({})", f.path),
                        vec![ev()],
                    )),
                    Some(bv) if bv != hv => {
                        let kind = if change.settings.log_level_keys.iter().any(|l| l == k) {
                            FacetCode::LogLevel
                        } else {
                            FacetCode::EnvChanged
                        };
                        out.facets.push(facet(
                            self.id(),
                            kind,
                            format!("{k} value changed ({})", f.path),
                            vec![ev()],
                        ));
                    }
                    Some(_) => continue,
                }
                any = true;
            }
            for k in b.keys().filter(|k| !h.contains_key(*k)) {
                any = true;
                out.facets.push(facet(
                    self.id(),
                    FacetCode::EnvRemoved,
                    format!("{k} removed ({})", f.path),
                    vec![redact(
                        evidence_at(
                            f.base_path(),
                            Side::Base,
                            t.base.as_deref(),
                            &[&format!("{k}=")],
                        ),
                        k,
                    )],
                ));
            }
            if !any {
                out.facets.push(facet(
                    self.id(),
                    FacetCode::DocsOnly,
                    format!("{}: comments only", f.path),
                    vec![evidence_at(&f.path, Side::Head, None, &[])],
                ));
            }
            out.explained.insert(f.path.clone());
        }
        out
    }
}

/// Evidence naming the variable, never its value.
fn redact(mut e: crate::Evidence, key: &str) -> crate::Evidence {
    e.snippet = Some(format!("{key}=…"));
    e
}

/// `KEY=value` lines (optional `export `, quotes stripped, `#` comments ignored).
fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = if (v.starts_with('"') && v.ends_with('"')
            || v.starts_with('\'') && v.ends_with('\''))
            && v.len() >= 2
        {
            &v[1..v.len() - 1]
        } else {
            v.split(" #").next().unwrap_or(v).trim()
        };
        out.insert(k.trim().to_string(), v.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapContents;

    fn kinds(base: &str, head: &str) -> Vec<String> {
        let p = changegate_policy::load_default().policy;
        let c = MapContents::default()
            .with_base(".env.example", base)
            .with_head(".env.example", head);
        let files = c.changed_files();
        let f = crate::detectors::testing::detect(
            &EnvFiles,
            &Change {
                files: &files,
                contents: &c,
                settings: &p.classify,
                parses: None,
            },
        );
        assert!(f.explained.contains(".env.example"));
        let mut k: Vec<String> = f.facets.into_iter().map(|f| f.kind.to_string()).collect();
        k.sort();
        k
    }

    #[test]
    fn added_removed_changed_log_level() {
        assert_eq!(kinds("A=1\n", "A=1\nB=2\n"), vec!["env-added"]);
        assert_eq!(kinds("A=1\nB=2\n", "A=1\n"), vec!["env-removed"]);
        assert_eq!(kinds("A=1\n", "A=\"2\"\n"), vec!["env-changed"]);
        assert_eq!(
            kinds("LOG_LEVEL=info\n", "LOG_LEVEL=debug\n"),
            vec!["log-level"]
        );
        assert_eq!(kinds("A=1\n", "# the A\nexport A='1'\n"), vec!["docs-only"]);
    }

    #[test]
    fn values_are_never_shown() {
        let p = changegate_policy::load_default().policy;
        let c = MapContents::default()
            .with_base(".env", "JWT_SECRET=s3cr3t-base\nOLD=gone-value\n")
            .with_head(".env", "JWT_SECRET=s3cr3t-head\nNEW=new-value\n");
        let files = c.changed_files();
        let f = crate::detectors::testing::detect(
            &EnvFiles,
            &Change {
                files: &files,
                contents: &c,
                settings: &p.classify,
                parses: None,
            },
        );
        let shown = format!("{:?}", f.facets);
        for secret in ["s3cr3t", "gone-value", "new-value"] {
            assert!(!shown.contains(secret), "{secret} shown: {shown}");
        }
        assert!(shown.contains("JWT_SECRET=…"), "{shown}");
    }
}
