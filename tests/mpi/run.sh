#!/bin/sh
# tests/mpi/run.sh B: the MPI equivalence test (make test-mpi). Needs B/test-mpi, B/fti-train-mpi
# (built with mpicc -DFTI_MPI), B/fti-train, B/fti-feature and B/fti-registry.
#  1. B/test-mpi under mpirun -np 2: library cases (tests/mpi/test_mpi.c)
#  2. fti-train under mpirun -np 2 against one fti-train process on copies of one workspace:
#     the same global batch (--batch 4 --accum 2: one micro-batch per rank) must give a model
#     with bit-identical tensor data and the same loss log, and rank 0 alone writes.
# Ends with "N passed, N failed".
B=${1:-build}
DATA=${FTI_DATA:-../shared/data}
MPIRUN=${MPIRUN:-mpirun}
# loopback only (no network in containers): shared memory + self, ob1; root needs the flag
MPIFLAGS=${MPIFLAGS:---oversubscribe --mca btl self,vader --mca pml ob1}
case "$MPIFLAGS" in *allow-run-as-root*) ;; *) [ "$(id -u)" = 0 ] && MPIFLAGS="--allow-run-as-root $MPIFLAGS" ;; esac
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_plm_rsh_agent=false
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
TMP=$(mktemp -d /tmp/fti-mpi.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# 1. library cases
$MPIRUN $MPIFLAGS -np 2 "$B/test-mpi" "$TMP" > "$TMP/lib.txt" 2> "$TMP/lib.err"
cat "$TMP/lib.txt"
lp=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$TMP/lib.txt")
lf=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$TMP/lib.txt")
if [ -z "$lp" ]; then
    cat "$TMP/lib.err"; bad "library cases (test-mpi did not finish)"
else
    pass=$((pass + lp)); fail=$((fail + lf))
fi

# 2. fti-train over MPI against one process
corpus=data/corpus/bierce/devils_dictionary.jsonl # shipped; else the data dir's copy
[ -f "$corpus" ] || corpus="$DATA/corpus/bierce_devils_dictionary/devils_dictionary.jsonl"
if [ ! -f "$corpus" ]; then
    echo "(no $corpus: the fti-train cases are skipped)"
else
    "$B/fti-feature" --home "$TMP/ws1" ingest "$corpus" --vocab 300 > "$TMP/ingest.txt" 2>&1 ||
        { cat "$TMP/ingest.txt"; bad "ingest"; }
    cp -r "$TMP/ws1" "$TMP/ws2"
    opts="--preset tiny --steps 12 --batch 4 --accum 2 --eval-every 6 --checkpoint-every 5 --threads 1 --quiet"
    "$B/fti-train" --home "$TMP/ws1" $opts > "$TMP/one.txt" 2> "$TMP/one.err"
    r1=$?
    $MPIRUN $MPIFLAGS -np 2 "$B/fti-train-mpi" --home "$TMP/ws2" $opts > "$TMP/two.txt" 2> "$TMP/two.err"
    r2=$?
    if [ $r1 != 0 ] || [ $r2 != 0 ]; then
        cat "$TMP/one.err" "$TMP/two.err"; bad "fti-train runs (exit $r1 and $r2)"
    else
        ok "fti-train: one process and mpirun -np 2 both finish"
        id1=$(awk '{w=$NF} END {print w}' "$TMP/one.txt")
        id2=$(awk '{w=$NF} END {print w}' "$TMP/two.txt")
        m1="$TMP/ws1/models/$id1/model.gguf"; m2="$TMP/ws2/models/$id2/model.gguf"
        if "$B/test-mpi" --compare-gguf "$m1" "$m2"; then ok "fti-train: bit-identical weights"
        else bad "fti-train: bit-identical weights"; fi
        # model ids are the GGUF's SHA-256 (no creation time in the file): the same model
        if [ -n "$id1" ] && [ "$id1" = "$id2" ]; then ok "fti-train: the same model id ($id1)"
        else bad "fti-train: the same model id ($id1 vs $id2)"; fi
        run1=$(ls -d "$TMP"/ws1/runs/*); run2=$(ls -d "$TMP"/ws2/runs/*)
        sed 's/"tok_s".*//' "$run1/metrics.jsonl" > "$TMP/l1"
        sed 's/"tok_s".*//' "$run2/metrics.jsonl" > "$TMP/l2"
        if cmp -s "$TMP/l1" "$TMP/l2" && [ "$(wc -l < "$TMP/l2")" = 12 ]; then
            ok "fti-train: the same losses, one metrics log (12 lines)"
        else diff "$TMP/l1" "$TMP/l2" | head; bad "fti-train: the same losses, one metrics log"; fi
        n_models=$("$B/fti-registry" --home "$TMP/ws2" list | grep -vc "^id ")
        n_runs=$(ls "$TMP/ws2/runs" | grep -c .)
        n_words=$(grep -c . "$TMP/two.txt")
        if [ "$n_models" = 1 ] && [ "$n_runs" = 1 ] && [ "$n_words" = 3 ] &&
           [ "$(find "$TMP/ws2" -newer "$TMP/ws2/runs" -name '*.tmp*' | wc -l)" = 0 ]; then
            ok "fti-train: rank 0 alone registers (1 model, 1 run, one output)"
        else bad "fti-train: rank 0 alone registers ($n_models models, $n_runs runs, $n_words lines)"; fi
    fi
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
