/* bench_serve_step.c: the server's decode step without HTTP, in CPU time (robust on a busy
 * machine): B sessions with short prompts, then STEPS steps of what fti-serve's model generator
 * does per step: every sequence samples (temperature 0.8, as fti-loadgen asks) and all decode in
 * one fti_session_eval_batch (B = 1: fti_session_eval). Prints the CPU time per token split into
 * sampling and decoding, and tokens per CPU second.
 *
 *     make build/bench_serve_step
 *     build/bench_serve_step MODEL [--batch B] [--steps N] [--threads T] [--kv f16|f32|q8]
 *                            [--reps R]
 *
 * (MODEL e.g. from `build/bench_infer make stories15M q8_0 FILE`; best of R rounds.)
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    size_t B = 16, steps = 64, b, st, V;
    int threads = 1, reps = 3, rep, i, kv = FTI_KV_F16;
    fti_engine *e = NULL;
    fti_session **ss;
    fti_sampler **sm;
    fti_batch *bt = NULL;
    fti_pool *pool;
    fti_session_opts so;
    fti_error err;
    int32_t *tok, prompt[12];
    double best_s = 1e30, best_d = 1e30;
    if (argc < 2) {
        fprintf(stderr, "usage: bench_serve_step MODEL [--batch B] [--steps N] [--threads T] "
                        "[--kv f16|f32|q8] [--reps R]\n");
        return 2;
    }
    for (i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) B = (size_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = (size_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kv")) kv = fti_kv_type_parse(argv[i + 1]);
    }
    if (B == 0 || kv < 0) return 2;
    pool = threads > 1 ? fti_pool_create(threads) : NULL;
    if (fti_engine_open(&e, argv[1], NULL, &err) != FTI_OK) {
        fprintf(stderr, "bench_serve_step: %s\n", err.msg);
        return 1;
    }
    V = fti_engine_config(e)->vocab_size;
    ss = (fti_session **)calloc(B, sizeof *ss);
    sm = (fti_sampler **)calloc(B, sizeof *sm);
    tok = (int32_t *)calloc(B, sizeof *tok);
    memset(&so, 0, sizeof so);
    so.kv_type = (fti_kv_type)kv;
    so.pool = pool;
    so.fixed_threads = 1;
    for (b = 0; b < B; b++) {
        fti_sampler_opts o;
        memset(&o, 0, sizeof o);
        o.temperature = 0.8f;
        o.top_p = 1.0f;
        o.seed = b;
        if (fti_session_create(&ss[b], e, &so, &err) != FTI_OK ||
            fti_sampler_create(&sm[b], V, &o) != FTI_OK) {
            fprintf(stderr, "bench_serve_step: %s\n", err.msg);
            return 1;
        }
    }
    if (B > 1 && fti_batch_create(e, B, fti_session_n_ctx(ss[0]), &bt, &err) != FTI_OK) {
        fprintf(stderr, "bench_serve_step: %s\n", err.msg);
        return 1;
    }
    for (rep = 0; rep < reps; rep++) {
        double t_s = 0, t_d = 0, t0;
        for (b = 0; b < B; b++) {
            size_t j;
            for (j = 0; j < 12; j++) prompt[j] = (int32_t)((j * 131 + b * 17 + 1) % V);
            fti_session_reset(ss[b]);
            fti_sampler_reset(sm[b]);
            if (fti_session_eval(ss[b], prompt, 12, NULL, &err) != FTI_OK) return 1;
        }
        for (st = 0; st < steps && fti_session_pos(ss[0]) < fti_session_n_ctx(ss[0]); st++) {
            t0 = cpu_s();
            for (b = 0; b < B; b++) tok[b] = fti_sampler_sample(sm[b], fti_session_logits(ss[b]));
            t_s += cpu_s() - t0;
            t0 = cpu_s();
            if (B == 1) {
                if (fti_session_eval(ss[0], tok, 1, NULL, &err) != FTI_OK) return 1;
            } else if (fti_session_eval_batch(bt, ss, tok, B, pool, &err) != FTI_OK) {
                fprintf(stderr, "bench_serve_step: %s\n", err.msg);
                return 1;
            }
            t_d += cpu_s() - t0;
        }
        t_s /= (double)(B * st);
        t_d /= (double)(B * st);
        if (t_s + t_d < best_s + best_d) best_s = t_s, best_d = t_d;
    }
    printf("batch=%lu kv=%s threads=%d steps=%lu: sample %.1f us + decode %.1f us per token "
           "(CPU) = %.0f tok per CPU s\n",
           (unsigned long)B, fti_kv_type_name((fti_kv_type)kv), threads, (unsigned long)steps,
           best_s * 1e6, best_d * 1e6, 1.0 / (best_s + best_d));
    fti_batch_free(bt);
    for (b = 0; b < B; b++) {
        fti_session_free(ss[b]);
        fti_sampler_free(sm[b]);
    }
    free(ss);
    free(sm);
    free(tok);
    fti_engine_close(e);
    fti_pool_free(pool);
    return 0;
}
