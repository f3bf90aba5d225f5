//! Unit tests of the pipeline (fail-closed steps, reads, coverage).

use super::code::changed_lines;
use super::requirements::requirement;
use super::*;
use crate::{Change, MapContents};

fn run(c: &MapContents, policy: &Policy, cov: Option<&Coverage>) -> Classification {
    let files = c.changed_files();
    let none = BTreeMap::new();
    // Marked as a fix, so coverage alone decides `bugfix-covered` here (markers: code.rs tests).
    let fix = ["fix: a".to_string()];
    classify(
        &ClassifyInput {
            files: &files,
            contents: c,
            oversized: &none,
            coverage: cov,
            messages: &fix,
            labels: &[],
        },
        policy,
        &Options::default(),
    )
}

/// `c` classified by the detectors of `registry` under the built-in policy, with no coverage,
/// messages or labels.
fn with_registry(c: &MapContents, registry: &[&dyn crate::Detector]) -> Classification {
    let files = c.changed_files();
    let none = BTreeMap::new();
    let input = ClassifyInput {
        files: &files,
        contents: c,
        oversized: &none,
        coverage: None,
        messages: &[],
        labels: &[],
    };
    let p = changegate_policy::load_default().policy;
    classify_with(&input, &p, &Options::default(), registry)
}

/// Counts the reads of each path (both sides), over a map.
struct Counting {
    inner: MapContents,
    reads: std::sync::Mutex<BTreeMap<String, usize>>,
}
impl Contents for Counting {
    fn base(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        *self.reads.lock().unwrap().entry(path.into()).or_default() += 1;
        self.inner.base(path)
    }
    fn head(&self, path: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        *self.reads.lock().unwrap().entry(path.into()).or_default() += 1;
        self.inner.head(path)
    }
}

#[test]
fn files_no_detector_wants_are_never_read() {
    // An unknown file is unclassified whatever it holds: it is not read (on a big change
    // with assets these are most of the bytes). Documentation is read, only to know it can
    // be inspected (size limit, readable) before it may count as category 1.
    let c = MapContents::default()
        .with_base("docs/guide.md", "a")
        .with_head("docs/guide.md", "b")
        .with_base("assets/blob.dat", "a")
        .with_head("assets/blob.dat", "\0b")
        .with_base("src/a.ts", "export const a = 1;\n")
        .with_head("src/a.ts", "export const a = 2;\n")
        .with_base("k8s/app.yaml", "replicas: 1\n")
        .with_head("k8s/app.yaml", "replicas: 2\n");
    let files = c.changed_files();
    let counting = Counting {
        inner: c,
        reads: Default::default(),
    };
    let none = BTreeMap::new();
    let p = changegate_policy::load_default().policy;
    let r = classify(
        &ClassifyInput {
            files: &files,
            contents: &counting,
            oversized: &none,
            coverage: None,
            messages: &[],
            labels: &[],
        },
        &p,
        &Options::default(),
    );
    let reads = counting.reads.into_inner().unwrap();
    assert!(!reads.contains_key("assets/blob.dat"), "{reads:?}");
    for p in ["src/a.ts", "k8s/app.yaml", "docs/guide.md"] {
        assert!(reads.contains_key(p), "{p}: {reads:?}");
    }
    assert!(r.facet_codes().contains(&"unclassified"));
    assert!(r.facet_codes().contains(&"docs-only"));
}

/// Explains every file, and panics on one of them inside the parallel per-file helper (a
/// rayon worker), as a detector bug would.
struct Panicky;
impl crate::Detector for Panicky {
    fn id(&self) -> &'static str {
        "panicky"
    }
    fn description(&self) -> &'static str {
        "test"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[]
    }
    fn detect(&self, change: &Change<'_>) -> crate::Finding {
        crate::util::per_file(
            change.files,
            || (),
            |_, f, out| {
                out.explained.insert(f.path.clone());
                assert!(f.path != "docs/boom.md", "boom at {}", f.path);
            },
        )
    }
}

#[test]
fn a_panicking_detector_fails_closed_and_the_others_still_run() {
    let p = changegate_policy::load_default().policy;
    let mut c = MapContents::default();
    for i in 0..200 {
        c = c
            .with_base(&format!("docs/p{i}.md"), "a")
            .with_head(&format!("docs/p{i}.md"), "b");
    }
    let c = c
        .with_base("docs/boom.md", "a")
        .with_head("docs/boom.md", "b");
    let files = c.changed_files();
    let none = BTreeMap::new();
    let input = ClassifyInput {
        files: &files,
        contents: &c,
        oversized: &none,
        coverage: None,
        messages: &[],
        labels: &[],
    };
    let mut registry = detectors::all();
    registry.insert(0, &Panicky);
    let r = classify_with(&input, &p, &Options::default(), &registry);
    // What the panicking detector claimed to explain is dropped with it: the docs detector
    // still explains the pages, and the failure itself is an `unparseable` facet.
    assert_eq!(r.facet_codes(), vec!["unparseable", "docs-only"]);
    assert_eq!(
        r.category.level, 2,
        "never category 1 after a detector failed"
    );
    let u = r
        .facets
        .iter()
        .find(|f| f.facet.kind == "unparseable")
        .unwrap();
    assert_eq!(u.facet.detector, "panicky");
    assert!(
        u.facet.evidence[0]
            .snippet
            .as_deref()
            .is_some_and(|s| s.contains("boom at docs/boom.md")),
        "{:?}",
        u.facet.evidence
    );
}

#[test]
fn unknown_file_is_unclassified_and_never_category_one() {
    let p = changegate_policy::load_default().policy;
    let c = MapContents::default()
        .with_base("weird.bin.dat", "a")
        .with_head("weird.bin.dat", "b");
    let r = run(&c, &p, None);
    assert_eq!(r.facet_codes(), vec!["unclassified"]);
    assert_eq!(r.category.level, 2);
    assert!(r.role_ids().contains(&"backend-lead"));
}

#[test]
fn a_policy_mapping_unclassified_to_one_is_overridden() {
    let mut p = changegate_policy::load_default().policy;
    p.rules.get_mut("unclassified").unwrap().category = 1;
    let c = MapContents::default().with_head("x.unknown", "b");
    let r = run(&c, &p, None);
    assert_eq!(r.category.level, 2);
    assert!(r.notes.iter().any(|n| n.contains("raised")));
}

#[test]
fn unmapped_facet_is_treated_as_unclassified() {
    let p = changegate_policy::load_default().policy;
    let r = requirement(&p, "no-such-facet");
    assert_eq!(r.category, 2);
    assert!(r.note.unwrap().contains("not map"));
}

#[test]
fn empty_change_is_lowest_with_a_note() {
    let p = changegate_policy::load_default().policy;
    let r = run(&MapContents::default(), &p, None);
    assert_eq!(r.category.level, 1);
    assert!(r.facets.is_empty());
    assert_eq!(r.notes, vec!["no changed files".to_string()]);
}

#[test]
fn coverage_decides_bugfix_covered() {
    let p = changegate_policy::load_default().policy;
    let c = MapContents::default()
        .with_base("src/a.ts", "export const a = 1;\n")
        .with_head("src/a.ts", "export const a = 2;\n");
    let good = Coverage::parse("SF:/x/src/a.ts\nDA:1,4\nend_of_record\n").unwrap();
    let bad = Coverage::parse("SF:/x/src/a.ts\nDA:1,0\nend_of_record\n").unwrap();
    assert_eq!(
        run(&c, &p, Some(&good)).facet_codes(),
        vec!["bugfix-covered"]
    );
    assert_eq!(run(&c, &p, Some(&good)).category.level, 1);
    assert_eq!(run(&c, &p, Some(&bad)).facet_codes(), vec!["code-changed"]);
    assert_eq!(run(&c, &p, None).facet_codes(), vec!["code-changed"]);
    let other = Coverage::parse("SF:/x/src/b.ts\nDA:1,1\nend_of_record\n").unwrap();
    assert_eq!(
        run(&c, &p, Some(&other)).facet_codes(),
        vec!["code-changed"]
    );
}

#[test]
fn changed_lines_are_head_lines() {
    assert_eq!(changed_lines("a\nb\nc\n", "a\nB\nc\nd\n"), vec![2, 4]);
    assert!(changed_lines("a\n", "a\n").is_empty());
    assert_eq!(changed_lines("", "a\nb"), vec![1, 2]);
    assert!(changed_lines("a\nb", "").is_empty());
    assert_eq!(changed_lines("a\nb", "a\nb\n"), vec![2]);
    // A lone CR does not start a line; CRLF lines compare whole.
    assert_eq!(changed_lines("a\rb\nc\n", "a\rb\nC\n"), vec![2]);
    assert_eq!(changed_lines("a\r\nb\r\n", "a\r\nB\r\n"), vec![2]);
}

/// The untrimmed diff of the same lines.
fn reference(base: &str, head: &str) -> Vec<u32> {
    let b: Vec<&str> = base.split_inclusive('\n').collect();
    let h: Vec<&str> = head.split_inclusive('\n').collect();
    let mut out = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &b, &h) {
        let (tag, _, new) = op.as_tag_tuple();
        if matches!(tag, similar::DiffTag::Insert | similar::DiffTag::Replace) {
            out.extend(new.map(|i| i as u32 + 1));
        }
    }
    out
}

proptest::proptest! {
    #[test]
    fn trimmed_changed_lines_equal_the_full_diff(
        base in proptest::collection::vec("[abc\r]{0,2}", 0..12),
        head in proptest::collection::vec("[abc\r]{0,2}", 0..12),
        bnl in proptest::bool::ANY,
        hnl in proptest::bool::ANY,
    ) {
        let join = |v: &[String], nl: bool| {
            let mut t = v.join("\n");
            if nl && !t.is_empty() { t.push('\n'); }
            t
        };
        let (b, h) = (join(&base, bnl), join(&head, hnl));
        // Trimming shared first and last lines keeps the diff minimal (as git's own diff
        // does): as many changed lines as the full diff, and the head lines left unchanged
        // appear in base in the same order. Where two minimal diffs exist, either may come.
        let got = changed_lines(&b, &h);
        proptest::prop_assert_eq!(got.len(), reference(&b, &h).len(), "{:?} -> {:?}", b, h);
        let lines = |t: &str| t.split_inclusive('\n').map(String::from).collect::<Vec<_>>();
        let (bl, hl) = (lines(&b), lines(&h));
        let kept = hl.iter().enumerate().filter(|(i, _)| !got.contains(&(*i as u32 + 1))).map(|(_, l)| l);
        let mut it = bl.iter();
        for l in kept {
            proptest::prop_assert!(it.any(|x| x == l), "{:?} -> {:?}: {:?}", b, h, got);
        }
    }
}

/// Declares `docs-only` but emits `dep-major` (as a copied line with the wrong code would).
struct Liar;
impl crate::Detector for Liar {
    fn id(&self) -> &'static str {
        "liar"
    }
    fn description(&self) -> &'static str {
        "test"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[FacetCode::DocsOnly]
    }
    fn detect(&self, change: &Change<'_>) -> crate::Finding {
        let mut out = crate::Finding::default();
        for f in change.files {
            out.explained.insert(f.path.clone());
            out.facets.push(crate::facet::facet(
                "liar",
                FacetCode::DepMajor,
                "left-pad 1 → 2",
                vec![crate::facet::evidence_note(&f.path, crate::Side::Head, "x")],
            ));
        }
        out
    }
}

#[test]
fn a_facet_the_detector_does_not_declare_fails_closed() {
    let c = MapContents::default()
        .with_base("vendor/thing.bin", "a")
        .with_head("vendor/thing.bin", "b");
    let r = with_registry(&c, &[&Liar]);
    assert_eq!(r.facet_codes(), vec!["unparseable"]);
    let u = &r.facets[0];
    assert_eq!(u.facet.detector, "liar");
    assert!(
        u.facet
            .details
            .contains("emitted facet dep-major, which it does not declare"),
        "{}",
        u.facet.details
    );
    assert_eq!(u.facet.evidence[0].path, "vendor/thing.bin");
    assert_eq!(
        r.category.level, 2,
        "never category 1 after a detector lied"
    );
    // The same detector, declaring what it emits, is trusted.
    let honest = run::undeclared(
        &Liar,
        crate::Finding {
            facets: vec![crate::facet::facet(
                "liar",
                FacetCode::DocsOnly,
                "docs",
                vec![],
            )],
            explained: Default::default(),
        },
    );
    assert_eq!(honest.facets[0].kind, FacetCode::DocsOnly);
}

/// Emits one `docs-only` facet naming itself; runs after `after` (if any), and records when it
/// started and returned on a shared clock.
struct Ordered {
    id: &'static str,
    after: Option<&'static str>,
    log: &'static std::sync::Mutex<Vec<String>>,
}
impl crate::Detector for Ordered {
    fn id(&self) -> &'static str {
        self.id
    }
    fn description(&self) -> &'static str {
        "test"
    }
    fn facets(&self) -> &'static [FacetCode] {
        &[FacetCode::DocsOnly]
    }
    fn after(&self) -> Option<&'static str> {
        self.after
    }
    fn detect(&self, change: &Change<'_>) -> crate::Finding {
        self.log.lock().unwrap().push(format!("start {}", self.id));
        std::thread::sleep(std::time::Duration::from_millis(20));
        let f = &change.files[0];
        self.log.lock().unwrap().push(format!("end {}", self.id));
        crate::Finding {
            facets: vec![crate::facet::facet(
                self.id,
                FacetCode::DocsOnly,
                self.id,
                vec![crate::facet::evidence_note(&f.path, crate::Side::Head, "x")],
            )],
            explained: [f.path.clone()].into(),
        }
    }
}

#[test]
fn every_detector_runs_whatever_after_names_and_a_follower_starts_after_its_leader() {
    static LOG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let d = |id, after| Ordered {
        id,
        after,
        log: &LOG,
    };
    // b after a (honoured); c after b, which itself follows (one level only: c starts at once);
    // x and y after each other (a cycle); u after a detector that is not there; s after itself.
    let (a, b, c) = (d("a", None), d("b", Some("a")), d("c", Some("b")));
    let (x, y) = (d("x", Some("y")), d("y", Some("x")));
    let (u, s) = (d("u", Some("none")), d("s", Some("s")));
    let registry: Vec<&dyn crate::Detector> = vec![&a, &b, &c, &x, &y, &u, &s];
    let c0 = MapContents::default()
        .with_base("docs/a.md", "a")
        .with_head("docs/a.md", "b");
    let r = with_registry(&c0, &registry);
    let from: Vec<&str> = r.facets.iter().map(|f| f.facet.detector.as_str()).collect();
    // Every detector ran, and the findings are merged in registry order.
    assert_eq!(from, ["a", "b", "c", "x", "y", "u", "s"]);
    let log = LOG.lock().unwrap().clone();
    let at = |e: &str| log.iter().position(|l| l == e).unwrap();
    assert!(at("end a") < at("start b"), "{log:?}");
}
