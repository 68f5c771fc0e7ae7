#!/usr/bin/env bash
# The quick tier: formatting, lints, docs, and every test and model at the
# bounds that fit in a few minutes on a 2-core machine. README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps
echo "== cargo test"
cargo test --locked
echo "== examples (built by cargo test), each over both models"
examples="${CARGO_TARGET_DIR:-target}/debug/examples"
"$examples/request_response"
"$examples/chat"
"$examples/blocks"
