/* === server: implementation === */
#include "10_server.h"

#ifndef FTI_NO_SERVER

#include <errno.h>
#include <math.h>
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
 * found, 0 when more bytes are needed, -1 for a bare LF or a CR not followed by LF. */
static int fti__http_line(const unsigned char *buf, size_t len, size_t pos, size_t *eol) {
    size_t i;
    for (i = pos; i < len; i++) {
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
            h->expect_continue = 1;
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

FTIDEF long fti_http_chunked_feed(fti_http_chunked *c, const unsigned char *buf, size_t len,
                                  const fti_http_limits *lim_in, fti_buf *out) {
    fti_http_limits lim;
    fti__http_limits_resolve(lim_in, &lim);
    if (!c || (!buf && len) || !out) return -500;
    while (c->pos < len || c->state == FTI__CH_DONE) {
        if (c->state == FTI__CH_SIZE) {
            size_t eol = 0, k = c->pos, n_digits = 0;
            uint64_t size = 0;
            int r = fti__http_line(buf, len, c->pos, &eol);
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
            int r = fti__http_line(buf, len, c->pos, &eol);
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
    if (out.len) fti_buf_puts(&out, "\n");
    fti_buf_append(&out, title.data ? title.data : "", title.len);
    fti_buf_puts(&out, "\n\n");
    if (out.oom || title.oom) {
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
    if (kind == FTI_API_CHAT) req->max_tokens = n_ctx;

    memset(&jo, 0, sizeof jo);
    jo.max_depth = 32;
    jo.max_nodes = 65536;
    if (fti_json_parse(body, len, &jo, &doc, NULL, &jerr) != FTI_OK) {
        if (param) *param = NULL;
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
        v = fti_json_get(root, "prompt");
        if (v && v->type == FTI_JSON_ARRAY && v->len == 1 && v->child->type == FTI_JSON_STRING)
            v = v->child;
        if (!v || v->type != FTI_JSON_STRING) {
            r = fti__api_bad(err, param, "prompt",
                             v ? "'prompt' must be a string (one prompt per request)"
                               : "'prompt' is required");
            goto fail;
        }
        req->prompt = fti_strndup(v->str, v->len);
        req->prompt_len = v->len;
        if (fti_json_get(root, "echo") && fti_json_get(root, "echo")->type == FTI_JSON_TRUE) {
            r = fti__api_bad(err, param, "echo", "'echo' is not supported");
            goto fail;
        }
    } else {
        r = fti__api_render_chat(fti_json_get(root, "messages"), req, param, err);
        if (r != FTI_OK) goto fail;
    }
    if (!req->prompt) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    i64 = req->max_tokens;
    if ((r = fti__api_int(root, "max_tokens", 1, n_ctx, &i64, param, err)) != FTI_OK) goto fail;
    if ((r = fti__api_int(root, "max_completion_tokens", 1, n_ctx, &i64, param, err)) != FTI_OK)
        goto fail;
    req->max_tokens = (int)i64;
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
    if ((r = fti__api_num(root, "frequency_penalty", -2, 2, &d, param, err)) != FTI_OK) goto fail;
    i64 = 1;
    if ((r = fti__api_int(root, "n", 1, 1, &i64, param, err)) != FTI_OK) goto fail;
    if ((r = fti__api_int(root, "best_of", 1, 1, &i64, param, err)) != FTI_OK) goto fail;
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
    v = fti_json_get(root, "logprobs");
    if (v && v->type != FTI_JSON_NULL && v->type != FTI_JSON_FALSE) {
        r = fti__api_bad(err, param, "logprobs", "'logprobs' is not supported");
        goto fail;
    }
    v = fti_json_get(root, "stop");
    if (v && v->type != FTI_JSON_NULL) {
        const fti_json *s = v->type == FTI_JSON_ARRAY ? v->child : v;
        if (v->type == FTI_JSON_ARRAY && v->len > FTI_API_MAX_STOP) {
            r = fti__api_bad(err, param, "stop", "'stop' takes at most 4 sequences");
            goto fail;
        }
        for (; s; s = v->type == FTI_JSON_ARRAY ? s->next : NULL) {
            if (s->type != FTI_JSON_STRING || s->len == 0 || s->len > FTI_API_MAX_STOP_LEN) {
                r = fti__api_bad(err, param, "stop",
                                 "'stop' must be a string or an array of non-empty strings of at "
                                 "most 64 bytes");
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
    req->model = req->prompt = req->chat_title = NULL;
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

FTIDEF void fti_api_write_response(fti_buf *out, fti_api_kind kind, const fti_api_result *r) {
    fti_jw w;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti__api_header(&w, r, kind == FTI_API_CHAT ? "chat.completion" : "text_completion");
    fti_jw_key(&w, "choices");
    fti_jw_arr_begin(&w);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "index");
    fti_jw_int(&w, 0);
    if (kind == FTI_API_CHAT) {
        fti_jw_key(&w, "message");
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "role");
        fti_jw_str(&w, "assistant");
        fti_jw_key(&w, "content");
        fti_jw_strn(&w, r->text ? r->text : "", r->text ? r->text_len : 0);
        fti_jw_obj_end(&w);
    } else {
        fti_jw_key(&w, "text");
        fti_jw_strn(&w, r->text ? r->text : "", r->text ? r->text_len : 0);
    }
    fti_jw_key(&w, "logprobs");
    fti_jw_null(&w);
    fti_jw_key(&w, "finish_reason");
    if (r->finish_reason) fti_jw_str(&w, r->finish_reason);
    else fti_jw_null(&w);
    fti_jw_obj_end(&w);
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
        fti_jw_int(&w, 0);
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
        fti_jw_key(&w, "logprobs");
        fti_jw_null(&w);
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
} fti__echo_seq;

static const char *const fti__echo_words[] = {
    "The", " twin", " writes", " in", " a", " voice", " that", " is", " almost", " its", " own",
    ",", " and", " the", " server", " keeps", " every", " word", " in", " order", "."};
#define FTI__ECHO_NW (sizeof(fti__echo_words) / sizeof(fti__echo_words[0]))

static const char *fti__echo_id(void *user) { return ((fti__echo *)user)->id; }
static int fti__echo_n_ctx(void *user) { return ((fti__echo *)user)->n_ctx; }

static fti_result fti__echo_start(void *user, const char *prompt, size_t prompt_len,
                                  const fti_gen_params *p, void **seq, fti_gen_prompt_info *info,
                                  fti_error *err) {
    fti__echo *e = (fti__echo *)user;
    fti__echo_seq *s;
    size_t i;
    e->n_started++;
    if (e->fail_every > 0 && e->n_started % e->fail_every == 0)
        return fti_error_set(err, FTI_ERR_IO, "echo: injected failure");
    if (prompt_len + (size_t)p->max_tokens > (size_t)e->n_ctx)
        return fti_error_set(err, FTI_ERR_LIMIT,
                             "This model's maximum context length is %d tokens, but %lu were "
                             "requested (%lu in the prompt, %d for the completion)",
                             e->n_ctx, (unsigned long)(prompt_len + (size_t)p->max_tokens),
                             (unsigned long)prompt_len, p->max_tokens);
    s = (fti__echo_seq *)fti_calloc(1, sizeof *s);
    if (!s) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    s->ids = (int32_t *)fti_malloc((prompt_len ? prompt_len : 1) * sizeof(int32_t));
    if (!s->ids) {
        fti_free(s);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    for (i = 0; i < prompt_len; i++) s->ids[i] = (unsigned char)prompt[i];
    s->n_ids = prompt_len;
    s->state = fti_hash64(prompt, prompt_len, p->seed) % FTI__ECHO_NW;
    memset(info, 0, sizeof *info);
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
        s->n_out++;
        out[i].id = (int32_t)((s->state + (uint64_t)s->n_out) % FTI__ECHO_NW);
        out[i].text = w;
        out[i].text_len = strlen(w);
        out[i].is_end = e->end_after > 0 && s->n_out > e->end_after;
        if (out[i].is_end) out[i].text_len = 0;
    }
    return FTI_OK;
}

static void fti__echo_end(void *user, void *seq) {
    fti__echo_seq *s = (fti__echo_seq *)seq;
    (void)user;
    if (!s) return;
    fti_free(s->ids);
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
    return FTI_OK;
}

#endif /* FTI_NO_SERVER */
