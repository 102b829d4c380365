/* test_registry_add.c: registering an existing GGUF model file (fti_registry_add_file, part 07)
 * and `fti-registry add`. */
/* tests-need: !defined(FTI_NO_TRAIN) */
#include "test_util_state.h"

/* The card of ref in home, parsed (NULL on error). */
static fti_json_doc *ra_card(const char *home, const char *ref) {
    char id[17];
    fti_buf b;
    fti_json_doc *doc = NULL;
    fti_error err;
    memset(&b, 0, sizeof b);
    if (fti_registry_resolve(home, ref, id, &err) != FTI_OK ||
        fti_registry_card(home, id, &b, &err) != FTI_OK ||
        fti_json_parse(b.data, b.len, NULL, &doc, NULL, &err) != FTI_OK) {
        fprintf(stderr, "    card %s: %s\n", ref, err.msg);
        doc = NULL;
    }
    fti_buf_free(&b);
    return doc;
}

/* A plain file gets a card from the file (name, config, weight type, no lineage); a file with
 * fti's lineage keys gets its dataset, tokenizer, parent and training figures; --parent
 * overrides the parent (resolved: prefix or alias) and says "derived from"; the copy under
 * HOME/models/<id>/ has the file's SHA-256; adding again is the same id; a missing file, a file
 * that is not a llama model and an unknown parent are refused with nothing registered. */
FTI_TEST(registry_add_file_lineage) {
    char home[4096], plain[4096], trained[4096], junk[4096]; /* fti_test_tmp's slots rotate */
    const char *path;
    fti_test_model_opts mo;
    fti_gguf_lineage lin;
    fti_registry_add_opts o;
    fti_json_doc *doc;
    const fti_json *c;
    char id1[17], id2[17], id3[17], again[17], hex[65];
    unsigned char d1[32], d2[32];
    fti_error err;
    char *copy;
    snprintf(home, sizeof home, "%s", fti_test_tmp("home"));
    snprintf(junk, sizeof junk, "%s", fti_test_tmp("junk.gguf"));
    memset(&mo, 0, sizeof mo);
    mo.seed = 3;
    path = fti_test_model("plain.gguf", &mo, NULL, NULL);
    REQUIRE(path != NULL);
    snprintf(plain, sizeof plain, "%s", path);
    memset(&lin, 0, sizeof lin);
    lin.name = "twin-q8";
    lin.dataset_version = "ds-0001";
    lin.tokenizer_sha256 = "5e1f00aa5e1f00aa5e1f00aa5e1f00aa5e1f00aa5e1f00aa5e1f00aa5e1f00aa";
    lin.base_model_id = "0123456789abcdef";
    lin.train_steps = 40;
    lin.train_tokens = 5120;
    lin.train_loss = 2.5;
    lin.has_train_loss = 1;
    lin.val_loss = 2.0;
    lin.created = "2026-11-26T20:00:00Z";
    mo.matrix_type = FTI_GGML_Q8_0;
    mo.lineage = &lin;
    path = fti_test_model("trained.gguf", &mo, NULL, NULL);
    REQUIRE(path != NULL);
    snprintf(trained, sizeof trained, "%s", path);

    /* a plain file */
    REQUIRE(fti_registry_add_file(home, plain, NULL, id1, &err) == FTI_OK);
    REQUIRE((doc = ra_card(home, id1)) != NULL);
    c = fti_json_root(doc);
    CHECK_EQ_STR(fti_json_get_str(c, "name", ""), "fti-twin"); /* the writer's general.name */
    CHECK_EQ_STR(fti_json_get_str(c, "type", ""), "model");
    CHECK_EQ_STR(fti_json_get_str(c, "origin", ""), "added");
    CHECK_EQ_STR(fti_json_get_str(c, "source", ""), plain);
    CHECK_EQ_STR(fti_json_get_str(c, "weight_type", ""), "F32");
    CHECK_EQ_STR(fti_json_get_str(c, "dataset", "?"), "");
    CHECK(fti_json_get(c, "parent") && fti_json_get(c, "parent")->type == FTI_JSON_NULL);
    CHECK(fti_json_get(c, "steps") == NULL && fti_json_get(c, "val_loss") == NULL);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(c, "config"), "dim", 0), 64);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(c, "config"), "n_kv_heads", 0), 2);
    CHECK_EQ_INT(fti_json_get_int(fti_json_get(c, "config"), "vocab_size", 0), 96);
    fti_json_free(doc);
    /* the copy is the file */
    copy = fti_path_join(home, "models");
    REQUIRE(copy != NULL);
    {
        char *dir = fti_path_join(copy, id1), *gguf = dir ? fti_path_join(dir, "model.gguf") : NULL;
        REQUIRE(gguf != NULL);
        CHECK_OK(fti_sha256_file(plain, d1, &err));
        CHECK_OK(fti_sha256_file(gguf, d2, &err));
        CHECK(memcmp(d1, d2, 32) == 0);
        fti_sha256_hex(d1, hex);
        CHECK(memcmp(hex, id1, 16) == 0);
        fti_free(dir);
        fti_free(gguf);
    }
    fti_free(copy);

    /* a file with lineage keys */
    REQUIRE(fti_registry_add_file(home, trained, NULL, id2, &err) == FTI_OK);
    REQUIRE((doc = ra_card(home, id2)) != NULL);
    c = fti_json_root(doc);
    CHECK_EQ_STR(fti_json_get_str(c, "name", ""), "twin-q8");
    CHECK_EQ_STR(fti_json_get_str(c, "weight_type", ""), "Q8_0");
    CHECK_EQ_STR(fti_json_get_str(c, "dataset", ""), "ds-0001");
    CHECK_EQ_STR(fti_json_get_str(c, "tokenizer", ""), lin.tokenizer_sha256);
    CHECK_EQ_STR(fti_json_get_str(c, "parent", ""), "0123456789abcdef");
    CHECK(fti_json_get(c, "relation") == NULL);
    CHECK_EQ_STR(fti_json_get_str(c, "trained", ""), "2026-11-26T20:00:00Z");
    CHECK_EQ_INT(fti_json_get_int(c, "steps", 0), 40);
    CHECK_EQ_INT(fti_json_get_int(c, "tokens", 0), 5120);
    CHECK_NEAR(fti_json_get_num(c, "train_loss", 0), 2.5, 1e-6, 0);
    CHECK_NEAR(fti_json_get_num(c, "val_loss", 0), 2.0, 1e-6, 0);
    CHECK_NEAR(fti_json_get_num(c, "val_perplexity", 0), exp(2.0), 1e-5, 0);
    fti_json_free(doc);

    /* an explicit parent (an alias), a name: the same file, the same id, and its card is kept
     * with just those two fields changed (it was written anew, created time and all) */
    CHECK_OK(fti_registry_promote(home, id1, "base", &err));
    memset(&o, 0, sizeof o);
    o.name = "mine";
    o.parent = "base";
    CHECK_OK(fti_registry_add_file(home, trained, &o, id3, &err));
    CHECK(strcmp(id3, id2) == 0);
    REQUIRE((doc = ra_card(home, id3)) != NULL);
    c = fti_json_root(doc);
    CHECK_EQ_STR(fti_json_get_str(c, "name", ""), "mine");
    CHECK_EQ_STR(fti_json_get_str(c, "parent", ""), id1);
    CHECK_EQ_STR(fti_json_get_str(c, "relation", ""), "derived from");
    CHECK_EQ_STR(fti_json_get_str(c, "dataset", ""), "ds-0001"); /* the rest kept */
    CHECK_EQ_INT(fti_json_get_int(c, "steps", 0), 40);
    fti_json_free(doc);
    CHECK_OK(fti_registry_add_file(home, plain, NULL, again, &err));
    CHECK(strcmp(again, id1) == 0);
    CHECK_EQ_INT(tu_registry_models(home), 2);

    /* refusals: nothing registered */
    o.parent = "nosuchmodel";
    CHECK(fti_registry_add_file(home, plain, &o, again, &err) == FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "parent") != NULL);
    CHECK(fti_registry_add_file(home, fti_test_tmp("absent.gguf"), NULL, again, &err) != FTI_OK);
    CHECK(strstr(err.msg, "absent.gguf") != NULL);
    REQUIRE(fti_test_write_file(junk, "GGUF\x03\0\0\0 not a model at all", 28) == 0);
    CHECK(fti_registry_add_file(home, junk, NULL, again, &err) != FTI_OK);
    CHECK(strstr(err.msg, "junk.gguf") != NULL);
    CHECK(fti_registry_add_file(NULL, plain, NULL, again, &err) == FTI_ERR_INVALID);
    CHECK(fti_registry_add_file(home, plain, NULL, NULL, &err) == FTI_ERR_INVALID);
    CHECK_EQ_INT(tu_registry_models(home), 2);
}

/* The program: `add FILE --alias A` registers and points A at it (the id printed last),
 * `lineage A` shows where it came from and that its recorded parent is not in this registry,
 * bad uses exit 1 (a missing file) or 2 (a bad option); --help lists `add`. */
FTI_TEST(registry_add_program) {
    char home[4096], out[4096], model[4096];
    const char *path;
    fti_test_model_opts mo;
    fti_gguf_lineage lin;
    char cmd[16384], id[17];
    void *text = NULL;
    size_t len = 0;
    fti_error err;
    if (!fti_path_exists("build/fti-registry")) {
        fprintf(stderr, "    (build/fti-registry not built: skipped)\n");
        return;
    }
    snprintf(home, sizeof home, "%s", fti_test_tmp("home"));
    snprintf(out, sizeof out, "%s", fti_test_tmp("out.txt"));
    memset(&lin, 0, sizeof lin);
    lin.dataset_version = "ds-0002";
    lin.base_model_id = "fedcba9876543210";
    memset(&mo, 0, sizeof mo);
    mo.lineage = &lin;
    path = fti_test_model("m.gguf", &mo, NULL, NULL);
    REQUIRE(path != NULL);
    snprintf(model, sizeof model, "%s", path);
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' add '%s' --alias prod > '%s' 2>&1",
             home, model, out);
    CHECK(system(cmd) == 0);
    REQUIRE(fti_registry_resolve(home, "prod", id, &err) == FTI_OK);
    REQUIRE(fti_file_read(out, 0, &text, &len, &err) == FTI_OK);
    {
        char want[64];
        snprintf(want, sizeof want, "added model %s\n", id);
        CHECK(len >= strlen(want) && memcmp((char *)text + len - strlen(want), want,
                                            strlen(want)) == 0);
    }
    fti_free(text);
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' lineage prod > '%s' 2>&1", home, out);
    CHECK(system(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &text, &len, &err) == FTI_OK);
    {
        fti_buf b;
        memset(&b, 0, sizeof b);
        fti_buf_append(&b, text, len);
        fti_buf_putc(&b, 0);
        CHECK(b.data && strstr(b.data, "added from") != NULL);
        CHECK(b.data && strstr(b.data, "ds-0002") != NULL);
        CHECK(b.data && strstr(b.data, "fedcba9876543210 (not in this registry)") != NULL);
        if (fti_test_failures) fprintf(stderr, "%s", b.data ? b.data : "");
        fti_buf_free(&b);
    }
    fti_free(text);
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' add '%s' > '%s' 2>&1", home,
             fti_test_tmp("absent.gguf"), out);
    CHECK(WEXITSTATUS(system(cmd)) == 1);
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' add '%s' --bogus x > '%s' 2>&1",
             home, model, out);
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "build/fti-registry --help | grep -q 'add FILE'");
    CHECK(system(cmd) == 0);
    /* a mistyped --home is said (it listed "no models" with status 0) */
    snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s/nowhere' list 2>&1 | grep -q "
             "'no workspace at'", home);
    CHECK(system(cmd) == 0);
    /* fti-quantize: an unknown type is named; a FIFO is not replaced by the output */
    snprintf(cmd, sizeof cmd, "build/fti-quantize '%s' '%s' q4_1 2>&1 | grep -q \"unknown type "
             "'q4_1'\"", model, fti_test_tmp("q.gguf"));
    CHECK(system(cmd) == 0);
    if (access("build/fti-quantize", X_OK) == 0) {
        struct stat st;
        REQUIRE(mkfifo(fti_test_tmp("q_fifo"), 0600) == 0);
        snprintf(cmd, sizeof cmd, "build/fti-quantize '%s' '%s' q8_0 > '%s' 2>&1", model,
                 fti_test_tmp("q_fifo"), out);
        CHECK(WEXITSTATUS(system(cmd)) == 1);
        CHECK(lstat(fti_test_tmp("q_fifo"), &st) == 0 && S_ISFIFO(st.st_mode));
    }
}

/* A workspace registered through a relative home ("ws", as `make demo`'s ./twin) and read from
 * another directory by its absolute path, or after a move: the card's "path" is where the model
 * file is now (it was the registering run's relative path, which fine-tuning from the parent,
 * fti-twin and fti-eval then failed to open from cron's directory). */
FTI_TEST(registry_card_path_follows_home) {
    char cwd[4096], id[17], moved[4200];
    const char *dir = fti_test_tmp("reg");
    fti_json_doc *doc;
    fti_error err;
    REQUIRE(getcwd(cwd, sizeof cwd) != NULL);
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    REQUIRE(chdir(dir) == 0);
    REQUIRE(fti_test_write_file("m.gguf", "not really a model", 18) == 0);
    REQUIRE(fti_registry_add("ws", "m.gguf", "{\"name\":\"x\"}", 12, id, &err) == FTI_OK);
    REQUIRE(chdir(cwd) == 0);
    snprintf(moved, sizeof moved, "%s/moved", dir);
    REQUIRE(rename(fti_test_tmp("reg/ws"), moved) == 0);
    doc = ra_card(moved, id);
    REQUIRE(doc != NULL);
    {
        char want[4300];
        const char *p = fti_json_get_str(fti_json_root(doc), "path", "");
        snprintf(want, sizeof want, "%s/models/%s/model.gguf", moved, id);
        CHECK_EQ_STR(p, want);
        CHECK(fti_path_exists(p));
        CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "name", ""), "x"); /* the rest kept */
        CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "id", ""), id);
    }
    fti_json_free(doc);
}

/* The text of file path, NUL-terminated, in b (b->len counts the NUL); 0 if unreadable. */
static int ra_text(const char *path, fti_buf *b) {
    void *text = NULL;
    size_t len = 0;
    b->len = 0;
    if (fti_file_read(path, 0, &text, &len, NULL) != FTI_OK) return 0;
    fti_buf_append(b, text, len);
    fti_buf_putc(b, 0);
    fti_free(text);
    return !b->oom;
}

/* Re-adding a registered file keeps its card: with no option byte for byte (a trained model's
 * card was replaced by the file's, its training figures and hyper-parameters lost, created
 * reset); --name / --parent change only those fields; every argument is checked before anything
 * is written (a bad alias or name leaves the registry untouched, where a bad alias used to fail
 * after the model was registered); the program says "already registered as <id>". */
FTI_TEST(registry_add_keeps_card) {
    char home[4096], model[4096], cpath[4200], out[4096], cmd[16384], id[17], id2[17];
    const char *path;
    fti_test_model_opts mo;
    fti_registry_add_opts o;
    fti_buf before, after;
    fti_json_doc *doc;
    fti_error err;
    static const char card[] = "{\"name\": \"trained\", \"type\": \"model\", \"train_loss\": 1.25,"
                               " \"hyper\": {\"lr\": 0.001}, \"parent\": null}";
    snprintf(home, sizeof home, "%s", fti_test_tmp("home"));
    snprintf(out, sizeof out, "%s", fti_test_tmp("out.txt"));
    memset(&mo, 0, sizeof mo);
    mo.seed = 11;
    path = fti_test_model("k.gguf", &mo, NULL, NULL);
    REQUIRE(path != NULL);
    snprintf(model, sizeof model, "%s", path);
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    /* a bad alias or name on a new file: refused, nothing registered, no alias file */
    memset(&o, 0, sizeof o);
    o.alias = "bad!";
    CHECK_EQ_INT(fti_registry_add_file(home, model, &o, id, &err), FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "bad alias name 'bad!'") != NULL);
    o.alias = "c0ffee";
    CHECK_EQ_INT(fti_registry_add_file(home, model, &o, id, &err), FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "reads as a model id") != NULL);
    o.alias = NULL;
    o.name = "";
    CHECK_EQ_INT(fti_registry_add_file(home, model, &o, id, &err), FTI_ERR_INVALID);
    CHECK_EQ_INT(tu_registry_models(home), 0);
    CHECK(!fti_path_exists(fti_test_tmp("home/models")));
    /* a model trained here (fti_registry_add with a full card), added again */
    REQUIRE(fti_registry_add(home, model, card, sizeof card - 1, id, &err) == FTI_OK);
    snprintf(cpath, sizeof cpath, "%s/models/%s/card.json", home, id);
    REQUIRE(ra_text(cpath, &before));
    { /* a rewrite would change "created" (whole seconds) */
        struct timespec ts;
        ts.tv_sec = 1;
        ts.tv_nsec = 100000000L;
        nanosleep(&ts, NULL);
    }
    CHECK_OK(fti_registry_add_file(home, model, NULL, id2, &err));
    CHECK_EQ_STR(id2, id);
    REQUIRE(ra_text(cpath, &after));
    CHECK(after.len == before.len && memcmp(after.data, before.data, before.len) == 0);
    /* a bad alias on a registered file changes nothing either */
    memset(&o, 0, sizeof o);
    o.alias = "bad!";
    o.name = "renamed";
    CHECK_EQ_INT(fti_registry_add_file(home, model, &o, id2, &err), FTI_ERR_INVALID);
    REQUIRE(ra_text(cpath, &after));
    CHECK(after.len == before.len && memcmp(after.data, before.data, before.len) == 0);
    /* options: only their fields change; the alias is set */
    o.alias = "prod";
    CHECK_OK(fti_registry_add_file(home, model, &o, id2, &err));
    CHECK_OK(fti_registry_resolve(home, "prod", id2, &err));
    CHECK_EQ_STR(id2, id);
    REQUIRE((doc = ra_card(home, id)) != NULL);
    {
        const fti_json *c = fti_json_root(doc);
        fti_json_doc *old = NULL;
        REQUIRE(fti_json_parse(before.data, before.len - 1, NULL, &old, NULL, &err) == FTI_OK);
        CHECK_EQ_STR(fti_json_get_str(c, "name", ""), "renamed");
        CHECK_EQ_STR(fti_json_get_str(c, "created", "a"),
                     fti_json_get_str(fti_json_root(old), "created", "b"));
        CHECK_NEAR(fti_json_get_num(c, "train_loss", 0), 1.25, 0, 0);
        CHECK_NEAR(fti_json_get_num(fti_json_get(c, "hyper"), "lr", 0), 0.001, 0, 0);
        CHECK(fti_json_get(c, "origin") == NULL); /* not rebuilt from the file */
        CHECK(fti_json_get(c, "relation") == NULL);
        fti_json_free(old);
    }
    fti_json_free(doc);
    CHECK_EQ_INT(tu_registry_models(home), 1);

    /* the program: a bad alias registers nothing; re-adding says so */
    if (fti_path_exists("build/fti-registry")) {
        char home2[4096];
        snprintf(home2, sizeof home2, "%s", fti_test_tmp("home2"));
        REQUIRE(fti_mkdirs(home2, NULL) == FTI_OK);
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' add '%s' --alias 'bad!' > "
                 "'%s' 2>&1", home2, model, out);
        CHECK(WEXITSTATUS(system(cmd)) == 1);
        CHECK_EQ_INT(tu_registry_models(home2), 0);
        REQUIRE(ra_text(out, &after));
        CHECK(strstr(after.data, "bad alias name 'bad!'") != NULL);
        CHECK(strstr(after.data, "added") == NULL);
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' add '%s' > '%s' 2>&1", home,
                 model, out);
        CHECK(system(cmd) == 0);
        REQUIRE(ra_text(out, &after));
        snprintf(cmd, sizeof cmd, "already registered as %s\n", id);
        CHECK_EQ_STR(after.data, cmd);
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' add '%s' --parent prod "
                 "--parent prod > '%s' 2>&1", home, model, out);
        CHECK(WEXITSTATUS(system(cmd)) == 2); /* an option twice */
        snprintf(cmd, sizeof cmd, "build/fti-registry --help | grep -q 'keeps its card'");
        CHECK(system(cmd) == 0);
    }
    fti_buf_free(&before);
    fti_buf_free(&after);
}

/* Makes models/<id>/card.json by hand (ids chosen to share prefixes). */
static int ra_fake(const char *home, const char *id, const char *created) {
    char dir[4200], json[512];
    snprintf(dir, sizeof dir, "%s/models/%s", home, id);
    snprintf(json, sizeof json, "{\"id\": \"%s\", \"created\": \"%s\", \"name\": \"x\"}", id,
             created);
    if (fti_mkdirs(dir, NULL) != FTI_OK) return 0;
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/card.json");
    return fti_test_write_file(dir, json, strlen(json)) == 0;
}

/* Id prefixes: fewer than 4 hex digits is "too short" with the minimum (it was "not found");
 * an ambiguous prefix names its candidates; an alias of any length still resolves; upper case
 * hex is read as the id's. */
FTI_TEST(registry_resolve_prefix_messages) {
    char home[4096], got[17], cmd[8192];
    fti_error err;
    snprintf(home, sizeof home, "%s", fti_test_tmp("home"));
    REQUIRE(ra_fake(home, "abcd000000000001", "2026-01-01T00:00:00Z"));
    REQUIRE(ra_fake(home, "abcd000000000002", "2026-01-02T00:00:00Z"));
    REQUIRE(ra_fake(home, "a1b2000000000003", "2026-01-03T00:00:00Z"));
    CHECK_EQ_INT(fti_registry_resolve(home, "a1", got, &err), FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "at least 4 hex digits") != NULL && strstr(err.msg, "'a1'") != NULL);
    CHECK_EQ_INT(fti_registry_resolve(home, "a1b", got, &err), FTI_ERR_INVALID);
    CHECK_OK(fti_registry_resolve(home, "a1b2", got, &err));
    CHECK_EQ_STR(got, "a1b2000000000003");
    CHECK_OK(fti_registry_resolve(home, "ABCD000000000002", got, &err));
    CHECK_EQ_STR(got, "abcd000000000002");
    CHECK_EQ_INT(fti_registry_resolve(home, "abcd", got, &err), FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "id prefix 'abcd' is ambiguous") != NULL);
    CHECK(strstr(err.msg, "2 models (abcd000000000001, abcd000000000002)") != NULL);
    CHECK_EQ_INT(fti_registry_resolve(home, "abce", got, &err), FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "no model or alias 'abce'") != NULL);
    CHECK_EQ_INT(fti_registry_resolve(home, "prod", got, &err), FTI_ERR_NOT_FOUND);
    CHECK_EQ_INT(fti_registry_resolve(home, "abcd0000000000010", got, &err), FTI_ERR_NOT_FOUND);
    /* a short alias is an alias */
    CHECK_OK(fti_registry_promote(home, "a1b2", "a1", &err));
    CHECK_OK(fti_registry_resolve(home, "a1", got, &err));
    CHECK_EQ_STR(got, "a1b2000000000003");
    CHECK_EQ_INT(fti_registry_promote(home, "a1b2", "ABCD", &err), FTI_ERR_INVALID);
    if (fti_path_exists("build/fti-registry")) {
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show ab 2>&1 | grep -q "
                 "'an id prefix needs at least 4 hex digits'", home);
        CHECK(system(cmd) == 0);
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show abcd 2>&1 | grep -q "
                 "'abcd000000000001, abcd000000000002'", home);
        CHECK(system(cmd) == 0);
    }
}

/* Paths on a card are relative to the workspace: a copied workspace (cp -a) shows its own
 * metrics, run and loss curve (it showed the original's); a card of an older build (absolute
 * paths under the old home) is shown under the new home when the file is there, else as it
 * is; paths outside the workspace ("source", a run elsewhere) stay as they are. */
FTI_TEST(registry_card_paths_follow_copy) {
    char home[1024], twin2[1024], model[4096], json[8192], cpath[4200], cmd[16384], id[17];
    const char *path;
    fti_test_model_opts mo;
    fti_buf b;
    fti_json_doc *doc;
    fti_error err;
    snprintf(home, sizeof home, "%s", fti_test_tmp("twin"));
    snprintf(twin2, sizeof twin2, "%s", fti_test_tmp("twin2"));
    memset(&mo, 0, sizeof mo);
    mo.seed = 12;
    path = fti_test_model("p.gguf", &mo, NULL, NULL);
    REQUIRE(path != NULL);
    snprintf(model, sizeof model, "%s", path);
    snprintf(json, sizeof json, "{\"name\": \"p\", \"run\": \"%s/runs/k1\", \"metrics\": "
             "\"%s/runs/k1/metrics.jsonl\", \"loss_curve\": \"%s//runs/k1/loss.svg\", "
             "\"adapter\": \"/elsewhere/adapter.gguf\", \"source\": \"%s/runs/k1/x\"}",
             home, home, home, home);
    REQUIRE(fti_registry_add(home, model, json, strlen(json), id, &err) == FTI_OK);
    memset(&b, 0, sizeof b);
    snprintf(cpath, sizeof cpath, "%s/models/%s/card.json", home, id);
    REQUIRE(ra_text(cpath, &b));
    REQUIRE(fti_json_parse(b.data, b.len - 1, NULL, &doc, NULL, &err) == FTI_OK);
    { /* on disk: relative */
        const fti_json *c = fti_json_root(doc);
        char want[64];
        snprintf(want, sizeof want, "models/%s/model.gguf", id);
        CHECK_EQ_STR(fti_json_get_str(c, "path", ""), want);
        CHECK_EQ_STR(fti_json_get_str(c, "run", ""), "runs/k1");
        CHECK_EQ_STR(fti_json_get_str(c, "metrics", ""), "runs/k1/metrics.jsonl");
        CHECK_EQ_STR(fti_json_get_str(c, "loss_curve", ""), "runs/k1/loss.svg");
        CHECK_EQ_STR(fti_json_get_str(c, "adapter", ""), "/elsewhere/adapter.gguf");
    }
    fti_json_free(doc);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", home, twin2);
    REQUIRE(system(cmd) == 0);
    REQUIRE((doc = ra_card(twin2, id)) != NULL);
    {
        const fti_json *c = fti_json_root(doc);
        char want[4300];
        snprintf(want, sizeof want, "%s/runs/k1/metrics.jsonl", twin2);
        CHECK_EQ_STR(fti_json_get_str(c, "metrics", ""), want);
        snprintf(want, sizeof want, "%s/runs/k1", twin2);
        CHECK_EQ_STR(fti_json_get_str(c, "run", ""), want);
        CHECK_EQ_STR(fti_json_get_str(c, "adapter", ""), "/elsewhere/adapter.gguf");
        snprintf(want, sizeof want, "%s/runs/k1/x", home);
        CHECK_EQ_STR(fti_json_get_str(c, "source", ""), want); /* not a workspace file key */
    }
    fti_json_free(doc);
    if (fti_path_exists("build/fti-registry")) {
        snprintf(cmd, sizeof cmd, "build/fti-registry --home '%s' show %.8s | grep -q "
                 "'^metrics    %s/runs/k1/metrics.jsonl$'", twin2, id, twin2);
        CHECK(system(cmd) == 0);
    }
    /* a card as older builds wrote it: absolute paths under the original home */
    snprintf(json, sizeof json, "{\"id\": \"%s\", \"path\": \"%s/models/%s/model.gguf\", "
             "\"created\": \"2026-01-01T00:00:00Z\", \"run\": \"%s/runs/k1\", \"metrics\": "
             "\"%s/runs/k1/metrics.jsonl\", \"loss_curve\": \"%s/runs/k1/loss.svg\"}\n",
             id, home, id, home, home, home);
    snprintf(cpath, sizeof cpath, "%s/models/%s/card.json", twin2, id);
    REQUIRE(fti_test_write_file(cpath, json, strlen(json)) == 0);
    snprintf(cpath, sizeof cpath, "%s/runs/k1", twin2);
    REQUIRE(fti_mkdirs(cpath, NULL) == FTI_OK);
    snprintf(cpath, sizeof cpath, "%s/runs/k1/metrics.jsonl", twin2);
    REQUIRE(fti_test_write_file(cpath, "{}\n", 3) == 0);
    REQUIRE((doc = ra_card(twin2, id)) != NULL);
    {
        const fti_json *c = fti_json_root(doc);
        char want[4300];
        snprintf(want, sizeof want, "%s/runs/k1/metrics.jsonl", twin2); /* there: the copy's */
        CHECK_EQ_STR(fti_json_get_str(c, "metrics", ""), want);
        snprintf(want, sizeof want, "%s/runs/k1", twin2);
        CHECK_EQ_STR(fti_json_get_str(c, "run", ""), want);
        snprintf(want, sizeof want, "%s/runs/k1/loss.svg", home); /* not there: as it is */
        CHECK_EQ_STR(fti_json_get_str(c, "loss_curve", ""), want);
        snprintf(want, sizeof want, "%s/models/%s/model.gguf", twin2, id);
        CHECK_EQ_STR(fti_json_get_str(c, "path", ""), want);
    }
    fti_json_free(doc);
    fti_buf_free(&b);
}

/* A parent that is the model itself, or one of its descendants, is refused (FTI_ERR_INVALID,
 * nothing written): re-adding a registered file with --parent edits its card, and a model
 * "derived from" itself or from its own child made the lineage a cycle. */
FTI_TEST(registry_add_parent_cycle) {
    char home[4096], ma[4096], mb[4096], mc[4096], a[17], b[17], c[17], id[17];
    const char *path;
    fti_test_model_opts mo;
    fti_registry_add_opts o;
    fti_json_doc *doc;
    fti_error err;
    snprintf(home, sizeof home, "%s", fti_test_tmp("home"));
    memset(&mo, 0, sizeof mo);
    mo.seed = 21;
    REQUIRE((path = fti_test_model("a.gguf", &mo, NULL, NULL)) != NULL);
    snprintf(ma, sizeof ma, "%s", path);
    mo.seed = 22;
    REQUIRE((path = fti_test_model("b.gguf", &mo, NULL, NULL)) != NULL);
    snprintf(mb, sizeof mb, "%s", path);
    mo.seed = 23;
    REQUIRE((path = fti_test_model("c.gguf", &mo, NULL, NULL)) != NULL);
    snprintf(mc, sizeof mc, "%s", path);
    memset(&o, 0, sizeof o);
    REQUIRE(fti_registry_add_file(home, ma, &o, a, &err) == FTI_OK);
    /* itself (by id prefix, as a user types it) */
    {
        char pre[8];
        memcpy(pre, a, 6);
        pre[6] = 0;
        o.parent = pre;
        CHECK_EQ_INT(fti_registry_add_file(home, ma, &o, id, &err), FTI_ERR_INVALID);
        CHECK(strstr(err.msg, "itself") != NULL);
    }
    doc = ra_card(home, a);
    REQUIRE(doc != NULL);
    CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "parent", ""), ""); /* unchanged */
    fti_json_free(doc);
    /* a <- b <- c, then a "derived from" c: refused, naming the cycle */
    o.parent = a;
    REQUIRE(fti_registry_add_file(home, mb, &o, b, &err) == FTI_OK);
    o.parent = b;
    REQUIRE(fti_registry_add_file(home, mc, &o, c, &err) == FTI_OK);
    o.parent = c;
    CHECK_EQ_INT(fti_registry_add_file(home, ma, &o, id, &err), FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "derives from") != NULL);
    doc = ra_card(home, a);
    REQUIRE(doc != NULL);
    CHECK_EQ_STR(fti_json_get_str(fti_json_root(doc), "parent", ""), "");
    fti_json_free(doc);
    /* an unrelated parent is fine */
    o.parent = a;
    CHECK_OK(fti_registry_add_file(home, mc, &o, id, &err));
    CHECK_EQ_STR(id, c);
}

/* fti_registry_model_path: an alias, an id or a prefix to HOME/models/<id>/model.gguf (the
 * walkthrough's programs, fti-infer and fti-serve each wrote this themselves); a model whose
 * file gc removed says so, one whose file is missing names the path, an unknown ref is
 * resolve's NOT_FOUND. */
FTI_TEST(registry_model_path) {
    char home[4096], want[4200], card[4200], id[17];
    char *path = NULL;
    const char *removed = "{\"id\": \"abcd000000000002\", \"created\": \"2026-01-02T00:00:00Z\", "
                          "\"removed\": \"2026-02-01T00:00:00Z\"}";
    fti_error err;
    snprintf(home, sizeof home, "%s", fti_test_tmp("home"));
    REQUIRE(ra_fake(home, "abcd000000000001", "2026-01-01T00:00:00Z"));
    REQUIRE(ra_fake(home, "abcd000000000002", "2026-01-02T00:00:00Z"));
    snprintf(card, sizeof card, "%s/models/abcd000000000002/card.json", home);
    REQUIRE(fti_test_write_file(card, removed, strlen(removed)) == 0);
    /* no file yet: the path is named */
    CHECK_EQ_INT(fti_registry_model_path(home, "abcd000000000001", &path, id, &err),
                 FTI_ERR_NOT_FOUND);
    CHECK(path == NULL);
    CHECK(strstr(err.msg, "has no model file") != NULL);
    snprintf(want, sizeof want, "%s/models/abcd000000000001/model.gguf", home);
    CHECK(strstr(err.msg, want) != NULL);
    REQUIRE(fti_test_write_file(want, "GGUF", 4) == 0);
    CHECK_OK(fti_registry_promote(home, "abcd000000000001", "prod", &err));
    CHECK_OK(fti_registry_model_path(home, "prod", &path, id, &err));
    CHECK_EQ_STR(path, want);
    CHECK_EQ_STR(id, "abcd000000000001");
    fti_free(path);
    path = NULL;
    CHECK_OK(fti_registry_model_path(home, "abcd000000000001", &path, NULL, &err));
    CHECK_EQ_STR(path, want);
    fti_free(path);
    path = NULL;
    /* gc removed it */
    CHECK_EQ_INT(fti_registry_model_path(home, "abcd000000000002", &path, NULL, &err),
                 FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "removed by gc (2026-02-01T00:00:00Z)") != NULL);
    /* unknown and ambiguous refs: resolve's errors */
    CHECK_EQ_INT(fti_registry_model_path(home, "nope", &path, NULL, &err), FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "no model or alias 'nope'") != NULL);
    CHECK_EQ_INT(fti_registry_model_path(home, "abcd", &path, NULL, &err), FTI_ERR_INVALID);
    CHECK_EQ_INT(fti_registry_model_path(home, "prod", NULL, NULL, &err), FTI_ERR_INVALID);
    CHECK(path == NULL);
}
