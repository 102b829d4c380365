/* tok_tiktoken_diff.c: fti's ids against npm tiktoken's for the random strings written by
 * tools/tok_tiktoken_diff.js (make bench-tokenizer runs it). Exit status 1 on any difference.
 *   build/tok_tiktoken_diff DATA_DIR REF_JSON */
#define FTI_IMPLEMENTATION
#include "fti.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    static const char *const names[3] = {"gpt2", "cl100k_base", "o200k_base"};
    static const char *const files[3] = {"r50k_base", "cl100k_base", "o200k_base"};
    fti_tokenizer *tok[3] = {NULL, NULL, NULL};
    void *data = NULL;
    size_t len = 0;
    fti_json_doc *doc = NULL;
    fti_error err;
    const fti_json *c;
    int bad[3] = {0, 0, 0}, shown = 0, n = 0, k;
    char path[1024];
    if (argc != 3) {
        fprintf(stderr, "usage: tok_tiktoken_diff DATA_DIR REF_JSON\n");
        return 2;
    }
    for (k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/tokenizers/tiktoken/%s.tiktoken", argv[1], files[k]);
        if (fti_tokenizer_load(path, NULL, &tok[k], &err) != FTI_OK) {
            fprintf(stderr, "tok_tiktoken_diff: %s\n", err.msg);
            return 1;
        }
    }
    if (fti_file_read(argv[2], 0, &data, &len, &err) != FTI_OK ||
        fti_json_parse((const char *)data, len, NULL, &doc, NULL, &err) != FTI_OK) {
        fprintf(stderr, "tok_tiktoken_diff: %s\n", err.msg);
        return 1;
    }
    for (c = fti_json_root(doc)->child; c; c = c->next, n++) {
        const fti_json *t = fti_json_get(c, "text");
        for (k = 0; k < 3 && t; k++) {
            const fti_json *ref = fti_json_get(c, names[k]), *e;
            fti_tokens ids;
            size_t i = 0;
            int ok = ref != NULL;
            memset(&ids, 0, sizeof ids);
            if (fti_tokenizer_encode(tok[k], t->str, t->len, 0, &ids) != FTI_OK) ok = 0;
            for (e = ref ? ref->child : NULL; e && ok; e = e->next, i++)
                ok = i < ids.len && ids.ids[i] == (uint32_t)e->i;
            if (i != ids.len) ok = 0;
            if (!ok) {
                bad[k]++;
                if (shown++ < 8) {
                    printf("%s differs on ", names[k]);
                    for (i = 0; i < t->len; i++) printf("%02x", (unsigned char)t->str[i]);
                    printf("\n  tiktoken:");
                    for (e = ref ? ref->child : NULL; e; e = e->next) printf(" %ld", (long)e->i);
                    printf("\n  fti:     ");
                    for (i = 0; i < ids.len; i++) printf(" %u", (unsigned)ids.ids[i]);
                    printf("\n");
                }
            }
            fti_tokens_free(&ids);
        }
    }
    printf("tiktoken diff: %d random strings; differences: gpt2 %d, cl100k %d, o200k %d\n", n,
           bad[0], bad[1], bad[2]);
    for (k = 0; k < 3; k++) fti_tokenizer_free(tok[k]);
    fti_json_free(doc);
    fti_free(data);
    return bad[0] || bad[1] || bad[2];
}
