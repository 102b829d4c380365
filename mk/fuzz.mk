# mk/fuzz.mk: libFuzzer targets (see tests/fuzz/README.md).
#   make fuzz FUZZ_SECONDS=N   every target N seconds (default 30) + regression replay; fails on findings
#   make fuzz-long             10 minutes per target
#   make fuzz-execs            executions per target summed over every run (build/fuzz/executions.log)
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CC      ?= clang
# scratch files of the path-based targets (manifest, shard, card, checkpoint): tmpfs if there is one
FUZZ_TMPDIR  ?= $(shell [ -d /dev/shm ] && echo /dev/shm || echo /tmp)
FUZZ_FLAGS   ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

$(B)/fuzz/fuzz-%: tests/fuzz/fuzz_%.c tests/fuzz/driver.c tests/fuzz/fuzz_tmp.h fti.h
	@mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -DFTI_FUZZ_TARGET=$* -Itests/fuzz -o $@ tests/fuzz/driver.c -lm -lpthread

.PHONY: fuzz fuzz-long fuzz-build fuzz-execs
fuzz-build: $(patsubst %,$(B)/fuzz/fuzz-%,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(B)/fuzz/$$t/corpus; \
	  seeds=tests/fuzz/corpus/$$t; [ -d $$seeds ] || seeds=; \
	  reg=tests/fuzz/regress/$$t; \
	  if [ -d $$reg ] && ls $$reg/* >/dev/null 2>&1; then $(B)/fuzz/fuzz-$$t $$reg/* > $(B)/fuzz/$$t/replay.log 2>&1 \
	    || { echo "fuzz $$t: regression input fails"; tail -20 $(B)/fuzz/$$t/replay.log; exit 1; }; fi; \
	  TMPDIR=$(FUZZ_TMPDIR) $(B)/fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
	    -artifact_prefix=$(B)/fuzz/$$t/ -print_final_stats=1 $(B)/fuzz/$$t/corpus $$seeds \
	    > $(B)/fuzz/$$t/fuzz.log 2>&1 || { echo "fuzz $$t: FINDING (see $(B)/fuzz/$$t/)"; tail -30 $(B)/fuzz/$$t/fuzz.log; exit 1; }; \
	  n=$$(grep -m1 stat::number_of_executed_units $(B)/fuzz/$$t/fuzz.log | awk '{print $$2}'); \
	  echo "fuzz $$t: $$n executions, no findings"; \
	  echo "$$(date -u +%FT%TZ) $$t $$n $(FUZZ_SECONDS)s" >> $(B)/fuzz/executions.log; \
	done

fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=600

fuzz-execs:
	@awk '{n[$$2] += $$3} END {for (t in n) printf "%-18s %12d\n", t, n[t]}' $(B)/fuzz/executions.log | sort
