/* test_gguf.c: the GGUF v3 reader and writer (part 06): round trips of every value type and
 * tensor type, and the hostile-header cases from GGUF loader history, each expecting an error. */

/* --- a little byte builder for hand-made files ------------------------------------------- */
static void tg_u32(fti_buf *b, uint32_t v) {
    unsigned char x[4];
    fti_store_u32(x, v);
    fti_buf_append(b, x, 4);
}
static void tg_u64(fti_buf *b, uint64_t v) {
    unsigned char x[8];
    fti_store_u64(x, v);
    fti_buf_append(b, x, 8);
}
static void tg_str(fti_buf *b, const char *s) {
    tg_u64(b, strlen(s));
    fti_buf_append(b, s, strlen(s));
}
static void tg_head(fti_buf *b, uint64_t n_tensors, uint64_t n_kv) {
    memset(b, 0, sizeof *b);
    fti_buf_append(b, "GGUF", 4);
    tg_u32(b, 3);
    tg_u64(b, n_tensors);
    tg_u64(b, n_kv);
}
static void tg_kv_u32(fti_buf *b, const char *key, uint32_t v) {
    tg_str(b, key);
    tg_u32(b, FTI_GGUF_UINT32);
    tg_u32(b, v);
}
/* tensor info: name, dims, type, offset */
static void tg_tensor(fti_buf *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                      uint32_t type, uint64_t off) {
    uint32_t d;
    tg_str(b, name);
    tg_u32(b, n_dims);
    for (d = 0; d < n_dims; d++) tg_u64(b, ne[d]);
    tg_u32(b, type);
    tg_u64(b, off);
}
static void tg_pad(fti_buf *b, size_t align, size_t extra) {
    while (b->len % align) fti_buf_putc(b, 0);
    while (extra--) fti_buf_putc(b, (char)(extra & 0x7f));
}

/* Opens the bytes of b; returns the result code and frees everything. */
static fti_result tg_open(const fti_buf *b, const char *what) {
    fti_gguf *g = NULL;
    fti_error err;
    fti_result rc = fti_gguf_open_memory(&g, b->data, b->len, "hostile.gguf", NULL, &err);
    if (rc == FTI_OK) {
        fprintf(stderr, "    %s: accepted\n", what);
        fti_gguf_close(g);
    } else if (getenv("FTI_TEST_VERBOSE")) {
        fprintf(stderr, "    %s -> %s\n", what, err.msg);
    }
    if (rc != FTI_OK) {
        /* every message names the file */
        if (strstr(err.msg, "hostile.gguf") == NULL) {
            fprintf(stderr, "    %s: message without file name: %s\n", what, err.msg);
            return FTI_OK;
        }
    }
    return rc;
}

#define TG_EXPECT(b, code, what)                                                 \
    do {                                                                         \
        fti_result tg_rc_ = tg_open(&(b), what);                                 \
        if (tg_rc_ != (code)) {                                                  \
            fprintf(stderr, "    %s: got %d, expected %d\n", what, (int)tg_rc_, (int)(code)); \
            fti_test_failures++;                                                 \
        }                                                                        \
        fti_buf_free(&(b));                                                      \
    } while (0)

/* A small valid file: two keys, two tensors. */
static void tg_valid(fti_buf *b) {
    uint64_t ne[2] = {32, 2};
    size_t i;
    tg_head(b, 2, 2);
    tg_kv_u32(b, "a.count", 7);
    tg_str(b, "a.name");
    tg_u32(b, FTI_GGUF_STRING);
    tg_str(b, "hello");
    tg_tensor(b, "w", 2, ne, FTI_GGML_F32, 0);
    tg_tensor(b, "q", 2, ne, FTI_GGML_Q8_0, 256);
    tg_pad(b, 32, 0);
    for (i = 0; i < 256 + 68; i++) fti_buf_putc(b, (char)i);
}

FTI_TEST(gguf_roundtrip) {
    fti_gguf_writer *w = NULL;
    fti_gguf *g = NULL;
    fti_error err;
    const char *path = fti_test_tmp("rt.gguf");
    const char *strs[4] = {"alpha", "", "\xc4\xa0h\xc3\xa9llo", "last"};
    int32_t ints[5] = {-3, 0, 7, 2147483647, -2147483647 - 1};
    float fl[3] = {1.5f, -0.0f, 3.25e-20f};
    double db[2] = {1e300, -2.5};
    uint8_t bo[3] = {1, 0, 1};
    uint64_t ne2[2] = {64, 3}, ne1[1] = {5}, ne4[4] = {32, 1, 2, 1};
    float f32data[64 * 3], vec[5];
    unsigned char q8[34 * 2 * 3], q4[18 * 2], h16[64 * 3 * 2];
    size_t i, len;
    const char *s;
    const fti_gguf_kv *kv;
    const fti_gguf_tensor *t;
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    float f;
    int b;
    fti_rng rng;

    fti_rng_seed(&rng, 42, 1);
    for (i = 0; i < 64 * 3; i++) f32data[i] = fti_rng_normal(&rng);
    for (i = 0; i < 5; i++) vec[i] = (float)i;
    for (i = 0; i < sizeof q8; i++) q8[i] = (unsigned char)fti_rng_u32(&rng);
    for (i = 0; i < sizeof q4; i++) q4[i] = (unsigned char)fti_rng_u32(&rng);
    for (i = 0; i < sizeof h16; i++) h16[i] = (unsigned char)fti_rng_u32(&rng);

    REQUIRE(fti_gguf_writer_create(&w, 0) == FTI_OK);
    CHECK_OK(fti_gguf_set_u8(w, "t.u8", 200));
    CHECK_OK(fti_gguf_set_i8(w, "t.i8", -100));
    CHECK_OK(fti_gguf_set_u16(w, "t.u16", 60000));
    CHECK_OK(fti_gguf_set_i16(w, "t.i16", -30000));
    CHECK_OK(fti_gguf_set_u32(w, "t.u32", 1));
    CHECK_OK(fti_gguf_set_i32(w, "t.i32", -5));
    CHECK_OK(fti_gguf_set_u64(w, "t.u64", 0xfedcba9876543210ull));
    CHECK_OK(fti_gguf_set_i64(w, "t.i64", -1234567890123ll));
    CHECK_OK(fti_gguf_set_f32(w, "t.f32", 0.1f));
    CHECK_OK(fti_gguf_set_f64(w, "t.f64", 0.1));
    CHECK_OK(fti_gguf_set_bool(w, "t.bool", 5));
    CHECK_OK(fti_gguf_set_str(w, "t.str", "h\xc3\xa9llo"));
    CHECK_OK(fti_gguf_set_strn(w, "t.bin", "a\0b", 3));
    CHECK_OK(fti_gguf_set_arr_str(w, "t.astr", strs, NULL, 4));
    CHECK_OK(fti_gguf_set_arr(w, "t.ai32", FTI_GGUF_INT32, ints, 5));
    CHECK_OK(fti_gguf_set_arr(w, "t.af32", FTI_GGUF_FLOAT32, fl, 3));
    CHECK_OK(fti_gguf_set_arr(w, "t.af64", FTI_GGUF_FLOAT64, db, 2));
    CHECK_OK(fti_gguf_set_arr(w, "t.abool", FTI_GGUF_BOOL, bo, 3));
    CHECK_OK(fti_gguf_set_arr(w, "t.empty", FTI_GGUF_UINT8, NULL, 0));
    CHECK_OK(fti_gguf_set_u32(w, "t.u32", 123456789)); /* replaces, keeps position */
    CHECK(fti_gguf_set_u32(w, "", 1) == FTI_ERR_INVALID);
    CHECK(fti_gguf_set_arr(w, "t.bad", FTI_GGUF_STRING, ints, 1) == FTI_ERR_INVALID);
    CHECK_OK(fti_gguf_add_tensor(w, "f32", 2, ne2, FTI_GGML_F32, f32data, sizeof f32data));
    CHECK_OK(fti_gguf_add_tensor_copy(w, "vec", 1, ne1, FTI_GGML_F32, vec, sizeof vec));
    CHECK_OK(fti_gguf_add_tensor(w, "q8", 2, ne2, FTI_GGML_Q8_0, q8, sizeof q8));
    CHECK_OK(fti_gguf_add_tensor(w, "q4", 4, ne4, FTI_GGML_Q4_0, q4, sizeof q4));
    CHECK_OK(fti_gguf_add_tensor(w, "h16", 2, ne2, FTI_GGML_F16, h16, sizeof h16));
    CHECK_OK(fti_gguf_add_tensor(w, "b16", 2, ne2, FTI_GGML_BF16, h16, sizeof h16));
    /* wrong size, duplicate name, bad type, bad block multiple, long name */
    CHECK(fti_gguf_add_tensor(w, "x", 2, ne2, FTI_GGML_F32, f32data, 10) == FTI_ERR_INVALID);
    CHECK(fti_gguf_add_tensor(w, "q8", 2, ne2, FTI_GGML_Q8_0, q8, sizeof q8) == FTI_ERR_INVALID);
    CHECK(fti_gguf_add_tensor(w, "x", 1, ne1, 3, vec, 20) == FTI_ERR_INVALID);
    CHECK(fti_gguf_add_tensor(w, "x", 1, ne1, FTI_GGML_Q8_0, q8, 34) == FTI_ERR_INVALID);
    CHECK(fti_gguf_add_tensor(w, "0123456789012345678901234567890123456789012345678901234567890123",
                              1, ne1, FTI_GGML_F32, vec, sizeof vec) == FTI_ERR_INVALID);
    CHECK_EQ_INT(fti_gguf_writer_n_tensors(w), 6);
    REQUIRE(fti_gguf_writer_write(w, path, &err) == FTI_OK);
    fti_gguf_writer_free(w);
    vec[0] = 99.0f; /* the copy was taken */

    REQUIRE(fti_gguf_open(&g, path, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(fti_gguf_version(g), 3);
    CHECK_EQ_INT(fti_gguf_alignment(g), 32);
    CHECK_EQ_INT(fti_gguf_n_kv(g), 19);
    CHECK_EQ_INT(fti_gguf_n_tensors(g), 6);
    CHECK_EQ_STR(fti_gguf_kv_at(g, 0)->key, "t.u8");
    CHECK_EQ_STR(fti_gguf_kv_at(g, 4)->key, "t.u32");
    CHECK_OK(fti_gguf_get_u32(g, "t.u8", &u32, &err));
    CHECK_EQ_INT(u32, 200);
    CHECK_OK(fti_gguf_get_i64(g, "t.i8", &i64, &err));
    CHECK_EQ_INT(i64, -100);
    CHECK(fti_gguf_get_u32(g, "t.i8", &u32, &err) == FTI_ERR_FORMAT); /* negative */
    CHECK_OK(fti_gguf_get_u32(g, "t.u16", &u32, &err));
    CHECK_EQ_INT(u32, 60000);
    CHECK_OK(fti_gguf_get_i64(g, "t.i16", &i64, &err));
    CHECK_EQ_INT(i64, -30000);
    CHECK_OK(fti_gguf_get_u32(g, "t.u32", &u32, &err));
    CHECK_EQ_INT(u32, 123456789);
    CHECK_OK(fti_gguf_get_i64(g, "t.i32", &i64, &err));
    CHECK_EQ_INT(i64, -5);
    CHECK_OK(fti_gguf_get_u64(g, "t.u64", &u64, &err));
    CHECK(u64 == 0xfedcba9876543210ull);
    CHECK(fti_gguf_get_u32(g, "t.u64", &u32, &err) == FTI_ERR_FORMAT); /* does not fit */
    CHECK(fti_gguf_get_i64(g, "t.u64", &i64, &err) == FTI_ERR_FORMAT);
    CHECK_OK(fti_gguf_get_i64(g, "t.i64", &i64, &err));
    CHECK(i64 == -1234567890123ll);
    CHECK_OK(fti_gguf_get_f32(g, "t.f32", &f, &err));
    CHECK(f == 0.1f);
    CHECK_OK(fti_gguf_get_f32(g, "t.f64", &f, &err));
    CHECK(f == (float)0.1);
    CHECK(fti_gguf_kv_num(fti_gguf_find(g, "t.f64")) == 0.1);
    CHECK_OK(fti_gguf_get_bool(g, "t.bool", &b, &err));
    CHECK_EQ_INT(b, 1);
    CHECK(fti_gguf_get_bool(g, "t.u8", &b, &err) == FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, "t.u8") != NULL);
    CHECK_OK(fti_gguf_get_str(g, "t.str", &s, &len, &err));
    CHECK(len == 6 && memcmp(s, "h\xc3\xa9llo", 6) == 0);
    CHECK_OK(fti_gguf_get_str(g, "t.bin", &s, &len, &err));
    CHECK(len == 3 && memcmp(s, "a\0b", 3) == 0);
    CHECK(fti_gguf_get_str(g, "t.u32", &s, &len, &err) == FTI_ERR_FORMAT);
    CHECK(fti_gguf_get_u32(g, "t.str", &u32, &err) == FTI_ERR_FORMAT);
    CHECK(fti_gguf_get_u32(g, "nope", &u32, &err) == FTI_ERR_NOT_FOUND);
    CHECK_OK(fti_gguf_get_arr(g, "t.astr", FTI_GGUF_STRING, &kv, &err));
    CHECK_EQ_INT(kv->arr_n, 4);
    for (i = 0; i < 4; i++) {
        s = fti_gguf_arr_str(g, kv, i, &len);
        CHECK(s && len == strlen(strs[i]) && memcmp(s, strs[i], len) == 0);
    }
    CHECK(fti_gguf_arr_str(g, kv, 4, &len) == NULL);
    CHECK(fti_gguf_get_arr(g, "t.astr", FTI_GGUF_INT32, &kv, &err) == FTI_ERR_FORMAT);
    CHECK_OK(fti_gguf_get_arr(g, "t.ai32", FTI_GGUF_INT32, &kv, &err));
    for (i = 0; i < 5; i++) CHECK_EQ_INT(fti_gguf_arr_int(kv, i), ints[i]);
    CHECK_OK(fti_gguf_get_arr(g, "t.af32", FTI_GGUF_FLOAT32, &kv, &err));
    for (i = 0; i < 3; i++) CHECK(fti_gguf_arr_num(kv, i) == (double)fl[i]);
    CHECK_OK(fti_gguf_get_arr(g, "t.af64", FTI_GGUF_FLOAT64, &kv, &err));
    for (i = 0; i < 2; i++) CHECK(fti_gguf_arr_num(kv, i) == db[i]);
    CHECK_OK(fti_gguf_get_arr(g, "t.abool", FTI_GGUF_BOOL, &kv, &err));
    for (i = 0; i < 3; i++) CHECK(fti_gguf_arr_num(kv, i) == bo[i]);
    CHECK_OK(fti_gguf_get_arr(g, "t.empty", FTI_GGUF_TYPE_COUNT, &kv, &err));
    CHECK_EQ_INT(kv->arr_n, 0);

    t = fti_gguf_find_tensor(g, "f32");
    REQUIRE(t != NULL);
    CHECK(t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 3 && t->ne[2] == 1);
    CHECK(t->type == FTI_GGML_F32 && t->n_bytes == sizeof f32data && t->n_elements == 192);
    CHECK(memcmp(t->data, f32data, sizeof f32data) == 0);
    CHECK((size_t)((const char *)t->data - (const char *)fti_gguf_file_data(g)) % 32 == 0);
    t = fti_gguf_find_tensor(g, "vec");
    REQUIRE(t != NULL);
    CHECK(t->n_dims == 1 && t->ne[0] == 5 && ((const float *)t->data)[0] == 0.0f);
    CHECK(((uintptr_t)t->data) % 32 == 0 || !0);
    t = fti_gguf_find_tensor(g, "q8");
    REQUIRE(t != NULL);
    CHECK(t->n_bytes == sizeof q8 && memcmp(t->data, q8, sizeof q8) == 0);
    t = fti_gguf_find_tensor(g, "q4");
    REQUIRE(t != NULL);
    CHECK(t->n_dims == 4 && t->ne[2] == 2 && memcmp(t->data, q4, sizeof q4) == 0);
    t = fti_gguf_find_tensor(g, "h16");
    REQUIRE(t != NULL);
    CHECK(t->type == FTI_GGML_F16 && memcmp(t->data, h16, sizeof h16) == 0);
    t = fti_gguf_find_tensor(g, "b16");
    REQUIRE(t != NULL);
    CHECK(t->type == FTI_GGML_BF16 && memcmp(t->data, h16, sizeof h16) == 0);
    CHECK(fti_gguf_find_tensor(g, "nope") == NULL);
    /* tensor data contiguous in info order, each aligned */
    for (i = 0; i + 1 < fti_gguf_n_tensors(g); i++) {
        const fti_gguf_tensor *a = fti_gguf_tensor_at(g, i), *c = fti_gguf_tensor_at(g, i + 1);
        CHECK(c->offset == (a->offset + a->n_bytes + 31) / 32 * 32);
    }
    fti_gguf_close(g);
}

FTI_TEST(gguf_alignment_and_copy) {
    fti_gguf_writer *w = NULL, *w2 = NULL;
    fti_gguf *g = NULL, *g2 = NULL;
    fti_error err;
    fti_buf b1, b2;
    uint64_t ne[1] = {3};
    float v[3] = {1, 2, 3};
    size_t i;
    memset(&b1, 0, sizeof b1);
    memset(&b2, 0, sizeof b2);
    CHECK(fti_gguf_writer_create(&w, 48) == FTI_ERR_INVALID);
    REQUIRE(fti_gguf_writer_create(&w, 64) == FTI_OK);
    CHECK_OK(fti_gguf_set_str(w, "k", "v"));
    CHECK_OK(fti_gguf_add_tensor(w, "a", 1, ne, FTI_GGML_F32, v, 12));
    CHECK_OK(fti_gguf_add_tensor(w, "b", 1, ne, FTI_GGML_F32, v, 12));
    CHECK_OK(fti_gguf_writer_write_buf(w, &b1, &err));
    REQUIRE(fti_gguf_open_memory(&g, b1.data, b1.len, "mem", NULL, &err) == FTI_OK);
    CHECK_EQ_INT(fti_gguf_alignment(g), 64);
    CHECK_EQ_INT(fti_gguf_data_offset(g) % 64, 0);
    CHECK_EQ_INT(fti_gguf_tensor_at(g, 1)->offset, 64);
    /* copy every kv and tensor into a second writer: identical bytes */
    REQUIRE(fti_gguf_writer_create(&w2, 64) == FTI_OK);
    for (i = 0; i < fti_gguf_n_kv(g); i++)
        CHECK_OK(fti_gguf_set_kv_from(w2, g, fti_gguf_kv_at(g, i)));
    for (i = 0; i < fti_gguf_n_tensors(g); i++) {
        const fti_gguf_tensor *t = fti_gguf_tensor_at(g, i);
        CHECK_OK(fti_gguf_add_tensor(w2, t->name, t->n_dims, t->ne, t->type, t->data, t->n_bytes));
    }
    CHECK_OK(fti_gguf_writer_write_buf(w2, &b2, &err));
    CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    REQUIRE(fti_gguf_open_memory(&g2, b2.data, b2.len, "mem2", NULL, &err) == FTI_OK);
    fti_gguf_close(g2);
    fti_gguf_close(g);
    fti_gguf_writer_free(w);
    fti_gguf_writer_free(w2);
    fti_buf_free(&b1);
    fti_buf_free(&b2);
}

FTI_TEST(gguf_hostile_headers) {
    fti_buf b;
    uint64_t ne[4] = {32, 2, 1, 1};
    memset(&b, 0, sizeof b);

    /* magic, version, truncation */
    TG_EXPECT(b, FTI_ERR_FORMAT, "empty file");
    fti_buf_append(&b, "GGUG\3\0\0\0", 8);
    TG_EXPECT(b, FTI_ERR_FORMAT, "bad magic");
    fti_buf_append(&b, "GGUF\1\0\0\0", 8);
    tg_u32(&b, 0); tg_u32(&b, 0); tg_u32(&b, 0); tg_u32(&b, 0);
    TG_EXPECT(b, FTI_ERR_UNSUPPORTED, "version 1");
    fti_buf_append(&b, "GGUF\0\0\0\3", 8);
    tg_u64(&b, 0); tg_u64(&b, 0);
    TG_EXPECT(b, FTI_ERR_UNSUPPORTED, "big-endian version");
    fti_buf_append(&b, "GGUF\3\0\0\0", 8);
    tg_u32(&b, 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "counts truncated");

    /* counts near 2^32 and 2^64 */
    tg_head(&b, 0xffffffffffffffffull, 0);
    TG_EXPECT(b, FTI_ERR_LIMIT, "n_tensors 2^64-1");
    tg_head(&b, 0, 0xffffffffffffffffull);
    TG_EXPECT(b, FTI_ERR_LIMIT, "n_kv 2^64-1");
    tg_head(&b, 0x100000000ull, 0);
    TG_EXPECT(b, FTI_ERR_LIMIT, "n_tensors 2^32");
    tg_head(&b, 0, 0x100000001ull);
    TG_EXPECT(b, FTI_ERR_LIMIT, "n_kv 2^32+1");
    tg_head(&b, 1000, 1000);
    TG_EXPECT(b, FTI_ERR_FORMAT, "counts larger than the file");

    /* key strings */
    tg_head(&b, 0, 1);
    tg_u64(&b, 0xffffffffffffffffull);
    TG_EXPECT(b, FTI_ERR_FORMAT, "key length 2^64-1");
    tg_head(&b, 0, 1);
    tg_u64(&b, 0x100000000ull);
    fti_buf_append(&b, "abcdefghijklmnopqrstuvwxyz", 26);
    TG_EXPECT(b, FTI_ERR_FORMAT, "key length 2^32");
    tg_head(&b, 0, 1);
    tg_u64(&b, 300);
    { int i; for (i = 0; i < 300; i++) fti_buf_putc(&b, 'k'); }
    tg_u32(&b, FTI_GGUF_UINT8); fti_buf_putc(&b, 1);
    TG_EXPECT(b, FTI_ERR_LIMIT, "key longer than the name limit");
    tg_head(&b, 0, 1);
    tg_str(&b, "");
    tg_u32(&b, FTI_GGUF_UINT8); fti_buf_putc(&b, 1);
    TG_EXPECT(b, FTI_ERR_FORMAT, "empty key");
    tg_head(&b, 0, 1);
    tg_u64(&b, 3); fti_buf_append(&b, "a\0b", 3);
    tg_u32(&b, FTI_GGUF_UINT8); fti_buf_putc(&b, 1);
    TG_EXPECT(b, FTI_ERR_FORMAT, "key with NUL");

    /* values */
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, 13); tg_u32(&b, 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "unknown value type 13");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, 0x80000000u); tg_u32(&b, 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "value type 2^31");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, FTI_GGUF_UINT64); tg_u32(&b, 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "truncated u64 value");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, FTI_GGUF_STRING); tg_u64(&b, 0xfffffffffffffff0ull);
    TG_EXPECT(b, FTI_ERR_FORMAT, "string length near 2^64");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, FTI_GGUF_STRING); tg_u64(&b, 0xffffffffull); tg_u64(&b, 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "string length 2^32-1");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, FTI_GGUF_ARRAY); tg_u32(&b, FTI_GGUF_UINT64);
    tg_u64(&b, 0x2000000000000001ull); tg_u64(&b, 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "array count * 8 overflows 2^64");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, FTI_GGUF_ARRAY); tg_u32(&b, FTI_GGUF_UINT32);
    tg_u64(&b, 0x40000000ull); tg_u64(&b, 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "array of 2^30 u32 (2^32 bytes) past EOF");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, FTI_GGUF_ARRAY); tg_u32(&b, FTI_GGUF_STRING);
    tg_u64(&b, 0x100000000ull); tg_str(&b, "x");
    TG_EXPECT(b, FTI_ERR_FORMAT, "array of 2^32 strings");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, FTI_GGUF_ARRAY); tg_u32(&b, FTI_GGUF_STRING);
    tg_u64(&b, 2); tg_str(&b, "x"); tg_u64(&b, 0xffffffffffffffffull);
    TG_EXPECT(b, FTI_ERR_FORMAT, "second string of an array with length 2^64-1");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, FTI_GGUF_ARRAY); tg_u32(&b, FTI_GGUF_ARRAY);
    tg_u64(&b, 1); tg_u32(&b, FTI_GGUF_UINT8); tg_u64(&b, 1); fti_buf_putc(&b, 1);
    TG_EXPECT(b, FTI_ERR_UNSUPPORTED, "nested array");
    tg_head(&b, 0, 1);
    tg_str(&b, "k"); tg_u32(&b, FTI_GGUF_ARRAY); tg_u32(&b, 77); tg_u64(&b, 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "array of unknown type");

    /* duplicate keys, alignment */
    tg_head(&b, 0, 2);
    tg_kv_u32(&b, "dup", 1);
    tg_kv_u32(&b, "dup", 2);
    TG_EXPECT(b, FTI_ERR_FORMAT, "duplicate key");
    tg_head(&b, 0, 1);
    tg_kv_u32(&b, "general.alignment", 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "alignment 0");
    tg_head(&b, 0, 1);
    tg_kv_u32(&b, "general.alignment", 48);
    TG_EXPECT(b, FTI_ERR_FORMAT, "alignment 48");
    tg_head(&b, 0, 1);
    tg_kv_u32(&b, "general.alignment", 0x80000001u);
    TG_EXPECT(b, FTI_ERR_FORMAT, "alignment 2^31+1");
    tg_head(&b, 0, 1);
    tg_str(&b, "general.alignment"); tg_u32(&b, FTI_GGUF_STRING); tg_str(&b, "32");
    TG_EXPECT(b, FTI_ERR_FORMAT, "alignment of type string");
    tg_head(&b, 0, 1);
    tg_str(&b, "general.alignment"); tg_u32(&b, FTI_GGUF_UINT64); tg_u64(&b, 32);
    TG_EXPECT(b, FTI_ERR_FORMAT, "alignment of type u64");

    /* tensor infos */
    {
        uint64_t ne5[5] = {32, 1, 1, 1, 1};
        tg_head(&b, 1, 0);
        tg_tensor(&b, "t", 5, ne5, FTI_GGML_F32, 0);
        tg_pad(&b, 32, 128);
        TG_EXPECT(b, FTI_ERR_FORMAT, "n_dims 5");
    }
    tg_head(&b, 1, 0);
    tg_tensor(&b, "t", 0, ne, FTI_GGML_F32, 0);
    tg_pad(&b, 32, 128);
    TG_EXPECT(b, FTI_ERR_FORMAT, "n_dims 0");
    tg_head(&b, 1, 0);
    tg_str(&b, "t"); tg_u32(&b, 0xffffffffu); tg_u64(&b, 1);
    tg_pad(&b, 32, 128);
    TG_EXPECT(b, FTI_ERR_FORMAT, "n_dims 2^32-1");
    {
        uint64_t z[2] = {32, 0};
        tg_head(&b, 1, 0);
        tg_tensor(&b, "t", 2, z, FTI_GGML_F32, 0);
        tg_pad(&b, 32, 128);
        TG_EXPECT(b, FTI_ERR_FORMAT, "dim 0");
    }
    {
        uint64_t big[3] = {0x100000000ull, 0x100000000ull, 0x100000000ull};
        tg_head(&b, 1, 0);
        tg_tensor(&b, "t", 3, big, FTI_GGML_F32, 0);
        tg_pad(&b, 32, 128);
        TG_EXPECT(b, FTI_ERR_FORMAT, "element count 2^96");
    }
    {
        uint64_t big[2] = {0x8000000000000000ull, 1};
        tg_head(&b, 1, 0);
        tg_tensor(&b, "t", 2, big, FTI_GGML_F32, 0);
        tg_pad(&b, 32, 128);
        TG_EXPECT(b, FTI_ERR_FORMAT, "dim 2^63");
    }
    {
        uint64_t big[2] = {0x4000000000000000ull, 1};
        tg_head(&b, 1, 0);
        tg_tensor(&b, "t", 2, big, FTI_GGML_F32, 0);
        tg_pad(&b, 32, 128);
        TG_EXPECT(b, FTI_ERR_FORMAT, "bytes 2^64 (4 x 2^62)");
    }
    {
        uint64_t big[2] = {0x20000000ull, 0x20000000ull}; /* 2^58 bytes of f32 */
        tg_head(&b, 1, 0);
        tg_tensor(&b, "t", 2, big, FTI_GGML_F32, 0);
        tg_pad(&b, 32, 128);
        TG_EXPECT(b, FTI_ERR_FORMAT, "2^56 elements past EOF");
    }
    tg_head(&b, 1, 0);
    tg_tensor(&b, "t", 2, ne, 3 /* Q4_1 */, 0);
    tg_pad(&b, 32, 128);
    TG_EXPECT(b, FTI_ERR_UNSUPPORTED, "type Q4_1");
    tg_head(&b, 1, 0);
    tg_tensor(&b, "t", 2, ne, 0xffffffffu, 0);
    tg_pad(&b, 32, 128);
    TG_EXPECT(b, FTI_ERR_UNSUPPORTED, "type 2^32-1");
    {
        uint64_t odd[2] = {33, 2};
        tg_head(&b, 1, 0);
        tg_tensor(&b, "t", 2, odd, FTI_GGML_Q8_0, 0);
        tg_pad(&b, 32, 256);
        TG_EXPECT(b, FTI_ERR_FORMAT, "Q8_0 row not a multiple of 32");
    }
    tg_head(&b, 1, 0);
    tg_tensor(&b, "t", 2, ne, FTI_GGML_F32, 16);
    tg_pad(&b, 32, 512);
    TG_EXPECT(b, FTI_ERR_FORMAT, "unaligned offset");
    tg_head(&b, 1, 0);
    tg_tensor(&b, "t", 2, ne, FTI_GGML_F32, 0xffffffffffffffe0ull);
    tg_pad(&b, 32, 512);
    TG_EXPECT(b, FTI_ERR_FORMAT, "offset 2^64-32");
    tg_head(&b, 1, 0);
    tg_tensor(&b, "t", 2, ne, FTI_GGML_F32, 0x100000000ull);
    tg_pad(&b, 32, 512);
    TG_EXPECT(b, FTI_ERR_FORMAT, "offset 2^32");
    tg_head(&b, 1, 0);
    tg_tensor(&b, "t", 2, ne, FTI_GGML_F32, 0);
    tg_pad(&b, 32, 255);
    TG_EXPECT(b, FTI_ERR_FORMAT, "tensor one byte past EOF");
    tg_head(&b, 1, 0);
    tg_tensor(&b, "t", 2, ne, FTI_GGML_F32, 0);
    TG_EXPECT(b, FTI_ERR_FORMAT, "data section missing");
    tg_head(&b, 2, 0);
    tg_tensor(&b, "a", 2, ne, FTI_GGML_F32, 0);
    tg_tensor(&b, "b", 2, ne, FTI_GGML_F32, 224);
    tg_pad(&b, 32, 512);
    TG_EXPECT(b, FTI_ERR_FORMAT, "overlapping tensors");
    tg_head(&b, 2, 0);
    tg_tensor(&b, "a", 2, ne, FTI_GGML_F32, 256);
    tg_tensor(&b, "b", 2, ne, FTI_GGML_F32, 256);
    tg_pad(&b, 32, 512);
    TG_EXPECT(b, FTI_ERR_FORMAT, "same offset");
    tg_head(&b, 2, 0);
    tg_tensor(&b, "a", 2, ne, FTI_GGML_F32, 0);
    tg_tensor(&b, "a", 2, ne, FTI_GGML_F32, 256);
    tg_pad(&b, 32, 512);
    TG_EXPECT(b, FTI_ERR_FORMAT, "duplicate tensor name");
    tg_head(&b, 1, 0);
    tg_str(&b, ""); tg_u32(&b, 1); tg_u64(&b, 32); tg_u32(&b, 0); tg_u64(&b, 0);
    tg_pad(&b, 32, 128);
    TG_EXPECT(b, FTI_ERR_FORMAT, "empty tensor name");

    /* the valid file opens; every truncation of it fails cleanly */
    tg_valid(&b);
    {
        fti_buf cut;
        size_t n;
        fti_gguf *g = NULL;
        fti_error err;
        CHECK_OK(fti_gguf_open_memory(&g, b.data, b.len, "valid", NULL, &err));
        fti_gguf_close(g);
        for (n = 0; n < b.len; n++) {
            memset(&cut, 0, sizeof cut);
            fti_buf_append(&cut, b.data, n);
            g = NULL;
            if (fti_gguf_open_memory(&g, cut.data, cut.len, "cut", NULL, &err) == FTI_OK) {
                fprintf(stderr, "    truncation to %lu bytes accepted\n", (unsigned long)n);
                fti_test_failures++;
                fti_gguf_close(g);
            }
            fti_buf_free(&cut);
        }
    }
    fti_buf_free(&b);
}

/* Random byte flips of a valid file: never a crash (ASan/UBSan in CI), either OK or an error
 * with a message. */
FTI_TEST(gguf_mutations) {
    fti_buf b;
    fti_rng rng;
    int it;
    memset(&b, 0, sizeof b);
    tg_valid(&b);
    fti_rng_seed(&rng, 7, 3);
    for (it = 0; it < 3000; it++) {
        unsigned char *copy = (unsigned char *)malloc(b.len);
        int k, n_flips = 1 + (int)fti_rng_below(&rng, 4);
        fti_gguf *g = NULL;
        fti_error err;
        fti_result rc;
        memcpy(copy, b.data, b.len);
        for (k = 0; k < n_flips; k++) {
            size_t pos = fti_rng_below(&rng, 160); /* the header part */
            uint32_t r = fti_rng_u32(&rng);
            copy[pos % b.len] = (r & 1) ? (unsigned char)(r >> 8) : (unsigned char)0xff;
        }
        rc = fti_gguf_open_memory(&g, copy, b.len, "mut", NULL, &err);
        if (rc == FTI_OK) {
            size_t i;
            for (i = 0; i < fti_gguf_n_tensors(g); i++) {
                const fti_gguf_tensor *t = fti_gguf_tensor_at(g, i);
                CHECK((const unsigned char *)t->data + t->n_bytes <= copy + b.len);
            }
            fti_gguf_close(g);
        } else {
            CHECK(err.msg[0] != 0);
        }
        free(copy);
    }
    fti_buf_free(&b);
}

FTI_TEST(gguf_writer_atomic) {
    fti_gguf_writer *w = NULL;
    fti_error err;
    const char *path = fti_test_tmp("a.gguf");
    fti_gguf *g = NULL;
    REQUIRE(fti_gguf_writer_create(&w, 0) == FTI_OK);
    CHECK_OK(fti_gguf_set_u32(w, "x", 1));
    CHECK_OK(fti_gguf_writer_write(w, path, &err));
    CHECK(fti_gguf_writer_write(w, fti_test_tmp("nodir/b.gguf"), &err) != FTI_OK);
    fti_gguf_writer_free(w);
    REQUIRE(fti_gguf_open(&g, path, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(fti_gguf_n_kv(g), 1);
    fti_gguf_close(g);
    CHECK(fti_gguf_open(&g, fti_test_tmp("missing.gguf"), NULL, &err) != FTI_OK);
    CHECK(g == NULL);
}

/* A fake gpt2 vocabulary of n tokens: "t0", "t1", ...; the last one is a special. */
typedef struct tg_vocab {
    char **tokens;
    char *merges[2];
    size_t n;
    int32_t special;
} tg_vocab;

static void tg_vocab_make(tg_vocab *v, size_t n) {
    size_t i;
    v->n = n;
    v->tokens = (char **)malloc(n * sizeof(char *));
    for (i = 0; i < n; i++) {
        v->tokens[i] = (char *)malloc(24);
        snprintf(v->tokens[i], 24, i + 1 == n ? "<|endoftext|>" : "t%lu", (unsigned long)i);
    }
    v->merges[0] = (char *)"t t";
    v->merges[1] = (char *)"\xc4\xa0 t";
    v->special = (int32_t)(n - 1);
}

static void tg_vocab_free(tg_vocab *v) {
    size_t i;
    for (i = 0; i < v->n; i++) free(v->tokens[i]);
    free(v->tokens);
}

static void tg_tok_meta(fti_gguf_tokenizer_meta *m, const tg_vocab *v) {
    memset(m, 0, sizeof *m);
    m->n_tokens = v->n;
    m->tokens = (const char *const *)v->tokens;
    m->special_ids = &v->special;
    m->n_special = 1;
    m->n_merges = 2;
    m->merges = (const char *const *)v->merges;
    m->bos_id = v->special;
    m->eos_id = v->special;
    m->pad_id = -1;
    m->add_bos = 1;
}

/* Builds a tiny llama writer (vocab 64, dim 64, 2 layers) with the given matrix type. */
static fti_gguf_writer *tg_llama_writer(fti_model_config *cfg, float **params, tg_vocab *v,
                                        uint32_t mt, int tied) {
    fti_gguf_writer *w = NULL;
    fti_gguf_tokenizer_meta m;
    fti_gguf_lineage lin;
    fti_gguf_model_opts mo;
    fti_error err;
    const char *ds[2] = {"notes-v1", "mail-v3"};
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = 64;
    cfg->dim = 64;
    cfg->n_layers = 2;
    cfg->n_heads = 4;
    cfg->n_kv_heads = 2;
    cfg->hidden_dim = 96;
    cfg->context_len = 32;
    cfg->tied_embeddings = tied;
    if (fti_model_config_resolve(cfg, &err) != FTI_OK) return NULL;
    *params = (float *)malloc(fti_model_n_params(cfg) * sizeof(float));
    fti_model_init_params(cfg, *params, 5);
    tg_vocab_make(v, 64);
    tg_tok_meta(&m, v);
    memset(&lin, 0, sizeof lin);
    lin.name = "twin-test";
    lin.datasets = ds;
    lin.n_datasets = 2;
    lin.dataset_version = "v0001";
    lin.tokenizer_sha256 = "abc123";
    lin.train_config = "{\"steps\":10}";
    lin.train_steps = 10;
    lin.train_loss = 3.5;
    lin.has_train_loss = 1;
    memset(&mo, 0, sizeof mo);
    mo.matrix_type = mt;
    if (fti_gguf_writer_create(&w, 0) != FTI_OK) return NULL;
    if (fti_gguf_add_llama(w, cfg, *params, &m, &lin, &mo, &err) != FTI_OK) {
        fprintf(stderr, "    add_llama: %s\n", err.msg);
        fti_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

FTI_TEST(gguf_llama_roundtrip) {
    static const uint32_t types[5] = {FTI_GGML_F32, FTI_GGML_F16, FTI_GGML_BF16, FTI_GGML_Q8_0,
                                      FTI_GGML_Q4_0};
    int ti;
    for (ti = 0; ti < 5; ti++) {
        fti_model_config cfg, back;
        float *params = NULL;
        tg_vocab v;
        fti_gguf_writer *w = tg_llama_writer(&cfg, &params, &v, types[ti], ti & 1);
        fti_gguf *g = NULL;
        fti_error err;
        const char *path = fti_test_tmp("llama.gguf");
        size_t i, n;
        const char *s;
        size_t len;
        uint32_t u;
        int b;
        const fti_gguf_kv *kv;
        REQUIRE(w != NULL);
        REQUIRE(fti_gguf_writer_write(w, path, &err) == FTI_OK);
        fti_gguf_writer_free(w);
        REQUIRE(fti_gguf_open(&g, path, NULL, &err) == FTI_OK);
        if (fti_gguf_llama_config(g, &back, 0, &err) != FTI_OK)
            fprintf(stderr, "    %s\n", err.msg);
        CHECK(back.vocab_size == 64 && back.dim == 64 && back.n_layers == 2 && back.n_heads == 4 &&
              back.n_kv_heads == 2 && back.hidden_dim == 96 && back.context_len == 32 &&
              back.tied_embeddings == (ti & 1) && back.norm_eps == cfg.norm_eps &&
              back.rope_base == cfg.rope_base);
        CHECK_OK(fti_gguf_get_str(g, "general.architecture", &s, &len, &err));
        CHECK(len == 5 && memcmp(s, "llama", 5) == 0);
        CHECK_OK(fti_gguf_get_str(g, "tokenizer.ggml.model", &s, &len, &err));
        CHECK(len == 4 && memcmp(s, "gpt2", 4) == 0);
        CHECK_OK(fti_gguf_get_str(g, "tokenizer.ggml.pre", &s, &len, &err));
        CHECK(len == 5 && memcmp(s, "gpt-2", 5) == 0);
        CHECK(fti_gguf_find(g, "llama.block_count")->type == FTI_GGUF_UINT32);
        CHECK(fti_gguf_find(g, "llama.rope.freq_base")->type == FTI_GGUF_FLOAT32);
        CHECK(fti_gguf_find(g, "llama.attention.layer_norm_rms_epsilon")->type == FTI_GGUF_FLOAT32);
        CHECK_OK(fti_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u, &err));
        CHECK_EQ_INT(u, 63);
        CHECK_OK(fti_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, &err));
        CHECK_EQ_INT(b, 1);
        CHECK_OK(fti_gguf_get_arr(g, "tokenizer.ggml.token_type", FTI_GGUF_INT32, &kv, &err));
        CHECK_EQ_INT(fti_gguf_arr_int(kv, 0), 1);
        CHECK_EQ_INT(fti_gguf_arr_int(kv, 63), 3);
        CHECK_OK(fti_gguf_get_arr(g, "general.datasets", FTI_GGUF_STRING, &kv, &err));
        CHECK_EQ_INT(kv->arr_n, 2);
        CHECK_OK(fti_gguf_get_str(g, "fti.dataset.version", &s, &len, &err));
        CHECK(len == 5 && memcmp(s, "v0001", 5) == 0);
        CHECK_OK(fti_gguf_get_u32(g, "general.file_type", &u, &err));
        CHECK_EQ_INT(u, ti == 0 ? 0 : ti == 1 ? 1 : ti == 2 ? 32 : ti == 3 ? 7 : 2);
        /* every tensor: decoded values close to the f32 weights (exact for F32) */
        n = fti_model_n_tensors(&cfg);
        CHECK_EQ_INT(fti_gguf_n_tensors(g), n);
        for (i = 0; i < n; i++) {
            fti_tensor_info info;
            const fti_gguf_tensor *t;
            size_t r, c, rb;
            double err_sum = 0, ref_sum = 0;
            float *row;
            fti_model_tensor_info(&cfg, i, &info);
            {
                char nm[64];
                snprintf(nm, sizeof nm, "%s.weight", info.name);
                t = fti_gguf_find_tensor(g, nm);
            }
            REQUIRE(t != NULL);
            CHECK(t->type == (info.is_norm ? FTI_GGML_F32 : types[ti]));
            rb = fti_ggml_row_bytes(t->type, (size_t)t->ne[0]);
            row = (float *)malloc(t->ne[0] * sizeof(float));
            for (r = 0; r < info.rows && !info.is_norm; r++) {
                fti_dequantize_row(NULL, (fti_dtype)t->type, row,
                                   (const unsigned char *)t->data + r * rb, info.cols);
                for (c = 0; c < info.cols; c++) {
                    float ref = params[info.offset + r * info.cols + c];
                    err_sum += fabs(row[c] - ref);
                    ref_sum += fabs(ref);
                }
            }
            if (info.is_norm) CHECK(memcmp(t->data, params + info.offset, info.rows * 4) == 0);
            else if (types[ti] == FTI_GGML_F32) CHECK(err_sum == 0);
            else CHECK(err_sum <= ref_sum * (types[ti] == FTI_GGML_Q4_0 ? 0.15 : 0.01));
            free(row);
        }
        /* the whole parameter block back (exact for F32) */
        {
            float *back_p = (float *)malloc(fti_model_n_params(&cfg) * sizeof(float));
            CHECK_OK(fti_gguf_llama_params(g, &back, back_p, &err));
            if (types[ti] == FTI_GGML_F32)
                CHECK(memcmp(back_p, params, fti_model_n_params(&cfg) * sizeof(float)) == 0);
            free(back_p);
        }
        fti_gguf_close(g);
        free(params);
        tg_vocab_free(&v);
    }
}

/* fti.train.loss is written only when the lineage says the loss is known (has_train_loss): a
 * zeroed lineage with steps wrote "fti.train.loss 0", which a reader takes for a loss of 0. */
FTI_TEST(gguf_lineage_train_loss_only_when_set) {
    fti_model_config cfg;
    fti_gguf_lineage lin;
    fti_gguf *g = NULL;
    fti_error err;
    float *params, f = -1;
    const char *path = fti_test_tmp("lineage_loss.gguf");
    int c;
    memset(&cfg, 0, sizeof cfg);
    REQUIRE(fti_model_preset("tiny", &cfg, &err) == FTI_OK);
    cfg.vocab_size = 32;
    cfg.context_len = 8;
    REQUIRE(fti_model_config_resolve(&cfg, &err) == FTI_OK);
    params = (float *)malloc(fti_model_n_params(&cfg) * sizeof(float));
    REQUIRE(params);
    fti_model_init_params(&cfg, params, 3);
    for (c = 0; c < 4; c++) {
        memset(&lin, 0, sizeof lin);
        lin.train_steps = 7;
        if (c == 1) lin.train_loss = 0.0, lin.has_train_loss = 1; /* a loss of 0, known */
        if (c == 2) lin.train_loss = 2.25, lin.has_train_loss = 1;
        if (c == 3) lin.train_loss = NAN, lin.has_train_loss = 1; /* known to be unknown */
        REQUIRE(fti_gguf_write_llama(path, &cfg, params, NULL, &lin, NULL, &err) == FTI_OK);
        REQUIRE(fti_gguf_open(&g, path, NULL, &err) == FTI_OK);
        CHECK(fti_gguf_find(g, "fti.train.steps") != NULL);
        if (c == 0 || c == 3) {
            CHECK(fti_gguf_find(g, "fti.train.loss") == NULL);
        } else {
            CHECK_OK(fti_gguf_get_f32(g, "fti.train.loss", &f, &err));
            CHECK_NEAR(f, c == 1 ? 0.0 : 2.25, 0, 0);
        }
        fti_gguf_close(g);
        g = NULL;
    }
    free(params);
}

/* Model-level hostile cases: wrong key types, missing keys, token ids >= vocab, bad shapes. */
FTI_TEST(gguf_llama_hostile) {
    int c;
    for (c = 0; c < 12; c++) {
        fti_model_config cfg, back;
        float *params = NULL;
        tg_vocab v;
        fti_gguf_writer *w = tg_llama_writer(&cfg, &params, &v, FTI_GGML_F32, 0);
        fti_gguf *g = NULL;
        fti_error err;
        fti_buf b;
        fti_result rc;
        uint64_t ne[2] = {64, 63};
        REQUIRE(w != NULL);
        switch (c) {
        case 0: fti_gguf_set_str(w, "llama.block_count", "2"); break;
        case 1: fti_gguf_set_f32(w, "llama.embedding_length", 64.0f); break;
        case 2: fti_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 64); break;
        case 3: fti_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 0xffffffffu); break;
        case 4: fti_gguf_set_i64(w, "llama.attention.head_count", -4); break;
        case 5: fti_gguf_unset(w, "llama.block_count"); break;
        case 6: fti_gguf_set_u32(w, "llama.vocab_size", 65); break;
        case 7: fti_gguf_set_str(w, "general.architecture", "gpt2"); break;
        case 8: fti_gguf_set_u32(w, "llama.block_count", 3); break;
        case 9: fti_gguf_set_u32(w, "llama.attention.head_count", 3); break;
        case 10: fti_gguf_set_str(w, "llama.rope.freq_base", "1e4"); break;
        case 11: {
            /* an extra tensor the layout does not know */
            static float extra[64 * 63];
            fti_gguf_add_tensor(w, "blk.9.attn_q.weight", 2, ne, FTI_GGML_F32, extra, sizeof extra);
            break;
        }
        }
        memset(&b, 0, sizeof b);
        REQUIRE(fti_gguf_writer_write_buf(w, &b, &err) == FTI_OK);
        fti_gguf_writer_free(w);
        REQUIRE(fti_gguf_open_memory(&g, b.data, b.len, "m.gguf", NULL, &err) == FTI_OK);
        rc = fti_gguf_llama_config(g, &back, 0, &err);
        if (rc == FTI_OK) {
            fprintf(stderr, "    llama case %d accepted\n", c);
            fti_test_failures++;
        } else {
            CHECK(strstr(err.msg, "m.gguf") != NULL);
            if (getenv("FTI_TEST_VERBOSE")) fprintf(stderr, "    case %d: %s\n", c, err.msg);
        }
        fti_gguf_close(g);
        fti_buf_free(&b);
        free(params);
        tg_vocab_free(&v);
    }
}

/* A general.alignment key set by hand decides the padding; a bad one is refused. */
FTI_TEST(gguf_alignment_key) {
    fti_gguf_writer *w = NULL;
    fti_gguf *g = NULL;
    fti_buf b;
    fti_error err;
    uint64_t ne[1] = {3};
    float v[3] = {1, 2, 3};
    memset(&b, 0, sizeof b);
    REQUIRE(fti_gguf_writer_create(&w, 0) == FTI_OK);
    CHECK_OK(fti_gguf_add_tensor(w, "a", 1, ne, FTI_GGML_F32, v, 12));
    CHECK_OK(fti_gguf_add_tensor(w, "b", 1, ne, FTI_GGML_F32, v, 12));
    CHECK_OK(fti_gguf_set_u32(w, "general.alignment", 128));
    REQUIRE(fti_gguf_writer_write_buf(w, &b, &err) == FTI_OK);
    REQUIRE(fti_gguf_open_memory(&g, b.data, b.len, "a.gguf", NULL, &err) == FTI_OK);
    CHECK_EQ_INT(fti_gguf_alignment(g), 128);
    CHECK_EQ_INT(fti_gguf_tensor_at(g, 1)->offset, 128);
    fti_gguf_close(g);
    CHECK_OK(fti_gguf_set_u32(w, "general.alignment", 24));
    b.len = 0;
    CHECK(fti_gguf_writer_write_buf(w, &b, &err) == FTI_ERR_INVALID);
    CHECK_OK(fti_gguf_set_str(w, "general.alignment", "32"));
    CHECK(fti_gguf_writer_write_buf(w, &b, &err) == FTI_ERR_INVALID);
    fti_gguf_writer_free(w);
    fti_buf_free(&b);
}

/* Files from other tools (llama.cpp's convert and llama-quantize): a tensor type fti does not
 * run is refused by its llama.cpp name (Q6_K, IQ2_XXS; removed or unknown ids as numbers). */
FTI_TEST(gguf_foreign_tensor_types) {
    static const struct {
        uint32_t type;
        const char *name;
    } cases[6] = {{14, "has type Q6_K,"},      {12, "has type Q4_K,"}, {16, "has type IQ2_XXS,"},
                  {39, "has type MXFP4,"},     {4, "has type type 4,"},
                  {0xffffffffu, "has type type 4294967295,"}};
    int c;
    for (c = 0; c < 6; c++) {
        fti_buf b;
        fti_gguf *g = NULL;
        fti_error err;
        uint64_t ne[2] = {256, 2};
        tg_head(&b, 1, 0);
        tg_tensor(&b, "blk.0.ffn_down.weight", 2, ne, cases[c].type, 0);
        tg_pad(&b, 32, 1024);
        CHECK_EQ_INT(fti_gguf_open_memory(&g, b.data, b.len, "m.gguf", NULL, &err),
                     FTI_ERR_UNSUPPORTED);
        if (!strstr(err.msg, cases[c].name) || !strstr(err.msg, "m.gguf: tensor blk.0.ffn_down"))
            CHECK_EQ_STR(err.msg, cases[c].name);
        { /* opened for inspection (fti-inspect): sized by the type's blocks; ids not types, no */
            static const size_t bytes[4] = {420, 288, 132, 272};
            fti_gguf_opts go;
            memset(&go, 0, sizeof go);
            go.any_type = 1;
            if (c < 4) {
                char tn[16];
                REQUIRE(fti_gguf_open_memory(&g, b.data, b.len, "m.gguf", &go, &err) == FTI_OK);
                CHECK_EQ_INT(fti_gguf_tensor_at(g, 0)->n_bytes, bytes[c]);
                CHECK(strstr(cases[c].name, fti_ggml_type_any_name(cases[c].type, tn)) != NULL);
                fti_gguf_close(g);
                g = NULL;
            } else {
                CHECK_EQ_INT(fti_gguf_open_memory(&g, b.data, b.len, "m.gguf", &go, &err),
                             FTI_ERR_UNSUPPORTED);
            }
        }
        fti_gguf_close(g);
        fti_buf_free(&b);
    }
}

/* A llama file as llama.cpp's convert writes one: fti's own model with what other tools add
 * (unknown keys, arrays of strings and i64, an empty array, no BOS/EOS/add_bos, scaling "none")
 * loads; a SentencePiece vocabulary, RoPE scaling (keys, GGUF v2's scale_linear, Llama 3.1's
 * rope_freqs tensor) and another architecture are refused by name, not run wrongly or failed
 * later. */
FTI_TEST(gguf_llama_foreign) {
    int c;
    for (c = 0; c < 8; c++) {
        static const char *const tags[3] = {"text-generation", "llama", "x"};
        static const int64_t big[2] = {-1, (int64_t)1 << 40};
        static float freqs[8];
        fti_model_config cfg, back;
        float *params = NULL;
        tg_vocab v;
        fti_gguf_writer *w = tg_llama_writer(&cfg, &params, &v, FTI_GGML_F32, c & 1);
        fti_gguf *g = NULL;
        fti_error err;
        fti_buf b;
        fti_result rc, want = FTI_ERR_UNSUPPORTED;
        const char *msg = NULL;
        uint64_t ne[1] = {8};
        REQUIRE(w != NULL);
        switch (c) {
        case 0:
        case 1:
            want = FTI_OK;
            fti_gguf_set_arr_str(w, "general.tags", tags, NULL, 3);
            fti_gguf_set_arr_str(w, "general.languages", tags, NULL, 0);
            fti_gguf_set_arr(w, "some.tool.i64s", FTI_GGUF_INT64, big, 2);
            fti_gguf_set_f64(w, "some.tool.f64", 3.25);
            fti_gguf_set_str(w, "llama.rope.scaling.type", "none");
            fti_gguf_set_f32(w, "llama.rope.scaling.factor", 1.0f);
            fti_gguf_set_f32(w, "llama.rope.scale_linear", 1.0f);
            fti_gguf_unset(w, "tokenizer.ggml.bos_token_id");
            fti_gguf_unset(w, "tokenizer.ggml.eos_token_id");
            fti_gguf_unset(w, "tokenizer.ggml.add_bos_token");
            fti_gguf_unset(w, "llama.vocab_size");
            break;
        case 2:
            fti_gguf_set_str(w, "tokenizer.ggml.model", "llama");
            msg = "m.gguf: tokenizer.ggml.model is \"llama\"; fti supports only \"gpt2\"";
            break;
        case 3:
            fti_gguf_set_str(w, "llama.rope.scaling.type", "linear");
            fti_gguf_set_f32(w, "llama.rope.scaling.factor", 4.0f);
            msg = "m.gguf: llama.rope.scaling.type is \"linear\"; fti supports only \"none\"";
            break;
        case 4:
            fti_gguf_set_str(w, "llama.rope.scaling.type", "yarn");
            msg = "m.gguf: llama.rope.scaling.type is \"yarn\"; fti supports only \"none\"";
            break;
        case 5:
            fti_gguf_add_tensor(w, "rope_freqs.weight", 1, ne, FTI_GGML_F32, freqs, sizeof freqs);
            msg = "m.gguf: tensor rope_freqs.weight (Llama 3.1 RoPE scaling) is not supported";
            break;
        case 7:
            fti_gguf_set_f32(w, "llama.rope.scale_linear", 2.0f);
            msg = "m.gguf: llama.rope.scale_linear is 2; fti supports only 1";
            break;
        case 6:
            fti_gguf_set_str(w, "general.architecture", "qwen2");
            msg = "m.gguf: general.architecture is \"qwen2\"; fti supports only \"llama\"";
            break;
        }
        memset(&b, 0, sizeof b);
        REQUIRE(fti_gguf_writer_write_buf(w, &b, &err) == FTI_OK);
        fti_gguf_writer_free(w);
        REQUIRE(fti_gguf_open_memory(&g, b.data, b.len, "m.gguf", NULL, &err) == FTI_OK);
        rc = fti_gguf_llama_config(g, &back, c == 5, &err);
        CHECK_EQ_INT(rc, want);
        if (rc != FTI_OK && msg) CHECK_EQ_STR(err.msg, msg);
        if (rc == FTI_OK)
            CHECK(back.vocab_size == 64 && back.n_kv_heads == 2 && back.tied_embeddings == (c & 1));
        fti_gguf_close(g);
        fti_buf_free(&b);
        free(params);
        tg_vocab_free(&v);
    }
}

/* Runs cmd; its stdout in out (NUL-terminated); the exit status, -1 if it did not exit. */
static int tg_run(const char *cmd, char *out, size_t cap) {
    FILE *f = popen(cmd, "r");
    size_t n = 0, m;
    int st;
    if (!f) return -1;
    while (n + 1 < cap && (m = fread(out + n, 1, cap - 1 - n, f)) > 0) n += m;
    out[n] = 0;
    st = pclose(f);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* fti-inspect prints array values as they are: bools as true/false (they printed 0, which
 * arr_int gives for a non-integer), u64 above 2^63 unsigned (they printed -1); a name's control
 * bytes as \xNN (a hostile file's ESC sequences reached the terminal). */
FTI_TEST(gguf_inspect_cli_array_values) {
    static const unsigned char bools[3] = {1, 0, 1};
    static const uint64_t u64s[2] = {0xffffffffffffffffull, 5};
    const char *prog = "build/fti-inspect", *path = fti_test_tmp("kinds.gguf");
    fti_gguf_writer *w = NULL;
    fti_error err;
    char cmd[1200], out[4096];
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    REQUIRE(fti_gguf_writer_create(&w, 0) == FTI_OK);
    CHECK_OK(fti_gguf_set_arr(w, "t.bools", FTI_GGUF_BOOL, bools, 3));
    CHECK_OK(fti_gguf_set_arr(w, "t.u64s", FTI_GGUF_UINT64, u64s, 2));
    CHECK_OK(fti_gguf_set_bool(w, "t.bool", 1));
    CHECK_OK(fti_gguf_set_u32(w, "t.\x1b[31mred", 1));
    REQUIRE(fti_gguf_writer_write(w, path, &err) == FTI_OK);
    fti_gguf_writer_free(w);
    snprintf(cmd, sizeof cmd, "%s '%s'", prog, path);
    CHECK_EQ_INT(tg_run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "[bool x 3] true, false, true\n") != NULL);
    CHECK(strstr(out, "[u64 x 2] 18446744073709551615, 5\n") != NULL);
    CHECK(strstr(out, "bool    true\n") != NULL);
    CHECK(strstr(out, "  t.\\x1b[31mred ") != NULL && strchr(out, 0x1b) == NULL);
    if (fti_test_failures) printf("%s", out);
}

/* fti-quantize on a model: lineage keys survive every conversion, OUT may be IN, and a Q8_0
 * model re-encoded as Q4_0 is reported (its error adds up; it was silent). */
FTI_TEST(gguf_quantize_cli_lineage_requant) {
    const char *prog = "build/fti-quantize", *path = fti_test_tmp("q.gguf");
    fti_model_config cfg, back;
    float *params = NULL;
    tg_vocab v;
    fti_gguf_writer *w;
    fti_gguf *g = NULL;
    fti_error err;
    char cmd[1200], out[4096];
    const char *s;
    size_t len;
    uint32_t u;
    const fti_gguf_kv *kv;
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    w = tg_llama_writer(&cfg, &params, &v, FTI_GGML_F32, 0);
    REQUIRE(w != NULL);
    REQUIRE(fti_gguf_writer_write(w, path, &err) == FTI_OK);
    fti_gguf_writer_free(w);
    snprintf(cmd, sizeof cmd, "%s '%s' '%s' q8_0 2>&1", prog, path, path);
    CHECK_EQ_INT(tg_run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "warning") == NULL);
    snprintf(cmd, sizeof cmd, "%s '%s' '%s' q4_0 2>&1", prog, path, path);
    CHECK_EQ_INT(tg_run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "warning: 16 tensors of") != NULL && strstr(out, "already quantized"));
    REQUIRE(fti_gguf_open(&g, path, NULL, &err) == FTI_OK);
    CHECK_OK(fti_gguf_llama_config(g, &back, 0, &err));
    CHECK_EQ_INT(fti_gguf_find_tensor(g, "blk.1.ffn_down.weight")->type, FTI_GGML_Q4_0);
    CHECK_OK(fti_gguf_get_u32(g, "general.file_type", &u, &err));
    CHECK_EQ_INT(u, 2);
    CHECK_OK(fti_gguf_get_str(g, "fti.dataset.version", &s, &len, &err));
    CHECK(len == 5 && memcmp(s, "v0001", 5) == 0);
    CHECK_OK(fti_gguf_get_str(g, "general.name", &s, &len, &err));
    CHECK(len == 9 && memcmp(s, "twin-test", 9) == 0);
    CHECK_OK(fti_gguf_get_arr(g, "general.datasets", FTI_GGUF_STRING, &kv, &err));
    CHECK_EQ_INT(kv->arr_n, 2);
    {
        uint64_t steps = 0;
        CHECK_OK(fti_gguf_get_u64(g, "fti.train.steps", &steps, &err));
        CHECK_EQ_INT(steps, 10);
    }
    fti_gguf_close(g);
    free(params);
    tg_vocab_free(&v);
}
