/* test_tokenizer_props.c: properties (round trips, batch independence, merge variants), the
 * formats (fti, GPT-2 files, GGUF metadata), hostile files, streaming decode and training. */

/* A tiny tokenizer made by training, for format and hostile-file tests (no data files needed). */
static const char tokp_corpus[] =
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.\n"
    "I'm sure it's fine, they're here and we've gone. Don't panic!\n"
    "Numbers 12345 and 3.14159 and 2026. Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 "
    "\xe6\x97\xa5\xe6\x9c\xac.\n"
    "    indented code(x) { return x * 2; }   \n\n\n"
    "<|endoftext|>the end of the text, the end of the fox.";

static fti_tokenizer *tokp_small(fti_pretok pretok, size_t vocab, fti_pool *pool) {
    fti_bpe_train_opts o;
    fti_bpe_trainer *t = NULL;
    fti_tokenizer *tok = NULL;
    fti_error err;
    int i;
    memset(&o, 0, sizeof o);
    o.pretok = pretok;
    o.vocab_size = vocab;
    o.pool = pool;
    if (fti_bpe_trainer_create(&o, &t) != FTI_OK) return NULL;
    for (i = 0; i < 20; i++) fti_bpe_trainer_add(t, tokp_corpus, sizeof tokp_corpus - 1);
    if (fti_bpe_trainer_train(t, &tok, &err) != FTI_OK) tok = NULL; /* callers check */
    fti_bpe_trainer_free(t);
    return tok;
}

static fti_tokenizer *tokp_load(const char *file, fti_pretok pretok) {
    fti_tokenizer *tok = NULL;
    fti_tokenizer_opts o;
    fti_error err;
    char rel[256];
    memset(&o, 0, sizeof o);
    o.pretok = pretok;
    snprintf(rel, sizeof rel, "tokenizers/tiktoken/%s", file);
    if (!fti_path_exists(fti_test_data(rel))) {
        fprintf(stderr, "    (skipped: %s not found)\n", fti_test_data(rel));
        return NULL;
    }
    if (fti_tokenizer_load(fti_test_data(rel), &o, &tok, &err) != FTI_OK) {
        fprintf(stderr, "    %s\n", err.msg);
        fti_test_failures++;
    }
    return tok;
}

static int tokp_roundtrip(const fti_tokenizer *tok, const char *s, size_t n) {
    fti_tokens t;
    fti_buf b;
    int ok;
    memset(&t, 0, sizeof t);
    memset(&b, 0, sizeof b);
    ok = fti_tokenizer_encode(tok, s, n, 0, &t) == FTI_OK &&
         fti_tokenizer_decode(tok, t.ids, t.len, &b) == FTI_OK && b.len == n &&
         (n == 0 || memcmp(b.data, s, n) == 0);
    fti_tokens_free(&t);
    fti_buf_free(&b);
    return ok;
}

/* Random text: mixes ASCII words, spaces/newlines, digits, multi-byte characters, raw bytes. */
static size_t tokp_random_text(fti_rng *r, char *out, size_t cap, int raw_bytes) {
    static const char *const pieces[] = {
        " ", "  ", "\n", "\r\n", "\t", "the", "The", "'s", "'LL", "\xc5\xbf", "123", "4567",
        "\xc3\xa9", "\xcc\x81", "\xe2\x80\x94", "\xe3\x80\x80", "\xe6\x97\xa5", "\xf0\x9f\x98\x80",
        "!", "?!", "/", "x", "A", "\xc2\xa0", "\xd9\xa3", "__", "'", "HTTPServer", "\xe2\x85\xab"};
    size_t n = 0;
    while (n + 16 < cap) { /* the longest piece is 10 bytes */
        uint32_t k = fti_rng_below(r, 40);
        if (k < sizeof pieces / sizeof pieces[0]) {
            size_t l = strlen(pieces[k]);
            memcpy(out + n, pieces[k], l);
            n += l;
        } else if (raw_bytes) {
            out[n++] = (char)fti_rng_below(r, 256);
        } else {
            unsigned char u[4];
            uint32_t cp = fti_rng_below(r, 0x30000);
            if (cp >= 0xD800 && cp < 0xE000) cp = 'z';
            size_t l = fti_utf8_encode(cp, u);
            memcpy(out + n, u, l);
            n += l;
        }
        if (fti_rng_below(r, 50) == 0) break;
    }
    return n;
}

FTI_TEST(tokenizer_roundtrip_random) {
    fti_tokenizer *tok = tokp_small(FTI_PRETOK_GPT2, 400, NULL);
    fti_rng r;
    char buf[4096];
    int it, kind;
    REQUIRE(tok);
    fti_rng_seed(&r, 7, 1);
    for (kind = FTI_PRETOK_GPT2; kind <= FTI_PRETOK_O200K; kind++) {
        for (it = 0; it < 300; it++) {
            size_t n = tokp_random_text(&r, buf, sizeof buf, it & 1), pos = 0, k;
            /* pre-tokens tile the text */
            while (pos < n) {
                size_t e = fti_pretok_next((fti_pretok)kind, buf, n, pos);
                if (!(e > pos && e <= n)) {
                    CHECK(e > pos && e <= n);
                    break;
                }
                pos = e;
            }
            CHECK(tokp_roundtrip(tok, buf, n));
            /* pure random bytes of odd sizes */
            for (k = 0; k < 257 && k < sizeof buf; k++) buf[k] = (char)fti_rng_below(&r, 256);
            CHECK(tokp_roundtrip(tok, buf, (size_t)(it % 257)));
        }
    }
    fti_tokenizer_free(tok);
}

/* The long-word merge (heap) must equal the short-word merge (tiktoken's scan). */
FTI_TEST(tokenizer_merge_variants) {
    fti_tokenizer *tok = tokp_load("r50k_base.tiktoken", FTI_PRETOK_DEFAULT);
    fti__enc_ctx c1, c2;
    fti_rng r;
    unsigned char w[700];
    int it;
    if (!tok) return;
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    fti_rng_seed(&r, 3, 3);
    for (it = 0; it < 200; it++) {
        size_t n = 1 + fti_rng_below(&r, 600), k, m1, m2;
        static const char alpha[] = "etaoinshrdlu etaoin  \xc3\xa9";
        for (k = 0; k < n; k++)
            w[k] = (unsigned char)(it % 3 == 0
                                       ? fti_rng_below(&r, 256)
                                       : (unsigned char)alpha[fti_rng_below(&r, sizeof alpha - 1)]);
        REQUIRE(fti__enc_ctx_reserve(&c1, n) == FTI_OK && fti__enc_ctx_reserve(&c2, n) == FTI_OK);
        m1 = fti__bpe_small(tok, &c1, w, n, FTI__NO_RANK);
        m2 = fti__bpe_large(tok, &c2, w, n, FTI__NO_RANK);
        CHECK_EQ_INT(m1, m2);
        if (m1 == m2) CHECK(memcmp(c1.ids, c2.ids, m1 * sizeof(uint32_t)) == 0);
    }
    fti__enc_ctx_free(&c1);
    fti__enc_ctx_free(&c2);
    fti_tokenizer_free(tok);
}

/* Encoding is independent of the thread count and of batching at pre-token boundaries. */
FTI_TEST(tokenizer_batch_independence) {
    fti_tokenizer *tok = tokp_load("cl100k_base.tiktoken", FTI_PRETOK_DEFAULT);
    fti_buf text;
    fti_tokens serial, par, batch[4];
    fti_rng r;
    void *moby = NULL;
    size_t moby_len = 0, i, k;
    int nt;
    fti_error err;
    if (!tok) return;
    memset(&text, 0, sizeof text);
    memset(&serial, 0, sizeof serial);
    memset(batch, 0, sizeof batch);
    REQUIRE(fti_file_read(TOKDIR "moby_dick_chapter_1.txt", 0, &moby, &moby_len, &err) == FTI_OK);
    fti_rng_seed(&r, 11, 2);
    while (text.len < 700000) {
        char junk[512];
        fti_buf_append(&text, moby, moby_len);
        fti_buf_append(&text, junk, tokp_random_text(&r, junk, sizeof junk, 1));
        if (fti_rng_below(&r, 3) == 0) fti_buf_puts(&text, "a <|endoftext|> b<|fim_prefix|>c");
    }
    for (k = 0; k < 2; k++) {
        unsigned flags = k ? FTI_TOK_ALLOW_SPECIAL : 0;
        serial.len = 0;
        CHECK_OK(fti_tokenizer_encode(tok, text.data, text.len, flags, &serial));
        for (nt = 1; nt <= 3; nt++) {
            fti_pool *pool = fti_pool_create(nt);
            REQUIRE(pool);
            memset(&par, 0, sizeof par);
            CHECK_OK(fti_tokenizer_encode_pool(tok, pool, text.data, text.len, flags, &par));
            CHECK_EQ_INT(par.len, serial.len);
            CHECK(par.len == serial.len && memcmp(par.ids, serial.ids, par.len * 4) == 0);
            fti_tokens_free(&par);
            fti_pool_free(pool);
        }
    }
    /* batch of 4 pieces cut at safe boundaries = the whole */
    {
        const char *texts[4];
        size_t lens[4], cut[5], total = 0;
        fti_pool *pool = fti_pool_create(2);
        cut[0] = 0;
        cut[4] = text.len;
        for (i = 1; i < 4; i++) {
            size_t p = fti__find_cut((const unsigned char *)text.data, text.len, text.len * i / 4,
                                     text.len);
            REQUIRE(p > cut[i - 1]);
            cut[i] = p;
        }
        for (i = 0; i < 4; i++) {
            texts[i] = text.data + cut[i];
            lens[i] = cut[i + 1] - cut[i];
        }
        CHECK_OK(fti_tokenizer_encode_batch(tok, pool, texts, lens, 4, 0, batch));
        serial.len = 0;
        CHECK_OK(fti_tokenizer_encode(tok, text.data, text.len, 0, &serial));
        for (i = 0; i < 4; i++) {
            CHECK(total + batch[i].len <= serial.len);
            if (total + batch[i].len <= serial.len)
                CHECK(memcmp(batch[i].ids, serial.ids + total, batch[i].len * 4) == 0);
            total += batch[i].len;
            fti_tokens_free(&batch[i]);
        }
        CHECK_EQ_INT(total, serial.len);
        fti_pool_free(pool);
    }
    /* text without ASCII letters: cuts only after newlines */
    text.len = 0;
    while (text.len < 400000) {
        char junk[256];
        fti_buf_puts(&text,
                     "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80!\n"
                     "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\n\n  ");
        fti_buf_append(&text, junk, tokp_random_text(&r, junk, sizeof junk, 0));
    }
    serial.len = 0;
    CHECK_OK(fti_tokenizer_encode(tok, text.data, text.len, 0, &serial));
    for (nt = 2; nt <= 3; nt++) {
        fti_pool *pool = fti_pool_create(nt);
        REQUIRE(pool);
        memset(&par, 0, sizeof par);
        CHECK_OK(fti_tokenizer_encode_pool(tok, pool, text.data, text.len, 0, &par));
        CHECK(par.len == serial.len && memcmp(par.ids, serial.ids, par.len * 4) == 0);
        fti_tokens_free(&par);
        fti_pool_free(pool);
    }
    fti_tokens_free(&serial);
    fti_buf_free(&text);
    fti_free(moby);
    fti_tokenizer_free(tok);
}

FTI_TEST(tokenizer_special_tokens) {
    fti_tokenizer *tok = tokp_load("cl100k_base.tiktoken", FTI_PRETOK_DEFAULT);
    fti_tokens t;
    const char *s = "a<|endoftext|>b<|endofprompt|>";
    uint32_t id = 0;
    size_t len;
    if (!tok) return;
    memset(&t, 0, sizeof t);
    CHECK_EQ_INT(fti_tokenizer_eot_id(tok), 100257);
    CHECK_EQ_INT(fti_tokenizer_special_id(tok, "<|endofprompt|>"), 100276);
    CHECK_EQ_INT(fti_tokenizer_n_special(tok), 5);
    CHECK_EQ_INT(fti_tokenizer_vocab_size(tok), 100277);
    CHECK(fti_tokenizer_token(tok, 100256, &len) == NULL); /* a hole */
    CHECK_OK(fti_tokenizer_encode(tok, s, strlen(s), FTI_TOK_ALLOW_SPECIAL, &t));
    CHECK_EQ_INT(t.len, 4);
    if (t.len == 4) {
        CHECK_EQ_INT(t.ids[1], 100257);
        CHECK_EQ_INT(t.ids[3], 100276);
    }
    t.len = 0;
    CHECK_OK(fti_tokenizer_encode(tok, s, strlen(s), 0, &t)); /* untrusted: plain text */
    for (len = 0; len < t.len; len++) CHECK(t.ids[len] < 100256);
    CHECK_OK(fti_tokenizer_add_special(tok, "<|im_start|>", 12, &id));
    CHECK_EQ_INT(id, 100277);
    CHECK_EQ_INT(fti_tokenizer_special_id(tok, "<|im_start|>"), 100277);
    CHECK_EQ_INT(fti_tokenizer_add_special(tok, "hello", 5, &id), FTI_ERR_EXISTS);
    t.len = 0;
    CHECK_OK(fti_tokenizer_encode(tok, "x<|im_start|>y", 14, FTI_TOK_ALLOW_SPECIAL, &t));
    CHECK(t.len == 3 && t.ids[1] == 100277);
    {
        uint32_t bad = 100256;
        fti_buf b;
        memset(&b, 0, sizeof b);
        CHECK_EQ_INT(fti_tokenizer_decode(tok, &bad, 1, &b), FTI_ERR_INVALID);
        fti_buf_free(&b);
    }
    fti_tokens_free(&t);
    fti_tokenizer_free(tok);
}

FTI_TEST(tokenizer_gpt2_files) {
    fti_tokenizer *a = tokp_load("r50k_base.tiktoken", FTI_PRETOK_DEFAULT), *b = NULL;
    fti_error err;
    void *moby = NULL;
    size_t moby_len = 0;
    fti_tokens ta, tb;
    if (!a) return;
    memset(&ta, 0, sizeof ta);
    memset(&tb, 0, sizeof tb);
    CHECK_OK(fti_tokenizer_load(fti_test_data("tokenizers/gpt2/encoder.json"), NULL, &b, &err));
    if (!b) fprintf(stderr, "    %s\n", err.msg);
    REQUIRE(b);
    CHECK_EQ_INT(fti_tokenizer_vocab_size(b), 50257);
    CHECK_EQ_INT(fti_tokenizer_eot_id(b), 50256);
    CHECK_EQ_INT(fti_tokenizer_pretok(b), FTI_PRETOK_GPT2);
    REQUIRE(fti_file_read(TOKDIR "moby_dick_chapter_1.txt", 0, &moby, &moby_len, &err) == FTI_OK);
    CHECK_OK(fti_tokenizer_encode(a, (const char *)moby, moby_len, 0, &ta));
    CHECK_OK(fti_tokenizer_encode(b, (const char *)moby, moby_len, 0, &tb));
    CHECK(ta.len == tb.len && memcmp(ta.ids, tb.ids, ta.len * 4) == 0);
    fti_tokens_free(&ta);
    fti_tokens_free(&tb);
    fti_free(moby);
    fti_tokenizer_free(a);
    fti_tokenizer_free(b);
}

/* fti format: save, load, same id and same ids; trained tokenizers are deterministic for any
 * thread count. */
FTI_TEST(tokenizer_fti_format_and_training) {
    fti_pool *p2 = fti_pool_create(2), *p3 = fti_pool_create(3);
    fti_tokenizer *a = tokp_small(FTI_PRETOK_CL100K, 380, NULL);
    fti_tokenizer *b = tokp_small(FTI_PRETOK_CL100K, 380, p2);
    fti_tokenizer *c = tokp_small(FTI_PRETOK_CL100K, 380, p3), *d = NULL;
    fti_buf sa, sb;
    char ha[65], hd[65];
    fti_error err;
    fti_tokens ta, td;
    REQUIRE(a && b && c);
    memset(&sa, 0, sizeof sa);
    memset(&sb, 0, sizeof sb);
    memset(&ta, 0, sizeof ta);
    memset(&td, 0, sizeof td);
    CHECK_OK(fti_tokenizer_serialize(a, &sa));
    CHECK_OK(fti_tokenizer_serialize(b, &sb));
    CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
    sb.len = 0;
    CHECK_OK(fti_tokenizer_serialize(c, &sb));
    CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
    CHECK_EQ_INT(fti_tokenizer_vocab_size(a), 380);
    CHECK_EQ_INT(fti_tokenizer_eot_id(a), 379);
    CHECK_OK(fti_tokenizer_save(a, fti_test_tmp("t.ftitok"), &err));
    CHECK_OK(fti_tokenizer_load(fti_test_tmp("t.ftitok"), NULL, &d, &err));
    REQUIRE(d);
    fti_tokenizer_id_hex(a, ha);
    fti_tokenizer_id_hex(d, hd);
    CHECK_EQ_STR(ha, hd);
    CHECK_EQ_INT(fti_tokenizer_pretok(d), FTI_PRETOK_CL100K);
    CHECK_OK(
        fti_tokenizer_encode(a, tokp_corpus, sizeof tokp_corpus - 1, FTI_TOK_ALLOW_SPECIAL, &ta));
    CHECK_OK(
        fti_tokenizer_encode(d, tokp_corpus, sizeof tokp_corpus - 1, FTI_TOK_ALLOW_SPECIAL, &td));
    CHECK(ta.len == td.len && memcmp(ta.ids, td.ids, ta.len * 4) == 0);
    CHECK(ta.len < (sizeof tokp_corpus) / 2); /* it learned something */
    fti_tokens_free(&ta);
    fti_tokens_free(&td);
    fti_buf_free(&sa);
    fti_buf_free(&sb);
    fti_tokenizer_free(a);
    fti_tokenizer_free(b);
    fti_tokenizer_free(c);
    fti_tokenizer_free(d);
    fti_pool_free(p2);
    fti_pool_free(p3);
}

/* The incremental trainer equals a naive one that recounts every pair at every step. */
FTI_TEST(tokenizer_train_vs_naive) {
    fti_bpe_train_opts o;
    fti_bpe_trainer *t = NULL;
    fti_tokenizer *tok = NULL;
    fti_error err;
    /* naive: words as symbol arrays */
    enum { MAXW = 4096, MAXL = 64 };
    static uint32_t ws[MAXW][MAXL];
    static uint32_t wl[MAXW], wc[MAXW];
    static unsigned char tb[1024][64];
    static size_t tl[1024];
    size_t nw = 0, i, k, n_tok = 256, pos = 0, n = sizeof tokp_corpus - 1;
    memset(&o, 0, sizeof o);
    o.vocab_size = 256 + 60;
    o.no_default_special = 1;
    o.pretok = FTI_PRETOK_GPT2;
    REQUIRE(fti_bpe_trainer_create(&o, &t) == FTI_OK);
    CHECK_OK(fti_bpe_trainer_add(t, tokp_corpus, n));
    REQUIRE(fti_bpe_trainer_train(t, &tok, &err) == FTI_OK);
    fti_bpe_trainer_free(t);
    /* the naive trainer (same pre-tokens: the corpus contains <|endoftext|>, which the trainer
     * does not cut here since there are no special tokens) */
    while (pos < n) {
        size_t e = fti_pretok_next(FTI_PRETOK_GPT2, tokp_corpus, n, pos);
        for (k = 0; k < nw; k++)
            if (wl[k] == e - pos) {
                size_t q;
                for (q = 0; q < wl[k] && ws[k][q] == (unsigned char)tokp_corpus[pos + q]; q++) {}
                if (q == wl[k]) break;
            }
        if (k == nw) {
            REQUIRE(nw < MAXW && e - pos < MAXL);
            for (i = 0; i < e - pos; i++) ws[nw][i] = (unsigned char)tokp_corpus[pos + i];
            wl[nw] = (uint32_t)(e - pos);
            wc[nw++] = 0;
        }
        wc[k]++;
        pos = e;
    }
    for (i = 0; i < 256; i++) {
        tb[i][0] = (unsigned char)i;
        tl[i] = 1;
    }
    while (n_tok < 316) {
        uint32_t ba = 0, bb = 0, a, b;
        long best = 0;
        size_t w2;
        /* count all pairs: O(vocab^2) scan over candidate pairs via the words */
        for (k = 0; k < nw; k++)
            for (i = 0; i + 1 < wl[k]; i++) {
                long cnt = 0;
                a = ws[k][i];
                b = ws[k][i + 1];
                for (w2 = 0; w2 < nw; w2++) {
                    size_t j;
                    for (j = 0; j + 1 < wl[w2]; j++)
                        if (ws[w2][j] == a && ws[w2][j + 1] == b) {
                            cnt += wc[w2];
                            if (a == b && j + 2 < wl[w2] && ws[w2][j + 2] == a) {
                                /* overlapping "aaa" counts each adjacent pair: keep it simple */
                            }
                        }
                }
                if (cnt > best || (cnt == best && (a < ba || (a == ba && b < bb)))) {
                    best = cnt;
                    ba = a;
                    bb = b;
                }
            }
        if (best < 2) break;
        memcpy(tb[n_tok], tb[ba], tl[ba]);
        memcpy(tb[n_tok] + tl[ba], tb[bb], tl[bb]);
        tl[n_tok] = tl[ba] + tl[bb];
        /* compare with the trained token n_tok */
        {
            size_t len;
            const char *tt = fti_tokenizer_token(tok, (uint32_t)n_tok, &len);
            CHECK(tt && len == tl[n_tok] && memcmp(tt, tb[n_tok], len) == 0);
            if (!(tt && len == tl[n_tok] && memcmp(tt, tb[n_tok], len) == 0)) break;
        }
        for (k = 0; k < nw; k++) {
            size_t j = 0, x = 0;
            while (x < wl[k]) {
                if (x + 1 < wl[k] && ws[k][x] == ba && ws[k][x + 1] == bb) {
                    ws[k][j++] = (uint32_t)n_tok;
                    x += 2;
                } else {
                    ws[k][j++] = ws[k][x++];
                }
            }
            wl[k] = (uint32_t)j;
        }
        n_tok++;
    }
    CHECK_EQ_INT(fti_tokenizer_vocab_size(tok), n_tok);
    fti_tokenizer_free(tok);
}

FTI_TEST(tokenizer_gguf_roundtrip) {
    fti_tokenizer *tok = tokp_load("cl100k_base.tiktoken", FTI_PRETOK_DEFAULT), *back = NULL;
    fti_tokenizer_gguf g;
    size_t *tl = NULL, *ml = NULL, i;
    fti_error err;
    void *data = NULL;
    size_t len = 0;
    fti_tokens a, b;
    if (!tok) return;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    REQUIRE(fti_tokenizer_gguf_make(tok, &g) == FTI_OK);
    CHECK_EQ_STR(g.model, "gpt2");
    CHECK_EQ_STR(g.pre, "llama-bpe");
    CHECK_EQ_INT(g.n_tokens, 100277);
    CHECK_EQ_INT(g.n_merges, 100256 - 256);
    CHECK_EQ_STR(g.tokens[100257], "<|endoftext|>");
    CHECK_EQ_INT(g.token_types[100257], 3);
    CHECK_EQ_INT(g.token_types[100256], 5);
    CHECK_EQ_INT(g.token_types[65], 1);
    CHECK_EQ_STR(g.tokens[220], "\xc4\xa0"); /* " " is U+0120 */
    CHECK_EQ_STR(g.merges[0], "\xc4\xa0 \xc4\xa0");
    tl = (size_t *)malloc(g.n_tokens * sizeof(size_t));
    ml = (size_t *)malloc(g.n_merges * sizeof(size_t));
    REQUIRE(tl && ml);
    for (i = 0; i < g.n_tokens; i++) tl[i] = strlen(g.tokens[i]);
    for (i = 0; i < g.n_merges; i++) ml[i] = strlen(g.merges[i]);
    CHECK_OK(fti_tokenizer_from_gguf((const char *const *)g.tokens, tl, g.token_types, g.n_tokens,
                                     (const char *const *)g.merges, ml, g.n_merges, g.pre, &back,
                                     &err));
    if (!back) fprintf(stderr, "    %s\n", err.msg);
    REQUIRE(back);
    REQUIRE(fti_file_read(TOKDIR "tricky_unicode.txt", 0, &data, &len, &err) == FTI_OK);
    CHECK_OK(fti_tokenizer_encode(tok, (const char *)data, len, 0, &a));
    CHECK_OK(fti_tokenizer_encode(back, (const char *)data, len, 0, &b));
    CHECK(a.len == b.len && memcmp(a.ids, b.ids, a.len * 4) == 0);
    /* hostile metadata */
    {
        fti_tokenizer *bad = NULL;
        const char *m1[] = {"Q Q Q"};
        size_t l1[] = {5};
        char *saved = g.merges[1];
        CHECK_EQ_INT(fti_tokenizer_from_gguf((const char *const *)g.tokens, tl, g.token_types, 100,
                                             NULL, NULL, 0, g.pre, &bad, &err),
                     FTI_ERR_FORMAT); /* fewer than 256 byte tokens */
        CHECK_EQ_INT(fti_tokenizer_from_gguf((const char *const *)g.tokens, tl, g.token_types,
                                             g.n_tokens, m1, l1, 1, g.pre, &bad, &err),
                     FTI_ERR_FORMAT);
        g.merges[1] = (char *)"nospace";
        ml[1] = 7;
        CHECK_EQ_INT(fti_tokenizer_from_gguf((const char *const *)g.tokens, tl, g.token_types,
                                             g.n_tokens, (const char *const *)g.merges, ml,
                                             g.n_merges, g.pre, &bad, &err),
                     FTI_ERR_FORMAT);
        g.merges[1] = saved;
        CHECK_EQ_INT(fti_tokenizer_from_gguf((const char *const *)g.tokens, tl, g.token_types,
                                             g.n_tokens, NULL, NULL, 0, "unknown-pre", &bad, &err),
                     FTI_ERR_UNSUPPORTED);
        CHECK(bad == NULL);
    }
    free(tl);
    free(ml);
    fti_free(data);
    fti_tokens_free(&a);
    fti_tokens_free(&b);
    fti_tokenizer_gguf_free(&g);
    fti_tokenizer_free(back);
    fti_tokenizer_free(tok);
}

static fti_result tokp_try(const char *text, fti_error *err) {
    fti_tokenizer *tok = NULL;
    fti_result r = fti_tokenizer_load_mem(text, strlen(text), "bad.tiktoken", NULL, &tok, err);
    fti_tokenizer_free(tok);
    return r;
}

/* A valid 256-byte tiktoken text plus extra lines. */
static void tokp_tiktoken_text(fti_buf *b, const char *extra) {
    int i;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (i = 0; i < 256; i++)
        fti_buf_printf(b, "%c%c== %d\n", b64[i >> 2], b64[(i & 3) << 4], i);
    fti_buf_puts(b, extra);
}

FTI_TEST(tokenizer_hostile_files) {
    fti_error err;
    fti_buf b;
    fti_tokenizer *tok = NULL, *small;
    size_t cut;
    static const char *const bad[] = {
        "aGk= 256\naGk= 257\n",      /* duplicate bytes */
        "aGk= 256\naGl= 256\n",      /* duplicate rank (and bad padding bits) */
        "aGk== 256\n",               /* bad base64 padding */
        "a!k= 256\n",                /* bad base64 char */
        "aGk=256\n",                 /* no space */
        "aGk= \n",                   /* no rank */
        "aGk= 99999999999999999999\n", /* huge rank */
        "aGk= 12x\n",                /* junk rank */
    };
    size_t i;
    memset(&b, 0, sizeof b);
    tokp_tiktoken_text(&b, "aGk= 256\n");
    CHECK_OK(fti_tokenizer_load_mem(b.data, b.len, "ok.tiktoken", NULL, &tok, &err));
    CHECK_EQ_INT(fti_tokenizer_vocab_size(tok), 257);
    fti_tokenizer_free(tok);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fti_result r;
        b.len = 0;
        tokp_tiktoken_text(&b, bad[i]);
        r = tokp_try(b.data, &err);
        CHECK(r == FTI_ERR_FORMAT || r == FTI_ERR_LIMIT);
        CHECK(strstr(err.msg, "bad.tiktoken") != NULL);
    }
    CHECK_EQ_INT(tokp_try("aGk= 256\n", &err), FTI_ERR_FORMAT); /* bytes missing */
    CHECK(strstr(err.msg, "no token for byte") != NULL);
    CHECK_EQ_INT(tokp_try("", &err), FTI_ERR_FORMAT);
    CHECK_EQ_INT(tokp_try("{\"a\": 1}", &err), FTI_ERR_UNSUPPORTED);
    /* a model file says where its tokenizer is read (it was "line 1: expected <base64> <rank>") */
    CHECK_EQ_INT(tokp_try("GGUF\003\000\000\000", &err), FTI_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "a GGUF model file") != NULL);
    CHECK(strstr(err.msg, "fti_engine_tokenizer") != NULL);
    /* fti files: every truncation, and a flipped byte, are rejected */
    small = tokp_small(FTI_PRETOK_GPT2, 300, NULL);
    REQUIRE(small);
    b.len = 0;
    CHECK_OK(fti_tokenizer_serialize(small, &b));
    for (cut = 0; cut < b.len; cut += (cut < 64 ? 1 : 97)) {
        fti_result r = fti_tokenizer_load_mem(b.data, cut, "t.ftitok", NULL, &tok, &err);
        CHECK(r != FTI_OK);
        if (r == FTI_OK) fti_tokenizer_free(tok);
    }
    b.data[b.len / 2] ^= 1;
    CHECK_EQ_INT(fti_tokenizer_load_mem(b.data, b.len, "t.ftitok", NULL, &tok, &err),
                 FTI_ERR_CHECKSUM);
    b.data[b.len / 2] ^= 1;
    /* valid checksum, hostile counts */
    {
        unsigned char d[32];
        fti_store_u32(b.data + 20, 0xFFFFFFF0u); /* n_tokens */
        fti_sha256_buf(b.data, b.len - 32, d);
        memcpy(b.data + b.len - 32, d, 32);
        CHECK_EQ_INT(fti_tokenizer_load_mem(b.data, b.len, "t.ftitok", NULL, &tok, &err),
                     FTI_ERR_LIMIT);
        fti_store_u32(b.data + 16, 0xFFFFFFF0u); /* n_vocab */
        fti_sha256_buf(b.data, b.len - 32, d);
        memcpy(b.data + b.len - 32, d, 32);
        CHECK_EQ_INT(fti_tokenizer_load_mem(b.data, b.len, "t.ftitok", NULL, &tok, &err),
                     FTI_ERR_LIMIT);
        fti_store_u32(b.data + 8, 7); /* version */
        fti_sha256_buf(b.data, b.len - 32, d);
        memcpy(b.data + b.len - 32, d, 32);
        CHECK_EQ_INT(fti_tokenizer_load_mem(b.data, b.len, "t.ftitok", NULL, &tok, &err),
                     FTI_ERR_UNSUPPORTED);
    }
    /* GPT-2 files */
    {
        const char *enc = "{\"a\": 0, \"b\": 1}";
        CHECK(fti_tokenizer_load_gpt2_mem(enc, strlen(enc), "#version: 0.2\na b\n", 18, NULL, &tok,
                                          &err) == FTI_ERR_FORMAT);
        CHECK(fti_tokenizer_load_gpt2_mem("[1,2]", 5, "", 0, NULL, &tok, &err) == FTI_ERR_FORMAT);
        CHECK(fti_tokenizer_load_gpt2_mem("{\"a\": -1}", 9, "", 0, NULL, &tok, &err) ==
              FTI_ERR_FORMAT);
        CHECK(fti_tokenizer_load_gpt2_mem("{\"a\": ", 6, "", 0, NULL, &tok, &err) != FTI_OK);
    }
    fti_buf_free(&b);
    fti_tokenizer_free(small);
}

/* Allocation failures anywhere in training, serializing, loading and encoding fail cleanly. */
FTI_TEST(tokenizer_alloc_failures) {
    long k;
    for (k = 1; k < 400; k += 3) {
        fti_tokenizer *tok, *back = NULL;
        fti_buf b;
        fti_tokens t;
        fti_test_alloc_fail_at(k, 0);
        tok = tokp_small(FTI_PRETOK_O200K, 300, NULL);
        memset(&b, 0, sizeof b);
        memset(&t, 0, sizeof t);
        if (tok && fti_tokenizer_serialize(tok, &b) == FTI_OK)
            fti_tokenizer_load_mem(b.data, b.len, "x", NULL, &back, NULL);
        if (tok) fti_tokenizer_encode(tok, tokp_corpus, sizeof tokp_corpus - 1, 0, &t);
        fti_test_alloc_fail_at(0, 0);
        fti_tokens_free(&t);
        fti_buf_free(&b);
        fti_tokenizer_free(back);
        fti_tokenizer_free(tok);
    }
    CHECK(1);
}

FTI_TEST(tokenizer_streaming_decode) {
    fti_tokenizer *tok = tokp_small(FTI_PRETOK_GPT2, 300, NULL);
    const char *s = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80! \xff end";
    fti_tokens t;
    fti_buf out;
    fti_detok d;
    size_t i;
    REQUIRE(tok);
    memset(&t, 0, sizeof t);
    memset(&out, 0, sizeof out);
    memset(&d, 0, sizeof d);
    CHECK_OK(fti_tokenizer_encode(tok, s, strlen(s), 0, &t));
    CHECK(t.len > 10); /* many byte tokens: multi-byte characters arrive in pieces */
    for (i = 0; i < t.len; i++) {
        CHECK_OK(fti_detok_push(&d, tok, t.ids[i], &out));
        /* never ends inside a character (the raw 0xff is emitted as is) */
        CHECK(fti_utf8_incomplete_tail((const unsigned char *)out.data, out.len) == 0);
    }
    fti_detok_flush(&d, &out);
    CHECK(out.len == strlen(s) && memcmp(out.data, s, out.len) == 0);
    /* repair mode: the invalid byte becomes U+FFFD, a dangling lead byte too at flush */
    out.len = 0;
    memset(&d, 0, sizeof d);
    d.repair = 1;
    for (i = 0; i < t.len; i++) fti_detok_push(&d, tok, t.ids[i], &out);
    CHECK(strstr(out.data, "\xef\xbf\xbd end") != NULL);
    out.len = 0;
    {
        int64_t lead = fti_tokenizer_find(tok, "\xe6", 1);
        REQUIRE(lead >= 0);
        CHECK_OK(fti_detok_push(&d, tok, (uint32_t)lead, &out));
        CHECK_EQ_INT(out.len, 0);
        fti_detok_flush(&d, &out);
        CHECK(out.len == 3 && memcmp(out.data, "\xef\xbf\xbd", 3) == 0);
    }
    fti_buf_free(&out);
    fti_tokens_free(&t);
    fti_tokenizer_free(tok);
}
