/* test_registry_merge.c: the registry's cards of trained models (parts 07): a LoRA adapter's
 * card has its train loss, and `fti-registry merge` (fti_train_merge_adapter) gives the merged
 * model the adapter's training figures, dataset and tokenizer, in its card and in the GGUF's
 * lineage keys (it wrote fti.train.loss 0 and no val_loss or datasets); a copied workspace's
 * cards name the copy's run files. */
/* tests-need: !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE) */

/* A fresh workspace with the shipped corpus ingested (300-token vocabulary); 0 if missing. */
static int rm_workspace(char *home, size_t n, const char *name) {
    const char *paths[1];
    char version[65];
    fti_ingest_opts io;
    fti_error err;
    snprintf(home, n, "%s", fti_test_tmp(name));
    paths[0] = fti_test_corpus_jsonl();
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

/* The card of id, parsed (caller frees), or NULL. */
static fti_json_doc *rm_card(const char *home, const char *id) {
    fti_buf b;
    fti_json_doc *doc = NULL;
    memset(&b, 0, sizeof(b));
    if (fti_registry_card(home, id, &b, NULL) == FTI_OK)
        (void)fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL);
    fti_buf_free(&b);
    return doc;
}

/* The output of a shell command, NUL-terminated, in b; 0 if it failed. */
static int rm_run(const char *cmd, fti_buf *b) {
    FILE *f = popen(cmd, "r");
    char chunk[4096];
    size_t n;
    b->len = 0;
    if (!f) return 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) fti_buf_append(b, chunk, n);
    fti_buf_putc(b, 0);
    return pclose(f) == 0 && !b->oom;
}

FTI_TEST(registry_merge_carries_training) {
    char home[1024], copy[1024], base[17], merged[17], cmd[4096];
    fti_train_run_opts ro;
    fti_train_run_result rb, rl;
    fti_error err;
    fti_json_doc *adoc, *mdoc;
    const fti_json *a, *m;
    fti_buf out;
    if (!rm_workspace(home, sizeof home, "ws")) return;
    memset(&out, 0, sizeof out);
    memset(&ro, 0, sizeof(ro));
    ro.preset = "tiny";
    ro.config.context_len = 32;
    ro.train.batch = 2;
    ro.train.max_steps = 4;
    ro.train.seed = 5;
    ro.train.n_threads = 1;
    REQUIRE(fti_train_run(home, &ro, &rb, &err) == FTI_OK);
    snprintf(base, sizeof base, "%s", rb.id);
    memset(&ro, 0, sizeof(ro));
    ro.from = base;
    ro.train.batch = 2;
    ro.train.max_steps = 4;
    ro.train.eval_every = 2;
    ro.train.eval_windows = 4;
    ro.train.lr = 1e-2f;
    ro.train.lora_rank = 2;
    ro.train.seed = 3;
    ro.train.n_threads = 1;
    REQUIRE(fti_train_run(home, &ro, &rl, &err) == FTI_OK);
    REQUIRE(fti_train_merge_adapter(home, rl.adapter_id, NULL, merged, &err) == FTI_OK);
    adoc = rm_card(home, rl.adapter_id);
    mdoc = rm_card(home, merged);
    REQUIRE(adoc && mdoc);
    a = fti_json_root(adoc);
    m = fti_json_root(mdoc);
    /* the adapter's card has its train loss (it was null: "train loss -") */
    REQUIRE(fti_json_get(a, "train_loss") && fti_json_get(a, "train_loss")->type ==
                                                 FTI_JSON_NUMBER);
    CHECK(fti_json_get_num(a, "train_loss", 0) > 0);
    CHECK(fti_json_get(a, "val_loss") && fti_json_get(a, "val_loss")->type == FTI_JSON_NUMBER);
    /* the merged model's card: the adapter's figures, and both the adapter and the base */
    CHECK_EQ_STR(fti_json_get_str(m, "type", ""), "lora_merged");
    CHECK_EQ_STR(fti_json_get_str(m, "parent", ""), rl.adapter_id);
    CHECK_EQ_STR(fti_json_get_str(m, "adapter_id", ""), rl.adapter_id);
    CHECK_EQ_STR(fti_json_get_str(m, "base_model", ""), base);
    CHECK_NEAR(fti_json_get_num(m, "train_loss", 0), fti_json_get_num(a, "train_loss", 1), 0, 0);
    CHECK_NEAR(fti_json_get_num(m, "val_loss", 0), fti_json_get_num(a, "val_loss", 1), 0, 0);
    CHECK_NEAR(fti_json_get_num(m, "best_val_loss", 0), fti_json_get_num(a, "best_val_loss", 1),
               0, 0);
    CHECK_NEAR(fti_json_get_num(m, "val_perplexity", 0), exp(fti_json_get_num(a, "val_loss", 1)),
               1e-9, 1e-9);
    CHECK_EQ_INT(fti_json_get_int(m, "steps", 0), 4);
    CHECK_EQ_INT(fti_json_get_int(m, "tokens", 0), fti_json_get_int(a, "tokens", 1));
    CHECK(*fti_json_get_str(a, "dataset", ""));
    CHECK_EQ_STR(fti_json_get_str(m, "dataset", ""), fti_json_get_str(a, "dataset", "?"));
    CHECK_EQ_STR(fti_json_get_str(m, "tokenizer", ""), fti_json_get_str(a, "tokenizer", "?"));
    CHECK_EQ_STR(fti_json_get_str(m, "metrics", "x"), fti_json_get_str(a, "metrics", "y"));
    { /* the GGUF's lineage keys: fti.train.loss was 0, val_loss and general.datasets absent */
        fti_gguf *g = NULL;
        float f = 0;
        uint64_t u = 0;
        const fti_gguf_kv *kv;
        REQUIRE(fti_gguf_open(&g, fti_json_get_str(m, "path", ""), NULL, &err) == FTI_OK);
        CHECK(fti_gguf_get_f32(g, "fti.train.loss", &f, NULL) == FTI_OK);
        CHECK_NEAR(f, (float)fti_json_get_num(a, "train_loss", 0), 0, 0);
        CHECK(fti_gguf_get_f32(g, "fti.train.val_loss", &f, NULL) == FTI_OK);
        CHECK_NEAR(f, (float)fti_json_get_num(a, "val_loss", 0), 0, 0);
        CHECK(fti_gguf_get_u64(g, "fti.train.steps", &u, NULL) == FTI_OK && u == 4);
        kv = fti_gguf_find(g, "general.datasets");
        CHECK(kv != NULL);
        fti_gguf_close(g);
    }
    /* the program: the adapter's train loss, the merged model's base and adapter */
    if (fti_path_exists("build/fti-registry")) {
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show %s", home,
                 rl.adapter_id);
        CHECK(rm_run(cmd, &out));
        CHECK(out.data && strstr(out.data, "train loss -") == NULL);
        CHECK(out.data && strstr(out.data, "train loss 0.") == NULL); /* not a made-up 0 */
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show %s", home, merged);
        CHECK(rm_run(cmd, &out));
        CHECK(out.data && strstr(out.data, "train loss -") == NULL);
        CHECK(out.data && strstr(out.data, base) != NULL);
        CHECK(out.data && strstr(out.data, rl.adapter_id) != NULL);
        /* merge records no machine: said so, not "machine     , , 0 threads" */
        CHECK(out.data && strstr(out.data, "machine    (not recorded)\n") != NULL);
        /* merging again names the trainer's merged model of the same adapter */
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' merge %s 2>&1", home,
                 rl.adapter_id);
        CHECK(rm_run(cmd, &out));
        CHECK(out.data && strstr(out.data, "is also merged in model ") != NULL);
        CHECK(out.data && strstr(out.data, rl.id) != NULL);
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show %s", home, rl.id);
        CHECK(rm_run(cmd, &out)); /* the trainer's merged model: its matmuls and kernels */
        CHECK(out.data && strstr(out.data, " matmuls, ") != NULL);
        CHECK(out.data && strstr(out.data, " kernels\n") != NULL);
    }
    fti_json_free(adoc);
    fti_json_free(mdoc);

    /* a copied workspace: the cards name the copy's run files; gc of the copy still sees which
     * run made which model */
    snprintf(copy, sizeof copy, "%s", fti_test_tmp("ws2"));
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", home, copy);
    REQUIRE(system(cmd) == 0);
    mdoc = rm_card(copy, rl.id);
    REQUIRE(mdoc != NULL);
    m = fti_json_root(mdoc);
    {
        char want[1200];
        snprintf(want, sizeof want, "%s/runs/%s", copy, rl.run_key);
        CHECK_EQ_STR(fti_json_get_str(m, "run", ""), want);
        snprintf(want, sizeof want, "%s/runs/%s/metrics.jsonl", copy, rl.run_key);
        CHECK_EQ_STR(fti_json_get_str(m, "metrics", ""), want);
        CHECK(fti_path_exists(want));
        snprintf(want, sizeof want, "%s/runs/%s/loss.svg", copy, rl.run_key);
        CHECK_EQ_STR(fti_json_get_str(m, "loss_curve", ""), want);
        snprintf(want, sizeof want, "%s/runs/%s/adapter.gguf", copy, rl.run_key);
        CHECK_EQ_STR(fti_json_get_str(m, "adapter", ""), want);
    }
    fti_json_free(mdoc);
    {
        fti_workspace_gc_opts go;
        fti_workspace_gc_result gr;
        memset(&go, 0, sizeof go);
        CHECK_OK(fti_workspace_gc(copy, &go, &gr, NULL, &err));
        /* the finished runs lost their checkpoints, kept their logs */
        snprintf(cmd, sizeof cmd, "%s/runs/%s/metrics.jsonl", copy, rl.run_key);
        CHECK(fti_path_exists(cmd));
        snprintf(cmd, sizeof cmd, "%s/runs/%s/checkpoint.bin", copy, rl.run_key);
        CHECK(!fti_path_exists(cmd));
        snprintf(cmd, sizeof cmd, "%s/runs/%s/checkpoint.bin", home, rl.run_key);
        CHECK(fti_path_exists(cmd)); /* the original is untouched */
    }
    if (fti_path_exists("build/fti-registry")) {
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show %s", copy, rl.id);
        CHECK(rm_run(cmd, &out));
        CHECK(out.data && strstr(out.data, copy) != NULL);
        {
            char orig[1100];
            snprintf(orig, sizeof orig, "%s/", home); /* the original's paths: none */
            CHECK(out.data && strstr(out.data, orig) == NULL);
            if (fti_test_failures) fprintf(stderr, "%s", out.data ? out.data : "");
        }
    }
    fti_buf_free(&out);
}
