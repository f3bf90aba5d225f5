//! Where a value comes from: paths into the policy document, the source files with their spans,
//! and the [`Locator`] that turns a path into a file, line and column.
//!
//! Locations work by path: the raw pass and validation both report the dotted path of the value
//! they reject, and a path is resolved to a byte span in the user's file when the value was written
//! there, else in the built-in default. This module knows nothing of the policy's schema or rules;
//! every other step depends on it, it depends on none of them.

use std::ops::Range;

use toml_edit::{Item, TableLike, Value};

use crate::diag::{DiagCode, Diagnostic, Location, Severity};

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
    /// Parse `text`; a syntax error becomes a `toml-syntax` diagnostic.
    pub(crate) fn parse(name: &'a str, text: &'a str) -> Result<Self, Box<Diagnostic>> {
        match toml_edit::Document::parse(text) {
            Ok(doc) => Ok(Source { name, text, doc }),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                Err(Box::new(Diagnostic {
                    severity: Severity::Error,
                    code: DiagCode::TomlSyntax,
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

pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

pub(crate) fn location(file: &str, text: &str, span: Range<usize>) -> Location {
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

impl<'a> Locator<'a> {
    /// Sources in the order they are searched: the user's file, then the built-in default.
    pub(crate) fn new(sources: Vec<Source<'a>>) -> Self {
        Locator { sources }
    }

    /// Location of the value at `path` (of its key when `key_only`), or of the deepest part of
    /// the path that exists, in the first source that has it.
    pub(crate) fn locate(&self, path: &[Seg], key_only: bool) -> Option<Location> {
        for src in &self.sources {
            if src.has(path) {
                let span = src.span_of(path, key_only)?;
                return Some(location(src.name, src.text, span));
            }
        }
        None
    }

    /// The top of the user's file.
    pub(crate) fn locate_file_start(&self) -> Option<Location> {
        self.sources.first().map(|s| location(s.name, s.text, 0..0))
    }

    /// A diagnostic for the value at `path`, located in the file it comes from.
    pub(crate) fn diag(
        &self,
        code: DiagCode,
        path: &[Seg],
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: code.severity(),
            code,
            message,
            path: path_string(path),
            location: self.locate(path, false),
            help,
        }
    }
}
