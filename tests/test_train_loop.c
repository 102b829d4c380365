/* test_train_loop.c: the pieces of a training loop a user writes without fti_trainer (parts 05
 * and 07): fti_adamw_update against the AdamW formula in double, the same bits on any pool,
 * a forward/backward/fti_adamw_update loop that learns, and fti_model_acts_bytes. */
/* tests-need: !defined(FTI_NO_TRAIN) */

/* One AdamW step in double, torch.optim.AdamW's formula as 07_train.h states it. */
static void tl_adamw_ref(double *p, const double *g, double *m, double *v,
                         const unsigned char *decay, size_t n, double lr, double b1, double b2,
                         double eps, double wd, uint64_t t) {
    double c1 = 1.0 - pow(b1, (double)t), c2 = 1.0 - pow(b2, (double)t);
    size_t i;
    for (i = 0; i < n; i++) {
        if (!decay || decay[i]) p[i] -= lr * wd * p[i];
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        p[i] -= lr * (m[i] / c1) / (sqrt(v[i] / c2) + eps);
    }
}

/* Five steps over n parameters (two optimizer blocks and a tail) with a decay mask of runs of
 * every length, default and explicit hyper-parameters and no decay: within float rounding of
 * the double formula; NULL pool and pools of 1, 2 and 3 threads give the same bits. */
FTI_TEST(train_adamw_update_matches_formula) {
    static const size_t n = 2 * 4096 + 37;
    fti_rng r;
    unsigned char *decay = (unsigned char *)malloc(n);
    float *p0 = (float *)malloc(n * sizeof(float)), *g = (float *)malloc(5 * n * sizeof(float));
    double *pd = (double *)malloc(n * sizeof(double)), *gd = (double *)malloc(n * sizeof(double));
    double *md = (double *)calloc(n, sizeof(double)), *vd = (double *)calloc(n, sizeof(double));
    float *bits = (float *)malloc(n * sizeof(float));
    int variant, pi;
    size_t i, run = 0;
    unsigned char cur = 1;
    REQUIRE(decay && p0 && g && pd && gd && md && vd && bits);
    fti_rng_seed(&r, 77, 1);
    for (i = 0; i < n; i++) {
        if (run == 0) { /* runs of 1..300 elements, alternately decayed or not */
            run = 1 + fti_rng_below(&r, 300);
            cur = (unsigned char)!cur;
        }
        decay[i] = cur;
        run--;
        p0[i] = fti_rng_float(&r) * 2.0f - 1.0f;
    }
    for (i = 0; i < 5 * n; i++) g[i] = (fti_rng_float(&r) * 2.0f - 1.0f) * 0.1f;
    for (variant = 0; variant < 3; variant++) {
        fti_adamw_opts o;
        double b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1, lr = 3e-3, max_err = 0;
        for (pi = 0; pi < 4; pi++) {
            fti_pool *pool = pi ? fti_pool_create(pi) : NULL;
            float *p = (float *)malloc(n * sizeof(float));
            float *m = (float *)calloc(n, sizeof(float)), *v = (float *)calloc(n, sizeof(float));
            uint64_t t;
            REQUIRE(p && m && v);
            memset(&o, 0, sizeof o); /* variant 0: the defaults */
            if (variant == 1) {
                o.beta1 = 0.8f;
                o.beta2 = 0.99f;
                o.eps = 1e-6f;
                o.weight_decay = 0.5f;
                b1 = 0.8f;
                b2 = 0.99f;
                eps = 1e-6f;
                wd = 0.5f;
            } else if (variant == 2) {
                o.weight_decay = -1.0f; /* none */
                wd = 0.0;
            }
            memcpy(p, p0, n * sizeof(float));
            if (pi == 0) {
                for (i = 0; i < n; i++) {
                    pd[i] = p0[i];
                    md[i] = vd[i] = 0;
                }
            }
            for (t = 1; t <= 5; t++) {
                fti_adamw_update(&o, p, g + (t - 1) * n, m, v, variant == 1 ? NULL : decay, n,
                                 (float)lr, t, pool);
                if (pi == 0) {
                    for (i = 0; i < n; i++) gd[i] = g[(t - 1) * n + i];
                    tl_adamw_ref(pd, gd, md, vd, variant == 1 ? NULL : decay, n, lr, b1, b2, eps,
                                 wd, t);
                }
            }
            if (pi == 0) {
                for (i = 0; i < n; i++) {
                    double d = fabs((double)p[i] - pd[i]);
                    if (d > max_err) max_err = d;
                }
                memcpy(bits, p, n * sizeof(float));
                if (getenv("FTI_TEST_VERBOSE") || max_err > 1e-6)
                    fprintf(stderr, "    variant %d: max abs err %g (5 steps of lr %g)\n", variant,
                            max_err, lr);
                CHECK(max_err <= 1e-6);
            } else {
                CHECK(memcmp(bits, p, n * sizeof(float)) == 0);
            }
            free(p);
            free(m);
            free(v);
            fti_pool_free(pool);
        }
    }
    { /* the decay mask matters, and nothing moves on empty or NULL input */
        float a = 1.0f, b = 1.0f, ga = 0.0f, ma = 0, va = 0, mb = 0, vb = 0;
        unsigned char no = 0;
        fti_adamw_update(NULL, &a, &ga, &ma, &va, NULL, 1, 0.1f, 1, NULL);
        fti_adamw_update(NULL, &b, &ga, &mb, &vb, &no, 1, 0.1f, 1, NULL);
        CHECK_NEAR(a, 1.0 - 0.1 * 0.1, 1e-7, 0);
        CHECK(b == 1.0f);
        fti_adamw_update(NULL, &b, &ga, &mb, &vb, NULL, 0, 0.1f, 1, NULL);
        fti_adamw_update(NULL, NULL, &ga, &mb, &vb, NULL, 1, 0.1f, 1, NULL);
        CHECK(b == 1.0f);
    }
    free(decay);
    free(p0);
    free(g);
    free(pd);
    free(gd);
    free(md);
    free(vd);
    free(bits);
}

/* A user's own loop: fti_model_forward with targets, fti_model_backward into zeroed gradients,
 * fti_adamw_update; on a repeating sequence the loss falls from about ln(V) to well below it,
 * and the activation memory is what fti_model_acts_bytes says it holds (at least the logits and
 * probabilities, more for a larger batch or context, 0 for NULL). */
FTI_TEST(train_own_loop_learns) {
    fti_model_config cfg;
    fti_model_acts *acts = NULL, *acts2 = NULL, *acts3 = NULL;
    fti_error err;
    float *params, *grads, *m, *v;
    int32_t tok[2 * 16], tgt[2 * 16];
    size_t n, i, B = 2, T = 16;
    double loss = 0, first = 0;
    uint64_t step;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 32;
    cfg.dim = 32;
    cfg.n_layers = 1;
    cfg.n_heads = 2;
    cfg.hidden_dim = 64;
    cfg.context_len = 16;
    REQUIRE(fti_model_config_resolve(&cfg, &err) == FTI_OK);
    n = fti_model_n_params(&cfg);
    params = (float *)malloc(n * sizeof(float));
    grads = (float *)malloc(n * sizeof(float));
    m = (float *)calloc(n, sizeof(float));
    v = (float *)calloc(n, sizeof(float));
    REQUIRE(params && grads && m && v);
    fti_model_init_params(&cfg, params, 3);
    REQUIRE(fti_model_acts_create(&cfg, B, T, &acts, &err) == FTI_OK);
    for (i = 0; i < B * T; i++) { /* two shifted copies of 0..16 */
        tok[i] = (int32_t)((i % T + 5 * (i / T)) % 17);
        tgt[i] = (int32_t)((i % T + 5 * (i / T) + 1) % 17);
    }
    for (step = 1; step <= 60; step++) {
        memset(grads, 0, n * sizeof(float));
        REQUIRE(fti_model_forward(&cfg, params, acts, tok, tgt, B, T, NULL, &loss) == FTI_OK);
        REQUIRE(fti_model_backward(&cfg, params, acts, grads, 1.0f, NULL) == FTI_OK);
        fti_adamw_update(NULL, params, grads, m, v, NULL, n, 1e-2f, step, NULL);
        if (step == 1) first = loss;
    }
    if (getenv("FTI_TEST_VERBOSE") || !(loss < 0.5 * first))
        fprintf(stderr, "    loss %.4f -> %.4f after 60 steps\n", first, loss);
    CHECK(first > 3.0 && first < 4.0); /* about ln 32 = 3.47 */
    CHECK(loss < 0.5 * first);
    /* activation memory */
    CHECK(fti_model_acts_bytes(NULL) == 0);
    CHECK(fti_model_acts_bytes(acts) >= 2 * B * T * cfg.vocab_size * sizeof(float));
    REQUIRE(fti_model_acts_create(&cfg, 2 * B, T, &acts2, &err) == FTI_OK);
    REQUIRE(fti_model_acts_create(&cfg, B, T / 2, &acts3, &err) == FTI_OK);
    CHECK(fti_model_acts_bytes(acts2) > fti_model_acts_bytes(acts));
    CHECK(fti_model_acts_bytes(acts3) < fti_model_acts_bytes(acts));
    CHECK(fti_model_acts_bytes(acts2) >= 2 * fti_model_acts_bytes(acts) - 4096);
    fti_model_acts_free(acts);
    fti_model_acts_free(acts2);
    fti_model_acts_free(acts3);
    free(params);
    free(grads);
    free(m);
    free(v);
}
