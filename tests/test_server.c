/* test_server.c: the HTTP server over loopback (127.0.0.1:0) with the deterministic echo generator:
 * every endpoint including streaming, OpenAI shapes, keep-alive and pipelining, smuggling attempts
 * answered once and closed, the header deadline against a slow client while others are served,
 * connection cap and queue bound (503), EMFILE survival, continuous batching throughput, hot swap
 * under traffic, graceful stop, and the monitor's log and metrics. */

#if !defined(FTI_NO_SERVER) && !defined(FTI_NO_THREADS)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "test_util_server.h"

static void srv_sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

typedef struct srv_fixture {
    fti_server *srv;
    pthread_t th;
    int port;
    fti_result run_result;
} srv_fixture;

static void *srv_thread(void *arg) {
    srv_fixture *f = (srv_fixture *)arg;
    f->run_result = fti_server_run(f->srv, NULL);
    return NULL;
}

/* Starts a server with the echo generator (step_us per step). */
static int srv_start(srv_fixture *f, fti_server_opts *o, unsigned step_us, int end_after) {
    fti_gen g;
    fti_gen_echo_opts eo;
    fti_error err;
    memset(f, 0, sizeof *f);
    memset(&eo, 0, sizeof eo);
    eo.step_us = step_us;
    eo.end_after = end_after;
    eo.n_ctx = 256;
    if (fti_gen_echo_create(&eo, &g) != FTI_OK) return -1;
    if (fti_server_create(o, &g, &f->srv, &err) != FTI_OK) {
        fprintf(stderr, "    server: %s\n", err.msg);
        return -1;
    }
    f->port = fti_server_port(f->srv);
    if (pthread_create(&f->th, NULL, srv_thread, f) != 0) return -1;
    return 0;
}

static void srv_finish(srv_fixture *f) {
    fti_server_stop(f->srv);
    pthread_join(f->th, NULL);
    fti_server_free(f->srv);
}

static int cli_send(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until EOF or timeout into out. Returns 1 on EOF, 0 on timeout, -1 on error/reset. */
static int cli_read_all(int fd, fti_buf *out, int timeout_ms) {
    uint64_t end = fti_time_ns() / 1000000u + (uint64_t)timeout_ms;
    for (;;) {
        struct pollfd p;
        char buf[8192];
        ssize_t n;
        uint64_t now = fti_time_ns() / 1000000u;
        if (now >= end) return 0;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, (int)(end - now)) <= 0) continue;
        n = recv(fd, buf, sizeof buf, 0);
        if (n == 0) return 1;
        if (n < 0) return -1;
        fti_buf_append(out, buf, (size_t)n);
    }
}

/* Length of the first complete response in s[0..n) (Content-Length or chunked), 0 if incomplete. */
static size_t cli_response_len(const char *s, size_t n) {
    const char *e = NULL, *cl;
    size_t i, head;
    for (i = 0; i + 4 <= n; i++)
        if (memcmp(s + i, "\r\n\r\n", 4) == 0) {
            e = s + i;
            break;
        }
    if (!e) return 0;
    head = (size_t)(e - s) + 4;
    if (n >= 12 && memcmp(s + 9, "100", 3) == 0) return head;
    cl = strstr(s, "Content-Length: ");
    if (cl && cl < e) {
        size_t len = (size_t)strtoul(cl + 16, NULL, 10);
        return n >= head + len ? head + len : 0;
    }
    if (strstr(s, "Transfer-Encoding: chunked")) {
        size_t p = head;
        for (;;) {
            unsigned long sz;
            char *end;
            const char *nl;
            if (p >= n) return 0;
            sz = strtoul(s + p, &end, 16);
            nl = strstr(s + p, "\r\n");
            if (!nl || (size_t)(nl - s) + 2 > n) return 0;
            p = (size_t)(nl - s) + 2;
            if (sz == 0) return p + 2 <= n ? p + 2 : 0;
            p += sz + 2;
        }
    }
    return head; /* no body */
}

/* One request on a fresh connection; reads until EOF (the request should say Connection: close)
 * or until a complete response when keep-alive. Returns the status or -1. */
static int cli_do(int port, const char *req, fti_buf *resp) {
    int fd = tu_connect(port), st = -1;
    uint64_t end = fti_time_ns() / 1000000u + 10000;
    if (fd < 0) {
        if (getenv("SRV_DEBUG")) fprintf(stderr, "cli_do: connect errno %d\n", errno);
        return -1;
    }
    resp->len = 0;
    if (cli_send(fd, req, strlen(req)) == 0) {
        for (;;) {
            struct pollfd p;
            char buf[8192];
            ssize_t n;
            p.fd = fd;
            p.events = POLLIN;
            if (fti_time_ns() / 1000000u > end) break;
            if (poll(&p, 1, 100) <= 0) continue;
            n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                if (getenv("SRV_DEBUG"))
                    fprintf(stderr, "cli_do: recv %ld errno %d len %lu\n", (long)n, errno,
                            (unsigned long)resp->len);
                break;
            }
            fti_buf_append(resp, buf, (size_t)n);
            if (cli_response_len(resp->data, resp->len) == resp->len) break;
        }
    }
    close(fd);
    if (resp->len >= 12 && memcmp(resp->data, "HTTP/1.", 7) == 0) st = atoi(resp->data + 9);
    return st;
}

/* The body of a response (after the head), de-chunked, into out. */
static void cli_body(const fti_buf *resp, fti_buf *out) {
    const char *e = resp->data ? strstr(resp->data, "\r\n\r\n") : NULL;
    out->len = 0;
    if (!e) return;
    e += 4;
    if (strstr(resp->data, "Transfer-Encoding: chunked") &&
        strstr(resp->data, "Transfer-Encoding: chunked") < e) {
        const char *p = e, *end = resp->data + resp->len;
        while (p < end) {
            char *q;
            unsigned long sz = strtoul(p, &q, 16);
            if (sz == 0) break;
            p = strstr(q, "\r\n");
            if (!p) break;
            p += 2;
            fti_buf_append(out, p, sz);
            p += sz + 2;
        }
    } else {
        fti_buf_append(out, e, (size_t)(resp->data + resp->len - e));
    }
    fti_buf_putc(out, 0);
    out->len--;
}

static void srv_post(fti_buf *req, const char *path, const char *json, int keep) {
    req->len = 0;
    fti_buf_printf(req, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                        "Content-Length: %lu\r\n%s\r\n%s",
                   path, (unsigned long)strlen(json), keep ? "" : "Connection: close\r\n", json);
}

FTI_TEST(server_endpoints) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp, body, req;
    fti_json_doc *doc;
    const fti_json *root, *ch;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    memset(&body, 0, sizeof body);
    memset(&req, 0, sizeof req);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);

    CHECK_EQ_INT(
        cli_do(f.port, "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &resp), 200);
    cli_body(&resp, &body);
    CHECK(strstr(body.data, "\"status\":\"ok\"") != NULL);

    CHECK_EQ_INT(cli_do(f.port, "GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 200);
    cli_body(&resp, &body);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    CHECK_EQ_STR(fti_json_get_str(root, "object", ""), "list");
    CHECK_EQ_STR(fti_json_get_str(fti_json_at(fti_json_get(root, "data"), 0), "id", ""),
                 "fti-echo");
    fti_json_free(doc);
    /* one model (the SDKs' models.retrieve), its id percent-encoded or not; others are 404 */
    CHECK_EQ_INT(cli_do(f.port, "GET /v1/models/fti-echo HTTP/1.1\r\nHost: t\r\n\r\n", &resp),
                 200);
    cli_body(&resp, &body);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "id", ""), "fti-echo");
    CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "object", ""), "model");
    fti_json_free(doc);
    CHECK_EQ_INT(cli_do(f.port, "GET /v1/models/fti%2decho HTTP/1.1\r\nHost: t\r\n\r\n", &resp),
                 200);
    CHECK_EQ_INT(cli_do(f.port, "GET /v1/models/gpt-4o HTTP/1.1\r\nHost: t\r\n\r\n", &resp),
                 404);
    cli_body(&resp, &body);
    CHECK(strstr(body.data, "\"code\":\"model_not_found\"") != NULL);
    CHECK_EQ_INT(cli_do(f.port, "GET /v1/models/fti%00echo HTTP/1.1\r\nHost: t\r\n\r\n", &resp),
                 404);
    CHECK_EQ_INT(cli_do(f.port, "GET /v1/models/%zz HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 404);
    CHECK_EQ_INT(cli_do(f.port, "POST /v1/models/fti-echo HTTP/1.1\r\nHost: t\r\n"
                                "Content-Length: 0\r\n\r\n", &resp), 405);

    CHECK_EQ_INT(cli_do(f.port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 200);
    CHECK(strstr(resp.data, "text/html") && strstr(resp.data, "<script>") &&
          strstr(resp.data, "/metrics"));
    /* its talk box shows an error answer's message (a 400 or 503 is JSON, not SSE: it showed
     * nothing) and a failed fetch */
    CHECK(strstr(resp.data, "if(!r.ok)return r.json()") != NULL);
    CHECK(strstr(resp.data, ".catch(function(e){o.textContent=String(e);})") != NULL);
    CHECK_EQ_INT(cli_do(f.port, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 404);
    CHECK_EQ_INT(cli_do(f.port, "DELETE /health HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 405);
    CHECK_EQ_INT(cli_do(f.port, "GET /v1/completions HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 405);
    /* a 405 names the methods the path takes (RFC 9110: it must); OPTIONS answers them, 204
     * without a body (until 2026-11-29: no Allow, and OPTIONS was a 405 "use POST") */
    CHECK(strstr(resp.data, "\r\nAllow: POST, OPTIONS\r\n") != NULL);
    CHECK_EQ_INT(cli_do(f.port, "DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 405);
    CHECK(strstr(resp.data, "\r\nAllow: GET, HEAD, OPTIONS\r\n") != NULL);
    CHECK_EQ_INT(cli_do(f.port, "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                                "Origin: http://example.com\r\n"
                                "Access-Control-Request-Method: POST\r\n\r\n", &resp), 204);
    CHECK(strstr(resp.data, "\r\nAllow: POST, OPTIONS\r\n") != NULL);
    CHECK(strstr(resp.data, "Content-Length") == NULL);
    CHECK(strstr(resp.data, "Access-Control-Allow-Origin") == NULL);
    CHECK_EQ_INT(cli_do(f.port, "OPTIONS /health HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 204);
    CHECK(strstr(resp.data, "\r\nAllow: GET, HEAD, OPTIONS\r\n") != NULL);
    CHECK_EQ_INT(cli_do(f.port, "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 204);
    CHECK(strstr(resp.data, "\r\nAllow: GET, HEAD, POST, OPTIONS\r\n") != NULL);
    CHECK_EQ_INT(cli_do(f.port, "OPTIONS /nope HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 404);
    { /* the connection stays usable after a 204 (no body to misread) */
        static const char two[] = "OPTIONS /health HTTP/1.1\r\nHost: t\r\n\r\n"
                                  "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        int fd = tu_connect(f.port);
        REQUIRE(fd >= 0);
        resp.len = 0;
        CHECK(cli_send(fd, two, sizeof two - 1) == 0);
        CHECK_EQ_INT(cli_read_all(fd, &resp, 5000), 1);
        close(fd);
        fti_buf_append(&resp, "", 1);
        CHECK(strncmp(resp.data, "HTTP/1.1 204 ", 13) == 0);
        CHECK(strstr(resp.data, "\"status\":\"ok\"") != NULL);
    }

    /* completion: OpenAI shape, finish_reason length, usage */
    srv_post(&req, "/v1/completions",
             "{\"model\":\"x\",\"prompt\":\"Hello\",\"max_tokens\":5,\"seed\":1}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    cli_body(&resp, &body);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    CHECK_EQ_STR(fti_json_get_str(root, "object", ""), "text_completion");
    CHECK(strncmp(fti_json_get_str(root, "id", ""), "cmpl-", 5) == 0);
    CHECK(fti_json_get(root, "created") && fti_json_get(root, "created")->is_int);
    CHECK_EQ_STR(fti_json_get_str(root, "model", ""), "fti-echo");
    ch = fti_json_at(fti_json_get(root, "choices"), 0);
    CHECK_EQ_STR(fti_json_get_str(ch, "finish_reason", ""), "length");
    CHECK(fti_json_get(ch, "text") && fti_json_get(ch, "text")->type == FTI_JSON_STRING &&
          fti_json_get(ch, "text")->len > 0);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "completion_tokens", 0), 5);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "prompt_tokens", 0), 5);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "total_tokens", 0), 10);
    CHECK(fti_json_get(root, "fti_chunks") != NULL);
    { /* the id is also the X-Request-Id header (the SDKs' request id) */
        char hdr[80];
        snprintf(hdr, sizeof hdr, "X-Request-Id: %s\r\n", fti_json_get_str(root, "id", "?"));
        CHECK(strstr(resp.data, hdr) != NULL);
    }
    fti_json_free(doc);

    /* deterministic: the same request gives the same text */
    {
        fti_buf b2, r2;
        memset(&b2, 0, sizeof b2);
        memset(&r2, 0, sizeof r2);
        CHECK_EQ_INT(cli_do(f.port, req.data, &r2), 200);
        cli_body(&r2, &b2);
        CHECK(strstr(b2.data, "\"text\":") && strstr(body.data, "\"text\":") &&
              strncmp(strstr(b2.data, "\"text\":"), strstr(body.data, "\"text\":"), 40) == 0);
        fti_buf_free(&b2);
        fti_buf_free(&r2);
    }

    /* chat */
    srv_post(&req, "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":3}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    cli_body(&resp, &body);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    CHECK_EQ_STR(fti_json_get_str(root, "object", ""), "chat.completion");
    ch = fti_json_at(fti_json_get(root, "choices"), 0);
    CHECK_EQ_STR(fti_json_get_str(fti_json_get(ch, "message"), "role", ""), "assistant");
    fti_json_free(doc);
    /* chat without max_tokens (what most clients send): half the context, not all of it, which
     * left no room for the prompt and answered 400 */
    srv_post(&req, "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);

    /* stop sequence: "twin" is the second word of the echo text */
    srv_post(&req, "/v1/completions",
             "{\"prompt\":\"\",\"max_tokens\":30,\"stop\":[\" twin\"],\"seed\":0}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    cli_body(&resp, &body);
    CHECK(strstr(body.data, " twin") == NULL);

    /* validation errors: OpenAI error body */
    srv_post(&req, "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":-1}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 400);
    cli_body(&resp, &body);
    CHECK(strstr(body.data, "\"error\":{") && strstr(body.data, "\"param\":\"max_tokens\""));
    srv_post(&req, "/v1/completions", "{\"prompt\":\"a\",", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 400);
    /* context: 250 prompt bytes + 10 > 256 */
    {
        char json[400];
        char p[251];
        memset(p, 'a', 250);
        p[250] = 0;
        snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":10}", p);
        srv_post(&req, "/v1/completions", json, 0);
        CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 400);
        cli_body(&resp, &body);
        CHECK(strstr(body.data, "context_length_exceeded") != NULL);
    }
    fti_buf_free(&resp);
    fti_buf_free(&body);
    fti_buf_free(&req);
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
}

FTI_TEST(server_streaming_sse) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp, body, req, text;
    const char *p;
    int n_events = 0, saw_done = 0, saw_finish = 0, saw_usage = 0, pass;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    memset(&body, 0, sizeof body);
    memset(&req, 0, sizeof req);
    memset(&text, 0, sizeof text);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    for (pass = 0; pass < 2; pass++) {
        const char *kind = pass ? "/v1/chat/completions" : "/v1/completions";
        n_events = saw_done = saw_finish = saw_usage = 0;
        text.len = 0;
        srv_post(&req, kind,
                 pass ? "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":6,"
                        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
                      : "{\"prompt\":\"Hello\",\"max_tokens\":6,\"stream\":true,"
                        "\"stream_options\":{\"include_usage\":true}}",
                 0);
        CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
        CHECK(strstr(resp.data, "Content-Type: text/event-stream") != NULL);
        cli_body(&resp, &body);
        /* SSE framing: events "data: ...\n\n" only, the last one [DONE] */
        for (p = body.data; p && *p;) {
            const char *e = strstr(p, "\n\n");
            fti_json_doc *doc;
            REQUIRE(e && strncmp(p, "data: ", 6) == 0);
            n_events++;
            if (strncmp(p + 6, "[DONE]", 6) == 0) {
                saw_done = 1;
                CHECK(e[2] == 0);
                break;
            }
            if (fti_json_parse(p + 6, (size_t)(e - p - 6), NULL, &doc, NULL, NULL) == FTI_OK) {
                const fti_json *root = fti_json_root(doc);
                const fti_json *c = fti_json_at(fti_json_get(root, "choices"), 0);
                CHECK_EQ_STR(fti_json_get_str(root, "object", ""),
                             pass ? "chat.completion.chunk" : "text_completion");
                if (c) {
                    const fti_json *t = pass ? fti_json_get(fti_json_get(c, "delta"), "content")
                                             : fti_json_get(c, "text");
                    if (t && t->type == FTI_JSON_STRING) fti_buf_append(&text, t->str, t->len);
                    if (fti_json_get_str(c, "finish_reason", NULL)) saw_finish = 1;
                }
                if (fti_json_get(root, "usage")) {
                    saw_usage = 1;
                    CHECK_EQ_INT(
                        fti_json_get_int(fti_json_get(root, "usage"), "completion_tokens", 0), 6);
                }
                fti_json_free(doc);
            } else {
                fti_test_failures++;
            }
            p = e + 2;
        }
        CHECK(saw_done && saw_finish && saw_usage && n_events >= 8);
        CHECK(text.len > 6);
    }
    fti_buf_free(&resp);
    fti_buf_free(&body);
    fti_buf_free(&req);
    fti_buf_free(&text);
    srv_finish(&f);
}

/* The tokens of a completions "logprobs" object joined, checking its arrays agree with each other
 * (offsets, the first alternative being the token); returns how many. */
static size_t srv_lp_join(const fti_json *lp, size_t n_top, fti_buf *joined) {
    const fti_json *toks = fti_json_get(lp, "tokens"), *lps = fti_json_get(lp, "token_logprobs");
    const fti_json *tops = fti_json_get(lp, "top_logprobs");
    const fti_json *offs = fti_json_get(lp, "text_offset");
    size_t i;
    if (!toks || !lps || !tops || !offs) {
        fti_test_failures++;
        return 0;
    }
    CHECK(lps->len == toks->len && tops->len == toks->len && offs->len == toks->len);
    for (i = 0; i < toks->len; i++) {
        const fti_json *t = fti_json_at(toks, i), *top = fti_json_at(tops, i);
        CHECK_EQ_INT(fti_json_at(offs, i)->i, (int64_t)joined->len);
        fti_buf_append(joined, t->str, t->len);
        CHECK(top && top->len == n_top);
        if (top && top->child) {
            CHECK(top->child->key_len == t->len && memcmp(top->child->key, t->str, t->len) == 0);
            CHECK(top->child->num == fti_json_at(lps, i)->num);
        }
        CHECK(fti_json_at(lps, i)->num < 0);
    }
    return toks->len;
}

FTI_TEST(server_logprobs) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp, body, req, joined, text;
    fti_json_doc *doc;
    const fti_json *c, *lp;
    char stop[64], json[512];
    size_t n, k;
    const char *p;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    memset(&body, 0, sizeof body);
    memset(&req, 0, sizeof req);
    memset(&joined, 0, sizeof joined);
    memset(&text, 0, sizeof text);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    /* completions, whole: one entry per token, offsets into the text, 2 alternatives each */
    srv_post(&req, "/v1/completions",
             "{\"prompt\":\"Hello\",\"max_tokens\":5,\"logprobs\":2,\"seed\":1}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    cli_body(&resp, &body);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
    lp = fti_json_get(c, "logprobs");
    REQUIRE(lp && lp->type == FTI_JSON_OBJECT);
    CHECK_EQ_INT(srv_lp_join(lp, 2, &joined), 5);
    CHECK_EQ_STR(joined.data, fti_json_get_str(c, "text", "?"));
    /* the third token as a stop string: the text and the entries end before it */
    n = fti_json_get(lp, "tokens")->len;
    REQUIRE(n == 5);
    {
        const fti_json *t2 = fti_json_at(fti_json_get(lp, "tokens"), 2);
        REQUIRE(t2->len > 0 && t2->len < sizeof stop);
        memcpy(stop, t2->str, t2->len);
        stop[t2->len] = 0;
    }
    fti_json_free(doc);
    snprintf(json, sizeof json,
             "{\"prompt\":\"Hello\",\"max_tokens\":5,\"logprobs\":2,\"seed\":1,\"stop\":\"%s\"}",
             stop);
    srv_post(&req, "/v1/completions", json, 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    cli_body(&resp, &body);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
    text.len = 0;
    fti_buf_puts(&text, fti_json_get_str(c, "text", "?"));
    joined.len = 0;
    n = srv_lp_join(fti_json_get(c, "logprobs"), 2, &joined);
    CHECK(n >= 1 && n <= 2); /* the stop string may be in an earlier token too */
    CHECK(joined.len == text.len && memcmp(joined.data, text.data, text.len) == 0);
    CHECK(strstr(text.data, stop) == NULL);
    fti_json_free(doc);
    /* chat: content entries with their bytes and 3 alternatives, the token itself first */
    srv_post(&req, "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":4,"
             "\"logprobs\":true,\"top_logprobs\":3}",
             0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    cli_body(&resp, &body);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
    lp = fti_json_get(fti_json_get(c, "logprobs"), "content");
    REQUIRE(lp && lp->type == FTI_JSON_ARRAY);
    CHECK_EQ_INT(lp->len, 4);
    joined.len = 0;
    for (k = 0; k < lp->len; k++) {
        const fti_json *e = fti_json_at(lp, k), *tops = fti_json_get(e, "top_logprobs");
        const char *tk = fti_json_get_str(e, "token", "");
        fti_buf_puts(&joined, tk);
        CHECK(fti_json_get(e, "bytes")->len == strlen(tk));
        CHECK(tops && tops->len == 3);
        CHECK_EQ_STR(fti_json_get_str(fti_json_at(tops, 0), "token", "?"), tk);
    }
    CHECK_EQ_STR(joined.data, fti_json_get_str(fti_json_get(c, "message"), "content", "?"));
    fti_json_free(doc);
    /* streamed: the chunks' entries together are every token, in order */
    srv_post(&req, "/v1/completions",
             "{\"prompt\":\"Hello\",\"max_tokens\":6,\"logprobs\":1,\"stream\":true}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    cli_body(&resp, &body);
    joined.len = 0;
    text.len = 0;
    n = 0;
    for (p = body.data; p && *p;) {
        const char *e = strstr(p, "\n\n");
        REQUIRE(e && strncmp(p, "data: ", 6) == 0);
        if (strncmp(p + 6, "[DONE]", 6) == 0) break;
        REQUIRE(fti_json_parse(p + 6, (size_t)(e - p - 6), NULL, &doc, NULL, NULL) == FTI_OK);
        c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
        if (c) {
            const fti_json *t = fti_json_get(c, "text");
            if (t && t->len) fti_buf_append(&text, t->str, t->len);
            lp = fti_json_get(c, "logprobs");
            if (lp && lp->type == FTI_JSON_OBJECT) n += srv_lp_join(lp, 1, &joined);
        }
        fti_json_free(doc);
        p = e + 2;
    }
    CHECK_EQ_INT(n, 6);
    CHECK(text.len > 0 && joined.len == text.len && memcmp(joined.data, text.data, text.len) == 0);
    /* without logprobs: null; logit_bias is taken (the echo generator does not sample) */
    srv_post(&req, "/v1/completions",
             "{\"prompt\":\"Hello\",\"max_tokens\":2,\"logit_bias\":{\"3\":-100}}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    cli_body(&resp, &body);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
    CHECK(fti_json_get(c, "logprobs") && fti_json_get(c, "logprobs")->type == FTI_JSON_NULL);
    fti_json_free(doc);
    fti_buf_free(&resp);
    fti_buf_free(&body);
    fti_buf_free(&req);
    fti_buf_free(&joined);
    fti_buf_free(&text);
    srv_finish(&f);
}

/* POSTs json to path on a fresh connection; the status, the body in *body (NUL-terminated). */
static int srv_json(int port, const char *path, const char *json, fti_buf *body) {
    fti_buf req, resp;
    int st;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    srv_post(&req, path, json, 0);
    st = cli_do(port, req.data, &resp);
    cli_body(&resp, body);
    fti_buf_free(&req);
    fti_buf_free(&resp);
    return st;
}

/* A stream of n choices, read from its SSE body: each index's text (chat: the deltas' content),
 * how many role chunks, finish_reasons and [DONE]s each has, the usage's completion tokens (-1:
 * none). Returns 0 when every event is well formed and [DONE] is the last. */
typedef struct srv_stream {
    fti_buf text[4];
    int n_role[4], n_finish[4], n_done, usage_tokens, bad_index;
} srv_stream;

static int srv_stream_read(const char *body, int chat, srv_stream *out) {
    const char *p;
    int last_done = 0, k;
    for (k = 0; k < 4; k++) out->text[k].len = 0;
    memset(out->n_role, 0, sizeof out->n_role);
    memset(out->n_finish, 0, sizeof out->n_finish);
    out->n_done = out->bad_index = 0;
    out->usage_tokens = -1;
    for (p = body; p && *p;) {
        const char *e = strstr(p, "\n\n");
        fti_json_doc *doc;
        const fti_json *root, *c;
        if (!e || strncmp(p, "data: ", 6) != 0) return -1;
        last_done = strncmp(p + 6, "[DONE]", 6) == 0;
        if (last_done) {
            out->n_done++;
            p = e + 2;
            continue;
        }
        if (fti_json_parse(p + 6, (size_t)(e - p - 6), NULL, &doc, NULL, NULL) != FTI_OK)
            return -1;
        root = fti_json_root(doc);
        if (fti_json_get(root, "usage"))
            out->usage_tokens =
                (int)fti_json_get_int(fti_json_get(root, "usage"), "completion_tokens", -1);
        for (c = fti_json_get(root, "choices")->child; c; c = c->next) {
            int64_t ix = fti_json_get_int(c, "index", -1);
            const fti_json *t = chat ? fti_json_get(fti_json_get(c, "delta"), "content")
                                     : fti_json_get(c, "text");
            if (ix < 0 || ix >= 4) {
                out->bad_index++;
                continue;
            }
            if (t && t->type == FTI_JSON_STRING) fti_buf_append(&out->text[ix], t->str, t->len);
            if (chat && fti_json_get(fti_json_get(c, "delta"), "role")) out->n_role[ix]++;
            if (fti_json_get_str(c, "finish_reason", NULL)) out->n_finish[ix]++;
        }
        fti_json_free(doc);
        p = e + 2;
    }
    for (k = 0; k < 4; k++) fti_buf_putc(&out->text[k], 0), out->text[k].len--;
    return last_done ? 0 : -1;
}

FTI_TEST(server_n_best_of_echo) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf body;
    fti_json_doc *doc;
    const fti_json *root, *chs, *c;
    srv_stream ss;
    char single[4][256], json[512];
    double mean[4];
    int k, m, order[4], distinct = 0;
    memset(&o, 0, sizeof o);
    memset(&body, 0, sizeof body);
    memset(&ss, 0, sizeof ss);
    o.max_batch = 8;
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    /* what n = 1 answers with seeds 40..43, and the mean of its (made-up) log-probabilities */
    for (k = 0; k < 4; k++) {
        const fti_json *lps;
        snprintf(json, sizeof json,
                 "{\"prompt\":\"Hello\",\"max_tokens\":4,\"seed\":%d,\"logprobs\":0}", 40 + k);
        REQUIRE(srv_json(f.port, "/v1/completions", json, &body) == 200);
        REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
        c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
        snprintf(single[k], sizeof single[k], "%s", fti_json_get_str(c, "text", "?"));
        lps = fti_json_get(fti_json_get(c, "logprobs"), "token_logprobs");
        REQUIRE(lps && lps->len == 4);
        mean[k] = 0;
        for (m = 0; m < 4; m++) mean[k] += fti_json_at(lps, (size_t)m)->num / 4;
        fti_json_free(doc);
        for (m = 0; m < k && strcmp(single[m], single[k]) != 0; m++) {
        }
        distinct += m == k;
    }
    CHECK(distinct >= 3); /* the seeds give different texts (the echo text's rotations) */

    /* n = 4: choice i is the answer of seed 40 + i; usage: the prompt once, every token */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"Hello\",\"max_tokens\":4,\"seed\":40,\"n\":4}", &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    chs = fti_json_get(root, "choices");
    REQUIRE(chs && chs->len == 4);
    for (k = 0; k < 4; k++) {
        c = fti_json_at(chs, (size_t)k);
        CHECK_EQ_INT(fti_json_get_int(c, "index", -1), k);
        CHECK_EQ_STR(fti_json_get_str(c, "text", "?"), single[k]);
        CHECK_EQ_STR(fti_json_get_str(c, "finish_reason", "?"), "length");
    }
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "prompt_tokens", 0), 5);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "completion_tokens", 0), 16);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "total_tokens", 0), 21);
    fti_json_free(doc);

    /* chat, n = 2 */
    REQUIRE(srv_json(f.port, "/v1/chat/completions",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":3,"
                     "\"n\":2,\"seed\":7}", &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    chs = fti_json_get(root, "choices");
    REQUIRE(chs && chs->len == 2);
    for (k = 0; k < 2; k++) {
        c = fti_json_at(chs, (size_t)k);
        CHECK_EQ_INT(fti_json_get_int(c, "index", -1), k);
        CHECK(strlen(fti_json_get_str(fti_json_get(c, "message"), "content", "")) > 0);
    }
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "completion_tokens", 0), 6);
    fti_json_free(doc);

    /* streamed, n = 3: chunks carry their index, each choice finishes once, one usage chunk
     * (every choice's tokens) and one [DONE], last */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"Hello\",\"max_tokens\":4,\"seed\":40,\"n\":3,\"stream\":true,"
                     "\"stream_options\":{\"include_usage\":true}}", &body) == 200);
    CHECK(srv_stream_read(body.data, 0, &ss) == 0);
    CHECK_EQ_INT(ss.n_done, 1);
    CHECK_EQ_INT(ss.bad_index, 0);
    CHECK_EQ_INT(ss.usage_tokens, 12);
    for (k = 0; k < 3; k++) {
        CHECK_EQ_STR(ss.text[k].data, single[k]);
        CHECK_EQ_INT(ss.n_finish[k], 1);
    }
    CHECK_EQ_INT(ss.text[3].len, 0);
    /* chat: each choice's first chunk has the role */
    REQUIRE(srv_json(f.port, "/v1/chat/completions",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":3,"
                     "\"n\":2,\"stream\":true}", &body) == 200);
    CHECK(srv_stream_read(body.data, 1, &ss) == 0);
    CHECK_EQ_INT(ss.n_done, 1);
    CHECK_EQ_INT(ss.usage_tokens, -1);
    for (k = 0; k < 2; k++) {
        CHECK_EQ_INT(ss.n_role[k], 1);
        CHECK_EQ_INT(ss.n_finish[k], 1);
        CHECK(ss.text[k].len > 0);
    }

    /* echo: the prompt, then the completion; whole and streamed */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"Hello\",\"max_tokens\":4,\"seed\":40,\"n\":2,\"echo\":true}",
                     &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    chs = fti_json_get(fti_json_root(doc), "choices");
    REQUIRE(chs && chs->len == 2);
    for (k = 0; k < 2; k++) {
        const char *t = fti_json_get_str(fti_json_at(chs, (size_t)k), "text", "?");
        CHECK(strncmp(t, "Hello", 5) == 0);
        CHECK_EQ_STR(t + (strncmp(t, "Hello", 5) == 0 ? 5 : 0), single[k]);
    }
    fti_json_free(doc);
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"Hello\",\"max_tokens\":4,\"seed\":40,\"echo\":true,"
                     "\"stream\":true}", &body) == 200);
    CHECK(srv_stream_read(body.data, 0, &ss) == 0);
    snprintf(json, sizeof json, "Hello%s", single[0]);
    CHECK_EQ_STR(ss.text[0].data, json);
    /* echo: false is the default */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"Hello\",\"max_tokens\":4,\"seed\":40,\"echo\":false}",
                     &body) == 200);
    CHECK(strstr(body.data, "\"text\":\"Hello") == NULL);

    /* best_of 4, n 2: the two candidates with the highest mean log-probability, best first
     * (ties: the lower seed); usage counts every candidate's tokens */
    for (k = 0; k < 4; k++) order[k] = k;
    for (k = 1; k < 4; k++) {
        int v = order[k];
        for (m = k; m > 0 && mean[order[m - 1]] < mean[v]; m--) order[m] = order[m - 1];
        order[m] = v;
    }
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"Hello\",\"max_tokens\":4,\"seed\":40,\"n\":2,\"best_of\":4}",
                     &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    chs = fti_json_get(root, "choices");
    REQUIRE(chs && chs->len == 2);
    for (k = 0; k < 2; k++) {
        c = fti_json_at(chs, (size_t)k);
        CHECK_EQ_INT(fti_json_get_int(c, "index", -1), k);
        CHECK_EQ_STR(fti_json_get_str(c, "text", "?"), single[order[k]]);
        CHECK(fti_json_get(c, "logprobs")->type == FTI_JSON_NULL); /* not asked for */
    }
    CHECK(mean[order[0]] > mean[order[3]]); /* there was something to rank */
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "completion_tokens", 0), 16);
    fti_json_free(doc);
    /* best_of 4, n 1, with logprobs: the best, with its entries */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"Hello\",\"max_tokens\":4,\"seed\":40,\"best_of\":4,"
                     "\"logprobs\":1}", &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    chs = fti_json_get(fti_json_root(doc), "choices");
    REQUIRE(chs && chs->len == 1);
    CHECK_EQ_STR(fti_json_get_str(fti_json_at(chs, 0), "text", "?"), single[order[0]]);
    CHECK(fti_json_get(fti_json_get(fti_json_at(chs, 0), "logprobs"), "tokens")->len == 4);
    fti_json_free(doc);

    /* the limits and bad values: 400 naming the parameter */
    {
        static const struct {
            const char *json, *param;
        } bad[] = {
            {"{\"prompt\":\"a\",\"n\":9}", "n"}, /* above this server's max_batch (8) */
            {"{\"prompt\":\"a\",\"best_of\":9}", "best_of"},
            {"{\"prompt\":\"a\",\"n\":2,\"best_of\":9}", "best_of"},
            {"{\"prompt\":\"a\",\"n\":17}", "n"}, /* above FTI_API_MAX_N */
            {"{\"prompt\":\"a\",\"n\":0}", "n"},
            {"{\"prompt\":\"a\",\"n\":3,\"best_of\":2}", "best_of"},
            {"{\"prompt\":\"a\",\"best_of\":2,\"stream\":true}", "best_of"},
            {"{\"prompt\":[1,256]}", "prompt"}, /* the echo generator's vocabulary: bytes */
        };
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char want[64];
            snprintf(want, sizeof want, "\"param\":\"%s\"", bad[i].param);
            CHECK_EQ_INT(srv_json(f.port, "/v1/completions", bad[i].json, &body), 400);
            if (!strstr(body.data, want)) {
                fprintf(stderr, "    %s: %s\n", bad[i].json, body.data);
                fti_test_failures++;
            }
        }
        CHECK_EQ_INT(srv_json(f.port, "/v1/chat/completions",
                              "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":9}",
                              &body), 400);
        CHECK(strstr(body.data, "at most 8 sequences") != NULL);
    }
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);

    /* a client gone mid-stream: every one of its n sequences ends (2 ms a step: it would take
     * 0.4 s to finish) and the server serves the next request */
    REQUIRE(srv_start(&f, &o, 2000, 0) == 0);
    {
        fti_buf req;
        fti_server_stats st;
        char buf[512];
        int fd = tu_connect(f.port), waited;
        memset(&req, 0, sizeof req);
        REQUIRE(fd >= 0);
        srv_post(&req, "/v1/completions",
                 "{\"prompt\":\"Hello\",\"max_tokens\":200,\"n\":4,\"stream\":true}", 1);
        CHECK(cli_send(fd, req.data, req.len) == 0);
        CHECK(recv(fd, buf, sizeof buf, 0) > 0); /* the stream has started */
        fti_server_get_stats(f.srv, &st);
        CHECK_EQ_INT(st.active, 4);
        close(fd);
        for (waited = 0; waited < 3000; waited += 5) {
            fti_server_get_stats(f.srv, &st);
            if (st.active == 0) break;
            srv_sleep_ms(5);
        }
        CHECK_EQ_INT(st.active, 0);
        CHECK(st.tokens < 4 * 200);
        fti_buf_free(&req);
        CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                              "{\"prompt\":\"Hello\",\"max_tokens\":2,\"n\":8}", &body), 200);
    }
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    for (k = 0; k < 4; k++) fti_buf_free(&ss.text[k]);
    fti_buf_free(&body);
}

/* "prompt" as a batch: one choice per prompt and n in one choices array, prompt i's choice j at
 * index i*n + j and equal to the answer prompt i gets alone with seed + j; usage sums over the
 * prompts; streamed, the chunks carry those indices and one [DONE] ends it. best_of ranks each
 * prompt's candidates on their own. */
FTI_TEST(server_prompt_batch) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf body;
    fti_json_doc *doc;
    const fti_json *root, *chs, *c;
    srv_stream ss;
    char single[2][2][256], json[512];
    static const char *const prompts[2] = {"Hello", "Goodbye!"};
    int i, k;
    memset(&o, 0, sizeof o);
    memset(&body, 0, sizeof body);
    memset(&ss, 0, sizeof ss);
    o.max_batch = 8;
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    for (i = 0; i < 2; i++)
        for (k = 0; k < 2; k++) {
            snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":3,\"seed\":%d}",
                     prompts[i], 5 + k);
            REQUIRE(srv_json(f.port, "/v1/completions", json, &body) == 200);
            REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
            c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
            snprintf(single[i][k], sizeof single[i][k], "%s", fti_json_get_str(c, "text", "?"));
            fti_json_free(doc);
        }
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":[\"Hello\",\"Goodbye!\"],\"max_tokens\":3,\"seed\":5,\"n\":2}",
                     &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    chs = fti_json_get(root, "choices");
    REQUIRE(chs && chs->len == 4);
    for (k = 0; k < 4; k++) {
        c = fti_json_at(chs, (size_t)k);
        CHECK_EQ_INT(fti_json_get_int(c, "index", -1), k);
        CHECK_EQ_STR(fti_json_get_str(c, "text", "?"), single[k / 2][k % 2]);
    }
    /* the echo generator: a token per byte, 5 + 8 */
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "prompt_tokens", 0), 13);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "completion_tokens", 0), 12);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "total_tokens", 0), 25);
    fti_json_free(doc);

    /* streamed */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":[\"Hello\",\"Goodbye!\"],\"max_tokens\":3,\"seed\":5,\"n\":2,"
                     "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
                     &body) == 200);
    CHECK(srv_stream_read(body.data, 0, &ss) == 0);
    CHECK_EQ_INT(ss.n_done, 1);
    CHECK_EQ_INT(ss.bad_index, 0);
    CHECK_EQ_INT(ss.usage_tokens, 12);
    for (k = 0; k < 4; k++) {
        CHECK_EQ_INT(ss.n_finish[k], 1);
        CHECK_EQ_STR(ss.text[k].data ? ss.text[k].data : "", single[k / 2][k % 2]);
    }

    /* best_of 2, n 1 over two prompts: prompt i's best at index i (one of its own candidates) */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":[\"Hello\",\"Goodbye!\"],\"max_tokens\":3,\"seed\":5,"
                     "\"best_of\":2}", &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    chs = fti_json_get(fti_json_root(doc), "choices");
    REQUIRE(chs && chs->len == 2);
    for (i = 0; i < 2; i++) {
        const char *t = fti_json_get_str(fti_json_at(chs, (size_t)i), "text", "?");
        CHECK_EQ_INT(fti_json_get_int(fti_json_at(chs, (size_t)i), "index", -1), i);
        CHECK(strcmp(t, single[i][0]) == 0 || strcmp(t, single[i][1]) == 0);
    }
    fti_json_free(doc);

    /* prompts x best_of sequences above max_batch (8) run in turns (server_prompt_batch_turns) */
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                          "{\"prompt\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\"]}", &body),
                 200);
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                          "{\"prompt\":[\"a\",\"b\",\"c\"],\"n\":3}", &body), 200);
    /* n (best_of) above max_batch on its own is its own 400, batch or not (a batch's said "send
     * at most 0 prompts per request") */
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                          "{\"prompt\":[\"a\",\"b\"],\"n\":9}", &body), 400);
    CHECK(strstr(body.data, "9 is not a valid value for 'n': this server runs at most 8 "
                            "sequences at a time") != NULL);
    CHECK(strstr(body.data, "\"param\":\"n\"") != NULL);
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    fti_buf_free(&body);
    for (k = 0; k < 4; k++) fti_buf_free(&ss.text[k]);
}

/* "prompt" as token ids (one array, or a batch of them): the echo generator's tokens are bytes,
 * so ids 104, 105 are "hi"; ids past its vocabulary of 256 are a 400 naming the id and the
 * vocabulary, as is an empty id prompt; a server whose generator has no n_vocab refuses ids. */
FTI_TEST(server_prompt_token_ids) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf body, a;
    fti_json_doc *doc;
    const fti_json *chs;
    memset(&o, 0, sizeof o);
    memset(&body, 0, sizeof body);
    memset(&a, 0, sizeof a);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    /* ids answer what the same bytes as text answer (no BOS or template in either here) */
    REQUIRE(srv_json(f.port, "/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":3,\"seed\":2}",
                     &a) == 200);
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":[104,105],\"max_tokens\":3,\"seed\":2}", &body) == 200);
    {
        fti_json_doc *d2;
        REQUIRE(fti_json_parse(a.data, a.len, NULL, &d2, NULL, NULL) == FTI_OK);
        REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
        CHECK_EQ_STR(fti_json_get_str(fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0),
                                      "text", "?"),
                     fti_json_get_str(fti_json_at(fti_json_get(fti_json_root(d2), "choices"), 0),
                                      "text", "!"));
        CHECK_EQ_INT(fti_json_get_int(fti_json_get(fti_json_root(doc), "usage"), "prompt_tokens",
                                      0), 2);
        /* token ids get no retrieval */
        CHECK(fti_json_get(fti_json_root(doc), "fti_chunks") == NULL);
        fti_json_free(doc);
        fti_json_free(d2);
    }
    /* a batch of id prompts, echoed: the ids' bytes */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":[[104,105],[120]],\"max_tokens\":1,\"echo\":true}", &body) ==
            200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    chs = fti_json_get(fti_json_root(doc), "choices");
    REQUIRE(chs && chs->len == 2);
    CHECK(strncmp(fti_json_get_str(fti_json_at(chs, 0), "text", ""), "hi", 2) == 0);
    CHECK(strncmp(fti_json_get_str(fti_json_at(chs, 1), "text", ""), "x", 1) == 0);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(fti_json_root(doc), "usage"), "prompt_tokens", 0),
                 3);
    fti_json_free(doc);
    /* the refusals */
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":[[104],[104,256]]}", &body),
                 400);
    CHECK(strstr(body.data, "token id 256 (prompt 1, position 1) is not in this model's "
                            "vocabulary: its 256 tokens are ids 0 to 255") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":[[104],[]]}", &body), 400);
    CHECK(strstr(body.data, "prompt 1 is an empty array of token ids") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":[-1]}", &body), 400);
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":[1,\"a\"]}", &body), 400);
    /* logit_bias is checked against the vocabulary before the request is queued, so a
     * generator's refusal of a token-id prompt is never blamed on it, nor its on the prompt */
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                          "{\"prompt\":[104],\"logit_bias\":{\"300\":1}}", &body), 400);
    CHECK(strstr(body.data, "'logit_bias' names token 300, which this model does not have (its "
                            "vocabulary is ids 0 to 255)") != NULL);
    CHECK(strstr(body.data, "\"param\":\"logit_bias\"") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/v1/chat/completions",
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                          "\"logit_bias\":{\"256\":1}}", &body), 400);
    CHECK(strstr(body.data, "\"param\":\"logit_bias\"") != NULL);
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);

    /* a generator without n_vocab: text only */
    {
        fti_gen g;
        REQUIRE(fti_gen_echo_create(NULL, &g) == FTI_OK);
        g.n_vocab = NULL;
        REQUIRE(srv_start(&f, &o, 0, 0) == 0);
        fti_server_set_generator(f.srv, &g);
        CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":[104]}", &body), 400);
        CHECK(strstr(body.data, "token ids is not supported by this server's model") != NULL);
        CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":\"h\"}", &body), 200);
        srv_finish(&f);
    }
    fti_buf_free(&body);
    fti_buf_free(&a);
}

/* llama.cpp's POST /tokenize and /detokenize (extensions): the generator's own tokens (the echo
 * generator's are bytes), 400 for bad bodies and ids, 405 for GET, 501 when the generator has
 * no tokenizer to offer. */
FTI_TEST(server_tokenize_endpoints) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf body;
    memset(&o, 0, sizeof o);
    memset(&body, 0, sizeof body);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    CHECK_EQ_INT(srv_json(f.port, "/tokenize", "{\"content\":\"hi!\"}", &body), 200);
    CHECK_EQ_STR(body.data, "{\"tokens\":[104,105,33]}");
    CHECK_EQ_INT(srv_json(f.port, "/tokenize", "{\"content\":\"\",\"add_special\":true}", &body),
                 200);
    CHECK_EQ_STR(body.data, "{\"tokens\":[]}");
    CHECK_EQ_INT(srv_json(f.port, "/detokenize", "{\"tokens\":[104,105,33]}", &body), 200);
    CHECK_EQ_STR(body.data, "{\"content\":\"hi!\"}");
    CHECK_EQ_INT(srv_json(f.port, "/detokenize", "{\"tokens\":[104,256]}", &body), 400);
    CHECK(strstr(body.data, "token id 256 (position 1) is not in this model's vocabulary") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/detokenize", "{\"tokens\":[-1]}", &body), 400);
    CHECK_EQ_INT(srv_json(f.port, "/detokenize", "{\"tokens\":\"a\"}", &body), 400);
    CHECK_EQ_INT(srv_json(f.port, "/tokenize", "{\"content\":5}", &body), 400);
    { /* at most FTI_TOKENIZE_MAX_BYTES of text (it runs on the I/O thread) */
        fti_buf big;
        size_t k;
        memset(&big, 0, sizeof big);
        fti_buf_puts(&big, "{\"content\":\"");
        for (k = 0; k <= FTI_TOKENIZE_MAX_BYTES; k++) fti_buf_putc(&big, 'a');
        fti_buf_puts(&big, "\"}");
        REQUIRE(!big.oom);
        CHECK_EQ_INT(srv_json(f.port, "/tokenize", big.data, &body), 400);
        CHECK(body.data && strstr(body.data, "takes at most") != NULL);
        fti_buf_free(&big);
    }
    CHECK(strstr(body.data, "\"param\":\"content\"") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/tokenize", "[", &body), 400);
    /* the JSON parser's own message, as the completions endpoints give it */
    CHECK(strstr(body.data, "\"message\":\"request body is not valid JSON: ") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/tokenize", "[1]", &body), 400);
    CHECK(strstr(body.data, "\"message\":\"request body must be a JSON object\"") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/detokenize", "{\"tokens\":[1,2.5]}", &body), 400);
    CHECK(strstr(body.data, "'tokens': token ids must be integers from 0 (entry 1 is not)") !=
          NULL);
    {
        fti_buf req, resp;
        memset(&req, 0, sizeof req);
        memset(&resp, 0, sizeof resp);
        fti_buf_puts(&req, "GET /tokenize HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 405);
        fti_buf_free(&req);
        fti_buf_free(&resp);
    }
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    {
        fti_gen g;
        REQUIRE(fti_gen_echo_create(NULL, &g) == FTI_OK);
        g.tokenize = NULL;
        g.detokenize = NULL;
        REQUIRE(srv_start(&f, &o, 0, 0) == 0);
        fti_server_set_generator(f.srv, &g);
        CHECK_EQ_INT(srv_json(f.port, "/tokenize", "{\"content\":\"a\"}", &body), 501);
        CHECK_EQ_INT(srv_json(f.port, "/detokenize", "{\"tokens\":[1]}", &body), 501);
        srv_finish(&f);
    }
    fti_buf_free(&body);
}

/* echo with logprobs: the prompt's tokens first, the first with null token_logprob and
 * top_logprobs, text_offset counting from the echoed text, then the generated tokens with the
 * log-probabilities the request without echo reports (offsets after the prompt); max_tokens 0
 * scores without generating (finish_reason "length", no completion tokens), streamed too (the
 * prompt in the first chunk); max_tokens 0 without echo is a 400, and chat refuses echo. */
FTI_TEST(server_echo_logprobs_scoring) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf body;
    fti_json_doc *doc, *d2;
    const fti_json *c, *lp, *tl, *tops, *offs, *lp2;
    srv_stream ss;
    size_t i;
    memset(&o, 0, sizeof o);
    memset(&body, 0, sizeof body);
    memset(&ss, 0, sizeof ss);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"abc\",\"max_tokens\":2,\"logprobs\":1,\"seed\":3}", &body) ==
            200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &d2, NULL, NULL) == FTI_OK);
    lp2 = fti_json_get(fti_json_get(fti_json_at(fti_json_get(fti_json_root(d2), "choices"), 0),
                                    "logprobs"), "token_logprobs");
    REQUIRE(lp2 && lp2->len == 2);
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"abc\",\"max_tokens\":2,\"logprobs\":1,\"seed\":3,"
                     "\"echo\":true}", &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
    lp = fti_json_get(c, "logprobs");
    tl = fti_json_get(lp, "token_logprobs");
    tops = fti_json_get(lp, "top_logprobs");
    offs = fti_json_get(lp, "text_offset");
    REQUIRE(tl && tl->len == 5 && tops && tops->len == 5 && offs && offs->len == 5);
    CHECK(fti_json_at(tl, 0)->type == FTI_JSON_NULL);
    CHECK(fti_json_at(tops, 0)->type == FTI_JSON_NULL);
    CHECK_EQ_STR(fti_json_at(fti_json_get(lp, "tokens"), 1)->str, "b");
    /* the echo generator's made-up figure for byte 'b' (98): -0.5 - 0.25 * (98 % 4) */
    CHECK(fti_json_at(tl, 1)->num == -1.0 && fti_json_at(tops, 1)->len == 1);
    for (i = 0; i < 3; i++) CHECK_EQ_INT(fti_json_at(offs, i)->i, (int64_t)i);
    CHECK(fti_json_at(offs, 3)->i == 3); /* the first generated token starts after "abc" */
    CHECK(fti_json_at(tl, 3)->num == fti_json_at(lp2, 0)->num);
    CHECK(fti_json_at(tl, 4)->num == fti_json_at(lp2, 1)->num);
    CHECK(strncmp(fti_json_get_str(c, "text", ""), "abc", 3) == 0);
    fti_json_free(doc);
    fti_json_free(d2);

    /* max_tokens 0: only the prompt, scored */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":[\"abc\",\"de\"],\"max_tokens\":0,\"logprobs\":1,\"echo\":true,"
                     "\"temperature\":0,\"seed\":1234}", &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    c = fti_json_get(fti_json_root(doc), "choices");
    REQUIRE(c && c->len == 2);
    CHECK_EQ_STR(fti_json_get_str(fti_json_at(c, 0), "text", "?"), "abc");
    CHECK_EQ_STR(fti_json_get_str(fti_json_at(c, 1), "text", "?"), "de");
    CHECK_EQ_STR(fti_json_get_str(fti_json_at(c, 1), "finish_reason", "?"), "length");
    CHECK(fti_json_get(fti_json_get(fti_json_at(c, 1), "logprobs"), "tokens")->len == 2);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(fti_json_root(doc), "usage"), "prompt_tokens", 0),
                 5);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(fti_json_root(doc), "usage"), "completion_tokens",
                                  -1), 0);
    fti_json_free(doc);
    /* echo without logprobs and max_tokens 0: the prompt back */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":\"abc\",\"max_tokens\":0,\"echo\":true}", &body) == 200);
    CHECK(strstr(body.data, "\"text\":\"abc\",\"logprobs\":null") != NULL);
    /* streamed */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":[\"abc\",\"de\"],\"max_tokens\":0,\"logprobs\":1,\"echo\":true,"
                     "\"stream\":true,\"stream_options\":{\"include_usage\":true}}", &body) ==
            200);
    CHECK(srv_stream_read(body.data, 0, &ss) == 0);
    CHECK_EQ_STR(ss.text[0].data ? ss.text[0].data : "", "abc");
    CHECK_EQ_STR(ss.text[1].data ? ss.text[1].data : "", "de");
    CHECK(ss.n_finish[0] == 1 && ss.n_finish[1] == 1 && ss.n_done == 1);
    CHECK_EQ_INT(ss.usage_tokens, 0);
    CHECK(strstr(body.data, "\"token_logprobs\":[null,-1,-1.25]") != NULL);
    /* the refusals */
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":\"abc\",\"max_tokens\":0}",
                          &body), 400);
    CHECK(strstr(body.data, "\"param\":\"max_tokens\"") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/v1/chat/completions",
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"echo\":true}",
                          &body), 400);
    CHECK(strstr(body.data, "\"param\":\"echo\"") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/v1/chat/completions",
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"echo\":false,"
                          "\"max_tokens\":1}", &body), 200);
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    fti_buf_free(&body);
    for (i = 0; i < 4; i++) fti_buf_free(&ss.text[i]);
}

/* A generator around the echo one whose completion is fixed bytes, token by token (srv_u8_toks,
 * each with log-probability -0.5): with a token-id prompt that ends inside a UTF-8 character,
 * the completion's first tokens finish it. */
static const char *const *srv_u8_toks;
typedef struct srv_u8_seq {
    void *inner;
    int n_out;
} srv_u8_seq;

static const char *srv_u8_id(void *u) { return ((fti_gen *)u)->model_id(((fti_gen *)u)->user); }
static int srv_u8_ctx(void *u) { return ((fti_gen *)u)->n_ctx(((fti_gen *)u)->user); }
static int srv_u8_vocab(void *u) { return ((fti_gen *)u)->n_vocab(((fti_gen *)u)->user); }
static fti_result srv_u8_start(void *u, const char *p, size_t n, const fti_gen_params *pr,
                               void **s, fti_gen_prompt_info *info, fti_error *err) {
    fti_gen *in = (fti_gen *)u;
    srv_u8_seq *q = (srv_u8_seq *)fti_calloc(1, sizeof *q);
    fti_result r;
    if (!q) return FTI_ERR_NOMEM;
    r = in->seq_start(in->user, p, n, pr, &q->inner, info, err);
    if (r != FTI_OK) {
        fti_free(q);
        return r;
    }
    *s = q;
    return FTI_OK;
}
static fti_result srv_u8_step(void *u, void **s, size_t n, fti_gen_token *o, fti_error *err) {
    size_t i;
    (void)u;
    (void)err;
    for (i = 0; i < n; i++) {
        srv_u8_seq *q = (srv_u8_seq *)s[i];
        const char *t = srv_u8_toks[q->n_out];
        memset(&o[i], 0, sizeof o[i]);
        if (srv_u8_toks[q->n_out + 1]) q->n_out++; /* the last one repeats */
        o[i].id = 1;
        o[i].text = t;
        o[i].text_len = strlen(t);
        o[i].has_logprob = 1;
        o[i].logprob = -0.5f;
    }
    return FTI_OK;
}
static void srv_u8_end(void *u, void *s) {
    srv_u8_seq *q = (srv_u8_seq *)s;
    ((fti_gen *)u)->seq_end(((fti_gen *)u)->user, q->inner);
    fti_free(q);
}
static void srv_u8_release(void *u) {
    ((fti_gen *)u)->release(((fti_gen *)u)->user);
    fti_free(u);
}

/* A streamed echo is the same bytes as the whole response when a UTF-8 character straddles the
 * prompt and the completion: the prompt's last token ends inside it, the completion's first
 * (or first two) finish it. It came as two U+FFFD (the prompt's chunk, then the completion's). */
FTI_TEST(server_stream_echo_utf8_boundary) {
    static const char *const toks_e9[] = {"\xA9", " ok", " then", NULL};     /* C3 | A9 */
    static const char *const toks_euro[] = {"\x82", "\xAC", " x", " y", NULL}; /* E2 | 82 | AC */
    static const char *const toks_word[] = {" ab", " cd", NULL};
    static const struct {
        const char *prompt; /* token ids: the echo generator's are bytes */
        const char *const *toks;
        int max_tokens;
        const char *want; /* the whole text: prompt then completion */
    } cases[] = {
        {"[99,97,102,195]", toks_e9, 3, "caf\xC3\xA9 ok then"},
        {"[97,226]", toks_euro, 3, "a\xE2\x82\xAC x"},
        {"[226]", toks_euro, 2, "\xE2\x82\xAC"},
        {"[226]", toks_euro, 1, "\xEF\xBF\xBD"}, /* never finished: one U+FFFD (E2 82) */
        {"[99,195]", toks_word, 0, "c\xEF\xBF\xBD"},          /* scored only */
        {"[99,195]", toks_word, 2, "c\xEF\xBF\xBD ab cd"},    /* a character left unfinished */
    };
    srv_fixture f;
    fti_server_opts o;
    fti_gen *in, g;
    fti_gen_echo_opts eo;
    fti_buf body, whole;
    srv_stream ss;
    size_t i;
    int lp, k;
    memset(&o, 0, sizeof o);
    memset(&eo, 0, sizeof eo);
    memset(&body, 0, sizeof body);
    memset(&whole, 0, sizeof whole);
    memset(&ss, 0, sizeof ss);
    memset(&f, 0, sizeof f);
    in = (fti_gen *)fti_calloc(1, sizeof *in);
    REQUIRE(in);
    eo.n_ctx = 256;
    REQUIRE(fti_gen_echo_create(&eo, in) == FTI_OK);
    memset(&g, 0, sizeof g);
    g.user = in;
    g.model_id = srv_u8_id;
    g.n_ctx = srv_u8_ctx;
    g.n_vocab = srv_u8_vocab;
    g.seq_start = srv_u8_start;
    g.step = srv_u8_step;
    g.seq_end = srv_u8_end;
    g.release = srv_u8_release;
    REQUIRE(fti_server_create(&o, &g, &f.srv, NULL) == FTI_OK);
    f.port = fti_server_port(f.srv);
    REQUIRE(pthread_create(&f.th, NULL, srv_thread, &f) == 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (lp = 0; lp < 2; lp++) {
            char json[256];
            fti_json_doc *doc = NULL;
            const fti_json *c, *toks;
            size_t n_whole_toks = 0;
            const char *at;
            int n_stream_toks = 0;
            srv_u8_toks = cases[i].toks;
            snprintf(json, sizeof json, "{\"prompt\":%s,\"max_tokens\":%d,\"echo\":true%s",
                     cases[i].prompt, cases[i].max_tokens, lp ? ",\"logprobs\":0" : "");
            whole.len = 0;
            fti_buf_printf(&whole, "%s}", json);
            REQUIRE(srv_json(f.port, "/v1/completions", whole.data, &body) == 200);
            REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
            c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
            whole.len = 0;
            fti_buf_puts(&whole, fti_json_get_str(c, "text", "?"));
            toks = fti_json_get(fti_json_get(c, "logprobs"), "tokens");
            n_whole_toks = toks ? toks->len : 0;
            fti_json_free(doc);
            CHECK_EQ_STR(whole.data, cases[i].want);
            whole.len = 0;
            fti_buf_printf(&whole, "%s,\"stream\":true}", json);
            REQUIRE(srv_json(f.port, "/v1/completions", whole.data, &body) == 200);
            CHECK(srv_stream_read(body.data, 0, &ss) == 0);
            CHECK_EQ_STR(ss.text[0].data ? ss.text[0].data : "", cases[i].want);
            /* every token's entry once in the stream too */
            for (at = body.data; lp && (at = strstr(at, "\"token_logprobs\":[")) != NULL;) {
                at += 18;
                if (*at != ']') n_stream_toks++;
                for (; *at && *at != ']'; at++)
                    if (*at == ',') n_stream_toks++;
            }
            if (lp) CHECK_EQ_INT(n_stream_toks, (int)n_whole_toks);
            if (strcmp(ss.text[0].data ? ss.text[0].data : "", cases[i].want) != 0)
                fprintf(stderr, "    case %lu (logprobs %d): %s\n", (unsigned long)i, lp,
                        body.data);
        }
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    for (k = 0; k < 4; k++) fti_buf_free(&ss.text[k]);
    fti_buf_free(&body);
    fti_buf_free(&whole);
}

/* A batch of prompts with more sequences (prompts x n) than max_batch runs in turns of whole
 * prompts and answers once, prompt i's choice j at i*n + j, each what the prompt gets alone;
 * streamed too. A prompt of a later turn that cannot start answers with its error, naming the
 * prompt (a stream: an error event, then [DONE]), and every sequence ends. */
FTI_TEST(server_prompt_batch_turns) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf body, json;
    fti_json_doc *doc;
    const fti_json *chs;
    srv_stream ss;
    fti_server_stats st;
    char single[7][2][128];
    int i, k, waited;
    memset(&o, 0, sizeof o);
    memset(&body, 0, sizeof body);
    memset(&json, 0, sizeof json);
    memset(&ss, 0, sizeof ss);
    o.max_batch = 4;
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    for (i = 0; i < 7; i++)
        for (k = 0; k < 2; k++) {
            json.len = 0;
            fti_buf_printf(&json, "{\"prompt\":\"p%d\",\"max_tokens\":3,\"seed\":%d}", i, 9 + k);
            REQUIRE(srv_json(f.port, "/v1/completions", json.data, &body) == 200);
            REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
            snprintf(single[i][k], sizeof single[i][k], "%s",
                     fti_json_get_str(fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0),
                                      "text", "?"));
            fti_json_free(doc);
        }
    /* 7 prompts x n 2 = 14 sequences, 4 at a time: turns of 2 prompts */
    json.len = 0;
    fti_buf_puts(&json, "{\"prompt\":[\"p0\",\"p1\",\"p2\",\"p3\",\"p4\",\"p5\",\"p6\"],"
                        "\"max_tokens\":3,\"seed\":9,\"n\":2,\"echo\":true}");
    REQUIRE(srv_json(f.port, "/v1/completions", json.data, &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    chs = fti_json_get(fti_json_root(doc), "choices");
    REQUIRE(chs && chs->len == 14);
    for (k = 0; k < 14; k++) {
        char want[160];
        snprintf(want, sizeof want, "p%d%s", k / 2, single[k / 2][k % 2]);
        CHECK_EQ_INT(fti_json_get_int(fti_json_at(chs, (size_t)k), "index", -1), k);
        CHECK_EQ_STR(fti_json_get_str(fti_json_at(chs, (size_t)k), "text", "?"), want);
    }
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(fti_json_root(doc), "usage"), "prompt_tokens", 0),
                 14);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(fti_json_root(doc), "usage"),
                                  "completion_tokens", 0), 42);
    fti_json_free(doc);
    /* streamed: 5 prompts (the reader keeps 4 indices: n 1 of the first 4, and the 5th's is
     * counted as a bad index), one usage chunk and one [DONE] */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":[\"p0\",\"p1\",\"p2\",\"p3\",\"p4\"],\"max_tokens\":3,\"seed\":9,"
                     "\"stream\":true,\"stream_options\":{\"include_usage\":true}}", &body) ==
            200);
    CHECK(srv_stream_read(body.data, 0, &ss) == 0);
    CHECK_EQ_INT(ss.n_done, 1);
    CHECK_EQ_INT(ss.usage_tokens, 15);
    for (k = 0; k < 4; k++) {
        CHECK_EQ_STR(ss.text[k].data ? ss.text[k].data : "", single[k][0]);
        CHECK_EQ_INT(ss.n_finish[k], 1);
    }
    CHECK(ss.bad_index > 0);
    /* prompt 5 (in the third turn: 2 prompts x n 2 a turn) is longer than the context */
    json.len = 0;
    fti_buf_puts(&json, "{\"prompt\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"");
    for (k = 0; k < 300; k++) fti_buf_putc(&json, 'x');
    fti_buf_puts(&json, "\",\"g\"],\"max_tokens\":2,\"n\":2");
    fti_buf_puts(&json, "}");
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", json.data, &body), 400);
    CHECK(strstr(body.data, "\"message\":\"prompt 5: This model's maximum context length is 256 "
                            "tokens") != NULL);
    CHECK(strstr(body.data, "\"param\":\"max_tokens\"") != NULL);
    CHECK(strstr(body.data, "\"code\":\"context_length_exceeded\"") != NULL);
    json.len--;
    fti_buf_puts(&json, ",\"stream\":true}");
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", json.data, &body), 200);
    CHECK(strstr(body.data, "data: {\"error\":{\"message\":\"prompt 5: This model's maximum") !=
          NULL);
    CHECK(strstr(body.data, "data: [DONE]\n\n") != NULL);
    /* in the first turn: nothing started, a plain 400 */
    json.len = 0;
    fti_buf_puts(&json, "{\"prompt\":[\"a\",\"");
    for (k = 0; k < 300; k++) fti_buf_putc(&json, 'x');
    fti_buf_puts(&json, "\",\"c\",\"d\",\"e\"],\"max_tokens\":2,\"n\":2,\"stream\":true}");
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", json.data, &body), 400);
    CHECK(strstr(body.data, "prompt 1: This model's maximum context length") != NULL);
    for (waited = 0; waited < 2000; waited += 5) {
        fti_server_get_stats(f.srv, &st);
        if (st.active == 0 && st.queued == 0) break;
        srv_sleep_ms(5);
    }
    CHECK_EQ_INT(st.active, 0);
    CHECK_EQ_INT(st.queued, 0);
    /* still one prompt's best_of within max_batch: a prompt's candidates start together */
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":[\"a\",\"b\"],\"n\":5}", &body),
                 400);
    CHECK(strstr(body.data, "5 is not a valid value for 'n': this server runs at most 4 "
                            "sequences at a time") != NULL);
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    for (k = 0; k < 4; k++) fti_buf_free(&ss.text[k]);
    fti_buf_free(&body);
    fti_buf_free(&json);
}
/* An empty text prompt scored (echo with logprobs): the echo generator, like a model without a
 * BOS token, has nothing to score and refuses it (it accepted it, while fti-serve's model
 * refused), naming the prompt of a batch; every per-prompt error of a batch names its index. */
FTI_TEST(server_empty_scored_prompt) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf body;
    fti_error err;
    int32_t ids[3] = {1, 300, 2};
    memset(&o, 0, sizeof o);
    memset(&body, 0, sizeof body);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                          "{\"prompt\":\"\",\"max_tokens\":0,\"echo\":true,\"logprobs\":1}", &body),
                 400);
    CHECK(strstr(body.data, "\"message\":\"" FTI_GEN_EMPTY_PROMPT_MSG "\"") != NULL);
    CHECK(strstr(body.data, "\"param\":\"prompt\"") != NULL);
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                          "{\"prompt\":[\"ab\",\"\"],\"max_tokens\":0,\"echo\":true,"
                          "\"logprobs\":1}", &body), 400);
    CHECK(strstr(body.data, "\"message\":\"prompt 1: " FTI_GEN_EMPTY_PROMPT_MSG "\"") != NULL);
    /* not scored: generated from the template, as before */
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                          "{\"prompt\":[\"ab\",\"\"],\"max_tokens\":1,\"echo\":true}", &body), 200);
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":\"\",\"max_tokens\":1}", &body),
                 200);
    /* the other per-prompt errors of a batch */
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":[[1],[2,-3]]}", &body), 400);
    CHECK(strstr(body.data, "prompt 1: token ids must be integers from 0 (entry 1 is not)") !=
          NULL);
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":[[1],[2,3,999]]}", &body), 400);
    CHECK(strstr(body.data, "token id 999 (prompt 1, position 2) is not in this model's "
                            "vocabulary: its 256 tokens are ids 0 to 255") != NULL);
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    /* the vocabulary message, one helper for the server and the generators */
    fti_error_clear(&err);
    CHECK_EQ_INT(fti_gen_check_ids(ids, 1, 256, -1, &err), FTI_OK);
    CHECK_EQ_INT(fti_gen_check_ids(ids, 3, 256, -1, &err), FTI_ERR_INVALID);
    CHECK_EQ_STR(err.msg, "token id 300 (position 1) is not in this model's vocabulary: its 256 "
                          "tokens are ids 0 to 255");
    CHECK_EQ_INT(fti_gen_check_ids(ids, 3, 256, 4, &err), FTI_ERR_INVALID);
    CHECK_EQ_STR(err.msg, "token id 300 (prompt 4, position 1) is not in this model's "
                          "vocabulary: its 256 tokens are ids 0 to 255");
    fti_buf_free(&body);
}

/* A generator around the echo one that counts its live sequences and fails on cue: the
 * fail_start-th seq_start (1-based; 0 never), every step once fail_step steps have run. */
typedef struct srv_faulty {
    fti_gen inner;
    int starts, ends, steps, fail_start, fail_step;
    pthread_mutex_t mu;
} srv_faulty;

static const char *srv_fa_id(void *u) {
    return ((srv_faulty *)u)->inner.model_id(((srv_faulty *)u)->inner.user);
}
static int srv_fa_ctx(void *u) {
    return ((srv_faulty *)u)->inner.n_ctx(((srv_faulty *)u)->inner.user);
}
static fti_result srv_fa_start(void *u, const char *p, size_t n, const fti_gen_params *pr, void **s,
                               fti_gen_prompt_info *info, fti_error *err) {
    srv_faulty *t = (srv_faulty *)u;
    fti_result r;
    int k;
    pthread_mutex_lock(&t->mu);
    k = ++t->starts;
    pthread_mutex_unlock(&t->mu);
    if (t->fail_start && k == t->fail_start)
        r = fti_error_set(err, FTI_ERR_IO, "start %d failed (as asked)", k);
    else
        r = t->inner.seq_start(t->inner.user, p, n, pr, s, info, err);
    if (r != FTI_OK) { /* (counts the started ones) */
        pthread_mutex_lock(&t->mu);
        t->starts--;
        pthread_mutex_unlock(&t->mu);
    }
    return r;
}
static fti_result srv_fa_step(void *u, void **s, size_t n, fti_gen_token *o, fti_error *err) {
    srv_faulty *t = (srv_faulty *)u;
    if (t->fail_step && ++t->steps > t->fail_step)
        return fti_error_set(err, FTI_ERR_IO, "step failed (as asked)");
    return t->inner.step(t->inner.user, s, n, o, err);
}
static void srv_fa_end(void *u, void *s) {
    srv_faulty *t = (srv_faulty *)u;
    pthread_mutex_lock(&t->mu);
    t->ends++;
    pthread_mutex_unlock(&t->mu);
    t->inner.seq_end(t->inner.user, s);
}
static void srv_fa_release(void *u) {
    srv_faulty *t = (srv_faulty *)u;
    t->inner.release(t->inner.user);
}

/* Serves the echo generator (n_ctx, step_us) wrapped in fa (zeroed first) with max_batch 4 on a
 * thread of f (zeroed first). 0, or -1 when the server could not start. */
static int srv_fa_serve(srv_faulty *fa, int n_ctx, int step_us, srv_fixture *f) {
    fti_gen g;
    fti_gen_echo_opts eo;
    fti_server_opts o;
    fti_error err;
    memset(fa, 0, sizeof *fa);
    pthread_mutex_init(&fa->mu, NULL);
    memset(&eo, 0, sizeof eo);
    eo.n_ctx = n_ctx;
    eo.step_us = step_us;
    if (fti_gen_echo_create(&eo, &fa->inner) != FTI_OK) return -1;
    memset(&g, 0, sizeof g);
    g.user = fa;
    g.model_id = srv_fa_id;
    g.n_ctx = srv_fa_ctx;
    g.seq_start = srv_fa_start;
    g.step = srv_fa_step;
    g.seq_end = srv_fa_end;
    g.release = srv_fa_release;
    memset(&o, 0, sizeof o);
    o.max_batch = 4;
    memset(f, 0, sizeof *f);
    if (fti_server_create(&o, &g, &f->srv, &err) != FTI_OK) return -1;
    f->port = fti_server_port(f->srv);
    return pthread_create(&f->th, NULL, srv_thread, f) == 0 ? 0 : -1;
}

/* 1 when every started sequence has ended (the scheduler may still be retiring: waits 2 s). */
static int srv_fa_balanced(srv_faulty *t) {
    int k, ok = 0;
    for (k = 0; k < 400 && !ok; k++) {
        pthread_mutex_lock(&t->mu);
        ok = t->starts == t->ends;
        pthread_mutex_unlock(&t->mu);
        if (!ok) srv_sleep_ms(5);
    }
    if (!ok) fprintf(stderr, "    %d sequences started, %d ended\n", t->starts, t->ends);
    return ok;
}

/* n > 1 when things go wrong: a choice that cannot start ends the ones started before it, a
 * failed step answers once with the error (a stream: one error event, one [DONE]), and a job
 * whose n exceeds the free slots waits for them instead of being dropped or run in part. */
FTI_TEST(server_n_failures_and_admission) {
    srv_faulty fa;
    srv_fixture f;
    fti_buf body, req, resp;
    int round;
    memset(&body, 0, sizeof body);
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    for (round = 0; round < 3; round++) {
        REQUIRE(srv_fa_serve(&fa, 256, round == 2 ? 3000 : 0, &f) == 0);
        if (round == 0) {
            /* the third of four choices fails to start: a 500, the two started ones ended */
            fa.fail_start = 3;
            CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                                  "{\"prompt\":\"Hello\",\"max_tokens\":4,\"n\":4}", &body), 500);
            CHECK(strstr(body.data, "start 3 failed") != NULL);
            CHECK(srv_fa_balanced(&fa));
            /* and the server goes on */
            fa.fail_start = 0;
            CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                                  "{\"prompt\":\"Hello\",\"max_tokens\":4,\"n\":4}", &body), 200);
            CHECK(srv_fa_balanced(&fa));
        } else if (round == 1) {
            /* the second step fails: one error answer, every sequence ended */
            fa.fail_step = 1;
            CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                                  "{\"prompt\":\"Hello\",\"max_tokens\":4,\"n\":3}", &body), 500);
            CHECK(strstr(body.data, "step failed") != NULL);
            CHECK(strstr(body.data, "\"choices\"") == NULL);
            CHECK(srv_fa_balanced(&fa));
            fa.steps = 0;
            CHECK_EQ_INT(srv_json(f.port, "/v1/chat/completions",
                                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                  "\"max_tokens\":4,\"n\":3,\"stream\":true}", &body), 200);
            {
                const char *p = body.data, *q;
                int n_err = 0, n_done = 0;
                for (q = p; (q = strstr(q, "step failed")) != NULL; q++) n_err++;
                for (q = p; (q = strstr(q, "data: [DONE]")) != NULL; q++) n_done++;
                CHECK_EQ_INT(n_err, 1);
                CHECK_EQ_INT(n_done, 1);
                CHECK(strstr(p, "data: [DONE]\n\n") != NULL &&
                      strcmp(strstr(p, "data: [DONE]\n\n"), "data: [DONE]\n\n") == 0);
            }
            CHECK(srv_fa_balanced(&fa));
        } else {
            /* 3 of 4 slots busy (a slow n = 3 stream): an n = 4 request waits for them, then
             * runs whole; a later n = 1 request does not overtake it */
            fti_server_stats st;
            int fd = tu_connect(f.port), k;
            REQUIRE(fd >= 0);
            srv_post(&req, "/v1/completions",
                     "{\"prompt\":\"Hello\",\"max_tokens\":40,\"n\":3,\"stream\":true}", 0);
            CHECK(cli_send(fd, req.data, req.len) == 0);
            for (k = 0; k < 400; k++) {
                fti_server_get_stats(f.srv, &st);
                if (st.active == 3) break;
                srv_sleep_ms(2);
            }
            CHECK_EQ_INT(st.active, 3);
            REQUIRE(srv_json(f.port, "/v1/completions",
                             "{\"prompt\":\"Hello\",\"max_tokens\":3,\"n\":4}", &body) == 200);
            {
                fti_json_doc *doc;
                REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
                CHECK_EQ_INT((int)fti_json_get(fti_json_root(doc), "choices")->len, 4);
                fti_json_free(doc);
            }
            CHECK_EQ_INT(cli_read_all(fd, &resp, 10000), 1);
            CHECK(strstr(resp.data ? resp.data : "", "data: [DONE]") != NULL);
            close(fd);
            CHECK(srv_fa_balanced(&fa));
        }
        srv_finish(&f);
        CHECK_EQ_INT(f.run_result, FTI_OK);
        CHECK(srv_fa_balanced(&fa));
        pthread_mutex_destroy(&fa.mu);
    }
    fti_buf_free(&body);
    fti_buf_free(&req);
    fti_buf_free(&resp);
}

/* A batch in turns when things go wrong between its turns: a later turn's prompt that cannot
 * start ends the earlier turns' choices at their next step (they ran to max_tokens for an
 * answer that is the error), and a client gone mid-batch ends every sequence, started or not,
 * with the slots and the queue free after it. */
FTI_TEST(server_batch_turns_fail_cancel) {
    srv_faulty fa;
    srv_fixture f;
    fti_server_stats st;
    fti_buf body, req, resp;
    int fd, k, steps;
    memset(&body, 0, sizeof body);
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    REQUIRE(srv_fa_serve(&fa, 512, 2000, &f) == 0);
    fa.fail_step = 1 << 30; /* (counts the steps) */

    /* a short request holds one slot: the batch's first turn is 3 prompts, its second starts
     * when that request ends (20 steps), and its prompt (the 5th start) fails: streamed, the
     * error event and [DONE] (a 500 had it been in the first turn) */
    fd = tu_connect(f.port);
    REQUIRE(fd >= 0);
    srv_post(&req, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":20}", 0);
    CHECK(cli_send(fd, req.data, req.len) == 0);
    for (k = 0; k < 400; k++) {
        fti_server_get_stats(f.srv, &st);
        if (st.active == 1) break;
        srv_sleep_ms(1);
    }
    fa.fail_start = 5;
    pthread_mutex_lock(&fa.mu);
    fa.steps = 0;
    pthread_mutex_unlock(&fa.mu);
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions",
                          "{\"prompt\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"max_tokens\":300,"
                          "\"stream\":true}", &body), 200);
    CHECK(strstr(body.data, "data: {\"error\":{\"message\":\"prompt 3: start 5 failed") != NULL);
    CHECK(strstr(body.data, "data: [DONE]\n\n") != NULL);
    steps = fa.steps;
    CHECK(steps < 100); /* 300 and more when the first turn ran to its end */
    if (steps >= 100) fprintf(stderr, "    %d steps\n", steps);
    CHECK_EQ_INT(cli_read_all(fd, &resp, 5000), 1);
    close(fd);
    CHECK(srv_fa_balanced(&fa));
    fa.fail_start = 0;

    /* a streamed batch of 3 turns whose client leaves in its first: every sequence ends, the
     * turns not started never start, and the server serves the next request */
    fd = tu_connect(f.port);
    REQUIRE(fd >= 0);
    srv_post(&req, "/v1/completions",
             "{\"prompt\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\"],"
             "\"max_tokens\":200,\"stream\":true}", 0);
    CHECK(cli_send(fd, req.data, req.len) == 0);
    for (k = 0; k < 400; k++) {
        fti_server_get_stats(f.srv, &st);
        if (st.active == 4) break;
        srv_sleep_ms(1);
    }
    CHECK_EQ_INT(st.active, 4);
    close(fd);
    for (k = 0; k < 1000; k++) {
        fti_server_get_stats(f.srv, &st);
        if (st.active == 0 && st.queued == 0) break;
        srv_sleep_ms(2);
    }
    CHECK_EQ_INT(st.active, 0);
    CHECK_EQ_INT(st.queued, 0);
    CHECK(srv_fa_balanced(&fa));
    CHECK(fa.starts <= 8); /* its third turn never started */
    CHECK_EQ_INT(srv_json(f.port, "/v1/completions", "{\"prompt\":[\"a\",\"b\",\"c\",\"d\",\"e\"],"
                          "\"max_tokens\":2}", &body), 200);
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    CHECK(srv_fa_balanced(&fa));
    pthread_mutex_destroy(&fa.mu);
    fti_buf_free(&body);
    fti_buf_free(&req);
    fti_buf_free(&resp);
}

FTI_TEST(server_keepalive_pipelining) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp, req;
    int fd, k, n_resp = 0;
    size_t off = 0;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    memset(&req, 0, sizeof req);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    fd = tu_connect(f.port);
    REQUIRE(fd >= 0);
    /* three requests in one write, the middle one a completion: three responses in order */
    fti_buf_puts(&req, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
    fti_buf_puts(&req, "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 29\r\n\r\n"
                       "{\"prompt\":\"x\",\"max_tokens\":2}");
    fti_buf_puts(&req, "GET /v1/models HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    CHECK_OK(cli_send(fd, req.data, req.len));
    CHECK_EQ_INT(cli_read_all(fd, &resp, 5000), 1);
    for (k = 0; k < 3; k++) {
        size_t n = cli_response_len(resp.data + off, resp.len - off);
        if (!n) break;
        CHECK(memcmp(resp.data + off, "HTTP/1.1 200", 12) == 0);
        if (k == 1) CHECK(strstr(resp.data + off, "text_completion") != NULL);
        off += n;
        n_resp++;
    }
    CHECK_EQ_INT(n_resp, 3);
    CHECK_EQ_INT(off, resp.len);
    close(fd);
    fti_buf_free(&resp);
    fti_buf_free(&req);
    srv_finish(&f);
}

FTI_TEST(server_smuggling_closes) {
    /* each is answered once with a 4xx and the connection closed: the bytes after it are never
     * served as a second request */
    static const char *const reqs[] = {
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: "
        "chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: "
        "40\r\n\r\n"
        "GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /health HTTP/1.1\nHost: t\n\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\nGET /health HTTP/1.1\r\nHost: "
        "t\r\n\r\n",
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "zz\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked \r\n"
        "Transfer-Encoding: identity\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n",
    };
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp;
    size_t i;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    for (i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        int fd = tu_connect(f.port), r;
        REQUIRE(fd >= 0);
        resp.len = 0;
        CHECK_OK(cli_send(fd, reqs[i], strlen(reqs[i])));
        r = cli_read_all(fd, &resp, 5000);
        CHECK(r == 1);
        if (!(resp.len > 12 && memcmp(resp.data, "HTTP/1.1 400", 12) == 0))
            fprintf(stderr, "    case %lu: r=%d got %lu bytes: %.60s\n", (unsigned long)i, r,
                    (unsigned long)resp.len, resp.data ? resp.data : "");
        CHECK(resp.len > 12 && memcmp(resp.data, "HTTP/1.1 400", 12) == 0);
        CHECK(cli_response_len(resp.data, resp.len) == resp.len); /* exactly one response */
        CHECK(strstr(resp.data, "Connection: close") != NULL);
        close(fd);
    }
    fti_buf_free(&resp);
    srv_finish(&f);
}

/* Every malformed and smuggling case of the parser test (tests/test_http.c, same runner), sent
 * over a socket with a valid request right behind it: answered once with the case's 4xx, the
 * connection closed, the request behind it never served. */
FTI_TEST(server_every_bad_request_closes) {
    static const char tail[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    size_t i, n_cases = sizeof http_bad / sizeof http_bad[0], n_ok = 0;
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp, req;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    memset(&req, 0, sizeof req);
    o.header_timeout_ms = 2000;
    o.body_timeout_ms = 2000;
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    CHECK(n_cases >= 40);
    for (i = 0; i < n_cases; i++) {
        int fd = tu_connect(f.port), r, status;
        char want[16];
        REQUIRE(fd >= 0);
        resp.len = req.len = 0;
        fti_buf_append(&req, http_bad[i].req, http_case_len(&http_bad[i]));
        fti_buf_append(&req, tail, sizeof tail - 1);
        CHECK_OK(cli_send(fd, req.data, req.len));
        r = cli_read_all(fd, &resp, 5000);
        status = resp.len > 12 ? atoi(resp.data + 9) : 0;
        snprintf(want, sizeof want, "%d", http_bad[i].status);
        if (r == 1 && status == http_bad[i].status &&
            cli_response_len(resp.data, resp.len) == resp.len &&
            strstr(resp.data, "Connection: close") != NULL) {
            n_ok++;
        } else {
            fprintf(stderr, "    case '%s': r=%d status %d (want %s), %lu bytes: %.80s\n",
                    http_bad[i].name, r, status, want, (unsigned long)resp.len,
                    resp.data ? resp.data : "");
            fti_test_failures++;
        }
        close(fd);
    }
    CHECK_EQ_INT((int)n_ok, (int)n_cases);
    fti_buf_free(&resp);
    fti_buf_free(&req);
    srv_finish(&f);
}

/* Replicas: --instance names the server in every response and in /health; a name that could
 * inject a header is refused. */
FTI_TEST(server_instance_name) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp;
    fti_gen g;
    fti_gen_echo_opts eo;
    fti_server *bad = NULL;
    fti_error err;
    char name[8];
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    snprintf(name, sizeof name, "r-1.b");
    o.instance = name;
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    name[0] = 'x'; /* the server keeps its own copy */
    CHECK_EQ_INT(cli_do(f.port, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 200);
    CHECK(strstr(resp.data, "\r\nX-Fti-Instance: r-1.b\r\n") != NULL);
    CHECK(strstr(resp.data, "\"instance\":\"r-1.b\"") != NULL);
    resp.len = 0;
    CHECK_EQ_INT(cli_do(f.port,
                        "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 31\r\n\r\n"
                        "{\"prompt\":\"a\",\"max_tokens\":2}  ",
                        &resp),
                 200);
    CHECK(strstr(resp.data, "\r\nX-Fti-Instance: r-1.b\r\n") != NULL);
    srv_finish(&f);
    memset(&eo, 0, sizeof eo);
    REQUIRE(fti_gen_echo_create(&eo, &g) == FTI_OK);
    o.instance = "a\r\nSet-Cookie: x";
    o.port = 0;
    CHECK(fti_server_create(&o, &g, &bad, &err) == FTI_ERR_INVALID); /* gen released */
    CHECK(bad == NULL);
    fti_buf_free(&resp);
}

/* CORS (fti_server_opts.cors_origin, fti-serve --cors): every response names the origin, a
 * preflight gets the methods and the headers asked for (a list that is not plain field names
 * gets the default), a stream too; an origin that could inject a header is refused. */
FTI_TEST(server_cors) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp, req;
    fti_gen g;
    fti_gen_echo_opts eo;
    fti_server *bad = NULL;
    fti_error err;
    char origin[32];
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    memset(&req, 0, sizeof req);
    snprintf(origin, sizeof origin, "http://localhost:5173");
    o.cors_origin = origin;
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    origin[0] = 'x'; /* the server keeps its own copy */
    CHECK_EQ_INT(cli_do(f.port, "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                                "Origin: http://localhost:5173\r\n"
                                "Access-Control-Request-Method: POST\r\n"
                                "Access-Control-Request-Headers: authorization, content-type, "
                                "x-stainless-os\r\n\r\n", &resp), 204);
    CHECK(strstr(resp.data, "\r\nAccess-Control-Allow-Origin: http://localhost:5173\r\n"));
    CHECK(strstr(resp.data, "\r\nVary: Origin\r\n") != NULL);
    CHECK(strstr(resp.data, "\r\nAccess-Control-Allow-Methods: POST, OPTIONS\r\n") != NULL);
    CHECK(strstr(resp.data, "\r\nAccess-Control-Allow-Headers: authorization, content-type, "
                            "x-stainless-os\r\n") != NULL);
    CHECK_EQ_INT(cli_do(f.port, "OPTIONS /v1/models HTTP/1.1\r\nHost: t\r\n"
                                "Access-Control-Request-Headers: a;b\r\n\r\n", &resp), 204);
    CHECK(strstr(resp.data, "\r\nAccess-Control-Allow-Headers: Authorization, Content-Type\r\n"));
    CHECK_EQ_INT(cli_do(f.port, "GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 200);
    CHECK(strstr(resp.data, "\r\nAccess-Control-Allow-Origin: http://localhost:5173\r\n"));
    CHECK(strstr(resp.data, "\r\nAccess-Control-Expose-Headers: X-Request-Id") != NULL);
    CHECK(strstr(resp.data, "Access-Control-Allow-Methods") == NULL); /* preflights only */
    srv_post(&req, "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":2,\"stream\":true}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    CHECK(strstr(resp.data, "\r\nAccess-Control-Allow-Origin: http://localhost:5173\r\n"));
    srv_post(&req, "/v1/completions", "{\"prompt\":1}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 400); /* errors too: the page can read them */
    CHECK(strstr(resp.data, "\r\nAccess-Control-Allow-Origin: http://localhost:5173\r\n"));
    srv_finish(&f);
    o.cors_origin = "*"; /* any origin: no Vary */
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    CHECK_EQ_INT(cli_do(f.port, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 200);
    CHECK(strstr(resp.data, "\r\nAccess-Control-Allow-Origin: *\r\n") != NULL);
    CHECK(strstr(resp.data, "Vary: Origin") == NULL);
    srv_finish(&f);
    memset(&eo, 0, sizeof eo);
    REQUIRE(fti_gen_echo_create(&eo, &g) == FTI_OK);
    o.cors_origin = "http://a\r\nSet-Cookie: x";
    o.port = 0;
    CHECK(fti_server_create(&o, &g, &bad, &err) == FTI_ERR_INVALID); /* gen released */
    CHECK(bad == NULL && strstr(err.msg, "CORS origin") != NULL);
    fti_buf_free(&resp);
    fti_buf_free(&req);
}

FTI_TEST(server_slow_header_deadline) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp;
    const char *slow =
        "GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    int fd, k, served = 0, got408 = 0;
    size_t sent = 0;
    uint64_t t0;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    o.header_timeout_ms = 400;
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    fd = tu_connect(f.port);
    REQUIRE(fd >= 0);
    t0 = fti_time_ns();
    /* one byte every 20 ms: the deadline is for the whole header, not reset per byte */
    for (k = 0; k < 100 && sent < strlen(slow); k++) {
        struct pollfd p;
        if (send(fd, slow + sent, 1, MSG_NOSIGNAL) != 1) break;
        sent++;
        /* a normal client is served meanwhile */
        if (k % 5 == 0) {
            fti_buf r2;
            memset(&r2, 0, sizeof r2);
            if (cli_do(f.port, "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                       &r2) == 200)
                served++;
            fti_buf_free(&r2);
        }
        p.fd = fd;
        p.events = POLLIN;
        if (poll(&p, 1, 20) > 0) break; /* the server answered (408) */
    }
    CHECK(cli_read_all(fd, &resp, 3000) != 0);
    got408 = resp.len > 12 && memcmp(resp.data, "HTTP/1.1 408", 12) == 0;
    CHECK(got408);
    CHECK(sent < strlen(slow));
    CHECK((fti_time_ns() - t0) / 1000000u < 3000);
    CHECK(served >= 2);
    close(fd);
    fti_buf_free(&resp);
    srv_finish(&f);
}

FTI_TEST(server_conn_cap_and_queue) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp, req;
    fti_server_stats st;
    int a, b, c, d, e, k;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    memset(&req, 0, sizeof req);
    o.max_conns = 3;
    o.max_batch = 1;
    o.max_queue = 1;
    REQUIRE(srv_start(&f, &o, 2000, 0) == 0);
    /* one request running (batch of 1), one queued, the third gets 503 */
    srv_post(&req, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":100}", 0);
    a = tu_connect(f.port);
    REQUIRE(a >= 0);
    CHECK_OK(cli_send(a, req.data, req.len));
    for (k = 0; k < 200; k++) {
        fti_server_get_stats(f.srv, &st);
        if (st.active == 1) break;
        srv_sleep_ms(5);
    }
    CHECK_EQ_INT(st.active, 1);
    b = tu_connect(f.port);
    REQUIRE(b >= 0);
    CHECK_OK(cli_send(b, req.data, req.len));
    for (k = 0; k < 200; k++) {
        fti_server_get_stats(f.srv, &st);
        if (st.queued == 1) break;
        srv_sleep_ms(5);
    }
    CHECK_EQ_INT(st.queued, 1);
    c = tu_connect(f.port);
    REQUIRE(c >= 0);
    CHECK_OK(cli_send(c, req.data, req.len));
    CHECK_EQ_INT(cli_read_all(c, &resp, 5000), 1);
    CHECK(resp.len > 12 && memcmp(resp.data, "HTTP/1.1 503", 12) == 0);
    close(c);
    /* connection cap: a and b are open; c closed; two more: the 4th connection is refused */
    for (k = 0; k < 200; k++) {
        fti_server_get_stats(f.srv, &st);
        if (st.conns == 2) break;
        srv_sleep_ms(5);
    }
    d = tu_connect(f.port);
    REQUIRE(d >= 0);
    for (k = 0; k < 100; k++) {
        fti_server_get_stats(f.srv, &st);
        if (st.conns == 3) break;
        srv_sleep_ms(5);
    }
    e = tu_connect(f.port);
    REQUIRE(e >= 0);
    resp.len = 0;
    CHECK(cli_read_all(e, &resp, 5000) != 0);
    CHECK(resp.len > 12 && memcmp(resp.data, "HTTP/1.1 503", 12) == 0);
    { /* its Content-Length is its body's (it said 100 for 92 bytes) */
        const char *cl = strstr(resp.data ? resp.data : "", "Content-Length: "),
                   *hb = strstr(resp.data ? resp.data : "", "\r\n\r\n");
        CHECK(cl && hb && strtol(cl + 16, NULL, 10) == (long)(resp.data + resp.len - (hb + 4)));
        /* an OpenAI error body like the others: message, type, param and code (it had no code) */
        fti_buf_append(&resp, "", 1);
        CHECK(hb && strstr(hb, "\"param\":null,\"code\":null}}") != NULL);
    }
    close(e);
    close(d);
    /* the running and queued ones still finish */
    resp.len = 0;
    CHECK_EQ_INT(cli_read_all(a, &resp, 10000), 1);
    CHECK(memcmp(resp.data, "HTTP/1.1 200", 12) == 0);
    resp.len = 0;
    CHECK_EQ_INT(cli_read_all(b, &resp, 10000), 1);
    CHECK(memcmp(resp.data, "HTTP/1.1 200", 12) == 0);
    close(a);
    close(b);
    fti_server_get_stats(f.srv, &st);
    CHECK(st.rejected >= 2);
    fti_buf_free(&resp);
    fti_buf_free(&req);
    srv_finish(&f);
}

/* Runs n concurrent completions (max_tokens each) and returns the wall time in ms. */
static double srv_concurrent(int port, int n, int max_tokens, int *n_ok) {
    int fds[64], k, open_n;
    fti_buf req, resp[64];
    uint64_t t0 = fti_time_ns();
    char json[128];
    memset(&req, 0, sizeof req);
    snprintf(json, sizeof json, "{\"prompt\":\"p\",\"max_tokens\":%d}", max_tokens);
    srv_post(&req, "/v1/completions", json, 0);
    *n_ok = 0;
    for (k = 0; k < n; k++) {
        memset(&resp[k], 0, sizeof resp[k]);
        fds[k] = tu_connect(port);
        if (fds[k] >= 0) cli_send(fds[k], req.data, req.len);
    }
    open_n = n;
    while (open_n > 0) {
        struct pollfd p[64];
        int m = 0;
        for (k = 0; k < n; k++) {
            p[k].fd = fds[k];
            p[k].events = POLLIN;
            p[k].revents = 0;
        }
        if (poll(p, (nfds_t)n, 10000) <= 0) break;
        for (k = 0; k < n; k++) {
            char buf[4096];
            ssize_t r;
            if (fds[k] < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            r = recv(fds[k], buf, sizeof buf, 0);
            if (r > 0) {
                fti_buf_append(&resp[k], buf, (size_t)r);
                continue;
            }
            if (resp[k].len > 12 && memcmp(resp[k].data, "HTTP/1.1 200", 12) == 0) (*n_ok)++;
            close(fds[k]);
            fds[k] = -1;
            open_n--;
            m++;
        }
        (void)m;
    }
    for (k = 0; k < n; k++) {
        if (fds[k] >= 0) close(fds[k]);
        fti_buf_free(&resp[k]);
    }
    fti_buf_free(&req);
    return (double)(fti_time_ns() - t0) / 1e6;
}

FTI_TEST(server_continuous_batching) {
    /* a step costs 4 ms whatever the batch size (like reading the weights once): aggregate
     * tokens/s must grow with concurrency */
    srv_fixture f;
    fti_server_opts o;
    fti_server_stats st;
    int ok1, ok8;
    double t1, t8, tps1, tps8;
    memset(&o, 0, sizeof o);
    o.max_batch = 16;
    REQUIRE(srv_start(&f, &o, 4000, 0) == 0);
    t1 = srv_concurrent(f.port, 1, 24, &ok1);
    t8 = srv_concurrent(f.port, 8, 24, &ok8);
    CHECK_EQ_INT(ok1, 1);
    CHECK_EQ_INT(ok8, 8);
    tps1 = 24 / (t1 / 1000);
    tps8 = 8 * 24 / (t8 / 1000);
    fti_server_get_stats(f.srv, &st);
    fprintf(stderr,
            "    batching: 1 client %.0f tok/s, 8 clients %.0f tok/s (x%.1f), mean batch %.2f\n",
            tps1, tps8, tps8 / tps1, (double)st.batch_tokens / (double)(st.steps ? st.steps : 1));
    CHECK(tps8 >= 3.0 * tps1); /* ideal 8x; tolerant for loaded machines and emulators */
    CHECK((double)st.batch_tokens / (double)st.steps > 2.0);
    srv_finish(&f);
}

typedef struct srv_tracked {
    fti_gen inner;
    int *released;
} srv_tracked;

static const char *srv_tr_id(void *u) {
    return ((srv_tracked *)u)->inner.model_id(((srv_tracked *)u)->inner.user);
}
static int srv_tr_ctx(void *u) {
    return ((srv_tracked *)u)->inner.n_ctx(((srv_tracked *)u)->inner.user);
}
static fti_result srv_tr_start(void *u, const char *p, size_t n, const fti_gen_params *pr, void **s,
                               fti_gen_prompt_info *info, fti_error *err) {
    srv_tracked *t = (srv_tracked *)u;
    return t->inner.seq_start(t->inner.user, p, n, pr, s, info, err);
}
static fti_result srv_tr_step(void *u, void **s, size_t n, fti_gen_token *o, fti_error *err) {
    srv_tracked *t = (srv_tracked *)u;
    return t->inner.step(t->inner.user, s, n, o, err);
}
static void srv_tr_end(void *u, void *s) {
    srv_tracked *t = (srv_tracked *)u;
    t->inner.seq_end(t->inner.user, s);
}
static void srv_tr_release(void *u) {
    srv_tracked *t = (srv_tracked *)u;
    (*t->released)++;
    t->inner.release(t->inner.user);
    fti_free(t);
}

static int srv_tracked_gen(const char *id, unsigned step_us, int *released, fti_gen *g) {
    fti_gen_echo_opts eo;
    srv_tracked *t = (srv_tracked *)fti_calloc(1, sizeof *t);
    if (!t) return -1;
    memset(&eo, 0, sizeof eo);
    eo.id = id;
    eo.step_us = step_us;
    if (fti_gen_echo_create(&eo, &t->inner) != FTI_OK) return -1;
    t->released = released;
    memset(g, 0, sizeof *g);
    g->user = t;
    g->model_id = srv_tr_id;
    g->n_ctx = srv_tr_ctx;
    g->seq_start = srv_tr_start;
    g->step = srv_tr_step;
    g->seq_end = srv_tr_end;
    g->release = srv_tr_release;
    return 0;
}

FTI_TEST(server_hot_swap_under_traffic) {
    srv_fixture f;
    fti_server_opts o;
    fti_gen g1, g2;
    fti_error err;
    fti_buf resp, req;
    int released1 = 0, released2 = 0, fds[6], k, ok = 0;
    memset(&o, 0, sizeof o);
    memset(&f, 0, sizeof f);
    memset(&resp, 0, sizeof resp);
    memset(&req, 0, sizeof req);
    REQUIRE(srv_tracked_gen("model-a", 2000, &released1, &g1) == 0);
    REQUIRE(fti_server_create(&o, &g1, &f.srv, &err) == FTI_OK);
    f.port = fti_server_port(f.srv);
    REQUIRE(pthread_create(&f.th, NULL, srv_thread, &f) == 0);
    /* in-flight requests on model-a, then the swap, then more requests */
    srv_post(&req, "/v1/completions", "{\"prompt\":\"p\",\"max_tokens\":40,\"stream\":true}", 0);
    for (k = 0; k < 3; k++) {
        fds[k] = tu_connect(f.port);
        REQUIRE(fds[k] >= 0);
        CHECK_OK(cli_send(fds[k], req.data, req.len));
    }
    { /* wait until the three are admitted on model-a (slow machines, emulators) */
        fti_server_stats st;
        int w;
        for (w = 0; w < 1000; w++) {
            fti_server_get_stats(f.srv, &st);
            if (st.active >= 3) break;
            srv_sleep_ms(5);
        }
        CHECK(st.active >= 3);
    }
    REQUIRE(srv_tracked_gen("model-b", 1000, &released2, &g2) == 0);
    CHECK_OK(fti_server_set_generator(f.srv, &g2));
    for (k = 3; k < 6; k++) {
        fds[k] = tu_connect(f.port);
        REQUIRE(fds[k] >= 0);
        CHECK_OK(cli_send(fds[k], req.data, req.len));
    }
    for (k = 0; k < 6; k++) {
        resp.len = 0;
        if (cli_read_all(fds[k], &resp, 10000) == 1 && resp.len > 12 &&
            memcmp(resp.data, "HTTP/1.1 200", 12) == 0 && strstr(resp.data, "data: [DONE]") &&
            strstr(resp.data, k < 3 ? "model-a" : "model-b"))
            ok++;
        close(fds[k]);
    }
    CHECK_EQ_INT(ok, 6);
    CHECK_EQ_INT(released1, 1); /* the old model is released once its sequences ended */
    CHECK_EQ_INT(released2, 0);
    CHECK_EQ_INT(cli_do(f.port, "GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 200);
    CHECK(strstr(resp.data, "model-b") != NULL);
    fti_buf_free(&resp);
    fti_buf_free(&req);
    srv_finish(&f);
    CHECK_EQ_INT(released2, 1);
}

FTI_TEST(server_graceful_stop) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp, req;
    int fd, k;
    fti_server_stats st;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    memset(&req, 0, sizeof req);
    REQUIRE(srv_start(&f, &o, 2000, 0) == 0);
    srv_post(&req, "/v1/completions", "{\"prompt\":\"p\",\"max_tokens\":50,\"stream\":true}", 1);
    fd = tu_connect(f.port);
    REQUIRE(fd >= 0);
    CHECK_OK(cli_send(fd, req.data, req.len));
    for (k = 0; k < 200; k++) {
        fti_server_get_stats(f.srv, &st);
        if (st.active == 1) break;
        srv_sleep_ms(2);
    }
    fti_server_stop(f.srv); /* in-flight: finishes, then the connection closes */
    CHECK_EQ_INT(cli_read_all(fd, &resp, 10000), 1);
    CHECK(strstr(resp.data ? resp.data : "", "data: [DONE]") != NULL);
    close(fd);
    pthread_join(f.th, NULL);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    CHECK(tu_connect(f.port) < 0); /* no longer listening */
    fti_server_free(f.srv);
    fti_buf_free(&resp);
    fti_buf_free(&req);
}

FTI_TEST(server_survives_emfile) {
    srv_fixture f;
    fti_server_opts o;
    fti_buf resp;
    struct rlimit rl, low;
    int fill[4096], n_fill = 0, fd, k;
    fti_server_stats st;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    low = rl;
    low.rlim_cur = 256;
    if (low.rlim_cur > rl.rlim_cur) low.rlim_cur = rl.rlim_cur;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    /* take every descriptor but one: the client's socket gets it, the server's accept fails */
    for (;;) {
        int x = dup(0);
        if (x < 0) break;
        if (n_fill < 4096) fill[n_fill++] = x;
        else {
            close(x);
            break;
        }
    }
    REQUIRE(n_fill > 0);
    close(fill[--n_fill]);
    fd = tu_connect(f.port);
    if (fd >= 0) {
        CHECK(cli_read_all(fd, &resp, 3000) != 0); /* refused (503) or closed, not hung */
        close(fd);
    }
    for (k = 0; k < n_fill; k++) close(fill[k]);
    setrlimit(RLIMIT_NOFILE, &rl);
    resp.len = 0;
    for (k = 0; k < 20; k++) {
        if (cli_do(f.port, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &resp) == 200) break;
        srv_sleep_ms(20);
    }
    CHECK(k < 20);
    fti_server_get_stats(f.srv, &st);
    CHECK(st.accept_errors >= 1 || fd < 0);
    fti_buf_free(&resp);
    srv_finish(&f);
}

/* The monitor of the monitor tests: a reference over bytes (letters common), logging to the
 * test's logs/requests.jsonl (mo->log_path). */
static int srv_monitor_start(fti_monitor_opts *mo, fti_monitor **mon, fti_drift_ref **ref) {
    uint64_t counts[256];
    int k;
    memset(mo, 0, sizeof *mo);
    for (k = 0; k < 256; k++) counts[k] = (uint64_t)(k >= 'a' && k <= 'z' ? 100 : 1);
    if (fti_drift_ref_build(counts, 256, NULL, 0, 0, ref, NULL) != FTI_OK) return -1;
    mo->log_path = fti_test_tmp("logs/requests.jsonl");
    mo->ref = *ref;
    return fti_monitor_create(mo, mon, NULL) == FTI_OK ? 0 : -1;
}

FTI_TEST(server_monitor_log_metrics) {
    srv_fixture f;
    fti_server_opts o;
    fti_monitor_opts mo;
    fti_monitor *mon = NULL;
    fti_drift_ref *ref = NULL;
    fti_buf resp, req, body;
    void *logd = NULL;
    size_t logn = 0;
    int k, n_req_lines = 0, n_bad_lines = 0, saw_ref = 0;
    char *line, *save;
    memset(&o, 0, sizeof o);
    memset(&resp, 0, sizeof resp);
    memset(&req, 0, sizeof req);
    memset(&body, 0, sizeof body);
    REQUIRE(srv_monitor_start(&mo, &mon, &ref) == 0);
    o.monitor = mon;
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    for (k = 0; k < 3; k++) {
        srv_post(&req, "/v1/completions", "{\"prompt\":\"hello there\",\"max_tokens\":4}", 0);
        CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    }
    /* a request refused as invalid is in the log too (it was only counted in /metrics) */
    srv_post(&req, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":-1}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 400);
    CHECK_EQ_INT(cli_do(f.port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 200);
    cli_body(&resp, &body);
    CHECK(strstr(body.data, "fti_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 3") !=
          NULL);
    CHECK(strstr(body.data, "# TYPE fti_request_duration_seconds histogram") != NULL);
    CHECK(
        strstr(body.data,
               "fti_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=\"+Inf\"} 3") !=
        NULL);
    CHECK(strstr(body.data, "fti_model_info{model=\"fti-echo\"} 1") != NULL);
    CHECK(strstr(body.data, "fti_completion_tokens_total 12") != NULL);
    CHECK(strstr(body.data, "fti_drift_psi{dist=\"tokens\"}") != NULL);
    srv_finish(&f);
    REQUIRE(fti_file_read(mo.log_path, 0, &logd, &logn, NULL) == FTI_OK);
    for (line = strtok_r((char *)logd, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        fti_request_record rec;
        char sb[512];
        fti_result r = fti_request_record_parse(line, strlen(line), &rec, sb, sizeof sb);
        if (r == FTI_OK && rec.status == 400) {
            n_bad_lines++;
            CHECK_EQ_STR(rec.endpoint, "/v1/completions");
            CHECK_EQ_STR(rec.model, "fti-echo");
            CHECK(rec.completion_tokens == 0 && !rec.has_buckets);
        } else if (r == FTI_OK) {
            n_req_lines++;
            CHECK_EQ_INT(rec.status, 200);
            CHECK_EQ_INT(rec.prompt_tokens, 11);
            CHECK_EQ_INT(rec.completion_tokens, 4);
            CHECK(rec.has_buckets && rec.latency_ms >= 0 && rec.ttft_ms >= 0);
            CHECK_EQ_STR(rec.endpoint, "/v1/completions");
        } else if (strstr(line, "\"reference\"")) {
            saw_ref = 1;
        }
    }
    CHECK_EQ_INT(n_req_lines, 3);
    CHECK_EQ_INT(n_bad_lines, 1);
    CHECK(saw_ref);
    fti_free(logd);
    fti_monitor_free(mon);
    fti_drift_ref_free(ref);
    fti_buf_free(&resp);
    fti_buf_free(&req);
    fti_buf_free(&body);
}

/* What the monitor sees of a batch of prompts is every prompt's (it was the first's): the log
 * line sums the token buckets, bytes and retrieval hits over them and says "n_prompts" with
 * their length bins; the drift window counts each prompt; each choice carries its own prompt's
 * fti_chunks. A line without n_prompts (an older log) is one prompt. */
FTI_TEST(server_batch_monitor_every_prompt) {
    srv_fixture f;
    fti_server_opts o;
    fti_monitor_opts mo;
    fti_monitor *mon = NULL;
    fti_drift_ref *ref = NULL;
    fti_buf body;
    fti_json_doc *doc;
    const fti_json *chs;
    fti_drift_stats dst;
    fti_drift_window w;
    void *logd = NULL;
    size_t logn = 0;
    int n_req_lines = 0, k;
    char *line, *save;
    memset(&o, 0, sizeof o);
    memset(&body, 0, sizeof body);
    REQUIRE(srv_monitor_start(&mo, &mon, &ref) == 0);
    o.monitor = mon;
    REQUIRE(srv_start(&f, &o, 0, 0) == 0);
    /* 3 prompts of 1, 5 and 20 bytes (length bins 1, 3 and 5), 26 tokens (the echo
     * generator's: bytes), one retrieval chunk each */
    REQUIRE(srv_json(f.port, "/v1/completions",
                     "{\"prompt\":[\"a\",\"hello\",\"a much longer prompt\"],\"max_tokens\":2}",
                     &body) == 200);
    REQUIRE(fti_json_parse(body.data, body.len, NULL, &doc, NULL, NULL) == FTI_OK);
    chs = fti_json_get(fti_json_root(doc), "choices");
    REQUIRE(chs && chs->len == 3);
    for (k = 0; k < 3; k++) {
        const fti_json *cj = fti_json_get(fti_json_at(chs, (size_t)k), "fti_chunks");
        CHECK(cj && cj->type == FTI_JSON_ARRAY && cj->len == 1);
    }
    CHECK(fti_json_get(fti_json_root(doc), "fti_chunks") == NULL);
    fti_json_free(doc);
    /* one prompt: at the top, as before */
    REQUIRE(srv_json(f.port, "/v1/completions", "{\"prompt\":\"hello\",\"max_tokens\":2}", &body) ==
            200);
    CHECK(strstr(body.data, "\"finish_reason\":\"length\"}],\"usage\"") != NULL);
    CHECK(strstr(body.data, "\"fti_chunks\":[{\"id\":\"echo-0\"") != NULL);
    fti_monitor_drift(mon, &dst);
    CHECK_EQ_INT(dst.n_prompts, 4);
    CHECK_EQ_INT(dst.n_tokens, 31);
    srv_finish(&f);
    REQUIRE(fti_file_read(mo.log_path, 0, &logd, &logn, NULL) == FTI_OK);
    memset(&w, 0, sizeof w);
    for (line = strtok_r((char *)logd, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        fti_request_record rec;
        char sb[512];
        uint32_t sum = 0;
        int b;
        if (fti_request_record_parse(line, strlen(line), &rec, sb, sizeof sb) != FTI_OK) continue;
        for (b = 0; b < FTI_DRIFT_BUCKETS; b++) sum += rec.tok_buckets[b];
        if (n_req_lines++ == 0) {
            CHECK(strstr(line, "\"n_prompts\":3,\"prompt_len_bins\":[0,1,0,1,0,1,0,") != NULL);
            CHECK_EQ_INT(rec.n_prompts, 3);
            CHECK_EQ_INT(rec.prompt_bytes, 26);
            CHECK_EQ_INT(rec.prompt_tokens, 26);
            CHECK_EQ_INT(rec.retrieval_hits, 3);
            CHECK_EQ_INT((int)sum, 26);
            CHECK(rec.len_hist[1] == 1 && rec.len_hist[3] == 1 && rec.len_hist[5] == 1);
        } else {
            CHECK(strstr(line, "n_prompts") == NULL);
            CHECK_EQ_INT(rec.n_prompts, 0);
            CHECK_EQ_INT((int)sum, 5);
        }
        fti_drift_window_add_record(&w, &rec);
    }
    CHECK_EQ_INT(n_req_lines, 2);
    CHECK_EQ_INT((int)w.n_prompts, 4); /* fti-monitor report's window: each prompt */
    CHECK(w.len[1] == 1 && w.len[3] == 2 && w.len[5] == 1);
    {   /* a batch line whose bins do not count its prompts is read as one prompt */
        fti_request_record rec;
        char sb[256];
        static const char bad[] =
            "{\"type\":\"request\",\"time\":1,\"endpoint\":\"/v1/completions\",\"status\":200,"
            "\"prompt_bytes\":9,\"n_prompts\":3,\"prompt_len_bins\":[0,1,0,0,0,0,0,0,0,0,0,0,0,"
            "0,0,0]}";
        REQUIRE(fti_request_record_parse(bad, strlen(bad), &rec, sb, sizeof sb) == FTI_OK);
        CHECK_EQ_INT(rec.n_prompts, 0);
    }
    fti_free(logd);
    fti_monitor_free(mon);
    fti_drift_ref_free(ref);
    fti_buf_free(&body);
}

/* A generator whose prompt is longer than the text drift looks at (as fti-serve's: the template
 * and retrieved documents around the user's words): the echo generator with 40 more prompt
 * tokens, its ids still only the user's. The server must bucket the n_ids user tokens, not
 * n_tokens (it read past the user's ids before, under every templated request). */
static fti_result (*srv_echo_start)(void *, const char *, size_t, const fti_gen_params *, void **,
                                    fti_gen_prompt_info *, fti_error *);
static fti_result srv_templated_start(void *u, const char *prompt, size_t len,
                                      const fti_gen_params *p, void **seq,
                                      fti_gen_prompt_info *info, fti_error *err) {
    fti_result r = srv_echo_start(u, prompt, len, p, seq, info, err);
    if (r == FTI_OK) {
        info->n_ids = info->n_tokens;
        info->nll_tokens = info->n_tokens; /* the perplexity of the user's text alone */
        info->nll_mean = 2.0;
        info->n_tokens += 40;
    }
    return r;
}

FTI_TEST(server_monitor_drift_user_ids) {
    srv_fixture f;
    fti_server_opts o;
    fti_monitor_opts mo;
    fti_monitor *mon = NULL;
    fti_drift_ref *ref = NULL;
    fti_gen g;
    fti_gen_echo_opts eo;
    fti_buf resp, req;
    void *logd = NULL;
    size_t logn = 0;
    int k, n_req_lines = 0;
    char *line, *save;
    memset(&o, 0, sizeof o);
    memset(&eo, 0, sizeof eo);
    memset(&resp, 0, sizeof resp);
    memset(&req, 0, sizeof req);
    memset(&f, 0, sizeof f);
    REQUIRE(srv_monitor_start(&mo, &mon, &ref) == 0);
    o.monitor = mon;
    eo.n_ctx = 256;
    REQUIRE(fti_gen_echo_create(&eo, &g) == FTI_OK);
    srv_echo_start = g.seq_start;
    g.seq_start = srv_templated_start;
    REQUIRE(fti_server_create(&o, &g, &f.srv, NULL) == FTI_OK);
    f.port = fti_server_port(f.srv);
    REQUIRE(pthread_create(&f.th, NULL, srv_thread, &f) == 0);
    for (k = 0; k < 3; k++) {
        srv_post(&req, "/v1/completions", "{\"prompt\":\"hello there\",\"max_tokens\":4}", 0);
        CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    }
    srv_finish(&f);
    REQUIRE(fti_file_read(mo.log_path, 0, &logd, &logn, NULL) == FTI_OK);
    for (line = strtok_r((char *)logd, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        fti_request_record rec;
        char sb[512];
        uint32_t sum = 0;
        int b;
        if (fti_request_record_parse(line, strlen(line), &rec, sb, sizeof sb) != FTI_OK) continue;
        n_req_lines++;
        for (b = 0; b < FTI_DRIFT_BUCKETS; b++) sum += rec.tok_buckets[b];
        CHECK_EQ_INT(rec.prompt_tokens, 51); /* usage: the whole prompt */
        CHECK_EQ_INT((int)sum, 11);          /* drift: the user's 11 bytes */
        CHECK_EQ_INT(rec.ppl_tokens, 11);    /* and its perplexity's weight */
        CHECK_NEAR(rec.prompt_ppl, exp(2.0), 1e-6, 0);
        CHECK(rec.has_buckets);
    }
    CHECK_EQ_INT(n_req_lines, 3);
    fti_free(logd);
    fti_monitor_free(mon);
    fti_drift_ref_free(ref);
    fti_buf_free(&resp);
    fti_buf_free(&req);
}

/* The echo generator reporting a prompt perplexity with nll_tokens 0 ("over n_tokens"): in a
 * batch the log's perplexity is every prompt's, each weighted by its tokens (it was the first
 * prompt's alone). */
static fti_result srv_nll_start(void *u, const char *prompt, size_t len, const fti_gen_params *p,
                                void **seq, fti_gen_prompt_info *info, fti_error *err) {
    fti_result r = srv_echo_start(u, prompt, len, p, seq, info, err);
    if (r == FTI_OK) info->nll_mean = len > 5 ? 3.0 : 2.0;
    return r;
}

FTI_TEST(server_batch_ppl_weight) {
    srv_fixture f;
    fti_server_opts o;
    fti_monitor_opts mo;
    fti_monitor *mon = NULL;
    fti_drift_ref *ref = NULL;
    fti_gen g;
    fti_gen_echo_opts eo;
    fti_buf resp, req;
    void *logd = NULL;
    size_t logn = 0;
    int n_req_lines = 0;
    char *line, *save;
    memset(&o, 0, sizeof o);
    memset(&eo, 0, sizeof eo);
    memset(&resp, 0, sizeof resp);
    memset(&req, 0, sizeof req);
    memset(&f, 0, sizeof f);
    REQUIRE(srv_monitor_start(&mo, &mon, &ref) == 0);
    o.monitor = mon;
    eo.n_ctx = 256;
    REQUIRE(fti_gen_echo_create(&eo, &g) == FTI_OK);
    srv_echo_start = g.seq_start;
    g.seq_start = srv_nll_start;
    REQUIRE(fti_server_create(&o, &g, &f.srv, NULL) == FTI_OK);
    f.port = fti_server_port(f.srv);
    REQUIRE(pthread_create(&f.th, NULL, srv_thread, &f) == 0);
    srv_post(&req, "/v1/completions", "{\"prompt\":[\"hello\",\"a much longer prompt\"],"
             "\"max_tokens\":2}", 0);
    CHECK_EQ_INT(cli_do(f.port, req.data, &resp), 200);
    srv_finish(&f);
    REQUIRE(fti_file_read(mo.log_path, 0, &logd, &logn, NULL) == FTI_OK);
    for (line = strtok_r((char *)logd, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        fti_request_record rec;
        char sb[512];
        if (fti_request_record_parse(line, strlen(line), &rec, sb, sizeof sb) != FTI_OK) continue;
        n_req_lines++;
        CHECK_EQ_INT(rec.prompt_tokens, 25); /* usage: both prompts */
        /* "hello" 5 tokens at 2 nats, the other 20 at 3 */
        CHECK_NEAR(rec.prompt_ppl, exp((5 * 2.0 + 20 * 3.0) / 25), 1e-6, 0);
        CHECK_EQ_INT((int)fti_request_record_ppl_weight(&rec), 25); /* both prompts' */
        CHECK_EQ_INT(rec.n_prompts, 2);
    }
    CHECK_EQ_INT(n_req_lines, 1);
    fti_free(logd);
    fti_monitor_free(mon);
    fti_drift_ref_free(ref);
    fti_buf_free(&resp);
    fti_buf_free(&req);
}

/* A generator over fixed logits, token i at -0.01 i (greedy repeats token 0 for ever), sampled by
 * fti_sampler with the options fti_gen_sampler_opts makes of the request, as fti-serve's engine
 * generator does: what the penalties do is plain in the text (token i is the character '!' + i). */
#define SRV_FLAT_V 90
typedef struct srv_flat_seq {
    fti_sampler *smp;
    float logits[SRV_FLAT_V]; /* (V) */
    char ch;
} srv_flat_seq;

static const char *srv_flat_id(void *u) { (void)u; return "flat"; }
static int srv_flat_n_ctx(void *u) { (void)u; return 256; }

static fti_result srv_flat_start(void *u, const char *prompt, size_t len, const fti_gen_params *p,
                                 void **seq, fti_gen_prompt_info *info, fti_error *err) {
    srv_flat_seq *q = (srv_flat_seq *)fti_calloc(1, sizeof *q);
    fti_sampler_opts sm;
    (void)u;
    (void)prompt;
    if (!q) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    fti_gen_sampler_opts(p, &sm);
    if (fti_sampler_create(&q->smp, SRV_FLAT_V, &sm) != FTI_OK) {
        fti_free(q);
        return fti_error_set(err, FTI_ERR_NOMEM, "sampler");
    }
    info->n_tokens = len ? len : 1;
    info->nll_mean = -1;
    *seq = q;
    return FTI_OK;
}

static fti_result srv_flat_step(void *u, void **seqs, size_t n, fti_gen_token *out,
                                fti_error *err) {
    size_t i, v;
    (void)u;
    (void)err;
    for (i = 0; i < n; i++) {
        srv_flat_seq *q = (srv_flat_seq *)seqs[i];
        int32_t t;
        for (v = 0; v < SRV_FLAT_V; v++) q->logits[v] = -0.01f * (float)v;
        t = fti_sampler_sample(q->smp, q->logits);
        fti_sampler_accept(q->smp, t); /* the generated tokens only, as fti-serve */
        q->ch = (char)('!' + t);
        memset(&out[i], 0, sizeof out[i]);
        out[i].id = t;
        out[i].text = &q->ch;
        out[i].text_len = 1;
    }
    return FTI_OK;
}

static void srv_flat_end(void *u, void *seq) {
    srv_flat_seq *q = (srv_flat_seq *)seq;
    (void)u;
    if (!q) return;
    fti_sampler_free(q->smp);
    fti_free(q);
}

/* POSTs json to path and returns choices[0].text (or the streamed deltas joined) in text. */
static int srv_flat_text(int port, const char *path, const char *json, fti_buf *text) {
    fti_buf req, resp, body;
    int st;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    memset(&body, 0, sizeof body);
    text->len = 0;
    srv_post(&req, path, json, 0);
    st = cli_do(port, req.data, &resp);
    cli_body(&resp, &body);
    if (st == 200 && body.data) {
        const char *line = body.data;
        int stream = strncmp(line, "data: ", 6) == 0;
        while (line && *line) { /* a plain body is one JSON text; a stream one per data line */
            const char *js = stream ? line + 6 : line, *e = stream ? strstr(js, "\n\n") : NULL;
            size_t n = e ? (size_t)(e - js) : strlen(js);
            fti_json_doc *doc = NULL;
            if (!(stream && n == 6 && memcmp(js, "[DONE]", 6) == 0) &&
                fti_json_parse(js, n, NULL, &doc, NULL, NULL) == FTI_OK) {
                const fti_json *ch = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
                const fti_json *t = fti_json_get(ch, "text");
                if (!t) t = fti_json_get(fti_json_get(ch, "message"), "content");
                if (!t) t = fti_json_get(fti_json_get(ch, "delta"), "content");
                if (t && t->type == FTI_JSON_STRING) fti_buf_append(text, t->str, t->len);
            }
            fti_json_free(doc);
            line = e ? e + 2 : NULL;
        }
    }
    fti_buf_putc(text, 0);
    text->len--;
    fti_buf_free(&req);
    fti_buf_free(&resp);
    fti_buf_free(&body);
    return st;
}

/* The number of distinct bytes of s[0..n). */
static int srv_distinct(const char *s, size_t n) {
    int seen[256], k = 0;
    size_t i;
    memset(seen, 0, sizeof seen);
    for (i = 0; i < n; i++)
        if (!seen[(unsigned char)s[i]]++) k++;
    return k;
}

FTI_TEST(server_penalties_openai) {
    /* presence_penalty / frequency_penalty with OpenAI's semantics: parsed, passed to the
     * generator and applied over every token the completion generated so far (80 here, more
     * than the sampler's default window of 64, after which token 0 would come back) */
    srv_fixture f;
    fti_server_opts o;
    fti_gen g;
    fti_gen_params p;
    fti_sampler_opts sm;
    fti_buf text;
    int i;
    char want[81];
    memset(&o, 0, sizeof o);
    memset(&f, 0, sizeof f);
    memset(&g, 0, sizeof g);
    memset(&text, 0, sizeof text);

    memset(&p, 0, sizeof p);
    p.max_tokens = 100;
    p.temperature = 0.5f;
    p.top_p = 0.9f;
    p.top_k = 7;
    p.seed = 42;
    p.presence_penalty = 1.5f;
    p.frequency_penalty = -0.25f;
    fti_gen_sampler_opts(&p, &sm);
    CHECK(sm.temperature == 0.5f && sm.top_p == 0.9f && sm.top_k == 7 && sm.seed == 42);
    CHECK(sm.presence_penalty == 1.5f && sm.frequency_penalty == -0.25f);
    CHECK(sm.repeat_penalty == 0.0f && sm.min_p == 0.0f);
    CHECK_EQ_INT((int)sm.penalty_last_n, 100);
    fti_gen_sampler_opts(NULL, &sm); /* greedy */
    CHECK(sm.temperature == 0.0f && sm.presence_penalty == 0.0f && sm.penalty_last_n == 0);

    g.model_id = srv_flat_id;
    g.n_ctx = srv_flat_n_ctx;
    g.seq_start = srv_flat_start;
    g.step = srv_flat_step;
    g.seq_end = srv_flat_end;
    REQUIRE(fti_server_create(&o, &g, &f.srv, NULL) == FTI_OK);
    f.port = fti_server_port(f.srv);
    REQUIRE(pthread_create(&f.th, NULL, srv_thread, &f) == 0);
    for (i = 0; i < 80; i++) want[i] = (char)('!' + i);
    want[80] = 0;

    /* no penalty: token 0 every time */
    CHECK_EQ_INT(srv_flat_text(f.port, "/v1/completions",
                               "{\"prompt\":\"x\",\"max_tokens\":80,\"temperature\":0}", &text),
                 200);
    CHECK_EQ_INT((int)text.len, 80);
    CHECK_EQ_INT(srv_distinct(text.data, text.len), 1);
    /* presence 2 (more than the spread of the logits, 0.89): each token once, in order */
    CHECK_EQ_INT(srv_flat_text(f.port, "/v1/completions",
                               "{\"prompt\":\"x\",\"max_tokens\":80,\"temperature\":0,"
                               "\"presence_penalty\":2}", &text), 200);
    CHECK_EQ_STR(text.data, want);
    /* frequency 2: the same, and streamed */
    CHECK_EQ_INT(srv_flat_text(f.port, "/v1/completions",
                               "{\"prompt\":\"x\",\"max_tokens\":80,\"temperature\":0,"
                               "\"frequency_penalty\":2,\"stream\":true}", &text), 200);
    CHECK_EQ_STR(text.data, want);
    /* chat, sampled (temperature 1, seed): with presence 2 a token comes back only when the
     * draw picks one of the penalized ones; with frequency 2 a token used twice is down by 4,
     * so 80 draws give far more distinct tokens than without */
    {
        int plain_k, pen_k;
        CHECK_EQ_INT(srv_flat_text(f.port, "/v1/chat/completions",
                                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                   "\"max_tokens\":80,\"seed\":5}", &text), 200);
        plain_k = srv_distinct(text.data, text.len);
        CHECK_EQ_INT(srv_flat_text(f.port, "/v1/chat/completions",
                                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                   "\"max_tokens\":80,\"seed\":5,\"frequency_penalty\":2}",
                                   &text), 200);
        pen_k = srv_distinct(text.data, text.len);
        CHECK(pen_k > plain_k);
        if (pen_k <= plain_k || getenv("FTI_TEST_VERBOSE"))
            fprintf(stderr, "    distinct tokens: %d plain, %d with frequency_penalty 2\n",
                    plain_k, pen_k);
    }
    /* a negative penalty favours what was written: token 0 again */
    CHECK_EQ_INT(srv_flat_text(f.port, "/v1/completions",
                               "{\"prompt\":\"x\",\"max_tokens\":80,\"temperature\":0,"
                               "\"presence_penalty\":-2,\"frequency_penalty\":-2}", &text), 200);
    CHECK_EQ_INT(srv_distinct(text.data, text.len), 1);
    /* out of range: 400 naming the parameter */
    CHECK_EQ_INT(srv_flat_text(f.port, "/v1/completions",
                               "{\"prompt\":\"x\",\"presence_penalty\":2.5}", &text), 400);
    srv_finish(&f);
    CHECK_EQ_INT(f.run_result, FTI_OK);
    fti_buf_free(&text);
}

#else /* no server or no threads: the socket tests have nothing to run */
void fti_test_server_endpoints(void) {}
void fti_test_server_streaming_sse(void) {}
void fti_test_server_logprobs(void) {}
void fti_test_server_n_best_of_echo(void) {}
void fti_test_server_n_failures_and_admission(void) {}
void fti_test_server_batch_turns_fail_cancel(void) {}
void fti_test_server_keepalive_pipelining(void) {}
void fti_test_server_smuggling_closes(void) {}
void fti_test_server_slow_header_deadline(void) {}
void fti_test_server_conn_cap_and_queue(void) {}
void fti_test_server_continuous_batching(void) {}
void fti_test_server_hot_swap_under_traffic(void) {}
void fti_test_server_graceful_stop(void) {}
void fti_test_server_survives_emfile(void) {}
void fti_test_server_monitor_log_metrics(void) {}
void fti_test_server_monitor_drift_user_ids(void) {}
void fti_test_server_batch_ppl_weight(void) {}
void fti_test_server_every_bad_request_closes(void) {}
void fti_test_server_instance_name(void) {}
void fti_test_server_cors(void) {}
void fti_test_server_penalties_openai(void) {}
void fti_test_server_prompt_batch(void) {}
void fti_test_server_prompt_token_ids(void) {}
void fti_test_server_tokenize_endpoints(void) {}
void fti_test_server_echo_logprobs_scoring(void) {}
void fti_test_server_stream_echo_utf8_boundary(void) {}
void fti_test_server_prompt_batch_turns(void) {}
void fti_test_server_batch_monitor_every_prompt(void) {}
void fti_test_server_empty_scored_prompt(void) {}
#endif

#if !defined(FTI_NO_SERVER)
/* The tests' small model (fti_test_model) with the letters vocabulary, seed 11, weights x4. */
static const char *srv_model(const char *file, uint32_t mt) {
    fti_test_model_opts o;
    memset(&o, 0, sizeof o);
    o.matrix_type = mt;
    o.seed = 11;
    o.scale = 4.0f;
    o.vocab = FTI_TEST_VOCAB_LETTERS;
    return fti_test_model(file, &o, NULL, NULL);
}

FTI_TEST(server_batch_decode_matches_sessions) {
    /* B sequences at different positions decoded in one batched step give the logits each
     * session gets on its own (f32 and q8_0 weights; 1 and 2 threads) */
    static const uint32_t types[2] = {0, 8};
    int ti, nt;
    for (ti = 0; ti < 2; ti++) {
        for (nt = 1; nt <= 2; nt++) {
            const char *path = srv_model(ti ? "m8.gguf" : "m32.gguf", types[ti]);
            fti_engine *e = NULL;
            fti_session *all[6], **ref = all, **bat = all + 3;
            fti_batch_decoder *d = NULL;
            fti_pool *pool = fti_pool_create(nt);
            fti_error err;
            fti_session_opts so;
            static const int32_t prompts[3][7] = {
                {95, 1, 2, 3, 4, 5, 6}, {95, 7}, {95, 30, 40, 50}};
            static const size_t plen[3] = {7, 2, 4};
            size_t b, step, v;
            double max_err = 0, tol;
            memset(&so, 0, sizeof so);
            REQUIRE(fti_test_open_sessions(path, &so, &e, all, 6) == 0);
            for (b = 0; b < 3; b++) {
                CHECK_OK(fti_session_eval(ref[b], prompts[b], plen[b], NULL, &err));
                CHECK_OK(fti_session_eval(bat[b], prompts[b], plen[b], NULL, &err));
            }
            REQUIRE(fti_batch_decoder_create(e, 4, fti_session_n_ctx(bat[0]), &d, &err) == FTI_OK);
            for (step = 0; step < 5; step++) {
                int32_t tok[3];
                for (b = 0; b < 3; b++) {
                    tok[b] = (int32_t)((step * 7 + b * 13) % 95);
                    CHECK_OK(fti_session_eval(ref[b], &tok[b], 1, NULL, &err));
                }
                CHECK_OK(fti_batch_decode(d, bat, tok, 3, pool, &err));
                for (b = 0; b < 3; b++) {
                    const float *a = fti_session_logits(ref[b]), *c = fti_session_logits(bat[b]);
                    CHECK_EQ_INT(fti_session_pos(ref[b]), fti_session_pos(bat[b]));
                    for (v = 0; v < 96; v++) {
                        double dd = fabs((double)a[v] - c[v]) / (1.0 + fabs((double)a[v]));
                        if (dd > max_err) max_err = dd;
                    }
                }
            }
            /* f32: the same sums in another order (GEMM/GEMV, ~1e-6). Quantized: the attention is
             * one function for every path, so only the AVX-512 VNNI multi-row product's float
             * order differs from its GEMV (~1e-7; 0 on the scalar and AVX2 tables). Was 0.1 while
             * the batched attention summed in its own order (an ulp there could move an
             * activation across a Q8 rounding boundary: ~7% of a logit with this model) */
            tol = ti ? 1e-5 : 1e-4;
            CHECK(max_err < tol);
            if (max_err >= tol || getenv("FTI_TEST_VERBOSE"))
                fprintf(stderr, "    type %u threads %d: max rel err %g\n", types[ti], nt,
                        max_err);
            {
                int32_t t2[2] = {1, 2};
                fti_session *dup[2];
                dup[0] = bat[0];
                dup[1] = bat[0];
                CHECK(fti_batch_decode(d, dup, t2, 2, pool, &err) == FTI_ERR_INVALID);
                t2[1] = 96;
                dup[1] = bat[1];
                CHECK(fti_batch_decode(d, dup, t2, 2, pool, &err) == FTI_ERR_INVALID);
                CHECK(fti_batch_decode(d, dup, t2, 5, pool, &err) == FTI_ERR_INVALID);
            }
            fti_batch_decoder_free(d);
            fti_test_close_sessions(e, all, 6);
            fti_pool_free(pool);
        }
    }
}
#else
void fti_test_server_batch_decode_matches_sessions(void) {}
#endif
