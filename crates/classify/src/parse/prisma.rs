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

//!
//! [`lexer`] turns the text into tokens, [`parser`] the tokens into the [`Schema`] tree below.

mod lexer;
mod parser;

use std::fmt;

use self::lexer::tokenize;
use self::parser::Parser;

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
