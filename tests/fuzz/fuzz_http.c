/* fuzz_http.c: fuzz entry for the HTTP/1.1 request parser and the OpenAI request validation.
 *
 *   make fuzz (mk/fuzz.mk) builds it through tests/fuzz/driver.c as build/fuzz/fuzz-http; the
 *   fuzz_replay test runs it over tests/fuzz/corpus/http and tests/fuzz/regress/http.
 *
 * Properties checked on every input (abort() on violation, so the fuzzer reports it):
 *   - the one-shot parse and an incremental parse, one more byte at a time (the head parsed again
 *     at the prefixes the server parses, then the resumable chunked decoder fed every prefix),
 *     agree on the outcome and the body;
 *   - a successful parse of the consumed prefix alone gives the same length (a request is never
 *     read as a different request when more bytes follow);
 *   - error results are statuses the server knows (400, 413, 414, 417, 431, 505);
 *   - an accepted completion request's stop strings are what the body said: non-empty C strings
 *     of at most FTI_API_MAX_STOP_LEN bytes (a "\u0000" used to become "", which matched at once);
 *   - an accepted request's prompts: completions 1..FTI_API_MAX_PROMPTS, each a NUL-terminated
 *     text no longer than the body or 1+ ids >= 0 that fit the context; prompt/prompt_len the
 *     first one's; chat: the rendered prompt ends in "\n\n", holds the title (without NUL) and
 *     the context, and is at most 3 bytes longer than the body;
 *   - the body read as POST /tokenize and /detokenize (fti__tokenize_parse, then the echo
 *     generator's tokenize/detokenize as the server calls them): status 200, 400 or 500; an
 *     accepted content at most FTI_TOKENIZE_MAX_BYTES and the body long, tokenized and
 *     detokenized back to itself; accepted ids >= 0, at most one per 2 bytes of body, detokenized
 *     exactly when all are below the vocabulary's 256.
 */
#ifndef FTI_NO_SERVER
#if FTI__SERVER /* (the /tokenize handler is the server's, which needs threads) */
/* The body as POST /tokenize and /detokenize read it, then the echo generator's calls. */
static void fti__fuzz_tokenize(const char *body, size_t len) {
    static fti_gen gen;
    static int have_gen = 0;
    int detok;
    if (!have_gen) {
        fti_gen_echo_opts eo;
        memset(&eo, 0, sizeof eo);
        FTI_FUZZ_CHECK(fti_gen_echo_create(&eo, &gen) == FTI_OK); /* kept for the process */
        have_gen = 1;
    }
    for (detok = 0; detok < 2; detok++) {
        fti_json_doc *doc = NULL;
        const fti_json *content = NULL;
        const char *param = NULL;
        int32_t *ids = NULL;
        size_t n = 0, i;
        int add = 0, st;
        fti_error err;
        fti_buf out;
        fti_tokens toks;
        fti_error_clear(&err);
        memset(&out, 0, sizeof out);
        memset(&toks, 0, sizeof toks);
        st = fti__tokenize_parse(detok, body, len, &doc, &content, &add, &ids, &n, &param, &err);
        FTI_FUZZ_CHECK(st == 200 || st == 400 || st == 500);
        FTI_FUZZ_CHECK(st == 200 || err.msg[0]);
        if (st == 200 && !detok) {
            FTI_FUZZ_CHECK(content && content->type == FTI_JSON_STRING && !ids && !param);
            FTI_FUZZ_CHECK(content->len <= FTI_TOKENIZE_MAX_BYTES && content->len <= len);
            FTI_FUZZ_CHECK(add == 0 || add == 1);
            FTI_FUZZ_CHECK(gen.tokenize(gen.user, content->str, content->len, add, &toks, &err) ==
                           FTI_OK);
            FTI_FUZZ_CHECK(toks.len == content->len);
            FTI_FUZZ_CHECK(gen.detokenize(gen.user, (const int32_t *)toks.ids, toks.len, &out,
                                          &err) == FTI_OK);
            FTI_FUZZ_CHECK(out.len == content->len &&
                           (!out.len || memcmp(out.data, content->str, out.len) == 0));
        } else if (st == 200) {
            int all_small = 1;
            FTI_FUZZ_CHECK(!content && !param && (n == 0) == (ids == NULL) && n <= len / 2);
            for (i = 0; i < n; i++) {
                FTI_FUZZ_CHECK(ids[i] >= 0);
                if (ids[i] >= 256) all_small = 0;
            }
            if (gen.detokenize(gen.user, ids, n, &out, &err) == FTI_OK) {
                FTI_FUZZ_CHECK(all_small && out.len == n);
                for (i = 0; i < n; i++)
                    FTI_FUZZ_CHECK((unsigned char)out.data[i] == (unsigned)ids[i]);
            } else {
                FTI_FUZZ_CHECK(!all_small && err.code == FTI_ERR_INVALID);
            }
        } else {
            FTI_FUZZ_CHECK(!param || strcmp(param, detok ? "tokens" : "content") == 0 ||
                           strcmp(param, "add_special") == 0);
        }
        fti_tokens_free(&toks);
        fti_buf_free(&out);
        fti_free(ids);
        fti_json_free(doc);
    }
}
#endif

/* The body as the OpenAI endpoints read it (completions and chat), then as /tokenize and
 * /detokenize read it. */
static void fti__fuzz_api(const char *b1, size_t n1) {
    size_t k;
    fti_api_request q;
    int kind;
    for (kind = 0; kind < 2; kind++) {
        if (fti_api_parse_completion(kind ? FTI_API_COMPLETION : FTI_API_CHAT, b1, n1, 2048,
                                     &q, NULL, NULL) == FTI_OK) {
            FTI_FUZZ_CHECK(q.n_stop <= FTI_API_MAX_STOP);
            /* n choices of best_of candidates: 1 <= n <= best_of <= FTI_API_MAX_N;
             * chat has no best_of nor echo; best_of above n is never streamed;
             * max_tokens 0 only with echo; completions have 1..FTI_API_MAX_PROMPTS
             * prompts, each a text or 1+ ids >= 0 that fit the context with
             * max_tokens; chat none */
            FTI_FUZZ_CHECK(q.n >= 1 && q.n <= q.best_of && q.best_of <= FTI_API_MAX_N);
            FTI_FUZZ_CHECK(kind || (q.best_of == q.n && !q.echo));
            FTI_FUZZ_CHECK(q.best_of == q.n || !q.stream);
            FTI_FUZZ_CHECK(q.max_tokens >= 1 || (q.max_tokens == 0 && q.echo));
            FTI_FUZZ_CHECK(kind ? q.n_prompts >= 1 && q.n_prompts <= FTI_API_MAX_PROMPTS
                                : q.n_prompts == 0 && !q.prompts);
            for (k = 0; k < q.n_prompts; k++) {
                const fti_api_prompt *pp = &q.prompts[k];
                size_t t;
                FTI_FUZZ_CHECK(!pp->text != !pp->ids);
                FTI_FUZZ_CHECK(!pp->ids || (pp->n_ids >= 1 &&
                                            pp->n_ids + (size_t)q.max_tokens <= 2048));
                for (t = 0; pp->ids && t < pp->n_ids; t++) FTI_FUZZ_CHECK(pp->ids[t] >= 0);
                FTI_FUZZ_CHECK(!pp->text ||
                               (pp->text_len <= n1 && pp->text[pp->text_len] == 0));
            }
            FTI_FUZZ_CHECK(q.prompt && q.prompt[q.prompt_len] == 0);
            if (kind)
                FTI_FUZZ_CHECK(q.prompts[0].text
                                   ? q.prompt_len == q.prompts[0].text_len &&
                                         memcmp(q.prompt, q.prompts[0].text,
                                                q.prompt_len) == 0
                                   : q.prompt_len == 0 && !q.chat_title);
            else {
                size_t tl;
                FTI_FUZZ_CHECK(q.chat_title && q.chat_context && q.prompt_len >= 2 &&
                               q.prompt_len <= n1 + 3);
                tl = strlen(q.chat_title);
                FTI_FUZZ_CHECK(memcmp(q.prompt + q.prompt_len - 2, "\n\n", 2) == 0);
                FTI_FUZZ_CHECK(tl + 2 <= q.prompt_len &&
                               memcmp(q.prompt + q.prompt_len - 2 - tl, q.chat_title,
                                      tl) == 0);
                FTI_FUZZ_CHECK(q.chat_context_len + tl + 2 <= q.prompt_len &&
                               memcmp(q.prompt, q.chat_context,
                                      q.chat_context_len) == 0);
            }
            FTI_FUZZ_CHECK(q.n_bias <= FTI_API_MAX_LOGIT_BIAS);
            FTI_FUZZ_CHECK((q.logprobs == 0 || q.logprobs == 1) && q.top_logprobs >= 0 &&
                           q.top_logprobs <= FTI_API_MAX_TOP_LOGPROBS);
            for (k = 0; k < q.n_bias; k++)
                FTI_FUZZ_CHECK(q.bias_ids[k] >= 0 && q.bias[k] >= -100.0f &&
                               q.bias[k] <= 100.0f);
            for (k = 0; k < q.n_stop; k++)
                FTI_FUZZ_CHECK(strlen(q.stop[k]) > 0 &&
                               strlen(q.stop[k]) <= FTI_API_MAX_STOP_LEN);
            { /* an accepted request's sampling parameters draw the most likely token
               * when one logit stands out by 400 (a subnormal temperature drew the
               * last token before session 6) */
                fti_sampler_opts so;
                fti_sampler *smp = NULL;
                float lg[12];
                memset(&so, 0, sizeof so);
                so.temperature = q.temperature;
                so.top_p = q.top_p;
                so.top_k = q.top_k;
                so.seed = q.seed;
                for (k = 0; k < 12; k++) lg[k] = (float)(k % 3);
                lg[5] = 400.0f;
                if (fti_sampler_create(&smp, 12, &so) == FTI_OK) {
                    FTI_FUZZ_CHECK(fti_sampler_sample(smp, lg) == 5);
                    fti_sampler_free(smp);
                }
            }
        }
        fti_api_request_free(&q);
    }
#if FTI__SERVER
    fti__fuzz_tokenize(b1, n1);
#endif
}

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
    /* incremental: the head is parsed again where the server parses it (fti__conn_read: when a
     * line end arrived), at the end of the input, at every prefix of inputs up to 64 bytes, and at
     * 8 more prefixes picked from the input's hash (over many inputs every prefix length gets its
     * turn). Parsing at every one of n prefixes cost O(n^2): 95% of this target's time, and it
     * limited the check to inputs of 4 KiB. Then the chunked decoder gets one more byte each
     * time. */
    {
        long head = 0;
        size_t pick[8], n_pick = 0, pi = 0, a, b;
        uint64_t x = fti_hash64(data, size, 0x5eed);
        fti_http_chunked c;
        memset(&c, 0, sizeof c);
        for (n_pick = 0; n_pick < 8; n_pick++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            pick[n_pick] = (size_t)((x >> 33) % ((uint64_t)size + 1));
        }
        for (a = 1; a < n_pick; a++) /* sorted */
            for (b = a; b > 0 && pick[b - 1] > pick[b]; b--) {
                size_t t = pick[b];
                pick[b] = pick[b - 1];
                pick[b - 1] = t;
            }
        for (k = 0; k <= size; k++) {
            if (head <= 0) {
                int due = k == size || size <= 64 || (k > 0 && data[k - 1] == '\n');
                while (pi < n_pick && pick[pi] < k) pi++;
                if (pi < n_pick && pick[pi] == k) due = 1;
                if (!due) continue;
                head = fti_http_parse_head(data, k, NULL, &h2);
                if (head < 0) {
                    r2 = head;
                    break;
                }
                if (head == 0) continue;
            }
            if (h2.chunked) {
                long bb = fti_http_chunked_feed(&c, data + head, k - (size_t)head, NULL, &body2);
                if (bb != 0) {
                    r2 = bb < 0 ? bb : head + bb;
                    break;
                }
            } else if ((uint64_t)(k - (size_t)head) >= h2.content_length) {
                r2 = head + (long)h2.content_length;
                break;
            }
        }
    }
    FTI_FUZZ_CHECK(r1 == r2);
    if (r1 > 0 && h1.chunked)
        FTI_FUZZ_CHECK(body1.len == body2.len &&
                       (body1.len == 0 || memcmp(body1.data, body2.data, body1.len) == 0));
    if (r1 > 0) {
        fti_buf body3;
        long r3;
        memset(&body3, 0, sizeof body3);
        r3 = fti_http_parse_request(data, (size_t)r1, NULL, &h2, &body3, NULL, NULL);
        FTI_FUZZ_CHECK(r3 == r1);
        fti_buf_free(&body3);
        if (n1) fti__fuzz_api(b1, n1);
    } else {
        /* the body of a request the HTTP parse did not accept whole, mostly one whose
         * Content-Length a mutation made wrong: what follows the head (all of the input when it
         * has no blank line) to the API parsers directly, so they are fuzzed however the framing
         * fares */
        const uint8_t *e = NULL;
        for (k = 0; k + 4 <= size && !e; k++)
            if (memcmp(data + k, "\r\n\r\n", 4) == 0) e = data + k + 4;
        if (!e) e = data;
        if (e < data + size) fti__fuzz_api((const char *)e, (size_t)(data + size - e));
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
