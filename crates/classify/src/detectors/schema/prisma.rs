//! Prisma schema diff: what a change to `schema.prisma` (or any `*.prisma` file) does to the
//! database.
//!
//! Why compare schemas rather than lines: the facet depends on meaning — a field added with `?`
//! is a nullable column, with `@default` a NOT NULL column with a default, without either a NOT
//! NULL column that fails on a non-empty table. Renames are judged by the *database* name
//! (`@map` / `@@map`): a Prisma field renamed while `@map` keeps the column is a rename; a field
//! renamed without `@map` is what Prisma Migrate turns into DROP COLUMN + ADD COLUMN, so it is
//! reported as a dropped column (data loss) and said so.
//!
//! All `*.prisma` files of the change are merged per side, so a model moved between files of a
//! multi-file schema is not a drop plus an add. A file is "explained" only when every difference
//! maps to a facet (or the schemas are equal up to comments and layout, which gives `docs-only`);
//! anything else (a changed `@default`, a removed index, an enum value removed, a datasource
//! change) leaves the file to the `unclassified` fallback, which fails closed.

//!
//! [`model`] holds the rules for one model (table, columns, indexes) with their tests.

mod model;

use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::facets::FacetCode;

use self::model::{db_name, is_column};
use crate::facet::{evidence_line, facet, unparseable_at};
use crate::parse::prisma::{self as parse, Block, BlockKind, Schema};
use crate::util::{as_text, first_diff_line};
use crate::{Change, Detector, Facet, FileStatus, Finding, Side};

/// The Prisma schema detector.
pub struct Prisma;

const ID: &str = "schema-prisma";

/// Facets this detector emits.
const FACETS: &[FacetCode] = &[
    FacetCode::SchemaTableAdded,
    FacetCode::SchemaTableDropped,
    FacetCode::SchemaColumnAddedNullable,
    FacetCode::SchemaColumnAddedDefault,
    FacetCode::SchemaColumnAddedRequired,
    FacetCode::SchemaColumnDropped,
    FacetCode::SchemaColumnRenamed,
    FacetCode::SchemaColumnTypeChanged,
    FacetCode::SchemaIndexAdded,
    FacetCode::ApiFieldTypeChanged,
    FacetCode::DocsOnly,
    FacetCode::Unparseable,
];

/// Whether a path is a Prisma schema file.
pub(crate) fn is_prisma_path(path: &str) -> bool {
    path.ends_with(".prisma")
}

/// A model (or field) located in its file.
struct Located<'a, T> {
    item: &'a T,
    path: &'a str,
    text: &'a str,
}

impl Detector for Prisma {
    fn id(&self) -> &'static str {
        ID
    }

    fn description(&self) -> &'static str {
        "Prisma schema diff: models and fields added, removed, renamed (@map/@@map), retyped; indexes added"
    }

    fn facets(&self) -> &'static [FacetCode] {
        FACETS
    }

    fn detect(&self, change: &Change<'_>) -> Finding {
        let files: Vec<_> = change
            .files
            .iter()
            .filter(|f| !f.submodule)
            .filter(|f| {
                is_prisma_path(&f.path) || f.old_path.as_deref().is_some_and(is_prisma_path)
            })
            .filter(|f| !change.is_binary(f))
            .collect();
        let mut finding = Finding::default();
        if files.is_empty() {
            return finding;
        }
        // Load and parse both sides of every changed schema file.
        let mut texts: Vec<(String, Side, String)> = Vec::new();
        let mut broken = false;
        for f in &files {
            let sides = [
                (
                    Side::Base,
                    f.status != FileStatus::Added,
                    f.base_path().to_string(),
                ),
                (Side::Head, f.status != FileStatus::Deleted, f.path.clone()),
            ];
            for (side, present, path) in sides {
                if !present || !is_prisma_path(&path) {
                    continue;
                }
                let bytes = match side {
                    Side::Base => change.contents.base(&path),
                    Side::Head => change.contents.head(&path),
                };
                let Some(bytes) = bytes else { continue };
                match as_text(&bytes) {
                    Ok(t) => texts.push((path, side, t.to_string())),
                    Err(e) => {
                        broken = true;
                        finding.facets.push(unparseable_at(
                            ID,
                            &path,
                            side,
                            None,
                            "Prisma schema",
                            &e,
                        ));
                    }
                }
            }
        }
        let mut parsed: Vec<(&str, Side, &str, Schema)> = Vec::new();
        for (path, side, text) in &texts {
            match parse::parse(text) {
                Ok(s) => parsed.push((path, *side, text, s)),
                Err(e) => {
                    broken = true;
                    finding.facets.push(unparseable_at(
                        ID,
                        path,
                        *side,
                        Some(e.line),
                        "Prisma schema",
                        &e.to_string(),
                    ));
                }
            }
        }
        if broken {
            // Fail closed: one side is unknown, so nothing else can be concluded safely.
            return finding;
        }
        let collect = |side: Side| {
            let mut blocks: Vec<Located<'_, Block>> = Vec::new();
            for (path, s, text, schema) in &parsed {
                if *s == side {
                    blocks.extend(schema.blocks.iter().map(|b| Located {
                        item: b,
                        path,
                        text,
                    }));
                }
            }
            blocks
        };
        let base = collect(Side::Base);
        let head = collect(Side::Head);
        let mut diff = Diff {
            facets: Vec::new(),
            residual: Vec::new(),
        };
        diff.run(&base, &head);
        let any_prisma_path = files.iter().map(|f| f.path.clone());
        if diff.residual.is_empty() {
            if diff.facets.is_empty() {
                let f = files[0];
                let side = if f.status == FileStatus::Deleted {
                    Side::Base
                } else {
                    Side::Head
                };
                let text_of = |side: Side, path: &str| {
                    texts
                        .iter()
                        .find(|(p, s, _)| p == path && *s == side)
                        .map(|(_, _, t)| t.as_str())
                };
                let (b, h) = (
                    text_of(Side::Base, f.base_path()),
                    text_of(Side::Head, &f.path),
                );
                let line = first_diff_line(b.unwrap_or(""), h.unwrap_or(""));
                let shown = if side == Side::Head { h } else { b };
                diff.facets.push(facet(
                    ID,
                    FacetCode::DocsOnly,
                    "Prisma schema: only comments, documentation or layout changed",
                    vec![evidence_line(&f.path, side, shown, Some(line))],
                ));
            }
            finding.explained.extend(any_prisma_path);
        }
        finding.facets.extend(diff.facets);
        finding
    }
}

struct Diff {
    facets: Vec<Facet>,
    /// Differences that map to no facet; when non-empty the files stay unexplained.
    residual: Vec<String>,
}

impl Diff {
    fn push(&mut self, kind: FacetCode, details: String, at: (&str, Side, &str, u32)) {
        let (path, side, text, line) = at;
        self.facets.push(facet(
            ID,
            kind,
            details,
            vec![evidence_line(path, side, Some(text), Some(line))],
        ));
    }

    fn run(&mut self, base: &[Located<'_, Block>], head: &[Located<'_, Block>]) {
        let non_scalar: BTreeSet<&str> = base
            .iter()
            .chain(head)
            .filter(|b| {
                matches!(
                    b.item.kind,
                    BlockKind::Model | BlockKind::View | BlockKind::Type
                )
            })
            .map(|b| b.item.name.as_str())
            .collect();
        // Non-model blocks: compare whole.
        for kind in [
            BlockKind::Datasource,
            BlockKind::Generator,
            BlockKind::View,
            BlockKind::Type,
        ] {
            let b: Vec<_> = base
                .iter()
                .filter(|x| x.item.kind == kind)
                .map(|x| x.item)
                .collect();
            let h: Vec<_> = head
                .iter()
                .filter(|x| x.item.kind == kind)
                .map(|x| x.item)
                .collect();
            if strip_lines(&b) != strip_lines(&h) {
                self.residual.push(format!("{kind:?} block changed"));
            }
        }
        self.enums(base, head);
        // Models, matched by Prisma name first, then by table name (a model renamed with @@map).
        let bmodels: Vec<_> = base
            .iter()
            .filter(|x| x.item.kind == BlockKind::Model)
            .collect();
        let hmodels: Vec<_> = head
            .iter()
            .filter(|x| x.item.kind == BlockKind::Model)
            .collect();
        let mut matched_base = BTreeSet::new();
        let mut pairs = Vec::new();
        let mut added = Vec::new();
        for (hi, h) in hmodels.iter().enumerate() {
            if let Some(bi) = bmodels.iter().position(|b| b.item.name == h.item.name) {
                matched_base.insert(bi);
                pairs.push((bi, hi));
            } else {
                added.push(hi);
            }
        }
        let mut still_added = Vec::new();
        for hi in added {
            let h = hmodels[hi];
            let table = db_name(h.item);
            let found = bmodels
                .iter()
                .enumerate()
                .find(|(bi, b)| !matched_base.contains(bi) && db_name(b.item) == table);
            if let Some((bi, b)) = found {
                matched_base.insert(bi);
                pairs.push((bi, hi));
                self.push(
                    FacetCode::SchemaColumnRenamed,
                    format!(
                        "model {} renamed to {}; table {table} kept via @@map (no data moves, Prisma Client calls change)",
                        b.item.name, h.item.name
                    ),
                    (h.path, Side::Head, h.text, h.item.line),
                );
            } else {
                still_added.push(hi);
            }
        }
        for hi in still_added {
            let h = hmodels[hi];
            let n = h
                .item
                .fields
                .iter()
                .filter(|f| is_column(f, &non_scalar))
                .count();
            self.push(
                FacetCode::SchemaTableAdded,
                format!(
                    "model {} added (table {}, {n} columns)",
                    h.item.name,
                    db_name(h.item)
                ),
                (h.path, Side::Head, h.text, h.item.line),
            );
        }
        for (bi, b) in bmodels.iter().enumerate() {
            if !matched_base.contains(&bi) {
                self.push(
                    FacetCode::SchemaTableDropped,
                    format!(
                        "model {} removed: table {} and all its data are dropped",
                        b.item.name,
                        db_name(b.item)
                    ),
                    (b.path, Side::Base, b.text, b.item.line),
                );
            }
        }
        for (bi, hi) in pairs {
            self.model(bmodels[bi], hmodels[hi], &non_scalar);
        }
    }

    fn enums(&mut self, base: &[Located<'_, Block>], head: &[Located<'_, Block>]) {
        type Enums<'b> = BTreeMap<String, (String, Vec<String>, &'b Located<'b, Block>)>;
        fn get<'b>(side: &'b [Located<'b, Block>]) -> Enums<'b> {
            side.iter()
                .filter(|x| x.item.kind == BlockKind::Enum)
                .map(|x| {
                    let attrs: Vec<_> = x.item.attrs.iter().map(|a| a.render("@@")).collect();
                    let values: Vec<_> = x
                        .item
                        .fields
                        .iter()
                        .map(|f| {
                            let mut v = f.name.clone();
                            for a in &f.attrs {
                                v.push_str(&a.render(" @"));
                            }
                            v
                        })
                        .collect();
                    (x.item.name.clone(), (attrs.join(" "), values, x))
                })
                .collect()
        }
        let (b, h) = (get(base), get(head));
        for (name, (battrs, bvals, bloc)) in &b {
            match h.get(name) {
                None => self.residual.push(format!("enum {name} removed")),
                Some((hattrs, hvals, _)) => {
                    let hnames: BTreeSet<&str> = hvals
                        .iter()
                        .map(|v| v.split(' ').next().unwrap_or(v))
                        .collect();
                    let removed: Vec<&str> = bvals
                        .iter()
                        .map(|v| v.split(' ').next().unwrap_or(v))
                        .filter(|v| !hnames.contains(v))
                        .collect();
                    // A value removed: PostgreSQL cannot drop an enum value, so Prisma Migrate
                    // recreates the type and rewrites every column of it (rows holding the value
                    // fail), and clients that send or receive it break.
                    if !removed.is_empty() {
                        let at = bloc
                            .item
                            .fields
                            .iter()
                            .find(|f| f.name == removed[0])
                            .map(|f| f.line)
                            .unwrap_or(bloc.item.line);
                        self.push(
                            FacetCode::SchemaColumnTypeChanged,
                            format!(
                                "enum {name}: value(s) {} removed (the type is recreated and its columns rewritten; rows holding a removed value fail)",
                                removed.join(", ")
                            ),
                            (bloc.path, Side::Base, bloc.text, at),
                        );
                    }
                    // Adding a value (ALTER TYPE ... ADD VALUE) is additive; anything else is not.
                    let kept_changed = bvals.iter().any(|v| {
                        !hvals.contains(v) && !removed.contains(&v.split(' ').next().unwrap_or(v))
                    });
                    if battrs != hattrs || kept_changed {
                        self.residual.push(format!("enum {name} changed"));
                    }
                }
            }
        }
    }
}

/// Blocks without line numbers, for equality up to layout.
fn strip_lines(blocks: &[&Block]) -> Vec<String> {
    let mut v: Vec<String> = blocks
        .iter()
        .map(|b| {
            let fields: Vec<String> = b
                .fields
                .iter()
                .map(|f| {
                    let attrs: Vec<String> = f.attrs.iter().map(|a| a.render("@")).collect();
                    format!("{} {} {}", f.name, f.type_text(), attrs.join(" "))
                })
                .collect();
            let attrs: Vec<String> = b.attrs.iter().map(|a| a.render("@@")).collect();
            format!(
                "{:?} {} {{{}}} {}",
                b.kind,
                b.name,
                fields.join(";"),
                attrs.join(" ")
            )
        })
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testing::{kinds, run};

    pub(super) const P: &str = "prisma/schema.prisma";

    pub(super) const BASE: &str = r#"datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model User {
  id        Int      @id @default(autoincrement())
  email     String   @unique
  name      String?
  age       Int
  posts     Post[]
  createdAt DateTime @default(now())
}

model Post {
  id       Int    @id @default(autoincrement())
  title    String
  author   User   @relation(fields: [authorId], references: [id])
  authorId Int
}
"#;

    pub(super) fn with_user_fields(extra: &str) -> String {
        BASE.replace(
            "  createdAt DateTime @default(now())\n",
            &format!("  createdAt DateTime @default(now())\n{extra}"),
        )
    }

    pub(super) fn one(head: &str) -> Finding {
        run(&Prisma, &[(P, Some(BASE), Some(head))])
    }

    #[test]
    fn comment_only_change_is_docs_only() {
        let head = BASE.replace(
            "model User {",
            "/// People who sign in.\nmodel User { // the user table",
        );
        let f = one(&head);
        assert_eq!(kinds(&f), vec!["docs-only"]);
        assert_eq!(f.facets[0].evidence[0].line, Some(6));
        assert!(f.explained.contains(P));
    }

    #[test]
    fn unmapped_differences_stay_unexplained() {
        // A changed default is not a facet: the file is left to the fail-closed fallback.
        let f = one(&BASE.replace("@default(now())", "@default(\"2020-01-01T00:00:00Z\")"));
        assert!(f.facets.is_empty());
        assert!(f.explained.is_empty());
        let f = one(&BASE.replace("\"postgresql\"", "\"mysql\""));
        assert!(f.explained.is_empty());
        // An index removed is not backward-compatible for performance: not explained.
        let base = BASE.replace("  title    String\n", "  title    String @unique\n");
        let f = run(&Prisma, &[(P, Some(&base), Some(BASE))]);
        assert!(f.explained.is_empty());
    }

    #[test]
    fn enum_value_added_with_a_column_is_explained() {
        let base = format!("{BASE}\nenum Role {{\n  USER\n}}\n");
        let head = format!(
            "{}\nenum Role {{\n  USER\n  ADMIN\n}}\n",
            with_user_fields("  role Role @default(USER)\n")
        );
        let f = run(&Prisma, &[(P, Some(&base), Some(&head))]);
        assert_eq!(kinds(&f), vec!["schema-column-added-default"]);
        assert!(f.explained.contains(P));
    }

    #[test]
    fn malformed_schema_is_unparseable_with_location() {
        let head = BASE.replace("  age       Int\n", "  age       Int @default(\n");
        let f = one(&head);
        assert_eq!(kinds(&f), vec!["unparseable"]);
        let e = &f.facets[0].evidence[0];
        assert_eq!(e.side, Side::Head);
        assert!(e.line.is_some());
        assert!(f.explained.is_empty());
        let f = run(&Prisma, &[(P, Some(BASE), Some("model {"))]);
        assert_eq!(kinds(&f), vec!["unparseable"]);
    }

    #[test]
    fn new_schema_file_reports_its_models() {
        let f = run(&Prisma, &[(P, None, Some(BASE))]);
        assert_eq!(kinds(&f), vec!["schema-table-added", "schema-table-added"]);
    }

    #[test]
    fn model_moved_between_files_is_not_a_drop() {
        let post = "model Post {\n  id Int @id\n}\n";
        let f = run(
            &Prisma,
            &[
                ("prisma/schema/a.prisma", Some(post), Some("")),
                ("prisma/schema/b.prisma", Some(""), Some(post)),
            ],
        );
        assert_eq!(kinds(&f), vec!["docs-only"]);
    }
}
