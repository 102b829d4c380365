/* fuzz_utf8.c: repair always yields valid UTF-8 that repairs to itself; decode never reads past
 * the end; an incomplete tail is a proper prefix of a valid sequence. */
int fti_fuzz_utf8(const uint8_t *data, size_t size) {
    fti_buf a = {0}, b = {0};
    size_t i = 0, bad, tail;
    while (i < size) {
        uint32_t cp;
        int ok;
        size_t k = fti_utf8_decode(data + i, size - i, &cp, &ok);
        FTI_FUZZ_CHECK(k >= 1 && k <= 4 && k <= size - i);
        FTI_FUZZ_CHECK(ok ? cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF) : cp == 0xFFFD);
        i += k;
    }
    bad = fti_utf8_repair(data, size, &a);
    FTI_FUZZ_CHECK(!a.oom);
    FTI_FUZZ_CHECK(fti_utf8_valid_prefix((const unsigned char *)a.data, a.len) == a.len);
    FTI_FUZZ_CHECK(fti_utf8_repair((const unsigned char *)a.data, a.len, &b) == 0);
    FTI_FUZZ_CHECK(b.len == a.len && memcmp(a.data, b.data, a.len) == 0);
    FTI_FUZZ_CHECK((bad == 0) == (fti_utf8_valid_prefix(data, size) == size));
    tail = fti_utf8_incomplete_tail(data, size);
    FTI_FUZZ_CHECK(tail <= 3 && tail <= size);
    if (tail) FTI_FUZZ_CHECK(fti_utf8_valid_prefix(data + size - tail, tail) == 0);
    fti_buf_free(&a);
    fti_buf_free(&b);
    return 0;
}
