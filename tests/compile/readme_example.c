/* twin_says.c: one completion from a GGUF model, greedy.
 *   cc -std=c99 -O2 twin_says.c -o twin_says -lm -lpthread
 *   ./twin_says twin/models/<id>/model.gguf "POLITICS, n." */
#define FTI_IMPLEMENTATION
#include "../../fti.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    fti_engine *e = NULL; fti_session *s = NULL; fti_sampler *smp = NULL;
    fti_tokenizer *tok = NULL; fti_tokens ids = {0}; fti_buf out = {0};
    fti_generate_opts go; fti_error err; int rc = 1;
    if (argc < 3) return 2;
    if (fti_engine_open(&e, argv[1], NULL, &err) != FTI_OK ||
        fti_engine_tokenizer(e, &tok, &err) != FTI_OK ||
        fti_session_create(&s, e, NULL, &err) != FTI_OK ||
        fti_sampler_create(&smp, fti_engine_config(e)->vocab_size, NULL) != FTI_OK) {
        fprintf(stderr, "%s\n", err.msg);
        goto done;
    }
    /* the document template the model was trained on: title, then the opening of the body */
    if (fti_template_encode(tok, NULL, 0, argv[2], strlen(argv[2]), 1, &ids) != FTI_OK) goto done;
    memset(&go, 0, sizeof go);
    go.max_tokens = 60;
    go.text = &out;
    if (fti_generate(s, smp, (const int32_t *)ids.ids, ids.len, &go, NULL, &err) != FTI_OK) {
        fprintf(stderr, "%s\n", err.msg);
        goto done;
    }
    printf("%s%s\n", argv[2], out.data ? out.data : "");
    rc = 0;
done:
    fti_buf_free(&out); fti_tokens_free(&ids); fti_sampler_free(smp);
    fti_session_free(s); fti_tokenizer_free(tok); fti_engine_close(e);
    return rc;
}
