/* test_fuzz_replay.c: every fuzz target over its committed seed corpus and regression inputs
 * (tests/fuzz/corpus/NAME, tests/fuzz/regress/NAME). A crash or a failed invariant aborts the
 * child, which fails this test. */

typedef struct replay_ctx {
    int (*fn)(const uint8_t *, size_t);
    int n_inputs;
} replay_ctx;

static fti_result replay_one(void *user, const char *path, uint64_t size) {
    replay_ctx *c = (replay_ctx *)user;
    void *data;
    size_t len;
    (void)size;
    if (fti_file_read(path, 64u << 20, &data, &len, NULL) != FTI_OK) return FTI_OK;
    c->fn((const uint8_t *)data, len);
    fti_free(data);
    c->n_inputs++;
    return FTI_OK;
}

FTI_TEST(fuzz_replay) {
    const fti_fuzz_target *t;
    int total = 0;
    for (t = fti_fuzz_target_list(); t->name; t++) {
        static const char *dirs[] = {"tests/fuzz/corpus", "tests/fuzz/regress"};
        size_t d;
        replay_ctx c;
        c.fn = t->fn;
        c.n_inputs = 0;
        for (d = 0; d < 2; d++) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dirs[d], t->name);
            if (fti_path_is_dir(path)) CHECK_OK(fti_walk(path, replay_one, &c, NULL));
        }
        /* plus a few synthetic inputs: empty, all bytes, a long run */
        {
            uint8_t all[256];
            int i;
            for (i = 0; i < 256; i++) all[i] = (uint8_t)i;
            t->fn(all, 0);
            t->fn(all, 256);
            t->fn(all + 128, 128);
        }
        total += c.n_inputs;
    }
    CHECK(total > 0);
}
