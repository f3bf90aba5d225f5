//! `deps-npm`: npm dependencies from `package.json` with `package-lock.json` (v1–v3),
//! `npm-shrinkwrap.json`, `pnpm-lock.yaml` or `yarn.lock` (classic and berry).
//!
//! Versions come from the lockfile when it has the package (what actually ships), else from the
//! lowest version the manifest range allows. `dependencies`, `optionalDependencies` and
//! `peerDependencies` are production; `devDependencies` development. `engines.node` changes of
//! major are runtime upgrades. The package's own `license` and dependency licenses recorded in the
//! lockfile are compared as SPDX expressions. `package.json` is explained only when nothing but
//! these keys changed; lockfiles are explained once parsed.

use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::facets::FacetCode;
use serde_json::Value;

use super::{
    Dep, DirectChange, LockIndex, direct_facet, lenient_version, same_license, transitive_facets,
};
use crate::facet::{evidence_at, facet, unparseable};
use crate::parse::npm_lock::{Lock, parse_lock};
use crate::util::{dir_of, file_name, join, leading_major, text_at};
use crate::{Change, Contents, Detector, Facet, Finding, Side};

/// The npm dependency detector.
pub struct DepsNpm;

const LOCKS: &[&str] = &[
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
];
const PROD: &[&str] = &["dependencies", "optionalDependencies", "peerDependencies"];
/// Packages whose major version is a wire protocol version clients must match.
const PROTOCOL_PACKAGES: &[&str] = &[
    "socket.io",
    "socket.io-client",
    "engine.io",
    "engine.io-client",
    "ws",
    "@grpc/grpc-js",
];
const UNDERSTOOD_KEYS: &[&str] = &[
    "dependencies",
    "optionalDependencies",
    "peerDependencies",
    "devDependencies",
    "license",
];

impl Detector for DepsNpm {
    fn id(&self) -> &'static str {
        "deps-npm"
    }
    fn description(&self) -> &'static str {
        "npm dependencies: package.json with package-lock.json, pnpm-lock.yaml or yarn.lock (semver grade, prod/dev, licenses, engines.node)"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[
            FacetCode::DepPatch,
            FacetCode::DepMinor,
            FacetCode::DepMajor,
            FacetCode::DepAddedProd,
            FacetCode::DepAddedDev,
            FacetCode::DepDevChanged,
            FacetCode::DepRemoved,
            FacetCode::DepLicenseChanged,
            FacetCode::RuntimeUpgrade,
            FacetCode::ProtocolChanged,
            FacetCode::Unparseable,
        ]
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let mut out = Finding::default();
        let dirs: BTreeSet<&str> = change
            .files
            .iter()
            .flat_map(|f| [f.path.as_str(), f.base_path()])
            .filter(|p| file_name(p) == "package.json" || LOCKS.contains(&file_name(p)))
            .filter(|p| !p.contains("node_modules/"))
            .map(dir_of)
            .collect();
        let changed: BTreeSet<&str> = change.files.iter().map(|f| f.path.as_str()).collect();
        for dir in dirs {
            project(
                self.id(),
                change.contents,
                change.settings,
                dir,
                &changed,
                &mut out,
            );
        }
        out
    }
}

struct Manifest {
    json: Value,
    deps: BTreeMap<String, (String, bool)>,
}

fn manifest(text: &str) -> Result<Manifest, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut deps = BTreeMap::new();
    for (section, dev) in PROD
        .iter()
        .map(|s| (*s, false))
        .chain([("devDependencies", true)])
    {
        if let Some(m) = json.get(section).and_then(Value::as_object) {
            for (k, v) in m {
                let spec = v.as_str().unwrap_or_default().to_string();
                // prod wins when a package is listed in both.
                let e = deps.entry(k.clone()).or_insert((spec.clone(), dev));
                if !dev {
                    *e = (spec, false);
                }
            }
        }
    }
    Ok(Manifest { json, deps })
}

fn project(
    id: &str,
    contents: &dyn Contents,
    settings: &changegate_policy::ClassifySettings,
    dir: &str,
    changed: &BTreeSet<&str>,
    out: &mut Finding,
) {
    let pj = join(dir, "package.json");
    let mut manifests: [Option<Manifest>; 2] = [None, None];
    let mut ok = true;
    for (i, side) in [Side::Base, Side::Head].into_iter().enumerate() {
        match text_at(contents, side, &pj) {
            None => {}
            Some(Ok(t)) => match manifest(&t) {
                Ok(m) => manifests[i] = Some(m),
                Err(e) => {
                    out.facets
                        .push(unparseable(id, &pj, side, "package.json", e));
                    ok = false;
                }
            },
            Some(Err(e)) => {
                out.facets
                    .push(unparseable(id, &pj, side, "package.json", e));
                ok = false;
            }
        }
    }
    let mut locks: [Option<Lock>; 2] = [None, None];
    let mut lock_path = None;
    for name in LOCKS {
        let p = join(dir, name);
        // Both sides at once: a big lockfile is the longest single job of a classification.
        let parse = |i: usize, side: Side| -> Option<Result<Lock, String>> {
            if locks[i].is_some() {
                return None;
            }
            Some(text_at(contents, side, &p)?.and_then(|t| parse_lock(name, &t)))
        };
        let (base, head) = rayon::join(|| parse(0, Side::Base), || parse(1, Side::Head));
        for (i, side, parsed) in [(0, Side::Base, base), (1, Side::Head, head)] {
            let Some(parsed) = parsed else {
                continue;
            };
            match parsed {
                Ok(l) => {
                    locks[i] = Some(l);
                    lock_path.get_or_insert_with(|| p.clone());
                }
                Err(e) => {
                    out.facets.push(unparseable(id, &p, side, name, e));
                    ok = false;
                }
            }
        }
        if changed.contains(p.as_str()) && ok {
            out.explained.insert(p.clone());
        }
    }
    if !ok {
        out.explained.insert(pj);
        return;
    }
    let [base_m, head_m] = &manifests;
    let [base_l, head_l] = &locks;
    let head_text = text_at(contents, Side::Head, &pj).and_then(Result::ok);
    let base_text = text_at(contents, Side::Base, &pj).and_then(Result::ok);

    // Direct dependencies.
    let resolve = |m: &Option<Manifest>, l: &Option<Lock>| -> BTreeMap<String, Dep> {
        let mut r = BTreeMap::new();
        if let Some(m) = m {
            for (name, (spec, dev)) in &m.deps {
                let version = l
                    .as_ref()
                    .and_then(|l| l.direct.get(name).cloned())
                    .or_else(|| lenient_version(spec).map(|v| v.to_string()))
                    .unwrap_or_else(|| spec.clone());
                r.insert(name.clone(), Dep { version, dev: *dev });
            }
        }
        r
    };
    let (bd, hd) = (resolve(base_m, base_l), resolve(head_m, head_l));
    let names: BTreeSet<&String> = bd.keys().chain(hd.keys()).collect();
    let spec =
        |m: &Option<Manifest>, name: &str| m.as_ref().and_then(|m| m.deps.get(name).cloned());
    let graded_dev = settings.dev_updates == changegate_policy::DevUpdates::Graded;
    let mut direct_facets: Vec<Facet> = Vec::new();
    for name in &names {
        let (mut b, mut h) = (bd.get(*name).cloned(), hd.get(*name).cloned());
        // A range bump the lockfile does not (yet) show (`^29.2.3` → `^29.2.4`, lockfile
        // unchanged or absent from the commit): graded from the ranges.
        let mut from_ranges = false;
        if let (Some(bb), Some(hh)) = (&b, &h)
            && bb == hh
            && let (Some((bs, bdev)), Some((hs, hdev))) = (spec(base_m, name), spec(head_m, name))
            && bs != hs
        {
            b = Some(Dep {
                version: bs,
                dev: bdev,
            });
            h = Some(Dep {
                version: hs,
                dev: hdev,
            });
            from_ranges = true;
        }
        // `classify.dev_updates = "graded"`: a dev-only update graded as a production one.
        let dev_regraded = graded_dev && matches!((&b, &h), (Some(x), Some(y)) if x.dev && y.dev);
        if dev_regraded {
            for d in [&mut b, &mut h].into_iter().flatten() {
                d.dev = false;
            }
        }
        let (b, h) = (b.as_ref(), h.as_ref());
        let quoted = format!("\"{name}\"");
        let evidence = if h.is_some() {
            evidence_at(&pj, Side::Head, head_text.as_deref(), &[&quoted])
        } else {
            evidence_at(&pj, Side::Base, base_text.as_deref(), &[&quoted])
        };
        if let Some(f) = direct_facet(
            id,
            DirectChange {
                name,
                base: b,
                head: h,
                evidence,
            },
        ) {
            let mut f = f;
            if dev_regraded {
                f.details = f
                    .details
                    .replace(", prod", ", dev (graded: classify.dev_updates)");
            }
            if from_ranges {
                f.details
                    .push_str(" (manifest range; the lockfile does not show it)");
            }
            // A wire protocol library's major version is a protocol change (Socket.IO v4 → v5).
            if f.kind == FacetCode::DepMajor && PROTOCOL_PACKAGES.contains(&name.as_str()) {
                out.facets.push(facet(
                    id,
                    FacetCode::ProtocolChanged,
                    format!(
                        "{name} major upgrade changes the wire protocol: {}",
                        f.details
                    ),
                    f.evidence.clone(),
                ));
            }
            direct_facets.push(f);
        }
    }

    // Lockfile changes of packages that are not direct dependencies.
    if let Some(lp) = &lock_path {
        let empty = LockIndex::default();
        let bi = base_l.as_ref().map(|l| &l.index).unwrap_or(&empty);
        let hi = head_l.as_ref().map(|l| &l.index).unwrap_or(&empty);
        let direct: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
        let transitive = transitive_facets(id, lp, bi, hi, &direct);
        // With the manifest changed in this commit and `classify.transitive = "attribute"`, the
        // transitive moves are what the direct change brought with it: shown as its evidence,
        // graded by it. A transitive production package is attributed only to a production
        // direct change, so a dev-only bump never hides a production change.
        let attribute = settings.transitive == changegate_policy::Transitive::Attribute
            && changed.contains(pj.as_str());
        let is_dev = |k: FacetCode| matches!(k, FacetCode::DepAddedDev | FacetCode::DepDevChanged);
        let rank = |k: FacetCode| match k {
            FacetCode::DepMajor => 6,
            FacetCode::DepAddedProd | FacetCode::DepRemoved => 5,
            FacetCode::DepMinor => 4,
            FacetCode::DepPatch => 3,
            _ => 1,
        };
        for t in transitive {
            let target = if attribute && t.kind != FacetCode::DepLicenseChanged {
                direct_facets
                    .iter_mut()
                    .filter(|d| d.kind != FacetCode::DepLicenseChanged)
                    .filter(|d| is_dev(t.kind) || !is_dev(d.kind))
                    .max_by_key(|d| rank(d.kind))
            } else {
                None
            };
            match target {
                Some(d) => {
                    let n = t.evidence.len();
                    d.details.push_str(&format!(
                        "; with {n} transitive lockfile change(s) attributed to it ({})",
                        t.details
                    ));
                    d.evidence.extend(t.evidence);
                }
                None => out.facets.push(t),
            }
        }
        // Direct dependencies' licenses (transitive_facets skips direct names).
        for name in &direct {
            if let (Some(bl), Some(hl)) = (bi.licenses.get(name), hi.licenses.get(name))
                && !same_license(bl, hl)
            {
                out.facets.push(facet(
                    id,
                    FacetCode::DepLicenseChanged,
                    format!("{name}: license {bl} → {hl}"),
                    vec![crate::Evidence {
                        path: lp.clone(),
                        line: hi.lines.get(name).copied(),
                        side: Side::Head,
                        snippet: Some(format!("license {hl}")),
                    }],
                ));
            }
        }
    }

    out.facets.extend(direct_facets);

    // The manifest itself.
    if let (Some(b), Some(h)) = (base_m, head_m) {
        let mut understood = true;
        let keys: BTreeSet<&String> = b
            .json
            .as_object()
            .into_iter()
            .chain(h.json.as_object())
            .flat_map(|m| m.keys())
            .collect();
        for k in keys {
            let (bv, hv) = (b.json.get(k), h.json.get(k));
            if bv == hv || UNDERSTOOD_KEYS.contains(&k.as_str()) {
                continue;
            }
            if k == "engines" {
                let strip = |v: Option<&Value>| {
                    let mut v = v.cloned().unwrap_or(Value::Null);
                    let node = v.as_object_mut().and_then(|m| m.remove("node"));
                    (v, node.and_then(|n| n.as_str().map(String::from)))
                };
                let ((brest, bn), (hrest, hn)) = (strip(bv), strip(hv));
                let (bm, hm) = (
                    bn.as_deref().and_then(leading_major),
                    hn.as_deref().and_then(leading_major),
                );
                if brest == hrest && bm.is_some() && hm.is_some() && bm != hm {
                    out.facets.push(facet(
                        id,
                        FacetCode::RuntimeUpgrade,
                        format!(
                            "engines.node {} → {} in {pj}",
                            bn.unwrap_or_default(),
                            hn.clone().unwrap_or_default()
                        ),
                        vec![evidence_at(
                            &pj,
                            Side::Head,
                            head_text.as_deref(),
                            &["\"node\""],
                        )],
                    ));
                    continue;
                }
            }
            understood = false;
        }
        let (bl, hl) = (
            b.json.get("license").and_then(Value::as_str),
            h.json.get("license").and_then(Value::as_str),
        );
        if let (Some(bl), Some(hl)) = (bl, hl) {
            if !same_license(bl, hl) {
                out.facets.push(facet(
                    id,
                    FacetCode::DepLicenseChanged,
                    format!("package license {bl} → {hl} ({pj})"),
                    vec![evidence_at(
                        &pj,
                        Side::Head,
                        head_text.as_deref(),
                        &["\"license\""],
                    )],
                ));
            }
        } else if bl != hl {
            understood = false;
        }
        if understood {
            out.explained.insert(pj);
        }
    } else if changed.contains(pj.as_str()) && (base_m.is_some() != head_m.is_some()) {
        // A whole package.json added or removed: its dependencies are graded above, but the new
        // or removed package itself is not understood here.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapContents;

    fn kinds(c: &MapContents) -> (Vec<String>, Finding) {
        let p = changegate_policy::load_default().policy;
        let files = c.changed_files();
        let f = crate::detectors::testing::detect(
            &DepsNpm,
            &Change {
                files: &files,
                contents: c,
                settings: &p.classify,
                parses: None,
            },
        );
        let mut k: Vec<String> = f.facets.iter().map(|f| f.kind.to_string()).collect();
        k.sort();
        (k, f)
    }

    fn lock(pkgs: &[(&str, &str, bool, &str)]) -> String {
        let mut m = serde_json::Map::new();
        m.insert("".into(), serde_json::json!({"name": "svc"}));
        for (n, v, dev, lic) in pkgs {
            m.insert(
                format!("node_modules/{n}"),
                serde_json::json!({"version": v, "dev": dev, "license": lic}),
            );
        }
        serde_json::to_string_pretty(&serde_json::json!({"lockfileVersion": 3, "packages": m}))
            .unwrap()
    }

    #[test]
    fn major_from_lockfile_with_evidence() {
        let c = MapContents::default()
            .with_base("package.json", r#"{"dependencies":{"express":"^4.19.2"}}"#)
            .with_head(
                "package.json",
                "{\n  \"dependencies\": {\n    \"express\": \"^5.0.0\"\n  }\n}",
            )
            .with_base(
                "package-lock.json",
                lock(&[("express", "4.19.2", false, "MIT")]),
            )
            .with_head(
                "package-lock.json",
                lock(&[("express", "5.0.0", false, "MIT")]),
            );
        let (k, f) = kinds(&c);
        assert_eq!(k, vec!["dep-major"]);
        assert_eq!(f.facets[0].details, "express 4.19.2 → 5.0.0 major, prod");
        assert_eq!(f.facets[0].evidence[0].line, Some(3));
        assert!(f.explained.contains("package.json") && f.explained.contains("package-lock.json"));
    }

    #[test]
    fn dev_added_and_transitive_patch_and_license() {
        let c = MapContents::default()
            .with_base("package.json", r#"{"dependencies":{"a":"1.0.0"}}"#)
            .with_head(
                "package.json",
                r#"{"dependencies":{"a":"1.0.0"},"devDependencies":{"jest":"^29.0.0"}}"#,
            )
            .with_base(
                "package-lock.json",
                lock(&[("a", "1.0.0", false, "MIT"), ("b", "2.0.0", false, "MIT")]),
            )
            .with_head(
                "package-lock.json",
                lock(&[
                    ("a", "1.0.0", false, "MIT"),
                    ("b", "2.0.1", false, "GPL-3.0"),
                    ("jest", "29.7.0", true, "MIT"),
                ]),
            );
        let (k, _) = kinds(&c);
        assert_eq!(k, vec!["dep-added-dev", "dep-license-changed", "dep-patch"]);
    }

    #[test]
    fn scripts_change_is_not_explained() {
        let c = MapContents::default()
            .with_base("package.json", r#"{"scripts":{"start":"a"}}"#)
            .with_head("package.json", r#"{"scripts":{"start":"b"}}"#);
        let (k, f) = kinds(&c);
        assert!(k.is_empty());
        assert!(!f.explained.contains("package.json"));
    }

    #[test]
    fn engines_node_major_is_runtime_upgrade_and_own_license() {
        let c = MapContents::default()
            .with_base(
                "package.json",
                r#"{"license":"MIT","engines":{"node":">=18"}}"#,
            )
            .with_head(
                "package.json",
                r#"{"license":"GPL-3.0","engines":{"node":">=20"}}"#,
            );
        let (k, f) = kinds(&c);
        assert_eq!(k, vec!["dep-license-changed", "runtime-upgrade"]);
        assert!(f.explained.contains("package.json"));
    }

    #[test]
    fn broken_lockfile_is_unparseable() {
        let c = MapContents::default()
            .with_base("package.json", r#"{"dependencies":{"a":"1.0.0"}}"#)
            .with_head("package.json", r#"{"dependencies":{"a":"1.0.1"}}"#)
            .with_head("package-lock.json", "{ nope");
        let (k, f) = kinds(&c);
        assert_eq!(k, vec!["unparseable"]);
        assert!(f.facets[0].evidence[0].snippet.is_some());
    }

    #[test]
    fn pnpm_and_yarn() {
        let pnpm = |v: &str| {
            format!(
                "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      express:\n        specifier: ^4.0.0\n        version: {v}\npackages:\n  express@{v}:\n    resolution: {{integrity: x}}\n"
            )
        };
        let c = MapContents::default()
            .with_base("package.json", r#"{"dependencies":{"express":"^4.0.0"}}"#)
            .with_head("package.json", r#"{"dependencies":{"express":"^4.0.0"}}"#)
            .with_base("pnpm-lock.yaml", pnpm("4.18.0"))
            .with_head("pnpm-lock.yaml", pnpm("4.19.0"));
        assert_eq!(kinds(&c).0, vec!["dep-minor"]);
        let yarn = |v: &str| {
            format!(
                "# yarn lockfile v1\n\n\"lodash@^4.17.0\":\n  version \"{v}\"\n  resolved \"x\"\n"
            )
        };
        let y = MapContents::default()
            .with_base("package.json", r#"{"dependencies":{"lodash":"^4.17.0"}}"#)
            .with_head("package.json", r#"{"dependencies":{"lodash":"^4.17.0"}}"#)
            .with_base("yarn.lock", yarn("4.17.20"))
            .with_head("yarn.lock", yarn("4.17.21"));
        assert_eq!(kinds(&y).0, vec!["dep-patch"]);
    }
}
