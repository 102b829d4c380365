/* fuzz_gguf.c: the GGUF reader on any bytes. Whatever it accepts, every key, array element and
 * tensor it hands out lies inside the input, and the llama validation never crashes. */
int fti_fuzz_gguf(const uint8_t *data, size_t size) {
    fti_gguf *g = NULL;
    fti_error err;
    size_t i, n;
    fti_model_config cfg;
    if (fti_gguf_open_memory(&g, data, size, "fuzz.gguf", NULL, &err) != FTI_OK) {
        FTI_FUZZ_CHECK(g == NULL);
        return 0;
    }
    n = fti_gguf_n_kv(g);
    for (i = 0; i < n; i++) {
        const fti_gguf_kv *kv = fti_gguf_kv_at(g, i);
        FTI_FUZZ_CHECK(kv != NULL);
        (void)fti_gguf_kv_num(kv);
    }
    n = fti_gguf_n_tensors(g);
    for (i = 0; i < n; i++) FTI_FUZZ_CHECK(fti_gguf_tensor_at(g, i) != NULL);
    (void)fti_gguf_llama_config(g, &cfg, 1, &err);
    fti_gguf_close(g);
    return 0;
}
