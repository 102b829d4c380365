#!/bin/sh
# fuzz.sh: runs fuzz targets of the one libFuzzer program (build/fuzz/fti-fuzz, see
# tests/fuzz/driver.c) for a bounded time each, several at once, after replaying each target's
# regression inputs. Exits non-zero on any finding (crash, leak, timeout, out-of-memory,
# sanitizer report, failed invariant) or failed replay; the finding is left in build/fuzz/NAME/.
#
#   tools/fuzz.sh [TARGET...]          (default: every target the program holds)
#
# Environment: FUZZ_BIN (build/fuzz/fti-fuzz), FUZZ_SECONDS (30 per target), FUZZ_JOBS (targets
# run at once, 2), FUZZ_MAXLEN (largest input, 65536), FUZZ_RSS_MB (2048), FUZZ_TIMEOUT (per
# input, 10 s), FUZZ_TMPDIR (scratch files of the path-based targets), FUZZ_NICE (nice level, 0),
# FUZZ_DIR (build/fuzz: corpora, logs, findings), FUZZ_EXTRA (more libFuzzer flags),
# FUZZ_CPU_TIMEOUT (per input, in CPU seconds: tests/fuzz/driver.c; default FUZZ_TIMEOUT).
#
# Pausing a run: libFuzzer's -timeout (FUZZ_TIMEOUT) counts WALL time, so a fuzzer stopped with
# SIGSTOP (kill -STOP, pkill -STOP) for longer than FUZZ_TIMEOUT reports the input it was on as
# a timeout when continued: a false finding. Runs that may be paused set FUZZ_TIMEOUT=0 (no wall
# limit) or a large one (3600): FUZZ_CPU_TIMEOUT still bounds every input, in CPU seconds, which
# do not pass while the process is stopped (nor while a loaded machine runs other work). Pausing
# runs started with the default wall limit is unsupported.
# ASAN_OPTIONS defaults to a 16 MB quarantine (use-after-free is still caught within the last
# 16 MB freed, which is many executions of any target here) without the 0xbe fill of fresh
# allocations: the fuzzer's RSS stays near 70 MB instead of 400 and each execution costs ~15% less.
# The result lines are also in $FUZZ_DIR/summary.txt. Each run appends "DATE TARGET EXECUTIONS SECONDSs" to $FUZZ_DIR/executions.log
# (make fuzz-execs sums it).
set -u
BIN=${FUZZ_BIN:-build/fuzz/fti-fuzz}
SECS=${FUZZ_SECONDS:-30}
JOBS=${FUZZ_JOBS:-2}
MAXLEN=${FUZZ_MAXLEN:-65536}
RSS=${FUZZ_RSS_MB:-2048}
TMO=${FUZZ_TIMEOUT:-10}
CPU_TMO=${FUZZ_CPU_TIMEOUT:-$TMO}
[ "$CPU_TMO" -gt 0 ] || CPU_TMO=10
export FTI_FUZZ_CPU_TIMEOUT=$CPU_TMO
NICE=${FUZZ_NICE:-0}
DIR=${FUZZ_DIR:-build/fuzz}
EXTRA=${FUZZ_EXTRA:-}
if [ -z "${FUZZ_TMPDIR:-}" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then FUZZ_TMPDIR=/dev/shm; else FUZZ_TMPDIR=/tmp; fi
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:max_malloc_fill_size=0}
[ -x "$BIN" ] || { echo "fuzz: $BIN not built (make fuzz-build)"; exit 2; }
targets="$*"
[ -n "$targets" ] || targets=$(FTI_FUZZ_TARGET=list "$BIN" 2>/dev/null)
[ -n "$targets" ] || { echo "fuzz: $BIN lists no targets"; exit 2; }

# one target: replay, then fuzz; prints one line; returns non-zero on a finding
one() {
    t=$1
    d="$DIR/$t"
    mkdir -p "$d/corpus" || return 1
    reg=tests/fuzz/regress/$t
    seeds=tests/fuzz/corpus/$t
    if [ -d "$reg" ] && ls "$reg"/* >/dev/null 2>&1; then
        if ! FTI_FUZZ_TARGET=$t nice -n "$NICE" "$BIN" -rss_limit_mb="$RSS" -timeout="$TMO" \
            "$reg"/* > "$d/replay.log" 2>&1; then
            echo "fuzz $t: a regression input FAILS (log: $d/replay.log)" | tee -a "$DIR/summary.txt"
            tail -n 30 "$d/replay.log"
            return 1
        fi
    fi
    [ -d "$seeds" ] || seeds=
    [ -d "$reg" ] || reg=
    t0=$(date +%s)
    tmp="$FUZZ_TMPDIR/fti-fuzz-run.$$.$t"
    mkdir -p "$tmp" || return 1
    # shellcheck disable=SC2086
    if ! FTI_FUZZ_TARGET=$t TMPDIR=$tmp nice -n "$NICE" "$BIN" \
        -max_total_time="$SECS" -rss_limit_mb="$RSS" -timeout="$TMO" -max_len="$MAXLEN" \
        -artifact_prefix="$d/" -print_final_stats=1 $EXTRA "$d/corpus" $seeds $reg \
        > "$d/fuzz.log" 2>&1; then
        rm -rf "$tmp"
        echo "fuzz $t: FINDING after $(( $(date +%s) - t0 )) s (log: $d/fuzz.log; input: $d/crash-*, leak-*, timeout-*, oom-*)" | tee -a "$DIR/summary.txt"
        grep -m1 -E "ERROR|runtime error|invariant failed|==[0-9]+==" "$d/fuzz.log"
        tail -n 30 "$d/fuzz.log"
        return 1
    fi
    rm -rf "$tmp"
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/fuzz.log" | head -n 1)
    s=$(( $(date +%s) - t0 ))
    [ "$s" -gt 0 ] || s=1
    echo "fuzz $t: ${n:-0} executions in ${s} s ($(( ${n:-0} / s ))/s), no findings" | tee -a "$DIR/summary.txt"
    echo "$(date -u +%FT%TZ) $t ${n:-0} ${SECS}s" >> "$DIR/executions.log"
    return 0
}

# JOBS lanes, the targets dealt round-robin; each lane runs its targets one after another
mkdir -p "$DIR"
: > "$DIR/summary.txt"
status="$DIR/.lanes.$$"
rm -rf "$status" && mkdir -p "$status"
lane=0
while [ "$lane" -lt "$JOBS" ]; do
    (
        i=0 rc=0
        for t in $targets; do
            if [ $((i % JOBS)) -eq "$lane" ]; then one "$t" || rc=1; fi
            i=$((i + 1))
        done
        echo $rc > "$status/$lane"
    ) &
    lane=$((lane + 1))
done
wait
fails=0
for f in "$status"/*; do [ "$(cat "$f")" = 0 ] || fails=$((fails + 1)); done
rm -rf "$status"
if [ "$fails" -ne 0 ]; then echo "fuzz: FINDINGS (see above)"; exit 1; fi
echo "fuzz: $(echo $targets | wc -w) targets, ${SECS} s each, no findings"
