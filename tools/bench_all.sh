#!/bin/sh
# bench_all.sh TARGET...: runs each benchmark target one after another (never two at once: they
# share 2 cores), keeps each suite's full output in build/bench/TARGET.txt, and collects every
# "BENCH ..." line into build/bench/summary.txt with the machine and date.
set -u
mkdir -p build/bench
sum=build/bench/summary.txt
{
  echo "# fti benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
} > "$sum"
rc=0
for t in "$@"; do
    echo "== make $t"
    if make -s "$t" > "build/bench/$t.txt" 2>&1; then :; else echo "   (failed: see build/bench/$t.txt)"; rc=1; fi
    grep '^BENCH ' "build/bench/$t.txt" | tee -a "$sum"
done
echo "summary: $sum"
exit $rc
