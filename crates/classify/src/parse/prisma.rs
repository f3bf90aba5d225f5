//! A small parser for Prisma schema files (`schema.prisma`, multi-file `*.prisma`).
//!
//! Why hand-written: Prisma's own parser (`psl` / `schema-ast` in prisma-engines) is not published
//! on crates.io (the `psl` name there is an unrelated public-suffix-list crate), and the only
//! published alternative found (`prax-import`) is a converter for another ORM that needs a newer
//! toolchain and keeps no line numbers. The Prisma Schema Language is line-oriented and small:
//! blocks (`model`, `view`, `type`, `enum`, `datasource`, `generator`) hold one declaration per
//! line, and attributes are `@name(args)` / `@@name(args)`. A tokenizer plus a block/line parser
//! covers it, keeps 1-based line numbers for evidence, and turns every malformed input into a
//! [`ParseError`] with a location instead of a panic (see the proptest below). Attribute arguments
//! are kept as normalized token text: the detector compares them, it does not evaluate them.

use std::fmt;

/// A parse failure with its 1-based location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// 1-based line.
    pub(crate) line: u32,
    /// 1-based column (in characters).
    pub(crate) column: u32,
    /// What was wrong.
    pub(crate) message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.message, self.line, self.column
        )
    }
}

/// What kind of top-level block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// `model X { }`: a table.
    Model,
    /// `view X { }`: a database view.
    View,
    /// `type X { }`: a composite type (MongoDB).
    Type,
    /// `enum X { }`.
    Enum,
    /// `datasource x { }`.
    Datasource,
    /// `generator x { }`.
    Generator,
}

/// An attribute: `@name(args)` on a field or `@@name(args)` on a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    /// Name without `@`, e.g. `map`, `default`, `db.VarChar`.
    pub(crate) name: String,
    /// Normalized argument text without the outer parentheses; empty when there are none.
    pub(crate) args: String,
    /// 1-based line.
    pub(crate) line: u32,
}

impl Attr {
    /// The first string literal among the arguments (`@map("x")`, `@@map(name: "x")`).
    pub(crate) fn first_string(&self) -> Option<String> {
        let start = self.args.find('"')?;
        let rest = &self.args[start + 1..];
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        None
    }

    /// `@name(args)` as written (normalized).
    pub(crate) fn render(&self, prefix: &str) -> String {
        if self.args.is_empty() {
            format!("{prefix}{}", self.name)
        } else {
            format!("{prefix}{}({})", self.name, self.args)
        }
    }
}

/// One line of a block: a field, an enum value, or a `key = value` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    /// Field / value / key name.
    pub(crate) name: String,
    /// Base type name (`String`, `User`, `Unsupported("x")`); for settings the value text.
    pub(crate) ty: String,
    /// `?`.
    pub(crate) optional: bool,
    /// `[]`.
    pub(crate) list: bool,
    /// Field attributes.
    pub(crate) attrs: Vec<Attr>,
    /// 1-based line.
    pub(crate) line: u32,
}

impl Field {
    /// The attribute named `name`.
    pub(crate) fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// Type as written: `String?`, `Int[]`, plus a native type attribute (`@db.VarChar(255)`).
    pub(crate) fn type_text(&self) -> String {
        let mut t = self.ty.clone();
        if self.list {
            t.push_str("[]");
        }
        if self.optional {
            t.push('?');
        }
        for a in self.attrs.iter().filter(|a| a.name.starts_with("db.")) {
            t.push(' ');
            t.push_str(&a.render("@"));
        }
        t
    }
}

/// A top-level block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// Kind.
    pub(crate) kind: BlockKind,
    /// Name.
    pub(crate) name: String,
    /// 1-based line of the header.
    pub(crate) line: u32,
    /// Fields, enum values or settings.
    pub(crate) fields: Vec<Field>,
    /// Block attributes (`@@index`, `@@map`, ...).
    pub(crate) attrs: Vec<Attr>,
}

impl Block {
    /// The block attribute named `name`, first occurrence.
    pub(crate) fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// A parsed schema file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Schema {
    /// Blocks in source order.
    pub(crate) blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Punct(char),
    Newline,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: u32,
    column: u32,
}

fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = src.chars().peekable();
    let (mut line, mut column) = (1u32, 1u32);
    macro_rules! bump {
        () => {{
            let c = chars.next();
            if c == Some('\n') {
                line = line.saturating_add(1);
                column = 1;
            } else if c.is_some() {
                column = column.saturating_add(1);
            }
            c
        }};
    }
    while let Some(&c) = chars.peek() {
        let (l, col) = (line, column);
        match c {
            '\n' => {
                bump!();
                out.push(Token {
                    tok: Tok::Newline,
                    line: l,
                    column: col,
                });
            }
            c if c.is_whitespace() => {
                bump!();
            }
            '/' => {
                bump!();
                if chars.peek() == Some(&'/') {
                    while let Some(&c) = chars.peek() {
                        if c == '\n' {
                            break;
                        }
                        bump!();
                    }
                } else {
                    return Err(ParseError {
                        line: l,
                        column: col,
                        message: "unexpected `/` (comments start with `//`)".into(),
                    });
                }
            }
            '"' => {
                bump!();
                let mut s = String::new();
                loop {
                    match bump!() {
                        None | Some('\n') => {
                            return Err(ParseError {
                                line: l,
                                column: col,
                                message: "unterminated string".into(),
                            });
                        }
                        Some('\\') => {
                            s.push('\\');
                            if let Some(e) = bump!() {
                                s.push(e);
                            }
                        }
                        Some('"') => break,
                        Some(c) => s.push(c),
                    }
                }
                out.push(Token {
                    tok: Tok::Str(s),
                    line: l,
                    column: col,
                });
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' || c == '-' {
                        s.push(c);
                        bump!();
                    } else {
                        break;
                    }
                }
                out.push(Token {
                    tok: Tok::Ident(s),
                    line: l,
                    column: col,
                });
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut s = String::new();
                s.push(c);
                bump!();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        s.push(c);
                        bump!();
                    } else {
                        break;
                    }
                }
                out.push(Token {
                    tok: Tok::Num(s),
                    line: l,
                    column: col,
                });
            }
            '{' | '}' | '(' | ')' | '[' | ']' | ',' | ':' | '=' | '?' | '!' | '@' | '.' => {
                bump!();
                out.push(Token {
                    tok: Tok::Punct(c),
                    line: l,
                    column: col,
                });
            }
            other => {
                return Err(ParseError {
                    line: l,
                    column: col,
                    message: format!("unexpected character {other:?}"),
                });
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    last: (u32, u32),
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        if let Some(t) = &t {
            self.last = (t.line, t.column);
            self.pos += 1;
        }
        t
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        let (line, column) = self
            .toks
            .get(self.pos)
            .map(|t| (t.line, t.column))
            .unwrap_or(self.last);
        Err(ParseError {
            line,
            column,
            message: message.into(),
        })
    }

    fn skip_newlines(&mut self) {
        while self.peek() == Some(&Tok::Newline) {
            self.pos += 1;
        }
    }

    fn ident(&mut self, what: &str) -> Result<(String, u32), ParseError> {
        match self.peek() {
            Some(Tok::Ident(_)) => match self.next() {
                Some(Token {
                    tok: Tok::Ident(s),
                    line,
                    ..
                }) => Ok((s, line)),
                _ => self.err(format!("expected {what}")),
            },
            _ => self.err(format!("expected {what}")),
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(format!("expected `{c}`"))
        }
    }

    /// Balanced `( ... )`, `[ ... ]` or `{ ... }` group starting at the current open token,
    /// normalized to token text. Newlines inside are allowed.
    fn group(&mut self) -> Result<String, ParseError> {
        let open = match self.peek() {
            Some(Tok::Punct(c @ ('(' | '[' | '{'))) => *c,
            _ => return self.err("expected `(`"),
        };
        let _ = open;
        let mut depth = 0usize;
        let mut out = String::new();
        loop {
            let Some(t) = self.next() else {
                return self.err("unclosed parenthesis or bracket");
            };
            match t.tok {
                Tok::Punct(c @ ('(' | '[' | '{')) => {
                    depth += 1;
                    out.push(c);
                }
                Tok::Punct(c @ (')' | ']' | '}')) => {
                    depth = depth.saturating_sub(1);
                    out.push(c);
                    if depth == 0 {
                        break;
                    }
                }
                Tok::Punct(c) => out.push(c),
                Tok::Ident(s) | Tok::Num(s) => {
                    if out.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                        out.push(' ');
                    }
                    out.push_str(&s);
                }
                Tok::Str(s) => {
                    out.push('"');
                    out.push_str(&s);
                    out.push('"');
                }
                Tok::Newline => {}
            }
        }
        // Strip the outer pair.
        let inner = out.get(1..out.len().saturating_sub(1)).unwrap_or_default();
        Ok(inner.to_string())
    }

    /// `@name[.name](args)?` after the `@` (or `@@`) has been consumed.
    fn attr_body(&mut self, line: u32) -> Result<Attr, ParseError> {
        let (mut name, _) = self.ident("attribute name")?;
        while self.eat('.') {
            let (part, _) = self.ident("attribute name")?;
            name.push('.');
            name.push_str(&part);
        }
        let args = if self.peek() == Some(&Tok::Punct('(')) {
            self.group()?
        } else {
            String::new()
        };
        Ok(Attr { name, args, line })
    }

    fn end_of_line(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            None | Some(Tok::Newline) | Some(Tok::Punct('}')) => Ok(()),
            _ => self.err("unexpected token at end of declaration"),
        }
    }

    fn block(&mut self, kind: BlockKind, line: u32) -> Result<Block, ParseError> {
        let (name, _) = self.ident("block name")?;
        self.skip_newlines();
        self.expect('{')?;
        let mut block = Block {
            kind,
            name,
            line,
            fields: Vec::new(),
            attrs: Vec::new(),
        };
        loop {
            self.skip_newlines();
            match self.peek() {
                None => return self.err(format!("unclosed block `{}`", block.name)),
                Some(Tok::Punct('}')) => {
                    self.pos += 1;
                    return Ok(block);
                }
                Some(Tok::Punct('@')) => {
                    let at_line = self.toks[self.pos].line;
                    self.pos += 1;
                    if !self.eat('@') {
                        return self.err("expected `@@` for a block attribute");
                    }
                    let a = self.attr_body(at_line)?;
                    block.attrs.push(a);
                    self.end_of_line()?;
                }
                Some(Tok::Ident(_)) => {
                    let (fname, fline) = self.ident("field name")?;
                    let field = match kind {
                        BlockKind::Datasource | BlockKind::Generator => {
                            self.expect('=')?;
                            let mut value = String::new();
                            while !matches!(
                                self.peek(),
                                None | Some(Tok::Newline | Tok::Punct('}'))
                            ) {
                                if matches!(self.peek(), Some(Tok::Punct('(' | '[' | '{'))) {
                                    let g = self.group()?;
                                    value.push('(');
                                    value.push_str(&g);
                                    value.push(')');
                                    continue;
                                }
                                match self.next().map(|t| t.tok) {
                                    Some(Tok::Ident(s) | Tok::Num(s)) => value.push_str(&s),
                                    Some(Tok::Str(s)) => {
                                        value.push('"');
                                        value.push_str(&s);
                                        value.push('"');
                                    }
                                    Some(Tok::Punct(c)) => value.push(c),
                                    _ => {}
                                }
                            }
                            Field {
                                name: fname,
                                ty: value,
                                optional: false,
                                list: false,
                                attrs: Vec::new(),
                                line: fline,
                            }
                        }
                        BlockKind::Enum => {
                            let attrs = self.field_attrs()?;
                            Field {
                                name: fname,
                                ty: String::new(),
                                optional: false,
                                list: false,
                                attrs,
                                line: fline,
                            }
                        }
                        BlockKind::Model | BlockKind::View | BlockKind::Type => {
                            let (mut ty, _) = self.ident("field type")?;
                            while self.eat('.') {
                                let (part, _) = self.ident("field type")?;
                                ty.push('.');
                                ty.push_str(&part);
                            }
                            if self.peek() == Some(&Tok::Punct('(')) {
                                let g = self.group()?;
                                ty = format!("{ty}({g})");
                            }
                            let mut list = false;
                            let mut optional = false;
                            if self.eat('[') {
                                self.expect(']')?;
                                list = true;
                            }
                            if self.eat('?') {
                                optional = true;
                            } else {
                                // `!` (required, legacy) is accepted and ignored.
                                let _ = self.eat('!');
                            }
                            let attrs = self.field_attrs()?;
                            Field {
                                name: fname,
                                ty,
                                optional,
                                list,
                                attrs,
                                line: fline,
                            }
                        }
                    };
                    block.fields.push(field);
                    self.end_of_line()?;
                }
                Some(_) => return self.err("expected a field, an attribute or `}`"),
            }
        }
    }

    fn field_attrs(&mut self) -> Result<Vec<Attr>, ParseError> {
        let mut attrs = Vec::new();
        while self.peek() == Some(&Tok::Punct('@')) {
            let line = self.toks[self.pos].line;
            self.pos += 1;
            if self.peek() == Some(&Tok::Punct('@')) {
                return self.err("block attribute `@@` after a field on the same line");
            }
            attrs.push(self.attr_body(line)?);
        }
        Ok(attrs)
    }

    fn schema(&mut self) -> Result<Schema, ParseError> {
        let mut schema = Schema::default();
        loop {
            self.skip_newlines();
            if self.peek().is_none() {
                return Ok(schema);
            }
            let (kw, line) =
                self.ident("`model`, `enum`, `datasource`, `generator`, `view` or `type`")?;
            let kind = match kw.as_str() {
                "model" => BlockKind::Model,
                "view" => BlockKind::View,
                "type" => BlockKind::Type,
                "enum" => BlockKind::Enum,
                "datasource" => BlockKind::Datasource,
                "generator" => BlockKind::Generator,
                other => {
                    self.pos -= 1;
                    return self.err(format!("unknown block keyword `{other}`"));
                }
            };
            schema.blocks.push(self.block(kind, line)?);
        }
    }
}

/// Parse a Prisma schema.
pub(crate) fn parse(src: &str) -> Result<Schema, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        last: (1, 1),
    };
    p.schema()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
// a comment
datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

generator client {
  provider = "prisma-client-js"
  previewFeatures = ["fullTextSearch"]
}

/// A user.
model User {
  id        Int      @id @default(autoincrement())
  email     String   @unique @map("email_address") @db.VarChar(255)
  name      String?
  tags      String[]
  posts     Post[]
  createdAt DateTime @default(now()) @map(name: "created_at")
  geom      Unsupported("circle")?

  @@index([name, createdAt(sort: Desc)], map: "user_name_idx")
  @@map("users")
}

enum Role {
  USER
  ADMIN @map("admin")
}
"#;

    #[test]
    fn parses_blocks_fields_and_attributes() {
        let s = parse(SAMPLE).unwrap();
        let kinds: Vec<_> = s.blocks.iter().map(|b| (b.kind, b.name.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (BlockKind::Datasource, "db"),
                (BlockKind::Generator, "client"),
                (BlockKind::Model, "User"),
                (BlockKind::Enum, "Role"),
            ]
        );
        let user = &s.blocks[2];
        assert_eq!(user.line, 14);
        let email = &user.fields[1];
        assert_eq!(email.name, "email");
        assert_eq!(email.line, 16);
        assert_eq!(
            email.attr("map").unwrap().first_string().as_deref(),
            Some("email_address")
        );
        assert_eq!(email.type_text(), "String @db.VarChar(255)");
        assert!(user.fields[2].optional);
        assert!(user.fields[3].list);
        assert_eq!(
            user.fields[5]
                .attr("map")
                .unwrap()
                .first_string()
                .as_deref(),
            Some("created_at")
        );
        assert_eq!(user.fields[6].ty, "Unsupported(\"circle\")");
        assert_eq!(
            user.attr("map").unwrap().first_string().as_deref(),
            Some("users")
        );
        let idx = user.attr("index").unwrap();
        assert_eq!(
            idx.args,
            "[name,createdAt(sort:Desc)],map:\"user_name_idx\""
        );
        assert_eq!(idx.line, 23);
        assert_eq!(s.blocks[0].fields[1].ty, "env(\"DATABASE_URL\")");
        assert_eq!(s.blocks[3].fields.len(), 2);
    }

    #[test]
    fn parses_real_world_features() {
        let src = r#"generator client {
  provider      = "prisma-client-js"
  binaryTargets = ["native", "debian-openssl-3.0.x"]
}

/// Doc comment
model Membership {
  id        String   @id @default(dbgenerated("gen_random_uuid()")) @db.Uuid
  price     Decimal  @db.Decimal(10, 2)
  tags      String[] @default([])
  meta      Json?    // trailing comment
  user      User     @relation("Owner", fields: [userId, orgId], references: [id, orgId], onDelete: Cascade)
  userId    String
  orgId     String
  legacy    Int      @ignore

  @@id([userId, orgId])
  @@unique([userId, orgId], name: "membership_user_org")
  @@schema("auth")
}
"#;
        let s = parse(src).unwrap();
        let m = &s.blocks[1];
        assert_eq!(m.fields.len(), 8);
        assert_eq!(
            m.fields[0].attr("default").unwrap().args,
            "dbgenerated(\"gen_random_uuid()\")"
        );
        assert_eq!(m.fields[1].type_text(), "Decimal @db.Decimal(10,2)");
        assert_eq!(m.fields[4].attr("relation").unwrap().line, 12);
        assert_eq!(
            m.attrs.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            vec!["id", "unique", "schema"]
        );
        assert_eq!(
            s.blocks[0].fields[1].ty,
            "(\"native\",\"debian-openssl-3.0.x\")"
        );
    }

    #[test]
    fn errors_carry_locations() {
        let e = parse("model User {\n  id Int @id\n  name String @map(\"x\"\n}\n").unwrap_err();
        assert!(e.message.contains("unclosed"), "{e}");
        let e = parse("model User {\n  id Int @id\n").unwrap_err();
        assert!(e.message.contains("unclosed block"), "{e}");
        let e = parse("modle User {\n}\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1), "{e}");
        assert!(e.message.contains("unknown block keyword"), "{e}");
        let e = parse("model User {\n  id Int # nope\n}\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 10), "{e}");
        let e = parse("model User {\n  name \"unterminated\n}\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_schema_like_text(s in "[a-zA-Z@(){}\\[\\]?\" \n.,:=/0-9-]{0,300}") {
            let _ = parse(&s);
        }
    }
}
