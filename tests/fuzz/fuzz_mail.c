/* fuzz_mail.c: the e-mail reader of the feature pipeline (part 04): RFC 5322 headers with
 * folding and encoded words, MIME multipart nesting, quoted-printable and base64 bodies,
 * charsets, mbox splitting. Byte 0 picks .eml (even) or mbox (odd); the rest goes through the
 * same per-file processing fti_store_ingest runs. It must never crash or leak; every document it
 * keeps is valid UTF-8. The MIME walk and
 * the header helpers are also run on the raw input directly. */
/* tests-need: !defined(FTI_NO_STORE) */
int fti_fuzz_mail(const uint8_t *data, size_t size) {
    fti_ingest_opts o = fti_ingest_opts_resolve(NULL);
    fti__st_proc pp;
    fti__st_unit u;
    fti__st_out out;
    size_t i;
    unsigned char file_sha[32];
    if (size < 1) return 0;
    fti_sha256_buf(data, size, file_sha);
    memset(&pp, 0, sizeof pp);
    pp.o = &o;
    memset(&u, 0, sizeof u);
    u.kind = (data[0] & 1) ? FTI__ST_K_MBOX : FTI__ST_K_EML;
    u.off = 1;
    u.len = size - 1;
    u.first_no = 1;
    memset(&out, 0, sizeof out);
    fti__st_process_unit(&pp, &u, "fuzz/input.eml", data, size, file_sha, &out);
    for (i = 0; i < out.n_docs; i++) {
        const fti__st_doc *d = &out.docs[i];
        FTI_FUZZ_CHECK(fti_utf8_valid_prefix((const unsigned char *)d->text, d->text_len) ==
                       d->text_len);
    }
    fti__st_out_free(&out);
    {
        /* the header helpers on the raw input */
        const char *m = (const char *)data + 1;
        size_t n = size - 1, body = 0, hn;
        fti_buf v;
        memset(&v, 0, sizeof v);
        hn = fti__st_mail_split(m, n, &body);
        if (hn == (size_t)-1) hn = body = n; /* no blank line: all headers */
        FTI_FUZZ_CHECK(hn <= n && body <= n);
        if (fti__st_mail_header(m, hn, "content-type", &v)) {
            fti_buf p;
            memset(&p, 0, sizeof p);
            (void)fti__st_mail_param(v.data ? v.data : "", v.len, "boundary", &p);
            (void)fti__st_mail_param(v.data ? v.data : "", v.len, "charset", &p);
            fti_buf_free(&p);
        }
        v.len = 0;
        if (fti__st_mail_header(m, hn, "from", &v)) {
            /* an empty value leaves v.data NULL: the reader passes "" then, so do we */
            char *a = fti__st_mail_author(v.data ? v.data : "", v.len);
            fti_free(a);
        }
        v.len = 0;
        if (fti__st_mail_header(m, hn, "date", &v)) {
            char *d = fti__st_mail_date(v.data, v.len);
            fti_free(d);
        }
        fti_buf_free(&v);
    }
    return 0;
}
