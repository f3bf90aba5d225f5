//! Small helpers shared by detectors: paths, glob sets, text decoding, locating lines, and
//! spreading files over the thread pool. Facets and evidence are built in [`crate::facet`].

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use crate::{ChangedFile, Contents, Finding, Side};

/// Run `each` on every changed file, in parallel (rayon's work-stealing pool, shared with the
/// other detectors), and merge the findings in file order so the result does not depend on
/// scheduling. `init` makes per-worker scratch state (parser arenas).
pub(crate) fn per_file<S, I, F>(files: &[ChangedFile], init: I, each: F) -> Finding
where
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, &ChangedFile, &mut Finding) + Sync + Send,
{
    // Chunks of files, not single files: a job (and its scratch state) per 128 files keeps
    // the scheduling overhead and the arenas' first-touch cost small beside the work.
    // One job per chunk (`with_max_len(1)`): rayon's adaptive splitting otherwise stops at a few
    // long runs of chunks, and when the files a detector reads sit together (1,000 manifests
    // in one run of the change) one worker kept them all while the other went idle.
    let parts: Vec<Finding> = files
        .par_chunks(128)
        .with_max_len(1)
        .map_init(init, |state, chunk| {
            let mut out = Finding::default();
            for f in chunk {
                each(state, f, &mut out);
            }
            out
        })
        .collect();
    let mut out = Finding::default();
    for p in parts {
        out.facets.extend(p.facets);
        out.explained.extend(p.explained);
    }
    out
}

/// Whether a text contains any of a fixed set of needles, in one pass: a SIMD packed searcher
/// (Teddy) where the CPU has one, forced past its false-positive heuristic (every candidate is
/// verified, so only speed is at stake), else an Aho-Corasick automaton. Replaces one
/// `contains` scan per needle in the detectors' cheap relevance checks, which ran on every
/// changed source file.
pub(crate) enum AnyOf {
    Packed(aho_corasick::packed::Searcher),
    Automaton(aho_corasick::AhoCorasick),
}

impl AnyOf {
    pub(crate) fn new(needles: &[&str]) -> AnyOf {
        aho_corasick::packed::Config::new()
            .heuristic_pattern_limits(false)
            .builder()
            .extend(needles)
            .build()
            .map_or_else(
                || AnyOf::Automaton(aho_corasick::AhoCorasick::new(needles).expect("needles")),
                AnyOf::Packed,
            )
    }

    pub(crate) fn is_in(&self, text: &str) -> bool {
        match self {
            AnyOf::Packed(s) => s.find(text).is_some(),
            AnyOf::Automaton(a) => a.is_match(text),
        }
    }
}

/// A glob set where `*` does not cross `/` and `**/` matches any number of directories. Invalid
/// globs are skipped (the policy validator reports them).
pub(crate) fn globset(patterns: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        if let Ok(g) = GlobBuilder::new(p).literal_separator(true).build() {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

/// The file name part of a path.
pub(crate) fn file_name(path: &str) -> &str {
    // A byte scan: every detector asks this of every changed path.
    match path.bytes().rposition(|b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// The directory part of a path (`""` at the root).
pub(crate) fn dir_of(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

/// Join a directory and a file name.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Lower-cased extension, without the dot.
pub(crate) fn ext(path: &str) -> String {
    let name = file_name(path);
    name.bytes()
        .rposition(|b| b == b'.')
        .map(|i| name[i + 1..].to_ascii_lowercase())
        .unwrap_or_default()
}

/// Base and head text of a file; `Err` carries the side and reason when a side is not UTF-8.
pub(crate) struct Texts {
    pub base: Option<String>,
    pub head: Option<String>,
}

/// Read both sides of a changed file as UTF-8 text.
pub(crate) fn texts(contents: &dyn Contents, f: &ChangedFile) -> Result<Texts, (Side, String)> {
    let base = match contents.base(f.base_path()) {
        Some(b) => Some(
            String::from_utf8(b.into_owned())
                .map_err(|e| (Side::Base, format!("not UTF-8: {e}")))?,
        ),
        None => None,
    };
    let head = match contents.head(&f.path) {
        Some(b) => Some(
            String::from_utf8(b.into_owned())
                .map_err(|e| (Side::Head, format!("not UTF-8: {e}")))?,
        ),
        None => None,
    };
    Ok(Texts { base, head })
}

/// Read one side of any path (changed or not) as text.
pub(crate) fn text_at(
    contents: &dyn Contents,
    side: Side,
    path: &str,
) -> Option<Result<String, String>> {
    let bytes = match side {
        Side::Base => contents.base(path),
        Side::Head => contents.head(path),
    }?;
    Some(String::from_utf8(bytes.into_owned()).map_err(|e| format!("not UTF-8: {e}")))
}

/// 1-based number of the first line containing every needle (in order of appearance not
/// required), or the first line containing the first needle.
pub(crate) fn find_line(text: &str, needles: &[&str]) -> Option<u32> {
    // Each needle's searcher is built once, not once per line (`str::contains` set up a
    // two-way searcher for every line of every file that evidence was searched in).
    let finders: Vec<memchr::memmem::Finder<'_>> = needles
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| memchr::memmem::Finder::new(n.as_bytes()))
        .collect();
    let first_needle = finders.first()?;
    let mut first = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.as_bytes();
        if finders.iter().all(|f| f.find(line).is_some()) {
            return Some(i as u32 + 1);
        }
        if first.is_none() && first_needle.find(line).is_some() {
            first = Some(i as u32 + 1);
        }
    }
    first
}

/// The trimmed text of a 1-based line (the snippet of evidence found by search).
pub(crate) fn line_text(text: &str, line: Option<u32>) -> Option<String> {
    let n = line? as usize;
    text.lines()
        .nth(n.checked_sub(1)?)
        .map(|l| l.trim().chars().take(200).collect())
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

/// The trimmed text of a 1-based line cut to a readable length, `None` when blank (the snippet
/// of evidence at a known line).
pub(crate) fn line_snippet(text: &str, line: u32) -> Option<String> {
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

/// The first integer in a version-ish string (`>=18.2` → 18, `v20` → 20, `18-alpine` → 18).
pub(crate) fn leading_major(s: &str) -> Option<u64> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let digits: String = s[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Texts that put each needle (all at least two bytes, ASCII-led) at a text's start, at its end,
/// alone and cut short by its last byte, after `extra`: what a test of a one-pass needle search
/// ([`AnyOf`]) compares with one `contains` per needle.
#[cfg(test)]
pub(crate) fn needle_texts(needles: &[&str], extra: &[&str]) -> Vec<String> {
    let mut texts: Vec<String> = extra.iter().map(|t| t.to_string()).collect();
    for n in needles {
        texts.push(n.to_string());
        texts.push(format!(
            "{n} at the start, then some plain code that goes on"
        ));
        texts.push(format!(
            "some plain code that goes on for a while, then {n}"
        ));
        texts.push(format!("x{}", &n[..n.len() - 1]));
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_respect_separators() {
        let g = globset(&["**/*.md".into(), "LICENSE*".into(), "docs/**".into()]);
        assert!(g.is_match("README.md"));
        assert!(g.is_match("a/b/c.md"));
        assert!(g.is_match("docs/x/y.png"));
        assert!(g.is_match("LICENSE-MIT"));
        assert!(!g.is_match("src/LICENSE.rs"));
        assert!(!g.is_match("src/main.ts"));
    }

    #[test]
    fn majors_and_lines() {
        assert_eq!(leading_major(">=18.2"), Some(18));
        assert_eq!(leading_major("v20.1.0"), Some(20));
        assert_eq!(leading_major("lts/*"), None);
        assert_eq!(find_line("a\nb: 1\nc: b\n", &["c", "b"]), Some(3));
    }
}
