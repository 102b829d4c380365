/* bench_infer.c: the inference benchmark's C side (driven by tools/bench_infer.sh).
 *
 *     build/bench_infer make SHAPE TYPE OUT [--vocab N] [--seed S]
 *         writes a llama GGUF of a preset shape (stories15M, stories110M, tiny, ...) with the
 *         standard random initialisation, matrices of TYPE (f32, f16, bf16, q8_0, q4_0) and a
 *         real gpt2 vocabulary: GPT-2's first N-1 tokens and their merges plus <|endoftext|>
 *         (default N = 32000), from ../shared/data/tokenizers/gpt2 (or $FTI_DATA).
 *     build/bench_infer run MODEL [--threads N] [--prompt-tokens P] [-n N] [--tokens]
 *                           [--kv f16|f32|q8] [--fixed-threads] [--paired] [--repack-q8]
 *         load, prefill P tokens, decode N greedy tokens (--repack-q8: Q8_0 matrices in the
 *         table's decode form, fti_engine_opts.repack_q8_0, as fti-serve loads them); prints one
 *         line of key=value
 *         (load_ms prefill_tps decode_tps decode_cpu_tps ttft_ms rss_mb weights_mb decode_gbps
 *         decode_gbps_kv: weights plus the KV cache the steps read, f16 as llama.cpp's, f32 with
 *         --kv f32, q8 with --kv q8) and with
 *         --tokens the generated ids. --fixed-threads: every decode step on the pool (not the
 *         session's choice of pool or calling thread alone). --paired: after every decode step,
 *         one STREAM copy run (bench_bw.h: 8 MiB, on the same pool) is timed too, so each step's
 *         bandwidth has the machine's bandwidth of the same moment beside it; adds paired_frac
 *         (the median over steps of the step's weights GB/s over its copy run's GB/s),
 *         paired_frac_kv (weights plus the KV cache the step read), paired_step_gbps and
 *         paired_copy_gbps (the medians of either); its rss_mb includes the copy's 128 MiB.
 *         On a shared machine, whose neighbours take memory bandwidth in bursts, a fraction of
 *         the same moment is steadier than a whole run's average over the best moment's copy.
 *         Built with -DFTI_DECODE_PROFILE
 *         (build/bench_infer_prof), also the decode step's time per phase and thread.
 *     build/bench_infer batch MODEL [--threads N] [--batch B] [-n STEPS]
 *         continuous batching's step: B sessions (16-token prompts) each decode STEPS tokens,
 *         once as B separate fti_session_eval calls per step and once as one
 *         fti_session_eval_batch per step; prints seq_tps, batch_tps (aggregate tokens/s, wall
 *         time) and their CPU-time versions (robust on a shared machine).
 *     build/bench_infer compare MODEL [--prompt-tokens P] TOKEN...
 *         teacher-forced comparison with a peer's greedy tokens after the same prompt: steps where
 *         fti's argmax is the peer's token, the first disagreement, and fti's logit margin for its
 *         own token there, against the median gap between the two best logits.
 *     build/bench_infer bw [--threads N]
 *         memory bandwidth (GB/s) as bench_kernels measures it: copy_gbps (STREAM copy, bytes read
 *         plus written) and read_gbps (a vector sum, the better of one and four streams per
 *         thread: what a GEMV does with its weights), best of 256 runs over 8 MiB segments.
 *     build/bench_infer kv-accuracy MODEL TEXT [--windows W]
 *         the f16 and q8 KV caches against the f32 one on a (trained) model: W windows (default
 *         8) of context_len tokens of TEXT, spread over it, decoded token by token in three
 *         sessions; prints per cache type the perplexity of the next tokens, the largest logit
 *         change relative to the largest f32 logit, and how often the argmax equals f32's.
 * The prompt is P fixed pseudo-random ids (the same in every peer script; modulo vocab-16 for
 * vocabularies under 21000).
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_bw.h"

static double now_s(void) { return (double)fti_time_ns() * 1e-9; }

/* The benchmark prompt: ids 1000 + (i * 7919) % 20000, i < n (below any vocab >= 21000);
 * with a smaller vocabulary, those ids modulo (vocab - 16). */
static void bench_prompt(int32_t *ids, size_t n, size_t vocab) {
    size_t i;
    for (i = 0; i < n; i++) {
        size_t id = 1000 + (i * 7919) % 20000;
        ids[i] = (int32_t)(vocab >= 21000 ? id : id % (vocab - 16));
    }
}

static int parse_type(const char *s, uint32_t *t) {
    if (!strcmp(s, "f32")) *t = FTI_GGML_F32;
    else if (!strcmp(s, "f16")) *t = FTI_GGML_F16;
    else if (!strcmp(s, "bf16")) *t = FTI_GGML_BF16;
    else if (!strcmp(s, "q8_0")) *t = FTI_GGML_Q8_0;
    else if (!strcmp(s, "q4_0")) *t = FTI_GGML_Q4_0;
    else return 0;
    return 1;
}

static int cmd_make(int argc, char **argv) {
    const char *shape, *out, *data = getenv("FTI_DATA");
    uint32_t type;
    size_t vocab = 32000, i, n_merges;
    uint64_t seed = 1;
    fti_model_config cfg;
    fti_tokenizer *tok = NULL;
    fti_tokenizer_gguf tg;
    fti_gguf_tokenizer_meta m;
    fti_gguf_model_opts mo;
    fti_gguf_lineage lin;
    fti_error err;
    char enc[1024], bpe[1024];
    const char **toks;
    int32_t *types;
    float *params;
    if (argc < 5 || !parse_type(argv[3], &type)) {
        fprintf(stderr, "usage: bench_infer make SHAPE TYPE OUT [--vocab N] [--seed S]\n");
        return 2;
    }
    shape = argv[2];
    out = argv[4];
    for (i = 5; i + 1 < (size_t)argc; i += 2) {
        if (!strcmp(argv[i], "--vocab")) vocab = (size_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
    }
    if (fti_model_preset(shape, &cfg, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 2;
    }
    cfg.vocab_size = (uint32_t)vocab;
    cfg.tied_embeddings = 0;
    if (fti_model_config_resolve(&cfg, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    snprintf(enc, sizeof enc, "%s/tokenizers/gpt2/encoder.json", data ? data : "../shared/data");
    snprintf(bpe, sizeof bpe, "%s/tokenizers/gpt2/vocab.bpe", data ? data : "../shared/data");
    if (fti_tokenizer_load_gpt2(enc, bpe, NULL, &tok, &err) != FTI_OK ||
        fti_tokenizer_gguf_make(tok, &tg) != FTI_OK) {
        fprintf(stderr, "bench_infer: gpt2 tokenizer: %s\n", err.msg);
        return 1;
    }
    if (vocab < 512 || vocab > tg.n_tokens) {
        fprintf(stderr, "bench_infer: vocab %lu out of range\n", (unsigned long)vocab);
        return 2;
    }
    /* GPT-2's merge of rank r creates id 256 + r: the first vocab-257 merges only make ids in
     * [0, vocab-1); the last id becomes <|endoftext|> */
    n_merges = vocab - 257;
    toks = (const char **)malloc(vocab * sizeof *toks);
    types = (int32_t *)malloc(vocab * sizeof *types);
    for (i = 0; i < vocab; i++) {
        toks[i] = tg.tokens[i];
        types[i] = FTI_GGUF_TOKEN_NORMAL;
    }
    toks[vocab - 1] = "<|endoftext|>";
    types[vocab - 1] = FTI_GGUF_TOKEN_CONTROL;
    memset(&m, 0, sizeof m);
    m.n_tokens = vocab;
    m.tokens = toks;
    m.token_types = types;
    m.n_merges = n_merges;
    m.merges = (const char *const *)tg.merges;
    m.bos_id = (int32_t)(vocab - 1);
    m.eos_id = (int32_t)(vocab - 1);
    m.pad_id = -1;
    m.add_bos = 0;
    memset(&lin, 0, sizeof lin);
    lin.name = "fti-bench";
    memset(&mo, 0, sizeof mo);
    mo.matrix_type = type;
    params = (float *)malloc(fti_model_n_params(&cfg) * sizeof(float));
    if (!params) return 1;
    fti_model_init_params(&cfg, params, seed);
    if (fti_gguf_write_llama(out, &cfg, params, &m, &lin, &mo, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    free(params);
    free(toks);
    free(types);
    fti_tokenizer_gguf_free(&tg);
    fti_tokenizer_free(tok);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorts v). */
static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

#ifdef FTI_DECODE_PROFILE
/* The decode step's profile (a build with -DFTI_DECODE_PROFILE: build/bench_infer_prof): per
 * thread, microseconds per step of work in each phase and of waiting at the barrier after it. */
static void prof_print(int nt) {
    static const char *names[7] = {"qkv+attn", "qkv", "attn", "o", "ffn", "down", "logits"};
    double steps = (double)fti__dec_prof[0][FTI__DEC_PROF_STEPS], sum[8] = {0};
    int t, p;
    if (steps <= 0) return;
    printf("profile: us per step (%.0f steps, %.0f on %d threads), work / wait at the barrier "
           "after it, per thread\n",
           steps, (double)fti__dec_prof[0][FTI__DEC_PROF_STEPS + 1], nt);
    for (p = 0; p < 7; p++) {
        int any = 0;
        for (t = 0; t < nt && t < 8; t++) any |= fti__dec_prof[t][p] != 0;
        if (!any) continue;
        printf("profile: %-9s", names[p]);
        for (t = 0; t < nt && t < 8; t++) {
            double w = (double)fti__dec_prof[t][p] / steps / 1e3,
                   b = (double)fti__dec_prof[t][FTI__DEC_PROF_WAIT + p] / steps / 1e3;
            sum[t] += w + b;
            printf("  t%d %8.1f / %6.1f", t, w, b);
        }
        printf("\n");
    }
    printf("profile: %-9s", "(attn)");
    for (t = 0; t < nt && t < 8; t++)
        printf("  t%d %8.1f         ", t,
               (double)fti__dec_prof[t][FTI__DEC_PROF_ATTN] / steps / 1e3);
    printf("\nprofile: %-9s", "wake");
    for (t = 0; t < nt && t < 8; t++)
        printf("  t%d %8.1f         ", t,
               (double)fti__dec_prof[t][FTI__DEC_PROF_WAKE] / steps / 1e3);
    printf("\nprofile: %-9s", "sum");
    for (t = 0; t < nt && t < 8; t++) printf("  t%d %8.1f         ", t, sum[t]);
    printf("\nprofile: step %.1f us (calling thread, embedding row to logits)\n",
           (double)fti__dec_prof[0][FTI__DEC_PROF_END] / steps / 1e3);
}
#endif

static int cmd_run(int argc, char **argv) {
    const char *path;
    int threads = 1, print_tokens = 0, fixed_threads = 0, paired = 0, repack_q8 = 0, i;
    size_t n_prompt = 128, n_gen = 256, k, seg = (size_t)2 << 20; /* floats: 8 MiB */
    float *ca = NULL, *cb = NULL;          /* --paired: 8 segments to copy */
    double *step_s = NULL, *copy_g = NULL, *read_g = NULL; /* --paired: each step's seconds,
                                                              its copy's and read's GB/s */
    double copy_s = 0;                     /* --paired: seconds in the copy runs */
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_session_opts so;
    fti_engine_opts eo;
    fti_pool *pool;
    fti_error err;
    int32_t *prompt, *gen;
    double t0, t_load, t_prefill, t_first = 0, t_end, c_first = 0, c_end, kv_bytes = 0;
    fti_kv_type kv_type = FTI_KV_F16; /* llama.cpp's default cache type, as the peer runs */
    struct rusage ru;
    float *logits;
    if (argc < 3) {
        fprintf(stderr, "usage: bench_infer run MODEL [--threads N] [--prompt-tokens P] [-n N] "
                        "[--kv f16|f32|q8] [--fixed-threads] [--paired] [--repack-q8]\n");
        return 2;
    }
    path = argv[2];
    for (i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompt-tokens") && i + 1 < argc)
            n_prompt = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n_gen = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--tokens")) print_tokens = 1;
        else if (!strcmp(argv[i], "--fixed-threads")) fixed_threads = 1;
        else if (!strcmp(argv[i], "--paired")) paired = 1;
        else if (!strcmp(argv[i], "--repack-q8")) repack_q8 = 1;
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc) {
            int t = fti_kv_type_parse(argv[++i]);
            if (t < 0) {
                fprintf(stderr, "bench_infer: --kv takes f16, f32 or q8\n");
                return 2;
            }
            kv_type = (fti_kv_type)t;
        }
    }
    pool = fti_pool_create(threads);
    prompt = (int32_t *)malloc(n_prompt * sizeof(int32_t));
    gen = (int32_t *)malloc((n_gen + 1) * sizeof(int32_t));
    if (paired) {
        ca = (float *)fti_aligned_alloc(8 * seg * sizeof(float), 64);
        cb = (float *)fti_aligned_alloc(8 * seg * sizeof(float), 64);
        step_s = (double *)calloc(n_gen + 1, sizeof(double));
        copy_g = (double *)calloc(n_gen + 1, sizeof(double));
        read_g = (double *)calloc(n_gen + 1, sizeof(double));
        if (!ca || !cb || !step_s || !copy_g || !read_g) {
            fprintf(stderr, "bench_infer: out of memory for --paired\n");
            return 1;
        }
        for (k = 0; k < 8 * seg; k++) ca[k] = cb[k] = (float)(k & 7);
    }
    t0 = now_s();
    memset(&eo, 0, sizeof eo);
    eo.pool = pool; /* the load's repacking on the run's threads, as fti-infer does */
    eo.repack_q8_0 = repack_q8; /* (as fti-serve does) */
    if (fti_engine_open(&e, path, &eo, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    bench_prompt(prompt, n_prompt, fti_engine_config(e)->vocab_size);
    memset(&so, 0, sizeof so);
    so.pool = pool;
    so.n_ctx = n_prompt + n_gen + 8; /* as the llama.cpp peer (may exceed the trained context) */
    so.n_batch = 128;
    so.kv_type = kv_type;
    so.fixed_threads = fixed_threads;
    if (fti_session_create(&s, e, &so, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    t_load = now_s();
    if (fti_session_eval(s, prompt, n_prompt, NULL, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    t_prefill = now_s();
    logits = fti_session_logits(s);
    for (k = 0; k < n_gen; k++) { /* greedy, the argmax with ties to the lower id */
        size_t j, best = 0, V = fti_engine_config(e)->vocab_size;
        for (j = 1; j < V; j++)
            if (logits[j] > logits[best]) best = j;
        gen[k] = (int32_t)best;
        if (k == 0) {
            t_first = now_s(), c_first = cpu_s();
#ifdef FTI_DECODE_PROFILE
            memset(fti__dec_prof, 0, sizeof fti__dec_prof);
#endif
        }
        if (k + 1 < n_gen) {
            double ts = now_s();
            if (fti_session_eval(s, &gen[k], 1, NULL, &err) != FTI_OK) {
                fprintf(stderr, "bench_infer: %s\n", err.msg);
                return 1;
            }
            if (paired) {
                double tc = now_s();
                step_s[k] = tc - ts;
                copy_g[k] = bench_bw_once(pool, 0, ca + seg * (k % 8), cb + seg * (k % 8), seg);
                read_g[k] = bench_bw_once(pool, 2, cb + seg * ((k + 4) % 8), NULL, seg);
                copy_s += now_s() - tc;
            }
        }
    }
    t_end = now_s(), c_end = cpu_s();
    /* --paired: the copy runs' time is not the decode's (their CPU time taken as the pool's
     * threads busy throughout, which the copy's 16 equal parts about are) */
    t_end -= copy_s;
    c_end -= copy_s * fti_pool_threads(pool);
    getrusage(RUSAGE_SELF, &ru);
    { /* the KV cache read by the decode steps: L · pos · KVD keys and as many values, each of
       2 bytes (f16, the default), 4 (--kv f32) or 1 plus a 4-byte scale per head row (q8) */
        const fti_model_config *mc = fti_engine_config(e);
        double kvd = (double)mc->dim * mc->n_kv_heads / mc->n_heads, p, row;
        double D = (double)mc->dim / mc->n_heads;
        row = kv_type == FTI_KV_F16 ? 2.0 * kvd
              : kv_type == FTI_KV_Q8 ? kvd * (D + 4.0) / D
                                     : 4.0 * kvd;
        for (p = (double)n_prompt + 1; p < (double)(n_prompt + n_gen); p += 1.0)
            kv_bytes += (double)mc->n_layers * p * 2.0 * row;
    }
    printf("load_ms=%.2f prefill_tps=%.1f decode_tps=%.2f decode_cpu_tps=%.2f ttft_ms=%.2f "
           "rss_mb=%.1f weights_mb=%.1f decode_gbps=%.2f decode_gbps_kv=%.2f threads=%d isa=%s\n",
           (t_load - t0) * 1e3, (double)n_prompt / (t_prefill - t_load),
           (double)(n_gen - 1) / (t_end - t_first),
           (double)(n_gen - 1) * fti_pool_threads(pool) / (c_end - c_first), (t_first - t0) * 1e3,
           (double)ru.ru_maxrss / 1024.0, (double)fti_engine_weight_bytes(e) / 1e6,
           (double)fti_engine_weight_bytes(e) * (double)(n_gen - 1) / (t_end - t_first) / 1e9,
           ((double)fti_engine_weight_bytes(e) * (double)(n_gen - 1) + kv_bytes) /
               (t_end - t_first) / 1e9,
           fti_pool_threads(pool), fti_isa_name(fti_kernels_isa(fti_engine_kernels(e))));
    if (paired && n_gen >= 2) { /* medians over the steps (k < n_gen - 1) */
        const fti_model_config *mc = fti_engine_config(e);
        double kvd = (double)mc->dim * mc->n_kv_heads / mc->n_heads, row;
        double D = (double)mc->dim / mc->n_heads, W = (double)fti_engine_weight_bytes(e);
        size_t n = n_gen - 1;
        double *f = (double *)calloc(7 * n, sizeof(double)), *fk = f + n, *fr = f + 2 * n,
               *fkr = f + 3 * n, *sg = f + 4 * n, *cg = f + 5 * n, *rg = f + 6 * n;
        row = kv_type == FTI_KV_F16 ? 2.0 * kvd
              : kv_type == FTI_KV_Q8 ? kvd * (D + 4.0) / D
                                     : 4.0 * kvd;
        if (!f) return 1;
        for (k = 0; k < n; k++) {
            /* step k reads the cache of n_prompt + k + 1 positions, as kv_bytes above */
            double kvb = (double)mc->n_layers * (double)(n_prompt + k + 1) * 2.0 * row;
            sg[k] = W / step_s[k] * 1e-9;
            cg[k] = copy_g[k];
            rg[k] = read_g[k];
            f[k] = sg[k] / cg[k];
            fk[k] = (W + kvb) / step_s[k] * 1e-9 / cg[k];
            fr[k] = sg[k] / rg[k];
            fkr[k] = (W + kvb) / step_s[k] * 1e-9 / rg[k];
        }
        printf("paired_frac=%.3f paired_frac_kv=%.3f paired_frac_read=%.3f "
               "paired_frac_kv_read=%.3f paired_step_gbps=%.2f paired_copy_gbps=%.2f "
               "paired_read_gbps=%.2f paired_steps=%lu\n",
               median(f, n), median(fk, n), median(fr, n), median(fkr, n), median(sg, n),
               median(cg, n), median(rg, n), (unsigned long)n);
        free(f);
    }
#ifdef FTI_DECODE_PROFILE
    prof_print(fti_pool_threads(pool));
#endif
    if (print_tokens) {
        printf("tokens");
        for (k = 0; k < n_gen; k++) printf(" %ld", (long)gen[k]);
        printf("\n");
    }
    fti_session_free(s);
    fti_engine_close(e);
    fti_pool_free(pool);
    free(prompt);
    free(gen);
    free(step_s);
    free(copy_g);
    free(read_g);
    fti_aligned_free(ca);
    fti_aligned_free(cb);
    return 0;
}


static int cmd_batch(int argc, char **argv) {
    const char *path;
    int threads = 1, i;
    size_t B = 16, steps = 16, b, st;
    fti_engine *e = NULL;
    fti_session **ss;
    fti_session_opts so;
    fti_batch *bt = NULL;
    fti_pool *pool;
    fti_error err;
    int32_t prompt[16], *tok;
    double w0, c0, seq_w, seq_c, bat_w, bat_c;
    if (argc < 3) {
        fprintf(stderr, "usage: bench_infer batch MODEL [--threads N] [--batch B] [-n STEPS]\n");
        return 2;
    }
    path = argv[2];
    for (i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            B = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            steps = (size_t)strtoul(argv[++i], NULL, 10);
    }
    if (B == 0) B = 1;
    pool = fti_pool_create(threads);
    if (fti_engine_open(&e, path, NULL, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    ss = (fti_session **)calloc(B, sizeof *ss);
    tok = (int32_t *)calloc(B, sizeof *tok);
    memset(&so, 0, sizeof so);
    so.pool = pool;
    so.fixed_threads = 1;
    so.n_ctx = 16 + 2 * steps + 8;
    for (b = 0; b < B; b++) {
        bench_prompt(prompt, 16, fti_engine_config(e)->vocab_size);
        prompt[0] = (int32_t)(b % 1000);
        if (fti_session_create(&ss[b], e, &so, &err) != FTI_OK ||
            fti_session_eval(ss[b], prompt, 16, NULL, &err) != FTI_OK) {
            fprintf(stderr, "bench_infer: %s\n", err.msg);
            return 1;
        }
    }
    if (fti_batch_create(e, B, so.n_ctx, &bt, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    w0 = now_s(), c0 = cpu_s();
    for (st = 0; st < steps; st++)
        for (b = 0; b < B; b++) {
            tok[b] = (int32_t)((st * 31 + b * 7) % 1000);
            if (fti_session_eval(ss[b], &tok[b], 1, NULL, &err) != FTI_OK) return 1;
        }
    seq_w = now_s() - w0, seq_c = cpu_s() - c0;
    w0 = now_s(), c0 = cpu_s();
    for (st = 0; st < steps; st++) {
        for (b = 0; b < B; b++) tok[b] = (int32_t)((st * 31 + b * 7) % 1000);
        if (fti_session_eval_batch(bt, ss, tok, B, pool, &err) != FTI_OK) {
            fprintf(stderr, "bench_infer: %s\n", err.msg);
            return 1;
        }
    }
    bat_w = now_s() - w0, bat_c = cpu_s() - c0;
    printf("batch=%lu threads=%d seq_tps=%.1f batch_tps=%.1f speedup=%.2f seq_cpu_tps=%.1f "
           "batch_cpu_tps=%.1f cpu_speedup=%.2f\n",
           (unsigned long)B, fti_pool_threads(pool), (double)(B * steps) / seq_w,
           (double)(B * steps) / bat_w, seq_w / bat_w, (double)(B * steps) / seq_c,
           (double)(B * steps) / bat_c, seq_c / bat_c);
    fti_batch_free(bt);
    for (b = 0; b < B; b++) fti_session_free(ss[b]);
    free(ss);
    free(tok);
    fti_engine_close(e);
    fti_pool_free(pool);
    return 0;
}

/* compare MODEL TOKENS...: the peer's greedy tokens after the benchmark prompt, fed to fti one by
 * one (teacher forcing: every step sees the peer's history). Counts the steps where fti's argmax
 * is the peer's token and, where it is not, the logit margin by which fti prefers its own token,
 * against the median gap between the two best logits over all steps. Also the free-running
 * match: the steps before the first disagreement. */
static int cmd_compare(int argc, char **argv) {
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_session_opts so;
    fti_error err;
    size_t n_prompt = 128, n = 0, k, agree = 0, first = (size_t)-1, V, j;
    int32_t *prompt, *peer;
    double *gaps, worst = 0, first_margin = 0;
    int i0 = 3;
    if (argc < 4) {
        fprintf(stderr, "usage: bench_infer compare MODEL [--prompt-tokens P] TOKEN...\n");
        return 2;
    }
    if (!strcmp(argv[3], "--prompt-tokens") && argc > 5) {
        n_prompt = (size_t)strtoul(argv[4], NULL, 10);
        i0 = 5;
    }
    peer = (int32_t *)malloc((size_t)argc * sizeof(int32_t));
    gaps = (double *)malloc((size_t)argc * sizeof(double));
    prompt = (int32_t *)malloc(n_prompt * sizeof(int32_t));
    if (!peer || !gaps || !prompt) return 1;
    for (; i0 < argc; i0++) peer[n++] = (int32_t)strtol(argv[i0], NULL, 10);
    if (fti_engine_open(&e, argv[2], NULL, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    V = fti_engine_config(e)->vocab_size;
    bench_prompt(prompt, n_prompt, V);
    memset(&so, 0, sizeof so);
    so.n_ctx = n_prompt + n + 8;
    so.n_batch = 128;
    if (fti_session_create(&s, e, &so, &err) != FTI_OK ||
        fti_session_eval(s, prompt, n_prompt, NULL, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    for (k = 0; k < n; k++) {
        const float *lg = fti_session_logits(s);
        size_t best = 0, second = 1;
        if (peer[k] < 0 || (size_t)peer[k] >= V) break;
        if (lg[1] > lg[0]) best = 1, second = 0;
        for (j = 2; j < V; j++) {
            if (lg[j] > lg[best]) second = best, best = j;
            else if (lg[j] > lg[second]) second = j;
        }
        gaps[k] = (double)lg[best] - lg[second];
        if ((int32_t)best == peer[k]) {
            agree++;
        } else {
            double m = (double)lg[best] - lg[peer[k]];
            if (m > worst) worst = m;
            if (first == (size_t)-1) first = k, first_margin = m;
        }
        if (k + 1 < n && fti_session_eval(s, &peer[k], 1, NULL, &err) != FTI_OK) {
            fprintf(stderr, "bench_infer: %s\n", err.msg);
            return 1;
        }
    }
    n = k;
    qsort(gaps, n, sizeof *gaps, cmp_double);
    printf("compare steps=%lu teacher_forced_agree=%lu free_running_match=%lu "
           "first_diff_margin=%.5f max_diff_margin=%.5f median_top2_gap=%.5f\n",
           (unsigned long)n, (unsigned long)agree,
           (unsigned long)(first == (size_t)-1 ? n : first), first_margin, worst,
           n ? gaps[n / 2] : 0.0);
    fti_session_free(s);
    fti_engine_close(e);
    free(peer);
    free(gaps);
    free(prompt);
    return 0;
}

/* --- memory bandwidth: STREAM-style copy and read (tools/bench_bw.h, as bench_kernels) ------ */

static int cmd_bw(int argc, char **argv) {
    int threads = argc >= 4 && !strcmp(argv[2], "--threads") ? atoi(argv[3]) : 1;
    bench_bw bw = bench_bw_measure(threads);
    printf("copy_gbps=%.2f read_gbps=%.2f read1_gbps=%.2f read4_gbps=%.2f threads=%d\n", bw.copy,
           bw.read, bw.read1, bw.read4, bw.threads);
    return 0;
}

/* The largest |x|, and the index of the largest x. */
static float abs_max(const float *x, size_t n, size_t *arg) {
    float m = 0.0f;
    size_t i;
    *arg = 0;
    for (i = 0; i < n; i++) {
        if (fabsf(x[i]) > m) m = fabsf(x[i]);
        if (x[i] > x[*arg]) *arg = i;
    }
    return m;
}

static int cmd_kv_accuracy(int argc, char **argv) {
    static const fti_kv_type kts[3] = {FTI_KV_F32, FTI_KV_F16, FTI_KV_Q8};
    fti_engine *e = NULL;
    fti_tokenizer *tok = NULL;
    fti_session *s[3] = {NULL, NULL, NULL};
    fti_tokens t;
    fti_error err;
    fti_map text;
    float *ref = NULL;
    double nll[3] = {0, 0, 0}, maxrel[3] = {0, 0, 0}, agree[3] = {0, 0, 0}, steps = 0;
    size_t T, V, w, i, v, windows = 8;
    int k, rc = 1;
    if (argc < 4) {
        fprintf(stderr, "usage: bench_infer kv-accuracy MODEL TEXT [--windows W]\n");
        return 2;
    }
    if (argc >= 6 && !strcmp(argv[4], "--windows")) windows = (size_t)atol(argv[5]);
    memset(&t, 0, sizeof t);
    if (fti_engine_open(&e, argv[2], NULL, &err) != FTI_OK ||
        fti_engine_tokenizer(e, &tok, &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        goto done;
    }
    if (fti_map_open(&text, argv[3], &err) != FTI_OK) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        goto done;
    }
    rc = fti_tokenizer_encode(tok, (const char *)text.data, text.len, 0, &t) != FTI_OK;
    fti_map_close(&text);
    T = fti_engine_config(e)->context_len;
    V = fti_engine_config(e)->vocab_size;
    ref = (float *)malloc(V * sizeof(float));
    if (rc || !ref || t.len < T + 2 || !windows) {
        fprintf(stderr, "bench_infer: %s: fewer than %lu tokens (or no memory)\n", argv[3],
                (unsigned long)(T + 2));
        rc = 1;
        goto done;
    }
    for (k = 0; k < 3; k++) {
        fti_session_opts o;
        memset(&o, 0, sizeof o);
        o.kv_type = kts[k];
        if (fti_session_create(&s[k], e, &o, &err) != FTI_OK) {
            fprintf(stderr, "bench_infer: %s\n", err.msg);
            rc = 1;
            goto done;
        }
    }
    for (w = 0; w < windows; w++) {
        size_t start = (t.len - T - 1) / windows * w;
        for (k = 0; k < 3; k++) fti_session_reset(s[k]);
        for (i = 0; i < T; i++, steps++) {
            int32_t id = (int32_t)t.ids[start + i];
            size_t next = t.ids[start + i + 1], a0 = 0;
            float scale = 0.0f;
            for (k = 0; k < 3; k++) {
                const float *l;
                float mx;
                double sum = 0;
                size_t am;
                if (fti_session_eval(s[k], &id, 1, NULL, &err) != FTI_OK) {
                    fprintf(stderr, "bench_infer: %s\n", err.msg);
                    rc = 1;
                    goto done;
                }
                l = fti_session_logits(s[k]);
                if (k == 0) {
                    memcpy(ref, l, V * sizeof(float));
                    scale = abs_max(ref, V, &a0);
                }
                abs_max(l, V, &am);
                mx = l[am];
                for (v = 0; v < V; v++) sum += exp((double)l[v] - mx);
                nll[k] += log(sum) - ((double)l[next] - mx);
                agree[k] += am == a0;
                for (v = 0; v < V; v++) {
                    double d = fabs((double)l[v] - ref[v]) / scale;
                    if (d > maxrel[k]) maxrel[k] = d;
                }
            }
        }
    }
    for (k = 0; k < 3; k++)
        printf("kv=%s ppl=%.4f max_logit_change=%.3g argmax_agree=%.4f steps=%.0f kv_bytes=%lu\n",
               fti_kv_type_name(kts[k]), exp(nll[k] / steps), maxrel[k], agree[k] / steps, steps,
               (unsigned long)fti_session_kv_bytes(s[k]));
    rc = 0;
done:
    for (k = 0; k < 3; k++) fti_session_free(s[k]);
    free(ref);
    fti_tokens_free(&t);
    fti_tokenizer_free(tok);
    fti_engine_close(e);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "make")) return cmd_make(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "run")) return cmd_run(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "bw")) return cmd_bw(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "batch")) return cmd_batch(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "compare")) return cmd_compare(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "kv-accuracy")) return cmd_kv_accuracy(argc, argv);
    fprintf(stderr, "usage: bench_infer make|run|batch|compare|bw|kv-accuracy ... (see the top of "
                    "tools/bench_infer.c)\n");
    return 2;
}
