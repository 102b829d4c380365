#!/bin/sh
# check_openai.sh: `make check-openai`. fti-serve through the official OpenAI client library (the
# `openai` npm package): a tiny model trained for 50 steps on one corpus file in a temporary
# workspace, fti-serve on a free loopback port, tools/check_openai.mjs against it, the server
# stopped (SIGTERM; it must exit 0). Not part of `make test` or `make check`: it needs node and
# the package, which live outside the repository:
#   mkdir -p ~/.cache/fti-bench/openai && cd ~/.cache/fti-bench/openai && \
#       npm install --no-audit --no-fund openai
# Without node or the package it says so and exits 0.
#
#   B=build  FTI_BENCH_CACHE=$HOME/.cache/fti-bench  (the package: $FTI_BENCH_CACHE/openai)
#   CHECK_OPENAI_URL=http://host:port/v1   run the checks against that server instead
set -u
B=${B:-build}
CACHE=${FTI_BENCH_CACHE:-$HOME/.cache/fti-bench}
NODE_MODULES=$CACHE/openai/node_modules
URL=${CHECK_OPENAI_URL:-}
if ! command -v node > /dev/null 2>&1; then
    echo "check-openai: skipped: node is not installed"
    exit 0
fi
if [ ! -d "$NODE_MODULES/openai" ]; then
    echo "check-openai: skipped: the openai package is not in $NODE_MODULES (install it with:" \
         "mkdir -p $CACHE/openai && cd $CACHE/openai && npm install --no-audit --no-fund openai)"
    exit 0
fi
if [ -n "$URL" ]; then
    FTI_NODE_MODULES=$NODE_MODULES node tools/check_openai.mjs "$URL"
    exit $?
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fti-check-openai.XXXXXX") || exit 1
SPID=
cleanup() {
    [ -n "$SPID" ] && kill -TERM "$SPID" 2> /dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "check-openai: $*"; exit 1; }

W=$TMP/w
"$B/fti-feature" --home "$W" ingest data/corpus/bierce/devils_dictionary.jsonl > "$TMP/feature.log" 2>&1 ||
    fail "fti-feature ingest failed: $(tail -3 "$TMP/feature.log")"
"$B/fti-train" --home "$W" --preset tiny --steps 50 --threads 2 > "$TMP/train.log" 2>&1 ||
    fail "fti-train failed: $(tail -3 "$TMP/train.log")"
MODEL=$(ls "$W"/models/*/model.gguf 2> /dev/null | head -n 1)
[ -n "$MODEL" ] || fail "no model after training"
"$B/fti-serve" --home "$W" --model "$MODEL" --port 0 --port-file "$TMP/port" --threads 1 \
    --log "$TMP/requests.jsonl" --quiet > "$TMP/serve.log" 2>&1 &
SPID=$!
i=0
while [ ! -s "$TMP/port" ] && [ $i -lt 200 ] && kill -0 "$SPID" 2> /dev/null; do
    sleep 0.05
    i=$((i + 1))
done
PORT=$(cat "$TMP/port" 2> /dev/null)
[ -n "$PORT" ] || fail "fti-serve did not start: $(tail -3 "$TMP/serve.log")"
FTI_NODE_MODULES=$NODE_MODULES node tools/check_openai.mjs "http://127.0.0.1:$PORT/v1"
rc=$?
kill -TERM "$SPID"
wait "$SPID"
src=$?
SPID=
[ $src -eq 0 ] || { echo "check-openai: fti-serve exited $src after SIGTERM (want 0)"; rc=1; }
exit $rc
