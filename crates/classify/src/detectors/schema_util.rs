//! Small helpers shared by the schema and API detectors (`prisma`, `sql`, `openapi`, `nestjs`).
//!
//! They exist so that every one of those detectors builds facets, evidence and the fail-closed
//! `unparseable` facet the same way: a path, a 1-based line, the side, and a snippet.

use crate::{Evidence, Facet, Side};

/// Build a facet with one piece of evidence.
pub(crate) fn facet(
    detector: &str,
    kind: &str,
    details: impl Into<String>,
    evidence: Evidence,
) -> Facet {
    Facet {
        kind: kind.to_string(),
        details: details.into(),
        evidence: vec![evidence],
        detector: detector.to_string(),
    }
}

/// Evidence at `path:line` on `side`, with the trimmed source line as snippet when known.
pub(crate) fn evidence(path: &str, side: Side, text: Option<&str>, line: Option<u32>) -> Evidence {
    let snippet = match (text, line) {
        (Some(t), Some(l)) => line_text(t, l),
        _ => None,
    };
    Evidence {
        path: path.to_string(),
        line,
        side,
        snippet,
    }
}

/// The `unparseable` facet: the parser's message and location, never a silent skip.
pub(crate) fn unparseable(
    detector: &str,
    path: &str,
    side: Side,
    line: Option<u32>,
    what: &str,
    message: &str,
) -> Facet {
    let side_name = match side {
        Side::Base => "base",
        Side::Head => "head",
    };
    Facet {
        kind: "unparseable".to_string(),
        details: format!("{what} in {side_name} version could not be parsed: {message}"),
        evidence: vec![Evidence {
            path: path.to_string(),
            line,
            side,
            snippet: Some(message.to_string()),
        }],
        detector: detector.to_string(),
    }
}

/// Decode a file as UTF-8 text (a leading BOM is dropped).
pub(crate) fn as_text(bytes: &[u8]) -> Result<&str, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// 1-based line of the first line that differs between two texts (on the `b` side).
pub(crate) fn first_diff_line(a: &str, b: &str) -> u32 {
    let mut n = 1u32;
    let (mut la, mut lb) = (a.lines(), b.lines());
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n = n.saturating_add(1),
            _ => return n,
        }
    }
}

/// The trimmed text of a 1-based line, cut to a readable length.
pub(crate) fn line_text(text: &str, line: u32) -> Option<String> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let t = l.trim();
    if t.is_empty() {
        return None;
    }
    Some(truncate(t, 160))
}

/// Cut a string to at most `max` characters, marking the cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Test support: file contents held in maps.
#[cfg(test)]
pub(crate) mod testing {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use changegate_policy::ClassifySettings;

    use crate::{Change, ChangedFile, Contents, Detector, FileStatus, Finding};

    /// Base and head file contents in memory.
    #[derive(Default)]
    pub(crate) struct MapContents {
        pub(crate) base: BTreeMap<String, Vec<u8>>,
        pub(crate) head: BTreeMap<String, Vec<u8>>,
    }

    impl Contents for MapContents {
        fn base(&self, path: &str) -> Option<Cow<'_, [u8]>> {
            self.base.get(path).map(|v| Cow::Borrowed(v.as_slice()))
        }
        fn head(&self, path: &str) -> Option<Cow<'_, [u8]>> {
            self.head.get(path).map(|v| Cow::Borrowed(v.as_slice()))
        }
    }

    /// The classify settings of the built-in default policy.
    pub(crate) fn default_settings() -> ClassifySettings {
        changegate_policy::load_default().policy.classify
    }

    /// Run `detector` on files given as `(path, base, head)`; `None` means absent on that side.
    pub(crate) fn run_with(
        detector: &dyn Detector,
        settings: &ClassifySettings,
        files: &[(&str, Option<&str>, Option<&str>)],
    ) -> Finding {
        let mut contents = MapContents::default();
        let mut changed = Vec::new();
        for (path, base, head) in files {
            if let Some(b) = base {
                contents
                    .base
                    .insert((*path).to_string(), b.as_bytes().to_vec());
            }
            if let Some(h) = head {
                contents
                    .head
                    .insert((*path).to_string(), h.as_bytes().to_vec());
            }
            let status = match (base, head) {
                (None, Some(_)) => FileStatus::Added,
                (Some(_), None) => FileStatus::Deleted,
                (Some(b), Some(h)) if b == h => continue,
                _ => FileStatus::Modified,
            };
            changed.push(ChangedFile {
                path: (*path).to_string(),
                old_path: None,
                status,
                submodule: false,
            });
        }
        let change = Change {
            files: &changed,
            contents: &contents,
            settings,
        };
        detector.detect(&change)
    }

    /// [`run_with`] under the default policy's settings.
    pub(crate) fn run(
        detector: &dyn Detector,
        files: &[(&str, Option<&str>, Option<&str>)],
    ) -> Finding {
        run_with(detector, &default_settings(), files)
    }

    /// The facet kinds of a finding, in order.
    pub(crate) fn kinds(f: &Finding) -> Vec<&str> {
        f.facets.iter().map(|f| f.kind.as_str()).collect()
    }
}
