//! Loading: TOML text → merged table → typed [`Policy`] → validated, with every problem located.
//!
//! Locations work by path: deserialisation errors carry the path of the failing value
//! (serde_path_to_error) and validation reports paths too; a path is resolved to a byte span in
//! the user's file when the value comes from there, else in the built-in default.

use std::ops::Range;

use toml_edit::{Item, TableLike, Value};

use crate::diag::{Diagnostic, Location, Severity};
use crate::model::{Extends, Policy};
use crate::validate;

/// The built-in default policy (the seed), as TOML.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../default-policy.toml");
/// The name under which the default policy appears in diagnostics.
pub const DEFAULT_POLICY_NAME: &str = "<built-in default policy>";

/// A policy that loaded, with the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective policy.
    pub policy: Policy,
    /// Non-fatal findings.
    pub warnings: Vec<Diagnostic>,
}

/// Why a policy did not load.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The policy has errors; every one found is listed (warnings may follow them).
    #[error("policy {file} is invalid ({} error(s))", .diagnostics.iter().filter(|d| d.severity == Severity::Error).count())]
    Invalid {
        /// File name.
        file: String,
        /// Errors, then warnings.
        diagnostics: Vec<Diagnostic>,
    },
}

impl LoadError {
    /// All diagnostics.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

/// Path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Render a path as `a.b[2].c`.
pub(crate) fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// One source file and its parsed (span-carrying) document.
pub(crate) struct Source<'a> {
    name: &'a str,
    text: &'a str,
    doc: toml_edit::Document<&'a str>,
}

impl<'a> Source<'a> {
    fn parse(name: &'a str, text: &'a str) -> Result<Self, Box<Diagnostic>> {
        match toml_edit::Document::parse(text) {
            Ok(doc) => Ok(Source { name, text, doc }),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                Err(Box::new(Diagnostic {
                    severity: Severity::Error,
                    code: "toml-syntax",
                    message: first_line(e.message()).to_string(),
                    path: String::new(),
                    location: Some(location(name, text, span)),
                    help: Some("fix the TOML syntax; see https://toml.io".into()),
                }))
            }
        }
    }

    /// Span of the value at `path`, or of the deepest part of it that exists here.
    fn span_of(&self, path: &[Seg], key_only: bool) -> Option<Range<usize>> {
        enum Node<'n> {
            Item(&'n Item),
            Table(&'n toml_edit::Table),
            Value(&'n Value),
        }
        fn table_like<'n>(n: &Node<'n>) -> Option<&'n dyn TableLike> {
            match n {
                Node::Item(i) => i.as_table_like(),
                Node::Table(t) => Some(*t as &dyn TableLike),
                Node::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
            }
        }
        fn node_span(n: &Node<'_>) -> Option<Range<usize>> {
            match n {
                Node::Item(i) => i.span(),
                Node::Table(t) => t.span(),
                Node::Value(v) => v.span(),
            }
        }
        let mut node = Node::Item(self.doc.as_item());
        let mut best: Option<Range<usize>> = None;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            node = match seg {
                Seg::Key(k) => {
                    let table = table_like(&node)?;
                    let (key, child) = table.get_key_value(k)?;
                    let child = Node::Item(child);
                    best = if last && key_only {
                        key.span()
                    } else {
                        node_span(&child).or(key.span())
                    };
                    if best.is_none() {
                        best = key.span();
                    }
                    child
                }
                Seg::Index(idx) => {
                    let child = match &node {
                        Node::Item(Item::ArrayOfTables(a)) => Node::Table(a.get(*idx)?),
                        Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                            Node::Value(a.get(*idx)?)
                        }
                        _ => return best,
                    };
                    if let Some(s) = node_span(&child) {
                        best = Some(s);
                    }
                    child
                }
            };
        }
        best
    }

    /// Whether the first key of `path` exists in this file (so the value was written here).
    fn has(&self, path: &[Seg]) -> bool {
        let mut item = self.doc.as_item();
        for seg in path {
            match seg {
                Seg::Key(k) => match item.as_table_like().and_then(|t| t.get(k)) {
                    Some(child) => item = child,
                    None => return false,
                },
                // Arrays replace as a whole, so if the array is here, so is its element.
                Seg::Index(_) => return true,
            }
        }
        true
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

fn location(file: &str, text: &str, span: Range<usize>) -> Location {
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |p| line_start + p);
    let line_text = text[line_start..line_end]
        .trim_end_matches('\r')
        .to_string();
    let column = text[line_start..start].chars().count() + 1;
    let end = span.end.clamp(start, line_end);
    let width = text[start..end].chars().count().max(1);
    Location {
        file: file.to_string(),
        line,
        column,
        line_text,
        width,
    }
}

/// Resolves paths to locations: the user's file first, then the built-in default.
pub(crate) struct Locator<'a> {
    sources: Vec<Source<'a>>,
}

impl Locator<'_> {
    pub(crate) fn locate(&self, path: &[Seg], key_only: bool) -> Option<Location> {
        for src in &self.sources {
            if src.has(path) {
                let span = src.span_of(path, key_only)?;
                return Some(location(src.name, src.text, span));
            }
        }
        None
    }

    pub(crate) fn locate_file_start(&self) -> Option<Location> {
        self.sources.first().map(|s| location(s.name, s.text, 0..0))
    }

    pub(crate) fn diag(
        &self,
        severity: Severity,
        code: &'static str,
        path: &[Seg],
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            code,
            message,
            path: path_string(path),
            location: self.locate(path, false),
            help,
        }
    }
}

/// Merge `over` into `base`: tables merge recursively, everything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Load the built-in default policy.
pub fn load_default() -> Loaded {
    load(DEFAULT_POLICY_TOML, DEFAULT_POLICY_NAME).expect("the built-in default policy is valid")
}

/// Load a policy from TOML text. `name` is used in diagnostics (usually the file path).
///
/// Unless the text sets `extends = "none"`, it is merged over the built-in default policy.
pub fn load(text: &str, name: &str) -> Result<Loaded, LoadError> {
    let invalid = |diagnostics| LoadError::Invalid {
        file: name.to_string(),
        diagnostics,
    };
    let user = Source::parse(name, text).map_err(|d| invalid(vec![*d]))?;
    let user_table: toml::Table = toml::from_str(text).map_err(|e| {
        invalid(vec![Diagnostic {
            severity: Severity::Error,
            code: "toml-syntax",
            message: first_line(e.message()).to_string(),
            path: String::new(),
            location: e.span().map(|s| location(name, text, s)),
            help: None,
        }])
    })?;
    let standalone =
        matches!(user_table.get("extends"), Some(toml::Value::String(s)) if s == "none");
    let mut sources = vec![user];
    let merged = if standalone || name == DEFAULT_POLICY_NAME {
        user_table
    } else {
        let mut base: toml::Table =
            toml::from_str(DEFAULT_POLICY_TOML).expect("default policy parses");
        sources
            .push(Source::parse(DEFAULT_POLICY_NAME, DEFAULT_POLICY_TOML).expect("default parses"));
        merge(&mut base, user_table);
        base
    };
    let locator = Locator { sources };

    let de = toml::Value::Table(merged);
    let mut policy: Policy = match serde_path_to_error::deserialize(de) {
        Ok(p) => p,
        Err(err) => {
            let mut path: Vec<Seg> = err
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                    _ => None,
                })
                .collect();
            let message = err.inner().to_string();
            let message = first_line(&message).to_string();
            let (code, help, key_only) = if let Some(field) =
                backticked_after(&message, "unknown field")
            {
                // Point at the unknown key itself.
                if path.last() != Some(&Seg::Key(field.clone())) {
                    path.push(Seg::Key(field.clone()));
                }
                let expected = expected_list(&message);
                let help = match crate::validate::did_you_mean(&field, expected.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`? Unknown keys are rejected so that typos do not go unnoticed"),
                    None => "remove the key; unknown keys are rejected so that typos do not go unnoticed".into(),
                };
                ("invalid-value", help, true)
            } else if message.starts_with("missing field") {
                ("invalid-value", "add the missing key, or remove `extends = \"none\"` to inherit it from the built-in default".to_string(), false)
            } else {
                (
                    "invalid-value",
                    "see `changegate policy schema` for the expected type".to_string(),
                    false,
                )
            };
            // A missing key has no span of its own: point at the table that lacks it (or the top
            // of the file).
            let location = locator
                .locate(&path, key_only)
                .or_else(|| locator.locate_file_start());
            return Err(invalid(vec![Diagnostic {
                severity: Severity::Error,
                code,
                message,
                path: path_string(&path),
                location,
                help: Some(help),
            }]));
        }
    };
    policy.extends = Extends::None;
    let diagnostics = validate::validate(&policy, &locator);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        let mut sorted = diagnostics;
        sorted.sort_by_key(|d| d.severity != Severity::Error);
        return Err(invalid(sorted));
    }
    Ok(Loaded {
        policy,
        warnings: diagnostics,
    })
}

fn backticked_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    let start = rest.find('`')? + 1;
    let end = rest[start..].find('`')? + start;
    Some(rest[start..end].to_string())
}

fn expected_list(message: &str) -> Vec<String> {
    let Some((_, rest)) = message.split_once("expected") else {
        return vec![];
    };
    rest.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}
