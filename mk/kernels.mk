# mk/kernels.mk — targets of the kernels part (02).
#   make bench-kernels   fti GEMM/GEMV vs OpenBLAS (needs libopenblas-dev), ~2-3 minutes
#   make kernels-qemu    the kernels tests cross-built for aarch64 (NEON) and run under qemu
# OpenBLAS is linked only into the benchmark; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset so
# the peer runs at its best on this CPU.

BENCH_TARGETS += bench-kernels
AARCH64_CC ?= aarch64-linux-gnu-gcc
QEMU_AARCH64 ?= qemu-aarch64

.PHONY: bench-kernels kernels-qemu
$(B)/bench_kernels: tools/bench_kernels.c fti.h | $(B)
	$(CC) $(STD) -O2 -g $(WARN) $(CFLAGS) -I. -o $@ $< -lopenblas -lm -lpthread

bench-kernels: $(B)/bench_kernels
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u OPENBLAS_NUM_THREADS -u FTI_ISA \
	    ./$(B)/bench_kernels $(BENCH_KERNELS_ARGS)

$(B)/fti-test-aarch64: tests/main.c tests/test.h $(B)/tests_gen.c $(TESTS) fti.h | $(B)
	$(AARCH64_CC) -static $(STD) -O2 $(WARN) $(CFLAGS) -I$(B) -Itests -o $@ tests/main.c \
	    -lm -lpthread

kernels-qemu: $(B)/fti-test-aarch64
	$(QEMU_AARCH64) ./$(B)/fti-test-aarch64 kernels
