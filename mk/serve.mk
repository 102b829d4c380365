# mk/serve.mk: the server and monitoring part's benchmark and end-to-end check.
#   make bench-serve   tokens/s and latency at 1/4/16/64 clients vs llama.cpp (node-llama-cpp
#                      behind a node http server), else fti-infer run sequentially
#   make bench-serve SOAK=60   the server's RSS sampled every second under 60 s of load
#                      (SOAK_MODE=echo: the HTTP layer alone, thousands of requests/s)
#   make test-replicas two fti-serve instances behind nginx, a promotion rolling through both
#   make check-serve   fti-serve + fti-loadgen + fti-monitor end to end (SIGTERM exit 0,
#                      report exit 0 / 3), part of `make check`
#   make check-openai  fti-serve through the official OpenAI client library (node and the
#                      `openai` npm package in ~/.cache/fti-bench/openai; skipped without them)
#                      on a tiny model trained in a temporary workspace. Not in `make test` or
#                      `make check`. CHECK_OPENAI_URL=http://host:port/v1 checks that server.
BENCH_TARGETS += bench-serve
CHECK_TARGETS += check-serve
.PHONY: bench-serve check-serve check-openai

# $(B)/bench_infer (the model maker) is built by mk/infer.mk's rule.
bench-serve: $(B)/fti-serve $(B)/fti-loadgen $(B)/fti-infer $(B)/bench_infer
	B=$(B) SOAK=$(or $(SOAK),0) sh tools/bench_serve.sh

check-serve: $(B)/fti-serve $(B)/fti-loadgen $(B)/fti-monitor
	B=$(B) sh tests/serve_e2e.sh

check-openai: $(B)/fti-serve $(B)/fti-feature $(B)/fti-train
	B=$(B) sh tools/check_openai.sh

# replicated serving: two fti-serve instances behind nginx (deploy/nginx/fti.conf)
.PHONY: test-replicas
$(B)/serve_register: tools/serve_register.c fti.h | $(B)
	$(CC) $(STD) $(OPT) $(WARN) $(CFLAGS) -I. -o $@ tools/serve_register.c $(LDLIBS)

test-replicas: $(B)/fti-serve $(B)/fti-loadgen $(B)/fti-monitor $(B)/fti-registry $(B)/bench_infer $(B)/serve_register
	B=$(B) sh tools/test_replicas.sh

# the server's decode step and sampling without HTTP, in CPU time (robust on a busy machine):
#   build/bench_serve_step MODEL [--batch B] [--steps N] [--threads T] [--kv f16|f32]
$(B)/bench_serve_step: tools/bench_serve_step.c fti.h | $(B)
	$(CC) $(STD) $(OPT) $(WARN) $(CFLAGS) -I. -o $@ tools/bench_serve_step.c $(LDLIBS)
