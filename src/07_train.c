/* === train: AdamW, schedule, trainer, checkpoints, LoRA, registry === */
#include "07_train.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#ifndef FTI_NO_TRAIN

/* --- AdamW and the schedule ------------------------------------------------------------------- */

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

/* The optimizer runs over fixed blocks of FTI__TRAIN_BLOCK elements (item i = elements
 * [i*BLOCK, (i+1)*BLOCK)), whatever the thread count: every element is updated by the same
 * kernel call boundaries, so results are bit-identical for any pool size. */
#define FTI__TRAIN_BLOCK 4096u

typedef struct fti__train_adamw_ctx {
    fti_adamw_hparams hp;
    float *p;
    const float *g;
    float *m, *v;
    const unsigned char *decay;
    size_t n;
} fti__train_adamw_ctx;

/* Blocks [b0, b1): the table's AdamW (vector, fused gradient scale) per run of equal decay
 * within each block. Runs stop at block ends whatever range a thread has, so each element takes
 * the same path (vector lanes or the kernel's tail) for any thread count: the AVX2 kernel's
 * scalar tail need not give the vector lanes' bits (clang contracts it into FMAs). */
static void fti__train_adamw_task(void *vctx, size_t b0, size_t b1, int thread) {
    const fti__train_adamw_ctx *c = (const fti__train_adamw_ctx *)vctx;
    size_t b;
    (void)thread;
    for (b = b0; b < b1; b++) {
        size_t i = b * FTI__TRAIN_BLOCK,
               end = i + FTI__TRAIN_BLOCK < c->n ? i + FTI__TRAIN_BLOCK : c->n;
        while (i < end) {
            size_t j = i + 1;
            int dec = !c->decay || c->decay[i];
            if (c->decay)
                while (j < end && (c->decay[j] != 0) == dec) j++;
            else
                j = end;
            fti_adamw(NULL, c->p + i, c->g + i, c->m + i, c->v + i, j - i, &c->hp, dec);
            i = j;
        }
    }
}

/* fti_adamw_update with the gradient multiplied by grad_scale (clipping) on the fly. */
static void fti__train_adamw(const fti_adamw_opts *opts, float *params, const float *grads,
                             float *m, float *v, const unsigned char *decay, size_t n, float lr,
                             uint64_t t, float grad_scale, fti_pool *pool) {
    fti__train_adamw_ctx c;
    fti_adamw_opts o;
    if (!params || !grads || !m || !v || n == 0) return;
    o = fti__train_adamw_resolve(opts);
    memset(&c, 0, sizeof(c));
    c.hp.lr = lr;
    c.hp.beta1 = o.beta1;
    c.hp.beta2 = o.beta2;
    c.hp.eps = o.eps;
    c.hp.weight_decay = o.weight_decay;
    c.hp.grad_scale = grad_scale;
    c.hp.step = (int64_t)(t ? t : 1);
    c.p = params;
    c.g = grads;
    c.m = m;
    c.v = v;
    c.decay = decay;
    c.n = n;
    fti_pool_for(pool, (n + FTI__TRAIN_BLOCK - 1) / FTI__TRAIN_BLOCK, 1, fti__train_adamw_task, &c);
}

FTIDEF void fti_adamw_update(const fti_adamw_opts *opts, float *params, const float *grads,
                             float *m, float *v, const unsigned char *decay, size_t n, float lr,
                             uint64_t t, fti_pool *pool) {
    fti__train_adamw(opts, params, grads, m, v, decay, n, lr, t, 1.0f, pool);
}

/* Sum of squares of g (n) in double: per fixed block, 8 interleaved partial sums added in a
 * fixed order, then the blocks in order; part holds one double per block. */
typedef struct fti__train_norm_ctx {
    const float *g;
    size_t n;
    double *part;
} fti__train_norm_ctx;

static void fti__train_norm_task(void *vctx, size_t b0, size_t b1, int thread) {
    const fti__train_norm_ctx *c = (const fti__train_norm_ctx *)vctx;
    size_t b, i, l;
    (void)thread;
    for (b = b0; b < b1; b++) {
        size_t i0 = b * FTI__TRAIN_BLOCK, i1 = i0 + FTI__TRAIN_BLOCK < c->n ? i0 + FTI__TRAIN_BLOCK
                                                                           : c->n;
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const float *g = c->g;
        for (i = i0; i + 8 <= i1; i += 8)
            for (l = 0; l < 8; l++) acc[l] += (double)g[i + l] * (double)g[i + l];
        for (; i < i1; i++) acc[0] += (double)g[i] * (double)g[i];
        c->part[b] =
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
}

FTIDEF double fti_lr_schedule(uint64_t step, uint64_t warmup, uint64_t total_steps, double lr,
                              double min_lr_frac) {
    double prog, lo = lr * min_lr_frac;
    if (step < warmup) return lr * (double)(step + 1) / (double)warmup;
    prog = (double)(step - warmup) / (double)(total_steps > warmup + 1 ? total_steps - warmup : 1);
    if (prog > 1.0) prog = 1.0;
    return lo + 0.5 * (lr - lo) * (1.0 + cos(3.14159265358979323846 * prog));
}

/* --- token arrays ----------------------------------------------------------------------------- */

static uint32_t fti__train_token(const fti_token_array *a, size_t i) {
    const unsigned char *p = (const unsigned char *)a->data;
    if (a->token_bytes == 2) {
        p += 2 * i;
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
    }
    return fti_load_u32(p + 4 * i);
}

static fti_result fti__train_check_tokens(fti_token_array *a, const char *what, size_t min_n,
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
        /* 2-byte ids read as 4-byte ones (token_bytes left 0 for a shard of width 2: the
         * feature store's shards are 2 bytes wide up to 65536 ids) pair two ids into one */
        if (id >= vocab)
            return fti_error_set(err, FTI_ERR_FORMAT,
                                 "%s tokens: id %lu at position %lu >= vocabulary size %lu%s",
                                 what, (unsigned long)id, (unsigned long)i, (unsigned long)vocab,
                                 a->token_bytes == 4 && id > 0xFFFFu && vocab <= 0x10000u
                                     ? " (read as 4-byte ids: set token_bytes to 2 for 2-byte"
                                       " ids, as in a feature-store shard of width 2)"
                                     : "");
    }
    return FTI_OK;
}

/* --- LoRA layout ------------------------------------------------------------------------------ */

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
        fti__model_mm(fti_kernels_get(FTI_ISA_AUTO), pool, 0, lt.rows, lt.cols, rank,
                      ad + lt.b_offset, rank, ad + lt.a_offset, lt.cols, w, lt.cols);
        for (j = 0; j < n; j++) w[j] = base[ti.offset + j] + s * w[j];
    }
}

FTIDEF fti_result fti_lora_merge(const fti_model_config *cfg, float *params,
                                 const float *adapters, uint32_t rank, float alpha) {
    size_t i, j, nt = fti_lora_n_tensors(cfg), max_n = 0;
    float *tmp, s;
    if (!cfg || !params || !adapters || rank == 0) return FTI_ERR_INVALID;
    s = alpha / (float)rank;
    for (i = 0; i < nt; i++) {
        fti_lora_tensor lt;
        fti_lora_tensor_get(cfg, rank, i, &lt);
        if (lt.rows * lt.cols > max_n) max_n = lt.rows * lt.cols;
    }
    tmp = (float *)fti_malloc((max_n ? max_n : 1) * sizeof(float));
    if (!tmp) return FTI_ERR_NOMEM;
    /* the same products, kernels and order of operations as the trainer's merged weights */
    for (i = 0; i < nt; i++) {
        fti_lora_tensor lt;
        fti_tensor_info ti;
        float *w;
        fti_lora_tensor_get(cfg, rank, i, &lt);
        fti_model_tensor_info(cfg, lt.tensor, &ti);
        w = params + ti.offset;
        fti__model_mm(fti_kernels_get(FTI_ISA_AUTO), NULL, 0, lt.rows, lt.cols, rank,
                      adapters + lt.b_offset, rank, adapters + lt.a_offset, lt.cols, tmp, lt.cols);
        for (j = 0; j < lt.rows * lt.cols; j++) w[j] = w[j] + s * tmp[j];
    }
    fti_free(tmp);
    return FTI_OK;
}

/* --- trainer ---------------------------------------------------------------------------------- */

struct fti_trainer {
    fti_model_config cfg;
    fti_train_opts o;         /* resolved; o.checkpoint_path points at ckpt_path */
    char *ckpt_path;
    fti_token_array train, val;
    fti_pool *pool;
    fti_model_acts *acts;
    size_t n_params;
    float *params;            /* (n_params) weights the forward uses */
    float *base;              /* LoRA: frozen base weights, else NULL */
    float *grads;             /* (n_params) */
    float *gmicro;            /* (n_params) a micro-batch's gradient when a rank runs > 1 */
    size_t lb, split;         /* windows per local micro-batch; 1 or world_size (see opts) */
    size_t sample_lo;         /* the sampler keeps windows [sample_lo, sample_lo + lb) */
    size_t n_train;           /* trainable elements */
    float *w, *g, *m, *v;     /* trainable weights, grads, moments (w = params without LoRA) */
    unsigned char *decay;     /* (n_train) 1 = weight decay applies */
    double *norm_part;        /* one partial sum of squares per FTI__TRAIN_BLOCK of g */
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
    int bf16_on;              /* the matmuls round to bf16 (o.bf16 and kernels that honour it) */
    fti_isa isa;              /* the kernel table the passes use (fti_kernels_get(AUTO)'s) */
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
    if (o->bf16) h = fti__train_hash_u64(h, 0xbf16u); /* bf16 products change the run */
    if (o->dropout > 0.0f) h = fti__train_hash_f64(h, 1000.0 + o->dropout); /* ditto dropout */
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
    fti_aligned_free(t->gmicro);
    if (t->base) {
        fti_aligned_free(t->w);
        fti_aligned_free(t->g);
    }
    fti_aligned_free(t->m);
    fti_aligned_free(t->v);
    fti_free(t->decay);
    fti_free(t->norm_part);
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
                                     const fti_train_opts *opts, fti_token_array train,
                                     fti_token_array val, fti_trainer **out, fti_error *err) {
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
    if (t->o.ctx > t->cfg.context_len || t->o.batch > FTI_TRAIN_MAX_BATCH ||
        t->o.grad_accum > FTI_TRAIN_MAX_ACCUM) { /* each named with its own limit */
        unsigned long ctx = (unsigned long)t->o.ctx, batch = (unsigned long)t->o.batch;
        unsigned long accum = (unsigned long)t->o.grad_accum;
        unsigned ctx_len = (unsigned)t->cfg.context_len;
        fti_trainer_free(t);
        if (ctx > ctx_len)
            return fti_error_set(err, FTI_ERR_INVALID, "trainer: ctx %lu tokens is more than the "
                                 "model's context length %u", ctx, ctx_len);
        if (batch > FTI_TRAIN_MAX_BATCH)
            return fti_error_set(err, FTI_ERR_INVALID, "trainer: batch %lu sequences is more "
                                 "than FTI_TRAIN_MAX_BATCH (%lu)", batch,
                                 (unsigned long)FTI_TRAIN_MAX_BATCH);
        return fti_error_set(err, FTI_ERR_INVALID, "trainer: grad_accum %lu micro-batches is more "
                             "than FTI_TRAIN_MAX_ACCUM (%lu)", accum,
                             (unsigned long)FTI_TRAIN_MAX_ACCUM);
    }
    if (t->o.lora_rank) { /* a rank past a matrix's smaller side adds nothing but cost */
        size_t lim = (size_t)-1, n = fti_lora_n_tensors(&t->cfg);
        fti_lora_tensor lt;
        for (i = 0; i < n; i++) {
            fti_lora_tensor_get(&t->cfg, 1, i, &lt);
            if (lt.rows < lim) lim = lt.rows;
            if (lt.cols < lim) lim = lt.cols;
        }
        if (t->o.lora_rank > lim) {
            unsigned long rank = (unsigned long)t->o.lora_rank;
            fti_trainer_free(t);
            return fti_error_set(err, FTI_ERR_INVALID, "trainer: LoRA rank %lu is more than the "
                                 "smaller side of the model's adapted matrices (%lu): a rank up "
                                 "to %lu adapts them fully", rank, (unsigned long)lim,
                                 (unsigned long)lim);
        }
    }
    if (!(t->o.dropout >= 0.0f && t->o.dropout <= 0.9f)) {
        double p = (double)t->o.dropout;
        fti_trainer_free(t);
        return fti_error_set(err, FTI_ERR_INVALID, "trainer: dropout %g is not within [0, 0.9]", p);
    }
    if (t->o.world_size <= 1) {
        t->o.world_size = 1;
        t->o.rank = 0;
        t->o.reduce = NULL;
    } else if (!t->o.reduce || t->o.rank < 0 || t->o.rank >= t->o.world_size ||
               (t->o.grad_accum % (size_t)t->o.world_size != 0 &&
                t->o.batch % (size_t)t->o.world_size != 0)) {
        int ws = t->o.world_size;
        fti_trainer_free(t);
        return fti_error_set(err, FTI_ERR_INVALID, "trainer: %d ranks need a reduce function and "
                             "grad_accum or batch divisible by %d", ws, ws);
    }
    t->split = t->o.grad_accum % (size_t)t->o.world_size == 0 ? 1 : (size_t)t->o.world_size;
    t->lb = t->o.batch / t->split;
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
    if (t->o.checkpoint_path && t->o.rank == 0) { /* only rank 0 writes checkpoints */
        t->ckpt_path = fti_strdup(t->o.checkpoint_path);
        if (!t->ckpt_path) goto nomem;
    }
    t->o.checkpoint_path = t->ckpt_path;
    t->pool = fti_pool_create(t->o.n_threads);
    if (!t->pool) goto nomem;
    if ((r = fti_model_acts_create(&t->cfg, t->lb, t->o.ctx, &t->acts, err)) != FTI_OK) {
        fti_trainer_free(t);
        return r;
    }
    /* bf16 matmuls where the CPU has them; what ran goes on the model card */
    t->bf16_on = fti_model_acts_set_bf16(t->acts, t->o.bf16);
    t->isa = fti_kernels_isa(fti_kernels_get(FTI_ISA_AUTO)); /* (as fti_model_acts_create) */
    t->n_params = fti_model_n_params(&t->cfg);
    t->params = fti__train_floats(t->n_params);
    t->grads = fti__train_floats(t->n_params);
    t->tok = (int32_t *)fti_calloc(t->lb * t->o.ctx, sizeof(int32_t));
    t->tgt = (int32_t *)fti_calloc(t->lb * t->o.ctx, sizeof(int32_t));
    if (!t->params || !t->grads || !t->tok || !t->tgt) goto nomem;
    if (t->o.grad_accum * t->split / (size_t)t->o.world_size > 1) { /* > 1 local micro-batch */
        t->gmicro = fti__train_floats(t->n_params);
        if (!t->gmicro) goto nomem;
    }
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
    t->norm_part = (double *)fti_calloc(t->n_train / FTI__TRAIN_BLOCK + 1, sizeof(double));
    if (!t->m || !t->v || !t->decay || !t->norm_part) goto nomem;
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

FTIDEF void fti_trainer_set_total_steps(fti_trainer *t, uint64_t total_steps) {
    if (!t) return;
    if (total_steps < t->step + 1) total_steps = t->step + 1;
    t->total_steps = total_steps;
}

FTIDEF int fti_trainer_done(const fti_trainer *t) {
    if (!t) return 1;
    if (t->step >= t->total_steps) return 1;
    if (t->o.max_tokens && t->tokens_seen >= t->o.max_tokens) return 1;
    if (t->o.max_seconds > 0.0 && t->elapsed_s >= t->o.max_seconds) return 1;
    return 0;
}

/* Draws one micro-batch of `batch` windows: uniform start in [0, n - ctx - 1], unbiased. Every
 * rank draws them all (the same sampler sequence as one process) and keeps windows
 * [lo, lo + lb) (none when lo >= batch), lo = t->sample_lo. */
static void fti__train_sample(fti_trainer *t) {
    size_t lo = t->sample_lo;
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
        if (b < lo || b >= lo + t->lb) continue;
        for (j = 0; j < T; j++) {
            t->tok[(b - lo) * T + j] = (int32_t)fti__train_token(&t->train, start + j);
            t->tgt[(b - lo) * T + j] = (int32_t)fti__train_token(&t->train, start + j + 1);
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
    B = t->lb; /* every rank evaluates all windows, lb at a time */
    fti_model_acts_set_dropout(t->acts, 0.0f, 0, 0); /* validation sees the whole model */
    T = t->o.ctx;
    n_win = (t->o.eval_windows + t->o.batch - 1) / t->o.batch * t->o.batch;
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
        fti__model_mm(fti_kernels_get(FTI_ISA_AUTO), t->pool, FTI__MODEL_MM_TA, r, lt.cols, lt.rows,
                      t->w + lt.b_offset, r, dW, lt.cols, t->g + lt.a_offset, lt.cols);
        fti__model_mm(fti_kernels_get(FTI_ISA_AUTO), t->pool, FTI__MODEL_MM_TB, lt.rows, r, lt.cols,
                      dW, lt.cols, t->w + lt.a_offset, lt.cols, t->g + lt.b_offset, r);
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
    size_t micro, i, n_local = 0, per;
    double loss_sum = 0.0, norm2 = 0.0, lr, step_s;
    fti_result r;
    float scale;
    if (!t) return fti_error_set(err, FTI_ERR_INVALID, "trainer: NULL");
    per = t->o.grad_accum / (size_t)t->o.world_size;
    memset(&t->last, 0, sizeof(t->last));
    t0 = fti_time_ns();
    if (t->base) fti__lora_apply(&t->cfg, t->params, t->base, t->w, t->o.lora_rank,
                                 t->o.lora_alpha, t->pool);
    memset(t->grads, 0, t->n_params * sizeof(float));
    for (micro = 0; micro < t->o.grad_accum; micro++) {
        double l = 0.0;
        /* this rank's windows: whole micro-batches [rank*per, (rank+1)*per), or a slice of each */
        size_t lo = t->split > 1 ? (size_t)t->o.rank * t->lb
                                 : (micro / per == (size_t)t->o.rank ? 0 : t->o.batch);
        float *g = n_local ? t->gmicro : t->grads;
        t->sample_lo = lo;
        fti__train_sample(t);
        if (lo >= t->o.batch) continue;
        /* dropout's elements: by step, micro-batch and window (row0), so a batch split over
         * ranks drops what one process would */
        fti_model_acts_set_dropout(t->acts, t->o.dropout,
                                   fti__train_hash_u64(fti__train_hash_u64(
                                       t->o.seed ^ 0x64726f70ull, t->step), micro),
                                   lo * t->o.ctx);
        r = fti_model_forward(&t->cfg, t->params, t->acts, t->tok, t->tgt, t->lb, t->o.ctx,
                              t->pool, &l);
        if (r == FTI_ERR_NUMERIC && t->o.reduce) { /* fail on every rank after the reduction */
            loss_sum += NAN;
            continue;
        }
        if (r != FTI_OK)
            return fti_error_set(err, r, "trainer: step %lu: %s", (unsigned long)(t->step + 1),
                                 r == FTI_ERR_NUMERIC ? "loss is not finite" : "forward failed");
        loss_sum += l;
        /* each micro-batch's gradient on its own, summed in order (as ranks are, see reduce) */
        if (g != t->grads) memset(g, 0, t->n_params * sizeof(float));
        r = fti_model_backward(&t->cfg, t->params, t->acts, g,
                               1.0f / (float)(t->o.grad_accum * t->split), t->pool);
        if (r != FTI_OK) return fti_error_set(err, r, "trainer: backward failed");
        if (g != t->grads)
            for (i = 0; i < t->n_params; i++) t->grads[i] += g[i];
        n_local++;
    }
    if (t->o.reduce) {
        r = t->o.reduce(t->o.reduce_user, t->grads, t->n_params, &loss_sum);
        if (r != FTI_OK)
            return fti_error_set(err, r, "trainer: step %lu: gradient reduction failed",
                                 (unsigned long)(t->step + 1));
        if (!(loss_sum == loss_sum) || loss_sum > 1e300 || loss_sum < -1e300)
            return fti_error_set(err, FTI_ERR_NUMERIC, "trainer: step %lu: loss is not finite",
                                 (unsigned long)(t->step + 1));
    }
    if (t->base) fti__lora_grads(t);
    {
        fti__train_norm_ctx nc;
        size_t nb = (t->n_train + FTI__TRAIN_BLOCK - 1) / FTI__TRAIN_BLOCK;
        nc.g = t->g;
        nc.n = t->n_train;
        nc.part = t->norm_part;
        fti_pool_for(t->pool, nb, 16, fti__train_norm_task, &nc);
        for (i = 0; i < nb; i++) norm2 += t->norm_part[i]; /* blocks in order */
    }
    if (!(norm2 == norm2) || norm2 > 1e300)
        return fti_error_set(err, FTI_ERR_NUMERIC, "trainer: step %lu: gradient is not finite",
                             (unsigned long)(t->step + 1));
    t->last.grad_norm = sqrt(norm2);
    scale = 1.0f; /* clipping scales the gradient inside the AdamW update */
    if (t->o.grad_clip > 0.0f && t->last.grad_norm > (double)t->o.grad_clip)
        scale = (float)((double)t->o.grad_clip / (t->last.grad_norm + 1e-6));
    lr = fti_lr_schedule(t->step, t->o.warmup_steps, t->total_steps, (double)t->o.lr,
                         (double)t->o.min_lr_frac);
    fti__train_adamw(&t->o.adamw, t->w, t->g, t->m, t->v, t->decay, t->n_train, (float)lr,
                     t->step + 1, scale, t->pool);
    if (t->base) fti__lora_apply(&t->cfg, t->params, t->base, t->w, t->o.lora_rank,
                                 t->o.lora_alpha, t->pool);
    t->step++;
    t->tokens_seen += (uint64_t)t->o.batch * t->o.ctx * t->o.grad_accum;
    t->last.loss = loss_sum / (double)(t->o.grad_accum * t->split);
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

/* The step, tokens seen and schedule length a checkpoint file records, from its header alone
 * (not verified: fti_trainer_resume does that). FTI_ERR_FORMAT if it does not start as one. */
FTI__UNUSED /* only fti_train_run uses it: unused under FTI_NO_STORE */
static fti_result fti__ckpt_peek(const char *path, uint64_t *step, uint64_t *tokens,
                                 uint64_t *total, fti_error *err) {
    fti_map map;
    fti_reader rd;
    const unsigned char *magic;
    fti_result r;
    if ((r = fti_map_open(&map, path, err)) != FTI_OK) return r;
    rd = fti_reader_make(map.data, map.len);
    magic = (const unsigned char *)fti_read_bytes(&rd, 8);
    if (magic && memcmp(magic, FTI__CKPT_MAGIC, 8) == 0 &&
        fti_read_u32(&rd) == FTI__CKPT_VERSION) {
        fti_read_bytes(&rd, 4 + 40 + 8); /* flags, config, fingerprint */
        *step = fti_read_u64(&rd);
        *tokens = fti_read_u64(&rd);
        *total = fti_read_u64(&rd);
    } else {
        rd.err = 1;
    }
    r = rd.err ? fti_error_set(err, FTI_ERR_FORMAT, "%s: not an fti checkpoint", path) : FTI_OK;
    fti_map_close(&map);
    return r;
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
    uint32_t flags, ck[10];
    const unsigned char *magic;
    fti_rng sampler;
    uint64_t step, tokens, total, draws;
    double elapsed, val_loss, best_val;
    if (!t || !path) return fti_error_set(err, FTI_ERR_INVALID, "checkpoint: NULL argument");
    if ((r = fti_map_open(&map, path, err)) != FTI_OK) return r;
    if (map.len < 8 + 32) {
        unsigned long n_bytes = (unsigned long)map.len; /* before the close clears it */
        fti_map_close(&map);
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: %lu bytes is too short for a checkpoint",
                             path, n_bytes);
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
    for (i = 0; i < 10; i++) ck[i] = fti_read_u32(&rd); /* the config: named if it differs */
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
        /* say what differs where the checkpoint tells: the config, LoRA or the schedule */
        static const char *const names[10] = {"vocab_size", "dim", "n_layers", "n_heads",
                                              "n_kv_heads", "hidden_dim", "context_len",
                                              "rope_base", "norm_eps", "tied_embeddings"};
        const fti_model_config *c = &t->cfg;
        float rb = c->rope_base, ne = c->norm_eps;
        uint32_t now[10];
        now[0] = c->vocab_size, now[1] = c->dim, now[2] = c->n_layers, now[3] = c->n_heads;
        now[4] = c->n_kv_heads, now[5] = c->hidden_dim, now[6] = c->context_len;
        memcpy(&now[7], &rb, 4);
        memcpy(&now[8], &ne, 4);
        now[9] = (uint32_t)c->tied_embeddings;
        for (i = 0; i < 10 && ck[i] == now[i]; i++) {}
        fti_map_close(&map);
        if (i < 10 && (i == 7 || i == 8)) {
            float a, b;
            memcpy(&a, &ck[i], 4);
            memcpy(&b, &now[i], 4);
            return fti_error_set(err, FTI_ERR_MISMATCH, "%s: checkpoint is of another model "
                                 "(%s %.9g there, %.9g here)", path, names[i], (double)a,
                                 (double)b);
        }
        if (i < 10)
            return fti_error_set(err, FTI_ERR_MISMATCH, "%s: checkpoint is of another model "
                                 "(%s %lu there, %lu here)", path, names[i],
                                 (unsigned long)ck[i], (unsigned long)now[i]);
        if ((flags & 1u) != (t->base ? 1u : 0u))
            return fti_error_set(err, FTI_ERR_MISMATCH, "%s: checkpoint is of a %s run, this "
                                 "is %s", path, flags & 1u ? "LoRA" : "full-training",
                                 t->base ? "LoRA" : "full training");
        if (n_train != t->n_train)
            return fti_error_set(err, FTI_ERR_MISMATCH, "%s: checkpoint trains %llu "
                                 "parameters, this run %llu (another LoRA rank)", path,
                                 (unsigned long long)n_train,
                                 (unsigned long long)t->n_train);
        if (total != t->total_steps)
            return fti_error_set(err, FTI_ERR_MISMATCH, "%s: checkpoint is of a %llu-step "
                                 "schedule, this run has %llu steps", path,
                                 (unsigned long long)total,
                                 (unsigned long long)t->total_steps);
        return fti_error_set(err, FTI_ERR_MISMATCH,
                             "%s: checkpoint is of another run: the training options (batch, "
                             "context, learning rate, schedule, clipping, AdamW, evaluation, "
                             "seed, LoRA, bf16, dropout) or the data differ", path);
    }
    n_hist = fti_read_u64(&rd);
    if (rd.err || n_hist != step || n_hist > fti_reader_left(&rd) / 4) goto format;
    {
        /* validate the rest of the structure before changing anything in t */
        fti_reader probe = rd;
        fti_read_bytes(&probe, (size_t)n_hist * 4);
        n_val = fti_read_u64(&probe);
        if (probe.err || n_val > fti_reader_left(&probe) / 12) goto format;
        fti_read_bytes(&probe, (size_t)n_val * 12);
        if (probe.err || fti_reader_left(&probe) != 3 * 4 * (size_t)n_train) goto format;
    }
    /* room for the histories first, so that a failed allocation leaves t as it was */
    if (n_hist > t->cap_hist) {
        float *h = (float *)fti_realloc(t->hist, (size_t)n_hist * sizeof(float));
        if (!h) goto nomem;
        t->hist = h;
        t->cap_hist = (size_t)n_hist;
    }
    if (n_val > t->cap_val) {
        float *vh = (float *)fti_realloc(t->val_hist, (size_t)n_val * sizeof(float));
        uint64_t *vsteps;
        if (!vh) goto nomem;
        t->val_hist = vh;
        vsteps = (uint64_t *)fti_realloc(t->val_steps, (size_t)n_val * sizeof(uint64_t));
        if (!vsteps) goto nomem;
        t->val_steps = vsteps;
        t->cap_val = (size_t)n_val;
    }
    t->n_hist = 0;
    for (i = 0; i < n_hist; i++)
        fti__train_push(&t->hist, &t->n_hist, &t->cap_hist, fti_read_f32(&rd));
    fti_read_u64(&rd); /* n_val, checked above */
    t->n_val = 0;
    for (i = 0; i < n_val; i++) {
        uint64_t s = fti_read_u64(&rd);
        float v = fti_read_f32(&rd);
        fti__train_push_val(t, s, v);
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
    /* the stats' last step is the checkpoint's (its loss as the history keeps it, f32): a run
     * resumed after its last step reports its real loss, not a step that never ran */
    memset(&t->last, 0, sizeof(t->last));
    if (n_hist) t->last.loss = (double)t->hist[n_hist - 1];
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

/* --- model registry ----------------------------------------------------------------------------
 * HOME/models/<id>/model.gguf and card.json; HOME/models/aliases.json. Ids are the first 16 hex
 * digits of the model file's SHA-256. Every file is written atomically; the alias file is
 * rewritten whole (read, change, write to a temp file, rename), so a reader always sees either
 * the old or the new set of aliases. */
#define FTI__REG_ID_LEN 16
#define FTI__REG_MAX_CARD (16u << 20)

static char *fti__reg_path(const char *home, const char *id, const char *file) {
    char *models = fti_path_join(home, "models"), *dir, *p;
    if (!models) return NULL;
    if (!id && !file) return models;
    if (!id) {
        p = fti_path_join(models, file);
        fti_free(models);
        return p;
    }
    dir = fti_path_join(models, id);
    fti_free(models);
    if (!dir || !file) return dir;
    p = fti_path_join(dir, file);
    fti_free(dir);
    return p;
}

static int fti__reg_valid_name(const char *s, size_t max_len) {
    size_t i, n = s ? strlen(s) : 0;
    if (n == 0 || n > max_len || s[0] == '.') return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* The shortest id prefix resolved as one (FTI_ERR_INVALID "too short" below it): an alias of
 * this many hex digits or more is refused, since it would hide the models its name starts. */
#define FTI__REG_MIN_PREFIX 4

/* FTI_OK when alias is a name promote accepts, else FTI_ERR_INVALID saying why. */
static fti_result fti__reg_alias_check(const char *alias, fti_error *err) {
    if (!fti__reg_valid_name(alias, 64))
        return fti_error_set(err, FTI_ERR_INVALID, "registry: bad alias name '%s' (1-64 letters, "
                             "digits, '-', '_', '.'; not starting with '.')", alias ? alias : "");
    if (strlen(alias) >= FTI__REG_MIN_PREFIX &&
        strspn(alias, "0123456789abcdefABCDEF") == strlen(alias))
        /* an alias wins over an id prefix when both match: it would hide a model */
        return fti_error_set(err, FTI_ERR_INVALID, "registry: alias '%s' reads as a model id "
                             "(hex digits only): give it a name", alias);
    return FTI_OK;
}

/* FTI_OK when name is one line of text for a card (1-200 bytes of UTF-8, no control
 * characters: it is general.name, the card's and the registry listing's name). */
static fti_result fti__reg_name_check(const char *name, fti_error *err) {
    size_t n = name ? strlen(name) : 0, k;
    int bad = n == 0 || n > 200 || fti_utf8_valid_prefix((const unsigned char *)name, n) != n;
    for (k = 0; k < n && !bad; k++)
        bad = (unsigned char)name[k] < 0x20 || name[k] == 0x7f;
    return bad ? fti_error_set(err, FTI_ERR_INVALID, "registry: bad model name (1-200 bytes of "
                               "text on one line: UTF-8, no control characters)")
               : FTI_OK;
}

/* The card members that name files of the workspace (the training run's directory, its metrics
 * log and loss curve, a LoRA run's adapter file): stored relative to HOME, so a copied or moved
 * workspace shows its own files (fti_registry_card joins them to the home it is asked with). */
static int fti__reg_is_path_key(const char *key, size_t n) {
    static const char *const keys[] = {"run", "metrics", "loss_curve", "adapter"};
    size_t i;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i]) == n && memcmp(keys[i], key, n) == 0) return 1;
    return 0;
}

/* The length of dir without trailing '/' (but "/" stays 1). */
static size_t fti__reg_dir_len(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    return n;
}

/* v with the directory dir (dl bytes) and the slashes after it removed when v lies inside dir,
 * else NULL. */
static const char *fti__reg_under(const char *v, size_t vl, const char *dir, size_t dl) {
    if (dl == 0 || vl <= dl || memcmp(v, dir, dl) != 0 || (v[dl] != '/' && dir[dl - 1] != '/'))
        return NULL;
    v += dl;
    while (*v == '/') v++;
    return *v ? v : NULL;
}

/* Writes a parsed JSON value back as text (objects keep their member order). */
static void fti__reg_json_copy(fti_jw *w, const fti_json *v) {
    const fti_json *c;
    switch (v->type) {
    case FTI_JSON_NULL: fti_jw_null(w); break;
    case FTI_JSON_FALSE: fti_jw_bool(w, 0); break;
    case FTI_JSON_TRUE: fti_jw_bool(w, 1); break;
    case FTI_JSON_NUMBER:
        if (v->is_int) fti_jw_int(w, v->i);
        else fti_jw_num(w, v->num);
        break;
    case FTI_JSON_STRING: fti_jw_strn(w, v->str, v->len); break;
    case FTI_JSON_ARRAY:
        fti_jw_arr_begin(w);
        for (c = v->child; c; c = c->next) fti__reg_json_copy(w, c);
        fti_jw_arr_end(w);
        break;
    case FTI_JSON_OBJECT:
        fti_jw_obj_begin(w);
        for (c = v->child; c; c = c->next) {
            /* the key as it is (no copy: a copy that failed for want of memory wrote "" and
             * the card was saved without the member's name) */
            fti_jw_keyn(w, c->key, c->key_len);
            fti__reg_json_copy(w, c);
        }
        fti_jw_obj_end(w);
        break;
    }
}

static fti_result fti__reg_read_json(const char *path, fti_json_doc **doc, fti_error *err) {
    void *text = NULL;
    size_t len = 0;
    fti_result r = fti_file_read(path, FTI__REG_MAX_CARD, &text, &len, err);
    if (r != FTI_OK) return r;
    r = fti_json_parse((const char *)text, len, NULL, doc, NULL, err);
    fti_free(text);
    if (r != FTI_OK) fti_error_prefix(err, path);
    return r;
}

/* fti_registry_add, given the file's SHA-256 when the caller has it (NULL: hashed here). */
static fti_result fti__reg_add(const char *home, const char *model_file,
                               const unsigned char *sha256, const char *card_json,
                               size_t card_len, char id_out[17], fti_error *err) {
    unsigned char digest[32];
    char hex[65], id[FTI__REG_ID_LEN + 1], created[32], rel[FTI__REG_ID_LEN + 20];
    size_t home_len;
    char *dir = NULL, *gguf = NULL, *card = NULL;
    fti_json_doc *doc = NULL;
    fti_map map;
    fti_buf out;
    fti_jw w;
    fti_result r;
    const fti_json *root, *c;
    memset(&out, 0, sizeof(out));
    if (!home || !model_file || !id_out)
        return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    if (card_json && card_len) {
        if ((r = fti_json_parse(card_json, card_len, NULL, &doc, NULL, err)) != FTI_OK) return r;
        if (fti_json_root(doc)->type != FTI_JSON_OBJECT) {
            fti_json_free(doc);
            return fti_error_set(err, FTI_ERR_INVALID, "registry: the card is not a JSON object");
        }
    }
    if (sha256) memcpy(digest, sha256, 32);
    else if ((r = fti_sha256_file(model_file, digest, err)) != FTI_OK) goto done;
    fti_sha256_hex(digest, hex);
    memcpy(id, hex, FTI__REG_ID_LEN);
    id[FTI__REG_ID_LEN] = 0;
    dir = fti__reg_path(home, id, NULL);
    gguf = fti__reg_path(home, id, "model.gguf");
    card = fti__reg_path(home, id, "card.json");
    if (!dir || !gguf || !card) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
        goto done;
    }
    if ((r = fti_mkdirs(dir, err)) != FTI_OK) goto done;
    if (strcmp(model_file, gguf) != 0) {
        if ((r = fti_map_open(&map, model_file, err)) != FTI_OK) goto done;
        r = fti_file_write_atomic(gguf, map.data, map.len, err);
        fti_map_close(&map);
        if (r != FTI_OK) goto done;
    }
    fti_time_iso8601(fti_time_wall(), created);
    fti_jw_init(&w, &out, 1);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "id");
    fti_jw_str(&w, id);
    /* relative to HOME (fti_registry_card gives HOME/models/<id>/model.gguf): a card of a
     * build before 2026-11-29 has the home as it was given at registration */
    snprintf(rel, sizeof rel, "models/%s/model.gguf", id);
    fti_jw_key(&w, "path");
    fti_jw_str(&w, rel);
    fti_jw_key(&w, "sha256");
    fti_jw_str(&w, hex);
    fti_jw_key(&w, "created");
    fti_jw_str(&w, created);
    root = doc ? fti_json_root(doc) : NULL;
    home_len = fti__reg_dir_len(home);
    for (c = root ? root->child : NULL; c; c = c->next) {
        const char *in;
        if ((c->key_len == 2 && memcmp(c->key, "id", 2) == 0) ||
            (c->key_len == 4 && memcmp(c->key, "path", 4) == 0) ||
            (c->key_len == 6 && memcmp(c->key, "sha256", 6) == 0) ||
            (c->key_len == 7 && memcmp(c->key, "created", 7) == 0))
            continue;
        fti_jw_keyn(&w, c->key, c->key_len); /* (as in fti__reg_json_copy) */
        if (c->type == FTI_JSON_STRING && fti__reg_is_path_key(c->key, c->key_len) &&
            (in = fti__reg_under(c->str, c->len, home, home_len)) != NULL)
            fti_jw_str(&w, in); /* a file of the workspace: relative to it */
        else
            fti__reg_json_copy(&w, c);
    }
    fti_jw_obj_end(&w);
    fti_buf_putc(&out, '\n');
    if (out.oom) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
        goto done;
    }
    if ((r = fti_file_write_atomic(card, out.data, out.len, err)) != FTI_OK) goto done;
    memcpy(id_out, id, FTI__REG_ID_LEN + 1);
done:
    fti_buf_free(&out);
    fti_json_free(doc);
    fti_free(dir);
    fti_free(gguf);
    fti_free(card);
    return r;
}

FTIDEF fti_result fti_registry_add(const char *home, const char *model_file,
                                   const char *card_json, size_t card_len, char id_out[17],
                                   fti_error *err) {
    return fti__reg_add(home, model_file, NULL, card_json, card_len, id_out, err);
}

/* fti_registry_verify's check of model id against its card, already read and parsed (root):
 * FTI_ERR_NOT_FOUND for a card gc left, else the file's SHA-256 against the card's (a card
 * without one passes); path_out as fti_registry_verify's. For a caller that has read the card
 * for its own fields (fti__tr_load_parent): the card is read once, and the hash checked is the
 * one of the card those fields came from. */
static fti_result fti__reg_verify_card(const char *id, const fti_json *root, char **path_out,
                                       fti_error *err) {
    char hex[65];
    unsigned char d[32];
    const char *path, *want;
    fti_result r;
    if (path_out) *path_out = NULL;
    if (fti_json_get(root, "removed"))
        return fti_error_set(err, FTI_ERR_NOT_FOUND, "model %s was removed by gc (%s): only its "
                             "card is left", id, fti_json_get_str(root, "removed", "?"));
    path = fti_json_get_str(root, "path", "");
    want = fti_json_get_str(root, "sha256", "");
    if ((r = fti_sha256_file(path, d, err)) != FTI_OK) return r;
    fti_sha256_hex(d, hex);
    if (*want && strcmp(hex, want) != 0)
        r = fti_error_set(err, FTI_ERR_CHECKSUM, "%s: SHA-256 %.16s... is not its card's "
                          "%.16s...: the file changed after registration (damaged, or another "
                          "file copied over it; restore it from a backup)", path, hex, want);
    if (path_out && (r == FTI_OK || r == FTI_ERR_CHECKSUM)) {
        *path_out = fti_strdup(path);
        if (!*path_out) r = fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
    }
    return r;
}

FTIDEF fti_result fti_registry_verify(const char *home, const char *ref, char id_out[17],
                                      char **path_out, fti_error *err) {
    char id[17];
    fti_buf card;
    fti_json_doc *doc = NULL;
    fti_result r;
    memset(&card, 0, sizeof card);
    if (path_out) *path_out = NULL;
    if ((r = fti_registry_resolve(home, ref, id, err)) != FTI_OK ||
        (r = fti_registry_card(home, id, &card, err)) != FTI_OK)
        goto done;
    if ((r = fti_json_parse(card.data, card.len, NULL, &doc, NULL, err)) != FTI_OK) goto done;
    if (id_out) memcpy(id_out, id, 17);
    r = fti__reg_verify_card(id, fti_json_root(doc), path_out, err);
done:
    fti_json_free(doc);
    fti_buf_free(&card);
    return r;
}

FTIDEF fti_result fti_registry_card(const char *home, const char *id, fti_buf *out,
                                    fti_error *err) {
    char *card, *gguf;
    void *text = NULL;
    size_t len = 0;
    fti_result r;
    fti_json_doc *doc = NULL;
    if (!home || !out || !fti__reg_valid_name(id, 64))
        return fti_error_set(err, FTI_ERR_INVALID, "registry: bad model id");
    card = fti__reg_path(home, id, "card.json");
    if (!card) return fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
    if (!fti_path_exists(card)) {
        fti_free(card);
        return fti_error_set(err, FTI_ERR_NOT_FOUND, "registry: no model %s", id);
    }
    r = fti_file_read(card, FTI__REG_MAX_CARD, &text, &len, err);
    if (r == FTI_OK) { /* a damaged card is named: the caller's parse would not know the file */
        fti_error perr;
        memset(&perr, 0, sizeof(perr));
        r = fti_json_parse((const char *)text, len, NULL, &doc, NULL, &perr);
        if (r == FTI_OK && fti_json_root(doc)->type != FTI_JSON_OBJECT)
            r = fti_error_set(&perr, FTI_ERR_FORMAT, "not a JSON object");
        if (r != FTI_OK)
            r = fti_error_set(err, r == FTI_ERR_NOMEM ? r : FTI_ERR_FORMAT,
                              "%s: damaged model card: %s", card, perr.msg);
    }
    fti_free(card);
    if (r != FTI_OK) {
        fti_json_free(doc);
        fti_free(text);
        return r;
    }
    /* "path" as the file is now, HOME/models/<id>/model.gguf: the card has the home as it was
     * given at registration (./twin, relative to that run's directory), and a workspace may be
     * used from another directory (cron) or moved (a backup restored elsewhere) */
    gguf = fti__reg_path(home, id, "model.gguf");
    if (gguf) {
        const fti_json *c;
        fti_jw w;
        /* the files of the workspace ("run", "metrics", ...): relative to HOME in cards since
         * 2026-11-29, joined to it here; older cards have them under the home as given at
         * registration (the stored "path" without /models/<id>/model.gguf), shown under this
         * home when the file is there (a copied or moved workspace), else as they are */
        const char *stored = fti_json_get_str(fti_json_root(doc), "path", "");
        char tail[FTI__REG_ID_LEN + 40];
        size_t sl = strlen(stored), tl, old_len = 0;
        int relative;
        snprintf(tail, sizeof tail, "models/%s/model.gguf", id);
        tl = strlen(tail);
        relative = strcmp(stored, tail) == 0;
        if (!relative && sl > tl + 1 && strcmp(stored + sl - tl, tail) == 0 &&
            stored[sl - tl - 1] == '/')
            old_len = sl - tl - 1;
        fti_jw_init(&w, out, 1);
        fti_jw_obj_begin(&w);
        for (c = fti_json_root(doc)->child; c; c = c->next) {
            fti_jw_keyn(&w, c->key, c->key_len);
            if (c->key_len == 4 && memcmp(c->key, "path", 4) == 0) {
                fti_jw_str(&w, gguf);
            } else if (c->type == FTI_JSON_STRING && c->len && c->str[0] != '/' && relative &&
                       fti__reg_is_path_key(c->key, c->key_len)) {
                char *p = fti_path_join(home, c->str);
                if (!p) out->oom = 1;
                fti_jw_str(&w, p ? p : c->str);
                fti_free(p);
            } else if (c->type == FTI_JSON_STRING && old_len &&
                       fti__reg_is_path_key(c->key, c->key_len) &&
                       fti__reg_under(c->str, c->len, stored, old_len)) {
                char *p = fti_path_join(home, fti__reg_under(c->str, c->len, stored, old_len));
                if (!p) out->oom = 1;
                fti_jw_str(&w, p && fti_path_exists(p) ? p : c->str);
                fti_free(p);
            } else {
                fti__reg_json_copy(&w, c);
            }
        }
        fti_jw_obj_end(&w);
        fti_buf_putc(out, '\n');
    } else {
        fti_buf_append(out, text, len);
    }
    fti_json_free(doc);
    fti_free(gguf);
    fti_free(text);
    return out->oom ? fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory") : FTI_OK;
}

typedef struct fti__reg_entry {
    char id[FTI__REG_ID_LEN + 1];
    char created[32];
} fti__reg_entry;

typedef struct fti__reg_scan {
    fti__reg_entry *e;
    size_t n, cap;
    int oom;
    size_t card_len; /* the length of "HOME/models/<id>/card.json": deeper cards are no models */
} fti__reg_scan;

static fti_result fti__reg_scan_fn(void *user, const char *path, uint64_t size_bytes) {
    fti__reg_scan *s = (fti__reg_scan *)user;
    const char *base = fti_path_base(path);
    size_t n = strlen(path);
    fti_json_doc *doc = NULL;
    fti_result r;
    (void)size_bytes;
    if (strcmp(base, "card.json") != 0 || n < 10 + FTI__REG_ID_LEN + 1) return FTI_OK;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        fti__reg_entry *p = (fti__reg_entry *)fti_realloc(s->e, nc * sizeof(*p));
        if (!p) {
            s->oom = 1;
            return FTI_ERR_NOMEM;
        }
        s->e = p;
        s->cap = nc;
    }
    memset(&s->e[s->n], 0, sizeof(s->e[0]));
    r = fti__reg_read_json(path, &doc, NULL);
    if (r == FTI_ERR_NOMEM) { /* a model is not skipped for want of memory */
        s->oom = 1;
        return r;
    }
    if (r == FTI_OK) {
        const char *id = fti_json_get_str(fti_json_root(doc), "id", "");
        const char *cr = fti_json_get_str(fti_json_root(doc), "created", "");
        /* a model is models/<id>/card.json: a copy of its folder elsewhere under models/
         * (models/<id>.bak/, a backup) would list the id twice and make lookups ambiguous */
        if (strlen(id) == FTI__REG_ID_LEN && n == s->card_len &&
            memcmp(path + n - FTI__REG_ID_LEN - 10, id, FTI__REG_ID_LEN) == 0 &&
            path[n - FTI__REG_ID_LEN - 11] == '/') {
            memcpy(s->e[s->n].id, id, FTI__REG_ID_LEN + 1);
            strncpy(s->e[s->n].created, cr, 31);
            s->n++;
        }
        fti_json_free(doc);
    }
    return FTI_OK;
}

static int fti__reg_cmp(const fti__reg_entry *a, const fti__reg_entry *b) {
    int c = strcmp(a->created, b->created);
    return c ? c : strcmp(a->id, b->id);
}

FTIDEF fti_result fti_registry_list(const char *home, fti_buf *out, fti_error *err) {
    fti__reg_scan s;
    char *models;
    size_t i, j;
    fti_result r = FTI_OK;
    if (!home || !out) return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    memset(&s, 0, sizeof(s));
    models = fti__reg_path(home, NULL, NULL);
    if (!models) return fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
    s.card_len = strlen(models) + (models[0] && models[strlen(models) - 1] == '/' ? 0 : 1) +
                 FTI__REG_ID_LEN + 10;
    if (fti_path_is_dir(models)) r = fti_walk(models, fti__reg_scan_fn, &s, err);
    fti_free(models);
    if (r == FTI_ERR_NOMEM) /* the walk callback has no error to fill */
        r = fti_error_set(err, r, "registry: out of memory while listing models");
    if (r == FTI_OK) {
        for (i = 1; i < s.n; i++) /* insertion sort: registries are small */
            for (j = i; j > 0 && fti__reg_cmp(&s.e[j - 1], &s.e[j]) > 0; j--) {
                fti__reg_entry tmp = s.e[j];
                s.e[j] = s.e[j - 1];
                s.e[j - 1] = tmp;
            }
        for (i = 0; i < s.n; i++) {
            fti_buf_puts(out, s.e[i].id);
            fti_buf_putc(out, '\n');
        }
        if (out->oom) r = fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
    }
    fti_free(s.e);
    return r;
}

FTIDEF fti_result fti_registry_each(const char *home, fti_registry_each_fn fn, void *user,
                                    fti_error *err) {
    fti_buf ids, card;
    const char *p;
    int stop = 0;
    fti_result r;
    memset(&ids, 0, sizeof ids);
    memset(&card, 0, sizeof card);
    if (!fn) return fti_error_set(err, FTI_ERR_INVALID, "registry: no function to call");
    if ((r = fti_registry_list(home, &ids, err)) != FTI_OK) {
        fti_buf_free(&ids);
        return r;
    }
    for (p = ids.data; !stop && p && *p; p += FTI__REG_ID_LEN + 1) {
        char id[FTI__REG_ID_LEN + 1];
        fti_json_doc *doc = NULL;
        memcpy(id, p, FTI__REG_ID_LEN);
        id[FTI__REG_ID_LEN] = 0;
        card.len = 0;
        if (fti_registry_card(home, id, &card, NULL) == FTI_OK &&
            fti_json_parse(card.data, card.len, NULL, &doc, NULL, NULL) == FTI_OK)
            stop = fn(user, id, fti_json_root(doc));
        fti_json_free(doc);
    }
    fti_buf_free(&ids);
    fti_buf_free(&card);
    return FTI_OK;
}

/* The alias table: read (missing file = empty), changed in memory, written back atomically. */
typedef struct fti__reg_alias {
    char name[65];
    char id[FTI__REG_ID_LEN + 1];
    char (*hist)[FTI__REG_ID_LEN + 1];
    size_t n_hist;
} fti__reg_alias;

typedef struct fti__reg_aliases {
    fti__reg_alias *a;
    size_t n;
} fti__reg_aliases;

static void fti__reg_aliases_free(fti__reg_aliases *t) {
    size_t i;
    for (i = 0; i < t->n; i++) fti_free(t->a[i].hist);
    fti_free(t->a);
    t->a = NULL;
    t->n = 0;
}

static fti_result fti__reg_aliases_load(const char *home, fti__reg_aliases *t, fti_error *err) {
    char *path = fti__reg_path(home, NULL, "aliases.json");
    fti_json_doc *doc = NULL;
    const fti_json *root, *c, *h;
    fti_result r;
    const fti_json *e;
    memset(t, 0, sizeof(*t));
    if (!path) return fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
    if (!fti_path_exists(path)) {
        fti_free(path);
        return FTI_OK;
    }
    r = fti__reg_read_json(path, &doc, err);
    if (r != FTI_OK) {
        fti_free(path);
        return r;
    }
    root = fti_json_root(doc);
    if (root->type != FTI_JSON_OBJECT) {
        fti_json_free(doc);
        r = fti_error_set(err, FTI_ERR_FORMAT, "%s: not a JSON object", path);
        fti_free(path);
        return r;
    }
    t->a = (fti__reg_alias *)fti_calloc(root->len ? root->len : 1, sizeof(fti__reg_alias));
    if (!t->a) goto nomem;
    for (c = root->child; c; c = c->next) {
        fti__reg_alias *al = &t->a[t->n];
        const char *id = fti_json_get_str(c, "id", "");
        if (c->key_len == 0 || c->key_len > 64 || strlen(id) != FTI__REG_ID_LEN) continue;
        memcpy(al->name, c->key, c->key_len);
        al->name[c->key_len] = 0;
        memcpy(al->id, id, FTI__REG_ID_LEN + 1);
        h = fti_json_get(c, "history");
        if (h && h->type == FTI_JSON_ARRAY && h->len) {
            al->hist = (char(*)[FTI__REG_ID_LEN + 1])fti_calloc(h->len, FTI__REG_ID_LEN + 1);
            if (!al->hist) goto nomem;
            /* along the siblings: fti_json_at(h, k) walks from the first, and a long history
             * (100,000 entries) kept every registry command busy for minutes */
            for (e = h->child; e; e = e->next)
                if (e->type == FTI_JSON_STRING && e->len == FTI__REG_ID_LEN)
                    memcpy(al->hist[al->n_hist++], e->str, FTI__REG_ID_LEN + 1);
        }
        t->n++;
    }
    fti_json_free(doc);
    fti_free(path);
    return FTI_OK;
nomem:
    fti_json_free(doc);
    fti_free(path);
    fti__reg_aliases_free(t);
    return fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
}

static void fti__reg_aliases_json(const fti__reg_aliases *t, fti_buf *out) {
    fti_jw w;
    size_t i, k;
    fti_jw_init(&w, out, 1);
    fti_jw_obj_begin(&w);
    for (i = 0; i < t->n; i++) {
        fti_jw_key(&w, t->a[i].name);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "id");
        fti_jw_str(&w, t->a[i].id);
        fti_jw_key(&w, "history");
        fti_jw_arr_begin(&w);
        for (k = 0; k < t->a[i].n_hist; k++) fti_jw_str(&w, t->a[i].hist[k]);
        fti_jw_arr_end(&w);
        fti_jw_obj_end(&w);
    }
    fti_jw_obj_end(&w);
    fti_buf_putc(out, '\n');
}

static fti_result fti__reg_aliases_save(const char *home, const fti__reg_aliases *t,
                                        fti_error *err) {
    char *path = fti__reg_path(home, NULL, "aliases.json"), *dir = fti__reg_path(home, NULL, NULL);
    fti_buf out;
    fti_result r;
    memset(&out, 0, sizeof(out));
    if (!path || !dir) {
        fti_free(path);
        fti_free(dir);
        return fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
    }
    fti__reg_aliases_json(t, &out);
    r = out.oom ? fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory")
                : fti_mkdirs(dir, err);
    if (r == FTI_OK) r = fti_file_write_atomic(path, out.data, out.len, err);
    fti_buf_free(&out);
    fti_free(path);
    fti_free(dir);
    return r;
}

/* The registry's lock, HOME/models/.lock (flock, exclusive): alias changes (promote, rollback)
 * and fti_workspace_gc's decisions and removals hold it, so none of them overwrites another's
 * aliases.json, and no model is promoted while gc removes it. It waits: every holder is brief.
 * *fd: the descriptor to give fti__reg_unlock (-1 on an error). */
static fti_result fti__reg_lock(const char *home, int *fd, fti_error *err) {
    char *dir = fti__reg_path(home, NULL, NULL), *path = fti__reg_path(home, NULL, ".lock");
    fti_result r = FTI_OK;
    *fd = -1;
    if (!dir || !path) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
    } else if ((r = fti_mkdirs(dir, err)) == FTI_OK) {
        r = fti__lock_file(path, 0, 1, fd, err);
    }
    fti_free(dir);
    fti_free(path);
    return r;
}

static void fti__reg_unlock(int fd) {
    if (fd >= 0) close(fd); /* (closing releases the flock) */
}

static fti__reg_alias *fti__reg_alias_find(fti__reg_aliases *t, const char *name) {
    size_t i;
    for (i = 0; i < t->n; i++)
        if (strcmp(t->a[i].name, name) == 0) return &t->a[i];
    return NULL;
}

FTIDEF fti_result fti_registry_aliases(const char *home, fti_buf *out, fti_error *err) {
    fti__reg_aliases t;
    fti_result r;
    if (!home || !out) return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    if ((r = fti__reg_aliases_load(home, &t, err)) != FTI_OK) return r;
    fti__reg_aliases_json(&t, out);
    fti__reg_aliases_free(&t);
    return out->oom ? fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory") : FTI_OK;
}

FTIDEF fti_result fti_registry_resolve(const char *home, const char *ref, char id_out[17],
                                       fti_error *err) {
    fti__reg_aliases t;
    fti__reg_alias *al;
    fti_buf list, names;
    fti_result r;
    size_t n_match = 0, rl, k;
    const char *p;
    char want[FTI__REG_ID_LEN + 1];
    int hex;
    if (!home || !ref || !id_out || !*ref)
        return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    if ((r = fti__reg_aliases_load(home, &t, err)) != FTI_OK) return r;
    al = fti__reg_alias_find(&t, ref);
    if (al) {
        memcpy(id_out, al->id, FTI__REG_ID_LEN + 1);
        fti__reg_aliases_free(&t);
        return FTI_OK;
    }
    fti__reg_aliases_free(&t);
    /* an id or a prefix of one: hex digits (either case), FTI__REG_MIN_PREFIX to 16 of them */
    rl = strlen(ref);
    hex = rl <= FTI__REG_ID_LEN && strspn(ref, "0123456789abcdefABCDEF") == rl;
    if (hex && rl < FTI__REG_MIN_PREFIX)
        return fti_error_set(err, FTI_ERR_INVALID, "registry %s: no alias '%s', and an id prefix "
                             "needs at least %d hex digits", home, ref, FTI__REG_MIN_PREFIX);
    if (!hex) /* the home searched is named: a wrong --home or $FTI_HOME is the usual cause */
        return fti_error_set(err, FTI_ERR_NOT_FOUND, "registry %s: no model or alias '%s'", home,
                             ref);
    for (k = 0; k < rl; k++) /* ids are lower case */
        want[k] = (char)(ref[k] >= 'A' && ref[k] <= 'F' ? ref[k] - 'A' + 'a' : ref[k]);
    want[rl] = 0;
    memset(&list, 0, sizeof(list));
    memset(&names, 0, sizeof(names));
    if ((r = fti_registry_list(home, &list, err)) != FTI_OK) {
        fti_buf_free(&list);
        return r;
    }
    for (p = list.data; p && *p; p += FTI__REG_ID_LEN + 1)
        if (memcmp(p, want, rl) == 0) {
            if (n_match++ == 0) {
                memcpy(id_out, p, FTI__REG_ID_LEN);
                id_out[FTI__REG_ID_LEN] = 0;
            }
            if (n_match <= 8) { /* the candidates, for the message (oldest first) */
                fti_buf_puts(&names, n_match > 1 ? ", " : "");
                fti_buf_append(&names, p, FTI__REG_ID_LEN);
            }
        }
    fti_buf_free(&list);
    if (n_match == 1) {
        fti_buf_free(&names);
        return FTI_OK;
    }
    if (n_match) {
        fti_buf_putc(&names, 0);
        r = fti_error_set(err, FTI_ERR_INVALID, "registry %s: id prefix '%s' is ambiguous: it "
                          "starts %lu models (%s%s); give more digits", home, ref,
                          (unsigned long)n_match, names.oom ? "?" : names.data,
                          n_match > 8 ? ", ..." : "");
        fti_buf_free(&names);
        return r;
    }
    fti_buf_free(&names);
    if (rl == FTI__REG_ID_LEN) { /* a whole id whose card is damaged: listing skips it, say why */
        fti_buf card;
        memset(&card, 0, sizeof(card));
        r = fti_registry_card(home, want, &card, err);
        fti_buf_free(&card);
        if (r != FTI_OK && r != FTI_ERR_NOT_FOUND && r != FTI_ERR_INVALID) return r;
    }
    return fti_error_set(err, FTI_ERR_NOT_FOUND, "registry %s: no model or alias '%s'", home,
                         ref);
}

FTIDEF fti_result fti_registry_model_path(const char *home, const char *ref, char **path_out,
                                          char id_out[17], fti_error *err) {
    char rid[FTI__REG_ID_LEN + 1];
    char *path;
    fti_result r;
    if (path_out) *path_out = NULL;
    if (!path_out) return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    if ((r = fti_registry_resolve(home, ref, rid, err)) != FTI_OK) return r;
    path = fti__reg_path(home, rid, "model.gguf");
    if (!path) return fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
    if (!fti_path_exists(path)) { /* gc took it (the card says when), or the workspace is hurt */
        fti_buf card;
        fti_json_doc *doc = NULL;
        const char *removed = NULL;
        memset(&card, 0, sizeof(card));
        if (fti_registry_card(home, rid, &card, NULL) == FTI_OK &&
            fti_json_parse(card.data, card.len, NULL, &doc, NULL, NULL) == FTI_OK)
            removed = fti_json_get_str(fti_json_root(doc), "removed", NULL);
        if (removed)
            r = fti_error_set(err, FTI_ERR_NOT_FOUND, "registry %s: model %s ('%s') was removed "
                              "by gc (%s): only its card is left", home, rid, ref, removed);
        else
            r = fti_error_set(err, FTI_ERR_NOT_FOUND, "registry %s: model %s ('%s') has no "
                              "model file: %s is missing", home, rid, ref, path);
        fti_json_free(doc);
        fti_buf_free(&card);
        fti_free(path);
        return r;
    }
    if (id_out) memcpy(id_out, rid, FTI__REG_ID_LEN + 1);
    *path_out = path;
    return FTI_OK;
}

static fti_result fti__reg_promote(const char *home, const char *id, const char *alias,
                                   fti_error *err) {
    fti__reg_aliases t;
    fti__reg_alias *al;
    fti_buf card;
    char rid[FTI__REG_ID_LEN + 1];
    fti_result r;
    if (!home || !id) return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    if ((r = fti__reg_alias_check(alias, err)) != FTI_OK) return r;
    if ((r = fti_registry_resolve(home, id, rid, err)) != FTI_OK) return r;
    memset(&card, 0, sizeof(card));
    r = fti_registry_card(home, rid, &card, err); /* must exist, with its files */
    if (r == FTI_OK) {
        fti_json_doc *doc = NULL;
        if (fti_json_parse(card.data, card.len, NULL, &doc, NULL, NULL) == FTI_OK &&
            fti_json_get(fti_json_root(doc), "removed"))
            r = fti_error_set(err, FTI_ERR_NOT_FOUND, "registry: model %s was removed by gc "
                              "(%s): only its card is left", rid,
                              fti_json_get_str(fti_json_root(doc), "removed", "?"));
        else if (doc && !strcmp(fti_json_get_str(fti_json_root(doc), "type", ""), "lora_adapter"))
            /* an alias is read as a model (fti-serve, fti-infer, --from): not an adapter */
            r = fti_error_set(err, FTI_ERR_INVALID, "registry: %s is a LoRA adapter, not a "
                              "model: fti-registry merge %s makes the model to promote", rid,
                              rid);
        fti_json_free(doc);
    }
    fti_buf_free(&card);
    if (r != FTI_OK) return r;
    if ((r = fti__reg_aliases_load(home, &t, err)) != FTI_OK) return r;
    al = fti__reg_alias_find(&t, alias);
    if (!al) {
        fti__reg_alias *p = (fti__reg_alias *)fti_realloc(t.a, (t.n + 1) * sizeof(*p));
        if (!p) {
            fti__reg_aliases_free(&t);
            return fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
        }
        t.a = p;
        al = &t.a[t.n++];
        memset(al, 0, sizeof(*al));
        strcpy(al->name, alias);
        memcpy(al->id, rid, FTI__REG_ID_LEN + 1);
    } else if (strcmp(al->id, rid) != 0) {
        char(*h)[FTI__REG_ID_LEN + 1] = (char(*)[FTI__REG_ID_LEN + 1])fti_realloc(
            al->hist, (al->n_hist + 1) * (FTI__REG_ID_LEN + 1));
        if (!h) {
            fti__reg_aliases_free(&t);
            return fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
        }
        al->hist = h;
        memcpy(al->hist[al->n_hist++], al->id, FTI__REG_ID_LEN + 1);
        memcpy(al->id, rid, FTI__REG_ID_LEN + 1);
    }
    r = fti__reg_aliases_save(home, &t, err);
    fti__reg_aliases_free(&t);
    return r;
}

static fti_result fti__reg_rollback(const char *home, const char *alias, char id_out[17],
                                    fti_error *err) {
    fti__reg_aliases t;
    fti__reg_alias *al;
    fti_result r;
    if (!home || !alias) return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    if ((r = fti__reg_aliases_load(home, &t, err)) != FTI_OK) return r;
    al = fti__reg_alias_find(&t, alias);
    if (!al || al->n_hist == 0) {
        fti__reg_aliases_free(&t);
        return fti_error_set(err, FTI_ERR_NOT_FOUND, "registry: alias '%s' has %s", alias,
                             al ? "no earlier target (it was never moved, or gc's "
                                  "--keep-history dropped its history)"
                                : "never been set");
    }
    memcpy(al->id, al->hist[--al->n_hist], FTI__REG_ID_LEN + 1);
    if (id_out) memcpy(id_out, al->id, FTI__REG_ID_LEN + 1);
    r = fti__reg_aliases_save(home, &t, err);
    fti__reg_aliases_free(&t);
    return r;
}

FTIDEF fti_result fti_registry_promote(const char *home, const char *id, const char *alias,
                                       fti_error *err) {
    int fd;
    fti_result r;
    if (!home) return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    if ((r = fti__reg_lock(home, &fd, err)) != FTI_OK) return r;
    r = fti__reg_promote(home, id, alias, err);
    fti__reg_unlock(fd);
    return r;
}

FTIDEF fti_result fti_registry_promote_if(const char *home, const char *id, const char *alias,
                                          const char *expect, fti_error *err) {
    int fd;
    fti_result r;
    fti__reg_aliases t;
    fti__reg_alias *al;
    if (!home || !alias) return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    if (!expect) expect = "";
    if ((r = fti__reg_lock(home, &fd, err)) != FTI_OK) return r;
    if ((r = fti__reg_aliases_load(home, &t, err)) == FTI_OK) {
        al = fti__reg_alias_find(&t, alias);
        if (strcmp(al ? al->id : "", expect) != 0)
            r = fti_error_set(err, FTI_ERR_MISMATCH, "registry %s: alias '%s' points at %s now, "
                              "not %s: changed meanwhile, so not promoted", home, alias,
                              al ? al->id : "no model", *expect ? expect : "no model");
        fti__reg_aliases_free(&t);
    }
    if (r == FTI_OK) r = fti__reg_promote(home, id, alias, err);
    fti__reg_unlock(fd);
    return r;
}

FTIDEF fti_result fti_registry_rollback(const char *home, const char *alias, char id_out[17],
                                        fti_error *err) {
    int fd;
    fti_result r;
    if (!home) return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    if ((r = fti__reg_lock(home, &fd, err)) != FTI_OK) return r;
    r = fti__reg_rollback(home, alias, id_out, err);
    fti__reg_unlock(fd);
    return r;
}

/* The config object of a card (preset NULL: not written). */
static void fti__reg_config_json(fti_jw *w, const fti_model_config *cfg, const char *preset) {
    fti_jw_obj_begin(w);
    if (preset) {
        fti_jw_key(w, "preset");
        fti_jw_str(w, preset);
    }
    fti_jw_key(w, "vocab_size"); fti_jw_int(w, cfg->vocab_size);
    fti_jw_key(w, "dim"); fti_jw_int(w, cfg->dim);
    fti_jw_key(w, "n_layers"); fti_jw_int(w, cfg->n_layers);
    fti_jw_key(w, "n_heads"); fti_jw_int(w, cfg->n_heads);
    fti_jw_key(w, "n_kv_heads"); fti_jw_int(w, cfg->n_kv_heads ? cfg->n_kv_heads : cfg->n_heads);
    fti_jw_key(w, "hidden_dim"); fti_jw_int(w, cfg->hidden_dim);
    fti_jw_key(w, "context_len"); fti_jw_int(w, cfg->context_len);
    fti_jw_key(w, "rope_base"); fti_jw_num(w, cfg->rope_base ? cfg->rope_base : 10000.0);
    fti_jw_key(w, "norm_eps"); fti_jw_num(w, cfg->norm_eps ? cfg->norm_eps : 1e-5);
    fti_jw_key(w, "tied_embeddings"); fti_jw_bool(w, cfg->tied_embeddings);
    fti_jw_key(w, "n_params"); fti_jw_int(w, (int64_t)fti_model_n_params(cfg));
    fti_jw_obj_end(w);
}

/* The string value of key in g as member (absent or not a string: `missing`, or nothing when
 * missing is NULL). */
static void fti__reg_gguf_str(fti_jw *w, const fti_gguf *g, const char *key, const char *member,
                              const char *missing) {
    const char *s = NULL;
    size_t n = 0;
    if (fti_gguf_get_str(g, key, &s, &n, NULL) == FTI_OK) {
        fti_jw_key(w, member);
        fti_jw_strn(w, s, n);
    } else if (missing) {
        fti_jw_key(w, member);
        fti_jw_str(w, missing);
    }
}

/* FTI_OK unless the registered model parent is model id itself or descends from it (its cards'
 * parents lead to id): a model derived from itself or from one of its descendants would make the
 * lineage a cycle (re-adding a registered file with a parent edits its card). */
static fti_result fti__reg_parent_check(const char *home, const char *id, const char *parent,
                                        fti_error *err) {
    char cur[FTI__REG_ID_LEN + 1];
    int depth, more = 1;
    if (strcmp(parent, id) == 0)
        return fti_error_set(err, FTI_ERR_INVALID, "registry: the parent %s is the model itself: "
                             "a model cannot derive from itself", id);
    memcpy(cur, parent, sizeof cur);
    for (depth = 0; depth < 1000 && more; depth++) { /* (a hand-made cycle above: bounded) */
        char *card = fti__reg_path(home, cur, "card.json");
        fti_json_doc *doc = NULL;
        const char *p;
        fti_result r = FTI_OK;
        if (!card) return fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
        more = 0;
        if (fti__reg_read_json(card, &doc, NULL) == FTI_OK) {
            p = fti_json_get_str(fti_json_root(doc), "parent", "");
            if (strlen(p) == FTI__REG_ID_LEN &&
                strspn(p, "0123456789abcdef") == FTI__REG_ID_LEN) {
                if (strcmp(p, id) == 0)
                    r = fti_error_set(err, FTI_ERR_INVALID, "registry: the parent %s derives from "
                                      "%s: the model cannot also derive from it (the lineage "
                                      "would be a cycle)", parent, id);
                memcpy(cur, p, sizeof cur);
                more = 1;
            }
        }
        fti_json_free(doc);
        fti_free(card);
        if (r != FTI_OK) return r;
    }
    return FTI_OK;
}

/* fti_registry_add_file of a file registered before (id): its card is kept, only the fields
 * of the options given change (name; parent, then with "relation": "derived from"); a model gc
 * removed gets its file back and loses "removed". FTI_ERR_FORMAT for a card that is no JSON
 * object (the caller writes a new one). */
static fti_result fti__reg_update(const char *home, const char *id, const char *model_file,
                                  const fti_registry_add_opts *o, const char *parent,
                                  fti_error *err) {
    char *card = fti__reg_path(home, id, "card.json");
    char *gguf = fti__reg_path(home, id, "model.gguf");
    fti_json_doc *doc = NULL;
    const fti_json *c;
    fti_buf out;
    fti_jw w;
    fti_result r;
    int restore, had_name = 0, had_parent = 0;
    memset(&out, 0, sizeof(out));
    if (!card || !gguf) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
        goto done;
    }
    if ((r = fti__reg_read_json(card, &doc, NULL)) != FTI_OK ||
        fti_json_root(doc)->type != FTI_JSON_OBJECT) {
        if (r != FTI_ERR_NOMEM) r = FTI_ERR_FORMAT; /* (said by the caller's new card) */
        else fti_error_set(err, r, "registry: out of memory");
        goto done;
    }
    restore = !fti_path_exists(gguf);
    if (!restore && !o->name && !o->parent && !fti_json_get(fti_json_root(doc), "removed"))
        goto done; /* nothing to change: the card stays as it is, byte for byte */
    if (restore) {
        fti_map map;
        if ((r = fti_map_open(&map, model_file, err)) != FTI_OK) goto done;
        r = fti_file_write_atomic(gguf, map.data, map.len, err);
        fti_map_close(&map);
        if (r != FTI_OK) goto done;
    }
    fti_jw_init(&w, &out, 1);
    fti_jw_obj_begin(&w);
    for (c = fti_json_root(doc)->child; c; c = c->next) {
        if (c->key_len == 7 && memcmp(c->key, "removed", 7) == 0) continue; /* (back) */
        if (o->parent && c->key_len == 8 && memcmp(c->key, "relation", 8) == 0) continue;
        fti_jw_keyn(&w, c->key, c->key_len);
        if (o->name && c->key_len == 4 && memcmp(c->key, "name", 4) == 0) {
            fti_jw_str(&w, o->name);
            had_name = 1;
        } else if (o->parent && c->key_len == 6 && memcmp(c->key, "parent", 6) == 0) {
            fti_jw_str(&w, parent);
            fti_jw_key(&w, "relation");
            fti_jw_str(&w, "derived from");
            had_parent = 1;
        } else {
            fti__reg_json_copy(&w, c);
        }
    }
    if (o->name && !had_name) {
        fti_jw_key(&w, "name");
        fti_jw_str(&w, o->name);
    }
    if (o->parent && !had_parent) {
        fti_jw_key(&w, "parent");
        fti_jw_str(&w, parent);
        fti_jw_key(&w, "relation");
        fti_jw_str(&w, "derived from");
    }
    fti_jw_obj_end(&w);
    fti_buf_putc(&out, '\n');
    r = out.oom ? fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory")
                : fti_file_write_atomic(card, out.data, out.len, err);
done:
    fti_json_free(doc);
    fti_buf_free(&out);
    fti_free(card);
    fti_free(gguf);
    return r;
}

FTIDEF fti_result fti_registry_add_file(const char *home, const char *model_file,
                                        const fti_registry_add_opts *opts, char id_out[17],
                                        fti_error *err) {
    fti_registry_add_opts o;
    fti_gguf *g = NULL;
    fti_model_config cfg;
    const fti_gguf_tensor *emb;
    char parent[FTI__REG_ID_LEN + 1], hex[65], id[FTI__REG_ID_LEN + 1];
    unsigned char digest[32];
    const char *s = NULL;
    size_t n = 0;
    uint64_t u;
    float f;
    fti_buf card;
    fti_jw w;
    fti_result r;
    memset(&o, 0, sizeof(o));
    if (opts) o = *opts;
    memset(&card, 0, sizeof(card));
    if (!home || !model_file || !id_out)
        return fti_error_set(err, FTI_ERR_INVALID, "registry: NULL argument");
    /* every argument is checked before anything is written: a bad alias registered the model
     * and then failed */
    if (o.name && (r = fti__reg_name_check(o.name, err)) != FTI_OK) return r;
    if (o.alias && (r = fti__reg_alias_check(o.alias, err)) != FTI_OK) return r;
    if (o.parent && (r = fti_registry_resolve(home, o.parent, parent, err)) != FTI_OK) {
        fti_error_prefix(err, "registry: the parent");
        return r;
    }
    /* a llama model the engine would load (the reader's checks, the layout's tensors) */
    if ((r = fti_gguf_open(&g, model_file, NULL, err)) != FTI_OK) return r;
    if ((r = fti_gguf_llama_config(g, &cfg, 0, err)) != FTI_OK) goto done;
    /* registered before: its card is kept (a trained model's card has what the file lacks) */
    if ((r = fti_sha256_file(model_file, digest, err)) != FTI_OK) goto done;
    fti_sha256_hex(digest, hex);
    memcpy(id, hex, FTI__REG_ID_LEN);
    id[FTI__REG_ID_LEN] = 0;
    if (o.parent && (r = fti__reg_parent_check(home, id, parent, err)) != FTI_OK) goto done;
    {
        char *cpath = fti__reg_path(home, id, "card.json");
        int known = cpath && fti_path_exists(cpath);
        fti_free(cpath);
        if (!cpath) {
            r = fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
            goto done;
        }
        r = known ? fti__reg_update(home, id, model_file, &o, parent, err) : FTI_ERR_FORMAT;
        if (r == FTI_OK) {
            memcpy(id_out, id, FTI__REG_ID_LEN + 1);
            goto alias;
        }
        if (r != FTI_ERR_FORMAT) goto done; /* (FORMAT: none, or a damaged one: a new card) */
    }
    emb = fti_gguf_find_tensor(g, "token_embd.weight");
    fti_jw_init(&w, &card, 1);
    fti_jw_obj_begin(&w);
    if (o.name) {
        fti_jw_key(&w, "name");
        fti_jw_str(&w, o.name);
    } else if (fti_gguf_get_str(g, "general.name", &s, &n, NULL) == FTI_OK) {
        fti_jw_key(&w, "name");
        fti_jw_strn(&w, s, n);
    } else {
        const char *ext;
        s = fti_path_base(model_file);
        ext = fti_path_ext(s); /* after the dot, or the end */
        fti_jw_key(&w, "name");
        fti_jw_strn(&w, s, *ext ? (size_t)(ext - 1 - s) : strlen(s));
    }
    fti_jw_key(&w, "type"); fti_jw_str(&w, "model");
    fti_jw_key(&w, "architecture"); fti_jw_str(&w, "llama");
    fti_jw_key(&w, "origin"); fti_jw_str(&w, "added");
    fti_jw_key(&w, "source"); fti_jw_str(&w, model_file);
    fti_jw_key(&w, "weight_type");
    fti_jw_str(&w, emb && fti_ggml_type_name(emb->type) ? fti_ggml_type_name(emb->type) : "?");
    /* lineage: the file's own keys (written by fti's trainer, kept by fti-quantize) */
    fti__reg_gguf_str(&w, g, "fti.dataset.version", "dataset", "");
    fti__reg_gguf_str(&w, g, "fti.tokenizer.sha256", "tokenizer", "");
    if (o.parent) {
        fti_jw_key(&w, "parent");
        fti_jw_str(&w, parent);
        fti_jw_key(&w, "relation");
        fti_jw_str(&w, "derived from");
    } else if (fti_gguf_get_str(g, "fti.base_model.sha256", &s, &n, NULL) == FTI_OK ||
               fti_gguf_get_str(g, "fti.base_model.id", &s, &n, NULL) == FTI_OK) {
        fti_jw_key(&w, "parent");
        fti_jw_strn(&w, s, n < FTI__REG_ID_LEN ? n : FTI__REG_ID_LEN);
    } else {
        fti_jw_key(&w, "parent");
        fti_jw_null(&w);
    }
    fti__reg_gguf_str(&w, g, "fti.created", "trained", NULL);
    fti__reg_gguf_str(&w, g, "fti.dataset.store", "store", NULL);
    if (fti_gguf_get_u64(g, "fti.train.steps", &u, NULL) == FTI_OK) {
        fti_jw_key(&w, "steps");
        fti_jw_int(&w, (int64_t)u);
        if (fti_gguf_get_f32(g, "fti.train.loss", &f, NULL) == FTI_OK) {
            fti_jw_key(&w, "train_loss");
            fti_jw_num(&w, f);
        }
    }
    if (fti_gguf_get_u64(g, "fti.train.tokens", &u, NULL) == FTI_OK) {
        fti_jw_key(&w, "tokens");
        fti_jw_int(&w, (int64_t)u);
    }
    if (fti_gguf_get_f32(g, "fti.train.val_loss", &f, NULL) == FTI_OK && f > 0 && f < 100) {
        fti_jw_key(&w, "val_loss");
        fti_jw_num(&w, f);
        fti_jw_key(&w, "val_perplexity");
        fti_jw_num(&w, exp(f));
    }
    fti_jw_key(&w, "config");
    fti__reg_config_json(&w, &cfg, NULL);
    fti_jw_obj_end(&w);
    fti_gguf_close(g);
    g = NULL;
    if (card.oom) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "registry: out of memory");
        goto done;
    }
    if ((r = fti__reg_add(home, model_file, digest, card.data, card.len, id_out, err)) != FTI_OK)
        goto done;
alias:
    if (o.alias && (r = fti_registry_promote(home, id_out, o.alias, err)) != FTI_OK)
        fti_error_prefix(err, "registry: registered, but the alias was not set");
done:
    fti_gguf_close(g);
    fti_buf_free(&card);
    return r;
}

#endif /* FTI_NO_TRAIN */
