#!/bin/sh
# demo.sh: the twin end to end on the shipped corpus (make demo).
#   F: ingest + clean + validate + dedupe + tokenizer + shards + index  (fti-feature)
#   T: train a small model, register it, promote it to production        (fti-train, fti-registry)
#   I: generate with retrieval for a few prompts                         (fti-infer)
# Environment: FTI_HOME (workspace, default ./twin), DEMO_MINUTES (training budget, default 3),
# DEMO_PRESET (model preset, default small), CORPUS (input, default data/corpus/bierce).
set -eu
B=${B:-build}
HOME_DIR=${FTI_HOME:-./twin}
MINUTES=${DEMO_MINUTES:-3}
PRESET=${DEMO_PRESET:-small}
CORPUS=${CORPUS:-data/corpus/bierce/devils_dictionary.jsonl}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
need() {
    [ -x "$B/$1" ] || { echo "demo: $B/$1 is missing (that stage has not landed yet: $2)"; exit 1; }
}
need fti-feature "issue 5"; need fti-train "issue 6"; need fti-registry "issue 6"; need fti-infer "issue 7"

say "F: feature pipeline — ingest $CORPUS into the workspace $HOME_DIR"
echo "Cleaning, validating, de-duplicating, training the tokenizer and writing a dataset version."
out=$("$B/fti-feature" --home "$HOME_DIR" ingest "$CORPUS" | tee /dev/stderr)
VERSION=$(printf '%s\n' "$out" | tail -n 1 | awk '{print $NF}')
echo "dataset version: $VERSION"

say "T: training pipeline — preset $PRESET for about $MINUTES minute(s)"
out=$("$B/fti-train" --home "$HOME_DIR" --dataset "$VERSION" --preset "$PRESET" \
      --minutes "$MINUTES" | tee /dev/stderr)
MODEL=$(printf '%s\n' "$out" | tail -n 1 | awk '{print $NF}')
echo "model: $MODEL"
"$B/fti-registry" --home "$HOME_DIR" promote "$MODEL" production

say "I: inference — the twin writes, with retrieval from the author's own entries"
for p in "POLITICS, n." "LAWYER, n." "The love of money" "A friend is"; do
    printf '\n\033[1m> %s\033[0m\n' "$p"
    "$B/fti-infer" --home "$HOME_DIR" --alias production --prompt "$p" -n 80 --temp 0.8 --seed 1
    echo
done

say "Next"
cat <<TXT
  $B/fti-serve --home $HOME_DIR            # OpenAI-compatible server on 127.0.0.1
  $B/fti-infer --home $HOME_DIR --alias production --prompt "..."
  $B/fti-feature --home $HOME_DIR ingest ~/my-writing/   # your own folder of writing
TXT
