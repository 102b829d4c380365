/* fuzz_tokenizer_encode.c: any bytes through one of the three pre-tokenizers (the first byte
 * picks it: one per input, so that each execution is a third of the work and the fuzzer steers
 * the choice) and a small tokenizer trained with it: pre-tokens tile the input, encode/decode
 * round-trips (with and without special tokens), the batch path (which adds a word cache for
 * texts of 4096 bytes and more) gives the serial ids, and streaming decode gives the bytes.
 * fti_tokenizer_encode_pool is not called: below 128 KiB (all inputs here) or without a pool it
 * is fti_tokenizer_encode itself, so comparing the two checked nothing and cost a third of the
 * executions; the batch call on shorter texts is the same serial encode too, so it runs from
 * 4096 bytes on, where its cache makes it a different path. */
static fti_tokenizer *fti__fuzz_enc_tok[4];

static fti_tokenizer *fti__fuzz_enc_get(int kind) {
    static const char corpus[] =
        "The quick brown fox, it's 12345 jumps! \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac  \n\n"
        "HTTPServer x86_64 <|endoftext|> don't  'LL \t\r\n";
    if (!fti__fuzz_enc_tok[kind]) {
        fti_bpe_train_opts o;
        fti_bpe_trainer *t = NULL;
        int i;
        memset(&o, 0, sizeof o);
        o.pretok = (fti_pretok)kind;
        o.vocab_size = 300;
        FTI_FUZZ_CHECK(fti_bpe_trainer_create(&o, &t) == FTI_OK);
        for (i = 0; i < 4; i++) fti_bpe_trainer_add(t, corpus, sizeof corpus - 1);
        FTI_FUZZ_CHECK(fti_bpe_trainer_train(t, &fti__fuzz_enc_tok[kind], NULL) == FTI_OK);
        fti_bpe_trainer_free(t);
    }
    return fti__fuzz_enc_tok[kind];
}

int fti_fuzz_tokenizer_encode(const uint8_t *data, size_t size) {
    const char *s = (const char *)data + 1;
    int kind;
    if (size < 1) return 0;
    kind = FTI_PRETOK_GPT2 + data[0] % 3;
    size--;
    {
        fti_tokenizer *tok = fti__fuzz_enc_get(kind);
        fti_tokens a = {0}, c[1];
        fti_buf out = {0}, st = {0};
        fti_detok d;
        size_t pos = 0, i;
        unsigned flags;
        while (pos < size) {
            size_t e = fti_pretok_next((fti_pretok)kind, s, size, pos);
            FTI_FUZZ_CHECK(e > pos && e <= size);
            pos = e;
        }
        for (flags = 0; flags <= FTI_TOK_ALLOW_SPECIAL; flags++) {
            a.len = out.len = 0;
            FTI_FUZZ_CHECK(fti_tokenizer_encode(tok, s, size, flags, &a) == FTI_OK);
            FTI_FUZZ_CHECK(fti_tokenizer_decode(tok, a.ids, a.len, &out) == FTI_OK);
            FTI_FUZZ_CHECK(out.len == size && (size == 0 || memcmp(out.data, s, size) == 0));
        }
        memset(c, 0, sizeof c);
        if (size >= 4096) {
            FTI_FUZZ_CHECK(fti_tokenizer_encode_batch(tok, NULL, &s, &size, 1,
                                                      FTI_TOK_ALLOW_SPECIAL, c) == FTI_OK);
            FTI_FUZZ_CHECK(c[0].len == a.len &&
                           (a.len == 0 || !memcmp(a.ids, c[0].ids, a.len * 4)));
        }
        memset(&d, 0, sizeof d);
        for (i = 0; i < a.len; i++)
            FTI_FUZZ_CHECK(fti_detok_push(&d, tok, a.ids[i], &st) == FTI_OK);
        fti_detok_flush(&d, &st);
        FTI_FUZZ_CHECK(st.len == size && (size == 0 || memcmp(st.data, s, size) == 0));
        fti_tokens_free(&a);
        fti_tokens_free(&c[0]);
        fti_buf_free(&out);
        fti_buf_free(&st);
    }
    return 0;
}
