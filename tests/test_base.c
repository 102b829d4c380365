/* test_base.c: results, memory, reader, SHA-256, hash64, UTF-8, JSON, files, RNG, progress. */

static void hex_of(const void *data, size_t n, char hex[65]) {
    unsigned char d[32];
    fti_sha256_buf(data, n, d);
    fti_sha256_hex(d, hex);
}

FTI_TEST(base_result_strings) {
    CHECK_EQ_STR(fti_result_str(FTI_OK), "ok");
    CHECK_EQ_STR(fti_result_str(FTI_ERR_NOMEM), "out of memory");
    CHECK_EQ_STR(fti_result_str((fti_result)-999), "unknown error");
    {
        fti_error e;
        CHECK_EQ_INT(fti_error_set(&e, FTI_ERR_FORMAT, "%s: bad magic %u", "m.gguf", 7u),
                     FTI_ERR_FORMAT);
        CHECK_EQ_STR(e.msg, "m.gguf: bad magic 7");
        fti_error_prefix(&e, "load");
        CHECK_EQ_STR(e.msg, "load: m.gguf: bad magic 7");
        CHECK_EQ_INT(fti_error_set(NULL, FTI_ERR_IO, "x"), FTI_ERR_IO);
    }
}

FTI_TEST(base_sha256_vectors) {
    char hex[65];
    static const char a1m_prefix[] =
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    hex_of("", 0, hex);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    {
        /* one million 'a', fed in odd-sized pieces */
        fti_sha256 s;
        unsigned char d[32], chunk[997];
        size_t left = 1000000;
        memset(chunk, 'a', sizeof chunk);
        fti_sha256_init(&s);
        while (left) {
            size_t k = left < sizeof chunk ? left : sizeof chunk;
            fti_sha256_update(&s, chunk, k);
            left -= k;
        }
        fti_sha256_final(&s, d);
        fti_sha256_hex(d, hex);
        CHECK_EQ_STR(hex, a1m_prefix);
    }
}

FTI_TEST(base_sha256_matches_sha256sum) {
    const char *path = fti_test_tmp("blob.bin");
    unsigned char data[100003], d[32];
    char hex[65], cmd[4300], line[200];
    size_t i;
    FILE *f;
    for (i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 2654435761u >> 13);
    REQUIRE(fti_test_write_file(path, data, sizeof data) == 0);
    CHECK_OK(fti_sha256_file(path, d, NULL));
    fti_sha256_hex(d, hex);
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    f = popen(cmd, "r");
    REQUIRE(f != NULL);
    REQUIRE(fgets(line, sizeof line, f) != NULL);
    pclose(f);
    line[64] = 0;
    CHECK_EQ_STR(hex, line);
}

FTI_TEST(base_hash64_stable) {
    uint64_t a = fti_hash64("hello", 5, 0), b = fti_hash64("hello", 5, 0);
    int i, j, collisions = 0;
    CHECK(a == b);
    CHECK(a != fti_hash64("hello", 5, 1));
    CHECK(a != fti_hash64("hellp", 5, 0));
    CHECK(fti_hash64("", 0, 0) != fti_hash64("\0", 1, 0));
    /* every single-byte change of a 40-byte key changes the hash */
    for (i = 0; i < 40; i++) {
        unsigned char k[40];
        uint64_t h0;
        memset(k, 7, sizeof k);
        h0 = fti_hash64(k, sizeof k, 3);
        for (j = 1; j < 256; j += 37) {
            k[i] = (unsigned char)(7 + j);
            if (fti_hash64(k, sizeof k, 3) == h0) collisions++;
            k[i] = 7;
        }
    }
    CHECK_EQ_INT(collisions, 0);
}

FTI_TEST(base_memory_and_arena) {
    void *p = fti_aligned_alloc(1000, 64);
    unsigned char mem[256];
    fti_arena a;
    size_t x;
    REQUIRE(p != NULL);
    CHECK(((uintptr_t)p & 63) == 0);
    memset(p, 1, 1000);
    fti_aligned_free(p);
    CHECK(fti_aligned_alloc(10, 48) == NULL); /* not a power of two */
    CHECK(fti_aligned_alloc(SIZE_MAX - 8, 64) == NULL);
    CHECK(fti_calloc(SIZE_MAX / 2, 4) == NULL);
    CHECK(fti_size_mul(SIZE_MAX / 2, 3, &x) == 0);
    CHECK(fti_size_add(SIZE_MAX, 1, &x) == 0);
    CHECK(fti_size_mul(6, 7, &x) == 1 && x == 42);
    CHECK_OK(fti_arena_init(&a, mem, sizeof mem));
    {
        void *q1 = fti_arena_alloc(&a, 100, 64), *q2 = fti_arena_alloc(&a, 100, 64);
        CHECK(q1 != NULL && ((uintptr_t)q1 & 63) == 0);
        CHECK(q2 == NULL || ((uintptr_t)q2 & 63) == 0);
        CHECK(fti_arena_alloc(&a, 1000, 8) == NULL);
        CHECK(fti_arena_alloc(&a, SIZE_MAX, 8) == NULL);
        fti_arena_reset(&a);
        CHECK(fti_arena_alloc(&a, 200, 1) != NULL);
    }
    fti_arena_free(&a);
    CHECK_OK(fti_arena_init(&a, NULL, 4096));
    CHECK(fti_arena_alloc(&a, 4096, 64) != NULL);
    fti_arena_free(&a);
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

FTI_TEST(base_buf) {
    fti_buf b = {0};
    int i;
    for (i = 0; i < 1000; i++) fti_buf_printf(&b, "%d,", i);
    CHECK(!b.oom);
    CHECK(b.len == strlen(b.data));
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    fti_buf_printf(&b, "%0300d", 5); /* longer than the small buffer */
    CHECK(b.data[b.len - 1] == '5' && b.data[b.len - 300] == '0');
    i = (int)b.len;
    fti_buf_append(&b, NULL, 0); /* an empty append (memcpy from NULL was UB: the ASan run) */
    CHECK((int)b.len == i && b.data[b.len] == 0);
    fti_buf_free(&b);
    /* allocation failure is sticky */
    fti_test_alloc_fail_at(1, 1);
    fti_buf_puts(&b, "hello");
    fti_buf_puts(&b, "world");
    fti_test_alloc_fail_at(0, 0);
    CHECK(b.oom);
    CHECK(b.len == 0);
    fti_buf_free(&b);
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

FTI_TEST(base_reader) {
    unsigned char buf[16] = {1, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 0, 0, 0x80, 0x3f, 9};
    fti_reader r = fti_reader_make(buf, 12);
    CHECK_EQ_INT(fti_read_u8(&r), 1);
    CHECK_EQ_INT(fti_read_u16(&r), 0x1234);
    CHECK_EQ_INT(fti_read_u32(&r), 0x12345678);
    CHECK(fti_read_f32(&r) == 1.0f);
    CHECK(!r.err);
    CHECK_EQ_INT(fti_reader_left(&r), 1);
    CHECK_EQ_INT(fti_read_u32(&r), 0); /* short: error, returns 0 */
    CHECK(r.err);
    CHECK(fti_read_bytes(&r, 0) == NULL); /* sticky */
    r = fti_reader_make(buf, 12);
    CHECK(fti_read_bytes(&r, SIZE_MAX) == NULL && r.err);
    {
        unsigned char o[8];
        fti_store_u64(o, 0x0102030405060708ull);
        CHECK(o[0] == 8 && o[7] == 1);
        CHECK(fti_load_u64(o) == 0x0102030405060708ull);
    }
}

FTI_TEST(base_utf8) {
    uint32_t cp;
    int ok;
    unsigned char enc[4];
    /* valid sequences of every length */
    CHECK_EQ_INT(fti_utf8_decode((const unsigned char *)"A", 1, &cp, &ok), 1);
    CHECK(ok && cp == 'A');
    CHECK_EQ_INT(fti_utf8_decode((const unsigned char *)"\xC3\xA9", 2, &cp, &ok), 2);
    CHECK(ok && cp == 0xE9);
    CHECK_EQ_INT(fti_utf8_decode((const unsigned char *)"\xE2\x82\xAC", 3, &cp, &ok), 3);
    CHECK(ok && cp == 0x20AC);
    CHECK_EQ_INT(fti_utf8_decode((const unsigned char *)"\xF0\x9F\x98\x80", 4, &cp, &ok), 4);
    CHECK(ok && cp == 0x1F600);
    /* overlongs */
    fti_utf8_decode((const unsigned char *)"\xC0\xAF", 2, &cp, &ok);
    CHECK(!ok && cp == 0xFFFD);
    fti_utf8_decode((const unsigned char *)"\xE0\x80\xAF", 3, &cp, &ok);
    CHECK(!ok);
    fti_utf8_decode((const unsigned char *)"\xF0\x80\x80\xAF", 4, &cp, &ok);
    CHECK(!ok);
    /* surrogates and beyond U+10FFFF */
    fti_utf8_decode((const unsigned char *)"\xED\xA0\x80", 3, &cp, &ok);
    CHECK(!ok);
    fti_utf8_decode((const unsigned char *)"\xF4\x90\x80\x80", 4, &cp, &ok);
    CHECK(!ok);
    /* truncated: consumes the valid prefix */
    CHECK_EQ_INT(fti_utf8_decode((const unsigned char *)"\xE2\x82", 2, &cp, &ok), 2);
    CHECK(!ok);
    CHECK_EQ_INT(fti_utf8_decode((const unsigned char *)"\xE2\x82Z", 3, &cp, &ok), 2);
    /* lone continuation and invalid leads */
    CHECK_EQ_INT(fti_utf8_decode((const unsigned char *)"\x80", 1, &cp, &ok), 1);
    CHECK(!ok);
    CHECK_EQ_INT(fti_utf8_decode((const unsigned char *)"\xFF", 1, &cp, &ok), 1);
    CHECK(!ok);
    /* encode */
    CHECK_EQ_INT(fti_utf8_encode(0x1F600, enc), 4);
    CHECK(memcmp(enc, "\xF0\x9F\x98\x80", 4) == 0);
    CHECK_EQ_INT(fti_utf8_encode(0xD800, enc), 3);
    CHECK(memcmp(enc, "\xEF\xBF\xBD", 3) == 0);
    /* validity and repair */
    CHECK_EQ_INT(fti_utf8_valid_prefix((const unsigned char *)"ab\xC3\xA9\xFF", 5), 4);
    {
        fti_buf b = {0};
        CHECK_EQ_INT(fti_utf8_repair((const unsigned char *)"a\xFF\xE2\x82z\xC0\xAF", 7, &b), 4);
        CHECK_EQ_INT(b.len, 1 + 3 + 3 + 1 + 3 + 3);
        CHECK(memcmp(b.data, "a\xEF\xBF\xBD\xEF\xBF\xBDz", 8) == 0);
        CHECK_EQ_INT(fti_utf8_valid_prefix((const unsigned char *)b.data, b.len), b.len);
        fti_buf_free(&b);
    }
    /* incomplete tails for streaming */
    CHECK_EQ_INT(fti_utf8_incomplete_tail((const unsigned char *)"ab\xE2\x82", 4), 2);
    CHECK_EQ_INT(fti_utf8_incomplete_tail((const unsigned char *)"ab\xF0", 3), 1);
    CHECK_EQ_INT(fti_utf8_incomplete_tail((const unsigned char *)"ab\xE2\x82\xAC", 5), 0);
    CHECK_EQ_INT(fti_utf8_incomplete_tail((const unsigned char *)"ab", 2), 0);
    CHECK_EQ_INT(fti_utf8_incomplete_tail((const unsigned char *)"a\xFF", 2), 0);
    CHECK_EQ_INT(fti_utf8_incomplete_tail((const unsigned char *)"\xED\xA0", 2), 0);
}

FTI_TEST(base_utf8_roundtrip_random) {
    fti_rng r;
    int it;
    fti_rng_seed(&r, 42, 1);
    for (it = 0; it < 2000; it++) {
        uint32_t cp = fti_rng_below(&r, 0x110000), back;
        unsigned char enc[4];
        int ok;
        size_t n = fti_utf8_encode(cp, enc);
        CHECK_EQ_INT(fti_utf8_decode(enc, n, &back, &ok), n);
        if (cp >= 0xD800 && cp <= 0xDFFF) CHECK(back == 0xFFFD);
        else CHECK(ok && back == cp);
    }
}

static fti_result parse_str(const char *s, fti_json_doc **doc, fti_error *err) {
    return fti_json_parse(s, strlen(s), NULL, doc, NULL, err);
}

FTI_TEST(base_json_valid) {
    fti_json_doc *doc = NULL;
    const fti_json *root, *v;
    fti_error err;
    CHECK_OK(parse_str(" {\"a\": [1, -2.5e3, true, false, null, \"x\\n\\u00e9\\ud83d\\ude00\"],"
                       " \"b\": {\"c\": \"\"}, \"big\": 9223372036854775807,"
                       " \"neg\": -9223372036854775808, \"huge\": 1e300 } ",
                       &doc, &err));
    REQUIRE(doc != NULL);
    root = fti_json_root(doc);
    CHECK(root->type == FTI_JSON_OBJECT && root->len == 5);
    v = fti_json_get(root, "a");
    REQUIRE(v && v->type == FTI_JSON_ARRAY && v->len == 6);
    CHECK(fti_json_at(v, 0)->is_int && fti_json_at(v, 0)->i == 1);
    CHECK(fti_json_at(v, 1)->num == -2500.0 && !fti_json_at(v, 1)->is_int);
    CHECK(fti_json_at(v, 2)->type == FTI_JSON_TRUE);
    CHECK(fti_json_at(v, 4)->type == FTI_JSON_NULL);
    CHECK(fti_json_at(v, 5)->len == 1 + 1 + 2 + 4);
    CHECK(memcmp(fti_json_at(v, 5)->str, "x\n\xC3\xA9\xF0\x9F\x98\x80", 8) == 0);
    CHECK(fti_json_at(v, 6) == NULL);
    CHECK_EQ_STR(fti_json_get_str(fti_json_get(root, "b"), "c", "?"), "");
    CHECK(fti_json_get_int(root, "big", 0) == INT64_MAX);
    CHECK(fti_json_get_int(root, "neg", 0) == INT64_MIN);
    CHECK(fti_json_get_num(root, "huge", 0) == 1e300);
    CHECK(fti_json_get(root, "missing") == NULL);
    fti_json_free(doc);
    /* scalars at top level, string with NUL */
    CHECK_OK(parse_str("\"a\\u0000b\"", &doc, NULL));
    CHECK(fti_json_root(doc)->len == 3);
    fti_json_free(doc);
    CHECK_OK(parse_str("0", &doc, NULL));
    fti_json_free(doc);
    /* a repeated key: its last value (JSON.parse's and Python's rule) */
    CHECK_OK(parse_str("{\"k\": 1, \"j\": 2, \"k\": 3}", &doc, NULL));
    CHECK(fti_json_get_int(fti_json_root(doc), "k", 0) == 3);
    fti_json_free(doc);
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

FTI_TEST(base_json_invalid) {
    static const char *bad[] = {
        "", " ", "{", "[", "[1,]", "{\"a\":}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "-", "1.",
        "1e", "1e+", ".5", "+1", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\uZZZZ\"",
        "\"a\nb\"", "[1]x", "{\"a\":1,}", "\"\xFF\"", "\"\xC0\xAF\"", "1e999", "-1e999", "[[[",
        "{\"a\":[}", "nan", "Infinity", "[-]", "\"\\", "{\"a\":1 \"b\":2}"};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fti_json_doc *doc = (fti_json_doc *)1;
        fti_error err;
        fti_result r = parse_str(bad[i], &doc, &err);
        if (r == FTI_OK) fprintf(stderr, "    accepted bad JSON #%zu: %s\n", i, bad[i]);
        CHECK(r != FTI_OK);
        CHECK(doc == NULL);
        CHECK(strncmp(err.msg, "offset ", 7) == 0);
    }
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

FTI_TEST(base_json_limits) {
    char deep[300];
    fti_json_doc *doc;
    fti_json_opts o;
    fti_error err;
    size_t consumed = 0;
    memset(deep, '[', 200);
    deep[200] = 0;
    CHECK(parse_str(deep, &doc, &err) == FTI_ERR_LIMIT);
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = 0;
    CHECK(parse_str(deep, &doc, &err) == FTI_ERR_LIMIT); /* 65 levels > max 64 */
    deep[0] = ' ';
    deep[129] = ' ';
    CHECK_OK(parse_str(deep, &doc, &err)); /* 64 levels */
    fti_json_free(doc);
    memset(&o, 0, sizeof o);
    o.max_string = 4;
    CHECK(fti_json_parse("\"hello\"", 7, &o, &doc, NULL, &err) == FTI_ERR_LIMIT);
    o.max_string = 0;
    o.max_nodes = 3;
    CHECK(fti_json_parse("[1,2,3]", 7, &o, &doc, NULL, &err) == FTI_ERR_LIMIT);
    o.max_nodes = 0;
    o.allow_trailing = 1;
    CHECK_OK(fti_json_parse("{} {\"x\":1}", 10, &o, &doc, &consumed, &err));
    CHECK_EQ_INT(consumed, 2);
    fti_json_free(doc);
    /* truncations of a valid document never crash and never succeed */
    {
        const char *s = "{\"k\":[1,2.5,\"s\\u00e9\",{\"n\":null}],\"t\":true}";
        size_t n = strlen(s), k;
        for (k = 0; k < n; k++) {
            fti_json_doc *d2 = NULL;
            CHECK(fti_json_parse(s, k, NULL, &d2, NULL, NULL) != FTI_OK);
        }
    }
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

FTI_TEST(base_json_alloc_failures) {
    const char *s = "{\"a\":[1,2,{\"b\":\"" /* long string forces several blocks */;
    fti_buf text = {0};
    long k, total;
    int i;
    fti_buf_puts(&text, s);
    for (i = 0; i < 40000; i++) fti_buf_putc(&text, 'x');
    fti_buf_puts(&text, "\"}]}");
    REQUIRE(!text.oom);
    {
        fti_json_doc *doc;
        fti_test_alloc_fail_at(0, 0);
        CHECK_OK(fti_json_parse(text.data, text.len, NULL, &doc, NULL, NULL));
        total = fti_test_alloc_count;
        fti_json_free(doc);
    }
    CHECK(total >= 2);
    for (k = 1; k <= total; k++) {
        int persistent;
        for (persistent = 0; persistent < 2; persistent++) {
            fti_json_doc *doc = NULL;
            long live0 = fti_test_alloc_live;
            fti_result r;
            fti_test_alloc_fail_at(k, persistent);
            r = fti_json_parse(text.data, text.len, NULL, &doc, NULL, NULL);
            fti_test_alloc_fail_at(0, 0);
            CHECK(r == FTI_ERR_NOMEM);
            CHECK(doc == NULL);
            CHECK_EQ_INT(fti_test_alloc_live, live0);
        }
    }
    fti_buf_free(&text);
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

FTI_TEST(base_json_writer) {
    fti_buf b = {0};
    fti_jw w;
    fti_json_doc *doc;
    fti_jw_init(&w, &b, 0);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "s");
    fti_jw_str(&w, "q\"\\\n\x01\xFF" "\xC3\xA9");
    fti_jw_key(&w, "a");
    fti_jw_arr_begin(&w);
    fti_jw_int(&w, -5);
    fti_jw_num(&w, 0.5);
    fti_jw_num(&w, 1.0 / 0.0);
    fti_jw_bool(&w, 1);
    fti_jw_null(&w);
    fti_jw_arr_begin(&w);
    fti_jw_arr_end(&w);
    fti_jw_obj_begin(&w);
    fti_jw_obj_end(&w);
    fti_jw_arr_end(&w);
    fti_jw_obj_end(&w);
    REQUIRE(!b.oom);
    CHECK_EQ_STR(b.data, "{\"s\":\"q\\\"\\\\\\n\\u0001\xEF\xBF\xBD\xC3\xA9\","
                         "\"a\":[-5,0.5,null,true,null,[],{}]}");
    CHECK_OK(fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL));
    fti_json_free(doc);
    /* pretty output parses to the same thing */
    b.len = 0;
    fti_jw_init(&w, &b, 1);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "x");
    fti_jw_arr_begin(&w);
    fti_jw_int(&w, 1);
    fti_jw_int(&w, 2);
    fti_jw_arr_end(&w);
    fti_jw_obj_end(&w);
    CHECK_EQ_STR(b.data, "{\n  \"x\": [\n    1,\n    2\n  ]\n}");
    fti_buf_free(&b);
}

FTI_TEST(base_files_read_map) {
    const char *p = fti_test_tmp("f.txt");
    void *data;
    size_t len;
    fti_map m;
    fti_error err;
    REQUIRE(fti_test_write_file(p, "hello world", 11) == 0);
    CHECK_OK(fti_file_read(p, 0, &data, &len, &err));
    CHECK(len == 11 && memcmp(data, "hello world", 12) == 0);
    fti_free(data);
    CHECK(fti_file_read(p, 5, &data, &len, &err) == FTI_ERR_LIMIT);
    CHECK(strstr(err.msg, "f.txt") != NULL);
    CHECK(fti_file_read(fti_test_tmp("missing"), 0, &data, &len, &err) == FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "missing") != NULL);
    CHECK_OK(fti_map_open(&m, p, &err));
    CHECK(m.len == 11 && memcmp(m.data, "hello world", 11) == 0);
    fti_map_close(&m);
    REQUIRE(fti_test_write_file(p, "", 0) == 0);
    CHECK_OK(fti_map_open(&m, p, &err));
    CHECK(m.len == 0 && m.data != NULL);
    fti_map_close(&m);
    CHECK(fti_map_open(&m, fti_test_tmp_dir, &err) != FTI_OK); /* a directory */
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

static int count_tmp_files(const char *dir) {
    char cmd[4200], line[64];
    FILE *f;
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '\\.tmp\\.'", dir);
    f = popen(cmd, "r");
    if (!f) return -1;
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    pclose(f);
    return atoi(line);
}

/* An atomic write does not rename a file over a FIFO, device or directory (fti-quantize run as
 * root replaced /dev/full with a regular file); a regular file and a symlink are replaced. */
FTI_TEST(base_atomic_write_not_over_special_files) {
    const char *fifo = fti_test_tmp("a_fifo"), *dir = fti_test_tmp("a_dir");
    const char *reg = fti_test_tmp("a_reg");
    fti_error err;
    struct stat st;
    REQUIRE(mkfifo(fifo, 0600) == 0);
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    CHECK(fti_file_write_atomic(fifo, "x", 1, &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "not a regular file (a device, FIFO or socket): not replaced") != NULL);
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(fti_file_write_atomic(dir, "x", 1, &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "(a directory)") != NULL);
    CHECK(fti_file_write_atomic("/dev/null", "x", 1, &err) == FTI_ERR_INVALID);
    CHECK_OK(fti_file_write_atomic(reg, "x", 1, &err));
    CHECK_OK(fti_file_write_atomic(reg, "yz", 2, &err));
    CHECK(stat(reg, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 2);
}

FTI_TEST(base_atomic_write_faults) {
    const char *p = fti_test_tmp("state.json");
    static const int errs[] = {EIO, ENOSPC};
    static const int ops[] = {FTI__IO_OPEN, FTI__IO_WRITE, FTI__IO_FSYNC, FTI__IO_CLOSE,
                              FTI__IO_RENAME};
    char big[50000];
    size_t i, j;
    memset(big, 'n', sizeof big);
    CHECK_OK(fti_file_write_atomic(p, "old", 3, NULL));
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        for (j = 0; j < 2; j++) {
            fti_error err;
            void *data;
            size_t len;
            fti_result r;
            fti__io_fault_set(ops[i], 1, errs[j], 0, 0);
            r = fti_file_write_atomic(p, big, sizeof big, &err);
            CHECK(fti__io_fault.fired == 1);
            fti__io_fault_set(0, 0, 0, 0, 0);
            CHECK(r != FTI_OK);
            if (errs[j] == ENOSPC) CHECK(r == FTI_ERR_NOSPACE);
            CHECK(strstr(err.msg, "state.json") != NULL);
            CHECK_OK(fti_file_read(p, 0, &data, &len, NULL));
            CHECK(len == 3 && memcmp(data, "old", 3) == 0);
            fti_free(data);
            CHECK_EQ_INT(count_tmp_files(fti_test_tmp_dir), 0);
        }
    }
    /* EINTR and short writes are retried: the write succeeds */
    fti__io_fault_set(FTI__IO_WRITE, 1, EINTR, 0, 0);
    CHECK_OK(fti_file_write_atomic(p, big, sizeof big, NULL));
    fti__io_fault_set(FTI__IO_WRITE, 1, 0, 1, 1);
    CHECK_OK(fti_file_write_atomic(p, big, sizeof big, NULL));
    CHECK(fti__io_fault.fired > 3);
    fti__io_fault_set(0, 0, 0, 0, 0);
    {
        void *data;
        size_t len;
        CHECK_OK(fti_file_read(p, 0, &data, &len, NULL));
        CHECK(len == sizeof big && memcmp(data, big, len) == 0);
        fti_free(data);
    }
    /* a failed fsync is never retried into success, even when later fsyncs would work */
    fti__io_fault_set(FTI__IO_FSYNC, 1, EIO, 0, 0);
    CHECK(fti_file_write_atomic(p, "new", 3, NULL) == FTI_ERR_IO);
    fti__io_fault_set(0, 0, 0, 0, 0);
    CHECK_EQ_INT(count_tmp_files(fti_test_tmp_dir), 0);
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

FTI_TEST(base_atomic_write_alloc_failures) {
    const char *p = fti_test_tmp("a.bin");
    long k, total;
    CHECK_OK(fti_file_write_atomic(p, "old", 3, NULL));
    fti_test_alloc_fail_at(0, 0);
    CHECK_OK(fti_file_write_atomic(p, "old", 3, NULL));
    total = fti_test_alloc_count;
    CHECK(total > 0);
    for (k = 1; k <= total; k++) {
        void *data;
        size_t len;
        fti_test_alloc_fail_at(k, 1);
        CHECK(fti_file_write_atomic(p, "new", 3, NULL) == FTI_ERR_NOMEM);
        fti_test_alloc_fail_at(0, 0);
        CHECK_EQ_INT(fti_test_alloc_live, 0);
        CHECK_OK(fti_file_read(p, 0, &data, &len, NULL));
        CHECK(len == 3 && memcmp(data, "old", 3) == 0);
        fti_free(data);
    }
    CHECK_EQ_INT(count_tmp_files(fti_test_tmp_dir), 0);
}

static fti_result collect(void *user, const char *path, uint64_t size) {
    fti_buf *b = (fti_buf *)user;
    fti_buf_printf(b, "%s:%llu\n", fti_path_base(path), (unsigned long long)size);
    return FTI_OK;
}

FTI_TEST(base_dirs_and_walk) {
    fti_buf b = {0};
    char *j;
    CHECK_OK(fti_mkdirs(fti_test_tmp("x/y/z"), NULL));
    CHECK_OK(fti_mkdirs(fti_test_tmp("x/y/z"), NULL));
    CHECK(fti_path_is_dir(fti_test_tmp("x/y/z")));
    REQUIRE(fti_test_write_file(fti_test_tmp("x/b.txt"), "bb", 2) == 0);
    REQUIRE(fti_test_write_file(fti_test_tmp("x/a.md"), "a", 1) == 0);
    REQUIRE(fti_test_write_file(fti_test_tmp("x/y/z/c.json"), "ccc", 3) == 0);
    REQUIRE(fti_test_write_file(fti_test_tmp("x/.hidden"), "h", 1) == 0);
    CHECK(fti_mkdirs(fti_test_tmp("x/b.txt/q"), NULL) != FTI_OK);
    CHECK_OK(fti_walk(fti_test_tmp("x"), collect, &b, NULL));
    CHECK_EQ_STR(b.data, "a.md:1\nb.txt:2\nc.json:3\n");
    fti_buf_free(&b);
    j = fti_path_join("a/", "/b");
    CHECK_EQ_STR(j, "a/b");
    fti_free(j);
    CHECK_EQ_STR(fti_path_ext("dir.d/file.tar.gz"), "gz");
    CHECK_EQ_STR(fti_path_ext("dir.d/README"), "");
    CHECK_EQ_STR(fti_path_ext(".bashrc"), "");
    CHECK_EQ_STR(fti_path_base("a/b/c.txt"), "c.txt");
    CHECK(fti_walk(fti_test_tmp("nope"), collect, &b, NULL) == FTI_ERR_NOT_FOUND);
    /* a linked root is followed (a linked folder of notes), links inside the tree are not */
    {
        char to[1024];
        snprintf(to, sizeof to, "%s", fti_test_tmp("x"));
        REQUIRE(symlink(to, fti_test_tmp("lx")) == 0);
        REQUIRE(symlink(to, fti_test_tmp("x/y/loop")) == 0);
        snprintf(to, sizeof to, "%s", fti_test_tmp("x/b.txt"));
        REQUIRE(symlink(to, fti_test_tmp("lb.txt")) == 0);
        b.len = 0;
        CHECK_OK(fti_walk(fti_test_tmp("lx"), collect, &b, NULL));
        fti_buf_putc(&b, 0);
        CHECK_EQ_STR(b.data, "a.md:1\nb.txt:2\nc.json:3\n");
        b.len = 0;
        CHECK_OK(fti_walk(fti_test_tmp("lb.txt"), collect, &b, NULL));
        fti_buf_putc(&b, 0);
        CHECK_EQ_STR(b.data, "lb.txt:2\n");
        fti_buf_free(&b);
    }
    CHECK_EQ_INT(fti_test_alloc_live, 0);
}

FTI_TEST(base_rng) {
    fti_rng a, b;
    double sum = 0, sum2 = 0;
    int i, hist[10] = {0};
    fti_rng_seed(&a, 123, 7);
    fti_rng_seed(&b, 123, 7);
    for (i = 0; i < 100; i++) CHECK(fti_rng_u32(&a) == fti_rng_u32(&b));
    fti_rng_seed(&b, 124, 7);
    CHECK(fti_rng_u64(&a) != fti_rng_u64(&b));
    for (i = 0; i < 100000; i++) {
        float x = fti_rng_normal(&a);
        float u = fti_rng_float(&a);
        CHECK(u >= 0.0f && u < 1.0f);
        sum += x;
        sum2 += (double)x * x;
        hist[fti_rng_below(&a, 10)]++;
    }
    CHECK(fabs(sum / 100000) < 0.02);
    CHECK(fabs(sum2 / 100000 - 1.0) < 0.03);
    for (i = 0; i < 10; i++) CHECK(hist[i] > 9500 && hist[i] < 10500);
}

FTI_TEST(base_time_and_env) {
    uint64_t t0 = fti_time_ns(), t1 = fti_time_ns();
    char iso[32];
    CHECK(t1 >= t0);
    fti_time_iso8601(0, iso);
    CHECK_EQ_STR(iso, "1970-01-01T00:00:00Z");
    fti_time_iso8601(951782400.0 + 86399, iso); /* 2000-02-29 23:59:59 */
    CHECK_EQ_STR(iso, "2000-02-29T23:59:59Z");
    fti_time_iso8601(1795651200.0, iso);
    CHECK_EQ_STR(iso, "2026-11-26T00:00:00Z");
    /* out of range (a damaged log's time): clamped, not an int64 overflow (UBSan) */
    fti_time_iso8601(1e300, iso);
    CHECK_EQ_STR(iso, "9999-12-31T23:59:59Z");
    fti_time_iso8601(-1e20, iso);
    CHECK_EQ_STR(iso, "0000-01-01T00:00:00Z");
    fti_time_iso8601(NAN, iso);
    CHECK_EQ_STR(iso, "1970-01-01T00:00:00Z");
    fti_time_iso8601(-1.0, iso);
    CHECK_EQ_STR(iso, "1969-12-31T23:59:59Z");
    CHECK(fti_cpu_count() >= 1);
    CHECK(fti_env_long("FTI_SURELY_UNSET_VARIABLE", 17) == 17);
}

FTI_TEST(base_progress_non_tty) {
    const char *p = fti_test_tmp("progress.txt");
    FILE *f = fopen(p, "w");
    fti_progress pr;
    void *data;
    size_t len;
    int i;
    REQUIRE(f != NULL);
    fti_progress_begin(&pr, f, "ingest", "docs", 100);
    for (i = 0; i <= 100; i++) fti_progress_update(&pr, (uint64_t)i, NULL);
    fti_progress_end(&pr, "done");
    fclose(f);
    CHECK_OK(fti_file_read(p, 0, &data, &len, NULL));
    /* not a terminal: exactly one summary line */
    CHECK(strncmp((char *)data, "ingest [", 8) == 0);
    CHECK(strchr((char *)data, '\n') == (char *)data + len - 1);
    CHECK(strstr((char *)data, "100/100 docs") != NULL);
    fti_free(data);
}
