/* test_train.c: the trainer (07): schedule, determinism across thread counts, exact resume after
 * a real SIGKILL of a child process, damaged and foreign checkpoints, LoRA gradients and merge,
 * the registry. The AdamW steps against PyTorch are in test_model_torch.c. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FTI_NO_TRAIN
static fti_model_config fti_ttr_config(void) {
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
static uint16_t *fti_ttr_tokens(size_t n, uint64_t seed) {
    uint16_t *t = (uint16_t *)fti_malloc(n * sizeof(uint16_t));
    fti_rng r;
    size_t i;
    fti_rng_seed(&r, seed, 3);
    for (i = 0; t && i < n; i++)
        t[i] =
            (uint16_t)(fti_rng_below(&r, 8) == 0 ? fti_rng_below(&r, 61) : (i * 7 + i / 13) % 61);
    return t;
}

static fti_train_opts fti_ttr_opts(void) {
    fti_train_opts o;
    memset(&o, 0, sizeof(o));
    o.batch = 3;
    o.ctx = 16;
    o.grad_accum = 2;
    o.lr = 3e-3f;
    o.max_steps = 30;
    o.warmup_steps = 4;
    o.eval_every = 10;
    o.eval_windows = 5;
    o.seed = 77;
    o.n_threads = 1;
    o.checkpoint_every = 5;
    return o;
}

#endif

FTI_TEST(train_schedule) {
#ifndef FTI_NO_TRAIN
    CHECK_NEAR(fti_lr_schedule(0, 4, 100, 1.0, 0.1), 0.25, 1e-12, 0);
    CHECK_NEAR(fti_lr_schedule(3, 4, 100, 1.0, 0.1), 1.0, 1e-12, 0);
    CHECK_NEAR(fti_lr_schedule(4, 4, 100, 1.0, 0.1), 1.0, 1e-12, 0);
    CHECK_NEAR(fti_lr_schedule(52, 4, 100, 1.0, 0.1), 0.55, 1e-9, 0);
    CHECK_NEAR(fti_lr_schedule(100, 4, 100, 1.0, 0.1), 0.1, 1e-9, 0);
    CHECK_NEAR(fti_lr_schedule(500, 4, 100, 1.0, 0.1), 0.1, 1e-9, 0);
#endif
}

#ifndef FTI_NO_TRAIN
/* Runs a whole training; returns the trainer (caller frees). */
static fti_trainer *fti_ttr_run(const fti_train_opts *o, const uint16_t *tr, size_t n_tr,
                                const uint16_t *va, size_t n_va, uint64_t stop_at) {
    fti_model_config c = fti_ttr_config();
    fti_token_array a, b;
    fti_trainer *t = NULL;
    fti_error err;
    a.data = tr;
    a.n_tokens = n_tr;
    a.token_bytes = 2;
    b.data = va;
    b.n_tokens = n_va;
    b.token_bytes = 2;
    if (fti_trainer_create(&c, NULL, o, a, b, &t, &err) != FTI_OK) {
        fprintf(stderr, "    %s\n", err.msg);
        return NULL;
    }
    while (!fti_trainer_done(t)) {
        fti_train_stats st;
        if (fti_trainer_step(t, &st, &err) != FTI_OK) {
            fprintf(stderr, "    %s\n", err.msg);
            fti_trainer_free(t);
            return NULL;
        }
        if (stop_at && st.step >= stop_at) break;
    }
    return t;
}

#endif

FTI_TEST(train_deterministic_threads_and_learns) {
#ifndef FTI_NO_TRAIN
    uint16_t *tr = fti_ttr_tokens(3000, 1), *va = fti_ttr_tokens(400, 2);
    fti_train_opts o = fti_ttr_opts();
    fti_trainer *t1, *t2;
    const float *h1 = NULL, *h2 = NULL;
    size_t n1 = 0, n2 = 0, nv = 0;
    const uint64_t *vs = NULL;
    const float *vl = NULL;
    fti_train_stats st;
    memset(&st, 0, sizeof(st));
    REQUIRE(tr && va);
    t1 = fti_ttr_run(&o, tr, 3000, va, 400, 0);
    o.n_threads = 2;
    t2 = fti_ttr_run(&o, tr, 3000, va, 400, 0);
    REQUIRE(t1 && t2);
    fti_trainer_history(t1, &h1, &n1, &vs, &vl, &nv);
    fti_trainer_history(t2, &h2, &n2, NULL, NULL, NULL);
    CHECK_EQ_INT(n1, 30);
    CHECK_EQ_INT(n2, 30);
    CHECK(memcmp(h1, h2, n1 * sizeof(float)) == 0);
    CHECK(memcmp(fti_trainer_params(t1), fti_trainer_params(t2),
                 fti_model_n_params(fti_trainer_config(t1)) * sizeof(float)) == 0);
    CHECK(h1[n1 - 1] < h1[0] - 0.5f); /* it learns */
    CHECK_EQ_INT(nv, 3);
    CHECK_EQ_INT(vs[2], 30);
    fti_trainer_stats_get(t1, &st);
    CHECK_EQ_INT(st.tokens_seen, 30 * 3 * 16 * 2);
    CHECK(st.best_val_loss <= st.val_loss);
    CHECK(st.val_loss < 4.0);
    fti_trainer_free(t1);
    fti_trainer_free(t2);
    fti_free(tr);
    fti_free(va);
#endif
}

/* The child trains with checkpoints every 5 steps and is SIGKILLed after step 23 (mid-run, between
 * checkpoints); the parent resumes from the step-20 checkpoint with another thread count and must
 * reproduce the uninterrupted run's losses and weights bit for bit. */
FTI_TEST(train_resume_after_sigkill) {
#ifndef FTI_NO_TRAIN
    uint16_t *tr = fti_ttr_tokens(3000, 1), *va = fti_ttr_tokens(400, 2);
    fti_train_opts o = fti_ttr_opts();
    fti_model_config c = fti_ttr_config();
    fti_trainer *ref, *t = NULL;
    fti_token_array a, b;
    fti_error err;
    char ckpt[1024];
    const float *h1 = NULL, *h2 = NULL;
    size_t n1 = 0, n2 = 0, nv1 = 0, nv2 = 0;
    const uint64_t *vs1 = NULL, *vs2 = NULL;
    const float *vl1 = NULL, *vl2 = NULL;
    pid_t pid;
    int status = 0;
    REQUIRE(tr && va);
    snprintf(ckpt, sizeof ckpt, "%s", fti_test_tmp("run.ckpt")); /* the tmp slots rotate */
    ref = fti_ttr_run(&o, tr, 3000, va, 400, 0);
    REQUIRE(ref);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        o.checkpoint_path = ckpt;
        t = fti_ttr_run(&o, tr, 3000, va, 400, 23);
        kill(getpid(), SIGKILL);
        _exit(3); /* not reached */
    }
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    a.data = tr;
    a.n_tokens = 3000;
    a.token_bytes = 2;
    b.data = va;
    b.n_tokens = 400;
    b.token_bytes = 2;
    o.n_threads = 2;
    o.checkpoint_path = ckpt;
    REQUIRE(fti_trainer_create(&c, NULL, &o, a, b, &t, &err) == FTI_OK);
    CHECK_OK(fti_trainer_resume(t, ckpt, &err));
    {
        fti_train_stats st;
        memset(&st, 0, sizeof(st));
        fti_trainer_stats_get(t, &st);
        CHECK_EQ_INT(st.step, 20);
        fti_trainer_history(t, &h2, &n2, NULL, NULL, NULL);
        REQUIRE(n2 == 20);
        CHECK(st.loss == (double)h2[19] && st.loss > 0); /* the checkpoint's last step's */
    }
    while (!fti_trainer_done(t)) REQUIRE(fti_trainer_step(t, NULL, &err) == FTI_OK);
    fti_trainer_history(ref, &h1, &n1, &vs1, &vl1, &nv1);
    fti_trainer_history(t, &h2, &n2, &vs2, &vl2, &nv2);
    CHECK_EQ_INT(n2, n1);
    CHECK(n1 == n2 && memcmp(h1, h2, n1 * sizeof(float)) == 0);
    CHECK(nv1 == nv2 && memcmp(vl1, vl2, nv1 * sizeof(float)) == 0);
    CHECK(memcmp(fti_trainer_params(ref), fti_trainer_params(t),
                 fti_model_n_params(&c) * sizeof(float)) == 0);
    fti_trainer_free(t);
    /* a resumed-again trainer from the final checkpoint is done */
    REQUIRE(fti_trainer_create(&c, NULL, &o, a, b, &t, &err) == FTI_OK);
    CHECK_OK(fti_trainer_resume(t, ckpt, &err));
    CHECK(fti_trainer_done(t));
    {
        fti_train_stats st;
        memset(&st, 0, sizeof(st));
        fti_trainer_stats_get(t, &st);
        CHECK(st.loss == (double)h1[n1 - 1]); /* the finished run's loss, not 0 */
    }
    fti_trainer_free(t);
    /* other options: refused, naming the mismatch */
    o.lr *= 2.0f;
    REQUIRE(fti_trainer_create(&c, NULL, &o, a, b, &t, &err) == FTI_OK);
    CHECK_EQ_INT(fti_trainer_resume(t, ckpt, &err), FTI_ERR_MISMATCH);
    CHECK(strstr(err.msg, "training options") != NULL && strstr(err.msg, ckpt) != NULL);
    fti_trainer_free(t);
    o.lr /= 2.0f;
    /* another schedule, another model: said with both values */
    o.max_steps += 5;
    REQUIRE(fti_trainer_create(&c, NULL, &o, a, b, &t, &err) == FTI_OK);
    CHECK_EQ_INT(fti_trainer_resume(t, ckpt, &err), FTI_ERR_MISMATCH);
    CHECK(strstr(err.msg, "-step schedule, this run has") != NULL);
    fti_trainer_free(t);
    o.max_steps -= 5;
    {
        fti_model_config c2 = c;
        c2.hidden_dim += 8;
        REQUIRE(fti_trainer_create(&c2, NULL, &o, a, b, &t, &err) == FTI_OK);
        CHECK_EQ_INT(fti_trainer_resume(t, ckpt, &err), FTI_ERR_MISMATCH);
        CHECK(strstr(err.msg, "(hidden_dim ") != NULL);
        fti_trainer_free(t);
        c2 = c;
        c2.rope_base = 500.0f;
        REQUIRE(fti_trainer_create(&c2, NULL, &o, a, b, &t, &err) == FTI_OK);
        CHECK_EQ_INT(fti_trainer_resume(t, ckpt, &err), FTI_ERR_MISMATCH);
        CHECK(strstr(err.msg, "(rope_base 10000 there, 500 here)") != NULL);
        fti_trainer_free(t);
    }
    o.lr *= 2.0f; /* (as the code below expects) */
    /* a damaged checkpoint: checksum error; a truncated one: format or checksum error */
    {
        void *data = NULL;
        size_t len = 0;
        REQUIRE(fti_file_read(ckpt, 0, &data, &len, NULL) == FTI_OK);
        ((unsigned char *)data)[len / 2] ^= 0x40;
        REQUIRE(fti_test_write_file(fti_test_tmp("bad.ckpt"), data, len) == 0);
        REQUIRE(fti_test_write_file(fti_test_tmp("short.ckpt"), data, 30) == 0);
        o.lr /= 2.0f;
        REQUIRE(fti_trainer_create(&c, NULL, &o, a, b, &t, &err) == FTI_OK);
        CHECK_EQ_INT(fti_trainer_resume(t, fti_test_tmp("bad.ckpt"), &err), FTI_ERR_CHECKSUM);
        CHECK(fti_trainer_resume(t, fti_test_tmp("short.ckpt"), &err) != FTI_OK);
        /* shorter than a header and its checksum: the message has the file's real size */
        REQUIRE(fti_test_write_file(fti_test_tmp("tiny.ckpt"), data, 7) == 0);
        CHECK_EQ_INT(fti_trainer_resume(t, fti_test_tmp("tiny.ckpt"), &err), FTI_ERR_FORMAT);
        CHECK(strstr(err.msg, "tiny.ckpt: 7 bytes is too short") != NULL);
        CHECK_EQ_INT(fti_trainer_resume(t, fti_test_tmp("missing.ckpt"), &err), FTI_ERR_NOT_FOUND);
        /* well-formed checksum over a structure that does not add up: refused, t unchanged */
        ((unsigned char *)data)[len / 2] ^= 0x40;
        fti_sha256_buf(data, len - 132, (unsigned char *)data + len - 132);
        REQUIRE(fti_test_write_file(fti_test_tmp("cut.ckpt"), data, len - 100) == 0);
        CHECK_EQ_INT(fti_trainer_resume(t, fti_test_tmp("cut.ckpt"), &err), FTI_ERR_FORMAT);
        {
            fti_train_stats st;
            size_t nh = 1;
            memset(&st, 0, sizeof(st));
            fti_trainer_stats_get(t, &st);
            fti_trainer_history(t, NULL, &nh, NULL, NULL, NULL);
            CHECK_EQ_INT(st.step, 0);
            CHECK_EQ_INT(nh, 0);
        }
        fti_trainer_free(t);
        fti_free(data);
    }
    fti_trainer_free(ref);
    fti_free(tr);
    fti_free(va);
#endif
}

FTI_TEST(train_bad_inputs) {
#ifndef FTI_NO_TRAIN
    fti_model_config c = fti_ttr_config();
    fti_train_opts o = fti_ttr_opts();
    fti_trainer *t = NULL;
    fti_token_array a, none;
    fti_error err;
    uint16_t toks[40];
    size_t i;
    for (i = 0; i < 40; i++) toks[i] = (uint16_t)i;
    memset(&none, 0, sizeof(none));
    a.data = toks;
    a.n_tokens = 40;
    a.token_bytes = 2;
    toks[33] = 61; /* == vocab */
    CHECK_EQ_INT(fti_trainer_create(&c, NULL, &o, a, none, &t, &err), FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, "position 33") != NULL);
    toks[33] = 3;
    /* 2-byte ids with token_bytes left 0 (= 4): the message says what to set */
    a.token_bytes = 0;
    a.n_tokens = 20; /* 80 bytes as 4-byte ids */
    CHECK_EQ_INT(fti_trainer_create(&c, NULL, &o, a, none, &t, &err), FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, "position 0") != NULL);
    CHECK(strstr(err.msg, "set token_bytes to 2") != NULL);
    a.token_bytes = 2;
    a.n_tokens = 16; /* < ctx + 1 */
    CHECK_EQ_INT(fti_trainer_create(&c, NULL, &o, a, none, &t, &err), FTI_ERR_INVALID);
    a.n_tokens = 40;
    a.token_bytes = 3;
    CHECK_EQ_INT(fti_trainer_create(&c, NULL, &o, a, none, &t, &err), FTI_ERR_INVALID);
    a.token_bytes = 2;
    o.ctx = 17; /* > context_len */
    CHECK_EQ_INT(fti_trainer_create(&c, NULL, &o, a, none, &t, &err), FTI_ERR_INVALID);
    CHECK(t == NULL);
#endif
}

/* LoRA: adapter gradients against finite differences, base frozen, merge equals the trainer's
 * weights, loss goes down. */
FTI_TEST(train_lora) {
#ifndef FTI_NO_TRAIN
    uint16_t *tr = fti_ttr_tokens(3000, 1);
    fti_model_config c = fti_ttr_config();
    fti_train_opts o = fti_ttr_opts();
    fti_trainer *t = NULL;
    fti_token_array a, none;
    fti_error err;
    float *base, *merged;
    size_t n, na, i, k;
    const float *h = NULL;
    size_t nh = 0;
    fti_rng rng;
    REQUIRE(tr);
    REQUIRE(fti_model_config_resolve(&c, NULL) == FTI_OK);
    n = fti_model_n_params(&c);
    base = (float *)fti_malloc(n * sizeof(float));
    merged = (float *)fti_malloc(n * sizeof(float));
    REQUIRE(base && merged);
    fti_model_init_params(&c, base, 5);
    /* a frozen random embedding of std 0.02 caps the logits' range (tied output, final norm):
     * widen it so that the adapters have room to lower the loss */
    for (i = 0; i < (size_t)c.vocab_size * c.dim; i++) base[i] *= 10.0f;
    memset(&none, 0, sizeof(none));
    a.data = tr;
    a.n_tokens = 3000;
    a.token_bytes = 2;
    o.lora_rank = 3;
    o.lr = 1e-2f;
    o.eval_every = 0;
    o.grad_accum = 1;
    REQUIRE(fti_trainer_create(&c, base, &o, a, none, &t, &err) == FTI_OK);
    na = fti_lora_n_params(&c, 3);
    CHECK_EQ_INT(na, 2 * 3 * ((32 + 32) + (16 + 32) * 2 + (32 + 32) + (56 + 32) * 3));
    {   /* a rank past the smaller side of an adapted matrix (attn_k: 16 x 32) is refused */
        fti_trainer *t2 = NULL;
        o.lora_rank = 17;
        CHECK_EQ_INT(fti_trainer_create(&c, base, &o, a, none, &t2, &err), FTI_ERR_INVALID);
        CHECK(t2 == NULL && strstr(err.msg, "rank 17 is more than") && strstr(err.msg, "(16)"));
        o.lora_rank = 16;
        CHECK_OK(fti_trainer_create(&c, base, &o, a, none, &t2, &err));
        fti_trainer_free(t2);
        o.lora_rank = 3;
    }
    /* gradient check: random B so dA is non-zero; loss on one sampled batch */
    fti_rng_seed(&rng, 11, 1);
    for (i = 0; i < na; i++) t->w[i] = 0.3f * fti_rng_normal(&rng);
    fti__train_sample(t);
    {
        double l0;
        fti__lora_apply(&t->cfg, t->params, t->base, t->w, 3, t->o.lora_alpha, NULL);
        memset(t->grads, 0, n * sizeof(float));
        REQUIRE(fti_model_forward(&c, t->params, t->acts, t->tok, t->tgt, 3, 16, NULL, &l0) ==
                FTI_OK);
        REQUIRE(fti_model_backward(&c, t->params, t->acts, t->grads, 1.0f, NULL) == FTI_OK);
        fti__lora_grads(t);
        for (k = 0; k < 12; k++) {
            size_t idx = fti_rng_below(&rng, (uint32_t)na);
            float keep = t->w[idx], hs[4] = {2e-2f, -2e-2f, 1e-2f, -1e-2f};
            double l[4], fd;
            int q;
            for (q = 0; q < 4; q++) {
                t->w[idx] = keep + hs[q];
                fti__lora_apply(&t->cfg, t->params, t->base, t->w, 3, t->o.lora_alpha, NULL);
                fti_model_forward(&c, t->params, t->acts, t->tok, t->tgt, 3, 16, NULL, &l[q]);
            }
            t->w[idx] = keep;
            /* Richardson extrapolation of the central differences at h and h/2 */
            fd = (4.0 * (l[2] - l[3]) / 2e-2 - (l[0] - l[1]) / 4e-2) / 3.0;
            CHECK_NEAR(t->g[idx], fd, 2e-3, 3e-2);
        }
    }
    fti_trainer_free(t);
    /* training: base untouched, loss falls, merge reproduces the trainer's weights exactly */
    REQUIRE(fti_trainer_create(&c, base, &o, a, none, &t, &err) == FTI_OK);
    while (!fti_trainer_done(t)) REQUIRE(fti_trainer_step(t, NULL, &err) == FTI_OK);
    fti_trainer_history(t, &h, &nh, NULL, NULL, NULL);
    CHECK(h[nh - 1] < h[0] - 0.2f);
    {
        uint32_t rank = 0;
        float alpha = 0.0f;
        const float *ad = fti_trainer_lora(t, &rank, &alpha);
        REQUIRE(ad);
        CHECK_EQ_INT(rank, 3);
        CHECK(alpha == 6.0f);
        memcpy(merged, base, n * sizeof(float));
        CHECK_OK(fti_lora_merge(&c, merged, ad, rank, alpha));
        CHECK(memcmp(merged, fti_trainer_params(t), n * sizeof(float)) == 0);
        CHECK(memcmp(base, t->base, n * sizeof(float)) == 0);
    }
    {   /* its checkpoint resumed by another rank, or by full training: refused, said so */
        char ck[512];
        fti_trainer *t2 = NULL;
        snprintf(ck, sizeof ck, "%s", fti_test_tmp("lora.ckpt"));
        REQUIRE(fti_trainer_save(t, ck, &err) == FTI_OK);
        o.lora_rank = 4;
        REQUIRE(fti_trainer_create(&c, base, &o, a, none, &t2, &err) == FTI_OK);
        CHECK_EQ_INT(fti_trainer_resume(t2, ck, &err), FTI_ERR_MISMATCH);
        CHECK(strstr(err.msg, "(another LoRA rank)") != NULL);
        fti_trainer_free(t2);
        o.lora_rank = 0;
        REQUIRE(fti_trainer_create(&c, base, &o, a, none, &t2, &err) == FTI_OK);
        CHECK_EQ_INT(fti_trainer_resume(t2, ck, &err), FTI_ERR_MISMATCH);
        CHECK(strstr(err.msg, "checkpoint is of a LoRA run, this is full training") != NULL);
        fti_trainer_free(t2);
        o.lora_rank = 3;
    }
    fti_trainer_free(t);
    fti_free(base);
    fti_free(merged);
    fti_free(tr);
#endif
}

FTI_TEST(train_registry) {
#ifndef FTI_NO_TRAIN
    char home[1024], id1[17], id2[17], got[17];
    fti_buf b;
    fti_error err;
    fti_json_doc *doc = NULL;
    const char *card = "{\"dataset\": \"v1\", \"tokenizer\": \"abc\", \"parent\": null, "
                       "\"val_loss\": 2.5, \"tokens\": 1000, \"id\": \"spoofed\", "
                       "\"config\": {\"dim\": 32, \"list\": [1, 2.5, \"x\"]}}";
    snprintf(home, sizeof home, "%s", fti_test_tmp("home")); /* fti_test_tmp's slots rotate */
    REQUIRE(fti_test_write_file(fti_test_tmp("a.gguf"), "GGUF model one", 14) == 0);
    REQUIRE(fti_test_write_file(fti_test_tmp("b.gguf"), "GGUF model two", 14) == 0);
    memset(&b, 0, sizeof(b));
    CHECK_OK(fti_registry_list(home, &b, &err)); /* empty, no directory yet */
    CHECK_EQ_INT(b.len, 0);
    REQUIRE(fti_registry_add(home, fti_test_tmp("a.gguf"), card, strlen(card), id1, &err) ==
            FTI_OK);
    REQUIRE(fti_registry_add(home, fti_test_tmp("b.gguf"), "{}", 2, id2, &err) == FTI_OK);
    CHECK_EQ_INT(strlen(id1), 16);
    CHECK(strcmp(id1, id2) != 0);
    CHECK_EQ_INT(fti_registry_add(home, fti_test_tmp("a.gguf"), "[1]", 3, got, &err),
                 FTI_ERR_INVALID);
    b.len = 0;
    CHECK_OK(fti_registry_card(home, id1, &b, &err));
    REQUIRE(fti_json_parse(b.data, b.len, NULL, &doc, NULL, &err) == FTI_OK);
    {
        const fti_json *r = fti_json_root(doc);
        unsigned char d[32];
        char hex[65];
        fti_sha256_buf("GGUF model one", 14, d);
        fti_sha256_hex(d, hex);
        CHECK_EQ_STR(fti_json_get_str(r, "id", ""), id1);
        CHECK_EQ_STR(fti_json_get_str(r, "sha256", ""), hex);
        CHECK(strncmp(hex, id1, 16) == 0);
        CHECK_EQ_STR(fti_json_get_str(r, "dataset", ""), "v1");
        CHECK(fti_json_get_num(r, "val_loss", 0) == 2.5);
        CHECK_EQ_INT(fti_json_get_int(fti_json_get(r, "config"), "dim", 0), 32);
        CHECK(fti_path_exists(fti_json_get_str(r, "path", "")));
    }
    fti_json_free(doc);
    b.len = 0;
    CHECK_OK(fti_registry_list(home, &b, &err));
    CHECK_EQ_INT(b.len, 34);
    /* aliases: promote, move, roll back */
    CHECK_EQ_INT(fti_registry_rollback(home, "production", got, &err), FTI_ERR_NOT_FOUND);
    CHECK_OK(fti_registry_promote(home, id1, "production", &err));
    CHECK_OK(fti_registry_resolve(home, "production", got, &err));
    CHECK_EQ_STR(got, id1);
    CHECK_OK(fti_registry_promote(home, id2, "production", &err));
    CHECK_OK(fti_registry_resolve(home, "production", got, &err));
    CHECK_EQ_STR(got, id2);
    CHECK_OK(fti_registry_rollback(home, "production", got, &err));
    CHECK_EQ_STR(got, id1);
    CHECK_OK(fti_registry_resolve(home, "production", got, &err));
    CHECK_EQ_STR(got, id1);
    CHECK_EQ_INT(fti_registry_rollback(home, "production", got, &err), FTI_ERR_NOT_FOUND);
    CHECK_EQ_INT(fti_registry_promote(home, id1, "bad/alias", &err), FTI_ERR_INVALID);
    CHECK_EQ_INT(fti_registry_promote(home, "ffffffffffffffff", "staging", &err),
                 FTI_ERR_NOT_FOUND);
    /* promote_if: only over the target the caller read (an unset alias: NULL or "") */
    CHECK_EQ_INT(fti_registry_promote_if(home, id2, "production", id2, &err), FTI_ERR_MISMATCH);
    CHECK(strstr(err.msg, id1) != NULL); /* names the alias's target now */
    CHECK_EQ_INT(fti_registry_promote_if(home, id2, "production", NULL, &err), FTI_ERR_MISMATCH);
    CHECK_OK(fti_registry_resolve(home, "production", got, &err));
    CHECK_EQ_STR(got, id1);
    CHECK_OK(fti_registry_promote_if(home, id2, "production", id1, &err));
    CHECK_OK(fti_registry_resolve(home, "production", got, &err));
    CHECK_EQ_STR(got, id2);
    CHECK_OK(fti_registry_rollback(home, "production", got, &err));
    CHECK_EQ_INT(fti_registry_promote_if(home, id2, "candidate", id1, &err), FTI_ERR_MISMATCH);
    CHECK_OK(fti_registry_promote_if(home, id2, "candidate", "", &err));
    CHECK_OK(fti_registry_resolve(home, "candidate", got, &err));
    CHECK_EQ_STR(got, id2);
    {
        char prefix[8];
        memcpy(prefix, id2, 7);
        prefix[7] = 0;
        CHECK_OK(fti_registry_resolve(home, prefix, got, &err));
        CHECK_EQ_STR(got, id2);
    }
    CHECK_EQ_INT(fti_registry_resolve(home, "nothing", got, &err), FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, home) != NULL && strstr(err.msg, "'nothing'") != NULL);
    /* a damaged card is named (not "offset 5: ..." of no file, not "no model"); promote refuses
     * the model */
    {
        char cpath[1200];
        snprintf(cpath, sizeof cpath, "%s/models/%s/card.json", home, id2);
        REQUIRE(fti_test_write_file(cpath, "{\"id\": ", 7) == 0);
        b.len = 0;
        CHECK_EQ_INT(fti_registry_card(home, id2, &b, &err), FTI_ERR_FORMAT);
        CHECK(strstr(err.msg, cpath) != NULL && strstr(err.msg, "damaged model card") != NULL);
        CHECK_EQ_INT(fti_registry_resolve(home, id2, got, &err), FTI_ERR_FORMAT);
        CHECK(strstr(err.msg, cpath) != NULL);
        CHECK_EQ_INT(fti_registry_promote(home, id1, "production", &err), FTI_OK);
        REQUIRE(fti_test_write_file(cpath, "[1, 2]", 6) == 0);
        CHECK_EQ_INT(fti_registry_card(home, id2, &b, &err), FTI_ERR_FORMAT);
        CHECK(strstr(err.msg, "not a JSON object") != NULL);
        REQUIRE(fti_test_write_file(cpath, "{}", 2) == 0); /* valid, but not id2's: no model */
        CHECK_EQ_INT(fti_registry_resolve(home, id2, got, &err), FTI_ERR_NOT_FOUND);
    }
    { /* a history of 200,000 entries is read in linear time (it took minutes: each entry was
       * found by walking the array from its start) */
        fti_buf j;
        char apath[1200];
        size_t k;
        uint64_t t0;
        memset(&j, 0, sizeof(j));
        fti_buf_printf(&j, "{\"production\": {\"id\": \"%s\", \"history\": [", id1);
        for (k = 0; k < 200000; k++) fti_buf_printf(&j, "\"%s\",", id2);
        fti_buf_printf(&j, "\"%s\"]}}", id2);
        snprintf(apath, sizeof apath, "%s/models/aliases.json", home);
        REQUIRE(!j.oom && fti_test_write_file(apath, j.data, j.len) == 0);
        fti_buf_free(&j);
        t0 = fti_time_ns();
        CHECK_OK(fti_registry_rollback(home, "production", got, &err));
        CHECK_EQ_STR(got, id2);
        CHECK(fti_time_ns() - t0 < 20000000000ull);
    }
    /* a hostile alias file is an error, not a crash */
    REQUIRE(fti_test_write_file(fti_test_tmp("home/models/aliases.json"), "{\"x\": [", 7) == 0);
    CHECK(fti_registry_resolve(home, "x", got, &err) != FTI_OK);
    fti_buf_free(&b);
#endif
}

#ifndef FTI_NO_TRAIN
#ifndef FTI_NO_STORE
/* Runs a shell command; returns its exit status (-1 if it did not exit). */
static int fti_ttr_sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The last whitespace-separated word of a file, into out (at most n-1 chars). */
static int fti_ttr_last_word(const char *path, char *out, size_t n) {
    void *data = NULL;
    size_t len = 0, e;
    const char *s;
    if (fti_file_read(path, 0, &data, &len, NULL) != FTI_OK) return 0;
    s = (const char *)data;
    while (len && (s[len - 1] == '\n' || s[len - 1] == ' ')) len--;
    e = len;
    while (e && s[e - 1] != ' ' && s[e - 1] != '\n') e--;
    if (len - e + 1 > n) {
        fti_free(data);
        return 0;
    }
    memcpy(out, s + e, len - e);
    out[len - e] = 0;
    fti_free(data);
    return 1;
}
#endif
#endif

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* Starts build/fti-train with args (NULL-terminated; --home home first), its stderr into
 * err_path; once it has started training (its start line is there) sends sig, and returns its
 * exit status (-1 if it did not start within 60 s or did not exit). */
static int fti_ttr_train_signal(const char *home, const char *const *args, const char *err_path,
                                int sig) {
    char *argv[32];
    size_t n = 0, i;
    pid_t pid;
    int st = 0, k;
    argv[n++] = (char *)"build/fti-train";
    argv[n++] = (char *)"--home";
    argv[n++] = (char *)home;
    for (i = 0; args[i] && n < 31; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        FILE *e = freopen(err_path, "w", stderr);
        FILE *o = freopen("/dev/null", "w", stdout);
        signal(SIGINT, SIG_DFL); /* (as from a terminal) */
        signal(SIGTERM, SIG_DFL);
        if (e && o) execv(argv[0], argv);
        _exit(127);
    }
    for (k = 0; k < 600; k++) { /* "fti-train: tiny model, ... run <key>": the loop is next */
        void *t = NULL;
        size_t len = 0;
        struct timespec ts;
        int started = fti_file_read(err_path, 0, &t, &len, NULL) == FTI_OK &&
                      strstr((const char *)t, ", run ") != NULL;
        fti_free(t);
        if (started) break;
        if (waitpid(pid, &st, WNOHANG) == pid) return -1; /* it exited before training */
        ts.tv_sec = 0;
        ts.tv_nsec = 100000000;
        nanosleep(&ts, NULL);
    }
    if (k == 600) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
    }
    {
        struct timespec ts;
        ts.tv_sec = 0;
        ts.tv_nsec = 200000000; /* a few steps */
        nanosleep(&ts, NULL);
    }
    kill(pid, sig);
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
#endif

/* The programs' interface: fti-train prints the model id last, fti-registry show --json has the
 * card fields, the model file is a llama GGUF of the trained config, promote/rollback, resume,
 * fine-tuning records the parent (skipped when the programs are not built). */
FTI_TEST(train_cli) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char cmd[4096], home[1024], out[1024], id[64], id2[64];
    const char *paths[1];
    char version[65];
    fti_ingest_opts io;
    fti_error err;
    fti_json_doc *doc = NULL;
    void *text = NULL;
    size_t len = 0;
    if (!fti_path_exists("build/fti-train") || !fti_path_exists("build/fti-registry")) {
        fprintf(stderr, "    (build/fti-train or build/fti-registry not built: skipped)\n");
        return;
    }
    snprintf(home, sizeof home, "%s", fti_test_tmp("ws"));
    snprintf(out, sizeof out, "%s", fti_test_tmp("out.txt"));
    memset(&io, 0, sizeof(io));
    io.vocab_size = 300;
    paths[0] = fti_test_corpus_jsonl();
    if (!fti_path_exists(paths[0])) {
        fprintf(stderr, "    (%s missing: skipped)\n", paths[0]);
        return;
    }
    REQUIRE(fti_store_ingest(home, paths, 1, &io, version, NULL, &err) == FTI_OK);
    snprintf(cmd, sizeof cmd,
             "build/fti-train --home '%s' --preset tiny --steps 12 --batch 4 --eval-every 6 "
             "--checkpoint-every 5 --threads 2 --quiet > '%s'", home, out);
    REQUIRE(fti_ttr_sh(cmd) == 0);
    REQUIRE(fti_ttr_last_word(out, id, sizeof id));
    CHECK_EQ_INT(strlen(id), 16);
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show %s --json > '%s'", home, id,
             out);
    REQUIRE(fti_ttr_sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    REQUIRE(fti_json_parse((const char *)text, len, NULL, &doc, NULL, &err) == FTI_OK);
    {
        const fti_json *c = fti_json_root(doc);
        fti_gguf *g = NULL;
        fti_model_config cfg, want;
        CHECK_EQ_STR(fti_json_get_str(c, "id", ""), id);
        CHECK_EQ_STR(fti_json_get_str(c, "dataset", ""), version);
        CHECK_EQ_INT(strlen(fti_json_get_str(c, "tokenizer", "")), 64);
        CHECK_EQ_INT(strlen(fti_json_get_str(c, "sha256", "")), 64);
        CHECK(fti_json_get(c, "parent") && fti_json_get(c, "parent")->type == FTI_JSON_NULL);
        CHECK_EQ_INT(fti_json_get_int(c, "tokens", 0), 12 * 4 * 64);
        CHECK(fti_json_get_num(c, "val_loss", 0) > 0.5);
        REQUIRE(fti_gguf_open(&g, fti_json_get_str(c, "path", ""), NULL, &err) == FTI_OK);
        CHECK_OK(fti_gguf_llama_config(g, &cfg, 0, &err));
        memset(&want, 0, sizeof(want));
        want.vocab_size = cfg.vocab_size;
        CHECK_OK(fti_model_preset("tiny", &want, &err));
        CHECK_EQ_INT(cfg.dim, want.dim);
        CHECK_EQ_INT(cfg.n_layers, want.n_layers);
        CHECK_EQ_INT(cfg.n_kv_heads, want.n_kv_heads);
        CHECK(cfg.vocab_size >= 256 && cfg.vocab_size <= 300);
        fti_gguf_close(g);
        fti_json_free(doc);
        fti_free(text);
    }
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' promote %s production > /dev/null",
             home, id);
    CHECK(fti_ttr_sh(cmd) == 0);
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' rollback production > /dev/null 2>&1",
             home);
    CHECK(fti_ttr_sh(cmd) != 0); /* nothing earlier to roll back to */
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' list > /dev/null", home);
    CHECK(fti_ttr_sh(cmd) == 0);
    /* fine-tune the production model: the card names its parent; lineage walks back to it */
    snprintf(cmd, sizeof cmd, "build/fti-train --home '%s' --from production --steps 3 --batch 2 "
             "--quiet > '%s'", home, out);
    REQUIRE(fti_ttr_sh(cmd) == 0);
    REQUIRE(fti_ttr_last_word(out, id2, sizeof id2));
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' lineage %s > '%s'", home, id2, out);
    CHECK(fti_ttr_sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, id) != NULL);
    CHECK(strstr((const char *)text, "devils_dictionary.jsonl") != NULL);
    fti_free(text);
    /* --resume of the finished run restarts from its final checkpoint and registers again */
    snprintf(cmd, sizeof cmd,
             "build/fti-train --home '%s' --preset tiny --steps 12 --batch 4 --eval-every 6 "
             "--checkpoint-every 5 --threads 1 --resume --quiet > '%s'", home, out);
    CHECK(fti_ttr_sh(cmd) == 0);
    /* ... with the same id: the file holds no creation time, and 1 thread = 2 threads */
    CHECK(fti_ttr_last_word(out, id2, sizeof id2));
    CHECK_EQ_STR(id2, id);
    /* ... reporting the finished run's last train loss, not a step that never ran */
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "train loss ") != NULL);
    CHECK(strstr((const char *)text, "train loss 0.0000") == NULL);
    fti_free(text);
    /* the same command without --resume: the run is finished, its model registered; it is
     * not trained again over it unless --restart (which gives the same model) */
    snprintf(cmd, sizeof cmd,
             "build/fti-train --home '%s' --preset tiny --steps 12 --batch 4 --eval-every 6 "
             "--checkpoint-every 5 --threads 1 --quiet > /dev/null 2> '%s'", home, out);
    CHECK_EQ_INT(fti_ttr_sh(cmd), 1);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "is finished: its model ") != NULL);
    CHECK(strstr((const char *)text, id) != NULL);
    CHECK(strstr((const char *)text, "--restart trains it again") != NULL);
    fti_free(text);
    snprintf(cmd, sizeof cmd,
             "build/fti-train --home '%s' --preset tiny --steps 12 --batch 4 --eval-every 6 "
             "--checkpoint-every 5 --threads 1 --restart --quiet > '%s'", home, out);
    CHECK(fti_ttr_sh(cmd) == 0);
    CHECK(fti_ttr_last_word(out, id2, sizeof id2));
    CHECK_EQ_STR(id2, id);
    /* Ctrl-C: the step under way finishes, the checkpoint is saved, exit 130 with one line
     * saying so; the same command is then refused (naming the step), --resume continues (here
     * to a token limit already reached: it registers at once); SIGTERM is 143 */
    {
        static const char *const run_args[] = {"--preset", "tiny", "--steps", "1000000",
                                               "--batch", "4", "--checkpoint-every", "1000000",
                                               NULL};
        static const char *const resume_args[] = {"--preset", "tiny", "--steps", "1000000",
                                                  "--batch", "4", "--checkpoint-every",
                                                  "1000000", "--resume", NULL};
        const char *at;
        unsigned long long step = 0;
        char runs[1100];
        CHECK_EQ_INT(fti_ttr_train_signal(home, run_args, out, SIGINT), 130);
        REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
        at = strstr((const char *)text, "fti-train: interrupted at step ");
        CHECK(at != NULL);
        if (at) {
            step = strtoull(at + strlen("fti-train: interrupted at step "), NULL, 10);
            CHECK(step > 0);
            CHECK(strstr(at, " of 1000000: checkpoint saved in ") != NULL);
            CHECK(strstr(at, "; run the same command with --resume to continue\n") != NULL);
        }
        fti_free(text);
        snprintf(cmd, sizeof cmd, "build/fti-train --home '%s' --preset tiny --steps 1000000 "
                 "--batch 4 --checkpoint-every 1000000 --quiet > /dev/null 2> '%s'", home, out);
        CHECK_EQ_INT(fti_ttr_sh(cmd), 1);
        REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
        snprintf(runs, sizeof runs, "has a checkpoint at step %llu of 1000000 (", step);
        CHECK(strstr((const char *)text, runs) != NULL);
        CHECK(strstr((const char *)text, "--resume continues it, --restart starts it over") !=
              NULL);
        fti_free(text);
        CHECK_EQ_INT(fti_ttr_train_signal(home, resume_args, out, SIGTERM), 143);
        REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
        CHECK(strstr((const char *)text, "(resumed)") != NULL);
        CHECK(strstr((const char *)text, "fti-train: interrupted at step ") != NULL);
        fti_free(text);
        snprintf(cmd, sizeof cmd, "build/fti-train --home '%s' --preset tiny --steps 1000000 "
                 "--batch 4 --checkpoint-every 1000000 --resume --max-tokens 1 --quiet > '%s'",
                 home, out);
        CHECK_EQ_INT(fti_ttr_sh(cmd), 0);
        CHECK(fti_ttr_last_word(out, id2, sizeof id2) && strlen(id2) == 16);
    }
    /* LoRA: the adapter is registered too, and lineage shows model -> adapter -> base */
    snprintf(cmd, sizeof cmd, "build/fti-train --home '%s' --from %s --lora 2 --steps 2 --batch 2 "
             "--quiet > '%s'", home, id, out);
    REQUIRE(fti_ttr_sh(cmd) == 0);
    REQUIRE(fti_ttr_last_word(out, id2, sizeof id2));
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "\nadapter ") != NULL);
    {
        const char *at = strstr((const char *)text, "\nadapter ");
        char aid[17] = "";
        if (at) snprintf(aid, sizeof aid, "%.16s", at + 9);
        fti_free(text);
        /* an adapter's card has its run's train loss (it had none, shown as "-"), and no
         * figure is a made-up 0 */
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show %s > '%s'", home, aid,
                 out);
        CHECK(fti_ttr_sh(cmd) == 0);
        REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
        CHECK(strstr((const char *)text, "train loss ") != NULL);
        CHECK(strstr((const char *)text, "train loss -\n") == NULL);
        CHECK(strstr((const char *)text, "0.0000") == NULL);
    }
    fti_free(text);
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' lineage %s > '%s'", home, id2, out);
    CHECK(fti_ttr_sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "merged from the LoRA adapter") != NULL);
    CHECK(strstr((const char *)text, "\n  adapter ") != NULL);
    CHECK(strstr((const char *)text, id) != NULL);
    fti_free(text);
    snprintf(cmd, sizeof cmd, "build/fti-train --home '%s' --preset nope --quiet > /dev/null 2>&1",
             home);
    CHECK(fti_ttr_sh(cmd) != 0);
    /* --resume of a run that never saved a checkpoint (here: other options) fails, names the
     * checkpoint it looked for and makes no run directory; it does not start afresh */
    snprintf(cmd, sizeof cmd, "build/fti-train --home '%s' --preset tiny --steps 13 --batch 4 "
             "--resume --quiet > /dev/null 2> '%s'", home, out);
    CHECK_EQ_INT(fti_ttr_sh(cmd), 1);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    {
        const char *at = strstr((const char *)text, "nothing to resume: no checkpoint ");
        const char *end = at ? strstr(at, "/checkpoint.bin (") : NULL;
        CHECK(at && end);
        if (at && end) {
            char dir[1024];
            at += strlen("nothing to resume: no checkpoint ");
            snprintf(dir, sizeof dir, "%.*s", (int)(end - at), at);
            CHECK(strstr(dir, "/runs/") != NULL);
            CHECK(!fti_path_exists(dir));
        }
    }
    fti_free(text);
    /* a size out of range is named with its range (not the trainer's "ctx > context length") */
    snprintf(cmd, sizeof cmd, "build/fti-train --home '%s' --batch 100000000 --quiet > /dev/null "
             "2> '%s'", home, out);
    CHECK_EQ_INT(fti_ttr_sh(cmd), 2);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "--batch takes a whole number from 1 to 1048576") != NULL);
    fti_free(text);
    /* options refused with exit 2 and a reason, where they were ignored or misnamed */
    {
        static const char *const bad[][2] = {
            {"--bogus", "unknown option --bogus"},
            {"stray", "unknown argument stray"},
            {"--lora-alpha 4", "--lora-alpha needs --lora"},
            {"--from production --lora 2 --keep-best", "--keep-best does not work with --lora"},
            {"--from production --dim 32", "keeps that model's configuration"},
            {"--from production --preset small", "keeps that model's configuration"},
            {"--eval-every 0", "--eval-every takes a whole number from 1"},
            {"--checkpoint-every 0", "--checkpoint-every takes a whole number from 1"},
            /* 0 and "" were the defaults, silently */
            {"--dim 0", "--dim takes a whole number from 1 to 65535, not '0'"},
            {"--layers 0", "--layers takes a whole number from 1"},
            {"--heads 0", "--heads takes a whole number from 1"},
            {"--kv-heads 0", "--kv-heads takes a whole number from 1"},
            {"--hidden 0", "--hidden takes a whole number from 1"},
            {"--context 0", "--context takes a whole number from 1"},
            {"--ctx 0", "--ctx takes a whole number from 1"},
            {"--steps 0", "--steps takes a whole number from 1"},
            {"--batch 0", "--batch takes a whole number from 1"},
            {"--accum 0", "--accum takes a whole number from 1"},
            {"--max-tokens 0", "--max-tokens takes a whole number from 1"},
            {"--warmup 0", "--warmup takes a whole number from 1"},
            {"--lr 0", "bad value for --lr: 0"},
            {"--max-seconds 0", "bad value for --max-seconds: 0"},
            {"--dataset ''", "--dataset needs a value, not an empty string"},
            {"--preset ''", "--preset needs a value, not an empty string"},
            {"--resume --restart", "not both"},
            {"--steps 10 --warmup 10", "--warmup 10 is not less than --steps 10"},
            {"--name \"$(printf 'a\\nb')\"", "--name wants 1-200 bytes of text on one line"},
            {"--name ''", "--name wants 1-200 bytes"}};
        size_t k;
        for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            snprintf(cmd, sizeof cmd, "build/fti-train --home '%s' %s --quiet > /dev/null "
                     "2> '%s'", home, bad[k][0], out);
            CHECK_EQ_INT(fti_ttr_sh(cmd), 2);
            REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
            if (!strstr((const char *)text, bad[k][1]))
                fprintf(stderr, "    %s: %.*s", bad[k][0], (int)len, (const char *)text);
            CHECK(strstr((const char *)text, bad[k][1]) != NULL);
            fti_free(text);
        }
        /* fti-registry says what was wrong before its usage */
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' shwo x > /dev/null 2> '%s'",
                 home, out);
        CHECK_EQ_INT(fti_ttr_sh(cmd), 2);
        REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
        CHECK(strncmp((const char *)text, "fti-registry: unknown command 'shwo'\n", 37) == 0);
        fti_free(text);
    }
#endif
}
