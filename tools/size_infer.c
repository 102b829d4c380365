/* size_infer.c: the minimal inference-only program behind `make size`.
 *
 *     build/size_infer MODEL.gguf [PROMPT]
 *
 * Opens a model, encodes the prompt with the file's tokenizer, generates 64 tokens greedily to
 * /dev/null and reports the RAM generation needs: weights mapped from the file, the session's
 * KV cache and scratch, and the process's peak RSS. Built with -Os and FTI_NO_TRAIN,
 * FTI_NO_STORE, FTI_NO_SERVER (mk/infer.mk), so its text size is that of an embedded twin.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static int sink(void *user, const char *text, size_t n) {
    (void)user, (void)text, (void)n;
    return 0;
}

int main(int argc, char **argv) {
    fti_engine *e = NULL;
    fti_tokenizer *tok = NULL;
    fti_session *s = NULL;
    fti_sampler *smp = NULL;
    fti_prompt pr;
    fti_generate_opts go;
    fti_session_opts so;
    fti_error err;
    struct rusage ru;
    const char *text = argc > 2 ? argv[2] : "Once upon a time";
    size_t mem;
    if (argc < 2) {
        fprintf(stderr, "usage: size_infer MODEL.gguf [PROMPT]\n");
        return 2;
    }
    memset(&so, 0, sizeof so);
    so.kv_type = FTI_KV_F16; /* what fti-infer and fti-serve use by default */
    if (fti_engine_open(&e, argv[1], NULL, &err) != FTI_OK ||
        fti_engine_tokenizer(e, &tok, &err) != FTI_OK ||
        fti_session_create(&s, e, &so, &err) != FTI_OK ||
        fti_prompt_build(e, tok, NULL, text, strlen(text), NULL, 0, 128, &pr, &err) != FTI_OK) {
        fprintf(stderr, "size_infer: %s\n", err.msg);
        return 1;
    }
    mem = fti_session_mem_bytes(e, &so);
    fti_sampler_create(&smp, fti_engine_config(e)->vocab_size, NULL);
    memset(&go, 0, sizeof go);
    go.max_tokens = 64;
    go.ignore_eos = 1;
    go.on_text = sink;
    if (fti_generate(s, smp, pr.ids, pr.n, &go, NULL, &err) != FTI_OK) {
        fprintf(stderr, "size_infer: %s\n", err.msg);
        return 1;
    }
    getrusage(RUSAGE_SELF, &ru);
    printf("size: RAM to generate (%s, %s): weights mapped %.1f MB (file %.1f MB) + KV cache "
           "(f16) and scratch %.2f MB (context %lu); peak RSS %.1f MB\n",
           argv[1], fti_ggml_type_name(fti_engine_weight_type(e)),
           (double)(fti_engine_weight_bytes(e)) / 1e6,
           (double)fti_gguf_file_size(fti_engine_gguf(e)) / 1e6, (double)mem / 1e6,
           (unsigned long)fti_session_n_ctx(s), (double)ru.ru_maxrss / 1024.0);
    fti_prompt_free(&pr);
    fti_sampler_free(smp);
    fti_session_free(s);
    fti_tokenizer_free(tok);
    fti_engine_close(e);
    return 0;
}
