/* twin_says.c: one completion from a GGUF model, greedy.
 *   cc -std=c99 -O2 twin_says.c -o twin_says -lm -lpthread
 *   ./twin_says twin/models/<id>/model.gguf "POLITICS, n." */
#define FTI_IMPLEMENTATION
#include "../../fti.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    fti_engine *e = NULL; fti_session *s = NULL; fti_sampler *smp = NULL;
    fti_tokenizer *tok = NULL; fti_prompt pr = {0}; fti_buf out = {0};
    fti_generate_opts go; fti_error err = {FTI_OK, ""}; int rc = 1;
    size_t n_ctx, n_gen = 60; /* tokens to generate: at most half the context */
    if (argc < 3) return 2;
    if (fti_engine_open(&e, argv[1], NULL, &err) != FTI_OK ||
        fti_engine_tokenizer(e, &tok, &err) != FTI_OK ||
        fti_session_create(&s, e, NULL, &err) != FTI_OK ||
        fti_sampler_create(&smp, fti_engine_config(e)->vocab_size, NULL) != FTI_OK) {
        fprintf(stderr, "%s\n", err.msg[0] ? err.msg : "out of memory");
        goto done;
    }
    /* the prompt: the document template the model was trained on, the text opening a body
     * (cut from the left if it leaves no room for the tokens to generate) */
    n_ctx = fti_session_n_ctx(s);
    if (n_gen > n_ctx / 2) n_gen = n_ctx / 2; /* (n_ctx - 60 would wrap below 60) */
    if (fti_prompt_build(e, tok, NULL, argv[2], strlen(argv[2]), NULL, 0, n_ctx - n_gen, &pr,
                         &err) != FTI_OK) {
        fprintf(stderr, "%s\n", err.msg);
        goto done;
    }
    memset(&go, 0, sizeof go);
    go.max_tokens = n_gen;
    go.text = &out;
    if (fti_generate(s, smp, pr.ids, pr.n, &go, NULL, &err) != FTI_OK) {
        fprintf(stderr, "%s\n", err.msg);
        goto done;
    }
    printf("%s%s\n", argv[2], out.data ? out.data : "");
    rc = 0;
done:
    fti_buf_free(&out); fti_prompt_free(&pr); fti_sampler_free(smp);
    fti_session_free(s); fti_tokenizer_free(tok); fti_engine_close(e);
    return rc;
}
