//! Classification throughput on 10,000-file changes of several mixes, against `git diff
//! --name-status` and `git diff --numstat` on the same two commits, measured in the same run.
//!
//! Mixes (`CHANGEGATE_BENCH_MIX=monorepo|services|all`, default all):
//! - `monorepo`: a 3,000-package `package-lock.json` update (every package bumped), 300 new Prisma
//!   migrations, TypeScript sources (half comment-only edits, half code edits), Markdown docs,
//!   Kubernetes manifests and assorted unknown files;
//! - `services` (issue 19): about 6,000 TypeScript services (NestJS controllers, DTOs and
//!   services, a third with log-level-only edits), 2,000 Markdown docs, 1,000 YAML manifests,
//!   500 JSON configs, 500 SQL migrations, a package.json and its lockfile.
//!
//! Each mix runs in two pack layouts (`CHANGEGATE_BENCH_LAYOUT=fast-import|repacked|all`): as
//! `git fast-import` wrote the objects, and after `git repack -adf` (as a clone receives them).
//!
//! Run: `cargo bench -p changegate-classify --bench classify`. Goal (issue 19): classify ≤ 1.0×
//! `git diff --numstat`, which reads and line-diffs every changed blob; both ratios are printed.

use std::path::Path;
use std::time::{Duration, Instant};

use changegate_testkit::git::{BulkCommit, command, fast_import};

/// The allocator of the `changegate` binary, so the bench measures what the binary runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PACKAGES: usize = 3000;
const MIGRATIONS: usize = 300;
const TS: usize = 6000;
const DOCS: usize = 2000;
const K8S: usize = 200;
const RUNS: usize = 5;

fn lock(minor: u32) -> String {
    let mut s = String::from(
        "{\n  \"name\": \"mono\",\n  \"lockfileVersion\": 3,\n  \"packages\": {\n    \"\": { \"name\": \"mono\" }",
    );
    for i in 0..PACKAGES {
        s.push_str(&format!(
            ",\n    \"node_modules/pkg-{i}\": {{\n      \"version\": \"1.{minor}.{}\",\n      \"resolved\": \"https://registry.example/pkg-{i}.tgz\",\n      \"license\": \"MIT\"{}\n    }}",
            i % 7,
            if i % 3 == 0 { ",\n      \"dev\": true" } else { "" }
        ));
    }
    s.push_str("\n  }\n}\n");
    s
}

fn package_json(minor: u32) -> String {
    let deps: Vec<String> = (0..50)
        .map(|i| format!("    \"pkg-{}\": \"^1.{minor}.0\"", i * 2 + 1))
        .collect();
    format!(
        "{{\n  \"name\": \"mono\",\n  \"dependencies\": {{\n{}\n  }}\n}}\n",
        deps.join(",\n")
    )
}

fn ts(i: usize, head: bool) -> String {
    let comment = if head && i.is_multiple_of(2) {
        "// reviewed\n"
    } else {
        ""
    };
    let body = if head && i % 2 == 1 {
        "a + b + 1"
    } else {
        "a + b"
    };
    format!(
        "import {{ helper }} from './helper';\n\n/** Module {i}. */\nexport function f{i}(a: number, b: number): number {{\n  {comment}return helper({body});\n}}\n\nexport const NAME_{i} = 'module-{i}';\n"
    )
}

fn k8s(i: usize, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i}\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example/svc-{i}:1.0.0\n          resources:\n            limits: {{cpu: 500m, memory: 512Mi}}\n"
    )
}

fn files(head: bool) -> Vec<(String, String)> {
    let v = u32::from(head);
    let mut out = vec![
        ("package.json".to_string(), package_json(2 + v)),
        ("package-lock.json".to_string(), lock(2 + v)),
    ];
    for i in 0..TS {
        out.push((format!("apps/a{}/src/m{i}.ts", i % 40), ts(i, head)));
    }
    for i in 0..DOCS {
        out.push((
            format!("docs/d{}/page{i}.md", i % 20),
            format!("# Page {i}\n\nRevision {v}.\n"),
        ));
    }
    for i in 0..K8S {
        out.push((format!("deploy/k8s/svc-{i}.yaml"), k8s(i, 2 + v)));
    }
    let misc = 10_000 - 2 - TS - DOCS - K8S - MIGRATIONS;
    for i in 0..misc {
        out.push((
            format!("assets/data{}/blob{i}.dat", i % 10),
            format!("data {i} rev {v}\n"),
        ));
    }
    if head {
        for i in 0..MIGRATIONS {
            out.push((
                format!("prisma/migrations/2026010100{i:04}_m{i}/migration.sql"),
                format!(
                    "-- CreateTable\nCREATE TABLE \"t{i}\" (\n  \"id\" SERIAL NOT NULL,\n  \"name\" TEXT,\n  CONSTRAINT \"t{i}_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- AlterTable\nALTER TABLE \"t{i}\" ADD COLUMN \"note\" TEXT;\n"
                ),
            ));
        }
    }
    out
}

/// A mix: the files of base (`false`) or head (`true`).
type Files = fn(bool) -> Vec<(String, String)>;

/// The issue-19 mix: NestJS services, docs, YAML, JSON, SQL migrations, a manifest and lockfile.
fn services_files(head: bool) -> Vec<(String, String)> {
    let v = u32::from(head);
    let mut out = vec![
        ("package.json".to_string(), package_json(2 + v)),
        ("package-lock.json".to_string(), lock(2 + v)),
    ];
    for i in 0..5998 {
        let (path, text) = match i % 3 {
            0 => (
                format!("apps/s{}/src/rooms{i}/rooms{i}.controller.ts", i % 60),
                format!(
                    "import {{ Body, Controller, Get, Post }} from '@nestjs/common';\nimport {{ CreateRoom{i}Dto }} from './dto';\n\n@Controller('rooms{i}')\nexport class Rooms{i}Controller {{\n  @Get()\n  list(): string[] {{\n    return [{}];\n  }}\n\n  @Post()\n  create(@Body() dto: CreateRoom{i}Dto) {{\n    return dto;\n  }}\n}}\n",
                    if head {
                        "'general', 'random'"
                    } else {
                        "'general'"
                    }
                ),
            ),
            1 => (
                format!("apps/s{}/src/rooms{i}/dto/create-room{i}.dto.ts", i % 60),
                format!(
                    "import {{ IsOptional, IsString }} from 'class-validator';\n\nexport class CreateRoom{i}Dto {{\n  @IsString()\n  name: string;\n\n  @IsOptional()\n  @IsString()\n  topic?: string;\n{}}}\n",
                    if head {
                        "\n  // max 200 characters\n"
                    } else {
                        ""
                    }
                ),
            ),
            _ => (
                format!("apps/s{}/src/rooms{i}/rooms{i}.service.ts", i % 60),
                format!(
                    "import {{ Injectable, Logger }} from '@nestjs/common';\n\n@Injectable()\nexport class Rooms{i}Service {{\n  private readonly logger = new Logger('rooms{i}');\n\n  find(id: string) {{\n    this.logger.{}(`find ${{id}}`);\n    return {{ id }};\n  }}\n}}\n",
                    if head { "debug" } else { "log" }
                ),
            ),
        };
        out.push((path, text));
    }
    for i in 0..2000 {
        out.push((
            format!("docs/d{}/page{i}.md", i % 20),
            format!("# Page {i}\n\nRevision {v}.\n"),
        ));
    }
    for i in 0..1000 {
        out.push((format!("deploy/k8s/svc-{i}.yaml"), k8s(i, 2 + v)));
    }
    for i in 0..500 {
        out.push((
            format!("config/c{}/settings{i}.json", i % 10),
            format!(
                "{{\n  \"name\": \"svc-{i}\",\n  \"logLevel\": \"{}\"\n}}\n",
                if head { "debug" } else { "info" }
            ),
        ));
    }
    if head {
        for i in 0..500 {
            out.push((
                format!("prisma/migrations/2026010100{i:04}_m{i}/migration.sql"),
                format!(
                    "-- CreateTable\nCREATE TABLE \"t{i}\" (\n  \"id\" SERIAL NOT NULL,\n  \"name\" TEXT,\n  CONSTRAINT \"t{i}_pkey\" PRIMARY KEY (\"id\")\n);\n"
                ),
            ));
        }
    }
    out
}

/// The two commits, written with the test kit's `git fast-import` builder.
fn generate(dir: &Path, files: Files) {
    let commit = |n: usize, branch: &str, head: bool| BulkCommit {
        branch: branch.into(),
        message: format!("rev{n}"),
        on_previous: n > 0,
        files: files(head),
    };
    fast_import(
        dir,
        [
            commit(0, "refs/heads/main", false),
            commit(1, "refs/heads/feature", true),
        ],
        "feature",
    );
}

/// CPU time of this process so far, summed over its threads (Linux `/proc`; `None` elsewhere):
/// with the wall time of a run, how many of the cores the classification kept busy. The threads
/// that free a finished change in the background (`changegate-free`, which may end between two
/// readings) are left out.
fn cpu_time() -> Option<Duration> {
    let mut ns = 0u64;
    for t in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = t.ok()?.path();
        if std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == "changegate-free") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        ns += stat.split(' ').next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(ns))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// How the generated repository's objects are packed.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// As `git fast-import` writes them: each blob a delta of the one written before it where
    /// that is smaller (chains up to 50 deep), most small blobs whole.
    FastImport,
    /// After `git repack -adf`: newest versions whole, older ones as deltas of them, as a clone
    /// receives a repository. `git diff --numstat` is faster here (base blobs are small deltas).
    Repacked,
}

fn main() {
    let mix = std::env::var("CHANGEGATE_BENCH_MIX").unwrap_or_else(|_| "all".into());
    // `CHANGEGATE_BENCH_LAYOUT=fast-import|repacked|all` (default all).
    let layout = std::env::var("CHANGEGATE_BENCH_LAYOUT").unwrap_or_else(|_| "all".into());
    let mixes: [(&str, Files); 2] = [("monorepo", files), ("services", services_files)];
    let layouts = [
        ("fast-import", Layout::FastImport),
        ("repacked", Layout::Repacked),
    ];
    let mut summary = Vec::new();
    for (lname, l) in layouts {
        if layout != "all" && layout != lname {
            continue;
        }
        for (name, files) in mixes {
            if mix != "all" && mix != name {
                continue;
            }
            println!("== mix {name}, {lname} layout");
            summary.push((name, lname, run_mix(name, files, l)));
        }
    }
    println!("== summary (medians, same run)");
    for (name, lname, (n, k)) in summary {
        println!(
            "mix {name:<9} {lname:<11} git diff --numstat {n:>8.1?}  classify {k:>8.1?}  ratio {:>5.2}x  goal <= 1.0x: {}",
            k.as_secs_f64() / n.as_secs_f64(),
            if k <= n { "met" } else { "MISSED" }
        );
    }
}

/// One mix in one layout: (numstat median, classify median).
fn run_mix(name: &str, files: Files, layout: Layout) -> (Duration, Duration) {
    // `CHANGEGATE_BENCH_REPO=DIR` keeps the generated repositories in DIR/<mix> and
    // DIR/<mix>-repacked (generated once, then reused), for profiling runs.
    let tmp = tempfile::tempdir().unwrap();
    let sub = match layout {
        Layout::FastImport => name.to_string(),
        Layout::Repacked => format!("{name}-repacked"),
    };
    let dir = std::env::var_os("CHANGEGATE_BENCH_REPO")
        .map(|d| std::path::PathBuf::from(d).join(&sub))
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let dir = dir.as_path();
    if !dir.join(".git").exists() {
        std::fs::create_dir_all(dir).unwrap();
        let t = Instant::now();
        generate(dir, files);
        if layout == Layout::Repacked {
            for args in [&["repack", "-adfq"][..], &["prune-packed"]] {
                assert!(command(dir).args(args).status().unwrap().success());
            }
        }
        println!("generated repository in {:.1?}", t.elapsed());
    }
    let runs: usize = std::env::var("CHANGEGATE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS);
    let policy = changegate_policy::load_default().policy;

    // The three are interleaved run by run, so drift on a shared machine hits them alike.
    // `git diff --numstat` is context, not the target: it reads and line-diffs every changed blob,
    // which is the least any content-inspecting tool has to do (name-status reads no blob).
    let git = |args: &[&str]| {
        let t = Instant::now();
        let out = command(dir).args(args).output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 10_000);
        t.elapsed()
    };
    let (mut git_times, mut numstat_times, mut times) = (Vec::new(), Vec::new(), Vec::new());
    let mut cores = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        git_times.push(git(&["diff", "--name-status", "main", "feature"]));
        numstat_times.push(git(&["diff", "--numstat", "main", "feature"]));
        let (t, cpu) = (Instant::now(), cpu_time());
        let c =
            changegate_classify::classify_repo(dir, Some("main"), Some("feature"), &policy, None)
                .unwrap();
        let wall = t.elapsed();
        times.push(wall);
        if let (Some(a), Some(b)) = (cpu, cpu_time()) {
            cores.push((b.saturating_sub(a).as_secs_f64() / wall.as_secs_f64() * 1000.0) as u64);
        }
        last = Some(c);
    }
    let c = last.unwrap();
    // Where the time goes (one run): listing the change from git, classifying it (which reads
    // the blobs detectors ask for), then each detector again on the now-read blobs (wall time
    // without reads; the heavy detectors spread their files over the pool). Off with
    // CHANGEGATE_BENCH_BREAKDOWN=0 (profiling).
    let breakdown = std::env::var("CHANGEGATE_BENCH_BREAKDOWN").map_or(true, |v| v != "0");
    let t = Instant::now();
    let change =
        changegate_classify::open_change(dir, Some("main"), Some("feature"), 8 << 20).unwrap();
    println!(
        "  open_change (tree diff + rename detection; blobs are read on demand): {:.1?}",
        t.elapsed()
    );
    let view = changegate_classify::Change {
        files: &change.files,
        contents: &change.contents,
        settings: &policy.classify,
        parses: None,
    };
    let none = std::collections::BTreeMap::new();
    let input = changegate_classify::ClassifyInput {
        files: &change.files,
        contents: &change.contents,
        oversized: &none,
        coverage: None,
        messages: &[],
        labels: &[],
    };
    let t = Instant::now();
    let _ =
        changegate_classify::classify(&input, &policy, &changegate_classify::Options::default());
    println!(
        "  classify on the opened change (blob reads + detectors in parallel + fallbacks + mapping): {:.1?}",
        t.elapsed()
    );
    // Each detector twice: on the shared pool (wall) and alone on one thread (its CPU cost,
    // which is what two cores have to share).
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut cpu = Duration::ZERO;
    for d in changegate_classify::detectors::all()
        .into_iter()
        .filter(|_| breakdown)
    {
        let t = Instant::now();
        let f = d.detect(&view);
        let wall = t.elapsed();
        let t = Instant::now();
        one.install(|| d.detect(&view));
        let single = t.elapsed();
        cpu += single;
        println!(
            "  detector {:<14} {:>8.1?} wall, {:>8.1?} on one core  ({} facets)",
            d.id(),
            wall,
            single,
            f.facets.len()
        );
    }
    if breakdown {
        println!("  detectors on one core, summed: {cpu:.1?} (blobs already read)");
    }
    assert_eq!(c.files.changed, 10_000);
    let (g, n, k) = (median(git_times), median(numstat_times), median(times));
    let ratio = k.as_secs_f64() / g.as_secs_f64();
    println!(
        "changed files: {}  facets: {}  category: {}",
        c.files.changed,
        c.facets.len(),
        c.category.level
    );
    println!("git diff --name-status : {:>8.1?} (median of {runs})", g);
    println!(
        "git diff --numstat     : {:>8.1?} (median of {runs}; reads every changed blob: context)",
        n
    );
    println!("changegate classify    : {:>8.1?} (median of {runs})", k);
    if !cores.is_empty() {
        cores.sort_unstable();
        println!(
            "classify CPU / wall    : {:>8.2} cores (median of {runs}; 2 = both cores busy throughout)",
            cores[cores.len() / 2] as f64 / 1000.0
        );
    }
    println!(
        "ratio classify/numstat : {:>8.2}x   goal <= 1.0x: {}",
        k.as_secs_f64() / n.as_secs_f64(),
        if k <= n { "met" } else { "MISSED" }
    );
    println!("ratio classify/name-status: {ratio:>5.2}x");
    (n, k)
}
