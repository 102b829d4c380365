/* fuzz_checkpoint.c: the trainer's checkpoint reader (part 07, fti_trainer_resume) on any file.
 *
 * A tiny trainer is made once per process. Byte 0 of the input holds flags, the rest is the
 * checkpoint without its trailing SHA-256, which the target appends (else the fuzzer never gets
 * past the digest). Flag bit 0 overwrites the fields that must match the trainer (magic, version,
 * flags, config, fingerprint, total steps, parameter counts) with the trainer's own, so the
 * fuzzer reaches the histories and tensors. Flag bit 1 leaves the digest off (the file as is).
 * Properties: never a crash or leak; a rejected file leaves the trainer's step unchanged; the
 * trainer still saves afterwards (checked every 64th input). Run with TMPDIR=/dev/shm: the
 * scratch files are rewritten for every input. FTI_FUZZ_SEED_OUT=path writes a valid seed (the
 * trainer's own checkpoint after 2 steps, in this input format). */
#ifndef FTI_NO_TRAIN
#include "fuzz_tmp.h"

static fti_trainer *fti_fuzz_ckpt_trainer(unsigned char hdr[160]) {
    static fti_trainer *t = NULL;
    static uint16_t tokens[400];
    static unsigned char saved[160];
    if (!t) {
        fti_model_config c;
        fti_train_opts o;
        fti_token_array a, b;
        size_t i;
        void *img = NULL;
        size_t len = 0;
        const char *path = fti_fuzz_tmp("seed.ckpt");
        for (i = 0; i < 400; i++) tokens[i] = (uint16_t)((i * 7 + i / 13) % 61);
        memset(&c, 0, sizeof c);
        c.vocab_size = 61;
        c.dim = 16;
        c.n_layers = 1;
        c.n_heads = 2;
        c.n_kv_heads = 1;
        c.hidden_dim = 24;
        c.context_len = 8;
        c.tied_embeddings = 1;
        memset(&o, 0, sizeof o);
        o.batch = 2;
        o.ctx = 8;
        o.max_steps = 50;
        o.eval_every = 2;
        o.eval_windows = 2;
        o.n_threads = 1;
        o.seed = 5;
        a.data = tokens;
        a.n_tokens = 300;
        a.token_bytes = 2;
        b.data = tokens + 300;
        b.n_tokens = 100;
        b.token_bytes = 2;
        if (fti_trainer_create(&c, NULL, &o, a, b, &t, NULL) != FTI_OK) return NULL;
        fti_trainer_step(t, NULL, NULL);
        fti_trainer_step(t, NULL, NULL);
        if (fti_trainer_save(t, path, NULL) != FTI_OK ||
            fti_file_read(path, 1u << 26, &img, &len, NULL) != FTI_OK || len < 160 + 32) {
            fti_free(img);
            fti_trainer_free(t);
            t = NULL;
            return NULL;
        }
        memcpy(saved, img, 160);
        if (getenv("FTI_FUZZ_SEED_OUT")) {
            FILE *f = fopen(getenv("FTI_FUZZ_SEED_OUT"), "wb");
            if (f) {
                fputc(0, f);
                fwrite(img, 1, len - 32, f);
                fclose(f);
            }
        }
        fti_free(img);
    }
    memcpy(hdr, saved, 160);
    return t;
}

static unsigned long fti_fuzz_ckpt_runs = 0;

int fti_fuzz_checkpoint(const uint8_t *data, size_t size) {
    unsigned char hdr[160];
    fti_trainer *t = fti_fuzz_ckpt_trainer(hdr);
    const char *path = fti_fuzz_tmp("fuzz.ckpt");
    unsigned char *img;
    size_t n;
    fti_train_stats before, after;
    fti_error err;
    fti_result r;
    if (!t || size < 1) return 0;
    n = size - 1;
    img = (unsigned char *)fti_malloc(n + 32);
    if (!img) return 0;
    if (n) memcpy(img, data + 1, n);
    if (data[0] & 1) {
        /* magic, version, flags, config, fingerprint: [0, 64); total steps [80, 88);
         * n_params, n_train: [136, 152) */
        memcpy(img, hdr, n < 64 ? n : 64);
        if (n > 80) memcpy(img + 80, hdr + 80, n < 88 ? n - 80 : 8);
        if (n > 136) memcpy(img + 136, hdr + 136, n < 152 ? n - 136 : 16);
    }
    if (!(data[0] & 2)) {
        fti_sha256_buf(img, n, img + n);
        n += 32;
    }
    if (fti_fuzz_write(path, img, n) == 0) {
        fti_trainer_stats_get(t, &before);
        r = fti_trainer_resume(t, path, &err);
        fti_trainer_stats_get(t, &after);
        if (r != FTI_OK) {
            FTI_FUZZ_CHECK(err.msg[0] != 0);
            FTI_FUZZ_CHECK(after.step == before.step);
        }
        /* a save is an fsync'ed atomic write: check it on every 64th input only */
        if ((fti_fuzz_ckpt_runs++ & 63) == 0)
            FTI_FUZZ_CHECK(fti_trainer_save(t, fti_fuzz_tmp("again.ckpt"), &err) == FTI_OK);
    }
    fti_free(img);
    return 0;
}
#else
int fti_fuzz_checkpoint(const uint8_t *data, size_t size) {
    (void)data;
    (void)size;
    return 0;
}
#endif
