/* fuzz_tokenizer_file.c: tokenizer files (fti's format or .tiktoken, sniffed) from any bytes; an
 * accepted tokenizer encodes and decodes a fixed text without crashing. */
int fti_fuzz_tokenizer_file(const uint8_t *data, size_t size) {
    fti_tokenizer *tok = NULL;
    fti_error err;
    fti_tokens t = {0};
    fti_buf out = {0};
    static const char text[] = "The cynic's word book, 1906: caf\xc3\xa9 <|endoftext|> 123456.";
    if (fti_tokenizer_load_mem(data, size, "fuzz.tok", NULL, &tok, &err) != FTI_OK) {
        FTI_FUZZ_CHECK(tok == NULL);
        return 0;
    }
    if (fti_tokenizer_encode(tok, text, sizeof text - 1, 0, &t) == FTI_OK)
        (void)fti_tokenizer_decode(tok, t.ids, t.len, &out);
    fti_tokens_free(&t);
    fti_buf_free(&out);
    fti_tokenizer_free(tok);
    return 0;
}
