//! Statements: the per-file context every rule adds to, tables created, dropped and emptied, and
//! the dispatch of each statement to its rule family.

use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::facets::FacetCode;
use sqlparser::ast::{
    AlterTableOperation, AlterType, AlterTypeOperation, ObjectName, ObjectType, Statement,
};

use super::ID;
use super::prisma_warnings::Warning;
use crate::facet::{evidence_line, facet};
use crate::util::truncate;
use crate::{Evidence, Facet, Side};

pub(super) struct Ctx<'a> {
    pub(super) path: &'a str,
    pub(super) text: &'a str,
    pub(super) big: &'a BTreeSet<String>,
    pub(super) facets: Vec<Facet>,
    pub(super) residual: Vec<String>,
    pub(super) created: BTreeSet<String>,
    /// Columns added in this file: (table, column) → (type, facet index).
    pub(super) added_cols: BTreeMap<(String, String), (String, Option<usize>)>,
    /// Columns dropped in this file: (table, column) → facet index.
    pub(super) dropped_cols: Vec<((String, String), usize)>,
    /// Prisma's data-loss warnings at the top of the file.
    pub(super) warnings: Vec<Warning>,
}

impl Ctx<'_> {
    pub(super) fn ev(&self, line: u32) -> Evidence {
        evidence_line(self.path, Side::Head, Some(self.text), Some(line))
    }

    pub(super) fn push(&mut self, kind: FacetCode, details: String, line: u32) -> usize {
        self.facets
            .push(facet(ID, kind, details, vec![self.ev(line)]));
        self.facets.len() - 1
    }

    pub(super) fn is_big(&self, table: &str) -> bool {
        self.big.contains(&norm_table(table))
    }

    pub(super) fn downtime(&mut self, table: &str, what: &str, line: u32) {
        self.push(
            FacetCode::SchemaDowntime,
            format!("{what} on big table {table} (classify.big_tables)"),
            line,
        );
    }

    pub(super) fn statement(&mut self, stmt: &Statement, line: u32) {
        match stmt {
            Statement::CreateTable(ct) => {
                let t = ident_name(&ct.name);
                self.created.insert(norm_table(&t));
                self.push(
                    FacetCode::SchemaTableAdded,
                    format!("CREATE TABLE {t} ({} columns)", ct.columns.len()),
                    line,
                );
            }
            Statement::AlterTable(at) => self.alter_table(at, line),
            Statement::CreateIndex(ci) => self.create_index(ci, line),
            Statement::Drop {
                object_type: ObjectType::Table,
                names,
                ..
            } => {
                for n in names {
                    self.push(
                        FacetCode::SchemaTableDropped,
                        format!("DROP TABLE {n}: the table and all its data are lost"),
                        line,
                    );
                }
            }
            Statement::Truncate(t) => {
                for n in &t.table_names {
                    self.push(
                        FacetCode::SchemaTableDropped,
                        format!("TRUNCATE {}: every row of the table is deleted", n.name),
                        line,
                    );
                }
            }
            // Companions: new enum types and enum values are additive.
            Statement::CreateType { .. } => {}
            Statement::AlterType(AlterType {
                operation: AlterTypeOperation::AddValue(_),
                ..
            }) => {}
            other => self
                .residual
                .push(format!("line {line}: {}", truncate(&other.to_string(), 80))),
        }
    }
}

/// Line of the column an `ALTER TABLE` operation names, from its token span.
pub(super) fn op_line(op: &AlterTableOperation) -> Option<u32> {
    let ident = match op {
        AlterTableOperation::AddColumn { column_def, .. } => &column_def.name,
        AlterTableOperation::DropColumn { column_names, .. } => column_names.first()?,
        AlterTableOperation::RenameColumn {
            old_column_name, ..
        } => old_column_name,
        AlterTableOperation::AlterColumn { column_name, .. } => column_name,
        _ => return None,
    };
    u32::try_from(ident.span.start.line).ok().filter(|l| *l > 0)
}

/// Table name for display: quotes dropped (`"User"` → `User`).
pub(super) fn ident_name(name: &ObjectName) -> String {
    name.to_string().replace('"', "")
}

/// Table name for matching: last segment, quotes dropped, lowercase.
pub(super) fn norm_table(name: &str) -> String {
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .trim_matches('"')
        .trim_matches('`')
        .to_lowercase()
}

pub(super) fn unquote(s: &str) -> String {
    s.trim_matches('"').to_string()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{M, added};
    use crate::Side;
    use crate::detectors::testing::kinds;

    #[test]
    fn create_table_with_its_indexes_and_keys() {
        let sql = r#"-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');

-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" TEXT NOT NULL,
    "authorId" INTEGER NOT NULL,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Post_title_key" ON "Post"("title");

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"#;
        let f = added(sql);
        assert_eq!(kinds(&f), vec!["schema-table-added"]);
        let e = &f.facets[0].evidence[0];
        assert_eq!((e.line, e.side), (Some(5), Side::Head));
        assert_eq!(e.snippet.as_deref(), Some("CREATE TABLE \"Post\" ("));
        assert!(f.facets[0].details.contains("(3 columns)"));
        assert!(f.explained.contains(M));
    }

    #[test]
    fn truncate_and_table_rename() {
        let f = added("TRUNCATE TABLE sessions;");
        assert_eq!(kinds(&f), vec!["schema-table-dropped"]);
        let f = added("ALTER TABLE sessions RENAME TO user_sessions;");
        assert_eq!(kinds(&f), vec!["schema-column-renamed"]);
        assert!(f.facets[0].details.starts_with("table sessions renamed"));
        let f =
            added("ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org_id) REFERENCES orgs(id);");
        assert!(
            f.facets.is_empty() && f.explained.is_empty(),
            "a foreign key on existing columns is not understood"
        );
    }
}
