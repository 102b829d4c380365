#!/bin/sh
# dashboard_shot.sh: loads fti-serve's dashboard (GET /) in headless Chromium and checks that it
# rendered the live metrics (the page sets data-loaded="1" on <body> after its first /metrics
# fetch). Writes build/dashboard.png. Needs Debian `chromium`; exits 0 with a note when missing.
#   sh tools/dashboard_shot.sh
set -u
B=${B:-build}
TMP=${TMPDIR:-/tmp}/fti-dash.$$
mkdir -p "$TMP"
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then echo "dashboard: chromium not installed (apt-get install chromium): skipped"; exit 0; fi
"$B/fti-serve" --echo --port 0 --port-file "$TMP/port" --log - --quiet &
SPID=$!
trap 'kill -TERM $SPID 2>/dev/null; rm -rf "$TMP"' EXIT
i=0
while [ ! -s "$TMP/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
PORT=$(cat "$TMP/port")
"$B/fti-loadgen" --port "$PORT" -c 2 -n 3 --max-tokens 8 > /dev/null
URL="http://127.0.0.1:$PORT/"
"$CHROME" --headless --no-sandbox --disable-gpu --virtual-time-budget=5000 --dump-dom "$URL" \
    > "$TMP/dom.html" 2>/dev/null
"$CHROME" --headless --no-sandbox --disable-gpu --virtual-time-budget=5000 \
    --window-size=1200,800 --screenshot="$B/dashboard.png" "$URL" > /dev/null 2>&1
grep -q 'data-loaded="1"' "$TMP/dom.html" || { echo "dashboard: metrics did not render"; exit 1; }
grep -q 'tokens/s' "$TMP/dom.html" || { echo "dashboard: no metric cards"; exit 1; }
grep -q 'fti-echo' "$TMP/dom.html" || { echo "dashboard: model id missing"; exit 1; }
echo "dashboard: ok ($B/dashboard.png)"
