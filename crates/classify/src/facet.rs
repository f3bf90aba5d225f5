//! The one facet builder every detector uses: a facet, its evidence, and the fail-closed
//! `unparseable` facet, always as (detector, code, what, where).
//!
//! Facet codes are [`FacetCode`] variants, so a misspelt code does not compile; the pipeline
//! checks that a detector emits only the codes it declares (see `pipeline`).
//!
//! Evidence points at a line when it can, so reviewers jump straight to it. Detectors that parse
//! with positions pass the line ([`evidence_line`]); structured parsers (JSON, YAML, TOML) keep
//! no positions in their value trees, so their lines are found afterwards by searching the text
//! for the changed key ([`evidence_at`]).

use changegate_policy::facets::FacetCode;

use crate::util::{line_snippet, line_text};
use crate::{Evidence, Facet, Side};

/// A facet of `kind` found by `detector`.
pub(crate) fn facet(
    detector: &str,
    kind: FacetCode,
    details: impl Into<String>,
    evidence: Vec<Evidence>,
) -> Facet {
    Facet {
        kind,
        details: details.into(),
        evidence,
        detector: detector.to_string(),
    }
}

/// Evidence at the first line of `text` holding every needle (or else the first needle), with
/// that line as snippet.
pub(crate) fn evidence_at(
    path: &str,
    side: Side,
    text: Option<&str>,
    needles: &[&str],
) -> Evidence {
    let line = text.and_then(|t| crate::util::find_line(t, needles));
    Evidence {
        path: path.to_string(),
        line,
        side,
        snippet: text.and_then(|t| line_text(t, line)),
    }
}

/// Evidence at a known `path:line` on `side`, with the trimmed source line (cut to a readable
/// length, none when blank) as snippet.
pub(crate) fn evidence_line(
    path: &str,
    side: Side,
    text: Option<&str>,
    line: Option<u32>,
) -> Evidence {
    let snippet = match (text, line) {
        (Some(t), Some(l)) => line_snippet(t, l),
        _ => None,
    };
    Evidence {
        path: path.to_string(),
        line,
        side,
        snippet,
    }
}

/// Evidence with a free-form snippet and no line.
pub(crate) fn evidence_note(path: &str, side: Side, note: impl Into<String>) -> Evidence {
    Evidence {
        path: path.to_string(),
        line: None,
        side,
        snippet: Some(note.into()),
    }
}

/// The fail-closed facet for an input a detector could not parse, from the parser's error (its
/// line is taken from the message when it says "line N"): "`what` could not be parsed (side
/// version)".
pub(crate) fn unparseable(
    detector: &str,
    path: &str,
    side: Side,
    what: &str,
    err: impl std::fmt::Display,
) -> Facet {
    let err = err.to_string();
    facet(
        detector,
        FacetCode::Unparseable,
        format!("{what} could not be parsed ({} version)", side_name(side)),
        vec![Evidence {
            path: path.to_string(),
            line: line_of_error(&err),
            side,
            snippet: Some(err),
        }],
    )
}

/// The fail-closed facet for an input a detector could not parse, at a known line, with the
/// message in the details: "`what` in side version could not be parsed: message" (the schema and
/// API detectors' wording).
pub(crate) fn unparseable_at(
    detector: &str,
    path: &str,
    side: Side,
    line: Option<u32>,
    what: &str,
    message: &str,
) -> Facet {
    facet(
        detector,
        FacetCode::Unparseable,
        format!(
            "{what} in {} version could not be parsed: {message}",
            side_name(side)
        ),
        vec![Evidence {
            path: path.to_string(),
            line,
            side,
            snippet: Some(message.to_string()),
        }],
    )
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Base => "base",
        Side::Head => "head",
    }
}

/// Parsers report positions as "line N" or "N:M"; pick the line when present.
fn line_of_error(msg: &str) -> Option<u32> {
    let lower = msg.to_ascii_lowercase();
    if let Some(i) = lower.find("line ") {
        let digits: String = lower[i + 5..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        return digits.parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_point_at_their_line() {
        assert_eq!(line_of_error("expected value at line 4 column 2"), Some(4));
        assert_eq!(line_of_error("bad"), None);
        let f = unparseable("d", "a.json", Side::Head, "JSON", "oops at line 3");
        assert_eq!(f.kind, FacetCode::Unparseable);
        assert_eq!(f.details, "JSON could not be parsed (head version)");
        assert_eq!(f.evidence[0].line, Some(3));
        let f = unparseable_at("d", "a.sql", Side::Base, Some(2), "SQL", "oops");
        assert_eq!(f.details, "SQL in base version could not be parsed: oops");
        assert_eq!(f.evidence[0].line, Some(2));
    }

    #[test]
    fn evidence_snippets() {
        let t = "a\n  b: 1  \n\nc\n";
        let e = evidence_at("p", Side::Head, Some(t), &["b"]);
        assert_eq!((e.line, e.snippet.as_deref()), (Some(2), Some("b: 1")));
        let e = evidence_line("p", Side::Head, Some(t), Some(3));
        assert_eq!((e.line, e.snippet), (Some(3), None));
        let e = evidence_line("p", Side::Base, Some(t), Some(4));
        assert_eq!(e.snippet.as_deref(), Some("c"));
    }
}
