#!/bin/sh
# bench_serve.sh: `make bench-serve`. fti-serve under closed-loop load on loopback (fti-loadgen):
# aggregate completion tokens/s and p50/p99 latency at 1, 4, 16 and 64 concurrent clients, with
#   - the stories15M shape in Q8_0 (random weights, vocab 32000; made by bench_infer make), and
#   - the echo generator with a simulated 2 ms step (the scheduler alone: continuous batching).
# Peer, the same load on the same GGUF file: llama.cpp via node-llama-cpp 3.21.1 behind a node
# http server (tools/bench_serve_peer.mjs; node-llama-cpp ships llama.cpp as a node addon, not its
# llama-server program), one llama.cpp sequence per concurrent request, batched by
# node-llama-cpp. Without node or the package: fti-infer run sequentially (one request after
# another, what a server without batching can do).
# Also the server's RSS before and after the runs.
#
# Soak (SOAK=60, or BENCH_SERVE_SOAK=60): instead of the table, the model server under
# SOAK_CONC clients (default 16: half plain, half streaming) for SOAK seconds; its RSS is
# sampled every second and start/end/max and the least-squares slope are reported (also over
# the second half, after warm-up). Exit status 1 when the second half grows by more than
# SOAK_MAX_GROWTH_KB (default 2048) or a request failed. SOAK_MODE=echo soaks the HTTP layer
# instead (echo generator, 2 ms per step: thousands of requests per second, logs rotating at
# 1 MiB).
#
#   BENCH_SERVE_SECONDS=5 (per case)  BENCH_SERVE_TOKENS=32  BENCH_SERVE_CONC="1 4 16 64"
#   BENCH_SERVE_THREADS=2  BENCH_SERVE_PEER=auto|node|infer  FTI_BENCH_CACHE=$HOME/.cache/fti-bench
# Prints a table and lines: BENCH serve <case> ours=<x> peer=<y> ratio=<r> unit=<u> (r > 1: fti
# better; for latencies r = peer / ours).
set -u
B=${B:-build}
DUR=${BENCH_SERVE_SECONDS:-5}
TOK=${BENCH_SERVE_TOKENS:-32}
CONCS=${BENCH_SERVE_CONC:-"1 4 16 64"}
T=${BENCH_SERVE_THREADS:-2}
PEER=${BENCH_SERVE_PEER:-auto}
SOAK=${SOAK:-${BENCH_SERVE_SOAK:-0}}
SOAK_CONC=${SOAK_CONC:-16}
SOAK_MODE=${SOAK_MODE:-model}
SOAK_MAX_GROWTH_KB=${SOAK_MAX_GROWTH_KB:-2048}
CACHE=${FTI_BENCH_CACHE:-$HOME/.cache/fti-bench}
NODE_MODULES=$CACHE/infer/node_modules
MAX_CONNS=256
TMP=${TMPDIR:-/tmp}/fti-bench-serve.$$
mkdir -p "$TMP"
SPID=
NPID=
cleanup() {
    [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null
    [ -n "$NPID" ] && kill -TERM "$NPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "nan" }'; }

wait_port() { # wait_port FILE PID: prints the port once FILE is written
    i=0
    while [ ! -s "$1" ] && [ $i -lt 600 ] && kill -0 "$2" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
    cat "$1" 2>/dev/null
}
start_server() { # args...: starts fti-serve, sets SPID and PORT
    rm -f "$TMP/port"
    "$B/fti-serve" --port 0 --port-file "$TMP/port" --log "$TMP/requests.jsonl" --quiet \
        --max-batch 64 --max-queue 256 --max-conns $MAX_CONNS --threads "$T" "$@" &
    SPID=$!
    PORT=$(wait_port "$TMP/port" "$SPID")
    [ -n "$PORT" ] || { echo "bench-serve: fti-serve did not start"; exit 1; }
}
stop_server() {
    kill -TERM "$SPID"; wait "$SPID"; rc=$?; SPID=
    [ $rc -eq 0 ] || echo "bench-serve: fti-serve exited $rc after SIGTERM (expected 0)"
}
load() { # load PORT CONC [extra loadgen args]: prints the RESULT line
    p=$1; c=$2; shift 2
    "$B/fti-loadgen" --port "$p" -c "$c" -d "$DUR" --max-tokens "$TOK" "$@" | grep '^RESULT'
}

"$B/bench_infer" make stories15M q8_0 "$TMP/model.gguf" > /dev/null || { echo "bench-serve: cannot make the model"; exit 1; }

# --- soak: RSS under a long run -----------------------------------------------------------------
if [ "$SOAK" -gt 0 ] 2>/dev/null; then
    if [ "$SOAK_MODE" = echo ]; then start_server --echo --step-us 2000 --log-max-mb 1
    else start_server --model "$TMP/model.gguf" --rag-k 0 --log-max-mb 1; fi
    half=$((SOAK_CONC / 2)); [ $half -ge 1 ] || half=1
    rest=$((SOAK_CONC - half)); [ $rest -ge 1 ] || rest=1
    "$B/fti-loadgen" --port "$PORT" -c "$half" -d "$SOAK" --max-tokens "$TOK" > "$TMP/soak1.txt" &
    L1=$!
    "$B/fti-loadgen" --port "$PORT" -c "$rest" -d "$SOAK" --max-tokens "$TOK" --stream > "$TMP/soak2.txt" &
    L2=$!
    s=0
    : > "$TMP/rss.txt"
    while kill -0 $L1 2>/dev/null || kill -0 $L2 2>/dev/null; do
        echo "$s $(rss_kb "$SPID")" >> "$TMP/rss.txt"
        sleep 1
        s=$((s + 1))
    done
    wait $L1; e1=$?
    wait $L2; e2=$?
    r1=$(grep '^RESULT' "$TMP/soak1.txt"); r2=$(grep '^RESULT' "$TMP/soak2.txt")
    stop_server
    echo "soak: $SOAK s, $half plain + $rest streaming clients of $TOK tokens, $([ "$SOAK_MODE" = echo ] && echo "echo generator" || echo stories15M-q8_0), $T threads"
    echo "  plain:     $r1"
    echo "  streaming: $r2"
    out=$(awk -v maxg="$SOAK_MAX_GROWTH_KB" '
        function slope(a, b,   i, n, sx, sy, sxx, sxy) {
            n = 0; sx = sy = sxx = sxy = 0
            for (i = a; i <= b; i++) { n++; sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i] }
            if (n < 2 || n * sxx - sx * sx == 0) return 0
            return (n * sxy - sx * sy) / (n * sxx - sx * sx)
        }
        { t[NR] = $1; r[NR] = $2; if ($2 > mx) mx = $2 }
        END {
            h = int(NR / 2) + 1
            printf "  RSS kB: start %d, end %d, max %d; slope %.1f kB/min overall, %.1f kB/min over the second half (%d samples)\n",
                   r[1], r[NR], mx, 60 * slope(1, NR), 60 * slope(h, NR), NR
            g = r[NR] - r[h]
            printf "  second-half growth %d kB (limit %d kB): %s\n", g, maxg, g <= maxg ? "stable" : "GROWING"
            printf "BENCH serve soak-%s-rss-growth-t%s ours=%d peer=%d ratio=%.2f unit=kB-second-half\n", M, T, g, maxg, (g > 0 ? maxg / g : 99)
            exit g <= maxg ? 0 : 1
        }' T="$T" M="$SOAK_MODE" "$TMP/rss.txt")
    grow=$?
    echo "$out"
    errs=$(( $(field "$r1" errors) + $(field "$r2" errors) ))
    [ $e1 -eq 0 ] && [ $e2 -eq 0 ] && [ $errs -eq 0 ] || { echo "soak: $errs failed requests"; exit 1; }
    exit $grow
fi

# --- the peer -------------------------------------------------------------------------------
if [ "$PEER" = auto ] || [ "$PEER" = node ]; then
    if command -v node > /dev/null 2>&1 && [ ! -d "$NODE_MODULES/node-llama-cpp" ] && command -v npm > /dev/null 2>&1; then
        echo "bench-serve: installing node-llama-cpp@3.21.1 into $CACHE/infer" >&2
        mkdir -p "$CACHE/infer"
        (cd "$CACHE/infer" && { [ -f package.json ] || echo '{"name":"fti-bench-infer","private":true}' > package.json; } &&
         npm install --no-audit --no-fund node-llama-cpp@3.21.1 > /dev/null 2>&1) || true
    fi
    if command -v node > /dev/null 2>&1 && [ -d "$NODE_MODULES/node-llama-cpp" ]; then PEER=node
    elif [ "$PEER" = node ]; then echo "bench-serve: node-llama-cpp not available"; exit 1
    else PEER=infer; fi
fi
PEER_PORT=
if [ $PEER = node ]; then
    peer_name="llama.cpp via node-llama-cpp 3.21.1, node http (tools/bench_serve_peer.mjs)"
    maxc=1; for c in $CONCS; do [ "$c" -gt $maxc ] && maxc=$c; done
    rm -f "$TMP/pport"
    FTI_NODE_MODULES=$NODE_MODULES node tools/bench_serve_peer.mjs "$TMP/model.gguf" --port-file "$TMP/pport" \
        --threads "$T" --sequences "$maxc" --max-queue 256 > "$TMP/peer.log" 2>&1 &
    NPID=$!
    PEER_PORT=$(wait_port "$TMP/pport" "$NPID")
    [ -n "$PEER_PORT" ] || { echo "bench-serve: the node peer did not start: $(tail -3 "$TMP/peer.log")"; exit 1; }
else
    peer_name="fti-infer run sequentially"
    K=4
    t0=$(date +%s.%N)
    ptok=0
    for i in $(seq 1 $K); do
        n=$("$B/fti-infer" --model "$TMP/model.gguf" --prompt "The cynic" -n "$TOK" --temp 0.8 --seed "$i" \
            --no-rag --threads "$T" --stats 2>&1 >/dev/null | sed -n 's/.*generated \([0-9]*\) tokens.*/\1/p')
        ptok=$((ptok + ${n:-0}))
    done
    t1=$(date +%s.%N)
    seq_tps=$(echo "$ptok $t0 $t1" | awk '{ printf "%.2f", $1 / ($3 - $2) }')
    seq_lat=$(echo "$K $t0 $t1" | awk '{ printf "%.1f", 1000 * ($3 - $2) / $1 }')
    echo "peer: fti-infer sequential, $K requests of $TOK tokens: $seq_tps tokens/s, $seq_lat ms per request"
fi
echo "bench-serve: stories15M shape, Q8_0, $TOK completion tokens per request, $DUR s per case, $T threads"
echo "peer: $peer_name"

printf '\n%-28s %6s %10s %10s %10s %8s\n' "case" "conc" "tokens/s" "p50 ms" "p99 ms" "errors"
fail=0
for mode in model echo; do
    if [ $mode = model ]; then start_server --model "$TMP/model.gguf" --rag-k 0
    else start_server --echo --step-us 2000; fi
    rss0=$(rss_kb "$SPID")
    base=
    for c in $CONCS; do
        r=$(load "$PORT" "$c")
        tps=$(field "$r" tps); p50=$(field "$r" p50_ms); p99=$(field "$r" p99_ms); err=$(field "$r" errors)
        [ -n "$base" ] || base=$tps
        label="fti stories15M-q8_0"; [ $mode = echo ] && label="fti echo (2 ms per step)"
        printf '%-28s %6s %10s %10s %10s %8s\n' "$label" "$c" "$tps" "$p50" "$p99" "$err"
        [ "${err:-1}" -eq 0 ] || [ "$c" -ge $MAX_CONNS ] || { fail=1; echo "bench-serve: $err errors at $c clients (below the cap)"; }
        if [ $mode = model ]; then
            if [ $PEER = node ]; then
                pr=$(load "$PEER_PORT" "$c")
                ptps=$(field "$pr" tps); pp50=$(field "$pr" p50_ms); pp99=$(field "$pr" p99_ms); perr=$(field "$pr" errors)
                printf '%-28s %6s %10s %10s %10s %8s\n' "llama.cpp (node) same file" "$c" "$ptps" "$pp50" "$pp99" "$perr"
                echo "BENCH serve tps-c$c-t$T ours=$tps peer=$ptps ratio=$(ratio "$tps" "$ptps") unit=tok/s"
                echo "BENCH serve p50-c$c-t$T ours=$p50 peer=$pp50 ratio=$(ratio "$pp50" "$p50") unit=ms"
                echo "BENCH serve p99-c$c-t$T ours=$p99 peer=$pp99 ratio=$(ratio "$pp99" "$p99") unit=ms"
            else
                echo "BENCH serve tps-c$c-t$T ours=$tps peer=$seq_tps ratio=$(ratio "$tps" "$seq_tps") unit=tok/s"
                echo "BENCH serve p50-c$c-t$T ours=$p50 peer=$seq_lat ratio=$(ratio "$seq_lat" "$p50") unit=ms"
            fi
        fi
        echo "BENCH serve $mode-scaling-c$c-t$T ours=$tps peer=$base ratio=$(ratio "$tps" "$base") unit=tok/s-vs-1-client"
    done
    rss1=$(rss_kb "$SPID")
    echo "$mode: server RSS $rss0 kB before, $rss1 kB after the runs"
    stop_server
done
if [ -n "$NPID" ]; then kill -TERM "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null; NPID=; fi
exit $fail
