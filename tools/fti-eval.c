/* fti-eval: is it a twin? Style fidelity and retrieval quality of a registered model (make eval).
 *
 *   build/fti-eval [--home DIR] [--alias NAME | --model FILE] [--dataset VERSION]
 *                  [--others DIR] [--max-docs N] [--max-bytes N] [--threads N]
 *
 * Style fidelity: the model's perplexity on the author's held-out (validation) documents against
 * its perplexity on text by other authors (the .txt files of data/eval/others, public domain),
 * and the ratio others/author: a twin finds its author's unseen text far more predictable. Every
 * text goes through the same document template with an empty title, cut to the same length, so
 * neither side is favoured. Two baselines run on the same tokens: an interpolated bigram model of
 * the training split and the untrained model (the same configuration with random initial
 * weights).
 * Retrieval quality: for each held-out document, its title (or first sentence) as the query;
 * recall@5 is how often BM25 returns a chunk of that document among the top 5.
 * Every row scores the same tokens: each text's from the second, each given the tokens before
 * it (the n-grams their whole history; the models as much as fits their context: a text longer
 * than it is scored in windows of the context that start half a context apart, each scoring
 * only the tokens the previous one did not, so every token sees at least half a context).
 * Perplexities are per token of the dataset's tokenizer; bits per byte of text (the same
 * figures per byte, over those tokens) compare models with different vocabularies.
 * Prints a table and one line per figure: EVAL <name> <value>.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
/* the author memory's order (fti-twin write's TWIN_NGRAM_ORDER; docs/twin.md) */
#define FTI_TWIN_NGRAM_ORDER 4
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct args {
    const char *home, *alias, *model, *dataset, *others;
    int others_given; /* --others was on the command line */
    size_t max_docs, max_bytes;
    int threads, ngram_order;
} args;

static void usage(FILE *f) {
    fprintf(f,
            "usage: fti-eval [--home DIR] [--alias NAME | --model FILE] [--dataset VERSION]\n"
            "                [--others DIR] [--max-docs N] [--max-bytes N] [--threads N]\n"
            "                [--ngram-order N]\n"
            "\n"
            "Measures whether a model is a twin of its author:\n"
            "  perplexity on the author's held-out documents vs on other authors' text\n"
            "  (same template, same length), with a bigram baseline and the untrained model;\n"
            "  BM25 recall@5 with each held-out document's title as the query.\n"
            "\n"
            "  --home DIR        workspace (default $FTI_HOME or ./twin)\n"
            "  --alias NAME      registry alias of the model (default production)\n"
            "  --model FILE      a GGUF model file instead of the registry\n"
            "  --dataset V       dataset version (default: the model's, else latest)\n"
            "  --others DIR      folder of .txt files by other authors (default data/eval/others,\n"
            "                    else the repository's next to this program: ../data/eval/others)\n"
            "  --max-docs N      held-out documents and other-author pieces to use (default 200)\n"
            "  --max-bytes N     bytes of each text evaluated (default 600)\n"
            "  --threads N       threads (default $FTI_THREADS or all CPUs)\n"
            "  --ngram-order N   order of the author memory (an n-gram model of the training\n"
            "                    split mixed into the model, as fti-twin write uses it; default\n"
            "                    %d, 0 = leave those rows out)\n", FTI_TWIN_NGRAM_ORDER);
}

/* A whole number 0..max for option o (else a message and *bad set). */
static size_t eval_count(const char *o, const char *v, size_t max, int *bad) {
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || *v == '-' || x > max) {
        fprintf(stderr, "fti-eval: %s takes a whole number from 0 to %lu, not '%s'\n", o,
                (unsigned long)max, v);
        *bad = 1;
        return 0;
    }
    return (size_t)x;
}

static int parse_args(int argc, char **argv, args *a) {
    int i, bad = 0;
    memset(a, 0, sizeof *a);
    a->alias = "production";
    a->others = "data/eval/others";
    a->max_docs = 200;
    a->max_bytes = 600;
    a->ngram_order = FTI_TWIN_NGRAM_ORDER;
    for (i = 1; i < argc; i += 2) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "fti-eval: %s needs a value (try --help)\n", o);
            return 0;
        }
        if (!strcmp(o, "--home")) a->home = v;
        else if (!strcmp(o, "--alias")) a->alias = v;
        else if (!strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--dataset")) a->dataset = v;
        else if (!strcmp(o, "--others")) a->others = v, a->others_given = 1;
        else if (!strcmp(o, "--max-docs")) a->max_docs = eval_count(o, v, 1000000, &bad);
        else if (!strcmp(o, "--max-bytes")) a->max_bytes = eval_count(o, v, (size_t)1 << 30, &bad);
        else if (!strcmp(o, "--threads")) a->threads = (int)eval_count(o, v, 1024, &bad);
        else if (!strcmp(o, "--ngram-order")) a->ngram_order = (int)eval_count(o, v, 64, &bad);
        else {
            fprintf(stderr, "fti-eval: unknown option %s (try --help)\n", o);
            return 0;
        }
    }
    if (bad) return 0;
    if (a->ngram_order < 0 || a->ngram_order > FTI_NGRAM_MAX_ORDER) {
        fprintf(stderr, "fti-eval: --ngram-order is 0..%d\n", FTI_NGRAM_MAX_ORDER);
        return 0;
    }
    if (!a->max_docs || a->max_bytes < 32) {
        fprintf(stderr, "fti-eval: --max-docs must be > 0 and --max-bytes >= 32\n");
        return 0;
    }
    return 1;
}

/* --- the evaluation texts ------------------------------------------------------------------- */

/* Where s (longer than n bytes) can be cut at most n bytes in without splitting a UTF-8
 * character: n backed up over at most 3 continuation bytes (a character's most), so text that
 * is not UTF-8 is cut at n. */
static size_t utf8_cut(const char *s, size_t n) {
    size_t k = n;
    while (k > 0 && n - k < 3 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    return ((unsigned char)s[k] & 0xC0) == 0x80 ? n : k;
}

typedef struct text_set {
    fti_tokens *seqs; /* one token sequence per text (template-encoded) */
    size_t n, cap;
    size_t n_scored;  /* tokens scored: every sequence's but its first */
    size_t bytes;     /* text bytes of the sequences (for bits per byte) */
} text_set;

static int set_add(text_set *s, const fti_tokenizer *tok, const char *text, size_t len,
                   size_t max_bytes) {
    fti_tokens t;
    memset(&t, 0, sizeof t);
    /* cut at the last space or newline of the second half of max_bytes, else (no space: one
     * long word, or a script without spaces) at the last character boundary before max_bytes */
    if (len > max_bytes) {
        size_t k = max_bytes;
        while (k > max_bytes / 2 && text[k] != ' ' && text[k] != '\n') k--;
        if (text[k] != ' ' && text[k] != '\n') k = utf8_cut(text, max_bytes);
        len = k;
    }
    if (fti_template_encode(tok, NULL, 0, text, len, 0, &t) != FTI_OK) return 0;
    if (t.len < 8) {
        fti_tokens_free(&t);
        return 1;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        fti_tokens *ns = (fti_tokens *)fti_realloc(s->seqs, nc * sizeof *ns);
        if (!ns) {
            fti_tokens_free(&t);
            return 0;
        }
        s->seqs = ns;
        s->cap = nc;
    }
    s->seqs[s->n++] = t;
    s->n_scored += t.len - 1;
    s->bytes += len;
    return 1;
}

static void set_free(text_set *s) {
    size_t i;
    for (i = 0; i < s->n; i++) fti_tokens_free(&s->seqs[i]);
    fti_free(s->seqs);
    memset(s, 0, sizeof *s);
}

/* A held-out document: its id, title and text (owned). */
typedef struct held_doc {
    char *id, *title, *text;
    size_t text_len;
} held_doc;

/* Reads the version's documents file and keeps up to max validation documents. */
static size_t read_val_docs(const char *docs_path, held_doc *out, size_t max, fti_error *err) {
    void *data;
    size_t len, pos = 0, n = 0;
    if (fti_file_read(docs_path, 0, &data, &len, err) != FTI_OK) return 0;
    while (pos < len && n < max) {
        const char *line = (const char *)data + pos;
        const char *nl = (const char *)memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        fti_json_doc *doc;
        pos += ll + 1;
        if (fti_json_parse(line, ll, NULL, &doc, NULL, NULL) != FTI_OK) continue;
        {
            const fti_json *r = fti_json_root(doc);
            const fti_json *text = fti_json_get(r, "text");
            if (!strcmp(fti_json_get_str(r, "split", ""), "val") && text &&
                text->type == FTI_JSON_STRING) {
                out[n].id = fti_strdup(fti_json_get_str(r, "id", ""));
                out[n].title = fti_strdup(fti_json_get_str(r, "title", ""));
                out[n].text = fti_strndup(text->str, text->len);
                out[n].text_len = text->len;
                if (out[n].id && out[n].title && out[n].text) n++;
            }
        }
        fti_json_free(doc);
    }
    fti_free(data);
    return n;
}

typedef struct others_ctx {
    text_set *set;
    const fti_tokenizer *tok;
    size_t max_docs, max_bytes;
} others_ctx;

/* Splits an other-author file into pieces of about max_bytes at paragraph breaks. */
static fti_result add_other_file(void *user, const char *path, uint64_t size) {
    others_ctx *c = (others_ctx *)user;
    void *data;
    size_t len, pos = 0;
    fti_buf clean;
    memset(&clean, 0, sizeof clean);
    (void)size;
    if (strcmp(fti_path_ext(path), "txt") != 0) return FTI_OK;
    if (fti_file_read(path, 64u << 20, &data, &len, NULL) != FTI_OK) return FTI_OK;
    fti_clean_text((const char *)data, len, 0, &clean);
    fti_free(data);
    while (pos < clean.len && c->set->n < c->max_docs) {
        size_t end = pos + c->max_bytes < clean.len ? pos + c->max_bytes : clean.len;
        const char *para = NULL;
        /* prefer to start the next piece after a paragraph break */
        if (end < clean.len) {
            size_t k;
            for (k = end; k > pos + c->max_bytes / 2; k--)
                if (clean.data[k] == '\n' && clean.data[k - 1] == '\n') {
                    para = clean.data + k;
                    break;
                }
            if (para) end = (size_t)(para - clean.data);
            else end = pos + utf8_cut(clean.data + pos, end - pos); /* not inside a character */
        }
        if (!set_add(c->set, c->tok, clean.data + pos, end - pos, c->max_bytes)) break;
        pos = end;
        while (pos < clean.len && (clean.data[pos] == '\n' || clean.data[pos] == ' ')) pos++;
    }
    fti_buf_free(&clean);
    return FTI_OK;
}

/* --- scoring ---------------------------------------------------------------------------------- */

/* Bits per byte of text of a perplexity over s's scored tokens (n_scored: every row scores
 * exactly those, model_ppl and memory_eval check it): comparable across tokenizers (a smaller
 * vocabulary has more, easier tokens per byte; the bits needed per byte of text are the same
 * measure for any of them). */
static double bits_per_byte(double ppl, const text_set *s) {
    return s->bytes && ppl > 0 ? log(ppl) * (double)s->n_scored / ((double)s->bytes * log(2.0)) : 0;
}

/* Token-weighted perplexity of a model over a set: every sequence's tokens from the second,
 * each given the tokens before it (fti_session_token_logprobs: all of them up to the model's
 * context, then strided windows), the tokens every other row scores. The count of tokens
 * scored is checked against the set's n_scored, the count bits per byte divide by. */
static int model_ppl(const fti_engine *e, fti_pool *pool, const text_set *s, double *ppl,
                     fti_error *err) {
    fti_session *ses;
    fti_session_opts so;
    double sum = 0, *lp = NULL;
    size_t n_tok = 0, i, cap = 0;
    int32_t *ids = NULL;
    int ok = 0;
    memset(&so, 0, sizeof so);
    so.pool = pool;
    if (fti_session_create(&ses, e, &so, err) != FTI_OK) return 0;
    for (i = 0; i < s->n; i++) {
        size_t n = s->seqs[i].len, k;
        if (n > cap) {
            int32_t *ni = (int32_t *)fti_realloc(ids, n * sizeof *ids);
            double *nl = ni ? (double *)fti_realloc(lp, n * sizeof *lp) : NULL;
            if (ni) ids = ni;
            if (!nl) {
                fti_error_set(err, FTI_ERR_NOMEM, "perplexity: out of memory");
                goto out;
            }
            lp = nl;
            cap = n;
        }
        for (k = 0; k < n; k++) ids[k] = (int32_t)s->seqs[i].ids[k];
        if (fti_session_token_logprobs(ses, ids, n, lp, err) != FTI_OK) goto out;
        for (k = 1; k < n; k++)
            if (lp[k] == lp[k]) { /* NaN: not scored (none is from the second) */
                sum -= lp[k];
                n_tok++;
            }
    }
    if (n_tok != s->n_scored) {
        fti_error_set(err, FTI_ERR_INVALID, "perplexity: %zu tokens scored of %zu", n_tok,
                      s->n_scored);
        goto out;
    }
    *ppl = n_tok ? exp(sum / (double)n_tok) : 0;
    ok = 1;
out:
    fti_free(ids);
    fti_free(lp);
    fti_session_free(ses);
    return ok;
}

/* An interpolated bigram model of the training shard: p(b|a) = l*c(a,b)/c(a) + (1-l)*p1(b),
 * with p1 the add-one unigram. Bigrams live in an open-addressing table keyed by (a,b). */
typedef struct bigram {
    uint64_t *keys; /* (a << 32 | b) + 1, 0 = empty */
    uint32_t *counts;
    size_t cap;
    uint64_t *uni;
    uint64_t total;
    size_t vocab;
} bigram;

static uint32_t *bigram_slot(bigram *m, uint64_t key, int insert) {
    size_t i = (size_t)(fti_hash64(&key, 8, 7) & (m->cap - 1));
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        if (!insert) return NULL;
        m->keys[i] = key;
    }
    return &m->counts[i];
}

static int bigram_build(bigram *m, const fti_token_shard *sh, size_t vocab) {
    uint64_t i, n = sh->count;
    memset(m, 0, sizeof *m);
    m->vocab = vocab;
    m->cap = 1;
    while (m->cap < 2 * (n < 4000000 ? n : 4000000) + 1024) m->cap *= 2;
    m->keys = (uint64_t *)fti_calloc(m->cap, sizeof *m->keys);
    m->counts = (uint32_t *)fti_calloc(m->cap, sizeof *m->counts);
    m->uni = (uint64_t *)fti_calloc(vocab, sizeof *m->uni);
    if (!m->keys || !m->counts || !m->uni) return 0;
    for (i = 0; i < n; i++) {
        uint32_t b = fti_shard_at(sh, i);
        if (b < vocab) m->uni[b]++;
        m->total++;
        if (i > 0 && i < 4000000) {
            uint32_t a = fti_shard_at(sh, i - 1);
            uint32_t *c = bigram_slot(m, ((uint64_t)a << 32 | b) + 1, 1);
            (*c)++;
        }
    }
    return 1;
}

static double bigram_ppl(bigram *m, const text_set *s, int unigram_only) {
    double sum = 0, lambda = 0.7;
    size_t n_tok = 0, i, k;
    for (i = 0; i < s->n; i++) {
        for (k = 1; k < s->seqs[i].len; k++) {
            uint32_t a = s->seqs[i].ids[k - 1], b = s->seqs[i].ids[k];
            double p1 = ((b < m->vocab ? (double)m->uni[b] : 0) + 1) /
                        ((double)m->total + (double)m->vocab);
            double p = p1;
            if (!unigram_only && a < m->vocab && m->uni[a] > 0) {
                uint32_t *c = bigram_slot(m, ((uint64_t)a << 32 | b) + 1, 0);
                p = lambda * (c ? (double)*c : 0) / (double)m->uni[a] + (1 - lambda) * p1;
            }
            sum -= log(p);
            n_tok++;
        }
    }
    return n_tok ? exp(sum / (double)n_tok) : 0;
}

static void bigram_free(bigram *m) {
    fti_free(m->keys);
    fti_free(m->counts);
    fti_free(m->uni);
}

/* Writes the untrained model: the same configuration and tokenizer, random initial weights. */
static int write_random_model(const fti_engine *e, const fti_tokenizer *tok, const char *path,
                              fti_error *err) {
    fti_model_config cfg = *fti_engine_config(e);
    size_t n = fti_model_n_params(&cfg);
    float *params = (float *)fti_malloc(n * sizeof(float));
    fti_tokenizer_gguf tg;
    fti_gguf_tokenizer_meta meta;
    fti_result r;
    if (!params) {
        fti_error_set(err, FTI_ERR_NOMEM, "out of memory for the untrained model's weights");
        return 0;
    }
    fti_model_init_params(&cfg, params, 1234);
    if (fti_tokenizer_gguf_make(tok, &tg) != FTI_OK) {
        fti_error_set(err, FTI_ERR_NOMEM, "out of memory for the tokenizer's GGUF keys");
        fti_free(params);
        return 0;
    }
    fti_gguf_tokenizer_meta_from(&meta, &tg, fti_engine_add_bos(e));
    r = fti_gguf_write_llama(path, &cfg, params, &meta, NULL, NULL, err);
    fti_tokenizer_gguf_free(&tg);
    fti_free(params);
    return r == FTI_OK;
}

/* The untrained model's file while it is scored: its own name in the workspace (process id and
 * time), so runs in one workspace do not collide, and removed on every way out, a signal's too. */
static char g_untrained_path[4200];
static volatile sig_atomic_t g_untrained_live;

static void on_signal(int sig) {
    if (g_untrained_live) unlink(g_untrained_path); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The untrained baseline: writes the untrained model to a fresh file in home, scores both sets
 * with it and removes the file, whatever failed. 1, or 0 with err set. */
static int untrained_ppl(const fti_engine *e, const fti_tokenizer *tok, fti_pool *pool,
                         const char *home, const text_set *author, const text_set *others,
                         double *ppl_a, double *ppl_o, fti_error *err) {
    fti_engine *rnd = NULL;
    int ok = 0, attempt, n = 0;
    for (attempt = 0; attempt < 100; attempt++) {
        n = snprintf(g_untrained_path, sizeof g_untrained_path,
                     "%s/eval-untrained.%ld.%llu.gguf.tmp", home, (long)getpid(),
                     (unsigned long long)fti_time_ns() + (unsigned long long)attempt);
        if (n < 0 || (size_t)n >= sizeof g_untrained_path || !fti_path_exists(g_untrained_path))
            break;
    }
    if (n < 0 || (size_t)n >= sizeof g_untrained_path) {
        fti_error_set(err, FTI_ERR_LIMIT, "the workspace path %s is too long", home);
        return 0;
    }
    g_untrained_live = 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    if (write_random_model(e, tok, g_untrained_path, err) &&
        fti_engine_open(&rnd, g_untrained_path, NULL, err) == FTI_OK)
        ok = model_ppl(rnd, pool, author, ppl_a, err) && model_ppl(rnd, pool, others, ppl_o, err);
    fti_engine_close(rnd);
    (void)fti_file_remove(g_untrained_path, NULL);
    g_untrained_live = 0;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    return ok;
}

/* The first sentence of a text (up to 200 bytes, not ending inside a character), as a query. */
static size_t first_sentence(const char *t, size_t n) {
    size_t i;
    for (i = 0; i < n && i < 200; i++)
        if ((t[i] == '.' || t[i] == '?' || t[i] == '!') && (i + 1 == n || t[i + 1] == ' ' ||
                                                           t[i + 1] == '\n'))
            return i + 1;
    return i < n ? utf8_cut(t, i) : i;
}

/* The author memory (docs/twin.md): an n-gram model of the training split mixed into the model.
 * Its weights are fitted on held-out text of the author, so on the author's held-out documents
 * they are cross-fitted (two folds: fitted on the even documents, scored on the odd ones, and
 * the reverse); on other authors' text, fitted on all the author's held-out documents (what
 * fti-twin write uses). Fills per-token nll (nats) of the n-gram alone and of the mixture. */
typedef struct memory_figs {
    double ng_a, ng_o, mix_a, mix_o, model_a, model_o;
    float lambda[FTI_NGRAM_MAX_ORDER];
    int order;
} memory_figs;

static int seqs_of(const text_set *s, int parity, int32_t ***out, size_t **lens, size_t *n) {
    size_t i, k;
    *n = 0;
    *out = (int32_t **)fti_calloc(s->n ? s->n : 1, sizeof **out);
    *lens = (size_t *)fti_calloc(s->n ? s->n : 1, sizeof **lens);
    if (!*out || !*lens) return 0;
    for (i = 0; i < s->n; i++) {
        if (parity >= 0 && (int)(i % 2) != parity) continue;
        (*out)[*n] = (int32_t *)fti_malloc(s->seqs[i].len * sizeof(int32_t));
        if (!(*out)[*n]) return 0;
        for (k = 0; k < s->seqs[i].len; k++) (*out)[*n][k] = (int32_t)s->seqs[i].ids[k];
        (*lens)[(*n)++] = s->seqs[i].len;
    }
    return 1;
}

static void seqs_free(int32_t **seqs, size_t *lens, size_t n) {
    size_t i;
    for (i = 0; seqs && i < n; i++) fti_free(seqs[i]);
    fti_free(seqs);
    fti_free(lens);
}

static int memory_eval(const fti_engine *e, fti_pool *pool, const fti_dataset *ds,
                       const text_set *author, const text_set *others, int order,
                       memory_figs *f, fti_error *err) {
    const fti_token_shard *sh = fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
    uint32_t *ids = NULL;
    fti_ngram *m = NULL;
    fti_ngram_opts no;
    fti_session *ses = NULL;
    fti_session_opts so;
    fti_ngram_fit_stats st;
    int32_t **sq[4] = {NULL, NULL, NULL, NULL};
    size_t *ln[4] = {NULL, NULL, NULL, NULL}, nn[4] = {0, 0, 0, 0}, i;
    double mix_sum = 0;
    size_t mix_n = 0;
    int ok = 0, fold;
    memset(f, 0, sizeof *f);
    f->order = order;
    if (!sh || !sh->count) return 0;
    ids = (uint32_t *)fti_malloc((size_t)sh->count * sizeof *ids);
    if (!ids) return 0;
    for (i = 0; i < sh->count; i++) ids[i] = fti_shard_at(sh, i);
    memset(&no, 0, sizeof no);
    no.order = order;
    memset(&so, 0, sizeof so);
    so.pool = pool;
    if (fti_ngram_build(&m, ids, (size_t)sh->count, sh->vocab_size, &no, err) != FTI_OK ||
        fti_session_create(&ses, e, &so, err) != FTI_OK)
        goto out;
    if (!seqs_of(author, 0, &sq[0], &ln[0], &nn[0]) ||
        !seqs_of(author, 1, &sq[1], &ln[1], &nn[1]) ||
        !seqs_of(author, -1, &sq[2], &ln[2], &nn[2]) ||
        !seqs_of(others, -1, &sq[3], &ln[3], &nn[3]))
        goto out;
    for (fold = 0; fold < 2; fold++) { /* fit on one half, score the other */
        if (fti_ngram_eval_session(m, ses, (const int32_t *const *)sq[1 - fold], ln[1 - fold],
                                   nn[1 - fold], 1, &st, err) != FTI_OK ||
            fti_ngram_eval_session(m, ses, (const int32_t *const *)sq[fold], ln[fold], nn[fold], 0,
                                   &st, err) != FTI_OK)
            goto out;
        mix_sum += st.nll_mix * (double)st.n_tokens;
        mix_n += st.n_tokens;
    }
    f->mix_a = mix_sum / (double)mix_n;
    if (fti_ngram_eval_session(m, ses, (const int32_t *const *)sq[2], ln[2], nn[2], 1, &st, err) !=
        FTI_OK)
        goto out;
    if (mix_n != author->n_scored || st.n_tokens != author->n_scored) { /* the rows' tokens */
        fti_error_set(err, FTI_ERR_INVALID, "scored %zu and %zu of the author's %zu tokens",
                      mix_n, (size_t)st.n_tokens, author->n_scored);
        goto out;
    }
    f->ng_a = st.nll_ngram;
    f->model_a = st.nll_model;
    for (i = 0; i < (size_t)order; i++) f->lambda[i] = fti_ngram_lambda(m, (int)i);
    if (fti_ngram_eval_session(m, ses, (const int32_t *const *)sq[3], ln[3], nn[3], 0, &st, err) !=
        FTI_OK)
        goto out;
    if (st.n_tokens != others->n_scored) {
        fti_error_set(err, FTI_ERR_INVALID, "scored %zu of the other authors' %zu tokens",
                      (size_t)st.n_tokens, others->n_scored);
        goto out;
    }
    f->ng_o = st.nll_ngram;
    f->mix_o = st.nll_mix;
    f->model_o = st.nll_model;
    ok = 1;
out:
    for (i = 0; i < 4; i++) seqs_free(sq[i], ln[i], nn[i]);
    fti_session_free(ses);
    fti_ngram_free(m);
    fti_free(ids);
    return ok;
}

int main(int argc, char **argv) {
    args a;
    char *home = NULL, model_path[4096], id[17] = "", others_path[4200];
    fti_error err;
    fti_dataset *ds = NULL;
    fti_engine *eng = NULL;
    fti_tokenizer *tok = NULL;
    fti_pool *pool = NULL;
    held_doc *docs = NULL;
    size_t n_docs = 0, i, hits5 = 0, n_queries = 0, n_by_sentence = 0;
    text_set author, others;
    bigram bg;
    double ppl_a = 0, ppl_o = 0, rppl_a = 0, rppl_o = 0;
    memory_figs mem;
    int have_mem = 0;
    int rc = 1;
    const char *dataset_name;
    fti_buf card;
    fti_json_doc *card_doc = NULL;

    memset(&author, 0, sizeof author);
    memset(&others, 0, sizeof others);
    memset(&card, 0, sizeof card);
    if (!parse_args(argc, argv, &a)) return 2;
    home = fti_workspace_resolve(a.home);
    if (!home) return 1;
    dataset_name = a.dataset;
    if (a.model) {
        snprintf(model_path, sizeof model_path, "%s", a.model);
    } else {
        const char *p;
        if (fti_registry_resolve(home, a.alias, id, &err) != FTI_OK ||
            fti_registry_card(home, id, &card, &err) != FTI_OK ||
            fti_json_parse(card.data, card.len, NULL, &card_doc, NULL, &err) != FTI_OK) {
            fprintf(stderr, "fti-eval: model '%s' in %s: %s\n", a.alias, home, err.msg);
            goto done;
        }
        if (fti_json_get(fti_json_root(card_doc), "removed")) {
            fprintf(stderr, "fti-eval: model '%s' (%s) was removed by gc (%s): only its card "
                    "is left\n", a.alias, id,
                    fti_json_get_str(fti_json_root(card_doc), "removed", "?"));
            goto done;
        }
        p = fti_json_get_str(fti_json_root(card_doc), "path", "");
        snprintf(model_path, sizeof model_path, "%s", p);
        if (!dataset_name)
            dataset_name = fti_json_get_str(fti_json_root(card_doc), "dataset", NULL);
    }
    if (fti_dataset_open(&ds, home, dataset_name, &err) != FTI_OK) {
        int from_card = dataset_name && !a.dataset && !a.model;
        fprintf(stderr, "fti-eval: dataset %s: %s%s\n", dataset_name ? dataset_name : "latest",
                err.msg, from_card ? " (the model's dataset version, removed by gc or from "
                "another workspace: --dataset VERSION evaluates on another)" : "");
        goto done;
    }
    if (!fti_dataset_tokenizer_path(ds) ||
        fti_tokenizer_load(fti_dataset_tokenizer_path(ds), NULL, &tok, &err) != FTI_OK) {
        fprintf(stderr, "fti-eval: the dataset's tokenizer: %s\n", err.msg);
        goto done;
    }
    if (fti_engine_open(&eng, model_path, NULL, &err) != FTI_OK) {
        fprintf(stderr, "fti-eval: %s\n", err.msg);
        goto done;
    }
    if (fti_engine_config(eng)->vocab_size != fti_tokenizer_vocab_size(tok)) {
        fprintf(stderr,
                "fti-eval: the model's vocabulary (%u) is not the dataset's tokenizer (%zu)\n",
                fti_engine_config(eng)->vocab_size, fti_tokenizer_vocab_size(tok));
        goto done;
    }
    { /* same size is not the same tokenizer: ids would mean other strings (fti's trainer
       * records the tokenizer's id in the file; models from elsewhere have no such key) */
        const char *mt = NULL, *dt = fti_dataset_tokenizer_sha256(ds);
        size_t mt_len = 0;
        if (fti_engine_gguf(eng) &&
            fti_gguf_get_str(fti_engine_gguf(eng), "fti.tokenizer.sha256", &mt, &mt_len,
                             NULL) == FTI_OK &&
            dt && (mt_len != strlen(dt) || memcmp(mt, dt, mt_len) != 0)) {
            fprintf(stderr, "fti-eval: the model was trained with tokenizer %.16s..., dataset "
                    "%.16s uses %.16s...: its perplexities would be meaningless (give the "
                    "model's dataset, or one ingested with its --tokenizer)\n", mt,
                    fti_dataset_id(ds), dt);
            goto done;
        }
    }
    pool = fti_pool_create(a.threads);

    /* the texts */
    docs = (held_doc *)fti_calloc(a.max_docs, sizeof *docs);
    if (!docs) goto done;
    n_docs = read_val_docs(fti_dataset_docs_path(ds), docs, a.max_docs, &err);
    for (i = 0; i < n_docs; i++)
        if (!set_add(&author, tok, docs[i].text, docs[i].text_len, a.max_bytes)) goto done;
    if (!a.others_given && !fti_path_exists(a.others) && strchr(argv[0], '/')) {
        /* run from elsewhere: the repository's copy next to the program (build/fti-eval) */
        size_t d = (size_t)(strrchr(argv[0], '/') - argv[0]);
        snprintf(others_path, sizeof others_path, "%.*s/../data/eval/others", (int)d, argv[0]);
        if (fti_path_exists(others_path)) a.others = others_path;
    }
    {
        others_ctx oc;
        oc.set = &others;
        oc.tok = tok;
        oc.max_docs = a.max_docs;
        oc.max_bytes = a.max_bytes;
        if (fti_walk(a.others, add_other_file, &oc, &err) != FTI_OK)
            fprintf(stderr,
                    "fti-eval: %s (no other-author texts: --others DIR, a folder of .txt files)\n",
                    err.msg);
    }
    if (author.n == 0 || others.n == 0) {
        fprintf(stderr, "fti-eval: need held-out documents (%zu) and other-author texts (%zu)\n",
                author.n, others.n);
        goto done;
    }

    /* the model, the untrained model, the bigram baseline */
    if (!model_ppl(eng, pool, &author, &ppl_a, &err) ||
        !model_ppl(eng, pool, &others, &ppl_o, &err)) {
        fprintf(stderr, "fti-eval: %s\n", err.msg);
        goto done;
    }
    if (a.ngram_order > 0) {
        have_mem = memory_eval(eng, pool, ds, &author, &others, a.ngram_order, &mem, &err);
        if (!have_mem) fprintf(stderr, "fti-eval: the author memory: %s\n", err.msg);
    }
    if (!untrained_ppl(eng, tok, pool, home, &author, &others, &rppl_a, &rppl_o, &err)) {
        fprintf(stderr, "fti-eval: the untrained baseline: %s (its row is left out)\n", err.msg);
        rppl_a = rppl_o = 0;
    }
    if (!bigram_build(&bg, fti_dataset_shard(ds, FTI_SPLIT_TRAIN), fti_tokenizer_vocab_size(tok))) {
        fprintf(stderr, "fti-eval: out of memory for the bigram baseline\n");
        goto done;
    }

    /* retrieval */
    for (i = 0; i < n_docs; i++) {
        fti_search_hit hits[5];
        const char *q = docs[i].title;
        size_t qn = strlen(q), k, nh;
        if (qn == 0) { /* untitled (a post of an export): its first sentence */
            q = docs[i].text;
            qn = first_sentence(q, docs[i].text_len);
            if (qn) n_by_sentence++;
        }
        if (qn == 0) continue;
        nh = fti_dataset_search(ds, q, qn, 5, hits);
        n_queries++;
        for (k = 0; k < nh; k++)
            if (hits[k].doc_id && !strcmp(hits[k].doc_id, docs[i].id)) {
                hits5++;
                break;
            }
    }

    {
        double b_a = bigram_ppl(&bg, &author, 0), b_o = bigram_ppl(&bg, &others, 0);
        double u_a = bigram_ppl(&bg, &author, 1), u_o = bigram_ppl(&bg, &others, 1);
        double recall = n_queries ? (double)hits5 / (double)n_queries : 0;
        printf("Is it a twin?  model %s, dataset %s\n", id[0] ? id : model_path,
               fti_dataset_id(ds));
        printf("  %zu held-out documents of the author, %zu pieces by other authors, %zu bytes "
               "each at most\n\n",
               author.n, others.n, a.max_bytes);
        printf("  %-26s %14s %14s %10s\n", "perplexity", "author (held)", "other authors", "ratio");
        printf("  %-26s %14.2f %14.2f %10.2f\n", "twin model", ppl_a, ppl_o, ppl_o / ppl_a);
        if (have_mem) {
            char row[64];
            snprintf(row, sizeof row, "twin + author memory (%d)", mem.order);
            printf("  %-26s %14.2f %14.2f %10.2f\n", row, exp(mem.mix_a), exp(mem.mix_o),
                   exp(mem.mix_o - mem.mix_a));
            snprintf(row, sizeof row, "%d-gram memory alone", mem.order);
            printf("  %-26s %14.2f %14.2f %10.2f\n", row, exp(mem.ng_a), exp(mem.ng_o),
                   exp(mem.ng_o - mem.ng_a));
        }
        printf("  %-26s %14.2f %14.2f %10.2f\n", "bigram baseline", b_a, b_o, b_o / b_a);
        printf("  %-26s %14.2f %14.2f %10.2f\n", "unigram baseline", u_a, u_o, u_o / u_a);
        if (rppl_a > 0)
            printf("  %-26s %14.2f %14.2f %10.2f\n", "untrained model", rppl_a, rppl_o,
                   rppl_o / rppl_a);
        printf("\n  %-26s %14s %14s   (vocabulary %zu; any tokenizer compares)\n",
               "bits per byte of text", "author (held)", "other authors",
               fti_tokenizer_vocab_size(tok));
        printf("  %-26s %14.3f %14.3f\n", "twin model", bits_per_byte(ppl_a, &author),
               bits_per_byte(ppl_o, &others));
        if (have_mem) {
            printf("  %-26s %14.3f %14.3f\n", "twin + author memory",
                   bits_per_byte(exp(mem.mix_a), &author), bits_per_byte(exp(mem.mix_o), &others));
            printf("  %-26s %14.3f %14.3f\n", "author memory alone",
                   bits_per_byte(exp(mem.ng_a), &author), bits_per_byte(exp(mem.ng_o), &others));
        }
        printf("  %-26s %14.3f %14.3f\n", "bigram baseline", bits_per_byte(b_a, &author),
               bits_per_byte(b_o, &others));
        if (have_mem) {
            int k;
            printf("\n  author memory: a %d-gram model (Kneser-Ney) of the training split mixed "
                   "into the model,\n"
                   "  weights fitted on the author's held-out documents (cross-fitted in two folds "
                   "for\n"
                   "  the author column); weight by the n-gram's matched context length:",
                   mem.order);
            for (k = 0; k < mem.order; k++) printf(" %d:%.2f", k, (double)mem.lambda[k]);
            printf("\n");
        }
        if (!n_by_sentence)
            printf("\n  retrieval: recall@5 = %.3f (%zu of %zu held-out titles find their "
                   "document)\n", recall, hits5, n_queries);
        else /* a sentence of the document itself is an easier query than a title */
            printf("\n  retrieval: recall@5 = %.3f (%zu of %zu held-out documents found by their "
                   "title,\n  or the %zu untitled ones by their first sentence, an easier query)\n",
                   recall, hits5, n_queries, n_by_sentence);
        printf("EVAL ppl_author %.4f\nEVAL ppl_others %.4f\nEVAL ppl_ratio %.4f\n", ppl_a, ppl_o,
               ppl_o / ppl_a);
        printf("EVAL bigram_ppl_author %.4f\nEVAL bigram_ppl_others %.4f\n", b_a, b_o);
        printf("EVAL unigram_ppl_author %.4f\nEVAL unigram_ppl_others %.4f\n", u_a, u_o);
        if (rppl_a > 0)
            printf("EVAL untrained_ppl_author %.4f\nEVAL untrained_ppl_others %.4f\n", rppl_a,
                   rppl_o);
        printf("EVAL bpb_author %.4f\nEVAL bpb_others %.4f\n", bits_per_byte(ppl_a, &author),
               bits_per_byte(ppl_o, &others));
        printf("EVAL bigram_bpb_author %.4f\nEVAL bigram_bpb_others %.4f\n",
               bits_per_byte(b_a, &author), bits_per_byte(b_o, &others));
        if (have_mem) {
            printf("EVAL memory_order %d\n", mem.order);
            printf("EVAL mix_ppl_author %.4f\nEVAL mix_ppl_others %.4f\n", exp(mem.mix_a),
                   exp(mem.mix_o));
            printf("EVAL mix_bpb_author %.4f\nEVAL mix_bpb_others %.4f\n",
                   bits_per_byte(exp(mem.mix_a), &author), bits_per_byte(exp(mem.mix_o), &others));
            printf("EVAL ngram_ppl_author %.4f\nEVAL ngram_ppl_others %.4f\n", exp(mem.ng_a),
                   exp(mem.ng_o));
            printf("EVAL ngram_bpb_author %.4f\nEVAL ngram_bpb_others %.4f\n",
                   bits_per_byte(exp(mem.ng_a), &author), bits_per_byte(exp(mem.ng_o), &others));
            printf("EVAL memory_model_ppl_author %.4f\nEVAL memory_model_ppl_others %.4f\n",
                   exp(mem.model_a), exp(mem.model_o));
        }
        printf("EVAL recall_at_5 %.4f\n", recall);
    }
    bigram_free(&bg);
    rc = 0;
done:
    for (i = 0; i < n_docs; i++) {
        fti_free(docs[i].id);
        fti_free(docs[i].title);
        fti_free(docs[i].text);
    }
    fti_free(docs);
    set_free(&author);
    set_free(&others);
    fti_engine_close(eng);
    fti_tokenizer_free(tok);
    fti_dataset_close(ds);
    fti_pool_free(pool);
    fti_json_free(card_doc);
    fti_buf_free(&card);
    fti_free(home);
    return rc;
}
