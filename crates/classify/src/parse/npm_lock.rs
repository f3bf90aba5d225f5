//! npm lockfile readers: `package-lock.json` / `npm-shrinkwrap.json` (v1–v3), `pnpm-lock.yaml`,
//! `yarn.lock` (classic and berry), each into the resolved versions of every package and of the
//! direct dependencies (the `deps-npm` detector diffs them).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::parse::lockfile::LockIndex;

pub(crate) struct Lock {
    pub(crate) index: LockIndex,
    /// name → resolved version of the direct dependency.
    pub(crate) direct: BTreeMap<String, String>,
}

pub(crate) fn parse_lock(name: &str, text: &str) -> Result<Lock, String> {
    match name {
        "package-lock.json" | "npm-shrinkwrap.json" => npm_lock(text),
        "pnpm-lock.yaml" => pnpm_lock(text),
        _ => yarn_lock(text),
    }
}

/// The parts of a lockfile v2/v3 read here, borrowed from the text. A lockfile of thousands of
/// packages is mostly fields nobody reads (`resolved`, `integrity`, nested `dependencies`):
/// skipping them instead of building a `Value` tree made parsing several times faster.
#[derive(serde::Deserialize)]
struct NpmLockV2<'a> {
    #[serde(borrow)]
    packages: indexmap::IndexMap<Cow<'a, str>, NpmPackage<'a>>,
}

#[derive(serde::Deserialize)]
struct NpmPackage<'a> {
    #[serde(borrow, default)]
    version: Loose<'a>,
    #[serde(default)]
    dev: LooseBool,
    #[serde(borrow, default)]
    license: Loose<'a>,
}

/// A string field that may hold anything else (then `None`), as `Value::as_str` reads it.
#[derive(Default)]
struct Loose<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Loose<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Owned(v))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Loose<'de>, E> {
                Ok(Loose(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Loose<'de>, E> {
                Ok(Loose(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Loose<'de>, E> {
                Ok(Loose(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Loose<'de>, E> {
                Ok(Loose(None))
            }
            fn visit_unit<E>(self) -> Result<Loose<'de>, E> {
                Ok(Loose(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Loose<'de>, A::Error> {
                while m
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Loose(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Loose<'de>, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean field that may hold anything else (then `false`), as `Value::as_bool` reads it.
#[derive(Default)]
struct LooseBool(bool);

impl<'de> serde::Deserialize<'de> for LooseBool {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(LooseBool(v.as_bool().unwrap_or(false)))
    }
}

fn npm_lock(text: &str) -> Result<Lock, String> {
    // The common shape (lockfile v2/v3: an object with a `packages` object of objects) is read
    // into borrowed typed fields; anything else goes through the general path below, which
    // also words the errors.
    if let Ok(lock) = serde_json::from_str::<NpmLockV2<'_>>(text) {
        let mut index = LockIndex::default();
        let mut direct = BTreeMap::new();
        for (path, p) in &lock.packages {
            let Some(i) = path.rfind("node_modules/") else {
                continue;
            };
            let name = &path[i + "node_modules/".len()..];
            let Some(version) = p.version.0.as_deref() else {
                continue;
            };
            index.add(name, version, p.dev.0, p.license.0.as_deref());
            if i == 0 {
                direct.insert(name.to_string(), version.to_string());
            }
        }
        npm_lock_lines(text, &mut index);
        return Ok(Lock { index, direct });
    }
    npm_lock_value(text)
}

fn npm_lock_value(text: &str) -> Result<Lock, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut index = LockIndex::default();
    let mut direct = BTreeMap::new();
    if let Some(pkgs) = v.get("packages").and_then(Value::as_object) {
        for (path, p) in pkgs {
            let Some(i) = path.rfind("node_modules/") else {
                continue;
            };
            let name = &path[i + "node_modules/".len()..];
            let Some(version) = p.get("version").and_then(Value::as_str) else {
                continue;
            };
            let dev = p.get("dev").and_then(Value::as_bool).unwrap_or(false);
            index.add(name, version, dev, p.get("license").and_then(Value::as_str));
            if i == 0 {
                direct.insert(name.to_string(), version.to_string());
            }
        }
    } else if let Some(deps) = v.get("dependencies").and_then(Value::as_object) {
        fn walk(
            m: &serde_json::Map<String, Value>,
            top: bool,
            index: &mut LockIndex,
            direct: &mut BTreeMap<String, String>,
        ) {
            for (name, p) in m {
                if let Some(version) = p.get("version").and_then(Value::as_str) {
                    index.add(
                        name,
                        version,
                        p.get("dev").and_then(Value::as_bool).unwrap_or(false),
                        None,
                    );
                    if top {
                        direct.insert(name.clone(), version.to_string());
                    }
                }
                if let Some(nested) = p.get("dependencies").and_then(Value::as_object) {
                    walk(nested, false, index, direct);
                }
            }
        }
        walk(deps, true, &mut index, &mut direct);
    } else if v.get("lockfileVersion").is_none() {
        return Err("not an npm lockfile (no lockfileVersion, packages or dependencies)".into());
    }
    npm_lock_lines(text, &mut index);
    Ok(Lock { index, direct })
}

/// Lines of `"node_modules/<name>": {` entries, found in one pass.
fn npm_lock_lines(text: &str, index: &mut LockIndex) {
    // A substring search over the whole text instead of splitting every line; linear even for a
    // minified lockfile on one line: each stretch of text between two matches is looked at once.
    const KEY: &str = "\"node_modules/";
    let (mut line, mut pos) = (1u32, 0usize);
    // Whether the current line holds only whitespace from its start up to `pos`.
    let mut clean = true;
    for (i, _) in text.match_indices(KEY) {
        let seg = &text[pos..i];
        match seg.rfind('\n') {
            Some(nl) => {
                line += seg.bytes().filter(|&b| b == b'\n').count() as u32;
                clean = seg[nl + 1..].trim_start().is_empty();
            }
            None => clean = clean && seg.trim_start().is_empty(),
        }
        pos = i;
        if !clean {
            continue;
        }
        // The key ends at the next quote on the same line (a quote always comes before the
        // next match, so this scan never crosses one).
        let rest = &text[i + KEY.len()..];
        let Some(q) = rest
            .find(['"', '\n'])
            .filter(|&q| rest.as_bytes()[q] == b'"')
        else {
            continue;
        };
        let key = &rest[..q];
        let name = key.rsplit("node_modules/").next().unwrap_or(key);
        if !index.lines.contains_key(name) {
            index.lines.insert(name.to_string(), line);
        }
    }
}

/// `name@version` (scoped names keep their leading `@`), with pnpm's `/` prefix and peer suffix
/// removed.
fn split_name_version(key: &str) -> Option<(&str, &str)> {
    let k = key.trim_start_matches('/');
    let k = k.split('(').next().unwrap_or(k);
    if let Some(i) = k.rfind('@').filter(|&i| i > 0) {
        return Some((&k[..i], &k[i + 1..]));
    }
    // pnpm v5 used `/name/version`.
    let i = k.rfind('/')?;
    Some((&k[..i], &k[i + 1..]))
}

fn pnpm_lock(text: &str) -> Result<Lock, String> {
    let v: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if v.get("lockfileVersion").is_none() {
        return Err("not a pnpm lockfile (no lockfileVersion)".into());
    }
    let mut index = LockIndex::default();
    let mut direct = BTreeMap::new();
    let root = v
        .pointer("/importers/.")
        .cloned()
        .unwrap_or_else(|| v.clone());
    for section in ["dependencies", "optionalDependencies", "devDependencies"] {
        if let Some(m) = root.get(section).and_then(Value::as_object) {
            for (name, d) in m {
                let ver = d
                    .get("version")
                    .and_then(Value::as_str)
                    .or_else(|| d.as_str())
                    .unwrap_or_default();
                direct.insert(
                    name.clone(),
                    ver.split('(').next().unwrap_or(ver).to_string(),
                );
            }
        }
    }
    for key in ["packages", "snapshots"] {
        if let Some(m) = v.get(key).and_then(Value::as_object) {
            for (k, p) in m {
                if let Some((name, ver)) = split_name_version(k) {
                    let dev = p.get("dev").and_then(Value::as_bool).unwrap_or(false);
                    index.add(name, ver, dev, p.get("license").and_then(Value::as_str));
                }
            }
        }
    }
    Ok(Lock { index, direct })
}

fn yarn_lock(text: &str) -> Result<Lock, String> {
    let mut index = LockIndex::default();
    let mut specs: Vec<(String, String)> = Vec::new(); // (name, range) of the current block
    let mut direct_by_spec: BTreeMap<String, String> = BTreeMap::new();
    let mut block_line = 0u32;
    let mut entries = 0usize;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            let header = line
                .trim_end()
                .strip_suffix(':')
                .ok_or_else(|| format!("line {}: expected `spec:` header", n + 1))?;
            specs.clear();
            block_line = n as u32 + 1;
            for s in header.split(", ") {
                let s = s.trim().trim_matches('"');
                if s == "__metadata" {
                    continue;
                }
                let at = s[1..]
                    .find('@')
                    .map(|i| i + 1)
                    .ok_or_else(|| format!("line {}: bad spec `{s}`", n + 1))?;
                specs.push((
                    s[..at].to_string(),
                    s[at + 1..].trim_start_matches("npm:").to_string(),
                ));
            }
            continue;
        }
        let t = line.trim();
        let version = t
            .strip_prefix("version ")
            .or_else(|| t.strip_prefix("version: "))
            .filter(|_| line.starts_with("  ") && !line.starts_with("    "));
        if let Some(v) = version {
            let v = v.trim().trim_matches('"');
            for (name, range) in &specs {
                index.add(name, v, false, None);
                index.lines.entry(name.clone()).or_insert(block_line);
                direct_by_spec.insert(format!("{name}@{range}"), v.to_string());
                entries += 1;
            }
        }
    }
    if entries == 0 && !text.trim().is_empty() && !text.contains("__metadata") {
        return Err("no package entries found".into());
    }
    // Direct versions are resolved through the manifest's range: keep name@range keys and let the
    // caller's name lookup fall back to a unique version.
    let mut direct = BTreeMap::new();
    for (name, versions) in &index.versions {
        if versions.len() == 1 {
            direct.insert(
                name.clone(),
                versions.keys().next().cloned().unwrap_or_default(),
            );
        }
    }
    let _ = direct_by_spec;
    Ok(Lock { index, direct })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The fast typed path and the general `Value` path read every lockfile alike, odd field
    /// types included; inputs the typed path cannot take fall through to the general one.
    #[test]
    fn typed_and_value_lockfile_paths_agree() {
        let texts = [
            lock(&[("a", "1.0.0", false, "MIT"), ("b", "2.0.0", true, "ISC")]),
            r#"{"lockfileVersion":3,"packages":{"":{"name":"x"},
                "node_modules/a":{"version":"1.0.0","license":{"type":"MIT"},"dev":"yes"},
                "node_modules/b":{"version":2,"dev":true},
                "node_modules/a/node_modules/c":{"version":"0.1.0","license":"Apache-2.0","dev":true},
                "node_modules/\u0064":{"version":"1.2.3"},
                "node_modules/a":{"version":"1.0.1"}}}"#
                .to_string(),
            r#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0","dev":true}}}}}"#
                .to_string(),
            r#"{"lockfileVersion":3,"packages":{"node_modules/a":"1.0.0"}}"#.to_string(),
            r#"{"lockfileVersion":3,"packages":["node_modules/a"]}"#.to_string(),
        ];
        let show = |l: &Lock| {
            format!(
                "{:?} {:?} {:?} {:?}",
                l.index.versions, l.index.licenses, l.index.lines, l.direct
            )
        };
        for t in &texts {
            let (fast, general) = (npm_lock(t).unwrap(), npm_lock_value(t).unwrap());
            assert_eq!(show(&fast), show(&general), "{t}");
        }
        for t in &texts[..2] {
            assert!(
                serde_json::from_str::<NpmLockV2<'_>>(t).is_ok(),
                "fast path taken: {t}"
            );
        }
        for t in &texts[2..] {
            assert!(
                serde_json::from_str::<NpmLockV2<'_>>(t).is_err(),
                "general path: {t}"
            );
        }
        // Deliberate difference: fields nobody reads are skipped, not validated as values, so
        // a number beyond f64 or a lone surrogate escape in one (both of which npm's own
        // JSON.parse accepts) does not make the typed path call the lockfile unparseable.
        let lenient = r#"{"lockfileVersion":3,"packages":{"node_modules/a":{"version":"1.0.0","size":1e999,"x":"\ud800"}}}"#;
        assert!(npm_lock_value(lenient).is_err());
        assert_eq!(npm_lock(lenient).unwrap().direct["a"], "1.0.0");
        let fast = npm_lock(&texts[1]).unwrap();
        assert_eq!(
            fast.direct["a"], "1.0.1",
            "the last duplicate key wins, as in a JSON object"
        );
        assert!(
            fast.index.versions.contains_key("d"),
            "escaped keys are decoded"
        );
        for bad in ["{", "[]", "{\"name\": 1}"] {
            assert_eq!(npm_lock(bad).err(), npm_lock_value(bad).err(), "{bad}");
            assert!(npm_lock(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lockfile_entry_lines_match_a_line_by_line_scan() {
        fn by_lines(text: &str) -> BTreeMap<String, u32> {
            let mut out = BTreeMap::new();
            for (n, line) in text.lines().enumerate() {
                let t = line.trim_start();
                if let Some(rest) = t.strip_prefix("\"node_modules/")
                    && let Some(end) = rest.find('"')
                {
                    let key = &rest[..end];
                    let name = key.rsplit("node_modules/").next().unwrap_or(key);
                    out.entry(name.to_string()).or_insert(n as u32 + 1);
                }
            }
            out
        }
        let texts = [
            lock(&[("a", "1.0.0", false, "MIT"), ("b", "2.0.0", true, "ISC")]),
            "{\"node_modules/x\": 1,\r\n  \"node_modules/a/node_modules/b\": {},\r\n\t\"node_modules/c\"\n x \"node_modules/d\": 1\n\"node_modules/e\n\"node_modules/a\": 2}"
                .to_string(),
            String::new(),
            "\"node_modules/".to_string(),
            "  \"node_modules/a\": {}, \"node_modules/b\": {}\n\n   \"node_modules/c\": 1 \"node_modules/d\": 2\n\"node_modules/é\": 3".to_string(),
            // A minified lockfile: one line, thousands of entries.
            format!(
                "{{\"packages\":{{{}}}}}",
                (0..5000)
                    .map(|i| format!("\"node_modules/p{i}\":{{\"version\":\"1.0.{i}\"}}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ];
        for t in &texts {
            let mut idx = LockIndex::default();
            npm_lock_lines(t, &mut idx);
            assert_eq!(idx.lines, by_lines(t), "{t:?}");
        }
    }

    #[test]
    fn pnpm_keys_split_into_name_and_version() {
        assert_eq!(
            split_name_version("/@nestjs/core@10.0.0(rxjs@7)"),
            Some(("@nestjs/core", "10.0.0"))
        );
        assert_eq!(
            split_name_version("express@4.19.2"),
            Some(("express", "4.19.2"))
        );
    }
}
