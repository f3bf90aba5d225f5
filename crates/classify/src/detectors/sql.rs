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
//! it for the length of a scan or rewrite add `schema-downtime` with the lock they take.
//!
//! A migration file is "explained" only when every new statement maps to a facet or is a known
//! companion of one (a foreign key or an index on a table created in the same file, an enum type);
//! anything else (data updates, functions, dropped indexes, …) leaves the file to the fail-closed
//! `unclassified` fallback.

use std::collections::{BTreeMap, BTreeSet};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, AlterType, AlterTypeOperation,
    ColumnDef, ColumnOption, CreateIndex, ObjectName, ObjectType, Statement, TableConstraint,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::schema_util::{
    as_text, evidence, facet, first_diff_line, line_text, truncate, unparseable,
};
use crate::util::per_file;
use crate::{Change, Detector, Evidence, Facet, FileStatus, Finding, Side};

/// The SQL migration detector.
pub struct Sql;

const ID: &str = "schema-sql";

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
    "schema-downtime",
    "docs-only",
    "unparseable",
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

    fn facets(&self) -> &'static [&'static str] {
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
                    finding.facets.push(unparseable(
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
                        finding.facets.push(unparseable(
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
                let out = analyze(&f.path, base.as_deref(), &head, &big);
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

/// A Prisma `Warnings:` line: 1-based line and text.
struct Warning {
    line: u32,
    text: String,
}

/// The lines of a leading `/* Warnings: - … */` block that Prisma Migrate writes.
fn prisma_warnings(sql: &str) -> Vec<Warning> {
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
        } else if !t.is_empty() && !t.starts_with("/*") && t != "Warnings:" {
            if let Some(last) = out.last_mut() {
                last.text.push(' ');
                last.text.push_str(t);
            }
        }
    }
    out
}

/// Line of the column an `ALTER TABLE` operation names, from its token span.
fn op_line(op: &AlterTableOperation) -> Option<u32> {
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
fn ident_name(name: &ObjectName) -> String {
    name.to_string().replace('"', "")
}

/// Table name for matching: last segment, quotes dropped, lowercase.
fn norm_table(name: &str) -> String {
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .trim_matches('"')
        .trim_matches('`')
        .to_lowercase()
}

fn unquote(s: &str) -> String {
    s.trim_matches('"').to_string()
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

struct Ctx<'a> {
    path: &'a str,
    text: &'a str,
    big: &'a BTreeSet<String>,
    facets: Vec<Facet>,
    residual: Vec<String>,
    created: BTreeSet<String>,
    /// Columns added in this file: (table, column) → (type, facet index).
    added_cols: BTreeMap<(String, String), (String, Option<usize>)>,
    /// Columns dropped in this file: (table, column) → facet index.
    dropped_cols: Vec<((String, String), usize)>,
    /// Prisma's data-loss warnings at the top of the file.
    warnings: Vec<Warning>,
}

impl Ctx<'_> {
    fn ev(&self, line: u32) -> Evidence {
        evidence(self.path, Side::Head, Some(self.text), Some(line))
    }

    fn push(&mut self, kind: &str, details: String, line: u32) -> usize {
        self.facets.push(facet(ID, kind, details, self.ev(line)));
        self.facets.len() - 1
    }

    fn is_big(&self, table: &str) -> bool {
        self.big.contains(&norm_table(table))
    }

    fn downtime(&mut self, table: &str, what: &str, line: u32) {
        self.push(
            "schema-downtime",
            format!("{what} on big table {table} (classify.big_tables)"),
            line,
        );
    }

    fn statement(&mut self, stmt: &Statement, line: u32) {
        match stmt {
            Statement::CreateTable(ct) => {
                let t = ident_name(&ct.name);
                self.created.insert(norm_table(&t));
                self.push(
                    "schema-table-added",
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
                        "schema-table-dropped",
                        format!("DROP TABLE {n}: the table and all its data are lost"),
                        line,
                    );
                }
            }
            Statement::Truncate(t) => {
                for n in &t.table_names {
                    self.push(
                        "schema-table-dropped",
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

    fn alter_table(&mut self, at: &AlterTable, line: u32) {
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
                        (false, _) => ("schema-column-added-nullable", "nullable"),
                        (true, true) => ("schema-column-added-default", "NOT NULL with a default"),
                        (true, false) => (
                            "schema-column-added-required",
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
                            "schema-index-added",
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
                            "schema-column-dropped",
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
                        "schema-column-renamed",
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
                        "schema-column-renamed",
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
                                "schema-column-type-changed",
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
                                "schema-column-type-changed",
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
                                "schema-column-type-changed",
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
                                    "schema-index-added",
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

    fn create_index(&mut self, ci: &CreateIndex, line: u32) {
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
            "schema-index-added",
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

    /// Pair drops with adds of the same type (a rename without @map), and attach Prisma's
    /// data-loss warnings to the facets they explain.
    fn finish(&mut self) {
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
                    snippet: line_text(self.text, w.line),
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
                    snippet: line_text(self.text, w.line),
                };
                self.facets[i].evidence.push(ev);
            }
        }
    }
}

fn analyze(path: &str, base: Option<&str>, head: &str, big: &BTreeSet<String>) -> Outcome {
    let chunks = match split(head) {
        Ok(c) => c,
        Err((line, msg)) => {
            return Outcome {
                facets: vec![unparseable(
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
                ctx.facets.push(unparseable(
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
    let explained = !broken && ctx.residual.is_empty() && (!facets.is_empty() || statements == 0);
    if explained && facets.is_empty() && statements == 0 {
        facets.push(facet(
            ID,
            "docs-only",
            "SQL migration: only comments or layout changed",
            evidence(
                path,
                Side::Head,
                Some(head),
                Some(first_diff_line(base.unwrap_or(""), head)),
            ),
        ));
    }
    Outcome { facets, explained }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::schema_util::testing::{default_settings, kinds, run, run_with};

    const M: &str = "prisma/migrations/20250101000000_x/migration.sql";

    fn added(sql: &str) -> Finding {
        run(&Sql, &[(M, None, Some(sql))])
    }

    fn big(sql: &str, tables: &[&str]) -> Finding {
        let mut s = default_settings();
        s.big_tables = tables.iter().map(|t| (*t).to_string()).collect();
        run_with(&Sql, &s, &[(M, None, Some(sql))])
    }

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
            let _ = analyze(M, None, &text, &BTreeSet::new());
        }

        #[test]
        fn never_panics_on_sql_like_text(s in "(ALTER TABLE|CREATE|DROP|INDEX|ADD COLUMN|x|\"y\"|\\(|\\)|;|,|NOT NULL|DEFAULT|'|\\$\\$| |\n){0,40}") {
            let _ = analyze(M, None, &s, &BTreeSet::new());
        }
    }
}
