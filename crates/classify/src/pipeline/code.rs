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

/// `String::from_utf8_lossy`, with the fast validation first: almost every source file is UTF-8,
/// and the lossy decoder checks byte by byte.
fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    std::str::from_utf8(b).map_or_else(|_| String::from_utf8_lossy(b), std::borrow::Cow::Borrowed)
}

pub(super) fn code_facet(
    files: &[&ChangedFile],
    input: &ClassifyInput<'_>,
    policy: &Policy,
    notes: &mut Vec<String>,
) -> Facet {
    let rule = policy.rules.get(FacetCode::BugfixCovered.as_str());
    let threshold = rule.and_then(|r| r.min_changed_line_coverage);
    let marker =
        rule.and_then(|r| fix_marker(input.messages, input.labels, &r.fix_types, &r.fix_labels));
    // Per file, in parallel: (measured lines, covered lines, measurable, evidence).
    let per_file: Vec<(usize, usize, bool, Evidence)> = files
        .par_iter()
        .map(|f| {
            let (head, base) = (
                input.contents.head(&f.path),
                input.contents.base(f.base_path()),
            );
            let head = head.as_deref().map(lossy);
            let base = base.as_deref().map(lossy);
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
        (Some(_), Some(t)) if all_measurable && measured > 0 && pct > t && marker.is_some() => {
            facet(
                "coverage",
                FacetCode::BugfixCovered,
                format!(
                    "{n} source files; {covered}/{measured} changed lines covered ({pct:.1}% > {t}%); marked as a fix by {}",
                    marker.unwrap_or_default()
                ),
                evidence,
            )
        }
        (Some(_), Some(t)) if all_measurable && measured > 0 && pct > t => facet(
            "coverage",
            FacetCode::CodeChanged,
            format!(
                "{n} source files; {covered}/{measured} changed lines covered ({pct:.1}% > {t}%), but not marked as a fix (no commit of type rules.bugfix-covered.fix_types, no label of fix_labels)"
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

/// What marks the change as a bug fix, if anything: a pull-request label of `fix_labels`, or every
/// non-merge commit of the change having a conventional-commit type of `fix_types`
/// (`fix: …`, `fix(api)!: …`). A change mixing a `feat` commit with fixes is not a bug fix.
pub(super) fn fix_marker(
    messages: &[String],
    labels: &[String],
    fix_types: &[String],
    fix_labels: &[String],
) -> Option<String> {
    if let Some(l) = labels
        .iter()
        .find(|l| fix_labels.iter().any(|f| f.eq_ignore_ascii_case(l.trim())))
    {
        return Some(format!("pull-request label `{l}`"));
    }
    let subjects: Vec<&str> = messages
        .iter()
        .map(|m| m.lines().next().unwrap_or("").trim())
        .filter(|s| !s.starts_with("Merge "))
        .collect();
    if subjects.is_empty() {
        return None;
    }
    let mut types = Vec::new();
    for s in &subjects {
        let t = commit_type(s)?;
        if !fix_types.iter().any(|f| f.eq_ignore_ascii_case(t)) {
            return None;
        }
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Some(format!("commit type `{}`", types.join("`, `")))
}

/// The conventional-commit type of a subject line (`fix(api)!: x` → `fix`).
pub(super) fn commit_type(subject: &str) -> Option<&str> {
    let (head, _) = subject.split_once(':')?;
    let head = head.trim_end_matches('!');
    let ty = head.split('(').next()?;
    (!ty.is_empty() && ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')).then_some(ty)
}

#[cfg(test)]
mod fix_tests {
    use super::*;

    #[test]
    fn markers() {
        let types = vec!["fix".to_string(), "hotfix".to_string()];
        let labels = vec!["bug".to_string()];
        let m = |msgs: &[&str], l: &[&str]| {
            fix_marker(
                &msgs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &l.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &types,
                &labels,
            )
        };
        assert!(m(&["fix(chat): retry once\n\nbody"], &[]).is_some());
        assert!(m(&["fix!: drop"], &[]).is_some());
        assert!(m(&["feat: x", "fix: y"], &[]).is_none());
        assert!(m(&["change"], &[]).is_none());
        assert!(m(&["change"], &["Bug"]).is_some());
        assert!(m(&[], &[]).is_none());
        assert!(m(&["Merge pull request #1", "fix: y"], &[]).is_some());
        assert_eq!(commit_type("refactor(x): y"), Some("refactor"));
        assert_eq!(commit_type("no type here"), None);
    }
}
