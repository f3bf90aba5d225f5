//! Rendering helpers shared by the templates under `crates/cli/templates` (askama; settings in
//! `templates/askama.toml`).

use std::fmt::{self, Write};

/// The escaping of every HTML and SVG rendering: `&`, `<`, `>` and `"` as named entities.
/// (Askama's own HTML escaper writes numeric entities and also escapes `'`; the pages and images
/// keep the bytes they always had.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Xml;

impl askama::filters::Escaper for Xml {
    fn write_escaped_str<W: Write>(&self, mut dest: W, s: &str) -> fmt::Result {
        let mut last = 0;
        for (i, b) in s.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => continue,
            };
            dest.write_str(&s[last..i])?;
            dest.write_str(entity)?;
            last = i + 1;
        }
        dest.write_str(&s[last..])
    }
}

#[cfg(test)]
mod tests {
    use askama::filters::Escaper;

    use super::*;

    #[test]
    fn escapes_the_four_characters_and_nothing_else() {
        let mut out = String::new();
        Xml.write_escaped_str(&mut out, "a & b <c> \"d\" 'e' é")
            .unwrap();
        assert_eq!(out, "a &amp; b &lt;c&gt; &quot;d&quot; 'e' é");
    }
}
