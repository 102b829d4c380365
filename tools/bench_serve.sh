#!/bin/sh
# bench_serve.sh: `make bench-serve`. fti-serve under closed-loop load on loopback (fti-loadgen):
# aggregate completion tokens/s and p50/p99 latency at 1, 4, 16 and 64 concurrent clients, with
#   - the stories15M shape in Q8_0 (random weights, vocab 32000; made by bench_infer make), and
#   - the echo generator with a simulated 2 ms step (the scheduler alone: continuous batching).
# Peer: fti-infer run sequentially on the same model and prompt (one request after another, which
# is what a server without batching can do); llama.cpp's server is not in node-llama-cpp's build.
# Also the server's RSS before and after the runs (stable = no leak under load).
#
#   BENCH_SERVE_SECONDS=5 (per case)  BENCH_SERVE_TOKENS=32  BENCH_SERVE_CONC="1 4 16 64"
#   BENCH_SERVE_THREADS=2
# Prints a table and lines: BENCH serve <case> ours=<x> peer=<y> ratio=<r> unit=<u> (r > 1: better).
set -u
B=${B:-build}
DUR=${BENCH_SERVE_SECONDS:-5}
TOK=${BENCH_SERVE_TOKENS:-32}
CONCS=${BENCH_SERVE_CONC:-"1 4 16 64"}
T=${BENCH_SERVE_THREADS:-2}
TMP=${TMPDIR:-/tmp}/fti-bench-serve.$$
mkdir -p "$TMP"
SPID=
cleanup() { [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

start_server() { # args...: starts fti-serve, sets SPID and PORT
    rm -f "$TMP/port"
    "$B/fti-serve" --port 0 --port-file "$TMP/port" --log "$TMP/requests.jsonl" --quiet \
        --max-batch 64 --max-queue 256 --threads "$T" "$@" &
    SPID=$!
    i=0
    while [ ! -s "$TMP/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    PORT=$(cat "$TMP/port" 2>/dev/null)
    [ -n "$PORT" ] || { echo "bench-serve: fti-serve did not start"; exit 1; }
}
stop_server() {
    kill -TERM "$SPID"; wait "$SPID"; rc=$?; SPID=
    [ $rc -eq 0 ] || echo "bench-serve: fti-serve exited $rc after SIGTERM (expected 0)"
}

"$B/bench_infer" make stories15M q8_0 "$TMP/model.gguf" > /dev/null || { echo "bench-serve: cannot make the model"; exit 1; }

# --- peer: fti-infer one request after another ------------------------------------------------
K=4
t0=$(date +%s.%N)
ptok=0
for i in $(seq 1 $K); do
    n=$("$B/fti-infer" --model "$TMP/model.gguf" --prompt "The cynic" -n "$TOK" --temp 0.8 --seed "$i" \
        --no-rag --threads "$T" --stats 2>&1 >/dev/null | sed -n 's/.*generated \([0-9]*\) tokens.*/\1/p')
    ptok=$((ptok + ${n:-0}))
done
t1=$(date +%s.%N)
peer_tps=$(echo "$ptok $t0 $t1" | awk '{ printf "%.2f", $1 / ($3 - $2) }')
peer_lat=$(echo "$K $t0 $t1" | awk '{ printf "%.1f", 1000 * ($3 - $2) / $1 }')
echo "peer: fti-infer sequential, $K requests of $TOK tokens: $peer_tps tokens/s, $peer_lat ms per request"

printf '\n%-28s %6s %10s %10s %10s %8s\n' "case" "conc" "tokens/s" "p50 ms" "p99 ms" "errors"
for mode in model echo; do
    if [ $mode = model ]; then start_server --model "$TMP/model.gguf" --rag-k 0
    else start_server --echo --step-us 2000; fi
    rss0=$(rss_kb "$SPID")
    base=
    for c in $CONCS; do
        r=$("$B/fti-loadgen" --port "$PORT" -c "$c" -d "$DUR" --max-tokens "$TOK" | grep '^RESULT')
        tps=$(field "$r" tps); p50=$(field "$r" p50_ms); p99=$(field "$r" p99_ms); err=$(field "$r" errors)
        [ -n "$base" ] || base=$tps
        printf '%-28s %6s %10s %10s %10s %8s\n' "$mode stories15M-q8_0" "$c" "$tps" "$p50" "$p99" "$err"
        if [ $mode = model ]; then
            echo "BENCH serve tps-c$c-t$T ours=$tps peer=$peer_tps ratio=$(echo "$tps $peer_tps" | awk '{ printf "%.2f", $1 / $2 }') unit=tok/s"
        fi
        echo "BENCH serve $mode-scaling-c$c-t$T ours=$tps peer=$base ratio=$(echo "$tps $base" | awk '{ printf "%.2f", $1 / $2 }') unit=tok/s-vs-1-client"
    done
    rss1=$(rss_kb "$SPID")
    echo "$mode: server RSS $rss0 kB before, $rss1 kB after the runs"
    stop_server
done
