//! `docs`: documentation-only changes.
//!
//! A file counts as documentation when it matches `classify.docs_paths` in the policy. A source
//! file counts as a comment-only edit when both versions parse and the code without comments is
//! the same: TypeScript/JavaScript are parsed with oxc and their ASTs compared ignoring spans
//! (comments and whitespace are not part of the AST); Rust is lexed with rustc's own lexer and the
//! token streams compared with comment and whitespace tokens removed. A regex over diff lines
//! would call `x = 1; // note` → `x = 2; // note` a comment edit; tokens do not.

use changegate_policy::facets::FacetCode;
use oxc_allocator::Allocator;
use oxc_span::SourceType;
use ra_ap_rustc_lexer::{FrontmatterAllowed, TokenKind, tokenize};

use crate::facet::{evidence_note, facet};
use crate::util::{ext, globset, per_file};
use crate::{Change, Detector, FileStatus, Finding, Side};

/// The documentation detector.
pub struct Docs;

impl Detector for Docs {
    fn id(&self) -> &'static str {
        "docs"
    }
    fn description(&self) -> &'static str {
        "Documentation files (policy classify.docs_paths) and comment-only edits in TS/JS and Rust"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[FacetCode::DocsOnly]
    }
    fn splits_files(&self) -> bool {
        true
    }
    fn after(&self) -> Option<&'static str> {
        // api-nestjs parses both sides of every modified NestJS source and leaves whether the
        // two ASTs are the same: started after it, this detector parses only what it left.
        Some("api-nestjs")
    }
    fn detect(&self, change: &Change<'_>) -> Finding {
        let globs = globset(&change.settings.docs_paths);
        // Files in parallel; each job of files reuses one pair of parser arenas.
        let init = || (Allocator::default(), Allocator::default());
        per_file(change.files, init, |allocators, f, out| {
            let is_doc =
                globs.is_match(&f.path) && f.old_path.as_deref().is_none_or(|o| globs.is_match(o));
            if is_doc {
                // Documentation by path, but only once both sides are known to be inspectable
                // (within the size limit, readable): a file that cannot be inspected is never
                // category 1. The content is not looked at, so git answers from the object's
                // header without inflating it.
                let readable = (f.status == FileStatus::Added
                    || change.contents.inspectable(f.base_path(), Side::Base))
                    && (f.status == FileStatus::Deleted
                        || change.contents.inspectable(&f.path, Side::Head));
                if !readable {
                    return;
                }
                let side = if f.status == FileStatus::Deleted {
                    Side::Base
                } else {
                    Side::Head
                };
                out.facets.push(facet(
                    self.id(),
                    FacetCode::DocsOnly,
                    format!("documentation {}: {}", status(f.status), f.path),
                    vec![evidence_note(&f.path, side, "matches classify.docs_paths")],
                ));
                out.explained.insert(f.path.clone());
                return;
            }
            // A moved source file changes module paths: only in-place edits can be comment-only.
            if f.status != FileStatus::Modified {
                return;
            }
            let lang = match ext(&f.path).as_str() {
                "ts" | "mts" | "cts" | "tsx" | "js" | "mjs" | "cjs" | "jsx" => Lang::Js,
                "rs" => Lang::Rust,
                _ => return,
            };
            if change.is_binary(f) {
                return;
            }
            // Borrowed: the contents provider caches small blobs, so no copy is needed to compare.
            let (Some(b), Some(h)) = (
                change.contents.base(f.base_path()),
                change.contents.head(&f.path),
            ) else {
                return;
            };
            let (Ok(b), Ok(h)) = (std::str::from_utf8(&b), std::str::from_utf8(&h)) else {
                return;
            };
            let same = match lang {
                Lang::Js => match change.parses {
                    // Parsed once for this detector and api-nestjs.
                    Some(p) if crate::parse::ts_shared::same_answers(&f.path, b, h) => {
                        p.same(&f.path, b, h, allocators)
                    }
                    _ => same_js_in(allocators, &f.path, b, h),
                },
                Lang::Rust => same_rust(b, h),
            };
            if same == Some(true) {
                out.facets.push(facet(
                    self.id(),
                    FacetCode::DocsOnly,
                    format!("comment-only edit: {}", f.path),
                    vec![evidence_note(
                        &f.path,
                        Side::Head,
                        "code tokens identical once comments are removed",
                    )],
                ));
                out.explained.insert(f.path.clone());
            }
        })
    }
}

enum Lang {
    Js,
    Rust,
}

fn status(s: FileStatus) -> &'static str {
    match s {
        FileStatus::Added => "added",
        FileStatus::Deleted => "deleted",
        FileStatus::Renamed => "renamed",
        _ => "changed",
    }
}

/// Whether two JS/TS sources have the same AST; `None` when either does not parse.
/// The arenas are reused across files (reset here before parsing): one pair per detector run
/// instead of two fresh arenas per file.
fn same_js_in(arenas: &mut (Allocator, Allocator), path: &str, a: &str, b: &str) -> Option<bool> {
    let st = SourceType::from_path(path).ok()?;
    arenas.0.reset();
    arenas.1.reset();
    let (al, bl) = (&arenas.0, &arenas.1);
    let pa = oxc_parser::Parser::new(al, a, st).parse();
    let pb = oxc_parser::Parser::new(bl, b, st).parse();
    crate::parse::ts_shared::same_ast(&pa, &pb)
}

/// Whether two Rust sources have the same tokens once comments and whitespace are dropped;
/// `None` when the lexer reports an unterminated literal or comment.
pub(crate) fn same_rust(a: &str, b: &str) -> Option<bool> {
    fn tokens(s: &str) -> Option<Vec<(TokenKind, &str)>> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        for t in tokenize(s, FrontmatterAllowed::No) {
            let text = &s[pos..pos + t.len as usize];
            pos += t.len as usize;
            match t.kind {
                TokenKind::Whitespace | TokenKind::LineComment { .. } => {}
                TokenKind::BlockComment { terminated, .. } => {
                    if !terminated {
                        return None;
                    }
                }
                TokenKind::Unknown => return None,
                k => out.push((k, text)),
            }
        }
        Some(out)
    }
    Some(tokens(a)? == tokens(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapContents;

    fn detect(c: &MapContents) -> Finding {
        let p = changegate_policy::load_default().policy;
        let files = c.changed_files();
        crate::detectors::testing::detect(
            &Docs,
            &Change {
                files: &files,
                contents: c,
                settings: &p.classify,
                parses: None,
            },
        )
    }

    #[test]
    fn docs_paths_are_docs() {
        let c = MapContents::default()
            .with_head("docs/runbook.md", "# x")
            .with_base("README.md", "a")
            .with_head("README.md", "b");
        let f = detect(&c);
        assert_eq!(f.facets.len(), 2);
        assert!(f.explained.contains("docs/runbook.md") && f.explained.contains("README.md"));
    }

    #[test]
    fn ts_comment_only_edit_is_docs() {
        let c = MapContents::default()
            .with_base(
                "src/a.ts",
                "// old\nexport function f(x: number) { return x + 1; }\n",
            )
            .with_head(
                "src/a.ts",
                "/** new docs */\nexport function f(x: number) {\n  // why\n  return x + 1;\n}\n",
            );
        assert!(detect(&c).explained.contains("src/a.ts"));
    }

    #[test]
    fn ts_code_change_next_to_comment_is_not_docs() {
        let c = MapContents::default()
            .with_base("src/a.ts", "const x = 1; // note\n")
            .with_head("src/a.ts", "const x = 2; // note\n");
        assert!(detect(&c).facets.is_empty());
        let s = MapContents::default()
            .with_base("src/a.ts", "const x = '// not a comment';\n")
            .with_head("src/a.ts", "const x = '// still not';\n");
        assert!(detect(&s).facets.is_empty());
    }

    #[test]
    fn rust_comments_and_doc_comments() {
        assert_eq!(
            same_rust("fn a() {} // x", "/// doc\nfn a() {}\n/* y */"),
            Some(true)
        );
        assert_eq!(same_rust("fn a() { 1 }", "fn a() { 2 }"), Some(false));
        assert_eq!(
            same_rust("let s = \"// a\";", "let s = \"// b\";"),
            Some(false)
        );
        assert_eq!(same_rust("/* open", "x"), None);
    }

    #[test]
    fn unparseable_ts_is_left_alone() {
        let c = MapContents::default()
            .with_base("src/a.ts", "let = ;")
            .with_head("src/a.ts", "let = ; //");
        assert!(detect(&c).facets.is_empty());
    }
}
