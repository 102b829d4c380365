/* test_batch.c: the batched decoding step's own pieces (the server part's work in parts 02 and
 * 08), on every table this CPU can run and on odd sizes:
 *   - fti_matmul_qa_multi: several matrices sharing one input in one loop give the same bits as
 *     one fti_matmul_qa each, read from the stored rows or from fti_qpack's packed form, for
 *     pools of 1, 2 and 3 threads; against dequantize-then-f32 in double to the activation
 *     rounding (Q8_0 rows holding -128, which the sign trick must get right); K past the
 *     on-stack panel chunk (64 blocks); padding columns of Y untouched; bad arguments rejected;
 *   - the batched attention (fti__bt_attn_seq) against fti__attn_heads one head at a time, for head
 *     sizes with and without a SIMD form and position counts around the 16-position blocks.
 */
#include "test.h"

FTI_TEST(batch_qmat_multi_packed) {
    static const size_t shapes[][2] = {{1, 32}, {1, 2080}, {3, 96}, {5, 288}, {16, 64}, {17, 2080}};
    static const size_t Ns[3] = {37, 16, 5};
    static const fti_dtype types[2] = {FTI_DTYPE_Q8_0, FTI_DTYPE_Q4_0};
    const fti_kernels *tabs[8];
    fti_pool *pools[2];
    int nt = fti_test_kernel_tables(tabs), ti, ty;
    size_t si;
    fti_rng r;
    fti_rng_seed(&r, 17, 3);
    pools[0] = fti_pool_create(2);
    pools[1] = fti_pool_create(3);
    REQUIRE(pools[0] && pools[1]);
    for (ty = 0; ty < 2; ty++)
        for (si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            fti_dtype t = types[ty];
            size_t M = shapes[si][0], K = shapes[si][1], rb = fti_dtype_row_bytes(t, K);
            size_t i, j, p, mi, qb = fti_qact_bytes(M, K), ldy[3];
            float *X = fti_test_rand(&r, M * K, 1.0f), *Wf[3], *Wd[3], *Y1[3], *Y2[3];
            char *W[3];
            void *P[3], *qa = malloc(qb);
            REQUIRE(qa != NULL);
            for (mi = 0; mi < 3; mi++) {
                size_t N = Ns[mi];
                ldy[mi] = N + mi; /* matrix 1 and 2 write into wider rows */
                Wf[mi] = fti_test_rand(&r, N * K, 1.0f);
                Wd[mi] = (float *)malloc(N * K * sizeof(float));
                W[mi] = (char *)malloc(N * rb);
                Y1[mi] = (float *)malloc(M * ldy[mi] * sizeof(float));
                Y2[mi] = (float *)malloc(M * ldy[mi] * sizeof(float));
                P[mi] = NULL;
                REQUIRE(Wd[mi] && W[mi] && Y1[mi] && Y2[mi]);
                for (i = 0; i < N; i++) {
                    REQUIRE(fti_quantize_row(NULL, t, W[mi] + i * rb, Wf[mi] + i * K, K) == FTI_OK);
                    if (t == FTI_DTYPE_Q8_0 && i % 3 == 0) /* -128: a file may hold it */
                        for (p = 0; p < K / FTI_QK; p++)
                            W[mi][i * rb + p * 34 + 2 + p % 32] = (char)-128;
                    REQUIRE(fti_dequantize_row(NULL, t, Wd[mi] + i * K, W[mi] + i * rb, K) ==
                            FTI_OK);
                }
            }
            for (ti = 0; ti < nt; ti++) {
                const fti_kernels *k = tabs[ti];
                fti_qmat a[3];
                int pass, bad = 0, same = 1;
                REQUIRE(fti_qact_quantize(k, qa, X, K, M, K) == FTI_OK);
                for (mi = 0; mi < 3; mi++) { /* the reference: one product each, one thread */
                    size_t pb = fti_qpack_bytes(k, t, Ns[mi], K);
                    for (i = 0; i < M * ldy[mi]; i++) Y1[mi][i] = 7.0f;
                    REQUIRE(fti_matmul_qa(k, NULL, t, W[mi], qa, Y1[mi], ldy[mi], M, Ns[mi], K) ==
                            FTI_OK);
                    fti_aligned_free(P[mi]);
                    P[mi] = NULL;
                    if (pb) {
                        P[mi] = fti_aligned_alloc(pb, 64);
                        REQUIRE(P[mi] != NULL);
                        CHECK(fti_qpack(k, t, W[mi], Ns[mi], K, P[mi], pb - 1) == FTI_ERR_INVALID);
                        REQUIRE(fti_qpack(k, t, W[mi], Ns[mi], K, P[mi], pb) == FTI_OK);
                    } else {
                        CHECK(fti_qpack(k, t, W[mi], Ns[mi], K, &pb, sizeof pb) == FTI_ERR_INVALID);
                    }
                    for (i = 0; i < M; i++)
                        for (j = 0; j < Ns[mi]; j++) {
                            double ref = 0.0, mag = 0.0, y = Y1[mi][i * ldy[mi] + j];
                            for (p = 0; p < K; p++) {
                                double term = (double)Wd[mi][j * K + p] * X[i * K + p];
                                ref += term;
                                mag += fabs(term);
                            }
                            if (fabs(y - ref) > 1.2e-2 * mag + 1e-6) bad++;
                        }
                }
                /* stored rows, packed forms, then both mixed; pools of 1, 2, 3 threads */
                for (pass = 0; pass < 4; pass++) {
                    memset(a, 0, sizeof a);
                    for (mi = 0; mi < 3; mi++) {
                        int packed = pass == 1 || (pass >= 2 && mi == 1);
                        a[mi].wtype = t;
                        a[mi].W = packed && P[mi] ? NULL : W[mi];
                        a[mi].P = packed ? P[mi] : NULL;
                        a[mi].N = Ns[mi];
                        a[mi].Y = Y2[mi];
                        a[mi].ldy = ldy[mi];
                        for (i = 0; i < M * ldy[mi]; i++) Y2[mi][i] = 7.0f;
                    }
                    REQUIRE(fti_matmul_qa_multi(k, pass < 2 ? NULL : pools[pass - 2], a, 3, qa, M,
                                                K) == FTI_OK);
                    for (mi = 0; mi < 3; mi++)
                        if (memcmp(Y1[mi], Y2[mi], M * ldy[mi] * sizeof(float)) != 0) same = 0;
                }
                { /* the decode form: rows G.. of a packed matrix, M = 1, from P + G·rb */
                    size_t G = fti_qpack_decode_rows(k, t);
                    if (G && P[0] && Ns[0] > G && M == 1) {
                        fti_qmat d;
                        memset(&d, 0, sizeof d);
                        d.wtype = t;
                        d.P = (const char *)P[0] + G * rb;
                        d.N = Ns[0] - G;
                        d.Y = Y2[0];
                        d.ldy = d.N;
                        REQUIRE(fti_matmul_qa_multi(k, NULL, &d, 1, qa, 1, K) == FTI_OK);
                        if (memcmp(Y2[0], Y1[0] + G, d.N * sizeof(float)) != 0) same = 0;
                        memcpy(Y2[0], Y1[0], M * ldy[0] * sizeof(float));
                    }
                    CHECK(G == 0 || fti_qpack_bytes(k, t, G, K) == G * rb);
                }
                for (mi = 0; mi < 3; mi++) /* padding columns untouched */
                    for (i = 0; i < M; i++)
                        for (j = Ns[mi]; j < ldy[mi]; j++)
                            if (Y2[mi][i * ldy[mi] + j] != 7.0f) same = 0;
                if (bad || !same)
                    fprintf(stderr, "    %s %s M=%lu K=%lu: %d bad, same %d\n",
                            fti_isa_name(fti_kernels_isa(k)), fti_dtype_name(t), (unsigned long)M,
                            (unsigned long)K, bad, same);
                CHECK(bad == 0);
                CHECK(same);
                { /* errors */
                    a[0].W = NULL;
                    a[0].P = NULL;
                    CHECK(fti_matmul_qa_multi(k, NULL, a, 3, qa, M, K) == FTI_ERR_INVALID);
                    a[0].W = W[0];
                    a[0].ldy = Ns[0] - 1;
                    CHECK(fti_matmul_qa_multi(k, NULL, a, 3, qa, M, K) == FTI_ERR_INVALID);
                    a[0].ldy = ldy[0];
                    a[0].wtype = FTI_DTYPE_F32;
                    CHECK(fti_matmul_qa_multi(k, NULL, a, 3, qa, M, K) == FTI_ERR_INVALID);
                    CHECK(fti_matmul_qa_multi(k, NULL, NULL, 1, qa, M, K) == FTI_ERR_INVALID);
                    CHECK(fti_matmul_qa_multi(k, NULL, a, 0, qa, M, K) == FTI_OK);
                }
            }
            for (mi = 0; mi < 3; mi++) {
                free(Wf[mi]);
                free(Wd[mi]);
                free(W[mi]);
                free(Y1[mi]);
                free(Y2[mi]);
                fti_aligned_free(P[mi]);
            }
            free(X);
            free(qa);
        }
    CHECK(fti_qpack_bytes(NULL, FTI_DTYPE_F32, 16, 64) == 0);
    CHECK(fti_qpack_bytes(NULL, FTI_DTYPE_Q8_0, 16, 48) == 0);
    CHECK(fti_qpack_bytes(fti_kernels_get(FTI_ISA_SCALAR), FTI_DTYPE_Q8_0, 16, 64) == 0);
    CHECK(fti_qpack_decode_rows(fti_kernels_get(FTI_ISA_SCALAR), FTI_DTYPE_Q4_0) == 0);
    CHECK(fti_qpack_decode_rows(NULL, FTI_DTYPE_F32) == 0);
#if defined(__x86_64__) && !defined(FTI_NO_SIMD)
    if (fti_kernels_get(FTI_ISA_AVX2)) {
        CHECK(fti_qpack_decode_rows(fti_kernels_get(FTI_ISA_AVX2), FTI_DTYPE_Q4_0) == 8);
        CHECK(fti_qpack_decode_rows(fti_kernels_get(FTI_ISA_AVX2), FTI_DTYPE_Q8_0) == 8);
    }
    if (fti_kernels_get(FTI_ISA_AVX512) && (fti_cpu_features() & FTI_CPU_AVX512VNNI) &&
        (fti_cpu_features() & FTI_CPU_AVX512VBMI) && (fti_cpu_features() & FTI_CPU_GFNI)) {
        CHECK(fti_qpack_decode_rows(fti_kernels_get(FTI_ISA_AVX512), FTI_DTYPE_Q4_0) == 16);
        CHECK(fti_qpack_decode_rows(fti_kernels_get(FTI_ISA_AVX512), FTI_DTYPE_Q8_0) == 16);
    }
#endif
    fti_pool_free(pools[0]);
    fti_pool_free(pools[1]);
}

/* The batched attention of one sequence against fti__attn_heads per head (GQA: 2 query heads per
 * kv head), on every table, with an f32, an f16 and a q8 cache: the same softmax weights
 * (normalised) and outputs to float rounding. The f16 (q8) cache holds the f32 one's values
 * rounded, and both are checked against fti__attn_heads over the f32 cache of those rounded
 * values (every f16 widens exactly; a q8 value is its scale times an int8, one rounding), so the
 * f16 and q8 readers compute what the f32 ones do. Tables and head sizes without a SIMD form take
 * fti__attn_heads itself. Every split of the heads into two calls gives the same bits (the
 * decode step's threads and the prompt batches' items split them so). */
FTI_TEST(batch_attention_matches_head) {
    static const size_t Ds[] = {8, 16, 24, 48, 64, 80, 128, 144};
    static const size_t ns[] = {1, 2, 15, 16, 17, 33, 70, 131};
    const fti_kernels *tabs[8];
    int nt = fti_test_kernel_tables(tabs), ti;
    size_t di, ni;
    int f16; /* the cache kind: FTI__KV_K32, _K16, _K8 */
    fti_rng r;
    fti_rng_seed(&r, 23, 1);
    for (ti = 0; ti < nt; ti++)
        for (di = 0; di < sizeof Ds / sizeof Ds[0]; di++)
            for (ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (f16 = 0; f16 < 3; f16++) {
                fti_engine e;
                size_t n = ns[ni], h, j, ld = n < 80 ? 80 : n + 3;
                float *q, *kc, *vc, *att, *y, *p1, *y1, *att2, *y2;
                uint16_t *kh, *vh;
                char *k8, *v8;
                size_t hsz8;
                fti__kv_view kv, kv32;
                float scale;
                double max_err = 0;
                memset(&e, 0, sizeof e);
                e.k = tabs[ti];
                e.D = Ds[di];
                e.H = 4;
                e.KV = 2;
                e.HD = e.H * e.D;
                e.KVD = e.KV * e.D;
                scale = 1.0f / (float)sqrt((double)e.D);
                q = fti_test_rand(&r, e.HD, 1.0f);
                kc = fti_test_rand(&r, n * e.KVD, 1.0f);
                vc = fti_test_rand(&r, n * e.KVD, 1.0f);
                att = (float *)malloc(e.H * ld * sizeof(float));
                y = (float *)malloc(e.HD * sizeof(float));
                p1 = (float *)malloc(n * sizeof(float));
                y1 = (float *)malloc(e.D * sizeof(float));
                att2 = (float *)malloc(e.H * ld * sizeof(float));
                y2 = (float *)malloc(e.HD * sizeof(float));
                kh = (uint16_t *)malloc(n * e.KVD * sizeof(uint16_t));
                vh = (uint16_t *)malloc(n * e.KVD * sizeof(uint16_t));
                hsz8 = fti__kv_head_bytes(FTI__KV_K8, e.D);
                k8 = (char *)malloc(n * e.KV * hsz8);
                v8 = (char *)malloc(n * e.KV * hsz8);
                REQUIRE(att && y && p1 && y1 && kh && vh && k8 && v8 && att2 && y2);
                for (j = 0; j < e.HD; j++) q[j] *= 3.0f; /* peaky weights */
                fti_f32_to_f16_row(NULL, kh, kc, n * e.KVD);
                fti_f32_to_f16_row(NULL, vh, vc, n * e.KVD);
                if (f16 == FTI__KV_K16) { /* the f32 cache: the same values as the f16 one */
                    fti_f16_to_f32_row(NULL, kc, kh, n * e.KVD);
                    fti_f16_to_f32_row(NULL, vc, vh, n * e.KVD);
                }
                if (f16 == FTI__KV_K8) /* or as the q8 one */
                    for (j = 0; j < n * e.KV; j++) {
                        fti__kv_q8_put(k8 + j * hsz8, kc + j * e.D, e.D);
                        fti__kv_q8_put(v8 + j * hsz8, vc + j * e.D, e.D);
                        fti__kv_q8_get(kc + j * e.D, k8 + j * hsz8, e.D);
                        fti__kv_q8_get(vc + j * e.D, v8 + j * hsz8, e.D);
                    }
                memset(&kv32, 0, sizeof kv32);
                kv32.k = kc;
                kv32.v = vc;
                kv32.hsz = e.D * sizeof(float);
                kv = kv32;
                if (f16 == FTI__KV_K16) {
                    kv.k = kh;
                    kv.v = vh;
                    kv.kind = FTI__KV_K16;
                    kv.hsz = e.D * 2;
                    fti__kv_fns(e.k, FTI__KV_K16, &kv.dot, &kv.axpy);
                }
                if (f16 == FTI__KV_K8) {
                    kv.k = k8;
                    kv.v = v8;
                    kv.kind = FTI__KV_K8;
                    kv.hsz = hsz8;
                    fti__kv_fns(e.k, FTI__KV_K8, &kv.dot, &kv.axpy);
                }
                fti__bt_attn_seq(&e, q, &kv, n, att, ld, y);
                /* heads [0, h) and [h, H) in two calls: the same bits */
                for (h = 1; h < e.H; h++) {
                    int same = 1;
                    fti__attn_heads(&e, q, &kv, 0, h, n, scale, att2, ld, y2);
                    fti__attn_heads(&e, q + h * e.D, &kv, h, e.H - h, n, scale, att2 + h * ld, ld,
                                    y2 + h * e.D);
                    same &= memcmp(y, y2, e.HD * sizeof(float)) == 0;
                    for (j = 0; j < e.H; j++)
                        same &= memcmp(att + j * ld, att2 + j * ld, n * sizeof(float)) == 0;
                    CHECK(same);
                }
                for (h = 0; h < e.H; h++) {
                    double sum = 0, sum2 = 0;
                    fti__attn_heads(&e, q + h * e.D, &kv32, h, 1, n, scale, p1, n, y1);
                    for (j = 0; j < n; j++) { /* fti__attn_heads leaves the weights unscaled */
                        sum += p1[j];
                        sum2 += att[h * ld + j];
                    }
                    for (j = 0; j < n; j++) {
                        double d = fabs((double)p1[j] / sum - att[h * ld + j] / sum2);
                        if (d > max_err) max_err = d;
                    }
                    for (j = 0; j < e.D; j++) {
                        double d =
                            fabs((double)y1[j] - y[h * e.D + j]) / (1.0 + fabs((double)y1[j]));
                        if (d > max_err) max_err = d;
                    }
                }
                if (f16) { /* and the single-session reader over the f16 or q8 cache */
                    for (h = 0; h < e.H; h++) {
                        fti__attn_heads(&e, q + h * e.D, &kv, h, 1, n, scale, p1, n, y1);
                        for (j = 0; j < e.D; j++) {
                            double d = fabs((double)y1[j] - y[h * e.D + j]) /
                                       (1.0 + fabs((double)y1[j]));
                            if (d > max_err) max_err = d;
                        }
                    }
                }
                if (max_err > 2e-6)
                    fprintf(stderr, "    %s D=%lu n=%lu f16=%d: max err %g\n",
                            fti_isa_name(fti_kernels_isa(e.k)), (unsigned long)e.D,
                            (unsigned long)n, f16, max_err);
                CHECK(max_err <= 2e-6);
                free(kh);
                free(vh);
                free(k8);
                free(v8);
                free(q);
                free(kc);
                free(vc);
                free(att);
                free(y);
                free(p1);
                free(y1);
                free(att2);
                free(y2);
            }
}

/* The tests' small model (fti_test_model: vocab 96, head size 16, GQA) with the "t0".."t94"
 * vocabulary, context 64, seed 7, as a GGUF file of matrix type mt, its initial weights times
 * scale. */
static const char *bt_model_scaled(uint32_t mt, const char *file, float scale) {
    fti_test_model_opts o;
    memset(&o, 0, sizeof o);
    o.matrix_type = mt;
    o.context_len = 64;
    o.seed = 7;
    o.scale = scale;
    o.vocab = FTI_TEST_VOCAB_PLAIN;
    return fti_test_model(file, &o, NULL, NULL);
}

static const char *bt_model(uint32_t mt, const char *file) {
    return bt_model_scaled(mt, file, 4.0f);
}

/* fti_batch_prefill: a prompt through the batch's forward (chunks of max_batch rows, packed
 * weights) gives the logits fti_session_eval gives (all rows, and the last at
 * fti_session_logits), for quantized weights the same bits whatever the pool and the chunks
 * (F32 rows go through GEMV or GEMM by their count), and the session then decodes in a batched
 * step like one prefilled on its own; errors leave the session as it was. */
FTI_TEST(batch_prefill_matches_session) {
    static const uint32_t types[3] = {FTI_GGML_F32, FTI_GGML_Q8_0, FTI_GGML_Q4_0};
    /* F32: GEMM vs GEMV sums (rows by their count); quantized: the attention is one function for
     * every path and the multi-row products give the one-row bits on the scalar and AVX2 tables
     * (0 there); the AVX-512 VNNI panels sum the integer dots' scales in another float order than
     * its GEMV (seen: 2.4e-7). Was 0.1/0.15 while the batched attention summed in its own order. */
    static const double tol[3] = {1e-4, 1e-5, 1e-5};
    int ti;
    for (ti = 0; ti < 3; ti++) {
        const char *path = bt_model(types[ti], "bp.gguf");
        fti_engine *e = NULL;
        fti_session *s[3], *ref, *a, *b, *pair[2];
        fti_batch *bt = NULL;
        fti_pool *pool = fti_pool_create(3);
        fti_error err;
        int32_t prompt[23], next[2];
        float *la, *lr, *lb;
        size_t n = 23, i, V = 96;
        double max_err = 0;
        REQUIRE(pool != NULL);
        REQUIRE(fti_test_open_sessions(path, NULL, &e, s, 3) == 0);
        ref = s[0];
        a = s[1];
        b = s[2];
        for (i = 0; i < n; i++) prompt[i] = (int32_t)((i * 37 + 5) % 95);
        REQUIRE(fti_batch_create(e, 5, fti_session_n_ctx(a), &bt, &err) == FTI_OK);
        la = (float *)malloc(n * V * sizeof(float));
        lr = (float *)malloc(n * V * sizeof(float));
        lb = (float *)malloc(V * sizeof(float));
        REQUIRE(la && lr && lb);
        CHECK_OK(fti_session_eval(ref, prompt, n, lr, &err));
        CHECK_OK(fti_batch_prefill(bt, a, prompt, n, la, NULL, &err)); /* 5 chunks of <= 5 */
        CHECK_EQ_INT(fti_session_pos(a), n);
        for (i = 0; i < n * V; i++) {
            double d = fabs((double)la[i] - lr[i]) / (1.0 + fabs((double)lr[i]));
            if (d > max_err) max_err = d;
        }
        CHECK(memcmp(fti_session_logits(a), la + (n - 1) * V, V * sizeof(float)) == 0);
        /* no logits_out: only the last row's logits, the same bits; on 3 threads */
        CHECK_OK(fti_batch_prefill(bt, b, prompt, 9, NULL, pool, &err));
        CHECK_OK(fti_batch_prefill(bt, b, prompt + 9, n - 9, NULL, pool, &err));
        if (types[ti] != FTI_GGML_F32) /* F32 rows go through GEMV or GEMM by their count */
            CHECK(memcmp(fti_session_logits(b), la + (n - 1) * V, V * sizeof(float)) == 0);
        /* both then decode together as one step, like the reference alone */
        next[0] = 3;
        next[1] = 3;
        pair[0] = a;
        pair[1] = b;
        CHECK_OK(fti_session_eval_batch(bt, pair, next, 2, pool, &err));
        CHECK_OK(fti_session_eval(ref, next, 1, NULL, &err));
        if (types[ti] != FTI_GGML_F32)
            CHECK(memcmp(fti_session_logits(a), fti_session_logits(b), V * sizeof(float)) == 0);
        for (i = 0; i < V; i++) {
            double d = fabs((double)fti_session_logits(a)[i] - fti_session_logits(ref)[i]) /
                       (1.0 + fabs((double)fti_session_logits(ref)[i]));
            if (d > max_err) max_err = d;
        }
        if (getenv("FTI_TEST_VERBOSE") || max_err > tol[ti])
            fprintf(stderr, "    %s: max rel err %g (tolerance %g)\n",
                    fti_ggml_type_name(types[ti]), max_err, tol[ti]);
        CHECK(max_err <= tol[ti]);
        /* errors: nothing evaluated */
        memcpy(lb, fti_session_logits(a), V * sizeof(float));
        next[0] = 96;
        CHECK(fti_batch_prefill(bt, a, next, 1, NULL, NULL, &err) == FTI_ERR_INVALID);
        CHECK(fti_batch_prefill(bt, a, prompt, fti_session_n_ctx(a), NULL, NULL, &err) ==
              FTI_ERR_LIMIT);
        CHECK(fti_batch_prefill(NULL, a, prompt, 1, NULL, NULL, &err) == FTI_ERR_INVALID);
        CHECK_EQ_INT(fti_session_pos(a), n + 1);
        CHECK(memcmp(lb, fti_session_logits(a), V * sizeof(float)) == 0);
        CHECK_OK(fti_batch_prefill(bt, a, prompt, 0, NULL, NULL, &err));
        free(la);
        free(lr);
        free(lb);
        fti_batch_free(bt);
        fti_test_close_sessions(e, s, 3);
        fti_pool_free(pool);
    }
}

/* The f16 and q8 KV rows' SIMD forms (fti__kv_fns for each table) against the scalar
 * references, on odd lengths (tails of every width), to float rounding. */
FTI_TEST(batch_kv_f16_rows) {
    static const size_t ns[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 48, 64, 100};
    const fti_kernels *tabs[8];
    int nt = fti_test_kernel_tables(tabs), ti, kind;
    size_t ni, i;
    fti_rng r;
    fti_rng_seed(&r, 41, 2);
    for (ti = 0; ti < nt; ti++)
        for (kind = FTI__KV_K16; kind <= FTI__KV_K8; kind++)
            for (ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                size_t n = ns[ni];
                float *q = fti_test_rand(&r, n, 2.0f), *v = fti_test_rand(&r, n, 2.0f);
                float *y0 = fti_test_rand(&r, n, 1.0f), *y1 = (float *)malloc(n * sizeof(float));
                uint16_t *h = (uint16_t *)malloc(n * sizeof(uint16_t) + 4);
                const signed char *c = (const signed char *)h;
                fti__kv_dot_fn dot, dot_ref;
                fti__kv_axpy_fn axpy, axpy_ref;
                double ref = 0, mag = 0;
                REQUIRE(y1 && h);
                if (kind == FTI__KV_K16) fti_f32_to_f16_row(NULL, h, v, n);
                else fti__kv_q8_put(h, v, n);
                fti__kv_fns(tabs[ti], kind, &dot, &axpy);
                fti__kv_fns(fti_kernels_get(FTI_ISA_SCALAR), kind, &dot_ref, &axpy_ref);
                for (i = 0; i < n; i++) { /* the row functions see q8's int8 values alone */
                    double w = kind == FTI__KV_K16 ? fti_f16_to_f32(h[i]) : (double)c[i];
                    ref += (double)q[i] * w;
                    mag += fabs((double)q[i] * w);
                }
                CHECK_NEAR(dot(q, h, n), ref, 1e-5 * (mag + 1), 0);
                CHECK_NEAR(dot_ref(q, h, n), ref, 1e-5 * (mag + 1), 0);
                memcpy(y1, y0, n * sizeof(float));
                axpy(y1, 0.37f, h, n);
                axpy_ref(y0, 0.37f, h, n);
                for (i = 0; i < n; i++) CHECK_NEAR(y1[i], y0[i], 1e-5, 1e-6);
                free(q);
                free(v);
                free(y0);
                free(y1);
                free(h);
            }
}

/* The q8 cache rows: fti__kv_q8_put's levels are the nearest of absmax/127 (each value within
 * half a level of its widened copy), a zero row stays zero, NaN and infinity do not make the
 * conversion undefined (the row functions: batch_kv_f16_rows). */
FTI_TEST(batch_kv_q8_rows) {
    static const size_t ns[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 48, 64, 100};
    size_t ni, i;
    signed char row[104];
    float x[100], w[100];
    fti_rng r;
    fti_rng_seed(&r, 43, 2);
    for (ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        size_t n = ns[ni];
        float amax = 0, d;
        for (i = 0; i < n; i++) {
            x[i] = (fti_rng_float(&r) - 0.5f) * 6.0f;
            if (fabsf(x[i]) > amax) amax = fabsf(x[i]);
        }
        fti__kv_q8_put(row, x, n);
        fti__kv_q8_get(w, row, n);
        d = fti__kv_q8_scale(row, n);
        CHECK_NEAR(d, amax / 127.0f, 0, 0);
        for (i = 0; i < n; i++) CHECK(fabsf(w[i] - x[i]) <= 0.5f * d * 1.0001f);
        for (i = 0; i < n; i++) CHECK(row[i] >= -127 && row[i] <= 127);
    }
    memset(x, 0, sizeof x);
    fti__kv_q8_put(row, x, 16);
    fti__kv_q8_get(w, row, 16);
    for (i = 0; i < 16; i++) CHECK(w[i] == 0.0f);
    x[3] = NAN;
    x[5] = 1.0f;
    fti__kv_q8_put(row, x, 16);
    CHECK(row[3] == 0 && row[5] == 127);
    x[3] = INFINITY;
    fti__kv_q8_put(row, x, 16); /* no finite scale: the levels are 0 */
    CHECK(row[5] == 0);
}

/* Logits of sessions with a kt cache against an f32 cache's (prompt of 37 in batches of 8, then
 * 6 decode steps), and of the batched step against the kt session: their largest differences
 * relative to the largest f32 logit in *max_err_out and *max_b_out. */
static void bt_kv_vs_f32(fti_kv_type kt, double *max_err_out, double *max_b_out) {
    const char *path = bt_model_scaled(FTI_GGML_Q8_0, "kv16.gguf", 1.0f);
    fti_engine *e = NULL;
    fti_session *s32 = NULL, *s16 = NULL, *b16 = NULL, *pair[1];
    fti_session_opts o;
    fti_batch *bt = NULL;
    fti_error err;
    int32_t prompt[37], tok;
    float *l32, *l16;
    size_t n = 37, i, V = 96, step;
    double max_err = 0, max_b = 0, scale = 0;
    REQUIRE(path != NULL);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    for (i = 0; i < n; i++) prompt[i] = (int32_t)((i * 29 + 3) % 95);
    memset(&o, 0, sizeof o);
    o.n_batch = 8; /* prefill in batches of 8: 4 GEMM blocks of widened rows by the end */
    o.kv_type = FTI_KV_DEFAULT; /* f32 */
    REQUIRE(fti_session_create(&s32, e, &o, &err) == FTI_OK);
    o.kv_type = kt;
    REQUIRE(fti_session_create(&s16, e, &o, &err) == FTI_OK);
    REQUIRE(fti_session_create(&b16, e, &o, &err) == FTI_OK);
    CHECK(fti_session_kv_type(s16) == kt);
    CHECK(fti_session_kv_type(s32) == FTI_KV_F32);
    if (kt == FTI_KV_F16) CHECK_EQ_INT(fti_session_kv_bytes(s32), 2 * fti_session_kv_bytes(s16));
    else CHECK_EQ_INT(fti_session_kv_bytes(s32) * 20, 64 * fti_session_kv_bytes(s16)); /* D 16 */
    l32 = (float *)malloc(n * V * sizeof(float));
    l16 = (float *)malloc(n * V * sizeof(float));
    REQUIRE(l32 && l16);
    CHECK_OK(fti_session_eval(s32, prompt, n, l32, &err));
    CHECK_OK(fti_session_eval(s16, prompt, n, l16, &err));
    CHECK_OK(fti_session_eval(b16, prompt, n, NULL, &err));
    for (i = 0; i < n * V; i++)
        if (fabs((double)l32[i]) > scale) scale = fabs((double)l32[i]);
    for (i = 0; i < n * V; i++) {
        double d = fabs((double)l16[i] - l32[i]) / scale;
        if (d > max_err) max_err = d;
    }
    REQUIRE(fti_batch_create(e, 2, fti_session_n_ctx(s16), &bt, &err) == FTI_OK);
    for (step = 0; step < 6; step++) {
        float *a = fti_session_logits(s32), *b = fti_session_logits(s16);
        tok = (int32_t)((step * 11 + 1) % 95);
        CHECK_OK(fti_session_eval(s32, &tok, 1, NULL, &err));
        CHECK_OK(fti_session_eval(s16, &tok, 1, NULL, &err));
        pair[0] = b16;
        CHECK_OK(fti_session_eval_batch(bt, pair, &tok, 1, NULL, &err));
        for (i = 0; i < V; i++) {
            double d = fabs((double)b[i] - a[i]) / scale;
            double db = fabs((double)fti_session_logits(b16)[i] - b[i]) / scale;
            if (d > max_err) max_err = d;
            if (db > max_b) max_b = db;
        }
    }
    *max_err_out = max_err;
    *max_b_out = max_b;
    free(l32);
    free(l16);
    fti_batch_free(bt);
    fti_session_free(s32);
    fti_session_free(s16);
    fti_session_free(pair[0]);
    fti_engine_close(e);
}

/* An f16 (and a q8) KV cache against an f32 one on the same model: prompt logits (prefill through
 * the GEMM attention, in blocks of n_batch widened rows), decode steps (single session) and batched
 * steps agree to the f16 rounding of K and V: within 2e-2 of the logits' largest magnitude on
 * these random weights (measured 7.4e-3: random attention is very peaky; a trained twin of
 * d 288 gives 3e-5); the cache is half the size; the f16 batch step matches the f16 session's
 * own decode (0 on the scalar and AVX2 tables, 1e-3 allowed elsewhere; on AVX-512 the VNNI
 * multi-row product's k, v rows can differ from the GEMV's by an ulp, which can move an f16
 * rounding of the cache by 2^-11 of an element: measured 1.7e-3 of the logits' scale here,
 * allowed 5e-3); a bad type is refused. A q8 cache: within 3e-2 (measured 9.4e-3); its batch
 * step within the same bounds of its session (a q8 level is 2^-7 of the row's largest value:
 * an ulp moves a value across one rarely). */
FTI_TEST(batch_kv_f16_matches_f32) {
    const char *path = bt_model_scaled(FTI_GGML_Q8_0, "kvbad.gguf", 1.0f);
    double tol_b = fti_kernels_isa(fti_kernels_get(FTI_ISA_AUTO)) == FTI_ISA_AVX512 ? 5e-3 : 1e-3;
    double tol[2] = {2e-2, 3e-2}, me = 0, mb = 0;
    fti_kv_type kts[2] = {FTI_KV_F16, FTI_KV_Q8};
    fti_engine *e = NULL;
    fti_session *s = NULL;
    fti_session_opts o;
    fti_error err;
    int i;
    for (i = 0; i < 2; i++) {
        bt_kv_vs_f32(kts[i], &me, &mb);
        if (getenv("FTI_TEST_VERBOSE") || me > tol[i] || mb > tol_b)
            fprintf(stderr, "    %s vs f32 KV: max err %g; %s batch vs session %g\n",
                    fti_kv_type_name(kts[i]), me, fti_kv_type_name(kts[i]), mb);
        CHECK(me <= tol[i]);
        CHECK(mb <= tol_b);
    }
    REQUIRE(path != NULL);
    REQUIRE(fti_engine_open(&e, path, NULL, &err) == FTI_OK);
    memset(&o, 0, sizeof o);
    o.kv_type = (fti_kv_type)7;
    CHECK(fti_session_create(&s, e, &o, &err) == FTI_ERR_INVALID);
    CHECK(fti_session_mem_bytes(e, &o) == 0);
    CHECK(fti_kv_type_parse("f16") == FTI_KV_F16 && fti_kv_type_parse("f32") == FTI_KV_F32);
    CHECK(fti_kv_type_parse("q8") == FTI_KV_Q8 && fti_kv_type_name((fti_kv_type)7) == NULL);
    fti_engine_close(e);
}

/* The sampler's blocked draw returns what the serial double sum does (fti__sampler_draw_ref),
 * with and without an index list, for random r and for r placed exactly on partial sums (where
 * the blocked sums' rounding could differ and the reference decides). */
FTI_TEST(batch_sampler_draw_exact) {
    static const size_t ns[] = {5, 255, 256, 300, 1000, 32000};
    size_t ni, i, t;
    fti_rng r;
    fti_rng_seed(&r, 77, 3);
    for (ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        size_t n = ns[ni];
        float *p = (float *)malloc(n * sizeof(float));
        int32_t *idx = (int32_t *)malloc(n * sizeof(int32_t));
        double sum = 0;
        REQUIRE(p && idx);
        for (i = 0; i < n; i++) { /* skewed: a few large, many tiny, some zeros */
            double u = fti_rng_double(&r);
            p[i] = i % 17 == 3 ? 0.0f : (float)(u * u * u * u);
            idx[i] = (int32_t)((i * 7919) % n);
        }
        if (n % 7 == 0) idx[0] = idx[1]; /* not a permutation: the draw does not care */
        for (i = 0; i < n; i++) sum += p[i];
        for (t = 0; t < 200; t++) {
            double x = fti_rng_double(&r) * sum * 1.0000001;
            CHECK_EQ_INT(fti__sampler_draw(p, NULL, n, 1.0f, x),
                         fti__sampler_draw_ref(p, NULL, n, 1.0f, x));
            CHECK_EQ_INT(fti__sampler_draw(p, NULL, n, 0.37f, x * 0.37),
                         fti__sampler_draw_ref(p, NULL, n, 0.37f, x * 0.37));
            CHECK_EQ_INT(fti__sampler_draw(p, idx, n, 1.0f, x),
                         fti__sampler_draw_ref(p, idx, n, 1.0f, x));
        }
        { /* r on the serial partial sums themselves */
            double acc = 0;
            for (i = 0; i < n; i += 1 + n / 50) {
                size_t j;
                acc = 0;
                for (j = 0; j <= i; j++) acc += p[j];
                CHECK_EQ_INT(fti__sampler_draw(p, NULL, n, 1.0f, acc),
                             fti__sampler_draw_ref(p, NULL, n, 1.0f, acc));
            }
        }
        free(p);
        free(idx);
    }
}

/* The dense sampler (temperature only: the fused exp pass and the blocked draw) picks the tokens
 * the plain steps pick: the temperature step, fti_softmax_fwd through the table, and the serial
 * double draw with the sampler's RNG stream; over 300 draws on 32000 random logits (a peaky and
 * a flat row), with the default table. */
FTI_TEST(batch_sampler_dense_same_tokens) {
    size_t V = 32000, i, t;
    int row;
    fti_rng r, ref_rng;
    fti_rng_seed(&r, 99, 4);
    for (row = 0; row < 2; row++) {
        float *lg = fti_test_rand(&r, V, row ? 1.0f : 8.0f), *cp = (float *)malloc(V * 4);
        float *pr = (float *)malloc(V * 4), mx;
        fti_sampler *smp = NULL;
        fti_sampler_opts o;
        const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
        REQUIRE(cp && pr);
        memset(&o, 0, sizeof o);
        o.temperature = 0.8f;
        o.seed = 5;
        REQUIRE(fti_sampler_create(&smp, V, &o) == FTI_OK);
        fti_rng_seed(&ref_rng, 5, 0x5eed);
        mx = lg[0];
        for (i = 1; i < V; i++) mx = lg[i] > mx ? lg[i] : mx;
        for (i = 0; i < V; i++) pr[i] = (lg[i] - mx) * (1.0f / 0.8f);
        fti_softmax_fwd(k, pr, pr, 1, V);
        for (t = 0; t < 300; t++) {
            double u = fti_rng_double(&ref_rng), acc = 0;
            size_t want = V - 1;
            for (i = 0; i < V; i++) {
                acc += pr[i];
                if (u < acc) {
                    want = i;
                    break;
                }
            }
            memcpy(cp, lg, V * 4);
            CHECK_EQ_INT(fti_sampler_sample(smp, cp), want);
        }
        fti_sampler_free(smp);
        free(lg);
        free(cp);
        free(pr);
    }
}
