/* fuzz_json.c: the JSON reader on any bytes; what it accepts, the writer re-emits and the reader
 * accepts again with the same shape. */
static size_t fti__fuzz_json_count(const fti_json *j) {
    size_t n = 1;
    const fti_json *c;
    for (c = j->child; c; c = c->next) n += fti__fuzz_json_count(c);
    return n;
}

static void fti__fuzz_json_write(fti_jw *w, const fti_json *j) {
    const fti_json *c;
    switch (j->type) {
    case FTI_JSON_NULL: fti_jw_null(w); break;
    case FTI_JSON_TRUE: fti_jw_bool(w, 1); break;
    case FTI_JSON_FALSE: fti_jw_bool(w, 0); break;
    case FTI_JSON_NUMBER: fti_jw_num(w, j->num); break;
    case FTI_JSON_STRING: fti_jw_strn(w, j->str, j->len); break;
    case FTI_JSON_ARRAY:
        fti_jw_arr_begin(w);
        for (c = j->child; c; c = c->next) fti__fuzz_json_write(w, c);
        fti_jw_arr_end(w);
        break;
    case FTI_JSON_OBJECT:
        fti_jw_obj_begin(w);
        for (c = j->child; c; c = c->next) {
            fti_jw_keyn(w, c->key, c->key_len);
            fti__fuzz_json_write(w, c);
        }
        fti_jw_obj_end(w);
        break;
    }
}

int fti_fuzz_json(const uint8_t *data, size_t size) {
    fti_json_doc *doc = NULL, *doc2 = NULL;
    fti_error err;
    fti_buf out = {0};
    fti_jw w;
    fti_json_opts o;
    memset(&o, 0, sizeof o);
    o.max_depth = 60; /* the writer nests up to 63 */
    if (fti_json_parse((const char *)data, size, &o, &doc, NULL, &err) != FTI_OK) {
        FTI_FUZZ_CHECK(doc == NULL);
        return 0;
    }
    fti_jw_init(&w, &out, 0);
    fti__fuzz_json_write(&w, fti_json_root(doc));
    FTI_FUZZ_CHECK(!out.oom);
    FTI_FUZZ_CHECK(fti_json_parse(out.data, out.len, &o, &doc2, NULL, &err) == FTI_OK);
    FTI_FUZZ_CHECK(fti__fuzz_json_count(fti_json_root(doc)) ==
                   fti__fuzz_json_count(fti_json_root(doc2)));
    fti_json_free(doc2);
    fti_json_free(doc);
    fti_buf_free(&out);
    return 0;
}
