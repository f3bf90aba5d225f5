//! `deps-cargo`: Rust dependencies from `Cargo.toml` and `Cargo.lock`.
//!
//! Direct dependencies are read from every dependency table of a changed manifest
//! (`[dependencies]`, `[dev-dependencies]`, `[build-dependencies]`, `[target.*.…]`,
//! `[workspace.dependencies]`); `dev-dependencies` are development, everything else production
//! (build scripts run in the release pipeline). Versions come from the nearest `Cargo.lock` —
//! the highest locked version matching the requirement — else the requirement's lowest version.
//! Lockfile-only changes are graded per package (aggregated). The crate's own `package.license`
//! change is a license change. A manifest is explained only when nothing but dependency tables and
//! the license changed.

use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::facets::FacetCode;
use semver::{Version, VersionReq};
use toml::Value;

use super::{
    Dep, DirectChange, LockIndex, direct_facet, lenient_version, same_license, transitive_facets,
};
use crate::facet::{evidence_at, facet, unparseable};
use crate::parse::structured::{Format, diff, flatten_docs, parse};
use crate::util::{dir_of, file_name, join, text_at};
use crate::{Change, Contents, Detector, Finding, Side};

/// The Cargo dependency detector.
pub struct DepsCargo;

impl Detector for DepsCargo {
    fn id(&self) -> &'static str {
        "deps-cargo"
    }
    fn description(&self) -> &'static str {
        "Cargo dependencies: Cargo.toml dependency tables and Cargo.lock (semver grade, prod/dev, package license)"
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
            FacetCode::Unparseable,
        ]
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let mut out = Finding::default();
        let mut direct_names = BTreeSet::new();
        let mut locks_needed: BTreeSet<String> = BTreeSet::new();
        for f in change
            .files
            .iter()
            .filter(|f| file_name(&f.path) == "Cargo.toml")
        {
            let lock = nearest_lock(change.contents, dir_of(&f.path));
            let mut sides: [Option<(Value, String)>; 2] = [None, None];
            let mut ok = true;
            for (i, side) in [Side::Base, Side::Head].into_iter().enumerate() {
                let path = if side == Side::Base {
                    f.base_path()
                } else {
                    &f.path
                };
                let Some(t) = text_at(change.contents, side, path) else {
                    continue;
                };
                match t.and_then(|t| {
                    toml::from_str::<Value>(&t)
                        .map(|v| (v, t))
                        .map_err(|e| e.to_string())
                }) {
                    Ok(v) => sides[i] = Some(v),
                    Err(e) => {
                        out.facets
                            .push(unparseable(self.id(), path, side, "Cargo.toml", e));
                        ok = false;
                    }
                }
            }
            if !ok {
                out.explained.insert(f.path.clone());
                continue;
            }
            let locks = [Side::Base, Side::Head].map(|s| {
                lock.as_ref()
                    .and_then(|l| read_lock(change.contents, s, l).ok())
            });
            let deps = [0, 1].map(|i| {
                sides[i]
                    .as_ref()
                    .map(|(v, _)| manifest_deps(v, locks[i].as_ref()))
                    .unwrap_or_default()
            });
            let names: BTreeSet<&String> = deps[0].keys().chain(deps[1].keys()).collect();
            for name in names {
                direct_names.insert(name.clone());
                let (b, h) = (deps[0].get(name), deps[1].get(name));
                let (side, text) = if h.is_some() {
                    (Side::Head, &sides[1])
                } else {
                    (Side::Base, &sides[0])
                };
                let evidence = evidence_at(
                    &f.path,
                    side,
                    text.as_ref().map(|(_, t)| t.as_str()),
                    &[name],
                );
                if let Some(fc) = direct_facet(
                    self.id(),
                    DirectChange {
                        name,
                        base: b,
                        head: h,
                        evidence,
                    },
                ) {
                    out.facets.push(fc);
                }
            }
            let lic = |i: usize| -> Option<String> {
                sides[i]
                    .as_ref()?
                    .0
                    .get("package")?
                    .get("license")?
                    .as_str()
                    .map(String::from)
            };
            let (bl, hl) = (lic(0), lic(1));
            let mut understood = true;
            match (&bl, &hl) {
                (Some(b), Some(h)) if !same_license(b, h) => out.facets.push(facet(
                    self.id(),
                    FacetCode::DepLicenseChanged,
                    format!("crate license {b} → {h} ({})", f.path),
                    vec![evidence_at(
                        &f.path,
                        Side::Head,
                        sides[1].as_ref().map(|(_, t)| t.as_str()),
                        &["license"],
                    )],
                )),
                (a, b) if a != b && (a.is_none() || b.is_none()) => understood = false,
                _ => {}
            }
            if let (Some((bv, _)), Some((hv, _))) = (&sides[0], &sides[1]) {
                let to_json = |v: &Value| {
                    serde_json::to_value(v)
                        .ok()
                        .map(|j| flatten_docs(&[j]))
                        .unwrap_or_default()
                };
                for c in diff(&to_json(bv), &to_json(hv)) {
                    let p: Vec<&str> = c.path.iter().skip(1).map(String::as_str).collect();
                    let dep_table = p.iter().any(|s| s.ends_with("dependencies"));
                    let license = p == ["package", "license"];
                    if !(dep_table || license) {
                        understood = false;
                    }
                }
            } else {
                understood = false;
            }
            if understood {
                out.explained.insert(f.path.clone());
            }
            if let Some(l) = lock {
                locks_needed.insert(l);
            }
        }
        for f in change
            .files
            .iter()
            .filter(|f| file_name(&f.path) == "Cargo.lock")
        {
            locks_needed.insert(f.path.clone());
        }
        let changed: BTreeSet<&str> = change.files.iter().map(|f| f.path.as_str()).collect();
        for lock in locks_needed {
            if !changed.contains(lock.as_str()) {
                continue;
            }
            let mut idx = [LockIndex::default(), LockIndex::default()];
            let mut ok = true;
            for (i, side) in [Side::Base, Side::Head].into_iter().enumerate() {
                match read_lock(change.contents, side, &lock) {
                    Ok(l) => idx[i] = l,
                    Err(Some(e)) => {
                        out.facets
                            .push(unparseable(self.id(), &lock, side, "Cargo.lock", e));
                        ok = false;
                    }
                    Err(None) => {}
                }
            }
            if ok {
                out.facets.extend(transitive_facets(
                    self.id(),
                    &lock,
                    &idx[0],
                    &idx[1],
                    &direct_names,
                ));
            }
            out.explained.insert(lock);
        }
        out
    }
}

fn nearest_lock(contents: &dyn Contents, mut dir: &str) -> Option<String> {
    loop {
        let p = join(dir, "Cargo.lock");
        if contents.head(&p).is_some() || contents.base(&p).is_some() {
            return Some(p);
        }
        if dir.is_empty() {
            return None;
        }
        dir = dir_of(dir);
    }
}

/// `Err(None)`: absent on that side; `Err(Some(msg))`: unparseable.
fn read_lock(contents: &dyn Contents, side: Side, path: &str) -> Result<LockIndex, Option<String>> {
    let text = text_at(contents, side, path).ok_or(None)?.map_err(Some)?;
    let docs = parse(Format::Toml, &text).map_err(Some)?;
    let mut idx = LockIndex::default();
    let pkgs = docs
        .first()
        .and_then(|d| d.get("package"))
        .and_then(|p| p.as_array())
        .cloned()
        .unwrap_or_default();
    for p in &pkgs {
        let (Some(name), Some(version)) = (
            p.get("name").and_then(|v| v.as_str()),
            p.get("version").and_then(|v| v.as_str()),
        ) else {
            return Err(Some("[[package]] without name or version".into()));
        };
        if p.get("source").is_none() {
            continue; // a workspace member or path dependency: the project's own code
        }
        idx.add(name, version, false, None);
    }
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(v) = line
            .strip_prefix("name = \"")
            .and_then(|r| r.strip_suffix('"'))
        {
            current = Some(v.to_string());
            idx.lines.entry(v.to_string()).or_insert(n as u32 + 1);
        }
    }
    let _ = current;
    Ok(idx)
}

/// Direct dependencies of a manifest: name → resolved version and dev flag.
fn manifest_deps(v: &Value, lock: Option<&LockIndex>) -> BTreeMap<String, Dep> {
    let mut out = BTreeMap::new();
    let mut tables: Vec<(&Value, bool)> = Vec::new();
    for (k, dev) in [
        ("dependencies", false),
        ("build-dependencies", false),
        ("dev-dependencies", true),
    ] {
        if let Some(t) = v.get(k) {
            tables.push((t, dev));
        }
        if let Some(targets) = v.get("target").and_then(Value::as_table) {
            for t in targets.values() {
                if let Some(t) = t.get(k) {
                    tables.push((t, dev));
                }
            }
        }
    }
    if let Some(t) = v.get("workspace").and_then(|w| w.get("dependencies")) {
        tables.push((t, false));
    }
    for (t, dev) in tables {
        let Some(t) = t.as_table() else { continue };
        for (name, spec) in t {
            let (req, pkg) = match spec {
                Value::String(s) => (Some(s.clone()), name.clone()),
                Value::Table(m) => (
                    m.get("version").and_then(Value::as_str).map(String::from),
                    m.get("package")
                        .and_then(Value::as_str)
                        .unwrap_or(name)
                        .to_string(),
                ),
                _ => (None, name.clone()),
            };
            let spec_text = match spec {
                Value::Table(m) if m.get("path").is_some() => format!(
                    "path {}",
                    m.get("path").and_then(Value::as_str).unwrap_or("")
                ),
                Value::Table(m) if m.get("git").is_some() => {
                    format!("git {}", m.get("git").and_then(Value::as_str).unwrap_or(""))
                }
                Value::Table(m) if m.get("workspace").is_some() => "workspace".to_string(),
                _ => req.clone().unwrap_or_else(|| "*".into()),
            };
            let locked = lock.and_then(|l| l.versions.get(&pkg)).and_then(|vs| {
                let r = req.as_deref().and_then(|r| VersionReq::parse(r).ok());
                vs.keys()
                    .filter_map(|v| Version::parse(v).ok())
                    .filter(|v| r.as_ref().is_none_or(|r| r.matches(v)))
                    .max()
                    .map(|v| v.to_string())
            });
            let version = locked
                .or_else(|| {
                    req.as_deref()
                        .and_then(lenient_version)
                        .map(|v| v.to_string())
                })
                .unwrap_or(spec_text);
            let e = out.entry(name.clone()).or_insert(Dep {
                version: version.clone(),
                dev,
            });
            if !dev {
                *e = Dep {
                    version,
                    dev: false,
                };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapContents;

    fn lock(pkgs: &[(&str, &str)]) -> String {
        let mut s =
            String::from("version = 4\n\n[[package]]\nname = \"svc\"\nversion = \"0.1.0\"\n");
        for (n, v) in pkgs {
            s.push_str(&format!(
                "\n[[package]]\nname = \"{n}\"\nversion = \"{v}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
            ));
        }
        s
    }

    fn run(c: &MapContents) -> (Vec<String>, Finding) {
        let p = changegate_policy::load_default().policy;
        let files = c.changed_files();
        let f = crate::detectors::testing::detect(
            &DepsCargo,
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

    #[test]
    fn zero_minor_is_major_and_lock_patch() {
        let m = |v: &str| {
            format!(
                "[package]\nname = \"svc\"\nlicense = \"MIT\"\n\n[dependencies]\nserde-saphyr = \"{v}\"\n\n[dev-dependencies]\ntempfile = \"3\"\n"
            )
        };
        let c = MapContents::default()
            .with_base("Cargo.toml", m("0.0.9"))
            .with_head("Cargo.toml", m("0.1"))
            .with_base(
                "Cargo.lock",
                lock(&[
                    ("serde-saphyr", "0.0.9"),
                    ("tempfile", "3.1.0"),
                    ("libc", "0.2.150"),
                ]),
            )
            .with_head(
                "Cargo.lock",
                lock(&[
                    ("serde-saphyr", "0.1.2"),
                    ("tempfile", "3.1.0"),
                    ("libc", "0.2.151"),
                ]),
            );
        let (k, f) = run(&c);
        assert_eq!(k, vec!["dep-major", "dep-patch"]);
        assert!(
            f.facets
                .iter()
                .any(|x| x.details.contains("serde-saphyr 0.0.9 → 0.1.2 major"))
        );
        assert!(f.explained.contains("Cargo.toml") && f.explained.contains("Cargo.lock"));
    }

    #[test]
    fn license_added_dev_and_other_changes() {
        let c = MapContents::default()
            .with_base("Cargo.toml", "[package]\nname = \"svc\"\nlicense = \"MIT\"\n")
            .with_head("Cargo.toml", "[package]\nname = \"svc\"\nlicense = \"GPL-3.0-only\"\n[dev-dependencies]\ninsta = \"1\"\n");
        let (k, f) = run(&c);
        assert_eq!(k, vec!["dep-added-dev", "dep-license-changed"]);
        assert!(f.explained.contains("Cargo.toml"));
        let e = MapContents::default()
            .with_base(
                "Cargo.toml",
                "[package]\nname = \"svc\"\nedition = \"2021\"\n",
            )
            .with_head(
                "Cargo.toml",
                "[package]\nname = \"svc\"\nedition = \"2024\"\n",
            );
        assert!(run(&e).1.explained.is_empty());
        let b = MapContents::default()
            .with_base("Cargo.toml", "[package]\n")
            .with_head("Cargo.toml", "[package\n");
        assert_eq!(run(&b).0, vec!["unparseable"]);
    }
}
