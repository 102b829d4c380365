# mk/serve.mk: the server and monitoring part's benchmark and end-to-end check.
#   make bench-serve   tokens/s and latency at 1/4/16/64 clients vs fti-infer run sequentially
#   make check-serve   fti-serve + fti-loadgen + fti-monitor end to end (SIGTERM exit 0,
#                      report exit 0 / 3), part of `make check`
BENCH_TARGETS += bench-serve
CHECK_TARGETS += check-serve
.PHONY: bench-serve check-serve

# $(B)/bench_infer (the model maker) is built by mk/infer.mk's rule.
bench-serve: $(B)/fti-serve $(B)/fti-loadgen $(B)/fti-infer $(B)/bench_infer
	B=$(B) sh tools/bench_serve.sh

check-serve: $(B)/fti-serve $(B)/fti-loadgen $(B)/fti-monitor
	B=$(B) sh tests/serve_e2e.sh
