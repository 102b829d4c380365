/* test_harden_server.c: the hardening review of the server's batched decode (issue 10,
 * docs/hardening.md): a generator over real engine sessions whose steps go through
 * fti_session_eval_batch (as fti-serve's does), driven through the server by a mix of requests in
 * one batch: streamed and not, max_tokens 1, a stop string, a member that runs out of context,
 * a client that disconnects mid-stream and one that never reads. Every answer is whole and
 * well-formed, every started sequence is ended, nothing stays allocated, and the server still
 * answers afterwards. make check runs it under TSan. */

#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS) && !defined(_WIN32)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include "test_util_server.h"

typedef struct hs_srv {
    fti_server *srv;
    pthread_t th;
    int port;
} hs_srv;

static void *hs_run(void *arg) {
    hs_srv *f = (hs_srv *)arg;
    fti_server_run(f->srv, NULL);
    return NULL;
}

/* Sends a POST of json to path with Connection: close; returns the socket or -1. */
static int hs_post(int port, const char *path, const char *json) {
    char head[256];
    int fd = tu_connect(port);
    size_t n;
    if (fd < 0) return -1;
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %lu\r\nConnection: close\r\n\r\n",
             path, (unsigned long)strlen(json));
    n = strlen(head);
    if (send(fd, head, n, MSG_NOSIGNAL) != (ssize_t)n ||
        send(fd, json, strlen(json), MSG_NOSIGNAL) != (ssize_t)strlen(json)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until EOF (or until `until` appears, when not NULL) within 10 s; 1 at EOF or found. */
static int hs_read(int fd, fti_buf *out, const char *until) {
    uint64_t end = fti_time_ns() / 1000000u + 10000u;
    for (;;) {
        struct pollfd p;
        char buf[4096];
        ssize_t n;
        uint64_t now = fti_time_ns() / 1000000u;
        if (now >= end) return 0;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, (int)(end - now)) <= 0) continue;
        n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return n == 0;
        fti_buf_append(out, buf, (size_t)n);
        fti_buf_putc(out, 0);
        out->len--;
        if (until && strstr(out->data, until)) return 1;
    }
}

/* The parsed JSON body of a whole non-streamed 200 answer (NULL otherwise). */
static fti_json_doc *hs_body(const fti_buf *r) {
    const char *b = r->data ? strstr(r->data, "\r\n\r\n") : NULL;
    fti_json_doc *doc = NULL;
    fti_error err;
    if (!b || strncmp(r->data, "HTTP/1.1 200", 12) != 0) return NULL;
    b += 4;
    if (fti_json_parse(b, r->len - (size_t)(b - r->data), NULL, &doc, NULL, &err) != FTI_OK)
        return NULL;
    return doc;
}

static const char *hs_text(const fti_json_doc *doc, const char **finish, int64_t *n_tok) {
    const fti_json *c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
    *finish = fti_json_get_str(c, "finish_reason", "");
    *n_tok = fti_json_get_int(fti_json_get(fti_json_root(doc), "usage"), "completion_tokens", -1);
    return fti_json_get_str(c, "text", NULL);
}

FTI_TEST(harden_server_batch_mix) {
    fti_test_model_opts mo;
    const char *path;
    tu_gen *g = (tu_gen *)calloc(1, sizeof(tu_gen));
    fti_gen gen;
    fti_server_opts so;
    hs_srv f;
    fti_error err;
    fti_buf r[8], ref;
    int fd[8], i, round;
    char json[512], stop[8];
    const char *ref_text;
    long live0 = fti_test_alloc_live;
    REQUIRE(g);
    memset(&mo, 0, sizeof mo);
    mo.seed = 3;
    mo.scale = 2.0f;
    path = fti_test_model("hs.gguf", &mo, NULL, NULL);
    REQUIRE(path && fti_engine_open(&g->e, path, NULL, &err) == FTI_OK);
    g->n_ctx = 48;
    g->step_us = 1500;
    REQUIRE(fti_batch_create(g->e, 8, 48, &g->bt, &err) == FTI_OK);
    tu_gen_fill(g, &gen);
    memset(&so, 0, sizeof so);
    so.max_batch = 8;
    memset(&f, 0, sizeof f);
    REQUIRE(fti_server_create(&so, &gen, &f.srv, &err) == FTI_OK);
    f.port = fti_server_port(f.srv);
    REQUIRE(pthread_create(&f.th, NULL, hs_run, &f) == 0);
    for (i = 0; i < 8; i++) memset(&r[i], 0, sizeof r[i]);
    memset(&ref, 0, sizeof ref);

    /* the reference: greedy, 30 tokens, alone */
    fd[0] = hs_post(f.port, "/v1/completions",
                    "{\"prompt\":\"the cat\",\"max_tokens\":30,\"temperature\":0}");
    REQUIRE(fd[0] >= 0);
    CHECK(hs_read(fd[0], &ref, NULL) == 1);
    close(fd[0]);
    {
        fti_json_doc *doc = hs_body(&ref);
        const char *fin;
        int64_t nt;
        REQUIRE(doc);
        ref_text = hs_text(doc, &fin, &nt);
        REQUIRE(ref_text);
        /* a stop string from the middle of the reference, across a token boundary when there
         * is one */
        {
            size_t L = strlen(ref_text), at = L / 2;
            REQUIRE(L >= 6);
            snprintf(stop, sizeof stop, "%.3s", ref_text + at);
            ref_text = fti_strndup(ref_text, L);
        }
        fti_json_free(doc);
    }
    REQUIRE(ref_text);

    for (round = 0; round < 2; round++) {
        /* 0 greedy 30 tokens (as the reference), 1 streamed, 2 max_tokens 1, 3 the stop string,
         * 4 a prompt that leaves 2 positions (ends with the context), 5 streamed, the client
         * goes away after the first chunk, 6 streamed, the client never reads and closes at
         * the end, 7 chat streamed with usage */
        static const char *paths[8] = {"/v1/completions", "/v1/completions", "/v1/completions",
                                       "/v1/completions", "/v1/completions", "/v1/completions",
                                       "/v1/completions", "/v1/chat/completions"};
        char long_prompt[64];
        memset(long_prompt, 'q', 45);
        long_prompt[45] = 0;
        for (i = 0; i < 8; i++) {
            switch (i) {
            case 0: snprintf(json, sizeof json,
                             "{\"prompt\":\"the cat\",\"max_tokens\":30,\"temperature\":0}"); break;
            case 1: snprintf(json, sizeof json,
                             "{\"prompt\":\"the cat\",\"max_tokens\":30,\"temperature\":0,"
                             "\"stream\":true}"); break;
            case 2: snprintf(json, sizeof json, "{\"prompt\":\"a b\",\"max_tokens\":1}"); break;
            case 3: snprintf(json, sizeof json,
                             "{\"prompt\":\"the cat\",\"max_tokens\":30,\"temperature\":0,"
                             "\"stop\":[\"zzzz\",\"%s\"]}", stop); break;
            case 4: snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":40,"
                             "\"seed\":7}", long_prompt); break;
            case 5: snprintf(json, sizeof json, "{\"prompt\":\"x\",\"max_tokens\":40,"
                             "\"stream\":true,\"temperature\":1.5,\"top_k\":5}"); break;
            case 6: snprintf(json, sizeof json, "{\"prompt\":\"y\",\"max_tokens\":40,"
                             "\"stream\":true,\"temperature\":1e-40}"); break;
            default: snprintf(json, sizeof json,
                              "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                              "\"max_tokens\":12,\"stream\":true,\"top_p\":0.5,"
                              "\"stream_options\":{\"include_usage\":true}}"); break;
            }
            fd[i] = hs_post(f.port, paths[i], json);
            CHECK(fd[i] >= 0);
        }
        /* the client of 5 leaves after its first chunk; 6 closes without reading */
        if (fd[5] >= 0) {
            CHECK(hs_read(fd[5], &r[5], "data: {") == 1);
            close(fd[5]);
        }
        if (fd[6] >= 0) close(fd[6]);
        for (i = 0; i < 8; i++) {
            fti_json_doc *doc;
            const char *fin = "", *txt = NULL;
            int64_t nt = -1;
            if (i == 5 || i == 6 || fd[i] < 0) continue;
            r[i].len = 0;
            CHECK(hs_read(fd[i], &r[i], NULL) == 1);
            close(fd[i]);
            if (i == 1 || i == 7) { /* streamed: whole, with its end */
                CHECK(strncmp(r[i].data ? r[i].data : "", "HTTP/1.1 200", 12) == 0);
                CHECK(r[i].data && strstr(r[i].data, "data: [DONE]") != NULL);
                CHECK(r[i].data && strstr(r[i].data, "\"finish_reason\":\"") != NULL);
                if (i == 7) CHECK(r[i].data && strstr(r[i].data, "\"completion_tokens\":") != NULL);
                continue;
            }
            doc = hs_body(&r[i]);
            CHECK(doc != NULL);
            if (!doc) {
                fprintf(stderr, "    request %d: %.300s\n", i, r[i].data ? r[i].data : "");
                continue;
            }
            txt = hs_text(doc, &fin, &nt);
            CHECK(txt != NULL);
            if (txt) switch (i) {
                case 0: /* the same greedy text in a batch as alone (f32 weights: the batch's
                           rounding does not move this model's argmax) */
                    CHECK_EQ_STR(txt, ref_text);
                    break;
                case 2:
                    CHECK(nt == 1);
                    CHECK(strcmp(fin, "length") == 0 || strcmp(fin, "stop") == 0);
                    break;
                case 3: /* cut before the stop string, which never shows */
                    CHECK_EQ_STR(fin, "stop");
                    CHECK(strstr(txt, stop) == NULL);
                    CHECK(strncmp(ref_text, txt, strlen(txt)) == 0);
                    CHECK(strncmp(ref_text + strlen(txt), stop, strlen(stop)) == 0);
                    break;
                case 4: /* 46 prompt tokens of 48: at most 3 generated, ended by the context */
                    CHECK(nt >= 1 && nt <= 3);
                    CHECK_EQ_STR(fin, "stop");
                    break;
                default: break;
                }
            fti_json_free(doc);
        }
    }
    /* still serving; every sequence started was ended (the cancelled ones too) */
    fd[0] = hs_post(f.port, "/v1/completions", "{\"prompt\":\"ok\",\"max_tokens\":2}");
    r[0].len = 0;
    CHECK(fd[0] >= 0 && hs_read(fd[0], &r[0], NULL) == 1);
    if (fd[0] >= 0) close(fd[0]);
    {
        fti_json_doc *doc = hs_body(&r[0]);
        CHECK(doc != NULL);
        fti_json_free(doc);
    }
    fti_server_stop(f.srv);
    pthread_join(f.th, NULL);
    fti_server_free(f.srv);
    CHECK(g->n_started >= 16 && g->n_started <= 18); /* 5 and 6 may go before they start */
    CHECK_EQ_INT(g->n_ended, g->n_started);
    CHECK_EQ_INT(g->n_live, 0);
    CHECK(g->max_step_n >= 3); /* the mix shared steps */
    CHECK_EQ_INT(g->step_errors, 0);
    fti_batch_free(g->bt);
    fti_engine_close(g->e);
    free(g);
    fti_free((void *)ref_text);
    for (i = 0; i < 8; i++) fti_buf_free(&r[i]);
    fti_buf_free(&ref);
    CHECK_EQ_INT(fti_test_alloc_live, live0);
}
#else
void fti_test_harden_server_batch_mix(void) {}
#endif
