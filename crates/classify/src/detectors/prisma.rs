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

use std::collections::{BTreeMap, BTreeSet};

use super::schema_prisma_parse::{self as parse, Block, BlockKind, Field, Schema};
use super::schema_util::{as_text, evidence, facet, first_diff_line, unparseable};
use crate::{Change, Detector, Facet, FileStatus, Finding, Side};

/// The Prisma schema detector.
pub struct Prisma;

const ID: &str = "schema-prisma";

/// Facets this detector emits.
const FACETS: &[&str] = &[
    "schema-table-added",
    "schema-table-dropped",
    "schema-column-added-nullable",
    "schema-column-added-default",
    "schema-column-added-required",
    "schema-column-dropped",
    "schema-column-renamed",
    "schema-column-type-changed",
    "schema-index-added",
    "docs-only",
    "unparseable",
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

    fn facets(&self) -> &'static [&'static str] {
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
                        finding.facets.push(unparseable(
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
                    finding.facets.push(unparseable(
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
                    "docs-only",
                    "Prisma schema: only comments, documentation or layout changed",
                    evidence(&f.path, side, shown, Some(line)),
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

fn db_name(b: &Block) -> String {
    b.attr("map")
        .and_then(|a| a.first_string())
        .unwrap_or_else(|| b.name.clone())
}

fn col_name(f: &Field) -> String {
    f.attr("map")
        .and_then(|a| a.first_string())
        .unwrap_or_else(|| f.name.clone())
}

/// A field is a column unless its type is a model, view or composite type (a relation or an
/// embedded document), or it carries `@relation`.
fn is_column(f: &Field, non_scalar: &BTreeSet<&str>) -> bool {
    f.attr("relation").is_none() && !non_scalar.contains(f.ty.as_str())
}

/// Index-like declarations of a model: `@@index`, `@@unique`, `@@id`, field `@unique` / `@id`.
fn indexes(b: &Block) -> BTreeMap<String, (u32, &str)> {
    let mut out = BTreeMap::new();
    for a in &b.attrs {
        if matches!(a.name.as_str(), "index" | "unique" | "id" | "fulltext") {
            out.insert(
                format!("@@{}({})", a.name, a.args),
                (a.line, a.name.as_str()),
            );
        }
    }
    for f in &b.fields {
        for a in &f.attrs {
            if matches!(a.name.as_str(), "unique" | "id") {
                out.insert(
                    format!("{}: @{}({})", f.name, a.name, a.args),
                    (a.line, a.name.as_str()),
                );
            }
        }
    }
    out
}

/// Everything about a field except its name, type and the attributes compared separately.
fn other_attrs(f: &Field) -> Vec<String> {
    f.attrs
        .iter()
        .filter(|a| {
            !matches!(a.name.as_str(), "map" | "unique" | "id") && !a.name.starts_with("db.")
        })
        .map(|a| a.render("@"))
        .collect()
}

fn has_default(f: &Field) -> bool {
    // `@updatedAt` sets a value from the client only: the column has no database default.
    f.attr("default").is_some()
}

fn label(b: &Block, f: &Field) -> String {
    let table = db_name(b);
    let col = col_name(f);
    if table == b.name && col == f.name {
        format!("{}.{}", b.name, f.name)
    } else {
        format!("{}.{} (column {table}.{col})", b.name, f.name)
    }
}

impl Diff {
    fn push(&mut self, kind: &str, details: String, at: (&str, Side, &str, u32)) {
        let (path, side, text, line) = at;
        self.facets.push(facet(
            ID,
            kind,
            details,
            evidence(path, side, Some(text), Some(line)),
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
                    "schema-column-renamed",
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
                "schema-table-added",
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
                    "schema-table-dropped",
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
        let get = |side: &[Located<'_, Block>]| -> BTreeMap<String, (String, Vec<String>)> {
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
                    (x.item.name.clone(), (attrs.join(" "), values))
                })
                .collect()
        };
        let (b, h) = (get(base), get(head));
        for (name, (battrs, bvals)) in &b {
            match h.get(name) {
                None => self.residual.push(format!("enum {name} removed")),
                Some((hattrs, hvals)) => {
                    // Adding a value (ALTER TYPE ... ADD VALUE) is additive; anything else is not.
                    if battrs != hattrs || bvals.iter().any(|v| !hvals.contains(v)) {
                        self.residual.push(format!("enum {name} changed"));
                    }
                }
            }
        }
    }

    fn model(
        &mut self,
        b: &Located<'_, Block>,
        h: &Located<'_, Block>,
        non_scalar: &BTreeSet<&str>,
    ) {
        let (bm, hm) = (b.item, h.item);
        let (btable, htable) = (db_name(bm), db_name(hm));
        if btable != htable {
            // Same model, new table name: Prisma Migrate drops the old table and creates the new one.
            self.push(
                "schema-table-dropped",
                format!(
                    "model {}: table {btable} → {htable} (@@map changed); Prisma Migrate drops {btable} and creates {htable}, losing its data unless the migration is edited to ALTER TABLE … RENAME",
                    bm.name
                ),
                (b.path, Side::Base, b.text, bm.line),
            );
            self.push(
                "schema-table-added",
                format!("model {}: table {htable} created (was {btable})", hm.name),
                (h.path, Side::Head, h.text, hm.line),
            );
        }
        let bcols: Vec<&Field> = bm
            .fields
            .iter()
            .filter(|f| is_column(f, non_scalar))
            .collect();
        let hcols: Vec<&Field> = hm
            .fields
            .iter()
            .filter(|f| is_column(f, non_scalar))
            .collect();
        let mut matched_b = BTreeSet::new();
        let mut added: Vec<&Field> = Vec::new();
        let mut pairs: Vec<(&Field, &Field)> = Vec::new();
        for hf in &hcols {
            if let Some((bi, bf)) = bcols.iter().enumerate().find(|(bi, bf)| {
                !matched_b.contains(bi) && bf.name == hf.name && col_name(bf) == col_name(hf)
            }) {
                matched_b.insert(bi);
                pairs.push((bf, hf));
            } else {
                added.push(hf);
            }
        }
        // Renames: same column name, new field name (kept via @map), or same field name, new
        // column name (@map added or changed).
        let mut still_added = Vec::new();
        for hf in added {
            let by_col = bcols
                .iter()
                .enumerate()
                .find(|(bi, bf)| !matched_b.contains(bi) && col_name(bf) == col_name(hf));
            let by_name = bcols
                .iter()
                .enumerate()
                .find(|(bi, bf)| !matched_b.contains(bi) && bf.name == hf.name);
            if let Some((bi, bf)) = by_col {
                matched_b.insert(bi);
                self.push(
                    "schema-column-renamed",
                    format!(
                        "{}.{} → {}.{} (column {} kept via @map: the database is unchanged, application code must follow)",
                        bm.name,
                        bf.name,
                        hm.name,
                        hf.name,
                        col_name(hf)
                    ),
                    (h.path, Side::Head, h.text, hf.line),
                );
                pairs.push((bf, hf));
            } else if let Some((bi, bf)) = by_name {
                matched_b.insert(bi);
                self.push(
                    "schema-column-renamed",
                    format!(
                        "{}.{}: column {} → {} (@map); Prisma Migrate generates DROP + ADD COLUMN unless the migration is edited to RENAME COLUMN",
                        hm.name,
                        hf.name,
                        col_name(bf),
                        col_name(hf)
                    ),
                    (h.path, Side::Head, h.text, hf.line),
                );
                pairs.push((bf, hf));
            } else {
                still_added.push(hf);
            }
        }
        let dropped: Vec<&Field> = bcols
            .iter()
            .enumerate()
            .filter(|(bi, _)| !matched_b.contains(bi))
            .map(|(_, f)| *f)
            .collect();
        let table_is_new = btable != htable;
        for hf in &still_added {
            let (kind, what) = if hf.optional || hf.list {
                ("schema-column-added-nullable", "nullable")
            } else if has_default(hf) {
                ("schema-column-added-default", "NOT NULL with a default")
            } else {
                (
                    "schema-column-added-required",
                    "NOT NULL without a default: fails on a non-empty table unless backfilled",
                )
            };
            self.push(
                kind,
                format!("{} added: {} ({what})", label(hm, hf), hf.type_text()),
                (h.path, Side::Head, h.text, hf.line),
            );
            if !table_is_new {
                for a in hf
                    .attrs
                    .iter()
                    .filter(|a| matches!(a.name.as_str(), "unique" | "id"))
                {
                    self.push(
                        "schema-index-added",
                        format!("{}: @{} index on the new column", label(hm, hf), a.name),
                        (h.path, Side::Head, h.text, a.line),
                    );
                }
            }
        }
        for bf in &dropped {
            let twin = still_added
                .iter()
                .find(|hf| hf.ty == bf.ty && hf.list == bf.list && col_name(hf) != col_name(bf));
            let hint = match twin {
                Some(hf) => format!(
                    "; looks like a rename to {} without @map: Prisma Migrate drops the column and adds {}, and the data in {} is lost",
                    hf.name,
                    col_name(hf),
                    col_name(bf)
                ),
                None => String::new(),
            };
            self.push(
                "schema-column-dropped",
                format!("{} removed ({}){hint}", label(bm, bf), bf.type_text()),
                (b.path, Side::Base, b.text, bf.line),
            );
        }
        for (bf, hf) in &pairs {
            if bf.type_text() != hf.type_text() {
                let note = match (bf.optional, hf.optional) {
                    (true, false) => " (now NOT NULL: fails if NULLs exist)",
                    (false, true) => " (now nullable)",
                    _ => "",
                };
                self.push(
                    "schema-column-type-changed",
                    format!(
                        "{}: {} → {}{note}",
                        label(hm, hf),
                        bf.type_text(),
                        hf.type_text()
                    ),
                    (h.path, Side::Head, h.text, hf.line),
                );
            }
            if other_attrs(bf) != other_attrs(hf) {
                self.residual
                    .push(format!("{}.{} attributes changed", hm.name, hf.name));
            }
        }
        // Indexes, unique constraints and primary keys.
        if !table_is_new {
            let (bi, hi) = (indexes(bm), indexes(hm));
            let new_cols: BTreeSet<&str> = still_added.iter().map(|f| f.name.as_str()).collect();
            for (key, (line, kind)) in &hi {
                if bi.contains_key(key) {
                    continue;
                }
                let field_level = key.split(':').next().filter(|_| !key.starts_with("@@"));
                if field_level.is_some_and(|f| new_cols.contains(f)) {
                    continue; // already reported with the column
                }
                if *kind == "id" {
                    self.residual
                        .push(format!("{}: primary key changed", hm.name));
                    continue;
                }
                self.push(
                    "schema-index-added",
                    format!("{}: {key} added on table {htable}", hm.name),
                    (h.path, Side::Head, h.text, *line),
                );
            }
            if bi.keys().any(|k| !hi.contains_key(k)) {
                let gone_cols: BTreeSet<&str> = dropped.iter().map(|f| f.name.as_str()).collect();
                let unexplained = bi.keys().filter(|k| !hi.contains_key(*k)).any(|k| {
                    k.starts_with("@@") || !gone_cols.contains(k.split(':').next().unwrap_or(""))
                });
                if unexplained {
                    self.residual
                        .push(format!("{}: index or key removed", hm.name));
                }
            }
        }
        // Other block attributes (@@schema, @@ignore, ...).
        let other = |m: &Block| -> Vec<String> {
            m.attrs
                .iter()
                .filter(|a| {
                    !matches!(
                        a.name.as_str(),
                        "map" | "index" | "unique" | "id" | "fulltext"
                    )
                })
                .map(|a| a.render("@@"))
                .collect()
        };
        if other(bm) != other(hm) {
            self.residual
                .push(format!("{}: block attributes changed", hm.name));
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
    use crate::detectors::schema_util::testing::{kinds, run};

    const P: &str = "prisma/schema.prisma";

    const BASE: &str = r#"datasource db {
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

    fn with_user_fields(extra: &str) -> String {
        BASE.replace(
            "  createdAt DateTime @default(now())\n",
            &format!("  createdAt DateTime @default(now())\n{extra}"),
        )
    }

    fn one(head: &str) -> Finding {
        run(&Prisma, &[(P, Some(BASE), Some(head))])
    }

    #[test]
    fn nullable_column_added() {
        let f = one(&with_user_fields("  bio String?\n"));
        assert_eq!(kinds(&f), vec!["schema-column-added-nullable"]);
        let e = &f.facets[0].evidence[0];
        assert_eq!((e.path.as_str(), e.line, e.side), (P, Some(13), Side::Head));
        assert_eq!(e.snippet.as_deref(), Some("bio String?"));
        assert!(
            f.facets[0].details.contains("User.bio added: String?"),
            "{}",
            f.facets[0].details
        );
        assert!(f.explained.contains(P));
    }

    #[test]
    fn column_added_with_default_and_required() {
        let f = one(&with_user_fields("  active Boolean @default(true)\n"));
        assert_eq!(kinds(&f), vec!["schema-column-added-default"]);
        let f = one(&with_user_fields("  updatedAt DateTime @updatedAt\n"));
        assert_eq!(kinds(&f), vec!["schema-column-added-required"]);
        assert!(f.facets[0].details.contains("non-empty table"));
    }

    #[test]
    fn list_column_is_nullable() {
        let f = one(&with_user_fields("  tags String[]\n"));
        assert_eq!(kinds(&f), vec!["schema-column-added-nullable"]);
    }

    #[test]
    fn unique_column_added_is_also_an_index() {
        let f = one(&with_user_fields("  handle String? @unique\n"));
        assert_eq!(
            kinds(&f),
            vec!["schema-column-added-nullable", "schema-index-added"]
        );
    }

    #[test]
    fn model_added_and_removed() {
        let head = format!("{BASE}\nmodel Tag {{\n  id Int @id\n  label String @unique\n}}\n");
        let f = one(&head);
        assert_eq!(kinds(&f), vec!["schema-table-added"]);
        assert_eq!(f.facets[0].evidence[0].line, Some(22));
        assert!(
            f.facets[0]
                .details
                .contains("model Tag added (table Tag, 2 columns)")
        );

        let f = run(&Prisma, &[(P, Some(&head), Some(BASE))]);
        assert_eq!(kinds(&f), vec!["schema-table-dropped"]);
        let e = &f.facets[0].evidence[0];
        assert_eq!((e.line, e.side), (Some(22), Side::Base));
    }

    #[test]
    fn field_removed_is_dropped_with_base_evidence() {
        let f = one(&BASE.replace("  age       Int\n", ""));
        assert_eq!(kinds(&f), vec!["schema-column-dropped"]);
        let e = &f.facets[0].evidence[0];
        assert_eq!((e.line, e.side), (Some(10), Side::Base));
        assert_eq!(e.snippet.as_deref(), Some("age       Int"));
    }

    #[test]
    fn rename_without_map_is_drop_plus_add_and_says_so() {
        let f = one(&BASE.replace("  age       Int\n", "  years     Int\n"));
        assert_eq!(
            kinds(&f),
            vec!["schema-column-added-required", "schema-column-dropped"]
        );
        assert!(
            f.facets[1].details.contains("rename to years without @map"),
            "{}",
            f.facets[1].details
        );
    }

    #[test]
    fn rename_with_map_keeping_the_column_is_a_rename() {
        let f = one(&BASE.replace("  age       Int\n", "  years     Int @map(\"age\")\n"));
        assert_eq!(kinds(&f), vec!["schema-column-renamed"]);
        assert!(
            f.facets[0]
                .details
                .contains("User.age → User.years (column age kept via @map")
        );
    }

    #[test]
    fn map_changing_the_column_name_is_a_rename() {
        let f = one(&BASE.replace("  age       Int\n", "  age       Int @map(\"age_years\")\n"));
        assert_eq!(kinds(&f), vec!["schema-column-renamed"]);
        assert!(f.facets[0].details.contains("column age → age_years"));
    }

    #[test]
    fn model_renamed_with_table_map_is_a_rename() {
        let head = BASE
            .replace("model Post {", "model Article {\n  @@map(\"Post\")")
            .replace("posts     Post[]", "posts     Article[]");
        let f = one(&head);
        assert_eq!(kinds(&f), vec!["schema-column-renamed"]);
        assert!(
            f.facets[0]
                .details
                .contains("model Post renamed to Article")
        );
    }

    #[test]
    fn table_map_changed_is_drop_and_create() {
        let head = BASE.replace(
            "  authorId Int\n}",
            "  authorId Int\n\n  @@map(\"posts\")\n}",
        );
        let f = one(&head);
        assert_eq!(
            kinds(&f),
            vec!["schema-table-dropped", "schema-table-added"]
        );
    }

    #[test]
    fn type_changes_including_nullability() {
        let f = one(&BASE.replace("  age       Int\n", "  age       BigInt\n"));
        assert_eq!(kinds(&f), vec!["schema-column-type-changed"]);
        assert!(f.facets[0].details.contains("User.age: Int → BigInt"));
        let f = one(&BASE.replace("  name      String?\n", "  name      String\n"));
        assert_eq!(kinds(&f), vec!["schema-column-type-changed"]);
        assert!(
            f.facets[0]
                .details
                .contains("User.name: String? → String (now NOT NULL"),
            "{}",
            f.facets[0].details
        );
        let f = one(&BASE.replace(
            "  title    String\n",
            "  title    String @db.VarChar(100)\n",
        ));
        assert_eq!(kinds(&f), vec!["schema-column-type-changed"]);
    }

    #[test]
    fn indexes_added() {
        let head = BASE.replace(
            "  authorId Int\n}",
            "  authorId Int\n\n  @@index([authorId])\n  @@unique([title, authorId])\n}",
        );
        let f = one(&head);
        assert_eq!(kinds(&f), vec!["schema-index-added", "schema-index-added"]);
        assert_eq!(f.facets[0].evidence[0].line, Some(21));
        let f = one(&BASE.replace("  title    String\n", "  title    String @unique\n"));
        assert_eq!(kinds(&f), vec!["schema-index-added"]);
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
    fn relation_fields_are_not_columns() {
        let head = BASE.replace("  posts     Post[]\n", "");
        let f = one(&head);
        assert!(
            f.facets.iter().all(|f| f.kind != "schema-column-dropped"),
            "{:?}",
            f.facets
        );
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
