#!/bin/sh
# test_replicas.sh: `make test-replicas`. Replicated serving end to end on loopback: two fti-serve
# instances over ONE workspace behind nginx (deploy/nginx/fti.conf with its ports rewritten, run
# as an unprivileged nginx from a temp dir), fti-loadgen traffic through nginx, then
#   1. a promotion (the `production` alias moves to a second model) rolls through both instances
#      by hot reload while traffic flows: no request fails, both end on the new model id;
#   2. a rolling restart (instance a stopped with SIGTERM and started again on its port) while
#      traffic flows: no request fails (nginx retries on the other replica);
#   3. the instances wrote their own append-only logs and fti-monitor report merges them
#      (repeated --log, and the logs directory) into one count equal to the requests served.
# Ends with "N passed, N failed"; exit 1 when something failed, 77 (skipped) without nginx.
# Models: two tiny random-weight GGUFs (bench_infer make), registered with serve_register.
set -u
B=${B:-build}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
TMP=${TMPDIR:-/tmp}/fti-replicas.$$
HOME_DIR=$TMP/twin
mkdir -p "$TMP" "$HOME_DIR"
PIDS=
pass=0
failn=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { failn=$((failn + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
    d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    [ -s "$TMP/nginx.pid" ] && kill -QUIT "$(cat "$TMP/nginx.pid")" 2>/dev/null
    sleep 0.2
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
finish() { echo "$pass passed, $failn failed"; [ $failn -eq 0 ]; exit $?; }

if [ ! -x "$NGINX" ]; then
    echo "test-replicas: nginx not found (Debian package nginx); skipped"
    echo "0 passed, 0 failed"
    exit 77
fi

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + $$ % 20000))
}
wait_file() { i=0; while [ ! -s "$1" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done; [ -s "$1" ]; }
get() { # get PORT PATH: the body of a GET (fti-loadgen is POST-only: a tiny client in sh)
    curl -s --max-time 5 "http://127.0.0.1:$1$2" 2>/dev/null
}
served_model() { get "$1" /v1/models | sed -n 's/.*"id":"\([^"]*\)".*/\1/p'; }
start_instance() { # start_instance NAME PORT: sets the PID variable of NAME
    rm -f "$TMP/port-$1"
    "$B/fti-serve" --home "$HOME_DIR" --alias production --reload-s 1 --instance "$1" \
        --port "$2" --port-file "$TMP/port-$1" --rag-k 0 --threads 1 --max-queue 256 --quiet \
        2>> "$TMP/serve-$1.err" &
    eval "PID_$1=\$!"
    PIDS="$PIDS $!"
    wait_file "$TMP/port-$1"
}

# --- two models in one registry ------------------------------------------------------------
"$B/bench_infer" make tiny f32 "$TMP/m1.gguf" --vocab 512 --seed 1 > /dev/null &&
    "$B/bench_infer" make tiny f32 "$TMP/m2.gguf" --vocab 512 --seed 2 > /dev/null ||
    { bad "make two tiny models"; finish; }
ID1=$("$B/serve_register" "$HOME_DIR" "$TMP/m1.gguf" first) &&
    ID2=$("$B/serve_register" "$HOME_DIR" "$TMP/m2.gguf" second) &&
    "$B/fti-registry" --home "$HOME_DIR" promote "$ID1" production > /dev/null ||
    { bad "register the models and promote the first"; finish; }
check "two distinct model ids ($ID1, $ID2)" [ "$ID1" != "$ID2" ]

# --- two instances and nginx ---------------------------------------------------------------
sleep 1; touch "$TMP/marker"; sleep 1 # files modified after this: only logs and the alias (models/aliases.json)
start_instance a 0 || { bad "instance a starts"; finish; }
start_instance b 0 || { bad "instance b starts"; finish; }
PA=$(cat "$TMP/port-a"); PB=$(cat "$TMP/port-b")
check "instance a serves the first model" [ "$(served_model "$PA")" = "$ID1" ]
check "instance b serves the first model" [ "$(served_model "$PB")" = "$ID1" ]
check "/health names the instance" sh -c "curl -s http://127.0.0.1:$PA/health | grep -q '\"instance\":\"a\"'"

mkdir -p "$TMP/ng"
started=0
for attempt in 1 2 3; do
    PN=$(free_port)
    sed -e "s/127\.0\.0\.1:8081/127.0.0.1:$PA/" -e "s/127\.0\.0\.1:8082/127.0.0.1:$PB/" \
        -e "s/listen 127\.0\.0\.1:8080/listen 127.0.0.1:$PN/" deploy/nginx/fti.conf > "$TMP/fti.conf"
    cat > "$TMP/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log $TMP/nginx-access.log;
    client_body_temp_path $TMP/ng/body;
    proxy_temp_path $TMP/ng/proxy;
    fastcgi_temp_path $TMP/ng/fastcgi;
    uwsgi_temp_path $TMP/ng/uwsgi;
    scgi_temp_path $TMP/ng/scgi;
    include $TMP/fti.conf;
}
EOF
    if "$NGINX" -p "$TMP/ng" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" 2>> "$TMP/nginx-start.log"; then
        wait_file "$TMP/nginx.pid" && started=1 && break
    fi
done
[ $started = 1 ] || { bad "nginx starts: $(tail -3 "$TMP/nginx-start.log" "$TMP/nginx-error.log" 2>/dev/null)"; finish; }
ok "nginx starts with deploy/nginx/fti.conf (port $PN -> $PA, $PB)"
check "GET /v1/models through nginx" [ "$(served_model "$PN")" = "$ID1" ]

# --- 1. a promotion rolls through both under traffic ----------------------------------------
"$B/fti-loadgen" --port "$PN" -c 8 -d 6 --max-tokens 16 > "$TMP/load1.txt" &
L1=$!
"$B/fti-loadgen" --port "$PN" -c 2 -d 6 --max-tokens 16 --stream > "$TMP/load1s.txt" &
L1S=$!
sleep 2
"$B/fti-registry" --home "$HOME_DIR" promote "$ID2" production > /dev/null || bad "promote the second model"
wait $L1; r1=$?
wait $L1S; r1s=$?
check "no failed request through the promotion ($(grep '^RESULT' "$TMP/load1.txt" | cut -d' ' -f2-4))" [ $r1 -eq 0 ]
check "no failed streaming request through the promotion" [ $r1s -eq 0 ]
check "traffic reached both instances ($(grep '^INSTANCES' "$TMP/load1.txt"))" \
    sh -c "grep '^INSTANCES' '$TMP/load1.txt' | grep -q ' a=' && grep '^INSTANCES' '$TMP/load1.txt' | grep -q ' b='"
check "responses came from both models ($(grep '^MODELS' "$TMP/load1.txt"))" \
    sh -c "grep '^MODELS' '$TMP/load1.txt' | grep -q '$ID1=' && grep '^MODELS' '$TMP/load1.txt' | grep -q '$ID2='"
check "instance a ends on the new model" [ "$(served_model "$PA")" = "$ID2" ]
check "instance b ends on the new model" [ "$(served_model "$PB")" = "$ID2" ]

# --- 2. a rolling restart under traffic ------------------------------------------------------
"$B/fti-loadgen" --port "$PN" -c 6 -d 5 --max-tokens 16 > "$TMP/load2.txt" &
L2=$!
sleep 1
kill -TERM "$PID_a"; wait "$PID_a"; rca=$?
check "instance a exits 0 on SIGTERM" [ $rca -eq 0 ]
sleep 1
start_instance a "$PA" || bad "instance a restarts on port $PA"
wait $L2; r2=$?
check "no failed request through the rolling restart ($(grep '^RESULT' "$TMP/load2.txt" | cut -d' ' -f2-4))" [ $r2 -eq 0 ]
check "the restarted instance a serves the new model" [ "$(served_model "$PA")" = "$ID2" ]

# --- 3. per-instance logs, merged by fti-monitor ---------------------------------------------
kill -QUIT "$(cat "$TMP/nginx.pid")" 2>/dev/null
kill -TERM "$PID_a" "$PID_b"; wait "$PID_a"; rca=$?; wait "$PID_b"; rcb=$?
PIDS=
check "both instances exit 0 on SIGTERM" [ $((rca + rcb)) -eq 0 ]
LA=$HOME_DIR/logs/requests-a.jsonl
LB=$HOME_DIR/logs/requests-b.jsonl
check "each instance wrote its own log" test -s "$LA" -a -s "$LB"
written=$(cd "$HOME_DIR" && find . -type f -newer "$TMP/marker" ! -path './logs/*' ! -path './registry/*' ! -path './models/aliases.json' | tr '\n' ' ')
check "the instances wrote nothing in the workspace but their logs (${written:-nothing else})" [ -z "$written" ]
na=$(grep -c '"type":"request"' "$LA"); nb=$(grep -c '"type":"request"' "$LB")
served=0
for f in load1 load1s load2; do
    n=$(sed -n 's/^RESULT.* requests=\([0-9]*\).*/\1/p' "$TMP/$f.txt"); served=$((served + ${n:-0}))
done
check "log lines ($na + $nb) = requests answered through nginx ($served)" [ $((na + nb)) -eq "$served" ]
"$B/fti-monitor" report --log "$LA" --log "$LB" --svg - > "$TMP/rep.txt"; rc=$?
check "fti-monitor report --log A --log B exits 0" [ $rc -eq 0 ]
check "the merged report counts $served requests" grep -q "^  $served requests" "$TMP/rep.txt"
check "the merged report lists both logs" sh -c "grep -q 'requests-a.jsonl' '$TMP/rep.txt' && grep -q 'requests-b.jsonl' '$TMP/rep.txt'"
check "the merged report shows both models" sh -c "grep -q '$ID1' '$TMP/rep.txt' && grep -q '$ID2' '$TMP/rep.txt'"
"$B/fti-monitor" --home "$HOME_DIR" report --svg - > "$TMP/rep2.txt"; rc=$?
check "fti-monitor report over HOME/logs (the default) merges the same $served" \
    sh -c "[ $rc -eq 0 ] && grep -q '^  $served requests' '$TMP/rep2.txt'"
[ $failn -eq 0 ] || { echo "--- report"; cat "$TMP/rep.txt"; echo "--- serve a"; tail -5 "$TMP/serve-a.err"; echo "--- nginx"; tail -5 "$TMP/nginx-error.log"; }
finish
