/* === model: configuration, presets, parameter layout, forward and backward === */
#include "05_model.h"
#include "02_kernels.h"
#include <math.h>
#include <string.h>

/* SSE (baseline on x86-64) for the row-wise loops that compilers do not vectorize by themselves */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(FTI_NO_SIMD) && \
    !defined(__TINYC__)
#define FTI__MODEL_SSE 1
#include <xmmintrin.h>
#else
#define FTI__MODEL_SSE 0
#endif

/* Largest accepted config values: far above any CPU-trainable model, small enough that every
 * product of sizes below fits in 64 bits long before these limits are hit. */
#ifndef FTI_MODEL_MAX_DIM
#define FTI_MODEL_MAX_DIM (1u << 16)
#endif
#ifndef FTI_MODEL_MAX_VOCAB
#define FTI_MODEL_MAX_VOCAB (1u << 22)
#endif
#ifndef FTI_MODEL_MAX_LAYERS
#define FTI_MODEL_MAX_LAYERS 1024u
#endif
#ifndef FTI_MODEL_MAX_CONTEXT
#define FTI_MODEL_MAX_CONTEXT (1u << 20)
#endif

#define FTI__MODEL_DEFAULT_VOCAB 4096u
#define FTI__MODEL_INIT_STD 0.02f

/* --- configuration ---------------------------------------------------------------------------- */

FTIDEF fti_result fti_model_config_resolve(fti_model_config *cfg, fti_error *err) {
    size_t n;
    if (!cfg) return fti_error_set(err, FTI_ERR_INVALID, "model config: NULL");
    if (cfg->n_kv_heads == 0) cfg->n_kv_heads = cfg->n_heads;
    if (!(cfg->rope_base > 0.0f)) cfg->rope_base = 10000.0f;
    if (!(cfg->norm_eps > 0.0f)) cfg->norm_eps = 1e-5f;
    if (cfg->vocab_size == 0 || cfg->dim == 0 || cfg->n_layers == 0 || cfg->n_heads == 0 ||
        cfg->hidden_dim == 0 || cfg->context_len == 0)
        return fti_error_set(err, FTI_ERR_INVALID,
                             "model config: zero size (vocab %u, dim %u, layers %u, heads %u, "
                             "hidden %u, context %u)",
                             (unsigned)cfg->vocab_size, (unsigned)cfg->dim,
                             (unsigned)cfg->n_layers, (unsigned)cfg->n_heads,
                             (unsigned)cfg->hidden_dim, (unsigned)cfg->context_len);
    if (cfg->vocab_size > FTI_MODEL_MAX_VOCAB || cfg->dim > FTI_MODEL_MAX_DIM ||
        cfg->hidden_dim > FTI_MODEL_MAX_DIM * 4u || cfg->n_layers > FTI_MODEL_MAX_LAYERS ||
        cfg->context_len > FTI_MODEL_MAX_CONTEXT || cfg->n_heads > cfg->dim)
        return fti_error_set(err, FTI_ERR_LIMIT, "model config: a size exceeds its limit");
    if (cfg->dim % cfg->n_heads != 0)
        return fti_error_set(err, FTI_ERR_INVALID, "model config: dim %u not divisible by %u heads",
                             (unsigned)cfg->dim, (unsigned)cfg->n_heads);
    if ((cfg->dim / cfg->n_heads) % 2 != 0)
        return fti_error_set(err, FTI_ERR_INVALID, "model config: head dim %u is odd",
                             (unsigned)(cfg->dim / cfg->n_heads));
    if (cfg->n_kv_heads > cfg->n_heads || cfg->n_heads % cfg->n_kv_heads != 0)
        return fti_error_set(err, FTI_ERR_INVALID,
                             "model config: %u heads not divisible by %u kv heads",
                             (unsigned)cfg->n_heads, (unsigned)cfg->n_kv_heads);
    n = fti_model_n_params(cfg);
    if (n == 0 || n > ((size_t)-1) / 16)
        return fti_error_set(err, FTI_ERR_LIMIT, "model config: parameter count overflows");
    return FTI_OK;
}

typedef struct fti__model_preset {
    const char *name;
    uint32_t dim, n_layers, n_heads, n_kv_heads, hidden_dim, context_len;
} fti__model_preset;

/* tiny: for tests and the demo (about 100k parameters at a 512-token vocabulary); the stories
 * shapes are those of llama2.c's TinyStories models (tied embeddings). */
static const fti__model_preset fti__model_presets[] = {
    {"tiny", 64, 2, 4, 2, 176, 64},
    {"small", 128, 4, 4, 4, 352, 128},
    {"stories15M", 288, 6, 6, 6, 768, 256},
    {"stories42M", 512, 8, 8, 8, 1376, 1024},
    {"stories110M", 768, 12, 12, 12, 2048, 1024},
};

FTIDEF fti_result fti_model_preset(const char *name, fti_model_config *cfg, fti_error *err) {
    size_t i, n = sizeof(fti__model_presets) / sizeof(fti__model_presets[0]), k = 0;
    char names[128];
    if (!name || !cfg)
        return fti_error_set(err, FTI_ERR_INVALID, "model preset: %s is NULL",
                             name ? "cfg" : "name");
    for (i = 0; i < n; i++) {
        const fti__model_preset *p = &fti__model_presets[i];
        if (strcmp(p->name, name) == 0) {
            uint32_t vocab = cfg->vocab_size ? cfg->vocab_size : FTI__MODEL_DEFAULT_VOCAB;
            memset(cfg, 0, sizeof(*cfg));
            cfg->vocab_size = vocab;
            cfg->dim = p->dim;
            cfg->n_layers = p->n_layers;
            cfg->n_heads = p->n_heads;
            cfg->n_kv_heads = p->n_kv_heads;
            cfg->hidden_dim = p->hidden_dim;
            cfg->context_len = p->context_len;
            cfg->rope_base = 10000.0f;
            cfg->norm_eps = 1e-5f;
            cfg->tied_embeddings = 1;
            return FTI_OK;
        }
    }
    names[0] = 0;
    for (i = 0; i < n && k < sizeof names; i++) /* (the list fits: 5 short names) */
        k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "",
                              fti__model_presets[i].name);
    return fti_error_set(err, FTI_ERR_NOT_FOUND, "unknown model preset \"%.64s\" (%s)", name,
                         names);
}

/* --- layout ----------------------------------------------------------------------------------- */

/* Element counts of the layout, computed without overflow checks: fti_model_config_resolve
 * bounds every dimension so these products fit easily in 64 bits. */
typedef struct fti__model_dims {
    size_t V, C, L, H, KV, D, F, HD, KVD;
    size_t QKV;       /* HD + 2 KVD: attn_q, attn_k, attn_v are adjacent, one (QKV, C) matrix */
    size_t per_layer; /* elements of one block */
} fti__model_dims;

static fti__model_dims fti__model_dims_of(const fti_model_config *cfg) {
    fti__model_dims d;
    d.V = cfg->vocab_size;
    d.C = cfg->dim;
    d.L = cfg->n_layers;
    d.H = cfg->n_heads ? cfg->n_heads : 1;
    d.KV = cfg->n_kv_heads ? cfg->n_kv_heads : d.H;
    d.D = d.C / d.H;
    d.F = cfg->hidden_dim;
    d.HD = d.H * d.D;
    d.KVD = d.KV * d.D;
    d.QKV = d.HD + 2 * d.KVD;
    d.per_layer = d.C + d.HD * d.C + 2 * d.KVD * d.C + d.C * d.HD + d.C + 3 * d.F * d.C;
    return d;
}

/* Offset in elements of tensor `kind` of layer `layer` (ignored for global tensors). */
static size_t fti__model_offset(const fti__model_dims *d, fti_tensor_kind kind, size_t layer) {
    size_t base = d->V * d->C + layer * d->per_layer;
    switch (kind) {
    case FTI_TENSOR_TOKEN_EMBD: return 0;
    case FTI_TENSOR_ATTN_NORM: return base;
    case FTI_TENSOR_ATTN_Q: return base + d->C;
    case FTI_TENSOR_ATTN_K: return base + d->C + d->HD * d->C;
    case FTI_TENSOR_ATTN_V: return base + d->C + d->HD * d->C + d->KVD * d->C;
    case FTI_TENSOR_ATTN_OUTPUT: return base + d->C + d->HD * d->C + 2 * d->KVD * d->C;
    case FTI_TENSOR_FFN_NORM: return base + d->C + 2 * d->HD * d->C + 2 * d->KVD * d->C;
    case FTI_TENSOR_FFN_GATE: return base + 2 * d->C + 2 * d->HD * d->C + 2 * d->KVD * d->C;
    case FTI_TENSOR_FFN_UP:
        return base + 2 * d->C + 2 * d->HD * d->C + 2 * d->KVD * d->C + d->F * d->C;
    case FTI_TENSOR_FFN_DOWN:
        return base + 2 * d->C + 2 * d->HD * d->C + 2 * d->KVD * d->C + 2 * d->F * d->C;
    case FTI_TENSOR_OUTPUT_NORM: return d->V * d->C + d->L * d->per_layer;
    case FTI_TENSOR_OUTPUT: return d->V * d->C + d->L * d->per_layer + d->C;
    default: return 0;
    }
}

FTIDEF size_t fti_model_n_tensors(const fti_model_config *cfg) {
    if (!cfg) return 0;
    return 1 + (size_t)cfg->n_layers * 9 + 1 + (cfg->tied_embeddings ? 0 : 1);
}

FTIDEF size_t fti_model_n_params(const fti_model_config *cfg) {
    fti__model_dims d;
    size_t n = 0, t;
    if (!cfg || cfg->n_heads == 0) return 0;
    d = fti__model_dims_of(cfg);
    /* checked: the config may not have been resolved yet */
    if (!fti_size_mul(d.V, d.C, &n)) return 0;
    if (!fti_size_mul(d.L, d.per_layer, &t) || !fti_size_add(n, t, &n)) return 0;
    if (!fti_size_add(n, d.C, &n)) return 0;
    if (!cfg->tied_embeddings && !fti_size_add(n, d.V * d.C, &n)) return 0;
    return n;
}

FTIDEF size_t fti_model_tensor_info(const fti_model_config *cfg, size_t i, fti_tensor_info *info) {
    static const char *const layer_names[9] = {"attn_norm", "attn_q",   "attn_k",
                                               "attn_v",    "attn_output", "ffn_norm",
                                               "ffn_gate",  "ffn_up",   "ffn_down"};
    fti__model_dims d;
    fti_tensor_info ti;
    size_t n_layer_tensors;
    if (!cfg) return 0;
    if (!info && i == (size_t)-1) return fti_model_n_params(cfg);
    if (!info || i >= fti_model_n_tensors(cfg)) return 0;
    d = fti__model_dims_of(cfg);
    memset(&ti, 0, sizeof(ti));
    n_layer_tensors = d.L * 9;
    if (i == 0) {
        strcpy(ti.name, "token_embd");
        ti.kind = FTI_TENSOR_TOKEN_EMBD;
        ti.layer = -1;
        ti.rows = d.V;
        ti.cols = d.C;
    } else if (i <= n_layer_tensors) {
        size_t l = (i - 1) / 9, j = (i - 1) % 9;
        ti.kind = (fti_tensor_kind)(FTI_TENSOR_ATTN_NORM + (int)j);
        ti.layer = (int)l;
        {
            /* name "blk.N.<kind>", built by hand (no snprintf in the library's hot paths) */
            char num[24];
            size_t k = 0, m;
            size_t v = l;
            do {
                num[k++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            strcpy(ti.name, "blk.");
            for (m = 0; m < k; m++) ti.name[4 + m] = num[k - 1 - m];
            ti.name[4 + k] = '.';
            ti.name[5 + k] = 0;
            strcat(ti.name, layer_names[j]);
        }
        switch (ti.kind) {
        case FTI_TENSOR_ATTN_NORM:
        case FTI_TENSOR_FFN_NORM: ti.rows = d.C; ti.cols = 1; ti.is_norm = 1; break;
        case FTI_TENSOR_ATTN_Q: ti.rows = d.HD; ti.cols = d.C; break;
        case FTI_TENSOR_ATTN_K:
        case FTI_TENSOR_ATTN_V: ti.rows = d.KVD; ti.cols = d.C; break;
        case FTI_TENSOR_ATTN_OUTPUT: ti.rows = d.C; ti.cols = d.HD; break;
        case FTI_TENSOR_FFN_GATE:
        case FTI_TENSOR_FFN_UP: ti.rows = d.F; ti.cols = d.C; break;
        case FTI_TENSOR_FFN_DOWN: ti.rows = d.C; ti.cols = d.F; break;
        default: break;
        }
    } else if (i == n_layer_tensors + 1) {
        strcpy(ti.name, "output_norm");
        ti.kind = FTI_TENSOR_OUTPUT_NORM;
        ti.layer = -1;
        ti.rows = d.C;
        ti.cols = 1;
        ti.is_norm = 1;
    } else {
        strcpy(ti.name, "output");
        ti.kind = FTI_TENSOR_OUTPUT;
        ti.layer = -1;
        ti.rows = d.V;
        ti.cols = d.C;
    }
    ti.offset = fti__model_offset(&d, ti.kind, ti.layer < 0 ? 0 : (size_t)ti.layer);
    *info = ti;
    return ti.rows * ti.cols;
}

FTIDEF size_t fti_model_tensor_find(const fti_model_config *cfg, const char *name) {
    size_t i, n = fti_model_n_tensors(cfg);
    fti_tensor_info ti;
    if (!name) return (size_t)-1;
    for (i = 0; i < n; i++) {
        fti_model_tensor_info(cfg, i, &ti);
        if (strcmp(ti.name, name) == 0) return i;
    }
    return (size_t)-1;
}

FTIDEF void fti_model_init_params(const fti_model_config *cfg, float *params, uint64_t seed) {
    size_t i, j, n, n_t = fti_model_n_tensors(cfg);
    fti_tensor_info ti;
    float std_resid;
    if (!cfg || !params) return;
    std_resid =
        FTI__MODEL_INIT_STD / (float)sqrt(2.0 * (double)(cfg->n_layers ? cfg->n_layers : 1));
    for (i = 0; i < n_t; i++) {
        fti_rng rng;
        float std = FTI__MODEL_INIT_STD;
        n = fti_model_tensor_info(cfg, i, &ti);
        if (ti.is_norm) {
            for (j = 0; j < n; j++) params[ti.offset + j] = 1.0f;
            continue;
        }
        if (ti.kind == FTI_TENSOR_ATTN_OUTPUT || ti.kind == FTI_TENSOR_FFN_DOWN) std = std_resid;
        /* one stream per tensor: a tensor's values do not depend on the ones before it */
        fti_rng_seed(&rng, seed, (uint64_t)i + 1);
        for (j = 0; j < n; j++) params[ti.offset + j] = std * fti_rng_normal(&rng);
    }
}

/* Rows per chunk of the fused RMSNorm backward: fixed, so the weight gradient's partial sums
 * (one per chunk, rows in order, then the chunks in order) do not depend on the thread count. */
#define FTI__MODEL_NORM_CHUNK 64

/* Query rows per attention block: block [r0, r1) multiplies only keys [0, r1). */
#define FTI__MODEL_ATT_BLOCK 64

/* Floats of attention scratch per (b, kv head) group for context T and head dim D:
 * dS (T, T), dK^T and dV^T (D, T) each, and one transposed block output (D, BLOCK). */
static size_t fti__model_attn_scratch(size_t T, size_t D) {
    return T * T + 2 * D * T + D * FTI__MODEL_ATT_BLOCK;
}

/* --- activations ------------------------------------------------------------------------------ */

struct fti_model_acts {
    const fti_kernels *kern; /* matmul kernels; NULL = the plain reference loops */
    int mmx;                 /* extra fti_matmul flags: FTI_MM_BF16 (fti_model_acts_set_bf16) */
    fti_model_config cfg;
    fti__model_dims d;
    size_t B, T;           /* planned */
    size_t b, t;           /* of the last forward */
    int have_targets;
    unsigned char *block;  /* one aligned block holding everything below */
    size_t n_bytes;
    float *rope_c, *rope_s;     /* (T, D): per pair (cos, cos) and (-sin, sin) */
    int32_t *tokens, *targets;  /* (B,T) */
    float *res;                 /* (L+1, N, C) residual stream entering each layer; [L] = final */
    float *mid;                 /* (L, N, C) residual after the attention branch */
    float *xn1, *rstd1;         /* (L, N, C), (L, N) attention RMSNorm output and 1/rms */
    float *qkv;                 /* (L, N, QKV): q | k | v per row; q and k after RoPE */
    float *att;                 /* (L, B, H, T, T) attention probabilities (row t: j <= t) */
    float *y;                   /* (L, N, HD) attention output before attn_output */
    float *xn2, *rstd2;         /* (L, N, C), (L, N) */
    float *h12;                 /* (L, N, 2F): gate | up per row (ffn_gate, ffn_up adjacent) */
    float *g;                   /* (L, N, F) silu(gate) * up */
    float *xnf, *rstdf;         /* (N, C), (N) */
    float *logits;              /* (N, V): logits, then probabilities, then their gradient */
    double *row_loss;           /* (N) */
    /* backward scratch */
    float *dres, *dxn;          /* (N, C) */
    float *dy;                  /* (N, HD) */
    float *dqkv;                /* (N, QKV) */
    float *dg;                  /* (N, F) */
    float *dh12;                /* (N, 2F) */
    float *attn_scratch;        /* (B*KV, fti__model_attn_scratch(T, D)) */
    float *norm_part;           /* (ceil(N / FTI__MODEL_NORM_CHUNK), C) RMSNorm dw partial sums */
    /* residual dropout (fti_model_acts_set_dropout); the forward copies it into drop_* so its
     * backward drops the same elements whatever is set in between */
    float dropout;
    uint64_t dropout_seed;
    size_t dropout_row0;
    float drop_p;
    uint64_t drop_seed;
    size_t drop_row0;
};

/* A size table entry: where to store the pointer, element count, element size. */
typedef struct fti__model_slot {
    void **ptr;
    size_t count;
    size_t elem;
} fti__model_slot;

FTIDEF fti_result fti_model_acts_create(const fti_model_config *cfg_in, size_t batch, size_t ctx,
                                        fti_model_acts **out, fti_error *err) {
    fti_model_acts *a;
    fti_model_config cfg;
    fti__model_dims d;
    fti__model_slot slots[32];
    size_t n_slots = 0, i, total = 0, N, BHTT, tt;
    fti_result r;
    if (!out || !cfg_in) return fti_error_set(err, FTI_ERR_INVALID, "model acts: NULL argument");
    *out = NULL;
    cfg = *cfg_in;
    if ((r = fti_model_config_resolve(&cfg, err)) != FTI_OK) return r;
    if (batch == 0 || ctx == 0 || ctx > cfg.context_len)
        return fti_error_set(err, FTI_ERR_INVALID,
                             "model acts: batch %lu x ctx %lu (context length %u)",
                             (unsigned long)batch, (unsigned long)ctx,
                             (unsigned)cfg.context_len);
    d = fti__model_dims_of(&cfg);
    if (!fti_size_mul(batch, ctx, &N) || !fti_size_mul(ctx, ctx, &tt) ||
        !fti_size_mul(tt, batch * d.H, &BHTT) || !fti_size_mul(BHTT, d.L, &BHTT))
        return fti_error_set(err, FTI_ERR_LIMIT, "model acts: sizes overflow");
    BHTT /= d.L;
    a = (fti_model_acts *)fti_calloc(1, sizeof(*a));
    if (!a) return fti_error_set(err, FTI_ERR_NOMEM, "model acts: out of memory");
    a->cfg = cfg;
    a->kern = fti_kernels_get(FTI_ISA_AUTO);
    a->d = d;
    a->B = batch;
    a->T = ctx;
#define FTI__SLOT(p, n, type)                                                                   \
    do {                                                                                        \
        slots[n_slots].ptr = (void **)(void *)&(p);                                             \
        slots[n_slots].count = (n);                                                             \
        slots[n_slots].elem = sizeof(type);                                                     \
        n_slots++;                                                                              \
    } while (0)
    FTI__SLOT(a->rope_c, ctx * d.D, float);
    FTI__SLOT(a->rope_s, ctx * d.D, float);
    FTI__SLOT(a->tokens, N, int32_t);
    FTI__SLOT(a->targets, N, int32_t);
    FTI__SLOT(a->res, (d.L + 1) * N * d.C, float);
    FTI__SLOT(a->mid, d.L * N * d.C, float);
    FTI__SLOT(a->xn1, d.L * N * d.C, float);
    FTI__SLOT(a->rstd1, d.L * N, float);
    FTI__SLOT(a->qkv, d.L * N * d.QKV, float);
    FTI__SLOT(a->att, d.L * BHTT, float);
    FTI__SLOT(a->y, d.L * N * d.HD, float);
    FTI__SLOT(a->xn2, d.L * N * d.C, float);
    FTI__SLOT(a->rstd2, d.L * N, float);
    FTI__SLOT(a->h12, d.L * N * 2 * d.F, float);
    FTI__SLOT(a->g, d.L * N * d.F, float);
    FTI__SLOT(a->xnf, N * d.C, float);
    FTI__SLOT(a->rstdf, N, float);
    FTI__SLOT(a->logits, N * d.V, float);
    FTI__SLOT(a->row_loss, N, double);
    FTI__SLOT(a->dres, N * d.C, float);
    FTI__SLOT(a->dxn, N * d.C, float);
    FTI__SLOT(a->dy, N * d.HD, float);
    FTI__SLOT(a->dqkv, N * d.QKV, float);
    FTI__SLOT(a->dg, N * d.F, float);
    FTI__SLOT(a->dh12, N * 2 * d.F, float);
    FTI__SLOT(a->attn_scratch, batch * d.KV * fti__model_attn_scratch(ctx, d.D), float);
    FTI__SLOT(a->norm_part, (N / FTI__MODEL_NORM_CHUNK + 1) * d.C, float);
#undef FTI__SLOT
    /* The products above are bounded by the config limits times N and BHTT, which were checked;
     * the running total is checked here. Each slot starts on a 64-byte boundary. */
    for (i = 0; i < n_slots; i++) {
        size_t bytes;
        if (!fti_size_mul(slots[i].count, slots[i].elem, &bytes) ||
            !fti_size_add(bytes, 63, &bytes) || !fti_size_add(total, bytes & ~(size_t)63, &total)) {
            fti_free(a);
            return fti_error_set(err, FTI_ERR_LIMIT, "model acts: sizes overflow");
        }
    }
    a->block = (unsigned char *)fti_aligned_alloc(total ? total : 64, 64);
    if (!a->block) {
        fti_free(a);
        return fti_error_set(err, FTI_ERR_NOMEM, "model acts: cannot allocate %lu bytes",
                             (unsigned long)total);
    }
    a->n_bytes = total;
    memset(a->block, 0, total);
    total = 0;
    for (i = 0; i < n_slots; i++) {
        *slots[i].ptr = a->block + total;
        total += (slots[i].count * slots[i].elem + 63) & ~(size_t)63;
    }
    /* RoPE table: angle = pos * base^(-2i/D), computed in double like the reference */
    {
        size_t t, j, half = d.D / 2;
        for (t = 0; t < ctx; t++)
            for (j = 0; j < half; j++) {
                double theta = pow((double)cfg.rope_base, -2.0 * (double)j / (double)d.D);
                double ang = (double)t * theta;
                float c = (float)cos(ang), sn = (float)sin(ang);
                a->rope_c[t * d.D + 2 * j] = c;
                a->rope_c[t * d.D + 2 * j + 1] = c;
                a->rope_s[t * d.D + 2 * j] = -sn;
                a->rope_s[t * d.D + 2 * j + 1] = sn;
            }
    }
    *out = a;
    return FTI_OK;
}

FTIDEF void fti_model_acts_free(fti_model_acts *acts) {
    if (!acts) return;
    fti_aligned_free(acts->block);
    fti_free(acts);
}

FTIDEF size_t fti_model_acts_bytes(const fti_model_acts *acts) { return acts ? acts->n_bytes : 0; }

FTIDEF int fti_model_acts_set_bf16(fti_model_acts *acts, int on) {
    if (!acts) return 0;
    acts->mmx = on && acts->kern && fti_matmul_has_bf16(acts->kern) ? (int)FTI_MM_BF16 : 0;
    return acts->mmx != 0;
}

FTIDEF int fti_model_acts_set_dropout(fti_model_acts *acts, float p, uint64_t seed, size_t row0) {
    if (!acts || !(p >= 0.0f && p < 1.0f)) return 0;
    acts->dropout = p;
    acts->dropout_seed = seed;
    acts->dropout_row0 = row0;
    return 1;
}

FTIDEF const float *fti_model_acts_logits(const fti_model_acts *acts) {
    return acts ? acts->logits : NULL;
}

/* --- matmul ------------------------------------------------------------------------------------
 * C(M,N) = op(A)(M,K) . op(B)(K,N) (+= with ACC), fp32, split over rows of C; every element is
 * computed by one thread in a fixed order, so results do not depend on the thread count. */
#define FTI__MODEL_MM_TA 1
#define FTI__MODEL_MM_TB 2
#define FTI__MODEL_MM_ACC 4

typedef struct fti__model_mm_ctx {
    int flags;
    size_t M, N, K;
    const float *A;
    size_t lda;
    const float *B;
    size_t ldb;
    float *C;
    size_t ldc;
} fti__model_mm_ctx;

static void fti__model_mm_rows(void *vctx, size_t i0, size_t i1, int thread) {
    const fti__model_mm_ctx *c = (const fti__model_mm_ctx *)vctx;
    size_t i, j, k;
    (void)thread;
    for (i = i0; i < i1; i++) {
        float *crow = c->C + i * c->ldc; /* (N) */
        if (!(c->flags & FTI__MODEL_MM_ACC))
            for (j = 0; j < c->N; j++) crow[j] = 0.0f;
        if (c->flags & FTI__MODEL_MM_TB) {
            for (j = 0; j < c->N; j++) {
                const float *brow = c->B + j * c->ldb; /* op(B)(:,j) = B[j,:] */
                float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
                if (!(c->flags & FTI__MODEL_MM_TA)) {
                    const float *arow = c->A + i * c->lda;
                    for (k = 0; k + 8 <= c->K; k += 8) {
                        s0 += arow[k] * brow[k];
                        s1 += arow[k + 1] * brow[k + 1];
                        s2 += arow[k + 2] * brow[k + 2];
                        s3 += arow[k + 3] * brow[k + 3];
                        s4 += arow[k + 4] * brow[k + 4];
                        s5 += arow[k + 5] * brow[k + 5];
                        s6 += arow[k + 6] * brow[k + 6];
                        s7 += arow[k + 7] * brow[k + 7];
                    }
                    for (; k < c->K; k++) s0 += arow[k] * brow[k];
                } else {
                    for (k = 0; k < c->K; k++) s0 += c->A[k * c->lda + i] * brow[k];
                }
                crow[j] += ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
            }
        } else {
            for (k = 0; k < c->K; k++) {
                float a = (c->flags & FTI__MODEL_MM_TA) ? c->A[k * c->lda + i]
                                                         : c->A[i * c->lda + k];
                const float *brow = c->B + k * c->ldb; /* (N) */
                for (j = 0; j < c->N; j++) crow[j] += a * brow[j];
            }
        }
    }
}

/* With a kernel table: fti_matmul (same flag bits); without: the plain loops above, kept as the
 * obviously-right reference for tests. */
static void fti__model_mm(const fti_kernels *k, fti_pool *pool, int flags, size_t M, size_t N,
                          size_t K, const float *A, size_t lda, const float *B, size_t ldb,
                          float *C, size_t ldc) {
    fti__model_mm_ctx c;
    size_t grain;
    if (k) {
        fti_matmul(k, pool, (unsigned)flags, M, N, K, A, lda, B, ldb, C, ldc);
        return;
    }
    c.flags = flags;
    c.M = M;
    c.N = N;
    c.K = K;
    c.A = A;
    c.lda = lda;
    c.B = B;
    c.ldb = ldb;
    c.C = C;
    c.ldc = ldc;
    grain = 1 + 65536 / (N * K + 1); /* about 64k multiply-adds per chunk at least */
    fti_pool_for(pool, M, grain, fti__model_mm_rows, &c);
}

/* Linear layer helpers on (rows, in) activations and (out, in) weights. */
/* Y(n,out) = X(n,in) . W(out,in)^T */
/* mmx: extra fti_matmul flags (FTI_MM_BF16 when the acts ask for bf16 products) */
static void fti__model_linear_fwd(const fti_kernels *k, int mmx, fti_pool *pool, float *Y,
                                  const float *X, const float *W, size_t n, size_t n_in,
                                  size_t n_out) {
    fti__model_mm(k, pool, FTI__MODEL_MM_TB | mmx, n, n_out, n_in, X, n_in, W, n_in, Y, n_out);
}
/* dX(n,in) (+)= dY(n,out) . W(out,in); dW(out,in) += dY^T . X */
static void fti__model_linear_bwd(const fti_kernels *k, int mmx, fti_pool *pool, float *dX,
                                  int accumulate_dx, float *dW, const float *dY, const float *X,
                                  const float *W, size_t n, size_t n_in, size_t n_out) {
    if (dX)
        fti__model_mm(k, pool, (accumulate_dx ? FTI__MODEL_MM_ACC : 0) | mmx, n, n_in, n_out, dY,
                      n_out, W, n_in, dX, n_in);
    if (dW)
        fti__model_mm(k, pool, FTI__MODEL_MM_TA | FTI__MODEL_MM_ACC | mmx, n_out, n_in, n, dY,
                      n_out, X, n_in, dW, n_in);
}

/* --- row-wise ops ----------------------------------------------------------------------------- */

/* RMSNorm forward over rows: out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps). */
static void fti__model_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w,
                                   size_t n, size_t C, float eps) {
    size_t i, j;
    for (i = 0; i < n; i++) {
        const float *xr = x + i * C; /* (C) */
        float *o = out + i * C;
        double ss = 0.0;
        float r;
        for (j = 0; j < C; j++) ss += (double)xr[j] * xr[j];
        r = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        rstd[i] = r;
        for (j = 0; j < C; j++) o[j] = xr[j] * r * w[j];
    }
}

/* RMSNorm backward of one chunk of n rows in one pass: dx += rstd*w*dy - x*rstd^3/C *
 * sum(w*dy*x) (ACCUMULATES into dx) and part (C) = the sum over the rows,
 * in order, of dy*x*rstd (written; the chunks' parts are added to dw afterwards). */
static void fti__model_rmsnorm_bwd_chunk(float *dx, float *part, const float *dy, const float *x,
                                         const float *rstd, const float *w, size_t n, size_t C) {
    size_t i, j;
    memset(part, 0, C * sizeof(float));
    for (i = 0; i < n; i++) {
        const float *xr = x + i * C, *dyr = dy + i * C; /* (C) */
        float *dxr = dx + i * C, r = rstd[i], coef;
        double dot = 0.0;
        j = 0;
#if FTI__MODEL_SSE
        {
            __m128d a0 = _mm_setzero_pd(), a1 = _mm_setzero_pd();
            double lanes[4];
            for (; j + 4 <= C; j += 4) {
                __m128 wd = _mm_mul_ps(_mm_loadu_ps(w + j), _mm_loadu_ps(dyr + j));
                __m128 xv = _mm_loadu_ps(xr + j);
                a0 = _mm_add_pd(a0, _mm_mul_pd(_mm_cvtps_pd(wd), _mm_cvtps_pd(xv)));
                a1 = _mm_add_pd(a1, _mm_mul_pd(_mm_cvtps_pd(_mm_movehl_ps(wd, wd)),
                                               _mm_cvtps_pd(_mm_movehl_ps(xv, xv))));
            }
            _mm_storeu_pd(lanes, a0);
            _mm_storeu_pd(lanes + 2, a1);
            dot = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        }
#endif
        for (; j < C; j++) dot += (double)(w[j] * dyr[j]) * (double)xr[j];
        coef = (float)(dot * (double)r * r * r / (double)C);
        j = 0;
#if FTI__MODEL_SSE
        {
            __m128 rv = _mm_set1_ps(r), cv = _mm_set1_ps(coef);
            for (; j + 4 <= C; j += 4) {
                __m128 dyv = _mm_loadu_ps(dyr + j), xv = _mm_loadu_ps(xr + j);
                __m128 t = _mm_sub_ps(_mm_mul_ps(_mm_mul_ps(rv, _mm_loadu_ps(w + j)), dyv),
                                      _mm_mul_ps(xv, cv));
                _mm_storeu_ps(dxr + j, _mm_add_ps(_mm_loadu_ps(dxr + j), t));
                _mm_storeu_ps(part + j, _mm_add_ps(_mm_loadu_ps(part + j),
                                                   _mm_mul_ps(_mm_mul_ps(dyv, xv), rv)));
            }
        }
#endif
        for (; j < C; j++) {
            dxr[j] += r * w[j] * dyr[j] - xr[j] * coef;
            part[j] += dyr[j] * xr[j] * r;
        }
    }
}

/* RoPE on adjacent pairs of every head of rows [row0, row1) of n_heads*D values, `stride` floats
 * apart; position of row i = i % T. ce, se (T, D) are the expanded tables: for pair j of position
 * t, ce = (cos, cos) and se = (-sin, sin), so x' = x * ce + swap(x) * se with swap exchanging the
 * two values of each pair. inverse = 1 rotates by -angle (x * ce - swap(x) * se: the backward of
 * a rotation is its transpose). The SSE path computes exactly the scalar expressions. */
static void fti__model_rope(float *x, size_t row0, size_t row1, size_t stride, size_t T,
                            size_t n_heads, size_t D, const float *ce, const float *se,
                            int inverse) {
    size_t i, h, j;
    for (i = row0; i < row1; i++) {
        const float *cr = ce + (i % T) * D, *sr = se + (i % T) * D; /* (D) */
        for (h = 0; h < n_heads; h++) {
            float *p = x + i * stride + h * D;
            j = 0;
#if FTI__MODEL_SSE
            for (; j + 4 <= D; j += 4) {
                __m128 v = _mm_loadu_ps(p + j);
                __m128 w = _mm_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1));
                __m128 a = _mm_mul_ps(v, _mm_loadu_ps(cr + j));
                __m128 b = _mm_mul_ps(w, _mm_loadu_ps(sr + j));
                _mm_storeu_ps(p + j, inverse ? _mm_sub_ps(a, b) : _mm_add_ps(a, b));
            }
#endif
            for (; j + 2 <= D; j += 2) {
                float x0 = p[j], x1 = p[j + 1];
                float a0 = x0 * cr[j], b0 = x1 * sr[j], a1 = x1 * cr[j + 1], b1 = x0 * sr[j + 1];
                p[j] = inverse ? a0 - b0 : a0 + b0;
                p[j + 1] = inverse ? a1 - b1 : a1 + b1;
            }
        }
    }
}

/* --- the row-wise ops split over the pool -------------------------------------------------------
 * Rows (or, for the norm weight gradient, columns) are independent, so every element is computed
 * by one thread in the serial order: results do not depend on the thread count. */
enum {
    FTI__MODEL_PAR_RMSNORM_FWD,
    FTI__MODEL_PAR_RMSNORM_DX,
    FTI__MODEL_PAR_RMSNORM_DW,
    FTI__MODEL_PAR_SWIGLU_FWD,
    FTI__MODEL_PAR_SWIGLU_BWD,
    FTI__MODEL_PAR_ADD
};

typedef struct fti__model_par_ctx {
    int op;
    const fti_kernels *kern; /* SwiGLU through the kernel table (vector exp); NULL: plain loops */
    float *out, *out2;
    const float *a, *b, *c, *w;
    size_t n, C, F;
    float eps;
} fti__model_par_ctx;

static void fti__model_swiglu_fwd(float *g, const float *h12, size_t n, size_t F);
static void fti__model_swiglu_bwd(float *dh12, const float *dg, const float *h12, size_t n,
                                  size_t F);

static void fti__model_par_task(void *vctx, size_t r0, size_t r1, int thread) {
    const fti__model_par_ctx *c = (const fti__model_par_ctx *)vctx;
    size_t m = r1 - r0, i;
    (void)thread;
    switch (c->op) {
    case FTI__MODEL_PAR_RMSNORM_FWD:
        fti__model_rmsnorm_fwd(c->out + r0 * c->C, c->out2 + r0, c->a + r0 * c->C, c->w, m, c->C,
                               c->eps);
        break;
    case FTI__MODEL_PAR_RMSNORM_DX: /* r0, r1 are chunks of FTI__MODEL_NORM_CHUNK rows */
        for (i = r0; i < r1; i++) {
            size_t a0 = i * FTI__MODEL_NORM_CHUNK;
            size_t rows = c->n - a0 < FTI__MODEL_NORM_CHUNK ? c->n - a0 : FTI__MODEL_NORM_CHUNK;
            fti__model_rmsnorm_bwd_chunk(c->out + a0 * c->C, c->out2 + i * c->C, c->a + a0 * c->C,
                                         c->b + a0 * c->C, c->c + a0, c->w, rows, c->C);
        }
        break;
    case FTI__MODEL_PAR_RMSNORM_DW: /* r0, r1 are columns: dw += the chunks' parts, in order */
        for (i = 0; i < (c->n + FTI__MODEL_NORM_CHUNK - 1) / FTI__MODEL_NORM_CHUNK; i++) {
            size_t j;
            for (j = r0; j < r1; j++) c->out[j] += c->out2[i * c->C + j];
        }
        break;
    case FTI__MODEL_PAR_SWIGLU_FWD:
        if (c->kern) /* h12 rows are gate | up */
            for (i = r0; i < r1; i++)
                fti_swiglu_fwd(c->kern, c->out + i * c->F, c->a + i * 2 * c->F,
                               c->a + i * 2 * c->F + c->F, c->F);
        else
            fti__model_swiglu_fwd(c->out + r0 * c->F, c->a + r0 * 2 * c->F, m, c->F);
        break;
    case FTI__MODEL_PAR_SWIGLU_BWD:
        if (c->kern)
            for (i = r0; i < r1; i++) {
                const float *gate = c->b + i * 2 * c->F;
                float *dgate = c->out + i * 2 * c->F;
                fti_swiglu_bwd(c->kern, dgate, dgate + c->F, gate, gate + c->F, c->a + i * c->F,
                               c->F);
            }
        else
            fti__model_swiglu_bwd(c->out + r0 * 2 * c->F, c->a + r0 * c->F, c->b + r0 * 2 * c->F,
                                  m, c->F);
        break;
    case FTI__MODEL_PAR_ADD: /* out += a over rows of C */
        for (i = r0 * c->C; i < r1 * c->C; i++) c->out[i] += c->a[i];
        break;
    default: break;
    }
}

static fti__model_par_ctx fti__model_par(int op) {
    fti__model_par_ctx c;
    memset(&c, 0, sizeof(c));
    c.op = op;
    return c;
}

/* out(n,C) = rmsnorm(x) * w, rstd(n) */
static void fti__model_p_rmsnorm_fwd(fti_pool *pool, float *out, float *rstd, const float *x,
                                     const float *w, size_t n, size_t C, float eps) {
    fti__model_par_ctx c = fti__model_par(FTI__MODEL_PAR_RMSNORM_FWD);
    c.out = out;
    c.out2 = rstd;
    c.a = x;
    c.w = w;
    c.C = C;
    c.eps = eps;
    fti_pool_for(pool, n, 64, fti__model_par_task, &c);
}

/* dx += ..., dw += ... (both ACCUMULATE), as fti__model_rmsnorm_bwd */
/* part: scratch of ceil(n / FTI__MODEL_NORM_CHUNK) * C floats */
static void fti__model_p_rmsnorm_bwd(fti_pool *pool, float *dx, float *dw, const float *dy,
                                     const float *x, const float *rstd, const float *w, size_t n,
                                     size_t C, float *part) {
    fti__model_par_ctx c = fti__model_par(FTI__MODEL_PAR_RMSNORM_DX);
    c.out = dx;
    c.out2 = part;
    c.a = dy;
    c.b = x;
    c.c = rstd;
    c.w = w;
    c.n = n;
    c.C = C;
    fti_pool_for(pool, (n + FTI__MODEL_NORM_CHUNK - 1) / FTI__MODEL_NORM_CHUNK, 1,
                 fti__model_par_task, &c);
    c.op = FTI__MODEL_PAR_RMSNORM_DW;
    c.out = dw;
    fti_pool_for(pool, C, 64, fti__model_par_task, &c);
}

/* out(n,C) += a(n,C) */
static void fti__model_p_add(fti_pool *pool, float *out, const float *a, size_t n, size_t C) {
    fti__model_par_ctx c = fti__model_par(FTI__MODEL_PAR_ADD);
    c.out = out;
    c.a = a;
    c.C = C;
    fti_pool_for(pool, n, 64, fti__model_par_task, &c);
}

static void fti__model_p_swiglu(const fti_kernels *kern, fti_pool *pool, int backward, float *out,
                                const float *a, const float *b, size_t n, size_t F) {
    fti__model_par_ctx c = fti__model_par(backward ? FTI__MODEL_PAR_SWIGLU_BWD
                                                   : FTI__MODEL_PAR_SWIGLU_FWD);
    c.kern = kern;
    c.out = out;
    c.a = a;
    c.b = b;
    c.F = F;
    fti_pool_for(pool, n, 32, fti__model_par_task, &c);
}

/* --- attention ------------------------------------------------------------------------------
 * Causal multi-head attention with grouped kv heads, as GEMMs per (batch, head): S = Q K^T,
 * row softmax with the causal mask (zeros above the diagonal), Y = P V. Query rows go in blocks
 * of 64 that multiply only the keys up to the block's end, so the GEMMs do about 5/8 of the full
 * square at T = 256 instead of all of it (the zeros inside a block are cheaper than scalar
 * loops). The products whose natural output is (rows, D) are computed transposed, as (D, rows)
 * into scratch: with D = 48 a (rows, D) output fills 32-wide micro-tiles to 3/4, the (D, rows)
 * one fills them exactly (and 12-row tiles divide 48 too). Work is split over (b, kv head)
 * groups: each group owns its rows of y/dq and its dk/dv rows, and runs its GEMMs
 * single-threaded, so nothing is shared between threads and the result does not depend on the
 * thread count. */
typedef struct fti__model_attn_ctx {
    const fti_kernels *kern;
    int mmx; /* extra fti_matmul flags */
    const fti__model_dims *d;
    size_t T;
    float *q, *k;           /* (N, *) rows QKV apart, inside the qkv block */
    const float *v;
    const float *rope_c, *rope_s; /* (T, D) expanded RoPE tables (fti__model_rope) */
    float *att;             /* (B, H, T, T) */
    float *y;               /* (N, HD) */
    const float *dy;        /* (N, HD) backward */
    float *dq, *dk, *dv;    /* backward outputs */
    float *scratch;         /* (B*KV, fti__model_attn_scratch(T, D)) */
} fti__model_attn_ctx;

/* dst[t * ld + i] = src[i * lds + t] for i < D, t < m: a (D, m) block back to (m, D) rows
 * (4x4 SSE transposes where available). */
static void fti__model_untranspose(float *dst, size_t ld, const float *src, size_t lds, size_t D,
                                   size_t m) {
    size_t i, t, i0 = 0, t0 = 0;
#if FTI__MODEL_SSE
    size_t D4 = D / 4 * 4, m4 = m / 4 * 4;
    for (t = 0; t < m4; t += 4)
        for (i = 0; i < D4; i += 4) {
            __m128 r0 = _mm_loadu_ps(src + i * lds + t), r1 = _mm_loadu_ps(src + (i + 1) * lds + t);
            __m128 r2 = _mm_loadu_ps(src + (i + 2) * lds + t);
            __m128 r3 = _mm_loadu_ps(src + (i + 3) * lds + t);
            float *o = dst + t * ld + i;
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(o, r0);
            _mm_storeu_ps(o + ld, r1);
            _mm_storeu_ps(o + 2 * ld, r2);
            _mm_storeu_ps(o + 3 * ld, r3);
        }
    i0 = D4; /* what is left: columns [D4, D) of rows [0, m4), then rows [m4, m) */
    for (t = 0; t < m4; t++)
        for (i = i0; i < D; i++)
            dst[t * ld + i] = src[i * lds + t];
    t0 = m4;
#endif
    (void)i0;
    for (t = t0; t < m; t++) {
        float *o = dst + t * ld;
        for (i = 0; i < D; i++) o[i] = src[i * lds + t];
    }
}

static void fti__model_attn_fwd_task(void *vctx, size_t g0, size_t g1, int thread) {
    const fti__model_attn_ctx *c = (const fti__model_attn_ctx *)vctx;
    const fti__model_dims *d = c->d;
    size_t grp, hh, t, j, T = c->T, D = d->D, rep = d->H / d->KV;
    float scale = 1.0f / (float)sqrt((double)D);
    (void)thread;
    for (grp = g0; grp < g1; grp++) {
        size_t b = grp / d->KV, kvh = grp % d->KV;
        const float *kb = c->k + b * T * d->QKV + kvh * D; /* (T, D), row stride QKV */
        const float *vb = c->v + b * T * d->QKV + kvh * D;
        float *yt = c->scratch + grp * fti__model_attn_scratch(T, D); /* (D, BLOCK) */
        /* RoPE on this group's q heads and its k head, while they are about to be used */
        fti__model_rope(c->q + b * T * d->QKV + kvh * rep * D, 0, T, d->QKV, T, rep, D, c->rope_c,
                        c->rope_s, 0);
        fti__model_rope(c->k + b * T * d->QKV + kvh * D, 0, T, d->QKV, T, 1, D, c->rope_c,
                        c->rope_s, 0);
        for (hh = 0; hh < rep; hh++) {
            size_t h = kvh * rep + hh;
            const float *qb = c->q + b * T * d->QKV + h * D; /* (T, D), row stride QKV */
            float *P = c->att + (b * d->H + h) * T * T;      /* (T, T) */
            size_t r0, r1;
            /* row blocks: block [r0, r1) only needs key columns [0, r1) */
            for (r0 = 0; r0 < T; r0 = r1) {
                r1 = r0 + FTI__MODEL_ATT_BLOCK < T ? r0 + FTI__MODEL_ATT_BLOCK : T;
                fti__model_mm(c->kern, NULL, FTI__MODEL_MM_TB | c->mmx, r1 - r0, r1, D,
                              qb + r0 * d->QKV, d->QKV, kb, d->QKV, P + r0 * T, T);
                for (t = r0; t < r1; t++) {
                    float *p = P + t * T, mx = -INFINITY, sum = 0.0f, inv;
                    if (c->kern) { /* the table's vector exp */
                        fti_scale(c->kern, p, scale, t + 1);
                        fti_softmax_fwd(c->kern, p, p, 1, t + 1);
                        memset(p + t + 1, 0, (T - t - 1) * sizeof(float));
                        continue;
                    }
                    for (j = 0; j <= t; j++) {
                        p[j] *= scale;
                        if (p[j] > mx)
                            mx = p[j];
                    }
                    for (j = 0; j <= t; j++) {
                        p[j] = expf(p[j] - mx);
                        sum += p[j];
                    }
                    inv = 1.0f / sum;
                    for (j = 0; j <= t; j++)
                        p[j] *= inv;
                    for (j = t + 1; j < T; j++)
                        p[j] = 0.0f;
                }
                /* Y^T (D, m) = V[0:r1]^T . P[r0:r1, 0:r1]^T */
                fti__model_mm(c->kern, NULL, FTI__MODEL_MM_TA | FTI__MODEL_MM_TB | c->mmx, D,
                              r1 - r0, r1, vb, d->QKV, P + r0 * T, T, yt, r1 - r0);
                fti__model_untranspose(c->y + (b * T + r0) * d->HD + h * D, d->HD, yt, r1 - r0,
                                       D, r1 - r0);
            }
        }
    }
}

/* Backward: dP = dY V^T; dV^T += dY^T P; dS = P (dP - rowsum(P dP)) * scale; dQ^T = K^T dS^T;
 * dK^T += Q^T dS, by the same row blocks. dK^T and dV^T of the group (D, T) live in scratch,
 * zeroed, accumulated over heads and blocks in a fixed order, then written to dk and dv. */
static void fti__model_attn_bwd_task(void *vctx, size_t g0, size_t g1, int thread) {
    const fti__model_attn_ctx *c = (const fti__model_attn_ctx *)vctx;
    const fti__model_dims *d = c->d;
    size_t grp, hh, t, j, T = c->T, D = d->D, rep = d->H / d->KV;
    float scale = 1.0f / (float)sqrt((double)D);
    (void)thread;
    for (grp = g0; grp < g1; grp++) {
        size_t b = grp / d->KV, kvh = grp % d->KV;
        float *dS = c->scratch + grp * fti__model_attn_scratch(T, D); /* (T, T) */
        float *dkt = dS + T * T, *dvt = dkt + D * T;                  /* (D, T) each */
        float *tq = dvt + D * T;                                      /* (D, BLOCK) */
        const float *kb = c->k + b * T * d->QKV + kvh * D;
        const float *vb = c->v + b * T * d->QKV + kvh * D;
        memset(dkt, 0, 2 * D * T * sizeof(float));
        for (hh = 0; hh < rep; hh++) {
            size_t h = kvh * rep + hh, r0, r1;
            const float *qb = c->q + b * T * d->QKV + h * D;
            const float *dyb = c->dy + b * T * d->HD + h * D;
            const float *P = c->att + (b * d->H + h) * T * T;
            for (r0 = 0; r0 < T; r0 = r1) {
                size_t m = 0;
                r1 = r0 + FTI__MODEL_ATT_BLOCK < T ? r0 + FTI__MODEL_ATT_BLOCK : T;
                m = r1 - r0;
                fti__model_mm(c->kern, NULL, FTI__MODEL_MM_TB | c->mmx, m, r1, D,
                              dyb + r0 * d->HD, d->HD,
                              vb, d->QKV, dS + r0 * T, T);
                /* dV^T[:, 0:r1] += dY[r0:r1]^T . P[r0:r1, 0:r1] */
                fti__model_mm(c->kern, NULL, FTI__MODEL_MM_TA | FTI__MODEL_MM_ACC | c->mmx, D,
                              r1, m, dyb + r0 * d->HD, d->HD, P + r0 * T, T, dvt, T);
                for (t = r0; t < r1; t++) {
                    const float *p = P + t * T;
                    float *ds = dS + t * T, dot = 0.0f;
                    if (c->kern) {
                        fti_softmax_bwd(c->kern, ds, p, ds, 1, t + 1);
                        fti_scale(c->kern, ds, scale, t + 1);
                        memset(ds + t + 1, 0, (T - t - 1) * sizeof(float));
                        continue;
                    }
                    for (j = 0; j <= t; j++)
                        dot += p[j] * ds[j];
                    for (j = 0; j <= t; j++)
                        ds[j] = p[j] * (ds[j] - dot) * scale;
                    for (j = t + 1; j < T; j++)
                        ds[j] = 0.0f;
                }
                /* dQ^T (D, m) = K[0:r1]^T . dS[r0:r1, 0:r1]^T */
                fti__model_mm(c->kern, NULL, FTI__MODEL_MM_TA | FTI__MODEL_MM_TB | c->mmx, D, m,
                              r1, kb, d->QKV, dS + r0 * T, T, tq, m);
                fti__model_untranspose(c->dq + (b * T + r0) * d->QKV + h * D, d->QKV, tq, m, D,
                                       m);
                /* dK^T[:, 0:r1] += Q[r0:r1]^T . dS[r0:r1, 0:r1] */
                fti__model_mm(c->kern, NULL, FTI__MODEL_MM_TA | FTI__MODEL_MM_ACC | c->mmx, D,
                              r1, m, qb + r0 * d->QKV, d->QKV, dS + r0 * T, T, dkt, T);
            }
        }
        fti__model_untranspose(c->dk + b * T * d->QKV + kvh * D, d->QKV, dkt, T, D, T);
        fti__model_untranspose(c->dv + b * T * d->QKV + kvh * D, d->QKV, dvt, T, D, T);
        /* RoPE backward (the inverse rotation) on the group's dq heads and dk head */
        fti__model_rope(c->dq + b * T * d->QKV + kvh * rep * D, 0, T, d->QKV, T, rep, D,
                        c->rope_c, c->rope_s, 1);
        fti__model_rope(c->dk + b * T * d->QKV + kvh * D, 0, T, d->QKV, T, 1, D, c->rope_c,
                        c->rope_s, 1);
    }
}

/* --- output: softmax cross-entropy -------------------------------------------------------------
 * Rows split over threads. Forward turns logits into probabilities in place and stores each row's
 * loss (log-sum-exp minus the target logit, in double); backward turns probabilities into
 * d loss / d logits = (p - onehot(target)) * scale. */
typedef struct fti__model_ce_ctx {
    const fti_kernels *kern; /* softmax through the table (vector exp); NULL: plain loops */
    float *logits;          /* (N, V) */
    const int32_t *targets; /* (N) */
    double *row_loss;       /* (N) */
    size_t V;
    float scale;
    int backward;
} fti__model_ce_ctx;

static void fti__model_ce_task(void *vctx, size_t i0, size_t i1, int thread) {
    const fti__model_ce_ctx *c = (const fti__model_ce_ctx *)vctx;
    size_t i, j, V = c->V;
    (void)thread;
    for (i = i0; i < i1; i++) {
        float *row = c->logits + i * V; /* (V) */
        int32_t tgt = c->targets[i];
        if (c->backward) {
            if (tgt < 0) {
                for (j = 0; j < V; j++) row[j] = 0.0f;
                continue;
            }
            if (c->kern)
                fti_scale(c->kern, row, c->scale, V);
            else
                for (j = 0; j < V; j++) row[j] *= c->scale;
            row[tgt] -= c->scale;
        } else if (c->kern) { /* loss = log-sum-exp (in double) - target logit */
            float l = 0.0f;
            fti_xent_fwd(c->kern, &l, row, row, &tgt, 1, V);
            c->row_loss[i] = tgt >= 0 ? (double)l : 0.0;
        } else {
            float mx = row[0], tl = tgt >= 0 ? row[tgt] : 0.0f, inv;
            double sum = 0.0, lse;
            for (j = 1; j < V; j++)
                if (row[j] > mx) mx = row[j];
            for (j = 0; j < V; j++) {
                float e = expf(row[j] - mx);
                row[j] = e;
                sum += (double)e;
            }
            lse = log(sum) + (double)mx;
            c->row_loss[i] = tgt >= 0 ? lse - (double)tl : 0.0;
            inv = (float)(1.0 / sum);
            for (j = 0; j < V; j++) row[j] *= inv;
        }
    }
}

/* SwiGLU over n rows: g(n,F) = silu(gate) * up, with h12 (n, 2F) = gate | up per row,
 * silu(x) = x * sigmoid(x). */
static void fti__model_swiglu_fwd(float *g, const float *h12, size_t n, size_t F) {
    size_t i, j;
    for (i = 0; i < n; i++) {
        const float *gate = h12 + i * 2 * F, *up = gate + F;
        float *o = g + i * F;
        for (j = 0; j < F; j++) o[j] = gate[j] / (1.0f + expf(-gate[j])) * up[j];
    }
}
/* dh12 (n, 2F) = d gate | d up: d gate = dg * up * silu'(gate), d up = dg * silu(gate)
 * (written, not accumulated). */
static void fti__model_swiglu_bwd(float *dh12, const float *dg, const float *h12, size_t n,
                                  size_t F) {
    size_t i, j;
    for (i = 0; i < n; i++) {
        const float *gate = h12 + i * 2 * F, *up = gate + F, *dgr = dg + i * F;
        float *dgate = dh12 + i * 2 * F, *dup = dgate + F;
        for (j = 0; j < F; j++) {
            float x = gate[j], sg = 1.0f / (1.0f + expf(-x)), gd = dgr[j];
            dgate[j] = gd * up[j] * (sg * (1.0f + x * (1.0f - sg)));
            dup[j] = gd * x * sg;
        }
    }
}

/* --- residual dropout -------------------------------------------------------------------------
 * out(n,C) = x(n,C) * keep / (1-p), keep = the element's hash is at or above p * 2^32. The hash
 * of element (row0 + i, c) of site s (2*layer + branch) is a SplitMix64-style finalizer of
 * key(seed, s) + (row0 + i) * C + c (part 00's fti__mix64), 32 bits used. */
typedef struct fti__model_drop_ctx {
    float *out;
    const float *x;
    size_t C, row0;
    uint64_t key;
    uint32_t thresh;
    float scale;
} fti__model_drop_ctx;

static void fti__model_drop_task(void *vctx, size_t r0, size_t r1, int thread) {
    const fti__model_drop_ctx *c = (const fti__model_drop_ctx *)vctx;
    size_t i, j;
    (void)thread;
    for (i = r0; i < r1; i++) {
        uint64_t e = c->key + (uint64_t)(c->row0 + i) * c->C;
        const float *x = c->x + i * c->C;
        float *o = c->out + i * c->C;
        for (j = 0; j < c->C; j++) {
            uint32_t h = (uint32_t)(fti__mix64(e + j) >> 32);
            o[j] = h >= c->thresh ? x[j] * c->scale : 0.0f;
        }
    }
}

/* out = dropout(x) for site `site` of the acts' current dropout (out may be x). */
static void fti__model_p_dropout(const fti_model_acts *a, fti_pool *pool, float *out,
                                 const float *x, size_t n, size_t site) {
    fti__model_drop_ctx c;
    double th = (double)a->drop_p * 4294967296.0;
    c.out = out;
    c.x = x;
    c.C = a->d.C;
    c.row0 = a->drop_row0;
    c.key = fti__mix64(a->drop_seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(site + 1)));
    c.thresh = th >= 4294967295.0 ? 0xffffffffu : (uint32_t)th;
    c.scale = 1.0f / (1.0f - a->drop_p);
    fti_pool_for(pool, n, 64, fti__model_drop_task, &c);
}

/* --- forward and backward --------------------------------------------------------------------- */

FTIDEF fti_result fti_model_forward(const fti_model_config *cfg, const float *params,
                                    fti_model_acts *a, const int32_t *tokens,
                                    const int32_t *targets, size_t batch, size_t ctx,
                                    fti_pool *pool, double *loss) {
    const fti__model_dims *d;
    size_t N, l, i, NC, NHD, NQKV, NF, n_valid = 0;
    float eps;
    const float *embd, *wout;
    (void)cfg; /* the acts carry the resolved copy it was planned for */
    if (!a || !params || !tokens || batch == 0 || ctx == 0 || batch > a->B || ctx > a->T)
        return FTI_ERR_INVALID;
    d = &a->d;
    eps = a->cfg.norm_eps;
    N = batch * ctx;
    NC = a->B * a->T * d->C; /* per-layer strides use the planned sizes */
    NHD = a->B * a->T * d->HD;
    NQKV = a->B * a->T * d->QKV;
    NF = a->B * a->T * d->F;
    for (i = 0; i < N; i++) {
        if (tokens[i] < 0 || (size_t)tokens[i] >= d->V) return FTI_ERR_INVALID;
        if (targets && targets[i] >= 0 && (size_t)targets[i] >= d->V) return FTI_ERR_INVALID;
    }
    a->b = batch;
    a->t = ctx;
    a->have_targets = targets != NULL;
    a->drop_p = a->dropout;
    a->drop_seed = a->dropout_seed;
    a->drop_row0 = a->dropout_row0;
    memcpy(a->tokens, tokens, N * sizeof(int32_t));
    if (targets) memcpy(a->targets, targets, N * sizeof(int32_t));
    embd = params + fti__model_offset(d, FTI_TENSOR_TOKEN_EMBD, 0);
    for (i = 0; i < N; i++) /* res0 (N,C) = embd[token] */
        memcpy(a->res + i * d->C, embd + (size_t)tokens[i] * d->C, d->C * sizeof(float));
    for (l = 0; l < d->L; l++) {
        const float *w_an = params + fti__model_offset(d, FTI_TENSOR_ATTN_NORM, l);
        const float *wq = params + fti__model_offset(d, FTI_TENSOR_ATTN_Q, l);
        const float *wo = params + fti__model_offset(d, FTI_TENSOR_ATTN_OUTPUT, l);
        const float *w_fn = params + fti__model_offset(d, FTI_TENSOR_FFN_NORM, l);
        const float *wg = params + fti__model_offset(d, FTI_TENSOR_FFN_GATE, l);
        const float *wd = params + fti__model_offset(d, FTI_TENSOR_FFN_DOWN, l);
        float *res = a->res + l * NC, *res_next = a->res + (l + 1) * NC; /* (N,C) */
        float *mid = a->mid + l * NC, *xn1 = a->xn1 + l * NC, *xn2 = a->xn2 + l * NC;
        float *qkv = a->qkv + l * NQKV; /* (N, QKV) */
        float *y = a->y + l * NHD;
        float *h12 = a->h12 + l * 2 * NF, *g = a->g + l * NF;
        fti__model_attn_ctx ac;
        fti__model_p_rmsnorm_fwd(pool, xn1, a->rstd1 + l * a->B * a->T, res, w_an, N, d->C, eps);
        /* q | k | v in one GEMM: wq is the first row of the adjacent (QKV, C) block */
        fti__model_linear_fwd(a->kern, a->mmx, pool, qkv, xn1, wq, N, d->C, d->QKV);
        memset(&ac, 0, sizeof(ac));
        ac.kern = a->kern;
        ac.mmx = a->mmx;
        ac.d = d;
        ac.T = ctx;
        ac.q = qkv;
        ac.k = qkv + d->HD;
        ac.v = qkv + d->HD + d->KVD;
        ac.att = a->att + l * a->B * d->H * a->T * a->T; /* (B,H,t,t) packed for this ctx */
        ac.y = y;
        ac.rope_c = a->rope_c; /* q and k are rotated inside the attention task */
        ac.rope_s = a->rope_s;
        ac.scratch = a->attn_scratch;
        fti_pool_for(pool, batch * d->KV, 1, fti__model_attn_fwd_task, &ac);
        fti__model_linear_fwd(a->kern, a->mmx, pool, mid, y, wo, N, d->HD, d->C);
        if (a->drop_p > 0.0f) fti__model_p_dropout(a, pool, mid, mid, N, 2 * l);
        fti__model_p_add(pool, mid, res, N, d->C);
        fti__model_p_rmsnorm_fwd(pool, xn2, a->rstd2 + l * a->B * a->T, mid, w_fn, N, d->C, eps);
        /* gate | up in one GEMM (ffn_gate, ffn_up adjacent: one (2F, C) block) */
        fti__model_linear_fwd(a->kern, a->mmx, pool, h12, xn2, wg, N, d->C, 2 * d->F);
        fti__model_p_swiglu(a->kern, pool, 0, g, h12, NULL, N, d->F);
        fti__model_linear_fwd(a->kern, a->mmx, pool, res_next, g, wd, N, d->F, d->C);
        if (a->drop_p > 0.0f) fti__model_p_dropout(a, pool, res_next, res_next, N, 2 * l + 1);
        fti__model_p_add(pool, res_next, mid, N, d->C);
    }
    fti__model_p_rmsnorm_fwd(pool, a->xnf, a->rstdf, a->res + d->L * NC,
                           params + fti__model_offset(d, FTI_TENSOR_OUTPUT_NORM, 0), N, d->C, eps);
    wout = params + fti__model_offset(d, a->cfg.tied_embeddings ? FTI_TENSOR_TOKEN_EMBD
                                                                : FTI_TENSOR_OUTPUT, 0);
    fti__model_linear_fwd(a->kern, a->mmx, pool, a->logits, a->xnf, wout, N, d->C, d->V);
    if (targets) {
        fti__model_ce_ctx cc;
        double sum = 0.0;
        cc.kern = a->kern;
        cc.logits = a->logits;
        cc.targets = a->targets;
        cc.row_loss = a->row_loss;
        cc.V = d->V;
        cc.scale = 0.0f;
        cc.backward = 0;
        fti_pool_for(pool, N, 8, fti__model_ce_task, &cc);
        for (i = 0; i < N; i++) /* fixed order */
            if (a->targets[i] >= 0) {
                sum += a->row_loss[i];
                n_valid++;
            }
        sum = n_valid ? sum / (double)n_valid : 0.0;
        if (loss) *loss = sum;
        if (!(sum == sum) || sum > 1e30) return FTI_ERR_NUMERIC;
    } else if (loss) {
        *loss = 0.0;
    }
    return FTI_OK;
}

FTIDEF fti_result fti_model_backward(const fti_model_config *cfg, const float *params,
                                     fti_model_acts *a, float *grads, float loss_scale,
                                     fti_pool *pool) {
    const fti__model_dims *d;
    size_t N, T, l, i, NC, NHD, NQKV, NF, n_valid = 0;
    const float *wout;
    float *dwout;
    fti__model_ce_ctx cc;
    (void)cfg;
    if (!a || !params || !grads || !a->have_targets || a->b == 0) return FTI_ERR_INVALID;
    d = &a->d;
    N = a->b * a->t;
    T = a->t;
    NC = a->B * a->T * d->C;
    NHD = a->B * a->T * d->HD;
    NQKV = a->B * a->T * d->QKV;
    NF = a->B * a->T * d->F;
    for (i = 0; i < N; i++) n_valid += a->targets[i] >= 0;
    /* dlogits (N,V) in place of the probabilities */
    cc.kern = a->kern;
    cc.logits = a->logits;
    cc.targets = a->targets;
    cc.row_loss = a->row_loss;
    cc.V = d->V;
    cc.scale = n_valid ? loss_scale / (float)n_valid : 0.0f;
    cc.backward = 1;
    fti_pool_for(pool, N, 8, fti__model_ce_task, &cc);
    a->have_targets = 0; /* the probabilities are gone */
    {
        fti_tensor_kind ko = a->cfg.tied_embeddings ? FTI_TENSOR_TOKEN_EMBD : FTI_TENSOR_OUTPUT;
        wout = params + fti__model_offset(d, ko, 0);
        dwout = grads + fti__model_offset(d, ko, 0);
    }
    /* logits = xnf . wout^T */
    fti__model_linear_bwd(a->kern, a->mmx, pool, a->dxn, 0, dwout, a->logits, a->xnf, wout, N,
                          d->C, d->V);
    memset(a->dres, 0, N * d->C * sizeof(float));
    fti__model_p_rmsnorm_bwd(pool, a->dres, grads + fti__model_offset(d, FTI_TENSOR_OUTPUT_NORM, 0),
                           a->dxn, a->res + d->L * NC, a->rstdf,
                           params + fti__model_offset(d, FTI_TENSOR_OUTPUT_NORM, 0), N, d->C,
                           a->norm_part);
    for (l = d->L; l > 0;) {
        l--; /* the layers from the last down (no wrap below 0: clean under the uint sanitizer) */
#define FTI__W(kind) (params + fti__model_offset(d, kind, l))
#define FTI__G(kind) (grads + fti__model_offset(d, kind, l))
        float *res = a->res + l * NC, *mid = a->mid + l * NC;
        float *xn1 = a->xn1 + l * NC, *xn2 = a->xn2 + l * NC;
        float *qkv = a->qkv + l * NQKV;
        float *y = a->y + l * NHD;
        float *h12 = a->h12 + l * 2 * NF, *g = a->g + l * NF;
        fti__model_attn_ctx ac;
        const float *dbranch;
        /* FFN: res_next = mid + drop(down(g)); the gradient of res_next is dres, of the branch
         * dres through the same mask (into dxn, free until the gate's backward) */
        dbranch = a->dres;
        if (a->drop_p > 0.0f) {
            fti__model_p_dropout(a, pool, a->dxn, a->dres, N, 2 * l + 1);
            dbranch = a->dxn;
        }
        fti__model_linear_bwd(a->kern, a->mmx, pool, a->dg, 0, FTI__G(FTI_TENSOR_FFN_DOWN),
                              dbranch, g,
                              FTI__W(FTI_TENSOR_FFN_DOWN), N, d->F, d->C);
        fti__model_p_swiglu(a->kern, pool, 1, a->dh12, a->dg, h12, N, d->F);
        /* gate and up as one (2F, C) block: their gradients are adjacent too */
        fti__model_linear_bwd(a->kern, a->mmx, pool, a->dxn, 0, FTI__G(FTI_TENSOR_FFN_GATE),
                              a->dh12, xn2,
                              FTI__W(FTI_TENSOR_FFN_GATE), N, d->C, 2 * d->F);
        fti__model_p_rmsnorm_bwd(pool, a->dres, FTI__G(FTI_TENSOR_FFN_NORM), a->dxn, mid,
                               a->rstd2 + l * a->B * a->T, FTI__W(FTI_TENSOR_FFN_NORM), N, d->C,
                               a->norm_part);
        /* attention: mid = res + drop(y . wo^T); dres is now d mid */
        dbranch = a->dres;
        if (a->drop_p > 0.0f) {
            fti__model_p_dropout(a, pool, a->dxn, a->dres, N, 2 * l);
            dbranch = a->dxn;
        }
        fti__model_linear_bwd(a->kern, a->mmx, pool, a->dy, 0, FTI__G(FTI_TENSOR_ATTN_OUTPUT),
                              dbranch, y,
                              FTI__W(FTI_TENSOR_ATTN_OUTPUT), N, d->HD, d->C);
        memset(&ac, 0, sizeof(ac));
        ac.kern = a->kern;
        ac.mmx = a->mmx;
        ac.d = d;
        ac.T = T;
        ac.q = qkv;
        ac.k = qkv + d->HD;
        ac.v = qkv + d->HD + d->KVD;
        ac.att = a->att + l * a->B * d->H * a->T * a->T;
        ac.dy = a->dy;
        ac.dq = a->dqkv;
        ac.dk = a->dqkv + d->HD;
        ac.dv = a->dqkv + d->HD + d->KVD;
        ac.scratch = a->attn_scratch;
        ac.rope_c = a->rope_c;
        ac.rope_s = a->rope_s;
        fti_pool_for(pool, a->b * d->KV, 1, fti__model_attn_bwd_task, &ac);
        /* q, k, v as one (QKV, C) block */
        fti__model_linear_bwd(a->kern, a->mmx, pool, a->dxn, 0, FTI__G(FTI_TENSOR_ATTN_Q),
                              a->dqkv, xn1,
                              FTI__W(FTI_TENSOR_ATTN_Q), N, d->C, d->QKV);
        fti__model_p_rmsnorm_bwd(pool, a->dres, FTI__G(FTI_TENSOR_ATTN_NORM), a->dxn, res,
                               a->rstd1 + l * a->B * a->T, FTI__W(FTI_TENSOR_ATTN_NORM), N, d->C,
                               a->norm_part);
#undef FTI__W
#undef FTI__G
    }
    {
        float *dembd = grads + fti__model_offset(d, FTI_TENSOR_TOKEN_EMBD, 0);
        size_t j;
        for (i = 0; i < N; i++) { /* rows in order: repeated tokens add deterministically */
            float *dst = dembd + (size_t)a->tokens[i] * d->C;
            const float *src = a->dres + i * d->C;
            for (j = 0; j < d->C; j++) dst[j] += src[j];
        }
    }
    return FTI_OK;
}
