/* fuzz_ngram.c: the author memory's file reader (part 08, fti_ngram_load) on any file.
 *
 * Byte 0 of the input holds flags, the rest is the file without its trailing 64-bit hash, which
 * the target appends (else the fuzzer never gets past the hash); flag bit 0 leaves the hash off
 * (the file as is). Properties: never a crash or leak; a rejected file has an error message and
 * no model; an accepted model answers fti_ngram_probs for contexts drawn from the input with
 * finite, non-negative probabilities and a confidence within [0, order), its counts match what
 * fti_ngram_count reports, and it saves and loads back with the same tables (checked every 16th
 * accepted input: a save is an fsync'ed atomic write). Run with TMPDIR=/dev/shm: the scratch
 * file is rewritten for every input. FTI_FUZZ_SEED_OUT=path writes a valid seed (an order-3
 * model of a short token sequence, in this input format). */
#include "fuzz_tmp.h"
#include <float.h>

#ifndef FTI__NG_SEED
#define FTI__NG_SEED 0x6e6772616dull
#endif

/* The seed: an order-3 model over 13 ids of a 9-token vocabulary, saved, the hash taken off. */
static void fti_fuzz_ngram_seed(void) {
    static const uint32_t ids[] = {1, 2, 3, 1, 2, 4, 1, 2, 3, 5, 8, 0, 1};
    fti_ngram_opts o;
    fti_ngram *m = NULL;
    void *img = NULL;
    size_t len = 0;
    const char *path = fti_fuzz_tmp("seed.ngram"), *out = getenv("FTI_FUZZ_SEED_OUT");
    FILE *f;
    o.order = 3;
    if (!out || fti_ngram_build(&m, ids, sizeof ids / sizeof ids[0], 9, &o, NULL) != FTI_OK)
        return;
    if (fti_ngram_save(m, path, NULL) == FTI_OK &&
        fti_file_read(path, 1u << 20, &img, &len, NULL) == FTI_OK && len > 8 &&
        (f = fopen(out, "wb")) != NULL) {
        fputc(0, f);
        fwrite(img, 1, len - 8, f);
        fclose(f);
    }
    fti_free(img);
    fti_ngram_free(m);
}

static unsigned long fti_fuzz_ngram_saves = 0;

int fti_fuzz_ngram(const uint8_t *data, size_t size) {
    static int seeded = 0;
    const char *path = fti_fuzz_tmp("fuzz.ngram");
    unsigned char *img;
    size_t n, V, i, w;
    fti_ngram *m = NULL, *m2 = NULL;
    fti_error err;
    fti_result r;
    int k;
    if (!seeded) {
        seeded = 1;
        fti_fuzz_ngram_seed();
    }
    if (size < 1) return 0;
    n = size - 1;
    img = (unsigned char *)fti_malloc(n + 8);
    if (!img) return 0;
    if (n) memcpy(img, data + 1, n);
    if (!(data[0] & 1)) {
        fti_store_u64(img + n, fti_hash64(img, n, FTI__NG_SEED));
        n += 8;
    }
    if (fti_fuzz_write(path, img, n) != 0) {
        fti_free(img);
        return 0;
    }
    fti_free(img);
    r = fti_ngram_load(&m, path, &err);
    if (r != FTI_OK) {
        FTI_FUZZ_CHECK(err.msg[0] != 0 && m == NULL);
        return 0;
    }
    FTI_FUZZ_CHECK(m != NULL);
    V = fti_ngram_vocab(m);
    FTI_FUZZ_CHECK(V >= 1 && fti_ngram_order(m) >= 1 && fti_ngram_order(m) <= FTI_NGRAM_MAX_ORDER);
    /* probabilities over the whole vocabulary: only for vocabularies a test can afford */
    if (V <= 4096) {
        float *p = (float *)fti_malloc(V * sizeof(float));
        int32_t ctx[FTI_NGRAM_MAX_ORDER + 2];
        size_t start;
        for (start = 1; p && start + 1 < size && start < 64; start += 7) {
            size_t nc = (size_t)(data[start] % (FTI_NGRAM_MAX_ORDER + 2)), c;
            int conf;
            for (c = 0; c < nc; c++) /* ids from the input, some out of range on purpose */
                ctx[c] = (int32_t)(data[(start + 1 + c) % size] % (V + 2)) - 1;
            conf = fti_ngram_probs(m, ctx, nc, p);
            FTI_FUZZ_CHECK(conf >= 0 && conf < fti_ngram_order(m));
            for (w = 0; w < V; w++) FTI_FUZZ_CHECK(p[w] >= 0.0f && p[w] <= FLT_MAX);
        }
        fti_free(p);
    }
    /* saved and read back: the same tables */
    if ((fti_fuzz_ngram_saves++ & 15) == 0) {
        const char *again = fti_fuzz_tmp("again.ngram");
        FTI_FUZZ_CHECK(fti_ngram_save(m, again, &err) == FTI_OK);
        FTI_FUZZ_CHECK(fti_ngram_load(&m2, again, &err) == FTI_OK);
        FTI_FUZZ_CHECK(fti_ngram_order(m2) == fti_ngram_order(m) && fti_ngram_vocab(m2) == V &&
                       fti_ngram_n_tokens(m2) == fti_ngram_n_tokens(m));
        for (k = 1; k <= fti_ngram_order(m); k++)
            FTI_FUZZ_CHECK(fti_ngram_count(m2, k) == fti_ngram_count(m, k));
        for (i = 0; i < (size_t)fti_ngram_order(m); i++)
            FTI_FUZZ_CHECK(fti_ngram_lambda(m2, (int)i) == fti_ngram_lambda(m, (int)i));
        fti_ngram_free(m2);
    }
    fti_ngram_free(m);
    return 0;
}
