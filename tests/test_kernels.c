/* test_kernels.c: every kernel of every table this CPU can run, against the scalar references,
 * on random inputs of odd sizes; backward ops against finite differences; quantized GEMV against
 * dequantize-then-f32; bit-identical results for 1, 2 and 4 threads.
 *
 * Tolerances (|x - ref| <= atol + rtol·|ref|, or against Σ|terms| for sums):
 *   GEMM/dot     1e-6·(K+8)·Σ|a·b|  (float rounding of a K-term sum in any order)
 *   elementwise  2e-6 relative + 1e-7 absolute (vector exp vs expf: < 2 ulp)
 *   quantized    same-table-vs-reference 2e-4·Σ|w·x|; vs dequantized f32: 1.2e-2·Σ|w·x|
 */
#include "test.h"

static const int kt_sizes[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 255, 257};
#define KT_NSIZES ((int)(sizeof kt_sizes / sizeof kt_sizes[0]))

/* Naive double-precision GEMM and Σ|a·b| per element (for the tolerance). */
static void kt_gemm_ref(unsigned flags, size_t M, size_t N, size_t K, const float *A, size_t lda,
                        const float *B, size_t ldb, const float *C0, size_t ldc, double *ref,
                        double *mag) {
    size_t i, j, p;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double s = 0, m = 0;
            for (p = 0; p < K; p++) {
                double a = (flags & FTI_MM_TRANS_A) ? A[p * lda + i] : A[i * lda + p];
                double b = (flags & FTI_MM_TRANS_B) ? B[j * ldb + p] : B[p * ldb + j];
                s += a * b;
                m += fabs(a * b);
            }
            if (flags & FTI_MM_ACCUMULATE) {
                s += C0[i * ldc + j];
                m += fabs(C0[i * ldc + j]);
            }
            ref[i * N + j] = s;
            mag[i * N + j] = m;
        }
}

static int kt_check_gemm(const fti_kernels *k, fti_pool *pool, unsigned flags, size_t M, size_t N,
                         size_t K, size_t pad, fti_rng *r) {
    size_t lda = ((flags & FTI_MM_TRANS_A) ? M : K) + pad;
    size_t ldb = ((flags & FTI_MM_TRANS_B) ? K : N) + pad, ldc = N + pad;
    size_t rows_a = (flags & FTI_MM_TRANS_A) ? K : M, rows_b = (flags & FTI_MM_TRANS_B) ? N : K;
    float *A = fti_test_rand(r, rows_a * lda, 1.0f), *B = fti_test_rand(r, rows_b * ldb, 1.0f);
    float *C = fti_test_rand(r, M * ldc, 1.0f), *C0 = (float *)malloc(M * ldc * sizeof(float));
    double *ref = (double *)malloc(M * N * sizeof(double) + 8);
    double *mag = (double *)malloc(M * N * sizeof(double) + 8);
    size_t i, j;
    int bad = 0;
    memcpy(C0, C, M * ldc * sizeof(float));
    kt_gemm_ref(flags, M, N, K, A, lda, B, ldb, C0, ldc, ref, mag);
    fti_matmul(k, pool, flags, M, N, K, A, lda, B, ldb, C, ldc);
    for (i = 0; i < M && !bad; i++) {
        for (j = 0; j < N; j++) {
            double tol = 1e-6 * (double)(K + 8) * mag[i * N + j] + 1e-30;
            if (!(fabs(C[i * ldc + j] - ref[i * N + j]) <= tol)) {
                fprintf(stderr,
                        "    gemm %s flags=%u M=%zu N=%zu K=%zu: C[%zu,%zu]=%.9g ref %.9g\n",
                        fti_isa_name(fti_kernels_isa(k)), flags, M, N, K, i, j, C[i * ldc + j],
                        ref[i * N + j]);
                bad = 1;
                break;
            }
        }
        /* padding columns must be untouched */
        for (j = N; j < ldc && !bad; j++)
            if (memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(float)) != 0) {
                fprintf(stderr, "    gemm wrote padding at [%zu,%zu]\n", i, j);
                bad = 1;
            }
    }
    free(A);
    free(B);
    free(C);
    free(C0);
    free(ref);
    free(mag);
    return bad;
}

FTI_TEST(kernels_dispatch) {
    const fti_kernels *tabs[8];
    char desc[256], forced[32] = "";
    int n = fti_test_kernel_tables(tabs), i;
    if (getenv("FTI_ISA")) { /* a run under FTI_ISA=...: test the unforced choice, then restore */
        snprintf(forced, sizeof forced, "%s", getenv("FTI_ISA"));
        unsetenv("FTI_ISA");
    }
    REQUIRE(n >= 1);
    CHECK(fti_kernels_isa(tabs[0]) == FTI_ISA_SCALAR);
    CHECK(fti_kernels_get(FTI_ISA_AUTO) != NULL);
    CHECK(fti_kernels_get(FTI_ISA_AUTO) == fti_kernels_get(fti_kernels_isa(tabs[n - 1])));
    fti_cpu_describe(desc, sizeof desc);
    printf("    %s\n", desc);
    CHECK(strstr(desc, "auto:") != NULL);
    for (i = 0; i < n; i++) {
        fti_isa isa = fti_kernels_isa(tabs[i]);
        setenv("FTI_ISA", fti_isa_name(isa), 1);
        CHECK(fti_kernels_isa(fti_kernels_get(FTI_ISA_AUTO)) == isa);
    }
    setenv("FTI_ISA", "bogus", 1);
    CHECK(fti_kernels_get(FTI_ISA_AUTO) == fti_kernels_get(fti_kernels_isa(tabs[n - 1])));
    unsetenv("FTI_ISA");
    if (forced[0]) setenv("FTI_ISA", forced, 1);
    CHECK_EQ_STR(fti_dtype_name(FTI_DTYPE_Q4_0), "q4_0");
    CHECK_EQ_STR(fti_dtype_name((fti_dtype)99), "?");
    CHECK_EQ_INT(fti_dtype_row_bytes(FTI_DTYPE_Q8_0, 64), 68);
    CHECK_EQ_INT(fti_dtype_row_bytes(FTI_DTYPE_Q4_0, 64), 36);
    CHECK_EQ_INT(fti_dtype_row_bytes(FTI_DTYPE_Q4_0, 33), 0);
    CHECK_EQ_INT(fti_dtype_row_bytes(FTI_DTYPE_BF16, 3), 6);
    CHECK_EQ_INT(fti_dtype_row_bytes((fti_dtype)7, 32), 0);
    CHECK_EQ_INT(sizeof(fti_block_q8_0), 34);
    CHECK_EQ_INT(sizeof(fti_block_q4_0), 18);
}

FTI_TEST(kernels_matmul_all_tables) {
    const fti_kernels *tabs[8];
    int n = fti_test_kernel_tables(tabs), t, i, f, bad = 0;
    static const unsigned flag_sets[] = {0,
                                         FTI_MM_TRANS_B,
                                         FTI_MM_TRANS_A,
                                         FTI_MM_ACCUMULATE,
                                         FTI_MM_TRANS_B | FTI_MM_ACCUMULATE,
                                         FTI_MM_TRANS_A | FTI_MM_ACCUMULATE,
                                         FTI_MM_TRANS_A | FTI_MM_TRANS_B};
    fti_rng r;
    fti_rng_seed(&r, 42, 1);
    for (t = 0; t < n; t++)
        for (f = 0; f < (int)(sizeof flag_sets / sizeof flag_sets[0]); f++)
            for (i = 0; i < KT_NSIZES && !bad; i++) {
                size_t M = (size_t)kt_sizes[i], N = (size_t)kt_sizes[(i + 5) % KT_NSIZES];
                size_t K = (size_t)kt_sizes[(i + 9) % KT_NSIZES];
                bad |= kt_check_gemm(tabs[t], NULL, flag_sets[f], M, N, K, (size_t)(i % 3), &r);
                bad |= kt_check_gemm(tabs[t], NULL, flag_sets[f], N, K, M, 0, &r);
            }
    CHECK(!bad);
    /* K = 0 clears C (or leaves it under accumulate) */
    {
        float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
        fti_matmul(NULL, NULL, FTI_MM_ACCUMULATE, 2, 3, 0, A, 1, B, 3, C, 3);
        CHECK(C[5] == 6.0f);
        fti_matmul(NULL, NULL, 0, 2, 3, 0, A, 1, B, 3, C, 3);
        CHECK(C[0] == 0.0f && C[5] == 0.0f);
    }
}

/* FTI_MM_BF16 on one table: against fti__matmul_bf16_ref (the specification; the scalar table
 * must match it bit for bit, SIMD within float rounding of the sums, since vdpbf16ps may flush
 * denormals or round its two adds differently), against the fp32 product within bf16 rounding
 * of the inputs (2·2^-8·Σ|a·b|), and with padding untouched. */
static int kt_check_gemm_bf16(const fti_kernels *k, fti_pool *pool, unsigned flags, size_t M,
                              size_t N, size_t K, size_t pad, fti_rng *r) {
    size_t lda = ((flags & FTI_MM_TRANS_A) ? M : K) + pad;
    size_t ldb = ((flags & FTI_MM_TRANS_B) ? K : N) + pad, ldc = N + pad;
    size_t rows_a = (flags & FTI_MM_TRANS_A) ? K : M, rows_b = (flags & FTI_MM_TRANS_B) ? N : K;
    float *A = fti_test_rand(r, rows_a * lda, 1.0f), *B = fti_test_rand(r, rows_b * ldb, 1.0f);
    float *C = fti_test_rand(r, M * ldc, 1.0f), *C0 = (float *)malloc(M * ldc * sizeof(float));
    float *Cb = (float *)malloc(M * ldc * sizeof(float));
    double *ref = (double *)malloc(M * N * sizeof(double) + 8);
    double *mag = (double *)malloc(M * N * sizeof(double) + 8);
    int exact = fti_kernels_isa(k) == FTI_ISA_SCALAR, bad = 0;
    size_t i, j;
    memcpy(C0, C, M * ldc * sizeof(float));
    memcpy(Cb, C, M * ldc * sizeof(float));
    kt_gemm_ref(flags, M, N, K, A, lda, B, ldb, C0, ldc, ref, mag);
    fti__matmul_bf16_ref(flags, M, N, K, A, lda, B, ldb, Cb, ldc, fti__gemm_kc(k, K));
    fti_matmul(k, pool, flags | FTI_MM_BF16, M, N, K, A, lda, B, ldb, C, ldc);
    for (i = 0; i < M && !bad; i++)
        for (j = 0; j < ldc && !bad; j++) {
            float c = C[i * ldc + j], cb = Cb[i * ldc + j];
            if (j >= N) {
                bad = memcmp(&c, &C0[i * ldc + j], sizeof c) != 0;
            } else if (exact) {
                bad = memcmp(&c, &cb, sizeof c) != 0;
            } else {
                double tol = 1e-6 * (double)(K + 8) * mag[i * N + j] + 1e-30;
                bad = !(fabs((double)c - (double)cb) <= tol);
            }
            if (!bad && j < N)
                bad = !(fabs((double)c - ref[i * N + j]) <= 8e-3 * mag[i * N + j] + 1e-30);
            if (bad)
                fprintf(stderr,
                        "    gemm bf16 %s flags=%u M=%zu N=%zu K=%zu: C[%zu,%zu]=%.9g bf16 ref "
                        "%.9g f64 %.9g\n",
                        fti_isa_name(fti_kernels_isa(k)), flags, M, N, K, i, j, c, cb,
                        j < N ? ref[i * N + j] : 0.0);
        }
    free(A);
    free(B);
    free(C);
    free(C0);
    free(Cb);
    free(ref);
    free(mag);
    return bad;
}

FTI_TEST(kernels_matmul_bf16) {
    const fti_kernels *tabs[8];
    int n = fti_test_kernel_tables(tabs), t, i, f, p, bad = 0, tested = 0;
    static const unsigned flag_sets[] = {0, FTI_MM_TRANS_B, FTI_MM_TRANS_A,
                                         FTI_MM_TRANS_A | FTI_MM_ACCUMULATE,
                                         FTI_MM_TRANS_B | FTI_MM_ACCUMULATE,
                                         FTI_MM_TRANS_A | FTI_MM_TRANS_B};
    fti_pool *pools[3];
    float *A, *B, *C[3];
    fti_rng r;
    fti_rng_seed(&r, 16, 1);
    CHECK(fti_matmul_has_bf16(fti_kernels_get(FTI_ISA_SCALAR)));
    for (t = 0; t < n; t++) {
        if (!fti_matmul_has_bf16(tabs[t])) continue;
        tested++;
        for (f = 0; f < (int)(sizeof flag_sets / sizeof flag_sets[0]); f++)
            for (i = 0; i < KT_NSIZES && !bad; i++) {
                size_t M = (size_t)kt_sizes[i], N = (size_t)kt_sizes[(i + 5) % KT_NSIZES];
                size_t K = (size_t)kt_sizes[(i + 9) % KT_NSIZES];
                bad |= kt_check_gemm_bf16(tabs[t], NULL, flag_sets[f], M, N, K, (size_t)(i % 3),
                                          &r);
                bad |= kt_check_gemm_bf16(tabs[t], NULL, flag_sets[f], N, K, M, 0, &r);
            }
        /* across the cache blocks (K split in two, N over nc) */
        bad |= kt_check_gemm_bf16(tabs[t], NULL, FTI_MM_TRANS_B, 53, 530, 401, 0, &r);
        bad |= kt_check_gemm_bf16(tabs[t], NULL, FTI_MM_TRANS_A | FTI_MM_ACCUMULATE, 77, 45, 521,
                                  1, &r);
    }
    printf("    bf16 matmul tables tested: %d\n", tested);
    CHECK(!bad);
    /* bit-identical for 1, 2 and 4 threads */
    pools[0] = fti_pool_create(1);
    pools[1] = fti_pool_create(2);
    pools[2] = fti_pool_create(4);
    REQUIRE(pools[0] && pools[1] && pools[2]);
    A = fti_test_rand(&r, 320 * 320, 1.0f);
    B = fti_test_rand(&r, 320 * 320, 1.0f);
    for (p = 0; p < 3; p++) C[p] = (float *)calloc(320 * 320, sizeof(float));
    for (f = 0; f < 3; f++) {
        unsigned flags = FTI_MM_BF16 | FTI_MM_ACCUMULATE |
                         (f == 1 ? FTI_MM_TRANS_B : f == 2 ? FTI_MM_TRANS_A : 0u);
        for (p = 0; p < 3; p++) {
            for (i = 0; i < 320 * 320; i++) C[p][i] = 0.5f;
            fti_matmul(NULL, pools[p], flags, 97, 203, 301, A, 320, B, 320, C[p], 320);
        }
        CHECK(memcmp(C[0], C[1], 320 * 320 * sizeof(float)) == 0);
        CHECK(memcmp(C[0], C[2], 320 * 320 * sizeof(float)) == 0);
    }
    for (p = 0; p < 3; p++) {
        free(C[p]);
        fti_pool_free(pools[p]);
    }
    free(A);
    free(B);
}

/* Larger shapes that cross the cache blocks (kc = 256..384, nc = 512..1024, N cut into equal
 * nc blocks) and use threads. */
FTI_TEST(kernels_matmul_blocks_and_threads) {
    const fti_kernels *tabs[8];
    int n = fti_test_kernel_tables(tabs), t, bad = 0;
    fti_pool *pool = fti_pool_create(3);
    fti_rng r;
    REQUIRE(pool != NULL);
    fti_rng_seed(&r, 7, 1);
    for (t = 0; t < n; t++) {
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_B, 53, 530, 400, 0, &r);
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_A | FTI_MM_ACCUMULATE, 77, 45, 520, 1, &r);
        bad |= kt_check_gemm(tabs[t], pool, 0, 300, 37, 259, 0, &r);
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_B, 1, 301, 95, 0, &r); /* GEMV path */
        bad |= kt_check_gemm(tabs[t], pool, 0, 1, 300, 257, 3, &r); /* row · matrix path */
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_B | FTI_MM_ACCUMULATE, 3, 200, 65, 1, &r);
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_B, 4, 33, 1, 2, &r);
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_A | FTI_MM_ACCUMULATE, 1, 130, 33, 2, &r);
        /* N over several equal nc blocks (one thread: 2100 -> 3 blocks; split over threads) */
        bad |= kt_check_gemm(tabs[t], NULL, 0, 13, 2100, 45, 1, &r);
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_A | FTI_MM_ACCUMULATE, 29, 1100, 77, 0,
                             &r);
        /* the dW product (TRANS_A) split by rows where N fits one column block and N <= 4·M
         * on the AVX-512 table (else by columns): several K blocks, partial last tiles */
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_A | FTI_MM_ACCUMULATE, 79, 300, 700, 1,
                             &r);
        /* packed A over several K blocks of the wide kind (up to 1024 on AVX2 and AVX-512:
         * 2100 -> 3 × 700, 1100 -> 2 × 550), stored then added; partial tiles */
        bad |= kt_check_gemm(tabs[t], pool, 0, 31, 45, 2100, 1, &r);
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_B | FTI_MM_ACCUMULATE, 19, 37, 1100, 0,
                             &r);
        /* the dW product with K >= 4·M (K split in two halves on AVX2), partial tiles */
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_A | FTI_MM_ACCUMULATE, 37, 45, 1100, 1,
                             &r);
        bad |= kt_check_gemm(tabs[t], pool, FTI_MM_TRANS_A, 40, 33, 1030, 0, &r);
    }
    CHECK(!bad);
    fti_pool_free(pool);
}

FTI_TEST(kernels_deterministic_threads) {
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    fti_pool *pools[3];
    size_t M = 97, N = 203, K = 301, i;
    static const fti_dtype types[] = {FTI_DTYPE_F32, FTI_DTYPE_F16, FTI_DTYPE_BF16, FTI_DTYPE_Q8_0,
                                      FTI_DTYPE_Q4_0};
    int p, f, ti;
    fti_rng r;
    float *A, *B, *C[3];
    fti_rng_seed(&r, 3, 3);
    pools[0] = fti_pool_create(1);
    pools[1] = fti_pool_create(2);
    pools[2] = fti_pool_create(4);
    REQUIRE(pools[0] && pools[1] && pools[2]);
    A = fti_test_rand(&r, 320 * 320, 1.0f);
    B = fti_test_rand(&r, 320 * 320, 1.0f);
    for (p = 0; p < 3; p++) C[p] = (float *)calloc(320 * 320, sizeof(float));
    for (f = 0; f < 5; f++) {
        unsigned flags = f == 0   ? 0
                         : f == 1 ? FTI_MM_TRANS_B
                         : f == 2 ? FTI_MM_TRANS_A
                         : f == 3 ? FTI_MM_TRANS_B
                                  : 0;
        size_t m = f >= 3 ? 1 : M;
        for (p = 0; p < 3; p++) {
            for (i = 0; i < 320 * 320; i++) C[p][i] = 0.5f;
            fti_matmul(k, pools[p], flags | FTI_MM_ACCUMULATE, m, N, K, A, 320, B, 320, C[p], 320);
        }
        CHECK(memcmp(C[0], C[1], 320 * 320 * sizeof(float)) == 0);
        CHECK(memcmp(C[0], C[2], 320 * 320 * sizeof(float)) == 0);
    }
    { /* packed A over several wide K blocks (K = 2100: 3 × 700 on AVX2), split by rows */
        size_t m3 = 47, n3 = 40, k3 = 2100;
        float *A3 = fti_test_rand(&r, m3 * k3, 1.0f), *B3 = fti_test_rand(&r, k3 * n3, 1.0f);
        float *D[3];
        for (p = 0; p < 3; p++) {
            D[p] = (float *)calloc(m3 * n3, sizeof(float));
            fti_matmul(k, pools[p], 0, m3, n3, k3, A3, k3, B3, n3, D[p], n3);
        }
        CHECK(memcmp(D[0], D[1], m3 * n3 * sizeof(float)) == 0);
        CHECK(memcmp(D[0], D[2], m3 * n3 * sizeof(float)) == 0);
        for (p = 0; p < 3; p++) free(D[p]);
        free(A3);
        free(B3);
    }
    { /* the dW product (TRANS_A) over several K blocks at one, two and four threads: N = 300
       * (split by rows on the AVX-512 table: N fits one column block and N <= 4·M) and N = 1050
       * (by columns) */
        size_t m2 = 101, k2 = 700, ld = 1050, n2;
        float *A2 = fti_test_rand(&r, k2 * ld, 1.0f), *B2 = fti_test_rand(&r, k2 * ld, 1.0f);
        float *D[3];
        for (p = 0; p < 3; p++) D[p] = (float *)calloc(m2 * ld, sizeof(float));
        for (n2 = 300; n2 <= 1050; n2 += 750) {
            for (p = 0; p < 3; p++) {
                for (i = 0; i < m2 * ld; i++) D[p][i] = 0.25f;
                fti_matmul(k, pools[p], FTI_MM_TRANS_A | FTI_MM_ACCUMULATE, m2, n2, k2, A2, ld,
                           B2, ld, D[p], ld);
            }
            CHECK(memcmp(D[0], D[1], m2 * ld * sizeof(float)) == 0);
            CHECK(memcmp(D[0], D[2], m2 * ld * sizeof(float)) == 0);
        }
        for (p = 0; p < 3; p++) free(D[p]);
        free(A2);
        free(B2);
    }
    { /* the dW product with K >= 4·M (K split in two halves on AVX2) at 1, 2, 3 and 4 threads:
       * 3 threads cut a part's rows unevenly, one chunk runs rows of both parts */
        size_t m4 = 61, n4 = 50, k4 = 1300, ld4 = 64;
        float *A4 = fti_test_rand(&r, k4 * ld4, 1.0f), *B4 = fti_test_rand(&r, k4 * ld4, 1.0f);
        float *D[4];
        fti_pool *pool3 = fti_pool_create(3);
        REQUIRE(pool3 != NULL);
        for (p = 0; p < 4; p++) {
            D[p] = (float *)malloc(m4 * ld4 * sizeof(float));
            for (i = 0; i < m4 * ld4; i++) D[p][i] = 0.25f;
            fti_matmul(k, p < 3 ? pools[p] : pool3, FTI_MM_TRANS_A | FTI_MM_ACCUMULATE, m4, n4,
                       k4, A4, ld4, B4, ld4, D[p], ld4);
        }
        for (p = 1; p < 4; p++) CHECK(memcmp(D[0], D[p], m4 * ld4 * sizeof(float)) == 0);
        for (p = 0; p < 4; p++) free(D[p]);
        fti_pool_free(pool3);
        free(A4);
        free(B4);
    }
    for (ti = 0; ti < 5; ti++) {
        size_t n_in = 320, n_out = 250, T;
        void *W = malloc(fti_dtype_row_bytes(types[ti], n_in) * n_out);
        for (i = 0; i < n_out; i++)
            CHECK_OK(fti_quantize_row(k, types[ti],
                                      (char *)W + i * fti_dtype_row_bytes(types[ti], n_in),
                                      A + i * n_in, n_in));
        for (T = 1; T <= 3; T += 2) {
            for (p = 0; p < 3; p++)
                CHECK_OK(fti_matmul_w(k, pools[p], types[ti], W, B, C[p], T, n_out, n_in));
            CHECK(memcmp(C[0], C[1], T * n_out * sizeof(float)) == 0);
            CHECK(memcmp(C[0], C[2], T * n_out * sizeof(float)) == 0);
        }
        free(W);
    }
    for (p = 0; p < 3; p++) {
        free(C[p]);
        fti_pool_free(pools[p]);
    }
    free(A);
    free(B);
}

/* fti_matmul_w for every dtype and table: vs the scalar table (same math), and vs
 * dequantize-then-f32 (which differs by the activation rounding for Q8_0/Q4_0). */
FTI_TEST(kernels_matmul_w_all_dtypes) {
    const fti_kernels *tabs[8], *ref = fti_kernels_get(FTI_ISA_SCALAR);
    static const fti_dtype types[] = {FTI_DTYPE_F32, FTI_DTYPE_F16, FTI_DTYPE_BF16, FTI_DTYPE_Q8_0,
                                      FTI_DTYPE_Q4_0};
    static const size_t n_ins[] = {1, 7, 32, 33, 64, 96, 257, 288, 544, 8352}; /* > 8192: */
    /* the VBMI Q4_0 kernel falls back to its pairwise version */
    int n = fti_test_kernel_tables(tabs), t, ti, ni, bad = 0;
    fti_pool *pool = fti_pool_create(2);
    fti_rng r;
    fti_rng_seed(&r, 11, 2);
    for (ti = 0; ti < 5; ti++)
        for (ni = 0; ni < (int)(sizeof n_ins / sizeof n_ins[0]); ni++) {
            size_t n_in = n_ins[ni], n_out = 37, T = ni % 2 ? 3 : 1, i, j, rb;
            float *Wf, *X, *Wd, *Yr, *Y, *Yd;
            void *W;
            rb = fti_dtype_row_bytes(types[ti], n_in);
            if (rb == 0) {
                CHECK(fti_matmul_w(NULL, NULL, types[ti], NULL, NULL, NULL, 1, 1, n_in) ==
                      FTI_ERR_INVALID);
                continue;
            }
            Wf = fti_test_rand(&r, n_out * n_in, 1.0f);
            X = fti_test_rand(&r, T * n_in, 2.0f);
            Wd = (float *)malloc(n_out * n_in * sizeof(float));
            Yr = (float *)malloc(T * n_out * sizeof(float));
            Y = (float *)malloc(T * n_out * sizeof(float));
            Yd = (float *)malloc(T * n_out * sizeof(float));
            W = malloc(rb * n_out);
            for (i = 0; i < n_out; i++) {
                CHECK_OK(fti_quantize_row(ref, types[ti], (char *)W + i * rb, Wf + i * n_in, n_in));
                CHECK_OK(
                    fti_dequantize_row(ref, types[ti], Wd + i * n_in, (char *)W + i * rb, n_in));
            }
            CHECK_OK(fti_matmul_w(ref, NULL, types[ti], W, X, Yr, T, n_out, n_in));
            fti_matmul(ref, NULL, FTI_MM_TRANS_B, T, n_out, n_in, X, n_in, Wd, n_in, Yd, n_out);
            for (t = 0; t < n; t++) {
                CHECK_OK(fti_matmul_w(tabs[t], pool, types[ti], W, X, Y, T, n_out, n_in));
                for (i = 0; i < T && !bad; i++)
                    for (j = 0; j < n_out; j++) {
                        double mag = 0;
                        size_t p;
                        for (p = 0; p < n_in; p++)
                            mag += fabs((double)Wd[j * n_in + p] * X[i * n_in + p]);
                        if (!(fabs(Y[i * n_out + j] - Yr[i * n_out + j]) <= 2e-4 * mag + 1e-30) ||
                            !(fabs(Y[i * n_out + j] - Yd[i * n_out + j]) <= 1.2e-2 * mag + 1e-30)) {
                            fprintf(stderr,
                                    "    matmul_w %s %s n_in=%zu [%zu,%zu]: %.9g ref %.9g "
                                    "f32 %.9g\n",
                                    fti_isa_name(fti_kernels_isa(tabs[t])),
                                    fti_dtype_name(types[ti]), n_in, i, j, Y[i * n_out + j],
                                    Yr[i * n_out + j], Yd[i * n_out + j]);
                            bad = 1;
                            break;
                        }
                    }
            }
            free(Wf);
            free(X);
            free(Wd);
            free(Yr);
            free(Y);
            free(Yd);
            free(W);
        }
    CHECK(!bad);
    fti_pool_free(pool);
}

FTI_TEST(kernels_fp16_bf16) {
    const fti_kernels *tabs[8];
    uint32_t h;
    int n = fti_test_kernel_tables(tabs), t, i, bad = 0;
    fti_rng r;
    /* every f16 value survives f16 -> f32 -> f16 */
    for (h = 0; h < 65536; h++) {
        float f = fti_f16_to_f32((uint16_t)h);
        if (f != f) continue;
        if (fti_f32_to_f16(f) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(fti_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(fti_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(fti_f32_to_f16(1.0f + 1.0f / 2048.0f) == 0x3c00); /* tie to even */
    CHECK(fti_f32_to_f16(5.9604645e-08f) == 0x0001);
    CHECK(fti_f32_to_f16(2.9802322e-08f) == 0x0000); /* half the smallest subnormal: even */
    CHECK(fti_f32_to_f16(-0.0f) == 0x8000);
    CHECK(fti_f16_to_f32(0x3555) > 0.333f && fti_f16_to_f32(0x3555) < 0.3334f);
    CHECK(fti_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(fti_f32_to_bf16(1.00390625f) == 0x3f80); /* tie to even */
    CHECK(fti_bf16_to_f32(0x4049) == 3.140625f);
    CHECK(fti_f32_to_bf16(NAN) & 0x40);
    /* rows: every table agrees with the scalar conversion exactly */
    fti_rng_seed(&r, 5, 5);
    for (t = 0; t < n; t++) {
        float src[257], back[257];
        uint16_t d[257];
        for (i = 0; i < 257; i++) src[i] = (fti_rng_float(&r) - 0.5f) * (float)(1 << (i % 20));
        src[3] = 1e-7f;
        src[4] = 1e6f;
        src[5] = -INFINITY;
        fti_f32_to_f16_row(tabs[t], d, src, 257);
        for (i = 0; i < 257; i++) CHECK_EQ_INT(d[i], fti_f32_to_f16(src[i]));
        fti_f16_to_f32_row(tabs[t], back, d, 257);
        for (i = 0; i < 257; i++) CHECK(back[i] == fti_f16_to_f32(d[i]));
        fti_f32_to_bf16_row(tabs[t], d, src, 257);
        for (i = 0; i < 257; i++) CHECK_EQ_INT(d[i], fti_f32_to_bf16(src[i]));
        fti_bf16_to_f32_row(tabs[t], back, d, 257);
        for (i = 0; i < 257; i++) CHECK(back[i] == fti_bf16_to_f32(d[i]));
    }
}

/* The block layouts, byte for byte (ggml's). */
FTI_TEST(kernels_quant_layout) {
    const fti_kernels *tabs[8];
    unsigned char q4[18], q8[34];
    float out[32], src[64], back[64];
    int n = fti_test_kernel_tables(tabs), t, i;
    fti_rng r;
    uint16_t d = fti_f32_to_f16(0.5f);
    memcpy(q4, &d, 2);
    memcpy(q8, &d, 2);
    for (i = 0; i < 16; i++) q4[2 + i] = (unsigned char)((i & 15) | ((15 - i) << 4));
    for (i = 0; i < 32; i++) q8[2 + i] = (unsigned char)(int8_t)(i - 16);
    for (t = 0; t < n; t++) {
        CHECK_OK(fti_dequantize_row(tabs[t], FTI_DTYPE_Q4_0, out, q4, 32));
        for (i = 0; i < 16; i++) {
            CHECK(out[i] == (float)(i - 8) * 0.5f);
            CHECK(out[i + 16] == (float)(15 - i - 8) * 0.5f);
        }
        CHECK_OK(fti_dequantize_row(tabs[t], FTI_DTYPE_Q8_0, out, q8, 32));
        for (i = 0; i < 32; i++) CHECK(out[i] == (float)(i - 16) * 0.5f);
        CHECK(fti_quantize_row(tabs[t], FTI_DTYPE_Q8_0, q8, src, 31) == FTI_ERR_INVALID);
        CHECK(fti_dequantize_row(tabs[t], (fti_dtype)3, out, q8, 32) == FTI_ERR_INVALID);
    }
    /* round trips: error within half a step of each block's scale */
    fti_rng_seed(&r, 9, 9);
    for (i = 0; i < 64; i++) src[i] = (fti_rng_float(&r) - 0.5f) * 6.0f;
    src[40] = 0;
    for (t = 0; t < n; t++) {
        fti_block_q8_0 b8[2];
        fti_block_q4_0 b4[2];
        float amax0 = 0, amax1 = 0;
        for (i = 0; i < 32; i++) amax0 = fabsf(src[i]) > amax0 ? fabsf(src[i]) : amax0;
        for (i = 32; i < 64; i++) amax1 = fabsf(src[i]) > amax1 ? fabsf(src[i]) : amax1;
        CHECK_OK(fti_quantize_row(tabs[t], FTI_DTYPE_Q8_0, b8, src, 64));
        CHECK_OK(fti_dequantize_row(tabs[t], FTI_DTYPE_Q8_0, back, b8, 64));
        for (i = 0; i < 64; i++)
            CHECK_NEAR(back[i], src[i], (i < 32 ? amax0 : amax1) / 127.0f * 0.51f, 0);
        CHECK_OK(fti_quantize_row(tabs[t], FTI_DTYPE_Q4_0, b4, src, 64));
        CHECK_OK(fti_dequantize_row(tabs[t], FTI_DTYPE_Q4_0, back, b4, 64));
        for (i = 0; i < 64; i++)
            CHECK_NEAR(back[i], src[i], (i < 32 ? amax0 : amax1) / 8.0f * 1.01f,
                       0); /* clamp at +7 */
    }
}

/* One block of 32 test values of kind `kind` (random scales, ties, zeros, extremes, NaN). */
static void kt_quant_block(float *x, int kind, fti_rng *r) {
    static const float scales[] = {1e-3f, 0.02f, 1.0f, 7.5f, 300.0f, 6.0e4f, 1e30f};
    int j;
    float s = scales[fti_rng_below(r, sizeof scales / sizeof scales[0])];
    for (j = 0; j < 32; j++) x[j] = (fti_rng_float(r) * 2.0f - 1.0f) * s;
    switch (kind) {
    case 0: break; /* random */
    case 1:        /* Q8_0 ties: max 127 gives d = 1, so x = k + 1/2 (and its neighbours) */
        for (j = 0; j < 32; j++) {
            float t = (float)((int)fti_rng_below(r, 253) - 126) + 0.5f;
            int e = (int)fti_rng_below(r, 3);
            x[j] = e == 0 ? t : nextafterf(t, e == 1 ? 1e9f : -1e9f);
        }
        x[fti_rng_below(r, 32)] = fti_rng_below(r, 2) ? 127.0f : -127.0f;
        break;
    case 2: /* Q4_0 ties: extreme -8 (d = 1) or 8 (d = -1), x = k + 1/2 and neighbours */
        for (j = 0; j < 32; j++) {
            float t = (float)((int)fti_rng_below(r, 15) - 7) + 0.5f;
            int e = (int)fti_rng_below(r, 3);
            x[j] = e == 0 ? t : nextafterf(t, e == 1 ? 1e9f : -1e9f);
        }
        x[fti_rng_below(r, 32)] = fti_rng_below(r, 2) ? 8.0f : -8.0f;
        break;
    case 3: memset(x, 0, 32 * sizeof(float)); break;
    case 4:
        for (j = 0; j < 32; j++) x[j] = (j & 1) ? -0.0f : 0.0f;
        break;
    case 5: /* the largest magnitude twice, with both signs: the first one counts for Q4_0 */
        x[3 + fti_rng_below(r, 8)] = -2.0f * s;
        x[12 + fti_rng_below(r, 8)] = 2.0f * s;
        break;
    case 6: /* extremes: huge, subnormal, f16 overflow of the scale, inf, NaN */
        x[fti_rng_below(r, 32)] = 3.4e38f;
        x[fti_rng_below(r, 32)] = -1e-40f;
        x[fti_rng_below(r, 32)] = 65504.0f * 127.0f;
        break;
    case 7:
        for (j = 0; j < 32; j++) x[j] = (fti_rng_float(r) - 0.5f) * 1e-38f; /* d underflows */
        break;
    case 8: x[fti_rng_below(r, 32)] = fti_rng_below(r, 2) ? INFINITY : -INFINITY; break;
    case 9:
        x[fti_rng_below(r, 32)] = NAN;
        if (fti_rng_below(r, 2)) x[fti_rng_below(r, 32)] = -NAN;
        break;
    default: /* a single non-zero element */
        memset(x, 0, 32 * sizeof(float));
        x[fti_rng_below(r, 32)] = (fti_rng_float(r) - 0.5f) * s;
        break;
    }
}

/* The weight quantizers and dequantizers of every table: the same bytes (and floats) as the
 * scalar references, on odd block counts, unaligned input, ties, zeros and extremes. */
FTI_TEST(kernels_quantize_bit_identical) {
    static const size_t nbs[] = {1, 2, 3, 7, 15, 33, 65};
    const fti_kernels *tabs[8], *ref = fti_kernels_get(FTI_ISA_SCALAR);
    int n = fti_test_kernel_tables(tabs), t, ti, bad = 0;
    size_t ni, i, max_nb = 65;
    fti_rng r;
    float *buf = (float *)malloc((max_nb * 32 + 1) * sizeof(float)), *x = buf + 1;
    float *d0 = (float *)malloc(max_nb * 32 * sizeof(float));
    float *d1 = (float *)malloc(max_nb * 32 * sizeof(float));
    unsigned char *q0 = (unsigned char *)malloc(max_nb * 34),
                  *q1 = (unsigned char *)malloc(max_nb * 34);
    REQUIRE(buf && d0 && d1 && q0 && q1);
    fti_rng_seed(&r, 21, 5);
    for (ni = 0; ni < sizeof nbs / sizeof nbs[0]; ni++) {
        size_t nb = nbs[ni];
        for (i = 0; i < nb; i++) kt_quant_block(x + 32 * i, (int)((i + ni) % 11), &r);
        for (ti = 0; ti < 2; ti++) {
            fti_dtype ty = ti ? FTI_DTYPE_Q4_0 : FTI_DTYPE_Q8_0;
            size_t rb = fti_dtype_row_bytes(ty, nb * 32);
            CHECK_OK(fti_quantize_row(ref, ty, q0, x, nb * 32));
            CHECK_OK(fti_dequantize_row(ref, ty, d0, q0, nb * 32));
            for (t = 1; t < n; t++) {
                memset(q1, 0xa5, rb);
                CHECK_OK(fti_quantize_row(tabs[t], ty, q1, x, nb * 32));
                if (memcmp(q0, q1, rb) != 0) {
                    for (i = 0; i < rb && q0[i] == q1[i]; i++) {}
                    fprintf(stderr,
                            "    quantize %s table %d (%s) nb=%zu: byte %zu (block %zu kind %d) "
                            "%02x vs ref %02x\n",
                            fti_dtype_name(ty), t, fti_isa_name(fti_kernels_isa(tabs[t])), nb, i,
                            i / (rb / nb), (int)((i / (rb / nb) + ni) % 11), q1[i], q0[i]);
                    bad = 1;
                }
                CHECK_OK(fti_dequantize_row(tabs[t], ty, d1, q0, nb * 32));
                for (i = 0; i < nb * 32; i++)
                    if (memcmp(&d0[i], &d1[i], sizeof(float)) != 0 &&
                        !(d0[i] != d0[i] && d1[i] != d1[i])) {
                        fprintf(stderr,
                                "    dequantize %s table %d (%s) nb=%zu at %zu: %.9g vs ref "
                                "%.9g\n",
                                fti_dtype_name(ty), t, fti_isa_name(fti_kernels_isa(tabs[t])), nb,
                                i, d1[i], d0[i]);
                        bad = 1;
                        break;
                    }
            }
        }
    }
    CHECK(!bad);
    /* levels of the reference on ties, as ggml: Q8_0 half away from zero; Q4_0 half up, and
     * 2.4999998 + 8.5 rounds to 11 in float */
    {
        fti_block_q8_0 b8;
        fti_block_q4_0 b4;
        memset(x, 0, 32 * sizeof(float));
        x[0] = 127.0f;
        x[1] = 2.5f;
        x[2] = -2.5f;
        x[3] = nextafterf(2.5f, 0.0f);
        CHECK_OK(fti_quantize_row(ref, FTI_DTYPE_Q8_0, &b8, x, 32));
        CHECK(b8.qs[0] == 127 && b8.qs[1] == 3 && b8.qs[2] == -3 && b8.qs[3] == 2);
        x[0] = -8.0f; /* d = 1: level = (int)(x + 8.5f) */
        CHECK_OK(fti_quantize_row(ref, FTI_DTYPE_Q4_0, &b4, x, 32));
        CHECK((b4.qs[0] & 15) == 0 && (b4.qs[1] & 15) == 11 && (b4.qs[2] & 15) == 6 &&
              (b4.qs[3] & 15) == 11 && (b4.qs[4] & 15) == 8);
    }
    free(buf);
    free(d0);
    free(d1);
    free(q0);
    free(q1);
}

static int kt_close(const float *a, const float *b, size_t n, double atol, double rtol,
                    const char *what, const fti_kernels *k) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!(a[i] == b[i] || (a[i] != a[i] && b[i] != b[i])) &&
            !(fabs((double)a[i] - b[i]) <= atol + rtol * fabs((double)b[i]))) {
            fprintf(stderr, "    %s (%s) n=%zu at %zu: %.9g vs ref %.9g\n", what,
                    fti_isa_name(fti_kernels_isa(k)), n, i, a[i], b[i]);
            return 0;
        }
    return 1;
}

/* Vector ops of every table against the scalar table (whose ops are the _ref functions). */
FTI_TEST(kernels_vector_ops_all_tables) {
    const fti_kernels *tabs[8], *ref = fti_kernels_get(FTI_ISA_SCALAR);
    int n = fti_test_kernel_tables(tabs), t, si;
    fti_rng r;
    fti_rng_seed(&r, 13, 1);
    for (si = 0; si < KT_NSIZES; si++) {
        size_t C = (size_t)kt_sizes[si], R = 3, RC = R * C, i;
        float *x = fti_test_rand(&r, RC, 3.0f), *y = fti_test_rand(&r, RC, 1.0f),
              *w = fti_test_rand(&r, C, 1.0f);
        float *o1 = (float *)malloc(RC * 4), *o2 = (float *)malloc(RC * 4);
        float *p1 = (float *)malloc(RC * 4), *p2 = (float *)malloc(RC * 4);
        float *g1 = (float *)calloc(C, 4), *g2 = (float *)calloc(C, 4);
        float rs1[3], rs2[3], l1[3], l2[3];
        int32_t tg[3];
        tg[0] = 0;
        tg[1] = (int32_t)(C - 1);
        tg[2] = -1;
        x[1] = -INFINITY;
        for (t = 1; t < n; t++) {
            const fti_kernels *k = tabs[t];
            double d1 = fti_dot(ref, x + 2, y, C - 1 + (C == 1)), mag = 0;
            float d2 = fti_dot(k, x + 2, y, C - 1 + (C == 1));
            for (i = 0; i < C - 1 + (C == 1); i++) mag += fabs((double)x[2 + i] * y[i]);
            CHECK(fabs(d2 - d1) <= 1e-6 * (double)(C + 8) * mag);
            memcpy(o1, y, RC * 4);
            memcpy(o2, y, RC * 4);
            fti_axpy(ref, o1, 0.7f, x + C, RC - C);
            fti_axpy(k, o2, 0.7f, x + C, RC - C);
            CHECK(kt_close(o2, o1, RC, 1e-6, 1e-6, "axpy", k));
            fti_scale(ref, o1, -1.3f, RC);
            fti_scale(k, o2, -1.3f, RC);
            CHECK(kt_close(o2, o1, RC, 1e-6, 1e-6, "scale", k));
            /* rmsnorm */
            fti_rmsnorm_fwd(ref, o1, rs1, y, w, R, C, 1e-5f);
            fti_rmsnorm_fwd(k, o2, rs2, y, w, R, C, 1e-5f);
            CHECK(kt_close(o2, o1, RC, 1e-6, 1e-5, "rmsnorm_fwd", k));
            CHECK(kt_close(rs2, rs1, R, 0, 1e-5, "rmsnorm rstd", k));
            memset(g1, 0, C * 4);
            memset(g2, 0, C * 4);
            fti_rmsnorm_bwd(ref, o1, g1, x + C, y, w, rs1, 1, C);
            fti_rmsnorm_bwd(k, o2, g2, x + C, y, w, rs1, 1, C);
            CHECK(kt_close(o2, o1, C, 1e-5, 1e-5, "rmsnorm_bwd dx", k));
            CHECK(kt_close(g2, g1, C, 1e-5, 1e-5, "rmsnorm_bwd dw", k));
            /* softmax (row 0 has a -inf) */
            fti_softmax_fwd(ref, o1, x, R, C);
            fti_softmax_fwd(k, o2, x, R, C);
            CHECK(kt_close(o2, o1, RC, 1e-7, 2e-6, "softmax_fwd", k));
            fti_softmax_bwd(ref, p1, o1, y, R, C);
            fti_softmax_bwd(k, p2, o1, y, R, C);
            CHECK(kt_close(p2, p1, RC, 1e-6, 1e-5, "softmax_bwd", k));
            /* silu / swiglu */
            fti_silu_fwd(ref, o1, x, RC);
            fti_silu_fwd(k, o2, x, RC);
            CHECK(kt_close(o2, o1, RC, 1e-7, 2e-6, "silu_fwd", k));
            fti_silu_bwd(ref, o1, x + C, y, RC - C);
            fti_silu_bwd(k, o2, x + C, y, RC - C);
            CHECK(kt_close(o2, o1, RC - C, 1e-7, 2e-6, "silu_bwd", k));
            fti_swiglu_fwd(ref, o1, x + C, y, RC - C);
            fti_swiglu_fwd(k, o2, x + C, y, RC - C);
            CHECK(kt_close(o2, o1, RC - C, 1e-7, 2e-6, "swiglu_fwd", k));
            fti_swiglu_bwd(ref, o1, p1, x + C, y, w, C > 1 ? C - 1 : 1);
            fti_swiglu_bwd(k, o2, p2, x + C, y, w, C > 1 ? C - 1 : 1);
            CHECK(kt_close(o2, o1, C > 1 ? C - 1 : 1, 1e-7, 2e-6, "swiglu_bwd dg", k));
            CHECK(kt_close(p2, p1, C > 1 ? C - 1 : 1, 1e-7, 2e-6, "swiglu_bwd du", k));
            /* cross-entropy */
            CHECK_EQ_INT(fti_xent_fwd(ref, l1, o1, y, tg, R, C), 2);
            CHECK_EQ_INT(fti_xent_fwd(k, l2, o2, y, tg, R, C), 2);
            CHECK(kt_close(o2, o1, RC, 1e-7, 2e-6, "xent probs", k));
            CHECK(kt_close(l2, l1, R, 1e-6, 1e-5, "xent loss", k));
            CHECK(l1[2] == 0.0f);
            fti_xent_bwd(ref, p1, o1, tg, 0.25f, R, C);
            fti_xent_bwd(k, o2, o2, tg, 0.25f, R, C); /* in place */
            CHECK(kt_close(o2, p1, RC, 1e-7, 2e-6, "xent_bwd", k));
            /* adamw */
            {
                fti_adamw_hparams hp;
                float *pa = fti_test_rand(&r, C, 1.0f), *pb = (float *)malloc(C * 4);
                float *ma = fti_test_rand(&r, C, 0.1f), *mb = (float *)malloc(C * 4);
                float *va = (float *)malloc(C * 4), *vb = (float *)malloc(C * 4);
                for (i = 0; i < C; i++) va[i] = fabsf(ma[i]) * 0.01f;
                memcpy(pb, pa, C * 4);
                memcpy(mb, ma, C * 4);
                memcpy(vb, va, C * 4);
                memset(&hp, 0, sizeof hp);
                hp.lr = 1e-3f;
                hp.beta1 = 0.9f;
                hp.beta2 = 0.95f;
                hp.eps = 1e-8f;
                hp.weight_decay = 0.1f;
                hp.step = 3;
                fti_adamw(ref, pa, y, ma, va, C, &hp, 1);
                fti_adamw(k, pb, y, mb, vb, C, &hp, 1);
                CHECK(kt_close(pb, pa, C, 1e-7, 1e-6, "adamw p", k));
                CHECK(kt_close(mb, ma, C, 1e-7, 1e-6, "adamw m", k));
                CHECK(kt_close(vb, va, C, 1e-9, 1e-6, "adamw v", k));
                free(pa);
                free(pb);
                free(ma);
                free(mb);
                free(va);
                free(vb);
            }
        }
        free(x);
        free(y);
        free(w);
        free(o1);
        free(o2);
        free(p1);
        free(p2);
        free(g1);
        free(g2);
    }
}

/* The references themselves against closed forms and finite differences. */
static double kt_sum_dot(const float *a, const float *b, size_t n) {
    double s = 0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

FTI_TEST(kernels_backward_finite_differences) {
    const fti_kernels *k = fti_kernels_get(FTI_ISA_SCALAR);
    enum { C = 17, R = 2 };
    float x[R * C], w[C], dout[R * C], out[R * C], rstd[R], dx[R * C], dw[C], tmp[R * C];
    float xp[R * C], op[R * C];
    const float h = 1e-2f;
    int i, j;
    fti_rng r;
    fti_rng_seed(&r, 21, 1);
    for (i = 0; i < R * C; i++) {
        x[i] = fti_rng_float(&r) * 2 - 1;
        dout[i] = fti_rng_float(&r) * 2 - 1;
    }
    for (i = 0; i < C; i++) w[i] = fti_rng_float(&r) + 0.5f;
        /* L = Σ dout·f(x): dL/dx_i by central differences (f evaluated in float, h = 1e-2) */
#define KT_FD(call_fwd, grad, n, what)                                                             \
    for (i = 0; i < (n); i++) {                                                                    \
        double lp, lm;                                                                             \
        memcpy(xp, x, sizeof x);                                                                   \
        xp[i] += h;                                                                                \
        call_fwd;                                                                                  \
        lp = kt_sum_dot(op, dout, R * C);                                                          \
        xp[i] -= 2 * h;                                                                            \
        call_fwd;                                                                                  \
        lm = kt_sum_dot(op, dout, R * C);                                                          \
        CHECK_NEAR((grad)[i], (lp - lm) / (2 * h), 2e-3, 2e-2);                                    \
        (void)what;                                                                                \
    }
    /* rmsnorm */
    fti_rmsnorm_fwd(k, out, rstd, x, w, R, C, 1e-5f);
    memset(dw, 0, sizeof dw);
    fti_rmsnorm_bwd(k, dx, dw, dout, x, w, rstd, R, C);
    KT_FD(fti_rmsnorm_fwd(k, op, NULL, xp, w, R, C, 1e-5f), dx, R * C, "rmsnorm dx")
    for (j = 0; j < C; j++) { /* dw_j = Σ_r dout·x·rstd */
        double s = 0;
        for (i = 0; i < R; i++) s += (double)dout[i * C + j] * x[i * C + j] * rstd[i];
        CHECK_NEAR(dw[j], s, 1e-5, 1e-5);
    }
    /* softmax */
    fti_softmax_fwd(k, out, x, R, C);
    fti_softmax_bwd(k, dx, out, dout, R, C);
    KT_FD(fti_softmax_fwd(k, op, xp, R, C), dx, R * C, "softmax")
    /* silu */
    fti_silu_bwd(k, dx, x, dout, R * C);
    KT_FD(fti_silu_fwd(k, op, xp, R * C), dx, R * C, "silu")
    /* swiglu: gradient wrt g (u = w repeated), and wrt u */
    for (i = 0; i < R * C; i++) tmp[i] = w[i % C];
    {
        float du[R * C], dg[R * C];
        fti_swiglu_bwd(k, dx, du, x, tmp, dout, R * C);
        KT_FD(fti_swiglu_fwd(k, op, xp, tmp, R * C), dx, R * C, "swiglu g")
        fti_swiglu_bwd(k, dg, du, tmp, x, dout, R * C);
        KT_FD(fti_swiglu_fwd(k, op, tmp, xp, R * C), du, R * C, "swiglu u")
    }
    /* rope: fwd then bwd is the identity; the bwd is the transpose of the fwd (a rotation) */
    memcpy(tmp, x, sizeof x);
    fti_rope_fwd(k, tmp, R, 1, C - 1, C, 5, NULL, 10000.0f);
    CHECK(tmp[C - 1] == x[C - 1]); /* odd tail untouched */
    memcpy(dx, dout, sizeof dout);
    fti_rope_bwd(k, dx, R, 1, C - 1, C, 5, NULL, 10000.0f);
    KT_FD((memcpy(op, xp, sizeof xp), fti_rope_fwd(k, op, R, 1, C - 1, C, 5, NULL, 10000.0f)), dx,
          R * C - 1, "rope")
    fti_rope_bwd(k, tmp, R, 1, C - 1, C, 5, NULL, 10000.0f);
    for (i = 0; i < R * C; i++) CHECK_NEAR(tmp[i], x[i], 1e-6, 1e-6);
    {
        /* position 0 is the identity; pair 0 of position p turns by p radians */
        float v[4] = {1, 0, 1, 0};
        int32_t pos[1] = {2};
        fti_rope_fwd(k, v, 1, 1, 4, 0, 0, NULL, 10000.0f);
        CHECK(v[0] == 1 && v[1] == 0);
        fti_rope_fwd(k, v, 1, 1, 4, 0, 0, pos, 10000.0f);
        CHECK_NEAR(v[0], cos(2.0), 1e-6, 0);
        CHECK_NEAR(v[1], sin(2.0), 1e-6, 0);
        CHECK_NEAR(v[2], cos(0.02), 1e-6, 0);
    }
    /* cross-entropy: loss against a direct formula, gradient against differences */
    {
        int32_t tg[R] = {3, 16};
        float loss[R], lp[R], lm[R];
        double z = 0;
        fti_xent_fwd(k, loss, out, x, tg, R, C);
        for (j = 0; j < C; j++) z += exp((double)x[j]);
        CHECK_NEAR(loss[0], log(z) - x[3], 1e-5, 1e-5);
        fti_xent_bwd(k, dx, out, tg, 1.0f, R, C);
        for (i = 0; i < R * C; i++) {
            memcpy(xp, x, sizeof x);
            xp[i] += h;
            fti_xent_fwd(k, lp, op, xp, tg, R, C);
            xp[i] -= 2 * h;
            fti_xent_fwd(k, lm, op, xp, tg, R, C);
            CHECK_NEAR(dx[i], ((double)lp[0] + lp[1] - lm[0] - lm[1]) / (2 * h), 2e-3, 2e-2);
        }
    }
    /* adamw step 1 from zero moments moves each parameter by about lr·sign(g) */
    {
        fti_adamw_hparams hp;
        float p[C], m[C], v[C];
        memset(&hp, 0, sizeof hp);
        hp.lr = 0.01f;
        hp.beta1 = 0.9f;
        hp.beta2 = 0.999f;
        hp.eps = 1e-8f;
        hp.weight_decay = 0.5f;
        hp.step = 1;
        for (i = 0; i < C; i++) p[i] = 1.0f, m[i] = 0, v[i] = 0;
        fti_adamw(k, p, dout, m, v, C, &hp, 0);
        for (i = 0; i < C; i++) CHECK_NEAR(p[i], 1.0f - 0.01f * (dout[i] > 0 ? 1 : -1), 1e-5, 0);
        for (i = 0; i < C; i++) p[i] = 1.0f, m[i] = 0, v[i] = 0;
        fti_adamw(k, p, dout, m, v, C, &hp, 1);
        for (i = 0; i < C; i++) CHECK_NEAR(p[i], 0.995f - 0.01f * (dout[i] > 0 ? 1 : -1), 1e-5, 0);
    }
#undef KT_FD
}

/* The vector exp at the edges of float range: underflow to 0, overflow to inf, ±inf, NaN. */
FTI_TEST(kernels_exp_edges) {
    const fti_kernels *tabs[8], *ref = fti_kernels_get(FTI_ISA_SCALAR);
    const float xs[] = {-1000.0f, -104.0f, -100.0f,    -88.0f,   -87.0f, -20.5f, -1e-3f,
                        0.0f,     1e-3f,   0.6931472f, 10.25f,   50.0f,  88.0f,  88.5f,
                        89.0f,    100.0f,  -INFINITY,  INFINITY, -0.0f};
    enum { NX = sizeof xs / sizeof xs[0] };
    float a[NX], b[NX], ea[NX], eb[NX], row[40], pa[40], pb[40];
    int n = fti_test_kernel_tables(tabs), t, i;
    for (i = 0; i < 40; i++) row[i] = (float)i * 37.0f - 700.0f; /* spread over 1443 */
    for (t = 1; t < n; t++) {
        fti_silu_fwd(ref, a, xs, NX);
        fti_silu_fwd(tabs[t], b, xs, NX);
        CHECK(kt_close(b, a, NX, 1e-30, 3e-6, "silu edges", tabs[t]));
        fti_swiglu_bwd(ref, a, ea, xs, xs, xs, NX);
        fti_swiglu_bwd(tabs[t], b, eb, xs, xs, xs, NX);
        CHECK(kt_close(b, a, NX, 1e-30, 3e-6, "swiglu_bwd edges", tabs[t]));
        CHECK(kt_close(eb, ea, NX, 1e-30, 3e-6, "swiglu_bwd edges du", tabs[t]));
        fti_softmax_fwd(ref, pa, row, 1, 40);
        fti_softmax_fwd(tabs[t], pb, row, 1, 40);
        CHECK(kt_close(pb, pa, 40, 1e-30, 3e-6, "softmax spread", tabs[t]));
        CHECK(pb[39] > 0.99f && pb[0] == 0.0f);
        {
            float nrow[3] = {1.0f, NAN, 2.0f};
            fti_softmax_fwd(tabs[t], pb, nrow, 1, 3);
            CHECK(pb[0] != pb[0] || pb[2] != pb[2]); /* NaN propagates */
            nrow[0] = nrow[1] = nrow[2] = -INFINITY;
            fti_softmax_fwd(tabs[t], pb, nrow, 1, 3);
            CHECK_NEAR(pb[1], 1.0f / 3.0f, 1e-7, 0);
        }
    }
}

/* Without memory the GEMM and the quantized GEMV fall back to the references (never fail). */
FTI_TEST(kernels_no_memory) {
    const fti_kernels *k = fti_kernels_get(FTI_ISA_AUTO);
    size_t M = 40, N = 50, K = 300, n_in = 320, T = 20, i;
    size_t rb = fti_dtype_row_bytes(FTI_DTYPE_Q8_0, 320);
    float *A, *B, *Wf, *C1, *C2, *Y1, *Y2;
    void *W;
    long live;
    fti_rng r;
    fti_rng_seed(&r, 77, 1);
    A = fti_test_rand(&r, M * K, 1.0f);
    B = fti_test_rand(&r, K * N, 1.0f);
    Wf = fti_test_rand(&r, N * n_in, 1.0f);
    C1 = (float *)calloc(M * N, sizeof(float));
    C2 = (float *)calloc(M * N, sizeof(float));
    Y1 = (float *)calloc(T * N, sizeof(float));
    Y2 = (float *)calloc(T * N, sizeof(float));
    W = malloc(rb * N);
    for (i = 0; i < N; i++)
        fti_quantize_row(k, FTI_DTYPE_Q8_0, (char *)W + i * rb, Wf + i * n_in, n_in);
    fti_matmul(k, NULL, 0, M, N, K, A, K, B, N, C1, N);
    CHECK_OK(fti_matmul_w(k, NULL, FTI_DTYPE_Q8_0, W, A, Y1, T, N, n_in));
    live = fti_test_alloc_live;
    fti_test_alloc_fail_at(1, 1);
    fti_matmul(k, NULL, 0, M, N, K, A, K, B, N, C2, N);
    CHECK_OK(fti_matmul_w(k, NULL, FTI_DTYPE_Q8_0, W, A, Y2, T, N, n_in));
    CHECK(fti_test_alloc_count > 0); /* the allocations were attempted and refused */
    fti_test_alloc_fail_at(0, 0);
    CHECK_EQ_INT(fti_test_alloc_live, live);
    for (i = 0; i < M * N; i++) CHECK_NEAR(C2[i], C1[i], 1e-3, 1e-4);
    for (i = 0; i < T * N; i++) CHECK_NEAR(Y2[i], Y1[i], 1e-2, 1e-3);
    free(A);
    free(B);
    free(C1);
    free(C2);
    free(Y1);
    free(Y2);
    free(W);
    free(Wf);
}
