# mk/infer.mk: the inference part's benchmark and the size report.
#   make bench-infer   speed vs llama.cpp (node-llama-cpp) and PyTorch (tools/bench_infer.sh)
#   make size          code size of a minimal inference-only program (-Os) and the RAM it needs
#                      to generate with the stories15M shape in Q8_0
BENCH_TARGETS += bench-infer
.PHONY: bench-infer size

$(B)/bench_infer: tools/bench_infer.c tools/bench_bw.h fti.h | $(B)
	$(CC) $(STD) -O2 $(WARN) $(CFLAGS) -I. -o $@ tools/bench_infer.c $(LDLIBS)

# the same with the decode step's per-phase profile (bench_infer run prints it)
$(B)/bench_infer_prof: tools/bench_infer.c tools/bench_bw.h fti.h | $(B)
	$(CC) $(STD) -O2 $(WARN) $(CFLAGS) -DFTI_DECODE_PROFILE -I. -o $@ tools/bench_infer.c $(LDLIBS)

bench-infer: $(B)/bench_infer
	B=$(B) sh tools/bench_infer.sh

$(B)/size_infer: tools/size_infer.c fti.h | $(B)
	$(CC) $(STD) -Os $(WARN) -DFTI_NO_TRAIN -DFTI_NO_STORE -DFTI_NO_SERVER \
	    -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables \
	    -Wl,--gc-sections -I. -o $@ tools/size_infer.c $(LDLIBS)

size: $(B)/size_infer $(B)/bench_infer
	@size $(B)/size_infer | awk 'NR == 2 { printf "size: minimal inference program (-Os, gc-sections, no unwind tables): text %d bytes (%.1f KB), data %d, bss %d\n", $$1, $$1 / 1024, $$2, $$3 }'
	@$(B)/bench_infer make stories15M q8_0 $(B)/size-stories15M-q8_0.gguf
	@$(B)/size_infer $(B)/size-stories15M-q8_0.gguf
	@rm -f $(B)/size-stories15M-q8_0.gguf
