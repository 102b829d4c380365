#!/bin/sh
# test_shards.sh: the sharded-ingest equivalence test (make test-shards, issue 11).
# Ingests a corpus once in one process and once as N = 3 shards (run at the same time on one
# workspace, then `merge --all`), and checks that the merged version is the same version: same id,
# same objects (records, docs, tokenizer, train/val shards, token counts, BM25 index), verify ok,
# partials consumed. Shards are run with GNU parallel when installed, else as background jobs,
# and once more under mpirun (one shard per rank) when mpirun is installed.
# Ends with "N passed, N failed"; exit status 1 if anything failed.
B=${B:-build}
FEAT=$B/fti-feature
DATA=${FTI_DATA:-../shared/data}
W=$B/test-shards
N=3
pass=0 fail=0
check() { # check NAME CONDITION-EXIT-STATUS
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi
}
objects() { # objects HOME ID: "name sha" lines of the version's objects
    /usr/bin/python3 -c "
import json, sys
m = json.load(open(sys.argv[1] + '/store/versions/' + sys.argv[2] + '.json'))
for k in sorted(m['files']): print(k, m['files'][k]['sha256'])
c = m['counts']
print('counts', c['files'], c['records'], c['documents'], c['rejected'], c['duplicates'], c['chunks'])
" "$1" "$2"
}
rm -rf "$W"
mkdir -p "$W/in/sample" "$W/in/more"
# the corpus: the Bierce sample as JSONL, TXT and, made from it, an mbox and a CSV with
# near-duplicate entries spread over several files; plus the store's test inputs
cp "$DATA"/corpus/bierce_devils_dictionary/devils_dictionary.jsonl "$W/in/sample/"
cp tests/data/store/kinds/* "$W/in/more/" 2>/dev/null
/usr/bin/python3 - "$DATA" "$W/in" <<'PY'
import json, sys
data, out = sys.argv[1], sys.argv[2]
recs = [json.loads(l) for l in open(data + '/corpus/bierce_devils_dictionary/devils_dictionary.jsonl')]
for k in range(12):  # 12 files of 40 entries, each entry also slightly changed in another file
    with open('%s/more/part%02d.txt' % (out, k), 'w') as f:
        for r in recs[k * 40:(k + 1) * 40]: f.write(r['text'] + '\n\n')
    with open('%s/more/near%02d.md' % (out, k), 'w') as f:
        f.write('# near %d\n\n' % k)
        for r in recs[k * 40:(k + 1) * 40]: f.write(r['text'].replace(' the ', ' THE ', 1) + '\n\n')
with open(out + '/more/notes.mbox', 'w') as f:
    for i, r in enumerate(recs[:200]):
        f.write('From a@example.com Mon Jan  1 00:00:00 1911\nFrom: A <a@example.com>\n')
        f.write('Subject: %s\n\n%s\n\n' % (r['title'], r['text'].replace('\nFrom ', '\n>From ')))
PY
run_case() { # run_case LABEL RUNNER [ingest options...]
    label=$1; runner=$2; shift 2
    rm -rf "$W/one" "$W/sh"
    id1=$("$FEAT" --home "$W/one" ingest "$W/in" --quiet --threads 1 "$@" 2> "$W/err1" | tail -1)
    case $runner in
    parallel)
        parallel -j "$N" "$FEAT" --home "$W/sh" ingest --shard {}/"$N" "$W/in" --quiet --threads 1 "$@" \
            ::: $(seq 0 $((N - 1))) > "$W/parts" 2> "$W/err2" ;;
    mpirun)
        # one shard per rank: the rank and size come from the launcher's environment
        mpirun --allow-run-as-root --oversubscribe -np "$N" sh -c \
            'r=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-$PMIX_RANK}}; n=${OMPI_COMM_WORLD_SIZE:-$PMI_SIZE}
             exec "$0" --home "$1" ingest --shard "$r/$n" "$2" --quiet --threads 1' \
            "$FEAT" "$W/sh" "$W/in" > "$W/parts" 2> "$W/err2" ;;
    *)
        i=0
        while [ $i -lt $N ]; do
            "$FEAT" --home "$W/sh" ingest --shard $i/$N "$W/in" --quiet --threads 1 "$@" >> "$W/parts" 2>> "$W/err2" &
            i=$((i + 1))
        done
        wait ;;
    esac
    check "$label: $N partials written" $([ "$(ls "$W/sh/store/partials/" 2>/dev/null | grep -c '\.part$')" -eq $N ]; echo $?)
    id2=$("$FEAT" --home "$W/sh" merge --all --quiet --threads 2 "$@" 2> "$W/err3" | tail -1)
    check "$label: merged id = single-process id ($id1)" $([ -n "$id1" ] && [ "$id1" = "$id2" ]; echo $?)
    objects "$W/one" "$id1" > "$W/o1" 2>/dev/null
    objects "$W/sh" "$id2" > "$W/o2" 2>/dev/null
    check "$label: same objects and counts" $([ -s "$W/o1" ] && cmp -s "$W/o1" "$W/o2"; echo $?)
    "$FEAT" --home "$W/sh" verify > /dev/null 2>&1
    check "$label: verify passes on the merged workspace" $?
    check "$label: partials consumed" $([ "$(ls "$W/sh/store/partials/" | grep -c '\.part$')" -eq 0 ]; echo $?)
}
run_case "background jobs" jobs
run_case "background jobs, no tokenizer, dedup 0.7" jobs --no-tokenizer --dedup 0.7
if command -v parallel > /dev/null 2>&1; then run_case "GNU parallel" parallel; else echo "skip GNU parallel (not installed)"; fi
if command -v mpirun > /dev/null 2>&1; then run_case "mpirun" mpirun; else echo "skip mpirun (not installed)"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
