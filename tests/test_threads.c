/* test_threads.c: the pool's chunking, determinism and reuse. */

typedef struct sum_ctx {
    const float *x;
    float *partial; /* one per chunk */
    size_t n;
    int *hits;      /* one per item */
} sum_ctx;

static void sum_rows(void *ctx, size_t begin, size_t end, int thread) {
    sum_ctx *c = (sum_ctx *)ctx;
    size_t i;
    (void)thread;
    for (i = begin; i < end; i++) {
        /* a per-item result that depends only on the item: deterministic for any split */
        c->partial[i] = c->x[i] * 3.0f + 1.0f / (float)(i + 1);
        c->hits[i]++;
    }
}

FTI_TEST(threads_pool_for_deterministic) {
    size_t n = 10007, i;
    int nt, pass;
    float *x = (float *)fti_malloc(n * sizeof(float));
    float *ref = (float *)fti_malloc(n * sizeof(float));
    float *out = (float *)fti_malloc(n * sizeof(float));
    int *hits = (int *)fti_calloc(n, sizeof(int));
    fti_rng r;
    REQUIRE(x && ref && out && hits);
    fti_rng_seed(&r, 1, 1);
    for (i = 0; i < n; i++) x[i] = fti_rng_normal(&r);
    {
        sum_ctx c;
        c.x = x, c.partial = ref, c.n = n, c.hits = hits;
        fti_pool_for(NULL, n, 1, sum_rows, &c);
    }
    for (nt = 1; nt <= 4; nt *= 2) {
        fti_pool *pool = fti_pool_create(nt);
        REQUIRE(pool != NULL);
#ifdef FTI_NO_THREADS
        CHECK_EQ_INT(fti_pool_threads(pool), 1);
#else
        CHECK_EQ_INT(fti_pool_threads(pool), nt);
#endif
        for (pass = 0; pass < 50; pass++) { /* reuse: many back-to-back jobs */
            sum_ctx c;
            memset(hits, 0, n * sizeof(int));
            c.x = x, c.partial = out, c.n = n, c.hits = hits;
            fti_pool_for(pool, n - (size_t)pass, 1, sum_rows, &c);
            for (i = 0; i < n - (size_t)pass; i++) CHECK_EQ_INT(hits[i], 1);
            CHECK(memcmp(out, ref, (n - (size_t)pass) * sizeof(float)) == 0);
        }
        fti_pool_free(pool);
    }
    fti_free(x);
    fti_free(ref);
    fti_free(out);
    fti_free(hits);
}

typedef struct chunk_log {
    size_t begin[8], end[8];
    int calls;
    fti_mutex mu;
} chunk_log;

static void log_chunk(void *ctx, size_t begin, size_t end, int thread) {
    chunk_log *l = (chunk_log *)ctx;
    fti_mutex_lock(&l->mu);
    if (thread >= 0 && thread < 8) {
        l->begin[thread] = begin;
        l->end[thread] = end;
    }
    l->calls++;
    fti_mutex_unlock(&l->mu);
}

FTI_TEST(threads_chunks_and_grain) {
    fti_pool *pool = fti_pool_create(4);
    chunk_log l;
    REQUIRE(pool != NULL);
    memset(&l, 0, sizeof l);
    CHECK_OK(fti_mutex_init(&l.mu));
    fti_pool_for(pool, 10, 1, log_chunk, &l);
#ifndef FTI_NO_THREADS
    CHECK_EQ_INT(l.calls, 4);
    CHECK(l.begin[0] == 0 && l.end[0] == 3);
    CHECK(l.begin[1] == 3 && l.end[1] == 6);
    CHECK(l.begin[2] == 6 && l.end[2] == 8);
    CHECK(l.begin[3] == 8 && l.end[3] == 10);
#endif
    l.calls = 0;
    fti_pool_for(pool, 10, 8, log_chunk, &l); /* grain 8: two chunks at most */
    CHECK(l.calls <= 2);
    l.calls = 0;
    fti_pool_for(pool, 0, 1, log_chunk, &l);
    CHECK_EQ_INT(l.calls, 0);
    fti_pool_each(pool, log_chunk, &l);
    CHECK_EQ_INT(l.calls, fti_pool_threads(pool));
    fti_mutex_destroy(&l.mu);
    fti_pool_free(pool);
    fti_pool_free(NULL);
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

FTI_TEST(threads_pool_alloc_failures) {
    long k;
    for (k = 1; k <= 6; k++) {
        fti_pool *pool;
        fti_test_alloc_fail_at(k, 0);
        pool = fti_pool_create(4);
        fti_test_alloc_fail_at(0, 0);
        fti_pool_free(pool); /* NULL or a working pool: either way nothing leaks */
        CHECK_EQ_INT(fti_test_alloc_live, 0);
    }
}
