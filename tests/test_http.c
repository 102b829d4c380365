/* test_http.c: the HTTP/1.1 request parser (a pure function over bytes): valid requests, every
 * malformed and smuggling case answered with its status, prefixes never parsed differently from the
 * whole, chunked bodies, and the OpenAI request validation and response writers. */

#ifndef FTI_NO_SERVER

typedef struct http_bad_case {
    const char *name;
    const char *req;
    int status;
} http_bad_case;

#define HOST "Host: a\r\n"
static const http_bad_case http_bad[] = {
    /* request line */
    {"bare LF request line", "GET / HTTP/1.1\n" HOST "\r\n", 400},
    {"bare CR request line", "GET / HTTP/1.1\r" HOST "\r\n", 400},
    {"two spaces", "GET  / HTTP/1.1\r\n" HOST "\r\n", 400},
    {"tab separator", "GET\t/ HTTP/1.1\r\n" HOST "\r\n", 400},
    {"no version", "GET /\r\n" HOST "\r\n", 400},
    {"lowercase version", "GET / http/1.1\r\n" HOST "\r\n", 400},
    {"version 2", "GET / HTTP/2.0\r\n" HOST "\r\n", 505},
    {"version 0.9", "GET / HTTP/0.9\r\n" HOST "\r\n", 505},
    {"version garbage", "GET / HTTP/1.x\r\n" HOST "\r\n", 400},
    {"version trailing", "GET / HTTP/1.1 \r\n" HOST "\r\n", 400},
    {"empty method", " / HTTP/1.1\r\n" HOST "\r\n", 400},
    {"method with slash", "GE/T / HTTP/1.1\r\n" HOST "\r\n", 400},
    {"relative target", "GET index HTTP/1.1\r\n" HOST "\r\n", 400},
    {"absolute-form target", "GET http://a/ HTTP/1.1\r\n" HOST "\r\n", 400},
    {"NUL in target", "GET /a\0b HTTP/1.1\r\n" HOST "\r\n", 400},
    {"DEL in target", "GET /a\x7f HTTP/1.1\r\n" HOST "\r\n", 400},
    {"high byte in target", "GET /\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n", 400},
    {"LF in leading blank line", "\nGET / HTTP/1.1\r\n" HOST "\r\n", 400},
    /* fields */
    {"bare LF header", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
    {"bare LF end of head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
    {"bare CR header", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
    {"obs-fold space", "GET / HTTP/1.1\r\n" HOST "X: a\r\n b\r\n\r\n", 400},
    {"obs-fold tab", "GET / HTTP/1.1\r\n" HOST "X: a\r\n\tb\r\n\r\n", 400},
    {"first field folded", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
    {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
    {"no colon", "GET / HTTP/1.1\r\n" HOST "Xyz\r\n\r\n", 400},
    {"empty field name", "GET / HTTP/1.1\r\n" HOST ": x\r\n\r\n", 400},
    {"bad char in name", "GET / HTTP/1.1\r\n" HOST "X(y): z\r\n\r\n", 400},
    {"NUL in value", "GET / HTTP/1.1\r\n" HOST "X: a\0b\r\n\r\n", 400},
    {"control in value",
     "GET / HTTP/1.1\r\n" HOST "X: a\x01"
     "b\r\n\r\n",
     400},
    {"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
    {"duplicate Host", "GET / HTTP/1.1\r\n" HOST HOST "\r\n", 400},
    {"unsupported Expect", "GET / HTTP/1.1\r\n" HOST "Expect: 200-ok\r\n\r\n", 417},
    /* smuggling: framing */
    {"CL and TE",
     "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\r\n",
     400},
    {"TE and CL",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"
     "0\r\n\r\n",
     400},
    {"duplicate CL same value",
     "POST / HTTP/1.1\r\n" HOST "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400},
    {"duplicate CL different",
     "POST / HTTP/1.1\r\n" HOST "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy", 400},
    {"CL list", "POST / HTTP/1.1\r\n" HOST "Content-Length: 1, 1\r\n\r\nx", 400},
    {"CL plus sign", "POST / HTTP/1.1\r\n" HOST "Content-Length: +1\r\n\r\nx", 400},
    {"CL negative", "POST / HTTP/1.1\r\n" HOST "Content-Length: -1\r\n\r\n", 400},
    {"CL hex", "POST / HTTP/1.1\r\n" HOST "Content-Length: 0x1\r\n\r\nx", 400},
    {"CL empty", "POST / HTTP/1.1\r\n" HOST "Content-Length:\r\n\r\n", 400},
    {"CL inner space", "POST / HTTP/1.1\r\n" HOST "Content-Length: 1 2\r\n\r\n", 400},
    {"CL huge", "POST / HTTP/1.1\r\n" HOST "Content-Length: 99999999999999999999999\r\n\r\n", 413},
    {"TE gzip", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\n\r\n", 400},
    {"TE list", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     400},
    {"TE chunked twice",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
    {"TE duplicate field",
     "POST / HTTP/1.1\r\n" HOST
     "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400},
    {"TE xchunked", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
    {"TE with vertical tab",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\x0b"
     "chunked\r\n\r\n0\r\n\r\n",
     400},
    {"TE space in name", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
     400},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    /* chunked bodies */
    {"chunk size not hex", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\nz\r\n\r\n",
     400},
    {"chunk size empty", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n\r\n\r\n",
     400},
    {"chunk size 0x",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n0\r\n\r\n", 400},
    {"chunk size negative",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n-1\r\na\r\n0\r\n\r\n", 400},
    {"chunk size leading space",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n 1\r\na\r\n0\r\n\r\n", 400},
    {"chunk size overflow",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
     "10000000000000001\r\na\r\n0\r\n\r\n",
     400},
    {"chunk size bare LF",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n", 400},
    {"chunk data too long",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", 400},
    {"chunk data bare LF end",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n1\r\na\n0\r\n\r\n", 400},
    {"chunk ext with control",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n1;a\x01\r\na\r\n0\r\n\r\n", 400},
    {"chunk junk after size",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n1 x\r\na\r\n0\r\n\r\n", 400},
    {"trailer obs-fold",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 400},
    {"trailer bare LF",
     "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\n\r\n", 400},
    {"chunked too large", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n100001\r\n",
     413},
};

static long http_parse_str(const char *s, size_t n, fti_http_head *h, fti_buf *body,
                           const char **b, size_t *bn) {
    return fti_http_parse_request((const unsigned char *)s, n, NULL, h, body, b, bn);
}

static size_t http_case_len(const http_bad_case *c) {
    /* cases with an embedded NUL: the literal's length is what sizeof would give; find the
     * terminating CRLFCRLF+body by scanning for the known tail */
    size_t n = strlen(c->req);
    if (strstr(c->name, "NUL")) {
        /* the literals with NUL end in "\r\n\r\n"; scan past the NUL */
        const char *p = c->req + n + 1;
        const char *e = strstr(p, "\r\n\r\n");
        n = (size_t)(e - c->req) + 4;
    }
    return n;
}

FTI_TEST(http_bad_requests) {
    size_t i, n_cases = sizeof http_bad / sizeof http_bad[0];
    fti_http_head *h = (fti_http_head *)fti_malloc(sizeof *h);
    REQUIRE(h);
    CHECK(n_cases >= 40);
    for (i = 0; i < n_cases; i++) {
        fti_buf body;
        const char *b;
        size_t bn, n = http_case_len(&http_bad[i]), k;
        long r;
        memset(&body, 0, sizeof body);
        r = http_parse_str(http_bad[i].req, n, h, &body, &b, &bn);
        if (r != -http_bad[i].status) {
            fprintf(stderr, "    case '%s': got %ld, want %d\n", http_bad[i].name, r,
                    -http_bad[i].status);
            fti_test_failures++;
        }
        fti_buf_free(&body);
        /* every prefix: incomplete or the same error, never success */
        for (k = 0; k < n; k++) {
            memset(&body, 0, sizeof body);
            r = http_parse_str(http_bad[i].req, k, h, &body, &b, &bn);
            fti_buf_free(&body);
            if (r > 0 || (r < 0 && r != -http_bad[i].status)) {
                fprintf(stderr, "    case '%s' prefix %lu: got %ld\n", http_bad[i].name,
                        (unsigned long)k, r);
                fti_test_failures++;
                break;
            }
        }
    }
    fti_free(h);
}

FTI_TEST(http_good_requests) {
    fti_http_head *h = (fti_http_head *)fti_malloc(sizeof *h);
    fti_buf body;
    const char *b;
    size_t bn;
    long r;
    const char *s;
    fti_http_span v;
    REQUIRE(h);
    memset(&body, 0, sizeof body);

    s = "GET /health HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n";
    r = http_parse_str(s, strlen(s), h, &body, &b, &bn);
    CHECK_EQ_INT(r, (long)strlen(s));
    CHECK(h->method.len == 3 && memcmp(s + h->method.off, "GET", 3) == 0);
    CHECK(h->target.len == 7 && memcmp(s + h->target.off, "/health", 7) == 0);
    CHECK_EQ_INT(h->version_minor, 1);
    CHECK_EQ_INT(h->keep_alive, 1);
    CHECK_EQ_INT(h->n_fields, 2);
    CHECK_EQ_INT(fti_http_head_field(h, (const unsigned char *)s, "user-agent", &v), 1);
    CHECK(v.len == 1 && s[v.off] == 't');
    CHECK_EQ_INT(bn, 0);

    /* pipelining: the parser consumes exactly one request */
    s = "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / "
        "HTTP/1.1\r\n";
    r = http_parse_str(s, strlen(s), h, &body, &b, &bn);
    CHECK_EQ_INT(r, (long)(strstr(s, "GET") - s));
    CHECK(bn == 5 && memcmp(b, "hello", 5) == 0);

    /* incomplete body */
    s = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello";
    CHECK_EQ_INT(http_parse_str(s, strlen(s), h, &body, &b, &bn), 0);

    /* chunked with extension and trailer; value whitespace trimmed; case-insensitive names */
    s = "POST / HTTP/1.1\r\nhOsT: a\r\ntransfer-encoding:   Chunked  \r\n\r\n"
        "5;name=x\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
    r = http_parse_str(s, strlen(s), h, &body, &b, &bn);
    CHECK_EQ_INT(r, (long)(strstr(s, "NEXT") - s));
    CHECK(bn == 11 && memcmp(b, "hello world", 11) == 0);
    fti_buf_free(&body);

    /* HTTP/1.0: close by default, keep-alive on request; no Host needed */
    s = "GET / HTTP/1.0\r\n\r\n";
    CHECK_EQ_INT(http_parse_str(s, strlen(s), h, &body, &b, &bn), (long)strlen(s));
    CHECK_EQ_INT(h->keep_alive, 0);
    s = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    CHECK_EQ_INT(http_parse_str(s, strlen(s), h, &body, &b, &bn), (long)strlen(s));
    CHECK_EQ_INT(h->keep_alive, 1);
    s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n";
    CHECK_EQ_INT(http_parse_str(s, strlen(s), h, &body, &b, &bn), (long)strlen(s));
    CHECK_EQ_INT(h->keep_alive, 0);
    /* leading CRLF is skipped; HTTP/1.2 is read as 1.1; obs-text in values is fine */
    s = "\r\nGET * HTTP/1.2\r\nHost: a\r\nX: caf\xc3\xa9\r\nExpect: 100-Continue\r\n\r\n";
    CHECK_EQ_INT(http_parse_str(s, strlen(s), h, &body, &b, &bn), (long)strlen(s));
    CHECK_EQ_INT(h->version_minor, 1);
    CHECK_EQ_INT(h->expect_continue, 1);
    /* HTTP/1.0 has no 1xx: its 100-continue is ignored (RFC 9110 10.1.1; it got a 100) */
    s = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}";
    CHECK_EQ_INT(http_parse_str(s, strlen(s), h, &body, &b, &bn), (long)strlen(s));
    CHECK_EQ_INT(h->expect_continue, 0);
    fti_free(h);
}

/* Builds a request with a given request-line target length / field count / field size. */
static char *http_make(size_t target_len, size_t n_fields, size_t field_len, size_t *out_len) {
    fti_buf b;
    size_t i;
    memset(&b, 0, sizeof b);
    fti_buf_puts(&b, "GET /");
    for (i = 1; i < target_len; i++) fti_buf_putc(&b, 'a');
    fti_buf_puts(&b, " HTTP/1.1\r\nHost: a\r\n");
    for (i = 0; i < n_fields; i++) {
        size_t k;
        fti_buf_printf(&b, "X-%lu: ", (unsigned long)i);
        for (k = 0; k < field_len; k++) fti_buf_putc(&b, 'v');
        fti_buf_puts(&b, "\r\n");
    }
    fti_buf_puts(&b, "\r\n");
    *out_len = b.len;
    return b.data;
}

FTI_TEST(http_limits) {
    fti_http_head *h = (fti_http_head *)fti_malloc(sizeof *h);
    size_t n;
    char *s;
    REQUIRE(h);
    /* request line: "GET " + target + " HTTP/1.1" = 13 + target bytes */
    s = http_make(8192 - 13, 0, 0, &n);
    CHECK(fti_http_parse_head((const unsigned char *)s, n, NULL, h) > 0);
    fti_free(s);
    s = http_make(8192 - 12, 0, 0, &n);
    CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)s, n, NULL, h), -414);
    /* a long line with no end yet is refused as soon as it is too long */
    CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)s, 8200, NULL, h), -414);
    CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)s, 8000, NULL, h), 0);
    fti_free(s);
    /* 99 fields + Host = 100: ok; 100 + Host: 431 */
    s = http_make(1, 99, 4, &n);
    CHECK(fti_http_parse_head((const unsigned char *)s, n, NULL, h) > 0);
    fti_free(s);
    s = http_make(1, 100, 4, &n);
    CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)s, n, NULL, h), -431);
    fti_free(s);
    /* head bytes */
    s = http_make(1, 10, 3300, &n);
    CHECK(n > 32768);
    CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)s, n, NULL, h), -431);
    CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)s, 32800, NULL, h), -431);
    fti_free(s);
    s = http_make(1, 9, 3300, &n);
    CHECK(n < 32768);
    CHECK(fti_http_parse_head((const unsigned char *)s, n, NULL, h) > 0);
    fti_free(s);
    {
        /* a bare LF or CR past a limit: the limit's status, as every shorter prefix of more than
         * the limit had (it was 400: the status depended on how the bytes arrived). The request
         * line may have 8192 bytes, the head 32768 (a prefix ending in a CR is incomplete). */
        static const struct {
            size_t pos;
            char c;
            long want;
        } t[8] = {{8192, '\n', -400},  {8193, '\n', -414},  {8192, '\r', -400},
                  {8193, '\r', -414},  {32768, '\n', -400}, {32769, '\n', -431},
                  {32767, '\r', -400}, {32768, '\r', -431}};
        size_t k, e;
        for (k = 0; k < 8; k++) {
            long r, prefix = 0;
            s = http_make(k < 4 ? 8300 : 1, k < 4 ? 0 : 10, 3300, &n);
            REQUIRE(s && t[k].pos + 1 < n);
            s[t[k].pos] = t[k].c;
            s[t[k].pos + 1] = 'x';
            r = fti_http_parse_head((const unsigned char *)s, n, NULL, h);
            CHECK_EQ_INT(r, t[k].want);
            /* (the first verdict of a growing prefix: earlier ones are all incomplete) */
            CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)s, t[k].pos - 2, NULL, h), 0);
            for (e = t[k].pos - 1; e <= n && prefix == 0; e++)
                prefix = fti_http_parse_head((const unsigned char *)s, e, NULL, h);
            CHECK_EQ_INT(prefix, r);
            fti_free(s);
        }
    }
    {
        /* body: 1 MiB ok, one more byte 413; custom limits */
        fti_http_limits lim;
        const char *a = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n";
        const char *c = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n";
        CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)a, strlen(a), NULL, h),
                     (long)strlen(a));
        CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)c, strlen(c), NULL, h), -413);
        memset(&lim, 0, sizeof lim);
        lim.max_body = 10;
        lim.max_fields = 1;
        CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)a, strlen(a), &lim, h), -431);
        lim.max_fields = 0;
        CHECK_EQ_INT(fti_http_parse_head((const unsigned char *)a, strlen(a), &lim, h), -413);
    }
    fti_free(h);
}

FTI_TEST(http_chunked_incremental) {
    /* fed one byte at a time, the resumable decoder gives the one-shot result */
    const char *body = "3\r\nabc\r\n10;x=\"y\"\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\nrest";
    size_t n = strlen(body), k;
    fti_http_chunked c;
    fti_buf out;
    long r = 0;
    memset(&c, 0, sizeof c);
    memset(&out, 0, sizeof out);
    for (k = 1; k <= n; k++) {
        r = fti_http_chunked_feed(&c, (const unsigned char *)body, k, NULL, &out);
        if (r != 0) break;
    }
    CHECK_EQ_INT(r, (long)(n - 4));
    CHECK(out.len == 19 && memcmp(out.data, "abc0123456789abcdef", 19) == 0);
    fti_buf_free(&out);
}

FTI_TEST(http_random_bytes_never_crash) {
    /* random mutations of a valid request: the parser returns, and whatever it consumes is
     * consistent with parsing the consumed prefix alone */
    const char *base =
        "POST /v1/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "4\r\nabcd\r\n0\r\n\r\n";
    size_t n = strlen(base), it;
    unsigned char buf[256];
    fti_rng rng;
    fti_http_head *h = (fti_http_head *)fti_malloc(sizeof *h);
    REQUIRE(h);
    fti_rng_seed(&rng, 7, 1);
    for (it = 0; it < 3000; it++) {
        fti_buf body;
        const char *b;
        size_t bn, m = n, j;
        long r, r2;
        memcpy(buf, base, n);
        for (j = 0; j < 1 + fti_rng_below(&rng, 3); j++) {
            size_t at = fti_rng_below(&rng, (uint32_t)m);
            static const unsigned char pick[] = {'\r', '\n', ' ', '\t', ':',
                                                 '0',  'f',  ';', 0,    0x80};
            buf[at] = pick[fti_rng_below(&rng, sizeof pick)];
        }
        memset(&body, 0, sizeof body);
        r = fti_http_parse_request(buf, m, NULL, h, &body, &b, &bn);
        fti_buf_free(&body);
        if (r > 0) {
            memset(&body, 0, sizeof body);
            r2 = fti_http_parse_request(buf, (size_t)r, NULL, h, &body, &b, &bn);
            fti_buf_free(&body);
            CHECK_EQ_INT(r2, r);
        }
    }
    fti_free(h);
}

/* --- the API layer --------------------------------------------------------------------------- */

static int api_parse(fti_api_kind kind, const char *body, const char **param, fti_api_request *q) {
    fti_error err;
    fti_result r = fti_api_parse_completion(kind, body, strlen(body), 512, q, param, &err);
    return (int)r;
}

FTI_TEST(http_api_validation) {
    fti_api_request q;
    const char *param;
    static const struct {
        const char *body;
        const char *param;
    } bad[] = {
        {"[1]", NULL},
        {"{\"prompt\": 3}", "prompt"},
        {"{}", "prompt"},
        {"{\"prompt\": []}", "prompt"},
        {"{\"prompt\": [\"a\", 1]}", "prompt"},       /* mixed */
        {"{\"prompt\": [[1, 2], \"b\"]}", "prompt"},
        {"{\"prompt\": [[1, 2], []]}", "prompt"},     /* an empty id prompt */
        {"{\"prompt\": [[\"a\"]]}", "prompt"},
        {"{\"prompt\": [1, -2]}", "prompt"},          /* a negative id */
        {"{\"prompt\": [1, 2.5]}", "prompt"},
        {"{\"prompt\": [1, 2147483648]}", "prompt"},
        {"{\"prompt\": [true]}", "prompt"},
        {"{\"prompt\": {\"a\": 1}}", "prompt"},
        {"{\"prompt\": \"a\", \"max_tokens\": -1}", "max_tokens"},
        {"{\"prompt\": \"a\", \"max_tokens\": 0}", "max_tokens"},
        {"{\"prompt\": \"a\", \"max_tokens\": 513}", "max_tokens"},
        {"{\"prompt\": \"a\", \"max_tokens\": 1.5}", "max_tokens"},
        {"{\"prompt\": \"a\", \"max_tokens\": \"5\"}", "max_tokens"},
        {"{\"prompt\": \"a\", \"temperature\": -0.1}", "temperature"},
        {"{\"prompt\": \"a\", \"temperature\": 2.5}", "temperature"},
        {"{\"prompt\": \"a\", \"temperature\": 1e999}", NULL}, /* not JSON we accept */
        {"{\"prompt\": \"a\", \"top_p\": 0}", "top_p"},
        {"{\"prompt\": \"a\", \"top_p\": 1.1}", "top_p"},
        {"{\"prompt\": \"a\", \"n\": 17}", "n"}, /* above FTI_API_MAX_N */
        {"{\"prompt\": \"a\", \"n\": 0}", "n"},
        {"{\"prompt\": \"a\", \"n\": 1.5}", "n"},
        {"{\"prompt\": \"a\", \"best_of\": 0}", "best_of"},
        {"{\"prompt\": \"a\", \"best_of\": 17}", "best_of"},
        {"{\"prompt\": \"a\", \"n\": 3, \"best_of\": 2}", "best_of"}, /* best_of < n */
        {"{\"prompt\": \"a\", \"best_of\": 2, \"stream\": true}", "best_of"},
        {"{\"prompt\": \"a\", \"echo\": 1}", "echo"},
        {"{\"prompt\": \"a\", \"echo\": false, \"max_tokens\": 0}", "max_tokens"},
        {"{\"prompt\": \"a\", \"presence_penalty\": 2.5}", "presence_penalty"},
        {"{\"prompt\": \"a\", \"presence_penalty\": \"1\"}", "presence_penalty"},
        {"{\"prompt\": \"a\", \"frequency_penalty\": -2.01}", "frequency_penalty"},
        {"{\"prompt\": \"a\", \"stream\": 1}", "stream"},
        {"{\"prompt\": \"a\", \"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop"},
        {"{\"prompt\": \"a\", \"stop\": \"\"}", "stop"},
        {"{\"prompt\": \"a\", \"response_format\": {\"type\": \"json_object\"}}",
         "response_format"},
        {"{\"prompt\": \"a\", \"response_format\": \"text\"}", "response_format"},
        {"{\"prompt\": \"a\", \"tool_choice\": \"required\"}", "tool_choice"},
        {"{\"prompt\": \"a\", \"tool_choice\": {\"type\": \"function\"}}", "tool_choice"},
        {"{\"prompt\": \"a\", \"logprobs\": 6}", "logprobs"},
        {"{\"prompt\": \"a\", \"logprobs\": -1}", "logprobs"},
        {"{\"prompt\": \"a\", \"logprobs\": true}", "logprobs"},
        {"{\"prompt\": \"a\", \"logprobs\": 1.5}", "logprobs"},
        {"{\"prompt\": \"a\", \"logit_bias\": [1]}", "logit_bias"},
        {"{\"prompt\": \"a\", \"logit_bias\": {\"x\": 1}}", "logit_bias"},
        {"{\"prompt\": \"a\", \"logit_bias\": {\"-1\": 1}}", "logit_bias"},
        {"{\"prompt\": \"a\", \"logit_bias\": {\"\": 1}}", "logit_bias"},
        {"{\"prompt\": \"a\", \"logit_bias\": {\"2147483648\": 1}}", "logit_bias"},
        {"{\"prompt\": \"a\", \"logit_bias\": {\"5\": 101}}", "logit_bias"},
        {"{\"prompt\": \"a\", \"logit_bias\": {\"5\": \"1\"}}", "logit_bias"},
        {"{\"prompt\": \"a\", \"model\": 5}", "model"},
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = api_parse(FTI_API_COMPLETION, bad[i].body, &param, &q);
        if (r == 0 || !((param == NULL && bad[i].param == NULL) ||
                        (param && bad[i].param && strcmp(param, bad[i].param) == 0))) {
            fprintf(stderr, "    body %s: r=%d param=%s\n", bad[i].body, r, param ? param : "-");
            fti_test_failures++;
        }
        fti_api_request_free(&q);
    }
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"max_tokens\":7,\"temperature\":0,"
                                         "\"stream\":true,\"stop\":[\"\\n\\n\"],\"seed\":-3,"
                                         "\"stream_options\":{\"include_usage\":true}}",
                    &param, &q) == 0);
    CHECK(q.max_tokens == 7 && q.temperature == 0 && q.stream && q.include_usage);
    CHECK(q.n_stop == 1 && strcmp(q.stop[0], "\n\n") == 0 && q.has_seed);
    CHECK(q.prompt_len == 2 && strcmp(q.prompt, "hi") == 0);
    CHECK(q.presence_penalty == 0.0f && q.frequency_penalty == 0.0f); /* off by default */
    fti_api_request_free(&q);
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"presence_penalty\":-2,"
                                         "\"frequency_penalty\":1.25,\"n\":1,\"best_of\":null}",
                    &param, &q) == 0);
    CHECK(q.presence_penalty == -2.0f && q.frequency_penalty == 1.25f);
    CHECK(!q.logprobs && q.n_bias == 0);
    CHECK(q.n == 1 && q.best_of == 1 && !q.echo); /* the defaults */
    fti_api_request_free(&q);
    /* n, best_of and echo (until 2026-11-29: above 1 and echo were 400) */
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"n\":16,\"echo\":true}", &param,
                    &q) == 0);
    CHECK(q.n == 16 && q.best_of == 16 && q.echo);
    fti_api_request_free(&q);
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"n\":2,\"best_of\":5,"
                                         "\"echo\":false,\"logprobs\":2}",
                    &param, &q) == 0);
    CHECK(q.n == 2 && q.best_of == 5 && !q.echo && q.logprobs);
    fti_api_request_free(&q);
    /* best_of equal to n is n: it streams */
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"n\":3,\"best_of\":3,"
                                         "\"stream\":true}",
                    &param, &q) == 0);
    CHECK(q.n == 3 && q.best_of == 3 && q.stream);
    fti_api_request_free(&q);
    CHECK(api_parse(FTI_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                   "\"n\":4,\"best_of\":1,\"stream\":true}",
                    &param, &q) == 0);
    CHECK(q.n == 4 && q.best_of == 4);
    fti_api_request_free(&q);
    /* best_of is completions' */
    CHECK(api_parse(FTI_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                   "\"best_of\":2}",
                    &param, &q) != 0);
    CHECK(param && strcmp(param, "best_of") == 0);
    fti_api_request_free(&q);
    CHECK(api_parse(FTI_API_COMPLETION,
                    "{\"prompt\":\"hi\",\"response_format\":{\"type\":\"text\"},"
                    "\"tools\":[{\"type\":\"function\"}],\"tool_choice\":\"auto\"}",
                    &param, &q) == 0);
    fti_api_request_free(&q);
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"response_format\":null,"
                                         "\"tool_choice\":\"none\"}",
                    &param, &q) == 0);
    fti_api_request_free(&q);
    /* logprobs: completions take the number of alternatives, chat a boolean and top_logprobs */
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"logprobs\":5,"
                                         "\"logit_bias\":{\"7\":-100,\"2147483647\":2.5}}",
                    &param, &q) == 0);
    CHECK(q.logprobs == 1 && q.top_logprobs == 5 && q.n_bias == 2);
    CHECK(q.bias_ids[0] == 7 && q.bias[0] == -100.0f);
    CHECK(q.bias_ids[1] == 2147483647 && q.bias[1] == 2.5f);
    fti_api_request_free(&q);
    /* a repeated id takes its last value, like any repeated key (it was added twice: 200) */
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"logit_bias\":{\"7\":100,\"8\":1,"
                                         "\"7\":100,\"007\":-5}}",
                    &param, &q) == 0);
    CHECK(q.n_bias == 2 && q.bias_ids[0] == 7 && q.bias[0] == -5.0f && q.bias_ids[1] == 8);
    fti_api_request_free(&q);
    /* repeated keys: the last value, as JSON.parse and Python's json read them */
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"max_tokens\":3,\"max_tokens\":5}",
                    &param, &q) == 0);
    CHECK(q.max_tokens == 5);
    fti_api_request_free(&q);
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"logprobs\":0}", &param, &q) == 0);
    CHECK(q.logprobs == 1 && q.top_logprobs == 0);
    fti_api_request_free(&q);
    CHECK(api_parse(FTI_API_COMPLETION, "{\"prompt\":\"hi\",\"logprobs\":null,\"logit_bias\":{}}",
                    &param, &q) == 0);
    CHECK(q.logprobs == 0 && q.n_bias == 0);
    fti_api_request_free(&q);
    CHECK(api_parse(FTI_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                   "\"logprobs\":true,\"top_logprobs\":20}",
                    &param, &q) == 0);
    CHECK(q.logprobs == 1 && q.top_logprobs == 20);
    fti_api_request_free(&q);
    CHECK(api_parse(FTI_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                   "\"logprobs\":false}",
                    &param, &q) == 0);
    CHECK(q.logprobs == 0);
    fti_api_request_free(&q);
    {
        static const char *const chat_bad[] = {
            "\"logprobs\":1", "\"logprobs\":\"yes\"", "\"top_logprobs\":2",
            "\"logprobs\":false,\"top_logprobs\":2", "\"logprobs\":true,\"top_logprobs\":21",
            "\"logprobs\":true,\"top_logprobs\":-1"};
        char body[256];
        for (i = 0; i < sizeof chat_bad / sizeof chat_bad[0]; i++) {
            snprintf(body, sizeof body,
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s}", chat_bad[i]);
            CHECK(api_parse(FTI_API_CHAT, body, &param, &q) != 0);
            CHECK(param && (strcmp(param, "logprobs") == 0 || strcmp(param, "top_logprobs") == 0));
            fti_api_request_free(&q);
        }
    }
    { /* 1024 logit_bias entries are taken, 1025 are not */
        fti_buf body;
        int k;
        memset(&body, 0, sizeof body);
        fti_buf_puts(&body, "{\"prompt\":\"a\",\"logit_bias\":{");
        for (k = 0; k < 1025; k++) fti_buf_printf(&body, "%s\"%d\":1", k ? "," : "", k);
        fti_buf_puts(&body, "}}");
        CHECK(api_parse(FTI_API_COMPLETION, body.data, &param, &q) != 0);
        CHECK(param && strcmp(param, "logit_bias") == 0);
        fti_api_request_free(&q);
        body.len = 0;
        fti_buf_puts(&body, "{\"prompt\":\"a\",\"logit_bias\":{");
        for (k = 0; k < 1024; k++) fti_buf_printf(&body, "%s\"%d\":1", k ? "," : "", k);
        fti_buf_puts(&body, "}}");
        CHECK(api_parse(FTI_API_COMPLETION, body.data, &param, &q) == 0);
        CHECK_EQ_INT(q.n_bias, 1024);
        fti_api_request_free(&q);
        fti_buf_free(&body);
    }

    CHECK(api_parse(FTI_API_CHAT, "{\"messages\":[]}", &param, &q) != 0);
    CHECK(param && strcmp(param, "messages") == 0);
    CHECK(api_parse(FTI_API_CHAT, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
                    &param, &q) != 0);
    CHECK(api_parse(FTI_API_CHAT, "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}",
                    &param, &q) != 0);
    CHECK(api_parse(FTI_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":7}]}", &param,
                    &q) != 0);
    CHECK(api_parse(FTI_API_CHAT,
                    "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"On cats\"}]}]}",
                    &param, &q) == 0);
    CHECK_EQ_STR(q.chat_title, "On cats");
    CHECK_EQ_STR(q.prompt, "system: Be brief.\n\nOn cats\n\n");
    CHECK_EQ_INT(q.max_tokens, 256); /* half the context (512) by default */
    fti_api_request_free(&q);
    /* a NUL in the last user message (a C string downstream) is refused, not cut short */
    CHECK(api_parse(FTI_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}",
                    &param, &q) != 0);
    CHECK(param && strcmp(param, "messages") == 0);
    /* one prompt of token ids is as long as the context allows, past FTI_API_MAX_PROMPTS (it was
     * refused as "a batch of 3000 prompts"); a batch of more prompts than that is refused */
    {
        fti_buf body;
        fti_error err;
        int k;
        memset(&body, 0, sizeof body);
        fti_buf_puts(&body, "{\"max_tokens\":1,\"prompt\":[");
        for (k = 0; k < 3000; k++) fti_buf_printf(&body, "%s%d", k ? "," : "", k % 7);
        fti_buf_puts(&body, "]}");
        REQUIRE(fti_api_parse_completion(FTI_API_COMPLETION, body.data, body.len, 4096, &q,
                                         &param, &err) == FTI_OK);
        REQUIRE(q.n_prompts == 1);
        CHECK_EQ_INT((int)q.prompts[0].n_ids, 3000);
        CHECK_EQ_INT(q.prompts[0].ids[2999], 2999 % 7);
        fti_api_request_free(&q);
        body.len = 0;
        fti_buf_puts(&body, "{\"prompt\":[");
        for (k = 0; k <= FTI_API_MAX_PROMPTS; k++) fti_buf_printf(&body, "%s[1]", k ? "," : "");
        fti_buf_puts(&body, "]}");
        CHECK(fti_api_parse_completion(FTI_API_COMPLETION, body.data, body.len, 4096, &q, &param,
                                       &err) == FTI_ERR_INVALID);
        CHECK(strstr(err.msg, "at most 2048 are taken") != NULL);
        fti_buf_free(&body);
    }
}

FTI_TEST(http_api_writers) {
    fti_buf b;
    fti_api_result r;
    fti_json_doc *doc = NULL;
    const fti_json *root, *c;
    memset(&b, 0, sizeof b);
    memset(&r, 0, sizeof r);
    r.id = "cmpl-1";
    r.model = "m";
    r.created = 1700000000;
    r.text = "a \"quoted\"\n";
    r.text_len = strlen(r.text);
    r.finish_reason = "length";
    r.prompt_tokens = 3;
    r.completion_tokens = 4;
    r.chunks_json = "[{\"id\":\"x\"}]";
    fti_api_write_response(&b, FTI_API_COMPLETION, &r);
    REQUIRE(fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    CHECK_EQ_STR(fti_json_get_str(root, "object", ""), "text_completion");
    c = fti_json_at(fti_json_get(root, "choices"), 0);
    CHECK_EQ_STR(fti_json_get_str(c, "text", ""), "a \"quoted\"\n");
    CHECK_EQ_STR(fti_json_get_str(c, "finish_reason", ""), "length");
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "total_tokens", 0), 7);
    CHECK(fti_json_get(root, "fti_chunks") && fti_json_get(root, "fti_chunks")->len == 1);
    fti_json_free(doc);

    b.len = 0;
    fti_api_write_response(&b, FTI_API_CHAT, &r);
    REQUIRE(fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    CHECK_EQ_STR(fti_json_get_str(root, "object", ""), "chat.completion");
    c = fti_json_get(fti_json_at(fti_json_get(root, "choices"), 0), "message");
    CHECK_EQ_STR(fti_json_get_str(c, "role", ""), "assistant");
    fti_json_free(doc);

    b.len = 0;
    r.finish_reason = NULL;
    fti_api_write_chunk(&b, FTI_API_CHAT, &r, FTI_API_CHUNK_FIRST);
    CHECK(b.len > 8 && memcmp(b.data, "data: {", 7) == 0);
    CHECK(memcmp(b.data + b.len - 2, "\n\n", 2) == 0);
    REQUIRE(fti_json_parse(b.data + 6, b.len - 8, NULL, &doc, NULL, NULL) == FTI_OK);
    root = fti_json_root(doc);
    CHECK_EQ_STR(fti_json_get_str(root, "object", ""), "chat.completion.chunk");
    c = fti_json_get(fti_json_at(fti_json_get(root, "choices"), 0), "delta");
    CHECK_EQ_STR(fti_json_get_str(c, "role", ""), "assistant");
    fti_json_free(doc);
    /* logprobs: chat's content entries with bytes, completions' four arrays; -inf as -9999 */
    {
        fti_api_logprob top[2], lp[2];
        const fti_json *e, *t;
        memset(top, 0, sizeof top);
        memset(lp, 0, sizeof lp);
        top[0].text = "\xC3";
        top[0].text_len = 1; /* half a character: bytes keep it, the token string gets U+FFFD */
        top[0].logprob = -0.5f;
        top[1].text = "b";
        top[1].text_len = 1;
        top[1].logprob = -INFINITY;
        lp[0].text = "\xC3";
        lp[0].text_len = 1;
        lp[0].logprob = -0.5f;
        lp[0].n_top = 2;
        lp[0].top = top;
        lp[1].text = "\xA9!";
        lp[1].text_len = 2;
        lp[1].logprob = -1.25f;
        lp[1].offset = 1;
        r.logprobs = 1;
        r.lp = lp;
        r.n_logprobs = 2;
        r.text = "\xC3\xA9!";
        r.text_len = 3;
        b.len = 0;
        fti_api_write_response(&b, FTI_API_CHAT, &r);
        REQUIRE(fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL) == FTI_OK);
        root = fti_json_root(doc);
        c = fti_json_get(fti_json_at(fti_json_get(root, "choices"), 0), "logprobs");
        REQUIRE(c && c->type == FTI_JSON_OBJECT);
        CHECK(fti_json_get(c, "refusal") && fti_json_get(c, "refusal")->type == FTI_JSON_NULL);
        e = fti_json_at(fti_json_get(c, "content"), 0);
        REQUIRE(e != NULL);
        CHECK_EQ_STR(fti_json_get_str(e, "token", ""), "\xEF\xBF\xBD");
        CHECK(fti_json_get_num(e, "logprob", 0) == -0.5);
        t = fti_json_get(e, "bytes");
        CHECK(t && t->len == 1 && fti_json_at(t, 0)->i == 0xC3);
        t = fti_json_get(e, "top_logprobs");
        CHECK(t && t->len == 2);
        CHECK(fti_json_get_num(fti_json_at(t, 1), "logprob", 0) == -9999.0);
        e = fti_json_at(fti_json_get(c, "content"), 1);
        CHECK(e && fti_json_get(e, "top_logprobs")->len == 0);
        CHECK(e && fti_json_get(e, "bytes")->len == 2);
        fti_json_free(doc);
        b.len = 0;
        fti_api_write_response(&b, FTI_API_COMPLETION, &r);
        REQUIRE(fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL) == FTI_OK);
        root = fti_json_root(doc);
        c = fti_json_get(fti_json_at(fti_json_get(root, "choices"), 0), "logprobs");
        REQUIRE(c && c->type == FTI_JSON_OBJECT);
        CHECK(fti_json_get(c, "tokens")->len == 2);
        CHECK(fti_json_at(fti_json_get(c, "token_logprobs"), 1)->num == -1.25);
        CHECK(fti_json_at(fti_json_get(c, "text_offset"), 1)->i == 1);
        t = fti_json_at(fti_json_get(c, "top_logprobs"), 0);
        CHECK(t && t->len == 2 && fti_json_get_num(t, "b", 0) == -9999.0);
        CHECK(fti_json_at(fti_json_get(c, "top_logprobs"), 1)->len == 0);
        fti_json_free(doc);
        /* a stream chunk without entries says null */
        b.len = 0;
        r.n_logprobs = 0;
        fti_api_write_chunk(&b, FTI_API_CHAT, &r, 0);
        REQUIRE(fti_json_parse(b.data + 6, b.len - 8, NULL, &doc, NULL, NULL) == FTI_OK);
        c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
        CHECK(fti_json_get(c, "logprobs")->type == FTI_JSON_NULL);
        fti_json_free(doc);
        r.logprobs = 0;
        r.lp = NULL;
    }
    { /* several choices (n > 1): each with its index, text and finish_reason; one usage */
        fti_api_result ch[2];
        ch[0] = r;
        ch[1] = r;
        ch[0].text = "first";
        ch[0].text_len = 5;
        ch[0].finish_reason = "stop";
        ch[1].index = 1;
        ch[1].text = "second";
        ch[1].text_len = 6;
        ch[1].finish_reason = "length";
        r.choices = ch;
        r.n_choices = 2;
        b.len = 0;
        fti_api_write_response(&b, FTI_API_COMPLETION, &r);
        REQUIRE(fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL) == FTI_OK);
        root = fti_json_root(doc);
        CHECK_EQ_INT(fti_json_get(root, "choices")->len, 2);
        c = fti_json_at(fti_json_get(root, "choices"), 1);
        CHECK_EQ_INT(fti_json_get_int(c, "index", -1), 1);
        CHECK_EQ_STR(fti_json_get_str(c, "text", ""), "second");
        CHECK_EQ_STR(fti_json_get_str(c, "finish_reason", ""), "length");
        CHECK_EQ_STR(fti_json_get_str(fti_json_at(fti_json_get(root, "choices"), 0), "text", ""),
                     "first");
        CHECK_EQ_INT(fti_json_get_int(fti_json_get(root, "usage"), "total_tokens", 0), 7);
        fti_json_free(doc);
        b.len = 0;
        fti_api_write_response(&b, FTI_API_CHAT, &r);
        REQUIRE(fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL) == FTI_OK);
        c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 1);
        CHECK_EQ_STR(fti_json_get_str(fti_json_get(c, "message"), "content", ""), "second");
        fti_json_free(doc);
        r.choices = NULL;
        r.n_choices = 0;
        /* a stream chunk carries its choice's index */
        r.index = 3;
        b.len = 0;
        fti_api_write_chunk(&b, FTI_API_COMPLETION, &r, 0);
        REQUIRE(fti_json_parse(b.data + 6, b.len - 8, NULL, &doc, NULL, NULL) == FTI_OK);
        c = fti_json_at(fti_json_get(fti_json_root(doc), "choices"), 0);
        CHECK_EQ_INT(fti_json_get_int(c, "index", -1), 3);
        fti_json_free(doc);
        r.index = 0;
    }
    b.len = 0;
    fti_api_write_done(&b);
    CHECK_EQ_STR(b.data, "data: [DONE]\n\n");
    b.len = 0;
    fti_api_write_error(&b, "bad \"x\"", NULL, "max_tokens", NULL);
    CHECK_EQ_STR(b.data,
                 "{\"error\":{\"message\":\"bad \\\"x\\\"\",\"type\":\"invalid_request_error\","
                 "\"param\":\"max_tokens\",\"code\":null}}");
    fti_buf_free(&b);
}

#else
void fti_test_http_bad_requests(void) {}
void fti_test_http_good_requests(void) {}
void fti_test_http_limits(void) {}
void fti_test_http_chunked_incremental(void) {}
void fti_test_http_random_bytes_never_crash(void) {}
void fti_test_http_api_validation(void) {}
void fti_test_http_api_writers(void) {}
#endif /* FTI_NO_SERVER */
