#!/bin/sh
# check.sh: the strict and portability matrix behind `make check` (STYLE T2, M3, M4), plus the
# hardening checks of issue 10 (docs/hardening.md) and a bounded run of every fuzz target.
# Each step prints "check: <name> ok|FAILED (seconds)"; the script exits non-zero if any failed.
# Steps whose tool is missing are reported as skipped (CI installs them all: see .ci/run).
# Extra make targets named on the command line (parts' CHECK_TARGETS) run near the end.
#
# Time (CI's 15-minute budget): the programs and the test runner are built once, into build/
# with -Werror, so that `make test` afterwards (and check-serve) reuse them; clang checks the same
# sources for warnings with -fsyntax-only; the independent configurations then run in two lanes
# (2 cores), with the I/O-bound kill -9 loop in a third. FUZZ_CI_SECONDS (default 15) per fuzz
# target, 2 at once; CHECK_FUZZ=0 skips the fuzz step.
set -u
B=build/check
mkdir -p "$B"
WSTRICT="-Wall -Wextra -Wpedantic -Wshadow -Werror"
STRICT="-std=c99 $WSTRICT"
LIBS="-lm -lpthread"
# Test-name filters that exercise threads (pool, kernels, server); parts add theirs here.
TSAN_TESTS=${TSAN_TESTS:-"kernels_ server_ http_ infer_decode infer_threads harden_infer_concurrent harden_server"}
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_CI_SECONDS=${FUZZ_CI_SECONDS:-15}
T_START=$(date +%s)
fails=0
log="$B/log.txt"
: > "$log"

# CPU seconds used by this shell's finished children (user + system), from the output of
# `times` (run in this shell itself: a subshell starts from zero): on a loaded machine the wall
# time says little, the CPU time is what the step costs
cpu_read() {
    awk 'NR == 2 { split($1, a, "m"); split($2, b, "m"); printf "%d", a[1] * 60 + a[2] + b[1] * 60 + b[2] }' "$1"
}
step() { # step NAME COMMAND...: runs COMMAND with its output in $log
    name=$1; shift
    t0=$(date +%s)
    times > "$log.t0"
    if "$@" >>"$log" 2>&1; then r=ok; else r=FAILED; fails=$((fails + 1)); fi
    times > "$log.t1"
    c0=$(cpu_read "$log.t0") c1=$(cpu_read "$log.t1")
    if [ "$r" = FAILED ]; then
        # one printf, so that lanes running at the same time do not cut into it
        printf 'check: %-34s %s (%ss, cpu %ss)\n---- output of %s (last 40 lines) ----\n%s\n----\n' \
            "$name" "$r" "$(( $(date +%s) - t0 ))" "$((c1 - c0))" "$name" "$(tail -n 40 "$log")"
    else
        printf 'check: %-34s %s (%ss, cpu %ss)\n' "$name" "$r" "$(( $(date +%s) - t0 ))" "$((c1 - c0))"
    fi
    : > "$log"
}
have() { command -v "$1" >/dev/null 2>&1; }
skip() { printf 'check: %-34s skipped (%s not installed)\n' "$1" "$2"; }

# lane ID FUNCTION: runs FUNCTION in the background with its own log; lanes_join waits for all
lane() {
    id=$1; shift
    (
        log="$B/log-$id.txt"
        : > "$log"
        fails=0
        "$@"
        echo "$fails" > "$B/lane-$id.fails"
    ) &
}
lanes_join() {
    wait
    for f in "$B"/lane-*.fails; do
        [ -f "$f" ] || continue
        fails=$((fails + $(cat "$f")))
        rm -f "$f"
    done
}

runner() { # runner CC OUT EXTRA_FLAGS...: build the test runner
    cc=$1; out=$2; shift 2
    $cc $STRICT "$@" -Ibuild -Itests -o "$out" tests/main.c $LIBS
}

# --- phase 1: what the later steps need ---------------------------------------------------

# 1. fti.h is what src/ generates
step "amalgamation up to date" make -s check-amalgamation

# 1b. the house style's 100 columns (STYLE.md C4; characters, not bytes; the generated Unicode
# tables excepted)
line_width() {
    if LC_ALL=C.UTF-8 grep -nE '^.{101}' src/*.[ch] examples/*.c tools/*.c tests/*.c tests/*.h \
        tests/*/*.c | grep -v '^src/03_tables.c:'; then
        echo "lines over 100 columns (above)"
        return 1
    fi
}
step "lines within 100 columns" line_width

# 2. each part compiles alone with only the parts before it (M4), 2 at once
part_alone() { # part_alone INNER SRC
    tu="$B/alone_$(basename "$2")"
    echo "#define FTI_IMPLEMENTATION" > "$tu"
    for p in src/[0-9][0-9]_*.c; do
        case " $1 " in *" $p "*) continue ;; esac
        echo "#include \"../../$p\"" >> "$tu"
        [ "$p" = "$2" ] && break
    done
    gcc $STRICT -Wno-unused-function -fsyntax-only -Isrc "$tu"
}
parts_alone() {
    # parts that another part #includes for its standalone build (e.g. generated tables)
    inner=$(grep -ho '#include "[0-9][0-9]_[A-Za-z0-9_]*\.c"' src/*.c | sed 's/.*"\(.*\)"/src\/\1/')
    rc=0 pids=""
    for c in src/[0-9][0-9]_*.c; do
        case " $inner " in *" $c "*) continue ;; esac
        part_alone "$inner" "$c" & pids="$pids $!"
        set -- $pids
        if [ $# -ge "$JOBS" ]; then wait "$1" || rc=1; pids=${pids#* $1}; fi
    done
    for p in $pids; do wait "$p" || rc=1; done
    return $rc
}
step "each part alone (gcc)" parts_alone

# 3. gcc -O2 -Werror: the test runner and every program, into build/ (what `make test` runs:
#    it finds them up to date); clang: the same sources with -fsyntax-only (its warnings come
#    from the front end)
PROGS=$(ls examples/*.c tools/fti-*.c 2>/dev/null)
gcc_all() {
    for f in $PROGS; do n=$(basename "$f" .c); rm -f "build/fti-${n#fti-}"; done
    rm -f build/fti-test
    make -s -j"$JOBS" CC=gcc WARN="-Wall -Wextra -Wpedantic -Wshadow -Werror" build/fti-test all
}
step "gcc strict runner and programs" gcc_all
clang_syntax() {
    printf '%s\n' tests/main.c $PROGS | xargs -P "$JOBS" -I{} sh -c \
        'case {} in tests/*) inc="-Ibuild -Itests" ;; *) inc="-I." ;; esac
         clang '"$STRICT"' -fsyntax-only $inc {}'
}
if have clang; then step "clang strict runner and programs" clang_syntax
else skip "clang strict" clang; fi

# --- phase 2: the configurations, in lanes ---------------------------------------------------

lane_a() {
    # C++, link tests, FTI_STATIC, the quick start
    if have g++; then
        step "g++ -std=c++11 include" g++ -std=c++11 -Wall -Wextra -Werror -o "$B/cxx" tests/compile/cxx.cpp $LIBS
        step "c++ program runs" "$B/cxx"
    else skip "g++" g++; fi
    step "two-TU link" gcc $STRICT -o "$B/link" tests/compile/link_a.c tests/compile/link_b.c $LIBS
    step "two-TU link runs" "$B/link"
    step "FTI_STATIC two copies" gcc $STRICT -o "$B/static" tests/compile/static_a.c tests/compile/static_b.c $LIBS
    step "FTI_STATIC runs" "$B/static"
    step "quick start compiles" gcc $STRICT -o "$B/quickstart" tests/compile/quickstart.c $LIBS
    step "quick start runs" "$B/quickstart" tests/compile/quickstart.c
    if [ -f tests/compile/readme_example.c ]; then
        step "README example compiles" gcc $STRICT -O2 -o "$B/readme_example" tests/compile/readme_example.c $LIBS
        # an inference program leaves out the other parts (it once called the store's
        # fti_template_encode: an undefined reference under FTI_NO_STORE)
        step "README example, inference only" gcc $STRICT -O0 -DFTI_NO_STORE -DFTI_NO_TRAIN \
            -DFTI_NO_SERVER -o "$B/readme_example_min" tests/compile/readme_example.c $LIBS
        # a system header before fti.h where the implementation is (glibc, -std=c99): one
        # #error that says so, not a page of implicit declarations
        sys_first() {
            printf '#include <stdlib.h>\n#define FTI_IMPLEMENTATION\n#include "fti.h"\n' \
                > "$B/sys_first.c"
            gcc -std=c99 -I. -fsyntax-only "$B/sys_first.c" 2>&1 |
                grep -q 'include fti.h before any system header'
        }
        step "system header first: a clear #error" sys_first
        # the implementation included again at the end of a file that included fti.h plainly
        # at its top: the same #error, naming the first #include
        impl_late() {
            printf '#include "fti.h"\nint f(void);\n#define FTI_IMPLEMENTATION\n#include "fti.h"\n' \
                > "$B/impl_late.c"
            gcc -std=c99 -I. -fsyntax-only "$B/impl_late.c" 2>&1 |
                grep -q 'FTI_IMPLEMENTATION defined at its first #include'
        }
        step "implementation after a plain include: a clear #error" impl_late
    fi
    # configurations that run the whole suite
    step "FTI_NO_THREADS build" runner gcc "$B/test-nothreads" -O1 -DFTI_NO_THREADS
    step "FTI_NO_THREADS tests" "$B/test-nothreads"
    step "FTI_NO_SIMD+FTI_NO_MMAP build" runner gcc "$B/test-nosimd" -O1 -DFTI_NO_SIMD -DFTI_NO_MMAP
    step "FTI_NO_SIMD+FTI_NO_MMAP tests" "$B/test-nosimd"
    # every other compile-out flag of the README: the runner builds and links with it alone
    # (-O0: ~3 s each), and with all the parts left out at once it runs the quick tests
    compile_out() {
        for f in FTI_NO_SERVER FTI_NO_TRAIN FTI_NO_STORE FTI_NO_AVX512; do
            runner gcc "$B/test-compile-out" -O0 -D$f && "$B/test-compile-out" --list > /dev/null ||
                { echo "with -D$f"; return 1; }
        done
        if have aarch64-linux-gnu-gcc; then
            aarch64-linux-gnu-gcc $STRICT -fsyntax-only -DFTI_NO_DOTPROD -Ibuild -Itests \
                tests/main.c || return 1
        fi
        runner gcc "$B/test-compile-out" -O0 -DFTI_NO_SERVER -DFTI_NO_TRAIN -DFTI_NO_STORE \
            -DFTI_NO_THREADS -DFTI_NO_SIMD -DFTI_NO_MMAP &&
            "$B/test-compile-out" base_ gguf_ model_ fuzz_replay fault_
    }
    step "compile-out flags (FTI_NO_*)" compile_out
    # issue 7's budget for a minimal inference-only program: 150 KB of text under -Os (it grew
    # unnoticed to 323.6 KB once; the -Os build of the attention forms brought it back)
    size_budget() {
        rm -f build/size_infer && make -s build/size_infer || return 1
        size build/size_infer | awk 'NR == 2 { printf "text %d bytes (%.1f KB; budget 150 KB)\n", $1, $1 / 1024; exit !($1 <= 150 * 1024) }'
    }
    step "make size: text within 150 KB" size_budget
    if have tcc; then
        step "tcc build (FTI_NO_SIMD)" tcc -std=c99 -Wall -DFTI_NO_SIMD -Ibuild -Itests -o "$B/test-tcc" tests/main.c $LIBS
        # (unoptimized code: the workspace, fault and crash loops as under qemu, lane B)
        step "tcc tests" "$B/test-tcc" '!twin_' '!fault_' '!crash_'
    else skip "tcc" tcc; fi
    step "ASan+UBSan build" runner gcc "$B/test-asan" -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
    step "ASan+UBSan tests" env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$B/test-asan"
    if have clang; then
        step "TSan build (clang)" runner clang "$B/test-tsan" -O1 -g -fsanitize=thread
        step "TSan threaded tests" env TSAN_OPTIONS=halt_on_error=1 "$B/test-tsan" threads_ $TSAN_TESTS
        # size arithmetic must not wrap: unsigned overflow and implicit truncation are errors,
        # except in the hashes and generators listed in tools/uint_overflow.ignore (they wrap on
        # purpose); the whole suite, kernels included
        step "uint-overflow build (clang)" runner clang "$B/test-uint" -O1 -g \
            -fsanitize=unsigned-integer-overflow,implicit-integer-truncation \
            -fsanitize-ignorelist=tools/uint_overflow.ignore -fno-sanitize-recover=all
        step "uint-overflow tests (all)" env UBSAN_OPTIONS=print_stacktrace=1 "$B/test-uint"
    fi
}

fuzz_build_ok=0
lane_b() {
    # the one libFuzzer program (ASan+UBSan), run at the end
    if [ "${CHECK_FUZZ:-1}" != 0 ] && have clang; then
        step "fuzz build (libFuzzer+ASan+UBSan)" make -s fuzz-build FUZZ_OUT=build/check/fuzz
    fi
    # aarch64 (NEON) under qemu, and a static musl build
    if have aarch64-linux-gnu-gcc && have qemu-aarch64; then
        # the kernels part's target (make kernels-qemu reuses it)
        rm -f build/fti-test-aarch64
        step "aarch64 cross build" make -s WARN="-Wall -Wextra -Wpedantic -Wshadow -Werror" build/fti-test-aarch64
        # every test but the workspace (twin_), fault-injection and crash loops: the same C
        # on top of the kernels, training and inference the other tests run here, and 40% of
        # the emulated time (qemu runs compute 100-150 times slower than native)
        step "aarch64 tests under qemu" env FTI_TEST_TIMEOUT=1200 qemu-aarch64 \
            build/fti-test-aarch64 '!twin_' '!fault_' '!crash_'
    else skip "aarch64" "aarch64-linux-gnu-gcc/qemu-aarch64"; fi
    if have musl-gcc; then
        step "musl static build" runner musl-gcc "$B/test-musl" -O2 -static
        step "musl static tests" "$B/test-musl"
        # the implementation once, each example against it (as the Makefile builds them)
        musl_one() {
            n=$(basename "$1" .c)
            musl-gcc $STRICT -O1 -static -DFTI_IMPLEMENTATION_DONE -I. -o "$B/musl-fti-$n" "$1" \
                "$B/musl-fti.o" $LIBS && "$B/musl-fti-$n" --help > /dev/null
        }
        musl_examples() {
            musl-gcc $STRICT -O1 -DFTI_IMPLEMENTATION -c -x c -o "$B/musl-fti.o" fti.h || return 1
            ok=0
            for e in examples/*.c; do
                [ -f "$e" ] || continue
                musl_one "$e" || ok=1
            done
            return $ok
        }
        step "musl static examples --help" musl_examples
    else skip "musl" musl-gcc; fi
    if have cppcheck; then
        # Three cppcheck 2.10 kinds are suppressed, each a false positive here: objectIndex (hashing
        # one byte through &byte, 1), invalidFunctionArg on log(sum) where sum >= 1 (it holds exp(0)),
        # and invalidPointerCast (row bytes of a weight matrix read as float, and int32 scratch placed
        # after float scratch in one allocation: both aligned, neither aliases an object of another type).
        step "cppcheck" cppcheck -q --std=c99 --enable=warning,portability --inline-suppr \
            --suppress=objectIndex --suppress=invalidFunctionArg --suppress=invalidPointerCast \
            -DFTI_IMPLEMENTATION -DFTI_TESTING --error-exitcode=1 fti.h
    else skip "cppcheck" cppcheck; fi
    # hardening (issue 10, docs/hardening.md): fault loops over every k, valgrind on the
    # programs, the clang static analyzer
    step "fault loops, every k" env FTI_FAULT_FULL=1 build/fti-test fault_
    # the AVX2 table on this (AVX-512) machine: the kernels and the batched-vs-session decode
    # tests, which once failed only there (without AVX2, FTI_ISA=avx2 falls back to auto)
    step "AVX2 table: kernels, batch and server decode" env FTI_ISA=avx2 build/fti-test \
        kernels batch_prefill_matches_session server_batch_decode_matches_sessions
    if have valgrind; then
        # memcheck of the stage programs on a slice of the demo corpus: ingest, train a few
        # steps of a very small model, generate
        valgrind_programs() {
            d="$B/valgrind"
            rm -rf "$d" && mkdir -p "$d/in" || return 1
            head -n 120 data/corpus/bierce/devils_dictionary.jsonl > "$d/in/a.jsonl" || return 1
            vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
            $vg build/fti-feature --home "$d/home" ingest "$d/in" --vocab 300 --threads 1 \
                --quiet || return 1
            $vg build/fti-train --home "$d/home" --dim 32 --layers 1 --heads 2 --kv-heads 1 \
                --hidden 64 --context 32 --steps 2 --batch 2 --threads 1 --quiet || return 1
            id=$(ls "$d/home/models" | grep -v aliases | head -n 1)
            $vg build/fti-infer --home "$d/home" --alias "$id" --prompt "CYNIC, n." -n 8 \
                --threads 1 || return 1
            # the server with the real engine (its generator lives in examples/serve.c; the
            # library's server tests use a stand-in): templated, retrieved, monitored requests
            $vg build/fti-serve --home "$d/home" --alias "$id" --port 0 --port-file "$d/port" \
                --threads 1 --quiet &
            vpid=$!
            i=0
            while [ ! -s "$d/port" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
            [ -s "$d/port" ] && build/fti-loadgen --port "$(cat "$d/port")" -c 2 -n 2 \
                --max-tokens 4 --prompt "A CYNIC is a blackguard" > "$d/load.txt"
            lrc=$?
            kill -TERM $vpid 2>/dev/null
            wait $vpid
            src=$?
            [ $lrc -eq 0 ] && [ $src -eq 0 ] || { cat "$d/load.txt"; return 1; }
        }
        step "valgrind: feature, train, infer, serve" valgrind_programs
    else skip "valgrind" valgrind; fi
    if have scan-build && have clang; then
        # the clang static analyzer over the whole implementation; any finding fails (none today)
        scan_tu() {
            printf '#define FTI_IMPLEMENTATION\n#define FTI_TESTING\n#include "../../fti.h"\n' \
                > "$B/scan_tu.c"
            scan-build -o "$B/scan" --status-bugs clang -std=c99 -O1 -c -o "$B/scan_tu.o" "$B/scan_tu.c"
        }
        step "scan-build (clang analyzer)" scan_tu
    else skip "scan-build" scan-build; fi
}

# the kill -9 loop waits on fsync and on its children: a lane of its own
lane_c() {
    step "kill -9 loop, 300 kills" env FTI_CRASH_KILLS=300 build/fti-test crash_store_kill9_loop
}

if [ -x build/fti-test ]; then
    lane a lane_a
    lane b lane_b
    lane c lane_c
    lanes_join
else
    echo "check: build/fti-test did not build: the configurations are not run"
fi

# --- phase 3: parts' own checks (2 at once), then the fuzz targets ----------------------------
extra() { # extra LANE: the targets dealt to this lane
    i=0
    for t in $EXTRA_TARGETS; do
        if [ $((i % 2)) -eq "$1" ]; then step "make $t" make -s "$t"; fi
        i=$((i + 1))
    done
}
EXTRA_TARGETS="$*"
if [ -n "$EXTRA_TARGETS" ]; then
    lane e0 extra 0
    lane e1 extra 1
    lanes_join
fi

if [ -x build/check/fuzz/fti-fuzz ]; then
    # every target FUZZ_CI_SECONDS, 2 at once, after replaying its regression inputs
    step "fuzz: every target ${FUZZ_CI_SECONDS}s" env FUZZ_BIN=build/check/fuzz/fti-fuzz \
        FUZZ_DIR=build/check/fuzz FUZZ_SECONDS="$FUZZ_CI_SECONDS" FUZZ_JOBS=2 sh tools/fuzz.sh
    sed 's/^/check:   /' build/check/fuzz/summary.txt 2>/dev/null
fi

times > "$log.t1"
echo "check: $(( $(date +%s) - T_START )) s in all, cpu $(cpu_read "$log.t1") s"
if [ $fails -ne 0 ]; then echo "check: $fails step(s) FAILED"; exit 1; fi
echo "check: all steps passed"
