//! Structured-document diffs shared by the config, infra and deps detectors.
//!
//! JSON, YAML (every document of a stream) and TOML are parsed into one value tree
//! (`serde_json::Value`) and flattened into leaf paths, so a detector can say *which* keys changed
//! and claim the ones it understands. A file counts as explained only when every changed leaf is
//! claimed — the rest stays `unclassified` (fail closed). Arrays of objects that carry a `name`
//! (Kubernetes containers, env entries, ports) are keyed by that name, so reordering or inserting
//! an entry does not look like every later entry changed.

use std::collections::BTreeMap;

use serde_json::Value;

/// A leaf path: document key, then keys / names / indexes.
pub(crate) type Path = Vec<String>;

/// Flattened leaves of a document stream, by [`Key`].
pub(crate) type Leaves = BTreeMap<Key, String>;

/// A leaf path as one string: its segments joined by NUL, with NUL and `\x01` inside a segment
/// escaped (`\x01\x01`, `\x01\x02`). The encoding keeps the order of the segment lists (NUL sorts
/// below every other byte, and the escapes keep the order of the bytes they stand for), so the
/// leaves come in the order they did as `Vec<String>` keys; one allocation per leaf instead of one
/// per segment, which was most of flattening 1,000 manifests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key(String);

impl Key {
    /// The key of a path.
    pub(crate) fn of<S: AsRef<str>>(segments: &[S]) -> Key {
        let mut k = String::new();
        for (i, s) in segments.iter().enumerate() {
            push_segment(&mut k, i > 0, s.as_ref());
        }
        Key(k)
    }

    /// The path's segments.
    pub(crate) fn segments(&self) -> Path {
        let mut out = vec![String::new()];
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            match c {
                '\0' => out.push(String::new()),
                '\x01' => {
                    let last = out.last_mut().expect("never empty");
                    last.push(if chars.next() == Some('\x01') {
                        '\0'
                    } else {
                        '\x01'
                    });
                }
                c => out.last_mut().expect("never empty").push(c),
            }
        }
        out
    }
}

/// Append one segment to an encoded key (after a separator unless it is the first).
fn push_segment(k: &mut String, sep: bool, seg: &str) {
    if sep {
        k.push('\0');
    }
    if seg.bytes().any(|b| b <= 1) {
        for c in seg.chars() {
            match c {
                '\0' => k.push_str("\x01\x01"),
                '\x01' => k.push_str("\x01\x02"),
                c => k.push(c),
            }
        }
    } else {
        k.push_str(seg);
    }
}

/// Structured formats understood here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Yaml,
    Toml,
}

impl Format {
    /// The format of a path by extension.
    pub(crate) fn of(path: &str) -> Option<Format> {
        match crate::util::ext(path).as_str() {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// Parse a document stream into values.
pub(crate) fn parse(format: Format, text: &str) -> Result<Vec<Value>, String> {
    match format {
        Format::Json => serde_json::from_str::<Value>(text)
            .map(|v| vec![v])
            .map_err(|e| e.to_string()),
        Format::Yaml => {
            if text.trim().is_empty() {
                return Ok(vec![]);
            }
            // The plain subset most manifests are written in, read in one pass; anything else
            // (and every error) is serde-saphyr's (docs/adr/0012, decision 10).
            if let Some(docs) = super::yaml_fast::parse(text) {
                return Ok(docs);
            }
            serde_saphyr::from_multiple::<Value>(text)
                .map(|docs| docs.into_iter().filter(|d| !d.is_null()).collect())
                .map_err(|e| e.to_string())
        }
        Format::Toml => {
            let v: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
            serde_json::to_value(v)
                .map(|v| vec![v])
                .map_err(|e| e.to_string())
        }
    }
}

/// Flatten documents into leaves. Each document is keyed `Kind/name` when it has Kubernetes
/// `kind` and `metadata.name`, else `#index`.
pub(crate) fn flatten_docs(docs: &[Value]) -> Leaves {
    let mut out = Leaves::new();
    for (i, d) in docs.iter().enumerate() {
        let key = match (
            d.get("kind").and_then(Value::as_str),
            d.pointer("/metadata/name").and_then(Value::as_str),
        ) {
            (Some(k), Some(n)) => format!("{k}/{n}"),
            _ => format!("#{i}"),
        };
        let mut path = Key::of(&[key]).0;
        flatten(d, &mut path, &mut out);
    }
    out
}

/// Flatten `v` below the encoded path `path` (restored on return).
fn flatten(v: &Value, path: &mut String, out: &mut Leaves) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let len = path.len();
                push_segment(path, true, k);
                flatten(v, path, out);
                path.truncate(len);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let names: Vec<Option<&str>> = a
                .iter()
                .map(|e| e.get("name").and_then(Value::as_str))
                .collect();
            let mut uniq = std::collections::BTreeSet::new();
            let by_name = names.iter().all(|n| n.is_some_and(|n| uniq.insert(n)));
            for (i, e) in a.iter().enumerate() {
                let len = path.len();
                if by_name {
                    push_segment(path, true, names[i].unwrap_or_default());
                } else {
                    push_segment(path, true, &i.to_string());
                }
                flatten(e, path, out);
                path.truncate(len);
            }
        }
        Value::String(s) => {
            out.insert(Key(path.clone()), s.clone());
        }
        other => {
            out.insert(Key(path.clone()), other.to_string());
        }
    }
}

/// One changed leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeafChange {
    pub path: Path,
    pub base: Option<String>,
    pub head: Option<String>,
}

impl LeafChange {
    /// Path without the document key, joined with dots.
    pub(crate) fn dotted(&self) -> String {
        self.path
            .iter()
            .skip(1)
            .cloned()
            .collect::<Vec<_>>()
            .join(".")
    }
    /// The last key.
    pub(crate) fn last(&self) -> &str {
        self.path.last().map(String::as_str).unwrap_or_default()
    }
}

/// Leaves that differ between base and head.
pub(crate) fn diff(base: &Leaves, head: &Leaves) -> Vec<LeafChange> {
    let mut out = Vec::new();
    for (p, b) in base {
        match head.get(p) {
            Some(h) if h == b => {}
            h => out.push((
                p,
                LeafChange {
                    path: p.segments(),
                    base: Some(b.clone()),
                    head: h.cloned(),
                },
            )),
        }
    }
    for (p, h) in head {
        if !base.contains_key(p) {
            out.push((
                p,
                LeafChange {
                    path: p.segments(),
                    base: None,
                    head: Some(h.clone()),
                },
            ));
        }
    }
    // By key: the order of the paths (see `Key`).
    out.sort_by(|a, b| a.0.cmp(b.0));
    out.into_iter().map(|(_, c)| c).collect()
}

/// Whether `path` contains `seq` as consecutive segments (`logging.level` → `["logging", "level"]`).
pub(crate) fn contains_seq(path: &[String], seq: &[&str]) -> bool {
    !seq.is_empty()
        && path
            .windows(seq.len())
            .any(|w| w.iter().zip(seq).all(|(a, b)| a == b))
}

/// Whether any leaf of `leaves` starts with `prefix`.
pub(crate) fn has_prefix(leaves: &Leaves, prefix: &[String]) -> bool {
    if prefix.is_empty() {
        return !leaves.is_empty();
    }
    // The keys under `prefix` are its own and those that continue it after a separator: the
    // first key at or after it is one of them if any is.
    let p = Key::of(prefix);
    leaves.range(p.clone()..).next().is_some_and(|(k, _)| {
        k.0.strip_prefix(&p.0)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('\0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_streams_are_keyed_by_kind_and_name() {
        let docs = parse(
            Format::Yaml,
            "kind: Deployment\nmetadata: {name: api}\nspec:\n  replicas: 2\n---\nkind: Service\nmetadata: {name: api}\n",
        )
        .unwrap();
        let l = flatten_docs(&docs);
        assert_eq!(
            l.get(&Key::of(&["Deployment/api", "spec", "replicas"])),
            Some(&"2".to_string())
        );
    }

    /// The encoded keys sort as the segment lists did, and decode to them, separators and
    /// escapes inside segments included.
    #[test]
    fn keys_keep_the_order_of_paths() {
        let paths: Vec<Vec<&str>> = vec![
            vec!["a"],
            vec!["a", ""],
            vec!["a", "", "b"],
            vec!["a", "b"],
            vec!["a", "b\0c"],
            vec!["a", "b\x01"],
            vec!["a", "b\x01\x01"],
            vec!["a", "b", "c"],
            vec!["a", "bc"],
            vec!["a\0", "b"],
            vec!["a\x01"],
            vec!["ab"],
            vec!["", "x"],
            vec!["é", "ü"],
        ];
        for a in &paths {
            assert_eq!(Key::of(a).segments(), *a, "{a:?}");
            for b in &paths {
                assert_eq!(Key::of(a).cmp(&Key::of(b)), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
        let l: Leaves = paths.iter().map(|p| (Key::of(p), String::new())).collect();
        for p in &paths {
            let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            for n in 0..=p.len() {
                let want = paths.iter().any(|q| q.len() >= n && q[..n] == p[..n]);
                assert_eq!(has_prefix(&l, &p[..n]), want, "{:?}", &p[..n]);
            }
        }
        assert!(!has_prefix(&l, &["a".into(), "b\0".into()]));
        assert!(!has_prefix(&l, &["z".into()]));
        // An empty first segment is a segment, not the empty prefix.
        let l: Leaves = [(Key::of(&["a", "b"]), String::new())]
            .into_iter()
            .collect();
        assert!(!has_prefix(&l, &["".into()]));
        assert!(has_prefix(&l, &[]));
        assert!(!has_prefix(&Leaves::new(), &[]));
    }

    #[test]
    fn named_arrays_survive_reordering() {
        let a = flatten_docs(
            &parse(
                Format::Json,
                r#"{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}"#,
            )
            .unwrap(),
        );
        let b = flatten_docs(
            &parse(
                Format::Json,
                r#"{"env":[{"name":"B","value":"2"},{"name":"A","value":"1"}]}"#,
            )
            .unwrap(),
        );
        assert!(diff(&a, &b).is_empty());
        let c = flatten_docs(
            &parse(
                Format::Json,
                r#"{"env":[{"name":"A","value":"9"},{"name":"B","value":"2"}]}"#,
            )
            .unwrap(),
        );
        let d = diff(&a, &c);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].dotted(), "env.A.value");
        assert!(contains_seq(&d[0].path, &["A", "value"]));
        assert!(has_prefix(&a, &["#0".into(), "env".into(), "B".into()]));
        assert!(!has_prefix(&a, &["#0".into(), "env".into(), "C".into()]));
    }

    #[test]
    fn broken_yaml_is_an_error() {
        assert!(parse(Format::Yaml, "a: [1, 2\nb: c: d").is_err());
        assert!(parse(Format::Toml, "a = ").is_err());
    }
}
