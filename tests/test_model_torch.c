/* test_model_torch.c: the model and the trainer against PyTorch goldens written by
 * tools/torch_reference.py into tests/data/model/ (same weights, same tokens): logits, loss,
 * the L2 norm of every parameter gradient, and the losses of six AdamW steps with warmup,
 * cosine decay and clipping. Re-generate with: /usr/bin/python3 tools/torch_reference.py */

typedef struct fti_tt_golden {
    void *json_text;
    size_t json_len;
    fti_json_doc *doc;
    const fti_json *root;
    fti_model_config cfg;
    float *weights; /* (n_params) */
    float *logits;  /* (B, T, V) */
    size_t n_params, B, T;
    int32_t *tokens; /* (B, T+1) */
} fti_tt_golden;

static void fti_tt_free(fti_tt_golden *g) {
    fti_free(g->json_text);
    fti_json_free(g->doc);
    fti_free(g->weights);
    fti_free(g->logits);
    fti_free(g->tokens);
}

static float *fti_tt_floats(const char *path, size_t n) {
    void *data = NULL;
    size_t len = 0, i;
    float *out;
    if (fti_file_read(path, 0, &data, &len, NULL) != FTI_OK) return NULL;
    if (len != n * 4) {
        fprintf(stderr, "    %s: %lu bytes, expected %lu\n", path, (unsigned long)len,
                (unsigned long)(n * 4));
        fti_free(data);
        return NULL;
    }
    out = (float *)fti_malloc(n * sizeof(float));
    for (i = 0; out && i < n; i++) {
        uint32_t u = fti_load_u32((const unsigned char *)data + 4 * i);
        memcpy(&out[i], &u, 4);
    }
    fti_free(data);
    return out;
}

static int fti_tt_load(fti_tt_golden *g) {
    const fti_json *c, *toks;
    size_t b, t;
    memset(g, 0, sizeof(*g));
    if (fti_file_read("tests/data/model/golden.json", 0, &g->json_text, &g->json_len, NULL) !=
        FTI_OK)
        return 0;
    if (fti_json_parse((const char *)g->json_text, g->json_len, NULL, &g->doc, NULL, NULL) !=
        FTI_OK)
        return 0;
    g->root = fti_json_root(g->doc);
    c = fti_json_get(g->root, "config");
    if (!c) return 0;
    g->cfg.vocab_size = (uint32_t)fti_json_get_int(c, "vocab_size", 0);
    g->cfg.dim = (uint32_t)fti_json_get_int(c, "dim", 0);
    g->cfg.n_layers = (uint32_t)fti_json_get_int(c, "n_layers", 0);
    g->cfg.n_heads = (uint32_t)fti_json_get_int(c, "n_heads", 0);
    g->cfg.n_kv_heads = (uint32_t)fti_json_get_int(c, "n_kv_heads", 0);
    g->cfg.hidden_dim = (uint32_t)fti_json_get_int(c, "hidden_dim", 0);
    g->cfg.context_len = (uint32_t)fti_json_get_int(c, "context_len", 0);
    g->cfg.rope_base = (float)fti_json_get_num(c, "rope_base", 0);
    g->cfg.norm_eps = (float)fti_json_get_num(c, "norm_eps", 0);
    g->cfg.tied_embeddings = (int)fti_json_get_int(c, "tied_embeddings", 0);
    if (fti_model_config_resolve(&g->cfg, NULL) != FTI_OK) return 0;
    g->B = (size_t)fti_json_get_int(g->root, "batch", 0);
    g->T = (size_t)fti_json_get_int(g->root, "ctx", 0);
    g->n_params = fti_model_n_params(&g->cfg);
    g->weights = fti_tt_floats("tests/data/model/weights.bin", g->n_params);
    g->logits = fti_tt_floats("tests/data/model/logits.bin", g->B * g->T * g->cfg.vocab_size);
    g->tokens = (int32_t *)fti_malloc(g->B * (g->T + 1) * sizeof(int32_t));
    toks = fti_json_get(g->root, "tokens");
    if (!g->weights || !g->logits || !g->tokens || !toks) return 0;
    for (b = 0; b < g->B; b++)
        for (t = 0; t <= g->T; t++) {
            const fti_json *v = fti_json_at(fti_json_at(toks, b), t);
            if (!v) return 0;
            g->tokens[b * (g->T + 1) + t] = (int32_t)v->i;
        }
    return 1;
}

FTI_TEST(model_torch_golden) {
    fti_tt_golden g;
    fti_model_acts *acts = NULL;
    int32_t *tok, *tgt;
    float *grads;
    double loss = 0.0;
    size_t b, t, i, n_t;
    const float *lg;
    const fti_json *norms;
    REQUIRE(fti_tt_load(&g));
    REQUIRE(fti_model_acts_create(&g.cfg, g.B, g.T, &acts, NULL) == FTI_OK);
    tok = (int32_t *)fti_malloc(g.B * g.T * sizeof(int32_t));
    tgt = (int32_t *)fti_malloc(g.B * g.T * sizeof(int32_t));
    grads = (float *)fti_calloc(g.n_params, sizeof(float));
    REQUIRE(tok && tgt && grads);
    for (b = 0; b < g.B; b++)
        for (t = 0; t < g.T; t++) {
            tok[b * g.T + t] = g.tokens[b * (g.T + 1) + t];
            tgt[b * g.T + t] = g.tokens[b * (g.T + 1) + t + 1];
        }
    CHECK_OK(fti_model_forward(&g.cfg, g.weights, acts, tok, NULL, g.B, g.T, NULL, NULL));
    lg = fti_model_acts_logits(acts);
    for (i = 0; i < g.B * g.T * g.cfg.vocab_size; i++) CHECK_NEAR(lg[i], g.logits[i], 2e-5, 1e-4);
    CHECK_OK(fti_model_forward(&g.cfg, g.weights, acts, tok, tgt, g.B, g.T, NULL, &loss));
    CHECK_NEAR(loss, fti_json_get_num(g.root, "loss", 0), 1e-6, 2e-6);
    CHECK_OK(fti_model_backward(&g.cfg, g.weights, acts, grads, 1.0f, NULL));
    norms = fti_json_get(g.root, "grad_norms");
    REQUIRE(norms);
    n_t = fti_model_n_tensors(&g.cfg);
    for (i = 0; i < n_t; i++) {
        fti_tensor_info ti;
        size_t n = fti_model_tensor_info(&g.cfg, i, &ti), j;
        double s = 0.0, want = fti_json_get_num(norms, ti.name, -1.0);
        for (j = 0; j < n; j++) s += (double)grads[ti.offset + j] * grads[ti.offset + j];
        if (fabs(sqrt(s) - want) > 1e-6 + 1e-4 * want)
            fprintf(stderr, "    grad norm of %s: %.8g vs torch %.8g\n", ti.name, sqrt(s), want);
        CHECK_NEAR(sqrt(s), want, 1e-6, 1e-4);
    }
    fti_free(tok);
    fti_free(tgt);
    fti_free(grads);
    fti_model_acts_free(acts);
    fti_tt_free(&g);
}

/* Six trainer steps from the golden weights on one window (the train array is exactly ctx + 1
 * tokens long, so the sampler has one choice) against torch.optim.AdamW. */
FTI_TEST(train_torch_adamw_steps) {
#ifndef FTI_NO_TRAIN
    fti_tt_golden g;
    fti_train_opts o;
    fti_trainer *tr = NULL;
    fti_token_array train, none;
    const fti_json *tj, *sl;
    fti_error err;
    size_t i;
    double final_loss = 0.0;
    REQUIRE(fti_tt_load(&g));
    tj = fti_json_get(g.root, "train");
    sl = fti_json_get(g.root, "step_losses");
    REQUIRE(tj && sl);
    memset(&o, 0, sizeof(o));
    o.batch = 1;
    o.ctx = g.T;
    o.lr = (float)fti_json_get_num(tj, "lr", 0);
    o.min_lr_frac = (float)fti_json_get_num(tj, "min_lr_frac", 0);
    o.warmup_steps = (uint64_t)fti_json_get_int(tj, "warmup_steps", 0);
    o.max_steps = (uint64_t)fti_json_get_int(tj, "total_steps", 0);
    o.adamw.beta1 = (float)fti_json_get_num(tj, "beta1", 0);
    o.adamw.beta2 = (float)fti_json_get_num(tj, "beta2", 0);
    o.adamw.eps = (float)fti_json_get_num(tj, "eps", 0);
    o.adamw.weight_decay = (float)fti_json_get_num(tj, "weight_decay", 0);
    o.grad_clip = (float)fti_json_get_num(tj, "grad_clip", 0);
    o.n_threads = 1;
    memset(&train, 0, sizeof(train));
    memset(&none, 0, sizeof(none));
    train.data = g.tokens; /* first row: T + 1 tokens, int32 little-endian on this host */
    train.n_tokens = g.T + 1;
    train.token_bytes = 4;
    REQUIRE(fti_trainer_create(&g.cfg, g.weights, &o, train, none, &tr, &err) == FTI_OK);
    for (i = 0; i < sl->len; i++) {
        fti_train_stats st;
        CHECK_OK(fti_trainer_step(tr, &st, &err));
        CHECK_NEAR(st.loss, fti_json_at(sl, i)->num, 1e-5, 1e-4);
    }
    CHECK(fti_trainer_done(tr));
    {
        fti_model_acts *acts = NULL;
        REQUIRE(fti_model_acts_create(&g.cfg, 1, g.T, &acts, NULL) == FTI_OK);
        CHECK_OK(fti_model_forward(&g.cfg, fti_trainer_params(tr), acts, g.tokens, g.tokens + 1,
                                   1, g.T, NULL, &final_loss));
        CHECK_NEAR(final_loss, fti_json_get_num(g.root, "final_loss", 0), 1e-5, 1e-4);
        fti_model_acts_free(acts);
    }
    fti_trainer_free(tr);
    fti_tt_free(&g);
#endif
}
