#!/usr/bin/env bash
# Ordering mutants: which atomic orderings can the loom models tell apart
# from `Relaxed`? (DESIGN.md, "Measured teeth".) Run by name:
#
#   ci/mutate-orderings.sh                      # the single-producer ring:
#                                               # src/shm/spsc/*.rs, the
#                                               # ring's part of src/shm/attach.rs
#                                               # and src/shm/wait.rs
#   ci/mutate-orderings.sh src/shm/spsc/producer.rs  # one file
#   ci/mutate-orderings.sh --list [FILE...]     # only print the sites
#
# The protocol files, whose sites `--list` counts, are the default ones and
# src/shm/mpmc/*.rs (run those with MUTATE_TESTS="loom_mpmc loom_faults");
# src/shm/record.rs has none.
#
# For each FILE it finds every atomic operation whose ordering argument is
# stronger than `Relaxed`: a literal `Acquire`, `Release`, `AcqRel` or
# `SeqCst` argument of `.load`, `.store`, `.swap`, `.fetch_*` or
# `.compare_exchange[_weak]` (each of a compare-and-swap's two orderings is
# its own site), or a non-literal ordering argument that resolves to a
# stronger one: a call that names one among its arguments, as a seeded
# defect's `order(B::FAULTS.flag, Release)` does (see `shmsg::sync::Faults`),
# a helper function of the same file whose body names one, or a local bound
# by `let NAME = ...` to one.
# Skipped: `#[cfg(test)]` items, the branch of an `if B::FAULTS.x`
# (`if !B::FAULTS.x`: its `else`) that holds a seeded defect, and a
# function that holds one (`fn seeded_*`, called from such a branch). Fences are
# not sites (a `Relaxed` fence does not exist; the seeded `no_waiter_fence`
# removes one). The scan is line-based: an operation and its arguments are
# on one line, as rustfmt writes them here.
#
# Then, one site at a time: the FILE is copied aside, that one ordering is
# rewritten to `Relaxed`, the loom targets are rebuilt (`cargo test
# --release --no-run`) and their test binaries run, in release,
# in order, stopping at the first failure; the FILE is restored (also on
# Ctrl-C or any error: a trap). A site is
#   killed     some selected test failed (the first failing target and test
#              are recorded),
#   survived   every selected target passed,
#   timeout    the targets did not finish within MUTATE_TIMEOUT seconds,
#   no-build   the mutant did not compile.
# A summary table is printed at the end and written to MUTATE_TABLE.
#
# Environment:
#   MUTATE_TESTS      loom targets, in the order they run (default:
#                     "loom_spsc loom_wait loom_faults")
#   MUTATE_TEST_ARGS  arguments for every test binary (default:
#                     "--skip seeded_": the seeded-defect tests expect a
#                     failure and run a different program)
#   MUTATE_TIMEOUT    seconds for all targets of one mutant, the build not
#                     counted (default 300)
#   MUTATE_TABLE      where the table goes (default target/mutants/table.md)
#   MUTATE_LOG_DIR    one log per mutant (default target/mutants)
#   MUTATE_ONLY       run only the sites whose FILE:LINE matches this regex
#   MUTATE_NO_BASELINE=1  skip the unmutated run (which must pass)
# The models' own knobs (LOOM_MAX_PREEMPTIONS, SHMSG_LOOM_*_PREEMPTIONS)
# apply as usual; the defaults are the quick tier's bounds.
#
# Per file, tests that cannot run the mutated code are filtered out:
# `src/shm/spsc/*.rs` skips loom_faults' `mpmc_*` scenario (the
# multi-producer ring shares `wait.rs` and `attach.rs`, not `spsc/`), and
# `src/shm/mpmc/*.rs` its `spsc_*` scenarios. And
# per file, sites the models cannot reach are not mutated (`--list` still
# prints them): in `src/shm/attach.rs` only the epoch test both rings use
# (`detached`) is, not the attachment to a region's ring, which runs over
# a real mapping only. Only one cargo runs at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

list_only=0
if [[ "${1:-}" == "--list" ]]; then
    list_only=1
    shift
fi
files=("$@")
if ((${#files[@]} == 0)); then
    files=(src/shm/spsc/mod.rs src/shm/spsc/producer.rs src/shm/spsc/consumer.rs
        src/shm/attach.rs src/shm/wait.rs)
fi
read -r -a tests <<<"${MUTATE_TESTS:-loom_spsc loom_wait loom_faults}"
read -r -a common_args <<<"${MUTATE_TEST_ARGS:---skip seeded_}"
limit="${MUTATE_TIMEOUT:-300}"
log_dir="${MUTATE_LOG_DIR:-target/mutants}"
table="${MUTATE_TABLE:-$log_dir/table.md}"
only="${MUTATE_ONLY:-}"

# Extra test-binary arguments for a file's mutants.
file_args() {
    case "$1" in
    */spsc/*.rs | */spsc.rs) echo "--skip mpmc" ;;
    */mpmc/*.rs) echo "--skip spsc_" ;;
    *) echo "" ;;
    esac
}

# A regex a site's operation must match to be mutated in this file (empty:
# every site): the sites the models can reach.
file_sites() {
    case "$1" in
    */shm/attach.rs) echo 'Control::epoch' ;;
    *) echo "" ;;
    esac
}

# Prints one line per site: LINE<TAB>COLUMN<TAB>LENGTH<TAB>ARGUMENT<TAB>WHAT
# (COLUMN 0-based, in bytes; WHAT: the operation, which argument).
scan() {
    perl -e '
use strict; use warnings;
my $file = shift;
open my $fh, "<", $file or die "$file: $!";
my @lines = <$fh>;
close $fh;
my $strong = qr/^(?:(?:std::sync::atomic::)?Ordering::)?(?:Acquire|Release|AcqRel|SeqCst)$/;
my $relaxed = qr/^(?:(?:std::sync::atomic::)?Ordering::)?Relaxed$/;
my %which = (load => [0], store => [1], swap => [1], compare_exchange => [2, 3],
    compare_exchange_weak => [2, 3], fetch_update => [0, 1]);
my $text = join "", @lines;

# Whether an ordering expression (not a literal) resolves to a strong one.
sub resolves_strong {
    my ($expr, $lineno) = @_;
    if ($expr =~ /^([A-Za-z_]\w*)(?:::<[^>]*>)?\((.*)\)$/s) {
        my ($name, $args) = ($1, $2);
        return $1 if $args =~ /\b(Acquire|Release|AcqRel|SeqCst)\b/;
        # A helper function of this file: does its body name one?
        if ($text =~ /\bfn\s+$name\b[^{]*\{(.*?)\n\}/s) {
            my $body = $1;
            return $body =~ /\b(Acquire|Release|AcqRel|SeqCst)\b/ ? $1 : 0;
        }
        return 0;
    }
    if ($expr =~ /^[a-z_]\w*$/) {
        # A local: the nearest `let NAME = ...;` above, in this function.
        for (my $i = $lineno - 1; $i >= 0 && $i > $lineno - 40; $i--) {
            if ($lines[$i] =~ /\blet\s+(?:mut\s+)?$expr\b\s*(?::[^=]*)?=/) {
                my $stmt = "";
                for (my $j = $i; $j < @lines; $j++) {
                    $stmt .= $lines[$j];
                    last if $lines[$j] =~ /;\s*(?:\/\/.*)?$/;
                }
                return $stmt =~ /\b(Acquire|Release|AcqRel|SeqCst)\b/ ? $1 : 0;
            }
            last if $lines[$i] =~ /^\s*(?:pub(?:\([^)]*\))?\s+)?fn\s/;
        }
    }
    return 0;
}

# Brace depth, per character, outside comments and literals; regions to
# skip as [depth at which they end].
my $depth = 0;
my @skip;            # stack of depths: inside while $depth > top
my $pending_cfg = 0; # saw #[cfg(test)], skip the next braced item
my $pending_if;      # "then" or "else": an `if` on FAULTS opened on this line
my $want_else;       # a FAULTS `if` whose else branch is the seeded one
for (my $n = 0; $n < @lines; $n++) {
    my $line = $lines[$n];
    $pending_cfg = 1 if $line =~ /^\s*#\[cfg\(test\)\]/;
    # A function that holds a seeded defect (`fn seeded_*`), skipped whole.
    $pending_cfg = 1 if $line =~ /^\s*(?:pub(?:\([^)]*\))?\s+)?fn\s+seeded_/;
    my $code = $line;
    # Blank out string and char literals and comments, keeping columns.
    $code =~ s{"(?:[^"\\]|\\.)*"}{"" . (" " x (length($&) - 2)) . ""}ge;
    $code =~ s{\x27(?:[^\x27\\]|\\.)\x27}{" " x length($&)}ge;
    $code =~ s{//.*$}{" " x length($&)}e;
    my $cond = undef;
    if ($code =~ /\bif\s+(!?)\s*(?:\w+::)*FAULTS\.\w+\s*\{\s*$/) {
        $cond = $1 eq "!" ? "else" : "then";
    }
    my $closed_to_else = 0;
    my @col_skip;  # per column: inside a skipped region?
    for (my $c = 0; $c < length $code; $c++) {
        my $ch = substr $code, $c, 1;
        if ($ch eq "{") {
            if ($pending_cfg) { push @skip, $depth; $pending_cfg = 0; }
            elsif (defined $cond && $c == rindex($code, "{") && $cond eq "then") { push @skip, $depth; }
            elsif (defined $want_else && $want_else == $depth && substr($code, 0, $c) =~ /\belse\s*$/) {
                push @skip, $depth; undef $want_else;
            }
            $depth++;
        } elsif ($ch eq "}") {
            $depth--;
            pop @skip if @skip && $depth <= $skip[-1];
        }
        $col_skip[$c] = @skip ? 1 : 0;
    }
    if (defined $cond && $cond eq "else") { $want_else = $depth - 1; }
    elsif (defined $want_else && $depth <= $want_else && $code !~ /\}\s*$/) { undef $want_else; }

    while ($code =~ /\.(load|store|swap|fetch_[a-z_]+|compare_exchange(?:_weak)?)\(/g) {
        my ($op, $open) = ($1, pos($code) - 1);
        # The arguments, split at top-level commas.
        my ($level, $start, @args) = (0, $open + 1);
        my $end;
        for (my $c = $open; $c < length $code; $c++) {
            my $ch = substr $code, $c, 1;
            if ($ch eq "(" || $ch eq "[") { $level++; }
            elsif ($ch eq ")" || $ch eq "]") {
                $level--;
                if ($level == 0) { push @args, [$start, $c]; $end = $c; last; }
            } elsif ($ch eq "," && $level == 1) { push @args, [$start, $c]; $start = $c + 1; }
        }
        next unless defined $end;
        my $positions = $which{$op} // ($op =~ /^fetch_/ ? [1] : []);
        next if $col_skip[$open];
        # The operation with its receiver chain (lines that start with `.`).
        my $recv = substr($line, 0, $open);
        $recv =~ s/^\s+//;
        for (my $k = $n; $k > 0 && $lines[$k] =~ /^\s*\./; $k--) {
            (my $prev = $lines[$k - 1]) =~ s/^\s+|\s+$//g;
            $recv = $prev . $recv;
        }
        # Keep only the receiver expression: cut at an unmatched `(` or at
        # a space, `=` or `!` outside parentheses.
        my $lvl = 0;
        for (my $c = length($recv) - 1; $c >= 0; $c--) {
            my $ch = substr $recv, $c, 1;
            if ($ch eq ")") { $lvl++; }
            elsif ($ch eq "(") { $lvl--; }
            if ($lvl < 0 || ($lvl == 0 && $ch =~ /[\s=!&|]/)) { $recv = substr $recv, $c + 1; last; }
        }
        my $optext = $recv . substr($line, $open, $end - $open + 1);
        $optext =~ s/\s+/ /g;
        for my $p (@$positions) {
            next unless $p < @args;
            my ($s, $e) = @{$args[$p]};
            my $raw = substr $line, $s, $e - $s;
            (my $arg = $raw) =~ s/^\s+|\s+$//g;
            my $col = $s + (length($raw) - length($raw =~ s/^\s+//r));
            next if $arg =~ $relaxed;
            my $shown = $arg;
            if ($arg !~ $strong) {
                my $resolved = resolves_strong($arg, $n) or next;
                $shown = "$arg = $resolved";
            }
            my $role = @$positions == 2 ? ($p == $positions->[0] ? "success " : "failure ") : "";
            print join("\t", $n + 1, $col, length $arg, $arg, "$optext [$role$shown]"), "\n";
        }
    }
}
' "$1"
}

if ((list_only)); then
    for file in "${files[@]}"; do
        scan "$file" | while IFS=$'\t' read -r line _ _ _ what; do
            echo "$file:$line $what"
        done
    done
    exit 0
fi

mkdir -p "$log_dir"
work="$(mktemp -d)"
current=""
restore() {
    if [[ -n "$current" && -f "$work/original" ]]; then
        # A fresh mtime, so that cargo rebuilds what the mutant left built.
        cp "$work/original" "$current"
        current=""
    fi
}
cleanup() {
    restore
    rm -rf "$work"
}
trap cleanup EXIT
# A Ctrl-C reaches cargo and rustc too, which may exit as if they had
# failed: the mark makes the current mutant count as interrupted.
interrupted() {
    touch "$work/interrupted"
    if [[ -z "$BASH_SUBSHELL" || "$BASH_SUBSHELL" == 0 ]]; then
        echo "== interrupted; ${current:-nothing} restored" >&2
        exit 130
    fi
}
trap interrupted INT TERM

build_args=()
for t in "${tests[@]}"; do
    build_args+=(--test "$t")
done

# Builds, then runs the targets; prints "passed", "killed TARGET TEST",
# "timeout TARGET" or "no-build" and logs to $1.
run_targets() {
    local log="$1" extra="$2" deadline t left status failed
    trap 'touch "$work/interrupted"; exit 130' INT TERM
    local -A exe=()
    local name path
    status=0
    cargo test --release --no-run "${build_args[@]}" --message-format=json \
        >"$work/build.json" 2>"$log" || status=$?
    if ((status == 130 || status == 143)); then
        echo "interrupted"
        return
    elif ((status != 0)); then
        echo "no-build"
        return
    fi
    # The test binaries cargo built, run directly so that the time limit
    # and a Ctrl-C reach the one process that runs the model.
    while read -r name path; do
        exe[$name]="$path"
    done < <(perl -ne 'print "$1 $2\n" if /"target":\{[^}]*"name":"([^"]+)".*"executable":"([^"]+)"/' "$work/build.json")
    deadline=$((SECONDS + limit))
    for t in "${tests[@]}"; do
        left=$((deadline - SECONDS))
        if ((left <= 0)); then
            echo "timeout $t"
            return
        fi
        status=0
        echo "== $t ${common_args[*]} $extra" >>"$log"
        # shellcheck disable=SC2086 # $extra is a list of arguments
        timeout --foreground --kill-after=10 "$left" "${exe[$t]}" \
            "${common_args[@]}" $extra >>"$log" 2>&1 || status=$?
        if ((status == 130 || status == 143)); then
            echo "interrupted"
            return
        elif ((status == 124 || status == 137)); then
            echo "timeout $t"
            return
        elif ((status != 0)); then
            failed="$(grep -m1 -oE '^test [^ ]+ \.\.\. FAILED' "$log" |
                awk '{print $2}')"
            echo "killed $t ${failed:-(aborted)}"
            return
        fi
    done
    echo "passed"
}

started=$SECONDS
if [[ "${MUTATE_NO_BASELINE:-0}" != 1 ]]; then
    echo "== baseline: ${tests[*]}, unmutated"
    result="$(run_targets "$log_dir/baseline.log" "")"
    [[ -e "$work/interrupted" ]] && exit 130
    if [[ "$result" != passed ]]; then
        echo "== the unmutated models do not pass ($result); see $log_dir/baseline.log" >&2
        exit 1
    fi
fi

rows=()
for file in "${files[@]}"; do
    mapfile -t sites < <(scan "$file")
    echo "== $file: ${#sites[@]} sites"
    extra="$(file_args "$file")"
    reachable="$(file_sites "$file")"
    for site in "${sites[@]}"; do
        IFS=$'\t' read -r line col len arg what <<<"$site"
        if [[ -n "$only" && ! "$file:$line" =~ $only ]]; then
            continue
        fi
        if [[ -n "$reachable" && ! "$what" =~ $reachable ]]; then
            continue
        fi
        cp -p "$file" "$work/original"
        current="$file"
        perl -i -pe "if (\$. == $line) { substr(\$_, $col, $len) eq q{$arg} or die 'site moved'; substr(\$_, $col, $len) = 'Relaxed' }" "$file"
        name="$(basename "$file" .rs)-$line-$col"
        t0=$SECONDS
        echo "-- $file:$line $what -> Relaxed"
        result="$(run_targets "$log_dir/$name.log" "$extra")"
        restore
        if [[ "$result" == interrupted || -e "$work/interrupted" ]]; then
            echo "== interrupted; $file restored" >&2
            exit 130
        fi
        secs=$((SECONDS - t0))
        case "$result" in
        passed) verdict="survived" ;;
        killed*) verdict="killed (${result#killed })" ;;
        *) verdict="$result" ;;
        esac
        echo "   $verdict, ${secs} s"
        rows+=("| \`$file:$line\` | \`$what\` | $verdict | $secs |")
    done
done

total=$((SECONDS - started))
{
    echo "| site | operation [ordering made \`Relaxed\`] | result | s |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Targets: ${tests[*]} (${common_args[*]}); $total s in all."
} >"$table"
echo "== kill table ($table)"
cat "$table"
