/* test_mpi.c: data-parallel training over MPI (FTI_MPI) against one process.
 *
 *   mpirun -np 2 build/test-mpi [TMPDIR]     library cases; rank 0 prints "ok NAME" / "FAIL NAME"
 *   build/test-mpi --compare-gguf A B        exit 0 when the tensor data of A and B are identical
 *
 * Every case trains the same tiny model on a synthetic token stream twice: data-parallel over the
 * communicator, and on rank 0 alone as one process (world_size 0) with the same global batch.
 * Bit-identical weights are required when each rank runs exactly one micro-batch (grad_accum =
 * ranks: the rank-order reduction then sums the micro-batch gradients in the same order as one
 * process does); otherwise (a micro-batch's windows split across ranks, or several micro-batches
 * per rank) the summation order differs and the weights must agree within FTI_MPI_TOL (max
 * absolute difference after the run, relative to the largest weight).
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FTI_MPI_TOL 1e-4

static int g_rank, g_world, g_pass, g_fail;
static const char *g_tmp = "/tmp";

static fti_model_config tiny_config(void) {
    fti_model_config c;
    memset(&c, 0, sizeof(c));
    c.vocab_size = 61;
    c.dim = 32;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.hidden_dim = 56;
    c.context_len = 16;
    c.tied_embeddings = 1;
    return c;
}

/* A learnable synthetic stream: a noisy counter modulo the vocabulary (u16 tokens). */
static uint16_t *tokens(size_t n, uint64_t seed) {
    uint16_t *t = (uint16_t *)malloc(n * sizeof(uint16_t));
    fti_rng r;
    size_t i;
    fti_rng_seed(&r, seed, 3);
    for (i = 0; t && i < n; i++)
        t[i] =
            (uint16_t)(fti_rng_below(&r, 8) == 0 ? fti_rng_below(&r, 61) : (i * 7 + i / 13) % 61);
    return t;
}

static fti_train_opts base_opts(size_t batch, size_t accum) {
    fti_train_opts o;
    memset(&o, 0, sizeof(o));
    o.batch = batch;
    o.ctx = 16;
    o.grad_accum = accum;
    o.lr = 3e-3f;
    o.max_steps = 12;
    o.warmup_steps = 3;
    o.eval_every = 4;
    o.eval_windows = 6;
    o.seed = 77;
    o.n_threads = 1;
    o.checkpoint_every = 6;
    return o;
}

static fti_token_array g_tr, g_va;
static fti_model_config g_cfg;
static float *g_base; /* LoRA base weights */

/* Trains to the end (or to stop_at steps when > 0); returns the trainer. */
static fti_trainer *run(const fti_train_opts *o, uint64_t stop_at, fti_train_mpi *mpi,
                        const float *init) {
    fti_trainer *t = NULL;
    fti_error err;
    fti_train_opts oo = *o;
    if (mpi) fti_train_mpi_attach(mpi, &oo);
    if (fti_trainer_create(&g_cfg, init, &oo, g_tr, g_va, &t, &err) != FTI_OK) {
        fprintf(stderr, "rank %d: create: %s\n", g_rank, err.msg);
        return NULL;
    }
    while (!fti_trainer_done(t)) {
        fti_train_stats st;
        if (stop_at) {
            fti_trainer_stats_get(t, &st);
            if (st.step >= stop_at) break;
        }
        if (fti_trainer_step(t, &st, &err) != FTI_OK) {
            fprintf(stderr, "rank %d: step: %s\n", g_rank, err.msg);
            fti_trainer_free(t);
            return NULL;
        }
    }
    return t;
}

/* Max |a - b| / max |b| over n floats, and whether they are bit-identical. */
static double rel_diff(const float *a, const float *b, size_t n, int *same) {
    double md = 0.0, mb = 0.0;
    size_t i;
    *same = memcmp(a, b, n * sizeof(float)) == 0;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || d != d) md = d;
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static void report(const char *name, int ok, const char *detail) {
    if (g_rank != 0) return;
    if (ok) g_pass++;
    else g_fail++;
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, detail ? "  " : "", detail ? detail : "");
    fflush(stdout);
}

/* Trains over MPI and, on rank 0, alone; compares weights, loss history and validation. */
static void compare_case(const char *name, const fti_train_opts *o, int bitwise, fti_train_mpi *m,
                         const float *init) {
    fti_trainer *par = run(o, 0, m, init), *one = NULL;
    char detail[200];
    int ok = par != NULL, all_ok = 0;
    if (g_rank == 0 && ok) {
        one = run(o, 0, NULL, init);
        ok = one != NULL;
    }
    if (g_rank == 0 && ok) {
        size_t n = fti_model_n_params(&g_cfg), nh1 = 0, nh2 = 0, nv1 = 0, nv2 = 0, i;
        const float *h1 = NULL, *h2 = NULL, *v1 = NULL, *v2 = NULL;
        const uint64_t *s1 = NULL, *s2 = NULL;
        int same, hsame = 1;
        double d = rel_diff(fti_trainer_params(par), fti_trainer_params(one), n, &same), hd = 0;
        fti_trainer_history(par, &h1, &nh1, &s1, &v1, &nv1);
        fti_trainer_history(one, &h2, &nh2, &s2, &v2, &nv2);
        ok = nh1 == nh2 && nv1 == nv2 && nh1 == o->max_steps;
        for (i = 0; ok && i < nh1; i++) {
            double e = fabs((double)h1[i] - (double)h2[i]);
            if (h1[i] != h2[i]) hsame = 0;
            if (e > hd) hd = e;
        }
        for (i = 0; ok && i < nv1; i++) {
            double e = fabs((double)v1[i] - (double)v2[i]);
            if (v1[i] != v2[i]) hsame = 0;
            if (e > hd) hd = e;
        }
        if (bitwise) ok = ok && same && hsame;
        else ok = ok && d <= FTI_MPI_TOL && hd <= 1e-4;
        snprintf(detail, sizeof detail, "(%s; weights max rel diff %.3g, losses max diff %.3g)",
                 same && hsame ? "bit-identical" : "not bit-identical", d, hd);
    } else {
        snprintf(detail, sizeof detail, "(a run failed)");
    }
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    report(name, g_rank == 0 ? ok && all_ok : all_ok, detail);
    fti_trainer_free(par);
    fti_trainer_free(one);
}

/* A data-parallel run checkpoints (rank 0 only) at step 6 and stops; one process resumes the
 * checkpoint and finishes: the same weights as one uninterrupted process. */
static void resume_case(fti_train_mpi *m) {
    fti_train_opts o = base_opts(3, (size_t)g_world);
    char path[512], other[512], detail[160];
    fti_trainer *par, *res = NULL, *one = NULL;
    fti_error err;
    int ok = 0, all_ok = 0;
    snprintf(path, sizeof path, "%s/mpi_ckpt_rank%d.bin", g_tmp, g_rank);
    snprintf(other, sizeof other, "%s/mpi_ckpt_rank%d.bin", g_tmp, g_rank == 0 ? 1 : 0);
    remove(path);
    o.checkpoint_path = path;
    par = run(&o, 6, m, NULL);
    MPI_Barrier(MPI_COMM_WORLD);
    detail[0] = 0;
    if (g_rank != 0) {
        ok = par != NULL && !fti_path_exists(path); /* other ranks write nothing */
    } else if (par && fti_path_exists(path) && !fti_path_exists(other)) {
        fti_train_opts o1 = base_opts(3, (size_t)g_world);
        fti_trainer *r1 = NULL;
        if (fti_trainer_create(&g_cfg, NULL, &o1, g_tr, g_va, &r1, &err) == FTI_OK &&
            fti_trainer_resume(r1, path, &err) == FTI_OK) {
            fti_train_stats st;
            while (!fti_trainer_done(r1) && fti_trainer_step(r1, &st, &err) == FTI_OK) {}
            res = r1;
        } else {
            fprintf(stderr, "resume: %s\n", err.msg);
            fti_trainer_free(r1);
        }
        one = run(&o1, 0, NULL, NULL);
        if (res && one) {
            int same;
            double d = rel_diff(fti_trainer_params(res), fti_trainer_params(one),
                                fti_model_n_params(&g_cfg), &same);
            ok = same;
            snprintf(detail, sizeof detail, "(%s; max rel diff %.3g)",
                     same ? "bit-identical" : "not bit-identical", d);
        }
    }
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    report("checkpoint_by_rank0_resumes_in_one_process", all_ok, detail[0] ? detail : NULL);
    remove(path);
    fti_trainer_free(par);
    fti_trainer_free(res);
    fti_trainer_free(one);
}

/* The reduction alone on odd sizes: every rank gets the rank-order sum. */
static void reduce_case(fti_train_mpi *m) {
    static const size_t sizes[] = {1, 7, 1000, 4099};
    size_t s, i;
    int ok = 1, all_ok = 0, j;
    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = (float *)malloc(n * sizeof(float)), *want = (float *)malloc(n * sizeof(float));
        double loss = 0.25 * (g_rank + 1);
        if (!x || !want) return;
        for (i = 0; i < n; i++) {
            for (j = 0; j < g_world; j++) {
                float v = (float)sin((double)(i * 31 + (size_t)j * 7 + 1)) * (float)(j + 1);
                if (j == 0) want[i] = v;
                else want[i] += v;
                if (j == g_rank) x[i] = v;
            }
        }
        if (fti_train_mpi_reduce(m, x, n, &loss) != FTI_OK) ok = 0;
        if (memcmp(x, want, n * sizeof(float)) != 0) ok = 0;
        if (fabs(loss - 0.25 * g_world * (g_world + 1) / 2) > 1e-12) ok = 0;
        free(x);
        free(want);
    }
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    report("reduce_rank_order_odd_sizes", all_ok, NULL);
}

static int compare_gguf(const char *a, const char *b) {
    fti_gguf *ga = NULL, *gb = NULL;
    fti_error err;
    int rc = 1;
    if (fti_gguf_open(&ga, a, NULL, &err) != FTI_OK ||
        fti_gguf_open(&gb, b, NULL, &err) != FTI_OK) {
        fprintf(stderr, "compare-gguf: %s\n", err.msg);
    } else {
        size_t la = fti_gguf_file_size(ga) - fti_gguf_data_offset(ga);
        size_t lb = fti_gguf_file_size(gb) - fti_gguf_data_offset(gb);
        const unsigned char *da = (const unsigned char *)fti_gguf_file_data(ga) +
                                  fti_gguf_data_offset(ga);
        const unsigned char *db = (const unsigned char *)fti_gguf_file_data(gb) +
                                  fti_gguf_data_offset(gb);
        rc = la == lb && memcmp(da, db, la) == 0 ? 0 : 1;
        printf("tensor data %s (%lu and %lu bytes)\n", rc == 0 ? "identical" : "DIFFERS",
               (unsigned long)la, (unsigned long)lb);
    }
    fti_gguf_close(ga);
    fti_gguf_close(gb);
    return rc;
}

int main(int argc, char **argv) {
    fti_train_mpi m;
    fti_error err;
    uint16_t *tr, *va;
    if (argc == 4 && strcmp(argv[1], "--compare-gguf") == 0) return compare_gguf(argv[2], argv[3]);
    MPI_Init(&argc, &argv);
    if (argc > 1) g_tmp = argv[1];
    if (fti_train_mpi_init(&m, MPI_COMM_WORLD, &err) != FTI_OK) {
        fprintf(stderr, "test-mpi: %s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    g_rank = m.rank;
    g_world = m.world;
    g_cfg = tiny_config();
    tr = tokens(3000, 1);
    va = tokens(400, 2);
    g_tr.data = tr;
    g_tr.n_tokens = 3000;
    g_tr.token_bytes = 2;
    g_va.data = va;
    g_va.n_tokens = 400;
    g_va.token_bytes = 2;
    if (g_rank == 0) printf("test-mpi: %d ranks\n", g_world);
    fflush(stdout);
    reduce_case(&m);
    {
        fti_train_opts o = base_opts(3, (size_t)g_world);
        compare_case("one_microbatch_per_rank_bitwise", &o, 1, &m, NULL);
    }
    {
        fti_train_opts o = base_opts(2 * (size_t)g_world, 1);
        compare_case("windows_split_across_ranks_tol", &o, 0, &m, NULL);
    }
    {
        fti_train_opts o = base_opts(3, 2 * (size_t)g_world);
        compare_case("two_microbatches_per_rank_tol", &o, 0, &m, NULL);
    }
    {
        fti_train_opts o = base_opts(3, (size_t)g_world);
        size_t n = fti_model_n_params(&g_cfg);
        g_base = (float *)malloc(n * sizeof(float));
        fti_model_init_params(&g_cfg, g_base, 5);
        o.lora_rank = 2;
        compare_case("lora_one_microbatch_per_rank_bitwise", &o, 1, &m, g_base);
        free(g_base);
    }
    resume_case(&m);
    if (g_rank == 0) printf("%d passed, %d failed\n", g_pass, g_fail);
    fti_train_mpi_free(&m);
    free(tr);
    free(va);
    MPI_Finalize();
    return g_fail ? 1 : 0;
}
