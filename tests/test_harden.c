/* test_harden.c: regression tests for the costs found while making the fuzz targets cheaper
 * (issue 10, docs/hardening.md): hostile inputs that cost more than their size, and the
 * library changes that removed the costs. */
#include <fcntl.h>

/* GPT-2's byte-to-unicode map: the bytes outside the printable ranges, counted in order. */
static uint32_t harden_b2u_ref(unsigned b) {
    unsigned k, n = 0;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    for (k = 0; k < b; k++)
        if (!((k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF)))
            n++;
    return 0x100 + n;
}

FTI_TEST(harden_b2u_closed_form) {
    /* fti__b2u counted the earlier bytes on every call (O(b) per byte, 15% of loading a GPT-2
     * tokenizer); now a closed form: the same map, and a bijection onto its 256 code points */
    unsigned b;
    int16_t u2b[0x200];
    for (b = 0; b < 256; b++) CHECK_EQ_INT(fti__b2u(b), harden_b2u_ref(b));
    CHECK_EQ_INT(fti__b2u(0xAD), 0x143);
    fti__u2b_table(u2b);
    for (b = 0; b < 256; b++) CHECK_EQ_INT(u2b[fti__b2u(b)], (int)b);
}

#ifndef FTI_NO_STORE
/* Builds the index of n chunks "w<i> x<i%7> y<i%101>" (3 postings each) in memory. */
static void harden_bm25_chunks(size_t n, fti_chunk_in *ch, char *texts) {
    size_t i;
    for (i = 0; i < n; i++) {
        char *t = texts + i * 32;
        snprintf(t, 32, "w%lu x%lu y%lu", (unsigned long)i, (unsigned long)(i % 7),
                 (unsigned long)(i % 101));
        ch[i].text = t;
        ch[i].len = strlen(t);
        ch[i].doc = 0;
    }
}

FTI_TEST(harden_bm25_post_blocks) {
    /* The posting table's first block starts small and grows to its whole size (2^18 postings;
     * a 2 MB allocation for every index, even of one word, was 3/4 of the bm25 fuzz target's
     * time). Sizes around each growth step and past the first block: the in-memory build and the
     * streaming build (postings through a scratch file, one block kept as the buffer) give the
     * same bytes, and the last chunk is found. */
    static const size_t sizes[] = {1, 341, 342, 1366, 5462, 87382, 87381 + 1000};
    size_t k, i;
    fti_doc_meta dm;
    fti_chunk_in *ch = (fti_chunk_in *)malloc(sizeof *ch * 88400);
    char *texts = (char *)malloc(32 * 88400);
    REQUIRE(ch && texts);
    dm.doc_id = "d", dm.title = "t", dm.source = "s", dm.author = NULL, dm.date = NULL;
    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        fti_buf mem, str;
        fti__st_bm25b b;
        int fd1, fd2;
        char q[32];
        memset(&mem, 0, sizeof mem);
        memset(&str, 0, sizeof str);
        harden_bm25_chunks(n, ch, texts);
        REQUIRE(fti_bm25_build(&mem, ch, n, &dm, 1, NULL) == FTI_OK);
        fd1 = open(fti_test_tmp("spill"), O_RDWR | O_CREAT | O_TRUNC, 0600);
        fd2 = open(fti_test_tmp("post"), O_RDWR | O_CREAT | O_TRUNC, 0600);
        REQUIRE(fd1 >= 0 && fd2 >= 0);
        REQUIRE(fti__st_bm25b_init(&b, &dm, 1, fd1, fd2) == FTI_OK);
        for (i = 0; i < n; i++) REQUIRE(fti__st_bm25b_add(&b, ch[i].text, ch[i].len, 0) == FTI_OK);
        CHECK(fti__st_bm25b_finish(&b, fti__st_emit_buf, &str) == FTI_OK);
        fti__st_bm25b_free(&b);
        close(fd1);
        close(fd2);
        CHECK_EQ_INT(mem.len, str.len);
        CHECK(mem.len == str.len && memcmp(mem.data, str.data, mem.len) == 0);
        {
            fti_bm25 ix;
            fti_search_hit h;
            fti_error e;
            memset(&ix, 0, sizeof ix);
            REQUIRE(fti__st_bm25_check(&ix, (const unsigned char *)mem.data, mem.len, "m", &e) ==
                    FTI_OK);
            ix.p = (const unsigned char *)mem.data;
            CHECK_EQ_INT(fti_bm25_chunks(&ix), n);
            snprintf(q, sizeof q, "w%lu", (unsigned long)(n - 1));
            CHECK_EQ_INT(fti_bm25_query(&ix, q, strlen(q), 1, &h), 1);
            CHECK_EQ_INT(h.chunk, n - 1);
        }
        fti_buf_free(&mem);
        fti_buf_free(&str);
    }
    free(ch);
    free(texts);
}

FTI_TEST(harden_csv_record_runs) {
    /* the CSV record parser appends a field's bytes a run at a time now: quotes, doubled
     * quotes, empty fields, CRLF and an unterminated quote read as before */
    static const char s[] = "a,\"b\"\"c\",,\"x,y\"\r\nplain field,\"\"\n\"open";
    fti_buf v;
    size_t offs[8], nf = 0, pos = 0;
    memset(&v, 0, sizeof v);
    REQUIRE(fti__st_csv_record(s, sizeof s - 1, ',', &pos, &v, offs, 8, &nf) == 1);
    CHECK_EQ_INT(nf, 4);
    CHECK_EQ_STR(v.data + offs[0], "a");
    CHECK_EQ_STR(v.data + offs[1], "b\"c");
    CHECK_EQ_STR(v.data + offs[2], "");
    CHECK_EQ_STR(v.data + offs[3], "x,y");
    REQUIRE(fti__st_csv_record(s, sizeof s - 1, ',', &pos, &v, offs, 8, &nf) == 1);
    CHECK_EQ_INT(nf, 2);
    CHECK_EQ_STR(v.data + offs[0], "plain field");
    CHECK_EQ_STR(v.data + offs[1], "");
    CHECK_EQ_INT(fti__st_csv_record(s, sizeof s - 1, ',', &pos, &v, offs, 8, &nf), -1);
    fti_buf_free(&v);
}
#else
void fti_test_harden_bm25_post_blocks(void) {}
void fti_test_harden_csv_record_runs(void) {}
#endif /* FTI_NO_STORE */

#ifndef FTI_NO_SERVER
FTI_TEST(harden_http_chunked_bytewise) {
    /* A chunked body fed a byte at a time (what a peer trickling bytes makes the server do)
     * decodes as in one call: the decoder no longer scans a chunk-size or trailer line again
     * from its start on every call (quadratic in the line's length). Long chunk extensions and
     * a long trailer line, a CR split from its LF, and a bare CR inside a trailer (400). */
    fti_buf req, one, inc;
    size_t i, k;
    for (k = 0; k < 2; k++) {
        fti_http_chunked c1, c2;
        long r1, r2 = 0;
        memset(&req, 0, sizeof req);
        memset(&one, 0, sizeof one);
        memset(&inc, 0, sizeof inc);
        fti_buf_puts(&req, "5;ext=");
        for (i = 0; i < 3000; i++) fti_buf_putc(&req, 'e');
        fti_buf_puts(&req, "\r\nhello\r\n3\r\nabc\r\n0\r\nX-Long: ");
        for (i = 0; i < 20000; i++) fti_buf_putc(&req, 'v');
        if (k) fti_buf_putc(&req, '\r'); /* a bare CR: 400 */
        fti_buf_puts(&req, "v\r\n\r\n");
        REQUIRE(!req.oom);
        memset(&c1, 0, sizeof c1);
        memset(&c2, 0, sizeof c2);
        r1 = fti_http_chunked_feed(&c1, (const unsigned char *)req.data, req.len, NULL, &one);
        for (i = 1; i <= req.len && r2 == 0; i++)
            r2 = fti_http_chunked_feed(&c2, (const unsigned char *)req.data, i, NULL, &inc);
        CHECK_EQ_INT(r1, k ? -400 : (long)req.len);
        CHECK_EQ_INT(r2, r1);
        if (!k) {
            CHECK_EQ_INT(one.len, 8);
            CHECK(one.len == inc.len && memcmp(one.data, inc.data, one.len) == 0);
        }
        fti_buf_free(&req);
        fti_buf_free(&one);
        fti_buf_free(&inc);
    }
}
#else
void fti_test_harden_http_chunked_bytewise(void) {}
#endif /* FTI_NO_SERVER */

/* The monitor out of memory (found by fault_alloc_serve_model): fti_monitor_create leaked its
 * mutex when the metrics registry could not be made, and wrote a prefix of the drift reference
 * line to the request log when that line could not be made whole (fti_monitor_set_ref too).
 * Each allocation of a create with a reference and a log fails once: the create fails with
 * NOMEM or succeeds, nothing leaks, and every line the log holds is whole JSON. */
FTI_TEST(harden_monitor_create_oom) {
    uint64_t counts[96];
    fti_drift_ref *ref = NULL;
    fti_monitor_opts mo;
    fti_monitor *mon = NULL;
    long A, k, live0;
    int i, n_fail = 0;
    char path[64];
    for (i = 0; i < 96; i++) counts[i] = (uint64_t)(i % 5 + 1);
    REQUIRE(fti_drift_ref_build(counts, 96, NULL, 0.01, 9.5, &ref, NULL) == FTI_OK);
    live0 = fti_test_alloc_live;
    memset(&mo, 0, sizeof mo);
    mo.ref = ref;
    fti_test_alloc_fail_at(0, 0);
    snprintf(path, sizeof path, "mon/r0.jsonl");
    mo.log_path = fti_test_tmp(path);
    REQUIRE(fti_monitor_create(&mo, &mon, NULL) == FTI_OK);
    A = fti_test_alloc_count;
    fti_monitor_free(mon);
    for (k = 1; k <= A + 2; k++) {
        int set_ref;
        for (set_ref = 0; set_ref < 2; set_ref++) {
            fti_error err;
            fti_result r;
            void *data = NULL;
            size_t n = 0;
            char *line, *save = NULL;
            snprintf(path, sizeof path, "mon/r%ld-%d.jsonl", k, set_ref);
            mo.log_path = fti_test_tmp(path);
            mon = NULL;
            if (set_ref) { /* a monitor without a reference gets one: its line, whole or none */
                mo.ref = NULL;
                REQUIRE(fti_monitor_create(&mo, &mon, NULL) == FTI_OK);
                fti_test_alloc_fail_at(k, 0);
                r = fti_monitor_set_ref(mon, ref);
                fti_test_alloc_fail_at(0, 0);
                CHECK(r == FTI_OK || r == FTI_ERR_NOMEM);
                if (r != FTI_OK) n_fail++;
                CHECK(fti_monitor_ref(mon) == NULL || r == FTI_OK);
                mo.ref = ref;
            } else {
                err.msg[0] = 0;
                fti_test_alloc_fail_at(k, 0);
                r = fti_monitor_create(&mo, &mon, &err);
                fti_test_alloc_fail_at(0, 0);
                CHECK(r == FTI_OK || (r == FTI_ERR_NOMEM && err.msg[0]));
                if (r != FTI_OK && r != FTI_ERR_NOMEM)
                    fprintf(stderr, "    allocation %ld: %s \"%s\"\n", k, fti_result_str(r),
                            err.msg);
                if (r != FTI_OK) n_fail++;
            }
            fti_monitor_free(mon);
            CHECK_EQ_INT(fti_test_alloc_live, live0);
            if (fti_file_read(mo.log_path, 0, &data, &n, NULL) != FTI_OK) continue; /* none */
            for (line = strtok_r((char *)data, "\n", &save); line;
                 line = strtok_r(NULL, "\n", &save)) {
                fti_json_doc *doc = NULL;
                if (fti_json_parse(line, strlen(line), NULL, &doc, NULL, NULL) != FTI_OK) {
                    fprintf(stderr, "    allocation %ld failing (%s): a broken log line: %.120s\n",
                            k, set_ref ? "set_ref" : "create", line);
                    fti_test_failures++;
                }
                fti_json_free(doc);
            }
            fti_free(data);
        }
    }
    CHECK(n_fail > 5);
    fti_drift_ref_free(ref);
}
