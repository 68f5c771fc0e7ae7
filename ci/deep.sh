#!/usr/bin/env bash
# The deep tier: the same models and tests with larger bounds. Run by name:
#   ci/deep.sh
# Takes tens of minutes on a 2-core machine. Each knob can be raised further.
set -euo pipefail
cd "$(dirname "$0")/.."

# Release builds keep overflow checks: a value read from a hostile region
# must never panic in any build profile, and the hostile models prove it
# only where overflow panics.
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS="${CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS:-true}"

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-6}"
export SHMSG_SHUTTLE_ITERATIONS="${SHMSG_SHUTTLE_ITERATIONS:-20000}"
export SHMSG_SHUTTLE_MESSAGES="${SHMSG_SHUTTLE_MESSAGES:-1000}"
export PROPTEST_CASES="${PROPTEST_CASES:-4096}"
export SHMSG_KILL_ROUNDS="${SHMSG_KILL_ROUNDS:-50}"
# Models with larger state spaces per preemption get their own bounds.
export SHMSG_LOOM_WAIT_PREEMPTIONS="${SHMSG_LOOM_WAIT_PREEMPTIONS:-5}"
export SHMSG_LOOM_FRAMES_PREEMPTIONS="${SHMSG_LOOM_FRAMES_PREEMPTIONS:-4}"
# loom_spsc's late-consumer scenario: a producer sleeping slice after slice
# (bound 5: about 30 s; 6 would take minutes).
export SHMSG_LOOM_SLEEPER_PREEMPTIONS="${SHMSG_LOOM_SLEEPER_PREEMPTIONS:-5}"
# The multi-producer models: two producers (or two consumers) multiply the
# interleavings per preemption (mpsc bound 3: about 70 s; mpmc bound 2).
export SHMSG_LOOM_MPSC_PREEMPTIONS="${SHMSG_LOOM_MPSC_PREEMPTIONS:-3}"
export SHMSG_LOOM_MPMC_PREEMPTIONS="${SHMSG_LOOM_MPMC_PREEMPTIONS:-2}"
# The fault models run one loom model per crash step (15 to 26 steps).
export SHMSG_LOOM_FAULTS_PREEMPTIONS="${SHMSG_LOOM_FAULTS_PREEMPTIONS:-3}"
# 20000 schedules x 1000 messages took 18 min for the multi-producer shuttle
# model (five threads per schedule); 5000 keeps it near 5 min.
export SHMSG_SHUTTLE_MPMC_ITERATIONS="${SHMSG_SHUTTLE_MPMC_ITERATIONS:-5000}"
# shuttle_faults: schedules per crash step and scheduler (40 quick; 1000
# took 13 s in release, the two-recoverer scenario running 25 times as many).
export SHMSG_SHUTTLE_FAULTS_ITERATIONS="${SHMSG_SHUTTLE_FAULTS_ITERATIONS:-1000}"
# The state machine over every transport: each case opens eight connections
# (256 cases took 8 min in release on the 2-core development machine).
export SHMSG_SAME_CASES="${SHMSG_SAME_CASES:-128}"
# The crash campaign (tests/crash_campaign.rs): SIGKILLs across the ring
# kinds, and random words written into a live region by another process.
export SHMSG_CAMPAIGN_KILLS="${SHMSG_CAMPAIGN_KILLS:-1000}"
export SHMSG_CAMPAIGN_WRITES="${SHMSG_CAMPAIGN_WRITES:-1000000}"
# Messages per client and direction through one shm: listener serving 8
# client processes (tests/rendezvous.rs).
export SHMSG_RDV_MESSAGES="${SHMSG_RDV_MESSAGES:-1000000}"
# Messages per case of the linearizability check of multi-process runs
# (tests/linearizable.rs): each process logs every operation, and the
# parent checks the merged history against a FIFO queue.
export SHMSG_LIN_MESSAGES="${SHMSG_LIN_MESSAGES:-10000000}"

echo "== deep tier: loom preemption bound $LOOM_MAX_PREEMPTIONS (wait model $SHMSG_LOOM_WAIT_PREEMPTIONS, frames $SHMSG_LOOM_FRAMES_PREEMPTIONS, late consumer $SHMSG_LOOM_SLEEPER_PREEMPTIONS, mpsc $SHMSG_LOOM_MPSC_PREEMPTIONS, mpmc $SHMSG_LOOM_MPMC_PREEMPTIONS, faults $SHMSG_LOOM_FAULTS_PREEMPTIONS), same-behaviour cases $SHMSG_SAME_CASES, shuttle $SHMSG_SHUTTLE_ITERATIONS schedules x $SHMSG_SHUTTLE_MESSAGES messages (faults $SHMSG_SHUTTLE_FAULTS_ITERATIONS per crash step), proptest $PROPTEST_CASES cases, $SHMSG_KILL_ROUNDS SIGKILL rounds, crash campaign $SHMSG_CAMPAIGN_KILLS kills and $SHMSG_CAMPAIGN_WRITES hostile writes, rendezvous $SHMSG_RDV_MESSAGES messages per client, linearizability $SHMSG_LIN_MESSAGES messages per case"
cargo test --locked --release --features shmsg/tokio -- --test-threads=2

# Every loom model's seeded bugs through ci/explore.sh: each must print a
# failing interleaving (models/README.md). About 20 s (bound 0 or 1 each).
for model in loom_spsc loom_wait loom_mpmc loom_faults; do
    for bug in $(ci/explore.sh --list | sed -n "s/^$model: //p"); do
        echo "== explore $model --seeded-bug $bug"
        ci/explore.sh "$model" --release --seeded-bug "$bug" | grep -E '^(== failing|  !!|Replay)'
    done
done

# Measured teeth (models/README.md, "Ordering mutants" and "Logic
# mutants"): the mutation tables, at the quick tier's model bounds (the
# deep bounds above, once per mutant, would take days).
quick_bounds() {
    env -u LOOM_MAX_PREEMPTIONS -u SHMSG_SHUTTLE_ITERATIONS -u SHMSG_SHUTTLE_MESSAGES \
        -u PROPTEST_CASES -u SHMSG_LOOM_WAIT_PREEMPTIONS -u SHMSG_LOOM_FRAMES_PREEMPTIONS \
        -u SHMSG_LOOM_SLEEPER_PREEMPTIONS -u SHMSG_LOOM_MPSC_PREEMPTIONS -u SHMSG_LOOM_MPMC_PREEMPTIONS \
        -u SHMSG_LOOM_FAULTS_PREEMPTIONS -u SHMSG_SHUTTLE_MPMC_ITERATIONS "$@"
}
# Every atomic ordering stronger than Relaxed in the rings, weakened one at
# a time against the loom models that run its file (on 2 cores: 15 min for
# the 23 single-producer sites, about 2 hours for the 50 multi-producer
# ones, at some 150 s each).
echo "== ordering mutants: the single-producer ring, attach.rs, wait.rs"
quick_bounds env MUTATE_LOG_DIR=target/mutants/spsc ci/mutate-orderings.sh
echo "== ordering mutants: the multi-producer rings"
quick_bounds env MUTATE_LOG_DIR=target/mutants/mpmc MUTATE_TESTS="loom_mpmc loom_wait loom_faults" \
    ci/mutate-orderings.sh src/shm/mpmc/*.rs src/shm/mpmc/*/*.rs
# cargo-mutants' logic mutants of src/shm and the frame codec against the
# models and property tests: one in MUTANTS_SAMPLE (20 by default, about
# an hour on 2 cores; MUTANTS_SAMPLE=1 runs all 1124, about 15 hours).
echo "== logic mutants (1 in ${MUTANTS_SAMPLE:-20})"
quick_bounds env MUTANTS_SAMPLE="${MUTANTS_SAMPLE:-20}" ci/mutate-logic.sh
