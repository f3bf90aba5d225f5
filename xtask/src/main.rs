//! Repository chores: `cargo xtask docs` regenerates the reference docs from the code;
//! `cargo xtask docs --check` fails when they are stale (run by the test suite).

use std::path::PathBuf;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("docs") => docs(args.iter().any(|a| a == "--check")),
        _ => {
            eprintln!("usage: cargo xtask docs [--check]");
            std::process::exit(2)
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn docs(check: bool) -> anyhow::Result<()> {
    let files = [
        ("docs/policy-schema.json", changegate_policy::json_schema() + "\n"),
        ("docs/policy-default.toml", changegate_policy::DEFAULT_POLICY_TOML.to_string()),
    ];
    let mut stale = Vec::new();
    for (rel, content) in files {
        let path = root().join(rel);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != content {
            if check {
                stale.push(rel);
            } else {
                std::fs::write(&path, content).with_context(|| format!("writing {rel}"))?;
                println!("wrote {rel}");
            }
        }
    }
    if !stale.is_empty() {
        bail!("stale generated docs: {} (run `cargo xtask docs`)", stale.join(", "));
    }
    Ok(())
}
