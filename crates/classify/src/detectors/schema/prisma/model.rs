//! One model on both sides: its table (`@@map`), columns added, dropped, renamed (`@map`) and
//! retyped, and its indexes.

use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::facets::FacetCode;

use super::{Diff, Located};
use crate::Side;
use crate::parse::prisma::{Block, Field};

impl Diff {
    pub(super) fn model(
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
                FacetCode::SchemaTableDropped,
                format!(
                    "model {}: table {btable} → {htable} (@@map changed); Prisma Migrate drops {btable} and creates {htable}, losing its data unless the migration is edited to ALTER TABLE … RENAME",
                    bm.name
                ),
                (b.path, Side::Base, b.text, bm.line),
            );
            self.push(
                FacetCode::SchemaTableAdded,
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
                    FacetCode::SchemaColumnRenamed,
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
                // The Prisma Client field is renamed: whatever returns the model (NestJS
                // services commonly return Prisma objects) changes shape without any SQL.
                self.push(
                    FacetCode::ApiFieldTypeChanged,
                    format!(
                        "Prisma Client field {}.{} renamed to {}: responses that return the model change shape",
                        bm.name, bf.name, hf.name
                    ),
                    (h.path, Side::Head, h.text, hf.line),
                );
                pairs.push((bf, hf));
            } else if let Some((bi, bf)) = by_name {
                matched_b.insert(bi);
                self.push(
                    FacetCode::SchemaColumnRenamed,
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
                (FacetCode::SchemaColumnAddedNullable, "nullable")
            } else if has_default(hf) {
                (
                    FacetCode::SchemaColumnAddedDefault,
                    "NOT NULL with a default",
                )
            } else {
                (
                    FacetCode::SchemaColumnAddedRequired,
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
                        FacetCode::SchemaIndexAdded,
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
                FacetCode::SchemaColumnDropped,
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
                    FacetCode::SchemaColumnTypeChanged,
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
        // Relation fields (no column): a relation renamed or removed changes the Prisma Client
        // API (`include: { author: true }`, `post.author`) and so the shape of responses that
        // return it, with no SQL at all. An added relation field comes with its foreign-key
        // column (reported above) or is the back side of one.
        let rel = |m: &'_ Block| -> Vec<(String, String, u32)> {
            m.fields
                .iter()
                .filter(|f| !is_column(f, non_scalar) && non_scalar.contains(f.ty.as_str()))
                .map(|f| (f.name.clone(), f.type_text(), f.line))
                .collect()
        };
        let (brel, hrel) = (rel(bm), rel(hm));
        // By name: a relation whose model was renamed (`Post[]` → `Article[]`) is the same relation.
        for (name, ty, line) in &brel {
            if hrel.iter().any(|(n, _, _)| n == name) {
                continue;
            }
            let twin = hrel
                .iter()
                .find(|(n, t, _)| t == ty && !brel.iter().any(|(bn, _, _)| bn == n));
            let what = match twin {
                Some((n, _, _)) => format!("renamed to {n}"),
                None => "removed".to_string(),
            };
            self.push(
                FacetCode::ApiFieldTypeChanged,
                format!(
                    "Prisma Client relation {}.{name} ({ty}) {what}: responses that include it change shape",
                    bm.name
                ),
                (b.path, Side::Base, b.text, *line),
            );
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
                    FacetCode::SchemaIndexAdded,
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

pub(super) fn db_name(b: &Block) -> String {
    b.attr("map")
        .and_then(|a| a.first_string())
        .unwrap_or_else(|| b.name.clone())
}

pub(super) fn col_name(f: &Field) -> String {
    f.attr("map")
        .and_then(|a| a.first_string())
        .unwrap_or_else(|| f.name.clone())
}

/// A field is a column unless its type is a model, view or composite type (a relation or an
/// embedded document), or it carries `@relation`.
pub(super) fn is_column(f: &Field, non_scalar: &BTreeSet<&str>) -> bool {
    f.attr("relation").is_none() && !non_scalar.contains(f.ty.as_str())
}

/// Index-like declarations of a model: `@@index`, `@@unique`, `@@id`, field `@unique` / `@id`.
pub(super) fn indexes(b: &Block) -> BTreeMap<String, (u32, &str)> {
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
pub(super) fn other_attrs(f: &Field) -> Vec<String> {
    f.attrs
        .iter()
        .filter(|a| {
            !matches!(a.name.as_str(), "map" | "unique" | "id") && !a.name.starts_with("db.")
        })
        .map(|a| a.render("@"))
        .collect()
}

pub(super) fn has_default(f: &Field) -> bool {
    // `@updatedAt` sets a value from the client only: the column has no database default.
    f.attr("default").is_some()
}

pub(super) fn label(b: &Block, f: &Field) -> String {
    let table = db_name(b);
    let col = col_name(f);
    if table == b.name && col == f.name {
        format!("{}.{}", b.name, f.name)
    } else {
        format!("{}.{} (column {table}.{col})", b.name, f.name)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BASE, P, one, with_user_fields};
    use super::super::*;
    use crate::detectors::testing::{kinds, run};

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
        assert_eq!(
            kinds(&f),
            vec!["schema-column-renamed", "api-field-type-changed"]
        );
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
    fn relation_fields_are_not_columns() {
        let head = BASE.replace("  posts     Post[]\n", "");
        let f = one(&head);
        assert!(
            f.facets.iter().all(|f| f.kind != "schema-column-dropped"),
            "{:?}",
            f.facets
        );
    }
}
