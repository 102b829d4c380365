#!/bin/sh
# demo.sh: the twin end to end on the shipped corpus (make demo).
#   F -> T -> evaluation -> promotion   fti-twin update (in one process, through fti.h: the
#                                       store's ingest, the training driver, the registry)
#   I: generations with retrieval       fti-infer --alias production
#   is it a twin?                       fti-eval (perplexity vs other authors, recall@5)
# Environment: FTI_HOME (workspace, default ./twin), DEMO_MINUTES (the demo's budget after the
# build, default 3: the update, ingest and training, gets all of it but 30 s, which the
# generations, eval and serving that follow take on a quiet 2-core machine),
# DEMO_PRESET (model preset, default small), CORPUS (input: a file or folder of writing,
# default the JSONL export data/corpus/bierce/devils_dictionary.jsonl).
set -eu
B=${B:-build}
HOME_DIR=${FTI_HOME:-./twin}
MINUTES=${DEMO_MINUTES:-3}
PRESET=${DEMO_PRESET:-small}
CORPUS=${CORPUS:-data/corpus/bierce/devils_dictionary.jsonl}

say() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)
for p in fti-twin fti-infer fti-eval; do
    [ -x "$B/$p" ] || { echo "demo: $B/$p is missing (run make)"; exit 1; }
done

say "The twin of Ambrose Bierce, from his Devil's Dictionary ($CORPUS), in the workspace $HOME_DIR"
echo "fti-twin update runs the whole loop: the feature pipeline (ingest, clean, validate,"
echo "deduplicate, tokenizer, token shards, BM25 index, a content-addressed dataset version),"
echo "training (preset $PRESET, as many steps as fit in the budget on this machine but at most 12"
echo "passes over the data: the schedule follows the measured step time; bf16 matmuls where the"
echo "CPU has them; the best validation pass is kept), evaluation on the held-out"
echo "documents and promotion to 'production'. Run it again and it reuses what did not change."
# the update's share of the budget: all but 30 s (not below half of it)
UPDATE_MINUTES=$(LC_ALL=C awk -v m="$MINUTES" 'BEGIN { u = m - 0.5; if (u < m / 2) u = m / 2; print u }')
"$B/fti-twin" --home "$HOME_DIR" update "$CORPUS" --minutes "$UPDATE_MINUTES" --preset "$PRESET"

say "I: the twin writes (retrieval from the author's own entries is on; chunks used go to stderr)"
echo "Each prompt opens a dictionary entry in the author's own form: the headword as the title,"
echo "\"HEADWORD, n.\" as the opening, so the twin continues with a definition. POLITICS and LAWYER"
echo "are in the dictionary (retrieval puts related entries in front of the prompt); NEWSPAPER and"
echo "ELECTION are not: the twin defines words its author never did. Sampling: temperature 0.4, top-k 20, min-p 0.1,"
echo "repetition penalty 1.15 (shorter definitions and fewer invented words than the defaults on a model this small)."
for w in POLITICS LAWYER NEWSPAPER ELECTION; do
    printf '\n> %s, n.' "$w"
    "$B/fti-infer" --home "$HOME_DIR" --alias production --title "$w" --prompt "$w, n." -n 60 \
        --temp 0.4 --top-k 20 --min-p 0.1 --repeat-penalty 1.15 --seed 7 \
        2>"$HOME_DIR/.demo-infer.log" || cat "$HOME_DIR/.demo-infer.log"
    echo
    sed -n 's/^fti-infer: retrieved chunk [0-9]* (doc \([0-9a-f]\{8\}\)[0-9a-f]*) score \([0-9.]*\): \(.*\)/   (retrieved: \3, score \2)/p' \
        "$HOME_DIR/.demo-infer.log" | head -3
done
rm -f "$HOME_DIR/.demo-infer.log"

say "Is it a twin? (make eval)"
"$B/fti-eval" --home "$HOME_DIR"

if [ -x "$B/fti-serve" ] && [ -x "$B/fti-loadgen" ] && [ -x "$B/fti-monitor" ]; then
    say "Serving and monitoring: fti-serve on 127.0.0.1 (a free port), 8 concurrent clients, then the report"
    pf="$HOME_DIR/.demo-port"
    rm -f "$pf"
    "$B/fti-serve" --home "$HOME_DIR" --port 0 --port-file "$pf" --quiet &
    spid=$!
    i=0; while [ ! -s "$pf" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if [ -s "$pf" ]; then
        "$B/fti-loadgen" --port "$(cat "$pf")" -c 8 -n 2 --max-tokens 32 --prompt "MARRIAGE, n." || true
    fi
    kill -TERM $spid 2>/dev/null || true
    wait $spid 2>/dev/null || true
    rm -f "$pf"
    "$B/fti-monitor" --home "$HOME_DIR" report || echo "(fti-monitor exits 3 when a drift threshold is crossed:" \
        "16 copies of one prompt do not look like the author's writing)"
fi

say "Done in $(( $(date +%s) - t0 )) s (budget DEMO_MINUTES=$MINUTES: $UPDATE_MINUTES min for the update, then the rest)"

say "Next"
cat <<TXT
  $B/fti-serve --home $HOME_DIR                  # OpenAI-compatible server on 127.0.0.1:8080
  $B/fti-infer --home $HOME_DIR --alias production --prompt "CYNIC, n."
  $B/fti-twin  --home $HOME_DIR update ~/my-writing/   # your own folder of writing
  $B/fti-feature --home $HOME_DIR search "marriage"     # BM25 over the dataset's chunks
TXT
