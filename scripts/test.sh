#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Starts or installs whatever the tests
# need (scripts/services.sh), then: format check, clippy, tests, generated-docs check.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
bash scripts/services.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
cargo xtask docs --check
