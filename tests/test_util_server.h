/* test_util_server.h: what the server tests share (test_server.c, test_harden_server.c,
 * test_fault.c): a loopback client connect, and a generator over a real engine (the tests' small
 * model) whose steps go through fti_session_eval_batch as fti-serve's do. Static, in the one
 * translation unit of the test runner; included by each user, so guarded. */
#ifndef FTI_TEST_UTIL_SERVER_H
#define FTI_TEST_UTIL_SERVER_H
#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A TCP connection to 127.0.0.1:port, or -1. */
FTI__UNUSED static int tu_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The engine generator (fti_gen over the tests' small model: vocabulary 96, 95 = BOS/EOS).
 * Every call but tu_gen_id/tu_gen_n_ctx comes from the server's scheduler thread. The prompt is
 * one id per byte (the model's vocabulary of 96 has no byte-level tokenizer); a prompt over 46
 * bytes is cut to its last 20 (a chat template: its end). Sequences alternate f32 and f16 KV
 * caches; one per sampler with the request's parameters. */
typedef struct tu_gen {
    fti_engine *e;
    fti_batch *bt;
    fti_session *bs[8];
    int32_t bt_tok[8];
    int n_ctx;
    int n_live, n_started, n_ended, max_step_n, step_errors;
    unsigned step_us;
} tu_gen;

typedef struct tu_seq {
    fti_session *s;
    fti_sampler *smp;
    int32_t ids[64]; /* the prompt (the monitor's drift buckets read them) */
} tu_seq;

FTI__UNUSED static const char *tu_gen_id(void *u) { (void)u; return "hs-model"; }
FTI__UNUSED static int tu_gen_n_ctx(void *u) { return ((tu_gen *)u)->n_ctx; }

/* The prompt's ids into q->ids (BOS first, then one id per byte); returns the count. */
FTI__UNUSED static size_t tu_gen_prompt(const char *prompt, size_t len, tu_seq *q) {
    size_t i, n = len <= 46 ? len : 20;
    const char *p = prompt + len - n;
    q->ids[0] = 95; /* BOS */
    for (i = 0; i < n; i++) q->ids[i + 1] = (int32_t)((unsigned char)p[i] % 52);
    return n + 1;
}

FTI__UNUSED static fti_result tu_gen_start(void *u, const char *prompt, size_t len,
                                           const fti_gen_params *p, void **out,
                                           fti_gen_prompt_info *info, fti_error *err) {
    tu_gen *g = (tu_gen *)u;
    tu_seq *q;
    fti_session_opts so;
    fti_sampler_opts sm;
    size_t n;
    fti_result r;
    q = (tu_seq *)fti_calloc(1, sizeof *q);
    if (!q) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    n = tu_gen_prompt(prompt, len, q);
    if (n >= (size_t)g->n_ctx) {
        fti_free(q);
        return fti_error_set(err, FTI_ERR_LIMIT, "prompt of %lu tokens does not fit",
                             (unsigned long)n);
    }
    memset(&so, 0, sizeof so);
    so.kv_type = g->n_started % 2 ? FTI_KV_F16 : FTI_KV_F32;
    fti_gen_sampler_opts(p, &sm);
    r = fti_session_create(&q->s, g->e, &so, err);
    if (r == FTI_OK && (r = fti_sampler_create(&q->smp, 96, &sm)) != FTI_OK)
        fti_error_set(err, r, "sampler");
    if (r == FTI_OK) /* while others decode: through the batch, as fti-serve does */
        r = g->n_live ? fti_batch_prefill(g->bt, q->s, q->ids, n, NULL, NULL, err)
                      : fti_session_eval(q->s, q->ids, n, NULL, err);
    if (r != FTI_OK) {
        fti_sampler_free(q->smp);
        fti_session_free(q->s);
        fti_free(q);
        return r;
    }
    info->ids = q->ids;
    info->n_tokens = n;
    info->nll_mean = -1;
    g->n_live++;
    g->n_started++;
    *out = q;
    return FTI_OK;
}

FTI__UNUSED static fti_result tu_gen_step(void *u, void **seqs, size_t n, fti_gen_token *out,
                                          fti_error *err) {
    tu_gen *g = (tu_gen *)u;
    size_t i, nb = 0;
    fti_result r;
    if ((int)n > g->max_step_n) g->max_step_n = (int)n;
    if (g->step_us) {
        struct timespec ts;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)g->step_us * 1000L;
        nanosleep(&ts, NULL);
    }
    for (i = 0; i < n; i++) {
        tu_seq *q = (tu_seq *)seqs[i];
        int32_t t = fti_sampler_sample(q->smp, fti_session_logits(q->s));
        size_t bl = 0;
        memset(&out[i], 0, sizeof out[i]);
        out[i].id = t;
        if (t < 0 || t == 95) {
            out[i].is_end = 1;
            continue;
        }
        fti_sampler_accept(q->smp, t);
        out[i].text = fti_engine_token_bytes(g->e, t, &bl);
        out[i].text_len = out[i].text ? bl : 0;
        if (fti_session_pos(q->s) >= fti_session_n_ctx(q->s)) {
            out[i].is_end = 1; /* context full */
            continue;
        }
        if (nb >= 8) return fti_error_set(err, FTI_ERR_INVALID, "batch too large");
        g->bs[nb] = q->s;
        g->bt_tok[nb++] = t;
    }
    if (nb == 0) return FTI_OK;
    if (nb == 1) return fti_session_eval(g->bs[0], g->bt_tok, 1, NULL, err);
    r = fti_session_eval_batch(g->bt, g->bs, g->bt_tok, nb, NULL, err);
    if (r != FTI_OK) g->step_errors++;
    return r;
}

FTI__UNUSED static void tu_gen_end(void *u, void *seq) {
    tu_gen *g = (tu_gen *)u;
    tu_seq *q = (tu_seq *)seq;
    if (!q) return;
    g->n_live--;
    g->n_ended++;
    fti_sampler_free(q->smp);
    fti_session_free(q->s);
    fti_free(q);
}

/* Fills gen with g's callbacks (g->e, g->bt and g->n_ctx set by the caller; no release). */
FTI__UNUSED static void tu_gen_fill(tu_gen *g, fti_gen *gen) {
    memset(gen, 0, sizeof *gen);
    gen->user = g;
    gen->model_id = tu_gen_id;
    gen->n_ctx = tu_gen_n_ctx;
    gen->seq_start = tu_gen_start;
    gen->step = tu_gen_step;
    gen->seq_end = tu_gen_end;
}

#endif
#endif
