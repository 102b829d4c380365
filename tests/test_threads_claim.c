/* test_threads_claim.c: the pool's chunk claiming (the caller runs chunks no worker has started)
 * and its per-thread scratch memory. */

typedef struct claim_log {
    int hits[4096];     /* per item: how many calls covered it */
    int chunk_of[4096]; /* per item: the `thread` (chunk index) that covered it */
    int each_hits[64];  /* fti_pool_each: calls per thread */
    fti_mutex mu;
} claim_log;

static void claim_items(void *ctx, size_t begin, size_t end, int thread) {
    claim_log *l = (claim_log *)ctx;
    size_t i;
    fti_mutex_lock(&l->mu);
    for (i = begin; i < end; i++) {
        l->hits[i]++;
        l->chunk_of[i] = thread;
    }
    fti_mutex_unlock(&l->mu);
}

static void claim_each(void *ctx, size_t begin, size_t end, int thread) {
    claim_log *l = (claim_log *)ctx;
    fti_mutex_lock(&l->mu);
    if (thread >= 0 && thread < 64 && begin == (size_t)thread && end == begin + 1)
        l->each_hits[thread]++;
    fti_mutex_unlock(&l->mu);
}

/* Many back-to-back jobs of both kinds and varying sizes: every item once, in the chunk the
 * documented split gives it (whichever thread ran it), every fti_pool_each thread once. */
FTI_TEST(threads_claim_every_chunk_once) {
    static claim_log l;
    int nt, round;
    REQUIRE(fti_mutex_init(&l.mu) == FTI_OK);
    for (nt = 2; nt <= 4; nt++) {
        fti_pool *pool = fti_pool_create(nt);
        int real = fti_pool_threads(pool);
        REQUIRE(pool != NULL);
        for (round = 0; round < 300; round++) {
            size_t n = 1 + (size_t)(round * 37) % 4000, grain = 1 + (size_t)(round % 5) * 97, i;
            size_t k = (size_t)real, t;
            if (k > (n + grain - 1) / grain) k = (n + grain - 1) / grain;
            memset(l.hits, 0, sizeof l.hits);
            fti_pool_for(pool, n, grain, claim_items, &l);
            for (i = 0; i < n; i++) CHECK_EQ_INT(l.hits[i], 1);
            for (t = 0; t < k; t++) { /* chunk t is [n*t/k, n*(t+1)/k) up to rounding */
                size_t b = n / k * t + (t < n % k ? t : n % k);
                CHECK_EQ_INT(l.chunk_of[b], k > 1 ? (int)t : 0);
            }
            if (round % 3 == 0) {
                memset(l.each_hits, 0, sizeof l.each_hits);
                fti_pool_each(pool, claim_each, &l);
                for (t = 0; t < (size_t)real; t++) CHECK_EQ_INT(l.each_hits[t], 1);
            }
        }
        fti_pool_free(pool);
    }
    fti_mutex_destroy(&l.mu);
}

typedef struct claim_scratch {
    fti_pool *pool;
    void *got[64];
    size_t bytes;
} claim_scratch;

static void claim_scratch_task(void *ctx, size_t begin, size_t end, int thread) {
    claim_scratch *c = (claim_scratch *)ctx;
    unsigned char *p = (unsigned char *)fti_pool_scratch(c->pool, thread, c->bytes);
    (void)begin, (void)end;
    if (p) memset(p, thread + 1, c->bytes); /* the whole block is this call's alone */
    if (thread >= 0 && thread < 64) c->got[thread] = p;
}

FTI_TEST(threads_scratch) {
    fti_pool *pool = fti_pool_create(3);
    claim_scratch c;
    int t, nt;
    void *first;
    REQUIRE(pool != NULL);
    nt = fti_pool_threads(pool);
    CHECK(fti_pool_scratch(NULL, 0, 16) == NULL);
    CHECK(fti_pool_scratch(pool, -1, 16) == NULL);
    CHECK(fti_pool_scratch(pool, nt, 16) == NULL);
    first = fti_pool_scratch(pool, 0, 1000);
    REQUIRE(first != NULL);
    CHECK(((uintptr_t)first & 63) == 0);
    CHECK(fti_pool_scratch(pool, 0, 500) == first); /* kept while big enough */
    memset(&c, 0, sizeof c);
    c.pool = pool;
    c.bytes = 100000;
    fti_pool_for(pool, (size_t)nt, 1, claim_scratch_task, &c);
    for (t = 0; t < nt; t++) {
        CHECK(c.got[t] != NULL);
        CHECK(((uintptr_t)c.got[t] & 63) == 0);
        if (c.got[t]) CHECK_EQ_INT(((unsigned char *)c.got[t])[c.bytes - 1], t + 1);
    }
    for (t = 1; t < nt; t++) CHECK(c.got[t] != c.got[0]);
    fti_pool_free(pool);
}
