# mk/kernels.mk — targets of the kernels part (02).
#   make bench-kernels   fti GEMM/GEMV vs OpenBLAS (needs libopenblas-dev), ~2-3 minutes
#   make kernels-qemu    the kernels tests cross-built for aarch64 (NEON, NEON+SDOT) under qemu
# OpenBLAS is linked only into the benchmark; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset so
# the peer runs at its best on this CPU.

BENCH_TARGETS += bench-kernels
CHECK_TARGETS += kernels-qemu
AARCH64_CC ?= aarch64-linux-gnu-gcc
QEMU_AARCH64 ?= qemu-aarch64

.PHONY: bench-kernels kernels-qemu
$(B)/bench_kernels: tools/bench_kernels.c tools/bench_bw.h tools/bench_peak.h fti.h | $(B)
	$(CC) $(STD) -O2 -g $(WARN) $(CFLAGS) -I. -o $@ $< -lopenblas -lm -lpthread

bench-kernels: $(B)/bench_kernels
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u OPENBLAS_NUM_THREADS -u FTI_ISA \
	    ./$(B)/bench_kernels $(BENCH_KERNELS_ARGS)

$(B)/fti-test-aarch64: tests/main.c tests/test.h $(B)/tests_gen.c $(TESTS) fti.h | $(B)
	$(AARCH64_CC) -static $(STD) -O2 $(WARN) $(CFLAGS) -I$(B) -Itests -o $@ tests/main.c \
	    -lm -lpthread

# twice: the default qemu CPU (NEON + SDOT table) and a Cortex-A53 (plain NEON table)
# (skipped with a note when the cross compiler or qemu is missing)
kernels-qemu:
	@if command -v $(AARCH64_CC) >/dev/null 2>&1 && command -v $(QEMU_AARCH64) >/dev/null 2>&1; \
	then $(MAKE) -s $(B)/fti-test-aarch64 && \
	     $(QEMU_AARCH64) ./$(B)/fti-test-aarch64 kernels && \
	     $(QEMU_AARCH64) -cpu cortex-a53 ./$(B)/fti-test-aarch64 kernels; \
	else echo "kernels-qemu: skipped ($(AARCH64_CC) or $(QEMU_AARCH64) not installed)"; fi
