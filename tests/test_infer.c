/* test_infer.c: the inference engine (part 08): logits equal the training forward, quantized
 * types within tolerance, KV cache / batching / threads consistency, caller memory, samplers,
 * streaming with stop strings, prompt fitting. */

/* The tests' small model (fti_test_model) with the letters-and-bytes vocabulary ("a".."z",
 * " a".." z", the lone bytes 0xE9 and 0xA9 at 52 and 53), context 48, seed 11, tied or not, its
 * initial weights times scale, as a GGUF file of matrix type mt; returns its config and f32
 * params (malloc'ed). */
static const char *ti_model(fti_model_config *cfg, float **params, uint32_t mt, int tied,
                            const char *file, float scale) {
    fti_test_model_opts o;
    memset(&o, 0, sizeof o);
    o.matrix_type = mt;
    o.seed = 11;
    o.scale = scale;
    o.tied = tied;
    o.vocab = FTI_TEST_VOCAB_BYTES;
    return fti_test_model(file, &o, cfg, params);
}

/* Writes params of that model's config (untied) with the same vocabulary, matrix type mt. */
static const char *ti_model_write(const float *params, uint32_t mt, const char *file) {
    fti_test_model_opts o;
    memset(&o, 0, sizeof o);
    o.matrix_type = mt;
    o.vocab = FTI_TEST_VOCAB_BYTES;
    o.params = params;
    return fti_test_model(file, &o, NULL, NULL);
}

/* The training forward's logits (T,V) for one sequence. */
static float *ti_train_logits(const fti_model_config *cfg, const float *params,
                              const int32_t *toks, size_t T) {
    fti_model_acts *acts = NULL;
    fti_error err;
    float *out;
    if (fti_model_acts_create(cfg, 1, T, &acts, &err) != FTI_OK) return NULL;
    if (fti_model_forward(cfg, params, acts, toks, NULL, 1, T, NULL, NULL) != FTI_OK) {
        fti_model_acts_free(acts);
        return NULL;
    }
    out = (float *)malloc(T * cfg->vocab_size * sizeof(float));
    memcpy(out, fti_model_acts_logits(acts), T * cfg->vocab_size * sizeof(float));
    fti_model_acts_free(acts);
    return out;
}

/* The RMS of got - ref relative to ref's RMS. */
static double ti_rel_rms(const float *got, const float *ref, size_t n) {
    double se = 0, sr = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        se += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
        sr += (double)ref[i] * ref[i];
    }
    return sqrt(se / sr);
}

static double ti_max_rel(const float *a, const float *b, size_t n) {
    double mx = 0, scale = 0;
    size_t i;
    for (i = 0; i < n; i++) scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (scale > 0 ? scale : 1);
        if (d > mx) mx = d;
    }
    return mx;
}

FTI_TEST(infer_matches_training_forward) {
    int tied;
    for (tied = 0; tied < 2; tied++) {
        fti_model_config cfg;
        float *params = NULL, *ref, *got, *step;
        const char *path = ti_model(&cfg, &params, FTI_GGML_F32, tied, "f32.gguf", 4.0f);
        fti_engine *e = NULL;
        fti_session *s = NULL;
        fti_session_opts so;
        fti_error err;
        int32_t toks[40];
        size_t T = 40, V = 96, i;
        fti_rng rng;
        REQUIRE(path != NULL);
        fti_rng_seed(&rng, 3, 3);
        for (i = 0; i < T; i++) toks[i] = (int32_t)fti_rng_below(&rng, 96);
        ref = ti_train_logits(&cfg, params, toks, T);
        REQUIRE(ref != NULL);
        REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
        memset(&so, 0, sizeof so);
        so.n_batch = 13; /* batches that do not divide T (GEMM attention) */
        REQUIRE(fti_session_create(&s, e, &so, &err) == FTI_OK);
        got = (float *)malloc(T * V * sizeof(float));
        step = (float *)malloc(T * V * sizeof(float));
        REQUIRE(fti_session_eval(s, toks, T, got, &err) == FTI_OK);
        {
            double rel = ti_max_rel(got, ref, T * V);
            if (rel > 1e-5) fprintf(stderr, "    tied %d: max rel diff %g\n", tied, rel);
            CHECK(rel <= 1e-5);
        }
        /* token by token through the KV cache (the decode path) gives the same logits */
        fti_session_reset(s);
        for (i = 0; i < T; i++) {
            REQUIRE(fti_session_eval(s, toks + i, 1, NULL, &err) == FTI_OK);
            memcpy(step + i * V, fti_session_logits(s), V * sizeof(float));
        }
        CHECK(ti_max_rel(step, ref, T * V) <= 1e-5);
        CHECK_EQ_INT(fti_session_pos(s), T);
        fti_session_free(s);
        fti_engine_close(e);
        free(ref);
        free(got);
        free(step);
        free(params);
    }
}

/* A "trained tiny model": the test config trained by part 07 for 60 steps on the corpus text
 * (bytes 32..127 as ids 0..95), so the weights have a trained distribution. Returns NULL when the
 * training part is compiled out or the corpus is missing (the caller falls back to init
 * weights). */
static float *ti_trained_params(const fti_model_config *cfg) {
#if defined(FTI_TRAIN_H) && !defined(FTI_NO_TRAIN)
    void *text = NULL;
    size_t len = 0, i, n;
    int32_t *ids;
    fti_train_opts o;
    fti_token_array tr, va;
    fti_trainer *t = NULL;
    fti_error err;
    float *out = NULL;
    if (fti_test_corpus_text(&text, &len) != FTI_OK) return NULL;
    n = len < 60000 ? len : 60000;
    ids = (int32_t *)malloc(n * sizeof(int32_t));
    for (i = 0; i < n; i++) {
        int c = ((const unsigned char *)text)[i];
        ids[i] = c < 32 || c > 127 ? 0 : c - 32;
    }
    fti_free(text);
    memset(&o, 0, sizeof o);
    o.batch = 4;
    o.ctx = 32;
    o.max_steps = 60;
    o.lr = 3e-3f;
    o.n_threads = 1;
    o.seed = 5;
    tr.data = ids;
    tr.n_tokens = n - 4096;
    tr.token_bytes = 4;
    va.data = ids + (n - 4096);
    va.n_tokens = 0;
    va.token_bytes = 4;
    if (fti_trainer_create(cfg, NULL, &o, tr, va, &t, &err) == FTI_OK) {
        while (!fti_trainer_done(t) && fti_trainer_step(t, NULL, &err) == FTI_OK) {
        }
        out = (float *)malloc(fti_model_n_params(cfg) * sizeof(float));
        memcpy(out, fti_trainer_params(t), fti_model_n_params(cfg) * sizeof(float));
    } else {
        fprintf(stderr, "    trainer: %s\n", err.msg);
    }
    fti_trainer_free(t);
    free(ids);
    return out;
#else
    (void)cfg;
    return NULL;
#endif
}

FTI_TEST(infer_quantized_tolerance) {
    static const uint32_t types[4] = {FTI_GGML_F16, FTI_GGML_BF16, FTI_GGML_Q8_0, FTI_GGML_Q4_0};
    /* relative RMS error of the logits vs the f32 training forward, on the trained tiny model
     * (on init weights when part 07 is compiled out) */
    static const double tol_trained[4] = {0.001, 0.005, 0.01, 0.1};
    static const double tol_init[4] = {0.002, 0.01, 0.03, 0.2};
    const double *tol_rms;
    fti_model_config cfg0;
    float *p0 = NULL, *trained;
    int ti;
    REQUIRE(ti_model(&cfg0, &p0, FTI_GGML_F32, 0, "q.gguf", 1.0f) != NULL);
    trained = ti_trained_params(&cfg0);
    if (trained) memcpy(p0, trained, fti_model_n_params(&cfg0) * sizeof(float));
    tol_rms = trained ? tol_trained : tol_init;
    free(trained);
    for (ti = 0; ti < 4; ti++) {
        fti_model_config cfg = cfg0;
        float *params = p0, *ref, *got;
        const char *path = ti_model_write(params, types[ti], "q.gguf");
        fti_engine *e = NULL;
        fti_session *s = NULL;
        fti_error err;
        int32_t toks[32];
        size_t T = 32, V = 96, i;
        double rms;
        REQUIRE(path != NULL);
        for (i = 0; i < T; i++) toks[i] = (int32_t)((i * 37 + 5) % 96);
        ref = ti_train_logits(&cfg, params, toks, T);
        REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
        CHECK_EQ_INT(fti_engine_weight_type(e), types[ti]);
        REQUIRE(fti_session_create(&s, e, NULL, &err) == FTI_OK);
        got = (float *)malloc(T * V * sizeof(float));
        REQUIRE(fti_session_eval(s, toks, T, got, &err) == FTI_OK);
        rms = ti_rel_rms(got, ref, T * V);
        if (getenv("FTI_TEST_VERBOSE") || rms > tol_rms[ti])
            fprintf(stderr, "    %s: relative rms error %.4f (tolerance %.4f)\n",
                    fti_ggml_type_name(types[ti]), rms, tol_rms[ti]);
        CHECK(rms <= tol_rms[ti]);
        fti_session_free(s);
        fti_engine_close(e);
        free(ref);
        free(got);
    }
    free(p0);
}

FTI_TEST(infer_quantized_odd_ffn_width) {
    /* the tiny preset's SwiGLU width, 176, is no multiple of 32: in a Q8_0/Q4_0 file the down
     * projection stays F32 (writer and fti-quantize alike) and the engine must still run it,
     * session and batch (it refused to size the session's quantized activations) */
    static const uint32_t types[2] = {FTI_GGML_Q8_0, FTI_GGML_Q4_0};
    static const double tol[2] = {0.03, 0.3}; /* untrained weights: as infer_quantized_tolerance */
    int ti;
    for (ti = 0; ti < 2; ti++) {
        fti_test_model_opts o;
        fti_model_config cfg;
        float *params = NULL, *ref, *got;
        const char *path;
        fti_engine *e = NULL;
        fti_session *s = NULL;
        fti_batch *bt = NULL;
        fti_error err;
        int32_t toks[24];
        size_t T = 24, V = 96, i;
        double rms;
        memset(&o, 0, sizeof o);
        o.matrix_type = types[ti];
        o.seed = 5;
        o.scale = 2.0f;
        o.vocab = FTI_TEST_VOCAB_BYTES;
        o.hidden_dim = 176;
        path = fti_test_model("odd.gguf", &o, &cfg, &params);
        REQUIRE(path != NULL);
        for (i = 0; i < T; i++) toks[i] = (int32_t)((i * 29 + 3) % 95);
        ref = ti_train_logits(&cfg, params, toks, T);
        REQUIRE(ref != NULL);
        REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
        CHECK_EQ_INT(fti_engine_weight_type(e), types[ti]);
        REQUIRE(fti_session_create(&s, e, NULL, &err) == FTI_OK);
        got = (float *)malloc(T * V * sizeof(float));
        REQUIRE(fti_session_eval(s, toks, T, got, &err) == FTI_OK);
        rms = ti_rel_rms(got, ref, T * V);
        if (rms > tol[ti])
            fprintf(stderr, "    %s: relative rms error %.4f\n", fti_ggml_type_name(types[ti]),
                    rms);
        CHECK(rms <= tol[ti]);
        REQUIRE(fti_batch_create(e, 4, 48, &bt, &err) == FTI_OK);
        {   /* the batch's prefill of the same tokens in a second session, then one step of both */
            fti_session *s2 = NULL, *ss[2];
            float *got2 = (float *)malloc(T * V * sizeof(float));
            int32_t next[2] = {7, 7};
            REQUIRE(fti_session_create(&s2, e, NULL, &err) == FTI_OK);
            CHECK(fti_batch_prefill(bt, s2, toks, T, got2, NULL, &err) == FTI_OK);
            CHECK(ti_max_rel(got2, got, T * V) < 1e-3);
            ss[0] = s, ss[1] = s2;
            CHECK(fti_session_eval_batch(bt, ss, next, 2, NULL, &err) == FTI_OK);
            CHECK(ti_max_rel(fti_session_logits(s2), fti_session_logits(s), V) < 1e-3);
            fti_session_free(s2);
            free(got2);
        }
        fti_batch_free(bt);
        fti_session_free(s);
        fti_engine_close(e);
        free(ref);
        free(got);
        free(params);
    }
}

/* A prompt over F32 matrices without a pool packs each GEMM in a block of its own (as
 * fti_session_eval's comment says; it said "allocation-free"); with every allocation failing
 * the products run unpacked: the same logits to rounding, no error. */
FTI_TEST(infer_f32_prefill_allocations) {
    fti_model_config cfg;
    float *params = NULL, *a, *b;
    const char *path = ti_model(&cfg, &params, FTI_GGML_F32, 0, "pf32.gguf", 4.0f);
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_error err;
    int32_t toks[30];
    size_t i, T = 30, V = 96;
    fti_result rc;
    REQUIRE(path != NULL);
    for (i = 0; i < T; i++) toks[i] = (int32_t)((i * 7 + 3) % 96);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    REQUIRE(fti_session_create(&s, e, NULL, &err) == FTI_OK);
    a = (float *)malloc(T * V * sizeof(float));
    b = (float *)malloc(T * V * sizeof(float));
    REQUIRE(a && b);
    fti_test_alloc_fail_at(0, 0);
    CHECK_OK(fti_session_eval(s, toks, T, a, &err));
    fti_session_reset(s);
    fti_test_alloc_fail_at(1, 1);
    rc = fti_session_eval(s, toks, T, b, &err);
    fti_test_alloc_fail_at(0, 0);
    CHECK_OK(rc);
    CHECK(ti_max_rel(b, a, T * V) <= 1e-5);
    free(a);
    free(b);
    fti_session_free(s);
    fti_engine_close(e);
    free(params);
}

FTI_TEST(infer_threads_and_caller_memory) {
    fti_model_config cfg;
    float *params = NULL, *a, *b;
    const char *path = ti_model(&cfg, &params, FTI_GGML_Q8_0, 0, "q8.gguf", 4.0f);
    fti_engine *e = NULL;
    fti_session *s1 = NULL, *s2 = NULL;
    fti_session_opts so;
    fti_pool *pool = fti_pool_create(3);
    fti_error err;
    int32_t toks[30];
    size_t i, T = 30, V = 96, need;
    void *mem;
    REQUIRE(path != NULL && pool != NULL);
    for (i = 0; i < T; i++) toks[i] = (int32_t)((i * 11 + 1) % 96);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    memset(&so, 0, sizeof so);
    so.n_batch = 12;
    REQUIRE(fti_session_create(&s1, e, &so, &err) == FTI_OK);
    so.pool = pool;
    so.n_ctx = 32;
    need = fti_session_mem_bytes(e, &so);
    REQUIRE(need > 0);
    mem = malloc(need + 7);
    so.mem = (char *)mem + 7; /* unaligned on purpose */
    so.mem_bytes = need - 1;
    CHECK(fti_session_create(&s2, e, &so, &err) == FTI_ERR_LIMIT);
    so.mem_bytes = need;
    /* with caller memory the session allocates nothing */
    fti_test_alloc_fail_at(1, 1);
    {
        fti_result rc = fti_session_create(&s2, e, &so, &err);
        long n_alloc = fti_test_alloc_count;
        fti_test_alloc_fail_at(0, 0);
        REQUIRE(rc == FTI_OK);
        CHECK_EQ_INT(n_alloc, 0);
    }
    a = (float *)malloc(T * V * sizeof(float));
    b = (float *)malloc(T * V * sizeof(float));
    REQUIRE(fti_session_eval(s1, toks, T, a, &err) == FTI_OK);
    REQUIRE(fti_session_eval(s2, toks, T, b, &err) == FTI_OK);
    CHECK(memcmp(a, b, T * V * sizeof(float)) == 0); /* 1 or 3 threads: the same bits */
    /* decode steps (the T = 1 path) allocate nothing and agree with the batched prefill */
    fti_session_truncate(s2, 20);
    fti_test_alloc_fail_at(1, 1);
    for (i = 20; i < 30; i++) CHECK_OK(fti_session_eval(s2, toks + i, 1, NULL, NULL));
    fti_test_alloc_fail_at(0, 0);
    CHECK(ti_max_rel(fti_session_logits(s2), a + (T - 1) * V, V) <= 1e-5);
    /* context overflow is an error, not a crash */
    CHECK(fti_session_eval(s2, toks, 3, NULL, &err) == FTI_ERR_LIMIT);
    {
        int32_t bad = 96;
        fti_session_reset(s2);
        CHECK(fti_session_eval(s2, &bad, 1, NULL, &err) == FTI_ERR_INVALID);
    }
    fti_session_free(s1);
    fti_session_free(s2);
    free(mem);
    fti_engine_close(e);
    fti_pool_free(pool);
    free(a);
    free(b);
    free(params);
}

FTI_TEST(infer_sampler_frequencies) {
    /* a fixed distribution: p = softmax(logits); 40000 seeded draws match within 5 sigma */
    static const float base[6] = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -3.0f};
    fti_sampler_opts o;
    fti_sampler *s = NULL;
    int mode;
    for (mode = 0; mode < 4; mode++) {
        double p[6], z = 0, expect[6];
        long counts[6] = {0, 0, 0, 0, 0, 0};
        int i, n = 40000;
        memset(&o, 0, sizeof o);
        o.temperature = mode == 1 ? 0.5f : 1.0f;
        o.seed = 1234 + (uint64_t)mode;
        if (mode == 2) o.top_k = 3;
        if (mode == 3) o.top_p = 0.8f;
        for (i = 0; i < 6; i++) {
            p[i] = exp(base[i] / o.temperature);
            z += p[i];
        }
        for (i = 0; i < 6; i++) p[i] /= z;
        if (mode == 2) { /* top 3 renormalised */
            double zz = p[0] + p[1] + p[2];
            for (i = 0; i < 6; i++) p[i] = i < 3 ? p[i] / zz : 0;
        }
        if (mode == 3) { /* smallest prefix with mass >= 0.8 */
            double acc = 0, zz;
            int cut = 0;
            while (acc < 0.8) acc += p[cut++];
            zz = acc;
            for (i = 0; i < 6; i++) p[i] = i < cut ? p[i] / zz : 0;
        }
        for (i = 0; i < 6; i++) expect[i] = p[i] * n;
        REQUIRE(fti_sampler_create(&s, 6, &o) == FTI_OK);
        for (i = 0; i < n; i++) {
            float lg[6];
            int32_t t;
            memcpy(lg, base, sizeof lg);
            t = fti_sampler_sample(s, lg);
            REQUIRE(t >= 0 && t < 6);
            counts[t]++;
        }
        for (i = 0; i < 6; i++) {
            double sd = sqrt(expect[i] * (1 - p[i])) + 1e-9;
            if (fabs(counts[i] - expect[i]) > 5 * sd + 0.5) {
                fprintf(stderr, "    mode %d token %d: %ld vs expected %.1f\n", mode, i,
                        counts[i], expect[i]);
                fti_test_failures++;
            }
        }
        fti_sampler_free(s);
        s = NULL;
    }
    /* same seed, same sequence; greedy picks the argmax (lowest id on ties) */
    {
        fti_sampler *a = NULL, *b = NULL;
        float lg[6];
        int i;
        memset(&o, 0, sizeof o);
        o.temperature = 1.0f;
        o.seed = 99;
        REQUIRE(fti_sampler_create(&a, 6, &o) == FTI_OK);
        REQUIRE(fti_sampler_create(&b, 6, &o) == FTI_OK);
        for (i = 0; i < 200; i++) {
            float l2[6];
            memcpy(lg, base, sizeof lg);
            memcpy(l2, base, sizeof l2);
            CHECK_EQ_INT(fti_sampler_sample(a, lg), fti_sampler_sample(b, l2));
        }
        fti_sampler_free(a);
        fti_sampler_free(b);
        REQUIRE(fti_sampler_create(&a, 6, NULL) == FTI_OK);
        {
            float t[6] = {1, 3, 3, -2, 0, 2};
            CHECK_EQ_INT(fti_sampler_sample(a, t), 1);
        }
        fti_sampler_free(a);
    }
    /* min-p drops tokens below min_p * p_max */
    {
        fti_sampler *a = NULL;
        int i;
        memset(&o, 0, sizeof o);
        o.temperature = 1.0f;
        o.min_p = 0.3f; /* keeps tokens with p >= 0.3 p_max: ids 0 (1.0), 1 (0.37) */
        REQUIRE(fti_sampler_create(&a, 6, &o) == FTI_OK);
        for (i = 0; i < 2000; i++) {
            float lg[6];
            memcpy(lg, base, sizeof lg);
            CHECK(fti_sampler_sample(a, lg) <= 1);
        }
        fti_sampler_free(a);
    }
    /* penalties: repeat (CTRL), frequency and presence */
    {
        fti_sampler *a = NULL;
        float lg[6] = {2.0f, -1.0f, 1.0f, 0.0f, 0.0f, 0.0f};
        memset(&o, 0, sizeof o);
        o.repeat_penalty = 2.0f;
        o.frequency_penalty = 0.5f;
        o.presence_penalty = 0.25f;
        o.penalty_last_n = 3;
        REQUIRE(fti_sampler_create(&a, 6, &o) == FTI_OK);
        fti_sampler_accept(a, 0);
        fti_sampler_accept(a, 0);
        fti_sampler_accept(a, 1);
        fti_sampler_accept(a, 0); /* window {0, 1, 0} after evicting the first 0 */
        CHECK_EQ_INT(fti_sampler_sample(a, lg), 2); /* greedy after penalties */
        CHECK_NEAR(lg[0], 2.0 / 2 - 2 * 0.5 - 0.25, 1e-6, 0);
        CHECK_NEAR(lg[1], -1.0 * 2 - 1 * 0.5 - 0.25, 1e-6, 0);
        CHECK_NEAR(lg[2], 1.0, 1e-6, 0);
        fti_sampler_free(a);
    }
}

/* log-softmax and the k most likely tokens, against a direct computation */
FTI_TEST(infer_logprobs_top) {
    float lg[9] = {1.0f, 3.0f, -2.0f, 3.0f, NAN, 0.5f, -INFINITY, 2.0f, 3.0f};
    int32_t ids[9];
    float lp[9];
    double lse, sum = 0;
    int i;
    for (i = 0; i < 9; i++)
        if (i != 4 && i != 6) sum += exp((double)lg[i]);
    lse = fti_logprobs_top(lg, 9, 4, ids, lp);
    CHECK_NEAR(lse, log(sum), 1e-12, 1e-12);
    /* ties: lower ids first */
    CHECK_EQ_INT(ids[0], 1);
    CHECK_EQ_INT(ids[1], 3);
    CHECK_EQ_INT(ids[2], 8);
    CHECK_EQ_INT(ids[3], 7);
    CHECK_NEAR(lp[0], 3.0 - log(sum), 1e-6, 0);
    CHECK_NEAR(lp[3], 2.0 - log(sum), 1e-6, 0);
    /* all of them: NaN and -inf last, in id order */
    fti_logprobs_top(lg, 9, 20, ids, lp);
    CHECK_EQ_INT(ids[4], 0);
    CHECK_EQ_INT(ids[5], 5);
    CHECK_EQ_INT(ids[6], 2);
    CHECK_EQ_INT(ids[7], 4);
    CHECK_EQ_INT(ids[8], 6);
    CHECK(lp[7] == -INFINITY && lp[8] == -INFINITY);
    {
        double tot = 0;
        for (i = 0; i < 9; i++) tot += exp((double)lp[i]);
        CHECK_NEAR(tot, 1.0, 1e-6, 0);
    }
    /* a large vocabulary: the normaliser only, and the top 5 against a full sort */
    {
        static float big[32000];
        int32_t top[5];
        uint64_t st = 99;
        float best = -INFINITY;
        int32_t bi = -1;
        for (i = 0; i < 32000; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            big[i] = (float)((st >> 40) % 100000) / 5000.0f;
            if (big[i] > best) {
                best = big[i];
                bi = i;
            }
        }
        lse = fti_logprobs_top(big, 32000, 5, top, NULL);
        CHECK_EQ_INT(top[0], bi);
        for (i = 1; i < 5; i++) CHECK(big[top[i]] <= big[top[i - 1]]);
        { /* the top 20 against a selection by brute force (value down, then id up); a NaN and
           * ties in the data */
            int32_t t20[20], want[20];
            float l20[20];
            int j, w;
            big[7] = NAN;
            big[31999] = best; /* a tie with the best: after the lower ids of that value */
            fti_logprobs_top(big, 32000, 20, t20, l20);
            for (j = 0; j < 20; j++) {
                int32_t pick = -1;
                for (w = 0; w < 32000; w++) {
                    int taken = 0, q;
                    if (big[w] != big[w]) continue;
                    for (q = 0; q < j; q++) taken |= want[q] == w;
                    if (!taken && (pick < 0 || big[w] > big[pick])) pick = w;
                }
                want[j] = pick;
                CHECK_EQ_INT(t20[j], want[j]);
            }
            for (j = 1; j < 20; j++) CHECK(l20[j] <= l20[j - 1]);
            big[7] = 0.0f;
            big[31999] = 0.0f;
        }
        CHECK(lse > best && lse < best + log(32000.0));
        CHECK(fti_logprobs_top(big, 32000, 0, NULL, NULL) == lse);
    }
    {
        float ninf[3] = {-INFINITY, -INFINITY, NAN};
        CHECK(fti_logprobs_top(ninf, 3, 2, ids, lp) == -INFINITY);
        CHECK(lp[0] == -INFINITY && ids[0] == 0 && ids[1] == 1);
    }
}

typedef struct ti_stream {
    fti_buf all;
    int pieces;
    int bad_utf8;
} ti_stream;

static int ti_on_text(void *user, const char *text, size_t n) {
    ti_stream *st = (ti_stream *)user;
    if (fti_utf8_valid_prefix((const unsigned char *)text, n) != n) st->bad_utf8++;
    fti_buf_append(&st->all, text, n);
    st->pieces++;
    return 0;
}

FTI_TEST(infer_generate_stream_and_stop) {
    fti_model_config cfg;
    float *params = NULL;
    const char *path = ti_model(&cfg, &params, FTI_GGML_F32, 1, "g.gguf", 4.0f);
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_sampler *smp = NULL;
    fti_sampler_opts so;
    fti_generate_opts go;
    fti_generate_stats st;
    fti_error err;
    ti_stream stream;
    fti_buf full;
    int32_t prompt[4] = {95, 1, 2, 3}, gen[64];
    size_t len = 0;
    const char *tb;
    REQUIRE(path != NULL);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    tb = fti_engine_token_bytes(e, 26, &len); /* U+0120 'a' -> " a" */
    CHECK(len == 2 && memcmp(tb, " a", 2) == 0);
    tb = fti_engine_token_bytes(e, 52, &len); /* U+00E9 -> the single byte 0xE9 */
    CHECK(len == 1 && (unsigned char)tb[0] == 0xE9);
    tb = fti_engine_token_bytes(e, 95, &len); /* CONTROL renders as nothing */
    CHECK(len == 0);
    CHECK_EQ_INT(fti_engine_bos(e), 95);
    CHECK_EQ_INT(fti_engine_add_bos(e), 1);
    REQUIRE(fti_session_create(&s, e, NULL, &err) == FTI_OK);
    memset(&so, 0, sizeof so);
    so.temperature = 1.0f;
    so.seed = 5;
    REQUIRE(fti_sampler_create(&smp, 96, &so) == FTI_OK);
    /* 1: a free run of 40 tokens, collected whole */
    memset(&full, 0, sizeof full);
    memset(&go, 0, sizeof go);
    go.max_tokens = 40;
    go.ignore_eos = 1;
    go.text = &full;
    go.tokens = gen;
    go.tokens_cap = 64;
    REQUIRE(fti_generate(s, smp, prompt, 4, &go, &st, &err) == FTI_OK);
    CHECK_EQ_INT(st.n_generated, 40);
    CHECK_EQ_INT(st.finish, FTI_FINISH_LENGTH);
    CHECK(full.len > 0);
    CHECK(fti_utf8_valid_prefix((const unsigned char *)full.data, full.len) == full.len);
    /* 2: same seed, a stop string taken from the middle of run 1's text */
    if (full.len >= 8) {
        char stop[4];
        const char *stops[2];
        size_t at = full.len / 2;

        memset(&stream, 0, sizeof stream);
        /* a stop string of 3 bytes that does not split a character */
        while (at < full.len && ((unsigned char)full.data[at] & 0xC0) == 0x80) at++;
        if (at + 3 <= full.len) {
            const char *first;
            memcpy(stop, full.data + at, 3);
            stop[3] = 0;
            stops[0] = "\x01never";
            stops[1] = stop;
            first = strstr(full.data, stop);
            fti_session_reset(s);
            fti_sampler_reset(smp);
            memset(&go, 0, sizeof go);
            go.max_tokens = 40;
            go.ignore_eos = 1;
            go.stop = stops;
            go.n_stop = 2;
            go.on_text = ti_on_text;
            go.user = &stream;
            REQUIRE(fti_generate(s, smp, prompt, 4, &go, &st, &err) == FTI_OK);
            CHECK_EQ_INT(st.finish, FTI_FINISH_STOP);
            /* the streamed text is run 1's text up to the first occurrence of the stop */
            CHECK(first != NULL && stream.all.len == (size_t)(first - full.data));
            CHECK(stream.all.len == 0 || memcmp(stream.all.data, full.data, stream.all.len) == 0);
            CHECK_EQ_INT(stream.bad_utf8, 0);
            fti_buf_free(&stream.all);
        }

    }
    /* 3: n_stop without the strings is a bad argument, not a crash */
    memset(&go, 0, sizeof go);
    go.max_tokens = 4;
    go.n_stop = 2;
    CHECK(fti_generate(s, smp, prompt, 4, &go, &st, &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "n_stop") != NULL);
    fti_buf_free(&full);
    fti_sampler_free(smp);
    fti_session_free(s);
    fti_engine_close(e);
    free(params);
}

/* A generation continued by a second call (n_prompt 0, or the next turn's prompt) follows on
 * from every token the first one produced: the session holds the last one too (it was sampled
 * but left unevaluated, so a continuation repeated it: "of the the world"). */
FTI_TEST(infer_generate_continues) {
    fti_model_config cfg;
    float *params = NULL;
    const char *path = ti_model(&cfg, &params, FTI_GGML_F32, 1, "gc.gguf", 4.0f);
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_sampler *smp = NULL;
    fti_generate_opts go;
    fti_generate_stats st;
    fti_error err;
    int32_t prompt[4] = {95, 1, 2, 3}, one[24], two[24];
    const char *stops[1];
    char stop[2];
    fti_buf text;
    size_t i;
    REQUIRE(path != NULL);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    REQUIRE(fti_session_create(&s, e, NULL, &err) == FTI_OK);
    /* a sampler of another vocabulary is refused (it read past the session's 96 logits) */
    REQUIRE(fti_sampler_create(&smp, 4096, NULL) == FTI_OK);
    CHECK(fti_generate(s, smp, prompt, 4, NULL, &st, &err) == FTI_ERR_INVALID);
    CHECK_EQ_INT(fti_session_pos(s), 0);
    /* ... saying which sizes differ (it said "bad argument") */
    CHECK(strstr(err.msg, "sampler is for 4096 tokens") != NULL);
    CHECK(strstr(err.msg, "vocabulary has 96") != NULL);
    CHECK(fti_generate(s, smp, NULL, 4, NULL, &st, &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "prompt NULL") != NULL);
    fti_sampler_free(smp);
    REQUIRE(fti_sampler_create(&smp, 96, NULL) == FTI_OK); /* greedy */
    memset(&go, 0, sizeof go);
    go.ignore_eos = 1;
    go.max_tokens = 20;
    go.tokens = one;
    go.tokens_cap = 24;
    REQUIRE(fti_generate(s, smp, prompt, 4, &go, &st, &err) == FTI_OK);
    CHECK_EQ_INT(st.finish, FTI_FINISH_LENGTH);
    CHECK_EQ_INT(fti_session_pos(s), 24);
    /* 10, then 10 more without a prompt: the same 20 tokens */
    fti_session_reset(s);
    fti_sampler_reset(smp);
    go.max_tokens = 10;
    go.tokens = two;
    REQUIRE(fti_generate(s, smp, prompt, 4, &go, &st, &err) == FTI_OK);
    CHECK_EQ_INT(fti_session_pos(s), 14);
    go.tokens = two + 10;
    REQUIRE(fti_generate(s, smp, NULL, 0, &go, &st, &err) == FTI_OK);
    CHECK_EQ_INT(st.n_generated, 10);
    CHECK_EQ_INT(fti_session_pos(s), 24);
    CHECK(memcmp(one, two, 20 * sizeof(int32_t)) == 0);
    /* a stop string's tokens are in the session too: the next turn follows them */
    memset(&text, 0, sizeof text);
    fti_engine_token_bytes(e, one[5], &i);
    if (i > 0) {
        stop[0] = fti_engine_token_bytes(e, one[5], &i)[0];
        stop[1] = 0;
        stops[0] = stop;
        fti_session_reset(s);
        fti_sampler_reset(smp);
        go.max_tokens = 20;
        go.tokens = two;
        go.stop = stops;
        go.n_stop = 1;
        go.text = &text;
        REQUIRE(fti_generate(s, smp, prompt, 4, &go, &st, &err) == FTI_OK);
        CHECK_EQ_INT(st.finish, FTI_FINISH_STOP);
        CHECK_EQ_INT(fti_session_pos(s), 4 + st.n_generated);
    }
    fti_buf_free(&text);
    fti_sampler_free(smp);
    fti_session_free(s);
    fti_engine_close(e);
    free(params);
}

FTI_TEST(infer_prompt_fit_and_perplexity) {
    int32_t head[3] = {1, 2, 3}, body[6] = {10, 11, 12, 13, 14, 15}, out[8];
    size_t n = fti_prompt_fit(head, 3, body, 6, 7, out);
    CHECK_EQ_INT(n, 7);
    CHECK(out[0] == 1 && out[2] == 3 && out[3] == 12 && out[6] == 15);
    CHECK_EQ_INT(fti_prompt_fit(head, 3, body, 6, 2, out), 0);
    CHECK_EQ_INT(fti_prompt_fit(head, 3, body, 2, 8, out), 5);
    {
        fti_model_config cfg;
        float *params = NULL, *ref;
        const char *path = ti_model(&cfg, &params, FTI_GGML_F32, 0, "p.gguf", 2.0f);
        fti_engine *e = NULL;
        fti_session *s = NULL;
        fti_error err;
        int32_t toks[40];
        double nll = 0, want = 0;
        size_t i, j, V = 96;
        REQUIRE(path != NULL);
        for (i = 0; i < 40; i++) toks[i] = (int32_t)((i * 7 + 3) % 96);
        ref = ti_train_logits(&cfg, params, toks, 40);
        for (i = 0; i + 1 < 40; i++) {
            double mx = ref[i * V], se = 0;
            for (j = 0; j < V; j++) mx = ref[i * V + j] > mx ? ref[i * V + j] : mx;
            for (j = 0; j < V; j++) se += exp(ref[i * V + j] - mx);
            want += log(se) + mx - ref[i * V + toks[i + 1]];
        }
        want /= 39;
        REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
        REQUIRE(fti_session_create(&s, e, NULL, &err) == FTI_OK);
        REQUIRE(fti_session_nll(s, toks, 40, &nll, &err) == FTI_OK);
        CHECK_NEAR(nll, want, 1e-5, 1e-5);
        fti_session_free(s);
        fti_engine_close(e);
        free(ref);
        free(params);
    }
}

/* A model file carrying GPT-2's vocabulary (part 03's GGUF form): the engine's tokenizer (built
 * from the file) encodes like the original, and every token renders as the same bytes. */
FTI_TEST(infer_tokenizer_from_model_file) {
    fti_tokenizer *orig = NULL, *back = NULL;
    fti_tokenizer_gguf tg;
    fti_gguf_tokenizer_meta m;
    fti_model_config cfg;
    fti_engine *e = NULL;
    fti_error err;
    float *params;
    const char *path = fti_test_tmp("gpt2vocab.gguf");
    static const char *texts[4] = {
        "Hello world! The cynic's  dictionary, 1911.\n\tTabs & spaces   ",
        "caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 \xf0\x9f\x98\x80 emoji",
        "<|endoftext|> is text here", "12345 + 678 = 13023?"};
    size_t i, j, len1 = 0, len2 = 0;
    if (fti_tokenizer_load_gpt2(fti_test_data("tokenizers/gpt2/encoder.json"),
                                fti_test_data("tokenizers/gpt2/vocab.bpe"), NULL, &orig,
                                &err) != FTI_OK) {
        fprintf(stderr, "    skipped: %s\n", err.msg);
        return;
    }
    REQUIRE(fti_tokenizer_gguf_make(orig, &tg) == FTI_OK);
    fti_gguf_tokenizer_meta_from(&m, &tg, 1);
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = (uint32_t)tg.n_tokens;
    cfg.dim = 32;
    cfg.n_layers = 1;
    cfg.n_heads = 2;
    cfg.hidden_dim = 64;
    cfg.context_len = 16;
    cfg.tied_embeddings = 1;
    REQUIRE(fti_model_config_resolve(&cfg, &err) == FTI_OK);
    params = (float *)calloc(fti_model_n_params(&cfg), sizeof(float));
    REQUIRE(fti_gguf_write_llama(path, &cfg, params, &m, NULL, NULL, &err) == FTI_OK);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(fti_engine_add_bos(e), 1);
    CHECK_EQ_INT(fti_engine_bos(e), fti_tokenizer_eot_id(orig));
    if (fti_engine_tokenizer(e, &back, &err) != FTI_OK) fprintf(stderr, "    %s\n", err.msg);
    REQUIRE(back != NULL);
    CHECK_EQ_INT(fti_tokenizer_vocab_size(back), fti_tokenizer_vocab_size(orig));
    for (i = 0; i < 4; i++) {
        fti_tokens a, b;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        CHECK_OK(fti_tokenizer_encode(orig, texts[i], strlen(texts[i]), 0, &a));
        CHECK_OK(fti_tokenizer_encode(back, texts[i], strlen(texts[i]), 0, &b));
        CHECK(a.len == b.len && memcmp(a.ids, b.ids, a.len * sizeof(uint32_t)) == 0);
        fti_tokens_free(&a);
        fti_tokens_free(&b);
    }
    for (j = 0; j < tg.n_tokens; j++) {
        const char *x = fti_tokenizer_token(orig, (uint32_t)j, &len1);
        const char *y = fti_engine_token_bytes(e, (int32_t)j, &len2);
        if (fti_tokenizer_token_type(orig, (uint32_t)j) == FTI_TOKEN_CONTROL) {
            CHECK_EQ_INT(len2, 0);
            continue;
        }
        if (!x || len1 != len2 || memcmp(x, y, len1) != 0) {
            fprintf(stderr, "    token %lu renders differently\n", (unsigned long)j);
            fti_test_failures++;
            break;
        }
    }
    fti_tokenizer_free(back);
    fti_engine_close(e);
    fti_tokenizer_gguf_free(&tg);
    fti_tokenizer_free(orig);
    free(params);
}

/* A byte-level vocabulary: the 256 bytes in GPT-2's byte-to-unicode form (id = byte), then
 * <|endoftext|> (256, BOS/EOS), <|title|> (257), <|body|> (258); no merges. */
static const char *ti_byte_model(const char *file) {
    static char store[259][16];
    const char *toks[259];
    int32_t specials[3] = {256, 257, 258};
    fti_gguf_tokenizer_meta m;
    fti_model_config cfg;
    fti_error err;
    float *params;
    int b, n = 0;
    const char *path = fti_test_tmp(file);
    fti_result rc;
    for (b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        unsigned char u[4];
        size_t k = fti_utf8_encode(printable ? (uint32_t)b : (uint32_t)(256 + n++), u);
        memcpy(store[b], u, k);
        store[b][k] = 0;
        toks[b] = store[b];
    }
    toks[256] = "<|endoftext|>";
    toks[257] = "<|title|>";
    toks[258] = "<|body|>";
    memset(&m, 0, sizeof m);
    m.n_tokens = 259;
    m.tokens = toks;
    m.special_ids = specials;
    m.n_special = 3;
    m.bos_id = 256;
    m.eos_id = 256;
    m.pad_id = -1;
    m.add_bos = 1;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 259;
    cfg.dim = 32;
    cfg.n_layers = 1;
    cfg.n_heads = 2;
    cfg.hidden_dim = 64;
    cfg.context_len = 64;
    cfg.tied_embeddings = 1;
    if (fti_model_config_resolve(&cfg, &err) != FTI_OK) return NULL;
    params = (float *)calloc(fti_model_n_params(&cfg), sizeof(float));
    rc = fti_gguf_write_llama(path, &cfg, params, &m, NULL, NULL, &err);
    free(params);
    return rc == FTI_OK ? path : NULL;
}

/* Prompt assembly: BOS, retrieved docs (best last) closed by the end marker, the question as an
 * open document; left truncation keeps BOS and the header; a doc that does not fit is cut. */
FTI_TEST(infer_prompt_build_rag) {
    const char *path = ti_byte_model("pb.gguf");
    fti_engine *e = NULL;
    fti_tokenizer *tok = NULL;
    fti_prompt p;
    fti_prompt_doc docs[2];
    fti_error err;
    fti_tokens hq, d0;
    size_t i;
    REQUIRE(path != NULL);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    if (fti_engine_tokenizer(e, &tok, &err) != FTI_OK) fprintf(stderr, "    %s\n", err.msg);
    REQUIRE(tok != NULL);
    docs[0].title = "b";
    docs[0].title_len = 1;
    docs[0].text = "abc";
    docs[0].text_len = 3;
    docs[1].title = NULL;
    docs[1].title_len = 0;
    docs[1].text = "zz";
    docs[1].text_len = 2;
    memset(&hq, 0, sizeof hq);
    memset(&d0, 0, sizeof d0);
    CHECK_OK(fti_prompt_append_doc(tok, "t", 1, NULL, 0, 1, &hq));
    CHECK_OK(fti_prompt_append_doc(tok, "b", 1, "abc", 3, 0, &d0));
    REQUIRE(fti_prompt_build(e, tok, "t", "cab", 3, docs, 2, 40, &p, &err) == FTI_OK);
    CHECK_EQ_INT(p.n_docs_used, 2);
    CHECK_EQ_INT(p.n_text, 3); /* "cab": the last 3 ids */
    CHECK_EQ_INT(p.ids[0], 256); /* BOS (add_bos_token) */
    CHECK_EQ_INT(hq.ids[0], 257); /* <|title|> "t\n" <|body|> */
    CHECK_EQ_INT(hq.len, 4);
    CHECK_EQ_INT(hq.ids[3], 258);
    CHECK_EQ_INT(d0.ids[d0.len - 1], 256); /* a closed doc ends with <|endoftext|> */
    /* the best doc sits right before the question */
    {
        size_t q_at = p.n - 3 - hq.len, d0_at = q_at - d0.len;
        for (i = 0; i < d0.len; i++) CHECK_EQ_INT(p.ids[d0_at + i], d0.ids[i]);
        for (i = 0; i < hq.len; i++) CHECK_EQ_INT(p.ids[q_at + i], hq.ids[i]);
        CHECK_EQ_INT(p.ids[p.n - 3], 'c');
        CHECK_EQ_INT(p.ids[p.n - 1], 'b');
    }
    fti_prompt_free(&p);
    /* too long: the question body is cut from the left, BOS + header kept */
    REQUIRE(fti_prompt_build(e, tok, "t", "abcdefghij", 10, docs, 2, 1 + hq.len + 4, &p, &err) ==
            FTI_OK);
    CHECK_EQ_INT(p.n, 1 + hq.len + 4);
    CHECK_EQ_INT(p.n_docs_used, 0);
    CHECK_EQ_INT(p.n_dropped, 6);
    CHECK_EQ_INT(p.n_text, 4); /* "ghij" */
    CHECK_EQ_INT(p.ids[0], 256);
    CHECK_EQ_INT(p.ids[p.n - 4], 'g');
    CHECK_EQ_INT(p.ids[p.n - 1], 'j');
    fti_prompt_free(&p);
    CHECK(fti_prompt_build(e, tok, "t", "abc", 3, NULL, 0, 2, &p, &err) == FTI_ERR_LIMIT);
    /* a header that fills the budget would leave none of the text: an error, not a prompt
     * without the user's words (fti-serve answered such a request from the header alone) */
    CHECK(fti_prompt_build(e, tok, "t", "abc", 3, NULL, 0, 1 + hq.len, &p, &err) ==
          FTI_ERR_LIMIT);
    REQUIRE(fti_prompt_build(e, tok, "t", "", 0, NULL, 0, 1 + hq.len, &p, &err) == FTI_OK);
    CHECK_EQ_INT(p.n, 1 + hq.len);
    fti_prompt_free(&p);
    fti_tokens_free(&hq);
    fti_tokens_free(&d0);
    fti_tokenizer_free(tok);
    fti_engine_close(e);
}

/* A LoRA adapter merged at load time gives the logits of a model file whose weights were merged
 * beforehand (W + alpha/r B A, computed here in double). */
FTI_TEST(infer_lora_merge_at_load) {
    fti_model_config cfg;
    float *params = NULL, *merged, *a_logits, *b_logits;
    const char *base = ti_model(&cfg, &params, FTI_GGML_F32, 0, "base.gguf", 2.0f);
    const char *adapter = fti_test_tmp("lora.gguf"), *mpath = fti_test_tmp("merged.gguf");
    static const char *names[2] = {"blk.0.attn_q", "blk.1.ffn_down"};
    fti_gguf_writer *w = NULL;
    fti_engine *e1 = NULL, *e2 = NULL;
    fti_engine_opts eo;
    fti_session *s1 = NULL, *s2 = NULL;
    fti_error err;
    fti_rng rng;
    float *ab[2][2];
    size_t t, i, j, k, r = 4, T = 24, V = 96;
    int32_t toks[24];
    float alpha = 8.0f;
    REQUIRE(base != NULL);
    merged = (float *)malloc(fti_model_n_params(&cfg) * sizeof(float));
    memcpy(merged, params, fti_model_n_params(&cfg) * sizeof(float));
    fti_rng_seed(&rng, 77, 1);
    REQUIRE(fti_gguf_writer_create(&w, 0) == FTI_OK);
    fti_gguf_set_str(w, "general.architecture", "llama");
    fti_gguf_set_str(w, "general.type", "adapter");
    fti_gguf_set_str(w, "adapter.type", "lora");
    fti_gguf_set_f32(w, "adapter.lora.alpha", alpha);
    for (t = 0; t < 2; t++) {
        fti_tensor_info ti;
        char nm[96];
        uint64_t ne[2];
        size_t idx = fti_model_tensor_find(&cfg, names[t]);
        REQUIRE(idx != (size_t)-1);
        fti_model_tensor_info(&cfg, idx, &ti);
        ab[t][0] = (float *)malloc(r * ti.cols * sizeof(float)); /* A (r, in) */
        ab[t][1] = (float *)malloc(ti.rows * r * sizeof(float)); /* B (out, r) */
        for (i = 0; i < r * ti.cols; i++) ab[t][0][i] = 0.1f * fti_rng_normal(&rng);
        for (i = 0; i < ti.rows * r; i++) ab[t][1][i] = 0.1f * fti_rng_normal(&rng);
        for (i = 0; i < ti.rows; i++)
            for (j = 0; j < ti.cols; j++) {
                double d = 0;
                for (k = 0; k < r; k++)
                    d += (double)ab[t][1][i * r + k] * ab[t][0][k * ti.cols + j];
                merged[ti.offset + i * ti.cols + j] += (float)(alpha / (double)r * d);
            }
        snprintf(nm, sizeof nm, "%s.weight.lora_a", names[t]);
        ne[0] = ti.cols;
        ne[1] = r;
        CHECK_OK(fti_gguf_add_tensor(w, nm, 2, ne, FTI_GGML_F32, ab[t][0], r * ti.cols * 4));
        snprintf(nm, sizeof nm, "%s.weight.lora_b", names[t]);
        ne[0] = r;
        ne[1] = ti.rows;
        CHECK_OK(fti_gguf_add_tensor(w, nm, 2, ne, FTI_GGML_F32, ab[t][1], ti.rows * r * 4));
    }
    REQUIRE(fti_gguf_writer_write(w, adapter, &err) == FTI_OK);
    fti_gguf_writer_free(w);
    REQUIRE(fti_gguf_write_llama(mpath, &cfg, merged, NULL, NULL, NULL, &err) == FTI_OK);
    memset(&eo, 0, sizeof eo);
    eo.lora_path = adapter;
    if (fti_engine_open(&e1, base, &eo, &err) != FTI_OK) fprintf(stderr, "    %s\n", err.msg);
    REQUIRE(e1 != NULL);
    REQUIRE(fti_engine_open(&e2, mpath, NULL, &err) == FTI_OK);
    REQUIRE(fti_session_create(&s1, e1, NULL, &err) == FTI_OK);
    REQUIRE(fti_session_create(&s2, e2, NULL, &err) == FTI_OK);
    for (i = 0; i < T; i++) toks[i] = (int32_t)((i * 13 + 7) % 96);
    a_logits = (float *)malloc(T * V * sizeof(float));
    b_logits = (float *)malloc(T * V * sizeof(float));
    REQUIRE(fti_session_eval(s1, toks, T, a_logits, &err) == FTI_OK);
    REQUIRE(fti_session_eval(s2, toks, T, b_logits, &err) == FTI_OK);
    CHECK(ti_max_rel(a_logits, b_logits, T * V) <= 1e-5);
    /* a broken adapter is an error naming the file */
    fti_engine_close(e1);
    e1 = NULL;
    eo.lora_path = mpath; /* a model, not an adapter */
    CHECK(fti_engine_open(&e1, base, &eo, &err) == FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, "merged.gguf") != NULL);
    fti_session_free(s1);
    fti_session_free(s2);
    fti_engine_close(e2);
    for (t = 0; t < 2; t++) {
        free(ab[t][0]);
        free(ab[t][1]);
    }
    free(a_logits);
    free(b_logits);
    free(merged);
    free(params);
}

/* fti_session_eval allocates nothing for a prompt batch either: the quantized products quantize
 * their rows into the session's own memory (fti_matmul_w would allocate a buffer per call), with
 * and without a pool; the logits are those of the same prompt evaluated token by token within
 * the multi-row vs one-row products' rounding. */
FTI_TEST(infer_session_eval_allocation_free) {
    static const uint32_t types[2] = {FTI_GGML_Q8_0, FTI_GGML_Q4_0};
    int ti;
    for (ti = 0; ti < 2; ti++) {
        fti_model_config cfg;
        const char *path = ti_model(&cfg, NULL, types[ti], 0, "af.gguf", 4.0f);
        fti_engine *e = NULL;
        fti_session *ss[3];
        fti_session_opts so;
        fti_pool *pool = fti_pool_create(2);
        fti_error err;
        int32_t prompt[24];
        size_t i, v;
        double max_err = 0;
        REQUIRE(pool != NULL);
        REQUIRE(fti_test_open_sessions(path, NULL, &e, ss, 2) == 0);
        memset(&so, 0, sizeof so);
        so.pool = pool;
        so.fixed_threads = 1;
        REQUIRE(fti_session_create(&ss[2], e, &so, &err) == FTI_OK);
        for (i = 0; i < 24; i++) prompt[i] = (int32_t)((i * 7 + 3) % 95);
        for (i = 0; i < 2; i++) {
            fti_session *s = ss[i ? 2 : 0];
            fti_result rc;
            long n_alloc;
            fti_test_alloc_fail_at(1, 1);
            rc = fti_session_eval(s, prompt, 24, NULL, &err);
            n_alloc = fti_test_alloc_count;
            fti_test_alloc_fail_at(0, 0);
            CHECK(rc == FTI_OK);
            CHECK_EQ_INT(n_alloc, 0);
        }
        for (i = 0; i < 24; i++) CHECK_OK(fti_session_eval(ss[1], &prompt[i], 1, NULL, &err));
        for (i = 0; i < 3; i += 2)
            for (v = 0; v < cfg.vocab_size; v++) {
                double a = fti_session_logits(ss[1])[v], b = fti_session_logits(ss[i])[v];
                double d = fabs(a - b) / (1.0 + fabs(a));
                if (d > max_err) max_err = d;
            }
        if (getenv("FTI_TEST_VERBOSE") || max_err > 1e-4)
            fprintf(stderr, "    %s: prompt batch vs token by token: max rel err %g\n",
                    fti_ggml_type_name(types[ti]), max_err);
        CHECK(max_err <= 1e-4);
        fti_session_free(ss[2]);
        fti_test_close_sessions(e, ss, 2);
        fti_pool_free(pool);
    }
}

/* fti_session_eval_batch: B sessions at different positions advanced one token each in one step
 * give the logits fti_session_eval gives each alone, allocate nothing, and a session's result is
 * the same bits whether it shares the step with others or not, on 1 or 3 threads (quantized
 * weights). Tolerances: F32 1e-4 (summation order); Q8_0/Q4_0 1e-4: the attention is one
 * function for every path and the multi-row products give the one-row bits on the scalar and
 * AVX2 tables (0 there); the AVX-512 VNNI panels sum the integer dots' scales in another float
 * order (measured 9e-7; a 1-ulp difference could still move a later activation across an int8
 * rounding boundary: 0.1 allowed while the batched attention summed in its own order, when 0.04
 * was seen) -- the bit-identity checks are the strict ones. */
FTI_TEST(infer_eval_batch_matches_sessions) {
    static const uint32_t types[3] = {FTI_GGML_F32, FTI_GGML_Q8_0, FTI_GGML_Q4_0};
    static const double tol[3] = {1e-4, 1e-4, 1e-4};
    int ti;
    for (ti = 0; ti < 3; ti++) {
        fti_model_config cfg;
        float *params = NULL;
        const char *path = ti_model(&cfg, &params, types[ti], 0, "eb.gguf", 4.0f);
        fti_engine *e = NULL;
        fti_session *all[15], **ref = all, **bat = all + 5, **one = all + 10;
        fti_batch *bt = NULL;
        fti_pool *pool = fti_pool_create(3);
        fti_error err;
        size_t b, step, v, plen;
        double max_err = 0;
        int same = 1;
        REQUIRE(pool != NULL);
        REQUIRE(fti_test_open_sessions(path, NULL, &e, all, 15) == 0);
        for (b = 0; b < 5; b++) {
            int32_t prompt[10];
            for (plen = 0; plen < 2 + 2 * b; plen++)
                prompt[plen] = (int32_t)((b * 17 + plen * 5) % 95);
            CHECK_OK(fti_session_eval(ref[b], prompt, plen, NULL, &err));
            CHECK_OK(fti_session_eval(bat[b], prompt, plen, NULL, &err));
            CHECK_OK(fti_session_eval(one[b], prompt, plen, NULL, &err));
        }
        REQUIRE(fti_batch_create(e, 6, fti_session_n_ctx(bat[0]), &bt, &err) == FTI_OK);
        for (step = 0; step < 4; step++) {
            int32_t tok[5];
            long n_alloc;
            for (b = 0; b < 5; b++) {
                tok[b] = (int32_t)((step * 7 + b * 13) % 95);
                CHECK_OK(fti_session_eval(ref[b], &tok[b], 1, NULL, &err));
                CHECK_OK(fti_session_eval_batch(bt, &one[b], &tok[b], 1, NULL, &err));
            }
            fti_test_alloc_fail_at(1, 1);
            CHECK_OK(fti_session_eval_batch(bt, bat, tok, 5, step & 1 ? pool : NULL, &err));
            n_alloc = fti_test_alloc_count;
            fti_test_alloc_fail_at(0, 0);
            if (types[ti] != FTI_GGML_F32) CHECK_EQ_INT(n_alloc, 0);
            for (b = 0; b < 5; b++) {
                const float *a = fti_session_logits(ref[b]), *c = fti_session_logits(bat[b]);
                CHECK_EQ_INT(fti_session_pos(ref[b]), fti_session_pos(bat[b]));
                for (v = 0; v < 96; v++) {
                    double dd = fabs((double)a[v] - c[v]) / (1.0 + fabs((double)a[v]));
                    if (dd > max_err) max_err = dd;
                }
                if (memcmp(c, fti_session_logits(one[b]), 96 * sizeof(float)) != 0) same = 0;
            }
        }
        if (getenv("FTI_TEST_VERBOSE") || max_err > tol[ti])
            fprintf(stderr, "    %s: max rel err %g (tolerance %g)\n",
                    fti_ggml_type_name(types[ti]), max_err, tol[ti]);
        CHECK(max_err <= tol[ti]);
        if (types[ti] != FTI_GGML_F32) CHECK(same);
        { /* errors: repeated session, bad token, too many */
            fti_session *dup[2];
            int32_t t2[2] = {1, 2};
            dup[0] = bat[0];
            dup[1] = bat[0];
            CHECK(fti_session_eval_batch(bt, dup, t2, 2, NULL, &err) == FTI_ERR_INVALID);
            dup[1] = bat[1];
            t2[1] = 96;
            CHECK(fti_session_eval_batch(bt, dup, t2, 2, NULL, &err) == FTI_ERR_INVALID);
            CHECK(fti_session_eval_batch(bt, bat, t2, 7, NULL, &err) == FTI_ERR_INVALID);
        }
        fti_batch_free(bt);
        fti_test_close_sessions(e, all, 15);
        fti_pool_free(pool);
        free(params);
    }
}

FTI_TEST(infer_decode_same_bits_any_threads) {
    /* decode steps (T = 1: one parallel region per token; with 2 threads each takes one of the
     * 2 KV heads with its q/k/v rows and attention, with 3 or 4 the q/k/v rows and the heads'
     * attention are two phases) give the same bits on 1, 2, 3 and 4 threads, fixed or adaptive,
     * for f32 and q4_0 weights and an f32, f16 or q8 KV cache */
    static const uint32_t types[2] = {FTI_GGML_F32, FTI_GGML_Q4_0};
    int ti, kvi;
    for (ti = 0; ti < 2; ti++)
        for (kvi = 0; kvi < 3; kvi++) {
            fti_model_config cfg;
            float *params = NULL, *ref = NULL;
            const char *path =
                ti_model(&cfg, &params, types[ti], 0, ti ? "d4.gguf" : "d32.gguf", 4.0f);
            fti_engine *e = NULL;
            fti_error err;
            int32_t toks[24];
            size_t i, V = 96, run;
            REQUIRE(path != NULL);
            REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
            ref = (float *)malloc(24 * V * sizeof(float));
            REQUIRE(ref != NULL);
            for (i = 0; i < 24; i++) toks[i] = (int32_t)((i * 13 + 5) % 95);
            for (run = 0; run < 5; run++) { /* none, 2, 3, 4 fixed, 2 adaptive */
                fti_pool *pool = run ? fti_pool_create(run == 4 ? 2 : (int)run + 1) : NULL;
                fti_session *s = NULL;
                fti_session_opts so;
                memset(&so, 0, sizeof so);
                so.pool = pool;
                so.fixed_threads = run < 4;
                so.kv_type = kvi == 2 ? FTI_KV_Q8 : kvi ? FTI_KV_F16 : FTI_KV_F32;
                REQUIRE(fti_session_create(&s, e, &so, &err) == FTI_OK);
                CHECK_OK(fti_session_eval(s, toks, 4, NULL, &err));
                for (i = 4; i < 24; i++) {
                    CHECK_OK(fti_session_eval(s, toks + i, 1, NULL, &err));
                    if (run == 0) memcpy(ref + i * V, fti_session_logits(s), V * sizeof(float));
                    else CHECK(memcmp(ref + i * V, fti_session_logits(s), V * sizeof(float)) == 0);
                }
                fti_session_free(s);
                fti_pool_free(pool);
            }
            fti_engine_close(e);
            free(ref);
            free(params);
        }
}

/* Q4_0 and Q8_0 matrices repacked at load (the AVX2 table's decode forms,
 * fti_qpack_decode_rows) against the same file with opts.no_repack: a prompt batch gives the same
 * bits (the multi-row products read either form in the same order), decode steps stay within the
 * one-row kernels' rounding of each other, on 1 and 2 threads; a tied output (the embedding rows
 * stay readable after the mapped pages were let go) and a file that is not mapped but read into
 * memory work too. */
FTI_TEST(infer_repacked) {
    int tied;
    for (tied = 0; tied < 4; tied++) { /* (2, 3: Q8_0) */
        fti_model_config cfg;
        uint32_t mt = tied < 2 ? FTI_GGML_Q4_0 : FTI_GGML_Q8_0;
        fti_dtype dt = tied < 2 ? FTI_DTYPE_Q4_0 : FTI_DTYPE_Q8_0;
        const char *path = ti_model(&cfg, NULL, mt, tied % 2, "rp.gguf", 4.0f);
        fti_engine *e[2] = {NULL, NULL};
        fti_engine_opts eo;
        fti_error err;
        int32_t toks[20];
        size_t i, V = cfg.vocab_size, run;
        float *ref[2];
        REQUIRE(path != NULL);
        for (i = 0; i < 20; i++) toks[i] = (int32_t)((i * 11 + 7) % 95);
        memset(&eo, 0, sizeof eo);
        if (dt == FTI_DTYPE_Q8_0) { /* Q8_0 only when asked */
            REQUIRE(fti_engine_open(&e[0], path, NULL, &err) == FTI_OK);
            CHECK(e[0]->pk_rows == 0 && e[0]->pack_mem == NULL);
            fti_engine_close(e[0]);
            eo.repack_q8_0 = 1;
        }
        REQUIRE(fti_engine_open(&e[0], path, &eo, &err) == FTI_OK);
        eo.no_repack = 1;
        REQUIRE(fti_engine_open(&e[1], path, &eo, &err) == FTI_OK);
        CHECK(e[0]->pk_rows == fti_qpack_decode_rows(fti_engine_kernels(e[0]), dt));
        CHECK(e[1]->pk_rows == 0 && e[1]->pack_mem == NULL);
        { /* packed on a pool of 3 threads: the same bytes */
            fti_engine *e3 = NULL;
            fti_engine_opts po;
            size_t mi, rows, cols;
            memset(&po, 0, sizeof po);
            po.pool = fti_pool_create(3);
            po.repack_q8_0 = 1;
            REQUIRE(fti_engine_open(&e3, path, &po, &err) == FTI_OK);
            for (mi = 0; mi <= e3->L * 7; mi++) {
                const fti__eng_w *a = fti__engine_mat(e[0], mi, &rows, &cols);
                const fti__eng_w *b = fti__engine_mat(e3, mi, &rows, &cols);
                CHECK((a->pk == NULL) == (b->pk == NULL));
                if (a->pk && b->pk)
                    CHECK(memcmp(a->pk, b->pk, fti_qpack_bytes(fti_engine_kernels(e3), a->type,
                                                                rows, cols)) == 0);
            }
            fti_engine_close(e3);
            fti_pool_free(po.pool);
        }
        { /* a batch decoder, even of one row, reads the engine's packed form (the mapped pages
             were let go) and copies no decode form the engine did not make (no_repack) */
            fti_batch *bd = NULL;
            REQUIRE(fti_batch_create(e[0], 1, 16, &bd, &err) == FTI_OK);
            CHECK(bd->packed && bd->packed[3] == e[0]->layers[0].o.pk && bd->pack_mem == NULL);
            fti_batch_free(bd);
            REQUIRE(fti_batch_create(e[1], 3, 16, &bd, &err) == FTI_OK);
            if (e[0]->pk_rows) CHECK(bd->pack_mem == NULL);
            fti_batch_free(bd);
        }
        for (run = 0; run < 2; run++) { /* no pool, then 2 threads */
            fti_pool *pool = run ? fti_pool_create(2) : NULL;
            int w;
            for (w = 0; w < 2; w++) {
                fti_session *s = NULL;
                fti_session_opts so;
                memset(&so, 0, sizeof so);
                so.pool = pool;
                so.fixed_threads = 1;
                ref[w] = (float *)malloc(20 * V * sizeof(float));
                REQUIRE(ref[w] != NULL);
                REQUIRE(fti_session_create(&s, e[w], &so, &err) == FTI_OK);
                CHECK_OK(fti_session_eval(s, toks, 8, ref[w], &err)); /* a prompt batch */
                for (i = 8; i < 20; i++) {                            /* decode steps */
                    CHECK_OK(fti_session_eval(s, toks + i, 1, NULL, &err));
                    memcpy(ref[w] + i * V, fti_session_logits(s), V * sizeof(float));
                }
                fti_session_free(s);
            }
            CHECK(memcmp(ref[0], ref[1], 8 * V * sizeof(float)) == 0);
            CHECK(ti_max_rel(ref[0] + 8 * V, ref[1] + 8 * V, 12 * V) < 1e-4);
            free(ref[0]);
            free(ref[1]);
            fti_pool_free(pool);
        }
        fti_engine_close(e[0]);
        fti_engine_close(e[1]);
    }
    { /* fti_gguf_drop: only a mapped file's pages, only inside the file; data stays readable */
        fti_gguf *g = NULL;
        fti_error err;
        fti_map m;
        const char *path = ti_model_write(NULL, FTI_GGML_Q4_0, "rp.gguf");
        unsigned char *copy;
        const unsigned char *d;
        size_t n;
        REQUIRE(path != NULL);
        REQUIRE(fti_gguf_open(&g, path, NULL, &err) == FTI_OK);
        d = (const unsigned char *)fti_gguf_file_data(g);
        n = fti_gguf_file_size(g);
        copy = (unsigned char *)malloc(n);
        REQUIRE(copy != NULL);
        memcpy(copy, d, n);
#if !defined(FTI_NO_MMAP) && defined(MADV_DONTNEED)
        CHECK(fti_gguf_drop(g, d, n) == 1);
        CHECK(fti_gguf_drop(g, d + 1, 0) == 1);
#endif
        CHECK(fti_gguf_drop(g, copy, 1) == 0); /* not in the file */
        CHECK(fti_gguf_drop(g, NULL, 0) == 0);
        CHECK(fti_gguf_drop(NULL, d, 1) == 0);
        CHECK(memcmp(copy, d, n) == 0);
        fti_gguf_close(g);
        REQUIRE(fti_gguf_open_memory(&g, copy, n, "mem", NULL, &err) == FTI_OK);
        CHECK(fti_gguf_drop(g, copy, n) == 0); /* caller memory: never */
        fti_gguf_close(g);
        memset(&m, 0, sizeof m);
        CHECK(fti_map_drop(&m, 0, 1) == 0);
        free(copy);
    }
}

FTI_TEST(infer_kv_groups_same_bits) {
    /* the KV cache laid out in one kv head group (no pool, 3 or 4 threads) or one per decode
     * thread (2 threads: each of the 2 KV heads its own memory) gives the same bits for a long
     * prompt (its last batch past 160 positions: attention through the per-head GEMMs, which
     * read the cache by group rows) and the decode steps after it, for f32 and q4_0 weights and
     * an f32, f16 or q8 cache */
    static const uint32_t types[2] = {FTI_GGML_F32, FTI_GGML_Q4_0};
    int ti, kvi;
    for (ti = 0; ti < 2; ti++)
        for (kvi = 0; kvi < 3; kvi++) {
            fti_test_model_opts mo;
            float *ref = NULL;
            const char *path;
            fti_engine *e = NULL;
            fti_error err;
            int32_t toks[178];
            size_t i, V = 96, run, n_ref = 0, k;
            memset(&mo, 0, sizeof mo);
            mo.matrix_type = types[ti];
            mo.context_len = 192;
            mo.seed = 5;
            mo.scale = 3.0f;
            mo.vocab = FTI_TEST_VOCAB_BYTES;
            path = fti_test_model(ti ? "g4.gguf" : "g32.gguf", &mo, NULL, NULL);
            REQUIRE(path != NULL);
            REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
            ref = (float *)malloc(9 * V * sizeof(float));
            REQUIRE(ref != NULL);
            for (i = 0; i < 178; i++) toks[i] = (int32_t)((i * 29 + 7) % 95);
            for (run = 0; run < 4; run++) { /* none, 2, 3, 4 threads */
                fti_pool *pool = run ? fti_pool_create((int)run + 1) : NULL;
                fti_session *s = NULL;
                fti_session_opts so;
                memset(&so, 0, sizeof so);
                so.pool = pool;
                so.n_ctx = 192;
                so.fixed_threads = 1;
                so.kv_type = kvi == 2 ? FTI_KV_Q8 : kvi ? FTI_KV_F16 : FTI_KV_F32;
                REQUIRE(fti_session_create(&s, e, &so, &err) == FTI_OK);
                CHECK_OK(fti_session_eval(s, toks, 170, NULL, &err));
                for (k = 0; k < 9; k++) {
                    if (k) CHECK_OK(fti_session_eval(s, toks + 169 + k, 1, NULL, &err));
                    if (run == 0) memcpy(ref + k * V, fti_session_logits(s), V * sizeof(float));
                    else CHECK(memcmp(ref + k * V, fti_session_logits(s), V * sizeof(float)) == 0);
                    n_ref++;
                }
                fti_session_free(s);
                fti_pool_free(pool);
            }
            CHECK(n_ref == 36);
            fti_engine_close(e);
            free(ref);
        }
}

/* fti_session_copy: a session that continues where another is (KV rows, position, logits)
 * decodes the same bits as the original and as a session that evaluated the whole prompt, for
 * f32, f16 and q8 caches, with no pool and with a 2-thread pool (2 kv head groups); into a
 * session that held more positions too; sessions of another context are refused, unchanged. */
FTI_TEST(infer_session_copy) {
    fti_test_model_opts mo;
    const char *path;
    fti_engine *e = NULL;
    fti_error err;
    int32_t toks[60];
    size_t i, k, V = 96;
    int kvi, run;
    memset(&mo, 0, sizeof mo);
    mo.context_len = 64;
    mo.seed = 9;
    mo.scale = 3.0f;
    mo.vocab = FTI_TEST_VOCAB_BYTES;
    path = fti_test_model("copy.gguf", &mo, NULL, NULL);
    REQUIRE(path != NULL);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    for (i = 0; i < 60; i++) toks[i] = (int32_t)((i * 31 + 11) % 95);
    for (run = 0; run < 2; run++)
        for (kvi = 0; kvi < 3; kvi++) {
            fti_pool *pool = run ? fti_pool_create(2) : NULL;
            fti_session *a = NULL, *b = NULL, *c = NULL, *d = NULL;
            fti_session_opts so;
            memset(&so, 0, sizeof so);
            so.pool = pool;
            so.n_ctx = 64;
            so.fixed_threads = 1;
            so.kv_type = kvi == 2 ? FTI_KV_Q8 : kvi ? FTI_KV_F16 : FTI_KV_F32;
            REQUIRE(fti_session_create(&a, e, &so, &err) == FTI_OK);
            REQUIRE(fti_session_create(&b, e, &so, &err) == FTI_OK);
            REQUIRE(fti_session_create(&c, e, &so, &err) == FTI_OK);
            CHECK_OK(fti_session_eval(a, toks, 40, NULL, &err));
            CHECK_OK(fti_session_eval(b, toks + 5, 50, NULL, &err)); /* more, other positions */
            CHECK_OK(fti_session_copy(b, a, &err));
            CHECK_EQ_INT(fti_session_pos(b), 40);
            CHECK(memcmp(fti_session_logits(a), fti_session_logits(b), V * sizeof(float)) == 0);
            CHECK_OK(fti_session_eval(c, toks, 40, NULL, &err));
            for (k = 0; k < 6; k++) {
                CHECK_OK(fti_session_eval(a, toks + 40 + k, 1, NULL, &err));
                CHECK_OK(fti_session_eval(b, toks + 40 + k, 1, NULL, &err));
                CHECK_OK(fti_session_eval(c, toks + 40 + k, 1, NULL, &err));
                CHECK(memcmp(fti_session_logits(a), fti_session_logits(b), V * sizeof(float)) ==
                      0);
                CHECK(memcmp(fti_session_logits(c), fti_session_logits(b), V * sizeof(float)) ==
                      0);
            }
            so.n_ctx = 48;
            REQUIRE(fti_session_create(&d, e, &so, &err) == FTI_OK);
            CHECK(fti_session_copy(d, a, &err) == FTI_ERR_MISMATCH);
            CHECK(strstr(err.msg, "context 48 and 64") != NULL);
            CHECK_EQ_INT(fti_session_pos(d), 0);
            CHECK(fti_session_copy(NULL, a, NULL) == FTI_ERR_INVALID);
            CHECK_OK(fti_session_copy(a, a, NULL));
            fti_session_free(a);
            fti_session_free(b);
            fti_session_free(c);
            fti_session_free(d);
            fti_pool_free(pool);
        }
    fti_engine_close(e);
}

/* Runs cmd through the shell; its stdout (up to cap - 1 bytes) in out. Returns the exit code. */
static int ti_run(const char *cmd, char *out, size_t cap) {
    FILE *f = popen(cmd, "r");
    size_t n = 0, m;
    int st;
    if (!f) return -1;
    while (n + 1 < cap && (m = fread(out + n, 1, cap - 1 - n, f)) > 0) n += m;
    out[n] = 0;
    st = pclose(f);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A model with a byte-level vocabulary (all 256 bytes: any text encodes) of a tokenizer
 * trained on a line of text; random weights (seed 3, twice the init); context n_ctx. Returns its
 * path. */
static const char *ti_model_bytes_ctx(const char *file, uint32_t n_ctx) {
    static const char text[] = "ab cd ef ab cd ef the cat sat on the mat\n\nxy z";
    const char *path = fti_test_tmp(file);
    fti_bpe_train_opts bo;
    fti_bpe_trainer *t = NULL;
    fti_tokenizer *tok = NULL;
    fti_tokenizer_gguf tg;
    fti_gguf_tokenizer_meta m;
    fti_model_config cfg;
    fti_error err;
    float *params = NULL;
    size_t i, n;
    int ok = 0;
    memset(&bo, 0, sizeof bo);
    bo.vocab_size = 300;
    if (fti_bpe_trainer_create(&bo, &t) != FTI_OK) return NULL;
    if (fti_bpe_trainer_add(t, text, sizeof text - 1) != FTI_OK ||
        fti_bpe_trainer_train(t, &tok, &err) != FTI_OK) {
        fti_bpe_trainer_free(t);
        return NULL;
    }
    fti_bpe_trainer_free(t);
    if (fti_tokenizer_gguf_make(tok, &tg) == FTI_OK) {
        fti_gguf_tokenizer_meta_from(&m, &tg, 1);
        memset(&cfg, 0, sizeof cfg);
        cfg.vocab_size = (uint32_t)tg.n_tokens;
        cfg.dim = 32;
        cfg.n_layers = 1;
        cfg.n_heads = 2;
        cfg.hidden_dim = 64;
        cfg.context_len = n_ctx;
        if (fti_model_config_resolve(&cfg, &err) == FTI_OK) {
            n = fti_model_n_params(&cfg);
            params = (float *)malloc(n * sizeof(float));
            if (params) {
                fti_model_init_params(&cfg, params, 3);
                for (i = 0; i < n; i++) params[i] *= 2.0f;
                ok = fti_gguf_write_llama(path, &cfg, params, &m, NULL, NULL, &err) == FTI_OK;
            }
        }
        fti_tokenizer_gguf_free(&tg);
    }
    free(params);
    fti_tokenizer_free(tok);
    return ok ? path : NULL;
}

static const char *ti_model_bytes(const char *file) { return ti_model_bytes_ctx(file, 32); }

/* A file whose weights hold NaN (damage the reader does not scan for): fti-infer's error names
 * the file and the likely cause (it said only "generate: logits are all NaN"). */
FTI_TEST(infer_cli_nan_weights_message) {
    const char *prog = "build/fti-infer", *path = ti_model_bytes("nan.gguf");
    char cmd[1200], out[1024];
    fti_gguf *g = NULL;
    fti_error err;
    size_t off = 0, n = 0;
    FILE *f;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(path != NULL);
    REQUIRE(fti_gguf_open(&g, path, NULL, &err) == FTI_OK);
    {
        const fti_gguf_tensor *t = fti_gguf_find_tensor(g, "output_norm.weight");
        REQUIRE(t != NULL);
        off = fti_gguf_data_offset(g) + (size_t)t->offset;
        n = t->n_bytes;
    }
    fti_gguf_close(g);
    f = fopen(path, "r+b");
    REQUIRE(f != NULL);
    REQUIRE(fseek(f, (long)off, SEEK_SET) == 0);
    while (n--) fputc(0xff, f); /* 0xffffffff: a NaN */
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s --model '%s' --threads 1 --no-rag -n 4 --prompt ab 2>&1", prog,
             path);
    CHECK_EQ_INT(ti_run(cmd, out, sizeof out), 1);
    CHECK(strstr(out, "nan.gguf: generate: logits are all NaN: NaN or infinite weights in the "
                      "file?\n") != NULL);
}

/* A model whose context is longer than 4096 (a llama.cpp Llama 3.1 file says 131072) runs in
 * 4096 unless --ctx asks for more: its whole context was a KV cache per sequence (1M positions
 * here: 256 MB touched for RoPE tables alone, 16 GB of cache for an 8B model at 131072). */
FTI_TEST(infer_cli_long_context_default) {
    const char *prog = "build/fti-infer", *path = ti_model_bytes_ctx("long.gguf", 1u << 20);
    char cmd[1200], out[512];
    const char *opt = "--threads 1 --no-rag --temp 0 -n 2 --prompt ab --stats 2>&1";
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(path != NULL);
    snprintf(cmd, sizeof cmd, "%s --model '%s' %s", prog, path, opt);
    CHECK_EQ_INT(ti_run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "fti-infer: context 4096 of the model's 1048576 (--ctx N for more)\n"));
    snprintf(cmd, sizeof cmd, "%s --model '%s' --ctx 8192 %s", prog, path, opt);
    CHECK_EQ_INT(ti_run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "context 4096") == NULL);
}

/* fti-serve's numbers are checked (atoi took "abc" as port 0, "1.5" threads as 1) and a --ctx
 * past the model's context is said, not dropped in silence. */
FTI_TEST(infer_cli_serve_numbers_and_ctx) {
    static const char *const bad[][2] = {
        {"--port abc", "--port takes a whole number from 0 to 65535, not 'abc'"},
        {"--port 70000", "--port takes a whole number from 0 to 65535"},
        {"--threads 1.5", "--threads takes a whole number"},
        {"--ctx -4", "--ctx takes a whole number"},
        {"--max-batch 2x", "--max-batch takes a whole number"},
        {"--rag-k", "--rag-k needs a value"}};
    const char *prog = "build/fti-serve", *path = ti_model_bytes("serve.gguf");
    char cmd[1200], out[1024];
    size_t k;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(path != NULL);
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(cmd, sizeof cmd, "%s --echo %s 2>&1", prog, bad[k][0]);
        CHECK_EQ_INT(ti_run(cmd, out, sizeof out), 2);
        if (!strstr(out, bad[k][1])) fprintf(stderr, "    %s: %s\n", bad[k][0], out);
        CHECK(strstr(out, bad[k][1]) != NULL);
    }
    /* (an address it cannot bind: it stops at once, after loading the model) */
    snprintf(cmd, sizeof cmd,
             "%s --model '%s' --ctx 999999 --threads 1 --host 256.0.0.1 --port 1 2>&1", prog,
             path);
    CHECK(ti_run(cmd, out, sizeof out) != 0);
    CHECK(strstr(out, "--ctx 999999 is more than serve.gguf's context: sequences get its") !=
          NULL);
}

#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
#include "test_util_server.h"
/* POSTs json to path on 127.0.0.1:port and returns the whole answer (Connection: close) in out. */
static int ti_post(int port, const char *path, const char *json, char *out, size_t cap) {
    char head[256];
    size_t n = 0;
    ssize_t m;
    int fd = tu_connect(port);
    if (fd < 0) return 0;
    snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %lu\r\n"
             "Connection: close\r\n\r\n", path, (unsigned long)strlen(json));
    if (send(fd, head, strlen(head), MSG_NOSIGNAL) < 0 ||
        send(fd, json, strlen(json), MSG_NOSIGNAL) < 0) {
        close(fd);
        return 0;
    }
    while (n + 1 < cap && (m = recv(fd, out + n, cap - 1 - n, 0)) > 0) n += (size_t)m;
    out[n] = 0;
    close(fd);
    return n > 0;
}

/* GETs path on 127.0.0.1:port; the whole answer (Connection: close) in out. */
FTI__UNUSED static int ti_get(int port, const char *path, char *out, size_t cap) {
    char head[256];
    size_t n = 0;
    ssize_t m;
    int fd = tu_connect(port);
    if (fd < 0) return 0;
    snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             path);
    if (send(fd, head, strlen(head), MSG_NOSIGNAL) < 0) {
        close(fd);
        return 0;
    }
    while (n + 1 < cap && (m = recv(fd, out + n, cap - 1 - n, 0)) > 0) n += (size_t)m;
    out[n] = 0;
    close(fd);
    return n > 0;
}

/* Starts build/fti-serve ARGS (a shell fragment: options and redirections) on an ephemeral
 * port in the background, its pid into pidf; returns its port once it listens, 0 if it did not
 * within 10 s. */
static int ti_serve_spawn(const char *args, const char *pf, const char *pidf) {
    char cmd[6400];
    int port = 0, i;
    remove(pf);
    snprintf(cmd, sizeof cmd, "build/fti-serve --port 0 --port-file '%s' %s & echo $! > '%s'", pf,
             args, pidf);
    if (system(cmd) != 0) return 0;
    for (i = 0; i < 200 && port <= 0; i++) {
        FILE *f = fopen(pf, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1) port = 0;
            fclose(f);
        }
        if (port <= 0) usleep(50000);
    }
    return port > 0 ? port : 0;
}

/* fti-serve on model path (threads, an ephemeral port) with its request log to log, in the
 * background, its pid into the file pidf; returns its port once it listens, 0 if it did not
 * within 10 s. */
static int ti_serve_start_log(const char *path, int threads, const char *pf, const char *pidf,
                              const char *log) {
    char args[4400];
    snprintf(args, sizeof args, "--model '%s' --threads %d --quiet --log '%s' > /dev/null 2>&1",
             path, threads, log);
    return ti_serve_spawn(args, pf, pidf);
}

static int ti_serve_start(const char *path, int threads, const char *pf, const char *pidf) {
    return ti_serve_start_log(path, threads, pf, pidf, "/dev/null");
}

/* Stops the server ti_serve_start started (SIGTERM to the pid in pidf). */
static void ti_serve_stop(const char *pidf) {
    char pid[32];
    FILE *f = fopen(pidf, "r");
    if (f && fgets(pid, sizeof pid, f) && atoi(pid) > 0) kill(atoi(pid), SIGTERM);
    if (f) fclose(f);
}
#endif

/* fti-serve refuses a prompt longer than the model's context with OpenAI's 400
 * context_length_exceeded, completions and chat alike (it cut the prompt from the left in
 * silence, though docs/serving.md promised the error); a prompt that fits is answered. */
FTI_TEST(infer_cli_serve_prompt_too_long) {
#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
    const char *prog = "build/fti-serve", *path = ti_model_bytes("long.gguf");
    const char *pf = fti_test_tmp("long.port"), *pidf = fti_test_tmp("long.pid");
    char out[4096], json[1024];
    int port;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(path != NULL);
    port = ti_serve_start(path, 1, pf, pidf);
    CHECK(port > 0);
    if (port > 0) {
        snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":4}",
                 "the cat sat on the mat the cat sat on the mat the cat sat on the mat the cat "
                 "sat on the mat the cat sat on the mat the cat sat on the mat");
        CHECK(ti_post(port, "/v1/completions", json, out, sizeof out));
        CHECK(strstr(out, " 400 ") != NULL && strstr(out, "context_length_exceeded") != NULL);
        CHECK(strstr(out, "maximum context length is 32 tokens") != NULL);
        snprintf(json, sizeof json, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
                 "\"max_tokens\":4}", "the cat sat on the mat the cat sat on the mat the cat "
                 "sat on the mat the cat sat on the mat the cat sat on the mat");
        CHECK(ti_post(port, "/v1/chat/completions", json, out, sizeof out));
        CHECK(strstr(out, " 400 ") != NULL && strstr(out, "context_length_exceeded") != NULL);
        CHECK(ti_post(port, "/v1/completions", "{\"prompt\":\"the cat\",\"max_tokens\":4}", out,
                      sizeof out));
        CHECK(strstr(out, " 200 ") != NULL && strstr(out, "\"choices\"") != NULL);
    }
    ti_serve_stop(pidf);
#endif
}

#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
/* The choices' texts of a completions answer (HTTP head and body) in order of index, joined
 * with '|' into out; their number, or -1. */
static int ti_choices(const char *answer, char *out, size_t cap) {
    const char *body = strstr(answer, "\r\n\r\n");
    fti_json_doc *doc = NULL;
    const fti_json *c;
    int n = 0, want;
    out[0] = 0;
    if (!body || fti_json_parse(body + 4, strlen(body + 4), NULL, &doc, NULL, NULL) != FTI_OK)
        return -1;
    c = fti_json_get(fti_json_root(doc), "choices");
    for (want = 0; c && c->type == FTI_JSON_ARRAY; want++) {
        const fti_json *ch;
        for (ch = c->child; ch && fti_json_get_int(ch, "index", -1) != want; ch = ch->next) {}
        if (!ch) break;
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", want ? "|" : "",
                 fti_json_get_str(ch, "text", "?"));
        n++;
    }
    fti_json_free(doc);
    return n;
}
#endif

/* fti-serve's n > 1 on a real model: choices 1..n-1 continue from choice 0's evaluated prompt
 * (fti_session_copy, not a prefill each), and choice i is still, token for token, the n = 1
 * answer with seed + i (completions and best_of's candidates alike). */
FTI_TEST(infer_cli_serve_n_shares_prompt) {
#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
    const char *prog = "build/fti-serve", *path = ti_model_bytes_ctx("n.gguf", 64);
    const char *pf = fti_test_tmp("n.port"), *pidf = fti_test_tmp("n.pid");
    char out[16384], json[512], many[1024], one[256], joined[1024];
    int port, i;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(path != NULL);
    port = ti_serve_start(path, 2, pf, pidf);
    CHECK(port > 0);
    if (port > 0) {
        static const char prompt[] = "the cat sat on the mat ab cd";
        snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":10,\"n\":4,"
                 "\"seed\":7,\"temperature\":1.2}", prompt);
        CHECK(ti_post(port, "/v1/completions", json, out, sizeof out));
        CHECK_EQ_INT(ti_choices(out, many, sizeof many), 4);
        joined[0] = 0;
        for (i = 0; i < 4; i++) {
            snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":10,\"seed\":%d,"
                     "\"temperature\":1.2}", prompt, 7 + i);
            CHECK(ti_post(port, "/v1/completions", json, out, sizeof out));
            CHECK_EQ_INT(ti_choices(out, one, sizeof one), 1);
            snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s",
                     i ? "|" : "", one);
        }
        if (strcmp(many, joined) != 0)
            fprintf(stderr, "    n=4: %s\n    n=1: %s\n", many, joined);
        CHECK_EQ_STR(many, joined);
        CHECK(strlen(joined) > 10); /* something was generated */
    }
    ti_serve_stop(pidf);
#endif
}

#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
/* The body of an HTTP answer parsed (NULL if it is not JSON). */
static fti_json_doc *ti_answer_json(const char *answer) {
    const char *body = strstr(answer, "\r\n\r\n");
    fti_json_doc *doc = NULL;
    if (!body || fti_json_parse(body + 4, strlen(body + 4), NULL, &doc, NULL, NULL) != FTI_OK)
        return NULL;
    return doc;
}

/* Checks choice ch's echoed logprobs against want[1..n) (fti_session_token_logprobs of the same
 * ids): n tokens, the first null, each within 1e-4 (the server's log-sum-exp is the kernels'
 * float exp), with k alternatives of which the best is at least the token's. */
static void ti_check_scored(const fti_json *ch, const double *want, size_t n, size_t k) {
    const fti_json *lp = fti_json_get(ch, "logprobs");
    const fti_json *tl = fti_json_get(lp, "token_logprobs");
    const fti_json *tops = fti_json_get(lp, "top_logprobs");
    size_t i;
    REQUIRE(tl && tops && tl->len == n && tops->len == n);
    CHECK(fti_json_at(tl, 0)->type == FTI_JSON_NULL && fti_json_at(tops, 0)->type == FTI_JSON_NULL);
    for (i = 1; i < n; i++) {
        const fti_json *t = fti_json_at(tops, i), *a;
        double best = -1e30, got = fti_json_at(tl, i)->num;
        CHECK(fabs(got - want[i]) < 1e-4);
        if (fabs(got - want[i]) >= 1e-4)
            fprintf(stderr, "    token %lu: %.7f, the session's %.7f\n", (unsigned long)i, got,
                    want[i]);
        CHECK_EQ_INT((int64_t)t->len, (int64_t)k);
        for (a = t->child; a; a = a->next) best = a->num > best ? a->num : best;
        CHECK(best >= got - 1e-4);
    }
}
#endif

/* fti-serve scores prompts as evaluation harnesses ask (lm-eval's local-completions: a batch of
 * token-id prompts, echo, logprobs, max_tokens 0 or 1): each echoed prompt token's
 * log-probability is the model's, what fti_session_token_logprobs gives for the same ids (the
 * first token null); a text prompt is scored as its own tokens (after a BOS when the model adds
 * one); the generated token's log-probability is the one the request without echo reports; ids
 * outside the vocabulary and id prompts past the context are 400s. */
FTI_TEST(infer_cli_serve_scores_prompts) {
#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
    const char *prog = "build/fti-serve", *path = ti_model_bytes_ctx("score.gguf", 64);
    const char *pf = fti_test_tmp("score.port"), *pidf = fti_test_tmp("score.pid");
    static const char *const texts[2] = {"the cat sat on the mat", "ab cd ef xy"};
    char out[65536], json[4096];
    int32_t ids[2][64];
    size_t n_ids[2], i, k, n, V;
    double want[2][64];
    fti_engine *e = NULL;
    fti_tokenizer *tok = NULL;
    fti_session *s = NULL;
    fti_session_opts so;
    fti_error err;
    fti_json_doc *doc, *d2;
    const fti_json *chs, *u;
    int port, bos;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(path != NULL);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    REQUIRE(fti_engine_tokenizer(e, &tok, &err) == FTI_OK);
    V = fti_engine_config(e)->vocab_size;
    bos = fti_engine_add_bos(e);
    memset(&so, 0, sizeof so);
    so.kv_type = FTI_KV_F16; /* fti-serve's default */
    REQUIRE(fti_session_create(&s, e, &so, &err) == FTI_OK);
    for (k = 0; k < 2; k++) {
        fti_tokens t;
        memset(&t, 0, sizeof t);
        REQUIRE(fti_tokenizer_encode(tok, texts[k], strlen(texts[k]), 0, &t) == FTI_OK);
        REQUIRE(t.len >= 3 && t.len < 40);
        for (i = 0; i < t.len; i++) ids[k][i] = (int32_t)t.ids[i];
        n_ids[k] = t.len;
        fti_tokens_free(&t);
        REQUIRE(fti_session_token_logprobs(s, ids[k], n_ids[k], want[k], &err) == FTI_OK);
    }
    port = ti_serve_start(path, 2, pf, pidf);
    CHECK(port > 0);
    if (port > 0) {
        /* a batch of two id prompts, scored only */
        n = (size_t)snprintf(json, sizeof json, "{\"prompt\":[");
        for (k = 0; k < 2; k++) {
            n += (size_t)snprintf(json + n, sizeof json - n, "%s[", k ? "," : "");
            for (i = 0; i < n_ids[k]; i++)
                n += (size_t)snprintf(json + n, sizeof json - n, "%s%ld", i ? "," : "",
                                      (long)ids[k][i]);
            n += (size_t)snprintf(json + n, sizeof json - n, "]");
        }
        snprintf(json + n, sizeof json - n, "],\"max_tokens\":0,\"echo\":true,\"logprobs\":2,"
                 "\"temperature\":0,\"seed\":1234}");
        CHECK(ti_post(port, "/v1/completions", json, out, sizeof out));
        doc = ti_answer_json(out);
        REQUIRE(doc != NULL);
        chs = fti_json_get(fti_json_root(doc), "choices");
        REQUIRE(chs && chs->len == 2);
        for (k = 0; k < 2; k++) {
            CHECK_EQ_INT(fti_json_get_int(fti_json_at(chs, k), "index", -1), (int64_t)k);
            CHECK_EQ_STR(fti_json_get_str(fti_json_at(chs, k), "text", "?"), texts[k]);
            ti_check_scored(fti_json_at(chs, k), want[k], n_ids[k], 2);
        }
        u = fti_json_get(fti_json_root(doc), "usage");
        CHECK_EQ_INT(fti_json_get_int(u, "prompt_tokens", 0), (int64_t)(n_ids[0] + n_ids[1]));
        CHECK_EQ_INT(fti_json_get_int(u, "completion_tokens", -1), 0);
        fti_json_free(doc);

        /* the text prompt: its own tokens, after the BOS the model adds (if it does) */
        if (bos) {
            int32_t b[65];
            b[0] = fti_engine_bos(e);
            memcpy(b + 1, ids[0], n_ids[0] * sizeof(int32_t));
            REQUIRE(fti_session_token_logprobs(s, b, n_ids[0] + 1, want[1], &err) == FTI_OK);
        } else {
            memcpy(want[1], want[0], sizeof want[0]);
        }
        snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":0,\"echo\":true,"
                 "\"logprobs\":1}", texts[0]);
        CHECK(ti_post(port, "/v1/completions", json, out, sizeof out));
        doc = ti_answer_json(out);
        REQUIRE(doc != NULL);
        chs = fti_json_get(fti_json_root(doc), "choices");
        REQUIRE(chs && chs->len == 1);
        ti_check_scored(fti_json_at(chs, 0), want[1], n_ids[0] + (bos ? 1 : 0), 1);
        CHECK_EQ_STR(fti_json_get_str(fti_json_at(chs, 0), "text", "?"), texts[0]);
        fti_json_free(doc);

        /* generated tokens: the log-probabilities of the request without echo */
        n = (size_t)snprintf(json, sizeof json, "{\"prompt\":[");
        for (i = 0; i < n_ids[0]; i++)
            n += (size_t)snprintf(json + n, sizeof json - n, "%s%ld", i ? "," : "",
                                  (long)ids[0][i]);
        snprintf(json + n, sizeof json - n, "],\"max_tokens\":3,\"temperature\":0,\"logprobs\":1}");
        CHECK(ti_post(port, "/v1/completions", json, out, sizeof out));
        d2 = ti_answer_json(out);
        REQUIRE(d2 != NULL);
        snprintf(json + n, sizeof json - n, "],\"max_tokens\":3,\"temperature\":0,\"logprobs\":1,"
                 "\"echo\":true}");
        CHECK(ti_post(port, "/v1/completions", json, out, sizeof out));
        doc = ti_answer_json(out);
        REQUIRE(doc != NULL);
        {
            const fti_json *a = fti_json_get(fti_json_get(fti_json_at(fti_json_get(
                                                 fti_json_root(d2), "choices"), 0), "logprobs"),
                                             "token_logprobs");
            const fti_json *b = fti_json_get(fti_json_get(fti_json_at(fti_json_get(
                                                 fti_json_root(doc), "choices"), 0), "logprobs"),
                                             "token_logprobs");
            REQUIRE(a && b && a->len == 3 && b->len == n_ids[0] + 3);
            for (i = 0; i < 3; i++)
                CHECK(fabs(fti_json_at(a, i)->num - fti_json_at(b, n_ids[0] + i)->num) < 1e-6);
            CHECK(fabs(fti_json_at(b, 1)->num - want[0][1]) < 1e-4);
        }
        fti_json_free(doc);
        fti_json_free(d2);

        /* /tokenize: the ids a client sends (add_special: the BOS a scored text gets) */
        snprintf(json, sizeof json, "{\"content\":\"%s\"}", texts[0]);
        CHECK(ti_post(port, "/tokenize", json, out, sizeof out));
        doc = ti_answer_json(out);
        REQUIRE(doc != NULL);
        u = fti_json_get(fti_json_root(doc), "tokens");
        REQUIRE(u && u->len == n_ids[0]);
        for (i = 0; i < n_ids[0]; i++) CHECK_EQ_INT(fti_json_at(u, i)->i, ids[0][i]);
        fti_json_free(doc);
        snprintf(json, sizeof json, "{\"content\":\"%s\",\"add_special\":true}", texts[0]);
        CHECK(ti_post(port, "/tokenize", json, out, sizeof out));
        doc = ti_answer_json(out);
        REQUIRE(doc != NULL);
        u = fti_json_get(fti_json_root(doc), "tokens");
        CHECK(u && u->len == n_ids[0] + (bos ? 1 : 0));
        fti_json_free(doc);
        n = (size_t)snprintf(json, sizeof json, "{\"tokens\":[");
        for (i = 0; i < n_ids[1]; i++)
            n += (size_t)snprintf(json + n, sizeof json - n, "%s%ld", i ? "," : "",
                                  (long)ids[1][i]);
        snprintf(json + n, sizeof json - n, "]}");
        CHECK(ti_post(port, "/detokenize", json, out, sizeof out));
        doc = ti_answer_json(out);
        REQUIRE(doc != NULL);
        CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "content", "?"), texts[1]);
        fti_json_free(doc);

        /* the refusals: an id past the vocabulary, an id prompt past the context */
        snprintf(json, sizeof json, "{\"prompt\":[[1,2],[3,%lu]],\"max_tokens\":0,\"echo\":true,"
                 "\"logprobs\":1}", (unsigned long)V);
        CHECK(ti_post(port, "/v1/completions", json, out, sizeof out));
        CHECK(strstr(out, " 400 ") != NULL);
        snprintf(json, sizeof json, "token id %lu (prompt 1, position 1) is not in this model's "
                 "vocabulary: its %lu tokens are ids 0 to %lu", (unsigned long)V,
                 (unsigned long)V, (unsigned long)V - 1);
        CHECK(strstr(out, json) != NULL);
        n = (size_t)snprintf(json, sizeof json, "{\"max_tokens\":1,\"prompt\":[1");
        for (i = 0; i < 64; i++) n += (size_t)snprintf(json + n, sizeof json - n, ",1");
        snprintf(json + n, sizeof json - n, "]}");
        CHECK(ti_post(port, "/v1/completions", json, out, sizeof out));
        CHECK(strstr(out, " 400 ") != NULL && strstr(out, "maximum context length is 64") != NULL);
        CHECK(strstr(out, "context_length_exceeded") != NULL);
    }
    ti_serve_stop(pidf);
    fti_session_free(s);
    fti_tokenizer_free(tok);
    fti_engine_close(e);
#endif
}

/* fti-infer reads text as the pipeline does: --perplexity scores a file's text normalised as
 * ingestion and fti-eval do (its last newline, CRLF, runs of spaces: the same figure as the
 * clean text), and a prompt from stdin (echo's line end) generates what --prompt does. */

/* A chat request's log line has the perplexity of its last user message (it was null, so drift
 * judged chat traffic by its token mix alone), the same figure a completion of that message
 * gets: the message is scored as a prompt of its own, not as the chat prompt's title. */
FTI_TEST(infer_cli_serve_chat_prompt_ppl) {
#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
    const char *prog = "build/fti-serve", *path = ti_model_bytes_ctx("chatppl.gguf", 128);
    const char *pf = fti_test_tmp("chatppl.port"), *pidf = fti_test_tmp("chatppl.pid");
    const char *log = fti_test_tmp("chatppl.jsonl");
    char out[16384];
    double ppl[2] = {-1, -1};
    long toks[2] = {-1, -1};
    int port, n = 0, tries;
    FILE *f;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(path != NULL);
    remove(log);
    port = ti_serve_start_log(path, 1, pf, pidf, log);
    REQUIRE(port > 0);
    CHECK(ti_post(port, "/v1/completions",
                  "{\"prompt\":\"the cat sat on the mat\",\"max_tokens\":2,\"seed\":1}", out,
                  sizeof out));
    CHECK(ti_post(port, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                  "{\"role\":\"user\",\"content\":\"hello there\"},{\"role\":\"assistant\","
                  "\"content\":\"hi\"},{\"role\":\"user\",\"content\":\"the cat sat on the mat\"}],"
                  "\"max_tokens\":2,\"seed\":1}", out, sizeof out));
    ti_serve_stop(pidf);
    for (tries = 0; tries < 100 && n < 2; tries++) { /* the log is complete once it has both */
        char line[8192];
        n = 0;
        f = fopen(log, "r");
        while (f && n < 2 && fgets(line, sizeof line, f)) {
            fti_json_doc *d = NULL;
            const fti_json *r = fti_json_parse(line, strlen(line), NULL, &d, NULL, NULL) ==
                                        FTI_OK
                                    ? fti_json_root(d)
                                    : NULL;
            if (r && !strcmp(fti_json_get_str(r, "type", ""), "request")) {
                ppl[n] = fti_json_get_num(r, "prompt_ppl", -1);
                toks[n] = (long)fti_json_get_int(r, "ppl_tokens", -1);
                n++;
            }
            fti_json_free(d);
        }
        if (f) fclose(f);
        if (n < 2) usleep(50000);
    }
    CHECK_EQ_INT(n, 2);
    CHECK(ppl[0] > 1);
    CHECK(ppl[1] > 1);
    CHECK_NEAR(ppl[1], ppl[0], 1e-3 * ppl[0], 0);
    CHECK(toks[0] > 1);
    CHECK_EQ_INT(toks[1], toks[0]);
#endif
}

/* fti-serve checks a registered model's file against its card's SHA-256 before serving it: a
 * damaged production model stops the start with a message naming the file and the way out
 * (rollback, --no-verify); an alias moved to a damaged model is not followed (the model before
 * is still served, said once). It served whatever bytes were there. */
#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS) && !defined(FTI_NO_TRAIN)
static void ti_flip_last_byte(const char *path) {
    FILE *f = fopen(path, "r+b");
    int c;
    if (!f) return;
    fseek(f, -1, SEEK_END);
    c = fgetc(f);
    fseek(f, -1, SEEK_END);
    fputc(c ^ 0x5A, f);
    fclose(f);
}
#endif

FTI_TEST(infer_cli_serve_verifies_model_file) {
#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS) && !defined(FTI_NO_TRAIN)
    const char *prog = "build/fti-serve";
    char home[1024], a[1024], b[1024], pf[1024], pidf[1024], errf[1024]; /* (4 tmp slots) */
    char ida[17], idb[17], cmd[6400], out[8192], want[64], *pathb;
    fti_registry_add_opts ao;
    fti_error err;
    int port, rc;
    void *text = NULL;
    size_t len = 0;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(ti_model_bytes_ctx("va.gguf", 64) && ti_model_bytes_ctx("vb.gguf", 65));
    snprintf(home, sizeof home, "%s", fti_test_tmp("vws"));
    snprintf(a, sizeof a, "%s", fti_test_tmp("va.gguf"));
    snprintf(b, sizeof b, "%s", fti_test_tmp("vb.gguf"));
    snprintf(pf, sizeof pf, "%s", fti_test_tmp("v.port"));
    snprintf(pidf, sizeof pidf, "%s", fti_test_tmp("v.pid"));
    snprintf(errf, sizeof errf, "%s", fti_test_tmp("v.err"));
    memset(&ao, 0, sizeof ao);
    ao.alias = "production";
    REQUIRE(fti_registry_add_file(home, a, &ao, ida, &err) == FTI_OK);
    REQUIRE(fti_registry_add_file(home, b, NULL, idb, &err) == FTI_OK);
    REQUIRE(strcmp(ida, idb) != 0);
    snprintf(cmd, sizeof cmd, "--home '%s' --threads 1 --reload-s 1 --log '%s/requests.jsonl' "
             "> /dev/null 2> '%s'", home, home, errf);
    port = ti_serve_spawn(cmd, pf, pidf);
    REQUIRE(port > 0);
    snprintf(want, sizeof want, "\"model\":\"%s\"", ida);
    CHECK(ti_post(port, "/v1/completions", "{\"prompt\":\"ab\",\"max_tokens\":1}", out,
                  sizeof out));
    CHECK(strstr(out, want) != NULL);
    /* /v1/models' created: the model file's time (it was 0) */
    CHECK(ti_get(port, "/v1/models", out, sizeof out));
    {
        const char *c = strstr(out, "\"created\":");
        CHECK(c != NULL && atoll(c + 10) > 1700000000LL);
    }
    /* B damaged, then promoted: the server stays on A */
    REQUIRE(fti_registry_verify(home, idb, NULL, &pathb, &err) == FTI_OK);
    ti_flip_last_byte(pathb);
    CHECK_EQ_INT(fti_registry_verify(home, idb, NULL, NULL, &err), FTI_ERR_CHECKSUM);
    CHECK(strstr(err.msg, pathb) != NULL);
    REQUIRE(fti_registry_promote(home, idb, "production", &err) == FTI_OK);
    usleep(2500000); /* two reload checks */
    CHECK(ti_post(port, "/v1/completions", "{\"prompt\":\"ab\",\"max_tokens\":1}", out,
                  sizeof out));
    CHECK(strstr(out, want) != NULL);
    /* B's file put back (a backup copied over it): followed at the next check */
    ti_flip_last_byte(pathb);
    usleep(2500000);
    snprintf(want, sizeof want, "\"model\":\"%s\"", idb);
    CHECK(ti_post(port, "/v1/completions", "{\"prompt\":\"ab\",\"max_tokens\":1}", out,
                  sizeof out));
    CHECK(strstr(out, want) != NULL);
    ti_flip_last_byte(pathb); /* damaged again, for the start below */
    ti_serve_stop(pidf);
    usleep(300000);
    REQUIRE(fti_file_read(errf, 1 << 20, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "is not served (still serving") != NULL);
    CHECK(strstr((const char *)text, "changed after registration") != NULL);
    fti_free(text);
    text = NULL;
    /* a start on the damaged production model is refused, naming the file and the way out */
    snprintf(cmd, sizeof cmd, "%s --home '%s' --port 0 --log - > /dev/null 2> '%s'", prog, home,
             errf);
    rc = system(cmd);
    CHECK(rc != 0);
    REQUIRE(fti_file_read(errf, 1 << 20, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, pathb) != NULL);
    CHECK(strstr((const char *)text, "rollback production") != NULL);
    CHECK(strstr((const char *)text, "--no-verify") != NULL);
    fti_free(text);
    fti_free(pathb);
#endif
}
FTI_TEST(infer_cli_reads_text_as_the_pipeline) {
    const char *prog = "build/fti-infer", *path = ti_model_bytes("cli.gguf");
    char clean[512], raw[512], cmd[2048], a[256], b[256];
    const char *opt = "--kv f32 --threads 1 --no-rag --temp 0 -n 6 2>/dev/null";
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(path != NULL);
    snprintf(clean, sizeof clean, "%s", fti_test_tmp("clean.txt"));
    snprintf(raw, sizeof raw, "%s", fti_test_tmp("raw.txt"));
    REQUIRE(fti_test_write_file(clean, "ab cd ef\n\nxy z", 14) == 0);
    REQUIRE(fti_test_write_file(raw, "ab  cd ef\r\n\r\n\r\nxy z \n", 22) == 0);
    snprintf(cmd, sizeof cmd, "%s --model '%s' --perplexity '%s' %s", prog, path, clean, opt);
    CHECK_EQ_INT(ti_run(cmd, a, sizeof a), 0);
    snprintf(cmd, sizeof cmd, "%s --model '%s' --perplexity '%s' %s", prog, path, raw, opt);
    CHECK_EQ_INT(ti_run(cmd, b, sizeof b), 0);
    CHECK(strncmp(a, "perplexity ", 11) == 0);
    CHECK_EQ_STR(a, b);
    snprintf(cmd, sizeof cmd, "%s --model '%s' --prompt 'ab c' --ignore-eos %s", prog, path, opt);
    CHECK_EQ_INT(ti_run(cmd, a, sizeof a), 0);
    snprintf(cmd, sizeof cmd, "echo 'ab c' | %s --model '%s' --ignore-eos %s", prog, path, opt);
    CHECK_EQ_INT(ti_run(cmd, b, sizeof b), 0);
    CHECK(a[0] != 0);
    CHECK_EQ_STR(a, b);
}

/* fti-tok on a damaged GGUF model: one message naming the file once, exit 1. */
FTI_TEST(infer_cli_tok_damaged_model_message) {
    const char *prog = "build/fti-tok", *path = fti_test_tmp("short.gguf");
    char cmd[1200], out[1024];
    const char *p;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(fti_test_write_file(path, "GGUF\3\0\0\0", 8) == 0);
    snprintf(cmd, sizeof cmd, "%s info --tokenizer '%s' 2>&1", prog, path);
    CHECK_EQ_INT(ti_run(cmd, out, sizeof out), 1);
    p = strstr(out, path);
    CHECK(p != NULL && strstr(p + strlen(path), path) == NULL);
    CHECK(strstr(out, "truncated") != NULL);
}

/* fti-infer refuses a 17th --stop (it was dropped in silence: generation ran past it). */
FTI_TEST(infer_cli_too_many_stops) {
    const char *prog = "build/fti-infer", *path = ti_model_bytes("stops.gguf");
    char cmd[2048], out[256];
    size_t i, n;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(path != NULL);
    n = (size_t)snprintf(cmd, sizeof cmd, "%s --model '%s' --prompt ab -n 2 --no-rag", prog, path);
    for (i = 0; i < 16; i++) n += (size_t)snprintf(cmd + n, sizeof cmd - n, " --stop s%lu",
                                                   (unsigned long)i);
    snprintf(cmd + n, sizeof cmd - n, " 2>/dev/null");
    CHECK_EQ_INT(ti_run(cmd, out, sizeof out), 0);
    snprintf(cmd + n, sizeof cmd - n, " --stop 'a' 2>&1");
    CHECK_EQ_INT(ti_run(cmd, out, sizeof out), 2);
    CHECK(strstr(out, "--stop") != NULL);
}

/* README's embedding example (tests/compile/readme_example.c, compiled in here as a function)
 * on a model of a 48-token context and a prompt longer than that: it asked for a prompt of
 * fti_session_n_ctx(s) - 60 tokens, which wraps below 60 (a budget of 2^64 - 12, whose
 * allocation failed: "prompt: out of memory"); now it generates at most half the context and
 * cuts the prompt to the rest. */
#define main fti_readme_example_main
#include "compile/readme_example.c"
#undef main
FTI_TEST(infer_readme_example_small_context) {
    const char *path = ti_model_bytes_ctx("readme_small.gguf", 48);
    const char *out = fti_test_tmp("readme.out");
    char prompt[400], *argv[4];
    void *text = NULL;
    size_t len = 0;
    int saved, fd, rc;
    REQUIRE(path != NULL);
    snprintf(prompt, sizeof prompt, "%s", "POLITICS, n. A strife of interests masquerading as "
             "a contest of principles. The conduct of public affairs for private advantage.");
    argv[0] = (char *)"twin_says";
    argv[1] = (char *)path;
    argv[2] = prompt;
    argv[3] = NULL;
    fflush(stdout);
    saved = dup(1);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    rc = fti_readme_example_main(3, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    CHECK_EQ_INT(rc, 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(len > strlen(prompt) && memcmp(text, prompt, strlen(prompt)) == 0); /* + "\n" */
    fti_free(text);
}
