#!/bin/sh
# bench_infer.sh: `make bench-infer`. Decode/prefill speed, time to first token, load time, peak RSS
# and decode bandwidth of fti's engine on the stories15M and stories110M shapes (random weights,
# vocab 32000, untied output) in F32, Q8_0 and Q4_0 at 1 and 2 threads, against llama.cpp
# (node-llama-cpp 3.21.1's prebuilt CPU build, same GGUF file, its best thread count) and
# PyTorch (f32 with a KV cache, same file).
#
#   BENCH_INFER_SHAPES="stories15M stories110M"  BENCH_INFER_TYPES="f32 q8_0 q4_0"
#   BENCH_INFER_N=256 (decode tokens)  BENCH_INFER_PROMPT=128 (prompt tokens)
#   BENCH_INFER_REPEAT=2 (runs of fti and of llama.cpp per case; the fastest decode counts)
#   BENCH_INFER_LONG=700 (prompt tokens of the long-context KV cache cases)
#   FTI_BENCH_CACHE=$HOME/.cache/fti-bench (node-llama-cpp is installed under infer/ there)
# Each model file is flushed to disk (sync) before anything is timed, and fti runs before the
# peers, so neither the kernel's write-back of a file just written nor anything a peer leaves
# behind lands in fti's runs.
# Prints a table and one line per case: BENCH infer <case> ours=<x> peer=<y> ratio=<r> unit=<u>
# (ratio > 1: fti is better). Peers that are missing are skipped (reported as such).
# Decode bandwidth is also measured at the same moments as the machine's (stories110M,
# bench_infer run --paired): a whole run's average against the best 1 ms copy of a separate
# measurement reads low whenever neighbours on a shared host take bandwidth in bursts.
# KV cache types (stories110M Q8_0 and Q4_0): fti's q8 cache against its own f16 one (the peer
# column of those lines), at the standard prompt and at BENCH_INFER_LONG prompt tokens, and the
# decode bandwidth with a q8 cache.
set -u
B=${B:-build}
SHAPES=${BENCH_INFER_SHAPES:-"stories15M stories110M"}
TYPES=${BENCH_INFER_TYPES:-"f32 q8_0 q4_0"}
N=${BENCH_INFER_N:-256}
P=${BENCH_INFER_PROMPT:-128}
R=${BENCH_INFER_REPEAT:-2}
PL=${BENCH_INFER_LONG:-700}
CACHE=${FTI_BENCH_CACHE:-$HOME/.cache/fti-bench}
NODE_MODULES=$CACHE/infer/node_modules
TMP=${TMPDIR:-/tmp}/fti-bench-infer.$$
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT INT TERM

have_node=0
if command -v node >/dev/null 2>&1; then
    if [ ! -d "$NODE_MODULES/node-llama-cpp" ] && command -v npm >/dev/null 2>&1; then
        echo "bench-infer: installing node-llama-cpp@3.21.1 into $CACHE/infer" >&2
        mkdir -p "$CACHE/infer"
        (cd "$CACHE/infer" && { [ -f package.json ] || echo '{"name":"fti-bench-infer","private":true}' > package.json; } &&
         npm install --no-audit --no-fund node-llama-cpp@3.21.1 >/dev/null 2>&1) || true
    fi
    [ -d "$NODE_MODULES/node-llama-cpp" ] && have_node=1
fi
have_torch=0
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 -c "import torch, numpy" 2>/dev/null && have_torch=1

val() { # val KEY LINE
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}
best_of() { # best_of R CMD...: the whole output of the run with the highest decode_tps
    n=$1; shift; out=""; bd=-1; i=0
    while [ $i -lt "$n" ]; do
        r=$("$@" 2>/dev/null); d=$(val decode_tps "$(echo "$r" | grep decode_tps)")
        if awk -v a="${d:-0}" -v b="$bd" 'BEGIN { exit !(a > b) }'; then out=$r; bd=${d:-0}; fi
        i=$((i + 1))
    done
    printf '%s\n' "$out"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "") printf "%.2f", a / b; else print "nan" }'; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "") a = 0; if (b == "") b = 0; print (a > b ? a : b) }'; }
bench() { # bench SUITE-CASE OURS PEER UNIT [lower-is-better]
    if [ -z "$3" ] || [ -z "$2" ]; then echo "BENCH infer $1 ours=${2:-nan} peer=nan ratio=nan unit=$4"; return; fi
    if [ "${5:-}" = lower ]; then r=$(ratio "$3" "$2"); else r=$(ratio "$2" "$3"); fi
    echo "BENCH infer $1 ours=$2 peer=$3 ratio=$r unit=$4"
}

bwl1=$("$B/bench_infer" bw --threads 1)
bwl2=$("$B/bench_infer" bw --threads 2)
cbw1=$(val copy_gbps "$bwl1"); rbw1=$(val read_gbps "$bwl1")
cbw2=$(val copy_gbps "$bwl2"); rbw2=$(val read_gbps "$bwl2")
echo "bench-infer: memory bandwidth: copy $cbw1 GB/s, read $rbw1 GB/s (1 thread); copy $cbw2 GB/s, read $rbw2 GB/s (2 threads)"
echo "BENCH infer machine-copy-bw-t1 ours=$cbw1 peer=$cbw1 ratio=1 unit=GB/s"
echo "BENCH infer machine-read-bw-t1 ours=$rbw1 peer=$rbw1 ratio=1 unit=GB/s"
echo "BENCH infer machine-copy-bw-t2 ours=$cbw2 peer=$cbw2 ratio=1 unit=GB/s"
echo "BENCH infer machine-read-bw-t2 ours=$rbw2 peer=$rbw2 ratio=1 unit=GB/s"
frac() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "nan" }'; }
: > "$TMP/fractions"
: > "$TMP/kvtypes"
: > "$TMP/paired"
printf '%-12s %-5s %-3s %9s %9s %9s %8s %8s %8s %9s\n' shape type thr "fti tok/s" "llama" "torch" "prefill" "ttft ms" "rss MB" "GB/s"
for shape in $SHAPES; do
    for type in $TYPES; do
        model="$TMP/$shape-$type.gguf"
        if ! "$B/bench_infer" make "$shape" "$type" "$model" >"$TMP/make.log" 2>&1; then
            echo "bench-infer: cannot make $shape $type: $(cat "$TMP/make.log")" >&2
            continue
        fi
        sync
        o1all=$(best_of "$R" "$B/bench_infer" run "$model" --threads 1 --prompt-tokens "$P" -n "$N" --tokens)
        o2all=$(best_of "$R" "$B/bench_infer" run "$model" --threads 2 --prompt-tokens "$P" -n "$N")
        l1=""; l2=""; t1=""; t2=""; ltok=""
        if [ $have_node = 1 ]; then
            l1all=$(best_of "$R" env FTI_NODE_MODULES="$NODE_MODULES" node tools/bench_infer.mjs "$model" --threads 1 --prompt-tokens "$P" -n "$N" --tokens)
            l1=$(echo "$l1all" | grep decode_tps)
            ltok=$(echo "$l1all" | grep '^tokens')
            l2=$(best_of "$R" env FTI_NODE_MODULES="$NODE_MODULES" node tools/bench_infer.mjs "$model" --threads 2 --prompt-tokens "$P" -n "$N" | grep decode_tps)
        fi
        if [ $have_torch = 1 ] && [ "$type" = f32 ]; then
            tn=$N; [ "$shape" = stories110M ] && tn=64 # PyTorch is slow: fewer tokens suffice
            t1=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/bench_infer.py "$model" --threads 1 --prompt-tokens "$P" -n "$tn" 2>/dev/null | grep decode_tps)
            t2=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/bench_infer.py "$model" --threads 2 --prompt-tokens "$P" -n "$tn" 2>/dev/null | grep decode_tps)
        fi
        lbest=$(best "$(val decode_tps "$l1")" "$(val decode_tps "$l2")")
        tbest=$(best "$(val decode_tps "$t1")" "$(val decode_tps "$t2")")
        lpbest=$(best "$(val prefill_tps "$l1")" "$(val prefill_tps "$l2")")
        for th in 1 2; do
            if [ $th = 1 ]; then oall=$o1all; else oall=$o2all; fi
            o=$(echo "$oall" | grep decode_tps)
            if [ $th = 1 ] && [ -n "$ltok" ]; then
                same=$(echo "$oall" | grep '^tokens' | tr ' ' '\n' > "$TMP/a"; echo "$ltok" | tr ' ' '\n' > "$TMP/b";
                       paste "$TMP/a" "$TMP/b" | awk 'NR > 1 { if ($1 != $2) exit; n++ } END { print n + 0 }')
                echo "bench-infer: $shape $type: greedy tokens equal to llama.cpp's for the first $same of $N"
                # teacher forced: fti fed llama.cpp's tokens; where the argmax differs, by how much
                cmp=$("$B/bench_infer" compare "$model" --prompt-tokens "$P" $(echo "$ltok" | cut -d' ' -f2-))
                echo "bench-infer: $shape $type: llama.cpp's history fed to fti: argmax agrees at $(val teacher_forced_agree "$cmp") of $(val steps "$cmp") steps;" \
                     "where not, fti's own token leads by at most $(val max_diff_margin "$cmp") logits (median gap between the two best: $(val median_top2_gap "$cmp"))"
            fi
            d=$(val decode_tps "$o")
            if [ $th = 1 ]; then lp=$(val decode_tps "$l1"); lpp=$(val prefill_tps "$l1"); tp=$(val decode_tps "$t1"); lt=$(val ttft_ms "$l1"); ll=$(val load_ms "$l1"); bw=$cbw1; rbw=$rbw1
            else lp=$lbest; lpp=$lpbest; tp=$tbest; lt=$(val ttft_ms "$l2"); ll=$(val load_ms "$l2"); bw=$cbw2; rbw=$rbw2; fi
            [ "$tp" = 0 ] && tp=""
            printf '%-12s %-5s %-3s %9s %9s %9s %8s %8s %8s %9s\n' "$shape" "$type" "$th" "$d" "${lp:--}" "${tp:--}" \
                "$(val prefill_tps "$o")" "$(val ttft_ms "$o")" "$(val rss_mb "$o")" "$(val decode_gbps "$o")"
            c="$shape-$type-t$th"
            bench "decode-$c" "$d" "$lp" tokens/s
            bench "prefill-$c" "$(val prefill_tps "$o")" "$lpp" tokens/s
            bench "ttft-$c" "$(val ttft_ms "$o")" "$lt" ms lower
            bench "load-$c" "$(val load_ms "$o")" "$ll" ms lower
            [ -n "$tp" ] && [ "$tp" != 0 ] && bench "decode-vs-torch-$c" "$d" "$tp" tokens/s
            # decode bandwidth: weights only, and weights + the KV cache the steps read, each
            # against the copy and the read bandwidth of the same thread count (target >= 0.8)
            wg=$(val decode_gbps "$o"); kg=$(val decode_gbps_kv "$o")
            bench "bandwidth-$c" "$wg" "$bw" GB/s
            bench "bandwidth-with-kv-$c" "$kg" "$bw" GB/s
            bench "bandwidth-of-read-$c" "$wg" "$rbw" GB/s
            bench "bandwidth-with-kv-of-read-$c" "$kg" "$rbw" GB/s
            printf '%-12s %-5s %-3s %8s %8s %9s %9s %9s %9s\n' "$shape" "$type" "$th" "$wg" "$kg" \
                "$(frac "$wg" "$bw")" "$(frac "$wg" "$rbw")" "$(frac "$kg" "$bw")" "$(frac "$kg" "$rbw")" >> "$TMP/fractions"
            echo "BENCH infer rss-$c ours=$(val rss_mb "$o") peer=nan ratio=nan unit=MB"
            if [ "$shape" = stories110M ]; then
                # the same moments: every decode step followed by one copy and one read run
                # (bench_infer run --paired); medians over the steps, ratio = median of the
                # steps' own ratios (the machine's neighbours take bandwidth in bursts)
                pr=$(best_of "$R" "$B/bench_infer" run "$model" --threads $th --prompt-tokens "$P" -n "$N" --paired | grep paired_frac)
                sg=$(val paired_step_gbps "$pr")
                echo "BENCH infer bandwidth-paired-$c ours=$sg peer=$(val paired_copy_gbps "$pr") ratio=$(val paired_frac "$pr") unit=GB/s"
                echo "BENCH infer bandwidth-paired-of-read-$c ours=$sg peer=$(val paired_read_gbps "$pr") ratio=$(val paired_frac_read "$pr") unit=GB/s"
                printf '%-12s %-5s %-3s %8s %8s %8s %9s %9s %9s %9s
' "$shape" "$type" "$th" "$sg" \
                    "$(val paired_copy_gbps "$pr")" "$(val paired_read_gbps "$pr")" "$(val paired_frac "$pr")" \
                    "$(val paired_frac_read "$pr")" "$(val paired_frac_kv "$pr")" "$(val paired_frac_kv_read "$pr")" >> "$TMP/paired"
            fi
        done
        if [ "$type" = q8_0 ]; then
            # Q8_0 in the table's decode form (fti_engine_opts.repack_q8_0, as fti-serve loads
            # it; AVX2) against the stored rows read in place (the default, as above)
            for th in 1 2; do
                c="$shape-$type-t$th"
                if [ $th = 1 ]; then oall=$o1all; bw=$cbw1; else oall=$o2all; bw=$cbw2; fi
                o=$(echo "$oall" | grep decode_tps)
                pk=$(best_of "$R" "$B/bench_infer" run "$model" --threads $th --prompt-tokens "$P" -n "$N" --repack-q8 | grep decode_tps)
                bench "decode-q8-packed-vs-rows-$c" "$(val decode_tps "$pk")" "$(val decode_tps "$o")" tokens/s
                bench "prefill-q8-packed-vs-rows-$c" "$(val prefill_tps "$pk")" "$(val prefill_tps "$o")" tokens/s
                bench "load-q8-packed-vs-rows-$c" "$(val load_ms "$pk")" "$(val load_ms "$o")" ms lower
                bench "bandwidth-q8-packed-$c" "$(val decode_gbps "$pk")" "$bw" GB/s
            done
        fi
        if [ "$shape" = stories110M ] && { [ "$type" = q4_0 ] || [ "$type" = q8_0 ]; }; then
            # the q8 KV cache against the f16 one (fti both), standard and long prompts
            for th in 1 2; do
                c="$shape-$type-t$th"
                if [ $th = 1 ]; then oall=$o1all; bw=$cbw1; else oall=$o2all; bw=$cbw2; fi
                o=$(echo "$oall" | grep decode_tps)
                q=$(best_of "$R" "$B/bench_infer" run "$model" --threads $th --prompt-tokens "$P" -n "$N" --kv q8 | grep decode_tps)
                fl=$(best_of "$R" "$B/bench_infer" run "$model" --threads $th --prompt-tokens "$PL" -n "$N" | grep decode_tps)
                ql=$(best_of "$R" "$B/bench_infer" run "$model" --threads $th --prompt-tokens "$PL" -n "$N" --kv q8 | grep decode_tps)
                bench "decode-kv-q8-vs-f16-$c" "$(val decode_tps "$q")" "$(val decode_tps "$o")" tokens/s
                bench "decode-long-kv-q8-vs-f16-$c" "$(val decode_tps "$ql")" "$(val decode_tps "$fl")" tokens/s
                bench "bandwidth-kv-q8-$c" "$(val decode_gbps "$q")" "$bw" GB/s
                bench "bandwidth-with-kv-q8-$c" "$(val decode_gbps_kv "$q")" "$bw" GB/s
                printf '%-12s %-5s %-3s %9s %9s %9s %9s %9s %9s %8s %8s\n' "$shape" "$type" "$th" \
                    "$(val decode_tps "$o")" "$(val decode_tps "$q")" "$(val decode_tps "$fl")" "$(val decode_tps "$ql")" \
                    "$(val rss_mb "$fl")" "$(val rss_mb "$ql")" "$(frac "$(val decode_gbps "$q")" "$bw")" \
                    "$(frac "$(val decode_gbps_kv "$q")" "$bw")" >> "$TMP/kvtypes"
            done
        fi
        rm -f "$model"
    done
done
echo "bench-infer: decode bandwidth (GB/s) and its fraction of the machine's bandwidth at the same thread count"
echo "  (copy t1 $cbw1, t2 $cbw2; read t1 $rbw1, t2 $rbw2 GB/s; w = weights only, w+kv = weights + the f16 KV cache read; target >= 0.80)"
printf '%-12s %-5s %-3s %8s %8s %9s %9s %9s %9s\n' shape type thr "w GB/s" "w+kv" "w/copy" "w/read" "w+kv/copy" "w+kv/read"
cat "$TMP/fractions"
if [ -s "$TMP/paired" ]; then
    echo "bench-infer: the same, measured at the same moments: after every decode step one copy and one read run"
    echo "  (8 MiB each); medians over the $N steps of the step's GB/s, of the runs' GB/s, and of each step's ratio"
    printf '%-12s %-5s %-3s %8s %8s %8s %9s %9s %9s %9s\n' shape type thr "w GB/s" "copy" "read" "w/copy" "w/read" "w+kv/copy" "w+kv/read"
    cat "$TMP/paired"
fi
if [ -s "$TMP/kvtypes" ]; then
    echo "bench-infer: KV cache types (fti): decode tokens/s with the f16 and the q8 cache at $P and at $PL prompt tokens"
    echo "  (+ $N decoded), peak RSS at $PL, and the q8 runs' bandwidth fractions of copy (weights only, weights + q8 KV)"
    printf '%-12s %-5s %-3s %9s %9s %9s %9s %9s %9s %8s %8s\n' shape type thr "f16" "q8" "f16 long" "q8 long" "rss f16" "rss q8" "w/copy" "w+kv/copy"
    cat "$TMP/kvtypes"
fi
[ $have_node = 1 ] || echo "bench-infer: llama.cpp peer skipped (node-llama-cpp not installed)"
[ $have_torch = 1 ] || echo "bench-infer: PyTorch peer skipped (/usr/bin/python3 torch missing)"
