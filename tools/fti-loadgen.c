/* fti-loadgen: a small closed-loop HTTP load client for fti-serve (loopback benchmarks, CI).
 *
 *     build/fti-loadgen --port 8080 -c 16 -d 10 --max-tokens 32
 *     build/fti-loadgen --port 8080 -c 1 -n 1 --prompt "Love:" --print
 *     build/fti-loadgen --port 8080 -c 8 -n 4 --prompts prompts.txt
 *
 * Each of -c clients keeps one keep-alive connection and sends POST /v1/completions requests back
 * to back (a new request when the previous response is complete), for -d seconds or -n requests
 * each. With --prompts FILE the requests take the file's non-empty lines in turn (request k of
 * client i: line (i + k·C) mod lines), else every request sends --prompt. Completion tokens come
 * from the responses' usage. Prints a summary and one machine line:
 *     RESULT conc=C requests=R errors=E tokens=T seconds=S tps=X p50_ms=A p99_ms=B
 * and, when the responses name them, how many successful responses came from each model (the
 * "model" field) and each server instance (the X-Fti-Instance header; replicas behind a proxy):
 *     MODELS <id>=<n> ...
 *     INSTANCES <name>=<n> ...
 * Exit status 0 when every request succeeded, 1 otherwise.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

typedef struct lg_opts {
    const char *host, *path, *prompt;
    const char **prompts; /* --prompts FILE: its non-empty lines (n_prompts), else NULL */
    size_t n_prompts;
    int port, conc, n_per, max_tokens, stream, print;
    double seconds;
} lg_opts;

#define LG_MAX_TAGS 8
typedef struct lg_tag {
    char name[72];
    uint64_t n;
} lg_tag;

/* Counts one occurrence of name[0..n) in tags (at most LG_MAX_TAGS distinct names). */
static void lg_tag_add(lg_tag *tags, size_t *n_tags, const char *name, size_t n, uint64_t count) {
    size_t i;
    if (n >= sizeof tags[0].name) n = sizeof tags[0].name - 1;
    for (i = 0; i < *n_tags; i++)
        if (strlen(tags[i].name) == n && memcmp(tags[i].name, name, n) == 0) {
            tags[i].n += count;
            return;
        }
    if (*n_tags == LG_MAX_TAGS) return;
    memcpy(tags[*n_tags].name, name, n);
    tags[*n_tags].name[n] = 0;
    tags[(*n_tags)++].n = count;
}

/* The value after `key` up to the first byte of `stops` (or the end), within [p, end). */
static void lg_tag_find(lg_tag *tags, size_t *n_tags, const char *p, const char *end,
                        const char *key, const char *stops) {
    size_t kl = strlen(key);
    for (; p && p + kl <= end; p++) {
        if (memcmp(p, key, kl) == 0) {
            const char *v = p + kl, *e = v;
            while (e < end && !strchr(stops, *e)) e++;
            lg_tag_add(tags, n_tags, v, (size_t)(e - v), 1);
            return;
        }
    }
}

static void lg_tags_print(const char *label, const lg_tag *tags, size_t n) {
    size_t i;
    if (!n) return;
    printf("%s", label);
    for (i = 0; i < n; i++) printf(" %s=%llu", tags[i].name, (unsigned long long)tags[i].n);
    printf("\n");
}

typedef struct lg_client {
    lg_tag models[LG_MAX_TAGS], insts[LG_MAX_TAGS];
    size_t n_models, n_insts;
    const lg_opts *o;
    int id;
    double *lat_ms;
    size_t n_lat, cap_lat;
    uint64_t tokens;
    int errors;
    char first_err[256]; /* what the first failed request met */
    uint64_t t_end_ns;
} lg_client;

static int lg_connect(const lg_opts *o) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)o->port);
    if (inet_pton(AF_INET, o->host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Reads one response into b; returns the status or -1. Handles Content-Length and chunked. */
static int lg_read_response(int fd, fti_buf *b, size_t *body_off, int *closes) {
    size_t head = 0;
    b->len = 0;
    *closes = 0;
    for (;;) {
        char tmp[16384];
        ssize_t n;
        if (head == 0 && b->len >= 4) {
            char *e = strstr(b->data, "\r\n\r\n");
            if (e) head = (size_t)(e - b->data) + 4;
        }
        if (head) {
            const char *cl = strstr(b->data, "Content-Length: ");
            if (strstr(b->data, "Connection: close") &&
                strstr(b->data, "Connection: close") < b->data + head)
                *closes = 1;
            if (cl && cl < b->data + head) {
                size_t len = (size_t)strtoul(cl + 16, NULL, 10);
                if (b->len - head >= len) break; /* (head + len could wrap) */
            } else if (strstr(b->data + head - 4, "\r\n0\r\n\r\n") ||
                       (b->len >= head + 5 && memcmp(b->data + b->len - 5, "0\r\n\r\n", 5) == 0)) {
                break;
            }
        }
        n = recv(fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (head && *closes) break;
            return -1;
        }
        fti_buf_append(b, tmp, (size_t)n);
        if (b->oom) return -1;
    }
    *body_off = head;
    return b->len > 12 ? atoi(b->data + 9) : -1;
}

/* The whole HTTP request for `prompt` into req (reset first). */
static void lg_request(fti_buf *req, const lg_opts *o, const char *prompt, int seed) {
    fti_buf esc, json;
    memset(&esc, 0, sizeof esc);
    memset(&json, 0, sizeof json);
    fti_json_escape(&esc, prompt, strlen(prompt));
    fti_buf_printf(
        &json, "{\"prompt\":%s,\"max_tokens\":%d,\"temperature\":0.8,\"seed\":%d,\"stream\":%s%s}",
        esc.data ? esc.data : "\"\"", o->max_tokens, seed, o->stream ? "true" : "false",
        o->stream ? ",\"stream_options\":{\"include_usage\":true}" : "");
    req->len = 0;
    fti_buf_printf(req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %lu\r\n\r\n%s",
                   o->path, o->host, (unsigned long)json.len, json.data ? json.data : "");
    fti_buf_free(&esc);
    fti_buf_free(&json);
}

static void *lg_client_main(void *arg) {
    lg_client *c = (lg_client *)arg;
    const lg_opts *o = c->o;
    fti_buf req, resp;
    int fd = -1, k = 0;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    lg_request(&req, o, o->prompt, c->id);
    while ((o->n_per > 0 && k < o->n_per) || (o->n_per <= 0 && fti_time_ns() < c->t_end_ns)) {
        uint64_t t0 = fti_time_ns();
        size_t off = 0;
        int st, closes = 0;
        const char *u;
        if (o->n_prompts)
            lg_request(&req, o,
                       o->prompts[((size_t)(c->id - 1) + (size_t)k * (size_t)o->conc) %
                                  o->n_prompts],
                       c->id);
        if (fd < 0 && (fd = lg_connect(o)) < 0) {
            if (!c->errors++)
                snprintf(c->first_err, sizeof c->first_err, "cannot connect to %s:%d: %s",
                         o->host, o->port, strerror(errno));
            k++;
            {
                struct timespec ts = {0, 10000000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        if (send(fd, req.data, req.len, MSG_NOSIGNAL) != (ssize_t)req.len) {
            if (!c->errors++)
                snprintf(c->first_err, sizeof c->first_err, "sending the request: %s",
                         strerror(errno));
            close(fd);
            fd = -1;
            k++;
            continue;
        }
        st = lg_read_response(fd, &resp, &off, &closes);
        k++;
        if (st != 200) {
            if (!c->errors++) { /* the status and the start of the answer's body */
                const char *b = resp.data ? strstr(resp.data, "\r\n\r\n") : NULL;
                if (st > 0)
                    snprintf(c->first_err, sizeof c->first_err, "status %d: %.200s", st,
                             b ? b + 4 : "");
                else
                    snprintf(c->first_err, sizeof c->first_err,
                             "no HTTP answer (the connection closed or timed out)");
            }
            if (o->print) fprintf(stderr, "status %d: %.300s\n", st, resp.data ? resp.data : "");
            close(fd);
            fd = -1;
            continue;
        }
        if (c->n_lat == c->cap_lat) {
            size_t nc = c->cap_lat ? c->cap_lat * 2 : 256;
            double *nl = (double *)fti_realloc(c->lat_ms, nc * sizeof(double));
            if (nl) {
                c->lat_ms = nl;
                c->cap_lat = nc;
            }
        }
        if (c->n_lat < c->cap_lat) c->lat_ms[c->n_lat++] = (double)(fti_time_ns() - t0) / 1e6;
        lg_tag_find(c->models, &c->n_models, resp.data + off, resp.data + resp.len, "\"model\":\"",
                    "\"");
        lg_tag_find(c->insts, &c->n_insts, resp.data, resp.data + off, "X-Fti-Instance: ", "\r\n");
        u = strstr(resp.data + off, "\"completion_tokens\":");
        if (u) c->tokens += (uint64_t)strtoull(u + 20, NULL, 10);
        if (o->print) { /* one answer a line */
            fwrite(resp.data + off, 1, resp.len - off, stdout);
            if (resp.len > off && resp.data[resp.len - 1] != '\n') putchar('\n');
        }
        if (closes) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) close(fd);
    fti_buf_free(&req);
    fti_buf_free(&resp);
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f, "usage: fti-loadgen [--host H] --port P [-c CLIENTS] [-n REQUESTS | -d SECONDS]\n"
               "                   [--max-tokens N] [--stream] [--prompt TEXT | --prompts FILE] "
               "[--path PATH]\n"
               "                   [--print]\n"
               "Closed-loop load on POST /v1/completions; prints a summary and a RESULT line.\n"
               "  --host H        server address (default 127.0.0.1); --port P its port\n"
               "  -c CLIENTS      concurrent clients, each waiting for its answer (default 1)\n"
               "  -n REQUESTS     requests per client (-c 4 -n 10: 40 in all), else -d SECONDS\n"
               "                  of requests (default 5)\n"
               "  --max-tokens N  completion tokens asked for per request (default 32)\n"
               "  --stream        ask for server-sent events (the usage chunk included)\n"
               "  --prompt TEXT   the prompt of every request (default \"The cynic\")\n"
               "  --prompts FILE  one prompt per non-empty line, taken in turn by the requests\n"
               "  --path PATH     endpoint (default /v1/completions)\n"
               "  --print         print each answer's body (a line each); failed ones to stderr\n"
               "Exit status 1 when a request failed (the first failure's reason on stderr).\n");
}

int main(int argc, char **argv) {
    lg_opts o;
    lg_client *cl;
    pthread_t *th;
    int i;
    uint64_t t0, tokens = 0;
    size_t n_lat = 0;
    int errors = 0;
    double secs, *all;
    lg_tag models[LG_MAX_TAGS], insts[LG_MAX_TAGS];
    size_t n_models = 0, n_insts = 0;
    const char *prompts_file = NULL;
    void *ptext = NULL;
    size_t plen = 0;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.path = "/v1/completions";
    o.prompt = "The cynic";
    o.conc = 1;
    o.max_tokens = 32;
    o.seconds = 5;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--stream")) { o.stream = 1; continue; }
        if (!strcmp(a, "--print")) { o.print = 1; continue; }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--port") || !strcmp(a, "-c") || !strcmp(a, "-n") || !strcmp(a, "-d") ||
            !strcmp(a, "--max-tokens")) { /* numbers: the whole of v, in range, or said */
            int whole = strcmp(a, "-d") != 0;
            double hi = !strcmp(a, "--port") ? 65535 : !strcmp(a, "-c") ? 1024 : 1e9, x;
            double lo = !strcmp(a, "--port") || !strcmp(a, "-c") || !strcmp(a, "-n") ? 1 : 0;
            char *end = NULL;
            x = strtod(v, &end);
            if (end == v || *end || !(x >= lo && x <= hi) || (whole && x != (double)(long)x)) {
                fprintf(stderr, "fti-loadgen: %s takes a %s from %.10g to %.10g, not '%s'\n", a,
                        whole ? "whole number" : "number", lo, hi, v);
                return 2;
            }
            if (!strcmp(a, "--port")) o.port = (int)x;
            else if (!strcmp(a, "-c")) o.conc = (int)x;
            else if (!strcmp(a, "-n")) o.n_per = (int)x;
            else if (!strcmp(a, "-d")) o.seconds = x;
            else o.max_tokens = (int)x;
        } else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--prompt")) o.prompt = v;
        else if (!strcmp(a, "--prompts")) prompts_file = v;
        else if (!strcmp(a, "--path")) o.path = v;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (o.port <= 0 || o.conc <= 0 || o.conc > 1024 || !(o.seconds > 0 && o.seconds < 1e6)) {
        usage(stderr);
        return 2;
    }
    if (prompts_file) { /* the lines, NUL-terminated in place */
        fti_error err;
        size_t i0 = 0, j, cap = 0;
        char *t;
        if (fti_file_read(prompts_file, (size_t)64 << 20, &ptext, &plen, &err) != FTI_OK) {
            fprintf(stderr, "fti-loadgen: %s\n", err.msg);
            return 2;
        }
        t = (char *)ptext;
        for (j = 0; j <= plen; j++) {
            if (j < plen && t[j] != '\n') continue;
            if (j < plen) t[j] = 0;
            if (j > i0 && t[j - 1] == '\r') t[j - 1] = 0;
            if (t[i0]) {
                if (o.n_prompts == cap) {
                    const char **np;
                    cap = cap ? 2 * cap : 64;
                    np = (const char **)fti_realloc((void *)o.prompts, cap * sizeof *np);
                    if (!np) return 1;
                    o.prompts = np;
                }
                o.prompts[o.n_prompts++] = t + i0;
            }
            i0 = j + 1;
        }
        if (!o.n_prompts) {
            fprintf(stderr, "fti-loadgen: %s: no prompts (one per non-empty line)\n", prompts_file);
            return 2;
        }
    }
    cl = (lg_client *)fti_calloc((size_t)o.conc, sizeof *cl);
    th = (pthread_t *)fti_calloc((size_t)o.conc, sizeof *th);
    if (!cl || !th) return 1;
    t0 = fti_time_ns();
    for (i = 0; i < o.conc; i++) {
        cl[i].o = &o;
        cl[i].id = i + 1;
        cl[i].t_end_ns = t0 + (uint64_t)(o.seconds * 1e9);
        if (pthread_create(&th[i], NULL, lg_client_main, &cl[i]) != 0) {
            fprintf(stderr, "fti-loadgen: cannot start client %d\n", i);
            return 1;
        }
    }
    for (i = 0; i < o.conc; i++) pthread_join(th[i], NULL);
    secs = (double)(fti_time_ns() - t0) / 1e9;
    for (i = 0; i < o.conc; i++) {
        size_t t;
        for (t = 0; t < cl[i].n_models; t++)
            lg_tag_add(models, &n_models, cl[i].models[t].name, strlen(cl[i].models[t].name),
                       cl[i].models[t].n);
        for (t = 0; t < cl[i].n_insts; t++)
            lg_tag_add(insts, &n_insts, cl[i].insts[t].name, strlen(cl[i].insts[t].name),
                       cl[i].insts[t].n);
        tokens += cl[i].tokens;
        if (cl[i].errors && !errors) /* why requests failed: the first client's first failure */
            fprintf(stderr, "fti-loadgen: %d failed request(s) of client %d, the first: %s\n",
                    cl[i].errors, i + 1, cl[i].first_err);
        errors += cl[i].errors;
        n_lat += cl[i].n_lat;
    }
    all = (double *)fti_malloc((n_lat + 1) * sizeof(double));
    n_lat = 0;
    for (i = 0; i < o.conc; i++) {
        if (all && cl[i].n_lat) memcpy(all + n_lat, cl[i].lat_ms, cl[i].n_lat * sizeof(double));
        n_lat += cl[i].n_lat;
        fti_free(cl[i].lat_ms);
    }
    printf("fti-loadgen: %d clients, %lu ok requests, %d errors, %llu completion tokens in %.2f s: "
           "%.1f tokens/s, latency p50 %.1f ms p99 %.1f ms\n",
           o.conc, (unsigned long)n_lat, errors, (unsigned long long)tokens, secs,
           (double)tokens / secs, fti_percentile(all, n_lat, 50), fti_percentile(all, n_lat, 99));
    printf("RESULT conc=%d requests=%lu errors=%d tokens=%llu seconds=%.3f tps=%.2f p50_ms=%.2f "
           "p99_ms=%.2f\n",
           o.conc, (unsigned long)n_lat, errors, (unsigned long long)tokens, secs,
           (double)tokens / secs, fti_percentile(all, n_lat, 50), fti_percentile(all, n_lat, 99));
    lg_tags_print("MODELS", models, n_models);
    lg_tags_print("INSTANCES", insts, n_insts);
    fti_free(all);
    fti_free(cl);
    fti_free(th);
    fti_free((void *)o.prompts);
    fti_free(ptext);
    return errors ? 1 : 0;
}
