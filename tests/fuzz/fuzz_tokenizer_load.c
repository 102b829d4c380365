/* fuzz_tokenizer_load.c: tokenizer files from any bytes (fti's format, .tiktoken, and GPT-2
 * encoder.json + vocab.bpe split at the first NUL). What loads must encode its own input so that
 * it decodes back, and must re-serialize to a file that loads to the same id. */
static void fti__fuzz_tok_check(fti_tokenizer *tok, const uint8_t *data, size_t size) {
    fti_tokens t = {0};
    fti_buf b = {0}, s = {0};
    fti_tokenizer *back = NULL;
    unsigned char d1[32], d2[32];
    size_t n = size < 4096 ? size : 4096;
    FTI_FUZZ_CHECK(fti_tokenizer_encode(tok, (const char *)data, n, FTI_TOK_ALLOW_SPECIAL, &t) ==
                   FTI_OK);
    FTI_FUZZ_CHECK(fti_tokenizer_decode(tok, t.ids, t.len, &b) == FTI_OK);
    FTI_FUZZ_CHECK(b.len == n && (n == 0 || memcmp(b.data, data, n) == 0));
    FTI_FUZZ_CHECK(fti_tokenizer_serialize(tok, &s) == FTI_OK);
    FTI_FUZZ_CHECK(fti_tokenizer_load_mem(s.data, s.len, "re", NULL, &back, NULL) == FTI_OK);
    fti_tokenizer_sha256(tok, d1);
    fti_tokenizer_sha256(back, d2);
    FTI_FUZZ_CHECK(memcmp(d1, d2, 32) == 0);
    fti_tokenizer_free(back);
    fti_tokens_free(&t);
    fti_buf_free(&b);
    fti_buf_free(&s);
}

int fti_fuzz_tokenizer_load(const uint8_t *data, size_t size) {
    fti_tokenizer *tok = NULL;
    fti_error err;
    const uint8_t *nul = (const uint8_t *)memchr(data, 0, size);
    if (fti_tokenizer_load_mem(data, size, "fuzz", NULL, &tok, &err) == FTI_OK) {
        fti__fuzz_tok_check(tok, data, size);
        fti_tokenizer_free(tok);
    } else {
        FTI_FUZZ_CHECK(tok == NULL && err.code != FTI_OK && err.msg[0]);
    }
    tok = NULL;
    if (nul && fti_tokenizer_load_gpt2_mem(data, (size_t)(nul - data), nul + 1,
                                           size - (size_t)(nul - data) - 1, NULL, &tok,
                                           &err) == FTI_OK) {
        fti__fuzz_tok_check(tok, data, size);
        fti_tokenizer_free(tok);
    }
    return 0;
}
