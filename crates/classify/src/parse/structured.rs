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

/// Flattened leaves of a document stream.
pub(crate) type Leaves = BTreeMap<Path, String>;

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
        let mut path = vec![key];
        flatten(d, &mut path, &mut out);
    }
    out
}

fn flatten(v: &Value, path: &mut Path, out: &mut Leaves) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                path.push(k.clone());
                flatten(v, path, out);
                path.pop();
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
                let seg = if by_name {
                    names[i].unwrap_or_default().to_string()
                } else {
                    i.to_string()
                };
                path.push(seg);
                flatten(e, path, out);
                path.pop();
            }
        }
        Value::String(s) => {
            out.insert(path.clone(), s.clone());
        }
        other => {
            out.insert(path.clone(), other.to_string());
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
            h => out.push(LeafChange {
                path: p.clone(),
                base: Some(b.clone()),
                head: h.cloned(),
            }),
        }
    }
    for (p, h) in head {
        if !base.contains_key(p) {
            out.push(LeafChange {
                path: p.clone(),
                base: None,
                head: Some(h.clone()),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
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
    leaves
        .range(prefix.to_vec()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(prefix))
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
            l.get(&vec![
                "Deployment/api".into(),
                "spec".into(),
                "replicas".into()
            ]),
            Some(&"2".to_string())
        );
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
