/* test_kernels_quant.c: the quantized multi-row matmul (src/02_kernels_quant.c) on every table
 * this CPU can run (scalar, AVX2, AVX-512 with and without VNNI, NEON with and without SDOT under
 * qemu), on random odd shapes:
 *   - against dequantize-then-f32 in double: |y - ref| <= 1.2e-2·Σ|w·x| + 1e-6 (the activation
 *     rounding to int8, as fti_matmul_w's GEMV has);
 *   - against the scalar tile: 2e-4·Σ|w·x| (the same integer dots, float sums in another order);
 *   - bit-identical for pools of 1, 2 and 4 threads, and row m's result the same whatever M;
 *   - fti_matmul_w with T > 1 (which uses it) equal to it; bad arguments rejected;
 *   - the decode GEMV (T = 1) of every table on odd row and block counts (kernels_quant_gemv_rows)
 *     and on Q8_0 weights of -128 (kernels_quant_gemv_q8_min).
 */
#include "test.h"

FTI_TEST(kernels_quant_matmul) {
    /* M 7: 4 rows then 3 single ones (AVX2 panels); N 17: 8-row groups and a partial one;
     * K 1056: 33 blocks, more than one AVX2 panel chunk (32 blocks) */
    static const size_t Ms[] = {1, 2, 3, 5, 7, 8, 13};
    static const size_t Ns[] = {1, 3, 4, 7, 17, 37};
    static const size_t Ks[] = {32, 64, 96, 288, 1056};
    static const fti_dtype types[] = {FTI_DTYPE_Q8_0, FTI_DTYPE_Q4_0};
    const fti_kernels *tabs[8];
    int nt = fti_test_kernel_tables(tabs), ti, ty;
    size_t a, b, c;
    fti_rng r;
    fti_rng_seed(&r, 11, 5);
    for (ty = 0; ty < 2; ty++)
        for (a = 0; a < sizeof Ms / sizeof Ms[0]; a++)
            for (b = 0; b < sizeof Ns / sizeof Ns[0]; b++)
                for (c = 0; c < sizeof Ks / sizeof Ks[0]; c++) {
                    fti_dtype t = types[ty];
                    size_t M = Ms[a], N = Ns[b], K = Ks[c], rb = fti_dtype_row_bytes(t, K), i, j, p;
                    float *Wf = fti_test_rand(&r, N * K, 1.0f), *X = fti_test_rand(&r, M * K, 1.0f);
                    float *Wd = (float *)malloc(N * K * sizeof(float));
                    float *Y0 = (float *)malloc(M * N * sizeof(float));
                    float *Y = (float *)malloc(M * N * sizeof(float));
                    char *W = (char *)malloc(N * rb);
                    REQUIRE(Wd && Y0 && Y && W);
                    for (i = 0; i < N; i++) {
                        REQUIRE(fti_quantize_row(NULL, t, W + i * rb, Wf + i * K, K) == FTI_OK);
                        REQUIRE(fti_dequantize_row(NULL, t, Wd + i * K, W + i * rb, K) == FTI_OK);
                    }
                    REQUIRE(fti_matmul_q(tabs[0], NULL, t, W, X, K, Y0, N, M, N, K, NULL, 0) ==
                            FTI_OK);
                    for (ti = 0; ti < nt; ti++) {
                        int bad = 0;
                        REQUIRE(fti_matmul_q(tabs[ti], NULL, t, W, X, K, Y, N, M, N, K, NULL, 0) ==
                                FTI_OK);
                        for (i = 0; i < M; i++)
                            for (j = 0; j < N; j++) {
                                double ref = 0.0, mag = 0.0, y = Y[i * N + j];
                                for (p = 0; p < K; p++) {
                                    double term = (double)Wd[j * K + p] * X[i * K + p];
                                    ref += term;
                                    mag += fabs(term);
                                }
                                if (fabs(y - ref) > 1.2e-2 * mag + 1e-6) bad++;
                                if (fabs(y - Y0[i * N + j]) > 2e-4 * mag + 1e-6) bad++;
                            }
                        if (bad)
                            fprintf(stderr, "    %s %s M=%lu N=%lu K=%lu: %d bad\n",
                                    fti_isa_name(fti_kernels_isa(tabs[ti])), fti_dtype_name(t),
                                    (unsigned long)M, (unsigned long)N, (unsigned long)K, bad);
                        CHECK(bad == 0);
                    }
                    free(Wf);
                    free(X);
                    free(Wd);
                    free(Y0);
                    free(Y);
                    free(W);
                }
}

/* Threads, M-independence, the qact path, fti_matmul_w, errors. */
FTI_TEST(kernels_quant_threads) {
    const size_t M = 19, N = 203, K = 160;
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    fti_pool *pools[3];
    int ty, pi;
    fti_rng r;
    fti_rng_seed(&r, 5, 9);
    pools[0] = fti_pool_create(1);
    pools[1] = fti_pool_create(2);
    pools[2] = fti_pool_create(4);
    for (ty = 0; ty < 2; ty++) {
        fti_dtype t = ty ? FTI_DTYPE_Q4_0 : FTI_DTYPE_Q8_0;
        size_t rb = fti_dtype_row_bytes(t, K), i, m, qb = fti_qact_bytes(M, K);
        float *Wf = fti_test_rand(&r, N * K, 1.0f), *X = fti_test_rand(&r, M * K, 1.0f);
        float *Y0 = (float *)malloc(M * N * sizeof(float)),
              *Y = (float *)malloc(M * N * sizeof(float));
        float *Y1 = (float *)malloc(N * sizeof(float));
        char *W = (char *)malloc(N * rb);
        void *qa = malloc(qb);
        REQUIRE(Y0 && Y && Y1 && W && qa && qb == M * (K / 32) * 40);
        for (i = 0; i < N; i++) fti_quantize_row(k, t, W + i * rb, Wf + i * K, K);
        REQUIRE(fti_matmul_q(k, NULL, t, W, X, K, Y0, N, M, N, K, NULL, 0) == FTI_OK);
        for (pi = 0; pi < 3; pi++) {
            memset(Y, 0, M * N * sizeof(float));
            CHECK(fti_matmul_q(k, pools[pi], t, W, X, K, Y, N, M, N, K, qa, qb) == FTI_OK);
            CHECK(memcmp(Y, Y0, M * N * sizeof(float)) == 0);
            memset(Y, 0, M * N * sizeof(float));
            CHECK(fti_qact_quantize(k, qa, X, K, M, K) == FTI_OK);
            CHECK(fti_matmul_qa(k, pools[pi], t, W, qa, Y, N, M, N, K) == FTI_OK);
            CHECK(memcmp(Y, Y0, M * N * sizeof(float)) == 0);
            memset(Y, 0, M * N * sizeof(float));
            CHECK(fti_matmul_w(k, pools[pi], t, W, X, Y, M, N, K) == FTI_OK);
            CHECK(memcmp(Y, Y0, M * N * sizeof(float)) == 0);
        }
        for (m = 0; m < M; m += 6) { /* one row alone gives the same bits as inside a batch */
            CHECK(fti_matmul_q(k, NULL, t, W, X + m * K, K, Y1, N, 1, N, K, NULL, 0) == FTI_OK);
            CHECK(memcmp(Y1, Y0 + m * N, N * sizeof(float)) == 0);
        }
        free(Wf);
        free(X);
        free(Y0);
        free(Y);
        free(Y1);
        free(W);
        free(qa);
    }
    {
        float y[4] = {1, 1, 1, 1}, x[4] = {0};
        char w[64];
        memset(w, 0, sizeof w);
        CHECK(fti_matmul_q(k, NULL, FTI_DTYPE_F32, w, x, 4, y, 1, 1, 1, 4, NULL, 0) ==
              FTI_ERR_INVALID);
        CHECK(fti_matmul_q(k, NULL, FTI_DTYPE_Q8_0, w, x, 33, y, 1, 1, 1, 33, NULL, 0) ==
              FTI_ERR_INVALID);
        CHECK(fti_qact_bytes(3, 33) == 0);
        CHECK(fti_matmul_q(k, NULL, FTI_DTYPE_Q8_0, w, x, 0, y, 4, 1, 4, 0, NULL, 0) == FTI_OK);
        CHECK(y[0] == 0.0f && y[3] == 0.0f);
    }
    for (pi = 0; pi < 3; pi++) fti_pool_free(pools[pi]);
}

/* The decode GEMV (fti_matmul_w with T = 1, the M == 1 row kernels of every table) on odd row
 * counts (multi-row kernels' leftovers) and block counts (nb % 4 != 0, groups of 4 blocks; odd
 * nb, pairs of blocks; nb = 131 past the AVX2 Q4_0 kernel's stack-prepared x, FTI__Q4_XPAIRS):
 *   - within 1.2e-2·Σ|w·x| of dequantize-then-f32 and 2e-4·Σ|w·x| of the scalar table;
 *   - every row the same bits computed alone, inside any row range, and on pools of 1, 2, 3 threads
 *     (a row's result must not depend on where a thread's chunk starts). */
FTI_TEST(kernels_quant_gemv_rows) {
    static const size_t Ns[] = {1, 3, 4, 5, 7, 8, 9, 13, 67};
    static const size_t Ks[] = {32, 96, 128, 160, 224, 800, 4192};
    const fti_kernels *tabs[8], *ref = fti_kernels_get(FTI_ISA_SCALAR);
    fti_pool *pools[3];
    int nt = fti_test_kernel_tables(tabs), ti, ty, pi;
    size_t a, c;
    fti_rng r;
    fti_rng_seed(&r, 23, 7);
    for (pi = 0; pi < 3; pi++) pools[pi] = fti_pool_create(pi + 1);
    for (ty = 0; ty < 2; ty++)
        for (a = 0; a < sizeof Ns / sizeof Ns[0]; a++)
            for (c = 0; c < sizeof Ks / sizeof Ks[0]; c++) {
                fti_dtype t = ty ? FTI_DTYPE_Q4_0 : FTI_DTYPE_Q8_0;
                size_t N = Ns[a], K = Ks[c], rb = fti_dtype_row_bytes(t, K), i, p;
                float *Wf = fti_test_rand(&r, N * K, 1.0f), *X = fti_test_rand(&r, K, 3.0f);
                float *Wd = (float *)malloc(N * K * sizeof(float));
                float *Yr = (float *)malloc(N * sizeof(float)),
                      *Y = (float *)malloc(N * sizeof(float));
                float *Y1 = (float *)malloc(N * sizeof(float));
                char *W = (char *)malloc(N * rb);
                REQUIRE(Wd && Yr && Y && Y1 && W);
                for (i = 0; i < N; i++) {
                    REQUIRE(fti_quantize_row(ref, t, W + i * rb, Wf + i * K, K) == FTI_OK);
                    REQUIRE(fti_dequantize_row(ref, t, Wd + i * K, W + i * rb, K) == FTI_OK);
                }
                REQUIRE(fti_matmul_w(ref, NULL, t, W, X, Yr, 1, N, K) == FTI_OK);
                for (ti = 0; ti < nt; ti++) {
                    int bad = 0, diff = 0;
                    REQUIRE(fti_matmul_w(tabs[ti], NULL, t, W, X, Y, 1, N, K) == FTI_OK);
                    for (i = 0; i < N; i++) {
                        double d = 0.0, mag = 0.0;
                        size_t lo = i % 3, hi = N - (i * 5) % (N - i > 0 ? N - i : 1);
                        for (p = 0; p < K; p++) {
                            d += (double)Wd[i * K + p] * X[p];
                            mag += fabs((double)Wd[i * K + p] * X[p]);
                        }
                        if (fabs(Y[i] - d) > 1.2e-2 * mag + 1e-6) bad++;
                        if (fabs(Y[i] - Yr[i]) > 2e-4 * mag + 1e-6) bad++;
                        /* alone, and inside the range [lo, hi) that holds it */
                        REQUIRE(fti_matmul_w(tabs[ti], NULL, t, W + i * rb, X, Y1, 1, 1, K) ==
                                FTI_OK);
                        if (memcmp(Y1, Y + i, sizeof(float))) diff++;
                        if (lo <= i && i < hi) {
                            REQUIRE(fti_matmul_w(tabs[ti], NULL, t, W + lo * rb, X, Y1, 1, hi - lo,
                                                 K) == FTI_OK);
                            if (memcmp(Y1 + (i - lo), Y + i, sizeof(float))) diff++;
                        }
                    }
                    for (pi = 0; pi < 3; pi++) {
                        REQUIRE(fti_matmul_w(tabs[ti], pools[pi], t, W, X, Y1, 1, N, K) == FTI_OK);
                        if (memcmp(Y1, Y, N * sizeof(float))) diff++;
                    }
                    if (bad || diff)
                        fprintf(stderr, "    gemv %s %s N=%lu K=%lu: %d bad, %d differ\n",
                                fti_isa_name(fti_kernels_isa(tabs[ti])), fti_dtype_name(t),
                                (unsigned long)N, (unsigned long)K, bad, diff);
                    CHECK(bad == 0 && diff == 0);
                }
                free(Wf);
                free(X);
                free(Wd);
                free(Yr);
                free(Y);
                free(Y1);
                free(W);
            }
    for (pi = 0; pi < 3; pi++) fti_pool_free(pools[pi]);
}

/* The decode GEMV on Q8_0 weights of -128 (a value no quantizer writes, but a GGUF file may
 * hold): every table's integer dots must stay exact, e.g. AVX2's sign flip must not wrap -128
 * (vpsignb gives -128 for -(-128)); held to the scalar table like kernels_quant_gemv_rows. */
FTI_TEST(kernels_quant_gemv_q8_min) {
    const fti_kernels *tabs[8], *ref = fti_kernels_get(FTI_ISA_SCALAR);
    int nt = fti_test_kernel_tables(tabs), ti;
    size_t N = 7, K = 160, rb = fti_dtype_row_bytes(FTI_DTYPE_Q8_0, K), i, j;
    float *X, Yr[7], Y[7];
    char *W = (char *)malloc(N * rb);
    fti_rng r;
    fti_rng_seed(&r, 41, 3);
    X = fti_test_rand(&r, K, 2.0f);
    REQUIRE(W && X);
    for (i = 0; i < N * K / FTI_QK; i++) { /* blocks of -128 and random values, scale 1/64 */
        fti_block_q8_0 *b = (fti_block_q8_0 *)(void *)(W + i * sizeof(fti_block_q8_0));
        b->d = fti_f32_to_f16(1.0f / 64.0f);
        for (j = 0; j < FTI_QK; j++)
            b->qs[j] = (int8_t)(fti_rng_u32(&r) % 3 ? -128 : (int)(fti_rng_u32(&r) % 256) - 128);
    }
    REQUIRE(fti_matmul_w(ref, NULL, FTI_DTYPE_Q8_0, W, X, Yr, 1, N, K) == FTI_OK);
    for (ti = 0; ti < nt; ti++) {
        int bad = 0;
        REQUIRE(fti_matmul_w(tabs[ti], NULL, FTI_DTYPE_Q8_0, W, X, Y, 1, N, K) == FTI_OK);
        for (i = 0; i < N; i++) {
            double mag = 0.0;
            for (j = 0; j < K; j++) mag += 2.0 * fabs(X[j]);
            if (fabs(Y[i] - Yr[i]) > 2e-4 * mag + 1e-6) bad++;
        }
        if (bad)
            fprintf(stderr, "    gemv %s q8_0 with -128: %d of %lu rows off\n",
                    fti_isa_name(fti_kernels_isa(tabs[ti])), bad, (unsigned long)N);
        CHECK(bad == 0);
    }
    free(X);
    free(W);
}

/* The AVX2 4×4 Q8_0 tile (the multi-row product of the AVX-512 table without VNNI, which no CI
 * machine has: called directly here) on weights of -128, against the scalar tile: exact integer
 * dots (its old vpsignb of w by x's sign wrapped -128). */
FTI_TEST(kernels_quant_tile_q8_min) {
#if defined(FTI__X86)
    enum { NB = 5 };
    fti_block_q8_0 wb[4][NB];
    int8_t xqb[4][NB * FTI_QK];
    float xdb[4][NB], out[16], ref[16], mag[16];
    int32_t xsb[4][NB];
    const char *w[4];
    const int8_t *xq[4];
    const float *xd[4];
    const int32_t *xs[4];
    size_t r, m, b, j;
    int bad = 0;
    fti_rng g;
    if (!fti_kernels_get(FTI_ISA_AVX2)) return; /* no AVX2 on this CPU */
    fti_rng_seed(&g, 7, 11);
    for (r = 0; r < 4; r++) {
        for (b = 0; b < NB; b++) {
            wb[r][b].d = fti_f32_to_f16(1.0f / 64.0f);
            for (j = 0; j < FTI_QK; j++)
                wb[r][b].qs[j] =
                    (int8_t)(fti_rng_u32(&g) % 3 ? -128 : (int)(fti_rng_u32(&g) % 256) - 128);
        }
        w[r] = (const char *)(const void *)wb[r];
    }
    for (m = 0; m < 4; m++) {
        for (b = 0; b < NB; b++) {
            int32_t sum = 0;
            xdb[m][b] = 0.01f * (float)(b + 1);
            for (j = 0; j < FTI_QK; j++) {
                xqb[m][b * FTI_QK + j] = (int8_t)((int)(fti_rng_u32(&g) % 255) - 127);
                sum += xqb[m][b * FTI_QK + j];
            }
            xsb[m][b] = sum;
        }
        xq[m] = xqb[m];
        xd[m] = xdb[m];
        xs[m] = xsb[m];
    }
    for (m = 0; m < 4; m++)
        for (r = 0; r < 4; r++) {
            double s = 0.0;
            for (b = 0; b < NB; b++)
                for (j = 0; j < FTI_QK; j++)
                    s += fabs((double)wb[r][b].qs[j] * xqb[m][b * FTI_QK + j] * xdb[m][b]) / 64.0;
            mag[m * 4 + r] = (float)s;
        }
    fti__qtile_q8_0_ref(w, xq, xd, xs, NB, ref);
    fti__qtile_q8_0_avx2(w, xq, xd, xs, NB, out);
    for (j = 0; j < 16; j++)
        if (fabs(out[j] - ref[j]) > 2e-4 * mag[j] + 1e-6) bad++;
    if (bad) fprintf(stderr, "    avx2 q8_0 tile with -128: %d of 16 outputs off\n", bad);
    CHECK(bad == 0);
#endif
}

/* The two paths a decoder takes through a quantized matrix compute the same thing on the x86
 * tables with 4×4 tiles (scalar, the AVX-512 table without VNNI): one activation row at a time
 * (fti_matmul_w, T = 1: the session) and several at once (fti_matmul_q, M = 3: the batched
 * decoder), bit for bit, so a difference between those paths comes from elsewhere. The panel
 * tables (AVX2's 8-row panels, AVX-512 VNNI) and NEON's Q4_0 tiles sum in another order: held
 * to 1e-4. */
FTI_TEST(kernels_quant_decode_paths) {
    static const size_t Ns[] = {1, 5, 37, 96};
    static const size_t Ks[] = {32, 64, 160, 4192};
    const fti_kernels *tabs[8], *ref = fti_kernels_get(FTI_ISA_SCALAR);
    int nt = fti_test_kernel_tables(tabs), ti, ty;
    size_t a, c;
    fti_rng r;
    fti_rng_seed(&r, 31, 5);
    for (ty = 0; ty < 2; ty++)
        for (a = 0; a < sizeof Ns / sizeof Ns[0]; a++)
            for (c = 0; c < sizeof Ks / sizeof Ks[0]; c++) {
                fti_dtype t = ty ? FTI_DTYPE_Q4_0 : FTI_DTYPE_Q8_0;
                size_t N = Ns[a], K = Ks[c], M = 3, rb = fti_dtype_row_bytes(t, K), i, m;
                float *Wf = fti_test_rand(&r, N * K, 1.0f), *X = fti_test_rand(&r, M * K, 3.0f);
                float *Y1 = (float *)malloc(M * N * sizeof(float));
                float *Ym = (float *)malloc(M * N * sizeof(float));
                char *W = (char *)malloc(N * rb);
                REQUIRE(Y1 && Ym && W);
                for (i = 0; i < N; i++)
                    REQUIRE(fti_quantize_row(ref, t, W + i * rb, Wf + i * K, K) == FTI_OK);
                for (ti = 0; ti < nt; ti++) {
                    int loose = fti_qpack_bytes(tabs[ti], t, N, K) != 0 ||
                                 fti_kernels_isa(tabs[ti]) == FTI_ISA_NEON ||
                                 fti_kernels_isa(tabs[ti]) == FTI_ISA_AVX2,
                        diff = 0;
                    for (m = 0; m < M; m++)
                        REQUIRE(fti_matmul_w(tabs[ti], NULL, t, W, X + m * K, Y1 + m * N, 1, N,
                                             K) == FTI_OK);
                    REQUIRE(fti_matmul_q(tabs[ti], NULL, t, W, X, K, Ym, N, M, N, K, NULL, 0) ==
                            FTI_OK);
                    for (i = 0; i < M * N; i++) {
                        if (loose ? fabs(Y1[i] - Ym[i]) > 1e-4 * (1.0 + fabs(Y1[i]))
                                   : memcmp(Y1 + i, Ym + i, sizeof(float)) != 0)
                            diff++;
                    }
                    if (diff)
                        fprintf(stderr, "    %s %s N=%lu K=%lu: %d of %lu differ\n",
                                fti_isa_name(fti_kernels_isa(tabs[ti])), fti_dtype_name(t),
                                (unsigned long)N, (unsigned long)K, diff, (unsigned long)(M * N));
                    CHECK(diff == 0);
                }
                free(Wf);
                free(X);
                free(Y1);
                free(Ym);
                free(W);
            }
}
