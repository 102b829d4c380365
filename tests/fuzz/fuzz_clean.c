/* fuzz_clean.c: HTML and markdown reduction and text cleaning on any bytes: the output is valid
 * UTF-8 without control characters other than newline, and normalising it again (without
 * redaction) changes nothing. Redaction alone is not idempotent: an e-mail address glued to the
 * end of a phone number hides the number on the first pass and reveals it on the second
 * (regress/clean/phone-before-email); that is accepted, the text stays valid. */
/* tests-need: !defined(FTI_NO_STORE) */
static void fti__fuzz_clean_check(const fti_buf *b) {
    size_t i;
    FTI_FUZZ_CHECK(!b->oom);
    FTI_FUZZ_CHECK(fti_utf8_valid_prefix((const unsigned char *)b->data, b->len) == b->len);
    for (i = 0; i < b->len; i++) {
        unsigned char c = (unsigned char)b->data[i];
        FTI_FUZZ_CHECK(c >= 0x20 || c == '\n');
    }
}

int fti_fuzz_clean(const uint8_t *data, size_t size) {
    fti_buf text = {0}, title = {0}, clean = {0}, again = {0};
    const char *s = (const char *)data;
    int mode = size ? data[0] % 3 : 0;
    if (mode == 0) fti_html_to_text(s, size, &text, &title);
    else if (mode == 1) fti_markdown_to_text(s, size, &text, &title);
    else fti_buf_append(&text, s, size);
    FTI_FUZZ_CHECK(!text.oom && !title.oom);
    fti_clean_text(text.data ? text.data : "", text.len, FTI_CLEAN_REDACT_ALL, &again);
    fti__fuzz_clean_check(&again);
    again.len = 0;
    fti_clean_text(text.data ? text.data : "", text.len, 0, &clean);
    fti__fuzz_clean_check(&clean);
    fti_clean_text(clean.data ? clean.data : "", clean.len, 0, &again);
    FTI_FUZZ_CHECK(again.len == clean.len &&
                   (clean.len == 0 || !memcmp(again.data, clean.data, clean.len)));
    fti_buf_free(&text);
    fti_buf_free(&title);
    fti_buf_free(&clean);
    fti_buf_free(&again);
    return 0;
}
