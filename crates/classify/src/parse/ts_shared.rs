//! One oxc parse per side of a modified TypeScript source, shared by the two detectors that
//! parse it: `docs` (is the edit comment-only? the two ASTs compared) and `api-nestjs` (the
//! routes, events, settings and types of each side). Each parsed every such file on its own,
//! twice the parses of a change of NestJS services (docs/adr/0012-classifier-performance.md,
//! decision 12).
//!
//! api-nestjs parses every such file it reads (it needs the surfaces of both sides) and keeps
//! the comment-only answer of the same two parses, and answers it (a parse and compare, no
//! surfaces) for the modified sources it does not read as NestJS too; docs, which a pass starts
//! once api-nestjs has returned (`Detector::after`), takes those answers, and parses on its own
//! only the files api-nestjs left (a byte-order mark, and every file when it runs alone). When the two ran side by side, docs
//! reached most files first and parsed them, and api-nestjs parsed them again (ADR 0012,
//! decision 13). Only a `bool` per file is kept: keeping the surfaces for a detector that had
//! not reached the file yet held every file's surfaces at once, and the fresh memory (page
//! faults, zeroed pages) cost more than the parses saved. No pool thread waits on another
//! detector (a thread waiting is a core idle): docs is queued when api-nestjs returns, behind
//! whatever else is left. Nothing changes in what either concludes: the parse is the one each made before. The comment-only check parsed with the
//! path's source type (`SourceType::from_path`) and the NestJS reader with `SourceType::ts()`;
//! for the files shared here (`.ts`, not `.d.ts`) the two differ only in the extension they
//! record, which oxc's parser reads for `.mts`/`.cts` alone (tested below, so an oxc upgrade
//! that changed it would fail here). Files outside that set (`.tsx`, `.js`, added or deleted
//! files, text that is not UTF-8) are parsed by each detector as before.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use oxc_allocator::Allocator;
use oxc_span::{ContentEq, SourceType};
use rustc_hash::FxHashMap;

use super::nest_ts::{self, NestFile, TsError};

/// The comment-only answers of one classification pass, by path: a slot for each modified file
/// this module shares (made up front, so asking takes no lock), empty until a detector fills it.
#[derive(Default)]
pub struct TsParses {
    files: FxHashMap<String, Slot>,
}

impl std::fmt::Debug for TsParses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsParses")
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

/// One file's comment-only answer: claimed by the first detector to parse the file, then set.
#[derive(Default)]
struct Slot {
    claimed: AtomicBool,
    same: OnceLock<Option<bool>>,
}

/// Whether a file is one this module parses for both: a TypeScript source that the NestJS
/// reader reads (`.ts`, not a declaration, test or dependency file).
pub(crate) fn shared_path(path: &str) -> bool {
    path.ends_with(".ts")
        && !path.ends_with(".d.ts")
        && !path.ends_with(".spec.ts")
        && !path.ends_with(".test.ts")
        && !path.contains("node_modules/")
}

/// Whether [`TsParses::same`] answers for this file's two texts, as docs reads them: a shared
/// path ([`shared_path`]) and no byte-order mark on either side (api-nestjs reads the text after
/// a mark, docs with it, so such a file is parsed by each). The one test both detectors apply.
pub(crate) fn same_answers(path: &str, base: &str, head: &str) -> bool {
    shared_path(path) && !base.starts_with('\u{feff}') && !head.starts_with('\u{feff}')
}

impl TsParses {
    /// Slots for the modified files of `files` that [`shared_path`] accepts.
    pub fn new(files: &[crate::ChangedFile]) -> TsParses {
        TsParses {
            files: files
                .iter()
                .filter(|f| f.status == crate::FileStatus::Modified && shared_path(&f.path))
                .map(|f| (f.path.clone(), Slot::default()))
                .collect(),
        }
    }

    /// `docs`: whether the two sides parse without any diagnostic and have the same AST
    /// (`None`: either does not parse cleanly). Taken from api-nestjs's parse when it read the
    /// file first; else parsed here (and then not again by api-nestjs, which needs its own
    /// parse for the surfaces anyway). The caller has checked [`shared_path`], that the file
    /// is modified in place and not binary, and read both sides as UTF-8 text itself (so its
    /// own reads are seen by its watcher).
    pub(crate) fn same(
        &self,
        path: &str,
        base: &str,
        head: &str,
        arenas: &mut (Allocator, Allocator),
    ) -> Option<bool> {
        let slot = self.files.get(path);
        if let Some(known) = slot.and_then(|s| s.same.get()) {
            return *known;
        }
        let same = parse_both(path, base, head, arenas, same_ast);
        if let Some(slot) = slot
            && !slot.claimed.swap(true, Ordering::AcqRel)
        {
            let _ = slot.same.set(same);
        }
        same
    }

    /// `api-nestjs`: each side's surface (base, head), from one parse per side; the
    /// comment-only answer of the same parse is kept for `docs` when it has not parsed the file
    /// yet. Same conditions as [`TsParses::same`].
    pub(crate) fn nest(
        &self,
        path: &str,
        base: &str,
        head: &str,
        arenas: &mut (Allocator, Allocator),
    ) -> [Result<NestFile, TsError>; 2] {
        let slot = self
            .files
            .get(path)
            .filter(|s| !s.claimed.swap(true, Ordering::AcqRel));
        parse_both(path, base, head, arenas, |pa, pb| {
            if let Some(slot) = slot {
                let _ = slot.same.set(same_ast(pa, pb));
            }
            let side =
                |text: &str, ret: &oxc_parser::ParserReturn<'_>| match nest_ts::too_deep(text) {
                    Some(e) => Err(e),
                    None => nest_ts::of_parse(text, ret),
                };
            [side(base, pa), side(head, pb)]
        })
    }
}

/// Parse both sides with the path's source type (equal to `SourceType::ts()` for a shared
/// path, see the module note) and hand both parses to `f`.
fn parse_both<T>(
    path: &str,
    base: &str,
    head: &str,
    arenas: &mut (Allocator, Allocator),
    f: impl FnOnce(&oxc_parser::ParserReturn<'_>, &oxc_parser::ParserReturn<'_>) -> T,
) -> T {
    let st = SourceType::from_path(path).unwrap_or_else(|_| SourceType::ts());
    arenas.0.reset();
    arenas.1.reset();
    let (al, bl) = (&arenas.0, &arenas.1);
    let pa = oxc_parser::Parser::new(al, base, st).parse();
    let pb = oxc_parser::Parser::new(bl, head, st).parse();
    f(&pa, &pb)
}

/// The comment-only check's answer on two parses (docs's rule: any diagnostic, no answer).
pub(crate) fn same_ast(
    pa: &oxc_parser::ParserReturn<'_>,
    pb: &oxc_parser::ParserReturn<'_>,
) -> Option<bool> {
    if pa.panicked || pb.panicked || !pa.diagnostics.is_empty() || !pb.diagnostics.is_empty() {
        return None;
    }
    let (x, y) = (&pa.program, &pb.program);
    Some(
        x.hashbang.content_eq(&y.hashbang)
            && x.directives.content_eq(&y.directives)
            && x.body.content_eq(&y.body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_path_parses_as_the_nestjs_reader_parses() {
        for p in [
            "a.ts",
            "src/users/users.controller.ts",
            "x.dto.ts",
            "main.ts",
        ] {
            assert!(shared_path(p), "{p}");
            let st = SourceType::from_path(p).unwrap();
            let ts = SourceType::ts();
            assert_eq!(st.is_typescript(), ts.is_typescript(), "{p}");
            assert!(st.is_typescript(), "{p}");
            assert_eq!(st.module_kind(), ts.module_kind(), "{p}");
            assert_eq!(st.is_jsx(), ts.is_jsx(), "{p}");
            assert_eq!(
                st.is_typescript_definition(),
                ts.is_typescript_definition(),
                "{p}"
            );
            assert_eq!(st.extension(), Some(oxc_span::FileExtension::Ts), "{p}");
        }
        for p in [
            "a.d.ts",
            "a.spec.ts",
            "a.test.ts",
            "node_modules/x/a.ts",
            "a.tsx",
            "a.mts",
        ] {
            assert!(!shared_path(p), "{p}");
        }
    }

    fn modified(path: &str) -> crate::ChangedFile {
        crate::ChangedFile {
            path: path.into(),
            old_path: None,
            status: crate::FileStatus::Modified,
            submodule: false,
        }
    }

    /// docs's own answer, as `same_js_in` computes it.
    fn own_same(b: &str, h: &str) -> Option<bool> {
        let st = SourceType::from_path("src/a.ts").unwrap();
        let (x, y) = (Allocator::default(), Allocator::default());
        let pa = oxc_parser::Parser::new(&x, b, st).parse();
        let pb = oxc_parser::Parser::new(&y, h, st).parse();
        same_ast(&pa, &pb)
    }

    #[test]
    fn the_shared_answers_are_each_detectors_own() {
        let ctrl = "import { Controller, Get } from '@nestjs/common';\n\n@Controller('a')\nexport class A {\n  @Get()\n  list() {\n    return [];\n  }\n}\n";
        let commented = ctrl.replace("  @Get()", "  // lists\n  @Get()");
        let changed = ctrl.replace("@Get()", "@Get(':id')");
        let broken = ctrl.replace("list() {", "list( {");
        let deep = format!(
            "@Controller('a') class A {{ x = {}1{} }}",
            "(".repeat(410),
            ")".repeat(410)
        );
        let cases = [
            (ctrl, commented.as_str(), Some(true)),
            (ctrl, changed.as_str(), Some(false)),
            (ctrl, broken.as_str(), None),
            (broken.as_str(), ctrl, None),
            (ctrl, deep.as_str(), Some(false)),
        ];
        let mut arenas = (Allocator::default(), Allocator::default());
        let mut one = Allocator::default();
        for (i, (b, h, want)) in cases.iter().enumerate() {
            assert_eq!(own_same(b, h), *want, "case {i}");
            // api-nestjs first: its surfaces are its own reader's, docs gets the same answer.
            let parses = TsParses::new(&[modified("src/a.ts")]);
            let [nb, nh] = parses.nest("src/a.ts", b, h, &mut arenas);
            assert_eq!(nb, nest_ts::read_in(&mut one, b), "case {i} base");
            assert_eq!(nh, nest_ts::read_in(&mut one, h), "case {i} head");
            assert_eq!(parses.files["src/a.ts"].same.get(), Some(want), "case {i}");
            // Given empty texts now, docs can only answer from the kept answer.
            assert_eq!(
                parses.same("src/a.ts", "", "x", &mut arenas),
                *want,
                "case {i}"
            );
            // docs first: it parses, and api-nestjs still reads its own surfaces.
            let parses = TsParses::new(&[modified("src/a.ts")]);
            assert_eq!(
                parses.same("src/a.ts", b, h, &mut arenas),
                *want,
                "case {i}"
            );
            let [nb, _] = parses.nest("src/a.ts", b, h, &mut arenas);
            assert_eq!(
                nb,
                nest_ts::read_in(&mut one, b),
                "case {i} base after docs"
            );
        }
        // The surfaces reach both outcomes.
        let parses = TsParses::new(&[modified("a.ts")]);
        let [b, h] = parses.nest("a.ts", ctrl, &deep, &mut arenas);
        assert!(b.is_ok() && h.is_err());
    }

    #[test]
    fn files_without_a_slot_keep_nothing() {
        let mut added = modified("c.ts");
        added.status = crate::FileStatus::Added;
        let parses = TsParses::new(&[added, modified("d.tsx")]);
        let mut arenas = (Allocator::default(), Allocator::default());
        assert_eq!(
            parses.same("c.ts", "let x;", "let x; // n", &mut arenas),
            Some(true)
        );
        assert_eq!(parses.same("c.ts", "", "x", &mut arenas), Some(false));
        assert!(parses.files.is_empty());
    }
}
