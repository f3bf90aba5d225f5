//! `CREATE INDEX`: a new index, and the write lock it holds on a big table without
//! `CONCURRENTLY`.

use changegate_policy::facets::FacetCode;
use sqlparser::ast::CreateIndex;

use super::statement::{Ctx, ident_name, norm_table};

impl Ctx<'_> {
    pub(super) fn create_index(&mut self, ci: &CreateIndex, line: u32) {
        let t = ident_name(&ci.table_name);
        if self.created.contains(&norm_table(&t)) {
            return; // part of creating the table
        }
        let name = ci
            .name
            .as_ref()
            .map(|n| format!("{n} "))
            .unwrap_or_default();
        let cols: Vec<String> = ci.columns.iter().map(|c| c.to_string()).collect();
        let unique = if ci.unique { "unique " } else { "" };
        let conc = if ci.concurrently { " CONCURRENTLY" } else { "" };
        self.push(
            FacetCode::SchemaIndexAdded,
            format!("{unique}index {name}on {t}({}){conc}", cols.join(", ")),
            line,
        );
        if !ci.concurrently && self.is_big(&t) {
            self.downtime(
                &t,
                &format!(
                    "CREATE INDEX {name}without CONCURRENTLY holds a SHARE lock that blocks INSERT/UPDATE/DELETE until the index is built; use CREATE INDEX CONCURRENTLY"
                ),
                line,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::big;
    use crate::detectors::testing::kinds;

    #[test]
    fn index_on_a_big_table_without_concurrently_is_downtime() {
        let sql = "CREATE INDEX \"Message_createdAt_idx\" ON \"Message\"(\"createdAt\");";
        let f = big(sql, &["messages", "Message"]);
        assert_eq!(kinds(&f), vec!["schema-index-added", "schema-downtime"]);
        assert!(
            f.facets[1].details.contains("SHARE lock"),
            "{}",
            f.facets[1].details
        );
        let f = big(
            "CREATE INDEX CONCURRENTLY idx ON public.message (created_at);",
            &["message"],
        );
        assert_eq!(kinds(&f), vec!["schema-index-added"]);
        let f = big(sql, &["users"]);
        assert_eq!(kinds(&f), vec!["schema-index-added"]);
        let f = big(
            "ALTER TABLE message ALTER COLUMN body TYPE VARCHAR(500);",
            &["message"],
        );
        assert_eq!(
            kinds(&f),
            vec!["schema-column-type-changed", "schema-downtime"]
        );
    }
}
