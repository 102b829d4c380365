/* test_train_mpi.c: the trainer's data-parallel hook (fti_train_opts.world_size, rank, reduce)
 * without MPI: two threads play two ranks, joined by an in-process reduce that sums in rank order
 * as fti_train_mpi_reduce does. The MPI transport itself is tested by make test-mpi
 * (tests/mpi/). */
#include <sched.h>

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_THREADS)
typedef struct fti_tdp_group {
    fti_mutex mu;
    int world, arrived, gen;
    float *g[2];
    double *l[2];
    float *sum;
    size_t n;
} fti_tdp_group;

typedef struct fti_tdp_rank {
    fti_tdp_group *grp;
    int rank;
    fti_train_opts o;
    fti_trainer *t;
    int ok;
} fti_tdp_rank;

static fti_result fti_tdp_reduce(void *user, float *grads, size_t n, double *loss_sum) {
    fti_tdp_rank *rk = (fti_tdp_rank *)user;
    fti_tdp_group *g = rk->grp;
    int my_gen, done, r;
    size_t i;
    double l;
    fti_mutex_lock(&g->mu);
    g->g[rk->rank] = grads;
    g->l[rk->rank] = loss_sum;
    my_gen = g->gen;
    if (++g->arrived == g->world) { /* the last to arrive sums, in rank order */
        for (i = 0; i < n; i++) g->sum[i] = g->g[0][i];
        for (r = 1; r < g->world; r++)
            for (i = 0; i < n; i++) g->sum[i] += g->g[r][i];
        l = *g->l[0];
        for (r = 1; r < g->world; r++) l += *g->l[r];
        for (r = 0; r < g->world; r++) *g->l[r] = l;
        g->arrived = 0;
        g->gen++;
    }
    fti_mutex_unlock(&g->mu);
    for (;;) {
        fti_mutex_lock(&g->mu);
        done = g->gen != my_gen;
        fti_mutex_unlock(&g->mu);
        if (done) break;
        sched_yield();
    }
    /* the sum stays put until every rank has arrived at the next reduction */
    memcpy(grads, g->sum, n * sizeof(float));
    return FTI_OK;
}

static fti_model_config fti_tdp_config(void) {
    fti_model_config c;
    memset(&c, 0, sizeof(c));
    c.vocab_size = 53;
    c.dim = 24;
    c.n_layers = 2;
    c.n_heads = 3;
    c.n_kv_heads = 1;
    c.hidden_dim = 40;
    c.context_len = 12;
    c.tied_embeddings = 0;
    return c;
}

static fti_token_array fti_tdp_tr, fti_tdp_va;

static void fti_tdp_rank_run(void *ctx, size_t b, size_t e, int thread) {
    fti_tdp_rank *rk = (fti_tdp_rank *)ctx + thread;
    fti_model_config c = fti_tdp_config();
    fti_error err;
    (void)b;
    (void)e;
    rk->ok = 0;
    if (fti_trainer_create(&c, NULL, &rk->o, fti_tdp_tr, fti_tdp_va, &rk->t, &err) != FTI_OK)
        return;
    while (!fti_trainer_done(rk->t))
        if (fti_trainer_step(rk->t, NULL, &err) != FTI_OK) return;
    rk->ok = 1;
}

/* Runs world 2 over threads and one process; returns the max |difference| of the weights
 * (-1 on failure) and whether they, the loss history and the validation losses are identical. */
static double fti_tdp_compare(const fti_train_opts *o, int *identical) {
    fti_tdp_group grp;
    fti_tdp_rank rk[2];
    fti_pool *pool = fti_pool_create(2);
    fti_model_config c = fti_tdp_config();
    fti_trainer *one = NULL;
    fti_error err;
    size_t n = fti_model_n_params(&c), i, nh1 = 0, nh2 = 0, nv1 = 0, nv2 = 0;
    const float *h1 = NULL, *h2 = NULL, *v1 = NULL, *v2 = NULL;
    const uint64_t *s1 = NULL, *s2 = NULL;
    double d = -1.0;
    int r;
    *identical = 0;
    memset(&grp, 0, sizeof(grp));
    memset(rk, 0, sizeof(rk));
    if (!pool || fti_pool_threads(pool) != 2 || fti_mutex_init(&grp.mu) != FTI_OK) {
        fti_pool_free(pool);
        return -2.0; /* no threads: skipped */
    }
    grp.world = 2;
    grp.n = n;
    grp.sum = (float *)fti_malloc(n * sizeof(float));
    for (r = 0; r < 2; r++) {
        rk[r].grp = &grp;
        rk[r].rank = r;
        rk[r].o = *o;
        rk[r].o.world_size = 2;
        rk[r].o.rank = r;
        rk[r].o.reduce = fti_tdp_reduce;
        rk[r].o.reduce_user = &rk[r];
    }
    if (grp.sum) fti_pool_each(pool, fti_tdp_rank_run, rk);
    if (grp.sum && rk[0].ok && rk[1].ok &&
        fti_trainer_create(&c, NULL, o, fti_tdp_tr, fti_tdp_va, &one, &err) == FTI_OK) {
        while (!fti_trainer_done(one))
            if (fti_trainer_step(one, NULL, &err) != FTI_OK) break;
        if (fti_trainer_done(one)) {
            const float *a = fti_trainer_params(rk[0].t), *b = fti_trainer_params(one);
            d = 0.0;
            for (i = 0; i < n; i++) {
                double e = fabs((double)a[i] - (double)b[i]);
                if (e > d || e != e) d = e;
            }
            fti_trainer_history(rk[0].t, &h1, &nh1, &s1, &v1, &nv1);
            fti_trainer_history(one, &h2, &nh2, &s2, &v2, &nv2);
            *identical = memcmp(a, b, n * sizeof(float)) == 0 &&
                         memcmp(a, fti_trainer_params(rk[1].t), n * sizeof(float)) == 0 &&
                         nh1 == nh2 && nv1 == nv2 &&
                         memcmp(h1, h2, nh1 * sizeof(float)) == 0 &&
                         memcmp(v1, v2, nv1 * sizeof(float)) == 0;
        }
    }
    fti_trainer_free(one);
    fti_trainer_free(rk[0].t);
    fti_trainer_free(rk[1].t);
    fti_free(grp.sum);
    fti_mutex_destroy(&grp.mu);
    fti_pool_free(pool);
    return d;
}

static fti_train_opts fti_tdp_opts(size_t batch, size_t accum) {
    fti_train_opts o;
    memset(&o, 0, sizeof(o));
    o.batch = batch;
    o.ctx = 12;
    o.grad_accum = accum;
    o.lr = 3e-3f;
    o.max_steps = 6;
    o.warmup_steps = 2;
    o.eval_every = 3;
    o.eval_windows = 4;
    o.seed = 5;
    o.n_threads = 1;
    return o;
}
#endif

FTI_TEST(train_mpi_hook_threads_as_ranks) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_THREADS)
    uint16_t tr[700], va[120];
    fti_rng rng;
    size_t i;
    int same;
    double d;
    fti_train_opts o;
    fti_rng_seed(&rng, 9, 9);
    for (i = 0; i < 700; i++) tr[i] = (uint16_t)((i * 5 + fti_rng_below(&rng, 3)) % 53);
    for (i = 0; i < 120; i++) va[i] = (uint16_t)((i * 5 + fti_rng_below(&rng, 3)) % 53);
    fti_tdp_tr.data = tr;
    fti_tdp_tr.n_tokens = 700;
    fti_tdp_tr.token_bytes = 2;
    fti_tdp_va.data = va;
    fti_tdp_va.n_tokens = 120;
    fti_tdp_va.token_bytes = 2;
    /* one micro-batch per rank: bit-identical to one process */
    o = fti_tdp_opts(3, 2);
    d = fti_tdp_compare(&o, &same);
    if (d == -2.0) {
        fprintf(stderr, "    (no 2-thread pool: skipped)\n");
        return;
    }
    CHECK(d == 0.0);
    CHECK(same);
    /* odd batch split across ranks: rounding only */
    o = fti_tdp_opts(4, 1);
    d = fti_tdp_compare(&o, &same);
    CHECK(d >= 0.0 && d < 1e-4);
    /* two micro-batches per rank */
    o = fti_tdp_opts(3, 4);
    d = fti_tdp_compare(&o, &same);
    CHECK(d >= 0.0 && d < 1e-4);
    /* with residual dropout: the ranks drop the elements one process would */
    o = fti_tdp_opts(3, 2);
    o.dropout = 0.25f;
    d = fti_tdp_compare(&o, &same);
    CHECK(d == 0.0);
    CHECK(same);
    o = fti_tdp_opts(4, 1);
    o.dropout = 0.25f;
    d = fti_tdp_compare(&o, &same);
    CHECK(d >= 0.0 && d < 1e-4);
#endif
}

FTI_TEST(train_mpi_hook_rejects_bad_split) {
#ifndef FTI_NO_TRAIN
    fti_model_config c;
    fti_train_opts o;
    fti_trainer *t = NULL;
    fti_error err;
    uint16_t tr[200];
    fti_token_array a, none;
    size_t i;
    memset(&c, 0, sizeof(c));
    c.vocab_size = 53;
    c.dim = 24;
    c.n_layers = 1;
    c.n_heads = 3;
    c.hidden_dim = 40;
    c.context_len = 12;
    for (i = 0; i < 200; i++) tr[i] = (uint16_t)(i % 53);
    a.data = tr;
    a.n_tokens = 200;
    a.token_bytes = 2;
    memset(&none, 0, sizeof(none));
    memset(&o, 0, sizeof(o));
    o.batch = 3;
    o.grad_accum = 1;
    o.ctx = 12;
    o.world_size = 2; /* neither 3 windows nor 1 micro-batch divide over 2 ranks */
    o.reduce = NULL;
    CHECK(fti_trainer_create(&c, NULL, &o, a, none, &t, &err) == FTI_ERR_INVALID);
    CHECK(t == NULL);
    o.batch = 4;
    CHECK(fti_trainer_create(&c, NULL, &o, a, none, &t, &err) == FTI_ERR_INVALID); /* no reduce */
    o.world_size = 0; /* one process: rank and reduce ignored */
    o.rank = 5;
    REQUIRE(fti_trainer_create(&c, NULL, &o, a, none, &t, &err) == FTI_OK);
    fti_trainer_free(t);
#endif
}
