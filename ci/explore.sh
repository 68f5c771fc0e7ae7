#!/usr/bin/env bash
# Runs one model and prints the failing interleaving it finds as protocol
# events (see models/README.md, "Reading a failing interleaving").
#
#   ci/explore.sh --list
#   ci/explore.sh MODEL [--bound N] [--max-bound N] [--seeded-bug NAME] [--release] [TEST_FILTER]
#
# MODEL is a model file on the model backend (loom_spsc, loom_wait,
# loom_mpmc, loom_faults, shuttle_spsc, shuttle_mpmc, shuttle_faults;
# not frames, whose model link has no ring words to trace). --seeded-bug NAME
# runs the model's seeded_NAME test, which compiles that defect into the
# production protocol (shmsg::sync::Faults). TEST_FILTER selects tests as
# `cargo test` does (all of the file by default).
#
# Loom models: without --bound, the preemption bound is raised from 0 to
# --max-bound (the model's quick-tier bound by default) and the run stops
# at the first bound where the model fails, so the interleaving printed
# has as few preemptions as any failing one; of several failing tests, the
# one with the fewest events is printed. Shuttle models run once (their
# iterations as configured); the bound does not apply.
#
# Exit status: 0 if a failing interleaving was found, 1 if none, 2 on a
# usage error. The whole output of each run is kept under target/explore/.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 2
}

models=(loom_spsc loom_wait loom_mpmc loom_faults shuttle_spsc shuttle_mpmc shuttle_faults)

# The seeded defects a model file has tests for.
seeded_bugs() {
    grep -o 'fn seeded_[a-z_0-9]*_is_caught' "models/$1.rs" |
        sed 's/^fn seeded_//; s/_is_caught$//' | sort -u
}

if [[ ${1:-} == --list ]]; then
    for model in "${models[@]}"; do
        echo "$model: $(seeded_bugs "$model" | tr '\n' ' ')"
    done
    exit 0
fi
[[ $# -ge 1 && ${1:-} != -* ]] || usage
model=$1
shift
[[ " ${models[*]} " == *" $model "* ]] || {
    echo "unknown model '$model'; ci/explore.sh --list" >&2
    exit 2
}

bound="" max_bound="" filter="" bug="" profile=()
while (($#)); do
    case $1 in
    --bound) bound=$2; shift 2 ;;
    --max-bound) max_bound=$2; shift 2 ;;
    --seeded-bug) bug=$2; shift 2 ;;
    --release) profile=(--release); shift ;;
    -h | --help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) filter=$1; shift ;;
    esac
done
if [[ -n $bug ]]; then
    seeded_bugs "$model" | grep -qx "$bug" || {
        echo "$model has no seeded bug '$bug'; it has: $(seeded_bugs "$model" | tr '\n' ' ')" >&2
        exit 2
    }
    filter="seeded_${bug}_is_caught"
fi

# The environment variables that set this model's preemption bound, and
# its quick-tier bound.
case $model in
loom_spsc) knobs=(LOOM_MAX_PREEMPTIONS) quick=4 ;;
loom_wait) knobs=(SHMSG_LOOM_WAIT_PREEMPTIONS) quick=3 ;;
loom_mpmc) knobs=(SHMSG_LOOM_MPSC_PREEMPTIONS SHMSG_LOOM_MPMC_PREEMPTIONS) quick=2 ;;
loom_faults) knobs=(SHMSG_LOOM_FAULTS_PREEMPTIONS SHMSG_LOOM_FAULTS_MPMC_PREEMPTIONS) quick=2 ;;
*) knobs=() quick="" ;;
esac

outdir="${CARGO_TARGET_DIR:-target}/explore"
mkdir -p "$outdir"
echo "== building $model" >&2
cargo test --locked "${profile[@]}" --test "$model" --no-run -q 2>&1 | grep -v '^ *Executable' >&2 || true

# Prints the failing interleaving with the fewest events in file $1; fails
# if there is none.
shortest() {
    awk '
        /^test [A-Za-z0-9_:]+ \.\.\./ { test = $2 }
        /^== failing interleaving/ {
            inside = 1; n = substr($4, 2) + 0
            block = (test == "" ? "" : "test " test ":\n")
        }
        inside { block = block $0 "\n" }
        /^== end of interleaving/ && inside {
            inside = 0
            if (best == "" || n < best_n) { best = block; best_n = n }
        }
        END { if (best == "") exit 1; printf "%s", best }
    ' "$1"
}

# The command line that runs the model once with bound $1 ("" for shuttle),
# the tests filtered by $2, and more test harness arguments after.
command_for() {
    local env=(SHMSG_MODEL_TRACE=1 RUST_BACKTRACE=0)
    local knob
    if [[ -n $1 ]]; then
        for knob in "${knobs[@]}"; do env+=("$knob=$1"); done
    fi
    echo "${env[*]} cargo test${profile[*]:+ ${profile[*]}} --test $model${2:+ $2} -- --nocapture --test-threads=1${3:+ $3}"
}

run() {
    local bound=$1 log="$outdir/$model${filter:+-$filter}${1:+-bound$1}.log"
    local cmd test
    cmd=$(command_for "$bound" "$filter")
    echo "== ${bound:+bound $bound: }$cmd" >&2
    # A seeded test passes when the model fails; either way, the blocks
    # in the output tell.
    # shellcheck disable=SC2086 # the command is words without spaces
    env $cmd >"$log" 2>&1 || true
    if interleaving=$(shortest "$log"); then
        found_log=$log
        test=$(head -1 <<<"$interleaving" | sed -n 's/^test \(.*\):$/\1/p')
        found_cmd=$(command_for "$bound" "$test" "${test:+--exact}")
        return 0
    fi
    return 1
}

found_log="" found_cmd="" interleaving=""
if ((${#knobs[@]} == 0)); then
    run "" || true
elif [[ -n $bound ]]; then
    run "$bound" || true
else
    for ((b = 0; b <= ${max_bound:-$quick}; b++)); do
        run "$b" && break
    done
fi

if [[ -z $found_log ]]; then
    echo "== no failing interleaving found (output: $outdir/)"
    exit 1
fi
echo
printf '%s' "$interleaving"
echo
echo "Replay: $found_cmd"
if [[ $model == loom_* ]]; then
    echo "  (loom explores in a fixed order: the same bound and tests fail at the same execution;"
    echo "   add LOOM_LOG=1 LOOM_LOCATION=1 for loom's own trace of it)"
fi
if schedule=$(grep -o 'failing schedule persisted to file: [^ ]*' "$found_log" | head -1); then
    path=${schedule#failing schedule persisted to file: }
    echo "Shuttle persisted the failing schedule: $path"
    if [[ -n $bug ]]; then
        echo "  (a seeded test replays its own schedule: rerun it as above)"
    else
        echo "  replay it: SHMSG_MODEL_TRACE=1 SHMSG_SHUTTLE_REPLAY=$path cargo test --test $model TEST -- --nocapture"
        echo "  with TEST the failing random or pct test (models/README.md, $model)"
    fi
fi
echo "Whole output: $found_log"
