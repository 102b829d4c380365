/* === store: the tokenizer step (train on the train split, encode through the template) ===== */
#include "04_store.h"

#ifndef FTI_NO_STORE

/* The special tokens of the document template, in id order after the merges. */
static const char *const fti__st_template_specials[] = {FTI_TEMPLATE_END, FTI_TEMPLATE_TITLE,
                                                        FTI_TEMPLATE_BODY};

/* A tokenizer handle for the store (NULL-safe wrappers over part 03). */
typedef struct fti__st_stok {
    void *tok; /* fti_tokenizer * */
    uint32_t vocab_size;
    uint32_t eot_id, title_id, body_id;
    char sha_hex[65];
} fti__st_stok;

#ifdef FTI_TOKENIZER_H

static size_t fti__st_stok_count(void *ctx, const char *t, size_t n) {
    const fti__st_stok *st = (const fti__st_stok *)ctx;
    size_t k = 0;
    if (!st || !st->tok) return (n + 3) / 4; /* no tokenizer: about 4 bytes a token */
    if (fti_tokenizer_count((const fti_tokenizer *)st->tok, t, n, 0, &k) != FTI_OK) k = (n + 3) / 4;
    return k;
}

static fti_result fti__st_stok_finish(fti__st_stok *st, fti_tokenizer *tok, fti_error *err) {
    size_t i;
    int64_t eot;
    for (i = 0; i < 3; i++) {
        uint32_t id;
        fti_result rc = fti_tokenizer_add_special(tok, fti__st_template_specials[i],
                                                  strlen(fti__st_template_specials[i]), &id);
        if (rc != FTI_OK) {
            fti_tokenizer_free(tok);
            return fti_error_set(err, rc, "tokenizer: cannot add special token %s",
                                 fti__st_template_specials[i]);
        }
    }
    eot = fti_tokenizer_eot_id(tok);
    st->title_id = (uint32_t)fti_tokenizer_special_id(tok, FTI_TEMPLATE_TITLE);
    st->body_id = (uint32_t)fti_tokenizer_special_id(tok, FTI_TEMPLATE_BODY);
    st->tok = tok;
    st->vocab_size = (uint32_t)fti_tokenizer_vocab_size(tok);
    st->eot_id = eot >= 0 ? (uint32_t)eot : 0;
    fti_tokenizer_id_hex(tok, st->sha_hex);
    return FTI_OK;
}

/* Loads the tokenizer file `path` (template specials added if missing). */
static fti_result fti__st_stok_load(fti__st_stok *st, const char *path, fti_error *err) {
    fti_tokenizer *tok = NULL;
    fti_result rc = fti_tokenizer_load(path, NULL, &tok, err);
    memset(st, 0, sizeof *st);
    if (rc != FTI_OK) return rc;
    return fti__st_stok_finish(st, tok, err);
}

/* Training on the cleaned train split (titles and bodies), streamed: begin, add each text,
 * then end (which frees the trainer; abort frees it without training). */
static fti_result fti__st_stok_train_begin(void **trainer, fti_pool *pool, int vocab_size,
                                           fti_error *err) {
    fti_bpe_train_opts o;
    fti_bpe_trainer *t = NULL;
    fti_result rc;
    *trainer = NULL;
    /* fti_bpe_trainer_create refuses these without a message */
    if (vocab_size < 256 + 3 || (size_t)vocab_size > FTI_TOK_MAX_VOCAB)
        return fti_error_set(err, FTI_ERR_INVALID, "ingest: vocab_size %d: a trained tokenizer "
                             "has %d to %lu ids (the 256 bytes, the template's 3 special tokens, "
                             "then merges)", vocab_size, 256 + 3,
                             (unsigned long)FTI_TOK_MAX_VOCAB);
    memset(&o, 0, sizeof o);
    o.vocab_size = (size_t)vocab_size;
    o.special = fti__st_template_specials;
    o.n_special = 3;
    o.pool = pool;
    rc = fti_bpe_trainer_create(&o, &t);
    if (rc != FTI_OK) return fti_error_set(err, rc, "tokenizer: cannot create trainer");
    *trainer = t;
    return FTI_OK;
}
static fti_result fti__st_stok_train_add(void *trainer, const char *text, size_t len) {
    return fti_bpe_trainer_add((fti_bpe_trainer *)trainer, text, len);
}
static void fti__st_stok_train_abort(void *trainer) {
    fti_bpe_trainer_free((fti_bpe_trainer *)trainer);
}
static fti_result fti__st_stok_train_end(fti__st_stok *st, void *trainer, fti_error *err) {
    fti_tokenizer *tok = NULL;
    fti_result rc = fti_bpe_trainer_train((fti_bpe_trainer *)trainer, &tok, err);
    memset(st, 0, sizeof *st);
    fti_bpe_trainer_free((fti_bpe_trainer *)trainer);
    if (rc != FTI_OK) return rc;
    return fti__st_stok_finish(st, tok, err);
}

static fti_result fti__st_stok_serialize(const fti__st_stok *st, fti_buf *out) {
    return fti_tokenizer_serialize((const fti_tokenizer *)st->tok, out);
}

/* Encodes n untrusted texts (special-token strings stay text) in parallel into ids[i]. */
static fti_result fti__st_stok_encode(const fti__st_stok *st, fti_pool *pool,
                                      const char *const *texts, const size_t *lens, size_t n,
                                      uint32_t **ids, size_t *n_ids) {
    fti_tokens *outs = (fti_tokens *)fti_calloc(n + 1, sizeof *outs);
    fti_result rc;
    size_t i;
    if (!outs) return FTI_ERR_NOMEM;
    rc = fti_tokenizer_encode_batch((const fti_tokenizer *)st->tok, pool, texts, lens, n, 0, outs);
    for (i = 0; i < n; i++) {
        ids[i] = outs[i].ids;
        n_ids[i] = outs[i].len;
    }
    fti_free(outs);
    return rc;
}

FTIDEF fti_result fti_template_encode(const fti_tokenizer *tok, const char *title, size_t title_len,
                                      const char *body, size_t body_len, int open_body,
                                      fti_tokens *out) {
    int64_t t_id, b_id, e_id;
    fti_result rc;
    if (!tok || !out || (title_len && !title) || (body_len && !body)) return FTI_ERR_INVALID;
    t_id = fti_tokenizer_special_id(tok, FTI_TEMPLATE_TITLE);
    b_id = fti_tokenizer_special_id(tok, FTI_TEMPLATE_BODY);
    e_id = fti_tokenizer_special_id(tok, FTI_TEMPLATE_END);
    if (t_id < 0 || b_id < 0 || e_id < 0) return FTI_ERR_NOT_FOUND;
    rc = fti_tokens_push(out, (uint32_t)t_id);
    if (rc == FTI_OK) {
        /* the title and its newline are one text, as in the shards */
        fti_buf t;
        memset(&t, 0, sizeof t);
        if (title_len) fti_buf_append(&t, title, title_len);
        fti_buf_putc(&t, '\n');
        rc = t.oom ? FTI_ERR_NOMEM : fti_tokenizer_encode(tok, t.data, t.len, 0, out);
        fti_buf_free(&t);
    }
    if (rc == FTI_OK) rc = fti_tokens_push(out, (uint32_t)b_id);
    if (rc == FTI_OK && body_len) rc = fti_tokenizer_encode(tok, body, body_len, 0, out);
    if (rc == FTI_OK && !open_body) rc = fti_tokens_push(out, (uint32_t)e_id);
    return rc;
}

static void fti__st_stok_free(fti__st_stok *st) {
    if (st && st->tok) fti_tokenizer_free((fti_tokenizer *)st->tok);
    if (st) st->tok = NULL;
}

#else /* no tokenizer part in this build: the store runs without tokens */

static size_t fti__st_stok_count(void *ctx, const char *t, size_t n) {
    (void)ctx;
    (void)t;
    return (n + 3) / 4;
}
static fti_result fti__st_stok_load(fti__st_stok *st, const char *path, fti_error *err) {
    memset(st, 0, sizeof *st);
    return fti_error_set(err, FTI_ERR_UNSUPPORTED, "%s: no tokenizer part in this build", path);
}
static fti_result fti__st_stok_train_begin(void **trainer, fti_pool *pool, int vocab_size,
                                           fti_error *err) {
    (void)pool, (void)vocab_size;
    *trainer = NULL;
    return fti_error_set(err, FTI_ERR_UNSUPPORTED, "no tokenizer part in this build");
}
static fti_result fti__st_stok_train_add(void *trainer, const char *text, size_t len) {
    (void)trainer, (void)text, (void)len;
    return FTI_ERR_UNSUPPORTED;
}
static void fti__st_stok_train_abort(void *trainer) {
    (void)trainer;
}
static fti_result fti__st_stok_train_end(fti__st_stok *st, void *trainer, fti_error *err) {
    (void)trainer;
    memset(st, 0, sizeof *st);
    return fti_error_set(err, FTI_ERR_UNSUPPORTED, "no tokenizer part in this build");
}
static fti_result fti__st_stok_serialize(const fti__st_stok *st, fti_buf *out) {
    (void)st, (void)out;
    return FTI_ERR_UNSUPPORTED;
}
static fti_result fti__st_stok_encode(const fti__st_stok *st, fti_pool *pool,
                                      const char *const *texts, const size_t *lens, size_t n,
                                      uint32_t **ids, size_t *n_ids) {
    (void)st, (void)pool, (void)texts, (void)lens, (void)n, (void)ids, (void)n_ids;
    return FTI_ERR_UNSUPPORTED;
}
static void fti__st_stok_free(fti__st_stok *st) {
    (void)st;
}

#endif

#endif /* FTI_NO_STORE */
