/* === infer: implementation === */
#include "08_infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- engine -------------------------------------------------------------------------------- */

typedef struct fti__eng_w {
    const void *data; /* in the mapped file */
    fti_dtype type;
    /* the same matrix in the table's decode form (fti_qpack_decode_rows: AVX2 Q4_0), or NULL;
     * rows r0 (a multiple of the engine's pk_rows) on are at pk + r0 · row bytes */
    const void *pk;
} fti__eng_w;

typedef struct fti__eng_layer {
    const float *attn_norm, *ffn_norm; /* (C) */
    fti__eng_w q, k, v, o;             /* (HD,C) (KVD,C) (KVD,C) (C,HD) */
    fti__eng_w gate, up, down;         /* (F,C) (F,C) (C,F) */
} fti__eng_layer;

struct fti_engine {
    fti_gguf *g;
    fti_model_config cfg;
    const fti_kernels *k;
    size_t C, H, KV, D, HD, KVD, F, V, L;
    fti__eng_w embd, out;
    const float *out_norm;
    fti__eng_layer *layers;
    uint32_t weight_type;
    size_t weight_bytes;
    void **owned;     /* LoRA-merged F32 matrices (n_owned) */
    size_t n_owned;
    void *pack_mem;   /* the matrices' decode forms (fti__eng_w.pk), one allocation */
    size_t pk_rows;   /* their row groups (8 or 16), 0 when nothing is packed */
    /* token -> bytes */
    char *tok_bytes;
    size_t *tok_off; /* (V+1) */
    size_t max_token_bytes;
    int32_t bos, eos;
    int add_bos;
};

/* GPT-2's byte-to-unicode map, inverted: inv[cp] = the byte shown as code point cp, or -1.
 * Printable bytes (33..126, 161..172, 174..255) stand for themselves; the other 68 bytes are
 * shown as U+0100 + n in increasing byte order. */
static void fti__infer_unicode_bytes(int16_t inv[256 + 68]) {
    int b, n = 0;
    for (b = 0; b < 256 + 68; b++) inv[b] = -1;
    for (b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        inv[printable ? b : 256 + n++] = (int16_t)b;
    }
}

/* Builds the token -> bytes table from tokenizer.ggml.tokens (and token_type for CONTROL). */
static fti_result fti__engine_detok(fti_engine *e, fti_error *err) {
    const fti_gguf_kv *toks = NULL, *types = NULL;
    fti_buf bytes;
    size_t i;
    fti_result rc;
    int16_t inv[256 + 68];
    fti__infer_unicode_bytes(inv);
    e->tok_off = (size_t *)fti_calloc(e->V + 1, sizeof(size_t));
    if (!e->tok_off) return fti_error_set(err, FTI_ERR_NOMEM, "engine: out of memory");
    rc = fti_gguf_get_arr(e->g, "tokenizer.ggml.tokens", FTI_GGUF_STRING, &toks, NULL);
    if (rc != FTI_OK) return FTI_OK; /* no vocabulary: ids only, every token renders empty */
    if (fti_gguf_get_arr(e->g, "tokenizer.ggml.token_type", FTI_GGUF_TYPE_COUNT, &types, NULL) !=
        FTI_OK)
        types = NULL;
    memset(&bytes, 0, sizeof bytes);
    for (i = 0; i < e->V; i++) {
        size_t len = 0, p = 0;
        const unsigned char *s = (const unsigned char *)fti_gguf_arr_str(e->g, toks, i, &len);
        e->tok_off[i] = bytes.len;
        if (!s || (types && fti_gguf_arr_int(types, i) == FTI_GGUF_TOKEN_CONTROL)) continue;
        if (!fti_buf_reserve(&bytes, len)) break; /* a token never decodes longer */
        while (p < len) {
            uint32_t cp;
            int ok, b;
            size_t n;
            if (s[p] < 0x80) { /* ASCII: printable ones are themselves, others not in the map */
                bytes.data[bytes.len++] = (char)s[p++];
                continue;
            }
            n = fti_utf8_decode(s + p, len - p, &cp, &ok);
            b = ok && cp < 256 + 68 ? inv[cp] : -1;
            if (b >= 0) {
                bytes.data[bytes.len++] = (char)b;
            } else { /* not in the byte map: keep as written */
                memcpy(bytes.data + bytes.len, s + p, n);
                bytes.len += n;
            }
            p += n;
        }
        if (bytes.len - e->tok_off[i] > e->max_token_bytes)
            e->max_token_bytes = bytes.len - e->tok_off[i];
    }
    e->tok_off[e->V] = bytes.len;
    if (bytes.oom) {
        fti_buf_free(&bytes);
        return fti_error_set(err, FTI_ERR_NOMEM, "engine: out of memory");
    }
    e->tok_bytes = bytes.data ? bytes.data : NULL;
    return FTI_OK;
}

static int fti__engine_w(fti_engine *e, const char *name, fti__eng_w *w) {
    const fti_gguf_tensor *t = fti_gguf_find_tensor(e->g, name);
    if (!t) return 0;
    w->data = t->data;
    w->type = (fti_dtype)t->type;
    e->weight_bytes += t->n_bytes;
    return 1;
}

/* Matrix i of the engine's products (per layer q, k, v, o, gate, up, down; then the output, i =
 * L·7) with its rows and columns; NULL past the last. */
static const fti__eng_w *fti__engine_mat(const fti_engine *e, size_t i, size_t *rows,
                                         size_t *cols) {
    static const int kind_rows[7] = {0, 1, 1, 2, 3, 3, 2}; /* HD, KVD, C, F */
    const fti__eng_layer *ly;
    const fti__eng_w *mats[7];
    size_t R[4], j = i % 7;
    if (i == e->L * 7) {
        *rows = e->V, *cols = e->C;
        return &e->out;
    }
    if (i > e->L * 7) return NULL;
    ly = &e->layers[i / 7];
    mats[0] = &ly->q, mats[1] = &ly->k, mats[2] = &ly->v, mats[3] = &ly->o;
    mats[4] = &ly->gate, mats[5] = &ly->up, mats[6] = &ly->down;
    R[0] = e->HD, R[1] = e->KVD, R[2] = e->C, R[3] = e->F;
    *rows = R[kind_rows[j]];
    *cols = j == 3 ? e->HD : j == 6 ? e->F : e->C;
    return mats[j];
}

/* A layer's matrices in the engine's order (fti__engine_mat): their names' middle parts. */
static const char *const fti__eng_kinds[7] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                              "ffn_gate", "ffn_up", "ffn_down"};

/* The engine view of layout tensor `name` ("blk.0.attn_q"), or NULL. */
static fti__eng_w *fti__engine_view(fti_engine *e, const char *name) {
    unsigned long l;
    int used = 0, i;
    if (strcmp(name, "output") == 0 && !e->cfg.tied_embeddings) return &e->out;
    if (sscanf(name, "blk.%lu.%n", &l, &used) != 1 || used == 0 || l >= e->L) return NULL;
    for (i = 0; i < 7; i++)
        if (strcmp(name + used, fti__eng_kinds[i]) == 0) {
            size_t rows, cols; /* (e is not const: its matrices are not) */
            return (fti__eng_w *)fti__engine_mat(e, (size_t)l * 7 + (size_t)i, &rows, &cols);
        }
    return NULL;
}

/* Merges a LoRA adapter file into the engine: every "<name>.weight.lora_a" {in, r} with its
 * ".lora_b" {r, out} adapts the layout matrix <name> (out, in). */
static fti_result fti__engine_lora(fti_engine *e, const char *path, float user_scale,
                                   fti_error *err) {
    fti_gguf *a = NULL;
    fti_result rc;
    const char *ty = NULL;
    size_t ty_len = 0, i, n_pairs = 0;
    float alpha = 0.0f;
    rc = fti_gguf_open(&a, path, NULL, err);
    if (rc != FTI_OK) return rc;
    if (fti_gguf_get_str(a, "adapter.type", &ty, &ty_len, NULL) != FTI_OK || ty_len != 4 ||
        memcmp(ty, "lora", 4) != 0) {
        fti_gguf_close(a);
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: not a LoRA adapter (adapter.type)", path);
    }
    rc = fti_gguf_get_f32(a, "adapter.lora.alpha", &alpha, err);
    if (rc != FTI_OK) {
        fti_gguf_close(a);
        return rc;
    }
    e->owned = (void **)fti_calloc(fti_gguf_n_tensors(a) + 1, sizeof(void *));
    if (!e->owned) {
        fti_gguf_close(a);
        return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
    }
    for (i = 0; i < fti_gguf_n_tensors(a) && rc == FTI_OK; i++) {
        const fti_gguf_tensor *ta = fti_gguf_tensor_at(a, i), *tb;
        size_t nlen = strlen(ta->name), rows, cols, r, o;
        char base[80], bname[96];
        fti__eng_w *view;
        float *merged, *bs;
        const float *arow;
        double scale;
        if (nlen > 14 && strcmp(ta->name + nlen - 14, ".weight.lora_b") == 0) continue;
        if (nlen <= 14 || nlen - 14 >= sizeof base ||
            strcmp(ta->name + nlen - 14, ".weight.lora_a") != 0) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: unexpected tensor %s", path, ta->name);
            break;
        }
        memcpy(base, ta->name, nlen - 14);
        base[nlen - 14] = 0;
        snprintf(bname, sizeof bname, "%s.weight.lora_b", base);
        tb = fti_gguf_find_tensor(a, bname);
        view = fti__engine_view(e, base);
        if (!tb || !view) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: %s has no %s or no such model matrix",
                               path, ta->name, bname);
            break;
        }
        {
            char mname[96];
            const fti_gguf_tensor *tw;
            snprintf(mname, sizeof mname, "%s.weight", base);
            tw = fti_gguf_find_tensor(e->g, mname);
            rows = (size_t)tw->ne[1];
            cols = (size_t)tw->ne[0];
        }
        r = (size_t)ta->ne[1];
        if (ta->n_dims != 2 || tb->n_dims != 2 || ta->ne[0] != cols || tb->ne[0] != r ||
            tb->ne[1] != rows || ta->type != FTI_GGML_F32 || tb->type != FTI_GGML_F32 || r == 0) {
            rc = fti_error_set(err, FTI_ERR_FORMAT,
                               "%s: %s: shapes A [%llu, %llu] B [%llu, %llu] do not fit the "
                               "(%lu, %lu) matrix (F32 adapters only)",
                               path, base, (unsigned long long)ta->ne[0],
                               (unsigned long long)ta->ne[1], (unsigned long long)tb->ne[0],
                               (unsigned long long)tb->ne[1], (unsigned long)rows,
                               (unsigned long)cols);
            break;
        }
        scale = (double)alpha / (double)r * (user_scale != 0.0f ? (double)user_scale : 1.0);
        merged = (float *)fti_malloc(rows * cols * sizeof(float));
        bs = (float *)fti_malloc(rows * r * sizeof(float));
        if (!merged || !bs) {
            fti_free(merged);
            fti_free(bs);
            rc = fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        e->owned[e->n_owned++] = merged;
        for (o = 0; o < rows; o++) /* decode W in its stored type */
            fti_dequantize_row(e->k, view->type, merged + o * cols,
                               (const char *)view->data + o * fti_dtype_row_bytes(view->type, cols),
                               cols);
        arow = (const float *)ta->data;
        for (o = 0; o < rows * r; o++) bs[o] = (float)(scale * ((const float *)tb->data)[o]);
        /* W (out, in) += (scale B) (out, r) . A (r, in) */
        fti_matmul(e->k, NULL, FTI_MM_ACCUMULATE, rows, cols, r, bs, r, arow, cols, merged, cols);
        fti_free(bs);
        view->data = merged;
        view->type = FTI_DTYPE_F32;
        n_pairs++;
    }
    fti_gguf_close(a);
    if (rc == FTI_OK && n_pairs == 0)
        rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: the adapter has no lora_a/lora_b pairs", path);
    return rc;
}

/* The packing's work: groups of G rows numbered through the n packed matrices (each with its
 * rows, columns, first group and offset in pack_mem). */
typedef struct fti__eng_pack_mat {
    const fti__eng_w *w;
    size_t rows, cols, g0, off;
} fti__eng_pack_mat;
typedef struct fti__eng_pack_job {
    fti_engine *e;
    size_t n, G;
    fti__eng_pack_mat *m;
} fti__eng_pack_job;

static void fti__engine_pack_task(void *ctx, size_t a, size_t b, int thread) {
    const fti__eng_pack_job *j = (const fti__eng_pack_job *)ctx;
    const fti__eng_pack_mat *m = j->m;
    const fti_kernels *k = j->e->k;
    (void)thread;
    while (m < j->m + j->n && a < b) { /* the next part of matrix m in [a, b) */
        size_t end = m->g0 + (m->rows + j->G - 1) / j->G, e, r0, nr, rb;
        const char *src;
        if (a >= end) {
            m++;
            continue;
        }
        e = end < b ? end : b;
        if (e - a > 64) e = a + 64; /* at most 64 groups at a time (~0.2 MB at 768 columns) */
        rb = fti_dtype_row_bytes(m->w->type, m->cols);
        r0 = (a - m->g0) * j->G;
        nr = (e - a) * j->G < m->rows - r0 ? (e - a) * j->G : m->rows - r0;
        src = (const char *)m->w->data + r0 * rb;
        (void)fti_qpack(k, m->w->type, src, nr, m->cols, (char *)j->e->pack_mem + m->off + r0 * rb,
                        fti_qpack_bytes(k, m->w->type, nr, m->cols));
        /* the rows just packed leave memory now, so the peak stays about one copy (with the
         * page they share with the next rows: if still needed, it is read again) */
        (void)fti_gguf_drop(j->e->g, src, nr * rb + 4095);
        a = e;
    }
}

/* Where the table has a faster decode form of a type (fti_qpack_decode_rows: AVX2 Q4_0, and Q8_0
 * when opts->repack_q8_0 asks, in 8-row groups; AVX-512 VNNI Q4_0 in 16-row groups; each the
 * same size as the rows), the matrices of that
 * type are packed once, here, into one allocation, and the mapped rows' pages are let go
 * (fti_gguf_drop: read again from the file
 * only if something touches them, so resident memory stays one copy of the weights). Decode
 * steps and prompt batches then read the packed form (the same bits as the rows). q, k, v are
 * packed only when a head's rows are whole groups (the decode step splits them by heads). Not
 * done when the mapped pages cannot be let go (a read() copy, no madvise: the weights would be
 * kept twice), with opts->no_repack or $FTI_REPACK=0; running out of memory only costs the
 * speed-up. On opts->pool the groups are packed in parallel. */
static void fti__engine_pack(fti_engine *e, const fti_engine_opts *opts) {
    size_t i, n = e->L * 7 + 1, total = 0, groups = 0;
    const char *env = getenv("FTI_REPACK");
    fti__eng_pack_job j;
    fti__eng_pack_mat *m;
    if ((opts && opts->no_repack) || (env && strcmp(env, "0") == 0)) return;
    memset(&j, 0, sizeof j);
    j.e = e;
    j.m = (fti__eng_pack_mat *)fti_calloc(n, sizeof *j.m);
    if (!j.m) return;
    for (i = 0; i < n; i++) { /* which matrices, their places and the bytes in all */
        size_t G, b, rows, cols;
        const fti__eng_w *w = fti__engine_mat(e, i, &rows, &cols);
        G = fti_qpack_decode_rows(e->k, w->type);
        if (w->type == FTI_DTYPE_Q8_0 && !(opts && opts->repack_q8_0)) continue;
        if (!G || (i < e->L * 7 && i % 7 < 3 && e->D % G)) continue; /* (one type, one G) */
        b = fti_qpack_bytes(e->k, w->type, rows, cols);
        if (!b || !fti_gguf_drop(e->g, w->data, 0)) goto done; /* (0: cannot drop) */
        m = &j.m[j.n++];
        j.G = G, m->w = w, m->rows = rows, m->cols = cols, m->g0 = groups, m->off = total;
        groups += (rows + G - 1) / G;
        if (!fti_size_add(total, (b + 63) / 64 * 64, &total)) goto done;
    }
    if (total == 0 || (e->pack_mem = fti_aligned_alloc(total, 64)) == NULL) goto done;
    /* in parallel when the caller lends a pool (pages are zeroed and faulted by each thread) */
    fti_pool_for(opts ? opts->pool : NULL, groups, 32, fti__engine_pack_task, &j);
    for (m = j.m; m < j.m + j.n; m++) /* (e's own matrices: not const) */
        ((fti__eng_w *)m->w)->pk = (char *)e->pack_mem + m->off;
    /* and what reading the chunks' edges faulted back in (the kernel maps up to 64 KB around a
     * fault): the whole file, whose few other pages in use (norms, embedding rows) come back */
    (void)fti_gguf_drop(e->g, fti_gguf_file_data(e->g), fti_gguf_file_size(e->g));
    e->pk_rows = j.G;
done:
    fti_free(j.m);
}

FTIDEF fti_result fti_engine_open(fti_engine **out, const char *path, const fti_engine_opts *opts,
                                  fti_error *err) {
    fti_engine *e;
    fti_result rc;
    size_t l;
    uint32_t u;
    int b = 0; /* (g++ -O3 cannot see fti_gguf_get_bool set it when it returns FTI_OK) */
    size_t counts[31];
    if (!out || !path) return fti_error_set(err, FTI_ERR_INVALID, "engine: NULL argument");
    *out = NULL;
    e = (fti_engine *)fti_calloc(1, sizeof *e);
    if (!e) return fti_error_set(err, FTI_ERR_NOMEM, "engine: out of memory");
    e->k = fti_kernels_get(opts ? opts->isa : FTI_ISA_AUTO);
    if (!e->k) {
        fti_free(e);
        return fti_error_set(err, FTI_ERR_UNSUPPORTED, "engine: instruction set %s unavailable",
                             fti_isa_name(opts->isa));
    }
    rc = fti_gguf_open(&e->g, path, NULL, err);
    if (rc == FTI_OK) rc = fti_gguf_llama_config(e->g, &e->cfg, opts ? opts->allow_extra : 0, err);
    if (rc != FTI_OK) {
        fti_engine_close(e);
        return rc;
    }
    e->C = e->cfg.dim;
    e->H = e->cfg.n_heads;
    e->KV = e->cfg.n_kv_heads;
    e->D = e->C / e->H;
    e->HD = e->H * e->D;
    e->KVD = e->KV * e->D;
    e->F = e->cfg.hidden_dim;
    e->V = e->cfg.vocab_size;
    e->L = e->cfg.n_layers;
    e->layers = (fti__eng_layer *)fti_calloc(e->L, sizeof(fti__eng_layer));
    if (!e->layers) {
        fti_engine_close(e);
        return fti_error_set(err, FTI_ERR_NOMEM, "engine: out of memory");
    }
    /* fti_gguf_llama_config checked presence, shapes and types of all of these */
    fti__engine_w(e, "token_embd.weight", &e->embd);
    e->weight_bytes = 0; /* one embedding row per token: not counted as streamed weights */
    if (!fti__engine_w(e, "output.weight", &e->out)) {
        e->out = e->embd;
        e->weight_bytes += fti_gguf_find_tensor(e->g, "token_embd.weight")->n_bytes;
    }
    e->out_norm = (const float *)fti_gguf_find_tensor(e->g, "output_norm.weight")->data;
    e->weight_bytes += e->C * 4;
    memset(counts, 0, sizeof counts);
    for (l = 0; l < e->L; l++) {
        fti__eng_layer *ly = &e->layers[l];
        char nm[64];
        fti__eng_w vn = {NULL, FTI_DTYPE_F32, NULL};
        size_t j, rows, cols;
        for (j = 0; j < 7; j++) {
            fti__eng_w *w = (fti__eng_w *)fti__engine_mat(e, l * 7 + j, &rows, &cols);
            snprintf(nm, sizeof nm, "blk.%lu.%s.weight", (unsigned long)l, fti__eng_kinds[j]);
            fti__engine_w(e, nm, w);
            if ((unsigned)w->type < 31) counts[w->type]++;
        }
        snprintf(nm, sizeof nm, "blk.%lu.attn_norm.weight", (unsigned long)l);
        fti__engine_w(e, nm, &vn);
        ly->attn_norm = (const float *)vn.data;
        snprintf(nm, sizeof nm, "blk.%lu.ffn_norm.weight", (unsigned long)l);
        fti__engine_w(e, nm, &vn);
        ly->ffn_norm = (const float *)vn.data;
    }
    {
        unsigned t, best = 0;
        for (t = 0; t < 31; t++)
            if (counts[t] > counts[best]) best = t;
        e->weight_type = best;
    }
    e->bos = e->eos = -1;
    if (fti_gguf_get_u32(e->g, "tokenizer.ggml.bos_token_id", &u, NULL) == FTI_OK)
        e->bos = (int32_t)u;
    if (fti_gguf_get_u32(e->g, "tokenizer.ggml.eos_token_id", &u, NULL) == FTI_OK)
        e->eos = (int32_t)u;
    if (fti_gguf_get_bool(e->g, "tokenizer.ggml.add_bos_token", &b, NULL) == FTI_OK)
        e->add_bos = b && e->bos >= 0;
    rc = fti__engine_detok(e, err);
    if (rc == FTI_OK && opts && opts->lora_path)
        rc = fti__engine_lora(e, opts->lora_path, opts->lora_scale, err);
    if (rc != FTI_OK) {
        fti_engine_close(e);
        return rc;
    }
    fti__engine_pack(e, opts);
    *out = e;
    return FTI_OK;
}

FTIDEF void fti_engine_close(fti_engine *e) {
    size_t i;
    if (!e) return;
    for (i = 0; i < e->n_owned; i++) fti_free(e->owned[i]);
    fti_free(e->owned);
    fti_aligned_free(e->pack_mem);
    fti_gguf_close(e->g);
    fti_free(e->layers);
    fti_free(e->tok_bytes);
    fti_free(e->tok_off);
    fti_free(e);
}

FTIDEF const fti_model_config *fti_engine_config(const fti_engine *e) {
    return e ? &e->cfg : NULL;
}
FTIDEF const fti_gguf *fti_engine_gguf(const fti_engine *e) { return e ? e->g : NULL; }
FTIDEF const fti_kernels *fti_engine_kernels(const fti_engine *e) { return e ? e->k : NULL; }
FTIDEF uint32_t fti_engine_weight_type(const fti_engine *e) { return e ? e->weight_type : 0; }
FTIDEF size_t fti_engine_weight_bytes(const fti_engine *e) { return e ? e->weight_bytes : 0; }
FTIDEF int32_t fti_engine_bos(const fti_engine *e) { return e ? e->bos : -1; }
FTIDEF int32_t fti_engine_eos(const fti_engine *e) { return e ? e->eos : -1; }
FTIDEF int fti_engine_add_bos(const fti_engine *e) { return e ? e->add_bos : 0; }

FTIDEF const char *fti_engine_token_bytes(const fti_engine *e, int32_t id, size_t *out_len) {
    if (!e || id < 0 || (size_t)id >= e->V) return NULL;
    if (out_len) *out_len = e->tok_off[id + 1] - e->tok_off[id];
    return e->tok_bytes ? e->tok_bytes + e->tok_off[id] : "";
}

FTIDEF fti_result fti_engine_tokenizer(const fti_engine *e, fti_tokenizer **out, fti_error *err) {
    const fti_gguf_kv *toks = NULL, *types = NULL, *merges = NULL;
    const char **tp = NULL, **mp = NULL;
    size_t *tl = NULL, *ml = NULL, i, n_merges = 0, pre_len = 0;
    int32_t *ty = NULL;
    const char *pre = NULL;
    char *pre_z = NULL;
    fti_result rc;
    if (!e || !out) return fti_error_set(err, FTI_ERR_INVALID, "engine: NULL argument");
    *out = NULL;
    rc = fti_gguf_get_arr(e->g, "tokenizer.ggml.tokens", FTI_GGUF_STRING, &toks, err);
    if (rc != FTI_OK) return rc;
    if (fti_gguf_get_arr(e->g, "tokenizer.ggml.token_type", FTI_GGUF_TYPE_COUNT, &types, NULL) !=
        FTI_OK)
        types = NULL;
    if (fti_gguf_get_arr(e->g, "tokenizer.ggml.merges", FTI_GGUF_STRING, &merges, NULL) == FTI_OK)
        n_merges = merges->arr_n;
    if (fti_gguf_get_str(e->g, "tokenizer.ggml.pre", &pre, &pre_len, NULL) != FTI_OK) pre = NULL;
    tp = (const char **)fti_calloc(toks->arr_n + 1, sizeof *tp);
    tl = (size_t *)fti_calloc(toks->arr_n + 1, sizeof *tl);
    ty = (int32_t *)fti_calloc(toks->arr_n + 1, sizeof *ty);
    mp = (const char **)fti_calloc(n_merges + 1, sizeof *mp);
    ml = (size_t *)fti_calloc(n_merges + 1, sizeof *ml);
    pre_z = pre ? fti_strndup(pre, pre_len) : NULL;
    if (!tp || !tl || !ty || !mp || !ml || (pre && !pre_z)) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "engine: out of memory");
    } else {
        for (i = 0; i < toks->arr_n; i++) {
            tp[i] = fti_gguf_arr_str(e->g, toks, i, &tl[i]);
            ty[i] = types ? (int32_t)fti_gguf_arr_int(types, i) : FTI_GGUF_TOKEN_NORMAL;
        }
        for (i = 0; i < n_merges; i++) mp[i] = fti_gguf_arr_str(e->g, merges, i, &ml[i]);
        rc = fti_tokenizer_from_gguf(tp, tl, ty, toks->arr_n, mp, ml, n_merges, pre_z, out, err);
        if (rc != FTI_OK) fti_error_prefix(err, fti_gguf_path(e->g));
    }
    fti_free(tp);
    fti_free(tl);
    fti_free(ty);
    fti_free(mp);
    fti_free(ml);
    fti_free(pre_z);
    return rc;
}

/* --- prompts ------------------------------------------------------------------------------- */

/* Appends a template marker: its special id, or its text encoded when the vocabulary lacks it. */
static fti_result fti__prompt_marker(const fti_tokenizer *tok, const char *marker,
                                     fti_tokens *out) {
    int64_t id = fti_tokenizer_special_id(tok, marker);
    if (id >= 0) return fti_tokens_push(out, (uint32_t)id);
    return fti_tokenizer_encode(tok, marker, strlen(marker), 0, out);
}

FTIDEF fti_result fti_prompt_append_doc(const fti_tokenizer *tok, const char *title,
                                        size_t title_len, const char *body, size_t body_len,
                                        int open_body, fti_tokens *out) {
    fti_buf head;
    fti_result rc;
    if (!tok || !out || (!title && title_len) || (!body && body_len)) return FTI_ERR_INVALID;
    memset(&head, 0, sizeof head);
    if (title_len) fti_buf_append(&head, title, title_len);
    fti_buf_putc(&head, '\n');
    if (head.oom) {
        fti_buf_free(&head);
        return FTI_ERR_NOMEM;
    }
    rc = fti__prompt_marker(tok, FTI_TEMPLATE_TITLE, out);
    if (rc == FTI_OK) rc = fti_tokenizer_encode(tok, head.data, head.len, 0, out);
    if (rc == FTI_OK) rc = fti__prompt_marker(tok, FTI_TEMPLATE_BODY, out);
    if (rc == FTI_OK && body_len) rc = fti_tokenizer_encode(tok, body, body_len, 0, out);
    if (rc == FTI_OK && !open_body) rc = fti__prompt_marker(tok, FTI_TEMPLATE_END, out);
    fti_buf_free(&head);
    return rc;
}

FTIDEF void fti_prompt_free(fti_prompt *p) {
    if (!p) return;
    fti_free(p->ids);
    memset(p, 0, sizeof *p);
}

FTIDEF fti_result fti_prompt_build(const fti_engine *e, const fti_tokenizer *tok,
                                   const char *title, const char *text, size_t text_len,
                                   const fti_prompt_doc *docs, size_t n_docs, size_t max_tokens,
                                   fti_prompt *out, fti_error *err) {
    fti_tokens q, body;
    fti_tokens *dt = NULL;
    int32_t *head = NULL;
    size_t n_head = 0, i, used = 0, total, n_fit, pos;
    int bos = fti_engine_add_bos(e);
    fti_result rc = FTI_OK;
    if (!e || !tok || !out || (!text && text_len) || (!docs && n_docs))
        return fti_error_set(err, FTI_ERR_INVALID, "prompt: NULL argument");
    memset(out, 0, sizeof *out);
    memset(&q, 0, sizeof q);
    memset(&body, 0, sizeof body);
    /* the question: header (kept whole) and body (may be cut from the left) */
    rc = fti_prompt_append_doc(tok, title, title ? strlen(title) : 0, NULL, 0, 1, &q);
    if (rc == FTI_OK && text_len) rc = fti_tokenizer_encode(tok, text, text_len, 0, &body);
    if (rc != FTI_OK) {
        fti_tokens_free(&q);
        fti_tokens_free(&body);
        return fti_error_set(err, rc, "prompt: encoding failed: %s", fti_result_str(rc));
    }
    n_head = q.len + (bos ? 1 : 0);
    head = (int32_t *)fti_malloc((n_head + 1) * sizeof(int32_t));
    out->ids = (int32_t *)fti_malloc((max_tokens + 1) * sizeof(int32_t));
    dt = (fti_tokens *)fti_calloc(n_docs + 1, sizeof *dt);
    if (!head || !out->ids || !dt) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "prompt: out of memory");
        goto done;
    }
    if (bos) head[0] = fti_engine_bos(e);
    for (i = 0; i < q.len; i++) head[(bos ? 1 : 0) + i] = (int32_t)q.ids[i];
    /* (a header that fills max_tokens would leave none of a non-empty text: the cut below
     * would drop all of the user's words) */
    if (n_head > max_tokens || (n_head == max_tokens && body.len)) {
        rc = fti_error_set(err, FTI_ERR_LIMIT,
                           "prompt: the title with the template's markers is %lu tokens and "
                           "leaves no room in the %lu the prompt may have (the context less the "
                           "tokens to generate): shorten the title or generate fewer tokens",
                           (unsigned long)n_head, (unsigned long)max_tokens);
        goto done;
    }
    total = n_head + body.len;
    if (total > max_tokens) { /* no room for retrieval; cut the question from the left */
        int32_t *b32 = (int32_t *)fti_malloc((body.len + 1) * sizeof(int32_t));
        if (!b32) {
            rc = fti_error_set(err, FTI_ERR_NOMEM, "prompt: out of memory");
            goto done;
        }
        for (i = 0; i < body.len; i++) b32[i] = (int32_t)body.ids[i];
        out->n = fti_prompt_fit(head, n_head, b32, body.len, max_tokens, out->ids);
        out->n_dropped = total - out->n;
        out->n_text = out->n > n_head ? out->n - n_head : 0;
        fti_free(b32);
        goto done;
    }
    /* retrieved documents, best first, while they fit; the first one that does not fit whole
     * is cut (its beginning kept, then closed) if at least 16 of its body tokens fit */
    for (i = 0; i < n_docs && rc == FTI_OK; i++) {
        size_t room = max_tokens - total, head_len;
        rc = fti_prompt_append_doc(tok, docs[i].title, docs[i].title_len, NULL, 0, 1, &dt[i]);
        if (rc != FTI_OK) break;
        head_len = dt[i].len;
        if (docs[i].text_len)
            rc = fti_tokenizer_encode(tok, docs[i].text, docs[i].text_len, 0, &dt[i]);
        if (rc == FTI_OK && dt[i].len + 1 > room) {
            if (room < head_len + 16 + 1) break;
            dt[i].len = room - 1; /* keep the beginning of the body */
        }
        if (rc == FTI_OK) rc = fti__prompt_marker(tok, FTI_TEMPLATE_END, &dt[i]);
        if (rc != FTI_OK) break;
        total += dt[i].len;
        used++;
        if (total >= max_tokens) break;
    }
    if (rc != FTI_OK) {
        fti_error_set(err, rc, "prompt: encoding a document failed");
        goto done;
    }
    /* BOS, docs (best last), question header, question body */
    pos = 0;
    if (bos) out->ids[pos++] = fti_engine_bos(e);
    for (n_fit = used; n_fit > 0; n_fit--) {
        const fti_tokens *d = &dt[n_fit - 1];
        for (i = 0; i < d->len; i++) out->ids[pos++] = (int32_t)d->ids[i];
    }
    for (i = 0; i < q.len; i++) out->ids[pos++] = (int32_t)q.ids[i];
    for (i = 0; i < body.len; i++) out->ids[pos++] = (int32_t)body.ids[i];
    out->n = pos;
    out->n_docs_used = used;
    out->n_text = body.len;
done:
    for (i = 0; dt && i < n_docs; i++) fti_tokens_free(&dt[i]);
    fti_free(dt);
    fti_free(head);
    fti_tokens_free(&q);
    fti_tokens_free(&body);
    if (rc != FTI_OK) fti_prompt_free(out);
    return rc;
}

/* --- f16 KV cache rows ------------------------------------------------------------------------ */
/* Attention against an f16 cache: q·k_j over a row of f16 keys and y += p·v_j over a row of f16
 * values, each element widened to f32 exactly (every f16 is an f32) and the products summed in
 * f32. The scalar references are the specification; the SIMD forms convert 8 (F16C, NEON: 4)
 * or 16 (AVX-512) elements per instruction and sum in lanes, so they agree with the references
 * to float rounding. */
typedef float (*fti__kv_dot_fn)(const float *q, const void *k, size_t n);
typedef void (*fti__kv_axpy_fn)(float *y, float a, const void *v, size_t n);

static float fti__kv_dot_f16_ref(const float *q, const void *kp, size_t n) {
    const uint16_t *k = (const uint16_t *)kp;
    float s = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) s += q[i] * fti_f16_to_f32(k[i]);
    return s;
}

static void fti__kv_axpy_f16_ref(float *y, float a, const void *vp, size_t n) {
    const uint16_t *v = (const uint16_t *)vp;
    size_t i;
    for (i = 0; i < n; i++) y[i] += a * fti_f16_to_f32(v[i]);
}

#if defined(FTI__X86)
FTI__AVX2 static float fti__kv_dot_f16_avx2(const float *q, const void *kp, size_t n) {
    const uint16_t *k = (const uint16_t *)kp;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    float s;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(
            _mm256_loadu_ps(q + i),
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(k + i))), a0);
        a1 = _mm256_fmadd_ps(
            _mm256_loadu_ps(q + i + 8),
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(k + i + 8))), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(
            _mm256_loadu_ps(q + i),
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(k + i))), a0);
    s = fti__hsum_avx2(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += q[i] * fti_f16_to_f32(k[i]);
    return s;
}

FTI__AVX2 static void fti__kv_axpy_f16_avx2(float *y, float a, const void *vp, size_t n) {
    const uint16_t *v = (const uint16_t *)vp;
    __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            y + i, _mm256_fmadd_ps(
                       av, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(v + i))),
                       _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * fti_f16_to_f32(v[i]);
}

#if !defined(FTI_NO_AVX512)
FTI__AVX512 static float fti__kv_dot_f16_avx512(const float *q, const void *kp, size_t n) {
    const uint16_t *k = (const uint16_t *)kp;
    __m512 a0 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(
            _mm512_loadu_ps(q + i),
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(k + i))), a0);
    if (i < n) { /* masked tail: the missing lanes load as zeros */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i),
                             _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const void *)(k + i))),
                             a0);
    }
    return _mm512_reduce_add_ps(a0);
}

FTI__AVX512 static void fti__kv_axpy_f16_avx512(float *y, float a, const void *vp, size_t n) {
    const uint16_t *v = (const uint16_t *)vp;
    __m512 av = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av,
                                                _mm512_cvtph_ps(_mm256_loadu_si256(
                                                    (const __m256i *)(const void *)(v + i))),
                                                _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(
            y + i, m,
            _mm512_fmadd_ps(av, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const void *)(v + i))),
                            _mm512_maskz_loadu_ps(m, y + i)));
    }
}
#endif /* !FTI_NO_AVX512 */
#endif /* FTI__X86 */

#if defined(FTI__NEON)
static float fti__kv_dot_f16_neon(const float *q, const void *kp, size_t n) {
    const uint16_t *k = (const uint16_t *)kp;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
    size_t i = 0;
    float s;
    for (; i + 8 <= n; i += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(q + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(k + i))));
        a1 = vfmaq_f32(a1, vld1q_f32(q + i + 4),
                       vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(k + i + 4))));
    }
    for (; i + 4 <= n; i += 4)
        a0 = vfmaq_f32(a0, vld1q_f32(q + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(k + i))));
    s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += q[i] * fti_f16_to_f32(k[i]);
    return s;
}

static void fti__kv_axpy_f16_neon(float *y, float a, const void *vp, size_t n) {
    const uint16_t *v = (const uint16_t *)vp;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i),
                                     vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(v + i))), a));
    for (; i < n; i++) y[i] += a * fti_f16_to_f32(v[i]);
}
#endif /* FTI__NEON */

/* --- q8 KV cache rows ------------------------------------------------------------------------- */
/* A q8 cache row of one kv head: D int8 values, then their f32 scale d (absmax / 127), D + 4
 * bytes; value i is d·q[i]. The row functions below work on the int8 values alone (q·k and
 * y += a·v with each q[i] converted to f32 exactly); attention multiplies by the rows' scales
 * once per score and once per probability (fti__attn_heads). */
#define FTI__KV_Q8_EXTRA 4

/* Row x (D floats) into a q8 cache row: nearest level of absmax / 127 (NaN counts as 0, so a
 * broken activation cannot make the conversion undefined). The same bits on every path and ISA:
 * every writer of the cache comes here. */
static void fti__kv_q8_put(void *dst, const float *x, size_t D) {
    signed char *q = (signed char *)dst;
    float amax = 0.0f, d, id;
    size_t i;
    for (i = 0; i < D; i++) {
        float a = fabsf(x[i]);
        if (a > amax) amax = a;
    }
    d = amax / 127.0f;
    id = amax > 0.0f && amax - amax == 0.0f ? 127.0f / amax : 0.0f; /* 0 when inf */
    for (i = 0; i < D; i++) {
        float v = x[i] * id;
        if (!(v >= -127.0f)) v = v == v ? -127.0f : 0.0f;
        if (v > 127.0f) v = 127.0f;
        q[i] = (signed char)lrintf(v);
    }
    memcpy(q + D, &d, sizeof d);
}

/* The scale of a q8 cache row of D values. */
static float fti__kv_q8_scale(const void *row, size_t D) {
    float d;
    memcpy(&d, (const char *)row + D, sizeof d);
    return d;
}

/* A q8 cache row widened to D floats. */
static void fti__kv_q8_get(float *x, const void *row, size_t D) {
    const signed char *q = (const signed char *)row;
    float d = fti__kv_q8_scale(row, D);
    size_t i;
    for (i = 0; i < D; i++) x[i] = d * (float)q[i];
}

static float fti__kv_dot_q8_ref(const float *q, const void *kp, size_t n) {
    const signed char *k = (const signed char *)kp;
    float s = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) s += q[i] * (float)k[i];
    return s;
}

static void fti__kv_axpy_q8_ref(float *y, float a, const void *vp, size_t n) {
    const signed char *v = (const signed char *)vp;
    size_t i;
    for (i = 0; i < n; i++) y[i] += a * (float)v[i];
}

#if defined(FTI__X86)
/* 8 int8 at p as 8 floats. */
#define FTI__KV_Q8_LD8(p)                                                                          \
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p))))

FTI__AVX2 static float fti__kv_dot_q8_avx2(const float *q, const void *kp, size_t n) {
    const signed char *k = (const signed char *)kp;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    float s;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), FTI__KV_Q8_LD8(k + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), FTI__KV_Q8_LD8(k + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), FTI__KV_Q8_LD8(k + i), a0);
    s = fti__hsum_avx2(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += q[i] * (float)k[i];
    return s;
}

FTI__AVX2 static void fti__kv_axpy_q8_avx2(float *y, float a, const void *vp, size_t n) {
    const signed char *v = (const signed char *)vp;
    __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, FTI__KV_Q8_LD8(v + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * (float)v[i];
}
#endif /* FTI__X86 */

#if defined(FTI__NEON)
/* 8 int8 at p as two vectors of 4 floats. */
static void fti__kv_q8_ld8_neon(const signed char *p, float32x4_t *lo, float32x4_t *hi) {
    int16x8_t w = vmovl_s8(vld1_s8((const int8_t *)p));
    *lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
    *hi = vcvtq_f32_s32(vmovl_s16(vget_high_s16(w)));
}

static float fti__kv_dot_q8_neon(const float *q, const void *kp, size_t n) {
    const signed char *k = (const signed char *)kp;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), lo, hi;
    size_t i = 0;
    float s;
    for (; i + 8 <= n; i += 8) {
        fti__kv_q8_ld8_neon(k + i, &lo, &hi);
        a0 = vfmaq_f32(a0, vld1q_f32(q + i), lo);
        a1 = vfmaq_f32(a1, vld1q_f32(q + i + 4), hi);
    }
    s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += q[i] * (float)k[i];
    return s;
}

static void fti__kv_axpy_q8_neon(float *y, float a, const void *vp, size_t n) {
    const signed char *v = (const signed char *)vp;
    float32x4_t lo, hi;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        fti__kv_q8_ld8_neon(v + i, &lo, &hi);
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), lo, a));
        vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4), hi, a));
    }
    for (; i < n; i++) y[i] += a * (float)v[i];
}
#endif /* FTI__NEON */

/* Internal cache kinds: FTI__KV_K32 f32, FTI__KV_K16 f16, FTI__KV_K8 q8 (the SIMD attention
 * forms take the kind as a constant). */
enum { FTI__KV_K32 = 0, FTI__KV_K16 = 1, FTI__KV_K8 = 2 };

/* Bytes of one kv head's row of D values in a cache of that kind. */
static size_t fti__kv_head_bytes(int kind, size_t D) {
    return kind == FTI__KV_K8 ? D + FTI__KV_Q8_EXTRA : D * (kind == FTI__KV_K16 ? 2u : 4u);
}

/* The row functions of an f16 (kind FTI__KV_K16) or q8 (FTI__KV_K8) cache for a kernel table
 * (its instruction set). */
static void fti__kv_fns(const fti_kernels *k, int kind, fti__kv_dot_fn *dot,
                        fti__kv_axpy_fn *axpy) {
    fti_isa isa = fti_kernels_isa(k);
    int q8 = kind == FTI__KV_K8;
    *dot = q8 ? fti__kv_dot_q8_ref : fti__kv_dot_f16_ref;
    *axpy = q8 ? fti__kv_axpy_q8_ref : fti__kv_axpy_f16_ref;
#if defined(FTI__X86)
#if !defined(FTI_NO_AVX512)
    if (isa == FTI_ISA_AVX512 && !q8) {
        *dot = fti__kv_dot_f16_avx512;
        *axpy = fti__kv_axpy_f16_avx512;
        return;
    }
#endif
    if (isa == FTI_ISA_AVX2 || isa == FTI_ISA_AVX512) {
        *dot = q8 ? fti__kv_dot_q8_avx2 : fti__kv_dot_f16_avx2;
        *axpy = q8 ? fti__kv_axpy_q8_avx2 : fti__kv_axpy_f16_avx2;
    }
#endif
#if defined(FTI__NEON)
    if (isa == FTI_ISA_NEON) {
        *dot = q8 ? fti__kv_dot_q8_neon : fti__kv_dot_f16_neon;
        *axpy = q8 ? fti__kv_axpy_q8_neon : fti__kv_axpy_f16_neon;
    }
#endif
    (void)isa;
}

FTIDEF const char *fti_kv_type_name(fti_kv_type t) {
    switch (t) {
    case FTI_KV_F16: return "f16";
    case FTI_KV_Q8: return "q8";
    case FTI_KV_DEFAULT:
    case FTI_KV_F32: return "f32";
    }
    return NULL;
}

FTIDEF int fti_kv_type_parse(const char *name) {
    if (!name) return -1;
    if (strcmp(name, "f16") == 0) return FTI_KV_F16;
    if (strcmp(name, "f32") == 0) return FTI_KV_F32;
    if (strcmp(name, "q8") == 0) return FTI_KV_Q8;
    return -1;
}

/* --- sessions ------------------------------------------------------------------------------ */

struct fti_session {
    const fti_engine *e;
    fti_pool *pool;
    /* Decode steps on a pool of 2+ threads are timed: when the pool is slower than one thread
     * (another process holds a core and every barrier waits for a time slice) steps run on the
     * calling thread. Results are the same bits either way. */
    int adaptive;
    double step_ns[2];   /* moving averages: [0] on the pool, [1] on the calling thread */
    size_t n_steps;
    size_t n_ctx, n_batch, pos;
    fti_arena arena;
    /* (L, KV / kv_per, n_ctx, kv_per · D) in f32, f16 or q8 (kv_kind; a q8 head row has its
     * scale after its D values: kv_hsz bytes per head row in every kind): the kv heads in groups of
     * kv_per, each group's rows of all positions together. One group (kv_per = KV) is the plain
     * (L, n_ctx, KVD) layout; a session for an n-thread pool whose decode step gives each thread
     * KV/n kv heads has n groups, so each thread's heads are its own memory (threads reading
     * alternate parts of the same rows made each core's prefetchers fetch the other's part too:
     * 110M q4_0 decode at 2 threads spent 550-600 us per token in attention, 210-270 with
     * the groups). Use fti__kv_at. */
    void *kcache, *vcache;
    size_t kv_per, kv_hsz;
    int kv_kind;           /* FTI__KV_K32, _K16 or _K8 */
    fti__kv_dot_fn kdot;   /* f16 and q8 rows: q·k and y += p·v */
    fti__kv_axpy_fn kaxpy;
    float *kbuf, *vbuf; /* f16 and q8 caches: (B, KVD) f32 rows before they are rounded into the
                           cache, and the rows prefill widens (else empty) */
    float *rope_cos, *rope_sin; /* (n_ctx, D/2) */
    float *x, *xb, *q, *att_out, *att; /* (B,C) (B,C) (B,HD) (B,HD) (B*H, n_ctx) */
    float *hb, *hb2;                    /* (B,F) */
    float *logits;                      /* (V) */
    float *xn;  /* (nth, C): each decode thread's own normalized input (fti__sess_decode) */
    int nth;    /* the pool's threads when created (xn's rows) */
    float *qws; /* quantized activations: a prompt batch's int8 rows (fti__sess_mm), or each
                   decode thread's input in its qws_t bytes (packed matrices), else empty */
    size_t qws_bytes, qws_t;
    const float *qws_x; /* the rows qws holds now (NULL: none) */
};

/* The row (D elements) of kv head g at position pos of layer l of the K (v = 0) or V (v = 1)
 * cache; the heads of its group follow it (up to the group's last), then the group's next
 * position. */
static void *fti__kv_at(const fti_session *s, int v, size_t l, size_t g, size_t pos) {
    size_t per = s->kv_per;
    size_t off = ((l * (s->e->KV / per) + g / per) * s->n_ctx + pos) * per + g % per;
    char *base = (char *)(v ? s->vcache : s->kcache);
    return base + off * s->kv_hsz;
}

/* The end of the run of kv heads from g0 that lie together in a cache row: min(g1, the end of
 * g0's group). */
static size_t fti__kv_run(const fti_session *s, size_t g0, size_t g1) {
    size_t e = (g0 / s->kv_per + 1) * s->kv_per;
    return e < g1 ? e : g1;
}

/* Kv heads [g0, g1) of the f32 row r (KVD: head g at g·D) into the K (v = 0) or V cache at
 * position pos of layer l: rounded to f16 or q8, or copied. */
static void fti__kv_put(const fti_session *s, int v, size_t l, size_t pos, const float *r,
                        size_t g0, size_t g1) {
    size_t g, D = s->e->D;
    for (g = g0; g < g1; g++) {
        void *dst = fti__kv_at(s, v, l, g, pos);
        if (s->kv_kind == FTI__KV_K16) fti_f32_to_f16_row(s->e->k, (uint16_t *)dst, r + g * D, D);
        else if (s->kv_kind == FTI__KV_K8) fti__kv_q8_put(dst, r + g * D, D);
        else memcpy(dst, r + g * D, D * sizeof(float));
    }
}

/* 1 when a matrix of the engine is Q8_0/Q4_0 (prompt batches then quantize their rows into the
 * session's qws). */
/* The widest input of the products whose weights can be Q8_0/Q4_0 (a row of 32-blocks): the
 * quantized activations' width. A width that is no multiple of 32 (the tiny preset's SwiGLU
 * 176, which fti-quantize and the writer leave F32) never meets a quantized matrix. */
static size_t fti__qact_kmax(const fti_engine *e) {
    size_t w[3], kmax = 0, i;
    w[0] = e->C, w[1] = e->F, w[2] = e->HD;
    for (i = 0; i < 3; i++)
        if (w[i] % FTI_QK == 0 && w[i] > kmax) kmax = w[i];
    return kmax;
}

static int fti__sess_quantized(const fti_engine *e) {
    size_t l;
    const fti__eng_w *w[7];
    for (l = 0; l < e->L; l++) {
        size_t i;
        const fti__eng_layer *ly = &e->layers[l];
        w[0] = &ly->q, w[1] = &ly->k, w[2] = &ly->v, w[3] = &ly->o;
        w[4] = &ly->gate, w[5] = &ly->up, w[6] = &ly->down;
        for (i = 0; i < 7; i++)
            if (w[i]->type == FTI_DTYPE_Q8_0 || w[i]->type == FTI_DTYPE_Q4_0) return 1;
    }
    return e->out.type == FTI_DTYPE_Q8_0 || e->out.type == FTI_DTYPE_Q4_0;
}

/* The session's memory plan: one list of sizes shared by mem_bytes and create. */
typedef struct fti__sess_plan {
    size_t n_ctx, n_batch, kv_per, kv_hsz, qws_t;
    int kv_kind, nth;
    /* floats: k, v, cos, sin, x, xb, q, att_out, att, hb, hb2, logits, kbuf, vbuf, xn, qws */
    size_t sizes[16];
    size_t total_bytes;
} fti__sess_plan;

static int fti__sess_plan_make(const fti_engine *e, const fti_session_opts *o, fti__sess_plan *p) {
    size_t i, kv, B, T, total;
    fti_kv_type kt = o ? o->kv_type : FTI_KV_DEFAULT;
    memset(p, 0, sizeof *p);
    T = (o && o->n_ctx) ? o->n_ctx : e->cfg.context_len;
    B = (o && o->n_batch) ? o->n_batch : 64;
    if (T > ((size_t)1 << 24)) return 0;
    if (kt != FTI_KV_DEFAULT && kt != FTI_KV_F16 && kt != FTI_KV_F32 && kt != FTI_KV_Q8) return 0;
    if (B > T) B = T;
    p->n_ctx = T;
    p->n_batch = B;
    p->kv_kind = kt == FTI_KV_F16 ? FTI__KV_K16 : kt == FTI_KV_Q8 ? FTI__KV_K8 : FTI__KV_K32;
    p->kv_hsz = fti__kv_head_bytes(p->kv_kind, e->D);
    if (!fti_size_mul(e->L, T, &kv) || !fti_size_mul(kv, e->KV, &kv) ||
        !fti_size_mul(kv, p->kv_hsz, &kv))
        return 0;
    kv = kv / sizeof(float) + (kv % sizeof(float) != 0); /* in floats */
    p->sizes[0] = kv;
    p->sizes[1] = kv;
    p->sizes[12] = p->kv_kind != FTI__KV_K32 ? B * e->KVD : 0;
    p->sizes[13] = p->kv_kind != FTI__KV_K32 ? B * e->KVD : 0;
    p->sizes[2] = T * (e->D / 2);
    p->sizes[3] = T * (e->D / 2);
    p->sizes[4] = B * e->C;
    p->sizes[5] = B * e->C;
    p->sizes[6] = B * e->HD;
    p->sizes[7] = B * e->HD;
    if (!fti_size_mul(B * e->H, T, &p->sizes[8])) return 0;
    p->sizes[9] = B * e->F;
    p->sizes[10] = B * e->F;
    p->sizes[11] = e->V;
    p->nth = fti_pool_threads(o ? o->pool : NULL);
    p->sizes[14] = (size_t)p->nth * e->C;
    /* the cache's kv head groups: one per decode thread when they share the kv heads evenly */
    p->kv_per = p->nth > 1 && e->KV % (size_t)p->nth == 0 ? e->KV / (size_t)p->nth : e->KV;
    if (fti__sess_quantized(e)) { /* the widest input of a prompt batch's products, quantized */
        size_t kmax = fti__qact_kmax(e), qb, q1;
        qb = kmax ? fti_qact_bytes(B, kmax) : 0;
        if (kmax && !qb) return 0;
        if (kmax && e->pk_rows) { /* and each decode thread's for the packed matrices */
            q1 = (fti_qact_bytes(1, kmax) + 63) / 64 * 64; /* (a cache line apart) */
            p->qws_t = q1;
            if (!fti_size_mul(q1, (size_t)p->nth, &q1)) return 0;
            if (q1 > qb) qb = q1;
        }
        p->sizes[15] = kmax ? qb / sizeof(float) + 1 : 0;
    }
    total = sizeof(fti_session) + 64;
    for (i = 0; i < 16; i++) {
        size_t bytes;
        if (!fti_size_mul(p->sizes[i], sizeof(float), &bytes) ||
            !fti_size_add(total, bytes + 64, &total))
            return 0;
    }
    p->total_bytes = total;
    return 1;
}

FTIDEF size_t fti_session_mem_bytes(const fti_engine *e, const fti_session_opts *opts) {
    fti__sess_plan p;
    if (!e || !fti__sess_plan_make(e, opts, &p)) return 0;
    return p.total_bytes;
}

FTIDEF fti_result fti_session_create(fti_session **out, const fti_engine *e,
                                     const fti_session_opts *opts, fti_error *err) {
    fti__sess_plan p;
    fti_arena a;
    fti_session *s;
    float **slots[16];
    void *kv[2];
    size_t i, t, j, half;
    if (!out || !e) return fti_error_set(err, FTI_ERR_INVALID, "session: NULL argument");
    *out = NULL;
    if (opts && fti_kv_type_name(opts->kv_type) == NULL)
        return fti_error_set(err, FTI_ERR_INVALID, "session: unknown KV cache type %d",
                             (int)opts->kv_type);
    if (!fti__sess_plan_make(e, opts, &p))
        return fti_error_set(err, FTI_ERR_INVALID,
                             "session: n_ctx %lu too large (the model's context is %lu)",
                             (unsigned long)(opts ? opts->n_ctx : 0),
                             (unsigned long)e->cfg.context_len);
    if (opts && opts->mem) {
        if (opts->mem_bytes < p.total_bytes)
            return fti_error_set(err, FTI_ERR_LIMIT, "session: memory of %lu bytes < %lu needed",
                                 (unsigned long)opts->mem_bytes, (unsigned long)p.total_bytes);
        if (fti_arena_init(&a, opts->mem, opts->mem_bytes) != FTI_OK)
            return fti_error_set(err, FTI_ERR_INVALID, "session: bad memory block");
    } else if (fti_arena_init(&a, NULL, p.total_bytes) != FTI_OK) {
        return fti_error_set(err, FTI_ERR_NOMEM, "session: cannot allocate %lu bytes",
                             (unsigned long)p.total_bytes);
    }
    s = (fti_session *)fti_arena_alloc(&a, sizeof *s, 64);
    if (!s) {
        fti_arena_free(&a);
        return fti_error_set(err, FTI_ERR_LIMIT, "session: memory too small");
    }
    memset(s, 0, sizeof *s);
    s->e = e;
    s->pool = opts ? opts->pool : NULL;
    s->adaptive = !(opts && opts->fixed_threads) && fti_pool_threads(s->pool) > 1;
    s->n_ctx = p.n_ctx;
    s->n_batch = p.n_batch;
    s->kv_kind = p.kv_kind;
    s->kv_hsz = p.kv_hsz;
    s->kv_per = p.kv_per;
    fti__kv_fns(e->k, s->kv_kind, &s->kdot, &s->kaxpy); /* used by f16 and q8 caches only */
    slots[0] = slots[1] = NULL; /* the caches: kv[] */
    slots[2] = &s->rope_cos;
    slots[3] = &s->rope_sin;
    slots[4] = &s->x;
    slots[5] = &s->xb;
    slots[6] = &s->q;
    slots[7] = &s->att_out;
    slots[8] = &s->att;
    slots[9] = &s->hb;
    slots[10] = &s->hb2;
    slots[11] = &s->logits;
    slots[12] = &s->kbuf;
    slots[13] = &s->vbuf;
    slots[14] = &s->xn;
    slots[15] = &s->qws;
    s->nth = p.nth;
    s->qws_bytes = p.sizes[15] * sizeof(float);
    s->qws_t = p.qws_t;
    for (i = 0; i < 16; i++) {
        void *m = fti_arena_alloc(&a, p.sizes[i] * sizeof(float), 64);
        if (!m) {
            fti_arena_free(&a);
            return fti_error_set(err, FTI_ERR_LIMIT, "session: memory too small");
        }
        if (i < 2) kv[i] = m;
        else *slots[i] = (float *)m;
    }
    s->kcache = kv[0];
    s->vcache = kv[1];
    s->arena = a; /* the arena lives inside its own memory: copy after the last alloc */
    /* RoPE table: angle = pos * base^(-2i/D), in double like the training forward */
    half = e->D / 2;
    for (t = 0; t < s->n_ctx; t++)
        for (j = 0; j < half; j++) {
            double theta = pow((double)e->cfg.rope_base, -2.0 * (double)j / (double)e->D);
            double ang = (double)t * theta;
            s->rope_cos[t * half + j] = (float)cos(ang);
            s->rope_sin[t * half + j] = (float)sin(ang);
        }
    memset(s->logits, 0, e->V * sizeof(float));
    *out = s;
    return FTI_OK;
}

FTIDEF void fti_session_free(fti_session *s) {
    fti_arena a;
    if (!s) return;
    a = s->arena; /* s lives in the arena's memory */
    fti_arena_free(&a);
}

FTIDEF void fti_session_reset(fti_session *s) {
    if (s) s->pos = 0;
}
FTIDEF size_t fti_session_pos(const fti_session *s) { return s ? s->pos : 0; }
FTIDEF size_t fti_session_n_ctx(const fti_session *s) { return s ? s->n_ctx : 0; }
FTIDEF fti_kv_type fti_session_kv_type(const fti_session *s) {
    if (s && s->kv_kind == FTI__KV_K32) return FTI_KV_F32;
    return s && s->kv_kind == FTI__KV_K8 ? FTI_KV_Q8 : FTI_KV_F16; /* NULL: F16, as before */
}
FTIDEF size_t fti_session_kv_bytes(const fti_session *s) {
    if (!s) return 0;
    return 2 * s->e->L * s->n_ctx * s->e->KV * s->kv_hsz;
}
FTIDEF void fti_session_truncate(fti_session *s, size_t pos) {
    if (s && pos < s->pos) s->pos = pos;
}
FTIDEF float *fti_session_logits(fti_session *s) { return s ? s->logits : NULL; }

FTIDEF fti_result fti_session_copy(fti_session *dst, const fti_session *src, fti_error *err) {
    size_t l, g, row;
    if (!dst || !src) return fti_error_set(err, FTI_ERR_INVALID, "session copy: no session");
    if (dst == src) return FTI_OK;
    if (dst->e != src->e || dst->n_ctx != src->n_ctx || dst->kv_kind != src->kv_kind ||
        dst->kv_per != src->kv_per)
        return fti_error_set(err, FTI_ERR_MISMATCH, "session copy: the sessions differ (%s, "
                             "context %lu and %lu, KV type or thread layout)",
                             dst->e != src->e ? "engines" : "same engine",
                             (unsigned long)dst->n_ctx, (unsigned long)src->n_ctx);
    /* (L, KV / kv_per, n_ctx, kv_per * D): positions 0..pos-1 of every (layer, group) block */
    row = src->kv_per * src->kv_hsz;
    if (src->pos)
        for (l = 0; l < src->e->L; l++)
            for (g = 0; g < src->e->KV; g += src->kv_per) {
                memcpy(fti__kv_at(dst, 0, l, g, 0), fti__kv_at(src, 0, l, g, 0), src->pos * row);
                memcpy(fti__kv_at(dst, 1, l, g, 0), fti__kv_at(src, 1, l, g, 0), src->pos * row);
            }
    memcpy(dst->logits, src->logits, src->e->V * sizeof(float));
    dst->pos = src->pos;
    dst->qws_x = NULL; /* dst's quantized rows are of its own last input */
    return FTI_OK;
}

/* RoPE on (T, nh, D) rows at positions pos0.. with the session's table (adjacent pairs). */
static void fti__sess_rope(const fti_session *s, float *x, size_t T, size_t nh, size_t pos0) {
    size_t t, h, j, D = s->e->D, half = D / 2;
    for (t = 0; t < T; t++) {
        const float *c = s->rope_cos + (pos0 + t) * half, *sn = s->rope_sin + (pos0 + t) * half;
        for (h = 0; h < nh; h++) {
            float *v = x + (t * nh + h) * D;
            for (j = 0; j < half; j++) {
                float a = v[2 * j], b = v[2 * j + 1];
                v[2 * j] = a * c[j] - b * sn[j];
                v[2 * j + 1] = a * sn[j] + b * c[j];
            }
        }
    }
}

/* Attention over the cache: item i = (t, h) for the batch's T tokens. */
typedef struct fti__sess_attn {
    const fti_session *s;
    size_t layer, T, pos0;
} fti__sess_attn;

/* One layer's cached rows as attention reads them: keys and values of kv head g at position j
 * at byte (g / per)·gs + j·row + (g % per)·hsz from k and v (row = per·hsz bytes, hsz a head
 * row's bytes), in f32, f16 or q8 (kind; with the row functions for f16 and q8). per = 0 (and
 * row, gs 0) is the plain (n, KVD) layout: one group. */
typedef struct fti__kv_view {
    const void *k, *v;
    size_t row, gs, per, hsz;
    int kind;
    fti__kv_dot_fn dot;
    fti__kv_axpy_fn axpy;
} fti__kv_view;

static fti__kv_view fti__kv_layer(const fti_session *s, size_t l) {
    fti__kv_view kv;
    kv.k = fti__kv_at(s, 0, l, 0, 0);
    kv.v = fti__kv_at(s, 1, l, 0, 0);
    kv.row = s->kv_per * s->kv_hsz;
    kv.gs = s->n_ctx * kv.row;
    kv.per = s->kv_per;
    kv.hsz = s->kv_hsz;
    kv.kind = s->kv_kind;
    kv.dot = s->kdot;
    kv.axpy = s->kaxpy;
    return kv;
}

/* One call's attention work as the SIMD forms see it: nh query heads (head i's query at q + i*D,
 * its kv head's part of a cache row at byte kvo(i) = ((h0+i)/rep)·dsz, dsz = D·element size) over
 * n cached rows of row bytes each from kv (keys or values), probabilities p + i*p_stride,
 * outputs y + i*D. */
typedef struct fti__at_args {
    const float *q;
    const char *kv;
    float *p, *y;
    size_t row, h0, rep, dsz, D, nh, n, p_stride;
    float scale;
} fti__at_args;

/* The SIMD forms (fti__bt_attn_fns picks them for the table and D): scores p[i][j] = scale ·
 * q_i·k_j, and values y_i = Σ_j p[i][j] · v_j, each one pass through the rows (nc = D / vector
 * width). */
typedef void (*fti__bt_scores_fn)(const fti__at_args *a, size_t nc);
typedef void (*fti__bt_values_fn)(const fti__at_args *a, size_t nc);
static int fti__bt_attn_fns(const fti_engine *e, int kind, fti__bt_scores_fn *sf,
                            fti__bt_values_fn *vf, size_t *nc);

/* Attention of nh consecutive query heads h0 .. h0+nh-1 over n cached positions: head i's query
 * is q + i*D, its kv head (h0+i)/rep, its probabilities go to p + i*p_stride (n), its output to
 * y + i*D (D). The one attention of the engine: the session's decode step, its prompt batches
 * (every token's heads) and the batch's rows (fti__bt_attn_seq) all come here, so a sequence's
 * result is the same bits whichever path computed it. Keys, then values, are read once, row by
 * row of each kv head group (a row holds the group's heads: the reads stream instead of striding
 * by a row per head). With the SIMD forms (x86 tables, D a multiple of 16 up to 128 on AVX-512,
 * of 8 up to 64 on AVX2): the rows as 16 (8) streams (FTI__AT_SCORES); each (position, head)
 * score is one FMA chain over D reduced with 15 (7) others in one transposing sum, in whatever
 * grouping (each lane's reduction tree is the same), then each head's softmax through the table,
 * then y_i = Σ_j p[i][j]·v_j by FMA in the streams' row order (fixed for each n). Otherwise,
 * head by head: scores q·k_j·scale in j order, the softmax, y = Σ_j p_j·v_j in j order. Which
 * heads share a call (and so the thread count and the cache's grouping) does not change any
 * head's result. */
static void fti__attn_heads(const fti_engine *e, const float *q, const fti__kv_view *kv,
                            size_t h0, size_t nh, size_t n, float scale, float *p,
                            size_t p_stride, float *y) {
    size_t j, i, D = e->D, rep = e->H / e->KV, hsz = kv->hsz;
    size_t per = kv->per ? kv->per : e->KV, gq = per * rep, row = kv->per ? kv->row : e->KV * hsz;
    fti__bt_scores_fn sf;
    fti__bt_values_fn vf;
    size_t nc;
    if (fti__bt_attn_fns(e, kv->kind, &sf, &vf, &nc)) {
        fti__at_args a;
        a.row = row;
        a.rep = rep;
        a.dsz = hsz;
        a.D = D;
        a.n = n;
        a.p_stride = p_stride;
        a.scale = scale;
        for (i = 0; i < nh; i += a.nh) { /* the heads of one kv head group at a time */
            size_t grp = (h0 + i) / gq, i1 = (grp + 1) * gq - h0;
            a.nh = (i1 < nh ? i1 : nh) - i;
            a.q = q + i * D;
            a.p = p + i * p_stride;
            a.y = y + i * D;
            a.h0 = h0 + i - grp * gq;
            a.kv = (const char *)kv->k + grp * kv->gs;
            sf(&a, nc);
            for (j = i; j < i + a.nh; j++)
                fti_softmax_fwd(e->k, p + j * p_stride, p + j * p_stride, 1, n);
            a.kv = (const char *)kv->v + grp * kv->gs;
            vf(&a, nc);
        }
        return;
    }
    for (i = 0; i < nh; i++) { /* head by head */
        size_t g = (h0 + i) / rep, off = (g / per) * kv->gs + (g % per) * hsz;
        const char *kh = (const char *)kv->k + off, *vh = (const char *)kv->v + off;
        const float *qi = q + i * D;
        float *pp = p + i * p_stride, *yi = y + i * D, mx = -INFINITY, sum = 0.0f, inv;
        for (j = 0; j < n; j++) {
            const char *kr = kh + j * row;
            pp[j] = (kv->kind != FTI__KV_K32
                         ? kv->dot(qi, kr, D)
                         : fti_dot(e->k, qi, (const float *)(const void *)kr, D)) *
                    scale;
            if (kv->kind == FTI__KV_K8) pp[j] *= fti__kv_q8_scale(kr, D);
        }
        for (j = 0; j < n; j++)
            if (pp[j] > mx) mx = pp[j];
        for (j = 0; j < n; j++) {
            pp[j] = expf(pp[j] - mx);
            sum += pp[j];
        }
        inv = 1.0f / sum;
        for (j = 0; j < n; j++) pp[j] *= inv;
        memset(yi, 0, D * sizeof(float));
        for (j = 0; j < n; j++) {
            if (kv->kind == FTI__KV_K8)
                kv->axpy(yi, pp[j] * fti__kv_q8_scale(vh + j * row, D), vh + j * row, D);
            else if (kv->kind == FTI__KV_K16)
                kv->axpy(yi, pp[j], vh + j * row, D);
            else
                fti_axpy(e->k, yi, pp[j], (const float *)(const void *)(vh + j * row), D);
        }
    }
}

/* Item i covers token t(i)'s heads: tokens in the order 0, T-1, 1, T-2, ..., so that each
 * thread's contiguous share of the items has about as many cached positions to attend over
 * (token t attends over pos0 + t + 1 of them) as the others. */
static size_t fti__sess_attn_token(size_t u, size_t T) { return u % 2 ? T - 1 - u / 2 : u / 2; }

static void fti__sess_attn_task(void *vctx, size_t i0, size_t i1, int thread) {
    const fti__sess_attn *c = (const fti__sess_attn *)vctx;
    const fti_session *s = c->s;
    const fti_engine *e = s->e;
    size_t i, D = e->D;
    float scale = 1.0f / (float)sqrt((double)D);
    fti__kv_view kv = fti__kv_layer(s, c->layer);
    (void)thread;
    for (i = i0; i < i1;) { /* the heads of one token in [i0, i1) go together */
        size_t t = fti__sess_attn_token(i / e->H, c->T), h = i % e->H, nh = e->H - h;
        size_t n = c->pos0 + t + 1;
        if (nh > i1 - i) nh = i1 - i;
        fti__attn_heads(e, s->q + t * e->HD + h * D, &kv, h, nh, n, scale, s->att + i * s->n_ctx,
                        s->n_ctx, s->att_out + t * e->HD + h * D);
        i += nh;
    }
}

/* Softmax of the causal rows of one head's scores for prefill: row t (of T) covers positions
 * 0 .. pos0+t of the (T, n_ctx) block at att + h * n_batch * n_ctx. */
typedef struct fti__sess_smax {
    const fti_session *s;
    size_t T, pos0;
    float scale;
} fti__sess_smax;

static void fti__sess_smax_task(void *vctx, size_t i0, size_t i1, int thread) {
    const fti__sess_smax *c = (const fti__sess_smax *)vctx;
    const fti_session *s = c->s;
    size_t i;
    (void)thread;
    for (i = i0; i < i1; i++) {
        size_t h = i / c->T, t = i % c->T, n = c->pos0 + t + 1;
        float *p = s->att + (h * s->n_batch + t) * s->n_ctx;
        fti_scale(s->e->k, p, c->scale, n);
        fti_softmax_fwd(s->e->k, p, p, 1, n);
        if (n < c->pos0 + c->T) memset(p + n, 0, (c->pos0 + c->T - n) * sizeof(float));
    }
}

/* Prefill attention as GEMMs per head: scores (T, n) = q_h (T, D) . K_g (n, D)^T, causal
 * softmax, y_h (T, D) = P (T, n) . V_g (n, D), with n = pos0 + T cached positions. An f16 or q8
 * cache is widened to f32 in blocks of n_batch positions (s->kbuf, s->vbuf), each block's products
 * added into y (so the extra memory is one batch of rows, not a layer). */
/* Positions [j0, j0 + m) of the layer's keys (which = 0) or values (1) for an f16 or q8 cache:
 * each kv head group's (m, g*D) rows widened into buf as (groups, m, g*D). Nothing for an f32
 * cache. */
static void fti__sess_kv_widen(const fti_session *s, int which, size_t layer, size_t j0, size_t m,
                               float *buf) {
    size_t g, i, per = s->kv_per, D = s->e->D;
    if (s->kv_kind == FTI__KV_K16) {
        for (g = 0; g < s->e->KV; g += per)
            fti_f16_to_f32_row(s->e->k, buf + g * m * D,
                               (const uint16_t *)fti__kv_at(s, which, layer, g, j0), m * per * D);
    } else if (s->kv_kind == FTI__KV_K8) { /* a group's rows are m·per head rows in a row */
        for (g = 0; g < s->e->KV; g += per) {
            const char *src = (const char *)fti__kv_at(s, which, layer, g, j0);
            for (i = 0; i < m * per; i++)
                fti__kv_q8_get(buf + g * m * D + i * D, src + i * s->kv_hsz, D);
        }
    }
}

/* kv head kh's first row of that block (row stride g*D): in buf (f16 or q8 cache, widened) or
 * in the cache itself (f32). */
static const float *fti__sess_kv_head(const fti_session *s, int which, size_t layer, size_t kh,
                                      size_t j0, size_t m, const float *buf) {
    size_t per = s->kv_per, D = s->e->D;
    return s->kv_kind != FTI__KV_K32 ? buf + (kh / per) * per * m * D + (kh % per) * D
                     : (const float *)fti__kv_at(s, which, layer, kh, j0);
}

static void fti__sess_attn_gemm(const fti_session *s, size_t layer, size_t T, size_t pos0) {
    const fti_engine *e = s->e;
    size_t h, D = e->D, rep = e->H / e->KV, n = pos0 + T, j0, gw = s->kv_per * D;
    size_t cb = s->kv_kind != FTI__KV_K32 ? s->n_batch : n; /* positions per block */
    fti__sess_smax sc;
    for (j0 = 0; j0 < n; j0 += cb) {
        size_t m = n - j0 < cb ? n - j0 : cb;
        fti__sess_kv_widen(s, 0, layer, j0, m, s->kbuf);
        for (h = 0; h < e->H; h++)
            fti_matmul(e->k, s->pool, FTI_MM_TRANS_B, T, m, D, s->q + h * D, e->HD,
                       fti__sess_kv_head(s, 0, layer, h / rep, j0, m, s->kbuf), gw,
                       s->att + h * s->n_batch * s->n_ctx + j0, s->n_ctx);
    }
    sc.s = s;
    sc.T = T;
    sc.pos0 = pos0;
    sc.scale = 1.0f / (float)sqrt((double)D);
    fti_pool_for(s->pool, e->H * T, 4, fti__sess_smax_task, &sc);
    for (j0 = 0; j0 < n; j0 += cb) {
        size_t m = n - j0 < cb ? n - j0 : cb;
        fti__sess_kv_widen(s, 1, layer, j0, m, s->vbuf);
        for (h = 0; h < e->H; h++)
            fti_matmul(e->k, s->pool, j0 ? FTI_MM_ACCUMULATE : 0, T, D, m,
                       s->att + h * s->n_batch * s->n_ctx + j0, s->n_ctx,
                       fti__sess_kv_head(s, 1, layer, h / rep, j0, m, s->vbuf), gw,
                       s->att_out + h * D, e->HD);
    }
}

/* --- the decode step (T = 1) ----------------------------------------------------------------- */
/* A decoded token's forward is one parallel region: the pool's threads run each layer's phases
 * on their own share of the rows and heads and wait for each other between phases at a spin
 * barrier (tens of ns when both threads run) instead of one pool dispatch per matrix (with the
 * norms, RoPE and SwiGLU between them on the calling thread alone). Per layer:
 *   attention  each thread normalizes x itself (into its own row of s->xn: the same bits
 *              everywhere), computes the q, k, v rows of its share of the KV heads, RoPE, their
 *              cache rows and the attention of their query heads (when the thread count divides
 *              the KV heads; else two phases: the stacked q/k/v rows split by heads, then the
 *              query heads' attention)
 *   o          its rows of xb = W_o·att_out, then x += xb on those rows
 *   ffn        x normalized again, its rows of gate and up, SwiGLU on them
 *   down       its rows of xb = W_down·h, then x += xb on those rows
 * four barriers per layer (five in the split form), then the output norm and each thread's
 * rows of the logits. Every row and head is computed by the same kernel call shape whichever
 * thread computes it, and elementwise steps split at multiples of 16 (the SIMD tails fall where
 * they fall in one call), so the logits are the same bits for any thread count. Without
 * compiler atomics (tcc) each phase is its own fti_pool_each call: the same code, the same bits. */
#if !defined(FTI_NO_THREADS) && !defined(_WIN32) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__TINYC__)
#define FTI__DEC_SPIN 1
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#define FTI__DEC_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define FTI__DEC_PAUSE() __asm__ __volatile__("yield")
#else
#define FTI__DEC_PAUSE() ((void)0)
#endif
#else
#define FTI__DEC_SPIN 0
#endif

/* How long a thread spins at a decode barrier before it also yields its core each round. */
#ifndef FTI_DECODE_SPIN_NS
#define FTI_DECODE_SPIN_NS 50000u
#endif

enum { FTI__DEC_QKV_ATTN, FTI__DEC_QKV, FTI__DEC_ATTN, FTI__DEC_O, FTI__DEC_FFN, FTI__DEC_DOWN,
       FTI__DEC_LOGITS };

/* An opt-in profile of the decode step (compile with -DFTI_DECODE_PROFILE; a benchmark's own
 * build, never the library's): per thread, nanoseconds of work in each phase (slots 0..6 as the
 * phases above, attention inside FTI__DEC_QKV_ATTN apart in slot 7) and of waiting at the
 * barrier after it (slot 8 + phase), plus slot 16: from the step's start on the calling thread to
 * this thread's first phase (the pool's wake-up), slot 17: the whole step on the calling thread
 * (thread 0 only), slot 18: steps, slot 19 (thread 0): steps on more than one thread. Each
 * thread adds to its own row only; read it between steps. */
#ifdef FTI_DECODE_PROFILE
enum { FTI__DEC_PROF_ATTN = 7, FTI__DEC_PROF_WAIT = 8, FTI__DEC_PROF_WAKE = 16,
       FTI__DEC_PROF_END = 17, FTI__DEC_PROF_STEPS = 18, FTI__DEC_PROF_SLOTS = 20 };
static uint64_t fti__dec_prof[8][FTI__DEC_PROF_SLOTS];
static uint64_t fti__dec_prof_t0; /* the step's start (calling thread, before the pool wakes) */
#define FTI__DEC_PROF(x) x
#else
#define FTI__DEC_PROF(x)
#endif

typedef struct fti__dec {
    fti_session *s;
    int nt;       /* threads taking part */
    int by_group; /* q/k/v and attention in one phase per share of the KV heads */
    size_t layer; /* the per-phase form's current layer and phase */
    int phase;
    unsigned bar_count, bar_gen; /* the spin barrier */
    size_t pf_max;               /* prefetch while waiting: at most this many bytes */
    fti_result rc[256];          /* per thread: a kernel's error */
} fti__dec;

static FTI__UNUSED const char *fti__dec_first(const fti__dec *c, size_t l, int phase, int t,
                                              size_t *bytes);

/* All nt threads reach this point before any leaves it (a sense-by-generation barrier: the
 * last to arrive resets the count and publishes the next generation). A thread that waits
 * meanwhile prefetches the start of the weights it reads first in the next phase (layer l,
 * phase): up to FTI_DECODE_PREFETCH bytes, a line per round (110M q4_0 at 2 threads, 6
 * alternating runs each: 493-524 tok/s without, 503-555 with 64 KiB). */
#ifndef FTI_DECODE_PREFETCH
#define FTI_DECODE_PREFETCH 65536u
#endif
static void fti__dec_wait(fti__dec *c, int t, size_t l, int phase) {
#if FTI__DEC_SPIN
    unsigned g, spins = 0;
    uint64_t t0 = 0;
    const char *pf;
    size_t pf_bytes = 0, off = 0;
    if (c->nt < 2) return;
    g = __atomic_load_n(&c->bar_gen, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&c->bar_count, 1u, __ATOMIC_ACQ_REL) == (unsigned)c->nt) {
        __atomic_store_n(&c->bar_count, 0u, __ATOMIC_RELAXED);
        __atomic_store_n(&c->bar_gen, g + 1u, __ATOMIC_RELEASE);
        return;
    }
    pf = fti__dec_first(c, l, phase, t, &pf_bytes);
    if (pf_bytes > c->pf_max) pf_bytes = c->pf_max;
    while (__atomic_load_n(&c->bar_gen, __ATOMIC_ACQUIRE) == g) {
        if (off < pf_bytes) {
            __builtin_prefetch(pf + off, 0, 2);
            off += 64;
            continue;
        }
        FTI__DEC_PAUSE();
        if ((++spins & 255u) == 0) { /* a partner without a core: let it have this one */
            uint64_t now = fti_time_ns();
            if (!t0) t0 = now;
            else if (now - t0 > FTI_DECODE_SPIN_NS) sched_yield();
        }
    }
#else
    (void)c, (void)t, (void)l, (void)phase;
#endif
}

/* Share t of nt of [0, n) in whole units (the last unit may be short). */
static void fti__dec_share(size_t n, size_t unit, int nt, int t, size_t *a, size_t *b) {
    size_t units = (n + unit - 1) / unit;
    size_t u0 = units * (size_t)t / (size_t)nt, u1 = units * (size_t)(t + 1) / (size_t)nt;
    *a = u0 * unit < n ? u0 * unit : n;
    *b = u1 * unit < n ? u1 * unit : n;
}

/* [a, b) ∩ [lo, hi) shifted by -lo (empty: a = b). */
static void fti__dec_clip(size_t a, size_t b, size_t lo, size_t hi, size_t *ca, size_t *cb) {
    *ca = a < lo ? lo : a > hi ? hi : a;
    *cb = b < lo ? lo : b > hi ? hi : b;
    if (*cb < *ca) *cb = *ca;
    *ca -= lo;
    *cb -= lo;
}

/* The weights thread t reads first in phase `phase` of layer l: their start and *bytes (NULL and
 * 0: none, or a phase this does not look ahead into). */
static FTI__UNUSED const char *fti__dec_first(const fti__dec *c, size_t l, int phase, int t,
                                              size_t *bytes) {
    const fti_engine *e = c->s->e;
    const fti__eng_w *w;
    size_t a, b, n_in = e->C, rb;
    *bytes = 0;
    switch (phase) {
    case FTI__DEC_QKV_ATTN:
        w = &e->layers[l].q;
        fti__dec_share(e->KV, 1, c->nt, t, &a, &b);
        a *= (e->H / e->KV) * e->D;
        b *= (e->H / e->KV) * e->D;
        break;
    case FTI__DEC_O:
        w = &e->layers[l].o;
        n_in = e->HD;
        fti__dec_share(e->C, 16, c->nt, t, &a, &b);
        break;
    case FTI__DEC_FFN:
        w = &e->layers[l].gate;
        fti__dec_share(e->F, 16, c->nt, t, &a, &b);
        break;
    case FTI__DEC_DOWN:
        w = &e->layers[l].down;
        n_in = e->F;
        fti__dec_share(e->C, 16, c->nt, t, &a, &b);
        break;
    case FTI__DEC_LOGITS:
        w = &e->out;
        fti__dec_share(e->V, 16, c->nt, t, &a, &b);
        break;
    default:
        return NULL;
    }
    rb = fti_dtype_row_bytes(w->type, n_in);
    *bytes = (b - a) * rb;
    return (const char *)(w->pk ? w->pk : w->data) + a * rb;
}

/* Y (M, N) = rows r0 .. r0+N-1 of Q8_0/Q4_0 matrix w (its packed form when it has one: r0 a
 * multiple of pk_rows) · the M quantized rows in qa (K columns). */
static fti_result fti__eng_packed_mm(const fti_kernels *k, fti_pool *pool, const fti__eng_w *w,
                                     size_t r0, size_t N, size_t K, const void *qa, size_t M,
                                     float *Y) {
    fti_qmat m;
    size_t off = r0 * fti_dtype_row_bytes(w->type, K);
    memset(&m, 0, sizeof m);
    m.wtype = w->type;
    m.W = (const char *)w->data + off;
    m.P = w->pk ? (const char *)w->pk + off : NULL;
    m.N = N;
    m.Y = Y;
    m.ldy = N;
    return fti_matmul_qa_multi(k, pool, &m, 1, qa, M, K);
}

/* y[0, r1 - r0) = rows r0 .. r1-1 of W (n_in columns) · x, on the calling thread: from the
 * packed form (x quantized into thread t's part of qws) when there is one. */
static void fti__dec_rows(fti__dec *c, int t, const fti__eng_w *w, const float *x, size_t n_in,
                          float *y, size_t r0, size_t r1) {
    fti_result rc;
    fti_session *s = c->s;
    if (r0 >= r1) return;
    if (w->pk && r0 % s->e->pk_rows == 0 && fti_qact_bytes(1, n_in) <= s->qws_t) {
        void *qa = (char *)s->qws + (size_t)t * s->qws_t;
        rc = fti_qact_quantize(s->e->k, qa, x, n_in, 1, n_in);
        if (rc == FTI_OK) rc = fti__eng_packed_mm(s->e->k, NULL, w, r0, r1 - r0, n_in, qa, 1, y);
        if (rc != FTI_OK) c->rc[t] = rc;
        return;
    }
    rc = fti_matmul_w(c->s->e->k, NULL, w->type,
                      (const char *)w->data + r0 * fti_dtype_row_bytes(w->type, n_in), x, y, 1,
                      r1 - r0, n_in);
    if (rc != FTI_OK) c->rc[t] = rc;
}

/* Kv heads [g0, g1) of layer l's new key (v = 0, through RoPE) or value row into the cache at
 * s->pos: an f16 or q8 cache's through s->kbuf / s->vbuf and rounded, an f32 cache's straight into
 * their places. */
static void fti__dec_kv(fti__dec *c, int t, size_t l, int v, const float *xn, size_t g0,
                        size_t g1) {
    fti_session *s = c->s;
    const fti_engine *e = s->e;
    const fti__eng_w *w = v ? &e->layers[l].v : &e->layers[l].k;
    size_t D = e->D, g;
    if (g0 >= g1) return;
    if (s->kv_kind != FTI__KV_K32) {
        float *buf = (v ? s->vbuf : s->kbuf) + g0 * D;
        fti__dec_rows(c, t, w, xn, e->C, buf, g0 * D, g1 * D);
        if (!v) fti__sess_rope(s, buf, 1, g1 - g0, s->pos);
        fti__kv_put(s, v, l, s->pos, buf - g0 * D, g0, g1);
        return;
    }
    for (g = g0; g < g1; g = fti__kv_run(s, g, g1)) { /* each run of a cache row's heads */
        size_t ge = fti__kv_run(s, g, g1);
        float *dst = (float *)fti__kv_at(s, v, l, g, s->pos);
        fti__dec_rows(c, t, w, xn, e->C, dst, g * D, ge * D);
        if (!v) fti__sess_rope(s, dst, 1, ge - g, s->pos);
    }
}

/* Query heads [h0, h1) attend over the layer's cache (positions 0 .. pos). */
static void fti__dec_attn(fti_session *s, size_t l, size_t h0, size_t h1) {
    const fti_engine *e = s->e;
    fti__kv_view kv;
    if (h0 >= h1) return;
    kv = fti__kv_layer(s, l);
    fti__attn_heads(e, s->q + h0 * e->D, &kv, h0, h1 - h0, s->pos + 1,
                    1.0f / (float)sqrt((double)e->D), s->att + h0 * s->n_ctx, s->n_ctx,
                    s->att_out + h0 * e->D);
}

/* Thread t's part of one phase of layer l. */
static void fti__dec_phase(fti__dec *c, size_t l, int phase, int t) {
    fti_session *s = c->s;
    const fti_engine *e = s->e;
    const fti_kernels *k = e->k;
    const fti__eng_layer *ly = l < e->L ? &e->layers[l] : NULL;
    size_t C = e->C, D = e->D, rep = e->H / e->KV, a, b, i;
    float *xn = s->xn + (size_t)t * C, eps = e->cfg.norm_eps;
    switch (phase) {
    case FTI__DEC_QKV_ATTN: /* KV heads [a, b) and their query heads */
        fti_rmsnorm_fwd(k, xn, NULL, s->x, ly->attn_norm, 1, C, eps);
        fti__dec_share(e->KV, 1, c->nt, t, &a, &b);
        fti__dec_rows(c, t, &ly->q, xn, C, s->q + a * rep * D, a * rep * D, b * rep * D);
        fti__dec_kv(c, t, l, 0, xn, a, b);
        fti__dec_kv(c, t, l, 1, xn, a, b);
        if (a < b) fti__sess_rope(s, s->q + a * rep * D, 1, (b - a) * rep, s->pos);
        {
            FTI__DEC_PROF(uint64_t p0 = fti_time_ns();)
            fti__dec_attn(s, l, a * rep, b * rep);
            FTI__DEC_PROF(if (t < 8) fti__dec_prof[t][FTI__DEC_PROF_ATTN] += fti_time_ns() - p0;)
        }
        break;
    case FTI__DEC_QKV: { /* heads [a, b) of the stacked q (H), k (KV), v (KV) rows */
        size_t H = e->H, KV = e->KV, qa, qb, ka, kb, va, vb;
        fti_rmsnorm_fwd(k, xn, NULL, s->x, ly->attn_norm, 1, C, eps);
        fti__dec_share(H + 2 * KV, 1, c->nt, t, &a, &b);
        fti__dec_clip(a, b, 0, H, &qa, &qb);
        fti__dec_clip(a, b, H, H + KV, &ka, &kb);
        fti__dec_clip(a, b, H + KV, H + 2 * KV, &va, &vb);
        fti__dec_rows(c, t, &ly->q, xn, C, s->q + qa * D, qa * D, qb * D);
        fti__dec_kv(c, t, l, 0, xn, ka, kb);
        fti__dec_kv(c, t, l, 1, xn, va, vb);
        if (qa < qb) fti__sess_rope(s, s->q + qa * D, 1, qb - qa, s->pos);
        break;
    }
    case FTI__DEC_ATTN:
        fti__dec_share(e->H, 1, c->nt, t, &a, &b);
        fti__dec_attn(s, l, a, b);
        break;
    case FTI__DEC_O:
        fti__dec_share(C, 16, c->nt, t, &a, &b);
        fti__dec_rows(c, t, &ly->o, s->att_out, e->HD, s->xb + a, a, b);
        for (i = a; i < b; i++) s->x[i] += s->xb[i];
        break;
    case FTI__DEC_FFN:
        fti_rmsnorm_fwd(k, xn, NULL, s->x, ly->ffn_norm, 1, C, eps);
        fti__dec_share(e->F, 16, c->nt, t, &a, &b);
        fti__dec_rows(c, t, &ly->gate, xn, C, s->hb + a, a, b);
        fti__dec_rows(c, t, &ly->up, xn, C, s->hb2 + a, a, b);
        if (a < b) fti_swiglu_fwd(k, s->hb + a, s->hb + a, s->hb2 + a, b - a);
        break;
    case FTI__DEC_DOWN:
        fti__dec_share(C, 16, c->nt, t, &a, &b);
        fti__dec_rows(c, t, &ly->down, s->hb, e->F, s->xb + a, a, b);
        for (i = a; i < b; i++) s->x[i] += s->xb[i];
        break;
    default: /* FTI__DEC_LOGITS */
        fti_rmsnorm_fwd(k, xn, NULL, s->x, e->out_norm, 1, C, eps);
        fti__dec_share(e->V, 16, c->nt, t, &a, &b);
        fti__dec_rows(c, t, &e->out, xn, C, s->logits + a, a, b);
        break;
    }
}

/* The whole token as one region (thread `thread` of c->nt). */
#ifdef FTI_DECODE_PROFILE
static void fti__dec_phase_prof(fti__dec *c, size_t l, int phase, int t, size_t nl, int np) {
    uint64_t p0 = fti_time_ns(), p1;
    fti__dec_phase(c, l, phase, t);
    p1 = fti_time_ns();
    if (t < 8) fti__dec_prof[t][phase] += p1 - p0;
    if (np < 0) return;
    fti__dec_wait(c, t, nl, np);
    if (t < 8) fti__dec_prof[t][FTI__DEC_PROF_WAIT + phase] += fti_time_ns() - p1;
}
#define FTI__DEC_STEP(c, l, phase, t, nl, np) fti__dec_phase_prof(c, l, phase, t, nl, np)
#else
/* phase of layer l, then the barrier before phase np of layer nl (np < 0: none) */
#define FTI__DEC_STEP(c, l, phase, t, nl, np)                                                      \
    do {                                                                                           \
        fti__dec_phase(c, l, phase, t);                                                            \
        if ((np) >= 0) fti__dec_wait(c, t, nl, np);                                                \
    } while (0)
#endif

static void fti__dec_task(void *vctx, size_t i0, size_t i1, int thread) {
    fti__dec *c = (fti__dec *)vctx;
    size_t l, L = c->s->e->L;
    (void)i0, (void)i1;
    FTI__DEC_PROF(if (thread < 8) fti__dec_prof[thread][FTI__DEC_PROF_WAKE] +=
                  fti_time_ns() - fti__dec_prof_t0;)
    for (l = 0; l < L; l++) {
        if (c->by_group) {
            FTI__DEC_STEP(c, l, FTI__DEC_QKV_ATTN, thread, l, FTI__DEC_O);
        } else {
            FTI__DEC_STEP(c, l, FTI__DEC_QKV, thread, l, FTI__DEC_ATTN);
            FTI__DEC_STEP(c, l, FTI__DEC_ATTN, thread, l, FTI__DEC_O);
        }
        FTI__DEC_STEP(c, l, FTI__DEC_O, thread, l, FTI__DEC_FFN);
        FTI__DEC_STEP(c, l, FTI__DEC_FFN, thread, l, FTI__DEC_DOWN);
        FTI__DEC_STEP(c, l, FTI__DEC_DOWN, thread, l + 1,
                      l + 1 == L ? FTI__DEC_LOGITS
                                 : c->by_group ? FTI__DEC_QKV_ATTN : FTI__DEC_QKV);
    }
    FTI__DEC_STEP(c, L, FTI__DEC_LOGITS, thread, L, -1);
    FTI__DEC_PROF(if (thread < 8) fti__dec_prof[thread][FTI__DEC_PROF_STEPS]++;)
    FTI__DEC_PROF(if (thread == 0 && c->nt > 1) fti__dec_prof[0][FTI__DEC_PROF_STEPS + 1]++;)
}

/* One phase (c->layer, c->phase) as its own pool call: the form without atomics. */
static FTI__UNUSED void fti__dec_phase_task(void *vctx, size_t i0, size_t i1, int thread) {
    fti__dec *c = (fti__dec *)vctx;
    (void)i0, (void)i1;
    fti__dec_phase(c, c->layer, c->phase, thread);
}

/* The forward of one token at position s->pos: its logits into s->logits (and logits_out). */
static fti_result fti__sess_decode(fti_session *s, int32_t token, float *logits_out) {
    const fti_engine *e = s->e;
    size_t embd_row = fti_dtype_row_bytes(e->embd.type, e->C);
    fti_pool *pool = s->pool;
    fti__dec c;
    int t;
    s->qws_x = NULL; /* (packed matrices: the threads' inputs go into qws) */
    c.s = s;
    c.nt = fti_pool_threads(pool);
    if (c.nt > s->nth) { /* not the session's pool (cannot happen): one thread */
        pool = NULL;
        c.nt = 1;
    }
    c.by_group = e->KV % (size_t)c.nt == 0;
    c.layer = 0;
    c.phase = 0;
    c.bar_count = 0;
    c.bar_gen = 0;
    c.pf_max = FTI_DECODE_PREFETCH;
    for (t = 0; t < c.nt; t++) c.rc[t] = FTI_OK;
    FTI__DEC_PROF(fti__dec_prof_t0 = fti_time_ns();)
    fti_dequantize_row(e->k, e->embd.type, s->x,
                       (const char *)e->embd.data + (size_t)token * embd_row, e->C);
    if (c.nt == 1) {
        fti__dec_task(&c, 0, 1, 0);
    } else {
#if FTI__DEC_SPIN
        fti_pool_each(pool, fti__dec_task, &c);
#else
        for (c.layer = 0; c.layer < e->L; c.layer++)
            for (c.phase = c.by_group ? FTI__DEC_QKV_ATTN : FTI__DEC_QKV; c.phase < FTI__DEC_LOGITS;
                 c.phase += c.phase == FTI__DEC_QKV_ATTN ? 3 : 1)
                fti_pool_each(pool, fti__dec_phase_task, &c);
        c.phase = FTI__DEC_LOGITS;
        fti_pool_each(pool, fti__dec_phase_task, &c);
#endif
    }
    FTI__DEC_PROF(fti__dec_prof[0][FTI__DEC_PROF_END] += fti_time_ns() - fti__dec_prof_t0;)
    for (t = 0; t < c.nt; t++)
        if (c.rc[t] != FTI_OK) return c.rc[t];
    s->pos++;
    if (logits_out) memcpy(logits_out, s->logits, e->V * sizeof(float));
    return FTI_OK;
}

/* Prompt batches attend per token through fti__attn_heads (the decode step's and the batch's
 * order: a prompt's logits are the same bits whichever path evaluated it) while they end within
 * the first FTI__PF_ATTN_HEADS_MAX positions; past that the per-head GEMMs are faster (measured,
 * stories15M Q8_0, one thread: per token 10.3k vs 7.1-7.6k tokens/s for a 128-token prompt,
 * 8.3k vs 9.8k for 256) and the sums run in another order. */
#ifndef FTI__PF_ATTN_HEADS_MAX
#define FTI__PF_ATTN_HEADS_MAX 160
#endif

/* Y (T, N) = X (T, K) · Wᵀ for a prompt batch, the same bits as fti_matmul_w: Q8_0/Q4_0 through
 * X's rows quantized into the session's qws (once for the products sharing X: s->qws_x says
 * which rows it holds; the forward clears it when it rewrites them), so no call allocates. */
static fti_result fti__sess_mm(fti_session *s, const fti__eng_w *w, const float *X, float *Y,
                               size_t T, size_t N, size_t K) {
    const fti_kernels *k = s->e->k;
    if ((T > 1 || w->pk) && (w->type == FTI_DTYPE_Q8_0 || w->type == FTI_DTYPE_Q4_0) &&
        K % FTI_QK == 0 &&
        s->qws && fti_qact_bytes(T, K) <= s->qws_bytes) {
        if (s->qws_x != X) {
            fti_result rc = fti_qact_quantize(k, s->qws, X, K, T, K);
            if (rc != FTI_OK) return rc;
            s->qws_x = X;
        }
        return fti__eng_packed_mm(k, s->pool, w, 0, N, K, s->qws, T, Y);
    }
    return fti_matmul_w(k, s->pool, w->type, w->data, X, Y, T, N, K);
}

/* One forward over T <= n_batch tokens at positions pos..pos+T-1; logits for the last token
 * into s->logits, or for all T into logits_out (T,V). */
static fti_result fti__sess_forward(fti_session *s, const int32_t *tokens, size_t T,
                                    float *logits_out) {
    const fti_engine *e = s->e;
    const fti_kernels *k = e->k;
    size_t t, l, i, C = e->C, pos0 = s->pos;
    float eps = e->cfg.norm_eps;
    fti_result rc = FTI_OK;
    size_t embd_row = fti_dtype_row_bytes(e->embd.type, C);
    if (T == 1) return fti__sess_decode(s, tokens[0], logits_out);
    for (t = 0; t < T; t++) /* x (T,C) = embedding rows, decoded from their stored type */
        fti_dequantize_row(k, e->embd.type, s->x + t * C,
                           (const char *)e->embd.data + (size_t)tokens[t] * embd_row, C);
    for (l = 0; l < e->L && rc == FTI_OK; l++) {
        const fti__eng_layer *ly = &e->layers[l];
        fti__sess_attn ac;
        fti_rmsnorm_fwd(k, s->xb, NULL, s->x, ly->attn_norm, T, C, eps);
        s->qws_x = NULL;
        rc = fti__sess_mm(s, &ly->q, s->xb, s->q, T, e->HD, C);
        if (rc != FTI_OK) break;
        fti__sess_rope(s, s->q, T, e->H, pos0);
        if (s->kv_kind != FTI__KV_K32) { /* (T, KVD) rows, then each kv head's rounded into the
                                            cache */
            rc = fti__sess_mm(s, &ly->k, s->xb, s->kbuf, T, e->KVD, C);
            if (rc == FTI_OK) rc = fti__sess_mm(s, &ly->v, s->xb, s->vbuf, T, e->KVD, C);
            if (rc != FTI_OK) break;
            fti__sess_rope(s, s->kbuf, T, e->KV, pos0);
            for (t = 0; t < T; t++) {
                fti__kv_put(s, 0, l, pos0 + t, s->kbuf + t * e->KVD, 0, e->KV);
                fti__kv_put(s, 1, l, pos0 + t, s->vbuf + t * e->KVD, 0, e->KV);
            }
        } else { /* each kv head group's (T, per·D) rows straight into their place */
            size_t g, per = s->kv_per;
            for (g = 0; g < e->KV && rc == FTI_OK; g += per) {
                fti__eng_w wk = ly->k, wv = ly->v;
                float *kc = (float *)fti__kv_at(s, 0, l, g, pos0);
                wk.data = (const char *)ly->k.data + g * e->D * fti_dtype_row_bytes(wk.type, C);
                wv.data = (const char *)ly->v.data + g * e->D * fti_dtype_row_bytes(wv.type, C);
                if (wk.pk) /* (packed only when D is whole row groups) */
                    wk.pk = (const char *)ly->k.pk + g * e->D * fti_dtype_row_bytes(wk.type, C);
                if (wv.pk)
                    wv.pk = (const char *)ly->v.pk + g * e->D * fti_dtype_row_bytes(wv.type, C);
                rc = fti__sess_mm(s, &wk, s->xb, kc, T, per * e->D, C);
                if (rc == FTI_OK)
                    rc = fti__sess_mm(s, &wv, s->xb, (float *)fti__kv_at(s, 1, l, g, pos0), T,
                                      per * e->D, C);
                fti__sess_rope(s, kc, T, per, pos0);
            }
            if (rc != FTI_OK) break;
        }
        if (pos0 + T > FTI__PF_ATTN_HEADS_MAX) { /* long prompts: attention through GEMMs */
            fti__sess_attn_gemm(s, l, T, pos0);
        } else { /* every token's heads through the decode step's attention (the same bits as
                  * a token decoded alone or in a batch), one share of the tokens per thread */
            size_t nt = (size_t)fti_pool_threads(s->pool);
            ac.s = s;
            ac.layer = l;
            ac.T = T;
            ac.pos0 = pos0;
            fti_pool_for(s->pool, T * e->H, (T * e->H + nt - 1) / nt, fti__sess_attn_task, &ac);
        }
        s->qws_x = NULL;
        rc = fti__sess_mm(s, &ly->o, s->att_out, s->xb, T, C, e->HD);
        if (rc != FTI_OK) break;
        for (i = 0; i < T * C; i++) s->x[i] += s->xb[i];
        fti_rmsnorm_fwd(k, s->xb, NULL, s->x, ly->ffn_norm, T, C, eps);
        s->qws_x = NULL;
        rc = fti__sess_mm(s, &ly->gate, s->xb, s->hb, T, e->F, C);
        if (rc == FTI_OK) rc = fti__sess_mm(s, &ly->up, s->xb, s->hb2, T, e->F, C);
        if (rc != FTI_OK) break;
        fti_swiglu_fwd(k, s->hb, s->hb, s->hb2, T * e->F);
        s->qws_x = NULL;
        rc = fti__sess_mm(s, &ly->down, s->hb, s->xb, T, C, e->F);
        if (rc != FTI_OK) break;
        for (i = 0; i < T * C; i++) s->x[i] += s->xb[i];
    }
    if (rc != FTI_OK) return rc;
    s->pos += T;
    if (logits_out) {
        fti_rmsnorm_fwd(k, s->xb, NULL, s->x, e->out_norm, T, C, eps);
        s->qws_x = NULL;
        rc = fti__sess_mm(s, &e->out, s->xb, logits_out, T, e->V, C);
        if (rc == FTI_OK) memcpy(s->logits, logits_out + (T - 1) * e->V, e->V * sizeof(float));
    } else {
        fti_rmsnorm_fwd(k, s->xb, NULL, s->x + (T - 1) * C, e->out_norm, 1, C, eps);
        s->qws_x = NULL;
        rc = fti__sess_mm(s, &e->out, s->xb, s->logits, 1, e->V, C);
    }
    return rc;
}

FTIDEF fti_result fti_session_eval(fti_session *s, const int32_t *tokens, size_t n,
                                   float *logits_out, fti_error *err) {
    size_t i;
    if (!s || (!tokens && n)) return fti_error_set(err, FTI_ERR_INVALID, "session: NULL argument");
    if (n > s->n_ctx - s->pos)
        return fti_error_set(err, FTI_ERR_LIMIT,
                             "session: %lu tokens do not fit: %lu of %lu context positions used",
                             (unsigned long)n, (unsigned long)s->pos, (unsigned long)s->n_ctx);
    for (i = 0; i < n; i++)
        if (tokens[i] < 0 || (size_t)tokens[i] >= s->e->V)
            return fti_error_set(err, FTI_ERR_INVALID,
                                 "session: token %ld at %lu not below vocab %lu", (long)tokens[i],
                                 (unsigned long)i, (unsigned long)s->e->V);
    if (n == 1 && s->adaptive) { /* a decode step: on the pool or alone, whichever is faster */
        fti_pool *pool = s->pool;
        uint64_t t0;
        int serial, probe = 0;
        fti_result rc;
        if (s->n_steps < 6) { /* warm-up: pool and alone in turn */
            serial = (int)(s->n_steps & 1);
        } else {
            serial = s->step_ns[1] < s->step_ns[0];
            /* re-measure the other way now and then: the pool every 16 steps while alone (a
             * passing load, or both threads put on one core at the start, may have made it look
             * slow), alone every 64 steps on the pool */
            probe = (s->n_steps % (serial ? 16u : 64u)) == 0;
            if (probe) serial = !serial;
        }
        if (serial) s->pool = NULL;
        t0 = fti_time_ns();
        rc = fti__sess_forward(s, tokens, 1, logits_out);
        {
            double dt = (double)(fti_time_ns() - t0);
            double *avg = &s->step_ns[serial];
            /* a probe replaces the other way's average: it is stale */
            *avg = (*avg == 0.0 || probe) ? dt : 0.75 * *avg + 0.25 * dt;
        }
        s->pool = pool;
        s->n_steps++;
        if (rc != FTI_OK)
            return fti_error_set(err, rc, "session: forward failed: %s", fti_result_str(rc));
        return FTI_OK;
    }
    for (i = 0; i < n; i += s->n_batch) {
        size_t T = n - i < s->n_batch ? n - i : s->n_batch;
        fti_result rc = fti__sess_forward(s, tokens + i, T,
                                          logits_out ? logits_out + i * s->e->V : NULL);
        if (rc != FTI_OK)
            return fti_error_set(err, rc, "session: forward failed: %s", fti_result_str(rc));
    }
    return FTI_OK;
}

FTIDEF fti_result fti_session_nll(fti_session *s, const int32_t *tokens, size_t n,
                                  double *mean_nll, fti_error *err) {
    size_t i, count = 0;
    double total = 0.0, *lp;
    fti_result rc;
    if (!s || !tokens || !mean_nll || n < 2)
        return fti_error_set(err, FTI_ERR_INVALID, "perplexity: need at least 2 tokens");
    if (n > SIZE_MAX / sizeof(double))
        return fti_error_set(err, FTI_ERR_LIMIT, "perplexity: %zu tokens is too many", n);
    lp = (double *)fti_malloc(n * sizeof(double));
    if (!lp) return fti_error_set(err, FTI_ERR_NOMEM, "perplexity: out of memory");
    rc = fti_session_token_logprobs(s, tokens, n, lp, err); /* NaN where nothing is predicted */
    if (rc == FTI_OK)
        for (i = 1; i < n; i++)
            if (lp[i] == lp[i]) {
                total -= lp[i];
                count++;
            }
    fti_free(lp);
    if (rc != FTI_OK) return rc;
    *mean_nll = count ? total / (double)count : 0.0;
    return FTI_OK;
}

/* --- batched decoding ------------------------------------------------------------------------- */

struct fti_batch {
    const fti_engine *e;
    size_t max_batch, max_ctx;
    float *x, *xb, *q, *kn, *vn, *att_out, *hb, *hb2, *att, *logits;
    void *qa;                 /* quantized activations, (max_batch, max(C, HD, F)) */
    fti_session **ss;         /* the current step's sessions (for the attention task) */
    size_t *pos;              /* the current step's rows' positions */
    float **lrows;            /* where the current step's rows' logits go (NULL: nowhere) */
    float *mem;               /* everything above, one allocation */
    /* The quantized matrices in the table's packed form (fti_qpack), so the multi-row products
     * do not repack them every step: per layer q, k, v, o, gate, up, down, then the output;
     * NULL entries (another type, no packed form, or out of memory) are read as stored. */
    const void **packed;      /* (L·7 + 1) */
    void *pack_mem;
};

/* Packs the engine's quantized weight matrices for fti_matmul_qa_multi (own: copies of the
 * multi-row forms too, else only the engine's own packed forms). Failing to (out of memory)
 * only costs speed: the products then read the stored rows. */
static void fti__bt_pack(fti_batch *d, int own) {
    const fti_engine *e = d->e;
    size_t n = e->L * 7 + 1, i, total = 0, off = 0;
    const fti__eng_w **w;
    size_t *rows, *cols, *bytes;
    d->packed = (const void **)fti_calloc(n, sizeof(void *));
    w = (const fti__eng_w **)fti_calloc(n, sizeof *w);
    rows = (size_t *)fti_calloc(3 * n, sizeof(size_t));
    if (!d->packed || !w || !rows) goto done;
    cols = rows + n;
    bytes = cols + n;
    for (i = 0; i < n; i++) {
        w[i] = fti__engine_mat(e, i, &rows[i], &cols[i]);
        if (w[i]->pk) { /* the engine's own packed form */
            d->packed[i] = w[i]->pk;
            continue;
        }
        /* copies only for several rows, and only of the multi-row forms (AVX-512 VNNI): a
         * decode form the engine did not make (no_repack, ...) stays the stored rows */
        if (!own || fti_qpack_decode_rows(e->k, w[i]->type)) continue;
        bytes[i] = fti_qpack_bytes(e->k, w[i]->type, rows[i], cols[i]);
        bytes[i] = (bytes[i] + 63) / 64 * 64;
        if (!fti_size_add(total, bytes[i], &total)) goto done;
    }
    if (total == 0) goto done;
    d->pack_mem = fti_aligned_alloc(total, 64);
    if (!d->pack_mem) goto done;
    for (i = 0; i < n; i++) {
        if (!bytes[i]) continue;
        if (fti_qpack(e->k, w[i]->type, w[i]->data, rows[i], cols[i], (char *)d->pack_mem + off,
                      bytes[i]) == FTI_OK)
            d->packed[i] = (char *)d->pack_mem + off;
        off += bytes[i];
    }
done:
    fti_free(w);
    fti_free(rows);
}

FTIDEF fti_result fti_batch_create(const fti_engine *e, size_t max_batch, size_t max_ctx,
                                   fti_batch **out, fti_error *err) {
    fti_batch *d;
    size_t B = max_batch, sizes[10], total = 0, i, kmax, qa_bytes, att_n;
    float **slots[10];
    if (!out || !e || B == 0 || max_ctx == 0)
        return fti_error_set(err, FTI_ERR_INVALID, "batch: bad arguments");
    *out = NULL;
    kmax = fti__qact_kmax(e);
    if (!fti_size_mul(B * e->H, max_ctx, &att_n) || B > ((size_t)1 << 24))
        return fti_error_set(err, FTI_ERR_LIMIT, "batch: %lu x %lu too large", (unsigned long)B,
                             (unsigned long)max_ctx);
    qa_bytes = kmax ? fti_qact_bytes(B, kmax) : 0;
    sizes[0] = B * e->C, sizes[1] = B * e->C, sizes[2] = B * e->HD, sizes[3] = B * e->KVD;
    sizes[4] = B * e->KVD, sizes[5] = B * e->HD, sizes[6] = B * e->F, sizes[7] = B * e->F;
    sizes[8] = att_n, sizes[9] = B * e->V;
    d = (fti_batch *)fti_calloc(1, sizeof *d);
    if (!d) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    slots[0] = &d->x, slots[1] = &d->xb, slots[2] = &d->q, slots[3] = &d->kn, slots[4] = &d->vn;
    slots[5] = &d->att_out, slots[6] = &d->hb, slots[7] = &d->hb2, slots[8] = &d->att;
    slots[9] = &d->logits;
    for (i = 0; i < 10; i++)
        if (!fti_size_add(total, sizes[i], &total)) total = (size_t)-1;
    if (total != (size_t)-1 && !fti_size_add(total, qa_bytes / sizeof(float) + 1, &total))
        total = (size_t)-1;
    d->mem = total == (size_t)-1 ? NULL : (float *)fti_calloc(total, sizeof(float));
    d->ss = (fti_session **)fti_calloc(B, sizeof *d->ss);
    d->lrows = (float **)fti_calloc(B, sizeof *d->lrows);
    d->pos = (size_t *)fti_calloc(B, sizeof *d->pos);
    if (!d->mem || !d->ss || !d->lrows || !d->pos) {
        fti_batch_free(d);
        return fti_error_set(err, FTI_ERR_NOMEM, "batch: out of memory for %lu sequences",
                             (unsigned long)B);
    }
    total = 0;
    for (i = 0; i < 10; i++) {
        *slots[i] = d->mem + total;
        total += sizes[i];
    }
    d->qa = qa_bytes ? (void *)(d->mem + total) : NULL;
    d->e = e;
    d->max_batch = B;
    d->max_ctx = max_ctx;
    fti__bt_pack(d, B > 1); /* (B = 1: only the engine's own packed forms) */
    *out = d;
    return FTI_OK;
}

FTIDEF void fti_batch_free(fti_batch *d) {
    if (!d) return;
    fti_free(d->mem);
    fti_free(d->ss);
    fti_free(d->lrows);
    fti_free(d->pos);
    fti_free(d->packed);
    fti_aligned_free(d->pack_mem);
    fti_free(d);
}

/* The SIMD forms of the attention's two passes (fti__attn_heads uses them for every path:
 * decode step, prompt batches, batched rows). A sequence's cached keys of a layer are one
 * contiguous (n, KVD) block: each pass walks it once as two streams of rows (each row: every
 * head of the call), so the reads stream at memory speed however many heads share the call.
 * Scores: one FMA chain per (position, head) pair over the head's dimensions, 16 (AVX-512) or 8
 * (AVX2) pairs reduced by one transposing sum. Values: y_i += p[i][j]·v_j, the rows of both
 * streams per load and store of y (outputs in L1). */
#if defined(FTI__X86)
FTI__X86_WARN_PUSH /* g++ false positives in its AVX-512 headers (00_base.h) */
#if defined(__has_feature)
#define FTI__BT_HAS_FEATURE(x) __has_feature(x)
#else
#define FTI__BT_HAS_FEATURE(x) 0
#endif
#if (defined(__OPTIMIZE_SIZE__) || defined(__SANITIZE_ADDRESS__) ||                                \
     defined(__SANITIZE_THREAD__) || FTI__BT_HAS_FEATURE(address_sanitizer) ||                     \
     FTI__BT_HAS_FEATURE(thread_sanitizer) || FTI__BT_HAS_FEATURE(memory_sanitizer)) &&            \
    !defined(FTI__BT_COMPACT)
#define FTI__BT_COMPACT 1
#endif
#if defined(FTI__BT_COMPACT)
/* -Os and sanitizer builds: one copy of each pass with nc a variable and nothing unrolled. The
 * forms below are otherwise 15-35 KB each (make size's minimal program), and gcc's ASan build
 * of them at -O1 -g took 9 minutes (variable tracking over the unrolled bodies). The same
 * operations in the same order, so the same bits. */
#define FTI__BT_INLINE __inline__
#define FTI__BT_UNROLL
#define FTI__BT_NC_CASES_AVX2(nc, F, ...) F(__VA_ARGS__, nc);
#define FTI__BT_NC_CASES_AVX512(nc, F, ...) F(__VA_ARGS__, nc);
#else
#define FTI__BT_INLINE __inline__ __attribute__((always_inline))
#if defined(__clang__)
#define FTI__BT_UNROLL _Pragma("unroll")
#else
#define FTI__BT_UNROLL _Pragma("GCC unroll 16")
#endif

/* Calls F(args..., nc) with nc a constant for the head sizes models use (32, 48, 64, and 128 on
 * AVX-512), so the inlined body keeps its arrays in registers; other head sizes take the form
 * with nc a variable (the same operations in the same order, so the same bits). Every nc as a
 * constant (1..8 on both tables) made the -O2 build of the implementation 7 s longer (33 s). */
#define FTI__BT_NC_CASES_AVX2(nc, F, ...)                                                          \
    switch (nc) {                                                                                  \
    case 4: F(__VA_ARGS__, 4); break;                                                              \
    case 6: F(__VA_ARGS__, 6); break;                                                              \
    case 8: F(__VA_ARGS__, 8); break;                                                              \
    default: F##_v(__VA_ARGS__, nc); break;                                                        \
    }
#define FTI__BT_NC_CASES_AVX512(nc, F, ...)                                                        \
    switch (nc) {                                                                                  \
    case 2: F(__VA_ARGS__, 2); break;                                                              \
    case 3: F(__VA_ARGS__, 3); break;                                                              \
    case 4: F(__VA_ARGS__, 4); break;                                                              \
    case 8: F(__VA_ARGS__, 8); break;                                                              \
    default: F##_v(__VA_ARGS__, nc); break;                                                        \
    }
#endif /* FTI__BT_COMPACT */

/* Both passes read the n rows as G streams (G = the pairs of one transposing sum, 8 on AVX2):
 * stream g is rows g·hs .. g·hs+hs-1 (hs = ceil(n/G)), step k reads row g·hs + k of each (the
 * lanes past n, always the last ones, repeat row k and are dropped), and within a step the call's
 * heads one by one: the step's rows stay in L1 while each head reads its part of them, each
 * stream goes through memory in order. Scores: head i's G pairs share each load of q_i. Values:
 * y_i in registers over a step's rows, the rows in the lanes' order (a fixed order for each n, so
 * the values' roundings are too). Why G streams: on Zen 3 one core reads one stream at ~18 GB/s
 * and 2 or 8 at ~28; the rows of one step next to each other (one stream, or two of 4 rows)
 * were read at 8-12 GB/s, the hardware prefetchers lose them (software prefetch of the rows
 * a few steps ahead did not help either). The forms before these (each row's heads through one
 * transposing sum, two streams) spent most of their time on the pairs' bookkeeping and a scatter
 * of the scores through the stack: 21 GB/s on L2-resident f16 rows, these 39. */

/* Step k's rows: rp[g] = row jr[g] of base for lane g; m = the lanes before n. */
#define FTI__AT_STEP(base, G)                                                                      \
    m = 0;                                                                                         \
    FTI__BT_UNROLL                                                                                 \
    for (g = 0; g < G; g++) {                                                                      \
        size_t j_ = g * hs + k;                                                                    \
        jr[g] = j_ < n ? j_ : k;                                                                   \
        m += j_ < n;                                                                               \
        rp[g] = (base) + jr[g] * a->row;                                                           \
    }

/* The body of the scores pass (fti__at_args a) for vectors of type V with W lanes (intrinsics
 * P##_..., LD the row load of the cache kind F16: FTI__KV_K32, _K16 or _K8), NC = D/W, G pairs
 * per transposing sum HSUM, KS the G row scales of a q8 step: the AVX-512 and the AVX2 forms are
 * this one text. Pair (head i, row j) is q_i·k_j by one FMA chain over c, its score lane g of
 * HSUM's result; the score is (Σ·scale)·ks (ks the key row's q8 scale), as fti__attn_heads' scalar
 * order. A pair's bits depend on q_i and k_j alone: not on the step, the heads of the call or n. */
#define FTI__AT_SCORES(V, P, W, G, LD, HSUM, KS, UC)                                               \
    const char *kb = a->kv, *rp[G];                                                                \
    size_t k, i, g, c, r, ko, m, n = a->n, r0 = a->h0 % a->rep, ko0 = (a->h0 / a->rep) * a->dsz;   \
    size_t hs = (n + G - 1) / G, jr[G];                                                            \
    float tv[G];                                                                                   \
    for (k = 0; k < hs; k++) {                                                                     \
        FTI__AT_STEP(kb, G)                                                                        \
        for (i = 0, r = r0, ko = ko0; i < a->nh; i++) {                                            \
            const float *qi = a->q + i * (W * NC);                                                 \
            float *pi = a->p + i * a->p_stride;                                                    \
            V acc[G], qv = P##_loadu_ps(qi), sv;                                                   \
            FTI__BT_UNROLL                                                                         \
            for (g = 0; g < G; g++) acc[g] = P##_mul_ps(qv, LD(rp[g] + ko, 0, F16));               \
            UC                                                                                     \
            for (c = 1; c < NC; c++) {                                                             \
                qv = P##_loadu_ps(qi + W * c);                                                     \
                FTI__BT_UNROLL                                                                     \
                for (g = 0; g < G; g++)                                                            \
                    acc[g] = P##_fmadd_ps(qv, LD(rp[g] + ko, W * c, F16), acc[g]);                 \
            }                                                                                      \
            sv = P##_mul_ps(HSUM(acc), P##_set1_ps(a->scale));                                     \
            if (F16 == FTI__KV_K8) sv = P##_mul_ps(sv, KS(rp, ko + a->D));                         \
            P##_storeu_ps(tv, sv);                                                                 \
            if (m == G) {                                                                          \
                FTI__BT_UNROLL                                                                     \
                for (g = 0; g < G; g++) pi[jr[g]] = tv[g];                                         \
            } else                                                                                 \
                for (g = 0; g < m; g++) pi[jr[g]] = tv[g];                                         \
            if (++r == a->rep) {                                                                   \
                r = 0;                                                                             \
                ko += a->dsz;                                                                      \
            }                                                                                      \
        }                                                                                          \
    }

/* Row g of a values step into acc: acc[c] += p[i][j_g]·v_{j_g} (a q8 row's p times its scale). */
#define FTI__AT_VROW(V, P, W, LD, UC)                                                              \
    {                                                                                              \
        V pv = P##_set1_ps(F16 == FTI__KV_K8 ? pi[jr[g]] * fti__kv_q8_scale(rp[g] + ko, a->D)      \
                                             : pi[jr[g]]);                                         \
        UC                                                                                         \
        for (c = 0; c < NC; c++) acc[c] = P##_fmadd_ps(pv, LD(rp[g] + ko, W * c, F16), acc[c]);    \
    }

/* The body of the values pass: y_i = Σ_j p[i][j]·v_j by FMA, the steps in order and each step's
 * rows in the lanes' order (a q8 row's p[i][j] times its scale), y_i in registers over a step. */
#define FTI__AT_VALUES(V, P, W, G, LD, UC)                                                         \
    const char *vb = a->kv, *rp[G];                                                                \
    size_t k, i, g, c, r, ko, m, n = a->n, r0 = a->h0 % a->rep, ko0 = (a->h0 / a->rep) * a->dsz;   \
    size_t hs = (n + G - 1) / G, jr[G];                                                            \
    if (!n) memset(a->y, 0, a->nh * (W * NC) * sizeof(float));                                     \
    for (k = 0; k < hs; k++) {                                                                     \
        FTI__AT_STEP(vb, G)                                                                        \
        for (i = 0, r = r0, ko = ko0; i < a->nh; i++) {                                            \
            float *yi = a->y + i * (W * NC);                                                       \
            const float *pi = a->p + i * a->p_stride;                                              \
            V acc[8];                                                                              \
            UC                                                                                     \
            for (c = 0; c < NC; c++) acc[c] = k ? P##_loadu_ps(yi + W * c) : P##_setzero_ps();     \
            if (m == G) {                                                                          \
                FTI__BT_UNROLL                                                                     \
                for (g = 0; g < G; g++) FTI__AT_VROW(V, P, W, LD, UC)                              \
            } else                                                                                 \
                for (g = 0; g < m; g++) FTI__AT_VROW(V, P, W, LD, UC)                              \
            UC                                                                                     \
            for (c = 0; c < NC; c++) P##_storeu_ps(yi + W * c, acc[c]);                            \
            if (++r == a->rep) {                                                                   \
                r = 0;                                                                             \
                ko += a->dsz;                                                                      \
            }                                                                                      \
        }                                                                                          \
    }

/* The two passes of an ISA (attribute ATTR, names ..._SFX_v) for the head sizes its
 * FTI__BT_NC_CASES has no constant for: NC a variable, and the loops over it without the unroll
 * pragma (clang reports a loop it cannot unroll as an error). */
#define FTI__AT_VAR_FORMS(ATTR, SFX, V, P, W, LD, HSUM, KS)                                        \
    ATTR static FTI__BT_INLINE void fti__at_scores_##SFX##_v(const fti__at_args *a, int F16,       \
                                                             size_t NC) {                          \
        FTI__AT_SCORES(V, P, W, W, LD, HSUM, KS, )                                                 \
    }                                                                                              \
    ATTR static FTI__BT_INLINE void fti__at_values_##SFX##_v(const fti__at_args *a, int F16,       \
                                                             size_t NC) {                          \
        FTI__AT_VALUES(V, P, W, W, LD, )                                                           \
    }

#if !defined(FTI_NO_AVX512)
/* Lane i of the result = Σ of the 16 lanes of v[i] (a fixed order). */
FTI__AVX512 static FTI__BT_INLINE __m512 fti__bt_hsum16_avx512(const __m512 *v) {
    __m512 t[8], u[4], q0, q1;
    size_t i;
    FTI__BT_UNROLL
    for (i = 0; i < 8; i++)
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                             _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    FTI__BT_UNROLL
    for (i = 0; i < 4; i++)
        u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[2 * i]),
                                                                 _mm512_castps_pd(t[2 * i + 1]))),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[2 * i]),
                                                                 _mm512_castps_pd(t[2 * i + 1]))));
    q0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x44),
                       _mm512_shuffle_f32x4(u[0], u[1], 0xee));
    q1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x44),
                       _mm512_shuffle_f32x4(u[2], u[3], 0xee));
    return _mm512_add_ps(_mm512_shuffle_f32x4(q0, q1, 0x88), _mm512_shuffle_f32x4(q0, q1, 0xdd));
}

/* 16 cache elements from element i of row r: f32, or f16 or q8 widened (F16: the kind, a
 * constant). */
FTI__AVX512 static FTI__BT_INLINE __m512 fti__bt_ld16(const char *r, size_t i, int F16) {
    if (F16 == FTI__KV_K8)
        return _mm512_cvtepi32_ps(
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(r + i))));
    return F16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(r + 2 * i)))
               : _mm512_loadu_ps((const void *)(r + 4 * i));
}

/* The q8 scales at byte off of rows r[0..15]. */
FTI__AVX512 static FTI__BT_INLINE __m512 fti__bt_ks16(const char **r, size_t off) {
    float s[16];
    size_t g;
    for (g = 0; g < 16; g++) memcpy(&s[g], r[g] + off, sizeof s[g]);
    return _mm512_loadu_ps(s);
}

/* The two passes for D = 16·NC (the cache kind F16). */
FTI__AVX512 static FTI__BT_INLINE void fti__at_scores_avx512(const fti__at_args *a, int F16,
                                                             size_t NC) {
    FTI__AT_SCORES(__m512, _mm512, 16, 16, fti__bt_ld16, fti__bt_hsum16_avx512, fti__bt_ks16,
                   FTI__BT_UNROLL)
}

FTI__AVX512 static FTI__BT_INLINE void fti__at_values_avx512(const fti__at_args *a, int F16,
                                                             size_t NC) {
    FTI__AT_VALUES(__m512, _mm512, 16, 16, fti__bt_ld16, FTI__BT_UNROLL)
}

FTI__AT_VAR_FORMS(FTI__AVX512, avx512, __m512, _mm512, 16, fti__bt_ld16, fti__bt_hsum16_avx512,
                  fti__bt_ks16)

FTI__AVX512 static void fti__bt_scores16_avx512(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX512(nc, fti__at_scores_avx512, a, 0)
}

FTI__AVX512 static void fti__bt_values16_avx512(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX512(nc, fti__at_values_avx512, a, 0)
}

FTI__AVX512 static void fti__bt_scores16_avx512_f16(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX512(nc, fti__at_scores_avx512, a, 1)
}

FTI__AVX512 static void fti__bt_values16_avx512_f16(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX512(nc, fti__at_values_avx512, a, 1)
}

FTI__AVX512 static void fti__bt_scores16_avx512_q8(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX512(nc, fti__at_scores_avx512, a, FTI__KV_K8)
}

FTI__AVX512 static void fti__bt_values16_avx512_q8(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX512(nc, fti__at_values_avx512, a, FTI__KV_K8)
}
#endif /* !FTI_NO_AVX512 */

/* The AVX2 forms: 8 pairs per transposing sum (16 ymm registers). Lane i of the result = Σ of
 * the 8 lanes of v[i] (a fixed order, the same tree for every lane). */
FTI__AVX2 static FTI__BT_INLINE __m256 fti__bt_hsum8_avx2(const __m256 *v) {
    __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
    __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* 8 cache elements from element i of row r: f32, or f16 or q8 widened (F16: the kind, a
 * constant). */
FTI__AVX2 static FTI__BT_INLINE __m256 fti__bt_ld8(const char *r, size_t i, int F16) {
    if (F16 == FTI__KV_K8) return FTI__KV_Q8_LD8(r + i);
    return F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(r + 2 * i)))
               : _mm256_loadu_ps((const float *)(const void *)(r + 4 * i));
}

/* The q8 scales at byte off of rows r[0..7]. */
FTI__AVX2 static FTI__BT_INLINE __m256 fti__bt_ks8(const char **r, size_t off) {
    return _mm256_setr_ps(fti__kv_q8_scale(r[0], off), fti__kv_q8_scale(r[1], off),
                          fti__kv_q8_scale(r[2], off), fti__kv_q8_scale(r[3], off),
                          fti__kv_q8_scale(r[4], off), fti__kv_q8_scale(r[5], off),
                          fti__kv_q8_scale(r[6], off), fti__kv_q8_scale(r[7], off));
}

/* The two passes for D = 8·NC (the cache kind F16). */
FTI__AVX2 static FTI__BT_INLINE void fti__at_scores_avx2(const fti__at_args *a, int F16,
                                                         size_t NC) {
    FTI__AT_SCORES(__m256, _mm256, 8, 8, fti__bt_ld8, fti__bt_hsum8_avx2, fti__bt_ks8,
                   FTI__BT_UNROLL)
}

FTI__AVX2 static FTI__BT_INLINE void fti__at_values_avx2(const fti__at_args *a, int F16,
                                                         size_t NC) {
    FTI__AT_VALUES(__m256, _mm256, 8, 8, fti__bt_ld8, FTI__BT_UNROLL)
}

FTI__AT_VAR_FORMS(FTI__AVX2, avx2, __m256, _mm256, 8, fti__bt_ld8, fti__bt_hsum8_avx2, fti__bt_ks8)

FTI__AVX2 static void fti__bt_scores16_avx2(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX2(nc, fti__at_scores_avx2, a, 0)
}

FTI__AVX2 static void fti__bt_scores16_avx2_f16(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX2(nc, fti__at_scores_avx2, a, 1)
}

/* y[i] = (x[i] - c) · a (the sampler's temperature step, the same two roundings as scalar). */
FTI__AVX2 static void fti__bt_shift_scale_avx2(float *y, const float *x, float c, float a,
                                              size_t n) {
    __m256 cv = _mm256_set1_ps(c), av = _mm256_set1_ps(a);
    size_t i;
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), cv), av));
    for (; i < n; i++) y[i] = (x[i] - c) * a;
}

/* The max of x (n >= 8); 1 in *bad when one is NaN or ±inf. */
FTI__AVX2 static float fti__bt_max_finite_avx2(const float *x, size_t n, int *bad) {
    __m256 m = _mm256_loadu_ps(x), z = _mm256_setzero_ps(), nf = _mm256_setzero_ps();
    float t[8], mx;
    size_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        nf = _mm256_or_ps(nf, _mm256_cmp_ps(_mm256_sub_ps(v, v), z, _CMP_NEQ_UQ));
        m = _mm256_max_ps(m, v);
    }
    _mm256_storeu_ps(t, m);
    *bad = _mm256_movemask_ps(nf) != 0;
    mx = t[0];
    for (i = 1; i < 8; i++) mx = t[i] > mx ? t[i] : mx;
    for (i = n - n % 8; i < n; i++) {
        *bad |= !(x[i] - x[i] == 0.0f);
        mx = x[i] > mx ? x[i] : mx;
    }
    return mx;
}

/* The first i in [i, n) with x[i] > thr, or n (a NaN never is). */
FTI__AVX2 static size_t fti__bt_first_above_avx2(const float *x, size_t i, size_t n, float thr) {
    __m256 t = _mm256_set1_ps(thr);
    for (; i + 8 <= n; i += 8) {
        int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), t, _CMP_GT_OQ));
        if (m) return i + (size_t)__builtin_ctz((unsigned)m);
    }
    for (; i < n; i++)
        if (x[i] > thr) return i;
    return n;
}

FTI__AVX2 static void fti__bt_values16_avx2(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX2(nc, fti__at_values_avx2, a, 0)
}

FTI__AVX2 static void fti__bt_values16_avx2_f16(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX2(nc, fti__at_values_avx2, a, 1)
}

FTI__AVX2 static void fti__bt_scores16_avx2_q8(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX2(nc, fti__at_scores_avx2, a, FTI__KV_K8)
}

FTI__AVX2 static void fti__bt_values16_avx2_q8(const fti__at_args *a, size_t nc) {
    FTI__BT_NC_CASES_AVX2(nc, fti__at_values_avx2, a, FTI__KV_K8)
}
FTI__X86_WARN_POP
#endif /* FTI__X86 */

/* The first i in [i, n) with x[i] > thr, or n. */
static size_t fti__first_above(const fti_kernels *k, const float *x, size_t i, size_t n,
                               float thr) {
#if defined(FTI__X86)
    fti_isa isa = fti_kernels_isa(k);
    if (isa == FTI_ISA_AVX2 || isa == FTI_ISA_AVX512) return fti__bt_first_above_avx2(x, i, n, thr);
#endif
    (void)k;
    for (; i < n; i++)
        if (x[i] > thr) return i;
    return n;
}

/* The max of x (n >= 8); 1 in *bad when one is NaN or ±inf (max in any order: exact). */
static float fti__bt_max_finite(const fti_kernels *k, const float *x, size_t n, int *bad) {
    float m8[8], mx;
    size_t i, j;
#if defined(FTI__X86)
    fti_isa isa = fti_kernels_isa(k);
    if (isa == FTI_ISA_AVX2 || isa == FTI_ISA_AVX512) return fti__bt_max_finite_avx2(x, n, bad);
#endif
    (void)k;
    *bad = 0;
    for (j = 0; j < 8; j++) m8[j] = x[j];
    for (i = 0; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) {
            float v = x[i + j];
            *bad |= !(v - v == 0.0f);
            m8[j] = v > m8[j] ? v : m8[j];
        }
    for (; i < n; i++) {
        *bad |= !(x[i] - x[i] == 0.0f);
        m8[0] = x[i] > m8[0] ? x[i] : m8[0];
    }
    mx = m8[0];
    for (j = 1; j < 8; j++) mx = m8[j] > mx ? m8[j] : mx;
    return mx;
}

/* y[i] = (x[i] - c) · a. */
static void fti__bt_shift_scale(const fti_kernels *k, float *y, const float *x, float c, float a,
                                size_t n) {
    size_t i;
#if defined(FTI__X86)
    fti_isa isa = fti_kernels_isa(k);
    if (isa == FTI_ISA_AVX2 || isa == FTI_ISA_AVX512) {
        fti__bt_shift_scale_avx2(y, x, c, a, n);
        return;
    }
#endif
    (void)k;
    for (i = 0; i < n; i++) y[i] = (x[i] - c) * a;
}

/* The SIMD forms for the engine's table and head size (D a multiple of 16 up to 128 on
 * AVX-512, of 8 up to 64 on AVX2); 0 when there are none (fti__attn_heads' scalar order then). */
static int fti__bt_attn_fns(const fti_engine *e, int kind, fti__bt_scores_fn *sf,
                            fti__bt_values_fn *vf, size_t *nc) {
#if defined(FTI__X86)
    size_t D = e->D;
    fti_isa isa = fti_kernels_isa(e->k);
#if !defined(FTI_NO_AVX512)
    if (isa == FTI_ISA_AVX512 && D % 16 == 0 && D <= 128) {
        *sf = kind == FTI__KV_K8    ? fti__bt_scores16_avx512_q8
              : kind == FTI__KV_K16 ? fti__bt_scores16_avx512_f16
                                    : fti__bt_scores16_avx512;
        *vf = kind == FTI__KV_K8    ? fti__bt_values16_avx512_q8
              : kind == FTI__KV_K16 ? fti__bt_values16_avx512_f16
                                    : fti__bt_values16_avx512;
        *nc = D / 16;
        return 1;
    }
#endif
    if ((isa == FTI_ISA_AVX2 || isa == FTI_ISA_AVX512) && D % 8 == 0 && D <= 64) {
        *sf = kind == FTI__KV_K8    ? fti__bt_scores16_avx2_q8
              : kind == FTI__KV_K16 ? fti__bt_scores16_avx2_f16
                                    : fti__bt_scores16_avx2;
        *vf = kind == FTI__KV_K8    ? fti__bt_values16_avx2_q8
              : kind == FTI__KV_K16 ? fti__bt_values16_avx2_f16
                                    : fti__bt_values16_avx2;
        *nc = D / 8;
        return 1;
    }
#endif
    (void)e;
    (void)kind;
    *sf = NULL;
    *vf = NULL;
    *nc = 0;
    return 0;
}

/* Attention of one sequence's H query heads q (HD) over its n cached positions of one layer
 * (kv: (n, KVD) rows, f32, f16 or q8): y (HD) gets the outputs, att (H rows of att_ld >= n) the
 * weights; the same bits as the session's own paths give (fti__attn_heads). */
static void fti__bt_attn_seq(const fti_engine *e, const float *q, const fti__kv_view *kv,
                             size_t n, float *att, size_t att_ld, float *y) {
    fti__attn_heads(e, q, kv, 0, e->H, n, 1.0f / (float)sqrt((double)e->D), att, att_ld, y);
}

typedef struct fti__bt_attn {
    fti_batch *d;
    size_t layer;
} fti__bt_attn;

/* Item b: row b's attention over its session's cache (positions 0..pos_b). */
static void fti__bt_attn_task(void *vctx, size_t i0, size_t i1, int thread) {
    const fti__bt_attn *c = (const fti__bt_attn *)vctx;
    fti_batch *d = c->d;
    const fti_engine *e = d->e;
    size_t b;
    (void)thread;
    for (b = i0; b < i1; b++) {
        fti__kv_view kv = fti__kv_layer(d->ss[b], c->layer);
        fti__bt_attn_seq(e, d->q + b * e->HD, &kv, d->pos[b] + 1, d->att + b * e->H * d->max_ctx,
                         d->max_ctx, d->att_out + b * e->HD);
    }
}

/* Y_i (B,N_i) = X (B,K) · W_iᵀ for n <= 3 matrices sharing the input X: one parallel loop over
 * all their rows (part 02's fti_matmul_qa_multi, X quantized once into d->qa, the packed forms
 * pk[i] where there are some) when every matrix is Q8_0/Q4_0, else one fti_matmul_w after
 * another. */
static int fti__bt_quant(const fti_batch *d, size_t n, const fti__eng_w *const *w, size_t K) {
    size_t i;
    if (!d->qa || K % FTI_QK || n > 3) return 0;
    for (i = 0; i < n; i++)
        if (w[i]->type != FTI_DTYPE_Q8_0 && w[i]->type != FTI_DTYPE_Q4_0) return 0;
    return 1;
}

/* (rows: when quantized, row b of the first product goes to rows[b] instead of Y[0].) */
static fti_result fti__bt_matmuls(fti_batch *d, fti_pool *pool, size_t n,
                                  const fti__eng_w *const *w, const void *const *pk,
                                  float *const *Y, const size_t *N, float *const *rows,
                                  const float *X, size_t B, size_t K) {
    const fti_kernels *k = d->e->k;
    fti_qmat m[3];
    size_t i;
    fti_result rc = FTI_OK;
    if (!fti__bt_quant(d, n, w, K)) {
        for (i = 0; i < n && rc == FTI_OK; i++)
            rc = fti_matmul_w(k, pool, w[i]->type, w[i]->data, X, Y[i], B, N[i], K);
        return rc;
    }
    rc = fti_qact_quantize(k, d->qa, X, K, B, K);
    if (rc != FTI_OK) return rc;
    memset(m, 0, sizeof m);
    for (i = 0; i < n; i++) {
        m[i].wtype = w[i]->type;
        m[i].W = w[i]->data;
        m[i].P = pk ? pk[i] : NULL;
        m[i].N = N[i];
        m[i].Y = Y[i];
        m[i].ldy = N[i];
    }
    m[0].Yrows = rows;
    return fti_matmul_qa_multi(k, pool, m, n, d->qa, B, K);
}

/* One forward over the B rows set in d: row b is token tok[b] of session d->ss[b] at position
 * d->pos[b] (a session may hold several rows at consecutive positions: its prompt), and its
 * logits go to d->lrows[b] (NULL: not needed). Every row's K and V go into its cache before any
 * row's attention, so a prompt's rows see each other causally. */
static fti_result fti__bt_forward(fti_batch *d, const int32_t *tok, size_t B, fti_pool *pool) {
    const fti_engine *e = d->e;
    const fti_kernels *k = e->k;
    size_t b, l, i, C = e->C, n_out;
    float eps = e->cfg.norm_eps;
    fti_result rc = FTI_OK;
    size_t embd_row = fti_dtype_row_bytes(e->embd.type, C);
    fti__bt_attn ac;
    for (b = 0; b < B; b++) /* x (B,C) = embedding rows */
        fti_dequantize_row(k, e->embd.type, d->x + b * C,
                           (const char *)e->embd.data + (size_t)tok[b] * embd_row, C);
    for (l = 0; l < e->L && rc == FTI_OK; l++) {
        const fti__eng_layer *ly = &e->layers[l];
        const void *const *pk = d->packed ? d->packed + l * 7 : NULL;
        const fti__eng_w *ws[3];
        float *ys[3];
        size_t ns[3];
        fti_rmsnorm_fwd(k, d->xb, NULL, d->x, ly->attn_norm, B, C, eps);
        /* the projections: one pass over each weight matrix for all B rows, q, k, v in one loop */
        ws[0] = &ly->q, ws[1] = &ly->k, ws[2] = &ly->v;
        ys[0] = d->q, ys[1] = d->kn, ys[2] = d->vn;
        ns[0] = e->HD, ns[1] = e->KVD, ns[2] = e->KVD;
        rc = fti__bt_matmuls(d, pool, 3, ws, pk, ys, ns, NULL, d->xb, B, C);
        if (rc != FTI_OK) break;
        for (b = 0; b < B; b++) { /* RoPE at each row's own position; K, V into its cache */
            const fti_session *s = d->ss[b];
            fti__sess_rope(s, d->q + b * e->HD, 1, e->H, d->pos[b]);
            fti__sess_rope(s, d->kn + b * e->KVD, 1, e->KV, d->pos[b]);
            /* (rounded to f16 or q8 as the session's own forward does) */
            fti__kv_put(s, 0, l, d->pos[b], d->kn + b * e->KVD, 0, e->KV);
            fti__kv_put(s, 1, l, d->pos[b], d->vn + b * e->KVD, 0, e->KV);
        }
        ac.d = d;
        ac.layer = l;
        fti_pool_for(pool, B, 1, fti__bt_attn_task, &ac);
        ws[0] = &ly->o, ys[0] = d->xb, ns[0] = C;
        rc = fti__bt_matmuls(d, pool, 1, ws, pk ? pk + 3 : NULL, ys, ns, NULL, d->att_out, B,
                             e->HD);
        if (rc != FTI_OK) break;
        for (i = 0; i < B * C; i++) d->x[i] += d->xb[i];
        fti_rmsnorm_fwd(k, d->xb, NULL, d->x, ly->ffn_norm, B, C, eps);
        ws[0] = &ly->gate, ws[1] = &ly->up;
        ys[0] = d->hb, ys[1] = d->hb2;
        ns[0] = e->F, ns[1] = e->F;
        rc = fti__bt_matmuls(d, pool, 2, ws, pk ? pk + 4 : NULL, ys, ns, NULL, d->xb, B, C);
        if (rc != FTI_OK) break;
        fti_swiglu_fwd(k, d->hb, d->hb, d->hb2, B * e->F);
        ws[0] = &ly->down, ys[0] = d->xb, ns[0] = C;
        rc = fti__bt_matmuls(d, pool, 1, ws, pk ? pk + 6 : NULL, ys, ns, NULL, d->hb, B, e->F);
        if (rc != FTI_OK) break;
        for (i = 0; i < B * C; i++) d->x[i] += d->xb[i];
    }
    if (rc != FTI_OK) return rc;
    /* the logits of the rows that want them (moved to the front), straight into their places
     * when the output matrix is quantized, else through d->logits */
    n_out = 0;
    for (b = 0; b < B; b++) {
        if (!d->lrows[b]) continue;
        if (n_out != b) memcpy(d->x + n_out * C, d->x + b * C, C * sizeof(float));
        d->lrows[n_out++] = d->lrows[b];
    }
    if (n_out) {
        const fti__eng_w *ws[1];
        float *ys[1];
        size_t ns[1];
        int direct;
        ws[0] = &e->out, ys[0] = d->logits, ns[0] = e->V;
        direct = fti__bt_quant(d, 1, ws, C);
        fti_rmsnorm_fwd(k, d->xb, NULL, d->x, e->out_norm, n_out, C, eps);
        rc = fti__bt_matmuls(d, pool, 1, ws, d->packed ? d->packed + e->L * 7 : NULL, ys, ns,
                             direct ? d->lrows : NULL, d->xb, n_out, C);
        if (rc == FTI_OK && !direct)
            for (b = 0; b < n_out; b++)
                memcpy(d->lrows[b], d->logits + b * e->V, e->V * sizeof(float));
    }
    return rc;
}

FTIDEF fti_result fti_session_eval_batch(fti_batch *d, fti_session *const *ss,
                                         const int32_t *tokens, size_t B, fti_pool *pool,
                                         fti_error *err) {
    const fti_engine *e;
    size_t b;
    fti_result rc;
    if (!d || !ss || !tokens || B == 0 || B > d->max_batch)
        return fti_error_set(err, FTI_ERR_INVALID, "batch decode: %lu sequences (max %lu)",
                             (unsigned long)B, (unsigned long)(d ? d->max_batch : 0));
    e = d->e;
    for (b = 0; b < B; b++) {
        size_t j;
        if (!ss[b] || ss[b]->e != e || ss[b]->n_ctx > d->max_ctx)
            return fti_error_set(err, FTI_ERR_INVALID,
                                 "batch decode: sequence %lu: foreign session", (unsigned long)b);
        for (j = 0; j < b; j++)
            if (ss[j] == ss[b])
                return fti_error_set(err, FTI_ERR_INVALID, "batch decode: session repeated");
        if (tokens[b] < 0 || (size_t)tokens[b] >= e->V)
            return fti_error_set(err, FTI_ERR_INVALID,
                                 "batch decode: token %ld not below vocab %lu", (long)tokens[b],
                                 (unsigned long)e->V);
        if (ss[b]->pos >= ss[b]->n_ctx)
            return fti_error_set(err, FTI_ERR_LIMIT, "batch decode: sequence %lu: context full",
                                 (unsigned long)b);
    }
    for (b = 0; b < B; b++) {
        d->ss[b] = ss[b];
        d->pos[b] = ss[b]->pos;
        d->lrows[b] = ss[b]->logits;
    }
    rc = fti__bt_forward(d, tokens, B, pool);
    if (rc != FTI_OK)
        return fti_error_set(err, rc, "batch decode: forward failed: %s", fti_result_str(rc));
    for (b = 0; b < B; b++) ss[b]->pos++;
    return FTI_OK;
}

FTIDEF fti_result fti_batch_prefill(fti_batch *d, fti_session *s, const int32_t *tokens, size_t n,
                                    float *logits_out, fti_pool *pool, fti_error *err) {
    const fti_engine *e;
    size_t i, b;
    if (!d || !s || (!tokens && n))
        return fti_error_set(err, FTI_ERR_INVALID, "batch prefill: NULL argument");
    e = d->e;
    if (s->e != e || s->n_ctx > d->max_ctx)
        return fti_error_set(err, FTI_ERR_INVALID, "batch prefill: foreign session");
    if (n > s->n_ctx - s->pos)
        return fti_error_set(err, FTI_ERR_LIMIT,
                             "batch prefill: %lu tokens do not fit: %lu of %lu context positions "
                             "used", (unsigned long)n, (unsigned long)s->pos,
                             (unsigned long)s->n_ctx);
    for (i = 0; i < n; i++)
        if (tokens[i] < 0 || (size_t)tokens[i] >= e->V)
            return fti_error_set(err, FTI_ERR_INVALID,
                                 "batch prefill: token %ld at %lu not below vocab %lu",
                                 (long)tokens[i], (unsigned long)i, (unsigned long)e->V);
    for (i = 0; i < n; i += d->max_batch) {
        size_t T = n - i < d->max_batch ? n - i : d->max_batch;
        fti_result rc;
        for (b = 0; b < T; b++) {
            d->ss[b] = s;
            d->pos[b] = s->pos + b;
            d->lrows[b] = logits_out ? logits_out + (i + b) * e->V
                          : i + b + 1 == n ? s->logits : NULL;
        }
        rc = fti__bt_forward(d, tokens + i, T, pool);
        if (rc != FTI_OK)
            return fti_error_set(err, rc, "batch prefill: forward failed: %s", fti_result_str(rc));
        s->pos += T;
    }
    if (logits_out && n) memcpy(s->logits, logits_out + (n - 1) * e->V, e->V * sizeof(float));
    return FTI_OK;
}

/* --- sampling ------------------------------------------------------------------------------- */

struct fti_sampler {
    fti_sampler_opts o;
    size_t V;
    fti_rng rng;
    const fti_kernels *k; /* vector exp for the dense softmax */
    float *probs;      /* (V) */
    int32_t *idx;      /* (V) candidate ids */
    int32_t *counts;   /* (V) occurrences in the window */
    uint32_t *stamp;   /* (V) for applying each penalized token once */
    uint32_t stamp_now;
    int32_t *hist;     /* ring of the last penalty_last_n tokens */
    size_t hist_n, hist_head;
};

FTIDEF fti_result fti_sampler_create(fti_sampler **out, size_t n_vocab,
                                     const fti_sampler_opts *opts) {
    fti_sampler *s;
    if (!out || n_vocab == 0 || n_vocab > 0x7fffffff) return FTI_ERR_INVALID;
    *out = NULL;
    s = (fti_sampler *)fti_calloc(1, sizeof *s);
    if (!s) return FTI_ERR_NOMEM;
    if (opts) s->o = *opts;
    if (s->o.penalty_last_n == 0) s->o.penalty_last_n = 64;
    /* the window is allocated: no longer than the longest context a session can have (a
     * session refuses n_ctx above 2^24), so a huge value is not an allocation of its size */
    if (s->o.penalty_last_n > ((size_t)1 << 24)) s->o.penalty_last_n = (size_t)1 << 24;
    s->V = n_vocab;
    s->k = fti_kernels_get(FTI_ISA_AUTO);
    s->probs = (float *)fti_calloc(n_vocab, sizeof(float));
    s->idx = (int32_t *)fti_calloc(n_vocab, sizeof(int32_t));
    s->counts = (int32_t *)fti_calloc(n_vocab, sizeof(int32_t));
    s->stamp = (uint32_t *)fti_calloc(n_vocab, sizeof(uint32_t));
    /* only its first hist_n entries are ever read: not cleared (a large window stays untouched) */
    s->hist = (int32_t *)fti_malloc(s->o.penalty_last_n * sizeof(int32_t));
    if (!s->probs || !s->idx || !s->counts || !s->stamp || !s->hist) {
        fti_sampler_free(s);
        return FTI_ERR_NOMEM;
    }
    fti_sampler_reset(s);
    *out = s;
    return FTI_OK;
}

FTIDEF void fti_sampler_free(fti_sampler *s) {
    if (!s) return;
    fti_free(s->probs);
    fti_free(s->idx);
    fti_free(s->counts);
    fti_free(s->stamp);
    fti_free(s->hist);
    fti_free(s);
}

FTIDEF void fti_sampler_reset(fti_sampler *s) {
    if (!s) return;
    fti_rng_seed(&s->rng, s->o.seed, 0x5eed);
    memset(s->counts, 0, s->V * sizeof(int32_t));
    s->hist_n = 0;
    s->hist_head = 0;
}

FTIDEF void fti_sampler_accept(fti_sampler *s, int32_t token) {
    size_t cap;
    if (!s || token < 0 || (size_t)token >= s->V) return;
    cap = s->o.penalty_last_n;
    if (s->hist_n == cap) { /* evict the oldest */
        s->counts[s->hist[s->hist_head]]--;
        s->hist[s->hist_head] = token;
        s->hist_head = (s->hist_head + 1) % cap;
    } else {
        s->hist[(s->hist_head + s->hist_n) % cap] = token;
        s->hist_n++;
    }
    s->counts[token]++;
}

static void fti__sampler_penalize(fti_sampler *s, float *logits) {
    const fti_sampler_opts *o = &s->o;
    size_t i, cap = o->penalty_last_n;
    int rep = o->repeat_penalty > 0.0f && o->repeat_penalty != 1.0f;
    if (!rep && o->frequency_penalty == 0.0f && o->presence_penalty == 0.0f) return;
    if (++s->stamp_now == 0) { /* wrapped: clear the stamps */
        memset(s->stamp, 0, s->V * sizeof(uint32_t));
        s->stamp_now = 1;
    }
    for (i = 0; i < s->hist_n; i++) {
        int32_t t = s->hist[(s->hist_head + i) % cap];
        float *lg = &logits[t];
        if (s->stamp[t] == s->stamp_now) continue;
        s->stamp[t] = s->stamp_now;
        if (rep) *lg = *lg > 0.0f ? *lg / o->repeat_penalty : *lg * o->repeat_penalty;
        *lg -= (float)s->counts[t] * o->frequency_penalty + o->presence_penalty;
    }
}

/* Partial selection: moves the k largest (by logit) of idx[0..n) to the front, unordered. */
static void fti__sampler_select(int32_t *idx, size_t n, size_t k, const float *logits) {
    size_t lo = 0, hi = n; /* the k-th largest lies in [lo, hi) */
    if (k >= n) return;
    while (hi - lo > 1) {
        /* median of three pivot, three-way partition by value (descending) */
        float a = logits[idx[lo]], b = logits[idx[lo + (hi - lo) / 2]], c = logits[idx[hi - 1]];
        float piv = a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            float v = logits[idx[i]];
            if (v > piv) {
                int32_t tmp = idx[lt];
                idx[lt++] = idx[i];
                idx[i++] = tmp;
            } else if (v < piv) {
                int32_t tmp = idx[--gt];
                idx[gt] = idx[i];
                idx[i] = tmp;
            } else {
                i++;
            }
        }
        if (k <= lt) hi = lt;
        else if (k <= gt) return; /* the k-th falls among the equal values */
        else lo = gt;
    }
}

/* Sorts idx[0..n) by logit descending, ties by id ascending (insertion sort for small n,
 * otherwise qsort needs the logits: done by shell sort to stay allocation- and global-free). */
static int fti__sampler_before(const float *logits, int32_t a, int32_t b) {
    float la = logits[a], lb = logits[b];
    return la > lb || (la == lb && a < b);
}

static void fti__sampler_sort(int32_t *idx, size_t n, const float *logits) {
    size_t gap, i, j;
    for (gap = n / 2; gap > 0; gap /= 2)
        for (i = gap; i < n; i++) {
            int32_t t = idx[i];
            for (j = i; j >= gap && !fti__sampler_before(logits, idx[j - gap], t); j -= gap)
                idx[j] = idx[j - gap];
            idx[j] = t;
        }
}

/* The draw: the first i < n with r < Σ_{j<=i} q_j, q_j = p[idx ? idx[j] : j]·mul rounded to float
 * (mul = 1: p itself; else what scaling p by mul in place gives), the sums in double and in
 * j order (the specification, fti__sampler_draw_ref), or n-1 when there is none. The serial
 * sum is one dependent double add per token (latency-bound: ~30 µs over 32000 tokens), so the
 * draw first sums blocks of 64 with 8 independent accumulators, walks the block sums, and
 * inside the block found continues serially from their total: sums A_i that differ from the
 * specification's S_i by at most 2·n·2^-53 of the total (both are sums of the same nonnegative
 * terms). When r lies farther than n·1e-15·total from A_{i-1} and A_i the answer is exactly
 * the specification's (S is nondecreasing); otherwise, or when no A_i exceeds r, the serial
 * reference decides. */
static size_t fti__sampler_draw_ref(const float *p, const int32_t *idx, size_t n, float mul,
                                    double r) {
    double acc = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        acc += p[idx ? (size_t)idx[i] : i] * mul;
        if (r < acc) return i;
    }
    return n - 1;
}

static size_t fti__sampler_draw(const float *p, const int32_t *idx, size_t n, float mul,
                                double r) {
    double cum = 0.0, before = 0.0, margin, acc;
    size_t b0, i, found = n;
    if (n < 256) return fti__sampler_draw_ref(p, idx, n, mul, r);
    for (b0 = 0; b0 < n; b0 += 64) {
        double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        size_t e = n - b0 < 64 ? n : b0 + 64, j;
        if (idx) {
            for (i = b0; i + 8 <= e; i += 8)
                for (j = 0; j < 8; j++) a[j] += p[idx[i + j]] * mul;
            for (; i < e; i++) a[0] += p[idx[i]] * mul;
        } else {
            for (i = b0; i + 8 <= e; i += 8)
                for (j = 0; j < 8; j++) a[j] += p[i + j] * mul;
            for (; i < e; i++) a[0] += p[i] * mul;
        }
        if (found == n) before = cum;
        cum += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        if (found == n && r < cum) found = b0; /* keep summing: the total sets the margin */
    }
    if (found == n) return fti__sampler_draw_ref(p, idx, n, mul, r);
    margin = (double)n * 1e-15 * cum;
    acc = before;
    for (i = found; i < n; i++) {
        double last = acc;
        acc += p[idx ? (size_t)idx[i] : i] * mul;
        if (r < acc) {
            if (r - last > margin && acc - r > margin) return i;
            break;
        }
    }
    return fti__sampler_draw_ref(p, idx, n, mul, r);
}

#if defined(FTI__X86) && !defined(FTI_NO_AVX512)
/* e = exp((x - mx)·inv_t) and Σe in one pass: fti__bt_shift_scale followed by the AVX-512
 * tables' exp_sum(e, e, n, 0) (fti__exp_sum_avx512), fused with the same arithmetic (the
 * subtraction and product, the table's vector exp of v - 0, one accumulator with the masked
 * tail, the same horizontal sum), so the same bits with one pass over the row instead of two. */
FTI__AVX512 static float fti__sampler_exp_sum_avx512(float *e, const float *x, float mx,
                                                    float inv_t, size_t n) {
    __m512 s = _mm512_setzero_ps(), vm = _mm512_set1_ps(mx), vi = _mm512_set1_ps(inv_t);
    __m512 z = _mm512_setzero_ps();
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vi);
        __m512 ex = fti__exp_avx512(_mm512_sub_ps(v, z));
        _mm512_mask_storeu_ps(e + i, m, ex);
        s = _mm512_mask_add_ps(s, m, s, ex);
    }
    return fti__hsum_avx512(s);
}
#endif

/* The dense case of fti_sampler_sample (temperature > 0, no top-k below V, no min-p, no top-p
 * below 1, every logit finite: each token is a candidate, in id order) with the general path's
 * arithmetic, so the same token comes out, but without the candidate index array: the max in
 * SIMD lanes (exact in any order), the temperature step in SIMD (the same two roundings), the
 * draw straight over probs. Batched serving
 * samples every sequence every step, where the index array's serial loops over the vocabulary
 * cost more than the softmax. Returns -2 when the case does not apply (nothing consumed). */
static int32_t fti__sampler_dense(fti_sampler *s, const float *logits) {
    const fti_sampler_opts *o = &s->o;
    size_t V = s->V;
    float mx, inv_t, sum;
    double r;
    int bad = 0;
    if ((o->top_k > 0 && (size_t)o->top_k < V) || o->min_p > 0.0f ||
        (o->top_p > 0.0f && o->top_p < 1.0f) || V < 8)
        return -2;
    mx = fti__bt_max_finite(s->k, logits, V, &bad);
    if (bad) return -2;
    inv_t = 1.0f / o->temperature;
    /* fti_softmax_fwd's steps without its max pass: the shifted row's max is 0 (x = mx gives
     * exactly 0, the others x - mx < 0 times inv_t > 0), so exp(x - 0) and the same bits; the
     * normalisation (p = e · (1/Σe), the table's scale) is done by the draw as it reads */
#if defined(FTI__X86) && !defined(FTI_NO_AVX512)
    if (s->k->exp_sum == fti__exp_sum_avx512) {
        sum = fti__sampler_exp_sum_avx512(s->probs, logits, mx, inv_t, V);
    } else
#endif
    {
        fti__bt_shift_scale(s->k, s->probs, logits, mx, inv_t, V);
        sum = s->k->exp_sum(s->probs, s->probs, V, 0.0f);
    }
    r = fti_rng_double(&s->rng) * 1.0; /* the probabilities sum to 1 */
    return (int32_t)fti__sampler_draw(s->probs, NULL, V, 1.0f / sum, r);
}

FTIDEF int32_t fti_sampler_sample(fti_sampler *s, float *logits) {
    const fti_sampler_opts *o;
    size_t V, i, n, k;
    double sum, acc, r;
    float mx, inv_t, thr;
    if (!s || !logits) return -1;
    o = &s->o;
    V = s->V;
    fti__sampler_penalize(s, logits);
    /* greedy: temperature 0 (or below, or NaN), or so small that 1/temperature overflows (a
     * subnormal temperature, e.g. a request's 1e-40: inf·0 would make the top token's weight
     * NaN) */
    if (!(o->temperature > 0.0f) || !(1.0f / o->temperature < INFINITY)) {
        size_t best = V;
        int bad = 1;
        if (V >= 8) { /* no NaN: the first id holding the max (SIMD max, exact in any order) */
            float m = fti__bt_max_finite(s->k, logits, V, &bad);
            for (i = 0; !bad && i < V; i++)
                if (logits[i] == m) return (int32_t)i;
        }
        for (i = 0; i < V; i++)
            if (logits[i] == logits[i] && (best == V || logits[i] > logits[best])) best = i;
        return best == V ? -1 : (int32_t)best;
    }
    {
        int32_t t = fti__sampler_dense(s, logits);
        if (t != -2) return t;
    }
    /* candidates: finite logits */
    n = 0;
    for (i = 0; i < V; i++)
        if (logits[i] == logits[i] && logits[i] > -INFINITY) s->idx[n++] = (int32_t)i;
    if (n == 0) return -1;
    k = (o->top_k > 0 && (size_t)o->top_k < n) ? (size_t)o->top_k : n;
    if (k < n) {
        fti__sampler_select(s->idx, n, k, logits);
        n = k;
    }
    /* softmax with temperature over the candidates */
    inv_t = 1.0f / o->temperature;
    mx = -INFINITY;
    for (i = 0; i < n; i++)
        if (logits[s->idx[i]] > mx) mx = logits[s->idx[i]];
    if (mx == INFINITY) { /* +inf logits (inf - inf is NaN): only they can be drawn, alike */
        size_t m = 0;
        for (i = 0; i < n; i++)
            if (logits[s->idx[i]] == INFINITY) s->idx[m++] = s->idx[i];
        return s->idx[fti_rng_below(&s->rng, (uint32_t)m)];
    }
    sum = 0.0;
    /* min_p above 1 keeps the most likely token(s) only (it would drop every candidate) */
    thr = o->min_p < 1.0f ? o->min_p : 1.0f; /* p_max is exp(0) = 1 before normalisation */
    if (n == V) {
        /* every token is a candidate (no top-k, all logits finite): one vectorised softmax over
         * the whole row (exp per token dominated batched serving when done one at a time) */
        size_t imx = 0;
        for (i = 0; i < V; i++) {
            s->probs[i] = (logits[i] - mx) * inv_t;
            if (logits[i] == mx) imx = i;
        }
        fti_softmax_fwd(s->k, s->probs, s->probs, 1, V);
        /* normalised; the draw below stops at the last candidate if rounding fell short */
        sum = 1.0;
        thr = (o->min_p < 1.0f ? o->min_p : 1.0f) * s->probs[imx];
    } else {
        for (i = 0; i < n; i++) {
            float p = (float)exp((double)((logits[s->idx[i]] - mx) * inv_t));
            s->probs[s->idx[i]] = p;
            sum += p;
        }
    }
    if (o->min_p > 0.0f) {
        size_t m = 0;
        for (i = 0; i < n; i++)
            if (s->probs[s->idx[i]] >= thr) s->idx[m++] = s->idx[i];
            else sum -= s->probs[s->idx[i]];
        n = m;
    }
    if (o->top_p > 0.0f && o->top_p < 1.0f && n > 1) {
        /* grow a sorted prefix until it holds top_p of the mass (usually a few dozen tokens) */
        size_t want = 64, cut = n;
        for (;;) {
            size_t m = want < n ? want : n;
            fti__sampler_select(s->idx, n, m, logits);
            fti__sampler_sort(s->idx, m, logits);
            acc = 0.0;
            for (i = 0; i < m; i++) {
                acc += s->probs[s->idx[i]];
                if (acc >= o->top_p * sum) {
                    cut = i + 1;
                    break;
                }
            }
            if (i < m || m == n) break;
            want *= 4;
        }
        sum = 0.0;
        for (i = 0; i < cut; i++) sum += s->probs[s->idx[i]];
        n = cut;
    }
    /* the candidates' order depends only on the logits, so the draw is reproducible */
    r = fti_rng_double(&s->rng) * sum;
    return s->idx[fti__sampler_draw(s->probs, s->idx, n, 1.0f, r)];
}

/* --- generation ----------------------------------------------------------------------------- */

/* Streaming state: bytes decoded but not yet shown (a possible stop-string prefix or an
 * incomplete UTF-8 tail). Its buffer is reserved before the loop. */
typedef struct fti__gen_out {
    const fti_generate_opts *o;
    fti_buf pend;
    fti_buf tmp; /* UTF-8 repair output */
    size_t max_stop;
    int stopped; /* 1 stop string seen, 2 callback asked to stop */
} fti__gen_out;

static int fti__gen_emit(fti__gen_out *g, const char *p, size_t n) {
    size_t m;
    if (n == 0) return 0;
    g->tmp.len = 0;
    fti_utf8_repair((const unsigned char *)p, n, &g->tmp);
    m = g->tmp.len;
    if (g->o->text) fti_buf_append(g->o->text, g->tmp.data, m);
    if (g->o->on_text && g->o->on_text(g->o->user, g->tmp.data, m)) return 1;
    return 0;
}

/* Adds bytes; emits what can no longer be part of a stop string or a split character. */
static void fti__gen_push(fti__gen_out *g, const char *p, size_t n, int final) {
    size_t i, keep = 0, avail, cut = (size_t)-1;
    fti_buf_append(&g->pend, p, n);
    for (i = 0; i < g->o->n_stop; i++) { /* earliest complete stop string */
        const char *st = g->o->stop[i];
        size_t sl = st ? strlen(st) : 0, j;
        if (sl == 0 || sl > g->pend.len) continue;
        for (j = 0; j + sl <= g->pend.len; j++)
            if (memcmp(g->pend.data + j, st, sl) == 0) {
                if (j < cut) cut = j;
                break;
            }
    }
    if (cut != (size_t)-1) {
        if (fti__gen_emit(g, g->pend.data, cut)) g->stopped = 2;
        else g->stopped = 1;
        g->pend.len = 0;
        return;
    }
    if (!final) {
        for (i = 0; i < g->o->n_stop; i++) { /* longest tail that starts a stop string */
            const char *st = g->o->stop[i];
            size_t sl = st ? strlen(st) : 0, t;
            for (t = sl > 1 ? sl - 1 : 0; t > keep; t--)
                if (t <= g->pend.len && memcmp(g->pend.data + g->pend.len - t, st, t) == 0) {
                    keep = t;
                    break;
                }
        }
        avail = g->pend.len - keep;
        avail -= fti_utf8_incomplete_tail((const unsigned char *)g->pend.data, avail);
    } else {
        avail = g->pend.len;
    }
    if (fti__gen_emit(g, g->pend.data, avail)) g->stopped = 2;
    memmove(g->pend.data, g->pend.data + avail, g->pend.len - avail);
    g->pend.len -= avail;
}

FTIDEF fti_result fti_generate(fti_session *s, fti_sampler *smp, const int32_t *prompt,
                               size_t n_prompt, const fti_generate_opts *opts,
                               fti_generate_stats *stats, fti_error *err) {
    fti_generate_opts dflt;
    fti__gen_out go;
    fti_generate_stats st;
    uint64_t t0, t1;
    size_t i, n_gen = 0, n_recent = 0;
    int32_t recent[FTI_GENERATE_RECENT]; /* for on_logits: the last tokens, oldest first */
    fti_result rc = FTI_OK;
    const fti_engine *e;
    if (!s || !smp)
        return fti_error_set(err, FTI_ERR_INVALID, "generate: NULL %s", s ? "sampler" : "session");
    if (!prompt && n_prompt)
        return fti_error_set(err, FTI_ERR_INVALID, "generate: prompt NULL with n_prompt %lu",
                             (unsigned long)n_prompt);
    if (smp->V != s->e->V) /* it reads V logits */
        return fti_error_set(err, FTI_ERR_INVALID,
                             "generate: the sampler is for %lu tokens, the model's vocabulary has "
                             "%lu (create it with fti_engine_config(e)->vocab_size)",
                             (unsigned long)smp->V, (unsigned long)s->e->V);
    e = s->e;
    if (!opts) {
        memset(&dflt, 0, sizeof dflt);
        opts = &dflt;
    }
    if (opts->n_stop && !opts->stop)
        return fti_error_set(err, FTI_ERR_INVALID, "generate: n_stop %lu with no stop strings",
                             (unsigned long)opts->n_stop);
    memset(&st, 0, sizeof st);
    memset(&go, 0, sizeof go);
    go.o = opts;
    for (i = 0; i < opts->n_stop; i++)
        if (opts->stop[i] && strlen(opts->stop[i]) > go.max_stop)
            go.max_stop = strlen(opts->stop[i]);
    if (!fti_buf_reserve(&go.pend, go.max_stop + 2 * e->max_token_bytes + 16) ||
        !fti_buf_reserve(&go.tmp, 3 * (go.max_stop + 2 * e->max_token_bytes + 16)))
        rc = fti_error_set(err, FTI_ERR_NOMEM, "generate: out of memory");
    if (rc == FTI_OK && n_prompt == 0 && s->pos == 0)
        rc = fti_error_set(err, FTI_ERR_INVALID, "generate: empty prompt");
    t0 = fti_time_ns();
    if (rc == FTI_OK && n_prompt) rc = fti_session_eval(s, prompt, n_prompt, NULL, err);
    t1 = fti_time_ns();
    st.n_prompt = n_prompt;
    st.prefill_s = (double)(t1 - t0) * 1e-9;
    if (rc == FTI_OK && !opts->no_penalize_prompt)
        for (i = 0; i < n_prompt; i++) fti_sampler_accept(smp, prompt[i]);
    memset(recent, 0, sizeof recent);
    for (i = n_prompt > FTI_GENERATE_RECENT ? n_prompt - FTI_GENERATE_RECENT : 0; i < n_prompt; i++)
        recent[n_recent++] = prompt[i];
    while (rc == FTI_OK) {
        int32_t tok;
        const char *bytes;
        size_t nb = 0;
        if (opts->on_logits)
            opts->on_logits(opts->logits_user, s->logits, e->V, recent, n_recent);
        tok = fti_sampler_sample(smp, s->logits);
        if (n_gen == 0) st.first_token_s = (double)(fti_time_ns() - t0) * 1e-9;
        if (tok < 0) {
            rc = fti_error_set(err, FTI_ERR_NUMERIC, "generate: logits are all NaN");
            break;
        }
        n_gen++;
        if (opts->tokens && n_gen <= opts->tokens_cap) opts->tokens[n_gen - 1] = tok;
        fti_sampler_accept(smp, tok);
        if (n_recent == FTI_GENERATE_RECENT)
            memmove(recent, recent + 1, --n_recent * sizeof *recent);
        recent[n_recent++] = tok;
        if (tok == e->eos && !opts->ignore_eos) {
            st.finish = FTI_FINISH_EOS;
            break;
        }
        bytes = fti_engine_token_bytes(e, tok, &nb);
        fti__gen_push(&go, bytes, nb, 0);
        /* evaluated even when generation ends here, so the session holds every token shown
         * and a next call (a continuation, a chat's next turn) follows on from all of them */
        if (s->pos >= s->n_ctx) st.finish = FTI_FINISH_CONTEXT;
        else rc = fti_session_eval(s, &tok, 1, NULL, err);
        if (opts->max_tokens && n_gen >= opts->max_tokens) st.finish = FTI_FINISH_LENGTH;
        if (go.stopped) st.finish = go.stopped == 1 ? FTI_FINISH_STOP : FTI_FINISH_CALLBACK;
        if (st.finish) break;
    }
    if (rc == FTI_OK && !go.stopped) fti__gen_push(&go, "", 0, 1); /* flush */
    st.n_generated = n_gen;
    st.decode_s = (double)(fti_time_ns() - t1) * 1e-9;
    if (stats) *stats = st;
    fti_buf_free(&go.pend);
    fti_buf_free(&go.tmp);
    return rc;
}

/* A logit as fti_logprobs_top orders it: NaN as -inf. */
static float fti__lp_val(const float *logits, int32_t i) {
    float v = logits[i];
    return v == v ? v : -INFINITY;
}

FTIDEF double fti_logprobs_top(const float *logits, size_t n, size_t k, int32_t *ids,
                               float *logprobs) {
    size_t i, j;
    float mx = -INFINITY, thr;
    double sum = 0, lse;
    const fti_kernels *kt = fti_kernels_get(FTI_ISA_AUTO);
    int bad = 1;
    if (!logits || !n) return -INFINITY;
    if (k > n) k = n;
    if (n >= 8) mx = fti__bt_max_finite(kt, logits, n, &bad); /* SIMD; bad: a NaN or an inf */
    if (bad)
        for (i = 0, mx = -INFINITY; i < n; i++) /* NaN compares false: never the max */
            if (logits[i] > mx) mx = logits[i];
    if (mx == -INFINITY || mx == INFINITY) {
        lse = mx;
    } else { /* the kernel table's vector exp, 256 at a time, the sums added in double */
        float tmp[256];
        for (i = 0; i < n; i += 256)
            sum += (double)kt->exp_sum(tmp, logits + i, n - i < 256 ? n - i : 256, mx);
        if (sum != sum) { /* a NaN among them: the slow way, NaN as -inf */
            sum = 0;
            for (i = 0; i < n; i++)
                if (logits[i] > -INFINITY) sum += exp((double)logits[i] - (double)mx);
        }
        lse = (double)mx + log(sum);
    }
    if (!k || !ids) return lse;
    /* the first k in order (insertion), then a token enters only when it beats the last one kept
     * (thr; a tie stays behind: the lower id, seen first, leads; NaN never beats it) */
    for (i = 0; i < k; i++) {
        float v = fti__lp_val(logits, (int32_t)i);
        for (j = i; j > 0 && v > fti__lp_val(logits, ids[j - 1]); j--) ids[j] = ids[j - 1];
        ids[j] = (int32_t)i;
    }
    thr = fti__lp_val(logits, ids[k - 1]);
    for (; (i = fti__first_above(kt, logits, i, n, thr)) < n; i++) {
        float v = logits[i];
        for (j = k - 1; j > 0 && v > fti__lp_val(logits, ids[j - 1]); j--) ids[j] = ids[j - 1];
        ids[j] = (int32_t)i;
        thr = fti__lp_val(logits, ids[k - 1]);
    }
    for (j = 0; logprobs && j < k; j++) {
        float v = fti__lp_val(logits, ids[j]);
        /* every logit -inf: every token -inf; some +inf: those share the mass (0), others -inf */
        logprobs[j] = lse == INFINITY ? (v == INFINITY ? 0.0f : -INFINITY)
                      : lse == -INFINITY ? -INFINITY
                                         : (float)((double)v - lse);
    }
    return lse;
}

FTIDEF size_t fti_prompt_fit(const int32_t *header, size_t n_header, const int32_t *body,
                             size_t n_body, size_t max_tokens, int32_t *out) {
    size_t keep;
    if (!out || n_header > max_tokens || (n_header && !header) || (n_body && !body)) return 0;
    if (n_header) memcpy(out, header, n_header * sizeof(int32_t));
    keep = n_body < max_tokens - n_header ? n_body : max_tokens - n_header;
    if (keep) memcpy(out + n_header, body + (n_body - keep), keep * sizeof(int32_t));
    return n_header + keep;
}

/* === infer: author memory (n-gram model, mixing) === */

/* One order's table: n distinct k-grams, sorted lexicographically, k ids each, and their
 * counts (raw at the highest order, distinct left contexts below it). */
typedef struct fti__ng_order {
    uint32_t *ids;  /* (n, k) */
    uint32_t *cnt;  /* (n) */
    size_t n;
    double d[4];    /* discount for count 1, 2, 3+ (d[0] unused) */
} fti__ng_order;

struct fti_ngram {
    int order;
    size_t V;
    uint64_t n_tokens;
    fti__ng_order t[FTI_NGRAM_MAX_ORDER + 1]; /* t[k], k = 1..order */
    float lambda[FTI_NGRAM_MAX_ORDER];        /* by confidence 0..order-1 */
};

FTIDEF void fti_ngram_free(fti_ngram *m) {
    int k;
    if (!m) return;
    for (k = 1; k <= FTI_NGRAM_MAX_ORDER; k++) {
        fti_free(m->t[k].ids);
        fti_free(m->t[k].cnt);
    }
    fti_free(m);
}

#define FTI__NG_MIN_DISCOUNT 0.05
/* Modified Kneser-Ney discounts of one order from its count-of-counts (Chen & Goodman):
 * Y = n1/(n1+2 n2), D_c = c - (c+1) Y n_{c+1}/n_c, each kept within [0.05, c]; 0.5/1/1.5 when
 * a count-of-count is missing (tiny texts). */
static void fti__ng_discounts(fti__ng_order *o) {
    double nc[5] = {0, 0, 0, 0, 0}, y;
    size_t i;
    int c;
    for (i = 0; i < o->n; i++)
        if (o->cnt[i] <= 4) nc[o->cnt[i]] += 1;
    o->d[0] = 0;
    if (nc[1] > 0 && nc[2] > 0 && nc[3] > 0 && nc[4] > 0) {
        y = nc[1] / (nc[1] + 2 * nc[2]);
        for (c = 1; c <= 3; c++) {
            double d = c - (c + 1) * y * nc[c + 1] / nc[c];
            /* at least FTI__NG_MIN_DISCOUNT: some mass always goes to the lower order, so
             * every token keeps p > 0 */
            o->d[c] = d < FTI__NG_MIN_DISCOUNT ? FTI__NG_MIN_DISCOUNT : d > c ? c : d;
        }
    } else {
        o->d[1] = 0.5;
        o->d[2] = 1.0;
        o->d[3] = 1.5;
    }
}

/* Lexicographic compare of two k-id rows. */
static int fti__ng_cmp(const uint32_t *a, const uint32_t *b, int k) {
    int j;
    for (j = 0; j < k; j++)
        if (a[j] != b[j]) return a[j] < b[j] ? -1 : 1;
    return 0;
}

/* The rows of order k whose first k-1 ids are h: [*lo, *hi). 0 when there are none. */
static int fti__ng_range(const fti__ng_order *o, int k, const uint32_t *h, size_t *lo,
                         size_t *hi) {
    size_t a = 0, b = o->n;
    if (k == 1) {
        *lo = 0;
        *hi = o->n;
        return o->n > 0;
    }
    while (a < b) { /* first row with prefix >= h */
        size_t mid = a + (b - a) / 2;
        if (fti__ng_cmp(o->ids + mid * (size_t)k, h, k - 1) < 0) a = mid + 1;
        else b = mid;
    }
    *lo = a;
    b = o->n;
    while (a < b) { /* first row with prefix > h */
        size_t mid = a + (b - a) / 2;
        if (fti__ng_cmp(o->ids + mid * (size_t)k, h, k - 1) <= 0) a = mid + 1;
        else b = mid;
    }
    *hi = a;
    return *hi > *lo;
}

/* Sum of counts of rows [lo, hi) and the discounted mass sum_w D(c(h w)) they give away. */
static void fti__ng_mass(const fti__ng_order *o, size_t lo, size_t hi, double *c_h,
                         double *gone) {
    size_t i;
    double s = 0, g = 0;
    for (i = lo; i < hi; i++) {
        uint32_t c = o->cnt[i];
        s += c;
        g += o->d[c < 3 ? c : 3];
    }
    *c_h = s;
    *gone = g;
}

static double fti__ng_disc(const fti__ng_order *o, uint32_t c) {
    double d = o->d[c < 3 ? c : 3];
    return (double)c > d ? (double)c - d : 0.0;
}

/* The usable context: the last (order-1) ids of ctx that are all in range. */
static size_t fti__ng_ctx(const fti_ngram *m, const int32_t *ctx, size_t n_ctx, uint32_t *h) {
    size_t want = (size_t)m->order - 1, n = 0, i;
    if (!ctx) return 0;
    while (n < want && n < n_ctx) {
        int32_t t = ctx[n_ctx - 1 - n];
        if (t < 0 || (size_t)t >= m->V) break;
        n++;
    }
    for (i = 0; i < n; i++) h[i] = (uint32_t)ctx[n_ctx - n + i];
    return n;
}

FTIDEF int fti_ngram_probs(const fti_ngram *m, const int32_t *ctx, size_t n_ctx, float *probs) {
    uint32_t h[FTI_NGRAM_MAX_ORDER];
    size_t nh, w, lo, hi, i;
    int k, conf = 0;
    double tmp;
    if (!m || !probs) return 0;
    nh = fti__ng_ctx(m, ctx, n_ctx, h);
    for (w = 0; w < m->V; w++) probs[w] = 1.0f / (float)m->V;
    for (k = 1; k <= m->order && (size_t)k - 1 <= nh; k++) {
        const fti__ng_order *o = &m->t[k];
        double c_h, gone;
        float gamma;
        if (!fti__ng_range(o, k, h + nh - (size_t)(k - 1), &lo, &hi)) break;
        fti__ng_mass(o, lo, hi, &c_h, &gone);
        if (!(c_h > 0)) break;
        gamma = (float)(gone / c_h);
        for (w = 0; w < m->V; w++) probs[w] *= gamma;
        for (i = lo; i < hi; i++) {
            tmp = fti__ng_disc(o, o->cnt[i]) / c_h;
            probs[o->ids[i * (size_t)k + (size_t)k - 1]] += (float)tmp;
        }
        conf = k - 1;
    }
    return conf;
}

FTIDEF double fti_ngram_prob(const fti_ngram *m, const int32_t *ctx, size_t n_ctx,
                             int32_t token, int *conf) {
    uint32_t h[FTI_NGRAM_MAX_ORDER + 1];
    size_t nh, lo, hi;
    int k, cf = 0;
    double p;
    if (conf) *conf = 0;
    if (!m || token < 0 || (size_t)token >= m->V) return 0.0;
    nh = fti__ng_ctx(m, ctx, n_ctx, h);
    p = 1.0 / (double)m->V;
    for (k = 1; k <= m->order && (size_t)k - 1 <= nh; k++) {
        const fti__ng_order *o = &m->t[k];
        double c_h, gone, c = 0;
        size_t a, b;
        if (!fti__ng_range(o, k, h + nh - (size_t)(k - 1), &lo, &hi)) break;
        fti__ng_mass(o, lo, hi, &c_h, &gone);
        if (!(c_h > 0)) break;
        a = lo;
        b = hi; /* the row ending in token: the last ids of the range are sorted */
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (o->ids[mid * (size_t)k + (size_t)k - 1] < (uint32_t)token) a = mid + 1;
            else b = mid;
        }
        if (a < hi && o->ids[a * (size_t)k + (size_t)k - 1] == (uint32_t)token)
            c = fti__ng_disc(o, o->cnt[a]);
        p = c / c_h + gone / c_h * p;
        cf = k - 1;
    }
    if (conf) *conf = cf;
    return p;
}

/* LSD radix sort of positions p[0..n) by the order-long id strings starting there (an id past
 * the end counts as smaller than every id). tmp: n positions, cnt: V + 2 slots. */
static void fti__ng_sort(uint32_t *p, uint32_t *tmp, size_t *cnt, const uint32_t *ids, size_t n,
                         size_t V, int order) {
    int j;
    size_t i;
    for (j = order - 1; j >= 0; j--) {
        size_t sum = 0;
        memset(cnt, 0, (V + 2) * sizeof *cnt);
        for (i = 0; i < n; i++) {
            size_t at = (size_t)p[i] + (size_t)j;
            cnt[at < n ? ids[at] + 1 : 0]++;
        }
        for (i = 0; i < V + 2; i++) {
            size_t c = cnt[i];
            cnt[i] = sum;
            sum += c;
        }
        for (i = 0; i < n; i++) {
            size_t at = (size_t)p[i] + (size_t)j;
            tmp[cnt[at < n ? ids[at] + 1 : 0]++] = p[i];
        }
        memcpy(p, tmp, n * sizeof *p);
    }
}

/* The row of order k equal to g (k ids), or (size_t)-1. */
static size_t fti__ng_find(const fti__ng_order *o, int k, const uint32_t *g) {
    size_t a = 0, b = o->n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        int c = fti__ng_cmp(o->ids + mid * (size_t)k, g, k);
        if (c == 0) return mid;
        if (c < 0) a = mid + 1;
        else b = mid;
    }
    return (size_t)-1;
}

static fti_ngram *fti__ng_new(int order, size_t V) {
    fti_ngram *m = (fti_ngram *)fti_calloc(1, sizeof *m);
    int c;
    if (!m) return NULL;
    m->order = order;
    m->V = V;
    for (c = 0; c < FTI_NGRAM_MAX_ORDER; c++) m->lambda[c] = 0.25f;
    return m;
}

FTIDEF fti_result fti_ngram_build(fti_ngram **out, const uint32_t *ids, size_t n_ids,
                                  size_t n_vocab, const fti_ngram_opts *opts, fti_error *err) {
    int order = opts && opts->order ? opts->order : 5, k;
    fti_ngram *m = NULL;
    uint32_t *pos = NULL, *tmp = NULL;
    size_t *cnt = NULL, i;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "ngram: NULL argument");
    *out = NULL;
    if (order < 1 || order > FTI_NGRAM_MAX_ORDER)
        return fti_error_set(err, FTI_ERR_INVALID, "ngram: order %d is not within 1..%d", order,
                             FTI_NGRAM_MAX_ORDER);
    if (n_vocab == 0 || n_vocab > FTI_NGRAM_MAX_VOCAB)
        return fti_error_set(err, FTI_ERR_INVALID, "ngram: vocabulary %zu is not within 1..%u",
                             n_vocab, (unsigned)FTI_NGRAM_MAX_VOCAB);
    if (n_ids > FTI_NGRAM_MAX_TOKENS)
        return fti_error_set(err, FTI_ERR_LIMIT, "ngram: %zu tokens (at most %zu)", n_ids,
                             (size_t)FTI_NGRAM_MAX_TOKENS);
    if (n_ids && !ids) return fti_error_set(err, FTI_ERR_INVALID, "ngram: NULL ids");
    for (i = 0; i < n_ids; i++)
        if (ids[i] >= n_vocab)
            return fti_error_set(err, FTI_ERR_INVALID, "ngram: token %zu is id %u, vocabulary %zu",
                                 i, (unsigned)ids[i], n_vocab);
    m = fti__ng_new(order, n_vocab);
    pos = (uint32_t *)fti_calloc(n_ids ? n_ids : 1, sizeof *pos);
    tmp = (uint32_t *)fti_calloc(n_ids ? n_ids : 1, sizeof *tmp);
    cnt = (size_t *)fti_calloc(n_vocab + 2, sizeof *cnt);
    if (!m || !pos || !tmp || !cnt) goto nomem;
    m->n_tokens = n_ids;
    for (i = 0; i < n_ids; i++) pos[i] = (uint32_t)i;
    fti__ng_sort(pos, tmp, cnt, ids, n_ids, n_vocab, order);
    /* each order's distinct k-grams and raw counts, in the sorted order */
    for (k = 1; k <= order; k++) {
        fti__ng_order *o = &m->t[k];
        size_t n = 0, prev = (size_t)-1;
        for (i = 0; i < n_ids; i++) {
            size_t p = pos[i];
            if (p + (size_t)k > n_ids) continue;
            if (prev == (size_t)-1 || memcmp(ids + p, ids + prev, (size_t)k * sizeof *ids) != 0)
                n++;
            prev = p;
        }
        o->ids = (uint32_t *)fti_calloc(n ? n * (size_t)k : 1, sizeof *o->ids);
        o->cnt = (uint32_t *)fti_calloc(n ? n : 1, sizeof *o->cnt);
        if (!o->ids || !o->cnt) goto nomem;
        n = 0;
        prev = (size_t)-1;
        for (i = 0; i < n_ids; i++) {
            size_t p = pos[i];
            if (p + (size_t)k > n_ids) continue;
            if (prev == (size_t)-1 || memcmp(ids + p, ids + prev, (size_t)k * sizeof *ids) != 0) {
                memcpy(o->ids + n * (size_t)k, ids + p, (size_t)k * sizeof *ids);
                n++;
            }
            o->cnt[n - 1]++;
            prev = p;
        }
        o->n = n;
    }
    /* below the highest order: distinct left contexts (continuation counts), zeros dropped */
    for (k = 1; k < order; k++) {
        fti__ng_order *o = &m->t[k], *up = &m->t[k + 1];
        size_t n = 0;
        memset(o->cnt, 0, (o->n ? o->n : 1) * sizeof *o->cnt);
        for (i = 0; i < up->n; i++) {
            size_t r = fti__ng_find(o, k, up->ids + i * (size_t)(k + 1) + 1);
            if (r != (size_t)-1) o->cnt[r]++;
        }
        for (i = 0; i < o->n; i++)
            if (o->cnt[i]) {
                memmove(o->ids + n * (size_t)k, o->ids + i * (size_t)k, (size_t)k * sizeof *o->ids);
                o->cnt[n++] = o->cnt[i];
            }
        o->n = n;
    }
    for (k = 1; k <= order; k++) fti__ng_discounts(&m->t[k]);
    fti_free(pos);
    fti_free(tmp);
    fti_free(cnt);
    *out = m;
    return FTI_OK;
nomem:
    fti_free(pos);
    fti_free(tmp);
    fti_free(cnt);
    fti_ngram_free(m);
    return fti_error_set(err, FTI_ERR_NOMEM, "ngram: out of memory (%zu tokens)", n_ids);
}

FTIDEF int fti_ngram_order(const fti_ngram *m) { return m ? m->order : 0; }
FTIDEF size_t fti_ngram_vocab(const fti_ngram *m) { return m ? m->V : 0; }
FTIDEF uint64_t fti_ngram_n_tokens(const fti_ngram *m) { return m ? m->n_tokens : 0; }
FTIDEF size_t fti_ngram_count(const fti_ngram *m, int k) {
    return m && k >= 1 && k <= m->order ? m->t[k].n : 0;
}

FTIDEF float fti_ngram_lambda(const fti_ngram *m, int conf) {
    if (!m) return 0.0f;
    if (conf >= m->order) conf = m->order - 1;
    if (conf < 0) conf = 0;
    return conf < FTI_NGRAM_MAX_ORDER ? m->lambda[conf] : 0.0f;
}

FTIDEF void fti_ngram_set_lambda(fti_ngram *m, int conf, float lambda) {
    int c;
    if (!m) return;
    if (!(lambda >= 0.0f)) lambda = 0.0f; /* NaN too */
    if (lambda > 1.0f) lambda = 1.0f;
    for (c = 0; c < m->order && c < FTI_NGRAM_MAX_ORDER; c++)
        if (conf < 0 || conf == c) m->lambda[c] = lambda;
}

static int fti__ng_usable(double pm, double pn, int conf, int order) {
    return pm > 0 && pm <= 1.0 + 1e-6 && pn > 0 && pn <= 1.0 + 1e-6 && conf >= 0 &&
           conf < order && conf < FTI_NGRAM_MAX_ORDER;
}

FTIDEF void fti_ngram_score(const fti_ngram *m, const double *p_model, const double *p_ngram,
                            const int *conf, size_t n, fti_ngram_fit_stats *st) {
    size_t i;
    double a = 0, b = 0, c = 0;
    if (!st) return;
    memset(st, 0, sizeof *st);
    if (!m || !p_model || !p_ngram || !conf) return;
    for (i = 0; i < n; i++) {
        double pm = p_model[i], pn = p_ngram[i], l;
        if (!fti__ng_usable(pm, pn, conf[i], m->order)) continue;
        l = m->lambda[conf[i]];
        a -= log(pm);
        b -= log(pn);
        c -= log((1 - l) * pm + l * pn);
        st->n_conf[conf[i]]++;
        st->n_tokens++;
    }
    if (st->n_tokens) {
        st->nll_model = a / (double)st->n_tokens;
        st->nll_ngram = b / (double)st->n_tokens;
        st->nll_mix = c / (double)st->n_tokens;
    }
}

FTIDEF fti_result fti_ngram_fit(fti_ngram *m, const double *p_model, const double *p_ngram,
                                const int *conf, size_t n, fti_ngram_fit_stats *st) {
    double lam[FTI_NGRAM_MAX_ORDER + 1], sum_r[FTI_NGRAM_MAX_ORDER + 1];
    size_t cnt[FTI_NGRAM_MAX_ORDER + 1], i;
    int it, c, all = FTI_NGRAM_MAX_ORDER; /* slot `all`: every token pooled */
    if (!m || !p_model || !p_ngram || !conf) return FTI_ERR_INVALID;
    for (c = 0; c <= all; c++) lam[c] = 0.5;
    /* EM: r_i = λ pn / (λ pn + (1-λ) pm) is token i's posterior of coming from the n-gram;
     * the new λ of a confidence is its tokens' mean r. Concave likelihood: 200 rounds settle
     * it well below the figures' precision. */
    for (it = 0; it < 200; it++) {
        memset(sum_r, 0, sizeof sum_r);
        memset(cnt, 0, sizeof cnt);
        for (i = 0; i < n; i++) {
            double pm = p_model[i], pn = p_ngram[i], r;
            int b = conf[i];
            if (!fti__ng_usable(pm, pn, b, m->order)) continue;
            r = lam[b] * pn / (lam[b] * pn + (1 - lam[b]) * pm);
            sum_r[b] += r;
            cnt[b]++;
            r = lam[all] * pn / (lam[all] * pn + (1 - lam[all]) * pm);
            sum_r[all] += r;
            cnt[all]++;
        }
        if (!cnt[all]) return FTI_ERR_INVALID;
        for (c = 0; c <= all; c++)
            if (cnt[c]) lam[c] = sum_r[c] / (double)cnt[c];
    }
    for (c = 0; c < m->order && c < FTI_NGRAM_MAX_ORDER; c++)
        fti_ngram_set_lambda(m, c, (float)(cnt[c] >= 50 ? lam[c] : lam[all]));
    fti_ngram_score(m, p_model, p_ngram, conf, n, st);
    return FTI_OK;
}

FTIDEF int fti_ngram_mix_logits(const fti_ngram *m, const int32_t *ctx, size_t n_ctx,
                                float lambda, float *logits, size_t n_vocab, float *work) {
    int conf;
    size_t i;
    float mx;
    double z = 0, l;
    if (!m || !logits || !work || n_vocab != m->V) return -1;
    conf = fti_ngram_probs(m, ctx, n_ctx, work);
    l = lambda >= 0.0f ? (lambda > 1.0f ? 1.0 : (double)lambda) : (double)m->lambda[conf];
    mx = logits[0];
    for (i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    for (i = 0; i < n_vocab; i++) z += exp((double)(logits[i] - mx));
    for (i = 0; i < n_vocab; i++) {
        double pm = exp((double)(logits[i] - mx)) / z, p = (1 - l) * pm + l * (double)work[i];
        logits[i] = (float)log(p > 1e-30 ? p : 1e-30); /* finite: the sampler's filters work */
    }
    return conf;
}

FTIDEF void fti_ngram_on_logits(void *hook, float *logits, size_t n_vocab, const int32_t *recent,
                                size_t n_recent) {
    const fti_ngram_hook *h = (const fti_ngram_hook *)hook;
    if (h) fti_ngram_mix_logits(h->ngram, recent, n_recent, h->lambda, logits, n_vocab, h->work);
}

/* The file: "FTINGRAM", u32 version 1, u32 order, u32 vocabulary, u32 0, u64 tokens, order x
 * f32 weights, then for k = 1..order: u64 rows, rows x k u32 ids, rows x u32 counts; last,
 * u64 fti_hash64 of everything before it (seed 0x6e6772616d). Little-endian. */
#define FTI__NG_MAGIC "FTINGRAM"
#define FTI__NG_SEED 0x6e6772616dull

FTIDEF fti_result fti_ngram_save(const fti_ngram *m, const char *path, fti_error *err) {
    fti_buf b;
    unsigned char tmp[8];
    size_t i;
    int k;
    fti_result rc;
    if (!m || !path) return fti_error_set(err, FTI_ERR_INVALID, "ngram: NULL argument");
    memset(&b, 0, sizeof b);
    fti_buf_append(&b, FTI__NG_MAGIC, 8);
    fti_store_u32(tmp, 1);
    fti_buf_append(&b, tmp, 4);
    fti_store_u32(tmp, (uint32_t)m->order);
    fti_buf_append(&b, tmp, 4);
    fti_store_u32(tmp, (uint32_t)m->V);
    fti_buf_append(&b, tmp, 4);
    fti_store_u32(tmp, 0);
    fti_buf_append(&b, tmp, 4);
    fti_store_u64(tmp, m->n_tokens);
    fti_buf_append(&b, tmp, 8);
    for (k = 0; k < m->order; k++) {
        fti_store_f32(tmp, m->lambda[k]);
        fti_buf_append(&b, tmp, 4);
    }
    for (k = 1; k <= m->order; k++) {
        const fti__ng_order *o = &m->t[k];
        fti_store_u64(tmp, (uint64_t)o->n);
        fti_buf_append(&b, tmp, 8);
        for (i = 0; i < o->n * (size_t)k; i++) {
            fti_store_u32(tmp, o->ids[i]);
            fti_buf_append(&b, tmp, 4);
        }
        for (i = 0; i < o->n; i++) {
            fti_store_u32(tmp, o->cnt[i]);
            fti_buf_append(&b, tmp, 4);
        }
    }
    if (b.oom) {
        fti_buf_free(&b);
        return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
    }
    fti_store_u64(tmp, fti_hash64(b.data, b.len, FTI__NG_SEED));
    fti_buf_append(&b, tmp, 8);
    rc = b.oom ? fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path)
               : fti_file_write_atomic(path, b.data, b.len, err);
    fti_buf_free(&b);
    return rc;
}

FTIDEF fti_result fti_ngram_load(fti_ngram **out, const char *path, fti_error *err) {
    void *data = NULL;
    size_t len = 0, i;
    fti_reader r;
    fti_ngram *m = NULL;
    uint32_t version, order, V;
    uint64_t n_tok;
    int k;
    fti_result rc;
    if (!out || !path) return fti_error_set(err, FTI_ERR_INVALID, "ngram: NULL argument");
    *out = NULL;
    rc = fti_file_read(path, 0, &data, &len, err);
    if (rc != FTI_OK) return rc;
    if (len < 40 || memcmp(data, FTI__NG_MAGIC, 8) != 0) {
        rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: not an n-gram file (bad magic or %zu bytes)",
                           path, len);
        goto fail;
    }
    if (fti_load_u64((const unsigned char *)data + len - 8) !=
        fti_hash64(data, len - 8, FTI__NG_SEED)) {
        rc = fti_error_set(err, FTI_ERR_CHECKSUM, "%s: the hash does not match the content", path);
        goto fail;
    }
    r = fti_reader_make(data, len - 8);
    fti_read_bytes(&r, 8);
    version = fti_read_u32(&r);
    order = fti_read_u32(&r);
    V = fti_read_u32(&r);
    fti_read_u32(&r);
    n_tok = fti_read_u64(&r);
    if (version != 1) {
        rc = fti_error_set(err, FTI_ERR_UNSUPPORTED, "%s: file version %u (this reads 1)", path,
                           (unsigned)version);
        goto fail;
    }
    if (order < 1 || order > FTI_NGRAM_MAX_ORDER || V < 1 || V > FTI_NGRAM_MAX_VOCAB ||
        n_tok > FTI_NGRAM_MAX_TOKENS) {
        rc = fti_error_set(err, FTI_ERR_LIMIT, "%s: order %u, vocabulary %u, %llu tokens: "
                           "outside the limits", path, (unsigned)order, (unsigned)V,
                           (unsigned long long)n_tok);
        goto fail;
    }
    m = fti__ng_new((int)order, V);
    if (!m) goto nomem;
    m->n_tokens = n_tok;
    for (k = 0; k < (int)order; k++) {
        float l = fti_read_f32(&r);
        if (!(l >= 0.0f && l <= 1.0f)) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: weight %d is %g, not within [0, 1]",
                               path, k, (double)l);
            goto fail;
        }
        m->lambda[k] = l;
    }
    for (k = 1; k <= (int)order; k++) {
        fti__ng_order *o = &m->t[k];
        uint64_t rows = fti_read_u64(&r);
        size_t row_bytes = (size_t)k * 4 + 4;
        if (r.err || rows > fti_reader_left(&r) / row_bytes || rows > n_tok) {
            rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: order %d claims %llu n-grams, the file "
                               "(or the %llu tokens) cannot hold them", path, k,
                               (unsigned long long)rows, (unsigned long long)n_tok);
            goto fail;
        }
        o->n = (size_t)rows;
        o->ids = (uint32_t *)fti_calloc(o->n ? o->n * (size_t)k : 1, sizeof *o->ids);
        o->cnt = (uint32_t *)fti_calloc(o->n ? o->n : 1, sizeof *o->cnt);
        if (!o->ids || !o->cnt) goto nomem;
        for (i = 0; i < o->n * (size_t)k; i++) {
            o->ids[i] = fti_read_u32(&r);
            if (o->ids[i] >= V) {
                rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: order %d n-gram %zu has id %u "
                                   "(vocabulary %u)", path, k, i / (size_t)k,
                                   (unsigned)o->ids[i], (unsigned)V);
                goto fail;
            }
        }
        for (i = 0; i < o->n; i++) {
            o->cnt[i] = fti_read_u32(&r);
            if (o->cnt[i] == 0 || o->cnt[i] > n_tok) {
                rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: order %d n-gram %zu has count %u",
                                   path, k, i, (unsigned)o->cnt[i]);
                goto fail;
            }
            if (i && fti__ng_cmp(o->ids + (i - 1) * (size_t)k, o->ids + i * (size_t)k, k) >= 0) {
                rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: order %d n-grams %zu and %zu are "
                                   "out of order", path, k, i - 1, i);
                goto fail;
            }
        }
        fti__ng_discounts(o);
    }
    if (r.err || fti_reader_left(&r) != 0) {
        rc = fti_error_set(err, FTI_ERR_FORMAT, "%s: %s", path,
                           r.err ? "truncated" : "bytes after the last table");
        goto fail;
    }
    fti_free(data);
    *out = m;
    return FTI_OK;
nomem:
    rc = fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
fail:
    fti_free(data);
    fti_ngram_free(m);
    return rc;
}

/* Strided windows: the first window is tokens [0, n_ctx) and scores tokens 1 .. n_ctx-1; each
 * next one starts n_ctx/2 tokens later (the last one ends at the text's end, for more context)
 * and scores only the tokens after the previous window's end, the ones before them being its
 * context. So every token from the second is scored once, and a token after the first window
 * sees at least n_ctx - n_ctx/2 tokens before it. Only the rows that score a token ask for
 * logits; the context rows are evaluated without. */
FTIDEF fti_result fti_session_token_logprobs(fti_session *s, const int32_t *tokens, size_t n,
                                             double *out, fti_error *err) {
    size_t V, start = 0, done = 1, stride, i;
    float *buf;
    fti_result rc = FTI_OK;
    if (!s || !tokens || !out || n < 2)
        return fti_error_set(err, FTI_ERR_INVALID, "token log-probabilities: need 2 tokens");
    if (s->n_ctx < 2)
        return fti_error_set(err, FTI_ERR_INVALID, "token log-probabilities: a context of %lu "
                             "token predicts nothing", (unsigned long)s->n_ctx);
    V = s->e->V;
    stride = s->n_ctx / 2;
    for (i = 0; i < n; i++) { /* the last one is scored, never evaluated: checked here */
        if (tokens[i] < 0 || (size_t)tokens[i] >= V)
            return fti_error_set(err, FTI_ERR_INVALID, "token log-probabilities: token %lu is "
                                 "id %ld (vocabulary %lu)", (unsigned long)i, (long)tokens[i],
                                 (unsigned long)V);
        out[i] = NAN;
    }
    buf = (float *)fti_malloc(s->n_batch * V * sizeof(float));
    if (!buf) return fti_error_set(err, FTI_ERR_NOMEM, "token log-probabilities: out of memory");
    for (;;) {
        size_t end = n - start < s->n_ctx ? n : start + s->n_ctx; /* the window [start, end) */
        fti_session_reset(s);
        /* the context: positions start .. done-2 (no logits) */
        if (done - 1 > start) rc = fti_session_eval(s, tokens + start, done - 1 - start, NULL, err);
        /* position p's logits score token p+1, for p = done-1 .. end-2 */
        for (i = done - 1; i + 1 < end && rc == FTI_OK;) {
            size_t T = end - 1 - i < s->n_batch ? end - 1 - i : s->n_batch, t;
            rc = fti_session_eval(s, tokens + i, T, buf, err);
            for (t = 0; t < T && rc == FTI_OK; t++) {
                const float *row = buf + t * V; /* (V) */
                double mx = row[0], se = 0.0;
                size_t j;
                for (j = 1; j < V; j++)
                    if (row[j] > mx) mx = row[j];
                for (j = 0; j < V; j++) se += exp((double)row[j] - mx);
                out[i + t + 1] = (double)row[tokens[i + t + 1]] - mx - log(se);
            }
            i += T;
        }
        if (rc != FTI_OK || end == n) break;
        done = end;
        start += stride;
        if (n - start < s->n_ctx) start = n - s->n_ctx; /* the last window ends at n */
    }
    fti_free(buf);
    return rc;
}

FTIDEF fti_result fti_ngram_eval_session(fti_ngram *m, fti_session *s, const int32_t *const *seqs,
                                         const size_t *lens, size_t n_seqs, int fit,
                                         fti_ngram_fit_stats *st, fti_error *err) {
    size_t total = 0, max_len = 0, i, j, k = 0;
    double *pm = NULL, *pn = NULL, *lp = NULL;
    int *conf = NULL;
    fti_result rc = FTI_OK;
    fti_ngram_fit_stats tmp;
    if (!st) st = &tmp;
    memset(st, 0, sizeof *st);
    if (!m || !s || (n_seqs && (!seqs || !lens)))
        return fti_error_set(err, FTI_ERR_INVALID, "ngram eval: NULL argument");
    if (m->V != s->e->V)
        return fti_error_set(err, FTI_ERR_INVALID, "ngram eval: the n-gram's vocabulary (%zu) "
                             "is not the model's (%zu)", m->V, (size_t)s->e->V);
    for (i = 0; i < n_seqs; i++) {
        if (lens[i] > max_len) max_len = lens[i];
        if (!fti_size_add(total, lens[i], &total))
            return fti_error_set(err, FTI_ERR_LIMIT, "ngram eval: too many tokens");
    }
    pm = (double *)fti_calloc(total ? total : 1, sizeof *pm);
    pn = (double *)fti_calloc(total ? total : 1, sizeof *pn);
    conf = (int *)fti_calloc(total ? total : 1, sizeof *conf);
    lp = (double *)fti_calloc(max_len ? max_len : 1, sizeof *lp);
    if (!pm || !pn || !conf || !lp) {
        rc = fti_error_set(err, FTI_ERR_NOMEM, "ngram eval: out of memory");
        goto out;
    }
    for (i = 0; i < n_seqs && rc == FTI_OK; i++) {
        if (lens[i] < 2) continue;
        rc = fti_session_token_logprobs(s, seqs[i], lens[i], lp, err);
        for (j = 1; j < lens[i] && rc == FTI_OK; j++) {
            if (lp[j] != lp[j]) continue; /* not scored (none from the second: defensive) */
            pm[k] = exp(lp[j]);
            pn[k] = fti_ngram_prob(m, seqs[i], j, seqs[i][j], &conf[k]);
            k++;
        }
    }
    if (rc == FTI_OK && k == 0) rc = fti_error_set(err, FTI_ERR_INVALID, "ngram eval: no token");
    if (rc == FTI_OK) {
        if (fit && fti_ngram_fit(m, pm, pn, conf, k, st) != FTI_OK)
            rc = fti_error_set(err, FTI_ERR_INVALID, "ngram eval: no usable token");
        else if (!fit)
            fti_ngram_score(m, pm, pn, conf, k, st);
    }
out:
    fti_free(pm);
    fti_free(pn);
    fti_free(conf);
    fti_free(lp);
    return rc;
}
