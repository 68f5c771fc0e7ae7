#!/usr/bin/env bash
# Logic mutants: which small changes to the protocol code do the models and
# property tests notice? (DESIGN.md, "Measured teeth"; the orderings have
# their own job, ci/mutate-orderings.sh.) Run by name:
#
#   ci/mutate-logic.sh                    # every group, every mutant (hours)
#   ci/mutate-logic.sh frame spsc         # some groups
#   MUTANTS_SAMPLE=8 ci/mutate-logic.sh   # one mutant in 8 of each group
#   ci/mutate-logic.sh --list             # count the mutants of each group
#
# cargo-mutants (https://mutants.rs) rewrites one thing at a time: a
# function body replaced by a plausible value, a binary operator or a
# comparison swapped, a `!` deleted, a match arm removed. It builds the
# mutant and runs the group's tests; a mutant is
#   caught     some test failed,
#   missed     every test passed (a survivor: listed at the end),
#   timeout    the tests ran past cargo-mutants' limit (counted as caught:
#              the mutant made the protocol hang, which the models detect),
#   unviable   the mutant does not compile (not counted).
# Kill rate = (caught + timeout) / (caught + timeout + missed).
#
# A group is the protocol files and the tests that exercise them: the
# models at the quick tier's bounds, and the few fast tests that run what
# the models cannot (attaching to a region, the watchdog, processes that
# die: `region`, `faults`, 20 s). loom_faults (four minutes a run) is left
# out of the per-mutant tests; shuttle_faults covers its scenarios at
# random.
#
# Environment:
#   MUTANTS_SAMPLE=N  test one mutant in N of each group (cargo-mutants'
#                     round-robin shard 0/N: the same mutants every run)
#   MUTANTS_OUT       where the results go (default target/mutants-logic)
#   MUTANTS_RE=REGEX  only the mutants whose name matches (cargo-mutants
#                     --re), e.g. to run a table's survivors again after
#                     adding a test
#   MUTANTS_IN_PLACE=1  mutate this tree instead of a copy (faster: reuses
#                     target/; do not edit the tree while it runs)
# cargo-mutants is installed into ~/.cargo/bin when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_MUTANTS_VERSION=27.1.0

# name | files (globs, space separated) | cargo test arguments
groups=(
    "frame|src/msg/frame.rs src/msg/frame/**|--lib --test prop_frame --test frames --test stream"
    "spsc|src/shm/spsc.rs src/shm/spsc/** src/shm/wait.rs src/shm/watch.rs src/shm/record.rs src/shm/attach.rs|--lib --test loom_spsc --test loom_wait --test shuttle_spsc --test shuttle_faults --test prop_spsc --test prop_hostile --test region --test faults"
    "mpmc|src/shm/mpmc.rs src/shm/mpmc/**|--lib --test loom_mpmc --test shuttle_mpmc --test prop_mpmc --test prop_hostile --test faults"
    "region|src/shm/region.rs src/shm/region/** src/shm/share.rs src/shm/layout.rs src/shm/layout/** src/shm/mapped.rs|--lib --test region --test prop_hostile --test prop_spsc"
)

list_only=0
if [[ "${1:-}" == "--list" ]]; then
    list_only=1
    shift
fi
wanted=("$@")
sample="${MUTANTS_SAMPLE:-1}"
out="${MUTANTS_OUT:-target/mutants-logic}"

if ! cargo mutants --version 2>/dev/null | grep -q "$CARGO_MUTANTS_VERSION"; then
    echo "== installing cargo-mutants $CARGO_MUTANTS_VERSION"
    cargo install --locked cargo-mutants --version "$CARGO_MUTANTS_VERSION"
fi

count() { [[ -f "$1" ]] && wc -l <"$1" || echo 0; }

mkdir -p "$out"
table="$out/table.md"
rows=()
survivors=()
for group in "${groups[@]}"; do
    IFS='|' read -r name files tests <<<"$group"
    if ((${#wanted[@]})) && [[ " ${wanted[*]} " != *" $name "* ]]; then
        continue
    fi
    file_args=()
    set -f # the globs are cargo-mutants', not the shell's
    for glob in $files; do
        file_args+=(--file "$glob")
    done
    set +f
    if ((list_only)); then
        echo "$name: $(cargo mutants --list "${file_args[@]}" | wc -l) mutants in $files"
        continue
    fi
    shard=()
    if ((sample > 1)); then
        shard=(--shard "0/$sample" --sharding round-robin)
    fi
    place=()
    if [[ "${MUTANTS_IN_PLACE:-0}" == 1 ]]; then
        place=(--in-place)
    fi
    if [[ -n "${MUTANTS_RE:-}" ]]; then
        place+=(--re "$MUTANTS_RE")
    fi
    echo "== $name: $files (sample 1 in $sample), tests: $tests"
    start=$SECONDS
    # Exit status 2 means "some mutants were missed": the table says which.
    # shellcheck disable=SC2086
    cargo mutants --no-shuffle "${place[@]}" "${shard[@]}" "${file_args[@]}" \
        -o "$out/$name" -- $tests || {
        status=$?
        [[ $status == 2 || $status == 3 ]]
    }
    dir="$out/$name/mutants.out"
    caught=$(count "$dir/caught.txt")
    missed=$(count "$dir/missed.txt")
    timeout=$(count "$dir/timeout.txt")
    unviable=$(count "$dir/unviable.txt")
    tested=$((caught + missed + timeout))
    rate="-"
    if ((tested)); then
        rate="$(((caught + timeout) * 1000 / tested / 10)).$(((caught + timeout) * 1000 / tested % 10))%"
    fi
    rows+=("| $name | $tested | $caught | $timeout | $missed | $unviable | $rate | $((SECONDS - start)) s |")
    if [[ -f "$dir/missed.txt" ]]; then
        while read -r line; do survivors+=("$name: $line"); done <"$dir/missed.txt"
    fi
done
((list_only)) && exit 0

{
    echo "Logic mutants (cargo-mutants $CARGO_MUTANTS_VERSION, sample 1 in $sample${MUTANTS_RE:+, names matching $MUTANTS_RE}, at $(git rev-parse --short HEAD)):"
    echo
    echo "| group | tested | caught | timeout | missed | unviable | killed | time |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Survivors (missed):"
    if ((${#survivors[@]})); then
        printf -- '- %s\n' "${survivors[@]}"
    else
        echo "- none"
    fi
} | tee "$table"
