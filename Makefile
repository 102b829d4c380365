# fti — Makefile. Everything builds into build/. See README.md.
#   make            examples and tools          make test        the test suite
#   make check      strict/portability matrix   make amalgamate  regenerate fti.h from src/
#   make bench      every benchmark             make demo        the twin, end to end
# Parts of the project add their own targets in mk/*.mk (benchmarks, fuzzers, demos).

CC      ?= cc
OPT     ?= -O2 -g
STD     ?= -std=c99
WARN    ?= -Wall -Wextra -Wpedantic -Wshadow
CFLAGS  ?=
LDLIBS  ?= -lm -lpthread
B       := build

SRC_PARTS := $(sort $(wildcard src/*.h src/*.c src/*.txt))
TESTS     := $(sort $(wildcard tests/fuzz/fuzz_*.c)) $(sort $(wildcard tests/test_*.c))
EXAMPLES  := $(patsubst examples/%.c,$(B)/fti-%,$(wildcard examples/*.c))
TOOLS     := $(patsubst tools/%.c,$(B)/%,$(wildcard tools/fti-*.c))

.PHONY: all test check amalgamate check-amalgamation bench demo clean help
all: $(EXAMPLES) $(TOOLS)

help:
	@sed -n '2,5p' Makefile

$(B):
	@mkdir -p $(B)

# --- the amalgamation -------------------------------------------------------------------------
$(B)/amalgamate: tools/amalgamate.c | $(B)
	$(CC) -O1 -o $@ $<

fti.h: $(SRC_PARTS) $(B)/amalgamate
	$(B)/amalgamate -o fti.h src

amalgamate: $(B)/amalgamate
	$(B)/amalgamate -o fti.h src

check-amalgamation: $(B)/amalgamate
	@$(B)/amalgamate -o $(B)/fti.h.check src
	@if cmp -s $(B)/fti.h.check fti.h; then echo "fti.h is up to date"; \
	 else echo "fti.h is stale: run make amalgamate (and commit fti.h)"; exit 1; fi

# --- programs ----------------------------------------------------------------------------------
# Every program is a single-file fti program: it defines FTI_IMPLEMENTATION before including
# fti.h, so `cc -O2 -o twin examples/twin.c -lm -lpthread` builds it alone. Here the
# implementation is compiled once, into $(B)/fti.o, and each program is compiled with
# FTI_IMPLEMENTATION_DONE defined (fti.h's guard against a second copy of the implementation)
# and linked with it: one compile of the implementation (~35 s at -O2) instead of one per program.
$(B)/fti.o: fti.h | $(B)
	$(CC) $(STD) $(OPT) $(WARN) $(CFLAGS) -DFTI_IMPLEMENTATION -c -x c -o $@ fti.h

$(B)/fti-%: examples/%.c $(B)/fti.o | $(B)
	$(CC) $(STD) $(OPT) $(WARN) $(CFLAGS) -DFTI_IMPLEMENTATION_DONE -I. -o $@ $< $(B)/fti.o $(LDLIBS)

$(B)/fti-%: tools/fti-%.c $(B)/fti.o | $(B)
	$(CC) $(STD) $(OPT) $(WARN) $(CFLAGS) -DFTI_IMPLEMENTATION_DONE -I. -o $@ $< $(B)/fti.o $(LDLIBS)

# --- tests -------------------------------------------------------------------------------------
$(B)/tests_gen.c: $(TESTS) tools/gen_tests.sh | $(B)
	sh tools/gen_tests.sh $@ $(TESTS)

# (test_infer.c compiles README's example, tests/compile/readme_example.c, in as a function)
$(B)/fti-test: tests/main.c tests/test.h $(wildcard tests/test_util_*.h) $(B)/tests_gen.c $(TESTS) \
               fti.h tests/compile/readme_example.c
	$(CC) $(STD) $(OPT) $(WARN) $(CFLAGS) -I$(B) -Itests -o $@ tests/main.c $(LDLIBS)

test: $(B)/fti-test all
	./$(B)/fti-test $(TEST_ARGS)

# --- benchmarks, demo (parts add to these lists in mk/*.mk) --------------------------------------
BENCH_TARGETS :=
CHECK_TARGETS :=
-include $(sort $(wildcard mk/*.mk))

bench:
	sh tools/bench_all.sh $(BENCH_TARGETS)

DEMO_PROGS := fti-twin fti-feature fti-train fti-registry fti-infer fti-eval fti-serve fti-loadgen fti-monitor fti-quantize fti-inspect
demo:
	@$(MAKE) -s -j$$(nproc 2>/dev/null || echo 2) $(patsubst %,$(B)/%,$(DEMO_PROGS))
	sh tools/demo.sh

# --- the strict and portability matrix (see tools/check.sh) ------------------------------------
check: fti.h $(B)/tests_gen.c
	sh tools/check.sh $(CHECK_TARGETS)

clean:
	rm -rf $(B)
