#!/usr/bin/env bash
# The quick tier: formatting, lints, docs, and every test and model at the
# bounds that fit in a few minutes on a 2-core machine. README's test command.
# Cargo runs on the workspace's default members: the library, the `shmsg`
# command (cli/) and bench/support; bench/peers (which builds iceoryx2) is
# left out.
#
# Every step runs even when an earlier one failed, so that one run reports
# every failure; the script exits non-zero if any step failed, and prints
# which.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
    local name="$1"
    shift
    echo "== $name"
    if ! "$@"; then
        echo "== FAILED: $name"
        failed+=("$name")
    fi
}

# The `tokio` feature (the async interface, `shmsg::tokio`) is on for the
# lints, the docs and the tests; the first clippy step checks the library
# as most users build it, without the feature.
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy (default features)" cargo clippy --locked -- -D warnings
step "cargo clippy" cargo clippy --locked --all-targets --features shmsg/tokio -- -D warnings
step "cargo doc" env RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --features shmsg/tokio
# The command's modules are private to its crate (cli/): check their docs too.
step "cargo doc (shmsg-cli, private items)" env RUSTDOCFLAGS="-D warnings" \
    cargo rustdoc --locked -p shmsg-cli --lib -- --document-private-items
step "cargo test" cargo test --locked --no-fail-fast --features shmsg/tokio
# ci/explore.sh prints a seeded bug's failing interleaving as protocol
# events: a data race for a header published `Relaxed`, a deadlock for a
# waiter without its fence (a few seconds: the models are built above).
explore() {
    local out
    out=$(ci/explore.sh "$1" --seeded-bug "$2" 2>&1) &&
        grep -q "^  !!  panic: $3" <<<"$out" &&
        grep -q "^Replay: " <<<"$out" || {
        echo "$out"
        return 1
    }
}
step "explore loom_spsc relaxed_publish" explore loom_spsc relaxed_publish "Causality violation"
step "explore loom_wait no_waiter_fence" explore loom_wait no_waiter_fence deadlock
# The examples are built by `cargo test`; each runs itself over both models.
examples="${CARGO_TARGET_DIR:-target}/debug/examples"
for example in request_response chat blocks poll tokio_server; do
    step "example $example" "$examples/$example"
done

if ((${#failed[@]})); then
    echo "== quick tier FAILED: ${failed[*]}"
    exit 1
fi
echo "== quick tier passed"
