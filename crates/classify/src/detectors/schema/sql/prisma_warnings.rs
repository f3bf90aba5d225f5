//! Prisma Migrate's `Warnings:` comment: its lines attached as evidence to the facets they explain,
//! and a dropped column paired with an added one called out as a likely rename without `@map`.

use super::statement::Ctx;
use crate::util::{line_snippet, truncate};
use crate::{Evidence, Side};

/// A Prisma `Warnings:` line: 1-based line and text.
pub(super) struct Warning {
    pub(super) line: u32,
    pub(super) text: String,
}

/// The lines of a leading `/* Warnings: - … */` block that Prisma Migrate writes.
pub(super) fn prisma_warnings(sql: &str) -> Vec<Warning> {
    let trimmed = sql.trim_start();
    if !trimmed.starts_with("/*") {
        return Vec::new();
    }
    let offset = sql.len() - trimmed.len();
    let Some(end) = trimmed.find("*/") else {
        return Vec::new();
    };
    let block = &trimmed[..end];
    if !block.contains("Warnings:") {
        return Vec::new();
    }
    let first_line = sql[..offset].matches('\n').count();
    let mut out: Vec<Warning> = Vec::new();
    for (i, l) in block.lines().enumerate() {
        let t = l.trim();
        if let Some(text) = t.strip_prefix("- ") {
            let line = u32::try_from(first_line + i + 1).unwrap_or(u32::MAX);
            out.push(Warning {
                line,
                text: text.to_string(),
            });
        } else if !t.is_empty()
            && !t.starts_with("/*")
            && t != "Warnings:"
            && let Some(last) = out.last_mut()
        {
            last.text.push(' ');
            last.text.push_str(t);
        }
    }
    out
}

impl Ctx<'_> {
    /// Pair drops with adds of the same type (a rename without @map), and attach Prisma's
    /// data-loss warnings to the facets they explain.
    pub(super) fn finish(&mut self) {
        let drops = std::mem::take(&mut self.dropped_cols);
        for ((table, col), i) in &drops {
            let twins: Vec<String> = self
                .added_cols
                .keys()
                .filter(|(t, c)| t == table && c != col)
                .map(|(_, c)| c.clone())
                .collect();
            let warned = self.warnings.iter().find(|w| {
                let lw = w.text.to_lowercase();
                lw.contains("drop")
                    && lw.contains(&format!("`{col}`"))
                    && lw.contains(&format!("`{table}`"))
            });
            let mut note = String::new();
            if !twins.is_empty() {
                note.push_str(&format!(
                    "; paired with ADD COLUMN {} on the same table: likely a rename without @map/RENAME COLUMN, the data in {col} is lost",
                    twins.join(", ")
                ));
            }
            if let Some(w) = warned {
                note.push_str("; Prisma warns: ");
                note.push_str(&truncate(&w.text, 160));
                let ev = Evidence {
                    path: self.path.to_string(),
                    line: Some(w.line),
                    side: Side::Head,
                    snippet: line_snippet(self.text, w.line),
                };
                self.facets[*i].evidence.push(ev);
            }
            self.facets[*i].details.push_str(&note);
        }
        // Warnings that name a required column added: evidence on that facet.
        let added: Vec<((String, String), usize)> = self
            .added_cols
            .iter()
            .filter_map(|(k, (_, i))| i.map(|i| (k.clone(), i)))
            .collect();
        for ((table, col), i) in added {
            if let Some(w) = self.warnings.iter().find(|w| {
                let lw = w.text.to_lowercase();
                lw.contains("required column")
                    && lw.contains(&format!("`{col}`"))
                    && lw.contains(&format!("`{table}`"))
            }) {
                let ev = Evidence {
                    path: self.path.to_string(),
                    line: Some(w.line),
                    side: Side::Head,
                    snippet: line_snippet(self.text, w.line),
                };
                self.facets[i].evidence.push(ev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::added;
    use crate::detectors::testing::kinds;

    #[test]
    fn prisma_rename_without_map_is_reported_as_drop_and_said_so() {
        let sql = r#"/*
  Warnings:

  - You are about to drop the column `email` on the `User` table. All the data in the column will be lost.
  - Added the required column `emailAddress` to the `User` table without a default value. This is not possible if the table is not empty.

*/
-- AlterTable
ALTER TABLE "User" DROP COLUMN "email",
ADD COLUMN     "emailAddress" TEXT NOT NULL;
"#;
        let f = added(sql);
        assert_eq!(
            kinds(&f),
            vec!["schema-column-dropped", "schema-column-added-required"]
        );
        let d = &f.facets[0];
        assert!(
            d.details.contains("paired with ADD COLUMN emailaddress"),
            "{}",
            d.details
        );
        assert_eq!(
            f.facets[1].evidence[0].line,
            Some(10),
            "ADD COLUMN is on its own line"
        );
        assert!(
            d.details.contains("likely a rename without @map"),
            "{}",
            d.details
        );
        assert!(
            d.details
                .contains("Prisma warns: You are about to drop the column `email`"),
            "{}",
            d.details
        );
        assert_eq!(d.evidence.len(), 2);
        assert_eq!(d.evidence[0].line, Some(9));
        assert_eq!(d.evidence[1].line, Some(4));
        assert_eq!(f.facets[1].evidence[1].line, Some(5));
    }

    #[test]
    fn prisma_drop_and_recreate_warning_is_attached() {
        let sql = "/*\n  Warnings:\n\n  - The `age` column on the `User` table would be dropped and recreated. This will lead to data loss if there is data in the column.\n\n*/\n-- AlterTable\nALTER TABLE \"User\" DROP COLUMN \"age\",\nADD COLUMN     \"age\" TEXT;\n";
        let f = added(sql);
        assert_eq!(
            kinds(&f),
            vec!["schema-column-dropped", "schema-column-added-nullable"]
        );
        assert!(
            f.facets[0].details.contains("dropped and recreated"),
            "{}",
            f.facets[0].details
        );
        assert!(
            !f.facets[0].details.contains("rename"),
            "{}",
            f.facets[0].details
        );
        assert_eq!(f.facets[0].evidence[1].line, Some(4));
    }
}
