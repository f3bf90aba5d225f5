//! `logging`: log-level adjustments in code, the policy's "Log level adjustments (debug → info)".
//!
//! A changed TypeScript/JavaScript file whose only difference is the level of log calls
//! (`logger.error(…)` → `logger.warn(…)`, `console.log` → `console.debug`) or a level literal on a
//! line that configures logging (`new Logger(…, { logLevels: ['error', 'warn'] })`, pino/winston
//! `level: 'info'`, `NestFactory.create(AppModule, { logger: ['error'] })`) is `log-level` and
//! explained. The test is exact, not a guess over diff lines: both versions, with each level word
//! in those positions replaced by one placeholder, must be byte-identical, so any other edit in
//! the file leaves it to the code/coverage rule.

use changegate_policy::facets::FacetCode;

use crate::facet::{evidence_line, facet};
use crate::util::{ext, first_diff_line, per_file};
use crate::{Change, Detector, FileStatus, Finding, Side};

/// The log-level-in-code detector.
pub struct Logging;

const EXTS: &[&str] = &["ts", "tsx", "mts", "cts", "js", "jsx", "mjs", "cjs"];
/// Level names of Nest's Logger, pino, winston, bunyan and the console.
const LEVELS: &[&str] = &[
    "error", "warn", "warning", "info", "log", "debug", "verbose", "trace", "fatal", "silly",
    "http", "silent",
];

impl Detector for Logging {
    fn id(&self) -> &'static str {
        "logging"
    }
    fn description(&self) -> &'static str {
        "Log-level adjustments in TS/JS code: log calls' level (logger.error → logger.warn) or a logging level literal, nothing else"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[FacetCode::LogLevel]
    }
    fn splits_files(&self) -> bool {
        true
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        per_file(
            change.files,
            || (),
            |_, f, out| {
                if f.status != FileStatus::Modified
                    || !EXTS.contains(&ext(&f.path).as_str())
                    || change.is_binary(f)
                {
                    return;
                }
                // Borrowed from the contents' cache: both sides present and UTF-8, or nothing
                // to say (a copy of each side showed in the profile).
                let (Some(bb), Some(hb)) = (
                    change.contents.base(f.base_path()),
                    change.contents.head(&f.path),
                ) else {
                    return;
                };
                let (Ok(b), Ok(h)) = (std::str::from_utf8(&bb), std::str::from_utf8(&hb)) else {
                    return;
                };
                if b == h || !mentions_levels(b) {
                    return;
                }
                if normalise(b) != normalise(h) {
                    return;
                }
                let line = first_diff_line(b, h);
                out.facets.push(facet(
                    self.id(),
                    FacetCode::LogLevel,
                    format!("{}: only log levels changed", f.path),
                    vec![evidence_line(&f.path, Side::Head, Some(h), Some(line))],
                ));
                out.explained.insert(f.path.clone());
            },
        )
    }
}

/// `.level(` for each of [`LEVELS`], written out (a `format!` per level per file showed in the
/// profile); a test checks it matches.
const CALLS: &[&str] = &[
    ".error(",
    ".warn(",
    ".warning(",
    ".info(",
    ".log(",
    ".debug(",
    ".verbose(",
    ".trace(",
    ".fatal(",
    ".silly(",
    ".http(",
    ".silent(",
];

/// Words besides [`CALLS`] that make a file worth comparing line by line.
const WORDS: &[&str] = &["level", "Level", "logger"];

fn mentions_levels(text: &str) -> bool {
    // One pass for all the needles (was one `contains` scan each, on every changed source file).
    static NEEDLES: std::sync::LazyLock<crate::util::AnyOf> =
        std::sync::LazyLock::new(|| crate::util::AnyOf::new(&[CALLS, WORDS].concat()));
    NEEDLES.is_in(text)
}

/// Whether the line, lower-cased (ASCII), contains `level` or `logger`: one pass over the bytes
/// and no lower-cased copy (one allocation per line showed in the profile).
fn logging_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        (c == b'l' || c == b'L')
            && [&b"level"[..], &b"logger"[..]]
                .iter()
                .any(|n| b[i..].len() >= n.len() && b[i..i + n.len()].eq_ignore_ascii_case(n))
    })
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// The text with every level word in a log position replaced by `\u{1}`: `.level(` anywhere, and
/// `'level'` / `"level"` on a line that mentions a logger or a level.
pub(crate) fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let logging_line = logging_line(line);
        let bytes = line.as_bytes();
        let mut i = 0;
        let mut start = 0;
        while i < bytes.len() {
            let c = bytes[i];
            let quoted = (c == b'\'' || c == b'"' || c == b'`') && logging_line;
            if c == b'.' || quoted {
                let word_start = i + 1;
                let mut j = word_start;
                while j < bytes.len() && is_ident(bytes[j]) {
                    j += 1;
                }
                let word = &line[word_start..j];
                let closes = if c == b'.' {
                    j < bytes.len() && bytes[j] == b'('
                } else {
                    j < bytes.len() && bytes[j] == c
                };
                if closes
                    && LEVELS.contains(&word)
                    && (c != b'.'
                        || word_start == 1
                        || is_ident(bytes[i - 1])
                        || bytes[i - 1] == b')')
                {
                    out.push_str(&line[start..word_start]);
                    out.push('\u{1}');
                    start = j;
                    i = j;
                    continue;
                }
            }
            i += 1;
        }
        out.push_str(&line[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{CALLS, WORDS, mentions_levels, normalise};

    /// The one-pass check answers what one `contains` per needle answers.
    #[test]
    fn mentions_levels_is_any_needle() {
        let naive = |t: &str| CALLS.iter().chain(WORDS).any(|n| t.contains(n));
        let needles: Vec<&str> = CALLS.iter().chain(WORDS).copied().collect();
        let texts = crate::util::needle_texts(
            &needles,
            &[
                "",
                "l",
                "export const x = 1;\n",
                "LEVEL Logger .Error( .warn (",
            ],
        );
        for t in &texts {
            assert_eq!(mentions_levels(t), naive(t), "{t:?}");
        }
    }

    #[test]
    fn logging_line_is_lower_case_contains() {
        for line in [
            "LOG_LEVEL=1",
            "this.Logger",
            "lev el",
            "LéVEL",
            "",
            "logge",
            "l",
            "xlevel",
            "LOGGER\n",
        ] {
            let lower = line.to_ascii_lowercase();
            assert_eq!(
                super::logging_line(line),
                lower.contains("level") || lower.contains("logger"),
                "{line}"
            );
        }
    }

    #[test]
    fn calls_are_the_levels() {
        let want: Vec<String> = super::LEVELS.iter().map(|l| format!(".{l}(")).collect();
        assert_eq!(CALLS, want);
    }

    #[test]
    fn level_words_in_log_positions_only() {
        let same = |a: &str, b: &str| normalise(a) == normalise(b);
        assert!(same(
            "this.logger.error(`x ${id}`);\n",
            "this.logger.warn(`x ${id}`);\n"
        ));
        assert!(same(
            "const logger = pino({ level: 'info' });\n",
            "const logger = pino({ level: 'debug' });\n"
        ));
        // A level added to a list is not a level swap: left to the code rule (a known limit).
        assert!(!same(
            "NestFactory.create(AppModule, { logger: ['error', 'warn'] });\n",
            "NestFactory.create(AppModule, { logger: ['error', 'warn', 'log'] });\n"
        ));
        assert!(!same(
            "this.logger.error('x');\n",
            "this.logger.error('y');\n"
        ));
        // A status string on a line that is not about logging is not a level.
        assert!(!same(
            "return { status: 'error' };\n",
            "return { status: 'info' };\n"
        ));
    }
}
