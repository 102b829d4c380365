# mk/train.mk — targets of the training part (05 model, 07 train).
#   make bench-train      tokens/s of a full training step (forward, backward, AdamW) of the
#                         stories15M shape, vocab 4096, batch 8 x context 256, at 1 and 2
#                         threads, against the same model and step in PyTorch (Debian
#                         python3-torch), with achieved FLOP/s and peak RSS (~2-3 minutes);
#                         also with bf16 matmuls (fti_train_opts.bf16; fp32 master weights),
#                         the step-bf16-* lines (fp32 products where the CPU lacks AVX512_BF16)
#   make bench-train-bf16-loss   bf16 matmuls vs fp32 loss curves: the tiny preset on the sample
#                         corpus (bytes), 3 seeds x {fp32, bf16}, BF16_LOSS_STEPS steps each, all
#                         six runs at once at nice 19 (about 2 min of CPU at 3000 steps; e.g.
#                         BF16_LOSS_PRESET=small BF16_LOSS_CTX=128 BF16_LOSS_LR=1e-3 for the
#                         bigger shape); writes build/bench/train-bf16-loss/loss.svg and
#                         summary.txt (tools/bench_train_bf16_loss.sh)
#   make train-goldens    re-run tools/torch_reference.py (rewrites tests/data/model/)
# PyTorch runs with OpenBLAS's own pool bounded (OPENBLAS_NUM_THREADS) and without the
# OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE overrides, so the peer runs at its best on this CPU.

BENCH_TARGETS += bench-train
TORCH_PY ?= /usr/bin/python3
BENCH_TRAIN_STEPS ?= 3
TORCH_ENV = env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u FTI_ISA

BF16_LOSS_STEPS ?= 3000
BF16_LOSS_JOBS ?= 6
BF16_LOSS_PRESET ?= tiny
BF16_LOSS_CTX ?= 64
BF16_LOSS_LR ?= 3e-3

.PHONY: bench-train bench-train-bf16-loss train-goldens
$(B)/bench_train: tools/bench_train.c tools/bench_peak.h fti.h | $(B)
	$(CC) $(STD) -O2 -g $(WARN) $(CFLAGS) -I. -o $@ $< $(LDLIBS)

bench-train: $(B)/bench_train
	@echo "bench-train: stories15M shape, vocab 4096, batch 8 x ctx 256; best of $(BENCH_TRAIN_STEPS) steps"
	@set -e; \
	o1=$$($(TORCH_ENV) ./$(B)/bench_train --threads 1 --steps $(BENCH_TRAIN_STEPS)); echo "$$o1"; \
	o2=$$($(TORCH_ENV) ./$(B)/bench_train --threads 2 --steps $(BENCH_TRAIN_STEPS)); echo "$$o2"; \
	b1=$$($(TORCH_ENV) ./$(B)/bench_train --threads 1 --steps $(BENCH_TRAIN_STEPS) --bf16 1); echo "$$b1"; \
	b2=$$($(TORCH_ENV) ./$(B)/bench_train --threads 2 --steps $(BENCH_TRAIN_STEPS) --bf16 1); echo "$$b2"; \
	p1=$$($(TORCH_ENV) OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(TORCH_PY) tools/torch_reference.py \
	      --bench --threads 1 --steps $(BENCH_TRAIN_STEPS)); echo "$$p1"; \
	p2=$$($(TORCH_ENV) OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 $(TORCH_PY) tools/torch_reference.py \
	      --bench --threads 2 --steps $(BENCH_TRAIN_STEPS)); echo "$$p2"; \
	f1=$$(echo "$$o1" | sed 's/.*tokens\/s=\([0-9.]*\).*/\1/'); \
	f2=$$(echo "$$o2" | sed 's/.*tokens\/s=\([0-9.]*\).*/\1/'); \
	t1=$$(echo "$$p1" | sed 's/.*tokens\/s=\([0-9.]*\).*/\1/'); \
	t2=$$(echo "$$p2" | sed 's/.*tokens\/s=\([0-9.]*\).*/\1/'); \
	g1=$$(echo "$$b1" | sed 's/.*tokens\/s=\([0-9.]*\).*/\1/'); \
	g2=$$(echo "$$b2" | sed 's/.*tokens\/s=\([0-9.]*\).*/\1/'); \
	awk -v f1=$$f1 -v f2=$$f2 -v t1=$$t1 -v t2=$$t2 -v g1=$$g1 -v g2=$$g2 'BEGIN { \
	    best = t1 > t2 ? t1 : t2; \
	    printf "BENCH train step-t1 ours=%.1f peer=%.1f ratio=%.2f unit=tok/s\n", f1, t1, f1 / t1; \
	    printf "BENCH train step-t2 ours=%.1f peer=%.1f ratio=%.2f unit=tok/s\n", f2, best, f2 / best; \
	    printf "BENCH train step-bf16-t1 ours=%.1f peer=%.1f ratio=%.2f unit=tok/s\n", g1, t1, g1 / t1; \
	    printf "BENCH train step-bf16-t2 ours=%.1f peer=%.1f ratio=%.2f unit=tok/s\n", g2, best, g2 / best; \
	    printf "(peer at 2 threads: %.1f tok/s; t2 compares with PyTorch'"'"'s best thread count; targets: t1 >= 1.3, t2 >= 2)\n", t2; }'

bench-train-bf16-loss: $(B)/bench_train
	BIN=$(B)/bench_train STEPS=$(BF16_LOSS_STEPS) JOBS=$(BF16_LOSS_JOBS) PRESET=$(BF16_LOSS_PRESET) \
	    CTX=$(BF16_LOSS_CTX) LR=$(BF16_LOSS_LR) OUT=$(B)/bench/train-bf16-loss \
	    sh tools/bench_train_bf16_loss.sh

train-goldens:
	$(TORCH_PY) tools/torch_reference.py
