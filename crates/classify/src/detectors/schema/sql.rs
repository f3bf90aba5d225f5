//! SQL migrations (PostgreSQL): what each new statement does to the database.
//!
//! Why a real parser: a migration's risk is in its statements — `ADD COLUMN … NOT NULL` without a
//! default fails on a non-empty table, `CREATE INDEX` without `CONCURRENTLY` blocks writes while it
//! builds, `DROP COLUMN` loses data — and text matching misreads comments, quoting and
//! multi-statement lines. Files are the policy's `classify.migration_paths` globs; each is
//! tokenized once by sqlparser (PostgreSQL dialect), split at top-level `;`, and each statement
//! parsed on its own, so one statement sqlparser does not understand becomes an `unparseable`
//! facet with the parser's message and line while the others are still classified.
//!
//! Prisma writes a `Warnings:` comment at the top of a generated migration when it will lose data.
//! Those lines are attached as evidence to the matching facets; a `DROP COLUMN` paired with an
//! `ADD COLUMN` of the same type on the same table is called out as a likely rename without `@map`
//! (Prisma Migrate never renames). Statements on a table listed in `classify.big_tables` that lock
//! it for the length of a scan or rewrite add `schema-downtime` with the lock they take; so does a
//! declared downtime (`-- changegate: downtime=10m`) above the policy's threshold ([`downtime`]).
//!
//! A migration file is "explained" only when every new statement maps to a facet or is a known
//! companion of one (a foreign key or an index on a table created in the same file, an enum type);
//! anything else (data updates, functions, dropped indexes, …) leaves the file to the fail-closed
//! `unclassified` fallback.

//!
//! One file per rule family, each with its tests: [`statement`] (the per-file context, tables),
//! [`alter`] (`ALTER TABLE`: columns and constraints), [`index`] (`CREATE INDEX`),
//! [`prisma_warnings`] (Prisma's data-loss warnings, renames without `@map`).

mod alter;
mod downtime;
mod index;
mod prisma_warnings;
mod statement;

use std::collections::{BTreeMap, BTreeSet};

use changegate_policy::facets::FacetCode;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use self::prisma_warnings::prisma_warnings;
use self::statement::{Ctx, norm_table};
use crate::facet::{evidence_line, facet, unparseable_at};
use crate::util::{as_text, first_diff_line, per_file};
use crate::{Change, Detector, Facet, FileStatus, Finding, Side};

/// The SQL migration detector.
pub struct Sql;

const ID: &str = "schema-sql";

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
    FacetCode::SchemaDowntime,
    FacetCode::DocsOnly,
    FacetCode::Unparseable,
];

/// Build the matcher for migration globs: `*` stays inside one path segment, `**` crosses them.
pub(crate) fn migration_globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("migration path glob {p:?}: {e}"))?;
        b.add(g);
    }
    b.build().map_err(|e| e.to_string())
}

impl Detector for Sql {
    fn id(&self) -> &'static str {
        ID
    }

    fn description(&self) -> &'static str {
        "SQL migrations (PostgreSQL, sqlparser): tables, columns, renames, type changes, indexes, big-table locks"
    }

    fn facets(&self) -> &'static [FacetCode] {
        FACETS
    }
    fn splits_files(&self) -> bool {
        true
    }

    fn detect(&self, change: &Change<'_>) -> Finding {
        let mut finding = Finding::default();
        let globs = match migration_globs(&change.settings.migration_paths) {
            Ok(g) => g,
            Err(e) => {
                // A broken glob cannot be matched: every .sql file is then unparseable-by-config.
                for f in change.files.iter().filter(|f| f.path.ends_with(".sql")) {
                    finding.facets.push(unparseable_at(
                        ID,
                        &f.path,
                        Side::Head,
                        None,
                        "Migration path setting",
                        &e,
                    ));
                }
                return finding;
            }
        };
        let big: BTreeSet<String> = change
            .settings
            .big_tables
            .iter()
            .map(|t| norm_table(t))
            .collect();
        let files = per_file(
            change.files,
            || (),
            |_, f, finding| {
                if f.submodule {
                    return;
                }
                if !globs.is_match(&f.path)
                    && !f.old_path.as_deref().is_some_and(|p| globs.is_match(p))
                {
                    return;
                }
                if change.is_binary(f) {
                    return;
                }
                if f.status == FileStatus::Deleted {
                    return; // removing a migration file is not understood: left unclassified
                }
                let Some(head) = change.contents.head(&f.path) else {
                    return;
                };
                let head = match as_text(&head) {
                    Ok(t) => t.to_string(),
                    Err(e) => {
                        finding.facets.push(unparseable_at(
                            ID,
                            &f.path,
                            Side::Head,
                            None,
                            "SQL migration",
                            &e,
                        ));
                        return;
                    }
                };
                let base = match f.status {
                    FileStatus::Added => None,
                    _ => change
                        .contents
                        .base(f.base_path())
                        .and_then(|b| as_text(&b).ok().map(str::to_string)),
                };
                let threshold = change.settings.downtime_threshold.as_ref();
                let out = analyze(&f.path, base.as_deref(), &head, &big, threshold);
                if out.explained {
                    finding.explained.insert(f.path.clone());
                }
                finding.facets.extend(out.facets);
            },
        );
        finding.facets.extend(files.facets);
        finding.explained.extend(files.explained);
        finding
    }
}

/// Result of one migration file.
struct Outcome {
    facets: Vec<Facet>,
    explained: bool,
}

/// One `;`-separated statement of a file.
struct Chunk {
    tokens: Vec<TokenWithSpan>,
    /// 1-based line of its first non-comment token.
    line: u32,
    /// Normalized text (for comparing base and head).
    key: String,
}

fn split(sql: &str) -> Result<Vec<Chunk>, (u32, String)> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| {
            (
                u32::try_from(e.location.line).unwrap_or(0).max(1),
                e.message.clone(),
            )
        })?;
    let mut chunks = Vec::new();
    let mut cur: Vec<TokenWithSpan> = Vec::new();
    let flush = |cur: &mut Vec<TokenWithSpan>, chunks: &mut Vec<Chunk>| {
        let first = cur
            .iter()
            .find(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF));
        if let Some(first) = first {
            let line = u32::try_from(first.span.start.line)
                .unwrap_or(u32::MAX)
                .max(1);
            let key = cur
                .iter()
                .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
                .map(|t| t.token.to_string())
                .collect::<Vec<_>>()
                .join(" ");
            chunks.push(Chunk {
                tokens: std::mem::take(cur),
                line,
                key,
            });
        } else {
            cur.clear();
        }
    };
    for t in tokens {
        let end = t.token == Token::SemiColon;
        cur.push(t);
        if end {
            flush(&mut cur, &mut chunks);
        }
    }
    flush(&mut cur, &mut chunks);
    Ok(chunks)
}

/// `Line: N` in a sqlparser error message.
fn error_line(msg: &str) -> Option<u32> {
    let rest = &msg[msg.find("Line: ")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn analyze(
    path: &str,
    base: Option<&str>,
    head: &str,
    big: &BTreeSet<String>,
    threshold: Option<&changegate_policy::Dur>,
) -> Outcome {
    let chunks = match split(head) {
        Ok(c) => c,
        Err((line, msg)) => {
            return Outcome {
                facets: vec![unparseable_at(
                    ID,
                    path,
                    Side::Head,
                    Some(line),
                    "SQL migration",
                    &msg,
                )],
                explained: false,
            };
        }
    };
    // For an edited migration only statements not already in base are new.
    let mut base_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut residual = Vec::new();
    if let Some(b) = base {
        match split(b) {
            Ok(bc) => {
                for c in bc {
                    *base_keys.entry(c.key).or_default() += 1;
                }
            }
            Err(_) => residual.push("base version does not tokenize".to_string()),
        }
    }
    let mut ctx = Ctx {
        path,
        text: head,
        big,
        facets: Vec::new(),
        residual,
        created: BTreeSet::new(),
        added_cols: BTreeMap::new(),
        dropped_cols: Vec::new(),
        warnings: prisma_warnings(head),
    };
    let mut broken = false;
    let mut statements = 0usize;
    for chunk in chunks {
        if let Some(n) = base_keys.get_mut(&chunk.key).filter(|n| **n > 0) {
            *n -= 1;
            continue;
        }
        let dialect = PostgreSqlDialect {};
        let parsed = Parser::new(&dialect)
            .with_tokens_with_locations(chunk.tokens)
            .parse_statements();
        match parsed {
            Ok(stmts) => {
                for s in &stmts {
                    statements += 1;
                    match s {
                        Statement::StartTransaction { .. } | Statement::Commit { .. } => {}
                        s => ctx.statement(s, chunk.line),
                    }
                }
            }
            Err(e) => {
                broken = true;
                let msg = e.to_string();
                let line = error_line(&msg).unwrap_or(chunk.line);
                ctx.facets.push(unparseable_at(
                    ID,
                    path,
                    Side::Head,
                    Some(line),
                    "SQL migration statement",
                    &msg,
                ));
            }
        }
    }
    if base_keys.values().any(|n| *n > 0) {
        ctx.residual
            .push("statements removed from an existing migration".to_string());
    }
    ctx.finish();
    let mut facets = ctx.facets;
    facets.extend(downtime::declared(path, head, threshold));
    let explained = !broken && ctx.residual.is_empty() && (!facets.is_empty() || statements == 0);
    if explained && facets.is_empty() && statements == 0 {
        facets.push(facet(
            ID,
            FacetCode::DocsOnly,
            "SQL migration: only comments or layout changed",
            vec![evidence_line(
                path,
                Side::Head,
                Some(head),
                Some(first_diff_line(base.unwrap_or(""), head)),
            )],
        ));
    }
    Outcome { facets, explained }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testing::{default_settings, kinds, run, run_with};

    pub(super) const M: &str = "prisma/migrations/20250101000000_x/migration.sql";

    pub(super) fn added(sql: &str) -> Finding {
        run(&Sql, &[(M, None, Some(sql))])
    }

    pub(super) fn big(sql: &str, tables: &[&str]) -> Finding {
        let mut s = default_settings();
        s.big_tables = tables.iter().map(|t| (*t).to_string()).collect();
        run_with(&Sql, &s, &[(M, None, Some(sql))])
    }

    #[test]
    fn unparseable_statement_is_reported_with_its_line_and_the_rest_is_classified() {
        let sql =
            "ALTER TABLE users ADD COLUMN bio TEXT;\n\nALTER TABLE users FROBNICATE wildly;\n";
        let f = added(sql);
        assert_eq!(
            kinds(&f),
            vec!["schema-column-added-nullable", "unparseable"]
        );
        let e = &f.facets[1].evidence[0];
        assert_eq!(e.line, Some(3));
        assert!(e.snippet.as_deref().unwrap().contains("Line: 3"), "{e:?}");
        assert!(f.explained.is_empty());
        let f = added("CREATE TABLE x (a TEXT 'unterminated);");
        assert_eq!(kinds(&f), vec!["unparseable"]);
    }

    #[test]
    fn comment_only_migration_is_docs_only() {
        let f = run(
            &Sql,
            &[(
                M,
                Some("-- a\nCREATE TABLE a (id INT);\n"),
                Some("-- b\nCREATE TABLE a (id INT);\n"),
            )],
        );
        assert_eq!(kinds(&f), vec!["docs-only"]);
        assert_eq!(f.facets[0].evidence[0].line, Some(1));
        assert!(f.explained.contains(M));
    }

    #[test]
    fn unknown_statements_leave_the_file_unexplained() {
        let f = added("ALTER TABLE users ADD COLUMN bio TEXT;\nUPDATE users SET bio = '';");
        assert_eq!(kinds(&f), vec!["schema-column-added-nullable"]);
        assert!(f.explained.is_empty());
    }

    #[test]
    fn only_new_statements_of_an_edited_migration_count() {
        let base = "CREATE TABLE a (id INT);\n";
        let head = "CREATE TABLE a (id INT);\nALTER TABLE a ADD COLUMN b TEXT;\n";
        let f = run(&Sql, &[(M, Some(base), Some(head))]);
        assert_eq!(kinds(&f), vec!["schema-column-added-nullable"]);
        assert_eq!(f.facets[0].evidence[0].line, Some(2));
    }

    #[test]
    fn other_paths_are_ignored_and_globs_respect_segments() {
        let f = run(
            &Sql,
            &[("src/queries/report.sql", None, Some("DROP TABLE x;"))],
        );
        assert!(f.facets.is_empty());
        let f = run(
            &Sql,
            &[(
                "prisma/migrations/a/b/migration.sql",
                None,
                Some("DROP TABLE x;"),
            )],
        );
        assert!(f.facets.is_empty());
        let f = run(
            &Sql,
            &[(
                "db/migrations/2025/001_init.sql",
                None,
                Some("DROP TABLE x;"),
            )],
        );
        assert_eq!(kinds(&f), vec!["schema-table-dropped"]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = analyze(M, None, &text, &BTreeSet::new(), None);
        }

        #[test]
        fn never_panics_on_sql_like_text(s in "(ALTER TABLE|CREATE|DROP|INDEX|ADD COLUMN|x|\"y\"|\\(|\\)|;|,|NOT NULL|DEFAULT|'|\\$\\$| |\n){0,40}") {
            let _ = analyze(M, None, &s, &BTreeSet::new(), None);
        }
    }
}
