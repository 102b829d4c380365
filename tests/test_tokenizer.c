/* test_tokenizer.c: conformance with tiktoken (golden ids in tests/data/tokenizer, rank files from
 * the data dir), round trips, batch independence, formats, hostile files, training. */

#define TOKDIR "tests/data/tokenizer/"

/* Loads a tiktoken rank file from the data dir; NULL (and a note) when the data is missing. */
static fti_tokenizer *tok_test_load(const char *file) {
    fti_tokenizer *tok = NULL;
    fti_error err;
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizers/tiktoken/%s", file);
    if (!fti_path_exists(fti_test_data(rel))) {
        fprintf(stderr, "    (skipped: %s not found)\n", fti_test_data(rel));
        return NULL;
    }
    if (fti_tokenizer_load(fti_test_data(rel), NULL, &tok, &err) != FTI_OK) {
        fprintf(stderr, "    load %s: %s\n", rel, err.msg);
        fti_test_failures++;
        return NULL;
    }
    return tok;
}

/* Compares the ids of text with a JSON array; prints the first difference. */
static int tok_test_same(const fti_tokenizer *tok, const char *what, const char *text, size_t len,
                         unsigned flags, const fti_json *ref) {
    fti_tokens t;
    size_t i, n = ref ? ref->len : 0;
    const fti_json *e;
    int ok = 1;
    memset(&t, 0, sizeof t);
    if (!ref || ref->type != FTI_JSON_ARRAY) {
        fprintf(stderr, "    %s: no reference ids\n", what);
        fti_test_failures++;
        return 0;
    }
    if (fti_tokenizer_encode(tok, text, len, flags, &t) != FTI_OK) {
        fprintf(stderr, "    %s: encode failed\n", what);
        fti_test_failures++;
        return 0;
    }
    for (i = 0, e = ref->child; i < n && i < t.len && e; i++, e = e->next)
        if ((int64_t)t.ids[i] != e->i) break;
    if (i < n || t.len != n) {
        fprintf(stderr, "    %s: ids differ at %lu (ours %lu ids, tiktoken %lu):", what,
                (unsigned long)i, (unsigned long)t.len, (unsigned long)n);
        {
            size_t k;
            for (k = i >= 3 ? i - 3 : 0; k < i + 4 && k < t.len; k++)
                fprintf(stderr, " %u", t.ids[k]);
            fprintf(stderr, " | ref:");
            for (k = i >= 3 ? i - 3 : 0, e = fti_json_at(ref, k); k < i + 4 && e; k++, e = e->next)
                fprintf(stderr, " %ld", (long)e->i);
            fprintf(stderr, "\n");
        }
        fti_test_failures++;
        ok = 0;
    }
    /* and back */
    {
        fti_buf b;
        memset(&b, 0, sizeof b);
        CHECK_OK(fti_tokenizer_decode(tok, t.ids, t.len, &b));
        if (b.len != len || (len && memcmp(b.data, text, len) != 0)) {
            fprintf(stderr, "    %s: decode does not round-trip\n", what);
            fti_test_failures++;
            ok = 0;
        }
        fti_buf_free(&b);
    }
    fti_tokens_free(&t);
    return ok;
}

static void tok_test_conformance(const char *rank_file, const char *enc, int with_devils) {
    static const char *const texts[] = {
        "tricky_unicode.txt", "moby_dick_chapter_1.txt", "sotu_1790_george_washington_n.txt",
        "email_plain_ham__easy-ham-1_00041.eml", "fortunes_art.txt"};
    fti_tokenizer *tok = tok_test_load(rank_file);
    fti_json_doc *doc = NULL;
    void *data = NULL;
    size_t len = 0, i, n_cases = 0;
    const fti_json *c;
    fti_error err;
    if (!tok) return;
    /* tricky cases */
    REQUIRE(fti_file_read(TOKDIR "tricky_cases.json", 0, &data, &len, &err) == FTI_OK);
    REQUIRE(fti_json_parse((const char *)data, len, NULL, &doc, NULL, &err) == FTI_OK);
    for (c = fti_json_root(doc)->child; c; c = c->next) {
        const fti_json *text = fti_json_get(c, "text"), *ids = fti_json_get(c, "ids");
        char what[128];
        snprintf(what, sizeof what, "%s %s", enc, fti_json_get_str(c, "name", "?"));
        REQUIRE(text && ids);
        tok_test_same(tok, what, text->str, text->len, 0, fti_json_get(ids, enc));
        if (fti_json_get(c, "special_all")) {
            snprintf(what, sizeof what, "%s %s (special)", enc, fti_json_get_str(c, "name", "?"));
            tok_test_same(tok, what, text->str, text->len, FTI_TOK_ALLOW_SPECIAL,
                          fti_json_get(fti_json_get(c, "special_all"), enc));
        }
        n_cases++;
    }
    CHECK(n_cases >= 35);
    fti_json_free(doc);
    fti_free(data);
    /* texts */
    for (i = 0; i < sizeof texts / sizeof texts[0] + (with_devils ? 1 : 0); i++) {
        char path[512], jpath[600];
        void *tdata = NULL, *jdata = NULL;
        size_t tlen = 0, jlen = 0;
        if (i < sizeof texts / sizeof texts[0]) {
            snprintf(path, sizeof path, TOKDIR "%s", texts[i]);
            snprintf(jpath, sizeof jpath, TOKDIR "%s.%s.json", texts[i], enc);
        } else {
            snprintf(path, sizeof path, "%s",
                     fti_test_data("tokenizers/ref/devils_dictionary.txt"));
            snprintf(jpath, sizeof jpath, "%s.%s.json", path, enc);
            if (!fti_path_exists(path)) continue;
        }
        CHECK_OK(fti_file_read(path, 0, &tdata, &tlen, &err));
        CHECK_OK(fti_file_read(jpath, 0, &jdata, &jlen, &err));
        if (tdata && jdata &&
            fti_json_parse((const char *)jdata, jlen, NULL, &doc, NULL, &err) == FTI_OK) {
            tok_test_same(tok, path, (const char *)tdata, tlen, 0, fti_json_root(doc));
            fti_json_free(doc);
        } else {
            fti_test_failures++;
        }
        fti_free(tdata);
        fti_free(jdata);
    }
    fti_tokenizer_free(tok);
}

FTI_TEST(tokenizer_conformance_gpt2) { tok_test_conformance("r50k_base.tiktoken", "gpt2", 1); }
FTI_TEST(tokenizer_conformance_cl100k) {
    tok_test_conformance("cl100k_base.tiktoken", "cl100k_base", 1);
}
FTI_TEST(tokenizer_conformance_o200k) {
    tok_test_conformance("o200k_base.tiktoken", "o200k_base", 1);
}

/* Characters assigned in Unicode 15.0-16.0, which tiktoken's tables know and Python 14's do not
 * (see tools/gen_unicode_tables.py): ids from npm tiktoken 1.0.22. */
FTI_TEST(tokenizer_conformance_unicode16) {
    static const char *const files[3] = {"r50k_base.tiktoken", "cl100k_base.tiktoken",
                                         "o200k_base.tiktoken"};
    static const char *const encs[3] = {"gpt2", "cl100k_base", "o200k_base"};
    fti_json_doc *doc = NULL;
    void *data = NULL;
    size_t len = 0;
    fti_error err;
    int k;
    REQUIRE(fti_file_read(TOKDIR "unicode16_cases.json", 0, &data, &len, &err) == FTI_OK);
    REQUIRE(fti_json_parse((const char *)data, len, NULL, &doc, NULL, &err) == FTI_OK);
    for (k = 0; k < 3; k++) {
        fti_tokenizer *tok = tok_test_load(files[k]);
        const fti_json *c;
        int n = 0;
        if (!tok) continue;
        for (c = fti_json_get(fti_json_root(doc), "cases")->child; c; c = c->next, n++) {
            const fti_json *text = fti_json_get(c, "text");
            char what[96];
            snprintf(what, sizeof what, "%s unicode16 case %d", encs[k], n);
            tok_test_same(tok, what, text->str, text->len, 0,
                          fti_json_get(fti_json_get(c, "ids"), encs[k]));
        }
        CHECK(n >= 200);
        fti_tokenizer_free(tok);
    }
    fti_json_free(doc);
    fti_free(data);
}
