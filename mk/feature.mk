# mk/feature.mk — the feature pipeline's benchmark (issue 5).
#   make bench-feature   builds a >= 50 MB corpus under build/bench-feature/corpus from the
#                        sample data and /usr/share/doc, then measures fti-feature ingest
#                        throughput (MB/s of raw input) and peak RSS; see tools/bench_feature.sh.
.PHONY: bench-feature
BENCH_TARGETS += bench-feature

bench-feature: $(B)/fti-feature
	B=$(B) sh tools/bench_feature.sh

# make test-shards   the sharded-ingest equivalence test (issue 11): N = 3 shards (background
#                    jobs, GNU parallel and mpirun when installed) merged = one ingest; ends with
#                    "N passed, N failed". See docs/feature.md.
.PHONY: test-shards
test-shards: $(B)/fti-feature
	B=$(B) sh tools/test_shards.sh
