//! End to end, through real git repositories: every row of the default policy's
//! `database-schema` and `api-surface` approval matrices is reached from a real diff of a small
//! NestJS + Prisma service, and classification reports the row's facet, category and roles.
//!
//! The scenario table is keyed by facet code and checked for completeness against the policy
//! itself, so a row added to the policy without a scenario here fails the suite.

use changegate_classify::{Classification, classify_repo};
use changegate_policy::{Policy, RuleSource, load_default};
use changegate_testkit::GitRepo;

const SCHEMA: &str = r#"datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model User {
  id        Int       @id @default(autoincrement())
  email     String    @unique
  name      String?
  age       Int
  messages  Message[]
}

model Message {
  id        Int      @id @default(autoincrement())
  body      String
  createdAt DateTime @default(now())
  author    User     @relation(fields: [authorId], references: [id])
  authorId  Int
}

model Session {
  id    String @id
  token String
}
"#;

const MAIN_TS: &str = r#"import { NestFactory } from '@nestjs/core';
import { VersioningType } from '@nestjs/common';
import { AppModule } from './app.module';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  app.setGlobalPrefix('api');
  app.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' });
  await app.listen(3000);
}
bootstrap();
"#;

const CONTROLLER: &str = r#"import { Body, Controller, Get, Post } from '@nestjs/common';
import { Throttle } from '@nestjs/throttler';

@Controller('messages')
export class MessagesController {
  @Get()
  list() {
    return [];
  }

  @Throttle({ default: { limit: 10, ttl: 60000 } })
  @Post()
  create(@Body() dto: unknown) {
    return dto;
  }
}
"#;

const GATEWAY: &str = r#"import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';

@WebSocketGateway({ namespace: '/chat' })
export class ChatGateway {
  @SubscribeMessage('message:send')
  send() {}

  @SubscribeMessage('typing')
  typing() {}
}
"#;

const OPENAPI: &str = r#"openapi: 3.0.3
info:
  title: Chat
  version: 1.0.0
paths:
  /api/v1/messages:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [body]
              properties:
                body:
                  type: string
                roomId:
                  type: string
      responses:
        '201':
          description: created
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Message'
components:
  schemas:
    Message:
      type: object
      required: [id, body]
      properties:
        id:
          type: integer
        body:
          type: string
"#;

const INIT_SQL: &str =
    "-- CreateTable\nCREATE TABLE \"User\" (\"id\" SERIAL NOT NULL, \"email\" TEXT NOT NULL);\n";

fn base_files() -> Vec<(&'static str, String)> {
    vec![
        ("prisma/schema.prisma", SCHEMA.to_string()),
        (
            "prisma/migrations/20250101000000_init/migration.sql",
            INIT_SQL.to_string(),
        ),
        ("src/main.ts", MAIN_TS.to_string()),
        (
            "src/messages/messages.controller.ts",
            CONTROLLER.to_string(),
        ),
        ("src/chat/chat.gateway.ts", GATEWAY.to_string()),
        ("openapi.yaml", OPENAPI.to_string()),
    ]
}

const MIG: &str = "prisma/migrations/20250301000000_change/migration.sql";

/// One scenario: the files it writes on top of the base commit.
struct Scenario {
    facet: &'static str,
    edits: Vec<(&'static str, String)>,
    big_tables: &'static [&'static str],
}

fn edit(path: &'static str, from: &str, to: &str) -> (&'static str, String) {
    let base = base_files()
        .into_iter()
        .find(|(p, _)| *p == path)
        .expect("fixture file")
        .1;
    assert!(base.contains(from), "{path} does not contain {from:?}");
    (path, base.replacen(from, to, 1))
}

fn scenarios() -> Vec<Scenario> {
    let s = |facet, edits| Scenario {
        facet,
        edits,
        big_tables: &[],
    };
    vec![
        s(
            "schema-table-added",
            vec![
                edit("prisma/schema.prisma", "model Session {", "model Room {\n  id Int @id\n}\n\nmodel Session {"),
                (MIG, "-- CreateTable\nCREATE TABLE \"Room\" (\"id\" INTEGER NOT NULL, CONSTRAINT \"Room_pkey\" PRIMARY KEY (\"id\"));\n".into()),
            ],
        ),
        s(
            "schema-column-added-nullable",
            vec![
                edit("prisma/schema.prisma", "  age       Int\n", "  age       Int\n  bio       String?\n"),
                (MIG, "ALTER TABLE \"User\" ADD COLUMN \"bio\" TEXT;\n".into()),
            ],
        ),
        s(
            "schema-column-added-default",
            vec![
                edit("prisma/schema.prisma", "  age       Int\n", "  age       Int\n  active    Boolean @default(true)\n"),
                (MIG, "ALTER TABLE \"User\" ADD COLUMN \"active\" BOOLEAN NOT NULL DEFAULT true;\n".into()),
            ],
        ),
        s(
            "schema-index-added",
            vec![
                edit("prisma/schema.prisma", "  authorId  Int\n}", "  authorId  Int\n\n  @@index([authorId])\n}"),
                (MIG, "-- CreateIndex\nCREATE INDEX \"Message_authorId_idx\" ON \"Message\"(\"authorId\");\n".into()),
            ],
        ),
        s(
            "schema-column-renamed",
            vec![
                edit("prisma/schema.prisma", "  name      String?\n", "  fullName  String? @map(\"name\")\n"),
                (MIG, "ALTER TABLE \"User\" RENAME COLUMN \"name\" TO \"full_name\";\n".into()),
            ],
        ),
        s(
            "schema-column-dropped",
            vec![
                edit("prisma/schema.prisma", "  age       Int\n", ""),
                (
                    MIG,
                    "/*\n  Warnings:\n\n  - You are about to drop the column `age` on the `User` table. All the data in the column will be lost.\n\n*/\n-- AlterTable\nALTER TABLE \"User\" DROP COLUMN \"age\";\n".into(),
                ),
            ],
        ),
        s(
            "schema-table-dropped",
            vec![
                edit("prisma/schema.prisma", "model Session {\n  id    String @id\n  token String\n}\n", ""),
                (MIG, "-- DropTable\nDROP TABLE \"Session\";\n".into()),
            ],
        ),
        Scenario {
            facet: "schema-downtime",
            edits: vec![(MIG, "CREATE INDEX \"Message_createdAt_idx\" ON \"Message\"(\"createdAt\");\n".into())],
            big_tables: &["Message"],
        },
        s(
            "schema-column-added-required",
            vec![
                edit("prisma/schema.prisma", "  age       Int\n", "  age       Int\n  orgId     Int\n"),
                (MIG, "ALTER TABLE \"User\" ADD COLUMN \"orgId\" INTEGER NOT NULL;\n".into()),
            ],
        ),
        s(
            "schema-column-type-changed",
            vec![
                edit("prisma/schema.prisma", "  age       Int\n", "  age       BigInt\n"),
                (MIG, "ALTER TABLE \"User\" ALTER COLUMN \"age\" SET DATA TYPE BIGINT;\n".into()),
            ],
        ),
        s(
            "api-endpoint-added",
            vec![edit(
                "src/messages/messages.controller.ts",
                "  @Throttle(",
                "  @Get(':id')\n  one() {\n    return null;\n  }\n\n  @Throttle(",
            )],
        ),
        s(
            "api-event-added",
            vec![edit("src/chat/chat.gateway.ts", "  typing() {}\n", "  typing() {}\n\n  @SubscribeMessage('read')\n  read() {}\n")],
        ),
        s(
            "api-response-field-added",
            vec![edit("openapi.yaml", "        body:\n          type: string\n", "        body:\n          type: string\n        editedAt:\n          type: string\n")],
        ),
        s("api-field-relaxed", vec![edit("openapi.yaml", "      required: [id, body]\n", "      required: [id]\n")]),
        s(
            "api-field-required",
            vec![edit("openapi.yaml", "              required: [body]\n", "              required: [body, roomId]\n")],
        ),
        s(
            "api-endpoint-removed",
            vec![edit("src/messages/messages.controller.ts", "  @Get()\n  list() {\n    return [];\n  }\n\n", "")],
        ),
        s("api-event-removed", vec![edit("src/chat/chat.gateway.ts", "\n  @SubscribeMessage('typing')\n  typing() {}\n", "\n")]),
        s("api-field-type-changed", vec![edit("openapi.yaml", "        id:\n          type: integer\n", "        id:\n          type: string\n")]),
        s("api-rate-limit-changed", vec![edit("src/messages/messages.controller.ts", "limit: 10", "limit: 100")]),
    ]
}

/// Build the fixture repository, commit the scenario on top, and classify base..head.
fn classify_scenario(sc: &Scenario) -> (Classification, Policy) {
    let repo = GitRepo::new();
    for (p, t) in base_files() {
        repo.write(p, &t);
    }
    let base = repo.commit("base");
    for (p, t) in &sc.edits {
        repo.write(p, t);
    }
    repo.commit(sc.facet);
    let mut policy = load_default().policy;
    policy.classify.big_tables = sc.big_tables.iter().map(|t| (*t).to_string()).collect();
    let c = classify_repo(repo.path(), Some(&base), Some("HEAD"), &policy, None).expect("classify");
    (c, policy)
}

#[test]
fn every_schema_and_api_matrix_row_is_reached_from_a_real_diff() {
    let policy = load_default().policy;
    let table = scenarios();
    let mut checked = 0;
    for mkey in ["database-schema", "api-surface"] {
        let matrix = policy
            .matrices
            .get(mkey)
            .expect("matrix in the default policy");
        for (row_index, row) in matrix.rows.iter().enumerate() {
            for facet in &row.facets {
                let sc = table.iter().find(|s| s.facet == facet).unwrap_or_else(|| {
                    panic!(
                        "no scenario for {facet} ({mkey} row {row_index}: {})",
                        row.change
                    )
                });
                let (c, _) = classify_scenario(sc);
                let cf = c
                    .facets
                    .iter()
                    .find(|f| f.facet.kind == facet.as_str())
                    .unwrap_or_else(|| {
                        let got: Vec<_> = c
                            .facets
                            .iter()
                            .map(|f| (&f.facet.kind, &f.facet.details))
                            .collect();
                        panic!("{facet}: not detected; got {got:?}")
                    });
                assert_eq!(
                    cf.source,
                    Some(RuleSource::Matrix {
                        matrix: mkey.to_string(),
                        row: row_index
                    }),
                    "{facet}: mapped through the wrong policy element"
                );
                assert_eq!(cf.category, row.category, "{facet}: category");
                assert_eq!(cf.roles, row.roles, "{facet}: roles");
                assert!(
                    c.category.level >= row.category,
                    "{facet}: change category below the row's"
                );
                let required: Vec<&str> = c.roles.iter().map(|r| r.role.as_str()).collect();
                for role in &row.roles {
                    assert!(
                        required.contains(&role.as_str()),
                        "{facet}: role {role} not required; got {required:?}"
                    );
                }
                let unclassified: Vec<_> = c
                    .facets
                    .iter()
                    .filter(|f| f.facet.kind == "unclassified")
                    .map(|f| &f.facet.evidence[0].path)
                    .collect();
                assert!(
                    unclassified.is_empty(),
                    "{facet}: files left unexplained: {unclassified:?}"
                );
                let ev = &cf.facet.evidence[0];
                assert!(
                    ev.line.is_some(),
                    "{facet}: evidence without a line: {ev:?}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, table.len(), "scenarios without a matrix row");
}

#[test]
fn prisma_rename_without_map_is_high_risk_end_to_end() {
    let sc = Scenario {
        facet: "rename-without-map",
        edits: vec![
            edit("prisma/schema.prisma", "  age       Int\n", "  years     Int\n"),
            (
                MIG,
                "/*\n  Warnings:\n\n  - You are about to drop the column `age` on the `User` table. All the data in the column will be lost.\n  - Added the required column `years` to the `User` table without a default value. This is not possible if the table is not empty.\n\n*/\n-- AlterTable\nALTER TABLE \"User\" DROP COLUMN \"age\",\nADD COLUMN     \"years\" INTEGER NOT NULL;\n".into(),
            ),
        ],
        big_tables: &[],
    };
    let (c, _) = classify_scenario(&sc);
    assert_eq!(c.category.level, 3);
    let dropped: Vec<_> = c
        .facets
        .iter()
        .filter(|f| f.facet.kind == "schema-column-dropped")
        .collect();
    assert_eq!(
        dropped.len(),
        2,
        "one from the schema, one from the migration"
    );
    assert!(
        dropped.iter().all(|f| f.facet.details.contains("rename")),
        "{dropped:?}"
    );
    assert!(
        c.facets.iter().all(|f| f.facet.kind != "unclassified"),
        "both files are explained"
    );
}

#[test]
fn malformed_migration_fails_closed_end_to_end() {
    let sc = Scenario {
        facet: "broken",
        edits: vec![(MIG, "ALTER TABLE \"User\" ADD COLUMN;\n".into())],
        big_tables: &[],
    };
    let (c, _) = classify_scenario(&sc);
    let u = c
        .facets
        .iter()
        .find(|f| f.facet.kind == "unparseable")
        .expect("unparseable facet");
    assert_eq!(u.facet.evidence[0].line, Some(1));
    assert!(c.category.level >= 2);
}

#[test]
fn nest_routes_carry_the_global_prefix_and_version_end_to_end() {
    let sc = scenarios()
        .into_iter()
        .find(|s| s.facet == "api-endpoint-added")
        .expect("scenario");
    let (c, _) = classify_scenario(&sc);
    let added: Vec<_> = c
        .facets
        .iter()
        .filter(|f| f.facet.kind == "api-endpoint-added")
        .collect();
    assert_eq!(added.len(), 1);
    assert_eq!(
        added[0].facet.details,
        "GET /api/v1/messages/:id (MessagesController.one)"
    );
    let ev = &added[0].facet.evidence[0];
    assert_eq!(
        (ev.path.as_str(), ev.line),
        ("src/messages/messages.controller.ts", Some(11))
    );
}

#[test]
fn malformed_schema_openapi_and_typescript_fail_closed_end_to_end() {
    let cases: Vec<(&str, (&'static str, String))> = vec![
        (
            "prisma",
            edit(
                "prisma/schema.prisma",
                "model Session {",
                "model Session {{",
            ),
        ),
        ("openapi", edit("openapi.yaml", "paths:\n", "paths: [\n")),
        (
            "nestjs",
            edit("src/chat/chat.gateway.ts", "  send() {}\n", "  send( {}\n"),
        ),
    ];
    for (name, e) in cases {
        let path = e.0;
        let sc = Scenario {
            facet: "broken",
            edits: vec![e],
            big_tables: &[],
        };
        let (c, _) = classify_scenario(&sc);
        let u = c
            .facets
            .iter()
            .find(|f| f.facet.kind == "unparseable" && f.facet.evidence[0].path == path)
            .unwrap_or_else(|| panic!("{name}: no unparseable facet: {:?}", c.facets));
        assert!(u.facet.evidence[0].line.is_some(), "{name}: {u:?}");
        assert!(
            c.category.level >= 2,
            "{name}: category {}",
            c.category.level
        );
    }
}
