#!/bin/sh
# bench_train_bf16_loss.sh: does training with bf16 matmuls (fti_train_opts.bf16, fp32 master
# weights) reach the same loss as fp32? `make bench-train-bf16-loss` runs it.
#
# The experiment: the same model trained on the sample corpus (bytes as tokens, vocab 256; the
# last 10% validates) with fp32 and with bf16 products, for each of several seeds (a seed fixes
# the initial weights and the sampled batches, so fp32 and bf16 of one seed see the same data).
# The seed-to-seed spread of the fp32 runs is the noise; bf16 is "within noise" when the mean
# paired difference bf16 - fp32 is smaller than that spread. Writes, in OUT:
#   <mode>-s<seed>.log   the curves (bench_train --curve)
#   loss.svg             train (thin) and validation (dots) curves, fp32 blue, bf16 red
#   summary.txt          per-seed final losses, means, spreads, differences
# Environment: BIN (build/bench_train), TEXT (the corpus file), STEPS (3000), SEEDS ("1 2 3"),
# PRESET (tiny), BATCH (8), CTX (64), LR (3e-3), EVAL (STEPS/20), JOBS (runs at a time, 6),
# OUT (build/bench/train-bf16-loss), NICE ("nice -n 19").
set -e
BIN=${BIN:-build/bench_train}
TEXT=${TEXT:-../shared/data/corpus/bierce_devils_dictionary/devils_dictionary.txt}
STEPS=${STEPS:-3000}
SEEDS=${SEEDS:-"1 2 3"}
PRESET=${PRESET:-tiny}
BATCH=${BATCH:-8}
CTX=${CTX:-64}
LR=${LR:-3e-3}
EVAL=${EVAL:-$((STEPS / 20))}
JOBS=${JOBS:-6}
OUT=${OUT:-build/bench/train-bf16-loss}
NICE=${NICE:-nice -n 19}
[ -r "$TEXT" ] || { echo "bench_train_bf16_loss: cannot read $TEXT" >&2; exit 1; }
mkdir -p "$OUT"
echo "bf16 loss experiment: preset $PRESET, batch $BATCH x ctx $CTX, $STEPS steps, lr $LR," \
     "seeds $SEEDS, corpus $(basename "$TEXT") (bytes); $JOBS run(s) at a time"
start=$(date +%s)
n=0
for seed in $SEEDS; do
    for mode in fp32 bf16; do
        bf=0; [ $mode = bf16 ] && bf=1
        ( /usr/bin/time -f "cpu_s=%U" $NICE "$BIN" --text "$TEXT" --curve "$STEPS" --preset "$PRESET" \
            --batch "$BATCH" --ctx "$CTX" --lr "$LR" --seed "$seed" --eval-every "$EVAL" --bf16 $bf \
            > "$OUT/$mode-s$seed.log" 2> "$OUT/$mode-s$seed.err" || echo "FAILED" >> "$OUT/$mode-s$seed.log" ) &
        n=$((n + 1))
        if [ $((n % JOBS)) -eq 0 ]; then wait; fi
    done
done
wait
if grep -l FAILED "$OUT"/*.log; then echo "bench_train_bf16_loss: a run failed" >&2; exit 1; fi
cpu=$(cat "$OUT"/*.err | sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' | awk '{ s += $1 } END { printf "%.0f", s }')
echo "wall $(( $(date +%s) - start )) s, cpu $cpu s"

# Summary: final train loss = mean of the logged points of the last 10% of steps (one batch is
# noisy); val = the last validation pass (64 windows of the held-out 10%).
for f in "$OUT"/*-s*.log; do
    b=$(basename "$f" .log)
    awk -v name="$b" -v steps="$STEPS" '
        /^curve(-bf16)? step=/ { split($2, a, "="); split($3, l, "=");
                                 if (a[2] > steps * 0.9) { s += l[2]; n++ } }
        /^curve(-bf16)? val_loss=/ { split($2, v, "="); val = v[2] }
        END { printf "%s %.4f %.4f\n", name, s / n, val }' "$f"
done > "$OUT/final.txt"
awk -v steps="$STEPS" '
    function mean(a, n,   i, s) { s = 0; for (i = 1; i <= n; i++) s += a[i]; return s / n }
    function sd(a, n,   i, m, s) { if (n < 2) return 0; m = mean(a, n); s = 0;
                                   for (i = 1; i <= n; i++) s += (a[i] - m) ^ 2; return sqrt(s / (n - 1)) }
    { split($1, p, "-s"); mode = p[1]; seed = p[2]; tr[mode, seed] = $2; va[mode, seed] = $3;
      if (!(seed in seen)) { seen[seed] = 1; seeds[++ns] = seed } }
    END {
        printf "%-6s %12s %12s %12s %12s %12s %12s\n", "seed", "fp32 train", "bf16 train",
               "diff", "fp32 val", "bf16 val", "diff"
        for (i = 1; i <= ns; i++) {
            s = seeds[i]
            ft[i] = tr["fp32", s]; bt[i] = tr["bf16", s]; dt[i] = bt[i] - ft[i]
            fv[i] = va["fp32", s]; bv[i] = va["bf16", s]; dv[i] = bv[i] - fv[i]
            printf "%-6s %12.4f %12.4f %+12.4f %12.4f %12.4f %+12.4f\n", s, ft[i], bt[i], dt[i],
                   fv[i], bv[i], dv[i]
        }
        printf "%-6s %12.4f %12.4f %+12.4f %12.4f %12.4f %+12.4f\n", "mean", mean(ft, ns),
               mean(bt, ns), mean(dt, ns), mean(fv, ns), mean(bv, ns), mean(dv, ns)
        printf "%-6s %12.4f %12.4f %12s %12.4f %12.4f\n", "sd", sd(ft, ns), sd(bt, ns), "",
               sd(fv, ns), sd(bv, ns)
        nt = sd(ft, ns); nv = sd(fv, ns)
        printf "train: bf16 - fp32 = %+.4f (paired sd %.4f) vs fp32 seed-to-seed sd %.4f: %s\n",
               mean(dt, ns), sd(dt, ns), nt, (mean(dt, ns) ^ 2 <= nt ^ 2 ? "within noise" : "OUTSIDE noise")
        printf "val:   bf16 - fp32 = %+.4f (paired sd %.4f) vs fp32 seed-to-seed sd %.4f: %s\n",
               mean(dv, ns), sd(dv, ns), nv, (mean(dv, ns) ^ 2 <= nv ^ 2 ? "within noise" : "OUTSIDE noise")
        printf "BENCH train bf16-loss-val ours=%.4f peer=%.4f ratio=%.4f unit=loss(bf16 vs fp32)\n",
               mean(bv, ns), mean(fv, ns), mean(fv, ns) / mean(bv, ns)
    }' "$OUT/final.txt" | tee "$OUT/summary.txt"

# The SVG: every run's train curve (thin line) and validation passes (dots).
for f in "$OUT"/*-s*.log; do
    b=$(basename "$f" .log)
    sed -n "s/^curve\(-bf16\)\{0,1\} \(val \)\{0,1\}step=\([0-9]*\) loss=\([0-9.]*\)/$b \2\3 \4/p" "$f"
done | awk -v steps="$STEPS" -v title="$PRESET, batch $BATCH x ctx $CTX, seeds $SEEDS: fp32 (blue) vs bf16 matmuls (red); lines train, dots validation" '
    { run = $1; isval = ($2 == "val"); st = isval ? $3 : $2; lo = isval ? $4 : $3
      k = ++n[run, isval]; S[run, isval, k] = st; Lo[run, isval, k] = lo
      if (!(run in seen)) { seen[run] = 1; runs[++nr] = run }
      if (st >= steps / 20) { if (lo > ymax) ymax = lo }
      if (ymin == "" || lo < ymin) ymin = lo }
    function X(s) { return 60 + 700 * s / steps }
    function Y(l) { if (l > ymax) l = ymax; return 40 + 400 * (ymax - l) / (ymax - ymin) }
    END {
        ymin = int(ymin * 10) / 10; ymax = int(ymax * 10 + 1) / 10
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"490\" font-family=\"sans-serif\" font-size=\"11\">\n"
        printf "<rect width=\"800\" height=\"490\" fill=\"white\"/>\n<text x=\"60\" y=\"22\" font-size=\"12\">%s</text>\n", title
        printf "<rect x=\"60\" y=\"40\" width=\"700\" height=\"400\" fill=\"none\" stroke=\"#888\"/>\n"
        for (i = 0; i <= 5; i++) {
            l = ymin + (ymax - ymin) * i / 5; s = steps * i / 5
            printf "<text x=\"55\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n", Y(l) + 4, l
            printf "<line x1=\"60\" x2=\"760\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", Y(l), Y(l)
            printf "<text x=\"%.1f\" y=\"455\" text-anchor=\"middle\">%d</text>\n", X(s), s
        }
        printf "<text x=\"410\" y=\"478\" text-anchor=\"middle\">step</text>\n"
        for (r = 1; r <= nr; r++) {
            run = runs[r]; col = (run ~ /^bf16/) ? "#d62728" : "#1f77b4"
            printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"0.8\" stroke-opacity=\"0.6\" points=\"", col
            for (k = 1; k <= n[run, 0]; k++) printf "%.1f,%.1f ", X(S[run, 0, k]), Y(Lo[run, 0, k])
            printf "\"/>\n"
            for (k = 1; k <= n[run, 1]; k++)
                printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", X(S[run, 1, k]), Y(Lo[run, 1, k]), col
        }
        printf "</svg>\n"
    }' > "$OUT/loss.svg"
echo "wrote $OUT/loss.svg and $OUT/summary.txt"
