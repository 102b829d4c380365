/* fuzz_gguf.c: the GGUF reader (part 06) on any bytes. Whatever it accepts must be safe to walk:
 * every string and tensor lies inside the input; the llama check may accept or reject but never
 * crash; an accepted file copied through the writer reads back with the same keys and tensors. */
int fti_fuzz_gguf(const uint8_t *data, size_t size) {
    fti_gguf *g = NULL, *g2 = NULL;
    fti_gguf_writer *w = NULL;
    fti_error err;
    fti_model_config cfg;
    fti_buf out;
    size_t i, j;
    const uint8_t *end = data + size;
    if (fti_gguf_open_memory(&g, data, size, "fuzz.gguf", NULL, &err) != FTI_OK) {
        FTI_FUZZ_CHECK(err.msg[0] != 0);
        return 0;
    }
    for (i = 0; i < fti_gguf_n_kv(g); i++) {
        const fti_gguf_kv *kv = fti_gguf_kv_at(g, i);
        FTI_FUZZ_CHECK(kv->key && strlen(kv->key) == kv->key_len);
        if (kv->type == FTI_GGUF_ARRAY && kv->arr_type == FTI_GGUF_STRING) {
            for (j = 0; j < kv->arr_n; j++) {
                size_t len = 0;
                const char *s = fti_gguf_arr_str(g, kv, j, &len);
                FTI_FUZZ_CHECK(s && (const uint8_t *)s >= data && (const uint8_t *)s + len <= end);
            }
        } else if (kv->type == FTI_GGUF_ARRAY) {
            for (j = 0; j < kv->arr_n && j < 64; j++) (void)fti_gguf_arr_num(kv, j);
        } else if (kv->type != FTI_GGUF_STRING) {
            (void)fti_gguf_kv_num(kv);
        } else {
            FTI_FUZZ_CHECK((const uint8_t *)kv->data + kv->n_bytes <= end);
        }
    }
    for (i = 0; i < fti_gguf_n_tensors(g); i++) {
        const fti_gguf_tensor *t = fti_gguf_tensor_at(g, i);
        const uint8_t *p = (const uint8_t *)t->data;
        FTI_FUZZ_CHECK(p && p >= data && p + t->n_bytes <= end);
        FTI_FUZZ_CHECK(fti_gguf_find_tensor(g, t->name) == t);
    }
    (void)fti_gguf_llama_config(g, &cfg, 0, &err);
    /* copy through the writer and read back */
    memset(&out, 0, sizeof out);
    /* a tensorless file may claim any power-of-two alignment up to 2^31 and the writer honours it
     * with that much padding: valid, but a 2 GB copy per input makes the fuzzer crawl
     * (150 runs/s) */
    if (fti_gguf_alignment(g) <= 65536 &&
        fti_gguf_writer_create(&w, fti_gguf_alignment(g)) == FTI_OK) {
        int ok = 1;
        for (i = 0; i < fti_gguf_n_kv(g) && ok; i++)
            ok = fti_gguf_set_kv_from(w, g, fti_gguf_kv_at(g, i)) == FTI_OK;
        for (i = 0; i < fti_gguf_n_tensors(g) && ok; i++) {
            const fti_gguf_tensor *t = fti_gguf_tensor_at(g, i);
            ok = fti_gguf_add_tensor(w, t->name, t->n_dims, t->ne, t->type, t->data,
                                     t->n_bytes) == FTI_OK;
        }
        /* tensor names >= 64 bytes are readable but not writable (llama.cpp's limit) */
        if (ok && fti_gguf_writer_write_buf(w, &out, &err) == FTI_OK) {
            FTI_FUZZ_CHECK(fti_gguf_open_memory(&g2, out.data, out.len, "copy.gguf", NULL, &err) ==
                           FTI_OK);
            FTI_FUZZ_CHECK(fti_gguf_n_kv(g2) == fti_gguf_n_kv(g) +
                           (fti_gguf_find(g, "general.alignment") ? 0
                            : (fti_gguf_alignment(g) != 32)));
            FTI_FUZZ_CHECK(fti_gguf_n_tensors(g2) == fti_gguf_n_tensors(g));
            fti_gguf_close(g2);
        }
        fti_gguf_writer_free(w);
    }
    fti_buf_free(&out);
    fti_gguf_close(g);
    return 0;
}
