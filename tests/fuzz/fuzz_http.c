/* fuzz_http.c: fuzz entry for the HTTP/1.1 request parser and the OpenAI request validation.
 *
 *   make fuzz (mk/fuzz.mk) builds it through tests/fuzz/driver.c as build/fuzz/fuzz-http; the
 *   fuzz_replay test runs it over tests/fuzz/corpus/http and tests/fuzz/regress/http.
 *
 * Properties checked on every input (abort() on violation, so the fuzzer reports it):
 *   - the one-shot parse and a byte-by-byte incremental parse (head, then the resumable chunked
 *     decoder) agree on the outcome and the body;
 *   - a successful parse of the consumed prefix alone gives the same length (a request is never
 *     read as a different request when more bytes follow);
 *   - error results are statuses the server knows (400, 413, 414, 417, 431, 505);
 *   - an accepted completion request's stop strings are what the body said: non-empty C strings
 *     of at most FTI_API_MAX_STOP_LEN bytes (a "\u0000" used to become "", which matched at once).
 */
#ifndef FTI_NO_SERVER
int fti_fuzz_http(const uint8_t *data, size_t size) {
    static fti_http_head h1, h2; /* 8 KiB each: off the stack */
    fti_buf body1, body2;
    const char *b1 = NULL;
    size_t n1 = 0, k;
    long r1, r2 = 0;
    memset(&body1, 0, sizeof body1);
    memset(&body2, 0, sizeof body2);
    r1 = fti_http_parse_request(data, size, NULL, &h1, &body1, &b1, &n1);
    FTI_FUZZ_CHECK(r1 >= -505 && (size_t)(r1 > 0 ? r1 : 0) <= size);
    if (r1 < 0)
        FTI_FUZZ_CHECK(r1 == -400 || r1 == -413 || r1 == -414 || r1 == -417 || r1 == -431 ||
                        r1 == -505);
    /* incremental: head first, then the chunked decoder, one more byte each time (quadratic:
     * small inputs only) */
    if (size <= 4096) {
        long head = 0;
        fti_http_chunked c;
        memset(&c, 0, sizeof c);
        for (k = 0; k <= size; k++) {
            if (head <= 0) {
                head = fti_http_parse_head(data, k, NULL, &h2);
                if (head < 0) {
                    r2 = head;
                    break;
                }
                if (head == 0) continue;
            }
            if (h2.chunked) {
                long b = fti_http_chunked_feed(&c, data + head, k - (size_t)head, NULL, &body2);
                if (b != 0) {
                    r2 = b < 0 ? b : head + b;
                    break;
                }
            } else if ((uint64_t)(k - (size_t)head) >= h2.content_length) {
                r2 = head + (long)h2.content_length;
                break;
            }
        }
    }
    if (size <= 4096) FTI_FUZZ_CHECK(r1 == r2);
    if (r1 > 0 && h1.chunked && size <= 4096) FTI_FUZZ_CHECK(body1.len == body2.len &&
                                              (body1.len == 0 ||
                                               memcmp(body1.data, body2.data, body1.len) == 0));
    if (r1 > 0) {
        fti_buf body3;
        long r3;
        memset(&body3, 0, sizeof body3);
        r3 = fti_http_parse_request(data, (size_t)r1, NULL, &h2, &body3, NULL, NULL);
        FTI_FUZZ_CHECK(r3 == r1);
        fti_buf_free(&body3);
        if (n1) {
            fti_api_request q;
            int kind;
            for (kind = 0; kind < 2; kind++) {
                if (fti_api_parse_completion(kind ? FTI_API_COMPLETION : FTI_API_CHAT, b1, n1, 2048,
                                             &q, NULL, NULL) == FTI_OK) {
                    FTI_FUZZ_CHECK(q.n_stop <= FTI_API_MAX_STOP);
                    for (k = 0; k < q.n_stop; k++)
                        FTI_FUZZ_CHECK(strlen(q.stop[k]) > 0 &&
                                       strlen(q.stop[k]) <= FTI_API_MAX_STOP_LEN);
                }
                fti_api_request_free(&q);
            }
        }
    }
    fti_buf_free(&body1);
    fti_buf_free(&body2);
    return 0;
}
#else
int fti_fuzz_http(const uint8_t *data, size_t size) {
    (void)data;
    (void)size;
    return 0;
}
#endif
