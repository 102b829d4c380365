/* fuzz_bm25.c: the BM25 index reader (part 04) on any bytes, and the builder on any chunk text.
 *
 * Input: byte 0 picks the mode.
 *   even: the rest is an index image, validated by the same check fti_bm25_open runs on a mapped
 *         file; an accepted image is walked (every chunk as a hit) and queried with words from
 *         its own string table: every hit's text and metadata lie inside the image.
 *   odd:  the rest is split at '\n' into chunks of (up to 16) documents; the index built from them
 *         must pass the check, hold every chunk, and find a chunk by a word it contains.
 * Uses the part's internals (the fuzz build is one translation unit with the implementation). */
/* tests-need: !defined(FTI_NO_STORE) */
static void fti_fuzz_bm25_hit_ok(const fti_search_hit *h, const unsigned char *p, size_t len) {
    const char *lo = (const char *)p, *hi = (const char *)p + len;
    FTI_FUZZ_CHECK(h->text >= lo && h->text + h->text_len <= hi);
    FTI_FUZZ_CHECK(h->doc_id >= lo && h->doc_id < hi && h->title >= lo && h->title < hi);
    FTI_FUZZ_CHECK(h->source >= lo && h->source < hi && h->author >= lo && h->author < hi);
    FTI_FUZZ_CHECK(h->date >= lo && h->date < hi);
}

static void fti_fuzz_bm25_walk(const unsigned char *p, size_t len, int must_pass,
                               size_t n_expect) {
    fti_bm25 ix;
    fti_error err;
    fti_search_hit hits[8];
    size_t i, n;
    memset(&ix, 0, sizeof ix);
    if (fti__st_bm25_check(&ix, p, len, "fuzz.bm25", &err) != FTI_OK) {
        FTI_FUZZ_CHECK(!must_pass);
        FTI_FUZZ_CHECK(err.msg[0] != 0);
        return;
    }
    ix.p = p;
    if (must_pass) FTI_FUZZ_CHECK(fti_bm25_chunks(&ix) == n_expect);
    for (i = 0; i < fti_bm25_chunks(&ix) && i < 4096; i++) {
        fti_search_hit h;
        FTI_FUZZ_CHECK(fti_bm25_chunk(&ix, i, &h) == 1);
        fti_fuzz_bm25_hit_ok(&h, p, len);
    }
    FTI_FUZZ_CHECK(fti_bm25_chunk(&ix, fti_bm25_chunks(&ix), hits) == 0);
    /* queries: a fixed word, and the first few words of chunk texts */
    n = fti_bm25_query(&ix, "the cynic", 9, 8, hits);
    FTI_FUZZ_CHECK(n <= 8);
    for (i = 0; i < n; i++) fti_fuzz_bm25_hit_ok(&hits[i], p, len);
    for (i = 0; i < fti_bm25_chunks(&ix) && i < 8; i++) {
        fti_search_hit h;
        size_t k, m;
        fti_bm25_chunk(&ix, i, &h);
        m = fti_bm25_query(&ix, h.text, h.text_len < 64 ? h.text_len : 64, 8, hits);
        FTI_FUZZ_CHECK(m <= 8);
        for (k = 0; k < m; k++) {
            fti_fuzz_bm25_hit_ok(&hits[k], p, len);
            FTI_FUZZ_CHECK(hits[k].chunk < fti_bm25_chunks(&ix));
            if (k) FTI_FUZZ_CHECK(!(hits[k].score > hits[k - 1].score));
        }
    }
}

int fti_fuzz_bm25(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if ((data[0] & 1) == 0) {
        /* a private, 8-aligned copy: the mapped file is page-aligned */
        unsigned char *p = (unsigned char *)fti_malloc(size > 1 ? size - 1 : 1);
        if (!p) return 0;
        if (size > 1) memcpy(p, data + 1, size - 1);
        fti_fuzz_bm25_walk(p, size - 1, 0, 0);
        fti_free(p);
    } else {
        fti_chunk_in ch[256];
        fti_doc_meta docs[16];
        static const char *meta[4] = {"", "a title", "src/x.txt", "1999-01-01"};
        size_t n_ch = 0, i, start = 1, n_docs = (size_t)(data[0] >> 4) + 1;
        fti_buf out;
        fti_error err;
        for (i = 0; i < n_docs; i++) {
            docs[i].doc_id = "0123456789abcdef0123456789abcdef";
            docs[i].title = meta[i & 3];
            docs[i].source = meta[(i + 1) & 3];
            docs[i].author = i & 1 ? NULL : "Bierce";
            docs[i].date = meta[(i + 3) & 3];
        }
        for (i = 1; i <= size && n_ch < 256; i++) {
            if (i == size || data[i] == '\n') {
                ch[n_ch].text = (const char *)data + start;
                ch[n_ch].len = i - start;
                ch[n_ch].doc = (uint32_t)(n_ch % n_docs);
                n_ch++;
                start = i + 1;
            }
        }
        memset(&out, 0, sizeof out);
        if (fti_bm25_build(&out, ch, n_ch, docs, n_docs, &err) == FTI_OK) {
            fti_fuzz_bm25_walk((const unsigned char *)out.data, out.len, 1, n_ch);
        }
        fti_buf_free(&out);
    }
    return 0;
}
