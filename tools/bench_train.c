/* bench_train: tokens/s of a full training step (forward, backward, clip, AdamW) of the
 * stories15M shape (vocab 4096, batch 8 x context 256), the measurement behind `make bench-train`.
 *
 *   build/bench_train [--threads N] [--steps N] [--vocab V] [--batch B] [--ctx T] [--preset P]
 *                     [--bf16 1]   (bf16 matmuls with fp32 master weights: opts.bf16)
 *   build/bench_train --text FILE --curve STEPS [--preset P] [--bf16 1] [--lr X] [--seed S] ...
 *                     [--batch B] [--ctx T] [--eval-every N]
 *       loss curve on real text (bytes as tokens, vocab 256; the last 10% is validation):
 *       prints "curve step=S loss=L" every 10 steps, "curve val step=S loss=V" after each
 *       validation pass (every N steps and at the end, 64 windows) and "curve val_loss=V" at
 *       the end, to compare bf16 matmuls against fp32 (same seed, same batches);
 *       tools/bench_train_bf16_loss.sh runs it over seeds (`make bench-train-bf16-loss`).
 *
 * Prints one line "fti threads=N tokens/s=X gflops=Y fraction=Z peak_gflops=P ... rss_mb=M
 * acts_mb=A step_s=S": the best step of `steps` after one warm-up step, the achieved FLOP/s
 * (counted analytically: 3 x the forward's matmul and attention FLOPs), its fraction of this
 * machine's fp32 FMA peak at N threads (measured first, tools/bench_peak.h), the peak RSS and the
 * activation memory of one (batch, ctx) step (fti_model_acts_bytes; the rest of the RSS is
 * mostly parameters, gradients and the two AdamW moments, 16 bytes per parameter).
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_peak.h"

int main(int argc, char **argv) {
    fti_model_config cfg;
    fti_train_opts o;
    fti_token_array tr, none;
    fti_trainer *t = NULL;
    fti_error err;
    const char *preset = "stories15M";
    size_t vocab = 4096, batch = 8, ctx = 256, n_tok = 1 << 20, i;
    int threads = 1, steps = 3, bf16 = 0, curve = 0, eval_every = 0, s;
    const char *text = NULL;
    float lr = 1e-4f;
    uint64_t seed = 1;
    uint16_t *data;
    fti_rng rng;
    double best = 1e30, flops_tok, C, L, F, V, peak = 0, acts_mb = 0;
    struct rusage ru;
    for (i = 1; i + 1 < (size_t)argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--threads") == 0) threads = atoi(v);
        else if (strcmp(k, "--steps") == 0) steps = atoi(v);
        else if (strcmp(k, "--vocab") == 0) vocab = (size_t)atol(v);
        else if (strcmp(k, "--batch") == 0) batch = (size_t)atol(v);
        else if (strcmp(k, "--ctx") == 0) ctx = (size_t)atol(v);
        else if (strcmp(k, "--preset") == 0) preset = v;
        else if (strcmp(k, "--bf16") == 0) bf16 = atoi(v);
        else if (strcmp(k, "--text") == 0) text = v;
        else if (strcmp(k, "--curve") == 0) curve = atoi(v);
        else if (strcmp(k, "--lr") == 0) lr = (float)atof(v);
        else if (strcmp(k, "--seed") == 0) seed = (uint64_t)atol(v);
        else if (strcmp(k, "--eval-every") == 0) eval_every = atoi(v);
        else {
            fprintf(stderr, "usage: bench_train [--threads N] [--steps N] [--vocab V] [--batch B] "
                    "[--ctx T] [--preset P] [--bf16 0|1] [--text FILE --curve STEPS] [--lr X] "
                    "[--seed S] [--eval-every N]\n");
            return 2;
        }
    }
    if (text) { /* bytes of a text file as tokens */
        FILE *f = fopen(text, "rb");
        long len;
        if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 1024) {
            fprintf(stderr, "bench_train: cannot read %s\n", text);
            return 1;
        }
        rewind(f);
        n_tok = (size_t)len;
        data = (uint16_t *)malloc(n_tok * sizeof(uint16_t));
        if (!data) return 1;
        for (i = 0; i < n_tok; i++) data[i] = (uint16_t)(fgetc(f) & 0xff);
        fclose(f);
        vocab = 256;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.vocab_size = (uint32_t)vocab;
    if (fti_model_preset(preset, &cfg, NULL) != FTI_OK) return 2;
    if (!text) {
        data = (uint16_t *)malloc(n_tok * sizeof(uint16_t));
        if (!data) return 1;
        fti_rng_seed(&rng, 1, 1);
        for (i = 0; i < n_tok; i++) data[i] = (uint16_t)fti_rng_below(&rng, (uint32_t)vocab);
    }
    memset(&o, 0, sizeof(o));
    o.batch = batch;
    o.ctx = ctx;
    o.max_steps = curve > 0 ? (uint64_t)curve : 1000;
    o.lr = lr;
    o.n_threads = threads;
    o.seed = seed;
    o.bf16 = bf16;
    tr.data = data;
    tr.n_tokens = n_tok;
    tr.token_bytes = 2;
    memset(&none, 0, sizeof(none));
    if (text) { /* the last 10% validates */
        none = tr;
        tr.n_tokens = n_tok - n_tok / 10;
        none.data = data + tr.n_tokens;
        none.n_tokens = n_tok - tr.n_tokens;
        o.eval_windows = 64;
        o.eval_every = eval_every > 0 ? (uint64_t)eval_every : 0;
    }
    if (curve <= 0) { /* the machine's peak, before the trainer's threads exist */
        fti_model_acts *acts = NULL;
        peak = bench_peak_gflops(threads);
        /* the activations of one step (the trainer plans the same (batch, ctx) block) */
        if (fti_model_acts_create(&cfg, batch, ctx, &acts, &err) == FTI_OK)
            acts_mb = (double)fti_model_acts_bytes(acts) / (1024.0 * 1024.0);
        fti_model_acts_free(acts);
    }
    if (fti_trainer_create(&cfg, NULL, &o, tr, none, &t, &err) != FTI_OK) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    if (curve > 0) {
        fti_train_stats st;
        memset(&st, 0, sizeof st);
        while (!fti_trainer_done(t)) {
            if (fti_trainer_step(t, &st, &err) != FTI_OK) {
                fprintf(stderr, "bench_train: %s\n", err.msg);
                return 1;
            }
            if (st.step % 10 == 0 || fti_trainer_done(t))
                printf("curve%s step=%llu loss=%.4f\n", bf16 ? "-bf16" : "",
                       (unsigned long long)st.step, st.loss);
            if (st.evaluated)
                printf("curve%s val step=%llu loss=%.4f\n", bf16 ? "-bf16" : "",
                       (unsigned long long)st.step, st.val_loss);
        }
        printf("curve%s val_loss=%.4f\n", bf16 ? "-bf16" : "", st.val_loss);
        fti_trainer_free(t);
        free(data);
        return 0;
    }
    for (s = 0; s <= steps; s++) {
        fti_train_stats st;
        uint64_t t0 = fti_time_ns();
        double dt;
        if (fti_trainer_step(t, &st, &err) != FTI_OK) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
        dt = (double)(fti_time_ns() - t0) / 1e9;
        if (s > 0 && dt < best) best = dt;
    }
    C = cfg.dim;
    L = cfg.n_layers;
    F = cfg.hidden_dim;
    V = cfg.vocab_size;
    /* forward per token: 2 x matmul parameters + QK^T and PV over ctx/2 positions on average */
    flops_tok = 3.0 * (2.0 * (L * (2.0 * C * C + 2.0 * C * C * cfg.n_kv_heads / cfg.n_heads +
                                    3.0 * C * F) + V * C) +
                       L * 2.0 * 2.0 * C * (double)ctx / 2.0);
    getrusage(RUSAGE_SELF, &ru);
    {
        double tps = (double)(batch * ctx) / best;
        double gf = tps * flops_tok / 1e9;
        printf("fti%s threads=%d tokens/s=%.1f gflops=%.1f fraction=%.3f peak_gflops=%.1f "
               "mflop/token=%.1f rss_mb=%.0f acts_mb=%.0f step_s=%.3f\n",
               bf16 ? "-bf16" : "", threads, tps, gf, peak > 0 ? gf / peak : 0.0, peak,
               flops_tok / 1e6, (double)ru.ru_maxrss / 1024.0, acts_mb, best);
    }
    fti_trainer_free(t);
    free(data);
    return 0;
}
