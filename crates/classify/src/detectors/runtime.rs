//! `runtime`: runtime and platform versions outside Kubernetes: Dockerfile base images
//! (`FROM node:18` → `FROM node:20`), `.nvmrc` and `.node-version`. A major change of a runtime is
//! `runtime-upgrade`, of a PostgreSQL image `database-engine-upgrade`. (`engines.node` in
//! package.json is read by `deps-npm`.)
//!
//! Dockerfiles are compared instruction by instruction (continuation lines joined, comments
//! dropped): the file is explained only when the only changed instructions are `FROM` lines this
//! detector understands; any other instruction change leaves it `unclassified`.

use changegate_policy::facets::FacetCode;

use crate::detectors::infra::k8s::image_change;
use crate::facet::{evidence_at, facet};
use crate::util::{file_name, leading_major, texts};
use crate::{Change, Detector, Finding, Side};

/// The runtime version detector.
pub struct Runtime;

impl Detector for Runtime {
    fn id(&self) -> &'static str {
        "runtime"
    }
    fn description(&self) -> &'static str {
        "Runtime upgrades: Dockerfile FROM images (Node.js, PostgreSQL, …), .nvmrc, .node-version"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[
            FacetCode::RuntimeUpgrade,
            FacetCode::DatabaseEngineUpgrade,
            FacetCode::DocsOnly,
        ]
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let mut out = Finding::default();
        for f in change.files {
            let name = file_name(&f.path);
            let docker = name == "Dockerfile"
                || name.starts_with("Dockerfile.")
                || name.ends_with(".Dockerfile");
            let nvm = name == ".nvmrc" || name == ".node-version";
            if !(docker || nvm) || change.is_binary(f) {
                continue;
            }
            let Ok(t) = texts(change.contents, f) else {
                continue;
            };
            let (Some(b), Some(h)) = (t.base, t.head) else {
                continue;
            };
            if nvm {
                let (bv, hv) = (b.trim(), h.trim());
                if let (Some(bm), Some(hm)) = (leading_major(bv), leading_major(hv))
                    && bm != hm
                {
                    out.facets.push(facet(
                        self.id(),
                        FacetCode::RuntimeUpgrade,
                        format!("Node.js {bv} → {hv} ({})", f.path),
                        vec![evidence_at(&f.path, Side::Head, Some(&h), &[hv])],
                    ));
                    out.explained.insert(f.path.clone());
                }
                continue;
            }
            let (bi, hi) = (instructions(&b), instructions(&h));
            if bi == hi {
                out.facets.push(facet(
                    self.id(),
                    FacetCode::DocsOnly,
                    format!("{}: comments or formatting only", f.path),
                    vec![evidence_at(&f.path, Side::Head, None, &[])],
                ));
                out.explained.insert(f.path.clone());
                continue;
            }
            let froms = |v: &[String]| -> Vec<String> {
                v.iter().filter(|i| is_from(i)).cloned().collect()
            };
            let rest = |v: &[String]| -> Vec<String> {
                v.iter().filter(|i| !is_from(i)).cloned().collect()
            };
            let (bf, hf) = (froms(&bi), froms(&hi));
            let mut understood = rest(&bi) == rest(&hi) && bf.len() == hf.len();
            for (x, y) in bf.iter().zip(&hf) {
                if x == y {
                    continue;
                }
                match image_change(&from_image(x), &from_image(y)) {
                    Some((kind, details)) => out.facets.push(facet(
                        self.id(),
                        kind,
                        format!("{details} ({})", f.path),
                        vec![evidence_at(
                            &f.path,
                            Side::Head,
                            Some(&h),
                            &["FROM", &from_image(y)],
                        )],
                    )),
                    None => understood = false,
                }
            }
            if understood {
                out.explained.insert(f.path.clone());
            }
        }
        out
    }
}

fn is_from(i: &str) -> bool {
    i.len() > 5 && i[..5].eq_ignore_ascii_case("FROM ")
}

/// The image of a `FROM [--platform=…] image [AS name]` instruction.
fn from_image(i: &str) -> String {
    i.split_whitespace()
        .skip(1)
        .find(|t| !t.starts_with("--"))
        .unwrap_or_default()
        .to_string()
}

/// Instructions with continuation lines joined, comments and blank lines dropped, whitespace
/// collapsed.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(x) = t.strip_suffix('\\') {
            cur.push_str(x);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let norm: Vec<&str> = cur.split_whitespace().collect();
        if !norm.is_empty() {
            out.push(norm.join(" "));
        }
        cur.clear();
    }
    if !cur.trim().is_empty() {
        out.push(cur.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out
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
            &Runtime,
            &Change {
                files: &files,
                contents: &c,
                settings: &p.classify,
                parses: None,
            },
        )
    }

    #[test]
    fn dockerfile_node_major() {
        let d = "FROM node:18-alpine AS build\nRUN npm ci \\\n  --omit=dev\nCMD [\"node\", \"dist/main.js\"]\n";
        let f = run("Dockerfile", d, &d.replace("node:18", "node:20"));
        assert_eq!(f.facets[0].kind, "runtime-upgrade");
        assert_eq!(f.facets[0].evidence[0].line, Some(1));
        assert!(f.explained.contains("Dockerfile"));
        let g = run("Dockerfile", d, &d.replace("npm ci", "npm install"));
        assert!(g.facets.is_empty() && g.explained.is_empty());
        let h = run("Dockerfile", d, &format!("# build\n{d}"));
        assert_eq!(h.facets[0].kind, "docs-only");
    }

    #[test]
    fn postgres_and_nvmrc() {
        let f = run("db/Dockerfile", "FROM postgres:14\n", "FROM postgres:15\n");
        assert_eq!(f.facets[0].kind, "database-engine-upgrade");
        let n = run(".nvmrc", "18\n", "20\n");
        assert_eq!(n.facets[0].kind, "runtime-upgrade");
        assert!(run(".nvmrc", "20.1\n", "20.2\n").explained.is_empty());
    }
}
