/* tok_pretok_diff.c: compares fti_pretok_next with reference splits made by
 * tools/tok_pretok_diff.js (make check-tokenizer-pretok). Exit status 1 on any difference.
 *   build/tok_pretok_diff REF_JSON */
#define FTI_IMPLEMENTATION
#include "fti.h"
#include <stdio.h>

int main(int argc, char **argv) {
    static const char *const names[3] = {"gpt2", "cl100k_base", "o200k_base"};
    void *data = NULL;
    size_t len = 0;
    fti_json_doc *doc = NULL;
    fti_error err;
    const fti_json *c;
    int bad[3] = {0, 0, 0}, shown = 0, n = 0, k;
    if (argc != 2) {
        fprintf(stderr, "usage: tok_pretok_diff REF_JSON\n");
        return 2;
    }
    if (fti_file_read(argv[1], 0, &data, &len, &err) != FTI_OK ||
        fti_json_parse((const char *)data, len, NULL, &doc, NULL, &err) != FTI_OK) {
        fprintf(stderr, "tok_pretok_diff: %s\n", err.msg);
        return 1;
    }
    for (c = fti_json_root(doc)->child; c; c = c->next, n++) {
        const fti_json *t = fti_json_get(c, "text");
        for (k = 0; k < 3; k++) {
            const fti_json *ref = fti_json_get(c, names[k]), *e;
            size_t pos = 0;
            int ok = 1;
            if (!t || !ref || ref->type != FTI_JSON_ARRAY) continue;
            for (e = ref->child; e && ok; e = e->next) {
                size_t end = fti_pretok_next((fti_pretok)(k + 1), t->str, t->len, pos);
                ok = end - pos == (size_t)e->i;
                pos = end;
            }
            if (ok && pos == t->len) continue;
            bad[k]++;
            if (shown++ < 10) {
                size_t i;
                printf("%s differs on ", names[k]);
                for (i = 0; i < t->len; i++) printf("%02x", (unsigned char)t->str[i]);
                printf("\n  reference:");
                for (e = ref->child; e; e = e->next) printf(" %ld", (long)e->i);
                printf("\n  fti:      ");
                for (pos = 0; pos < t->len;) {
                    size_t end = fti_pretok_next((fti_pretok)(k + 1), t->str, t->len, pos);
                    printf(" %lu", (unsigned long)(end - pos));
                    pos = end;
                }
                printf("\n");
            }
        }
    }
    printf("pretok diff: %d strings; differences: gpt2 %d, cl100k %d, o200k %d\n", n, bad[0],
           bad[1], bad[2]);
    fti_json_free(doc);
    fti_free(data);
    return bad[0] || bad[1] || bad[2];
}
