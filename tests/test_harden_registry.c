/* test_harden_registry.c: the hardening review of fti_registry_add_file (issue 10,
 * docs/hardening.md): files that are not llama models leave the registry as it was, with an error
 * naming the file; a llama model whose metadata is hostile (quotes, control bytes, invalid UTF-8
 * and NUL in its strings, NaN and infinite losses, a 2^64-1 step count, a parent that looks like a
 * path) is registered with a card that is valid JSON, and the parent is never read as a path;
 * and the allocation fault loop over fti_registry_add_file. */
/* tests-need: !defined(FTI_NO_TRAIN) */
#include <sys/wait.h>
#include <unistd.h>
#include "test_util_state.h"

/* Copies the GGUF file src to dst through the writer, then sets the keys of `edit` (may be
 * NULL). */
typedef fti_result (*hr_edit_fn)(fti_gguf_writer *w);

static int hr_copy(const char *src, const char *dst, hr_edit_fn edit) {
    fti_gguf *g = NULL;
    fti_gguf_writer *w = NULL;
    fti_error err;
    size_t i;
    int ok = 0;
    if (fti_gguf_open(&g, src, NULL, &err) != FTI_OK ||
        fti_gguf_writer_create(&w, 32) != FTI_OK)
        goto done;
    for (i = 0; i < fti_gguf_n_kv(g); i++)
        if (fti_gguf_set_kv_from(w, g, fti_gguf_kv_at(g, i)) != FTI_OK) goto done;
    for (i = 0; i < fti_gguf_n_tensors(g); i++) {
        const fti_gguf_tensor *t = fti_gguf_tensor_at(g, i);
        if (fti_gguf_add_tensor(w, t->name, t->n_dims, t->ne, t->type, t->data, t->n_bytes) !=
            FTI_OK)
            goto done;
    }
    if (edit && edit(w) != FTI_OK) goto done;
    ok = fti_gguf_writer_write(w, dst, &err) == FTI_OK;
done:
    fti_gguf_writer_free(w);
    fti_gguf_close(g);
    return ok;
}

static fti_result hr_hostile(fti_gguf_writer *w) {
    static const char name[] = "q\"uo\\te\n\x01\x7f bad\xff\xfe utf8 \xe2\x82 nul\0after";
    fti_result r = fti_gguf_set_strn(w, "general.name", name, sizeof name - 1);
    if (r == FTI_OK) r = fti_gguf_set_str(w, "fti.base_model.sha256", "../../../../etc/passwd");
    if (r == FTI_OK) r = fti_gguf_set_strn(w, "fti.dataset.version", "\0\0\0", 3);
    if (r == FTI_OK) r = fti_gguf_set_str(w, "fti.tokenizer.sha256", "</script><b>");
    if (r == FTI_OK) r = fti_gguf_set_str(w, "fti.created", "");
    if (r == FTI_OK) r = fti_gguf_set_u64(w, "fti.train.steps", (uint64_t)-1);
    if (r == FTI_OK) r = fti_gguf_set_u64(w, "fti.train.tokens", (uint64_t)1 << 63);
    if (r == FTI_OK) r = fti_gguf_set_f32(w, "fti.train.loss", (float)NAN);
    if (r == FTI_OK) r = fti_gguf_set_f32(w, "fti.train.val_loss", (float)INFINITY);
    return r;
}

static fti_result hr_wrong_types(fti_gguf_writer *w) {
    /* the lineage keys with types other than the ones the card reads */
    fti_result r = fti_gguf_set_u32(w, "general.name", 7);
    if (r == FTI_OK) r = fti_gguf_set_f32(w, "fti.base_model.sha256", 1.5f);
    if (r == FTI_OK) r = fti_gguf_set_str(w, "fti.train.steps", "many");
    if (r == FTI_OK) r = fti_gguf_set_str(w, "fti.train.loss", "low");
    if (r == FTI_OK) r = fti_gguf_set_f32(w, "fti.train.val_loss", -3.0f);
    return r;
}

static fti_result hr_not_llama(fti_gguf_writer *w) {
    return fti_gguf_set_str(w, "general.architecture", "gpt2");
}

FTI_TEST(harden_registry_add_hostile) {
    fti_test_model_opts mo;
    const char *model;
    char id[17], path[512], src[512], home[512];
    fti_error err;
    fti_buf card, bytes;
    size_t k;
    memset(&mo, 0, sizeof mo);
    mo.seed = 2;
    model = fti_test_model("m.gguf", &mo, NULL, NULL);
    REQUIRE(model);
    snprintf(src, sizeof src, "%s", model);
    snprintf(home, sizeof home, "%s", fti_test_tmp("home")); /* (its buffer is reused) */
    REQUIRE(fti_mkdirs(home, &err) == FTI_OK);
    memset(&card, 0, sizeof card);
    memset(&bytes, 0, sizeof bytes);
    {
        void *data = NULL;
        size_t len = 0;
        REQUIRE(fti_file_read(src, (size_t)1 << 26, &data, &len, &err) == FTI_OK);
        fti_buf_append(&bytes, data, len);
        fti_free(data);
    }

    /* files that are not llama models: nothing registered, an error naming the file */
    {
        static const size_t cuts[] = {0, 3, 4, 24, 100, 1000};
        for (k = 0; k < sizeof cuts / sizeof cuts[0] + 3; k++) {
            fti_result r;
            snprintf(path, sizeof path, "%s", fti_test_tmp("bad.gguf"));
            if (k < sizeof cuts / sizeof cuts[0]) { /* truncated copies */
                REQUIRE(fti_test_write_file(path, bytes.data, cuts[k]) == 0);
            } else if (k == sizeof cuts / sizeof cuts[0]) { /* the last byte gone */
                REQUIRE(fti_test_write_file(path, bytes.data, bytes.len - 1) == 0);
            } else if (k == sizeof cuts / sizeof cuts[0] + 1) {
                REQUIRE(fti_test_write_file(path, "{\"not\": \"gguf\"}\n", 16) == 0);
            } else {
                REQUIRE(hr_copy(src, path, hr_not_llama));
            }
            r = fti_registry_add_file(home, path, NULL, id, &err);
            CHECK(r != FTI_OK);
            CHECK(strstr(err.msg, "bad.gguf") != NULL);
            if (r == FTI_OK || !strstr(err.msg, "bad.gguf"))
                fprintf(stderr, "    case %lu: %s\n", (unsigned long)k, err.msg);
            CHECK_EQ_INT(tu_registry_models(home), 0);
        }
        CHECK(fti_registry_add_file(home, fti_test_tmp("missing.gguf"), NULL, id, &err) != FTI_OK);
        CHECK(fti_registry_add_file(home, fti_test_tmp("home"), NULL, id, &err) != FTI_OK);
        CHECK_EQ_INT(tu_registry_models(home), 0);
    }

    /* hostile metadata: registered, the card parses, the values are what the file holds */
    {
        fti_json_doc *doc = NULL;
        const fti_json *c;
        char pid[17];
        snprintf(path, sizeof path, "%s", fti_test_tmp("hostile.gguf"));
        REQUIRE(hr_copy(src, path, hr_hostile));
        CHECK_OK(fti_registry_add_file(home, path, NULL, id, &err));
        CHECK_EQ_INT(tu_registry_models(home), 1);
        card.len = 0;
        CHECK_OK(fti_registry_card(home, id, &card, &err));
        CHECK(fti_json_parse(card.data, card.len, NULL, &doc, NULL, &err) == FTI_OK);
        if (doc) {
            c = fti_json_root(doc);
            CHECK(strncmp(fti_json_get_str(c, "name", ""), "q\"uo\\te\n\x01\x7f bad", 14) == 0);
            /* the parent is kept as text (cut to an id's length) and never resolves */
            CHECK_EQ_STR(fti_json_get_str(c, "parent", ""), "../../../../etc/");
            CHECK(fti_registry_resolve(home, fti_json_get_str(c, "parent", ""), pid, &err) !=
                  FTI_OK);
            CHECK_EQ_STR(fti_json_get_str(c, "tokenizer", ""), "</script><b>");
            CHECK_EQ_INT(fti_json_get_int(c, "tokens", 0), INT64_MIN); /* 2^63 as int64 */
            CHECK(fti_json_get(c, "val_loss") == NULL); /* infinite: left out */
            CHECK(fti_json_get(c, "train_loss") != NULL &&
                  fti_json_get(c, "train_loss")->type == FTI_JSON_NULL); /* NaN: null */
        }
        fti_json_free(doc);
        doc = NULL;
        /* the same keys with other types: read as absent */
        snprintf(path, sizeof path, "%s", fti_test_tmp("types.gguf"));
        REQUIRE(hr_copy(src, path, hr_wrong_types));
        CHECK_OK(fti_registry_add_file(home, path, NULL, id, &err));
        card.len = 0;
        CHECK_OK(fti_registry_card(home, id, &card, &err));
        CHECK(fti_json_parse(card.data, card.len, NULL, &doc, NULL, &err) == FTI_OK);
        if (doc) {
            c = fti_json_root(doc);
            CHECK_EQ_STR(fti_json_get_str(c, "name", ""), "types");
            CHECK(fti_json_get(c, "parent") && fti_json_get(c, "parent")->type == FTI_JSON_NULL);
            CHECK(fti_json_get(c, "steps") == NULL);
            CHECK(fti_json_get(c, "val_loss") == NULL);
        }
        fti_json_free(doc);
        /* options: a parent that does not resolve is an error and registers nothing more */
        {
            fti_registry_add_opts o;
            size_t before = tu_registry_models(home);
            memset(&o, 0, sizeof o);
            o.parent = "../x";
            CHECK(fti_registry_add_file(home, src, &o, id, &err) == FTI_ERR_NOT_FOUND);
            o.parent = "";
            CHECK(fti_registry_add_file(home, src, &o, id, &err) != FTI_OK);
            CHECK_EQ_INT(tu_registry_models(home), before);
            o.parent = NULL;
            /* a name is one line of text (it was written with its newline into the listing):
             * refused before anything is written; quotes are JSON-escaped */
            o.name = "a \"quoted\" name\n";
            CHECK(fti_registry_add_file(home, src, &o, id, &err) == FTI_ERR_INVALID);
            CHECK(strstr(err.msg, "bad model name") != NULL);
            CHECK_EQ_INT(tu_registry_models(home), before);
            o.name = "a \"quoted\" name";
            CHECK_OK(fti_registry_add_file(home, src, &o, id, &err));
            card.len = 0;
            CHECK_OK(fti_registry_card(home, id, &card, &err));
            doc = NULL;
            CHECK(fti_json_parse(card.data, card.len, NULL, &doc, NULL, &err) == FTI_OK);
            if (doc) CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "name", ""), o.name);
            fti_json_free(doc);
            CHECK(fti_registry_add_file(NULL, src, &o, id, &err) == FTI_ERR_INVALID);
            CHECK(fti_registry_add_file(home, NULL, &o, id, &err) == FTI_ERR_INVALID);
            CHECK(fti_registry_add_file(home, src, &o, NULL, &err) == FTI_ERR_INVALID);
        }
    }
    fti_buf_free(&card);
    fti_buf_free(&bytes);
}

FTI_TEST(harden_fault_registry_add_file) {
    /* The allocation fault loop (tests/test_fault.c's method) over fti_registry_add_file: count
     * its allocations A, fail the k-th once and persistently for every k <= A: an error with a
     * message, nothing left allocated, the registry lists what it listed before (or the model,
     * when the failed allocation was optional), and the call succeeds afterwards */
    fti_test_model_opts mo;
    const char *model;
    char src[512], id[17], id0[17], home[512];
    fti_error err;
    long A, k, stride;
    int persistent, n_fail = 0, n_runs = 0, fds;
    memset(&mo, 0, sizeof mo);
    mo.seed = 4;
    model = fti_test_model("f.gguf", &mo, NULL, NULL);
    REQUIRE(model);
    snprintf(src, sizeof src, "%s", model);
    /* on tmpfs when there is one (the loop tests the error paths, not the disk's fsync) */
    if (access("/dev/shm", W_OK) == 0)
        snprintf(home, sizeof home, "/dev/shm/fti-harden-reg-%ld", (long)getpid());
    else
        snprintf(home, sizeof home, "%s", fti_test_tmp("fhome"));
    REQUIRE(fti_mkdirs(home, &err) == FTI_OK);
    stride = fti_env_long("FTI_FAULT_FULL", 0) ? 1 : fti_env_long("FTI_FAULT_STRIDE", 0);
    fti_test_alloc_fail_at(0, 0);
    CHECK_OK(fti_registry_add_file(home, src, NULL, id0, &err));
    A = fti_test_alloc_count;
    REQUIRE(A > 0);
    if (stride < 1) stride = A / 20 + 1; /* about 20 values of k, each once and persistently */
    fds = tu_fd_count();
    for (persistent = 0; persistent < 2; persistent++)
        for (k = 1 + persistent; k <= A; k += stride) {
            long live = fti_test_alloc_live;
            fti_result r;
            char home2[600];
            snprintf(home2, sizeof home2, "%s/h%d-%ld", home, persistent, k);
            REQUIRE(fti_mkdirs(home2, &err) == FTI_OK);
            fti_error_clear(&err);
            fti_test_alloc_fail_at(k, persistent);
            r = fti_registry_add_file(home2, src, NULL, id, &err);
            fti_test_alloc_fail_at(0, 0);
            n_runs++;
            CHECK_EQ_INT(fti_test_alloc_live, live);
            if (r != FTI_OK) {
                n_fail++;
                CHECK(err.msg[0] != 0);
                if (!err.msg[0])
                    fprintf(stderr, "    k %ld (%s): %s without a message\n", k,
                            persistent ? "persistent" : "once", fti_result_str(r));
                CHECK(tu_registry_models(home2) == 0 || tu_registry_models(home2) == 1);
            } else { /* an optional allocation: the whole card all the same */
                fti_buf cb;
                fti_json_doc *doc = NULL;
                CHECK_EQ_STR(id, id0);
                CHECK_EQ_INT(tu_registry_models(home2), 1);
                memset(&cb, 0, sizeof cb);
                CHECK_OK(fti_registry_card(home2, id, &cb, &err));
                CHECK(fti_json_parse(cb.data, cb.len, NULL, &doc, NULL, &err) == FTI_OK);
                if (doc) {
                    const fti_json *c = fti_json_root(doc);
                    CHECK_EQ_STR(fti_json_get_str(c, "weight_type", ""), "F32");
                    CHECK_EQ_STR(fti_json_get_str(c, "origin", ""), "added");
                    CHECK_EQ_INT(fti_json_get_int(fti_json_get(c, "config"), "dim", 0), 64);
                    CHECK(fti_json_get(c, "parent") != NULL);
                }
                fti_json_free(doc);
                fti_buf_free(&cb);
            }
            CHECK_EQ_INT(tu_fd_count(), fds);
            CHECK_OK(fti_registry_add_file(home2, src, NULL, id, &err));
            CHECK_EQ_STR(id, id0);
            CHECK_EQ_INT(tu_registry_models(home2), 1);
        }
    printf("    registry add file: %ld allocations, %d faulty runs, %d failed cleanly\n", A,
           n_runs, n_fail);
    if (strncmp(home, "/dev/shm/", 9) == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
        if (system(cmd) != 0) fprintf(stderr, "    warning: could not remove %s\n", home);
    }
}

FTI_TEST(harden_quantize_odd_shapes) {
    /* fti-quantize on tensors of odd shapes and types: vectors keep their type, rows that are
     * not a multiple of 32 stay as they are (with a message), 3-D and 4-D tensors, a Q4_0 source
     * re-encoded as Q8_0; every output value within the target's rounding of the input. A file
     * that is not GGUF, or cut short, fails with status 1 (no signal). */
    static const struct {
        const char *name;
        uint32_t n_dims, type, out_type;
        uint64_t ne[4];
    } ts[] = {{"vec", 1, FTI_GGML_F32, FTI_GGML_F32, {5, 1, 1, 1}},
              {"odd_rows", 2, FTI_GGML_F32, FTI_GGML_F32, {33, 3, 1, 1}},
              {"one", 2, FTI_GGML_F16, FTI_GGML_F16, {1, 1, 1, 1}},
              {"cube", 3, FTI_GGML_F16, FTI_GGML_Q8_0, {64, 2, 2, 1}},
              {"from_q4", 2, FTI_GGML_Q4_0, FTI_GGML_Q8_0, {32, 3, 1, 1}},
              {"bf", 2, FTI_GGML_BF16, FTI_GGML_Q8_0, {32, 1, 1, 1}},
              {"four", 4, FTI_GGML_F32, FTI_GGML_Q8_0, {32, 1, 1, 2}}};
    const size_t nt = sizeof ts / sizeof ts[0];
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    char in[512], out[512], cmd[1600], prog[512];
    fti_gguf_writer *w = NULL;
    fti_gguf *g = NULL;
    fti_error err;
    size_t i, j;
    float *src[7];
    snprintf(prog, sizeof prog, "%s", "build/fti-quantize");
    if (access(prog, X_OK) != 0) {
        printf("    %s not built: skipped (make all)\n", prog);
        return;
    }
    snprintf(in, sizeof in, "%s", fti_test_tmp("odd.gguf"));
    snprintf(out, sizeof out, "%s", fti_test_tmp("odd8.gguf"));
    REQUIRE(fti_gguf_writer_create(&w, 32) == FTI_OK);
    REQUIRE(fti_gguf_set_str(w, "general.architecture", "llama") == FTI_OK);
    for (i = 0; i < nt; i++) {
        size_t n = (size_t)(ts[i].ne[0] * ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3]);
        size_t rb = fti_ggml_row_bytes(ts[i].type, (size_t)ts[i].ne[0]);
        size_t rows = n / (size_t)ts[i].ne[0];
        unsigned char *data = (unsigned char *)malloc(rb * rows);
        src[i] = (float *)malloc(n * sizeof(float));
        REQUIRE(data && src[i]);
        for (j = 0; j < n; j++) src[i][j] = (float)((int)((j * 37 + i * 11) % 23) - 11) * 0.125f;
        for (j = 0; j < rows; j++) { /* stored in its type; src gets the stored values back */
            float *row = src[i] + j * ts[i].ne[0];
            fti_quantize_row(k, (fti_dtype)ts[i].type, data + j * rb, row, (size_t)ts[i].ne[0]);
            fti_dequantize_row(k, (fti_dtype)ts[i].type, row, data + j * rb, (size_t)ts[i].ne[0]);
        }
        REQUIRE(fti_gguf_add_tensor_owned(w, ts[i].name, ts[i].n_dims, ts[i].ne, ts[i].type,
                                          data, rb * rows) == FTI_OK);
    }
    REQUIRE(fti_gguf_writer_write(w, in, &err) == FTI_OK);
    fti_gguf_writer_free(w);
    snprintf(cmd, sizeof cmd, "%s '%s' '%s' q8_0 2>/dev/null", prog, in, out);
    CHECK(system(cmd) == 0);
    REQUIRE(fti_gguf_open(&g, out, NULL, &err) == FTI_OK);
    for (i = 0; i < nt; i++) {
        const fti_gguf_tensor *t = fti_gguf_find_tensor(g, ts[i].name);
        size_t n = (size_t)(ts[i].ne[0] * ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3]), c;
        float *back = (float *)malloc(n * sizeof(float));
        REQUIRE(t && back);
        CHECK_EQ_INT(t->type, ts[i].out_type);
        CHECK_EQ_INT(t->n_dims, ts[i].n_dims);
        CHECK_EQ_INT(t->n_elements, n);
        c = (size_t)ts[i].ne[0];
        for (j = 0; j < n / c; j++)
            fti_dequantize_row(k, (fti_dtype)t->type, back + j * c,
                               (const char *)t->data + j * fti_ggml_row_bytes(t->type, c), c);
        for (j = 0; j < n; j++) /* Q8_0: half a step of 1.375/127 */
            CHECK_NEAR(back[j], src[i][j], 0.0125, 0);
        free(back);
        free(src[i]);
    }
    {
        uint32_t ft = 0;
        CHECK_OK(fti_gguf_get_u32(g, "general.file_type", &ft, &err));
        CHECK_EQ_INT(ft, 7); /* llama.cpp's MOSTLY_Q8_0 */
    }
    fti_gguf_close(g);
    /* no matrix can be Q4_0 (rows of 33): the file's type stays the input's (none here) */
    REQUIRE(fti_gguf_writer_create(&w, 32) == FTI_OK);
    REQUIRE(fti_gguf_set_str(w, "general.architecture", "llama") == FTI_OK);
    REQUIRE(fti_gguf_set_u32(w, "general.file_type", 0) == FTI_OK); /* ALL_F32 */
    {
        static const float z[33 * 2] = {0};
        const uint64_t ne[4] = {33, 2, 1, 1};
        REQUIRE(fti_gguf_add_tensor(w, "odd_rows", 2, ne, FTI_GGML_F32, z, sizeof z) == FTI_OK);
    }
    REQUIRE(fti_gguf_writer_write(w, in, &err) == FTI_OK);
    fti_gguf_writer_free(w);
    snprintf(cmd, sizeof cmd, "%s '%s' '%s' q4_0 2>&1", prog, in, out);
    {
        FILE *pf = popen(cmd, "r");
        char said[1024];
        size_t got = pf ? fread(said, 1, sizeof said - 1, pf) : 0;
        said[got] = 0;
        CHECK(pf && pclose(pf) == 0);
        CHECK(strstr(said, "no matrix of") && strstr(said, "keeps the input's types"));
    }
    REQUIRE(fti_gguf_open(&g, out, NULL, &err) == FTI_OK);
    {
        uint32_t ft = 99;
        CHECK_OK(fti_gguf_get_u32(g, "general.file_type", &ft, &err));
        CHECK_EQ_INT(ft, 0);
    }
    CHECK(fti_gguf_find(g, "general.quantization_version") == NULL);
    fti_gguf_close(g);
    /* hostile inputs: a status, not a signal */
    {
        static const char junk[] = "GGUF\x03\0\0\0\xff\xff\xff\xff\xff\xff\xff\x7f";
        int st;
        REQUIRE(fti_test_write_file(in, junk, sizeof junk - 1) == 0);
        st = system(cmd);
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1);
        snprintf(cmd, sizeof cmd, "%s '%s' '%s' q3 2>/dev/null", prog, in, out);
        st = system(cmd);
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
    }
}
