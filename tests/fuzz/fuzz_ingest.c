/* fuzz_ingest.c: one input file of every kind the feature pipeline reads (the first byte picks
 * txt, md, html, json, jsonl, csv, eml or mbox) through the same per-file processing that
 * fti_store_ingest runs: parsing, MIME and charset decoding, cleaning, validation. It must never
 * crash or leak, and every document it keeps is valid UTF-8. Uses the part's internals (the
 * fuzz build is one translation unit with the implementation). */
/* tests-need: !defined(FTI_NO_STORE) */
int fti_fuzz_ingest(const uint8_t *data, size_t size) {
    static const fti__st_kind kinds[8] = {FTI__ST_K_TXT,  FTI__ST_K_MD,    FTI__ST_K_HTML,
                                          FTI__ST_K_JSON, FTI__ST_K_JSONL, FTI__ST_K_CSV,
                                          FTI__ST_K_EML,  FTI__ST_K_MBOX};
    fti_ingest_opts o = fti_ingest_opts_resolve(NULL);
    fti__st_proc pp;
    fti__st_unit u;
    fti__st_out out;
    size_t i;
    unsigned char file_sha[32];
    if (size < 1) return 0;
    (void)fti__st_kind_sniff((const char *)data + 1, size - 1);
    fti_sha256_buf(data, size, file_sha);
    memset(&pp, 0, sizeof pp);
    pp.o = &o;
    memset(&u, 0, sizeof u);
    u.kind = kinds[data[0] & 7];
    u.off = 1;
    u.len = size - 1;
    u.first_no = 1;
    memset(&out, 0, sizeof out);
    fti__st_process_unit(&pp, &u, "fuzz/input", data, size, file_sha, &out);
    for (i = 0; i < out.n_docs; i++) {
        const fti__st_doc *d = &out.docs[i];
        FTI_FUZZ_CHECK(fti_utf8_valid_prefix((const unsigned char *)d->text, d->text_len) ==
                       d->text_len);
    }
    fti__st_out_free(&out);
    return 0;
}
