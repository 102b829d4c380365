/* === train: AdamW, schedule, trainer, checkpoints, LoRA, registry === */
#include "07_train.h"
#include <math.h>
#include <string.h>

#ifndef FTI_NO_TRAIN

/* --- AdamW and the schedule --------------------------------------------------------------------- */

static fti_adamw_opts fti__train_adamw_resolve(const fti_adamw_opts *o) {
    fti_adamw_opts r;
    memset(&r, 0, sizeof(r));
    if (o) r = *o;
    if (r.beta1 == 0.0f) r.beta1 = 0.9f;
    if (r.beta2 == 0.0f) r.beta2 = 0.95f;
    if (r.eps == 0.0f) r.eps = 1e-8f;
    if (r.weight_decay == 0.0f) r.weight_decay = 0.1f;
    if (r.weight_decay < 0.0f) r.weight_decay = 0.0f;
    return r;
}

typedef struct fti__train_adamw_ctx {
    fti_adamw_opts o;
    float *p;
    const float *g;
    float *m, *v;
    const unsigned char *decay;
    float lr, bc1, bc2;
} fti__train_adamw_ctx;

static void fti__train_adamw_task(void *vctx, size_t i0, size_t i1, int thread) {
    const fti__train_adamw_ctx *c = (const fti__train_adamw_ctx *)vctx;
    size_t i;
    float b1 = c->o.beta1, b2 = c->o.beta2, wd = c->o.weight_decay, lr = c->lr;
    (void)thread;
    for (i = i0; i < i1; i++) {
        float g = c->g[i], p = c->p[i];
        float m = b1 * c->m[i] + (1.0f - b1) * g;
        float v = b2 * c->v[i] + (1.0f - b2) * g * g;
        if (!c->decay || c->decay[i]) p -= lr * wd * p;
        c->m[i] = m;
        c->v[i] = v;
        c->p[i] = p - lr * (m / c->bc1) / (sqrtf(v / c->bc2) + c->o.eps);
    }
}

FTIDEF void fti_adamw_update(const fti_adamw_opts *opts, float *params, const float *grads,
                             float *m, float *v, const unsigned char *decay, size_t n, float lr,
                             uint64_t t, fti_pool *pool) {
    fti__train_adamw_ctx c;
    if (!params || !grads || !m || !v || n == 0) return;
    c.o = fti__train_adamw_resolve(opts);
    c.p = params;
    c.g = grads;
    c.m = m;
    c.v = v;
    c.decay = decay;
    c.lr = lr;
    c.bc1 = (float)(1.0 - pow((double)c.o.beta1, (double)(t ? t : 1)));
    c.bc2 = (float)(1.0 - pow((double)c.o.beta2, (double)(t ? t : 1)));
    fti_pool_for(pool, n, 4096, fti__train_adamw_task, &c);
}

FTIDEF double fti_lr_schedule(uint64_t step, uint64_t warmup, uint64_t total_steps, double lr,
                              double min_lr_frac) {
    double prog, lo = lr * min_lr_frac;
    if (step < warmup) return lr * (double)(step + 1) / (double)warmup;
    prog = (double)(step - warmup) / (double)(total_steps > warmup + 1 ? total_steps - warmup : 1);
    if (prog > 1.0) prog = 1.0;
    return lo + 0.5 * (lr - lo) * (1.0 + cos(3.14159265358979323846 * prog));
}

/* --- token arrays ------------------------------------------------------------------------------- */

static uint32_t fti__train_token(const fti_tokens *a, size_t i) {
    const unsigned char *p = (const unsigned char *)a->data;
    if (a->token_bytes == 2) {
        p += 2 * i;
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
    }
    return fti_load_u32(p + 4 * i);
}

static fti_result fti__train_check_tokens(fti_tokens *a, const char *what, size_t min_n,
                                          uint32_t vocab, fti_error *err) {
    size_t i;
    if (a->token_bytes == 0) a->token_bytes = 4;
    if (a->token_bytes != 2 && a->token_bytes != 4)
        return fti_error_set(err, FTI_ERR_INVALID, "%s tokens: %d bytes per token (2 or 4)",
                             what, a->token_bytes);
    if (a->n_tokens == 0) return FTI_OK;
    if (!a->data || a->n_tokens < min_n)
        return fti_error_set(err, FTI_ERR_INVALID,
                             "%s tokens: %lu tokens, need at least %lu (context + 1)", what,
                             (unsigned long)a->n_tokens, (unsigned long)min_n);
    for (i = 0; i < a->n_tokens; i++) {
        uint32_t id = fti__train_token(a, i);
        if (id >= vocab)
            return fti_error_set(err, FTI_ERR_FORMAT,
                                 "%s tokens: id %lu at position %lu >= vocabulary size %lu", what,
                                 (unsigned long)id, (unsigned long)i, (unsigned long)vocab);
    }
    return FTI_OK;
}

/* --- LoRA layout -------------------------------------------------------------------------------- */

static const fti_tensor_kind fti__lora_kinds[7] = {
    FTI_TENSOR_ATTN_Q,   FTI_TENSOR_ATTN_K,  FTI_TENSOR_ATTN_V,   FTI_TENSOR_ATTN_OUTPUT,
    FTI_TENSOR_FFN_GATE, FTI_TENSOR_FFN_UP,  FTI_TENSOR_FFN_DOWN};

FTIDEF size_t fti_lora_n_tensors(const fti_model_config *cfg) {
    return cfg ? (size_t)cfg->n_layers * 7 : 0;
}

FTIDEF size_t fti_lora_tensor_get(const fti_model_config *cfg, uint32_t rank, size_t i,
                              fti_lora_tensor *out) {
    size_t l, j, k, off = 0;
    fti_tensor_info ti;
    if (!cfg || i >= fti_lora_n_tensors(cfg)) return 0;
    for (k = 0; k <= i; k++) {
        l = k / 7;
        j = k % 7;
        /* tensor index in the layout: 1 + l*9 + (kind - ATTN_NORM) */
        fti_model_tensor_info(cfg, 1 + l * 9 + (size_t)(fti__lora_kinds[j] - FTI_TENSOR_ATTN_NORM),
                              &ti);
        if (k == i) {
            if (out) {
                out->tensor = 1 + l * 9 + (size_t)(fti__lora_kinds[j] - FTI_TENSOR_ATTN_NORM);
                out->rows = ti.rows;
                out->cols = ti.cols;
                out->a_offset = off;
                out->b_offset = off + (size_t)rank * ti.cols;
            }
            return (size_t)rank * (ti.rows + ti.cols);
        }
        off += (size_t)rank * (ti.rows + ti.cols);
    }
    return 0;
}

FTIDEF size_t fti_lora_n_params(const fti_model_config *cfg, uint32_t rank) {
    size_t i, n = 0, nt = fti_lora_n_tensors(cfg);
    for (i = 0; i < nt; i++) n += fti_lora_tensor_get(cfg, rank, i, NULL);
    return n;
}

/* dst(out,in) = base(out,in) + s * B(out,r) . A(r,in) for every adapted tensor. */
static void fti__lora_apply(const fti_model_config *cfg, float *dst, const float *base,
                            const float *ad, uint32_t rank, float alpha, fti_pool *pool) {
    size_t i, nt = fti_lora_n_tensors(cfg), j, n;
    float s = alpha / (float)rank;
    for (i = 0; i < nt; i++) {
        fti_lora_tensor lt;
        fti_tensor_info ti;
        float *w;
        fti_lora_tensor_get(cfg, rank, i, &lt);
        fti_model_tensor_info(cfg, lt.tensor, &ti);
        w = dst + ti.offset;
        n = lt.rows * lt.cols;
        /* W = s * B . A, then + base */
        fti__model_mm(pool, 0, lt.rows, lt.cols, rank, ad + lt.b_offset, rank, ad + lt.a_offset,
                      lt.cols, w, lt.cols);
        for (j = 0; j < n; j++) w[j] = base[ti.offset + j] + s * w[j];
    }
}

FTIDEF void fti_lora_merge(const fti_model_config *cfg, float *params, const float *adapters,
                           uint32_t rank, float alpha) {
    size_t i, nt = fti_lora_n_tensors(cfg), j, k, k0, kn, r;
    float s, tmp[256];
    if (!cfg || !params || !adapters || rank == 0) return;
    s = alpha / (float)rank;
    for (i = 0; i < nt; i++) {
        fti_lora_tensor lt;
        fti_tensor_info ti;
        const float *A, *B;
        fti_lora_tensor_get(cfg, rank, i, &lt);
        fti_model_tensor_info(cfg, lt.tensor, &ti);
        A = adapters + lt.a_offset; /* (r, in) */
        B = adapters + lt.b_offset; /* (out, r) */
        for (j = 0; j < lt.rows; j++) {
            float *w = params + ti.offset + j * lt.cols;
            /* same order of operations as the trainer's merged forward weights */
            for (k0 = 0; k0 < lt.cols; k0 += 256) {
                kn = lt.cols - k0 < 256 ? lt.cols - k0 : 256;
                for (k = 0; k < kn; k++) tmp[k] = 0.0f;
                for (r = 0; r < rank; r++) {
                    float b = B[j * rank + r];
                    const float *ar = A + r * lt.cols + k0;
                    for (k = 0; k < kn; k++) tmp[k] += b * ar[k];
                }
                for (k = 0; k < kn; k++) w[k0 + k] = w[k0 + k] + s * tmp[k];
            }
        }
    }
}

/* --- trainer ------------------------------------------------------------------------------------ */

struct fti_trainer {
    fti_model_config cfg;
    fti_train_opts o;         /* resolved; o.checkpoint_path points at ckpt_path */
    char *ckpt_path;
    fti_tokens train, val;
    fti_pool *pool;
    fti_model_acts *acts;
    size_t n_params;
    float *params;            /* (n_params) weights the forward uses */
    float *base;              /* LoRA: frozen base weights, else NULL */
    float *grads;             /* (n_params) */
    size_t n_train;           /* trainable elements */
    float *w, *g, *m, *v;     /* trainable weights, grads, moments (w = params without LoRA) */
    unsigned char *decay;     /* (n_train) 1 = weight decay applies */
    int32_t *tok, *tgt;       /* (B, T) */
    fti_rng sampler;
    uint64_t draws;           /* windows drawn so far */
    uint64_t step, tokens_seen, total_steps;
    double elapsed_s, val_loss, best_val;
    uint64_t fingerprint;
    float *hist;              /* train loss per step */
    size_t n_hist, cap_hist;
    uint64_t *val_steps;
    float *val_hist;
    size_t n_val, cap_val;
    fti_train_stats last;
};

static void fti__train_log(const fti_trainer *t, fti_log_level lvl, const char *msg) {
    if (t->o.log) t->o.log(t->o.log_user, lvl, msg);
}

static uint64_t fti__train_hash_u64(uint64_t h, uint64_t v) {
    unsigned char b[8];
    fti_store_u64(b, v);
    return fti_hash64(b, 8, h);
}
static uint64_t fti__train_hash_f64(uint64_t h, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    return fti__train_hash_u64(h, u);
}

/* What a checkpoint must agree on to be resumed: config, data, and every option that changes
 * the trajectory (not the stop conditions, threads or paths). */
static uint64_t fti__train_fingerprint(const fti_trainer *t) {
    uint64_t h = 0x6674692d74726169ull;
    const fti_model_config *c = &t->cfg;
    const fti_train_opts *o = &t->o;
    h = fti__train_hash_u64(h, c->vocab_size);
    h = fti__train_hash_u64(h, c->dim);
    h = fti__train_hash_u64(h, c->n_layers);
    h = fti__train_hash_u64(h, c->n_heads);
    h = fti__train_hash_u64(h, c->n_kv_heads);
    h = fti__train_hash_u64(h, c->hidden_dim);
    h = fti__train_hash_u64(h, c->context_len);
    h = fti__train_hash_f64(h, c->rope_base);
    h = fti__train_hash_f64(h, c->norm_eps);
    h = fti__train_hash_u64(h, (uint64_t)c->tied_embeddings);
    h = fti__train_hash_u64(h, o->batch);
    h = fti__train_hash_u64(h, o->ctx);
    h = fti__train_hash_u64(h, o->grad_accum);
    h = fti__train_hash_f64(h, o->lr);
    h = fti__train_hash_f64(h, o->min_lr_frac);
    h = fti__train_hash_u64(h, o->warmup_steps);
    h = fti__train_hash_u64(h, t->total_steps);
    h = fti__train_hash_f64(h, o->grad_clip);
    h = fti__train_hash_f64(h, o->adamw.beta1);
    h = fti__train_hash_f64(h, o->adamw.beta2);
    h = fti__train_hash_f64(h, o->adamw.eps);
    h = fti__train_hash_f64(h, o->adamw.weight_decay);
    h = fti__train_hash_u64(h, o->eval_every);
    h = fti__train_hash_u64(h, o->eval_windows);
    h = fti__train_hash_u64(h, o->seed);
    h = fti__train_hash_u64(h, o->lora_rank);
    h = fti__train_hash_f64(h, o->lora_alpha);
    h = fti__train_hash_u64(h, t->train.n_tokens);
    h = fti__train_hash_u64(h, (uint64_t)t->train.token_bytes);
    if (t->train.n_tokens)
        h = fti_hash64(t->train.data, t->train.n_tokens * (size_t)t->train.token_bytes, h);
    h = fti__train_hash_u64(h, t->val.n_tokens);
    if (t->val.n_tokens)
        h = fti_hash64(t->val.data, t->val.n_tokens * (size_t)t->val.token_bytes, h);
    if (t->base) h = fti_hash64(t->base, t->n_params * sizeof(float), h);
    return h;
}

FTIDEF void fti_trainer_free(fti_trainer *t) {
    if (!t) return;
    fti_model_acts_free(t->acts);
    fti_pool_free(t->pool);
    fti_aligned_free(t->params);
    fti_aligned_free(t->base);
    fti_aligned_free(t->grads);
    if (t->base) {
        fti_aligned_free(t->w);
        fti_aligned_free(t->g);
    }
    fti_aligned_free(t->m);
    fti_aligned_free(t->v);
    fti_free(t->decay);
    fti_free(t->tok);
    fti_free(t->tgt);
    fti_free(t->hist);
    fti_free(t->val_steps);
    fti_free(t->val_hist);
    fti_free(t->ckpt_path);
    fti_free(t);
}

static float *fti__train_floats(size_t n) {
    size_t bytes;
    float *p;
    if (!fti_size_mul(n ? n : 1, sizeof(float), &bytes)) return NULL;
    p = (float *)fti_aligned_alloc(bytes, 64);
    if (p) memset(p, 0, bytes);
    return p;
}

FTIDEF fti_result fti_trainer_create(const fti_model_config *cfg, const float *init_params,
                                     const fti_train_opts *opts, fti_tokens train,
                                     fti_tokens val, fti_trainer **out, fti_error *err) {
    fti_trainer *t;
    fti_result r;
    size_t i, nt;
    if (!cfg || !out) return fti_error_set(err, FTI_ERR_INVALID, "trainer: NULL argument");
    *out = NULL;
    t = (fti_trainer *)fti_calloc(1, sizeof(*t));
    if (!t) return fti_error_set(err, FTI_ERR_NOMEM, "trainer: out of memory");
    t->cfg = *cfg;
    if ((r = fti_model_config_resolve(&t->cfg, err)) != FTI_OK) {
        fti_trainer_free(t);
        return r;
    }
    if (opts) t->o = *opts;
    if (t->o.batch == 0) t->o.batch = 8;
    if (t->o.ctx == 0) t->o.ctx = t->cfg.context_len;
    if (t->o.grad_accum == 0) t->o.grad_accum = 1;
    if (t->o.lr == 0.0f) t->o.lr = 1e-3f;
    if (t->o.min_lr_frac == 0.0f) t->o.min_lr_frac = 0.1f;
    if (t->o.min_lr_frac < 0.0f) t->o.min_lr_frac = 0.0f;
    if (t->o.grad_clip == 0.0f) t->o.grad_clip = 1.0f;
    if (t->o.eval_windows == 0) t->o.eval_windows = 16;
    if (t->o.checkpoint_every == 0) t->o.checkpoint_every = 100;
    if (t->o.lora_rank && t->o.lora_alpha == 0.0f) t->o.lora_alpha = 2.0f * (float)t->o.lora_rank;
    t->o.adamw = fti__train_adamw_resolve(&t->o.adamw);
    if (t->o.ctx > t->cfg.context_len || t->o.batch > (1u << 20) || t->o.grad_accum > (1u << 20)) {
        fti_trainer_free(t);
        return fti_error_set(err, FTI_ERR_INVALID, "trainer: ctx %lu > context length %u or "
                             "batch/accumulation too large", (unsigned long)t->o.ctx,
                             (unsigned)t->cfg.context_len);
    }
    t->total_steps = t->o.max_steps;
    if (t->total_steps == 0 && t->o.max_tokens)
        t->total_steps = (t->o.max_tokens + t->o.batch * t->o.ctx * t->o.grad_accum - 1) /
                         (t->o.batch * t->o.ctx * t->o.grad_accum);
    if (t->total_steps == 0) t->total_steps = 1000;
    if (t->o.warmup_steps == 0) t->o.warmup_steps = t->total_steps / 20;
    t->train = train;
    t->val = val;
    if ((r = fti__train_check_tokens(&t->train, "training", t->o.ctx + 1, t->cfg.vocab_size,
                                     err)) != FTI_OK ||
        (r = fti__train_check_tokens(&t->val, "validation", t->o.ctx + 1, t->cfg.vocab_size,
                                     err)) != FTI_OK) {
        fti_trainer_free(t);
        return r;
    }
    if (t->train.n_tokens == 0) {
        fti_trainer_free(t);
        return fti_error_set(err, FTI_ERR_INVALID, "trainer: no training tokens");
    }
    if (t->o.checkpoint_path) {
        t->ckpt_path = fti_strdup(t->o.checkpoint_path);
        if (!t->ckpt_path) goto nomem;
    }
    t->o.checkpoint_path = t->ckpt_path;
    t->pool = fti_pool_create(t->o.n_threads);
    if (!t->pool) goto nomem;
    if ((r = fti_model_acts_create(&t->cfg, t->o.batch, t->o.ctx, &t->acts, err)) != FTI_OK) {
        fti_trainer_free(t);
        return r;
    }
    t->n_params = fti_model_n_params(&t->cfg);
    t->params = fti__train_floats(t->n_params);
    t->grads = fti__train_floats(t->n_params);
    t->tok = (int32_t *)fti_calloc(t->o.batch * t->o.ctx, sizeof(int32_t));
    t->tgt = (int32_t *)fti_calloc(t->o.batch * t->o.ctx, sizeof(int32_t));
    if (!t->params || !t->grads || !t->tok || !t->tgt) goto nomem;
    if (init_params) memcpy(t->params, init_params, t->n_params * sizeof(float));
    else fti_model_init_params(&t->cfg, t->params, t->o.seed);
    nt = fti_model_n_tensors(&t->cfg);
    if (t->o.lora_rank) {
        fti_rng rng;
        t->base = t->params;
        t->params = fti__train_floats(t->n_params);
        t->n_train = fti_lora_n_params(&t->cfg, t->o.lora_rank);
        t->w = fti__train_floats(t->n_train);
        t->g = fti__train_floats(t->n_train);
        if (!t->params || !t->w || !t->g) goto nomem;
        memcpy(t->params, t->base, t->n_params * sizeof(float));
        /* A ~ N(0, 1/in), B = 0: the adapted model starts equal to the base */
        fti_rng_seed(&rng, t->o.seed, 0x4c6f5241u);
        for (i = 0; i < fti_lora_n_tensors(&t->cfg); i++) {
            fti_lora_tensor lt;
            size_t j;
            float sd;
            fti_lora_tensor_get(&t->cfg, t->o.lora_rank, i, &lt);
            sd = 1.0f / (float)sqrt((double)lt.cols);
            for (j = 0; j < (size_t)t->o.lora_rank * lt.cols; j++)
                t->w[lt.a_offset + j] = sd * fti_rng_normal(&rng);
        }
    } else {
        t->n_train = t->n_params;
        t->w = t->params;
        t->g = t->grads;
    }
    t->m = fti__train_floats(t->n_train);
    t->v = fti__train_floats(t->n_train);
    t->decay = (unsigned char *)fti_calloc(t->n_train, 1);
    if (!t->m || !t->v || !t->decay) goto nomem;
    if (t->o.lora_rank) {
        memset(t->decay, 1, t->n_train);
    } else {
        for (i = 0; i < nt; i++) {
            fti_tensor_info ti;
            size_t n = fti_model_tensor_info(&t->cfg, i, &ti);
            memset(t->decay + ti.offset, ti.is_norm ? 0 : 1, n);
        }
    }
    fti_rng_seed(&t->sampler, t->o.seed, 0x73616d70u);
    t->val_loss = NAN;
    t->best_val = NAN;
    t->fingerprint = fti__train_fingerprint(t);
    *out = t;
    return FTI_OK;
nomem:
    fti_trainer_free(t);
    return fti_error_set(err, FTI_ERR_NOMEM, "trainer: out of memory");
}

FTIDEF const fti_model_config *fti_trainer_config(const fti_trainer *t) {
    return t ? &t->cfg : NULL;
}

FTIDEF const float *fti_trainer_params(fti_trainer *t) { return t ? t->params : NULL; }

FTIDEF const float *fti_trainer_lora(const fti_trainer *t, uint32_t *rank, float *alpha) {
    if (!t || !t->base) return NULL;
    if (rank) *rank = t->o.lora_rank;
    if (alpha) *alpha = t->o.lora_alpha;
    return t->w;
}

FTIDEF int fti_trainer_done(const fti_trainer *t) {
    if (!t) return 1;
    if (t->step >= t->total_steps) return 1;
    if (t->o.max_tokens && t->tokens_seen >= t->o.max_tokens) return 1;
    if (t->o.max_seconds > 0.0 && t->elapsed_s >= t->o.max_seconds) return 1;
    return 0;
}

/* Draws one micro-batch of windows: uniform start in [0, n - ctx - 1], unbiased. */
static void fti__train_sample(fti_trainer *t) {
    size_t b, j, T = t->o.ctx;
    uint64_t range = (uint64_t)(t->train.n_tokens - T); /* number of valid starts */
    uint64_t limit = range ? ((uint64_t)-1) - (((uint64_t)-1) % range) : 0;
    for (b = 0; b < t->o.batch; b++) {
        uint64_t x;
        size_t start;
        do {
            x = fti_rng_u64(&t->sampler);
        } while (x >= limit);
        start = (size_t)(x % range);
        t->draws++;
        for (j = 0; j < T; j++) {
            t->tok[b * T + j] = (int32_t)fti__train_token(&t->train, start + j);
            t->tgt[b * T + j] = (int32_t)fti__train_token(&t->train, start + j + 1);
        }
    }
}

static fti_result fti__train_push(float **arr, size_t *n, size_t *cap, float v) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        float *p = (float *)fti_realloc(*arr, nc * sizeof(float));
        if (!p) return FTI_ERR_NOMEM;
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
    return FTI_OK;
}

static fti_result fti__train_push_val(fti_trainer *t, uint64_t step, float v) {
    if (t->n_val == t->cap_val) {
        size_t nc = t->cap_val ? t->cap_val * 2 : 64;
        float *p = (float *)fti_realloc(t->val_hist, nc * sizeof(float));
        uint64_t *q;
        if (!p) return FTI_ERR_NOMEM;
        t->val_hist = p;
        q = (uint64_t *)fti_realloc(t->val_steps, nc * sizeof(uint64_t));
        if (!q) return FTI_ERR_NOMEM;
        t->val_steps = q;
        t->cap_val = nc;
    }
    t->val_steps[t->n_val] = step;
    t->val_hist[t->n_val++] = v;
    return FTI_OK;
}

FTIDEF fti_result fti_trainer_eval(fti_trainer *t, double *val_loss) {
    size_t B, T, n_win, w, b, j;
    double sum = 0.0;
    uint64_t span;
    fti_result r;
    if (!t || !val_loss) return FTI_ERR_INVALID;
    *val_loss = NAN;
    if (t->val.n_tokens == 0) return FTI_OK;
    B = t->o.batch;
    T = t->o.ctx;
    n_win = (t->o.eval_windows + B - 1) / B * B;
    span = (uint64_t)(t->val.n_tokens - T - 1);
    for (w = 0; w < n_win; w += B) {
        double l = 0.0;
        for (b = 0; b < B; b++) {
            size_t start = n_win > 1 ? (size_t)(span * (uint64_t)(w + b) / (uint64_t)(n_win - 1))
                                     : 0;
            for (j = 0; j < T; j++) {
                t->tok[b * T + j] = (int32_t)fti__train_token(&t->val, start + j);
                t->tgt[b * T + j] = (int32_t)fti__train_token(&t->val, start + j + 1);
            }
        }
        r = fti_model_forward(&t->cfg, t->params, t->acts, t->tok, t->tgt, B, T, t->pool, &l);
        if (r != FTI_OK) return r;
        sum += l;
    }
    *val_loss = sum / (double)(n_win / B);
    return FTI_OK;
}

/* LoRA: gradients of the adapters from the full weight gradients (s = alpha / r):
 * dA(r,in) = s B^T dW, dB(out,r) = s dW A^T. */
static void fti__lora_grads(fti_trainer *t) {
    size_t i, j, nt = fti_lora_n_tensors(&t->cfg);
    uint32_t r = t->o.lora_rank;
    float s = t->o.lora_alpha / (float)r;
    for (i = 0; i < nt; i++) {
        fti_lora_tensor lt;
        fti_tensor_info ti;
        const float *dW;
        fti_lora_tensor_get(&t->cfg, r, i, &lt);
        fti_model_tensor_info(&t->cfg, lt.tensor, &ti);
        dW = t->grads + ti.offset; /* (out, in) */
        fti__model_mm(t->pool, FTI__MODEL_MM_TA, r, lt.cols, lt.rows, t->w + lt.b_offset, r, dW,
                      lt.cols, t->g + lt.a_offset, lt.cols);
        fti__model_mm(t->pool, FTI__MODEL_MM_TB, lt.rows, r, lt.cols, dW, lt.cols,
                      t->w + lt.a_offset, lt.cols, t->g + lt.b_offset, r);
        for (j = 0; j < (size_t)r * (lt.rows + lt.cols); j++) t->g[lt.a_offset + j] *= s;
    }
}

FTIDEF void fti_trainer_stats_get(const fti_trainer *t, fti_train_stats *s) {
    if (!t || !s) return;
    *s = t->last;
    s->step = t->step;
    s->total_steps = t->total_steps;
    s->tokens_seen = t->tokens_seen;
    s->val_loss = t->val_loss;
    s->best_val_loss = t->best_val;
    s->elapsed_s = t->elapsed_s;
}

FTIDEF void fti_trainer_history(const fti_trainer *t, const float **train, size_t *n_train,
                                const uint64_t **val_steps, const float **val_loss,
                                size_t *n_val) {
    if (!t) return;
    if (train) *train = t->hist;
    if (n_train) *n_train = t->n_hist;
    if (val_steps) *val_steps = t->val_steps;
    if (val_loss) *val_loss = t->val_hist;
    if (n_val) *n_val = t->n_val;
}

FTIDEF fti_result fti_trainer_step(fti_trainer *t, fti_train_stats *stats, fti_error *err) {
    uint64_t t0;
    size_t micro, i;
    double loss_sum = 0.0, norm2 = 0.0, lr, step_s;
    fti_result r;
    float scale;
    if (!t) return fti_error_set(err, FTI_ERR_INVALID, "trainer: NULL");
    memset(&t->last, 0, sizeof(t->last));
    t0 = fti_time_ns();
    if (t->base) fti__lora_apply(&t->cfg, t->params, t->base, t->w, t->o.lora_rank,
                                 t->o.lora_alpha, t->pool);
    memset(t->grads, 0, t->n_params * sizeof(float));
    for (micro = 0; micro < t->o.grad_accum; micro++) {
        double l = 0.0;
        fti__train_sample(t);
        r = fti_model_forward(&t->cfg, t->params, t->acts, t->tok, t->tgt, t->o.batch, t->o.ctx,
                              t->pool, &l);
        if (r != FTI_OK)
            return fti_error_set(err, r, "trainer: step %lu: %s", (unsigned long)(t->step + 1),
                                 r == FTI_ERR_NUMERIC ? "loss is not finite" : "forward failed");
        loss_sum += l;
        r = fti_model_backward(&t->cfg, t->params, t->acts, t->grads,
                               1.0f / (float)t->o.grad_accum, t->pool);
        if (r != FTI_OK) return fti_error_set(err, r, "trainer: backward failed");
    }
    if (t->base) fti__lora_grads(t);
    for (i = 0; i < t->n_train; i++) norm2 += (double)t->g[i] * (double)t->g[i];
    if (!(norm2 == norm2) || norm2 > 1e300)
        return fti_error_set(err, FTI_ERR_NUMERIC, "trainer: step %lu: gradient is not finite",
                             (unsigned long)(t->step + 1));
    t->last.grad_norm = sqrt(norm2);
    scale = 1.0f;
    if (t->o.grad_clip > 0.0f && t->last.grad_norm > (double)t->o.grad_clip) {
        scale = (float)((double)t->o.grad_clip / (t->last.grad_norm + 1e-6));
        for (i = 0; i < t->n_train; i++) t->g[i] *= scale;
    }
    lr = fti_lr_schedule(t->step, t->o.warmup_steps, t->total_steps, (double)t->o.lr,
                         (double)t->o.min_lr_frac);
    fti_adamw_update(&t->o.adamw, t->w, t->g, t->m, t->v, t->decay, t->n_train, (float)lr,
                     t->step + 1, t->pool);
    if (t->base) fti__lora_apply(&t->cfg, t->params, t->base, t->w, t->o.lora_rank,
                                 t->o.lora_alpha, t->pool);
    t->step++;
    t->tokens_seen += (uint64_t)t->o.batch * t->o.ctx * t->o.grad_accum;
    t->last.loss = loss_sum / (double)t->o.grad_accum;
    t->last.lr = lr;
    if (fti__train_push(&t->hist, &t->n_hist, &t->cap_hist, (float)t->last.loss) != FTI_OK)
        return fti_error_set(err, FTI_ERR_NOMEM, "trainer: out of memory");
    step_s = (double)(fti_time_ns() - t0) / 1e9;
    t->elapsed_s += step_s;
    t->last.tokens_per_s =
        step_s > 0 ? (double)(t->o.batch * t->o.ctx * t->o.grad_accum) / step_s : 0.0;
    if (t->val.n_tokens &&
        ((t->o.eval_every && t->step % t->o.eval_every == 0) || fti_trainer_done(t))) {
        double vl;
        if ((r = fti_trainer_eval(t, &vl)) != FTI_OK)
            return fti_error_set(err, r, "trainer: validation failed");
        t->val_loss = vl;
        if (!(t->best_val <= vl)) t->best_val = vl;
        if (fti__train_push_val(t, t->step, (float)vl) != FTI_OK)
            return fti_error_set(err, FTI_ERR_NOMEM, "trainer: out of memory");
        t->last.evaluated = 1;
    }
    if (t->ckpt_path && (t->step % t->o.checkpoint_every == 0 || fti_trainer_done(t))) {
        if ((r = fti_trainer_save(t, t->ckpt_path, err)) != FTI_OK) return r;
        t->last.checkpointed = 1;
    }
    if (stats) fti_trainer_stats_get(t, stats);
    return FTI_OK;
}

/* --- checkpoints -------------------------------------------------------------------------------
 * Layout (little-endian; docs/training.md): "FTICKPT1", u32 version, u32 flags (1 = LoRA),
 * config (7 x u32, 2 x f32, u32 tied), u64 fingerprint, u64 step, tokens_seen, total_steps,
 * f64 elapsed_s, val_loss, best_val, u64 sampler state, inc, draws, u64 n_params, n_trainable,
 * u64 n_hist + f32 losses, u64 n_val + (u64 step, f32 loss) pairs, then f32 weights, m, v of the
 * trainable block, then the SHA-256 of everything before it. */
#define FTI__CKPT_MAGIC "FTICKPT1"
#define FTI__CKPT_VERSION 1u

static void fti__ckpt_u32(fti_buf *b, uint32_t v) {
    unsigned char x[4];
    fti_store_u32(x, v);
    fti_buf_append(b, x, 4);
}
static void fti__ckpt_u64(fti_buf *b, uint64_t v) {
    unsigned char x[8];
    fti_store_u64(x, v);
    fti_buf_append(b, x, 8);
}
static void fti__ckpt_f32(fti_buf *b, float v) {
    unsigned char x[4];
    fti_store_f32(x, v);
    fti_buf_append(b, x, 4);
}
static void fti__ckpt_f64(fti_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    fti__ckpt_u64(b, u);
}

/* Writes n floats little-endian through the atomic file, hashing as it goes. */
static fti_result fti__ckpt_floats(fti_afile *f, fti_sha256 *sh, const float *x, size_t n) {
    unsigned char tmp[4096];
    size_t i, k;
    for (i = 0; i < n;) {
        size_t chunk = n - i < sizeof(tmp) / 4 ? n - i : sizeof(tmp) / 4;
        for (k = 0; k < chunk; k++) fti_store_f32(tmp + 4 * k, x[i + k]);
        fti_sha256_update(sh, tmp, chunk * 4);
        if (fti_afile_write(f, tmp, chunk * 4) != FTI_OK) return f->status;
        i += chunk;
    }
    return FTI_OK;
}

FTIDEF fti_result fti_trainer_save(fti_trainer *t, const char *path, fti_error *err) {
    fti_buf b;
    fti_afile f;
    fti_sha256 sh;
    unsigned char digest[32];
    fti_result r;
    size_t i;
    if (!t || !path) return fti_error_set(err, FTI_ERR_INVALID, "checkpoint: NULL argument");
    memset(&b, 0, sizeof(b));
    fti_buf_append(&b, FTI__CKPT_MAGIC, 8);
    fti__ckpt_u32(&b, FTI__CKPT_VERSION);
    fti__ckpt_u32(&b, t->base ? 1u : 0u);
    fti__ckpt_u32(&b, t->cfg.vocab_size);
    fti__ckpt_u32(&b, t->cfg.dim);
    fti__ckpt_u32(&b, t->cfg.n_layers);
    fti__ckpt_u32(&b, t->cfg.n_heads);
    fti__ckpt_u32(&b, t->cfg.n_kv_heads);
    fti__ckpt_u32(&b, t->cfg.hidden_dim);
    fti__ckpt_u32(&b, t->cfg.context_len);
    fti__ckpt_f32(&b, t->cfg.rope_base);
    fti__ckpt_f32(&b, t->cfg.norm_eps);
    fti__ckpt_u32(&b, (uint32_t)t->cfg.tied_embeddings);
    fti__ckpt_u64(&b, t->fingerprint);
    fti__ckpt_u64(&b, t->step);
    fti__ckpt_u64(&b, t->tokens_seen);
    fti__ckpt_u64(&b, t->total_steps);
    fti__ckpt_f64(&b, t->elapsed_s);
    fti__ckpt_f64(&b, t->val_loss);
    fti__ckpt_f64(&b, t->best_val);
    fti__ckpt_u64(&b, t->sampler.state);
    fti__ckpt_u64(&b, t->sampler.inc);
    fti__ckpt_u64(&b, t->draws);
    fti__ckpt_u64(&b, t->n_params);
    fti__ckpt_u64(&b, t->n_train);
    fti__ckpt_u64(&b, t->n_hist);
    for (i = 0; i < t->n_hist; i++) fti__ckpt_f32(&b, t->hist[i]);
    fti__ckpt_u64(&b, t->n_val);
    for (i = 0; i < t->n_val; i++) {
        fti__ckpt_u64(&b, t->val_steps[i]);
        fti__ckpt_f32(&b, t->val_hist[i]);
    }
    if (b.oom) {
        fti_buf_free(&b);
        return fti_error_set(err, FTI_ERR_NOMEM, "checkpoint: out of memory");
    }
    if ((r = fti_afile_open(&f, path, err)) != FTI_OK) {
        fti_buf_free(&b);
        return r;
    }
    fti_sha256_init(&sh);
    fti_sha256_update(&sh, b.data, b.len);
    r = fti_afile_write(&f, b.data, b.len);
    fti_buf_free(&b);
    if (r == FTI_OK) r = fti__ckpt_floats(&f, &sh, t->w, t->n_train);
    if (r == FTI_OK) r = fti__ckpt_floats(&f, &sh, t->m, t->n_train);
    if (r == FTI_OK) r = fti__ckpt_floats(&f, &sh, t->v, t->n_train);
    if (r == FTI_OK) {
        fti_sha256_final(&sh, digest);
        r = fti_afile_write(&f, digest, 32);
    }
    if (r != FTI_OK) {
        fti_afile_abort(&f);
        return fti_error_set(err, r, "%s: cannot write checkpoint: %s", path, fti_result_str(r));
    }
    return fti_afile_commit(&f, err);
}

static void fti__ckpt_read_floats(fti_reader *rd, float *x, size_t n) {
    const unsigned char *p = (const unsigned char *)fti_read_bytes(rd, n * 4);
    size_t i;
    if (!p) return;
    for (i = 0; i < n; i++) {
        uint32_t u = fti_load_u32(p + 4 * i);
        memcpy(&x[i], &u, 4);
    }
}

FTIDEF fti_result fti_trainer_resume(fti_trainer *t, const char *path, fti_error *err) {
    fti_map map;
    fti_reader rd;
    unsigned char digest[32];
    fti_result r;
    uint64_t fp, n_params, n_train, n_hist, n_val, i;
    uint32_t flags;
    const unsigned char *magic;
    fti_rng sampler;
    uint64_t step, tokens, total, draws;
    double elapsed, val_loss, best_val;
    if (!t || !path) return fti_error_set(err, FTI_ERR_INVALID, "checkpoint: NULL argument");
    if ((r = fti_map_open(&map, path, err)) != FTI_OK) return r;
    if (map.len < 8 + 32) {
        fti_map_close(&map);
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: %lu bytes is too short for a checkpoint",
                             path, (unsigned long)map.len);
    }
    fti_sha256_buf(map.data, map.len - 32, digest);
    if (memcmp(digest, (const unsigned char *)map.data + map.len - 32, 32) != 0) {
        fti_map_close(&map);
        return fti_error_set(err, FTI_ERR_CHECKSUM, "%s: checksum mismatch (damaged checkpoint)",
                             path);
    }
    rd = fti_reader_make(map.data, map.len - 32);
    magic = (const unsigned char *)fti_read_bytes(&rd, 8);
    if (!magic || memcmp(magic, FTI__CKPT_MAGIC, 8) != 0 ||
        fti_read_u32(&rd) != FTI__CKPT_VERSION) {
        fti_map_close(&map);
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: not an fti checkpoint (version 1)", path);
    }
    flags = fti_read_u32(&rd);
    fti_read_bytes(&rd, 10 * 4); /* the config, for people: the fingerprint covers it */
    fp = fti_read_u64(&rd);
    step = fti_read_u64(&rd);
    tokens = fti_read_u64(&rd);
    total = fti_read_u64(&rd);
    elapsed = fti_read_f64(&rd);
    val_loss = fti_read_f64(&rd);
    best_val = fti_read_f64(&rd);
    sampler.state = fti_read_u64(&rd);
    sampler.inc = fti_read_u64(&rd);
    draws = fti_read_u64(&rd);
    n_params = fti_read_u64(&rd);
    n_train = fti_read_u64(&rd);
    if (rd.err) goto format;
    if (fp != t->fingerprint || (flags & 1u) != (t->base ? 1u : 0u) ||
        n_params != t->n_params || n_train != t->n_train || total != t->total_steps) {
        fti_map_close(&map);
        return fti_error_set(err, FTI_ERR_MISMATCH,
                             "%s: checkpoint is of another run (model, data or options differ)",
                             path);
    }
    n_hist = fti_read_u64(&rd);
    if (rd.err || n_hist != step || n_hist > fti_reader_left(&rd) / 4) goto format;
    t->n_hist = 0;
    for (i = 0; i < n_hist; i++)
        if (fti__train_push(&t->hist, &t->n_hist, &t->cap_hist, fti_read_f32(&rd)) != FTI_OK)
            goto nomem;
    n_val = fti_read_u64(&rd);
    if (rd.err || n_val > fti_reader_left(&rd) / 12) goto format;
    t->n_val = 0;
    for (i = 0; i < n_val; i++) {
        uint64_t s = fti_read_u64(&rd);
        float v = fti_read_f32(&rd);
        if (fti__train_push_val(t, s, v) != FTI_OK) goto nomem;
    }
    if (rd.err || fti_reader_left(&rd) != 3 * 4 * (size_t)n_train) goto format;
    fti__ckpt_read_floats(&rd, t->w, t->n_train);
    fti__ckpt_read_floats(&rd, t->m, t->n_train);
    fti__ckpt_read_floats(&rd, t->v, t->n_train);
    if (rd.err) goto format;
    fti_map_close(&map);
    t->step = step;
    t->tokens_seen = tokens;
    t->elapsed_s = elapsed;
    t->val_loss = val_loss;
    t->best_val = best_val;
    t->sampler = sampler;
    t->draws = draws;
    if (t->base) fti__lora_apply(&t->cfg, t->params, t->base, t->w, t->o.lora_rank,
                                 t->o.lora_alpha, t->pool);
    fti__train_log(t, FTI_LOG_INFO, "resumed from checkpoint");
    return FTI_OK;
format:
    fti_map_close(&map);
    return fti_error_set(err, FTI_ERR_FORMAT, "%s: malformed checkpoint", path);
nomem:
    fti_map_close(&map);
    return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
}

#endif /* FTI_NO_TRAIN */
