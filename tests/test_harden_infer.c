/* test_harden_infer.c: the hardening review of the inference code added in sessions 4 and 5
 * (issue 10, docs/hardening.md "Review of the fifth and sixth sessions' code"): the sampler on
 * degenerate inputs, the f16 KV cache (sizes, caller memory, context overflow and truncation,
 * f16 and f32 sessions in one batched step), and sessions decoding on several threads at once
 * while others are created and freed (run under TSan by make check). */
#include <float.h>

/* The tests' small model (vocabulary 96, dim 64, 2 layers, 4 heads, 2 KV heads), f32 or
 * another matrix type, context 48. */
static const char *hi_model(const char *file, uint32_t mt) {
    fti_test_model_opts o;
    memset(&o, 0, sizeof o);
    o.matrix_type = mt;
    o.seed = 5;
    o.scale = 2.0f;
    return fti_test_model(file, &o, NULL, NULL);
}

static fti_sampler *hi_sampler(size_t V, float temp, int top_k, float top_p, float min_p,
                               uint64_t seed) {
    fti_sampler_opts o;
    fti_sampler *s = NULL;
    memset(&o, 0, sizeof o);
    o.temperature = temp;
    o.top_k = top_k;
    o.top_p = top_p;
    o.min_p = min_p;
    o.seed = seed;
    if (fti_sampler_create(&s, V, &o) != FTI_OK) return NULL;
    return s;
}

/* Draws n tokens from a fresh copy of logits each time; counts[id] += 1 (ids outside [0, V)
 * and -1 go to counts[V]). */
static void hi_draws(fti_sampler *s, const float *logits, size_t V, int n, int *counts) {
    float *lg = (float *)malloc(V * sizeof(float));
    int i;
    if (!lg) return;
    for (i = 0; i < n; i++) {
        int32_t t;
        memcpy(lg, logits, V * sizeof(float));
        t = fti_sampler_sample(s, lg);
        counts[t >= 0 && (size_t)t < V ? (size_t)t : V]++;
    }
    free(lg);
}

FTI_TEST(harden_sampler_degenerate) {
    /* Vocabularies below and above the draw's blocked form (256) and the dense path's 8. */
    static const size_t Vs[3] = {5, 40, 300};
    size_t vi, i;
    for (vi = 0; vi < 3; vi++) {
        size_t V = Vs[vi];
        float *lg = (float *)malloc(V * sizeof(float));
        int *cnt = (int *)calloc(V + 1, sizeof(int));
        fti_sampler *s;
        REQUIRE(lg && cnt);
        /* min_p above 1 dropped every candidate and the draw read idx[(size_t)-1] (out of
         * bounds); now it keeps the most likely token: both the all-finite path and the
         * candidate path (a -inf logit) */
        for (i = 0; i < V; i++) lg[i] = (float)(i % 7) * 0.25f;
        lg[3] = 4.0f;
        s = hi_sampler(V, 1.0f, 0, 0, 1.5f, 1);
        REQUIRE(s);
        memset(cnt, 0, (V + 1) * sizeof(int));
        hi_draws(s, lg, V, 50, cnt);
        CHECK_EQ_INT(cnt[3], 50);
        lg[0] = -INFINITY;
        memset(cnt, 0, (V + 1) * sizeof(int));
        hi_draws(s, lg, V, 50, cnt);
        CHECK_EQ_INT(cnt[3], 50);
        fti_sampler_free(s);
        s = hi_sampler(V, 1.0f, 3, 0.5f, 1e30f, 2); /* with top-k and top-p too */
        REQUIRE(s);
        memset(cnt, 0, (V + 1) * sizeof(int));
        hi_draws(s, lg, V, 20, cnt);
        CHECK_EQ_INT(cnt[3], 20);
        fti_sampler_free(s);

        /* a subnormal temperature (a request's "temperature": 1e-40 passes the [0, 2] check):
         * 1/t overflowed, inf·0 made the top token's weight NaN and the draw returned the last
         * token; now it is greedy. NaN temperature: greedy too */
        for (i = 0; i < V; i++) lg[i] = (float)(i % 5) * 0.5f;
        lg[1] = 3.0f;
        {
            static const float temps[4] = {1e-40f, 2e-39f, 1e-30f, 0.0f};
            int ti;
            for (ti = 0; ti < 5; ti++) {
                float t = ti < 4 ? temps[ti] : (float)NAN;
                s = hi_sampler(V, t, 0, 0, 0, 3);
                REQUIRE(s);
                memset(cnt, 0, (V + 1) * sizeof(int));
                hi_draws(s, lg, V, 20, cnt);
                CHECK_EQ_INT(cnt[1], 20);
                if (cnt[1] != 20)
                    fprintf(stderr, "    V %lu temperature %g\n", (unsigned long)V, t);
                fti_sampler_free(s);
            }
        }

        /* +inf logits (a model's overflow, or a penalty): inf - inf made every weight NaN and the
         * draw returned the last candidate; now one of the +inf tokens, each alike */
        for (i = 0; i < V; i++) lg[i] = 0.0f;
        lg[0] = INFINITY;
        lg[V - 2] = INFINITY;
        lg[V - 1] = NAN;
        s = hi_sampler(V, 0.7f, 0, 0, 0, 4);
        REQUIRE(s);
        memset(cnt, 0, (V + 1) * sizeof(int));
        hi_draws(s, lg, V, 200, cnt);
        CHECK_EQ_INT(cnt[0] + cnt[V - 2], 200);
        CHECK(cnt[0] > 40 && cnt[V - 2] > 40);
        fti_sampler_free(s);
        s = hi_sampler(V, 0.0f, 0, 0, 0, 4); /* greedy: the first +inf */
        REQUIRE(s);
        memset(cnt, 0, (V + 1) * sizeof(int));
        hi_draws(s, lg, V, 3, cnt);
        CHECK_EQ_INT(cnt[0], 3);
        fti_sampler_free(s);

        /* all NaN: -1 both ways; all -inf: -1 when sampling, id 0 when greedy (documented) */
        for (i = 0; i < V; i++) lg[i] = NAN;
        s = hi_sampler(V, 1.0f, 0, 0, 0, 5);
        REQUIRE(s);
        CHECK_EQ_INT(fti_sampler_sample(s, lg), -1);
        for (i = 0; i < V; i++) lg[i] = -INFINITY;
        CHECK_EQ_INT(fti_sampler_sample(s, lg), -1);
        fti_sampler_free(s);
        s = hi_sampler(V, 0.0f, 0, 0, 0, 5);
        REQUIRE(s);
        CHECK_EQ_INT(fti_sampler_sample(s, lg), 0);
        for (i = 0; i < V; i++) lg[i] = NAN;
        CHECK_EQ_INT(fti_sampler_sample(s, lg), -1);
        fti_sampler_free(s);

        /* NaN among finite logits is never drawn; extreme finite logits (their differences
         * overflow to -inf) draw the largest */
        for (i = 0; i < V; i++) lg[i] = i % 2 ? NAN : -FLT_MAX;
        lg[2] = FLT_MAX;
        s = hi_sampler(V, 1.0f, 0, 0, 0, 6);
        REQUIRE(s);
        memset(cnt, 0, (V + 1) * sizeof(int));
        hi_draws(s, lg, V, 30, cnt);
        CHECK_EQ_INT(cnt[2], 30);
        fti_sampler_free(s);

        /* top-k 1, a tiny top-p, top-k beyond V: valid ids, the first two the argmax */
        for (i = 0; i < V; i++) lg[i] = (float)((i * 37) % 11);
        lg[V / 2] = 20.0f;
        {
            int kk;
            for (kk = 0; kk < 3; kk++) {
                s = kk == 0 ? hi_sampler(V, 1.5f, 1, 0, 0, 7)
                  : kk == 1 ? hi_sampler(V, 1.5f, 0, 1e-30f, 0, 7)
                            : hi_sampler(V, 1.5f, 1 << 30, 0.999f, 1e-6f, 7);
                REQUIRE(s);
                memset(cnt, 0, (V + 1) * sizeof(int));
                hi_draws(s, lg, V, 30, cnt);
                if (kk < 2) CHECK_EQ_INT(cnt[V / 2], 30);
                CHECK_EQ_INT(cnt[V], 0);
                fti_sampler_free(s);
            }
        }

        /* huge penalties on a history: any id in range or -1, never a crash or an id out of
         * range; a -inf frequency penalty makes the history's tokens +inf: one of them */
        {
            static const float pen[5][3] = {{1e30f, 0, 0},      {1e-30f, 1e30f, -1e30f},
                                            {0, FLT_MAX, FLT_MAX}, {0, -FLT_MAX, 0},
                                            {0, -1.0f, 0}}; /* 4: -inf below */
            int pi;
            for (pi = 0; pi < 5; pi++) {
                fti_sampler_opts o;
                memset(&o, 0, sizeof o);
                o.temperature = 0.8f;
                o.repeat_penalty = pen[pi][0];
                o.frequency_penalty = pi == 4 ? -INFINITY : pen[pi][1];
                o.presence_penalty = pen[pi][2];
                o.penalty_last_n = 3;
                o.seed = 9;
                REQUIRE(fti_sampler_create(&s, V, &o) == FTI_OK);
                fti_sampler_accept(s, 1);
                fti_sampler_accept(s, 2);
                fti_sampler_accept(s, 2);
                fti_sampler_accept(s, 4);
                fti_sampler_accept(s, -3);       /* ignored */
                fti_sampler_accept(s, (int32_t)V); /* ignored */
                for (i = 0; i < V; i++) lg[i] = (float)(i % 3);
                memset(cnt, 0, (V + 1) * sizeof(int));
                hi_draws(s, lg, V, 30, cnt);
                CHECK_EQ_INT(cnt[V], 0);
                if (pi >= 3) CHECK_EQ_INT(cnt[2] + cnt[4], 30); /* +inf: 2, 4 (1 left the window) */
                fti_sampler_free(s);
            }
        }
        free(lg);
        free(cnt);
    }
    {
        /* vocabulary of one; a vocabulary the sampler refuses */
        fti_sampler *s = hi_sampler(1, 1.0f, 0, 0.5f, 0.5f, 1);
        float one = -3.0f;
        REQUIRE(s);
        CHECK_EQ_INT(fti_sampler_sample(s, &one), 0);
        one = NAN;
        CHECK_EQ_INT(fti_sampler_sample(s, &one), -1);
        CHECK_EQ_INT(fti_sampler_sample(s, NULL), -1);
        CHECK_EQ_INT(fti_sampler_sample(NULL, &one), -1);
        fti_sampler_free(s);
        CHECK(fti_sampler_create(&s, 0, NULL) == FTI_ERR_INVALID);
        CHECK(fti_sampler_create(&s, (size_t)1 << 31, NULL) == FTI_ERR_INVALID);
    }
}

/* A huge penalty_last_n (the window of recent tokens, allocated when the sampler is made) is
 * clamped to the longest context a session can have (2^24): the sampler is made, and with
 * fewer tokens than that in its history it penalizes exactly as a window of any size above
 * the history does. It used to allocate the window as given: NOMEM, or under ASan a report. */
FTI_TEST(harden_sampler_window_clamped) {
    static const size_t wins[3] = {(size_t)-1, (size_t)1 << 40, ((size_t)1 << 24) + 1};
    const size_t V = 64;
    float lg[64], lg_ref[64];
    int w, i;
    for (w = 0; w < 3; w++) {
        fti_sampler_opts o;
        fti_sampler *s = NULL, *ref = NULL;
        memset(&o, 0, sizeof o);
        o.temperature = 0.9f;
        o.repeat_penalty = 1.3f;
        o.frequency_penalty = 0.25f;
        o.presence_penalty = 0.5f;
        o.seed = 11;
        o.penalty_last_n = wins[w];
        REQUIRE(fti_sampler_create(&s, V, &o) == FTI_OK);
        o.penalty_last_n = 700;
        REQUIRE(fti_sampler_create(&ref, V, &o) == FTI_OK);
        for (i = 0; i < 600; i++) { /* 600 tokens of history, weighted to the low ids */
            int32_t t = (int32_t)((unsigned)(i * i + 7 * i) % (unsigned)(i % 3 ? 8 : V));
            fti_sampler_accept(s, t);
            fti_sampler_accept(ref, t);
        }
        for (i = 0; i < 40; i++) {
            size_t j;
            int32_t a, b;
            for (j = 0; j < V; j++) lg[j] = lg_ref[j] = (float)((j * 37 + (size_t)i) % 23) * 0.2f;
            a = fti_sampler_sample(s, lg);
            b = fti_sampler_sample(ref, lg_ref);
            CHECK_EQ_INT(a, b);
            CHECK(memcmp(lg, lg_ref, sizeof lg) == 0); /* the same penalties applied */
            fti_sampler_accept(s, a);
            fti_sampler_accept(ref, b);
        }
        fti_sampler_free(s);
        fti_sampler_free(ref);
    }
}

FTI_TEST(harden_kv_f16_memory) {
    /* The f16 cache's sizes, caller-supplied memory (exact, short, misaligned), bad options */
    const char *path = hi_model("kv.gguf", 0);
    fti_engine *e = NULL;
    fti_session *s = NULL, *r = NULL;
    fti_session_opts so;
    fti_error err;
    size_t b16, b32, need;
    int32_t toks[20];
    float *ref;
    char *mem;
    int i;
    REQUIRE(path && fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    for (i = 0; i < 20; i++) toks[i] = (i * 17 + 3) % 95;
    memset(&so, 0, sizeof so);
    so.kv_type = FTI_KV_F32;
    b32 = fti_session_mem_bytes(e, &so);
    so.kv_type = FTI_KV_F16;
    b16 = fti_session_mem_bytes(e, &so);
    /* the f16 cache's 2 bytes less per value (L 2 x ctx 48 x KVD 32 x (K and V)) pay for the
     * widening rows of one batch (n_batch = the context here: the same size) */
    CHECK(b16 > 0 && b32 > 0 && b16 <= b32 + 64);
    /* context 1024: the cache's 2 x 2 x 1024 x 32 values take 2 bytes less each; the two
     * (64, 32) f32 widening rows are the extra */
    so.n_ctx = 1024;
    b16 = fti_session_mem_bytes(e, &so);
    so.kv_type = FTI_KV_F32;
    b32 = fti_session_mem_bytes(e, &so);
    CHECK_EQ_INT(b32 - b16, 2 * 2 * 1024 * 32 * 2 - 2 * 64 * 32 * 4);
    /* q8: each head row of 16 values takes 16 + 4 bytes instead of 64, with the same widening
     * rows as f16 */
    so.kv_type = FTI_KV_Q8;
    CHECK_EQ_INT(b32 - fti_session_mem_bytes(e, &so),
                 2 * 2 * 1024 * 2 * (64 - 20) - 2 * 64 * 32 * 4);
    so.kv_type = FTI_KV_F16;
    so.n_ctx = 0;
    CHECK_EQ_INT(fti_kv_type_parse("f16"), FTI_KV_F16);
    CHECK_EQ_INT(fti_kv_type_parse("f32"), FTI_KV_F32);
    CHECK_EQ_INT(fti_kv_type_parse("q8"), FTI_KV_Q8);
    CHECK_EQ_STR(fti_kv_type_name(FTI_KV_Q8), "q8");
    CHECK_EQ_INT(fti_kv_type_parse("q8_0"), -1);
    CHECK_EQ_INT(fti_kv_type_parse("F16"), -1);
    CHECK_EQ_INT(fti_kv_type_parse(""), -1);
    CHECK_EQ_INT(fti_kv_type_parse(NULL), -1);
    CHECK(fti_kv_type_name((fti_kv_type)7) == NULL);
    CHECK_EQ_STR(fti_kv_type_name(FTI_KV_DEFAULT), "f32");
    so.kv_type = (fti_kv_type)4;
    CHECK_EQ_INT(fti_session_mem_bytes(e, &so), 0);
    CHECK(fti_session_create(&s, e, &so, &err) == FTI_ERR_INVALID);
    so.kv_type = (fti_kv_type)-1;
    CHECK(fti_session_create(&s, e, &so, &err) == FTI_ERR_INVALID);
    CHECK(s == NULL);
    so.kv_type = FTI_KV_F16;
    so.n_ctx = ((size_t)1 << 24) + 1;
    CHECK_EQ_INT(fti_session_mem_bytes(e, &so), 0);
    CHECK(fti_session_create(&s, e, &so, &err) == FTI_ERR_INVALID);
    so.n_ctx = (size_t)1 << 24; /* sized, not allocated */
    CHECK(fti_session_mem_bytes(e, &so) > ((size_t)1 << 24) * 2 * 32 * 2 * 2);
    so.n_ctx = 0;

    /* the reference: an allocated f16 session, 20 tokens */
    REQUIRE(fti_session_create(&r, e, &so, &err) == FTI_OK);
    CHECK(fti_session_kv_type(r) == FTI_KV_F16);
    CHECK_EQ_INT(fti_session_kv_bytes(r), 2 * 2 * 48 * 32 * 2);
    CHECK_OK(fti_session_eval(r, toks, 20, NULL, &err));
    ref = (float *)malloc(96 * sizeof(float));
    REQUIRE(ref);
    memcpy(ref, fti_session_logits(r), 96 * sizeof(float));

    /* caller memory: exactly the size asked for, at every misalignment of 0..7 and 63 */
    need = fti_session_mem_bytes(e, &so);
    mem = (char *)malloc(need + 64);
    REQUIRE(mem);
    for (i = 0; i < 9; i++) {
        size_t off = i < 8 ? (size_t)i : 63;
        fti_session_opts mo = so;
        mo.mem = mem + off;
        mo.mem_bytes = need;
        s = NULL;
        CHECK_OK(fti_session_create(&s, e, &mo, &err));
        if (!s) continue;
        CHECK_OK(fti_session_eval(s, toks, 20, NULL, &err));
        CHECK(memcmp(fti_session_logits(s), ref, 96 * sizeof(float)) == 0);
        fti_session_free(s); /* frees nothing: the caller's memory */
        mo.mem_bytes = need - 1;
        s = NULL;
        CHECK(fti_session_create(&s, e, &mo, &err) == FTI_ERR_LIMIT);
        CHECK(s == NULL);
    }
    free(mem);
    free(ref);
    fti_session_free(r);
    fti_engine_close(e);
}

FTI_TEST(harden_kv_f16_context) {
    /* Context overflow and truncation, f16 and f32: a refused eval changes nothing; a step after
     * truncation gives the bits a session that never went past gives */
    const char *path = hi_model("kvc.gguf", 0);
    fti_engine *e = NULL;
    fti_error err;
    int kt;
    REQUIRE(path && fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    for (kt = 0; kt < 2; kt++) {
        fti_session_opts so;
        fti_session *a = NULL, *b = NULL;
        int32_t toks[16];
        float *la = (float *)malloc(96 * sizeof(float));
        int i;
        REQUIRE(la);
        memset(&so, 0, sizeof so);
        so.n_ctx = 16;
        so.kv_type = kt ? FTI_KV_F16 : FTI_KV_F32;
        REQUIRE(fti_session_create(&a, e, &so, &err) == FTI_OK);
        REQUIRE(fti_session_create(&b, e, &so, &err) == FTI_OK);
        for (i = 0; i < 16; i++) toks[i] = (i * 29 + 1) % 95;
        CHECK_OK(fti_session_eval(a, toks, 10, NULL, &err));
        CHECK(fti_session_eval(a, toks, 7, NULL, &err) == FTI_ERR_LIMIT);
        CHECK_EQ_INT(fti_session_pos(a), 10);
        CHECK_OK(fti_session_eval(a, toks, 6, NULL, &err));
        CHECK_EQ_INT(fti_session_pos(a), 16);
        CHECK(fti_session_eval(a, toks, 1, NULL, &err) == FTI_ERR_LIMIT);
        CHECK_OK(fti_session_eval(a, toks, 0, NULL, &err)); /* nothing to do */
        {
            int32_t bad = 96;
            fti_session_truncate(a, 15);
            CHECK(fti_session_eval(a, &bad, 1, NULL, &err) == FTI_ERR_INVALID);
            bad = -1;
            CHECK(fti_session_eval(a, &bad, 1, NULL, &err) == FTI_ERR_INVALID);
            CHECK_EQ_INT(fti_session_pos(a), 15);
        }
        /* decode one token at a time: b to 12; a truncated to 5 and decoded again to 12 */
        fti_session_reset(a);
        for (i = 0; i < 12; i++) {
            CHECK_OK(fti_session_eval(a, &toks[i], 1, NULL, &err));
            CHECK_OK(fti_session_eval(b, &toks[i], 1, NULL, &err));
        }
        fti_session_truncate(a, 100); /* beyond pos: nothing */
        CHECK_EQ_INT(fti_session_pos(a), 12);
        fti_session_truncate(a, 5);
        CHECK_EQ_INT(fti_session_pos(a), 5);
        for (i = 5; i < 12; i++) CHECK_OK(fti_session_eval(a, &toks[i], 1, NULL, &err));
        CHECK(memcmp(fti_session_logits(a), fti_session_logits(b), 96 * sizeof(float)) == 0);
        /* generation at a full context ends with FTI_FINISH_CONTEXT, not an error */
        {
            fti_sampler *smp = hi_sampler(96, 0, 0, 0, 0, 1);
            fti_generate_opts go;
            fti_generate_stats st;
            REQUIRE(smp);
            memset(&go, 0, sizeof go);
            go.ignore_eos = 1;
            CHECK_OK(fti_session_eval(a, toks, 4, NULL, &err)); /* pos 16 */
            CHECK_OK(fti_generate(a, smp, NULL, 0, &go, &st, &err));
            CHECK(st.finish == FTI_FINISH_CONTEXT);
            CHECK_EQ_INT(st.n_generated, 1);
            CHECK(fti_generate(a, smp, toks, 1, &go, &st, &err) == FTI_ERR_LIMIT);
            fti_sampler_free(smp);
        }
        memcpy(la, fti_session_logits(b), 96 * sizeof(float));
        free(la);
        fti_session_free(a);
        fti_session_free(b);
    }
    fti_engine_close(e);
}

FTI_TEST(harden_kv_batch_mixed_types) {
    /* One batched step over f16 and f32 sessions at different positions: each session's logits
     * as its own decode gives (within the batch tolerance); a member at a full context makes the
     * step fail before anything is evaluated: no session moves */
    const char *path = hi_model("kvb.gguf", 0);
    fti_engine *e = NULL;
    fti_session *ref[4], *bat[4];
    fti_batch *bt = NULL;
    fti_pool *pool = fti_pool_create(2);
    fti_error err;
    size_t b, v;
    int step;
    double max_err = 0;
    REQUIRE(path && fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    for (b = 0; b < 4; b++) {
        fti_session_opts so;
        int32_t pr[9];
        size_t i, n = 2 + b * 2;
        memset(&so, 0, sizeof so);
        so.n_ctx = b == 3 ? 12 : 32;
        so.kv_type = b % 2 ? FTI_KV_F16 : FTI_KV_F32;
        REQUIRE(fti_session_create(&ref[b], e, &so, &err) == FTI_OK);
        REQUIRE(fti_session_create(&bat[b], e, &so, &err) == FTI_OK);
        for (i = 0; i < n; i++) pr[i] = (int32_t)((i * 11 + b * 5) % 95);
        CHECK_OK(fti_session_eval(ref[b], pr, n, NULL, &err));
        CHECK_OK(fti_session_eval(bat[b], pr, n, NULL, &err));
    }
    REQUIRE(fti_batch_create(e, 4, 32, &bt, &err) == FTI_OK);
    for (step = 0; step < 4; step++) { /* session 3 reaches its context of 12 */
        int32_t tok[4];
        for (b = 0; b < 4; b++) {
            tok[b] = (int32_t)((step * 7 + b * 13) % 95);
            CHECK_OK(fti_session_eval(ref[b], &tok[b], 1, NULL, &err));
        }
        CHECK_OK(fti_session_eval_batch(bt, bat, tok, 4, pool, &err));
        for (b = 0; b < 4; b++) {
            const float *x = fti_session_logits(ref[b]), *y = fti_session_logits(bat[b]);
            CHECK_EQ_INT(fti_session_pos(ref[b]), fti_session_pos(bat[b]));
            for (v = 0; v < 96; v++) {
                double d = fabs((double)x[v] - y[v]) / (1.0 + fabs((double)x[v]));
                if (d > max_err) max_err = d;
            }
        }
    }
    CHECK(max_err < 2e-2); /* f16: a 1e-7 difference of a k row can flip its f16 rounding */
    {
        int32_t tok[4] = {1, 2, 3, 4};
        size_t pos[4];
        for (b = 0; b < 4; b++) pos[b] = fti_session_pos(bat[b]);
        CHECK_EQ_INT(pos[3], 12);
        CHECK(fti_session_eval_batch(bt, bat, tok, 4, pool, &err) == FTI_ERR_LIMIT);
        for (b = 0; b < 4; b++) CHECK_EQ_INT(fti_session_pos(bat[b]), pos[b]);
        CHECK_OK(fti_session_eval_batch(bt, bat, tok, 3, pool, &err)); /* the others go on */
        /* a prompt that does not fit, a session longer than the batch's max_ctx */
        CHECK(fti_batch_prefill(bt, bat[3], tok, 1, NULL, pool, &err) == FTI_ERR_LIMIT);
        fti_session_truncate(bat[3], 10);
        CHECK(fti_batch_prefill(bt, bat[3], tok, 3, NULL, pool, &err) == FTI_ERR_LIMIT);
        CHECK_OK(fti_batch_prefill(bt, bat[3], tok, 2, NULL, pool, &err));
        CHECK_EQ_INT(fti_session_pos(bat[3]), 12);
    }
    fti_batch_free(bt);
    REQUIRE(fti_batch_create(e, 2, 16, &bt, &err) == FTI_OK);
    {
        int32_t tok[2] = {1, 2};
        CHECK(fti_session_eval_batch(bt, bat, tok, 2, NULL, &err) == FTI_ERR_INVALID);
        CHECK(fti_batch_prefill(bt, bat[0], tok, 1, NULL, NULL, &err) == FTI_ERR_INVALID);
    }
    fti_batch_free(bt);
    CHECK(fti_batch_create(e, 0, 16, &bt, &err) == FTI_ERR_INVALID);
    CHECK(fti_batch_create(e, (size_t)1 << 40, 16, &bt, &err) == FTI_ERR_LIMIT);
    CHECK(fti_batch_create(e, 2, (size_t)-1 / 2, &bt, &err) == FTI_ERR_LIMIT);
    for (b = 0; b < 4; b++) {
        fti_session_free(ref[b]);
        fti_session_free(bat[b]);
    }
    fti_pool_free(pool);
    fti_engine_close(e);
}

#if !defined(FTI_NO_THREADS) && !defined(_WIN32)
#include <pthread.h>

/* A thread's decoding: n steps of one session (its own pool of nt threads, or none), the logits
 * of every step kept; with churn, a short-lived f16 session is created, used and freed around
 * every step. */
typedef struct hi_dec {
    fti_engine *e;
    int nt, steps, churn;
    float *logits; /* (steps, 96) */
    int ok;
} hi_dec;

static void *hi_dec_main(void *arg) {
    hi_dec *d = (hi_dec *)arg;
    fti_pool *pool = d->nt > 1 ? fti_pool_create(d->nt) : NULL;
    fti_session_opts so;
    fti_session *s = NULL;
    fti_error err;
    int i;
    d->ok = 0;
    memset(&so, 0, sizeof so);
    so.pool = pool;
    so.fixed_threads = 1;
    so.kv_type = FTI_KV_F16;
    if (fti_session_create(&s, d->e, &so, &err) != FTI_OK) goto done;
    for (i = 0; i < d->steps; i++) {
        int32_t t = (int32_t)((i * 31 + 7) % 95);
        if (d->churn) {
            fti_session *x = NULL;
            fti_session_opts xo;
            int32_t p[3] = {1, 2, 3};
            memset(&xo, 0, sizeof xo);
            xo.kv_type = i % 2 ? FTI_KV_F16 : FTI_KV_F32;
            if (fti_session_create(&x, d->e, &xo, &err) != FTI_OK) goto done;
            if (fti_session_eval(x, p, 3, NULL, &err) != FTI_OK) {
                fti_session_free(x);
                goto done;
            }
            fti_session_free(x);
        }
        if (fti_session_eval(s, &t, 1, NULL, &err) != FTI_OK) goto done;
        memcpy(d->logits + (size_t)i * 96, fti_session_logits(s), 96 * sizeof(float));
    }
    d->ok = 1;
done:
    fti_session_free(s);
    fti_pool_free(pool);
    return NULL;
}

FTI_TEST(harden_infer_concurrent_sessions) {
    /* Sessions of one engine decoding on several threads at once (the one-region step with its
     * spin barriers on pools of 1-3 threads), while another thread creates, uses and frees
     * sessions: every thread's logits are the bits of a lone run (make check runs this under
     * TSan: no data race on the shared engine or kernel tables) */
    const char *path = hi_model("conc.gguf", 8);
    fti_engine *e = NULL;
    fti_error err;
    hi_dec d[4], solo;
    pthread_t th[4];
    int i, steps = 12;
    REQUIRE(path && fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    memset(&solo, 0, sizeof solo);
    solo.e = e;
    solo.nt = 1;
    solo.steps = steps;
    solo.logits = (float *)malloc((size_t)steps * 96 * sizeof(float));
    REQUIRE(solo.logits);
    hi_dec_main(&solo);
    REQUIRE(solo.ok);
    for (i = 0; i < 4; i++) {
        d[i] = solo;
        d[i].nt = i < 3 ? i + 1 : 1;
        d[i].churn = i == 3;
        d[i].logits = (float *)calloc((size_t)steps * 96, sizeof(float));
        REQUIRE(d[i].logits);
        REQUIRE(pthread_create(&th[i], NULL, hi_dec_main, &d[i]) == 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(d[i].ok);
        CHECK(memcmp(d[i].logits, solo.logits, (size_t)steps * 96 * sizeof(float)) == 0);
        free(d[i].logits);
    }
    free(solo.logits);
    fti_engine_close(e);
}
#else
void fti_test_harden_infer_concurrent_sessions(void) {}
#endif

/* --- allocation fault loops (tests/test_fault.c's method) for the operations added since the
 * loops were written: a session with an f16 KV cache that prefills, decodes and generates, and a
 * batched step with its batch (packed weights) and a batched prefill --------------------- */

typedef struct hi_fault {
    const char *path;
    float ref[2][96]; /* the logits a run without faults gives (two sessions) */
    int batch;
} hi_fault;

/* One run: everything opened and freed inside; logits of the two sessions into out. */
static fti_result hi_fault_op(const hi_fault *c, float out[2][96], fti_error *err) {
    fti_engine *e = NULL;
    fti_session *s[2] = {NULL, NULL};
    fti_sampler *smp = NULL;
    fti_batch *bt = NULL;
    fti_session_opts so;
    fti_sampler_opts sm;
    fti_generate_opts go;
    fti_buf text;
    fti_result r;
    int32_t pr[6] = {95, 4, 8, 15, 16, 23}, tok[2] = {42, 7}, gen[4];
    int i;
    memset(&text, 0, sizeof text);
    if ((r = fti_engine_open(&e, c->path, NULL, err)) != FTI_OK) return r;
    memset(&so, 0, sizeof so);
    so.kv_type = FTI_KV_F16;
    for (i = 0; i < 2 && r == FTI_OK; i++) {
        r = fti_session_create(&s[i], e, &so, err);
        if (r == FTI_OK) r = fti_session_eval(s[i], pr, 6 - (size_t)i, NULL, err);
    }
    if (r == FTI_OK && c->batch) {
        r = fti_batch_create(e, 2, 48, &bt, err);
        if (r == FTI_OK) r = fti_session_eval_batch(bt, s, tok, 2, NULL, err);
        if (r == FTI_OK) r = fti_batch_prefill(bt, s[1], pr, 3, NULL, NULL, err);
    } else if (r == FTI_OK) {
        memset(&sm, 0, sizeof sm);
        sm.temperature = 0.8f;
        sm.top_p = 0.9f;
        sm.min_p = 0.01f;
        sm.repeat_penalty = 1.1f;
        sm.seed = 3;
        r = fti_sampler_create(&smp, 96, &sm);
        if (r != FTI_OK) r = fti_error_set(err, r, "sampler: %s", fti_result_str(r));
        memset(&go, 0, sizeof go);
        go.max_tokens = 4;
        go.text = &text;
        go.tokens = gen;
        go.tokens_cap = 4;
        go.ignore_eos = 1;
        if (r == FTI_OK) r = fti_generate(s[0], smp, tok, 1, &go, NULL, err);
        if (r == FTI_OK && text.oom) r = fti_error_set(err, FTI_ERR_NOMEM, "text: out of memory");
    }
    if (r == FTI_OK)
        for (i = 0; i < 2; i++) memcpy(out[i], fti_session_logits(s[i]), 96 * sizeof(float));
    fti_buf_free(&text);
    fti_sampler_free(smp);
    fti_batch_free(bt);
    fti_session_free(s[0]);
    fti_session_free(s[1]);
    fti_engine_close(e);
    return r;
}

static void hi_fault_loop(hi_fault *c, const char *what) {
    fti_error err;
    float out[2][96];
    long A, k, stride;
    int persistent, n_runs = 0, n_fail = 0;
    fti_test_alloc_fail_at(0, 0);
    REQUIRE(hi_fault_op(c, c->ref, &err) == FTI_OK);
    A = fti_test_alloc_count;
    stride = fti_env_long("FTI_FAULT_FULL", 0) ? 1 : fti_env_long("FTI_FAULT_STRIDE", 0);
    if (stride < 1) stride = A / 40 + 1;
    for (persistent = 0; persistent < 2; persistent++)
        for (k = 1 + persistent; k <= A; k += stride) {
            long live = fti_test_alloc_live;
            fti_result r;
            fti_error_clear(&err);
            fti_test_alloc_fail_at(k, persistent);
            r = hi_fault_op(c, out, &err);
            fti_test_alloc_fail_at(0, 0);
            n_runs++;
            CHECK_EQ_INT(fti_test_alloc_live, live);
            if (r != FTI_OK) {
                n_fail++;
                CHECK(r == FTI_ERR_NOMEM);
                CHECK(err.msg[0] != 0);
                if (r != FTI_ERR_NOMEM || !err.msg[0])
                    fprintf(stderr, "    %s: k %ld %s: %s (%s)\n", what, k,
                            persistent ? "persistent" : "once", fti_result_str(r), err.msg);
            } else { /* an optional allocation (the batch's packed weights): the same bits */
                if (c->batch) {
                    CHECK(memcmp(out, c->ref, sizeof out) == 0);
                } else {
                    /* the f32 GEMM of a prompt batch falls back to its reference form when its
                     * packing buffers cannot be allocated (fti_session_eval is not allocation-
                     * free there): the same values to rounding, the generated tokens too */
                    size_t v;
                    double d = 0;
                    for (v = 0; v < 2 * 96; v++) {
                        double x = fabs((double)out[v / 96][v % 96] - c->ref[v / 96][v % 96]) /
                                   (1.0 + fabs((double)c->ref[v / 96][v % 96]));
                        if (x > d) d = x;
                    }
                    CHECK(d < 2e-2);
                    if (d >= 2e-2) fprintf(stderr, "    k %ld: logits differ by %g\n", k, d);
                }
            }
        }
    CHECK(hi_fault_op(c, out, &err) == FTI_OK);
    printf("    %s: %ld allocations, %d faulty runs, %d failed cleanly\n", what, A, n_runs,
           n_fail);
}

FTI_TEST(harden_fault_session_f16) {
    hi_fault c;
    memset(&c, 0, sizeof c);
    c.path = hi_model("fs.gguf", 0);
    REQUIRE(c.path);
    hi_fault_loop(&c, "f16 sessions: prefill, decode, generate");
}

FTI_TEST(harden_fault_batch_decode) {
    hi_fault c;
    memset(&c, 0, sizeof c);
    c.path = hi_model("fb.gguf", 8); /* Q8_0: the batch packs its weights */
    REQUIRE(c.path);
    c.batch = 1;
    hi_fault_loop(&c, "batched step and prefill (Q8_0)");
}

/* The author memory's file reader (fti_ngram_load) on files whose hash is right (a hostile
 * writer can compute it): bytes of a saved model changed (three ways) and rehashed. The
 * load fails with an error naming the file, or the model it gives is a distribution: for a few
 * contexts fti_ngram_probs is finite, above 0 everywhere and sums to 1, fti_ngram_prob agrees
 * with it, and mixing it into logits leaves them finite. */
FTI_TEST(harden_ngram_load_rehashed_bytes) {
    static const uint8_t xors[3] = {0x01, 0x80, 0xff};
    const size_t V = 11, N = 240;
    uint32_t ids[240];
    fti_ngram *m = NULL;
    fti_ngram_opts o;
    char path[512], bad[512];
    void *data = NULL;
    unsigned char *c;
    size_t len = 0, i, w;
    int x, n_loaded = 0, n_refused = 0;
    uint64_t s = 77;
    for (i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (uint32_t)((s >> 33) % (i % 4 ? 4 : V)); /* repeats: counts above 1 */
    }
    memset(&o, 0, sizeof o);
    o.order = 3;
    REQUIRE(fti_ngram_build(&m, ids, N, V, &o, NULL) == FTI_OK);
    snprintf(path, sizeof path, "%s", fti_test_tmp("hng.bin"));
    snprintf(bad, sizeof bad, "%s", fti_test_tmp("hng_bad.bin"));
    REQUIRE(fti_ngram_save(m, path, NULL) == FTI_OK);
    fti_ngram_free(m);
    REQUIRE(fti_file_read(path, 0, &data, &len, NULL) == FTI_OK);
    c = (unsigned char *)malloc(len);
    REQUIRE(c);
    for (i = 0; i + 8 < len; i += i < 64 ? 1 : 31) { /* the header whole, then a sample */
        for (x = 0; x < 3; x++) {
            fti_ngram *g = NULL;
            fti_error err;
            fti_result r;
            memcpy(c, data, len);
            c[i] ^= xors[x];
            fti_store_u64(c + len - 8, fti_hash64(c, len - 8, 0x6e6772616dull));
            REQUIRE(fti_test_write_file(bad, c, len) == 0);
            err.msg[0] = 0;
            r = fti_ngram_load(&g, bad, &err);
            if (r != FTI_OK) {
                CHECK(g == NULL && strstr(err.msg, "hng_bad.bin") != NULL);
                n_refused++;
                continue;
            }
            n_loaded++;
            if (fti_ngram_vocab(g) <= 4096) { /* a changed vocabulary: as large as it says */
                static const int32_t ctxs[4][2] = {{0, 1}, {2, 3}, {1, 10}, {-1, 3}};
                size_t Vg = fti_ngram_vocab(g);
                float *p = (float *)malloc(3 * Vg * sizeof(float)), *lg = p + Vg, *work = lg + Vg;
                int q;
                REQUIRE(p);
                for (q = 0; q < 4; q++) {
                    double sum = 0;
                    int ok = 1;
                    fti_ngram_probs(g, ctxs[q], 2, p);
                    for (w = 0; w < Vg; w++) {
                        double pw = fti_ngram_prob(g, ctxs[q], 2, (int32_t)w, NULL);
                        if (!(p[w] > 0.0f) || !(fabs(pw - (double)p[w]) < 1e-5)) ok = 0;
                        sum += p[w];
                        lg[w] = (float)(w % 7) * 0.5f;
                    }
                    if (fabs(sum - 1.0) > 1e-4) ok = 0;
                    fti_ngram_mix_logits(g, ctxs[q], 2, -1.0f, lg, Vg, work);
                    for (w = 0; w < Vg; w++)
                        if (!isfinite(lg[w])) ok = 0;
                    if (!ok) {
                        fprintf(stderr, "    byte %lu ^ 0x%02x: context %d is no distribution "
                                "(sum %g)\n", (unsigned long)i, xors[x], q, sum);
                        fti_test_failures++;
                    }
                }
                free(p);
            }
            fti_ngram_free(g);
        }
    }
    CHECK(n_refused > 0 && n_loaded > 0);
    free(c);
    fti_free(data);
}
