//! A fast reader for the plain subset of YAML that Kubernetes manifests are mostly written in,
//! giving exactly what `serde_saphyr::from_multiple::<serde_json::Value>` gives (empty documents
//! dropped) — or `None`, and the caller parses with serde-saphyr as before.
//!
//! Why: serde-saphyr spends ~200 k instructions on a 12-line manifest (the profile of the
//! `services` bench mix had it at a sixth of the classifier's work). This reader takes one pass
//! over the lines and accepts only what it can read without doubt: block mappings and sequences
//! (indented or not), one-line flow mappings and sequences of plain scalars, plain scalars that
//! are unambiguously strings, canonical decimal integers, `true` and `false`, and quoted strings
//! without escapes. Anything else — comments after a value, anchors, aliases, tags, block
//! scalars, multi-line scalars, merge keys, duplicate keys, directives, tabs, non-ASCII text,
//! null-like, boolean-like or numeric-looking words it does not type itself, unusual
//! indentation — answers `None`: the full parser decides, errors included. A differential test
//! checks both readers agree wherever this one answers.

use serde_json::{Map, Number, Value};

/// Inputs larger than this go to the full parser (its budgets then decide, as before).
const MAX_BYTES: usize = 64 * 1024;
/// Longest line read here (serde-saphyr limits simple keys to 1,024 characters of lookahead).
const MAX_LINE: usize = 512;
/// Deepest nesting read here (serde-saphyr's default depth budget is 64).
const MAX_DEPTH: usize = 32;
/// Most documents read here (serde-saphyr's default budget is 1,024).
const MAX_DOCS: usize = 64;

/// Words the full parser may read as null, a boolean, infinity or NaN (compared lower-cased).
const SPECIAL: &[&str] = &[
    "null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf", "infinity",
];

/// Whether `s` is one of [`SPECIAL`], in any case (without a lower-cased copy).
fn special(s: &str) -> bool {
    s.len() <= 8 && SPECIAL.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// Bytes this reader does not accept inside a plain scalar (indicators and quotes, legal in
/// places).
fn refused(c: u8) -> bool {
    matches!(
        c,
        b'{' | b'}'
            | b'['
            | b']'
            | b','
            | b'#'
            | b'"'
            | b'\''
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'%'
            | b'@'
            | b'`'
    )
}

struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// The documents of `text` (empty ones dropped), or `None` when the text is outside the subset.
pub(crate) fn parse(text: &str) -> Option<Vec<Value>> {
    if text.len() > MAX_BYTES
        || !text
            .bytes()
            .all(|b| b == b'\n' || (b' '..=b'~').contains(&b))
    {
        return None;
    }
    let mut docs = Vec::new();
    let mut lines: Vec<Line<'_>> = Vec::new();
    for raw in text.split('\n') {
        let t = raw.trim_end_matches(' ');
        if t.len() > MAX_LINE {
            return None;
        }
        let body = t.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if t == "---" {
            if !lines.is_empty() {
                docs.push(document(std::mem::take(&mut lines))?);
            }
            continue;
        }
        // Directives, document ends, `---` with content, end-of-line comments.
        if t.starts_with("---") || t.starts_with("...") || t.starts_with('%') || body.contains(" #")
        {
            return None;
        }
        lines.push(Line {
            indent: t.len() - body.len(),
            text: body,
        });
    }
    if !lines.is_empty() {
        docs.push(document(lines)?);
    }
    (docs.len() <= MAX_DOCS).then_some(docs)
}

fn document(mut lines: Vec<Line<'_>>) -> Option<Value> {
    let mut r = Reader {
        lines: &mut lines,
        i: 0,
    };
    let indent = r.lines[0].indent;
    let v = r.node(indent, 0)?;
    (r.i == r.lines.len()).then_some(v)
}

struct Reader<'l, 'a> {
    lines: &'l mut Vec<Line<'a>>,
    i: usize,
}

/// `- rest` / `-`: the column and text of `rest`.
fn item<'a>(l: &Line<'a>) -> Option<(usize, &'a str)> {
    if l.text == "-" {
        return Some((l.indent + 1, ""));
    }
    let rest = l.text.strip_prefix("- ")?;
    let body = rest.trim_start_matches(' ');
    Some((l.indent + l.text.len() - body.len(), body))
}

/// `key: rest` / `key:`: the key and the (trimmed) rest.
fn entry(text: &str) -> Option<(&str, &str)> {
    // memchr's search, not `str::find` (which sets up a two-way searcher per line read).
    let (key, rest) = match memchr::memmem::find(text.as_bytes(), b": ") {
        Some(i) => (&text[..i], text[i + 2..].trim_start_matches(' ')),
        None => (text.strip_suffix(':')?, ""),
    };
    key_ok(key).then_some((key, rest))
}

fn key_ok(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/'))
        && !special(k)
}

impl<'a> Reader<'_, 'a> {
    fn peek(&self) -> Option<&Line<'a>> {
        self.lines.get(self.i)
    }

    /// The block node starting at the current line, which is at `indent`.
    fn node(&mut self, indent: usize, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let l = self.peek()?;
        if l.indent != indent {
            return None;
        }
        if item(l).is_some() {
            self.seq(indent, depth)
        } else if entry(l.text).is_some() {
            self.map(indent, depth)
        } else {
            None // a scalar on a line of its own
        }
    }

    /// After a node ends: the next line must not be indented deeper than `indent`.
    fn ends(&self, indent: usize) -> Option<()> {
        match self.peek() {
            Some(l) if l.indent > indent => None,
            _ => Some(()),
        }
    }

    fn map(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut m = Map::new();
        while let Some(l) = self.peek() {
            if l.indent < indent {
                break;
            }
            if l.indent > indent || item(l).is_some() {
                return None;
            }
            let (key, rest) = entry(l.text)?;
            let key = key.to_string();
            let value = if rest.is_empty() {
                self.i += 1;
                match self.peek() {
                    Some(n) if n.indent > indent => {
                        let ni = n.indent;
                        self.node(ni, depth + 1)?
                    }
                    // An indentless sequence: `key:` then `- item` at the key's column.
                    Some(n) if n.indent == indent && item(n).is_some() => {
                        self.seq(indent, depth + 1)?
                    }
                    _ => Value::Null,
                }
            } else {
                let v = value(rest)?;
                self.i += 1;
                v
            };
            if m.insert(key, value).is_some() {
                return None; // duplicate key: serde-saphyr's default policy is an error
            }
            self.ends(indent)?;
        }
        Some(Value::Object(m))
    }

    fn seq(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut v = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent < indent {
                break;
            }
            if l.indent > indent {
                return None;
            }
            let Some((col, rest)) = item(l) else {
                // A mapping key at the column of an indentless sequence ends it.
                break;
            };
            if rest.is_empty() {
                self.i += 1;
                match self.peek() {
                    Some(n) if n.indent > indent => {
                        let ni = n.indent;
                        v.push(self.node(ni, depth + 1)?);
                    }
                    _ => v.push(Value::Null),
                }
            } else if item(&Line {
                indent: col,
                text: rest,
            })
            .is_some()
                || entry(rest).is_some()
            {
                // `- key: value` / `- - x`: the rest is the first line of a node at its column.
                self.lines[self.i] = Line {
                    indent: col,
                    text: rest,
                };
                v.push(self.node(col, depth + 1)?);
            } else {
                v.push(value(rest)?);
                self.i += 1;
            }
            self.ends(indent)?;
        }
        Some(Value::Array(v))
    }
}

/// A value written on the line of its key or dash: a flow collection, a quoted or plain scalar.
fn value(v: &str) -> Option<Value> {
    let b = v.as_bytes();
    match b[0] {
        b'{' => {
            let inner = v.strip_suffix('}')?[1..].trim_matches(' ');
            if inner.contains(['{', '}', '[', ']', '"', '\'']) {
                return None;
            }
            let mut m = Map::new();
            if inner.is_empty() {
                return Some(Value::Object(m));
            }
            for part in inner.split(',') {
                let part = part.trim_matches(' ');
                let (k, val) = part.split_once(": ")?;
                let val = val.trim_start_matches(' ');
                if !key_ok(k) || val.is_empty() || val.contains(':') {
                    return None;
                }
                if m.insert(k.to_string(), plain(val)?).is_some() {
                    return None;
                }
            }
            Some(Value::Object(m))
        }
        b'[' => {
            let inner = v.strip_suffix(']')?[1..].trim_matches(' ');
            if inner.contains(['{', '}', '[', ']', '"', '\'', ':']) {
                return None;
            }
            if inner.is_empty() {
                return Some(Value::Array(Vec::new()));
            }
            inner
                .split(',')
                .map(|p| {
                    let p = p.trim_matches(' ');
                    if p.is_empty() { None } else { plain(p) }
                })
                .collect::<Option<Vec<_>>>()
                .map(Value::Array)
        }
        b'"' | b'\'' => {
            let q = b[0] as char;
            let inner = v.strip_prefix(q)?.strip_suffix(q)?;
            if v.len() < 2 || inner.contains(q) || inner.contains('\\') {
                return None;
            }
            Some(Value::String(inner.to_string()))
        }
        _ => {
            if v.contains(": ") || v.ends_with(':') {
                return None;
            }
            plain(v)
        }
    }
}

/// A plain scalar, typed as serde-saphyr types it — only where that is beyond doubt.
fn plain(s: &str) -> Option<Value> {
    let b = s.as_bytes();
    // Indicators and quotes inside a scalar are legal in places; not read here.
    if b.iter().any(|&c| refused(c)) {
        return None;
    }
    let digits = |d: &[u8]| {
        !d.is_empty()
            && d.len() <= 18
            && d.iter().all(u8::is_ascii_digit)
            && (d[0] != b'0' || d.len() == 1)
    };
    match b[0] {
        b'a'..=b'z' | b'A'..=b'Z' => match s {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ if special(s) => None,
            _ => Some(Value::String(s.to_string())),
        },
        b'/' => Some(Value::String(s.to_string())),
        b'-' => {
            if !digits(&b[1..]) || b[1] == b'0' {
                return None;
            }
            s.parse::<i64>()
                .ok()
                .map(|n| Value::Number(Number::from(n)))
        }
        b'0'..=b'9' => {
            if digits(b) {
                return s
                    .parse::<u64>()
                    .ok()
                    .map(|n| Value::Number(Number::from(n)));
            }
            // `500m`, `512Mi`, `1Gi`: a letter no number, radix prefix, exponent, infinity,
            // NaN or timestamp is written with, and no `:` (YAML 1.1 sexagesimal).
            let word = b.iter().any(|c| {
                c.is_ascii_alphabetic()
                    && !matches!(
                        c.to_ascii_lowercase(),
                        b'a'..=b'f' | b'x' | b'o' | b't' | b'i' | b'n'
                    )
            });
            (word && !s.contains(':')).then(|| Value::String(s.to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn full(text: &str) -> Result<Vec<serde_json::Value>, String> {
        serde_saphyr::from_multiple::<serde_json::Value>(text)
            .map(|docs| docs.into_iter().filter(|d| !d.is_null()).collect())
            .map_err(|e| e.to_string())
    }

    /// Wherever the fast reader answers, it answers what serde-saphyr answers.
    fn agree(text: &str) -> bool {
        match parse(text) {
            Some(fast) => {
                assert_eq!(Ok(fast), full(text), "fast reader differs on:\n{text}");
                true
            }
            None => false,
        }
    }

    const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-1
  labels: {app: svc-1, tier: backend}
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: app
          image: registry.example/svc-1:1.0.0
          args: [serve, http]
          resources:
            limits: {cpu: 500m, memory: 512Mi}
          env:
          - name: LOG_LEVEL
            value: \"info\"
          - name: ENABLED
            value: true
      volumes: []
      nodeSelector: {}
      priority: -10
      empty:
---
# second
kind: Service
metadata: {name: svc-1}
spec:
  ports:
  - port: 80
    targetPort: 8080
  -
    port: 443
  - - nested
    - again
  - plain words here
";

    #[test]
    fn the_subset_reads_as_serde_saphyr_reads_it() {
        assert!(agree(DEPLOY));
        assert_eq!(parse(DEPLOY).unwrap().len(), 2);
        assert!(agree("a: 1\n---\n---\n# only a comment\n---\nb: x\n"));
        assert!(agree("# nothing\n"));
    }

    #[test]
    fn anything_else_goes_to_the_full_parser() {
        for text in [
            "a: 1 # comment\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: |\n  text\n",
            "a: >\n  text\n",
            "a: b\n  c\n",
            "a: 1\na: 2\n",
            "<<: {a: 1}\n",
            "%YAML 1.2\n---\na: 1\n",
            "a:\tb\n",
            "a: é\n",
            "a: yes\n",
            "a: Null\n",
            "a: ~\n",
            "a: 0x1F\n",
            "a: 1e3\n",
            "a: 1.5\n",
            "a: 007\n",
            "a: 1_000\n",
            "a: 12:30\n",
            "a: 2001-12-14\n",
            "a: -0\n",
            "a: +1\n",
            "a: .inf\n",
            "a: 'it''s'\n",
            "a: \"tab\\t\"\n",
            "a: {b: {c: d}}\n",
            "a: [1, [2]]\n",
            "a: {b: c,}\n",
            "on: push\n",
            "1: x\n",
            "a: b: c\n",
            "  a: 1\n b: 2\n",
            "a:\n    b: 1\n  c: 2\n",
            "just a scalar\n",
            "a: 1\n...\n",
        ] {
            assert!(!agree(text), "read by the fast reader: {text:?}");
        }
    }

    #[test]
    fn typing_of_plain_scalars() {
        for text in [
            "a: 500m\nb: 512Mi\nc: 1Gi\nd: 250m\ne: 3\nf: 0\ng: -7\nh: /var/lib\ni: false\n",
            "a: 18446744073\nb: v1.2.3\nc: 10s\nd: 1h30m\ne: 5m\n",
        ] {
            assert!(agree(text), "{text}");
        }
    }

    #[test]
    fn the_bench_manifests_take_the_fast_path() {
        // benches/classify.rs, `k8s()`.
        for (i, replicas) in [(0, 2), (7, 3)] {
            let text = format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i}\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example/svc-{i}:1.0.0\n          resources:\n            limits: {{cpu: 500m, memory: 512Mi}}\n"
            );
            assert!(agree(&text), "{text}");
        }
    }

    /// Every YAML file at the tip of the real-corpus mirrors (docs/classification-corpus.md):
    /// where the fast reader answers, serde-saphyr answers the same. Skipped without mirrors.
    #[test]
    fn real_corpus_yaml_agrees() {
        let root = std::env::var_os("CHANGEGATE_CORPUS_MIRRORS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/work/.mirror".into());
        let Ok(dirs) = std::fs::read_dir(&root) else {
            eprintln!("SKIPPED: no mirrors at {}", root.display());
            return;
        };
        let (mut files, mut fast) = (0, 0);
        for d in dirs.flatten() {
            let Ok(repo) = git2::Repository::open_bare(d.path().join("repo")) else {
                continue;
            };
            let Ok(tree) = repo.head().and_then(|h| h.peel_to_tree()) else {
                continue;
            };
            let _ = tree.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
                let name = e.name().unwrap_or_default();
                if (name.ends_with(".yaml") || name.ends_with(".yml"))
                    && let Ok(blob) = repo.find_blob(e.id())
                    && let Ok(text) = std::str::from_utf8(blob.content())
                {
                    files += 1;
                    if agree(text) {
                        fast += 1;
                    }
                    let _ = dir;
                }
                git2::TreeWalkResult::Ok
            });
        }
        eprintln!("real-corpus YAML files: {files}, read by the fast reader: {fast}");
    }

    proptest::proptest! {
        /// Random documents over the subset's building blocks (and some of what it refuses):
        /// wherever the fast reader answers, serde-saphyr answers the same.
        #[test]
        fn agrees_with_serde_saphyr(
            lines in proptest::collection::vec(
                (0usize..4, proptest::sample::select(vec![
                    "a:", "b: 1", "c: x", "- d", "- e: 2", "-", "f: {g: h, i: 2}", "j: [k, 3]",
                    "l: 'q'", "m: \"r\"", "n: 500m", "o: true", "p: -3", "q: 1.5", "r: yes",
                    "s: 0x10", "- - t", "u: v w", "x: a:b", "y: 10Gi", "z: 1e5", "- 7", "---",
                    "# c", "w: 07", "k: ~", "k2:", "- [1, 2]", "- {a: b}",
                ])),
                1..12,
            )
        ) {
            let text: String = lines
                .iter()
                .map(|(i, l)| format!("{}{l}\n", "  ".repeat(*i)))
                .collect();
            let _ = agree(&text);
        }
    }
}
