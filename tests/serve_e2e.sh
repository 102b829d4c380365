#!/bin/sh
# serve_e2e.sh: `make check-serve`. The programs end to end on loopback, no model needed:
# fti-serve (echo generator) under fti-loadgen traffic, SIGTERM -> exit 0 with the request log
# flushed; fti-monitor report -> exit 0 on that log, 0 on a log of in-distribution prompts and 3
# on a log of drifted prompts (both synthetic: a reference line plus request lines), 0 on those
# drifted prompts after a writer's "no reference" line, 0 on a log whose reference changes
# between requests that are each in distribution for their own (windows end at the change).
set -u
B=${B:-build}
TMP=${TMPDIR:-/tmp}/fti-serve-e2e.$$
mkdir -p "$TMP"
SPID=
fail() { echo "check-serve: $*"; [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null; exit 1; }
trap 'rm -rf "$TMP"' EXIT

"$B/fti-serve" --help > /dev/null || fail "fti-serve --help"
"$B/fti-monitor" --help > /dev/null || fail "fti-monitor --help"
# numbers are checked: the option, its range and what was given, status 2
"$B/fti-monitor" report --window 0 > /dev/null 2> "$TMP/num.txt"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--window takes a whole number from 1 to" "$TMP/num.txt" ||
    fail "fti-monitor --window 0: status $rc, $(cat "$TMP/num.txt")"
"$B/fti-monitor" report --psi-alert x > /dev/null 2> "$TMP/num.txt"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--psi-alert takes a number from 0 to 100, not 'x'" "$TMP/num.txt" ||
    fail "fti-monitor --psi-alert x: status $rc, $(cat "$TMP/num.txt")"
# fti-loadgen: -n is 1 or more; a failure's reason is said (the first one)
"$B/fti-loadgen" --port 8 -n 0 > /dev/null 2> "$TMP/num.txt"; rc=$?
[ $rc -eq 2 ] && grep -q -- "-n takes a whole number from 1 to" "$TMP/num.txt" ||
    fail "fti-loadgen -n 0: status $rc, $(cat "$TMP/num.txt")"
"$B/fti-loadgen" --port 1 -n 1 > /dev/null 2> "$TMP/lg.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "the first: cannot connect to 127.0.0.1:1" "$TMP/lg.txt" ||
    fail "fti-loadgen to a closed port: status $rc, $(cat "$TMP/lg.txt")"
# fti-monitor: a file of no request lines is not "0 requests, ok"
printf 'not json\n\001\002 garbage\n' > "$TMP/junk.jsonl"
"$B/fti-monitor" report --log "$TMP/junk.jsonl" > /dev/null 2> "$TMP/junk.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "not a request log of fti-serve" "$TMP/junk.txt" ||
    fail "fti-monitor on garbage: status $rc, $(cat "$TMP/junk.txt")"
"$B/fti-serve" --echo --port 0 --port-file "$TMP/port" --log "$TMP/req.jsonl" --step-us 500 --quiet &
SPID=$!
i=0
while [ ! -s "$TMP/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
PORT=$(cat "$TMP/port" 2>/dev/null)
[ -n "$PORT" ] || fail "fti-serve did not start"
"$B/fti-loadgen" --port "$PORT" -c 4 -n 5 --max-tokens 8 > "$TMP/load.txt" || fail "load had errors: $(cat "$TMP/load.txt")"
"$B/fti-loadgen" --port "$PORT" -c 2 -n 2 --max-tokens 8 --stream > "$TMP/load2.txt" || fail "streaming load had errors"
kill -TERM "$SPID"
wait "$SPID"
rc=$?
SPID=
[ $rc -eq 0 ] || fail "fti-serve exited $rc after SIGTERM (want 0)"
n=$(grep -c '"type":"request"' "$TMP/req.jsonl")
[ "$n" -eq 24 ] || fail "request log has $n request lines (want 24)"
"$B/fti-monitor" report --log "$TMP/req.jsonl" --svg "$TMP/r.svg" > "$TMP/rep.txt"; rc=$?
[ $rc -eq 0 ] || fail "fti-monitor report exited $rc on the echo log (want 0)"
grep -q "latency ms" "$TMP/rep.txt" || fail "no latency table in the report"
grep -q "<svg" "$TMP/r.svg" || fail "no SVG chart"

# synthetic logs: reference = 16 equal buckets; 300 requests of 64 prompt tokens each
ref='{"type":"reference","tok_share":[0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625],"len_share":[0,0,0,0,0,0,0,0.5,0.5,0,0,0,0,0,0,0],"byte_share":0,"ppl":20}'
mk_log() { # mk_log FILE BUCKETS
    echo "$ref" > "$1"
    i=0
    while [ $i -lt 300 ]; do
        echo "{\"type\":\"request\",\"time\":$((1700000000 + i)),\"endpoint\":\"/v1/completions\",\"status\":200,\"prompt_tokens\":64,\"prompt_bytes\":200,\"completion_tokens\":16,\"ttft_ms\":5,\"latency_ms\":50,\"tokens_per_s\":320,\"retrieval_hits\":0,\"prompt_ppl\":22,\"byte_fallback\":0,\"tok_buckets\":[$2]}"
        i=$((i + 1))
    done >> "$1"
}
mk_log "$TMP/ok.jsonl" "4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4"
mk_log "$TMP/drift.jsonl" "1,1,1,1,1,1,1,1,1,1,1,1,1,2,2,47"
"$B/fti-monitor" report --log "$TMP/ok.jsonl" --svg - > "$TMP/ok.txt"; rc=$?
[ $rc -eq 0 ] || fail "fti-monitor report exited $rc on in-distribution prompts (want 0): $(tail -5 "$TMP/ok.txt")"
"$B/fti-monitor" report --log "$TMP/drift.jsonl" --svg - > "$TMP/drift.txt"; rc=$?
[ $rc -eq 3 ] || fail "fti-monitor report exited $rc on drifted prompts (want 3)"
grep -q "ALERT" "$TMP/drift.txt" || fail "no ALERT in the drift report"
# the same requests after the line of a writer without a reference (fti-serve restarted on a
# model without lineage, or --echo): judged against none, not the earlier writer's reference
{ head -n 1 "$TMP/drift.jsonl"; echo '{"type":"reference","none":true}'; tail -n +2 "$TMP/drift.jsonl"; } > "$TMP/none.jsonl"
"$B/fti-monitor" report --log "$TMP/none.jsonl" --svg - > "$TMP/none.txt"; rc=$?
[ $rc -eq 0 ] || fail "fti-monitor report exited $rc after a no-reference line (want 0)"
grep -q "no reference in the log" "$TMP/none.txt" || fail "windows after a no-reference line were judged"
# a window ends where the reference changes (a restart on another model): 150 requests under
# reference 1 (its line written again after 80 of them, a restart on the same model, which
# breaks no window), then 50 under reference 2, each in distribution for its own reference:
# windows of 100, 50 and 50, all ok (before, the second window's 50 requests of reference 1
# were judged against reference 2: ALERT)
ref2='{"type":"reference","tok_share":[0.015625,0.015625,0.015625,0.015625,0.015625,0.015625,0.015625,0.015625,0.015625,0.015625,0.015625,0.015625,0.015625,0.03125,0.03125,0.734375],"len_share":[0,0,0,0,0,0,0,0.5,0.5,0,0,0,0,0,0,0],"byte_share":0,"ppl":21}'
head -n 81 "$TMP/ok.jsonl" > "$TMP/switch.jsonl"
{ echo "$ref"; sed -n 82,151p "$TMP/ok.jsonl"; echo "$ref2"; sed -n 152,201p "$TMP/drift.jsonl"; } \
    >> "$TMP/switch.jsonl"
"$B/fti-monitor" report --log "$TMP/switch.jsonl" --svg - > "$TMP/switch.txt"; rc=$?
[ $rc -eq 0 ] ||
    fail "fti-monitor exited $rc on a reference switch (want 0): $(tail -3 "$TMP/switch.txt")"
n=$(grep -c '^  [0-9] ' "$TMP/switch.txt")
[ "$n" -eq 3 ] || fail "fti-monitor report has $n windows over a reference switch (want 3)"
n=$(awk '$1 == 1 && NF > 8 { print $3 }' "$TMP/switch.txt")
[ "$n" = 100 ] || fail "the same reference written again broke the first window ($n requests)"
B=$B sh tools/dashboard_shot.sh || fail "dashboard"
echo "check-serve: ok (serve + loadgen + SIGTERM exit 0, monitor report exit 0 / 0 / 3 / 0 / 0)"
