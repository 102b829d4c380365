/* === server: implementation === */
#include "10_server.h"

#ifndef FTI_NO_SERVER

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FTI_HTTP_MAX_REQUEST_LINE
#define FTI_HTTP_MAX_REQUEST_LINE 8192
#endif
#ifndef FTI_HTTP_MAX_HEAD
#define FTI_HTTP_MAX_HEAD 32768
#endif
#ifndef FTI_HTTP_MAX_FIELDS
#define FTI_HTTP_MAX_FIELDS 100
#endif
#ifndef FTI_HTTP_MAX_BODY
#define FTI_HTTP_MAX_BODY ((size_t)1 << 20)
#endif
#define FTI__HTTP_MAX_CHUNK_LINE 4096

/* === server: HTTP/1.1 request head === */

static void fti__http_limits_resolve(const fti_http_limits *in, fti_http_limits *out) {
    fti_http_limits z;
    memset(&z, 0, sizeof z);
    if (!in) in = &z;
    out->max_request_line = in->max_request_line ? in->max_request_line : FTI_HTTP_MAX_REQUEST_LINE;
    out->max_head = in->max_head ? in->max_head : FTI_HTTP_MAX_HEAD;
    out->max_fields = in->max_fields ? in->max_fields : FTI_HTTP_MAX_FIELDS;
    if (out->max_fields > FTI_HTTP_MAX_FIELDS_CAP) out->max_fields = FTI_HTTP_MAX_FIELDS_CAP;
    out->max_body = in->max_body ? in->max_body : FTI_HTTP_MAX_BODY;
}

/* RFC 9110 token characters. */
static int fti__http_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value octets: HTAB, SP, VCHAR, obs-text. */
static int fti__http_vchar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int fti__http_ieq(const unsigned char *a, size_t n, const char *b) {
    size_t i;
    if (strlen(b) != n) return 0;
    for (i = 0; i < n; i++) {
        unsigned char x = a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return 0;
    }
    return 1;
}

static long fti__http_fail(fti_http_head *h, int status, const char *why) {
    h->error = why;
    return -(long)status;
}

/* Finds the end of the line starting at pos: returns 1 and *eol (index of the CR) when a CRLF is
 * found, 0 when more bytes are needed, -1 for a bare LF or a CR not followed by LF (*eol: its
 * index). */
static int fti__http_line(const unsigned char *buf, size_t len, size_t pos, size_t *eol) {
    size_t i;
    for (i = pos; i < len; i++) {
        *eol = i;
        if (buf[i] == '\n') return -1;
        if (buf[i] == '\r') {
            if (i + 1 >= len) return 0;
            if (buf[i + 1] != '\n') return -1;
            *eol = i;
            return 1;
        }
    }
    return 0;
}

/* Parses one field line [s, e) into f. Returns 0 or -1 (invalid). */
static int fti__http_field_line(const unsigned char *buf, size_t s, size_t e, fti_http_field *f) {
    size_t i = s, vs, ve;
    if (buf[s] == ' ' || buf[s] == '\t') return -1; /* obs-fold */
    while (i < e && fti__http_tchar(buf[i])) i++;
    if (i == s || i >= e || buf[i] != ':') return -1; /* empty name, bad char, space before ':' */
    f->name.off = s;
    f->name.len = i - s;
    vs = i + 1;
    while (vs < e && (buf[vs] == ' ' || buf[vs] == '\t')) vs++;
    ve = e;
    while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t')) ve--;
    for (i = vs; i < ve; i++)
        if (!fti__http_vchar(buf[i])) return -1;
    f->value.off = vs;
    f->value.len = ve - vs;
    return 0;
}

FTIDEF long fti_http_parse_head(const unsigned char *buf, size_t len, const fti_http_limits *lim_in,
                                fti_http_head *h) {
    fti_http_limits lim;
    size_t pos = 0, eol = 0, i, n_host = 0, n_cl = 0, n_te = 0, line_start;
    int r;
    const unsigned char *line;
    size_t line_len, sp1, sp2;

    fti__http_limits_resolve(lim_in, &lim);
    memset(h, 0, offsetof(fti_http_head, fields));
    h->head_len = 0;
    h->chunked = 0;
    h->content_length = 0;
    h->keep_alive = 0;
    h->expect_continue = 0;
    h->error = NULL;
    if (!buf && len) return fti__http_fail(h, 400, "no buffer");

    /* leading empty lines (a client's stray CRLF after a previous body) */
    while (pos + 1 < len && buf[pos] == '\r' && buf[pos + 1] == '\n') {
        pos += 2;
        if (pos > lim.max_request_line) return fti__http_fail(h, 400, "too many empty lines");
    }
    /* request line */
    line_start = pos;
    r = fti__http_line(buf, len, pos, &eol);
    if (r == 0) {
        /* incomplete: give up early once a limit is certainly crossed */
        size_t have = len - pos;
        if (have > 0 && buf[len - 1] == '\r') have--;
        if (have > lim.max_request_line) return fti__http_fail(h, 414, "request line too long");
        return FTI_HTTP_INCOMPLETE;
    }
    /* a bad line end past the limit: 414, as any prefix of more than the limit without it was
     * (the verdict must not depend on how the bytes arrived) */
    if (r < 0 && eol - pos > lim.max_request_line)
        return fti__http_fail(h, 414, "request line too long");
    if (r < 0) return fti__http_fail(h, 400, "bare LF or CR in the request line");
    line = buf + line_start;
    line_len = eol - line_start;
    if (line_len > lim.max_request_line) return fti__http_fail(h, 414, "request line too long");
    for (sp1 = 0; sp1 < line_len && fti__http_tchar(line[sp1]); sp1++) {
    }
    if (sp1 == 0 || sp1 >= line_len || line[sp1] != ' ')
        return fti__http_fail(h, 400, "bad method");
    for (sp2 = sp1 + 1; sp2 < line_len && line[sp2] > 0x20 && line[sp2] < 0x7f; sp2++) {
    }
    if (sp2 == sp1 + 1 || sp2 >= line_len || line[sp2] != ' ')
        return fti__http_fail(h, 400, "bad request target");
    if (line[sp1 + 1] != '/' && !(sp2 == sp1 + 2 && line[sp1 + 1] == '*'))
        return fti__http_fail(h, 400, "request target must be an absolute path");
    if (line_len - (sp2 + 1) != 8 || memcmp(line + sp2 + 1, "HTTP/", 5) != 0 ||
        line[sp2 + 7] != '.' || line[sp2 + 6] < '0' || line[sp2 + 6] > '9' ||
        line[sp2 + 8] < '0' || line[sp2 + 8] > '9')
        return fti__http_fail(h, 400, "bad HTTP version");
    if (line[sp2 + 6] != '1') return fti__http_fail(h, 505, "HTTP version not supported");
    h->method.off = line_start;
    h->method.len = sp1;
    h->target.off = line_start + sp1 + 1;
    h->target.len = sp2 - sp1 - 1;
    h->version_minor = line[sp2 + 8] == '0' ? 0 : 1;
    h->keep_alive = h->version_minor >= 1;

    /* fields */
    pos = eol + 2;
    for (;;) {
        fti_http_field f;
        r = fti__http_line(buf, len, pos, &eol);
        if (r == 0) {
            if (len > lim.max_head) return fti__http_fail(h, 431, "header too large");
            return FTI_HTTP_INCOMPLETE;
        }
        /* (the prefix up to a bad LF, or through a bad CR, was incomplete: 431 past max_head) */
        if (r < 0 && eol + (buf[eol] == '\r') > lim.max_head)
            return fti__http_fail(h, 431, "header too large");
        if (r < 0) return fti__http_fail(h, 400, "bare LF or CR in the header");
        if (eol + 2 > lim.max_head) return fti__http_fail(h, 431, "header too large");
        if (eol == pos) {
            h->head_len = eol + 2;
            break;
        }
        if (fti__http_field_line(buf, pos, eol, &f) != 0)
            return fti__http_fail(h, 400, buf[pos] == ' ' || buf[pos] == '\t'
                                              ? "obsolete line folding"
                                              : "malformed header field");
        if (h->n_fields >= lim.max_fields) return fti__http_fail(h, 431, "too many header fields");
        h->fields[h->n_fields++] = f;
        pos = eol + 2;
    }

    /* semantics */
    for (i = 0; i < h->n_fields; i++) {
        const fti_http_field *f = &h->fields[i];
        const unsigned char *name = buf + f->name.off, *v = buf + f->value.off;
        size_t vn = f->value.len;
        if (fti__http_ieq(name, f->name.len, "host")) {
            n_host++;
        } else if (fti__http_ieq(name, f->name.len, "content-length")) {
            uint64_t x = 0;
            size_t k;
            int big = 0;
            if (++n_cl > 1) return fti__http_fail(h, 400, "duplicate Content-Length");
            if (vn == 0) return fti__http_fail(h, 400, "empty Content-Length");
            for (k = 0; k < vn; k++) {
                if (v[k] < '0' || v[k] > '9') return fti__http_fail(h, 400, "bad Content-Length");
                if (x > (UINT64_MAX - 9) / 10) big = 1;
                else x = x * 10 + (uint64_t)(v[k] - '0');
            }
            h->content_length = big ? UINT64_MAX : x;
        } else if (fti__http_ieq(name, f->name.len, "transfer-encoding")) {
            if (++n_te > 1) return fti__http_fail(h, 400, "duplicate Transfer-Encoding");
            if (!fti__http_ieq(v, vn, "chunked"))
                return fti__http_fail(h, 400, "Transfer-Encoding other than chunked");
            h->chunked = 1;
        } else if (fti__http_ieq(name, f->name.len, "connection")) {
            size_t k = 0;
            while (k < vn) {
                size_t s, e;
                while (k < vn && (v[k] == ' ' || v[k] == '\t' || v[k] == ',')) k++;
                s = k;
                while (k < vn && v[k] != ',') k++;
                e = k;
                while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
                if (fti__http_ieq(v + s, e - s, "close")) h->keep_alive = 0;
                else if (fti__http_ieq(v + s, e - s, "keep-alive") && h->version_minor == 0)
                    h->keep_alive = 1;
            }
        } else if (fti__http_ieq(name, f->name.len, "expect")) {
            if (!fti__http_ieq(v, vn, "100-continue"))
                return fti__http_fail(h, 417, "unsupported Expect");
            h->expect_continue = h->version_minor >= 1; /* 1.0 knows no 1xx: MUST ignore it */
        }
    }
    /* Connection: close wins over keep-alive whatever the order */
    for (i = 0; i < h->n_fields; i++) {
        const fti_http_field *f = &h->fields[i];
        if (fti__http_ieq(buf + f->name.off, f->name.len, "connection")) {
            size_t k;
            for (k = 0; k + 5 <= f->value.len; k++)
                if (fti__http_ieq(buf + f->value.off + k, 5, "close") &&
                    (k == 0 || buf[f->value.off + k - 1] == ' ' ||
                     buf[f->value.off + k - 1] == ',') &&
                    (k + 5 == f->value.len || buf[f->value.off + k + 5] == ' ' ||
                     buf[f->value.off + k + 5] == ','))
                    h->keep_alive = 0;
        }
    }
    if (h->version_minor >= 1 && n_host != 1)
        return fti__http_fail(h, 400, n_host ? "duplicate Host" : "missing Host");
    if (n_host > 1) return fti__http_fail(h, 400, "duplicate Host");
    if (n_te && n_cl) return fti__http_fail(h, 400, "both Content-Length and Transfer-Encoding");
    if (n_te && h->version_minor == 0)
        return fti__http_fail(h, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (!h->chunked && h->content_length > (uint64_t)lim.max_body)
        return fti__http_fail(h, 413, "body too large");
    return (long)h->head_len;
}

/* === server: chunked bodies === */

enum { FTI__CH_SIZE = 0, FTI__CH_DATA, FTI__CH_DATA_END, FTI__CH_TRAILER, FTI__CH_DONE };

static int fti__hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* fti__http_line for the line at c->pos of a growing buffer: the bytes scanned by an earlier call
 * that found no line end are not scanned again (a peer sending a long chunk-size or trailer line a
 * byte at a time made each call scan the whole line again: quadratic). */
static int fti__http_chunk_line(fti_http_chunked *c, const unsigned char *buf, size_t len,
                                size_t *eol) {
    int r;
    if (c->line_len > len - c->pos) c->line_len = 0; /* a shorter buffer than last time */
    r = fti__http_line(buf, len, c->pos + c->line_len, eol);
    /* no line end in [pos, len): but a CR at the end may yet be followed by its LF */
    c->line_len = r == 0 ? len - c->pos - (buf[len - 1] == '\r') : 0;
    return r;
}

FTIDEF long fti_http_chunked_feed(fti_http_chunked *c, const unsigned char *buf, size_t len,
                                  const fti_http_limits *lim_in, fti_buf *out) {
    fti_http_limits lim;
    fti__http_limits_resolve(lim_in, &lim);
    if (!c || (!buf && len) || !out) return -500;
    while (c->pos < len || c->state == FTI__CH_DONE) {
        if (c->state == FTI__CH_SIZE) {
            size_t eol = 0, k = c->pos, n_digits = 0;
            uint64_t size = 0;
            int r = fti__http_chunk_line(c, buf, len, &eol);
            if (r == 0) {
                if (len - c->pos > FTI__HTTP_MAX_CHUNK_LINE) return -400;
                return FTI_HTTP_INCOMPLETE;
            }
            if (r < 0 || eol - c->pos > FTI__HTTP_MAX_CHUNK_LINE) return -400;
            while (k < eol && fti__hexval(buf[k]) >= 0) {
                if (++n_digits > 15) return -400; /* no body of ours needs more */
                size = size * 16 + (uint64_t)fti__hexval(buf[k]);
                k++;
            }
            if (n_digits == 0) return -400;
            while (k < eol && (buf[k] == ' ' || buf[k] == '\t')) k++; /* BWS before ';' */
            if (k < eol) {
                if (buf[k] != ';') return -400;
                for (; k < eol; k++)
                    if (!fti__http_vchar(buf[k])) return -400;
            }
            c->pos = eol + 2;
            if (size == 0) {
                c->state = FTI__CH_TRAILER;
            } else {
                if (size > (uint64_t)lim.max_body || out->len > lim.max_body - (size_t)size)
                    return -413;
                c->remaining = size;
                c->state = FTI__CH_DATA;
            }
        } else if (c->state == FTI__CH_DATA) {
            size_t take = len - c->pos;
            if ((uint64_t)take > c->remaining) take = (size_t)c->remaining;
            fti_buf_append(out, buf + c->pos, take);
            if (out->oom) return -500;
            c->pos += take;
            c->remaining -= take;
            if (c->remaining == 0) c->state = FTI__CH_DATA_END;
        } else if (c->state == FTI__CH_DATA_END) {
            if (len - c->pos < 2) {
                if (buf[c->pos] != '\r') return -400;
                return FTI_HTTP_INCOMPLETE;
            }
            if (buf[c->pos] != '\r' || buf[c->pos + 1] != '\n') return -400;
            c->pos += 2;
            c->state = FTI__CH_SIZE;
        } else if (c->state == FTI__CH_TRAILER) {
            size_t eol = 0;
            fti_http_field f;
            int r = fti__http_chunk_line(c, buf, len, &eol);
            if (r == 0) {
                if (c->n_trailer + (len - c->pos) > lim.max_head) return -431;
                return FTI_HTTP_INCOMPLETE;
            }
            if (r < 0) return -400;
            c->n_trailer += eol + 2 - c->pos;
            if (c->n_trailer > lim.max_head) return -431;
            if (eol == c->pos) {
                c->pos = eol + 2;
                c->state = FTI__CH_DONE;
                continue;
            }
            if (fti__http_field_line(buf, c->pos, eol, &f) != 0) return -400;
            if (++c->n_trailer_fields > lim.max_fields) return -431;
            c->pos = eol + 2;
        } else {
            return (long)c->pos;
        }
    }
    return FTI_HTTP_INCOMPLETE;
}

FTIDEF long fti_http_parse_request(const unsigned char *buf, size_t len, const fti_http_limits *lim,
                                   fti_http_head *head, fti_buf *body_buf, const char **body,
                                   size_t *body_len) {
    long r = fti_http_parse_head(buf, len, lim, head);
    if (body) *body = NULL;
    if (body_len) *body_len = 0;
    if (r <= 0) return r;
    if (head->chunked) {
        fti_http_chunked c;
        long b;
        memset(&c, 0, sizeof c);
        if (!body_buf) return -500;
        b = fti_http_chunked_feed(&c, buf + head->head_len, len - head->head_len, lim, body_buf);
        if (b <= 0) {
            if (b < 0) head->error = "bad chunked body";
            return b;
        }
        if (body) *body = body_buf->data ? body_buf->data : "";
        if (body_len) *body_len = body_buf->len;
        return (long)head->head_len + b;
    }
    if ((uint64_t)(len - head->head_len) < head->content_length) return FTI_HTTP_INCOMPLETE;
    if (body) *body = (const char *)buf + head->head_len;
    if (body_len) *body_len = (size_t)head->content_length;
    return (long)(head->head_len + (size_t)head->content_length);
}

FTIDEF size_t fti_http_head_field(const fti_http_head *head, const unsigned char *buf,
                                  const char *name, fti_http_span *value) {
    size_t i, n = 0;
    for (i = 0; i < head->n_fields; i++) {
        if (fti__http_ieq(buf + head->fields[i].name.off, head->fields[i].name.len, name)) {
            if (n == 0 && value) *value = head->fields[i].value;
            n++;
        }
    }
    return n;
}

FTIDEF const char *fti_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* === server: the OpenAI API layer === */

static fti_result fti__api_bad(fti_error *err, const char **param, const char *name,
                               const char *msg) {
    if (param) *param = name;
    return fti_error_set(err, FTI_ERR_INVALID, "%s", msg);
}

/* Reads an optional number member into *out within [lo, hi]; 0 ok, else an error. */
static fti_result fti__api_num(const fti_json *root, const char *key, double lo, double hi,
                               double *out, const char **param, fti_error *err) {
    const fti_json *v = fti_json_get(root, key);
    char msg[160];
    if (!v || v->type == FTI_JSON_NULL) return FTI_OK;
    if (v->type != FTI_JSON_NUMBER) {
        snprintf(msg, sizeof msg, "'%s' must be a number", key);
        return fti__api_bad(err, param, key, msg);
    }
    if (!(v->num >= lo && v->num <= hi)) { /* NaN fails too */
        snprintf(msg, sizeof msg, "%g is not a valid value for '%s': expected %g to %g", v->num,
                 key, lo, hi);
        return fti__api_bad(err, param, key, msg);
    }
    *out = v->num;
    return FTI_OK;
}

static fti_result fti__api_int(const fti_json *root, const char *key, int64_t lo, int64_t hi,
                               int64_t *out, const char **param, fti_error *err) {
    const fti_json *v = fti_json_get(root, key);
    char msg[200];
    if (!v || v->type == FTI_JSON_NULL) return FTI_OK;
    if (v->type != FTI_JSON_NUMBER || !v->is_int) {
        snprintf(msg, sizeof msg, "'%s' must be an integer", key);
        return fti__api_bad(err, param, key, msg);
    }
    if (v->i < lo || v->i > hi) {
        snprintf(msg, sizeof msg, "%lld is not a valid value for '%s': expected %lld to %lld",
                 (long long)v->i, key, (long long)lo, (long long)hi);
        return fti__api_bad(err, param, key, msg);
    }
    *out = v->i;
    return FTI_OK;
}

/* Requests whose answer would be wrong if the field were ignored: a response format other than
 * text (JSON mode, a schema: the twin writes prose, unconstrained), and a tool call the client
 * requires (tools themselves are fine: the model answers in text, as a model may under "auto"). */
static fti_result fti__api_unsupported(const fti_json *root, const char **param, fti_error *err) {
    const fti_json *v = fti_json_get(root, "response_format");
    if (v && v->type != FTI_JSON_NULL &&
        (v->type != FTI_JSON_OBJECT || strcmp(fti_json_get_str(v, "type", ""), "text") != 0))
        return fti__api_bad(err, param, "response_format",
                            "'response_format' must be {\"type\": \"text\"}: this server does not "
                            "constrain the output to JSON");
    v = fti_json_get(root, "tool_choice");
    if (v && v->type != FTI_JSON_NULL &&
        !(v->type == FTI_JSON_STRING && v->len == 4 &&
          (memcmp(v->str, "none", 4) == 0 || memcmp(v->str, "auto", 4) == 0)))
        return fti__api_bad(err, param, "tool_choice",
                            "'tool_choice' must be \"auto\" or \"none\": this server never calls "
                            "tools");
    return FTI_OK;
}

/* logprobs: chat takes "logprobs" (a boolean) and "top_logprobs" (0..20, with logprobs true);
 * completions take "logprobs" as the number of alternatives (0..5). */
static fti_result fti__api_logprobs(const fti_json *root, fti_api_kind kind, fti_api_request *req,
                                    const char **param, fti_error *err) {
    const fti_json *v = fti_json_get(root, "logprobs");
    int64_t i64 = 0;
    fti_result r;
    if (kind == FTI_API_CHAT) {
        if (v && v->type != FTI_JSON_NULL && v->type != FTI_JSON_TRUE && v->type != FTI_JSON_FALSE)
            return fti__api_bad(err, param, "logprobs", "'logprobs' must be a boolean");
        req->logprobs = v && v->type == FTI_JSON_TRUE;
        r = fti__api_int(root, "top_logprobs", 0, FTI_API_MAX_TOP_LOGPROBS, &i64, param, err);
        if (r != FTI_OK) return r;
        v = fti_json_get(root, "top_logprobs");
        if (v && v->type != FTI_JSON_NULL && !req->logprobs)
            return fti__api_bad(err, param, "top_logprobs",
                                "'top_logprobs' requires 'logprobs' to be true");
    } else {
        if (v && v->type == FTI_JSON_TRUE) /* some clients send a boolean here too */
            return fti__api_bad(err, param, "logprobs",
                                "'logprobs' must be an integer from 0 to 5 (the alternatives per "
                                "token) for completions");
        r = fti__api_int(root, "logprobs", 0, 5, &i64, param, err);
        if (r != FTI_OK) return r;
        req->logprobs = v && v->type == FTI_JSON_NUMBER;
    }
    req->top_logprobs = (int)i64;
    return FTI_OK;
}

/* logit_bias: an object of token ids (decimal strings) to numbers in [-100, 100]. */
static fti_result fti__api_logit_bias(const fti_json *root, fti_api_request *req,
                                      const char **param, fti_error *err) {
    const fti_json *v = fti_json_get(root, "logit_bias"), *m;
    size_t n = 0, i;
    if (!v || v->type == FTI_JSON_NULL) return FTI_OK;
    if (v->type != FTI_JSON_OBJECT)
        return fti__api_bad(err, param, "logit_bias",
                            "'logit_bias' must be an object of token ids to numbers");
    if (v->len > FTI_API_MAX_LOGIT_BIAS)
        return fti__api_bad(err, param, "logit_bias", "'logit_bias' takes at most 1024 tokens");
    if (!v->len) return FTI_OK;
    req->bias_ids = (int32_t *)fti_malloc(v->len * sizeof(int32_t));
    req->bias = (float *)fti_malloc(v->len * sizeof(float));
    if (!req->bias_ids || !req->bias) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    for (m = v->child; m; m = m->next) {
        int64_t id = 0;
        int ok = m->key_len > 0 && m->key_len <= 10;
        for (i = 0; ok && i < m->key_len; i++) {
            ok = m->key[i] >= '0' && m->key[i] <= '9';
            id = id * 10 + (m->key[i] - '0');
        }
        if (!ok || id > INT32_MAX)
            return fti__api_bad(err, param, "logit_bias",
                                "'logit_bias' keys must be token ids (decimal integers)");
        if (m->type != FTI_JSON_NUMBER || !(m->num >= -100 && m->num <= 100))
            return fti__api_bad(err, param, "logit_bias",
                                "'logit_bias' values must be numbers from -100 to 100");
        for (i = 0; i < n && req->bias_ids[i] != (int32_t)id; i++) {
        }
        if (i < n) { /* a repeated id ("5" or "05"): the last value, as fti_json_get's last
                      * match for every other key (the values were once summed) */
            req->bias[i] = (float)m->num;
            continue;
        }
        req->bias_ids[n] = (int32_t)id;
        req->bias[n++] = (float)m->num;
    }
    req->n_bias = n;
    return FTI_OK;
}

/* Token ids from a JSON array (a != NULL) of integers, each in [0, INT32_MAX], into a new array
 * *ids (NULL when a is empty; the caller frees it, also on failure) of *n entries. what names
 * the array in the message ("prompt 2", "'tokens'"). FTI_ERR_INVALID or FTI_ERR_NOMEM. */
static fti_result fti__api_id_array(const fti_json *a, const char *what, int32_t **ids, size_t *n,
                                    fti_error *err) {
    const fti_json *x;
    size_t i = 0;
    *ids = NULL;
    *n = 0;
    if (a->len == 0) return FTI_OK;
    *ids = (int32_t *)fti_malloc(a->len * sizeof(int32_t));
    if (!*ids) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    for (x = a->child; x; x = x->next, i++) {
        if (x->type != FTI_JSON_NUMBER || !x->is_int || x->i < 0 || x->i > INT32_MAX)
            return fti_error_set(err, FTI_ERR_INVALID, "%s: token ids must be integers from 0 "
                                 "(entry %lu is not)", what, (unsigned long)i);
        (*ids)[i] = (int32_t)x->i;
    }
    *n = i;
    return FTI_OK;
}

/* A token-id prompt from an array of integers (a != NULL, non-empty, all numbers). */
static fti_result fti__api_ids(const fti_json *a, size_t idx, fti_api_prompt *out,
                               const char **param, fti_error *err) {
    char what[48];
    fti_result r;
    if (a->len == 0) {
        if (param) *param = "prompt";
        return fti_error_set(err, FTI_ERR_INVALID, "prompt %lu is an empty array of token ids: "
                             "a prompt needs at least one token", (unsigned long)idx);
    }
    snprintf(what, sizeof what, "prompt %lu", (unsigned long)idx);
    r = fti__api_id_array(a, what, &out->ids, &out->n_ids, err);
    if (r == FTI_ERR_INVALID && param) *param = "prompt";
    return r;
}

/* "prompt": a string, an array of strings (a batch), an array of integers (one prompt of token
 * ids) or an array of arrays of integers (a batch of them); not mixed. Sets req->prompts and
 * req->prompt (the first prompt's text, "" for ids). */
static fti_result fti__api_prompts(const fti_json *v, fti_api_request *req, const char **param,
                                   fti_error *err) {
    const fti_json *x;
    size_t n = 1, i;
    fti_result r;
    char msg[200];
    int ids_one = 0; /* one prompt of token ids */
    if (!v) return fti__api_bad(err, param, "prompt", "'prompt' is required");
    if (v->type == FTI_JSON_ARRAY) {
        if (v->len == 0)
            return fti__api_bad(err, param, "prompt", "'prompt' must not be an empty array");
        ids_one = v->child->type == FTI_JSON_NUMBER;
        /* (one prompt of token ids is as long as the context allows: checked below) */
        if (!ids_one && v->len > FTI_API_MAX_PROMPTS) {
            snprintf(msg, sizeof msg, "'prompt' is a batch of %lu prompts: at most %d are taken",
                     (unsigned long)v->len, FTI_API_MAX_PROMPTS);
            return fti__api_bad(err, param, "prompt", msg);
        }
        for (x = v->child; x; x = x->next)
            if (x->type != v->child->type ||
                (x->type != FTI_JSON_STRING && x->type != FTI_JSON_NUMBER &&
                 x->type != FTI_JSON_ARRAY))
                return fti__api_bad(err, param, "prompt",
                                    "'prompt' must be a string, an array of strings, an array of "
                                    "token ids or an array of arrays of token ids (not mixed)");
        n = ids_one ? 1 : v->len;
    } else if (v->type != FTI_JSON_STRING) {
        return fti__api_bad(err, param, "prompt",
                            "'prompt' must be a string, an array of strings, an array of token "
                            "ids or an array of arrays of token ids");
    }
    req->prompts = (fti_api_prompt *)fti_calloc(n, sizeof *req->prompts);
    if (!req->prompts) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    req->n_prompts = n;
    if (v->type == FTI_JSON_STRING) {
        req->prompts[0].text = fti_strndup(v->str, v->len);
        req->prompts[0].text_len = v->len;
        if (!req->prompts[0].text) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    } else if (ids_one) {
        if ((r = fti__api_ids(v, 0, &req->prompts[0], param, err)) != FTI_OK) return r;
    } else {
        for (x = v->child, i = 0; x; x = x->next, i++) {
            if (x->type == FTI_JSON_STRING) {
                req->prompts[i].text = fti_strndup(x->str, x->len);
                req->prompts[i].text_len = x->len;
                if (!req->prompts[i].text)
                    return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
                continue;
            }
            if (x->len && x->child->type != FTI_JSON_NUMBER)
                return fti__api_bad(err, param, "prompt",
                                    "'prompt' as an array of arrays: each must be token ids "
                                    "(integers)");
            if ((r = fti__api_ids(x, i, &req->prompts[i], param, err)) != FTI_OK) return r;
        }
    }
    req->prompt = req->prompts[0].text ? fti_strndup(req->prompts[0].text,
                                                     req->prompts[0].text_len)
                                       : fti_strdup("");
    if (!req->prompt) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    req->prompt_len = req->prompts[0].text ? req->prompts[0].text_len : 0;
    return FTI_OK;
}

/* The text of a chat message content: a string or an array of {"type":"text","text":...}. */
static int fti__api_content(const fti_json *c, fti_buf *out) {
    const fti_json *p;
    if (!c) return -1;
    if (c->type == FTI_JSON_STRING) {
        fti_buf_append(out, c->str, c->len);
        return 0;
    }
    if (c->type != FTI_JSON_ARRAY) return -1;
    for (p = c->child; p; p = p->next) {
        const fti_json *t = fti_json_get(p, "text");
        if (p->type != FTI_JSON_OBJECT || !t || t->type != FTI_JSON_STRING) return -1;
        if (strcmp(fti_json_get_str(p, "type", ""), "text") != 0) return -1;
        fti_buf_append(out, t->str, t->len);
    }
    return 0;
}

/* The chat template. The twin is not instruction-tuned, so the conversation is written as one
 * document in the shape it was trained on: earlier turns as context lines, then the last user
 * message as the title of the piece the model continues. */
static fti_result fti__api_render_chat(const fti_json *msgs, fti_api_request *req,
                                       const char **param, fti_error *err) {
    const fti_json *m, *last_user = NULL;
    fti_buf out, title;
    size_t n = 0;
    memset(&out, 0, sizeof out);
    memset(&title, 0, sizeof title);
    if (!msgs || msgs->type != FTI_JSON_ARRAY || msgs->len == 0)
        return fti__api_bad(err, param, "messages", "'messages' must be a non-empty array");
    for (m = msgs->child; m; m = m->next) {
        const char *role = fti_json_get_str(m, "role", NULL);
        if (m->type != FTI_JSON_OBJECT || !role)
            return fti__api_bad(err, param, "messages", "each message needs a string 'role'");
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") &&
            strcmp(role, "developer"))
            return fti__api_bad(err, param, "messages",
                                "message role must be system, developer, user or assistant");
        if (strcmp(role, "user") == 0) last_user = m;
        n++;
    }
    if (!last_user)
        return fti__api_bad(err, param, "messages", "'messages' needs at least one user message");
    for (m = msgs->child; m; m = m->next) {
        const char *role = fti_json_get_str(m, "role", "");
        fti_buf *dst = m == last_user ? &title : &out;
        size_t before = dst->len;
        if (m != last_user) fti_buf_printf(&out, "%s: ", role);
        if (fti__api_content(fti_json_get(m, "content"), dst) != 0) {
            fti_buf_free(&out);
            fti_buf_free(&title);
            return fti__api_bad(err, param, "messages",
                                "message content must be a string or an array of text parts");
        }
        (void)before;
        if (m != last_user) fti_buf_puts(&out, "\n");
    }
    if (title.len && memchr(title.data, 0, title.len)) { /* the title is a C string downstream */
        fti_buf_free(&out);
        fti_buf_free(&title);
        return fti__api_bad(err, param, "messages",
                            "the last user message contains a NUL character (\\u0000)");
    }
    if (out.len) fti_buf_puts(&out, "\n");
    if (out.oom || title.oom) {
        fti_buf_free(&out);
        fti_buf_free(&title);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    req->chat_context = fti_strndup(out.data ? out.data : "", out.len > 0 ? out.len - 1 : 0);
    req->chat_context_len = out.len > 0 ? out.len - 1 : 0;
    fti_buf_append(&out, title.data ? title.data : "", title.len);
    fti_buf_puts(&out, "\n\n");
    if (out.oom || !req->chat_context) {
        fti_buf_free(&out);
        fti_buf_free(&title);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    req->prompt = out.data;
    req->prompt_len = out.len;
    req->chat_title = title.data ? title.data : fti_strdup("");
    (void)n;
    return FTI_OK;
}

FTIDEF fti_result fti_api_parse_completion(fti_api_kind kind, const char *body, size_t len,
                                           int n_ctx, fti_api_request *req, const char **param,
                                           fti_error *err) {
    fti_json_doc *doc = NULL;
    const fti_json *root, *v;
    fti_json_opts jo;
    fti_result r;
    double d;
    int64_t i64;
    fti_error jerr;

    if (param) *param = NULL;
    if (!req) return fti_error_set(err, FTI_ERR_INVALID, "no request");
    memset(req, 0, sizeof *req);
    req->kind = kind;
    req->max_tokens = 16;
    req->temperature = 1.0f;
    req->top_p = 1.0f;
    req->use_retrieval = 1;
    if (n_ctx <= 0) n_ctx = 1;
    /* chat: up to half the context (the rest for the conversation); all of it would leave the
     * generator no room for the prompt */
    if (kind == FTI_API_CHAT) req->max_tokens = n_ctx > 1 ? n_ctx / 2 : 1;

    memset(&jo, 0, sizeof jo);
    jo.max_depth = 32;
    /* token-id prompts are one node per id: a body of ids may hold one per 2 bytes */
    jo.max_nodes = 65536 + len / 2;
    r = fti_json_parse(body, len, &jo, &doc, NULL, &jerr);
    if (r != FTI_OK) {
        if (param) *param = NULL;
        if (r == FTI_ERR_NOMEM) return fti_error_set(err, r, "out of memory");
        return fti_error_set(err, FTI_ERR_FORMAT, "request body is not valid JSON: %s", jerr.msg);
    }
    root = fti_json_root(doc);
    if (!root || root->type != FTI_JSON_OBJECT) {
        r = fti__api_bad(err, param, NULL, "request body must be a JSON object");
        goto fail;
    }
    v = fti_json_get(root, "model");
    if (v && v->type != FTI_JSON_NULL) {
        if (v->type != FTI_JSON_STRING) {
            r = fti__api_bad(err, param, "model", "'model' must be a string");
            goto fail;
        }
        req->model = fti_strndup(v->str, v->len);
    }
    if (kind == FTI_API_COMPLETION) {
        if ((r = fti__api_prompts(fti_json_get(root, "prompt"), req, param, err)) != FTI_OK)
            goto fail;
        v = fti_json_get(root, "echo");
        if (v && v->type != FTI_JSON_NULL && v->type != FTI_JSON_TRUE &&
            v->type != FTI_JSON_FALSE) {
            r = fti__api_bad(err, param, "echo", "'echo' must be a boolean");
            goto fail;
        }
        req->echo = v && v->type == FTI_JSON_TRUE;
    } else {
        /* chat has no echo (OpenAI's neither): refused rather than ignored */
        v = fti_json_get(root, "echo");
        if (v && v->type != FTI_JSON_NULL && v->type != FTI_JSON_FALSE) {
            r = fti__api_bad(err, param, "echo",
                             "'echo' is a /v1/completions parameter: chat completions do not "
                             "repeat the messages");
            goto fail;
        }
        r = fti__api_render_chat(fti_json_get(root, "messages"), req, param, err);
        if (r != FTI_OK) goto fail;
    }
    if (!req->prompt) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    i64 = req->max_tokens;
    /* 0 only with echo: the prompt scored, nothing generated (OpenAI's scoring request) */
    if ((r = fti__api_int(root, "max_tokens", req->echo ? 0 : 1, n_ctx, &i64, param, err)) !=
        FTI_OK)
        goto fail;
    if ((r = fti__api_int(root, "max_completion_tokens", req->echo ? 0 : 1, n_ctx, &i64, param,
                          err)) != FTI_OK)
        goto fail;
    req->max_tokens = (int)i64;
    for (i64 = 0; (size_t)i64 < req->n_prompts; i64++) { /* token ids: they must fit the context */
        const fti_api_prompt *pp = &req->prompts[i64];
        if (pp->ids && pp->n_ids > (size_t)(n_ctx - req->max_tokens)) {
            r = fti_error_set(err, FTI_ERR_LIMIT,
                              "This model's maximum context length is %d tokens, but %lu were "
                              "requested (%lu in prompt %ld, %d for the completion)", n_ctx,
                              (unsigned long)(pp->n_ids + (size_t)req->max_tokens),
                              (unsigned long)pp->n_ids, (long)i64, req->max_tokens);
            if (param) *param = "prompt";
            goto fail;
        }
    }
    d = req->temperature;
    if ((r = fti__api_num(root, "temperature", 0, 2, &d, param, err)) != FTI_OK) goto fail;
    req->temperature = (float)d;
    d = req->top_p;
    if ((r = fti__api_num(root, "top_p", 0, 1, &d, param, err)) != FTI_OK) goto fail;
    if (d <= 0) {
        r = fti__api_bad(err, param, "top_p", "'top_p' must be greater than 0");
        goto fail;
    }
    req->top_p = (float)d;
    i64 = 0;
    if ((r = fti__api_int(root, "top_k", 0, 1 << 20, &i64, param, err)) != FTI_OK) goto fail;
    req->top_k = (int)i64;
    d = 0;
    if ((r = fti__api_num(root, "presence_penalty", -2, 2, &d, param, err)) != FTI_OK) goto fail;
    req->presence_penalty = (float)d;
    d = 0;
    if ((r = fti__api_num(root, "frequency_penalty", -2, 2, &d, param, err)) != FTI_OK) goto fail;
    req->frequency_penalty = (float)d;
    i64 = 1;
    if ((r = fti__api_int(root, "n", 1, FTI_API_MAX_N, &i64, param, err)) != FTI_OK) goto fail;
    req->n = (int)i64;
    /* best_of: completions only (chat never had it; a chat body's 1 or null is harmless) */
    i64 = 0; /* absent */
    if ((r = fti__api_int(root, "best_of", 1, FTI_API_MAX_N, &i64, param, err)) != FTI_OK)
        goto fail;
    if (kind == FTI_API_CHAT && i64 > 1) {
        r = fti__api_bad(err, param, "best_of",
                         "'best_of' is a /v1/completions parameter: use 'n' for chat");
        goto fail;
    }
    if (kind == FTI_API_CHAT || i64 == 0) i64 = req->n;
    if (i64 < req->n) {
        char msg[120];
        snprintf(msg, sizeof msg, "'best_of' (%d) must be at least 'n' (%d)", (int)i64, req->n);
        r = fti__api_bad(err, param, "best_of", msg);
        goto fail;
    }
    req->best_of = (int)i64;
    v = fti_json_get(root, "seed");
    if (v && v->type != FTI_JSON_NULL) {
        i64 = 0;
        if ((r = fti__api_int(root, "seed", INT64_MIN, INT64_MAX, &i64, param, err)) != FTI_OK)
            goto fail;
        req->seed = (uint64_t)i64;
        req->has_seed = 1;
    }
    v = fti_json_get(root, "stream");
    if (v && v->type != FTI_JSON_NULL) {
        if (v->type != FTI_JSON_TRUE && v->type != FTI_JSON_FALSE) {
            r = fti__api_bad(err, param, "stream", "'stream' must be a boolean");
            goto fail;
        }
        req->stream = v->type == FTI_JSON_TRUE;
    }
    v = fti_json_get(root, "stream_options");
    if (v && v->type == FTI_JSON_OBJECT) {
        const fti_json *u = fti_json_get(v, "include_usage");
        req->include_usage = u && u->type == FTI_JSON_TRUE;
    } else if (v && v->type != FTI_JSON_NULL) {
        r = fti__api_bad(err, param, "stream_options", "'stream_options' must be an object");
        goto fail;
    }
    if (req->best_of > req->n && req->stream) {
        r = fti__api_bad(err, param, "best_of",
                         "'best_of' above 'n' cannot be streamed: the best candidates are known "
                         "only when all have finished");
        goto fail;
    }
    if ((r = fti__api_unsupported(root, param, err)) != FTI_OK) goto fail;
    if ((r = fti__api_logprobs(root, kind, req, param, err)) != FTI_OK) goto fail;
    if ((r = fti__api_logit_bias(root, req, param, err)) != FTI_OK) goto fail;
    v = fti_json_get(root, "stop");
    if (v && v->type != FTI_JSON_NULL) {
        const fti_json *s = v->type == FTI_JSON_ARRAY ? v->child : v;
        if (v->type == FTI_JSON_ARRAY && v->len > FTI_API_MAX_STOP) {
            r = fti__api_bad(err, param, "stop", "'stop' takes at most 4 sequences");
            goto fail;
        }
        for (; s; s = v->type == FTI_JSON_ARRAY ? s->next : NULL) {
            if (s->type != FTI_JSON_STRING || s->len == 0 || s->len > FTI_API_MAX_STOP_LEN ||
                memchr(s->str, 0, s->len)) { /* a NUL would cut it to another string */
                r = fti__api_bad(err, param, "stop",
                                 "'stop' must be a string or an array of non-empty strings of at "
                                 "most 64 bytes, without NUL");
                goto fail;
            }
            memcpy(req->stop[req->n_stop], s->str, s->len);
            req->stop[req->n_stop][s->len] = 0;
            req->n_stop++;
        }
    }
    v = fti_json_get(root, "fti_retrieval");
    if (v && (v->type == FTI_JSON_FALSE || v->type == FTI_JSON_TRUE))
        req->use_retrieval = v->type == FTI_JSON_TRUE;
    fti_json_free(doc);
    return FTI_OK;
fail:
    fti_json_free(doc);
    fti_api_request_free(req);
    return r;
}

FTIDEF void fti_api_request_free(fti_api_request *req) {
    if (!req) return;
    fti_free(req->model);
    fti_free(req->prompt);
    fti_free(req->chat_title);
    fti_free(req->chat_context);
    fti_free(req->bias_ids);
    fti_free(req->bias);
    if (req->prompts) {
        size_t i;
        for (i = 0; i < req->n_prompts; i++) {
            fti_free(req->prompts[i].text);
            fti_free(req->prompts[i].ids);
        }
        fti_free(req->prompts);
    }
    req->prompts = NULL;
    req->n_prompts = 0;
    req->bias_ids = NULL;
    req->bias = NULL;
    req->n_bias = 0;
    req->model = req->prompt = req->chat_title = req->chat_context = NULL;
}

FTIDEF void fti_api_write_error(fti_buf *out, const char *message, const char *type,
                                const char *param, const char *code) {
    fti_jw w;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "error");
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "message");
    fti_jw_str(&w, message ? message : "");
    fti_jw_key(&w, "type");
    fti_jw_str(&w, type ? type : "invalid_request_error");
    fti_jw_key(&w, "param");
    if (param) fti_jw_str(&w, param);
    else fti_jw_null(&w);
    fti_jw_key(&w, "code");
    if (code) fti_jw_str(&w, code);
    else fti_jw_null(&w);
    fti_jw_obj_end(&w);
    fti_jw_obj_end(&w);
}

static void fti__api_usage(fti_jw *w, const fti_api_result *r) {
    fti_jw_key(w, "usage");
    fti_jw_obj_begin(w);
    fti_jw_key(w, "prompt_tokens");
    fti_jw_int(w, r->prompt_tokens);
    fti_jw_key(w, "completion_tokens");
    fti_jw_int(w, r->completion_tokens);
    fti_jw_key(w, "total_tokens");
    fti_jw_int(w, (int64_t)r->prompt_tokens + r->completion_tokens);
    fti_jw_obj_end(w);
}

static void fti__api_header(fti_jw *w, const fti_api_result *r, const char *object) {
    fti_jw_key(w, "id");
    fti_jw_str(w, r->id ? r->id : "cmpl-0");
    fti_jw_key(w, "object");
    fti_jw_str(w, object);
    fti_jw_key(w, "created");
    fti_jw_int(w, r->created);
    fti_jw_key(w, "model");
    fti_jw_str(w, r->model ? r->model : "");
    fti_jw_key(w, "system_fingerprint");
    fti_jw_str(w, "fti-" FTI_VERSION_STRING);
}

static void fti__api_chunks(fti_buf *out, fti_jw *w, const fti_api_result *r) {
    /* the retrieval chunks: spliced in as raw JSON (the generator wrote it with fti_jw) */
    if (r->chunks_json && r->chunks_json[0]) {
        fti_jw_key(w, "fti_chunks");
        fti_buf_puts(out, r->chunks_json);
    }
}

/* Chat's {"token","logprob","bytes"} of one entry. */
static void fti__api_lp_entry(fti_jw *w, const fti_api_logprob *e) {
    size_t i;
    fti_jw_key(w, "token");
    fti_jw_strn(w, e->text, e->text_len);
    fti_jw_key(w, "logprob");
    fti_jw_num(w, e->logprob > -9999.0f ? e->logprob : -9999.0f); /* -inf: OpenAI's floor */
    fti_jw_key(w, "bytes");
    fti_jw_arr_begin(w);
    for (i = 0; i < e->text_len; i++) fti_jw_int(w, (unsigned char)e->text[i]);
    fti_jw_arr_end(w);
}

/* "logprobs": null, or the entries of r in the endpoint's form (stream chunks without entries:
 * null). Chat: {"content": [{token, logprob, bytes, top_logprobs: [...]}], "refusal": null};
 * completions: {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}. */
static void fti__api_logprobs_out(fti_jw *w, fti_api_kind kind, const fti_api_result *r,
                                  int chunk) {
    size_t i;
    int t;
    fti_jw_key(w, "logprobs");
    if (!r->logprobs || (chunk && !r->n_logprobs)) {
        fti_jw_null(w);
        return;
    }
    fti_jw_obj_begin(w);
    if (kind == FTI_API_CHAT) {
        fti_jw_key(w, "content");
        fti_jw_arr_begin(w);
        for (i = 0; i < r->n_logprobs; i++) {
            const fti_api_logprob *e = &r->lp[i];
            fti_jw_obj_begin(w);
            fti__api_lp_entry(w, e);
            fti_jw_key(w, "top_logprobs");
            fti_jw_arr_begin(w);
            for (t = 0; t < e->n_top; t++) {
                fti_jw_obj_begin(w);
                fti__api_lp_entry(w, &e->top[t]);
                fti_jw_obj_end(w);
            }
            fti_jw_arr_end(w);
            fti_jw_obj_end(w);
        }
        fti_jw_arr_end(w);
        fti_jw_key(w, "refusal");
        fti_jw_null(w);
    } else {
        fti_jw_key(w, "tokens");
        fti_jw_arr_begin(w);
        for (i = 0; i < r->n_logprobs; i++) fti_jw_strn(w, r->lp[i].text, r->lp[i].text_len);
        fti_jw_arr_end(w);
        fti_jw_key(w, "token_logprobs");
        fti_jw_arr_begin(w);
        for (i = 0; i < r->n_logprobs; i++) {
            if (r->lp[i].is_null) fti_jw_null(w);
            else fti_jw_num(w, r->lp[i].logprob > -9999.0f ? r->lp[i].logprob : -9999.0f);
        }
        fti_jw_arr_end(w);
        fti_jw_key(w, "top_logprobs");
        fti_jw_arr_begin(w);
        for (i = 0; i < r->n_logprobs; i++) {
            const fti_api_logprob *e = &r->lp[i];
            if (e->is_null) {
                fti_jw_null(w);
                continue;
            }
            fti_jw_obj_begin(w);
            for (t = 0; t < e->n_top; t++) {
                fti_jw_keyn(w, e->top[t].text, e->top[t].text_len);
                fti_jw_num(w, e->top[t].logprob > -9999.0f ? e->top[t].logprob : -9999.0f);
            }
            fti_jw_obj_end(w);
        }
        fti_jw_arr_end(w);
        fti_jw_key(w, "text_offset");
        fti_jw_arr_begin(w);
        for (i = 0; i < r->n_logprobs; i++) fti_jw_int(w, (int64_t)r->lp[i].offset);
        fti_jw_arr_end(w);
    }
    fti_jw_obj_end(w);
}

/* One choice object of a whole response (in_list: an entry of r->choices, which carries its own
 * chunks_json: a batch's prompt's). */
static void fti__api_choice(fti_buf *out, fti_jw *w, fti_api_kind kind, const fti_api_result *c,
                            int in_list) {
    fti_jw_obj_begin(w);
    fti_jw_key(w, "index");
    fti_jw_int(w, c->index);
    if (kind == FTI_API_CHAT) {
        fti_jw_key(w, "message");
        fti_jw_obj_begin(w);
        fti_jw_key(w, "role");
        fti_jw_str(w, "assistant");
        fti_jw_key(w, "content");
        fti_jw_strn(w, c->text ? c->text : "", c->text ? c->text_len : 0);
        fti_jw_obj_end(w);
    } else {
        fti_jw_key(w, "text");
        fti_jw_strn(w, c->text ? c->text : "", c->text ? c->text_len : 0);
    }
    fti__api_logprobs_out(w, kind, c, 0);
    fti_jw_key(w, "finish_reason");
    if (c->finish_reason) fti_jw_str(w, c->finish_reason);
    else fti_jw_null(w);
    if (in_list) fti__api_chunks(out, w, c);
    fti_jw_obj_end(w);
}

FTIDEF void fti_api_write_response(fti_buf *out, fti_api_kind kind, const fti_api_result *r) {
    fti_jw w;
    size_t i;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti__api_header(&w, r, kind == FTI_API_CHAT ? "chat.completion" : "text_completion");
    fti_jw_key(&w, "choices");
    fti_jw_arr_begin(&w);
    if (r->choices) {
        for (i = 0; i < r->n_choices; i++) fti__api_choice(out, &w, kind, &r->choices[i], 1);
    } else {
        fti__api_choice(out, &w, kind, r, 0);
    }
    fti_jw_arr_end(&w);
    fti__api_usage(&w, r);
    fti__api_chunks(out, &w, r);
    fti_jw_obj_end(&w);
}

FTIDEF void fti_api_write_chunk(fti_buf *out, fti_api_kind kind, const fti_api_result *r,
                                int flags) {
    fti_jw w;
    fti_buf_puts(out, "data: ");
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti__api_header(&w, r, kind == FTI_API_CHAT ? "chat.completion.chunk" : "text_completion");
    fti_jw_key(&w, "choices");
    fti_jw_arr_begin(&w);
    if (!(flags & FTI_API_CHUNK_USAGE)) {
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "index");
        fti_jw_int(&w, r->index);
        if (kind == FTI_API_CHAT) {
            fti_jw_key(&w, "delta");
            fti_jw_obj_begin(&w);
            if (flags & FTI_API_CHUNK_FIRST) {
                fti_jw_key(&w, "role");
                fti_jw_str(&w, "assistant");
            }
            if (r->text_len || (flags & FTI_API_CHUNK_FIRST)) {
                fti_jw_key(&w, "content");
                fti_jw_strn(&w, r->text ? r->text : "", r->text ? r->text_len : 0);
            }
            fti_jw_obj_end(&w);
        } else {
            fti_jw_key(&w, "text");
            fti_jw_strn(&w, r->text ? r->text : "", r->text ? r->text_len : 0);
        }
        fti__api_logprobs_out(&w, kind, r, 1);
        fti_jw_key(&w, "finish_reason");
        if (r->finish_reason) fti_jw_str(&w, r->finish_reason);
        else fti_jw_null(&w);
        fti_jw_obj_end(&w);
    }
    fti_jw_arr_end(&w);
    if (flags & FTI_API_CHUNK_USAGE) fti__api_usage(&w, r);
    if (flags & FTI_API_CHUNK_FIRST) fti__api_chunks(out, &w, r);
    fti_jw_obj_end(&w);
    fti_buf_puts(out, "\n\n");
}

FTIDEF void fti_api_write_done(fti_buf *out) { fti_buf_puts(out, "data: [DONE]\n\n"); }

/* === server: the generator's sampler === */

FTIDEF void fti_gen_sampler_opts(const fti_gen_params *p, fti_sampler_opts *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!p) return;
    out->temperature = p->temperature;
    out->top_p = p->top_p;
    out->top_k = p->top_k;
    out->seed = p->seed;
    out->presence_penalty = p->presence_penalty;
    out->frequency_penalty = p->frequency_penalty;
    /* OpenAI counts every token of the completion so far: a window as long as the completion
     * can get never drops one (the sampler's default, the last 64, would forget the oldest) */
    if (p->max_tokens > 0) out->penalty_last_n = (size_t)p->max_tokens;
}

FTIDEF fti_result fti_gen_check_ids(const int32_t *ids, size_t n, size_t n_vocab, long prompt,
                                    fti_error *err) {
    char where[64];
    size_t i;
    for (i = 0; i < n; i++) {
        if (ids[i] >= 0 && (size_t)ids[i] < n_vocab) continue;
        if (prompt >= 0)
            snprintf(where, sizeof where, "prompt %ld, position %lu", prompt, (unsigned long)i);
        else
            snprintf(where, sizeof where, "position %lu", (unsigned long)i);
        if (!n_vocab)
            return fti_error_set(err, FTI_ERR_INVALID, "token id %ld (%s) is not in this "
                                 "model's vocabulary: it has none", (long)ids[i], where);
        return fti_error_set(err, FTI_ERR_INVALID, "token id %ld (%s) is not in this model's "
                             "vocabulary: its %lu tokens are ids 0 to %lu", (long)ids[i], where,
                             (unsigned long)n_vocab, (unsigned long)(n_vocab - 1));
    }
    return FTI_OK;
}

/* === server: the echo generator === */

typedef struct fti__echo {
    char id[64];
    int n_ctx;
    unsigned step_us;
    int end_after;
    int fail_every;
    int n_started;
    char piece[64];
} fti__echo;

typedef struct fti__echo_seq {
    uint64_t state;
    int n_out;
    int32_t *ids;
    size_t n_ids;
    int logprobs, n_top; /* the request's; the step's alternatives below */
    float top_lp[FTI_API_MAX_TOP_LOGPROBS];
    const char *top_text[FTI_API_MAX_TOP_LOGPROBS];
    size_t top_len[FTI_API_MAX_TOP_LOGPROBS];
    /* echo_prompt: the prompt's bytes, its tokens and their alternatives (n_ids x n_top) */
    char *bytes;
    fti_gen_token *ptoks;
    float *p_lp;
    const char **p_text;
    size_t *p_len;
} fti__echo_seq;

static const char *const fti__echo_words[] = {
    "The", " twin", " writes", " in", " a", " voice", " that", " is", " almost", " its", " own",
    ",", " and", " the", " server", " keeps", " every", " word", " in", " order", "."};
#define FTI__ECHO_NW (sizeof(fti__echo_words) / sizeof(fti__echo_words[0]))

static const char *fti__echo_id(void *user) { return ((fti__echo *)user)->id; }
static int fti__echo_n_ctx(void *user) { return ((fti__echo *)user)->n_ctx; }
static int fti__echo_n_vocab(void *user) {
    (void)user;
    return 256;
}

static void fti__echo_end(void *user, void *seq);

static fti_result fti__echo_tokenize(void *user, const char *text, size_t len, int add_special,
                                     fti_tokens *out, fti_error *err) {
    size_t i;
    (void)user;
    (void)add_special; /* no BOS */
    for (i = 0; i < len; i++)
        if (fti_tokens_push(out, (unsigned char)text[i]) != FTI_OK)
            return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    return FTI_OK;
}

static fti_result fti__echo_detokenize(void *user, const int32_t *ids, size_t n, fti_buf *out,
                                       fti_error *err) {
    size_t i;
    fti_result r = fti_gen_check_ids(ids, n, 256, -1, err);
    (void)user;
    if (r != FTI_OK) return r;
    for (i = 0; i < n; i++) fti_buf_putc(out, (char)(unsigned char)ids[i]);
    return out->oom ? fti_error_set(err, FTI_ERR_NOMEM, "out of memory") : FTI_OK;
}

/* echo_prompt: every prompt byte as a token; with logprobs made up from the byte (-0.5 to
 * -1.25), the alternatives the words after it, 1 apart. 0 or FTI_ERR_NOMEM. */
static fti_result fti__echo_prompt_tokens(fti__echo_seq *s, int logprobs) {
    size_t i, n = s->n_ids, k, K = (size_t)s->n_top;
    s->ptoks = (fti_gen_token *)fti_calloc(n ? n : 1, sizeof *s->ptoks);
    if (logprobs && K) {
        s->p_lp = (float *)fti_calloc(n * K, sizeof *s->p_lp);
        s->p_text = (const char **)fti_calloc(n * K, sizeof *s->p_text);
        s->p_len = (size_t *)fti_calloc(n * K, sizeof *s->p_len);
        if (!s->p_lp || !s->p_text || !s->p_len) return FTI_ERR_NOMEM;
    }
    if (!s->ptoks) return FTI_ERR_NOMEM;
    for (i = 0; i < n; i++) {
        fti_gen_token *t = &s->ptoks[i];
        t->id = s->ids[i];
        t->text = s->bytes + i;
        t->text_len = 1;
        if (!logprobs || i == 0) continue;
        t->has_logprob = 1;
        t->logprob = -0.5f - 0.25f * (float)(s->ids[i] % 4);
        for (k = 0; k < K; k++) {
            const char *a = fti__echo_words[((size_t)s->ids[i] + k) % FTI__ECHO_NW];
            s->p_lp[i * K + k] = t->logprob - (float)k;
            s->p_text[i * K + k] = a;
            s->p_len[i * K + k] = strlen(a);
        }
        t->n_top = (int)K;
        if (K) {
            t->top_logprobs = s->p_lp + i * K;
            t->top_text = s->p_text + i * K;
            t->top_text_len = s->p_len + i * K;
        }
    }
    return FTI_OK;
}

static fti_result fti__echo_start(void *user, const char *prompt, size_t prompt_len,
                                  const fti_gen_params *p, void **seq, fti_gen_prompt_info *info,
                                  fti_error *err) {
    fti__echo *e = (fti__echo *)user;
    fti__echo_seq *s;
    size_t i;
    e->n_started++;
    if (e->fail_every > 0 && e->n_started % e->fail_every == 0)
        return fti_error_set(err, FTI_ERR_IO, "echo: injected failure");
    if (p->prompt_ids) { /* its tokens are bytes */
        fti_result r = fti_gen_check_ids(p->prompt_ids, p->n_prompt_ids, 256, -1, err);
        if (r != FTI_OK) return r;
        prompt_len = p->n_prompt_ids;
        prompt = NULL;
    } else if (p->echo_prompt && !prompt_len) { /* scored: no BOS to score it with */
        return fti_error_set(err, FTI_ERR_INVALID, FTI_GEN_EMPTY_PROMPT_MSG);
    }
    if (prompt_len + (size_t)p->max_tokens > (size_t)e->n_ctx)
        return fti_error_set(err, FTI_ERR_LIMIT,
                             "This model's maximum context length is %d tokens, but %lu were "
                             "requested (%lu in the prompt, %d for the completion)",
                             e->n_ctx, (unsigned long)(prompt_len + (size_t)p->max_tokens),
                             (unsigned long)prompt_len, p->max_tokens);
    s = (fti__echo_seq *)fti_calloc(1, sizeof *s);
    if (!s) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    s->ids = (int32_t *)fti_malloc((prompt_len ? prompt_len : 1) * sizeof(int32_t));
    s->bytes = (char *)fti_malloc(prompt_len + 1);
    if (!s->ids || !s->bytes) {
        fti__echo_end(user, s);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    for (i = 0; i < prompt_len; i++) {
        s->ids[i] = prompt ? (unsigned char)prompt[i] : p->prompt_ids[i];
        s->bytes[i] = (char)(unsigned char)s->ids[i];
    }
    s->n_ids = prompt_len;
    s->state = fti_hash64(s->bytes, prompt_len, p->seed) % FTI__ECHO_NW;
    s->logprobs = p->logprobs;
    s->n_top = p->top_logprobs < 0                          ? 0
               : p->top_logprobs > FTI_API_MAX_TOP_LOGPROBS ? FTI_API_MAX_TOP_LOGPROBS
                                                            : p->top_logprobs;
    memset(info, 0, sizeof *info);
    if (p->echo_prompt) {
        if (fti__echo_prompt_tokens(s, p->logprobs) != FTI_OK) {
            fti__echo_end(user, s);
            return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        }
        info->prompt_tokens = s->ptoks;
        info->n_prompt_tokens = s->n_ids;
    }
    info->ids = s->ids;
    info->n_tokens = prompt_len;
    info->nll_mean = -1;
    if (p->use_retrieval) {
        info->chunks_json = "[{\"id\":\"echo-0\",\"score\":1.0}]";
        info->n_chunks = 1;
    }
    *seq = s;
    return FTI_OK;
}

static void fti__echo_sleep(unsigned us) {
    struct timespec ts;
    if (!us) return;
    ts.tv_sec = (time_t)(us / 1000000u);
    ts.tv_nsec = (long)(us % 1000000u) * 1000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static fti_result fti__echo_step(void *user, void **seqs, size_t n, fti_gen_token *out,
                                 fti_error *err) {
    fti__echo *e = (fti__echo *)user;
    size_t i;
    (void)err;
    fti__echo_sleep(e->step_us);
    for (i = 0; i < n; i++) {
        fti__echo_seq *s = (fti__echo_seq *)seqs[i];
        const char *w = fti__echo_words[(s->state + (uint64_t)s->n_out) % FTI__ECHO_NW];
        memset(&out[i], 0, sizeof out[i]);
        s->n_out++;
        out[i].id = (int32_t)((s->state + (uint64_t)s->n_out) % FTI__ECHO_NW);
        out[i].text = w;
        out[i].text_len = strlen(w);
        out[i].is_end = e->end_after > 0 && s->n_out > e->end_after;
        if (out[i].is_end) out[i].text_len = 0;
        if (s->logprobs) { /* made up, but consistent: the word leads the next ones by 1 each,
                            * and its own depends on the word (so best_of has something to rank) */
            int k;
            uint64_t w0 = (s->state + (uint64_t)s->n_out - 1) % FTI__ECHO_NW;
            out[i].has_logprob = 1;
            out[i].logprob = -0.25f * (float)(1 + w0 % 4);
            for (k = 0; k < s->n_top; k++) {
                uint64_t wi = s->state + (uint64_t)s->n_out - 1 + (uint64_t)k;
                const char *a = fti__echo_words[wi % FTI__ECHO_NW];
                s->top_lp[k] = out[i].logprob - (float)k;
                s->top_text[k] = a;
                s->top_len[k] = strlen(a);
            }
            out[i].n_top = s->n_top;
            out[i].top_logprobs = s->top_lp;
            out[i].top_text = s->top_text;
            out[i].top_text_len = s->top_len;
        }
    }
    return FTI_OK;
}

static void fti__echo_end(void *user, void *seq) {
    fti__echo_seq *s = (fti__echo_seq *)seq;
    (void)user;
    if (!s) return;
    fti_free(s->ids);
    fti_free(s->bytes);
    fti_free(s->ptoks);
    fti_free(s->p_lp);
    fti_free(s->p_text);
    fti_free(s->p_len);
    fti_free(s);
}

static void fti__echo_release(void *user) { fti_free(user); }

FTIDEF fti_result fti_gen_echo_create(const fti_gen_echo_opts *opts, fti_gen *gen) {
    fti__echo *e;
    if (!gen) return FTI_ERR_INVALID;
    memset(gen, 0, sizeof *gen);
    e = (fti__echo *)fti_calloc(1, sizeof *e);
    if (!e) return FTI_ERR_NOMEM;
    snprintf(e->id, sizeof e->id, "%s", opts && opts->id ? opts->id : "fti-echo");
    e->n_ctx = opts && opts->n_ctx > 0 ? opts->n_ctx : 2048;
    e->step_us = opts ? opts->step_us : 0;
    e->end_after = opts ? opts->end_after : 0;
    e->fail_every = opts ? opts->fail_every : 0;
    gen->user = e;
    gen->model_id = fti__echo_id;
    gen->n_ctx = fti__echo_n_ctx;
    gen->seq_start = fti__echo_start;
    gen->step = fti__echo_step;
    gen->seq_end = fti__echo_end;
    gen->release = fti__echo_release;
    gen->n_vocab = fti__echo_n_vocab;
    gen->tokenize = fti__echo_tokenize;
    gen->detokenize = fti__echo_detokenize;
    return FTI_OK;
}

/* === server: batched decoding === */
/* The step is part 08's fti_session_eval_batch (weights read once per step for every sequence
 * through the multi-row quantized kernels); fti_batch_decoder is its older name, kept. */

struct fti_batch_decoder {
    fti_batch *b;
};

FTIDEF fti_result fti_batch_decoder_create(const fti_engine *e, size_t max_batch, size_t max_ctx,
                                           fti_batch_decoder **out, fti_error *err) {
    fti_batch_decoder *d;
    fti_result rc;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "batch decoder: bad arguments");
    *out = NULL;
    d = (fti_batch_decoder *)fti_calloc(1, sizeof *d);
    if (!d) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    rc = fti_batch_create(e, max_batch, max_ctx, &d->b, err);
    if (rc != FTI_OK) {
        fti_free(d);
        return rc;
    }
    *out = d;
    return FTI_OK;
}

FTIDEF void fti_batch_decoder_free(fti_batch_decoder *d) {
    if (!d) return;
    fti_batch_free(d->b);
    fti_free(d);
}

FTIDEF fti_result fti_batch_decode(fti_batch_decoder *d, fti_session *const *ss,
                                   const int32_t *tokens, size_t B, fti_pool *pool,
                                   fti_error *err) {
    return fti_session_eval_batch(d ? d->b : NULL, ss, tokens, B, pool, err);
}

/* === server: sockets, connections and the scheduler === */

#if FTI__HAVE_THREADS && !defined(_WIN32)
#define FTI__SERVER 1
#else
#define FTI__SERVER 0
#endif

#if FTI__SERVER
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* programs ignore SIGPIPE themselves (fti-serve does) */
#endif

/* The stop flag is written from a signal handler or another thread: atomics where the compiler
 * has them (lock-free on int, so async-signal-safe), else volatile. */
#if FTI__ATOMICS
#define FTI__STOP_SET(s) __atomic_store_n(&(s)->stop_flag, 1, __ATOMIC_RELEASE)
#define FTI__STOPPING(s) __atomic_load_n(&(s)->stop_flag, __ATOMIC_ACQUIRE)
#else
#define FTI__STOP_SET(s) ((s)->stop_flag = 1)
#define FTI__STOPPING(s) ((s)->stop_flag)
#endif

#define FTI__DRAIN_MS 30000
#define FTI__LINGER_MS 1000
#define FTI__IN_SLACK 65536

enum { FTI__JOB_QUEUED = 0, FTI__JOB_ACTIVE, FTI__JOB_DONE };
enum { FTI__C_HEAD = 0, FTI__C_BODY, FTI__C_BUSY, FTI__C_CLOSING, FTI__C_LINGER };

typedef struct fti__genref {
    fti_gen gen;
    int refs;      /* being current + sequences admitted on it */
    char id[128];
    int n_ctx;
    int n_vocab;   /* 0: unknown (text prompts only) */
    int64_t created; /* gen.created */
} fti__genref;

typedef struct fti__conn fti__conn;

/* A generated token's log-probability as a job keeps it (req.logprobs): where it starts in the
 * text, its bytes and its alternatives' (offsets into the job's lp_bytes, which grows). */
typedef struct fti__lp_rec {
    size_t off;    /* in the choice's text (under echo: the prompt's, then the completion's) */
    size_t b0, bn; /* its bytes: lp_bytes[b0, b0 + bn) */
    size_t a0;     /* its alternatives: lp_alt[a0, a0 + n_top) */
    int n_top;
    int is_null;   /* an echoed prompt's first token: nothing predicts it */
    float lp;
} fti__lp_rec;

typedef struct fti__lp_alt {
    size_t b0, bn;
    float lp;
} fti__lp_alt;

/* One sequence of a job: a choice the client gets (n of them per prompt), or with best_of a
 * candidate. Choice k of a job is candidate k % best_of of prompt k / best_of. */
typedef struct fti__choice {
    struct fti__job *job;
    int index;                         /* 0..n_ch-1 (best_of: renumbered when ranked, prompt i's
                                          n best as i*n..i*n+n-1) */
    int prompt;                        /* its prompt in req.prompts */
    size_t lp_base;                    /* echo: the echoed prompt's bytes before its text (the
                                          log-probabilities' offsets count them) */
    void *seq;
    int ended;                         /* scheduler only: finished, not yet retired */
    fti_buf text;                      /* completion text so far */
    size_t emitted;                    /* text bytes already sent as stream chunks */
    char hold[4];                      /* stream with echo: the prompt's last bytes, the start
                                          of a UTF-8 character the completion may finish, sent
                                          in front of its first text (n_hold of them) */
    size_t n_hold;
    int n_tokens;
    const char *finish;
    double lp_sum;                     /* its tokens' log-probabilities summed (best_of ranks by
                                          lp_sum / lp_count) */
    size_t lp_count;
    fti__lp_rec *lp;   /* req.logprobs: the generated tokens' (n_lp, lp_cap) */
    size_t n_lp, lp_cap, lp_emitted;
    fti__lp_alt *lp_alt;
    size_t n_alt, alt_cap;
    fti_buf lp_bytes;  /* their bytes (oom: the answer is a 500, as for the text) */
} fti__choice;

typedef struct fti__job {
    struct fti__job *next, *prev;      /* srv->jobs (all jobs) */
    struct fti__job *qnext;            /* srv->queue */
    fti__conn *conn;                   /* NULL once the connection is gone */
    fti_api_request req;
    const char *endpoint;
    char id[48];
    int64_t created;
    fti__genref *g;
    int state;
    int cancelled;
    int status;                        /* 0 until known; 200 once started */
    int http_started;                  /* I/O side: streaming headers sent */
    fti__choice *ch;                   /* every prompt's best_of sequences (n_ch) */
    int n_ch;
    int n_started;                     /* scheduler (mu): choices admitted so far. A job of at
                                          most max_batch sequences is admitted whole; a larger
                                          batch of prompts in turns of whole prompts (a prompt's
                                          choices start together), the latest turn_k0..turn_k1,
                                          and it stays at the queue's head until all are */
    int turn_k0, turn_k1;
    int n_live;                        /* scheduler: started and not yet retired */
    int n_tokens;                      /* completion tokens over all choices */
    int prompt_tokens;                 /* over all prompts */
    fti_buf *echo;                     /* req.echo: each prompt's echoed text (n_prompts) */
    size_t n_prompts;                  /* req.n_prompts, at least 1 */
    const char *finish;                /* the request's (log): "error", else choice 0's */
    fti_error fail;                    /* a failed step, or a later turn's prompt that could not
                                          start (code != FTI_OK): the answer is its error once
                                          every started choice has retired */
    int fail_status;                   /* its HTTP status (0: 500; a stream's is 200 already) */
    const char *fail_param, *fail_code;
    fti_buf out;                       /* bytes for the I/O thread */
    uint64_t t_start_ns, t_first_ns;
    /* what the monitor sees, summed over every prompt of a batch (the scheduler's) */
    size_t byte_fallback;
    size_t prompt_bytes;
    double nll_mean;    /* the one prompt's; a batch: nll_sum / nll_w over its prompts */
    size_t nll_tokens;  /* the tokens nll_mean is over, 0: the prompt's */
    double nll_sum;
    size_t nll_w;
    uint32_t len_hist[FTI_DRIFT_LEN_BINS]; /* a batch: its prompts per fti_drift_len_bin */
    uint32_t ref_epoch; /* the monitor's reference epoch when the job was admitted */
    char *chunks_json;  /* one prompt's retrieval chunks (the response's fti_chunks) */
    char **p_chunks;    /* a batch: each prompt's (n_prompts entries, NULL: none) */
    int n_chunks;       /* over every prompt */
    int has_buckets;
    uint32_t buckets[FTI_DRIFT_BUCKETS];
} fti__job;

struct fti__conn {
    int fd;
    int phase;
    fti_buf in;
    size_t scanned;          /* bytes of in already checked for a newline */
    int parse_pending;       /* new line ends since the last head parse */
    size_t long_parse_len;   /* in.len at the last parse made for the length alone */
    fti_http_head *head;
    long head_len;
    fti_http_chunked ch;
    fti_buf chunked_body;
    fti_buf out;
    size_t out_off;
    int first_request;
    int close_after;
    int sent_continue;
    int peer_eof;
    uint64_t t_head_ms;      /* when the current head started (deadline origin) */
    uint64_t t_body_ms;
    uint64_t t_idle_ms;
    uint64_t t_write_ms;     /* last write progress */
    uint64_t t_linger_ms;
    fti__job *job;
};

/* The scheduler thread's scratch, made by fti_server_run before it starts the thread (a server
 * whose scheduler could not get it would never serve again) and freed after it ends. */
typedef struct fti__sched_buf {
    fti__choice **batch;
    fti__job **admit;
    void **seqs;
    fti_gen_token *toks;
    fti__genref **dead;
} fti__sched_buf;

static void fti__sched_buf_free(fti__sched_buf *b) {
    fti_free(b->batch);
    fti_free(b->admit);
    fti_free(b->seqs);
    fti_free(b->toks);
    fti_free(b->dead);
    memset(b, 0, sizeof *b);
}

/* 1 when every array of a batch of cap is made, else 0 with nothing kept. */
static int fti__sched_buf_alloc(fti__sched_buf *b, size_t cap) {
    b->batch = (fti__choice **)fti_calloc(cap + 1, sizeof *b->batch);
    b->admit = (fti__job **)fti_calloc(cap + 1, sizeof *b->admit);
    b->seqs = (void **)fti_calloc(cap + 1, sizeof *b->seqs);
    b->toks = (fti_gen_token *)fti_calloc(cap + 1, sizeof *b->toks);
    b->dead = (fti__genref **)fti_calloc(cap * 2 + 2, sizeof *b->dead);
    if (b->batch && b->admit && b->seqs && b->toks && b->dead) return 1;
    fti__sched_buf_free(b);
    return 0;
}

struct fti_server {
    fti_server_opts o;
    fti_http_limits lim;
    char host[256];
    char inst[72];     /* the instance name or "" */
    char inst_hdr[512]; /* "X-Fti-Instance: NAME\r\n" or "", then the CORS fields or "" */
    char cors[208];     /* the CORS origin (o.cors_origin points here) */
    int listen_fd;
    int port;
    int wake_rd, wake_wr;
    int reserve_fd;
    volatile int stop_flag;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int mu_ok, cv_ok;
    pthread_t sched;
    fti__sched_buf sb;
    int sched_started;
    int sched_stop;
    int wake_pending;
    fti__genref *cur;
    fti__job *jobs;          /* every live job */
    fti__job *qhead, *qtail;
    int n_queued, n_active;
    fti__conn **conns;
    int n_conns;
    struct pollfd *pfds;
    uint64_t accept_pause_until_ms;
    uint64_t job_counter;
    fti_server_stats st;
};

static uint64_t fti__now_ms(void) { return fti_time_ns() / 1000000u; }
/* Milliseconds from t to now; 0 when t is later (stamped after `now` was read). */
static uint64_t fti__since(uint64_t now, uint64_t t) { return now > t ? now - t : 0; }

static void fti__srv_log(fti_server *s, fti_log_level lv, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fti__srv_log(fti_server *s, fti_log_level lv, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    if (!s->o.log) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->o.log(s->o.log_user, lv, msg);
}

static void fti__wake_io(fti_server *s) {
    /* called with mu held */
    if (!s->wake_pending) {
        char c = 'w';
        s->wake_pending = 1;
        if (write(s->wake_wr, &c, 1) < 0) {
            /* the pipe is full: the loop is awake anyway */
        }
    }
}

static int fti__set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

/* Drops one reference to a generator (mu held); returns it when it must be released. */
static fti__genref *fti__gen_unref(fti__genref *g) {
    if (g && --g->refs == 0) return g;
    return NULL;
}

static void fti__gen_release(fti__genref *g) {
    if (!g) return;
    if (g->gen.release) g->gen.release(g->gen.user);
    fti_free(g);
}

static fti__genref *fti__gen_wrap(const fti_gen *gen) {
    fti__genref *g = (fti__genref *)fti_calloc(1, sizeof *g);
    const char *id;
    if (!g) return NULL;
    g->gen = *gen;
    g->refs = 1;
    id = gen->model_id ? gen->model_id(gen->user) : NULL;
    snprintf(g->id, sizeof g->id, "%s", id ? id : "fti");
    g->n_ctx = gen->n_ctx ? gen->n_ctx(gen->user) : 2048;
    if (g->n_ctx <= 0) g->n_ctx = 1;
    g->created = gen->created > 0 ? gen->created : 0;
    g->n_vocab = gen->n_vocab ? gen->n_vocab(gen->user) : 0;
    if (g->n_vocab < 0) g->n_vocab = 0;
    return g;
}

/* --- responses -------------------------------------------------------------------------------- */

static void fti__respond(fti_server *s, fti__conn *c, int status, const char *ctype,
                         const char *body, size_t n, const char *extra_headers) {
    if (status >= 400 && status != 404 && status != 405) c->close_after = 1;
    fti_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %lu\r\n%s%s%s",
                   status, fti_http_reason(status), ctype, (unsigned long)n,
                   c->close_after ? "Connection: close\r\n" : "",
                   extra_headers ? extra_headers : "", s->inst_hdr);
    if (!c->close_after && c->head && c->head->version_minor == 0)
        fti_buf_puts(&c->out, "Connection: keep-alive\r\n");
    fti_buf_puts(&c->out, "Cache-Control: no-store\r\n\r\n");
    fti_buf_append(&c->out, body, n);
}

/* An OpenAI error body with its status; code (e.g. "model_not_found") may be NULL. */
static void fti__respond_error_code(fti_server *s, fti__conn *c, int status, const char *msg,
                                    const char *type, const char *param, const char *code) {
    fti_buf b;
    memset(&b, 0, sizeof b);
    fti_api_write_error(&b, msg, type, param, code);
    fti__respond(s, c, status, "application/json", b.data ? b.data : "", b.len,
                 status == 503 ? "Retry-After: 1\r\n" : NULL);
    fti_buf_free(&b);
}

static void fti__respond_error(fti_server *s, fti__conn *c, int status, const char *msg,
                               const char *type, const char *param) {
    fti__respond_error_code(s, c, status, msg, type, param, NULL);
}

/* 405 with the Allow field it must carry (RFC 9110 15.5.6): the methods `path` takes. */
static void fti__respond_405(fti_server *s, fti__conn *c, const char *msg, const char *allow) {
    char hdr[64];
    fti_buf b;
    memset(&b, 0, sizeof b);
    fti_api_write_error(&b, msg, "invalid_request_error", NULL, NULL);
    snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
    fti__respond(s, c, 405, "application/json", b.data ? b.data : "", b.len, hdr);
    fti_buf_free(&b);
}

/* OPTIONS: 204 with Allow and no body (a 204 has no Content-Length either). With CORS on, also
 * a preflight's answer: the methods, the request headers the browser asks for (echoed when
 * they are a plain list of field names, else the ones OpenAI's clients send) and a max age. */
static void fti__respond_options(fti_server *s, fti__conn *c, const char *allow) {
    fti_buf_printf(&c->out, "HTTP/1.1 204 No Content\r\nAllow: %s\r\n%s%s", allow,
                   c->close_after ? "Connection: close\r\n" : "", s->inst_hdr);
    if (s->o.cors_origin) {
        const char *req = "Authorization, Content-Type";
        size_t i, n = strlen(req);
        for (i = 0; i < c->head->n_fields; i++) {
            const fti_http_field *f = &c->head->fields[i];
            const char *v = c->in.data + f->value.off;
            size_t k;
            if (!fti__http_ieq((const unsigned char *)c->in.data + f->name.off, f->name.len,
                               "access-control-request-headers") ||
                !f->value.len || f->value.len > 1024)
                continue;
            for (k = 0; k < f->value.len; k++)
                if (!((v[k] >= 'a' && v[k] <= 'z') || (v[k] >= 'A' && v[k] <= 'Z') ||
                      (v[k] >= '0' && v[k] <= '9') || v[k] == '-' || v[k] == '_' ||
                      v[k] == ',' || v[k] == ' '))
                    break;
            if (k == f->value.len) {
                req = v;
                n = f->value.len;
            }
        }
        fti_buf_printf(&c->out, "Access-Control-Allow-Methods: %s\r\nAccess-Control-Allow-Headers:"
                       " %.*s\r\nAccess-Control-Max-Age: 600\r\n", allow, (int)n, req);
    }
    if (!c->close_after && c->head && c->head->version_minor == 0)
        fti_buf_puts(&c->out, "Connection: keep-alive\r\n");
    fti_buf_puts(&c->out, "Cache-Control: no-store\r\n\r\n");
}

/* A 200 with the body built in b, or a 500 when building it ran out of memory. */
static void fti__respond_built(fti_server *s, fti__conn *c, const char *ctype, const fti_buf *b) {
    if (b->oom) fti__respond_error(s, c, 500, "out of memory", "server_error", NULL);
    else fti__respond(s, c, 200, ctype, b->data ? b->data : "", b->len, NULL);
}

static const char fti__dashboard_html[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>fti twin</title>"
    "<meta name=\"viewport\" content=\"width=device-width\"><style>"
    "body{font:15px system-ui,sans-serif;margin:0;background:#f6f5f1;color:#222}"
    "header{background:#2d3a4a;color:#fff;padding:10px 20px}h1{font-size:18px;margin:0}"
    "main{display:grid;grid-template-columns:1fr 1fr;gap:16px;padding:16px 20px}"
    ".cards{display:grid;grid-template-columns:repeat(3,1fr);gap:8px}"
    ".card{background:#fff;border-radius:6px;padding:8px 10px;box-shadow:0 1px 2px #0002}"
    ".card b{display:block;font-size:20px}.card span{font-size:12px;color:#666}"
    ".ok{color:#2a7a2a}.warn{color:#b07000}.alert{color:#b00020}"
    "textarea{width:100%;height:90px;box-sizing:border-box}"
    "#out{white-space:pre-wrap;background:#fff;min-height:160px;padding:8px;border-radius:6px}"
    "</style></head><body><header><h1>fti &mdash; <span id=\"model\">model</span></h1></header>"
    "<main><section><h2>Metrics</h2><div class=\"cards\" id=\"cards\"></div>"
    "<h2>Drift</h2><div class=\"cards\" id=\"drift\"></div></section>"
    "<section><h2>Talk to the twin</h2><textarea id=\"prompt\">The</textarea>"
    "<p><button id=\"go\">Send</button> max tokens <input id=\"mt\" value=\"64\" size=\"4\"></p>"
    "<div id=\"out\"></div></section></main><script>\n"
    "function parse(t){var m={};t.split('\\n').forEach(function(l){if(!l||l[0]=='#')return;"
    "var i=l.lastIndexOf(' ');var k=l.slice(0,i),v=parseFloat(l.slice(i+1));m[k]=(m[k]||0)+v;"
    "var b=k.indexOf('{');if(b>0){var n=k.slice(0,b);m[n]=(m[n]||0)+v;}});return m;}\n"
    "function card(l,v,c){return '<div class=\"card\"><b class=\"'+(c||'')+'\">'+v+"
    "'</b><span>'+l+'</span></div>';}\n"
    "function f(x,d){return (x===undefined||isNaN(x))?'-':x.toFixed(d);}\n"
    "function refresh(){fetch('/metrics').then(function(r){return r.text();}).then(function(t){"
    "var m=parse(t);var lv=m['fti_drift_level']||0;var cls=['ok','warn','alert'][lv];"
    "var p50=m['fti_request_duration_seconds_sum']/(m['fti_request_duration_seconds_count']||1);"
    "document.getElementById('cards').innerHTML=card('requests',f(m['fti_requests_total'],0))+"
    "card('tokens/s',f(m['fti_tokens_per_second'],1))+"
    "card('active',f(m['fti_active_sequences'],0))+"
    "card('queued',f(m['fti_queue_depth'],0))+card('connections',f(m['fti_connections'],0))+"
    "card('mean latency ms',f(1000*p50,1));"
    "document.getElementById('drift').innerHTML=card('level',['ok','warn','alert'][lv],cls)+"
    "card('PSI tokens',f(m['fti_drift_psi{dist=\"tokens\"}'],3))+"
    "card('JS tokens',f(m['fti_drift_js{dist=\"tokens\"}'],3))+"
    "card('PSI length',f(m['fti_drift_psi{dist=\"length\"}'],3))+"
    "card('byte fallback',f(m['fti_drift_byte_fallback_share'],3))+"
    "card('ppl ratio',f(m['fti_drift_perplexity_ratio'],2));"
    "document.body.setAttribute('data-loaded','1');}).catch(function(){});"
    "fetch('/v1/models').then(function(r){return r.json();}).then(function(j){"
    "document.getElementById('model').textContent=j.data[0].id;}).catch(function(){});}\n"
    "refresh();setInterval(refresh,2000);\n"
    "document.getElementById('go').onclick=function(){var o=document.getElementById('out');"
    "o.textContent='';fetch('/v1/completions',{method:'POST',headers:{'Content-Type':"
    "'application/json'},body:JSON.stringify({prompt:document.getElementById('prompt').value,"
    "max_tokens:parseInt(document.getElementById('mt').value)||64,stream:true})}).then("
    "function(r){if(!r.ok)return r.json().then(function(j){o.textContent=j.error.message;})"
    ".catch(function(){o.textContent='HTTP '+r.status;});" /* a 400 or 503 is JSON, not SSE */
    "var rd=r.body.getReader(),dec=new TextDecoder(),buf='';function pump(){"
    "return rd.read().then(function(x){if(x.done)return;buf+=dec.decode(x.value,{stream:true});"
    "var i;while((i=buf.indexOf('\\n\\n'))>=0){var ev=buf.slice(0,i);buf=buf.slice(i+2);"
    "if(ev.indexOf('data: ')!=0)continue;var d=ev.slice(6);if(d=='[DONE]')return;"
    "try{var j=JSON.parse(d);if(j.error){o.textContent=j.error.message;return;}"
    "o.textContent+=j.choices[0].text;}catch(e){}}return pump();});}return pump();})"
    ".catch(function(e){o.textContent=String(e);});};\n"
    "</script></body></html>\n";

/* --- jobs (mu held unless noted) -------------------------------------------------------------- */

static void fti__job_free(fti__job *j) {
    int k;
    fti_api_request_free(&j->req);
    for (k = 0; k < j->n_ch; k++) {
        fti__choice *c = &j->ch[k];
        fti_free(c->lp);
        fti_free(c->lp_alt);
        fti_buf_free(&c->lp_bytes);
        fti_buf_free(&c->text);
    }
    fti_free(j->ch);
    if (j->echo)
        for (k = 0; (size_t)k < j->n_prompts; k++) fti_buf_free(&j->echo[k]);
    fti_free(j->echo);
    fti_buf_free(&j->out);
    fti_free(j->chunks_json);
    if (j->p_chunks)
        for (k = 0; (size_t)k < j->n_prompts; k++) fti_free(j->p_chunks[k]);
    fti_free(j->p_chunks);
    fti_free(j);
}

static void fti__job_unlink(fti_server *s, fti__job *j) {
    if (j->prev) j->prev->next = j->next;
    else s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
}

/* 1 when a choice's text or log-probabilities ran out of memory. */
static int fti__job_oom(const fti__job *j) {
    int k;
    for (k = 0; k < j->n_ch; k++)
        if (j->ch[k].text.oom || j->ch[k].lp_bytes.oom) return 1;
    for (k = 0; j->echo && (size_t)k < j->n_prompts; k++)
        if (j->echo[k].oom) return 1;
    return 0;
}

/* What choice c reports with text[0, n): usage counts the prompt once and the completion tokens
 * of every choice (OpenAI's); the retrieval chunks ride on choice 0's. */
static fti_api_result fti__job_result(fti__choice *c, const char *text, size_t n) {
    fti__job *j = c->job;
    fti_api_result r;
    memset(&r, 0, sizeof r);
    r.id = j->id;
    r.model = j->g ? j->g->id : "";
    r.created = j->created;
    r.text = text;
    r.text_len = n;
    r.prompt_tokens = j->prompt_tokens;
    r.completion_tokens = j->n_tokens;
    r.chunks_json = c->index == 0 ? j->chunks_json : NULL;
    r.logprobs = j->req.logprobs;
    r.index = c->index;
    return r;
}

/* Longest suffix of text that is a proper prefix of a stop string (held back while streaming). */
static size_t fti__stop_holdback(const fti__choice *c) {
    const fti_api_request *q = &c->job->req;
    size_t k, best = 0;
    for (k = 0; k < q->n_stop; k++) {
        size_t sl = strlen(q->stop[k]), m;
        for (m = sl - 1; m > best; m--)
            if (m <= c->text.len && memcmp(c->text.data + c->text.len - m, q->stop[k], m) == 0) {
                best = m;
                break;
            }
    }
    return best;
}

/* Keeps token t's log-probability (it starts at byte off of the text). An echoed prompt's token
 * without one (prompt: 1) is kept as a null entry. */
static void fti__job_lp_add(fti__choice *c, const fti_gen_token *t, size_t off, int prompt) {
    fti__lp_rec *rec;
    int k, n_top = t->n_top < 0 || !t->has_logprob ? 0 : t->n_top;
    if (!c->job->req.logprobs || (!t->has_logprob && !prompt) || c->lp_bytes.oom) return;
    if (n_top > c->job->req.top_logprobs) n_top = c->job->req.top_logprobs;
    if (n_top && (!t->top_logprobs || !t->top_text || !t->top_text_len)) n_top = 0;
    if (c->n_lp == c->lp_cap) {
        size_t cap = c->lp_cap ? 2 * c->lp_cap : 16;
        fti__lp_rec *nl = (fti__lp_rec *)fti_realloc(c->lp, cap * sizeof *nl);
        if (!nl) goto oom;
        c->lp = nl;
        c->lp_cap = cap;
    }
    if (c->n_alt + (size_t)n_top > c->alt_cap) {
        size_t cap = c->alt_cap ? 2 * c->alt_cap : 64;
        fti__lp_alt *na;
        while (cap < c->n_alt + (size_t)n_top) cap *= 2;
        na = (fti__lp_alt *)fti_realloc(c->lp_alt, cap * sizeof *na);
        if (!na) goto oom;
        c->lp_alt = na;
        c->alt_cap = cap;
    }
    rec = &c->lp[c->n_lp++];
    rec->off = off;
    rec->lp = t->has_logprob ? t->logprob : 0.0f;
    rec->is_null = !t->has_logprob;
    rec->b0 = c->lp_bytes.len;
    rec->bn = t->text ? t->text_len : 0;
    fti_buf_append(&c->lp_bytes, t->text ? t->text : "", rec->bn);
    rec->a0 = c->n_alt;
    rec->n_top = n_top;
    for (k = 0; k < n_top; k++) {
        fti__lp_alt *a = &c->lp_alt[c->n_alt++];
        a->lp = t->top_logprobs[k];
        a->b0 = c->lp_bytes.len;
        a->bn = t->top_text[k] ? t->top_text_len[k] : 0;
        fti_buf_append(&c->lp_bytes, t->top_text[k] ? t->top_text[k] : "", a->bn);
    }
    return;
oom:
    c->lp_bytes.oom = 1;
}

/* The records from lp_emitted of the tokens that start in text[0, upto) (a token without bytes:
 * at upto too), as the writers' entries (*view, freed by the caller; NULL when none or out of
 * memory). Returns how many; lp_emitted moves past them. */
static size_t fti__job_lp_view(fti__choice *c, size_t upto, fti_api_logprob **view) {
    size_t i0 = c->lp_emitted, i1 = i0, n_alt = 0, i, k;
    fti_api_logprob *v, *alts;
    *view = NULL;
    while (i1 < c->n_lp && (c->lp[i1].off < upto || (!c->lp[i1].bn && c->lp[i1].off <= upto)))
        n_alt += (size_t)c->lp[i1++].n_top;
    c->lp_emitted = i1;
    if (i1 == i0 || c->lp_bytes.oom) return 0;
    v = (fti_api_logprob *)fti_calloc(i1 - i0 + n_alt, sizeof *v);
    if (!v) {
        c->lp_bytes.oom = 1;
        return 0;
    }
    alts = v + (i1 - i0);
    for (i = i0; i < i1; i++) {
        const fti__lp_rec *rec = &c->lp[i];
        fti_api_logprob *e = &v[i - i0];
        e->text = c->lp_bytes.data + rec->b0;
        e->text_len = rec->bn;
        e->logprob = rec->lp;
        e->is_null = rec->is_null;
        e->offset = rec->off;
        e->n_top = rec->n_top;
        e->top = alts;
        for (k = 0; k < (size_t)rec->n_top; k++, alts++) {
            const fti__lp_alt *a = &c->lp_alt[rec->a0 + k];
            alts->text = c->lp_bytes.data + a->b0;
            alts->text_len = a->bn;
            alts->logprob = a->lp;
        }
    }
    *view = v;
    return i1 - i0;
}

/* Bytes at the end of text[0, upto) that may start a UTF-8 character still coming. The echoed
 * prompt's held-back bytes count in front of the text until they are sent (a completion's first
 * token may be the rest of the prompt's last character, or only part of the rest). */
static size_t fti__choice_utf8_tail(const fti__choice *c, size_t upto) {
    unsigned char tmp[8];
    size_t tail;
    /* (fti_utf8_incomplete_tail looks at 3 bytes at most) */
    if (!c->n_hold || upto >= 3)
        return fti_utf8_incomplete_tail((const unsigned char *)c->text.data, upto);
    memcpy(tmp, c->hold, c->n_hold);
    if (upto) memcpy(tmp + c->n_hold, c->text.data, upto);
    tail = fti_utf8_incomplete_tail(tmp, c->n_hold + upto);
    return tail < upto ? tail : upto;
}

/* Emits stream chunks for text[emitted..upto) of choice c, after the echo's held-back bytes;
 * last: the choice has finished (those bytes go now, even with no text after them). */
static void fti__job_emit(fti__choice *c, size_t upto, int last) {
    fti__job *j = c->job;
    fti_api_result r;
    fti_api_logprob *view = NULL;
    fti_buf piece;
    size_t n = upto > c->emitted ? upto - c->emitted : 0;
    const char *p = n ? c->text.data + c->emitted : "";
    if (!j->req.stream || (!n && !(last && c->n_hold))) return;
    memset(&piece, 0, sizeof piece);
    if (c->n_hold) { /* the start of the prompt's last character, then the text */
        fti_buf_append(&piece, c->hold, c->n_hold);
        fti_buf_append(&piece, p, n);
        if (piece.oom) j->out.oom = 1; /* the stream is cut: it ends unfinished */
        p = piece.data ? piece.data : "";
        n = piece.len;
        c->n_hold = 0;
    }
    r = fti__job_result(c, p, n);
    if (j->req.logprobs) r.n_logprobs = fti__job_lp_view(c, c->lp_base + upto, &view);
    r.lp = view;
    fti_api_write_chunk(&j->out, j->req.kind, &r, 0);
    fti_free(view);
    fti_buf_free(&piece);
    if (upto > c->emitted) c->emitted = upto;
}

/* The stream events of a choice that just started: chat's first chunk (the role), or with
 * echo the prompt as the first text of a completion. A prompt that ends inside a UTF-8
 * character (its last token holds part of one) keeps that character's start back for the
 * completion's first chunk, so the stream's bytes are the whole response's, not two U+FFFD. */
static void fti__job_stream_start(fti__choice *c) {
    fti__job *j = c->job;
    fti_api_result res;
    if (!j->req.stream) return;
    if (j->req.kind == FTI_API_CHAT) {
        res = fti__job_result(c, "", 0);
        fti_api_write_chunk(&j->out, j->req.kind, &res, FTI_API_CHUNK_FIRST);
    } else if (j->req.echo && j->echo && (j->echo[c->prompt].len || c->n_lp)) {
        /* the prompt, with its tokens' log-probabilities (echo with logprobs) */
        const fti_buf *e = &j->echo[c->prompt];
        fti_api_logprob *view = NULL;
        size_t n = e->len;
        c->n_hold = fti_utf8_incomplete_tail((const unsigned char *)e->data, e->len);
        n -= c->n_hold;
        if (c->n_hold) memcpy(c->hold, e->data + n, c->n_hold);
        res = fti__job_result(c, e->data ? e->data : "", n);
        /* (a token goes with the chunk that carries its start, as a generated one) */
        if (j->req.logprobs) res.n_logprobs = fti__job_lp_view(c, n, &view);
        res.lp = view;
        if (n || res.n_logprobs) fti_api_write_chunk(&j->out, j->req.kind, &res, 0);
        fti_free(view);
    }
}

/* A streamed choice finished: the rest of its text, then its finish_reason. */
static void fti__job_stream_finish(fti__choice *c) {
    fti__job *j = c->job;
    fti_api_result r;
    if (!j->req.stream) return;
    fti__job_emit(c, c->text.len, 1);
    r = fti__job_result(c, "", 0);
    r.finish_reason = c->finish;
    fti_api_write_chunk(&j->out, j->req.kind, &r, 0);
}

/* A choice's rank for best_of: the mean log-probability of its tokens (none: below all). */
static double fti__choice_score(const fti__choice *c) {
    return c->lp_count ? c->lp_sum / (double)c->lp_count : -HUGE_VAL;
}

/* The whole response of a non-streamed job: for each prompt i the best req.n of its choices
 * (all of them without best_of), numbered i*n.. best first, each with the prompt before its
 * text under echo. */
static void fti__job_write_response(fti__job *j) {
    int n = j->req.n, bo = j->n_ch / (int)j->n_prompts, k, m, i, n_out = 0;
    fti__choice **order = (fti__choice **)fti_calloc((size_t)j->n_ch, sizeof *order);
    fti_api_result *res = (fti_api_result *)fti_calloc((size_t)j->n_ch, sizeof *res);
    fti_api_logprob **views = (fti_api_logprob **)fti_calloc((size_t)j->n_ch, sizeof *views);
    fti_buf echo;
    size_t *echo_off = (size_t *)fti_calloc((size_t)j->n_ch, sizeof *echo_off);
    fti_api_result top;
    memset(&echo, 0, sizeof echo);
    if (!order || !res || !views || !echo_off) {
        j->out.oom = 1;
        goto done;
    }
    if (bo < 1) bo = 1;
    if (n > bo) n = bo;
    for (k = 0; k < j->n_ch; k++) order[k] = &j->ch[k];
    for (i = 0; i < (int)j->n_prompts; i++) {
        fti__choice **o = order + i * bo;
        if (bo > n) /* best_of: a stable insertion sort of the prompt's, best mean first */
            for (k = 1; k < bo; k++) {
                fti__choice *c = o[k];
                for (m = k; m > 0 && fti__choice_score(o[m - 1]) < fti__choice_score(c); m--)
                    o[m] = o[m - 1];
                o[m] = c;
            }
        for (k = 0; k < n; k++) {
            fti__choice *c = o[k];
            fti_api_result *rk = &res[n_out];
            c->index = n_out;
            *rk = fti__job_result(c, c->text.data ? c->text.data : "", c->text.len);
            rk->finish_reason = c->finish;
            rk->chunks_json = j->p_chunks ? j->p_chunks[c->prompt] : NULL;
            if (j->req.logprobs)
                rk->n_logprobs = fti__job_lp_view(c, c->lp_base + c->text.len, &views[n_out]);
            rk->lp = views[n_out];
            if (j->req.echo && j->echo) {
                const fti_buf *e = &j->echo[c->prompt];
                echo_off[n_out] = echo.len;
                fti_buf_append(&echo, e->data ? e->data : "", e->len);
                fti_buf_append(&echo, c->text.data ? c->text.data : "", c->text.len);
            }
            n_out++;
        }
    }
    if (j->req.echo && (echo.oom || !j->echo)) {
        j->out.oom = 1;
        goto done;
    }
    for (k = 0; k < n_out && j->req.echo; k++) {
        size_t end = k + 1 < n_out ? echo_off[k + 1] : echo.len;
        res[k].text = echo.data ? echo.data + echo_off[k] : "";
        res[k].text_len = end - echo_off[k];
    }
    top = res[0];
    top.choices = res;
    top.n_choices = (size_t)n_out;
    /* the retrieval chunks: one prompt's at the top; a batch's in each choice, its prompt's */
    top.chunks_json = j->p_chunks ? NULL : j->chunks_json;
    j->finish = order[0]->finish;
    fti_api_write_response(&j->out, j->req.kind, &top);
done:
    for (k = 0; views && k < j->n_ch; k++) fti_free(views[k]);
    fti_free(views);
    fti_free(order);
    fti_free(res);
    fti_free(echo_off);
    fti_buf_free(&echo);
}

/* Every choice of j has retired: the end of the answer (mu held). A failed step, or a later
 * turn's prompt that could not start, answers with its error (a stream: an error event, then
 * [DONE]); a cancelled job writes nothing. */
static void fti__job_complete(fti__job *j) {
    if (j->fail.code != FTI_OK) {
        fti_buf eb;
        int st = j->fail_status ? j->fail_status : 500;
        memset(&eb, 0, sizeof eb);
        fti_api_write_error(&eb, j->fail.msg[0] ? j->fail.msg : fti_result_str(j->fail.code),
                            st == 400 ? "invalid_request_error" : "server_error", j->fail_param,
                            j->fail_code);
        j->finish = "error";
        if (j->req.stream) {
            fti_buf_puts(&j->out, "data: ");
            fti_buf_append(&j->out, eb.data ? eb.data : "", eb.len);
            fti_buf_puts(&j->out, "\n\n");
            fti_api_write_done(&j->out);
        } else {
            j->status = st;
            j->out.len = 0;
            fti_buf_append(&j->out, eb.data ? eb.data : "", eb.len);
        }
        fti_buf_free(&eb);
        return;
    }
    if (!j->finish && j->n_ch) j->finish = j->ch[0].finish;
    if (j->cancelled) return;
    if (j->req.stream) {
        if (j->req.include_usage && j->n_ch) {
            fti_api_result r = fti__job_result(&j->ch[0], "", 0);
            r.finish_reason = j->ch[0].finish;
            fti_api_write_chunk(&j->out, j->req.kind, &r, FTI_API_CHUNK_USAGE);
        }
        fti_api_write_done(&j->out);
    } else {
        fti__job_write_response(j);
        if (fti__job_oom(j) || j->out.oom) {
            /* out of memory: a 500, not a 200 with a cut answer */
            fti_buf_free(&j->out);
            j->status = 500;
            fti_api_write_error(&j->out, "out of memory", "server_error", NULL, NULL);
        }
    }
}

/* Appends one token to choice c; returns 1 when the choice finished. */
static int fti__job_token(fti__choice *c, const fti_gen_token *t) {
    fti__job *j = c->job;
    size_t scan_from, k, safe;
    if (j->n_tokens == 0) j->t_first_ns = fti_time_ns();
    j->n_tokens++;
    c->n_tokens++;
    scan_from = c->text.len;
    if (t->text_len || !t->is_end) {
        fti__job_lp_add(c, t, c->lp_base + scan_from, 0);
        if (t->has_logprob) {
            c->lp_sum += t->logprob > -9999.0f ? t->logprob : -9999.0f;
            c->lp_count++;
        }
    }
    if (t->text && t->text_len) fti_buf_append(&c->text, t->text, t->text_len);
    if (t->is_end) c->finish = "stop";
    if (j->req.n_stop) {
        /* a stop string may straddle the previous text: start the search early enough */
        size_t best = (size_t)-1;
        scan_from = scan_from > FTI_API_MAX_STOP_LEN ? scan_from - FTI_API_MAX_STOP_LEN : 0;
        for (k = 0; k < j->req.n_stop; k++) {
            size_t sl = strlen(j->req.stop[k]), p;
            for (p = scan_from; p + sl <= c->text.len && p < best; p++)
                if (memcmp(c->text.data + p, j->req.stop[k], sl) == 0) {
                    best = p;
                    break;
                }
        }
        if (best != (size_t)-1) {
            if (best < c->emitted) best = c->emitted;
            c->text.len = best;
            if (c->text.data) c->text.data[best] = 0;
            c->finish = "stop";
        }
    }
    if (!c->finish && c->n_tokens >= j->req.max_tokens) c->finish = "length";
    if (c->finish) {
        fti__job_stream_finish(c);
        return 1;
    }
    safe = c->text.len - fti__stop_holdback(c);
    safe -= fti__choice_utf8_tail(c, safe);
    fti__job_emit(c, safe, 0);
    return 0;
}

static void fti__job_record(fti_server *s, fti__job *j) {
    fti_request_record rec;
    uint64_t now = fti_time_ns();
    if (!s->o.monitor) return;
    memset(&rec, 0, sizeof rec);
    rec.time = fti_time_wall();
    rec.endpoint = j->endpoint;
    rec.status = j->status ? j->status : 500;
    rec.model = j->g ? j->g->id : NULL;
    rec.stream = j->req.stream;
    rec.prompt_tokens = j->prompt_tokens;
    rec.prompt_bytes = j->prompt_bytes > INT_MAX ? INT_MAX : (int)j->prompt_bytes;
    if (j->n_prompts > 1) { /* a batch: what the monitor sees sums over its prompts */
        rec.n_prompts = j->n_prompts > INT_MAX ? INT_MAX : (int)j->n_prompts;
        memcpy(rec.len_hist, j->len_hist, sizeof rec.len_hist);
    }
    rec.completion_tokens = j->n_tokens;
    rec.ttft_ms = j->t_first_ns ? (double)(j->t_first_ns - j->t_start_ns) / 1e6 : -1;
    rec.latency_ms = (double)(now - j->t_start_ns) / 1e6;
    rec.tokens_per_s = rec.latency_ms > 0 ? j->n_tokens / (rec.latency_ms / 1000.0) : 0;
    rec.retrieval_hits = j->n_chunks;
    if (j->n_prompts > 1) { /* the prompts' perplexities, each weighted by its tokens */
        rec.prompt_ppl = j->nll_w ? exp(j->nll_sum / (double)j->nll_w) : -1;
        rec.ppl_tokens = j->nll_w <= INT_MAX ? (int)j->nll_w : INT_MAX;
    } else {
        rec.prompt_ppl = j->nll_mean >= 0 ? exp(j->nll_mean) : -1;
        rec.ppl_tokens = j->nll_tokens > 0 && j->nll_tokens <= INT_MAX ? (int)j->nll_tokens : 0;
    }
    rec.byte_fallback = (int)j->byte_fallback;
    rec.has_buckets = j->has_buckets;
    rec.ref_epoch = j->ref_epoch;
    memcpy(rec.tok_buckets, j->buckets, sizeof rec.tok_buckets);
    rec.finish_reason = j->finish;
    fti_monitor_record(s->o.monitor, &rec);
}

/* --- the scheduler thread --------------------------------------------------------------------- */

static void *fti__sched_main(void *arg) {
    fti_server *s = (fti_server *)arg;
    size_t cap = (size_t)s->o.max_batch;
    fti__choice **batch = s->sb.batch;
    fti__job **admit = s->sb.admit;
    void **seqs = s->sb.seqs;
    fti_gen_token *toks = s->sb.toks;
    fti__genref **dead = s->sb.dead;
    size_t n_batch = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        size_t n_admit = 0, n_admit_seqs = 0, i, n_dead = 0, b0;
        while (!s->sched_stop && !s->qhead && n_batch == 0) pthread_cond_wait(&s->cv, &s->mu);
        if (s->sched_stop && !s->qhead && n_batch == 0) break;
        /* in queue order: a job of at most cap sequences is admitted whole, when they all fit;
         * a larger batch of prompts in turns of as many whole prompts as fit (a prompt's
         * best_of <= cap, checked at dispatch), and it keeps the head of the queue until its
         * last turn. A cancelled or failed job's rest goes without a slot (it starts nothing). */
        while (s->qhead && n_admit < cap) {
            fti__job *j = s->qhead;
            int bo = j->n_ch / (int)j->n_prompts, take = j->n_ch - j->n_started;
            size_t room = cap - n_batch - n_admit_seqs;
            int stop = j->cancelled || j->fail.code != FTI_OK;
            if (!stop && (size_t)take > room) {
                if ((size_t)j->n_ch <= cap) break;
                take = (int)(room / (size_t)bo) * bo;
                if (!take) break;
            }
            if (j->n_started == 0) {
                /* the reference epoch before the generator: a switch sets the generator
                 * first, so a request that sees the new epoch runs on the new model
                 * (fti_monitor_set_ref); every turn runs on this generator */
                if (s->o.monitor) j->ref_epoch = fti_monitor_ref_epoch(s->o.monitor);
                j->g = s->cur;
                s->cur->refs += j->n_ch; /* one per sequence */
            }
            j->turn_k0 = j->n_started;
            j->turn_k1 = j->n_started + take;
            j->n_started += take;
            admit[n_admit++] = j;
            if (!stop) n_admit_seqs += (size_t)take;
            if (j->n_started < j->n_ch) break; /* its next turn when slots free up */
            s->qhead = j->qnext;
            if (!s->qhead) s->qtail = NULL;
            s->n_queued--;
        }
        pthread_mutex_unlock(&s->mu);

        /* start the admitted sequences (tokenize + prefill) outside the lock: every choice of a
         * job's turn, or none (a failed start ends the ones before it) */
        for (i = 0; i < n_admit; i++) {
            fti__job *j = admit[i];
            fti_gen_params p;
            fti_gen_prompt_info info_k;
            fti_error err;
            fti_result r = FTI_OK;
            int stopped, k, bo = j->n_ch / (int)j->n_prompts, k0 = j->turn_k0, k1 = j->turn_k1;
            long fail_prompt = -1; /* a batch's prompt that could not start */
            const char *bad_param = NULL;
            uint64_t seed0;
            size_t prompt_tokens = 0, byte_fallback = 0, prompt_bytes = 0, nll_w = 0;
            double nll_sum = 0, nll_first = -1;
            size_t nll_tok_first = 0;
            uint32_t buckets[FTI_DRIFT_BUCKETS], len_hist[FTI_DRIFT_LEN_BINS];
            int has_buckets = 0, n_chunks = 0;
            char *chunks_first = NULL;
            memset(buckets, 0, sizeof buckets);
            memset(len_hist, 0, sizeof len_hist);
            pthread_mutex_lock(&s->mu);
            stopped = j->cancelled || j->fail.code != FTI_OK;
            pthread_mutex_unlock(&s->mu);
            fti_error_clear(&err);
            seed0 = j->req.has_seed ? j->req.seed : fti_hash64(j->id, strlen(j->id), 0);
            if (stopped) r = FTI_ERR_CANCELLED;
            for (k = k0; k < k1 && r == FTI_OK; k++) {
                int pi = k / bo, cand = k % bo;
                const fti_api_prompt *pp = j->req.prompts ? &j->req.prompts[pi] : NULL;
                const char *ptext = pp ? (pp->text ? pp->text : "") : j->req.prompt;
                size_t plen = pp ? pp->text_len : j->req.prompt_len;
                memset(&p, 0, sizeof p);
                p.max_tokens = j->req.max_tokens;
                p.temperature = j->req.temperature;
                p.top_p = j->req.top_p;
                p.top_k = j->req.top_k;
                p.presence_penalty = j->req.presence_penalty;
                p.frequency_penalty = j->req.frequency_penalty;
                /* choice j of each prompt: seed + j (documented), so a prompt of a batch gets
                 * the answer it gets alone */
                p.seed = seed0 + (uint64_t)cand;
                p.use_retrieval = j->req.use_retrieval;
                /* best_of ranks by the tokens' log-probabilities: ask for them */
                p.logprobs = j->req.logprobs || bo > j->req.n;
                p.top_logprobs = j->req.top_logprobs;
                p.bias_ids = j->req.bias_ids;
                p.bias = j->req.bias;
                p.n_bias = j->req.n_bias;
                if (pp && pp->ids) {
                    p.prompt_ids = pp->ids;
                    p.n_prompt_ids = pp->n_ids;
                }
                /* the prompt's own tokens: scored, or (token ids) for their bytes */
                p.echo_prompt = j->req.echo && (j->req.logprobs || p.prompt_ids);
                if (p.prompt_ids || p.echo_prompt) p.use_retrieval = 0;
                if (j->req.kind == FTI_API_CHAT) {
                    p.title = j->req.chat_title;
                    p.context = j->req.chat_context;
                    p.context_len = j->req.chat_context_len;
                }
                memset(&info_k, 0, sizeof info_k);
                info_k.nll_mean = -1;
                if (cand > 0 && j->g->gen.seq_fork) { /* the prompt is evaluated once */
                    r = j->g->gen.seq_fork(j->g->gen.user, j->ch[k - cand].seq, &p,
                                           &j->ch[k].seq, &err);
                } else {
                    r = j->g->gen.seq_start(j->g->gen.user, ptext, plen, &p, &j->ch[k].seq,
                                            &info_k, &err);
                    if (r == FTI_OK && p.echo_prompt && !info_k.prompt_tokens) {
                        j->g->gen.seq_end(j->g->gen.user, j->ch[k].seq);
                        r = fti_error_set(&err, FTI_ERR_UNSUPPORTED,
                                          "this server's model does not report a prompt's "
                                          "tokens: 'echo' of a token-id prompt or with "
                                          "'logprobs' is not available");
                        bad_param = "echo";
                    }
                    /* (logit_bias was checked against n_vocab at dispatch) */
                    if (r == FTI_ERR_INVALID &&
                        (p.prompt_ids || (p.echo_prompt && j->g->n_vocab > 0)))
                        bad_param = "prompt";
                    if (r != FTI_OK && j->n_prompts > 1 && r != FTI_ERR_UNSUPPORTED)
                        fail_prompt = pi; /* (unsupported: the model's, every prompt's) */
                }
                if (r != FTI_OK) {
                    j->ch[k].seq = NULL;
                    break;
                }
                if (cand > 0) continue;
                /* the prompt's: usage, what the monitor sees (every prompt's), the echoed text
                 * and the log-probabilities of its tokens in each of its choices */
                prompt_tokens += info_k.n_tokens;
                byte_fallback += info_k.n_byte_fallback;
                prompt_bytes += plen;
                len_hist[fti_drift_len_bin(plen)]++;
                if (info_k.nll_mean >= 0) {
                    size_t w = info_k.nll_tokens ? info_k.nll_tokens : info_k.n_tokens;
                    nll_sum += info_k.nll_mean * (double)w;
                    nll_w += w;
                }
                if (pi == 0) {
                    nll_first = info_k.nll_mean;
                    nll_tok_first = info_k.nll_tokens;
                }
                n_chunks += info_k.n_chunks;
                if (info_k.chunks_json && j->n_prompts < 2) {
                    chunks_first = fti_strdup(info_k.chunks_json);
                } else if (info_k.chunks_json) { /* (scheduler-only until the answer) */
                    if (!j->p_chunks)
                        j->p_chunks = (char **)fti_calloc(j->n_prompts, sizeof *j->p_chunks);
                    if (j->p_chunks) j->p_chunks[pi] = fti_strdup(info_k.chunks_json);
                }
                if (s->o.monitor && info_k.ids &&
                    fti_monitor_bucketize(s->o.monitor, info_k.ids,
                                          info_k.n_ids ? info_k.n_ids : info_k.n_tokens,
                                          buckets))
                    has_buckets = 1;
                if (j->req.echo && j->echo) {
                    fti_buf *e = &j->echo[pi];
                    int c2;
                    size_t t;
                    if (!info_k.prompt_tokens) {
                        fti_buf_append(e, ptext, plen);
                    } else {
                        for (t = 0; t < info_k.n_prompt_tokens; t++) {
                            const fti_gen_token *pt = &info_k.prompt_tokens[t];
                            for (c2 = 0; c2 < bo && j->req.logprobs; c2++)
                                fti__job_lp_add(&j->ch[k + c2], pt, e->len, 1);
                            fti_buf_append(e, pt->text ? pt->text : "",
                                           pt->text ? pt->text_len : 0);
                        }
                    }
                    for (c2 = 0; c2 < bo; c2++) j->ch[k + c2].lp_base = e->len;
                }
            }
            if (r != FTI_OK)
                for (k = k0; k < k1; k++) {
                    if (j->ch[k].seq) j->g->gen.seq_end(j->g->gen.user, j->ch[k].seq);
                    j->ch[k].seq = NULL;
                }
            pthread_mutex_lock(&s->mu);
            if (r == FTI_OK) {
                size_t b;
                j->status = 200;
                j->state = FTI__JOB_ACTIVE;
                prompt_tokens += (size_t)j->prompt_tokens;
                j->prompt_tokens = prompt_tokens > INT_MAX ? INT_MAX : (int)prompt_tokens;
                j->byte_fallback += byte_fallback;
                j->prompt_bytes += prompt_bytes;
                j->nll_sum += nll_sum;
                j->nll_w += nll_w;
                if (k0 == 0) { /* one prompt's perplexity and weight as the generator gave */
                    j->nll_mean = nll_first;
                    j->nll_tokens = nll_tok_first;
                }
                for (b = 0; b < FTI_DRIFT_LEN_BINS; b++) j->len_hist[b] += len_hist[b];
                for (b = 0; b < FTI_DRIFT_BUCKETS; b++) j->buckets[b] += buckets[b];
                j->has_buckets |= has_buckets;
                j->n_chunks += n_chunks;
                if (chunks_first) j->chunks_json = chunks_first;
                chunks_first = NULL;
                for (k = k0; k < k1; k++) {
                    fti__job_stream_start(&j->ch[k]);
                    if (j->req.max_tokens == 0) { /* scored, nothing to generate */
                        j->ch[k].finish = "length";
                        fti__job_stream_finish(&j->ch[k]);
                        j->ch[k].ended = 1;
                    }
                    batch[n_batch++] = &j->ch[k];
                }
                j->n_live += k1 - k0;
                s->n_active += k1 - k0;
            } else {
                int st = r == FTI_ERR_LIMIT || r == FTI_ERR_INVALID || r == FTI_ERR_UNSUPPORTED
                             ? 400
                             : 500;
                const char *ecode = r == FTI_ERR_LIMIT ? "context_length_exceeded" : NULL;
                fti__job *q;
                if (!bad_param)
                    bad_param = r == FTI_ERR_LIMIT                       ? "max_tokens"
                                : r == FTI_ERR_INVALID && j->req.n_bias ? "logit_bias"
                                                                         : NULL;
                if (fail_prompt >= 0) { /* a batch's error names its prompt */
                    char pre[32];
                    snprintf(pre, sizeof pre, "prompt %ld", fail_prompt);
                    fti_error_prefix(&err, pre);
                }
                /* no more turns: out of the queue if a turn is still to come, and the
                 * generator's references of the choices that never ran */
                if (j->n_started < j->n_ch || s->qhead == j) {
                    fti__job **pq = &s->qhead, *prev = NULL;
                    for (q = s->qhead; q && q != j; q = q->qnext) {
                        prev = q;
                        pq = &q->qnext;
                    }
                    if (q) {
                        *pq = j->qnext;
                        if (s->qtail == j) s->qtail = prev;
                        s->n_queued--;
                    }
                }
                j->n_started = j->n_ch;
                for (k = k0; k < j->n_ch; k++) {
                    fti__genref *d = fti__gen_unref(j->g);
                    if (d) dead[n_dead++] = d;
                }
                if (k0 == 0) { /* nothing started: the answer is the error */
                    fti_buf eb;
                    memset(&eb, 0, sizeof eb);
                    j->status = st;
                    fti_api_write_error(&eb, err.msg[0] ? err.msg : fti_result_str(r),
                                        st == 400 ? "invalid_request_error" : "server_error",
                                        bad_param, ecode);
                    fti_buf_append(&j->out, eb.data ? eb.data : "", eb.len);
                    fti_buf_free(&eb);
                    j->state = FTI__JOB_DONE;
                    fti__job_record(s, j);
                } else {
                    /* earlier turns run (or ran): the answer is this error once they retire
                     * (a cancelled job's is nothing; a failed step's stays) */
                    if (!stopped && j->fail.code == FTI_OK) {
                        j->fail.code = r;
                        snprintf(j->fail.msg, sizeof j->fail.msg, "%s",
                                 err.msg[0] ? err.msg : fti_result_str(r));
                        j->fail_status = st;
                        j->fail_param = bad_param;
                        j->fail_code = ecode;
                    }
                    if (j->n_live == 0) {
                        fti__job_complete(j);
                        j->state = FTI__JOB_DONE;
                        fti__job_record(s, j);
                    }
                }
                fti__wake_io(s);
            }
            pthread_mutex_unlock(&s->mu);
            fti_free(chunks_first);
        }
        for (i = 0; i < n_dead; i++) fti__gen_release(dead[i]);
        n_dead = 0;

        /* one step per generator group (normally one group; two while a swap drains) */
        b0 = 0;
        while (b0 < n_batch) {
            fti__genref *g = batch[b0]->job->g;
            size_t n = 0, k;
            fti_error err;
            fti_result r;
            if (batch[b0]->ended) { /* finished at its start (max_tokens 0): not stepped */
                b0++;
                continue;
            }
            /* gather this generator's sequences to the front of batch[b0..] */
            for (k = b0; k < n_batch; k++)
                if (batch[k]->job->g == g && !batch[k]->ended) {
                    fti__choice *t = batch[b0 + n];
                    batch[b0 + n] = batch[k];
                    batch[k] = t;
                    n++;
                }
            for (k = 0; k < n; k++) {
                seqs[k] = batch[b0 + k]->seq;
                memset(&toks[k], 0, sizeof toks[k]);
            }
            fti_error_clear(&err);
            r = g->gen.step(g->gen.user, seqs, n, toks, &err);
            pthread_mutex_lock(&s->mu);
            s->st.steps++;
            s->st.batch_tokens += n;
            for (k = 0; k < n; k++) {
                fti__choice *c = batch[b0 + k];
                fti__job *j = c->job;
                int done;
                if (r != FTI_OK) {
                    /* the job's answer is the error (written when its last choice retires) */
                    if (j->fail.code == FTI_OK) {
                        j->fail.code = r;
                        snprintf(j->fail.msg, sizeof j->fail.msg, "%s", err.msg);
                    }
                    done = 1;
                } else {
                    /* (a later turn's prompt that could not start failed the job: its
                     * answer is that error, so its running choices end here too) */
                    done = fti__job_token(c, &toks[k]) || j->cancelled ||
                           j->fail.code != FTI_OK;
                    s->st.tokens++;
                }
                if (done) c->ended = 1;
            }
            if (s->o.monitor && r == FTI_OK) fti_monitor_tokens(s->o.monitor, n);
            fti__wake_io(s);
            pthread_mutex_unlock(&s->mu);
            b0 += n;
        }
        /* retire finished sequences; a job is done when its last one is */
        {
            size_t w = 0, k;
            for (k = 0; k < n_batch; k++) {
                fti__choice *c = batch[k];
                fti__job *j = c->job;
                fti__genref *g = j->g, *d;
                if (!c->ended) {
                    batch[w++] = c;
                    continue;
                }
                g->gen.seq_end(g->gen.user, c->seq);
                pthread_mutex_lock(&s->mu);
                c->seq = NULL;
                s->n_active--;
                if (--j->n_live == 0 && j->n_started == j->n_ch) {
                    fti__job_complete(j);
                    j->state = FTI__JOB_DONE; /* from here the I/O thread may free j */
                    fti__job_record(s, j);
                }
                d = fti__gen_unref(g);
                if (d) dead[n_dead++] = d;
                fti__wake_io(s);
                pthread_mutex_unlock(&s->mu);
            }
            n_batch = w;
            for (k = 0; k < n_dead; k++) fti__gen_release(dead[k]);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* --- connections (I/O thread) ----------------------------------------------------------------- */

static void fti__conn_close(fti_server *s, int idx) {
    fti__conn *c = s->conns[idx];
    if (c->job) {
        pthread_mutex_lock(&s->mu);
        c->job->conn = NULL;
        c->job->cancelled = 1;
        pthread_mutex_unlock(&s->mu);
        c->job = NULL;
    }
    close(c->fd);
    fti_buf_free(&c->in);
    fti_buf_free(&c->out);
    fti_buf_free(&c->chunked_body);
    fti_free(c->head);
    fti_free(c);
    s->conns[idx] = s->conns[--s->n_conns];
}

static void fti__conn_flush(fti_server *s, fti__conn *c) {
    (void)s;
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            c->t_write_ms = fti__now_ms();
        } else {
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            c->phase = FTI__C_CLOSING;
            c->close_after = 1;
            c->out_off = c->out.len = 0;
            c->peer_eof = 1;
            return;
        }
    }
    c->out_off = c->out.len = 0;
}

static void fti__send_503_and_close(int fd) {
    static const char msg[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: 104\r\nConnection: close\r\nRetry-After: 1\r\n\r\n" /* the body's bytes */
        "{\"error\":{\"message\":\"server busy: too many connections\",\"type\":\"server_error\","
        "\"param\":null,\"code\":null}}"; /* the four fields of every other error body */
    ssize_t w = send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void fti__metrics_text(fti_server *s, fti_buf *b) {
    if (s->o.monitor) {
        fti_monitor_render(s->o.monitor, b);
    } else {
        fti_buf_printf(b, "# TYPE fti_requests_total counter\nfti_requests_total %llu\n"
                          "# TYPE fti_active_sequences gauge\nfti_active_sequences %d\n"
                          "# TYPE fti_queue_depth gauge\nfti_queue_depth %d\n",
                       (unsigned long long)s->st.requests, s->n_active, s->n_queued);
    }
}

/* The model object of /v1/models (its list holds one) and /v1/models/{id}. mu held. */
static void fti__model_obj(fti_jw *w, const fti__genref *g) {
    fti_jw_obj_begin(w);
    fti_jw_key(w, "id");
    fti_jw_str(w, g->id);
    fti_jw_key(w, "object");
    fti_jw_str(w, "model");
    fti_jw_key(w, "created");
    fti_jw_int(w, g->created);
    fti_jw_key(w, "owned_by");
    fti_jw_str(w, "fti");
    fti_jw_key(w, "context_length");
    fti_jw_int(w, g->n_ctx);
    fti_jw_obj_end(w);
}

/* Percent-decodes src[0..n) into dst (cap bytes with the NUL). Returns 0 when it does not fit,
 * holds a bad escape or decodes to a NUL: no model id is like that. */
static int fti__pct_decode(const char *src, size_t n, char *dst, size_t cap) {
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            int hi = i + 2 < n ? fti__hexval((unsigned char)src[i + 1]) : -1;
            int lo = i + 2 < n ? fti__hexval((unsigned char)src[i + 2]) : -1;
            if (hi < 0 || lo < 0) return 0;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap) return 0;
        dst[o++] = (char)c;
    }
    dst[o] = 0;
    return 1;
}

/* The body of POST /tokenize (detok 0: {"content": "...", "add_special": false}) or POST
 * /detokenize (detok 1: {"tokens": [...]}). Returns 200 with *doc the parsed body and either
 * *content (a string node in *doc) and *add_special, or the token ids *ids (NULL when empty) and
 * *n; else an HTTP status (400, 500) with err set and *param naming the bad member (or NULL).
 * The caller frees *doc (fti_json_free) and *ids (fti_free) whatever the result. */
static int fti__tokenize_parse(int detok, const char *body, size_t body_len, fti_json_doc **doc,
                               const fti_json **content, int *add_special, int32_t **ids,
                               size_t *n, const char **param, fti_error *err) {
    const fti_json *root, *v, *x;
    fti_json_opts jo;
    fti_error jerr;
    fti_result pr;
    *doc = NULL;
    *content = NULL;
    *add_special = 0;
    *ids = NULL;
    *n = 0;
    *param = NULL;
    fti_error_clear(&jerr);
    memset(&jo, 0, sizeof jo);
    jo.max_depth = 8;
    jo.max_nodes = 64 + body_len / 2;
    if ((pr = fti_json_parse(body, body_len, &jo, doc, NULL, &jerr)) != FTI_OK) {
        /* the parser's own words, as the completions endpoints give them */
        if (pr == FTI_ERR_NOMEM) {
            fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
            return 500;
        }
        fti_error_set(err, FTI_ERR_FORMAT, "request body is not valid JSON: %s", jerr.msg);
        return 400;
    }
    if (!(root = fti_json_root(*doc)) || root->type != FTI_JSON_OBJECT) {
        fti_error_set(err, FTI_ERR_FORMAT, "request body must be a JSON object");
        return 400;
    }
    if (detok) {
        v = fti_json_get(root, "tokens");
        *param = "tokens";
        if (!v || v->type != FTI_JSON_ARRAY) {
            fti_error_set(err, FTI_ERR_INVALID, "'tokens' must be an array of token ids");
            return 400;
        }
        if (fti__api_id_array(v, "'tokens'", ids, n, err) != FTI_OK)
            return err->code == FTI_ERR_NOMEM ? 500 : 400;
        *param = NULL;
        return 200;
    }
    v = fti_json_get(root, "content");
    x = fti_json_get(root, "add_special");
    if (!v || v->type != FTI_JSON_STRING) {
        *param = "content";
        fti_error_set(err, FTI_ERR_INVALID, "'content' must be a string");
        return 400;
    }
    if (v->len > FTI_TOKENIZE_MAX_BYTES) {
        /* it runs on the I/O thread: a long text would stall every other connection */
        *param = "content";
        fti_error_set(err, FTI_ERR_LIMIT, "'content' is %lu bytes; /tokenize takes at most %lu "
                      "(send the text in parts)", (unsigned long)v->len,
                      (unsigned long)FTI_TOKENIZE_MAX_BYTES);
        return 400;
    }
    if (x && x->type != FTI_JSON_TRUE && x->type != FTI_JSON_FALSE && x->type != FTI_JSON_NULL) {
        *param = "add_special";
        fti_error_set(err, FTI_ERR_INVALID, "'add_special' must be a boolean");
        return 400;
    }
    *content = v;
    *add_special = x && x->type == FTI_JSON_TRUE;
    return 200;
}

/* POST /tokenize {"content": "...", "add_special": false} -> {"tokens": [...]} and POST
 * /detokenize {"tokens": [...]} -> {"content": "..."} (llama.cpp's server's shapes): the current
 * generator's tokens, so a client counts a prompt's tokens (lm-eval's ctxlen) as the server does.
 * The generator is held by a reference for the call (a hot swap may make another current). The
 * body is read by fti__tokenize_parse (which the http fuzz target calls too). */
static void fti__tokenize(fti_server *s, fti__conn *c, int detok, const char *body,
                          size_t body_len) {
    fti_json_doc *doc = NULL;
    const fti_json *v = NULL;
    fti_error err;
    fti__genref *g, *dead;
    fti_tokens toks;
    fti_buf out, b;
    int32_t *ids = NULL;
    size_t n = 0, i;
    int st = 200, add_special = 0;
    const char *param = NULL;
    fti_jw w;
    memset(&toks, 0, sizeof toks);
    memset(&out, 0, sizeof out);
    memset(&b, 0, sizeof b);
    fti_error_clear(&err);
    pthread_mutex_lock(&s->mu);
    g = s->cur;
    g->refs++;
    pthread_mutex_unlock(&s->mu);
    if (!(detok ? g->gen.detokenize != NULL : g->gen.tokenize != NULL)) {
        st = 501;
        fti_error_set(&err, FTI_ERR_UNSUPPORTED, "this server's model does not %s",
                      detok ? "detokenize" : "tokenize");
    } else {
        st = fti__tokenize_parse(detok, body, body_len, &doc, &v, &add_special, &ids, &n, &param,
                                 &err);
    }
    if (st == 200 && !detok) {
        if (g->gen.tokenize(g->gen.user, v->str, v->len, add_special, &toks, &err) != FTI_OK)
            st = err.code == FTI_ERR_NOMEM ? 500 : 400;
    } else if (st == 200 && g->gen.detokenize(g->gen.user, ids, n, &out, &err) != FTI_OK) {
        st = err.code == FTI_ERR_NOMEM ? 500 : 400;
        param = "tokens";
    }
    pthread_mutex_lock(&s->mu);
    dead = fti__gen_unref(g);
    pthread_mutex_unlock(&s->mu);
    fti__gen_release(dead);
    if (st != 200) {
        fti__respond_error(s, c, st, err.msg[0] ? err.msg : "bad request",
                           st == 400 ? "invalid_request_error" : "server_error", param);
    } else {
        fti_jw_init(&w, &b, 0);
        fti_jw_obj_begin(&w);
        if (detok) {
            fti_jw_key(&w, "content");
            fti_jw_strn(&w, out.data ? out.data : "", out.len);
        } else {
            fti_jw_key(&w, "tokens");
            fti_jw_arr_begin(&w);
            for (i = 0; i < toks.len; i++) fti_jw_int(&w, toks.ids[i]);
            fti_jw_arr_end(&w);
        }
        fti_jw_obj_end(&w);
        fti__respond_built(s, c, "application/json", &b);
    }
    if (s->o.monitor) fti_monitor_count(s->o.monitor, detok ? "/detokenize" : "/tokenize", st);
    s->st.requests++;
    fti_free(ids);
    fti_tokens_free(&toks);
    fti_buf_free(&out);
    fti_buf_free(&b);
    fti_json_free(doc);
}

/* Handles one complete request. Returns with c->phase BUSY (a job runs), HEAD or CLOSING. */
static void fti__dispatch(fti_server *s, fti__conn *c, const char *body, size_t body_len) {
    const unsigned char *base = (const unsigned char *)c->in.data;
    const char *m = (const char *)base + c->head->method.off;
    size_t ml = c->head->method.len, tl = c->head->target.len, q;
    const char *t = (const char *)base + c->head->target.off;
    int is_get = ml == 3 && memcmp(m, "GET", 3) == 0;
    int is_post = ml == 4 && memcmp(m, "POST", 4) == 0, is_comp, is_read, is_tok;
    char path[64];
    const char *model_ref = NULL; /* /v1/models/{id}: the id as sent (percent-encoded) */
    size_t model_ref_len = 0;
    fti_buf b;
    size_t out0 = c->out.len; /* this response starts here (pipelined ones may precede it) */
    memset(&b, 0, sizeof b);
    for (q = 0; q < tl && t[q] != '?'; q++) {
    }
    /* GET /v1/models/{id} (the SDK's models.retrieve): the id is matched below on the whole
     * target, the path kept for routing and metrics is just the collection */
    if (q > 11 && memcmp(t, "/v1/models/", 11) == 0) {
        model_ref = t + 11;
        model_ref_len = q - 11;
        q = 10;
    }
    if (q >= sizeof path) q = sizeof path - 1; /* long paths are 404 anyway */
    memcpy(path, t, q);
    path[q] = 0;
    if (!c->head->keep_alive) c->close_after = 1;
    is_comp = strcmp(path, "/v1/completions") == 0 || strcmp(path, "/v1/chat/completions") == 0;
    is_tok = strcmp(path, "/tokenize") == 0 || strcmp(path, "/detokenize") == 0;
    is_read = (strcmp(path, "/") == 0 && !s->o.no_dashboard) || strcmp(path, "/health") == 0 ||
              strcmp(path, "/metrics") == 0 || strcmp(path, "/v1/models") == 0;
    if (ml == 7 && memcmp(m, "OPTIONS", 7) == 0 &&
        (is_comp || is_tok || is_read || (tl == 1 && *t == '*'))) {
        /* what a path allows (a browser's CORS preflight also lands here: without
         * fti_server_opts.cors_origin it gets no Access-Control-Allow-Origin, so the browser
         * keeps its same-origin policy) */
        fti__respond_options(s, c, is_comp || is_tok ? "POST, OPTIONS"
                                   : is_read           ? "GET, HEAD, OPTIONS"
                                                       : "GET, HEAD, POST, OPTIONS");
        if (s->o.monitor)
            fti_monitor_count(s->o.monitor, is_comp || is_tok || is_read ? path : "other", 204);
        s->st.requests++;
        return;
    }

    if (is_tok) {
        if (!is_post) {
            fti__respond_405(s, c, "use POST", "POST, OPTIONS");
            if (s->o.monitor) fti_monitor_count(s->o.monitor, path, 405);
            return;
        }
        fti__tokenize(s, c, path[1] == 'd', body, body_len);
        return;
    }
    if (is_comp) {
        fti_api_kind kind = path[4] == 'c' && path[5] == 'h' ? FTI_API_CHAT : FTI_API_COMPLETION;
        fti__job *j;
        fti_error err;
        const char *param = NULL;
        fti_result pr;
        int n_ctx, n_vocab, full;
        const char *code;
        size_t n_prompts = 1, n_seqs = 1, pi, ti;
        char cur_id[128];
        const char *ep = kind == FTI_API_CHAT ? "/v1/chat/completions" : "/v1/completions";
        if (!is_post) {
            fti__respond_405(s, c, "use POST", "POST, OPTIONS");
            if (s->o.monitor) fti_monitor_count(s->o.monitor, ep, 405);
            return;
        }
        pthread_mutex_lock(&s->mu);
        n_ctx = s->cur->n_ctx;
        n_vocab = s->cur->n_vocab;
        snprintf(cur_id, sizeof cur_id, "%s", s->cur->id);
        full = s->n_queued >= s->o.max_queue || s->sched_stop;
        pthread_mutex_unlock(&s->mu);
        if (full) {
            s->st.rejected++;
            fti__respond_error(s, c, 503, "server busy: the request queue is full",
                               "server_error", NULL);
            if (s->o.monitor) fti_monitor_reject(s->o.monitor, "queue");
            return;
        }
        j = (fti__job *)fti_calloc(1, sizeof *j);
        if (!j) {
            fti__respond_error(s, c, 500, "out of memory", "server_error", NULL);
            return;
        }
        fti_error_clear(&err);
        pr = fti_api_parse_completion(kind, body, body_len, n_ctx, &j->req, &param, &err);
        /* (the parser's only FTI_ERR_LIMIT: a token-id prompt longer than the context allows) */
        code = pr == FTI_ERR_LIMIT ? "context_length_exceeded" : NULL;
        if (pr == FTI_OK) {
            n_prompts = j->req.n_prompts > 0 ? j->req.n_prompts : 1;
            n_seqs = n_prompts * (size_t)(j->req.best_of > 0 ? j->req.best_of : 1);
        }
        if (pr == FTI_OK && j->req.best_of > s->o.max_batch) {
            /* every choice (best_of: candidate) is a sequence of the batch, started together */
            int is_n = j->req.n == j->req.best_of;
            param = is_n ? "n" : "best_of";
            pr = fti_error_set(&err, FTI_ERR_LIMIT,
                               "%d is not a valid value for '%s': this server runs at most %d "
                               "sequences at a time", j->req.best_of, param, s->o.max_batch);
            fti_api_request_free(&j->req);
        }
        /* (a batch of more sequences than max_batch runs in turns of whole prompts) */
        for (pi = 0; pr == FTI_OK && pi < j->req.n_prompts; pi++) {
            const fti_api_prompt *pp = &j->req.prompts[pi];
            if (!pp->ids) continue;
            if (n_vocab <= 0) {
                param = "prompt";
                pr = fti_error_set(&err, FTI_ERR_UNSUPPORTED,
                                   "'prompt' as token ids is not supported by this server's "
                                   "model: send text");
                break;
            }
            pr = fti_gen_check_ids(pp->ids, pp->n_ids, (size_t)n_vocab, (long)pi, &err);
            if (pr != FTI_OK) param = "prompt";
        }
        /* logit_bias against the vocabulary too, so a generator's FTI_ERR_INVALID at the start
         * of a token-id or scored prompt is the prompt's (it was answered as the prompt's) */
        for (ti = 0; pr == FTI_OK && n_vocab > 0 && ti < j->req.n_bias; ti++)
            if (j->req.bias_ids[ti] < 0 || j->req.bias_ids[ti] >= n_vocab) {
                param = "logit_bias";
                pr = fti_error_set(&err, FTI_ERR_INVALID,
                                   "'logit_bias' names token %ld, which this model does not have "
                                   "(its vocabulary is ids 0 to %d)",
                                   (long)j->req.bias_ids[ti], n_vocab - 1);
            }
        if (pr != FTI_OK) fti_api_request_free(&j->req); /* (idempotent) */
        if (pr != FTI_OK) {
            int st = pr == FTI_ERR_NOMEM ? 500 : 400; /* the server's fault, not the client's */
            fti__respond_error_code(s, c, st, err.msg,
                                    st == 500 ? "server_error" : "invalid_request_error", param,
                                    code);
            if (s->o.monitor) { /* counted, and in the request log as the answered ones are */
                fti_request_record rec;
                memset(&rec, 0, sizeof rec);
                rec.time = fti_time_wall();
                rec.endpoint = ep;
                rec.status = st;
                rec.model = cur_id;
                rec.ttft_ms = -1;
                rec.prompt_ppl = -1; /* (no prompt was read: its tokens and bytes are 0) */
                fti_monitor_record(s->o.monitor, &rec);
            }
            fti_free(j);
            return;
        }
        j->n_ch = (int)n_seqs; /* <= FTI_API_MAX_PROMPTS x FTI_API_MAX_N */
        j->n_prompts = n_prompts;
        j->ch = (fti__choice *)fti_calloc((size_t)j->n_ch, sizeof *j->ch);
        if (j->req.echo) j->echo = (fti_buf *)fti_calloc(n_prompts, sizeof *j->echo);
        if (!j->ch || (j->req.echo && !j->echo)) {
            fti_free(j->ch);
            fti_free(j->echo);
            fti__respond_error(s, c, 500, "out of memory", "server_error", NULL);
            fti_api_request_free(&j->req);
            fti_free(j);
            return;
        }
        {
            int k;
            for (k = 0; k < j->n_ch; k++) {
                j->ch[k].job = j;
                j->ch[k].index = k; /* prompt i's choice m: i*n + m (best_of: renumbered) */
                j->ch[k].prompt = k / (j->n_ch / (int)n_prompts);
            }
        }
        j->endpoint = ep;
        j->conn = c;
        j->t_start_ns = fti_time_ns();
        j->created = (int64_t)fti_time_wall();
        j->nll_mean = -1;
        pthread_mutex_lock(&s->mu);
        s->job_counter++;
        snprintf(j->id, sizeof j->id, "%s-%08llx%04llx", kind == FTI_API_CHAT ? "chatcmpl" : "cmpl",
                 (unsigned long long)(fti_hash64(&j->t_start_ns, 8, s->job_counter) & 0xffffffffu),
                 (unsigned long long)(s->job_counter & 0xffff));
        j->next = s->jobs;
        if (s->jobs) s->jobs->prev = j;
        s->jobs = j;
        if (s->qtail) s->qtail->qnext = j;
        else s->qhead = j;
        s->qtail = j;
        s->n_queued++;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        c->job = j;
        c->phase = FTI__C_BUSY;
        return;
    }
    if (!is_get && !(ml == 4 && memcmp(m, "HEAD", 4) == 0)) {
        if (is_read) {
            fti__respond_405(s, c, "method not allowed", "GET, HEAD, OPTIONS");
        } else {
            fti__respond_error(s, c, 404, "not found", NULL, NULL);
        }
        return;
    }
    if (strcmp(path, "/health") == 0) {
        fti_jw w;
        pthread_mutex_lock(&s->mu);
        fti_jw_init(&w, &b, 0);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "status");
        fti_jw_str(&w, FTI__STOPPING(s) ? "stopping" : "ok");
        fti_jw_key(&w, "model");
        fti_jw_str(&w, s->cur->id);
        if (s->o.instance) {
            fti_jw_key(&w, "instance");
            fti_jw_str(&w, s->o.instance);
        }
        fti_jw_key(&w, "active");
        fti_jw_int(&w, s->n_active);
        fti_jw_key(&w, "queued");
        fti_jw_int(&w, s->n_queued);
        fti_jw_obj_end(&w);
        pthread_mutex_unlock(&s->mu);
        fti__respond_built(s, c, "application/json", &b);
    } else if (strcmp(path, "/v1/models") == 0 && model_ref) {
        char want[128];
        int decoded, found;
        fti_jw w;
        decoded = fti__pct_decode(model_ref, model_ref_len, want, sizeof want);
        pthread_mutex_lock(&s->mu);
        found = decoded && strcmp(want, s->cur->id) == 0;
        if (found) {
            fti_jw_init(&w, &b, 0);
            fti__model_obj(&w, s->cur);
        }
        pthread_mutex_unlock(&s->mu);
        if (found) {
            fti__respond_built(s, c, "application/json", &b);
        } else {
            char msg[200]; /* the id decoded when it could be (a NUL or a bad escape: as sent) */
            const char *shown = decoded ? want : model_ref;
            size_t shown_len = decoded ? strlen(want) : model_ref_len;
            snprintf(msg, sizeof msg, "The model '%.*s' does not exist (this server serves one)",
                     shown_len < 100 ? (int)shown_len : 100, shown);
            fti__respond_error_code(s, c, 404, msg, "invalid_request_error", "model",
                                    "model_not_found");
        }
    } else if (strcmp(path, "/v1/models") == 0) {
        fti_jw w;
        pthread_mutex_lock(&s->mu);
        fti_jw_init(&w, &b, 0);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "object");
        fti_jw_str(&w, "list");
        fti_jw_key(&w, "data");
        fti_jw_arr_begin(&w);
        fti__model_obj(&w, s->cur);
        fti_jw_arr_end(&w);
        fti_jw_obj_end(&w);
        pthread_mutex_unlock(&s->mu);
        fti__respond_built(s, c, "application/json", &b);
    } else if (strcmp(path, "/metrics") == 0) {
        pthread_mutex_lock(&s->mu);
        if (s->o.monitor) fti_monitor_set_load(s->o.monitor, s->n_queued, s->n_active, s->n_conns);
        pthread_mutex_unlock(&s->mu);
        fti__metrics_text(s, &b);
        fti__respond_built(s, c, "text/plain; version=0.0.4; charset=utf-8", &b);
    } else if (strcmp(path, "/") == 0 && !s->o.no_dashboard) {
        fti__respond(s, c, 200, "text/html; charset=utf-8", fti__dashboard_html,
                     sizeof fti__dashboard_html - 1, NULL);
    } else {
        fti__respond_error(s, c, 404, "not found", NULL, NULL);
    }
    if (b.oom) c->close_after = 1;
    if (s->o.monitor) fti_monitor_count(s->o.monitor, path[0] && strlen(path) < 32 &&
                                        (strcmp(path, "/") == 0 || strcmp(path, "/health") == 0 ||
                                         strcmp(path, "/metrics") == 0 ||
                                         strcmp(path, "/v1/models") == 0) ? path : "other",
                                        c->out.len >= out0 + 12 && !c->out.oom
                                            ? atoi(c->out.data + out0 + 9)
                                            : 0);
    if (ml == 4 && memcmp(m, "HEAD", 4) == 0 && c->out.data && !c->out.oom) {
        /* HEAD: drop the body we just appended (Content-Length stays) */
        const char *e = strstr(c->out.data + out0, "\r\n\r\n");
        if (e) c->out.len = (size_t)(e - c->out.data) + 4;
    }
    s->st.requests++;
    fti_buf_free(&b);
}

/* Reads what the socket has; processes complete requests. */
static void fti__conn_process(fti_server *s, fti__conn *c) {
    uint64_t now = fti__now_ms();
    for (;;) {
        if (c->phase == FTI__C_HEAD) {
            long r;
            if (c->in.len == 0) return;
            if (!c->parse_pending) return; /* no new line end: nothing new to parse */
            c->parse_pending = 0;
            r = fti_http_parse_head((const unsigned char *)c->in.data, c->in.len, &s->lim, c->head);
            if (r == 0) return;
            if (r < 0) {
                fti__respond_error(s, c, (int)-r, c->head->error ? c->head->error : "bad request",
                                   "invalid_request_error", NULL);
                if (s->o.monitor) fti_monitor_count(s->o.monitor, "malformed", (int)-r);
                c->phase = FTI__C_CLOSING;
                return;
            }
            c->head_len = r;
            c->phase = FTI__C_BODY;
            c->t_body_ms = now;
            memset(&c->ch, 0, sizeof c->ch);
            c->chunked_body.len = 0;
            c->sent_continue = 0;
        }
        if (c->phase == FTI__C_BODY) {
            const char *body;
            size_t body_len, consumed;
            if (c->head->chunked) {
                long b = fti_http_chunked_feed(
                    &c->ch, (const unsigned char *)c->in.data + c->head_len,
                    c->in.len - (size_t)c->head_len, &s->lim, &c->chunked_body);
                if (b < 0) {
                    fti__respond_error(s, c, (int)-b, "bad chunked body", "invalid_request_error",
                                       NULL);
                    c->phase = FTI__C_CLOSING;
                    return;
                }
                if (b == 0) {
                    if (c->head->expect_continue && !c->sent_continue) {
                        fti_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                        c->sent_continue = 1;
                    }
                    return;
                }
                body = c->chunked_body.data ? c->chunked_body.data : "";
                body_len = c->chunked_body.len;
                consumed = (size_t)c->head_len + (size_t)b;
            } else {
                if ((uint64_t)(c->in.len - (size_t)c->head_len) < c->head->content_length) {
                    if (c->head->expect_continue && !c->sent_continue) {
                        fti_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                        c->sent_continue = 1;
                    }
                    return;
                }
                body = c->in.data + c->head_len;
                body_len = (size_t)c->head->content_length;
                consumed = (size_t)c->head_len + body_len;
            }
            fti__dispatch(s, c, body, body_len);
            /* the request's bytes are done with (the job copied what it needs) */
            memmove(c->in.data, c->in.data + consumed, c->in.len - consumed);
            c->in.len -= consumed;
            c->scanned = 0;
            c->long_parse_len = 0;
            c->parse_pending = c->in.len > 0;
            c->first_request = 0;
            c->t_head_ms = now;
            c->t_idle_ms = now;
            if (c->phase == FTI__C_BUSY) return;
            if (c->phase == FTI__C_BODY) c->phase = FTI__C_HEAD;
            if (c->close_after) {
                c->phase = FTI__C_CLOSING;
                return;
            }
            continue;
        }
        return;
    }
}

/* Moves job output to the connection; finishes the job when done. mu held. */
static void fti__conn_collect(fti_server *s, fti__conn *c) {
    fti__job *j = c->job;
    if (!j) return;
    if (j->status == 200 && j->req.stream) {
        /* out of memory lost part of the stream: end it unfinished (no last chunk) and close */
        int lost = j->out.oom || fti__job_oom(j);
        if (lost) {
            c->close_after = 1;
            j->out.len = 0;
        }
        if (!j->http_started) {
            j->http_started = 1;
            if (c->head->version_minor == 0) c->close_after = 1;
            fti_buf_printf(&c->out,
                           "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                           "X-Request-Id: %s\r\n%s%s%s\r\n", j->id,
                           c->head->version_minor ? "Transfer-Encoding: chunked\r\n" : "",
                           c->close_after ? "Connection: close\r\n" : "", s->inst_hdr);
        }
        if (j->out.len) {
            if (c->head->version_minor)
                fti_buf_printf(&c->out, "%lx\r\n", (unsigned long)j->out.len);
            fti_buf_append(&c->out, j->out.data, j->out.len);
            if (c->head->version_minor) fti_buf_puts(&c->out, "\r\n");
            j->out.len = 0;
        }
        if (j->state == FTI__JOB_DONE && c->head->version_minor && !lost)
            fti_buf_puts(&c->out, "0\r\n\r\n");
    } else if (j->state == FTI__JOB_DONE) {
        int status = j->status ? j->status : 500;
        char rid[80]; /* the response's id, which the OpenAI SDKs read as the request id */
        if (status == 200 && j->finish && strcmp(j->finish, "error") == 0) status = 500;
        snprintf(rid, sizeof rid, "X-Request-Id: %s\r\n", j->id);
        fti__respond(s, c, status, "application/json", j->out.data ? j->out.data : "", j->out.len,
                     rid);
        j->out.len = 0;
    }
    if (j->state == FTI__JOB_DONE) {
        s->st.requests++;
        c->job = NULL;
        j->conn = NULL;
        c->phase = FTI__STOPPING(s) || c->close_after ? FTI__C_CLOSING : FTI__C_HEAD;
        c->t_idle_ms = c->t_head_ms = fti__now_ms();
    }
}

/* Frees finished jobs nobody waits for. mu held. */
static void fti__reap_jobs(fti_server *s) {
    fti__job *j = s->jobs, *nx;
    for (; j; j = nx) {
        nx = j->next;
        if (j->state == FTI__JOB_DONE && j->conn == NULL) {
            fti__job_unlink(s, j);
            fti__job_free(j);
        }
    }
}

static void fti__accept(fti_server *s) {
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL), one = 1;
        fti__conn *c;
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* out of descriptors: use the reserve one to accept and refuse, so the kernel's
                 * queue does not fill with clients that never hear back */
                s->st.accept_errors++;
                if (s->reserve_fd >= 0) {
                    close(s->reserve_fd);
                    s->reserve_fd = -1;
                    fd = accept(s->listen_fd, NULL, NULL);
                    if (fd >= 0) fti__send_503_and_close(fd);
                    s->reserve_fd = open("/dev/null", O_RDONLY);
                }
                s->accept_pause_until_ms = fti__now_ms() + 50;
                fti__srv_log(s, FTI_LOG_WARN, "accept: out of file descriptors");
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED) {
                s->st.accept_errors++;
                s->accept_pause_until_ms = fti__now_ms() + 50;
            }
            return;
        }
        if (s->n_conns >= s->o.max_conns || FTI__STOPPING(s)) {
            s->st.rejected++;
            if (s->o.monitor) fti_monitor_reject(s->o.monitor, "conn_cap");
            fti__send_503_and_close(fd);
            continue;
        }
        c = (fti__conn *)fti_calloc(1, sizeof *c);
        if (c) c->head = (fti_http_head *)fti_malloc(sizeof *c->head);
        if (!c || !c->head || fti__set_nonblock(fd) != 0) {
            if (c) fti_free(c->head);
            fti_free(c);
            fti__send_503_and_close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        memset(c->head, 0, sizeof *c->head);
        c->fd = fd;
        c->first_request = 1;
        c->t_head_ms = c->t_idle_ms = c->t_write_ms = fti__now_ms();
        s->conns[s->n_conns++] = c;
    }
}

static void fti__conn_read(fti_server *s, fti__conn *c) {
    size_t cap = s->lim.max_head + s->lim.max_body * 2 + FTI__IN_SLACK;
    for (;;) {
        ssize_t n;
        size_t i;
        if (c->phase == FTI__C_LINGER) {
            char junk[4096];
            n = recv(c->fd, junk, sizeof junk, 0);
            if (n > 0) continue;
            if (n == 0) c->peer_eof = 1;
            return;
        }
        if (c->phase != FTI__C_HEAD && c->phase != FTI__C_BODY) return;
        if (c->in.len >= cap) {
            fti__respond_error(s, c, 413, "request too large", NULL, NULL);
            c->phase = FTI__C_CLOSING;
            return;
        }
        if (!fti_buf_reserve(&c->in, 16384)) {
            c->phase = FTI__C_CLOSING;
            c->close_after = 1;
            return;
        }
        n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (n > 0) {
            if (c->in.len == 0 && c->phase == FTI__C_HEAD && !c->first_request)
                c->t_head_ms = fti__now_ms(); /* the header deadline starts at its first byte */
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = 0;
            for (i = c->scanned; i < c->in.len; i++)
                if (c->in.data[i] == '\n') {
                    c->parse_pending = 1;
                    break;
                }
            c->scanned = c->in.len;
            /* without a new line end, the head's verdict changes only when the request line or
             * the head crosses its limit (414, 431): parse when in.len has doubled since the last
             * such parse, or crossed max_head. (A parse on every read past max_request_line let a
             * peer sending a byte at a time make each byte cost a parse of up to 32 KiB.) */
            if (c->in.len > s->lim.max_request_line &&
                (c->in.len >= 2 * c->long_parse_len ||
                 (c->long_parse_len <= s->lim.max_head && c->in.len > s->lim.max_head))) {
                c->parse_pending = 1;
                c->long_parse_len = c->in.len;
            }
            continue;
        }
        if (n == 0) {
            c->peer_eof = 1;
            return;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            c->peer_eof = 1;
            c->close_after = 1;
        }
        return;
    }
}

static void fti__conn_timeouts(fti_server *s, fti__conn *c, uint64_t now) {
    if (c->phase == FTI__C_HEAD) {
        if (c->in.len > 0 || c->first_request) {
            if (fti__since(now, c->t_head_ms) >= (uint64_t)s->o.header_timeout_ms) {
                if (c->in.len > 0)
                    fti__respond_error(s, c, 408, "request header timeout", NULL, NULL);
                c->close_after = 1;
                c->phase = FTI__C_CLOSING;
            }
        } else if (fti__since(now, c->t_idle_ms) >= (uint64_t)s->o.idle_timeout_ms) {
            c->close_after = 1;
            c->phase = FTI__C_CLOSING;
        }
    } else if (c->phase == FTI__C_BODY) {
        if (fti__since(now, c->t_body_ms) >= (uint64_t)s->o.body_timeout_ms) {
            fti__respond_error(s, c, 408, "request body timeout", NULL, NULL);
            c->phase = FTI__C_CLOSING;
        }
    }
    if (c->out.len > c->out_off &&
        fti__since(now, c->t_write_ms) >= (uint64_t)s->o.body_timeout_ms) {
        c->out.len = c->out_off = 0; /* a client that stopped reading */
        c->phase = FTI__C_CLOSING;
        c->close_after = 1;
        c->peer_eof = 1;
    }
}

static uint64_t fti__conn_deadline(fti_server *s, fti__conn *c) {
    uint64_t d = (uint64_t)-1;
    if (c->phase == FTI__C_HEAD) {
        if (c->in.len > 0 || c->first_request) d = c->t_head_ms + (uint64_t)s->o.header_timeout_ms;
        else d = c->t_idle_ms + (uint64_t)s->o.idle_timeout_ms;
    } else if (c->phase == FTI__C_BODY) {
        d = c->t_body_ms + (uint64_t)s->o.body_timeout_ms;
    } else if (c->phase == FTI__C_LINGER) {
        d = c->t_linger_ms + FTI__LINGER_MS;
    }
    if (c->out.len > c->out_off && c->t_write_ms + (uint64_t)s->o.body_timeout_ms < d)
        d = c->t_write_ms + (uint64_t)s->o.body_timeout_ms;
    return d;
}

/* After I/O: flush, close or linger. Returns 1 if the connection was closed. */
static int fti__conn_after(fti_server *s, int idx, uint64_t now) {
    fti__conn *c = s->conns[idx];
    if (c->out.len > c->out_off && !c->out.oom) fti__conn_flush(s, c);
    if (c->out.oom || /* out of memory cut the output: close rather than send it cut */
        (c->out.len > c->out_off && c->out.len - c->out_off > s->o.max_output_bytes)) {
        c->out.len = c->out_off = 0;
        c->peer_eof = 1;
        c->phase = FTI__C_CLOSING;
    }
    if (c->phase == FTI__C_CLOSING && c->out.len == c->out_off) {
        if (c->peer_eof) {
            fti__conn_close(s, idx);
            return 1;
        }
        /* half-close and drain what the client still sends, so the response is not lost to a
         * reset, then close */
        shutdown(c->fd, SHUT_WR);
        c->phase = FTI__C_LINGER;
        c->t_linger_ms = now;
    }
    if (c->phase == FTI__C_LINGER &&
        (c->peer_eof || fti__since(now, c->t_linger_ms) >= FTI__LINGER_MS)) {
        fti__conn_close(s, idx);
        return 1;
    }
    if (c->peer_eof && c->phase == FTI__C_HEAD && c->out.len == c->out_off) {
        fti__conn_close(s, idx);
        return 1;
    }
    if (c->peer_eof && c->phase == FTI__C_BODY) {
        fti__conn_close(s, idx);
        return 1;
    }
    return 0;
}

FTIDEF fti_result fti_server_create(const fti_server_opts *opts, const fti_gen *gen,
                                    fti_server **out, fti_error *err) {
    fti_server *s;
    struct addrinfo hints, *ai = NULL, *p;
    char port_str[16];
    int fds[2], rc, one = 1;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "fti_server_create: no output");
    *out = NULL;
    if (!gen || !gen->seq_start || !gen->step || !gen->seq_end) {
        if (gen && gen->release) gen->release(gen->user);
        return fti_error_set(err, FTI_ERR_INVALID, "fti_server_create: incomplete generator");
    }
    s = (fti_server *)fti_calloc(1, sizeof *s);
    if (!s) {
        if (gen->release) gen->release(gen->user);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    s->listen_fd = s->wake_rd = s->wake_wr = s->reserve_fd = -1;
    s->cur = fti__gen_wrap(gen);
    if (!s->cur) {
        if (gen->release) gen->release(gen->user);
        fti_free(s);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (opts) s->o = *opts;
    snprintf(s->host, sizeof s->host, "%s", s->o.host ? s->o.host : "127.0.0.1");
    s->o.host = s->host;
    if (s->o.instance) {
        const char *nm = s->o.instance;
        size_t n = strlen(nm), k;
        int ok = n >= 1 && n <= 64;
        for (k = 0; ok && k < n; k++)
            ok = (nm[k] >= 'a' && nm[k] <= 'z') || (nm[k] >= 'A' && nm[k] <= 'Z') ||
                 (nm[k] >= '0' && nm[k] <= '9') || nm[k] == '.' || nm[k] == '_' || nm[k] == '-';
        if (!ok) {
            fti_server_free(s);
            return fti_error_set(err, FTI_ERR_INVALID,
                                 "fti_server_create: instance name must be 1-64 of [A-Za-z0-9._-]");
        }
        snprintf(s->inst_hdr, sizeof s->inst_hdr, "X-Fti-Instance: %s\r\n", nm);
        snprintf(s->inst, sizeof s->inst, "%s", nm);
        s->o.instance = s->inst;
    }
    if (s->o.cors_origin) { /* goes out in every head: visible ASCII only (no CR, LF) */
        const char *o = s->o.cors_origin;
        size_t n = strlen(o), k, at = strlen(s->inst_hdr);
        for (k = 0; k < n && o[k] > ' ' && o[k] < 127; k++) {
        }
        if (n == 0 || n > 200 || k < n) {
            fti_server_free(s);
            return fti_error_set(err, FTI_ERR_INVALID, "fti_server_create: the CORS origin must "
                                 "be \"*\" or an origin such as http://localhost:5173 (1-200 "
                                 "visible ASCII characters)");
        }
        memcpy(s->cors, o, n + 1);
        s->o.cors_origin = s->cors;
        snprintf(s->inst_hdr + at, sizeof s->inst_hdr - at,
                 "Access-Control-Allow-Origin: %s\r\n%sAccess-Control-Expose-Headers: "
                 "X-Request-Id, X-Fti-Instance\r\n", o, strcmp(o, "*") ? "Vary: Origin\r\n" : "");
    }
    if (s->o.max_conns <= 0) s->o.max_conns = 256;
    if (s->o.max_queue <= 0) s->o.max_queue = 64;
    if (s->o.max_batch <= 0) s->o.max_batch = 16;
    if (s->o.header_timeout_ms <= 0) s->o.header_timeout_ms = 10000;
    if (s->o.idle_timeout_ms <= 0) s->o.idle_timeout_ms = 15000;
    if (s->o.body_timeout_ms <= 0) s->o.body_timeout_ms = 30000;
    if (s->o.max_output_bytes == 0) s->o.max_output_bytes = (size_t)8 << 20;
    fti__http_limits_resolve(&s->o.limits, &s->lim);
    if (pthread_mutex_init(&s->mu, NULL) == 0) s->mu_ok = 1;
    if (pthread_cond_init(&s->cv, NULL) == 0) s->cv_ok = 1;
    s->conns = (fti__conn **)fti_calloc((size_t)s->o.max_conns, sizeof *s->conns);
    s->pfds = (struct pollfd *)fti_calloc((size_t)s->o.max_conns + 2, sizeof *s->pfds);
    if (!s->mu_ok || !s->cv_ok || !s->conns || !s->pfds) {
        fti_server_free(s);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (pipe(fds) != 0) {
        fti_server_free(s);
        return fti_error_set(err, FTI_ERR_IO, "pipe: %s", strerror(errno));
    }
    s->wake_rd = fds[0];
    s->wake_wr = fds[1];
    fti__set_nonblock(s->wake_rd);
    fti__set_nonblock(s->wake_wr);
    s->reserve_fd = open("/dev/null", O_RDONLY);

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port_str, sizeof port_str, "%d", s->o.port);
    rc = getaddrinfo(s->host, port_str, &hints, &ai);
    if (rc != 0) {
        fti_error_set(err, FTI_ERR_INVALID, "%s:%d: cannot resolve: %s", s->host, s->o.port,
                      gai_strerror(rc));
        fti_server_free(s);
        return FTI_ERR_INVALID;
    }
    for (p = ai; p; p = p->ai_next) {
        int fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
        if (fd < 0) continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, p->ai_addr, p->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            s->listen_fd = fd;
            break;
        }
        close(fd);
    }
    if (s->listen_fd < 0) {
        int e = errno;
        freeaddrinfo(ai);
        fti_error_set(err, FTI_ERR_IO, "%s:%d: cannot listen: %s", s->host, s->o.port, strerror(e));
        fti_server_free(s);
        return FTI_ERR_IO;
    }
    freeaddrinfo(ai);
    fti__set_nonblock(s->listen_fd);
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    if (s->o.monitor) fti_monitor_set_model(s->o.monitor, s->cur->id);
    *out = s;
    return FTI_OK;
}

FTIDEF int fti_server_port(const fti_server *srv) { return srv ? srv->port : 0; }

FTIDEF void fti_server_stop(fti_server *srv) {
    char c = 'S';
    if (!srv) return;
    FTI__STOP_SET(srv);
    if (write(srv->wake_wr, &c, 1) < 0) {
        /* pipe full: the loop is awake anyway and sees stop_flag */
    }
}

FTIDEF fti_result fti_server_set_generator(fti_server *srv, const fti_gen *gen) {
    fti__genref *g, *old;
    if (!srv || !gen || !gen->seq_start || !gen->step || !gen->seq_end) {
        if (gen && gen->release) gen->release(gen->user);
        return FTI_ERR_INVALID;
    }
    g = fti__gen_wrap(gen);
    if (!g) {
        if (gen->release) gen->release(gen->user);
        return FTI_ERR_NOMEM;
    }
    pthread_mutex_lock(&srv->mu);
    old = srv->cur;
    srv->cur = g;
    old = fti__gen_unref(old);
    pthread_mutex_unlock(&srv->mu);
    if (srv->o.monitor) fti_monitor_set_model(srv->o.monitor, g->id);
    fti__srv_log(srv, FTI_LOG_INFO, "switched to model %s", g->id);
    fti__gen_release(old);
    return FTI_OK;
}

FTIDEF fti_result fti_server_run(fti_server *s, fti_error *err) {
    uint64_t drain_deadline = 0;
    int i;
    if (!s) return fti_error_set(err, FTI_ERR_INVALID, "fti_server_run: no server");
    if (!fti__sched_buf_alloc(&s->sb, (size_t)s->o.max_batch))
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory for the scheduler");
    if (pthread_create(&s->sched, NULL, fti__sched_main, s) != 0) {
        fti__sched_buf_free(&s->sb);
        return fti_error_set(err, FTI_ERR_IO, "cannot start the scheduler thread");
    }
    s->sched_started = 1;
    fti__srv_log(s, FTI_LOG_INFO, "listening on %s:%d", s->host, s->port);
    for (;;) {
        uint64_t now = fti__now_ms(), next = now + 1000;
        int np = 0, timeout, base, stopping = FTI__STOPPING(s);
        int listen_ix = -1;
        if (stopping) {
            int busy = 0;
            if (!drain_deadline) {
                drain_deadline = now + FTI__DRAIN_MS;
                if (s->listen_fd >= 0) {
                    close(s->listen_fd);
                    s->listen_fd = -1;
                }
                fti__srv_log(s, FTI_LOG_INFO, "stopping: finishing in-flight requests");
            }
            for (i = 0; i < s->n_conns; i++) {
                fti__conn *c = s->conns[i];
                if (c->job || c->out.len > c->out_off) busy = 1;
                else if (c->phase == FTI__C_HEAD && c->in.len == 0) {
                    c->close_after = 1;
                    c->phase = FTI__C_CLOSING;
                }
            }
            pthread_mutex_lock(&s->mu);
            if (s->qhead || s->n_active) busy = 1;
            pthread_mutex_unlock(&s->mu);
            if (!busy || now >= drain_deadline) break;
        }
        s->pfds[np].fd = s->wake_rd;
        s->pfds[np].events = POLLIN;
        s->pfds[np].revents = 0;
        np++;
        if (s->listen_fd >= 0 && now >= s->accept_pause_until_ms) {
            listen_ix = np;
            s->pfds[np].fd = s->listen_fd;
            s->pfds[np].events = POLLIN;
            s->pfds[np].revents = 0;
            np++;
        } else if (s->listen_fd >= 0 && s->accept_pause_until_ms < next) {
            next = s->accept_pause_until_ms;
        }
        base = np;
        for (i = 0; i < s->n_conns; i++) {
            fti__conn *c = s->conns[i];
            uint64_t d = fti__conn_deadline(s, c);
            short ev = 0;
            if (c->phase == FTI__C_HEAD || c->phase == FTI__C_BODY || c->phase == FTI__C_LINGER)
                ev |= POLLIN;
            if (c->out.len > c->out_off) ev |= POLLOUT;
            s->pfds[np].fd = c->fd;
            s->pfds[np].events = ev;
            s->pfds[np].revents = 0;
            np++;
            if (d < next) next = d;
        }
        timeout = next > now ? (int)(next - now) : 0;
        if (poll(s->pfds, (nfds_t)np, timeout) < 0 && errno != EINTR) {
            fti_error_set(err, FTI_ERR_IO, "poll: %s", strerror(errno));
            break;
        }
        now = fti__now_ms();
        if (s->pfds[0].revents) {
            char buf[256];
            while (read(s->wake_rd, buf, sizeof buf) > 0) {
            }
        }
        /* job output */
        pthread_mutex_lock(&s->mu);
        s->wake_pending = 0;
        for (i = 0; i < s->n_conns; i++)
            if (s->conns[i]->job) fti__conn_collect(s, s->conns[i]);
        fti__reap_jobs(s);
        pthread_mutex_unlock(&s->mu);
        if (listen_ix >= 0 && (s->pfds[listen_ix].revents & POLLIN)) fti__accept(s);
        /* connections: the pollfd slots match conns[0..base-n) as they were before accept */
        for (i = 0; i < s->n_conns; i++) {
            fti__conn *c = s->conns[i];
            short rev = 0;
            int k = base + i;
            if (k < np && s->pfds[k].fd == c->fd) rev = s->pfds[k].revents;
            if (rev & (POLLIN | POLLHUP | POLLERR)) fti__conn_read(s, c);
            if (c->phase == FTI__C_HEAD || c->phase == FTI__C_BODY) fti__conn_process(s, c);
            fti__conn_timeouts(s, c, now);
        }
        /* pipelined requests whose predecessor just finished */
        for (i = 0; i < s->n_conns; i++) {
            fti__conn *c = s->conns[i];
            if (c->phase == FTI__C_HEAD && c->parse_pending) fti__conn_process(s, c);
        }
        for (i = 0; i < s->n_conns;) {
            if (!fti__conn_after(s, i, now)) i++;
        }
        pthread_mutex_lock(&s->mu);
        s->st.conns = s->n_conns;
        s->st.active = s->n_active;
        s->st.queued = s->n_queued;
        if (s->o.monitor) fti_monitor_set_load(s->o.monitor, s->n_queued, s->n_active, s->n_conns);
        pthread_mutex_unlock(&s->mu);
    }
    /* stop the scheduler: cancel what is left (drain deadline), wait for it */
    pthread_mutex_lock(&s->mu);
    {
        fti__job *j;
        for (j = s->jobs; j; j = j->next) j->cancelled = 1;
    }
    s->sched_stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->sched, NULL);
    s->sched_started = 0;
    fti__sched_buf_free(&s->sb);
    for (i = 0; i < s->n_conns; i++) fti__conn_flush(s, s->conns[i]);
    while (s->n_conns > 0) fti__conn_close(s, s->n_conns - 1);
    pthread_mutex_lock(&s->mu);
    {
        /* queued jobs the scheduler never admitted */
        fti__job *j = s->jobs, *nx;
        for (; j; j = nx) {
            int k;
            nx = j->next;
            for (k = 0; k < j->n_ch; k++) {
                if (j->ch[k].seq && j->g) j->g->gen.seq_end(j->g->gen.user, j->ch[k].seq);
                j->ch[k].seq = NULL;
            }
            fti__job_unlink(s, j);
            fti__job_free(j);
        }
        s->qhead = s->qtail = NULL;
        s->n_queued = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (s->o.monitor) fti_monitor_flush(s->o.monitor);
    fti__srv_log(s, FTI_LOG_INFO, "stopped");
    return err && err->code != FTI_OK ? err->code : FTI_OK;
}

FTIDEF void fti_server_get_stats(fti_server *srv, fti_server_stats *st) {
    if (!st) return;
    memset(st, 0, sizeof *st);
    if (!srv) return;
    pthread_mutex_lock(&srv->mu);
    *st = srv->st;
    st->active = srv->n_active;
    st->queued = srv->n_queued;
    pthread_mutex_unlock(&srv->mu);
}

FTIDEF void fti_server_free(fti_server *s) {
    if (!s) return;
    while (s->n_conns > 0) fti__conn_close(s, s->n_conns - 1);
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->wake_rd >= 0) close(s->wake_rd);
    if (s->wake_wr >= 0) close(s->wake_wr);
    if (s->reserve_fd >= 0) close(s->reserve_fd);
    if (s->cur) fti__gen_release(fti__gen_unref(s->cur));
    if (s->cv_ok) pthread_cond_destroy(&s->cv);
    if (s->mu_ok) pthread_mutex_destroy(&s->mu);
    fti_free(s->conns);
    fti_free(s->pfds);
    fti_free(s);
}

#else /* !FTI__SERVER: no threads or no POSIX sockets */

FTIDEF fti_result fti_server_create(const fti_server_opts *opts, const fti_gen *gen,
                                    fti_server **out, fti_error *err) {
    (void)opts;
    if (out) *out = NULL;
    if (gen && gen->release) gen->release(gen->user);
    return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                         "the HTTP server needs threads (built with FTI_NO_THREADS)");
}
FTIDEF int fti_server_port(const fti_server *srv) { (void)srv; return 0; }
FTIDEF fti_result fti_server_run(fti_server *srv, fti_error *err) {
    (void)srv;
    return fti_error_set(err, FTI_ERR_UNSUPPORTED, "the HTTP server needs threads");
}
FTIDEF void fti_server_stop(fti_server *srv) { (void)srv; }
FTIDEF fti_result fti_server_set_generator(fti_server *srv, const fti_gen *gen) {
    (void)srv;
    if (gen && gen->release) gen->release(gen->user);
    return FTI_ERR_UNSUPPORTED;
}
FTIDEF void fti_server_free(fti_server *srv) { (void)srv; }
FTIDEF void fti_server_get_stats(fti_server *srv, fti_server_stats *st) {
    (void)srv;
    if (st) memset(st, 0, sizeof *st);
}

#endif /* FTI__SERVER */

#endif /* FTI_NO_SERVER */
