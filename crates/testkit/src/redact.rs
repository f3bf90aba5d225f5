//! Deterministic snapshots: replace what differs between runs (temporary paths) and what would
//! churn on every fixture edit (commit ids) by named placeholders before `insta` compares.
//!
//! Commit ids are stable anyway (the git builder pins identity and dates), so redacting them is
//! about review noise, not flakiness: a snapshot then shows `<head>` rather than a hash that
//! changes whenever a fixture file does.

/// An ordered list of `(text, placeholder)` replacements.
#[derive(Debug, Default, Clone)]
pub struct Redactions {
    pairs: Vec<(String, String)>,
}

impl Redactions {
    /// No replacement yet.
    pub fn new() -> Redactions {
        Redactions::default()
    }

    /// Replace every occurrence of `text` by `placeholder`. Empty texts are ignored.
    pub fn text(mut self, text: impl Into<String>, placeholder: impl Into<String>) -> Self {
        let text = text.into();
        if !text.is_empty() {
            self.pairs.push((text, placeholder.into()));
        }
        self
    }

    /// Replace a full commit id by `<label>` and its abbreviations (the 12, 10 and 7 first
    /// characters, as renderings show them) by `<label>` too.
    pub fn commit(mut self, sha: &str, label: &str) -> Self {
        let placeholder = format!("<{label}>");
        for len in [sha.len(), 12, 10, 7] {
            if len <= sha.len() && len >= 7 {
                self.pairs
                    .push((sha[..len].to_string(), placeholder.clone()));
            }
        }
        self
    }

    /// Replace a folder (as written, and canonicalised, e.g. `/tmp` → `/private/tmp`) by
    /// `placeholder`.
    pub fn path(mut self, path: &std::path::Path, placeholder: &str) -> Self {
        let mut seen = vec![path.display().to_string()];
        if let Ok(c) = path.canonicalize() {
            seen.push(c.display().to_string());
        }
        // Longest first, so a canonical path that extends the written one wins.
        seen.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in seen {
            self.pairs.push((s, placeholder.to_string()));
        }
        self
    }

    /// Apply every replacement, longest text first (so a full id goes before its abbreviation).
    pub fn apply(&self, s: &str) -> String {
        let mut pairs: Vec<&(String, String)> = self.pairs.iter().collect();
        pairs.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        let mut out = s.to_string();
        for (t, p) in pairs {
            out = out.replace(t.as_str(), p);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_ids_before_abbreviations_and_paths() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let r = Redactions::new()
            .commit(sha, "head")
            .path(std::path::Path::new("/tmp/x"), "[repo]")
            .text("", "never");
        assert_eq!(
            r.apply(&format!("{sha} 0123456789 0123456 /tmp/x/a")),
            "<head> <head> <head> [repo]/a"
        );
        assert_eq!(r.apply("unrelated"), "unrelated");
    }
}
