# mk/fuzz.mk: the libFuzzer targets (see tests/fuzz/README.md, docs/hardening.md).
#   make fuzz FUZZ_SECONDS=N   every target N seconds (default 30), FUZZ_JOBS at once (2), after
#                              replaying its regression inputs; fails on any finding
#   make fuzz-ci               what CI runs: every target FUZZ_CI_SECONDS (15) s, 2 at once
#   make fuzz-long             10 minutes per target
#   make fuzz-build            the one ASan+UBSan libFuzzer program holding every target,
#                              build/fuzz/fti-fuzz (FTI_FUZZ_TARGET=NAME picks one), with links
#                              build/fuzz/fuzz-NAME to it
#   make fuzz-execs            executions per target summed over every run (build/fuzz/executions.log)
FUZZ_SECONDS    ?= 30
FUZZ_CI_SECONDS ?= 15
FUZZ_JOBS       ?= 2
FUZZ_SRCS       := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS    := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_CC         ?= clang
FUZZ_FLAGS      ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_OUT        ?= $(B)/fuzz
# hashes and digests built without coverage feedback (see the file): same checks, cheaper runs
FUZZ_COV_IGNORE := -fsanitize-coverage-ignorelist=tests/fuzz/coverage.ignore

# the list of targets the one program holds (tests/fuzz/driver.c includes it)
$(FUZZ_OUT)/fuzz_targets.h: $(FUZZ_SRCS) mk/fuzz.mk
	@mkdir -p $(FUZZ_OUT)
	@{ for f in $(FUZZ_SRCS); do echo "#include \"$$(basename $$f)\""; done; \
	   echo "static const fti__fuzz_entry fti__fuzz_entries[] = {"; \
	   for t in $(FUZZ_TARGETS); do echo "    {\"$$t\", fti_fuzz_$$t},"; done; \
	   echo "    {NULL, NULL}};"; } > $@.tmp && mv $@.tmp $@

$(FUZZ_OUT)/fti-fuzz: tests/fuzz/driver.c tests/fuzz/fuzz_tmp.h $(FUZZ_SRCS) $(FUZZ_OUT)/fuzz_targets.h fti.h \
                      tests/fuzz/coverage.ignore
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_COV_IGNORE) -Itests/fuzz -I$(FUZZ_OUT) -o $@ tests/fuzz/driver.c -lm -lpthread
	@for t in $(FUZZ_TARGETS); do ln -sf fti-fuzz $(FUZZ_OUT)/fuzz-$$t; done

.PHONY: fuzz fuzz-ci fuzz-long fuzz-build fuzz-execs
fuzz-build: $(FUZZ_OUT)/fti-fuzz

fuzz: fuzz-build
	FUZZ_BIN=$(FUZZ_OUT)/fti-fuzz FUZZ_DIR=$(FUZZ_OUT) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) \
	    sh tools/fuzz.sh $(FUZZ_ONLY)

fuzz-ci: fuzz-build
	@FUZZ_BIN=$(FUZZ_OUT)/fti-fuzz FUZZ_DIR=$(FUZZ_OUT) FUZZ_SECONDS=$(FUZZ_CI_SECONDS) FUZZ_JOBS=2 \
	    sh tools/fuzz.sh

fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=600

fuzz-execs:
	@awk '{n[$$2] += $$3} END {for (t in n) printf "%-18s %12d\n", t, n[t]}' $(FUZZ_OUT)/executions.log | sort
