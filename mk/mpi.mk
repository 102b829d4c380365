# mk/mpi.mk — data-parallel training over MPI (FTI_MPI; src/07_train_mpi.c, docs/training-mpi.md).
#   make test-mpi          mpirun -np 2 against one process: the library cases of
#                          tests/mpi/test_mpi.c and fti-train end to end (bit-identical weights);
#                          installs Debian's OpenMPI (openmpi-bin, libopenmpi-dev) if mpicc is
#                          missing; ends with "N passed, N failed"
#   make bench-train-mpi   tokens/s at 1 and 2 ranks against one process at 1 and 2 threads, and
#                          the communication share of a step (stories15M shape and tiny)
# Programs built with mpicc -DFTI_MPI: build/fti-train-mpi (examples/train.c), build/test-mpi,
# build/bench-mpi. Nothing else in the build needs MPI.

MPICC ?= mpicc
MPIRUN ?= mpirun
# loopback only: shared memory + self (containers have no network); root needs the flag
# (if the container forbids process_vm_readv, add --mca btl_vader_single_copy_mechanism none)
MPIFLAGS ?= --oversubscribe --mca btl self,vader --mca pml ob1 \
            $(if $(filter 0,$(shell id -u)),--allow-run-as-root)
MPI_ENV = env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMPI_MCA_plm_rsh_agent=false
BENCH_MPI_STEPS ?= 3
BENCH_TARGETS += bench-train-mpi

.PHONY: test-mpi bench-train-mpi mpi-install
mpi-install:
	@command -v $(MPICC) > /dev/null 2>&1 || { \
	  echo "mpicc missing: installing Debian's OpenMPI (openmpi-bin libopenmpi-dev)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      openmpi-bin libopenmpi-dev > /dev/null; }

$(B)/fti-train-mpi: examples/train.c fti.h | $(B)
	$(MAKE) -s mpi-install
	$(MPICC) $(STD) $(OPT) $(WARN) $(CFLAGS) -DFTI_MPI -I. -o $@ examples/train.c $(LDLIBS)

$(B)/test-mpi: tests/mpi/test_mpi.c fti.h | $(B)
	$(MAKE) -s mpi-install
	$(MPICC) $(STD) $(OPT) $(WARN) $(CFLAGS) -DFTI_MPI -I. -o $@ tests/mpi/test_mpi.c $(LDLIBS)

$(B)/bench-mpi: tests/mpi/bench_mpi.c fti.h | $(B)
	$(MAKE) -s mpi-install
	$(MPICC) $(STD) -O2 -g $(WARN) $(CFLAGS) -DFTI_MPI -I. -o $@ tests/mpi/bench_mpi.c $(LDLIBS)

test-mpi: $(B)/test-mpi $(B)/fti-train-mpi $(B)/fti-train $(B)/fti-feature $(B)/fti-registry
	@$(MPI_ENV) MPIRUN="$(MPIRUN)" MPIFLAGS="$(MPIFLAGS)" sh tests/mpi/run.sh $(B)

# one process (no mpirun) is the peer; "npW-tN" = W ranks of N threads each
bench-train-mpi: $(B)/bench-mpi
	@set -e; run() { $(MPI_ENV) "$$@"; }; \
	for shape in "stories15M 4096 8 256" "tiny 512 8 64"; do \
	  set -- $$shape; p=$$1; v=$$2; bt=$$3; cx=$$4; \
	  a="--preset $$p --vocab $$v --batch $$bt --ctx $$cx --steps $(BENCH_MPI_STEPS)"; \
	  echo "bench-train-mpi: $$p, vocab $$v, global batch $$bt x ctx $$cx, best of $(BENCH_MPI_STEPS) steps"; \
	  s1=$$(run ./$(B)/bench-mpi $$a --threads 1); echo "  1 process, 1 thread:  $$s1"; \
	  s2=$$(run ./$(B)/bench-mpi $$a --threads 2); echo "  1 process, 2 threads: $$s2"; \
	  r1=$$(run $(MPIRUN) $(MPIFLAGS) -np 1 ./$(B)/bench-mpi $$a --threads 1); echo "  1 rank,    1 thread:  $$r1"; \
	  r2=$$(run $(MPIRUN) $(MPIFLAGS) -np 2 ./$(B)/bench-mpi $$a --threads 1); echo "  2 ranks,   1 thread:  $$r2"; \
	  tk() { echo "$$1" | sed 's/.*tokens\/s=\([0-9.]*\).*/\1/'; }; \
	  sh_() { echo "$$1" | sed 's/.*comm_share=\([0-9.]*\).*/\1/'; }; \
	  rd() { echo "$$1" | sed 's/.*reduce_ms=\([0-9.]*\).*/\1/'; }; \
	  sm() { echo "$$1" | sed 's/.*step_ms=\([0-9.]*\).*/\1/'; }; \
	  awk -v p=$$p -v s1=$$(tk "$$s1") -v s2=$$(tk "$$s2") -v r1=$$(tk "$$r1") -v r2=$$(tk "$$r2") \
	      -v cs=$$(sh_ "$$r2") -v rd=$$(rd "$$r2") -v st=$$(sm "$$r2") 'BEGIN { \
	    printf "BENCH train-mpi %s-np1-t1 ours=%.1f peer=%.1f ratio=%.2f unit=tok/s\n", p, r1, s1, r1 / s1; \
	    printf "BENCH train-mpi %s-np2-t1 ours=%.1f peer=%.1f ratio=%.2f unit=tok/s\n", p, r2, s1, r2 / s1; \
	    printf "BENCH train-mpi %s-np2-vs-t2 ours=%.1f peer=%.1f ratio=%.2f unit=tok/s\n", p, r2, s2, r2 / s2; \
	    printf "(%s, 2 ranks: %.0f%% of a step inside the reduction, waiting included; the reduction alone %.1f ms of a %.1f ms step = %.1f%%)\n", \
	      p, 100 * cs, rd, st, (st > 0 ? 100 * rd / st : 0); }'; \
	done
