/* serve.c: serve the twin over an OpenAI-compatible HTTP API, with metrics and drift monitoring.
 *
 *     build/fti-serve --home twin                     (follows the registry alias "production")
 *     build/fti-serve --model twin/models/<id>/model.gguf --port 8080
 *     build/fti-serve --echo --step-us 2000           (no model: a deterministic stand-in)
 *     curl -s localhost:8080/v1/completions -d '{"prompt":"Love:","max_tokens":32}'
 *
 * Binds 127.0.0.1:8080 by default and serves until SIGTERM or SIGINT, then stops accepting,
 * finishes in-flight requests, flushes the request log and exits 0. With --alias (the default is
 * "production") it checks the registry every --reload-s seconds and switches to the model the
 * alias points to without dropping requests. Requests are logged to HOME/logs/requests.jsonl
 * (rotated by size); drift is measured against the token and length statistics of the feature
 * store version the model was trained on (its fti.dataset.version lineage key). See
 * docs/serving.md.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <pthread.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* The context used when --ctx is not given and the model's is longer: llama.cpp's default too
 * (a Llama 3.1 file says 131072: a 16 GB f16 KV cache per sequence at 8B) */
#define CTX_DEFAULT_MAX 4096

static void usage(FILE *f) {
    fprintf(f,
            "usage: fti-serve [--home DIR] [--alias NAME | --model FILE | --echo] [--host H]\n"
            "                 [--port P] [--threads N] [options]\n"
            "Serves the twin: POST /v1/completions, /v1/chat/completions (OpenAI shapes, stream:\n"
            "true as SSE; completions also take prompt batches, token ids, and echo with\n"
            "logprobs to score prompts), GET /v1/models, /health, /metrics (Prometheus), a\n"
            "dashboard at /, and POST /tokenize, /detokenize (llama.cpp's shapes).\n"
            "  --home DIR           workspace (default $FTI_HOME, else ./twin)\n"
            "  --alias NAME         registry alias to follow (default production); hot reload\n"
            "  --model FILE         a GGUF model file instead (no reload)\n"
            "  --echo               a deterministic stand-in generator (tests, load benchmarks)\n"
            "  --step-us N          --echo: simulated cost of one decode step (default 0)\n"
            "  --host H --port P    bind address (default 127.0.0.1:8080; port 0 = any)\n"
            "  --threads N          worker threads for decoding (default: all CPUs)\n"
            "  --ctx N              context length per sequence (default: the model's, at\n"
            "                       most 4096)\n"
            "  --max-batch N        sequences decoded together (default 16; also the most\n"
            "                       choices a prompt may ask for: n or best_of; a batch of\n"
            "                       prompts with more sequences runs in turns of whole prompts)\n"
            "  --max-queue N        waiting requests before 503 (default 64)\n"
            "  --max-conns N        connections before 503 (default 256)\n"
            "  --header-timeout-ms  whole request head deadline (default 10000)\n"
            "  --idle-timeout-ms    keep-alive idle timeout (default 15000)\n"
            "  --body-timeout-ms    request body deadline (default 30000)\n"
            "  --max-body N         request body bytes (default 1048576)\n"
            "  --rag-k K            retrieved chunks per prompt (default 3; 0 = off)\n"
            "  --log FILE           request log (default HOME/logs/requests.jsonl, with\n"
            "                       --instance HOME/logs/requests-NAME.jsonl; '-' = none)\n"
            "  --instance NAME      replica name ([A-Za-z0-9._-]): its own request log, the\n"
            "                       X-Fti-Instance response header and /health (replicated\n"
            "                       serving over one workspace; see docs/operations.md)\n"
            "  --cors ORIGIN        let web pages of ORIGIN (e.g. http://localhost:5173, or\n"
            "                       '*' for any) call the API from a browser (default: none)\n"
            "  --log-max-mb N       rotate the log at N MiB (default 16)\n"
            "  --reload-s N         alias check interval (default 2; 0 = never)\n"
            "  --no-verify          serve a registered model without checking its file against\n"
            "                       its card's SHA-256 first (at start and on every reload:\n"
            "                       about a second per 500 MB; a file that differs is not\n"
            "                       served)\n"
            "  --port-file FILE     write the bound port to FILE once listening\n"
            "  --no-batch-decode    decode each session on its own worker instead of one batched\n"
            "                       forward per step (fti_session_eval_batch; see\n"
            "                       docs/serving.md)\n"
            "  --kv TYPE            KV cache elements: f16 (default: half the memory and the\n"
            "                       bytes attention reads), f32 (exact) or q8 (int8 and one scale\n"
            "                       per head row: about a quarter of f32 for more or longer\n"
            "                       sessions)\n"
            "  --quiet              only warnings and errors on stderr\n");
}

static fti_server *g_srv = NULL;
static int g_quiet = 0;
static int g_batch_decode = 1;
static fti_kv_type g_kv_type = FTI_KV_F16;

static void on_signal(int sig) {
    (void)sig;
    fti_server_stop(g_srv); /* async-signal-safe: one write() */
}

static void log_fn(void *user, fti_log_level lv, const char *msg) {
    static const char *const names[] = {"", "debug", "info", "warn", "error"};
    char ts[32];
    (void)user;
    if (g_quiet && lv < FTI_LOG_WARN) return;
    fti_time_iso8601(fti_time_wall(), ts);
    fprintf(stderr, "%s fti-serve %s: %s\n", ts, names[lv >= 0 && lv <= 4 ? lv : 0], msg);
}

/* === the engine as a generator ============================================================== */

#if defined(FTI_INFER_H)
typedef struct eng {
    fti_engine *e;
    fti_tokenizer *tok;
    fti_pool *pool; /* borrowed */
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    fti_dataset *ds;
#endif
    fti_batch *dec;         /* one forward per step for every active sequence; prompts */
    fti_session **bs;       /* (max_batch) the step's sessions, tokens and results */
    int32_t *bt;
    fti_result *brc;
    int32_t *st;            /* (max_batch) the tokens sampled in a step */
    float *lg;              /* a prompt's logits (lg_cap floats), for its perplexity */
    size_t n_live;          /* sequences started and not ended */
    size_t lg_cap;
    int max_batch;
    fti_session **spare;  /* (max_batch) sessions of ended sequences, reset, for reuse: a
                           * session is one large block (KV cache + scratch), and allocating
                           * one per request fragments the heap (RSS grew under load) */
    size_t n_spare;
    int use_batch_decode; /* default on; --no-batch-decode */
    char id[128];
    int n_ctx;
    int rag_k;
    int32_t eos;
    double val_nll; /* < 0 unknown */
} eng;

typedef struct eng_seq {
    fti_session *s;
    fti_sampler *smp;
    int32_t *user_ids;
    size_t n_user;
    char *chunks_json;
    fti_result r;
    fti_error err;
    fti_gen_token out;
    /* logit_bias (the request's, copied): added to the logits before the sampler */
    int32_t *bias_ids;
    float *bias;
    size_t n_bias;
    /* logprobs: the model's logits before sampling changes them (V), and what the last draw
     * reports: the drawn token's log-probability and the top alternatives */
    float *raw;
    int n_top;
    double lse;
    float top_lp[FTI_API_MAX_TOP_LOGPROBS];
    int32_t top_id[FTI_API_MAX_TOP_LOGPROBS];
    const char *top_text[FTI_API_MAX_TOP_LOGPROBS];
    size_t top_len[FTI_API_MAX_TOP_LOGPROBS];
    /* a prompt evaluated as itself (eng_start_raw): its ids, and with echo_prompt its tokens
     * and their alternatives (n_pids x n_top) */
    int32_t *pids;
    size_t n_pids;
    fti_gen_token *ptoks;
    float *p_lp;
    const char **p_text;
    size_t *p_len;
} eng_seq;

static const char *eng_id(void *u) { return ((eng *)u)->id; }
static int eng_n_ctx(void *u) { return ((eng *)u)->n_ctx; }
static int eng_n_vocab(void *u) { return (int)fti_engine_config(((eng *)u)->e)->vocab_size; }

/* POST /tokenize: the tokens a scored text prompt is evaluated as (add_special: with the BOS
 * the model adds). The tokenizer is read-only: any thread. */
static fti_result eng_tokenize(void *u, const char *text, size_t len, int add_special,
                               fti_tokens *out, fti_error *err) {
    eng *g = (eng *)u;
    fti_result r = FTI_OK;
    if (add_special && fti_engine_add_bos(g->e))
        r = fti_tokens_push(out, (uint32_t)fti_engine_bos(g->e));
    if (r == FTI_OK) r = fti_tokenizer_encode(g->tok, text, len, 0, out);
    return r == FTI_OK ? FTI_OK : fti_error_set(err, r, "tokenize: %s", fti_result_str(r));
}

/* POST /detokenize: the bytes of the ids (a control token's are none). */
static fti_result eng_detokenize(void *u, const int32_t *ids, size_t n, fti_buf *out,
                                 fti_error *err) {
    eng *g = (eng *)u;
    size_t V = fti_engine_config(g->e)->vocab_size, i, bl;
    fti_result r = fti_gen_check_ids(ids, n, V, -1, err);
    if (r != FTI_OK) return r;
    for (i = 0; i < n; i++) {
        const char *b = fti_engine_token_bytes(g->e, ids[i], &bl);
        if (b) fti_buf_append(out, b, bl);
    }
    return out->oom ? fti_error_set(err, FTI_ERR_NOMEM, "out of memory") : FTI_OK;
}

/* A session for a new sequence: a spare one (reset when it was put back), else a new one. */
static fti_result eng_session_get(eng *g, fti_session **out, fti_error *err) {
    fti_session_opts so;
    if (g->n_spare) {
        *out = g->spare[--g->n_spare];
        return FTI_OK;
    }
    memset(&so, 0, sizeof so);
    so.n_ctx = (size_t)g->n_ctx;
    so.kv_type = g_kv_type;
    return fti_session_create(out, g->e, &so, err);
}

static void eng_seq_free(eng *g, eng_seq *q) {
    if (!q) return;
    if (q->s && g && g->spare && g->n_spare < (size_t)g->max_batch) {
        fti_session_reset(q->s);
        g->spare[g->n_spare++] = q->s;
    } else {
        fti_session_free(q->s);
    }
    fti_sampler_free(q->smp);
    fti_free(q->raw);
    fti_free(q->bias_ids);
    fti_free(q->bias);
    fti_free(q->user_ids);
    fti_free(q->chunks_json);
    fti_free(q->pids);
    fti_free(q->ptoks);
    fti_free(q->p_lp);
    fti_free(q->p_text);
    fti_free(q->p_len);
    fti_free(q);
}

/* Mean NLL of ids[1..n) from the per-token logits (n, V): each row's softmax through the kernel
 * table (its vector exp: libm's exp per entry cost as much as the prompt's forward), then -log p
 * of the next token; a p that underflowed is taken from the logits instead (log-sum-exp = max +
 * -log p_max). -1 when n < 2 or out of memory. */
static double eng_nll(const fti_kernels *k, const float *logits, const int32_t *ids, size_t n,
                      size_t V) {
    double sum = 0;
    size_t t, v;
    float *p = n > 1 ? (float *)fti_malloc(V * sizeof(float)) : NULL;
    if (!p) return -1;
    for (t = 0; t + 1 < n; t++) {
        const float *row = logits + t * V;
        int32_t y = ids[t + 1];
        fti_softmax_fwd(k, p, row, 1, V); /* (NULL would look the table up per row: CPUID) */
        if (p[y] > 0.0f) {
            sum -= log((double)p[y]);
        } else {
            float mx = row[0], pmax = p[0];
            for (v = 1; v < V; v++) {
                if (row[v] > mx) mx = row[v];
                if (p[v] > pmax) pmax = p[v];
            }
            sum += (double)mx - (double)row[y] - log((double)pmax);
        }
    }
    fti_free(p);
    return sum / (double)(n - 1);
}

/* A sequence's sampler (seeded, OpenAI's penalties), logit_bias (checked against the
 * vocabulary) and log-probability buffer, from the request's parameters. */
static fti_result eng_seq_setup(eng *g, eng_seq *q, const fti_gen_params *p, fti_error *err) {
    size_t V = fti_engine_config(g->e)->vocab_size, i;
    fti_sampler_opts sm;
    fti_result r;
    fti_gen_sampler_opts(p, &sm); /* OpenAI's penalties: over the tokens eng_step accepts */
    r = fti_sampler_create(&q->smp, V, &sm);
    if (r != FTI_OK) return fti_error_set(err, r, "sampler: %s", fti_result_str(r));
    if (p->n_bias && p->bias_ids && p->bias) {
        q->bias_ids = (int32_t *)fti_malloc(p->n_bias * sizeof(int32_t));
        q->bias = (float *)fti_malloc(p->n_bias * sizeof(float));
        if (!q->bias_ids || !q->bias) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        for (i = 0; i < p->n_bias; i++) {
            if (p->bias_ids[i] < 0 || (size_t)p->bias_ids[i] >= V)
                return fti_error_set(err, FTI_ERR_INVALID,
                                     "'logit_bias' names token %ld, which this model does not "
                                     "have (its vocabulary is ids 0 to %lu)",
                                     (long)p->bias_ids[i], (unsigned long)(V - 1));
            q->bias_ids[i] = p->bias_ids[i];
            q->bias[i] = p->bias[i];
        }
        q->n_bias = p->n_bias;
    }
    if (p->logprobs) {
        q->n_top = p->top_logprobs < 0 ? 0 : p->top_logprobs;
        if (q->n_top > FTI_API_MAX_TOP_LOGPROBS) q->n_top = FTI_API_MAX_TOP_LOGPROBS;
        if ((size_t)q->n_top > V) q->n_top = (int)V;
        q->raw = (float *)fti_malloc(V * sizeof(float));
        if (!q->raw) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    return FTI_OK;
}

/* The engine's buffer for the logits of n prompt tokens (kept for every prompt: a fresh one
 * each time cost page faults); NULL past 4 M floats (16 MiB) or out of memory. */
static float *eng_logits_buf(eng *g, size_t n) {
    size_t V = fti_engine_config(g->e)->vocab_size;
    if (n * V > ((size_t)4 << 20)) return NULL;
    if (g->lg_cap < n * V) {
        float *nl = (float *)fti_realloc(g->lg, n * V * sizeof(float));
        if (!nl) return NULL;
        g->lg = nl;
        g->lg_cap = n * V;
    }
    return g->lg;
}

/* A prompt evaluated as itself (fti_gen_params.prompt_ids or echo_prompt): token ids exactly, or
 * a text's own tokens after a BOS when the model adds one; no template, no retrieved documents.
 * With echo_prompt every token is reported in info->prompt_tokens, with logprobs each one after
 * the first with its log-probability given the ones before it (the figures generated tokens
 * get: fti_logprobs_top of its logits row) and its top alternatives. The logits are computed in
 * pieces of at most 4 M floats (the buffer the prompts' perplexity uses), so a long prompt costs
 * no more memory than a short one. q is set up (session, sampler) by the caller. */
static fti_result eng_start_raw(eng *g, eng_seq *q, const char *prompt, size_t prompt_len,
                                const fti_gen_params *p, fti_gen_prompt_info *info,
                                fti_error *err) {
    size_t V = fti_engine_config(g->e)->vocab_size, n = 0, i, k, K = 0, t0, chunk, bl, n0 = 0;
    int bos = !p->prompt_ids && fti_engine_add_bos(g->e);
    fti_tokens tk;
    fti_result r;
    double nll = 0;
    memset(&tk, 0, sizeof tk);
    info->nll_mean = -1;
    if (p->prompt_ids) {
        if ((r = fti_gen_check_ids(p->prompt_ids, p->n_prompt_ids, V, -1, err)) != FTI_OK)
            return r;
        n = p->n_prompt_ids;
    } else {
        r = fti_tokenizer_encode(g->tok, prompt ? prompt : "", prompt ? prompt_len : 0, 0, &tk);
        if (r != FTI_OK) {
            fti_tokens_free(&tk);
            return fti_error_set(err, r, "prompt: encoding failed: %s", fti_result_str(r));
        }
        n = tk.len + (bos ? 1 : 0);
    }
    if (n == 0) {
        fti_tokens_free(&tk);
        return fti_error_set(err, FTI_ERR_INVALID, FTI_GEN_EMPTY_PROMPT_MSG);
    }
    if (n > (size_t)g->n_ctx || (size_t)p->max_tokens > (size_t)g->n_ctx - n) {
        fti_tokens_free(&tk);
        return fti_error_set(err, FTI_ERR_LIMIT,
                             "This model's maximum context length is %d tokens, but %lu were "
                             "requested (%lu in the prompt, %d for the completion)", g->n_ctx,
                             (unsigned long)(n + (size_t)p->max_tokens), (unsigned long)n,
                             p->max_tokens);
    }
    q->pids = (int32_t *)fti_malloc(n * sizeof(int32_t));
    if (!q->pids) {
        fti_tokens_free(&tk);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (p->prompt_ids) {
        memcpy(q->pids, p->prompt_ids, n * sizeof(int32_t));
    } else {
        if (bos) q->pids[0] = fti_engine_bos(g->e);
        for (i = 0; i < tk.len; i++) q->pids[(bos ? 1 : 0) + i] = (int32_t)tk.ids[i];
    }
    fti_tokens_free(&tk);
    q->n_pids = n;
    if (!p->echo_prompt) { /* token ids to continue from: one pass, no logits kept */
        r = g->use_batch_decode && g->n_live > 0
                ? fti_batch_prefill(g->dec, q->s, q->pids, n, NULL, g->pool, err)
                : fti_session_eval(q->s, q->pids, n, NULL, err);
        if (r != FTI_OK) return r;
    } else {
        if (p->logprobs) K = (size_t)q->n_top;
        q->ptoks = (fti_gen_token *)fti_calloc(n, sizeof *q->ptoks);
        if (K) {
            q->p_lp = (float *)fti_calloc(n * K, sizeof(float));
            q->p_text = (const char **)fti_calloc(n * K, sizeof(const char *));
            q->p_len = (size_t *)fti_calloc(n * K, sizeof(size_t));
        }
        if (!q->ptoks || (K && (!q->p_lp || !q->p_text || !q->p_len)))
            return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        for (i = 0; i < n; i++) {
            q->ptoks[i].id = q->pids[i];
            q->ptoks[i].text = fti_engine_token_bytes(g->e, q->pids[i], &bl);
            q->ptoks[i].text_len = q->ptoks[i].text ? bl : 0;
        }
        chunk = p->logprobs ? ((size_t)4 << 20) / V : n;
        if (chunk == 0) chunk = 1;
        if (chunk > n) chunk = n;
        if (p->logprobs && !eng_logits_buf(g, chunk))
            return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        for (t0 = 0; t0 < n; t0 += chunk) {
            size_t m = n - t0 < chunk ? n - t0 : chunk;
            float *lg = p->logprobs ? g->lg : NULL;
            /* the session's own forward even while others decode (the batch's packed weights
             * round differently): a prompt's scores do not depend on what else is served */
            r = g->use_batch_decode && g->n_live > 0 && !lg
                    ? fti_batch_prefill(g->dec, q->s, q->pids + t0, m, lg, g->pool, err)
                    : fti_session_eval(q->s, q->pids + t0, m, lg, err);
            if (r != FTI_OK) return r;
            for (i = 0; lg && i < m && t0 + i + 1 < n; i++) { /* row i predicts token t0+i+1 */
                fti_gen_token *t = &q->ptoks[t0 + i + 1];
                int32_t top_id[FTI_API_MAX_TOP_LOGPROBS];
                float top_lp[FTI_API_MAX_TOP_LOGPROBS];
                const float *row = lg + i * V;
                double lse = fti_logprobs_top(row, V, K, K ? top_id : NULL, top_lp);
                double lp = (double)row[t->id] - lse;
                t->has_logprob = 1;
                t->logprob = lp == lp ? (float)lp : -INFINITY;
                nll -= lp == lp ? lp : 0;
                n0++;
                for (k = 0; k < K; k++) {
                    q->p_lp[(t0 + i + 1) * K + k] = top_lp[k];
                    q->p_text[(t0 + i + 1) * K + k] = fti_engine_token_bytes(g->e, top_id[k], &bl);
                    q->p_len[(t0 + i + 1) * K + k] = q->p_text[(t0 + i + 1) * K + k] ? bl : 0;
                }
                t->n_top = (int)K;
                if (K) {
                    t->top_logprobs = q->p_lp + (t0 + i + 1) * K;
                    t->top_text = q->p_text + (t0 + i + 1) * K;
                    t->top_text_len = q->p_len + (t0 + i + 1) * K;
                }
            }
        }
        info->prompt_tokens = q->ptoks;
        info->n_prompt_tokens = n;
    }
    if (n0) {
        info->nll_mean = nll / (double)n0;
        info->nll_tokens = n0;
    }
    /* drift looks at the prompt's tokens (a BOS is not the user's) */
    for (i = bos ? 1 : 0; i < n; i++) {
        const char *b = fti_engine_token_bytes(g->e, q->pids[i], &bl);
        if (b && bl == 1 && (unsigned char)b[0] >= 0x80) info->n_byte_fallback++;
    }
    info->ids = q->pids + (bos ? 1 : 0);
    info->n_ids = n - (bos ? 1 : 0);
    info->n_tokens = n;
    return FTI_OK;
}

/* A chat's perplexity for drift: its last user message scored as a completion prompt of its
 * own (the template's header, no retrieved documents) on s, which the caller then resets. In
 * the chat prompt the message is the document's title, where the author's titles are a word
 * or a few; as a body it is text like the validation split's, which drift compares it with.
 * One more prefill of the message's tokens; info->nll_mean stays -1 when it does not fit. */
static void eng_chat_nll(eng *g, fti_session *s, const char *msg, size_t len, size_t room,
                         fti_gen_prompt_info *info) {
    fti_prompt pm;
    size_t V = fti_engine_config(g->e)->vocab_size;
    memset(&pm, 0, sizeof pm);
    if (fti_prompt_build(g->e, g->tok, NULL, msg, len, NULL, 0, room, &pm, NULL) == FTI_OK &&
        !pm.n_dropped && pm.n_text && pm.n_text < pm.n && eng_logits_buf(g, pm.n) &&
        fti_session_eval(s, pm.ids, pm.n, g->lg, NULL) == FTI_OK) {
        size_t t0 = pm.n - pm.n_text - 1;
        info->nll_mean = eng_nll(fti_engine_kernels(g->e), g->lg + t0 * V, pm.ids + t0,
                                 pm.n_text + 1, V);
        info->nll_tokens = pm.n_text;
    }
    fti_prompt_free(&pm);
}

static fti_result eng_start(void *user, const char *prompt, size_t prompt_len,
                            const fti_gen_params *p, void **seqp, fti_gen_prompt_info *info,
                            fti_error *err) {
    eng *g = (eng *)user;
    eng_seq *q;
    fti_prompt pr;
    fti_prompt_doc docs[16];
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    fti_search_hit hits[16];
#endif
    size_t n_docs = 0, room, V = fti_engine_config(g->e)->vocab_size, i;
    fti_tokens ut;
    fti_buf cj, cj2;
    const char *text = p->title ? p->context : prompt;
    const char *drift_text = p->title ? p->title : prompt; /* what drift looks at */
    size_t drift_len = p->title ? strlen(p->title) : prompt_len;
    size_t text_len = p->title ? p->context_len : prompt_len;
    fti_result r;
    float *all_logits = NULL;

    memset(&pr, 0, sizeof pr);
    memset(&ut, 0, sizeof ut);
    memset(&cj, 0, sizeof cj);
    memset(&cj2, 0, sizeof cj2);
    memset(docs, 0, sizeof docs);
    if (p->max_tokens + 8 > g->n_ctx)
        return fti_error_set(err, FTI_ERR_LIMIT,
                             "This model's maximum context length is %d tokens; max_tokens %d "
                             "leaves no room for the prompt", g->n_ctx, p->max_tokens);
    q = (eng_seq *)fti_calloc(1, sizeof *q);
    if (!q) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    if (p->prompt_ids || p->echo_prompt) { /* the prompt as itself: scored, or token ids */
        r = eng_session_get(g, &q->s, err);
        if (r == FTI_OK) r = eng_seq_setup(g, q, p, err);
        if (r == FTI_OK) r = eng_start_raw(g, q, prompt, prompt_len, p, info, err);
        if (r != FTI_OK) {
            eng_seq_free(g, q);
            return r;
        }
        *seqp = q;
        g->n_live++;
        return FTI_OK;
    }
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    if (g->ds && p->use_retrieval && g->rag_k > 0) {
        size_t k = (size_t)g->rag_k < 16 ? (size_t)g->rag_k : 16;
        n_docs = fti_dataset_search(g->ds, prompt, prompt_len, k, hits);
        for (i = 0; i < n_docs; i++) {
            docs[i].title = hits[i].title;
            docs[i].title_len = hits[i].title ? strlen(hits[i].title) : 0;
            docs[i].text = hits[i].text;
            docs[i].text_len = hits[i].text_len;
        }
    }
#endif
    room = (size_t)(g->n_ctx - p->max_tokens);
    r = fti_prompt_build(g->e, g->tok, p->title, text, text_len, docs, n_docs, room, &pr, err);
    if (r == FTI_ERR_LIMIT && err) { /* a chat's last message longer than the context */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        fti_error_set(err, r, "This model's maximum context length is %d tokens and max_tokens "
                      "is %d: the prompt does not fit (%s)", g->n_ctx, p->max_tokens, why);
    }
    if (r != FTI_OK) goto fail;
    if (pr.n_dropped) { /* OpenAI's answer, not the prompt cut from the left in silence */
        r = fti_error_set(err, FTI_ERR_LIMIT,
                          "This model's maximum context length is %d tokens; the prompt is %lu "
                          "tokens (with the template's) and max_tokens %d: shorten the prompt "
                          "or lower max_tokens", g->n_ctx,
                          (unsigned long)(pr.n + pr.n_dropped), p->max_tokens);
        goto fail;
    }
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    if (n_docs) { /* the chunks that made it into the prompt (best first) */
        fti_jw w;
        fti_jw_init(&w, &cj, 0);
        fti_jw_arr_begin(&w);
        for (i = 0; i < pr.n_docs_used && i < n_docs; i++) {
            fti_jw_obj_begin(&w);
            fti_jw_key(&w, "chunk");
            fti_jw_int(&w, hits[i].chunk);
            fti_jw_key(&w, "doc_id");
            fti_jw_str(&w, hits[i].doc_id ? hits[i].doc_id : "");
            fti_jw_key(&w, "title");
            fti_jw_str(&w, hits[i].title ? hits[i].title : "");
            fti_jw_key(&w, "score");
            fti_jw_num(&w, hits[i].score);
            fti_jw_obj_end(&w);
        }
        fti_jw_arr_end(&w);
    }
#endif
    if ((r = eng_session_get(g, &q->s, err)) != FTI_OK) goto fail;
    if ((r = eng_seq_setup(g, q, p, err)) != FTI_OK) goto fail;
    /* prefill; the prompt's perplexity comes from the same pass when its logits fit in 16 MiB */
    info->nll_mean = -1;
    if (p->title) { /* chat: the last user message, scored first as a prompt of its own */
        eng_chat_nll(g, q->s, p->title, strlen(p->title), room, info);
        fti_session_reset(q->s);
    } else if (pr.n > 1 && eng_logits_buf(g, pr.n)) {
        all_logits = g->lg;
    }
    /* while other sequences decode in batches: through the batch's packed weights, on the pool;
     * a lone sequence decodes by the session's GEMV from the file's rows, which the packed
     * copy would push out of the cache (measured: 1 client 9% slower) */
    r = g->use_batch_decode && g->n_live > 0
            ? fti_batch_prefill(g->dec, q->s, pr.ids, pr.n, all_logits, g->pool, err)
            : fti_session_eval(q->s, pr.ids, pr.n, all_logits, err);
    if (r != FTI_OK) goto fail;
    if (all_logits && pr.n_text && pr.n_text < pr.n) {
        /* the perplexity of the user's own text given what precedes it (the retrieved documents
         * and its header), which drift compares with the validation perplexity: the author's
         * retrieved text would otherwise dilute a foreign prompt's. (The logits of the last
         * prompt token stay in the session: eval wrote them there too.) */
        size_t t0 = pr.n - pr.n_text - 1;
        info->nll_mean = eng_nll(fti_engine_kernels(g->e), all_logits + t0 * V, pr.ids + t0,
                                 pr.n_text + 1, V);
        info->nll_tokens = pr.n_text;
    }
    /* drift looks at the user's own text (chat: the last user message), not the template, the
     * earlier turns or the retrieved documents, after the feature pipeline's normalisation (so
     * runs of blanks or CRLFs do not read as drift) */
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    fti_clean_text(drift_text, drift_len, 0, &cj2);
#else
    fti_buf_append(&cj2, drift_text, drift_len);
#endif
    if (!cj2.oom &&
        fti_tokenizer_encode(g->tok, cj2.data ? cj2.data : "", cj2.len, 0, &ut) == FTI_OK &&
        ut.len) {
        q->user_ids = (int32_t *)fti_malloc(ut.len * sizeof(int32_t));
        if (q->user_ids) {
            for (i = 0; i < ut.len; i++) {
                size_t bl = 0;
                const char *b = fti_engine_token_bytes(g->e, (int32_t)ut.ids[i], &bl);
                q->user_ids[i] = (int32_t)ut.ids[i];
                if (b && bl == 1 && (unsigned char)b[0] >= 0x80) info->n_byte_fallback++;
            }
            q->n_user = ut.len;
        }
    }
    fti_tokens_free(&ut);
    fti_buf_free(&cj2);
    info->ids = q->user_ids;
    info->n_ids = q->user_ids ? q->n_user : 0;
    info->n_tokens = pr.n;
    if (cj.len && !cj.oom) {
        q->chunks_json = cj.data;
        cj.data = NULL;
    }
    fti_buf_free(&cj);
    info->chunks_json = q->chunks_json;
    info->n_chunks = (int)pr.n_docs_used;
    fti_prompt_free(&pr);
    *seqp = q;
    g->n_live++;
    return FTI_OK;
fail:
    fti_prompt_free(&pr);
    fti_tokens_free(&ut);
    fti_buf_free(&cj);
    fti_buf_free(&cj2);
    eng_seq_free(g, q);
    return r;
}

/* Another sample of a sequence eng_start has just begun (n > 1): a session that continues where
 * from's is (its prompt's KV rows and last logits copied, not evaluated again), with its own
 * sampler and seed. */
static fti_result eng_fork(void *user, void *from, const fti_gen_params *p, void **seqp,
                           fti_error *err) {
    eng *g = (eng *)user;
    eng_seq *src = (eng_seq *)from, *q;
    fti_result r = FTI_OK;
    if (!src || !src->s) return fti_error_set(err, FTI_ERR_INVALID, "fork: no sequence");
    q = (eng_seq *)fti_calloc(1, sizeof *q);
    if (!q) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    r = eng_session_get(g, &q->s, err);
    if (r == FTI_OK) r = fti_session_copy(q->s, src->s, err);
    if (r == FTI_OK) r = eng_seq_setup(g, q, p, err);
    if (r != FTI_OK) {
        eng_seq_free(g, q);
        return r;
    }
    *seqp = q;
    g->n_live++;
    return FTI_OK;
}

typedef struct eng_par {
    fti_session **ss;
    int32_t *tok;
    fti_result *rc;
} eng_par;

static void eng_par_task(void *ctx, size_t begin, size_t end, int thread) {
    eng_par *c = (eng_par *)ctx;
    size_t i;
    (void)thread;
    for (i = begin; i < end; i++) c->rc[i] = fti_session_eval(c->ss[i], &c->tok[i], 1, NULL, NULL);
}

/* Sampling of a step's sequences on the pool: each has its own sampler and logits. */
typedef struct eng_samp {
    void **seqs;
    int32_t *tok;
    size_t V;
} eng_samp;

static void eng_samp_task(void *ctx, size_t begin, size_t end, int thread) {
    eng_samp *c = (eng_samp *)ctx;
    size_t i, k;
    (void)thread;
    for (i = begin; i < end; i++) {
        eng_seq *q = (eng_seq *)c->seqs[i];
        float *lg = fti_session_logits(q->s);
        if (q->raw) { /* logprobs: of the model's own distribution, before sampling changes it */
            memcpy(q->raw, lg, c->V * sizeof(float));
            q->lse = fti_logprobs_top(q->raw, c->V, (size_t)q->n_top, q->top_id, q->top_lp);
        }
        for (k = 0; k < q->n_bias; k++) lg[q->bias_ids[k]] += q->bias[k];
        c->tok[i] = fti_sampler_sample(q->smp, lg);
    }
}

/* One step: every sequence samples its next token from its logits, then the ones that go on are
 * decoded: by default by one batched forward (fti_session_eval_batch through fti_batch_decode:
 * each weight matrix is read once for all of them by part 02's multi-row quantized kernels),
 * with --no-batch-decode each session on its own worker. Measured with bench_infer batch on the
 * stories15M shape in Q8_0, one thread: 16 sequences per step give 1.3x the tokens/s of 16
 * separate steps (CPU time). */
static fti_result eng_step(void *user, void **seqs, size_t n, fti_gen_token *out, fti_error *err) {
    eng *g = (eng *)user;
    size_t i, nb = 0, mb = (size_t)g->max_batch;
    for (i = 0; i < n; i++) {
        eng_seq *q = (eng_seq *)seqs[i];
        int32_t t;
        size_t bl = 0;
        if (i % mb == 0) { /* the next max_batch sequences sample on the pool */
            eng_samp c;
            c.seqs = seqs + i;
            c.tok = g->st;
            c.V = fti_engine_config(g->e)->vocab_size;
            fti_pool_for(g->pool, n - i < mb ? n - i : mb, 1, eng_samp_task, &c);
        }
        t = g->st[i % mb];
        memset(&out[i], 0, sizeof out[i]);
        out[i].id = t;
        if (t < 0 || t == g->eos) {
            out[i].is_end = 1;
            continue;
        }
        fti_sampler_accept(q->smp, t);
        out[i].text = fti_engine_token_bytes(g->e, t, &bl);
        out[i].text_len = out[i].text ? bl : 0;
        if (q->raw) {
            int k;
            double lp = (double)q->raw[t] - q->lse;
            out[i].has_logprob = 1;
            out[i].logprob = lp == lp ? (float)lp : -INFINITY;
            for (k = 0; k < q->n_top; k++) {
                q->top_text[k] = fti_engine_token_bytes(g->e, q->top_id[k], &bl);
                q->top_len[k] = q->top_text[k] ? bl : 0;
            }
            out[i].n_top = q->n_top;
            out[i].top_logprobs = q->top_lp;
            out[i].top_text = q->top_text;
            out[i].top_text_len = q->top_len;
        }
        if (fti_session_pos(q->s) >= fti_session_n_ctx(q->s)) {
            out[i].is_end = 1; /* context full: this was the last token */
            continue;
        }
        if (nb < (size_t)g->max_batch) {
            g->bs[nb] = q->s;
            g->bt[nb++] = t;
        } else if (fti_session_eval(q->s, &t, 1, NULL, err) != FTI_OK) {
            return FTI_ERR_IO;
        }
    }
    if (nb == 0) return FTI_OK;
    /* one sequence: the session's own fused GEMV path */
    if (nb == 1) return fti_session_eval(g->bs[0], g->bt, 1, NULL, err);
    if (g->use_batch_decode) return fti_session_eval_batch(g->dec, g->bs, g->bt, nb, g->pool, err);
    {
        eng_par c;
        c.ss = g->bs;
        c.tok = g->bt;
        c.rc = g->brc;
        fti_pool_for(g->pool, nb, 1, eng_par_task, &c);
        for (i = 0; i < nb; i++)
            if (g->brc[i] != FTI_OK)
                return fti_error_set(err, g->brc[i], "decode: %s", fti_result_str(g->brc[i]));
    }
    return FTI_OK;
}

static void eng_end(void *user, void *seq) {
    eng *g = (eng *)user;
    if (g && seq && g->n_live) g->n_live--;
    eng_seq_free(g, (eng_seq *)seq);
}

static void eng_release(void *user) {
    eng *g = (eng *)user;
    if (!g) return;
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    fti_dataset_close(g->ds);
#endif
    fti_batch_free(g->dec);
    while (g->n_spare) fti_session_free(g->spare[--g->n_spare]);
    fti_free(g->spare);
    fti_free(g->bs);
    fti_free(g->bt);
    fti_free(g->brc);
    fti_free(g->st);
    fti_free(g->lg);
    fti_tokenizer_free(g->tok);
    fti_engine_close(g->e);
    fti_free(g);
}

/* The drift reference from the feature-store version the model was trained on: token counts of
 * the train shard, document lengths, byte-fallback share, and the validation perplexity measured
 * on the first 512 tokens of the val shard. NULL when there is no lineage or store. */
static fti_drift_ref *eng_reference(eng *g) {
    fti_drift_ref *ref = NULL;
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    const fti_dataset_stats *st = g->ds ? fti_dataset_get_stats(g->ds) : NULL;
    uint64_t len_hist[FTI_DRIFT_LEN_BINS], total = 0, bytes = 0, *counts;
    size_t i;
    double val_ppl = 0;
    fti_error err;
    if (!st || !st->token_counts || !st->vocab_size) return NULL;
    memset(len_hist, 0, sizeof len_hist);
    for (i = 0; i < 32; i++) {
        size_t b = i + 1 < FTI_DRIFT_LEN_BINS ? i + 1 : FTI_DRIFT_LEN_BINS - 1;
        len_hist[b] += st->doc_chars_log2_hist[i];
    }
    /* the template's markers (control tokens, rendered as nothing) are in every training
     * document but never in a user's text: they are left out of the reference */
    counts = (uint64_t *)fti_malloc(st->vocab_size * sizeof(uint64_t));
    if (!counts) return NULL;
    for (i = 0; i < st->vocab_size; i++) {
        size_t bl = 0;
        const char *b = fti_engine_token_bytes(g->e, (int32_t)i, &bl);
        counts[i] = b && bl > 0 ? st->token_counts[i] : 0;
        total += counts[i];
        if (b && bl == 1 && (unsigned char)b[0] >= 0x80) bytes += counts[i];
    }
    {
        const fti_token_shard *val = fti_dataset_shard(g->ds, FTI_SPLIT_VAL);
        if (val && val->count > 16) {
            size_t n = val->count < 512 ? (size_t)val->count : 512;
            int32_t *ids = (int32_t *)fti_malloc(n * sizeof(int32_t));
            fti_session *s = NULL;
            fti_session_opts so;
            double nll = 0;
            memset(&so, 0, sizeof so); /* no pool: the watcher thread may run this while serving */
            for (i = 0; ids && i < n; i++) ids[i] = (int32_t)fti_shard_at(val, i);
            if (ids && fti_session_create(&s, g->e, &so, &err) == FTI_OK &&
                fti_session_nll(s, ids, n, &nll, &err) == FTI_OK)
                val_ppl = exp(nll);
            fti_session_free(s);
            fti_free(ids);
        }
    }
    if (fti_drift_ref_build(counts, st->vocab_size, len_hist,
                            total ? (double)bytes / (double)total : 0, val_ppl, &ref,
                            &err) != FTI_OK)
        ref = NULL;
    fti_free(counts);
#else
    (void)g;
#endif
    return ref;
}

/* Opens the model at path for serving on pool. load_pool: the pool the load's repacking may
 * run on (the serving pool before the server starts; NULL for a reload, while it serves). */
static fti_result eng_open(const char *path, const char *home, int n_ctx, int rag_k,
                           int max_batch, fti_pool *pool, fti_pool *load_pool, fti_gen *gen,
                           fti_drift_ref **ref, fti_error *err) {
    eng *g = (eng *)fti_calloc(1, sizeof *g);
    fti_result r;
    const char *idp = fti_path_base(path);
    fti_engine_opts eo;
#if !defined(FTI_STORE_H) || defined(FTI_NO_STORE)
    (void)home; /* retrieval and drift need the feature store */
#endif
    if (!g) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    memset(&eo, 0, sizeof eo);
    eo.pool = load_pool;
    eo.repack_q8_0 = 1; /* a server loads once and decodes for long: Q8_0's faster form too */
    r = fti_engine_open(&g->e, path, &eo, err);
    if (r == FTI_OK) r = fti_engine_tokenizer(g->e, &g->tok, err);
    if (r != FTI_OK) {
        eng_release(g);
        return r;
    }
    g->pool = pool;
    g->rag_k = rag_k;
    g->eos = fti_engine_eos(g->e);
    g->n_ctx = (int)fti_engine_config(g->e)->context_len;
    if (n_ctx > 0 && n_ctx < g->n_ctx) {
        g->n_ctx = n_ctx;
    } else if (n_ctx > g->n_ctx) { /* (the model knows no positions past its own) */
        char msg[256];
        snprintf(msg, sizeof msg, "--ctx %d is more than %s's context: sequences get its %d",
                 n_ctx, fti_path_base(path), g->n_ctx);
        log_fn(NULL, FTI_LOG_WARN, msg);
    } else if (n_ctx <= 0 && g->n_ctx > CTX_DEFAULT_MAX) {
        g->n_ctx = CTX_DEFAULT_MAX;
    }
    g->max_batch = max_batch > 0 ? max_batch : 16;
    g->bs = (fti_session **)fti_calloc((size_t)g->max_batch, sizeof *g->bs);
    g->bt = (int32_t *)fti_calloc((size_t)g->max_batch, sizeof *g->bt);
    g->brc = (fti_result *)fti_calloc((size_t)g->max_batch, sizeof *g->brc);
    g->st = (int32_t *)fti_calloc((size_t)g->max_batch, sizeof *g->st);
    g->spare = (fti_session **)fti_calloc((size_t)g->max_batch, sizeof *g->spare);
    g->use_batch_decode = g_batch_decode;
    r = g->bs && g->bt && g->brc && g->st
            ? fti_batch_create(g->e, (size_t)g->max_batch, (size_t)g->n_ctx, &g->dec, err)
            : fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    if (r != FTI_OK) {
        eng_release(g);
        return r;
    }
    /* the id: the registry directory name (HOME/models/<id>/model.gguf), else the file name */
    {
        char *dir = fti_strndup(path, (size_t)(idp - path));
        size_t dl = dir ? strlen(dir) : 0;
        if (dir && dl > 1 && strcmp(idp, "model.gguf") == 0) {
            dir[dl - 1] = 0;
            snprintf(g->id, sizeof g->id, "%s", fti_path_base(dir));
        } else {
            snprintf(g->id, sizeof g->id, "%s", idp);
        }
        fti_free(dir);
    }
#if defined(FTI_STORE_H) && !defined(FTI_NO_STORE)
    {
        const char *ver = NULL;
        size_t ver_len = 0;
        if (home && fti_gguf_get_str(fti_engine_gguf(g->e), "fti.dataset.version", &ver, &ver_len,
                                     NULL) == FTI_OK) {
            char *v = fti_strndup(ver, ver_len);
            fti_error e2;
            if (v && fti_dataset_open(&g->ds, home, v, &e2) != FTI_OK) {
                /* a damaged token shard costs only the perplexity check (it reads the val
                 * shard; the index-only open maps neither): retrieval and token drift need
                 * the index and the manifest */
                char msg[FTI_ERROR_MSG_MAX + 96];
                fti_error e3;
                g->ds = NULL;
                if (fti_dataset_open_index(&g->ds, home, v, &e3) == FTI_OK) {
                    snprintf(msg, sizeof msg, "the perplexity drift check off (a token shard "
                             "is damaged): %s", e2.msg);
                } else {
                    g->ds = NULL;
                    snprintf(msg, sizeof msg, "retrieval and drift off: dataset %.16s: %s", v,
                             e3.msg);
                }
                log_fn(NULL, FTI_LOG_WARN, msg);
            }
            fti_free(v);
        }
    }
#endif
    if (ref) *ref = eng_reference(g);
    memset(gen, 0, sizeof *gen);
    gen->user = g;
    gen->model_id = eng_id;
    gen->n_ctx = eng_n_ctx;
    gen->seq_start = eng_start;
    gen->seq_fork = eng_fork;
    gen->step = eng_step;
    gen->seq_end = eng_end;
    gen->release = eng_release;
    gen->n_vocab = eng_n_vocab;
    gen->tokenize = eng_tokenize;
    gen->detokenize = eng_detokenize;
    { /* /v1/models' "created": when the file was written (registered: copied into the
       * registry, right after training) */
        struct stat st;
        if (stat(path, &st) == 0) gen->created = (int64_t)st.st_mtime;
    }
    return FTI_OK;
}
#endif /* FTI_INFER_H */

/* Resolves a registry alias (or model id) to HOME/models/<id>/model.gguf
 * (fti_registry_model_path: it says when gc removed the file); without the registry
 * (FTI_NO_TRAIN) the name is taken as the model's id. */
static char *resolve_alias(const char *home, const char *name, fti_error *err) {
#if defined(FTI_TRAIN_H) && !defined(FTI_NO_TRAIN)
    char *path = NULL;
    return fti_registry_model_path(home, name, &path, NULL, err) == FTI_OK ? path : NULL;
#else
    char *models = fti_path_join(home, "models");
    char *dir = models ? fti_path_join(models, name) : NULL,
         *path = dir ? fti_path_join(dir, "model.gguf") : NULL;
    if (path && !fti_path_exists(path)) {
        fti_error_set(err, FTI_ERR_NOT_FOUND, "alias %s: no model at %s", name, path);
        fti_free(path);
        path = NULL;
    }
    fti_free(dir);
    fti_free(models);
    return path;
#endif
}

/* Checks a registered model's file (HOME/models/<id>/model.gguf, as resolve_alias gives it)
 * against its card's SHA-256 (fti_registry_verify): a damaged file is not served. 1 when it
 * matches or cannot be checked in this build (no registry: FTI_NO_TRAIN). */
static int verify_model(const char *home, const char *path, fti_error *err) {
#if defined(FTI_TRAIN_H) && !defined(FTI_NO_TRAIN)
    char *dir = fti_strndup(path, (size_t)(fti_path_base(path) - path));
    size_t dl = dir ? strlen(dir) : 0;
    fti_result r;
    if (!dir) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory"), 0;
    if (dl > 1) dir[dl - 1] = 0;
    r = fti_registry_verify(home, fti_path_base(dir), NULL, NULL, err);
    fti_free(dir);
    return r == FTI_OK;
#else
    (void)home;
    (void)path;
    (void)err;
    return 1;
#endif
}

/* === hot reload: a thread that follows the alias ============================================ */

typedef struct watcher {
    const char *home, *alias;
    char *current; /* model path in use */
    char *failed;  /* the last model that did not load (said once, tried again when it changes) */
    int64_t failed_mtime, failed_size; /* its file then: a file put back is tried again */
    int interval_s, n_ctx, rag_k, max_batch, verify;
    fti_pool *pool;
    fti_monitor *mon;
    volatile int stop;
} watcher;

static void *watch_main(void *arg) {
    watcher *w = (watcher *)arg;
    int ticks = 0;
    while (!w->stop) {
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
        if (++ticks < w->interval_s * 10) continue;
        ticks = 0;
        {
            fti_error err;
            char *path = resolve_alias(w->home, w->alias, &err);
            if (!path) continue;
            {
                struct stat st;
                int have = stat(path, &st) == 0;
                if ((w->current && strcmp(path, w->current) == 0) ||
                    (w->failed && strcmp(path, w->failed) == 0 && have &&
                     (int64_t)st.st_mtime == w->failed_mtime &&
                     (int64_t)st.st_size == w->failed_size)) {
                    fti_free(path);
                    continue;
                }
                w->failed_mtime = have ? (int64_t)st.st_mtime : -1;
                w->failed_size = have ? (int64_t)st.st_size : -1;
            }
#if defined(FTI_INFER_H)
            {
                fti_gen gen;
                fti_drift_ref *ref = NULL;
                char msg[FTI_ERROR_MSG_MAX + 600];
                if ((w->verify && !verify_model(w->home, path, &err)) ||
                    eng_open(path, w->home, w->n_ctx, w->rag_k, w->max_batch, w->pool, NULL,
                             &gen, &ref, &err) != FTI_OK) {
                    /* said once: tried again when the alias moves or the file changes (a
                     * backup copied back) */
                    snprintf(msg, sizeof msg, "alias %s moved, but %s is not served (still "
                             "serving %s): %s", w->alias, path,
                             w->current ? w->current : "the model before", err.msg);
                    log_fn(NULL, FTI_LOG_ERROR, msg);
                    fti_free(w->failed);
                    w->failed = path;
                    continue;
                }
                /* the generator first, then its reference: requests started on the old model
                 * then count for neither window (fti_monitor_set_ref) */
                fti_server_set_generator(g_srv, &gen);
                if (w->mon) fti_monitor_set_ref(w->mon, ref);
                fti_drift_ref_free(ref);
                snprintf(msg, sizeof msg, "alias %s moved: now serving %s", w->alias, path);
                log_fn(NULL, FTI_LOG_INFO, msg);
            }
#endif
            fti_free(w->current);
            w->current = path;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *home_arg = NULL, *alias = NULL, *model = NULL, *log_arg = NULL, *port_file = NULL;
    int echo = 0, threads = 0, n_ctx = 0, rag_k = 3, reload_s = 2, verify = 1, i, rc = 1;
    unsigned step_us = 0;
    long log_max_mb = 16;
    fti_server_opts o;
    fti_monitor_opts mo;
    fti_monitor *mon = NULL;
    fti_drift_ref *ref = NULL;
    fti_gen gen;
    fti_error err;
    fti_pool *pool = NULL;
    char *home = NULL, *model_path = NULL, *log_path = NULL;
    struct sigaction sa;
    watcher w;
    pthread_t wth;
    int watching = 0;

#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
    /* A fixed mmap threshold: blocks of 256 KiB and more (a prompt's logits, samplers, sessions
     * beyond the spares) are mapped and go back to the system when freed. glibc's default
     * threshold rises after such a free, moving later ones into the heap, where a long-running
     * server's churn fragments it and RSS creeps up (seen in `make bench-serve SOAK=60`). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
    memset(&o, 0, sizeof o);
    memset(&mo, 0, sizeof mo);
    memset(&w, 0, sizeof w);
    memset(&gen, 0, sizeof gen);
    o.port = 8080;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x = 0.0;
#define NEEDV()                                                      \
    do {                                                             \
        if (!v) {                                                    \
            fprintf(stderr, "fti-serve: %s needs a value\n", a);     \
            return 2;                                                \
        }                                                            \
        i++;                                                         \
    } while (0)
/* a whole number from lo to hi into x */
#define NUMV(lo, hi)                                                                        \
    do {                                                                                    \
        char *end_ = NULL;                                                                  \
        NEEDV();                                                                            \
        x = strtod(v, &end_);                                                               \
        if (end_ == v || *end_ || !(x >= (lo) && x <= (hi)) || x != (double)(long long)x) { \
            fprintf(stderr, "fti-serve: %s takes a whole number from %.0f to %.0f, not '%s'\n", \
                    a, (double)(lo), (double)(hi), v);                                      \
            return 2;                                                                       \
        }                                                                                   \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--home")) { NEEDV(); home_arg = v; }
        else if (!strcmp(a, "--alias")) { NEEDV(); alias = v; }
        else if (!strcmp(a, "--model")) { NEEDV(); model = v; }
        else if (!strcmp(a, "--echo")) echo = 1;
        else if (!strcmp(a, "--step-us")) { NUMV(0, 10000000); step_us = (unsigned)x; }
        else if (!strcmp(a, "--host")) { NEEDV(); o.host = v; }
        else if (!strcmp(a, "--port")) { NUMV(0, 65535); o.port = (int)x; }
        else if (!strcmp(a, "--threads")) { NUMV(0, 1024); threads = (int)x; }
        else if (!strcmp(a, "--ctx")) { NUMV(0, 16777216); n_ctx = (int)x; }
        else if (!strcmp(a, "--max-batch")) { NUMV(0, 4096); o.max_batch = (int)x; }
        else if (!strcmp(a, "--max-queue")) { NUMV(0, 1000000); o.max_queue = (int)x; }
        else if (!strcmp(a, "--max-conns")) { NUMV(0, 1000000); o.max_conns = (int)x; }
        else if (!strcmp(a, "--header-timeout-ms")) {
            NUMV(0, 86400000);
            o.header_timeout_ms = (int)x;
        }
        else if (!strcmp(a, "--idle-timeout-ms")) {
            NUMV(0, 86400000);
            o.idle_timeout_ms = (int)x;
        }
        else if (!strcmp(a, "--body-timeout-ms")) {
            NUMV(0, 86400000);
            o.body_timeout_ms = (int)x;
        }
        else if (!strcmp(a, "--max-body")) {
            NUMV(0, 1073741824.0);
            o.limits.max_body = (size_t)x;
        }
        else if (!strcmp(a, "--rag-k")) { NUMV(0, 64); rag_k = (int)x; }
        else if (!strcmp(a, "--log")) { NEEDV(); log_arg = v; }
        else if (!strcmp(a, "--instance")) { NEEDV(); o.instance = v; }
        else if (!strcmp(a, "--cors")) { NEEDV(); o.cors_origin = v; }
        else if (!strcmp(a, "--log-max-mb")) { NUMV(0, 1048576); log_max_mb = (long)x; }
        else if (!strcmp(a, "--reload-s")) { NUMV(0, 86400); reload_s = (int)x; }
        else if (!strcmp(a, "--port-file")) { NEEDV(); port_file = v; }
        else if (!strcmp(a, "--quiet")) g_quiet = 1;
        else if (!strcmp(a, "--no-verify")) verify = 0;
        else if (!strcmp(a, "--batch-decode")) g_batch_decode = 1;
        else if (!strcmp(a, "--no-batch-decode")) g_batch_decode = 0;
        else if (!strcmp(a, "--kv")) {
            int kt;
            NEEDV();
            if ((kt = fti_kv_type_parse(v)) < 0) {
                fprintf(stderr, "fti-serve: --kv: f16, f32 or q8, not %s\n", v);
                return 2;
            }
            g_kv_type = (fti_kv_type)kt;
        }
        else {
            fprintf(stderr, "fti-serve: unknown argument %s (see --help)\n", a);
            return 2;
        }
#undef NUMV
#undef NEEDV
    }
    if ((alias != NULL) + (model != NULL) + echo > 1) {
        fprintf(stderr, "fti-serve: give at most one of --alias, --model, --echo\n");
        return 2;
    }
    if (o.instance && (!*o.instance || strlen(o.instance) > 64 ||
                       strspn(o.instance, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789._-") != strlen(o.instance))) {
        fprintf(stderr, "fti-serve: --instance must be 1-64 of [A-Za-z0-9._-]\n");
        return 2;
    }
    home = fti_strdup(home_arg && *home_arg ? home_arg
                      : getenv("FTI_HOME") && *getenv("FTI_HOME") ? getenv("FTI_HOME") : "twin");
    pool = fti_pool_create(threads);

    /* the generator */
    if (echo) {
        fti_gen_echo_opts eo;
        memset(&eo, 0, sizeof eo);
        eo.step_us = step_us;
        eo.n_ctx = n_ctx > 0 ? n_ctx : 2048;
        if (fti_gen_echo_create(&eo, &gen) != FTI_OK) {
            fprintf(stderr, "fti-serve: out of memory\n");
            goto out;
        }
    } else {
#if defined(FTI_INFER_H)
        if (!model) {
            if (!alias) alias = "production";
            model_path = resolve_alias(home, alias, &err);
            if (!model_path) {
                fprintf(stderr, "fti-serve: %s (train and promote a model, or use --model FILE)\n",
                        err.msg);
                goto out;
            }
            if (verify && !verify_model(home, model_path, &err)) {
                fprintf(stderr, "fti-serve: %s (or `fti-registry --home %s rollback %s` to "
                        "serve the model before it; --no-verify serves it anyway)\n", err.msg,
                        home, alias);
                goto out;
            }
            model = model_path;
        }
        if (eng_open(model, home, n_ctx, rag_k, o.max_batch, pool, pool, &gen, &ref, &err) !=
            FTI_OK) {
            fprintf(stderr, "fti-serve: %s\n", err.msg);
            goto out;
        }
#else
        fprintf(stderr, "fti-serve: this build has no inference engine (part 08); use --echo\n");
        goto out;
#endif
    }

    /* monitoring */
    if (!log_arg) {
        char *logs = fti_path_join(home, "logs"), name[96];
        snprintf(name, sizeof name, "requests%s%.64s.jsonl", o.instance ? "-" : "",
                 o.instance ? o.instance : "");
        log_path = logs ? fti_path_join(logs, name) : NULL;
        fti_free(logs);
    } else if (strcmp(log_arg, "-") != 0) {
        log_path = fti_strdup(log_arg);
    }
    mo.log_path = log_path;
    mo.log.max_bytes = (uint64_t)(log_max_mb > 0 ? log_max_mb : 16) << 20;
    mo.ref = ref;
    mo.log_fn = log_fn;
    if (fti_monitor_create(&mo, &mon, &err) != FTI_OK) {
        fprintf(stderr, "fti-serve: %s%s\n", err.msg,
                log_path ? " (the request log: --log FILE writes it elsewhere, --log - not at all)"
                         : "");
        if (gen.release) gen.release(gen.user);
        goto out;
    }
    if (!ref && !echo)
        log_fn(NULL, FTI_LOG_WARN,
               "no drift reference (the model has no feature-store lineage under --home)");

    o.monitor = mon;
    o.log = log_fn;
    if (fti_server_create(&o, &gen, &g_srv, &err) != FTI_OK) {
        fprintf(stderr, "fti-serve: %s\n", err.msg);
        goto out;
    }
    if (port_file) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d\n", fti_server_port(g_srv));
        fti_file_write_atomic(port_file, buf, strlen(buf), NULL);
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    if (alias && !model_path) alias = NULL;
    if (alias && reload_s > 0) {
        w.home = home;
        w.alias = alias;
        w.current = fti_strdup(model_path);
        w.interval_s = reload_s;
        w.verify = verify;
        w.n_ctx = n_ctx;
        w.rag_k = rag_k;
        w.max_batch = o.max_batch;
        w.pool = pool;
        w.mon = mon;
        watching = pthread_create(&wth, NULL, watch_main, &w) == 0;
    }
    {
        char msg[256];
        snprintf(msg, sizeof msg, "serving on http://%s:%d/", o.host ? o.host : "127.0.0.1",
                 fti_server_port(g_srv));
        log_fn(NULL, FTI_LOG_INFO, msg);
    }
    if (fti_server_run(g_srv, &err) != FTI_OK) {
        fprintf(stderr, "fti-serve: %s\n", err.msg);
        goto out;
    }
    rc = 0;
out:
    if (watching) {
        w.stop = 1;
        pthread_join(wth, NULL);
    }
    fti_free(w.current);
    fti_free(w.failed);
    { /* the handlers must not reach a freed server */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
    }
    fti_server_free(g_srv);
    g_srv = NULL;
    fti_monitor_free(mon);
    fti_drift_ref_free(ref);
    fti_pool_free(pool);
    fti_free(model_path);
    fti_free(log_path);
    fti_free(home);
    return rc;
}
