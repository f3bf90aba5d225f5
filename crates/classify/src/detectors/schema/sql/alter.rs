//! `ALTER TABLE`: columns added (nullable, with a default, required), dropped, renamed and
//! retyped, constraints, and the locks these take on big tables.

use changegate_policy::facets::FacetCode;
use sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, ColumnDef, ColumnOption, TableConstraint,
};

use super::statement::{Ctx, ident_name, norm_table, op_line, unquote};
use crate::util::truncate;

impl Ctx<'_> {
    pub(super) fn alter_table(&mut self, at: &AlterTable, line: u32) {
        let t = ident_name(&at.name);
        let key = norm_table(&t);
        let new_table = self.created.contains(&key);
        for op in &at.operations {
            let line = op_line(op).unwrap_or(line);
            match op {
                AlterTableOperation::AddColumn { column_def, .. } => {
                    let c = unquote(&column_def.name.to_string());
                    let ty = column_def.data_type.to_string();
                    if new_table {
                        // Part of creating the table in this same migration.
                        self.added_cols
                            .insert((key.clone(), c.to_lowercase()), (ty.to_uppercase(), None));
                        continue;
                    }
                    let (not_null, default, unique) = column_shape(column_def);
                    let (kind, what) = match (not_null, default) {
                        (false, _) => (FacetCode::SchemaColumnAddedNullable, "nullable"),
                        (true, true) => (
                            FacetCode::SchemaColumnAddedDefault,
                            "NOT NULL with a default",
                        ),
                        (true, false) => (
                            FacetCode::SchemaColumnAddedRequired,
                            "NOT NULL without a default: fails on a non-empty table",
                        ),
                    };
                    let i = self.push(kind, format!("{t}.{c} added: {ty} ({what})"), line);
                    self.added_cols.insert(
                        (key.clone(), c.to_lowercase()),
                        (ty.to_uppercase(), Some(i)),
                    );
                    if unique {
                        self.push(
                            FacetCode::SchemaIndexAdded,
                            format!("{t}.{c}: unique index on the new column"),
                            line,
                        );
                    }
                    if !new_table && self.is_big(&t) && (volatile_default(column_def) || unique) {
                        self.downtime(
                            &t,
                            &format!(
                                "ADD COLUMN {c} rewrites or scans the table under an ACCESS EXCLUSIVE lock (volatile default or unique index)"
                            ),
                            line,
                        );
                    }
                }
                AlterTableOperation::DropColumn { column_names, .. } => {
                    for n in column_names {
                        let c = unquote(&n.to_string());
                        let i = self.push(
                            FacetCode::SchemaColumnDropped,
                            format!("{t}.{c} dropped: the column and its data are lost"),
                            line,
                        );
                        self.dropped_cols.push(((key.clone(), c.to_lowercase()), i));
                    }
                }
                AlterTableOperation::RenameColumn {
                    old_column_name,
                    new_column_name,
                } => {
                    self.push(
                        FacetCode::SchemaColumnRenamed,
                        format!(
                            "{t}.{} renamed to {} (running code that uses the old name breaks)",
                            unquote(&old_column_name.to_string()),
                            unquote(&new_column_name.to_string())
                        ),
                        line,
                    );
                }
                AlterTableOperation::RenameTable { table_name } => {
                    self.push(
                        FacetCode::SchemaColumnRenamed,
                        format!("table {t} renamed: {table_name} (running code that uses the old name breaks)"),
                        line,
                    );
                }
                AlterTableOperation::AlterColumn { column_name, op } => {
                    let c = unquote(&column_name.to_string());
                    match op {
                        AlterColumnOperation::SetDataType {
                            data_type, using, ..
                        } => {
                            let using = using
                                .as_ref()
                                .map(|u| format!(" USING {u}"))
                                .unwrap_or_default();
                            self.push(
                                FacetCode::SchemaColumnTypeChanged,
                                format!("{t}.{c}: type → {data_type}{using}"),
                                line,
                            );
                            if !new_table && self.is_big(&t) {
                                self.downtime(
                                    &t,
                                    &format!("ALTER COLUMN {c} TYPE rewrites the table under an ACCESS EXCLUSIVE lock"),
                                    line,
                                );
                            }
                        }
                        AlterColumnOperation::SetNotNull => {
                            self.push(
                                FacetCode::SchemaColumnTypeChanged,
                                format!("{t}.{c}: now NOT NULL (fails if NULLs exist)"),
                                line,
                            );
                            if !new_table && self.is_big(&t) {
                                self.downtime(
                                    &t,
                                    &format!("SET NOT NULL on {c} scans the table under an ACCESS EXCLUSIVE lock"),
                                    line,
                                );
                            }
                        }
                        AlterColumnOperation::DropNotNull => {
                            self.push(
                                FacetCode::SchemaColumnTypeChanged,
                                format!("{t}.{c}: now nullable (readers must handle NULL)"),
                                line,
                            );
                        }
                        _ => self
                            .residual
                            .push(format!("line {line}: ALTER COLUMN {c} {op}")),
                    }
                }
                AlterTableOperation::AddConstraint {
                    constraint,
                    not_valid,
                } => {
                    let scans = !new_table && self.is_big(&t) && !not_valid;
                    match constraint {
                        TableConstraint::Unique(_) | TableConstraint::PrimaryKey(_) => {
                            if !new_table {
                                self.push(
                                    FacetCode::SchemaIndexAdded,
                                    format!(
                                        "{t}: constraint added: {}",
                                        truncate(&constraint.to_string(), 120)
                                    ),
                                    line,
                                );
                            }
                            if scans {
                                self.downtime(
                                    &t,
                                    "ADD UNIQUE/PRIMARY KEY builds an index under an ACCESS EXCLUSIVE lock",
                                    line,
                                );
                            }
                        }
                        TableConstraint::ForeignKey(fk) => {
                            let cols_new = fk.columns.iter().all(|c| {
                                let c = unquote(&c.to_string()).to_lowercase();
                                self.added_cols.contains_key(&(key.clone(), c))
                            });
                            if !new_table && !cols_new {
                                self.residual.push(format!(
                                    "line {line}: foreign key on existing columns of {t}"
                                ));
                            }
                            if scans {
                                self.downtime(
                                    &t,
                                    "ADD FOREIGN KEY without NOT VALID checks every row under a SHARE ROW EXCLUSIVE lock",
                                    line,
                                );
                            }
                        }
                        _ => {
                            if !new_table {
                                self.residual
                                    .push(format!("line {line}: constraint on {t}"));
                            }
                            if scans {
                                self.downtime(
                                    &t,
                                    "ADD CONSTRAINT without NOT VALID scans the table under a lock",
                                    line,
                                );
                            }
                        }
                    }
                }
                other => self.residual.push(format!(
                    "line {line}: ALTER TABLE {t} {}",
                    truncate(&other.to_string(), 80)
                )),
            }
        }
    }
}

/// What a column definition says about nullability and defaults.
fn column_shape(c: &ColumnDef) -> (bool, bool, bool) {
    let mut not_null = false;
    let mut default = false;
    let mut unique = false;
    for o in &c.options {
        match &o.option {
            ColumnOption::NotNull => not_null = true,
            ColumnOption::Default(_) | ColumnOption::Generated { .. } => default = true,
            ColumnOption::PrimaryKey(_) => {
                not_null = true;
                unique = true;
            }
            ColumnOption::Unique(_) => unique = true,
            _ => {}
        }
    }
    let ty = c.data_type.to_string().to_uppercase();
    if ty.contains("SERIAL") {
        default = true; // serial types carry a sequence default
    }
    (not_null, default, unique)
}

/// Volatile default expressions force a table rewrite when a column is added (PostgreSQL 11+
/// stores non-volatile defaults in the catalog instead).
fn volatile_default(c: &ColumnDef) -> bool {
    c.options.iter().any(|o| match &o.option {
        ColumnOption::Default(e) => {
            let s = e.to_string().to_lowercase();
            [
                "random(",
                "gen_random_uuid(",
                "uuid_generate_",
                "clock_timestamp(",
                "nextval(",
                "timeofday(",
            ]
            .iter()
            .any(|f| s.contains(f))
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{M, added, big};
    use crate::detectors::testing::kinds;

    #[test]
    fn columns_added_to_a_table_created_in_the_same_file_are_part_of_it() {
        let f = added(
            "CREATE TABLE t (id SERIAL NOT NULL);\nALTER TABLE t ADD COLUMN note TEXT NOT NULL;\n",
        );
        assert_eq!(kinds(&f), vec!["schema-table-added"]);
        assert!(f.explained.contains(M));
    }

    #[test]
    fn add_column_three_ways() {
        let f = added("ALTER TABLE \"User\" ADD COLUMN \"bio\" TEXT;");
        assert_eq!(kinds(&f), vec!["schema-column-added-nullable"]);
        assert_eq!(f.facets[0].details, "User.bio added: TEXT (nullable)");
        let f = added("ALTER TABLE users ADD COLUMN active BOOLEAN NOT NULL DEFAULT true;");
        assert_eq!(kinds(&f), vec!["schema-column-added-default"]);
        let f = added("-- AlterTable\nALTER TABLE users ADD COLUMN org_id INTEGER NOT NULL;");
        assert_eq!(kinds(&f), vec!["schema-column-added-required"]);
        assert_eq!(f.facets[0].evidence[0].line, Some(2));
    }

    #[test]
    fn drop_rename_type_and_table() {
        let f = added("ALTER TABLE users DROP COLUMN legacy;");
        assert_eq!(kinds(&f), vec!["schema-column-dropped"]);
        let f = added("ALTER TABLE users RENAME COLUMN name TO full_name;");
        assert_eq!(kinds(&f), vec!["schema-column-renamed"]);
        assert!(
            f.facets[0]
                .details
                .contains("users.name renamed to full_name")
        );
        let f = added("ALTER TABLE users ALTER COLUMN age SET DATA TYPE BIGINT;");
        assert_eq!(kinds(&f), vec!["schema-column-type-changed"]);
        assert!(f.facets[0].details.contains("users.age: type → BIGINT"));
        let f = added("ALTER TABLE users ALTER COLUMN email SET NOT NULL;");
        assert_eq!(kinds(&f), vec!["schema-column-type-changed"]);
        let f = added("DROP TABLE \"Session\";");
        assert_eq!(kinds(&f), vec!["schema-table-dropped"]);
        let f = added("CREATE INDEX idx_users_email ON users (email);");
        assert_eq!(kinds(&f), vec!["schema-index-added"]);
    }

    #[test]
    fn other_locks_on_big_tables() {
        let f = big(
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            &["users"],
        );
        assert_eq!(
            kinds(&f),
            vec!["schema-column-type-changed", "schema-downtime"]
        );
        let fk = "ALTER TABLE users ADD COLUMN org_id INTEGER;\nALTER TABLE users ADD CONSTRAINT users_org_fkey FOREIGN KEY (org_id) REFERENCES orgs(id);";
        let f = big(fk, &["users"]);
        assert_eq!(
            kinds(&f),
            vec!["schema-column-added-nullable", "schema-downtime"]
        );
        assert!(
            f.facets[1].details.contains("SHARE ROW EXCLUSIVE"),
            "{}",
            f.facets[1].details
        );
        assert!(
            f.explained.contains(M),
            "a foreign key on a column added in the same file is a companion"
        );
        let f = big(&fk.replace("(id);", "(id) NOT VALID;"), &["users"]);
        assert_eq!(kinds(&f), vec!["schema-column-added-nullable"]);
        let f = big(
            "ALTER TABLE users ADD COLUMN token UUID NOT NULL DEFAULT gen_random_uuid();",
            &["users"],
        );
        assert_eq!(
            kinds(&f),
            vec!["schema-column-added-default", "schema-downtime"]
        );
        let f = big(
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
            &["users"],
        );
        assert_eq!(kinds(&f), vec!["schema-index-added", "schema-downtime"]);
    }
}
