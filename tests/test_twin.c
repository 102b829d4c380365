/* test_twin.c: the training driver (07_train_run.c) that fti-train and fti-twin are built on:
 * reproducible model ids (same seed, data, options: same GGUF bytes and id, for any thread
 * count), LoRA adapters registered on their own with the base as parent, merging an adapter
 * into its base, keep_best, and the driver's errors. Uses a small dataset ingested from the
 * shipped corpus with a 300-token vocabulary; and fti-twin update when nothing changed. */
#include <sys/wait.h>

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* Ingests the corpus into a fresh workspace under the test's temp dir; 0 if it is missing. */
static int fti_ttw_workspace(char *home, size_t n, const char *name) {
    const char *paths[1];
    char version[65];
    fti_ingest_opts io;
    fti_error err;
    snprintf(home, n, "%s", fti_test_tmp(name));
    paths[0] = fti_test_data("corpus/bierce_devils_dictionary/devils_dictionary.jsonl");
    if (!fti_path_exists(paths[0])) {
        fprintf(stderr, "    (%s missing: skipped)\n", paths[0]);
        return 0;
    }
    memset(&io, 0, sizeof(io));
    io.vocab_size = 300;
    io.n_threads = 1;
    if (fti_store_ingest(home, paths, 1, &io, version, NULL, &err) != FTI_OK) {
        fprintf(stderr, "    ingest: %s\n", err.msg);
        return 0;
    }
    return 1;
}

static fti_train_run_opts fti_ttw_opts(int threads) {
    fti_train_run_opts ro;
    memset(&ro, 0, sizeof(ro));
    ro.preset = "tiny";
    ro.config.context_len = 32;
    ro.train.batch = 2;
    ro.train.max_steps = 6;
    ro.train.eval_every = 3;
    ro.train.eval_windows = 4;
    ro.train.seed = 5;
    ro.train.n_threads = threads;
    return ro;
}

/* The card of id, parsed (caller frees). */
static fti_json_doc *fti_ttw_card(const char *home, const char *id) {
    fti_buf b;
    fti_json_doc *doc = NULL;
    memset(&b, 0, sizeof(b));
    if (fti_registry_card(home, id, &b, NULL) == FTI_OK)
        (void)fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL);
    fti_buf_free(&b);
    return doc;
}

/* The f32 weights of a registered model (caller frees), and its config. */
static float *fti_ttw_weights(const char *home, const char *id, fti_model_config *cfg) {
    fti_json_doc *doc = fti_ttw_card(home, id);
    fti_gguf *g = NULL;
    float *p = NULL;
    if (doc && fti_gguf_open(&g, fti_json_get_str(fti_json_root(doc), "path", ""), NULL, NULL) ==
                   FTI_OK &&
        fti_gguf_llama_config(g, cfg, 1, NULL) == FTI_OK) {
        p = (float *)fti_malloc(fti_model_n_params(cfg) * sizeof(float));
        if (p && fti_gguf_llama_params(g, cfg, p, NULL) != FTI_OK) {
            fti_free(p);
            p = NULL;
        }
    }
    fti_gguf_close(g);
    fti_json_free(doc);
    return p;
}
#endif

FTI_TEST(twin_train_run_reproducible_ids) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], home2[1024], id1[17], path1[1200], path2[1200];
    fti_train_run_opts ro;
    fti_train_run_result r1, r2, r3;
    fti_error err;
    fti_gguf *g = NULL;
    unsigned char d1[32], d2[32];
    if (!fti_ttw_workspace(home, sizeof home, "ws") ||
        !fti_ttw_workspace(home2, sizeof home2, "ws2"))
        return;
    ro = fti_ttw_opts(1);
    REQUIRE(fti_train_run(home, &ro, &r1, &err) == FTI_OK);
    CHECK_EQ_INT(strlen(r1.id), 16);
    CHECK_EQ_INT(r1.stats.step, 6);
    CHECK(r1.parent_id[0] == 0 && r1.adapter_id[0] == 0);
    CHECK_EQ_INT(r1.stats.tokens_seen, 6 * 2 * 32);
    snprintf(id1, sizeof id1, "%s", r1.id);
    /* another workspace, two threads: the same bytes, so the same id */
    ro = fti_ttw_opts(2);
    REQUIRE(fti_train_run(home2, &ro, &r2, &err) == FTI_OK);
    CHECK_EQ_STR(r2.id, id1);
    CHECK_EQ_STR(r2.dataset, r1.dataset);
    snprintf(path1, sizeof path1, "%s/models/%s/model.gguf", home, id1);
    snprintf(path2, sizeof path2, "%s/models/%s/model.gguf", home2, r2.id);
    CHECK_OK(fti_sha256_file(path1, d1, &err));
    CHECK_OK(fti_sha256_file(path2, d2, &err));
    CHECK(memcmp(d1, d2, 32) == 0);
    /* no creation time in the file; the card has it */
    REQUIRE(fti_gguf_open(&g, path1, NULL, &err) == FTI_OK);
    CHECK(fti_gguf_find(g, "fti.created") == NULL);
    CHECK(fti_gguf_find(g, "fti.dataset.version") != NULL);
    fti_gguf_close(g);
    {
        fti_json_doc *doc = fti_ttw_card(home, id1);
        REQUIRE(doc != NULL);
        CHECK_EQ_INT(strlen(fti_json_get_str(fti_json_root(doc), "created", "")), 20);
        CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "type", ""), "model");
        fti_json_free(doc);
    }
    /* resume of the finished run: nothing left to do, the same model again */
    ro = fti_ttw_opts(1);
    ro.resume = 1;
    REQUIRE(fti_train_run(home, &ro, &r3, &err) == FTI_OK);
    CHECK(r3.resumed);
    CHECK_EQ_STR(r3.id, id1);
    CHECK_EQ_STR(r3.run_key, r1.run_key);
    /* stamp_created puts the time in the file: another file, another id */
    ro = fti_ttw_opts(1);
    ro.stamp_created = 1;
    REQUIRE(fti_train_run(home, &ro, &r3, &err) == FTI_OK);
    CHECK(strcmp(r3.id, id1) != 0);
    snprintf(path1, sizeof path1, "%s/models/%s/model.gguf", home, r3.id);
    REQUIRE(fti_gguf_open(&g, path1, NULL, &err) == FTI_OK);
    CHECK(fti_gguf_find(g, "fti.created") != NULL);
    fti_gguf_close(g);
    /* another seed, another model */
    ro = fti_ttw_opts(1);
    ro.train.seed = 6;
    REQUIRE(fti_train_run(home, &ro, &r3, &err) == FTI_OK);
    CHECK(strcmp(r3.id, id1) != 0);
#endif
}

FTI_TEST(twin_train_run_lora_registered) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], base[17], merged2[17];
    fti_train_run_opts ro;
    fti_train_run_result rb, rl;
    fti_error err;
    fti_json_doc *doc;
    fti_model_config c1, c2;
    float *w1, *w2, *wb;
    size_t i, n, n_diff = 0, n_same_as_base = 0;
    if (!fti_ttw_workspace(home, sizeof home, "ws")) return;
    ro = fti_ttw_opts(1);
    REQUIRE(fti_train_run(home, &ro, &rb, &err) == FTI_OK);
    snprintf(base, sizeof base, "%s", rb.id);
    memset(&ro, 0, sizeof(ro));
    ro.from = base;
    ro.train.batch = 2;
    ro.train.max_steps = 4;
    ro.train.lr = 1e-2f;
    ro.train.lora_rank = 2;
    ro.train.seed = 3;
    ro.train.n_threads = 1;
    REQUIRE(fti_train_run(home, &ro, &rl, &err) == FTI_OK);
    CHECK_EQ_STR(rl.parent_id, base);
    REQUIRE(strlen(rl.adapter_id) == 16);
    CHECK(strcmp(rl.adapter_id, rl.id) != 0);
    /* the adapter's card: type, parent = the base, the adapter file's SHA-256 */
    doc = fti_ttw_card(home, rl.adapter_id);
    REQUIRE(doc != NULL);
    {
        const fti_json *c = fti_json_root(doc);
        unsigned char d[32];
        char hex[65];
        fti_gguf *g = NULL;
        const char *s = NULL;
        size_t sl = 0;
        CHECK_EQ_STR(fti_json_get_str(c, "type", ""), "lora_adapter");
        CHECK_EQ_STR(fti_json_get_str(c, "parent", ""), base);
        CHECK_EQ_INT(fti_json_get_int(c, "lora_rank", 0), 2);
        REQUIRE(fti_sha256_file(fti_json_get_str(c, "path", ""), d, &err) == FTI_OK);
        fti_sha256_hex(d, hex);
        CHECK_EQ_STR(fti_json_get_str(c, "sha256", ""), hex);
        REQUIRE(fti_gguf_open(&g, fti_json_get_str(c, "path", ""), NULL, &err) == FTI_OK);
        CHECK(fti_gguf_get_str(g, "general.type", &s, &sl, NULL) == FTI_OK && sl == 7 &&
              memcmp(s, "adapter", 7) == 0);
        CHECK(fti_gguf_find(g, "adapter.lora.alpha") != NULL);
        fti_gguf_close(g);
    }
    fti_json_free(doc);
    /* the merged model: parent = the adapter, base_model = the base */
    doc = fti_ttw_card(home, rl.id);
    REQUIRE(doc != NULL);
    CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "type", ""), "lora_merged");
    CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "parent", ""), rl.adapter_id);
    CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "base_model", ""), base);
    fti_json_free(doc);
    /* an adapter cannot be fine-tuned directly */
    ro.from = rl.adapter_id;
    CHECK(fti_train_run(home, &ro, NULL, &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "adapter") != NULL);
    /* merging the registered adapter into its base gives the trainer's merged weights */
    REQUIRE(fti_train_merge_adapter(home, rl.adapter_id, NULL, merged2, &err) == FTI_OK);
    doc = fti_ttw_card(home, merged2);
    REQUIRE(doc != NULL);
    CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "parent", ""), rl.adapter_id);
    fti_json_free(doc);
    w1 = fti_ttw_weights(home, rl.id, &c1);
    w2 = fti_ttw_weights(home, merged2, &c2);
    wb = fti_ttw_weights(home, base, &c2);
    REQUIRE(w1 && w2 && wb);
    n = fti_model_n_params(&c1);
    for (i = 0; i < n; i++) {
        if (memcmp(&w1[i], &w2[i], 4) != 0) n_diff++;
        if (memcmp(&w1[i], &wb[i], 4) == 0) n_same_as_base++;
    }
    CHECK_EQ_INT(n_diff, 0);
    CHECK(n_same_as_base < n); /* the adapter changed something */
    fti_free(w1);
    fti_free(w2);
    fti_free(wb);
    /* merging something that is not an adapter */
    CHECK(fti_train_merge_adapter(home, base, NULL, merged2, &err) == FTI_ERR_INVALID);
#endif
}

FTI_TEST(twin_train_run_keep_best_and_errors) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024];
    fti_train_run_opts ro;
    fti_train_run_result r;
    fti_error err;
    fti_json_doc *doc;
    if (!fti_ttw_workspace(home, sizeof home, "ws")) return;
    /* a learning rate far too high: the last step is worse than the best pass */
    ro = fti_ttw_opts(1);
    ro.keep_best = 1;
    ro.train.max_steps = 8;
    ro.train.eval_every = 2;
    ro.train.lr = 0.05f;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    doc = fti_ttw_card(home, r.id);
    REQUIRE(doc != NULL);
    if (r.used_best)
        CHECK_NEAR(fti_json_get_num(fti_json_root(doc), "val_loss", 0), r.stats.best_val_loss,
                   1e-9, 1e-9);
    else
        CHECK(!(r.stats.best_val_loss < r.stats.val_loss));
    fti_json_free(doc);
    ro = fti_ttw_opts(1);
    ro.preset = "nope";
    CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "nope") != NULL);
    ro = fti_ttw_opts(1);
    ro.train.lora_rank = 2;
    CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_INVALID);
    ro = fti_ttw_opts(1);
    ro.dataset = "no-such-version";
    CHECK(fti_train_run(home, &ro, &r, &err) != FTI_OK);
    CHECK(r.dataset[0] == 0);
    ro = fti_ttw_opts(1);
    ro.from = "0123456789abcdef";
    CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_NOT_FOUND);
    CHECK(fti_train_run(NULL, &ro, &r, &err) == FTI_ERR_INVALID);
#endif
}

/* fti-twin update, the quick path: a production model exists and the data did not change, so the
 * update ingests in-process (with the production model's tokenizer) and stops; a second update
 * while the lock is held would exit 3 (not tested: needs two processes). */
FTI_TEST(twin_update_unchanged) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], cmd[4096], out[1024];
    fti_train_run_opts ro;
    fti_train_run_result r;
    fti_error err;
    void *text = NULL;
    size_t len = 0;
    int st;
    if (!fti_path_exists("build/fti-twin")) {
        fprintf(stderr, "    (build/fti-twin not built: skipped)\n");
        return;
    }
    if (!fti_ttw_workspace(home, sizeof home, "ws")) return;
    ro = fti_ttw_opts(1);
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    REQUIRE(fti_registry_promote(home, r.id, "production", &err) == FTI_OK);
    snprintf(out, sizeof out, "%s", fti_test_tmp("twin.out"));
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' update '%s' --threads 1 > '%s' 2>&1",
             home, fti_test_data("corpus/bierce_devils_dictionary/devils_dictionary.jsonl"), out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "did not change") != NULL);
    CHECK(strstr((const char *)text, "1 of 1 input file(s) reused") != NULL);
    CHECK(strstr((const char *)text, r.id) != NULL);
    fti_free(text);
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' status > '%s' 2>&1", home, out);
    CHECK(system(cmd) == 0);
#endif
}
