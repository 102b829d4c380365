/* fuzz_manifest.c: the feature store's version manifest (part 04, store/versions/<id>.json) from
 * any bytes. A small store is made once per process (one ingest of three text files, no
 * tokenizer); each input replaces the manifest of its version, which is then read by every
 * call that parses manifests: verify (one version and the whole store), list, dataset open
 * (which follows the manifest to the docs, index, shards and counts objects) and the
 * dataset's accessors. Nothing may crash or leak; a manifest that names another id never
 * verifies. FTI_FUZZ_SEED_OUT=path writes the real manifest as a seed. */
/* tests-need: !defined(FTI_NO_STORE) */
#include "fuzz_tmp.h"

static const char *fti_fuzz_manifest_home(char id[65]) {
    static char vid[65];
    static int state = 0; /* 0 = not made, 1 = ready, -1 = failed */
    const char *home = fti_fuzz_tmp("store");
    if (state == 0) {
        const char *in = fti_fuzz_tmp("store-in");
        char path[1200];
        const char *paths[1];
        fti_ingest_opts o;
        int i;
        state = -1;
        fti_mkdirs(in, NULL);
        for (i = 0; i < 3; i++) {
            char text[256];
            snprintf(path, sizeof path, "%s/note%d.txt", in, i);
            snprintf(text, sizeof text,
                     "Note %d. A cynic is a blackguard whose faulty vision sees things as they "
                     "are, not as they ought to be, said the note number %d.\n", i, i * 7);
            if (fti_fuzz_write(path, text, strlen(text)) != 0) return NULL;
        }
        memset(&o, 0, sizeof o);
        o.no_tokenizer = 1;
        o.n_threads = 1;
        paths[0] = in;
        if (fti_store_ingest(home, paths, 1, &o, vid, NULL, NULL) != FTI_OK) return NULL;
        if (getenv("FTI_FUZZ_SEED_OUT")) {
            void *m = NULL;
            size_t len = 0;
            snprintf(path, sizeof path, "%s/store/versions/%s.json", home, vid);
            if (fti_file_read(path, 1u << 20, &m, &len, NULL) == FTI_OK)
                fti_fuzz_write(getenv("FTI_FUZZ_SEED_OUT"), m, len);
            fti_free(m);
        }
        state = 1;
    }
    if (state != 1) return NULL;
    memcpy(id, vid, 65);
    return home;
}

int fti_fuzz_manifest(const uint8_t *data, size_t size) {
    char id[65], path[1200];
    const char *home = fti_fuzz_manifest_home(id);
    fti_buf report;
    fti_error err;
    fti_dataset *ds = NULL;
    char **ids = NULL;
    size_t n_ids = 0;
    if (!home) return 0;
    snprintf(path, sizeof path, "%s/store/versions/%s.json", home, id);
    if (fti_fuzz_write(path, data, size) != 0) return 0;
    memset(&report, 0, sizeof report);
    if (fti_store_verify(home, id, &report, &err) == FTI_OK) {
        fti_json_doc *d = NULL;
        /* it verified: the manifest names this id */
        FTI_FUZZ_CHECK(fti_json_parse((const char *)data, size, NULL, &d, NULL, NULL) == FTI_OK);
        FTI_FUZZ_CHECK(strcmp(fti_json_get_str(fti_json_root(d), "id", ""), id) == 0);
        fti_json_free(d);
    }
    report.len = 0;
    (void)fti_store_verify(home, NULL, &report, &err);
    fti_buf_free(&report);
    if (fti_store_list(home, &ids, &n_ids, &err) == FTI_OK) fti_store_list_free(ids, n_ids);
    if (fti_dataset_open(&ds, home, id, &err) == FTI_OK) {
        const fti_dataset_stats *st = fti_dataset_get_stats(ds);
        const fti_bm25 *ix = fti_dataset_index(ds);
        fti_search_hit hits[4];
        (void)st;
        (void)fti_dataset_manifest(ds);
        (void)fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
        (void)fti_dataset_shard(ds, FTI_SPLIT_VAL);
        if (ix) (void)fti_bm25_query(ix, "cynic note", 10, 4, hits);
        fti_dataset_close(ds);
    } else {
        FTI_FUZZ_CHECK(err.msg[0] != 0);
    }
    return 0;
}
