#!/bin/sh
# demo.sh: the twin end to end on the shipped corpus (make demo).
#   F -> T -> evaluation -> promotion   fti-twin update (in one process, through fti.h: the
#                                       store's ingest, the training driver, the registry)
#   I: generations with retrieval       fti-twin write (the model with its author memory, drafts, the
#                                       twin's own pick of new text; fti-infer is the plain sampler)
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
# the words the twin defines: themes his entries keep returning to (each word in 16 to 37 of
# them) that his dictionary has no entry for; its drafts per word and temperature
WORDS=${DEMO_WORDS:-DEATH CHURCH WISDOM PRIEST FRIEND}
DRAFTS=${DEMO_DRAFTS:-48}
TEMP=${DEMO_TEMP:-0.6}

say() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)
for p in fti-twin fti-eval; do
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

say "I: the twin writes (fti-twin write: retrieval from the author's entries, several drafts, the twin's own pick)"
echo "Each prompt opens a dictionary entry in the author's own form, \"HEADWORD, n.\", for themes his"
echo "entries return to but his dictionary has no entry for. The twin has an author memory: a 4-gram"
echo "model of his training text (Kneser-Ney, over the same tokens) mixed into the model's next-token"
echo "probabilities (weight 0.8), so it writes his phrases where the small model alone strings words"
echo "loosely; and each word's theme: the words of his entries that BM25 finds for the word (8) are"
echo "made likelier by how much more those entries use them. Only words he used can be drawn. For"
echo "each word: his best-matching entries go in front of the prompt (shown as 'retrieved'), the twin"
echo "drafts the definition $DRAFTS times (temperature $TEMP, top-k 40, min-p 0.05, repetition penalty"
echo "1.1; a draft is the definition's first sentence). Set aside: drafts under 4 words, drafts that"
echo "quote more than 8 words in a row from him (a twin writes new text, not quotations), and"
echo "definitions that repeat an earlier word's or 3 words in a row of it. Of the rest, those with the"
echo "fewest pairs of adjacent words he never wrote next to each other (usually none), and of those the"
echo "one the twin finds most likely as a whole entry (lowest loss per token, its end included, plus"
echo "0.2 for each run of his text its words are made of: fewer, longer runs of his read better) is"
echo "printed, with the longest run of words it shares with his text. No hand-picking: the same command"
echo "gives the same lines."
"$B/fti-twin" --home "$HOME_DIR" write $WORDS --drafts "$DRAFTS" --temp "$TEMP" --seed 7

say "Is it a twin? (make eval)"
"$B/fti-eval" --home "$HOME_DIR"

# prompts for the serving run: openings of the author's own texts (the "text" of JSONL records, or
# lines of 31 to 250 characters of text files), 48 spread over the corpus; and 48 sentences (41 to
# 250 characters: longer ones may not fit the context, and fti-serve refuses those) of another
# author (data/eval/others: Melville), which the monitor should flag
author_prompts() {
    if [ -f "$CORPUS" ] && [ "${CORPUS##*.}" = jsonl ]; then
        grep -o '"text": *"[^\\]*' "$CORPUS" | sed 's/"text": *"//'
    elif [ -f "$CORPUS" ]; then
        cat "$CORPUS"
    else
        find "$CORPUS" -type f \( -name '*.txt' -o -name '*.md' \) -exec cat {} + 2>/dev/null
    fi | awk 'length > 30 && length <= 250' | # (a longer line may not fit the model's context)
        awk '{ l[NR] = $0 } END { if (NR) for (i = 0; i < 48; i++) print l[1 + int(i * NR / 48)] }'
}
other_prompts() {
    tr -s ' \n' '  ' < data/eval/others/melville_moby_dick_ch1.txt |
        awk '{ gsub(/[.?!] /, "&\n"); print }' |
        awk 'length > 40 && length <= 250 && n < 48 { print; n++ }' # (longer: past the context)
}

if [ -x "$B/fti-serve" ] && [ -x "$B/fti-loadgen" ] && [ -x "$B/fti-monitor" ]; then
    say "Serving and monitoring: fti-serve on 127.0.0.1 (a free port); 8 clients send 48 openings of his texts, then 48 sentences of Moby-Dick; the monitor compares each window of 48 prompts with the training data"
    pf="$HOME_DIR/.demo-port"
    ap="$HOME_DIR/.demo-prompts-author"
    op="$HOME_DIR/.demo-prompts-other"
    rm -f "$pf"
    author_prompts > "$ap" || true
    other_prompts > "$op" || true
    ts=$(date +%s) # the report covers this run's requests (a log from earlier runs stays)
    "$B/fti-serve" --home "$HOME_DIR" --port 0 --port-file "$pf" --quiet &
    spid=$!
    i=0; while [ ! -s "$pf" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if [ -s "$pf" ]; then
        for f in "$ap" "$op"; do
            [ -s "$f" ] || continue
            "$B/fti-loadgen" --port "$(cat "$pf")" -c 8 -n 6 --max-tokens 32 --prompts "$f" || true
        done
    fi
    kill -TERM $spid 2>/dev/null || true
    wait $spid 2>/dev/null || true
    rm -f "$pf" "$ap" "$op"
    "$B/fti-monitor" --home "$HOME_DIR" report --window 48 --since $(($(date +%s) - ts + 1)) ||
        echo "(fti-monitor exits 3 when a drift threshold is crossed: here by the other author's sentences)"
fi

say "Done in $(( $(date +%s) - t0 )) s (budget DEMO_MINUTES=$MINUTES: $UPDATE_MINUTES min for the update, then the rest)"

say "Next"
cat <<TXT
  $B/fti-serve --home $HOME_DIR                  # OpenAI-compatible server on 127.0.0.1:8080
  $B/fti-twin  --home $HOME_DIR write CYNIC TELEPHONE --drafts-shown   # the twin's drafts and its pick
  $B/fti-infer --home $HOME_DIR --alias production --title CYNIC --prompt "CYNIC, n."
  $B/fti-twin  --home $HOME_DIR update ~/my-writing/   # your own folder of writing
  $B/fti-feature --home $HOME_DIR search "marriage"     # BM25 over the dataset's chunks
TXT
