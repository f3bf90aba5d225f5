//! Real-diff tests for the families the real-history corpus showed misgraded (issue 19): each
//! builds a git repository shaped like a NestJS + Prisma service and classifies a real commit.

mod fixture;

use changegate_classify::{Classification, Coverage, Options, classify_repo_with};
use changegate_policy::{DevUpdates, Policy, Transitive};
use fixture::*;

fn classify_policy(r: &Repo, p: &Policy, msg: &str) -> Classification {
    r.commit(msg);
    classify_repo_with(r.path(), None, None, p, None, &Options::default()).expect("classifies")
}

fn facet<'a>(c: &'a Classification, code: &str) -> &'a changegate_classify::ClassifiedFacet {
    c.facets
        .iter()
        .find(|f| f.facet.kind.as_str() == code)
        .unwrap_or_else(|| panic!("no {code} in {:?}", codes(c)))
}

fn all_text(c: &Classification) -> String {
    serde_json::to_string(c).unwrap()
}

// ---- transitive lockfile changes ----------------------------------------------------------------

/// The lockfile of `@nestjs/core` 10.3.0 → 10.3.2 also moves its transitive `path-to-regexp` across
/// a major and adds a helper, as `npm install @nestjs/core@10.3.2` does.
fn nest_patch_with_transitive_major(r: &Repo) {
    let mut base: Vec<(&str, &str, bool, &str)> = BASE_LOCK.to_vec();
    base.push(("path-to-regexp", "0.1.7", false, "MIT"));
    base.push(("tslib", "2.6.2", false, "0BSD"));
    r.write("package-lock.json", &npm_lock(&base));
    r.commit("lock: transitive packages");
    r.land("lock: transitive packages");
    let mut head: Vec<(&str, &str, bool, &str)> = base
        .iter()
        .map(|p| match p.0 {
            "@nestjs/core" => ("@nestjs/core", "10.3.2", false, "MIT"),
            "path-to-regexp" => ("path-to-regexp", "3.2.0", false, "MIT"),
            _ => *p,
        })
        .collect();
    head.push(("iterare", "1.2.1", false, "ISC"));
    let deps: Vec<(&str, &str)> = DEPS
        .iter()
        .map(|d| {
            if d.0 == "@nestjs/core" {
                ("@nestjs/core", "^10.3.2")
            } else {
                *d
            }
        })
        .collect();
    r.write("package.json", &package_json(&deps, DEV_DEPS));
    r.write("package-lock.json", &npm_lock(&head));
}

#[test]
fn transitive_changes_are_attributed_to_the_direct_patch() {
    let r = Repo::service();
    nest_patch_with_transitive_major(&r);
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-patch"]);
    assert_eq!(c.category.level, 1);
    let f = facet(&c, "dep-patch");
    assert!(
        f.facet.details.contains("@nestjs/core 10.3.0 → 10.3.2"),
        "{}",
        f.facet.details
    );
    assert!(
        f.facet.details.contains("path-to-regexp 0.1.7 → 3.2.0"),
        "{}",
        f.facet.details
    );
    assert!(
        f.facet
            .evidence
            .iter()
            .any(|e| e.path == "package-lock.json"
                && e.snippet.as_deref() == Some("path-to-regexp 0.1.7 → 3.2.0")),
        "the transitive move is shown as evidence"
    );
}

#[test]
fn strict_transitive_reading_grades_each_package() {
    let r = Repo::service();
    nest_patch_with_transitive_major(&r);
    let mut p = policy();
    p.classify.transitive = Transitive::Strict;
    let c = classify_policy(&r, &p, "chore(deps): update nest monorepo");
    assert_eq!(codes(&c), vec!["dep-added-prod", "dep-major", "dep-patch"]);
    assert_eq!(c.category.level, 3);
}

#[test]
fn lockfile_only_change_is_graded_by_its_transitive_changes() {
    let r = Repo::service();
    let mut base: Vec<(&str, &str, bool, &str)> = BASE_LOCK.to_vec();
    base.push(("sha.js", "2.4.11", false, "(MIT AND BSD-3-Clause)"));
    r.write("package-lock.json", &npm_lock(&base));
    r.commit("lock");
    r.land("lock");
    let head: Vec<(&str, &str, bool, &str)> = base
        .iter()
        .map(|p| {
            if p.0 == "sha.js" {
                ("sha.js", "2.4.12", false, p.3)
            } else {
                *p
            }
        })
        .collect();
    r.write("package-lock.json", &npm_lock(&head));
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-patch"]);
    assert!(
        facet(&c, "dep-patch")
            .facet
            .details
            .contains("sha.js 2.4.11 → 2.4.12")
    );
}

#[test]
fn a_dev_bump_never_hides_a_production_transitive_change() {
    let r = Repo::service();
    let mut base: Vec<(&str, &str, bool, &str)> = BASE_LOCK.to_vec();
    base.push(("semver", "7.5.4", false, "ISC"));
    r.write("package-lock.json", &npm_lock(&base));
    r.commit("lock");
    r.land("lock");
    // jest 29.7.0 → 29.7.1 (dev) also dedupes the production `semver` to 7.6.0.
    let head: Vec<(&str, &str, bool, &str)> = base
        .iter()
        .map(|p| match p.0 {
            "jest" => ("jest", "29.7.1", true, "MIT"),
            "semver" => ("semver", "7.6.0", false, "ISC"),
            _ => *p,
        })
        .collect();
    let dev: Vec<(&str, &str)> = DEV_DEPS
        .iter()
        .map(|d| {
            if d.0 == "jest" {
                ("jest", "^29.7.1")
            } else {
                *d
            }
        })
        .collect();
    r.write("package.json", &package_json(DEPS, &dev));
    r.write("package-lock.json", &npm_lock(&head));
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-dev-changed", "dep-minor"]);
    assert_eq!(c.category.level, 2);
    assert!(
        facet(&c, "dep-minor")
            .facet
            .details
            .contains("semver 7.5.4 → 7.6.0")
    );
}

// ---- manifest-only range bumps ------------------------------------------------------------------

#[test]
fn manifest_range_bump_without_lockfile_is_graded_from_the_ranges() {
    let r = Repo::service();
    let deps: Vec<(&str, &str)> = DEPS
        .iter()
        .map(|d| {
            if d.0 == "express" {
                ("express", "^4.19.3")
            } else {
                *d
            }
        })
        .collect();
    r.write("package.json", &package_json(&deps, DEV_DEPS));
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-patch"]);
    assert_eq!(c.category.level, 1);
    assert!(
        facet(&c, "dep-patch")
            .facet
            .details
            .contains("^4.19.2 → ^4.19.3")
    );

    let r = Repo::service();
    let deps: Vec<(&str, &str)> = DEPS
        .iter()
        .map(|d| {
            if d.0 == "express" {
                ("express", "^4.21.0")
            } else {
                *d
            }
        })
        .collect();
    r.write("package.json", &package_json(&deps, DEV_DEPS));
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-minor"]);
    assert_eq!(roles(&c), vec!["backend-lead"]);
}

// ---- dev-only dependencies ----------------------------------------------------------------------

fn jest_major_and(r: &Repo, prod_minor: bool) {
    let head: Vec<(&str, &str, bool, &str)> = BASE_LOCK
        .iter()
        .map(|p| match p.0 {
            "jest" => ("jest", "30.0.0", true, "MIT"),
            "rxjs" if prod_minor => ("rxjs", "7.9.0", false, "Apache-2.0"),
            _ => *p,
        })
        .collect();
    let dev: Vec<(&str, &str)> = DEV_DEPS
        .iter()
        .map(|d| {
            if d.0 == "jest" {
                ("jest", "^30.0.0")
            } else {
                *d
            }
        })
        .collect();
    let deps: Vec<(&str, &str)> = DEPS
        .iter()
        .map(|d| {
            if d.0 == "rxjs" && prod_minor {
                ("rxjs", "^7.9.0")
            } else {
                *d
            }
        })
        .collect();
    r.write("package.json", &package_json(&deps, &dev));
    r.write("package-lock.json", &npm_lock(&head));
}

#[test]
fn dev_only_major_is_policy_data() {
    let r = Repo::service();
    jest_major_and(&r, false);
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-dev-changed"]);
    assert_eq!(c.category.level, 1);

    let r = Repo::service();
    jest_major_and(&r, false);
    let mut p = policy();
    p.classify.dev_updates = DevUpdates::Graded;
    let c = classify_policy(&r, &p, "chore(deps): update jest to v30");
    assert_eq!(codes(&c), vec!["dep-major"]);
    assert_eq!(c.category.level, 3);
    assert!(facet(&c, "dep-major").facet.details.contains("dev (graded"));
}

#[test]
fn dev_only_classification_never_hides_a_production_change_in_the_same_manifest() {
    let r = Repo::service();
    jest_major_and(&r, true);
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-dev-changed", "dep-minor"]);
    assert_eq!(c.category.level, 2);
    assert_eq!(roles(&c), vec!["backend-lead"]);
}

// ---- .env files ---------------------------------------------------------------------------------

#[test]
fn env_files_added_edited_deleted_without_values() {
    let r = Repo::service();
    r.write(
        ".env",
        "DATABASE_URL=postgresql://chat:hunter2-prod@db.internal:5432/chat\nJWT_SECRET=\"9f8e7d-real-secret\"\nPORT=3000\n",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["env-added"]);
    assert_eq!(c.category.level, 2);
    assert_eq!(c.facets.len(), 3, "one facet a variable");
    let shown = all_text(&c);
    assert!(
        !shown.contains("hunter2") && !shown.contains("real-secret"),
        "{shown}"
    );
    r.land("env");

    r.edit(".env", "PORT=3000", "PORT=8080");
    r.write(".env.development", "MAIL_HOST=localhost\n");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["env-added", "env-changed"]);
    assert!(!all_text(&c).contains("8080"));
    r.land("env 2");

    r.remove(".env");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["env-removed"]);
    assert_eq!(c.category.level, 3);
    assert_eq!(
        c.facets.len(),
        3,
        "a deleted .env removes every variable it held"
    );
    assert!(!all_text(&c).contains("hunter2"));
}

// ---- log levels in code -------------------------------------------------------------------------

const MESSAGES_SERVICE: &str = "import { Injectable, Logger } from '@nestjs/common';
import { PrismaService } from '../prisma/prisma.service';

@Injectable()
export class MessagesService {
  private readonly logger = new Logger(MessagesService.name);

  constructor(private readonly prisma: PrismaService) {}

  async send(roomId: string, body: string) {
    this.logger.log(`sending to ${roomId}`);
    try {
      return await this.prisma.message.create({ data: { roomId, body } });
    } catch (e) {
      this.logger.error(`send failed for ${roomId}`, e instanceof Error ? e.stack : undefined);
      throw e;
    }
  }
}
";

#[test]
fn log_call_level_changes_are_log_level_adjustments() {
    let r = Repo::service();
    r.write("src/messages/messages.service.ts", MESSAGES_SERVICE);
    r.write(
        "src/logger.ts",
        "import pino from 'pino';\n\nexport const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });\n",
    );
    r.land("messages");
    r.edit(
        "src/messages/messages.service.ts",
        "this.logger.log(`sending",
        "this.logger.debug(`sending",
    );
    r.edit(
        "src/messages/messages.service.ts",
        "this.logger.error(`send failed",
        "this.logger.warn(`send failed",
    );
    r.edit("src/logger.ts", "?? 'info'", "?? 'warn'");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["log-level"]);
    assert_eq!(c.category.level, 1);

    // Any other edit in the same file is a code change.
    r.edit(
        "src/messages/messages.service.ts",
        "this.logger.debug(`sending",
        "this.logger.log(`sending",
    );
    r.edit(
        "src/messages/messages.service.ts",
        "throw e;",
        "return null;",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["code-changed", "log-level"]);
    assert_eq!(c.category.level, 2);
    assert_eq!(
        facet(&c, "code-changed").facet.evidence[0].path,
        "src/messages/messages.service.ts"
    );
}

// ---- NestJS request and response types from TypeScript ------------------------------------------

const CREATE_MESSAGE_DTO: &str =
    "import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';

export class CreateMessageDto {
  @ApiProperty()
  @IsString()
  @MaxLength(4000)
  body: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsUUID()
  replyTo?: string;
}
";

const MESSAGE_RESPONSE: &str = "export interface MessageResponse {
  id: string;
  body: string;
  authorId: number;
  createdAt: Date;
  editedAt?: Date;
}
";

const MESSAGES_CONTROLLER: &str = "import { Body, Controller, Get, Param, Post } from '@nestjs/common';
import { CreateMessageDto } from './dto/create-message.dto';
import { MessageResponse } from './message.response';
import { MessagesService } from './messages.service';

@Controller('rooms/:roomId/messages')
export class MessagesController {
  constructor(private readonly messages: MessagesService) {}

  @Get()
  async list(@Param('roomId') roomId: string): Promise<MessageResponse[]> {
    return this.messages.list(roomId);
  }

  @Post()
  async create(@Param('roomId') roomId: string, @Body() dto: CreateMessageDto): Promise<MessageResponse> {
    return this.messages.send(roomId, dto.body);
  }
}
";

fn messages_api() -> Repo {
    let r = Repo::service();
    r.write("src/messages/dto/create-message.dto.ts", CREATE_MESSAGE_DTO);
    r.write("src/messages/message.response.ts", MESSAGE_RESPONSE);
    r.write("src/messages/messages.controller.ts", MESSAGES_CONTROLLER);
    r.land("messages api");
    r
}

#[test]
fn request_dto_optional_to_required_needs_the_frontend_lead() {
    let r = messages_api();
    r.edit(
        "src/messages/dto/create-message.dto.ts",
        "  @IsOptional()\n",
        "",
    );
    r.edit(
        "src/messages/dto/create-message.dto.ts",
        "replyTo?: string",
        "replyTo: string",
    );
    let c = r.classify();
    assert!(codes(&c).contains(&"api-field-required"), "{:?}", codes(&c));
    assert_eq!(c.category.level, 3);
    assert!(roles(&c).contains(&"frontend-lead"));
    let f = facet(&c, "api-field-required");
    assert!(
        f.facet
            .details
            .contains("CreateMessageDto: request field replyTo optional → required")
    );
}

#[test]
fn response_field_removed_or_retyped_is_a_response_schema_change() {
    let r = messages_api();
    r.edit(
        "src/messages/message.response.ts",
        "  editedAt?: Date;\n",
        "",
    );
    r.edit(
        "src/messages/message.response.ts",
        "authorId: number",
        "authorId: string",
    );
    let c = r.classify();
    let details: Vec<&str> = c
        .facets
        .iter()
        .filter(|f| f.facet.kind.as_str() == "api-field-type-changed")
        .map(|f| f.facet.details.as_str())
        .collect();
    assert!(
        details.contains(&"MessageResponse: response field authorId type number → string"),
        "{details:?}"
    );
    assert!(
        details.contains(&"MessageResponse: response field editedAt removed"),
        "{details:?}"
    );
    assert_eq!(c.category.level, 3);
    assert!(roles(&c).contains(&"tech-architect") && roles(&c).contains(&"frontend-lead"));
}

#[test]
fn handler_return_type_change_and_new_optional_field() {
    let r = messages_api();
    r.edit(
        "src/messages/messages.controller.ts",
        "Promise<MessageResponse[]>",
        "Promise<{ items: MessageResponse[]; next?: string }>",
    );
    let c = r.classify();
    assert!(
        facet(&c, "api-field-type-changed")
            .facet
            .details
            .contains("MessagesController.list: response type MessageResponse[] →")
    );

    let r = messages_api();
    r.edit(
        "src/messages/message.response.ts",
        "  editedAt?: Date;\n",
        "  editedAt?: Date;\n  pinned?: boolean;\n",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["api-response-field-added", "code-changed"]);
    assert_eq!(c.category.level, 2);
}

// ---- Prisma ------------------------------------------------------------------------------------

const CHAT_SCHEMA: &str = "datasource db {
  provider = \"postgresql\"
  url      = env(\"DATABASE_URL\")
}

enum Role {
  USER
  MODERATOR
  ADMIN
}

model User {
  id       Int       @id @default(autoincrement())
  email    String    @unique
  name     String?   @map(\"display_name\")
  role     Role      @default(USER)
  messages Message[]

  @@map(\"users\")
}

model Message {
  id       Int    @id @default(autoincrement())
  body     String
  author   User   @relation(fields: [authorId], references: [id])
  authorId Int    @map(\"author_id\")

  @@map(\"messages\")
}
";

fn chat_schema() -> Repo {
    let r = Repo::service();
    r.write("prisma/schema.prisma", CHAT_SCHEMA);
    r.land("chat schema");
    r
}

#[test]
fn prisma_field_renamed_keeping_its_column_changes_the_response_shape() {
    let r = chat_schema();
    r.edit(
        "prisma/schema.prisma",
        "  name     String?   @map(\"display_name\")",
        "  displayName String? @map(\"display_name\")",
    );
    let c = r.classify();
    assert_eq!(
        codes(&c),
        vec!["api-field-type-changed", "schema-column-renamed"]
    );
    assert!(
        facet(&c, "api-field-type-changed")
            .facet
            .details
            .contains("User.name renamed to displayName")
    );
    assert_eq!(c.category.level, 3);
}

#[test]
fn prisma_relation_rename_is_a_client_api_change() {
    let r = chat_schema();
    r.edit(
        "prisma/schema.prisma",
        "  author   User   @relation(fields: [authorId], references: [id])",
        "  sender   User   @relation(fields: [authorId], references: [id])",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["api-field-type-changed"]);
    assert!(
        facet(&c, "api-field-type-changed")
            .facet
            .details
            .contains("Message.author (User) renamed to sender")
    );
}

#[test]
fn prisma_enum_value_removal_is_breaking() {
    let r = chat_schema();
    r.edit("prisma/schema.prisma", "  MODERATOR\n", "");
    let c = r.classify();
    assert_eq!(codes(&c), vec!["schema-column-type-changed"]);
    assert_eq!(c.category.level, 3);
    assert!(
        facet(&c, "schema-column-type-changed")
            .facet
            .details
            .contains("enum Role: value(s) MODERATOR removed")
    );
    // Adding one stays additive.
    let r = chat_schema();
    r.edit("prisma/schema.prisma", "  ADMIN\n", "  ADMIN\n  GUEST\n");
    let c = r.classify();
    assert!(!codes(&c).contains(&"schema-column-type-changed"));
}

// ---- CI and bot configuration -------------------------------------------------------------------

const CI_WORKFLOW: &str = "name: CI
on:
  pull_request:
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
      - run: npm ci
      - run: npm test
";

const DEPLOY_WORKFLOW: &str = "name: Release
on:
  push:
    branches: [main]
jobs:
  release:
    runs-on: ubuntu-latest
    environment: production
    steps:
      - uses: actions/checkout@v4
      - run: docker build -t registry.example/chat-backend:${{ github.sha }} .
      - run: kubectl set image deployment/chat-backend api=registry.example/chat-backend:${{ github.sha }}
";

#[test]
fn ci_and_bot_configuration_rules() {
    let r = Repo::service();
    r.write(".github/workflows/ci.yml", CI_WORKFLOW);
    r.write(".github/workflows/release.yml", DEPLOY_WORKFLOW);
    r.write(
        ".github/dependabot.yml",
        "version: 2\nupdates:\n  - package-ecosystem: npm\n    directory: /\n    schedule:\n      interval: weekly\n",
    );
    r.land("ci");

    r.edit(
        ".github/workflows/ci.yml",
        "actions/checkout@v4",
        "actions/checkout@v5",
    );
    r.edit(
        ".github/dependabot.yml",
        "      interval: weekly\n",
        "      interval: weekly\n    ignore:\n      - dependency-name: \"@types/node\"\n        update-types: [\"version-update:semver-major\"]\n",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["ci-config-changed"]);
    assert_eq!(c.category.level, 1);
    r.land("ci 2");

    r.edit(
        ".github/workflows/release.yml",
        "environment: production",
        "environment: production\n    concurrency: release",
    );
    let c = r.classify();
    assert_eq!(codes(&c), vec!["deploy-config-changed"]);
    assert_eq!(c.category.level, 2);
    assert_eq!(roles(&c), vec!["backend-lead", "sre-lead"]);
}

// ---- bug fixes with comprehensive test coverage --------------------------------------------------

const LCOV: &str = "SF:/ci/src/retry.ts\nDA:1,5\nDA:2,5\nDA:3,1\nDA:5,4\nend_of_record\n";

fn covered_fix(msg: &str, labels: &[&str]) -> Classification {
    let r = Repo::service();
    r.edit("src/retry.ts", "attempt <= 0", "attempt < 1");
    r.commit(msg);
    let cov = Coverage::parse(LCOV).unwrap();
    let opts = Options {
        pr_labels: labels.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    };
    classify_repo_with(r.path(), None, None, &policy(), Some(&cov), &opts).unwrap()
}

#[test]
fn covered_change_is_a_bug_fix_only_when_marked_as_one() {
    let c = covered_fix("fix(retry): no delay before the first attempt", &[]);
    assert_eq!(codes(&c), vec!["bugfix-covered"]);
    assert_eq!(c.category.level, 1);
    assert!(
        facet(&c, "bugfix-covered")
            .facet
            .details
            .contains("commit type `fix`")
    );

    let c = covered_fix("feat(retry): first attempt without delay", &[]);
    assert_eq!(codes(&c), vec!["code-changed"]);
    assert!(
        facet(&c, "code-changed")
            .facet
            .details
            .contains("not marked as a fix")
    );
    assert_eq!(c.category.level, 2);

    let c = covered_fix("Retry: first attempt without delay", &["bug"]);
    assert_eq!(codes(&c), vec!["bugfix-covered"]);
    assert!(
        facet(&c, "bugfix-covered")
            .facet
            .details
            .contains("label `bug`")
    );
}

// ---- protocol changes in code --------------------------------------------------------------------

const MAIN_TS: &str = "import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { AppModule } from './app.module';

class ChatIoAdapter extends IoAdapter {
  createIOServer(port: number, options?: any) {
    return super.createIOServer(port, { ...options, transports: ['websocket', 'polling'] });
  }
}

async function bootstrap() {
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter());
  app.useWebSocketAdapter(new ChatIoAdapter(app));
  await app.listen(3000, '0.0.0.0');
}
bootstrap();
";

#[test]
fn http2_and_socket_io_options_in_code_are_protocol_changes() {
    let r = Repo::service();
    r.write("src/main.ts", MAIN_TS);
    r.land("bootstrap");
    r.edit(
        "src/main.ts",
        "new FastifyAdapter()",
        "new FastifyAdapter({ http2: true, https: { allowHTTP1: true } })",
    );
    let c = r.classify();
    assert!(codes(&c).contains(&"protocol-changed"), "{:?}", codes(&c));
    assert!(
        facet(&c, "protocol-changed")
            .facet
            .details
            .contains("http2: (default) → true")
    );
    assert_eq!(c.category.level, 3);

    let r = Repo::service();
    r.write("src/main.ts", MAIN_TS);
    r.land("bootstrap");
    r.edit(
        "src/main.ts",
        "transports: ['websocket', 'polling']",
        "transports: ['websocket'], allowEIO3: true",
    );
    let c = r.classify();
    let details: Vec<&str> = c
        .facets
        .iter()
        .filter(|f| f.facet.kind.as_str() == "protocol-changed")
        .map(|f| f.facet.details.as_str())
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert_eq!(c.category.level, 3);
}

#[test]
fn a_deduplicated_copy_is_graded_against_the_copy_that_stays() {
    // `npm dedupe`: the nested semver 7.6.0 under jest goes; the top-level 7.6.2 stays, so
    // what jest's dependants now get is 7.6.2: a patch move, not a production package removed.
    let r = Repo::service();
    let mut base: Vec<(&str, &str, bool, &str)> = BASE_LOCK.to_vec();
    base.push(("semver", "7.6.2", false, "ISC"));
    base.push(("jest/node_modules/semver", "7.6.0", false, "ISC"));
    r.write("package-lock.json", &npm_lock(&base));
    r.land("lock");
    let head: Vec<(&str, &str, bool, &str)> = base
        .iter()
        .filter(|p| p.0 != "jest/node_modules/semver")
        .copied()
        .collect();
    r.write("package-lock.json", &npm_lock(&head));
    let c = r.classify();
    assert_eq!(codes(&c), vec!["dep-patch"]);
    assert!(
        facet(&c, "dep-patch")
            .facet
            .details
            .contains("semver 7.6.0 → 7.6.2 (deduplicated)")
    );
}
