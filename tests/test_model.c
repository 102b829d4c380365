/* test_model.c: the model part (05): config, presets, layout, and every backward against
 * finite differences (each operation, then the whole model with grouped-query heads and untied
 * output), plus bit-identical results for 1, 2 and 3 threads. */

/* A random model config with odd sizes, grouped kv heads and an untied output. */
static fti_model_config fti_tm_odd_config(void) {
    fti_model_config c;
    memset(&c, 0, sizeof(c));
    c.vocab_size = 37;
    c.dim = 24;
    c.n_layers = 2;
    c.n_heads = 6;
    c.n_kv_heads = 2;
    c.hidden_dim = 40;
    c.context_len = 9;
    c.tied_embeddings = 0;
    return c;
}

static void fti_tm_fill(float *x, size_t n, uint64_t seed, float scale) {
    fti_rng r;
    size_t i;
    fti_rng_seed(&r, seed, 7);
    for (i = 0; i < n; i++) x[i] = scale * (2.0f * fti_rng_float(&r) - 1.0f);
}

FTI_TEST(model_layout) {
    fti_model_config c;
    fti_tensor_info ti;
    size_t i, n, off = 0, total;
    memset(&c, 0, sizeof(c));
    {
        fti_error e;
        memset(&e, 0, sizeof e);
        CHECK_EQ_INT(fti_model_preset("nope", &c, &e), FTI_ERR_NOT_FOUND);
        CHECK_EQ_INT(e.code, FTI_ERR_NOT_FOUND);
        CHECK_EQ_STR(e.msg, "unknown model preset \"nope\" (tiny, small, stories15M, "
                            "stories42M, stories110M)");
        CHECK_EQ_INT(c.dim, 0); /* unchanged */
        CHECK_EQ_INT(fti_model_preset(NULL, &c, &e), FTI_ERR_INVALID);
        CHECK_EQ_INT(fti_model_preset("nope", &c, NULL), FTI_ERR_NOT_FOUND); /* err optional */
    }
    CHECK_OK(fti_model_preset("stories15M", &c, NULL));
    CHECK_EQ_INT(c.vocab_size, 4096);
    CHECK_EQ_INT(c.dim, 288);
    CHECK_OK(fti_model_config_resolve(&c, NULL));
    /* llama2.c's stories15M at vocab 4096 (tied): 15.2M - 32000*288 + 4096*288 */
    total = fti_model_n_params(&c);
    CHECK_EQ_INT(total, 7 * 0 + 4096 * 288 + 6 * (2 * 288 + 4 * 288 * 288 + 3 * 288 * 768) + 288);
    c = fti_tm_odd_config();
    CHECK_OK(fti_model_config_resolve(&c, NULL));
    n = fti_model_n_tensors(&c);
    CHECK_EQ_INT(n, 1 + 2 * 9 + 2);
    for (i = 0; i < n; i++) {
        size_t cnt = fti_model_tensor_info(&c, i, &ti);
        CHECK_EQ_INT(ti.offset, off);
        CHECK_EQ_INT(cnt, ti.rows * ti.cols);
        off += cnt;
    }
    CHECK_EQ_INT(off, fti_model_n_params(&c));
    CHECK_EQ_INT(fti_model_tensor_info(&c, (size_t)-1, NULL), off);
    fti_model_tensor_info(&c, 3, &ti);
    CHECK_EQ_STR(ti.name, "blk.0.attn_k");
    CHECK_EQ_INT(ti.rows, 8);
    CHECK_EQ_INT(ti.cols, 24);
    fti_model_tensor_info(&c, 19, &ti);
    CHECK_EQ_STR(ti.name, "output_norm");
    CHECK(ti.is_norm);
    CHECK_EQ_INT(fti_model_tensor_find(&c, "blk.1.ffn_down"), 18);
    CHECK_EQ_INT(fti_model_tensor_find(&c, "output"), 20);
    c.n_kv_heads = 4; /* 6 heads not divisible by 4 */
    CHECK_EQ_INT(fti_model_config_resolve(&c, NULL), FTI_ERR_INVALID);
    c = fti_tm_odd_config();
    c.dim = 18; /* head dim 3 is odd */
    CHECK_EQ_INT(fti_model_config_resolve(&c, NULL), FTI_ERR_INVALID);
    c = fti_tm_odd_config();
    c.vocab_size = 0xffffffffu;
    CHECK(fti_model_config_resolve(&c, NULL) != FTI_OK);
}

/* Central difference of a scalar function of x[i]. */
typedef double (*fti_tm_loss_fn)(void *ctx);
static double fti_tm_fd(float *x, size_t i, float eps, fti_tm_loss_fn fn, void *ctx) {
    float keep = x[i];
    double lp, lm;
    x[i] = keep + eps;
    lp = fn(ctx);
    x[i] = keep - eps;
    lm = fn(ctx);
    x[i] = keep;
    return (lp - lm) / (2.0 * (double)eps);
}

/* --- op checks: loss = sum(r * out) for a fixed random r, so d out = r ---------------------- */
typedef struct fti_tm_op {
    size_t n, C, T, H, KV, D;
    float *x, *w, *out, *rstd, *r, *x2;
    int which;
} fti_tm_op;

static double fti_tm_op_loss(void *vctx) {
    fti_tm_op *o = (fti_tm_op *)vctx;
    size_t i, m = 0;
    double s = 0.0;
    if (o->which == 0) {
        fti__model_rmsnorm_fwd(o->out, o->rstd, o->x, o->w, o->n, o->C, 1e-5f);
        m = o->n * o->C;
    } else if (o->which == 1) {
        /* x: gate, x2: up, packed into rows of 2F = 26 */
        float h12[130];
        size_t r, j;
        for (r = 0; r < 5; r++)
            for (j = 0; j < 13; j++) {
                h12[r * 26 + j] = o->x[r * 13 + j];
                h12[r * 26 + 13 + j] = o->x2[r * 13 + j];
            }
        fti__model_swiglu_fwd(o->out, h12, 5, 13);
        m = 65;
    } else if (o->which == 2) {
        memcpy(o->out, o->x, o->n * o->C * sizeof(float));
        m = o->n * o->C;
    }
    for (i = 0; i < m; i++) s += (double)o->r[i] * o->out[i];
    return s;
}

FTI_TEST(model_grad_ops) {
    fti_tm_op o;
    size_t n = 5, C = 13, i;
    float x[65], w[13], out[65], rstd[5], r[65], x2[65], dx[65], dw[13], dx2[65];
    memset(&o, 0, sizeof(o));
    fti_tm_fill(x, 65, 1, 1.5f);
    fti_tm_fill(w, 13, 2, 1.0f);
    fti_tm_fill(r, 65, 3, 1.0f);
    fti_tm_fill(x2, 65, 4, 1.0f);
    o.n = n;
    o.C = C;
    o.x = x;
    o.w = w;
    o.out = out;
    o.rstd = rstd;
    o.r = r;
    o.x2 = x2;
    /* rmsnorm */
    o.which = 0;
    fti_tm_op_loss(&o);
    memset(dx, 0, sizeof dx);
    memset(dw, 0, sizeof dw);
    /* the fused one-pass backward (dx accumulated; dw = the rows' sum written) */
    fti__model_rmsnorm_bwd_chunk(dx, dw, r, x, rstd, w, n, C);
    for (i = 0; i < n * C; i++)
        CHECK_NEAR(dx[i], fti_tm_fd(x, i, 1e-2f, fti_tm_op_loss, &o), 2e-3, 2e-2);
    for (i = 0; i < C; i++)
        CHECK_NEAR(dw[i], fti_tm_fd(w, i, 1e-2f, fti_tm_op_loss, &o), 2e-3, 2e-2);
    /* swiglu */
    o.which = 1;
    {
        float h12[130], dh12[130];
        size_t rr, j;
        for (rr = 0; rr < 5; rr++)
            for (j = 0; j < 13; j++) {
                h12[rr * 26 + j] = x[rr * 13 + j];
                h12[rr * 26 + 13 + j] = x2[rr * 13 + j];
            }
        fti__model_swiglu_bwd(dh12, r, h12, 5, 13);
        for (rr = 0; rr < 5; rr++)
            for (j = 0; j < 13; j++) {
                dx[rr * 13 + j] = dh12[rr * 26 + j];
                dx2[rr * 13 + j] = dh12[rr * 26 + 13 + j];
            }
    }
    for (i = 0; i < 65; i++) {
        CHECK_NEAR(dx[i], fti_tm_fd(x, i, 1e-2f, fti_tm_op_loss, &o), 2e-3, 2e-2);
        CHECK_NEAR(dx2[i], fti_tm_fd(x2, i, 1e-2f, fti_tm_op_loss, &o), 2e-3, 2e-2);
    }
    /* rope: the rotation of each pair, and the inverse rotation undoes it (the backward is the
     * transpose); tables expanded per pair: (cos, cos) and (-sin, sin) */
    {
        float cs[3 * 4], sn[3 * 4], y[6 * 8];
        size_t t, j;
        for (t = 0; t < 3; t++)
            for (j = 0; j < 2; j++) {
                float c = (float)cos(0.3 * (double)(t + 1) * (double)(j + 1));
                float s = (float)sin(0.3 * (double)(t + 1) * (double)(j + 1));
                cs[t * 4 + 2 * j] = cs[t * 4 + 2 * j + 1] = c;
                sn[t * 4 + 2 * j] = -s;
                sn[t * 4 + 2 * j + 1] = s;
            }
        fti_tm_fill(y, 48, 9, 1.0f);
        memcpy(x, y, sizeof y);
        fti__model_rope(x, 0, 6, 8, 3, 2, 4, cs, sn, 0);
        CHECK(fabs(x[8 + 0] - y[8 + 0]) > 1e-3); /* row 1 moved */
        for (i = 0; i < 6; i++) /* row i at position i % 3; head h, pair j */
            for (t = 0; t < 2; t++)
                for (j = 0; j < 2; j++) {
                    size_t e = i * 8 + t * 4 + 2 * j, pos = i % 3;
                    float c = cs[pos * 4 + 2 * j], s = sn[pos * 4 + 2 * j + 1];
                    CHECK_NEAR(x[e], y[e] * c - y[e + 1] * s, 1e-6, 1e-5);
                    CHECK_NEAR(x[e + 1], y[e] * s + y[e + 1] * c, 1e-6, 1e-5);
                }
        fti__model_rope(x, 0, 6, 8, 3, 2, 4, cs, sn, 1);
        for (i = 0; i < 48; i++) CHECK_NEAR(x[i], y[i], 1e-6, 1e-5);
    }
    /* attention's transposed block outputs back to rows, odd sizes (SSE body and tails) */
    {
        float src[11 * 13], dst[13 * 12], want[13 * 12];
        size_t D, m, t;
        for (D = 1; D <= 11; D += 5)
            for (m = 3; m <= 13; m += 5) {
                fti_tm_fill(src, D * 13, 3 + D, 1.0f);
                fti_tm_fill(dst, 13 * 12, 4 + m, 1.0f);
                memcpy(want, dst, sizeof dst);
                for (t = 0; t < m; t++)
                    for (i = 0; i < D; i++) want[t * 12 + i] = src[i * 13 + t];
                fti__model_untranspose(dst, 12, src, 13, D, m);
                for (i = 0; i < 13 * 12; i++) CHECK(dst[i] == want[i]);
            }
    }
}

/* --- whole model ------------------------------------------------------------------------------ */
typedef struct fti_tm_model {
    fti_model_config cfg;
    fti_model_acts *acts;
    float *params;
    int32_t *tok, *tgt;
    size_t B, T;
} fti_tm_model;

static double fti_tm_model_loss(void *vctx) {
    fti_tm_model *m = (fti_tm_model *)vctx;
    double loss = 0.0;
    fti_model_forward(&m->cfg, m->params, m->acts, m->tok, m->tgt, m->B, m->T, NULL, &loss);
    return loss;
}

/* Backward against finite differences on every tensor, with residual dropout p (0 = off): the
 * mask is a function of positions, not of the weights, so the loss stays differentiable. */
static void fti_tm_grad_whole(float p) {
    fti_tm_model m;
    size_t n, i, t, n_t, checked = 0;
    float *grads;
    double loss;
    fti_rng rng;
    memset(&m, 0, sizeof(m));
    m.cfg = fti_tm_odd_config();
    REQUIRE(fti_model_config_resolve(&m.cfg, NULL) == FTI_OK);
    m.B = 3;
    m.T = 7;
    REQUIRE(fti_model_acts_create(&m.cfg, m.B, m.cfg.context_len, &m.acts, NULL) == FTI_OK);
    REQUIRE(fti_model_acts_set_dropout(m.acts, p, 77, 3) == 1);
    n = fti_model_n_params(&m.cfg);
    m.params = (float *)fti_malloc(n * sizeof(float));
    grads = (float *)fti_calloc(n, sizeof(float));
    m.tok = (int32_t *)fti_malloc(m.B * m.T * sizeof(int32_t));
    m.tgt = (int32_t *)fti_malloc(m.B * m.T * sizeof(int32_t));
    REQUIRE(m.params && grads && m.tok && m.tgt);
    fti_model_init_params(&m.cfg, m.params, 42);
    /* larger weights than the training init so every path carries signal */
    for (i = 0; i < n; i++) m.params[i] *= 2.5f;
    fti_rng_seed(&rng, 5, 1);
    for (i = 0; i < m.B * m.T; i++) {
        m.tok[i] = (int32_t)fti_rng_below(&rng, m.cfg.vocab_size);
        m.tgt[i] = i == 4 ? -1 : (int32_t)fti_rng_below(&rng, m.cfg.vocab_size);
    }
    REQUIRE(fti_model_forward(&m.cfg, m.params, m.acts, m.tok, m.tgt, m.B, m.T, NULL, &loss) ==
            FTI_OK);
    CHECK(loss > 2.0 && loss < 6.0);
    REQUIRE(fti_model_backward(&m.cfg, m.params, m.acts, grads, 1.0f, NULL) == FTI_OK);
    /* every tensor: the 3 entries with the largest gradient, and one random entry */
    n_t = fti_model_n_tensors(&m.cfg);
    for (t = 0; t < n_t; t++) {
        fti_tensor_info ti;
        size_t cnt = fti_model_tensor_info(&m.cfg, t, &ti), k, pick[4];
        for (k = 0; k < 3; k++) {
            size_t best = ti.offset;
            for (i = ti.offset; i < ti.offset + cnt; i++) {
                int used = 0;
                size_t u;
                for (u = 0; u < k; u++) used |= pick[u] == i;
                if (!used && fabs(grads[i]) > fabs(grads[best])) best = i;
                if (used && best == i) best = i + 1 < ti.offset + cnt ? i + 1 : ti.offset;
            }
            pick[k] = best;
        }
        pick[3] = ti.offset + fti_rng_below(&rng, (uint32_t)cnt);
        for (k = 0; k < 4; k++) {
            /* Richardson extrapolation of two central differences: O(h^4) truncation */
            double f1 = fti_tm_fd(m.params, pick[k], 2e-2f, fti_tm_model_loss, &m);
            double f2 = fti_tm_fd(m.params, pick[k], 1e-2f, fti_tm_model_loss, &m);
            double fd = (4.0 * f2 - f1) / 3.0;
            if (fabs(fd - grads[pick[k]]) > 3e-4 + 3e-2 * fabs(fd))
                fprintf(stderr, "    %s[%lu]: analytic %.6g fd %.6g\n", ti.name,
                        (unsigned long)(pick[k] - ti.offset), grads[pick[k]], fd);
            CHECK_NEAR(grads[pick[k]], fd, 3e-4, 3e-2);
            checked++;
        }
    }
    CHECK(checked == 4 * n_t);
    fti_free(m.params);
    fti_free(grads);
    fti_free(m.tok);
    fti_free(m.tgt);
    fti_model_acts_free(m.acts);
}

FTI_TEST(model_grad_whole) { fti_tm_grad_whole(0.0f); }

FTI_TEST(model_grad_whole_dropout) { fti_tm_grad_whole(0.3f); }

/* Residual dropout: about p of the elements zeroed, the rest scaled by 1/(1-p); the same mask for
 * any pool size; rows [r, r+n) of a batch dropped with row0 = 0 equal those n rows dropped alone
 * with row0 = r (a batch split over ranks); another seed or site gives another mask; p outside
 * [0, 1) is refused; and a forward with dropout changes the loss while p = 0 restores it. */
FTI_TEST(model_dropout_mask) {
    fti_model_config c = fti_tm_odd_config();
    fti_model_acts *acts = NULL;
    float *x, *y1, *y2, *y3;
    size_t N = 40, C, i, zeros = 0;
    int k;
    REQUIRE(fti_model_config_resolve(&c, NULL) == FTI_OK);
    REQUIRE(fti_model_acts_create(&c, 5, 8, &acts, NULL) == FTI_OK);
    C = c.dim;
    x = (float *)fti_malloc(N * C * sizeof(float));
    y1 = (float *)fti_malloc(N * C * sizeof(float));
    y2 = (float *)fti_malloc(N * C * sizeof(float));
    y3 = (float *)fti_malloc(N * C * sizeof(float));
    REQUIRE(x && y1 && y2 && y3);
    for (i = 0; i < N * C; i++) x[i] = 1.0f + (float)(i % 7);
    CHECK(fti_model_acts_set_dropout(acts, 1.0f, 1, 0) == 0);
    CHECK(fti_model_acts_set_dropout(acts, -0.1f, 1, 0) == 0);
    CHECK(fti_model_acts_set_dropout(acts, NAN, 1, 0) == 0);
    acts->drop_p = 0.25f;
    acts->drop_seed = 99;
    acts->drop_row0 = 0;
    fti__model_p_dropout(acts, NULL, y1, x, N, 3);
    for (i = 0; i < N * C; i++) {
        zeros += y1[i] == 0.0f;
        CHECK(y1[i] == 0.0f || y1[i] == x[i] * (1.0f / 0.75f));
    }
    CHECK(zeros > N * C / 4 - N * C / 12 && zeros < N * C / 4 + N * C / 12);
    for (k = 2; k <= 3; k++) {
        fti_pool *pool = fti_pool_create(k);
        fti__model_p_dropout(acts, pool, y2, x, N, 3);
        CHECK(memcmp(y1, y2, N * C * sizeof(float)) == 0);
        fti_pool_free(pool);
    }
    acts->drop_row0 = 13; /* rows 13.. of the batch, alone */
    fti__model_p_dropout(acts, NULL, y2, x + 13 * C, N - 13, 3);
    CHECK(memcmp(y1 + 13 * C, y2, (N - 13) * C * sizeof(float)) == 0);
    acts->drop_row0 = 0;
    fti__model_p_dropout(acts, NULL, y2, x, N, 4); /* another site */
    acts->drop_seed = 100;
    fti__model_p_dropout(acts, NULL, y3, x, N, 3); /* another seed */
    CHECK(memcmp(y1, y2, N * C * sizeof(float)) != 0);
    CHECK(memcmp(y1, y3, N * C * sizeof(float)) != 0);
    {
        int32_t tok[5 * 8], tgt[5 * 8];
        float *params;
        double l0, l1, l2;
        size_t n = fti_model_n_params(&c);
        params = (float *)fti_malloc(n * sizeof(float));
        REQUIRE(params);
        fti_model_init_params(&c, params, 8);
        for (i = 0; i < 40; i++) {
            tok[i] = (int32_t)((i * 7) % c.vocab_size);
            tgt[i] = (int32_t)((i * 5 + 1) % c.vocab_size);
        }
        CHECK(fti_model_acts_set_dropout(acts, 0.0f, 0, 0) == 1);
        CHECK_OK(fti_model_forward(&c, params, acts, tok, tgt, 5, 8, NULL, &l0));
        CHECK(fti_model_acts_set_dropout(acts, 0.5f, 5, 0) == 1);
        CHECK_OK(fti_model_forward(&c, params, acts, tok, tgt, 5, 8, NULL, &l1));
        CHECK(fti_model_acts_set_dropout(acts, 0.0f, 0, 0) == 1);
        CHECK_OK(fti_model_forward(&c, params, acts, tok, tgt, 5, 8, NULL, &l2));
        CHECK(l1 != l0 && l2 == l0);
        fti_free(params);
    }
    fti_free(x);
    fti_free(y1);
    fti_free(y2);
    fti_free(y3);
    fti_model_acts_free(acts);
}

/* Forward + backward give bit-identical loss and gradients for 1, 2 and 3 threads. */
FTI_TEST(model_threads_bitexact) {
    fti_model_config c = fti_tm_odd_config();
    fti_model_acts *acts = NULL;
    float *params, *g[3];
    int32_t tok[4 * 9], tgt[4 * 9];
    double loss[3];
    size_t n, i;
    int k;
    fti_rng rng;
    REQUIRE(fti_model_config_resolve(&c, NULL) == FTI_OK);
    REQUIRE(fti_model_acts_create(&c, 4, 9, &acts, NULL) == FTI_OK);
    n = fti_model_n_params(&c);
    params = (float *)fti_malloc(n * sizeof(float));
    REQUIRE(params);
    fti_model_init_params(&c, params, 3);
    fti_rng_seed(&rng, 9, 1);
    for (i = 0; i < 36; i++) {
        tok[i] = (int32_t)fti_rng_below(&rng, c.vocab_size);
        tgt[i] = (int32_t)fti_rng_below(&rng, c.vocab_size);
    }
    fti_model_acts_set_dropout(acts, 0.2f, 11, 0); /* dropout's mask too */
    for (k = 0; k < 3; k++) {
        fti_pool *pool = fti_pool_create(k + 1);
        REQUIRE(pool);
        g[k] = (float *)fti_calloc(n, sizeof(float));
        REQUIRE(g[k]);
        CHECK_OK(fti_model_forward(&c, params, acts, tok, tgt, 4, 9, pool, &loss[k]));
        CHECK_OK(fti_model_backward(&c, params, acts, g[k], 1.0f, pool));
        fti_pool_free(pool);
    }
    CHECK(loss[0] == loss[1] && loss[0] == loss[2]);
    CHECK(memcmp(g[0], g[1], n * sizeof(float)) == 0);
    CHECK(memcmp(g[0], g[2], n * sizeof(float)) == 0);
    for (k = 0; k < 3; k++) fti_free(g[k]);
    fti_free(params);
    fti_model_acts_free(acts);
}

/* bf16 matmuls (fti_model_acts_set_bf16): the loss and every gradient stay close to fp32 (bf16
 * keeps 8 bits of mantissa: relative error per product about 2^-8), and the result is still
 * bit-identical for 1 and 3 threads. On a machine without bf16 kernels the flag is refused and
 * the fp32 result comes out. */
FTI_TEST(model_bf16_close_to_fp32) {
    fti_model_config c = fti_tm_odd_config();
    fti_model_acts *acts = NULL;
    float *params, *g[3];
    int32_t tok[4 * 9], tgt[4 * 9];
    double loss[3], num = 0.0, den = 0.0;
    size_t n, i;
    int k, on;
    fti_rng rng;
    REQUIRE(fti_model_config_resolve(&c, NULL) == FTI_OK);
    REQUIRE(fti_model_acts_create(&c, 4, 9, &acts, NULL) == FTI_OK);
    n = fti_model_n_params(&c);
    params = (float *)fti_malloc(n * sizeof(float));
    REQUIRE(params);
    fti_model_init_params(&c, params, 5);
    fti_rng_seed(&rng, 11, 1);
    for (i = 0; i < 36; i++) {
        tok[i] = (int32_t)fti_rng_below(&rng, c.vocab_size);
        tgt[i] = (int32_t)fti_rng_below(&rng, c.vocab_size);
    }
    for (k = 0; k < 3; k++) { /* fp32 1 thread; bf16 1 thread; bf16 3 threads */
        fti_pool *pool = fti_pool_create(k == 2 ? 3 : 1);
        REQUIRE(pool);
        on = fti_model_acts_set_bf16(acts, k > 0);
        CHECK(on == (k > 0 && fti_matmul_has_bf16(NULL)));
        g[k] = (float *)fti_calloc(n, sizeof(float));
        REQUIRE(g[k]);
        CHECK_OK(fti_model_forward(&c, params, acts, tok, tgt, 4, 9, pool, &loss[k]));
        CHECK_OK(fti_model_backward(&c, params, acts, g[k], 1.0f, pool));
        fti_pool_free(pool);
    }
    CHECK(fabs(loss[1] - loss[0]) <= 1e-2 * fabs(loss[0]));
    for (i = 0; i < n; i++) {
        num += ((double)g[1][i] - g[0][i]) * ((double)g[1][i] - g[0][i]);
        den += (double)g[0][i] * g[0][i];
    }
    printf("    bf16 vs fp32: loss %.6f vs %.6f, gradient relative L2 difference %.2e\n", loss[1],
           loss[0], sqrt(num / den));
    CHECK(sqrt(num / den) < 3e-2);
    CHECK(loss[1] == loss[2]);
    CHECK(memcmp(g[1], g[2], n * sizeof(float)) == 0);
    fti_model_acts_set_bf16(acts, 0);
    for (k = 0; k < 3; k++) fti_free(g[k]);
    fti_free(params);
    fti_model_acts_free(acts);
}
