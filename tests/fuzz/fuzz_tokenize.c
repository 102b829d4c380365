/* fuzz_tokenize.c: encode -> decode is the identity on any bytes (valid UTF-8 or not), for a
 * small tokenizer trained once per process, with and without special tokens; the streaming
 * decoder emits the same bytes as the one-shot decoder. */
static fti_tokenizer *fti__fuzz_tok;

static const fti_tokenizer *fti__fuzz_tokenizer(void) {
    if (!fti__fuzz_tok) {
        fti_bpe_train_opts o;
        fti_bpe_trainer *t = NULL;
        static const char *texts[] = {
            "POLITICS, n. A strife of interests masquerading as a contest of principles.",
            ("CYNIC, n. A blackguard whose faulty vision sees things as they are, not as they "
             "ought to be. Hence the custom among the Scythians of plucking out a cynic's eyes."),
            "Il \xc3\xa9tait une fois 12345 caf\xc3\xa9s \xe2\x80\x94 and   spaces\n\n\ttabs 's "
            "'ll"};
        size_t i;
        memset(&o, 0, sizeof o);
        o.vocab_size = 400;
        o.min_frequency = 1;
        if (fti_bpe_trainer_create(&o, &t) != FTI_OK) abort();
        for (i = 0; i < 3; i++)
            if (fti_bpe_trainer_add(t, texts[i], strlen(texts[i])) != FTI_OK) abort();
        if (fti_bpe_trainer_train(t, &fti__fuzz_tok, NULL) != FTI_OK) abort();
        fti_bpe_trainer_free(t);
    }
    return fti__fuzz_tok;
}

int fti_fuzz_tokenize(const uint8_t *data, size_t size) {
    const fti_tokenizer *tok = fti__fuzz_tokenizer();
    unsigned flags;
    for (flags = 0; flags <= FTI_TOK_ALLOW_SPECIAL; flags += FTI_TOK_ALLOW_SPECIAL) {
        fti_tokens t = {0};
        fti_buf out = {0}, stream = {0};
        fti_detok d;
        size_t i;
        FTI_FUZZ_CHECK(fti_tokenizer_encode(tok, (const char *)data, size, flags, &t) == FTI_OK);
        FTI_FUZZ_CHECK(fti_tokenizer_decode(tok, t.ids, t.len, &out) == FTI_OK);
        FTI_FUZZ_CHECK(out.len == size && (size == 0 || memcmp(out.data, data, size) == 0));
        memset(&d, 0, sizeof d);
        for (i = 0; i < t.len; i++)
            FTI_FUZZ_CHECK(fti_detok_push(&d, tok, t.ids[i], &stream) == FTI_OK);
        fti_detok_flush(&d, &stream);
        FTI_FUZZ_CHECK(stream.len == out.len &&
                       (out.len == 0 || memcmp(stream.data, out.data, out.len) == 0));
        fti_tokens_free(&t);
        fti_buf_free(&out);
        fti_buf_free(&stream);
    }
    return 0;
}
