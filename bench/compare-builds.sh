#!/usr/bin/env bash
# Two builds of `shmsg compare`, measured against each other in one session:
#
#   bench/compare-builds.sh OLD_REV [--library-only] [ROUNDS]
#
# Builds `shmsg` (release) at OLD_REV and from the working tree, then runs
# `shmsg compare --transports shm,mpsc --runs 3 --no-syscalls` with the two
# alternating, ROUNDS times each (default 8), in ABBA order (old new, new
# old, new old, old new, ...), so that a slow phase of a shared machine
# falls on both alike. Prints, per ring cell, the median over the rounds of
# each build's figure, the median of the per-round ratios (new against old:
# above 1 is better for both columns), and the spread of each build's
# figures over the rounds: a difference inside that spread is not a
# measured regression.
#
# --library-only: the old build is OLD_REV's command and harness (cli/,
# bench/) with OLD_REV's library, the new one the same harness with the
# working tree's library, so that only the library differs (the harness
# must still compile against it). Only the working tree's `src/` is taken:
# its Cargo.toml and Cargo.lock are HEAD's, so a dependency change not yet
# committed is not in the new build.
#
# Needs git, cargo and python3. Work goes to target/compare-builds/.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: bench/compare-builds.sh OLD_REV [--library-only] [ROUNDS]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
old_rev=$(git rev-parse --verify "$1^{commit}") || usage
shift
library_only=false
rounds=8
for arg in "$@"; do
    case "$arg" in
        --library-only) library_only=true ;;
        ''|*[!0-9]*) usage ;;
        *) rounds=$arg ;;
    esac
done
command -v python3 > /dev/null || { echo "compare-builds: python3 is needed for the table" >&2; exit 2; }

root=$PWD
work=$root/target/compare-builds
mkdir -p "$work"
tree=$work/tree
cleanup() { git -C "$root" worktree remove --force "$tree" 2> /dev/null || true; }
trap cleanup EXIT
cleanup

# build REV-OR-EMPTY HARNESS_REV OUT: shmsg with the library of REV (the
# working tree if empty) and the command of HARNESS_REV (the same if empty).
build() {
    local lib=$1 harness=$2 out=$3
    if [ -z "$lib" ] && [ -z "$harness" ]; then
        cargo build --release --quiet -p shmsg-cli --bin shmsg
        cp target/release/shmsg "$out"
        return
    fi
    if [ -z "$lib" ]; then
        # The working tree's library, committed or not, with the old harness.
        git worktree add --quiet --detach "$tree" HEAD
        rm -rf "$tree/src"
        cp -a "$root/src" "$tree/src"
    else
        git worktree add --quiet --detach "$tree" "$lib"
    fi
    if [ -n "$harness" ]; then
        git -C "$tree" checkout --quiet "$harness" -- cli bench
    fi
    CARGO_TARGET_DIR=$work/target cargo build --release --quiet \
        --manifest-path "$tree/Cargo.toml" -p shmsg-cli --bin shmsg
    cp "$work/target/release/shmsg" "$out"
    cleanup
}

echo "== building the old build ($old_rev) and the new one" >&2
build "$old_rev" "" "$work/shmsg-old"
if $library_only; then
    build "" "$old_rev" "$work/shmsg-new"
else
    build "" "" "$work/shmsg-new"
fi

rm -f "$work"/run-*.json
for i in $(seq 1 "$rounds"); do
    case $((i % 4)) in 1|0) order="old new" ;; *) order="new old" ;; esac
    for which in $order; do
        echo "== round $i/$rounds: $which" >&2
        "$work/shmsg-$which" compare --transports shm,mpsc --runs 3 --no-syscalls \
            --out "$work/out" --json > "$work/run-$which-$i.json" 2> "$work/run-$which-$i.log"
    done
done

python3 - "$work" "$rounds" << 'EOF'
import glob, json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def load(which):
    cells = {}
    for i in range(1, rounds + 1):
        for r in json.load(open(f"{work}/run-{which}-{i}.json"))["results"]:
            cell = cells.setdefault((r["transport"], r["size"]), {})
            cell[i] = (r["pingpong"]["round_trip_ns"]["median"], r["stream"]["messages_per_s"]["median"])
    return cells
old, new = load("old"), load("new")
def spread(values):
    return f"{min(values) / 1e6:.3g}..{max(values) / 1e6:.3g}"
print("| cell | round trip ns, old | new | ratio (old/new time) | stream M msg/s, old | new | ratio (new/old) | stream spread, old | new |")
print("|---|---|---|---|---|---|---|---|---|")
for key in sorted(old, key=lambda k: (k[0], k[1])):
    o, n = old[key], new[key]
    rounds_both = sorted(set(o) & set(n))
    ort = statistics.median(o[i][0] for i in rounds_both)
    nrt = statistics.median(n[i][0] for i in rounds_both)
    otp = statistics.median(o[i][1] for i in rounds_both)
    ntp = statistics.median(n[i][1] for i in rounds_both)
    rt_ratio = statistics.median(o[i][0] / n[i][0] for i in rounds_both)
    tp_ratio = statistics.median(n[i][1] / o[i][1] for i in rounds_both)
    print(f"| {key[0]} {key[1]} B | {ort:.0f} | {nrt:.0f} | {rt_ratio:.2f} | {otp / 1e6:.3f} | {ntp / 1e6:.3f} | {tp_ratio:.2f} "
          f"| {spread([o[i][1] for i in rounds_both])} | {spread([n[i][1] for i in rounds_both])} |")
EOF
