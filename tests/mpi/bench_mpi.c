/* bench_mpi: tokens/s of data-parallel training steps over MPI (make bench-train-mpi).
 *
 *   [mpirun -np W] build/bench-mpi [--preset P] [--vocab V] [--batch B] [--ctx T] [--accum A]
 *                                  [--threads N] [--steps N]
 *
 * Trains synthetic tokens with the global batch B x A windows of T tokens per step (split over
 * the W ranks); after one warm-up step, times `steps` steps. Rank 0 prints one line:
 *   ranks=W threads=N tokens/s=X step_ms=S comm_ms=C comm_share=F reduce_ms=R mb_per_step=M
 * tokens/s is the best step's global tokens / wall time; comm_ms is the time inside the gradient
 * reduction during the steps (mean per step, including waiting for the slower rank), reduce_ms
 * the reduction alone (after a barrier, best of 3), mb_per_step what one rank sends per step.
 * Without mpirun it runs as one process (world 1: no reduction at all).
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    fti_model_config cfg;
    fti_train_opts o;
    fti_token_array tr, none;
    fti_trainer *t = NULL;
    fti_train_mpi m;
    fti_error err;
    const char *preset = "stories15M";
    size_t vocab = 4096, batch = 8, ctx = 256, accum = 1, n_tok = 1 << 20, i, n;
    int threads = 1, steps = 3, s;
    uint16_t *data;
    fti_rng rng;
    double best = 1e30, comm0 = 0, comm_sum, reduce_best = 1e30, sum_step = 0;
    uint64_t bytes0 = 0, bytes_steps;
    MPI_Init(&argc, &argv);
    for (i = 1; i + 1 < (size_t)argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--threads") == 0) threads = atoi(v);
        else if (strcmp(k, "--steps") == 0) steps = atoi(v);
        else if (strcmp(k, "--vocab") == 0) vocab = (size_t)atol(v);
        else if (strcmp(k, "--batch") == 0) batch = (size_t)atol(v);
        else if (strcmp(k, "--ctx") == 0) ctx = (size_t)atol(v);
        else if (strcmp(k, "--accum") == 0) accum = (size_t)atol(v);
        else if (strcmp(k, "--preset") == 0) preset = v;
        else {
            fprintf(stderr, "bench-mpi: unknown option %s\n", k);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    }
    if (fti_train_mpi_init(&m, MPI_COMM_WORLD, &err) != FTI_OK) {
        fprintf(stderr, "bench-mpi: %s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.vocab_size = (uint32_t)vocab;
    if (fti_model_preset(preset, &cfg, NULL) != FTI_OK) MPI_Abort(MPI_COMM_WORLD, 2);
    data = (uint16_t *)malloc(n_tok * sizeof(uint16_t));
    if (!data) MPI_Abort(MPI_COMM_WORLD, 1);
    fti_rng_seed(&rng, 1, 1);
    for (i = 0; i < n_tok; i++) data[i] = (uint16_t)fti_rng_below(&rng, (uint32_t)vocab);
    tr.data = data;
    tr.n_tokens = n_tok;
    tr.token_bytes = 2;
    memset(&none, 0, sizeof(none));
    memset(&o, 0, sizeof(o));
    o.batch = batch;
    o.ctx = ctx;
    o.grad_accum = accum;
    o.max_steps = 1000;
    o.n_threads = threads;
    o.seed = 1;
    fti_train_mpi_attach(&m, &o);
    if (fti_trainer_create(&cfg, NULL, &o, tr, none, &t, &err) != FTI_OK) {
        fprintf(stderr, "bench-mpi: %s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    n = fti_model_n_params(&cfg);
    for (s = 0; s <= steps; s++) {
        double t0;
        if (s == 1) {
            comm0 = m.comm_s;
            bytes0 = m.bytes_sent;
        }
        t0 = MPI_Wtime();
        if (fti_trainer_step(t, NULL, &err) != FTI_OK) {
            fprintf(stderr, "bench-mpi: %s\n", err.msg);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        t0 = MPI_Wtime() - t0;
        if (s > 0) {
            sum_step += t0;
            if (t0 < best) best = t0;
        }
    }
    comm_sum = m.comm_s - comm0;
    bytes_steps = m.bytes_sent - bytes0;
    if (m.world > 1) {
        /* the reduction alone, all ranks lined up: transfer + summation without load imbalance */
        float *g = (float *)malloc(n * sizeof(float));
        if (!g) MPI_Abort(MPI_COMM_WORLD, 1);
        for (i = 0; i < n; i++) g[i] = 1e-3f * (float)(i % 97);
        for (s = 0; s < 3; s++) {
            double t0, l = 0;
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = MPI_Wtime();
            fti_train_mpi_reduce(&m, g, n, &l);
            t0 = MPI_Wtime() - t0;
            if (t0 < reduce_best) reduce_best = t0;
        }
        free(g);
    } else {
        reduce_best = 0;
    }
    if (m.rank == 0) {
        double tok = (double)(batch * ctx * accum);
        printf("ranks=%d threads=%d params=%lu tokens/s=%.1f step_ms=%.1f comm_ms=%.1f "
               "comm_share=%.3f reduce_ms=%.1f mb_per_step=%.2f\n", m.world, threads,
               (unsigned long)n, tok / best, 1e3 * best, steps > 0 ? 1e3 * comm_sum / steps : 0.0,
               sum_step > 0 ? comm_sum / sum_step : 0.0, 1e3 * reduce_best,
               steps > 0 ? (double)bytes_steps / 1e6 / steps : 0.0);
    }
    fti_trainer_free(t);
    fti_train_mpi_free(&m);
    free(data);
    MPI_Finalize();
    return 0;
}
