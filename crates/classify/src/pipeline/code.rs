//! Source files no detector explains: `code-changed`, or `bugfix-covered` when a coverage report
//! covers enough of the changed lines.

use changegate_policy::Policy;
use changegate_policy::facets::FacetCode;
use rayon::prelude::*;

use super::ClassifyInput;
use crate::facet::facet;
use crate::{ChangedFile, Evidence, Facet, Side};

/// Head lines (1-based) added or changed by the edit.
pub(super) fn changed_lines(base: &str, head: &str) -> Vec<u32> {
    // Lines end at `\n` only, as editors and coverage reports count them (a lone `\r` is not a
    // line break).
    let b: Vec<&str> = base.split_inclusive('\n').collect();
    let h: Vec<&str> = head.split_inclusive('\n').collect();
    // Lines shared at the start and the end are unchanged in any minimal diff: only the middle
    // goes through the diff algorithm (most edits touch a few lines of a file), as git's own
    // diff trims.
    let pre = b.iter().zip(&h).take_while(|(x, y)| x == y).count();
    let suf = b[pre..]
        .iter()
        .rev()
        .zip(h[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (bm, hm) = (&b[pre..b.len() - suf], &h[pre..h.len() - suf]);
    let mut out = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, bm, hm) {
        let (tag, _, new) = op.as_tag_tuple();
        if matches!(tag, similar::DiffTag::Insert | similar::DiffTag::Replace) {
            out.extend(new.map(|i| (i + pre) as u32 + 1));
        }
    }
    out
}

pub(super) fn code_facet(
    files: &[&ChangedFile],
    input: &ClassifyInput<'_>,
    policy: &Policy,
    notes: &mut Vec<String>,
) -> Facet {
    let threshold = policy
        .rules
        .get(FacetCode::BugfixCovered.as_str())
        .and_then(|r| r.min_changed_line_coverage);
    // Per file, in parallel: (measured lines, covered lines, measurable, evidence).
    let per_file: Vec<(usize, usize, bool, Evidence)> = files
        .par_iter()
        .map(|f| {
            let (head, base) = (
                input.contents.head(&f.path),
                input.contents.base(f.base_path()),
            );
            let head = head.as_deref().map(String::from_utf8_lossy);
            let base = base.as_deref().map(String::from_utf8_lossy);
            let Some(head) = head else {
                let ev = Evidence {
                    path: f.path.clone(),
                    line: None,
                    side: Side::Base,
                    snippet: Some("deleted".into()),
                };
                return (0, 0, false, ev);
            };
            let lines = changed_lines(base.as_deref().unwrap_or(""), &head);
            let first = lines.first().copied();
            let (m, c, what) = match input.coverage.map(|cov| cov.lines(&f.path)) {
                None => (0, 0, format!("{} changed lines", lines.len())),
                Some(None) => {
                    let head_lines: Vec<&str> = head.lines().collect();
                    let n = lines
                        .iter()
                        .filter(|l| {
                            head_lines
                                .get(**l as usize - 1)
                                .is_some_and(|t| !t.trim().is_empty())
                        })
                        .count();
                    (
                        n,
                        0,
                        format!("{n} changed lines, file absent from the coverage report"),
                    )
                }
                Some(Some(hits)) => {
                    let m = lines.iter().filter(|l| hits.contains_key(l)).count();
                    let c = lines
                        .iter()
                        .filter(|l| hits.get(l).is_some_and(|h| *h > 0))
                        .count();
                    (m, c, format!("{c}/{m} changed executable lines covered"))
                }
            };
            let ev = Evidence {
                path: f.path.clone(),
                line: first,
                side: Side::Head,
                snippet: Some(what),
            };
            (m, c, true, ev)
        })
        .collect();
    let (mut measured, mut covered) = (0usize, 0usize);
    let mut all_measurable = true;
    let mut evidence = Vec::with_capacity(per_file.len());
    for (m, c, ok, ev) in per_file {
        measured += m;
        covered += c;
        all_measurable &= ok;
        evidence.push(ev);
    }
    let n = files.len();
    let pct = if measured > 0 {
        covered as f64 * 100.0 / measured as f64
    } else {
        0.0
    };
    match (input.coverage, threshold) {
        (Some(_), Some(t)) if all_measurable && measured > 0 && pct > t => facet(
            "coverage",
            FacetCode::BugfixCovered,
            format!(
                "{n} source files; {covered}/{measured} changed lines covered ({pct:.1}% > {t}%)"
            ),
            evidence,
        ),
        (Some(_), Some(t)) => facet(
            "coverage",
            FacetCode::CodeChanged,
            if !all_measurable {
                format!(
                    "{n} source files, some deleted (no coverage possible); {pct:.1}% of changed lines covered"
                )
            } else {
                format!(
                    "{n} source files; {covered}/{measured} changed lines covered ({pct:.1}% ≤ {t}%)"
                )
            },
            evidence,
        ),
        (Some(_), None) => {
            notes.push("the policy sets no rules.bugfix-covered.min_changed_line_coverage: coverage ignored".into());
            facet(
                "coverage",
                FacetCode::CodeChanged,
                format!("{n} source files changed"),
                evidence,
            )
        }
        (None, _) => facet(
            "coverage",
            FacetCode::CodeChanged,
            format!("{n} source files changed (no coverage report)"),
            evidence,
        ),
    }
}
