/* test_twin.c: the training driver (07_train_run.c) that fti-train and fti-twin are built on:
 * reproducible model ids (same seed, data, options: same GGUF bytes and id, for any thread
 * count), LoRA adapters registered on their own with the base as parent, merging an adapter
 * into its base, keep_best, fit_seconds (the schedule fitted to a time budget), and the driver's
 * errors. Uses a small dataset ingested from the
 * shipped corpus with a 300-token vocabulary; and fti-twin update: when nothing changed, and two
 * updates of one workspace at once (the lock); fti_workspace_gc. */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* Ingests the corpus into a fresh workspace under the test's temp dir; 0 if it is missing. */
static int fti_ttw_workspace(char *home, size_t n, const char *name) {
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

/* Trains the one-thread model of fti_ttw_opts in home and promotes it to production; its id
 * goes to id. */
static int fti_ttw_production(const char *home, char id[17]) {
    fti_train_run_opts ro = fti_ttw_opts(1);
    fti_train_run_result r;
    fti_error err;
    if (fti_train_run(home, &ro, &r, &err) != FTI_OK ||
        fti_registry_promote(home, r.id, "production", &err) != FTI_OK) {
        fprintf(stderr, "    %s\n", err.msg);
        return 0;
    }
    memcpy(id, r.id, sizeof r.id);
    return 1;
}

/* A workspace `name` with a production model, for a test that runs build/fti-twin: 0 when the
 * program is not built (said: skipped) or the workspace cannot be made; a production model that
 * cannot be trained counts as a failure. */
static int fti_ttw_ready(char *home, size_t n, const char *name, char id[17]) {
    if (!fti_path_exists("build/fti-twin")) {
        fprintf(stderr, "    (build/fti-twin not built: skipped)\n");
        return 0;
    }
    if (!fti_ttw_workspace(home, n, name)) return 0;
    if (!fti_ttw_production(home, id)) {
        fprintf(stderr, "    %s:%d: no production model in %s\n", __FILE__, __LINE__, home);
        fti_test_failures++;
        return 0;
    }
    return 1;
}

/* The path of the latest dataset version's object `key` ("index", "train", "val"), to damage
 * it; 0 if the version cannot be opened. */
static int fti_ttw_object(const char *home, const char *key, char *path, size_t n) {
    fti_dataset *ds = NULL;
    const char *hex;
    int ok;
    if (fti_dataset_open(&ds, home, NULL, NULL) != FTI_OK) return 0;
    hex = fti_json_get_str(fti_json_get(fti_json_get(fti_dataset_manifest(ds), "files"), key),
                           "sha256", "");
    ok = *hex != 0; /* (hex lives in the manifest: read before the close) */
    snprintf(path, n, "%s/store/objects/%.2s/%s", home, hex, hex);
    fti_dataset_close(ds);
    return ok;
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
    CHECK_EQ_INT(r3.stats.step, 6);
    CHECK((float)r3.stats.loss == (float)r1.stats.loss); /* the last step's, not 0 */
    CHECK(r3.stats.val_loss == r1.stats.val_loss);
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

/* max_tokens is a stop, not the run (as max_seconds): a run it stopped resumes under another
 * limit or none, in the same run directory, and ends with the uninterrupted run's model. */
FTI_TEST(twin_train_run_max_tokens_resume) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], home2[1024];
    fti_train_run_opts ro;
    fti_train_run_result whole, r1, r2;
    fti_error err;
    if (!fti_ttw_workspace(home, sizeof home, "ws") ||
        !fti_ttw_workspace(home2, sizeof home2, "ws2"))
        return;
    ro = fti_ttw_opts(1);
    REQUIRE(fti_train_run(home2, &ro, &whole, &err) == FTI_OK);
    ro = fti_ttw_opts(1);
    ro.train.max_tokens = 3 * 2 * 32; /* 3 of the 6 steps */
    REQUIRE(fti_train_run(home, &ro, &r1, &err) == FTI_OK);
    CHECK_EQ_INT(r1.stats.step, 3);
    CHECK_EQ_STR(r1.run_key, whole.run_key);
    ro = fti_ttw_opts(1);
    ro.train.max_tokens = 100000;
    ro.resume = 1;
    ro.resume_required = 1;
    REQUIRE(fti_train_run(home, &ro, &r2, &err) == FTI_OK);
    CHECK(r2.resumed);
    CHECK_EQ_STR(r2.run_key, r1.run_key);
    CHECK_EQ_INT(r2.stats.step, 6);
    CHECK_EQ_STR(r2.id, whole.id);
#endif
}

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* A stop request after `after` steps (fti_train_run_opts.stop): asked before each step. */
typedef struct fti_ttw_stopper {
    int asked, after;
} fti_ttw_stopper;

static int fti_ttw_stop(void *user) {
    fti_ttw_stopper *s = (fti_ttw_stopper *)user;
    return s->asked++ >= s->after;
}
#endif

/* A run asked to stop (fti-train's Ctrl-C) after K steps saves its checkpoint at step K and
 * registers nothing; the same run without resume is then refused under no_overwrite, naming its
 * step; resumed, it ends with the uninterrupted run's weights bit for bit (the same model id).
 * Finished (and cleaned by gc), no_overwrite names its model; without no_overwrite the run
 * starts over as before (fti-twin's updates); that start stopped in turn is named by its
 * checkpoint, not as the finished run. */
FTI_TEST(twin_train_run_stop_and_no_overwrite) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], home2[1024], ckpt[1200];
    fti_train_run_opts ro;
    fti_train_run_result whole, r;
    fti_ttw_stopper stopper;
    fti_error err;
    fti_buf ids;
    fti_model_config c1, c2;
    float *w1, *w2;
    if (!fti_ttw_workspace(home, sizeof home, "ws") ||
        !fti_ttw_workspace(home2, sizeof home2, "ws2"))
        return;
    ro = fti_ttw_opts(1);
    ro.train.checkpoint_every = 100; /* none before the stop: the stop saves it */
    REQUIRE(fti_train_run(home2, &ro, &whole, &err) == FTI_OK);
    memset(&stopper, 0, sizeof stopper);
    stopper.after = 4;
    ro.stop = fti_ttw_stop;
    ro.stop_user = &stopper;
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_CANCELLED);
    CHECK(strstr(err.msg, "interrupted at step 4 of 6: checkpoint saved in ") != NULL);
    CHECK_EQ_INT(r.stats.step, 4);
    CHECK_EQ_INT(r.stats.total_steps, 6);
    CHECK_EQ_STR(r.id, "");
    CHECK_EQ_STR(r.run_key, whole.run_key);
    snprintf(ckpt, sizeof ckpt, "%s/runs/%s/checkpoint.bin", home, r.run_key);
    CHECK(fti_path_exists(ckpt));
    memset(&ids, 0, sizeof ids);
    CHECK(fti_registry_list(home, &ids, &err) == FTI_OK && ids.len == 0); /* no model */
    fti_buf_free(&ids);
    /* the same run again, no resume: refused, naming the step (not started over) */
    ro = fti_ttw_opts(2);
    ro.train.checkpoint_every = 100;
    ro.no_overwrite = 1;
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_EXISTS);
    CHECK(strstr(err.msg, "has a checkpoint at step 4 of 6") != NULL);
    CHECK_EQ_INT(r.stats.step, 4);
    CHECK_EQ_INT(r.stats.total_steps, 6);
    CHECK_EQ_STR(r.id, "");
    /* resumed on two threads: the uninterrupted run's model */
    ro.resume_required = 1;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    CHECK(r.resumed);
    CHECK_EQ_INT(r.stats.step, 6);
    CHECK_EQ_STR(r.id, whole.id);
    w1 = fti_ttw_weights(home, r.id, &c1);
    w2 = fti_ttw_weights(home2, whole.id, &c2);
    REQUIRE(w1 && w2);
    CHECK(memcmp(w1, w2, fti_model_n_params(&c1) * sizeof(float)) == 0);
    fti_free(w1);
    fti_free(w2);
    /* finished: no_overwrite names the model, before and after gc removed the checkpoint */
    ro.resume_required = 0;
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_EXISTS);
    CHECK(strstr(err.msg, "is finished: its model ") != NULL);
    CHECK_EQ_STR(r.id, whole.id);
    CHECK_EQ_INT(r.stats.step, 6);
    {
        fti_workspace_gc_opts go;
        memset(&go, 0, sizeof go);
        REQUIRE(fti_workspace_gc(home, &go, NULL, NULL, &err) == FTI_OK);
        CHECK(!fti_path_exists(ckpt));
    }
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_EXISTS);
    CHECK(strstr(err.msg, "is finished: its model ") != NULL);
    CHECK_EQ_STR(r.id, whole.id);
    /* without no_overwrite the run starts over (and gives the same model again) */
    ro.no_overwrite = 0;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    CHECK(!r.resumed);
    CHECK_EQ_STR(r.id, whole.id);
    /* started over again (--restart) and stopped at step 3: the registered model is of the
     * earlier start, so no_overwrite names the checkpoint (until 2026-11-29: "is finished"),
     * and --resume ends with the same model */
    stopper.asked = 0;
    stopper.after = 3;
    ro.stop = fti_ttw_stop;
    ro.stop_user = &stopper;
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_CANCELLED);
    CHECK_EQ_INT(r.stats.step, 3);
    ro.stop = NULL;
    ro.no_overwrite = 1;
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_EXISTS);
    CHECK(strstr(err.msg, "has a checkpoint at step 3 of 6") != NULL);
    CHECK_EQ_STR(r.id, "");
    CHECK_EQ_INT(r.stats.step, 3);
    ro.resume_required = 1;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    CHECK(r.resumed);
    CHECK_EQ_STR(r.id, whole.id);
    ro.resume_required = 0; /* finished again: named as such */
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_EXISTS);
    CHECK(strstr(err.msg, "is finished: its model ") != NULL);
    CHECK_EQ_STR(r.id, whole.id);
    /* a stop before the first step of a fresh run: a checkpoint at step 0 that resumes */
    ro = fti_ttw_opts(1);
    ro.train.seed = 9;
    stopper.asked = stopper.after = 0;
    ro.stop = fti_ttw_stop;
    ro.stop_user = &stopper;
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_CANCELLED);
    CHECK_EQ_INT(r.stats.step, 0);
    ro.stop = NULL;
    ro.resume_required = 1;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    CHECK(r.resumed);
    CHECK_EQ_INT(r.stats.step, 6);
#endif
}

/* --resume of a run another process trains, before that one's first checkpoint: the lock's
 * FTI_ERR_BUSY, not "nothing to resume" */
FTI_TEST(twin_train_run_lock_before_resume) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], dir[1200], lock[1300];
    fti_train_run_opts ro;
    fti_train_run_result r;
    fti_error err;
    int fd;
    if (!fti_ttw_workspace(home, sizeof home, "ws")) return;
    ro = fti_ttw_opts(1);
    ro.resume_required = 1;
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_NOT_FOUND); /* no run yet */
    CHECK(strstr(err.msg, "nothing to resume") != NULL);
    REQUIRE(strlen(r.run_key) == 16);
    /* what a process that has just started the run leaves: its directory, locked */
    snprintf(dir, sizeof dir, "%s/runs/%s", home, r.run_key);
    REQUIRE(fti_mkdirs(dir, &err) == FTI_OK);
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    fd = open(lock, O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    CHECK(flock(fd, LOCK_EX | LOCK_NB) == 0);
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_BUSY);
    CHECK(strstr(err.msg, "another process is training this run") != NULL);
    ro.resume_required = 0; /* (and a fresh start, with or without no_overwrite) */
    ro.no_overwrite = 1;
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_BUSY);
    close(fd);
    ro.resume_required = 1;
    CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_NOT_FOUND);
    { /* no weight decay (negative) is another run than the default decay (0 = 0.1): both were
       * keyed 0 (fti-train --weight-decay 0 asks for none) */
        char key[17];
        memcpy(key, r.run_key, sizeof key);
        ro.train.adamw.weight_decay = -1;
        CHECK_EQ_INT(fti_train_run(home, &ro, &r, &err), FTI_ERR_NOT_FOUND);
        CHECK(strlen(r.run_key) == 16 && strcmp(r.run_key, key) != 0);
    }
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
    /* an alias names a model: the adapter is refused (fti-serve could not load it), the merged
     * model is not; an alias that reads as a model id is refused */
    CHECK(fti_registry_promote(home, rl.adapter_id, "production", &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "is a LoRA adapter, not a model") != NULL);
    CHECK(fti_registry_promote(home, rl.id, "staging", &err) == FTI_OK);
    CHECK(fti_registry_promote(home, rl.id, "beef", &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "reads as a model id") != NULL);
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

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* The card's machine.threads is the pool's ($FTI_THREADS with n_threads 0, not the CPU count);
 * a fine-tune given a config is refused (it was ignored); a parent removed by gc is named as
 * such (not "model.gguf: cannot open"). */
static void fti_ttw_refusals(const char *home) {
    fti_train_run_opts ro;
    fti_train_run_result r;
    fti_error err;
    fti_json_doc *doc;
    char saved[32] = "", cpath[1200];
    void *text = NULL;
    size_t len = 0;
    if (getenv("FTI_THREADS")) snprintf(saved, sizeof saved, "%s", getenv("FTI_THREADS"));
    setenv("FTI_THREADS", "1", 1);
    ro = fti_ttw_opts(0);
    ro.train.seed = 77;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    if (saved[0]) setenv("FTI_THREADS", saved, 1);
    else unsetenv("FTI_THREADS");
    doc = fti_ttw_card(home, r.id);
    REQUIRE(doc != NULL);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(fti_json_root(doc), "machine"), "threads", 0), 1);
    fti_json_free(doc);
    { /* a run another process holds is FTI_ERR_BUSY, not trained twice at once */
        char lock[1200];
        int fd;
        snprintf(lock, sizeof lock, "%s/runs/%s/.lock", home, r.run_key);
        fd = open(lock, O_RDWR | O_CREAT, 0644);
        REQUIRE(fd >= 0);
        CHECK(flock(fd, LOCK_EX | LOCK_NB) == 0);
        ro = fti_ttw_opts(1);
        ro.train.seed = 77;
        ro.resume = 1;
        CHECK_EQ_INT(fti_train_run(home, &ro, NULL, &err), FTI_ERR_BUSY);
        CHECK(strstr(err.msg, "another process is training this run") != NULL);
        close(fd);
        CHECK_EQ_INT(fti_train_run(home, &ro, NULL, &err), FTI_OK);
    }
    memset(&ro, 0, sizeof(ro));
    ro.from = r.id;
    ro.train.max_steps = 2;
    ro.train.batch = 2;
    ro.train.n_threads = 1;
    ro.config.dim = 32;
    CHECK_EQ_INT(fti_train_run(home, &ro, NULL, &err), FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "keeps its configuration") != NULL);
    ro.config.dim = 0;
    ro.untied = 1;
    CHECK_EQ_INT(fti_train_run(home, &ro, NULL, &err), FTI_ERR_INVALID);
    ro.untied = 0;
    ro.train.lora_rank = 2; /* best.bin holds whole weights: the adapter would not match */
    ro.keep_best = 1;
    CHECK_EQ_INT(fti_train_run(home, &ro, NULL, &err), FTI_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "keep_best with LoRA") != NULL);
    ro.train.lora_rank = 0;
    ro.keep_best = 0;
    { /* a registered file changed since (a flipped bit in a tensor): refused, not trained on */
        char mpath[1200];
        unsigned char *m;
        snprintf(mpath, sizeof mpath, "%s/models/%s/model.gguf", home, r.id);
        REQUIRE(fti_file_read(mpath, 0, &text, &len, NULL) == FTI_OK && len > 100);
        m = (unsigned char *)text;
        m[len - 3] ^= 0x40;
        REQUIRE(fti_file_write_atomic(mpath, m, len, NULL) == FTI_OK);
        CHECK_EQ_INT(fti_train_run(home, &ro, NULL, &err), FTI_ERR_CHECKSUM);
        CHECK(strstr(err.msg, "the file changed after registration") != NULL);
        m[len - 3] ^= 0x40;
        REQUIRE(fti_file_write_atomic(mpath, m, len, NULL) == FTI_OK);
        fti_free(text);
        text = NULL;
    }
    snprintf(cpath, sizeof cpath, "%s/models/%s/card.json", home, r.id);
    REQUIRE(fti_file_read(cpath, 0, &text, &len, NULL) == FTI_OK && len > 2);
    {
        fti_buf b;
        memset(&b, 0, sizeof(b));
        fti_buf_puts(&b, "{\"removed\": \"2026-01-02T03:04:05Z\",");
        fti_buf_append(&b, (const char *)text + 1, len - 1);
        REQUIRE(!b.oom && fti_file_write_atomic(cpath, b.data, b.len, NULL) == FTI_OK);
        fti_buf_free(&b);
    }
    fti_free(text);
    CHECK_EQ_INT(fti_train_run(home, &ro, NULL, &err), FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "removed by gc (2026-01-02T03:04:05Z)") != NULL);
}
#endif

/* patience: a run whose validation loss stops improving ends early, finished and registered
 * with the best pass's weights; the card says so; without patience it runs its schedule. */
FTI_TEST(twin_train_run_patience) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024];
    fti_train_run_opts ro;
    fti_train_run_result r;
    fti_error err;
    fti_json_doc *doc;
    if (!fti_ttw_workspace(home, sizeof home, "ws")) return;
    /* the rate far too high after the warm-up (as above): the loss climbs from step 4 on */
    ro = fti_ttw_opts(1);
    ro.keep_best = 1;
    ro.patience = 2;
    ro.train.max_steps = 40;
    ro.train.eval_every = 2;
    ro.train.warmup_steps = 6;
    ro.train.lr = 1.0f;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    CHECK(r.stopped_early);
    CHECK(r.stats.step < 40 && r.stats.step % 2 == 0);
    CHECK(r.used_best && r.best_step + 4 == r.stats.step);
    CHECK(r.id[0] != 0);
    doc = fti_ttw_card(home, r.id);
    REQUIRE(doc != NULL);
    {
        const fti_json *se = fti_json_get(fti_json_root(doc), "stopped_early");
        CHECK(se && se->type == FTI_JSON_TRUE);
    }
    CHECK_EQ_INT(fti_json_get_int(fti_json_root(doc), "patience", 0), 2);
    CHECK_EQ_INT(fti_json_get_int(fti_json_root(doc), "schedule_steps", 0), 40);
    fti_json_free(doc);
    ro.patience = 0; /* another run (patience is in its key): the whole schedule */
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    CHECK(!r.stopped_early);
    CHECK_EQ_INT(r.stats.step, 40);
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
    /* a learning rate far too high, reached after a warm-up: the last step is worse than the
     * best pass (about 15 against 7.5 at step 2; it was lr 0.05 without the warm-up, whose
     * last step was the best) */
    ro = fti_ttw_opts(1);
    ro.keep_best = 1;
    ro.train.max_steps = 8;
    ro.train.eval_every = 2;
    ro.train.warmup_steps = 6;
    ro.train.lr = 1.0f;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    doc = fti_ttw_card(home, r.id);
    REQUIRE(doc != NULL);
    CHECK(r.used_best);
    if (r.used_best) { /* the card and the file describe the best pass's step, not the last */
        const fti_json *c = fti_json_root(doc);
        char mpath[1200];
        fti_gguf *g = NULL;
        uint64_t u = 0;
        float f = 0;
        const char *sv = NULL;
        size_t sl = 0;
        CHECK_NEAR(fti_json_get_num(c, "val_loss", 0), r.stats.best_val_loss, 1e-9, 1e-9);
        CHECK(r.best_step >= 2 && r.best_step < 8 && r.best_step % 2 == 0);
        CHECK_EQ_INT(fti_json_get_int(c, "steps", 0), r.best_step);
        CHECK_EQ_INT(fti_json_get_int(c, "tokens", 0), r.best_step * 2 * 32);
        CHECK_EQ_INT(fti_json_get_int(c, "run_steps", 0), 8);
        CHECK_EQ_INT(fti_json_get_int(c, "run_tokens", 0), 8 * 2 * 32);
        CHECK_EQ_STR(fti_json_get_str(c, "weights", ""), "best validation pass");
        { /* its train loss is that step's (metrics.jsonl: line k is step k) */
            char mj[1200];
            void *txt = NULL;
            size_t len = 0, line = 0;
            const char *p;
            double want = -1;
            snprintf(mj, sizeof mj, "%s/runs/%s/metrics.jsonl", home, r.run_key);
            REQUIRE(fti_file_read(mj, 0, &txt, &len, NULL) == FTI_OK);
            for (p = (const char *)txt, line = 1; p && line < r.best_step; line++)
                if ((p = strchr(p, '\n')) != NULL) p++;
            if (p && (p = strstr(p, "\"loss\": ")) != NULL) want = strtod(p + 8, NULL);
            fti_free(txt);
            CHECK_NEAR(fti_json_get_num(c, "train_loss", 0), want, 1e-6, 1e-6);
        }
        snprintf(mpath, sizeof mpath, "%s/models/%s/model.gguf", home, r.id);
        REQUIRE(fti_gguf_open(&g, mpath, NULL, &err) == FTI_OK);
        CHECK(fti_gguf_get_u64(g, "fti.train.steps", &u, NULL) == FTI_OK && u == r.best_step);
        CHECK(fti_gguf_get_u64(g, "fti.train.tokens", &u, NULL) == FTI_OK &&
              u == r.best_step * 2 * 32);
        CHECK(fti_gguf_get_u64(g, "fti.train.run_steps", &u, NULL) == FTI_OK && u == 8);
        CHECK(fti_gguf_get_f32(g, "fti.train.loss", &f, NULL) == FTI_OK &&
              fabs(f - fti_json_get_num(c, "train_loss", 0)) < 1e-6);
        CHECK(fti_gguf_get_str(g, "fti.train.weights", &sv, &sl, NULL) == FTI_OK &&
              sl == 20 && memcmp(sv, "best validation pass", 20) == 0);
        fti_gguf_close(g);
        if (fti_path_exists("build/fti-registry")) { /* show says so, with the run's end */
            char cmd[1400], out[8192];
            size_t n = 0;
            FILE *pf;
            snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show %s", home, r.id);
            REQUIRE((pf = popen(cmd, "r")) != NULL);
            n = fread(out, 1, sizeof out - 1, pf);
            out[n] = 0;
            CHECK(pclose(pf) == 0);
            CHECK(strstr(out, "weights    best validation pass (the run: 8 steps, 512 tokens, "
                               "train loss ") != NULL);
            CHECK(strstr(out, " threads, fp32 matmuls, ") != NULL);
        }
    } else {
        CHECK(!(r.stats.best_val_loss < r.stats.val_loss));
    }
    { /* the machine: the matmul precision and the kernels' instruction set */
        const fti_json *m = fti_json_get(fti_json_root(doc), "machine");
        CHECK_EQ_STR(fti_json_get_str(m, "matmul", ""), "fp32");
        CHECK_EQ_STR(fti_json_get_str(m, "kernels", ""),
                     fti_isa_name(fti_kernels_isa(fti_kernels_get(FTI_ISA_AUTO))));
    }
    fti_json_free(doc);
    ro = fti_ttw_opts(1); /* bf16 asked for: "bf16" where the kernels honour it, else "fp32" */
    ro.train.max_steps = 2;
    ro.train.bf16 = 1;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    doc = fti_ttw_card(home, r.id);
    REQUIRE(doc != NULL);
    CHECK_EQ_STR(fti_json_get_str(fti_json_get(fti_json_root(doc), "machine"), "matmul", ""),
                 fti_matmul_has_bf16(fti_kernels_get(FTI_ISA_AUTO)) ? "bf16" : "fp32");
    fti_json_free(doc);
    ro = fti_ttw_opts(1);
    ro.preset = "nope";
    CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "nope") != NULL);
    ro = fti_ttw_opts(1);
    ro.train.lora_rank = 2;
    CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_INVALID);
    /* options the trainer rejects leave no run directory behind */
    {
        char dir[1200];
        ro = fti_ttw_opts(1);
        ro.train.dropout = 0.95f;
        CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_INVALID);
        CHECK(strstr(err.msg, "dropout") != NULL);
        CHECK_EQ_INT(strlen(r.run_key), 16);
        snprintf(dir, sizeof dir, "%s/runs/%s", home, r.run_key);
        CHECK(!fti_path_exists(dir));
        ro = fti_ttw_opts(1);
        ro.train.ctx = 64; /* more than the model's context of 32 */
        CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_INVALID);
        snprintf(dir, sizeof dir, "%s/runs/%s", home, r.run_key);
        CHECK(!fti_path_exists(dir));
    }
    ro = fti_ttw_opts(1);
    ro.dataset = "no-such-version";
    CHECK(fti_train_run(home, &ro, &r, &err) != FTI_OK);
    CHECK(r.dataset[0] == 0);
    ro = fti_ttw_opts(1);
    ro.from = "0123456789abcdef";
    CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_NOT_FOUND);
    CHECK(fti_train_run(NULL, &ro, &r, &err) == FTI_ERR_INVALID);
    fti_ttw_refusals(home);
#endif
}

/* fit_seconds: the schedule's length follows the time budget. fti_trainer_set_total_steps moves
 * the cosine (the next step's learning rate is the new schedule's) and the step limit, never
 * below one more step; the driver's run stops by itself and ends with a decayed learning rate
 * (the last step is always the schedule's last, whatever the machine's speed: no timing is
 * asserted), and such a run refuses resume. */
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* A trainer of the tiny preset (vocab 64, context 16, batch 2) on 400 fixed tokens (toks, the
 * caller's), one thread, scheduled for max_steps: NULL if it cannot be made. */
static fti_trainer *fti_ttw_tiny_trainer(uint16_t toks[400], uint64_t max_steps) {
    fti_model_config cfg;
    fti_train_opts o;
    fti_trainer *t = NULL;
    fti_token_array tr;
    fti_error err;
    size_t i;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 64;
    if (fti_model_preset("tiny", &cfg, &err) != FTI_OK) return NULL;
    cfg.context_len = 16;
    if (fti_model_config_resolve(&cfg, &err) != FTI_OK) return NULL;
    for (i = 0; i < 400; i++) toks[i] = (uint16_t)((i * 7 + 3) % 64);
    tr.data = toks;
    tr.n_tokens = 400;
    tr.token_bytes = 2;
    memset(&o, 0, sizeof o);
    o.batch = 2;
    o.max_steps = max_steps;
    o.warmup_steps = 1;
    o.lr = 1e-3f;
    o.n_threads = 1;
    return fti_trainer_create(&cfg, NULL, &o, tr, tr, &t, &err) == FTI_OK ? t : NULL;
}
#endif

FTI_TEST(twin_train_run_fit_seconds) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024];
    fti_train_run_opts ro;
    fti_train_run_result r;
    fti_error err;
    {
        fti_train_stats st;
        uint16_t toks[400];
        fti_trainer *t = fti_ttw_tiny_trainer(toks, 100);
        REQUIRE(t != NULL);
        REQUIRE(fti_trainer_step(t, &st, &err) == FTI_OK);
        REQUIRE(fti_trainer_step(t, &st, &err) == FTI_OK);
        CHECK_EQ_INT(st.total_steps, 100);
        fti_trainer_set_total_steps(t, 5);
        REQUIRE(fti_trainer_step(t, &st, &err) == FTI_OK);
        CHECK_EQ_INT(st.total_steps, 5);
        CHECK_NEAR(st.lr, fti_lr_schedule(2, 1, 5, 1e-3, 0.1), 1e-9, 1e-6);
        CHECK(!fti_trainer_done(t));
        fti_trainer_set_total_steps(t, 1); /* below the steps done: one more step */
        CHECK(!fti_trainer_done(t));
        REQUIRE(fti_trainer_step(t, &st, &err) == FTI_OK);
        CHECK_EQ_INT(st.step, 4);
        CHECK(fti_trainer_done(t));
        CHECK(st.evaluated); /* the last step is evaluated */
        fti_trainer_free(t);
    }
    if (!fti_ttw_workspace(home, sizeof home, "ws")) return;
    ro = fti_ttw_opts(1);
    ro.train.max_steps = 1000000; /* only the first estimate */
    ro.train.eval_every = 50;
    ro.fit_seconds = 1.0;
    ro.keep_best = 1;
    REQUIRE(fti_train_run(home, &ro, &r, &err) == FTI_OK);
    CHECK(r.stats.step < 1000000);
    CHECK_EQ_INT(r.stats.total_steps, r.stats.step);
    CHECK(r.stats.lr < 0.5e-3 * 3); /* the cosine's tail: peak 3e-3 (tiny from scratch) */
    CHECK(r.stats.val_loss == r.stats.val_loss);
    CHECK_EQ_INT(strlen(r.id), 16);
    ro.resume = 1;
    CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "fit_seconds") != NULL);
#endif
}

/* The schedule fitted to a time budget (fti__tr_fit_at, synthetic clock): where max_steps binds,
 * a few slow seconds leave it at max_steps (the same model as a run without them); a machine
 * that stays slow cuts it; a budget-bound run follows its recent rate as before. */
FTI_TEST(train_fit_busy_moment_keeps_cap) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    fti_train_stats st, got;
    fti__tr_fit_state f;
    fti_error err;
    uint16_t toks[400];
    uint64_t min_total = 1000, sec;
    fti_trainer *t = fti_ttw_tiny_trainer(toks, 1000);
    memset(&got, 0, sizeof got);
    REQUIRE(t != NULL);
    REQUIRE(fti_trainer_step(t, &st, &err) == FTI_OK);
    /* 100 s budget, 11 steps a second (1,100 fit: max_steps binds), seconds 20-25 at 8 a second
     * (alone, the last 10 s' rate fits 945 steps) */
    memset(&f, 0, sizeof f);
    memset(&st, 0, sizeof st);
    st.total_steps = 1000;
    for (sec = 1; sec <= 60; sec++) {
        st.step += sec >= 20 && sec <= 25 ? 8 : 11;
        fti__tr_fit_at(&f, t, &st, 100.0, 1000, (double)sec);
        fti_trainer_stats_get(t, &got); /* (the trainer's own step is 1: only the length) */
        st.total_steps = got.total_steps;
        if (st.total_steps < min_total) min_total = st.total_steps;
    }
    CHECK_EQ_INT(min_total, 1000);
    /* then the machine stays at 5 steps a second: the schedule is cut */
    for (; sec <= 90; sec++) {
        st.step += 5;
        fti__tr_fit_at(&f, t, &st, 100.0, 1000, (double)sec);
        fti_trainer_stats_get(t, &got);
        st.total_steps = got.total_steps;
    }
    CHECK(st.total_steps < 1000);
    CHECK(st.total_steps > st.step);
    /* a budget-bound run (max_steps 10,000): the recent rate sets the length, as before */
    memset(&f, 0, sizeof f);
    memset(&st, 0, sizeof st);
    fti_trainer_set_total_steps(t, 10000);
    st.total_steps = 10000;
    for (sec = 1; sec <= 30; sec++) {
        st.step += sec >= 20 ? 5 : 11;
        fti__tr_fit_at(&f, t, &st, 100.0, 10000, (double)sec);
        fti_trainer_stats_get(t, &got);
        st.total_steps = got.total_steps;
    }
    /* the last 10 s at 5 a second: the steps done and 5·(100 - 30 - 0.4) more */
    CHECK(st.total_steps > st.step + 300 && st.total_steps < st.step + 400);
    fti_trainer_free(t);
#endif
}

/* fti-twin update, the quick path: a production model exists and the data did not change, so the
 * update ingests in-process (with the production model's tokenizer) and stops (two updates at
 * once: twin_update_lock_two_processes). */
FTI_TEST(twin_update_unchanged) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], cmd[4096], out[1024], id[17];
    void *text = NULL;
    size_t len = 0;
    int st;
    char **ids = NULL;
    size_t n_before = 0, n_after = 0;
    if (!fti_ttw_ready(home, sizeof home, "ws", id)) return;
    CHECK(fti_store_list(home, &ids, &n_before, NULL) == FTI_OK);
    fti_store_list_free(ids, n_before);
    snprintf(out, sizeof out, "%s", fti_test_tmp("twin.out"));
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' update '%s' --threads 1 > '%s' 2>&1",
             home, fti_test_corpus_jsonl(), out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "did not change") != NULL);
    /* the version the model was trained on, not another of the same content (the tokenizer
     * given rather than trained) */
    CHECK(strstr((const char *)text, "is reused, nothing to do") != NULL);
    ids = NULL;
    CHECK(fti_store_list(home, &ids, &n_after, NULL) == FTI_OK);
    fti_store_list_free(ids, n_after);
    CHECK_EQ_INT(n_after, n_before);
    CHECK(strstr((const char *)text, "1 of 1 input file(s) reused") != NULL);
    CHECK(strstr((const char *)text, id) != NULL);
    fti_free(text);
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' status > '%s' 2>&1", home, out);
    CHECK(system(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "production  ") != NULL);
    CHECK(strstr((const char *)text, "MB; fti-twin gc would free ") != NULL); /* its run */
    fti_free(text);
    /* gc from the command line: a dry run, a usage error, and update --gc */
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' gc --dry-run > '%s' 2>&1", home, out);
    CHECK(system(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "checkpoint and weights would go") != NULL);
    fti_free(text);
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' gc extra > /dev/null 2>&1", home);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    snprintf(cmd, sizeof cmd,
             "build/fti-twin --home '%s' update '%s' --threads 1 --gc > '%s' 2>&1", home,
             fti_test_corpus_jsonl(), out);
    CHECK(system(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "did not change") != NULL);
    CHECK(strstr((const char *)text, "\n   freed ") != NULL);
    fti_free(text);
    /* write: an entry per word in the author's form, drafts picked by the model's own score;
     * the same command gives the same text */
    {
        void *text2 = NULL;
        size_t len2 = 0;
        char out2[1024];
        snprintf(out2, sizeof out2, "%s", fti_test_tmp("twin.out2"));
        snprintf(cmd, sizeof cmd,
                 "build/fti-twin --home '%s' write NEWSPAPER 'LAWYER, v.' --drafts 3 -n 12 "
                 "--threads 1 > '%s' 2>/dev/null", home, out);
        st = system(cmd);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        snprintf(cmd, sizeof cmd,
                 "build/fti-twin --home '%s' write NEWSPAPER 'LAWYER, v.' --drafts 3 -n 12 "
                 "--threads 1 > '%s' 2>/dev/null", home, out2);
        CHECK(system(cmd) == 0);
        REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
        CHECK(strstr((const char *)text, "\nNEWSPAPER, n. ") != NULL);
        CHECK(strstr((const char *)text, "\nLAWYER, v. ") != NULL);
        CHECK(strstr((const char *)text, "3 drafts") != NULL);
        /* the author memory: built by the first run (HOME/memory), loaded by the second */
        CHECK(strstr((const char *)text, "== author memory: a 4-gram model") != NULL);
        CHECK(strstr((const char *)text, "longest run of words shared") != NULL);
        /* writing with the memory at its fixed weight and each word's theme */
        CHECK(strstr((const char *)text, "writing with the memory at weight 0.80") != NULL);
        CHECK(strstr((const char *)text, "with each word's theme") != NULL);
        /* the pick among the drafts with the fewest word pairs the author never wrote */
        CHECK(strstr((const char *)text, " of adjacent words he") != NULL);
        /* and of those, fewer runs of his text first: the pick's score names its runs */
        CHECK(strstr((const char *)text, " per run of his text it is made of (") != NULL);
        if (fti_file_read(out2, 0, &text2, &len2, NULL) == FTI_OK)
            CHECK(len2 == len && memcmp(text, text2, len) == 0);
        fti_free(text2);
        fti_free(text);
        snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' write --drafts 0 > '%s' 2>&1",
                 home, out);
        st = system(cmd);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        {   /* every number is checked, and said: the option, its range, what was given */
            static const char *const bad[][2] = {
                {"write NEWSPAPER --piece-pick -1", "--piece-pick takes a number from 0 to 100"},
                {"write NEWSPAPER --drafts 300", "--drafts takes a whole number from 1 to 256"},
                {"write NEWSPAPER --temp x", "--temp takes a number from 0 to 100, not 'x'"},
                {"write NEWSPAPER --seed -2", "--seed takes a whole number"},
                {"gc --keep-history -1", "--keep-history takes a whole number from 0 to"},
                {"update x --minutes", "--minutes needs a value"},
                {"write NEWSPAPER --bogus", "unknown option --bogus"}};
            size_t k;
            for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
                void *msg = NULL;
                size_t mlen = 0;
                snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' %s > '%s' 2>&1", home,
                         bad[k][0], out);
                st = system(cmd);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
                REQUIRE(fti_file_read(out, 0, &msg, &mlen, NULL) == FTI_OK);
                if (!strstr((const char *)msg, bad[k][1]))
                    fprintf(stderr, "    %s: %.*s\n", bad[k][0], (int)mlen, (const char *)msg);
                CHECK(strstr((const char *)msg, bad[k][1]) != NULL);
                fti_free(msg);
            }
        }
    }
#endif
}

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* The number of EVAL name in fti-eval's output text (NAN if missing). */
static double fti_ttw_eval(const char *text, const char *name) {
    char key[128];
    const char *p;
    snprintf(key, sizeof key, "\nEVAL %s ", name);
    p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}
#endif

/* fti-eval scores every row on the same tokens: each text's from the second, the models in
 * strided windows of their context (32 here, the texts several times longer). Each row checks
 * its count of tokens against the one bits per byte divide by (a mismatch fails the run), and
 * the model alone scored inside the memory's evaluation is the model row, to the digit. */
FTI_TEST(twin_eval_rows_same_tokens) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], cmd[4096], out[1024], id[17];
    void *text = NULL;
    size_t len = 0;
    int st;
    if (!fti_path_exists("build/fti-eval") || !fti_path_exists("data/eval/others")) {
        fprintf(stderr, "    (build/fti-eval or data/eval/others missing: skipped)\n");
        return;
    }
    if (!fti_ttw_workspace(home, sizeof home, "ws")) return;
    REQUIRE(fti_ttw_production(home, id));
    snprintf(out, sizeof out, "%s", fti_test_tmp("eval.out"));
    snprintf(cmd, sizeof cmd, "build/fti-eval --home '%s' --max-docs 12 --threads 1 > '%s' 2>&1",
             home, out);
    st = system(cmd);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) fprintf(stderr, "%.*s", (int)len, (char *)text);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    {
        const char *t = (const char *)text;
        double a = fti_ttw_eval(t, "ppl_author"), o = fti_ttw_eval(t, "ppl_others");
        CHECK(a > 1 && o > 1);
        CHECK(a == fti_ttw_eval(t, "memory_model_ppl_author"));
        CHECK(o == fti_ttw_eval(t, "memory_model_ppl_others"));
        CHECK(fti_ttw_eval(t, "mix_bpb_author") > 0 && fti_ttw_eval(t, "bigram_bpb_others") > 0);
    }
    fti_free(text);
    { /* a dataset whose tokenizer has the model's size but other tokens: refused (it scored) */
        const char *paths[1];
        char v2[65];
        fti_ingest_opts io;
        fti_error err;
        memset(&io, 0, sizeof(io));
        io.vocab_size = 300;
        paths[0] = "docs"; /* (many files: one alone, README.md, could all go to val) */
        REQUIRE(fti_store_ingest(home, paths, 1, &io, v2, NULL, &err) == FTI_OK);
        snprintf(cmd, sizeof cmd, "build/fti-eval --home '%s' --dataset %s --max-docs 12 "
                 "--threads 1 > '%s' 2>&1", home, v2, out);
        st = system(cmd);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
        CHECK(strstr((const char *)text, "perplexities would be meaningless") != NULL);
        fti_free(text);
    }
#endif
}

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* Starts build/fti-twin update on home with args (a small, fixed-length run); stdout goes to a
 * pipe (*out_fd) or, with out_fd NULL, to the file out; stderr to the file err. */
static pid_t fti_ttw_spawn(const char *home, const char *corpus, int wait_lock, int *out_fd,
                           const char *out, const char *errf) {
    int p[2] = {-1, -1};
    pid_t pid;
    if (out_fd && pipe(p) != 0) return -1;
    pid = fork();
    if (pid == 0) {
        int fo = out_fd ? p[1] : open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0) _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        if (out_fd) close(p[0]);
        if (wait_lock)
            execl("build/fti-twin", "fti-twin", "--home", home, "update", corpus, "--preset",
                  "tiny", "--steps", "4", "--vocab", "300", "--threads", "1", "--wait",
                  (char *)NULL);
        else
            execl("build/fti-twin", "fti-twin", "--home", home, "update", corpus, "--preset",
                  "tiny", "--steps", "4", "--vocab", "300", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    if (out_fd) {
        close(p[1]);
        if (pid < 0) close(p[0]);
        else *out_fd = p[0];
    }
    return pid;
}

/* Reads fd into b (kept NUL-terminated) until it holds `until` (NULL: until EOF). Returns 1
 * when found / at EOF, 0 at EOF without `until`. */
static int fti_ttw_read_until(int fd, fti_buf *b, const char *until) {
    char chunk[512];
    for (;;) {
        ssize_t n;
        if (until && b->data && strstr(b->data, until)) return 1;
        n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return until ? 0 : 1;
        fti_buf_append(b, chunk, (size_t)n);
        fti_buf_append(b, "", 1);
        if (b->oom) return 0;
        b->len--;
    }
}

static void fti_ttw_sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int fti_ttw_file_has(const char *path, const char *s) {
    void *text = NULL;
    size_t len = 0;
    int found = 0;
    if (fti_file_read(path, 0, &text, &len, NULL) == FTI_OK) {
        char *z = (char *)fti_malloc(len + 1);
        if (z) {
            memcpy(z, text, len);
            z[len] = 0;
            found = strstr(z, s) != NULL;
            fti_free(z);
        }
        fti_free(text);
    }
    return found;
}
#endif

/* fti-twin update --retokenize: the candidate has a new tokenizer, production the old one. The
 * evaluation scored production on the new split's ids, which it reads as other tokens (the
 * demo's model, val loss 4.25, scored 6.59: a 20-step candidate at 6.41 was promoted over it).
 * Now production is scored on the same documents in its own tokens (here the same documents as
 * its own dataset's split: the same loss), and the two compare per byte of that text. */
FTI_TEST(twin_update_retokenize_evaluates_production_in_its_tokens) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], cmd[4096], out[1024], id[17], path[1400], want[64];
    void *text = NULL;
    size_t len = 0, i;
    int st;
    double lp0 = 0, lp = -1;
    const char *at;
    char *z;
    fti_dataset *ds = NULL;
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_session_opts so;
    int32_t *ids = NULL;
    const fti_token_shard *sh;
    if (!fti_ttw_ready(home, sizeof home, "ws_retok", id)) return;
    /* production's loss on its own dataset's validation split */
    snprintf(path, sizeof path, "%s/models/%s/model.gguf", home, id);
    memset(&so, 0, sizeof so);
    REQUIRE(fti_dataset_open(&ds, home, "latest", NULL) == FTI_OK);
    sh = fti_dataset_shard(ds, FTI_SPLIT_VAL);
    REQUIRE(sh && sh->count >= 2);
    ids = (int32_t *)fti_malloc((size_t)sh->count * sizeof *ids);
    REQUIRE(ids);
    for (i = 0; i < sh->count; i++) ids[i] = (int32_t)fti_shard_at(sh, i);
    REQUIRE(fti_engine_open(&e, path, NULL, NULL) == FTI_OK);
    REQUIRE(fti_session_create(&s, e, &so, NULL) == FTI_OK);
    REQUIRE(fti_session_nll(s, ids, (size_t)sh->count, &lp0, NULL) == FTI_OK);
    fti_session_free(s);
    fti_engine_close(e);
    fti_free(ids);
    fti_dataset_close(ds);
    /* the same documents, a new tokenizer of another size */
    snprintf(out, sizeof out, "%s", fti_test_tmp("retok.out"));
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' update '%s' --retokenize --vocab 280 "
             "--preset tiny --steps 2 --threads 1 > '%s' 2>&1", home, fti_test_corpus_jsonl(),
             out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    snprintf(want, sizeof want, "   production  %s  val loss ", id);
    z = (char *)fti_malloc(len + 1);
    REQUIRE(z);
    memcpy(z, text, len);
    z[len] = 0;
    fti_free(text);
    at = strstr(z, want);
    CHECK(at != NULL);
    if (at) lp = atof(at + strlen(want));
    CHECK_NEAR(lp, lp0, 1e-3, 0);
    CHECK(strstr(z, "bits per byte (another tokenizer") != NULL);
    fti_free(z);
    snprintf(path, sizeof path, "%s/registry/decisions.jsonl", home);
    CHECK(fti_ttw_file_has(path, "\"production_tokenizer_differs\":true"));
    /* status shows that decision per byte: its losses are per token of two tokenizers */
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' status > '%s' 2>&1", home, out);
    CHECK(system(cmd) == 0);
    CHECK(fti_ttw_file_has(out, " (bits per byte "));
#endif
}

/* Two fti-twin updates of one workspace at once: the first holds the lock (it is stopped with
 * SIGSTOP in the middle of its update, right after taking it); a second update started then
 * refuses with exit status 3 and a message naming the first; a third with --wait blocks until
 * the first has finished, then finds the data unchanged. Afterwards the store verifies, the
 * registry holds one model, `production` points at it, and one decision is logged. */
FTI_TEST(twin_update_lock_two_processes) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], corpus[1024], out_b[1024], err_a[1024], err_b[1024], out_c[1024];
    char err_c[1024], id[17], msg[128], decisions[1200];
    const char *src = fti_test_corpus_jsonl();
    void *text = NULL;
    size_t len = 0, i, lines = 0;
    fti_buf out_a, list;
    int fd = -1, st, j;
    pid_t a, b, c;
    fti_error err;
    if (!fti_path_exists("build/fti-twin")) {
        fprintf(stderr, "    (build/fti-twin not built: skipped)\n");
        return;
    }
    if (!fti_path_exists(src)) {
        fprintf(stderr, "    (%s missing: skipped)\n", src);
        return;
    }
    memset(&out_a, 0, sizeof(out_a));
    memset(&list, 0, sizeof(list));
    /* a small corpus: the first 80 entries */
    REQUIRE(fti_file_read(src, 0, &text, &len, NULL) == FTI_OK);
    for (i = 0; i < len && lines < 80; i++)
        if (((const char *)text)[i] == '\n') lines++;
    snprintf(corpus, sizeof corpus, "%s", fti_test_tmp("in/dd.jsonl"));
    REQUIRE(fti_mkdirs(fti_test_tmp("in"), NULL) == FTI_OK);
    REQUIRE(fti_test_write_file(corpus, text, i) == 0);
    fti_free(text);
    snprintf(home, sizeof home, "%s", fti_test_tmp("ws"));
    snprintf(err_a, sizeof err_a, "%s", fti_test_tmp("a.err"));
    snprintf(out_b, sizeof out_b, "%s", fti_test_tmp("b.out"));
    snprintf(err_b, sizeof err_b, "%s", fti_test_tmp("b.err"));
    snprintf(out_c, sizeof out_c, "%s", fti_test_tmp("c.out"));
    snprintf(err_c, sizeof err_c, "%s", fti_test_tmp("c.err"));

    /* A: takes the lock, says so ("== F: ingesting"), and is stopped there */
    a = fti_ttw_spawn(home, corpus, 0, &fd, NULL, err_a);
    REQUIRE(a > 0);
    CHECK(fti_ttw_read_until(fd, &out_a, "== F: ingesting"));
    kill(a, SIGSTOP);

    /* B: refuses at once, exit status 3, naming A */
    b = fti_ttw_spawn(home, corpus, 0, NULL, out_b, err_b);
    REQUIRE(b > 0);
    while (waitpid(b, &st, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    snprintf(msg, sizeof msg, "another update (pid %ld) is running", (long)a);
    CHECK(fti_ttw_file_has(err_b, msg));
    CHECK(!fti_ttw_file_has(out_b, "== F:"));

    /* gc --dry-run only reads: it does not wait for the lock A holds, nor refuse (it took the
     * lock, so it was refused as an update would be, and failed in a read-only workspace) */
    {
        char cmd[3200];
        snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' gc --dry-run > '%s' 2>&1", home,
                 out_b);
        st = system(cmd);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        CHECK(fti_ttw_file_has(out_b, "would free"));
    }

    /* C (--wait): says it waits, and does wait while A is stopped */
    c = fti_ttw_spawn(home, corpus, 1, NULL, out_c, err_c);
    REQUIRE(c > 0);
    for (j = 0; j < 3000 && !fti_ttw_file_has(out_c, "waiting for it to finish"); j++)
        fti_ttw_sleep_ms(10);
    CHECK(fti_ttw_file_has(out_c, "waiting for it to finish"));
    CHECK(waitpid(c, &st, WNOHANG) == 0);

    /* A goes on and finishes: trained, evaluated, promoted */
    kill(a, SIGCONT);
    CHECK(fti_ttw_read_until(fd, &out_a, NULL));
    close(fd);
    while (waitpid(a, &st, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(out_a.data && strstr(out_a.data, "first model: promoted to production") != NULL);
    /* then C: the lock is its own, and the data did not change */
    while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(fti_ttw_file_has(out_c, "did not change"));

    /* the workspace is consistent */
    CHECK_OK(fti_store_verify(home, NULL, NULL, &err));
    CHECK_OK(fti_registry_list(home, &list, &err));
    for (i = 0, lines = 0; i < list.len; i++)
        if (list.data[i] == '\n') lines++;
    CHECK_EQ_INT(lines, 1);
    CHECK_OK(fti_registry_resolve(home, "production", id, &err));
    CHECK(list.len >= 16 && memcmp(list.data, id, 16) == 0);
    snprintf(decisions, sizeof decisions, "%s/registry/decisions.jsonl", home);
    REQUIRE(fti_file_read(decisions, 0, &text, &len, NULL) == FTI_OK);
    for (i = 0, lines = 0; i < len; i++)
        if (((const char *)text)[i] == '\n') lines++;
    CHECK_EQ_INT(lines, 1);
    fti_free(text);
    fti_buf_free(&out_a);
    fti_buf_free(&list);
#endif
}

/* SIGTERM to an update while it trains (cron's timeout, systemd's stop): the step under way
 * finishes, nothing is registered or promoted, no decision is logged, it says where it stopped
 * and exits 143 (it died at once, with no word). The next update then trains and promotes. */
FTI_TEST(twin_update_sigterm_stops_cleanly) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], corpus[1024], errf[1024], outf[1024], cmd[4400], id[17], dec[1200];
    const char *src = fti_test_corpus_jsonl();
    void *text = NULL;
    size_t len = 0, i, lines = 0;
    fti_buf out;
    int p[2], st;
    pid_t pid;
    fti_error err;
    if (!fti_path_exists("build/fti-twin") || !fti_path_exists(src)) {
        fprintf(stderr, "    (build/fti-twin or the corpus missing: skipped)\n");
        return;
    }
    memset(&out, 0, sizeof out);
    REQUIRE(fti_file_read(src, 0, &text, &len, NULL) == FTI_OK);
    for (i = 0; i < len && lines < 80; i++)
        if (((const char *)text)[i] == '\n') lines++;
    snprintf(corpus, sizeof corpus, "%s", fti_test_tmp("in/dd.jsonl"));
    REQUIRE(fti_mkdirs(fti_test_tmp("in"), NULL) == FTI_OK);
    REQUIRE(fti_test_write_file(corpus, text, i) == 0);
    fti_free(text);
    snprintf(home, sizeof home, "%s", fti_test_tmp("ws"));
    snprintf(errf, sizeof errf, "%s", fti_test_tmp("u.err"));
    snprintf(outf, sizeof outf, "%s", fti_test_tmp("u2.out"));
    REQUIRE(pipe(p) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int fe = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fe < 0) _exit(126);
        dup2(p[1], 1);
        dup2(fe, 2);
        close(p[0]);
        execl("build/fti-twin", "fti-twin", "--home", home, "update", corpus, "--preset", "tiny",
              "--steps", "200000", "--vocab", "300", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    CHECK(fti_ttw_read_until(p[0], &out, "== T:"));
    fti_ttw_sleep_ms(300); /* a few steps in */
    kill(pid, SIGTERM);
    CHECK(fti_ttw_read_until(p[0], &out, NULL));
    close(p[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 143);
    CHECK(fti_ttw_file_has(errf, "interrupted (SIGTERM) at training step"));
    CHECK(fti_ttw_file_has(errf, "nothing promoted"));
    CHECK(out.data && !strstr(out.data, "promoted to production"));
    CHECK(fti_registry_resolve(home, "production", id, &err) != FTI_OK);
    snprintf(dec, sizeof dec, "%s/registry/decisions.jsonl", home);
    CHECK(!fti_path_exists(dec));
    CHECK_OK(fti_store_verify(home, NULL, NULL, &err));
    fti_buf_free(&out);
    /* the next update: trains, promotes, logs its decision */
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' update '%s' --preset tiny --steps 4 "
             "--vocab 300 --threads 1 > '%s' 2>&1", home, corpus, outf);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(fti_ttw_file_has(outf, "first model: promoted to production"));
    CHECK_OK(fti_registry_resolve(home, "production", id, &err));
    CHECK(fti_path_exists(dec));
#endif
}

/* A model promoted by hand while an update trains stays production: the update compared its
 * candidate with the production model it started from, so it does not promote over another
 * (it overwrote the hand's promotion before). The update is stopped (SIGSTOP) once it trains. */
FTI_TEST(twin_update_keeps_a_promotion_made_meanwhile) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], corpus[1024], err_a[1024], id[17], got[17], path[1200];
    fti_train_run_opts ro = fti_ttw_opts(1);
    fti_train_run_result r2;
    void *text = NULL;
    size_t len = 0, i, lines = 0;
    fti_buf out_a;
    int fd = -1, st;
    pid_t a;
    fti_error err;
    if (!fti_ttw_ready(home, sizeof home, "ws_meanwhile", id)) return;
    ro.train.seed = 6; /* a second model, registered, not promoted */
    REQUIRE(fti_train_run(home, &ro, &r2, &err) == FTI_OK);
    REQUIRE(strcmp(r2.id, id) != 0);
    /* new data (the first 80 entries): the update fine-tunes production */
    REQUIRE(fti_file_read(fti_test_corpus_jsonl(), 0, &text, &len, NULL) == FTI_OK);
    for (i = 0; i < len && lines < 80; i++)
        if (((const char *)text)[i] == '\n') lines++;
    snprintf(corpus, sizeof corpus, "%s", fti_test_tmp("in_meanwhile/dd.jsonl"));
    REQUIRE(fti_mkdirs(fti_test_tmp("in_meanwhile"), NULL) == FTI_OK);
    REQUIRE(fti_test_write_file(corpus, text, i) == 0);
    fti_free(text);
    snprintf(err_a, sizeof err_a, "%s", fti_test_tmp("meanwhile.err"));
    memset(&out_a, 0, sizeof(out_a));
    a = fti_ttw_spawn(home, corpus, 0, &fd, NULL, err_a);
    REQUIRE(a > 0);
    CHECK(fti_ttw_read_until(fd, &out_a, "== T: fine-tuning production model"));
    kill(a, SIGSTOP);
    CHECK_OK(fti_registry_promote(home, r2.id, "production", &err)); /* by hand, meanwhile */
    kill(a, SIGCONT);
    CHECK(fti_ttw_read_until(fd, &out_a, NULL));
    close(fd);
    while (waitpid(a, &st, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(out_a.data && strstr(out_a.data, "== production changed during this update") != NULL);
    CHECK_OK(fti_registry_resolve(home, "production", got, &err));
    CHECK_EQ_STR(got, r2.id);
    snprintf(path, sizeof path, "%s/registry/decisions.jsonl", home);
    CHECK(fti_ttw_file_has(path, "\"promoted\":false,\"production_changed\":true"));
    fti_buf_free(&out_a);
#endif
}

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* Ingests the corpus again with another chunk size (a new version id, the same tokenizer); its
 * id goes to id. */
static int fti_ttw_version(const char *home, int chunk_tokens, char id[65]) {
    const char *paths[1];
    fti_ingest_opts io;
    fti_error err;
    paths[0] = fti_test_corpus_jsonl();
    memset(&io, 0, sizeof(io));
    io.vocab_size = 300;
    io.n_threads = 1;
    io.chunk_tokens = chunk_tokens;
    if (fti_store_ingest(home, paths, 1, &io, id, NULL, &err) != FTI_OK) {
        fprintf(stderr, "    ingest: %s\n", err.msg);
        return 0;
    }
    return 1;
}

/* Writes a small file at home/rel, its modification time age_s seconds ago. */
static void fti_ttw_file_aged(const char *home, const char *rel, double age_s) {
    char path[1400];
    struct timespec ts[2];
    snprintf(path, sizeof path, "%s/%s", home, rel);
    (void)fti_file_write_atomic(path, "x", 1, NULL);
    ts[0].tv_sec = ts[1].tv_sec = time(NULL) - (time_t)age_s;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    (void)utimensat(AT_FDCWD, path, ts, 0);
}

static int fti_ttw_exists(const char *home, const char *a, const char *b, const char *c) {
    char path[2600];
    snprintf(path, sizeof path, "%s/%s/%s%s%s", home, a, b, c ? "/" : "", c ? c : "");
    return fti_path_exists(path);
}
#endif

/* fti_workspace_gc: four updates' worth of versions, models and runs; a dry run changes
 * nothing; gc keeps the alias, its last earlier target, the newest model and their datasets,
 * removes the rest (cards stay, tombstones for versions), cleans finished runs, stale temp
 * files and removed models' memories; verify, lineage, promote, rollback and resume say what
 * happened; a second gc finds nothing; an ingest's lock makes it wait. */
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* Four dataset versions v[0..3] in the workspace, a model m[i] trained on each (run_a: the
 * first run's key), m0..m2 promoted to production in turn. 1 on success. */
static int fti_ttw_four_runs(const char *home, char v[4][65], char m[4][17], char run_a[17]) {
    fti_train_run_opts ro;
    fti_train_run_result r;
    fti_error err;
    int i;
    for (i = 0; i < 4; i++) {
        if (i == 3) fti_ttw_sleep_ms(1100); /* (cards and manifests are dated to the second) */
        if (i == 0 ? fti_store_resolve(home, "latest", v[0], &err) != FTI_OK
                   : !fti_ttw_version(home, 200 - 30 * i, v[i]))
            return 0;
        ro = fti_ttw_opts(1);
        ro.dataset = v[i];
        ro.train.seed = (uint64_t)(5 + i);
        if (fti_train_run(home, &ro, &r, &err) != FTI_OK) return 0;
        memcpy(m[i], r.id, 17);
        if (i == 0) memcpy(run_a, r.run_key, 17);
        if (i < 3 && fti_registry_promote(home, m[i], "production", &err) != FTI_OK) return 0;
    }
    return 1;
}
#endif

FTI_TEST(twin_workspace_gc) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], v[4][65], m[4][17], run_a[17], path[1400], id[17], full[65];
    fti_train_run_opts ro;
    fti_train_run_result r;
    fti_workspace_gc_opts go;
    fti_workspace_gc_result gr;
    fti_buf rep;
    fti_error err;
    fti_json_doc *doc;
    uint64_t dry_bytes;
    int i, fd;
    if (!fti_ttw_workspace(home, sizeof home, "ws")) return;
    REQUIRE(fti_ttw_four_runs(home, v, m, run_a));
    for (i = 1; i < 4; i++) CHECK(strcmp(v[i], v[i - 1]) != 0);
    /* the twin's memories, a killed writer's temp files, an interrupted ingest's object */
    REQUIRE(fti_mkdirs(fti_test_tmp("ws/memory"), NULL) == FTI_OK);
    REQUIRE(fti_mkdirs(fti_test_tmp("ws/store/tmp"), NULL) == FTI_OK);
    REQUIRE(fti_mkdirs(fti_test_tmp("ws/store/objects/ab"), NULL) == FTI_OK);
    snprintf(path, sizeof path, "memory/%s.ngram", m[0]);
    fti_ttw_file_aged(home, path, 0);
    snprintf(path, sizeof path, "memory/%s.ngram", m[2]);
    fti_ttw_file_aged(home, path, 0);
    fti_ttw_file_aged(home, "models/aliases.json.tmp.99.1", 7200);
    fti_ttw_file_aged(home, "models/aliases.json.tmp.99.2", 10);
    snprintf(path, sizeof path, "models/%s/model.gguf.tmp.98.1", m[0]); /* goes with m0 */
    fti_ttw_file_aged(home, path, 7200);
    fti_ttw_file_aged(home, "store/tmp/obj.1", 10);
    fti_ttw_file_aged(home, "store/objects/ab/ab000000000000000000000000000000000000000000000000"
                            "00000000000000", 10);

    memset(&go, 0, sizeof go);
    go.keep_models = 1;
    go.keep_history = 1;
    go.keep_versions = 1;
    go.dry_run = 1;
    memset(&rep, 0, sizeof rep);
    REQUIRE(fti_workspace_gc(home, &go, &gr, &rep, &err) == FTI_OK);
    CHECK_EQ_INT(gr.models_removed, 1); /* m0: production's history keeps m1, the newest m3 */
    CHECK_EQ_INT(gr.models_kept, 3);
    CHECK_EQ_INT(gr.runs_cleaned, 4);
    CHECK_EQ_INT(gr.store.versions_removed, 1);
    CHECK(gr.store.objects_removed >= 2);
    CHECK_EQ_INT(gr.temp_removed, 1); /* aliases.json.tmp.99.1 (2 h old), not .99.2 (10 s) */
    CHECK_EQ_INT(gr.memories_removed, 1); /* m0's */
    CHECK(gr.bytes_freed > 0);
    dry_bytes = gr.bytes_freed;
    CHECK(fti_ttw_exists(home, "models", m[0], "model.gguf")); /* a dry run changes nothing */
    CHECK(fti_store_resolve(home, v[0], full, &err) == FTI_OK);
    CHECK(fti_ttw_exists(home, "runs", run_a, "checkpoint.bin"));
    CHECK(fti_ttw_exists(home, "store", "tmp", "obj.1"));
    CHECK(strstr(rep.data, m[0]) != NULL);
    fti_buf_free(&rep);

    /* an ingest holding the store lock: busy, and nothing is removed */
    fd = open(fti_test_tmp("ws/store/lock"), O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(flock(fd, LOCK_EX) == 0);
    go.dry_run = 0;
    CHECK(fti_store_gc(home, NULL, NULL, NULL, &err) == FTI_ERR_BUSY);
    close(fd);

    memset(&rep, 0, sizeof rep);
    REQUIRE(fti_workspace_gc(home, &go, &gr, &rep, &err) == FTI_OK);
    CHECK_EQ_INT(gr.models_removed, 1);
    CHECK_EQ_INT(gr.store.versions_removed, 1);
    CHECK(gr.bytes_freed == dry_bytes); /* the dry run counted each file once */
    fti_buf_free(&rep);
    /* the removed model: card only, marked; promote refuses it; lineage still reads */
    CHECK(!fti_ttw_exists(home, "models", m[0], "model.gguf"));
    CHECK(fti_ttw_exists(home, "models", m[0], "card.json"));
    doc = fti_ttw_card(home, m[0]);
    REQUIRE(doc != NULL);
    CHECK(fti_json_get(fti_json_root(doc), "removed") != NULL);
    CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "dataset", ""), v[0]);
    fti_json_free(doc);
    CHECK(fti_registry_promote(home, m[0], "staging", &err) == FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "removed by gc") != NULL);
    for (i = 1; i < 4; i++) CHECK(fti_ttw_exists(home, "models", m[i], "model.gguf"));
    /* production's history: m0 left it; one rollback to m1, then none */
    CHECK(fti_registry_rollback(home, "production", id, &err) == FTI_OK);
    CHECK_EQ_STR(id, m[1]);
    CHECK(fti_registry_rollback(home, "production", id, &err) == FTI_ERR_NOT_FOUND);
    CHECK(fti_registry_promote(home, m[2], "production", &err) == FTI_OK);
    /* versions: v0 is a tombstone; the kept models' datasets open; verify passes */
    CHECK(fti_store_resolve(home, v[0], full, &err) == FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "removed by gc") != NULL);
    for (i = 1; i < 4; i++) {
        fti_dataset *ds = NULL;
        CHECK(fti_dataset_open(&ds, home, v[i], &err) == FTI_OK);
        fti_dataset_close(ds);
    }
    CHECK(fti_store_verify(home, NULL, NULL, &err) == FTI_OK);
    /* runs: metrics stay, checkpoints go; a resume says why it cannot */
    CHECK(!fti_ttw_exists(home, "runs", run_a, "checkpoint.bin"));
    CHECK(!fti_ttw_exists(home, "runs", run_a, "model.gguf"));
    CHECK(fti_ttw_exists(home, "runs", run_a, "metrics.jsonl"));
    CHECK(fti_ttw_exists(home, "runs", run_a, "gc.json"));
    ro = fti_ttw_opts(1);
    ro.dataset = v[0];
    ro.resume = 1;
    CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_NOT_FOUND); /* (its dataset is gone) */
    ro.dataset = v[1];
    ro.train.seed = 6;
    CHECK(fti_train_run(home, &ro, &r, &err) == FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "removed by gc") != NULL);
    /* temp files: the stale ones and store/tmp go, a fresh one stays; memories of m0 only */
    CHECK(!fti_ttw_exists(home, "models", "aliases.json.tmp.99.1", NULL));
    CHECK(fti_ttw_exists(home, "models", "aliases.json.tmp.99.2", NULL));
    CHECK(!fti_ttw_exists(home, "store", "tmp", "obj.1"));
    CHECK_EQ_INT(gr.memories_removed, 1);
    snprintf(path, sizeof path, "%s.ngram", m[2]);
    CHECK(fti_ttw_exists(home, "memory", path, NULL));
    /* the same inputs and options as v0 make v0 again: its tombstone goes */
    REQUIRE(fti_ttw_version(home, 200, full));
    CHECK_EQ_STR(full, v[0]);
    CHECK(fti_store_resolve(home, v[0], full, &err) == FTI_OK);
    snprintf(path, sizeof path, "%s.removed", v[0]);
    CHECK(!fti_ttw_exists(home, "store/versions", path, NULL));
    CHECK(fti_store_verify(home, NULL, NULL, &err) == FTI_OK);
    /* again: nothing left to do */
    REQUIRE(fti_workspace_gc(home, &go, &gr, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(gr.models_removed + gr.runs_cleaned + gr.store.versions_removed +
                     gr.store.objects_removed,
                 0);
    CHECK(fti_workspace_gc(NULL, &go, &gr, NULL, &err) == FTI_ERR_INVALID);
#endif
}

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* Four registered models with fake weights (the registry only hashes and copies the file) in a
 * fresh workspace home: production went A -> B -> C, D is the newest (a second later). */
static int fti_ttw_gc_models(const char *home, char ids[4][17]) {
    fti_error err;
    int i;
    if (fti_workspace_init(home, &err) != FTI_OK) return 0;
    for (i = 0; i < 4; i++) {
        char path[1400], body[64];
        if (i == 3) fti_ttw_sleep_ms(1100); /* (cards are dated to the second) */
        snprintf(path, sizeof path, "%s/weights%d.bin", home, i);
        snprintf(body, sizeof body, "fake weights of model %d\n", i);
        if (fti_file_write_atomic(path, body, strlen(body), &err) != FTI_OK ||
            fti_registry_add(home, path, "{\"name\": \"m\"}", 13, ids[i], &err) != FTI_OK ||
            (i < 3 && fti_registry_promote(home, ids[i], "production", &err) != FTI_OK)) {
            fprintf(stderr, "    %s\n", err.msg);
            return 0;
        }
    }
    return 1;
}

/* 1 when production and every earlier target in its history still have their weights (so a
 * rollback never lands on a model gc removed). */
static int fti_ttw_aliases_whole(const char *home) {
    fti_buf b;
    fti_json_doc *doc = NULL;
    const fti_json *al, *h;
    int ok = 0;
    memset(&b, 0, sizeof b);
    if (fti_registry_aliases(home, &b, NULL) == FTI_OK &&
        fti_json_parse(b.data, b.len, NULL, &doc, NULL, NULL) == FTI_OK &&
        (al = fti_json_get(fti_json_root(doc), "production")) != NULL) {
        ok = fti_ttw_exists(home, "models", fti_json_get_str(al, "id", "?"), "model.gguf");
        h = fti_json_get(al, "history");
        for (h = h ? h->child : NULL; h; h = h->next)
            if (h->type != FTI_JSON_STRING || !fti_ttw_exists(home, "models", h->str, "model.gguf"))
                ok = 0;
    }
    fti_json_free(doc);
    fti_buf_free(&b);
    return ok;
}
#endif

/* An unfinished run (its checkpoint there, no model registered from it) keeps what it resumes
 * from: the model it fine-tunes and its dataset version, which gc would otherwise remove. */
FTI_TEST(twin_workspace_gc_keeps_unfinished_runs) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], v[4][65], m[4][17], run_a[17], path[1400], body[512], full[65];
    fti_workspace_gc_opts go;
    fti_workspace_gc_result gr;
    fti_error err;
    fti_json_doc *doc = NULL;
    if (!fti_ttw_workspace(home, sizeof home, "ws_unf")) return;
    REQUIRE(fti_ttw_four_runs(home, v, m, run_a));
    /* every run says what it resumes from */
    snprintf(path, sizeof path, "%s/runs/%s/run.json", home, run_a);
    {
        void *data = NULL;
        size_t len = 0;
        REQUIRE(fti_file_read(path, 4096, &data, &len, &err) == FTI_OK);
        REQUIRE(fti_json_parse((const char *)data, len, NULL, &doc, NULL, &err) == FTI_OK);
        CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "dataset", ""), v[0]);
        CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "from", "?"), "");
        fti_json_free(doc);
        fti_free(data);
    }
    /* a fine-tune of m0 on v0, interrupted: a checkpoint, no model */
    REQUIRE(fti_mkdirs(fti_test_tmp("ws_unf/runs/0123456789abcdef"), NULL) == FTI_OK);
    fti_ttw_file_aged(home, "runs/0123456789abcdef/checkpoint.bin", 0);
    snprintf(body, sizeof body, "{\"run\": \"0123456789abcdef\", \"dataset\": \"%s\", \"from\": "
             "\"%s\"}\n", v[0], m[0]);
    snprintf(path, sizeof path, "%s/runs/0123456789abcdef/run.json", home);
    REQUIRE(fti_file_write_atomic(path, body, strlen(body), &err) == FTI_OK);
    memset(&go, 0, sizeof go);
    go.keep_models = 1;
    go.keep_history = 1;
    go.keep_versions = 1;
    REQUIRE(fti_workspace_gc(home, &go, &gr, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(gr.models_removed, 0); /* m0 stays for the run (else the one removed) */
    CHECK_EQ_INT(gr.runs_unfinished, 1);
    CHECK(fti_ttw_exists(home, "models", m[0], "model.gguf"));
    CHECK(fti_store_resolve(home, v[0], full, &err) == FTI_OK);
    CHECK(fti_ttw_exists(home, "runs", "0123456789abcdef", "checkpoint.bin"));
    /* once the run is gone (finished and registered, or deleted), they go */
    snprintf(path, sizeof path, "%s/runs/0123456789abcdef/checkpoint.bin", home);
    REQUIRE(fti_file_remove(path, &err) == FTI_OK);
    REQUIRE(fti_workspace_gc(home, &go, &gr, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(gr.models_removed, 1);
    CHECK(!fti_ttw_exists(home, "models", m[0], "model.gguf"));
    CHECK(fti_store_resolve(home, v[0], full, &err) != FTI_OK);
#endif
}

/* An update killed while training leaves a run without a checkpoint (fti-twin saves one only at
 * the end) or a model, but with best.bin (keep_best): nothing can resume it, and the next
 * update's run has another key (the schedule follows the calibration). gc removed nothing of
 * it, for good: a model's size per killed update. Once nothing was written to it for an hour,
 * its best.bin goes (metrics.jsonl stays); a younger run (perhaps training), one with a
 * checkpoint, and one whose model was written but not registered are left alone. */
FTI_TEST(twin_workspace_gc_killed_run) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    static const char *const runs[] = {"1111111111111111", "2222222222222222",
                                       "3333333333333333", "4444444444444444"};
    char home[1024], rel[256], dir[1400];
    fti_workspace_gc_opts go;
    fti_workspace_gc_result gr;
    fti_buf report;
    fti_error err;
    size_t i;
    if (!fti_ttw_workspace(home, sizeof home, "ws_killed")) return;
    for (i = 0; i < 4; i++) {
        double age = i == 1 ? 60 : 7200; /* the second: written to a minute ago */
        snprintf(dir, sizeof dir, "%s/runs/%s", home, runs[i]);
        REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
        snprintf(rel, sizeof rel, "runs/%s/run.json", runs[i]);
        fti_ttw_file_aged(home, rel, 7200);
        snprintf(rel, sizeof rel, "runs/%s/metrics.jsonl", runs[i]);
        fti_ttw_file_aged(home, rel, age);
        snprintf(rel, sizeof rel, "runs/%s/best.bin", runs[i]);
        fti_ttw_file_aged(home, rel, age);
    }
    fti_ttw_file_aged(home, "runs/3333333333333333/checkpoint.bin", 7200);
    fti_ttw_file_aged(home, "runs/4444444444444444/model.gguf", 7200);
    memset(&go, 0, sizeof go);
    memset(&report, 0, sizeof report);
    go.dry_run = 1;
    REQUIRE(fti_workspace_gc(home, &go, &gr, &report, &err) == FTI_OK);
    CHECK_EQ_INT(gr.runs_dead, 1);
    CHECK_EQ_INT(gr.runs_unfinished, 3);
    CHECK(gr.bytes_freed >= 1);
    CHECK(report.data && strstr(report.data, "run 1111111111111111 was killed before its first "
                                             "checkpoint") != NULL);
    /* the young one is named too (the report's "unfinished runs left alone" named none) */
    CHECK(report.data && strstr(report.data, "run 2222222222222222 has no model and no "
                                             "checkpoint: still running, or killed") != NULL);
    CHECK(report.data && strstr(report.data, "run 3333333333333333 is unfinished") == NULL);
    CHECK(fti_ttw_exists(home, "runs", runs[0], "best.bin"));
    go.dry_run = 0;
    REQUIRE(fti_workspace_gc(home, &go, &gr, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(gr.runs_dead, 1);
    CHECK_EQ_INT(gr.runs_unfinished, 3);
    CHECK(!fti_ttw_exists(home, "runs", runs[0], "best.bin"));
    CHECK(fti_ttw_exists(home, "runs", runs[0], "metrics.jsonl"));
    for (i = 1; i < 4; i++) CHECK(fti_ttw_exists(home, "runs", runs[i], "best.bin"));
    CHECK(fti_ttw_exists(home, "runs", runs[2], "checkpoint.bin"));
    CHECK(fti_ttw_exists(home, "runs", runs[3], "model.gguf"));
    /* a second gc finds nothing more, and the emptied run is not "unfinished" */
    REQUIRE(fti_workspace_gc(home, &go, &gr, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(gr.runs_dead, 0);
    CHECK_EQ_INT(gr.runs_unfinished, 3);
    fti_buf_free(&report);
#endif
}

/* A LoRA run registers its adapter, then the merged model. Killed between the two (here: the
 * merged model's directory removed), the run is unfinished: gc keeps its checkpoint and base,
 * and its resume registers the same merged model; then gc cleans it. */
FTI_TEST(twin_workspace_gc_lora_run_without_model) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], path[1400], cmd[1500];
    fti_train_run_opts ro;
    fti_train_run_result rb, rl, rr;
    fti_workspace_gc_opts go;
    fti_workspace_gc_result gr;
    fti_error err;
    if (!fti_ttw_workspace(home, sizeof home, "ws_lora_gc")) return;
    ro = fti_ttw_opts(1);
    REQUIRE(fti_train_run(home, &ro, &rb, &err) == FTI_OK);
    memset(&ro, 0, sizeof(ro));
    ro.from = rb.id;
    ro.train.batch = 2;
    ro.train.max_steps = 4;
    ro.train.lr = 1e-2f;
    ro.train.lora_rank = 2;
    ro.train.seed = 3;
    ro.train.n_threads = 1;
    REQUIRE(fti_train_run(home, &ro, &rl, &err) == FTI_OK);
    snprintf(path, sizeof path, "%s/models/%s", home, rl.id);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    REQUIRE(system(cmd) == 0);
    memset(&go, 0, sizeof go);
    go.keep_models = 1;
    go.keep_history = 1;
    go.keep_versions = 1;
    REQUIRE(fti_workspace_gc(home, &go, &gr, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(gr.runs_cleaned, 1); /* the base's run only */
    CHECK_EQ_INT(gr.runs_unfinished, 1);
    CHECK(fti_ttw_exists(home, "runs", rl.run_key, "checkpoint.bin"));
    CHECK(!fti_ttw_exists(home, "runs", rl.run_key, "gc.json"));
    CHECK(fti_ttw_exists(home, "models", rb.id, "model.gguf"));
    CHECK(fti_ttw_exists(home, "models", rl.adapter_id, "card.json"));
    ro.resume = 1;
    REQUIRE(fti_train_run(home, &ro, &rr, &err) == FTI_OK);
    CHECK(rr.resumed);
    CHECK_EQ_STR(rr.run_key, rl.run_key);
    CHECK_EQ_STR(rr.adapter_id, rl.adapter_id);
    CHECK_EQ_STR(rr.id, rl.id);
    CHECK(fti_ttw_exists(home, "models", rl.id, "model.gguf"));
    REQUIRE(fti_workspace_gc(home, &go, &gr, NULL, &err) == FTI_OK);
    CHECK_EQ_INT(gr.runs_cleaned, 1);
    CHECK_EQ_INT(gr.runs_unfinished, 0);
    CHECK(fti_ttw_exists(home, "runs", rl.run_key, "gc.json"));
    CHECK(!fti_ttw_exists(home, "runs", rl.run_key, "checkpoint.bin"));
#endif
}

/* Alias changes wait for the registry's lock (HOME/models/.lock), which gc holds while it
 * decides and removes: a promote made meanwhile is neither lost nor of a model being removed. */
FTI_TEST(twin_registry_lock) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], ids[4][17], path[1400], id[17];
    fti_error err;
    int fd, status = -1;
    pid_t pid;
    snprintf(home, sizeof home, "%s", fti_test_tmp("reg_lock_ws"));
    REQUIRE(fti_ttw_gc_models(home, ids));
    snprintf(path, sizeof path, "%s/models/.lock", home);
    fd = open(path, O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(flock(fd, LOCK_EX) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) { /* waits for the lock, then promotes (the inherited descriptor closed:
                     * it shares the parent's lock) */
        close(fd);
        _exit(fti_registry_promote(home, ids[3], "production", NULL) == FTI_OK ? 0 : 1);
    }
    fti_ttw_sleep_ms(300);
    CHECK_OK(fti_registry_resolve(home, "production", id, &err));
    CHECK_EQ_STR(id, ids[2]); /* not yet: the promote waits */
    CHECK(waitpid(pid, &status, WNOHANG) == 0);
    close(fd); /* releases the lock */
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(fti_registry_resolve(home, "production", id, &err));
    CHECK_EQ_STR(id, ids[3]);
#endif
}

/* fti_workspace_gc killed just before each write, fsync and rename in turn, each time on a copy
 * of the same workspace: afterwards production and every rollback target still have their
 * weights, and a gc run to the end removes the one model it should (its files too, whatever a
 * killed gc left of them). */
FTI_TEST(twin_workspace_gc_crash_at_every_step) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char base[1024], home[1024], ids[4][17], cmd[4200];
    fti_workspace_gc_opts go;
    fti_workspace_gc_result gr;
    fti_error err;
    long k;
    int crashed = 0, finished = 0;
    snprintf(base, sizeof base, "%s", fti_test_tmp("gc_base"));
    REQUIRE(fti_ttw_gc_models(base, ids));
    memset(&go, 0, sizeof go);
    go.keep_models = 1;
    go.keep_history = 1; /* kept: C (production), B (its last earlier target), D (the newest) */
    for (k = 1; k < 100 && !finished; k++) {
        pid_t pid;
        int st = 0;
        snprintf(home, sizeof home, "%s", fti_test_tmp("gc_ws"));
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", home, base, home);
        REQUIRE(system(cmd) == 0);
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            fti__io_crash_set(FTI__IO_WRITE | FTI__IO_FSYNC | FTI__IO_RENAME, k);
            _exit(fti_workspace_gc(home, &go, NULL, NULL, NULL) == FTI_OK ? 0 : 1);
        }
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        REQUIRE(WIFEXITED(st));
        if (WEXITSTATUS(st) == 77) crashed++;
        else finished = WEXITSTATUS(st) == 0;
        if (!fti_ttw_aliases_whole(home)) {
            fprintf(stderr, "    killed before step %ld: an alias names a model without files\n",
                    k);
            CHECK(0);
        }
        /* then a gc to the end: A goes, card and all of its files */
        CHECK_OK(fti_workspace_gc(home, &go, &gr, NULL, &err));
        CHECK(!fti_ttw_exists(home, "models", ids[0], "model.gguf"));
        CHECK(fti_ttw_exists(home, "models", ids[0], "card.json"));
        CHECK(fti_ttw_aliases_whole(home));
        CHECK(fti_ttw_exists(home, "models", ids[1], "model.gguf"));
        CHECK(fti_ttw_exists(home, "models", ids[2], "model.gguf"));
        CHECK(fti_ttw_exists(home, "models", ids[3], "model.gguf"));
    }
    CHECK(finished);
    CHECK(crashed >= 4);
#endif
}

/* FTI_GC_KEEP_NONE (fti-twin gc --keep-history 0 --keep-models 0): no rollback target and no
 * newest model beyond the aliased ones; only production's model keeps its files. */
FTI_TEST(twin_workspace_gc_keep_none) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], ids[4][17];
    fti_workspace_gc_opts go;
    fti_workspace_gc_result gr;
    fti_error err;
    snprintf(home, sizeof home, "%s", fti_test_tmp("gc_none"));
    REQUIRE(fti_ttw_gc_models(home, ids));
    memset(&go, 0, sizeof go);
    go.keep_models = FTI_GC_KEEP_NONE;
    go.keep_history = FTI_GC_KEEP_NONE;
    CHECK_OK(fti_workspace_gc(home, &go, &gr, NULL, &err));
    CHECK_EQ_INT(gr.models_kept, 1);
    CHECK_EQ_INT(gr.models_removed, 3);
    CHECK(fti_ttw_exists(home, "models", ids[2], "model.gguf")); /* C, production */
    CHECK(!fti_ttw_exists(home, "models", ids[0], "model.gguf"));
    CHECK(!fti_ttw_exists(home, "models", ids[1], "model.gguf"));
    CHECK(!fti_ttw_exists(home, "models", ids[3], "model.gguf"));
    CHECK(fti_ttw_aliases_whole(home));
#endif
}

/* A model's directory copied by hand inside HOME/models (a backup: the same card, so the same
 * id twice in the registry's list) is no reason to remove the original: the aliased model keeps
 * its weights. */
FTI_TEST(twin_workspace_gc_copied_model_dir) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], ids[4][17], cmd[4200], id[17];
    fti_workspace_gc_opts go;
    fti_workspace_gc_result gr;
    fti_error err;
    fti_json_doc *doc;
    snprintf(home, sizeof home, "%s", fti_test_tmp("gc_ws"));
    REQUIRE(fti_ttw_gc_models(home, ids));
    snprintf(cmd, sizeof cmd, "cp -a '%s/models/%s' '%s/models/%s.bak'", home, ids[2], home,
             ids[2]);
    REQUIRE(system(cmd) == 0);
    memset(&go, 0, sizeof go);
    go.keep_models = 1;
    go.keep_history = 1;
    CHECK_OK(fti_workspace_gc(home, &go, &gr, NULL, &err));
    CHECK_OK(fti_registry_resolve(home, "production", id, &err));
    CHECK_EQ_STR(id, ids[2]);
    CHECK(fti_ttw_exists(home, "models", ids[2], "model.gguf"));
    doc = fti_ttw_card(home, ids[2]);
    REQUIRE(doc != NULL);
    CHECK(fti_json_get(fti_json_root(doc), "removed") == NULL);
    fti_json_free(doc);
    CHECK(fti_ttw_aliases_whole(home));
    CHECK(!fti_ttw_exists(home, "models", ids[0], "model.gguf"));
    { /* the copy is no model: the id is listed once and resolves */
        fti_buf list;
        const char *p;
        int seen = 0;
        memset(&list, 0, sizeof list);
        CHECK_OK(fti_registry_list(home, &list, &err));
        fti_buf_putc(&list, '\0');
        for (p = list.data; p && (p = strstr(p, ids[2])) != NULL; p++) seen++;
        CHECK_EQ_INT(seen, 1);
        fti_buf_free(&list);
        CHECK_OK(fti_registry_resolve(home, ids[2], id, &err));
        CHECK_EQ_STR(id, ids[2]);
    }
#endif
}

/* update fine-tunes production with the tokenizer its dataset names even when that dataset's
 * index is damaged: it read the tokenizer through fti_dataset_open, which also checks the index
 * and shards, so a truncated index made it train a new tokenizer and a model from scratch
 * ("the tokenizer changed"), as if --retokenize had been given. */
FTI_TEST(twin_update_damaged_index_keeps_tokenizer) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], cmd[4096], out[1024], id[17], ix[2048], extra[1024];
    void *text = NULL;
    size_t len = 0;
    int st;
    if (!fti_ttw_ready(home, sizeof home, "ws", id)) return;
    REQUIRE(fti_ttw_object(home, "index", ix, sizeof ix));
    REQUIRE(fti_test_write_file(ix, "FTIBM25", 7) == 0);
    snprintf(extra, sizeof extra, "%s", fti_test_tmp("extra.jsonl"));
    {
        static const char z[] = "{\"title\":\"ZEBRA\",\"text\":\"ZEBRA, n. A horse in prison "
                                "stripes, looked at by strangers for life.\"}\n";
        REQUIRE(fti_test_write_file(extra, z, sizeof z - 1) == 0);
    }
    snprintf(out, sizeof out, "%s", fti_test_tmp("twin.out"));
    snprintf(cmd, sizeof cmd,
             "build/fti-twin --home '%s' update '%s' '%s' --threads 1 --steps 2 > '%s' 2>&1",
             home, fti_test_corpus_jsonl(), extra, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "tokenizer of the production model kept") != NULL);
    CHECK(strstr((const char *)text, "== T: fine-tuning production model") != NULL);
    CHECK(strstr((const char *)text, "the tokenizer changed") == NULL);
    if (fti_test_failures) fprintf(stderr, "%.*s\n", (int)len, (const char *)text);
    fti_free(text);
#endif
}

/* write with a damaged token shard: retrieval, the word mask and the word filters read only the
 * dataset's index, so they stay on and it writes what it writes without the memory and themes
 * on the intact version; the author memory and the themes, which read the shards, go off with a
 * message naming the shard's file. A damaged index still turns retrieval off, named. */
FTI_TEST(twin_write_damaged_shard_keeps_retrieval) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], cmd[4096], out[1024], out0[1024], log[1024], id[17], va[2048], ix[2048];
    void *text = NULL, *text0 = NULL;
    size_t len = 0, len0 = 0;
    int st, st0;
    if (!fti_ttw_ready(home, sizeof home, "ws", id)) return;
    REQUIRE(fti_ttw_object(home, "val", va, sizeof va) &&
            fti_ttw_object(home, "index", ix, sizeof ix));
    snprintf(out0, sizeof out0, "%s", fti_test_tmp("twin.out0"));
    snprintf(out, sizeof out, "%s", fti_test_tmp("twin.out"));
    snprintf(log, sizeof log, "%s", fti_test_tmp("twin.log"));
    /* intact, without what reads the shards */
    snprintf(cmd, sizeof cmd,
             "build/fti-twin --home '%s' write NEWSPAPER --drafts 2 -n 8 --threads 1 --no-memory "
             "--topic 0 > '%s' 2>/dev/null", home, out0);
    st0 = system(cmd);
    /* (0, or 1 when this tiny model's two drafts have no word: fti-twin says so) */
    CHECK(WIFEXITED(st0) && (WEXITSTATUS(st0) == 0 || WEXITSTATUS(st0) == 1));
    REQUIRE(fti_file_read(out0, 0, &text0, &len0, NULL) == FTI_OK);
    /* the val shard damaged (truncated to its magic) */
    REQUIRE(fti_test_write_file(va, "FTITOKS", 7) == 0);
    snprintf(cmd, sizeof cmd,
             "build/fti-twin --home '%s' write NEWSPAPER --drafts 2 -n 8 --threads 1 > '%s' "
             "2> '%s'", home, out, log);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == WEXITSTATUS(st0));
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK((strstr((const char *)text, "\nNEWSPAPER, n. ") != NULL) == (WEXITSTATUS(st0) == 0));
    CHECK(len == len0 && memcmp(text, text0, len) == 0);
    CHECK(strstr((const char *)text, "== author memory") == NULL);
    fti_free(text);
    text = NULL;
    REQUIRE(fti_file_read(log, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "the author memory and the themes (--topic) off: val shard: ")
          != NULL);
    CHECK(strstr((const char *)text, va) != NULL);
    CHECK(strstr((const char *)text, "retrieval, the author's words and memory off") == NULL);
    if (fti_test_failures) fprintf(stderr, "%.*s\n", (int)len, (const char *)text);
    fti_free(text);
    text = NULL;
    /* fti-serve: only the perplexity check (the val shard) goes, named; it stops at once on an
     * address it cannot bind, after loading */
    if (fti_path_exists("build/fti-serve")) {
        char scmd[2200];
        snprintf(scmd, sizeof scmd, "build/fti-serve --home '%s' --threads 1 --host 256.0.0.1 "
                 "--port 1 > '%s' 2>&1", home, log);
        st = system(scmd);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0);
        REQUIRE(fti_file_read(log, 0, &text, &len, NULL) == FTI_OK);
        CHECK(strstr((const char *)text, "the perplexity drift check off (a token shard is "
                                         "damaged): val shard: ") != NULL);
        CHECK(strstr((const char *)text, va) != NULL);
        if (fti_test_failures) fprintf(stderr, "%.*s\n", (int)len, (const char *)text);
        fti_free(text);
        text = NULL;
    }
    /* the index damaged too */
    REQUIRE(fti_test_write_file(ix, "FTIBM25", 7) == 0);
    if (fti_path_exists("build/fti-serve")) {
        char scmd[2200];
        snprintf(scmd, sizeof scmd, "build/fti-serve --home '%s' --threads 1 --host 256.0.0.1 "
                 "--port 1 > '%s' 2>&1", home, log);
        st = system(scmd);
        REQUIRE(fti_file_read(log, 0, &text, &len, NULL) == FTI_OK);
        CHECK(strstr((const char *)text, "retrieval and drift off: dataset ") != NULL);
        CHECK(strstr((const char *)text, ix) != NULL);
        if (fti_test_failures) fprintf(stderr, "%.*s\n", (int)len, (const char *)text);
        fti_free(text);
        text = NULL;
    }
    st = system(cmd);
    /* without his words to keep to, this tiny model ends both drafts at once: said, exit 1
     * (it printed "NEWSPAPER, n. " and nothing, exit 0) */
    CHECK(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 1));
    REQUIRE(fti_file_read(log, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "retrieval, the author's words and memory off: index: ") !=
          NULL);
    CHECK(strstr((const char *)text, ix) != NULL);
    CHECK((WEXITSTATUS(st) == 1) == (strstr((const char *)text, "NEWSPAPER: none of the 2 "
                                                                "drafts has a word") != NULL));
    if (fti_test_failures) fprintf(stderr, "%.*s\n", (int)len, (const char *)text);
    fti_free(text);
    text = NULL;
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "NEWSPAPER, n. \n") == NULL);
    fti_free(text);
    fti_free(text0);
#endif
}

/* The decision log of fti-twin update: a last line cut short (a writer killed between its
 * writes, a full disk, a backup copied mid-write) is ended before the next decision, which then
 * reads as a line of its own; a decision that cannot be logged makes the update exit 1 (it
 * exited 0, and an unopenable log said nothing at all). */
FTI_TEST(twin_update_decision_log_heals_cut_line) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    static const char cut[] = "{\"time\":\"2026-11-29T2";
    char home[1024], cmd[4096], out[1024], id[17], extra[1300], dec[1300], dir[1200];
    void *text = NULL;
    size_t len = 0;
    const char *last;
    fti_json_doc *doc = NULL;
    int st;
    if (!fti_ttw_ready(home, sizeof home, "ws_dec", id)) return;
    snprintf(dir, sizeof dir, "%s/registry", home);
    snprintf(dec, sizeof dec, "%s/decisions.jsonl", dir);
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    REQUIRE(fti_test_write_file(dec, cut, sizeof cut - 1) == 0);
    /* a run an earlier update left when it was killed: no model, no checkpoint */
    snprintf(dir, sizeof dir, "%s/runs/5555555555555555", home);
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    snprintf(extra, sizeof extra, "%s/best.bin", dir);
    REQUIRE(fti_test_write_file(extra, "weights", 7) == 0);
    snprintf(extra, sizeof extra, "%s", fti_test_tmp("extra.jsonl"));
    {
        static const char z[] = "{\"title\":\"ZEBRA\",\"text\":\"ZEBRA, n. A horse in prison "
                                "stripes, looked at by strangers for life.\"}\n";
        REQUIRE(fti_test_write_file(extra, z, sizeof z - 1) == 0);
    }
    snprintf(out, sizeof out, "%s", fti_test_tmp("twin.out"));
    snprintf(cmd, sizeof cmd,
             "build/fti-twin --home '%s' update '%s' '%s' --threads 1 --steps 2 > '%s' 2>&1",
             home, fti_test_corpus_jsonl(), extra, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the run's first line has its time and pid (a cron log of many nights) */
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, " path(s) into ") != NULL &&
          strstr((const char *)text, "Z, pid ") != NULL);
    /* and it names the killed run (the recovery is in the log) */
    CHECK(strstr((const char *)text, "earlier run without a model (killed part-way?): run "
                                     "5555555555555555 has no model and no checkpoint") != NULL);
    fti_free(text);
    text = NULL;
    REQUIRE(fti_file_read(dec, 0, &text, &len, NULL) == FTI_OK);
    REQUIRE(len > sizeof cut && ((const char *)text)[len - 1] == '\n');
    CHECK(memcmp(text, cut, sizeof cut - 1) == 0 && ((const char *)text)[sizeof cut - 1] == '\n');
    last = (const char *)text + sizeof cut; /* the decision, on a line of its own */
    CHECK(fti_json_parse(last, len - sizeof cut, NULL, &doc, NULL, NULL) == FTI_OK);
    CHECK(doc && fti_json_get(fti_json_root(doc), "candidate") != NULL);
    fti_json_free(doc);
    fti_free(text);
    text = NULL;
    /* a log that cannot be opened (here a directory in its place): exit 1, and said */
    REQUIRE(remove(dec) == 0);
    REQUIRE(fti_mkdirs(dec, NULL) == FTI_OK);
    {
        static const char z[] = "{\"title\":\"YAK\",\"text\":\"YAK, n. A beast that talks "
                                "about itself at length.\"}\n";
        REQUIRE(fti_test_write_file(extra, z, sizeof z - 1) == 0);
    }
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "could not log the decision") != NULL);
    if (fti_test_failures) fprintf(stderr, "%.*s\n", (int)len, (const char *)text);
    fti_free(text);
#endif
}

/* fti-registry verify re-hashes each registered model file against its card: ok (status 0) on
 * an intact registry, FAILED naming the model (status 1) after one byte of its file changed. */
FTI_TEST(twin_registry_verify) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], cmd[4096], out[1024], id[17], path[2048];
    void *text = NULL;
    size_t len = 0;
    fti_json_doc *card;
    int st, fd;
    unsigned char c;
    if (!fti_path_exists("build/fti-registry")) {
        fprintf(stderr, "    (build/fti-registry not built: skipped)\n");
        return;
    }
    if (!fti_ttw_ready(home, sizeof home, "ws_verify", id)) return;
    snprintf(out, sizeof out, "%s", fti_test_tmp("verify.out"));
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' verify > '%s' 2>&1", home, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "verify: ok (1 model file(s)") != NULL);
    fti_free(text);
    text = NULL;
    REQUIRE((card = fti_ttw_card(home, id)) != NULL);
    snprintf(path, sizeof path, "%s", fti_json_get_str(fti_json_root(card), "path", ""));
    fti_json_free(card);
    REQUIRE((fd = open(path, O_RDWR)) >= 0);
    CHECK(pread(fd, &c, 1, 4000) == 1);
    c ^= 0x10;
    CHECK(pwrite(fd, &c, 1, 4000) == 1);
    close(fd);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)text, "FAILED") != NULL);
    CHECK(strstr((const char *)text, id) != NULL);
    if (fti_test_failures) fprintf(stderr, "%.*s\n", (int)len, (const char *)text);
    fti_free(text);
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' verify production > '%s' 2>&1",
             home, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
#endif
}

#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
/* Lines of a file (0 when it does not read). */
static size_t fti_ttw_lines(const char *path) {
    void *text = NULL;
    size_t len = 0, i, n = 0;
    if (fti_file_read(path, 0, &text, &len, NULL) != FTI_OK) return 0;
    for (i = 0; i < len; i++) n += ((const char *)text)[i] == '\n';
    fti_free(text);
    return n;
}
#endif

/* An update killed (SIGKILL) between moving `production` and logging its decision left
 * production moved and no decision logged. Now its decision is written ahead to
 * registry/decisions.pending, and `status` logs it as the alias shows it (promoted, "healed").
 * Killed after writing it but before the move: the next update logs "promoted":false first,
 * then makes its own decision. (FTI_TWIN_TEST_KILL is fti-twin's crash hook.) */
FTI_TEST(twin_update_killed_at_promotion_heals_its_decision) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], home2[1024], corpus[1024], out[1024], cmd[4400], id[17], dec[1200];
    char pend[1200];
    const char *src = fti_test_corpus_jsonl();
    void *text = NULL;
    size_t len = 0, i, lines = 0;
    int st;
    fti_error err;
    if (!fti_path_exists("build/fti-twin") || !fti_path_exists(src)) {
        fprintf(stderr, "    (build/fti-twin or the corpus missing: skipped)\n");
        return;
    }
    REQUIRE(fti_file_read(src, 0, &text, &len, NULL) == FTI_OK);
    for (i = 0; i < len && lines < 80; i++)
        if (((const char *)text)[i] == '\n') lines++;
    snprintf(corpus, sizeof corpus, "%s", fti_test_tmp("in/dd.jsonl"));
    REQUIRE(fti_mkdirs(fti_test_tmp("in"), NULL) == FTI_OK);
    REQUIRE(fti_test_write_file(corpus, text, i) == 0);
    fti_free(text);
    snprintf(out, sizeof out, "%s", fti_test_tmp("u.out"));

    /* killed right after the move */
    snprintf(home, sizeof home, "%s", fti_test_tmp("ws"));
    snprintf(dec, sizeof dec, "%s/registry/decisions.jsonl", home);
    snprintf(pend, sizeof pend, "%s/registry/decisions.pending", home);
    snprintf(cmd, sizeof cmd, "FTI_TWIN_TEST_KILL=after-promote build/fti-twin --home '%s' "
             "update '%s' --preset tiny --steps 4 --vocab 300 --threads 1 > '%s' 2>&1", home,
             corpus, out);
    st = system(cmd);
    CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 0)); /* killed (sh: 137, or the signal) */
    CHECK(fti_ttw_file_has(out, "== evaluation on the new validation split"));
    CHECK_OK(fti_registry_resolve(home, "production", id, &err)); /* moved */
    CHECK_EQ_INT(fti_ttw_lines(dec), 0);                            /* not logged */
    CHECK(fti_ttw_file_has(pend, "\"promoted\":true}"));            /* but written ahead */
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' status > '%s' 2>&1", home, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(fti_ttw_file_has(out, "was left pending"));
    CHECK(fti_ttw_file_has(out, "so the candidate was promoted; logged now"));
    CHECK_EQ_INT(fti_ttw_lines(dec), 1);
    CHECK(fti_ttw_file_has(dec, id));
    CHECK(fti_ttw_file_has(dec, "\"promoted\":true,\"healed\":\""));
    CHECK(!fti_path_exists(pend));
    st = system(cmd); /* once */
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(!fti_ttw_file_has(out, "was left pending"));
    CHECK_EQ_INT(fti_ttw_lines(dec), 1);

    /* killed after writing the decision ahead, before the move */
    snprintf(home2, sizeof home2, "%s", fti_test_tmp("ws2"));
    snprintf(dec, sizeof dec, "%s/registry/decisions.jsonl", home2);
    snprintf(pend, sizeof pend, "%s/registry/decisions.pending", home2);
    snprintf(cmd, sizeof cmd, "FTI_TWIN_TEST_KILL=before-promote build/fti-twin --home '%s' "
             "update '%s' --preset tiny --steps 4 --vocab 300 --threads 1 > '%s' 2>&1", home2,
             corpus, out);
    st = system(cmd);
    CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK(fti_registry_resolve(home2, "production", id, &err) != FTI_OK); /* not moved */
    CHECK(fti_path_exists(pend));
    /* the next update: logs that one first (not promoted), then trains and promotes its own */
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' update '%s' --preset tiny --steps 4 "
             "--vocab 300 --threads 1 > '%s' 2>&1", home2, corpus, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(fti_ttw_file_has(out, "not promoted (it stopped before the move); logged now"));
    CHECK(fti_ttw_file_has(out, "first model: promoted to production"));
    CHECK_EQ_INT(fti_ttw_lines(dec), 2);
    CHECK(fti_ttw_file_has(dec, "\"production\":null,\"production_val_loss\":null,"
                                "\"promoted\":false,\"healed\":\""));
    CHECK(!fti_path_exists(pend));
    if (fti_test_failures) {
        REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
        fprintf(stderr, "%.*s\n", (int)len, (const char *)text);
        fti_free(text);
    }
#endif
}

/* A fine-tune's parent model (fti__tr_load_parent) has its card read once: the loader checks
 * the file's hash against the card it read for its own fields, where it called
 * fti_registry_verify, which resolved and read the card a second time. Counted as the file
 * opens of the I/O layer: loading the parent opens what verifying it does (the card, the file
 * it hashes) and what opening the GGUF does, and nothing more. */
FTI_TEST(twin_load_parent_reads_its_card_once) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], id[17], *path = NULL;
    fti__tr_parent p;
    fti_gguf *g = NULL;
    fti_model_config cfg;
    fti_error err;
    long opens_load, opens_verify, opens_gguf;
    if (!fti_ttw_workspace(home, sizeof home, "ws_parent_once")) return;
    REQUIRE(fti_ttw_production(home, id));
    fti__io_fault_set(FTI__IO_OPEN, LONG_MAX, 0, 0, 0); /* counts the opens, fails none */
    CHECK_OK(fti__tr_load_parent(home, "production", &p, &err));
    opens_load = fti__io_fault.count;
    fti_free(p.params);
    fti__io_fault_set(FTI__IO_OPEN, LONG_MAX, 0, 0, 0);
    CHECK_OK(fti_registry_verify(home, "production", NULL, &path, &err));
    opens_verify = fti__io_fault.count;
    fti__io_fault_set(FTI__IO_OPEN, LONG_MAX, 0, 0, 0);
    REQUIRE(path != NULL);
    CHECK_OK(fti_gguf_open(&g, path, NULL, &err));
    CHECK_OK(fti_gguf_llama_config(g, &cfg, 1, &err));
    opens_gguf = fti__io_fault.count;
    fti__io_fault_set(0, 0, 0, 0, 0);
    fti_gguf_close(g);
    fti_free(path);
    CHECK(opens_verify >= 2 && opens_gguf >= 1);
    CHECK_EQ_INT(opens_load, opens_verify + opens_gguf);
#endif
}

/* fti-twin update, fresh writing after a first model: --authors is remembered from the
 * production model's dataset (a cron line without it took in a mailbox's correspondents), the
 * update says how many documents were added and removed, and the fine-tune stops after a few
 * passes (not the whole budget); status shows the decisions one line each; a mistyped PATH
 * leaves no workspace behind. */
FTI_TEST(twin_update_fresh_writing_fine_tune) {
#if !defined(FTI_NO_TRAIN) && !defined(FTI_NO_STORE)
    char home[1024], dir[1024], path[1100], out[1024], cmd[4400], nohome[1024];
    const char *src = fti_test_corpus_jsonl();
    void *text = NULL;
    size_t len = 0, i, lines = 0;
    fti_buf b;
    int st;
    if (!fti_path_exists("build/fti-twin") || !fti_path_exists(src)) {
        fprintf(stderr, "    (build/fti-twin or the corpus missing: skipped)\n");
        return;
    }
    snprintf(home, sizeof home, "%s", fti_test_tmp("ws"));
    snprintf(dir, sizeof dir, "%s", fti_test_tmp("in"));
    snprintf(out, sizeof out, "%s", fti_test_tmp("u.out"));
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    /* 120 entries, every fourth by another author ("bob"), the rest "ann"'s */
    REQUIRE(fti_file_read(src, 0, &text, &len, NULL) == FTI_OK);
    memset(&b, 0, sizeof b);
    for (i = 0; i < len && lines < 120; lines++) {
        const char *p = (const char *)text + i, *e = memchr(p, '\n', len - i);
        size_t n = e ? (size_t)(e - p) : len - i;
        if (n > 1 && p[0] == '{') {
            fti_buf_puts(&b, lines % 4 == 3 ? "{\"author\": \"bob\", " : "{\"author\": \"ann\", ");
            fti_buf_append(&b, p + 1, n - 1);
            fti_buf_putc(&b, '\n');
        }
        i += n + 1;
    }
    snprintf(path, sizeof path, "%s/export.jsonl", dir);
    REQUIRE(!b.oom && fti_test_write_file(path, b.data, b.len) == 0);
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' update '%s' --authors ann --preset tiny "
             "--steps 4 --vocab 300 --threads 1 > '%s' 2>&1", home, dir, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* fresh writing (the rest of the corpus, ann's), and an update without --authors nor
     * --steps: the budget would allow far more than 3 passes of the tiny model */
    b.len = 0;
    for (lines = 0; i < len && lines < 40; lines++) {
        const char *p = (const char *)text + i, *e = memchr(p, '\n', len - i);
        size_t n = e ? (size_t)(e - p) : len - i;
        if (n > 1 && p[0] == '{') {
            fti_buf_puts(&b, "{\"author\": \"ann\", ");
            fti_buf_append(&b, p + 1, n - 1);
            fti_buf_putc(&b, '\n');
        }
        i += n + 1;
    }
    fti_free(text);
    snprintf(path, sizeof path, "%s/more.jsonl", dir);
    REQUIRE(!b.oom && fti_test_write_file(path, b.data, b.len) == 0);
    fti_buf_free(&b);
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' update '%s' --minutes 0.5 "
             "--threads 1 > '%s' 2>&1", home, dir, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(fti_ttw_file_has(out, "--authors \"ann\" as for the production model's dataset"));
    CHECK(fti_ttw_file_has(out, " document(s) added and 0 removed since the production"));
    CHECK(fti_ttw_file_has(out, "== T: fine-tuning production model "));
    CHECK(fti_ttw_file_has(out, "but fine-tuning stops after 3 passes over the data = "));
    { /* the new version kept ann's writing only, as the first did */
        fti_dataset *ds = NULL;
        fti_error err;
        if (fti_dataset_open(&ds, home, "latest", &err) == FTI_OK) {
            const fti_json *o = fti_json_get(fti_dataset_manifest(ds), "options");
            CHECK_EQ_STR(fti_json_get_str(o, "authors", ""), "ann");
            fti_dataset_close(ds);
        } else {
            CHECK(0);
        }
    }
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' status > '%s' 2>&1", home, out);
    CHECK(system(cmd) == 0);
    CHECK(fti_ttw_file_has(out, "last decisions ("));
    CHECK(fti_ttw_file_has(out, "  promoted     candidate "));
    CHECK(fti_ttw_file_has(out, ", the first model, dataset "));
    CHECK(!fti_ttw_file_has(out, "{\"time\""));
    /* a PATH that does not exist: exit 1, and no workspace made */
    snprintf(nohome, sizeof nohome, "%s", fti_test_tmp("ws-typo"));
    snprintf(cmd, sizeof cmd, "build/fti-twin --home '%s' update '%s/nowhere' > '%s' 2>&1",
             nohome, dir, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    CHECK(fti_ttw_file_has(out, "/nowhere: no such file or folder (nothing was done)"));
    CHECK(!fti_path_exists(nohome));
    if (fti_test_failures) {
        REQUIRE(fti_file_read(out, 0, &text, &len, NULL) == FTI_OK);
        fprintf(stderr, "%.*s\n", (int)len, (const char *)text);
        fti_free(text);
    }
#endif
}
