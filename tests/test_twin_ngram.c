/* test_twin_ngram.c: the author memory of part 08 (fti_ngram): interpolated modified
 * Kneser-Ney against a brute-force reference written from the formulas, distributions that sum
 * to 1 on random odd sizes and every order, fti_ngram_prob = fti_ngram_probs, the EM fit of the
 * mixing weights (a maximum), logit mixing, fti_generate's on_logits hook, per-token model
 * log-probabilities against fti_session_nll, and the file: round trip, truncations, flipped
 * bytes and hand-made hostile files with a valid hash. */

/* Random ids in [0, V) with some structure (a cycle with noise), so every order has repeats. */
static uint32_t *tng_ids(size_t n, size_t V, uint64_t seed) {
    fti_rng r;
    uint32_t *ids = (uint32_t *)malloc((n ? n : 1) * sizeof *ids);
    size_t i;
    fti_rng_seed(&r, seed, 1);
    for (i = 0; i < n; i++)
        ids[i] = fti_rng_below(&r, 4) == 0 ? fti_rng_below(&r, (uint32_t)V) : (uint32_t)(i % V);
    return ids;
}

/* --- the reference: the formulas, by brute force over the text --------------------------- */

/* Raw count of g (k ids) in ids[0..n). */
static double tng_raw(const uint32_t *ids, size_t n, const uint32_t *g, int k) {
    size_t i;
    double c = 0;
    for (i = 0; i + (size_t)k <= n; i++)
        if (!memcmp(ids + i, g, (size_t)k * sizeof *g)) c++;
    return c;
}

/* Distinct left contexts of g: the x with x g in the text. */
static double tng_cont(const uint32_t *ids, size_t n, const uint32_t *g, int k, size_t V) {
    uint32_t x, buf[16];
    double c = 0;
    for (x = 0; x < V; x++) {
        buf[0] = x;
        memcpy(buf + 1, g, (size_t)k * sizeof *g);
        if (tng_raw(ids, n, buf, k + 1) > 0) c++;
    }
    return c;
}

/* The count the model uses for g at order k of a model of order N. */
static double tng_count(const uint32_t *ids, size_t n, const uint32_t *g, int k, int N, size_t V) {
    return k == N ? tng_raw(ids, n, g, k) : tng_cont(ids, n, g, k, V);
}

/* Modified KN discounts of order k from the counts of every distinct k-gram. */
static void tng_disc(const uint32_t *ids, size_t n, int k, int N, size_t V, double d[4]) {
    double nc[5] = {0, 0, 0, 0, 0};
    size_t i, j;
    for (i = 0; i + (size_t)k <= n; i++) { /* first occurrence of each k-gram only */
        int seen = 0;
        double c;
        for (j = 0; j < i && !seen; j++) seen = !memcmp(ids + j, ids + i, (size_t)k * sizeof *ids);
        if (seen) continue;
        c = tng_count(ids, n, ids + i, k, N, V);
        if (c >= 1 && c <= 4) nc[(int)c]++;
    }
    if (nc[1] > 0 && nc[2] > 0 && nc[3] > 0 && nc[4] > 0) {
        double y = nc[1] / (nc[1] + 2 * nc[2]);
        int c;
        for (c = 1; c <= 3; c++) {
            d[c] = c - (c + 1) * y * nc[c + 1] / nc[c];
            if (d[c] < 0.05) d[c] = 0.05;
            if (d[c] > c) d[c] = c;
        }
    } else {
        d[1] = 0.5;
        d[2] = 1.0;
        d[3] = 1.5;
    }
}

/* p(w | h) of the model of order N, h the last nh ids (nh <= N-1). */
static double tng_ref_prob(const uint32_t *ids, size_t n, size_t V, int N, const uint32_t *h,
                           size_t nh, uint32_t w) {
    double p = 1.0 / (double)V;
    int k;
    for (k = 1; k <= N && (size_t)k - 1 <= nh; k++) {
        uint32_t g[16];
        double d[4], c_h = 0, gone = 0, c;
        uint32_t x;
        tng_disc(ids, n, k, N, V, d);
        memcpy(g, h + nh - (size_t)(k - 1), (size_t)(k - 1) * sizeof *g);
        for (x = 0; x < V; x++) {
            g[k - 1] = x;
            c = tng_count(ids, n, g, k, N, V);
            if (c > 0) {
                c_h += c;
                gone += d[c < 3 ? (int)c : 3];
            }
        }
        if (c_h == 0) break;
        g[k - 1] = w;
        c = tng_count(ids, n, g, k, N, V);
        p = (c > 0 && c > d[c < 3 ? (int)c : 3] ? c - d[c < 3 ? (int)c : 3] : 0) / c_h +
            gone / c_h * p;
    }
    return p;
}

FTI_TEST(twin_ngram_matches_reference) {
    static const size_t Vs[3] = {3, 5, 7};
    static const size_t ns[3] = {17, 63, 101};
    int N, t;
    for (t = 0; t < 3; t++)
        for (N = 1; N <= 4; N++) {
            size_t V = Vs[t], n = ns[t], pos;
            uint32_t *ids = tng_ids(n, V, 100 + (uint64_t)t);
            fti_ngram *m = NULL;
            fti_ngram_opts o;
            float *probs = (float *)malloc(V * sizeof *probs);
            double worst = 0;
            memset(&o, 0, sizeof o);
            o.order = N;
            REQUIRE(fti_ngram_build(&m, ids, n, V, &o, NULL) == FTI_OK);
            /* contexts: every position's history (and an empty one) */
            for (pos = 0; pos <= n; pos += 5) {
                int32_t ctx[8];
                uint32_t h[8];
                size_t nh = pos < (size_t)N - 1 ? pos : (size_t)N - 1, j;
                uint32_t w;
                for (j = 0; j < nh; j++) {
                    h[j] = ids[pos - nh + j];
                    ctx[j] = (int32_t)h[j];
                }
                fti_ngram_probs(m, ctx, nh, probs);
                for (w = 0; w < V; w++) {
                    double ref = tng_ref_prob(ids, n, V, N, h, nh, w);
                    double d = fabs(ref - probs[w]) / ref;
                    if (d > worst) worst = d;
                }
            }
            CHECK(worst < 1e-5);
            if (worst >= 1e-5)
                fprintf(stderr, "    V %zu n %zu order %d: rel %g\n", V, n, N, worst);
            fti_ngram_free(m);
            free(ids);
            free(probs);
        }
}

FTI_TEST(twin_ngram_sums_to_one) {
    static const size_t Vs[4] = {1, 17, 63, 257};
    static const size_t ns[5] = {0, 1, 2, 17, 1001};
    size_t a, b;
    int N;
    fti_rng r;
    fti_rng_seed(&r, 7, 2);
    for (a = 0; a < 4; a++)
        for (b = 0; b < 5; b++)
            for (N = 1; N <= FTI_NGRAM_MAX_ORDER; N += (N < 3 ? 1 : 2)) {
                size_t V = Vs[a], n = ns[b], q;
                uint32_t *ids = tng_ids(n, V, 7 * a + b);
                fti_ngram *m = NULL;
                fti_ngram_opts o;
                float *probs = (float *)malloc(V * sizeof *probs);
                memset(&o, 0, sizeof o);
                o.order = N;
                REQUIRE(fti_ngram_build(&m, ids, n, V, &o, NULL) == FTI_OK);
                CHECK(fti_ngram_order(m) == N && fti_ngram_vocab(m) == V &&
                      fti_ngram_n_tokens(m) == n);
                CHECK(fti_ngram_count(m, 1) <= V && fti_ngram_count(m, N + 1) == 0);
                for (q = 0; q < 20; q++) {
                    int32_t ctx[10];
                    size_t nc = fti_rng_below(&r, 10), j, w;
                    double s = 0, mn = 1;
                    int conf, conf2;
                    int32_t tok;
                    for (j = 0; j < nc;
                         j++) { /* from the text, with an out-of-range id now and then */
                        ctx[j] = n ? (int32_t)ids[(q * 7 + j) % n] : 0;
                        if (fti_rng_below(&r, 9) == 0)
                            ctx[j] = fti_rng_below(&r, 2) ? -3 : (int32_t)V;
                    }
                    conf = fti_ngram_probs(m, ctx, nc, probs);
                    for (w = 0; w < V; w++) {
                        s += probs[w];
                        if (probs[w] < mn) mn = probs[w];
                    }
                    CHECK_NEAR(s, 1.0, 1e-4, 0);
                    CHECK(mn > 0);
                    CHECK(conf >= 0 && conf < N && (size_t)conf <= nc);
                    tok = (int32_t)fti_rng_below(&r, (uint32_t)V);
                    CHECK_NEAR(fti_ngram_prob(m, ctx, nc, tok, &conf2), probs[tok], 1e-6,
                               1e-4);
                    CHECK(conf2 == conf);
                }
                CHECK(fti_ngram_prob(m, NULL, 0, (int32_t)V, NULL) == 0.0);
                fti_ngram_free(m);
                free(ids);
                free(probs);
            }
}

FTI_TEST(twin_ngram_build_errors) {
    uint32_t ids[4] = {0, 1, 2, 9};
    fti_ngram *m = (fti_ngram *)1;
    fti_ngram_opts o;
    fti_error err;
    memset(&o, 0, sizeof o);
    CHECK(fti_ngram_build(&m, ids, 4, 5, NULL, &err) == FTI_ERR_INVALID && m == NULL);
    CHECK(strstr(err.msg, "token 3") != NULL);
    o.order = FTI_NGRAM_MAX_ORDER + 1;
    CHECK(fti_ngram_build(&m, ids, 3, 5, &o, &err) == FTI_ERR_INVALID);
    o.order = 2;
    CHECK(fti_ngram_build(&m, ids, 3, 0, &o, &err) == FTI_ERR_INVALID);
    CHECK(fti_ngram_build(&m, NULL, 3, 5, &o, &err) == FTI_ERR_INVALID);
    CHECK(fti_ngram_build(NULL, ids, 3, 5, &o, &err) == FTI_ERR_INVALID);
    fti_ngram_free(NULL);
}

/* A cycle 0 1 2 ... V-1 repeated: the order-3 model is sure of the next id. */
static fti_ngram *tng_cycle(size_t V, size_t n, int order) {
    uint32_t *ids = (uint32_t *)malloc(n * sizeof *ids);
    fti_ngram *m = NULL;
    fti_ngram_opts o;
    size_t i;
    for (i = 0; i < n; i++) ids[i] = (uint32_t)(i % V);
    memset(&o, 0, sizeof o);
    o.order = order;
    if (fti_ngram_build(&m, ids, n, V, &o, NULL) != FTI_OK) m = NULL;
    free(ids);
    return m;
}

FTI_TEST(twin_ngram_fit_and_mix) {
    fti_ngram *m = tng_cycle(11, 400, 3);
    size_t n = 3000, i, V = 11;
    double *pm = (double *)malloc(n * sizeof *pm), *pn = (double *)malloc(n * sizeof *pn);
    int *conf = (int *)malloc(n * sizeof *conf), c;
    fti_ngram_fit_stats st, st2;
    fti_rng r;
    float logits[11], before[11], work[11], probs[11];
    int32_t ctx[2] = {3, 4};
    REQUIRE(m != NULL);
    fti_rng_seed(&r, 5, 5);
    /* tokens where the n-gram is right at confidence 2 and the model is not, and the reverse at
     * confidence 1: the fitted weights must tell them apart */
    for (i = 0; i < n; i++) {
        conf[i] = (int)(i % 3);
        pm[i] = 0.05 + 0.9 * fti_rng_double(&r);
        pn[i] = 0.05 + 0.9 * fti_rng_double(&r);
        if (conf[i] == 2) pn[i] = 0.9;
        if (conf[i] == 1) pn[i] = 0.01;
    }
    pm[0] = 0;   /* unusable tokens are skipped */
    pn[1] = NAN;
    CHECK_OK(fti_ngram_fit(m, pm, pn, conf, n, &st));
    CHECK(st.n_tokens == n - 2);
    CHECK(fti_ngram_lambda(m, 2) > 0.6f && fti_ngram_lambda(m, 1) < 0.1f);
    CHECK(st.nll_mix <= st.nll_model + 1e-9 && st.nll_mix <= st.nll_ngram + 1e-9);
    /* a maximum: moving any weight by 0.02 does not help */
    for (c = 0; c < 3; c++) {
        float l = fti_ngram_lambda(m, c), d;
        for (d = -0.02f; d <= 0.021f; d += 0.04f) {
            fti_ngram_set_lambda(m, c, l + d);
            fti_ngram_score(m, pm, pn, conf, n, &st2);
            CHECK(st2.nll_mix >= st.nll_mix - 1e-9);
        }
        fti_ngram_set_lambda(m, c, l);
    }
    CHECK(fti_ngram_fit(m, pm, pn, conf, 0, &st) == FTI_ERR_INVALID);
    fti_ngram_set_lambda(m, -1, 7.0f);
    CHECK(fti_ngram_lambda(m, 0) == 1.0f && fti_ngram_lambda(m, 2) == 1.0f);
    fti_ngram_set_lambda(m, -1, NAN);
    CHECK(fti_ngram_lambda(m, 1) == 0.0f);
    /* mixing: softmax(after) = (1-l) softmax(before) + l p_ngram */
    for (i = 0; i < V; i++) before[i] = logits[i] = (float)(fti_rng_double(&r) * 6 - 3);
    fti_ngram_probs(m, ctx, 2, probs);
    CHECK(probs[5] > 0.9f);
    CHECK(fti_ngram_mix_logits(m, ctx, 2, 0.3f, logits, V, work) == 2);
    {
        double z0 = 0, z1 = 0;
        for (i = 0; i < V; i++) {
            z0 += exp(before[i]);
            z1 += exp(logits[i]);
        }
        for (i = 0; i < V; i++)
            CHECK_NEAR(exp(logits[i]) / z1, 0.7 * exp(before[i]) / z0 + 0.3 * probs[i], 1e-6, 1e-4);
    }
    CHECK(fti_ngram_mix_logits(m, ctx, 2, 0.3f, logits, V + 1, work) == -1);
    free(pm);
    free(pn);
    free(conf);
    fti_ngram_free(m);
}

/* on_logits: records what fti_generate passed, then mixes */
typedef struct tng_rec {
    fti_ngram_hook h;
    int32_t last_recent[FTI_GENERATE_RECENT];
    size_t n_last, calls;
} tng_rec;
static void tng_on_logits(void *user, float *logits, size_t V, const int32_t *recent, size_t n) {
    tng_rec *r = (tng_rec *)user;
    r->calls++;
    r->n_last = n;
    memcpy(r->last_recent, recent, n * sizeof *recent);
    fti_ngram_on_logits(&r->h, logits, V, recent, n);
}

FTI_TEST(twin_ngram_generate_hook) {
    fti_test_model_opts mo;
    const char *path;
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_sampler *smp = NULL;
    fti_generate_opts go;
    fti_generate_stats st;
    tng_rec rec;
    int32_t prompt[20], out[12];
    float work[96];
    fti_ngram *m;
    size_t i, V = 96;
    memset(&mo, 0, sizeof mo);
    mo.vocab = FTI_TEST_VOCAB_PLAIN;
    mo.seed = 3;
    path = fti_test_model("ngram_hook.gguf", &mo, NULL, NULL);
    REQUIRE(path != NULL);
    REQUIRE(fti_test_open_sessions(path, NULL, &e, &s, 1) == 0);
    /* ids 0..94 in a cycle (95 is the end marker): with the n-gram alone (lambda 1), greedy
     * decoding continues the cycle whatever the random model thinks */
    m = tng_cycle(V - 1, 2000, 4);
    REQUIRE(m != NULL);
    for (i = 0; i < 20; i++) prompt[i] = (int32_t)(30 + i);
    memset(&rec, 0, sizeof rec);
    rec.h.ngram = m;
    rec.h.work = work;
    rec.h.lambda = 1.0f;
    memset(&go, 0, sizeof go);
    go.max_tokens = 12;
    go.tokens = out;
    go.tokens_cap = 12;
    go.on_logits = tng_on_logits;
    go.logits_user = &rec;
    /* the n-gram's vocabulary is 95, the model's 96: the hook leaves the logits alone */
    REQUIRE(fti_sampler_create(&smp, V, NULL) == FTI_OK);
    CHECK_OK(fti_generate(s, smp, prompt, 20, &go, &st, NULL));
    CHECK(rec.calls == 12);
    fti_ngram_free(m);
    m = tng_cycle(V, 2000, 4);
    REQUIRE(m != NULL);
    rec.h.ngram = m;
    rec.calls = 0;
    fti_session_reset(s);
    fti_sampler_reset(smp);
    CHECK_OK(fti_generate(s, smp, prompt, 20, &go, &st, NULL));
    CHECK(st.n_generated == 12 && rec.calls == 12);
    for (i = 0; i < 12; i++) CHECK_EQ_INT(out[i], 50 + (int)i);
    /* the last call saw the 16 tokens before the 12th: prompt's 45..49 and 50..60 */
    CHECK(rec.n_last == FTI_GENERATE_RECENT);
    for (i = 0; i < FTI_GENERATE_RECENT; i++) CHECK_EQ_INT(rec.last_recent[i], 45 + (int)i);
    fti_sampler_free(smp);
    fti_ngram_free(m);
    fti_test_close_sessions(e, &s, 1);
}

/* The log-probability of toks[i] given toks[w..i), from a fresh evaluation of just those
 * tokens (the reference for the strided windows). */
static double tng_lp_given(fti_session *s, const int32_t *toks, size_t w, size_t i, size_t V) {
    const float *row;
    double mx, se = 0;
    size_t j;
    fti_session_reset(s);
    if (fti_session_eval(s, toks + w, i - w, NULL, NULL) != FTI_OK) return 1.0;
    row = fti_session_logits(s);
    mx = row[0];
    for (j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
    for (j = 0; j < V; j++) se += exp((double)row[j] - mx);
    return (double)row[toks[i]] - mx - log(se);
}

/* Strided perplexity: every token from the second is scored, once, each given all the tokens
 * before it up to the context (48 here) and after that the tokens of its window: windows start
 * 24 apart, the last ends at the text's end (107 tokens: windows at 0, 24, 48, 59 score 1..47,
 * 48..71, 72..95, 96..106), checked against a fresh evaluation of each token's window; the mean
 * is fti_session_nll's, over exactly n - 1 tokens; a text within the context sees all of it. */
FTI_TEST(twin_ngram_token_logprobs) {
    fti_test_model_opts mo;
    fti_session_opts so;
    const char *path;
    fti_engine *e = NULL;
    fti_session *s = NULL, *s2 = NULL;
    int32_t toks[107];
    double lp[107], lp2[107], nll = 0, sum = 0, worst = 0;
    size_t i, cnt = 0, V;
    fti_error err;
    memset(&mo, 0, sizeof mo);
    mo.vocab = FTI_TEST_VOCAB_PLAIN;
    mo.seed = 4;
    path = fti_test_model("ngram_lp.gguf", &mo, NULL, NULL);
    REQUIRE(path != NULL);
    REQUIRE(fti_test_open_sessions(path, NULL, &e, &s, 1) == 0);
    REQUIRE(fti_session_n_ctx(s) == 48);
    V = fti_engine_config(e)->vocab_size;
    for (i = 0; i < 107; i++) toks[i] = (int32_t)((i * 37) % 95);
    CHECK_OK(fti_session_token_logprobs(s, toks, 107, lp, NULL));
    CHECK_OK(fti_session_nll(s, toks, 107, &nll, NULL));
    for (i = 0; i < 107; i++)
        if (lp[i] == lp[i]) {
            CHECK(lp[i] < 0);
            sum -= lp[i];
            cnt++;
        }
    CHECK(cnt == 106 && lp[0] != lp[0]);
    CHECK_NEAR(sum / (double)cnt, nll, 1e-9, 1e-9);
    for (i = 1; i < 107; i++) {
        size_t w = i < 48 ? 0 : i < 72 ? 24 : i < 96 ? 48 : 59;
        double d = fabs(lp[i] - tng_lp_given(s, toks, w, i, V));
        if (d > worst) worst = d;
    }
    CHECK(worst < 1e-4);
    /* a context that holds the text: the same figures as a session of it from the first token */
    memset(&so, 0, sizeof so);
    so.n_ctx = 40;
    REQUIRE(fti_session_create(&s2, e, &so, &err) == FTI_OK);
    CHECK_OK(fti_session_token_logprobs(s2, toks, 40, lp2, NULL));
    CHECK_OK(fti_session_token_logprobs(s, toks, 40, lp, NULL));
    for (i = 1; i < 40; i++) CHECK_NEAR(lp2[i], lp[i], 1e-5, 1e-5);
    /* ... and one that does not: 2 tokens of context (every token after the second sees
     * exactly n_ctx - n_ctx/2 = 2 before it) */
    fti_session_free(s2);
    so.n_ctx = 3;
    REQUIRE(fti_session_create(&s2, e, &so, &err) == FTI_OK);
    CHECK_OK(fti_session_token_logprobs(s2, toks, 20, lp2, NULL));
    CHECK(lp2[0] != lp2[0]);
    for (i = 1; i < 20; i++) CHECK_NEAR(lp2[i], tng_lp_given(s, toks, i < 2 ? 0 : i - 2, i, V),
                                        1e-4, 1e-4);
    fti_session_free(s2);
    /* a context of 1 predicts nothing; a bad id is refused, the last one too (never evaluated) */
    so.n_ctx = 1;
    REQUIRE(fti_session_create(&s2, e, &so, &err) == FTI_OK);
    CHECK(fti_session_token_logprobs(s2, toks, 20, lp2, NULL) == FTI_ERR_INVALID);
    CHECK(fti_session_nll(s2, toks, 20, &nll, NULL) == FTI_ERR_INVALID);
    fti_session_free(s2);
    toks[106] = (int32_t)V;
    CHECK(fti_session_token_logprobs(s, toks, 107, lp, NULL) == FTI_ERR_INVALID);
    toks[106] = -1;
    CHECK(fti_session_nll(s, toks, 107, &nll, NULL) == FTI_ERR_INVALID);
    CHECK(fti_session_token_logprobs(s, toks, 1, lp, NULL) == FTI_ERR_INVALID);
    fti_test_close_sessions(e, &s, 1);
}

/* Writes bytes to path (plain). */
static void tng_write(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* Rewrites a file's trailing hash so a hand-edited body passes the checksum. */
static void tng_rehash(unsigned char *b, size_t n) {
    fti_store_u64(b + n - 8, fti_hash64(b, n - 8, 0x6e6772616dull));
}

FTI_TEST(twin_ngram_file) {
    uint32_t *ids = tng_ids(300, 13, 9);
    fti_ngram *m = NULL, *m2 = NULL;
    fti_ngram_opts o;
    fti_error err;
    char path[512], bad[512];
    void *data = NULL;
    unsigned char *b, *c;
    size_t len = 0, i, V = 13;
    float p1[13], p2[13];
    int32_t ctx[3] = {4, 5, 6};
    memset(&o, 0, sizeof o);
    o.order = 3;
    REQUIRE(fti_ngram_build(&m, ids, 300, V, &o, NULL) == FTI_OK);
    fti_ngram_set_lambda(m, 1, 0.375f);
    snprintf(path, sizeof path, "%s", fti_test_tmp("ngram.bin"));
    snprintf(bad, sizeof bad, "%s", fti_test_tmp("ngram_bad.bin"));
    CHECK_OK(fti_ngram_save(m, path, NULL));
    CHECK_OK(fti_ngram_load(&m2, path, NULL));
    REQUIRE(m2 != NULL);
    CHECK(fti_ngram_lambda(m2, 1) == 0.375f && fti_ngram_lambda(m2, 0) == 0.25f);
    CHECK(fti_ngram_n_tokens(m2) == 300 && fti_ngram_order(m2) == 3);
    CHECK(fti_ngram_probs(m, ctx, 3, p1) == fti_ngram_probs(m2, ctx, 3, p2));
    CHECK(!memcmp(p1, p2, sizeof p1));
    fti_ngram_free(m2);
    m2 = NULL;
    CHECK(fti_ngram_load(&m2, fti_test_tmp("ngram_none.bin"), &err) != FTI_OK && !m2);
    REQUIRE(fti_file_read(path, 0, &data, &len, NULL) == FTI_OK);
    b = (unsigned char *)data;
    c = (unsigned char *)malloc(len);
    /* truncations and flipped bytes (every one in the header, then a sample): an error, never
     * a crash */
    for (i = 0; i < len; i += i < 48 ? 1 : 61) {
        tng_write(bad, b, i);
        CHECK(fti_ngram_load(&m2, bad, &err) != FTI_OK && !m2);
    }
    for (i = 0; i < len; i += i < 48 ? 1 : 53) {
        memcpy(c, b, len);
        c[i] ^= 0x20;
        tng_write(bad, c, len);
        CHECK(fti_ngram_load(&m2, bad, &err) != FTI_OK && !m2);
    }
    /* hand-made hostile files with a valid hash. Layout: magic 8, version 4, order 4,
     * vocabulary 4, 0 4, tokens 8, 3 weights (12): the tables start at 44 (rows u64, ids) */
#define TNG_CASE(edit, code, text)                                                      \
    do {                                                                                \
        memcpy(c, b, len);                                                              \
        edit;                                                                           \
        tng_rehash(c, len);                                                             \
        tng_write(bad, c, len);                                                         \
        CHECK_EQ_INT(fti_ngram_load(&m2, bad, &err), code);                             \
        CHECK(strstr(err.msg, text) != NULL && strstr(err.msg, "ngram_bad.bin") != NULL); \
    } while (0)
    TNG_CASE(fti_store_u32(c + 8, 2), FTI_ERR_UNSUPPORTED, "version 2");
    TNG_CASE(fti_store_u32(c + 12, 9), FTI_ERR_LIMIT, "order 9");
    TNG_CASE(fti_store_u32(c + 16, 0), FTI_ERR_LIMIT, "vocabulary 0");
    TNG_CASE(fti_store_f32(c + 32, 1.5f), FTI_ERR_FORMAT, "weight 0");
    TNG_CASE(fti_store_f32(c + 36, NAN), FTI_ERR_FORMAT, "weight 1");
    TNG_CASE(fti_store_u64(c + 44, (uint64_t)1 << 60), FTI_ERR_FORMAT, "claims");
    TNG_CASE(fti_store_u32(c + 52, 13), FTI_ERR_FORMAT, "has id 13");
    TNG_CASE(fti_store_u32(c + 52, 12), FTI_ERR_FORMAT, "out of order");
    TNG_CASE(fti_store_u32(c + 52 + 4 * fti_ngram_count(m, 1), 0), FTI_ERR_FORMAT, "count 0");
    TNG_CASE(fti_store_u64(c + 24, 2), FTI_ERR_FORMAT, "claims");
    memcpy(c, b, len);
    tng_write(bad, c, len - 1); /* a short file whose last 8 bytes are not its hash */
    CHECK(fti_ngram_load(&m2, bad, &err) == FTI_ERR_CHECKSUM);
    CHECK(fti_ngram_save(m, fti_test_tmp("no/such/dir/x.bin"), &err) != FTI_OK);
    free(c);
    fti_free(data);
    fti_ngram_free(m);
    free(ids);
}
